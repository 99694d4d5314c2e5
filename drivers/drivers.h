/*
 * drivers.h: the table type steps exchange, the driver vtable and registry,
 * the driver context the worker provides, and the CSV parser/writer the
 * filesystem drivers (and the fuzzers) share.
 */
#ifndef OSIRIS_DRIVERS_H
#define OSIRIS_DRIVERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

/* table.c ------------------------------------------------------------- */
/*
 * A columnar, typed, in-memory table. Every value keeps its original text
 * so that csv_extractor -> csv_writer is lossless; the typed arrays are a
 * view used by SQL. A column is numeric only when every non-NULL value's
 * canonical rendering reads back to the very same text ("007", "1.50",
 * "1e3", "+1" keep the column TEXT).
 *
 * NULL vs empty: an unquoted empty CSV field is NULL (tval.s == NULL, bit
 * set in the null bitmap); a quoted empty field ("") is the empty string.
 */
enum col_type { COL_NULL = 0, COL_BOOL, COL_INT, COL_DOUBLE, COL_TEXT };

struct tval {
	const char *s; /* NULL = SQL NULL; not NUL-terminated */
	uint32_t len;
};

struct column {
	char *name;
	enum col_type type; /* COL_NULL until table_infer_types() */
	struct tval *v;
	uint64_t *nulls; /* bit r set = row r is NULL */
	int64_t *i;      /* COL_INT, COL_BOOL */
	double *d;       /* COL_DOUBLE */
	size_t n, cap;
};

struct table_slab;
struct table_block {
	void *p;
	size_t maplen; /* 0: malloc'd, else mmap'd length */
};
struct table {
	struct column *cols;
	size_t ncols;
	size_t nrows;
	struct table_slab *slabs;   /* text owned by the table */
	struct table_block *blocks; /* adopted buffers (e.g. the CSV file bytes) */
	size_t nblocks;
};

struct table *table_new(size_t ncols);
/* One more column, empty (push the rows it needs); returns its index. */
size_t table_add_column(struct table *t, const char *name, size_t len);
void table_free(struct table *t);
void table_set_name(struct table *t, size_t col, const char *name, size_t len);
/* Copy text into table-owned storage; the pointer lives as long as t. */
const char *table_strdup(struct table *t, const char *s, size_t len);
/* The table frees `block` (malloc'd) / unmaps `map` when it is freed. */
void table_adopt(struct table *t, void *block);
void table_adopt_map(struct table *t, void *map, size_t len);
/* Append a value to a column (s == NULL appends NULL). The text is not
 * copied: it must live as long as the table (see table_strdup/adopt).
 * Inline: it runs once per CSV field. */
void table_column_grow(struct column *c);
/* Room for `rows` values in every column at once (a parser that can
 * estimate its row count avoids the doubling copies). */
void table_reserve(struct table *t, size_t rows);
static inline void table_push(struct table *t, size_t col, const char *s, size_t len)
{
	struct column *c = &t->cols[col];

	if (c->n == c->cap)
		table_column_grow(c);
	c->v[c->n].s = s;
	c->v[c->n].len = (uint32_t)len;
	if (s == NULL)
		c->nulls[c->n / 64] |= (uint64_t)1 << (c->n % 64);
	c->n++;
}
/* Set nrows from the columns (all must have the same length) and infer
 * each column's type, filling the typed arrays. */
void table_finish(struct table *t);
void table_infer_types(struct table *t);
/* Bytes the table holds: value slices, null bitmaps, typed arrays, text
 * slabs, mapped blocks (a malloc'd adopted block is not counted). */
size_t table_mem_bytes(const struct table *t);
int table_is_null(const struct table *t, size_t col, size_t row);
const char *col_type_name(enum col_type t);

/* canon.c: canonical renderings (the inverse of type inference). buf
 * holds 32 bytes; returns the length. */
size_t canon_fmt_int(int64_t v, char *buf);
size_t canon_fmt_double(double v, char *buf);
/* Is s[0..len) exactly the canonical rendering of an int64 / a double /
 * a bool ("true"/"false")? On success *out receives the value. */
int canon_int(const char *s, size_t len, int64_t *out);
int canon_double(const char *s, size_t len, double *out);
int canon_bool(const char *s, size_t len, int *out);

/* csv.c: RFC 4180 parser ----------------------------------------------- */
struct csv_opts {
	char delim;                  /* ',' */
	int header;                  /* 1: first record names the columns */
	size_t skip_rows;            /* records skipped before the header */
	int64_t limit;               /* max data rows, -1 = all */
	int (*cancelled)(void *arg); /* checked every few thousand rows, may be NULL */
	void *arg;
};
void csv_opts_default(struct csv_opts *o);
/*
 * Parse data[0..len) into a table. Quoted fields are unescaped in place and
 * values point into `data`, which the caller keeps alive as long as the
 * table (hand it over with table_adopt/table_adopt_map). `name` prefixes
 * errors: "data/a.csv:3: ...". Returns 0, -1 with err (1 when cancelled).
 */
int csv_parse(const char *name, char *data, size_t len, const struct csv_opts *o, struct table **out, char *err,
              size_t errlen);

/* csv_format.c: serialise a table as CSV into a buffer / fd ------------- */
struct csv_wopts {
	char delim;
	int header;
	const char *newline; /* "\n", "\r\n" or "\r" */
};
/* Write the whole table to fd. -1 with errno on a write error. */
int csv_format_fd(int fd, const struct table *t, const struct csv_wopts *o);

/* ctx.c: what a driver may ask of the worker -------------------------- */
struct driver_ctx {
	const char *workspace; /* absolute; every path a cfg names is relative to it */
	const char *step_id;
	/* Set by the driver (-1 = not reported: the worker derives them). */
	int64_t rows_read;
	int64_t rows_written;
	/* The driver's one-line error and its class when run() returns -1. */
	char error[1024];
	char error_type[64];
	/* Worker hooks (may be NULL in tests). */
	void (*log_fn)(struct driver_ctx *ctx, enum log_level level, const char *msg);
	void (*metric_fn)(struct driver_ctx *ctx, const char *name, double value);
	int (*cancelled_fn)(struct driver_ctx *ctx);
	void *arg;
};
void ctx_init(struct driver_ctx *ctx, const char *workspace, const char *step_id);
void ctx_log(struct driver_ctx *ctx, enum log_level level, const char *fmt, ...) PRINTFLIKE(3, 4);
void ctx_metric(struct driver_ctx *ctx, const char *name, double value);
int ctx_cancelled(struct driver_ctx *ctx);
/* Fill ctx->error (and error_type) and return -1. */
int ctx_fail(struct driver_ctx *ctx, const char *type, const char *fmt, ...) PRINTFLIKE(3, 4);
/* Resolve a workspace-relative path: "<workspace>/<rel>" in a new string,
 * or NULL (ctx->error set) when rel is not path_is_safe. */
char *ctx_path(struct driver_ctx *ctx, const char *rel);
/* attempt(arg), then end(arg) (close the connection: an open transaction
 * rolls back), again while attempt fails with a ConnectionError, at most
 * `retries` more times and not once cancelled, waiting 1, 2, 4, 8, then 16 s
 * between. attempt's last result. */
int ctx_retry(struct driver_ctx *ctx, int64_t retries, int (*attempt)(void *), void (*end)(void *), void *arg);

/* Config helpers for drivers (cfg.c): 0 ok, 1 absent, -1 wrong type (error set). */
int cfg_str(struct driver_ctx *ctx, const json_t *cfg, const char *key, const char **out);
int cfg_bool(struct driver_ctx *ctx, const json_t *cfg, const char *key, int *out);
int cfg_int(struct driver_ctx *ctx, const json_t *cfg, const char *key, int64_t *out);
int cfg_delim(struct driver_ctx *ctx, const json_t *cfg, char *out);
int cfg_encoding(struct driver_ctx *ctx, const json_t *cfg);
/* A connection field from cfg.resolved_connection, else the cfg; numbers
 * and booleans rendered into num. NULL when absent or empty. */
const char *cfg_conn(const json_t *cfg, const char *key, char *num, size_t numlen);

/* The keys every SQL writer reads (postgres/supabase.writer, mysql.writer):
 * table (required), write_mode, create_if_missing (default true), retries
 * (default 3), primary_key (each a column of the input; needed by upsert and
 * replace); t is the input (NULL: none), which must have columns. 0, or -1
 * with ctx->error; free it
 * with cfg_writer_free either way. The strings point into cfg. */
enum write_mode { WRITE_APPEND, WRITE_UPSERT, WRITE_REPLACE };
struct cfg_writer {
	const char *table;
	enum write_mode mode;
	int create;
	int64_t retries;
	const char **pk;
	size_t npk;
};
int cfg_writer(struct driver_ctx *ctx, const json_t *cfg, const struct table *t, struct cfg_writer *w);
void cfg_writer_free(struct cfg_writer *w);

/* pg.c: libpq helpers shared by the postgres/supabase drivers ---------- */
struct pg_conn;
/* Connect from the cfg's connection fields (pg_dsn | url | host...); -1
 * with ctx->error naming the host, never the password. */
int pg_connect(struct driver_ctx *ctx, const json_t *cfg, struct pg_conn **out);
/* Run one statement without results; -1 with ctx->error "<what>: <server message>". */
int pg_exec(struct driver_ctx *ctx, struct pg_conn *c, const char *sql, const char *what);
/* "schema"."table" quoted for SQL (free it); NULL with ctx->error. */
char *pg_qualified(struct driver_ctx *ctx, struct pg_conn *c, const char *schema, const char *table);
char *pg_ident(struct pg_conn *c, const char *name);
/* The first line of libpq's last error, for a one-line step error. */
const char *pg_errline(struct pg_conn *c, char *buf, size_t len);

/* mysqlc.c: libmariadb connection for the mysql.* drivers -------------- */
struct st_mysql;
/* -1 with ctx->error naming host:port and the server's message. */
int mysqlc_connect(struct driver_ctx *ctx, const json_t *cfg, struct st_mysql **out);

/* registry.c ------------------------------------------------------------- */
struct driver_ops {
	const char *name; /* the Osiris component name */
	/* inputs[i] is named input_names[i] ("df_<upstream>"); *output may be
	 * left NULL (writers). 0 ok, -1 with ctx->error. */
	int (*run)(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
	           size_t ninputs, struct table **output);
	/* Config keys the driver reads; NULL-terminated. Others get a warning. */
	const char *const *keys;
};
const struct driver_ops *driver_find(const char *name);
int driver_known(const char *name);
/* The i-th driver of this build (built in, then network ones), NULL past
 * the last: what the worker announces in `ready`. */
const struct driver_ops *driver_at(size_t i);
/* Metadata keys every cfg may carry (component, mode, connection). */
int driver_key_is_meta(const char *key);
/* 1 when `key` is one the driver reads or metadata. */
int driver_key_known(const struct driver_ops *ops, const char *key);

extern const struct driver_ops driver_csv_extractor;
extern const struct driver_ops driver_csv_writer;
extern const struct driver_ops driver_sql_processor;
extern const struct driver_ops driver_noop;
/* registry_net.c (the dynamic worker), registry_static.c (the static
 * worker: mysql.* real, the rest stand-ins) or registry_nonet.c (the daemon,
 * tests): the drivers that need network client libraries, the i-th or NULL
 * past the last; the stand-ins fail with "not available" (unavail.c). */
const struct driver_ops *registry_net_at(size_t i);
/* httpc_curl.c (libcurl, the dynamic worker) or httpc_ossl.c (HTTP/1.1
 * over OpenSSL, the static worker): graphql.extractor's POSTs. */
struct httpc;
struct httpc *httpc_new(struct driver_ctx *ctx, const char *url, int64_t timeout, int verify);
void httpc_header(struct httpc *h, const char *line); /* "Name: value" */
void httpc_basic(struct httpc *h, const char *user, const char *pass);
/* One POST, the body into out (at most max bytes). 0: *status set; 1: a
 * network error worth a retry; -1: a final one. err: what went wrong. */
int httpc_post(struct httpc *h, const char *payload, struct buf *out, size_t max, long *status, char *err,
               size_t errlen);
void httpc_free(struct httpc *h);
/* unavail.c: the run of a driver this binary does not link (a step naming
 * it fails with "driver X is not available in this build"). */
int unavail_run(struct driver_ctx *, const json_t *, struct table **, const char **, size_t, struct table **);
/* keys_net.c: their cfg keys (the same for the real drivers and stand-ins). */
extern const char *const pg_extractor_keys[],
    *const pg_writer_keys[], *const mysql_extractor_keys[], *const mysql_writer_keys[], *const graphql_extractor_keys[];
extern const struct driver_ops driver_pg_extractor, driver_pg_writer, driver_supabase_extractor, driver_supabase_writer,
    driver_mysql_extractor, driver_mysql_writer, driver_graphql_extractor;

#endif
