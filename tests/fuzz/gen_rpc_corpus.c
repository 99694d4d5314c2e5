/*
 * gen_rpc_corpus.c: writes the seed corpus of fuzz_rpc (small valid
 * messages of both protocols) with the real packers. Not built by make:
 *   cc -I. -o /tmp/gen tests/fuzz/gen_rpc_corpus.c build/obj/libproto.a \
 *      build/obj/libcommon.a -lmsgpackc -lcrypto && /tmp/gen tests/fuzz/corpus/rpc
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static const char *outdir;

static void emit(const char *name, struct buf *b)
{
	char *path;
	FILE *f;

	xasprintf(&path, "%s/%s", outdir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
		fatal("%s", path);
	free(path);
	buf_reset(b);
}

static void gen_control(struct buf *b, msgpack_packer *pk)
{
	struct msg_hello h = {0};
	char *caps[] = {"run.follow", "pool.status"};
	struct msg_submit s;
	struct bundle_file files[2] = {
	    {"manifest.yaml", 0644, (const uint8_t *)"pipeline:\n  id: p\nsteps: []\n", 27},
	    {"cfg/a.json", 0600, (const uint8_t *)"{\"path\": \"in.csv\"}", 18},
	};

	h.sender = "osirisctl/0.1.0";
	h.protocol = 1;
	rpc_pack_request_head(pk, 0, "hello");
	msg_hello_pack(pk, &h, 0);
	emit("hello_request", b);

	h.sender = "osirisd/0.1.0";
	h.capabilities = caps;
	h.ncapabilities = 2;
	rpc_pack_result_head(pk, 0);
	msg_hello_pack(pk, &h, 1);
	emit("hello_result", b);

	rpc_pack_request_head(pk, 1, "ping");
	msgpack_pack_map(pk, 0);
	emit("ping", b);

	memset(&s, 0, sizeof(s));
	s.bundle.files = files;
	s.bundle.n = 2;
	s.bundle.total = 45;
	kvlist_add(&s.env, "MODE", "test");
	kvlist_add(&s.secrets, "DB_PASSWORD", "hunter22");
	kvlist_add(&s.labels, "team", "data");
	s.priority = 2;
	rpc_pack_request_head(pk, 2, "run.submit");
	msg_submit_pack(pk, &s);
	emit("submit", b);
	kvlist_free(&s.env);
	kvlist_free(&s.secrets);
	kvlist_free(&s.labels);

	rpc_pack_request_head(pk, 3, "run.follow");
	msgpack_pack_map(pk, 3);
	mp_pack_kstr(pk, "run", "r-20261126-0001");
	mp_pack_kint(pk, "since", 4);
	mp_pack_key(pk, "follow");
	msgpack_pack_true(pk);
	emit("follow", b);

	rpc_pack_error(pk, 4, rpc_err_name(ERR_NOT_FOUND), "no run matches 'zz'");
	emit("error_not_found", b);
}

static void gen_run(struct buf *b, msgpack_packer *pk)
{
	struct run_info r;
	struct step_info st[1];
	struct event_rec e;
	struct buf d;
	msgpack_packer dpk;

	memset(&r, 0, sizeof(r));
	memset(st, 0, sizeof(st));
	r.id = "r-20261126-0001";
	r.state = RUN_SUCCEEDED;
	r.pipeline = "movies";
	r.backend = "local";
	r.exit_code = 0;
	r.has_exit_code = 1;
	r.uid = 1000;
	r.submitted_at = 1795695884123LL;
	r.started_at = 1795695884130LL;
	r.finished_at = 1795695884500LL;
	r.last_seq = 9;
	st[0].id = "extract-movies";
	st[0].driver = "filesystem.csv_extractor";
	st[0].state = STEP_SUCCEEDED;
	st[0].rows_out = 12;
	st[0].started_at = 1795695884131LL;
	st[0].finished_at = 1795695884140LL;
	r.steps = st;
	r.nsteps = 1;
	rpc_pack_result_head(pk, 5);
	run_info_pack(pk, &r, 1);
	emit("run_get_result", b);

	buf_init(&d);
	rpc_packer_init(&dpk, &d);
	msgpack_pack_map(&dpk, 1);
	mp_pack_kstr(&dpk, "message", "read 12 rows");
	memset(&e, 0, sizeof(e));
	e.seq = 3;
	e.ts = 1795695884135LL;
	e.kind = REC_LOG;
	e.name = "info";
	e.step_id = "extract-movies";
	e.data = d.data;
	e.data_len = d.len;
	rpc_pack_notify_head(pk, "run.event");
	event_rec_pack_run(pk, r.id, &e);
	emit("run_event", b);

	/* worker side: a metric then the exec_step result, in one stream */
	buf_reset(&d);
	msgpack_pack_map(&dpk, 1);
	mp_pack_key(&dpk, "value");
	msgpack_pack_double(&dpk, 12.0);
	e.kind = REC_METRIC;
	e.name = "rows_out";
	e.data = d.data;
	e.data_len = d.len;
	rpc_pack_notify_head(pk, "metric");
	event_rec_pack_worker(pk, &e);
	{
		struct step_result sr = {STEP_SUCCEEDED, 0, 12, 9, NULL, NULL};
		rpc_pack_result_head(pk, 7);
		step_result_pack(pk, &sr);
	}
	emit("worker_metric_and_result", b);
	buf_free(&d);
}

static void gen_worker(struct buf *b, msgpack_packer *pk)
{
	struct msg_prepare p;
	struct artifact_info a = {0};
	struct pool_info pl = {0};
	struct bundle_file f = {"manifest.yaml", 0644, (const uint8_t *)"steps: []\n", 10};

	memset(&p, 0, sizeof(p));
	p.run_id = "r-20261126-0001";
	p.bundle.files = &f;
	p.bundle.n = 1;
	p.bundle.total = 10;
	p.manifest = "manifest.yaml";
	kvlist_add(&p.secrets, "TOKEN", "abc123");
	rpc_pack_request_head(pk, 1, "prepare");
	msg_prepare_pack(pk, &p);
	emit("prepare", b);
	kvlist_free(&p.secrets);

	rpc_pack_result_head(pk, 9);
	msgpack_pack_map(pk, 1);
	mp_pack_key(pk, "artifacts");
	msgpack_pack_array(pk, 1);
	a.path = "output/movies.csv";
	a.step_id = "write";
	a.size = 3;
	sha256_hex("abc", 3, a.sha256);
	artifact_info_pack(pk, &a);
	emit("finish_result", b);

	rpc_pack_result_head(pk, 10);
	msgpack_pack_map(pk, 1);
	mp_pack_key(pk, "pools");
	msgpack_pack_array(pk, 1);
	pl.backend = "local";
	pl.target = 2;
	pl.idle = 2;
	pl.max = 8;
	pl.start_ms[0] = 14;
	pl.nstart = 1;
	pool_info_pack(pk, &pl);
	emit("pool_status_result", b);

	rpc_pack_notify_head(pk, "ready");
	msgpack_pack_map(pk, 2);
	mp_pack_kstr(pk, "version", OSIRIS_VERSION);
	mp_pack_kint(pk, "pid", 4242);
	emit("ready", b);
}

int main(int argc, char **argv)
{
	struct buf b;
	msgpack_packer pk;

	if (argc != 2)
		fatalx("usage: gen_rpc_corpus DIR");
	outdir = argv[1];
	log_init("gen_rpc_corpus", LOG_LVL_INFO);
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	gen_control(&b, &pk);
	gen_run(&b, &pk);
	gen_worker(&b, &pk);
	buf_free(&b);
	return 0;
}
