/*
 * pool_e2b.c: the E2B backend. Keeps e2b.pool_size sandboxes warm: created
 * (tagged with this daemon's instance in their metadata), the
 * self-contained worker uploaded (unless the template has it at
 * e2b.worker_path) and started with stdin open, `ready` announced. The
 * worker's stdout arrives on the process stream; its stdin goes out as
 * SendInput calls, one at a time, through the session's ordered queue.
 * Creation is paced (e2b.create_rate) and capped (e2b.max_sandboxes); one
 * run per sandbox by default, then it is killed and replaced in the
 * background. TTLs are kept ahead with /timeout; sandboxes tagged by this
 * instance that it does not know are killed at start and periodically.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define SB_REMOTE_WORKER "/home/user/osiris-worker"
#define SB_WORKDIR "/tmp/osiris"
#define SB_STAGED_BUNDLE "/tmp/osiris-bundle" /* a run's context, uploaded by stage */
#define SB_TAG "osiris-worker"
#define SB_META_KEY "osirisd"
#define SB_TICK_S 5   /* TTL refreshes and sweeps, at most this far apart */
#define SB_SWEEP_S 60 /* orphan sweeps */
#define SB_BACKOFF_MAX_MS 30000
#define SB_STOP_WAIT_US 5000000 /* kills at shutdown */
/* Bytes of stdin per SendInput: envd takes Connect messages up to 4 MiB,
 * and the bytes travel base64-encoded inside JSON. */
#define SB_INPUT_MAX (2u * 1024 * 1024)

enum sb_state { SB_CREATING, SB_UPLOADING, SB_STARTING, SB_IDLE, SB_BUSY, SB_RESETTING, SB_RELEASED, SB_ATTACHING };

struct e2b_pool;
struct sbx {
	struct worker w;
	struct e2b_pool *ep;
	enum sb_state state;
	struct e2b_sandbox info; /* valid once created (info.id[0] != 0) */
	struct e2b_call *call;   /* create, upload or kill in flight */
	struct e2b_call *input;  /* the SendInput in flight */
	struct e2b_call *refresh;
	struct e2b_call *stage; /* the run's context uploading */
	struct e2b_call *fetch; /* an artifact downloading */
	void (*fetch_done)(struct worker *w, const char *err, void *arg);
	int (*fetch_data)(const uint8_t *buf, size_t len, void *arg);
	void *fetch_arg;
	void (*stage_done)(struct worker *w, const char *path, const char *err, void *arg);
	void *stage_arg;
	struct e2b_proc *proc;
	uint32_t pid;
	int64_t refreshed_us; /* TTL last set (at create, then by refreshes) */
	int64_t idle_us;      /* when it last became idle */
	int on_demand, killing, killed, proc_done, gone_sent, freeing;
	int blind; /* re-attached: the run's secrets are not known here, so its stderr is not kept */
	unsigned runs;
	char last_err[256];
	char cause[512]; /* why the daemon gave it up (a failed SendInput), for gone */
	TAILQ_ENTRY(sbx) entry;
};
TAILQ_HEAD(sbx_list, sbx);

struct e2b_pool {
	struct pool *p;
	struct e2b_client *cl; /* NULL: not configured (p->unavailable says why) */
	struct sbx_list sbxs, dead;
	unsigned demand;
	struct pool_starts starts;
	int stopping, in_backoff;
	struct pool_latency lat;
	struct event *refill_ev, *reap_ev, *tick_ev, *backoff_ev;
	int64_t next_create_us, last_sweep_us;
	char instance[17];
	char *upload_path; /* the self-contained worker on this host; NULL with e2b.worker_path */
	struct kvlist meta;
	struct e2b_call *sweep;
	uint64_t seq;
};

static void pool_e2b_refill(struct e2b_pool *ep);
static void pool_e2b_kill(struct sbx *sb);
static void pool_e2b_start_failed(struct e2b_pool *ep, const char *reason);

static struct e2b_pool *pool_e2b_of(struct pool *p)
{
	return p->impl;
}

static struct sbx *pool_e2b_sb(struct worker *w)
{
	return w->impl;
}

static void pool_e2b_counts(struct e2b_pool *ep, unsigned *idle, unsigned *warming, unsigned *busy, unsigned *alive)
{
	struct sbx *sb;

	*idle = *warming = *busy = *alive = 0;
	TAILQ_FOREACH(sb, &ep->sbxs, entry)
	{
		(*alive)++;
		if (sb->killing)
			continue;
		if (sb->state == SB_IDLE)
			(*idle)++;
		else if (sb->state == SB_BUSY || sb->state == SB_ATTACHING)
			(*busy)++;
		else if (sb->state != SB_RELEASED)
			(*warming)++;
	}
}

/* -- lifetime ------------------------------------------------------------- */

static void pool_e2b_schedule_free(struct sbx *sb)
{
	if (sb->freeing)
		return;
	sb->freeing = 1;
	TAILQ_REMOVE(&sb->ep->sbxs, sb, entry);
	TAILQ_INSERT_TAIL(&sb->ep->dead, sb, entry);
	event_active(sb->ep->reap_ev, EV_TIMEOUT, 0);
}

static void pool_e2b_free(struct sbx *sb)
{
	if (sb->call != NULL)
		e2b_call_cancel(sb->call);
	if (sb->input != NULL)
		e2b_call_cancel(sb->input);
	if (sb->refresh != NULL)
		e2b_call_cancel(sb->refresh);
	if (sb->stage != NULL)
		e2b_call_cancel(sb->stage);
	if (sb->fetch != NULL)
		e2b_call_cancel(sb->fetch);
	if (sb->proc != NULL)
		e2b_proc_close(sb->proc);
	wsess_free(sb->w.sess);
	e2b_sandbox_clear(&sb->info);
	free(sb);
}

static void pool_e2b_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct e2b_pool *ep = arg;
	struct sbx *sb;

	(void)fd;
	(void)what;
	while ((sb = TAILQ_FIRST(&ep->dead)) != NULL) {
		TAILQ_REMOVE(&ep->dead, sb, entry);
		pool_e2b_free(sb);
	}
	pool_e2b_refill(ep);
}

/* Finished once killed (or never created) and its process stream ended. */
static void pool_e2b_check_done(struct sbx *sb)
{
	if ((sb->killed || sb->info.id[0] == '\0') && (sb->proc_done || sb->proc == NULL))
		pool_e2b_schedule_free(sb);
}

/* The worker in sb ended, or can no longer be used: the run on it (if any)
 * hears it once; the sandbox goes. */
static void pool_e2b_gone(struct sbx *sb, const char *reason)
{
	enum sb_state was = sb->state;

	if (!sb->gone_sent) {
		sb->gone_sent = 1;
		wsess_closed(sb->w.sess, reason);
	}
	if ((was == SB_CREATING || was == SB_UPLOADING || was == SB_STARTING) && !sb->ep->stopping)
		pool_e2b_start_failed(sb->ep, reason);
	pool_e2b_kill(sb);
}

static void pool_e2b_kill_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	char why[600];

	sb->call = NULL;
	sb->killed = 1;
	if (err != NULL)
		log_warnx("sandbox=%s: kill failed: %s (the orphan sweep retries)", sb->info.id,
		          e2b_error_str(err, why, sizeof(why)));
	else
		(void)store_sandbox_delete(osirisd.store, sb->info.id);
	/* Its stream is cut with it; do not wait for the end of one that hangs. */
	if (sb->proc != NULL && !sb->proc_done) {
		e2b_proc_close(sb->proc);
		sb->proc = NULL;
	}
	pool_e2b_check_done(sb);
}

/* The run gave the worker up: a download for it goes, unheard. */
static void pool_e2b_fetch_drop(struct sbx *sb)
{
	if (sb->fetch != NULL)
		e2b_call_cancel(sb->fetch);
	sb->fetch = NULL;
	sb->fetch_done = NULL;
	sb->fetch_data = NULL;
}

/* Kill the sandbox (idempotent); the sbx is freed once that is done. */
static void pool_e2b_kill(struct sbx *sb)
{
	if (sb->killing)
		return;
	sb->killing = 1;
	if (sb->refresh != NULL) {
		e2b_call_cancel(sb->refresh);
		sb->refresh = NULL;
	}
	if (sb->stage != NULL) { /* the run hears `gone` instead */
		e2b_call_cancel(sb->stage);
		sb->stage = NULL;
		sb->stage_done = NULL;
	}
	pool_e2b_fetch_drop(sb);
	if (sb->info.id[0] == '\0') {
		/* A create in flight is let answer (it may have happened):
		 * pool_e2b_create_cb kills what it made. */
		if (sb->call == NULL)
			pool_e2b_check_done(sb);
		return;
	}
	if (sb->call != NULL) {
		e2b_call_cancel(sb->call);
		sb->call = NULL;
	}
	log_debug("sandbox=%s killing", sb->info.id);
	sb->call = e2b_sandbox_kill(sb->ep->cl, sb->info.id, pool_e2b_kill_cb, sb);
}

/* Stored before the sandbox is used (and again with the worker's pid), so
 * that a restarted daemon re-attaches to a run in it or kills it. */
static void pool_e2b_record(struct sbx *sb)
{
	struct sandbox_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.id = sb->info.id;
	rec.backend = "e2b";
	rec.domain = sb->info.domain;
	rec.envd_version = sb->info.envd_version[0] != '\0' ? sb->info.envd_version : NULL;
	rec.pid = sb->pid;
	rec.tag = SB_TAG;
	rec.created_at = time_now_ms();
	if (store_sandbox_put(osirisd.store, &rec) == -1)
		log_warnx("sandbox=%s: cannot be recorded in the store (a restart would not re-attach to it)",
		          sb->info.id);
}

/* -- the worker's process ------------------------------------------------- */

static void pool_e2b_proc_started(struct e2b_proc *p, uint32_t pid, void *arg)
{
	struct sbx *sb = arg;

	(void)p;
	sb->pid = pid;
	log_debug("sandbox=%s worker pid %u", sb->info.id, pid);
	if (sb->state == SB_ATTACHING) {
		log_info("sandbox=%s: re-attached to its worker (pid %u)", sb->info.id, pid);
		sb->state = SB_BUSY;
		wsess_writable(sb->w.sess); /* what the run queued meanwhile */
		return;
	}
	pool_e2b_record(sb);
}

static void pool_e2b_proc_stdout(struct e2b_proc *p, const uint8_t *data, size_t len, void *arg)
{
	struct sbx *sb = arg;

	(void)p;
	if (sb->state != SB_RELEASED)
		wsess_input(sb->w.sess, data, len);
}

static void pool_e2b_proc_stderr(struct e2b_proc *p, const char *line, size_t len, void *arg)
{
	struct sbx *sb = arg;
	char *text = xstrndup(line, len), *masked;

	(void)p;
	if (sb->blind) { /* nothing to mask it with: not kept, not logged */
		free(text);
		return;
	}
	masked = sb->w.mask != NULL ? mask_apply(sb->w.mask, text) : NULL;
	snprintf(sb->last_err, sizeof(sb->last_err), "%s", masked != NULL ? masked : text);
	log_debug("sandbox=%s stderr: %s", sb->info.id, log_esc(sb->last_err, 300));
	free(masked);
	free(text);
}

static void pool_e2b_proc_end(struct e2b_proc *p, const struct e2b_proc_end *end, void *arg)
{
	struct sbx *sb = arg;
	char reason[900], why[600];
	size_t n;

	(void)p;
	sb->proc = NULL; /* freed by the client after this returns */
	sb->proc_done = 1;
	if (sb->cause[0] != '\0')
		n = (size_t)snprintf(reason, sizeof(reason), "sandbox %s: %s", sb->info.id, sb->cause);
	else if (end->error != NULL)
		n = (size_t)snprintf(reason, sizeof(reason), "sandbox %s: worker stream lost: %s", sb->info.id,
		                     e2b_error_str(end->error, why, sizeof(why)));
	else
		n = (size_t)snprintf(reason, sizeof(reason), "sandbox %s: osiris-worker %s", sb->info.id,
		                     end->status != NULL && *end->status != '\0' ? end->status : "ended");
	if (sb->last_err[0] != '\0' && n < sizeof(reason))
		snprintf(reason + n, sizeof(reason) - n, ": %s", sb->last_err);
	log_debug("%s", log_esc(reason, 600));
	pool_e2b_gone(sb, reason);
	pool_e2b_check_done(sb);
}

static const struct e2b_proc_cbs pool_e2b_proc_cbs_tmpl = {
    .started = pool_e2b_proc_started,
    .stdout_data = pool_e2b_proc_stdout,
    .stderr_line = pool_e2b_proc_stderr,
    .end = pool_e2b_proc_end,
};

/* The worker runs in its own workspace under SB_WORKDIR; the upload left it
 * without the execute bit, which the shell adds. Nothing secret here: the
 * run's env and secrets travel inside `prepare` over the stream. */
static void pool_e2b_start_worker(struct sbx *sb)
{
	const struct config *cfg = sb->ep->p->cfg;
	const char *path = cfg->e2b_worker_path != NULL ? cfg->e2b_worker_path : SB_REMOTE_WORKER;
	struct e2b_proc_cbs cbs = pool_e2b_proc_cbs_tmpl;
	struct e2b_proc_spec spec;
	const char *args[3];
	struct kvlist envs;
	char *script, max[32];

	xasprintf(&script, "chmod 0755 '%s' 2>/dev/null; mkdir -p " SB_WORKDIR " && exec '%s' --workdir " SB_WORKDIR,
	          path, path);
	args[0] = "-c";
	args[1] = script;
	args[2] = NULL;
	memset(&envs, 0, sizeof(envs));
	snprintf(max, sizeof(max), "%lld", (long long)cfg->max_context_bytes);
	kvlist_add(&envs, "OSIRIS_MAX_CONTEXT", max);
	memset(&spec, 0, sizeof(spec));
	spec.cmd = "/bin/sh";
	spec.args = args;
	spec.envs = &envs;
	spec.tag = SB_TAG;
	spec.stdin_open = 1;
	cbs.arg = sb;
	sb->state = SB_STARTING;
	sb->proc = e2b_proc_start(sb->ep->cl, &sb->info, &spec, &cbs);
	kvlist_free(&envs);
	free(script);
}

static void pool_e2b_upload_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	char why[600], reason[700];

	sb->call = NULL;
	if (err != NULL) {
		snprintf(reason, sizeof(reason), "sandbox %s: uploading the worker failed: %s", sb->info.id,
		         e2b_error_str(err, why, sizeof(why)));
		pool_e2b_gone(sb, reason);
		return;
	}
	pool_e2b_start_worker(sb);
}

static void pool_e2b_upload(struct sbx *sb)
{
	char reason[PATH_MAX + 64];
	int fd;

	if ((fd = open(sb->ep->upload_path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(reason, sizeof(reason), "cannot open the worker %s: %s", sb->ep->upload_path, strerror(errno));
		pool_e2b_gone(sb, reason);
		return;
	}
	sb->state = SB_UPLOADING;
	sb->call = e2b_files_upload(sb->ep->cl, &sb->info, SB_REMOTE_WORKER, fd, pool_e2b_upload_cb, sb);
	close(fd); /* the request keeps its own descriptor */
}

static void pool_e2b_create_cb(const struct e2b_error *err, const struct e2b_sandbox *sbx, void *arg)
{
	struct sbx *sb = arg;
	char why[600], reason[700];

	sb->call = NULL;
	if (err != NULL) {
		snprintf(reason, sizeof(reason), "creating a sandbox failed: %s", e2b_error_str(err, why, sizeof(why)));
		pool_e2b_gone(sb, reason);
		return;
	}
	e2b_sandbox_copy(&sb->info, sbx);
	sb->refreshed_us = time_mono_us();
	snprintf(sb->w.id, sizeof(sb->w.id), "%s", sbx->id);
	log_debug("sandbox=%s created", sb->info.id);
	pool_e2b_record(sb);
	if (sb->killing) { /* unwanted by the time it came (shutdown) */
		sb->killing = 0;
		pool_e2b_kill(sb);
		return;
	}
	if (sb->ep->upload_path != NULL)
		pool_e2b_upload(sb);
	else
		pool_e2b_start_worker(sb);
}

/* -- the session's transport: stdin as SendInput, one call at a time ------- */

static void pool_e2b_input_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	char why[600];

	sb->input = NULL;
	if (err != NULL) {
		snprintf(sb->cause, sizeof(sb->cause), "sending to the worker failed: %s",
		         e2b_error_str(err, why, sizeof(why)));
		log_warnx("sandbox=%s: %s", sb->info.id, sb->cause);
		pool_e2b_kill(sb); /* the stream ends with it: gone follows */
		return;
	}
	wsess_writable(sb->w.sess);
}

static ssize_t pool_e2b_write(void *tctx, const void *buf, size_t len)
{
	struct sbx *sb = tctx;
	struct e2b_proc_sel sel = {sb->pid, NULL};

	if (sb->killing)
		return -1;
	if (sb->proc == NULL || sb->pid == 0)
		return sb->state == SB_ATTACHING ? 0 : -1; /* attaching: sent once the stream is there */
	if (sb->input != NULL)
		return 0; /* ordered: the next call waits for this one */
	if (len > SB_INPUT_MAX)
		len = SB_INPUT_MAX; /* the session offers the rest after this one */
	sb->input = e2b_proc_send_input(sb->ep->cl, &sb->info, sel, buf, len, pool_e2b_input_cb, sb);
	return (ssize_t)len;
}

static void pool_e2b_signal_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	char why[600];

	if (err != NULL)
		log_warnx("sandbox=%s: SIGTERM failed: %s", sb->info.id, e2b_error_str(err, why, sizeof(why)));
}

/* Soft: SIGTERM to the worker process; hard: the sandbox goes. */
static void pool_e2b_transport_kill(void *tctx, int hard)
{
	struct sbx *sb = tctx;
	struct e2b_proc_sel sel = {sb->pid, NULL};

	if (hard || sb->pid == 0) {
		pool_e2b_kill(sb);
		return;
	}
	(void)e2b_proc_send_signal(sb->ep->cl, &sb->info, sel, 15, pool_e2b_signal_cb, sb);
}

static void pool_e2b_sess_ready(struct worker *w)
{
	struct sbx *sb = pool_e2b_sb(w);
	struct e2b_pool *ep = sb->ep;
	int64_t ms;

	if (sb->state == SB_STARTING) {
		sb->w.ready_us = time_mono_us();
		ms = (sb->w.ready_us - sb->w.spawned_us + 500) / 1000;
		pool_latency_add(&ep->lat, ms);
		pool_start_ok(ep->p, &ep->starts, sb->info.id);
		log_debug("sandbox=%s ready in %lld ms", sb->info.id, (long long)ms);
	} else if (sb->state != SB_RESETTING) {
		return;
	}
	sb->state = SB_IDLE;
	sb->idle_us = time_mono_us();
	if (ep->p->ready_cb != NULL)
		ep->p->ready_cb(ep->p, ep->p->ready_arg);
}

static void pool_e2b_sess_failed(struct worker *w, const char *why)
{
	struct sbx *sb = pool_e2b_sb(w);

	log_warnx("sandbox=%s discarded: %s", sb->info.id, why);
	sb->state = SB_RELEASED;
	pool_e2b_kill(sb);
}

static const struct wsess_transport pool_e2b_transport = {
    .write = pool_e2b_write,
    .kill = pool_e2b_transport_kill,
};
static const struct wsess_owner pool_e2b_owner = {
    .ready = pool_e2b_sess_ready,
    .failed = pool_e2b_sess_failed,
};

/* -- warming ------------------------------------------------------------- */

static struct sbx *pool_e2b_sbx_new(struct e2b_pool *ep, enum sb_state state)
{
	struct sbx *sb = xcalloc(1, sizeof(*sb));

	sb->ep = ep;
	sb->state = state;
	sb->w.pool = ep->p;
	sb->w.impl = sb;
	sb->w.spawned_us = time_mono_us();
	snprintf(sb->w.id, sizeof(sb->w.id), "e2b-creating-%llu", (unsigned long long)++ep->seq);
	sb->w.sess = wsess_new(&sb->w, &pool_e2b_transport, sb, &pool_e2b_owner, (size_t)ep->p->cfg->max_context_bytes);
	wsess_heartbeat_start(sb->w.sess, ep->p->base);
	TAILQ_INSERT_TAIL(&ep->sbxs, sb, entry);
	return sb;
}

static struct sbx *pool_e2b_spawn(struct e2b_pool *ep, int on_demand)
{
	const struct config *cfg = ep->p->cfg;
	struct e2b_create_opts o;
	struct sbx *sb = pool_e2b_sbx_new(ep, SB_CREATING);

	sb->on_demand = on_demand;
	memset(&o, 0, sizeof(o));
	o.template_id = cfg->e2b_template;
	o.timeout_s = cfg->e2b_sandbox_timeout_s;
	o.metadata = &ep->meta;
	sb->call = e2b_sandbox_create(ep->cl, &o, pool_e2b_create_cb, sb);
	ep->next_create_us = time_mono_us() + 1000000 / (cfg->e2b_create_rate > 0 ? cfg->e2b_create_rate : 1);
	return sb;
}

static void pool_e2b_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct e2b_pool *ep = arg;

	(void)fd;
	(void)what;
	ep->in_backoff = 0;
	pool_e2b_refill(ep);
}

/* Back off (100 ms doubling to SB_BACKOFF_MAX_MS); past the limit, the
 * runs waiting for the pool fail (pool_start_failed). */
static void pool_e2b_start_failed(struct e2b_pool *ep, const char *reason)
{
	int64_t ms = pool_start_failed(ep->p, &ep->starts, reason, ep->p->cfg->e2b_start_fail_limit);
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	ep->in_backoff = 1;
	evtimer_add(ep->backoff_ev, &tv);
}

static void pool_e2b_refill(struct e2b_pool *ep)
{
	const struct config *cfg = ep->p->cfg;
	unsigned idle, warming, busy, alive, target;
	int64_t now = time_mono_us(), wait;
	struct timeval tv;

	if (ep->stopping || ep->in_backoff || ep->cl == NULL)
		return;
	target = (unsigned)(cfg->e2b_pool_size > 0 ? cfg->e2b_pool_size : 0) + ep->demand;
	pool_e2b_counts(ep, &idle, &warming, &busy, &alive);
	if (idle + warming >= target || alive >= (unsigned)cfg->e2b_max_sandboxes)
		return;
	if ((wait = ep->next_create_us - now) > 0) {
		/* Paced: come back when the next create is allowed. */
		tv.tv_sec = wait / 1000000;
		tv.tv_usec = wait % 1000000;
		if (!evtimer_pending(ep->refill_ev, NULL))
			evtimer_add(ep->refill_ev, &tv);
		return;
	}
	(void)pool_e2b_spawn(ep, idle + warming >= (unsigned)cfg->e2b_pool_size);
	if (idle + warming + 1 < target && alive + 1 < (unsigned)cfg->e2b_max_sandboxes)
		pool_e2b_refill(ep); /* schedules itself at the pace */
}

static void pool_e2b_refill_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_e2b_refill(arg);
}

/* -- TTL and orphans ------------------------------------------------------- */

static void pool_e2b_refresh_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	char why[600];

	sb->refresh = NULL;
	if (err != NULL && err->http_status == 404) {
		log_warnx("sandbox=%s is gone (TTL or killed outside osirisd)", sb->info.id);
		pool_e2b_gone(sb, "sandbox gone (404 on its TTL refresh)");
	} else if (err != NULL) {
		log_warnx("sandbox=%s: TTL refresh failed: %s", sb->info.id, e2b_error_str(err, why, sizeof(why)));
	}
}

static int pool_e2b_known(const struct e2b_pool *ep, const char *id)
{
	const struct sbx *sb;

	TAILQ_FOREACH(sb, &ep->sbxs, entry)
	{
		if (strcmp(sb->info.id, id) == 0)
			return 1;
	}
	return 0;
}

static void pool_e2b_orphan_kill_cb(const struct e2b_error *err, void *arg)
{
	char why[600];

	if (err != NULL)
		log_warnx("e2b pool: killing an orphan failed: %s", e2b_error_str(err, why, sizeof(why)));
	else
		(void)store_sandbox_delete(osirisd.store, arg);
	free(arg);
}

/* Stored sandboxes that are neither alive (listed) nor in use here: gone
 * (TTL, killed elsewhere); their records go. */
static void pool_e2b_forget_dead(struct e2b_pool *ep, const struct e2b_sandbox *v, size_t n)
{
	struct sandbox_rec *recs;
	size_t i, j, nrecs;

	if (store_sandbox_list(osirisd.store, "e2b", &recs, &nrecs) == -1)
		return;
	for (i = 0; i < nrecs; i++) {
		for (j = 0; j < n && strcmp(v[j].id, recs[i].id) != 0; j++)
			;
		if (j == n && !pool_e2b_known(ep, recs[i].id)) {
			log_debug("sandbox=%s: no longer exists, forgotten", recs[i].id);
			(void)store_sandbox_delete(osirisd.store, recs[i].id);
		}
	}
	store_sandbox_free(recs, nrecs);
}

/* Sandboxes tagged with this instance that it does not know: left by a
 * crashed or killed daemon, or a create whose answer was lost. */
static void pool_e2b_sweep_cb(const struct e2b_error *err, const struct e2b_sandbox *v, size_t n, void *arg)
{
	struct e2b_pool *ep = arg;
	char why[600];
	size_t i;

	ep->sweep = NULL;
	if (err != NULL) {
		log_warnx("e2b pool: listing this daemon's sandboxes failed: %s", e2b_error_str(err, why, sizeof(why)));
		return;
	}
	for (i = 0; i < n; i++) {
		if (pool_e2b_known(ep, v[i].id))
			continue;
		log_info("e2b pool: killing orphaned sandbox=%s", v[i].id);
		(void)e2b_sandbox_kill(ep->cl, v[i].id, pool_e2b_orphan_kill_cb, xstrdup(v[i].id));
	}
	pool_e2b_forget_dead(ep, v, n);
}

static void pool_e2b_sweep(struct e2b_pool *ep)
{
	ep->last_sweep_us = time_mono_us();
	if (ep->sweep == NULL)
		ep->sweep = e2b_sandbox_list(ep->cl, &ep->meta, pool_e2b_sweep_cb, ep);
}

/* Sandboxes cost money while they live: idle ones above the target (made
 * for a burst of demand that is gone) go after POOL_SURPLUS_IDLE_S. */
static void pool_e2b_trim(struct e2b_pool *ep)
{
	unsigned idle, warming, busy, alive, target;
	int64_t now = time_mono_us();
	struct sbx *sb, *next;

	target = (unsigned)(ep->p->cfg->e2b_pool_size > 0 ? ep->p->cfg->e2b_pool_size : 0) + ep->demand;
	pool_e2b_counts(ep, &idle, &warming, &busy, &alive);
	for (sb = TAILQ_FIRST(&ep->sbxs); sb != NULL && idle > target; sb = next) {
		next = TAILQ_NEXT(sb, entry);
		if (sb->state != SB_IDLE || sb->killing || now - sb->idle_us < (int64_t)POOL_SURPLUS_IDLE_S * 1000000)
			continue;
		log_debug("sandbox=%s: idle above the pool's target, killing it", sb->info.id);
		sb->state = SB_RELEASED;
		pool_e2b_kill(sb);
		idle--;
	}
}

static void pool_e2b_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct e2b_pool *ep = arg;
	const struct config *cfg = ep->p->cfg;
	int64_t every_us = (int64_t)cfg->e2b_sandbox_timeout_s * 1000000 / 3;
	struct sbx *sb;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(sb, &ep->sbxs, entry)
	{
		/* Keep the TTL a full timeout ahead, a third of it at a time. */
		if (sb->killing || sb->info.id[0] == '\0' || sb->refresh != NULL ||
		    time_mono_us() - sb->refreshed_us < every_us)
			continue;
		sb->refreshed_us = time_mono_us();
		sb->refresh =
		    e2b_sandbox_set_timeout(ep->cl, sb->info.id, cfg->e2b_sandbox_timeout_s, pool_e2b_refresh_cb, sb);
	}
	if (time_mono_us() - ep->last_sweep_us >= (int64_t)SB_SWEEP_S * 1000000)
		pool_e2b_sweep(ep);
	pool_e2b_trim(ep);
	pool_e2b_refill(ep);
}

/* -- start ------------------------------------------------------------------ */

/* Stable for one state dir on one host, so a restarted daemon recognises
 * (and kills) what its predecessor left. */
static void pool_e2b_instance(struct e2b_pool *ep)
{
	char host[256] = "", hex[65], *seed;

	(void)gethostname(host, sizeof(host) - 1);
	xasprintf(&seed, "%s:%s", host, ep->p->cfg->state_dir);
	sha256_hex(seed, strlen(seed), hex);
	free(seed);
	memcpy(ep->instance, hex, 16);
	ep->instance[16] = '\0';
	kvlist_add(&ep->meta, SB_META_KEY, ep->instance);
}

/* The self-contained worker beside osirisd (build tree or installed
 * libexec), as the local pool finds osiris-worker. */
static char *pool_e2b_find_worker(void)
{
	char exe[PATH_MAX], *path;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		xasprintf(&path, "%s/osiris-worker-static", dirname(exe));
		if (access(path, R_OK) == 0)
			return path;
		free(path);
	}
	path = xstrdup(LIBEXECDIR "/osiris-worker-static");
	return access(path, R_OK) == 0 ? path : (free(path), (char *)NULL);
}

/* Not configured (no key, a bad key file, no worker to upload): the pool
 * exists, says why, and refuses runs. */
static void pool_e2b_unavailable(struct e2b_pool *ep, const char *why)
{
	free(ep->p->unavailable);
	ep->p->unavailable = xstrdup(why);
	log_info("e2b pool: not available: %s", why);
}

static void pool_e2b_client(struct e2b_pool *ep)
{
	const struct config *cfg = ep->p->cfg;
	struct e2b_config ec;
	char err[512], why[600];
	char *key = NULL;

	memset(&ec, 0, sizeof(ec));
	if (cfg->e2b_api_key_file != NULL) {
		if ((key = e2b_client_load_key_file(cfg->e2b_api_key_file, err, sizeof(err))) == NULL) {
			snprintf(why, sizeof(why), "e2b.api_key_file: %s", err);
			pool_e2b_unavailable(ep, why);
			return;
		}
		ec.api_key = key;
	} else if (getenv("E2B_API_KEY") == NULL || *getenv("E2B_API_KEY") == '\0') {
		pool_e2b_unavailable(ep, "not configured: set E2B_API_KEY or e2b.api_key_file");
		return;
	}
	ec.ca_file = cfg->e2b_ca_file;
	if (cfg->e2b_worker_path == NULL && (ep->upload_path = pool_e2b_find_worker()) == NULL) {
		pool_e2b_unavailable(ep, "no osiris-worker-static beside osirisd to upload (or set e2b.worker_path)");
	} else if ((ep->cl = e2b_client_new(ep->p->base, &ec, err, sizeof(err))) == NULL) {
		snprintf(why, sizeof(why), "%s", err);
		pool_e2b_unavailable(ep, why);
	}
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
}

static int pool_e2b_start(struct pool *p, char *err, size_t errlen)
{
	const struct config *cfg = p->cfg;
	struct e2b_pool *ep = xcalloc(1, sizeof(*ep));
	/* A third of the TTL at most between refreshes, checked thrice as often. */
	int tick_ms = cfg->e2b_sandbox_timeout_s * 1000 / 9 < SB_TICK_S * 1000 ? cfg->e2b_sandbox_timeout_s * 1000 / 9
	                                                                       : SB_TICK_S * 1000;
	struct timeval tick = {tick_ms / 1000, (tick_ms % 1000) * 1000};

	(void)err;
	(void)errlen;
	p->impl = ep;
	p->heartbeat_s = cfg->e2b_heartbeat_s;
	ep->p = p;
	TAILQ_INIT(&ep->sbxs);
	ep->starts.what = "sandbox";
	ep->starts.whats = "sandboxes";
	ep->starts.base_ms = 100;
	ep->starts.max_ms = SB_BACKOFF_MAX_MS;
	TAILQ_INIT(&ep->dead);
	pool_e2b_instance(ep);
	ep->refill_ev = evtimer_new(p->base, pool_e2b_refill_cb, ep);
	ep->reap_ev = event_new(p->base, -1, 0, pool_e2b_reap_cb, ep);
	ep->backoff_ev = evtimer_new(p->base, pool_e2b_backoff_cb, ep);
	ep->tick_ev = event_new(p->base, -1, EV_PERSIST, pool_e2b_tick_cb, ep);
	if (ep->refill_ev == NULL || ep->reap_ev == NULL || ep->backoff_ev == NULL || ep->tick_ev == NULL)
		fatalx("pool_e2b: event_new");
	pool_e2b_client(ep);
	if (ep->cl == NULL)
		return 0;
	evtimer_add(ep->tick_ev, &tick);
	log_info("e2b pool: api %s, template %s, pool_size %d, max_sandboxes %d, create_rate %d/s, instance %s, "
	         "worker %s",
	         e2b_client_settings(ep->cl)->api_url, cfg->e2b_template, cfg->e2b_pool_size, cfg->e2b_max_sandboxes,
	         cfg->e2b_create_rate, ep->instance, ep->upload_path != NULL ? ep->upload_path : cfg->e2b_worker_path);
	pool_e2b_sweep(ep); /* what a previous daemon left */
	pool_e2b_refill(ep);
	return 0;
}

/* -- the pool_ops ------------------------------------------------------------ */

/* At shutdown, with the loop over: kill every sandbox and run the loop
 * until the kills are answered (or SB_STOP_WAIT_US passes). */
static void pool_e2b_stop(struct pool *p)
{
	struct e2b_pool *ep = pool_e2b_of(p);
	int64_t deadline = time_mono_us() + SB_STOP_WAIT_US;
	struct sbx *sb, *next;

	if (ep == NULL)
		return;
	ep->stopping = 1;
	if (ep->cl != NULL) {
		/* pool_e2b_kill may move sb to the dead list: not a FOREACH. */
		for (sb = TAILQ_FIRST(&ep->sbxs); sb != NULL; sb = next) {
			next = TAILQ_NEXT(sb, entry);
			pool_e2b_kill(sb);
		}
		while (!TAILQ_EMPTY(&ep->sbxs) && time_mono_us() < deadline)
			event_base_loop(p->base, EVLOOP_ONCE);
	}
	while ((sb = TAILQ_FIRST(&ep->sbxs)) != NULL) {
		log_warnx("sandbox=%s: not confirmed killed at shutdown", sb->info.id);
		TAILQ_REMOVE(&ep->sbxs, sb, entry);
		pool_e2b_free(sb);
	}
	while ((sb = TAILQ_FIRST(&ep->dead)) != NULL) {
		TAILQ_REMOVE(&ep->dead, sb, entry);
		pool_e2b_free(sb);
	}
	if (ep->cl != NULL)
		e2b_client_free(ep->cl);
	event_free(ep->refill_ev);
	event_free(ep->reap_ev);
	event_free(ep->backoff_ev);
	event_free(ep->tick_ev);
	kvlist_free(&ep->meta);
	free(ep->upload_path);
	pool_starts_free(&ep->starts);
	free(ep);
	p->impl = NULL;
}

static void pool_e2b_reload(struct pool *p)
{
	struct e2b_pool *ep = pool_e2b_of(p);
	unsigned idle, warming, busy, alive, target;
	struct sbx *sb, *next;

	p->heartbeat_s = p->cfg->e2b_heartbeat_s;
	if (ep->cl == NULL)
		return;
	if (ep->in_backoff) {
		evtimer_del(ep->backoff_ev);
		ep->in_backoff = 0;
	}
	target = (unsigned)(p->cfg->e2b_pool_size > 0 ? p->cfg->e2b_pool_size : 0) + ep->demand;
	pool_e2b_counts(ep, &idle, &warming, &busy, &alive);
	for (sb = TAILQ_FIRST(&ep->sbxs); sb != NULL && idle > target; sb = next) {
		next = TAILQ_NEXT(sb, entry);
		if (sb->state == SB_IDLE && !sb->killing) {
			sb->state = SB_RELEASED;
			pool_e2b_kill(sb);
			idle--;
		}
	}
	pool_e2b_refill(ep);
}

static struct worker *pool_e2b_take(struct pool *p)
{
	struct e2b_pool *ep = pool_e2b_of(p);
	unsigned idle, warming, busy, alive;
	struct sbx *sb;

	if (ep->stopping || ep->cl == NULL)
		return NULL;
	TAILQ_FOREACH(sb, &ep->sbxs, entry)
	{
		if (sb->state == SB_IDLE && !sb->killing)
			break;
	}
	if (sb == NULL) {
		pool_e2b_counts(ep, &idle, &warming, &busy, &alive);
		if (warming == 0 && !ep->in_backoff && alive < (unsigned)p->cfg->e2b_max_sandboxes &&
		    ep->next_create_us <= time_mono_us())
			(void)pool_e2b_spawn(ep, 1);
		return NULL;
	}
	sb->state = SB_BUSY;
	sb->runs++;
	sb->w.warm = !sb->on_demand;
	pool_e2b_refill(ep);
	return &sb->w;
}

static void pool_e2b_stage_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	void (*done)(struct worker *, const char *, const char *, void *) = sb->stage_done;
	char why[600];

	sb->stage = NULL;
	sb->stage_done = NULL;
	if (done == NULL)
		return;
	if (err != NULL)
		done(&sb->w, NULL, e2b_error_str(err, why, sizeof(why)), sb->stage_arg);
	else
		done(&sb->w, SB_STAGED_BUNDLE, NULL, sb->stage_arg);
}

/* One /files upload of the stored bundle instead of the bundle inside
 * `prepare` (base64 in SendInput pieces of 2 MiB). */
static void pool_e2b_stage(struct worker *w, const char *bundle_file,
                           void (*done)(struct worker *w, const char *path, const char *err, void *arg), void *arg)
{
	struct sbx *sb = pool_e2b_sb(w);
	char why[PATH_MAX + 64];
	int fd;

	if ((fd = open(bundle_file, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(why, sizeof(why), "cannot open %s: %s", bundle_file, strerror(errno));
		done(w, NULL, why, arg);
		return;
	}
	sb->stage_done = done;
	sb->stage_arg = arg;
	sb->stage = e2b_files_upload(sb->ep->cl, &sb->info, SB_STAGED_BUNDLE, fd, pool_e2b_stage_cb, sb);
	close(fd); /* the upload keeps its own descriptor */
}

static int pool_e2b_fetch_data_cb(const uint8_t *buf, size_t len, void *arg)
{
	struct sbx *sb = arg;

	return sb->fetch_data != NULL ? sb->fetch_data(buf, len, sb->fetch_arg) : -1;
}

static void pool_e2b_fetch_cb(const struct e2b_error *err, void *arg)
{
	struct sbx *sb = arg;
	void (*done)(struct worker *, const char *, void *) = sb->fetch_done;
	char why[600];

	sb->fetch = NULL;
	sb->fetch_done = NULL;
	sb->fetch_data = NULL;
	if (done != NULL)
		done(&sb->w, err != NULL ? e2b_error_str(err, why, sizeof(why)) : NULL, sb->fetch_arg);
}

/* One /files download per artifact, streamed (instead of a `read` round
 * trip per 4 MiB, base64 inside the process stream). */
static void pool_e2b_fetch(struct worker *w, const char *path, int (*data)(const uint8_t *buf, size_t len, void *arg),
                           void (*done)(struct worker *w, const char *err, void *arg), void *arg)
{
	struct sbx *sb = pool_e2b_sb(w);

	pool_e2b_fetch_drop(sb);
	sb->fetch_done = done;
	sb->fetch_data = data;
	sb->fetch_arg = arg;
	sb->fetch = e2b_files_download(sb->ep->cl, &sb->info, path, pool_e2b_fetch_data_cb, pool_e2b_fetch_cb, sb);
}

static void pool_e2b_cancel(struct worker *w, int hard)
{
	pool_e2b_transport_kill(pool_e2b_sb(w), hard);
}

static void pool_e2b_release(struct worker *w)
{
	struct sbx *sb = pool_e2b_sb(w);

	if (sb->state == SB_RELEASED)
		return;
	sb->state = SB_RELEASED;
	sb->w.mask = NULL;
	pool_e2b_kill(sb);
	pool_e2b_refill(sb->ep);
}

/* e2b.sandbox_max_runs > 1: the worker is reset (the same wipe as
 * local.worker_max_runs) and the sandbox serves another run. */
static void pool_e2b_recycle(struct worker *w)
{
	struct sbx *sb = pool_e2b_sb(w);

	if (sb->state != SB_BUSY || sb->ep->stopping || sb->killing || sb->proc == NULL ||
	    sb->runs >= (unsigned)sb->ep->p->cfg->e2b_sandbox_max_runs) {
		pool_e2b_release(w);
		return;
	}
	pool_e2b_fetch_drop(sb);
	sb->state = SB_RESETTING;
	sb->on_demand = 0;
	sb->w.mask = NULL;
	if (wsess_reset(sb->w.sess) == -1)
		pool_e2b_release(w);
}

static void pool_e2b_status(struct pool *p, struct pool_info *out)
{
	struct e2b_pool *ep = pool_e2b_of(p);
	unsigned idle, warming, busy, alive;

	pool_e2b_counts(ep, &idle, &warming, &busy, &alive);
	memset(out, 0, sizeof(*out));
	out->backend = xstrdup("e2b");
	out->target = p->cfg->e2b_pool_size;
	out->idle = idle;
	out->warming = warming;
	out->busy = busy;
	out->max = p->cfg->e2b_max_sandboxes;
	out->failing = p->failure != NULL || p->unavailable != NULL;
	if (p->unavailable != NULL)
		out->last_error = xstrdup(p->unavailable);
	pool_starts_fill(&ep->starts, out);
	pool_latency_fill(&ep->lat, out);
}

static void pool_e2b_demand(struct pool *p, unsigned n)
{
	struct e2b_pool *ep = pool_e2b_of(p);

	if (ep->demand == n)
		return;
	ep->demand = n;
	pool_e2b_refill(ep);
}

/* -- re-attach after a restart ---------------------------------------------- */

static void pool_e2b_connect_cb(const struct e2b_error *err, const struct e2b_sandbox *sbx, void *arg)
{
	struct sbx *sb = arg;
	struct e2b_proc_cbs cbs = pool_e2b_proc_cbs_tmpl;
	struct e2b_proc_sel sel = {0, SB_TAG};
	char why[600], reason[700];

	sb->call = NULL;
	if (err != NULL) {
		if (err->http_status == 404)
			snprintf(reason, sizeof(reason), "sandbox %s no longer exists", sb->info.id);
		else
			snprintf(reason, sizeof(reason), "sandbox %s: connect failed: %s", sb->info.id,
			         e2b_error_str(err, why, sizeof(why)));
		pool_e2b_gone(sb, reason);
		return;
	}
	/* The answer carries the access token again: it is never stored. */
	e2b_sandbox_clear(&sb->info);
	e2b_sandbox_copy(&sb->info, sbx);
	sb->refreshed_us = time_mono_us();
	cbs.arg = sb;
	sb->proc = e2b_proc_connect(sb->ep->cl, &sb->info, sel, &cbs);
}

/* The sandbox a run used before the restart: E2B's connect (alive? its
 * access token, the TTL extended), then process Connect to the worker by
 * its tag. The session is adopted at once; what the run sends waits for
 * the stream (pool_e2b_write). */
static struct worker *pool_e2b_attach(struct pool *p, const char *id, char *err, size_t errlen)
{
	struct e2b_pool *ep = pool_e2b_of(p);
	struct sandbox_rec rec;
	struct sbx *sb;
	int rc;

	if (ep == NULL || ep->cl == NULL) {
		snprintf(err, errlen, "the e2b backend is not available%s%s", p->unavailable != NULL ? ": " : "",
		         p->unavailable != NULL ? p->unavailable : "");
		return NULL;
	}
	if (!e2b_sandbox_id_valid(id) || (rc = store_sandbox_get(osirisd.store, id, &rec)) == 1) {
		snprintf(err, errlen, "no record of sandbox %s", log_esc(id, 64));
		return NULL;
	}
	if (rc == -1) {
		snprintf(err, errlen, "its sandbox record cannot be read from the store");
		return NULL;
	}
	sb = pool_e2b_sbx_new(ep, SB_ATTACHING);
	snprintf(sb->info.id, sizeof(sb->info.id), "%s", rec.id);
	snprintf(sb->w.id, sizeof(sb->w.id), "%s", rec.id);
	if (rec.envd_version != NULL)
		snprintf(sb->info.envd_version, sizeof(sb->info.envd_version), "%s", rec.envd_version);
	sb->info.domain = rec.domain != NULL ? xstrdup(rec.domain) : NULL;
	sb->refreshed_us = time_mono_us();
	sb->runs = 1;
	sb->blind = 1;
	store_sandbox_rec_free(&rec);
	wsess_adopt(sb->w.sess);
	sb->call = e2b_sandbox_connect(ep->cl, sb->info.id, p->cfg->e2b_sandbox_timeout_s, pool_e2b_connect_cb, sb);
	log_info("sandbox=%s: re-attaching", sb->info.id);
	return &sb->w;
}

const struct pool_ops pool_e2b_ops = {
    .name = "e2b",
    .start = pool_e2b_start,
    .stop = pool_e2b_stop,
    .reload = pool_e2b_reload,
    .take = pool_e2b_take,
    .stage = pool_e2b_stage,
    .cancel = pool_e2b_cancel,
    .release = pool_e2b_release,
    .recycle = pool_e2b_recycle,
    .status = pool_e2b_status,
    .demand = pool_e2b_demand,
    .attach = pool_e2b_attach,
    .fetch = pool_e2b_fetch,
};
