/*
 * envd_process.c: envd's Connect service process.Process
 * (spec/envd/process/process.proto): Start and Connect streams with start /
 * data / keepalive / end events, List, SendInput, CloseStdin, SendSignal,
 * Connect-Timeout-Ms as the process deadline and 30 s exit retention.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "emulator.h"

#define PROC_MAX_ARGS 4096
#define PROC_MAX_ENVS 4096
#define PROC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void proc_output_cb(evutil_socket_t fd, short what, void *arg);

static struct proc *proc_find_pid(pid_t pid)
{
	struct sandbox *sbx;
	struct proc *p;

	TAILQ_FOREACH(sbx, &emu.sandboxes, entry)
	TAILQ_FOREACH(p, &sbx->procs, entry)
	if (p->pid == pid && !p->reaped)
		return p;
	return NULL;
}

/* ProcessSelector: {"pid":N} or {"tag":"x"}; ended processes are found while retained. */
static struct proc *proc_select(struct sandbox *sbx, json_t *sel, char *what, size_t whatlen)
{
	json_t *pid = json_object_get(sel, "pid"), *tag = json_object_get(sel, "tag");
	struct proc *p;
	long long want = -1;

	if (json_is_integer(pid))
		want = json_integer_value(pid);
	else if (json_is_string(pid))
		want = strtoll(json_string_value(pid), NULL, 10);
	if (want >= 0)
		snprintf(what, whatlen, "process with pid %lld not found", want);
	else if (json_is_string(tag))
		snprintf(what, whatlen, "process with tag %s not found", json_string_value(tag));
	else {
		snprintf(what, whatlen, "invalid process selector");
		return NULL;
	}
	TAILQ_FOREACH(p, &sbx->procs, entry)
	{
		if (want >= 0 && p->pid == (pid_t)want)
			return p;
		if (want < 0 && p->tag != NULL && strcmp(p->tag, json_string_value(tag)) == 0)
			return p;
	}
	return NULL;
}

static void proc_broadcast(struct proc *p, json_t *event)
{
	struct stream *st, *tmp;

	TAILQ_FOREACH_SAFE(st, &p->streams, entry, tmp)
	stream_send(st, json_incref(event));
	json_decref(event);
}

/* One read of at most a chunk; 1 data, 0 EOF, -1 would block / error. */
static int proc_read_chunk(struct proc *p, int fd, const char *name)
{
	static char buf[EMU_OUTPUT_CHUNK];
	ssize_t n = read(fd, buf, sizeof(buf));
	char *b64;

	if (n > 0) {
		/* Nobody attached: envd drops output rather than buffering it. */
		if (!TAILQ_EMPTY(&p->streams)) {
			b64 = connect_base64(buf, (size_t)n);
			proc_broadcast(p, json_pack("{s:{s:{s:s}}}", "event", "data", name, b64));
			free(b64);
		}
		return 1;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		return 0;
	return -1;
}

static void proc_close_output(struct proc *p, int is_err)
{
	int *fd = is_err ? &p->err_fd : &p->out_fd;
	struct event **ev = is_err ? &p->err_ev : &p->out_ev;

	if (*ev != NULL) {
		event_free(*ev);
		*ev = NULL;
	}
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void proc_close_stdin(struct proc *p)
{
	if (p->in_ev != NULL) {
		event_free(p->in_ev);
		p->in_ev = NULL;
	}
	if (p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
	if (p->in_buf != NULL) {
		evbuffer_free(p->in_buf);
		p->in_buf = NULL;
	}
}

/* Go's signal names as exec.ExitError prints them ("signal: killed"). */
static void proc_signal_name(int sig, char *out, size_t len)
{
	const char *s = strsignal(sig);

	snprintf(out, len, "%s", s != NULL ? s : "unknown signal");
	if (out[0] >= 'A' && out[0] <= 'Z')
		out[0] = (char)(out[0] + 32);
}

static json_t *proc_end_event(struct proc *p)
{
	char status[96], sig[64];
	json_t *end = json_object();

	if (WIFEXITED(p->status)) {
		int code = WEXITSTATUS(p->status);
		snprintf(status, sizeof(status), "exit status %d", code);
		if (code != 0) /* sint32 zero is omitted by protojson */
			json_object_set_new(end, "exitCode", json_integer(code));
		json_object_set_new(end, "exited", json_true());
		json_object_set_new(end, "status", json_string(status));
		if (code != 0)
			json_object_set_new(end, "error", json_string(status));
	} else {
		proc_signal_name(WIFSIGNALED(p->status) ? WTERMSIG(p->status) : SIGKILL, sig, sizeof(sig));
		snprintf(status, sizeof(status), "signal: %s", sig);
		json_object_set_new(end, "exitCode", json_integer(-1));
		json_object_set_new(end, "status", json_string(status));
		json_object_set_new(end, "error", json_string(status));
	}
	return json_pack("{s:{s:o}}", "event", "end", end);
}

static void proc_retain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&p->sbx->procs, p, entry);
	proc_free(p);
}

/* The process is reaped: deliver what is left in its pipes, then end. Like
 * envd (cmd.Wait closes the pipes), grandchildren holding them don't delay it. */
static void proc_finish(struct proc *p)
{
	struct stream *st, *tmp;
	json_t *end;

	while (p->out_fd >= 0 && proc_read_chunk(p, p->out_fd, "stdout") == 1)
		;
	while (p->err_fd >= 0 && proc_read_chunk(p, p->err_fd, "stderr") == 1)
		;
	proc_close_output(p, 0);
	proc_close_output(p, 1);
	proc_close_stdin(p);
	if (p->deadline_ev != NULL)
		evtimer_del(p->deadline_ev);
	end = proc_end_event(p);
	p->end_json = json_dumps(end, JSON_COMPACT);
	p->ended = 1;
	TAILQ_FOREACH_SAFE(st, &p->streams, entry, tmp)
	{
		stream_send(st, json_incref(end));
		if (st->is_start && p->killed_deadline)
			stream_end(st, "deadline_exceeded", "context deadline exceeded");
		else
			stream_end(st, NULL, NULL);
		stream_free(st);
	}
	json_decref(end);
	emu_debug("sandbox=%s pid=%d ended: %s", p->sbx->id, (int)p->pid, p->end_json);
	p->retain_ev = evtimer_new(emu.base, proc_retain_cb, p);
	emu_set_timer(p->retain_ev, EMU_EXIT_RETENTION_S * 1000);
}

void envd_process_child_exited(pid_t pid, int status)
{
	struct proc *p = proc_find_pid(pid);

	if (p == NULL)
		return; /* a process of a destroyed sandbox, or the bwrap probe */
	p->reaped = 1;
	p->status = status;
	proc_finish(p);
}

static void proc_output_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;
	int is_err = fd == p->err_fd;

	(void)what;
	if (proc_read_chunk(p, fd, is_err ? "stderr" : "stdout") == 0)
		proc_close_output(p, is_err);
}

static void proc_stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;

	(void)what;
	if (evbuffer_write(p->in_buf, fd) < 0 && errno != EAGAIN && errno != EINTR) {
		proc_close_stdin(p); /* EPIPE: the process closed its stdin */
		return;
	}
	if (evbuffer_get_length(p->in_buf) == 0) {
		event_del(p->in_ev);
		if (p->in_close_pending)
			proc_close_stdin(p);
	}
}

static void proc_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;

	(void)fd;
	(void)what;
	/* exec.CommandContext: the context deadline SIGKILLs the process. */
	p->killed_deadline = 1;
	emu_debug("sandbox=%s pid=%d: Connect-Timeout-Ms reached, killing", p->sbx->id, (int)p->pid);
	kill(-p->pid, SIGKILL);
}

void proc_free(struct proc *p)
{
	struct stream *st;

	while ((st = TAILQ_FIRST(&p->streams)) != NULL) {
		TAILQ_REMOVE(&p->streams, st, entry);
		st->proc = NULL;
		stream_cut(st);
	}
	proc_close_output(p, 0);
	proc_close_output(p, 1);
	proc_close_stdin(p);
	if (p->deadline_ev != NULL)
		event_free(p->deadline_ev);
	if (p->retain_ev != NULL)
		event_free(p->retain_ev);
	json_decref(p->config);
	free(p->tag);
	free(p->end_json);
	free(p);
}

/* The VM is gone: SIGKILL every process group, cut every stream, no end events. */
void proc_kill_all(struct sandbox *sbx)
{
	struct proc *p;

	while ((p = TAILQ_FIRST(&sbx->procs)) != NULL) {
		TAILQ_REMOVE(&sbx->procs, p, entry);
		if (!p->reaped)
			kill(-p->pid, SIGKILL);
		proc_free(p);
	}
}

/* envd's environment: PATH, HOME, USER, LOGNAME, then the sandbox's envVars,
 * then the request's envs; later entries win. */
static char **proc_build_env(struct sandbox *sbx, json_t *envs)
{
	json_t *all = json_pack("{s:s,s:s,s:s,s:s}", "PATH", PROC_DEFAULT_PATH, "HOME", EMU_HOME, "USER", "user",
	                        "LOGNAME", "user");
	const char *k;
	json_t *v;
	char **envp;
	size_t i = 0;

	json_object_update(all, sbx->env_vars);
	if (json_is_object(envs))
		json_object_foreach(envs, k, v) if (json_is_string(v)) json_object_set(all, k, v);
	envp = emu_xcalloc(json_object_size(all) + 1, sizeof(char *));
	json_object_foreach(all, k, v) if (asprintf(&envp[i++], "%s=%s", k, json_string_value(v)) < 0)
	    emu_fatal("out of memory");
	json_decref(all);
	return envp;
}

static void proc_free_strv(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Validate a StartRequest; builds argv and the cleaned cwd or fails the stream. */
static int proc_start_args(struct sandbox *sbx, json_t *msg, char ***argv_out, char **cwd_out, struct stream *st)
{
	json_t *cfg = json_object_get(msg, "process"), *cmd, *args, *cwd, *a;
	char **argv, *clean, msgbuf[PATH_MAX + 64];
	struct stat sb;
	size_t i;
	int fd;

	cmd = json_object_get(cfg, "cmd");
	args = json_object_get(cfg, "args");
	cwd = json_object_get(cfg, "cwd");
	if (!json_is_string(cmd) || json_string_length(cmd) == 0 || (args != NULL && !json_is_array(args)) ||
	    json_array_size(args) > PROC_MAX_ARGS || json_object_size(json_object_get(cfg, "envs")) > PROC_MAX_ENVS) {
		stream_end(st, "invalid_argument", "invalid process config: cmd is required");
		return -1;
	}
	clean = sandbox_clean_path(json_is_string(cwd) && json_string_length(cwd) ? json_string_value(cwd) : EMU_HOME);
	fd = clean != NULL ? sandbox_open(sbx, clean, O_PATH, 0) : -1;
	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(msgbuf, sizeof(msgbuf), "cwd '%s' does not exist", clean ? clean : "?");
		stream_end(st, "invalid_argument", msgbuf);
		if (fd >= 0)
			close(fd);
		free(clean);
		return -1;
	}
	close(fd);
	argv = emu_xcalloc(json_array_size(args) + 2, sizeof(char *));
	argv[0] = emu_xstrdup(json_string_value(cmd));
	json_array_foreach(args, i, a) argv[i + 1] = emu_xstrdup(json_is_string(a) ? json_string_value(a) : "");
	*argv_out = argv;
	*cwd_out = clean;
	return 0;
}

static struct proc *proc_new(struct sandbox *sbx, json_t *msg, pid_t pid, int fds[3])
{
	struct proc *p = emu_xcalloc(1, sizeof(*p));
	json_t *tag = json_object_get(msg, "tag");

	p->sbx = sbx;
	p->pid = pid;
	p->tag = json_is_string(tag) ? emu_xstrdup(json_string_value(tag)) : NULL;
	p->config = json_deep_copy(json_object_get(msg, "process"));
	p->in_fd = fds[0];
	p->out_fd = fds[1];
	p->err_fd = fds[2];
	TAILQ_INIT(&p->streams);
	if (p->in_fd >= 0) {
		p->in_buf = evbuffer_new();
		p->in_ev = event_new(emu.base, p->in_fd, EV_WRITE | EV_PERSIST, proc_stdin_cb, p);
	}
	p->out_ev = event_new(emu.base, p->out_fd, EV_READ | EV_PERSIST, proc_output_cb, p);
	p->err_ev = event_new(emu.base, p->err_fd, EV_READ | EV_PERSIST, proc_output_cb, p);
	event_add(p->out_ev, NULL);
	event_add(p->err_ev, NULL);
	p->deadline_ev = evtimer_new(emu.base, proc_deadline_cb, p);
	TAILQ_INSERT_TAIL(&sbx->procs, p, entry);
	return p;
}

static void proc_start(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	const char *tmo = emu_header(req, "Connect-Timeout-Ms");
	json_t *stdin_j = json_object_get(msg, "stdin"), *tag = json_object_get(msg, "tag");
	struct stream *st = stream_open(req);
	char **argv = NULL, **envp, *cwd = NULL, *host_cwd, err[256];
	int fds[3], stdin_on = stdin_j == NULL || json_is_true(stdin_j); /* omitted means true */
	struct proc *p, *q;
	pid_t pid;
	long ms;

	evtimer_del(st->deadline_ev); /* on Start the deadline belongs to the process */
	st->is_start = 1;
	st->cut_after = fault_stream_cut_after();
	if (json_object_get(msg, "pty") != NULL && !json_is_null(json_object_get(msg, "pty"))) {
		stream_end(st, "unimplemented", "pty is not emulated by e2b-emulator");
		stream_free(st);
		return;
	}
	if (json_is_string(tag))
		TAILQ_FOREACH(q, &sbx->procs, entry)
	if (!q->ended && q->tag != NULL && strcmp(q->tag, json_string_value(tag)) == 0) {
		stream_end(st, "already_exists", "process with this tag already exists");
		stream_free(st);
		return;
	}
	if (proc_start_args(sbx, msg, &argv, &cwd, st) != 0) {
		stream_free(st);
		return;
	}
	envp = proc_build_env(sbx, json_object_get(json_object_get(msg, "process"), "envs"));
	host_cwd = sandbox_host_path(sbx, cwd, NULL);
	pid = sandbox_spawn(sbx, argv, envp, host_cwd, cwd, stdin_on, fds, err, sizeof(err));
	proc_free_strv(argv);
	proc_free_strv(envp);
	free(host_cwd);
	free(cwd);
	if (pid < 0) {
		stream_end(st, "internal", err);
		stream_free(st);
		return;
	}
	p = proc_new(sbx, msg, pid, fds);
	st->proc = p;
	TAILQ_INSERT_TAIL(&p->streams, st, entry);
	if (tmo != NULL && (ms = strtol(tmo, NULL, 10)) > 0)
		emu_set_timer(p->deadline_ev, ms);
	emu_debug("sandbox=%s pid=%d started tag=%s", sbx->id, (int)pid, p->tag ? p->tag : "-");
	stream_send(st, json_pack("{s:{s:{s:i}}}", "event", "start", "pid", (json_int_t)pid));
}

/* Reattach: start{pid}, then only output produced from now on. */
static void proc_connect(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	struct stream *st = stream_open(req);
	char what[160];
	struct proc *p = proc_select(sbx, json_object_get(msg, "process"), what, sizeof(what));
	json_error_t jerr;

	st->cut_after = fault_stream_cut_after();
	if (p == NULL) {
		stream_end(st, "not_found", what);
		stream_free(st);
		return;
	}
	stream_send(st, json_pack("{s:{s:{s:i}}}", "event", "start", "pid", (json_int_t)p->pid));
	if (p->ended) {
		stream_send(st, json_loads(p->end_json, 0, &jerr));
		stream_end(st, NULL, NULL);
		stream_free(st);
		return;
	}
	st->proc = p;
	TAILQ_INSERT_TAIL(&p->streams, st, entry);
}

static void proc_list(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	json_t *arr = json_array(), *info;
	struct proc *p;

	(void)msg;
	TAILQ_FOREACH(p, &sbx->procs, entry)
	{
		if (p->ended)
			continue;
		info = json_pack("{s:O,s:i}", "config", p->config, "pid", (json_int_t)p->pid);
		if (p->tag != NULL)
			json_object_set_new(info, "tag", json_string(p->tag));
		json_array_append_new(arr, info);
	}
	connect_unary_reply(req, json_pack("{s:o}", "processes", arr));
}

/* The live process a unary call names, or NULL after replying not_found. */
static struct proc *proc_live(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	char what[160];
	struct proc *p = proc_select(sbx, json_object_get(msg, "process"), what, sizeof(what));

	if (p == NULL || p->ended) {
		connect_unary_error(
		    req, p == NULL && strncmp(what, "invalid", 7) == 0 ? "invalid_argument" : "not_found", "%s", what);
		return NULL;
	}
	return p;
}

static void proc_send_input(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	struct proc *p = proc_live(req, sbx, msg);
	json_t *input = json_object_get(msg, "input"), *data;
	uint8_t *bytes;
	size_t len;

	if (p == NULL)
		return;
	if ((data = json_object_get(input, "pty")) != NULL) {
		connect_unary_error(req, "failed_precondition", "process has no pty");
		return;
	}
	data = json_object_get(input, "stdin");
	if (p->in_buf == NULL || p->in_close_pending) {
		connect_unary_error(req, "internal", "stdin not enabled or closed");
		return;
	}
	if (data != NULL && (!json_is_string(data) || connect_unbase64(json_string_value(data), &bytes, &len) != 0)) {
		connect_unary_error(req, "invalid_argument", "input.stdin must be base64");
		return;
	}
	if (data != NULL) {
		evbuffer_add(p->in_buf, bytes, len);
		free(bytes);
		event_add(p->in_ev, NULL);
	}
	connect_unary_reply(req, json_object());
}

static void proc_close_stdin_rpc(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	struct proc *p = proc_live(req, sbx, msg);

	if (p == NULL)
		return;
	if (p->in_buf == NULL) {
		connect_unary_error(req, "internal", "stdin not enabled or closed");
		return;
	}
	p->in_close_pending = 1;
	if (evbuffer_get_length(p->in_buf) == 0)
		proc_close_stdin(p);
	connect_unary_reply(req, json_object());
}

static void proc_send_signal(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	json_t *sig = json_object_get(msg, "signal");
	struct proc *p;
	int signo = 0;

	if (json_is_integer(sig))
		signo = (int)json_integer_value(sig);
	else if (json_is_string(sig))
		signo = strcmp(json_string_value(sig), "SIGNAL_SIGKILL") == 0   ? 9
		        : strcmp(json_string_value(sig), "SIGNAL_SIGTERM") == 0 ? 15
		                                                                : 0;
	if ((p = proc_live(req, sbx, msg)) == NULL)
		return;
	if (signo != SIGKILL && signo != SIGTERM) {
		connect_unary_error(req, "unimplemented", "invalid signal: %s",
		                    json_is_string(sig) ? json_string_value(sig) : "?");
		return;
	}
	/* The whole group: with bwrap the direct child is bwrap, not the command. */
	if (kill(-p->pid, signo) != 0 && kill(p->pid, signo) != 0) {
		connect_unary_error(req, "internal", "error sending signal: %s", strerror(errno));
		return;
	}
	connect_unary_reply(req, json_object());
}

void envd_process_dispatch(struct evhttp_request *req, struct sandbox *sbx, const char *method)
{
	static const struct {
		const char *name;
		void (*fn)(struct evhttp_request *, struct sandbox *, json_t *);
		int stream;
	} methods[] = {
	    {"Start", proc_start, 1},
	    {"Connect", proc_connect, 1},
	    {"List", proc_list, 0},
	    {"SendInput", proc_send_input, 0},
	    {"CloseStdin", proc_close_stdin_rpc, 0},
	    {"SendSignal", proc_send_signal, 0},
	};
	json_t *msg;
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i].name) == 0)
			break;
	if (i == sizeof(methods) / sizeof(methods[0])) {
		if ((msg = connect_unary_request(req)) != NULL) {
			connect_unary_error(req, "unimplemented", "process.Process.%s is not emulated", method);
			json_decref(msg);
		}
		return;
	}
	msg = methods[i].stream ? connect_stream_request(req) : connect_unary_request(req);
	if (msg == NULL)
		return;
	methods[i].fn(req, sbx, msg);
	json_decref(msg);
}
