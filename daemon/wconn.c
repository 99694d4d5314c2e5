/*
 * wconn.c: the msgpack-rpc client side of a worker's byte stream. Numbers
 * requests, matches responses to pending-call callbacks, hands
 * notifications up; a worker that breaks the protocol is reported once.
 */
#include <stdlib.h>
#include <string.h>

#include "osirisd.h"

struct wconn_call {
	uint32_t id;
	wconn_reply_cb cb;
	void *arg;
	TAILQ_ENTRY(wconn_call) entry;
};

struct wconn {
	struct worker *w;
	struct rpc_reader rd;
	uint32_t next_id;
	TAILQ_HEAD(, wconn_call) calls;
	size_t ncalls;
	wconn_notify_cb ncb;
	wconn_error_cb ecb;
	void *arg;
	struct buf out;
	msgpack_packer pk;
	uint32_t building_id;
	int in_feed, dead, broken;
};

struct wconn *wconn_new(struct worker *w, size_t max_context_bytes, wconn_notify_cb ncb, wconn_error_cb ecb, void *arg)
{
	struct wconn *wc = xcalloc(1, sizeof(*wc));
	struct rpc_limits lim;

	wc->w = w;
	rpc_limits_default(&lim, max_context_bytes);
	rpc_reader_init(&wc->rd, &lim);
	TAILQ_INIT(&wc->calls);
	wc->ncb = ncb;
	wc->ecb = ecb;
	wc->arg = arg;
	buf_init(&wc->out);
	return wc;
}

static void wconn_destroy(struct wconn *wc)
{
	struct wconn_call *c;

	while ((c = TAILQ_FIRST(&wc->calls)) != NULL) {
		TAILQ_REMOVE(&wc->calls, c, entry);
		free(c);
	}
	rpc_reader_free(&wc->rd);
	buf_free(&wc->out);
	free(wc);
}

void wconn_free(struct wconn *wc)
{
	if (wc == NULL)
		return;
	if (wc->in_feed) {
		wc->dead = 1;
		return;
	}
	wconn_destroy(wc);
}

size_t wconn_pending(const struct wconn *wc)
{
	return wc->ncalls;
}

static void wconn_broken(struct wconn *wc, const char *why)
{
	if (wc->broken)
		return;
	wc->broken = 1;
	log_warnx("worker=%s protocol error: %s", wc->w->id, why);
	if (wc->ecb != NULL)
		wc->ecb(wc, why, wc->arg);
}

static void wconn_response(struct wconn *wc, const struct rpc_msg *m)
{
	struct wconn_call *c;
	char why[96];

	TAILQ_FOREACH(c, &wc->calls, entry)
	{
		if (c->id == m->msgid)
			break;
	}
	if (c == NULL) {
		snprintf(why, sizeof(why), "response to unknown request %u", m->msgid);
		wconn_broken(wc, why);
		return;
	}
	TAILQ_REMOVE(&wc->calls, c, entry);
	wc->ncalls--;
	if (c->cb != NULL)
		c->cb(wc, m, c->arg);
	free(c);
}

void wconn_feed(struct wconn *wc, const uint8_t *buf, size_t len)
{
	struct rpc_msg m;
	char err[256];
	uint32_t id;
	int has_id, big, rc;

	if (wc->broken || wc->dead)
		return;
	rpc_reader_add(&wc->rd, buf, len);
	wc->in_feed = 1;
	while (!wc->dead && !wc->broken &&
	       (rc = rpc_reader_next(&wc->rd, &m, err, sizeof(err), &id, &has_id, &big)) != 0) {
		if (rc == -1) {
			wconn_broken(wc, err);
			break;
		}
		if (m.type == RPC_RESPONSE)
			wconn_response(wc, &m);
		else if (m.type == RPC_NOTIFY)
			wc->ncb(wc, &m, wc->arg);
		else
			wconn_broken(wc, "the worker sent a request");
		rpc_msg_free(&m);
	}
	wc->in_feed = 0;
	if (wc->dead)
		wconn_destroy(wc);
}

msgpack_packer *wconn_begin(struct wconn *wc, const char *method)
{
	buf_reset(&wc->out);
	rpc_packer_init(&wc->pk, &wc->out);
	if (++wc->next_id == 0)
		wc->next_id = 1;
	wc->building_id = wc->next_id;
	rpc_pack_request_head(&wc->pk, wc->building_id, method);
	return &wc->pk;
}

int wconn_end(struct wconn *wc, wconn_reply_cb cb, void *arg)
{
	struct wconn_call *c;

	if (wc->broken || wc->w->pool->ops->send(wc->w, wc->out.data, wc->out.len) == -1) {
		buf_reset(&wc->out);
		return -1;
	}
	/* Do not keep a large request (prepare carries the bundle) around. */
	if (wc->out.cap > 65536)
		buf_free(&wc->out);
	else
		buf_reset(&wc->out);
	c = xcalloc(1, sizeof(*c));
	c->id = wc->building_id;
	c->cb = cb;
	c->arg = arg;
	TAILQ_INSERT_TAIL(&wc->calls, c, entry);
	wc->ncalls++;
	return 0;
}
