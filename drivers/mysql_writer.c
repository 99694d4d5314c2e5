/*
 * mysql_writer.c: mysql.writer (libmariadb; Osiris has its spec, no driver).
 * The modes of postgres.writer, atomic the same way: one InnoDB transaction
 * loads the input into a temporary table (multi-row INSERTs of about 1 MiB)
 * and merges it (append: INSERT .. SELECT; upsert: .. ON DUPLICATE KEY
 * UPDATE; replace: delete the rows whose key the input lacks, then upsert).
 * CREATE TABLE (create_if_missing) commits implicitly in MySQL, so it runs
 * before the transaction; it is idempotent on its own.
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

#define MYW_STMT_BYTES (1024 * 1024)

struct myw {
	struct driver_ctx *ctx;
	const json_t *cfg;
	const struct table *t;
	MYSQL *m;
	struct cfg_writer o;
	char *qual, *cols;
};

/* `name` with backticks doubled. */
static void myw_ident(struct buf *b, const char *name)
{
	buf_addc(b, '`');
	for (; *name != '\0'; name++) {
		if (*name == '`')
			buf_addc(b, '`');
		buf_addc(b, *name);
	}
	buf_addc(b, '`');
}

static int myw_is_pk(const struct myw *w, const char *name)
{
	size_t i;

	for (i = 0; i < w->o.npk; i++)
		if (strcmp(w->o.pk[i], name) == 0)
			return 1;
	return 0;
}

static int myw_exec(struct myw *w, const char *sql, size_t len, const char *what)
{
	if (mysql_real_query(w->m, sql, len) == 0)
		return 0;
	return ctx_fail(w->ctx, mysql_errno(w->m) >= 2000 ? "ConnectionError" : "QueryError", "%s: %s", what,
	                mysql_error(w->m));
}

static int myw_execb(struct myw *w, struct buf *b, const char *what)
{
	int rc = myw_exec(w, (const char *)b->data, b->len, what);

	buf_free(b);
	return rc;
}

static const char *myw_sqltype(const struct myw *w, const struct column *c)
{
	switch (c->type) {
	case COL_INT:
		return "BIGINT";
	case COL_DOUBLE:
		return "DOUBLE";
	case COL_BOOL:
		return "BOOLEAN";
	default:
		/* a key cannot be an unbounded TEXT */
		return myw_is_pk(w, c->name) ? "VARCHAR(255)" : "LONGTEXT";
	}
}

static int myw_create(struct myw *w)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (", w->qual);
	for (i = 0; i < w->t->ncols; i++) {
		if (i > 0)
			buf_adds(&b, ", ");
		myw_ident(&b, w->t->cols[i].name);
		buf_printf(&b, " %s", myw_sqltype(w, &w->t->cols[i]));
	}
	for (i = 0; i < w->o.npk; i++) {
		buf_adds(&b, i ? ", " : ", PRIMARY KEY (");
		myw_ident(&b, w->o.pk[i]);
	}
	buf_adds(&b, w->o.npk ? ")) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" : ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
	return myw_execb(w, &b, "create table");
}

static void myw_value(struct myw *w, struct buf *b, const struct column *c, size_t r)
{
	const struct tval *v = &c->v[r];

	if (v->s == NULL) {
		buf_adds(b, "NULL");
	} else if (c->type == COL_BOOL) {
		buf_addc(b, c->i[r] ? '1' : '0');
	} else {
		buf_reserve(b, (size_t)v->len * 2 + 3);
		b->data[b->len++] = '\'';
		b->len += mysql_real_escape_string(w->m, (char *)b->data + b->len, v->s, v->len);
		b->data[b->len++] = '\'';
	}
}

/* The input into osiris_stage, about MYW_STMT_BYTES per INSERT. */
static int myw_load(struct myw *w)
{
	const struct table *t = w->t;
	struct buf b;
	size_t r, i, head;

	buf_init(&b);
	buf_adds(&b, "INSERT INTO osiris_stage (");
	buf_adds(&b, w->cols);
	buf_adds(&b, ") VALUES ");
	head = b.len;
	for (r = 0; r < t->nrows; r++) {
		buf_adds(&b, b.len > head ? ",(" : "(");
		for (i = 0; i < t->ncols; i++) {
			if (i > 0)
				buf_addc(&b, ',');
			myw_value(w, &b, &t->cols[i], r);
		}
		buf_addc(&b, ')');
		if (b.len >= MYW_STMT_BYTES || r + 1 == t->nrows) {
			if (myw_exec(w, (const char *)b.data, b.len, "load") < 0) {
				buf_free(&b);
				return -1;
			}
			b.len = head;
			if (ctx_cancelled(w->ctx)) {
				buf_free(&b);
				return ctx_fail(w->ctx, "Cancelled", "cancelled");
			}
		}
	}
	buf_free(&b);
	return 0;
}

static int myw_merge(struct myw *w)
{
	struct buf b;
	size_t i, n = 0;

	if (w->o.mode == WRITE_REPLACE) {
		buf_init(&b);
		buf_printf(&b, "DELETE t FROM %s t LEFT JOIN osiris_stage s ON ", w->qual);
		for (i = 0; i < w->o.npk; i++) {
			buf_adds(&b, i ? " AND s." : "s.");
			myw_ident(&b, w->o.pk[i]);
			buf_adds(&b, " = t.");
			myw_ident(&b, w->o.pk[i]);
		}
		buf_adds(&b, " WHERE s.");
		myw_ident(&b, w->o.pk[0]);
		buf_adds(&b, " IS NULL");
		if (myw_execb(w, &b, "replace") < 0)
			return -1;
	}
	buf_init(&b);
	buf_printf(&b, "INSERT INTO %s (%s) SELECT %s FROM osiris_stage", w->qual, w->cols, w->cols);
	for (i = 0; w->o.mode != WRITE_APPEND && i < w->t->ncols; i++) {
		if (myw_is_pk(w, w->t->cols[i].name))
			continue;
		buf_adds(&b, n++ ? ", " : " ON DUPLICATE KEY UPDATE ");
		myw_ident(&b, w->t->cols[i].name);
		buf_adds(&b, " = VALUES(");
		myw_ident(&b, w->t->cols[i].name);
		buf_addc(&b, ')');
	}
	if (w->o.mode != WRITE_APPEND && n == 0) {
		buf_adds(&b, " ON DUPLICATE KEY UPDATE ");
		myw_ident(&b, w->o.pk[0]);
		buf_adds(&b, " = ");
		myw_ident(&b, w->o.pk[0]);
	}
	return myw_execb(w, &b, w->o.mode == WRITE_APPEND ? "insert" : "upsert");
}

static int myw_attempt(void *arg)
{
	struct myw *w = arg;
	struct buf b;
	size_t i;

	if (mysqlc_connect(w->ctx, w->cfg, &w->m) < 0)
		return -1;
	free(w->qual);
	free(w->cols);
	buf_init(&b);
	myw_ident(&b, w->o.table);
	w->qual = buf_cstr(&b);
	buf_init(&b);
	for (i = 0; i < w->t->ncols; i++) {
		if (i > 0)
			buf_adds(&b, ", ");
		myw_ident(&b, w->t->cols[i].name);
	}
	w->cols = buf_cstr(&b);
	if (w->o.create && myw_create(w) < 0)
		return -1;
	buf_init(&b);
	buf_printf(&b, "CREATE TEMPORARY TABLE osiris_stage ENGINE=InnoDB AS SELECT %s FROM %s LIMIT 0", w->cols,
	           w->qual);
	if (myw_exec(w, "START TRANSACTION", 17, "begin") < 0 || myw_execb(w, &b, "stage") < 0 || myw_load(w) < 0 ||
	    myw_merge(w) < 0)
		return -1;
	return myw_exec(w, "COMMIT", 6, "commit");
}

static void myw_close(void *arg)
{
	struct myw *w = arg;

	if (w->m != NULL)
		mysql_close(w->m);
	w->m = NULL;
}

static int mysql_writer_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                            size_t ninputs, struct table **output)
{
	struct myw w;
	int rc = -1;

	(void)input_names;
	(void)output;
	memset(&w, 0, sizeof(w));
	w.ctx = ctx;
	w.cfg = cfg;
	w.t = ninputs > 0 ? inputs[0] : NULL;
	if (cfg_writer(ctx, cfg, w.t, &w.o) < 0)
		goto out;
	if ((rc = ctx_retry(ctx, w.o.retries, myw_attempt, myw_close, &w)) == 0) {
		ctx->rows_written = (int64_t)w.t->nrows;
		ctx_log(ctx, LOG_LVL_INFO, "wrote %zu rows to %s", w.t->nrows, w.o.table);
	}
out:
	cfg_writer_free(&w.o);
	free(w.qual);
	free(w.cols);
	return rc;
}

const struct driver_ops driver_mysql_writer = {
    .name = "mysql.writer",
    .run = mysql_writer_run,
    .keys = mysql_writer_keys,
};
