/*
 * check_proto.c: unit tests for proto/: the stream scanner and its limits,
 * the envelope checks, map getters, every typed message round trip, and
 * bundles (wire checks, directory packing, save/load/extract).
 */
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"

#define MiB (1u << 20)

static struct rpc_limits limits(size_t max_msg)
{
	struct rpc_limits l;

	rpc_limits_default(&l, 64 * MiB);
	if (max_msg != 0)
		l.max_msg = max_msg;
	return l;
}

static enum rpc_scan scan(const void *p, size_t len, const struct rpc_limits *l, size_t *msglen, size_t *need)
{
	const char *err = NULL;
	enum rpc_scan r = rpc_scan(p, len, l, msglen, need, &err);

	if (r == RPC_SCAN_ERROR)
		ck_assert_ptr_nonnull(err);
	return r;
}

/* Scans complete with trailing garbage, and byte by byte: MORE with a
 * sensible need at every shorter prefix. */
static void check_value(const uint8_t *p, size_t len, const char *what)
{
	struct rpc_limits l = limits(0);
	uint8_t *copy = xmalloc(len + 3);
	size_t msglen = 0, need = 0, i;

	ck_assert_msg(scan(p, len, &l, &msglen, &need) == RPC_SCAN_OK, "%s: not OK", what);
	ck_assert_msg(msglen == len, "%s: msglen %zu != %zu", what, msglen, len);
	memcpy(copy, p, len);
	memcpy(copy + len, "\x01\x02\x03", 3);
	msglen = 0;
	ck_assert(scan(copy, len + 3, &l, &msglen, &need) == RPC_SCAN_OK);
	ck_assert_uint_eq(msglen, len);
	for (i = 0; i < len; i++) {
		need = 0;
		ck_assert_msg(scan(p, i, &l, &msglen, &need) == RPC_SCAN_MORE, "%s: prefix %zu not MORE", what, i);
		ck_assert_msg(need > i && need <= len, "%s: prefix %zu need %zu (len %zu)", what, i, need, len);
	}
	free(copy);
}

#define CHECK_BYTES(lit) check_value((const uint8_t *)(lit), sizeof(lit) - 1, #lit)

START_TEST(test_scan_every_type)
{
	static uint8_t fixext16[18] = {0xd8, 0x05};
	CHECK_BYTES("\xc0");
	CHECK_BYTES("\xc2");
	CHECK_BYTES("\xc3");
	CHECK_BYTES("\x00");
	CHECK_BYTES("\x7f");
	CHECK_BYTES("\xe0");
	CHECK_BYTES("\xff");
	CHECK_BYTES("\xcc\xff");
	CHECK_BYTES("\xcd\xff\xff");
	CHECK_BYTES("\xce\xff\xff\xff\xff");
	CHECK_BYTES("\xcf\xff\xff\xff\xff\xff\xff\xff\xff");
	CHECK_BYTES("\xd0\x80");
	CHECK_BYTES("\xd1\x80\x00");
	CHECK_BYTES("\xd2\x80\x00\x00\x00");
	CHECK_BYTES("\xd3\x80\x00\x00\x00\x00\x00\x00\x00");
	CHECK_BYTES("\xca\x3f\x80\x00\x00");
	CHECK_BYTES("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00");
	CHECK_BYTES("\xa0");
	CHECK_BYTES("\xa3"
	            "abc");
	CHECK_BYTES("\xd9\x03"
	            "abc");
	CHECK_BYTES("\xda\x00\x03"
	            "abc");
	CHECK_BYTES("\xdb\x00\x00\x00\x03"
	            "abc");
	CHECK_BYTES("\xc4\x02\x00\x01");
	CHECK_BYTES("\xc5\x00\x02\x00\x01");
	CHECK_BYTES("\xc6\x00\x00\x00\x02\x00\x01");
	CHECK_BYTES("\xc4\x00");
	CHECK_BYTES("\xd4\x01\xaa");
	CHECK_BYTES("\xd5\x01\xaa\xbb");
	CHECK_BYTES("\xd6\xff\x00\x00\x00\x01"); /* timestamp32 */
	CHECK_BYTES("\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x01");
	check_value(fixext16, sizeof(fixext16), "fixext16");
	CHECK_BYTES("\xc7\x02\x05\xaa\xbb");
	CHECK_BYTES("\xc8\x00\x02\x05\xaa\xbb");
	CHECK_BYTES("\xc9\x00\x00\x00\x02\x05\xaa\xbb");
	CHECK_BYTES("\xc7\x00\x05");
	CHECK_BYTES("\x90");
	CHECK_BYTES("\x93\x01\x02\x03");
	CHECK_BYTES("\xdc\x00\x02\x01\xa1x");
	CHECK_BYTES("\xdd\x00\x00\x00\x02\x01\x02");
	CHECK_BYTES("\x80");
	CHECK_BYTES("\x81\xa1k\x01");
	CHECK_BYTES("\xde\x00\x01\xa1k\x90");
	CHECK_BYTES("\xdf\x00\x00\x00\x01\xa1k\x81\xa1j\xc0");
	CHECK_BYTES("\x92\x91\x90\x80");
	CHECK_BYTES("\x94\x00\x01\xa4ping\x91\x80");
}
END_TEST

static void pack_sample_request(struct buf *b, uint32_t msgid)
{
	msgpack_packer pk;

	rpc_packer_init(&pk, b);
	rpc_pack_request_head(&pk, msgid, "run.follow");
	msgpack_pack_map(&pk, 4);
	mp_pack_kstr(&pk, "run", "r-0123456789abcdef");
	mp_pack_kint(&pk, "since", 12);
	mp_pack_key(&pk, "follow");
	msgpack_pack_true(&pk);
	mp_pack_key(&pk, "blob");
	msgpack_pack_bin(&pk, 300);
	{
		uint8_t z[300] = {0};
		msgpack_pack_bin_body(&pk, z, sizeof(z));
	}
}

START_TEST(test_scan_byte_by_byte_stream)
{
	struct rpc_limits l = limits(0);
	struct buf b, stream;
	size_t one, msglen, need, fed, start = 0, got = 0;
	enum rpc_scan r;

	buf_init(&b);
	pack_sample_request(&b, 1);
	one = b.len;
	check_value(b.data, b.len, "sample request");
	/* three messages back to back, delivered one byte at a time */
	buf_init(&stream);
	buf_add(&stream, b.data, b.len);
	buf_add(&stream, b.data, b.len);
	buf_add(&stream, b.data, b.len);
	for (fed = 1; fed <= stream.len; fed++) {
		need = msglen = 0;
		r = scan(stream.data + start, fed - start, &l, &msglen, &need);
		if (r == RPC_SCAN_MORE) {
			ck_assert_uint_gt(need, fed - start);
			continue;
		}
		ck_assert_int_eq(r, RPC_SCAN_OK);
		ck_assert_uint_eq(msglen, one);
		start += msglen;
		got++;
	}
	ck_assert_uint_eq(got, 3);
	ck_assert_uint_eq(start, stream.len);
	buf_free(&b);
	buf_free(&stream);
}
END_TEST

START_TEST(test_scan_need_is_exact_for_bin32)
{
	struct rpc_limits l = limits(0);
	struct buf b;
	msgpack_packer pk;
	size_t msglen, need = 0, head;
	const size_t big = 60 * MiB;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_request_head(&pk, 9, "run.submit");
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "bundle");
	msgpack_pack_bin(&pk, big); /* header only: the body is "still in flight" */
	head = b.len;
	ck_assert_int_eq(b.data[head - 5], 0xc6);
	ck_assert_int_eq(scan(b.data, head, &l, &msglen, &need), RPC_SCAN_MORE);
	ck_assert_uint_eq(need, head + big);
	/* 4 KB more does not change the answer */
	buf_reserve(&b, 4096);
	memset(b.data + head, 0, 4096);
	ck_assert_int_eq(scan(b.data, head + 4096, &l, &msglen, &need), RPC_SCAN_MORE);
	ck_assert_uint_eq(need, head + big);
	/* with a smaller message limit it is an error at once */
	l.max_msg = 10 * MiB;
	ck_assert_int_eq(scan(b.data, head, &l, &msglen, &need), RPC_SCAN_ERROR);
	buf_free(&b);
}
END_TEST

/* Byte strings against limits: the result, and where it says so how many
 * bytes it needs. max_msg 0: limits(0)'s default; 0 in the others: the
 * default of that limit. */
static const struct scan_case {
	const char *what, *bytes;
	size_t len, max_msg;
	uint32_t max_elems, max_str;
	enum rpc_scan want;
	size_t need;     /* checked when not 0 */
	const char *err; /* a substring of the error, when not NULL */
} scan_cases[] = {
#define SC(lit, max_msg, max_elems, max_str, want, need, err, what)                                                    \
	{                                                                                                              \
		what, lit, sizeof(lit) - 1, max_msg, max_elems, max_str, want, need, err                               \
	}
    SC("\xdd\xff\xff\xff\xff", 1024, 0, 0, RPC_SCAN_ERROR, 0, NULL, "array32 of 2^32-1 elements in 5 bytes"),
    SC("\xdd\xff\xff\xff\xff", 1024, UINT32_MAX, 0, RPC_SCAN_ERROR, 0, NULL, "the same whatever max_elems"),
    SC("\xdf\x7f\xff\xff\xff", 1024, UINT32_MAX, 0, RPC_SCAN_ERROR, 0, NULL, "map32 of 2^31-1 pairs"),
    SC("\xdc\x04\x00", 1024, UINT32_MAX, 0, RPC_SCAN_ERROR, 0, NULL, "1024 elements + 3 > max_msg 1024"),
    SC("\xdc\x03\xfd", 1024, UINT32_MAX, 0, RPC_SCAN_MORE, 1024, NULL, "1021 elements + 3 fit"),
    SC("\xde\x02\x00", 1024, UINT32_MAX, 0, RPC_SCAN_ERROR, 0, NULL, "512 pairs"),
    SC("\x92\xdc\x03\xfd", 1024, UINT32_MAX, 0, RPC_SCAN_ERROR, 0, NULL, "nested counts add up"),
    SC("\xdc\x00\x0b", 1024, 10, 0, RPC_SCAN_ERROR, 0, NULL, "11 elements over max_elems 10"),
    SC("\xdc\x00\x0a", 1024, 10, 0, RPC_SCAN_MORE, 0, NULL, "10 elements within max_elems 10"),
    SC("\xdb\xff\xff\xff\xff", 1024, 0, 0, RPC_SCAN_ERROR, 0, NULL, "str32 claiming 4 GB"),
    SC("\xdb\xff\xff\xff\xff", 1024, 0, UINT32_MAX, RPC_SCAN_ERROR, 0, NULL, "str32 of 4 GB over max_msg"),
    SC("\xc6\xff\xff\xff\xff", 1024, 0, UINT32_MAX, RPC_SCAN_ERROR, 0, NULL, "bin32 of 4 GB"),
    SC("\xc9\xff\xff\xff\xff\x01", 1024, 0, UINT32_MAX, RPC_SCAN_ERROR, 0, NULL, "ext32 of 4 GB"),
    SC("\xd9\x11", 0, 0, 16, RPC_SCAN_ERROR, 0, NULL, "str8 of 17 over max_str 16"),
    SC("\xd9\x10", 0, 0, 16, RPC_SCAN_MORE, 18, NULL, "str8 of 16 within max_str 16"),
    SC("\xc4\x20", 0, 0, 16, RPC_SCAN_MORE, 0, NULL, "bin: bounded by max_msg only"),
    SC("\xc1", 0, 0, 16, RPC_SCAN_ERROR, 0, "0xc1", "0xc1 alone"),
    SC("\x93\x01\xc1\x02", 0, 0, 16, RPC_SCAN_ERROR, 0, NULL, "0xc1 in an array"),
    SC("\x81\xc1\x01", 0, 0, 16, RPC_SCAN_ERROR, 0, NULL, "0xc1 as a key"),
    SC("", 0, 0, 16, RPC_SCAN_MORE, 1, NULL, "empty input"),
    /* need counts the announced elements */
    SC("\x93", 0, 0, 16, RPC_SCAN_MORE, 4, NULL, "fixarray of 3, no element yet"),
    SC("\x93\x01", 0, 0, 16, RPC_SCAN_MORE, 4, NULL, "fixarray of 3, one element"),
    SC("\x93\x01\x02", 0, 0, 16, RPC_SCAN_MORE, 4, NULL, "fixarray of 3, two elements"),
#undef SC
};

START_TEST(test_scan_limits)
{
	const struct scan_case *c = &scan_cases[_i];
	struct rpc_limits l = limits(c->max_msg);
	size_t msglen = 0, need = 0;
	const char *err = NULL;

	if (c->max_elems != 0)
		l.max_elems = c->max_elems;
	if (c->max_str != 0)
		l.max_str = c->max_str;
	ck_assert_msg(rpc_scan(c->bytes, c->len, &l, &msglen, &need, &err) == c->want, "%s: scan gave another result",
	              c->what);
	if (c->want == RPC_SCAN_ERROR)
		ck_assert_msg(err != NULL, "%s: no error text", c->what);
	if (c->need != 0)
		ck_assert_msg(need == c->need, "%s: need %zu, expected %zu", c->what, need, c->need);
	if (c->err != NULL)
		ck_assert_msg(strstr(err, c->err) != NULL, "%s: error '%s' lacks '%s'", c->what, err, c->err);
}
END_TEST

/* What a table cannot say: an oversized string before it arrives, and
 * nesting built by loops. */
START_TEST(test_scan_limits_built)
{
	struct rpc_limits l = limits(1024);
	uint8_t *deep;
	size_t msglen, need;
	const char *err = NULL;
	uint8_t big[200];

	/* oversized: a 200-byte string in a 100-byte limit, even before it arrives */
	l.max_msg = 100;
	memset(big, 'x', sizeof(big));
	big[0] = 0xd9;
	big[1] = 198;
	ck_assert_int_eq(scan(big, 2, &l, &msglen, &need), RPC_SCAN_ERROR);
	ck_assert_int_eq(scan(big, sizeof(big), &l, &msglen, &need), RPC_SCAN_ERROR);
	l.max_msg = 1024;

	/* 10k nested arrays: error, no stack overflow */
	deep = xmalloc(10001);
	memset(deep, 0x91, 10000);
	deep[10000] = 0x01;
	ck_assert_int_eq(rpc_scan(deep, 10001, &l, &msglen, &need, &err), RPC_SCAN_ERROR);
	ck_assert_str_eq(err, "nesting too deep");
	/* exactly max_depth is fine, one more is not */
	l.max_msg = 1 * MiB;
	deep[32] = 0x01;
	ck_assert_int_eq(scan(deep, 33, &l, &msglen, &need), RPC_SCAN_OK);
	ck_assert_uint_eq(msglen, 33);
	deep[32] = 0x91;
	deep[33] = 0x01;
	ck_assert_int_eq(scan(deep, 34, &l, &msglen, &need), RPC_SCAN_ERROR);
	deep[33] = 0x90; /* an empty container is nesting too */
	ck_assert_int_eq(scan(deep, 34, &l, &msglen, &need), RPC_SCAN_ERROR);
	free(deep);
}
END_TEST

/* Every scan failure is classed by a code, not by its text: size limits
 * are too_large, the rest invalid_request; the stream reader's too_large
 * flag follows the code. */
START_TEST(test_scan_fault_codes)
{
	static const struct {
		const char *what, *bytes;
		size_t len;
		uint32_t max_str, max_elems;
		enum rpc_err code;
	} cases[] = {
	    {"str over max_str", "\xd9\x11", 2, 16, 0, ERR_TOO_LARGE},
	    {"str32 of 4 GB", "\xdb\xff\xff\xff\xff", 5, 0, 0, ERR_TOO_LARGE},
	    {"bin over the message", "\xc6\xff\xff\xff\xff", 5, 0, 0, ERR_TOO_LARGE},
	    {"array over max_elems", "\xdc\x00\x0b", 3, 0, 10, ERR_TOO_LARGE},
	    {"element count over the message", "\xdd\xff\xff\xff\xff", 5, 0, UINT32_MAX, ERR_TOO_LARGE},
	    {"fixed value past the message", "\x93\xcf\x00\x00", 4, 0, 0, ERR_TOO_LARGE},
	    {"byte 0xc1", "\x93\x01\xc1\x02", 4, 0, 0, ERR_INVALID_REQUEST},
	    {"nesting", "\x91\x91\x91\x91\x91\x01", 6, 0, 0, ERR_INVALID_REQUEST},
	};
	struct rpc_limits l;
	struct rpc_reader r;
	struct rpc_msg m;
	const char *err, *err2;
	char rerr[256];
	enum rpc_err code;
	size_t msglen, need, i;
	uint32_t id;
	int has, big;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		l = limits(1024);
		l.max_depth = 4;
		if (strcmp(cases[i].what, "fixed value past the message") == 0)
			l.max_msg = 6; /* array of 3 + uint64: 1 + 9 bytes, 2 more pending */
		if (cases[i].max_str != 0)
			l.max_str = cases[i].max_str;
		if (cases[i].max_elems != 0)
			l.max_elems = cases[i].max_elems;
		err = err2 = NULL;
		code = ERR_NONE;
		ck_assert_msg(rpc_scan_code(cases[i].bytes, cases[i].len, &l, &msglen, &need, &err, &code) ==
		                  RPC_SCAN_ERROR,
		              "%s: not an error", cases[i].what);
		ck_assert_msg(code == cases[i].code, "%s: code %s, expected %s (%s)", cases[i].what, rpc_err_name(code),
		              rpc_err_name(cases[i].code), err);
		/* the plain scanner says the same thing, and a NULL code is fine */
		ck_assert_int_eq(rpc_scan(cases[i].bytes, cases[i].len, &l, &msglen, &need, &err2), RPC_SCAN_ERROR);
		ck_assert_str_eq(err, err2);
		ck_assert_int_eq(rpc_scan_code(cases[i].bytes, cases[i].len, &l, &msglen, &need, NULL, NULL),
		                 RPC_SCAN_ERROR);

		rpc_reader_init(&r, &l);
		rpc_reader_add(&r, cases[i].bytes, cases[i].len);
		big = -1;
		ck_assert_int_eq(rpc_reader_next(&r, &m, rerr, sizeof(rerr), &id, &has, &big), -1);
		ck_assert_msg(big == (cases[i].code == ERR_TOO_LARGE), "%s: reader too_large %d", cases[i].what, big);
		ck_assert_str_eq(rerr, err);
		rpc_reader_free(&r);
	}
	/* success and MORE leave the code alone at ERR_NONE */
	l = limits(1024);
	code = ERR_INTERNAL;
	ck_assert_int_eq(rpc_scan_code("\x91\x01", 2, &l, &msglen, &need, &err, &code), RPC_SCAN_OK);
	ck_assert_int_eq(code, ERR_NONE);
	code = ERR_INTERNAL;
	ck_assert_int_eq(rpc_scan_code("\x92\x01", 2, &l, &msglen, &need, &err, &code), RPC_SCAN_MORE);
	ck_assert_int_eq(code, ERR_NONE);
}
END_TEST

START_TEST(test_scan_exact_max_msg)
{
	struct rpc_limits l = limits(0);
	struct buf b;
	size_t msglen, need;

	buf_init(&b);
	pack_sample_request(&b, 1);
	l.max_msg = b.len;
	ck_assert_int_eq(scan(b.data, b.len, &l, &msglen, &need), RPC_SCAN_OK);
	ck_assert_uint_eq(msglen, b.len);
	l.max_msg = b.len - 1;
	ck_assert_int_eq(scan(b.data, b.len, &l, &msglen, &need), RPC_SCAN_ERROR);
	/* the error comes as soon as the bin header shows the total cannot fit */
	ck_assert_int_eq(scan(b.data, b.len - 300, &l, &msglen, &need), RPC_SCAN_ERROR);
	buf_free(&b);
}
END_TEST

START_TEST(test_limits_default)
{
	struct rpc_limits l;

	rpc_limits_default(&l, 64 * MiB);
	ck_assert_uint_eq(l.max_msg, 65 * MiB);
	ck_assert_uint_eq(l.max_depth, 32);
	ck_assert_uint_eq(l.max_elems, 1u << 20);
	ck_assert_uint_eq(l.max_str, MiB);
}
END_TEST

/* Decode bytes given as a literal; returns rpc_decode's result. */
static int decode_lit(const char *p, size_t len, struct rpc_msg *m, char *err)
{
	return rpc_decode(p, len, m, err, 256);
}
#define DECODE(lit, m, err) decode_lit((lit), sizeof(lit) - 1, (m), (err))

START_TEST(test_decode_envelope_ok)
{
	struct rpc_msg m;
	char err[256];

	ck_assert_int_eq(DECODE("\x94\x00\x07\xa4ping\x91\x80", &m, err), 0);
	ck_assert_int_eq(m.type, RPC_REQUEST);
	ck_assert_uint_eq(m.msgid, 7);
	ck_assert_str_eq(m.method, "ping");
	ck_assert_ptr_nonnull(m.params);
	ck_assert_int_eq(m.params->type, MSGPACK_OBJECT_MAP);
	ck_assert_uint_eq(m.params->via.map.size, 0);
	rpc_msg_free(&m);

	ck_assert_int_eq(DECODE("\x94\x00\xce\xff\xff\xff\xff\xa4ping\x90", &m, err), 0);
	ck_assert_uint_eq(m.msgid, UINT32_MAX);
	ck_assert_ptr_null(m.params); /* params [] */
	rpc_msg_free(&m);

	ck_assert_int_eq(DECODE("\x93\x02\xa5"
	                        "event\x91\x81\xa3seq\x01",
	                        &m, err),
	                 0);
	ck_assert_int_eq(m.type, RPC_NOTIFY);
	ck_assert_str_eq(m.method, "event");
	ck_assert_ptr_nonnull(mp_get(m.params, "seq"));
	/* str objects point into the owned copy */
	ck_assert_ptr_eq(mp_get(m.params, "seq"), &m.params->via.map.ptr[0].val);
	ck_assert((const uint8_t *)m.params->via.map.ptr[0].key.via.str.ptr >= m.raw &&
	          (const uint8_t *)m.params->via.map.ptr[0].key.via.str.ptr < m.raw + m.rawlen);
	rpc_msg_free(&m);

	ck_assert_int_eq(DECODE("\x94\x01\x05\xc0\x81\xa2ok\xc3", &m, err), 0);
	ck_assert_int_eq(m.type, RPC_RESPONSE);
	ck_assert_uint_eq(m.msgid, 5);
	ck_assert_ptr_null(m.error);
	ck_assert_ptr_nonnull(m.result);
	rpc_msg_free(&m);

	ck_assert_int_eq(DECODE("\x94\x01\x05\x82\xa4"
	                        "code\xa4"
	                        "busy\xa7message\xa1x\xc0",
	                        &m, err),
	                 0);
	ck_assert_ptr_nonnull(m.error);
	ck_assert(mp_str_eq(mp_get(m.error, "code"), "busy"));
	rpc_msg_free(&m);
	rpc_msg_free(&m); /* idempotent */
}
END_TEST

START_TEST(test_decode_envelope_errors)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *what;
	} t[] = {
#define BAD(lit, what) {lit, sizeof(lit) - 1, what}
	    BAD("\x80", "not an array"),
	    BAD("\x93\x00\x01\xa4ping", "request with 3 elements"),
	    BAD("\x95\x00\x01\xa4ping\x91\x80\xc0", "request with 5 elements"),
	    BAD("\x94\x02\xa4ping\x91\x80\xc0", "notify with 4 elements"),
	    BAD("\x92\x02\xa4ping", "notify with 2"),
	    BAD("\x94\x03\x01\xa4ping\x91\x80", "type 3"),
	    BAD("\x94\xff\x01\xa4ping\x91\x80", "type -1"),
	    BAD("\x94\xa1"
	        "0\x01\xa4ping\x91\x80",
	        "type str"),
	    BAD("\x94\x00\xa1"
	        "1\xa4ping\x91\x80",
	        "msgid str"),
	    BAD("\x94\x00\xff\xa4ping\x91\x80", "msgid negative"),
	    BAD("\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa4ping\x91\x80", "msgid > uint32"),
	    BAD("\x94\x00\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\xa4ping\x91\x80", "msgid float"),
	    BAD("\x94\x00\x01\x01\x91\x80", "method int"),
	    BAD("\x94\x00\x01\xa0\x91\x80", "method empty"),
	    BAD("\x94\x00\x01\xa3p\x00g\x91\x80", "method with NUL"),
	    BAD("\x94\x00\x01\xa4ping\x80", "params map"),
	    BAD("\x94\x00\x01\xa4ping\xc0", "params nil"),
	    BAD("\x94\x00\x01\xa4ping\x92\x80\x80", "params 2 elements"),
	    BAD("\x94\x00\x01\xa4ping\x91\x05", "params [5]"),
	    BAD("\x94\x00\x01\xa4ping\x91\x90", "params [[]]"),
	    BAD("\x93\x02\xa5"
	        "event\x91\xa1x",
	        "notify params [str]"),
	    BAD("\x94\x01\x05\xa4"
	        "fail\xc0",
	        "response error str"),
	    BAD("\x94\x01\x05\x90\xc0", "response error array"),
	    BAD("\x94\x01\xa1x\xc0\xc0", "response msgid str"),
	    BAD("\x94\x00\x01\xa4ping\x91", "truncated"),
	    BAD("\x94\x00\x01\xa4ping\x91\x80\x00", "trailing bytes"),
	    BAD("\x94\x00\x01\xa4ping\x91\xc1", "0xc1"),
	    BAD("", "empty"),
#undef BAD
	};
	struct rpc_msg m;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(rpc_decode(t[i].bytes, t[i].len, &m, err, sizeof(err)) == -1, "accepted: %s", t[i].what);
		ck_assert_msg(err[0] != '\0', "no error text: %s", t[i].what);
		ck_assert_ptr_null(m.raw);
		rpc_msg_free(&m);
	}
	{ /* method of 64 bytes is too long, 63 is fine */
		char lit[80];
		lit[0] = (char)0x94;
		lit[1] = 0;
		lit[2] = 1;
		lit[3] = (char)0xd9;
		lit[4] = 64;
		memset(lit + 5, 'm', 64);
		lit[69] = (char)0x90;
		ck_assert_int_eq(rpc_decode(lit, 70, &m, err, sizeof(err)), -1);
		lit[4] = 63;
		lit[68] = (char)0x90;
		ck_assert_int_eq(rpc_decode(lit, 69, &m, err, sizeof(err)), 0);
		ck_assert_uint_eq(strlen(m.method), 63);
		rpc_msg_free(&m);
	}
}
END_TEST

/* Pack [0, 1, "t", [ <map from fn> ]] and decode it. */
static void roundtrip_start(struct buf *b, msgpack_packer *pk)
{
	buf_init(b);
	rpc_packer_init(pk, b);
	rpc_pack_request_head(pk, 1, "t");
}

static const msgpack_object *roundtrip_finish(struct buf *b, struct rpc_msg *m)
{
	struct rpc_limits l = limits(0);
	size_t msglen = 0, need;
	char err[256];

	ck_assert_int_eq(scan(b->data, b->len, &l, &msglen, &need), RPC_SCAN_OK);
	ck_assert_uint_eq(msglen, b->len);
	ck_assert_msg(rpc_decode(b->data, b->len, m, err, sizeof(err)) == 0, "decode: %s", err);
	buf_free(b);
	ck_assert_ptr_nonnull(m->params);
	return m->params;
}

/* The typed getters on the map test_pack_helpers_and_getters packs: type
 * 's' str, 'i' int, 'b' bool, 'd' double; rc 0 ok (with the value), 1
 * absent or nil, -1 wrong type. */
static const struct getter_case {
	char type;
	const char *key;
	int rc;
	const char *str;
	int64_t num;
	double dbl;
} getter_cases[] = {
    {'s', "s", 0, "hello", 0, 0},   {'s', "nil", 1, NULL, 0, 0},   {'s', "absent", 1, NULL, 0, 0},
    {'s', "pos", -1, NULL, 0, 0},   {'s', "nul", -1, NULL, 0, 0}, /* a NUL inside */
    {'i', "pos", 0, NULL, 42, 0},   {'i', "neg", 0, NULL, -42, 0}, {'i', "min", 0, NULL, INT64_MIN, 0},
    {'i', "huge", -1, NULL, 0, 0}, /* UINT64_MAX */
    {'i', "s", -1, NULL, 0, 0},     {'i', "f64", -1, NULL, 0, 0},  {'i', "nil", 1, NULL, 0, 0},
    {'b', "t", 0, NULL, 1, 0},      {'b', "f", 0, NULL, 0, 0},     {'b', "pos", -1, NULL, 0, 0},
    {'d', "f64", 0, NULL, 0, 2.5},  {'d', "f32", 0, NULL, 0, 0.5}, {'d', "neg", 0, NULL, 0, -42.0},
    {'d', "pos", 0, NULL, 0, 42.0}, {'d', "s", -1, NULL, 0, 0},
};

START_TEST(test_pack_helpers_and_getters)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	const msgpack_object *p;
	char *s = NULL;
	int64_t i = 0;
	int bo = 0;
	double d = 0;
	size_t k;

	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 12);
	mp_pack_kstr(&pk, "s", "hello");
	mp_pack_kstr(&pk, "nil", NULL);
	mp_pack_kint(&pk, "pos", 42);
	mp_pack_kint(&pk, "neg", -42);
	mp_pack_kint(&pk, "min", INT64_MIN);
	mp_pack_key(&pk, "huge");
	msgpack_pack_uint64(&pk, UINT64_MAX);
	mp_pack_key(&pk, "t");
	msgpack_pack_true(&pk);
	mp_pack_key(&pk, "f64");
	msgpack_pack_double(&pk, 2.5);
	mp_pack_key(&pk, "f32");
	msgpack_pack_float(&pk, 0.5f);
	mp_pack_key(&pk, "nul");
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "a\0b", 3);
	mp_pack_key(&pk, "arr");
	msgpack_pack_array(&pk, 0);
	mp_pack_key(&pk, "f");
	msgpack_pack_false(&pk);
	p = roundtrip_finish(&b, &m);

	for (k = 0; k < sizeof(getter_cases) / sizeof(getter_cases[0]); k++) {
		const struct getter_case *c = &getter_cases[k];
		int rc = -2;

		s = NULL;
		i = 7;
		bo = 7;
		d = 7;
		switch (c->type) {
		case 's':
			rc = mp_get_str(p, c->key, &s);
			break;
		case 'i':
			rc = mp_get_int(p, c->key, &i);
			break;
		case 'b':
			rc = mp_get_bool(p, c->key, &bo);
			break;
		case 'd':
			rc = mp_get_double(p, c->key, &d);
			break;
		}
		ck_assert_msg(rc == c->rc, "%c %s: %d, expected %d", c->type, c->key, rc, c->rc);
		if (rc == 1) /* absent or nil: untouched */
			ck_assert_msg(s == NULL && i == 7 && bo == 7 && d == 7, "%c %s: touched", c->type, c->key);
		if (rc == 0 && c->type == 's')
			ck_assert_str_eq(s, c->str);
		if (rc == 0 && c->type == 'i')
			ck_assert_msg(i == c->num, "%s: %lld", c->key, (long long)i);
		if (rc == 0 && c->type == 'b')
			ck_assert_int_eq(bo, c->num);
		if (rc == 0 && c->type == 'd')
			ck_assert_msg(d == c->dbl, "%s: %g", c->key, d);
		free(s);
	}
	ck_assert(mp_str_eq(mp_get(p, "s"), "hello"));
	ck_assert(!mp_str_eq(mp_get(p, "s"), "hell"));
	ck_assert(!mp_str_eq(NULL, "x"));
	s = mp_strdup(mp_get(p, "s"));
	ck_assert_str_eq(s, "hello");
	free(s);
	ck_assert_ptr_null(mp_strdup(mp_get(p, "pos")));
	ck_assert_ptr_null(mp_get(mp_get(p, "arr"), "x")); /* not a map */
	ck_assert_ptr_null(mp_get(NULL, "x"));
	rpc_msg_free(&m);
}
END_TEST

START_TEST(test_pack_error_and_result)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	char err[256], *code = NULL, *msg = NULL;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_error(&pk, 77, rpc_err_name(ERR_NOT_FOUND), "no run abc");
	ck_assert_int_eq(rpc_decode(b.data, b.len, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.type, RPC_RESPONSE);
	ck_assert_uint_eq(m.msgid, 77);
	ck_assert_ptr_nonnull(m.error);
	ck_assert_int_eq(mp_get_str(m.error, "code", &code), 0);
	ck_assert_int_eq(mp_get_str(m.error, "message", &msg), 0);
	ck_assert_int_eq(rpc_err_parse(code), ERR_NOT_FOUND);
	ck_assert_str_eq(msg, "no run abc");
	ck_assert_int_eq(m.result->type, MSGPACK_OBJECT_NIL);
	free(code);
	free(msg);
	rpc_msg_free(&m);

	buf_reset(&b);
	rpc_pack_result_head(&pk, 78);
	msgpack_pack_map(&pk, 1);
	mp_pack_kint(&pk, "uptime_s", 5);
	ck_assert_int_eq(rpc_decode(b.data, b.len, &m, err, sizeof(err)), 0);
	ck_assert_ptr_null(m.error);
	ck_assert_uint_eq(m.msgid, 78);
	ck_assert_ptr_nonnull(mp_get(m.result, "uptime_s"));
	rpc_msg_free(&m);

	buf_reset(&b);
	rpc_pack_notify_head(&pk, "ready");
	msgpack_pack_map(&pk, 0);
	ck_assert_int_eq(rpc_decode(b.data, b.len, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.type, RPC_NOTIFY);
	ck_assert_str_eq(m.method, "ready");
	rpc_msg_free(&m);
	buf_free(&b);
}
END_TEST

START_TEST(test_errors_states)
{
	int e;
	enum run_state rs;
	enum step_state ss;

	for (e = ERR_INVALID_REQUEST; e <= ERR_INTERNAL; e++)
		ck_assert_int_eq(rpc_err_parse(rpc_err_name((enum rpc_err)e)), e);
	ck_assert_str_eq(rpc_err_name(ERR_INVALID_REQUEST), "invalid_request");
	ck_assert_str_eq(rpc_err_name(ERR_UNSUPPORTED_VERSION), "unsupported_version");
	ck_assert_str_eq(rpc_err_name(ERR_TOO_LARGE), "too_large");
	ck_assert_int_eq(rpc_err_parse("nope"), ERR_INTERNAL);
	ck_assert_int_eq(rpc_err_parse(NULL), ERR_INTERNAL);
	for (e = RUN_QUEUED; e <= RUN_LOST; e++) {
		ck_assert_int_eq(run_state_parse(run_state_name((enum run_state)e), &rs), 0);
		ck_assert_int_eq(rs, e);
	}
	for (e = STEP_PENDING; e <= STEP_CANCELLED; e++) {
		ck_assert_int_eq(step_state_parse(step_state_name((enum step_state)e), &ss), 0);
		ck_assert_int_eq(ss, e);
	}
	ck_assert_int_eq(run_state_parse("done", &rs), -1);
	ck_assert_int_eq(step_state_parse("queued", &ss), -1);
	ck_assert_str_eq(run_state_name(RUN_CANCELLED), "cancelled");
	ck_assert_str_eq(step_state_name(STEP_SKIPPED), "skipped");
	ck_assert(!run_state_final(RUN_QUEUED) && !run_state_final(RUN_STARTING) && !run_state_final(RUN_RUNNING));
	ck_assert(run_state_final(RUN_SUCCEEDED) && run_state_final(RUN_FAILED) && run_state_final(RUN_CANCELLED) &&
	          run_state_final(RUN_LOST));
}
END_TEST

START_TEST(test_msg_hello)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	struct msg_hello h = {0}, out;
	char *caps[] = {"run.follow", "pool.status"};
	char err[256];

	h.sender = "osirisctl/0.1.0";
	h.protocol = PROTO_VERSION;
	roundtrip_start(&b, &pk);
	msg_hello_pack(&pk, &h, 0);
	ck_assert_int_eq(msg_hello_decode(roundtrip_finish(&b, &m), &out, 0, err, sizeof(err)), 0);
	ck_assert_str_eq(out.sender, "osirisctl/0.1.0");
	ck_assert_int_eq(out.protocol, 1);
	ck_assert_uint_eq(out.ncapabilities, 0);
	msg_hello_free(&out);
	/* a params map is not a result: "daemon" is missing */
	ck_assert_int_eq(msg_hello_decode(m.params, &out, 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "daemon"));
	rpc_msg_free(&m);

	h.sender = "osirisd/0.1.0";
	h.capabilities = caps;
	h.ncapabilities = 2;
	roundtrip_start(&b, &pk);
	msg_hello_pack(&pk, &h, 1);
	ck_assert_int_eq(msg_hello_decode(roundtrip_finish(&b, &m), &out, 1, err, sizeof(err)), 0);
	ck_assert_str_eq(out.sender, "osirisd/0.1.0");
	ck_assert_uint_eq(out.ncapabilities, 2);
	ck_assert_str_eq(out.capabilities[1], "pool.status");
	msg_hello_free(&out);
	rpc_msg_free(&m);

	/* wrong types */
	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "client", "x");
	mp_pack_kstr(&pk, "protocol", "1");
	ck_assert_int_eq(msg_hello_decode(roundtrip_finish(&b, &m), &out, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "protocol"));
	ck_assert_ptr_null(out.sender); /* cleaned up */
	rpc_msg_free(&m);
}
END_TEST

static void bundle_add(struct bundle *b, const char *path, uint32_t mode, const char *data)
{
	b->files = xreallocarray(b->files, b->n + 1, sizeof(*b->files));
	b->files[b->n].path = xstrdup(path);
	b->files[b->n].mode = mode;
	b->files[b->n].data = (const uint8_t *)data;
	b->files[b->n].len = strlen(data);
	b->total += strlen(data);
	b->n++;
}

START_TEST(test_msg_submit)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	struct msg_submit s, out;
	enum rpc_err code;
	char err[256];

	memset(&s, 0, sizeof(s));
	bundle_add(&s.bundle, "manifest.yaml", 0644, "pipeline: {id: p}\n");
	bundle_add(&s.bundle, "cfg/a.json", 0600, "{}");
	s.manifest = "manifest.yaml";
	s.backend = "e2b";
	kvlist_add(&s.env, "A", "1");
	kvlist_add(&s.secrets, "TOKEN", "s3cr3t-value");
	kvlist_add(&s.labels, "team", "data");
	s.priority = -3;
	roundtrip_start(&b, &pk);
	msg_submit_pack(&pk, &s);
	ck_assert_int_eq(msg_submit_decode(roundtrip_finish(&b, &m), &out, 1024, &code, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.bundle.n, 2);
	ck_assert_uint_eq(out.bundle.total, 20);
	ck_assert_str_eq(out.bundle.files[1].path, "cfg/a.json");
	ck_assert_uint_eq(out.bundle.files[1].mode, 0600);
	ck_assert_int_eq(memcmp(bundle_find(&out.bundle, "cfg/a.json")->data, "{}", 2), 0);
	ck_assert_ptr_null(bundle_find(&out.bundle, "cfg/b.json"));
	ck_assert_str_eq(out.manifest, "manifest.yaml");
	ck_assert_str_eq(out.backend, "e2b");
	ck_assert_str_eq(kvlist_get(&out.env, "A"), "1");
	ck_assert_str_eq(kvlist_get(&out.secrets, "TOKEN"), "s3cr3t-value");
	ck_assert_str_eq(kvlist_get(&out.labels, "team"), "data");
	ck_assert_ptr_null(kvlist_get(&out.labels, "nope"));
	ck_assert_int_eq(out.priority, -3);
	msg_submit_free(&out);
	/* over the cap: too_large */
	ck_assert_int_eq(msg_submit_decode(m.params, &out, 19, &code, err, sizeof(err)), -1);
	ck_assert_int_eq(code, ERR_TOO_LARGE);
	rpc_msg_free(&m);
	s.manifest = NULL;
	s.backend = NULL;
	kvlist_free(&s.env);
	kvlist_free(&s.secrets);
	kvlist_free(&s.labels);
	s.bundle.files[0].data = NULL; /* string literals: do not free */
	bundle_free(&s.bundle);

	/* defaults; env value not a string */
	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "bundle");
	msgpack_pack_array(&pk, 0);
	ck_assert_int_eq(msg_submit_decode(roundtrip_finish(&b, &m), &out, 1024, &code, err, sizeof(err)), 0);
	ck_assert_str_eq(out.manifest, "manifest.yaml");
	ck_assert_str_eq(out.backend, "local");
	ck_assert_int_eq(out.priority, 0);
	ck_assert_uint_eq(out.env.n, 0);
	msg_submit_free(&out);
	rpc_msg_free(&m);

	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 2);
	mp_pack_key(&pk, "bundle");
	msgpack_pack_array(&pk, 0);
	mp_pack_key(&pk, "env");
	msgpack_pack_map(&pk, 1);
	mp_pack_kint(&pk, "A", 1);
	ck_assert_int_eq(msg_submit_decode(roundtrip_finish(&b, &m), &out, 1024, &code, err, sizeof(err)), -1);
	ck_assert_int_eq(code, ERR_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(err, "env"));
	rpc_msg_free(&m);

	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "manifest", "m.yaml");
	ck_assert_int_eq(msg_submit_decode(roundtrip_finish(&b, &m), &out, 1024, &code, err, sizeof(err)), -1);
	ck_assert_int_eq(code, ERR_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(err, "bundle"));
	rpc_msg_free(&m);
}
END_TEST

static void fill_run(struct run_info *r)
{
	memset(r, 0, sizeof(*r));
	r->id = xstrdup("r-0123456789");
	r->state = RUN_FAILED;
	r->pipeline = xstrdup("movies");
	r->backend = xstrdup("local");
	r->worker = NULL;
	r->error = xstrdup("step b failed");
	r->exit_code = 1;
	r->has_exit_code = 1;
	r->uid = 1000;
	r->priority = 5;
	r->submitted_at = 1795695884123LL;
	r->started_at = 1795695884200LL;
	r->finished_at = 0;
	r->last_seq = 42;
	kvlist_add(&r->labels, "k", "v");
	kvlist_add(&r->env, "E", "x");
	r->secret_names = xcalloc(1, sizeof(char *));
	r->secret_names[0] = xstrdup("TOKEN");
	r->nsecret_names = 1;
	r->steps = xcalloc(2, sizeof(*r->steps));
	r->nsteps = 2;
	r->steps[0].id = xstrdup("a");
	r->steps[0].driver = xstrdup("filesystem.csv_extractor");
	r->steps[0].state = STEP_SUCCEEDED;
	r->steps[0].rows_out = 10;
	r->steps[0].duration_ms = 12;
	r->steps[0].started_at = 1795695884201LL;
	r->steps[0].finished_at = 1795695884213LL;
	r->steps[1].id = xstrdup("b");
	r->steps[1].driver = xstrdup("duckdb.processor");
	r->steps[1].state = STEP_FAILED;
	r->steps[1].rows_in = 10;
	r->steps[1].error = xstrdup("boom");
	r->steps[1].error_type = xstrdup("SqlError");
}

START_TEST(test_msg_run_info)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	struct run_info r, out;
	const msgpack_object *p;
	char err[256];

	fill_run(&r);
	roundtrip_start(&b, &pk);
	run_info_pack(&pk, &r, 1);
	p = roundtrip_finish(&b, &m);
	ck_assert(mp_str_eq(mp_get(p, "submitted_at"), "2026-11-26T12:24:44.123Z"));
	ck_assert_int_eq(mp_get(p, "finished_at")->type, MSGPACK_OBJECT_NIL);
	ck_assert_int_eq(mp_get(p, "worker")->type, MSGPACK_OBJECT_NIL);
	ck_assert_int_eq(run_info_decode(p, &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.id, r.id);
	ck_assert_int_eq(out.state, RUN_FAILED);
	ck_assert_str_eq(out.pipeline, "movies");
	ck_assert_ptr_null(out.worker);
	ck_assert_str_eq(out.error, "step b failed");
	ck_assert_int_eq(out.has_exit_code, 1);
	ck_assert_int_eq(out.exit_code, 1);
	ck_assert_int_eq(out.uid, 1000);
	ck_assert_int_eq(out.priority, 5);
	ck_assert_int_eq(out.submitted_at, r.submitted_at);
	ck_assert_int_eq(out.started_at, r.started_at);
	ck_assert_int_eq(out.finished_at, 0);
	ck_assert_int_eq(out.last_seq, 42);
	ck_assert_str_eq(kvlist_get(&out.labels, "k"), "v");
	ck_assert_str_eq(kvlist_get(&out.env, "E"), "x");
	ck_assert_uint_eq(out.nsecret_names, 1);
	ck_assert_str_eq(out.secret_names[0], "TOKEN");
	ck_assert_uint_eq(out.nsteps, 2);
	ck_assert_str_eq(out.steps[0].driver, "filesystem.csv_extractor");
	ck_assert_int_eq(out.steps[0].state, STEP_SUCCEEDED);
	ck_assert_int_eq(out.steps[0].rows_out, 10);
	ck_assert_int_eq(out.steps[0].duration_ms, 12);
	ck_assert_int_eq(out.steps[0].finished_at, 1795695884213LL);
	ck_assert_ptr_null(out.steps[0].error);
	ck_assert_int_eq(out.steps[1].state, STEP_FAILED);
	ck_assert_str_eq(out.steps[1].error, "boom");
	ck_assert_str_eq(out.steps[1].error_type, "SqlError");
	run_info_free(&out);
	rpc_msg_free(&m);

	/* without steps: no "steps" key at all; exit_code nil while not final */
	r.has_exit_code = 0;
	r.state = RUN_RUNNING;
	roundtrip_start(&b, &pk);
	run_info_pack(&pk, &r, 0);
	p = roundtrip_finish(&b, &m);
	ck_assert_ptr_null(mp_get(p, "steps"));
	ck_assert_int_eq(mp_get(p, "exit_code")->type, MSGPACK_OBJECT_NIL);
	ck_assert_int_eq(run_info_decode(p, &out, err, sizeof(err)), 0);
	ck_assert_int_eq(out.has_exit_code, 0);
	ck_assert_uint_eq(out.nsteps, 0);
	run_info_free(&out);
	rpc_msg_free(&m);
	run_info_free(&r);
	ck_assert_ptr_null(r.id);

	/* bad state, bad time */
	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "id", "r1");
	mp_pack_kstr(&pk, "state", "exploded");
	ck_assert_int_eq(run_info_decode(roundtrip_finish(&b, &m), &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "exploded"));
	rpc_msg_free(&m);
	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 3);
	mp_pack_kstr(&pk, "id", "r1");
	mp_pack_kstr(&pk, "state", "queued");
	mp_pack_kstr(&pk, "submitted_at", "last tuesday");
	ck_assert_int_eq(run_info_decode(roundtrip_finish(&b, &m), &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "submitted_at"));
	rpc_msg_free(&m);
}
END_TEST

static void pack_data_map(struct event_rec *e)
{
	struct buf b;
	msgpack_packer pk;

	buf_init(&b);
	rpc_packer_init(&pk, &b);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "message", "hello world");
	mp_pack_key(&pk, "value");
	msgpack_pack_double(&pk, 1.5);
	e->data = b.data;
	e->data_len = b.len;
}

START_TEST(test_msg_event_rec)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	struct event_rec e, out;
	const msgpack_object *p;
	msgpack_zone z;
	msgpack_object d;
	size_t off = 0;
	char err[256];
	double v = 0;

	memset(&e, 0, sizeof(e));
	e.seq = 17;
	e.ts = 1795695884123LL;
	e.kind = REC_METRIC;
	e.name = "rows_out";
	e.step_id = "extract";
	pack_data_map(&e);

	/* worker shape: kind from the method */
	roundtrip_start(&b, &pk);
	event_rec_pack_worker(&pk, &e);
	p = roundtrip_finish(&b, &m);
	ck_assert_ptr_null(mp_get(p, "kind"));
	/* issue 8: the worker pipe carries ts as integer ms */
	ck_assert_int_eq(mp_get(p, "ts")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	ck_assert_int_eq((int64_t)mp_get(p, "ts")->via.u64, e.ts);
	ck_assert_int_eq(event_rec_decode(p, "metric", &out, err, sizeof(err)), 0);
	ck_assert_int_eq(out.kind, REC_METRIC);
	ck_assert_int_eq(out.seq, 17);
	ck_assert_int_eq(out.ts, e.ts);
	ck_assert_int_eq(out.daemon_origin, 0);
	ck_assert_str_eq(out.name, "rows_out");
	ck_assert_str_eq(out.step_id, "extract");
	ck_assert_uint_eq(out.data_len, e.data_len);
	ck_assert_int_eq(memcmp(out.data, e.data, e.data_len), 0);
	event_rec_free(&out);
	/* issue 8: the same record decoded into a reused scratch buffer */
	{
		struct buf scratch;
		buf_init(&scratch);
		buf_add(&scratch, "left over", 9);
		ck_assert_int_eq(event_rec_decode_buf(p, "metric", &out, &scratch, err, sizeof(err)), 0);
		ck_assert_int_eq(out.kind, REC_METRIC);
		ck_assert_int_eq(out.seq, 17);
		ck_assert_int_eq(out.ts, e.ts);
		ck_assert_str_eq(out.name, "rows_out");
		ck_assert_str_eq(out.step_id, "extract");
		ck_assert_uint_eq(out.data_len, e.data_len);
		ck_assert_int_eq(memcmp(out.data, e.data, e.data_len), 0);
		ck_assert_int_eq(event_rec_decode_buf(p, "bogus", &out, &scratch, err, sizeof(err)), -1);
		buf_free(&scratch);
	}
	ck_assert_int_eq(event_rec_decode(p, "bogus", &out, err, sizeof(err)), -1);
	ck_assert_int_eq(event_rec_decode(p, NULL, &out, err, sizeof(err)), -1); /* no kind key */
	rpc_msg_free(&m);

	/* run shape: kind and origin keys */
	e.kind = REC_LOG;
	e.daemon_origin = 1;
	e.step_id = NULL;
	roundtrip_start(&b, &pk);
	event_rec_pack_run(&pk, "r-1", &e);
	p = roundtrip_finish(&b, &m);
	ck_assert(mp_str_eq(mp_get(p, "run"), "r-1"));
	ck_assert(mp_str_eq(mp_get(p, "origin"), "daemon"));
	ck_assert(mp_str_eq(mp_get(p, "kind"), "log"));
	ck_assert(mp_str_eq(mp_get(p, "ts"), "2026-11-26T12:24:44.123Z"));
	ck_assert_int_eq(mp_get_double(mp_get(p, "data"), "value", &v), 0);
	ck_assert(v == 1.5);
	ck_assert_int_eq(event_rec_decode(p, NULL, &out, err, sizeof(err)), 0);
	ck_assert_int_eq(out.kind, REC_LOG);
	ck_assert_int_eq(out.daemon_origin, 1);
	ck_assert_ptr_null(out.step_id);
	/* the data copy is a self-contained msgpack map */
	msgpack_zone_init(&z, 256);
	ck_assert_int_eq(msgpack_unpack((const char *)out.data, out.data_len, &off, &z, &d), MSGPACK_UNPACK_SUCCESS);
	ck_assert(mp_str_eq(mp_get(&d, "message"), "hello world"));
	msgpack_zone_destroy(&z);
	event_rec_free(&out);
	rpc_msg_free(&m);
	free(e.data);

	/* NULL data packs an empty map; decode without data gives an empty map */
	e.data = NULL;
	e.data_len = 0;
	roundtrip_start(&b, &pk);
	event_rec_pack_worker(&pk, &e);
	p = roundtrip_finish(&b, &m);
	ck_assert_int_eq(mp_get(p, "data")->type, MSGPACK_OBJECT_MAP);
	ck_assert_int_eq(event_rec_decode(p, "event", &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.data_len, 1);
	ck_assert_int_eq(out.data[0], 0x80);
	event_rec_free(&out);
	rpc_msg_free(&m);

	/* data must be a map */
	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 3);
	mp_pack_kint(&pk, "seq", 1);
	mp_pack_kstr(&pk, "name", "x");
	mp_pack_kstr(&pk, "data", "oops");
	ck_assert_int_eq(event_rec_decode(roundtrip_finish(&b, &m), "log", &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "data"));
	rpc_msg_free(&m);
	ck_assert_str_eq(rec_kind_name(REC_EVENT), "event");
	ck_assert_str_eq(rec_kind_name(REC_METRIC), "metric");
}
END_TEST

START_TEST(test_msg_artifact_pool_result)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	struct artifact_info a = {0}, ao;
	struct pool_info pl = {0}, po;
	struct step_result sr = {0}, so;
	char err[256];

	a.path = "output/movies.csv";
	a.step_id = "write";
	a.size = 1234;
	sha256_hex("abc", 3, a.sha256);
	roundtrip_start(&b, &pk);
	artifact_info_pack(&pk, &a);
	ck_assert_int_eq(artifact_info_decode(roundtrip_finish(&b, &m), &ao, err, sizeof(err)), 0);
	ck_assert_str_eq(ao.path, a.path);
	ck_assert_str_eq(ao.step_id, "write");
	ck_assert_int_eq(ao.size, 1234);
	ck_assert_str_eq(ao.sha256, a.sha256);
	artifact_info_free(&ao);
	rpc_msg_free(&m);
	strcpy(a.sha256, "xyz");
	roundtrip_start(&b, &pk);
	artifact_info_pack(&pk, &a);
	ck_assert_int_eq(artifact_info_decode(roundtrip_finish(&b, &m), &ao, err, sizeof(err)), -1);
	rpc_msg_free(&m);

	pl.backend = "local";
	pl.target = 2;
	pl.idle = 1;
	pl.warming = 1;
	pl.busy = 3;
	pl.max = 8;
	pl.start_ms[0] = 12;
	pl.start_ms[1] = 15;
	pl.nstart = 2;
	roundtrip_start(&b, &pk);
	pool_info_pack(&pk, &pl);
	ck_assert_int_eq(pool_info_decode(roundtrip_finish(&b, &m), &po, err, sizeof(err)), 0);
	ck_assert_str_eq(po.backend, "local");
	ck_assert_int_eq(po.target, 2);
	ck_assert_int_eq(po.idle, 1);
	ck_assert_int_eq(po.warming, 1);
	ck_assert_int_eq(po.busy, 3);
	ck_assert_int_eq(po.max, 8);
	ck_assert_uint_eq(po.nstart, 2);
	ck_assert_int_eq(po.start_ms[1], 15);
	pool_info_free(&po);
	rpc_msg_free(&m);

	sr.state = STEP_FAILED;
	sr.rows_in = 5;
	sr.rows_out = 0;
	sr.duration_ms = 33;
	sr.error = "division by zero";
	sr.error_type = "SqlError";
	roundtrip_start(&b, &pk);
	step_result_pack(&pk, &sr);
	ck_assert_int_eq(step_result_decode(roundtrip_finish(&b, &m), &so, err, sizeof(err)), 0);
	ck_assert_int_eq(so.state, STEP_FAILED);
	ck_assert_int_eq(so.rows_in, 5);
	ck_assert_int_eq(so.duration_ms, 33);
	ck_assert_str_eq(so.error, "division by zero");
	ck_assert_str_eq(so.error_type, "SqlError");
	step_result_free(&so);
	rpc_msg_free(&m);
	sr.state = STEP_RUNNING; /* not a result state */
	roundtrip_start(&b, &pk);
	step_result_pack(&pk, &sr);
	ck_assert_int_eq(step_result_decode(roundtrip_finish(&b, &m), &so, err, sizeof(err)), -1);
	rpc_msg_free(&m);
}
END_TEST

/* Worker `ready`: the drivers round-trip; every key is optional (an older
 * worker names no drivers); wrong types and too many drivers fail. */
START_TEST(test_msg_ready)
{
	static const struct {
		const char *what, *bytes; /* a packed params map */
		size_t len;
	} bad[] = {
#define BAD(lit, what) {what, lit, sizeof(lit) - 1}
	    BAD("\x81\xa7"
	        "drivers\x05",
	        "drivers not an array"),
	    BAD("\x81\xa7"
	        "drivers\x91\x05",
	        "a driver not a string"),
	    BAD("\x81\xa6"
	        "zygote\xa3yes",
	        "zygote not a boolean"),
	    BAD("\x81\xa7"
	        "version\x05",
	        "version not a string"),
	    BAD("\x81\xa3pid\xa1x", "pid not an integer"),
	    BAD("\x90", "not a map"),
#undef BAD
	};
	char *names[] = {"osiris.noop", "mysql.writer"};
	struct msg_ready r = {.version = "1.2", .pid = 42, .protocol = 1, .zygote = 1, .drivers = names, .ndrivers = 2};
	struct msg_ready out;
	msgpack_unpacked u;
	msgpack_packer pk;
	struct rpc_msg m;
	struct buf b;
	char err[256];
	size_t i;

	roundtrip_start(&b, &pk);
	msg_ready_pack(&pk, &r);
	ck_assert_int_eq(msg_ready_decode(roundtrip_finish(&b, &m), &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.version, "1.2");
	ck_assert_int_eq(out.pid, 42);
	ck_assert_int_eq(out.protocol, 1);
	ck_assert_int_eq(out.zygote, 1);
	ck_assert_int_eq(out.has_drivers, 1);
	ck_assert_uint_eq(out.ndrivers, 2);
	ck_assert_str_eq(out.drivers[1], "mysql.writer");
	msg_ready_free(&out);
	rpc_msg_free(&m);

	msgpack_unpacked_init(&u);
	ck_assert(msgpack_unpack_next(&u, "\x80", 1, NULL) == MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(msg_ready_decode(&u.data, &out, err, sizeof(err)), 0);
	ck_assert_ptr_null(out.version);
	ck_assert_int_eq(out.zygote, 0);
	ck_assert_int_eq(out.has_drivers, 0);
	msg_ready_free(&out);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert(msgpack_unpack_next(&u, bad[i].bytes, bad[i].len, NULL) == MSGPACK_UNPACK_SUCCESS);
		err[0] = '\0';
		ck_assert_msg(msg_ready_decode(&u.data, &out, err, sizeof(err)) == -1, "accepted: %s", bad[i].what);
		ck_assert_msg(err[0] != '\0', "no error text: %s", bad[i].what);
		ck_assert_ptr_null(out.drivers);
	}
	msgpack_unpacked_destroy(&u);

	/* MSG_READY_MAX_DRIVERS names, and one more */
	r.drivers = xcalloc(MSG_READY_MAX_DRIVERS + 1, sizeof(char *));
	for (i = 0; i <= MSG_READY_MAX_DRIVERS; i++)
		r.drivers[i] = "d";
	for (r.ndrivers = MSG_READY_MAX_DRIVERS; r.ndrivers <= MSG_READY_MAX_DRIVERS + 1; r.ndrivers++) {
		roundtrip_start(&b, &pk);
		msg_ready_pack(&pk, &r);
		ck_assert_int_eq(msg_ready_decode(roundtrip_finish(&b, &m), &out, err, sizeof(err)),
		                 r.ndrivers <= MSG_READY_MAX_DRIVERS ? 0 : -1);
		msg_ready_free(&out);
		rpc_msg_free(&m);
	}
	free(r.drivers);
}
END_TEST

START_TEST(test_msg_prepare)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	struct msg_prepare p, out;
	char err[256];

	memset(&p, 0, sizeof(p));
	p.run_id = "r-1";
	bundle_add(&p.bundle, "manifest.yaml", 0644, "steps: []\n");
	p.manifest = "manifest.yaml";
	kvlist_add(&p.env, "A", "1");
	kvlist_add(&p.secrets, "PW", "hunter22");
	roundtrip_start(&b, &pk);
	msg_prepare_pack(&pk, &p);
	ck_assert_int_eq(msg_prepare_decode(roundtrip_finish(&b, &m), &out, 1024, err, sizeof(err)), 0);
	ck_assert_str_eq(out.run_id, "r-1");
	ck_assert_uint_eq(out.bundle.n, 1);
	ck_assert_ptr_null(out.bundle_path);
	ck_assert_str_eq(out.manifest, "manifest.yaml");
	ck_assert_str_eq(kvlist_get(&out.secrets, "PW"), "hunter22");
	msg_prepare_free(&out);
	ck_assert_int_eq(msg_prepare_decode(m.params, &out, 5, err, sizeof(err)), -1); /* over cap */
	rpc_msg_free(&m);

	p.bundle_path = "/var/lib/osiris/runs/r-1/bundle";
	roundtrip_start(&b, &pk);
	msg_prepare_pack(&pk, &p);
	ck_assert_int_eq(msg_prepare_decode(roundtrip_finish(&b, &m), &out, 1024, err, sizeof(err)), 0);
	ck_assert_str_eq(out.bundle_path, p.bundle_path);
	ck_assert_uint_eq(out.bundle.n, 0);
	msg_prepare_free(&out);
	rpc_msg_free(&m);

	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "run_id", "r-1");
	ck_assert_int_eq(msg_prepare_decode(roundtrip_finish(&b, &m), &out, 1024, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "bundle"));
	rpc_msg_free(&m);

	kvlist_free(&p.env);
	kvlist_free(&p.secrets);
	bundle_free(&p.bundle);
}
END_TEST

/* Decode params {"bundle": <raw bundle entries packed by fn>}. */
static int bundle_try(void (*fn)(msgpack_packer *), size_t max, struct bundle *out, enum rpc_err *code, char *err)
{
	struct buf b;
	msgpack_packer pk;
	struct rpc_msg m;
	int r;

	roundtrip_start(&b, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "bundle");
	fn(&pk);
	r = bundle_decode(mp_get(roundtrip_finish(&b, &m), "bundle"), out, max, code, err, 256);
	if (r == 0)
		bundle_free(out);
	rpc_msg_free(&m);
	return r;
}

static void entry(msgpack_packer *pk, const char *path, unsigned mode, const char *data)
{
	msgpack_pack_array(pk, 3);
	mp_pack_str(pk, path);
	msgpack_pack_unsigned_int(pk, mode);
	msgpack_pack_bin(pk, strlen(data));
	msgpack_pack_bin_body(pk, data, strlen(data));
}

static void b_ok(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	entry(pk, "a/b.txt", 0644, "hello");
	msgpack_pack_array(pk, 3);
	mp_pack_str(pk, "s.txt");
	msgpack_pack_unsigned_int(pk, 0600);
	mp_pack_str(pk, "as str");
}
static void b_dotdot(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	entry(pk, "../x", 0644, "x");
}
static void b_abs(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	entry(pk, "/abs", 0644, "x");
}
static void b_inner_dotdot(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	entry(pk, "ok.txt", 0644, "x");
	entry(pk, "a/../../etc/passwd", 0644, "x");
}
static void b_dup(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	entry(pk, "a.txt", 0644, "x");
	entry(pk, "b.txt", 0644, "x");
	entry(pk, "a.txt", 0644, "y");
}
static void b_big(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	entry(pk, "a.txt", 0644, "0123456789");
	entry(pk, "b.txt", 0644, "0123456789");
}
static void b_mode(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	entry(pk, "a.txt", 0100644, "x");
}
static void b_pair(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 2);
	mp_pack_str(pk, "a.txt");
	msgpack_pack_unsigned_int(pk, 0644);
}
static void b_notarray(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 0);
}
static void b_dataint(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 3);
	mp_pack_str(pk, "a.txt");
	msgpack_pack_unsigned_int(pk, 0644);
	msgpack_pack_int(pk, 5);
}
static void b_nulpath(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\0b", 3);
	msgpack_pack_unsigned_int(pk, 0644);
	msgpack_pack_bin(pk, 0);
}
static void b_many(msgpack_packer *pk)
{
	char path[32];
	int i;

	msgpack_pack_array(pk, 50001);
	for (i = 0; i < 50000; i++) {
		snprintf(path, sizeof(path), "d%d/f%d", i % 97, i);
		entry(pk, path, 0644, "");
	}
	entry(pk, "d5/f5", 0644, ""); /* duplicate of an early one, found by the sort */
}

/* Bundles on the wire: accepted or refused, with the code and what the
 * error names. code ERR_NONE: not checked (refused is enough). */
static const struct bundle_case {
	const char *what;
	void (*fn)(msgpack_packer *);
	size_t max;
	int want;
	enum rpc_err code;
	const char *err[2]; /* substrings of the error */
} bundle_cases[] = {
    {"two files", b_ok, 1024, 0, ERR_NONE, {NULL, NULL}},
    {"total 11 == cap", b_ok, 11, 0, ERR_NONE, {NULL, NULL}},
    {"total 11 over cap 10", b_ok, 10, -1, ERR_TOO_LARGE, {NULL, NULL}},
    {"total 20 over cap 19", b_big, 19, -1, ERR_TOO_LARGE, {NULL, NULL}},
    {"total 20 == cap", b_big, 20, 0, ERR_NONE, {NULL, NULL}},
    {"../x", b_dotdot, 1024, -1, ERR_INVALID_REQUEST, {"unsafe", NULL}},
    {"/abs", b_abs, 1024, -1, ERR_INVALID_REQUEST, {NULL, NULL}},
    {"a/../../etc/passwd", b_inner_dotdot, 1024, -1, ERR_NONE, {NULL, NULL}},
    {"duplicate path", b_dup, 1024, -1, ERR_INVALID_REQUEST, {"duplicate", "a.txt"}},
    {"mode with file type bits", b_mode, 1024, -1, ERR_NONE, {NULL, NULL}},
    {"entry of two", b_pair, 1024, -1, ERR_NONE, {NULL, NULL}},
    {"not an array", b_notarray, 1024, -1, ERR_NONE, {NULL, NULL}},
    {"data an integer", b_dataint, 1024, -1, ERR_NONE, {NULL, NULL}},
    {"NUL in a path", b_nulpath, 1024, -1, ERR_NONE, {NULL, NULL}},
    {"duplicate among 50001", b_many, 1024, -1, ERR_NONE, {"d5/f5", NULL}},
};

START_TEST(test_bundle_decode_checks)
{
	const struct bundle_case *c = &bundle_cases[_i];
	struct bundle out;
	enum rpc_err code = ERR_NONE;
	char err[256] = "";
	size_t i;

	ck_assert_msg(bundle_try(c->fn, c->max, &out, &code, err) == c->want, "%s: %s", c->what,
	              c->want == 0 ? err : "accepted");
	if (c->code != ERR_NONE)
		ck_assert_msg(code == c->code, "%s: code %s", c->what, rpc_err_name(code));
	for (i = 0; i < 2; i++)
		if (c->err[i] != NULL)
			ck_assert_msg(strstr(err, c->err[i]) != NULL, "%s: '%s' lacks '%s'", c->what, err, c->err[i]);
}
END_TEST

static char *tmpdir(void)
{
	char t[] = "/tmp/check_proto.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(t));
	return xstrdup(t);
}

static void put(const char *dir, const char *rel, const char *data, mode_t mode)
{
	char *p;
	FILE *f;

	xasprintf(&p, "%s/%s", dir, rel);
	ck_assert_int_eq(mkdir_parents(p), 0);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(data, f);
	fclose(f);
	ck_assert_int_eq(chmod(p, mode), 0);
	free(p);
}

/* A big message that is all the reader holds is handed to the decoder
 * (no copy): it decodes the same, the reader is left empty and goes on
 * with the next message; a big one behind a small one is still copied
 * and decoded; a malformed big one fails with its msgid. */
static void big_request(struct buf *out, uint32_t id, size_t n)
{
	msgpack_packer pk;
	uint8_t *blob = xcalloc(1, n);

	rpc_packer_init(&pk, out);
	rpc_pack_request_head(&pk, id, "run.submit");
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "blob");
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, blob, n);
	free(blob);
}

START_TEST(test_reader_hand_over)
{
	struct rpc_limits l = limits(8u << 20);
	struct rpc_reader r;
	struct rpc_msg m;
	struct buf b, small;
	char rerr[256];
	uint32_t id = 0;
	int has, big;
	const msgpack_object *blob;

	buf_init(&b);
	big_request(&b, 7, 3u << 20);
	rpc_reader_init(&r, &l);
	rpc_reader_add(&r, b.data, b.len);
	ck_assert_int_eq(rpc_reader_next(&r, &m, rerr, sizeof(rerr), &id, &has, &big), 1);
	ck_assert_uint_eq(m.msgid, 7);
	ck_assert_str_eq(m.method, "run.submit");
	ck_assert_ptr_nonnull(blob = mp_get(m.params, "blob"));
	ck_assert_uint_eq(blob->via.bin.size, 3u << 20);
	ck_assert_uint_eq(rpc_reader_unread(&r), 0);
	rpc_msg_free(&m);
	/* a small one, then the big one again in the same buffer */
	buf_init(&small);
	big_request(&small, 8, 10);
	rpc_reader_add(&r, small.data, small.len);
	rpc_reader_add(&r, b.data, b.len);
	ck_assert_int_eq(rpc_reader_next(&r, &m, rerr, sizeof(rerr), &id, &has, &big), 1);
	ck_assert_uint_eq(m.msgid, 8);
	rpc_msg_free(&m);
	ck_assert_int_eq(rpc_reader_next(&r, &m, rerr, sizeof(rerr), &id, &has, &big), 1);
	ck_assert_uint_eq(m.msgid, 7);
	ck_assert_uint_eq(mp_get(m.params, "blob")->via.bin.size, 3u << 20);
	rpc_msg_free(&m);
	ck_assert_int_eq(rpc_reader_next(&r, &m, rerr, sizeof(rerr), &id, &has, &big), 0);
	rpc_reader_free(&r);
	/* a well-framed big message with a bad envelope (type 5): -1, msgid kept */
	b.data[1] = 0x05;
	rpc_reader_init(&r, &l);
	rpc_reader_add(&r, b.data, b.len);
	ck_assert_int_eq(rpc_reader_next(&r, &m, rerr, sizeof(rerr), &id, &has, &big), -1);
	rpc_reader_free(&r);
	buf_free(&b);
	buf_free(&small);
}
END_TEST

/* bundle_write_fd writes exactly bundle_pack's bytes, across iovec
 * batches (200 files: several writev calls) and with empty files. */
START_TEST(test_bundle_write_fd)
{
	struct bundle b;
	msgpack_packer pk;
	struct buf packed, written;
	char path[] = "/tmp/ck-bwfd-XXXXXX", name[32], *data;
	size_t i, n = 200;
	int fd;

	memset(&b, 0, sizeof(b));
	b.files = xcalloc(n, sizeof(*b.files));
	data = xmalloc(n * 3);
	for (i = 0; i < n * 3; i++)
		data[i] = (char)('a' + i % 26);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "d/f%03zu", i);
		b.files[i].path = xstrdup(name);
		b.files[i].mode = 0644;
		b.files[i].data = (const uint8_t *)data + i;
		b.files[i].len = i % 7 == 0 ? 0 : i % 3 + 1;
		b.total += b.files[i].len;
	}
	b.n = n;
	buf_init(&packed);
	rpc_packer_init(&pk, &packed);
	bundle_pack(&pk, &b);
	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_int_eq(bundle_write_fd(&b, fd), 0);
	close(fd);
	buf_init(&written);
	ck_assert_int_eq(file_read_all(path, 1 << 20, &written), 0);
	ck_assert_uint_eq(written.len, packed.len);
	ck_assert(memcmp(written.data, packed.data, packed.len) == 0);
	unlink(path);
	buf_free(&packed);
	buf_free(&written);
	bundle_free(&b);
	free(data);
}
END_TEST

START_TEST(test_bundle_dir_save_load)
{
	char *src = tmpdir(), *dst = tmpdir(), *file, *p, err[256];
	struct bundle b, l;

	put(src, "manifest.yaml", "pipeline: {id: movies}\n", 0644);
	put(src, "cfg/extract.json", "{\"path\": \"data/in.csv\"}", 0600);
	put(src, "data/in.csv", "a,b\n1,2\n", 0444);
	put(src, "bin/run.sh", "#!/bin/sh\n", 04775);
	put(src, ".hidden", "", 0644);
	ck_assert_int_eq(bundle_from_dir(&b, src, 1024, err, sizeof(err)), 0);
	ck_assert_uint_eq(b.n, 5);
	ck_assert_str_eq(b.files[0].path, ".hidden"); /* sorted */
	ck_assert_str_eq(b.files[1].path, "bin/run.sh");
	ck_assert_str_eq(b.files[2].path, "cfg/extract.json");
	ck_assert_str_eq(b.files[4].path, "manifest.yaml");
	ck_assert_uint_eq(b.total, 23 + 23 + 8 + 10);
	ck_assert_uint_eq(bundle_find(&b, "data/in.csv")->mode, 0444);
	ck_assert_int_eq(memcmp(bundle_find(&b, "data/in.csv")->data, "a,b\n1,2\n", 8), 0);

	xasprintf(&file, "%s/bundle.mp", dst);
	{
		struct stat st;
		off_t size = 0;
		ck_assert_int_eq(bundle_save(&b, file, &size), 0);
		ck_assert_int_eq(stat(file, &st), 0);
		ck_assert_int_eq(size, st.st_size);               /* what the run's disk accounting counts */
		ck_assert_int_eq(bundle_save(&b, file, NULL), 0); /* rewritten in place */
		ck_assert_int_eq(stat(file, &st), 0);
		ck_assert_int_eq(size, st.st_size);
	}
	ck_assert_int_eq(bundle_load(&l, file, 1024, err, sizeof(err)), 0);
	ck_assert_uint_eq(l.n, 5);
	ck_assert_uint_eq(l.total, b.total);
	/* mapped from the file, which stays open for kernel copies: a file's
	 * data lies in it at bundle_data_offset */
	ck_assert_ptr_nonnull(l.map);
	ck_assert_int_eq(memcmp(bundle_find(&l, "manifest.yaml")->data, "pipeline", 8), 0);
	{
		const struct bundle_file *bf = bundle_find(&l, "data/in.csv");
		char got[8];
		off_t off;
		ck_assert_int_eq(bundle_data_offset(&l, bf, &off), 0);
		ck_assert_int_eq(pread(l.fd, got, 8, off), 8);
		ck_assert_int_eq(memcmp(got, "a,b\n1,2\n", 8), 0);
		ck_assert_int_eq(bundle_data_offset(&b, bf, &off), -1); /* b is not a stored file */
	}
	bundle_free(&l);
	ck_assert_int_eq(bundle_load(&l, file, 10, err, sizeof(err)), -1); /* data over max_bytes */
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(bundle_load(&l, file, 1024, err, sizeof(err)), 0);

	bundle_free(&l);
	bundle_free(&b);

	/* over the cap */
	ck_assert_int_eq(bundle_from_dir(&b, src, 20, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "larger"));
	/* a symlink is refused with its name */
	xasprintf(&p, "%s/link", src);
	ck_assert_int_eq(symlink("/etc/passwd", p), 0);
	ck_assert_int_eq(bundle_from_dir(&b, src, 1024, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "link"));
	ck_assert_ptr_nonnull(strstr(err, "symbolic"));
	unlink(p);
	free(p);
	/* not a directory */
	ck_assert_int_eq(bundle_from_dir(&b, "/nonexistent/dir", 1024, err, sizeof(err)), -1);
	/* load: garbage file */
	put(dst, "garbage", "\xc1\xc1\xc1", 0644);
	free(file);
	xasprintf(&file, "%s/garbage", dst);
	ck_assert_int_eq(bundle_load(&l, file, 1024, err, sizeof(err)), -1);
	ck_assert_int_eq(bundle_load(&l, "/nonexistent", 1024, err, sizeof(err)), -1);
	free(file);

	ck_assert_int_eq(rmtree(src), 0);
	ck_assert_int_eq(rmtree(dst), 0);
	free(src);
	free(dst);
}
END_TEST

START_TEST(test_kvlist)
{
	struct kvlist l = {0};

	kvlist_add(&l, "a", "1");
	kvlist_add(&l, "b", "2");
	ck_assert_str_eq(kvlist_get(&l, "b"), "2");
	ck_assert_ptr_null(kvlist_get(&l, "c"));
	kvlist_free(&l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(kvlist_decode(NULL, &l, NULL, 0), 0); /* nil -> empty */
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_scan_every_type);
	tcase_add_test(tc, test_scan_byte_by_byte_stream);
	tcase_add_test(tc, test_scan_need_is_exact_for_bin32);
	tcase_add_loop_test(tc, test_scan_limits, 0, (int)(sizeof(scan_cases) / sizeof(scan_cases[0])));
	tcase_add_test(tc, test_scan_limits_built);
	tcase_add_test(tc, test_scan_fault_codes);
	tcase_add_test(tc, test_scan_exact_max_msg);
	tcase_add_test(tc, test_limits_default);
	tcase_add_test(tc, test_decode_envelope_ok);
	tcase_add_test(tc, test_decode_envelope_errors);
	tcase_add_test(tc, test_pack_helpers_and_getters);
	tcase_add_test(tc, test_pack_error_and_result);
	tcase_add_test(tc, test_errors_states);
	tcase_add_test(tc, test_msg_hello);
	tcase_add_test(tc, test_msg_submit);
	tcase_add_test(tc, test_msg_run_info);
	tcase_add_test(tc, test_msg_event_rec);
	tcase_add_test(tc, test_msg_artifact_pool_result);
	tcase_add_test(tc, test_msg_prepare);
	tcase_add_test(tc, test_msg_ready);
	tcase_add_loop_test(tc, test_bundle_decode_checks, 0, (int)(sizeof(bundle_cases) / sizeof(bundle_cases[0])));
	tcase_add_test(tc, test_bundle_dir_save_load);
	tcase_add_test(tc, test_bundle_write_fd);
	tcase_add_test(tc, test_reader_hand_over);
	tcase_add_test(tc, test_kvlist);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
