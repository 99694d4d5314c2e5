/*
 * check_client_cmds.c: osirisctl's commands end to end against a canned
 * daemon (a forked child speaking msgpack-rpc on a private Unix socket):
 * what reaches stdout and stderr, and which exit code each case gives.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/osirisctl.h"

#define RID "01JDX3K2M4N5P6Q7R8S9T0V1W2"
#define ART_DATA "hello"

enum fake_mode { FAKE_OK, FAKE_FAILED_RUN, FAKE_REJECT, FAKE_BADVER, FAKE_BADSHA, FAKE_EVIL, FAKE_RUNNING, FAKE_DROP };

static char tmpdir[64];
static char sockpath[96];
static pid_t fake_pid = -1;

/* ---- the canned daemon ------------------------------------------------ */

static void fake_write(int fd, struct buf *out)
{
	size_t off = 0;

	while (off < out->len) {
		ssize_t n = write(fd, out->data + off, out->len - off);

		if (n <= 0)
			_exit(1);
		off += (size_t)n;
	}
	buf_reset(out);
}

static void fake_artifact(msgpack_packer *pk, const char *path, enum fake_mode mode)
{
	char sha[65];

	sha256_hex(ART_DATA, strlen(ART_DATA), sha);
	if (mode == FAKE_BADSHA)
		memset(sha, '0', 64);
	msgpack_pack_map(pk, 4);
	mp_pack_kstr(pk, "path", path);
	mp_pack_kstr(pk, "step_id", "write");
	mp_pack_kint(pk, "size", (int64_t)strlen(ART_DATA));
	mp_pack_kstr(pk, "sha256", sha);
}

static void fake_follow(msgpack_packer *pk, const struct rpc_msg *m, enum fake_mode mode)
{
	int64_t since = 0;

	(void)mp_get_int(m->params, "since", &since);
	for (int64_t seq = since + 1; seq <= 3; seq++) {
		rpc_pack_notify_head(pk, "run.event");
		msgpack_pack_map(pk, 8);
		mp_pack_kstr(pk, "run", RID);
		mp_pack_kint(pk, "seq", seq);
		mp_pack_kstr(pk, "ts", "2026-11-26T12:24:44.123Z");
		mp_pack_kstr(pk, "origin", "worker");
		mp_pack_kstr(pk, "kind", "log");
		mp_pack_kstr(pk, "name", "info");
		mp_pack_kstr(pk, "step_id", "extract");
		mp_pack_key(pk, "data");
		msgpack_pack_map(pk, 1);
		mp_pack_kstr(pk, "message", "line");
	}
	rpc_pack_result_head(pk, m->msgid);
	msgpack_pack_map(pk, 4);
	mp_pack_kstr(pk, "run", RID);
	mp_pack_kstr(pk, "state", mode == FAKE_FAILED_RUN ? "failed" : "succeeded");
	mp_pack_kint(pk, "exit_code", mode == FAKE_FAILED_RUN ? 1 : 0);
	mp_pack_kint(pk, "last_seq", 3);
}

static void fake_read(msgpack_packer *pk, const struct rpc_msg *m)
{
	int64_t off = 0, len = (int64_t)strlen(ART_DATA);

	(void)mp_get_int(m->params, "offset", &off);
	if (off > len)
		off = len;
	rpc_pack_result_head(pk, m->msgid);
	msgpack_pack_map(pk, 3);
	mp_pack_key(pk, "data");
	/* two bytes at a time: the client has to loop */
	msgpack_pack_bin(pk, (size_t)(len - off < 2 ? len - off : 2));
	msgpack_pack_bin_body(pk, ART_DATA + off, (size_t)(len - off < 2 ? len - off : 2));
	mp_pack_kint(pk, "size", len);
	mp_pack_key(pk, "eof");
	if (off + 2 >= len)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static void fake_answer(msgpack_packer *pk, const struct rpc_msg *m, enum fake_mode mode)
{
	if (strcmp(m->method, "hello") == 0) {
		if (mode == FAKE_BADVER) {
			rpc_pack_error(pk, m->msgid, "unsupported_version", "protocol 1 is not supported");
			return;
		}
		rpc_pack_result_head(pk, m->msgid);
		msgpack_pack_map(pk, 3);
		mp_pack_kstr(pk, "daemon", "osirisd/fake");
		mp_pack_kint(pk, "protocol", 1);
		mp_pack_key(pk, "capabilities");
		msgpack_pack_array(pk, 0);
	} else if (strcmp(m->method, "run.submit") == 0) {
		if (mode == FAKE_REJECT) {
			rpc_pack_error(pk, m->msgid, "invalid_manifest",
			               "manifest.yaml:3: step 'b' needs 'x', which is not a step");
			return;
		}
		rpc_pack_result_head(pk, m->msgid);
		msgpack_pack_map(pk, 2);
		mp_pack_kstr(pk, "run", RID);
		mp_pack_kstr(pk, "state", "queued");
	} else if (strcmp(m->method, "run.follow") == 0) {
		fake_follow(pk, m, mode);
	} else if (!mp_str_eq(mp_get(m->params, "run"), RID) && !mp_str_eq(mp_get(m->params, "run"), "01JD")) {
		rpc_pack_error(pk, m->msgid, "not_found", "run nope: no such run");
	} else if (strcmp(m->method, "run.get") == 0) {
		rpc_pack_result_head(pk, m->msgid);
		msgpack_pack_map(pk, 5);
		mp_pack_kstr(pk, "id", RID);
		mp_pack_kstr(pk, "state", mode == FAKE_RUNNING ? "running" : "succeeded");
		mp_pack_kint(pk, "last_seq", 3);
		mp_pack_key(pk, "future_field");
		msgpack_pack_array(pk, 2);
		msgpack_pack_double(pk, 2.5);
		msgpack_pack_bin(pk, 2);
		msgpack_pack_bin_body(pk, "\x01\x02", 2);
		mp_pack_key(pk, "steps");
		msgpack_pack_array(pk, 0);
	} else if (strcmp(m->method, "artifact.list") == 0) {
		rpc_pack_result_head(pk, m->msgid);
		msgpack_pack_map(pk, 1);
		mp_pack_key(pk, "artifacts");
		msgpack_pack_array(pk, mode == FAKE_EVIL ? 2 : 1);
		if (mode == FAKE_EVIL)
			fake_artifact(pk, "../evil.txt", mode);
		fake_artifact(pk, "out/a.txt", mode);
	} else if (strcmp(m->method, "artifact.read") == 0) {
		if (mode == FAKE_DROP)
			_exit(0); /* the daemon goes away in the middle of an export */
		fake_read(pk, m);
	} else
		rpc_pack_error(pk, m->msgid, "invalid_request", "unknown method");
}

static void fake_conn(int fd, enum fake_mode mode)
{
	struct rpc_limits l;
	struct buf in, out;
	msgpack_packer pk;

	rpc_limits_default(&l, 1 << 20);
	buf_init(&in);
	buf_init(&out);
	rpc_packer_init(&pk, &out);
	for (;;) {
		size_t msglen = 0, need = 0;
		const char *why;
		struct rpc_msg m;
		char err[128];
		ssize_t n;

		switch (rpc_scan(in.data, in.len, &l, &msglen, &need, &why)) {
		case RPC_SCAN_OK:
			if (rpc_decode(in.data, msglen, &m, err, sizeof err) == -1)
				_exit(1);
			buf_consume(&in, msglen);
			fake_answer(&pk, &m, mode);
			rpc_msg_free(&m);
			fake_write(fd, &out);
			continue;
		case RPC_SCAN_MORE:
			buf_reserve(&in, 65536);
			if ((n = read(fd, in.data + in.len, 65536)) <= 0)
				return;
			in.len += (size_t)n;
			continue;
		default:
			_exit(1);
		}
	}
}

static void fake_start(enum fake_mode mode)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int lfd;

	strcpy(tmpdir, "/tmp/check_client_cmds.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sockpath, sizeof sockpath, "%s/sock", tmpdir);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sockpath);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ne(lfd, -1);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	fake_pid = fork();
	ck_assert_int_ne(fake_pid, -1);
	if (fake_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		for (;;) {
			int fd = accept(lfd, NULL, NULL);

			if (fd == -1)
				_exit(0);
			fake_conn(fd, mode);
			close(fd);
		}
	}
	close(lfd);
}

static void fake_stop(void)
{
	if (fake_pid > 0) {
		kill(fake_pid, SIGKILL);
		waitpid(fake_pid, NULL, 0);
		fake_pid = -1;
	}
	rmtree(tmpdir);
}

/* ---- running a command with stdout/stderr captured -------------------- */

struct result {
	int rc;
	struct buf out, err;
};

static void capture_read(const char *path, struct buf *b)
{
	buf_init(b);
	ck_assert_int_eq(file_read_all(path, 1 << 20, b), 0);
	buf_cstr(b);
}

/* argv as a NULL-terminated list: "submit", "-f", "DIR", NULL */
static void run_cmd(struct result *r, const char *const *args)
{
	char *argv[16], outp[128], errp[128];
	struct ctl ctl = {.socket = sockpath};
	const struct ctl_cmd *cmd;
	int argc = 0, so, se, fo, fe;

	for (; args[argc] != NULL && argc < 15; argc++)
		argv[argc] = (char *)args[argc];
	argv[argc] = NULL;
	snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
	snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
	cmd = ctl_cmd_find(argv[0]);
	ck_assert_ptr_nonnull(cmd);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fo, 1);
	dup2(fe, 2);
	optind = 0;
	opterr = 0;
	r->rc = cmd->fn(&ctl, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	close(fo);
	close(fe);
	capture_read(outp, &r->out);
	capture_read(errp, &r->err);
}

static void result_free(struct result *r)
{
	buf_free(&r->out);
	buf_free(&r->err);
}

static void make_context(char *dir, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(dir, len, "%s/ctx", tmpdir);
	snprintf(path, sizeof path, "%s/cfg/a.json", dir);
	ck_assert_int_eq(mkdir_parents(path), 0);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("{}\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/manifest.yaml", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("pipeline: {id: t}\nsteps: []\n", f);
	fclose(f);
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(test_submit_prints_id_first)
{
	struct result r;
	char dir[200];

	fake_start(FAKE_OK);
	make_context(dir, sizeof dir);
	run_cmd(&r, (const char *const[]){"submit", dir, NULL});
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq((char *)r.out.data, RID "\n");
	result_free(&r);

	/* -f: the id alone first, then the records, exit = run status */
	run_cmd(&r, (const char *const[]){"submit", "-f", dir, NULL});
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(strncmp((char *)r.out.data, RID "\n", strlen(RID) + 1), 0);
	ck_assert_str_eq((char *)r.out.data + strlen(RID) + 1, "12:24:44.123 [extract] info: line\n"
	                                                       "12:24:44.123 [extract] info: line\n"
	                                                       "12:24:44.123 [extract] info: line\n");
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_submit_wait_failed_run)
{
	struct result r;
	char dir[200];

	fake_start(FAKE_FAILED_RUN);
	make_context(dir, sizeof dir);
	run_cmd(&r, (const char *const[]){"submit", "--wait", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_RUN_FAILED);
	ck_assert_str_eq((char *)r.out.data, RID "\n"); /* --wait prints nothing else */
	result_free(&r);
	run_cmd(&r, (const char *const[]){"logs", "-f", RID, NULL});
	ck_assert_int_eq(r.rc, EXIT_RUN_FAILED);
	result_free(&r);
	/* without -f, logs reports the records, not the run */
	run_cmd(&r, (const char *const[]){"logs", RID, NULL});
	ck_assert_int_eq(r.rc, 0);
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_submit_rejected)
{
	struct result r;
	char dir[200];

	fake_start(FAKE_REJECT);
	make_context(dir, sizeof dir);
	run_cmd(&r, (const char *const[]){"submit", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_uint_eq(r.out.len, 0);
	ck_assert_str_eq((char *)r.err.data,
	                 "osirisctl: submit: manifest.yaml:3: step 'b' needs 'x', which is not a step\n");
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_unreachable_and_version)
{
	struct result r;

	fake_start(FAKE_BADVER);
	run_cmd(&r, (const char *const[]){"ping", NULL});
	ck_assert_int_eq(r.rc, EXIT_PROTOCOL);
	ck_assert_str_eq((char *)r.err.data, "osirisctl: hello: protocol 1 is not supported\n");
	result_free(&r);
	fake_stop();

	fake_start(FAKE_OK);
	unlink(sockpath);
	run_cmd(&r, (const char *const[]){"version", NULL});
	ck_assert_int_eq(r.rc, EXIT_UNREACHABLE);
	ck_assert_ptr_nonnull(strstr((char *)r.out.data, "osirisctl/" OSIRIS_VERSION));
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, ": No such file or directory\n"));
	ck_assert_int_eq(strncmp((char *)r.err.data, "osirisctl: connect /tmp/", 24), 0);
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_logs_json_lines)
{
	struct result r;
	json_error_t jerr;
	char *line, *save = NULL;
	int64_t want = 2;

	fake_start(FAKE_OK);
	run_cmd(&r, (const char *const[]){"logs", "--since", "1", "--json", RID, NULL});
	ck_assert_int_eq(r.rc, 0);
	for (line = strtok_r((char *)r.out.data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, &jerr);

		ck_assert_ptr_nonnull(j);
		ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), want++);
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "data"), "message")), "line");
		json_decref(j);
	}
	ck_assert_int_eq(want, 4); /* exactly seq 2 and 3: resumed after 1 */
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_show_json_passthrough)
{
	struct result r;
	json_error_t jerr;
	json_t *j;

	fake_start(FAKE_OK);
	run_cmd(&r, (const char *const[]){"show", "--json", "01JD", NULL});
	ck_assert_int_eq(r.rc, 0);
	j = json_loads((char *)r.out.data, 0, &jerr);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "id")), RID);
	/* a key this client does not know still appears, typed */
	ck_assert(json_is_real(json_array_get(json_object_get(j, "future_field"), 0)));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "future_field"), 1)), "AQI=");
	json_decref(j);
	result_free(&r);

	run_cmd(&r, (const char *const[]){"show", "nope", NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_str_eq((char *)r.err.data, "osirisctl: show: run nope: no such run\n");
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_artifact_get_verified)
{
	struct result r;
	char dest[200];
	struct buf b;

	fake_start(FAKE_OK);
	snprintf(dest, sizeof dest, "%s/a.txt", tmpdir);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--get", "out/a.txt", "-o", dest, NULL});
	ck_assert_int_eq(r.rc, 0);
	result_free(&r);
	buf_init(&b);
	ck_assert_int_eq(file_read_all(dest, 1024, &b), 0);
	ck_assert_str_eq(buf_cstr(&b), ART_DATA);
	buf_free(&b);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--get", "out/a.txt", NULL});
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq((char *)r.out.data, ART_DATA);
	result_free(&r);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--get", "out/none", NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_artifact_sha_mismatch)
{
	struct result r;
	struct stat st;
	char dest[200];

	fake_start(FAKE_BADSHA);
	snprintf(dest, sizeof dest, "%s/a.txt", tmpdir);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--get", "out/a.txt", "-o", dest, NULL});
	ck_assert_int_eq(r.rc, EXIT_RUN_FAILED);
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, "sha256 mismatch"));
	ck_assert_int_eq(stat(dest, &st), -1); /* nothing that looks complete */
	result_free(&r);
	fake_stop();
}
END_TEST

/* The files of an export: present (or not) under dir. */
static int exists_in(const char *dir, const char *rel)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return stat(path, &st) == 0;
}

/* Entries of dir whose name starts with prefix ("" = all but . and ..). */
static int entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		     strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void read_in(const char *dir, const char *rel, struct buf *b)
{
	char path[300];

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	buf_init(b);
	ck_assert_int_eq(file_read_all(path, 1 << 20, b), 0);
	buf_cstr(b);
}

START_TEST(test_artifact_export_unsafe_path)
{
	struct result r;
	struct stat st;
	char dir[200], path[256];

	fake_start(FAKE_EVIL);
	snprintf(dir, sizeof dir, "%s/export", tmpdir);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_RUN_FAILED);
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, "../evil.txt: unsafe artifact path"));
	snprintf(path, sizeof path, "%s/evil.txt", tmpdir);
	ck_assert_int_eq(stat(path, &st), -1);
	snprintf(path, sizeof path, "%s/artifacts/evil.txt", tmpdir);
	ck_assert_int_eq(stat(path, &st), -1);
	snprintf(path, sizeof path, "%s/artifacts/out/a.txt", dir);
	ck_assert_int_eq(stat(path, &st), 0); /* the safe one is still exported */
	ck_assert_int_eq(st.st_size, 5);
	ck_assert(exists_in(dir, "events.jsonl") && exists_in(dir, "status.json"));
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_artifact_export_layout)
{
	struct result r;
	char dir[200], file[200], want[400];
	struct buf b;
	json_error_t jerr;
	json_t *j;
	FILE *f;

	fake_start(FAKE_OK);
	snprintf(dir, sizeof dir, "%s/new/run/", tmpdir); /* parents created, trailing slash ignored */
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, 0);
	snprintf(want, sizeof want,
	         "exported run %s to %s/new/run: 0 events, 0 metrics, 3 log lines, 1 artifacts (5 bytes)\n", RID,
	         tmpdir);
	ck_assert_str_eq((char *)r.out.data, want);
	result_free(&r);
	read_in(dir, "artifacts/out/a.txt", &b);
	ck_assert_str_eq((char *)b.data, ART_DATA);
	buf_free(&b);
	read_in(dir, "events.jsonl", &b);
	ck_assert_uint_eq(b.len, 0); /* the fake run has log lines only */
	buf_free(&b);
	read_in(dir, "osiris.log", &b);
	ck_assert_str_eq((char *)b.data, "2026-11-26 12:24:44 - osiris.step.extract - [" RID "] - INFO - line\n"
	                                 "2026-11-26 12:24:44 - osiris.step.extract - [" RID "] - INFO - line\n"
	                                 "2026-11-26 12:24:44 - osiris.step.extract - [" RID "] - INFO - line\n");
	buf_free(&b);
	read_in(dir, "status.json", &b);
	/* Osiris's json.dump(indent=2): no final newline */
	ck_assert_str_eq((char *)b.data, "{\n  \"sandbox_id\": \"local\",\n  \"exit_code\": 0,\n"
	                                 "  \"steps_completed\": 0,\n  \"steps_total\": 0,\n  \"ok\": true,\n"
	                                 "  \"session_path\": \"local\",\n  \"session_copied\": true,\n"
	                                 "  \"events_jsonl_exists\": true,\n  \"reason\": \"\"\n}");
	buf_free(&b);

	/* never into a directory that holds something, nor over a file */
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, ": directory not empty"));
	ck_assert_uint_eq(r.out.len, 0);
	result_free(&r);
	snprintf(file, sizeof file, "%s/file", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(file, "w"));
	fclose(f);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", file, NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, "file: exists and is not a directory\n"));
	result_free(&r);

	/* an empty directory is filled in place, no temporary left behind */
	snprintf(dir, sizeof dir, "%s/empty", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	run_cmd(&r, (const char *const[]){"artifacts", "--json", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, 0);
	j = json_loads((char *)r.out.data, 0, &jerr);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "run")), RID);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "events")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "logs")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "artifacts")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), 5);
	json_decref(j);
	result_free(&r);
	ck_assert(exists_in(dir, "artifacts/out/a.txt") && exists_in(dir, "metrics.jsonl"));
	/* artifacts events.jsonl metrics.jsonl osiris.log status.json, nothing hidden */
	ck_assert_int_eq(entries(dir, ""), 5);
	fake_stop();
}
END_TEST

START_TEST(test_artifact_export_refused_or_failed)
{
	struct result r;
	char dir[200];
	struct stat st;

	/* a run that has not finished is not exported: nothing is created */
	fake_start(FAKE_RUNNING);
	snprintf(dir, sizeof dir, "%s/x", tmpdir);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_str_eq((char *)r.err.data,
	                 "osirisctl: artifacts: run " RID " is running: only a finished run can be exported\n");
	ck_assert_int_eq(stat(dir, &st), -1);
	result_free(&r);
	fake_stop();

	/* a checksum mismatch skips that artifact; the rest lands */
	fake_start(FAKE_BADSHA);
	snprintf(dir, sizeof dir, "%s/x", tmpdir);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_RUN_FAILED);
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, "sha256 mismatch"));
	ck_assert(exists_in(dir, "status.json") && !exists_in(dir, "artifacts/out/a.txt"));
	result_free(&r);
	fake_stop();

	/* the daemon gone half-way: no DIR, no temporary */
	fake_start(FAKE_DROP);
	snprintf(dir, sizeof dir, "%s/x", tmpdir);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "--export", dir, NULL});
	ck_assert_int_eq(r.rc, EXIT_UNREACHABLE);
	ck_assert_ptr_nonnull(strstr((char *)r.err.data, "connection closed by the daemon"));
	ck_assert_int_eq(stat(dir, &st), -1);
	ck_assert_int_eq(entries(tmpdir, "x.part"), 0);
	ck_assert_uint_eq(r.out.len, 0);
	result_free(&r);
	fake_stop();
}
END_TEST

START_TEST(test_usage_errors)
{
	struct result r;

	fake_start(FAKE_OK);
	run_cmd(&r, (const char *const[]){"logs", NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_int_eq(strncmp((char *)r.err.data, "osirisctl: logs: missing RUN", 28), 0);
	result_free(&r);
	run_cmd(&r, (const char *const[]){"runs", "--state", "bogus", NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	result_free(&r);
	run_cmd(&r, (const char *const[]){"submit", "-e", "SURELY_UNSET_VARIABLE_X", ".", NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	ck_assert_str_eq((char *)r.err.data,
	                 "osirisctl: submit: -e SURELY_UNSET_VARIABLE_X: not set in the environment\n");
	result_free(&r);
	run_cmd(&r, (const char *const[]){"artifacts", RID, "-o", "x", NULL});
	ck_assert_int_eq(r.rc, EXIT_USAGE);
	result_free(&r);
	fake_stop();
}
END_TEST

static Suite *cmds_suite(void)
{
	Suite *s = suite_create("client_cmds");
	TCase *tc = tcase_create("fake_daemon");

	tcase_add_test(tc, test_submit_prints_id_first);
	tcase_add_test(tc, test_submit_wait_failed_run);
	tcase_add_test(tc, test_submit_rejected);
	tcase_add_test(tc, test_unreachable_and_version);
	tcase_add_test(tc, test_logs_json_lines);
	tcase_add_test(tc, test_show_json_passthrough);
	tcase_add_test(tc, test_artifact_get_verified);
	tcase_add_test(tc, test_artifact_sha_mismatch);
	tcase_add_test(tc, test_artifact_export_unsafe_path);
	tcase_add_test(tc, test_artifact_export_layout);
	tcase_add_test(tc, test_artifact_export_refused_or_failed);
	tcase_add_test(tc, test_usage_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cmds_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	setenv("TZ", "UTC", 1);
	unsetenv("SURELY_UNSET_VARIABLE_X");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
