/*
 * check_client.c: the pure parts of osirisctl: argument parsing (-e,
 * --secret, --label, numbers, sizes), msgpack -> JSON, the human line of a
 * run record, the error-code -> exit-code map, and the response loop of
 * session_call against a canned peer on a socketpair.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/osirisctl.h"

/* ---- helpers ---------------------------------------------------------- */

static char *fake_getenv(const char *name)
{
	if (strcmp(name, "FROM_ENV") == 0)
		return "env value";
	if (strcmp(name, "EMPTY") == 0)
		return "";
	return NULL;
}

/* Packs with fn, unpacks into a zone owned by the caller. */
struct mp_fix {
	msgpack_sbuffer sb;
	msgpack_unpacked up;
};

static const msgpack_object *mp_fix_unpack(struct mp_fix *f)
{
	size_t off = 0;

	msgpack_unpacked_init(&f->up);
	ck_assert_int_eq(msgpack_unpack_next(&f->up, f->sb.data, f->sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	return &f->up.data;
}

static void mp_fix_free(struct mp_fix *f)
{
	msgpack_unpacked_destroy(&f->up);
	msgpack_sbuffer_destroy(&f->sb);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static char *to_json(const msgpack_object *o)
{
	json_t *j = json_from_mp(o);
	char *s;

	ck_assert_ptr_nonnull(j);
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* ---- args ------------------------------------------------------------- */

START_TEST(test_args_env)
{
	struct kvlist l = {0};
	char err[256];

	ck_assert_int_eq(args_kv("A=1", 1, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_int_eq(args_kv("B=x=y", 1, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_int_eq(args_kv("C=", 1, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_int_eq(args_kv("FROM_ENV", 1, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_int_eq(args_kv("EMPTY", 1, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_uint_eq(l.n, 5);
	ck_assert_str_eq(kvlist_get(&l, "A"), "1");
	ck_assert_str_eq(kvlist_get(&l, "B"), "x=y");
	ck_assert_str_eq(kvlist_get(&l, "C"), "");
	ck_assert_str_eq(kvlist_get(&l, "FROM_ENV"), "env value");
	ck_assert_str_eq(kvlist_get(&l, "EMPTY"), "");

	/* unset in the environment: an error naming the key, nothing added */
	ck_assert_int_eq(args_kv("UNSET_VAR", 1, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "UNSET_VAR: not set in the environment");
	ck_assert_int_eq(args_kv("=v", 1, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_int_eq(args_kv("1BAD=v", 1, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_int_eq(args_kv("BAD-NAME=v", 1, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_int_eq(args_kv("A=2", 1, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "given twice"));
	ck_assert_uint_eq(l.n, 5);
	ck_assert_str_eq(kvlist_get(&l, "A"), "1");
	kvlist_free(&l);
}
END_TEST

START_TEST(test_args_label)
{
	struct kvlist l = {0};
	char err[256];

	ck_assert_int_eq(args_kv("team=data", 0, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_int_eq(args_kv("app.kubernetes.io/name=x y", 0, fake_getenv, &l, err, sizeof err), 0);
	ck_assert_str_eq(kvlist_get(&l, "app.kubernetes.io/name"), "x y");
	/* a label never reads the environment */
	ck_assert_int_eq(args_kv("FROM_ENV", 0, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "expected KEY=VALUE"));
	ck_assert_int_eq(args_kv("=x", 0, fake_getenv, &l, err, sizeof err), -1);
	ck_assert_uint_eq(l.n, 2);
	kvlist_free(&l);
}
END_TEST

START_TEST(test_args_numbers)
{
	int64_t v = 77;
	size_t sz = 0;

	ck_assert_int_eq(args_int("42", 0, 100, &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(args_int("-5", -10, 10, &v), 0);
	ck_assert_int_eq(v, -5);
	ck_assert_int_eq(args_int("101", 0, 100, &v), -1);
	ck_assert_int_eq(args_int("12x", 0, 100, &v), -1);
	ck_assert_int_eq(args_int("", 0, 100, &v), -1);
	ck_assert_int_eq(args_int("99999999999999999999", INT64_MIN, INT64_MAX, &v), -1);
	ck_assert_int_eq(v, -5);

	ck_assert_int_eq(args_size("1024", &sz), 0);
	ck_assert_uint_eq(sz, 1024);
	ck_assert_int_eq(args_size("64M", &sz), 0);
	ck_assert_uint_eq(sz, (size_t)64 << 20);
	ck_assert_int_eq(args_size("2KiB", &sz), 0);
	ck_assert_uint_eq(sz, 2048);
	ck_assert_int_eq(args_size("1G", &sz), 0);
	ck_assert_uint_eq(sz, (size_t)1 << 30);
	ck_assert_int_eq(args_size("-1", &sz), -1);
	ck_assert_int_eq(args_size("5X", &sz), -1);
	ck_assert_int_eq(args_size("5Mxx", &sz), -1);
	ck_assert_int_eq(args_size("99999999999999999999G", &sz), -1);
}
END_TEST

/* ---- exit codes --------------------------------------------------------- */

START_TEST(test_exit_codes)
{
	ck_assert_int_eq(session_exit_code("invalid_request"), EXIT_USAGE);
	ck_assert_int_eq(session_exit_code("invalid_manifest"), EXIT_USAGE);
	ck_assert_int_eq(session_exit_code("not_found"), EXIT_USAGE);
	ck_assert_int_eq(session_exit_code("too_large"), EXIT_USAGE);
	ck_assert_int_eq(session_exit_code("forbidden"), EXIT_USAGE);
	ck_assert_int_eq(session_exit_code("unsupported_version"), EXIT_PROTOCOL);
	ck_assert_int_eq(session_exit_code("busy"), EXIT_UNREACHABLE);
	ck_assert_int_eq(session_exit_code("internal"), EXIT_RUN_FAILED);
	ck_assert_int_eq(session_exit_code("something_new"), EXIT_RUN_FAILED);
	ck_assert_int_eq(session_exit_code(NULL), EXIT_RUN_FAILED);
	/* every code of the closed set is mapped to a documented exit code */
	for (int e = ERR_INVALID_REQUEST; e <= ERR_INTERNAL; e++) {
		int rc = session_exit_code(rpc_err_name((enum rpc_err)e));

		ck_assert(rc >= 1 && rc <= 4);
	}
}
END_TEST

START_TEST(test_socket_path)
{
	char *def;

	ck_assert_str_eq(session_socket_path("/x/y.sock"), "/x/y.sock");
	setenv("OSIRIS_SOCKET", "/env/osirisd.sock", 1);
	ck_assert_str_eq(session_socket_path(NULL), "/env/osirisd.sock");
	ck_assert_str_eq(session_socket_path("/opt.sock"), "/opt.sock");
	unsetenv("OSIRIS_SOCKET");
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	def = session_socket_default();
	if (geteuid() == 0)
		ck_assert_str_eq(def, "/run/osiris/osirisd.sock");
	else
		ck_assert_str_eq(def, "/run/user/1000/osiris/osirisd.sock");
	free(def);
}
END_TEST

/* ---- msgpack -> JSON ----------------------------------------------------- */

START_TEST(test_json_scalars)
{
	struct mp_fix f;
	msgpack_packer pk;
	char *s;

	msgpack_sbuffer_init(&f.sb);
	msgpack_packer_init(&pk, &f.sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 11);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_int64(&pk, 42);
	msgpack_pack_int64(&pk, -7);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_double(&pk, 2.0); /* a float stays a float */
	pk_str(&pk, "h\xc3\xa9llo");
	msgpack_pack_bin(&pk, 3);
	msgpack_pack_bin_body(&pk, "\x00\xff\x10", 3);
	msgpack_pack_str(&pk, 4);
	msgpack_pack_str_body(&pk, "a\xff" "b\n", 4); /* not UTF-8 */
	msgpack_pack_uint64(&pk, UINT64_C(9223372036854775807));
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "a\0b", 3);
	s = to_json(mp_fix_unpack(&f));
	ck_assert_str_eq(s, "[null,true,42,-7,1.5,2.0,\"h\xc3\xa9llo\",\"AP8Q\",\"a\\\\xffb\\n\","
			    "9223372036854775807,\"a\\u0000b\"]");
	free(s);
	mp_fix_free(&f);
}
END_TEST

START_TEST(test_json_nested)
{
	struct mp_fix f;
	msgpack_packer pk;
	char *s;

	msgpack_sbuffer_init(&f.sb);
	msgpack_packer_init(&pk, &f.sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	pk_str(&pk, "zeta"); /* order kept as the daemon sent it */
	msgpack_pack_map(&pk, 1);
	pk_str(&pk, "steps");
	msgpack_pack_array(&pk, 0);
	pk_str(&pk, "alpha");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int64(&pk, 1);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_int64(&pk, 7); /* non-string key */
	pk_str(&pk, "seven");
	pk_str(&pk, "ext");
	msgpack_pack_ext(&pk, 1, 5);
	msgpack_pack_ext_body(&pk, "a", 1);
	s = to_json(mp_fix_unpack(&f));
	ck_assert_str_eq(s, "{\"zeta\":{\"steps\":[]},\"alpha\":[1,{}],\"7\":\"seven\",\"ext\":{\"ext_type\":5,\"data\":\"YQ==\"}}");
	free(s);
	mp_fix_free(&f);
}
END_TEST

START_TEST(test_base64)
{
	static const struct {
		const char *in, *out;
	} v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"}};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct buf b;

		buf_init(&b);
		json_base64(&b, (const uint8_t *)v[i].in, strlen(v[i].in));
		ck_assert_str_eq(buf_cstr(&b), v[i].out);
		buf_free(&b);
	}
}
END_TEST

/* ---- human output -------------------------------------------------------- */

/* run.event params as the daemon sends them. */
static void pack_event(msgpack_packer *pk, const char *origin, const char *kind, const char *name, const char *step,
    const char *dkey, const char *dval, int64_t metric)
{
	msgpack_pack_map(pk, 8);
	pk_str(pk, "run");
	pk_str(pk, "01JDX3K2M4N5P6Q7R8S9T0V1W2");
	pk_str(pk, "seq");
	msgpack_pack_int64(pk, 12);
	pk_str(pk, "ts");
	pk_str(pk, "2026-11-26T12:24:44.123Z");
	pk_str(pk, "origin");
	pk_str(pk, origin);
	pk_str(pk, "kind");
	pk_str(pk, kind);
	pk_str(pk, "name");
	pk_str(pk, name);
	pk_str(pk, "step_id");
	if (step != NULL)
		pk_str(pk, step);
	else
		msgpack_pack_nil(pk);
	pk_str(pk, "data");
	if (metric >= 0) {
		msgpack_pack_map(pk, 2);
		pk_str(pk, "value");
		msgpack_pack_int64(pk, metric);
		pk_str(pk, "step_id");
		pk_str(pk, step);
	} else if (dkey != NULL) {
		msgpack_pack_map(pk, 1);
		pk_str(pk, dkey);
		pk_str(pk, dval);
	} else
		msgpack_pack_map(pk, 0);
}

static char *record_line(const char *origin, const char *kind, const char *name, const char *step, const char *dkey,
    const char *dval, int64_t metric)
{
	struct mp_fix f;
	msgpack_packer pk;
	struct buf b;
	char *s;

	msgpack_sbuffer_init(&f.sb);
	msgpack_packer_init(&pk, &f.sb, msgpack_sbuffer_write);
	pack_event(&pk, origin, kind, name, step, dkey, dval, metric);
	buf_init(&b);
	out_record(&b, mp_fix_unpack(&f));
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	mp_fix_free(&f);
	return s;
}

START_TEST(test_record_lines)
{
	char *s;

	setenv("TZ", "UTC", 1);
	tzset();
	s = record_line("worker", "event", "step_start", "extract-orders", "driver", "filesystem.csv_extractor", -1);
	ck_assert_str_eq(s, "12:24:44.123 [extract-orders] step_start driver=filesystem.csv_extractor");
	free(s);
	s = record_line("worker", "log", "info", "extract-orders", "message", "read 3 rows from orders.csv", -1);
	ck_assert_str_eq(s, "12:24:44.123 [extract-orders] info: read 3 rows from orders.csv");
	free(s);
	s = record_line("worker", "metric", "rows_read", "extract-orders", NULL, NULL, 3);
	ck_assert_str_eq(s, "12:24:44.123 [extract-orders] metric rows_read=3");
	free(s);
	s = record_line("daemon", "event", "run_queued", NULL, NULL, NULL, -1);
	ck_assert_str_eq(s, "12:24:44.123 osirisd: run_queued");
	free(s);
	/* a value with spaces is quoted; a log line cannot drive the terminal */
	s = record_line("worker", "event", "step_failed", "join", "error", "no such table: df_x", -1);
	ck_assert_str_eq(s, "12:24:44.123 [join] step_failed error=\"no such table: df_x\"");
	free(s);
	s = record_line("worker", "log", "warn", "j", "message", "red\x1b[31m\nnext\xff", -1);
	ck_assert_str_eq(s, "12:24:44.123 [j] warn: red\\x1b[31m\\nnext\\xff");
	free(s);
}
END_TEST

START_TEST(test_times)
{
	int64_t ms = 0;
	char d[32];

	ck_assert_int_eq(out_iso_parse("2026-11-26T12:24:44.123Z", 24, &ms), 0);
	ck_assert_int_eq(ms, INT64_C(1795695884123));
	ck_assert_int_eq(out_iso_parse("2026-11-26T12:24:44Z", 20, &ms), 0);
	ck_assert_int_eq(ms, INT64_C(1795695884000));
	ck_assert_int_eq(out_iso_parse("2026-11-26T12:24:44.5Z", 22, &ms), 0);
	ck_assert_int_eq(ms, INT64_C(1795695884500));
	ck_assert_int_eq(out_iso_parse("2026-11-26 12:24:44", 19, &ms), -1);
	ck_assert_int_eq(out_iso_parse("2026-11-26T12:24:44.123+02:00", 29, &ms), -1);
	ck_assert_int_eq(out_iso_parse("", 0, &ms), -1);

	out_duration(850, d, sizeof d);
	ck_assert_str_eq(d, "850ms");
	out_duration(3240, d, sizeof d);
	ck_assert_str_eq(d, "3.2s");
	out_duration(125000, d, sizeof d);
	ck_assert_str_eq(d, "2m05s");
	out_duration(3720000, d, sizeof d);
	ck_assert_str_eq(d, "1h02m");
	out_duration(-1, d, sizeof d);
	ck_assert_str_eq(d, "-");
}
END_TEST

START_TEST(test_esc)
{
	struct buf b;

	buf_init(&b);
	out_esc(&b, "plain \xc3\xa9t\xc3\xa9", 11);
	ck_assert_str_eq(buf_cstr(&b), "plain \xc3\xa9t\xc3\xa9");
	buf_reset(&b);
	out_esc(&b, "\x1b]0;x\x07 \xc2\x9b" "1", 10); /* OSC title, C1 CSI */
	ck_assert_str_eq(buf_cstr(&b), "\\x1b]0;x\\x07 \\u009b1");
	buf_reset(&b);
	out_esc(&b, "a\xe2\x82", 3); /* truncated sequence */
	ck_assert_str_eq(buf_cstr(&b), "a\\xe2\\x82");
	buf_free(&b);
}
END_TEST

/* ---- session_call against a canned peer -------------------------------------- */

/* The peer reads the request, then writes `reply` bytes (in pieces, to
 * exercise partial reads) and closes. */
static pid_t peer_start(int fd, const struct buf *reply)
{
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char tmp[4096];

		(void)read(fd, tmp, sizeof tmp);
		for (size_t off = 0; off < reply->len; off += 7) {
			size_t n = reply->len - off < 7 ? reply->len - off : 7;

			if (write(fd, reply->data + off, n) != (ssize_t)n)
				_exit(1);
		}
		_exit(0);
	}
	return pid;
}

static void session_fake(struct session *c, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->path = xstrdup("test.sock");
	c->next_id = 5;
	buf_init(&c->in);
	buf_init(&c->out);
	rpc_limits_default(&c->limits, 1 << 20);
}

static int notes_seen;

static int count_cb(const struct rpc_msg *m, void *arg)
{
	(void)arg;
	ck_assert_str_eq(m->method, "run.event");
	notes_seen++;
	return 0;
}

static int call_with_reply(const struct buf *reply, struct rpc_msg *resp)
{
	struct session c;
	int sv[2], rc, st;
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = peer_start(sv[1], reply);
	close(sv[1]);
	session_fake(&c, sv[0]);
	msgpack_pack_map(session_request(&c, "run.follow"), 0);
	rc = session_call(&c, "logs", count_cb, NULL, resp);
	session_close(&c);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return rc;
}

START_TEST(test_session_call)
{
	struct rpc_msg resp;
	msgpack_packer pk;
	struct buf b;
	int64_t last = 0;

	signal(SIGPIPE, SIG_IGN);
	/* two notifications, then the response */
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	for (int i = 0; i < 2; i++) {
		rpc_pack_notify_head(&pk, "run.event");
		msgpack_pack_map(&pk, 1);
		mp_pack_kint(&pk, "seq", i + 1);
	}
	rpc_pack_result_head(&pk, 5);
	msgpack_pack_map(&pk, 1);
	mp_pack_kint(&pk, "last_seq", 2);
	notes_seen = 0;
	ck_assert_int_eq(call_with_reply(&b, &resp), 0);
	ck_assert_int_eq(notes_seen, 2);
	ck_assert_int_eq(mp_get_int(resp.result, "last_seq", &last), 0);
	ck_assert_int_eq(last, 2);
	rpc_msg_free(&resp);

	/* an error response maps to its exit code */
	buf_reset(&b);
	rpc_pack_error(&pk, 5, "not_found", "no run matches 'zz'");
	ck_assert_int_eq(call_with_reply(&b, &resp), EXIT_USAGE);
	buf_reset(&b);
	rpc_pack_error(&pk, 5, "unsupported_version", "no");
	ck_assert_int_eq(call_with_reply(&b, &resp), EXIT_PROTOCOL);

	/* the daemon goes away mid-call: unreachable */
	buf_reset(&b);
	rpc_pack_notify_head(&pk, "run.event");
	msgpack_pack_map(&pk, 0);
	ck_assert_int_eq(call_with_reply(&b, &resp), EXIT_UNREACHABLE);

	/* a response to another request, or bytes that are not msgpack-rpc */
	buf_reset(&b);
	rpc_pack_result_head(&pk, 99);
	msgpack_pack_nil(&pk);
	ck_assert_int_eq(call_with_reply(&b, &resp), EXIT_PROTOCOL);
	buf_reset(&b);
	buf_add(&b, "\xc1\xc1\xc1", 3);
	ck_assert_int_eq(call_with_reply(&b, &resp), EXIT_PROTOCOL);
	buf_free(&b);
}
END_TEST

START_TEST(test_cmd_table)
{
	const char *names[] = {"submit", "logs", "runs", "show", "cancel", "artifacts", "pool", "ping", "version", "help"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct ctl_cmd *c = ctl_cmd_find(names[i]);

		ck_assert_ptr_nonnull(c);
		ck_assert_str_eq(c->name, names[i]);
		ck_assert_ptr_nonnull(c->fn);
	}
	ck_assert_ptr_null(ctl_cmd_find("nope"));
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_args_env);
	tcase_add_test(tc, test_args_label);
	tcase_add_test(tc, test_args_numbers);
	tcase_add_test(tc, test_exit_codes);
	tcase_add_test(tc, test_socket_path);
	tcase_add_test(tc, test_json_scalars);
	tcase_add_test(tc, test_json_nested);
	tcase_add_test(tc, test_base64);
	tcase_add_test(tc, test_record_lines);
	tcase_add_test(tc, test_times);
	tcase_add_test(tc, test_esc);
	tcase_add_test(tc, test_session_call);
	tcase_add_test(tc, test_cmd_table);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
