/*
 * run.c: a run's life. queued -> starting (worker acquired) -> running
 * (prepare, exec_step per step in topological order, finish, artifacts) ->
 * succeeded | failed | cancelled | lost. Every record of the run's stream gets
 * its daemon seq here, goes to the store (batched) and to live followers.
 */
#include <sys/stat.h>

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osirisd.h"

#define RUN_HASH 4096
#define RUN_FLUSH_NOW 4096      /* pending records that force a commit at once */
#define RUN_FLUSH_RETRY_MS 1000 /* while commits fail (a full disk): how often to try again */

static struct {
	struct event_base *base;
	const struct config *cfg;
	TAILQ_HEAD(, run) runs;
	TAILQ_HEAD(, run) dirty;   /* runs with store writes not done yet */
	TAILQ_HEAD(, run) written; /* runs whose rows are in the batch being committed */
	int failing;               /* the last commit failed: retry every RUN_FLUSH_RETRY_MS */
	int stopping;              /* run_shutdown: the loop runs no more callbacks */
	size_t nruns;
	struct run *hash[RUN_HASH];
	struct event *flush_ev;
} rs;

static void run_next_step(struct run *r);
static void run_step_done_cb(struct worker *w, const struct rpc_msg *m, void *arg);
static void run_end(struct run *r, enum run_state state, const char *error);

/* -- registry ------------------------------------------------------------ */

static unsigned run_hash(const char *id)
{
	uint32_t h = 2166136261u;

	while (*id != '\0')
		h = (h ^ (uint8_t)*id++) * 16777619u;
	return h % RUN_HASH;
}

struct run *run_find(const char *id)
{
	struct run *r;

	for (r = rs.hash[run_hash(id)]; r != NULL; r = r->hnext) {
		if (strcmp(r->info.id, id) == 0)
			return r;
	}
	return NULL;
}

static void run_track(struct run *r)
{
	unsigned h = run_hash(r->info.id);

	r->hnext = rs.hash[h];
	rs.hash[h] = r;
	TAILQ_INSERT_TAIL(&rs.runs, r, entry);
	rs.nruns++;
	if (r->step_dirty == NULL)
		r->step_dirty = xcalloc(r->info.nsteps + 1, 1);
}

static void run_untrack(struct run *r)
{
	struct run **pp;

	for (pp = &rs.hash[run_hash(r->info.id)]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	}
	TAILQ_REMOVE(&rs.runs, r, entry);
	rs.nruns--;
}

size_t run_active_count(void)
{
	return rs.nruns;
}

struct run *run_alloc(void)
{
	struct run *r = xcalloc(1, sizeof(*r));

	TAILQ_INIT(&r->followers);
	r->art_fd = -1;
	r->art_src = -1;
	r->phase = PHASE_QUEUED;
	return r;
}

/* The submit message backs the run's bundle until prepare has sent it; it
 * holds the secrets' bytes too, so they are overwritten with it. */
static void run_submit_drop(struct run *r)
{
	if (r->submit_msg == NULL)
		return;
	rpc_msg_wipe(r->submit_msg);
	free(r->submit_msg);
	r->submit_msg = NULL;
}

void run_free(struct run *r)
{
	if (r == NULL)
		return;
	collect_abort(r);
	if (r->cancel_ev != NULL)
		event_free(r->cancel_ev);
	if (r->reap_ev != NULL)
		event_free(r->reap_ev);
	kvlist_wipe(&r->secrets);
	if (r->mask != NULL)
		mask_free(r->mask);
	bundle_free(&r->bundle);
	run_submit_drop(r);
	manifest_free(&r->man);
	free(r->manifest_path);
	free(r->workspace);
	free(r->fail_error);
	free(r->step_dirty);
	run_info_free(&r->info);
	free(r);
}

static void run_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_free(arg);
}

/* -- the record stream and store writes ------------------------------------ */
/*
 * Records, step rows and run rows reach SQLite in batches: a timer of
 * daemon.event_flush_ms commits what accumulated, so a fast step costs one
 * row write, not one per state change. Writes that must be durable before
 * anything else happens (submit, worker acquired, the end) are done at once.
 */

/* r's dirty rows into the open batch; r moves to the written list until
 * the batch's commit settles it. */
static void run_write_rows(struct run *r)
{
	size_t i;

	for (i = 0; i < r->info.nsteps; i++) {
		if (!r->step_dirty[i])
			continue;
		r->step_dirty[i] = 0;
		if (store_step_update(osirisd.store, r->info.id, &r->info.steps[i]) == -1)
			log_warnx("run=%s step=%s: cannot update the step in the store", r->info.id,
			          r->info.steps[i].id);
	}
	if (r->row_dirty) {
		r->row_dirty = 0;
		if (store_run_update(osirisd.store, &r->info) == -1)
			log_warnx("run=%s: cannot update the run in the store", r->info.id);
		if (r->phase == PHASE_DONE)
			(void)store_run_disk_bytes(osirisd.store, r->info.id, r->disk_bytes);
	}
	if (r->on_dirty)
		TAILQ_REMOVE(&rs.dirty, r, dirty_entry);
	r->on_dirty = 1;
	TAILQ_INSERT_TAIL(&rs.written, r, dirty_entry);
}

static void run_flush_arm(void)
{
	struct timeval tv;
	int ms = rs.failing ? RUN_FLUSH_RETRY_MS : rs.cfg->event_flush_ms;

	if (!evtimer_pending(rs.flush_ev, NULL)) {
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(rs.flush_ev, &tv);
	}
}

/*
 * The batch holding the written runs committed (ok) or not: a run whose
 * rows were lost is written whole again by the next flush (every write is
 * a whole row), so a full disk delays a run's rows, never loses them. A
 * run that ended meanwhile is freed once its rows are stored.
 */
static void run_settle(int ok)
{
	struct run *r;
	size_t i;

	if (ok != !rs.failing)
		(ok ? log_info : log_warnx)("store: %s", ok ? "commits work again"
		                                            : "commits fail: rows and records "
		                                              "kept in memory, retried every second");
	rs.failing = !ok;
	while ((r = TAILQ_FIRST(&rs.written)) != NULL) {
		TAILQ_REMOVE(&rs.written, r, dirty_entry);
		r->on_dirty = 0;
		if (!ok) {
			r->row_dirty = 1;
			for (i = 0; i < r->info.nsteps; i++)
				r->step_dirty[i] = 1;
			r->on_dirty = 1;
			TAILQ_INSERT_TAIL(&rs.dirty, r, dirty_entry);
		} else if (r->reap_when_saved && rs.stopping) {
			run_free(r);
		} else if (r->reap_when_saved) {
			event_active(r->reap_ev, EV_TIMEOUT, 0);
		}
	}
	if (!ok)
		run_flush_arm();
}

static void run_write_dirty(struct run *r)
{
	store_batch_begin(osirisd.store); /* the run's rows: one transaction */
	run_write_rows(r);
	run_settle(store_batch_end(osirisd.store) == 0);
}

static void run_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r;
	int ok;

	(void)fd;
	(void)what;
	(void)arg;
	/* every dirty row and the pending records: one transaction */
	store_batch_begin(osirisd.store);
	while ((r = TAILQ_FIRST(&rs.dirty)) != NULL)
		run_write_rows(r);
	if (store_pending(osirisd.store) > 0 && store_flush(osirisd.store) == -1 && !rs.failing)
		log_warnx("store: event batch commit failed");
	ok = store_batch_end(osirisd.store) == 0;
	if (!ok && !rs.failing)
		log_warnx("store: batch commit failed");
	run_settle(ok && store_pending(osirisd.store) == 0);
}

static void run_flush_later(void)
{
	if (store_pending(osirisd.store) > RUN_FLUSH_NOW && !rs.failing) {
		if (store_flush(osirisd.store) == -1)
			log_warnx("store: event batch commit failed");
	}
	run_flush_arm();
}

void run_event_add(struct run *r, struct event_rec *e)
{
	e->seq = ++r->info.last_seq;
	if (e->ts == 0)
		e->ts = time_now_ms();
	if (store_event_add(osirisd.store, r->info.id, e) == -1) {
		log_warnx("run=%s: cannot store record seq=%lld", r->info.id, (long long)e->seq);
		run_fail(r, store_full(osirisd.store) ? "state dir full: records of the run could not be stored"
		                                      : "a record of the run could not be stored");
	}
	follow_push(r, e);
	run_flush_later();
}

void run_event_daemon(struct run *r, const char *name, const char *step_id, const struct buf *data)
{
	struct event_rec e;

	memset(&e, 0, sizeof(e));
	e.ts = time_now_ms();
	e.kind = REC_EVENT;
	e.daemon_origin = 1;
	e.name = (char *)(uintptr_t)name;
	e.step_id = (char *)(uintptr_t)step_id;
	e.data = data != NULL ? data->data : NULL;
	e.data_len = data != NULL ? data->len : 0;
	run_event_add(r, &e);
}

static void run_mark_dirty(struct run *r)
{
	if (!r->on_dirty) {
		r->on_dirty = 1;
		TAILQ_INSERT_TAIL(&rs.dirty, r, dirty_entry);
	}
	run_flush_later();
}

static void run_save(struct run *r)
{
	r->row_dirty = 1;
	run_mark_dirty(r);
}

static void run_save_now(struct run *r)
{
	r->row_dirty = 1;
	run_write_dirty(r);
}

static void run_step_save(struct run *r, const struct step_info *s)
{
	r->step_dirty[s - r->info.steps] = 1;
	run_mark_dirty(r);
}

void run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	r->failed = 1;
	if (r->fail_error != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&r->fail_error, fmt, ap) == -1)
		fatalx("vasprintf: out of memory");
	va_end(ap);
}

/* -- queueing ------------------------------------------------------------ */

void run_register(struct run *r)
{
	msgpack_packer pk;
	struct buf b;

	run_track(r);
	r->queued_us = time_mono_us();
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "backend", r->info.backend);
	mp_pack_kint(&pk, "priority", r->info.priority);
	run_event_daemon(r, "run_queued", NULL, &b);
	buf_free(&b);
	log_info("run=%s queued backend=%s priority=%lld steps=%zu uid=%lld", r->info.id, r->info.backend,
	         (long long)r->info.priority, r->info.nsteps, (long long)r->info.uid);
	sched_enqueue(r);
}

/* -- worker side -------------------------------------------------------- */

/* A step that ends without a result from the worker (killed, cancelled):
 * its duration is what the daemon saw. */
static void run_step_stop(struct step_info *s, enum step_state state)
{
	s->state = state;
	s->finished_at = time_now_ms();
	if (s->duration_ms == 0 && s->started_at > 0)
		s->duration_ms = s->finished_at - s->started_at;
}

static struct step_info *run_cur_step(struct run *r)
{
	return r->cur < r->man.nsteps ? &r->info.steps[r->man.order[r->cur]] : NULL;
}

static const char *run_rpc_error_message(const msgpack_object *error)
{
	const msgpack_object *m = mp_get(error, "message");
	static char msg[512];

	if (m == NULL || m->type != MSGPACK_OBJECT_STR)
		return "worker returned an error";
	snprintf(msg, sizeof(msg), "%.*s", (int)(m->via.str.size < 500 ? m->via.str.size : 500), m->via.str.ptr);
	return msg;
}

static void run_worker_notify_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	static struct buf scratch; /* the record's strings and data, reused */
	struct run *r = arg;
	struct event_rec e;
	char err[256];

	(void)w;
	if (strcmp(m->method, "event") != 0 && strcmp(m->method, "metric") != 0 && strcmp(m->method, "log") != 0) {
		log_debug("run=%s worker=%s: ignoring notification %s", r->info.id, r->info.worker,
		          log_esc(m->method, 64));
		return;
	}
	if (m->params == NULL || event_rec_decode_buf(m->params, m->method, &e, &scratch, err, sizeof(err)) == -1) {
		log_warnx("run=%s worker=%s: bad %s notification: %s", r->info.id, r->info.worker, m->method,
		          m->params == NULL ? "no params" : err);
		return;
	}
	e.daemon_origin = 0;
	e.wseq = e.seq; /* the worker's; run_event_add gives the daemon's */
	if (r->reattached && e.wseq != r->wseq_last + 1) {
		/* Re-attached: live records overtake the replay of those said
		 * while nobody listened, and the replay repeats stored ones;
		 * only the next one in the worker's order is taken, so the
		 * stream has no gap and no duplicate. (e lives in scratch.) */
		return;
	}
	r->wseq_last = e.wseq;
	run_event_add(r, &e);
	if (scratch.cap > 65536) /* a huge record should not pin its peak */
		buf_free(&scratch);
}

/* Our own worker broke the protocol (the session has it killed; `gone`
 * then fails the step), or stopped answering pings (`gone` says so). */
static void run_worker_error_cb(struct worker *w, const char *why, void *arg)
{
	struct run *r = arg;

	if (!wsess_unresponsive(w->sess))
		run_fail(r, "worker protocol error: %s", why);
}

static void run_worker_gone_cb(struct worker *w, const char *reason, void *arg)
{
	struct run *r = arg;
	struct step_info *s;
	char what[256];

	if (wsess_unresponsive(w->sess))
		snprintf(what, sizeof(what), "worker stopped responding");
	else
		snprintf(what, sizeof(what), "worker exited unexpectedly (%s)", reason);
	log_info("run=%s worker=%s gone (%s)", r->info.id, r->info.worker, reason);
	switch (r->phase) {
	case PHASE_ATTACH: {
		char *why;
		xasprintf(&why, "daemon restarted; cannot re-attach to worker %s: %s", r->info.worker, reason);
		run_end(r, r->cancel_requested ? RUN_CANCELLED : RUN_LOST, why);
		free(why);
		return;
	}
	case PHASE_PREPARE:
		run_fail(r, "%s during prepare", what);
		break;
	case PHASE_STEPS:
		s = run_cur_step(r);
		if (s != NULL && s->state == STEP_RUNNING) {
			run_step_stop(s, r->cancel_requested ? STEP_CANCELLED : STEP_FAILED);
			if (!r->cancel_requested) {
				free(s->error);
				xasprintf(&s->error, "%s during step %s", what, s->id);
				run_fail(r, "%s", s->error);
			}
			run_step_save(r, s);
		} else {
			run_fail(r, "%s", what);
		}
		break;
	default:
		run_fail(r, "%s while collecting artifacts", what);
		break;
	}
	run_end(r, r->cancel_requested ? RUN_CANCELLED : RUN_FAILED, r->cancel_requested ? "cancelled" : r->fail_error);
}

/* The request could not be sent: the worker is going away; make sure it
 * does, `gone` ends the run. */
static void run_send_failed(struct run *r, const char *method)
{
	log_warnx("run=%s worker=%s: cannot send %s", r->info.id, r->info.worker, method);
	if (r->worker != NULL)
		r->pool->ops->cancel(r->worker, 1);
}

static void run_cancel_arm(struct run *r)
{
	struct timeval tv = {rs.cfg->cancel_grace_ms / 1000, (rs.cfg->cancel_grace_ms % 1000) * 1000};

	evtimer_add(r->cancel_ev, &tv);
}

/* Cancel escalates one daemon.cancel_grace_ms at a time: the `cancel`
 * request, then SIGTERM to the worker (it interrupts a driver blocked in a
 * system call), then SIGKILL. */
static void run_cancel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	if (r->worker == NULL)
		return;
	if (r->cancel_stage == 0) {
		log_info("run=%s worker=%s did not stop within %d ms of cancel, sending SIGTERM", r->info.id,
		         r->info.worker, rs.cfg->cancel_grace_ms);
		r->cancel_stage = 1;
		r->pool->ops->cancel(r->worker, 0);
		run_cancel_arm(r);
		return;
	}
	if (r->cancel_stage == 1) {
		log_info("run=%s worker=%s did not stop within %d ms of SIGTERM, killing it", r->info.id,
		         r->info.worker, rs.cfg->cancel_grace_ms);
		r->cancel_stage = 2;
		r->pool->ops->cancel(r->worker, 1);
		run_cancel_arm(r);
		return;
	}
	/* A kill that did not take (a remote backend that cannot be reached):
	 * the run does not wait for it; the worker goes back to its pool,
	 * which discards it. Bounds cancel -> final at 3 x cancel_grace_ms. */
	log_warnx("run=%s worker=%s still there %d ms after the kill; ending the run without it", r->info.id,
	          r->info.worker, rs.cfg->cancel_grace_ms);
	run_end(r, RUN_CANCELLED, "cancelled (the worker could not be stopped)");
}

/* -- the state machine ---------------------------------------------------- */

static void run_finish_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	struct run *r = arg;

	(void)w;
	if (m->error != NULL) {
		log_warnx("run=%s: finish failed: %s", r->info.id, run_rpc_error_message(m->error));
		run_collected(r);
		return;
	}
	r->phase = PHASE_ARTIFACTS;
	collect_finish_result(r, m->result);
}

static void run_finish(struct run *r)
{
	msgpack_packer *pk;

	if (r->cancel_requested) {
		run_end(r, RUN_CANCELLED, "cancelled");
		return;
	}
	r->phase = PHASE_FINISH;
	pk = wsess_begin(r->worker->sess, "finish");
	msgpack_pack_map(pk, 1);
	mp_pack_key(pk, "failed");
	if (r->failed)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	if (wsess_end(r->worker->sess, run_finish_cb, r) == -1)
		run_send_failed(r, "finish");
}

void run_collected(struct run *r)
{
	run_end(r, r->failed ? RUN_FAILED : RUN_SUCCEEDED, r->fail_error);
}

/* The worker's answer for a step becomes the step's (res is consumed). */
static void run_step_take(struct step_info *s, struct step_result *res)
{
	s->state = res->state;
	s->rows_in = res->rows_in;
	s->rows_out = res->rows_out;
	s->duration_ms = res->duration_ms;
	free(s->error);
	free(s->error_type);
	s->error = res->error;
	s->error_type = res->error_type;
	res->error = res->error_type = NULL;
	step_result_free(res);
}

static void run_step_result(struct step_info *s, const struct rpc_msg *m)
{
	struct step_result res;
	char err[256];

	if (m->error != NULL) {
		s->state = STEP_FAILED;
		free(s->error);
		s->error = xstrdup(run_rpc_error_message(m->error));
		return;
	}
	if (m->result == NULL || step_result_decode(m->result, &res, err, sizeof(err)) == -1) {
		s->state = STEP_FAILED;
		free(s->error);
		xasprintf(&s->error, "bad exec_step result from the worker: %s", m->result == NULL ? "none" : err);
		return;
	}
	run_step_take(s, &res);
}

/* A step that did not succeed fails the run (a cancel asked for does not). */
static void run_step_outcome(struct run *r, const struct step_info *s)
{
	if (s->state == STEP_FAILED)
		run_fail(r, "step %s failed: %s", s->id, s->error != NULL ? s->error : "no reason given");
	else if (s->state == STEP_CANCELLED && !r->cancel_requested)
		run_fail(r, "step %s was cancelled", s->id);
}

static void run_step_done_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	struct run *r = arg;
	struct step_info *s = run_cur_step(r);

	(void)w;
	/* a pipelined request answered after the run stopped: the worker
	 * skipped it */
	if (s == NULL || r->phase != PHASE_STEPS)
		return;
	run_step_result(s, m);
	if (s->error != NULL && r->mask != NULL && mask_count(r->mask) > 0) {
		/* The worker masks; this keeps a slip out of the store and logs. */
		char *masked = mask_apply(r->mask, s->error);
		free(s->error);
		s->error = masked;
	}
	s->finished_at = time_now_ms();
	if (s->state == STEP_RUNNING || s->state == STEP_PENDING || s->state == STEP_SKIPPED)
		s->state = STEP_FAILED; /* not a final answer: treat as failure */
	run_step_save(r, s);
	/* Successes are routine (debug); anything else is worth a line at info. */
	(s->state == STEP_SUCCEEDED ? log_debug : log_info)(
	    "run=%s step=%s %s rows_in=%lld rows_out=%lld duration_ms=%lld%s%s", r->info.id, s->id,
	    step_state_name(s->state), (long long)s->rows_in, (long long)s->rows_out, (long long)s->duration_ms,
	    s->error != NULL ? " error=" : "", s->error != NULL ? log_esc(s->error, 200) : "");
	run_step_outcome(r, s);
	r->cur++;
	run_next_step(r);
}

/* After a failure nothing else starts: the rest is skipped. */
static void run_skip_rest(struct run *r)
{
	size_t i;

	for (i = 0; i < r->info.nsteps; i++) {
		struct step_info *s = &r->info.steps[i];
		if (s->state == STEP_PENDING) {
			s->state = STEP_SKIPPED;
			run_step_save(r, s);
		}
	}
}

static int run_send_exec(struct run *r, size_t pos)
{
	msgpack_packer *pk = wsess_begin(r->worker->sess, "exec_step");

	msgpack_pack_map(pk, r->pipeline ? 2 : 1);
	mp_pack_kstr(pk, "step_id", r->info.steps[r->man.order[pos]].id);
	if (r->pipeline) {
		/* a request sent ahead must not run behind a failure */
		mp_pack_key(pk, "skip_if_failed");
		msgpack_pack_true(pk);
	}
	if (wsess_end(r->worker->sess, run_step_done_cb, r) == -1) {
		run_send_failed(r, "exec_step");
		return -1;
	}
	r->sent = pos + 1;
	return 0;
}

/*
 * The step at `cur` starts now (for the worker it starts once the previous
 * one answered). With a worker that skips exec_step after a failure, the
 * next step's request goes out at once too, so the worker never waits for
 * a round trip between two steps; the step only counts as running here once
 * the one before it answered, as without pipelining.
 */
static void run_next_step(struct run *r)
{
	struct step_info *s;

	r->phase = PHASE_STEPS;
	if (r->failed || r->cancel_requested) {
		run_skip_rest(r);
		run_finish(r);
		return;
	}
	if ((s = run_cur_step(r)) == NULL) {
		run_finish(r);
		return;
	}
	s->state = STEP_RUNNING;
	s->started_at = time_now_ms();
	run_step_save(r, s);
	log_debug("run=%s step=%s running driver=%s", r->info.id, s->id, s->driver);
	if (r->sent <= r->cur && run_send_exec(r, r->cur) == -1)
		return;
	if (r->pipeline && r->sent == r->cur + 1 && r->sent < r->man.nsteps)
		(void)run_send_exec(r, r->sent);
}

/* Where the worker's files are (`prepare` and `status` say), for
 * pool_ops.fetch; anything but an absolute path: unknown, files are `read`. */
static void run_take_workspace(struct run *r, const msgpack_object *result)
{
	free(r->workspace);
	r->workspace = NULL;
	if (mp_get_str(result, "workspace", &r->workspace) != 0 || r->workspace == NULL || r->workspace[0] != '/') {
		free(r->workspace);
		r->workspace = NULL;
	}
}

static void run_prepare_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	struct run *r = arg;

	(void)w;
	log_debug("run=%s prepared in %lld us (%lld us since queued)", r->info.id,
	          (long long)(time_mono_us() - r->prepare_us), (long long)(time_mono_us() - r->queued_us));
	if (m->error != NULL) {
		run_fail(r, "prepare failed: %s", run_rpc_error_message(m->error));
		run_skip_rest(r);
		run_end(r, r->cancel_requested ? RUN_CANCELLED : RUN_FAILED, r->fail_error);
		return;
	}
	r->info.state = RUN_RUNNING;
	run_save(r);
	r->cur = r->sent = 0;
	r->pipeline = 0;
	if (m->result != NULL) {
		(void)mp_get_bool(m->result, "pipeline", &r->pipeline);
		run_take_workspace(r, m->result);
	}
	run_next_step(r);
}

/* The bundle travels inline, or was staged where the worker reads it
 * (bundle_path); afterwards the run no longer needs it (nor the secret
 * values: the mask keeps what log masking needs). */
static int run_send_prepare(struct run *r, const char *bundle_path)
{
	struct kvlist extra;
	struct msg_prepare m;
	size_t i;
	int rc;

	memset(&m, 0, sizeof(m));
	m.run_id = r->info.id;
	m.bundle = r->bundle;
	m.bundle_path = (char *)(uintptr_t)bundle_path;
	m.manifest = r->manifest_path;
	m.env = r->info.env;
	/* the run's secrets, then what connfile.c resolved for it */
	memset(&extra, 0, sizeof(extra));
	for (i = 0; i < r->secrets.n; i++)
		kvlist_add(&extra, r->secrets.v[i].key, r->secrets.v[i].value);
	connfile_run_secrets(r, &extra);
	m.secrets = extra;
	msg_prepare_pack(wsess_begin(r->worker->sess, "prepare"), &m);
	rc = wsess_end(r->worker->sess, run_prepare_cb, r);
	kvlist_wipe(&extra);
	bundle_free(&r->bundle);
	run_submit_drop(r);
	kvlist_wipe(&r->secrets);
	return rc;
}

/* A context this large goes to a remote worker as one file upload (the
 * pool's stage op) instead of inside `prepare`. */
#define RUN_STAGE_MIN_BYTES (1024 * 1024)

static void run_staged_cb(struct worker *w, const char *path, const char *err, void *arg)
{
	struct run *r = arg;

	(void)w;
	if (r->phase != PHASE_PREPARE)
		return;
	if (err != NULL) {
		run_fail(r, "staging the run context failed: %s", err);
		run_skip_rest(r);
		run_end(r, r->cancel_requested ? RUN_CANCELLED : RUN_FAILED, r->fail_error);
		return;
	}
	log_debug("run=%s context staged at %s in %lld us", r->info.id, path,
	          (long long)(time_mono_us() - r->prepare_us));
	if (run_send_prepare(r, path) == -1)
		run_send_failed(r, "prepare");
}

/* Large contexts are staged by a backend that can (one upload), the rest
 * travels inside `prepare`. */
static void run_prepare(struct run *r)
{
	r->phase = PHASE_PREPARE;
	r->prepare_us = time_mono_us();
	if (r->pool->ops->stage != NULL && r->bundle.total >= RUN_STAGE_MIN_BYTES) {
		char *file = rundir_bundle(r->info.id);
		r->pool->ops->stage(r->worker, file, run_staged_cb, r);
		free(file);
	} else if (run_send_prepare(r, NULL) == -1) {
		run_send_failed(r, "prepare");
	}
}

static void run_acquired_event(struct run *r, struct worker *w, int64_t wait_ms)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	msgpack_pack_map(&pk, 4);
	mp_pack_kstr(&pk, "backend", r->info.backend);
	mp_pack_key(&pk, "warm");
	if (w->warm)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	mp_pack_kint(&pk, "wait_ms", wait_ms);
	mp_pack_kstr(&pk, "worker", w->id);
	run_event_daemon(r, "worker_acquired", NULL, &b);
	buf_free(&b);
}

static const struct wsess_user run_wsess_user = {
    .notify = run_worker_notify_cb,
    .error = run_worker_error_cb,
    .gone = run_worker_gone_cb,
};

void run_start(struct run *r, struct worker *w)
{
	int64_t wait_ms = (time_mono_us() - r->queued_us) / 1000;

	r->has_slot = 1;
	r->worker = w;
	r->phase = PHASE_PREPARE;
	r->info.state = RUN_STARTING;
	r->info.started_at = time_now_ms();
	free(r->info.worker);
	r->info.worker = xstrdup(w->id);
	w->mask = r->mask;
	wsess_attach(w->sess, &run_wsess_user, r);
	run_acquired_event(r, w, wait_ms);
	log_info("run=%s worker=%s acquired (%s, waited %lld ms)", r->info.id, w->id, w->warm ? "warm" : "cold",
	         (long long)wait_ms);
	r->cancel_ev = evtimer_new(rs.base, run_cancel_timer_cb, r);
	if (r->cancel_ev == NULL)
		fatalx("run_start: event_new");
	run_prepare(r);
	/* Durable before any step can run (prepare executes nothing); the
	 * commit overlaps with the worker unpacking the bundle. */
	run_save_now(r);
}

/* -- the end ------------------------------------------------------------- */

static void run_close_steps(struct run *r, enum run_state state)
{
	size_t i;

	for (i = 0; i < r->info.nsteps; i++) {
		struct step_info *s = &r->info.steps[i];
		if (s->state == STEP_RUNNING) {
			run_step_stop(s, state == RUN_CANCELLED ? STEP_CANCELLED : STEP_FAILED);
			run_step_save(r, s);
		} else if (s->state == STEP_PENDING) {
			s->state = STEP_SKIPPED;
			run_step_save(r, s);
		}
	}
}

static void run_end_event(struct run *r)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	msgpack_pack_map(&pk, r->info.error != NULL ? 3 : 2);
	mp_pack_kstr(&pk, "state", run_state_name(r->info.state));
	mp_pack_kint(&pk, "exit_code", r->info.exit_code);
	if (r->info.error != NULL)
		mp_pack_kstr(&pk, "error", r->info.error);
	run_event_daemon(r, "run_end", NULL, &b);
	buf_free(&b);
}

static void run_end(struct run *r, enum run_state state, const char *error)
{
	if (r->phase == PHASE_DONE)
		return;
	r->phase = PHASE_DONE;
	if (r->cancel_ev != NULL)
		evtimer_del(r->cancel_ev);
	collect_abort(r);
	if (r->worker != NULL) {
		/* Only a clean success may hand its worker to another run: a
		 * failed, cancelled or unresponsive one is released (a zygote's
		 * sandbox outlives it: the pool ends only the run's process). */
		wsess_detach(r->worker->sess);
		if (state == RUN_SUCCEEDED && !r->failed && !r->cancel_requested && r->pool->ops->recycle != NULL)
			r->pool->ops->recycle(r->worker);
		else
			r->pool->ops->release(r->worker);
		r->worker = NULL;
	}
	run_close_steps(r, state);
	r->info.state = state;
	r->info.exit_code = state == RUN_SUCCEEDED ? 0 : 1;
	r->info.has_exit_code = 1;
	r->info.finished_at = time_now_ms();
	if (state != RUN_SUCCEEDED && error != NULL && r->info.error == NULL)
		r->info.error = xstrdup(error);
	run_end_event(r);
	run_save_now(r);
	log_info("run=%s %s%s%s", r->info.id, run_state_name(state), r->info.error != NULL ? " error=" : "",
	         r->info.error != NULL ? log_esc(r->info.error, 300) : "");
	follow_run_end(r);
	run_untrack(r);
	prune_run_ended();
	if (r->has_slot) {
		r->has_slot = 0;
		sched_run_done(r);
	}
	r->reap_ev = event_new(rs.base, -1, 0, run_reap_cb, r);
	if (r->reap_ev == NULL)
		fatalx("run_end: event_new");
	if (r->on_dirty)
		r->reap_when_saved = 1; /* run_settle frees it once its rows are stored */
	else
		event_active(r->reap_ev, EV_TIMEOUT, 0);
}

void run_cancel(struct run *r)
{
	switch (r->phase) {
	case PHASE_QUEUED:
		sched_remove(r);
		log_info("run=%s cancelled while queued", r->info.id);
		run_end(r, RUN_CANCELLED, "cancelled");
		break;
	case PHASE_ATTACH:
	case PHASE_PREPARE:
	case PHASE_STEPS:
		if (r->cancel_requested || r->worker == NULL)
			break;
		r->cancel_requested = 1;
		log_info("run=%s worker=%s cancelling", r->info.id, r->info.worker);
		msgpack_pack_map(wsess_begin(r->worker->sess, "cancel"), 0);
		if (wsess_end(r->worker->sess, NULL, NULL) == -1) {
			r->cancel_stage = 1; /* no way to ask: signal at once */
			r->pool->ops->cancel(r->worker, 0);
		}
		run_cancel_arm(r);
		break;
	default:
		break; /* collecting or done: too late to cancel */
	}
}

void run_fail_queued(struct run *r, const char *error)
{
	if (r->phase != PHASE_QUEUED)
		return;
	sched_remove(r);
	run_end(r, RUN_FAILED, error);
}

void run_cancel_all(void)
{
	struct run *r, *next;

	for (r = TAILQ_FIRST(&rs.runs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (r->has_slot)
			run_cancel(r);
	}
}

/* -- start and stop ------------------------------------------------------ */

int run_init(struct event_base *base, const struct config *cfg)
{
	rs.base = base;
	rs.cfg = cfg;
	TAILQ_INIT(&rs.runs);
	TAILQ_INIT(&rs.dirty);
	TAILQ_INIT(&rs.written);
	rs.flush_ev = evtimer_new(base, run_flush_cb, NULL);
	return rs.flush_ev == NULL ? -1 : 0;
}

void run_shutdown(void)
{
	struct run *r;

	rs.stopping = 1;
	/* Queued runs stay queued in the store: the next start schedules them. */
	while ((r = TAILQ_FIRST(&rs.runs)) != NULL) {
		run_write_dirty(r);
		if (r->on_dirty) { /* not stored: a full disk */
			TAILQ_REMOVE(&rs.dirty, r, dirty_entry);
			r->on_dirty = 0;
		}
		if (r->queued)
			sched_remove(r);
		if (r->worker != NULL) {
			wsess_detach(r->worker->sess);
			r->pool->ops->release(r->worker);
			r->worker = NULL;
		}
		follow_run_end(r);
		run_untrack(r);
		run_free(r);
	}
	/* Ended runs whose rows could not be stored: a last try, then they go
	 * (the store keeps them running; the next start marks them lost). */
	store_batch_begin(osirisd.store);
	while ((r = TAILQ_FIRST(&rs.dirty)) != NULL)
		run_write_rows(r);
	run_settle(store_batch_end(osirisd.store) == 0);
	while ((r = TAILQ_FIRST(&rs.dirty)) != NULL) {
		TAILQ_REMOVE(&rs.dirty, r, dirty_entry);
		r->on_dirty = 0;
		log_warnx("run=%s: its final state could not be stored before exit", r->info.id);
		if (r->reap_when_saved)
			run_free(r);
	}
	if (store_pending(osirisd.store) > 0)
		store_flush(osirisd.store);
	if (rs.flush_ev != NULL)
		event_free(rs.flush_ev);
	rs.flush_ev = NULL;
}

/* -- crash recovery ------------------------------------------------------ */

static void run_recover_lost(struct run_info *ri, const char *why)
{
	size_t i;

	for (i = 0; i < ri->nsteps; i++) {
		struct step_info *s = &ri->steps[i];
		if (s->state == STEP_RUNNING) {
			s->state = STEP_FAILED;
			free(s->error);
			s->error = xstrdup(why);
		} else if (s->state == STEP_PENDING) {
			s->state = STEP_SKIPPED;
		} else {
			continue;
		}
		if (store_step_update(osirisd.store, ri->id, s) == -1)
			log_warnx("run=%s step=%s: cannot update the step in the store", ri->id, s->id);
	}
	ri->state = RUN_LOST;
	ri->exit_code = 1;
	ri->has_exit_code = 1;
	ri->finished_at = time_now_ms();
	free(ri->error);
	ri->error = xstrdup(why);
	if (store_run_update(osirisd.store, ri) == -1)
		log_warnx("run=%s: cannot update the run in the store", ri->id);
	log_warnx("run=%s lost: %s", ri->id, why);
}

/* The row's last_seq may lag records committed after it (events are
 * batched apart from row updates): the stream must go on after the last
 * stored record, or every new record collides with a stored one. */
static int run_recover_last_seq(struct run_info *ri)
{
	int64_t max;

	if (store_event_last_seq(osirisd.store, ri->id, &max) == -1)
		return -1;
	if (max > ri->last_seq)
		ri->last_seq = max;
	return 0;
}

/* A run that had not started: load its bundle and manifest again. */
static int run_recover_load(struct run *r, char *err, size_t errlen)
{
	char *path = rundir_manifest(r->info.id);
	const struct bundle_file *mf;
	struct stat st;
	struct buf mp;
	int rc = -1;

	buf_init(&mp);
	if (file_read_all(path, 4096, &mp) == 0 && mp.len > 0)
		r->manifest_path = xstrdup(buf_cstr(&mp));
	else
		r->manifest_path = xstrdup("manifest.yaml");
	free(path);
	path = rundir_bundle(r->info.id);
	if (bundle_load(&r->bundle, path, (size_t)rs.cfg->max_context_bytes, err, errlen) == -1)
		goto out;
	if (stat(path, &st) == 0)
		r->disk_bytes = RUNDIR_OVERHEAD + rundir_bytes(st.st_size);
	if ((mf = bundle_find(&r->bundle, r->manifest_path)) == NULL) {
		snprintf(err, errlen, "%s: missing from the stored bundle", r->manifest_path);
		goto out;
	}
	/* Its drivers were checked at submit; a worker that lost one since
	 * refuses it at `prepare`. */
	if (manifest_parse(&r->man, (const char *)mf->data, mf->len, NULL, err, errlen) == -1)
		goto out;
	if (pool_lookup(r->info.backend, &r->pool, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	buf_free(&mp);
	free(path);
	return rc;
}

static void run_recover_queued(const char *id)
{
	struct run *r = run_alloc();
	char err[512];

	if (store_run_get(osirisd.store, id, &r->info) != 0) {
		run_free(r);
		return;
	}
	if (r->info.nsecret_names > 0) {
		run_recover_lost(&r->info, "secrets are not persisted across daemon restarts; resubmit");
		run_free(r);
		return;
	}
	if (run_recover_load(r, err, sizeof(err)) == -1) {
		char *why;
		xasprintf(&why, "cannot reschedule after a daemon restart: %s", err);
		run_recover_lost(&r->info, why);
		free(why);
		run_free(r);
		return;
	}
	if (run_recover_last_seq(&r->info) == -1) {
		run_recover_lost(&r->info, "cannot reschedule after a daemon restart: its records cannot be read from "
		                           "the store (last seq unknown)");
		run_free(r);
		return;
	}
	run_track(r);
	r->queued_us = time_mono_us();
	log_info("run=%s rescheduled after restart", id);
	sched_enqueue(r);
}

/* -- re-attach: a run whose worker outlived the daemon ---------------------- */

static void run_attach_lost(struct run *r, const char *fmt, ...) PRINTFLIKE(2, 3);

static void run_attach_lost(struct run *r, const char *fmt, ...)
{
	va_list ap;
	char why[600], *msg;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	xasprintf(&msg, "daemon restarted; cannot re-attach to worker %s: %s", r->info.worker, why);
	run_end(r, r->cancel_requested ? RUN_CANCELLED : RUN_LOST, msg);
	free(msg);
}

/* The records said while nobody listened came with the replay (the
 * notify callback took them in order); the answer says whether the
 * worker's journal still held all of them. */
static void run_replay_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	struct run *r = arg;
	int64_t first = 0, last = 0;

	(void)w;
	if (r->phase != PHASE_ATTACH)
		return;
	if (m->error != NULL) {
		run_attach_lost(r, "replay failed: %s", run_rpc_error_message(m->error));
		return;
	}
	if (m->result == NULL || mp_get_int(m->result, "first_seq", &first) < 0 ||
	    mp_get_int(m->result, "last_seq", &last) < 0) {
		run_attach_lost(r, "bad replay answer from the worker");
		return;
	}
	if (r->wseq_last < last)
		run_attach_lost(r, "the worker's journal no longer holds its records %lld to %lld",
		                (long long)r->wseq_last + 1, (long long)(first > 0 ? first - 1 : last));
}

/* The worker's answers for the steps it executed (status.steps). */
static int run_attach_steps(struct run *r, const msgpack_object *steps)
{
	struct step_result res;
	char err[256];
	size_t i;

	if (steps == NULL || steps->type != MSGPACK_OBJECT_MAP)
		return -1;
	for (i = 0; i < r->info.nsteps; i++) {
		struct step_info *s = &r->info.steps[i];
		const msgpack_object *o = mp_get(steps, s->id);

		if (o == NULL) {
			if (s->state == STEP_RUNNING) /* its exec_step never reached the worker */
				s->state = STEP_PENDING;
			continue;
		}
		if (step_result_decode(o, &res, err, sizeof(err)) == -1) {
			log_warnx("run=%s step=%s: bad status from the worker: %s", r->info.id, s->id, err);
			return -1;
		}
		run_step_take(s, &res);
		if (s->finished_at == 0)
			s->finished_at = time_now_ms();
		run_step_save(r, s);
		run_step_outcome(r, s);
	}
	return 0;
}

/* Where the worker is: not prepared (prepare again, unless the run's
 * secrets were needed: they are not kept), steps done (go on with the next
 * one), or finished (ask for the artifact list again). */
static void run_status_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	struct run *r = arg;
	char *run_id = NULL;
	int prepared = 0, finished = 0;

	(void)w;
	if (r->phase != PHASE_ATTACH)
		return;
	if (m->error != NULL || m->result == NULL) {
		run_attach_lost(r, "status failed: %s",
		                m->error != NULL ? run_rpc_error_message(m->error) : "no answer");
		return;
	}
	if (mp_get_bool(m->result, "prepared", &prepared) < 0 || mp_get_bool(m->result, "finished", &finished) < 0 ||
	    mp_get_str(m->result, "run_id", &run_id) < 0) {
		free(run_id);
		run_attach_lost(r, "bad status answer from the worker");
		return;
	}
	log_info("run=%s re-attached to worker=%s (%s, up to worker seq %lld)", r->info.id, r->info.worker,
	         !prepared  ? "not prepared"
	         : finished ? "finished"
	                    : "prepared",
	         (long long)r->wseq_last);
	if (!prepared) {
		free(run_id);
		if (r->info.nsecret_names > 0) {
			run_attach_lost(r, "its worker had not been prepared, and the run's secrets are not kept "
			                   "across restarts; resubmit");
			return;
		}
		run_prepare(r);
		return;
	}
	if (run_id == NULL || strcmp(run_id, r->info.id) != 0) {
		run_attach_lost(r, "the worker holds another run (%s)", run_id != NULL ? log_esc(run_id, 64) : "none");
		free(run_id);
		return;
	}
	free(run_id);
	run_take_workspace(r, m->result);
	if (run_attach_steps(r, mp_get(m->result, "steps")) == -1) {
		run_attach_lost(r, "bad step status from the worker");
		return;
	}
	r->info.state = RUN_RUNNING;
	run_save(r);
	r->pipeline = 0;
	for (r->cur = 0; r->cur < r->man.nsteps; r->cur++) {
		enum step_state st = r->info.steps[r->man.order[r->cur]].state;
		if (st == STEP_PENDING || st == STEP_RUNNING)
			break;
	}
	r->sent = r->cur;
	if (finished)
		run_finish(r);
	else
		run_next_step(r);
}

static void run_attach_event(struct run *r)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	msgpack_pack_map(&pk, 3);
	mp_pack_kstr(&pk, "backend", r->info.backend);
	mp_pack_kstr(&pk, "worker", r->info.worker);
	mp_pack_kint(&pk, "since", r->wseq_last);
	run_event_daemon(r, "worker_reattached", NULL, &b);
	buf_free(&b);
}

/* The run goes on in its worker: `replay` what it said while nobody
 * listened, then `status`; both are answered once whatever the worker was
 * doing is done (it handles requests in order). */
static int run_recover_attach(struct run *r, char *err, size_t errlen)
{
	msgpack_packer *pk;
	struct worker *w;
	char why[400];

	if (r->info.worker == NULL || r->pool->ops->attach == NULL) {
		snprintf(err, errlen, "daemon restarted while the run was running");
		return -1;
	}
	if (store_wseq_last(osirisd.store, r->info.id, &r->wseq_last) == -1) {
		snprintf(err, errlen, "daemon restarted; its records cannot be read from the store");
		return -1;
	}
	if ((w = r->pool->ops->attach(r->pool, r->info.worker, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "daemon restarted; cannot re-attach to worker %s: %s", r->info.worker, why);
		return -1;
	}
	run_track(r);
	r->has_slot = 1;
	sched_adopt(r);
	r->worker = w;
	r->reattached = 1;
	r->phase = PHASE_ATTACH;
	r->queued_us = r->prepare_us = time_mono_us();
	wsess_attach(w->sess, &run_wsess_user, r);
	if ((r->cancel_ev = evtimer_new(rs.base, run_cancel_timer_cb, r)) == NULL)
		fatalx("run_recover_attach: event_new");
	run_attach_event(r);
	pk = wsess_begin(w->sess, "replay");
	msgpack_pack_map(pk, 1);
	mp_pack_kint(pk, "since", r->wseq_last);
	if (wsess_end(w->sess, run_replay_cb, r) == -1) {
		run_send_failed(r, "replay");
		return 0;
	}
	msgpack_pack_map(wsess_begin(w->sess, "status"), 0);
	if (wsess_end(w->sess, run_status_cb, r) == -1)
		run_send_failed(r, "status");
	return 0;
}

/* A run that was starting or running: re-attached to its worker where the
 * backend's workers outlive the daemon, else lost. */
static void run_recover_running(const char *id)
{
	struct run *r = run_alloc();
	char err[512], *why;

	if (store_run_get(osirisd.store, id, &r->info) != 0) {
		run_free(r);
		return;
	}
	if (run_recover_last_seq(&r->info) == -1) {
		log_warnx("run=%s: cannot read its last record seq; last_seq stays %lld", id,
		          (long long)r->info.last_seq);
		run_recover_lost(&r->info, "daemon restarted while the run was running");
		run_free(r);
		return;
	}
	if (run_recover_load(r, err, sizeof(err)) == -1) {
		xasprintf(&why, "daemon restarted while the run was running; cannot re-attach: %s", err);
		run_recover_lost(&r->info, why);
		free(why);
		run_free(r);
		return;
	}
	if (run_recover_attach(r, err, sizeof(err)) == -1) {
		run_recover_lost(&r->info, err);
		run_free(r);
	}
}

int run_recover(void)
{
	static const enum run_state gone[] = {RUN_RUNNING, RUN_STARTING};
	char **ids;
	size_t i, k, n;

	for (k = 0; k < 2; k++) {
		if (store_run_ids_in_state(osirisd.store, gone[k], &ids, &n) == -1)
			return -1;
		for (i = 0; i < n; i++) {
			run_recover_running(ids[i]);
			free(ids[i]);
		}
		free(ids);
	}
	if (store_run_ids_in_state(osirisd.store, RUN_QUEUED, &ids, &n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		run_recover_queued(ids[i]);
		free(ids[i]);
	}
	free(ids);
	return 0;
}
