/*
 * osirisd.h: the daemon's cross-file types and prototypes. The control
 * socket speaks proto/; runs are scheduled onto pools (local processes,
 * later E2B sandboxes) behind struct pool_ops; all SQL is in store.c.
 */
#ifndef OSIRISD_H
#define OSIRISD_H

#include <event2/event.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "../common/common.h"
#include "../proto/proto.h"

/* config.c ------------------------------------------------------------ */
struct config {
	/* [daemon] */
	char *socket;
	char *state_dir;
	int max_concurrent_runs;   /* 4 */
	int64_t max_context_bytes; /* 67108864 */
	int shutdown_grace_s;	   /* 30 */
	enum log_level log_level;  /* info */
	int cancel_grace_ms;	   /* 5000: SIGTERM -> SIGKILL on cancel */
	int64_t follow_buffer_bytes; /* 1048576: per-follower output cap before falling back to the store */
	int event_flush_ms;	   /* 5: longest an event waits before its batch commits */
	/* retention (prune.c) and space (space.c) */
	int keep_days;		   /* 30: final runs older than this are pruned (0: no age limit) */
	int keep_runs;		   /* 100000: at most this many final runs kept (0: no count limit) */
	int64_t max_state_bytes;   /* 10G: state dir cap, oldest final runs pruned past it (0: none) */
	int64_t min_free_bytes;	   /* 128M: submits refused while the state dir's filesystem has less */
	int prune_interval_s;	   /* 60: how often retention runs */
	/* [local] */
	int local_pool_size;   /* 2 */
	int local_max_workers; /* 8 */
	char *local_worker;    /* default: osiris-worker beside the osirisd binary */
	char *local_isolation; /* auto | none */
	int local_heartbeat_s; /* 10: a worker silent this long while idle/busy is pinged; twice missed = dead */
	char *local_work_dir;	   /* added: parent of the workers' workspaces; NULL = <state_dir>/work */
	int local_worker_max_runs; /* added: 1 = a fresh worker per run; N > 1: reuse after a successful run */
	int local_start_fail_limit; /* 5: workers in a row that fail to start before waiting runs fail */
	/* [e2b] */
	int e2b_pool_size;	   /* 0 */
	int e2b_max_sandboxes;	   /* 20 */
	char *e2b_template;	   /* base */
	char *e2b_api_key_file;	   /* unset */
	int e2b_sandbox_timeout_s; /* 300 */
};
/* Built-in defaults; socket/state dir depend on the uid (DESIGN §4). */
void config_defaults(struct config *c);
/* Load an INI file over the current values. Unknown sections/keys and bad
 * values are errors naming file:line. must_exist=0: a missing file is fine. */
int config_load_file(struct config *c, const char *path, int must_exist, char *err, size_t errlen);
/* Apply "section.key=value" (the -o form). */
int config_set_override(struct config *c, const char *assignment, char *err, size_t errlen);
int config_set(struct config *c, const char *section, const char *key, const char *value, char *err, size_t errlen);
void config_free(struct config *c);

struct conn;

/* store.c: SQLite state (WAL, versioned migrations, batched events). ---- */
int store_open(const char *state_dir, char *err, size_t errlen);
void store_close(void);
/* Insert the run and its steps in one transaction, committed on return. */
int store_run_insert(const struct run_info *r);
/* Update the run row (state, worker, error, exit code, times, last_seq);
 * pending events are committed in the same transaction first. */
int store_run_update(const struct run_info *r);
int store_step_update(const char *run_id, const struct step_info *s);
/* Full run by exact id, steps included: 0 ok, 1 not found, -1 error. */
int store_run_get(const char *id, struct run_info *out);
/* Unique prefix -> full id: 0 ok, 1 not found, 2 ambiguous, -1 error. */
int store_run_resolve(const char *prefix, char *id, size_t idlen);
/* Newest first; state NULL = any; no steps. Free each with run_info_free and the array with free. */
int store_run_list(const char *state, int limit, struct run_info **out, size_t *n);
/* Ids of runs in a state, oldest first (recovery). */
int store_run_ids_in_state(enum run_state st, char ***ids, size_t *n);
/* Buffer a record; committed by store_event_flush (one transaction for the
 * whole batch) or by the next store_run_update. Metric records also go to
 * the metrics table. */
int store_event_add(const char *run_id, const struct event_rec *e);
int store_event_flush(void);
size_t store_event_pending(void);
/* Added: writes between begin and end share one transaction, committed at
 * the outermost end (a rollback inside drops the batch so far). Never
 * held across a return to the event loop. */
void store_batch_begin(void);
int store_batch_end(void);
/* Records with seq > since, ascending, at most limit (<=0: all); flushes
 * first. The callback returns non-zero to stop. */
int store_event_read(const char *run_id, int64_t since, int64_t limit, int (*cb)(const struct event_rec *, void *),
    void *arg);
/* The highest seq stored for the run, pending records included (0: none).
 * Reads no record: the one answer a resuming stream needs. */
int store_event_last_seq(const char *run_id, int64_t *out);
int store_artifact_add(const char *run_id, const struct artifact_info *a);
int store_artifact_list(const char *run_id, struct artifact_info **out, size_t *n);
/* Added: the last commit failed for want of space (SQLITE_FULL); cleared
 * by the next commit that works. Pending records stay in memory meanwhile
 * (at most 1M records / 64 MiB, then new ones are refused). */
int store_full(void);
/* Retention (prune.c). disk_bytes: what the run's directory holds. */
int store_run_disk_bytes(const char *run_id, int64_t bytes);
int store_final_count(int64_t *n); /* runs in a final state */
struct prune_cand {
	char *id;
	int64_t submitted_at, finished_at, disk_bytes, records;
	int deleted; /* set by store_prune_delete */
};
/* Final runs after the cursor (submitted_at, id), oldest first, at most
 * max; never a queued or running one. Free with store_prune_free. */
int store_prune_next(int64_t after_ts, const char *after_id, size_t max, struct prune_cand **out, size_t *n);
void store_prune_free(struct prune_cand *c, size_t n);
/* Delete the runs (rows of every table) in one transaction: 0 with
 * c[i].deleted and *deleted set, -1 (nothing deleted; store_full() tells
 * whether space was the reason). */
int store_prune_delete(struct prune_cand *c, size_t n, size_t *deleted);
struct store_usage {
	int64_t db_bytes;    /* live pages of osiris.db */
	int64_t wal_bytes;   /* osiris.db-wal on disk */
	int64_t files_bytes; /* sum of the runs' disk_bytes */
};
int store_usage(struct store_usage *u);
int store_db_live_bytes(int64_t *out);
void store_checkpoint(void); /* WAL into the database and truncated */

/* pool.c and pool_<backend>.c: where workers come from. ----------------- */
struct pool;
struct worker;

struct wsess;

/* A worker as the scheduler and the run see it; its backend owns it. The
 * run talks to it through its session (wsession.c). */
struct worker {
	char id[64]; /* "local-<pid>" or a sandbox id */
	struct pool *pool;
	int warm;	       /* was idle and ready when taken */
	int64_t spawned_us;    /* time_mono_us at start */
	int64_t ready_us;      /* time it answered its first ping */
	struct wsess *sess;    /* the msgpack-rpc session over its byte stream */
	void *impl;	       /* backend private */
	/* Set by the taker; the pool masks these values in anything it
	 * logs from the worker (stderr). May be NULL. */
	const struct mask *mask;
};

/* The backend interface: the scheduler sees nothing else of a pool. */
struct pool_ops {
	const char *name; /* "local", "e2b" */
	int (*start)(struct pool *p, char *err, size_t errlen); /* begin warming */
	void (*stop)(struct pool *p);				 /* kill every worker */
	void (*reload)(struct pool *p);				 /* sizes changed in the config */
	/* A ready worker (warm if one is idle), or NULL when none can be had now
	 * (the pool calls pool->ready_cb when one becomes available). */
	struct worker *(*take)(struct pool *p);
	void (*cancel)(struct worker *w, int hard); /* SIGTERM-ish, then SIGKILL-ish */
	/* The taker is done with w (after gone, or to discard it): the pool
	 * destroys it (never inside its own callback) and refills. */
	void (*release)(struct worker *w);
	/* Added: the taker's run on w ended successfully and w is idle (no
	 * request outstanding that matters): the pool may reset w and keep it
	 * for another run (local.worker_max_runs), or release it. May be NULL
	 * (then release). */
	void (*recycle)(struct worker *w);
	void (*status)(struct pool *p, struct pool_info *out);
	/* Added (sched.c): n runs want a worker from this pool right now and
	 * could not get one; the pool warms up to its target plus n (within
	 * its cap). Called after every scheduling pass; may be NULL. */
	void (*demand)(struct pool *p, unsigned n);
};

struct pool {
	const struct pool_ops *ops;
	struct event_base *base;
	const struct config *cfg;
	void (*ready_cb)(struct pool *p, void *arg); /* a worker may be available */
	void *ready_arg;
	void *impl;
	/* Set by the backend at start: seconds of silence before its workers'
	 * sessions ping them (local.heartbeat_s for local); 0 = never. */
	int heartbeat_s;
	/* Set while the backend cannot give workers at all (pool_set_failure):
	 * the scheduler fails the runs waiting for it with this message. */
	char *failure;
};

extern const struct pool_ops pool_local_ops;

/* pool.c: the pools by backend name, helpers shared by pool_<backend>.c -- */
/* Start the pools of the available backends (local; e2b once it exists).
 * ready_cb is installed on each pool. */
int pool_init(struct event_base *base, const struct config *cfg, void (*ready_cb)(struct pool *, void *), void *arg,
    char *err, size_t errlen);
void pool_shutdown(void);
/* The pool of a backend: 0 ok, -1 unknown backend, -2 known but not
 * available in this daemon (err says why). */
int pool_lookup(const char *backend, struct pool **out, char *err, size_t errlen);
void pool_reload_all(void);
size_t pool_count(void);
struct pool *pool_at(size_t i);
/* Recent start latencies (spawn -> ready), for pool.status. */
struct pool_latency {
	int64_t ms[16];
	size_t n, next;
};
void pool_latency_add(struct pool_latency *l, int64_t ms);
void pool_latency_fill(const struct pool_latency *l, struct pool_info *out); /* newest first */
/* The pool cannot start workers (why, a full sentence for a run's error)
 * or, with NULL, can again; either way the scheduler takes another look. */
void pool_set_failure(struct pool *p, const char *why);

/* sandbox.c: the filesystem a local worker sees under bubblewrap ------- */
struct sandbox {
	char *bwrap;	    /* absolute path of bwrap */
	char *worker;	    /* the worker binary, resolved: bound and executed */
	char **args;	    /* bwrap's argv up to the per-worker part */
	size_t nargs, capargs;
	char *cover[8];	    /* realpaths of the read-only system trees */
	size_t ncover;
	char *extra[32];    /* files bound beside them (libraries elsewhere) */
	size_t nextra;
};
void sandbox_init(struct sandbox *sb, const char *bwrap, const char *worker);
void sandbox_free(struct sandbox *sb);
/* Is path (resolved) visible inside already? */
int sandbox_covers(const struct sandbox *sb, const char *path);
void sandbox_add_file(struct sandbox *sb, const char *path);
/* Bind whatever the running process pid maps from outside the view. */
int sandbox_add_maps(struct sandbox *sb, pid_t pid);
/* Fill argv (NULL-terminated, pointers into sb and dir): bwrap, the view,
 * dir read-write, --info-fd SANDBOX_INFO_FD (if info), the worker and its
 * flags. The caller gives bwrap the info pipe as that fd. */
#define SANDBOX_INFO_FD 3
#define SANDBOX_INFO_FD_STR "3"
size_t sandbox_argv(const struct sandbox *sb, const char *dir, int info, const char **argv, size_t max);
/* The worker's pid from what bwrap wrote on its info fd; 0 if absent. */
pid_t sandbox_info_pid(const char *json, size_t len);

/* child.c: the daemon's child processes, reaped in one place ----------- */
typedef void (*child_exit_cb)(pid_t pid, int status, void *arg);
/* Subreaper, and one SIGCHLD event for every child. */
int child_init(struct event_base *base);
void child_shutdown(void);
/* cb(pid, waitpid status) once pid is reaped; children nobody watches
 * (inherited orphans) are reaped silently. */
void child_watch(pid_t pid, child_exit_cb cb, void *arg);
void child_forget(pid_t pid);
/* Without the loop (at stop): reap until none is left or the deadline. */
void child_reap_until(int64_t deadline_us);

/* runid.c: run ids, ULID-like (26 chars Crockford base32, 48-bit ms time +
 * 80 random bits, monotonic within a millisecond). ------------------- */
#define RUN_ID_LEN 26
void run_id_encode(uint64_t ms, const uint8_t rnd[10], char out[RUN_ID_LEN + 1]);
void run_id_new(char out[RUN_ID_LEN + 1]);
/* Pure successor used within one ms: rnd + 1 (80-bit); -1 on overflow. */
int run_id_rnd_next(uint8_t rnd[10]);

/* sched.c: priority queue of runs, global concurrency, worker matching --- */
struct run;
struct sched_item {
	int64_t priority; /* higher first */
	uint64_t seq;	  /* submission order: FIFO within a priority */
	TAILQ_ENTRY(sched_item) entry;
};
TAILQ_HEAD(sched_queue, sched_item);
/* Pure: insert keeping (priority desc, seq asc). */
void sched_queue_insert(struct sched_queue *q, struct sched_item *it);
void sched_init(struct event_base *base, const struct config *cfg);
void sched_shutdown(void);
void sched_enqueue(struct run *r);
void sched_remove(struct run *r); /* a queued run was cancelled */
void sched_kick(void);		  /* schedule a pass (deferred, coalesced) */
void sched_run_done(struct run *r); /* a run holding a slot ended */
/* No new starts; done_cb runs once no run holds a slot. */
void sched_stop(void (*done_cb)(void));
unsigned sched_active(void);
size_t sched_queued(void);
void sched_pool_ready_cb(struct pool *p, void *arg);

/* run.c: a run's life: queued -> starting -> running -> final ------------ */
struct follower;
TAILQ_HEAD(follower_list, follower);
enum run_phase { PHASE_QUEUED, PHASE_PREPARE, PHASE_STEPS, PHASE_FINISH, PHASE_ARTIFACTS, PHASE_DONE };
struct run {
	struct run_info info; /* the state the store and run.get see */
	struct manifest man;
	struct bundle bundle;
	struct rpc_msg *submit_msg; /* backs `bundle` for a run submitted in this process */
	char *manifest_path;
	struct kvlist secrets; /* memory only: never to the store, disk or logs */
	struct mask *mask;
	struct sched_item qitem;
	int queued;
	int64_t submit_us, queued_us, prepare_us; /* time_mono_us, for latency logs */
	enum run_phase phase;
	struct pool *pool;
	struct worker *worker;
	size_t cur; /* position in man.order of the step executing */
	size_t sent;  /* exec_step requests sent: cur + 1, or cur + 2 when pipelined */
	int pipeline; /* the worker skips exec_step after a failure (prepare said so) */
	int failed, cancel_requested;
	int cancel_stage; /* 0: `cancel` sent; 1: SIGTERM sent; 2: killed (run_cancel_timer_cb) */
	int has_slot; /* counted in sched's max_concurrent_runs */
	char *fail_error;
	struct event *cancel_ev, *reap_ev;
	/* artifact collection */
	struct artifact_info *arts;
	size_t narts, art_i;
	int art_fd;
	int64_t art_off;
	struct sha256_ctx *art_sha;
	char *art_tmp, *art_final;
	/* store writes coalesced until the next flush (run.c) */
	uint8_t *step_dirty;
	int row_dirty, on_dirty;
	int reap_when_saved; /* ended, but its rows are not stored yet (a full disk): freed once they are */
	int64_t disk_bytes;  /* what its directory holds (bundle, artifacts), for retention */
	TAILQ_ENTRY(run) dirty_entry;
	struct follower_list followers;
	TAILQ_ENTRY(run) entry;
	struct run *hnext;
};
int run_init(struct event_base *base, const struct config *cfg);
void run_shutdown(void);
/* Crash recovery: runs left running/starting become lost, queued ones are
 * scheduled again (unless they had secrets). */
int run_recover(void);
struct run *run_alloc(void);
void run_free(struct run *r); /* for a run never registered */
/* The run is committed in the store: track it, emit run_queued, queue it. */
void run_register(struct run *r);
struct run *run_find(const char *id);
void run_start(struct run *r, struct worker *w); /* sched: a worker for it */
void run_cancel(struct run *r);
/* A queued run that cannot start (its pool is failing): ends failed. */
void run_fail_queued(struct run *r, const char *error);
void run_cancel_all(void);
size_t run_active_count(void);
/* Add a record to the run's stream (seq assigned here), store + followers. */
void run_event_add(struct run *r, struct event_rec *e);
/* Daemon-origin event with a prepacked data map. */
void run_event_daemon(struct run *r, const char *name, const char *step_id, const struct buf *data);
char *run_state_dir(const char *id); /* rundir_path: STATE/runs/<xx>/<id> */
/* collect.c reports the end of artifact collection. */
void run_collected(struct run *r);
/* The run will end failed with this reason (the first one given wins). */
void run_fail(struct run *r, const char *fmt, ...) PRINTFLIKE(2, 3);

/* rundir.c: STATE/runs/<xx>/<id> directories, made ahead by a helper thread */
int rundir_init(const char *state_dir, char *err, size_t errlen);
void rundir_shutdown(void);
/* Create STATE/runs/<xx>/<id> (with an empty bundle file and artifacts/):
 * 0 or -1 with errno. */
int rundir_create(const char *id);
/* A run's directory: the sharded one, or an existing unsharded
 * STATE/runs/<id> of an older daemon. Allocated. */
char *rundir_path(const char *state_dir, const char *id);
/* Bytes a file of this size takes on disk, in whole 4 KiB blocks; a run
 * directory adds RUNDIR_OVERHEAD (itself and artifacts/). */
int64_t rundir_bytes(int64_t file_size);
#define RUNDIR_OVERHEAD 8192

/* collect.c: fetch a run's artifacts from its worker into the state dir -- */
/* Takes ownership of arts[]. Calls run_collected(r) when done. */
void collect_start(struct run *r, struct artifact_info *arts, size_t narts);
/* The `finish` result: writes the files that came inline (size and sha256
 * verified), then collect_start() for the others. */
void collect_finish_result(struct run *r, const msgpack_object *result);
/* One inline file: checks path, size and sha256, then writes dirfd/path
 * (parents made as needed). 0, or -1 with *why set and nothing left. */
int collect_inline_write(int dirfd, const struct artifact_info *a, const void *data, size_t len, const char **why);
void collect_abort(struct run *r); /* the run ends: close and drop a partial file */

/* wsession.c: the msgpack-rpc session over one worker's byte stream ---- */
/* What a backend provides: write takes bytes in order and returns how many
 * it took now (the rest is offered again after wsess_writable()), or -1 when
 * the worker is gone; kill ends the worker (hard: at once). */
struct wsess_transport {
	ssize_t (*write)(void *tctx, const void *buf, size_t len);
	void (*kill)(void *tctx, int hard);
};
/* The backend's callbacks: ready() once the worker announced `ready` or
 * answered `reset` (it is idle); failed() when it refused `reset`. */
struct wsess_owner {
	void (*ready)(struct worker *w);
	void (*failed)(struct worker *w, const char *why);
};
/* The run's callbacks while it holds the worker: notifications; error()
 * when the worker broke the protocol or stopped answering pings (the
 * session has it killed; gone follows); gone() once the worker ended. */
struct wsess_user {
	void (*notify)(struct worker *w, const struct rpc_msg *m, void *arg);
	void (*error)(struct worker *w, const char *why, void *arg);
	void (*gone)(struct worker *w, const char *reason, void *arg);
};
typedef void (*wsess_reply_cb)(struct worker *w, const struct rpc_msg *m, void *arg);
struct wsess *wsess_new(struct worker *w, const struct wsess_transport *t, void *tctx, const struct wsess_owner *owner,
                        size_t max_message);
void wsess_free(struct wsess *s); /* safe inside its callbacks */
void wsess_heartbeat_start(struct wsess *s, struct event_base *base);
void wsess_input(struct wsess *s, const uint8_t *data, size_t len); /* bytes from the worker */
void wsess_writable(struct wsess *s);				     /* the transport takes more */
void wsess_closed(struct wsess *s, const char *reason);		     /* the worker ended */
void wsess_attach(struct wsess *s, const struct wsess_user *u, void *arg);
void wsess_detach(struct wsess *s);
int wsess_reset(struct wsess *s);
int wsess_is_idle(const struct wsess *s);
int wsess_unresponsive(const struct wsess *s);
/* A request: pack exactly one map into the packer, then end. end: 0, or -1
 * when it cannot be sent (the worker is going; gone follows). */
msgpack_packer *wsess_begin(struct wsess *s, const char *method);
int wsess_end(struct wsess *s, wsess_reply_cb cb, void *arg);
size_t wsess_pending(const struct wsess *s);

/* control.c: the control socket ---------------------------------------- */
struct conn {
	uint64_t id;
	struct bufferevent *bev;
	uid_t uid;
	pid_t pid;
	int hello, dead, closing;
	int throttled; /* not read from until its output drains */
	struct rpc_reader rd;
	struct event *reap_ev;
	struct follower_list followers;
	TAILQ_ENTRY(conn) entry;
};
/* listen_fd >= 0: a socket-activated listener. */
int control_bind_socket(const struct config *cfg, char *err, size_t errlen);
int control_init(struct event_base *base, const struct config *cfg, int listen_fd, char *err, size_t errlen);
size_t control_out_pending(void); /* bytes queued to clients */
void control_shutdown(void);
/* A packer writing straight into the connection's output buffer. */
void conn_packer(struct conn *c, msgpack_packer *pk);
size_t conn_out_len(const struct conn *c);
void conn_error(struct conn *c, uint32_t msgid, enum rpc_err code, const char *fmt, ...) PRINTFLIKE(4, 5);
/* The one disconnect path: marks dead, reaps after the current callback. */
void conn_drop(struct conn *c, const char *why);

/* method.c: control socket method handlers ----------------------------- */
void method_init(struct event_base *base, const struct config *cfg);
/* From now on run.submit answers busy; every other method still works, so
 * clients can read and follow runs during the shutdown grace. */
void method_stopping(void);
/* Returns 1 when the handler kept m (the caller must not free it). */
int method_dispatch(struct conn *c, struct rpc_msg *m);

/* follow.c: run.follow streams, bounded per connection ----------------- */
/* r: the active run, or NULL for a run only in the store (fin its state). */
void follow_start(struct conn *c, uint32_t msgid, const char *run_id, struct run *r, int64_t since, int follow,
    const struct run_info *fin);
void follow_push(struct run *r, const struct event_rec *e); /* a live record */
void follow_run_end(struct run *r);			    /* r is final, about to go */
void follow_conn_drained(struct conn *c);		    /* output under the low watermark */
void follow_conn_gone(struct conn *c);
void follow_set_cap(size_t cap); /* daemon.follow_buffer_bytes */

/* space.c: room in the state dir's filesystem ------------------------- */
void space_init(const struct config *cfg);
int space_free(int64_t *bytes, int64_t *inodes); /* statvfs of the state dir */
void space_fmt(int64_t bytes, char *dst, size_t len); /* "12 KiB" */
/* 0 when a submission of `need` bytes may be stored; -1 with why = "state
 * dir full (12 KiB free)" when it may not (daemon.min_free_bytes). */
int space_check(int64_t need, char *why, size_t len);

/* prune.c: retention, batched, files removed by a helper thread -------- */
struct prune_policy {
	int64_t before_ms; /* final runs finished before this (ms epoch) go; 0: no age rule */
	int64_t keep;	   /* only the newest this many final runs stay; -1: no count rule */
	int64_t max_bytes; /* the state dir's cap; 0: none */
};
int prune_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
void prune_shutdown(void);
/* Queue a job; c NULL: retention (logged only), else answered on c. */
void prune_request(struct conn *c, uint32_t msgid, const struct prune_policy *pol, int dry_run);
void prune_policy_config(const struct config *cfg, struct prune_policy *pol); /* daemon.keep_* */
void prune_conn_gone(struct conn *c);
/* Pure: how many of the candidates (oldest first) one batch removes;
 * updates *excess (runs beyond keep) and *over (bytes over the cap, by
 * estimate); *stop when a run to keep was met. */
size_t prune_pick(const struct prune_policy *pol, int64_t *excess, int64_t *over, const struct prune_cand *c,
    size_t n, int *stop);

/* sd_notify.c: systemd notify + socket activation, no libsystemd ------- */
int sd_notify_listen_fd(void); /* fd 3 when socket-activated for us, else -1 */
void sd_notify_send(const char *state);
void sd_notify_watchdog_init(struct event_base *base);
void sd_notify_shutdown(void);

#endif
