/*
 * check_client_export.c: osirisfmt.c, the pure half of `artifacts --export`:
 * one run.event record -> one events.jsonl / metrics.jsonl / osiris.log line
 * in Osiris's shape, the run object -> status.json, artifact paths.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/osirisctl.h"

#define RID "01JDX3K2M4N5P6Q7R8S9T0V1W2"
#define TS "2026-11-26T12:24:44.123Z"
#define TS_OSIRIS "2026-11-26T12:24:44.123000+00:00"
#define TS_MS INT64_C(1795695884123)

static const struct osirisfmt_run run = {.id = RID, .started_ms = TS_MS - 2500};

/* One record packed with msgpack, unpacked into a zone the test owns. */
struct rec {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
};

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* The run.event params map up to "data": the caller packs ndata pairs. */
static msgpack_packer *rec_begin(struct rec *r, const char *origin, const char *kind, const char *name,
                                 const char *step, uint32_t ndata)
{
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&r->pk, 8);
	pk_str(&r->pk, "run");
	pk_str(&r->pk, RID);
	pk_str(&r->pk, "seq");
	msgpack_pack_int64(&r->pk, 7);
	pk_str(&r->pk, "ts");
	pk_str(&r->pk, TS);
	pk_str(&r->pk, "origin");
	pk_str(&r->pk, origin);
	pk_str(&r->pk, "kind");
	pk_str(&r->pk, kind);
	pk_str(&r->pk, "name");
	pk_str(&r->pk, name);
	pk_str(&r->pk, "step_id");
	if (step != NULL)
		pk_str(&r->pk, step);
	else
		msgpack_pack_nil(&r->pk);
	pk_str(&r->pk, "data");
	msgpack_pack_map(&r->pk, ndata);
	return &r->pk;
}

static const msgpack_object *rec_end(struct rec *r)
{
	size_t off = 0;

	msgpack_unpacked_init(&r->up);
	ck_assert_int_eq(msgpack_unpack_next(&r->up, r->sb.data, r->sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	return &r->up.data;
}

static void rec_free(struct rec *r)
{
	msgpack_unpacked_destroy(&r->up);
	msgpack_sbuffer_destroy(&r->sb);
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

/* The line osirisfmt writes for j (consumed), without its newline check. */
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
	ck_assert_ptr_null(osirisfmt_metric(&run, &r.up.data));
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
	ck_assert_ptr_null(osirisfmt_event(&run, &r.up.data));
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

	buf_init(&b);
	pk = rec_begin(&r, "worker", "log", "info", "extract", 1);
	kv_str(pk, "message", "read 6 rows");
	ck_assert_int_eq(osirisfmt_log(&run, rec_end(&r), &b), 0);
	ck_assert_ptr_null(osirisfmt_event(&run, &r.up.data));
	ck_assert_ptr_null(osirisfmt_metric(&run, &r.up.data));
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

static Suite *export_suite(void)
{
	Suite *s = suite_create("client_export");
	TCase *tc = tcase_create("osirisfmt");

	tcase_add_test(tc, test_ts);
	tcase_add_test(tc, test_event_worker);
	tcase_add_test(tc, test_event_compat_fields);
	tcase_add_test(tc, test_event_collisions);
	tcase_add_test(tc, test_event_text);
	tcase_add_test(tc, test_metric);
	tcase_add_test(tc, test_log);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_artifact_path);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(export_suite());
	int failed;

	setenv("TZ", "UTC", 1);
	tzset();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
