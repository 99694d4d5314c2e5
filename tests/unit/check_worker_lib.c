/*
 * check_worker_lib.c: the worker's pure pieces: ${VAR} substitution rules,
 * the bounded replay journal, workspace snapshots, the workspace made from
 * a bundle.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/harness/worker_harness.h"
#include "worker/worker.h"

static struct kvlist env, secrets;

static void setup(void)
{
	memset(&env, 0, sizeof(env));
	memset(&secrets, 0, sizeof(secrets));
	kvlist_add(&env, "DIR", "output");
	kvlist_add(&env, "SAME", "from-env");
	kvlist_add(&secrets, "PW", "hunter22");
	kvlist_add(&secrets, "SAME", "from-secret");
}

static void teardown(void)
{
	kvlist_free(&env);
	kvlist_free(&secrets);
}

static void subst_ok(const char *in, const char *want)
{
	char *out = NULL, err[256];

	ck_assert_msg(subst_string(in, &env, &secrets, "cfg/x.json", &out, err, sizeof(err)) == 0, "%s: %s", in, err);
	ck_assert_str_eq(out, want);
	free(out);
}

static void subst_bad(const char *in, const char *want)
{
	char *out = NULL, err[256];

	ck_assert_msg(subst_string(in, &env, &secrets, "cfg/x.json", &out, err, sizeof(err)) == -1, "accepted %s", in);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

START_TEST(test_subst_rules)
{
	subst_ok("${DIR}/a.csv", "output/a.csv");
	subst_ok("pw=${PW}!", "pw=hunter22!");
	subst_ok("${SAME}", "from-secret");
	subst_ok("no vars", "no vars");
	subst_ok("cost $5 and $DIR", "cost $5 and $DIR");
	subst_ok("$${DIR} stays", "${DIR} stays");
	subst_ok("${DIR}${DIR}", "outputoutput");
}
END_TEST

START_TEST(test_subst_errors)
{
	subst_bad("${HOME}", "cfg/x.json: ${HOME} is not set"); /* never the worker's own environment */
	subst_bad("${NOPE}/x", "cfg/x.json: ${NOPE} is not set");
	subst_bad("${unterminated", "bad variable reference");
	subst_bad("${1X}", "bad variable reference");
	subst_bad("${A:-default}", "bad variable reference");
	subst_bad("${}", "bad variable reference");
}
END_TEST

START_TEST(test_subst_cfg_tree)
{
	json_error_t je;
	json_t *cfg = json_loads(
	    "{\"path\":\"${DIR}/o.csv\",\"n\":1,\"l\":[\"${PW}\",{\"k\":\"${DIR}\"}],\"${DIR}\":\"x\"}", 0, &je);
	char err[256], *dump;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(subst_cfg(cfg, &env, &secrets, "cfg/x.json", err, sizeof(err)), 0);
	dump = json_dumps(cfg, JSON_COMPACT);
	ck_assert_str_eq(
	    dump, "{\"path\":\"output/o.csv\",\"n\":1,\"l\":[\"hunter22\",{\"k\":\"output\"}],\"${DIR}\":\"x\"}");
	free(dump);
	json_decref(cfg);
}
END_TEST

static int collect_cb(const struct journal_rec *r, void *arg)
{
	int64_t *sum = arg;

	*sum += r->seq;
	ck_assert_uint_eq(r->len, 100);
	return 0;
}

START_TEST(test_journal_bounds)
{
	struct journal j;
	char rec[100];
	int64_t seq, sum = 0;

	memset(rec, 'x', sizeof(rec));
	journal_init(&j);
	ck_assert_int_eq(journal_first_seq(&j), 0);
	for (seq = 1; seq <= WORKER_JOURNAL_RECORDS + 10; seq++)
		journal_add(&j, seq, rec, sizeof(rec));
	/* the record cap: the oldest 10 are gone */
	ck_assert_uint_eq(j.n, WORKER_JOURNAL_RECORDS);
	ck_assert_int_eq(journal_first_seq(&j), 11);
	journal_each(&j, WORKER_JOURNAL_RECORDS + 7, collect_cb, &sum);
	ck_assert_int_eq(sum,
	                 (WORKER_JOURNAL_RECORDS + 8) + (WORKER_JOURNAL_RECORDS + 9) + (WORKER_JOURNAL_RECORDS + 10));
	journal_free(&j);

	/* the byte cap: 16 MiB of 1 MiB records keeps at most 16 */
	journal_init(&j);
	{
		char *big = xcalloc(1, 1 << 20);
		for (seq = 1; seq <= 40; seq++)
			journal_add(&j, seq, big, 1 << 20);
		free(big);
	}
	ck_assert_uint_le(j.bytes, WORKER_JOURNAL_BYTES);
	ck_assert_uint_eq(j.n, 16);
	ck_assert_int_eq(journal_first_seq(&j), 25);
	journal_free(&j);
}
END_TEST

START_TEST(test_snapshot)
{
	char dir[] = "/tmp/check_worker_lib.XXXXXX", path[128];
	struct snap a, b;
	FILE *f;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/deep/x.txt", dir);
	mkdir_parents(path);
	f = fopen(path, "w");
	fputs("one", f);
	fclose(f);
	ck_assert_int_eq(snap_take(dir, &a), 0);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_str_eq(a.e[0].path, "sub/deep/x.txt");
	snprintf(path, sizeof(path), "%s/new.txt", dir);
	f = fopen(path, "w");
	fclose(f);
	snprintf(path, sizeof(path), "%s/sub/deep/x.txt", dir);
	f = fopen(path, "a");
	fputs("two", f);
	fclose(f);
	ck_assert_int_eq(snap_take(dir, &b), 0);
	ck_assert_uint_eq(b.n, 2);
	ck_assert(snap_changed(&a, snap_find(&b, "new.txt")));
	ck_assert(snap_changed(&a, snap_find(&b, "sub/deep/x.txt")));
	ck_assert(!snap_changed(&b, snap_find(&b, "new.txt")));
	ck_assert_ptr_null(snap_find(&b, "nope"));
	snap_free(&a);
	snap_free(&b);
	rmtree(dir);
}
END_TEST

/* write_file (the harness's), then chmod. */
static void put_file(const char *root, const char *rel, const char *text, mode_t mode)
{
	char *p;

	write_file(root, rel, text);
	xasprintf(&p, "%s/%s", root, rel);
	ck_assert_int_eq(chmod(p, mode), 0);
	free(p);
}

/* ws_create, then the workspace's file rel must hold text with mode. */
static void ws_expect(const struct worker *w, const char *rel, const char *text, mode_t mode)
{
	struct buf content;
	struct stat st;
	char *p;

	xasprintf(&p, "%s/%s", w->ws, rel);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, mode);
	buf_init(&content);
	ck_assert_int_eq(file_read_all(p, 100, &content), 0);
	ck_assert_str_eq(buf_cstr(&content), text);
	ck_assert_ptr_nonnull(snap_find(&w->base, rel)); /* listed in the base */
	buf_free(&content);
	free(p);
}

static void ws_done(struct worker *w)
{
	struct stat st;
	char *ws = xstrdup(w->ws);

	ck_assert_int_eq(ws_remove(w), 0);
	ck_assert_int_eq(stat(ws, &st), -1);
	watch_close(&w->watch);
	snap_free(&w->base);
	free(w->ws);
	free(ws);
}

/* The bundle unpacked into a workspace: modes get owner rw and lose
 * setuid and group/other write; an unsafe path is refused by name. */
START_TEST(test_workspace_from_bundle)
{
	char src[] = "/tmp/check_worker_lib.XXXXXX", work[] = "/tmp/check_worker_lib.XXXXXX", err[256];
	struct worker w;
	struct bundle b;

	ck_assert_ptr_nonnull(mkdtemp(src));
	ck_assert_ptr_nonnull(mkdtemp(work));
	put_file(src, "manifest.yaml", "pipeline: {id: movies}\n", 0644);
	put_file(src, "data/in.csv", "a,b\n1,2\n", 0444);
	put_file(src, "bin/run.sh", "#!/bin/sh\n", 04775);
	put_file(src, "a/b/c/deep.txt", "deep", 0600);
	ck_assert_msg(bundle_from_dir(&b, src, 1024, err, sizeof(err)) == 0, "%s", err);
	memset(&w, 0, sizeof(w));
	w.workdir = work;
	w.ws_fd = -1;
	w.watch.fd = -1;
	ck_assert_msg(ws_create(&w, &b, err, sizeof(err)) == 0, "%s", err);
	ws_expect(&w, "manifest.yaml", "pipeline: {id: movies}\n", 0644);
	ws_expect(&w, "data/in.csv", "a,b\n1,2\n", 0644);
	ws_expect(&w, "bin/run.sh", "#!/bin/sh\n", 0755);
	ws_expect(&w, "a/b/c/deep.txt", "deep", 0600);
	ws_done(&w);
	bundle_free(&b);

	memset(&b, 0, sizeof(b));
	b.files = xcalloc(1, sizeof(*b.files));
	b.n = 1;
	b.files[0].path = xstrdup("../escape.txt");
	b.files[0].mode = 0644;
	b.files[0].data = (const uint8_t *)"x";
	b.files[0].len = 1;
	memset(&w, 0, sizeof(w));
	w.workdir = work;
	w.ws_fd = -1;
	w.watch.fd = -1;
	ck_assert_int_eq(ws_create(&w, &b, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "unsafe path '../escape.txt'") != NULL, "%s", err);
	ws_done(&w);
	bundle_free(&b);
	ck_assert_int_eq(rmtree(src), 0);
	ck_assert_int_eq(rmtree(work), 0);
}
END_TEST

static Suite *worker_lib_suite(void)
{
	Suite *s = suite_create("worker_lib");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_subst_rules);
	tcase_add_test(tc, test_subst_errors);
	tcase_add_test(tc, test_subst_cfg_tree);
	tcase_add_test(tc, test_journal_bounds);
	tcase_add_test(tc, test_snapshot);
	tcase_add_test(tc, test_workspace_from_bundle);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(worker_lib_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
