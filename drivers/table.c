/*
 * table.c: the columnar table passed between steps. Values are text slices
 * (into adopted buffers or table-owned slabs, never one malloc per field)
 * plus typed arrays filled by lossless type inference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "drivers.h"

#define TABLE_SLAB_MIN (256 * 1024)

struct table_slab {
	struct table_slab *next;
	size_t used, cap;
	char data[];
};

struct table *table_new(size_t ncols)
{
	struct table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	t->cols = xcalloc(ncols ? ncols : 1, sizeof(*t->cols));
	return t;
}

size_t table_add_column(struct table *t, const char *name, size_t len)
{
	t->cols = xreallocarray(t->cols, t->ncols + 1, sizeof(*t->cols));
	memset(&t->cols[t->ncols], 0, sizeof(*t->cols));
	table_set_name(t, t->ncols, name, len);
	return t->ncols++;
}

void table_free(struct table *t)
{
	struct table_slab *s, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncols; i++) {
		struct column *c = &t->cols[i];
		free(c->name);
		free(c->v);
		free(c->nulls);
		free(c->i);
		free(c->d);
	}
	free(t->cols);
	for (s = t->slabs; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	for (i = 0; i < t->nblocks; i++) {
		if (t->blocks[i].maplen)
			munmap(t->blocks[i].p, t->blocks[i].maplen);
		else
			free(t->blocks[i].p);
	}
	free(t->blocks);
	free(t);
}

void table_set_name(struct table *t, size_t col, const char *name, size_t len)
{
	free(t->cols[col].name);
	t->cols[col].name = xstrndup(name, len);
}

const char *table_strdup(struct table *t, const char *s, size_t len)
{
	struct table_slab *slab = t->slabs;
	char *p;

	if (slab == NULL || slab->cap - slab->used < len) {
		size_t cap = len > TABLE_SLAB_MIN ? len : TABLE_SLAB_MIN;
		slab = xmalloc(sizeof(*slab) + cap);
		slab->cap = cap;
		slab->used = 0;
		slab->next = t->slabs;
		t->slabs = slab;
	}
	p = slab->data + slab->used;
	if (len > 0)
		memcpy(p, s, len);
	slab->used += len;
	return p;
}

static void table_block_add(struct table *t, void *p, size_t maplen)
{
	t->blocks = xreallocarray(t->blocks, t->nblocks + 1, sizeof(*t->blocks));
	t->blocks[t->nblocks].p = p;
	t->blocks[t->nblocks++].maplen = maplen;
}

void table_adopt(struct table *t, void *block)
{
	table_block_add(t, block, 0);
}

void table_adopt_map(struct table *t, void *map, size_t len)
{
	if (len == 0)
		return;
	table_block_add(t, map, len);
}

/*
 * Big arrays (the values of a 100 MB extract are hundreds of MB) are
 * asked for transparent huge pages: first touches of fresh memory are what
 * a column costs (one fault per 4 KiB page, dear under virtualisation),
 * and a 2 MiB page takes one. Advice only: without THP nothing changes.
 */
#define TABLE_HUGE_MIN (4u << 20)
#define TABLE_HUGE_ALIGN ((uintptr_t)2 << 20)

static void table_huge(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + TABLE_HUGE_ALIGN - 1) & ~(TABLE_HUGE_ALIGN - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(TABLE_HUGE_ALIGN - 1);

	if (len >= TABLE_HUGE_MIN && e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

static void table_column_resize(struct column *c, size_t ncap)
{
	size_t oldw = (c->cap + 63) / 64, neww = (ncap + 63) / 64;

	c->v = xreallocarray(c->v, ncap, sizeof(*c->v));
	table_huge(c->v, ncap * sizeof(*c->v));
	c->nulls = xreallocarray(c->nulls, neww, sizeof(*c->nulls));
	memset(c->nulls + oldw, 0, (neww - oldw) * sizeof(*c->nulls));
	c->cap = ncap;
}

void table_column_grow(struct column *c)
{
	table_column_resize(c, c->cap ? c->cap * 2 : 1024);
}

void table_reserve(struct table *t, size_t rows)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		if (t->cols[i].cap < rows)
			table_column_resize(&t->cols[i], rows);
}

int table_is_null(const struct table *t, size_t col, size_t row)
{
	const struct column *c = &t->cols[col];

	return (c->nulls[row / 64] >> (row % 64)) & 1;
}

const char *col_type_name(enum col_type type)
{
	switch (type) {
	case COL_NULL:
		return "null";
	case COL_BOOL:
		return "bool";
	case COL_INT:
		return "int64";
	case COL_DOUBLE:
		return "double";
	case COL_TEXT:
		return "text";
	}
	return "?";
}

/*
 * Decide a column's type in one pass, keeping the values parsed on the way
 * (a value is never both a canonical int and a bool); stops looking once no
 * typed reading fits. The arrays are calloc'd: pages never written cost
 * nothing, and the unused one is dropped at the end.
 */
static void table_column_infer(struct column *c)
{
	int can_int = 1, can_dbl = 1, can_bool = 1, any = 0;
	size_t r, n = c->n ? c->n : 1;

	c->i = xcalloc(n, sizeof(*c->i));
	c->d = xcalloc(n, sizeof(*c->d));
	table_huge(c->i, n * sizeof(*c->i));
	table_huge(c->d, n * sizeof(*c->d));
	for (r = 0; r < c->n && (can_int || can_dbl || can_bool); r++) {
		const struct tval *v = &c->v[r];
		int ci = 0, b = 0;

		if (v->s == NULL)
			continue;
		any = 1;
		if (can_int)
			can_int = ci = canon_int(v->s, v->len, &c->i[r]);
		if (can_dbl) {
			/* a canonical int of <= 15 digits is a canonical double */
			if (ci && v->len <= 15)
				c->d[r] = (double)c->i[r];
			else
				can_dbl = canon_double(v->s, v->len, &c->d[r]);
		}
		if (can_bool && !ci) {
			can_bool = canon_bool(v->s, v->len, &b);
			c->i[r] = b;
		} else {
			can_bool = 0;
		}
	}
	c->type = !any ? COL_NULL : can_int ? COL_INT : can_dbl ? COL_DOUBLE : can_bool ? COL_BOOL : COL_TEXT;
	if (c->type != COL_INT && c->type != COL_BOOL) {
		free(c->i);
		c->i = NULL;
	}
	if (c->type != COL_DOUBLE) {
		free(c->d);
		c->d = NULL;
	}
}

void table_infer_types(struct table *t)
{
	size_t i;

	for (i = 0; i < t->ncols; i++) {
		struct column *c = &t->cols[i];
		free(c->i);
		free(c->d);
		c->i = NULL;
		c->d = NULL;
		table_column_infer(c);
	}
}

void table_finish(struct table *t)
{
	size_t i;

	t->nrows = t->ncols ? t->cols[0].n : 0;
	for (i = 0; i < t->ncols; i++) {
		if (t->cols[i].n != t->nrows)
			fatalx("table_finish: column %zu has %zu rows, expected %zu", i, t->cols[i].n, t->nrows);
		if (t->cols[i].nulls == NULL)
			t->cols[i].nulls = xcalloc(1, sizeof(uint64_t));
		if (t->cols[i].name == NULL)
			t->cols[i].name = xstrdup("");
	}
	table_infer_types(t);
}

size_t table_mem_bytes(const struct table *t)
{
	const struct table_slab *s;
	size_t i, n = sizeof(*t) + t->ncols * sizeof(*t->cols) + t->nblocks * sizeof(*t->blocks);

	for (i = 0; i < t->ncols; i++) {
		const struct column *c = &t->cols[i];
		n += c->cap * sizeof(*c->v) + (c->cap + 63) / 64 * sizeof(*c->nulls);
		n += (c->i != NULL ? c->n * sizeof(*c->i) : 0) + (c->d != NULL ? c->n * sizeof(*c->d) : 0);
	}
	for (s = t->slabs; s != NULL; s = s->next)
		n += sizeof(*s) + s->cap;
	for (i = 0; i < t->nblocks; i++)
		n += t->blocks[i].maplen;
	return n;
}
