/*
 * check_conn.c: unit tests for common/conn.c: the osiris_connections.yaml
 * layout, references, default aliases, ${VAR} resolution and which fields
 * count as secrets.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static const char conn_yaml[] = "connections:\n"
                                "  mysql:\n"
                                "    a: {host: h1, port: 3306, password: \"${PW}\"}\n"
                                "    b: {host: h2, default: true}\n"
                                "  pg:\n"
                                "    default: {host: h3, pg_dsn: \"postgres://u:${PW}@x/db\", note: \"$${lit}\"}\n";

static const char *conn_lookup(void *arg, const char *name, int *secret)
{
	(void)arg;
	if (strcmp(name, "PW") == 0) {
		*secret = 1;
		return "s3cret";
	}
	if (strcmp(name, "USER") == 0)
		return "plain";
	return NULL;
}

START_TEST(test_conn_parse_find)
{
	json_t *c = NULL;
	const char *found;
	const json_t *v;
	char err[256];

	ck_assert_int_eq(conn_parse("f.yaml", conn_yaml, strlen(conn_yaml), &c, err, sizeof(err)), 0);
	v = conn_find(c, "mysql", "a", &found);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(found, "a");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "port")), 3306);
	v = conn_find(c, "mysql", NULL, &found); /* default: true wins */
	ck_assert_str_eq(found, "b");
	v = conn_find(c, "pg", NULL, &found); /* else the alias named default */
	ck_assert_str_eq(found, "default");
	ck_assert_ptr_null(conn_find(c, "mysql", "zz", &found));
	ck_assert_ptr_null(conn_find(c, "nope", NULL, &found));
	json_decref(c);
	ck_assert_int_eq(conn_parse("f.yaml", "connections: [x", 15, &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "f.yaml:"));
	ck_assert_int_eq(conn_parse("f.yaml", "connections: 3\n", 15, &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "'connections' must be a mapping"));
	ck_assert_int_eq(conn_parse("f.yaml", "", 0, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(json_object_size(c), 0);
	json_decref(c);
}
END_TEST

START_TEST(test_conn_ref)
{
	char *f, *a;

	ck_assert_int_eq(conn_ref_parse("@mysql.db", &f, &a), 0);
	ck_assert_str_eq(f, "mysql");
	ck_assert_str_eq(a, "db");
	free(f);
	free(a);
	ck_assert_int_eq(conn_ref_parse("@mysql", &f, &a), 0);
	ck_assert_str_eq(f, "mysql");
	ck_assert_ptr_null(a);
	free(f);
	ck_assert_int_eq(conn_ref_parse("mysql.db", &f, &a), -1);
	ck_assert_int_eq(conn_ref_parse("@.db", &f, &a), -1);
	ck_assert_int_eq(conn_ref_parse("@mysql.", &f, &a), -1);
	ck_assert_int_eq(conn_ref_parse("@", &f, &a), -1);
}
END_TEST

START_TEST(test_conn_resolve)
{
	json_t *c = NULL, *r, *sec;
	const json_t *v;
	const char *found;
	char err[256];
	size_t i;
	int has_dsn = 0, has_pw = 0, has_host = 0;

	ck_assert_int_eq(conn_parse("f.yaml", conn_yaml, strlen(conn_yaml), &c, err, sizeof(err)), 0);
	v = conn_find(c, "pg", NULL, &found);
	r = conn_resolve(v, "connection @pg", conn_lookup, NULL, &sec, err, sizeof(err));
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(json_string_value(json_object_get(r, "pg_dsn")), "postgres://u:s3cret@x/db");
	ck_assert_str_eq(json_string_value(json_object_get(r, "note")), "${lit}");
	for (i = 0; i < json_array_size(sec); i++) {
		const char *k = json_string_value(json_array_get(sec, i));
		has_dsn |= strcmp(k, "pg_dsn") == 0;
		has_host |= strcmp(k, "host") == 0;
	}
	ck_assert(has_dsn && !has_host);
	json_decref(r);
	json_decref(sec);
	v = conn_find(c, "mysql", "a", &found);
	r = conn_resolve(v, "connection @mysql.a", conn_lookup, NULL, &sec, err, sizeof(err));
	for (i = 0; i < json_array_size(sec); i++)
		has_pw |= strcmp(json_string_value(json_array_get(sec, i)), "password") == 0;
	ck_assert(has_pw);
	json_decref(r);
	json_decref(sec);
	/* default flag dropped; an unset variable is named, not valued */
	v = conn_find(c, "mysql", "b", &found);
	r = conn_resolve(v, "x", conn_lookup, NULL, &sec, err, sizeof(err));
	ck_assert_ptr_null(json_object_get(r, "default"));
	json_decref(r);
	json_decref(sec);
	json_object_set_new((json_t *)v, "user", json_string("${NOPE}"));
	r = conn_resolve(v, "connection @mysql.b", conn_lookup, NULL, &sec, err, sizeof(err));
	ck_assert_ptr_null(r);
	ck_assert_str_eq(
	    err, "connection @mysql.b field 'user': ${NOPE} is not set (not a secret, env or credential of the run)");
	json_decref(c);
}
END_TEST

/* The daemon's file: its credentials mapping; `allow` is never a field. */
START_TEST(test_conn_parse_all_allow)
{
	static const char y[] = "connections:\n  mysql:\n    a: {host: h, allow: [alice, 7]}\n"
	                        "credentials:\n  TOK: {allow: [\"*\"]}\n";
	json_t *c = NULL, *cr = NULL, *out, *secrets;
	const char *found;
	char err[256];

	ck_assert_int_eq(conn_parse_all("f.yaml", y, strlen(y), &c, &cr, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(json_object_get(cr, "TOK"));
	out = conn_resolve(conn_find(c, "mysql", "a", &found), "a", conn_lookup, NULL, &secrets, err, sizeof(err));
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(json_string_value(json_object_get(out, "host")), "h");
	ck_assert_ptr_null(json_object_get(out, "allow"));
	json_decref(out);
	json_decref(secrets);
	json_decref(c);
	json_decref(cr);
	ck_assert_int_eq(conn_parse_all("f.yaml", "credentials: [x]\n", 17, &c, &cr, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "'credentials' must be a mapping"));
	ck_assert_int_eq(conn_parse_all("f.yaml", "", 0, &c, &cr, err, sizeof(err)), 0);
	ck_assert_int_eq(json_object_size(cr), 0);
	json_decref(c);
	json_decref(cr);
}
END_TEST

START_TEST(test_conn_key_secret)
{
	ck_assert(conn_key_secret("password"));
	ck_assert(conn_key_secret("PASSWORD"));
	ck_assert(conn_key_secret("service_role_key"));
	ck_assert(conn_key_secret("pg_dsn"));
	ck_assert(conn_key_secret("auth_token"));
	ck_assert(!conn_key_secret("host"));
	ck_assert(!conn_key_secret("url"));
	ck_assert(!conn_key_secret("user"));
	ck_assert(!conn_key_secret("database"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_conn_parse_find);
	tcase_add_test(tc, test_conn_ref);
	tcase_add_test(tc, test_conn_resolve);
	tcase_add_test(tc, test_conn_key_secret);
	tcase_add_test(tc, test_conn_parse_all_allow);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
