/*
 * check_store.c: the SQLite store against a real database in a temporary
 * state dir: migrations, WAL, runs/steps round trips, prefix resolution, the
 * batched event stream, metrics, artifacts, crash-like reopen, bad files.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/osirisd.h"

static char tmpdir[64];
static char statedir[128];
static char dbpath[160];
static struct store *store;

/* The store under test (store), closed and forgotten. */
static void close_store(void)
{
	store_close(store);
	store = NULL;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(statedir, sizeof(statedir), "%s/a/state", tmpdir);
	snprintf(dbpath, sizeof(dbpath), "%s/osiris.db", statedir);
}

static void teardown(void)
{
	close_store();
	rmtree(tmpdir);
}

static void open_store(void)
{
	char err[512] = "";

	store = store_open(statedir, err, sizeof(err));
	ck_assert_msg(store != NULL, "store_open: %s", err);
}

/* A second, independent connection: what is really on disk. */
static int64_t db_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -12345;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static double db_double(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	double v = -1;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_double(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void make_run(struct run_info *r, const char *id, int64_t submitted, int nsteps)
{
	int i;

	memset(r, 0, sizeof(*r));
	r->id = xstrdup(id);
	r->state = RUN_QUEUED;
	r->pipeline = xstrdup("demo-pipeline");
	r->backend = xstrdup("local");
	r->uid = 1000;
	r->priority = 3;
	r->submitted_at = submitted;
	kvlist_add(&r->labels, "team", "data");
	kvlist_add(&r->env, "MODE", "test");
	kvlist_add(&r->env, "EMPTY", "");
	r->secret_names = xcalloc(2, sizeof(char *));
	r->secret_names[0] = xstrdup("DB_PASSWORD");
	r->secret_names[1] = xstrdup("API_TOKEN");
	r->nsecret_names = 2;
	if (nsteps > 0)
		r->steps = xcalloc((size_t)nsteps, sizeof(*r->steps));
	for (i = 0; i < nsteps; i++) {
		char sid[32];

		snprintf(sid, sizeof(sid), "step-%d", i);
		r->steps[i].id = xstrdup(sid);
		r->steps[i].driver = xstrdup(i == 0 ? "filesystem.csv_extractor" : "filesystem.csv_writer");
		r->steps[i].state = STEP_PENDING;
	}
	r->nsteps = (size_t)nsteps;
}

static void pack_data(struct buf *b, const char *key, int is_float, double v)
{
	msgpack_packer pk;

	buf_reset(b);
	rpc_packer_init(&pk, b);
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, key);
	if (is_float)
		msgpack_pack_double(&pk, v);
	else
		msgpack_pack_int64(&pk, (int64_t)v);
}

static void add_event(const char *run, int64_t seq, enum rec_kind kind, const char *name, const char *step,
                      struct buf *data)
{
	struct event_rec e;

	memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.ts = 1700000000000 + seq;
	e.kind = kind;
	e.daemon_origin = seq % 7 == 0;
	e.wseq = e.daemon_origin ? 0 : seq + 10000; /* the worker's own numbering */
	e.name = (char *)name;
	e.step_id = (char *)step;
	e.data = data != NULL ? data->data : NULL;
	e.data_len = data != NULL ? data->len : 0;
	ck_assert_int_eq(store_event_add(store, run, &e), 0);
}

START_TEST(test_open_migrate_reopen)
{
	struct stat st;
	char err[256];

	open_store();
	ck_assert_int_eq(stat(statedir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(db_int("PRAGMA user_version"), 5);
	ck_assert_int_eq(db_int("PRAGMA application_id"), 0x4f534952);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
	                        "('runs','steps','events','metrics','artifacts')"),
	                 5);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'runs_newest'"), 1);
	/* A state dir open already, here in this process, is refused by its
	 * lock: reported, not fatal. */
	ck_assert_ptr_null(store_open(statedir, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "in use by another osirisd"));
	close_store();
	open_store(); /* idempotent: no migration re-run, no error */
	ck_assert_int_eq(db_int("PRAGMA user_version"), 5);
	close_store();
}
END_TEST

START_TEST(test_wal_mode)
{
	sqlite3 *db;
	sqlite3_stmt *s;

	open_store();
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_run_roundtrip)
{
	struct run_info r, g;

	open_store();
	make_run(&r, "r-0001", 1700000000123, 2);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	ck_assert_int_eq(store_run_insert(store, &r), -1); /* duplicate id */
	ck_assert_int_eq(store_run_get(store, "r-0001", &g), 0);
	ck_assert_str_eq(g.id, "r-0001");
	ck_assert_int_eq(g.state, RUN_QUEUED);
	ck_assert_str_eq(g.pipeline, "demo-pipeline");
	ck_assert_str_eq(g.backend, "local");
	ck_assert_ptr_null(g.worker);
	ck_assert_ptr_null(g.error);
	ck_assert_int_eq(g.has_exit_code, 0);
	ck_assert_int_eq(g.uid, 1000);
	ck_assert_int_eq(g.priority, 3);
	ck_assert_int_eq(g.submitted_at, 1700000000123);
	ck_assert_int_eq(g.started_at, 0);
	ck_assert_int_eq(g.finished_at, 0);
	ck_assert_uint_eq(g.labels.n, 1);
	ck_assert_str_eq(kvlist_get(&g.labels, "team"), "data");
	ck_assert_uint_eq(g.env.n, 2);
	ck_assert_str_eq(kvlist_get(&g.env, "MODE"), "test");
	ck_assert_str_eq(kvlist_get(&g.env, "EMPTY"), "");
	ck_assert_uint_eq(g.nsecret_names, 2);
	ck_assert_str_eq(g.secret_names[0], "DB_PASSWORD");
	ck_assert_str_eq(g.secret_names[1], "API_TOKEN");
	ck_assert_uint_eq(g.nsteps, 2);
	ck_assert_str_eq(g.steps[0].id, "step-0");
	ck_assert_str_eq(g.steps[1].id, "step-1");
	ck_assert_str_eq(g.steps[1].driver, "filesystem.csv_writer");
	ck_assert_int_eq(g.steps[0].state, STEP_PENDING);
	ck_assert_ptr_null(g.steps[0].error);
	run_info_free(&g);
	ck_assert_int_eq(store_run_get(store, "r-0002", &g), 1);
	run_info_free(&r);
}
END_TEST

START_TEST(test_run_and_step_update)
{
	struct run_info r, g;
	struct step_info st;

	open_store();
	make_run(&r, "r-upd", 1000, 2);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	r.state = RUN_FAILED;
	r.worker = xstrdup("local-4242");
	r.error = xstrdup("step step-1 failed");
	r.exit_code = 1;
	r.has_exit_code = 1;
	r.started_at = 2000;
	r.finished_at = 3000;
	r.last_seq = 17;
	ck_assert_int_eq(store_run_update(store, &r), 0);

	memset(&st, 0, sizeof(st));
	st.id = "step-1";
	st.state = STEP_FAILED;
	st.rows_in = 10;
	st.rows_out = 9;
	st.duration_ms = 55;
	st.started_at = 2100;
	st.finished_at = 2155;
	st.error = "boom";
	st.error_type = "ValueError";
	ck_assert_int_eq(store_step_update(store, "r-upd", &st), 0);
	/* A step the manifest did not list at insert is appended after the others. */
	st.id = "late";
	st.driver = "duckdb.processor";
	st.state = STEP_SKIPPED;
	st.error = NULL;
	st.error_type = NULL;
	ck_assert_int_eq(store_step_update(store, "r-upd", &st), 0);
	ck_assert_int_eq(store_step_update(store, "no-such-run", &st), -1);

	ck_assert_int_eq(store_run_get(store, "r-upd", &g), 0);
	ck_assert_int_eq(g.state, RUN_FAILED);
	ck_assert_str_eq(g.worker, "local-4242");
	ck_assert_str_eq(g.error, "step step-1 failed");
	ck_assert_int_eq(g.has_exit_code, 1);
	ck_assert_int_eq(g.exit_code, 1);
	ck_assert_int_eq(g.started_at, 2000);
	ck_assert_int_eq(g.finished_at, 3000);
	ck_assert_int_eq(g.last_seq, 17);
	ck_assert_uint_eq(g.nsteps, 3);
	ck_assert_int_eq(g.steps[0].state, STEP_PENDING);
	ck_assert_int_eq(g.steps[1].state, STEP_FAILED);
	ck_assert_int_eq(g.steps[1].rows_in, 10);
	ck_assert_int_eq(g.steps[1].rows_out, 9);
	ck_assert_int_eq(g.steps[1].duration_ms, 55);
	ck_assert_str_eq(g.steps[1].driver, "filesystem.csv_writer"); /* kept: update had none */
	ck_assert_str_eq(g.steps[1].error, "boom");
	ck_assert_str_eq(g.steps[1].error_type, "ValueError");
	ck_assert_str_eq(g.steps[2].id, "late");
	ck_assert_str_eq(g.steps[2].driver, "duckdb.processor");
	ck_assert_int_eq(g.steps[2].state, STEP_SKIPPED);
	run_info_free(&g);

	free(r.id);
	r.id = xstrdup("r-missing");
	ck_assert_int_eq(store_run_update(store, &r), -1);
	run_info_free(&r);
}
END_TEST

START_TEST(test_run_list_and_states)
{
	static const char *ids[] = {"r-a", "r-b", "r-c", "r-d", "r-e"};
	struct run_info r, *list;
	char **rids;
	size_t n, i;

	open_store();
	for (i = 0; i < 5; i++) {
		make_run(&r, ids[i], 1000 + (int64_t)(i / 2) * 10, 0); /* r-a/r-b and r-c/r-d share a time */
		r.state = i % 2 == 0 ? RUN_QUEUED : RUN_SUCCEEDED;
		ck_assert_int_eq(store_run_insert(store, &r), 0);
		run_info_free(&r);
	}
	ck_assert_int_eq(store_run_list(store, NULL, 0, &list, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(list[0].id, "r-e");
	ck_assert_str_eq(list[1].id, "r-d"); /* same submitted_at: id descending */
	ck_assert_str_eq(list[2].id, "r-c");
	ck_assert_str_eq(list[4].id, "r-a");
	ck_assert_uint_eq(list[0].nsteps, 0);
	ck_assert_str_eq(kvlist_get(&list[0].labels, "team"), "data");
	for (i = 0; i < n; i++)
		run_info_free(&list[i]);
	free(list);

	ck_assert_int_eq(store_run_list(store, "succeeded", 1, &list, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(list[0].id, "r-d");
	run_info_free(&list[0]);
	free(list);
	ck_assert_int_eq(store_run_list(store, "queued", 2, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].id, "r-e");
	ck_assert_str_eq(list[1].id, "r-c");
	for (i = 0; i < n; i++)
		run_info_free(&list[i]);
	free(list);

	ck_assert_int_eq(store_run_ids_in_state(store, RUN_QUEUED, &rids, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(rids[0], "r-a"); /* oldest first */
	ck_assert_str_eq(rids[2], "r-e");
	for (i = 0; i < n; i++)
		free(rids[i]);
	free(rids);
	ck_assert_int_eq(store_run_ids_in_state(store, RUN_LOST, &rids, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(rids);
}
END_TEST

START_TEST(test_resolve)
{
	static const char *ids[] = {"abc123", "abc456", "abd000", "ab_x", "abcd", "abc"};
	struct run_info r;
	char id[64];
	size_t i;

	open_store();
	for (i = 0; i < 6; i++) {
		make_run(&r, ids[i], 1000, 0);
		ck_assert_int_eq(store_run_insert(store, &r), 0);
		run_info_free(&r);
	}
	ck_assert_int_eq(store_run_resolve(store, "abc1", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "abc123");
	ck_assert_int_eq(store_run_resolve(store, "abc456", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "abc456");
	ck_assert_int_eq(store_run_resolve(store, "abd", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "abd000");
	/* exact id wins although it prefixes others */
	ck_assert_int_eq(store_run_resolve(store, "abc", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "abc");
	ck_assert_int_eq(store_run_resolve(store, "ab", id, sizeof(id)), 2);
	ck_assert_int_eq(store_run_resolve(store, "abc4", id, sizeof(id)), 0);
	/* '_' and '%' are not wildcards here */
	ck_assert_int_eq(store_run_resolve(store, "ab_", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "ab_x");
	ck_assert_int_eq(store_run_resolve(store, "a%", id, sizeof(id)), 1);
	ck_assert_int_eq(store_run_resolve(store, "zzz", id, sizeof(id)), 1);
	ck_assert_int_eq(store_run_resolve(store, "", id, sizeof(id)), 1);
	ck_assert_int_eq(store_run_resolve(store, "abc1", id, 4), -1); /* does not fit */
}
END_TEST

struct collect {
	int64_t seqs[4096];
	size_t n;
	size_t stop_after;
	int bad_data;
	int nulls;
};

static int collect_cb(const struct event_rec *e, void *arg)
{
	struct collect *c = arg;
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	int64_t v;

	c->seqs[c->n++] = e->seq;
	if (e->step_id == NULL)
		c->nulls++;
	msgpack_zone_init(&z, 256);
	if (msgpack_unpack((const char *)e->data, e->data_len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
	    o.type != MSGPACK_OBJECT_MAP || (o.via.map.size > 0 && (mp_get_int(&o, "n", &v) != 0 || v != e->seq)))
		c->bad_data++;
	if (e->ts != 1700000000000 + e->seq || strcmp(e->name, e->kind == REC_LOG ? "info" : "step_start") != 0)
		c->bad_data++;
	if (e->wseq != (e->daemon_origin ? 0 : e->seq + 10000)) /* both seqs kept */
		c->bad_data++;
	msgpack_zone_destroy(&z);
	return c->stop_after != 0 && c->n >= c->stop_after;
}

START_TEST(test_events_batch_and_read)
{
	static struct collect c;
	struct run_info r;
	struct buf d;
	int64_t i;

	open_store();
	make_run(&r, "r-ev", 1000, 1);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	buf_init(&d);
	for (i = 1; i <= 1000; i++) {
		pack_data(&d, "n", 0, (double)i);
		add_event("r-ev", i, i % 3 == 0 ? REC_LOG : REC_EVENT, i % 3 == 0 ? "info" : "step_start",
		          i % 2 ? "step-0" : NULL, &d);
	}
	ck_assert_uint_eq(store_pending(store), 1000);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events"), 0); /* nothing committed yet */
	ck_assert_int_eq(store_flush(store), 0);
	ck_assert_uint_eq(store_pending(store), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events"), 1000);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events WHERE origin = 'daemon'"), 142);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events WHERE kind = 'log'"), 333);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(store_event_read(store, "r-ev", 0, 0, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 1000);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(c.seqs[i], i + 1); /* no gap, no duplicate, across read pages */
	ck_assert_int_eq(c.bad_data, 0);
	ck_assert_int_eq(c.nulls, 500);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(store_event_read(store, "r-ev", 500, 100, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 100);
	ck_assert_int_eq(c.seqs[0], 501);
	ck_assert_int_eq(c.seqs[99], 600);

	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	ck_assert_int_eq(store_event_read(store, "r-ev", 990, 0, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_int_eq(c.seqs[2], 993);

	/* Reading flushes first: pending records are visible, in order. */
	for (i = 1001; i <= 1010; i++)
		add_event("r-ev", i, REC_EVENT, "step_start", NULL, NULL);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(store_event_read(store, "r-ev", 1000, 0, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 10);
	ck_assert_int_eq(c.seqs[0], 1001);
	ck_assert_int_eq(c.bad_data, 0);
	ck_assert_uint_eq(store_pending(store), 0);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(store_event_read(store, "r-none", 0, 0, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 0);
	buf_free(&d);
	run_info_free(&r);
}
END_TEST

START_TEST(test_event_bad_records_isolated)
{
	struct run_info r;

	open_store();
	make_run(&r, "r-ok", 1000, 0);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	add_event("r-ok", 1, REC_EVENT, "step_start", NULL, NULL);
	add_event("r-unknown", 1, REC_EVENT, "step_start", NULL, NULL); /* no such run: FK */
	add_event("r-ok", 2, REC_EVENT, "step_start", NULL, NULL);
	add_event("r-ok", 2, REC_EVENT, "step_start", NULL, NULL); /* duplicate seq */
	add_event("r-ok", 3, REC_EVENT, "step_start", NULL, NULL);
	ck_assert_int_eq(store_flush(store), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events"), 3);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events WHERE run_id = 'r-ok' AND seq IN (1, 2, 3)"), 3);
	run_info_free(&r);
}
END_TEST

START_TEST(test_event_last_seq)
{
	struct run_info r;
	int64_t last = -1;
	int i;

	open_store();
	make_run(&r, "r-last", 1000, 0);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	ck_assert_int_eq(store_event_last_seq(store, "r-last", &last), 0);
	ck_assert_int_eq(last, 0);
	for (i = 1; i <= 700; i++) /* more than one read page */
		add_event("r-last", i, REC_EVENT, "step_start", NULL, NULL);
	ck_assert_int_eq(store_flush(store), 0);
	add_event("r-last", 701, REC_EVENT, "step_start", NULL, NULL); /* still pending */
	ck_assert_int_eq(store_event_last_seq(store, "r-last", &last), 0);
	ck_assert_int_eq(last, 701);
	ck_assert_uint_eq(store_pending(store), 1);
	ck_assert_int_eq(store_event_last_seq(store, "r-other", &last), 0);
	ck_assert_int_eq(last, 0);
	run_info_free(&r);
}
END_TEST

/* What a re-attach reads back: the worker's last seq, and the sandboxes
 * (stored before use, forgotten when killed; no access token column). */
START_TEST(test_sandboxes_and_wseq)
{
	struct sandbox_rec rec, got, *v;
	struct run_info r;
	int64_t last = -1;
	size_t n;
	int i;

	open_store();
	make_run(&r, "r-w", 1000, 0);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	ck_assert_int_eq(store_wseq_last(store, "r-w", &last), 0);
	ck_assert_int_eq(last, 0);
	for (i = 1; i <= 20; i++) /* seq 14 is a daemon record (no wseq) */
		add_event("r-w", i, REC_EVENT, "step_start", NULL, NULL);
	ck_assert_int_eq(store_flush(store), 0);
	ck_assert_int_eq(store_wseq_last(store, "r-w", &last), 0);
	ck_assert_int_eq(last, 10020);
	run_info_free(&r);

	memset(&rec, 0, sizeof(rec));
	rec.id = "sbx1";
	rec.backend = "e2b";
	rec.tag = "osiris-worker";
	rec.created_at = 5;
	ck_assert_int_eq(store_sandbox_put(store, &rec), 0);
	rec.id = "sbx0";
	rec.domain = "e2b.example";
	rec.envd_version = "0.5.7";
	rec.pid = 42;
	rec.created_at = 3;
	ck_assert_int_eq(store_sandbox_put(store, &rec), 0);
	rec.pid = 43; /* again: replaced */
	ck_assert_int_eq(store_sandbox_put(store, &rec), 0);
	ck_assert_int_eq(store_sandbox_get(store, "sbx0", &got), 0);
	ck_assert_str_eq(got.domain, "e2b.example");
	ck_assert_str_eq(got.envd_version, "0.5.7");
	ck_assert_str_eq(got.tag, "osiris-worker");
	ck_assert_int_eq(got.pid, 43);
	store_sandbox_rec_free(&got);
	ck_assert_int_eq(store_sandbox_get(store, "sbx1", &got), 0);
	ck_assert_ptr_null(got.domain);
	ck_assert_int_eq(got.pid, 0);
	store_sandbox_rec_free(&got);
	ck_assert_int_eq(store_sandbox_get(store, "nope", &got), 1);
	ck_assert_int_eq(store_sandbox_list(store, "e2b", &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].id, "sbx0"); /* oldest first */
	ck_assert_str_eq(v[1].id, "sbx1");
	store_sandbox_free(v, n);
	ck_assert_int_eq(store_sandbox_list(store, "other", &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	store_sandbox_free(v, n);
	ck_assert_int_eq(store_sandbox_delete(store, "sbx0"), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sandboxes"), 1);
	/* survives a reopen */
	close_store();
	open_store();
	ck_assert_int_eq(store_sandbox_get(store, "sbx1", &got), 0);
	store_sandbox_rec_free(&got);
}
END_TEST

START_TEST(test_metrics_rows)
{
	struct run_info r;
	struct buf d;

	open_store();
	make_run(&r, "r-m", 1000, 1);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	buf_init(&d);
	pack_data(&d, "value", 0, 42);
	add_event("r-m", 1, REC_METRIC, "rows_read", "step-0", &d);
	pack_data(&d, "value", 1, 12.5);
	add_event("r-m", 2, REC_METRIC, "step_duration_ms", "step-0", &d);
	pack_data(&d, "other", 0, 1);
	add_event("r-m", 3, REC_METRIC, "odd", NULL, &d);
	add_event("r-m", 4, REC_EVENT, "step_start", "step-0", NULL);
	/* run_update commits the pending batch in its own transaction */
	r.state = RUN_RUNNING;
	r.last_seq = 4;
	ck_assert_int_eq(store_run_update(store, &r), 0);
	ck_assert_uint_eq(store_pending(store), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM events WHERE run_id = 'r-m'"), 4);
	ck_assert_int_eq(db_int("SELECT count(*) FROM metrics"), 3);
	ck_assert(db_double("SELECT value FROM metrics WHERE name = 'rows_read' AND step_id = 'step-0'") == 42.0);
	ck_assert(db_double("SELECT value FROM metrics WHERE seq = 2") == 12.5);
	ck_assert_int_eq(db_int("SELECT value IS NULL FROM metrics WHERE seq = 3"), 1);
	ck_assert_int_eq(db_int("SELECT ts FROM metrics WHERE seq = 1"), 1700000000001);
	buf_free(&d);
	run_info_free(&r);
}
END_TEST

START_TEST(test_artifacts)
{
	struct run_info r;
	struct artifact_info a, *list;
	size_t n, i;

	open_store();
	make_run(&r, "r-art", 1000, 0);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	memset(&a, 0, sizeof(a));
	a.path = "output/z.csv";
	a.step_id = "write";
	a.size = 10;
	snprintf(a.sha256, sizeof(a.sha256), "%064d", 1);
	ck_assert_int_eq(store_artifact_add(store, "r-art", &a), 0);
	a.path = "artifacts/extract/a.txt";
	a.step_id = NULL;
	a.size = 0;
	ck_assert_int_eq(store_artifact_add(store, "r-art", &a), 0);
	a.path = "output/z.csv"; /* reported again: replaced, not duplicated */
	a.size = 20;
	ck_assert_int_eq(store_artifact_add(store, "r-art", &a), 0);
	ck_assert_int_eq(store_artifact_add(store, "r-none", &a), -1);
	ck_assert_int_eq(store_artifact_list(store, "r-art", &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].path, "artifacts/extract/a.txt");
	ck_assert_ptr_null(list[0].step_id);
	ck_assert_str_eq(list[1].path, "output/z.csv");
	ck_assert_int_eq(list[1].size, 20);
	ck_assert_str_eq(list[1].sha256, a.sha256);
	for (i = 0; i < n; i++)
		artifact_info_free(&list[i]);
	free(list);
	ck_assert_int_eq(store_artifact_list(store, "r-none", &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	run_info_free(&r);
}
END_TEST

/* issue 8: a metric whose decoder saw the value carries it (no unpack of
 * the data); one without a numeric value is NULL; else read from data. */
START_TEST(test_metric_value_carried)
{
	struct event_rec e;
	struct run_info r;
	struct buf d;

	open_store();
	make_run(&r, "r-met", 1000, 0);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	buf_init(&d);
	pack_data(&d, "value", 0, 1);
	memset(&e, 0, sizeof(e));
	e.kind = REC_METRIC;
	e.name = "m";
	e.data = d.data;
	e.data_len = d.len;
	e.ts = 1;
	e.seq = 1;
	e.has_value = 1;
	e.value = 7.25;
	ck_assert_int_eq(store_event_add(store, "r-met", &e), 0);
	e.seq = 2;
	e.has_value = -1;
	ck_assert_int_eq(store_event_add(store, "r-met", &e), 0);
	e.seq = 3;
	e.has_value = 0;
	ck_assert_int_eq(store_event_add(store, "r-met", &e), 0);
	ck_assert_int_eq(store_flush(store), 0);
	ck_assert(db_double("SELECT value FROM metrics WHERE run_id = 'r-met' AND seq = 1") == 7.25);
	ck_assert_int_eq(db_int("SELECT count(*) FROM metrics WHERE run_id = 'r-met' AND seq = 2 AND value IS NULL"),
	                 1);
	ck_assert_int_eq(
	    db_int("SELECT count(*) FROM metrics WHERE run_id = 'r-met' AND seq = 3 AND value IS NOT NULL"), 1);
	buf_free(&d);
	run_info_free(&r);
}
END_TEST

/* issue 8: a small artifact's bytes live in its row, written with the
 * batch; a file artifact's row has none; prune counts the blob bytes. */
START_TEST(test_artifact_blobs)
{
	static const char text[] = "{\n  \"mode\": \"x\"\n}\n";
	struct artifact_info a, got;
	struct prune_cand *c;
	struct run_info r;
	struct buf b;
	size_t n;
	int in_db;

	open_store();
	make_run(&r, "r-blob", 1000, 0);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	memset(&a, 0, sizeof(a));
	a.path = "artifacts/s1/cleaned_config.json";
	a.step_id = "s1";
	a.size = (int64_t)strlen(text);
	sha256_hex(text, strlen(text), a.sha256);
	ck_assert_int_eq(store_artifact_add_data(store, "r-blob", &a, text, strlen(text)), 0);
	/* buffered: nothing written before the batch commits */
	ck_assert_int_eq(db_int("SELECT count(*) FROM artifacts WHERE run_id = 'r-blob'"), 0);
	a.path = "output/big.csv";
	a.size = 1 << 20;
	ck_assert_int_eq(store_artifact_add(store, "r-blob", &a), 0);
	/* too big for a row, unknown run: refused */
	ck_assert_int_eq(store_artifact_add_data(store, "r-blob", &a, text, STORE_ART_BLOB_MAX + 1), -1);
	ck_assert_int_eq(store_artifact_add_data(store, "r-none", &a, text, 3), -1);
	ck_assert_int_eq(store_flush(store), 0);
	ck_assert_int_eq(db_int("SELECT length(data) FROM artifacts WHERE run_id = 'r-blob' AND path = "
	                        "'artifacts/s1/cleaned_config.json'"),
	                 (int)strlen(text));
	ck_assert_int_eq(db_int("SELECT count(*) FROM artifacts WHERE run_id = 'r-blob' AND data IS NULL"), 1);

	buf_init(&b);
	ck_assert_int_eq(store_artifact_get(store, "r-blob", "artifacts/s1/cleaned_config.json", &got, &in_db, &b), 0);
	ck_assert_int_eq(in_db, 1);
	ck_assert_int_eq(got.size, (int64_t)strlen(text));
	ck_assert_str_eq(got.sha256, a.sha256);
	ck_assert_uint_eq(b.len, strlen(text));
	ck_assert(memcmp(b.data, text, b.len) == 0);
	artifact_info_free(&got);
	buf_reset(&b);
	ck_assert_int_eq(store_artifact_get(store, "r-blob", "output/big.csv", &got, &in_db, &b), 0);
	ck_assert_int_eq(in_db, 0);
	ck_assert_int_eq(got.size, 1 << 20);
	artifact_info_free(&got);
	ck_assert_int_eq(store_artifact_get(store, "r-blob", "no/such", &got, &in_db, &b), 1);
	ck_assert_int_eq(store_artifact_get(store, "r-none", "output/big.csv", &got, &in_db, &b), 1);
	buf_free(&b);

	/* retention: the run's share counts its blob bytes beside its files */
	r.state = RUN_SUCCEEDED;
	r.finished_at = 1010;
	ck_assert_int_eq(store_run_update(store, &r), 0);
	ck_assert_int_eq(store_run_disk_bytes(store, "r-blob", 8192), 0);
	ck_assert_int_eq(store_prune_next(store, 0, "", 10, &c, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(c[0].disk_bytes, 8192 + (int64_t)strlen(text));
	store_prune_free(c, n);
	run_info_free(&r);
}
END_TEST

/* -- retention ------------------------------------------------------------- */

/* A run in `state`, submitted at `submitted`, finished at submitted + 10
 * when final, with `nrec` records, a metric, an artifact and disk bytes. */
static void prune_run(const char *id, enum run_state state, int64_t submitted, int nrec, int64_t bytes)
{
	struct artifact_info a;
	struct run_info r;
	struct buf d;
	int i;

	make_run(&r, id, submitted, 2);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	r.state = state;
	if (run_state_final(state))
		r.finished_at = submitted + 10;
	ck_assert_int_eq(store_run_update(store, &r), 0);
	buf_init(&d);
	pack_data(&d, "value", 0, 1);
	for (i = 1; i <= nrec; i++)
		add_event(id, i, i == 1 ? REC_METRIC : REC_EVENT, "e", NULL, &d);
	buf_free(&d);
	memset(&a, 0, sizeof(a));
	a.path = "out.csv";
	a.size = 5;
	snprintf(a.sha256, sizeof(a.sha256), "%064d", 7);
	ck_assert_int_eq(store_artifact_add(store, id, &a), 0);
	ck_assert_int_eq(store_flush(store), 0);
	ck_assert_int_eq(store_run_disk_bytes(store, id, bytes), 0);
	run_info_free(&r);
}

static int64_t rows_of(const char *table, const char *id)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE run_id = '%s'", table, id);
	return db_int(sql);
}

START_TEST(test_prune_candidates)
{
	struct prune_cand *c;
	size_t n;
	int64_t cnt;

	open_store();
	prune_run("p-3", RUN_SUCCEEDED, 3000, 3, 100);
	prune_run("p-1", RUN_FAILED, 1000, 5, 200);
	prune_run("p-run", RUN_RUNNING, 500, 2, 0); /* oldest, but running */
	prune_run("p-q", RUN_QUEUED, 400, 1, 0);
	prune_run("p-2", RUN_LOST, 2000, 1, 300);
	prune_run("p-2b", RUN_CANCELLED, 2000, 1, 400); /* same time: ordered by id */
	ck_assert_int_eq(store_final_count(store, &cnt), 0);
	ck_assert_int_eq(cnt, 4);
	/* oldest final first, never queued or running */
	ck_assert_int_eq(store_prune_next(store, 0, "", 10, &c, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(c[0].id, "p-1");
	ck_assert_int_eq(c[0].submitted_at, 1000);
	ck_assert_int_eq(c[0].finished_at, 1010);
	ck_assert_int_eq(c[0].disk_bytes, 200);
	ck_assert_str_eq(c[1].id, "p-2");
	ck_assert_str_eq(c[2].id, "p-2b");
	ck_assert_str_eq(c[3].id, "p-3");
	store_prune_free(c, n);
	/* the cursor: strictly after (2000, "p-2"), at most 1 */
	ck_assert_int_eq(store_prune_next(store, 2000, "p-2", 1, &c, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(c[0].id, "p-2b");
	store_prune_free(c, n);
	/* the query uses the partial index, not a scan of every run */
	ck_assert_int_eq(
	    db_int("SELECT count(*) FROM pragma_index_list('runs') WHERE name = 'runs_final' AND partial = 1"), 1);
}
END_TEST

START_TEST(test_prune_delete)
{
	struct prune_cand c[3];
	struct run_info g;
	size_t deleted;

	open_store();
	prune_run("d-old", RUN_SUCCEEDED, 1000, 50, 8192);
	prune_run("d-run", RUN_RUNNING, 1500, 4, 0);
	prune_run("d-new", RUN_SUCCEEDED, 2000, 3, 8192);
	memset(c, 0, sizeof(c));
	c[0].id = "d-old";
	c[1].id = "d-run"; /* a caller bug or a race: the store refuses it */
	c[2].id = "d-gone";
	ck_assert_int_eq(store_prune_delete(store, c, 3, &deleted), 0);
	ck_assert_uint_eq(deleted, 1);
	ck_assert_int_eq(c[0].deleted, 1);
	ck_assert_int_eq(c[1].deleted, 0);
	ck_assert_int_eq(c[2].deleted, 0);
	/* every row of the pruned run, in every table */
	ck_assert_int_eq(store_run_get(store, "d-old", &g), 1);
	ck_assert_int_eq(rows_of("steps", "d-old"), 0);
	ck_assert_int_eq(rows_of("events", "d-old"), 0);
	ck_assert_int_eq(rows_of("metrics", "d-old"), 0);
	ck_assert_int_eq(rows_of("artifacts", "d-old"), 0);
	/* the others whole */
	ck_assert_int_eq(rows_of("events", "d-run"), 4);
	ck_assert_int_eq(rows_of("steps", "d-run"), 2);
	ck_assert_int_eq(rows_of("events", "d-new"), 3);
	ck_assert_int_eq(rows_of("artifacts", "d-new"), 1);
	ck_assert_int_eq(store_run_get(store, "d-run", &g), 0);
	ck_assert_int_eq(g.state, RUN_RUNNING);
	run_info_free(&g);
	ck_assert_int_eq(db_int("PRAGMA freelist_count"), 0); /* incremental vacuum gave the pages back */
}
END_TEST

START_TEST(test_prune_usage_and_space_back)
{
	struct store_usage u0, u1;
	struct prune_cand *c;
	size_t n, deleted, i;
	char id[32];

	open_store();
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "u-%02zu", i);
		prune_run(id, RUN_SUCCEEDED, 1000 + (int64_t)i, 500, 10000);
	}
	ck_assert_int_eq(store_usage(store, &u0), 0);
	ck_assert_int_eq(u0.files_bytes, 40 * 10000);
	ck_assert_int_gt(u0.db_bytes, 40 * 500 * 20);
	ck_assert_int_eq(store_prune_next(store, 0, "", 30, &c, &n), 0);
	ck_assert_uint_eq(n, 30);
	ck_assert_int_eq(store_prune_delete(store, c, n, &deleted), 0);
	ck_assert_uint_eq(deleted, 30);
	store_prune_free(c, n);
	store_checkpoint(store);
	ck_assert_int_eq(store_usage(store, &u1), 0);
	ck_assert_int_eq(u1.files_bytes, 10 * 10000);
	ck_assert_int_lt(u1.db_bytes, u0.db_bytes / 2);
	ck_assert_int_eq(u1.wal_bytes, 0); /* truncated by the checkpoint */
	/* the file itself shrank (auto_vacuum = INCREMENTAL), not only its free list */
	ck_assert_int_eq(db_int("PRAGMA auto_vacuum"), 2);
	ck_assert_int_eq(db_int("PRAGMA freelist_count"), 0);
	ck_assert_int_lt(db_int("PRAGMA page_count") * db_int("PRAGMA page_size"), u0.db_bytes / 2);
}
END_TEST

/* A database of schema 1 (an older osirisd): migrated to 2 with disk bytes
 * backfilled from its artifacts, and switched to incremental auto-vacuum. */
START_TEST(test_migrate_from_v1)
{
	sqlite3 *db;
	struct prune_cand *c;
	size_t n;

	ck_assert_int_eq(mkdir_parents(dbpath), 0);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(
	    sqlite3_exec(
	        db,
	        "CREATE TABLE runs (id TEXT PRIMARY KEY NOT NULL, state TEXT NOT NULL, pipeline TEXT, backend TEXT NOT "
	        "NULL,"
	        " worker TEXT, uid INTEGER NOT NULL DEFAULT -1, priority INTEGER NOT NULL DEFAULT 0, exit_code INTEGER,"
	        " error TEXT, submitted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,"
	        " last_seq INTEGER NOT NULL DEFAULT 0, labels BLOB, env BLOB, secret_names BLOB);"
	        "CREATE INDEX runs_newest ON runs (submitted_at DESC, id DESC);"
	        "CREATE INDEX runs_state ON runs (state, submitted_at, id);"
	        "CREATE TABLE steps (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
	        " id TEXT NOT NULL, driver TEXT, state TEXT NOT NULL, rows_in INTEGER NOT NULL DEFAULT 0,"
	        " rows_out INTEGER NOT NULL DEFAULT 0, duration_ms INTEGER NOT NULL DEFAULT 0, started_at INTEGER,"
	        " finished_at INTEGER, error TEXT, error_type TEXT, PRIMARY KEY (run_id, id)) WITHOUT ROWID;"
	        "CREATE TABLE events (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq INTEGER NOT "
	        "NULL,"
	        " ts INTEGER NOT NULL, kind TEXT NOT NULL, origin TEXT NOT NULL, name TEXT NOT NULL, step_id TEXT,"
	        " data BLOB NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
	        "CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
	        " seq INTEGER NOT NULL, step_id TEXT, name TEXT NOT NULL, value REAL, ts INTEGER NOT NULL,"
	        " PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
	        "CREATE TABLE artifacts (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, path TEXT NOT "
	        "NULL,"
	        " step_id TEXT, size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (run_id, path)) WITHOUT ROWID;"
	        "INSERT INTO runs (id, state, backend, submitted_at, finished_at) VALUES ('v1-run', 'succeeded', "
	        "'local', 5, 9);"
	        "INSERT INTO artifacts VALUES ('v1-run', 'a', NULL, 1, 'x'), ('v1-run', 'b', NULL, 5000, 'y');"
	        "PRAGMA application_id = 1330858322; PRAGMA user_version = 1;",
	        NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(db_int("PRAGMA auto_vacuum"), 0);
	open_store();
	ck_assert_int_eq(db_int("PRAGMA user_version"), 5);
	ck_assert_int_eq(db_int("PRAGMA auto_vacuum"), 2);
	ck_assert_int_eq(store_prune_next(store, 0, "", 10, &c, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(c[0].disk_bytes, 8192 + 4096 + 8192); /* the dirs, then whole blocks of 1 and 5000 bytes */
	store_prune_free(c, n);
	/* migration 5: the old rows are files (data NULL) and read as such */
	ck_assert_int_eq(db_int("SELECT count(*) FROM artifacts WHERE run_id = 'v1-run' AND data IS NULL"), 2);
	{
		struct artifact_info a;
		struct buf b;
		int in_db = 1;
		buf_init(&b);
		ck_assert_int_eq(store_artifact_get(store, "v1-run", "b", &a, &in_db, &b), 0);
		ck_assert_int_eq(in_db, 0);
		ck_assert_int_eq(a.size, 5000);
		ck_assert_uint_eq(b.len, 0);
		artifact_info_free(&a);
		buf_free(&b);
	}
}
END_TEST

START_TEST(test_prune_pick)
{
	struct prune_cand c[4];
	struct prune_policy pol;
	int64_t excess, over;
	int stop;

	memset(c, 0, sizeof(c));
	for (int i = 0; i < 4; i++) {
		c[i].finished_at = 1000 * (i + 1);
		c[i].disk_bytes = 1000;
		c[i].records = 10;
	}
	/* age: finished before 2500 -> the first two, then a run to keep */
	pol = (struct prune_policy){.before_ms = 2500, .keep = -1, .max_bytes = 0};
	excess = over = 0;
	ck_assert_uint_eq(prune_pick(&pol, &excess, &over, c, 4, &stop), 2);
	ck_assert_int_eq(stop, 1);
	/* count: 3 beyond keep */
	pol = (struct prune_policy){.before_ms = 0, .keep = 1, .max_bytes = 0};
	excess = 3;
	over = 0;
	ck_assert_uint_eq(prune_pick(&pol, &excess, &over, c, 4, &stop), 3);
	ck_assert_int_eq(excess, 0);
	/* bytes: each run frees 1000 + its 10 records' share (150 bytes each) */
	pol = (struct prune_policy){.before_ms = 0, .keep = -1, .max_bytes = 1};
	excess = 0;
	over = 2500;
	ck_assert_uint_eq(prune_pick(&pol, &excess, &over, c, 4, &stop), 1);
	excess = 0;
	over = 2501;
	ck_assert_uint_eq(prune_pick(&pol, &excess, &over, c, 4, &stop), 2);
	/* nothing to do */
	excess = over = 0;
	ck_assert_uint_eq(prune_pick(&pol, &excess, &over, c, 4, &stop), 0);
	ck_assert_int_eq(stop, 1);
	/* a batch is bounded by records, but never empty */
	c[0].records = 1000000;
	excess = 4;
	ck_assert_uint_eq(prune_pick(&pol, &excess, &over, c, 4, &stop), 1);
	ck_assert_int_eq(stop, 0);
}
END_TEST

/* A child commits, leaves a batch pending and dies by SIGKILL. */
START_TEST(test_crash_reopen)
{
	struct run_info r, g;
	struct collect c;
	pid_t pid;
	int status, i;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char err[256];

		if ((store = store_open(statedir, err, sizeof(err))) == NULL)
			_exit(2);
		make_run(&r, "r-crash", 1000, 1);
		if (store_run_insert(store, &r) == -1)
			_exit(3);
		for (i = 1; i <= 50; i++)
			add_event("r-crash", i, REC_EVENT, "step_start", NULL, NULL);
		if (store_flush(store) == -1)
			_exit(4);
		for (i = 51; i <= 60; i++) /* never committed */
			add_event("r-crash", i, REC_EVENT, "step_start", NULL, NULL);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	open_store();
	ck_assert_int_eq(store_run_get(store, "r-crash", &g), 0);
	ck_assert_uint_eq(g.nsteps, 1);
	run_info_free(&g);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(store_event_read(store, "r-crash", 0, 0, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 50);
	ck_assert_int_eq(c.seqs[49], 50);
}
END_TEST

START_TEST(test_garbage_db)
{
	char err[512] = "";
	FILE *fp;
	int i;

	ck_assert_int_eq(mkdir_parents(dbpath), 0);
	fp = fopen(dbpath, "w");
	ck_assert_ptr_nonnull(fp);
	for (i = 0; i < 200; i++)
		fputs("this is not a database, just text\n", fp);
	fclose(fp);
	ck_assert_ptr_null(store_open(statedir, err, sizeof(err)));
	ck_assert_msg(strstr(err, dbpath) != NULL && strstr(err, "not an osiris database") != NULL, "err: %s", err);
	/* nothing was written into the foreign file */
	ck_assert_int_eq(store_run_get(store, "x", &(struct run_info){0}), -1);
}
END_TEST

START_TEST(test_foreign_db)
{
	sqlite3 *db;
	char err[512] = "";

	ck_assert_int_eq(mkdir_parents(dbpath), 0);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE customers (id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_null(store_open(statedir, err, sizeof(err)));
	ck_assert_msg(strstr(err, "foreign") != NULL, "err: %s", err);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sqlite_schema"), 1); /* untouched */
}
END_TEST

START_TEST(test_newer_schema_refused)
{
	sqlite3 *db;
	char err[512] = "";

	open_store();
	close_store();
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_null(store_open(statedir, err, sizeof(err)));
	ck_assert_msg(strstr(err, "newer") != NULL, "err: %s", err);
}
END_TEST

START_TEST(test_state_dir_locked)
{
	char err[256] = "", c = 0;
	int to_parent[2], to_child[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe(to_parent), 0);
	ck_assert_int_eq(pipe(to_child), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) { /* the "other daemon": holds the store until told to go */
		char cerr[256];
		char ok;

		close(to_child[1]); /* so that the parent's close is our EOF */
		ok = (store = store_open(statedir, cerr, sizeof(cerr))) != NULL ? 'y' : 'n';
		if (write(to_parent[1], &ok, 1) != 1)
			_exit(2);
		if (read(to_child[0], &ok, 1) < 0)
			_exit(3);
		close_store();
		_exit(0);
	}
	ck_assert_int_eq(read(to_parent[0], &c, 1), 1);
	ck_assert_int_eq(c, 'y');
	ck_assert_ptr_null(store_open(statedir, err, sizeof(err)));
	ck_assert_msg(strstr(err, "in use by another osirisd") != NULL, "err: %s", err);
	close(to_child[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	open_store(); /* the lock went with the other process */
}
END_TEST

/* Handles are independent: two state dirs open at once, each store holds
 * only what was written through it; closing one leaves the other working.
 * No handle (a store that did not open) fails every call. */
START_TEST(test_two_stores)
{
	char other[192], err[256] = "";
	struct store *b;
	struct run_info r, g;

	open_store();
	snprintf(other, sizeof(other), "%s/b/state", tmpdir);
	b = store_open(other, err, sizeof(err));
	ck_assert_msg(b != NULL, "store_open: %s", err);
	make_run(&r, "r-in-a", 1000, 1);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	run_info_free(&r);
	make_run(&r, "r-in-b", 1000, 1);
	ck_assert_int_eq(store_run_insert(b, &r), 0);
	run_info_free(&r);
	add_event("r-in-a", 1, REC_EVENT, "step_start", NULL, NULL);
	ck_assert_uint_eq(store_pending(store), 1);
	ck_assert_uint_eq(store_pending(b), 0);
	ck_assert_int_eq(store_run_get(store, "r-in-b", &g), 1);
	ck_assert_int_eq(store_run_get(b, "r-in-a", &g), 1);
	close_store();
	ck_assert_int_eq(db_int("SELECT count(*) FROM events WHERE run_id = 'r-in-a'"), 1); /* flushed at close */
	ck_assert_int_eq(store_run_get(b, "r-in-b", &g), 0);
	ck_assert_str_eq(g.id, "r-in-b");
	run_info_free(&g);
	store_close(b);
	ck_assert_int_eq(store_run_get(NULL, "r-in-a", &g), -1);
	ck_assert_int_eq(store_flush(NULL), -1);
	ck_assert_uint_eq(store_pending(NULL), 0);
	store_close(NULL);
}
END_TEST

/* Not asserted: printed for the report; the benchmark measures for real. */
START_TEST(test_throughput)
{
	struct run_info r;
	struct buf d;
	int64_t t0, t1, i;
	const int64_t nev = 200000, nruns = 2000;
	char id[32];

	open_store();
	make_run(&r, "r-bench", 1000, 3);
	ck_assert_int_eq(store_run_insert(store, &r), 0);
	buf_init(&d);
	pack_data(&d, "value", 0, 123);
	t0 = time_mono_us();
	for (i = 1; i <= nev; i++) {
		add_event("r-bench", i, i % 10 == 0 ? REC_METRIC : REC_EVENT, "step_start", "step-1", &d);
		if (i % 1000 == 0)
			ck_assert_int_eq(store_flush(store), 0);
	}
	ck_assert_int_eq(store_flush(store), 0);
	t1 = time_mono_us();
	printf("store throughput: %lld events in %.3f s = %.0f events/s (batches of 1000, 10%% metrics)\n",
	       (long long)nev, (double)(t1 - t0) / 1e6, (double)nev * 1e6 / (double)(t1 - t0));
	run_info_free(&r);

	t0 = time_mono_us();
	for (i = 0; i < nruns; i++) {
		snprintf(id, sizeof(id), "bench-%06lld", (long long)i);
		make_run(&r, id, 2000 + i, 3);
		ck_assert_int_eq(store_run_insert(store, &r), 0);
		r.state = RUN_RUNNING;
		r.started_at = 3000 + i;
		ck_assert_int_eq(store_run_update(store, &r), 0);
		r.state = RUN_SUCCEEDED;
		r.has_exit_code = 1;
		r.finished_at = 4000 + i;
		ck_assert_int_eq(store_run_update(store, &r), 0);
		run_info_free(&r);
	}
	t1 = time_mono_us();
	printf("store throughput: %lld runs (insert + 2 updates, 3 steps) in %.3f s = %.0f runs/s\n", (long long)nruns,
	       (double)(t1 - t0) / 1e6, (double)nruns * 1e6 / (double)(t1 - t0));
	ck_assert_int_eq(db_int("SELECT count(*) FROM events"), nev);
	ck_assert_int_eq(db_int("SELECT count(*) FROM metrics"), nev / 10);
	buf_free(&d);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_open_migrate_reopen);
	tcase_add_test(tc, test_wal_mode);
	tcase_add_test(tc, test_run_roundtrip);
	tcase_add_test(tc, test_run_and_step_update);
	tcase_add_test(tc, test_run_list_and_states);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_events_batch_and_read);
	tcase_add_test(tc, test_event_bad_records_isolated);
	tcase_add_test(tc, test_event_last_seq);
	tcase_add_test(tc, test_sandboxes_and_wseq);
	tcase_add_test(tc, test_metrics_rows);
	tcase_add_test(tc, test_artifacts);
	tcase_add_test(tc, test_artifact_blobs);
	tcase_add_test(tc, test_metric_value_carried);
	tcase_add_test(tc, test_prune_candidates);
	tcase_add_test(tc, test_prune_delete);
	tcase_add_test(tc, test_prune_usage_and_space_back);
	tcase_add_test(tc, test_migrate_from_v1);
	tcase_add_test(tc, test_prune_pick);
	tcase_add_test(tc, test_crash_reopen);
	tcase_add_test(tc, test_garbage_db);
	tcase_add_test(tc, test_foreign_db);
	tcase_add_test(tc, test_newer_schema_refused);
	tcase_add_test(tc, test_state_dir_locked);
	tcase_add_test(tc, test_two_stores);
	tcase_add_test(tc, test_throughput);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	log_init("check_store", LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
