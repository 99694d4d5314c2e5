/*
 * check_client.c: the pure parts of osirisctl: argument parsing (-e,
 * --secret, --label, numbers, sizes), msgpack -> JSON, the human line of a
 * run record, the error-code -> exit-code map, the response loop of
 * session_call against a canned peer on a socketpair, and osirisfmt.c (one
 * run record -> one events.jsonl / metrics.jsonl / osiris.log line in
 * Osiris's shape, the run -> status.json, artifact paths).
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

	ck_assert_int_eq(args_duration("90", &v), 0);
	ck_assert_int_eq(v, 90);
	ck_assert_int_eq(args_duration("45s", &v), 0);
	ck_assert_int_eq(v, 45);
	ck_assert_int_eq(args_duration("15m", &v), 0);
	ck_assert_int_eq(v, 900);
	ck_assert_int_eq(args_duration("12h", &v), 0);
	ck_assert_int_eq(v, 43200);
	ck_assert_int_eq(args_duration("30d", &v), 0);
	ck_assert_int_eq(v, 30 * 86400);
	ck_assert_int_eq(args_duration("2w", &v), 0);
	ck_assert_int_eq(v, 14 * 86400);
	ck_assert_int_eq(args_duration("3x", &v), -1);
	ck_assert_int_eq(args_duration("3dd", &v), -1);
	ck_assert_int_eq(args_duration("-1d", &v), -1);
	ck_assert_int_eq(args_duration("", &v), -1);
	ck_assert_int_eq(args_duration("9999999999999999w", &v), -1);
	ck_assert_int_eq(v, 14 * 86400);
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
	msgpack_pack_str_body(&pk,
	                      "a\xff"
	                      "b\n",
	                      4); /* not UTF-8 */
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
	ck_assert_str_eq(
	    s, "{\"zeta\":{\"steps\":[]},\"alpha\":[1,{}],\"7\":\"seven\",\"ext\":{\"ext_type\":5,\"data\":\"YQ==\"}}");
	free(s);
	mp_fix_free(&f);
}
END_TEST

START_TEST(test_base64)
{
	static const struct {
		const char *in, *out;
	} v[] = {{"", ""},
	         {"f", "Zg=="},
	         {"fo", "Zm8="},
	         {"foo", "Zm9v"},
	         {"foob", "Zm9vYg=="},
	         {"fooba", "Zm9vYmE="},
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

/* run.event params as the daemon sends them, up to "data": the caller
 * packs ndata pairs. */
static void pack_event_head(msgpack_packer *pk, const char *origin, const char *kind, const char *name,
                            const char *step, uint32_t ndata)
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
	msgpack_pack_map(pk, ndata);
}

static void pack_event(msgpack_packer *pk, const char *origin, const char *kind, const char *name, const char *step,
                       const char *dkey, const char *dval, int64_t metric)
{
	pack_event_head(pk, origin, kind, name, step, metric >= 0 ? 2 : dkey != NULL);
	if (metric >= 0) {
		pk_str(pk, "value");
		msgpack_pack_int64(pk, metric);
		pk_str(pk, "step_id");
		pk_str(pk, step);
	} else if (dkey != NULL) {
		pk_str(pk, dkey);
		pk_str(pk, dval);
	}
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
	out_esc(&b,
	        "\x1b]0;x\x07 \xc2\x9b"
	        "1",
	        10); /* OSC title, C1 CSI */
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
	const char *names[] = {"submit", "logs",  "runs", "show",    "cancel", "artifacts",
	                       "pool",   "prune", "ping", "version", "help"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct ctl_cmd *c = ctl_cmd_find(names[i]);

		ck_assert_ptr_nonnull(c);
		ck_assert_str_eq(c->name, names[i]);
		ck_assert_ptr_nonnull(c->fn);
	}
	ck_assert_ptr_null(ctl_cmd_find("nope"));
}
END_TEST

/* ---- the Osiris run directory (osirisfmt.c) -------------------------------- */

/* pack_event_head's run and time */
#define RID "01JDX3K2M4N5P6Q7R8S9T0V1W2"
#define TS_OSIRIS "2026-11-26T12:24:44.123000+00:00"
#define TS_MS INT64_C(1795695884123)

static const struct osirisfmt_run run = {.id = RID, .started_ms = TS_MS - 2500};

/* One record: pack_event_head, the data pairs the test packs, unpacked. */
struct rec {
	struct mp_fix f;
	msgpack_packer pk;
};

static msgpack_packer *rec_begin(struct rec *r, const char *origin, const char *kind, const char *name,
                                 const char *step, uint32_t ndata)
{
	msgpack_sbuffer_init(&r->f.sb);
	msgpack_packer_init(&r->pk, &r->f.sb, msgpack_sbuffer_write);
	pack_event_head(&r->pk, origin, kind, name, step, ndata);
	return &r->pk;
}

static const msgpack_object *rec_end(struct rec *r)
{
	return mp_fix_unpack(&r->f);
}

static void rec_free(struct rec *r)
{
	mp_fix_free(&r->f);
}

static void kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	pk_str(pk, k);
	pk_str(pk, v);
}

static void kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	pk_str(pk, k);
	msgpack_pack_int64(pk, v);
}

/* The line osirisfmt writes for j (consumed), its newline checked and cut. */
static char *line_of(json_t *j)
{
	struct buf b;
	char *s;

	ck_assert_ptr_nonnull(j);
	buf_init(&b);
	ck_assert_int_eq(osirisfmt_line(j, &b), 0);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_int_eq(b.data[b.len - 1], '\n');
	s = xstrndup((char *)b.data, b.len - 1);
	buf_free(&b);
	return s;
}

#define ASSERT_LINE(j, want)                                                                                           \
	do {                                                                                                           \
		char *got_ = line_of(j);                                                                               \
		ck_assert_str_eq(got_, want);                                                                          \
		free(got_);                                                                                            \
	} while (0)

START_TEST(test_ts)
{
	char ts[48];

	osirisfmt_ts(TS_MS, ts, sizeof ts);
	ck_assert_str_eq(ts, TS_OSIRIS);
	osirisfmt_ts(0, ts, sizeof ts);
	ck_assert_str_eq(ts, "1970-01-01T00:00:00.000000+00:00");
	osirisfmt_ts(1005, ts, sizeof ts);
	ck_assert_str_eq(ts, "1970-01-01T00:00:01.005000+00:00");
	osirisfmt_ts(-1, ts, sizeof ts);
	ck_assert_str_eq(ts, "");
}
END_TEST

/* The head, step_id, then the data fields in their order, compact. */
START_TEST(test_event_worker)
{
	msgpack_packer *pk;
	struct rec r;

	pk = rec_begin(&r, "worker", "event", "step_start", "extract-movies", 1);
	kv_str(pk, "driver", "mysql.extractor");
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)), "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	                                                "\",\"event\":\"step_start\",\"step_id\":\"extract-movies\","
	                                                "\"driver\":\"mysql.extractor\"}");
	/* the other kinds of line do not take it */
	ck_assert_ptr_null(osirisfmt_metric(&run, &r.f.up.data));
	rec_free(&r);

	/* run-level: no step_id at all (not null) */
	pk = rec_begin(&r, "worker", "event", "run_start", NULL, 3);
	kv_str(pk, "run_id", RID);
	kv_str(pk, "pipeline_id", "join-csv");
	kv_int(pk, "steps", 4);
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"event\":\"run_start\",\"run_id\":\"" RID
	            "\",\"pipeline_id\":\"join-csv\",\"steps\":4}");
	rec_free(&r);
}
END_TEST

/* What Osiris's readers need that our events spell otherwise. */
START_TEST(test_event_compat_fields)
{
	msgpack_packer *pk;
	struct rec r;

	pk = rec_begin(&r, "worker", "event", "step_complete", "q", 4);
	kv_str(pk, "driver", "duckdb.processor");
	kv_int(pk, "rows_in", 16);
	kv_int(pk, "rows_out", 5);
	kv_int(pk, "duration_ms", 2);
	ASSERT_LINE(
	    osirisfmt_event(&run, rec_end(&r)),
	    "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"event\":\"step_complete\",\"step_id\":\"q\","
	    "\"driver\":\"duckdb.processor\",\"rows_in\":16,\"rows_out\":5,\"duration_ms\":2,\"rows_processed\":5}");
	rec_free(&r);

	pk = rec_begin(&r, "worker", "event", "step_failed", "q", 3);
	kv_str(pk, "error", "no such table: ***");
	kv_str(pk, "error_type", "SQLError");
	kv_int(pk, "duration_ms", 1);
	ASSERT_LINE(
	    osirisfmt_event(&run, rec_end(&r)),
	    "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"event\":\"step_failed\",\"step_id\":\"q\","
	    "\"error\":\"no such table: ***\",\"error_type\":\"SQLError\",\"duration_ms\":1,\"level\":\"error\"}");
	rec_free(&r);

	pk = rec_begin(&r, "worker", "event", "run_failed", NULL, 1);
	kv_int(pk, "steps_failed", 1);
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	            "\",\"event\":\"run_failed\",\"steps_failed\":1,\"level\":\"error\"}");
	rec_free(&r);

	/* the daemon's run_end: marked, with Osiris's end fields; the
	 * duration runs from the run's start (2.5 s before) */
	pk = rec_begin(&r, "daemon", "event", "run_end", NULL, 3);
	kv_str(pk, "state", "failed");
	kv_int(pk, "exit_code", 1);
	kv_str(pk, "error", "step q failed");
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"event\":\"run_end\",\"state\":\"failed\","
	            "\"exit_code\":1,\"error\":\"step q "
	            "failed\",\"origin\":\"daemon\",\"status\":\"failed\",\"end_time\":\"" TS_OSIRIS
	            "\",\"duration_seconds\":2.5}");
	rec_free(&r);

	pk = rec_begin(&r, "daemon", "event", "run_end", NULL, 2);
	kv_str(pk, "state", "succeeded");
	kv_int(pk, "exit_code", 0);
	{
		struct osirisfmt_run unstarted = {.id = RID, .started_ms = -1};

		ASSERT_LINE(
		    osirisfmt_event(&unstarted, rec_end(&r)),
		    "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"event\":\"run_end\",\"state\":\"succeeded\","
		    "\"exit_code\":0,\"origin\":\"daemon\",\"status\":\"success\",\"end_time\":\"" TS_OSIRIS "\"}");
	}
	rec_free(&r);

	/* other daemon events pass with their fields, marked */
	pk = rec_begin(&r, "daemon", "event", "worker_acquired", NULL, 2);
	kv_str(pk, "backend", "local");
	pk_str(pk, "warm");
	msgpack_pack_true(pk);
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	            "\",\"event\":\"worker_acquired\",\"backend\":\"local\",\"warm\":true,\"origin\":\"daemon\"}");
	rec_free(&r);
}
END_TEST

/* A data field never replaces the line's own keys, and a compatibility
 * field never replaces one the worker sent. */
START_TEST(test_event_collisions)
{
	msgpack_packer *pk;
	struct rec r;

	pk = rec_begin(&r, "worker", "event", "step_failed", "q", 5);
	kv_str(pk, "ts", "yesterday");
	kv_str(pk, "event", "other");
	kv_str(pk, "session", "x");
	kv_str(pk, "step_id", "not-q");
	kv_str(pk, "level", "warning");
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	            "\",\"event\":\"step_failed\",\"step_id\":\"q\",\"level\":\"warning\"}");
	rec_free(&r);

	/* run-level record: a step_id in data is the record's only one, kept */
	pk = rec_begin(&r, "worker", "event", "custom", NULL, 1);
	kv_str(pk, "step_id", "s");
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"event\":\"custom\",\"step_id\":\"s\"}");
	rec_free(&r);
}
END_TEST

/* ASCII output like Python's json.dumps (jansson's hex digits are upper
 * case, the same character); bad UTF-8 visible, not lost. */
START_TEST(test_event_text)
{
	msgpack_packer *pk;
	struct rec r;

	pk = rec_begin(&r, "worker", "event", "artifact_created", "w", 2);
	kv_str(pk, "path", "output/Zo\xc3\xab.csv");
	pk_str(pk, "raw");
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\xff\n", 3);
	ASSERT_LINE(osirisfmt_event(&run, rec_end(&r)), "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	                                                "\",\"event\":\"artifact_created\",\"step_id\":\"w\","
	                                                "\"path\":\"output/Zo\\u00EB.csv\",\"raw\":\"a\\\\xff\\n\"}");
	rec_free(&r);
}
END_TEST

START_TEST(test_metric)
{
	msgpack_packer *pk;
	struct rec r;

	pk = rec_begin(&r, "worker", "metric", "rows_read", "extract", 2);
	kv_int(pk, "value", 14);
	kv_str(pk, "unit", "rows");
	ASSERT_LINE(osirisfmt_metric(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	            "\",\"metric\":\"rows_read\",\"value\":14,\"step_id\":\"extract\","
	            "\"unit\":\"rows\"}");
	ck_assert_ptr_null(osirisfmt_event(&run, &r.f.up.data));
	rec_free(&r);

	pk = rec_begin(&r, "worker", "metric", "ratio", NULL, 1);
	pk_str(pk, "value");
	msgpack_pack_double(pk, 0.5);
	ASSERT_LINE(osirisfmt_metric(&run, rec_end(&r)),
	            "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID "\",\"metric\":\"ratio\",\"value\":0.5}");
	rec_free(&r);

	/* no value: the key is still there, as Osiris always writes it */
	rec_begin(&r, "daemon", "metric", "odd", NULL, 0);
	ASSERT_LINE(osirisfmt_metric(&run, rec_end(&r)), "{\"ts\":\"" TS_OSIRIS "\",\"session\":\"" RID
	                                                 "\",\"metric\":\"odd\",\"value\":null,\"origin\":\"daemon\"}");
	rec_free(&r);
}
END_TEST

/* Osiris's logging format: "%(asctime)s - %(name)s - [%(session_id)s] -
 * %(levelname)s - %(message)s", asctime local (TZ=UTC here). */
START_TEST(test_log)
{
	msgpack_packer *pk;
	struct buf b;
	struct rec r;

	setenv("TZ", "UTC", 1);
	tzset();
	buf_init(&b);
	pk = rec_begin(&r, "worker", "log", "info", "extract", 1);
	kv_str(pk, "message", "read 6 rows");
	ck_assert_int_eq(osirisfmt_log(&run, rec_end(&r), &b), 0);
	ck_assert_ptr_null(osirisfmt_event(&run, &r.f.up.data));
	ck_assert_ptr_null(osirisfmt_metric(&run, &r.f.up.data));
	rec_free(&r);

	pk = rec_begin(&r, "worker", "log", "warn", NULL, 1);
	kv_str(pk, "message", "two\nlines\x1b[31m");
	ck_assert_int_eq(osirisfmt_log(&run, rec_end(&r), &b), 0);
	rec_free(&r);

	pk = rec_begin(&r, "daemon", "log", "error", NULL, 1);
	kv_int(pk, "code", 7);
	ck_assert_int_eq(osirisfmt_log(&run, rec_end(&r), &b), 0);
	rec_free(&r);

	pk = rec_begin(&r, "worker", "log", "trace", "s", 1);
	kv_str(pk, "message", "m");
	ck_assert_int_eq(osirisfmt_log(&run, rec_end(&r), &b), 0);
	rec_free(&r);

	ck_assert_str_eq(buf_cstr(&b), "2026-11-26 12:24:44 - osiris.step.extract - [" RID "] - INFO - read 6 rows\n"
	                               "2026-11-26 12:24:44 - osiris.run - [" RID "] - WARNING - two\\nlines\\x1b[31m\n"
	                               "2026-11-26 12:24:44 - osirisd - [" RID "] - ERROR - {\"code\":7}\n"
	                               "2026-11-26 12:24:44 - osiris.step.s - [" RID "] - TRACE - m\n");

	/* not a log record: nothing appended */
	buf_reset(&b);
	rec_begin(&r, "worker", "event", "x", NULL, 0);
	ck_assert_int_eq(osirisfmt_log(&run, rec_end(&r), &b), -1);
	ck_assert_uint_eq(b.len, 0);
	rec_free(&r);
	buf_free(&b);
}
END_TEST

static char *status_of(const struct run_info *ri, int events)
{
	json_t *j = osirisfmt_status(ri, events);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(j);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* LocalAdapter's keys and rule: ok = success, exit 0, every step done,
 * events.jsonl written. */
START_TEST(test_status)
{
	struct step_info steps[3] = {{.state = STEP_SUCCEEDED}, {.state = STEP_FAILED}, {.state = STEP_SKIPPED}};
	struct run_info ri = {.id = RID,
	                      .state = RUN_SUCCEEDED,
	                      .backend = "local",
	                      .worker = "local-42",
	                      .has_exit_code = 1,
	                      .exit_code = 0,
	                      .steps = steps,
	                      .nsteps = 1};
	char *s;

	s = status_of(&ri, 1);
	ck_assert_str_eq(s, "{\"sandbox_id\":\"local\",\"exit_code\":0,\"steps_completed\":1,\"steps_total\":1,"
	                    "\"ok\":true,\"session_path\":\"local\",\"session_copied\":true,"
	                    "\"events_jsonl_exists\":true,\"reason\":\"\"}");
	free(s);
	s = status_of(&ri, 0);
	ck_assert_ptr_nonnull(strstr(s, "\"ok\":false"));
	ck_assert_ptr_nonnull(strstr(s, "\"events_jsonl_exists\":false,\"reason\":\"missing_events_jsonl\""));
	free(s);

	ri.state = RUN_FAILED;
	ri.exit_code = 1;
	ri.nsteps = 3;
	s = status_of(&ri, 1);
	ck_assert_str_eq(s, "{\"sandbox_id\":\"local\",\"exit_code\":1,\"steps_completed\":1,\"steps_total\":3,"
	                    "\"ok\":false,\"session_path\":\"local\",\"session_copied\":true,"
	                    "\"events_jsonl_exists\":true,\"reason\":\"execution_failed\"}");
	free(s);

	ri.state = RUN_CANCELLED;
	s = status_of(&ri, 1);
	ck_assert_ptr_nonnull(strstr(s, "\"ok\":false"));
	ck_assert_ptr_nonnull(strstr(s, "\"reason\":\"cancelled\""));
	free(s);
	ri.state = RUN_LOST;
	ri.has_exit_code = 0; /* nil on the wire: not a success */
	s = status_of(&ri, 1);
	ck_assert_ptr_nonnull(strstr(s, "\"exit_code\":1,"));
	ck_assert_ptr_nonnull(strstr(s, "\"reason\":\"lost\""));
	free(s);

	/* a sandbox run names its sandbox */
	ri.state = RUN_SUCCEEDED;
	ri.has_exit_code = 1;
	ri.exit_code = 0;
	ri.backend = "e2b";
	ri.worker = "sbx-123";
	steps[1].state = steps[2].state = STEP_SUCCEEDED;
	s = status_of(&ri, 1);
	ck_assert_str_eq(s, "{\"sandbox_id\":\"sbx-123\",\"exit_code\":0,\"steps_completed\":3,\"steps_total\":3,"
	                    "\"ok\":true,\"session_path\":\"e2b\",\"session_copied\":true,"
	                    "\"events_jsonl_exists\":true,\"reason\":\"\"}");
	free(s);
	ri.worker = NULL;
	s = status_of(&ri, 1);
	ck_assert_ptr_nonnull(strstr(s, "{\"sandbox_id\":\"e2b\","));
	free(s);
}
END_TEST

START_TEST(test_artifact_path)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"artifacts/q/cleaned_config.json", "artifacts/q/cleaned_config.json"}, /* where Osiris puts it */
	    {"output/customer_totals.csv", "artifacts/output/customer_totals.csv"},
	    {"report.txt", "artifacts/report.txt"},
	    {"artifacts", "artifacts/artifacts"}, /* a file named so, at the top */
	    {"artifactsX/a", "artifacts/artifactsX/a"},
	    {"../evil", NULL},
	    {"/etc/passwd", NULL},
	    {"a/../../b", NULL},
	    {"", NULL},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = osirisfmt_artifact_path(cases[i].in);

		if (cases[i].out == NULL)
			ck_assert_msg(got == NULL, "%s: expected refusal, got %s", cases[i].in, got);
		else
			ck_assert_str_eq(got, cases[i].out);
		free(got);
	}
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("pure"), *tc2;

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
	tc2 = tcase_create("osirisfmt");
	tcase_add_test(tc2, test_ts);
	tcase_add_test(tc2, test_event_worker);
	tcase_add_test(tc2, test_event_compat_fields);
	tcase_add_test(tc2, test_event_collisions);
	tcase_add_test(tc2, test_event_text);
	tcase_add_test(tc2, test_metric);
	tcase_add_test(tc2, test_log);
	tcase_add_test(tc2, test_status);
	tcase_add_test(tc2, test_artifact_path);
	suite_add_tcase(s, tc2);
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
