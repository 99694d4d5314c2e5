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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

struct subst_lists {
	const struct kvlist *env, *secrets;
};

static const char *subst_lookup(void *arg, const char *name, int *secret)
{
	const struct subst_lists *l = arg;
	const char *v = kvlist_get(l->secrets, name);

	(void)secret;
	return v != NULL ? v : kvlist_get(l->env, name);
}

int subst_string(const char *in, const struct kvlist *env, const struct kvlist *secrets, const char *name, char **out,
                 char *err, size_t errlen)
{
	struct subst_lists l = {env, secrets};
	struct buf b;
	const char *at;
	char var[256];
	int rc, secret = 0;

	buf_init(&b);
	if ((rc = var_expand(in, subst_lookup, &l, &b, &secret, &at, var)) == 0) {
		*out = buf_cstr(&b);
		return 0;
	}
	if (rc == -1)
		snprintf(err, errlen, "%s: bad variable reference \"%s\" (use ${NAME}, or $${ for a literal)", name,
		         log_esc(at, 40));
	else
		snprintf(err, errlen, "%s: ${%s} is not set", name, var);
	buf_free(&b);
	return -1;
}

static int subst_value(json_t *v, const struct kvlist *env, const struct kvlist *secrets, const char *name, char *err,
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

int subst_cfg(json_t *cfg, const struct kvlist *env, const struct kvlist *secrets, const char *name, char *err,
              size_t errlen)
{
	return subst_value(cfg, env, secrets, name, err, errlen, 0);
}
