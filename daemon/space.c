/*
 * space.c: is there room in the state dir? A submit is refused (busy)
 * while its filesystem has less than daemon.min_free_bytes (plus the
 * submission) free, is out of inodes, or the store's last commit failed
 * for want of space; the check is one statvfs(2). Refusing early is what
 * keeps a full disk from half-writing a run.
 */
#include <sys/statvfs.h>

#include <stdio.h>

#include "osirisd.h"

#define SPACE_MIN_INODES 64 /* a run needs a handful; a full inode table is a full disk */

static struct {
	const struct config *cfg;
} sp;

void space_init(const struct config *cfg)
{
	sp.cfg = cfg;
}

int space_free(int64_t *bytes, int64_t *inodes)
{
	struct statvfs vfs;

	if (sp.cfg == NULL || statvfs(sp.cfg->state_dir, &vfs) == -1)
		return -1;
	*bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
	/* f_files 0: the filesystem has no inode limit (btrfs and the like) */
	*inodes = vfs.f_files == 0 ? INT64_MAX : (int64_t)vfs.f_favail;
	return 0;
}

void space_fmt(int64_t bytes, char *dst, size_t len)
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(dst, len, "%lld bytes", (long long)bytes);
	else
		snprintf(dst, len, v < 10 ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

int space_check(int64_t need, char *why, size_t len)
{
	int64_t bytes, inodes;
	char free_s[32];

	if (space_free(&bytes, &inodes) == -1)
		return 0; /* cannot tell: let the writes say */
	space_fmt(bytes, free_s, sizeof(free_s));
	if (inodes < SPACE_MIN_INODES) {
		snprintf(why, len, "state dir full (%s free, %lld inodes free)", free_s, (long long)inodes);
		return -1;
	}
	if (bytes < sp.cfg->min_free_bytes + need || store_full(osirisd.store)) {
		snprintf(why, len, "state dir full (%s free)", free_s);
		return -1;
	}
	return 0;
}
