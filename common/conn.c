/*
 * conn.c: Osiris connections (`connection: "@family.alias"`). Parses an
 * osiris_connections.yaml (`connections: {family: {alias: {fields}}}`) into
 * a JSON tree, picks an alias (or the family's default), substitutes
 * ${VAR} in its fields and says which fields are secrets. Shared by the
 * worker (the run context's file) and the daemon (daemon.connections_file).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common.h"

#define CONN_MAX_DEPTH 16

/* Substrings that make a field secret (lower-case compare), Osiris'
 * redactor list; "key" covers api_key, anon_key, service_role_key. */
static const char *const conn_secret_words[] = {
    "password", "passwd", "pwd", "token", "secret", "key", "dsn", "connection_string", "credential", NULL};

int conn_key_secret(const char *key)
{
	char low[128];
	size_t i;

	for (i = 0; key[i] != '\0' && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	low[i] = '\0';
	for (i = 0; conn_secret_words[i] != NULL; i++)
		if (strstr(low, conn_secret_words[i]) != NULL)
			return 1;
	return 0;
}

/* A plain scalar becomes null/bool/int like YAML 1.2's core schema; quoted
 * scalars and everything else stay strings. */
static json_t *conn_scalar(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;
	char *end;
	long long ll;

	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0)
			return json_null();
		if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0)
			return json_true();
		if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0)
			return json_false();
		ll = strtoll(v, &end, 10);
		if (end != v && *end == '\0' && (isdigit((unsigned char)v[0]) || v[0] == '-'))
			return json_integer(ll);
	}
	return json_stringn(v, n->data.scalar.length);
}

static json_t *conn_node(yaml_document_t *doc, yaml_node_t *n, unsigned depth)
{
	yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	json_t *out, *child;

	if (n == NULL || depth > CONN_MAX_DEPTH)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return conn_scalar(n);
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			if ((child = conn_node(doc, yaml_document_get_node(doc, *it), depth + 1)) == NULL)
				return json_decref(out), NULL;
			json_array_append_new(out, child);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
			yaml_node_t *k = yaml_document_get_node(doc, pair->key);
			if (k == NULL || k->type != YAML_SCALAR_NODE)
				return json_decref(out), NULL;
			if ((child = conn_node(doc, yaml_document_get_node(doc, pair->value), depth + 1)) == NULL)
				return json_decref(out), NULL;
			json_object_set_new(out, (const char *)k->data.scalar.value, child);
		}
		return out;
	default:
		return NULL;
	}
}

int conn_parse(const char *name, const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
	return conn_parse_all(name, text, len, out, NULL, err, errlen);
}

int conn_parse_all(const char *name, const char *text, size_t len, json_t **out, json_t **creds, char *err,
                   size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	json_t *tree, *c;

	*out = NULL;
	if (creds != NULL)
		*creds = NULL;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%zu: %s", name, parser.problem_mark.line + 1,
		         parser.problem ? parser.problem : "YAML error");
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	tree = root != NULL ? conn_node(&doc, root, 0) : json_object();
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (tree == NULL || !json_is_object(tree)) {
		json_decref(tree);
		snprintf(err, errlen, "%s: must be a mapping with a 'connections' mapping", name);
		return -1;
	}
	c = json_object_get(tree, "connections");
	if (c != NULL && !json_is_object(c)) {
		json_decref(tree);
		snprintf(err, errlen, "%s: 'connections' must be a mapping of families", name);
		return -1;
	}
	if (creds != NULL) {
		c = json_object_get(tree, "credentials");
		if (c != NULL && !json_is_object(c)) {
			json_decref(tree);
			snprintf(err, errlen, "%s: 'credentials' must be a mapping of credential names", name);
			return -1;
		}
		*creds = c != NULL ? json_incref(c) : json_object();
	}
	c = json_object_get(tree, "connections");
	*out = c != NULL ? json_incref(c) : json_object();
	json_decref(tree);
	return 0;
}

int conn_ref_parse(const char *ref, char **family, char **alias)
{
	const char *dot;

	*family = *alias = NULL;
	if (ref == NULL || ref[0] != '@' || ref[1] == '\0')
		return -1;
	dot = strchr(ref + 1, '.');
	if (dot == NULL) {
		*family = xstrdup(ref + 1);
		return 0;
	}
	if (dot == ref + 1 || dot[1] == '\0')
		return -1;
	*family = xstrndup(ref + 1, (size_t)(dot - ref - 1));
	*alias = xstrdup(dot + 1);
	return 0;
}

const json_t *conn_find(const json_t *conns, const char *family, const char *alias, const char **found)
{
	const json_t *fam = json_object_get(conns, family), *v;
	const char *k;

	*found = NULL;
	if (!json_is_object(fam))
		return NULL;
	if (alias != NULL) {
		v = json_object_get(fam, alias);
		if (json_is_object(v))
			*found = alias;
		return json_is_object(v) ? v : NULL;
	}
	/* Osiris: the alias marked `default: true`, else the one named default */
	json_object_foreach((json_t *)fam, k, v)
	{
		if (json_is_object(v) && json_is_true(json_object_get(v, "default"))) {
			*found = k;
			return v;
		}
	}
	v = json_object_get(fam, "default");
	if (json_is_object(v))
		*found = "default";
	return json_is_object(v) ? v : NULL;
}

/* One string: ${NAME} replaced through lookup (var_expand). */
static char *conn_subst_str(const char *in, const char *what, conn_lookup_fn lookup, void *arg, int *secret, char *err,
                            size_t errlen)
{
	struct buf b;
	const char *at;
	char var[256];
	int rc;

	buf_init(&b);
	if ((rc = var_expand(in, lookup, arg, &b, secret, &at, var)) == 0)
		return buf_cstr(&b);
	if (rc == -1)
		snprintf(err, errlen, "%s: bad variable reference (use ${NAME})", what);
	else
		snprintf(err, errlen, "%s: ${%s} is not set (not a secret, env or credential of the run)", what, var);
	buf_free(&b);
	return NULL;
}

json_t *conn_resolve(const json_t *conn, const char *what, conn_lookup_fn lookup, void *arg, json_t **secrets,
                     char *err, size_t errlen)
{
	json_t *out = json_object(), *v;
	const char *k;
	char *s;
	int sec;

	*secrets = json_array();
	json_object_foreach((json_t *)conn, k, v)
	{
		if (strcmp(k, "default") == 0 || strcmp(k, "allow") == 0)
			continue;
		sec = conn_key_secret(k);
		if (json_is_string(v)) {
			char field[320];
			snprintf(field, sizeof(field), "%s field '%s'", what, k);
			if ((s = conn_subst_str(json_string_value(v), field, lookup, arg, &sec, err, errlen)) == NULL) {
				json_decref(out);
				json_decref(*secrets);
				*secrets = NULL;
				return NULL;
			}
			json_object_set_new(out, k, json_string(s));
			free(s);
		} else {
			json_object_set(out, k, v);
		}
		if (sec)
			json_array_append_new(*secrets, json_string(k));
	}
	return out;
}
