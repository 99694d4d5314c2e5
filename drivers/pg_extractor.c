/*
 * pg_extractor.c: postgres.extractor and supabase.extractor. `query` (or
 * `table` in `schema`) is read through a server-side cursor, batch_size
 * rows per FETCH, so neither libpq nor the worker holds more than one
 * batch besides the table being built. Text results, kept as they are
 * (numeric stays exact); booleans become true/false.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

#define PG_BOOLOID 16

struct pg_read {
	struct driver_ctx *ctx;
	PGconn *c;
	struct table *t;
	int *is_bool;
	int64_t rows;
};

/* The SELECT to declare the cursor for: `query` (its trailing ";" dropped)
 * or every column of schema.table. */
static char *pg_extractor_sql(struct driver_ctx *ctx, PGconn *c, const json_t *cfg)
{
	const char *q = NULL, *table = NULL, *schema = "public";
	char *qual, *out;
	size_t n;

	if (cfg_str(ctx, cfg, "query", &q) < 0 || cfg_str(ctx, cfg, "table", &table) < 0 ||
	    cfg_str(ctx, cfg, "schema", &schema) < 0)
		return NULL;
	if (q != NULL) {
		n = strlen(q);
		while (n > 0 && (q[n - 1] == ';' || q[n - 1] == ' ' || q[n - 1] == '\n' || q[n - 1] == '\t'))
			n--;
		xasprintf(&out, "DECLARE osiris_cur NO SCROLL CURSOR FOR %.*s", (int)n, q);
		return out;
	}
	if (table == NULL) {
		ctx_fail(ctx, "ConfigError", "'query' or 'table' is required");
		return NULL;
	}
	if ((qual = pg_qualified(ctx, c, schema, table)) == NULL)
		return NULL;
	xasprintf(&out, "DECLARE osiris_cur NO SCROLL CURSOR FOR SELECT * FROM %s", qual);
	free(qual);
	return out;
}

static void pg_extractor_columns(struct pg_read *r, PGresult *res)
{
	int i, n = PQnfields(res);

	r->t = table_new((size_t)n);
	r->is_bool = xcalloc((size_t)n + 1, sizeof(*r->is_bool));
	for (i = 0; i < n; i++) {
		table_set_name(r->t, (size_t)i, PQfname(res, i), strlen(PQfname(res, i)));
		r->is_bool[i] = PQftype(res, i) == PG_BOOLOID;
	}
}

static void pg_extractor_rows(struct pg_read *r, PGresult *res)
{
	int i, j, nr = PQntuples(res), nc = PQnfields(res);

	for (i = 0; i < nr; i++) {
		for (j = 0; j < nc; j++) {
			const char *v = PQgetvalue(res, i, j);
			size_t len = (size_t)PQgetlength(res, i, j);
			if (PQgetisnull(res, i, j))
				table_push(r->t, (size_t)j, NULL, 0);
			else if (r->is_bool[j])
				table_push(r->t, (size_t)j, v[0] == 't' ? "true" : "false", v[0] == 't' ? 4 : 5);
			else
				table_push(r->t, (size_t)j, table_strdup(r->t, v, len), len);
		}
	}
	r->rows += nr;
}

static int pg_extractor_fetch(struct pg_read *r, int64_t batch)
{
	char sql[64], err[512];
	PGresult *res;
	int n;

	snprintf(sql, sizeof(sql), "FETCH FORWARD %lld FROM osiris_cur", (long long)batch);
	for (;;) {
		if (ctx_cancelled(r->ctx))
			return ctx_fail(r->ctx, "Cancelled", "cancelled");
		res = PQexec(r->c, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			PQclear(res);
			return ctx_fail(r->ctx, PQstatus(r->c) == CONNECTION_OK ? "QueryError" : "ConnectionError",
			                "query: %s", pg_errline(r->c, err, sizeof(err)));
		}
		if (r->t == NULL)
			pg_extractor_columns(r, res);
		pg_extractor_rows(r, res);
		n = PQntuples(res);
		PQclear(res);
		if (n < batch)
			return 0;
	}
}

static int pg_extractor_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                            size_t ninputs, struct table **output)
{
	struct pg_read r;
	int64_t batch = 10000;
	char *sql;
	int rc = -1;

	(void)inputs;
	(void)input_names;
	(void)ninputs;
	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	if (cfg_int(ctx, cfg, "batch_size", &batch) < 0)
		return -1;
	if (batch < 1 || batch > 1000000)
		return ctx_fail(ctx, "ConfigError", "'batch_size' must be 1..1000000");
	if (pg_connect(ctx, cfg, &r.c) < 0)
		return -1;
	if ((sql = pg_extractor_sql(ctx, r.c, cfg)) != NULL && pg_exec(ctx, r.c, "BEGIN READ ONLY", "begin") == 0 &&
	    pg_exec(ctx, r.c, sql, "query") == 0 && pg_extractor_fetch(&r, batch) == 0)
		rc = pg_exec(ctx, r.c, "COMMIT", "commit");
	free(sql);
	PQfinish(r.c);
	free(r.is_bool);
	if (rc < 0) {
		table_free(r.t);
		return -1;
	}
	table_finish(r.t);
	*output = r.t;
	ctx->rows_read = r.rows;
	ctx_log(ctx, LOG_LVL_INFO, "read %lld rows, %zu columns", (long long)r.rows, r.t->ncols);
	ctx_log(ctx, LOG_LVL_DEBUG, "the table holds %zu bytes", table_mem_bytes(r.t));
	return 0;
}

const struct driver_ops driver_pg_extractor = {
    .name = "postgres.extractor",
    .run = pg_extractor_run,
    .keys = pg_extractor_keys,
};

const struct driver_ops driver_supabase_extractor = {
    .name = "supabase.extractor",
    .run = pg_extractor_run,
    .keys = pg_extractor_keys,
};
