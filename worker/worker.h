/*
 * worker.h: osiris-worker, the step executor. One process runs one run at
 * a time (`reset` between runs when the daemon reuses it):
 * prepare (unpack the context into a private workspace), exec_step per
 * step with tables kept in memory between steps, finish (artifact list),
 * speaking msgpack-rpc on stdin/stdout (proto/PROTOCOL.md §4).
 */
#ifndef OSIRIS_WORKER_H
#define OSIRIS_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "../common/common.h"
#include "../drivers/drivers.h"
#include "../proto/proto.h"

#define WORKER_JOURNAL_RECORDS 65536
#define WORKER_JOURNAL_BYTES (16u * 1024 * 1024)
#define WORKER_READ_MAX 4194304
#define WORKER_CFG_MAX (16u * 1024 * 1024)
/* `finish` carries files up to this size inline, up to the total per run */
#define ARTIFACT_INLINE_MAX (64u * 1024)
#define ARTIFACT_INLINE_TOTAL (4u * 1024 * 1024)

/* snapshot.c: what the workspace holds, to find new and changed files. */
struct snap_ent {
	char *path; /* relative to the workspace */
	int64_t size;
	int64_t mtime_ns;
	uint64_t ino;
};
struct snap {
	struct snap_ent *e; /* sorted by path */
	size_t n;
};
/* watch.c: inotify on the workspace's directories. */
struct watch_dir {
	int wd;
	char *rel; /* workspace-relative */
};
struct watch {
	int fd;                 /* -1: none (full scans); kept open across runs */
	int broken;             /* events lost or paths moved: rescan, then rebuild */
	struct watch_dir *dirs; /* sorted by wd */
	size_t ndirs;
};
struct watch_changes {
	char **paths; /* files (maybe) created, changed or removed */
	size_t npaths;
	char **newdirs; /* directories created or moved in: walk them */
	size_t nnewdirs;
};
int watch_open(struct watch *wt);
void watch_forget(struct watch *wt);
void watch_close(struct watch *wt);
void watch_add(struct watch *wt, const char *ws, const char *rel);
int watch_read(struct watch *wt, struct watch_changes *out);
void watch_changes_free(struct watch_changes *c);

struct stat;
/* Full listing; wt (may be NULL) gets a watch on every directory. */
int snap_take(const char *root, struct snap *s);
int snap_take_watch(const char *root, struct snap *s, struct watch *wt);
int snap_take_under(const char *root, const char *rel, struct snap *s, struct watch *wt);
void snap_copy(struct snap *dst, const struct snap *src);
int snap_update(struct snap *s, const char *path, const struct stat *sb);
void snap_free(struct snap *s);
const struct snap_ent *snap_find(const struct snap *s, const char *path);
/* Is e (from a later snapshot) new or changed relative to `before`? */
int snap_changed(const struct snap *before, const struct snap_ent *e);

/* journal.c: bounded ring of the records sent, for replay. */
struct journal_chunk;
struct journal_rec {
	int64_t seq;
	uint8_t *data; /* inside chunk */
	size_t len;
	struct journal_chunk *chunk;
};
struct journal {
	struct journal_rec *r; /* ring of WORKER_JOURNAL_RECORDS */
	size_t head, n;        /* oldest at head */
	size_t bytes;
	struct journal_chunk *cur; /* records are appended here */
};
void journal_init(struct journal *j);
void journal_free(struct journal *j);
void journal_clear(struct journal *j);
void journal_add(struct journal *j, int64_t seq, const void *data, size_t len);
int64_t journal_first_seq(const struct journal *j); /* 0 when empty */
/* Call fn for each record with seq > since, oldest first. */
int journal_each(const struct journal *j, int64_t since, int (*fn)(const struct journal_rec *, void *), void *arg);

/* artifact.c: a file the worker made in memory (cleaned_config.json): never
 * on disk, announced like a workspace file, sent inline by `finish` (or
 * served by `read`). */
struct mem_art {
	char *path;          /* workspace-relative, like a file's; in data's block */
	const char *step_id; /* the manifest's */
	uint8_t *data;
	size_t len;
	int announced; /* artifact_created sent */
};

/* The one worker. */
struct worker {
	int in_fd, out_fd;
	struct buf in;
	size_t in_hwm;  /* most bytes `in` ever held (reset zeroes that much) */
	struct buf out; /* corked output (rpc_write) */
	int cork;
	size_t in_peek; /* bytes at the front of `in` already looked at during a step */
	int in_eof;
	struct rpc_limits limits;
	size_t max_context;
	char *workdir;   /* parent of the workspace */
	char *spill_dir; /* --spill-dir: for contexts above mem_max (NULL: none) */
	int64_t mem_max; /* --mem-max: largest context whose workspace is in workdir */
	int forked;      /* a zygote's child: serves one run, exits on `reset` */
	int private_tmp; /* --private-tmp: /tmp is the sandbox's own, emptied between runs */

	/* the run, once prepared */
	int prepared;
	int finished;
	char *run_id;
	char *ws;   /* the workspace (absolute) */
	char *mdir; /* manifest's directory inside the workspace ("" or "sub/") */
	struct manifest m;
	struct kvlist env, secrets;
	struct mask *mask;
	/* connections (connections.c): the context's osiris_connections.yaml, the
	 * daemon's resolved ones, or why the context's cannot be used */
	json_t *conns_ctx, *conns_daemon;
	char *conns_err;
	struct table **outputs;      /* per step index */
	size_t *consumers;           /* per step index: its consumers still pending */
	enum step_state *state;      /* per step index */
	struct step_result *results; /* per step index: the answer exec_step gave (`status`) */
	struct snap base, cur;
	struct watch watch;    /* what changed in the workspace since the last scan */
	int ws_fd;             /* the workspace directory, for fstatat */
	struct kvlist attr;    /* path -> step id that last created/changed it */
	struct mem_art *marts; /* in-memory artifacts of the run */
	size_t nmarts, martcap;
	json_t **cfgs; /* per step index: its cfg as parsed by prepare (taken by the step) */
	int runs;      /* runs prepared by this process (reuse: `reset` between) */

	int64_t seq;
	struct journal journal;
	struct buf emit_data, emit_out; /* emit.c's scratch */
	int64_t last_poll_us;
};

extern volatile sig_atomic_t worker_cancel; /* SIGTERM or a `cancel` request */
/* worker.c: announce `ready` (its version, pid, protocol and drivers; zygote:true from a zygote). */
void worker_ready(struct worker *w, int zygote);

/* emit.c: notifications (event/metric/log), masked, journaled, written now. */
enum evf_type { EVF_STR, EVF_INT, EVF_DBL, EVF_BOOL };
struct evf {
	const char *k;
	enum evf_type t;
	const char *s;
	int64_t i;
	double d;
};
#define EVS(k, v)                                                                                                      \
	{                                                                                                              \
		(k), EVF_STR, (v), 0, 0                                                                                \
	}
#define EVI(k, v)                                                                                                      \
	{                                                                                                              \
		(k), EVF_INT, NULL, (int64_t)(v), 0                                                                    \
	}
#define EVD(k, v)                                                                                                      \
	{                                                                                                              \
		(k), EVF_DBL, NULL, 0, (v)                                                                             \
	}
#define EVB(k, v)                                                                                                      \
	{                                                                                                              \
		(k), EVF_BOOL, NULL, (v) ? 1 : 0, 0                                                                    \
	}
void emit_event(struct worker *w, const char *name, const char *step_id, const struct evf *f, size_t n);
void emit_metric(struct worker *w, const char *name, const char *step_id, double value);
void emit_log(struct worker *w, enum log_level level, const char *step_id, const char *msg);
void emit_logf(struct worker *w, enum log_level level, const char *step_id, const char *fmt, ...) PRINTFLIKE(4, 5);
/* Masked copy of s (free it). */
char *emit_mask(const struct worker *w, const char *s);

/* rpc.c: the stdin/stdout loop. */
int rpc_serve(struct worker *w); /* returns at EOF: 0, or -1 on a protocol violation */
void rpc_write(struct worker *w, const void *data, size_t len);
void rpc_flush(struct worker *w); /* write what rpc_write corked */
/* Around a driver: output stays corked unless it runs longer than a few ms. */
void rpc_timer_prestart(void);
void rpc_driver_begin(struct worker *w);
void rpc_driver_end(struct worker *w);
void rpc_reply_error(struct worker *w, uint32_t msgid, enum rpc_err code, const char *msg);
/* Start a result: packs the response head into b; the caller packs one value. */
void rpc_reply_begin(struct buf *b, msgpack_packer *pk, uint32_t msgid);
void rpc_reply_end(struct worker *w, struct buf *b);
void rpc_reply_empty(struct worker *w, uint32_t msgid); /* the answer {} */
/* While a step runs: take `cancel`/`ping` requests off stdin without
 * blocking; others wait for the main loop. Returns worker_cancel. */
int rpc_poll_control(struct worker *w);

/* prepare.c */
void prepare_handle(struct worker *w, uint32_t msgid, const msgpack_object *params);
void prepare_cleanup(struct worker *w); /* free the run, remove the workspace */
void prepare_reset_handle(struct worker *w, uint32_t msgid, const msgpack_object *params);

/* zygote.c: --zygote, one forked child per run. 1 in a child (serve the
 * run with rpc_serve), 0 at EOF, -1 on a protocol violation. */
int zygote_serve(struct worker *w, void (*child_signals)(void));

/* subst.c: ${VAR} in cfg strings. */
int subst_cfg(json_t *cfg, const struct kvlist *env, const struct kvlist *secrets, const char *name, char *err,
              size_t errlen);
int subst_string(const char *in, const struct kvlist *env, const struct kvlist *secrets, const char *name, char **out,
                 char *err, size_t errlen);

/* connections.c: a step's `connection:` resolved. The daemon's connections travel as the
 * `prepare` secret CONNECTIONS_SECRET (proto.h). */
/* Before anything is said about the run: secret fields join the mask. */
void connections_prepare_daemon(struct worker *w, const struct kvlist *secrets);
/* Once the workspace is there: read the context's file. */
void connections_prepare_context(struct worker *w);
void connections_cleanup(struct worker *w);
/* cfg.connection -> cfg.resolved_connection; -1 with a one-line err. */
int connections_resolve(struct worker *w, json_t *cfg, char *err, size_t errlen);

/* workspace.c: create + unpack (fills base, watches), remove. */
int ws_create(struct worker *w, const struct bundle *b, char *err, size_t errlen);
int ws_remove(struct worker *w);
int watch_has(const struct watch *wt, const char *rel);

/* step.c */
void step_handle(struct worker *w, uint32_t msgid, const msgpack_object *params);

/* status.c: what a daemon re-attaching to this worker needs to go on. */
void status_handle(struct worker *w, uint32_t msgid, const msgpack_object *params);

/* driverctx.c: the worker side of struct driver_ctx. */
void driverctx_init(struct worker *w, struct driver_ctx *ctx, const char *step_id);

/* artifact.c: finish and read. */
void artifact_finish_handle(struct worker *w, uint32_t msgid, const msgpack_object *params);
void artifact_read_handle(struct worker *w, uint32_t msgid, const msgpack_object *params);
/* After a step: emit artifact_created for files new/changed since `cur`,
 * attribute them to step_id, and advance `cur`. */
void artifact_scan_step(struct worker *w, const char *step_id);
/* A new in-memory artifact `path` of step_id (a manifest step's id, kept by
 * reference) of len bytes: returns them for the caller to fill; announced
 * by the next artifact_scan_step. One allocation. */
uint8_t *artifact_mem_new(struct worker *w, const char *step_id, const char *path, size_t len);
void artifact_mem_free(struct worker *w);

#endif
