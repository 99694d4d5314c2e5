/*
 * worker_harness.c: the shared pipe harness of the unit tests that run the
 * real osiris-worker binary (check_worker, check_worker_reuse, check_pipeline).
 * Failures are Check assertions, so a broken worker fails the calling test.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/harness/worker_harness.h"

char worker_path[PATH_MAX + 32];

void harness_find_worker(void)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (getenv("OSIRIS_WORKER") != NULL) {
		snprintf(worker_path, sizeof(worker_path), "%s", getenv("OSIRIS_WORKER"));
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		ck_assert_int_gt(n, 0);
		self[n] = '\0';
		slash = strrchr(self, '/');
		*slash = '\0'; /* BUILD/tests */
		snprintf(worker_path, sizeof(worker_path), "%s/../bin/osiris-worker", self);
	}
	ck_assert_msg(access(worker_path, X_OK) == 0, "no worker binary at %s (make all first)", worker_path);
}

static int peer_fill(struct peer *p, int timeout_ms)
{
	struct pollfd pfd = {.fd = p->from, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	buf_reserve(&p->in, 65536);
	n = read(p->from, p->in.data + p->in.len, 65536);
	if (n <= 0)
		return -1;
	buf_add(&p->all, p->in.data + p->in.len, (size_t)n);
	p->in.len += (size_t)n;
	return 0;
}

/* Wait until p->in starts with a whole message and decode it; its bytes
 * stay in p->in (the caller consumes them). Its length, or -1. */
int peer_peek(struct peer *p, struct rpc_msg *msg, int timeout_ms)
{
	struct rpc_limits l;
	size_t len, need;
	const char *err;
	char e[256];

	rpc_limits_default(&l, 64 << 20);
	for (;;) {
		enum rpc_scan sc = rpc_scan(p->in.data, p->in.len, &l, &len, &need, &err);
		ck_assert_int_ne(sc, RPC_SCAN_ERROR);
		if (sc == RPC_SCAN_OK)
			break;
		if (peer_fill(p, timeout_ms) < 0)
			return -1;
	}
	ck_assert_msg(rpc_decode(p->in.data, len, msg, e, sizeof(e)) == 0, "%s", e);
	return (int)len;
}

/* Next message (notifications are also kept in p->notes). */
int peer_next(struct peer *p, struct rpc_msg *msg, int timeout_ms)
{
	char e[256];
	int len = peer_peek(p, msg, timeout_ms);

	if (len < 0)
		return -1;
	buf_consume(&p->in, (size_t)len);
	if (msg->type == RPC_NOTIFY) {
		struct rpc_msg copy;
		ck_assert_int_eq(rpc_decode(msg->raw, msg->rawlen, &copy, e, sizeof(e)), 0);
		p->notes = xreallocarray(p->notes, p->nnotes + 1, sizeof(*p->notes));
		p->notes[p->nnotes++] = copy;
	}
	return 0;
}

/* Fork the worker on fresh pipes with a fresh --workdir made from
 * workdir_template; extra_arg (or NULL) is appended to its argv. */
void peer_spawn(struct peer *p, const char *workdir_template, const char *extra_arg)
{
	int in[2], out[2];

	memset(p, 0, sizeof(*p));
	snprintf(p->workdir, sizeof(p->workdir), "%s", workdir_template);
	ck_assert_ptr_nonnull(mkdtemp(p->workdir));
	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(pipe(out), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(worker_path, "osiris-worker", "--workdir", p->workdir, extra_arg, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->to = in[1];
	p->from = out[0];
	buf_init(&p->in);
	buf_init(&p->all);
}

void peer_start(struct peer *p, const char *extra_arg)
{
	struct rpc_msg m;

	peer_spawn(p, "/tmp/check_worker.XXXXXX", extra_arg);
	ck_assert_int_eq(peer_next(p, &m, 5000), 0);
	ck_assert_int_eq(m.type, RPC_NOTIFY);
	ck_assert_str_eq(m.method, "ready");
	ck_assert_ptr_nonnull(mp_get(m.params, "pid"));
	ck_assert(mp_str_eq(mp_get(m.params, "version"), OSIRIS_VERSION));
	rpc_msg_free(&m);
	/* "ready" is not a journal record */
	rpc_msg_free(&p->notes[0]);
	p->nnotes = 0;
}

void peer_send(struct peer *p, const struct buf *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(p->to, b->data + off, b->len - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
}

/* Start a request: packs the head; the caller packs exactly one map. */
void req_begin(struct peer *p, struct buf *b, msgpack_packer *pk, const char *method)
{
	buf_init(b);
	rpc_packer_init(pk, b);
	rpc_pack_request_head(pk, ++p->msgid, method);
}

/* Send and wait for the response to it. */
void req_call(struct peer *p, struct buf *b, struct rpc_msg *resp)
{
	peer_send(p, b);
	buf_free(b);
	for (;;) {
		ck_assert_msg(peer_next(p, resp, 20000) == 0, "no response from the worker");
		if (resp->type == RPC_RESPONSE) {
			ck_assert_uint_eq(resp->msgid, p->msgid);
			return;
		}
		rpc_msg_free(resp);
	}
}

void call_simple(struct peer *p, const char *method, const char *key, const char *val, struct rpc_msg *resp)
{
	msgpack_packer pk;
	struct buf b;

	req_begin(p, &b, &pk, method);
	msgpack_pack_map(&pk, key ? 1 : 0);
	if (key)
		mp_pack_kstr(&pk, key, val);
	req_call(p, &b, resp);
}

/* dir/rel opened for writing, its parent directories made. */
static FILE *harness_file_create(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	mkdir_parents(path);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	return f;
}

void write_file(const char *dir, const char *rel, const char *text)
{
	FILE *f = harness_file_create(dir, rel);

	fputs(text, f);
	fclose(f);
}

void write_bytes(const char *dir, const char *rel, const char *text, size_t len)
{
	FILE *f = harness_file_create(dir, rel);

	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

void exec_step(struct peer *p, const char *id, struct step_result *r)
{
	struct rpc_msg resp;
	char err[256];

	call_simple(p, "exec_step", "step_id", id, &resp);
	ck_assert_msg(resp.error == NULL, "exec_step %s answered an error", id);
	ck_assert_msg(step_result_decode(resp.result, r, err, sizeof(err)) == 0, "%s", err);
	rpc_msg_free(&resp);
}

/* Close stdin: the worker must exit 0 and leave no workspace behind. */
void peer_finish(struct peer *p)
{
	int status;
	char cmd[128];
	size_t i;

	close(p->to);
	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker exit status %d", status);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", p->workdir);
	ck_assert_msg(system(cmd) == 0, "workspace left behind in %s", p->workdir);
	rmdir(p->workdir);
	close(p->from);
	for (i = 0; i < p->nnotes; i++)
		rpc_msg_free(&p->notes[i]);
	free(p->notes);
	buf_free(&p->in);
	buf_free(&p->all);
}

const char *note_name(const struct rpc_msg *n)
{
	static char s[128];
	const msgpack_object *o = mp_get(n->params, "name");

	snprintf(s, sizeof(s), "%.*s", o ? (int)o->via.str.size : 0, o ? o->via.str.ptr : "");
	return s;
}

int note_is(const struct rpc_msg *n, const char *name, const char *step)
{
	const msgpack_object *sid = mp_get(n->params, "step_id");

	if (strcmp(note_name(n), name) != 0)
		return 0;
	return step == NULL ? 1 : mp_str_eq(sid, step);
}

ssize_t note_find(const struct peer *p, const char *name, const char *step)
{
	size_t i;

	for (i = 0; i < p->nnotes; i++)
		if (note_is(&p->notes[i], name, step))
			return (ssize_t)i;
	return -1;
}

int buf_contains(const struct buf *b, const char *s)
{
	return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

int harness_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
