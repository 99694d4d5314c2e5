/*
 * fuzz_rpc.c: libFuzzer target for the wire decoder. The input is a byte
 * stream: rpc_scan frames messages, rpc_decode checks envelopes, and every
 * typed decoder runs on the params/result; decoded values are re-packed and
 * must decode again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define FUZZ_MAX_CONTEXT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Framing a re-packed value must work: pack -> scan -> decode. */
static void fuzz_repack_check(struct buf *b, const char *what)
{
	struct rpc_msg m;
	char err[256];

	if (rpc_decode(b->data, b->len, &m, err, sizeof(err)) == -1) {
		fprintf(stderr, "re-packed %s does not decode: %s\n", what, err);
		abort();
	}
	rpc_msg_free(&m);
	buf_reset(b);
}

static void fuzz_typed_run(const msgpack_object *p, struct buf *b, msgpack_packer *pk)
{
	struct run_info r;
	struct step_result sr;
	struct artifact_info a;
	struct pool_info pl;
	char err[256];

	if (run_info_decode(p, &r, err, sizeof(err)) == 0) {
		rpc_pack_result_head(pk, 1);
		run_info_pack(pk, &r, 1);
		fuzz_repack_check(b, "run_info");
		run_info_free(&r);
	}
	if (step_result_decode(p, &sr, err, sizeof(err)) == 0) {
		rpc_pack_result_head(pk, 1);
		step_result_pack(pk, &sr);
		fuzz_repack_check(b, "step_result");
		step_result_free(&sr);
	}
	if (artifact_info_decode(p, &a, err, sizeof(err)) == 0) {
		rpc_pack_result_head(pk, 1);
		artifact_info_pack(pk, &a);
		fuzz_repack_check(b, "artifact_info");
		artifact_info_free(&a);
	}
	if (pool_info_decode(p, &pl, err, sizeof(err)) == 0) {
		rpc_pack_result_head(pk, 1);
		pool_info_pack(pk, &pl);
		fuzz_repack_check(b, "pool_info");
		pool_info_free(&pl);
	}
}

static void fuzz_typed_requests(const msgpack_object *p, const char *method, struct buf *b, msgpack_packer *pk)
{
	struct msg_hello h;
	struct msg_submit s;
	struct msg_prepare pr;
	struct event_rec e;
	enum rpc_err code;
	char err[256];
	int is_result;

	for (is_result = 0; is_result <= 1; is_result++) {
		if (msg_hello_decode(p, &h, is_result, err, sizeof(err)) == 0) {
			rpc_pack_request_head(pk, 1, "hello");
			msg_hello_pack(pk, &h, is_result);
			fuzz_repack_check(b, "hello");
			msg_hello_free(&h);
		}
	}
	if (msg_submit_decode(p, &s, FUZZ_MAX_CONTEXT, &code, err, sizeof(err)) == 0) {
		rpc_pack_request_head(pk, 1, "run.submit");
		msg_submit_pack(pk, &s);
		fuzz_repack_check(b, "submit");
		msg_submit_free(&s);
	}
	if (msg_prepare_decode(p, &pr, FUZZ_MAX_CONTEXT, err, sizeof(err)) == 0) {
		rpc_pack_request_head(pk, 1, "prepare");
		msg_prepare_pack(pk, &pr);
		fuzz_repack_check(b, "prepare");
		msg_prepare_free(&pr);
	}
	if (event_rec_decode(p, method, &e, err, sizeof(err)) == 0) {
		rpc_pack_notify_head(pk, "run.event");
		event_rec_pack_run(pk, "r", &e);
		fuzz_repack_check(b, "event_rec");
		event_rec_free(&e);
	}
}

static void fuzz_getters(const msgpack_object *p)
{
	struct kvlist kv;
	struct bundle bu;
	enum rpc_err code;
	char err[256], *s = NULL;
	int64_t i;
	double d;
	int bo;

	if (mp_get_str(p, "run", &s) == 0)
		free(s);
	(void)mp_get_int(p, "since", &i);
	(void)mp_get_bool(p, "follow", &bo);
	(void)mp_get_double(p, "value", &d);
	if (kvlist_decode(mp_get(p, "env"), &kv, err, sizeof(err)) == 0)
		kvlist_free(&kv);
	if (bundle_decode(mp_get(p, "bundle"), &bu, FUZZ_MAX_CONTEXT, &code, err, sizeof(err)) == 0)
		bundle_free(&bu);
}

/* List results ({runs|artifacts|pools: [...]}) carry typed entries. */
static void fuzz_typed_lists(const msgpack_object *p, struct buf *b, msgpack_packer *pk)
{
	static const char *const keys[] = {"runs", "artifacts", "pools"};
	const msgpack_object *a;
	size_t i;
	uint32_t j;

	for (i = 0; i < 3; i++) {
		a = mp_get(p, keys[i]);
		if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY)
			continue;
		for (j = 0; j < a->via.array.size && j < 64; j++)
			fuzz_typed_run(&a->via.array.ptr[j], b, pk);
	}
}

static void fuzz_one_message(const uint8_t *data, size_t len)
{
	static const char *const kinds[] = {"event", "metric", "log"};
	struct rpc_msg m;
	struct buf b;
	msgpack_packer pk;
	const msgpack_object *p;
	const char *method = NULL;
	char err[256];
	size_t i;

	if (rpc_decode(data, len, &m, err, sizeof(err)) == -1) {
		/* rpc_scan accepted it: msgpack-c must be able to unpack it */
		if (strncmp(err, "malformed", 9) == 0) {
			fprintf(stderr, "scan/decode disagree: %s\n", err);
			abort();
		}
		return;
	}
	p = m.type == RPC_RESPONSE ? (m.error != NULL ? m.error : m.result) : m.params;
	for (i = 0; i < 3; i++)
		if (strcmp(m.method, kinds[i]) == 0)
			method = kinds[i];
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	fuzz_getters(p);
	fuzz_typed_requests(p, method, &b, &pk);
	if (method != NULL)
		fuzz_typed_requests(p, NULL, &b, &pk);
	fuzz_typed_run(p, &b, &pk);
	fuzz_typed_lists(p, &b, &pk);
	buf_free(&b);
	rpc_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct rpc_limits l;
	size_t off = 0, msglen, need;
	const char *err;
	enum rpc_scan r;

	if (!init) {
		log_init("fuzz_rpc", LOG_LVL_ERROR);
		init = 1;
	}
	rpc_limits_default(&l, FUZZ_MAX_CONTEXT);
	while (off < size) {
		msglen = need = 0;
		err = NULL;
		r = rpc_scan(data + off, size - off, &l, &msglen, &need, &err);
		if (r == RPC_SCAN_MORE && need <= size - off) {
			fprintf(stderr, "rpc_scan: MORE with need %zu <= %zu available\n", need, size - off);
			abort();
		}
		if (r == RPC_SCAN_ERROR && err == NULL)
			abort();
		if (r != RPC_SCAN_OK)
			break;
		if (msglen == 0 || msglen > size - off)
			abort();
		fuzz_one_message(data + off, msglen);
		off += msglen;
	}
	return 0;
}
