/*
 * check_common.c: unit tests for common/: buffers, path and UTF-8 checks,
 * input names, masking, times, hashing, file helpers, logging escapes.
 */
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

START_TEST(test_buf_basic)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	ck_assert_ptr_null(b.data);
	buf_adds(&b, "hello");
	buf_addc(&b, ' ');
	buf_printf(&b, "%s %d", "world", 42);
	ck_assert_uint_eq(b.len, 14);
	ck_assert_str_eq(buf_cstr(&b), "hello world 42");
	buf_consume(&b, 6);
	ck_assert_str_eq(buf_cstr(&b), "world 42");
	buf_consume(&b, 100);
	ck_assert_uint_eq(b.len, 0);
	for (i = 0; i < 100000; i++)
		buf_addc(&b, (char)('a' + i % 26));
	ck_assert_uint_eq(b.len, 100000);
	ck_assert_int_eq(b.data[99999], 'a' + 99999 % 26);
	ck_assert_uint_ge(b.cap, b.len + 1);
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(buf_cstr(&b), "");
	buf_add(&b, "\0x", 2);
	ck_assert_uint_eq(b.len, 2);
	buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_path_is_safe)
{
	static const struct {
		const char *path;
		int safe;
	} t[] = {
	    {"manifest.yaml", 1},
	    {"cfg/step.json", 1},
	    {"a/b/c/d.txt", 1},
	    {".hidden", 1},
	    {"a/.b", 1},
	    {"..a", 1},
	    {"a..", 1},
	    {"a\\..\\b", 1},
	    {"", 0},
	    {"/abs", 0},
	    {"..", 0},
	    {"../x", 0},
	    {"a/../b", 0},
	    {"a/..", 0},
	    {".", 0},
	    {"./a", 0},
	    {"a/./b", 0},
	    {"a//b", 0},
	    {"a/", 0},
	    {"/", 0},
	    {"//a", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(path_is_safe(t[i].path) == t[i].safe, "path_is_safe(\"%s\") != %d", t[i].path, t[i].safe);
	ck_assert_int_eq(path_is_safe(NULL), 0);
}
END_TEST

START_TEST(test_utf8_invalid)
{
	static const struct {
		const char *s;
		int bad_at; /* -1: valid */
	} t[] = {
	    {"", -1},
	    {"plain ascii", -1},
	    {"caf\xc3\xa9", -1},
	    {"\xe2\x82\xac euro", -1},
	    {"\xf0\x9f\x98\x80", -1}, /* U+1F600 */
	    {"\xf4\x8f\xbf\xbf", -1}, /* U+10FFFF */
	    {"\xed\x9f\xbf", -1},     /* U+D7FF */
	    {"ab\xc0\xaf", 2},        /* overlong '/' */
	    {"\xc1\xbf", 0},          /* overlong */
	    {"\xe0\x80\xaf", 0},      /* overlong 3-byte */
	    {"\xf0\x80\x80\xaf", 0},  /* overlong 4-byte */
	    {"x\xed\xa0\x80", 1},     /* surrogate U+D800 */
	    {"\xed\xbf\xbf", 0},      /* surrogate U+DFFF */
	    {"\xf4\x90\x80\x80", 0},  /* U+110000 */
	    {"\xf5\x80\x80\x80", 0},  /* invalid lead */
	    {"\xff", 0},
	    {"abc\x80", 3},        /* stray continuation */
	    {"\xc3", 0},           /* truncated */
	    {"\xe2\x82", 0},       /* truncated */
	    {"ok\xe2\x28\xa1", 2}, /* bad continuation */
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const uint8_t *s = (const uint8_t *)t[i].s;
		const uint8_t *r = utf8_invalid(s, strlen(t[i].s));
		if (t[i].bad_at < 0)
			ck_assert_msg(r == NULL, "case %zu should be valid", i);
		else
			ck_assert_msg(r == s + t[i].bad_at, "case %zu: bad byte at %td, want %d", i,
			              r == NULL ? (ptrdiff_t)-1 : r - s, t[i].bad_at);
	}
	/* an embedded NUL is valid UTF-8 (U+0000) */
	ck_assert_ptr_null(utf8_invalid((const uint8_t *)"a\0b", 3));
}
END_TEST

START_TEST(test_step_input_name)
{
	static const char *const t[][2] = {
	    {"extract-movies", "df_extract_movies"},
	    {"123_records", "df__123_records"},
	    {"simple", "df_simple"},
	    {"a.b c/d", "df_a_b_c_d"},
	    {"Mixed_Case9", "df_Mixed_Case9"},
	    {"caf\xc3\xa9", "df_caf__"},
	    {"", "df_"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *s = step_input_name(t[i][0]);
		ck_assert_str_eq(s, t[i][1]);
		free(s);
	}
}
END_TEST

static void check_mask(const struct mask *m, const char *in, const char *want)
{
	char *out = mask_apply(m, in);

	ck_assert_msg(strcmp(out, want) == 0, "mask_apply(\"%s\") = \"%s\", want \"%s\"", in, out, want);
	free(out);
}

START_TEST(test_mask)
{
	struct mask *m = mask_new();

	check_mask(m, "nothing to hide", "nothing to hide");
	mask_add(m, "ab"); /* too short: ignored */
	mask_add(m, "");
	mask_add(m, NULL);
	ck_assert_uint_eq(mask_count(m), 0);
	mask_add(m, "s3cret");
	mask_add(m, "s3cret-long-token");
	mask_add(m, "s3cret"); /* duplicate */
	mask_add(m, "xyz");
	ck_assert_uint_eq(mask_count(m), 3);
	check_mask(m, "password=s3cret", "password=***");
	check_mask(m, "s3crets3cret", "******");
	check_mask(m, "tok=s3cret-long-token;", "tok=***;"); /* longest first */
	check_mask(m, "xyzs3cret-long-tokenxy", "******xy");
	check_mask(m, "s3cre", "s3cre");
	check_mask(m, "", "");
	check_mask(m, "ab abc", "ab abc");
	ck_assert_int_eq(mask_hit(m, "a s3cret b", 10), 1);
	ck_assert_int_eq(mask_hit(m, "a s3cret b", 7), 0); /* length-bounded */
	ck_assert_int_eq(mask_hit(m, "clean", 5), 0);
	ck_assert_ptr_null(mask_apply(m, NULL));
	mask_free(m);
	mask_free(NULL);
}
END_TEST

START_TEST(test_time_iso8601)
{
	static const int64_t t[] = {1795695884123LL, 0, 1, 999, 1000, 951782400000LL /* 2000-02-29 */, -1};
	char iso[32];
	int64_t back;
	size_t i;

	time_iso8601(1795695884123LL, iso, sizeof(iso));
	ck_assert_str_eq(iso, "2026-11-26T12:24:44.123Z");
	time_iso8601(0, iso, sizeof(iso));
	ck_assert_str_eq(iso, "1970-01-01T00:00:00.000Z");
	time_iso8601(-1, iso, sizeof(iso));
	ck_assert_str_eq(iso, "1969-12-31T23:59:59.999Z");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		time_iso8601(t[i], iso, sizeof(iso));
		ck_assert_int_eq(time_parse_iso8601(iso, &back), 0);
		ck_assert_int_eq(back, t[i]);
	}
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T12:24:44Z", &back), 0);
	ck_assert_int_eq(back, 1795695884000LL);
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T12:24:44.1Z", &back), 0);
	ck_assert_int_eq(back, 1795695884100LL);
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T12:24:44.123456Z", &back), 0);
	ck_assert_int_eq(back, 1795695884123LL);
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T12:24:44.123", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T12:24:44.Z", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T12:24:44.123Zx", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-13-26T12:24:44Z", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-02-30T12:24:44Z", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-11-26T24:00:00Z", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("yesterday", &back), -1);
	ck_assert_int_eq(time_parse_iso8601("", &back), -1);
}
END_TEST

START_TEST(test_clocks)
{
	int64_t a = time_mono_us(), b, now = time_now_ms();

	ck_assert_int_gt(now, 1700000000000LL);
	usleep(2000);
	b = time_mono_us();
	ck_assert_int_ge(b - a, 2000);
}
END_TEST

START_TEST(test_sha256)
{
	char out[65];
	struct sha256_ctx *c;

	sha256_hex("abc", 3, out);
	ck_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, out);
	ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	c = sha256_begin();
	sha256_update(c, "a", 1);
	sha256_update(c, "", 0);
	sha256_update(c, "bc", 2);
	sha256_end(c, out);
	ck_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

static char *mktmpdir(void)
{
	char tmpl[] = "/tmp/check_common.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

START_TEST(test_files)
{
	char *dir = mktmpdir(), *p;
	struct buf b;
	struct stat st;

	xasprintf(&p, "%s/a/b/c/file.txt", dir);
	ck_assert_int_eq(mkdir_parents(p), 0);
	ck_assert_int_eq(mkdir_parents(p), 0); /* idempotent */
	write_file(p, "0123456789", 10);
	buf_init(&b);
	buf_adds(&b, "pre:");
	ck_assert_int_eq(file_read_all(p, 10, &b), 0); /* exactly max is fine */
	ck_assert_uint_eq(b.len, 14);
	ck_assert_str_eq(buf_cstr(&b), "pre:0123456789");
	errno = 0;
	ck_assert_int_eq(file_read_all(p, 9, &b), -1);
	ck_assert_int_eq(errno, EFBIG);
	ck_assert_uint_eq(b.len, 14); /* untouched on failure */
	ck_assert_int_eq(file_read_all("/nonexistent/x", 100, &b), -1);
	ck_assert_int_eq(errno, ENOENT);
	buf_free(&b);
	free(p);
	{
		/* relative to a directory fd; rm -rf follows no symlink */
		char *out = mktmpdir(), *q;
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		ck_assert_int_ge(dfd, 0);
		ck_assert_int_eq(mkdir_parents_at(dfd, "x/y/z.txt"), 0);
		close(dfd);
		xasprintf(&p, "%s/x/y", dir);
		ck_assert_int_eq(stat(p, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		free(p);
		xasprintf(&q, "%s/keep.txt", out);
		write_file(q, "k", 1);
		xasprintf(&p, "%s/x/y/link", dir);
		ck_assert_int_eq(symlink(out, p), 0);
		ck_assert_int_eq(rmtree(p), 0); /* the link, not what it names */
		ck_assert_int_eq(symlink(out, p), 0);
		free(p);
		ck_assert_int_eq(rmtree(dir), 0);
		ck_assert_int_eq(stat(q, &st), 0);
		free(q);
		ck_assert_int_eq(rmtree(out), 0);
		free(out);
	}
	ck_assert_int_eq(stat(dir, &st), -1);
	ck_assert_int_eq(rmtree(dir), 0); /* missing is fine */
	free(dir);
}
END_TEST

START_TEST(test_log_esc_level)
{
	enum log_level l;

	ck_assert_str_eq(log_esc("plain", 100), "plain");
	ck_assert_str_eq(log_esc("a\nb\x1b[31m\xc3\xa9\\", 100), "a\\x0ab\\x1b[31m\\xc3\\xa9\\x5c");
	ck_assert_str_eq(log_esc("abcdef", 3), "abc");
	ck_assert_str_eq(log_esc(NULL, 3), "(null)");
	ck_assert_int_eq(log_level_parse("debug", &l), 0);
	ck_assert_int_eq(l, LOG_LVL_DEBUG);
	ck_assert_int_eq(log_level_parse("WARN", &l), 0);
	ck_assert_int_eq(l, LOG_LVL_WARN);
	ck_assert_int_eq(log_level_parse("loud", &l), -1);
	log_set_level(LOG_LVL_ERROR);
	ck_assert_int_eq(log_get_level(), LOG_LVL_ERROR);
}
END_TEST

/* Run fn with stderr sent to a temp file; returns what was written. */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/check_common_log.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	struct buf b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	buf_init(&b);
	ck_assert_int_eq(file_read_all(path, 1 << 16, &b), 0);
	unlink(path);
	return buf_cstr(&b);
}

static void log_lines(void)
{
	log_info("run=%s started", "r1");
	log_debug("hidden %d", 1); /* below the level */
	errno = ENOENT;
	log_warn("open %s", "x");
	log_warnx("plain");
}

START_TEST(test_log_output)
{
	char *out;

	unsetenv("JOURNAL_STREAM");
	log_init("osirisd", LOG_LVL_INFO);
	out = capture_stderr(log_lines);
	ck_assert_str_eq(out, "osirisd: run=r1 started\nosirisd: open x: No such file or directory\nosirisd: plain\n");
	free(out);
	setenv("JOURNAL_STREAM", "8:1234", 1);
	log_init("osirisd", LOG_LVL_INFO);
	out = capture_stderr(log_lines);
	ck_assert_str_eq(out, "<6>run=r1 started\n<4>open x: No such file or directory\n<4>plain\n");
	free(out);
	log_set_level(LOG_LVL_WARN);
	out = capture_stderr(log_lines);
	ck_assert_str_eq(out, "<4>open x: No such file or directory\n<4>plain\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
	log_init("check_common", LOG_LVL_WARN);
}
END_TEST

START_TEST(test_xmalloc)
{
	char *s = xstrndup("abcdef", 3), *t;

	ck_assert_str_eq(s, "abc");
	ck_assert_int_eq(xasprintf(&t, "%s-%d", s, 7), 5);
	ck_assert_str_eq(t, "abc-7");
	free(s);
	free(t);
	s = xcalloc(4, 4);
	ck_assert_int_eq(s[15], 0);
	s = xreallocarray(s, 8, 4);
	free(s);
}
END_TEST

/* fcopy: a range copied exactly (same filesystem and across to a tmpfs,
 * where copy_file_range gives way to sendfile), a source that ends first
 * is ENODATA, and link_or_copy links on one filesystem, copies across. */
static void fcopy_make(const char *path, size_t len)
{
	FILE *f = fopen(path, "w");
	size_t i;

	ck_assert_ptr_nonnull(f);
	for (i = 0; i < len; i++)
		fputc((int)(i * 7 % 251), f);
	fclose(f);
}

static void fcopy_check_range(const char *src, const char *dst, off_t from, size_t len)
{
	struct buf a, b;

	buf_init(&a);
	buf_init(&b);
	ck_assert_int_eq(file_read_all(src, 1 << 26, &a), 0);
	ck_assert_int_eq(file_read_all(dst, 1 << 26, &b), 0);
	ck_assert_uint_eq(b.len, len);
	ck_assert(memcmp(a.data + from, b.data, len) == 0);
	buf_free(&a);
	buf_free(&b);
}

START_TEST(test_fcopy)
{
	char dir[] = "/tmp/ck-fcopy-XXXXXX", shm[] = "/dev/shm/ck-fcopy-XXXXXX", src[64], dst[96];
	const char *dirs[2] = {dir, shm};
	size_t len = 3 * 1024 * 1024 + 17;
	struct stat st1, st2;
	off_t off;
	int in, out, d, k, rc;
	char via;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	if (mkdtemp(shm) == NULL)
		dirs[1] = NULL; /* no /dev/shm here: the same-filesystem half only */
	snprintf(src, sizeof(src), "%s/src", dir);
	fcopy_make(src, len);
	for (k = 0; k < 2 && dirs[k] != NULL; k++) {
		snprintf(dst, sizeof(dst), "%s/dst", dirs[k]);
		in = open(src, O_RDONLY);
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_ge(in, 0);
		ck_assert_int_ge(out, 0);
		off = 1000;
		ck_assert_int_eq(fcopy_range(in, &off, out, len - 2000, &via), 0);
		ck_assert_int_eq(off, (off_t)(len - 1000));
		close(out);
		fcopy_check_range(src, dst, 1000, len - 2000);
		/* more than the source holds: ENODATA */
		out = open(dst, O_WRONLY | O_TRUNC);
		off = (off_t)len - 10;
		errno = 0;
		ck_assert_int_eq(fcopy_range(in, &off, out, 100, NULL), -1);
		ck_assert_int_eq(errno, ENODATA);
		close(out);
		unlink(dst);
		/* link_or_copy: 1 (a link, same inode) on one filesystem, 0 (a
		 * copy) across */
		ck_assert_int_ge(d = open(dirs[k], O_RDONLY | O_DIRECTORY), 0);
		rc = fcopy_link_or_copy(in, len, d, "dst");
		ck_assert_int_eq(rc, k == 0 ? 1 : 0);
		ck_assert_int_eq(stat(src, &st1), 0);
		ck_assert_int_eq(stat(dst, &st2), 0);
		ck_assert_int_eq(st1.st_ino == st2.st_ino && st1.st_dev == st2.st_dev, k == 0);
		fcopy_check_range(src, dst, 0, len);
		/* an existing name is not replaced */
		ck_assert_int_eq(fcopy_link_or_copy(in, len, d, "dst"), -1);
		ck_assert_int_eq(errno, EEXIST);
		close(d);
		close(in);
		unlink(dst);
	}
	unlink(src);
	rmdir(dir);
	if (dirs[1] != NULL)
		rmdir(shm);
}
END_TEST

static Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_buf_basic);
	tcase_add_test(tc, test_path_is_safe);
	tcase_add_test(tc, test_utf8_invalid);
	tcase_add_test(tc, test_step_input_name);
	tcase_add_test(tc, test_mask);
	tcase_add_test(tc, test_time_iso8601);
	tcase_add_test(tc, test_clocks);
	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_log_esc_level);
	tcase_add_test(tc, test_log_output);
	tcase_add_test(tc, test_xmalloc);
	tcase_add_test(tc, test_fcopy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(common_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
