/*
 * output.c: everything osirisctl prints for people: the one-line errors,
 * peer text made terminal-safe, times and durations, one line per run
 * record, aligned tables, and stdout writes that stop quietly on EPIPE.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/osirisctl.h"

void out_error(const char *what, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	/* Promised: one line, whatever a peer's text contained. */
	for (char *p = why; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	out_flush();
	fprintf(stderr, "osirisctl: %s: %s\n", what, why);
}

static void out_esc_byte(struct buf *b, uint8_t ch)
{
	switch (ch) {
	case '\n':
		buf_adds(b, "\\n");
		break;
	case '\r':
		buf_adds(b, "\\r");
		break;
	case '\t':
		buf_adds(b, "\\t");
		break;
	default:
		buf_printf(b, "\\x%02x", ch);
	}
}

/* Control characters (C0, DEL, and C1 encoded as U+0080..U+009F) could
 * drive the terminal; invalid UTF-8 could confuse it. Both become escapes. */
void out_esc(struct buf *b, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;

	while (p < end) {
		const uint8_t *bad = utf8_invalid(p, (size_t)(end - p));
		const uint8_t *stop = bad != NULL ? bad : end;

		while (p < stop) {
			if (*p < 0x20 || *p == 0x7f) {
				out_esc_byte(b, *p++);
			} else if (*p == 0xc2 && p + 1 < stop && p[1] >= 0x80 && p[1] <= 0x9f) {
				buf_printf(b, "\\u%04x", p[1]);
				p += 2;
			} else
				buf_addc(b, (char)*p++);
		}
		if (bad != NULL)
			buf_printf(b, "\\x%02x", *p++);
	}
}

const char *out_str(struct buf *b, const msgpack_object *map, const char *key)
{
	const msgpack_object *o = mp_get(map, key);

	buf_reset(b);
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		buf_addc(b, '-');
	else if (o->type == MSGPACK_OBJECT_STR)
		out_esc(b, o->via.str.ptr, o->via.str.size);
	else
		out_value(b, o);
	return buf_cstr(b);
}

int out_iso_parse(const char *s, size_t len, int64_t *ms)
{
	char tmp[64], *p;
	struct tm tm;
	int frac = 0, digits = 0;
	time_t t;

	if (len == 0 || len >= sizeof tmp)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(&tm, 0, sizeof tm);
	if ((p = strptime(tmp, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		if (digits == 0)
			return -1;
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*ms = (int64_t)t * 1000 + frac;
	return 0;
}

int64_t out_time_ms(const msgpack_object *o)
{
	int64_t ms;

	if (o == NULL)
		return -1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		return (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_STR && out_iso_parse(o->via.str.ptr, o->via.str.size, &ms) == 0)
		return ms;
	return -1;
}

static int out_localtime(int64_t ms, struct tm *tm)
{
	time_t t = (time_t)(ms / 1000);

	return localtime_r(&t, tm) != NULL ? 0 : -1;
}

void out_hms(int64_t ms, char *dst, size_t len)
{
	struct tm tm;
	char hms[16];

	if (ms < 0 || out_localtime(ms, &tm) == -1) {
		snprintf(dst, len, "--:--:--.---");
		return;
	}
	strftime(hms, sizeof hms, "%H:%M:%S", &tm);
	snprintf(dst, len, "%s.%03d", hms, (int)(ms % 1000));
}

void out_datetime(int64_t ms, char *dst, size_t len)
{
	struct tm tm;

	if (ms < 0 || out_localtime(ms, &tm) == -1) {
		snprintf(dst, len, "-");
		return;
	}
	strftime(dst, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void out_duration(int64_t ms, char *dst, size_t len)
{
	if (ms < 0)
		snprintf(dst, len, "-");
	else if (ms < 1000)
		snprintf(dst, len, "%" PRId64 "ms", ms);
	else if (ms < 60000)
		snprintf(dst, len, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(dst, len, "%" PRId64 "m%02" PRId64 "s", ms / 60000, (ms / 1000) % 60);
	else
		snprintf(dst, len, "%" PRId64 "h%02" PRId64 "m", ms / 3600000, (ms / 60000) % 60);
}

/* A string stays bare when it cannot be mistaken for several fields. */
static int out_bare(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == ' ' || s[i] == '"' || s[i] == '=' || (uint8_t)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

void out_value(struct buf *b, const msgpack_object *o)
{
	json_t *j;
	char *s;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		buf_adds(b, "null");
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		buf_adds(b, o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		buf_printf(b, "%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		buf_printf(b, "%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		buf_printf(b, "%g", o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		if (out_bare(o->via.str.ptr, o->via.str.size))
			out_esc(b, o->via.str.ptr, o->via.str.size);
		else {
			buf_addc(b, '"');
			out_esc(b, o->via.str.ptr, o->via.str.size);
			buf_addc(b, '"');
		}
		break;
	case MSGPACK_OBJECT_BIN:
		buf_printf(b, "<%" PRIu32 " bytes>", o->via.bin.size);
		break;
	default:
		/* Arrays and maps: compact JSON, ASCII-only so it stays one safe line. */
		j = json_from_mp(o);
		s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
		buf_adds(b, s != NULL ? s : "?");
		free(s);
		json_decref(j);
	}
}

static int out_key_is(const msgpack_object_kv *kv, const char *name)
{
	return mp_str_eq(&kv->key, name);
}

/* " k=v" for every field of `data` except those named in skip. */
static void out_fields(struct buf *b, const msgpack_object *data, const char *skip1, const char *skip2)
{
	if (data == NULL || data->type != MSGPACK_OBJECT_MAP)
		return;
	for (uint32_t i = 0; i < data->via.map.size; i++) {
		const msgpack_object_kv *kv = &data->via.map.ptr[i];

		if ((skip1 != NULL && out_key_is(kv, skip1)) || (skip2 != NULL && out_key_is(kv, skip2)))
			continue;
		buf_addc(b, ' ');
		if (kv->key.type == MSGPACK_OBJECT_STR)
			out_esc(b, kv->key.via.str.ptr, kv->key.via.str.size);
		else
			out_value(b, &kv->key);
		buf_addc(b, '=');
		out_value(b, &kv->val);
	}
}

void out_record(struct buf *b, const msgpack_object *ev)
{
	const msgpack_object *step = mp_get(ev, "step_id"), *name = mp_get(ev, "name"), *data = mp_get(ev, "data");
	const msgpack_object *msg = mp_get(data, "message"), *value = mp_get(data, "value");
	char hms[32];

	out_hms(out_time_ms(mp_get(ev, "ts")), hms, sizeof hms);
	buf_adds(b, hms);
	if (step != NULL && step->type == MSGPACK_OBJECT_STR) {
		buf_adds(b, " [");
		out_esc(b, step->via.str.ptr, step->via.str.size);
		buf_addc(b, ']');
	}
	if (mp_str_eq(mp_get(ev, "origin"), "daemon"))
		buf_adds(b, " osirisd:");
	buf_addc(b, ' ');
	if (mp_str_eq(mp_get(ev, "kind"), "log")) {
		if (name != NULL && name->type == MSGPACK_OBJECT_STR)
			out_esc(b, name->via.str.ptr, name->via.str.size);
		buf_addc(b, ':');
		if (msg != NULL && msg->type == MSGPACK_OBJECT_STR) {
			buf_addc(b, ' ');
			out_esc(b, msg->via.str.ptr, msg->via.str.size);
		}
		out_fields(b, data, "message", NULL);
	} else if (mp_str_eq(mp_get(ev, "kind"), "metric")) {
		buf_adds(b, "metric ");
		if (name != NULL && name->type == MSGPACK_OBJECT_STR)
			out_esc(b, name->via.str.ptr, name->via.str.size);
		buf_addc(b, '=');
		if (value != NULL)
			out_value(b, value);
		out_fields(b, data, "value", "step_id");
	} else {
		if (name != NULL && name->type == MSGPACK_OBJECT_STR)
			out_esc(b, name->via.str.ptr, name->via.str.size);
		else
			buf_adds(b, "?");
		out_fields(b, data, NULL, NULL);
	}
}

void out_flush(void)
{
	if (fflush(stdout) == 0)
		return;
	if (errno == EPIPE)
		_exit(EXIT_OK); /* the reader went away (| head): stop quietly */
	fprintf(stderr, "osirisctl: write: stdout: %s\n", strerror(errno));
	_exit(EXIT_RUN_FAILED);
}

void out_write(const void *data, size_t len)
{
	if (len > 0 && fwrite(data, 1, len, stdout) != len)
		out_flush();
}

void out_table_init(struct out_table *t, size_t ncols, const char *const *header)
{
	t->ncols = ncols;
	t->nrows = 0;
	t->cells = NULL;
	out_table_row(t, header);
}

void out_table_row(struct out_table *t, const char *const *cells)
{
	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof *t->cells);
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = xstrdup(cells[i] != NULL ? cells[i] : "-");
	t->nrows++;
}

void out_table_print(struct out_table *t)
{
	size_t *w = xcalloc(t->ncols, sizeof *w);
	struct buf b;

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t l = strlen(t->cells[r * t->ncols + c]);

			if (l > w[c])
				w[c] = l;
		}
	buf_init(&b);
	for (size_t r = 0; r < t->nrows; r++) {
		buf_reset(&b);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];

			if (c + 1 == t->ncols)
				buf_adds(&b, cell);
			else
				buf_printf(&b, "%-*s  ", (int)w[c], cell);
		}
		buf_addc(&b, '\n');
		out_write(b.data, b.len);
	}
	buf_free(&b);
	free(w);
}

void out_table_free(struct out_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}
