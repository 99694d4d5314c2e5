/*
 * check_sched.c: the pure parts of osirisd's scheduling path: the run queue
 * order (priority, then FIFO), run ids (encoding, monotonic, unique), the
 * pool start-latency ring, and the incremental msgpack-rpc
 * reader the control socket and the worker pipes share.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon/osirisd.h"

/* ---- queue order ------------------------------------------------------ */

static void q_add(struct sched_queue *q, struct sched_item *it, int64_t prio, uint64_t seq)
{
	it->priority = prio;
	it->seq = seq;
	sched_queue_insert(q, it);
}

static void q_expect(struct sched_queue *q, const uint64_t *seqs, size_t n)
{
	struct sched_item *it;
	size_t i = 0;

	TAILQ_FOREACH(it, q, entry)
	{
		ck_assert_msg(i < n, "queue longer than expected");
		ck_assert_msg(it->seq == seqs[i], "position %zu: seq %llu, expected %llu", i,
		              (unsigned long long)it->seq, (unsigned long long)seqs[i]);
		i++;
	}
	ck_assert_uint_eq(i, n);
}

START_TEST(test_queue_fifo_same_priority)
{
	struct sched_queue q = TAILQ_HEAD_INITIALIZER(q);
	struct sched_item it[5];
	const uint64_t want[] = {1, 2, 3, 4, 5};
	size_t i;

	for (i = 0; i < 5; i++)
		q_add(&q, &it[i], 0, i + 1);
	q_expect(&q, want, 5);
}
END_TEST

START_TEST(test_queue_priority_first_then_fifo)
{
	struct sched_queue q = TAILQ_HEAD_INITIALIZER(q);
	struct sched_item it[7];
	/* seq: prio */
	q_add(&q, &it[0], 0, 1);
	q_add(&q, &it[1], 5, 2);
	q_add(&q, &it[2], -3, 3);
	q_add(&q, &it[3], 5, 4);
	q_add(&q, &it[4], 0, 5);
	q_add(&q, &it[5], 10, 6);
	q_add(&q, &it[6], -3, 7);
	{
		const uint64_t want[] = {6, 2, 4, 1, 5, 3, 7};
		q_expect(&q, want, 7);
	}
}
END_TEST

START_TEST(test_queue_requeued_keeps_seq)
{
	/* A run put back (recovery order) with an older seq goes before newer
	 * ones of the same priority, after older ones. */
	struct sched_queue q = TAILQ_HEAD_INITIALIZER(q);
	struct sched_item it[4];
	const uint64_t want[] = {1, 2, 3, 4};

	q_add(&q, &it[0], 1, 1);
	q_add(&q, &it[1], 1, 3);
	q_add(&q, &it[2], 1, 4);
	q_add(&q, &it[3], 1, 2);
	q_expect(&q, want, 4);
}
END_TEST

START_TEST(test_queue_remove_middle)
{
	struct sched_queue q = TAILQ_HEAD_INITIALIZER(q);
	struct sched_item it[3];
	const uint64_t want[] = {1, 3};

	q_add(&q, &it[0], 0, 1);
	q_add(&q, &it[1], 0, 2);
	q_add(&q, &it[2], 0, 3);
	TAILQ_REMOVE(&q, &it[1], entry);
	q_expect(&q, want, 2);
}
END_TEST

START_TEST(test_queue_extreme_priorities)
{
	struct sched_queue q = TAILQ_HEAD_INITIALIZER(q);
	struct sched_item it[3];
	const uint64_t want[] = {2, 1, 3};

	q_add(&q, &it[0], 0, 1);
	q_add(&q, &it[1], INT64_MAX, 2);
	q_add(&q, &it[2], INT64_MIN, 3);
	q_expect(&q, want, 3);
}
END_TEST

/* ---- run ids ---------------------------------------------------------- */

static int crockford(char c)
{
	return c != '\0' && strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) != NULL;
}

START_TEST(test_runid_encode_known)
{
	uint8_t zero[10] = {0}, ones[10];
	char out[RUN_ID_LEN + 1];

	run_id_encode(0, zero, out);
	ck_assert_str_eq(out, "00000000000000000000000000");
	memset(ones, 0xff, sizeof(ones));
	run_id_encode((UINT64_C(1) << 48) - 1, ones, out);
	ck_assert_str_eq(out, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
	/* 1 ms, random = 1: last char '1', time field ends in '1' */
	zero[9] = 1;
	run_id_encode(1, zero, out);
	ck_assert_str_eq(out, "00000000010000000000000001");
	/* ULID spec example time: 1469918176385 -> 01ARYZ6S41 */
	memset(zero, 0, sizeof(zero));
	run_id_encode(UINT64_C(1469918176385), zero, out);
	ck_assert(strncmp(out, "01ARYZ6S41", 10) == 0);
}
END_TEST

START_TEST(test_runid_rnd_next_carries)
{
	uint8_t r[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xff};

	ck_assert_int_eq(run_id_rnd_next(r), 0);
	ck_assert_uint_eq(r[8], 1);
	ck_assert_uint_eq(r[9], 0);
	memset(r, 0xff, sizeof(r));
	ck_assert_int_eq(run_id_rnd_next(r), -1);
}
END_TEST

START_TEST(test_runid_new_monotonic_unique)
{
	char prev[RUN_ID_LEN + 1], cur[RUN_ID_LEN + 1];
	int i, j;

	run_id_new(prev);
	for (i = 0; i < 20000; i++) {
		run_id_new(cur);
		ck_assert_uint_eq(strlen(cur), RUN_ID_LEN);
		for (j = 0; j < RUN_ID_LEN; j++)
			ck_assert_msg(crockford(cur[j]), "bad char in %s", cur);
		ck_assert_msg(strcmp(prev, cur) < 0, "ids not increasing: %s then %s", prev, cur);
		memcpy(prev, cur, sizeof(prev));
	}
}
END_TEST

/* ---- pool helpers ------------------------------------------------------ */

START_TEST(test_latency_ring_newest_first)
{
	struct pool_latency l;
	struct pool_info pi;
	int64_t i;

	memset(&l, 0, sizeof(l));
	memset(&pi, 0, sizeof(pi));
	pool_latency_fill(&l, &pi);
	ck_assert_uint_eq(pi.nstart, 0);
	for (i = 1; i <= 3; i++)
		pool_latency_add(&l, i);
	pool_latency_fill(&l, &pi);
	ck_assert_uint_eq(pi.nstart, 3);
	ck_assert_int_eq(pi.start_ms[0], 3);
	ck_assert_int_eq(pi.start_ms[2], 1);
	for (i = 4; i <= 40; i++)
		pool_latency_add(&l, i);
	pool_latency_fill(&l, &pi);
	ck_assert_uint_eq(pi.nstart, 16);
	ck_assert_int_eq(pi.start_ms[0], 40);
	ck_assert_int_eq(pi.start_ms[15], 25);
}
END_TEST

/* ---- rpc_reader --------------------------------------------------------- */

static void pack_ping(struct buf *b, uint32_t id)
{
	msgpack_packer pk;

	rpc_packer_init(&pk, b);
	rpc_pack_request_head(&pk, id, "ping");
	msgpack_pack_map(&pk, 0);
}

START_TEST(test_reader_byte_by_byte)
{
	struct rpc_limits lim;
	struct rpc_reader r;
	struct rpc_msg m;
	struct buf b;
	char err[256];
	uint32_t id;
	int has, big, got = 0;
	size_t i;

	rpc_limits_default(&lim, 1024);
	rpc_reader_init(&r, &lim);
	buf_init(&b);
	pack_ping(&b, 7);
	pack_ping(&b, 300);
	for (i = 0; i < b.len; i++) {
		rpc_reader_add(&r, b.data + i, 1);
		int rc;
		while ((rc = rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big)) == 1) {
			ck_assert_int_eq(m.type, RPC_REQUEST);
			ck_assert_str_eq(m.method, "ping");
			ck_assert_uint_eq(m.msgid, got == 0 ? 7 : 300);
			got++;
			rpc_msg_free(&m);
		}
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_int_eq(got, 2);
	ck_assert_uint_eq(rpc_reader_unread(&r), 0);
	buf_free(&b);
	rpc_reader_free(&r);
}
END_TEST

START_TEST(test_reader_waits_for_need)
{
	/* A bin header announcing 100 bytes: no decode attempt before they are
	 * there, and `need` stays put while they trickle in. */
	struct rpc_limits lim;
	struct rpc_reader r;
	struct rpc_msg m;
	msgpack_packer pk;
	struct buf b;
	uint8_t payload[100];
	char err[256];
	uint32_t id;
	int has, big;
	size_t need_before;

	memset(payload, 'x', sizeof(payload));
	rpc_limits_default(&lim, 1024);
	rpc_reader_init(&r, &lim);
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_request_head(&pk, 1, "blob");
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "d");
	msgpack_pack_bin(&pk, sizeof(payload));
	msgpack_pack_bin_body(&pk, payload, sizeof(payload));
	rpc_reader_add(&r, b.data, 20);
	ck_assert_int_eq(rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big), 0);
	need_before = r.need;
	ck_assert_uint_ge(need_before, b.len);
	rpc_reader_add(&r, b.data + 20, 10);
	ck_assert_int_eq(rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big), 0);
	ck_assert_uint_eq(r.need, need_before);
	rpc_reader_add(&r, b.data + 30, b.len - 30);
	ck_assert_int_eq(rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big), 1);
	ck_assert_str_eq(m.method, "blob");
	rpc_msg_free(&m);
	buf_free(&b);
	rpc_reader_free(&r);
}
END_TEST

START_TEST(test_reader_limit_keeps_msgid)
{
	/* A request whose bundle is over the message cap: rejected from its
	 * header, with the msgid readable for the error response. */
	struct rpc_limits lim;
	struct rpc_reader r;
	struct rpc_msg m;
	msgpack_packer pk;
	struct buf b;
	char err[256];
	uint32_t id = 0;
	int has = 0, big = 0;

	rpc_limits_default(&lim, 0);
	lim.max_msg = 4096;
	rpc_reader_init(&r, &lim);
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_request_head(&pk, 4242, "run.submit");
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "bundle");
	msgpack_pack_bin(&pk, 1 << 20); /* header only: the bytes never come */
	rpc_reader_add(&r, b.data, b.len);
	ck_assert_int_eq(rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big), -1);
	ck_assert_int_eq(has, 1);
	ck_assert_uint_eq(id, 4242);
	ck_assert_int_eq(big, 1);
	buf_free(&b);
	rpc_reader_free(&r);
}
END_TEST

START_TEST(test_reader_garbage)
{
	struct rpc_limits lim;
	struct rpc_reader r;
	struct rpc_msg m;
	char err[256];
	uint32_t id;
	int has, big;
	const uint8_t bad[] = {0xc1, 0x00};
	const uint8_t notarray[] = {0xa3, 'a', 'b', 'c'};

	rpc_limits_default(&lim, 1024);
	rpc_reader_init(&r, &lim);
	rpc_reader_add(&r, bad, sizeof(bad));
	ck_assert_int_eq(rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big), -1);
	ck_assert_int_eq(has, 0);
	rpc_reader_free(&r);
	rpc_reader_init(&r, &lim);
	rpc_reader_add(&r, notarray, sizeof(notarray));
	ck_assert_int_eq(rpc_reader_next(&r, &m, err, sizeof(err), &id, &has, &big), -1);
	ck_assert_int_eq(big, 0);
	rpc_reader_free(&r);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("queue");

	tcase_add_test(tc, test_queue_fifo_same_priority);
	tcase_add_test(tc, test_queue_priority_first_then_fifo);
	tcase_add_test(tc, test_queue_requeued_keeps_seq);
	tcase_add_test(tc, test_queue_remove_middle);
	tcase_add_test(tc, test_queue_extreme_priorities);
	suite_add_tcase(s, tc);
	tc = tcase_create("runid");
	tcase_add_test(tc, test_runid_encode_known);
	tcase_add_test(tc, test_runid_rnd_next_carries);
	tcase_add_test(tc, test_runid_new_monotonic_unique);
	suite_add_tcase(s, tc);
	tc = tcase_create("pool");
	tcase_add_test(tc, test_latency_ring_newest_first);
	suite_add_tcase(s, tc);
	tc = tcase_create("reader");
	tcase_add_test(tc, test_reader_byte_by_byte);
	tcase_add_test(tc, test_reader_waits_for_need);
	tcase_add_test(tc, test_reader_limit_keeps_msgid);
	tcase_add_test(tc, test_reader_garbage);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sched_suite());
	int failed;

	log_init("check_sched", LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
