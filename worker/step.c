/*
 * step.c: `exec_step`. Resolves the step's inputs from tables kept in
 * memory, substitutes its cfg (parsed by prepare), keeps the masked
 * artifacts/<step>/cleaned_config.json in memory, runs the driver, reports artifacts,
 * metrics and the outcome, and frees tables no remaining step needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"

struct step_run {
	struct worker *w;
	size_t idx;
	const struct manifest_step *s;
	const struct driver_ops *ops;
	char *cfg_name; /* workspace-relative cfg path, prefixes cfg errors */
	json_t *cfg;
	struct table **in;
	char **in_names;
	size_t nin;
	int64_t rows_in;
	struct driver_ctx ctx;
	struct table *out;
};

/* Keys whose values never reach cleaned_config.json (Osiris' list). */
static const char *const step_secret_keys[] = {"password",      "passwd",
                                               "pwd",           "token",
                                               "secret",        "secret_key",
                                               "service_key",   "service_role_key",
                                               "api_key",       "access_token",
                                               "refresh_token", "auth_token",
                                               "bearer_token",  "client_secret",
                                               "client_key",    "key",
                                               "dsn",           "connection_string",
                                               "anon_key",      NULL};

/* df_<id>; ids that sanitize alike get _<sha256(id)[:8]> like Osiris. */
static char *step_input_key(const struct manifest *m, const struct manifest_step *s, size_t j)
{
	char *name = step_input_name(s->needs[j]), *other, *out, hex[65];
	size_t k;
	int clash = 0;

	(void)m;
	for (k = 0; k < s->nneeds && !clash; k++) {
		if (k == j)
			continue;
		other = step_input_name(s->needs[k]);
		clash = strcmp(other, name) == 0;
		free(other);
	}
	if (!clash)
		return name;
	sha256_hex(s->needs[j], strlen(s->needs[j]), hex);
	xasprintf(&out, "%s_%.8s", name, hex);
	free(name);
	return out;
}

static int step_inputs(struct step_run *r)
{
	struct worker *w = r->w;
	size_t j;

	r->in = xcalloc(r->s->nneeds + 1, sizeof(*r->in));
	r->in_names = xcalloc(r->s->nneeds + 1, sizeof(*r->in_names));
	for (j = 0; j < r->s->nneeds; j++) {
		size_t k = r->s->need_idx[j];
		char *key = step_input_key(&w->m, r->s, j);
		if (w->state[k] != STEP_SUCCEEDED) {
			ctx_fail(&r->ctx, "ValueError", "input %s: step '%s' has not succeeded", key, r->s->needs[j]);
			free(key);
			return -1;
		}
		if (w->outputs[k] == NULL) {
			free(key); /* upstream produced no table (a writer): no input */
			continue;
		}
		struct evf f[] = {EVS("from_step", r->s->needs[j]), EVS("key", key), EVI("rows", w->outputs[k]->nrows),
		                  EVB("from_memory", 1)};
		emit_event(w, "inputs_resolved", r->s->id, f, sizeof(f) / sizeof(f[0]));
		r->rows_in += (int64_t)w->outputs[k]->nrows;
		r->in[r->nin] = w->outputs[k];
		r->in_names[r->nin++] = key;
	}
	return 0;
}

static int step_secret_key(const char *key)
{
	size_t i;

	for (i = 0; step_secret_keys[i] != NULL; i++)
		if (strcasecmp(step_secret_keys[i], key) == 0)
			return 1;
	return 0;
}

/* Replaced only when a secret is in it (no copy otherwise). */
static void step_mask_string(struct worker *w, json_t *s)
{
	const char *v = json_string_value(s);
	char *m;

	if (mask_count(w->mask) == 0 || !mask_hit(w->mask, v, strlen(v)))
		return;
	m = emit_mask(w, v);
	json_string_set(s, m);
	free(m);
}

static void step_mask_json(struct worker *w, json_t *v, unsigned depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (depth > 64)
		return;
	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if (json_is_string(child) && step_secret_key(key)) {
				json_string_set(child, "***");
			} else if (json_is_string(child)) {
				step_mask_string(w, child);
			} else {
				step_mask_json(w, child, depth + 1);
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			if (json_is_string(child)) {
				step_mask_string(w, child);
			} else {
				step_mask_json(w, child, depth + 1);
			}
		}
	}
}

/* artifacts/<step>/cleaned_config.json: the cfg the driver saw, minus the
 * metadata keys, with secret values masked. Made in memory: the file never
 * exists in the workspace (artifact.c lists it and sends it inline). */
/* Would step_mask_json change anything in v? */
static int step_has_secret(struct worker *w, json_t *v, unsigned depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (depth > 64)
		return 0;
	if (json_is_string(v))
		return mask_count(w->mask) > 0 && mask_hit(w->mask, json_string_value(v), strlen(json_string_value(v)));
	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if ((json_is_string(child) && step_secret_key(key)) || step_has_secret(w, child, depth + 1))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			if (step_has_secret(w, child, depth + 1))
				return 1;
		}
	}
	return 0;
}

/* cfg minus the metadata keys, as text of `len` bytes into a new in-memory
 * artifact (sized first, then written straight into its bytes). */
static void step_cleaned_dump(struct step_run *r, json_t *c, const char *rel)
{
	const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
	size_t len = json_dumpb(c, NULL, 0, flags);
	uint8_t *text;

	if (len == 0) {
		emit_logf(r->w, LOG_LVL_WARN, r->s->id, "%s: cannot serialise", rel);
		return;
	}
	text = artifact_mem_new(r->w, r->s->id, rel, len + 1);
	(void)json_dumpb(c, (char *)text, len, flags);
	text[len] = '\n';
}

static void step_cleaned_config(struct step_run *r)
{
	static const char *const meta[] = {"component", "connection"};
	json_t *c, *held[2];
	char *dir = NULL, *rel, small[256];
	const char *id = r->s->id;
	size_t i;

	if (!path_is_safe(id) || strchr(id, '/') != NULL)
		id = (dir = step_input_name(r->s->id)) + 3;
	rel = small;
	if ((size_t)snprintf(small, sizeof(small), "artifacts/%s/cleaned_config.json", id) >= sizeof(small))
		xasprintf(&rel, "artifacts/%s/cleaned_config.json", id);
	if (step_has_secret(r->w, r->cfg, 0)) {
		c = json_deep_copy(r->cfg);
		json_object_del(c, "component");
		json_object_del(c, "connection");
		step_mask_json(r->w, c, 0);
		step_cleaned_dump(r, c, rel);
		json_decref(c);
	} else {
		/* nothing to mask: no copy, the metadata keys are lifted out
		 * for the dump and put back (at the end: order means nothing
		 * to a driver) */
		for (i = 0; i < 2; i++)
			if ((held[i] = json_object_get(r->cfg, meta[i])) != NULL) {
				json_incref(held[i]);
				json_object_del(r->cfg, meta[i]);
			}
		step_cleaned_dump(r, r->cfg, rel);
		for (i = 0; i < 2; i++)
			if (held[i] != NULL)
				json_object_set_new(r->cfg, meta[i], held[i]);
	}
	free(dir);
	if (rel != small)
		free(rel);
}

static int step_cfg(struct step_run *r)
{
	struct worker *w = r->w;
	json_error_t je;
	struct buf text;
	const char *key;
	json_t *v;
	char *full, err[1024];

	xasprintf(&r->cfg_name, "%s%s", w->mdir, r->s->cfg_path);
	if (w->cfgs != NULL && w->cfgs[r->idx] != NULL) {
		/* parsed by prepare: no file read per step */
		r->cfg = w->cfgs[r->idx];
		w->cfgs[r->idx] = NULL;
		goto parsed;
	}
	xasprintf(&full, "%s/%s", w->ws, r->cfg_name);
	buf_init(&text);
	if (file_read_all(full, WORKER_CFG_MAX, &text) < 0) {
		free(full);
		buf_free(&text);
		return ctx_fail(&r->ctx, "ConfigError", "%s: %s", r->cfg_name, strerror(errno));
	}
	free(full);
	r->cfg = json_loadb((const char *)text.data, text.len, 0, &je);
	buf_free(&text);
	if (r->cfg == NULL || !json_is_object(r->cfg))
		return ctx_fail(&r->ctx, "ConfigError", "%s:%d: %s", r->cfg_name, je.line,
		                r->cfg ? "must be a JSON object" : log_esc(je.text, 160));
parsed:
	if (subst_cfg(r->cfg, &w->env, &w->secrets, r->cfg_name, err, sizeof(err)) < 0)
		return ctx_fail(&r->ctx, "ConfigError", "%s", err);
	json_object_foreach(r->cfg, key, v)
	{
		if (!driver_key_known(r->ops, key))
			emit_logf(w, LOG_LVL_WARN, r->s->id, "%s: unknown/unsupported key '%s' ignored", r->cfg_name,
			          key);
	}
	/* after the ${VAR} pass: resolved values are never substituted again */
	if (connections_resolve(w, r->cfg, err, sizeof(err)) < 0)
		return ctx_fail(&r->ctx, "ConnectionError", "%s", err);
	step_cleaned_config(r);
	return 0;
}

static int step_driver(struct step_run *r)
{
	int rc;

	if (worker_cancel)
		return ctx_fail(&r->ctx, "Cancelled", "cancelled");
	/* step_start leaves with the result, unless the driver runs long
	 * enough for a follower to wait for it: then it and what the driver
	 * says stream (rpc.c) */
	rpc_driver_begin(r->w);
	rc = r->ops->run(&r->ctx, r->cfg, r->in, (const char **)r->in_names, r->nin, &r->out);
	rpc_driver_end(r->w);
	if (rc < 0) {
		table_free(r->out);
		r->out = NULL;
		if (r->ctx.error[0] == '\0')
			ctx_fail(&r->ctx, "DriverError", "driver %s failed", r->ops->name);
		return -1;
	}
	return 0;
}

/* Tables whose consumers have all run are freed now, not at the end: step
 * idx has run, so its inputs have a consumer fewer; its own table goes at
 * once when nothing consumes it. */
static void step_free_unneeded(struct worker *w, size_t idx)
{
	const struct manifest_step *s = &w->m.steps[idx];
	size_t j, i;

	for (j = 0; j <= s->nneeds; j++) {
		i = j < s->nneeds ? s->need_idx[j] : idx;
		if (j < s->nneeds && w->consumers[i] > 0)
			w->consumers[i]--;
		if (w->consumers[i] == 0 && w->outputs[i] != NULL) {
			table_free(w->outputs[i]);
			w->outputs[i] = NULL;
		}
	}
}

static void step_report(struct step_run *r, struct step_result *res)
{
	struct worker *w = r->w;
	const char *sid = r->s->id;

	artifact_scan_step(w, sid);
	if (r->ctx.rows_read >= 0)
		emit_metric(w, "rows_read", sid, (double)r->ctx.rows_read);
	if (r->ctx.rows_written >= 0)
		emit_metric(w, "rows_written", sid, (double)r->ctx.rows_written);
	emit_metric(w, "step_duration_ms", sid, (double)res->duration_ms);
	if (res->state == STEP_SUCCEEDED) {
		struct evf f[] = {EVS("driver", r->s->driver), EVI("rows_in", res->rows_in),
		                  EVI("rows_out", res->rows_out), EVI("duration_ms", res->duration_ms)};
		emit_event(w, "step_complete", sid, f, sizeof(f) / sizeof(f[0]));
	} else {
		struct evf f[] = {EVS("driver", r->s->driver), EVS("error", res->error),
		                  EVS("error_type", res->error_type), EVI("duration_ms", res->duration_ms)};
		emit_event(w, "step_failed", sid, f, sizeof(f) / sizeof(f[0]));
	}
}

static void step_run_free(struct step_run *r)
{
	size_t i;

	for (i = 0; i < r->nin; i++)
		free(r->in_names[i]);
	free(r->in_names);
	free(r->in);
	json_decref(r->cfg);
	free(r->cfg_name);
}

static void step_execute(struct worker *w, size_t idx, struct step_result *res)
{
	struct step_run r;
	int64_t t0 = time_mono_us();
	int rc;

	memset(&r, 0, sizeof(r));
	r.w = w;
	r.idx = idx;
	r.s = &w->m.steps[idx];
	r.ops = driver_find(r.s->driver);
	driverctx_init(w, &r.ctx, r.s->id);
	w->state[idx] = STEP_RUNNING;
	{
		struct evf f[] = {EVS("driver", r.s->driver)};
		emit_event(w, "step_start", r.s->id, f, 1);
	}
	rc = step_inputs(&r);
	if (rc == 0)
		rc = step_cfg(&r);
	if (rc == 0)
		rc = step_driver(&r);
	if (r.ctx.rows_read < 0 && r.nin > 0)
		r.ctx.rows_read = r.rows_in;
	if (r.ctx.rows_written < 0 && r.out != NULL)
		r.ctx.rows_written = (int64_t)r.out->nrows;
	memset(res, 0, sizeof(*res));
	res->duration_ms = (time_mono_us() - t0) / 1000;
	res->rows_in = r.ctx.rows_read > 0 ? r.ctx.rows_read : 0;
	res->rows_out = r.ctx.rows_written > 0 ? r.ctx.rows_written : 0;
	if (rc == 0) {
		res->state = STEP_SUCCEEDED;
	} else {
		int cancelled = worker_cancel || strcmp(r.ctx.error_type, "Cancelled") == 0;
		res->state = cancelled ? STEP_CANCELLED : STEP_FAILED;
		res->error = emit_mask(w, r.ctx.error);
		res->error_type = xstrdup(cancelled ? "Cancelled" : r.ctx.error_type);
	}
	w->state[idx] = res->state;
	w->outputs[idx] = r.out;
	step_report(&r, res);
	step_run_free(&r);
	step_free_unneeded(w, idx);
}

/* Has a step of this run failed or been cancelled? (A cancel that came
 * before any did still runs the step, into a "cancelled" answer.) */
static int step_run_stopped(const struct worker *w)
{
	size_t i;

	for (i = 0; i < w->m.nsteps; i++)
		if (w->state[i] == STEP_FAILED || w->state[i] == STEP_CANCELLED)
			return 1;
	return 0;
}

void step_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	struct step_result res;
	msgpack_packer pk;
	struct buf b;
	char *id = NULL, err[256];
	size_t i;
	int skip = 0;

	if (!w->prepared || w->finished) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, w->finished ? "run already finished" : "not prepared");
		return;
	}
	if (mp_get_str(params, "step_id", &id) != 0) {
		free(id);
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "missing or non-string key 'step_id'");
		return;
	}
	for (i = 0; i < w->m.nsteps; i++)
		if (strcmp(w->m.steps[i].id, id) == 0)
			break;
	if (i == w->m.nsteps || w->state[i] != STEP_PENDING) {
		snprintf(err, sizeof(err), i == w->m.nsteps ? "unknown step '%s'" : "step '%s' already executed",
		         log_esc(id, 64));
		rpc_reply_error(w, msgid, i == w->m.nsteps ? ERR_NOT_FOUND : ERR_INVALID_REQUEST, err);
		free(id);
		return;
	}
	free(id);
	if (mp_get_bool(params, "skip_if_failed", &skip) < 0) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "key 'skip_if_failed' must be a boolean");
		return;
	}
	if (skip && step_run_stopped(w)) {
		/* a pipelined exec_step behind a failure (the daemon asked):
		 * nothing after a failed or cancelled step runs, nothing is
		 * reported */
		memset(&res, 0, sizeof(res));
		res.state = STEP_SKIPPED;
	} else {
		step_execute(w, i, &res);
		w->results[i] = res;
		w->results[i].error = res.error != NULL ? xstrdup(res.error) : NULL;
		w->results[i].error_type = res.error_type != NULL ? xstrdup(res.error_type) : NULL;
	}
	rpc_reply_begin(&b, &pk, msgid);
	step_result_pack(&pk, &res);
	rpc_reply_end(w, &b);
	step_result_free(&res);
}
