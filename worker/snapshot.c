/*
 * snapshot.c: a listing of the workspace's regular files with size, mtime
 * and inode; a file is new or changed when it is absent from the earlier
 * listing or any of the three differ. A full walk is taken at prepare and
 * finish (and registers inotify watches); between steps the listing is
 * updated path by path (snap_update) from what watch.c reports.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"

#define SNAP_MAX_DEPTH 64

struct snap_acc {
	struct snap *s;
	size_t cap;
	struct watch *wt; /* NULL: no watches */
	const char *root;
};

static void snap_ent_set(struct snap_ent *e, const struct stat *sb)
{
	e->size = (int64_t)sb->st_size;
	e->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	e->ino = (uint64_t)sb->st_ino;
}

static void snap_add(struct snap_acc *a, const char *path, const struct stat *sb)
{
	struct snap_ent *e;

	if (a->s->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->s->e = xreallocarray(a->s->e, a->cap, sizeof(*a->s->e));
	}
	e = &a->s->e[a->s->n++];
	e->path = xstrdup(path);
	snap_ent_set(e, sb);
}

static int snap_walk(struct snap_acc *a, int dfd, const char *prefix, unsigned depth)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc = 0;

	if (depth > SNAP_MAX_DEPTH || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return depth > SNAP_MAX_DEPTH ? 0 : -1;
	}
	/* watch before listing: a file created meanwhile is seen by one or both */
	if (a->wt != NULL)
		watch_add(a->wt, a->root, prefix);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char *rel;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* vanished meanwhile */
		xasprintf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name);
		if (S_ISREG(sb.st_mode)) {
			snap_add(a, rel, &sb);
		} else if (S_ISDIR(sb.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				rc = snap_walk(a, sub, rel, depth + 1);
		}
		free(rel);
	}
	closedir(d);
	return rc;
}

static int snap_cmp(const void *a, const void *b)
{
	return strcmp(((const struct snap_ent *)a)->path, ((const struct snap_ent *)b)->path);
}

int snap_take(const char *root, struct snap *s)
{
	return snap_take_watch(root, s, NULL);
}

int snap_take_watch(const char *root, struct snap *s, struct watch *wt)
{
	snap_free(s);
	if (snap_take_under(root, "", s, wt) < 0)
		return -1;
	if (s->n > 1)
		qsort(s->e, s->n, sizeof(*s->e), snap_cmp);
	return 0;
}

/* Append (unsorted) the files under root/rel, watching its directories. */
int snap_take_under(const char *root, const char *rel, struct snap *s, struct watch *wt)
{
	struct snap_acc a = {s, s->n, wt, root};
	char *full;
	int fd;

	xasprintf(&full, "%s%s%s", root, *rel ? "/" : "", rel);
	fd = open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(full);
	if (fd < 0)
		return -1;
	return snap_walk(&a, fd, rel, 0);
}

void snap_copy(struct snap *dst, const struct snap *src)
{
	size_t i;

	snap_free(dst);
	if (src->n == 0)
		return;
	dst->e = xreallocarray(NULL, src->n, sizeof(*dst->e));
	for (i = 0; i < src->n; i++) {
		dst->e[i] = src->e[i];
		dst->e[i].path = xstrdup(src->e[i].path);
	}
	dst->n = src->n;
}

/* Index of path in s, or of where it would go (*found = 0). */
static size_t snap_pos(const struct snap *s, const char *path, int *found)
{
	size_t lo = 0, hi = s->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->e[mid].path, path);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Bring one path of s up to date: sb NULL = gone. Returns 1 when the path
 * is (now) a file that is new or changed relative to s. */
int snap_update(struct snap *s, const char *path, const struct stat *sb)
{
	struct snap_ent e;
	int found;
	size_t i = snap_pos(s, path, &found);

	if (sb == NULL) {
		if (found) {
			free(s->e[i].path);
			memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(*s->e));
			s->n--;
		}
		return 0;
	}
	snap_ent_set(&e, sb);
	if (found) {
		if (s->e[i].size == e.size && s->e[i].mtime_ns == e.mtime_ns && s->e[i].ino == e.ino)
			return 0;
		e.path = s->e[i].path;
		s->e[i] = e;
		return 1;
	}
	e.path = xstrdup(path);
	s->e = xreallocarray(s->e, s->n + 1, sizeof(*s->e));
	memmove(&s->e[i + 1], &s->e[i], (s->n - i) * sizeof(*s->e));
	s->e[i] = e;
	s->n++;
	return 1;
}

void snap_free(struct snap *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->e[i].path);
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

const struct snap_ent *snap_find(const struct snap *s, const char *path)
{
	struct snap_ent key = {.path = (char *)(uintptr_t)path};

	if (s->n == 0)
		return NULL;
	return bsearch(&key, s->e, s->n, sizeof(*s->e), snap_cmp);
}

int snap_changed(const struct snap *before, const struct snap_ent *e)
{
	const struct snap_ent *o = snap_find(before, e->path);

	return o == NULL || o->size != e->size || o->mtime_ns != e->mtime_ns || o->ino != e->ino;
}
