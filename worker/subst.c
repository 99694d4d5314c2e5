/*
 * subst.c: ${VAR} substitution in cfg string values, from the run's env and
 * secrets only (never the worker's own environment, so host variables
 * cannot leak into a pipeline). Rules, kept simple on purpose:
 *   ${NAME}  NAME = [A-Za-z_][A-Za-z0-9_]*, replaced by its value; unset is
 *            an error ("cfg/x.json: ${FOO} is not set")
 *   $${      a literal "${" (the escape)
 *   $        anything else is literal; no ${VAR:-default}, no nesting
 * Keys are never substituted; values are substituted once (no recursion).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

static const char *
subst_lookup(const struct kvlist *env, const struct kvlist *secrets, const char *name)
{
	const char *v = kvlist_get(secrets, name);

	return v != NULL ? v : kvlist_get(env, name);
}

static int
subst_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

int
subst_string(const char *in, const struct kvlist *env, const struct kvlist *secrets, const char *name,
    char **out, char *err, size_t errlen)
{
	struct buf b;
	const char *p = in, *close, *val;
	char var[256];

	buf_init(&b);
	while (*p != '\0') {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			buf_add(&b, "${", 2);
			p += 3;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			buf_addc(&b, *p++);
			continue;
		}
		close = strchr(p + 2, '}');
		if (close == NULL || !subst_name_ok(p + 2, (size_t)(close - p - 2)) || close - p - 2 >= (long)sizeof(var)) {
			snprintf(err, errlen, "%s: bad variable reference \"%s\" (use ${NAME}, or $${ for a literal)", name,
			    log_esc(p, 40));
			buf_free(&b);
			return -1;
		}
		memcpy(var, p + 2, (size_t)(close - p - 2));
		var[close - p - 2] = '\0';
		if ((val = subst_lookup(env, secrets, var)) == NULL) {
			snprintf(err, errlen, "%s: ${%s} is not set", name, var);
			buf_free(&b);
			return -1;
		}
		buf_adds(&b, val);
		p = close + 1;
	}
	*out = buf_cstr(&b);
	return 0;
}

static int
subst_value(json_t *v, const struct kvlist *env, const struct kvlist *secrets, const char *name, char *err,
    size_t errlen, unsigned depth)
{
	const char *key;
	json_t *child;
	size_t i;
	char *s;

	if (depth > 64) {
		snprintf(err, errlen, "%s: nested too deeply", name);
		return -1;
	}
	if (json_is_string(v)) {
		if (strchr(json_string_value(v), '$') == NULL)
			return 0;
		if (subst_string(json_string_value(v), env, secrets, name, &s, err, errlen) < 0)
			return -1;
		json_string_set(v, s);
		free(s);
		return 0;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if (subst_value(child, env, secrets, name, err, errlen, depth + 1) < 0)
				return -1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			if (subst_value(child, env, secrets, name, err, errlen, depth + 1) < 0)
				return -1;
		}
	}
	return 0;
}

int
subst_cfg(json_t *cfg, const struct kvlist *env, const struct kvlist *secrets, const char *name, char *err,
    size_t errlen)
{
	return subst_value(cfg, env, secrets, name, err, errlen, 0);
}
