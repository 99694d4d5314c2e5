/*
 * artifact.c: what a run produced. After each step the paths inotify saw
 * change (or, failing that, the whole workspace) are compared with the
 * listing and every new or changed file is announced (artifact_created)
 * and attributed to the step; `finish` lists every file new or changed
 * since prepare with its sha256, small ones with their bytes inline;
 * `read` serves the others in chunks. Artifacts the worker makes itself
 * (cleaned_config.json) live in memory only and are listed the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"

static void artifact_attr_set(struct worker *w, const char *path, const char *step_id)
{
	size_t i;

	for (i = 0; i < w->attr.n; i++) {
		if (strcmp(w->attr.v[i].key, path) == 0) {
			free(w->attr.v[i].value);
			w->attr.v[i].value = xstrdup(step_id);
			return;
		}
	}
	kvlist_add(&w->attr, path, step_id);
}

static void artifact_announce(struct worker *w, const char *step_id, const char *path, int64_t size)
{
	struct evf f[] = {EVS("path", path), EVI("size", size),
	                  EVS("artifact_type", strncmp(path, "artifacts/", 10) == 0 ? "step_artifact" : "file")};

	emit_event(w, "artifact_created", step_id, f, sizeof(f) / sizeof(f[0]));
}

static void artifact_created(struct worker *w, const char *step_id, const char *path, int64_t size)
{
	artifact_attr_set(w, path, step_id);
	artifact_announce(w, step_id, path, size);
}

/* -- in-memory artifacts ---------------------------------------------------- */

uint8_t *artifact_mem_new(struct worker *w, const char *step_id, const char *path, size_t len)
{
	size_t plen = strlen(path) + 1;
	struct mem_art *m;

	if (len > SIZE_MAX - plen)
		fatalx("artifact_mem_new: too big");
	if (w->nmarts == w->martcap) {
		w->martcap = w->martcap == 0 ? 16 : w->martcap * 2;
		w->marts = xreallocarray(w->marts, w->martcap, sizeof(*w->marts));
	}
	m = &w->marts[w->nmarts++];
	m->data = xmalloc(len + plen);
	m->path = (char *)m->data + len;
	memcpy(m->path, path, plen);
	m->step_id = step_id;
	m->len = len;
	m->announced = 0;
	return m->data;
}

void artifact_mem_free(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->nmarts; i++)
		free(w->marts[i].data);
	free(w->marts);
	w->marts = NULL;
	w->nmarts = w->martcap = 0;
}

static const struct mem_art *artifact_mem_find(const struct worker *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nmarts; i++)
		if (strcmp(w->marts[i].path, path) == 0)
			return &w->marts[i];
	return NULL;
}

/* Announce the in-memory artifacts not yet announced whose path sorts
 * before `before` (all when NULL): merged into the sorted file order, as if
 * they were files. */
static void artifact_mem_announce(struct worker *w, const char *step_id, const char *before)
{
	size_t i;

	for (i = 0; i < w->nmarts; i++) {
		struct mem_art *m = &w->marts[i];
		if (m->announced || (before != NULL && strcmp(m->path, before) >= 0))
			continue;
		m->announced = 1; /* attributed by m->step_id, not w->attr */
		artifact_announce(w, step_id, m->path, (int64_t)m->len);
	}
}

/* The slow path: walk the whole workspace, compare, and rebuild the
 * watches (after an inotify overflow, a moved directory, or without
 * inotify at all). */
static void artifact_scan_full(struct worker *w, const char *step_id)
{
	struct snap now;
	size_t i;

	memset(&now, 0, sizeof(now));
	watch_forget(&w->watch);
	(void)watch_open(&w->watch); /* none: full scans from now on */
	if (snap_take_watch(w->ws, &now, &w->watch) < 0) {
		emit_logf(w, LOG_LVL_WARN, step_id, "workspace scan failed: %s", strerror(errno));
		snap_free(&now);
		return;
	}
	for (i = 0; i < now.n; i++) {
		artifact_mem_announce(w, step_id, now.e[i].path);
		if (snap_changed(&w->cur, &now.e[i]) && artifact_mem_find(w, now.e[i].path) == NULL)
			artifact_created(w, step_id, now.e[i].path, now.e[i].size);
	}
	artifact_mem_announce(w, step_id, NULL);
	snap_free(&w->cur);
	w->cur = now;
}

static int artifact_path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The fast path: only the paths inotify named, each stat'ed once. */
static void artifact_scan_changes(struct worker *w, const char *step_id, struct watch_changes *ch)
{
	struct snap fresh;
	struct stat sb;
	size_t i;

	memset(&fresh, 0, sizeof(fresh));
	for (i = 0; i < ch->nnewdirs; i++) {
		/* watched before anything was put in it (step.c): the events
		 * name its files; otherwise list it (and watch it) now */
		if (!watch_has(&w->watch, ch->newdirs[i]))
			(void)snap_take_under(w->ws, ch->newdirs[i], &fresh, &w->watch); /* gone again: nothing */
	}
	for (i = 0; i < fresh.n; i++) {
		ch->paths = xreallocarray(ch->paths, ch->npaths + 1, sizeof(char *));
		ch->paths[ch->npaths++] = fresh.e[i].path;
		fresh.e[i].path = NULL;
	}
	snap_free(&fresh);
	if (ch->npaths > 1)
		qsort(ch->paths, ch->npaths, sizeof(char *), artifact_path_cmp);
	for (i = 0; i < ch->npaths; i++) {
		const char *p = ch->paths[i];
		if (i > 0 && strcmp(p, ch->paths[i - 1]) == 0)
			continue;
		artifact_mem_announce(w, step_id, p);
		if (fstatat(w->ws_fd, p, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode)) {
			snap_update(&w->cur, p, NULL);
			continue;
		}
		if (snap_update(&w->cur, p, &sb) && artifact_mem_find(w, p) == NULL)
			artifact_created(w, step_id, p, (int64_t)sb.st_size);
	}
	artifact_mem_announce(w, step_id, NULL);
}

void artifact_scan_step(struct worker *w, const char *step_id)
{
	struct watch_changes ch;

	memset(&ch, 0, sizeof(ch));
	if (w->watch.fd >= 0 && w->ws_fd >= 0 && watch_read(&w->watch, &ch) == 0)
		artifact_scan_changes(w, step_id, &ch);
	else
		artifact_scan_full(w, step_id);
	watch_changes_free(&ch);
}

static int artifact_sha256(const char *full, char out[65])
{
	struct sha256_ctx *c;
	char buf[65536];
	ssize_t n;
	int fd;

	if ((fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	c = sha256_begin();
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sha256_end(c, out);
			close(fd);
			return -1;
		}
		sha256_update(c, buf, (size_t)n);
	}
	sha256_end(c, out);
	close(fd);
	return 0;
}

/* Is `path` a file the run produced (new or changed since prepare)? */
static int artifact_is_listed(struct worker *w, const char *path)
{
	const struct snap_ent *e;

	if (artifact_mem_find(w, path) != NULL)
		return 1;
	e = snap_find(&w->cur, path);
	return e != NULL && snap_changed(&w->base, e);
}

/* A small regular file in one buffer (O_NOFOLLOW like `read`): 0, or -1
 * when it cannot be read or has grown past ARTIFACT_INLINE_MAX. */
static int artifact_read_small(struct worker *w, const char *path, struct buf *out)
{
	struct stat sb;
	ssize_t n;
	int fd;

	if (w->ws_fd < 0 || (fd = openat(w->ws_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)ARTIFACT_INLINE_MAX) {
		close(fd);
		return -1;
	}
	/* one byte more than allowed tells "grew" from "exactly the limit" */
	buf_reserve(out, ARTIFACT_INLINE_MAX + 1);
	for (;;) {
		n = read(fd, out->data + out->len, ARTIFACT_INLINE_MAX + 1 - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out->len += (size_t)n;
		if (out->len > ARTIFACT_INLINE_MAX)
			break;
	}
	close(fd);
	if (n < 0 || out->len > ARTIFACT_INLINE_MAX) {
		buf_reset(out);
		return -1;
	}
	return 0;
}

/* A `finish` entry: inline with its data (size is its length), or
 * without (fetched with `read`). */
static void artifact_pack_entry(msgpack_packer *pk, const struct artifact_info *a, int inl, const void *data,
                                size_t len)
{
	if (!inl) {
		artifact_info_pack(pk, a);
		return;
	}
	msgpack_pack_map(pk, 5);
	mp_pack_kstr(pk, "path", a->path);
	mp_pack_kstr(pk, "step_id", a->step_id);
	mp_pack_kint(pk, "size", a->size);
	mp_pack_kstr(pk, "sha256", a->sha256);
	mp_pack_key(pk, "data");
	msgpack_pack_bin(pk, len);
	msgpack_pack_bin_body(pk, data, len);
}

/* One listed file: small ones travel inline (read once, hashed from memory)
 * while the run's inline budget lasts; the rest only get their sha256 and
 * are fetched with `read`. */
static void artifact_pack_one(struct worker *w, msgpack_packer *pk, const struct snap_ent *e, size_t *budget)
{
	struct artifact_info a;
	struct buf data;
	char *full;
	int inl = 0;

	memset(&a, 0, sizeof(a));
	buf_init(&data);
	a.path = emit_mask(w, e->path);
	a.step_id = (char *)(uintptr_t)kvlist_get(&w->attr, e->path);
	a.size = e->size;
	xasprintf(&full, "%s/%s", w->ws, e->path);
	if (e->size >= 0 && (size_t)e->size <= ARTIFACT_INLINE_MAX && (size_t)e->size <= *budget &&
	    artifact_read_small(w, e->path, &data) == 0 && data.len <= *budget) {
		/* what was read is what is announced, even if the file changed */
		inl = 1;
		a.size = (int64_t)data.len;
		*budget -= data.len;
		sha256_hex(data.data, data.len, a.sha256);
	} else if (artifact_sha256(full, a.sha256) < 0) {
		log_warn("sha256 %s", log_esc(a.path, 200));
	}
	free(full);
	artifact_pack_entry(pk, &a, inl, data.data, data.len);
	buf_free(&data);
	free(a.path);
}

/* An in-memory artifact: inline like a small file while the budget lasts,
 * else listed with its sha256 and served by `read` from memory. */
static void artifact_pack_mem(struct worker *w, msgpack_packer *pk, const struct mem_art *m, size_t *budget)
{
	struct artifact_info a;
	int inl = m->len <= ARTIFACT_INLINE_MAX && m->len <= *budget;

	memset(&a, 0, sizeof(a));
	a.path = emit_mask(w, m->path);
	a.step_id = (char *)(uintptr_t)m->step_id;
	a.size = (int64_t)m->len;
	sha256_hex(m->data, m->len, a.sha256);
	if (inl)
		*budget -= m->len;
	artifact_pack_entry(pk, &a, inl, m->data, m->len);
	free(a.path);
}

/* A file of the run, unless an in-memory artifact has its path. */
static int artifact_file_listed(const struct worker *w, const struct snap_ent *e)
{
	return snap_changed(&w->base, e) && artifact_mem_find(w, e->path) == NULL;
}

static void artifact_pack_list(struct worker *w, msgpack_packer *pk)
{
	size_t i, n = w->nmarts, budget = ARTIFACT_INLINE_TOTAL;

	for (i = 0; i < w->cur.n; i++)
		n += artifact_file_listed(w, &w->cur.e[i]);
	msgpack_pack_map(pk, 1);
	mp_pack_key(pk, "artifacts");
	msgpack_pack_array(pk, (uint32_t)n);
	for (i = 0; i < w->nmarts; i++)
		artifact_pack_mem(w, pk, &w->marts[i], &budget);
	for (i = 0; i < w->cur.n; i++) {
		if (artifact_file_listed(w, &w->cur.e[i]))
			artifact_pack_one(w, pk, &w->cur.e[i], &budget);
	}
}

void artifact_finish_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	msgpack_packer pk;
	struct buf b;
	size_t i, done = 0, failed = 0;
	int run_failed = 0;

	if (!w->prepared) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "not prepared");
		return;
	}
	if (mp_get_bool(params, "failed", &run_failed) < 0) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "key 'failed' must be a boolean");
		return;
	}
	for (i = 0; i < w->m.nsteps; i++) {
		done += w->state[i] == STEP_SUCCEEDED;
		failed += w->state[i] == STEP_FAILED || w->state[i] == STEP_CANCELLED;
	}
	if (!w->finished) {
		struct evf f[] = {EVS("pipeline_id", w->m.pipeline_id), EVI("steps_total", w->m.nsteps),
		                  EVI("steps_completed", done), EVI("steps_failed", failed)};
		w->finished = 1;
		run_failed = run_failed || failed > 0;
		emit_event(w, run_failed ? "run_failed" : "run_complete", NULL, f, sizeof(f) / sizeof(f[0]));
	}
	/* the listing is current when the watches saw everything since the
	 * last step; otherwise (or without inotify) walk the workspace */
	if (w->watch.fd < 0 || w->watch.broken) {
		if (snap_take(w->ws, &w->cur) < 0)
			log_warn("workspace scan");
	}
	rpc_reply_begin(&b, &pk, msgid);
	artifact_pack_list(w, &pk);
	rpc_reply_end(w, &b);
}

static int artifact_read_params(struct worker *w, uint32_t msgid, const msgpack_object *params, char **path,
                                int64_t *off, int64_t *len)
{
	*off = 0;
	*len = 1048576;
	if (mp_get_str(params, "path", path) != 0 || mp_get_int(params, "offset", off) < 0 ||
	    mp_get_int(params, "length", len) < 0) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "read needs path:str, offset:int, length:int");
		return -1;
	}
	if (*off < 0 || *len < 0 || *len > WORKER_READ_MAX) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "offset must be >= 0 and length in 0..4194304");
		return -1;
	}
	if (!path_is_safe(*path) || !artifact_is_listed(w, *path)) {
		rpc_reply_error(w, msgid, ERR_NOT_FOUND, "no such artifact");
		return -1;
	}
	return 0;
}

static void artifact_read_reply(struct worker *w, uint32_t msgid, const void *data, size_t n, int64_t off, int64_t size)
{
	msgpack_packer pk;
	struct buf b;

	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 3);
	mp_pack_key(&pk, "data");
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, data, n);
	mp_pack_kint(&pk, "size", size);
	mp_pack_key(&pk, "eof");
	if (off + (int64_t)n >= size)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	rpc_reply_end(w, &b);
}

static void artifact_read_mem(struct worker *w, uint32_t msgid, const struct mem_art *m, int64_t off, int64_t len)
{
	size_t n = 0;

	if ((uint64_t)off < m->len)
		n = m->len - (size_t)off < (uint64_t)len ? m->len - (size_t)off : (size_t)len;
	artifact_read_reply(w, msgid, n > 0 ? m->data + off : (const uint8_t *)"", n, off, (int64_t)m->len);
}

void artifact_read_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	char *path = NULL, *full, *data;
	const struct mem_art *m;
	int64_t off, len, size;
	ssize_t n;
	int fd;

	if (!w->prepared) {
		rpc_reply_error(w, msgid, ERR_INVALID_REQUEST, "not prepared");
		return;
	}
	if (artifact_read_params(w, msgid, params, &path, &off, &len) < 0) {
		free(path);
		return;
	}
	if ((m = artifact_mem_find(w, path)) != NULL) {
		free(path);
		artifact_read_mem(w, msgid, m, off, len);
		return;
	}
	xasprintf(&full, "%s/%s", w->ws, path);
	free(path);
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(full);
	if (fd < 0) {
		rpc_reply_error(w, msgid, ERR_NOT_FOUND, "no such artifact");
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	data = xmalloc((size_t)len + 1);
	n = pread(fd, data, (size_t)len, off);
	close(fd);
	if (n < 0 || size < 0) {
		free(data);
		rpc_reply_error(w, msgid, ERR_INTERNAL, "read failed");
		return;
	}
	artifact_read_reply(w, msgid, data, (size_t)n, off, size);
	free(data);
}
