/*
 * workspace.c: the run's private directory. Filled from the bundle with
 * *at() calls relative to the workspace fd (each parent made once), which
 * also yields the base listing and the inotify watches without a walk;
 * removed the same way. A small run costs a few syscalls per file; a big
 * file of a staged bundle (bundle_path) is copied in the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "worker.h"

static mode_t ws_umask(void)
{
	static mode_t mask = (mode_t)-1;

	if (mask == (mode_t)-1) {
		mask = umask(022);
		umask(mask);
	}
	return mask;
}

/* The parents of rel, made unless its directory is listed in dirs, which
 * lists every directory of the workspace (for the watches). */
static int ws_parents(struct worker *w, const char *rel, struct kvlist *dirs)
{
	char *tmp = xstrdup(rel), *p = strrchr(tmp, '/');
	int rc = 0;

	if (p != NULL) {
		*p = '\0';
		if (kvlist_get(dirs, tmp) == NULL && (rc = mkdir_parents_at(w->ws_fd, rel)) == 0) {
			for (p = strchr(tmp, '/'); p != NULL; p = strchr(p + 1, '/')) {
				*p = '\0';
				if (kvlist_get(dirs, tmp) == NULL)
					kvlist_add(dirs, tmp, "");
				*p = '/';
			}
			kvlist_add(dirs, tmp, "");
		}
	}
	free(tmp);
	return rc;
}

/* Below this a file is written from memory; above, a file of a stored
 * (mapped) bundle moves in the kernel, without touching its pages here. */
#define WS_COPY_MIN (64 * 1024)

static int ws_fill(int fd, const struct bundle *b, const struct bundle_file *f)
{
	off_t off;

	if (f->len >= WS_COPY_MIN && bundle_data_offset(b, f, &off) == 0)
		return fcopy_range(b->fd, &off, fd, f->len, NULL);
	return write_all(fd, f->data, f->len);
}

static int ws_file(struct worker *w, const struct bundle *b, const struct bundle_file *f, struct kvlist *dirs,
                   char *err, size_t errlen)
{
	mode_t mode = (mode_t)((f->mode & 0755) | 0600);
	struct stat sb;
	int fd;

	if (!path_is_safe(f->path)) {
		snprintf(err, errlen, "unsafe path '%s' in bundle", log_esc(f->path, 200));
		return -1;
	}
	if (ws_parents(w, f->path, dirs) < 0) {
		snprintf(err, errlen, "%s: cannot create parent directories: %s", f->path, strerror(errno));
		return -1;
	}
	fd = openat(w->ws_fd, f->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 || ws_fill(fd, b, f) < 0 || ((mode & ~ws_umask()) != mode && fchmod(fd, mode) < 0) ||
	    fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	snap_update(&w->base, f->path, &sb);
	return 0;
}

/* Where a context of `total` bytes gets its workspace: w->workdir, unless
 * a spill dir is given (workdir is in memory) and the context is larger
 * than --mem-max or the workdir's filesystem has less than twice --mem-max
 * free: then on disk, under the spill dir. */
static const char *ws_parent(const struct worker *w, size_t total)
{
	struct statvfs sv;

	if (w->spill_dir == NULL)
		return w->workdir;
	if ((int64_t)total > w->mem_max) {
		log_debug("context of %zu bytes > %lld: workspace on disk", total, (long long)w->mem_max);
		return w->spill_dir;
	}
	if (statvfs(w->workdir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize / 2 < (uint64_t)w->mem_max) {
		log_debug("%s has less than twice %lld bytes free: workspace on disk", w->workdir,
		          (long long)w->mem_max);
		return w->spill_dir;
	}
	return w->workdir;
}

/* Create the workspace (ws_parent), unpack b into it; w->base lists
 * what it holds and every directory is watched. */
int ws_create(struct worker *w, const struct bundle *b, char *err, size_t errlen)
{
	struct kvlist dirs;
	char *tmpl;
	size_t i;
	int rc = 0;

	xasprintf(&tmpl, "%s/osiris-ws-XXXXXX", ws_parent(w, b->total));
	if (mkdtemp(tmpl) == NULL) {
		snprintf(err, errlen, "workspace %s: %s", tmpl, strerror(errno));
		free(tmpl);
		return -1;
	}
	w->ws = tmpl;
	if ((w->ws_fd = open(w->ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "workspace %s: %s", w->ws, strerror(errno));
		return -1;
	}
	if (watch_open(&w->watch) < 0)
		log_warn("inotify (steps fall back to full workspace scans)");
	memset(&dirs, 0, sizeof(dirs));
	for (i = 0; i < b->n && rc == 0; i++)
		rc = ws_file(w, b, &b->files[i], &dirs, err, errlen);
	/* watched once unpacked (nothing else writes here before the first
	 * step, and base holds what was written): the unpacking makes no
	 * inotify events for the first step's scan to read and stat */
	watch_add(&w->watch, w->ws, "");
	for (i = 0; i < dirs.n; i++)
		watch_add(&w->watch, w->ws, dirs.v[i].key);
	kvlist_free(&dirs);
	return rc;
}

/* rm -rf of the workspace, relative to its fd (closed here). */
int ws_remove(struct worker *w)
{
	int rc = 0;

	if (w->ws == NULL)
		return 0;
	if (w->ws_fd >= 0) {
		rc = rmtree_fd(w->ws_fd);
		w->ws_fd = -1;
	}
	if (rmdir(w->ws) < 0 && errno != ENOENT && rmtree(w->ws) < 0) /* no fd, or what it left */
		rc = -1;
	return rc;
}
