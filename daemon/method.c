/*
 * method.c: the control socket's methods (PROTOCOL.md §3), one handler per
 * method behind a dispatch table. Handlers validate, answer through the
 * connection's packer and leave the run machinery to run.c / follow.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "osirisd.h"

#define METHOD_READ_DEFAULT (1024 * 1024)
#define METHOD_READ_MAX (4 * 1024 * 1024)
#define METHOD_LIST_DEFAULT 50
#define METHOD_LIST_MAX 10000

static struct {
	struct event_base *base;
	const struct config *cfg;
	int64_t started_ms;
	int stopping;
} mt;

typedef int (*method_fn)(struct conn *c, struct rpc_msg *m);

void method_init(struct event_base *base, const struct config *cfg)
{
	mt.base = base;
	mt.cfg = cfg;
	mt.started_ms = time_now_ms();
}

void method_stopping(void)
{
	mt.stopping = 1;
}

/* -- helpers ------------------------------------------------------------- */

static void method_result_head(struct conn *c, struct rpc_msg *m, msgpack_packer *pk)
{
	conn_packer(c, pk);
	rpc_pack_result_head(pk, m->msgid);
}

/* params["run"] (full id or unique prefix) -> full id; answers the error. */
static int method_resolve(struct conn *c, struct rpc_msg *m, char *id, size_t idlen)
{
	char *want = NULL;
	int rc;

	if (m->params == NULL || mp_get_str(m->params, "run", &want) != 0 || *want == '\0') {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST, "missing key 'run' (a run id or prefix)");
		free(want);
		return -1;
	}
	if (strlen(want) == RUN_ID_LEN && run_find(want) != NULL) {
		snprintf(id, idlen, "%s", want);
		free(want);
		return 0;
	}
	rc = store_run_resolve(osirisd.store, want, id, idlen);
	if (rc == 1)
		conn_error(c, m->msgid, ERR_NOT_FOUND, "run %s: no such run", log_esc(want, 64));
	else if (rc == 2)
		conn_error(c, m->msgid, ERR_NOT_FOUND, "run %s: ambiguous prefix", log_esc(want, 64));
	else if (rc != 0)
		conn_error(c, m->msgid, ERR_INTERNAL, "cannot look up run %s", log_esc(want, 64));
	free(want);
	return rc == 0 ? 0 : -1;
}

/* The store has the durable state; an active run has a fresher last_seq. */
static void method_patch_live(struct run_info *ri)
{
	struct run *r = run_find(ri->id);

	if (r != NULL && r->info.last_seq > ri->last_seq)
		ri->last_seq = r->info.last_seq;
}

/* -- hello, ping ---------------------------------------------------------- */

/* What this daemon offers: its methods, and a backend.<name> per pool
 * that started (pool_count() is small and fixed after start). */
static size_t method_capabilities(char **caps, size_t max, char names[][32])
{
	size_t n = 0, i;

	caps[n++] = "run.follow";
	caps[n++] = "artifact.read";
	for (i = 0; i < pool_count() && n < max; i++) {
		snprintf(names[i], 32, "backend.%s", pool_at(i)->ops->name);
		caps[n++] = names[i];
	}
	return n;
}

static int method_hello(struct conn *c, struct rpc_msg *m)
{
	char *caps[10], names[8][32];
	struct msg_hello h, out;
	msgpack_packer pk;
	char err[256];

	if (m->params == NULL || msg_hello_decode(m->params, &h, 0, err, sizeof(err)) == -1) {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST, "hello: %s", m->params == NULL ? "missing params" : err);
		return 0;
	}
	if (h.protocol != PROTO_VERSION) {
		conn_error(c, m->msgid, ERR_UNSUPPORTED_VERSION, "protocol %lld is not supported (osirisd speaks %d)",
		           (long long)h.protocol, PROTO_VERSION);
		msg_hello_free(&h);
		return 0;
	}
	log_debug("conn=%llu uid=%ld hello client=%s", (unsigned long long)c->id, (long)c->uid,
	          log_esc(h.sender != NULL ? h.sender : "?", 64));
	msg_hello_free(&h);
	c->hello = 1;
	memset(&out, 0, sizeof(out));
	out.sender = "osirisd " OSIRIS_VERSION;
	out.protocol = PROTO_VERSION;
	out.capabilities = caps;
	out.ncapabilities = method_capabilities(caps, 10, names);
	method_result_head(c, m, &pk);
	msg_hello_pack(&pk, &out, 1);
	return 0;
}

static int method_ping(struct conn *c, struct rpc_msg *m)
{
	msgpack_packer pk;

	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "daemon", "osirisd " OSIRIS_VERSION);
	mp_pack_kint(&pk, "uptime_s", (time_now_ms() - mt.started_ms) / 1000);
	return 0;
}

/* -- run.submit ------------------------------------------------------------ */

static int method_env_ok(const struct kvlist *l, const char *what, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		const char *k = l->v[i].key;
		if (*k == '\0' || strchr(k, '=') != NULL) {
			snprintf(err, errlen, "%s: bad variable name '%s'", what, log_esc(k, 64));
			return -1;
		}
	}
	return 0;
}

/* Every step's cfg file is in the bundle and passes manifest_cfg_check. */
static int method_check_cfgs(const struct manifest *man, const struct bundle *b, const char *manifest_path, char *err,
                             size_t errlen)
{
	const char *slash = strrchr(manifest_path, '/');
	int dirlen = slash != NULL ? (int)(slash - manifest_path) : 0;
	const struct bundle_file *f;
	char *path;
	size_t i;

	for (i = 0; i < man->nsteps; i++) {
		const struct manifest_step *s = &man->steps[i];
		if (dirlen > 0)
			xasprintf(&path, "%.*s/%s", dirlen, manifest_path, s->cfg_path);
		else
			path = xstrdup(s->cfg_path);
		f = bundle_find(b, path);
		if (f == NULL) {
			snprintf(err, errlen, "%s: missing from the run context", s->cfg_path);
			free(path);
			return -1;
		}
		free(path);
		if (manifest_cfg_check(s->cfg_path, (const char *)f->data, f->len, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* Fill the run object from the accepted submission (moving the lists). */
static void method_submit_fill(struct run *r, struct msg_submit *sub, const struct conn *c)
{
	char id[RUN_ID_LEN + 1];
	size_t i;

	run_id_new(id);
	r->info.id = xstrdup(id);
	r->info.state = RUN_QUEUED;
	r->info.pipeline = r->man.pipeline_id != NULL ? xstrdup(r->man.pipeline_id) : NULL;
	r->info.backend = xstrdup(sub->backend);
	r->info.uid = c->uid == (uid_t)-1 ? -1 : (int64_t)c->uid;
	r->info.priority = sub->priority;
	r->info.submitted_at = time_now_ms();
	r->info.labels = sub->labels;
	r->info.env = sub->env;
	memset(&sub->labels, 0, sizeof(sub->labels));
	memset(&sub->env, 0, sizeof(sub->env));
	r->secrets = sub->secrets;
	memset(&sub->secrets, 0, sizeof(sub->secrets));
	r->mask = mask_new();
	r->info.nsecret_names = r->secrets.n;
	r->info.secret_names = xcalloc(r->secrets.n + 1, sizeof(char *));
	for (i = 0; i < r->secrets.n; i++) {
		r->info.secret_names[i] = xstrdup(r->secrets.v[i].key);
		mask_add(r->mask, r->secrets.v[i].value);
	}
	r->info.nsteps = r->man.nsteps;
	r->info.steps = xcalloc(r->man.nsteps + 1, sizeof(*r->info.steps));
	for (i = 0; i < r->man.nsteps; i++) {
		r->info.steps[i].id = xstrdup(r->man.steps[i].id);
		r->info.steps[i].driver = xstrdup(r->man.steps[i].driver);
		r->info.steps[i].state = STEP_PENDING;
	}
	r->manifest_path = xstrdup(sub->manifest);
}

/* Write a whole file. */
static int method_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), saved;

	if (fd == -1)
		return -1;
	if (write_all(fd, data, len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/*
 * The bundle (bundle_load's format) and a non-default manifest path under
 * STATE/runs/<id>, written before the run row is committed, so a committed
 * row always has its bundle (durability: bundle_save).
 */
static int method_submit_persist(struct run *r, const struct bundle *b, char *err, size_t errlen)
{
	char *dir = rundir_path(r->info.id), *path = NULL;
	off_t size = 0;
	int rc = -1;

	if (rundir_create(r->info.id) == -1) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	path = rundir_bundle(r->info.id);
	if (bundle_save(b, path, &size) == -1) {
		snprintf(err, errlen, "cannot store the bundle: %s", strerror(errno));
		goto out;
	}
	r->disk_bytes = RUNDIR_OVERHEAD + rundir_bytes((int64_t)size);
	if (strcmp(r->manifest_path, "manifest.yaml") != 0) {
		free(path);
		path = rundir_manifest(r->info.id);
		if (method_write_file(path, r->manifest_path, strlen(r->manifest_path)) == -1) {
			snprintf(err, errlen, "cannot store the manifest path: %s", strerror(errno));
			goto out;
		}
		r->disk_bytes += rundir_bytes(1);
	}
	rc = 0;
out:
	if (rc == -1)
		rmtree(dir);
	free(path);
	free(dir);
	return rc;
}

/* Bundle on disk, then the run row committed; on failure nothing stays. */
static int method_submit_commit(struct run *r, const struct bundle *b, char *err, size_t errlen)
{
	char *dir;

	if (method_submit_persist(r, b, err, errlen) == -1)
		return -1;
	if (store_run_insert(osirisd.store, &r->info) == 0)
		return 0;
	snprintf(err, errlen, "cannot insert the run into the store");
	dir = rundir_path(r->info.id);
	rmtree(dir);
	free(dir);
	return -1;
}

static int method_submit_validate(struct conn *c, struct rpc_msg *m, struct msg_submit *sub, struct run *r,
                                  struct pool **pool)
{
	struct manifest_drivers drivers = {pool_driver_known, NULL};
	const struct bundle_file *mf;
	enum rpc_err code;
	char err[1024];

	if (msg_submit_decode(m->params, sub, (size_t)mt.cfg->max_context_bytes, &code, err, sizeof(err)) == -1) {
		conn_error(c, m->msgid, code, "%s", err);
		return -1;
	}
	if (method_env_ok(&sub->env, "env", err, sizeof(err)) == -1 ||
	    method_env_ok(&sub->secrets, "secrets", err, sizeof(err)) == -1 ||
	    pool_lookup(sub->backend, pool, err, sizeof(err)) != 0) {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST, "%s", err);
		return -1;
	}
	if (!path_is_safe(sub->manifest) || (mf = bundle_find(&sub->bundle, sub->manifest)) == NULL) {
		conn_error(c, m->msgid, ERR_INVALID_MANIFEST, "%s: missing from the run context",
		           log_esc(sub->manifest, 200));
		return -1;
	}
	drivers.arg = *pool;
	if (manifest_parse(&r->man, (const char *)mf->data, mf->len, &drivers, err, sizeof(err)) == -1 ||
	    method_check_cfgs(&r->man, &sub->bundle, sub->manifest, err, sizeof(err)) == -1) {
		conn_error(c, m->msgid, ERR_INVALID_MANIFEST, "%s", err);
		return -1;
	}
	return 0;
}

/* A submission that cannot be stored for want of space is busy (retry
 * later), not a daemon failure. */
static void method_submit_refuse(struct conn *c, struct rpc_msg *m, const char *err)
{
	char why[256];

	if (space_check(0, why, sizeof(why)) == -1) {
		log_warnx("run.submit refused: %s", why);
		conn_error(c, m->msgid, ERR_BUSY, "busy: %s", why);
	} else {
		log_warnx("run.submit failed: %s", err);
		conn_error(c, m->msgid, ERR_INTERNAL, "cannot store the run");
	}
}

static int method_run_submit(struct conn *c, struct rpc_msg *m)
{
	struct msg_submit sub;
	struct pool *pool = NULL;
	struct run *r;
	msgpack_packer pk;
	char err[1024];

	if (mt.stopping) {
		conn_error(c, m->msgid, ERR_BUSY, "busy: osirisd is shutting down, no new runs accepted");
		return 0;
	}
	r = run_alloc();
	r->submit_us = time_mono_us();
	memset(&sub, 0, sizeof(sub));
	if (m->params == NULL || method_submit_validate(c, m, &sub, r, &pool) == -1) {
		if (m->params == NULL)
			conn_error(c, m->msgid, ERR_INVALID_REQUEST, "missing params");
		msg_submit_free(&sub);
		run_free(r);
		return 0;
	}
	r->pool = pool;
	/* The bundle is about the message's size: room for it, or busy. */
	if (space_check((int64_t)m->rawlen, err, sizeof(err)) == -1) {
		log_info("run.submit refused: %s", err);
		conn_error(c, m->msgid, ERR_BUSY, "busy: %s", err);
		msg_submit_free(&sub);
		run_free(r);
		return 0;
	}
	method_submit_fill(r, &sub, c);
	if (method_submit_commit(r, &sub.bundle, err, sizeof(err)) == -1) {
		method_submit_refuse(c, m, err);
		msg_submit_free(&sub);
		run_free(r);
		return 0;
	}
	/* Committed: answer, then queue. The bundle's bytes live in m. */
	r->bundle = sub.bundle;
	memset(&sub.bundle, 0, sizeof(sub.bundle));
	msg_submit_free(&sub);
	r->submit_msg = m;
	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "run", r->info.id);
	mp_pack_kstr(&pk, "state", "queued");
	log_debug("run=%s accepted in %lld us", r->info.id, (long long)(time_mono_us() - r->submit_us));
	run_register(r);
	return 1;
}

/* -- run.get, run.list, run.cancel, run.follow ------------------------------ */

static int method_run_get(struct conn *c, struct rpc_msg *m)
{
	char id[128];
	struct run_info ri;
	msgpack_packer pk;

	if (method_resolve(c, m, id, sizeof(id)) == -1)
		return 0;
	if (store_run_get(osirisd.store, id, &ri) != 0) {
		conn_error(c, m->msgid, ERR_NOT_FOUND, "run %s: no such run", id);
		return 0;
	}
	method_patch_live(&ri);
	method_result_head(c, m, &pk);
	run_info_pack(&pk, &ri, 1);
	run_info_free(&ri);
	return 0;
}

static int method_run_list(struct conn *c, struct rpc_msg *m)
{
	struct run_info *runs = NULL;
	char *state = NULL;
	int64_t limit = METHOD_LIST_DEFAULT;
	enum run_state st;
	msgpack_packer pk;
	size_t i, n = 0;

	if (m->params != NULL &&
	    (mp_get_str(m->params, "state", &state) == -1 || mp_get_int(m->params, "limit", &limit) == -1)) {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST, "run.list: 'state' must be a string, 'limit' an integer");
		free(state);
		return 0;
	}
	if (state != NULL && run_state_parse(state, &st) == -1) {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST, "unknown run state '%s'", log_esc(state, 32));
		free(state);
		return 0;
	}
	if (limit <= 0 || limit > METHOD_LIST_MAX)
		limit = limit <= 0 ? METHOD_LIST_DEFAULT : METHOD_LIST_MAX;
	if (store_run_list(osirisd.store, state, (int)limit, &runs, &n) == -1) {
		conn_error(c, m->msgid, ERR_INTERNAL, "cannot list runs");
		free(state);
		return 0;
	}
	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "runs");
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++) {
		method_patch_live(&runs[i]);
		run_info_pack(&pk, &runs[i], 0);
		run_info_free(&runs[i]);
	}
	free(runs);
	free(state);
	return 0;
}

static int method_run_cancel(struct conn *c, struct rpc_msg *m)
{
	char id[128];
	struct run_info ri;
	struct run *r;
	msgpack_packer pk;
	enum run_state st;

	if (method_resolve(c, m, id, sizeof(id)) == -1)
		return 0;
	if ((r = run_find(id)) != NULL) {
		log_info("run=%s cancel requested uid=%ld", id, (long)c->uid);
		run_cancel(r); /* r stays valid until the loop reaps it */
		st = r->info.state;
	} else if (store_run_get(osirisd.store, id, &ri) == 0) {
		st = ri.state;
		run_info_free(&ri);
	} else {
		conn_error(c, m->msgid, ERR_NOT_FOUND, "run %s: no such run", id);
		return 0;
	}
	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "run", id);
	mp_pack_kstr(&pk, "state", run_state_name(st));
	return 0;
}

static int method_run_follow(struct conn *c, struct rpc_msg *m)
{
	int64_t since = 0;
	int follow = 1;
	char id[128];
	struct run_info ri;
	struct run *r;

	if (mp_get_int(m->params, "since", &since) == -1 || mp_get_bool(m->params, "follow", &follow) == -1 ||
	    since < 0) {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST,
		           "run.follow: 'since' must be an integer >= 0, 'follow' a bool");
		return 0;
	}
	if (method_resolve(c, m, id, sizeof(id)) == -1)
		return 0;
	if ((r = run_find(id)) != NULL) {
		follow_start(c, m->msgid, id, r, since, follow, NULL);
		return 0;
	}
	if (store_run_get(osirisd.store, id, &ri) != 0) {
		conn_error(c, m->msgid, ERR_NOT_FOUND, "run %s: no such run", id);
		return 0;
	}
	follow_start(c, m->msgid, id, NULL, since, follow, &ri);
	run_info_free(&ri);
	return 0;
}

/* -- artifacts, pools -------------------------------------------------------- */

static int method_artifact_list(struct conn *c, struct rpc_msg *m)
{
	struct artifact_info *arts = NULL;
	msgpack_packer pk;
	size_t i, n = 0;
	char id[128];

	if (method_resolve(c, m, id, sizeof(id)) == -1)
		return 0;
	if (store_artifact_list(osirisd.store, id, &arts, &n) == -1) {
		conn_error(c, m->msgid, ERR_INTERNAL, "cannot list artifacts");
		return 0;
	}
	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "artifacts");
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++) {
		artifact_info_pack(&pk, &arts[i]);
		artifact_info_free(&arts[i]);
	}
	free(arts);
	return 0;
}

static void method_artifact_reply(struct conn *c, struct rpc_msg *m, const void *data, size_t got, int64_t offset,
                                  int64_t size)
{
	msgpack_packer pk;

	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 3);
	mp_pack_key(&pk, "data");
	msgpack_pack_bin(&pk, got);
	msgpack_pack_bin_body(&pk, data, got);
	mp_pack_kint(&pk, "size", size);
	mp_pack_key(&pk, "eof");
	if (offset + (int64_t)got >= size)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
}

/* An artifact kept in the store: its bytes are the row's. */
static void method_artifact_blob(struct conn *c, struct rpc_msg *m, const struct buf *b, int64_t offset, int64_t length)
{
	int64_t size = (int64_t)b->len;

	if (offset > size)
		offset = size;
	if (length > size - offset)
		length = size - offset;
	method_artifact_reply(c, m, b->data + offset, (size_t)length, offset, size);
}

static int method_artifact_read(struct conn *c, struct rpc_msg *m)
{
	int64_t offset = 0, length = METHOD_READ_DEFAULT;
	char id[128], *path = NULL, *file;
	struct artifact_info ai;
	struct stat st;
	struct buf blob;
	uint8_t *data;
	ssize_t got;
	int fd, in_db = 0, rc;

	if (mp_get_str(m->params, "path", &path) != 0 || mp_get_int(m->params, "offset", &offset) == -1 ||
	    mp_get_int(m->params, "length", &length) == -1 || offset < 0 || length < 0 || !path_is_safe(path)) {
		conn_error(c, m->msgid, ERR_INVALID_REQUEST,
		           "artifact.read: needs a safe relative 'path', 'offset' >= 0, 'length' >= 0");
		free(path);
		return 0;
	}
	if (length > METHOD_READ_MAX)
		length = METHOD_READ_MAX;
	if (method_resolve(c, m, id, sizeof(id)) == -1) {
		free(path);
		return 0;
	}
	buf_init(&blob);
	if ((rc = store_artifact_get(osirisd.store, id, path, &ai, &in_db, &blob)) != 0) {
		if (rc == 1)
			conn_error(c, m->msgid, ERR_NOT_FOUND, "run %s has no artifact %s", id, log_esc(path, 200));
		else
			conn_error(c, m->msgid, ERR_INTERNAL, "cannot read the artifact index");
		buf_free(&blob);
		free(path);
		return 0;
	}
	artifact_info_free(&ai);
	if (in_db) {
		method_artifact_blob(c, m, &blob, offset, length);
		buf_free(&blob);
		free(path);
		return 0;
	}
	buf_free(&blob);
	file = rundir_artifact(id, path);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	free(file);
	if (fd == -1 || fstat(fd, &st) == -1) {
		conn_error(c, m->msgid, ERR_NOT_FOUND, "artifact %s: %s", log_esc(path, 200), strerror(errno));
		if (fd != -1)
			close(fd);
		free(path);
		return 0;
	}
	if (offset > st.st_size)
		offset = st.st_size;
	if (length > st.st_size - offset)
		length = st.st_size - offset;
	data = xmalloc((size_t)length + 1);
	got = length > 0 ? pread(fd, data, (size_t)length, offset) : 0;
	close(fd);
	if (got < 0) {
		conn_error(c, m->msgid, ERR_INTERNAL, "artifact %s: %s", log_esc(path, 200), strerror(errno));
		free(data);
		free(path);
		return 0;
	}
	method_artifact_reply(c, m, data, (size_t)got, offset, st.st_size);
	free(data);
	free(path);
	return 0;
}

static int method_pool_status(struct conn *c, struct rpc_msg *m)
{
	struct pool_info pi;
	msgpack_packer pk;
	size_t i, n = pool_count();

	method_result_head(c, m, &pk);
	msgpack_pack_map(&pk, 1);
	mp_pack_key(&pk, "pools");
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++) {
		struct pool *p = pool_at(i);
		p->ops->status(p, &pi);
		pool_info_pack(&pk, &pi);
		pool_info_free(&pi);
	}
	return 0;
}

/* -- run.prune ------------------------------------------------------------ */

#define METHOD_PRUNE_MAX_AGE_S (100LL * 366 * 86400)

/* older_than_s / keep given: those rules only; neither: the configured
 * retention (daemon.keep_days, keep_runs, max_state_bytes). */
static int method_prune_policy(struct rpc_msg *m, struct prune_policy *pol, int *dry_run)
{
	int64_t older = INT64_MIN, keep = INT64_MIN;

	*dry_run = 0;
	if (m->params != NULL &&
	    (mp_get_int(m->params, "older_than_s", &older) == -1 || mp_get_int(m->params, "keep", &keep) == -1 ||
	     mp_get_bool(m->params, "dry_run", dry_run) == -1))
		return -1;
	if ((older != INT64_MIN && (older < 0 || older > METHOD_PRUNE_MAX_AGE_S)) || (keep != INT64_MIN && keep < 0))
		return -1;
	if (older == INT64_MIN && keep == INT64_MIN) {
		prune_policy_config(mt.cfg, pol);
		return 0;
	}
	pol->before_ms = older != INT64_MIN ? time_now_ms() - older * 1000 : 0;
	pol->keep = keep != INT64_MIN ? keep : -1;
	pol->max_bytes = 0;
	return 0;
}

static int method_run_prune(struct conn *c, struct rpc_msg *m)
{
	struct prune_policy pol;
	int dry_run;

	if (c->uid != 0 && c->uid != geteuid()) {
		conn_error(c, m->msgid, ERR_FORBIDDEN,
		           "forbidden: only root or the daemon's own user (uid %ld) may prune", (long)geteuid());
		return 0;
	}
	if (method_prune_policy(m, &pol, &dry_run) == -1) {
		conn_error(
		    c, m->msgid, ERR_INVALID_REQUEST,
		    "run.prune: 'older_than_s' must be an integer 0..%lld, 'keep' an integer >= 0, 'dry_run' a bool",
		    METHOD_PRUNE_MAX_AGE_S);
		return 0;
	}
	log_info("run.prune requested uid=%ld%s", (long)c->uid, dry_run ? " (dry run)" : "");
	prune_request(c, m->msgid, &pol, dry_run);
	return 0;
}

/* -- dispatch ------------------------------------------------------------- */

static const struct {
	const char *name;
	method_fn fn;
	int needs_params;
} method_table[] = {
    {"hello", method_hello, 1},
    {"ping", method_ping, 0},
    {"run.submit", method_run_submit, 1},
    {"run.get", method_run_get, 1},
    {"run.list", method_run_list, 0},
    {"run.cancel", method_run_cancel, 1},
    {"run.follow", method_run_follow, 1},
    {"artifact.list", method_artifact_list, 1},
    {"artifact.read", method_artifact_read, 1},
    {"pool.status", method_pool_status, 0},
    {"run.prune", method_run_prune, 0},
};

int method_dispatch(struct conn *c, struct rpc_msg *m)
{
	size_t i;

	for (i = 0; i < sizeof(method_table) / sizeof(method_table[0]); i++) {
		if (strcmp(method_table[i].name, m->method) != 0)
			continue;
		if (!c->hello && method_table[i].fn != method_hello) {
			conn_error(c, m->msgid, ERR_INVALID_REQUEST, "hello first");
			return 0;
		}
		if (method_table[i].needs_params && m->params == NULL) {
			conn_error(c, m->msgid, ERR_INVALID_REQUEST, "%s: missing params", m->method);
			return 0;
		}
		return method_table[i].fn(c, m);
	}
	conn_error(c, m->msgid, ERR_INVALID_REQUEST, "unknown method %s", log_esc(m->method, 64));
	return 0;
}
