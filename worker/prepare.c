/*
 * prepare.c: `prepare`. Unpacks the run context into a private workspace,
 * parses and checks the manifest and every cfg, installs env and secrets
 * (secrets also feed the mask applied to everything the worker emits) and
 * announces run_start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

void
prepare_cleanup(struct worker *w)
{
	size_t i;

	if (w->ws != NULL && rmtree(w->ws) < 0)
		log_warn("rmtree %s", w->ws);
	free(w->ws);
	w->ws = NULL;
	for (i = 0; w->outputs != NULL && i < w->m.nsteps; i++)
		table_free(w->outputs[i]);
	free(w->outputs);
	w->outputs = NULL;
	free(w->state);
	w->state = NULL;
	manifest_free(&w->m);
	kvlist_free(&w->env);
	kvlist_free(&w->secrets);
	kvlist_free(&w->attr);
	snap_free(&w->base);
	snap_free(&w->cur);
	free(w->run_id);
	w->run_id = NULL;
	free(w->mdir);
	w->mdir = NULL;
	w->prepared = 0;
}

static int
prepare_workspace(struct worker *w, struct msg_prepare *p, char *err, size_t errlen)
{
	struct bundle loaded;
	char *tmpl;
	int rc;

	xasprintf(&tmpl, "%s/osiris-ws-XXXXXX", w->workdir);
	if (mkdtemp(tmpl) == NULL) {
		snprintf(err, errlen, "workspace %s: %s", tmpl, strerror(errno));
		free(tmpl);
		return -1;
	}
	w->ws = tmpl;
	if (p->bundle_path == NULL)
		return bundle_extract(&p->bundle, w->ws, err, errlen);
	memset(&loaded, 0, sizeof(loaded));
	if (bundle_load(&loaded, p->bundle_path, w->max_context, err, errlen) < 0)
		return -1;
	rc = bundle_extract(&loaded, w->ws, err, errlen);
	bundle_free(&loaded);
	return rc;
}

/* Read a workspace file whose path is relative to the workspace. */
static int
prepare_read(struct worker *w, const char *rel, struct buf *out, char *err, size_t errlen)
{
	char *full;
	int rc;

	xasprintf(&full, "%s/%s", w->ws, rel);
	buf_init(out);
	rc = file_read_all(full, WORKER_CFG_MAX, out);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", rel, errno == EFBIG ? "larger than 16 MiB" : strerror(errno));
	free(full);
	return rc;
}

static int
prepare_manifest(struct worker *w, const char *manifest, char *err, size_t errlen)
{
	const char *slash = strrchr(manifest, '/');
	struct buf text;
	size_t i;
	int rc;

	if (!path_is_safe(manifest)) {
		snprintf(err, errlen, "manifest path \"%s\" is absolute or escapes the run context", log_esc(manifest, 200));
		return -1;
	}
	w->mdir = slash ? xstrndup(manifest, (size_t)(slash - manifest) + 1) : xstrdup("");
	if (prepare_read(w, manifest, &text, err, errlen) < 0)
		return -1;
	rc = manifest_parse(&w->m, (const char *)text.data, text.len, driver_known, err, errlen);
	buf_free(&text);
	for (i = 0; rc == 0 && i < w->m.nsteps; i++) {
		char *cfg;
		xasprintf(&cfg, "%s%s", w->mdir, w->m.steps[i].cfg_path);
		rc = prepare_read(w, cfg, &text, err, errlen);
		if (rc == 0)
			rc = manifest_cfg_check(cfg, (const char *)text.data, text.len, err, errlen);
		buf_free(&text);
		free(cfg);
	}
	return rc;
}

static void
prepare_env(struct worker *w, const struct msg_prepare *p)
{
	size_t i;

	for (i = 0; i < p->env.n; i++) {
		kvlist_add(&w->env, p->env.v[i].key, p->env.v[i].value);
		setenv(p->env.v[i].key, p->env.v[i].value, 1);
	}
	for (i = 0; i < p->secrets.n; i++) {
		kvlist_add(&w->secrets, p->secrets.v[i].key, p->secrets.v[i].value);
		setenv(p->secrets.v[i].key, p->secrets.v[i].value, 1);
	}
}

static void
prepare_reply(struct worker *w, uint32_t msgid)
{
	struct evf f[] = {
	    EVS("run_id", w->run_id),
	    EVS("pipeline_id", w->m.pipeline_id),
	    EVI("steps", w->m.nsteps),
	};
	msgpack_packer pk;
	struct buf b;

	emit_event(w, "run_start", NULL, f, sizeof(f) / sizeof(f[0]));
	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 1);
	mp_pack_kint(&pk, "steps", (int64_t)w->m.nsteps);
	rpc_reply_end(w, &b);
}

void
prepare_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	struct msg_prepare p;
	enum rpc_err code = ERR_INVALID_REQUEST;
	char err[1024];
	size_t i;

	if (w->prepared) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "already prepared: one run per worker");
		return;
	}
	if (msg_prepare_decode(params, &p, w->max_context, err, sizeof(err)) < 0) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, err);
		return;
	}
	/* the mask first: nothing about this run may be said before it exists */
	for (i = 0; i < p.secrets.n; i++)
		mask_add(w->mask, p.secrets.v[i].value);
	if (prepare_workspace(w, &p, err, sizeof(err)) < 0)
		goto fail;
	code = ERR_INVALID_MANIFEST;
	if (prepare_manifest(w, p.manifest ? p.manifest : "manifest.yaml", err, sizeof(err)) < 0)
		goto fail;
	w->run_id = xstrdup(p.run_id);
	prepare_env(w, &p);
	w->outputs = xcalloc(w->m.nsteps, sizeof(*w->outputs));
	w->state = xcalloc(w->m.nsteps, sizeof(*w->state));
	if (snap_take(w->ws, &w->base) < 0 || snap_take(w->ws, &w->cur) < 0) {
		code = ERR_INTERNAL;
		snprintf(err, sizeof(err), "workspace scan: %s", strerror(errno));
		goto fail;
	}
	w->prepared = 1;
	msg_prepare_free(&p);
	prepare_reply(w, msgid);
	return;
fail:
	msg_prepare_free(&p);
	prepare_cleanup(w);
	rpc_reply_error(w, msgid, code, err);
}
