/*
 * follow.c: run.follow. A follower first catches up from the store (seq >
 * since), then receives live records; when its connection's output passes
 * daemon.follow_buffer_bytes it stops taking live records and catches up
 * from the store again once the output drained: no gap, no duplicate, and
 * the daemon's memory stays bounded whatever the reader's speed.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>

#include "osirisd.h"

#define FOLLOW_CHUNK 256

struct follower {
	struct conn *c;
	struct run *r; /* NULL once the run is not active (any more) */
	char *run_id;
	uint32_t msgid;
	int64_t last_sent;
	int follow;
	int live; /* caught up: live records are pushed as they come */
	/* the answer, once r is NULL */
	enum run_state state;
	int64_t exit_code;
	int has_exit_code;
	int64_t last_seq;
	TAILQ_ENTRY(follower) run_entry;
	TAILQ_ENTRY(follower) conn_entry;
};

static size_t follow_cap = 1024 * 1024;

static void follow_free(struct follower *f)
{
	if (f->r != NULL)
		TAILQ_REMOVE(&f->r->followers, f, run_entry);
	TAILQ_REMOVE(&f->c->followers, f, conn_entry);
	free(f->run_id);
	free(f);
}

static void follow_snapshot(struct follower *f, const struct run_info *ri)
{
	f->state = ri->state;
	f->exit_code = ri->exit_code;
	f->has_exit_code = ri->has_exit_code;
	f->last_seq = ri->last_seq;
}

/* The response that ends the stream. */
static void follow_finish(struct follower *f)
{
	msgpack_packer pk;

	if (f->r != NULL)
		follow_snapshot(f, &f->r->info);
	if (f->last_seq < f->last_sent)
		f->last_seq = f->last_sent;
	conn_packer(f->c, &pk);
	rpc_pack_result_head(&pk, f->msgid);
	msgpack_pack_map(&pk, 4);
	mp_pack_kstr(&pk, "run", f->run_id);
	mp_pack_kstr(&pk, "state", run_state_name(f->state));
	mp_pack_key(&pk, "exit_code");
	if (f->has_exit_code)
		msgpack_pack_int64(&pk, f->exit_code);
	else
		msgpack_pack_nil(&pk);
	mp_pack_kint(&pk, "last_seq", f->last_seq);
	follow_free(f);
}

static void follow_send(struct follower *f, const struct event_rec *e)
{
	msgpack_packer pk;

	conn_packer(f->c, &pk);
	rpc_pack_notify_head(&pk, "run.event");
	event_rec_pack_run(&pk, f->run_id, e);
	f->last_sent = e->seq;
}

struct follow_read {
	struct follower *f;
	int got, full;
};

static int follow_read_cb(const struct event_rec *e, void *arg)
{
	struct follow_read *fr = arg;

	fr->got++;
	if (e->seq <= fr->f->last_sent)
		return 0;
	follow_send(fr->f, e);
	if (conn_out_len(fr->f->c) >= follow_cap) {
		fr->full = 1;
		return 1;
	}
	return 0;
}

/* Send stored records until caught up or the output is full; when caught
 * up, go live (active run) or answer (final run, or follow:false). */
static void follow_catch_up(struct follower *f)
{
	struct follow_read fr;

	for (;;) {
		if (conn_out_len(f->c) >= follow_cap)
			return; /* follow_conn_drained resumes */
		fr.f = f;
		fr.got = fr.full = 0;
		if (store_event_read(osirisd.store, f->run_id, f->last_sent, FOLLOW_CHUNK, follow_read_cb, &fr) == -1) {
			conn_error(f->c, f->msgid, ERR_INTERNAL, "cannot read the run's records");
			follow_free(f);
			return;
		}
		if (fr.full)
			return;
		if (fr.got < FOLLOW_CHUNK)
			break;
	}
	if (f->r != NULL && f->follow) {
		if (f->last_sent < f->r->info.last_seq)
			log_warnx("run=%s: store lags the run (seq %lld < %lld)", f->run_id, (long long)f->last_sent,
			          (long long)f->r->info.last_seq);
		f->live = 1;
		return;
	}
	follow_finish(f);
}

void follow_start(struct conn *c, uint32_t msgid, const char *run_id, struct run *r, int64_t since, int follow,
                  const struct run_info *fin)
{
	struct follower *f = xcalloc(1, sizeof(*f));

	f->c = c;
	f->msgid = msgid;
	f->run_id = xstrdup(run_id);
	f->last_sent = since < 0 ? 0 : since;
	f->follow = follow;
	if (r != NULL) {
		f->r = r;
		TAILQ_INSERT_TAIL(&r->followers, f, run_entry);
	} else if (fin != NULL) {
		follow_snapshot(f, fin);
	}
	TAILQ_INSERT_TAIL(&c->followers, f, conn_entry);
	follow_catch_up(f);
}

void follow_set_cap(size_t cap)
{
	follow_cap = cap > 4096 ? cap : 4096;
}

void follow_push(struct run *r, const struct event_rec *e)
{
	struct follower *f;

	TAILQ_FOREACH(f, &r->followers, run_entry)
	{
		if (!f->live || e->seq <= f->last_sent)
			continue;
		if (conn_out_len(f->c) >= follow_cap) {
			/* Slow reader: stop buffering; the store has the record. */
			f->live = 0;
			continue;
		}
		follow_send(f, e);
	}
}

void follow_run_end(struct run *r)
{
	struct follower *f;

	while ((f = TAILQ_FIRST(&r->followers)) != NULL) {
		TAILQ_REMOVE(&r->followers, f, run_entry);
		f->r = NULL;
		follow_snapshot(f, &r->info);
		if (f->live)
			follow_finish(f);
		/* else: still catching up; it answers once it has everything */
	}
}

void follow_conn_drained(struct conn *c)
{
	struct follower *f, *next;

	for (f = TAILQ_FIRST(&c->followers); f != NULL && !c->dead; f = next) {
		next = TAILQ_NEXT(f, conn_entry);
		if (!f->live)
			follow_catch_up(f);
	}
}

void follow_conn_gone(struct conn *c)
{
	struct follower *f;

	while ((f = TAILQ_FIRST(&c->followers)) != NULL)
		follow_free(f);
}
