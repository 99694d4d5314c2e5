/*
 * rpc.c: the worker's msgpack-rpc loop on stdin/stdout. Single-threaded and
 * blocking: a request is read, handled to the end (streaming notifications
 * as it goes) and answered. While a step runs, rpc_poll_control() still
 * answers `cancel` and `ping` so the daemon can stop a long step.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

#define RPC_READ_CHUNK (256 * 1024)
#define RPC_POLL_EVERY_US 20000

/* Set by SIGTERM (worker.c) or a `cancel` request; drivers see it through
 * ctx_cancelled(). */
volatile sig_atomic_t worker_cancel;

static void rpc_write_all(struct worker *w, const void *data, size_t len)
{
	if (write_all(w->out_fd, data, len) == -1) {
		/* the daemon is gone: nobody to report to */
		log_warn("stdout");
		prepare_cleanup(w);
		_exit(1);
	}
}

/* While a request is handled, output is corked: its notifications and its
 * answer leave in one write (one wakeup of the daemon, not one per
 * record). While a driver runs, a timer uncorks after RPC_STREAM_AFTER_US:
 * a short step still costs one write, a long one shows its step_start and
 * streams what it says from then on. The timer signals one thread of ours
 * that waits for nothing else (SIGEV_THREAD_ID: the driver's threads never
 * see the signal nor an EINTR); the output buffer is shared with it under
 * rpc_out_mu (uncontended: no syscall). */
#define RPC_CORK_MAX (256 * 1024)
#define RPC_STREAM_AFTER_US 2000
#define RPC_TIMER_SIG (SIGRTMIN + 3)

static pthread_mutex_t rpc_out_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct worker *w;
	timer_t id;
	int made;      /* 1 timer made, -1 cannot: flush before the driver instead */
	int driver;    /* a driver runs */
	int streaming; /* ... and the timer fired: write through */
	pthread_mutex_t mu;
	pthread_cond_t cv;
} rpc_tm = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void rpc_flush_locked(struct worker *w)
{
	if (w->out.len == 0)
		return;
	rpc_write_all(w, w->out.data, w->out.len);
	buf_reset(&w->out);
}

void rpc_write(struct worker *w, const void *data, size_t len)
{
	pthread_mutex_lock(&rpc_out_mu);
	if (!w->cork || rpc_tm.streaming) {
		rpc_flush_locked(w);
		rpc_write_all(w, data, len);
	} else {
		buf_add(&w->out, data, len);
		if (w->out.len >= RPC_CORK_MAX)
			rpc_flush_locked(w);
	}
	pthread_mutex_unlock(&rpc_out_mu);
}

void rpc_flush(struct worker *w)
{
	pthread_mutex_lock(&rpc_out_mu);
	rpc_flush_locked(w);
	pthread_mutex_unlock(&rpc_out_mu);
}

/* The timer's thread: makes the timer aimed at itself, then flushes when
 * it fires while a driver runs (a fire after the driver is a no-op). */
static void *rpc_timer_main(void *arg)
{
	struct sigevent sev;
	sigset_t set;
	int made;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, RPC_TIMER_SIG);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = RPC_TIMER_SIG;
	sev._sigev_un._tid = gettid();
	made = timer_create(CLOCK_MONOTONIC, &sev, &rpc_tm.id) == 0 ? 1 : -1;
	pthread_mutex_lock(&rpc_tm.mu);
	rpc_tm.made = made;
	pthread_cond_signal(&rpc_tm.cv);
	pthread_mutex_unlock(&rpc_tm.mu);
	while (made > 0) {
		if (sigwaitinfo(&set, NULL) < 0)
			continue;
		pthread_mutex_lock(&rpc_out_mu);
		if (rpc_tm.driver && rpc_tm.w != NULL) {
			rpc_flush_locked(rpc_tm.w);
			rpc_tm.streaming = 1;
		}
		pthread_mutex_unlock(&rpc_out_mu);
	}
	return NULL;
}

static int rpc_timer_started;

/* A forked child has neither the thread nor the timer. */
static void rpc_timer_atfork_child(void)
{
	rpc_timer_started = 0;
	rpc_tm.made = 0;
	rpc_tm.driver = rpc_tm.streaming = 0;
}

static void rpc_timer_start(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;

	rpc_tm.made = 0; /* the thread sets 1 or -1 */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* the thread starts with every signal blocked (SIGTERM stays the main
	 * thread's) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &attr, rpc_timer_main, NULL) == 0) {
		pthread_mutex_lock(&rpc_tm.mu);
		while (rpc_tm.made == 0)
			pthread_cond_wait(&rpc_tm.cv, &rpc_tm.mu);
		pthread_mutex_unlock(&rpc_tm.mu);
	} else {
		rpc_tm.made = -1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rpc_tm.made < 0)
		log_warnx("no step timer: step output is flushed before each driver");
}

/* The timer's thread, made once per process. Starting a thread costs a
 * clone and a wait for it to be scheduled (measured 0.3-12 ms on a busy
 * 2-core machine): done while the process waits for its run (worker.c
 * calls this before serving), never on the first step's path. */
void rpc_timer_prestart(void)
{
	static int atfork;

	if (!atfork)
		atfork = pthread_atfork(NULL, NULL, rpc_timer_atfork_child) == 0;
	if (!rpc_timer_started) {
		rpc_timer_started = 1;
		rpc_timer_start();
	}
}

void rpc_driver_begin(struct worker *w)
{
	struct itimerspec its = {.it_value = {.tv_nsec = RPC_STREAM_AFTER_US * 1000}};

	rpc_timer_prestart(); /* a no-op once made */
	pthread_mutex_lock(&rpc_out_mu);
	rpc_tm.w = w;
	rpc_tm.driver = 1;
	rpc_tm.streaming = 0;
	pthread_mutex_unlock(&rpc_out_mu);
	/* re-armed per step, never disarmed: one syscall per step */
	if (rpc_tm.made > 0 && timer_settime(rpc_tm.id, 0, &its, NULL) == 0)
		return;
	pthread_mutex_lock(&rpc_out_mu);
	rpc_flush_locked(w);
	rpc_tm.streaming = 1;
	pthread_mutex_unlock(&rpc_out_mu);
}

void rpc_driver_end(struct worker *w)
{
	(void)w;
	pthread_mutex_lock(&rpc_out_mu);
	rpc_tm.driver = 0;
	rpc_tm.streaming = 0;
	pthread_mutex_unlock(&rpc_out_mu);
}

void rpc_reply_begin(struct buf *b, msgpack_packer *pk, uint32_t msgid)
{
	buf_init(b);
	rpc_packer_init(pk, b);
	rpc_pack_result_head(pk, msgid);
}

void rpc_reply_end(struct worker *w, struct buf *b)
{
	rpc_write(w, b->data, b->len);
	buf_free(b);
}

void rpc_reply_error(struct worker *w, uint32_t msgid, enum rpc_err code, const char *msg)
{
	char *m = emit_mask(w, msg);
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_error(&pk, msgid, rpc_err_name(code), m);
	rpc_write(w, b.data, b.len);
	buf_free(&b);
	free(m);
}

void rpc_reply_empty(struct worker *w, uint32_t msgid)
{
	msgpack_packer pk;
	struct buf b;

	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 0);
	rpc_reply_end(w, &b);
}

static int rpc_replay_rec_cb(const struct journal_rec *r, void *arg)
{
	rpc_write(arg, r->data, r->len);
	return 0;
}

static void rpc_replay_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	int64_t since = 0;
	msgpack_packer pk;
	struct buf b;

	if (mp_get_int(params, "since", &since) < 0) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "key 'since' must be an integer");
		return;
	}
	journal_each(&w->journal, since, rpc_replay_rec_cb, w);
	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 2);
	mp_pack_kint(&pk, "last_seq", w->seq);
	/* the oldest seq still held; since < first_seq - 1 means a gap */
	mp_pack_kint(&pk, "first_seq", journal_first_seq(&w->journal));
	rpc_reply_end(w, &b);
}

static void rpc_cancel_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	(void)params;
	worker_cancel = 1;
	rpc_reply_empty(w, msgid);
}

static void rpc_ping_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	(void)params;
	rpc_reply_empty(w, msgid);
}

static const struct rpc_method {
	const char *name;
	void (*fn)(struct worker *, uint32_t, const msgpack_object *);
} rpc_methods[] = {
    {"prepare", prepare_handle},    {"exec_step", step_handle},      {"finish", artifact_finish_handle},
    {"read", artifact_read_handle}, {"replay", rpc_replay_handle},   {"cancel", rpc_cancel_handle},
    {"ping", rpc_ping_handle},      {"reset", prepare_reset_handle}, {"status", status_handle},
};

static void rpc_dispatch(struct worker *w, const struct rpc_msg *msg)
{
	static const msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
	const msgpack_object *params = msg->params ? msg->params : &empty;
	size_t i;
	char err[160];

	if (msg->type != RPC_REQUEST)
		return; /* notifications and responses from the daemon carry nothing for us */
	if (params->type != MSGPACK_OBJECT_MAP) {
		rpc_reply_error(w, msg->msgid, ERR_INVALID_REQUEST, "params must be a map");
		return;
	}
	for (i = 0; i < sizeof(rpc_methods) / sizeof(rpc_methods[0]); i++) {
		if (strcmp(rpc_methods[i].name, msg->method) == 0) {
			int corked = w->cork;
			w->cork = 1;
			rpc_methods[i].fn(w, msg->msgid, params);
			rpc_flush(w);
			w->cork = corked;
			return;
		}
	}
	snprintf(err, sizeof(err), "unknown method '%s'", log_esc(msg->method, 64));
	rpc_reply_error(w, msg->msgid, ERR_INVALID_REQUEST, err);
}

/* Read what is available (blocking when `block`). 0 data, 1 EOF, -1 error. */
static int rpc_fill(struct worker *w, int block)
{
	ssize_t n;

	if (!block) {
		struct pollfd pfd = {.fd = w->in_fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) <= 0)
			return 0;
	}
	buf_reserve(&w->in, RPC_READ_CHUNK);
	do {
		n = read(w->in_fd, w->in.data + w->in.len, RPC_READ_CHUNK);
	} while (n < 0 && errno == EINTR && block && !worker_cancel);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0) {
		w->in_eof = 1;
		return 1;
	}
	w->in.len += (size_t)n;
	if (w->in.len > w->in_hwm)
		w->in_hwm = w->in.len;
	return 0;
}

/* One complete message at in[off..): 1 and its length, 0 incomplete, -1 bad. */
static int rpc_next(struct worker *w, size_t off, size_t *msglen)
{
	const char *err = NULL;
	size_t need = 0;
	enum rpc_scan sc = rpc_scan(w->in.data + off, w->in.len - off, &w->limits, msglen, &need, &err);

	if (sc == RPC_SCAN_ERROR) {
		log_warnx("protocol violation on stdin: %s", err ? err : "bad message");
		return -1;
	}
	return sc == RPC_SCAN_OK;
}

int rpc_poll_control(struct worker *w)
{
	int64_t now = time_mono_us();
	size_t off, len;
	struct rpc_msg msg;
	char err[256];

	if (worker_cancel || w->in_eof || now - w->last_poll_us < RPC_POLL_EVERY_US)
		return worker_cancel || w->in_eof;
	w->last_poll_us = now;
	if (rpc_fill(w, 0) != 0)
		return 1; /* EOF or error: nobody waits for this step any more */
	off = w->in_peek;
	while (off < w->in.len && rpc_next(w, off, &len) == 1) {
		if (rpc_decode(w->in.data + off, len, &msg, err, sizeof(err)) == 0 && msg.type == RPC_REQUEST &&
		    (strcmp(msg.method, "cancel") == 0 || strcmp(msg.method, "ping") == 0)) {
			rpc_dispatch(w, &msg);
			rpc_msg_free(&msg);
			memmove(w->in.data + off, w->in.data + off + len, w->in.len - off - len);
			w->in.len -= len;
			continue;
		}
		if (msg.raw != NULL)
			rpc_msg_free(&msg);
		off += len;
	}
	w->in_peek = off;
	return worker_cancel;
}

int rpc_serve(struct worker *w)
{
	msgpack_zone zone;
	struct rpc_msg msg;
	size_t len;
	char err[256];
	int rc;

	/* each request decoded once, in place (rpc_next scanned it with the
	 * limits); the zone is reused. A handler reads its params before it
	 * runs a driver, whose rpc_poll_control may move w->in. */
	if (!msgpack_zone_init(&zone, 8192))
		fatalx("rpc_serve: out of memory");
	for (;;) {
		while ((rc = rpc_next(w, 0, &len)) == 1) {
			msgpack_zone_clear(&zone);
			if (rpc_decode_view(w->in.data, len, &msg, &zone, err, sizeof(err)) < 0) {
				log_warnx("protocol violation on stdin: %s", err);
				msgpack_zone_destroy(&zone);
				return -1;
			}
			w->in_peek = len;
			rpc_dispatch(w, &msg);
			buf_consume(&w->in, len);
			w->in_peek = 0;
		}
		if (rc < 0 || w->in_eof)
			break;
		if (rpc_fill(w, 1) < 0) {
			log_warn("stdin");
			rc = -1;
			break;
		}
	}
	msgpack_zone_destroy(&zone);
	return rc < 0 ? -1 : 0;
}
