/*
 * fuzz_csv.c: libFuzzer target for the CSV parser and writer. Any input
 * either fails with a one-line error or parses; a parsed table must write
 * and parse back to the same table (names, NULLs, text), and typed values
 * must render back to their text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "drivers/drivers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_fd = -1;

static void fuzz_check_types(const struct table *t)
{
	char buf[32];
	size_t c, r, n;

	for (c = 0; c < t->ncols; c++) {
		const struct column *col = &t->cols[c];
		for (r = 0; r < t->nrows; r++) {
			if (col->v[r].s == NULL || (col->type != COL_INT && col->type != COL_DOUBLE))
				continue;
			n = col->type == COL_INT ? canon_fmt_int(col->i[r], buf) : canon_fmt_double(col->d[r], buf);
			if (n != col->v[r].len || memcmp(buf, col->v[r].s, n) != 0)
				abort();
		}
	}
}

static int fuzz_same(const struct table *a, const struct table *b)
{
	size_t c, r;

	if (a->ncols != b->ncols || a->nrows != b->nrows)
		return 0;
	for (c = 0; c < a->ncols; c++) {
		if (strcmp(a->cols[c].name, b->cols[c].name) != 0)
			return 0;
		for (r = 0; r < a->nrows; r++) {
			const struct tval *x = &a->cols[c].v[r], *y = &b->cols[c].v[r];
			if ((x->s == NULL) != (y->s == NULL) || x->len != y->len)
				return 0;
			if (x->s != NULL && memcmp(x->s, y->s, x->len) != 0)
				return 0;
		}
	}
	return 1;
}

/* Write t to the memfd and read the bytes back. */
static char *fuzz_write(const struct table *t, size_t *len)
{
	struct csv_wopts o = {',', 1, "\n"};
	off_t end;
	char *out;

	if (ftruncate(fuzz_fd, 0) < 0 || lseek(fuzz_fd, 0, SEEK_SET) < 0 || csv_format_fd(fuzz_fd, t, &o) < 0)
		abort();
	end = lseek(fuzz_fd, 0, SEEK_CUR);
	out = xmalloc((size_t)end + 1);
	if (pread(fuzz_fd, out, (size_t)end, 0) != end)
		abort();
	*len = (size_t)end;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct table *t = NULL, *t2 = NULL;
	struct csv_opts o;
	char err[512], *buf, *out;
	size_t outlen;

	if (fuzz_fd < 0 && (fuzz_fd = memfd_create("fuzz_csv", 0)) < 0)
		abort();
	buf = xmalloc(size + 1);
	memcpy(buf, data, size);
	csv_opts_default(&o);
	if (csv_parse("fuzz.csv", buf, size, &o, &t, err, sizeof(err)) != 0) {
		if (strncmp(err, "fuzz.csv:", 9) != 0 || strchr(err, '\n') != NULL)
			abort();
		free(buf);
		return 0;
	}
	fuzz_check_types(t);
	out = fuzz_write(t, &outlen);
	if (csv_parse("fuzz-out.csv", out, outlen, &o, &t2, err, sizeof(err)) != 0)
		abort(); /* our own output must parse */
	if (!fuzz_same(t, t2))
		abort();
	table_free(t2);
	table_free(t);
	free(out);
	free(buf);
	return 0;
}
