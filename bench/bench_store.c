/*
 * bench_store.c: events into the daemon's SQLite store (daemon/store.c,
 * linked from LIBDAEMON): store_event_add in batches, store_flush
 * per batch, on a temp state dir. Prints events/s and per-batch latency;
 * the baseline flushes after every event (one transaction each).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "daemon/osirisd.h"

static struct store *store;

static int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t bench_pct(int64_t *v, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

	qsort(v, n, sizeof(*v), bench_cmp_i64);
	return v[k == 0 ? 0 : k - 1];
}

static void bench_insert_run(const char *id)
{
	struct step_info step;
	struct run_info r;

	memset(&r, 0, sizeof(r));
	memset(&step, 0, sizeof(step));
	step.id = "s1";
	step.driver = "osiris.noop";
	step.state = STEP_RUNNING;
	r.id = (char *)id;
	r.state = RUN_RUNNING;
	r.pipeline = "bench";
	r.backend = "local";
	r.submitted_at = r.started_at = time_now_ms();
	r.steps = &step;
	r.nsteps = 1;
	if (store_run_insert(store, &r) != 0)
		fatalx("bench_store: store_run_insert failed");
}

/* A log record like the worker's: {message: "..."} */
static void bench_event(struct event_rec *e, struct buf *data, int64_t seq)
{
	msgpack_packer pk;

	buf_reset(data);
	rpc_packer_init(&pk, data);
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "message", "row batch processed: 1000 rows, 64 KiB, table df_extract_orders");
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->ts = time_now_ms();
	e->kind = REC_LOG;
	e->name = "info";
	e->step_id = "s1";
	e->data = data->data;
	e->data_len = data->len;
}

/* nbatches batches of `batch` events; prints "NAME events_per_s p50_us p99_us nbatches". */
static void bench_run(const char *name, const char *run, int nbatches, int batch)
{
	int64_t *lat = xcalloc((size_t)nbatches, sizeof(*lat)), t0, t1, start;
	struct event_rec e;
	struct buf data;
	int64_t seq = 0;
	int i, k;

	buf_init(&data);
	bench_insert_run(run);
	start = time_mono_us();
	for (i = 0; i < nbatches; i++) {
		t0 = time_mono_us();
		for (k = 0; k < batch; k++) {
			bench_event(&e, &data, ++seq);
			if (store_event_add(store, run, &e) != 0)
				fatalx("bench_store: store_event_add failed");
		}
		if (store_flush(store) != 0)
			fatalx("bench_store: store_flush failed");
		t1 = time_mono_us();
		lat[i] = t1 - t0;
	}
	t1 = time_mono_us();
	printf("%s %.0f %lld %lld %d\n", name, (double)seq * 1e6 / (double)(t1 - start),
	       (long long)bench_pct(lat, (size_t)nbatches, 50), (long long)bench_pct(lat, (size_t)nbatches, 99),
	       nbatches);
	fflush(stdout);
	buf_free(&data);
	free(lat);
}

int main(int argc, char **argv)
{
	char err[256];
	int events, batch;

	log_init("bench_store", LOG_LVL_WARN);
	if (argc < 4)
		fatalx("usage: bench_store STATEDIR EVENTS BATCH");
	events = atoi(argv[2]);
	batch = atoi(argv[3]);
	if (events <= 0 || batch <= 0)
		fatalx("bench_store: EVENTS and BATCH must be positive");
	if ((store = store_open(argv[1], err, sizeof(err))) == NULL)
		fatalx("bench_store: %s", err);
	bench_run("batched", "bench-batched", events / batch, batch);
	/* baseline: a transaction per event, fewer of them (they are slow) */
	bench_run("per_event", "bench-single", events < 2000 ? events : 2000, 1);
	store_close(store);
	return 0;
}
