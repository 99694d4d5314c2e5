/*
 * connections.c: `connection: "@family.alias"` in a step's cfg becomes the cfg's
 * `resolved_connection`: from osiris_connections.yaml in the run context
 * first, then from what the daemon resolved from daemon.connections_file
 * (the secret CONNECTIONS_SECRET of `prepare`). Secret fields join the mask.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* The run context's file: beside the manifest, else at the context root. */
void connections_prepare_context(struct worker *w)
{
	char *full, *name, err[512];
	struct buf text;
	int pass, rc, e;

	for (pass = 0; pass < 2; pass++) {
		if (pass == 1 && w->mdir[0] == '\0')
			break;
		xasprintf(&name, "%s%s", pass == 0 ? w->mdir : "", CONN_CONTEXT_FILE);
		xasprintf(&full, "%s/%s", w->ws, name);
		buf_init(&text);
		rc = file_read_all(full, WORKER_CFG_MAX, &text);
		e = errno;
		if (rc == 0 && conn_parse(name, (const char *)text.data, text.len, &w->conns_ctx, err, sizeof(err)) < 0)
			w->conns_err = xstrdup(err);
		else if (rc < 0 && e != ENOENT)
			xasprintf(&w->conns_err, "%s: %s", name, strerror(e));
		buf_free(&text);
		free(full);
		free(name);
		if (rc == 0 || e != ENOENT)
			break;
	}
}

/* The daemon's resolved connections, keyed by the reference as the cfg
 * writes it: {"@f.a": {"fields": {...}, "secret": [names]} | {"error": ".."}}.
 * Secret values are masked before anything about the run is said. */
void connections_prepare_daemon(struct worker *w, const struct kvlist *secrets)
{
	const char *text = kvlist_get(secrets, CONNECTIONS_SECRET), *ref, *k;
	json_t *e, *fields, *name;
	size_t i;

	if (text == NULL)
		return;
	w->conns_daemon = json_loads(text, 0, NULL);
	if (!json_is_object(w->conns_daemon)) {
		json_decref(w->conns_daemon);
		w->conns_daemon = NULL;
		w->conns_err = xstrdup("the daemon's resolved connections are malformed");
		return;
	}
	json_object_foreach(w->conns_daemon, ref, e)
	{
		fields = json_object_get(e, "fields");
		json_array_foreach(json_object_get(e, "secret"), i, name)
		{
			k = json_string_value(name);
			if (k != NULL && json_is_string(json_object_get(fields, k)))
				mask_add(w->mask, json_string_value(json_object_get(fields, k)));
		}
	}
}

void connections_cleanup(struct worker *w)
{
	json_decref(w->conns_ctx);
	json_decref(w->conns_daemon);
	w->conns_ctx = w->conns_daemon = NULL;
	free(w->conns_err);
	w->conns_err = NULL;
}

struct connections_lookup {
	struct worker *w;
	const char *refused; /* the daemon's error for a refused credential */
};

static const char *connections_lookup_cb(void *arg, const char *name, int *secret)
{
	struct connections_lookup *l = arg;
	const char *v;

	if ((v = kvlist_get(&l->w->secrets, name)) != NULL) {
		*secret = 1;
		return v;
	}
	if ((v = kvlist_get(&l->w->env, name)) == NULL)
		l->refused =
		    json_string_value(json_object_get(json_object_get(l->w->conns_daemon, CONNECTIONS_REFUSED), name));
	return v;
}

/* From the context file: 1 found (into *out), 0 absent, -1 error. */
static int connections_from_context(struct worker *w, const char *ref, const char *family, const char *alias,
                                    json_t **out, char *err, size_t errlen)
{
	struct connections_lookup l = {.w = w};
	const json_t *c;
	const char *found;
	json_t *secrets, *name;
	char what[256];
	size_t i;

	if (w->conns_ctx == NULL || (c = conn_find(w->conns_ctx, family, alias, &found)) == NULL)
		return 0;
	snprintf(what, sizeof(what), "connection %s (%s, alias '%s')", ref, CONN_CONTEXT_FILE, found);
	if ((*out = conn_resolve(c, what, connections_lookup_cb, &l, &secrets, err, errlen)) == NULL) {
		if (l.refused != NULL) /* why ${NAME} is not set: the daemon refused it */
			snprintf(err, errlen, "%s: %s", what, l.refused);
		return -1;
	}
	json_array_foreach(secrets, i, name)
	{
		json_t *v = json_object_get(*out, json_string_value(name));
		if (json_is_string(v))
			mask_add(w->mask, json_string_value(v));
	}
	json_decref(secrets);
	return 1;
}

int connections_resolve(struct worker *w, json_t *cfg, char *err, size_t errlen)
{
	json_t *conn = json_object_get(cfg, "connection"), *resolved = NULL, *e;
	const char *ref;
	char *family, *alias;
	int rc;

	if (conn == NULL || json_is_null(conn))
		return 0;
	ref = json_string_value(conn);
	if (ref == NULL || conn_ref_parse(ref, &family, &alias) < 0) {
		snprintf(err, errlen, "'connection' must be a string \"@family.alias\" or \"@family\"");
		return -1;
	}
	if (w->conns_err != NULL) {
		snprintf(err, errlen, "connection %s: %s", log_esc(ref, 100), w->conns_err);
		rc = -1;
	} else if ((rc = connections_from_context(w, ref, family, alias, &resolved, err, errlen)) == 0) {
		e = json_object_get(w->conns_daemon, ref);
		if (e == NULL) {
			if (alias != NULL)
				snprintf(err, errlen,
				         "connection %s: no alias '%s' in family '%s' (%s, daemon.connections_file)",
				         log_esc(ref, 100), log_esc(alias, 64), log_esc(family, 64), CONN_CONTEXT_FILE);
			else
				snprintf(err, errlen,
				         "connection %s: family '%s' has no default alias (default: true, or one named "
				         "default) (%s, daemon.connections_file)",
				         log_esc(ref, 100), log_esc(family, 64), CONN_CONTEXT_FILE);
			rc = -1;
		} else if (json_is_string(json_object_get(e, "error"))) {
			snprintf(err, errlen, "%s", json_string_value(json_object_get(e, "error")));
			rc = -1;
		} else {
			resolved = json_deep_copy(json_object_get(e, "fields"));
			rc = json_is_object(resolved) ? 1 : -1;
			if (rc < 0)
				snprintf(err, errlen, "connection %s: malformed entry from the daemon",
				         log_esc(ref, 100));
		}
	}
	free(family);
	free(alias);
	if (rc < 0) {
		json_decref(resolved);
		return -1;
	}
	json_object_set_new(cfg, "resolved_connection", resolved);
	return 0;
}
