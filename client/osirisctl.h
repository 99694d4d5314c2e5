/*
 * osirisctl.h: the control client. One connection, one call, print, exit;
 * cross-file types and prototypes of the client's modules live here.
 */
#ifndef OSIRISCTL_H
#define OSIRISCTL_H

#include <getopt.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "proto/proto.h"

/* Exit codes (DESIGN §4, osirisctl(1)). */
#define EXIT_OK 0
#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_PROTOCOL 4

/* Responses may carry a whole artifact chunk or a long run list. */
#define CTL_MAX_MSG ((size_t)256 << 20)
/* Default cap on a submitted run context (daemon.max_context_bytes). */
#define CTL_MAX_CONTEXT ((size_t)64 << 20)

/* Global options, shared by every command. */
struct ctl {
	const char *socket; /* resolved socket path */
	int json;           /* --json */
};

/* A command: name, usage (after "osirisctl NAME "), one-line summary. */
struct ctl_cmd {
	const char *name;
	const char *usage;
	const char *summary;
	int (*fn)(struct ctl *ctl, int argc, char **argv); /* returns the exit code */
	const char *options;                               /* help lines, may be NULL */
};

/* ctl.c */
const struct ctl_cmd *ctl_cmd_find(const char *name);
void ctl_usage_print(FILE *f);
/* getopt_long over a command's argv (argv[0] = command name) that handles
 * what every command shares: --json, -h/--help and the one-line error for an
 * unknown option or a missing argument. Returns the command's next own
 * option, or -1 when the options are over; *rc is then 0 to go on, -1 when
 * help was printed, else an exit code. */
int ctl_getopt(const struct ctl_cmd *cmd, struct ctl *ctl, int argc, char **argv, const char *shortopts,
               const struct option *longopts, int *rc);
/* The end of every command's long options: what ctl_getopt handles itself. */
#define CTL_OPTS_SHARED                                                                                                \
	{"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'},                                            \
	{                                                                                                              \
		NULL, 0, NULL, 0                                                                                       \
	}
int ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...) PRINTFLIKE(2, 3);
/* Exactly `nargs` operands left at argv[optind]: 0, or the usage error
 * naming `missing` when too few, "too many arguments" when too many. */
int ctl_operands(const struct ctl_cmd *cmd, int argc, int nargs, const char *missing);
void ctl_cmd_help(const struct ctl_cmd *cmd, FILE *f);
/* Commands whose only option is --json: exactly `nargs` operands, left at
 * argv[optind]. 0 to go on, -1 when help was printed, else an exit code. */
int ctl_parse_simple(const struct ctl_cmd *cmd, struct ctl *ctl, int argc, char **argv, int nargs);

/* session.c */
struct session {
	int fd;
	char *path;
	uint32_t next_id;
	struct buf in;
	struct buf out;
	msgpack_packer pk;
	struct rpc_limits limits;
	char *daemon;     /* from hello */
	int64_t protocol; /* from hello */
};
/* Called for each notification while waiting for a response; returns 0 to
 * go on or an exit code to stop. */
typedef int (*session_notify_cb)(const struct rpc_msg *m, void *arg);
/* The socket path: -S, else $OSIRIS_SOCKET, else the daemon's default. */
char *session_socket_default(void);
const char *session_socket_path(const char *opt);
/* Connect and say hello. Returns 0, or an exit code after printing the
 * one-line error (3 unreachable, 4 version mismatch). */
int session_open(struct session *c, const char *path);
void session_close(struct session *c);
/* Start a request: returns the packer; the caller packs exactly one map. */
msgpack_packer *session_request(struct session *c, const char *method);
/* Send the request and read until its response. 0 with *resp filled (free
 * with rpc_msg_free), or an exit code after printing "osirisctl: what: why"
 * (daemon error, disconnect, protocol violation). */
int session_call(struct session *c, const char *what, session_notify_cb cb, void *arg, struct rpc_msg *resp);
/* Send what the packer holds now (a request in parts); 0 or an exit code. */
int session_send(struct session *c);
/* Exit code for a wire error code (PROTOCOL.md §2). */
int session_exit_code(const char *code);
/* connect + hello + one request with `pack` filling params; convenience for
 * the simple commands. */
int session_simple(struct ctl *ctl, const char *what, const char *method, const char *run, struct session *c,
                   struct rpc_msg *resp);

/* args.c: pure parsing helpers (unit tested). */
/* KEY[=VALUE]: the value comes from `getenv_fn` (getenv) when omitted and
 * `from_env` is set; labels require "=". 0, or -1 with a one-line err. */
int args_kv(const char *arg, int from_env, char *(*getenv_fn)(const char *), struct kvlist *l, char *err,
            size_t errlen);
int args_env_name_ok(const char *name);
int args_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Bytes with an optional K/M/G suffix (powers of 1024). */
int args_size(const char *s, size_t *out);
/* Seconds from "90", "45s", "15m", "12h", "30d" or "2w". */
int args_duration(const char *s, int64_t *secs);

/* output.c: human output, errors, formatting. */
void out_error(const char *what, const char *fmt, ...) PRINTFLIKE(2, 3);
/* Peer text made safe for a terminal: control chars and invalid UTF-8 as
 * escapes. Appends to b. */
void out_esc(struct buf *b, const char *s, size_t len);
/* Fetch a printable copy of map[key] (str) into b, "-" when absent/nil. */
const char *out_str(struct buf *b, const msgpack_object *map, const char *key);
/* A time field (ISO string or ms integer) as ms epoch; -1 when unset. */
int64_t out_time_ms(const msgpack_object *o);
int out_iso_parse(const char *s, size_t len, int64_t *ms);
void out_hms(int64_t ms, char *dst, size_t len);        /* "12:24:44.123" local */
void out_datetime(int64_t ms, char *dst, size_t len);   /* "2026-11-26 12:24:44" local */
void out_duration(int64_t ms, char *dst, size_t len);   /* "850ms", "3.2s", "2m05s", "1h02m" */
void out_value(struct buf *b, const msgpack_object *o); /* one value for a k=v field */
/* One human line (no newline) for a run.event params map. */
void out_record(struct buf *b, const msgpack_object *ev);
/* Write and flush; a closed stdout (EPIPE) exits quietly. */
void out_write(const void *data, size_t len);
void out_flush(void);
/* A simple aligned table. */
struct out_table {
	size_t ncols;
	size_t nrows;
	char **cells; /* nrows * ncols, row 0 = header */
};
void out_table_init(struct out_table *t, size_t ncols, const char *const *header);
void out_table_row(struct out_table *t, const char *const *cells);
void out_table_print(struct out_table *t);
void out_table_free(struct out_table *t);

/* json.c: msgpack -> JSON (ints stay ints, bin as base64). */
json_t *json_from_mp(const msgpack_object *o);
void json_base64(struct buf *b, const uint8_t *data, size_t len);
void json_out_doc(json_t *j);  /* indented document + newline, then decref */
void json_out_line(json_t *j); /* compact one line + newline, then decref */

/* logs.c */
enum follow_mode { FOLLOW_QUIET, FOLLOW_HUMAN, FOLLOW_JSON };
/* run.follow {run, since, follow}: cb gets every run.event on the way,
 * then as session_call. */
int logs_call(struct session *c, const char *what, const char *run, int64_t since, int follow, session_notify_cb cb,
              void *arg, struct rpc_msg *resp);
/* run.follow on an open connection; returns the exit code: with `follow`
 * the run's status (0 succeeded, 1 otherwise), without it 0. */
int logs_follow(struct session *c, const char *what, const char *run, int64_t since, int follow, enum follow_mode mode);
int cmd_logs(struct ctl *ctl, int argc, char **argv);

/* submit.c */
int cmd_submit(struct ctl *ctl, int argc, char **argv);

/* runs.c */
int cmd_runs(struct ctl *ctl, int argc, char **argv);
int cmd_show(struct ctl *ctl, int argc, char **argv);
int cmd_cancel(struct ctl *ctl, int argc, char **argv);

/* artifacts.c */
struct artifact_list {
	struct artifact_info *v;
	size_t n;
};
/* artifact.list into l (free with artifacts_list_free); 0 or an exit code. */
int artifacts_list(struct session *c, const char *run, struct artifact_list *l);
void artifacts_list_free(struct artifact_list *l);
/* Fetch one artifact into the file dest, verified against its size and
 * sha256 (written under a temporary name, renamed once verified). */
int artifacts_fetch_file(struct session *c, const char *run, const struct artifact_info *a, const char *dest);
int cmd_artifacts(struct ctl *ctl, int argc, char **argv);

/* export.c: `artifacts --export DIR`, the Osiris run directory. */
/* DIR must not exist or be an empty directory: 0 (*exists says which), or
 * EXIT_USAGE after the one-line error. Checked before connecting. */
int export_dir_check(const char *dir, int *exists);
int export_run(struct ctl *ctl, struct session *c, const char *run, const char *dir, int exists);

/* osirisfmt.c: Osiris's run directory formats (pure, unit tested). */
/* events.jsonl / metrics.jsonl: compact, ASCII like Python's json.dumps. */
#define OSIRISFMT_JSONL (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER)
struct osirisfmt_run {
	const char *id;     /* full run id: every line's "session" */
	int64_t started_ms; /* run start (ms epoch, -1 unknown): run_end's duration_seconds */
};
/* "2026-11-26T12:24:44.123000+00:00", Python's isoformat() of a UTC time. */
void osirisfmt_ts(int64_t ms, char *dst, size_t len);
/* One run.event params map as an events.jsonl / metrics.jsonl line object,
 * or NULL when the record is of another kind. */
json_t *osirisfmt_event(const struct osirisfmt_run *r, const msgpack_object *rec);
json_t *osirisfmt_metric(const struct osirisfmt_run *r, const msgpack_object *rec);
/* Appends j as one line (OSIRISFMT_JSONL + newline) and decrefs it; -1
 * (nothing appended) when jansson cannot encode it. */
int osirisfmt_line(json_t *j, struct buf *b);
/* An osiris.log line (Osiris's logging format, local time) appended to b;
 * -1 when the record is not a log line. */
int osirisfmt_log(const struct osirisfmt_run *r, const msgpack_object *rec, struct buf *b);
/* status.json: the keys and rules of Osiris's LocalAdapter. */
json_t *osirisfmt_status(const struct run_info *ri, int events_written);
/* Where an artifact goes in the run directory: its path under artifacts/,
 * where artifacts/<step_id>/... already is; NULL when the path is unsafe. */
char *osirisfmt_artifact_path(const char *path);

/* pool.c */
int cmd_pool(struct ctl *ctl, int argc, char **argv);

/* prune.c */
int cmd_prune(struct ctl *ctl, int argc, char **argv);

/* ping.c */
int cmd_ping(struct ctl *ctl, int argc, char **argv);
int cmd_version(struct ctl *ctl, int argc, char **argv);

#endif
