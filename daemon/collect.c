/*
 * collect.c: artifact collection. After `finish`, files the worker sent
 * inline are verified and kept in the store (up to STORE_ART_BLOB_MAX: no
 * file per small artifact; bigger ones written at once); a big file of a
 * local worker is hard-linked or copied in the kernel (collect_open_kernel);
 * one of a remote worker is downloaded in one request where the backend can
 * (pool_ops.fetch); any other is read in chunks (`read`); all into
 * the run's artifacts directory (rundir_artifacts); every file is
 * checked against its size and sha256, then indexed in the store. Paths
 * are resolved under the artifacts dir one component at a time, never
 * through a symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "osirisd.h"

#define COLLECT_CHUNK (4 * 1024 * 1024)

static void collect_next(struct run *r);

/*
 * The directory holding `path` (relative, path_is_safe) under dirfd: each
 * component opened with O_NOFOLLOW | O_DIRECTORY (made first when missing
 * and `create`), so a symlink planted anywhere inside the artifacts dir
 * cannot send a write elsewhere (ELOOP / ENOTDIR). Returns a new fd, or -1
 * with errno; *base is the last component of path.
 */
static int collect_parent_at(int dirfd, const char *path, int create, const char **base)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char comp[NAME_MAX + 1];
	const char *p = path, *slash;
	int fd, next, saved;

	if ((fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	while ((slash = strchr(p, '/')) != NULL) {
		if ((size_t)(slash - p) > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, (size_t)(slash - p));
		comp[slash - p] = '\0';
		next = openat(fd, comp, flags);
		if (next == -1 && errno == ENOENT && create && (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST))
			next = openat(fd, comp, flags);
		saved = errno;
		close(fd);
		if ((fd = next) == -1) {
			errno = saved;
			return -1;
		}
		p = slash + 1;
	}
	*base = p;
	return fd;
}

/* The run's artifacts directory (made when missing). */
static int collect_open_dir(struct run *r)
{
	char *art = rundir_artifacts(r->info.id);
	int fd;

	fd = open(art, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && mkdir_parents(art) == 0 && (mkdir(art, 0755) == 0 || errno == EEXIST))
		fd = open(art, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(art);
	return fd;
}

/* The directory holding artifact `path` of the run, as collect_parent_at. */
static int collect_parent(struct run *r, const char *path, int create, const char **base)
{
	int dirfd = collect_open_dir(r), fd, saved;

	if (dirfd == -1)
		return -1;
	fd = collect_parent_at(dirfd, path, create, base);
	saved = errno;
	close(dirfd);
	errno = saved;
	return fd;
}

/* r->art_final is the artifact's path, r->art_tmp the name of its partial
 * file (".<name>.part") in the same directory. */
static void collect_unlink_tmp(struct run *r)
{
	const char *base;
	int pfd = collect_parent(r, r->art_final, 0, &base);

	if (pfd == -1)
		return;
	if (unlinkat(pfd, r->art_tmp, 0) == -1 && errno != ENOENT)
		log_warn("run=%s: cannot remove the partial file of %s", r->info.id, log_esc(r->art_final, 200));
	close(pfd);
}

static void collect_close(struct run *r, int keep)
{
	char sha[65];

	if (r->art_fd != -1) {
		close(r->art_fd);
		r->art_fd = -1;
	}
	if (r->art_src != -1) {
		close(r->art_src);
		r->art_src = -1;
	}
	if (r->art_ev != NULL) {
		event_free(r->art_ev);
		r->art_ev = NULL;
	}
	r->art_linked = 0;
	if (r->art_sha != NULL) {
		sha256_end(r->art_sha, sha);
		r->art_sha = NULL;
	}
	if (!keep && r->art_tmp != NULL)
		collect_unlink_tmp(r);
	free(r->art_tmp);
	free(r->art_final);
	r->art_tmp = r->art_final = NULL;
}

void collect_abort(struct run *r)
{
	size_t i;

	collect_close(r, 0);
	for (i = 0; i < r->narts; i++)
		artifact_info_free(&r->arts[i]);
	free(r->arts);
	r->arts = NULL;
	r->narts = r->art_i = 0;
}

/*
 * A file the worker produced could not be written: the daemon's storage
 * failed, not the worker. A full disk (or quota, I/O error, read-only
 * filesystem) fails the run with the reason rather than letting it
 * succeed without the artifact; other errors (a path that cannot be made
 * under the artifacts dir) only skip the file.
 */
static void collect_not_stored(struct run *r, const char *path, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		run_fail(r, "state dir full: artifact %s not stored (%s)", log_esc(path, 200), strerror(err));
	else if (err == EIO || err == EROFS)
		run_fail(r, "artifact %s not stored: %s", log_esc(path, 200), strerror(err));
}

static void collect_skip(struct run *r, const char *why)
{
	log_warnx("run=%s artifact %s not collected: %s", r->info.id, log_esc(r->arts[r->art_i].path, 200), why);
	collect_close(r, 0);
	r->art_i++;
	collect_next(r);
}

static void collect_request(struct run *r)
{
	msgpack_packer *pk = wsess_begin(r->worker->sess, "read");

	msgpack_pack_map(pk, 3);
	mp_pack_kstr(pk, "path", r->arts[r->art_i].path);
	mp_pack_kint(pk, "offset", r->art_off);
	mp_pack_kint(pk, "length", COLLECT_CHUNK);
}

static void collect_read_cb(struct worker *w, const struct rpc_msg *m, void *arg);

static void collect_send(struct run *r)
{
	collect_request(r);
	if (wsess_end(r->worker->sess, collect_read_cb, r) == -1) {
		log_warnx("run=%s: cannot send read to the worker", r->info.id);
		if (r->worker != NULL)
			r->pool->ops->cancel(r->worker, 1); /* `gone` ends the run */
	}
}

/* The verified partial file becomes the artifact (a symlink at the final
 * name is replaced, not followed). 0, or -1 with errno. */
static int collect_commit_tmp(struct run *r)
{
	const char *base;
	int pfd = collect_parent(r, r->art_final, 0, &base), rc, saved;

	if (pfd == -1)
		return -1;
	rc = renameat(pfd, r->art_tmp, pfd, base);
	saved = errno;
	close(pfd);
	errno = saved;
	return rc;
}

static void collect_done_one(struct run *r)
{
	struct artifact_info *a = &r->arts[r->art_i];
	char sha[65];

	sha256_end(r->art_sha, sha);
	r->art_sha = NULL;
	if (r->art_off != a->size || strcmp(sha, a->sha256) != 0) {
		collect_skip(r, r->art_off != a->size ? "size differs from the worker's listing"
		                                      : "sha256 differs from the worker's listing");
		return;
	}
	close(r->art_fd);
	r->art_fd = -1;
	if (collect_commit_tmp(r) == -1) {
		collect_not_stored(r, a->path, errno);
		collect_skip(r, strerror(errno));
		return;
	}
	if (store_artifact_add(osirisd.store, r->info.id, a) == -1)
		log_warnx("run=%s: cannot index artifact %s", r->info.id, log_esc(a->path, 200));
	r->disk_bytes += rundir_bytes(a->size);
	collect_close(r, 1);
	r->art_i++;
	collect_next(r);
}

static void collect_read_cb(struct worker *w, const struct rpc_msg *m, void *arg)
{
	struct run *r = arg;
	const msgpack_object *data;
	int eof = 0;

	(void)w;
	if (m->error != NULL) {
		collect_skip(r, "the worker could not read it");
		return;
	}
	data = m->result != NULL ? mp_get(m->result, "data") : NULL;
	if (data == NULL || (data->type != MSGPACK_OBJECT_BIN && data->type != MSGPACK_OBJECT_STR) ||
	    mp_get_bool(m->result, "eof", &eof) == -1) {
		collect_skip(r, "bad read result from the worker");
		return;
	}
	if (data->via.bin.size > COLLECT_CHUNK || r->art_off + (int64_t)data->via.bin.size > r->arts[r->art_i].size) {
		collect_skip(r, "the worker sent more bytes than announced");
		return;
	}
	if (write_all(r->art_fd, data->via.bin.ptr, data->via.bin.size) == -1) {
		collect_not_stored(r, r->arts[r->art_i].path, errno);
		collect_skip(r, strerror(errno));
		return;
	}
	sha256_update(r->art_sha, data->via.bin.ptr, data->via.bin.size);
	r->art_off += (int64_t)data->via.bin.size;
	if (eof || r->art_off == r->arts[r->art_i].size)
		collect_done_one(r);
	else if (data->via.bin.size == 0)
		collect_skip(r, "the worker sent an empty chunk before the end");
	else
		collect_send(r);
}

/* -- one streamed download per file (pool_ops.fetch: E2B's /files) -------- */

static int collect_fetch_data_cb(const uint8_t *buf, size_t len, void *arg)
{
	struct run *r = arg;

	if (r->art_off + (int64_t)len > r->arts[r->art_i].size) {
		r->art_fetch_err = "the worker's file is bigger than its listing says";
		return -1;
	}
	if (write_all(r->art_fd, buf, len) == -1) {
		r->art_fetch_errno = errno;
		return -1;
	}
	sha256_update(r->art_sha, buf, len);
	r->art_off += (int64_t)len;
	return 0;
}

/* Back to the start of the partial file, for `read` after a download
 * that failed on the way. */
static int collect_rewind(struct run *r)
{
	char sha[65];

	if (ftruncate(r->art_fd, 0) == -1 || lseek(r->art_fd, 0, SEEK_SET) == -1)
		return -1;
	sha256_end(r->art_sha, sha);
	r->art_sha = sha256_begin();
	r->art_off = 0;
	return 0;
}

static void collect_fetch_done_cb(struct worker *w, const char *err, void *arg)
{
	struct run *r = arg;
	const char *bad = r->art_fetch_err;
	int saved = r->art_fetch_errno;

	(void)w;
	r->art_fetch_err = NULL;
	r->art_fetch_errno = 0;
	if (saved != 0) {
		collect_not_stored(r, r->arts[r->art_i].path, saved);
		collect_skip(r, strerror(saved));
		return;
	}
	if (bad != NULL) {
		collect_skip(r, bad);
		return;
	}
	if (err != NULL) {
		log_info("run=%s artifact %s: download failed (%s), reading it through the worker instead", r->info.id,
		         log_esc(r->arts[r->art_i].path, 200), log_esc(err, 200));
		if (collect_rewind(r) == -1) {
			collect_not_stored(r, r->arts[r->art_i].path, errno);
			collect_skip(r, strerror(errno));
			return;
		}
		collect_send(r);
		return;
	}
	collect_done_one(r);
}

/* The whole file in one request when the backend can (and `prepare` said
 * where the workspace is), else `read` chunk by chunk. */
static void collect_fetch_or_read(struct run *r)
{
	char *path;

	if (r->pool->ops->fetch == NULL || r->workspace == NULL) {
		collect_send(r);
		return;
	}
	xasprintf(&path, "%s/%s", r->workspace, r->arts[r->art_i].path);
	r->pool->ops->fetch(r->worker, path, collect_fetch_data_cb, collect_fetch_done_cb, r);
	free(path);
}

static int collect_open(struct run *r, const struct artifact_info *a)
{
	const char *base;
	int pfd, saved;

	if ((pfd = collect_parent(r, a->path, 1, &base)) == -1)
		return -1;
	/* Partial data goes to a hidden sibling and is renamed once verified. */
	r->art_final = xstrdup(a->path);
	xasprintf(&r->art_tmp, ".%s.part", base);
	r->art_fd = openat(pfd, r->art_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	saved = errno;
	close(pfd);
	if (r->art_fd == -1) {
		/* nothing of ours to remove: keep collect_close from unlinking
		 * whatever is there */
		free(r->art_tmp);
		r->art_tmp = NULL;
		errno = saved;
		return -1;
	}
	r->art_sha = sha256_begin();
	r->art_off = 0;
	return 0;
}

/*
 * Big files of a local worker move in the kernel: the workspace file
 * (pool op open_artifact) is hard-linked into the artifacts dir when both
 * share a filesystem, else copied by fcopy_range, COLLECT_KCHUNK per pass
 * of the event loop (an active event, no thread, no blocking pass over a
 * 100 MB file); each chunk is then hashed from the stored file itself, so
 * the sha256 checked against the worker's is that of the bytes kept. A
 * worker without open_artifact, or a file it cannot open this way, goes
 * through `read`.
 */
#define COLLECT_KERNEL_MIN (1024 * 1024)
#define COLLECT_KCHUNK (8 * 1024 * 1024)

static int collect_hash_range(struct run *r, off_t off, size_t len)
{
	static uint8_t buf[1024 * 1024]; /* warm: no fresh pages per chunk */
	ssize_t n;

	while (len > 0) {
		n = pread(r->art_fd, buf, len < sizeof(buf) ? len : sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? (errno = ENODATA, -1) : -1;
		sha256_update(r->art_sha, buf, (size_t)n);
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static void collect_kernel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	const struct artifact_info *a = &r->arts[r->art_i];
	size_t n = (size_t)(a->size - r->art_off);
	off_t soff = (off_t)r->art_off;
	struct stat st;

	(void)fd;
	(void)what;
	if (n > COLLECT_KCHUNK)
		n = COLLECT_KCHUNK;
	if (!r->art_linked && fcopy_range(r->art_src, &soff, r->art_fd, n, NULL) == -1) {
		if (errno == ENODATA) {
			collect_skip(r, "size differs from the worker's listing");
			return;
		}
		collect_not_stored(r, a->path, errno);
		collect_skip(r, strerror(errno));
		return;
	}
	if (collect_hash_range(r, (off_t)r->art_off, n) == -1) {
		collect_skip(r, errno == ENODATA ? "size differs from the worker's listing" : strerror(errno));
		return;
	}
	r->art_off += (int64_t)n;
	if (r->art_off < a->size) {
		event_active(r->art_ev, EV_TIMEOUT, 0);
		return;
	}
	/* a linked file is the worker's inode: it must not have grown */
	if (fstat(r->art_fd, &st) == -1 || st.st_size != a->size) {
		collect_skip(r, "size differs from the worker's listing");
		return;
	}
	collect_done_one(r);
}

/* 0: started; -1: not this way (nothing left open), use `read`. */
static int collect_open_kernel(struct run *r, const struct artifact_info *a)
{
	char proc[64];
	const char *base;
	struct stat st;
	int src, pfd;

	if (r->pool->ops->open_artifact == NULL || r->worker == NULL || a->size < COLLECT_KERNEL_MIN)
		return -1;
	if ((src = r->pool->ops->open_artifact(r->worker, a->path)) == -1)
		return -1;
	if (fstat(src, &st) == -1 || st.st_size != a->size || (pfd = collect_parent(r, a->path, 1, &base)) == -1) {
		close(src);
		return -1;
	}
	r->art_final = xstrdup(a->path);
	xasprintf(&r->art_tmp, ".%s.part", base);
	(void)unlinkat(pfd, r->art_tmp, 0);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", src);
	if (linkat(AT_FDCWD, proc, pfd, r->art_tmp, AT_SYMLINK_FOLLOW) == 0) {
		r->art_linked = 1;
		r->art_fd = openat(pfd, r->art_tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	} else {
		r->art_fd = openat(pfd, r->art_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	}
	close(pfd);
	r->art_src = src;
	if (r->art_fd == -1) {
		collect_close(r, 0);
		return -1;
	}
	r->art_sha = sha256_begin();
	r->art_off = 0;
	if ((r->art_ev = event_new(r->pool->base, -1, 0, collect_kernel_cb, r)) == NULL)
		fatalx("collect_open_kernel: event_new");
	log_debug("run=%s artifact %s: %s", r->info.id, log_esc(a->path, 200),
	          r->art_linked ? "hard link" : "kernel copy");
	event_active(r->art_ev, EV_TIMEOUT, 0);
	return 0;
}

static void collect_next(struct run *r)
{
	struct artifact_info *a;

	while (r->art_i < r->narts) {
		a = &r->arts[r->art_i];
		if (!path_is_safe(a->path) || a->size < 0) {
			log_warnx("run=%s: worker listed an unsafe artifact path %s", r->info.id,
			          log_esc(a->path, 200));
			r->art_i++;
			continue;
		}
		if (collect_open_kernel(r, a) == 0)
			return;
		if (collect_open(r, a) == -1) {
			collect_not_stored(r, a->path, errno);
			/* no recursion through collect_skip: a worker may list many */
			log_warnx("run=%s artifact %s not collected: %s", r->info.id, log_esc(a->path, 200),
			          strerror(errno));
			collect_close(r, 0);
			r->art_i++;
			continue;
		}
		collect_fetch_or_read(r);
		return;
	}
	collect_abort(r);
	run_collected(r);
}

void collect_start(struct run *r, struct artifact_info *arts, size_t narts)
{
	r->arts = arts;
	r->narts = narts;
	r->art_i = 0;
	log_debug("run=%s collecting %zu artifacts", r->info.id, narts);
	collect_next(r);
}

/* -- inline artifacts ------------------------------------------------------ */

/* Write data as dirfd/path (the bytes are verified already): 0 or -1 with
 * errno, and no partial file left behind. */
static int collect_write_at(int dirfd, const char *path, const void *data, size_t len)
{
	const char *base;
	int pfd, fd, rc = -1, saved;

	if ((pfd = collect_parent_at(dirfd, path, 1, &base)) == -1)
		return -1;
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd != -1 && write_all(fd, data, len) == -1) {
		saved = errno;
		close(fd);
		unlinkat(pfd, base, 0);
		errno = saved;
	} else if (fd != -1) {
		rc = close(fd);
	}
	saved = errno;
	close(pfd);
	errno = saved;
	return rc;
}

/* The bytes are what the listing says: NULL, or why not. */
static const char *collect_inline_check(const struct artifact_info *a, const void *data, size_t len)
{
	char sha[65];

	if (!path_is_safe(a->path))
		return "unsafe path";
	if (a->size < 0 || (uint64_t)a->size != (uint64_t)len)
		return "size differs from the worker's listing";
	sha256_hex(data, len, sha);
	if (strcmp(sha, a->sha256) != 0)
		return "sha256 differs from the worker's listing";
	return NULL;
}

int collect_inline_write(int dirfd, const struct artifact_info *a, const void *data, size_t len, const char **why)
{
	*why = collect_inline_check(a, data, len);
	if (*why == NULL && collect_write_at(dirfd, a->path, data, len) == -1)
		*why = strerror(errno);
	else if (*why != NULL)
		errno = 0; /* refused, not a failed write */
	return *why == NULL ? 0 : -1;
}

/* A small inline artifact becomes a row of the store with its bytes (no
 * file: committed with the run's records, read back by artifact.read). */
static int collect_inline_blob(struct run *r, const struct artifact_info *a, const msgpack_object *data)
{
	const char *why = collect_inline_check(a, data->via.bin.ptr, data->via.bin.size);

	if (why != NULL) {
		log_warnx("run=%s artifact %s not collected: %s", r->info.id, log_esc(a->path, 200), why);
		return 1;
	}
	if (store_artifact_add_data(osirisd.store, r->info.id, a, data->via.bin.ptr, data->via.bin.size) == -1)
		log_warnx("run=%s: cannot index artifact %s", r->info.id, log_esc(a->path, 200));
	return 1;
}

/* An entry that carried its bytes: 1 stored (or rejected: never fetched
 * again), 0 not inline (collect it with `read`). */
static int collect_inline_one(struct run *r, int *dirfd, const struct artifact_info *a, const msgpack_object *data)
{
	const char *why = NULL;

	if (data == NULL || data->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (data->type != MSGPACK_OBJECT_BIN && data->type != MSGPACK_OBJECT_STR)
		why = "inline data is not bin";
	else if (data->via.bin.size <= STORE_ART_BLOB_MAX)
		return collect_inline_blob(r, a, data);
	else if ((*dirfd == -1 && (*dirfd = collect_open_dir(r)) == -1) ||
	         collect_inline_write(*dirfd, a, data->via.bin.ptr, data->via.bin.size, &why) == -1) {
		if (why == NULL)
			why = strerror(errno);
		collect_not_stored(r, a->path, errno);
	}
	if (why != NULL) {
		log_warnx("run=%s artifact %s not collected: %s", r->info.id, log_esc(a->path, 200), why);
		return 1;
	}
	if (store_artifact_add(osirisd.store, r->info.id, a) == -1)
		log_warnx("run=%s: cannot index artifact %s", r->info.id, log_esc(a->path, 200));
	r->disk_bytes += rundir_bytes(a->size);
	return 1;
}

void collect_finish_result(struct run *r, const msgpack_object *result)
{
	const msgpack_object *list = result != NULL ? mp_get(result, "artifacts") : NULL;
	struct artifact_info *arts = NULL;
	size_t i, n = 0, ninline = 0;
	int dirfd = -1;
	char err[256];

	if (list != NULL && list->type == MSGPACK_OBJECT_ARRAY) {
		arts = xcalloc(list->via.array.size + 1, sizeof(*arts));
		for (i = 0; i < list->via.array.size; i++) {
			const msgpack_object *o = &list->via.array.ptr[i];
			if (artifact_info_decode(o, &arts[n], err, sizeof(err)) == -1) {
				log_warnx("run=%s: bad artifact entry: %s", r->info.id, err);
				continue;
			}
			if (collect_inline_one(r, &dirfd, &arts[n], mp_get(o, "data"))) {
				artifact_info_free(&arts[n]);
				ninline++;
				continue;
			}
			n++;
		}
	}
	if (dirfd != -1)
		close(dirfd);
	log_debug("run=%s %zu artifacts inline", r->info.id, ninline);
	collect_start(r, arts, n);
}
