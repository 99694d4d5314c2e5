/*
 * sandbox.c: the filesystem a local worker sees under bubblewrap, built
 * from what the worker needs and nothing else: the system's read-only trees
 * (/usr and the /bin, /lib links into it), a few read-only files from /etc
 * (loader cache, CAs, time zone, name service), the worker binary and any
 * library it maps from elsewhere (read-only, wherever they live), its own
 * workspace read-write, a private /tmp, /dev and /proc. The state dir, other
 * workspaces, /home, /root, /var, /run and /opt are not there.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

/* System trees: read-only, or recreated as the symlinks they are (merged
 * /usr makes /lib a link to usr/lib). */
static const char *const sandbox_sys_trees[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
/* System files that libraries read at run time (loader, TLS, time zone,
 * name service); world-readable configuration, no user data. */
static const char *const sandbox_etc_files[] = {
    "/etc/ld.so.cache",     "/etc/ld.so.conf", "/etc/ld.so.conf.d",  "/etc/localtime", "/etc/ssl",
    "/etc/ca-certificates", "/etc/pki",        "/etc/nsswitch.conf", "/etc/hosts",     "/etc/resolv.conf",
    "/etc/services",        "/etc/protocols",  "/etc/gai.conf"};
#define SANDBOX_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void sandbox_push(struct sandbox *sb, const char *s)
{
	if (sb->nargs + 1 >= sb->capargs) {
		sb->capargs = sb->capargs == 0 ? 64 : sb->capargs * 2;
		sb->args = xreallocarray(sb->args, sb->capargs, sizeof(*sb->args));
	}
	sb->args[sb->nargs++] = xstrdup(s);
	sb->args[sb->nargs] = NULL;
}

static void sandbox_push3(struct sandbox *sb, const char *opt, const char *a, const char *b)
{
	sandbox_push(sb, opt);
	sandbox_push(sb, a);
	sandbox_push(sb, b);
}

/* realpath of a tree the view binds read-only, to tell which mapped files
 * it already shows. */
static void sandbox_add_cover(struct sandbox *sb, const char *path)
{
	char real[PATH_MAX];

	if (realpath(path, real) == NULL || sb->ncover >= SANDBOX_NELEM(sb->cover))
		return;
	sb->cover[sb->ncover++] = xstrdup(real);
}

int sandbox_covers(const struct sandbox *sb, const char *path)
{
	size_t i, n;

	for (i = 0; i < sb->ncover; i++) {
		n = strlen(sb->cover[i]);
		if (strncmp(path, sb->cover[i], n) == 0 && (path[n] == '/' || path[n] == '\0'))
			return 1;
	}
	for (i = 0; i < sb->nextra; i++) {
		if (strcmp(path, sb->extra[i]) == 0)
			return 1;
	}
	return 0;
}

static void sandbox_sys_tree(struct sandbox *sb, const char *path)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (lstat(path, &st) == -1)
		return;
	if (S_ISLNK(st.st_mode)) {
		if ((n = readlink(path, target, sizeof(target) - 1)) <= 0)
			return;
		target[n] = '\0';
		sandbox_push3(sb, "--symlink", target, path);
	} else if (S_ISDIR(st.st_mode)) {
		sandbox_push3(sb, "--ro-bind", path, path);
		sandbox_add_cover(sb, path);
	}
}

void sandbox_init(struct sandbox *sb, const char *bwrap, const char *worker)
{
	char real[PATH_MAX];
	size_t i;

	memset(sb, 0, sizeof(*sb));
	sb->bwrap = xstrdup(bwrap);
	/* Bind and exec the file itself: a symlinked path (a build tree's, a
	 * package's alternatives) would point at nothing inside. A worker that
	 * does not exist yet keeps its path, so bwrap says so when it starts. */
	sb->worker = xstrdup(realpath(worker, real) != NULL ? real : worker);
	sandbox_push(sb, bwrap);
	sandbox_push(sb, "--die-with-parent");
	/* --unshare-all without its cgroup namespace, which isolates nothing
	 * the others do not and which osirisd.service can then refuse, and
	 * without its network namespace: the database and GraphQL drivers
	 * must reach their servers, on this host's loopback (tests, a local
	 * MySQL) as well as elsewhere, and a private namespace has only its
	 * own loopback. An E2B sandbox has the network too, so both backends
	 * give drivers the same reach. No UTS namespace either: it would only
	 * let the worker rename a host of its own; without privileges over the
	 * host's user namespace it cannot touch the real hostname anyway. */
	sandbox_push(sb, "--unshare-user-try");
	sandbox_push(sb, "--unshare-ipc");
	sandbox_push(sb, "--unshare-pid");
	sandbox_push(sb, "--share-net");
	/* The worker is pid 1 of its namespace (no bwrap init in between), so
	 * the daemon can signal it by the pid --info-fd reports. It installs
	 * handlers for SIGTERM and SIGINT, which pid 1 needs to receive them. */
	sandbox_push(sb, "--as-pid-1");
	for (i = 0; i < SANDBOX_NELEM(sandbox_sys_trees); i++)
		sandbox_sys_tree(sb, sandbox_sys_trees[i]);
	for (i = 0; i < SANDBOX_NELEM(sandbox_etc_files); i++)
		sandbox_push3(sb, "--ro-bind-try", sandbox_etc_files[i], sandbox_etc_files[i]);
	sandbox_push(sb, "--dev");
	sandbox_push(sb, "/dev");
	sandbox_push(sb, "--proc");
	sandbox_push(sb, "/proc");
	sandbox_push(sb, "--tmpfs");
	sandbox_push(sb, "/tmp");
	/* After the tmpfs: a worker under /tmp (a clone there) stays visible. */
	sb->worker_arg = sb->nargs;
	sandbox_push3(sb, "--ro-bind", sb->worker, sb->worker);
}

/* A file the worker maps (a library outside the system trees): bound
 * read-only at its own path. */
void sandbox_add_file(struct sandbox *sb, const char *path)
{
	if (*path != '/' || sandbox_covers(sb, path) || sb->nextra >= SANDBOX_NELEM(sb->extra))
		return;
	sb->extra[sb->nextra++] = xstrdup(path);
	sandbox_push3(sb, "--ro-bind", path, path);
}

/* Every file a running worker has mapped (its /proc/PID/maps) that the view
 * does not show yet: the libraries it loaded from wherever they live. */
int sandbox_add_maps(struct sandbox *sb, pid_t pid)
{
	char path[64], line[PATH_MAX + 256], *file, *nl;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((file = strchr(line, '/')) == NULL)
			continue;
		if ((nl = strchr(file, '\n')) != NULL)
			*nl = '\0';
		if (strstr(file, " (deleted)") != NULL)
			continue;
		if (strcmp(file, sb->worker) != 0)
			sandbox_add_file(sb, file);
	}
	fclose(f);
	return 0;
}

/* The full argv: the view, each of dirs (NULL-terminated: the worker's
 * own directories) bound read-write, the info fd (SANDBOX_INFO_FD in
 * bwrap), then the worker with its arguments wargs (NULL-terminated). */
size_t sandbox_argv_worker(const struct sandbox *sb, const char *const *dirs, int info, const char *const *wargs,
                           const char **argv, size_t max)
{
	size_t n = 0, i, ndirs = 0, nwargs = 0;

	while (dirs != NULL && dirs[ndirs] != NULL)
		ndirs++;
	while (wargs != NULL && wargs[nwargs] != NULL)
		nwargs++;
	if (sb->nargs + 3 * ndirs + nwargs + 6 > max)
		fatalx("sandbox_argv: %zu arguments do not fit in %zu", sb->nargs + 3 * ndirs + nwargs + 6, max);
	for (i = 0; i < sb->nargs; i++)
		argv[n++] = sb->args[i];
	for (i = 0; i < ndirs; i++) {
		argv[n++] = "--bind";
		argv[n++] = dirs[i];
		argv[n++] = dirs[i];
	}
	if (info) {
		argv[n++] = "--info-fd";
		argv[n++] = SANDBOX_INFO_FD_STR;
	}
	argv[n++] = "--";
	argv[n++] = sb->worker;
	for (i = 0; i < nwargs; i++)
		argv[n++] = wargs[i];
	argv[n] = NULL;
	return n;
}

/* One directory, the worker's --workdir. dir NULL: no workspace. */
size_t sandbox_argv(const struct sandbox *sb, const char *dir, int info, const char **argv, size_t max)
{
	const char *dirs[] = {dir, NULL}, *wargs[] = {"--workdir", dir, NULL};

	return sandbox_argv_worker(sb, dirs, info, dir != NULL ? wargs : NULL, argv, max);
}

/* The view without the worker, running cmd (a system binary): whether
 * bwrap itself can start here, whatever the state of the worker. */
size_t sandbox_argv_cmd(const struct sandbox *sb, const char *cmd, const char **argv, size_t max)
{
	size_t n = 0, i;

	if (sb->nargs + 3 > max)
		fatalx("sandbox_argv_cmd: %zu arguments do not fit in %zu", sb->nargs + 3, max);
	for (i = 0; i < sb->nargs; i++) {
		if (i >= sb->worker_arg && i < sb->worker_arg + 3)
			continue;
		argv[n++] = sb->args[i];
	}
	argv[n++] = "--";
	argv[n++] = cmd;
	argv[n] = NULL;
	return n;
}

/* bwrap --info-fd writes {"child-pid": N, ...}: the sandboxed worker's pid
 * as the daemon sees it. 0 when not found. */
pid_t sandbox_info_pid(const char *json, size_t len)
{
	const char *key = "\"child-pid\"", *p, *end = json + len;
	long v = 0;

	for (p = json; p + strlen(key) <= end; p++) {
		if (memcmp(p, key, strlen(key)) != 0)
			continue;
		p += strlen(key);
		while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n'))
			p++;
		while (p < end && *p >= '0' && *p <= '9') {
			v = v * 10 + (*p++ - '0');
			if (v > 1L << 30)
				return 0; /* not a pid */
		}
		return (pid_t)v;
	}
	return 0;
}

void sandbox_free(struct sandbox *sb)
{
	size_t i;

	for (i = 0; i < sb->nargs; i++)
		free(sb->args[i]);
	free(sb->args);
	for (i = 0; i < sb->ncover; i++)
		free(sb->cover[i]);
	for (i = 0; i < sb->nextra; i++)
		free(sb->extra[i]);
	free(sb->bwrap);
	free(sb->worker);
	memset(sb, 0, sizeof(*sb));
}
