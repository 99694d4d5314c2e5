/*
 * check_pipeline.c: the per-step fast paths. The worker's `finish` carries
 * small files inline (sha256 of the bytes sent, big files left to `read`);
 * exec_step's skip_if_failed skips a step sent ahead behind a failure; the
 * daemon's collect_inline_write() refuses bytes that do not match.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/osirisd.h"
#include "tests/unit/harness/worker_harness.h"

static void pipe_start(struct peer *p)
{
	struct rpc_msg m;
	int len;

	peer_spawn(p, "/tmp/check_pipeline.XXXXXX", NULL);
	len = peer_peek(p, &m, 20000);
	ck_assert_int_gt(len, 0);
	ck_assert_str_eq(m.method, "ready");
	rpc_msg_free(&m);
	buf_consume(&p->in, (size_t)len);
}

static void peer_stop(struct peer *p)
{
	int status;

	close(p->to);
	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(p->from);
	rmtree(p->workdir);
	buf_free(&p->in);
	buf_free(&p->all);
}

/* Send the request in b; returns the response (its bytes stay in p->in
 * until peer_done()). Notifications before it are counted. */
static int peer_call(struct peer *p, struct buf *b, struct rpc_msg *resp)
{
	int len;

	peer_send(p, b);
	buf_free(b);
	for (;;) {
		len = peer_peek(p, resp, 20000);
		ck_assert_msg(len > 0, "no response from the worker");
		if (resp->type == RPC_RESPONSE) {
			ck_assert_uint_eq(resp->msgid, p->msgid);
			return len;
		}
		p->nnotes++;
		rpc_msg_free(resp);
		buf_consume(&p->in, (size_t)len);
	}
}

static void peer_done(struct peer *p, struct rpc_msg *resp, int len)
{
	rpc_msg_free(resp);
	buf_consume(&p->in, (size_t)len);
}

static msgpack_packer *pipe_req_begin(struct peer *p, struct buf *b, msgpack_packer *pk, const char *method)
{
	buf_init(b);
	rpc_packer_init(pk, b);
	rpc_pack_request_head(pk, ++p->msgid, method);
	return pk;
}

static void prepare(struct peer *p, const char *dir)
{
	struct msg_prepare mp;
	msgpack_packer pk;
	struct rpc_msg resp;
	struct buf b;
	char err[256];
	int len, pipeline = 0;

	memset(&mp, 0, sizeof(mp));
	ck_assert_msg(bundle_from_dir(&mp.bundle, dir, 64 << 20, err, sizeof(err)) == 0, "%s", err);
	mp.run_id = xstrdup("run-p");
	mp.manifest = xstrdup("manifest.yaml");
	msg_prepare_pack(pipe_req_begin(p, &b, &pk, "prepare"), &mp);
	len = peer_call(p, &b, &resp);
	ck_assert_ptr_null(resp.error);
	/* the worker says it honours skip_if_failed */
	ck_assert_int_eq(mp_get_bool(resp.result, "pipeline", &pipeline), 0);
	ck_assert_int_eq(pipeline, 1);
	peer_done(p, &resp, len);
	bundle_free(&mp.bundle);
	msg_prepare_free(&mp);
}

/* exec_step; returns the answered state name in st. */
static void exec_state(struct peer *p, const char *id, int skip_if_failed, char *st, size_t stlen)
{
	msgpack_packer pk;
	struct rpc_msg resp;
	struct buf b;
	const msgpack_object *o;
	int len;

	pipe_req_begin(p, &b, &pk, "exec_step");
	msgpack_pack_map(&pk, skip_if_failed ? 2 : 1);
	mp_pack_kstr(&pk, "step_id", id);
	if (skip_if_failed) {
		mp_pack_key(&pk, "skip_if_failed");
		msgpack_pack_true(&pk);
	}
	len = peer_call(p, &b, &resp);
	ck_assert_ptr_null(resp.error);
	o = mp_get(resp.result, "state");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(o->type, MSGPACK_OBJECT_STR);
	snprintf(st, stlen, "%.*s", (int)o->via.str.size, o->via.str.ptr);
	peer_done(p, &resp, len);
}

static char *make_ctx(void)
{
	char *dir = xstrdup("/tmp/check_pipeline_ctx.XXXXXX");

	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static const char noop_cfg[] = "{\"component\":\"osiris.noop\",\"mode\":\"transform\"}\n";

START_TEST(test_finish_inline)
{
	static const char manifest[] = "pipeline:\n  id: p\nsteps:\n"
	                               "  - id: ex\n    driver: filesystem.csv_extractor\n    cfg_path: cfg/ex.json\n"
	                               "  - id: out\n    driver: filesystem.csv_writer\n    cfg_path: cfg/out.json\n"
	                               "    needs: [ex]\n"
	                               "  - id: n1\n    driver: osiris.noop\n    cfg_path: cfg/n1.json\n";
	char *dir = make_ctx(), st[32];
	struct buf csv;
	struct peer p;
	msgpack_packer pk;
	struct rpc_msg resp;
	struct buf b;
	const msgpack_object *list;
	uint32_t i;
	int len, ninline = 0, nbig = 0;

	harness_find_worker();
	buf_init(&csv);
	buf_add(&csv, "id,text\n", 8);
	for (i = 0; i < 4000; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "%u,row number %u of the big file\n", i, i);
		buf_add(&csv, line, (size_t)n);
	}
	ck_assert_uint_gt(csv.len, 64 * 1024);
	write_bytes(dir, "manifest.yaml", manifest, strlen(manifest));
	write_bytes(dir, "data/in.csv", (const char *)csv.data, csv.len);
	write_bytes(dir, "cfg/ex.json", "{\"path\":\"data/in.csv\"}\n", 23);
	write_bytes(dir, "cfg/out.json", "{\"path\":\"output/out.csv\"}\n", 26);
	write_bytes(dir, "cfg/n1.json", noop_cfg, strlen(noop_cfg));
	pipe_start(&p);
	prepare(&p, dir);
	exec_state(&p, "ex", 1, st, sizeof(st));
	ck_assert_str_eq(st, "succeeded");
	exec_state(&p, "out", 1, st, sizeof(st));
	ck_assert_str_eq(st, "succeeded");
	exec_state(&p, "n1", 1, st, sizeof(st));
	ck_assert_str_eq(st, "succeeded");
	pipe_req_begin(&p, &b, &pk, "finish");
	msgpack_pack_map(&pk, 0);
	len = peer_call(&p, &b, &resp);
	ck_assert_ptr_null(resp.error);
	list = mp_get(resp.result, "artifacts");
	ck_assert_ptr_nonnull(list);
	ck_assert_int_eq(list->type, MSGPACK_OBJECT_ARRAY);
	for (i = 0; i < list->via.array.size; i++) {
		const msgpack_object *o = &list->via.array.ptr[i], *data = mp_get(o, "data");
		struct artifact_info a;
		char err[256], sha[65];

		ck_assert_int_eq(artifact_info_decode(o, &a, err, sizeof(err)), 0);
		if (strcmp(a.path, "output/out.csv") == 0) {
			/* bigger than 64 KiB: listed, fetched with read */
			ck_assert_ptr_null(data);
			ck_assert_int_eq(a.size, (int64_t)csv.len);
			nbig++;
		} else {
			ck_assert_msg(data != NULL, "%s not inline", a.path);
			ck_assert_int_eq(data->type, MSGPACK_OBJECT_BIN);
			ck_assert_int_eq((int64_t)data->via.bin.size, a.size);
			sha256_hex(data->via.bin.ptr, data->via.bin.size, sha);
			ck_assert_str_eq(sha, a.sha256);
			if (strcmp(a.path, "artifacts/n1/cleaned_config.json") == 0)
				ck_assert(data->via.bin.size > 0 &&
				          memmem(data->via.bin.ptr, data->via.bin.size, "transform", 9) != NULL);
			ninline++;
		}
		artifact_info_free(&a);
	}
	ck_assert_int_eq(nbig, 1);
	ck_assert_int_eq(ninline, 3); /* the three cleaned_config.json */
	peer_done(&p, &resp, len);
	/* the big one is still served by read */
	pipe_req_begin(&p, &b, &pk, "read");
	msgpack_pack_map(&pk, 3);
	mp_pack_kstr(&pk, "path", "output/out.csv");
	mp_pack_kint(&pk, "offset", 0);
	mp_pack_kint(&pk, "length", 4194304);
	len = peer_call(&p, &b, &resp);
	ck_assert_ptr_null(resp.error);
	ck_assert_uint_eq(mp_get(resp.result, "data")->via.bin.size, csv.len);
	peer_done(&p, &resp, len);
	peer_stop(&p);
	buf_free(&csv);
	rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_skip_if_failed)
{
	static const char manifest[] = "pipeline:\n  id: p\nsteps:\n"
	                               "  - id: bad\n    driver: osiris.noop\n    cfg_path: cfg/bad.json\n"
	                               "  - id: n1\n    driver: osiris.noop\n    cfg_path: cfg/n1.json\n"
	                               "  - id: n2\n    driver: osiris.noop\n    cfg_path: cfg/n2.json\n";
	char *dir = make_ctx(), st[32];
	struct peer p;
	size_t before;

	harness_find_worker();
	write_bytes(dir, "manifest.yaml", manifest, strlen(manifest));
	write_bytes(dir, "cfg/bad.json", "{\"x\":\"${NOT_SET_ANYWHERE}\"}\n", 28);
	write_bytes(dir, "cfg/n1.json", noop_cfg, strlen(noop_cfg));
	write_bytes(dir, "cfg/n2.json", noop_cfg, strlen(noop_cfg));
	pipe_start(&p);
	prepare(&p, dir);
	/* nothing failed yet: skip_if_failed runs the step */
	exec_state(&p, "n1", 1, st, sizeof(st));
	ck_assert_str_eq(st, "succeeded");
	exec_state(&p, "bad", 1, st, sizeof(st));
	ck_assert_str_eq(st, "failed");
	/* behind the failure: skipped, not run, nothing reported */
	before = p.nnotes;
	exec_state(&p, "n2", 1, st, sizeof(st));
	ck_assert_str_eq(st, "skipped");
	ck_assert_uint_eq(p.nnotes, before);
	/* without the flag the step still runs (the worker protocol as before) */
	exec_state(&p, "n2", 0, st, sizeof(st));
	ck_assert_str_eq(st, "succeeded");
	ck_assert_uint_gt(p.nnotes, before);
	peer_stop(&p);
	rmtree(dir);
	free(dir);
}
END_TEST

/* collect_inline_write: fills a in for data at path. */
static void art_for(struct artifact_info *a, const char *path, const char *data)
{
	memset(a, 0, sizeof(*a));
	a->path = (char *)(uintptr_t)path;
	a->size = (int64_t)strlen(data);
	sha256_hex(data, strlen(data), a->sha256);
}

START_TEST(test_collect_inline_write)
{
	char *dir = make_ctx(), path[PATH_MAX];
	struct artifact_info a;
	const char *why;
	struct buf got;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	ck_assert_int_ge(dfd, 0);
	/* good: parents made, bytes written */
	art_for(&a, "artifacts/s1/cleaned_config.json", "{\"mode\": \"x\"}\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "{\"mode\": \"x\"}\n", 14, &why), 0);
	ck_assert_ptr_null(why);
	snprintf(path, sizeof(path), "%s/artifacts/s1/cleaned_config.json", dir);
	buf_init(&got);
	ck_assert_int_eq(file_read_all(path, 1024, &got), 0);
	ck_assert_uint_eq(got.len, 14);
	ck_assert(memcmp(got.data, "{\"mode\": \"x\"}\n", 14) == 0);
	buf_free(&got);
	/* sha256 mismatch: refused, no file */
	art_for(&a, "artifacts/s2/cleaned_config.json", "what the listing says\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "what was sent\n\n\n\n\n\n\n\n\n", 22, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, "sha256") != NULL, "%s", why);
	snprintf(path, sizeof(path), "%s/artifacts/s2/cleaned_config.json", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* size mismatch */
	art_for(&a, "artifacts/s3/x", "abc");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "abcd", 4, &why), -1);
	ck_assert_msg(strstr(why, "size") != NULL, "%s", why);
	/* a path out of the directory */
	art_for(&a, "../escape", "abc");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "abc", 3, &why), -1);
	snprintf(path, sizeof(path), "%s/../escape", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* an existing file is replaced, empty files work */
	art_for(&a, "artifacts/s1/cleaned_config.json", "");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "", 0, &why), 0);
	snprintf(path, sizeof(path), "%s/artifacts/s1/cleaned_config.json", dir);
	{
		struct stat sb;
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_int_eq(sb.st_size, 0);
	}
	close(dfd);
	rmtree(dir);
	free(dir);
}
END_TEST

/* A symlink planted inside the artifacts dir, at the target or at any
 * parent, never redirects an inline write: refused, nothing outside
 * touched. */
START_TEST(test_collect_inline_no_symlinks)
{
	char *dir = make_ctx(), *out = make_ctx(), path[PATH_MAX], link[PATH_MAX];
	struct artifact_info a;
	const char *why;
	struct buf got;
	struct stat sb;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FILE *fp;

	ck_assert_int_ge(dfd, 0);
	snprintf(path, sizeof(path), "%s/victim", out);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("keep\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(path, sizeof(path), "%s/artifacts/s1", dir);
	ck_assert_int_eq(mkdir_parents(path), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	/* the target itself */
	snprintf(path, sizeof(path), "%s/victim", out);
	snprintf(link, sizeof(link), "%s/artifacts/s1/x.csv", dir);
	ck_assert_int_eq(symlink(path, link), 0);
	/* a parent (last one, and one further up) */
	snprintf(link, sizeof(link), "%s/artifacts/s2", dir);
	ck_assert_int_eq(symlink(out, link), 0);
	snprintf(link, sizeof(link), "%s/artifacts/up", dir);
	ck_assert_int_eq(symlink(out, link), 0);

	art_for(&a, "artifacts/s1/x.csv", "evil\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "evil\n", 5, &why), -1);
	ck_assert_ptr_nonnull(why);
	art_for(&a, "artifacts/s2/victim", "evil\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "evil\n", 5, &why), -1);
	art_for(&a, "artifacts/s2/new.csv", "evil\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "evil\n", 5, &why), -1);
	art_for(&a, "artifacts/up/deeper/new.csv", "evil\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "evil\n", 5, &why), -1);

	snprintf(path, sizeof(path), "%s/victim", out);
	buf_init(&got);
	ck_assert_int_eq(file_read_all(path, 1024, &got), 0);
	ck_assert_msg(got.len == 5 && memcmp(got.data, "keep\n", 5) == 0, "the file behind a symlink was written");
	buf_free(&got);
	snprintf(path, sizeof(path), "%s/new.csv", out);
	ck_assert_msg(access(path, F_OK) != 0, "a file was created through a symlinked parent");
	snprintf(path, sizeof(path), "%s/deeper", out);
	ck_assert_msg(access(path, F_OK) != 0, "a directory was created through a symlinked parent");
	/* the links are left as they were */
	snprintf(link, sizeof(link), "%s/artifacts/s1/x.csv", dir);
	ck_assert_int_eq(lstat(link, &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
	/* and a normal path next to them still works */
	art_for(&a, "artifacts/s1/y.csv", "fine\n");
	ck_assert_int_eq(collect_inline_write(dfd, &a, "fine\n", 5, &why), 0);
	close(dfd);
	rmtree(dir);
	rmtree(out);
	free(dir);
	free(out);
}
END_TEST

static Suite *pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("fast paths");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_finish_inline);
	tcase_add_test(tc, test_skip_if_failed);
	tcase_add_test(tc, test_collect_inline_write);
	tcase_add_test(tc, test_collect_inline_no_symlinks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return harness_run_suite(pipeline_suite());
}
