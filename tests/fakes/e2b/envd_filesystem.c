/*
 * envd_filesystem.c: envd's Connect service filesystem.Filesystem
 * (spec/envd/filesystem/filesystem.proto): Stat, MakeDir, ListDir, Remove and
 * Move on the sandbox's tree, EntryInfo in protojson (size as a string).
 */
#include <sys/stat.h>
#include <sys/xattr.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emulator.h"

#define FS_MAX_ENTRIES 100000
#define FS_MAX_DEPTH 64

/* Go's FileMode.String(): "-rw-r--r--", "drwxr-xr-x", "Lrwxrwxrwx". */
static void fs_mode_string(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	out[0] = S_ISDIR(m)    ? 'd'
	         : S_ISLNK(m)  ? 'L'
	         : S_ISFIFO(m) ? 'p'
	         : S_ISSOCK(m) ? 'S'
	         : S_ISCHR(m)  ? 'c'
	         : S_ISBLK(m)  ? 'D'
	                       : '-';
	for (i = 0; i < 9; i++)
		out[i + 1] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	out[10] = '\0';
}

static json_t *fs_xattr_metadata(int fd)
{
	char names[4096], val[4096];
	json_t *md = json_object();
	ssize_t n, vl;
	char *p;

	n = flistxattr(fd, names, sizeof(names));
	for (p = names; n > 0 && p < names + n; p += strlen(p) + 1) {
		if (strncmp(p, "user.e2b.", 9) != 0)
			continue;
		if ((vl = fgetxattr(fd, p, val, sizeof(val) - 1)) < 0)
			continue;
		val[vl] = '\0';
		json_object_set_new(md, p + 9, json_string(val));
	}
	if (json_object_size(md) == 0) {
		json_decref(md);
		return NULL;
	}
	return md;
}

/* EntryInfo of the already-lstat'ed object; dirfd/name locate it. */
static json_t *fs_entry_json(const char *sbx_path, int dirfd, const char *name, const struct stat *st)
{
	char perm[11], ts[64], base[40], sizebuf[32], target[PATH_MAX];
	struct passwd *pw = getpwuid(st->st_uid);
	struct group *gr = getgrgid(st->st_gid);
	const char *slash = strrchr(sbx_path, '/');
	struct tm tm;
	json_t *e = json_object(), *md;
	ssize_t tl;
	int fd;

	json_object_set_new(e, "name", json_string(strcmp(sbx_path, "/") == 0 ? "/" : slash + 1));
	if (S_ISREG(st->st_mode))
		json_object_set_new(e, "type", json_string("FILE_TYPE_FILE"));
	else if (S_ISDIR(st->st_mode))
		json_object_set_new(e, "type", json_string("FILE_TYPE_DIRECTORY"));
	else if (S_ISLNK(st->st_mode))
		json_object_set_new(e, "type", json_string("FILE_TYPE_SYMLINK"));
	json_object_set_new(e, "path", json_string(sbx_path));
	if (st->st_size != 0) { /* int64: a JSON string; zero values are omitted */
		snprintf(sizebuf, sizeof(sizebuf), "%lld", (long long)st->st_size);
		json_object_set_new(e, "size", json_string(sizebuf));
	}
	if ((st->st_mode & 0777) != 0)
		json_object_set_new(e, "mode", json_integer(st->st_mode & 0777));
	fs_mode_string(st->st_mode, perm);
	json_object_set_new(e, "permissions", json_string(perm));
	json_object_set_new(e, "owner", json_string(pw != NULL ? pw->pw_name : "user"));
	json_object_set_new(e, "group", json_string(gr != NULL ? gr->gr_name : "user"));
	gmtime_r(&st->st_mtim.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, sizeof(ts), "%s.%09ldZ", base, (long)st->st_mtim.tv_nsec);
	json_object_set_new(e, "modifiedTime", json_string(ts));
	if (S_ISLNK(st->st_mode) && (tl = readlinkat(dirfd, name, target, sizeof(target) - 1)) >= 0) {
		target[tl] = '\0';
		json_object_set_new(e, "symlinkTarget", json_string(target));
	} else if (!S_ISLNK(st->st_mode) &&
	           (fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) >= 0) {
		if ((md = fs_xattr_metadata(fd)) != NULL)
			json_object_set_new(e, "metadata", md);
		close(fd);
	}
	return e;
}

/* lstat semantics for the last component, symlinks before it resolved in the sandbox. */
json_t *envd_filesystem_entry(struct sandbox *sbx, const char *sbx_path, const char *host_path, int follow)
{
	const char *name;
	struct stat st;
	json_t *e = NULL;
	int dirfd;

	(void)host_path;
	if (strcmp(sbx_path, "/") == 0) {
		if ((dirfd = sandbox_open(sbx, "/", O_PATH | O_DIRECTORY, 0)) < 0)
			return NULL;
		if (fstat(dirfd, &st) == 0)
			e = fs_entry_json("/", dirfd, ".", &st);
		close(dirfd);
		return e;
	}
	if ((dirfd = sandbox_open_parent(sbx, sbx_path, &name)) < 0)
		return NULL;
	if (fstatat(dirfd, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0)
		e = fs_entry_json(sbx_path, dirfd, name, &st);
	close(dirfd);
	return e;
}

static char *fs_request_path(struct evhttp_request *req, json_t *msg, const char *field)
{
	json_t *p = json_object_get(msg, field);
	char *clean;

	if (p != NULL && !json_is_string(p)) {
		connect_unary_error(req, "invalid_argument", "%s must be a string", field);
		return NULL;
	}
	if ((clean = sandbox_clean_path(p != NULL ? json_string_value(p) : "")) == NULL)
		connect_unary_error(req, "invalid_argument", "invalid path");
	return clean;
}

static void fs_stat(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	char *path = fs_request_path(req, msg, "path");
	json_t *e;

	if (path == NULL)
		return;
	if ((e = envd_filesystem_entry(sbx, path, NULL, 0)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			connect_unary_error(req, "not_found", "file not found: stat %s: no such file or directory",
			                    path);
		else
			connect_unary_error(req, "internal", "error getting file info: %s", strerror(errno));
	} else
		connect_unary_reply(req, json_pack("{s:o}", "entry", e));
	free(path);
}

static void fs_make_dir(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	char *path = fs_request_path(req, msg, "path");
	struct stat st;
	int fd, created;
	json_t *e;

	if (path == NULL)
		return;
	if ((fd = sandbox_open(sbx, path, O_PATH, 0)) >= 0) {
		int isdir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
		close(fd);
		if (isdir)
			connect_unary_error(req, "already_exists", "directory already exists: %s", path);
		else
			connect_unary_error(req, "invalid_argument",
			                    "path already exists, but it is not a directory: %s", path);
	} else if (sandbox_mkdir_p(sbx, path, &created) != 0)
		connect_unary_error(req, errno == ENOTDIR ? "invalid_argument" : "internal",
		                    "error creating directory %s: %s", path, strerror(errno));
	else if ((e = envd_filesystem_entry(sbx, path, NULL, 0)) == NULL)
		connect_unary_error(req, "internal", "error getting entry info: %s", strerror(errno));
	else
		connect_unary_reply(req, json_pack("{s:o}", "entry", e));
	free(path);
}

static int fs_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries of dir (lexical order, like Go's WalkDir), recursing to depth. */
static int fs_list(struct sandbox *sbx, const char *dir, int depth, json_t *out)
{
	int fd = sandbox_open(sbx, dir, O_RDONLY | O_DIRECTORY, 0), rc = 0;
	DIR *d;
	struct dirent *de;
	char **names = NULL, *child;
	size_t n = 0, cap = 0, i;
	struct stat st;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				emu_fatal("out of memory");
		}
		names[n++] = emu_xstrdup(de->d_name);
	}
	qsort(names, n, sizeof(*names), fs_name_cmp);
	for (i = 0; i < n && rc == 0; i++) {
		if (json_array_size(out) >= FS_MAX_ENTRIES ||
		    fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (asprintf(&child, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, names[i]) < 0)
			emu_fatal("out of memory");
		json_array_append_new(out, fs_entry_json(child, dirfd(d), names[i], &st));
		if (S_ISDIR(st.st_mode) && depth > 1)
			rc = fs_list(sbx, child, depth - 1, out);
		free(child);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

static void fs_list_dir(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	char *path = fs_request_path(req, msg, "path");
	json_t *dj = json_object_get(msg, "depth"), *arr;
	json_int_t depth = 1;
	struct stat st;
	int fd;

	if (path == NULL)
		return;
	if (json_is_integer(dj) && json_integer_value(dj) > 0)
		depth = json_integer_value(dj);
	if (depth > FS_MAX_DEPTH)
		depth = FS_MAX_DEPTH;
	if ((fd = sandbox_open(sbx, path, O_PATH, 0)) < 0)
		connect_unary_error(req, "not_found", "path not found: %s", path);
	else if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		connect_unary_error(req, "invalid_argument", "path is not a directory: %s", path);
	} else {
		close(fd);
		arr = json_array();
		if (fs_list(sbx, path, (int)depth, arr) != 0) {
			json_decref(arr);
			connect_unary_error(req, "internal", "error reading directory %s: %s", path, strerror(errno));
		} else
			connect_unary_reply(req, json_pack("{s:o}", "entries", arr));
	}
	free(path);
}

/* rm -rf name under dirfd, never following symlinks. */
static int fs_remove_at(int parent, const char *name, int level)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if ((errno != EISDIR && errno != EPERM) || level > 256)
		return -1;
	if ((fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			fs_remove_at(dirfd(d), de->d_name, level + 1);
	closedir(d);
	return unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

static void fs_remove(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	char *path = fs_request_path(req, msg, "path");
	const char *name;
	int dirfd;

	if (path == NULL)
		return;
	/* os.RemoveAll: a missing path is not an error. */
	if ((dirfd = sandbox_open_parent(sbx, path, &name)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			connect_unary_reply(req, json_object());
		else
			connect_unary_error(req, "internal", "error removing %s: %s", path, strerror(errno));
	} else {
		if (fs_remove_at(dirfd, name, 0) != 0)
			connect_unary_error(req, "internal", "error removing file or directory: %s", strerror(errno));
		else
			connect_unary_reply(req, json_object());
		close(dirfd);
	}
	free(path);
}

static void fs_move(struct evhttp_request *req, struct sandbox *sbx, json_t *msg)
{
	char *src = fs_request_path(req, msg, "source"), *dst = NULL, *parent = NULL;
	const char *sname, *dname;
	int sfd = -1, dfd = -1, created;
	json_t *e;

	if (src == NULL || (dst = fs_request_path(req, msg, "destination")) == NULL)
		goto out;
	parent = emu_xstrdup(dst);
	parent[strrchr(parent, '/') == parent ? 1 : strrchr(parent, '/') - parent] = '\0';
	if ((sfd = sandbox_open_parent(sbx, src, &sname)) < 0 || faccessat(sfd, sname, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
		connect_unary_error(req, "not_found", "source file not found: %s", src);
	else if (sandbox_mkdir_p(sbx, parent, &created) != 0 || (dfd = sandbox_open_parent(sbx, dst, &dname)) < 0)
		connect_unary_error(req, "internal", "error creating destination directory: %s", strerror(errno));
	else if (renameat(sfd, sname, dfd, dname) != 0)
		connect_unary_error(req, "internal", "error renaming: %s", strerror(errno));
	else if ((e = envd_filesystem_entry(sbx, dst, NULL, 0)) == NULL)
		connect_unary_error(req, "internal", "error getting entry info: %s", strerror(errno));
	else
		connect_unary_reply(req, json_pack("{s:o}", "entry", e));
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(parent);
	free(src);
	free(dst);
}

void envd_filesystem_dispatch(struct evhttp_request *req, struct sandbox *sbx, const char *method)
{
	static const struct {
		const char *name;
		void (*fn)(struct evhttp_request *, struct sandbox *, json_t *);
	} methods[] = {
	    {"Stat", fs_stat},     {"MakeDir", fs_make_dir}, {"ListDir", fs_list_dir},
	    {"Remove", fs_remove}, {"Move", fs_move},
	};
	json_t *msg;
	size_t i;

	if (strcmp(method, "WatchDir") == 0) {
		if ((msg = connect_stream_request(req)) != NULL) {
			struct stream *st = stream_open(req);
			stream_end(st, "unimplemented", "filesystem.Filesystem.WatchDir is not emulated");
			stream_free(st);
			json_decref(msg);
		}
		return;
	}
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i].name) == 0)
			break;
	if ((msg = connect_unary_request(req)) == NULL)
		return;
	if (i == sizeof(methods) / sizeof(methods[0]))
		connect_unary_error(req, "unimplemented", "filesystem.Filesystem.%s is not implemented", method);
	else
		methods[i].fn(req, sbx, msg);
	json_decref(msg);
}
