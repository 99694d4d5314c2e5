/*
 * snapshot.c: a listing of the workspace's regular files with size, mtime
 * and inode, taken before and after each step; a file is new or changed
 * when it is absent from the earlier listing or any of the three differ.
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
};

static void
snap_add(struct snap_acc *a, const char *path, const struct stat *sb)
{
	struct snap_ent *e;

	if (a->s->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->s->e = xreallocarray(a->s->e, a->cap, sizeof(*a->s->e));
	}
	e = &a->s->e[a->s->n++];
	e->path = xstrdup(path);
	e->size = (int64_t)sb->st_size;
	e->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	e->ino = (uint64_t)sb->st_ino;
}

static int
snap_walk(struct snap_acc *a, int dfd, const char *prefix, unsigned depth)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc = 0;

	if (depth > SNAP_MAX_DEPTH || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return depth > SNAP_MAX_DEPTH ? 0 : -1;
	}
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

static int
snap_cmp(const void *a, const void *b)
{
	return strcmp(((const struct snap_ent *)a)->path, ((const struct snap_ent *)b)->path);
}

int
snap_take(const char *root, struct snap *s)
{
	struct snap_acc a = {s, 0};
	int fd;

	snap_free(s);
	if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if (snap_walk(&a, fd, "", 0) < 0)
		return -1;
	if (s->n > 1)
		qsort(s->e, s->n, sizeof(*s->e), snap_cmp);
	return 0;
}

void
snap_free(struct snap *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->e[i].path);
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

const struct snap_ent *
snap_find(const struct snap *s, const char *path)
{
	struct snap_ent key = {.path = (char *)(uintptr_t)path};

	if (s->n == 0)
		return NULL;
	return bsearch(&key, s->e, s->n, sizeof(*s->e), snap_cmp);
}

int
snap_changed(const struct snap *before, const struct snap_ent *e)
{
	const struct snap_ent *o = snap_find(before, e->path);

	return o == NULL || o->size != e->size || o->mtime_ns != e->mtime_ns || o->ino != e->ino;
}
