/*
 * pg_writer.c: postgres.writer and supabase.writer. Every mode is one
 * transaction: the input is COPYed into a temporary table shaped like the
 * target's columns, then merged (append/insert: INSERT; upsert: INSERT ..
 * ON CONFLICT (primary_key) DO UPDATE; replace: delete the rows whose key
 * is not in the input, then upsert). A failure, a cancel or a cut
 * connection rolls all of it back; a retry starts over.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

#define PGW_COPY_CHUNK (256 * 1024)

struct pgw {
	struct driver_ctx *ctx;
	const json_t *cfg;
	const struct table *t;
	PGconn *c;
	struct cfg_writer o;
	const char *schema;
	char *qual; /* "schema"."table" */
	char *cols; /* "a", "b", ... */
};

static const char *pgw_sqltype(enum col_type t)
{
	switch (t) {
	case COL_INT:
		return "bigint";
	case COL_DOUBLE:
		return "double precision";
	case COL_BOOL:
		return "boolean";
	default:
		return "text";
	}
}

/* A list of quoted identifiers joined by sep, each as pre<q>, or with mid
 * as pre<q>mid<q> ("x = EXCLUDED.x", "s.x = t.x"). */
static char *pgw_list(struct pgw *w, const char *const *names, size_t n, const char *pre, const char *mid,
                      const char *sep)
{
	struct buf b;
	size_t i;
	char *q;

	buf_init(&b);
	for (i = 0; i < n; i++) {
		q = pg_ident(w->c, names[i]);
		if (i > 0)
			buf_adds(&b, sep);
		buf_adds(&b, pre);
		buf_adds(&b, q);
		if (mid != NULL) {
			buf_adds(&b, mid);
			buf_adds(&b, q);
		}
		free(q);
	}
	return buf_cstr(&b);
}

static char *pgw_create_sql(struct pgw *w)
{
	struct buf b;
	size_t i;
	char *q, *pk;

	buf_init(&b);
	buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (", w->qual);
	for (i = 0; i < w->t->ncols; i++) {
		q = pg_ident(w->c, w->t->cols[i].name);
		buf_printf(&b, "%s%s %s", i ? ", " : "", q, pgw_sqltype(w->t->cols[i].type));
		free(q);
	}
	if (w->o.npk > 0) {
		pk = pgw_list(w, w->o.pk, w->o.npk, "", NULL, ", ");
		buf_printf(&b, ", PRIMARY KEY (%s)", pk);
		free(pk);
	}
	buf_adds(&b, ")");
	return buf_cstr(&b);
}

/* One value in COPY text format. */
static void pgw_copy_value(struct buf *b, const struct tval *v)
{
	uint32_t i;

	if (v->s == NULL) {
		buf_add(b, "\\N", 2);
		return;
	}
	buf_reserve(b, (size_t)v->len * 2);
	for (i = 0; i < v->len; i++) {
		char ch = v->s[i];
		switch (ch) {
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		default:
			b->data[b->len++] = (uint8_t)ch;
		}
	}
}

static int pgw_copy_put(struct pgw *w, struct buf *b)
{
	char err[512];

	if (b->len > 0 && PQputCopyData(w->c, (const char *)b->data, (int)b->len) != 1)
		return ctx_fail(w->ctx, "ConnectionError", "copy: %s", pg_errline(w->c, err, sizeof(err)));
	buf_reset(b);
	return 0;
}

static int pgw_copy_end(struct pgw *w, const char *abort_msg)
{
	PGresult *res;
	char err[512];
	int ok;

	if (PQputCopyEnd(w->c, abort_msg) != 1)
		return ctx_fail(w->ctx, "ConnectionError", "copy: %s", pg_errline(w->c, err, sizeof(err)));
	res = PQgetResult(w->c);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	while ((res = PQgetResult(w->c)) != NULL)
		PQclear(res);
	if (abort_msg != NULL)
		return ctx_fail(w->ctx, "Cancelled", "cancelled");
	if (!ok)
		return ctx_fail(w->ctx, PQstatus(w->c) == CONNECTION_OK ? "QueryError" : "ConnectionError", "copy: %s",
		                pg_errline(w->c, err, sizeof(err)));
	return 0;
}

/* COPY the input into osiris_stage, in chunks of PGW_COPY_CHUNK bytes. */
static int pgw_copy(struct pgw *w)
{
	const struct table *t = w->t;
	struct buf b;
	size_t r, i;
	char *sql;
	PGresult *res;
	char err[512];
	int ok;

	xasprintf(&sql, "COPY osiris_stage (%s) FROM STDIN", w->cols);
	res = PQexec(w->c, sql);
	free(sql);
	ok = PQresultStatus(res) == PGRES_COPY_IN;
	PQclear(res);
	if (!ok)
		return ctx_fail(w->ctx, "QueryError", "copy: %s", pg_errline(w->c, err, sizeof(err)));
	buf_init(&b);
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			if (i > 0)
				buf_addc(&b, '\t');
			pgw_copy_value(&b, &t->cols[i].v[r]);
		}
		buf_addc(&b, '\n');
		if (b.len >= PGW_COPY_CHUNK && pgw_copy_put(w, &b) < 0)
			break;
		if (r % 8192 == 8191 && ctx_cancelled(w->ctx)) {
			buf_free(&b);
			return pgw_copy_end(w, "cancelled");
		}
	}
	ok = r == t->nrows && pgw_copy_put(w, &b) == 0;
	buf_free(&b);
	return ok ? pgw_copy_end(w, NULL) : -1;
}

static char *pgw_merge_sql(struct pgw *w)
{
	const char **rest = xcalloc(w->t->ncols + 1, sizeof(*rest));
	char *pk, *set, *out;
	size_t i, j, n = 0;

	for (i = 0; i < w->t->ncols; i++) {
		for (j = 0; j < w->o.npk && strcmp(w->o.pk[j], w->t->cols[i].name) != 0; j++)
			;
		if (j == w->o.npk)
			rest[n++] = w->t->cols[i].name;
	}
	if (w->o.mode == WRITE_APPEND) {
		xasprintf(&out, "INSERT INTO %s (%s) SELECT %s FROM osiris_stage", w->qual, w->cols, w->cols);
	} else {
		pk = pgw_list(w, w->o.pk, w->o.npk, "", NULL, ", ");
		set = pgw_list(w, rest, n, "", " = EXCLUDED.", ", ");
		xasprintf(&out, "INSERT INTO %s (%s) SELECT %s FROM osiris_stage ON CONFLICT (%s) DO %s%s", w->qual,
		          w->cols, w->cols, pk, n ? "UPDATE SET " : "NOTHING", set);
		free(pk);
		free(set);
	}
	free(rest);
	return out;
}

/* replace: the rows whose key the input lacks go, in the same transaction. */
static int pgw_replace_delete(struct pgw *w)
{
	char *on = pgw_list(w, w->o.pk, w->o.npk, "s.", " = t.", " AND "), *sql;
	int rc;

	xasprintf(&sql, "DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM osiris_stage s WHERE %s)", w->qual, on);
	rc = pg_exec(w->ctx, w->c, sql, "replace");
	free(sql);
	free(on);
	return rc;
}

static int pgw_sql(struct pgw *w, char *sql, const char *what)
{
	int rc = pg_exec(w->ctx, w->c, sql, what);

	free(sql);
	return rc;
}

/* One attempt: everything or nothing. */
static int pgw_attempt(void *arg)
{
	struct pgw *w = arg;
	char *sql;

	if (pg_connect(w->ctx, w->cfg, &w->c) < 0)
		return -1;
	free(w->qual);
	free(w->cols);
	w->cols = NULL;
	if ((w->qual = pg_qualified(w->ctx, w->c, w->schema, w->o.table)) == NULL)
		return -1;
	{
		const char **names = xcalloc(w->t->ncols + 1, sizeof(*names));
		size_t i;
		for (i = 0; i < w->t->ncols; i++)
			names[i] = w->t->cols[i].name;
		w->cols = pgw_list(w, names, w->t->ncols, "", NULL, ", ");
		free(names);
	}
	if (pg_exec(w->ctx, w->c, "BEGIN", "begin") < 0)
		return -1;
	if (w->o.create && pgw_sql(w, pgw_create_sql(w), "create table") < 0)
		return -1;
	xasprintf(&sql, "CREATE TEMP TABLE osiris_stage ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA", w->cols,
	          w->qual);
	if (pgw_sql(w, sql, "stage") < 0 || pgw_copy(w) < 0)
		return -1;
	if (w->o.mode == WRITE_REPLACE && pgw_replace_delete(w) < 0)
		return -1;
	if (pgw_sql(w, pgw_merge_sql(w), w->o.mode == WRITE_APPEND ? "insert" : "upsert") < 0)
		return -1;
	return pg_exec(w->ctx, w->c, "COMMIT", "commit");
}

static int pgw_config(struct pgw *w)
{
	w->schema = "public";
	if (cfg_writer(w->ctx, w->cfg, w->t, &w->o) < 0 || cfg_str(w->ctx, w->cfg, "schema", &w->schema) < 0)
		return -1;
	return 0;
}

static void pgw_close(void *arg)
{
	struct pgw *w = arg;

	PQfinish(w->c);
	w->c = NULL;
}

static int pg_writer_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                         size_t ninputs, struct table **output)
{
	struct pgw w;
	int rc = -1;

	(void)input_names;
	(void)output;
	memset(&w, 0, sizeof(w));
	w.ctx = ctx;
	w.cfg = cfg;
	w.t = ninputs > 0 ? inputs[0] : NULL;
	if (pgw_config(&w) < 0)
		goto out;
	if ((rc = ctx_retry(ctx, w.o.retries, pgw_attempt, pgw_close, &w)) == 0) {
		ctx->rows_written = (int64_t)w.t->nrows;
		ctx_log(ctx, LOG_LVL_INFO, "wrote %zu rows to %s.%s", w.t->nrows, w.schema, w.o.table);
	}
out:
	cfg_writer_free(&w.o);
	free(w.qual);
	free(w.cols);
	return rc;
}

const struct driver_ops driver_pg_writer = {
    .name = "postgres.writer",
    .run = pg_writer_run,
    .keys = pg_writer_keys,
};

const struct driver_ops driver_supabase_writer = {
    .name = "supabase.writer",
    .run = pg_writer_run,
    .keys = pg_writer_keys,
};
