/*
 * check_worker_reuse.c: one osiris-worker process serving two runs through
 * pipes with `reset` between them (local.worker_max_runs > 1): run B must
 * start at seq 1 and see nothing of run A (workspace, files, journal,
 * secrets); per-step artifact attribution when a file is rewritten.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/harness/worker_harness.h"

#define CANARY "canary-7f3a9c1e55d2"

/* Note i's "data" map value for key, or NULL. */
static const msgpack_object *note_data(const struct rpc_msg *n, const char *key)
{
	return mp_get(mp_get(n->params, "data"), key);
}

static int64_t note_seq(const struct rpc_msg *n)
{
	int64_t seq = -1;

	ck_assert_int_eq(mp_get_int(n->params, "seq", &seq), 0);
	return seq;
}

/* Run A's context: extract a CSV, write it twice to the same file (the
 * second writer changes it again), a cfg that references the secret. */
static void context_a(char *dir)
{
	strcpy(dir, "/tmp/check_reuse_a.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_file(dir, "manifest.yaml",
	           "pipeline:\n  id: reuse-a\nsteps:\n"
	           "  - id: ex\n    driver: filesystem.csv_extractor\n    cfg_path: cfg/ex.json\n    needs: []\n"
	           "  - id: w1\n    driver: filesystem.csv_writer\n    cfg_path: cfg/w1.json\n    needs: [ex]\n"
	           "  - id: w2\n    driver: filesystem.csv_writer\n    cfg_path: cfg/w2.json\n    needs: [ex, w1]\n");
	write_file(dir, "data/in.csv", "a,b\n1,x\n2,y\n3,z\n");
	write_file(
	    dir, "cfg/ex.json",
	    "{\"component\":\"filesystem.csv_extractor\",\"path\":\"data/in.csv\",\"note\":\"pw=${DB_PASSWORD}\"}\n");
	write_file(dir, "cfg/w1.json",
	           "{\"component\":\"filesystem.csv_writer\",\"path\":\"output/x.csv\",\"newline\":\"lf\"}\n");
	write_file(dir, "cfg/w2.json",
	           "{\"component\":\"filesystem.csv_writer\",\"path\":\"output/x.csv\",\"newline\":\"crlf\"}\n");
}

/* Run B's context: a step that would reveal the secret if it were still
 * known, after one that succeeds. */
static void context_b(char *dir)
{
	strcpy(dir, "/tmp/check_reuse_b.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_file(dir, "manifest.yaml",
	           "pipeline:\n  id: reuse-b\nsteps:\n"
	           "  - id: ok\n    driver: osiris.noop\n    cfg_path: cfg/ok.json\n    needs: []\n"
	           "  - id: probe\n    driver: osiris.noop\n    cfg_path: cfg/probe.json\n    needs: [ok]\n");
	write_file(dir, "cfg/ok.json", "{\"component\":\"osiris.noop\",\"mode\":\"transform\"}\n");
	write_file(dir, "cfg/probe.json", "{\"component\":\"osiris.noop\",\"note\":\"${DB_PASSWORD}\"}\n");
}

static void prepare_ctx(struct peer *p, const char *dir, const char *run_id, const char *secret, struct rpc_msg *resp)
{
	struct msg_prepare mp;
	msgpack_packer pk;
	struct buf b;
	char err[256];

	memset(&mp, 0, sizeof(mp));
	ck_assert_msg(bundle_from_dir(&mp.bundle, dir, 64 << 20, err, sizeof(err)) == 0, "%s", err);
	mp.run_id = xstrdup(run_id);
	mp.manifest = xstrdup("manifest.yaml");
	if (secret != NULL)
		kvlist_add(&mp.secrets, "DB_PASSWORD", secret);
	req_begin(p, &b, &pk, "prepare");
	msg_prepare_pack(&pk, &mp);
	req_call(p, &b, resp);
	bundle_free(&mp.bundle);
	msg_prepare_free(&mp);
}

static size_t workdir_entries(const struct peer *p)
{
	char cmd[128];
	FILE *f;
	size_t n = 0;
	char line[256];

	snprintf(cmd, sizeof(cmd), "ls -A '%s'", p->workdir);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n++;
	pclose(f);
	return n;
}

/* finish: the artifact list as path -> step_id (NULL: none). */
static void finish_list(struct peer *p, struct kvlist *out)
{
	const msgpack_object *arts;
	struct rpc_msg resp;
	char err[256];
	size_t i;

	call_simple(p, "finish", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	arts = mp_get(resp.result, "artifacts");
	ck_assert_ptr_nonnull(arts);
	for (i = 0; i < arts->via.array.size; i++) {
		struct artifact_info a;
		ck_assert_int_eq(artifact_info_decode(&arts->via.array.ptr[i], &a, err, sizeof(err)), 0);
		kvlist_add(out, a.path, a.step_id != NULL ? a.step_id : "");
		artifact_info_free(&a);
	}
	rpc_msg_free(&resp);
}

static void read_expect(struct peer *p, const char *path, const char *code)
{
	struct rpc_msg resp;
	msgpack_packer pk;
	struct buf b;

	req_begin(p, &b, &pk, "read");
	msgpack_pack_map(&pk, 3);
	mp_pack_kstr(&pk, "path", path);
	mp_pack_kint(&pk, "offset", 0);
	mp_pack_kint(&pk, "length", 4096);
	req_call(p, &b, &resp);
	if (code == NULL)
		ck_assert_msg(resp.error == NULL, "read %s failed", path);
	else
		ck_assert_msg(resp.error != NULL && mp_str_eq(mp_get(resp.error, "code"), code), "read %s: expected %s",
		              path, code);
	rpc_msg_free(&resp);
}

/* Run A with a secret, reset, run B on the same process: B starts at seq
 * 1, sees none of A's workspace, files, journal, env or secrets. */
START_TEST(test_two_runs_one_worker)
{
	struct peer p;
	struct rpc_msg resp;
	struct step_result r;
	struct kvlist arts;
	char a_dir[64], b_dir[64];
	size_t i, a_notes, b_from, a_bytes, n_created = 0;
	static const char *a_steps[] = {"ex", "w1", "w2"};

	harness_find_worker();
	context_a(a_dir);
	context_b(b_dir);
	peer_start(&p, NULL);

	/* run A */
	prepare_ctx(&p, a_dir, "run-A", CANARY, &resp);
	ck_assert_msg(resp.error == NULL, "prepare A failed");
	rpc_msg_free(&resp);
	for (i = 0; i < 3; i++) {
		exec_step(&p, a_steps[i], &r);
		ck_assert_msg(r.state == STEP_SUCCEEDED, "%s: %s", a_steps[i], r.error ? r.error : "?");
		step_result_free(&r);
	}
	/* output/x.csv announced after w1 and again after w2, each once */
	for (i = 0; i < p.nnotes; i++) {
		if (note_is(&p.notes[i], "artifact_created", NULL) &&
		    mp_str_eq(note_data(&p.notes[i], "path"), "output/x.csv")) {
			ck_assert(mp_str_eq(mp_get(p.notes[i].params, "step_id"), n_created == 0 ? "w1" : "w2"));
			n_created++;
		}
	}
	ck_assert_uint_eq(n_created, 2);
	memset(&arts, 0, sizeof(arts));
	finish_list(&p, &arts);
	ck_assert_ptr_nonnull(kvlist_get(&arts, "output/x.csv"));
	ck_assert_str_eq(kvlist_get(&arts, "output/x.csv"), "w2"); /* changed last by w2 */
	ck_assert_str_eq(kvlist_get(&arts, "artifacts/w1/cleaned_config.json"), "w1");
	ck_assert_str_eq(kvlist_get(&arts, "artifacts/ex/cleaned_config.json"), "ex");
	ck_assert_ptr_null(kvlist_get(&arts, "data/in.csv"));
	kvlist_free(&arts);
	read_expect(&p, "output/x.csv", NULL);

	/* one run at a time: a second prepare needs a reset */
	prepare_ctx(&p, b_dir, "run-B", NULL, &resp);
	ck_assert_ptr_nonnull(resp.error);
	rpc_msg_free(&resp);

	a_notes = p.nnotes;
	a_bytes = p.all.len;
	call_simple(&p, "reset", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	ck_assert_uint_eq(workdir_entries(&p), 0); /* A's workspace is gone */
	/* nothing to read or finish until the next prepare */
	read_expect(&p, "output/x.csv", "invalid_request");

	/* run B */
	b_from = p.nnotes;
	prepare_ctx(&p, b_dir, "run-B", NULL, &resp);
	ck_assert_msg(resp.error == NULL, "prepare B failed");
	rpc_msg_free(&resp);
	ck_assert_uint_eq(workdir_entries(&p), 1);
	ck_assert_uint_gt(p.nnotes, b_from);
	ck_assert(note_is(&p.notes[b_from], "run_start", NULL));
	ck_assert_int_eq(note_seq(&p.notes[b_from]), 1);
	ck_assert(mp_str_eq(note_data(&p.notes[b_from], "run_id"), "run-B"));
	exec_step(&p, "ok", &r);
	ck_assert_int_eq(r.state, STEP_SUCCEEDED);
	step_result_free(&r);
	exec_step(&p, "probe", &r);
	ck_assert_int_eq(r.state, STEP_FAILED);
	ck_assert_ptr_nonnull(r.error);
	ck_assert_msg(strstr(r.error, "DB_PASSWORD") != NULL && strstr(r.error, "not set") != NULL, "%s", r.error);
	step_result_free(&r);
	memset(&arts, 0, sizeof(arts));
	finish_list(&p, &arts);
	ck_assert_ptr_null(kvlist_get(&arts, "output/x.csv"));
	ck_assert_ptr_null(kvlist_get(&arts, "artifacts/w1/cleaned_config.json"));
	ck_assert_str_eq(kvlist_get(&arts, "artifacts/ok/cleaned_config.json"), "ok");
	ck_assert_uint_eq(arts.n, 1);
	kvlist_free(&arts);
	read_expect(&p, "output/x.csv", "not_found");
	read_expect(&p, "data/in.csv", "not_found");

	/* seq is contiguous from 1 in B; replay holds B's records only */
	for (i = b_from; i < p.nnotes; i++)
		ck_assert_int_eq(note_seq(&p.notes[i]), (int64_t)(i - b_from) + 1);
	{
		size_t before = p.nnotes;
		msgpack_packer pk;
		struct buf b;
		req_begin(&p, &b, &pk, "replay");
		msgpack_pack_map(&pk, 1);
		mp_pack_kint(&pk, "since", 0);
		req_call(&p, &b, &resp);
		ck_assert_uint_eq(p.nnotes - before, before - b_from);
		ck_assert_int_eq(mp_get(resp.result, "last_seq")->via.u64, before - b_from);
		ck_assert_int_eq(mp_get(resp.result, "first_seq")->via.u64, 1);
		for (i = before; i < p.nnotes; i++)
			ck_assert(!mp_str_eq(note_data(&p.notes[i], "run_id"), "run-A"));
		rpc_msg_free(&resp);
	}
	ck_assert_uint_gt(a_notes, 10);
	/* the canary never reached stdout, before or after the reset */
	ck_assert(!buf_contains(&p.all, CANARY));
	ck_assert_uint_gt(p.all.len, a_bytes);
	peer_finish(&p);
	rmtree(a_dir);
	rmtree(b_dir);
}
END_TEST

/* reset is harmless on a fresh worker and twice in a row; a worker reset
 * after a failed prepare serves the next run. */
START_TEST(test_reset_idempotent)
{
	struct peer p;
	struct rpc_msg resp;
	struct step_result r;
	char b_dir[64];

	harness_find_worker();
	context_b(b_dir);
	peer_start(&p, NULL);
	call_simple(&p, "reset", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	call_simple(&p, "reset", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	/* a prepare that fails (no such manifest) leaves nothing behind */
	write_file(b_dir, "other.yaml", "not: [a manifest\n");
	{
		struct msg_prepare mp;
		msgpack_packer pk;
		struct buf b;
		char err[256];
		memset(&mp, 0, sizeof(mp));
		ck_assert_int_eq(bundle_from_dir(&mp.bundle, b_dir, 64 << 20, err, sizeof(err)), 0);
		mp.run_id = xstrdup("run-bad");
		mp.manifest = xstrdup("other.yaml");
		kvlist_add(&mp.secrets, "DB_PASSWORD", CANARY);
		req_begin(&p, &b, &pk, "prepare");
		msg_prepare_pack(&pk, &mp);
		req_call(&p, &b, &resp);
		ck_assert_ptr_nonnull(resp.error);
		rpc_msg_free(&resp);
		bundle_free(&mp.bundle);
		msg_prepare_free(&mp);
	}
	ck_assert_uint_eq(workdir_entries(&p), 0);
	call_simple(&p, "reset", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	prepare_ctx(&p, b_dir, "run-B", NULL, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	exec_step(&p, "ok", &r);
	ck_assert_int_eq(r.state, STEP_SUCCEEDED);
	step_result_free(&r);
	exec_step(&p, "probe", &r);
	ck_assert_int_eq(r.state, STEP_FAILED);
	step_result_free(&r);
	ck_assert(!buf_contains(&p.all, CANARY));
	peer_finish(&p);
	rmtree(b_dir);
}
END_TEST

static Suite *reuse_suite(void)
{
	Suite *s = suite_create("worker_reuse");
	TCase *tc = tcase_create("reset");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_two_runs_one_worker);
	tcase_add_test(tc, test_reset_idempotent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return harness_run_suite(reuse_suite());
}
