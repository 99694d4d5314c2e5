/*
 * sched.c: the run queue (priority, then FIFO) and the global concurrency
 * limit. A pass hands a free slot and a worker from the run's pool to the
 * oldest most urgent run; the scheduler sees pools only through pool_ops.
 */
#include <event2/event.h>
#include <stddef.h>

#include "osirisd.h"

#define SCHED_MAX_POOLS 8

static struct {
	struct event_base *base;
	const struct config *cfg;
	struct sched_queue q;
	size_t nqueued;
	unsigned active;
	uint64_t seq;
	struct event *kick_ev;
	int stopping;
	void (*done_cb)(void);
} sched;

void sched_queue_insert(struct sched_queue *q, struct sched_item *it)
{
	struct sched_item *p;

	/* Walk from the tail: the common case (equal priorities) is O(1). */
	TAILQ_FOREACH_REVERSE(p, q, sched_queue, entry)
	{
		if (p->priority > it->priority || (p->priority == it->priority && p->seq <= it->seq)) {
			TAILQ_INSERT_AFTER(q, p, it, entry);
			return;
		}
	}
	TAILQ_INSERT_HEAD(q, it, entry);
}

static struct run *sched_item_run(struct sched_item *it)
{
	return (struct run *)(void *)((char *)it - offsetof(struct run, qitem));
}

static size_t sched_pool_index(const struct pool *p)
{
	size_t i, n = pool_count();

	for (i = 0; i < n && i < SCHED_MAX_POOLS; i++) {
		if (pool_at(i) == p)
			return i;
	}
	return SCHED_MAX_POOLS;
}

static void sched_pass(void)
{
	unsigned demand[SCHED_MAX_POOLS] = {0}, wanted = 0, slots;
	int exhausted[SCHED_MAX_POOLS] = {0};
	struct sched_item *it, *next;
	struct worker *w;
	struct run *r;
	size_t i, pi;

	for (it = TAILQ_FIRST(&sched.q); it != NULL && !sched.stopping; it = next) {
		next = TAILQ_NEXT(it, entry);
		slots = sched.active < (unsigned)sched.cfg->max_concurrent_runs
		            ? (unsigned)sched.cfg->max_concurrent_runs - sched.active
		            : 0;
		if (wanted >= slots)
			break;
		r = sched_item_run(it);
		pi = sched_pool_index(r->pool);
		if (pi >= SCHED_MAX_POOLS)
			continue;
		if (exhausted[pi] || (w = r->pool->ops->take(r->pool)) == NULL) {
			if (r->pool->failure != NULL || r->pool->unavailable != NULL) {
				/* Nothing to wait for: the pool says why it cannot start workers. */
				run_fail_queued(r, r->pool->failure != NULL ? r->pool->failure : r->pool->unavailable);
				continue;
			}
			exhausted[pi] = 1;
			demand[pi]++;
			wanted++;
			continue;
		}
		TAILQ_REMOVE(&sched.q, it, entry);
		sched.nqueued--;
		r->queued = 0;
		sched.active++;
		run_start(r, w);
	}
	for (i = 0; i < pool_count() && i < SCHED_MAX_POOLS; i++) {
		struct pool *p = pool_at(i);
		if (p->ops->demand != NULL)
			p->ops->demand(p, sched.stopping ? 0 : demand[i]);
	}
}

static void sched_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sched_pass();
}

void sched_init(struct event_base *base, const struct config *cfg)
{
	sched.base = base;
	sched.cfg = cfg;
	TAILQ_INIT(&sched.q);
	sched.kick_ev = event_new(base, -1, 0, sched_kick_cb, NULL);
	if (sched.kick_ev == NULL)
		fatalx("sched_init: event_new");
}

void sched_shutdown(void)
{
	if (sched.kick_ev != NULL)
		event_free(sched.kick_ev);
	sched.kick_ev = NULL;
}

void sched_kick(void)
{
	/* Coalesced: many kicks in one loop iteration make one pass. */
	if (sched.kick_ev != NULL && !event_pending(sched.kick_ev, EV_TIMEOUT, NULL))
		event_active(sched.kick_ev, EV_TIMEOUT, 0);
}

void sched_enqueue(struct run *r)
{
	r->qitem.priority = r->info.priority;
	r->qitem.seq = ++sched.seq;
	sched_queue_insert(&sched.q, &r->qitem);
	sched.nqueued++;
	r->queued = 1;
	sched_kick();
}

void sched_remove(struct run *r)
{
	if (!r->queued)
		return;
	TAILQ_REMOVE(&sched.q, &r->qitem, entry);
	sched.nqueued--;
	r->queued = 0;
	sched_kick(); /* the demand told to the pools shrank */
}

/* A run re-attached after a restart holds a slot without a scheduling pass. */
void sched_adopt(struct run *r)
{
	(void)r;
	sched.active++;
}

void sched_run_done(struct run *r)
{
	(void)r;
	if (sched.active > 0)
		sched.active--;
	if (sched.stopping && sched.active == 0 && sched.done_cb != NULL) {
		void (*cb)(void) = sched.done_cb;
		sched.done_cb = NULL;
		cb();
		return;
	}
	sched_kick();
}

void sched_stop(void (*done_cb)(void))
{
	sched.stopping = 1;
	sched.done_cb = done_cb;
	sched_kick(); /* tells the pools demand is gone */
	if (sched.active == 0 && done_cb != NULL) {
		sched.done_cb = NULL;
		done_cb();
	}
}

unsigned sched_active(void)
{
	return sched.active;
}

size_t sched_queued(void)
{
	return sched.nqueued;
}

void sched_pool_ready_cb(struct pool *p, void *arg)
{
	(void)p;
	(void)arg;
	sched_kick();
}
