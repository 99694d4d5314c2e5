/*
 * check_run.c: a run against a real store and state dir, no event loop.
 * Crash recovery: a rescheduled run continues its record stream after the
 * last stored record, whatever the run row's last_seq says, or is marked
 * lost when its records cannot be read. Artifact collection's streamed
 * path (collect.c, driven through a run and a fake worker): symlinks in the
 * artifacts dir are never followed.
 */
#include <sys/stat.h>

#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/osirisd.h"

#define NREC 3000 /* records stored for the run: ~230 leaf pages of the events table */

static char tmpdir[64];
static char statedir[128];
static char dbpath[160];
static struct event_base *base;
static struct config cfg;
static int daemon_up;

/* The daemon's store (osirisd.store), closed and forgotten. */
static void close_store(void)
{
	store_close(osirisd.store);
	osirisd.store = NULL;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_run.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	snprintf(dbpath, sizeof(dbpath), "%s/osiris.db", statedir);
	daemon_up = 0;
}

static void teardown(void)
{
	if (daemon_up) {
		run_shutdown();
		sched_shutdown();
		pool_shutdown();
		child_shutdown();
		rundir_shutdown();
		event_base_free(base);
		config_free(&cfg);
	}
	close_store();
	rmtree(tmpdir);
}

/* What is really on disk, through a second connection. */
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

static void write_file(const char *path, const char *text)
{
	FILE *fp;

	ck_assert_int_eq(mkdir_parents(path), 0);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
}

/* STATE/runs/<id>/bundle: a one-step noop pipeline, as run.submit stores it. */
static void save_bundle(const char *id)
{
	char ctx[128], path[512], err[256];
	struct bundle b;

	snprintf(ctx, sizeof(ctx), "%s/ctx", tmpdir);
	snprintf(path, sizeof(path), "%s/manifest.yaml", ctx);
	write_file(path, "pipeline:\n  id: recover\n  version: 0.1.0\nsteps:\n"
	                 "  - id: s1\n    component: osiris.noop\n    driver: osiris.noop\n"
	                 "    cfg_path: cfg/s1.json\n    needs: []\n");
	snprintf(path, sizeof(path), "%s/cfg/s1.json", ctx);
	write_file(path, "{\"component\":\"osiris.noop\",\"mode\":\"transform\"}\n");
	memset(&b, 0, sizeof(b));
	ck_assert_msg(bundle_from_dir(&b, ctx, 1 << 20, err, sizeof(err)) == 0, "bundle_from_dir: %s", err);
	snprintf(path, sizeof(path), "%s/runs/%s/bundle", statedir, id);
	ck_assert_int_eq(mkdir_parents(path), 0);
	ck_assert_int_eq(bundle_save(&b, path, NULL), 0);
	bundle_free(&b);
}

/* A run row in `state` whose last_seq is 0 although records 1..n are
 * stored: the row lags the records, as after a crash between the event
 * batch and the next row update. Record seq's data carries "MARK-<seq>-". */
static void store_run(const char *id, enum run_state state, int64_t n)
{
	struct run_info r;
	struct event_rec e;
	struct buf d;
	msgpack_packer pk;
	char mark[300];
	int64_t i;

	memset(&r, 0, sizeof(r));
	r.id = xstrdup(id);
	r.state = state;
	r.pipeline = xstrdup("recover");
	r.backend = xstrdup("local");
	r.submitted_at = 1700000000000;
	r.steps = xcalloc(1, sizeof(*r.steps));
	r.steps[0].id = xstrdup("s1");
	r.steps[0].driver = xstrdup("osiris.noop");
	r.steps[0].state = state == RUN_RUNNING ? STEP_RUNNING : STEP_PENDING;
	r.nsteps = 1;
	ck_assert_int_eq(store_run_insert(osirisd.store, &r), 0);
	buf_init(&d);
	for (i = 1; i <= n; i++) {
		snprintf(mark, sizeof(mark), "MARK-%s-%06lld-%0200d", id, (long long)i, 0);
		buf_reset(&d);
		rpc_packer_init(&pk, &d);
		msgpack_pack_map(&pk, 1);
		mp_pack_kstr(&pk, "line", mark);
		memset(&e, 0, sizeof(e));
		e.seq = i;
		e.ts = 1700000000000 + i;
		e.kind = REC_LOG;
		e.name = "stdout";
		e.data = d.data;
		e.data_len = d.len;
		ck_assert_int_eq(store_event_add(osirisd.store, id, &e), 0);
	}
	ck_assert_int_eq(store_flush(osirisd.store), 0);
	buf_free(&d);
	run_info_free(&r);
	if (state == RUN_QUEUED)
		save_bundle(id);
}

/* Overwrite the database page holding record seq of run id with garbage:
 * any statement that walks onto that page fails (SQLITE_CORRUPT), the
 * others still work. The store must be closed (no WAL left). */
static void corrupt_page_of(const char *id, int64_t seq)
{
	char mark[64], page[65536];
	struct stat st;
	uint8_t *db;
	int64_t psize = db_int("PRAGMA page_size");
	size_t off, mlen;
	ssize_t got;
	int fd;

	snprintf(mark, sizeof(mark), "MARK-%s-%06lld-", id, (long long)seq);
	mlen = strlen(mark);
	ck_assert_int_eq(stat(dbpath, &st), 0);
	ck_assert_int_le(psize, (int64_t)sizeof(page));
	db = xmalloc((size_t)st.st_size);
	fd = open(dbpath, O_RDWR);
	ck_assert_int_ne(fd, -1);
	got = pread(fd, db, (size_t)st.st_size, 0);
	ck_assert_int_eq(got, st.st_size);
	for (off = 0; off + mlen <= (size_t)st.st_size; off++) {
		if (memcmp(db + off, mark, mlen) == 0)
			break;
	}
	ck_assert_msg(off + mlen <= (size_t)st.st_size, "record %s not found in %s", mark, dbpath);
	off -= off % (size_t)psize;
	ck_assert_uint_gt(off, 0); /* never the header page */
	memset(page, 0xee, sizeof(page));
	ck_assert_int_eq(pwrite(fd, page, (size_t)psize, (off_t)off), psize);
	ck_assert_int_eq(close(fd), 0);
	free(db);
}

/* osirisd's start, up to run_recover(), without the loop: nothing spawns
 * (pool_size 0, /bin/true as the worker, no isolation probe). */
static void daemon_start(void)
{
	char err[512] = "";

	config_defaults(&cfg);
	free(cfg.state_dir);
	cfg.state_dir = xstrdup(statedir);
	free(cfg.local_worker);
	cfg.local_worker = xstrdup("/bin/true");
	free(cfg.local_isolation);
	cfg.local_isolation = xstrdup("none");
	cfg.local_pool_size = 0;
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	osirisd.store = store_open(statedir, err, sizeof(err));
	ck_assert_msg(osirisd.store != NULL, "store_open: %s", err);
	ck_assert_msg(rundir_init(statedir, err, sizeof(err)) == 0, "rundir_init: %s", err);
	ck_assert_int_eq(child_init(base), 0);
	ck_assert_msg(pool_init(base, &cfg, sched_pool_ready_cb, NULL, err, sizeof(err)) == 0, "pool_init: %s", err);
	sched_init(base, &cfg);
	ck_assert_int_eq(run_init(base, &cfg), 0);
	daemon_up = 1;
	ck_assert_int_eq(run_recover(), 0);
}

static void open_store(void)
{
	char err[512] = "";

	osirisd.store = store_open(statedir, err, sizeof(err));
	ck_assert_msg(osirisd.store != NULL, "store_open: %s", err);
}

/* The next record of a recovered run must be stored, right after the last
 * one. Looked up by primary key: a scan would walk onto a corrupt page. */
static void expect_next_record_stored(struct run *r, int64_t want_seq)
{
	char sql[256];

	run_event_daemon(r, "check_run_marker", NULL, NULL);
	ck_assert_int_eq(store_flush(osirisd.store), 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM events WHERE run_id = '%s' AND seq = %lld AND name = "
	         "'check_run_marker'",
	         r->info.id, (long long)want_seq);
	ck_assert_msg(db_int(sql) == 1, "the record after recovery is not stored as seq %lld (it was given seq %lld)",
	              (long long)want_seq, (long long)r->info.last_seq);
}

START_TEST(test_recover_last_seq_from_records)
{
	struct run *r;

	open_store();
	store_run("r-queued", RUN_QUEUED, 5);
	close_store();
	daemon_start();
	r = run_find("r-queued");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->info.last_seq, 5);
	expect_next_record_stored(r, 6);
	ck_assert_int_eq(r->info.last_seq, 6);
}
END_TEST

/* Records past the first read pages cannot all be read back, the last one
 * can: the stream still continues after the last stored record. */
START_TEST(test_recover_unreadable_records)
{
	struct run *r;

	open_store();
	store_run("r-queued", RUN_QUEUED, NREC);
	close_store();
	corrupt_page_of("r-queued", NREC / 2);
	daemon_start();
	r = run_find("r-queued");
	ck_assert_msg(r != NULL, "run not rescheduled although its last record is readable");
	expect_next_record_stored(r, NREC + 1);
}
END_TEST

/* Not even the last record can be read: the run is lost, with a reason,
 * rather than rescheduled with a seq that collides. */
START_TEST(test_recover_lost_when_records_unreadable)
{
	struct run_info ri;

	open_store();
	store_run("r-queued", RUN_QUEUED, NREC);
	close_store();
	corrupt_page_of("r-queued", NREC);
	daemon_start();
	ck_assert_msg(run_find("r-queued") == NULL, "run rescheduled although its records cannot be read");
	ck_assert_int_eq(store_run_get(osirisd.store, "r-queued", &ri), 0);
	ck_assert_str_eq(run_state_name(ri.state), "lost");
	ck_assert_ptr_nonnull(ri.error);
	ck_assert_msg(strstr(ri.error, "records") != NULL, "reason does not name the records: %s", ri.error);
	run_info_free(&ri);
}
END_TEST

/* A run lost at restart gets the row's last_seq right too (run.get). */
START_TEST(test_recover_lost_run_last_seq)
{
	struct run_info ri;

	open_store();
	store_run("r-running", RUN_RUNNING, 7);
	close_store();
	daemon_start();
	ck_assert_ptr_null(run_find("r-running"));
	ck_assert_int_eq(store_run_get(osirisd.store, "r-running", &ri), 0);
	ck_assert_str_eq(run_state_name(ri.state), "lost");
	ck_assert_int_eq(ri.last_seq, 7);
	run_info_free(&ri);
}
END_TEST

/* -- artifact collection (the streamed path) --------------------------- */

/* A worker that is a buffer: requests the run sends land in fake.sent. */
static struct {
	struct pool pool;
	struct worker w;
	struct buf sent;
} fake;

static ssize_t fake_write(void *tctx, const void *buf, size_t len)
{
	(void)tctx;
	buf_add(&fake.sent, buf, len);
	return (ssize_t)len;
}

static void fake_kill(void *tctx, int hard)
{
	(void)tctx;
	(void)hard;
}

static const struct wsess_transport fake_transport = {.write = fake_write, .kill = fake_kill};
static const struct wsess_owner fake_owner = {0};

static void fake_release(struct worker *w)
{
	(void)w;
}

static void fake_cancel(struct worker *w, int hard)
{
	(void)w;
	(void)hard;
}

static const struct pool_ops fake_ops = {
    .name = "fake",
    .cancel = fake_cancel,
    .release = fake_release,
};

static void fake_notify_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	(void)w;
	(void)m;
	(void)arg;
}

static void fake_error_cb(struct worker *w, const char *why, void *arg)
{
	(void)w;
	(void)arg;
	ck_abort_msg("worker connection broken: %s", why);
}

static const struct wsess_user fake_user = {.notify = fake_notify_cb, .error = fake_error_cb};

/* Answer every `read` the run sent with the whole file at once; returns
 * the paths asked for, space-separated. */
static void serve_reads(struct wsess *ws, const char *data, char *asked, size_t askedlen)
{
	struct rpc_msg m;
	msgpack_packer pk;
	struct buf resp;
	char err[256], *path;
	size_t len;

	*asked = '\0';
	while (fake.sent.len > 0) {
		const char *serr = NULL;
		size_t need = 0;
		struct rpc_limits l;

		rpc_limits_default(&l, 1 << 20);
		ck_assert_int_eq(rpc_scan(fake.sent.data, fake.sent.len, &l, &len, &need, &serr), RPC_SCAN_OK);
		ck_assert_msg(rpc_decode(fake.sent.data, len, &m, err, sizeof(err)) == 0, "%s", err);
		buf_consume(&fake.sent, len);
		ck_assert_str_eq(m.method, "read");
		ck_assert_int_eq(mp_get_str(m.params, "path", &path), 0);
		snprintf(asked + strlen(asked), askedlen - strlen(asked), "%s ", path);
		free(path);
		buf_init(&resp);
		rpc_packer_init(&pk, &resp);
		rpc_pack_result_head(&pk, m.msgid);
		msgpack_pack_map(&pk, 2);
		mp_pack_key(&pk, "data");
		msgpack_pack_bin(&pk, strlen(data));
		msgpack_pack_bin_body(&pk, data, strlen(data));
		mp_pack_key(&pk, "eof");
		msgpack_pack_true(&pk);
		rpc_msg_free(&m);
		wsess_input(ws, resp.data, resp.len);
		buf_free(&resp);
	}
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
}

static void expect_text(const char *path, const char *text, const char *what)
{
	struct buf got;

	buf_init(&got);
	ck_assert_msg(file_read_all(path, 1024, &got) == 0, "%s: cannot read %s", what, path);
	ck_assert_msg(got.len == strlen(text) && memcmp(got.data, text, got.len) == 0, "%s: %s has '%.*s'", what, path,
	              (int)got.len, (const char *)got.data);
	buf_free(&got);
}

/* Symlinks planted inside the run's artifacts dir (a parent, the partial
 * file) never redirect a streamed write; a link at the final name is
 * replaced, not followed. The others are collected normally. */
START_TEST(test_collect_streamed_no_symlinks)
{
	static const char *paths[] = {"output/x.csv", "t.csv", "f.csv", "ok/y.csv"};
	const char *data = "hello\n";
	char outside[256], art[256], p[600], q[600], asked[1024], what[1200];
	struct artifact_info *arts;
	struct stat sb;
	struct run *r;
	size_t i;

	open_store();
	store_run("r-art", RUN_QUEUED, 0);
	close_store();
	daemon_start();
	r = run_find("r-art");
	ck_assert_ptr_nonnull(r);
	sched_remove(r);

	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/victim", outside);
	write_text(p, "keep\n");
	snprintf(art, sizeof(art), "%s/runs/r-art/artifacts", statedir);
	ck_assert_int_eq(mkdir(art, 0755), 0);
	snprintf(q, sizeof(q), "%s/output", art); /* a parent */
	ck_assert_int_eq(symlink(outside, q), 0);
	snprintf(q, sizeof(q), "%s/.t.csv.part", art); /* the partial file */
	ck_assert_int_eq(symlink(p, q), 0);
	snprintf(q, sizeof(q), "%s/f.csv", art); /* the final name */
	ck_assert_int_eq(symlink(p, q), 0);

	memset(&fake, 0, sizeof(fake));
	buf_init(&fake.sent);
	fake.pool.ops = &fake_ops;
	fake.pool.base = base;
	fake.pool.cfg = &cfg;
	snprintf(fake.w.id, sizeof(fake.w.id), "fake-1");
	fake.w.pool = &fake.pool;
	r->pool = &fake.pool;
	r->worker = &fake.w;
	r->phase = PHASE_ARTIFACTS;
	fake.w.sess = wsess_new(&fake.w, &fake_transport, NULL, &fake_owner, 1 << 20);
	wsess_attach(fake.w.sess, &fake_user, r);
	arts = xcalloc(4, sizeof(*arts));
	for (i = 0; i < 4; i++) {
		arts[i].path = xstrdup(paths[i]);
		arts[i].size = (int64_t)strlen(data);
		sha256_hex(data, strlen(data), arts[i].sha256);
	}
	collect_start(r, arts, 4);
	serve_reads(fake.w.sess, data, asked, sizeof(asked)); /* the run ends: r is gone after the loop */
	event_base_loop(base, EVLOOP_NONBLOCK);
	wsess_free(fake.w.sess);

	snprintf(p, sizeof(p), "%s/victim", outside);
	snprintf(what, sizeof(what), "the file behind the symlinks (the run read: %s)", asked);
	expect_text(p, "keep\n", what);
	snprintf(p, sizeof(p), "%s/x.csv", outside);
	ck_assert_msg(access(p, F_OK) != 0, "a file was written through a symlinked parent");
	snprintf(p, sizeof(p), "%s/.x.csv.part", outside);
	ck_assert_msg(access(p, F_OK) != 0, "a partial file was written through a symlinked parent");
	snprintf(p, sizeof(p), "%s/f.csv", art);
	ck_assert_int_eq(lstat(p, &sb), 0);
	ck_assert_msg(S_ISREG(sb.st_mode), "f.csv is still a symlink");
	expect_text(p, data, "f.csv");
	snprintf(p, sizeof(p), "%s/ok/y.csv", art);
	expect_text(p, data, "ok/y.csv");
	buf_free(&fake.sent);
}
END_TEST

static Suite *run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("recover");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_recover_last_seq_from_records);
	tcase_add_test(tc, test_recover_unreadable_records);
	tcase_add_test(tc, test_recover_lost_when_records_unreadable);
	tcase_add_test(tc, test_recover_lost_run_last_seq);
	suite_add_tcase(s, tc);
	tc = tcase_create("collect");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_collect_streamed_no_symlinks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_suite());
	int failed;

	log_init("check_run", LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
