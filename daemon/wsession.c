/*
 * wsession.c: the daemon's side of one worker's msgpack-rpc stream, for the
 * worker's whole life and the same for every backend: waits for `ready`,
 * numbers requests and matches answers, hands notifications to the run
 * using the worker, pings a silent worker (heartbeat), `reset`s it between
 * runs, and sends through one ordered, coalescing queue. A backend is only
 * a byte transport (struct wsess_transport) plus a lifecycle. A worker
 * whose `ready` says `zygote` is idle only once it answered `fork` (the
 * answer comes from the forked child, which serves one run); its `reset`
 * ends that child and the zygote's next `ready` starts the cycle again.
 * When a zygote's child died instead (a failed or cancelled run ended by
 * the pool, a crash), the session resyncs past whatever that child left in
 * the stream (wsess_resync) and the cycle goes on with the same zygote.
 */
#include <sys/random.h>

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "osirisd.h"

enum wsess_state { WS_WARMING, WS_IDLE, WS_BUSY, WS_RESETTING, WS_CLOSED };

struct wsess_call {
	uint32_t id;
	wsess_reply_cb cb; /* NULL: an answer to skip (its user left) */
	void *arg;
	int own; /* the session's own ping or reset */
	TAILQ_ENTRY(wsess_call) entry;
};

struct wsess {
	struct worker *w;
	const struct wsess_transport *t;
	void *tctx;
	const struct wsess_owner *owner;
	enum wsess_state state;
	struct rpc_reader rd;
	uint32_t next_id, building_id, reset_id, fork_id;
	TAILQ_HEAD(, wsess_call) calls;
	size_t ncalls;
	const struct wsess_user *user; /* the run on this worker, when busy */
	void *uarg;
	struct buf msg;  /* the request being packed */
	struct buf outq; /* bytes the transport has not taken yet, in order */
	msgpack_packer pk;
	struct event *hb_ev;
	int64_t last_rx_us;
	int hb_outstanding, hb_missed, unresponsive;
	int in_feed, freed, broken;
	int adopted; /* re-attached: answers to an earlier session's requests are skipped */
	int zygote;  /* the worker said so in `ready`: fork per run */
	int syncing; /* skipping input until the zygote echoes sync[] */
	uint8_t sync[PROTO_SYNC_LEN];
	struct buf syncbuf; /* the input scanned for it, at most PROTO_SYNC_LEN - 1 kept */
};

struct wsess *wsess_new(struct worker *w, const struct wsess_transport *t, void *tctx, const struct wsess_owner *owner,
                        size_t max_message)
{
	struct wsess *s = xcalloc(1, sizeof(*s));
	struct rpc_limits lim;

	s->w = w;
	s->t = t;
	s->tctx = tctx;
	s->owner = owner;
	s->state = WS_WARMING;
	rpc_limits_default(&lim, max_message);
	rpc_reader_init(&s->rd, &lim);
	TAILQ_INIT(&s->calls);
	buf_init(&s->msg);
	buf_init(&s->outq);
	s->last_rx_us = time_mono_us();
	return s;
}

static void wsess_drop_calls(struct wsess *s)
{
	struct wsess_call *c;

	while ((c = TAILQ_FIRST(&s->calls)) != NULL) {
		TAILQ_REMOVE(&s->calls, c, entry);
		free(c);
	}
	s->ncalls = 0;
}

static void wsess_destroy(struct wsess *s)
{
	wsess_drop_calls(s);
	if (s->hb_ev != NULL)
		event_free(s->hb_ev);
	rpc_reader_free(&s->rd);
	buf_free(&s->msg);
	buf_free(&s->outq);
	buf_free(&s->syncbuf);
	free(s);
}

/* Safe inside the session's own callbacks: freed once the feed returns. */
void wsess_free(struct wsess *s)
{
	if (s == NULL)
		return;
	if (s->in_feed) {
		s->freed = 1;
		return;
	}
	wsess_destroy(s);
}

int wsess_is_idle(const struct wsess *s)
{
	return s->state == WS_IDLE;
}

int wsess_is_zygote(const struct wsess *s)
{
	return s->zygote;
}

/* Neither closed nor broken: a pool may still talk to the worker. */
int wsess_usable(const struct wsess *s)
{
	return s->state != WS_CLOSED && !s->broken;
}

int wsess_unresponsive(const struct wsess *s)
{
	return s->unresponsive;
}

/* -- sending: one ordered queue, coalesced for a slow transport ---------- */

/* Hand the transport what it takes; the rest waits for wsess_writable(). */
static int wsess_flush(struct wsess *s)
{
	ssize_t n;

	if (s->outq.len == 0)
		return 0;
	if (s->state == WS_CLOSED || (n = s->t->write(s->tctx, s->outq.data, s->outq.len)) < 0)
		return -1;
	buf_consume(&s->outq, (size_t)n);
	/* Do not keep a large request's buffer (prepare carries the bundle). */
	if (s->outq.len == 0 && s->outq.cap > 65536)
		buf_free(&s->outq);
	return 0;
}

void wsess_writable(struct wsess *s)
{
	if (wsess_flush(s) == -1 && s->t->kill != NULL)
		s->t->kill(s->tctx, 1);
}

static int wsess_queue(struct wsess *s)
{
	if (s->outq.len == 0) {
		struct buf tmp = s->outq; /* the common case: no copy */
		s->outq = s->msg;
		s->msg = tmp;
	} else {
		buf_add(&s->outq, s->msg.data, s->msg.len);
	}
	buf_reset(&s->msg);
	if (s->msg.cap > 65536)
		buf_free(&s->msg);
	return wsess_flush(s);
}

static msgpack_packer *wsess_pack_request(struct wsess *s, const char *method)
{
	buf_reset(&s->msg);
	rpc_packer_init(&s->pk, &s->msg);
	if (++s->next_id == 0)
		s->next_id = 1;
	s->building_id = s->next_id;
	rpc_pack_request_head(&s->pk, s->building_id, method);
	return &s->pk;
}

static int wsess_send_call(struct wsess *s, wsess_reply_cb cb, void *arg, int own)
{
	struct wsess_call *c;

	if (s->broken || wsess_queue(s) == -1)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->id = s->building_id;
	c->cb = cb;
	c->arg = arg;
	c->own = own;
	TAILQ_INSERT_TAIL(&s->calls, c, entry);
	s->ncalls++;
	return 0;
}

msgpack_packer *wsess_begin(struct wsess *s, const char *method)
{
	return wsess_pack_request(s, method);
}

int wsess_end(struct wsess *s, wsess_reply_cb cb, void *arg)
{
	if (s->state != WS_BUSY) {
		buf_reset(&s->msg);
		return -1;
	}
	return wsess_send_call(s, cb, arg, 0);
}

size_t wsess_pending(const struct wsess *s)
{
	return s->ncalls;
}

/* -- receiving ------------------------------------------------------------ */

static void wsess_broken(struct wsess *s, const char *why)
{
	if (s->broken)
		return;
	s->broken = 1;
	log_warnx("worker=%s protocol error: %s", s->w->id, log_esc(why, 200));
	if (s->user != NULL && s->user->error != NULL)
		s->user->error(s->w, why, s->uarg);
	if (s->t->kill != NULL)
		s->t->kill(s->tctx, 1);
}

static void wsess_became_idle(struct wsess *s)
{
	s->state = WS_IDLE;
	s->hb_missed = s->hb_outstanding = 0;
	if (s->owner->ready != NULL)
		s->owner->ready(s->w);
}

/* The zygote's child answered `fork`: it is the process the next run gets. */
static void wsess_forked(struct wsess *s, const struct rpc_msg *m)
{
	int64_t pid = 0;

	s->fork_id = 0;
	if (m->error != NULL || m->result == NULL || m->result->type != MSGPACK_OBJECT_MAP ||
	    mp_get_int(m->result, "pid", &pid) < 0 || pid <= 0) {
		log_warnx("worker=%s: fork refused, discarding it", s->w->id);
		if (s->owner->failed != NULL)
			s->owner->failed(s->w, "fork refused");
		return;
	}
	if (s->owner->forked != NULL)
		s->owner->forked(s->w, pid);
	wsess_became_idle(s);
}

static void wsess_own_response(struct wsess *s, const struct wsess_call *c, const struct rpc_msg *m)
{
	if (c->id == s->fork_id && s->state == WS_WARMING) {
		wsess_forked(s, m);
		return;
	}
	if (c->id != s->reset_id || s->state != WS_RESETTING)
		return; /* a ping answered: any byte already counted */
	s->reset_id = 0;
	if (m->error != NULL) {
		log_warnx("worker=%s: reset refused, discarding it", s->w->id);
		if (s->owner->failed != NULL)
			s->owner->failed(s->w, "reset refused");
		return;
	}
	log_debug("worker=%s reset", s->w->id);
	if (s->zygote) {
		/* The child exited after that answer; the zygote's `ready` follows. */
		s->state = WS_WARMING;
		return;
	}
	wsess_became_idle(s);
}

static void wsess_response(struct wsess *s, const struct rpc_msg *m)
{
	struct wsess_call *c;
	char why[96];

	TAILQ_FOREACH(c, &s->calls, entry)
	{
		if (c->id == m->msgid)
			break;
	}
	if (c == NULL && s->adopted) {
		log_debug("worker=%s: skipping the answer to request %u of the session before the restart", s->w->id,
		          m->msgid);
		return;
	}
	if (c == NULL) {
		snprintf(why, sizeof(why), "response to unknown request %u", m->msgid);
		wsess_broken(s, why);
		return;
	}
	TAILQ_REMOVE(&s->calls, c, entry);
	s->ncalls--;
	if (c->own)
		wsess_own_response(s, c, m);
	else if (c->cb != NULL)
		c->cb(s->w, m, c->arg);
	free(c);
}

static void wsess_send_fork(struct wsess *s)
{
	msgpack_pack_map(wsess_pack_request(s, "fork"), 0);
	if (wsess_send_call(s, NULL, NULL, 1) == -1) {
		wsess_broken(s, "cannot send fork");
		return;
	}
	s->fork_id = s->building_id;
}

/* `ready` names the worker's drivers for its pool (submits are checked
 * against them); a malformed one is a protocol violation. */
static void wsess_ready(struct wsess *s, const struct rpc_msg *m)
{
	struct msg_ready rm;
	char err[256], why[300];

	if (msg_ready_decode(m->params, &rm, err, sizeof(err)) == -1) {
		snprintf(why, sizeof(why), "bad ready: %s", err);
		wsess_broken(s, why);
		return;
	}
	if (s->w->pool != NULL)
		pool_worker_ready(s->w->pool, &rm);
	if (s->fork_id != 0) {
		msg_ready_free(&rm);
		return; /* already forking */
	}
	s->zygote = rm.zygote;
	msg_ready_free(&rm);
	if (s->zygote)
		wsess_send_fork(s);
	else
		wsess_became_idle(s);
}

static void wsess_notification(struct wsess *s, const struct rpc_msg *m)
{
	if (s->state == WS_WARMING) {
		if (strcmp(m->method, "ready") == 0)
			wsess_ready(s, m);
		else
			log_debug("worker=%s: ignoring %s before ready", s->w->id, log_esc(m->method, 64));
		return;
	}
	if (s->state == WS_BUSY && s->user != NULL && s->user->notify != NULL)
		s->user->notify(s->w, m, s->uarg);
	else
		log_debug("worker=%s: ignoring %s while not busy", s->w->id, log_esc(m->method, 64));
}

static void wsess_reader_reset(struct wsess *s)
{
	struct rpc_limits lim = s->rd.lim;

	rpc_reader_free(&s->rd);
	rpc_reader_init(&s->rd, &lim);
}

/* Resyncing: skip input until the zygote's echo of our marker; what
 * follows it is fed as usual. */
static void wsess_sync_input(struct wsess *s, const uint8_t *data, size_t len)
{
	const uint8_t *m;
	struct buf rest;
	size_t off;

	buf_add(&s->syncbuf, data, len);
	m = memmem(s->syncbuf.data, s->syncbuf.len, s->sync, PROTO_SYNC_LEN);
	if (m == NULL) {
		if (s->syncbuf.len >= PROTO_SYNC_LEN)
			buf_consume(&s->syncbuf, s->syncbuf.len - (PROTO_SYNC_LEN - 1));
		return;
	}
	off = (size_t)(m - s->syncbuf.data) + PROTO_SYNC_LEN;
	rest = s->syncbuf; /* wsess_input may free s */
	buf_init(&s->syncbuf);
	s->syncing = 0;
	log_debug("worker=%s in sync again", s->w->id);
	if (off < rest.len)
		wsess_input(s, rest.data + off, rest.len - off);
	buf_free(&rest);
}

/* Bytes the worker wrote, in order, from the transport. */
void wsess_input(struct wsess *s, const uint8_t *data, size_t len)
{
	struct rpc_msg m;
	char err[256];
	uint32_t id;
	int has_id, big, rc;

	s->last_rx_us = time_mono_us();
	s->hb_missed = s->hb_outstanding = 0;
	if (s->broken || s->state == WS_CLOSED)
		return;
	if (s->syncing) {
		wsess_sync_input(s, data, len);
		return;
	}
	rpc_reader_add(&s->rd, data, len);
	s->in_feed = 1;
	while (!s->freed && !s->broken && !s->syncing &&
	       (rc = rpc_reader_next_view(&s->rd, &m, err, sizeof(err), &id, &has_id, &big)) != 0) {
		if (rc == -1) {
			wsess_broken(s, err);
			break;
		}
		if (m.type == RPC_RESPONSE)
			wsess_response(s, &m);
		else if (m.type == RPC_NOTIFY)
			wsess_notification(s, &m);
		else
			wsess_broken(s, "the worker sent a request");
		rpc_msg_free(&m);
	}
	s->in_feed = 0;
	if (s->freed) {
		wsess_destroy(s);
		return;
	}
	if (s->syncing) /* resynced meanwhile: the rest is the dead child's */
		wsess_reader_reset(s);
}

/* The worker is finished (the backend saw it end: exited and its output
 * at EOF, sandbox gone): the run on it, if any, is told once. */
void wsess_closed(struct wsess *s, const char *reason)
{
	const struct wsess_user *u = s->user;

	if (s->state == WS_CLOSED)
		return;
	s->state = WS_CLOSED;
	if (s->hb_ev != NULL)
		evtimer_del(s->hb_ev);
	s->user = NULL;
	if (u != NULL && u->gone != NULL)
		u->gone(s->w, reason, s->uarg);
}

/* A zygote's child (the run's process) ended while this session served
 * it; the zygote lives on. The run on it is told, as if the worker had
 * ended; the pool then resyncs the session (wsess_resync). */
void wsess_child_gone(struct wsess *s, const char *reason)
{
	const struct wsess_user *u = s->user;

	if (s->state == WS_CLOSED)
		return;
	s->user = NULL;
	if (s->state == WS_BUSY)
		s->state = WS_IDLE;
	if (u != NULL && u->gone != NULL)
		u->gone(s->w, reason, s->uarg);
}

/*
 * A zygote's child is dead (the pool made sure): what it had not read of
 * our requests and what it had begun to write are garbage. Forget every
 * request, drop what the transport has not taken (the caller drops its own
 * queue), and write PROTO_SYNC_MAGIC with a fresh nonce; the zygote skips
 * to it and echoes it, we skip to the echo, and its `ready` follows (the
 * owner's ready() once the next child answered `fork`). The dead child
 * never saw the nonce, so nothing it wrote can end the skip. -1 when the
 * session cannot be resynced (the pool discards the worker).
 */
int wsess_resync(struct wsess *s)
{
	uint8_t marker[PROTO_SYNC_LEN];

	if (!s->zygote || s->state == WS_CLOSED || s->broken)
		return -1;
	if (getrandom(s->sync + PROTO_SYNC_MAGIC_LEN, PROTO_SYNC_NONCE, 0) != PROTO_SYNC_NONCE)
		return -1;
	memcpy(s->sync, PROTO_SYNC_MAGIC, PROTO_SYNC_MAGIC_LEN);
	wsess_detach(s);
	wsess_drop_calls(s);
	s->fork_id = s->reset_id = 0;
	s->hb_outstanding = s->hb_missed = 0;
	if (!s->in_feed) /* else once the feed is over */
		wsess_reader_reset(s);
	buf_reset(&s->syncbuf);
	buf_reset(&s->outq);
	s->state = WS_WARMING;
	s->syncing = 1;
	memcpy(marker, s->sync, sizeof(marker));
	buf_reset(&s->msg);
	buf_add(&s->msg, marker, sizeof(marker));
	return wsess_queue(s);
}

/* -- the run on the worker ------------------------------------------------ */

/* A worker that is already running, started by an earlier daemon (a
 * re-attach after a restart): it sends no `ready`. Answers to requests of
 * the earlier session may still come (the worker answers `ping` and
 * `cancel` while a step runs, the rest in order): they are skipped; our
 * ids start far from theirs, so they cannot be taken for ours. */
void wsess_adopt(struct wsess *s)
{
	s->adopted = 1;
	s->next_id = 0x80000000u;
	s->state = WS_IDLE;
}

void wsess_attach(struct wsess *s, const struct wsess_user *u, void *arg)
{
	s->state = WS_BUSY;
	s->user = u;
	s->uarg = arg;
}

/* The run is done with the worker: answers still due to it are skipped. */
void wsess_detach(struct wsess *s)
{
	struct wsess_call *c;

	TAILQ_FOREACH(c, &s->calls, entry)
	{
		if (!c->own)
			c->cb = NULL;
	}
	s->user = NULL;
	s->uarg = NULL;
	if (s->state == WS_BUSY)
		s->state = WS_IDLE;
}

/* Ask the worker to forget its run (worker reuse); the owner's ready()
 * says when it is idle again, failed() if it refuses. */
int wsess_reset(struct wsess *s)
{
	if (s->state == WS_CLOSED || s->broken)
		return -1;
	wsess_detach(s);
	s->state = WS_RESETTING;
	msgpack_pack_map(wsess_pack_request(s, "reset"), 0);
	if (wsess_send_call(s, NULL, NULL, 1) == -1)
		return -1;
	s->reset_id = s->building_id;
	return 0;
}

/* -- heartbeat -------------------------------------------------------------- */

static void wsess_hb_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wsess *s = arg;
	int64_t silent_us = time_mono_us() - s->last_rx_us;
	int interval = s->w->pool->heartbeat_s;

	(void)fd;
	(void)what;
	if (s->state != WS_BUSY && s->state != WS_IDLE)
		return;
	if (s->broken || silent_us < (int64_t)interval * 1000000)
		return;
	if (s->hb_outstanding && ++s->hb_missed >= 2) {
		log_warnx("worker=%s stopped responding, killing it", s->w->id);
		s->unresponsive = 1;
		wsess_broken(s, "worker stopped responding");
		return;
	}
	msgpack_pack_map(wsess_pack_request(s, "ping"), 0);
	if (wsess_send_call(s, NULL, NULL, 1) == 0)
		s->hb_outstanding = 1;
}

/* A worker silent for the pool's heartbeat_s while idle or busy is pinged;
 * two pings unanswered and it is killed. */
void wsess_heartbeat_start(struct wsess *s, struct event_base *base)
{
	struct timeval tv = {s->w->pool->heartbeat_s > 0 ? s->w->pool->heartbeat_s : 10, 0};

	if (s->hb_ev != NULL || s->w->pool->heartbeat_s <= 0)
		return;
	if ((s->hb_ev = event_new(base, -1, EV_PERSIST, wsess_hb_cb, s)) == NULL)
		fatalx("wsess: event_new");
	evtimer_add(s->hb_ev, &tv);
}
