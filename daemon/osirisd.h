/*
 * osirisd.h: the daemon's cross-file types and prototypes. The control
 * socket speaks proto/; runs are scheduled onto pools (local processes,
 * later E2B sandboxes) behind struct pool_ops; all SQL is in store.c.
 */
#ifndef OSIRISD_H
#define OSIRISD_H

#include <event2/event.h>
#include <stdint.h>

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
	/* [local] */
	int local_pool_size;   /* 2 */
	int local_max_workers; /* 8 */
	char *local_worker;    /* default: osiris-worker beside the osirisd binary */
	char *local_isolation; /* auto | none */
	int local_heartbeat_s; /* 10: a worker silent this long while idle/busy is pinged; twice missed = dead */
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
/* Records with seq > since, ascending, at most limit (<=0: all); flushes
 * first. The callback returns non-zero to stop. */
int store_event_read(const char *run_id, int64_t since, int64_t limit, int (*cb)(const struct event_rec *, void *),
    void *arg);
int store_artifact_add(const char *run_id, const struct artifact_info *a);
int store_artifact_list(const char *run_id, struct artifact_info **out, size_t *n);

/* pool.c and pool_<backend>.c: where workers come from. ----------------- */
struct pool;
struct worker;

/* Callbacks a worker's user (the run executing on it) installs. data: bytes
 * from the worker's stdout. gone: the worker is finished (exited, killed,
 * sandbox dead) -- called once, after the last data. */
struct worker_cbs {
	void (*data)(struct worker *w, const uint8_t *buf, size_t len, void *arg);
	void (*gone)(struct worker *w, const char *reason, void *arg);
	void *arg;
};

struct worker {
	char id[64]; /* "local-<pid>" or a sandbox id */
	struct pool *pool;
	int warm;	       /* was idle and ready when taken */
	int64_t spawned_us;    /* time_mono_us at start */
	int64_t ready_us;      /* time it answered its first ping */
	struct worker_cbs cbs; /* set by the taker */
	void *impl;	       /* backend private */
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
	int (*send)(struct worker *w, const void *buf, size_t len);
	void (*cancel)(struct worker *w, int hard); /* SIGTERM-ish, then SIGKILL-ish */
	/* The taker is done with w (after gone, or to discard it): the pool
	 * destroys it (never inside its own callback) and refills. */
	void (*release)(struct worker *w);
	void (*status)(struct pool *p, struct pool_info *out);
};

struct pool {
	const struct pool_ops *ops;
	struct event_base *base;
	const struct config *cfg;
	void (*ready_cb)(struct pool *p, void *arg); /* a worker may be available */
	void *ready_arg;
	void *impl;
};

extern const struct pool_ops pool_local_ops;

#endif
