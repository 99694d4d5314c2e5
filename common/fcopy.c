/*
 * fcopy.c: move file bytes without passing them through user memory.
 * copy_file_range first (a reflink or an in-kernel copy on one
 * filesystem), sendfile when the kernel refuses it (across filesystems,
 * e.g. a tmpfs workspace and a disk state dir), pread/write last.
 */
#include <sys/sendfile.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

/* Errors that mean "this way does not work between these two files",
 * not "the copy failed". */
static int fcopy_unsupported(int e)
{
	return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == EBADF || e == ETXTBSY || e == EPERM;
}

static int fcopy_rw(int in, off_t *off, int out, size_t len)
{
	static uint8_t buf[256 * 1024]; /* one warm buffer: no fresh pages per copy */
	ssize_t r;

	while (len > 0) {
		r = pread(in, buf, len < sizeof(buf) ? len : sizeof(buf), *off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? (errno = ENODATA, -1) : -1;
		if (write_all(out, buf, (size_t)r) == -1)
			return -1;
		*off += r;
		len -= (size_t)r;
	}
	return 0;
}

/*
 * Copy len bytes of in, from *off (advanced), to out at its file position.
 * 0, or -1 with errno (ENODATA: in ended first). *via says how: 'c'
 * copy_file_range, 's' sendfile, 'r' read/write (may be NULL).
 */
int fcopy_range(int in, off_t *off, int out, size_t len, char *via)
{
	ssize_t n;
	char how = 'c';

	while (len > 0 && how != 'r') {
		n = how == 'c' ? copy_file_range(in, off, out, NULL, len, 0) : sendfile(out, in, off, len);
		if (n > 0) {
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return errno = ENODATA, -1;
		if (errno == EINTR)
			continue;
		if (!fcopy_unsupported(errno) && !(how == 's' && errno == EAGAIN))
			return -1;
		how = how == 'c' ? 's' : 'r'; /* the next way */
	}
	if (via != NULL)
		*via = how;
	return len > 0 ? fcopy_rw(in, off, out, len) : 0;
}

/*
 * A hard link of the file open as fd at newdirfd/newname (same
 * filesystem), else a copy of its first len bytes (a new file, mode 0644).
 * 1 linked, 0 copied, -1 with errno (nothing left at newname).
 */
int fcopy_link_or_copy(int fd, size_t len, int newdirfd, const char *newname)
{
	char proc[64];
	off_t off = 0;
	int out, saved;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, newdirfd, newname, AT_SYMLINK_FOLLOW) == 0)
		return 1;
	if (errno == EEXIST || errno == ENOSPC || errno == EDQUOT || errno == EROFS)
		return -1;
	out = openat(newdirfd, newname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out == -1)
		return -1;
	if (fcopy_range(fd, &off, out, len, NULL) == -1 || close(out) == -1) {
		saved = errno;
		close(out);
		unlinkat(newdirfd, newname, 0);
		errno = saved;
		return -1;
	}
	return 0;
}
