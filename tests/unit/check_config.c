/*
 * check_config.c: osirisd's configuration: uid-dependent defaults, INI
 * parsing, -o overrides, and that every bad value is reported with
 * file:line and the key's name.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/osirisd.h"

static char tmpdir[64];
static char path[128];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/osirisd.conf", tmpdir);
}

static void teardown(void)
{
	rmtree(tmpdir);
}

static void write_conf(const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
}

START_TEST(test_defaults_user)
{
	struct config c;
	char want[256];
	uid_t uid = geteuid();

	/* Each test runs in its own process (CK_FORK): as root, become nobody. */
	if (geteuid() == 0)
		ck_assert_int_eq(seteuid(65534), 0);
	setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
	setenv("XDG_STATE_HOME", "/home/u/.state", 1);
	config_defaults(&c);
	ck_assert_str_eq(c.socket, "/run/user/4242/osiris/osirisd.sock");
	ck_assert_str_eq(c.state_dir, "/home/u/.state/osiris");
	config_free(&c);
	setenv("XDG_STATE_HOME", "relative/ignored", 1); /* XDG: relative paths are invalid */
	unsetenv("XDG_RUNTIME_DIR");
	setenv("HOME", "/home/u", 1);
	config_defaults(&c);
	snprintf(want, sizeof(want), "/tmp/osiris-%u/osirisd.sock", (unsigned)geteuid());
	ck_assert_str_eq(c.socket, want);
	ck_assert_str_eq(c.state_dir, "/home/u/.local/state/osiris");
	config_free(&c);
	unsetenv("XDG_STATE_HOME");
	if (uid == 0)
		ck_assert_int_eq(seteuid(0), 0); /* so that teardown can clean up */
}
END_TEST

START_TEST(test_defaults_root)
{
	struct config c;

	if (geteuid() != 0)
		return;
	setenv("XDG_RUNTIME_DIR", "/run/user/0", 1); /* ignored for root */
	config_defaults(&c);
	ck_assert_str_eq(c.socket, "/run/osiris/osirisd.sock");
	ck_assert_str_eq(c.state_dir, "/var/lib/osiris");
	config_free(&c);
}
END_TEST

START_TEST(test_defaults_values)
{
	struct config c;

	config_defaults(&c);
	ck_assert_int_eq(c.max_concurrent_runs, 4);
	ck_assert_int_eq(c.max_context_bytes, 67108864);
	ck_assert_int_eq(c.shutdown_grace_s, 30);
	ck_assert_int_eq(c.log_level, LOG_LVL_INFO);
	ck_assert_int_eq(c.cancel_grace_ms, 5000);
	ck_assert_int_eq(c.follow_buffer_bytes, 1048576);
	ck_assert_int_eq(c.event_flush_ms, 5);
	ck_assert_int_eq(c.local_pool_size, 2);
	ck_assert_int_eq(c.local_max_workers, 8);
	ck_assert_ptr_null(c.local_worker);
	ck_assert_str_eq(c.local_isolation, "auto");
	ck_assert_int_eq(c.local_heartbeat_s, 10);
	ck_assert_int_eq(c.e2b_pool_size, 0);
	ck_assert_int_eq(c.e2b_max_sandboxes, 20);
	ck_assert_str_eq(c.e2b_template, "base");
	ck_assert_ptr_null(c.e2b_api_key_file);
	ck_assert_int_eq(c.e2b_sandbox_timeout_s, 300);
	config_free(&c);
}
END_TEST

/* Workspaces in memory by default, with a cap (issue 8). */
START_TEST(test_work_dir_max_bytes)
{
	struct config c;
	char err[256] = "";

	config_defaults(&c);
	ck_assert_ptr_null(c.local_work_dir);
	ck_assert_int_eq(c.local_worker_max_runs, 1);
	ck_assert_int_eq(c.local_work_dir_max_bytes, 32LL * 1024 * 1024);
	ck_assert_int_eq(config_set_override(&c, "local.work_dir_max_bytes=1G", err, sizeof(err)), 0);
	ck_assert_int_eq(c.local_work_dir_max_bytes, 1LL << 30);
	ck_assert_int_eq(config_set_override(&c, "local.work_dir_max_bytes=0", err, sizeof(err)), 0);
	ck_assert_int_eq(c.local_work_dir_max_bytes, 0);
	ck_assert_int_eq(config_set_override(&c, "local.work_dir_max_bytes=-1", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set_override(&c, "local.work_dir_max_bytes=lots", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "work_dir_max_bytes"));
	config_free(&c);
}
END_TEST

START_TEST(test_file_parse)
{
	struct config c;
	char err[512] = "";

	write_conf("# osirisd test config\n"
	           "; ini comment style too\n"
	           "[daemon]\n"
	           "socket = /tmp/x/osirisd.sock\n"
	           "state_dir = \"/tmp/with space/state\"\n"
	           "max_concurrent_runs = 16\n"
	           "max_context_bytes = 128M\n"
	           "shutdown_grace_s = 0\n"
	           "log_level = debug\n"
	           "cancel_grace_ms = 250\n"
	           "follow_buffer_bytes = 64KiB\n"
	           "event_flush_ms = 0\n"
	           "\n"
	           "[local]\n"
	           "pool_size = 0 ; inline comment\n"
	           "max_workers = 3\n"
	           "worker = /opt/osiris/osiris-worker\n"
	           "isolation = none\n"
	           "heartbeat_s = 2\n"
	           "[e2b]\n"
	           "pool_size = 5\n"
	           "max_sandboxes = 100\n"
	           "template = osiris-worker-v1\n"
	           "api_key_file = /etc/osiris/e2b.key\n"
	           "sandbox_timeout_s = 600\n");
	config_defaults(&c);
	ck_assert_msg(config_load_file(&c, path, 1, err, sizeof(err)) == 0, "err: %s", err);
	ck_assert_str_eq(c.socket, "/tmp/x/osirisd.sock");
	ck_assert_str_eq(c.state_dir, "/tmp/with space/state");
	ck_assert_int_eq(c.max_concurrent_runs, 16);
	ck_assert_int_eq(c.max_context_bytes, 128LL << 20);
	ck_assert_int_eq(c.shutdown_grace_s, 0);
	ck_assert_int_eq(c.log_level, LOG_LVL_DEBUG);
	ck_assert_int_eq(c.cancel_grace_ms, 250);
	ck_assert_int_eq(c.follow_buffer_bytes, 65536);
	ck_assert_int_eq(c.event_flush_ms, 0);
	ck_assert_int_eq(c.local_pool_size, 0);
	ck_assert_int_eq(c.local_max_workers, 3);
	ck_assert_str_eq(c.local_worker, "/opt/osiris/osiris-worker");
	ck_assert_str_eq(c.local_isolation, "none");
	ck_assert_int_eq(c.local_heartbeat_s, 2);
	ck_assert_int_eq(c.e2b_pool_size, 5);
	ck_assert_int_eq(c.e2b_max_sandboxes, 100);
	ck_assert_str_eq(c.e2b_template, "osiris-worker-v1");
	ck_assert_str_eq(c.e2b_api_key_file, "/etc/osiris/e2b.key");
	ck_assert_int_eq(c.e2b_sandbox_timeout_s, 600);
	config_free(&c);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config c;
	char err[512] = "";

	config_defaults(&c);
	ck_assert_int_eq(config_load_file(&c, "/nonexistent/osirisd.conf", 0, err, sizeof(err)), 0);
	ck_assert_int_eq(c.max_concurrent_runs, 4);
	ck_assert_int_eq(config_load_file(&c, "/nonexistent/osirisd.conf", 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/osirisd.conf") != NULL && strstr(err, "No such file") != NULL, "%s",
	              err);
	config_free(&c);
}
END_TEST

START_TEST(test_overrides)
{
	struct config c;
	char err[512] = "";

	config_defaults(&c);
	ck_assert_int_eq(config_set_override(&c, "daemon.max_concurrent_runs=9", err, sizeof(err)), 0);
	ck_assert_int_eq(c.max_concurrent_runs, 9);
	ck_assert_int_eq(config_set_override(&c, "local.worker=/a/b=c", err, sizeof(err)), 0);
	ck_assert_str_eq(c.local_worker, "/a/b=c"); /* only the first '=' splits */
	ck_assert_int_eq(config_set_override(&c, "daemon.max_context_bytes=1G", err, sizeof(err)), 0);
	ck_assert_int_eq(c.max_context_bytes, 1LL << 30);
	ck_assert_int_eq(config_set_override(&c, "daemon.log_level=warn", err, sizeof(err)), 0);
	ck_assert_int_eq(c.log_level, LOG_LVL_WARN);
	ck_assert_int_eq(config_set(&c, "e2b", "template", "base2", err, sizeof(err)), 0);
	ck_assert_str_eq(c.e2b_template, "base2");

	ck_assert_int_eq(config_set_override(&c, "max_concurrent_runs=9", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "section.key=value"));
	ck_assert_int_eq(config_set_override(&c, "daemon.=9", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set_override(&c, "daemon.max_concurrent_runs", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set_override(&c, "daemon.nope=1", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "daemon.nope") != NULL, "%s", err);
	ck_assert_int_eq(config_set_override(&c, "daemon.max_concurrent_runs=0", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "daemon.max_concurrent_runs: expected an integer 1..1024, got \"0\"") != NULL, "%s",
	              err);
	ck_assert_int_eq(c.max_concurrent_runs, 9); /* a rejected value changes nothing */
	config_free(&c);
}
END_TEST

/* Every bad value: the message names file:line and section.key. */
static const struct {
	const char *section, *key, *value, *expect;
} bad_values[] = {
    {"daemon", "max_concurrent_runs", "x", "expected an integer 1..1024, got \"x\""},
    {"daemon", "max_concurrent_runs", "2000", "1..1024"},
    {"daemon", "max_concurrent_runs", "4x", "got \"4x\""},
    {"daemon", "max_concurrent_runs", "99999999999999999999", "1..1024"},
    {"daemon", "max_context_bytes", "12Q", "expected a size"},
    {"daemon", "max_context_bytes", "2G", "expected a size"},
    {"daemon", "max_context_bytes", "-1", "expected a size"},
    {"daemon", "shutdown_grace_s", "-1", "0..3600"},
    {"daemon", "log_level", "loud", "expected debug, info, warn or error"},
    {"daemon", "cancel_grace_ms", "1.5", "0..600000"},
    {"daemon", "follow_buffer_bytes", "10", "expected a size"},
    {"daemon", "event_flush_ms", "5000", "0..1000"},
    {"daemon", "socket", "", "must not be empty"},
    {"daemon", "socket",
     "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/s",
     "too long"},
    {"daemon", "state_dir", "\"\"", "must not be empty"},
    {"local", "pool_size", "257", "0..256"},
    {"local", "max_workers", "0", "1..1024"},
    {"local", "isolation", "bwrap", "expected auto or none"},
    {"local", "heartbeat_s", "0", "1..3600"},
    {"local", "worker", "", "must not be empty"},
    {"e2b", "pool_size", "-3", "0..1000"},
    {"e2b", "max_sandboxes", "0", "1..10000"},
    {"e2b", "template", "my template", "whitespace"},
    {"e2b", "sandbox_timeout_s", "4", "5..86400"},
    {"e2b", "api_key_file", "", "must not be empty"},
};

START_TEST(test_bad_values)
{
	struct config c;
	char text[512], err[512], want[256];
	size_t i;

	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		snprintf(text, sizeof(text), "# comment\n[%s]\n\n%s = %s\n", bad_values[i].section, bad_values[i].key,
		         bad_values[i].value);
		write_conf(text);
		config_defaults(&c);
		err[0] = '\0';
		ck_assert_msg(config_load_file(&c, path, 1, err, sizeof(err)) == -1, "accepted %s.%s=%s",
		              bad_values[i].section, bad_values[i].key, bad_values[i].value);
		snprintf(want, sizeof(want), "%s:4: %s.%s: ", path, bad_values[i].section, bad_values[i].key);
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "want prefix \"%s\", got \"%s\"", want, err);
		ck_assert_msg(strstr(err, bad_values[i].expect) != NULL, "want \"%s\" in \"%s\"", bad_values[i].expect,
		              err);
		config_free(&c);
	}
}
END_TEST

START_TEST(test_unknown_key_and_section)
{
	struct config c;
	char err[512] = "", want[256];

	config_defaults(&c);
	write_conf("[daemon]\nmax_concurrent_runs = 2\nmax_runs = 3\n");
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: unknown key daemon.max_runs", path);
	ck_assert_str_eq(err, want);

	write_conf("[daemon]\nlog_level = info\n[demon]\nsocket = /x\n");
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: unknown section [demon]", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got %s", err);

	write_conf("socket = /x\n");
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: key socket outside a section", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got %s", err);

	/* the first error is the one reported */
	write_conf("[daemon]\nmax_concurrent_runs = x\nbogus = 1\n");
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: daemon.max_concurrent_runs: ", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got %s", err);
	config_free(&c);
}
END_TEST

START_TEST(test_syntax_errors)
{
	struct config c;
	char err[512] = "", want[256], text[600];

	config_defaults(&c);
	write_conf("[daemon]\nlog_level = info\nthis line has no equals sign\n");
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: syntax error", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got %s", err);

	write_conf("[daemon\n");
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: syntax error", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got %s", err);

	/* A line longer than inih's buffer is reported, not split into two. */
	memset(text, 0, sizeof(text));
	strcpy(text, "[e2b]\ntemplate = ");
	memset(text + strlen(text), 'a', 400);
	strcat(text, "\n");
	write_conf(text);
	ck_assert_int_eq(config_load_file(&c, path, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: line too long", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got %s", err);
	ck_assert_str_eq(c.e2b_template, "base");
	config_free(&c);
}
END_TEST

START_TEST(test_shipped_conf_parses)
{
	struct config c, d;
	char err[512] = "";
	const char *shipped = "conf/osirisd.conf";

	if (access(shipped, R_OK) != 0)
		shipped = "../../conf/osirisd.conf";
	config_defaults(&c);
	config_defaults(&d);
	ck_assert_msg(config_load_file(&c, shipped, 1, err, sizeof(err)) == 0, "%s", err);
	/* everything in it is commented out at its default */
	ck_assert_int_eq(memcmp(&c.max_concurrent_runs, &d.max_concurrent_runs,
	                        offsetof(struct config, local_worker) - offsetof(struct config, max_concurrent_runs)),
	                 0);
	ck_assert_str_eq(c.socket, d.socket);
	ck_assert_int_eq(c.e2b_sandbox_timeout_s, d.e2b_sandbox_timeout_s);
	config_free(&c);
	config_free(&d);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_user);
	tcase_add_test(tc, test_defaults_root);
	tcase_add_test(tc, test_defaults_values);
	tcase_add_test(tc, test_work_dir_max_bytes);
	tcase_add_test(tc, test_file_parse);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_overrides);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_unknown_key_and_section);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_shipped_conf_parses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	log_init("check_config", LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
