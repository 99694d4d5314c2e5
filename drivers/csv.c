/*
 * csv.c: RFC 4180 CSV parser over a whole file in memory. Quoted fields are
 * unescaped in place and every value points into the file buffer, which
 * must live as long as the table (table_adopt*): no allocation per field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

#define CSV_MAX_FIELDS 100000
#define CSV_CANCEL_EVERY 4096

struct csv_field {
	char *s;
	size_t len;
	int quoted;
};

struct csv_state {
	const char *name;
	char *data, *p, *end;
	char delim;
	unsigned char stop[256];
	size_t line;     /* 1-based line where the next record starts */
	size_t rec_line; /* line where the current record started */
	struct csv_field *f;
	size_t nf, fcap;
	char *err;
	size_t errlen;
};

void csv_opts_default(struct csv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->delim = ',';
	o->header = 1;
	o->limit = -1;
}

static int csv_state_error(struct csv_state *st, size_t line, const char *what)
{
	snprintf(st->err, st->errlen, "%s:%zu: %s", st->name, line, what);
	return -1;
}

static void csv_field_add(struct csv_state *st, char *s, size_t len, int quoted)
{
	if (st->nf == st->fcap) {
		st->fcap = st->fcap ? st->fcap * 2 : 64;
		st->f = xreallocarray(st->f, st->fcap, sizeof(*st->f));
	}
	st->f[st->nf].s = s;
	st->f[st->nf].len = len;
	st->f[st->nf].quoted = quoted;
	st->nf++;
}

static size_t csv_count_nl(const char *p, size_t n)
{
	size_t c = 0;
	const char *q;

	while (n > 0 && (q = memchr(p, '\n', n)) != NULL) {
		c++;
		n -= (size_t)(q + 1 - p);
		p = q + 1;
	}
	return c;
}

/* A quoted field starting at the opening quote; unescapes "" in place. */
static int csv_quoted(struct csv_state *st, size_t *extra_lines)
{
	char *p = st->p + 1, *w = p, *start = p, *q;

	for (;;) {
		q = memchr(p, '"', (size_t)(st->end - p));
		if (q == NULL)
			return csv_state_error(st, st->line, "unterminated quoted field");
		*extra_lines += csv_count_nl(p, (size_t)(q - p));
		if (w != p)
			memmove(w, p, (size_t)(q - p));
		w += q - p;
		p = q + 1;
		if (p < st->end && *p == '"') {
			*w++ = '"';
			p++;
			continue;
		}
		break;
	}
	if (p < st->end && *p != st->delim && *p != '\n' && *p != '\r')
		return csv_state_error(st, st->line + *extra_lines, "unexpected character after a closing quote");
	if ((size_t)(w - start) > UINT32_MAX)
		return csv_state_error(st, st->line, "field longer than 4 GiB");
	csv_field_add(st, start, (size_t)(w - start), 1);
	st->p = p;
	return 0;
}

/* Parse one record into st->f. 1 = a record, 0 = end of input, -1 error. */
static int csv_record(struct csv_state *st)
{
	size_t extra = 0;

	st->nf = 0;
	st->rec_line = st->line;
	if (st->p >= st->end)
		return 0;
	for (;;) {
		if (st->p < st->end && *st->p == '"') {
			if (csv_quoted(st, &extra) < 0)
				return -1;
		} else {
			char *s = st->p, *p = st->p;
			while (p < st->end && !st->stop[(unsigned char)*p])
				p++;
			if ((size_t)(p - s) > UINT32_MAX)
				return csv_state_error(st, st->line, "field longer than 4 GiB");
			csv_field_add(st, s, (size_t)(p - s), 0);
			st->p = p;
		}
		if (st->nf > CSV_MAX_FIELDS)
			return csv_state_error(st, st->line, "more than 100000 fields in a record");
		if (st->p >= st->end)
			break;
		if (*st->p == st->delim) {
			st->p++;
			continue;
		}
		if (*st->p == '\r' && st->p + 1 < st->end && st->p[1] == '\n')
			st->p++;
		st->p++;
		break;
	}
	st->line += extra + 1;
	return 1;
}

/* ASCII 8 bytes at a time; each run of non-ASCII bytes (always whole
 * sequences when valid, as ASCII bytes are character boundaries) goes
 * through the strict validator. */
static const uint8_t *csv_utf8_scan(const uint8_t *s, size_t len)
{
	const uint8_t *bad;
	size_t i = 0, j;
	uint64_t v;

	while (i < len) {
		while (i + 8 <= len) {
			memcpy(&v, s + i, 8);
			if (v & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		while (i < len && s[i] < 0x80)
			i++;
		if (i == len)
			break;
		for (j = i; j < len && s[j] >= 0x80; j++)
			;
		if ((bad = utf8_invalid(s + i, j - i)) != NULL)
			return bad;
		i = j;
	}
	return NULL;
}

static int csv_utf8_check(struct csv_state *st, size_t start, size_t len)
{
	const uint8_t *bad = csv_utf8_scan((const uint8_t *)st->data + start, len - start);
	size_t off, line;
	char what[96];

	if (bad == NULL)
		return 0;
	off = (size_t)((const char *)bad - st->data);
	line = 1 + csv_count_nl(st->data, off);
	snprintf(what, sizeof(what), "invalid UTF-8 at byte offset %zu", off);
	return csv_state_error(st, line, what);
}

static int csv_is_blank(const struct csv_state *st)
{
	return st->nf == 1 && !st->f[0].quoted && st->f[0].len == 0;
}

static struct table *csv_table_start(struct csv_state *st, int header)
{
	struct table *t = table_new(st->nf);
	size_t i;
	char nm[24];

	for (i = 0; i < st->nf; i++) {
		if (header) {
			table_set_name(t, i, st->f[i].s, st->f[i].len);
		} else {
			size_t n = (size_t)snprintf(nm, sizeof(nm), "%zu", i);
			table_set_name(t, i, nm, n);
		}
	}
	return t;
}

static int csv_row_add(struct csv_state *st, struct table *t)
{
	char what[96];
	size_t i;

	if (st->nf != t->ncols) {
		if (csv_is_blank(st))
			return 0; /* blank line between records: skipped */
		snprintf(what, sizeof(what), "expected %zu fields, found %zu", t->ncols, st->nf);
		return csv_state_error(st, st->rec_line, what);
	}
	for (i = 0; i < st->nf; i++) {
		const struct csv_field *f = &st->f[i];
		table_push(t, i, (f->len == 0 && !f->quoted) ? NULL : f->s, f->len);
	}
	return 1;
}

/* After CSV_SAMPLE_ROWS rows, the columns are sized for the rows the
 * rest of the input likely holds (from the bytes per row so far), plus a
 * margin: one allocation per column instead of a doubling series. */
#define CSV_SAMPLE_ROWS 1024

static void csv_reserve(const struct csv_state *st, const struct csv_opts *o, struct table *t, const char *sample)
{
	size_t used = (size_t)(st->p - sample), est;

	if (used == 0)
		return;
	est = CSV_SAMPLE_ROWS + (size_t)((double)(st->end - st->p) / ((double)used / CSV_SAMPLE_ROWS) * 1.05) + 64;
	/* never more rows than the rest could hold (a row takes at least one
	 * byte per field): short sample rows before long ones cannot make it
	 * reserve more than the file's worth */
	if (t->ncols > 0 && est > CSV_SAMPLE_ROWS + (size_t)(st->end - st->p) / t->ncols + 1)
		est = CSV_SAMPLE_ROWS + (size_t)(st->end - st->p) / t->ncols + 1;
	if (o->limit >= 0 && est > (size_t)o->limit)
		est = (size_t)o->limit;
	table_reserve(t, est);
}

static int csv_parse_records(struct csv_state *st, const struct csv_opts *o, struct table **tp)
{
	size_t skipped = 0, rows = 0;
	const char *sample = NULL, *before;
	int r;

	for (;;) {
		/* stop before reading past the limit: what follows may be broken */
		if (*tp != NULL && o->limit >= 0 && rows >= (size_t)o->limit)
			return 0;
		before = st->p;
		if ((r = csv_record(st)) <= 0)
			return r;
		if (skipped < o->skip_rows) {
			skipped++;
			continue;
		}
		if (*tp == NULL) {
			if (csv_is_blank(st))
				continue;
			*tp = csv_table_start(st, o->header);
			if (o->header || o->limit == 0)
				continue;
		}
		if (sample == NULL)
			sample = before;
		if ((r = csv_row_add(st, *tp)) < 0)
			return -1;
		rows += (size_t)r;
		if (rows == CSV_SAMPLE_ROWS && r > 0)
			csv_reserve(st, o, *tp, sample);
		if (o->cancelled != NULL && r > 0 && rows % CSV_CANCEL_EVERY == 0 && o->cancelled(o->arg))
			return 1;
	}
}

int csv_parse(const char *name, char *data, size_t len, const struct csv_opts *o, struct table **out, char *err,
              size_t errlen)
{
	struct csv_state st;
	struct table *t = NULL;
	size_t start = 0;
	int rc;

	memset(&st, 0, sizeof(st));
	st.name = name;
	st.data = data;
	st.end = data + len;
	st.delim = o->delim;
	st.stop[(unsigned char)o->delim] = 1;
	st.stop['\n'] = 1;
	st.stop['\r'] = 1;
	st.line = 1;
	st.err = err;
	st.errlen = errlen;
	*out = NULL;
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	st.p = data + start;
	if (csv_utf8_check(&st, start, len) < 0)
		return -1;
	rc = csv_parse_records(&st, o, &t);
	free(st.f);
	if (t == NULL)
		t = table_new(0);
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "%s: cancelled", name);
		table_free(t);
		return rc;
	}
	table_finish(t);
	*out = t;
	return 0;
}
