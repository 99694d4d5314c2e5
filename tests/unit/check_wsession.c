/*
 * check_wsession.c: the worker session every backend shares
 * (daemon/wsession.c): `ready`, requests and answers, the ordered and
 * coalescing send queue over a transport that takes bytes late (E2B's
 * SendInput), reset between runs, late answers after a run left, protocol
 * errors and the heartbeat.
 */
#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/osirisd.h"

static struct {
	struct pool pool;
	struct worker w;
	struct buf sent; /* what the transport took, in order */
	size_t writes;   /* transport write calls that took bytes */
	int busy;        /* the transport takes nothing (a call in flight) */
	int killed, ready, failed, notified, errors, gone, replies;
	char last_reply[32];
} f;

static ssize_t t_write(void *tctx, const void *buf, size_t len)
{
	(void)tctx;
	if (f.busy)
		return 0;
	buf_add(&f.sent, buf, len);
	f.writes++;
	return (ssize_t)len;
}

static void t_kill(void *tctx, int hard)
{
	(void)tctx;
	f.killed = hard ? 2 : 1;
}

static void o_ready(struct worker *w)
{
	(void)w;
	f.ready++;
}

static void o_failed(struct worker *w, const char *why)
{
	(void)w;
	(void)why;
	f.failed++;
}

static void u_notify(struct worker *w, const struct rpc_msg *m, void *arg)
{
	(void)w;
	(void)m;
	(void)arg;
	f.notified++;
}

static void u_error(struct worker *w, const char *why, void *arg)
{
	(void)w;
	(void)why;
	(void)arg;
	f.errors++;
}

static void u_gone(struct worker *w, const char *reason, void *arg)
{
	(void)w;
	(void)reason;
	(void)arg;
	f.gone++;
}

static void u_reply(struct worker *w, const struct rpc_msg *m, void *arg)
{
	(void)w;
	f.replies++;
	snprintf(f.last_reply, sizeof(f.last_reply), "%s", (const char *)arg);
	(void)m;
}

static const struct wsess_transport transport = {.write = t_write, .kill = t_kill};
static int64_t forked_pid;
static void o_forked(struct worker *w, int64_t pid)
{
	(void)w;
	forked_pid = pid;
}

static const struct wsess_owner owner = {.ready = o_ready, .failed = o_failed, .forked = o_forked};
static const struct wsess_user user = {.notify = u_notify, .error = u_error, .gone = u_gone};

static struct wsess *new_sess(void)
{
	memset(&f, 0, sizeof(f));
	buf_init(&f.sent);
	f.pool.heartbeat_s = 0;
	f.w.pool = &f.pool;
	snprintf(f.w.id, sizeof(f.w.id), "test-1");
	f.w.sess = wsess_new(&f.w, &transport, NULL, &owner, 1 << 20);
	return f.w.sess;
}

static void free_sess(void)
{
	wsess_free(f.w.sess);
	buf_free(&f.sent);
}

/* What the worker writes: a notification or a response. */
static void feed_notify(struct wsess *s, const char *method)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_notify_head(&pk, method);
	msgpack_pack_map(&pk, 0);
	wsess_input(s, b.data, b.len);
	buf_free(&b);
}

static void feed_response(struct wsess *s, uint32_t msgid, int error)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_uint32(&pk, msgid);
	if (error) {
		msgpack_pack_map(&pk, 2);
		mp_pack_kstr(&pk, "code", "internal");
		mp_pack_kstr(&pk, "message", "no");
		msgpack_pack_nil(&pk);
	} else {
		msgpack_pack_nil(&pk);
		msgpack_pack_map(&pk, 0);
	}
	wsess_input(s, b.data, b.len);
	buf_free(&b);
}

/* The requests the transport took, decoded in order: methods and ids. */
static size_t sent_requests(char methods[][16], uint32_t *ids, size_t max)
{
	size_t off = 0, n = 0, len, need;
	struct rpc_limits l;
	struct rpc_msg m;
	const char *serr;
	char err[128];

	rpc_limits_default(&l, 1 << 20);
	while (off < f.sent.len && n < max) {
		ck_assert_int_eq(rpc_scan(f.sent.data + off, f.sent.len - off, &l, &len, &need, &serr), RPC_SCAN_OK);
		ck_assert_int_eq(rpc_decode(f.sent.data + off, len, &m, err, sizeof(err)), 0);
		ck_assert_int_eq(m.type, RPC_REQUEST);
		snprintf(methods[n], 16, "%.15s", m.method);
		ids[n++] = m.msgid;
		rpc_msg_free(&m);
		off += len;
	}
	return n;
}

START_TEST(test_ready_then_requests_in_order)
{
	struct wsess *s = new_sess();
	char methods[8][16];
	uint32_t ids[8];

	feed_notify(s, "log"); /* before ready: ignored */
	ck_assert_int_eq(f.ready, 0);
	feed_notify(s, "ready");
	ck_assert_int_eq(f.ready, 1);
	ck_assert(wsess_is_idle(s));
	/* Not attached: a run's request is refused. */
	msgpack_pack_map(wsess_begin(s, "exec_step"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "x"), -1);
	wsess_attach(s, &user, NULL);
	msgpack_pack_map(wsess_begin(s, "prepare"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "prepare"), 0);
	msgpack_pack_map(wsess_begin(s, "exec_step"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "exec1"), 0);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 2);
	ck_assert_str_eq(methods[0], "prepare");
	ck_assert_str_eq(methods[1], "exec_step");
	ck_assert_uint_eq(wsess_pending(s), 2);
	feed_response(s, ids[0], 0);
	ck_assert_str_eq(f.last_reply, "prepare");
	feed_notify(s, "event");
	ck_assert_int_eq(f.notified, 1);
	feed_response(s, ids[1], 0);
	ck_assert_str_eq(f.last_reply, "exec1");
	ck_assert_uint_eq(wsess_pending(s), 0);
	ck_assert_int_eq(f.killed, 0);
	free_sess();
}
END_TEST

/* `ready` with `drivers` gives the pool its list (submits are checked
 * against it); one without keeps it; a malformed one kills the worker. */
static void feed_ready_drivers(struct wsess *s, int ndrivers, const char *const *names, const char *version)
{
	msgpack_packer pk;
	struct buf b;
	int i;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_notify_head(&pk, "ready");
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "version", version);
	mp_pack_key(&pk, "drivers");
	if (ndrivers < 0) {
		msgpack_pack_int(&pk, 5);
	} else {
		msgpack_pack_array(&pk, (size_t)ndrivers);
		for (i = 0; i < ndrivers; i++)
			mp_pack_str(&pk, names[i]);
	}
	wsess_input(s, b.data, b.len);
	buf_free(&b);
}

static void free_pool_drivers(void)
{
	size_t i;

	for (i = 0; i < f.pool.ndrivers; i++)
		free(f.pool.drivers[i]);
	free(f.pool.drivers);
	free(f.pool.worker_version);
}

static void set_pool_drivers(const struct pool_ops *ops, const char *name, const char *version)
{
	f.pool.ops = ops;
	f.pool.drivers = xcalloc(1, sizeof(char *));
	f.pool.drivers[0] = xstrdup(name);
	f.pool.ndrivers = 1;
	f.pool.drivers_known = 1;
	f.pool.worker_version = xstrdup(version);
}

START_TEST(test_ready_names_drivers)
{
	static const struct pool_ops ops = {.name = "test"};
	static const char *const names[] = {"osiris.noop", "mysql.writer"};
	struct wsess *s = new_sess();

	f.pool.ops = &ops;
	ck_assert(pool_driver_known("anything.at_all", &f.pool)); /* nothing said yet: the worker decides */
	feed_ready_drivers(s, 2, names, "9.9");
	ck_assert_int_eq(f.ready, 1);
	ck_assert_int_eq(f.pool.drivers_known, 1);
	ck_assert_str_eq(f.pool.worker_version, "9.9");
	ck_assert(pool_driver_known("osiris.noop", &f.pool));
	ck_assert(pool_driver_known("mysql.writer", &f.pool));
	ck_assert(!pool_driver_known("no.such_driver", &f.pool));
	ck_assert(!pool_driver_known("osiris.noo", &f.pool));
	free_pool_drivers();
	free_sess();

	/* An older worker of the same pool (no `drivers`): the list stays. */
	s = new_sess();
	set_pool_drivers(&ops, "osiris.noop", "1.0");
	feed_notify(s, "ready");
	ck_assert_int_eq(f.ready, 1);
	ck_assert_str_eq(f.pool.worker_version, "1.0");
	ck_assert(pool_driver_known("osiris.noop", &f.pool));
	ck_assert(!pool_driver_known("mysql.writer", &f.pool));
	free_pool_drivers();
	free_sess();

	/* Another version's list replaces it. */
	s = new_sess();
	set_pool_drivers(&ops, "osiris.noop", "1.0");
	feed_ready_drivers(s, 1, names + 1, "2.0");
	ck_assert_str_eq(f.pool.worker_version, "2.0");
	ck_assert(!pool_driver_known("osiris.noop", &f.pool));
	ck_assert(pool_driver_known("mysql.writer", &f.pool));
	free_pool_drivers();
	free_sess();

	s = new_sess(); /* drivers: 5 */
	f.pool.ops = &ops;
	feed_ready_drivers(s, -1, NULL, "9.9");
	ck_assert_int_eq(f.ready, 0);
	ck_assert_int_ne(f.killed, 0);
	ck_assert_int_eq(f.pool.drivers_known, 0);
	free_sess();
}
END_TEST

/* A transport that takes nothing while a call is in flight: requests wait
 * in order and go out together once it can take them. */
START_TEST(test_slow_transport_ordered_coalesced)
{
	struct wsess *s = new_sess();
	char methods[8][16];
	uint32_t ids[8];

	feed_notify(s, "ready");
	wsess_attach(s, &user, NULL);
	f.busy = 1;
	msgpack_pack_map(wsess_begin(s, "exec_step"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "a"), 0);
	msgpack_pack_map(wsess_begin(s, "exec_step"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "b"), 0);
	msgpack_pack_map(wsess_begin(s, "cancel"), 0);
	ck_assert_int_eq(wsess_end(s, NULL, NULL), 0);
	ck_assert_uint_eq(f.sent.len, 0);
	f.busy = 0;
	wsess_writable(s);
	ck_assert_uint_eq(f.writes, 1); /* one write for the three */
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 3);
	ck_assert_str_eq(methods[0], "exec_step");
	ck_assert_str_eq(methods[2], "cancel");
	ck_assert_uint_lt(ids[0], ids[1]);
	ck_assert_uint_lt(ids[1], ids[2]);
	free_sess();
}
END_TEST

/* After the run left, answers still due to it are skipped (not a protocol
 * error); reset makes the worker idle again, or failed when refused. */
START_TEST(test_detach_reset)
{
	struct wsess *s = new_sess();
	char methods[8][16];
	uint32_t ids[8];
	size_t n;

	feed_notify(s, "ready");
	wsess_attach(s, &user, NULL);
	msgpack_pack_map(wsess_begin(s, "exec_step"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "late"), 0);
	ck_assert_int_eq(wsess_reset(s), 0);
	ck_assert(!wsess_is_idle(s));
	n = sent_requests(methods, ids, 8);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(methods[1], "reset");
	feed_response(s, ids[0], 0); /* the old run's answer */
	ck_assert_int_eq(f.replies, 0);
	ck_assert_int_eq(f.killed, 0);
	feed_response(s, ids[1], 0);
	ck_assert_int_eq(f.ready, 2);
	ck_assert(wsess_is_idle(s));
	/* A refused reset: the owner discards the worker. */
	buf_reset(&f.sent);
	ck_assert_int_eq(wsess_reset(s), 0);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	feed_response(s, ids[0], 1);
	ck_assert_int_eq(f.failed, 1);
	free_sess();
}
END_TEST

/* A zygote worker (issue 8): its `ready` makes the session send `fork`;
 * idle once the child answered; a `reset` answer leaves it warming until
 * the zygote's next `ready`, which forks again. */
static void feed_zygote_ready(struct wsess *s)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_notify_head(&pk, "ready");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str(&pk, 6);
	msgpack_pack_str_body(&pk, "zygote", 6);
	msgpack_pack_true(&pk);
	wsess_input(s, b.data, b.len);
	buf_free(&b);
}

static void feed_fork_answer(struct wsess *s, uint32_t msgid, int64_t pid)
{
	msgpack_packer pk;
	struct buf b;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_result_head(&pk, msgid);
	msgpack_pack_map(&pk, 1);
	mp_pack_kint(&pk, "pid", pid);
	wsess_input(s, b.data, b.len);
	buf_free(&b);
}

START_TEST(test_zygote_fork_per_run)
{
	struct wsess *s = new_sess();
	char methods[8][16];
	uint32_t ids[8];

	forked_pid = 0;
	feed_zygote_ready(s);
	ck_assert(wsess_is_zygote(s));
	ck_assert(!wsess_is_idle(s));
	ck_assert_int_eq(f.ready, 0);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	ck_assert_str_eq(methods[0], "fork");
	feed_fork_answer(s, ids[0], 41);
	ck_assert_int_eq(forked_pid, 41);
	ck_assert_int_eq(f.ready, 1);
	ck_assert(wsess_is_idle(s));
	/* a run, then reset: the child answers and exits */
	wsess_attach(s, &user, NULL);
	buf_reset(&f.sent);
	ck_assert_int_eq(wsess_reset(s), 0);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	ck_assert_str_eq(methods[0], "reset");
	feed_response(s, ids[0], 0);
	ck_assert(!wsess_is_idle(s)); /* not before the zygote's ready */
	ck_assert_int_eq(f.ready, 1);
	buf_reset(&f.sent);
	feed_zygote_ready(s);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	ck_assert_str_eq(methods[0], "fork");
	feed_fork_answer(s, ids[0], 42);
	ck_assert_int_eq(forked_pid, 42);
	ck_assert_int_eq(f.ready, 2);
	ck_assert(wsess_is_idle(s));
	/* a refused fork: the owner discards the worker */
	wsess_attach(s, &user, NULL);
	buf_reset(&f.sent);
	ck_assert_int_eq(wsess_reset(s), 0);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	feed_response(s, ids[0], 0);
	buf_reset(&f.sent);
	feed_zygote_ready(s);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	feed_response(s, ids[0], 1);
	ck_assert_int_eq(f.failed, 1);
	ck_assert(!wsess_is_idle(s));
	ck_assert_int_eq(f.killed, 0);
	free_sess();
}
END_TEST

/* A zygote's child died mid-run: the run is told (gone), the session
 * forgets its requests, writes the sync marker with a fresh nonce, skips
 * whatever the dead child wrote (half a message, even a fake marker without
 * the nonce, even a `ready`) until the zygote echoes the marker, then forks
 * again. A plain worker cannot be resynced. */
START_TEST(test_zygote_resync)
{
	static const uint8_t half[] = {0x93, 0x02, 0xa5, 'e', 'v'};
	struct wsess *s = new_sess();
	uint8_t marker[PROTO_SYNC_LEN], fake[PROTO_SYNC_LEN];
	char methods[8][16];
	uint32_t ids[8];

	feed_zygote_ready(s);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	feed_fork_answer(s, ids[0], 41);
	ck_assert_int_eq(f.ready, 1);
	wsess_attach(s, &user, NULL);
	msgpack_pack_map(wsess_begin(s, "prepare"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "prepare"), 0);
	wsess_input(s, half, sizeof(half)); /* the child dies mid-write */
	wsess_child_gone(s, "its run's process ended");
	ck_assert_int_eq(f.gone, 1);
	buf_reset(&f.sent);
	ck_assert_int_eq(wsess_resync(s), 0);
	ck_assert_uint_eq(wsess_pending(s), 0);
	ck_assert_uint_eq(f.sent.len, PROTO_SYNC_LEN);
	ck_assert_mem_eq(f.sent.data, PROTO_SYNC_MAGIC, PROTO_SYNC_MAGIC_LEN);
	memcpy(marker, f.sent.data, sizeof(marker));
	/* the rest of the dead child's bytes, a marker with another nonce and
	 * a `ready`: all skipped */
	wsess_input(s, (const uint8_t *)"ent", 3);
	memcpy(fake, marker, sizeof(fake));
	fake[PROTO_SYNC_LEN - 1] ^= 1;
	wsess_input(s, fake, sizeof(fake));
	buf_reset(&f.sent);
	feed_zygote_ready(s);
	ck_assert_uint_eq(f.sent.len, 0);
	ck_assert_int_eq(f.killed, 0);
	ck_assert_int_eq(f.errors, 0);
	/* the zygote's echo, split across reads, then its `ready` */
	wsess_input(s, marker, 7);
	wsess_input(s, marker + 7, sizeof(marker) - 7);
	feed_zygote_ready(s);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 1);
	ck_assert_str_eq(methods[0], "fork");
	feed_fork_answer(s, ids[0], 43);
	ck_assert_int_eq(forked_pid, 43);
	ck_assert_int_eq(f.ready, 2);
	ck_assert(wsess_is_idle(s));
	ck_assert_int_eq(f.replies, 0); /* the dead child's request was forgotten */
	ck_assert_int_eq(f.killed, 0);
	/* a second resync picks another nonce */
	buf_reset(&f.sent);
	ck_assert_int_eq(wsess_resync(s), 0);
	ck_assert_uint_eq(f.sent.len, PROTO_SYNC_LEN);
	ck_assert(memcmp(f.sent.data, marker, PROTO_SYNC_LEN) != 0);
	free_sess();

	s = new_sess();
	feed_notify(s, "ready");
	ck_assert_int_eq(wsess_resync(s), -1);
	free_sess();
}
END_TEST

/* A worker without `zygote` in its `ready` is plain: idle at once. */
START_TEST(test_plain_ready_no_fork)
{
	struct wsess *s = new_sess();

	feed_notify(s, "ready");
	ck_assert(!wsess_is_zygote(s));
	ck_assert(wsess_is_idle(s));
	ck_assert_uint_eq(f.sent.len, 0);
	free_sess();
}
END_TEST

START_TEST(test_protocol_errors_kill)
{
	struct wsess *s = new_sess();

	feed_notify(s, "ready");
	wsess_attach(s, &user, NULL);
	feed_response(s, 4242, 0); /* nobody asked */
	ck_assert_int_eq(f.errors, 1);
	ck_assert_int_eq(f.killed, 2);
	/* Broken: nothing more is sent. */
	msgpack_pack_map(wsess_begin(s, "exec_step"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "x"), -1);
	wsess_closed(s, "killed");
	ck_assert_int_eq(f.gone, 1);
	wsess_closed(s, "again");
	ck_assert_int_eq(f.gone, 1);
	free_sess();

	s = new_sess();
	feed_notify(s, "ready");
	wsess_input(s, (const uint8_t *)"\xc1garbage", 8);
	ck_assert_int_eq(f.killed, 2);
	free_sess();
}
END_TEST

/* Re-attach: a worker already running sends no `ready`; the run's requests
 * go out at once, numbered far from the earlier session's; answers to the
 * earlier session's requests are skipped (not a protocol error), its
 * notifications reach the run. */
START_TEST(test_adopt)
{
	struct wsess *s = new_sess();
	char methods[8][16];
	uint32_t ids[8];

	wsess_adopt(s);
	ck_assert_int_eq(f.ready, 0);
	wsess_attach(s, &user, NULL);
	msgpack_pack_map(wsess_begin(s, "replay"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "replay"), 0);
	msgpack_pack_map(wsess_begin(s, "status"), 0);
	ck_assert_int_eq(wsess_end(s, u_reply, "status"), 0);
	ck_assert_uint_eq(sent_requests(methods, ids, 8), 2);
	ck_assert_str_eq(methods[0], "replay");
	ck_assert_uint_ge(ids[0], 0x80000000u);
	feed_response(s, 7, 0); /* the earlier daemon's exec_step, answered late */
	ck_assert_int_eq(f.errors, 0);
	ck_assert_int_eq(f.killed, 0);
	ck_assert_int_eq(f.replies, 0);
	feed_notify(s, "event");
	ck_assert_int_eq(f.notified, 1);
	feed_response(s, ids[0], 0);
	ck_assert_str_eq(f.last_reply, "replay");
	feed_response(s, 8, 0); /* a ping of the earlier session, still skipped */
	ck_assert_int_eq(f.killed, 0);
	feed_response(s, ids[1], 0);
	ck_assert_str_eq(f.last_reply, "status");
	ck_assert_uint_eq(wsess_pending(s), 0);
	free_sess();
}
END_TEST

/* A worker that stops answering: pinged after heartbeat_s of silence,
 * killed after two pings unanswered, and the run is told why. */
START_TEST(test_heartbeat)
{
	struct event_base *base = event_base_new();
	struct timeval tv = {4, 500000};
	struct wsess *s = new_sess();
	char methods[8][16];
	uint32_t ids[8];
	size_t n;

	f.pool.heartbeat_s = 1;
	feed_notify(s, "ready");
	wsess_attach(s, &user, NULL);
	wsess_heartbeat_start(s, base);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	n = sent_requests(methods, ids, 8);
	ck_assert_uint_ge(n, 2);
	ck_assert_str_eq(methods[0], "ping");
	ck_assert(wsess_unresponsive(s));
	ck_assert_int_eq(f.errors, 1);
	ck_assert_int_eq(f.killed, 2);
	free_sess();
	event_base_free(base);
}
END_TEST

static Suite *wsession_suite(void)
{
	Suite *s = suite_create("wsession");
	TCase *tc = tcase_create("session");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ready_then_requests_in_order);
	tcase_add_test(tc, test_slow_transport_ordered_coalesced);
	tcase_add_test(tc, test_detach_reset);
	tcase_add_test(tc, test_zygote_fork_per_run);
	tcase_add_test(tc, test_zygote_resync);
	tcase_add_test(tc, test_plain_ready_no_fork);
	tcase_add_test(tc, test_protocol_errors_kill);
	tcase_add_test(tc, test_heartbeat);
	tcase_add_test(tc, test_adopt);
	tcase_add_test(tc, test_ready_names_drivers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wsession_suite());
	int failed;

	log_init("check_wsession", LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
