/*
 * e2b_envd.c: envd, the daemon inside a sandbox: /files uploads and
 * downloads (streamed), process.Process over Connect (Start and Connect as
 * server streams, SendInput, SendSignal, CloseStdin) and /health.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "osirisd.h"

#define E2B_ENVD_KEEPALIVE "50"     /* s; what the SDKs ask for, under every LB idle timeout */
#define E2B_ENVD_STREAM_STALL_S 150 /* three keepalives missed: the stream is dead */
#define E2B_ENVD_FILES_STALL_S 60

char *e2b_envd_url(const struct e2b_settings *s, const struct e2b_sandbox *sbx, const char *path)
{
	char *url;

	if (s->sandbox_url != NULL)
		xasprintf(&url, "%s%s", s->sandbox_url, path);
	else
		xasprintf(&url, "https://%d-%s.%s%s", E2B_ENVD_PORT, sbx->id, sbx->domain ? sbx->domain : s->domain,
		          path);
	return url;
}

/* Every envd request: routing headers (harmless on the per-sandbox host,
 * needed on a shared one) and the access token of a secure sandbox. */
static struct e2b_http_req *e2b_envd_req(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *method,
                                         const char *path)
{
	char *url = e2b_envd_url(e2b_client_settings(c), sbx, path);
	struct e2b_http_req *r = e2b_http_req_new(e2b_client_http(c), method, url);

	free(url);
	e2b_http_req_header(r, "E2b-Sandbox-Id", sbx->id, 0);
	e2b_http_req_header(r, "E2b-Sandbox-Port", "49983", 0);
	if (sbx->access_token != NULL)
		e2b_http_req_header(r, "X-Access-Token", sbx->access_token, 1);
	return r;
}

static json_t *e2b_envd_selector(struct e2b_proc_sel sel)
{
	if (sel.tag != NULL)
		return json_pack("{s:s}", "tag", sel.tag);
	return json_pack("{s:I}", "pid", (json_int_t)sel.pid);
}

static char *e2b_envd_dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (s == NULL)
		fatalx("e2b: cannot encode a request");
	return s;
}

/* ---- unary calls and /files --------------------------------------------- */

struct e2b_envd_op {
	struct e2b_client *c;
	struct e2b_sandbox sbx; /* a copy: retries outlive the caller's */
	const char *method;
	char *path; /* with the query */
	char *body; /* a Connect unary JSON message, or NULL */
	int fd;     /* upload source, or -1 */
	int (*data)(const uint8_t *buf, size_t len, void *arg);
	e2b_done_cb cb;
	void *arg;
};

static struct e2b_envd_op *e2b_envd_op_new(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *method,
                                           const char *path, e2b_done_cb cb, void *arg)
{
	struct e2b_envd_op *op = xcalloc(1, sizeof(*op));

	op->c = c;
	e2b_sandbox_copy(&op->sbx, sbx);
	op->method = method;
	op->path = xstrdup(path);
	op->fd = -1;
	op->cb = cb;
	op->arg = arg;
	return op;
}

static void e2b_envd_op_free(void *arg)
{
	struct e2b_envd_op *op = arg;

	e2b_sandbox_clear(&op->sbx);
	if (op->fd != -1)
		close(op->fd);
	free(op->path);
	free(op->body);
	free(op);
}

static struct e2b_http_req *e2b_envd_unary_build(struct e2b_call *call, void *arg)
{
	struct e2b_envd_op *op = arg;
	struct e2b_http_req *r = e2b_envd_req(op->c, &op->sbx, op->method, op->path);

	(void)call;
	if (op->body != NULL) {
		e2b_http_req_header(r, "Content-Type", "application/json", 0);
		e2b_http_req_header(r, "Connect-Protocol-Version", "1", 0);
		e2b_http_req_body(r, op->body, strlen(op->body));
	}
	e2b_http_req_timeout(r, e2b_client_settings(op->c)->request_timeout_ms, 0);
	return r;
}

static void e2b_envd_done_finish(struct e2b_call *call, void *arg, const struct e2b_http_result *res,
                                 const struct e2b_error *err)
{
	struct e2b_envd_op *op = arg;

	(void)call;
	(void)res;
	op->cb(err, op->arg);
}

/* SendInput is not idempotent (stdin twice): only a request that never left
 * is sent again; the others change nothing when repeated. */
static const struct e2b_call_ops e2b_envd_input_ops = {"process.SendInput", E2B_RETRY_UNSENT, e2b_envd_unary_build,
                                                       e2b_envd_done_finish, e2b_envd_op_free};
static const struct e2b_call_ops e2b_envd_signal_ops = {"process.SendSignal", E2B_RETRY_UNSENT, e2b_envd_unary_build,
                                                        e2b_envd_done_finish, e2b_envd_op_free};
static const struct e2b_call_ops e2b_envd_close_stdin_ops = {
    "process.CloseStdin", E2B_RETRY_UNSENT, e2b_envd_unary_build, e2b_envd_done_finish, e2b_envd_op_free};
static const struct e2b_call_ops e2b_envd_health_ops = {"health", E2B_RETRY_UNSENT, e2b_envd_unary_build,
                                                        e2b_envd_done_finish, e2b_envd_op_free};

static struct e2b_call *e2b_envd_unary(struct e2b_client *c, const struct e2b_sandbox *sbx,
                                       const struct e2b_call_ops *ops, const char *path, json_t *msg, e2b_done_cb cb,
                                       void *arg)
{
	struct e2b_envd_op *op = e2b_envd_op_new(c, sbx, "POST", path, cb, arg);

	op->body = e2b_envd_dump(msg);
	if (!e2b_sandbox_id_valid(sbx->id))
		return e2b_call_fail(c, ops, op, "invalid sandbox id %s", log_esc(sbx->id, 64));
	return e2b_call_start(c, ops, op);
}

struct e2b_call *e2b_proc_send_input(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                     const void *data, size_t len, e2b_done_cb cb, void *arg)
{
	char *b64 = e2b_base64_encode(data, len);
	json_t *msg = json_pack("{s:o,s:{s:s}}", "process", e2b_envd_selector(sel), "input", "stdin", b64);

	free(b64);
	return e2b_envd_unary(c, sbx, &e2b_envd_input_ops, "/process.Process/SendInput", msg, cb, arg);
}

struct e2b_call *e2b_proc_send_signal(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                      int signal, e2b_done_cb cb, void *arg)
{
	const char *name = signal == 9 ? "SIGNAL_SIGKILL" : "SIGNAL_SIGTERM";
	struct e2b_envd_op *op;

	if (signal != 9 && signal != 15) {
		op = e2b_envd_op_new(c, sbx, "POST", "/process.Process/SendSignal", cb, arg);
		return e2b_call_fail(c, &e2b_envd_signal_ops, op, "signal %d: envd sends only 9 and 15", signal);
	}
	return e2b_envd_unary(c, sbx, &e2b_envd_signal_ops, "/process.Process/SendSignal",
	                      json_pack("{s:o,s:s}", "process", e2b_envd_selector(sel), "signal", name), cb, arg);
}

struct e2b_call *e2b_proc_close_stdin(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                      e2b_done_cb cb, void *arg)
{
	return e2b_envd_unary(c, sbx, &e2b_envd_close_stdin_ops, "/process.Process/CloseStdin",
	                      json_pack("{s:o}", "process", e2b_envd_selector(sel)), cb, arg);
}

struct e2b_call *e2b_envd_health(struct e2b_client *c, const struct e2b_sandbox *sbx, e2b_done_cb cb, void *arg)
{
	struct e2b_envd_op *op = e2b_envd_op_new(c, sbx, "GET", "/health", cb, arg);

	if (!e2b_sandbox_id_valid(sbx->id))
		return e2b_call_fail(c, &e2b_envd_health_ops, op, "invalid sandbox id %s", log_esc(sbx->id, 64));
	return e2b_call_start(c, &e2b_envd_health_ops, op);
}

static char *e2b_envd_files_path(const char *path)
{
	char *esc = e2b_url_escape(path), *out;

	xasprintf(&out, "/files?path=%s", esc);
	free(esc);
	return out;
}

/* Raw upload (envd >= 0.5.7): the bytes are the body, streamed from fd. */
static struct e2b_http_req *e2b_envd_upload_build(struct e2b_call *call, void *arg)
{
	struct e2b_envd_op *op = arg;
	struct e2b_http_req *r = e2b_envd_req(op->c, &op->sbx, "POST", op->path);
	char err[128];

	(void)call;
	e2b_http_req_header(r, "Content-Type", "application/octet-stream", 0);
	if (e2b_http_req_body_fd(r, op->fd, err, sizeof(err)) != 0)
		fatalx("e2b: upload source changed: %s", err); /* checked in e2b_files_upload */
	e2b_http_req_timeout(r, 0, E2B_ENVD_FILES_STALL_S);
	return r;
}

static const struct e2b_call_ops e2b_envd_upload_ops = {"files.upload", E2B_RETRY_IDEMPOTENT, e2b_envd_upload_build,
                                                        e2b_envd_done_finish, e2b_envd_op_free};

struct e2b_call *e2b_files_upload(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *path, int fd,
                                  e2b_done_cb cb, void *arg)
{
	char *p = e2b_envd_files_path(path);
	struct e2b_envd_op *op = e2b_envd_op_new(c, sbx, "POST", p, cb, arg);
	struct stat st;

	free(p);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		return e2b_call_fail(c, &e2b_envd_upload_ops, op, "upload source is not a regular file");
	if ((op->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return e2b_call_fail(c, &e2b_envd_upload_ops, op, "dup: %s", strerror(errno));
	if (!e2b_sandbox_id_valid(sbx->id))
		return e2b_call_fail(c, &e2b_envd_upload_ops, op, "invalid sandbox id %s", log_esc(sbx->id, 64));
	return e2b_call_start(c, &e2b_envd_upload_ops, op);
}

static int e2b_envd_download_data_cb(struct e2b_http_req *r, const uint8_t *data, size_t len, void *arg)
{
	struct e2b_envd_op *op = e2b_call_op(arg);

	(void)r;
	return op->data(data, len, op->arg);
}

static struct e2b_http_req *e2b_envd_download_build(struct e2b_call *call, void *arg)
{
	struct e2b_envd_op *op = arg;
	struct e2b_http_req *r = e2b_envd_req(op->c, &op->sbx, "GET", op->path);

	(void)call;
	e2b_http_req_stream(r, e2b_envd_download_data_cb);
	e2b_http_req_timeout(r, 0, E2B_ENVD_FILES_STALL_S);
	return r;
}

/* Bytes already handed to the caller cannot be taken back: no retry once
 * the answer started. */
static const struct e2b_call_ops e2b_envd_download_ops = {"files.download", E2B_RETRY_UNSENT, e2b_envd_download_build,
                                                          e2b_envd_done_finish, e2b_envd_op_free};

struct e2b_call *e2b_files_download(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *path,
                                    int (*data)(const uint8_t *buf, size_t len, void *arg), e2b_done_cb cb, void *arg)
{
	char *p = e2b_envd_files_path(path);
	struct e2b_envd_op *op = e2b_envd_op_new(c, sbx, "GET", p, cb, arg);

	free(p);
	op->data = data;
	if (!e2b_sandbox_id_valid(sbx->id))
		return e2b_call_fail(c, &e2b_envd_download_ops, op, "invalid sandbox id %s", log_esc(sbx->id, 64));
	return e2b_call_start(c, &e2b_envd_download_ops, op);
}

/* ---- process streams (Start, Connect) ----------------------------------- */

struct e2b_proc {
	struct e2b_client *c;
	struct e2b_http_req *req;
	struct e2b_envelope_reader rd;
	struct e2b_proc_cbs cbs;
	uint32_t pid;
	struct buf errline; /* stderr up to the next newline */
	struct buf scratch; /* decoded bytes of one data event */
	int ended, exit_code;
	char status[128];
	int got_endstream;
	struct e2b_error err;
	int has_err;
	int in_cb, dead;
	struct event *fail_ev; /* fails from the loop without a request */
	TAILQ_ENTRY(e2b_proc) entry;
};

static TAILQ_HEAD(, e2b_proc) e2b_procs = TAILQ_HEAD_INITIALIZER(e2b_procs);

static void e2b_proc_destroy(struct e2b_proc *p)
{
	TAILQ_REMOVE(&e2b_procs, p, entry);
	e2b_http_req_cancel(p->req);
	if (p->fail_ev != NULL)
		event_free(p->fail_ev);
	e2b_envelope_reader_free(&p->rd);
	buf_free(&p->errline);
	buf_free(&p->scratch);
	free(p);
}

void e2b_proc_close(struct e2b_proc *p)
{
	if (p == NULL)
		return;
	if (p->in_cb) {
		p->dead = 1;
		return;
	}
	e2b_proc_destroy(p);
}

void e2b_proc_close_all(struct e2b_client *c)
{
	struct e2b_proc *p, *next;

	for (p = TAILQ_FIRST(&e2b_procs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->c == c && !p->in_cb)
			e2b_proc_destroy(p);
	}
}

uint32_t e2b_proc_pid(const struct e2b_proc *p)
{
	return p->pid;
}

static void e2b_proc_stderr_flush(struct e2b_proc *p)
{
	if (p->errline.len == 0 || p->dead)
		return;
	if (p->cbs.stderr_line != NULL)
		p->cbs.stderr_line(p, buf_cstr(&p->errline), p->errline.len, p->cbs.arg);
	buf_reset(&p->errline);
}

static void e2b_proc_stderr(struct e2b_proc *p, const uint8_t *data, size_t len)
{
	const uint8_t *nl;
	size_t take;

	while (len > 0 && !p->dead) {
		nl = memchr(data, '\n', len);
		take = nl != NULL ? (size_t)(nl - data) : len;
		if (take > E2B_STDERR_LINE_MAX - p->errline.len)
			take = E2B_STDERR_LINE_MAX - p->errline.len;
		buf_add(&p->errline, data, take);
		data += take;
		len -= take;
		if (len > 0 && *data == '\n') {
			data++;
			len--;
			e2b_proc_stderr_flush(p);
		} else if (p->errline.len == E2B_STDERR_LINE_MAX)
			e2b_proc_stderr_flush(p);
	}
}

static int e2b_proc_data_event(struct e2b_proc *p, json_t *data)
{
	json_t *out = json_object_get(data, "stdout"), *err = json_object_get(data, "stderr");
	json_t *v = out != NULL ? out : err;

	if (!json_is_string(v))
		return 0; /* pty output, or an empty chunk */
	buf_reset(&p->scratch);
	if (e2b_base64_decode(json_string_value(v), json_string_length(v), &p->scratch) != 0)
		return -1;
	if (out != NULL && p->cbs.stdout_data != NULL)
		p->cbs.stdout_data(p, p->scratch.data, p->scratch.len, p->cbs.arg);
	else if (out == NULL)
		e2b_proc_stderr(p, p->scratch.data, p->scratch.len);
	return 0;
}

static void e2b_proc_end_event(struct e2b_proc *p, json_t *end)
{
	json_t *code = json_object_get(end, "exitCode"), *status = json_object_get(end, "status");

	p->ended = 1;
	p->exit_code = json_is_integer(code) ? (int)json_integer_value(code) : 0; /* omitted when 0 */
	snprintf(p->status, sizeof(p->status), "%s",
	         json_is_string(status) ? log_esc(json_string_value(status), 100) : "");
}

/* One ProcessEvent: {"event": {"start"|"data"|"end"|"keepalive": {...}}}. */
static int e2b_proc_event(struct e2b_proc *p, const uint8_t *msg, size_t len)
{
	json_t *j = json_loadb((const char *)msg, len, 0, NULL), *ev = json_object_get(j, "event"), *v;
	int rc = 0;

	if (!json_is_object(ev))
		rc = -1;
	else if ((v = json_object_get(ev, "start")) != NULL) {
		json_t *pid = json_object_get(v, "pid");
		p->pid = json_is_integer(pid) ? (uint32_t)json_integer_value(pid) : 0;
		if (p->cbs.started != NULL)
			p->cbs.started(p, p->pid, p->cbs.arg);
	} else if ((v = json_object_get(ev, "data")) != NULL)
		rc = e2b_proc_data_event(p, v);
	else if ((v = json_object_get(ev, "end")) != NULL)
		e2b_proc_end_event(p, v);
	/* keepalive, and events a newer envd adds, need nothing */
	json_decref(j);
	return rc;
}

static int e2b_proc_envelope_cb(uint8_t flags, const uint8_t *msg, size_t len, void *arg)
{
	struct e2b_proc *p = arg;

	if (p->got_endstream) {
		e2b_error_set(&p->err, 200, "internal", "data after the EndStream envelope");
		p->has_err = 1;
		return 1;
	}
	if (flags & E2B_ENVELOPE_FLAG_END) {
		p->got_endstream = 1;
		if (e2b_connect_end_parse(msg, len, &p->err) != 0) {
			p->err.http_status = 200;
			p->has_err = 1;
		}
		return 0;
	}
	if (e2b_proc_event(p, msg, len) != 0) {
		e2b_error_set(&p->err, 200, "internal", "malformed process event");
		p->has_err = 1;
		return 1;
	}
	return p->dead;
}

/* The one way a process handle ends: flush, tell the owner, free. */
static void e2b_proc_finish(struct e2b_proc *p)
{
	struct e2b_proc_end end = {0};

	e2b_http_req_cancel(p->req);
	p->req = NULL;
	p->in_cb++;
	e2b_proc_stderr_flush(p);
	end.exit_code = p->exit_code;
	end.exited = p->ended;
	end.status = p->status;
	end.error = p->has_err ? &p->err : NULL;
	if (!p->dead && p->cbs.end != NULL)
		p->cbs.end(p, &end, p->cbs.arg);
	p->in_cb--;
	e2b_proc_destroy(p);
}

static int e2b_proc_stream_data_cb(struct e2b_http_req *r, const uint8_t *data, size_t len, void *arg)
{
	struct e2b_proc *p = arg;
	char why[256];
	int rc;

	(void)r;
	p->in_cb++;
	rc = e2b_envelope_feed(&p->rd, data, len, e2b_proc_envelope_cb, p, why, sizeof(why));
	p->in_cb--;
	if (rc == -1) {
		e2b_error_set(&p->err, 200, "internal", "bad envelope: %s", why);
		p->has_err = 1;
	}
	if (p->dead) {
		e2b_proc_destroy(p);
		return -1;
	}
	if (p->has_err && !p->got_endstream) {
		e2b_proc_finish(p);
		return -1;
	}
	return 0;
}

static void e2b_proc_stream_done_cb(struct e2b_http_req *r, const struct e2b_http_result *res, void *arg)
{
	struct e2b_proc *p = arg;

	p->req = NULL; /* freed by e2b_http when this returns */
	if (res->curl_code != 0 || res->status != 200) {
		e2b_error_from_result(&p->err, r, res);
		if (res->curl_code != 0)
			snprintf(p->err.message, sizeof(p->err.message), "stream cut before its end: %s",
			         res->error != NULL ? res->error : "transport error");
		p->has_err = 1;
	} else if (!p->got_endstream && !p->has_err) {
		e2b_error_set(&p->err, 200, "unavailable", "stream ended without EndStream%s",
		              e2b_envelope_pending(&p->rd) ? " (inside an envelope)" : "");
		p->has_err = 1;
	}
	e2b_proc_finish(p);
}

static void e2b_proc_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	e2b_proc_finish(arg);
}

static struct e2b_http_req *e2b_proc_req(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *path,
                                         json_t *msg, int timeout_ms)
{
	struct e2b_http_req *r = e2b_envd_req(c, sbx, "POST", path);
	char *json = e2b_envd_dump(msg), tmo[16];
	struct buf body;

	e2b_http_req_header(r, "Content-Type", "application/connect+json", 0);
	e2b_http_req_header(r, "Connect-Protocol-Version", "1", 0);
	e2b_http_req_header(r, "Keepalive-Ping-Interval", E2B_ENVD_KEEPALIVE, 0);
	if (timeout_ms > 0) { /* on Start this is the process's lifetime */
		snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
		e2b_http_req_header(r, "Connect-Timeout-Ms", tmo, 0);
	}
	buf_init(&body);
	e2b_envelope_pack(&body, 0, json, strlen(json));
	e2b_http_req_body(r, body.data, body.len);
	buf_free(&body);
	free(json);
	e2b_http_req_stream(r, e2b_proc_stream_data_cb);
	e2b_http_req_timeout(r, 0, E2B_ENVD_STREAM_STALL_S);
	return r;
}

static struct e2b_proc *e2b_proc_open(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *path,
                                      json_t *msg, int timeout_ms, const struct e2b_proc_cbs *cbs)
{
	struct e2b_proc *p = xcalloc(1, sizeof(*p));
	struct timeval now = {0, 0};

	p->c = c;
	p->cbs = *cbs;
	e2b_envelope_reader_init(&p->rd, E2B_ENVELOPE_MAX_DEFAULT);
	buf_init(&p->errline);
	buf_init(&p->scratch);
	TAILQ_INSERT_TAIL(&e2b_procs, p, entry);
	if (!e2b_sandbox_id_valid(sbx->id)) {
		json_decref(msg);
		e2b_error_set(&p->err, 0, "invalid_argument", "invalid sandbox id %s", log_esc(sbx->id, 64));
		p->has_err = 1;
		p->fail_ev = evtimer_new(e2b_client_base(c), e2b_proc_fail_cb, p);
		evtimer_add(p->fail_ev, &now);
		return p;
	}
	p->req = e2b_proc_req(c, sbx, path, msg, timeout_ms);
	e2b_http_req_start(p->req, e2b_proc_stream_done_cb, p);
	return p;
}

struct e2b_proc *e2b_proc_start(struct e2b_client *c, const struct e2b_sandbox *sbx, const struct e2b_proc_spec *spec,
                                const struct e2b_proc_cbs *cbs)
{
	json_t *proc = json_pack("{s:s}", "cmd", spec->cmd), *args = json_array(), *msg;
	size_t i;

	for (i = 0; spec->args != NULL && spec->args[i] != NULL; i++)
		json_array_append_new(args, json_string(spec->args[i]));
	json_object_set_new(proc, "args", args);
	if (spec->envs != NULL && spec->envs->n > 0) {
		json_t *envs = json_object();
		for (i = 0; i < spec->envs->n; i++)
			json_object_set_new(envs, spec->envs->v[i].key, json_string(spec->envs->v[i].value));
		json_object_set_new(proc, "envs", envs);
	}
	if (spec->cwd != NULL)
		json_object_set_new(proc, "cwd", json_string(spec->cwd));
	msg = json_pack("{s:o,s:b}", "process", proc, "stdin", spec->stdin_open ? 1 : 0);
	if (spec->tag != NULL)
		json_object_set_new(msg, "tag", json_string(spec->tag));
	return e2b_proc_open(c, sbx, "/process.Process/Start", msg, spec->timeout_ms, cbs);
}

struct e2b_proc *e2b_proc_connect(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                  const struct e2b_proc_cbs *cbs)
{
	return e2b_proc_open(c, sbx, "/process.Process/Connect", json_pack("{s:o}", "process", e2b_envd_selector(sel)),
	                     0, cbs);
}
