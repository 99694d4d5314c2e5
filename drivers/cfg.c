/*
 * cfg.c: typed reads of a step's JSON config for drivers, with one-line
 * errors naming the key (the worker prefixes the cfg file name).
 */
#include <stdio.h>
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
