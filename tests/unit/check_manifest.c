/*
 * check_manifest.c: manifest.yaml parsing and checking (every rejection,
 * with the line it names) and cfg/<step>.json checks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static int known_cb(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "filesystem.csv_extractor") == 0 || strcmp(name, "duckdb.processor") == 0 ||
	       strcmp(name, "osiris.noop") == 0;
}

static int parse(const char *text, struct manifest *m, char *err, size_t errlen)
{
	err[0] = '\0';
	static const struct manifest_drivers known = {known_cb, NULL};

	return manifest_parse(m, text, strlen(text), &known, err, errlen);
}

/* Expect a rejection whose message contains `want`. */
static void reject(const char *text, const char *want)
{
	struct manifest m;
	char err[512];

	ck_assert_msg(parse(text, &m, err, sizeof(err)) == -1, "accepted: %s", text);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
	ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
	ck_assert_msg(strncmp(err, "manifest.yaml:", 14) == 0, "error does not name the file: %s", err);
}

#define STEP(id, drv, needs) "- id: " id "\n  driver: " drv "\n  cfg_path: cfg/" id ".json\n  needs: " needs "\n"

START_TEST(test_real_format)
{
	/* the block style the Osiris compiler writes (osiris-runtime.md §1.4) */
	static const char *text = "---\n"
	                          "meta:\n"
	                          "  oml_version: 0.1.0\n"
	                          "  run_id: ${run_id}\n"
	                          "name: demo\n"
	                          "pipeline:\n"
	                          "  fingerprints:\n"
	                          "    profile: dev\n"
	                          "  id: mysql-duckdb-demo\n"
	                          "  version: 0.1.0\n"
	                          "steps:\n"
	                          "- cfg_path: cfg/extract-movies.json\n"
	                          "  component: filesystem.csv_extractor\n"
	                          "  driver: filesystem.csv_extractor\n"
	                          "  id: extract-movies\n"
	                          "  needs: []\n"
	                          "- cfg_path: cfg/stats.json\n"
	                          "  component: duckdb.processor\n"
	                          "  id: stats\n"
	                          "  needs:\n"
	                          "  - extract-movies\n"
	                          "...\n";
	struct manifest m;
	char err[512];

	ck_assert_msg(parse(text, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(m.pipeline_id, "mysql-duckdb-demo");
	ck_assert_uint_eq(m.nsteps, 2);
	ck_assert_str_eq(m.steps[1].driver, "duckdb.processor"); /* from component */
	ck_assert_str_eq(m.steps[1].cfg_path, "cfg/stats.json");
	ck_assert_uint_eq(m.steps[1].nneeds, 1);
	ck_assert_uint_eq(m.steps[1].need_idx[0], 0);
	ck_assert_ptr_eq(manifest_step_find(&m, "stats"), &m.steps[1]);
	ck_assert_ptr_null(manifest_step_find(&m, "nope"));
	manifest_free(&m);
}
END_TEST

START_TEST(test_topo_order)
{
	/* c needs a and d (declared later); ties broken by manifest order */
	static const char *text = "steps:\n" STEP("c", "osiris.noop", "[a, d]") STEP("a", "osiris.noop", "[]")
	    STEP("b", "osiris.noop", "[a]") STEP("d", "osiris.noop", "[]") STEP("e", "osiris.noop", "~");
	static const char *want[] = {"a", "b", "d", "c", "e"};
	struct manifest m;
	char err[512];
	size_t i;

	ck_assert_msg(parse(text, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_null(m.pipeline_id);
	for (i = 0; i < 5; i++)
		ck_assert_str_eq(m.steps[m.order[i]].id, want[i]);
	manifest_free(&m);
}
END_TEST

START_TEST(test_bad_yaml_line)
{
	reject("steps:\n- id: a\n  driver: [unclosed\n  cfg_path: cfg/a.json\n", "manifest.yaml:4:");
	reject("steps:\n- id: a\n  driver: [unclosed\n  cfg_path: cfg/a.json\n", "YAML");
	reject("steps:\n  - id: a\n   bad: indent\n", "manifest.yaml:3:");
	reject("", "empty document");
	reject("- just\n- a list\n", "mapping");
}
END_TEST

START_TEST(test_structure)
{
	reject("pipeline:\n  id: x\n", "missing 'steps'");
	reject("steps: {}\n", "'steps' must be a list");
	reject("steps: []\n", "empty");
	reject("steps:\n- just a string\n", "mapping");
	reject("steps:\n- driver: osiris.noop\n  cfg_path: cfg/a.json\n", "missing 'id'");
	reject("steps:\n- id: a\n  cfg_path: cfg/a.json\n", "step 'a': missing 'driver'");
	reject("steps:\n- id: a\n  driver: osiris.noop\n", "step 'a': missing 'cfg_path'");
	reject("steps:\n- id: [x]\n  driver: osiris.noop\n  cfg_path: cfg/a.json\n", "'id' must be a string");
	reject("steps:\n" STEP("a", "osiris.noop", "a-string"), "'needs' must be a list");
	reject("steps:\n" STEP("a", "osiris.noop", "[b, b]") STEP("b", "osiris.noop", "[]"), "twice");
}
END_TEST

START_TEST(test_unknown_driver)
{
	reject("steps:\n" STEP("a", "osiris.noop", "[]") STEP("b", "no.such_driver", "[a]"),
	       "manifest.yaml:7: step 'b': unknown driver 'no.such_driver'");
}
END_TEST

START_TEST(test_duplicate_id)
{
	reject("steps:\n" STEP("a", "osiris.noop", "[]") STEP("a", "osiris.noop", "[]"),
	       "manifest.yaml:6: duplicate step id 'a' (first at line 2)");
}
END_TEST

START_TEST(test_missing_need)
{
	reject("steps:\n" STEP("a", "osiris.noop", "[ghost_step]"), "step 'a' needs 'ghost_step', which is not a step");
}
END_TEST

START_TEST(test_cycle)
{
	reject("steps:\n" STEP("ex", "osiris.noop", "[]") STEP("a", "osiris.noop", "[ex, b]")
	           STEP("b", "osiris.noop", "[a]"),
	       "needs cycle: ");
	reject("steps:\n" STEP("ex", "osiris.noop", "[]") STEP("a", "osiris.noop", "[ex, b]")
	           STEP("b", "osiris.noop", "[a]"),
	       "manifest.yaml:6: needs cycle: a -> b -> a");
	reject("steps:\n" STEP("self", "osiris.noop", "[self]"), "self -> self");
}
END_TEST

START_TEST(test_unsafe_cfg_path)
{
	reject("steps:\n- id: a\n  driver: osiris.noop\n  cfg_path: /etc/passwd\n", "absolute or escapes");
	reject("steps:\n- id: a\n  driver: osiris.noop\n  cfg_path: cfg/../../x.json\n", "escapes");
}
END_TEST

START_TEST(test_no_driver_check)
{
	struct manifest m;
	char err[512];
	const char *text = "steps:\n" STEP("a", "anything.goes", "[]");

	ck_assert_int_eq(manifest_parse(&m, text, strlen(text), NULL, err, sizeof(err)), 0);
	manifest_free(&m);
}
END_TEST

static void cfg_reject(const char *json, const char *want)
{
	char err[512];

	ck_assert_msg(manifest_cfg_check("cfg/x.json", json, strlen(json), err, sizeof(err)) == -1, "accepted %s",
	              json);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

/* Found by fuzz_manifest: a quoted YAML id folded over blank lines holds
 * newlines; the error naming it must still be one line. */
START_TEST(test_id_with_newline)
{
	reject("steps:\n- id: 'a\n\n  b'\n  cfg_path: cfg/a.json\n", "missing 'driver'");
	reject("steps:\n- id: \"x\\ty\"\n  driver: no.such\n  cfg_path: cfg/x.json\n", "unknown driver");
}
END_TEST

START_TEST(test_cfg_check)
{
	char err[512];
	const char *ok = "{\"path\":\"data/a.csv\",\"nested\":{\"path\":\"out/b.csv\"},\"n\":1}";

	ck_assert_int_eq(manifest_cfg_check("cfg/x.json", ok, strlen(ok), err, sizeof(err)), 0);
	cfg_reject("{\"path\":\"/etc/passwd\"}",
	           "cfg/x.json: path \"/etc/passwd\" is absolute or escapes the run context");
	cfg_reject("{\"a\":[{\"path\":\"../up.csv\"}]}", "\"../up.csv\"");
	cfg_reject("[1,2]", "must be a JSON object");
	cfg_reject("{\"component\": \"osiris.noop\", \n", "cfg/x.json:2:");
	cfg_reject("{\"a\":1,\"a\":2}", "cfg/x.json:");
}
END_TEST

static Suite *manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_real_format);
	tcase_add_test(tc, test_topo_order);
	tcase_add_test(tc, test_bad_yaml_line);
	tcase_add_test(tc, test_structure);
	tcase_add_test(tc, test_unknown_driver);
	tcase_add_test(tc, test_duplicate_id);
	tcase_add_test(tc, test_missing_need);
	tcase_add_test(tc, test_cycle);
	tcase_add_test(tc, test_unsafe_cfg_path);
	tcase_add_test(tc, test_no_driver_check);
	tcase_add_test(tc, test_cfg_check);
	tcase_add_test(tc, test_id_with_newline);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(manifest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
