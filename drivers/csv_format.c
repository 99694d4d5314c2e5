/*
 * csv_format.c: serialise a table as CSV with minimal quoting, writing each
 * value's original text, so that parse -> write reproduces canonical input
 * byte for byte. NULL is written as an empty field, the empty string as "".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers.h"

#define CSV_WBUF (1024 * 1024)

struct csv_wstate {
	int fd;
	char *buf;
	size_t len;
	int err;
	unsigned char special[256];
	const struct csv_wopts *o;
	size_t nl_len;
	int at_start; /* nothing written yet */
};

static void csv_wflush(struct csv_wstate *w)
{
	if (!w->err && write_all(w->fd, w->buf, w->len) == -1)
		w->err = errno;
	w->len = 0;
}

/* Room for n more bytes; values longer than the buffer go through in pieces. */
static void csv_wput(struct csv_wstate *w, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = CSV_WBUF - w->len, k = n < room ? n : room;
		memcpy(w->buf + w->len, s, k);
		w->len += k;
		s += k;
		n -= k;
		if (w->len == CSV_WBUF)
			csv_wflush(w);
	}
}

static void csv_wputc(struct csv_wstate *w, char c)
{
	if (w->len == CSV_WBUF)
		csv_wflush(w);
	w->buf[w->len++] = c;
}

static void csv_put_quoted(struct csv_wstate *w, const char *s, size_t len)
{
	const char *q;

	csv_wputc(w, '"');
	while (len > 0 && (q = memchr(s, '"', len)) != NULL) {
		size_t n = (size_t)(q - s) + 1;
		csv_wput(w, s, n);
		csv_wputc(w, '"');
		s += n;
		len -= n;
	}
	csv_wput(w, s, len);
	csv_wputc(w, '"');
}

/* One pass: copy while looking for a byte that needs quoting; on one,
 * take the copy back and quote the field. */
static void csv_put_value(struct csv_wstate *w, const char *s, size_t len, int is_null)
{
	size_t i, start;
	char *d;

	if (is_null)
		return;
	if (len == 0) {
		csv_wput(w, "\"\"", 2);
		return;
	}
	if (w->at_start) {
		w->at_start = 0;
		/* a leading BOM would be skipped by readers: keep it as text */
		if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			csv_put_quoted(w, s, len);
			return;
		}
	}
	if (len > CSV_WBUF - w->len) {
		csv_wflush(w);
		if (len > CSV_WBUF) {
			for (i = 0; i < len && !w->special[(unsigned char)s[i]]; i++)
				;
			if (i < len)
				csv_put_quoted(w, s, len);
			else
				csv_wput(w, s, len);
			return;
		}
	}
	start = w->len;
	d = w->buf + start;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (w->special[c]) {
			w->len = start;
			csv_put_quoted(w, s, len);
			return;
		}
		d[i] = (char)c;
	}
	w->len += len;
}

static void csv_put_header(struct csv_wstate *w, const struct table *t)
{
	size_t c;

	for (c = 0; c < t->ncols; c++) {
		const char *nm = t->cols[c].name ? t->cols[c].name : "";
		if (c > 0)
			csv_wputc(w, w->o->delim);
		/* an empty name stays an empty header field, except alone on
		 * its line, where "" keeps the line from reading as blank */
		csv_put_value(w, nm, strlen(nm), nm[0] == '\0' && t->ncols > 1);
	}
	csv_wput(w, w->o->newline, w->nl_len);
}

int csv_format_fd(int fd, const struct table *t, const struct csv_wopts *o)
{
	struct csv_wstate w;
	size_t r, c;

	memset(&w, 0, sizeof(w));
	w.fd = fd;
	w.o = o;
	w.nl_len = strlen(o->newline);
	w.special[(unsigned char)o->delim] = 1;
	w.special['"'] = 1;
	w.special['\r'] = 1;
	w.special['\n'] = 1;
	w.buf = xmalloc(CSV_WBUF);
	w.at_start = 1;
	if (o->header && t->ncols > 0)
		csv_put_header(&w, t);
	for (r = 0; !w.err && r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const struct tval *v = &t->cols[c].v[r];
			if (c > 0)
				csv_wputc(&w, o->delim);
			csv_put_value(&w, v->s, v->len, v->s == NULL);
		}
		csv_wput(&w, o->newline, w.nl_len);
	}
	csv_wflush(&w);
	free(w.buf);
	if (w.err) {
		errno = w.err;
		return -1;
	}
	return 0;
}
