/*
 * check_csv.c: the RFC 4180 parser and the writer: quoting, escapes,
 * embedded delimiters/newlines, CRLF, NULL vs empty, header-only files,
 * BOM, invalid UTF-8 errors, options, and lossless round trips.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/drivers.h"

/* Parse a literal (copied: the parser unescapes in place). */
static struct table *parse(const char *text, const struct csv_opts *o, char *err, size_t errlen)
{
	struct csv_opts def;
	struct table *t = NULL;
	size_t len = strlen(text);
	char *data = xmalloc(len + 1);

	memcpy(data, text, len + 1);
	if (o == NULL) {
		csv_opts_default(&def);
		o = &def;
	}
	err[0] = '\0';
	if (csv_parse("in.csv", data, len, o, &t, err, errlen) != 0) {
		free(data);
		return NULL;
	}
	table_adopt(t, data);
	return t;
}

static struct table *parse_ok(const char *text)
{
	char err[256];
	struct table *t = parse(text, NULL, err, sizeof(err));

	ck_assert_msg(t != NULL, "parse failed: %s", err);
	return t;
}

/* Cell text ("<NULL>" for NULL). */
static char *cell(const struct table *t, size_t c, size_t r)
{
	static char out[256];
	const struct tval *v = &t->cols[c].v[r];

	if (v->s == NULL)
		return strcpy(out, "<NULL>");
	snprintf(out, sizeof(out), "%.*s", (int)v->len, v->s);
	return out;
}

static char *write_str(const struct table *t, const char *nl, char delim, int header)
{
	struct csv_wopts o = {delim, header, nl};
	char path[] = "/tmp/check_csv.XXXXXX";
	int fd = mkstemp(path);
	struct buf b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(csv_format_fd(fd, t, &o), 0);
	close(fd);
	buf_init(&b);
	ck_assert_int_eq(file_read_all(path, 16 << 20, &b), 0);
	unlink(path);
	return buf_cstr(&b);
}

START_TEST(test_simple)
{
	struct table *t = parse_ok("a,b,c\n1,x,2.5\n3,y,4\n");

	ck_assert_uint_eq(t->ncols, 3);
	ck_assert_uint_eq(t->nrows, 2);
	ck_assert_str_eq(t->cols[0].name, "a");
	ck_assert_str_eq(t->cols[2].name, "c");
	ck_assert_str_eq(cell(t, 1, 1), "y");
	ck_assert_int_eq(t->cols[0].type, COL_INT);
	ck_assert_int_eq(t->cols[1].type, COL_TEXT);
	ck_assert_int_eq(t->cols[2].type, COL_DOUBLE);
	ck_assert_int_eq(t->cols[0].i[1], 3);
	ck_assert(t->cols[2].d[0] == 2.5);
	table_free(t);
}
END_TEST

START_TEST(test_quotes)
{
	struct table *t = parse_ok("q,n\n\"a,b\",1\n\"say \"\"hi\"\"\",2\n\"line1\nline2\",3\n\"\",4\n,5\n");

	ck_assert_uint_eq(t->nrows, 5);
	ck_assert_str_eq(cell(t, 0, 0), "a,b");
	ck_assert_str_eq(cell(t, 0, 1), "say \"hi\"");
	ck_assert_str_eq(cell(t, 0, 2), "line1\nline2");
	ck_assert_str_eq(cell(t, 0, 3), "");       /* quoted empty: empty string */
	ck_assert_str_eq(cell(t, 0, 4), "<NULL>"); /* unquoted empty: NULL */
	ck_assert(!table_is_null(t, 0, 3));
	ck_assert(table_is_null(t, 0, 4));
	ck_assert_int_eq(t->cols[1].type, COL_INT);
	table_free(t);
}
END_TEST

START_TEST(test_crlf_and_empty_fields)
{
	struct table *t = parse_ok("a,b,c\r\n1,,3\r\n,,\r\n\"x\r\ny\",2,\r\n");

	ck_assert_uint_eq(t->nrows, 3);
	ck_assert_str_eq(cell(t, 1, 0), "<NULL>");
	ck_assert_str_eq(cell(t, 2, 0), "3");
	ck_assert_str_eq(cell(t, 0, 1), "<NULL>");
	ck_assert_str_eq(cell(t, 2, 1), "<NULL>");
	ck_assert_str_eq(cell(t, 0, 2), "x\r\ny");
	ck_assert_str_eq(cell(t, 2, 2), "<NULL>");
	ck_assert_str_eq(t->cols[2].name, "c");
	table_free(t);
}
END_TEST

START_TEST(test_no_final_newline_and_cr_only)
{
	struct table *t = parse_ok("a,b\n1,2");

	ck_assert_uint_eq(t->nrows, 1);
	ck_assert_str_eq(cell(t, 1, 0), "2");
	table_free(t);
	t = parse_ok("a,b\r1,2\r3,4\r");
	ck_assert_uint_eq(t->nrows, 2);
	ck_assert_str_eq(cell(t, 0, 1), "3");
	table_free(t);
}
END_TEST

START_TEST(test_header_only_and_empty)
{
	struct table *t = parse_ok("id,name,amount\n");

	ck_assert_uint_eq(t->ncols, 3);
	ck_assert_uint_eq(t->nrows, 0);
	ck_assert_str_eq(t->cols[1].name, "name");
	ck_assert_int_eq(t->cols[0].type, COL_NULL);
	table_free(t);
	t = parse_ok("");
	ck_assert_uint_eq(t->ncols, 0);
	ck_assert_uint_eq(t->nrows, 0);
	table_free(t);
}
END_TEST

START_TEST(test_bom)
{
	struct table *t = parse_ok("\xEF\xBB\xBFid,v\n1,2\n");

	ck_assert_str_eq(t->cols[0].name, "id");
	ck_assert_uint_eq(t->nrows, 1);
	table_free(t);
}
END_TEST

START_TEST(test_invalid_utf8)
{
	char err[256];
	struct table *t = parse("id,name\n1,ok\n2,caf\xe9\n", NULL, err, sizeof(err));

	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, "in.csv:3:") != NULL, "error names file and line: %s", err);
	ck_assert_msg(strstr(err, "UTF-8") != NULL, "error says UTF-8: %s", err);
	ck_assert_msg(strstr(err, "byte offset 18") != NULL, "error names the offset: %s", err);
	/* valid multibyte text passes, truncated sequences at the end do not */
	t = parse("a\nZo\xc3\xab\n", NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(t);
	table_free(t);
	ck_assert_ptr_null(parse("a\nx\xc3", NULL, err, sizeof(err)));
	ck_assert_ptr_null(parse("a\n\xed\xa0\x80\n", NULL, err, sizeof(err))); /* surrogate */
}
END_TEST

START_TEST(test_errors)
{
	char err[256];

	ck_assert_ptr_null(parse("a,b\n\"open,1\n", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "in.csv:2: unterminated") != NULL, "%s", err);
	ck_assert_ptr_null(parse("a,b\n\"x\"y,1\n", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "in.csv:2:") != NULL && strstr(err, "closing quote"), "%s", err);
	ck_assert_ptr_null(parse("a,b\n1,2\n\"multi\nline\",2\n1,2,3\n", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "in.csv:5: expected 2 fields, found 3") != NULL, "%s", err);
}
END_TEST

START_TEST(test_options)
{
	struct csv_opts o;
	char err[256];
	struct table *t;

	csv_opts_default(&o);
	o.delim = ';';
	o.header = 0;
	o.skip_rows = 1;
	o.limit = 2;
	t = parse("junk line\n1;a,b\n2;c\n3;d\n", &o, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(t->ncols, 2);
	ck_assert_uint_eq(t->nrows, 2);
	ck_assert_str_eq(t->cols[0].name, "0");
	ck_assert_str_eq(t->cols[1].name, "1");
	ck_assert_str_eq(cell(t, 1, 0), "a,b");
	ck_assert_str_eq(cell(t, 1, 1), "c");
	table_free(t);
	/* rows past the limit are not even parsed */
	csv_opts_default(&o);
	o.limit = 1;
	t = parse("a,b\n1,2\n\"broken\n", &o, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(t->nrows, 1);
	table_free(t);
	o.limit = 0;
	o.header = 0;
	t = parse("1,2,3\n4,5,6\n", &o, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(t->ncols, 3);
	ck_assert_uint_eq(t->nrows, 0);
	table_free(t);
}
END_TEST

START_TEST(test_blank_lines)
{
	struct table *t = parse_ok("a,b\n1,2\n\n3,4\n");

	ck_assert_uint_eq(t->nrows, 2); /* several columns: a blank line is skipped */
	table_free(t);
	t = parse_ok("a\n1\n\n3\n");
	ck_assert_uint_eq(t->nrows, 3); /* one column: a blank line is a NULL */
	ck_assert_str_eq(cell(t, 0, 1), "<NULL>");
	table_free(t);
}
END_TEST

/* Tricky values survive extract -> write byte for byte, and typing never
 * changes their text. */
START_TEST(test_roundtrip_lossless)
{
	static const char *in = "v,w\n"
	                        "007,1\n"
	                        "1.0,2\n"
	                        "1e5,3\n"
	                        " 1,4\n"
	                        "\"\",5\n"
	                        ",6\n"
	                        "-0,7\n"
	                        "NaN,8\n"
	                        "true,9\n"
	                        "+1,10\n"
	                        "1.50,11\n"
	                        "\"a,b\",12\n"
	                        "\"q\"\"uote\",13\n"
	                        "\"multi\nline\",14\n"
	                        "Zo\xc3\xab,15\n";
	struct table *t = parse_ok(in);
	char *out;

	ck_assert_int_eq(t->cols[0].type, COL_TEXT);
	ck_assert_int_eq(t->cols[1].type, COL_INT);
	out = write_str(t, "\n", ',', 1);
	ck_assert_str_eq(out, in);
	free(out);
	table_free(t);
}
END_TEST

START_TEST(test_roundtrip_numeric_columns)
{
	static const char *in = "i,d,b,n\n-5,0.001,true,\n9223372036854775807,-2.25,false,\n0,3,true,\n";
	struct table *t = parse_ok(in);
	char *out;

	ck_assert_int_eq(t->cols[0].type, COL_INT);
	ck_assert_int_eq(t->cols[1].type, COL_DOUBLE);
	ck_assert_int_eq(t->cols[2].type, COL_BOOL);
	ck_assert_int_eq(t->cols[3].type, COL_NULL);
	ck_assert(t->cols[0].i[1] == INT64_MAX);
	ck_assert(t->cols[1].d[1] == -2.25);
	ck_assert_int_eq(t->cols[2].i[1], 0);
	out = write_str(t, "\n", ',', 1);
	ck_assert_str_eq(out, in);
	free(out);
	table_free(t);
}
END_TEST

START_TEST(test_writer_options)
{
	struct table *t = parse_ok("a,b\n1,x;y\n2,\n");
	char *out = write_str(t, "\r\n", ';', 0);

	ck_assert_str_eq(out, "1;\"x;y\"\r\n2;\r\n");
	free(out);
	out = write_str(t, "\r", ',', 1);
	ck_assert_str_eq(out, "a,b\r1,x;y\r2,\r");
	free(out);
	table_free(t);
}
END_TEST

/* A field longer than the writer's buffer goes through whole. */
START_TEST(test_writer_big_field)
{
	size_t n = 3 * 1024 * 1024, i;
	char *in = xmalloc(n + 16), *out;
	struct table *t;

	memcpy(in, "x\n\"", 3);
	for (i = 0; i < n; i++)
		in[3 + i] = (i % 1000 == 999) ? ',' : 'a';
	memcpy(in + 3 + n, "\"\n", 3);
	t = parse_ok(in);
	ck_assert_uint_eq(t->cols[0].v[0].len, n);
	out = write_str(t, "\n", ',', 1);
	ck_assert_str_eq(out, in);
	free(out);
	free(in);
	table_free(t);
}
END_TEST

static Suite *csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_simple);
	tcase_add_test(tc, test_quotes);
	tcase_add_test(tc, test_crlf_and_empty_fields);
	tcase_add_test(tc, test_no_final_newline_and_cr_only);
	tcase_add_test(tc, test_header_only_and_empty);
	tcase_add_test(tc, test_bom);
	tcase_add_test(tc, test_invalid_utf8);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_options);
	tcase_add_test(tc, test_blank_lines);
	tcase_add_test(tc, test_roundtrip_lossless);
	tcase_add_test(tc, test_roundtrip_numeric_columns);
	tcase_add_test(tc, test_writer_options);
	tcase_add_test(tc, test_writer_big_field);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
