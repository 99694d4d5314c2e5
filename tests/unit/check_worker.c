/*
 * check_worker.c: the real osiris-worker binary driven through pipes with
 * the worker protocol (PROTOCOL.md §4): the join example end to end, event
 * order and seq, artifacts and read, replay, failures, ${VAR}, cancel,
 * EOF cleanup, and a secret canary that must never reach stdout.
 */
#include <check.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/harness/worker_harness.h"

#define CANARY "canary-7f3a9c1e55d2"

static char example_dir[PATH_MAX];

static void find_paths(void)
{
	harness_find_worker();
	snprintf(example_dir, sizeof(example_dir), "examples/join-csv");
	ck_assert_msg(access(example_dir, R_OK) == 0, "run from the repository root (examples/join-csv)");
}

static void copy_tree(const char *src, const char *dst)
{
	char cmd[2 * PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "cp -r '%s/.' '%s'", src, dst);
	ck_assert_int_eq(system(cmd), 0);
}

/* prepare with the bundle of `dir`; returns the response. */
static void prepare_dir(struct peer *p, const char *dir, const char *secret, struct rpc_msg *resp)
{
	struct msg_prepare mp;
	msgpack_packer pk;
	struct buf b;
	char err[256];

	memset(&mp, 0, sizeof(mp));
	ck_assert_msg(bundle_from_dir(&mp.bundle, dir, 64 << 20, err, sizeof(err)) == 0, "%s", err);
	mp.run_id = xstrdup("run-1");
	mp.manifest = xstrdup("manifest.yaml");
	kvlist_add(&mp.env, "OUT_DIR", "output");
	if (secret != NULL)
		kvlist_add(&mp.secrets, "DB_PASSWORD", secret);
	req_begin(p, &b, &pk, "prepare");
	msg_prepare_pack(&pk, &mp);
	req_call(p, &b, resp);
	bundle_free(&mp.bundle);
	msg_prepare_free(&mp);
}

static const char *join_steps[] = {"extract-customers", "extract-orders", "compute-customer-totals",
                                   "write-customer-totals"};

static const char *expected_totals = "customer_id,name,country,order_count,total_amount\n"
                                     "3,Alan Turing,UK,2,262.75\n"
                                     "2,\"Hopper, Grace\",US,2,175.25\n"
                                     "1,Ada Lovelace,UK,3,160\n"
                                     "4,Zo\xc3\xab M\xc3\xbcller,DE,2,100\n"
                                     "5,\"Linus \"\"Penguin\"\" T.\",FI,1,42.42\n";

/* The join example with a canary secret referenced from two cfgs. */
static void join_context(char *dir)
{
	strcpy(dir, "/tmp/check_worker_ctx.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	copy_tree(example_dir, dir);
	write_file(
	    dir, "cfg/write-customer-totals.json",
	    "{\"component\":\"filesystem.csv_writer\",\"mode\":\"write\",\"path\":\"${OUT_DIR}/customer_totals.csv\","
	    "\"api_token\":\"${DB_PASSWORD}\",\"newline\":\"lf\"}\n");
	write_file(dir, "cfg/extract-orders.json",
	           "{\"component\":\"filesystem.csv_extractor\",\"path\":\"data/"
	           "orders.csv\",\"note\":\"pw=${DB_PASSWORD}\"}\n");
}

/* `read`s of one file whose content is src: each answer is
 * src[offset, offset + length) clipped to the end, `size` the whole length,
 * `eof` whether the answer reaches the end. A negative offset is that many
 * bytes past the end. With code set, the read is refused with that code. */
struct read_case {
	const char *path;
	int64_t offset, length;
	const char *code;
};

static void check_reads(struct peer *p, const struct read_case *rc, size_t n, const void *src, size_t srclen)
{
	const msgpack_object *o;
	struct rpc_msg resp;
	msgpack_packer pk;
	struct buf b;
	int64_t off;
	size_t i, want;
	int eof;

	for (i = 0; i < n; i++) {
		off = rc[i].offset >= 0 ? rc[i].offset : (int64_t)srclen - rc[i].offset;
		req_begin(p, &b, &pk, "read");
		msgpack_pack_map(&pk, 3);
		mp_pack_kstr(&pk, "path", rc[i].path);
		mp_pack_kint(&pk, "offset", off);
		mp_pack_kint(&pk, "length", rc[i].length);
		req_call(p, &b, &resp);
		if (rc[i].code != NULL) {
			ck_assert_msg(resp.error != NULL, "read %s: not refused", rc[i].path);
			ck_assert_msg(mp_str_eq(mp_get(resp.error, "code"), rc[i].code), "read %s: another code",
			              rc[i].path);
			rpc_msg_free(&resp);
			continue;
		}
		ck_assert_msg(resp.error == NULL, "read %s at %lld: refused", rc[i].path, (long long)off);
		want = (size_t)off >= srclen ? 0 : srclen - (size_t)off;
		if ((int64_t)want > rc[i].length)
			want = (size_t)rc[i].length;
		o = mp_get(resp.result, "data");
		ck_assert_ptr_nonnull(o);
		ck_assert_int_eq(o->type, MSGPACK_OBJECT_BIN);
		ck_assert_uint_eq(o->via.bin.size, want);
		ck_assert(want == 0 || memcmp(o->via.bin.ptr, (const char *)src + off, want) == 0);
		ck_assert_int_eq(mp_get(resp.result, "size")->via.u64, srclen);
		ck_assert_int_eq(mp_get(resp.result, "eof")->type, MSGPACK_OBJECT_BOOLEAN);
		ck_assert_int_eq(mp_get_bool(resp.result, "eof", &eof), 0);
		ck_assert_int_eq(eof, (size_t)off + want >= srclen);
		rpc_msg_free(&resp);
	}
}

static const struct read_case join_reads[] = {
    {"output/customer_totals.csv", 0, 20, NULL},
    {"output/customer_totals.csv", 20, 4194304, NULL},
    {"data/orders.csv", 0, 10, "not_found"},
};

START_TEST(test_join_end_to_end)
{
	struct peer p;
	struct rpc_msg resp;
	struct step_result r;
	const msgpack_object *arts, *o;
	char dir[64], sha[65];
	size_t i, found = 0;
	ssize_t k;

	find_paths();
	join_context(dir);
	peer_start(&p, "-v");
	prepare_dir(&p, dir, CANARY, &resp);
	ck_assert_msg(resp.error == NULL, "prepare failed");
	ck_assert_ptr_nonnull(mp_get(resp.result, "steps"));
	ck_assert_int_eq(mp_get(resp.result, "steps")->via.u64, 4);
	rpc_msg_free(&resp);
	for (i = 0; i < 4; i++) {
		exec_step(&p, join_steps[i], &r);
		ck_assert_msg(r.state == STEP_SUCCEEDED, "%s: %s", join_steps[i], r.error ? r.error : "?");
		step_result_free(&r);
	}
	/* a step cannot run twice */
	call_simple(&p, "exec_step", "step_id", "extract-customers", &resp);
	ck_assert_ptr_nonnull(resp.error);
	rpc_msg_free(&resp);

	call_simple(&p, "finish", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	arts = mp_get(resp.result, "artifacts");
	ck_assert_ptr_nonnull(arts);
	for (i = 0; i < arts->via.array.size; i++) {
		struct artifact_info a;
		char err[256];
		ck_assert_int_eq(artifact_info_decode(&arts->via.array.ptr[i], &a, err, sizeof(err)), 0);
		if (strcmp(a.path, "output/customer_totals.csv") == 0) {
			found++;
			ck_assert_str_eq(a.step_id, "write-customer-totals");
			ck_assert_int_eq(a.size, (int64_t)strlen(expected_totals));
			sha256_hex(expected_totals, strlen(expected_totals), sha);
			ck_assert_str_eq(a.sha256, sha);
		}
		if (strcmp(a.path, "artifacts/extract-orders/cleaned_config.json") == 0)
			found++;
		ck_assert_msg(strncmp(a.path, "data/", 5) != 0 && strncmp(a.path, "cfg/", 4) != 0,
		              "unchanged input listed: %s", a.path);
		artifact_info_free(&a);
	}
	ck_assert_uint_eq(found, 2);
	rpc_msg_free(&resp);

	/* read the output back in two chunks; only artifacts can be read */
	check_reads(&p, join_reads, sizeof(join_reads) / sizeof(join_reads[0]), expected_totals,
	            strlen(expected_totals));

	/* events: seq 1..N without gaps, run_start first, run_complete last */
	ck_assert_uint_gt(p.nnotes, 20);
	for (i = 0; i < p.nnotes; i++) {
		int64_t seq = -1;
		ck_assert_int_eq(mp_get_int(p.notes[i].params, "seq", &seq), 0);
		ck_assert_int_eq(seq, (int64_t)i + 1);
		ck_assert_ptr_nonnull(mp_get(p.notes[i].params, "ts"));
	}
	ck_assert(note_is(&p.notes[0], "run_start", NULL));
	ck_assert(note_is(&p.notes[p.nnotes - 1], "run_complete", NULL));
	for (i = 0; i < 4; i++) {
		ssize_t s = note_find(&p, "step_start", join_steps[i]),
		        c = note_find(&p, "step_complete", join_steps[i]);
		ck_assert_msg(s >= 0 && c > s, "step %s: start %zd complete %zd", join_steps[i], s, c);
		if (i > 0)
			ck_assert(s > note_find(&p, "step_complete", join_steps[i - 1]));
	}
	k = note_find(&p, "inputs_resolved", "compute-customer-totals");
	ck_assert_int_ge(k, 0);
	ck_assert(mp_str_eq(mp_get(mp_get(p.notes[k].params, "data"), "key"), "df_extract_orders"));
	ck_assert_int_ge(note_find(&p, "rows_read", "extract-orders"), 0);
	ck_assert_int_ge(note_find(&p, "step_duration_ms", "write-customer-totals"), 0);
	ck_assert_int_ge(note_find(&p, "artifact_created", "write-customer-totals"), 0);
	ck_assert(buf_contains(&p.all, "unknown/unsupported key 'api_token' ignored"));
	ck_assert(buf_contains(&p.all, "read 10 rows, 4 columns from data/orders.csv"));

	/* replay re-sends the journal */
	{
		size_t before = p.nnotes;
		msgpack_packer pk;
		struct buf b;
		req_begin(&p, &b, &pk, "replay");
		msgpack_pack_map(&pk, 1);
		mp_pack_kint(&pk, "since", (int64_t)before - 3);
		req_call(&p, &b, &resp);
		ck_assert_uint_eq(p.nnotes, before + 3);
		ck_assert_int_eq(mp_get(resp.result, "last_seq")->via.u64, before);
		ck_assert_int_eq(memcmp(p.notes[before].raw, p.notes[before - 3].raw, p.notes[before].rawlen), 0);
		rpc_msg_free(&resp);
	}
	call_simple(&p, "no_such_method", NULL, NULL, &resp);
	ck_assert(mp_str_eq(mp_get(resp.error, "code"), "invalid_request"));
	rpc_msg_free(&resp);
	call_simple(&p, "ping", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);

	/* cleaned_config.json holds the substituted cfg, secret masked */
	{
		msgpack_packer pk;
		struct buf b;
		req_begin(&p, &b, &pk, "read");
		msgpack_pack_map(&pk, 3);
		mp_pack_kstr(&pk, "path", "artifacts/extract-orders/cleaned_config.json");
		mp_pack_kint(&pk, "offset", 0);
		mp_pack_kint(&pk, "length", 65536);
		req_call(&p, &b, &resp);
		o = mp_get(resp.result, "data");
		ck_assert_ptr_nonnull(o);
		ck_assert(memmem(o->via.bin.ptr, o->via.bin.size, "\"pw=***\"", 8) != NULL);
		ck_assert(memmem(o->via.bin.ptr, o->via.bin.size, "component", 9) == NULL);
		rpc_msg_free(&resp);
	}
	ck_assert_msg(!buf_contains(&p.all, CANARY), "the secret reached the worker's stdout");
	peer_finish(&p);
	rmtree(dir);
}
END_TEST

static int cleaned_files;

static int count_cleaned_cb(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)f;
	if (type == FTW_F && strstr(path, "cleaned_config.json") != NULL)
		cleaned_files++;
	return 0;
}

/* issue 8: cleaned_config.json is made in memory (no file in the
 * workspace), announced, sent inline by `finish` with the right sha256 and
 * served by `read` from memory. */
static const struct read_case cleaned_reads[] = {
    {"artifacts/extract-orders/cleaned_config.json", 3, 5, NULL},
    {"artifacts/extract-orders/cleaned_config.json", -10, 5, NULL},
};

START_TEST(test_cleaned_config_in_memory)
{
	const char *path = "artifacts/extract-orders/cleaned_config.json";
	const msgpack_object *arts, *o;
	struct rpc_msg resp;
	struct step_result r;
	struct peer p;
	char dir[64], sha[65];
	struct buf inl;
	size_t i;

	find_paths();
	join_context(dir);
	peer_start(&p, "-v");
	prepare_dir(&p, dir, CANARY, &resp);
	ck_assert_msg(resp.error == NULL, "prepare failed");
	rpc_msg_free(&resp);
	exec_step(&p, "extract-orders", &r);
	ck_assert_msg(r.state == STEP_SUCCEEDED, "%s", r.error ? r.error : "?");
	step_result_free(&r);
	ck_assert_int_ge(note_find(&p, "artifact_created", "extract-orders"), 0);
	ck_assert(buf_contains(&p.all, path));
	cleaned_files = 0;
	ck_assert_int_eq(nftw(p.workdir, count_cleaned_cb, 16, FTW_PHYS), 0);
	ck_assert_int_eq(cleaned_files, 0);

	call_simple(&p, "finish", NULL, NULL, &resp);
	ck_assert_ptr_null(resp.error);
	arts = mp_get(resp.result, "artifacts");
	ck_assert_ptr_nonnull(arts);
	buf_init(&inl);
	for (i = 0; i < arts->via.array.size; i++) {
		struct artifact_info a;
		char err[256];
		ck_assert_int_eq(artifact_info_decode(&arts->via.array.ptr[i], &a, err, sizeof(err)), 0);
		if (strcmp(a.path, path) == 0) {
			o = mp_get(&arts->via.array.ptr[i], "data");
			ck_assert_ptr_nonnull(o);
			ck_assert_int_eq(o->type, MSGPACK_OBJECT_BIN);
			ck_assert_int_eq(a.size, (int64_t)o->via.bin.size);
			sha256_hex(o->via.bin.ptr, o->via.bin.size, sha);
			ck_assert_str_eq(a.sha256, sha);
			ck_assert_str_eq(a.step_id, "extract-orders");
			buf_add(&inl, o->via.bin.ptr, o->via.bin.size);
		}
		artifact_info_free(&a);
	}
	ck_assert_uint_gt(inl.len, 10);
	ck_assert(memmem(inl.data, inl.len, "\"pw=***\"", 8) != NULL);
	rpc_msg_free(&resp);
	/* served from memory: a slice, and past the end (empty, eof) */
	check_reads(&p, cleaned_reads, sizeof(cleaned_reads) / sizeof(cleaned_reads[0]), inl.data, inl.len);
	buf_free(&inl);
	peer_finish(&p);
	rmtree(dir);
}
END_TEST

/* Runs of the join example with broken cfgs: each step's state and error
 * (the whole line, or a part of it), the error type where it matters; then
 * every run answers an unknown step not_found and `finish {failed:true}`
 * with run_failed last, and the canary secret never reaches stdout. */
struct step_expect {
	const char *step;
	enum step_state state;
	const char *error; /* NULL: none checked */
	int exact;         /* error is the whole line, else a part */
	const char *error_type;
};
static const struct failure_case {
	const char *what;
	const char *cfg[2][2]; /* {file, text} written over the example's */
	struct step_expect steps[3];
} failure_cases[] = {
    {"unset ${VAR}, then a step whose input failed",
     {{"cfg/compute-customer-totals.json",
       "{\"component\":\"duckdb.processor\",\"query\":\"SELEC * FROM \\\"${DB_PASSWORD}\\\"\"}\n"},
      {"cfg/extract-customers.json", "{\"path\":\"${NOT_SET_ANYWHERE}/customers.csv\"}\n"}},
     {{"extract-customers", STEP_FAILED, "cfg/extract-customers.json: ${NOT_SET_ANYWHERE} is not set", 1, NULL},
      {"extract-orders", STEP_SUCCEEDED, NULL, 0, NULL},
      {"compute-customer-totals", STEP_FAILED, "df_extract_customers", 0, NULL}}},
    {"bad SQL naming the secret: masked",
     {{"cfg/compute-customer-totals.json",
       "{\"component\":\"duckdb.processor\",\"query\":\"SELECT * FROM \\\"${DB_PASSWORD}\\\"\"}\n"},
      {NULL, NULL}},
     {{"extract-customers", STEP_SUCCEEDED, NULL, 0, NULL},
      {"extract-orders", STEP_SUCCEEDED, NULL, 0, NULL},
      {"compute-customer-totals", STEP_FAILED, "query: no such table: ***", 1, "SQLError"}}},
};

static void check_step(struct peer *p, const char *what, const struct step_expect *e)
{
	struct step_result r;

	exec_step(p, e->step, &r);
	ck_assert_msg(r.state == e->state, "%s: %s: state %d (%s)", what, e->step, r.state, r.error ? r.error : "-");
	if (e->error != NULL && e->exact)
		ck_assert_str_eq(r.error, e->error);
	else if (e->error != NULL)
		ck_assert_msg(strstr(r.error, e->error) != NULL, "%s: %s: %s", what, e->step, r.error);
	if (e->error_type != NULL)
		ck_assert_str_eq(r.error_type, e->error_type);
	step_result_free(&r);
	if (e->state == STEP_FAILED)
		ck_assert_msg(note_find(p, "step_failed", e->step) >= 0, "%s: no step_failed for %s", what, e->step);
}

START_TEST(test_failures)
{
	const struct failure_case *c = &failure_cases[_i];
	struct rpc_msg resp;
	msgpack_packer pk;
	struct peer p;
	struct buf b;
	char dir[64];
	size_t i;

	find_paths();
	join_context(dir);
	for (i = 0; i < 2 && c->cfg[i][0] != NULL; i++)
		write_file(dir, c->cfg[i][0], c->cfg[i][1]);
	peer_start(&p, NULL);
	prepare_dir(&p, dir, CANARY, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	for (i = 0; i < 3; i++)
		check_step(&p, c->what, &c->steps[i]);
	call_simple(&p, "exec_step", "step_id", "ghost", &resp);
	ck_assert(mp_str_eq(mp_get(resp.error, "code"), "not_found"));
	rpc_msg_free(&resp);
	req_begin(&p, &b, &pk, "finish");
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "failed");
	msgpack_pack_true(&pk);
	req_call(&p, &b, &resp);
	ck_assert_ptr_null(resp.error);
	rpc_msg_free(&resp);
	ck_assert(note_is(&p.notes[p.nnotes - 1], "run_failed", NULL));
	ck_assert_msg(!buf_contains(&p.all, CANARY), "%s: the secret reached stdout", c->what);
	peer_finish(&p);
	rmtree(dir);
}
END_TEST

/* Manifests `prepare` refuses (invalid_manifest; the whole message where
 * given), one after the other on the same worker, which says nothing. */
static const struct {
	const char *manifest, *message;
} invalid_manifests[] = {
    {"steps:\n- id: a\n  driver: no.such_driver\n  cfg_path: cfg/a.json\n",
     "manifest.yaml:3: step 'a': unknown driver 'no.such_driver'"},
    {"steps:\n- id: a\n  driver: osiris.noop\n  cfg_path: cfg/missing.json\n", NULL},
};

START_TEST(test_invalid_manifest)
{
	struct peer p;
	struct rpc_msg resp;
	char dir[64];
	size_t i;

	find_paths();
	join_context(dir);
	peer_start(&p, NULL);
	for (i = 0; i < sizeof(invalid_manifests) / sizeof(invalid_manifests[0]); i++) {
		write_file(dir, "manifest.yaml", invalid_manifests[i].manifest);
		prepare_dir(&p, dir, NULL, &resp);
		ck_assert_ptr_nonnull(resp.error);
		ck_assert(mp_str_eq(mp_get(resp.error, "code"), "invalid_manifest"));
		if (invalid_manifests[i].message != NULL)
			ck_assert(mp_str_eq(mp_get(resp.error, "message"), invalid_manifests[i].message));
		rpc_msg_free(&resp);
	}
	ck_assert_uint_eq(p.nnotes, 0);
	peer_finish(&p);
	rmtree(dir);
}
END_TEST

/* A long step stops on a `cancel` request (read while the step runs) or
 * on SIGTERM. */
START_TEST(test_cancel)
{
	struct peer p;
	struct rpc_msg resp;
	char dir[64], err[256];
	int how;

	find_paths();
	strcpy(dir, "/tmp/check_worker_ctx.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_file(dir, "manifest.yaml", "steps:\n- id: slow\n  driver: osiris.noop\n  cfg_path: cfg/slow.json\n");
	write_file(dir, "cfg/slow.json", "{\"sleep_ms\":20000}\n");
	for (how = 0; how < 2; how++) {
		struct step_result r;
		msgpack_packer pk;
		struct buf b;
		int64_t t0;

		peer_start(&p, NULL);
		prepare_dir(&p, dir, NULL, &resp);
		ck_assert_ptr_null(resp.error);
		rpc_msg_free(&resp);
		t0 = time_mono_us();
		req_begin(&p, &b, &pk, "exec_step");
		msgpack_pack_map(&pk, 1);
		mp_pack_kstr(&pk, "step_id", "slow");
		peer_send(&p, &b);
		buf_free(&b);
		usleep(200000);
		if (how == 0) {
			req_begin(&p, &b, &pk, "cancel");
			msgpack_pack_map(&pk, 0);
			peer_send(&p, &b);
			buf_free(&b);
			/* the cancel answer comes first, then the step's */
			do {
				ck_assert_int_eq(peer_next(&p, &resp, 5000), 0);
				if (resp.type != RPC_RESPONSE)
					rpc_msg_free(&resp);
			} while (resp.type != RPC_RESPONSE);
			ck_assert_uint_eq(resp.msgid, p.msgid);
			rpc_msg_free(&resp);
		} else {
			kill(p.pid, SIGTERM);
		}
		do {
			ck_assert_int_eq(peer_next(&p, &resp, 5000), 0);
			if (resp.type != RPC_RESPONSE)
				rpc_msg_free(&resp);
		} while (resp.type != RPC_RESPONSE);
		ck_assert_int_eq(step_result_decode(resp.result, &r, err, sizeof(err)), 0);
		ck_assert_int_eq(r.state, STEP_CANCELLED);
		ck_assert_int_lt(time_mono_us() - t0, 3000000);
		step_result_free(&r);
		rpc_msg_free(&resp);
		ck_assert_int_ge(note_find(&p, "step_failed", "slow"), 0);
		peer_finish(&p);
	}
	rmtree(dir);
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("protocol");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_join_end_to_end);
	tcase_add_test(tc, test_cleaned_config_in_memory);
	tcase_add_loop_test(tc, test_failures, 0, (int)(sizeof(failure_cases) / sizeof(failure_cases[0])));
	tcase_add_test(tc, test_invalid_manifest);
	tcase_add_test(tc, test_cancel);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return harness_run_suite(worker_suite());
}
