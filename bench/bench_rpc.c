/*
 * bench_rpc.c: client-side benchmarks against a running osirisd, speaking
 * msgpack-rpc on its control socket with the project's proto library:
 * submit -> first step_start latency and run duration, sustained throughput
 * with pipelined submits, follow latency (worker ts -> client receive) and a
 * burst of concurrent runs. -b picks the backend (local or e2b); -s N lets
 * the pool refill before every Nth latency run. Prints raw
 * "name p50 p99 n" lines that bench/run.sh and bench/e2b.sh format.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "proto/proto.h"

struct bconn {
	int fd;
	struct buf in;
	struct rpc_limits lim;
	uint32_t next_id;
};

struct samples {
	int64_t *v;
	size_t n, cap;
};

/* What the daemon's worker_acquired event said about one run, and the
 * receive times of its step_starts. */
struct bench_acq {
	int seen, warm;
	int64_t wait_ms;
	int64_t last_step_us; /* monotonic receive time of the last step_start */
	struct samples *gaps; /* step_start to step_start, when non-NULL */
};

static char *bench_backend; /* -b; NULL: the daemon's default (local) */
static int bench_settle;    /* -s N: in latency mode, let the pool refill before every Nth run */

static void samples_add(struct samples *s, int64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n++] = v;
}

static int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile (p in 0..100). */
static int64_t samples_pct(struct samples *s, double p)
{
	size_t k;

	if (s->n == 0)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), bench_cmp_i64);
	k = (size_t)ceil(p / 100.0 * (double)s->n);
	return s->v[k == 0 ? 0 : k - 1];
}

static void samples_print(struct samples *s, const char *name)
{
	int64_t p50 = samples_pct(s, 50), p99 = samples_pct(s, 99);

	printf("%s %lld %lld %zu\n", name, (long long)p50, (long long)p99, s->n);
	fflush(stdout);
}

/* ---- connection ------------------------------------------------------ */

static void bconn_send(struct bconn *c, const struct buf *b)
{
	size_t off = 0;
	ssize_t n;

	while (off < b->len) {
		n = write(c->fd, b->data + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fatal("bench: write to the daemon");
		off += (size_t)n;
	}
}

/* Block until one whole message is there; fatal on EOF or garbage. */
static void bconn_read(struct bconn *c, struct rpc_msg *m)
{
	size_t msglen, need;
	const char *serr;
	char err[256];
	ssize_t n;

	for (;;) {
		if (c->in.len > 0) {
			switch (rpc_scan(c->in.data, c->in.len, &c->lim, &msglen, &need, &serr)) {
			case RPC_SCAN_OK:
				if (rpc_decode(c->in.data, msglen, m, err, sizeof(err)) == -1)
					fatalx("bench: bad message from the daemon: %s", err);
				buf_consume(&c->in, msglen);
				return;
			case RPC_SCAN_ERROR:
				fatalx("bench: bad message from the daemon: %s", serr);
			case RPC_SCAN_MORE:
				break;
			}
		}
		buf_reserve(&c->in, 65536);
		n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fatal("bench: read from the daemon");
		if (n == 0)
			fatalx("bench: the daemon closed the connection");
		c->in.len += (size_t)n;
	}
}

static void bconn_check_error(const struct rpc_msg *m, const char *what)
{
	const msgpack_object *msg;

	if (m->error == NULL)
		return;
	msg = mp_get(m->error, "message");
	fatalx("bench: %s: %.*s", what, msg && msg->type == MSGPACK_OBJECT_STR ? (int)msg->via.str.size : 7,
	       msg && msg->type == MSGPACK_OBJECT_STR ? msg->via.str.ptr : "(error)");
}

/* Wait for the response to msgid, dropping notifications. */
static void bconn_wait(struct bconn *c, uint32_t msgid, struct rpc_msg *m, const char *what)
{
	for (;;) {
		bconn_read(c, m);
		if (m->type == RPC_RESPONSE && m->msgid == msgid) {
			bconn_check_error(m, what);
			return;
		}
		rpc_msg_free(m);
	}
}

/* The next response, in order (submits are answered in order). */
static void bconn_read_response(struct bconn *c, struct rpc_msg *m)
{
	for (;;) {
		bconn_read(c, m);
		if (m->type == RPC_RESPONSE)
			return;
		rpc_msg_free(m);
	}
}

static uint32_t bconn_request(struct bconn *c, const char *method, void (*fill)(msgpack_packer *, const void *),
                              const void *arg)
{
	struct buf b;
	msgpack_packer pk;
	uint32_t id = ++c->next_id;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_request_head(&pk, id, method);
	fill(&pk, arg);
	bconn_send(c, &b);
	buf_free(&b);
	return id;
}

static void bench_fill_hello(msgpack_packer *pk, const void *arg)
{
	(void)arg;
	msgpack_pack_map(pk, 2);
	mp_pack_kstr(pk, "client", "osiris-bench");
	mp_pack_kint(pk, "protocol", PROTO_VERSION);
}

static void bench_fill_submit(msgpack_packer *pk, const void *arg)
{
	struct msg_submit m;

	memset(&m, 0, sizeof(m));
	m.bundle = *(const struct bundle *)arg;
	m.backend = bench_backend;
	msg_submit_pack(pk, &m);
}

static void bench_fill_empty(msgpack_packer *pk, const void *arg)
{
	(void)arg;
	msgpack_pack_map(pk, 0);
}

static void bench_fill_run(msgpack_packer *pk, const void *arg)
{
	msgpack_pack_map(pk, 1);
	mp_pack_kstr(pk, "run", arg);
}

static void bench_fill_follow(msgpack_packer *pk, const void *arg)
{
	msgpack_pack_map(pk, 3);
	mp_pack_kstr(pk, "run", arg);
	mp_pack_kint(pk, "since", 0);
	mp_pack_key(pk, "follow");
	msgpack_pack_true(pk);
}

static void bconn_open(struct bconn *c, const char *path)
{
	struct sockaddr_un sun;
	struct rpc_msg m;
	uint32_t id;

	memset(c, 0, sizeof(*c));
	buf_init(&c->in);
	rpc_limits_default(&c->lim, 64u << 20);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("bench: socket path too long");
	strcpy(sun.sun_path, path);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("bench: socket");
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bench: connect %s", path);
	id = bconn_request(c, "hello", bench_fill_hello, NULL);
	bconn_wait(c, id, &m, "hello");
	rpc_msg_free(&m);
}

/* ---- helpers --------------------------------------------------------- */

/* "2026-11-26T12:24:44.123Z" -> ms since the epoch, -1 when unparsable. */
static int64_t bench_iso_ms(const msgpack_object *o)
{
	char s[40], *end;
	struct tm tm;
	int64_t ms = 0;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= sizeof(s))
		return -1;
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*end == '.')
		ms = strtol(end + 1, NULL, 10);
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static char *bench_result_run(const struct rpc_msg *m)
{
	char *id = mp_strdup(mp_get(m->result, "run"));

	if (id == NULL)
		fatalx("bench: run.submit result without a run id");
	return id;
}

static int64_t bench_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void bench_load(struct bundle *b, const char *dir)
{
	char err[256];

	if (bundle_from_dir(b, dir, 256u << 20, err, sizeof(err)) == -1)
		fatalx("bench: %s: %s", dir, err);
}

/* A worker_acquired record: its data.warm and data.wait_ms into acq. */
static void bench_note_acquired(const msgpack_object *rec, struct bench_acq *acq)
{
	const msgpack_object *data = mp_get(rec, "data");
	int warm = 0;
	int64_t wait_ms = -1;

	if (acq == NULL || !mp_str_eq(mp_get(rec, "name"), "worker_acquired"))
		return;
	(void)mp_get_bool(data, "warm", &warm);
	(void)mp_get_int(data, "wait_ms", &wait_ms);
	acq->seen = 1;
	acq->warm = warm;
	acq->wait_ms = wait_ms;
}

/* Follow run until its final response. first_us: receive time of the
 * first step_start (monotonic), -1 when none. lat: worker ts -> receive
 * (µs, wall clock) of every worker record, when non-NULL. acq: what
 * worker_acquired said, when non-NULL. */
static const char *bench_follow(struct bconn *c, const char *run, int64_t *first_us, struct samples *lat,
                                struct bench_acq *acq)
{
	static char state[32];
	const msgpack_object *name, *origin, *st;
	struct rpc_msg m;
	/* Records older than the follow request are catch-up from the store,
	 * not live latency: sample only those stamped after it (ts is whole ms). */
	int64_t attach_ms = bench_wall_us() / 1000 + 1;
	uint32_t id = bconn_request(c, "run.follow", bench_fill_follow, run);
	int64_t ts, now;

	*first_us = -1;
	for (;;) {
		bconn_read(c, &m);
		if (m.type == RPC_NOTIFY && m.params != NULL) {
			name = mp_get(m.params, "name");
			if (mp_str_eq(name, "step_start")) {
				now = time_mono_us();
				if (*first_us < 0)
					*first_us = now;
				if (acq != NULL && acq->gaps != NULL && acq->last_step_us > 0)
					samples_add(acq->gaps, now - acq->last_step_us);
				if (acq != NULL)
					acq->last_step_us = now;
			}
			bench_note_acquired(m.params, acq);
			origin = mp_get(m.params, "origin");
			if (lat != NULL && mp_str_eq(origin, "worker") &&
			    (ts = bench_iso_ms(mp_get(m.params, "ts"))) >= attach_ms)
				samples_add(lat, bench_wall_us() - ts * 1000);
		} else if (m.type == RPC_RESPONSE && m.msgid == id) {
			bconn_check_error(&m, "run.follow");
			st = mp_get(m.result, "state");
			snprintf(state, sizeof(state), "%.*s",
			         st && st->type == MSGPACK_OBJECT_STR ? (int)st->via.str.size : 1,
			         st && st->type == MSGPACK_OBJECT_STR ? st->via.str.ptr : "?");
			rpc_msg_free(&m);
			return state;
		}
		rpc_msg_free(&m);
	}
}

/* 1 when the backend's pool holds its target idle with nothing warming. */
static int bench_pool_full(struct bconn *c, const char *backend)
{
	const msgpack_object *pools, *p;
	int64_t target = 0, idle = 0, warming = 1;
	struct rpc_msg m;
	uint32_t i;

	bconn_wait(c, bconn_request(c, "pool.status", bench_fill_empty, NULL), &m, "pool.status");
	pools = mp_get(m.result, "pools");
	for (i = 0; pools != NULL && pools->type == MSGPACK_OBJECT_ARRAY && i < pools->via.array.size; i++) {
		p = &pools->via.array.ptr[i];
		if (!mp_str_eq(mp_get(p, "backend"), backend))
			continue;
		(void)mp_get_int(p, "target", &target);
		(void)mp_get_int(p, "idle", &idle);
		(void)mp_get_int(p, "warming", &warming);
	}
	rpc_msg_free(&m);
	return idle >= target && warming == 0;
}

/* Wait (at most 60 s) until the pool is full again: the sandboxes or
 * workers that replace used ones are not being made while we measure. */
static void bench_pool_settle(struct bconn *c)
{
	const char *backend = bench_backend != NULL ? bench_backend : "local";
	int i;

	for (i = 0; i < 6000 && !bench_pool_full(c, backend); i++)
		usleep(10000);
}

/* ---- modes ----------------------------------------------------------- */

/* latency N DIR PAUSE_MS: submit, follow to the end, N times. Also counts
 * the runs that got a warm worker, and the daemon's wait for one. */
static void bench_latency(const char *sock, int n, const char *dir, int pause_ms)
{
	struct samples ack = {0}, first = {0}, total = {0}, wait = {0}, gaps = {0};
	struct bench_acq acq;
	struct bconn c;
	struct bundle b;
	struct rpc_msg m;
	int64_t t0, t1;
	const char *st;
	char *run;
	int i, failed = 0, warm = 0, stalls = 0;
	size_t k;

	bench_load(&b, dir);
	bconn_open(&c, sock);
	for (i = 0; i < n; i++) {
		if (bench_settle > 0 && i % bench_settle == 0)
			bench_pool_settle(&c);
		if (pause_ms > 0)
			usleep((useconds_t)pause_ms * 1000);
		t0 = time_mono_us();
		bconn_wait(&c, bconn_request(&c, "run.submit", bench_fill_submit, &b), &m, "run.submit");
		samples_add(&ack, time_mono_us() - t0);
		run = bench_result_run(&m);
		rpc_msg_free(&m);
		memset(&acq, 0, sizeof(acq));
		acq.gaps = &gaps;
		st = bench_follow(&c, run, &t1, NULL, &acq);
		if (strcmp(st, "succeeded") != 0)
			failed++;
		if (t1 > 0)
			samples_add(&first, t1 - t0);
		samples_add(&total, time_mono_us() - t0);
		if (acq.seen) {
			warm += acq.warm;
			samples_add(&wait, acq.wait_ms);
		}
		free(run);
	}
	samples_print(&ack, "submit_ack_us");
	samples_print(&first, "first_step_us");
	samples_print(&total, "run_us");
	samples_print(&wait, "acquire_wait_ms");
	for (k = 0; k < gaps.n; k++)
		stalls += gaps.v[k] >= 30000;
	samples_print(&gaps, "step_gap_us");
	printf("step_gaps_over_30ms %d\n", stalls);
	printf("warm %d %d\n", warm, n);
	printf("failed %d\n", failed);
	bundle_free(&b);
}

/* follow N DIR: per worker record, receive time - record ts. */
static void bench_followlat(const char *sock, int n, const char *dir)
{
	struct samples lat = {0};
	struct bconn c;
	struct bundle b;
	struct rpc_msg m;
	int64_t t1;
	char *run;
	int i;

	bench_load(&b, dir);
	bconn_open(&c, sock);
	for (i = 0; i < n; i++) {
		bconn_wait(&c, bconn_request(&c, "run.submit", bench_fill_submit, &b), &m, "run.submit");
		run = bench_result_run(&m);
		rpc_msg_free(&m);
		bench_follow(&c, run, &t1, &lat, NULL);
		free(run);
	}
	samples_print(&lat, "follow_us");
	bundle_free(&b);
}

static int bench_state_final(const msgpack_object *st)
{
	static const char *const fin[] = {"succeeded", "failed", "cancelled", "lost"};
	size_t i;

	for (i = 0; i < sizeof(fin) / sizeof(fin[0]); i++)
		if (mp_str_eq(st, fin[i]))
			return 1;
	return 0;
}

/* Poll run.get until run is final; its submitted->finished latency (ms). */
static int64_t bench_wait_final(struct bconn *c, const char *run, int *ok)
{
	struct rpc_msg m;
	int64_t lat;

	for (;;) {
		bconn_wait(c, bconn_request(c, "run.get", bench_fill_run, run), &m, "run.get");
		if (bench_state_final(mp_get(m.result, "state"))) {
			*ok = mp_str_eq(mp_get(m.result, "state"), "succeeded");
			lat = bench_iso_ms(mp_get(m.result, "finished_at")) -
			      bench_iso_ms(mp_get(m.result, "submitted_at"));
			rpc_msg_free(&m);
			return lat;
		}
		rpc_msg_free(&m);
		usleep(2000);
	}
}

/* throughput N CONNS DIR: N submits spread over CONNS connections, each
 * with up to WINDOW requests in flight; then wait until all are final. */
#define BENCH_WINDOW 32
static void bench_throughput(const char *sock, int n, int nconn, const char *dir)
{
	struct bconn *c = xcalloc((size_t)nconn, sizeof(*c));
	int *sent = xcalloc((size_t)nconn, sizeof(int)), *done = xcalloc((size_t)nconn, sizeof(int));
	char **runs = xcalloc((size_t)n, sizeof(char *));
	struct samples lat = {0};
	struct bundle b;
	struct rpc_msg m;
	int64_t t0, t_acked, t_end;
	int i, k, nruns = 0, total_sent = 0, ok, failed = 0;

	bench_load(&b, dir);
	for (i = 0; i < nconn; i++)
		bconn_open(&c[i], sock);
	t0 = time_mono_us();
	while (nruns < n) {
		for (i = 0; i < nconn; i++) {
			while (total_sent < n && sent[i] - done[i] < BENCH_WINDOW) {
				bconn_request(&c[i], "run.submit", bench_fill_submit, &b);
				sent[i]++;
				total_sent++;
			}
			if (done[i] < sent[i]) {
				bconn_read_response(&c[i], &m);
				bconn_check_error(&m, "run.submit");
				runs[nruns++] = bench_result_run(&m);
				rpc_msg_free(&m);
				done[i]++;
			}
		}
	}
	t_acked = time_mono_us();
	for (k = 0; k < n; k++) {
		samples_add(&lat, bench_wait_final(&c[0], runs[k], &ok));
		failed += !ok;
		free(runs[k]);
	}
	t_end = time_mono_us();
	printf("throughput %d %lld %lld %d\n", n, (long long)(t_acked - t0), (long long)(t_end - t0), failed);
	samples_print(&lat, "run_latency_ms");
	bundle_free(&b);
	free(runs);
	free(sent);
	free(done);
	free(c);
}

/* One run of a burst: when its submit went out, what came back. */
struct burst_run {
	char *id;
	int64_t sent_us;  /* wall clock */
	int64_t first_ms; /* ts of its first step_start, -1 until seen */
	uint32_t follow_id;
	struct bench_acq acq;
};

static struct burst_run *burst_find(struct burst_run *v, int n, const msgpack_object *run)
{
	int i;

	for (i = 0; i < n; i++) {
		if (mp_str_eq(run, v[i].id))
			return &v[i];
	}
	return NULL;
}

/* burst N DIR: N submits written back to back on one connection, then N
 * follows on it, all live at once. A run's first step time is its
 * step_start ts (worker clock, ms) minus the wall time its submit went
 * out: with N runs in flight on one connection, receive times would
 * measure this client's reading order too. */
static void bench_burst(const char *sock, int n, const char *dir)
{
	struct burst_run *v = xcalloc((size_t)n, sizeof(*v)), *br;
	struct samples first = {0}, wait = {0};
	struct bconn c;
	struct bundle b;
	struct rpc_msg m;
	int64_t t0, ts;
	int i, done = 0, failed = 0, warm = 0;

	bench_load(&b, dir);
	bconn_open(&c, sock);
	t0 = time_mono_us();
	for (i = 0; i < n; i++) {
		v[i].sent_us = bench_wall_us();
		v[i].first_ms = -1;
		bconn_request(&c, "run.submit", bench_fill_submit, &b);
	}
	for (i = 0; i < n; i++) {
		bconn_read_response(&c, &m);
		bconn_check_error(&m, "run.submit");
		v[i].id = bench_result_run(&m);
		rpc_msg_free(&m);
	}
	for (i = 0; i < n; i++)
		v[i].follow_id = bconn_request(&c, "run.follow", bench_fill_follow, v[i].id);
	while (done < n) {
		bconn_read(&c, &m);
		if (m.type == RPC_NOTIFY && m.params != NULL &&
		    (br = burst_find(v, n, mp_get(m.params, "run"))) != NULL) {
			bench_note_acquired(m.params, &br->acq);
			if (br->first_ms < 0 && mp_str_eq(mp_get(m.params, "name"), "step_start"))
				br->first_ms = bench_iso_ms(mp_get(m.params, "ts"));
		} else if (m.type == RPC_RESPONSE) {
			bconn_check_error(&m, "run.follow");
			failed += !mp_str_eq(mp_get(m.result, "state"), "succeeded");
			done++;
		}
		rpc_msg_free(&m);
	}
	for (i = 0; i < n; i++) {
		if ((ts = v[i].first_ms) >= 0)
			samples_add(&first, ts * 1000 - v[i].sent_us);
		if (v[i].acq.seen) {
			warm += v[i].acq.warm;
			samples_add(&wait, v[i].acq.wait_ms);
		}
		free(v[i].id);
	}
	samples_print(&first, "burst_first_step_us");
	samples_print(&wait, "burst_wait_ms");
	printf("burst_max_wait_ms %lld\n", (long long)(wait.n > 0 ? samples_pct(&wait, 100) : -1));
	printf("burst_warm %d %d\n", warm, n);
	printf("burst_total_us %lld\n", (long long)(time_mono_us() - t0));
	printf("failed %d\n", failed);
	bundle_free(&b);
	free(v);
}

int main(int argc, char **argv)
{
	const char *sock;
	int ch;

	log_init("bench_rpc", LOG_LVL_WARN);
	while ((ch = getopt(argc, argv, "+b:s:")) != -1) {
		if (ch == 'b')
			bench_backend = optarg;
		else if (ch == 's')
			bench_settle = atoi(optarg);
		else
			fatalx("usage: bench_rpc [-b BACKEND] [-s N] SOCKET MODE ...");
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 5)
		fatalx("usage: bench_rpc [-b BACKEND] [-s N] SOCKET latency N DIR [PAUSE_MS] | follow N DIR | "
		       "throughput N CONNS DIR | burst N DIR");
	sock = argv[1];
	if (strcmp(argv[2], "latency") == 0)
		bench_latency(sock, atoi(argv[3]), argv[4], argc > 5 ? atoi(argv[5]) : 0);
	else if (strcmp(argv[2], "follow") == 0)
		bench_followlat(sock, atoi(argv[3]), argv[4]);
	else if (strcmp(argv[2], "throughput") == 0 && argc > 5)
		bench_throughput(sock, atoi(argv[3]), atoi(argv[4]), argv[5]);
	else if (strcmp(argv[2], "burst") == 0)
		bench_burst(sock, atoi(argv[3]), argv[4]);
	else
		fatalx("bench_rpc: unknown mode %s", argv[2]);
	return 0;
}
