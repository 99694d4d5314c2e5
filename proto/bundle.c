/*
 * bundle.c: the run context as one value: a list of [path, mode, data]
 * files. Built from a directory by the client, checked and stored by the
 * daemon, loaded (mapped) by a worker, whose workspace.c unpacks it.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

/* Directory nesting bundle_from_dir follows before giving up. */
#define BUNDLE_MAX_DEPTH 64

static int bundle_path_cmp(const void *a, const void *b)
{
	const struct bundle_file *const *fa = a, *const *fb = b;

	return strcmp((*fa)->path, (*fb)->path);
}

/* Sort pointers, not the files: the wire order is kept. */
static const char *bundle_find_dup(const struct bundle *b)
{
	const struct bundle_file **v;
	const char *dup = NULL;
	size_t i;

	if (b->n < 2)
		return NULL;
	v = xcalloc(b->n, sizeof(*v));
	for (i = 0; i < b->n; i++)
		v[i] = &b->files[i];
	qsort(v, b->n, sizeof(*v), bundle_path_cmp);
	for (i = 1; i < b->n && dup == NULL; i++)
		if (strcmp(v[i - 1]->path, v[i]->path) == 0)
			dup = v[i]->path;
	free(v);
	return dup;
}

static int bundle_decode_file(const msgpack_object *e, struct bundle_file *f, size_t idx, char *err, size_t errlen)
{
	const msgpack_object *a;

	if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3) {
		rpc_err_printf(err, errlen, "bundle entry %zu must be [path, mode, data]", idx);
		return -1;
	}
	a = e->via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_STR || a[0].via.str.size == 0 || a[0].via.str.size >= PATH_MAX ||
	    memchr(a[0].via.str.ptr, '\0', a[0].via.str.size) != NULL) {
		rpc_err_printf(err, errlen, "bundle entry %zu: path must be a non-empty string", idx);
		return -1;
	}
	f->path = mp_strdup(&a[0]);
	if (!path_is_safe(f->path)) {
		rpc_err_printf(err, errlen, "bundle entry %zu: unsafe path '%s'", idx, log_esc(f->path, 200));
		return -1;
	}
	if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 > 07777) {
		rpc_err_printf(err, errlen, "bundle entry '%s': mode must be an integer <= 07777",
		               log_esc(f->path, 200));
		return -1;
	}
	f->mode = (uint32_t)a[1].via.u64;
	if (a[2].type == MSGPACK_OBJECT_BIN) {
		f->data = (const uint8_t *)a[2].via.bin.ptr;
		f->len = a[2].via.bin.size;
	} else if (a[2].type == MSGPACK_OBJECT_STR) {
		f->data = (const uint8_t *)a[2].via.str.ptr;
		f->len = a[2].via.str.size;
	} else {
		rpc_err_printf(err, errlen, "bundle entry '%s': data must be bin", log_esc(f->path, 200));
		return -1;
	}
	return 0;
}

int bundle_decode(const msgpack_object *o, struct bundle *b, size_t max_bytes, enum rpc_err *code, char *err,
                  size_t errlen)
{
	const char *dup;
	uint32_t i;

	memset(b, 0, sizeof(*b));
	*code = ERR_INVALID_REQUEST;
	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY) {
		rpc_err_printf(err, errlen, "bundle must be an array of [path, mode, data]");
		return -1;
	}
	if (o->via.array.size > 0)
		b->files = xcalloc(o->via.array.size, sizeof(*b->files));
	for (i = 0; i < o->via.array.size; i++) {
		b->n++;
		if (bundle_decode_file(&o->via.array.ptr[i], &b->files[i], i, err, errlen) == -1)
			goto fail;
		b->total += b->files[i].len;
		if (b->total > max_bytes) {
			*code = ERR_TOO_LARGE;
			rpc_err_printf(err, errlen, "context larger than %zu bytes", max_bytes);
			goto fail;
		}
	}
	if ((dup = bundle_find_dup(b)) != NULL) {
		rpc_err_printf(err, errlen, "duplicate path '%s' in bundle", log_esc(dup, 200));
		goto fail;
	}
	return 0;
fail:
	bundle_free(b);
	return -1;
}

void bundle_pack(msgpack_packer *pk, const struct bundle *b)
{
	size_t i;

	msgpack_pack_array(pk, b->n);
	for (i = 0; i < b->n; i++) {
		msgpack_pack_array(pk, 3);
		mp_pack_str(pk, b->files[i].path);
		msgpack_pack_uint32(pk, b->files[i].mode);
		msgpack_pack_bin(pk, b->files[i].len);
		msgpack_pack_bin_body(pk, b->files[i].data, b->files[i].len);
	}
}

const struct bundle_file *bundle_find(const struct bundle *b, const char *path)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->files[i].path, path) == 0)
			return &b->files[i];
	return NULL;
}

void bundle_free(struct bundle *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->files[i].path);
	free(b->files);
	free(b->owned);
	if (b->map != NULL) {
		munmap(b->map, b->maplen);
		close(b->fd);
	}
	for (i = 0; i < b->nfmaps; i++)
		munmap(b->fmaps[i].p, b->fmaps[i].len);
	free(b->fmaps);
	memset(b, 0, sizeof(*b));
}

int bundle_data_offset(const struct bundle *b, const struct bundle_file *f, off_t *off)
{
	const uint8_t *base = b->map;

	if (base == NULL || f->data < base || f->data + f->len > base + b->maplen)
		return -1;
	*off = (off_t)(f->data - base);
	return 0;
}

/* bundle_from_dir: collect, sort, then read into one backing buffer. */

struct bundle_walk {
	struct bundle *b;
	size_t max_bytes;
	char *err;
	size_t errlen;
};

static int bundle_walk_dir(struct bundle_walk *w, const char *root, const char *rel, int depth);

static int bundle_walk_entry(struct bundle_walk *w, const char *root, const char *rel)
{
	struct bundle *b = w->b;
	struct stat st;
	char *full;
	int r;

	xasprintf(&full, "%s/%s", root, rel);
	r = lstat(full, &st);
	free(full);
	if (r == -1) {
		rpc_err_printf(w->err, w->errlen, "%s: %s", rel, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return 1;
	if (S_ISLNK(st.st_mode)) {
		rpc_err_printf(w->err, w->errlen, "%s: symbolic links are not allowed in a run context", rel);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		rpc_err_printf(w->err, w->errlen, "%s: not a regular file", rel);
		return -1;
	}
	if ((uint64_t)st.st_size > w->max_bytes - b->total) {
		rpc_err_printf(w->err, w->errlen, "context larger than %zu bytes (at %s)", w->max_bytes, rel);
		return -1;
	}
	b->files = xreallocarray(b->files, b->n + 1, sizeof(*b->files));
	b->files[b->n].path = xstrdup(rel);
	b->files[b->n].mode = st.st_mode & 07777;
	b->files[b->n].data = NULL;
	b->files[b->n].len = (size_t)st.st_size;
	b->n++;
	b->total += (size_t)st.st_size;
	return 0;
}

static int bundle_walk_dir(struct bundle_walk *w, const char *root, const char *rel, int depth)
{
	struct dirent *de;
	DIR *d;
	char *path, *sub;
	int r = 0;

	if (depth > BUNDLE_MAX_DEPTH) {
		rpc_err_printf(w->err, w->errlen, "%s: directories nested too deep", rel);
		return -1;
	}
	if (*rel == '\0')
		path = xstrdup(root);
	else
		xasprintf(&path, "%s/%s", root, rel);
	if ((d = opendir(path)) == NULL) {
		rpc_err_printf(w->err, w->errlen, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (*rel == '\0')
			sub = xstrdup(de->d_name);
		else
			xasprintf(&sub, "%s/%s", rel, de->d_name);
		r = bundle_walk_entry(w, root, sub);
		if (r == 1)
			r = bundle_walk_dir(w, root, sub, depth + 1);
		free(sub);
	}
	closedir(d);
	return r;
}

static int bundle_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bundle_file *)a)->path, ((const struct bundle_file *)b)->path);
}

/* Read exactly f->len bytes; a file that changed size since lstat fails. */
static int bundle_read_file(const char *root, struct bundle_file *f, uint8_t *dst, char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	ssize_t r;
	char *full, extra;
	int fd;

	xasprintf(&full, "%s/%s", root, f->path);
	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	free(full);
	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		rpc_err_printf(err, errlen, "%s: %s", f->path, fd == -1 ? strerror(errno) : "not a regular file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	while (got < f->len) {
		r = read(fd, dst + got, f->len - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != f->len || read(fd, &extra, 1) != 0) {
		rpc_err_printf(err, errlen, "%s: file changed while packing", f->path);
		close(fd);
		return -1;
	}
	close(fd);
	f->data = dst;
	return 0;
}

/*
 * A big file is mapped (shared, read-only, populated from the page cache)
 * instead of read into fresh memory: the client then sends it from the
 * page cache (bundle_write_fd). Its size must still be the one listed; a
 * file cut short later makes the send fail (EFAULT), never a short bundle.
 */
#define BUNDLE_MAP_MIN (1024 * 1024)

static int bundle_map_one(const char *root, struct bundle *b, struct bundle_file *f, char *err, size_t errlen)
{
	struct stat st;
	char *full;
	void *p;
	int fd;

	xasprintf(&full, "%s/%s", root, f->path);
	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	free(full);
	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (size_t)st.st_size != f->len) {
		rpc_err_printf(err, errlen, "%s: %s", f->path,
		               fd == -1               ? strerror(errno)
		               : !S_ISREG(st.st_mode) ? "not a regular file"
		                                      : "file changed while packing");
		if (fd != -1)
			close(fd);
		return -1;
	}
	p = mmap(NULL, f->len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		rpc_err_printf(err, errlen, "%s: mmap: %s", f->path, strerror(errno));
		return -1;
	}
	b->fmaps = xreallocarray(b->fmaps, b->nfmaps + 1, sizeof(*b->fmaps));
	b->fmaps[b->nfmaps].p = p;
	b->fmaps[b->nfmaps++].len = f->len;
	f->data = p;
	return 0;
}

int bundle_from_dir(struct bundle *b, const char *dir, size_t max_bytes, char *err, size_t errlen)
{
	struct bundle_walk w = {b, max_bytes, err, errlen};
	size_t i, off = 0, small = 0;

	memset(b, 0, sizeof(*b));
	if (bundle_walk_dir(&w, dir, "", 0) == -1)
		goto fail;
	if (b->n > 0)
		qsort(b->files, b->n, sizeof(*b->files), bundle_file_cmp);
	for (i = 0; i < b->n; i++)
		if (b->files[i].len < BUNDLE_MAP_MIN)
			small += b->files[i].len;
	b->owned = xmalloc(small);
	for (i = 0; i < b->n; i++) {
		if (b->files[i].len >= BUNDLE_MAP_MIN) {
			if (bundle_map_one(dir, b, &b->files[i], err, errlen) == -1)
				goto fail;
			continue;
		}
		if (bundle_read_file(dir, &b->files[i], b->owned + off, err, errlen) == -1)
			goto fail;
		off += b->files[i].len;
	}
	return 0;
fail:
	bundle_free(b);
	return -1;
}

/*
 * The packed headers (array heads, paths, modes, bin heads) go to one
 * small buffer; the iovecs alternate between slices of it and the file
 * data where it lies, flushed in batches of BUNDLE_IOV.
 */
#define BUNDLE_IOV 64
int bundle_write_fd(const struct bundle *b, int fd)
{
	struct iovec iov[BUNDLE_IOV];
	size_t start[BUNDLE_IOV], i, hs = 0;
	msgpack_packer pk;
	struct buf h;
	int n = 0, k, rc = 0;

	buf_init(&h);
	rpc_packer_init(&pk, &h);
	msgpack_pack_array(&pk, b->n);
	for (i = 0; i <= b->n && rc == 0; i++) {
		if (i < b->n) {
			msgpack_pack_array(&pk, 3);
			mp_pack_str(&pk, b->files[i].path);
			msgpack_pack_uint32(&pk, b->files[i].mode);
			msgpack_pack_bin(&pk, b->files[i].len);
		}
		/* header slice [hs, h.len): its base is fixed at flush time,
		 * since h may move while it grows */
		start[n] = hs;
		iov[n++].iov_len = h.len - hs;
		hs = h.len;
		if (i < b->n && b->files[i].len > 0) {
			start[n] = SIZE_MAX;
			iov[n].iov_base = (void *)(uintptr_t)b->files[i].data;
			iov[n++].iov_len = b->files[i].len;
		}
		if (n + 2 > BUNDLE_IOV || i == b->n) {
			for (k = 0; k < n; k++)
				if (start[k] != SIZE_MAX)
					iov[k].iov_base = h.data + start[k];
			rc = writev_all(fd, iov, n);
			n = 0;
		}
	}
	buf_free(&h);
	return rc;
}

int bundle_save(const struct bundle *b, const char *path, off_t *size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), saved;
	off_t end;

	if (fd == -1)
		return -1;
	if (bundle_write_fd(b, fd) == -1 || (end = lseek(fd, 0, SEEK_CUR)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (size != NULL)
		*size = end;
	return close(fd);
}

/* The stored file mapped read-only: -1 with err, or 0 with the mapping, its length and fd. */
static int bundle_map_file(const char *path, size_t limit, void **map, size_t *len, int *fd, char *err, size_t errlen)
{
	struct stat st;

	if ((*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 || fstat(*fd, &st) == -1) {
		rpc_err_printf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0 || (uint64_t)st.st_size > limit) {
		rpc_err_printf(err, errlen, "%s: %s", path,
		               !S_ISREG(st.st_mode) ? "not a regular file"
		               : st.st_size == 0    ? "empty"
		                                    : strerror(EFBIG));
		goto fail;
	}
	*len = (size_t)st.st_size;
	if ((*map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, *fd, 0)) == MAP_FAILED) {
		rpc_err_printf(err, errlen, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (*fd != -1)
		close(*fd);
	*fd = -1;
	return -1;
}

/*
 * The stored bundle, mapped: the scan and the decode read the headers
 * only (bin bodies are skipped), so a big context costs no copy here; its
 * files' data point into the mapping.
 */
int bundle_load(struct bundle *b, const char *path, size_t max_bytes, char *err, size_t errlen)
{
	struct rpc_limits l;
	msgpack_zone zone;
	msgpack_object root;
	size_t off = 0, msglen = 0, need, limit, len;
	const char *serr = NULL;
	enum rpc_err code;
	void *map;
	int r, fd;

	memset(b, 0, sizeof(*b));
	/* a stored bundle came in one message, so the wire limit bounds it */
	limit = max_bytes > SIZE_MAX - (1u << 20) ? SIZE_MAX : max_bytes + (1u << 20);
	if (bundle_map_file(path, limit, &map, &len, &fd, err, errlen) == -1)
		return -1;
	l.max_msg = len;
	l.max_depth = 3;
	l.max_elems = UINT32_MAX;
	l.max_str = UINT32_MAX;
	if (rpc_scan(map, len, &l, &msglen, &need, &serr) != RPC_SCAN_OK || msglen != len) {
		rpc_err_printf(err, errlen, "%s: not a bundle (%s)", path,
		               serr != NULL ? serr : "truncated or trailing bytes");
		r = -1;
		goto out;
	}
	if (!msgpack_zone_init(&zone, 4096))
		fatalx("bundle_load: out of memory");
	/* bin and str objects point into the mapping, which the bundle keeps */
	r = msgpack_unpack((const char *)map, len, &off, &zone, &root) == MSGPACK_UNPACK_SUCCESS
	        ? bundle_decode(&root, b, max_bytes, &code, err, errlen)
	        : (rpc_err_printf(err, errlen, "%s: not a bundle", path), -1);
	msgpack_zone_destroy(&zone);
out:
	if (r == -1) {
		munmap(map, len);
		close(fd);
		return -1;
	}
	b->map = map;
	b->maplen = len;
	b->fd = fd;
	return 0;
}
