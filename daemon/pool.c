/*
 * pool.c: the set of pools, one per backend, and the helpers the backends
 * share (start-latency ring, the failure flag the scheduler reads). A backend plugs in by adding its
 * pool_ops to pool_backends[]; nothing else in the daemon changes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "osirisd.h"

struct pool_backend {
	const char *name;
	const struct pool_ops *ops; /* NULL: known, not available in this build */
};

static const struct pool_backend pool_backends[] = {
    {"local", &pool_local_ops},
    {"e2b", &pool_e2b_ops},
};
#define POOL_NBACKENDS (sizeof(pool_backends) / sizeof(pool_backends[0]))

static struct pool *pools[POOL_NBACKENDS];
static size_t npools;

int pool_init(struct event_base *base, const struct config *cfg, void (*ready_cb)(struct pool *, void *), void *arg,
              char *err, size_t errlen)
{
	size_t i;
	struct pool *p;

	for (i = 0; i < POOL_NBACKENDS; i++) {
		if (pool_backends[i].ops == NULL)
			continue;
		p = xcalloc(1, sizeof(*p));
		p->ops = pool_backends[i].ops;
		p->base = base;
		p->cfg = cfg;
		p->ready_cb = ready_cb;
		p->ready_arg = arg;
		pools[npools++] = p;
		if (p->ops->start(p, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static void pool_drivers_free(struct pool *p)
{
	size_t i;

	for (i = 0; i < p->ndrivers; i++)
		free(p->drivers[i]);
	free(p->drivers);
	free(p->worker_version);
	p->drivers = NULL;
	p->ndrivers = 0;
	p->drivers_known = 0;
	p->worker_version = NULL;
}

static int pool_drivers_same(const struct pool *p, const struct msg_ready *m)
{
	size_t i;

	if (!p->drivers_known || p->ndrivers != m->ndrivers ||
	    strcmp(p->worker_version, m->version != NULL ? m->version : "") != 0)
		return 0;
	for (i = 0; i < m->ndrivers; i++)
		if (strcmp(p->drivers[i], m->drivers[i]) != 0)
			return 0;
	return 1;
}

/* Every worker says `ready` (the local probe at start too): the list is
 * compared, and replaced only when it differs (an E2B template rebuilt
 * with another worker version, say). */
void pool_worker_ready(struct pool *p, const struct msg_ready *m)
{
	size_t i;

	if (!m->has_drivers || pool_drivers_same(p, m))
		return;
	pool_drivers_free(p);
	p->drivers = xcalloc(m->ndrivers > 0 ? m->ndrivers : 1, sizeof(*p->drivers));
	for (i = 0; i < m->ndrivers; i++)
		p->drivers[i] = xstrdup(m->drivers[i]);
	p->ndrivers = m->ndrivers;
	p->worker_version = xstrdup(m->version != NULL ? m->version : "");
	p->drivers_known = 1;
	log_info("backend=%s worker version=%s drivers=%zu", p->ops->name, log_esc(p->worker_version, 64), p->ndrivers);
}

int pool_driver_known(const char *name, void *arg)
{
	const struct pool *p = arg;
	size_t i;

	if (!p->drivers_known)
		return 1;
	for (i = 0; i < p->ndrivers; i++)
		if (strcmp(p->drivers[i], name) == 0)
			return 1;
	return 0;
}

void pool_shutdown(void)
{
	size_t i;

	for (i = 0; i < npools; i++) {
		pools[i]->ops->stop(pools[i]);
		free(pools[i]->failure);
		free(pools[i]->unavailable);
		pool_drivers_free(pools[i]);
		free(pools[i]);
		pools[i] = NULL;
	}
	npools = 0;
}

int pool_lookup(const char *backend, struct pool **out, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < npools; i++) {
		if (strcmp(pools[i]->ops->name, backend) == 0) {
			if (pools[i]->unavailable != NULL) {
				snprintf(err, errlen, "backend %s is not available: %s", backend,
				         pools[i]->unavailable);
				return -2;
			}
			*out = pools[i];
			return 0;
		}
	}
	for (i = 0; i < POOL_NBACKENDS; i++) {
		if (strcmp(pool_backends[i].name, backend) == 0) {
			snprintf(err, errlen, "backend %s is not available", backend);
			return -2;
		}
	}
	snprintf(err, errlen, "unknown backend %s", log_esc(backend, 64));
	return -1;
}

void pool_reload_all(void)
{
	size_t i;

	for (i = 0; i < npools; i++) {
		if (pools[i]->ops->reload != NULL)
			pools[i]->ops->reload(pools[i]);
	}
}

size_t pool_count(void)
{
	return npools;
}

struct pool *pool_at(size_t i)
{
	return i < npools ? pools[i] : NULL;
}

void pool_set_failure(struct pool *p, const char *why)
{
	if (why == NULL && p->failure == NULL)
		return;
	if (why != NULL && p->failure != NULL && strcmp(why, p->failure) == 0)
		return;
	free(p->failure);
	p->failure = why != NULL ? xstrdup(why) : NULL;
	if (p->ready_cb != NULL)
		p->ready_cb(p, p->ready_arg);
}

void pool_latency_add(struct pool_latency *l, int64_t ms)
{
	size_t cap = sizeof(l->ms) / sizeof(l->ms[0]);

	l->ms[l->next] = ms;
	l->next = (l->next + 1) % cap;
	if (l->n < cap)
		l->n++;
}

void pool_latency_fill(const struct pool_latency *l, struct pool_info *out)
{
	size_t cap = sizeof(l->ms) / sizeof(l->ms[0]), i, pos = l->next;

	out->nstart = 0;
	for (i = 0; i < l->n && i < sizeof(out->start_ms) / sizeof(out->start_ms[0]); i++) {
		pos = (pos + cap - 1) % cap;
		out->start_ms[out->nstart++] = l->ms[pos];
	}
}

int64_t pool_start_failed(struct pool *p, struct pool_starts *st, const char *reason, int limit)
{
	int changed = st->last_error == NULL || strcmp(st->last_error, reason) != 0;
	int64_t ms;
	char *msg;

	if (st->streak < UINT_MAX)
		st->streak++;
	if (changed) {
		free(st->last_error);
		st->last_error = xstrdup(reason);
	}
	if (changed || (st->streak & (st->streak - 1)) == 0)
		log_warnx("%s pool: %s failed to start (%u in a row): %s", p->ops->name, st->what, st->streak,
		          log_esc(reason, 600));
	if (st->streak >= (unsigned)limit && (changed || p->failure == NULL)) {
		xasprintf(&msg, "%s pool cannot start %s: %s", p->ops->name, st->whats, reason);
		pool_set_failure(p, msg);
		free(msg);
	}
	ms = st->base_ms << (st->streak < 16 ? st->streak : 16);
	return ms > st->max_ms ? st->max_ms : ms;
}

void pool_start_ok(struct pool *p, struct pool_starts *st, const char *id)
{
	if (p->failure != NULL)
		log_info("%s pool: %s start again (%s=%s)", p->ops->name, st->whats, st->what, id);
	st->streak = 0;
	pool_set_failure(p, NULL);
}

void pool_starts_fill(const struct pool_starts *st, struct pool_info *out)
{
	out->start_failures = st->streak;
	if (st->streak > 0 && st->last_error != NULL && out->last_error == NULL)
		out->last_error = xstrdup(st->last_error);
}

void pool_starts_free(struct pool_starts *st)
{
	free(st->last_error);
	st->last_error = NULL;
}
