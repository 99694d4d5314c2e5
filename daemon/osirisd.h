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
	int max_concurrent_runs;     /* 4 */
	int64_t max_context_bytes;   /* 67108864 */
	int shutdown_grace_s;        /* 30 */
	enum log_level log_level;    /* info */
	int cancel_grace_ms;         /* 5000: SIGTERM -> SIGKILL on cancel */
	int64_t follow_buffer_bytes; /* 1048576: per-follower output cap before falling back to the store */
	int event_flush_ms;          /* 5: longest an event waits before its batch commits */
	/* retention (prune.c) and space (space.c) */
	int keep_days;           /* 30: final runs older than this are pruned (0: no age limit) */
	int keep_runs;           /* 100000: at most this many final runs kept (0: no count limit) */
	int64_t max_state_bytes; /* 10G: state dir cap, oldest final runs pruned past it (0: none) */
	int64_t min_free_bytes;  /* 128M: submits refused while the state dir's filesystem has less */
	int prune_interval_s;    /* 60: how often retention runs */
	char *connections_file;  /* unset: the daemon's own connections (connfile.c) */
	/* [local] */
	int local_pool_size;   /* 2 */
	int local_max_workers; /* 8 */
	char *local_worker;    /* default: osiris-worker beside the osirisd binary */
	char *local_isolation; /* auto | none */
	int local_heartbeat_s; /* 10: a worker silent this long while idle/busy is pinged; twice missed = dead */
	char *local_work_dir;  /* parent of the workers' workspaces; NULL = a tmpfs, else <state_dir>/work */
	int64_t local_work_dir_max_bytes; /* largest context whose workspace is in the default tmpfs */
	int local_worker_max_runs;        /* 1 = a fresh worker per run; N > 1: reuse after a successful run */
	int local_start_fail_limit;       /* 5: workers in a row that fail to start before waiting runs fail */
	/* [e2b] */
	int e2b_pool_size;         /* 0 */
	int e2b_max_sandboxes;     /* 20 */
	char *e2b_template;        /* base */
	char *e2b_api_key_file;    /* unset */
	int e2b_sandbox_timeout_s; /* 300 */
	int e2b_create_rate;       /* 2: sandbox creations per second at most */
	int e2b_sandbox_max_runs;  /* 1: runs one sandbox serves before it is replaced */
	char *e2b_ca_file;         /* unset: the system CAs */
	char *e2b_worker_path;     /* unset: the worker is uploaded at warm-up */
	int e2b_heartbeat_s;       /* 15: a silent sandbox worker is pinged */
	int e2b_start_fail_limit;  /* 5: sandboxes in a row that fail to start before waiting runs fail */
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

/* connfile.c: daemon.connections_file ------------------------------------ */
struct run;
/* Read and check (regular, not readable by others, valid YAML); path NULL:
 * none. -1 with a one-line err. */
int connfile_init(const char *path, char *err, size_t errlen);
void connfile_shutdown(void);
/* The run's extra `prepare` secrets: the aliases its cfgs name, resolved
 * (one JSON secret), and credentials its context's connections file names. */
void connfile_run_secrets(const struct run *r, struct kvlist *out);

/* store.c: the daemon's durable state behind a handle. ----------------- */
/*
 * Runs, steps, the record stream, metrics, the artifact index and sandboxes,
 * spoken in domain types; no caller sees SQL or the database. The one store
 * today is SQLite in the state dir (store_open). A store shared by several
 * build hosts (PostgreSQL, DESIGN §1) would be a second struct store_ops with
 * its own open; callers do not change. For such a store the calls marked
 * "this daemon" answer for the calling daemon's runs and sandboxes only (its
 * recovery, retention and files), the others for every daemon's.
 * Every call but store_open and the two _free takes the handle; a NULL
 * handle (no store open) fails the call (-1, 0 or nothing), as a failing
 * store does.
 */
struct store;
struct prune_cand;
struct store_usage;
struct sandbox_rec;
struct store_ops {
	void (*close)(struct store *);
	int (*run_insert)(struct store *, const struct run_info *);
	int (*run_update)(struct store *, const struct run_info *);
	int (*step_update)(struct store *, const char *run_id, const struct step_info *);
	int (*run_get)(struct store *, const char *id, struct run_info *);
	int (*run_resolve)(struct store *, const char *prefix, char *id, size_t idlen);
	int (*run_list)(struct store *, const char *state, int limit, struct run_info **, size_t *);
	int (*run_ids_in_state)(struct store *, enum run_state, char ***, size_t *);
	int (*event_add)(struct store *, const char *run_id, const struct event_rec *);
	int (*flush)(struct store *);
	size_t (*pending)(struct store *);
	void (*batch_begin)(struct store *);
	int (*batch_end)(struct store *);
	int (*event_read)(struct store *, const char *run_id, int64_t since, int64_t limit,
	                  int (*cb)(const struct event_rec *, void *), void *arg);
	int (*event_last_seq)(struct store *, const char *run_id, int64_t *);
	int (*artifact_add)(struct store *, const char *run_id, const struct artifact_info *, const void *data,
	                    size_t len);
	int (*artifact_get)(struct store *, const char *run_id, const char *path, struct artifact_info *, int *in_db,
	                    struct buf *data);
	int (*artifact_list)(struct store *, const char *run_id, struct artifact_info **, size_t *);
	int (*full)(struct store *);
	int (*run_disk_bytes)(struct store *, const char *run_id, int64_t bytes);
	int (*final_count)(struct store *, int64_t *);
	int (*prune_next)(struct store *, int64_t after_ts, const char *after_id, size_t max, struct prune_cand **,
	                  size_t *);
	int (*prune_delete)(struct store *, struct prune_cand *, size_t, size_t *deleted);
	int (*usage)(struct store *, struct store_usage *);
	int (*db_live_bytes)(struct store *, int64_t *);
	void (*checkpoint)(struct store *);
	int (*wseq_last)(struct store *, const char *run_id, int64_t *);
	int (*sandbox_put)(struct store *, const struct sandbox_rec *);
	int (*sandbox_delete)(struct store *, const char *id);
	int (*sandbox_get)(struct store *, const char *id, struct sandbox_rec *);
	int (*sandbox_list)(struct store *, const char *backend, struct sandbox_rec **, size_t *);
};
/* What every store starts with; its implementation's state follows. */
struct store {
	const struct store_ops *ops;
};
/* The SQLite store of a state dir (created 0700, migrated, locked against a
 * second daemon): the handle, or NULL with err. */
struct store *store_open(const char *state_dir, char *err, size_t errlen);
/* Pending writes are committed first. NULL: nothing. */
void store_close(struct store *st);
/* Insert the run and its steps in one transaction, committed on return. */
int store_run_insert(struct store *st, const struct run_info *r);
/* Update the run row (state, worker, error, exit code, times, last_seq);
 * pending writes are committed in the same transaction first. */
int store_run_update(struct store *st, const struct run_info *r);
int store_step_update(struct store *st, const char *run_id, const struct step_info *s);
/* Full run by exact id, steps included: 0 ok, 1 not found, -1 error. */
int store_run_get(struct store *st, const char *id, struct run_info *out);
/* Unique prefix -> full id: 0 ok, 1 not found, 2 ambiguous, -1 error. */
int store_run_resolve(struct store *st, const char *prefix, char *id, size_t idlen);
/* Newest first; state NULL = any; no steps. Free each with run_info_free and the array with free. */
int store_run_list(struct store *st, const char *state, int limit, struct run_info **out, size_t *n);
/* Ids of runs in a state, oldest first (recovery; this daemon). */
int store_run_ids_in_state(struct store *st, enum run_state state, char ***ids, size_t *n);
/* Buffer a record; committed by store_flush (one transaction for the whole
 * batch) or by the next store_run_update. Metric records also go to the
 * metrics table. */
int store_event_add(struct store *st, const char *run_id, const struct event_rec *e);
/* Commit the pending writes: buffered records and artifact rows. */
int store_flush(struct store *st);
/* How many writes (records and artifact rows) wait for the next commit. */
size_t store_pending(struct store *st);
/* Writes between begin and end share one transaction, committed at the
 * outermost end (a rollback inside drops the batch so far). Never held
 * across a return to the event loop. */
void store_batch_begin(struct store *st);
int store_batch_end(struct store *st);
/* Records with seq > since, ascending, at most limit (<=0: all); flushes
 * first. The callback returns non-zero to stop. */
int store_event_read(struct store *st, const char *run_id, int64_t since, int64_t limit,
                     int (*cb)(const struct event_rec *, void *), void *arg);
/* The highest seq stored for the run, pending records included (0: none).
 * Reads no record: the one answer a resuming stream needs. */
int store_event_last_seq(struct store *st, const char *run_id, int64_t *out);
/* Artifact rows are buffered like records, committed with the next flush
 * or run update (run_end's update makes a run's artifact rows durable with
 * its end). _add: the artifact is a file in the run's directory; _add_data:
 * its content (len bytes, at most STORE_ART_BLOB_MAX) is kept in the store. */
int store_artifact_add(struct store *st, const char *run_id, const struct artifact_info *a);
#define STORE_ART_BLOB_MAX (64 * 1024)
int store_artifact_add_data(struct store *st, const char *run_id, const struct artifact_info *a, const void *data,
                            size_t len);
/* One artifact: 0 with *a filled (free it) and, when its bytes are in the
 * store, *in_db = 1 and data holding them; 1 no such artifact; -1 error. */
int store_artifact_get(struct store *st, const char *run_id, const char *path, struct artifact_info *a, int *in_db,
                       struct buf *data);
int store_artifact_list(struct store *st, const char *run_id, struct artifact_info **out, size_t *n);
/* The last commit failed for want of space; cleared by the next commit
 * that works. Pending writes stay in memory meanwhile (at most 1M records
 * / 64 MiB, then new ones are refused). */
int store_full(struct store *st);
/* Retention (prune.c; this daemon). disk_bytes: what the run's directory holds. */
int store_run_disk_bytes(struct store *st, const char *run_id, int64_t bytes);
int store_final_count(struct store *st, int64_t *n); /* runs in a final state */
struct prune_cand {
	char *id;
	int64_t submitted_at, finished_at, disk_bytes, records;
	int deleted; /* set by store_prune_delete */
};
/* Final runs after the cursor (submitted_at, id), oldest first, at most
 * max; never a queued or running one. Free with store_prune_free. */
int store_prune_next(struct store *st, int64_t after_ts, const char *after_id, size_t max, struct prune_cand **out,
                     size_t *n);
void store_prune_free(struct prune_cand *c, size_t n); /* memory only: no handle */
/* Delete the runs (all they hold in the store) in one transaction: 0 with
 * c[i].deleted and *deleted set, -1 (nothing deleted; store_full() tells
 * whether space was the reason). */
int store_prune_delete(struct store *st, struct prune_cand *c, size_t n, size_t *deleted);
/* What the store keeps in the state dir (a store elsewhere: 0 bytes). */
struct store_usage {
	int64_t db_bytes;    /* live pages of osiris.db */
	int64_t wal_bytes;   /* osiris.db-wal on disk */
	int64_t files_bytes; /* sum of the runs' disk_bytes */
};
int store_usage(struct store *st, struct store_usage *u);
int store_db_live_bytes(struct store *st, int64_t *out);
/* After pruning: what it freed is given back to the filesystem (SQLite:
 * the WAL into the database and truncated). */
void store_checkpoint(struct store *st);
/* The highest worker seq (wseq) stored for the run; 0: none. For recovery
 * (records still pending are not looked at). */
int store_wseq_last(struct store *st, const char *run_id, int64_t *out);
/* A remote backend's sandbox, stored before it is used so that a restarted
 * daemon can re-attach to it (the run's row names it in `worker`). Never
 * its access token: that is asked for again (E2B's connect). */
struct sandbox_rec {
	char *id, *backend;
	char *domain, *envd_version; /* NULL: the configured domain / unknown */
	int64_t pid;                 /* the worker's process, 0 until started */
	char *tag;                   /* the worker's process tag */
	int64_t created_at;          /* ms since the epoch */
};
int store_sandbox_put(struct store *st, const struct sandbox_rec *sb); /* insert or replace, committed */
int store_sandbox_delete(struct store *st, const char *id);
int store_sandbox_get(struct store *st, const char *id, struct sandbox_rec *out); /* 0, 1 not found, -1 */
/* This daemon's sandboxes of a backend. */
int store_sandbox_list(struct store *st, const char *backend, struct sandbox_rec **out, size_t *n);
void store_sandbox_free(struct sandbox_rec *v, size_t n); /* memory only: no handle */
void store_sandbox_rec_free(struct sandbox_rec *sb);      /* one record (store_sandbox_get): memory only */

/* osirisd.c: the daemon's context. -------------------------------------- */
/*
 * The store is a handle because a second implementation is planned (the
 * shared PostgreSQL store, DESIGN §1) and tests and tools may hold more than
 * one. The daemon's modules (run, collect, follow, method, prune, space,
 * pool_e2b) reach the daemon's through osirisd.store, opened before any
 * x_init and closed after every x_shutdown (tests set it the same way).
 * The other modules stay singletons behind x_init/x_shutdown: one of each
 * per process and no second implementation planned; pools, which have
 * two, already are handles (struct pool, struct pool_ops).
 */
struct osirisd {
	struct store *store;
};
extern struct osirisd osirisd;

/* pool.c and pool_<backend>.c: where workers come from. ----------------- */
struct pool;
struct worker;

struct wsess;

/* A worker as the scheduler and the run see it; its backend owns it. The
 * run talks to it through its session (wsession.c). */
struct worker {
	char id[64]; /* "local-<pid>" or a sandbox id */
	struct pool *pool;
	int warm;           /* was idle and ready when taken */
	int64_t spawned_us; /* time_mono_us at start */
	int64_t ready_us;   /* time it answered its first ping */
	struct wsess *sess; /* the msgpack-rpc session over its byte stream */
	void *impl;         /* backend private */
	/* Set by the taker; the pool masks these values in anything it
	 * logs from the worker (stderr). May be NULL. */
	const struct mask *mask;
};

/* Both backends retire an idle worker above their target (the pool size
 * plus what queued runs wait for) once it has idled this long: the rule for
 * sandboxes made for a burst of demand that is gone. */
#define POOL_SURPLUS_IDLE_S 10

/* The backend interface: the scheduler sees nothing else of a pool. */
struct pool_ops {
	const char *name;                                       /* "local", "e2b" */
	int (*start)(struct pool *p, char *err, size_t errlen); /* begin warming */
	void (*stop)(struct pool *p);                           /* kill every worker */
	void (*reload)(struct pool *p);                         /* sizes changed in the config */
	/* A ready worker (warm if one is idle), or NULL when none can be had now
	 * (the pool calls pool->ready_cb when one becomes available). */
	struct worker *(*take)(struct pool *p);
	/* Optional: put the run's stored bundle file where the worker can read
	 * it (an upload for E2B, a hard link or kernel copy locally), then
	 * done(w, path for `prepare`'s bundle_path, NULL, arg) or done(w, NULL,
	 * why, arg); never called after release. NULL: the bundle travels
	 * inline inside `prepare`. */
	void (*stage)(struct worker *w, const char *bundle_file,
	              void (*done)(struct worker *w, const char *path, const char *err, void *arg), void *arg);
	/* Optional (collect.c): the run's workspace file `path` (relative),
	 * opened read-only on the daemon's side without following a symlink
	 * or leaving the workspace, for a big artifact to be linked or copied
	 * in the kernel instead of read through the worker. -1 (errno): use
	 * `read`. */
	int (*open_artifact)(struct worker *w, const char *path);
	void (*cancel)(struct worker *w, int hard); /* SIGTERM-ish, then SIGKILL-ish */
	/* The taker is done with w (after gone, or to discard it): the pool
	 * destroys it (never inside its own callback) and refills. */
	void (*release)(struct worker *w);
	/* The taker's run on w ended successfully and w is idle (no
	 * request outstanding that matters): the pool may reset w and keep it
	 * for another run (local.worker_max_runs), or release it. May be NULL
	 * (then release). */
	void (*recycle)(struct worker *w);
	void (*status)(struct pool *p, struct pool_info *out);
	/* From sched.c: n runs want a worker from this pool right now and
	 * could not get one; the pool warms up to its target plus n (within
	 * its cap). Called after every scheduling pass; may be NULL. */
	void (*demand)(struct pool *p, unsigned n);
	/* Optional, for a backend whose workers outlive the daemon: the worker
	 * `id` that a run was using before a restart, taken again (busy; its
	 * session adopted: the caller attaches and may queue requests at once;
	 * `gone` comes if it cannot be reached). NULL with err when the pool
	 * has no record of it. */
	struct worker *(*attach)(struct pool *p, const char *id, char *err, size_t errlen);
	/* Optional, for a backend that does not share the daemon's filesystem
	 * but can stream a whole file in one request: the worker's file at
	 * `path` (absolute; under the workspace `prepare` named) from its
	 * start to its end: data() as bytes arrive (non-zero: abort), then
	 * done(w, NULL or why, arg) once; one at a time per worker, never a
	 * callback after release. NULL: the daemon `read`s through the session. */
	void (*fetch)(struct worker *w, const char *path, int (*data)(const uint8_t *buf, size_t len, void *arg),
	              void (*done)(struct worker *w, const char *err, void *arg), void *arg);
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
	/* Set by a backend that is not configured (e2b without a key): submits
	 * to it are refused with this reason; queued runs for it fail. */
	char *unavailable;
	/* The drivers and version the pool's workers announced in `ready`
	 * (pool_worker_ready); drivers_known 0 until one has. */
	char **drivers;
	size_t ndrivers;
	int drivers_known;
	char *worker_version;
};

extern const struct pool_ops pool_local_ops;
extern const struct pool_ops pool_e2b_ops;

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
/* Start failures in a row of one backend's workers: the backoff, the log
 * lines (on the 1st, 2nd, 4th... failure or a new reason, not one per
 * attempt) and, from the limit on, the pool's failure. */
struct pool_starts {
	const char *what, *whats; /* "worker", "workers"; "sandbox", "sandboxes" */
	int64_t base_ms, max_ms;  /* backoff: base doubling to max */
	unsigned streak;          /* starts in a row that failed */
	char *last_error;         /* why the last one did */
};
/* Returns the backoff before the next start, in ms. */
int64_t pool_start_failed(struct pool *p, struct pool_starts *st, const char *reason, int limit);
void pool_start_ok(struct pool *p, struct pool_starts *st, const char *id);
void pool_starts_fill(const struct pool_starts *st, struct pool_info *out); /* start_failures, last_error */
void pool_starts_free(struct pool_starts *st);
/* A worker of p said `ready`: keep the drivers (and version) it names, if
 * it names them (a worker older than that does not: nothing changes). */
void pool_worker_ready(struct pool *p, const struct msg_ready *m);
/* For manifest_parse (arg: the pool a run targets): 1 when the pool's
 * workers have the driver, or have not said yet which they have (then the
 * worker's `prepare` refuses an unknown one, failing the run). */
int pool_driver_known(const char *name, void *arg);
/* The pool cannot start workers (why, a full sentence for a run's error)
 * or, with NULL, can again; either way the scheduler takes another look. */
void pool_set_failure(struct pool *p, const char *why);

/* sandbox.c: the filesystem a local worker sees under bubblewrap ------- */
struct sandbox {
	char *bwrap;  /* absolute path of bwrap */
	char *worker; /* the worker binary, resolved: bound and executed */
	char **args;  /* bwrap's argv up to the per-worker part */
	size_t nargs, capargs;
	size_t worker_arg; /* args[worker_arg..+3): the worker's --ro-bind */
	char *cover[8];    /* realpaths of the read-only system trees */
	size_t ncover;
	char *extra[32]; /* files bound beside them (libraries elsewhere) */
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
/* The same with several directories bound read-write and the worker's own
 * arguments (both NULL-terminated lists). */
size_t sandbox_argv_worker(const struct sandbox *sb, const char *const *dirs, int info, const char *const *wargs,
                           const char **argv, size_t max);
/* The view without the worker, running cmd: does bwrap start here? */
size_t sandbox_argv_cmd(const struct sandbox *sb, const char *cmd, const char **argv, size_t max);
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
	uint64_t seq;     /* submission order: FIFO within a priority */
	TAILQ_ENTRY(sched_item) entry;
};
TAILQ_HEAD(sched_queue, sched_item);
/* Pure: insert keeping (priority desc, seq asc). */
void sched_queue_insert(struct sched_queue *q, struct sched_item *it);
void sched_init(struct event_base *base, const struct config *cfg);
void sched_shutdown(void);
void sched_enqueue(struct run *r);
void sched_remove(struct run *r);   /* a queued run was cancelled */
void sched_kick(void);              /* schedule a pass (deferred, coalesced) */
void sched_run_done(struct run *r); /* a run holding a slot ended */
void sched_adopt(struct run *r);    /* a re-attached run holds a slot */
/* No new starts; done_cb runs once no run holds a slot. */
void sched_stop(void (*done_cb)(void));
unsigned sched_active(void);
size_t sched_queued(void);
void sched_pool_ready_cb(struct pool *p, void *arg);

/* run.c: a run's life: queued -> starting -> running -> final ------------ */
struct follower;
TAILQ_HEAD(follower_list, follower);
enum run_phase { PHASE_QUEUED, PHASE_ATTACH, PHASE_PREPARE, PHASE_STEPS, PHASE_FINISH, PHASE_ARTIFACTS, PHASE_DONE };
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
	size_t cur;        /* position in man.order of the step executing */
	size_t sent;       /* exec_step requests sent: cur + 1, or cur + 2 when pipelined */
	int pipeline;      /* the worker skips exec_step after a failure (prepare said so) */
	int reattached;    /* its worker outlived a daemon restart (PHASE_ATTACH first) */
	char *workspace;   /* the worker's, as `prepare` named it (for pool_ops.fetch) */
	int64_t wseq_last; /* the worker seq of its last worker record */
	int failed, cancel_requested;
	int cancel_stage; /* 0: `cancel` sent; 1: SIGTERM sent; 2: killed (run_cancel_timer_cb) */
	int has_slot;     /* counted in sched's max_concurrent_runs */
	char *fail_error;
	struct event *cancel_ev, *reap_ev;
	/* artifact collection */
	struct artifact_info *arts;
	size_t narts, art_i;
	int art_fd;
	int art_src;          /* the workspace file, when collected in the kernel (-1) */
	int art_linked;       /* art_fd is a hard link of art_src: hash only */
	struct event *art_ev; /* drives a kernel collection one chunk per pass */
	int64_t art_off;
	struct sha256_ctx *art_sha;
	char *art_tmp, *art_final;
	const char *art_fetch_err; /* why a download was stopped (collect.c) */
	int art_fetch_errno;
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
/* collect.c reports the end of artifact collection. */
void run_collected(struct run *r);
/* The run will end failed with this reason (the first one given wins). */
void run_fail(struct run *r, const char *fmt, ...) PRINTFLIKE(2, 3);

/* rundir.c: STATE/runs/<xx>/<id> directories, made ahead by a helper
 * thread; the only owner of the state dir's run layout (paths returned
 * allocated). rundir_init makes STATE/runs and STATE/.spare. */
int rundir_init(const char *state_dir, char *err, size_t errlen);
void rundir_shutdown(void);
/* Create STATE/runs/<xx>/<id> (with an empty bundle file and artifacts/):
 * 0 or -1 with errno. */
int rundir_create(const char *id);
/* A run's directory: the sharded one, or an existing unsharded
 * STATE/runs/<id> of an older daemon. */
char *rundir_path(const char *id);
char *rundir_bundle(const char *id);                     /* the stored context */
char *rundir_manifest(const char *id);                   /* the manifest path, when not manifest.yaml */
char *rundir_artifacts(const char *id);                  /* the directory of artifact files */
char *rundir_artifact(const char *id, const char *path); /* one artifact file */
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
	/* optional: a zygote forked the process for the next run (its pid as
	 * the worker sees it), just before ready() */
	void (*forked)(struct worker *w, int64_t pid);
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
void wsess_writable(struct wsess *s);                               /* the transport takes more */
void wsess_closed(struct wsess *s, const char *reason);             /* the worker ended */
void wsess_attach(struct wsess *s, const struct wsess_user *u, void *arg);
void wsess_adopt(struct wsess *s); /* a worker already running: no `ready` comes (re-attach) */
void wsess_detach(struct wsess *s);
int wsess_reset(struct wsess *s);
int wsess_is_idle(const struct wsess *s);
int wsess_is_zygote(const struct wsess *s); /* `ready` said zygote: a fork per run */
int wsess_unresponsive(const struct wsess *s);
int wsess_usable(const struct wsess *s);                    /* neither closed nor broken */
void wsess_child_gone(struct wsess *s, const char *reason); /* a zygote's child ended, the zygote lives */
int wsess_resync(struct wsess *s);                          /* after that: skip to a fresh marker */
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
void follow_run_end(struct run *r);                         /* r is final, about to go */
void follow_conn_drained(struct conn *c);                   /* output under the low watermark */
void follow_conn_gone(struct conn *c);
void follow_set_cap(size_t cap); /* daemon.follow_buffer_bytes */

/* space.c: room in the state dir's filesystem ------------------------- */
void space_init(const struct config *cfg);
int space_free(int64_t *bytes, int64_t *inodes);      /* statvfs of the state dir */
void space_fmt(int64_t bytes, char *dst, size_t len); /* "12 KiB" */
/* 0 when a submission of `need` bytes may be stored; -1 with why = "state
 * dir full (12 KiB free)" when it may not (daemon.min_free_bytes). */
int space_check(int64_t need, char *why, size_t len);

/* prune.c: retention, batched, files removed by a helper thread -------- */
struct prune_policy {
	int64_t before_ms; /* final runs finished before this (ms epoch) go; 0: no age rule */
	int64_t keep;      /* only the newest this many final runs stay; -1: no count rule */
	int64_t max_bytes; /* the state dir's cap; 0: none */
};
int prune_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
void prune_shutdown(void);
/* Queue a job; c NULL: retention (logged only), else answered on c. */
void prune_request(struct conn *c, uint32_t msgid, const struct prune_policy *pol, int dry_run);
void prune_policy_config(const struct config *cfg, struct prune_policy *pol); /* daemon.keep_* */
void prune_conn_gone(struct conn *c);
void prune_run_ended(void); /* a run reached a final state */
/* Pure: how many of the candidates (oldest first) one batch removes;
 * updates *excess (runs beyond keep) and *over (bytes over the cap, by
 * estimate); *stop when a run to keep was met. */
size_t prune_pick(const struct prune_policy *pol, int64_t *excess, int64_t *over, const struct prune_cand *c, size_t n,
                  int *stop);

/* sd_notify.c: systemd notify + socket activation, no libsystemd ------- */
int sd_notify_listen_fd(void); /* fd 3 when socket-activated for us, else -1 */
void sd_notify_send(const char *state);
void sd_notify_watchdog_init(struct event_base *base);
void sd_notify_shutdown(void);

/* e2b_http.c: async HTTP on the loop: one libcurl multi handle (hiperfifo
 * model), keep-alive/HTTP/2 reuse, TLS verified, bodies capped or streamed.
 * The only file that calls libcurl. ------------------------------------ */
struct e2b_http;
struct e2b_http_req;
struct e2b_http_result {
	int curl_code;       /* 0 (CURLE_OK) when an HTTP answer arrived whole */
	long status;         /* HTTP status, 0 when none arrived */
	const char *error;   /* transport error (scrubbed), NULL when curl_code is 0 */
	const uint8_t *body; /* buffered body, NUL-terminated; a streamed request's error body */
	size_t body_len;
	int retry_after_s;      /* Retry-After in seconds, -1 when absent */
	const char *next_token; /* X-Next-Token, NULL when absent */
	int not_sent;           /* provably never reached the server (connect failed) */
};
/* Called once, never from inside e2b_http_req_start, never after a cancel.
 * The request is freed when the callback returns. */
typedef void (*e2b_http_done_cb)(struct e2b_http_req *r, const struct e2b_http_result *res, void *arg);
/* A 2xx body as it arrives. Return 0 to go on, -1 to abort the transfer. */
typedef int (*e2b_http_data_cb)(struct e2b_http_req *r, const uint8_t *data, size_t len, void *arg);
#define E2B_HTTP_MAX_BODY_DEFAULT (1u << 20) /* a buffered answer, and a streamed call's error body */
struct e2b_http *e2b_http_new(struct event_base *base, const char *ca_file, char *err, size_t errlen);
void e2b_http_free(struct e2b_http *h); /* drops every request, no callbacks */
/* A value to scrub from every error text (the API key). */
void e2b_http_add_secret(struct e2b_http *h, const char *secret);
struct e2b_http_req *e2b_http_req_new(struct e2b_http *h, const char *method, const char *url);
/* secret: the value is scrubbed from error texts (headers are never logged). */
void e2b_http_req_header(struct e2b_http_req *r, const char *name, const char *value, int secret);
void e2b_http_req_body(struct e2b_http_req *r, const void *data, size_t len); /* copied */
/* Stream the request body from fd (pread from offset 0 to its current size;
 * fd is dup'ed). -1 with err when fd is not a regular file. */
int e2b_http_req_body_fd(struct e2b_http_req *r, int fd, char *err, size_t errlen);
/* Whole-transfer timeout in ms; 0 = none: a dead peer is then detected by
 * a stall (no byte for stall_s seconds), as for long streams. */
void e2b_http_req_timeout(struct e2b_http_req *r, long timeout_ms, long stall_s);
void e2b_http_req_max_body(struct e2b_http_req *r, size_t max);
void e2b_http_req_stream(struct e2b_http_req *r, e2b_http_data_cb cb);
/* Asynchronous: done_cb runs from the loop later, even on immediate errors. */
void e2b_http_req_start(struct e2b_http_req *r, e2b_http_done_cb cb, void *arg);
/* The owner gives the request up: its callbacks are never called again.
 * Safe from inside any callback, including the request's own. */
void e2b_http_req_cancel(struct e2b_http_req *r);
/* Replace the request's and the client's secrets in s by "***". */
void e2b_http_scrub(const struct e2b_http_req *r, char *s, size_t cap);
size_t e2b_http_active(const struct e2b_http *h); /* requests not yet finished */
char *e2b_url_escape(const char *s);              /* RFC 3986: all but unreserved as %XX */

/* e2b_connect.c: the Connect protocol's JSON codec: envelopes, errors,
 * protojson bytes (base64); no I/O. ------------------------------------ */
/* What went wrong with an E2B call, for the caller and for one log line. */
struct e2b_error {
	long http_status;  /* 0: no HTTP answer (transport error) */
	int curl_code;     /* transport error, 0 otherwise */
	char code[48];     /* Connect code ("not_found", "unavailable", ...), also for REST errors */
	char message[512]; /* server message or transport text: escaped, secrets scrubbed */
};
/* "HTTP 404 not_found: Sandbox ... doesn't exist" / "transport: ..." */
const char *e2b_error_str(const struct e2b_error *e, char *out, size_t outlen);
void e2b_error_set(struct e2b_error *e, long status, const char *code, const char *fmt, ...) PRINTFLIKE(4, 5);
/* Fill e from a finished request: transport error, or a non-2xx status with
 * a Connect ({code:str}) or REST ({code:int}) body, or plain text. */
void e2b_error_from_result(struct e2b_error *e, struct e2b_http_req *r, const struct e2b_http_result *res);
const char *e2b_connect_code_for_status(long status); /* 404 -> "not_found", ... */
#define E2B_ENVELOPE_FLAG_COMPRESSED 0x01
#define E2B_ENVELOPE_FLAG_END 0x02
#define E2B_ENVELOPE_MAX_DEFAULT (4u << 20)
/* Incremental reader: bytes may be split at any boundary. */
struct e2b_envelope_reader {
	uint8_t hdr[5];
	size_t hdr_len;
	uint8_t flags;
	uint32_t need; /* the message length from the header */
	struct buf msg;
	size_t max;
	int failed;
};
/* One whole envelope; return non-zero to stop feeding. */
typedef int (*e2b_envelope_cb)(uint8_t flags, const uint8_t *msg, size_t len, void *arg);
void e2b_envelope_reader_init(struct e2b_envelope_reader *rd, size_t max);
void e2b_envelope_reader_free(struct e2b_envelope_reader *rd);
/* 0: all consumed; 1: stopped by cb; -1: malformed (err set, and every
 * later feed fails). A length over max fails before anything is allocated. */
int e2b_envelope_feed(struct e2b_envelope_reader *rd, const uint8_t *data, size_t len, e2b_envelope_cb cb, void *arg,
                      char *err, size_t errlen);
int e2b_envelope_pending(const struct e2b_envelope_reader *rd); /* a partial envelope is buffered */
void e2b_envelope_pack(struct buf *out, uint8_t flags, const void *msg, size_t len);
/* An EndStream message: 0 success, 1 error (e filled), -1 malformed (e filled). */
int e2b_connect_end_parse(const uint8_t *msg, size_t len, struct e2b_error *e);
char *e2b_base64_encode(const void *data, size_t len); /* standard, padded */
/* Standard or URL-safe, padding optional; appends to out. -1 on bad input. */
int e2b_base64_decode(const char *s, size_t len, struct buf *out);

/* e2b_api.c: the E2B client and its control plane (REST, X-API-Key). ---- */
/* What the daemon passes in; NULL/0 fields fall back to the environment
 * exactly as the official SDKs do, then to the defaults. The pool maps its
 * config keys onto these fields. */
struct e2b_config {
	const char *api_key;     /* e2b.api_key_file via e2b_client_load_key_file(); else $E2B_API_KEY */
	const char *domain;      /* e2b.domain; else $E2B_DOMAIN; else "e2b.app" */
	const char *api_url;     /* e2b.api_url; else $E2B_API_URL; else https://api.<domain> */
	const char *sandbox_url; /* e2b.sandbox_url; else $E2B_SANDBOX_URL; else https://49983-<id>.<domain> */
	const char *ca_file;     /* e2b.ca_file; NULL: the system CAs */
	int request_timeout_ms;  /* e2b.request_timeout_ms; 0: 60000 (the SDK's REST timeout) */
	int max_retries;         /* e2b.max_retries; 0: 4 (retries of a retryable call, not attempts) */
	int retry_base_ms;       /* first backoff step without Retry-After; 0: 200 */
};
/* The configuration after the environment and defaults were applied. */
struct e2b_settings {
	char *api_key;
	char *domain;
	char *api_url;     /* no trailing '/' */
	char *sandbox_url; /* NULL: per-sandbox host 49983-<id>.<domain> */
	char *ca_file;
	int request_timeout_ms, max_retries, retry_base_ms;
};
int e2b_settings_resolve(const struct e2b_config *cfg, struct e2b_settings *out, char *err, size_t errlen);
void e2b_settings_free(struct e2b_settings *s);
/* A sandbox as the API describes it. */
struct e2b_sandbox {
	char id[64];
	char template_id[128];
	char envd_version[32];
	char state[16];             /* "running", "paused"; "" when the answer has none */
	char *access_token;         /* envdAccessToken, a secret; NULL when not secure */
	char *domain;               /* NULL: the configured domain */
	int64_t started_ms, end_ms; /* 0 when absent */
	struct kvlist metadata;
};
void e2b_sandbox_clear(struct e2b_sandbox *s);
void e2b_sandbox_copy(struct e2b_sandbox *dst, const struct e2b_sandbox *src);
struct e2b_client;
struct e2b_call; /* one asynchronous call, retries included */
/* err NULL on success. Results are only valid during the callback. */
typedef void (*e2b_done_cb)(const struct e2b_error *err, void *arg);
typedef void (*e2b_sandbox_cb)(const struct e2b_error *err, const struct e2b_sandbox *sbx, void *arg);
typedef void (*e2b_list_cb)(const struct e2b_error *err, const struct e2b_sandbox *v, size_t n, void *arg);
struct e2b_create_opts {
	const char *template_id; /* NULL: "base" */
	int timeout_s;           /* sandbox TTL; 0: 300 (the SDK default) */
	const struct kvlist *metadata;
	/* Never env vars: secrets go to a process's envs, not the sandbox. */
};
#define E2B_LIST_MAX 10000 /* sandboxes collected over all pages */
struct e2b_client *e2b_client_new(struct event_base *base, const struct e2b_config *cfg, char *err, size_t errlen);
void e2b_client_free(struct e2b_client *c); /* cancels every call, no callbacks */
const struct e2b_settings *e2b_client_settings(const struct e2b_client *c);
struct e2b_http *e2b_client_http(const struct e2b_client *c);
struct event_base *e2b_client_base(const struct e2b_client *c);
/* The API key from a file (surrounding whitespace trimmed); refuses a file
 * not owned by this uid or readable/writable by group or others. Returns a
 * new string, or NULL with err. */
char *e2b_client_load_key_file(const char *path, char *err, size_t errlen);
/* POST /sandboxes {templateID, timeout, metadata, secure:true}. Retried only
 * when it provably did not happen (connect failed, 429). */
struct e2b_call *e2b_sandbox_create(struct e2b_client *c, const struct e2b_create_opts *o, e2b_sandbox_cb cb,
                                    void *arg);
/* GET /v2/sandboxes?metadata=..., every page (X-Next-Token). */
struct e2b_call *e2b_sandbox_list(struct e2b_client *c, const struct kvlist *metadata, e2b_list_cb cb, void *arg);
struct e2b_call *e2b_sandbox_get(struct e2b_client *c, const char *id, e2b_sandbox_cb cb, void *arg);
/* DELETE /sandboxes/{id}; a sandbox already gone (404) is a success. */
struct e2b_call *e2b_sandbox_kill(struct e2b_client *c, const char *id, e2b_done_cb cb, void *arg);
/* POST /sandboxes/{id}/timeout: TTL = now + timeout_s (may shorten). */
struct e2b_call *e2b_sandbox_set_timeout(struct e2b_client *c, const char *id, int timeout_s, e2b_done_cb cb,
                                         void *arg);
/* POST /sandboxes/{id}/connect: extends the TTL, resumes a paused one. */
struct e2b_call *e2b_sandbox_connect(struct e2b_client *c, const char *id, int timeout_s, e2b_sandbox_cb cb, void *arg);
/* Sandbox ids are [a-z0-9]+ (they go into URLs). */
int e2b_sandbox_id_valid(const char *id);

/* e2b_call.c: one logical call: attempts, retry policy (backoff, Retry-After),
 * cancellation. Used by e2b_api.c and e2b_envd.c. ---------------------- */
enum e2b_retry {
	E2B_RETRY_UNSENT,     /* only when the request provably never left (not idempotent) */
	E2B_RETRY_CREATE,     /* unsent, or 429 (the create was refused, nothing happened) */
	E2B_RETRY_IDEMPOTENT, /* unsent, transport errors, 429, 500, 502, 503, 504 */
};
struct e2b_call_ops {
	const char *what; /* "create", "kill", "files.upload", ... for logs */
	enum e2b_retry retry;
	/* A fresh, configured request for one attempt (not started). */
	struct e2b_http_req *(*build)(struct e2b_call *call, void *op);
	/* The final outcome: err NULL when a 2xx arrived (res has it). */
	void (*finish)(struct e2b_call *call, void *op, const struct e2b_http_result *res, const struct e2b_error *err);
	void (*free_op)(void *op);
};
struct e2b_call *e2b_call_start(struct e2b_client *c, const struct e2b_call_ops *ops, void *op);
/* A call that fails (invalid_argument) from the loop without a request. */
struct e2b_call *e2b_call_fail(struct e2b_client *c, const struct e2b_call_ops *ops, void *op, const char *fmt, ...)
    PRINTFLIKE(4, 5);
/* The owner gives the call up: its callback is never called. Safe from
 * inside the call's own callback (then a no-op). */
void e2b_call_cancel(struct e2b_call *call);
void e2b_call_cancel_all(struct e2b_client *c);
void *e2b_call_op(const struct e2b_call *call);
/* Pages: the op may issue the next request itself instead of finishing. */
void e2b_call_continue(struct e2b_call *call);
/* Delay before attempt n+1 (n >= 1) given the server's Retry-After (-1: none). */
long e2b_call_backoff_ms(int base_ms, int attempt, int retry_after_s);
int e2b_call_should_retry(enum e2b_retry policy, const struct e2b_http_result *res);

/* e2b_envd.c: envd inside a sandbox: /files, process.Process (Connect). */
#define E2B_ENVD_PORT 49983
#define E2B_STDERR_LINE_MAX 4096 /* a longer stderr line is delivered in pieces */
/* <envd base>/<path>: $E2B_SANDBOX_URL, else https://49983-<id>.<domain>. */
char *e2b_envd_url(const struct e2b_settings *s, const struct e2b_sandbox *sbx, const char *path_and_query);
struct e2b_proc;
struct e2b_proc_end {
	int exit_code;      /* -1 when killed by a signal */
	int exited;         /* the process ran and ended (an `end` event came) */
	const char *status; /* "exit status 3", "signal: killed"; "" when unknown */
	/* NULL: the stream ended cleanly. Otherwise why it ended: an EndStream
	 * error, a non-200, or a cut ("unavailable": no EndStream). */
	const struct e2b_error *error;
};
struct e2b_proc_cbs {
	void (*started)(struct e2b_proc *p, uint32_t pid, void *arg);
	void (*stdout_data)(struct e2b_proc *p, const uint8_t *data, size_t len, void *arg);
	void (*stderr_line)(struct e2b_proc *p, const char *line, size_t len, void *arg);
	/* Once, last; p is freed after it returns. */
	void (*end)(struct e2b_proc *p, const struct e2b_proc_end *end, void *arg);
	void *arg;
};
struct e2b_proc_spec {
	const char *cmd;
	const char *const *args; /* NULL-terminated; may be NULL */
	const struct kvlist *envs;
	const char *cwd; /* NULL: the user's home */
	const char *tag; /* NULL: none */
	int stdin_open;
	int timeout_ms; /* Connect-Timeout-Ms: kills the process then; 0: none */
};
struct e2b_proc_sel {
	uint32_t pid; /* used when tag is NULL */
	const char *tag;
};
/* process.Process/Start as a server stream. NULL never: errors come as end. */
struct e2b_proc *e2b_proc_start(struct e2b_client *c, const struct e2b_sandbox *sbx, const struct e2b_proc_spec *spec,
                                const struct e2b_proc_cbs *cbs);
/* process.Process/Connect: re-attach to a running process (new output only). */
struct e2b_proc *e2b_proc_connect(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                  const struct e2b_proc_cbs *cbs);
uint32_t e2b_proc_pid(const struct e2b_proc *p); /* 0 until started */
/* Stop watching (the process keeps running); no callback after this. Safe
 * from inside p's own callbacks. */
void e2b_proc_close(struct e2b_proc *p);
void e2b_proc_close_all(struct e2b_client *c);
struct e2b_call *e2b_proc_send_input(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                     const void *data, size_t len, e2b_done_cb cb, void *arg);
/* signal: 15 (SIGTERM) or 9 (SIGKILL). */
struct e2b_call *e2b_proc_send_signal(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                      int signal, e2b_done_cb cb, void *arg);
struct e2b_call *e2b_proc_close_stdin(struct e2b_client *c, const struct e2b_sandbox *sbx, struct e2b_proc_sel sel,
                                      e2b_done_cb cb, void *arg);
struct e2b_call *e2b_envd_health(struct e2b_client *c, const struct e2b_sandbox *sbx, e2b_done_cb cb, void *arg);
/* POST /files?path=: the body streamed from fd (a regular file). */
struct e2b_call *e2b_files_upload(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *path, int fd,
                                  e2b_done_cb cb, void *arg);
/* GET /files?path=: the bytes to data as they arrive (return -1 to abort),
 * then cb once. */
struct e2b_call *e2b_files_download(struct e2b_client *c, const struct e2b_sandbox *sbx, const char *path,
                                    int (*data)(const uint8_t *buf, size_t len, void *arg), e2b_done_cb cb, void *arg);

#endif
