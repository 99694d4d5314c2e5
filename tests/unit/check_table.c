/*
 * check_table.c: the table type: canonical renderings and the lossless type
 * inference built on them, NULL bitmaps, owned text, adopted blocks.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/drivers.h"

#define S(x) (x), strlen(x)

START_TEST(test_canon_int)
{
	int64_t v;

	ck_assert(canon_int(S("0"), &v) && v == 0);
	ck_assert(canon_int(S("42"), &v) && v == 42);
	ck_assert(canon_int(S("-17"), &v) && v == -17);
	ck_assert(canon_int(S("9223372036854775807"), &v) && v == INT64_MAX);
	ck_assert(canon_int(S("-9223372036854775808"), &v) && v == INT64_MIN);
	ck_assert(!canon_int(S("9223372036854775808"), &v));
	ck_assert(!canon_int(S("007"), &v));
	ck_assert(!canon_int(S("-0"), &v));
	ck_assert(!canon_int(S("+1"), &v));
	ck_assert(!canon_int(S(" 1"), &v));
	ck_assert(!canon_int(S("1 "), &v));
	ck_assert(!canon_int(S(""), &v));
	ck_assert(!canon_int(S("-"), &v));
	ck_assert(!canon_int(S("1e3"), &v));
}
END_TEST

START_TEST(test_canon_double)
{
	double d;

	ck_assert(canon_double(S("1.5"), &d) && d == 1.5);
	ck_assert(canon_double(S("-0.25"), &d) && d == -0.25);
	ck_assert(canon_double(S("0.1"), &d) && d == 0.1);
	ck_assert(canon_double(S("0.001"), &d));
	ck_assert(canon_double(S("3"), &d) && d == 3);
	ck_assert(canon_double(S("123456789012.5"), &d));
	ck_assert(canon_double(S("1e+20"), &d) && d == 1e20); /* %g's own form */
	ck_assert(canon_double(S("1e-05"), &d));
	ck_assert(!canon_double(S("0.00001"), &d)); /* renders as 1e-05 */
	ck_assert(!canon_double(S("1.50"), &d));
	ck_assert(!canon_double(S("1.0"), &d));
	ck_assert(!canon_double(S("1e3"), &d));
	ck_assert(!canon_double(S("1."), &d));
	ck_assert(!canon_double(S(".5"), &d));
	ck_assert(!canon_double(S("-.5"), &d));
	ck_assert(!canon_double(S("-0"), &d));
	ck_assert(!canon_double(S("-0.0"), &d));
	ck_assert(!canon_double(S("NaN"), &d));
	ck_assert(!canon_double(S("inf"), &d));
	ck_assert(!canon_double(S("0x10"), &d));
	ck_assert(!canon_double(S("1000000000000000000000"), &d));
	ck_assert(!canon_double(S("0.1000000000000000055511151231257827"), &d));
}
END_TEST

/* Whatever canon_fmt_* renders, canon_* accepts and reads back exactly. */
START_TEST(test_canon_fmt_roundtrip)
{
	static const double ds[] = {
	    0, 1, -1, 0.1, 1.0 / 3, 2.5e-7, 1e21, -123.456, 6.02214076e23, 1e-300, 4503599627370497.0};
	static const int64_t is[] = {0, 1, -1, 10, INT64_MAX, INT64_MIN, 1234567890123};
	char buf[32];
	size_t i, n;
	double d;
	int64_t v;

	for (i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
		n = canon_fmt_double(ds[i], buf);
		ck_assert_msg(canon_double(buf, n, &d) && d == ds[i], "double %.17g rendered %s", ds[i], buf);
	}
	for (i = 0; i < sizeof(is) / sizeof(is[0]); i++) {
		n = canon_fmt_int(is[i], buf);
		ck_assert_msg(canon_int(buf, n, &v) && v == is[i], "int rendered %s", buf);
	}
	n = canon_fmt_double(NAN, buf);
	ck_assert_str_eq(buf, "NaN");
	ck_assert(!canon_double(buf, n, &d));
}
END_TEST

START_TEST(test_canon_bool)
{
	int b;

	ck_assert(canon_bool(S("true"), &b) && b == 1);
	ck_assert(canon_bool(S("false"), &b) && b == 0);
	ck_assert(!canon_bool(S("True"), &b));
	ck_assert(!canon_bool(S("1"), &b));
}
END_TEST

static struct table *make(const char *const *vals, size_t n)
{
	struct table *t = table_new(1);
	size_t i;

	table_set_name(t, 0, "c", 1);
	for (i = 0; i < n; i++)
		table_push(t, 0, vals[i] ? table_strdup(t, vals[i], strlen(vals[i])) : NULL,
		           vals[i] ? strlen(vals[i]) : 0);
	table_finish(t);
	return t;
}

START_TEST(test_infer)
{
	static const char *ints[] = {"1", NULL, "-3"}, *dbls[] = {"1", "2.5", NULL}, *bools[] = {"true", NULL, "false"},
	                  *texts[] = {"1", "007"}, *nulls[] = {NULL, NULL}, *big[] = {"9007199254740993", "0.5"},
	                  *empty[] = {"1", ""};
	struct table *t;

	t = make(ints, 3);
	ck_assert_int_eq(t->cols[0].type, COL_INT);
	ck_assert_int_eq(t->cols[0].i[2], -3);
	ck_assert(table_is_null(t, 0, 1));
	ck_assert(!table_is_null(t, 0, 0));
	table_free(t);
	t = make(dbls, 3);
	ck_assert_int_eq(t->cols[0].type, COL_DOUBLE);
	ck_assert(t->cols[0].d[0] == 1.0 && t->cols[0].d[1] == 2.5);
	table_free(t);
	t = make(bools, 3);
	ck_assert_int_eq(t->cols[0].type, COL_BOOL);
	ck_assert_int_eq(t->cols[0].i[0], 1);
	table_free(t);
	t = make(texts, 2);
	ck_assert_int_eq(t->cols[0].type, COL_TEXT);
	table_free(t);
	t = make(nulls, 2);
	ck_assert_int_eq(t->cols[0].type, COL_NULL);
	ck_assert_uint_eq(t->nrows, 2);
	table_free(t);
	/* an int that a double cannot hold exactly keeps a mixed column text */
	t = make(big, 2);
	ck_assert_int_eq(t->cols[0].type, COL_TEXT);
	table_free(t);
	/* the empty string (quoted "") is text, not a number */
	t = make(empty, 2);
	ck_assert_int_eq(t->cols[0].type, COL_TEXT);
	table_free(t);
}
END_TEST

START_TEST(test_many_rows_and_slabs)
{
	struct table *t = table_new(2);
	char num[32];
	size_t i, n, text = 0, floor;

	table_set_name(t, 0, "id", 2);
	table_set_name(t, 1, "txt", 3);
	for (i = 0; i < 100000; i++) {
		n = (size_t)snprintf(num, sizeof(num), "%zu", i);
		table_push(t, 0, table_strdup(t, num, n), n);
		table_push(t, 1, i % 7 == 0 ? NULL : table_strdup(t, "x", 1), 1);
		text += n + (i % 7 == 0 ? 0 : 1);
	}
	table_finish(t);
	ck_assert_uint_eq(t->nrows, 100000);
	/* what it holds: 2 x 131072 value slices (doubled from 1024), the int
	 * column's typed array, the text; slabs waste less than one each */
	floor = 2 * 131072 * sizeof(struct tval) + 100000 * sizeof(int64_t) + text;
	ck_assert_uint_ge(table_mem_bytes(t), floor);
	ck_assert_uint_le(table_mem_bytes(t), floor + 2 * 2048 * 8 + 4 * 256 * 1024 + 4096);
	ck_assert_int_eq(t->cols[0].type, COL_INT);
	ck_assert_int_eq(t->cols[0].i[99999], 99999);
	ck_assert(table_is_null(t, 1, 7 * 1000));
	ck_assert(!table_is_null(t, 1, 7 * 1000 + 1));
	ck_assert_str_eq(col_type_name(t->cols[1].type), "text");
	table_adopt(t, xmalloc(10)); /* freed with the table (ASan checks) */
	table_free(t);
}
END_TEST

static Suite *table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_canon_int);
	tcase_add_test(tc, test_canon_double);
	tcase_add_test(tc, test_canon_fmt_roundtrip);
	tcase_add_test(tc, test_canon_bool);
	tcase_add_test(tc, test_infer);
	tcase_add_test(tc, test_many_rows_and_slabs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(table_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
