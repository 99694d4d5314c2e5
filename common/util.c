/*
 * util.c: small pure helpers shared by every program: clocks and ISO-8601
 * times, path and UTF-8 checks, file helpers.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void time_iso8601(int64_t ms, char *out, size_t outlen)
{
	int64_t sec = ms / 1000, frac = ms % 1000;
	time_t t;
	struct tm tm;

	if (frac < 0) { /* floor division for times before 1970 */
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, outlen, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

static int time_digits(const char **p, int n, int *out)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

static int time_sep(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

/* Accepts what time_iso8601 writes, with 0-9 fraction digits (a space
 * instead of 'T' is tolerated); only UTC ("Z"). */
int time_parse_iso8601(const char *s, int64_t *ms)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, fd = 0, frac = 0;
	struct tm tm;
	time_t t;

	if (time_digits(&p, 4, &y) || time_sep(&p, '-') || time_digits(&p, 2, &mo) || time_sep(&p, '-') ||
	    time_digits(&p, 2, &d))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (time_digits(&p, 2, &h) || time_sep(&p, ':') || time_digits(&p, 2, &mi) || time_sep(&p, ':') ||
	    time_digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p) && fd < 9) {
			if (fd < 3)
				frac = frac * 10 + (*p - '0');
			fd++;
			p++;
		}
		if (fd == 0)
			return -1;
		for (; fd < 3; fd++)
			frac *= 10;
	}
	if ((*p != 'Z' && *p != 'z') || p[1] != '\0')
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (tm.tm_mday != d) /* normalised: Feb 30 and the like */
		return -1;
	*ms = (int64_t)t * 1000 + frac;
	return 0;
}

int path_is_safe(const char *path)
{
	const char *p = path, *seg;
	size_t n;

	if (path == NULL || *path == '\0' || *path == '/' || strlen(path) >= PATH_MAX)
		return 0;
	for (;;) {
		seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (n == 0) /* "a//b" or a trailing "/" */
			return 0;
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		if (*p == '\0')
			return 1;
		p++;
	}
}

/* mkdir -p dir under dirfd, deepest first: the parents usually exist, so
 * the common case is one mkdir, not one per path component. dir is
 * modified and restored. */
static int util_mkdir_p(int dirfd, char *dir)
{
	char *slash;
	int rc;

	if (mkdirat(dirfd, dir, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || (slash = strrchr(dir, '/')) == NULL || slash == dir)
		return -1;
	*slash = '\0';
	rc = util_mkdir_p(dirfd, dir);
	*slash = '/';
	if (rc == -1 || (mkdirat(dirfd, dir, 0755) == -1 && errno != EEXIST))
		return -1;
	return 0;
}

int mkdir_parents_at(int dirfd, const char *path)
{
	char *tmp = xstrdup(path), *slash = strrchr(tmp, '/');
	int rc = 0, saved;

	if (slash != NULL && slash != tmp) {
		*slash = '\0';
		rc = util_mkdir_p(dirfd, tmp);
	}
	saved = errno;
	free(tmp);
	errno = saved;
	return rc;
}

int mkdir_parents(const char *path)
{
	return mkdir_parents_at(AT_FDCWD, path);
}

/* Directory levels rmtree descends, each holding one fd. */
#define RMTREE_MAX_DEPTH 128

static int util_rmtree_at(int dfd, unsigned depth)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0, sub, isdir;

	if (depth > RMTREE_MAX_DEPTH || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			isdir = S_ISDIR(st.st_mode);
		if (isdir) {
			sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub == -1 || util_rmtree_at(sub, depth + 1) == -1)
				rc = -1;
		}
		if (unlinkat(dirfd(d), de->d_name, isdir ? AT_REMOVEDIR : 0) == -1 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int rmtree_fd(int dfd)
{
	return util_rmtree_at(dfd, 0);
}

int rmtree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ELOOP) /* ELOOP: a symlink, removed itself */
			return -1;
		return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
	}
	if (util_rmtree_at(fd, 0) == -1)
		return -1;
	return rmdir(path) == -1 && errno != ENOENT ? -1 : 0;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF. */
const uint8_t *utf8_invalid(const uint8_t *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t cp, min;

	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else
			return s + i;
		if (len - i <= n)
			return s + i;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return s + i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return s + i;
		i += n + 1;
	}
	return NULL;
}

char *step_input_name(const char *step_id)
{
	size_t n = strlen(step_id), i, o = 0;
	char *out = xmalloc(n + 5);

	memcpy(out, "df_", 3);
	o = 3;
	if (isdigit((unsigned char)step_id[0]))
		out[o++] = '_';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)step_id[i];
		out[o++] = (isascii(c) && (isalnum(c) || c == '_')) ? (char)c : '_';
	}
	out[o] = '\0';
	return out;
}

int writev_all(int fd, struct iovec *iov, int n)
{
	ssize_t w;

	while (n > 0) {
		w = writev(fd, iov, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int write_all(int fd, const void *data, size_t len)
{
	struct iovec v = {(void *)(uintptr_t)data, len};

	return len == 0 ? 0 : writev_all(fd, &v, 1);
}

int var_expand(const char *in, var_lookup_fn lookup, void *arg, struct buf *out, int *secret, const char **at,
               char var[256])
{
	const char *p = in, *close, *val;
	size_t n, i;
	int sec;

	while (*p != '\0') {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			buf_add(out, "${", 2);
			p += 3;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			buf_addc(out, *p++);
			continue;
		}
		close = strchr(p + 2, '}');
		n = close != NULL ? (size_t)(close - p - 2) : 0;
		for (i = 0; i < n && (isalnum((unsigned char)p[2 + i]) || p[2 + i] == '_'); i++)
			;
		if (close == NULL || n == 0 || i != n || n >= 256 || isdigit((unsigned char)p[2])) {
			*at = p;
			return -1;
		}
		memcpy(var, p + 2, n);
		var[n] = '\0';
		sec = 0;
		if ((val = lookup(arg, var, &sec)) == NULL)
			return -2;
		*secret |= sec;
		buf_adds(out, val);
		p = close + 1;
	}
	return 0;
}

int file_read_all(const char *path, size_t max, struct buf *out)
{
	size_t start = out->len, got = 0;
	ssize_t r;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	for (;;) {
		/* read one byte past max so "exactly max" and "more" differ */
		size_t want = max - got < 65536 ? max - got + 1 : 65536;
		buf_reserve(out, want);
		r = read(fd, out->data + out->len, want);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		out->len += (size_t)r;
		got += (size_t)r;
		if (got > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	return 0;
fail:
	saved = errno;
	close(fd);
	out->len = start;
	errno = saved;
	return -1;
}
