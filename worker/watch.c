/*
 * watch.c: inotify on every workspace directory, so that the scan after a
 * step looks only at the paths that changed (O(changes), not O(files)). A
 * queue overflow or a directory removed/moved says "rescan everything".
 */
#include <sys/inotify.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

#define WATCH_MASK                                                                                                     \
	(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |                \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
#define WATCH_MAX_DIRS 65536

/*
 * One inotify instance per process, kept across runs: closing one waits
 * for an RCU grace period (~10 ms here), which a worker that is reset
 * between runs must not pay. A run's watches go away with its directories
 * (IN_IGNORED); watch_forget drops the table and drains the queue.
 */
int watch_open(struct watch *wt)
{
	wt->broken = 0;
	if (wt->fd >= 0)
		return 0;
	wt->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return wt->fd < 0 ? -1 : 0;
}

static void watch_drain(struct watch *wt)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	do
		n = read(wt->fd, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));
}

/* Forget the run's watches (its directories are gone or going): the
 * table, and whatever their removal queued. */
void watch_forget(struct watch *wt)
{
	size_t i;

	/* no inotify_rm_watch: removed directories drop their watches, and
	 * one still there is found again (same wd) by the next walk */
	for (i = 0; i < wt->ndirs; i++)
		free(wt->dirs[i].rel);
	free(wt->dirs);
	wt->dirs = NULL;
	wt->ndirs = 0;
	wt->broken = 0;
	if (wt->fd >= 0)
		watch_drain(wt);
}

/* At exit only (see above). */
void watch_close(struct watch *wt)
{
	watch_forget(wt);
	if (wt->fd >= 0)
		close(wt->fd);
	wt->fd = -1;
}

/* Position of wd in the table (sorted: the kernel hands out increasing
 * descriptors), or where it goes. */
static size_t watch_pos(const struct watch *wt, int wd, int *found)
{
	size_t lo = 0, hi = wt->ndirs;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (wt->dirs[mid].wd == wd) {
			*found = 1;
			return mid;
		}
		if (wt->dirs[mid].wd < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Watch ws/rel ("" = the workspace itself). A failure only costs speed:
 * the scan falls back to a full walk. */
void watch_add(struct watch *wt, const char *ws, const char *rel)
{
	char *full;
	size_t i;
	int wd, found;

	if (wt->fd < 0 || wt->broken)
		return;
	if (wt->ndirs >= WATCH_MAX_DIRS) {
		wt->broken = 1;
		return;
	}
	xasprintf(&full, "%s%s%s", ws, *rel ? "/" : "", rel);
	wd = inotify_add_watch(wt->fd, full, WATCH_MASK);
	free(full);
	if (wd < 0) {
		wt->broken = 1;
		return;
	}
	i = watch_pos(wt, wd, &found);
	if (found) {
		free(wt->dirs[i].rel);
	} else {
		wt->dirs = xreallocarray(wt->dirs, wt->ndirs + 1, sizeof(*wt->dirs));
		memmove(&wt->dirs[i + 1], &wt->dirs[i], (wt->ndirs - i) * sizeof(*wt->dirs));
		wt->ndirs++;
		wt->dirs[i].wd = wd;
	}
	wt->dirs[i].rel = xstrdup(rel);
}

static const char *watch_dir(const struct watch *wt, int wd, size_t *pos)
{
	int found;

	*pos = watch_pos(wt, wd, &found);
	return found ? wt->dirs[*pos].rel : NULL;
}

/* Is ws/rel watched already (then its content since is in the events)? */
int watch_has(const struct watch *wt, const char *rel)
{
	size_t i;

	for (i = 0; i < wt->ndirs; i++)
		if (strcmp(wt->dirs[i].rel, rel) == 0)
			return 1;
	return 0;
}

static void watch_event(struct watch *wt, const struct inotify_event *ev, struct watch_changes *out)
{
	const char *dir;
	size_t pos;
	char *rel;

	if (ev->mask & IN_Q_OVERFLOW) {
		wt->broken = 1;
		return;
	}
	if ((dir = watch_dir(wt, ev->wd, &pos)) == NULL)
		return;
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		/* a watched directory went away or moved: its files' paths changed */
		wt->broken |= (ev->mask & IN_IGNORED) == 0 || *dir == '\0';
		free(wt->dirs[pos].rel);
		memmove(&wt->dirs[pos], &wt->dirs[pos + 1], (wt->ndirs - pos - 1) * sizeof(*wt->dirs));
		wt->ndirs--;
		return;
	}
	if (ev->len == 0 || ev->name[0] == '\0')
		return;
	if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_MOVED_FROM | IN_DELETE))) {
		wt->broken = 1;
		return;
	}
	xasprintf(&rel, "%s%s%s", dir, *dir ? "/" : "", ev->name);
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
			out->newdirs = xreallocarray(out->newdirs, out->nnewdirs + 1, sizeof(char *));
			out->newdirs[out->nnewdirs++] = rel;
		} else {
			free(rel);
		}
		return;
	}
	out->paths = xreallocarray(out->paths, out->npaths + 1, sizeof(char *));
	out->paths[out->npaths++] = rel;
}

/* Drain the queue. Returns 0, or -1 when the events cannot be trusted
 * (overflow, a directory gone): the caller rescans the whole tree. */
int watch_read(struct watch *wt, struct watch_changes *out)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	size_t off;

	memset(out, 0, sizeof(*out));
	if (wt->fd < 0)
		return -1;
	for (;;) {
		n = read(wt->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			wt->broken = 1;
			break;
		}
		for (off = 0; off + sizeof(*ev) <= (size_t)n; off += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(const void *)(buf + off);
			watch_event(wt, ev, out);
		}
		/* the kernel hands out whole events, as many as fit: with room
		 * for a largest one left over, the queue was empty */
		if ((size_t)n + sizeof(*ev) + NAME_MAX + 1 <= sizeof(buf))
			break;
	}
	return wt->broken ? -1 : 0;
}

void watch_changes_free(struct watch_changes *c)
{
	size_t i;

	for (i = 0; i < c->npaths; i++)
		free(c->paths[i]);
	for (i = 0; i < c->nnewdirs; i++)
		free(c->newdirs[i]);
	free(c->paths);
	free(c->newdirs);
	memset(c, 0, sizeof(*c));
}
