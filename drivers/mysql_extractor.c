/*
 * mysql_extractor.c: mysql.extractor (libmariadb). `query` is streamed row
 * by row (mysql_use_result: the client library holds one row, not the
 * result) into the table. Values keep the server's text: DECIMAL exact,
 * DATETIME/DATE/TIME as rendered, BIGINT UNSIGNED past int64 stays text,
 * NULL vs '' kept; binary strings (BLOB, BINARY, BIT) become "\x<hex>".
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

#define MYSQL_BINARY_CHARSET 63

static int mysql_extractor_binary(const MYSQL_FIELD *f)
{
	return f->charsetnr == MYSQL_BINARY_CHARSET &&
	       (f->type == MYSQL_TYPE_BLOB || f->type == MYSQL_TYPE_TINY_BLOB || f->type == MYSQL_TYPE_MEDIUM_BLOB ||
	        f->type == MYSQL_TYPE_LONG_BLOB || f->type == MYSQL_TYPE_STRING || f->type == MYSQL_TYPE_VAR_STRING ||
	        f->type == MYSQL_TYPE_BIT);
}

static void mysql_extractor_push_hex(struct table *t, size_t col, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *q = xmalloc(2 + len * 2);
	size_t i;

	q[0] = '\\';
	q[1] = 'x';
	for (i = 0; i < len; i++) {
		q[2 + 2 * i] = hex[(unsigned char)s[i] >> 4];
		q[3 + 2 * i] = hex[(unsigned char)s[i] & 15];
	}
	table_push(t, col, table_strdup(t, q, 2 + len * 2), 2 + len * 2);
	free(q);
}

static int mysql_extractor_rows(struct driver_ctx *ctx, MYSQL *m, MYSQL_RES *res, struct table *t, int *bin,
                                int64_t *rows)
{
	unsigned int i, nc = mysql_num_fields(res);
	unsigned long *len;
	MYSQL_ROW row;

	while ((row = mysql_fetch_row(res)) != NULL) {
		len = mysql_fetch_lengths(res);
		for (i = 0; i < nc; i++) {
			if (row[i] == NULL)
				table_push(t, i, NULL, 0);
			else if (bin[i])
				mysql_extractor_push_hex(t, i, row[i], len[i]);
			else
				table_push(t, i, table_strdup(t, row[i], len[i]), len[i]);
		}
		if (++*rows % 8192 == 0 && ctx_cancelled(ctx))
			return ctx_fail(ctx, "Cancelled", "cancelled");
	}
	if (mysql_errno(m) != 0)
		return ctx_fail(ctx, "QueryError", "query: %s", mysql_error(m));
	return 0;
}

static int mysql_extractor_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs,
                               const char **input_names, size_t ninputs, struct table **output)
{
	const char *q;
	MYSQL *m;
	MYSQL_RES *res;
	MYSQL_FIELD *f;
	struct table *t;
	int64_t rows = 0;
	int *bin, rc;
	unsigned int i, nc;

	(void)inputs;
	(void)input_names;
	(void)ninputs;
	if ((rc = cfg_str(ctx, cfg, "query", &q)) != 0)
		return rc < 0 ? -1 : ctx_fail(ctx, "ConfigError", "'query' is required");
	if (mysqlc_connect(ctx, cfg, &m) < 0)
		return -1;
	if (mysql_real_query(m, q, strlen(q)) != 0 || (res = mysql_use_result(m)) == NULL) {
		rc = ctx_fail(ctx, mysql_errno(m) >= 2000 ? "ConnectionError" : "QueryError", "query: %s",
		              mysql_errno(m) ? mysql_error(m) : "the statement returns no rows");
		mysql_close(m);
		return rc;
	}
	nc = mysql_num_fields(res);
	f = mysql_fetch_fields(res);
	t = table_new(nc);
	bin = xcalloc(nc + 1, sizeof(*bin));
	for (i = 0; i < nc; i++) {
		table_set_name(t, i, f[i].name, f[i].name_length);
		bin[i] = mysql_extractor_binary(&f[i]);
	}
	rc = mysql_extractor_rows(ctx, m, res, t, bin, &rows);
	free(bin);
	mysql_free_result(res);
	mysql_close(m);
	if (rc < 0) {
		table_free(t);
		return -1;
	}
	table_finish(t);
	*output = t;
	ctx->rows_read = rows;
	ctx_log(ctx, LOG_LVL_INFO, "read %lld rows, %u columns", (long long)rows, nc);
	ctx_log(ctx, LOG_LVL_DEBUG, "the table holds %zu bytes", table_mem_bytes(t));
	return 0;
}

const struct driver_ops driver_mysql_extractor = {
    .name = "mysql.extractor",
    .run = mysql_extractor_run,
    .keys = mysql_extractor_keys,
};
