/*
 * msg.c: typed encode/decode of every message body of both protocols
 * (PROTOCOL.md §3, §4). Decoders own what they return and clean up after
 * themselves on error, so a failed decode leaves a zeroed struct.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define DEFAULT_MANIFEST "manifest.yaml"
#define DEFAULT_BACKEND "local"
/* 9999-12-31T23:59:59.999Z: the last time the wire format can express */
#define MSG_TIME_MAX 253402300799999LL

static int msg_is_map(const msgpack_object *o, const char *what, char *err, size_t errlen)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
		rpc_err_printf(err, errlen, "%s must be a map", what);
		return 0;
	}
	return 1;
}

/* Required string: missing/nil and wrong type are both errors. */
static int msg_need_str(const msgpack_object *map, const char *key, char **out, char *err, size_t errlen)
{
	int r = mp_get_str(map, key, out);

	if (r == 1)
		rpc_err_printf(err, errlen, "missing key '%s'", key);
	else if (r == -1)
		rpc_err_printf(err, errlen, "key '%s' must be a string", key);
	return r == 0 ? 0 : -1;
}

/* Optional string: *out keeps `def` (duplicated, may be NULL) when absent. */
static int msg_opt_str(const msgpack_object *map, const char *key, char **out, const char *def, char *err,
                       size_t errlen)
{
	int r = mp_get_str(map, key, out);

	if (r == -1) {
		rpc_err_printf(err, errlen, "key '%s' must be a string", key);
		return -1;
	}
	if (r == 1)
		*out = def != NULL ? xstrdup(def) : NULL;
	return 0;
}

static int msg_need_int(const msgpack_object *map, const char *key, int64_t *out, char *err, size_t errlen)
{
	int r = mp_get_int(map, key, out);

	if (r == 1)
		rpc_err_printf(err, errlen, "missing key '%s'", key);
	else if (r == -1)
		rpc_err_printf(err, errlen, "key '%s' must be an integer", key);
	return r == 0 ? 0 : -1;
}

static int msg_opt_int(const msgpack_object *map, const char *key, int64_t *out, char *err, size_t errlen)
{
	if (mp_get_int(map, key, out) == -1) {
		rpc_err_printf(err, errlen, "key '%s' must be an integer", key);
		return -1;
	}
	return 0;
}

/* Times: nil when unset, else an ISO-8601 UTC string with milliseconds. */
static void msg_pack_ktime(msgpack_packer *pk, const char *key, int64_t ms)
{
	char iso[32];

	mp_pack_key(pk, key);
	if (ms == 0) {
		msgpack_pack_nil(pk);
		return;
	}
	time_iso8601(ms, iso, sizeof(iso));
	mp_pack_str(pk, iso);
}

/* Absent or nil -> 0; an ISO string; an integer (ms) is tolerated. */
static int msg_opt_time(const msgpack_object *map, const char *key, int64_t *out, char *err, size_t errlen)
{
	const msgpack_object *o = mp_get(map, key);
	char iso[40];

	*out = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size < sizeof(iso)) {
		memcpy(iso, o->via.str.ptr, o->via.str.size);
		iso[o->via.str.size] = '\0';
		if (strlen(iso) == o->via.str.size && time_parse_iso8601(iso, out) == 0 && *out >= 0)
			return 0;
	}
	if (mp_get_int(map, key, out) == 0 && *out >= 0 && *out <= MSG_TIME_MAX)
		return 0;
	*out = 0;
	rpc_err_printf(err, errlen, "key '%s' must be an ISO-8601 time or nil", key);
	return -1;
}

static void msg_pack_strv(msgpack_packer *pk, char *const *v, size_t n)
{
	size_t i;

	msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++)
		mp_pack_str(pk, v[i]);
}

/* Absent/nil -> empty; else an array of strings. */
static int msg_opt_strv(const msgpack_object *map, const char *key, char ***out, size_t *nout, char *err, size_t errlen)
{
	const msgpack_object *o = mp_get(map, key);
	uint32_t i;

	*out = NULL;
	*nout = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		goto bad;
	for (i = 0; i < o->via.array.size; i++) {
		const msgpack_object *s = &o->via.array.ptr[i];
		if (s->type != MSGPACK_OBJECT_STR || memchr(s->via.str.ptr, '\0', s->via.str.size) != NULL)
			goto bad;
	}
	if (o->via.array.size > 0)
		*out = xcalloc(o->via.array.size, sizeof(char *));
	for (i = 0; i < o->via.array.size; i++)
		(*out)[i] = mp_strdup(&o->via.array.ptr[i]);
	*nout = o->via.array.size;
	return 0;
bad:
	rpc_err_printf(err, errlen, "key '%s' must be an array of strings", key);
	return -1;
}

static void msg_free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* kvlist ----------------------------------------------------------------- */

void kvlist_add(struct kvlist *l, const char *key, const char *value)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n].key = xstrdup(key);
	l->v[l->n].value = xstrdup(value);
	l->n++;
}

const char *kvlist_get(const struct kvlist *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return l->v[i].value;
	return NULL;
}

void kvlist_free(struct kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kvlist_wipe(struct kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].value != NULL)
			explicit_bzero(l->v[i].value, strlen(l->v[i].value));
	kvlist_free(l);
}

void kvlist_pack(msgpack_packer *pk, const struct kvlist *l)
{
	size_t i;

	msgpack_pack_map(pk, l->n);
	for (i = 0; i < l->n; i++)
		mp_pack_kstr(pk, l->v[i].key, l->v[i].value);
}

static int kvlist_str_ok(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR && memchr(o->via.str.ptr, '\0', o->via.str.size) == NULL;
}

int kvlist_decode(const msgpack_object *o, struct kvlist *l, char *err, size_t errlen)
{
	uint32_t i;

	l->v = NULL;
	l->n = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type != MSGPACK_OBJECT_MAP) {
		rpc_err_printf(err, errlen, "expected a map of strings");
		return -1;
	}
	for (i = 0; i < o->via.map.size; i++) {
		if (!kvlist_str_ok(&o->via.map.ptr[i].key) || !kvlist_str_ok(&o->via.map.ptr[i].val)) {
			rpc_err_printf(err, errlen, "expected a map of strings (entry %u)", i);
			return -1;
		}
	}
	if (o->via.map.size > 0)
		l->v = xcalloc(o->via.map.size, sizeof(*l->v));
	for (i = 0; i < o->via.map.size; i++) {
		l->v[i].key = mp_strdup(&o->via.map.ptr[i].key);
		l->v[i].value = mp_strdup(&o->via.map.ptr[i].val);
	}
	l->n = o->via.map.size;
	return 0;
}

/* kvlist under a key, with the key named in the error. */
static int msg_opt_kvlist(const msgpack_object *map, const char *key, struct kvlist *l, char *err, size_t errlen)
{
	char sub[160];

	if (kvlist_decode(mp_get(map, key), l, sub, sizeof(sub)) == -1) {
		rpc_err_printf(err, errlen, "key '%s': %s", key, sub);
		return -1;
	}
	return 0;
}

/* hello ------------------------------------------------------------------ */

void msg_hello_pack(msgpack_packer *pk, const struct msg_hello *m, int is_result)
{
	msgpack_pack_map(pk, is_result ? 3 : 2);
	mp_pack_kstr(pk, is_result ? "daemon" : "client", m->sender);
	mp_pack_kint(pk, "protocol", m->protocol);
	if (is_result) {
		mp_pack_key(pk, "capabilities");
		msg_pack_strv(pk, m->capabilities, m->ncapabilities);
	}
}

int msg_hello_decode(const msgpack_object *o, struct msg_hello *m, int is_result, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (!msg_is_map(o, "hello", err, errlen))
		return -1;
	if (msg_need_str(o, is_result ? "daemon" : "client", &m->sender, err, errlen) == -1 ||
	    msg_need_int(o, "protocol", &m->protocol, err, errlen) == -1 ||
	    msg_opt_strv(o, "capabilities", &m->capabilities, &m->ncapabilities, err, errlen) == -1) {
		msg_hello_free(m);
		return -1;
	}
	return 0;
}

void msg_hello_free(struct msg_hello *m)
{
	free(m->sender);
	msg_free_strv(m->capabilities, m->ncapabilities);
	memset(m, 0, sizeof(*m));
}

/* run.submit ------------------------------------------------------------- */

void msg_submit_pack(msgpack_packer *pk, const struct msg_submit *m)
{
	msg_submit_pack_head(pk);
	bundle_pack(pk, &m->bundle);
	msg_submit_pack_tail(pk, m);
}

/* The bundle comes first: a client can send the head, then the bundle's
 * bytes from where they lie (bundle_write_fd), then the tail. */
void msg_submit_pack_head(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 7);
	mp_pack_key(pk, "bundle");
}

void msg_submit_pack_tail(msgpack_packer *pk, const struct msg_submit *m)
{
	mp_pack_kstr(pk, "manifest", m->manifest != NULL ? m->manifest : DEFAULT_MANIFEST);
	mp_pack_kstr(pk, "backend", m->backend != NULL ? m->backend : DEFAULT_BACKEND);
	mp_pack_key(pk, "env");
	kvlist_pack(pk, &m->env);
	mp_pack_key(pk, "secrets");
	kvlist_pack(pk, &m->secrets);
	mp_pack_key(pk, "labels");
	kvlist_pack(pk, &m->labels);
	mp_pack_kint(pk, "priority", m->priority);
}

int msg_submit_decode(const msgpack_object *o, struct msg_submit *m, size_t max_bytes, enum rpc_err *code, char *err,
                      size_t errlen)
{
	const msgpack_object *b;

	memset(m, 0, sizeof(*m));
	*code = ERR_INVALID_REQUEST;
	if (!msg_is_map(o, "run.submit params", err, errlen))
		return -1;
	if ((b = mp_get(o, "bundle")) == NULL || b->type == MSGPACK_OBJECT_NIL) {
		rpc_err_printf(err, errlen, "missing key 'bundle'");
		return -1;
	}
	if (bundle_decode(b, &m->bundle, max_bytes, code, err, errlen) == -1)
		goto fail;
	*code = ERR_INVALID_REQUEST;
	if (msg_opt_str(o, "manifest", &m->manifest, DEFAULT_MANIFEST, err, errlen) == -1 ||
	    msg_opt_str(o, "backend", &m->backend, DEFAULT_BACKEND, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "env", &m->env, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "secrets", &m->secrets, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "labels", &m->labels, err, errlen) == -1 ||
	    msg_opt_int(o, "priority", &m->priority, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	msg_submit_free(m);
	return -1;
}

void msg_submit_free(struct msg_submit *m)
{
	bundle_free(&m->bundle);
	free(m->manifest);
	free(m->backend);
	kvlist_free(&m->env);
	kvlist_wipe(&m->secrets);
	kvlist_free(&m->labels);
	memset(m, 0, sizeof(*m));
}

/* run and step objects --------------------------------------------------- */

static void step_info_pack(msgpack_packer *pk, const struct step_info *s)
{
	msgpack_pack_map(pk, 10);
	mp_pack_kstr(pk, "id", s->id);
	mp_pack_kstr(pk, "driver", s->driver);
	mp_pack_kstr(pk, "state", step_state_name(s->state));
	mp_pack_kint(pk, "rows_in", s->rows_in);
	mp_pack_kint(pk, "rows_out", s->rows_out);
	mp_pack_kint(pk, "duration_ms", s->duration_ms);
	msg_pack_ktime(pk, "started_at", s->started_at);
	msg_pack_ktime(pk, "finished_at", s->finished_at);
	mp_pack_kstr(pk, "error", s->error);
	mp_pack_kstr(pk, "error_type", s->error_type);
}

/* The "state" key, parsed as a run state (run != 0) or a step state. */
static int msg_state_key(const msgpack_object *map, int run, int *out, char *err, size_t errlen)
{
	enum run_state rs = RUN_QUEUED;
	enum step_state ss = STEP_PENDING;
	char *s = NULL;
	int r;

	if (msg_need_str(map, "state", &s, err, errlen) == -1)
		return -1;
	r = run ? run_state_parse(s, &rs) : step_state_parse(s, &ss);
	if (r == -1)
		rpc_err_printf(err, errlen, "unknown %s state '%s'", run ? "run" : "step", log_esc(s, 32));
	*out = run ? (int)rs : (int)ss;
	free(s);
	return r;
}

static int step_info_decode(const msgpack_object *o, struct step_info *s, char *err, size_t errlen)
{
	int st = 0;

	memset(s, 0, sizeof(*s));
	if (!msg_is_map(o, "step", err, errlen))
		return -1;
	if (msg_need_str(o, "id", &s->id, err, errlen) == -1 || msg_state_key(o, 0, &st, err, errlen) == -1 ||
	    msg_opt_str(o, "driver", &s->driver, NULL, err, errlen) == -1 ||
	    msg_opt_int(o, "rows_in", &s->rows_in, err, errlen) == -1 ||
	    msg_opt_int(o, "rows_out", &s->rows_out, err, errlen) == -1 ||
	    msg_opt_int(o, "duration_ms", &s->duration_ms, err, errlen) == -1 ||
	    msg_opt_time(o, "started_at", &s->started_at, err, errlen) == -1 ||
	    msg_opt_time(o, "finished_at", &s->finished_at, err, errlen) == -1 ||
	    msg_opt_str(o, "error", &s->error, NULL, err, errlen) == -1 ||
	    msg_opt_str(o, "error_type", &s->error_type, NULL, err, errlen) == -1) {
		step_info_free(s);
		return -1;
	}
	s->state = (enum step_state)st;
	return 0;
}

void step_info_free(struct step_info *s)
{
	free(s->id);
	free(s->driver);
	free(s->error);
	free(s->error_type);
	memset(s, 0, sizeof(*s));
}

void run_info_pack(msgpack_packer *pk, const struct run_info *r, int with_steps)
{
	size_t i;

	msgpack_pack_map(pk, with_steps ? 17 : 16);
	mp_pack_kstr(pk, "id", r->id);
	mp_pack_kstr(pk, "state", run_state_name(r->state));
	mp_pack_kstr(pk, "pipeline", r->pipeline);
	mp_pack_kstr(pk, "backend", r->backend);
	mp_pack_kstr(pk, "worker", r->worker);
	mp_pack_kint(pk, "uid", r->uid);
	mp_pack_kint(pk, "priority", r->priority);
	mp_pack_key(pk, "exit_code");
	if (r->has_exit_code)
		msgpack_pack_int64(pk, r->exit_code);
	else
		msgpack_pack_nil(pk);
	mp_pack_kstr(pk, "error", r->error);
	msg_pack_ktime(pk, "submitted_at", r->submitted_at);
	msg_pack_ktime(pk, "started_at", r->started_at);
	msg_pack_ktime(pk, "finished_at", r->finished_at);
	mp_pack_kint(pk, "last_seq", r->last_seq);
	mp_pack_key(pk, "labels");
	kvlist_pack(pk, &r->labels);
	mp_pack_key(pk, "env");
	kvlist_pack(pk, &r->env);
	mp_pack_key(pk, "secrets");
	msg_pack_strv(pk, r->secret_names, r->nsecret_names);
	if (!with_steps)
		return;
	mp_pack_key(pk, "steps");
	msgpack_pack_array(pk, r->nsteps);
	for (i = 0; i < r->nsteps; i++)
		step_info_pack(pk, &r->steps[i]);
}

static int run_info_decode_steps(const msgpack_object *o, struct run_info *r, char *err, size_t errlen)
{
	const msgpack_object *s = mp_get(o, "steps");
	uint32_t i;

	if (s == NULL || s->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (s->type != MSGPACK_OBJECT_ARRAY) {
		rpc_err_printf(err, errlen, "key 'steps' must be an array");
		return -1;
	}
	if (s->via.array.size > 0)
		r->steps = xcalloc(s->via.array.size, sizeof(*r->steps));
	for (i = 0; i < s->via.array.size; i++) {
		if (step_info_decode(&s->via.array.ptr[i], &r->steps[i], err, errlen) == -1)
			return -1;
		r->nsteps++;
	}
	return 0;
}

int run_info_decode(const msgpack_object *o, struct run_info *r, char *err, size_t errlen)
{
	const msgpack_object *ec;
	int st = 0;

	memset(r, 0, sizeof(*r));
	if (!msg_is_map(o, "run", err, errlen))
		return -1;
	if (msg_need_str(o, "id", &r->id, err, errlen) == -1 || msg_state_key(o, 1, &st, err, errlen) == -1 ||
	    msg_opt_str(o, "pipeline", &r->pipeline, NULL, err, errlen) == -1 ||
	    msg_opt_str(o, "backend", &r->backend, NULL, err, errlen) == -1 ||
	    msg_opt_str(o, "worker", &r->worker, NULL, err, errlen) == -1 ||
	    msg_opt_str(o, "error", &r->error, NULL, err, errlen) == -1 ||
	    msg_opt_int(o, "uid", &r->uid, err, errlen) == -1 ||
	    msg_opt_int(o, "priority", &r->priority, err, errlen) == -1 ||
	    msg_opt_int(o, "last_seq", &r->last_seq, err, errlen) == -1 ||
	    msg_opt_time(o, "submitted_at", &r->submitted_at, err, errlen) == -1 ||
	    msg_opt_time(o, "started_at", &r->started_at, err, errlen) == -1 ||
	    msg_opt_time(o, "finished_at", &r->finished_at, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "labels", &r->labels, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "env", &r->env, err, errlen) == -1 ||
	    msg_opt_strv(o, "secrets", &r->secret_names, &r->nsecret_names, err, errlen) == -1 ||
	    run_info_decode_steps(o, r, err, errlen) == -1)
		goto fail;
	r->state = (enum run_state)st;
	ec = mp_get(o, "exit_code");
	if (ec != NULL && ec->type != MSGPACK_OBJECT_NIL) {
		if (msg_opt_int(o, "exit_code", &r->exit_code, err, errlen) == -1)
			goto fail;
		r->has_exit_code = 1;
	}
	return 0;
fail:
	run_info_free(r);
	return -1;
}

void run_info_free(struct run_info *r)
{
	size_t i;

	free(r->id);
	free(r->pipeline);
	free(r->backend);
	free(r->worker);
	free(r->error);
	kvlist_free(&r->labels);
	kvlist_free(&r->env);
	msg_free_strv(r->secret_names, r->nsecret_names);
	for (i = 0; i < r->nsteps; i++)
		step_info_free(&r->steps[i]);
	free(r->steps);
	memset(r, 0, sizeof(*r));
}

/* event records ---------------------------------------------------------- */

static const char *const rec_kind_names[] = {[REC_EVENT] = "event", [REC_METRIC] = "metric", [REC_LOG] = "log"};

const char *rec_kind_name(enum rec_kind k)
{
	if ((unsigned)k > REC_LOG)
		return "event";
	return rec_kind_names[k];
}

static int rec_kind_parse(const char *s, size_t len, enum rec_kind *out)
{
	int i;

	for (i = REC_EVENT; i <= REC_LOG; i++) {
		if (strlen(rec_kind_names[i]) == len && memcmp(rec_kind_names[i], s, len) == 0) {
			*out = (enum rec_kind)i;
			return 0;
		}
	}
	return -1;
}

/* `data` is already msgpack (a map): written through the packer as is. */
static void event_rec_pack_data(msgpack_packer *pk, const struct event_rec *e)
{
	mp_pack_key(pk, "data");
	if (e->data == NULL || e->data_len == 0)
		msgpack_pack_map(pk, 0);
	else
		pk->callback(pk->data, (const char *)e->data, e->data_len);
}

void event_rec_pack_worker(msgpack_packer *pk, const struct event_rec *e)
{
	/* ts as integer ms: nothing formatted by the worker nor parsed back by
	 * the daemon (which still takes ISO-8601 text from older workers) */
	msgpack_pack_map(pk, 5);
	mp_pack_kint(pk, "seq", e->seq);
	mp_pack_kint(pk, "ts", e->ts);
	mp_pack_kstr(pk, "name", e->name);
	mp_pack_kstr(pk, "step_id", e->step_id);
	event_rec_pack_data(pk, e);
}

void event_rec_pack_run(msgpack_packer *pk, const char *run_id, const struct event_rec *e)
{
	char iso[32];

	time_iso8601(e->ts, iso, sizeof(iso));
	msgpack_pack_map(pk, e->wseq > 0 ? 9 : 8);
	mp_pack_kstr(pk, "run", run_id);
	mp_pack_kint(pk, "seq", e->seq);
	if (e->wseq > 0)
		mp_pack_kint(pk, "wseq", e->wseq);
	mp_pack_kstr(pk, "ts", iso);
	mp_pack_kstr(pk, "origin", e->daemon_origin ? "daemon" : "worker");
	mp_pack_kstr(pk, "kind", rec_kind_name(e->kind));
	mp_pack_kstr(pk, "name", e->name);
	mp_pack_kstr(pk, "step_id", e->step_id);
	event_rec_pack_data(pk, e);
}

static int event_rec_decode_kind(const msgpack_object *o, const char *method, struct event_rec *e, char *err,
                                 size_t errlen)
{
	const msgpack_object *k;

	if (method != NULL) {
		if (rec_kind_parse(method, strlen(method), &e->kind) == -1) {
			rpc_err_printf(err, errlen, "unknown record method '%s'", log_esc(method, 64));
			return -1;
		}
		return 0;
	}
	k = mp_get(o, "kind");
	if (k == NULL || k->type != MSGPACK_OBJECT_STR || rec_kind_parse(k->via.str.ptr, k->via.str.size, &e->kind)) {
		rpc_err_printf(err, errlen, "key 'kind' must be \"event\", \"metric\" or \"log\"");
		return -1;
	}
	return 0;
}

static int event_rec_decode_origin(const msgpack_object *o, struct event_rec *e, char *err, size_t errlen)
{
	const msgpack_object *v = mp_get(o, "origin");

	if (v == NULL || v->type == MSGPACK_OBJECT_NIL || mp_str_eq(v, "worker"))
		return 0;
	if (mp_str_eq(v, "daemon")) {
		e->daemon_origin = 1;
		return 0;
	}
	rpc_err_printf(err, errlen, "key 'origin' must be \"worker\" or \"daemon\"");
	return -1;
}

/* Re-pack the data map into owned bytes (the message buffer goes away). */
static int event_rec_decode_data(const msgpack_object *o, struct event_rec *e, char *err, size_t errlen)
{
	const msgpack_object *d = mp_get(o, "data");
	msgpack_packer pk;
	struct buf b;

	if (d != NULL && d->type != MSGPACK_OBJECT_NIL && d->type != MSGPACK_OBJECT_MAP) {
		rpc_err_printf(err, errlen, "key 'data' must be a map");
		return -1;
	}
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	if (d == NULL || d->type == MSGPACK_OBJECT_NIL)
		msgpack_pack_map(&pk, 0);
	else
		msgpack_pack_object(&pk, *d);
	e->data = b.data;
	e->data_len = b.len;
	return 0;
}

int event_rec_decode(const msgpack_object *o, const char *method, struct event_rec *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (!msg_is_map(o, "record", err, errlen))
		return -1;
	if (msg_need_int(o, "seq", &e->seq, err, errlen) == -1 || msg_opt_time(o, "ts", &e->ts, err, errlen) == -1 ||
	    msg_need_str(o, "name", &e->name, err, errlen) == -1 ||
	    msg_opt_str(o, "step_id", &e->step_id, NULL, err, errlen) == -1 ||
	    event_rec_decode_kind(o, method, e, err, errlen) == -1 ||
	    event_rec_decode_origin(o, e, err, errlen) == -1 || event_rec_decode_data(o, e, err, errlen) == -1 ||
	    msg_opt_int(o, "wseq", &e->wseq, err, errlen) == -1) {
		event_rec_free(e);
		return -1;
	}
	return 0;
}

/* A string of o into scratch (NUL-terminated): 0 and *off, 1 absent (or
 * nil), -1 not a string without NUL. */
static int msg_str_into(const msgpack_object *o, const char *key, struct buf *scratch, size_t *off)
{
	const msgpack_object *v = mp_get(o, key);

	if (v == NULL || v->type == MSGPACK_OBJECT_NIL)
		return 1;
	if (v->type != MSGPACK_OBJECT_STR || memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL)
		return -1;
	*off = scratch->len;
	buf_add(scratch, v->via.str.ptr, v->via.str.size);
	buf_addc(scratch, '\0');
	return 0;
}

int event_rec_decode_buf(const msgpack_object *o, const char *method, struct event_rec *e, struct buf *scratch,
                         char *err, size_t errlen)
{
	size_t name_off = 0, step_off = 0, data_off;
	const msgpack_object *d;
	msgpack_packer pk;
	int rn, rs;

	memset(e, 0, sizeof(*e));
	buf_reset(scratch);
	if (!msg_is_map(o, "record", err, errlen))
		return -1;
	if (msg_need_int(o, "seq", &e->seq, err, errlen) == -1 || msg_opt_time(o, "ts", &e->ts, err, errlen) == -1 ||
	    event_rec_decode_kind(o, method, e, err, errlen) == -1 ||
	    event_rec_decode_origin(o, e, err, errlen) == -1 || msg_opt_int(o, "wseq", &e->wseq, err, errlen) == -1)
		return -1;
	if ((rn = msg_str_into(o, "name", scratch, &name_off)) != 0) {
		rpc_err_printf(err, errlen, rn == 1 ? "missing key '%s'" : "key '%s' must be a string", "name");
		return -1;
	}
	if ((rs = msg_str_into(o, "step_id", scratch, &step_off)) == -1) {
		rpc_err_printf(err, errlen, "key '%s' must be a string", "step_id");
		return -1;
	}
	d = mp_get(o, "data");
	if (d != NULL && d->type != MSGPACK_OBJECT_NIL && d->type != MSGPACK_OBJECT_MAP) {
		rpc_err_printf(err, errlen, "key 'data' must be a map");
		return -1;
	}
	if (e->kind == REC_METRIC)
		e->has_value =
		    d != NULL && d->type == MSGPACK_OBJECT_MAP && mp_get_double(d, "value", &e->value) == 0 ? 1 : -1;
	data_off = scratch->len;
	rpc_packer_init(&pk, scratch);
	if (d == NULL || d->type == MSGPACK_OBJECT_NIL)
		msgpack_pack_map(&pk, 0);
	else
		msgpack_pack_object(&pk, *d);
	/* offsets into the buffer, now that it no longer moves */
	e->name = (char *)scratch->data + name_off;
	e->step_id = rs == 0 ? (char *)scratch->data + step_off : NULL;
	e->data = scratch->data + data_off;
	e->data_len = scratch->len - data_off;
	return 0;
}

void event_rec_free(struct event_rec *e)
{
	free(e->name);
	free(e->step_id);
	free(e->data);
	memset(e, 0, sizeof(*e));
}

/* artifacts, pools ------------------------------------------------------- */

static int msg_is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

void artifact_info_pack(msgpack_packer *pk, const struct artifact_info *a)
{
	msgpack_pack_map(pk, 4);
	mp_pack_kstr(pk, "path", a->path);
	mp_pack_kstr(pk, "step_id", a->step_id);
	mp_pack_kint(pk, "size", a->size);
	mp_pack_kstr(pk, "sha256", a->sha256);
}

int artifact_info_decode(const msgpack_object *o, struct artifact_info *a, char *err, size_t errlen)
{
	const msgpack_object *h;

	memset(a, 0, sizeof(*a));
	if (!msg_is_map(o, "artifact", err, errlen))
		return -1;
	if (msg_need_str(o, "path", &a->path, err, errlen) == -1 ||
	    msg_opt_str(o, "step_id", &a->step_id, NULL, err, errlen) == -1 ||
	    msg_need_int(o, "size", &a->size, err, errlen) == -1)
		goto fail;
	if (a->size < 0) {
		rpc_err_printf(err, errlen, "key 'size' must not be negative");
		goto fail;
	}
	h = mp_get(o, "sha256");
	if (h == NULL || h->type != MSGPACK_OBJECT_STR || h->via.str.size != 64 || !msg_is_hex(h->via.str.ptr, 64)) {
		rpc_err_printf(err, errlen, "key 'sha256' must be 64 lowercase hex digits");
		goto fail;
	}
	memcpy(a->sha256, h->via.str.ptr, 64);
	a->sha256[64] = '\0';
	return 0;
fail:
	artifact_info_free(a);
	return -1;
}

void artifact_info_free(struct artifact_info *a)
{
	free(a->path);
	free(a->step_id);
	memset(a, 0, sizeof(*a));
}

void pool_info_pack(msgpack_packer *pk, const struct pool_info *p)
{
	size_t i, n = p->nstart < 16 ? p->nstart : 16;

	msgpack_pack_map(pk, 10);
	mp_pack_kstr(pk, "backend", p->backend);
	mp_pack_kint(pk, "target", p->target);
	mp_pack_kint(pk, "idle", p->idle);
	mp_pack_kint(pk, "warming", p->warming);
	mp_pack_kint(pk, "busy", p->busy);
	mp_pack_kint(pk, "max", p->max);
	mp_pack_key(pk, "start_ms");
	msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++)
		msgpack_pack_int64(pk, p->start_ms[i]);
	mp_pack_kint(pk, "start_failures", p->start_failures);
	mp_pack_key(pk, "failing");
	if (p->failing)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	mp_pack_kstr(pk, "last_error", p->last_error);
}

/* start_ms keeps at most the 16 newest entries; extra ones are ignored. */
static int pool_info_decode_starts(const msgpack_object *o, struct pool_info *p, char *err, size_t errlen)
{
	const msgpack_object *a = mp_get(o, "start_ms"), *v;
	uint32_t i;

	if (a == NULL || a->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (a->type != MSGPACK_OBJECT_ARRAY)
		goto bad;
	for (i = 0; i < a->via.array.size && i < 16; i++) {
		v = &a->via.array.ptr[i];
		if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
			p->start_ms[i] = (int64_t)v->via.u64;
		else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			p->start_ms[i] = v->via.i64;
		else
			goto bad;
		p->nstart++;
	}
	return 0;
bad:
	rpc_err_printf(err, errlen, "key 'start_ms' must be an array of integers");
	return -1;
}

int pool_info_decode(const msgpack_object *o, struct pool_info *p, char *err, size_t errlen)
{
	const msgpack_object *f;

	memset(p, 0, sizeof(*p));
	if (!msg_is_map(o, "pool", err, errlen))
		return -1;
	if (msg_need_str(o, "backend", &p->backend, err, errlen) == -1 ||
	    msg_opt_int(o, "target", &p->target, err, errlen) == -1 ||
	    msg_opt_int(o, "idle", &p->idle, err, errlen) == -1 ||
	    msg_opt_int(o, "warming", &p->warming, err, errlen) == -1 ||
	    msg_opt_int(o, "busy", &p->busy, err, errlen) == -1 || msg_opt_int(o, "max", &p->max, err, errlen) == -1 ||
	    pool_info_decode_starts(o, p, err, errlen) == -1 ||
	    msg_opt_int(o, "start_failures", &p->start_failures, err, errlen) == -1 ||
	    msg_opt_str(o, "last_error", &p->last_error, NULL, err, errlen) == -1) {
		pool_info_free(p);
		return -1;
	}
	f = mp_get(o, "failing");
	p->failing = f != NULL && f->type == MSGPACK_OBJECT_BOOLEAN && f->via.boolean;
	return 0;
}

void pool_info_free(struct pool_info *p)
{
	free(p->backend);
	free(p->last_error);
	memset(p, 0, sizeof(*p));
}

/* worker protocol -------------------------------------------------------- */

void step_result_pack(msgpack_packer *pk, const struct step_result *r)
{
	msgpack_pack_map(pk, 6);
	mp_pack_kstr(pk, "state", step_state_name(r->state));
	mp_pack_kint(pk, "rows_in", r->rows_in);
	mp_pack_kint(pk, "rows_out", r->rows_out);
	mp_pack_kint(pk, "duration_ms", r->duration_ms);
	mp_pack_kstr(pk, "error", r->error);
	mp_pack_kstr(pk, "error_type", r->error_type);
}

int step_result_decode(const msgpack_object *o, struct step_result *r, char *err, size_t errlen)
{
	int st = 0;

	memset(r, 0, sizeof(*r));
	if (!msg_is_map(o, "exec_step result", err, errlen))
		return -1;
	if (msg_state_key(o, 0, &st, err, errlen) == -1)
		goto fail;
	if (st != STEP_SUCCEEDED && st != STEP_FAILED && st != STEP_CANCELLED) {
		rpc_err_printf(err, errlen, "step result state must be succeeded, failed or cancelled");
		goto fail;
	}
	r->state = (enum step_state)st;
	if (msg_opt_int(o, "rows_in", &r->rows_in, err, errlen) == -1 ||
	    msg_opt_int(o, "rows_out", &r->rows_out, err, errlen) == -1 ||
	    msg_opt_int(o, "duration_ms", &r->duration_ms, err, errlen) == -1 ||
	    msg_opt_str(o, "error", &r->error, NULL, err, errlen) == -1 ||
	    msg_opt_str(o, "error_type", &r->error_type, NULL, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	step_result_free(r);
	return -1;
}

void step_result_free(struct step_result *r)
{
	free(r->error);
	free(r->error_type);
	memset(r, 0, sizeof(*r));
}

void msg_prepare_pack(msgpack_packer *pk, const struct msg_prepare *m)
{
	msgpack_pack_map(pk, 5);
	mp_pack_kstr(pk, "run_id", m->run_id);
	if (m->bundle_path != NULL)
		mp_pack_kstr(pk, "bundle_path", m->bundle_path);
	else {
		mp_pack_key(pk, "bundle");
		bundle_pack(pk, &m->bundle);
	}
	mp_pack_kstr(pk, "manifest", m->manifest != NULL ? m->manifest : DEFAULT_MANIFEST);
	mp_pack_key(pk, "env");
	kvlist_pack(pk, &m->env);
	mp_pack_key(pk, "secrets");
	kvlist_pack(pk, &m->secrets);
}

int msg_prepare_decode(const msgpack_object *o, struct msg_prepare *m, size_t max_bytes, char *err, size_t errlen)
{
	const msgpack_object *b;
	enum rpc_err code;

	memset(m, 0, sizeof(*m));
	if (!msg_is_map(o, "prepare params", err, errlen))
		return -1;
	if (msg_need_str(o, "run_id", &m->run_id, err, errlen) == -1 ||
	    msg_opt_str(o, "bundle_path", &m->bundle_path, NULL, err, errlen) == -1)
		goto fail;
	b = mp_get(o, "bundle");
	if (b != NULL && b->type != MSGPACK_OBJECT_NIL) {
		if (bundle_decode(b, &m->bundle, max_bytes, &code, err, errlen) == -1)
			goto fail;
	} else if (m->bundle_path == NULL) {
		rpc_err_printf(err, errlen, "missing key 'bundle' or 'bundle_path'");
		goto fail;
	}
	if (msg_opt_str(o, "manifest", &m->manifest, DEFAULT_MANIFEST, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "env", &m->env, err, errlen) == -1 ||
	    msg_opt_kvlist(o, "secrets", &m->secrets, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	msg_prepare_free(m);
	return -1;
}

void msg_prepare_free(struct msg_prepare *m)
{
	free(m->run_id);
	bundle_free(&m->bundle);
	free(m->bundle_path);
	free(m->manifest);
	kvlist_free(&m->env);
	kvlist_free(&m->secrets);
	memset(m, 0, sizeof(*m));
}

/* ready (worker -> daemon) ------------------------------------------------ */

void msg_ready_pack(msgpack_packer *pk, const struct msg_ready *m)
{
	msgpack_pack_map(pk, m->zygote ? 5 : 4);
	mp_pack_kstr(pk, "version", m->version);
	mp_pack_kint(pk, "pid", m->pid);
	mp_pack_kint(pk, "protocol", m->protocol);
	mp_pack_key(pk, "drivers");
	msg_pack_strv(pk, m->drivers, m->ndrivers);
	if (m->zygote) {
		mp_pack_key(pk, "zygote");
		msgpack_pack_true(pk);
	}
}

/* Every key is optional: an older worker sends no `drivers`, a test's
 * fake worker sends {}. */
int msg_ready_decode(const msgpack_object *o, struct msg_ready *m, char *err, size_t errlen)
{
	const msgpack_object *d;

	memset(m, 0, sizeof(*m));
	if (!msg_is_map(o, "ready", err, errlen))
		return -1;
	d = mp_get(o, "drivers");
	if (d != NULL && d->type == MSGPACK_OBJECT_ARRAY && d->via.array.size > MSG_READY_MAX_DRIVERS) {
		rpc_err_printf(err, errlen, "more than %d drivers", MSG_READY_MAX_DRIVERS);
		return -1;
	}
	m->has_drivers = d != NULL && d->type != MSGPACK_OBJECT_NIL;
	if (mp_get_bool(o, "zygote", &m->zygote) == -1) {
		rpc_err_printf(err, errlen, "key 'zygote' must be a boolean");
		return -1;
	}
	if (msg_opt_str(o, "version", &m->version, NULL, err, errlen) == -1 ||
	    msg_opt_int(o, "pid", &m->pid, err, errlen) == -1 ||
	    msg_opt_int(o, "protocol", &m->protocol, err, errlen) == -1 ||
	    msg_opt_strv(o, "drivers", &m->drivers, &m->ndrivers, err, errlen) == -1) {
		msg_ready_free(m);
		return -1;
	}
	return 0;
}

void msg_ready_free(struct msg_ready *m)
{
	free(m->version);
	msg_free_strv(m->drivers, m->ndrivers);
	memset(m, 0, sizeof(*m));
}
