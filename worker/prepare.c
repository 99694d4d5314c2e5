/*
 * prepare.c: `prepare` and `reset`. Prepare unpacks the run context into a
 * private workspace, parses and checks the manifest and every cfg, installs
 * env and secrets (secrets also feed the mask applied to everything the
 * worker emits) and announces run_start. Reset forgets all of it so that
 * the process can serve another run (local.worker_max_runs > 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

/* Take the run's variables out of the process environment, then free
 * the list, overwriting the values first: a later run on this process
 * (reuse) must not find them through getenv, nor in the strings setenv or
 * the list left allocated. */
static void prepare_unsetenv(struct kvlist *l)
{
	size_t i;
	char *v;

	for (i = 0; i < l->n; i++) {
		if ((v = getenv(l->v[i].key)) != NULL)
			explicit_bzero(v, strlen(v));
		unsetenv(l->v[i].key);
	}
	kvlist_wipe(l);
}

void prepare_cleanup(struct worker *w)
{
	size_t i;

	if (ws_remove(w) < 0)
		log_warn("cannot remove the workspace %s", w->ws);
	watch_forget(&w->watch);
	if (w->ws_fd >= 0)
		close(w->ws_fd);
	w->ws_fd = -1;
	free(w->ws);
	w->ws = NULL;
	for (i = 0; w->outputs != NULL && i < w->m.nsteps; i++)
		table_free(w->outputs[i]);
	for (i = 0; w->cfgs != NULL && i < w->m.nsteps; i++)
		json_decref(w->cfgs[i]);
	free(w->cfgs);
	w->cfgs = NULL;
	artifact_mem_free(w);
	buf_free(&w->emit_data);
	buf_free(&w->emit_out);
	free(w->outputs);
	w->outputs = NULL;
	free(w->consumers);
	w->consumers = NULL;
	free(w->state);
	w->state = NULL;
	for (i = 0; w->results != NULL && i < w->m.nsteps; i++)
		step_result_free(&w->results[i]);
	free(w->results);
	w->results = NULL;
	manifest_free(&w->m);
	connections_cleanup(w);
	prepare_unsetenv(&w->env);
	prepare_unsetenv(&w->secrets);
	kvlist_free(&w->attr);
	snap_free(&w->base);
	snap_free(&w->cur);
	free(w->run_id);
	w->run_id = NULL;
	free(w->mdir);
	w->mdir = NULL;
	w->prepared = 0;
}

static int prepare_workspace(struct worker *w, struct msg_prepare *p, struct bundle *loaded, char *err, size_t errlen)
{
	if (p->bundle_path == NULL)
		return ws_create(w, &p->bundle, err, errlen);
	size_t n = strlen(w->workdir);

	if (bundle_load(loaded, p->bundle_path, w->max_context, err, errlen) < 0)
		return -1;
	/* A bundle staged in our own directory (the local pool links the
	 * stored one there) is consumed: mapped, so its path can go before
	 * any step runs. */
	if (strncmp(p->bundle_path, w->workdir, n) == 0 && p->bundle_path[n] == '/' &&
	    strchr(p->bundle_path + n + 1, '/') == NULL && unlink(p->bundle_path) < 0)
		log_warn("cannot remove the staged bundle %s", p->bundle_path);
	return ws_create(w, loaded, err, errlen);
}

/* A workspace file, relative to the workspace: from the bundle just
 * unpacked (the last entry of that path is what the disk holds), else
 * from the disk. */
static int prepare_read(struct worker *w, const struct bundle *b, const char *rel, struct buf *out, char *err,
                        size_t errlen)
{
	char *full;
	size_t i;
	int rc;

	buf_init(out);
	for (i = b->n; i-- > 0;) {
		if (strcmp(b->files[i].path, rel) != 0)
			continue;
		if (b->files[i].len > WORKER_CFG_MAX) {
			snprintf(err, errlen, "%s: larger than 16 MiB", rel);
			return -1;
		}
		buf_add(out, b->files[i].data, b->files[i].len);
		return 0;
	}
	xasprintf(&full, "%s/%s", w->ws, rel);
	buf_init(out);
	rc = file_read_all(full, WORKER_CFG_MAX, out);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", rel, errno == EFBIG ? "larger than 16 MiB" : strerror(errno));
	free(full);
	return rc;
}

static int prepare_driver_known_cb(const char *name, void *arg)
{
	(void)arg;
	return driver_known(name);
}

static int prepare_manifest(struct worker *w, const struct bundle *b, const char *manifest, char *err, size_t errlen)
{
	static const struct manifest_drivers drivers = {prepare_driver_known_cb, NULL};
	const char *slash = strrchr(manifest, '/');
	struct buf text;
	size_t i;
	int rc;

	if (!path_is_safe(manifest)) {
		snprintf(err, errlen, "manifest path \"%s\" is absolute or escapes the run context",
		         log_esc(manifest, 200));
		return -1;
	}
	w->mdir = slash ? xstrndup(manifest, (size_t)(slash - manifest) + 1) : xstrdup("");
	if (prepare_read(w, b, manifest, &text, err, errlen) < 0)
		return -1;
	rc = manifest_parse(&w->m, (const char *)text.data, text.len, &drivers, err, errlen);
	buf_free(&text);
	if (rc == 0)
		w->cfgs = xcalloc(w->m.nsteps, sizeof(*w->cfgs));
	for (i = 0; rc == 0 && i < w->m.nsteps; i++) {
		char *cfg;
		xasprintf(&cfg, "%s%s", w->mdir, w->m.steps[i].cfg_path);
		rc = prepare_read(w, b, cfg, &text, err, errlen);
		/* kept for the step: it reads no file */
		if (rc == 0)
			rc = manifest_cfg_load(cfg, (const char *)text.data, text.len, &w->cfgs[i], err, errlen);
		buf_free(&text);
		free(cfg);
	}
	return rc;
}

static void prepare_env(struct worker *w, const struct msg_prepare *p)
{
	size_t i;

	for (i = 0; i < p->env.n; i++) {
		kvlist_add(&w->env, p->env.v[i].key, p->env.v[i].value);
		setenv(p->env.v[i].key, p->env.v[i].value, 1);
	}
	for (i = 0; i < p->secrets.n; i++) {
		if (strcmp(p->secrets.v[i].key, CONNECTIONS_SECRET) == 0)
			continue; /* for connections.c only, not for drivers or cfgs */
		kvlist_add(&w->secrets, p->secrets.v[i].key, p->secrets.v[i].value);
		setenv(p->secrets.v[i].key, p->secrets.v[i].value, 1);
	}
}

static void prepare_reply(struct worker *w, uint32_t msgid)
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
	msgpack_pack_map(&pk, 3);
	mp_pack_kint(&pk, "steps", (int64_t)w->m.nsteps);
	/* this worker honours exec_step's skip_if_failed, so the daemon may
	 * send the next exec_step before the current one answers */
	mp_pack_key(&pk, "pipeline");
	msgpack_pack_true(&pk);
	/* where the files are, for a daemon that fetches big artifacts itself */
	mp_pack_kstr(&pk, "workspace", w->ws);
	rpc_reply_end(w, &b);
}

void prepare_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	struct msg_prepare p;
	struct bundle loaded;
	enum rpc_err code = ERR_INVALID_REQUEST;
	char err[1024];
	size_t i;

	memset(&loaded, 0, sizeof(loaded));
	if (w->prepared) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "already prepared: `reset` first");
		return;
	}
	if (msg_prepare_decode(params, &p, w->max_context, err, sizeof(err)) < 0) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, err);
		return;
	}
	/* the mask first: nothing about this run may be said before it exists */
	for (i = 0; i < p.secrets.n; i++)
		if (strcmp(p.secrets.v[i].key, CONNECTIONS_SECRET) != 0)
			mask_add(w->mask, p.secrets.v[i].value);
	connections_prepare_daemon(w, &p.secrets);
	if (prepare_workspace(w, &p, &loaded, err, sizeof(err)) < 0)
		goto fail;
	code = ERR_INVALID_MANIFEST;
	if (prepare_manifest(w, p.bundle_path != NULL ? &loaded : &p.bundle, p.manifest ? p.manifest : "manifest.yaml",
	                     err, sizeof(err)) < 0)
		goto fail;
	bundle_free(&loaded);
	w->run_id = xstrdup(p.run_id);
	prepare_env(w, &p);
	connections_prepare_context(w);
	w->outputs = xcalloc(w->m.nsteps, sizeof(*w->outputs));
	w->state = xcalloc(w->m.nsteps, sizeof(*w->state));
	w->results = xcalloc(w->m.nsteps, sizeof(*w->results));
	w->consumers = xcalloc(w->m.nsteps, sizeof(*w->consumers));
	for (i = 0; i < w->m.nsteps; i++)
		for (size_t j = 0; j < w->m.steps[i].nneeds; j++)
			w->consumers[w->m.steps[i].need_idx[j]]++;
	/* the base listing came from unpacking (workspace.c) */
	snap_copy(&w->cur, &w->base);
	w->prepared = 1;
	w->runs++;
	msg_prepare_free(&p);
	prepare_reply(w, msgid);
	return;
fail:
	bundle_free(&loaded);
	msg_prepare_free(&p);
	prepare_cleanup(w);
	rpc_reply_error(w, msgid, code, err);
}

/* Back to the state of a fresh process: no workspace, tables, env,
 * secrets, mask, journal; seq restarts at 1. */
void prepare_reset_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	msgpack_packer pk;
	struct buf b;

	(void)params;
	if (w->forked) {
		/* A zygote's child: the run is over, so is the process. The
		 * zygote removes the workspace and announces `ready`; nothing
		 * after this answer is read here. */
		rpc_reply_begin(&b, &pk, msgid);
		msgpack_pack_map(&pk, 0);
		rpc_reply_end(w, &b);
		rpc_flush(w);
		_exit(0);
	}
	prepare_cleanup(w);
	w->finished = 0;
	w->seq = 0;
	w->last_poll_us = 0;
	worker_cancel = 0;
	journal_clear(&w->journal);
	mask_free(w->mask);
	w->mask = mask_new();
	/* the previous prepare message (secrets) may linger past the data */
	if (w->in_hwm > w->in.len)
		explicit_bzero(w->in.data + w->in.len, w->in_hwm - w->in.len);
	w->in_hwm = w->in.len;
	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 0);
	rpc_reply_end(w, &b);
}
