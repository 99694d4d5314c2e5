/*
 * check_sandbox.c: the view a local worker gets under bubblewrap
 * (daemon/sandbox.c): what is bound, in which order, what is not there,
 * the per-worker argv and the pid bwrap reports on its info fd.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/osirisd.h"

#define FAKE_BWRAP "/usr/bin/bwrap"

/* Index of the option opt whose next argument is a, or -1. */
static long find_opt(const struct sandbox *sb, const char *opt, const char *a)
{
	size_t i;

	for (i = 0; i + 1 < sb->nargs; i++) {
		if (strcmp(sb->args[i], opt) == 0 && strcmp(sb->args[i + 1], a) == 0)
			return (long)i;
	}
	return -1;
}

/* Is anything at or under path bound (any bind option's source)? */
static int binds_under(const struct sandbox *sb, const char *path)
{
	size_t i, n = strlen(path);

	for (i = 0; i + 1 < sb->nargs; i++) {
		if (strstr(sb->args[i], "bind") == NULL)
			continue;
		if (strncmp(sb->args[i + 1], path, n) == 0 && (sb->args[i + 1][n] == '/' || sb->args[i + 1][n] == '\0'))
			return 1;
	}
	return 0;
}

/* A worker file under a fresh temp dir in /tmp (where a clone may live). */
static char *make_tmp_worker(char *dir, size_t dirlen)
{
	char *path;
	int fd;

	snprintf(dir, dirlen, "/tmp/check_sandbox.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	xasprintf(&path, "%s/osiris-worker", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	ck_assert_int_ge(fd, 0);
	close(fd);
	return path;
}

START_TEST(test_view_system_trees_readonly_nothing_private)
{
	struct sandbox sb;
	struct stat st;

	sandbox_init(&sb, FAKE_BWRAP, "/usr/bin/true");
	ck_assert_str_eq(sb.args[0], FAKE_BWRAP);
	ck_assert_int_ge(find_opt(&sb, "--ro-bind", "/usr"), 0);
	ck_assert_int_lt(find_opt(&sb, "--bind", "/usr"), 0);
	/* Never the whole root, never the places that hold other people's data. */
	ck_assert_int_lt(find_opt(&sb, "--ro-bind", "/"), 0);
	ck_assert(!binds_under(&sb, "/home"));
	ck_assert(!binds_under(&sb, "/root"));
	ck_assert(!binds_under(&sb, "/var"));
	ck_assert(!binds_under(&sb, "/run"));
	ck_assert(!binds_under(&sb, "/opt"));
	ck_assert(!binds_under(&sb, "/srv"));
	ck_assert(!binds_under(&sb, "/tmp"));
	ck_assert_int_ge(find_opt(&sb, "--tmpfs", "/tmp"), 0);
	ck_assert_int_ge(find_opt(&sb, "--dev", "/dev"), 0);
	ck_assert_int_ge(find_opt(&sb, "--proc", "/proc"), 0);
	ck_assert_int_ge(find_opt(&sb, "--ro-bind-try", "/etc/ld.so.cache"), 0);
	ck_assert(!binds_under(&sb, "/etc/shadow"));
	ck_assert(!binds_under(&sb, "/etc/osiris"));
	/* A merged-/usr /lib is recreated as the link it is. */
	if (lstat("/lib", &st) == 0 && S_ISLNK(st.st_mode))
		ck_assert_int_lt(find_opt(&sb, "--ro-bind", "/lib"), 0);
	ck_assert(sandbox_covers(&sb, "/usr/lib/x86_64-linux-gnu/libc.so.6"));
	ck_assert(!sandbox_covers(&sb, "/usrx/lib/libc.so.6"));
	ck_assert(!sandbox_covers(&sb, "/home/u/lib/libfoo.so"));
	sandbox_free(&sb);
}
END_TEST

/* The bug this view fixes: a worker under /tmp hidden by the tmpfs. */
START_TEST(test_view_worker_under_tmp_bound_after_tmpfs)
{
	char dir[64], *worker = NULL;
	struct sandbox sb;
	long tmpfs, bind;

	worker = make_tmp_worker(dir, sizeof(dir));
	sandbox_init(&sb, FAKE_BWRAP, worker);
	tmpfs = find_opt(&sb, "--tmpfs", "/tmp");
	bind = find_opt(&sb, "--ro-bind", worker);
	ck_assert_int_ge(tmpfs, 0);
	ck_assert_int_gt(bind, tmpfs);
	ck_assert_str_eq(sb.args[bind + 2], worker);
	/* Only the binary, not its directory. */
	ck_assert_int_lt(find_opt(&sb, "--ro-bind", dir), 0);
	sandbox_free(&sb);
	unlink(worker);
	rmdir(dir);
	free(worker);
}
END_TEST

START_TEST(test_view_symlinked_worker_resolved)
{
	char dir[64], *worker, *link;
	struct sandbox sb;

	worker = make_tmp_worker(dir, sizeof(dir));
	xasprintf(&link, "%s/worker-link", dir);
	ck_assert_int_eq(symlink(worker, link), 0);
	sandbox_init(&sb, FAKE_BWRAP, link);
	ck_assert_str_eq(sb.worker, worker);
	ck_assert_int_ge(find_opt(&sb, "--ro-bind", worker), 0);
	sandbox_free(&sb);
	unlink(link);
	unlink(worker);
	rmdir(dir);
	free(link);
	free(worker);
}
END_TEST

START_TEST(test_argv_workspace_info_worker)
{
	const char *argv[128];
	struct sandbox sb;
	size_t n, i, dd;

	sandbox_init(&sb, FAKE_BWRAP, "/usr/bin/true");
	n = sandbox_argv(&sb, "/var/lib/osiris/work/wk-7", 1, argv, 128);
	ck_assert_ptr_null(argv[n]);
	ck_assert_str_eq(argv[0], FAKE_BWRAP);
	for (dd = 0; dd < n && strcmp(argv[dd], "--") != 0; dd++)
		;
	ck_assert_uint_lt(dd, n);
	ck_assert_str_eq(argv[dd + 1], "/usr/bin/true");
	ck_assert_str_eq(argv[dd + 2], "--workdir");
	ck_assert_str_eq(argv[dd + 3], "/var/lib/osiris/work/wk-7");
	ck_assert_uint_eq(n, dd + 4);
	/* Its own workspace read-write, and no other directory of the state dir. */
	for (i = 0; i + 2 < dd; i++) {
		if (strcmp(argv[i], "--bind") == 0) {
			ck_assert_str_eq(argv[i + 1], "/var/lib/osiris/work/wk-7");
			ck_assert_str_eq(argv[i + 2], "/var/lib/osiris/work/wk-7");
		}
	}
	ck_assert_str_eq(argv[dd - 2], "--info-fd");
	ck_assert_str_eq(argv[dd - 1], SANDBOX_INFO_FD_STR);
	n = sandbox_argv(&sb, "/w", 0, argv, 128);
	for (i = 0; i < n; i++)
		ck_assert_str_ne(argv[i], "--info-fd");
	sandbox_free(&sb);
}
END_TEST

/* The zygote's sandbox: both directories bound read-write, the worker's
 * own arguments after it, nothing else bound read-write. */
START_TEST(test_argv_worker_dirs_and_args)
{
	const char *argv[128], *dirs[] = {"/dev/shm/o/wk-3", "/var/lib/osiris/work/wk-3", NULL};
	const char *wargs[] = {"--workdir", dirs[0], "--spill-dir", dirs[1], "--zygote", NULL};
	struct sandbox sb;
	size_t n, i, dd, binds = 0;

	sandbox_init(&sb, FAKE_BWRAP, "/usr/bin/true");
	n = sandbox_argv_worker(&sb, dirs, 1, wargs, argv, 128);
	ck_assert_ptr_null(argv[n]);
	for (dd = 0; dd < n && strcmp(argv[dd], "--") != 0; dd++)
		;
	ck_assert_uint_eq(n, dd + 2 + 5);
	ck_assert_str_eq(argv[dd + 1], "/usr/bin/true");
	for (i = 0; i < 5; i++)
		ck_assert_str_eq(argv[dd + 2 + i], wargs[i]);
	for (i = 0; i + 2 < dd; i++) {
		if (strcmp(argv[i], "--bind") == 0) {
			ck_assert_str_eq(argv[i + 1], dirs[binds]);
			ck_assert_str_eq(argv[i + 2], dirs[binds]);
			binds++;
		}
	}
	ck_assert_uint_eq(binds, 2);
	ck_assert_str_eq(argv[dd - 2], "--info-fd");
	sandbox_free(&sb);
}
END_TEST

START_TEST(test_add_file_and_maps)
{
	struct sandbox sb;
	size_t before, i;

	sandbox_init(&sb, FAKE_BWRAP, "/usr/bin/true");
	before = sb.nargs;
	sandbox_add_file(&sb, "/usr/lib/x86_64-linux-gnu/libc.so.6"); /* covered */
	sandbox_add_file(&sb, "relative/lib.so");                     /* not a path */
	ck_assert_uint_eq(sb.nargs, before);
	sandbox_add_file(&sb, "/home/u/lib/libfoo.so");
	ck_assert_uint_eq(sb.nextra, 1);
	ck_assert_int_ge(find_opt(&sb, "--ro-bind", "/home/u/lib/libfoo.so"), 0);
	sandbox_add_file(&sb, "/home/u/lib/libfoo.so"); /* once */
	ck_assert_uint_eq(sb.nextra, 1);
	/* This process maps its own binary (under the build tree) and libraries
	 * under /usr: only what is outside the view is added. */
	ck_assert_int_eq(sandbox_add_maps(&sb, getpid()), 0);
	for (i = 0; i < sb.nextra; i++) {
		ck_assert_msg(strncmp(sb.extra[i], "/usr/", 5) != 0, "%s is under /usr", sb.extra[i]);
		ck_assert_msg(sb.extra[i][0] == '/', "%s", sb.extra[i]);
	}
	sandbox_free(&sb);
}
END_TEST

START_TEST(test_info_pid)
{
	static const char info[] = "{\n    \"child-pid\": 14678,\n    \"cgroup-namespace\": 4026532187\n}\n";

	ck_assert_int_eq(sandbox_info_pid(info, strlen(info)), 14678);
	ck_assert_int_eq(sandbox_info_pid("{\"child-pid\":7}", 15), 7);
	ck_assert_int_eq(sandbox_info_pid("{}", 2), 0);
	ck_assert_int_eq(sandbox_info_pid("{\"child-pid\": ", 14), 0);
	ck_assert_int_eq(sandbox_info_pid("{\"child-pid\": 99999999999999999999}", 36), 0);
}
END_TEST

static Suite *sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc = tcase_create("view");

	tcase_add_test(tc, test_view_system_trees_readonly_nothing_private);
	tcase_add_test(tc, test_view_worker_under_tmp_bound_after_tmpfs);
	tcase_add_test(tc, test_view_symlinked_worker_resolved);
	tcase_add_test(tc, test_argv_workspace_info_worker);
	tcase_add_test(tc, test_argv_worker_dirs_and_args);
	tcase_add_test(tc, test_add_file_and_maps);
	tcase_add_test(tc, test_info_pid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sandbox_suite());
	int failed;

	log_init("check_sandbox", LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
