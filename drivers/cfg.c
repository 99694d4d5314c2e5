/*
 * cfg.c: typed reads of a step's JSON config for drivers, with one-line
 * errors naming the key (the worker prefixes the cfg file name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drivers.h"

int cfg_str(struct driver_ctx *ctx, const json_t *cfg, const char *key, const char **out)
{
	json_t *v = json_object_get(cfg, key);

	if (v == NULL || json_is_null(v))
		return 1;
	if (!json_is_string(v))
		return ctx_fail(ctx, "ConfigError", "'%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int cfg_bool(struct driver_ctx *ctx, const json_t *cfg, const char *key, int *out)
{
	json_t *v = json_object_get(cfg, key);

	if (v == NULL || json_is_null(v))
		return 1;
	if (!json_is_boolean(v))
		return ctx_fail(ctx, "ConfigError", "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

int cfg_int(struct driver_ctx *ctx, const json_t *cfg, const char *key, int64_t *out)
{
	json_t *v = json_object_get(cfg, key);

	if (v == NULL || json_is_null(v))
		return 1;
	if (!json_is_integer(v))
		return ctx_fail(ctx, "ConfigError", "'%s' must be an integer", key);
	*out = json_integer_value(v);
	return 0;
}

/* One byte, and not one that would make the CSV ambiguous. */
int cfg_delim(struct driver_ctx *ctx, const json_t *cfg, char *out)
{
	const char *s;
	int rc = cfg_str(ctx, cfg, "delimiter", &s);

	if (rc != 0)
		return rc;
	if (strlen(s) != 1 || s[0] == '"' || s[0] == '\r' || s[0] == '\n' || (unsigned char)s[0] >= 0x80)
		return ctx_fail(ctx, "ConfigError",
		                "'delimiter' must be one ASCII character other than a quote or newline");
	*out = s[0];
	return 0;
}

/* Only UTF-8 is supported; say so rather than misread the bytes. */
int cfg_encoding(struct driver_ctx *ctx, const json_t *cfg)
{
	const char *s;
	int rc = cfg_str(ctx, cfg, "encoding", &s);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (strcasecmp(s, "utf-8") != 0 && strcasecmp(s, "utf8") != 0 && strcasecmp(s, "utf-8-sig") != 0)
		return ctx_fail(ctx, "ConfigError", "encoding '%s' is not supported (only utf-8)", s);
	return 0;
}

/* A connection field: `resolved_connection` first (what "@family.alias"
 * resolved to), then the cfg itself (Osiris injects host/port defaults
 * there). Numbers are given as their text. NULL when absent or empty. */
const char *cfg_conn(const json_t *cfg, const char *key, char *num, size_t numlen)
{
	const json_t *rc = json_object_get(cfg, "resolved_connection"), *v;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		v = json_object_get(pass == 0 ? rc : cfg, key);
		if (json_is_string(v) && json_string_value(v)[0] != '\0')
			return json_string_value(v);
		if (json_is_integer(v)) {
			snprintf(num, numlen, "%lld", (long long)json_integer_value(v));
			return num;
		}
		if (json_is_boolean(v)) {
			snprintf(num, numlen, "%s", json_is_true(v) ? "true" : "false");
			return num;
		}
	}
	return NULL;
}

/* primary_key: a column name or a list of them, each a column of t. */
static int cfg_writer_pk(struct driver_ctx *ctx, const json_t *cfg, const struct table *t, struct cfg_writer *w)
{
	const json_t *pk = json_object_get(cfg, "primary_key"), *v;
	size_t i, j;

	if (pk == NULL || json_is_null(pk))
		return 0;
	if (!json_is_string(pk) && !json_is_array(pk))
		return ctx_fail(ctx, "ConfigError", "'primary_key' must be a string or a list of strings");
	w->pk = xcalloc(json_is_array(pk) ? json_array_size(pk) + 1 : 2, sizeof(*w->pk));
	if (json_is_string(pk))
		w->pk[w->npk++] = json_string_value(pk);
	json_array_foreach(json_is_array(pk) ? pk : NULL, i, v)
	{
		if (!json_is_string(v))
			return ctx_fail(ctx, "ConfigError", "'primary_key' must be a string or a list of strings");
		w->pk[w->npk++] = json_string_value(v);
	}
	for (i = 0; i < w->npk; i++) {
		for (j = 0; j < t->ncols && strcmp(t->cols[j].name, w->pk[i]) != 0; j++)
			;
		if (j == t->ncols)
			return ctx_fail(ctx, "ConfigError", "primary_key column '%s' is not in the input",
			                log_esc(w->pk[i], 64));
	}
	return 0;
}

int cfg_writer(struct driver_ctx *ctx, const json_t *cfg, const struct table *t, struct cfg_writer *w)
{
	const char *m = "append";
	int rc;

	memset(w, 0, sizeof(*w));
	w->create = 1;
	w->retries = 3;
	if (t == NULL)
		return ctx_fail(ctx, "ValueError", "no input table (needs an upstream step that produces one)");
	if ((rc = cfg_str(ctx, cfg, "table", &w->table)) != 0)
		return rc < 0 ? -1 : ctx_fail(ctx, "ConfigError", "'table' is required");
	if (cfg_str(ctx, cfg, "write_mode", &m) < 0 || cfg_bool(ctx, cfg, "create_if_missing", &w->create) < 0 ||
	    cfg_int(ctx, cfg, "retries", &w->retries) < 0 || cfg_writer_pk(ctx, cfg, t, w) < 0)
		return -1;
	if (strcmp(m, "append") == 0 || strcmp(m, "insert") == 0)
		w->mode = WRITE_APPEND;
	else if (strcmp(m, "upsert") == 0)
		w->mode = WRITE_UPSERT;
	else if (strcmp(m, "replace") == 0)
		w->mode = WRITE_REPLACE;
	else
		return ctx_fail(ctx, "ConfigError", "'write_mode' must be append, insert, upsert or replace");
	if (w->mode != WRITE_APPEND && w->npk == 0)
		return ctx_fail(ctx, "ConfigError", "write_mode '%s' needs 'primary_key'", m);
	if (t->ncols == 0)
		return ctx_fail(ctx, "ValueError", "the input table has no columns");
	return 0;
}

void cfg_writer_free(struct cfg_writer *w)
{
	free(w->pk);
	w->pk = NULL;
	w->npk = 0;
}
