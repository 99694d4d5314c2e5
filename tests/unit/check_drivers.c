/*
 * check_drivers.c: the drivers run for real on temporary workspaces:
 * extractor -> writer byte identity, SQL joins and types, error texts,
 * config validation, path safety, the registry.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/drivers.h"

static char ws[64];
static char logs[4096];

static void log_cb(struct driver_ctx *ctx, enum log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	strncat(logs, msg, sizeof(logs) - strlen(logs) - 2);
	strcat(logs, "\n");
}

static void setup(void)
{
	strcpy(ws, "/tmp/check_drivers.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(ws));
	logs[0] = '\0';
}

static void teardown(void)
{
	rmtree(ws);
}

static void put(const char *rel, const char *text)
{
	char *p;
	FILE *f;

	xasprintf(&p, "%s/%s", ws, rel);
	ck_assert_int_eq(mkdir_parents(p), 0);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static char *get(const char *rel)
{
	struct buf b;
	char *p;

	xasprintf(&p, "%s/%s", ws, rel);
	buf_init(&b);
	ck_assert_msg(file_read_all(p, 1 << 24, &b) == 0, "cannot read %s", rel);
	free(p);
	return buf_cstr(&b);
}

/* Run a driver with a cfg given as JSON text; returns run()'s value. */
static int run(const char *driver, const char *cfg_json, struct table **in, const char **names, size_t n,
               struct table **out, struct driver_ctx *ctx)
{
	const struct driver_ops *ops = driver_find(driver);
	json_error_t je;
	json_t *cfg = json_loads(cfg_json, 0, &je);
	int rc;

	ck_assert_ptr_nonnull(ops);
	ck_assert_msg(cfg != NULL, "bad test json: %s", je.text);
	ctx_init(ctx, ws, "step");
	ctx->log_fn = log_cb;
	*out = NULL;
	rc = ops->run(ctx, cfg, in, names, n, out);
	json_decref(cfg);
	return rc;
}

static struct table *extract(const char *cfg)
{
	struct driver_ctx ctx;
	struct table *t;

	ck_assert_msg(run("filesystem.csv_extractor", cfg, NULL, NULL, 0, &t, &ctx) == 0, "extract: %s", ctx.error);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ctx.rows_read, (int64_t)t->nrows);
	return t;
}

static const char *tricky = "id,code,amount,flag,note\n"
                            "1,007,1.50,true,\"a,b\"\n"
                            "2,1e5,2.5,false,\"multi\nline\"\n"
                            "3,,-0,,\"\"\n"
                            "4,+1,NaN,true,\"say \"\"hi\"\"\"\n"
                            "5, 1,1.0,false,Zo\xc3\xab\n";

START_TEST(test_extract_write_identical)
{
	struct driver_ctx ctx;
	struct table *t, *none;
	const char *nm = "df_ex";
	char *out;

	put("data/in.csv", tricky);
	t = extract("{\"path\":\"data/in.csv\",\"component\":\"filesystem.csv_extractor\",\"mode\":\"extract\"}");
	ck_assert_uint_eq(t->nrows, 5);
	ck_assert_msg(strstr(logs, "read 5 rows, 5 columns from data/in.csv") != NULL, "log: %s", logs);
	ck_assert_int_eq(run("filesystem.csv_writer", "{\"path\":\"output/sub/out.csv\",\"newline\":\"lf\"}", &t, &nm,
	                     1, &none, &ctx),
	                 0);
	ck_assert_ptr_null(none);
	ck_assert_int_eq(ctx.rows_written, 5);
	out = get("output/sub/out.csv");
	ck_assert_str_eq(out, tricky);
	free(out);
	/* writing over the file the table was read from keeps the table intact */
	ck_assert_int_eq(
	    run("filesystem.csv_writer", "{\"path\":\"data/in.csv\",\"delimiter\":\";\"}", &t, &nm, 1, &none, &ctx), 0);
	ck_assert_int_eq(run("filesystem.csv_writer", "{\"path\":\"output/again.csv\"}", &t, &nm, 1, &none, &ctx), 0);
	out = get("output/again.csv");
	ck_assert_str_eq(out, tricky);
	free(out);
	table_free(t);
}
END_TEST

START_TEST(test_extract_errors)
{
	struct driver_ctx ctx;
	struct table *t;

	put("data/bad.csv", "id,name\n1,caf\xe9\n");
	ck_assert_int_eq(run("filesystem.csv_extractor", "{\"path\":\"data/bad.csv\"}", NULL, NULL, 0, &t, &ctx), -1);
	ck_assert_msg(strstr(ctx.error, "data/bad.csv:2: invalid UTF-8") != NULL, "%s", ctx.error);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(run("filesystem.csv_extractor", "{\"path\":\"data/none.csv\"}", NULL, NULL, 0, &t, &ctx), -1);
	ck_assert_msg(strstr(ctx.error, "data/none.csv: No such file") != NULL, "%s", ctx.error);
	ck_assert_int_eq(run("filesystem.csv_extractor", "{\"path\":\"/etc/passwd\"}", NULL, NULL, 0, &t, &ctx), -1);
	ck_assert_msg(strstr(ctx.error, "\"/etc/passwd\" is absolute or escapes") != NULL, "%s", ctx.error);
	ck_assert_int_eq(run("filesystem.csv_extractor", "{\"path\":\"../x.csv\"}", NULL, NULL, 0, &t, &ctx), -1);
	ck_assert_int_eq(run("filesystem.csv_extractor", "{}", NULL, NULL, 0, &t, &ctx), -1);
	ck_assert_str_eq(ctx.error, "'path' is required");
	ck_assert_int_eq(run("filesystem.csv_extractor", "{\"path\":\"data/bad.csv\",\"encoding\":\"latin-1\"}", NULL,
	                     NULL, 0, &t, &ctx),
	                 -1);
	ck_assert_str_eq(ctx.error, "encoding 'latin-1' is not supported (only utf-8)");
	ck_assert_int_eq(run("filesystem.csv_extractor", "{\"path\":\"data/bad.csv\",\"delimiter\":\";;\"}", NULL, NULL,
	                     0, &t, &ctx),
	                 -1);
	ck_assert_msg(strstr(ctx.error, "'delimiter'") != NULL, "%s", ctx.error);
	ck_assert_int_eq(
	    run("filesystem.csv_extractor", "{\"path\":\"data/bad.csv\",\"header\":\"yes\"}", NULL, NULL, 0, &t, &ctx),
	    -1);
	ck_assert_str_eq(ctx.error_type, "ConfigError");
}
END_TEST

START_TEST(test_extract_options)
{
	struct table *t;

	put("data/semi.csv", "# comment\nid;v\n1;a\n2;b\n3;c\n");
	t = extract(
	    "{\"path\":\"data/semi.csv\",\"delimiter\":\";\",\"skip_rows\":1,\"limit\":2,\"encoding\":\"UTF-8\"}");
	ck_assert_uint_eq(t->nrows, 2);
	ck_assert_str_eq(t->cols[1].name, "v");
	table_free(t);
	put("data/empty.csv", "");
	t = extract("{\"path\":\"data/empty.csv\"}");
	ck_assert_uint_eq(t->nrows, 0);
	table_free(t);
}
END_TEST

static const char *customers = "customer_id,name\n1,Ada\n2,\"Hopper, Grace\"\n3,Alan\n";
static const char *orders = "order_id,customer_id,amount\n10,1,5.5\n11,1,4.5\n12,2,7\n13,9,1\n";

START_TEST(test_sql_join)
{
	struct table *in[2], *out;
	const char *names[] = {"df_extract_orders", "df_extract_customers"};
	struct driver_ctx ctx;
	char *csv;
	const char *nm = "df_q";
	struct table *none;

	put("data/customers.csv", customers);
	put("data/orders.csv", orders);
	in[0] = extract("{\"path\":\"data/orders.csv\"}");
	in[1] = extract("{\"path\":\"data/customers.csv\"}");
	ck_assert_int_eq(run("duckdb.processor",
	                     "{\"query\":\"SELECT c.customer_id, c.name, COUNT(*) AS n, SUM(o.amount) AS total "
	                     "FROM df_extract_orders o JOIN df_extract_customers c ON c.customer_id = o.customer_id "
	                     "GROUP BY c.customer_id, c.name ORDER BY c.customer_id\"}",
	                     in, names, 2, &out, &ctx),
	                 0);
	ck_assert_uint_eq(out->nrows, 2);
	ck_assert_int_eq(ctx.rows_read, 7);
	ck_assert_int_eq(ctx.rows_written, 2);
	ck_assert_int_eq(out->cols[0].type, COL_INT);
	ck_assert_int_eq(out->cols[3].type, COL_DOUBLE);
	ck_assert_int_eq(run("filesystem.csv_writer", "{\"path\":\"out.csv\"}", &out, &nm, 1, &none, &ctx), 0);
	csv = get("out.csv");
	ck_assert_str_eq(csv, "customer_id,name,n,total\n1,Ada,2,10\n2,\"Hopper, Grace\",1,7\n");
	free(csv);
	table_free(in[0]);
	table_free(in[1]);
	table_free(out);
}
END_TEST

/* Text stays text through SQL ("007" is not 7), bools come back as
 * true/false, NULL stays NULL and '' stays the empty string. */
START_TEST(test_sql_types_preserved)
{
	struct table *in, *out, *none;
	const char *names[] = {"df_ex"}, *nm = "df_q";
	struct driver_ctx ctx;
	char *csv;

	put("data/in.csv", tricky);
	in = extract("{\"path\":\"data/in.csv\"}");
	ck_assert_int_eq(
	    run("duckdb.processor", "{\"query\":\"SELECT * FROM df_ex ORDER BY id\"}", &in, names, 1, &out, &ctx), 0);
	ck_assert_int_eq(run("filesystem.csv_writer", "{\"path\":\"o.csv\"}", &out, &nm, 1, &none, &ctx), 0);
	csv = get("o.csv");
	ck_assert_str_eq(csv, tricky);
	free(csv);
	table_free(out);
	ck_assert_int_eq(
	    run("duckdb.processor",
	        "{\"query\":\"SELECT code || 'x' AS c, typeof(code) AS t, flag AND 1 AS f FROM df_ex WHERE id = 1\"}",
	        &in, names, 1, &out, &ctx),
	    0);
	ck_assert_uint_eq(out->nrows, 1);
	ck_assert_int_eq(memcmp(out->cols[0].v[0].s, "007x", 4), 0);
	ck_assert_int_eq(memcmp(out->cols[1].v[0].s, "text", 4), 0);
	ck_assert_int_eq(out->cols[2].type, COL_INT);
	table_free(out);
	table_free(in);
}
END_TEST

START_TEST(test_sql_errors)
{
	struct table *in, *out;
	const char *names[] = {"df_ex"};
	struct driver_ctx ctx;

	put("data/in.csv", customers);
	in = extract("{\"path\":\"data/in.csv\"}");
	ck_assert_int_eq(run("duckdb.processor", "{\"query\":\"SELEC id FROM df_ex\"}", &in, names, 1, &out, &ctx), -1);
	ck_assert_str_eq(ctx.error, "query: near \"SELEC\": syntax error");
	ck_assert_str_eq(ctx.error_type, "SQLError");
	ck_assert_ptr_null(out);
	ck_assert_int_eq(run("duckdb.processor", "{\"query\":\"SELECT * FROM nope\"}", &in, names, 1, &out, &ctx), -1);
	ck_assert_str_eq(ctx.error, "query: no such table: nope");
	ck_assert_int_eq(run("duckdb.processor", "{}", &in, names, 1, &out, &ctx), -1);
	ck_assert_str_eq(ctx.error, "'query' is required");
	/* no file access from SQL */
	ck_assert_int_eq(
	    run("duckdb.processor", "{\"query\":\"ATTACH 'x.db' AS x; SELECT 1\"}", &in, names, 1, &out, &ctx), -1);
	ck_assert_int_eq(run("duckdb.processor", "{\"query\":\"VACUUM INTO 'x.db'\"}", &in, names, 1, &out, &ctx), -1);
	ck_assert_int_eq(access("x.db", F_OK), -1);
	table_free(in);
}
END_TEST

START_TEST(test_sql_multi_statement_and_no_input)
{
	struct table *out;
	struct driver_ctx ctx;

	ck_assert_int_eq(
	    run("duckdb.processor",
	        "{\"query\":\"CREATE TABLE t(x); INSERT INTO t VALUES (1),(2.5),(NULL); SELECT x FROM t;\"}", NULL,
	        NULL, 0, &out, &ctx),
	    0);
	ck_assert_uint_eq(out->nrows, 3);
	ck_assert_int_eq(out->cols[0].type, COL_DOUBLE);
	ck_assert(table_is_null(out, 0, 2));
	table_free(out);
}
END_TEST

START_TEST(test_writer_errors)
{
	struct table *in, *none;
	const char *nm = "df_ex";
	struct driver_ctx ctx;

	put("data/in.csv", customers);
	in = extract("{\"path\":\"data/in.csv\"}");
	ck_assert_int_eq(run("filesystem.csv_writer", "{\"path\":\"/tmp/escape.csv\"}", &in, &nm, 1, &none, &ctx), -1);
	ck_assert_msg(strstr(ctx.error, "absolute or escapes") != NULL, "%s", ctx.error);
	ck_assert_int_eq(
	    run("filesystem.csv_writer", "{\"path\":\"o.csv\",\"newline\":\"crlf2\"}", &in, &nm, 1, &none, &ctx), -1);
	ck_assert_msg(strstr(ctx.error, "'newline'") != NULL, "%s", ctx.error);
	ck_assert_int_eq(run("filesystem.csv_writer", "{\"path\":\"o.csv\"}", NULL, NULL, 0, &none, &ctx), -1);
	ck_assert_msg(strstr(ctx.error, "needs an input") != NULL, "%s", ctx.error);
	table_free(in);
}
END_TEST

/* The keys the SQL writers (mysql.writer, postgres/supabase.writer) share:
 * one parser, so the same config fails the same way in each. */
START_TEST(test_cfg_writer)
{
	static const struct {
		const char *cfg, *error; /* error NULL: accepted */
	} cases[] = {
	    {"{}", "'table' is required"},
	    {"{\"table\":1}", "'table' must be a string"},
	    {"{\"table\":\"t\",\"write_mode\":\"merge\"}", "must be append, insert, upsert or replace"},
	    {"{\"table\":\"t\",\"write_mode\":\"upsert\"}", "write_mode 'upsert' needs 'primary_key'"},
	    {"{\"table\":\"t\",\"write_mode\":\"replace\",\"primary_key\":[]}", "needs 'primary_key'"},
	    {"{\"table\":\"t\",\"primary_key\":\"nope\"}", "primary_key column 'nope' is not in the input"},
	    {"{\"table\":\"t\",\"primary_key\":5}", "'primary_key' must be a string or a list of strings"},
	    {"{\"table\":\"t\",\"primary_key\":[\"name\",3]}", "'primary_key' must be a string or a list"},
	    {"{\"table\":\"t\",\"create_if_missing\":\"yes\"}", "'create_if_missing' must be true or false"},
	    {"{\"table\":\"t\",\"retries\":\"3\"}", "'retries' must be an integer"},
	    {"{\"table\":\"t\"}", NULL},
	};
	struct driver_ctx ctx;
	struct cfg_writer w;
	struct table *in;
	json_t *cfg;
	size_t i;

	put("data/in.csv", customers);
	in = extract("{\"path\":\"data/in.csv\"}");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ctx_init(&ctx, ws, "w");
		cfg = json_loads(cases[i].cfg, 0, NULL);
		ck_assert_ptr_nonnull(cfg);
		ck_assert_int_eq(cfg_writer(&ctx, cfg, in, &w), cases[i].error != NULL ? -1 : 0);
		if (cases[i].error != NULL)
			ck_assert_msg(strstr(ctx.error, cases[i].error) != NULL, "%s: %s", cases[i].cfg, ctx.error);
		cfg_writer_free(&w);
		json_decref(cfg);
	}
	ctx_init(&ctx, ws, "w");
	cfg = json_loads("{\"table\":\"t\"}", 0, NULL);
	ck_assert_int_eq(cfg_writer(&ctx, cfg, NULL, &w), -1);
	ck_assert_str_eq(ctx.error, "no input table (needs an upstream step that produces one)");
	cfg_writer_free(&w);
	json_decref(cfg);
	/* the defaults, and a key list kept in order */
	ctx_init(&ctx, ws, "w");
	cfg = json_loads("{\"table\":\"t\"}", 0, NULL);
	ck_assert_int_eq(cfg_writer(&ctx, cfg, in, &w), 0);
	ck_assert_str_eq(w.table, "t");
	ck_assert_int_eq(w.mode, WRITE_APPEND);
	ck_assert_int_eq(w.create, 1);
	ck_assert_int_eq(w.retries, 3);
	ck_assert_uint_eq(w.npk, 0);
	cfg_writer_free(&w);
	json_decref(cfg);
	cfg = json_loads("{\"table\":\"t\",\"write_mode\":\"replace\",\"primary_key\":[\"name\",\"customer_id\"],"
	                 "\"create_if_missing\":false,\"retries\":0}",
	                 0, NULL);
	ck_assert_int_eq(cfg_writer(&ctx, cfg, in, &w), 0);
	ck_assert_int_eq(w.mode, WRITE_REPLACE);
	ck_assert_int_eq(w.create, 0);
	ck_assert_int_eq(w.retries, 0);
	ck_assert_uint_eq(w.npk, 2);
	ck_assert_str_eq(w.pk[0], "name");
	ck_assert_str_eq(w.pk[1], "customer_id");
	cfg_writer_free(&w);
	json_decref(cfg);
	table_free(in);
}
END_TEST

/* ctx_retry: the SQL writers' retry of a lost connection. */
struct retry_fake {
	struct driver_ctx *ctx;
	const char *fail[4]; /* error type of each attempt; NULL: it succeeds */
	int attempts, ends;
};

static int retry_attempt(void *arg)
{
	struct retry_fake *f = arg;
	const char *type = f->fail[f->attempts++];

	return type == NULL ? 0 : ctx_fail(f->ctx, type, "attempt %d", f->attempts);
}

static void retry_end(void *arg)
{
	((struct retry_fake *)arg)->ends++;
}

START_TEST(test_ctx_retry)
{
	static const struct {
		int64_t retries;
		const char *fail[4];
		int rc, attempts;
	} cases[] = {
	    {3, {NULL}, 0, 1},                                  /* first time */
	    {3, {"ConnectionError", NULL}, 0, 2},               /* lost, then through */
	    {3, {"QueryError", NULL}, -1, 1},                   /* an SQL error is not retried */
	    {0, {"ConnectionError", NULL}, -1, 1},              /* retries: 0 */
	    {1, {"ConnectionError", "ConnectionError"}, -1, 2}, /* out of retries */
	};
	struct driver_ctx ctx;
	struct retry_fake f;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ctx_init(&ctx, ws, "w");
		memset(&f, 0, sizeof(f));
		f.ctx = &ctx;
		memcpy(f.fail, cases[i].fail, sizeof(f.fail));
		ck_assert_int_eq(ctx_retry(&ctx, cases[i].retries, retry_attempt, retry_end, &f), cases[i].rc);
		ck_assert_int_eq(f.attempts, cases[i].attempts);
		ck_assert_int_eq(f.ends, cases[i].attempts); /* closed after every attempt */
	}
}
END_TEST

START_TEST(test_noop_and_registry)
{
	struct table *in, *out;
	const char *nm = "df_ex";
	struct driver_ctx ctx;
	size_t i, j;

	put("data/in.csv", customers);
	in = extract("{\"path\":\"data/in.csv\"}");
	ck_assert_int_eq(run("osiris.noop", "{\"component\":\"osiris.noop\"}", &in, &nm, 1, &out, &ctx), 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(out->nrows, in->nrows);
	ck_assert_str_eq(out->cols[1].name, "name");
	table_free(in); /* the output owns its own copy */
	ck_assert_int_eq(memcmp(out->cols[1].v[1].s, "Hopper, Grace", 13), 0);
	table_free(out);
	ck_assert(driver_known("filesystem.csv_extractor"));
	ck_assert(driver_known("filesystem.csv_writer"));
	ck_assert(driver_known("duckdb.processor"));
	ck_assert(driver_known("osiris.noop"));
	/* the network drivers are known everywhere; the unit tests link
	 * registry_nonet.c, whose stand-ins fail with a clear error */
	ck_assert(driver_known("mysql.extractor"));
	ck_assert(driver_known("mysql.writer"));
	ck_assert(driver_known("postgres.writer"));
	ck_assert(driver_known("supabase.writer"));
	ck_assert(driver_known("graphql.extractor"));
	ck_assert(!driver_known("posthog.extractor"));
	/* driver_at lists each of them once (what `ready` announces) */
	for (i = 0; driver_at(i) != NULL; i++) {
		ck_assert_ptr_eq(driver_find(driver_at(i)->name), driver_at(i));
		for (j = 0; j < i; j++)
			ck_assert_str_ne(driver_at(j)->name, driver_at(i)->name);
	}
	ck_assert_uint_eq(i, 11);
	ck_assert_int_eq(run("mysql.extractor", "{\"component\":\"mysql.extractor\"}", NULL, NULL, 0, &out, &ctx), -1);
	ck_assert_ptr_nonnull(strstr(ctx.error, "driver mysql.extractor is not available in this build"));
	ck_assert_str_eq(ctx.error_type, "DriverUnavailable");
	ck_assert(driver_key_known(driver_find("filesystem.csv_extractor"), "skip_rows"));
	ck_assert(driver_key_known(driver_find("filesystem.csv_extractor"), "connection"));
	ck_assert(!driver_key_known(driver_find("filesystem.csv_extractor"), "parse_dates"));
}
END_TEST

/* resolved_connection wins over the cfg's own keys (Osiris injects host and
 * port defaults there); numbers come back as text; empty is absent. */
START_TEST(test_cfg_conn)
{
	json_t *cfg = json_loads("{\"host\":\"localhost\",\"port\":3306,\"user\":\"\",\"ssl\":true,"
	                         "\"resolved_connection\":{\"host\":\"db.internal\",\"password\":\"pw\"}}",
	                         0, NULL);
	char num[32];

	ck_assert_str_eq(cfg_conn(cfg, "host", num, sizeof(num)), "db.internal");
	ck_assert_str_eq(cfg_conn(cfg, "port", num, sizeof(num)), "3306");
	ck_assert_str_eq(cfg_conn(cfg, "password", num, sizeof(num)), "pw");
	ck_assert_str_eq(cfg_conn(cfg, "ssl", num, sizeof(num)), "true");
	ck_assert_ptr_null(cfg_conn(cfg, "user", num, sizeof(num)));
	ck_assert_ptr_null(cfg_conn(cfg, "database", num, sizeof(num)));
	json_decref(cfg);
}
END_TEST

static Suite *drivers_suite(void)
{
	Suite *s = suite_create("drivers");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_extract_write_identical);
	tcase_add_test(tc, test_extract_errors);
	tcase_add_test(tc, test_extract_options);
	tcase_add_test(tc, test_sql_join);
	tcase_add_test(tc, test_sql_types_preserved);
	tcase_add_test(tc, test_sql_errors);
	tcase_add_test(tc, test_sql_multi_statement_and_no_input);
	tcase_add_test(tc, test_writer_errors);
	tcase_add_test(tc, test_cfg_writer);
	tcase_add_test(tc, test_ctx_retry);
	tcase_add_test(tc, test_noop_and_registry);
	tcase_add_test(tc, test_cfg_conn);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(drivers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
