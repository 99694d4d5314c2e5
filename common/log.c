/*
 * log.c: one-line logging to stderr. Under systemd (JOURNAL_STREAM set) each
 * line carries a "<N>" priority prefix so journald keeps the level.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"

#define LOG_LINE_MAX 4096
#define LOG_ESC_SLOTS 8
#define LOG_ESC_SLOT_SIZE 1024

static const char *log_name = "osiris";
static enum log_level log_level = LOG_LVL_INFO;
static int log_journal;

void log_init(const char *name, enum log_level level)
{
	log_name = name;
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
	    {"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN},   {"warning", LOG_LVL_WARN},
	    {"info", LOG_LVL_INFO},   {"debug", LOG_LVL_DEBUG},
	};
	size_t i;

	for (i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -1;
}

/* Append s to line[*n..cap), truncating; keeps one byte for the newline. */
static void log_put(char *line, size_t cap, size_t *n, const char *s)
{
	size_t len = strlen(s);

	if (len > cap - 1 - *n)
		len = cap - 1 - *n;
	memcpy(line + *n, s, len);
	*n += len;
}

/* Format the whole line first and write it once, so lines from several
 * processes sharing stderr do not interleave. */
static void __attribute__((__format__(__printf__, 2, 0)))
log_vemit(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX], pfx[16];
	size_t n = 0;

	if (log_journal) {
		snprintf(pfx, sizeof(pfx), "<%d>", prio);
		log_put(line, sizeof(line), &n, pfx);
	} else {
		log_put(line, sizeof(line), &n, log_name);
		log_put(line, sizeof(line), &n, ": ");
	}
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	log_put(line, sizeof(line), &n, msg);
	if (suffix != NULL) {
		log_put(line, sizeof(line), &n, ": ");
		log_put(line, sizeof(line), &n, suffix);
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (log_level < LOG_LVL_WARN)
		return;
	va_start(ap, fmt);
	log_vemit(4, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LVL_WARN)
		return;
	va_start(ap, fmt);
	log_vemit(4, fmt, ap, NULL);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LVL_INFO)
		return;
	va_start(ap, fmt);
	log_vemit(6, fmt, ap, NULL);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vemit(7, fmt, ap, NULL);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vemit(3, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(3, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

/* A ring of slots so several escaped strings can appear in one log call. */
const char *log_esc(const char *s, size_t max)
{
	static __thread char ring[LOG_ESC_SLOTS][LOG_ESC_SLOT_SIZE];
	static __thread unsigned next;
	static const char hex[] = "0123456789abcdef";
	char *out = ring[next++ % LOG_ESC_SLOTS];
	size_t i, o = 0;

	if (s == NULL)
		return "(null)";
	for (i = 0; i < max && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (o + 8 >= LOG_ESC_SLOT_SIZE) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c >= 0x7f || c == '\\') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}
