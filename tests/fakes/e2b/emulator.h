/*
 * emulator.h: e2b-emulator, an offline stand-in for the E2B cloud: the control
 * plane (REST, X-API-Key) and the in-sandbox daemon envd (REST /files, Connect
 * RPC process.Process and filesystem.Filesystem) on one loopback port.
 */
#ifndef E2B_EMULATOR_H
#define E2B_EMULATOR_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#define EMU_ENVD_VERSION "0.6.2"
#define EMU_ENVD_PORT 49983
#define EMU_CLIENT_ID "6532622b"
#define EMU_SANDBOX_ID_LEN 20
#define EMU_HOME "/home/user"
#define EMU_MAX_BODY (128u * 1024 * 1024) /* request body cap (uploads) */
#define EMU_MAX_TIMEOUT_S (24 * 3600)     /* plan maximum sandbox length */
#define EMU_EXIT_RETENTION_S 30           /* envd terminatedRetentionTTL */
#define EMU_KEEPALIVE_DEFAULT_S 90        /* envd default keepalive interval */
#define EMU_OUTPUT_CHUNK (32 * 1024)      /* envd pipe chunk per data event */
#define EMU_MAX_SANDBOXES 1000

/* glibc's sys/queue.h lacks the _SAFE iterators. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                                     \
	for ((var) = TAILQ_FIRST(head); (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif
#define EMU_PRINTFLIKE(a, b) __attribute__((__format__(__printf__, a, b)))

struct fault;
struct proc;
struct stream;

/* One emulated sandbox: a private directory tree and its processes. */
struct sandbox {
	TAILQ_ENTRY(sandbox) entry;
	char id[EMU_SANDBOX_ID_LEN + 1];
	char *template_id;
	char *access_token; /* envdAccessToken; NULL when not secure */
	json_t *metadata;   /* object of strings */
	json_t *env_vars;   /* object of strings, global to every process */
	char *dir;          /* <root>/<id>: the sandbox's "/" for files and RPCs */
	int64_t started_ms;
	int64_t end_ms;
	struct event *ttl_ev;
	struct event *death_ev; /* --fault sandbox-death */
	TAILQ_HEAD(, proc) procs;
	int dead;
};
TAILQ_HEAD(sandbox_list, sandbox);

/* One process started by process.Process/Start. */
struct proc {
	TAILQ_ENTRY(proc) entry;
	struct sandbox *sbx;
	pid_t pid; /* host pid, also the process group id */
	char *tag;
	json_t *config; /* ProcessConfig as JSON, for List */
	int in_fd, out_fd, err_fd;
	struct event *in_ev, *out_ev, *err_ev;
	struct evbuffer *in_buf;
	int in_close_pending;
	int reaped;
	int status;          /* waitpid status once reaped */
	int killed_deadline; /* Connect-Timeout-Ms expired */
	int ended;           /* the end event was produced */
	char *end_json;      /* the end event, replayed on a late Connect */
	struct event *deadline_ev;
	struct event *retain_ev;
	TAILQ_HEAD(, stream) streams;
};

/* One server-streaming Connect response (Start, Connect). */
struct stream {
	TAILQ_ENTRY(stream) entry;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct proc *proc;
	struct event *keepalive_ev;
	struct event *deadline_ev;
	int keepalive_s;
	int is_start; /* the Start stream carries the process deadline */
	size_t sent;
	size_t cut_after; /* 0 = never (--fault stream-cut) */
	int done;
};

/* Global state of the one emulator process. */
struct emu {
	struct event_base *base;
	struct evhttp *http;
	char *root;
	char *api_key; /* NULL: any key of the right shape */
	int create_delay_ms;
	int use_bwrap;
	struct sandbox_list sandboxes;
	size_t nsandboxes;
	size_t nfaults;
	int verbose;
};
extern struct emu emu;

/* emulator.c: logging, allocation, helpers shared by every handler. */
void emu_log(const char *fmt, ...) EMU_PRINTFLIKE(1, 2);
void emu_debug(const char *fmt, ...) EMU_PRINTFLIKE(1, 2);
__dead void emu_fatal(const char *fmt, ...) EMU_PRINTFLIKE(1, 2);
void *emu_xmalloc(size_t n);
void *emu_xcalloc(size_t n, size_t size);
char *emu_xstrdup(const char *s);
int64_t emu_now_ms(void);
void emu_iso8601(int64_t ms, char *out, size_t outlen);
const char *emu_reason(int code);
void emu_reply_json(struct evhttp_request *req, int code, json_t *body); /* steals body */
void emu_reply_empty(struct evhttp_request *req, int code);
void emu_reply_api_error(struct evhttp_request *req, int code, const char *fmt, ...) EMU_PRINTFLIKE(3, 4);
json_t *emu_read_json_body(struct evhttp_request *req, char *err, size_t errlen);
const char *emu_header(struct evhttp_request *req, const char *name);
void emu_random_id(char *out, size_t len);
void emu_set_timer(struct event *ev, int64_t ms);

/* api_sandboxes.c: control plane (https://api.e2b.app). */
void api_dispatch(struct evhttp_request *req, const char *path);

/* sandbox.c: lifecycle, TTL, isolation, process trees. */
int sandbox_init(const char *root);
void sandbox_shutdown(void);
struct sandbox *sandbox_create(const char *template_id, int timeout_s, int secure, json_t *metadata, json_t *env_vars);
struct sandbox *sandbox_find(const char *id);
void sandbox_destroy(struct sandbox *sbx, const char *why);
void sandbox_set_end(struct sandbox *sbx, int64_t end_ms);
/* Clean a sandbox path (absolute, or relative to /home/user) lexically. */
char *sandbox_clean_path(const char *path);
/* Host path of a sandbox path under sbx->dir (only for exec without bwrap). */
char *sandbox_host_path(struct sandbox *sbx, const char *path, char **clean_out);
/* openat2(RESOLVE_IN_ROOT) with sbx->dir as the root: no escape by symlink. */
int sandbox_open(struct sandbox *sbx, const char *clean, int flags, mode_t mode);
int sandbox_open_parent(struct sandbox *sbx, const char *clean, const char **name);
int sandbox_mkdir_p(struct sandbox *sbx, const char *clean, int *created);
pid_t sandbox_spawn(struct sandbox *sbx, char *const argv[], char *const envp[], const char *cwd_host,
                    const char *cwd_sbx, int stdin_on, int fds_out[3], char *err, size_t errlen);

/* connect.c: the Connect protocol (JSON codec) as envd's connect-go speaks it. */
int connect_code_http(const char *code);
void connect_unary_reply(struct evhttp_request *req, json_t *msg); /* steals */
void connect_unary_error(struct evhttp_request *req, const char *code, const char *fmt, ...) EMU_PRINTFLIKE(3, 4);
json_t *connect_unary_request(struct evhttp_request *req);  /* replies on error */
json_t *connect_stream_request(struct evhttp_request *req); /* replies on error */
void connect_envelope(struct evbuffer *out, uint8_t flags, const char *json, size_t len);
/* Parse one envelope from data[0..len): 1 and *used set, 0 incomplete, -1 bad. */
int connect_envelope_parse(const uint8_t *data, size_t len, size_t max, uint8_t *flags, const uint8_t **msg,
                           size_t *msglen, size_t *used);
struct stream *stream_open(struct evhttp_request *req);
void stream_send(struct stream *st, json_t *msg); /* steals; message envelope */
void stream_end(struct stream *st, const char *code, const char *message);
void stream_cut(struct stream *st);
void stream_free(struct stream *st);
char *connect_base64(const void *data, size_t len);
int connect_unbase64(const char *s, uint8_t **out, size_t *outlen);

/* envd_files.c: envd REST (/health, /files). */
void envd_files_health(struct evhttp_request *req, struct sandbox *sbx);
void envd_files_handle(struct evhttp_request *req, struct sandbox *sbx, const char *query);

/* envd_process.c: process.Process. */
void envd_process_dispatch(struct evhttp_request *req, struct sandbox *sbx, const char *method);
void envd_process_child_exited(pid_t pid, int status);
void proc_kill_all(struct sandbox *sbx);
void proc_free(struct proc *p);

/* envd_filesystem.c: filesystem.Filesystem. */
void envd_filesystem_dispatch(struct evhttp_request *req, struct sandbox *sbx, const char *method);
json_t *envd_filesystem_entry(struct sandbox *sbx, const char *sbx_path, const char *host_path, int follow);

/* tls.c: --tls-cert/--tls-key (HTTPS). */
void tls_init(struct evhttp *http, const char *cert, const char *key);
void tls_shutdown(void);

/* fault.c: --fault injection. */
int fault_parse(const char *spec, char *err, size_t errlen);
const char *fault_usage(void);
/* Returns the HTTP status to answer with (429/5xx) or 0; sets *retry_after. */
int fault_check_endpoint(const char *endpoint, int *retry_after);
size_t fault_stream_cut_after(void);
int fault_sandbox_death_after(void); /* seconds, 0 = none */

#endif
