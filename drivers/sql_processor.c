/*
 * sql_processor.c: duckdb.processor, with SQLite as the engine. Every input
 * becomes a table named by its input name (df_<upstream>) in a private
 * in-memory database, the `query` runs, and its result is the output table.
 *
 * SQLite vs DuckDB, the differences a pipeline author meets (also in
 * drivers/README.md):
 *  - Types are per value (dynamic typing with column affinity): int64 ->
 *    INTEGER, double -> REAL, text -> TEXT, bool -> BOOLEAN (stored 0/1,
 *    rendered back as true/false when a result column is a plain reference
 *    to a BOOLEAN column), all-NULL columns have no declared type.
 *  - Integer division truncates (7/2 = 3); DuckDB's `/` is float division.
 *    Write 7.0/2 or CAST(x AS REAL).
 *  - No DuckDB-only syntax or functions: no QUALIFY, no `SELECT * EXCLUDE`,
 *    no `::` casts (use CAST), no list/struct types, no read_csv()/
 *    read_parquet(); strftime/date functions follow SQLite's signatures;
 *    string concatenation is `||` in both; ILIKE does not exist (LIKE is
 *    case-insensitive for ASCII in SQLite).
 *  - Identifiers are case-insensitive; quote unusual column names with "".
 *  - Several statements separated by ';' run in order; the last one's rows
 *    are the output.
 *  - ATTACH (and VACUUM INTO) are refused: the query cannot touch files.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drivers.h"

#define SQL_CANCEL_EVERY 4096

static const char *const sql_processor_keys[] = {"query", NULL};

static void sql_ident(struct buf *b, const char *name)
{
	buf_addc(b, '"');
	for (; *name != '\0'; name++) {
		if (*name == '"')
			buf_addc(b, '"');
		buf_addc(b, *name);
	}
	buf_addc(b, '"');
}

static const char *sql_decl_type(enum col_type t)
{
	switch (t) {
	case COL_INT:
		return " INTEGER";
	case COL_DOUBLE:
		return " REAL";
	case COL_BOOL:
		return " BOOLEAN";
	case COL_TEXT:
		return " TEXT";
	case COL_NULL:
		break;
	}
	return "";
}

static int sql_fail(struct driver_ctx *ctx, sqlite3 *db, const char *what)
{
	if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
		return ctx_fail(ctx, "Cancelled", "cancelled");
	return ctx_fail(ctx, "SQLError", "%s: %s", what, sqlite3_errmsg(db));
}

static int sql_exec(struct driver_ctx *ctx, sqlite3 *db, const char *sql, const char *what)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sql_fail(ctx, db, what);
	return 0;
}

static int sql_create(struct driver_ctx *ctx, sqlite3 *db, const char *name, const struct table *t)
{
	struct buf b;
	size_t c;
	int rc;

	buf_init(&b);
	buf_adds(&b, "CREATE TABLE ");
	sql_ident(&b, name);
	buf_adds(&b, " (");
	for (c = 0; c < t->ncols; c++) {
		if (c > 0)
			buf_adds(&b, ", ");
		sql_ident(&b, t->cols[c].name);
		buf_adds(&b, sql_decl_type(t->cols[c].type));
	}
	buf_adds(&b, ")");
	rc = sql_exec(ctx, db, buf_cstr(&b), name);
	buf_free(&b);
	return rc;
}

static void sql_bind_value(sqlite3_stmt *st, const struct column *col, size_t r, int idx)
{
	const struct tval *v = &col->v[r];

	if (v->s == NULL) {
		sqlite3_bind_null(st, idx);
		return;
	}
	switch (col->type) {
	case COL_INT:
	case COL_BOOL:
		sqlite3_bind_int64(st, idx, col->i[r]);
		break;
	case COL_DOUBLE:
		sqlite3_bind_double(st, idx, col->d[r]);
		break;
	default:
		sqlite3_bind_text(st, idx, v->s, (int)v->len, SQLITE_STATIC);
		break;
	}
}

/* One prepared INSERT, all rows in one transaction. */
static int sql_insert_rows(struct driver_ctx *ctx, sqlite3 *db, const char *name, const struct table *t)
{
	sqlite3_stmt *st = NULL;
	struct buf b;
	size_t r, c;
	int rc = 0;

	if (t->ncols == 0)
		return 0;
	buf_init(&b);
	buf_adds(&b, "INSERT INTO ");
	sql_ident(&b, name);
	buf_adds(&b, " VALUES (");
	for (c = 0; c < t->ncols; c++)
		buf_adds(&b, c ? ",?" : "?");
	buf_adds(&b, ")");
	if (sqlite3_prepare_v2(db, buf_cstr(&b), -1, &st, NULL) != SQLITE_OK)
		rc = sql_fail(ctx, db, name);
	buf_free(&b);
	for (r = 0; rc == 0 && r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++)
			sql_bind_value(st, &t->cols[c], r, (int)c + 1);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = sql_fail(ctx, db, name);
		sqlite3_reset(st);
		if (r % SQL_CANCEL_EVERY == 0 && ctx_cancelled(ctx))
			rc = ctx_fail(ctx, "Cancelled", "cancelled");
	}
	sqlite3_finalize(st);
	return rc;
}

static int sql_load(struct driver_ctx *ctx, sqlite3 *db, struct table **inputs, const char **names, size_t n)
{
	size_t i;

	if (sql_exec(ctx, db, "BEGIN", "begin") < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (inputs[i] == NULL)
			continue;
		if (sql_create(ctx, db, names[i], inputs[i]) < 0 || sql_insert_rows(ctx, db, names[i], inputs[i]) < 0)
			return -1;
	}
	return sql_exec(ctx, db, "COMMIT", "commit");
}

#define SQL_SAW_TEXT 1
#define SQL_SAW_FLOAT 2

static void sql_push_value(struct table *t, sqlite3_stmt *st, int c, int is_bool, int *saw)
{
	char num[32];
	size_t n;

	switch (sqlite3_column_type(st, c)) {
	case SQLITE_NULL:
		table_push(t, (size_t)c, NULL, 0);
		return;
	case SQLITE_INTEGER: {
		sqlite3_int64 v = sqlite3_column_int64(st, c);
		if (is_bool && (v == 0 || v == 1))
			n = (size_t)snprintf(num, sizeof(num), "%s", v ? "true" : "false");
		else
			n = canon_fmt_int(v, num);
		break;
	}
	case SQLITE_FLOAT:
		*saw |= SQL_SAW_FLOAT;
		n = canon_fmt_double(sqlite3_column_double(st, c), num);
		break;
	default: {
		const char *s = (const char *)sqlite3_column_text(st, c);
		int len = sqlite3_column_bytes(st, c);
		*saw |= SQL_SAW_TEXT;
		table_push(t, (size_t)c, table_strdup(t, s ? s : "", (size_t)len), (size_t)len);
		return;
	}
	}
	table_push(t, (size_t)c, table_strdup(t, num, n), n);
}

/* The column's type follows SQLite's value types where text inference
 * would differ: SQL text stays text even if it looks numeric, and a REAL
 * column whose values happen to be integral (SUM of 5.5 and 4.5) stays a
 * double. Both keep the text as rendered. */
static void sql_fix_types(struct table *t, const int *saw)
{
	struct column *col;
	size_t c, r;

	for (c = 0; c < t->ncols; c++) {
		col = &t->cols[c];
		if ((saw[c] & SQL_SAW_TEXT) && col->type != COL_TEXT && col->type != COL_NULL) {
			free(col->i);
			free(col->d);
			col->i = NULL;
			col->d = NULL;
			col->type = COL_TEXT;
		} else if ((saw[c] & SQL_SAW_FLOAT) && col->type == COL_INT) {
			col->d = xcalloc(col->n ? col->n : 1, sizeof(*col->d));
			for (r = 0; r < col->n; r++)
				col->d[r] = (double)col->i[r];
			free(col->i);
			col->i = NULL;
			col->type = COL_DOUBLE;
		}
	}
}

static int sql_collect(struct driver_ctx *ctx, sqlite3 *db, sqlite3_stmt *st, struct table **out)
{
	int ncols = sqlite3_column_count(st), c, rc;
	struct table *t = table_new((size_t)ncols);
	int *is_bool = xcalloc((size_t)ncols + 1, sizeof(int));
	int *saw = xcalloc((size_t)ncols + 1, sizeof(int));

	for (c = 0; c < ncols; c++) {
		const char *nm = sqlite3_column_name(st, c), *dt = sqlite3_column_decltype(st, c);
		table_set_name(t, (size_t)c, nm ? nm : "", nm ? strlen(nm) : 0);
		is_bool[c] = dt != NULL && strcasecmp(dt, "BOOLEAN") == 0;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (c = 0; c < ncols; c++)
			sql_push_value(t, st, c, is_bool[c], &saw[c]);
	}
	if (rc != SQLITE_DONE) {
		free(is_bool);
		free(saw);
		table_free(t);
		return sql_fail(ctx, db, "query");
	}
	table_finish(t);
	sql_fix_types(t, saw);
	free(is_bool);
	free(saw);
	*out = t;
	return 0;
}

static int sql_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != ';')
			return 0;
	return 1;
}

/* Run every statement; the last one's rows are the output. */
static int sql_query(struct driver_ctx *ctx, sqlite3 *db, const char *query, struct table **out)
{
	const char *p = query, *tail;
	sqlite3_stmt *st;
	int rc;

	for (;;) {
		if (sqlite3_prepare_v2(db, p, -1, &st, &tail) != SQLITE_OK)
			return sql_fail(ctx, db, "query");
		if (st == NULL)
			return ctx_fail(ctx, "SQLError", "query: no SQL statement");
		if (tail == NULL || sql_blank(tail))
			break;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return sql_fail(ctx, db, "query");
		p = tail;
	}
	rc = sql_collect(ctx, db, st, out);
	sqlite3_finalize(st);
	return rc;
}

static int sql_progress_cb(void *arg)
{
	return ctx_cancelled(arg);
}

static sqlite3 *sql_open(struct driver_ctx *ctx)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		ctx_fail(ctx, "SQLError", "sqlite: %s", db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	/* no files: no ATTACH, hence no VACUUM INTO either */
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_progress_handler(db, 100000, sql_progress_cb, ctx);
	return db;
}

static int sql_processor_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                             size_t ninputs, struct table **output)
{
	const char *query;
	sqlite3 *db;
	int64_t in = 0;
	size_t i;
	int rc;

	if ((rc = cfg_str(ctx, cfg, "query", &query)) != 0)
		return rc < 0 ? -1 : ctx_fail(ctx, "ConfigError", "'query' is required");
	if ((db = sql_open(ctx)) == NULL)
		return -1;
	rc = sql_load(ctx, db, inputs, input_names, ninputs);
	if (rc == 0)
		rc = sql_query(ctx, db, query, output);
	sqlite3_close(db);
	if (rc < 0)
		return -1;
	for (i = 0; i < ninputs; i++)
		in += inputs[i] ? (int64_t)inputs[i]->nrows : 0;
	ctx->rows_read = in;
	ctx->rows_written = (int64_t)(*output)->nrows;
	ctx_log(ctx, LOG_LVL_INFO, "query returned %zu rows, %zu columns from %zu input tables", (*output)->nrows,
	        (*output)->ncols, ninputs);
	return 0;
}

const struct driver_ops driver_sql_processor = {
    .name = "duckdb.processor",
    .run = sql_processor_run,
    .keys = sql_processor_keys,
};
