/*
 * sandbox.c: what a sandbox *is* in the emulator: a private directory tree
 * standing in for the VM's filesystem, a TTL that destroys it like the cloud
 * does, and the spawning of its processes (isolated with bubblewrap).
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <openssl/rand.h>

#include "emulator.h"

/* Host files a sandboxed shell needs; everything else of the host stays unseen. */
static const char *const sandbox_ro_paths[] = {
    "/usr",
    "/etc/profile",
    "/etc/profile.d",
    "/etc/bash.bashrc",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/environment",
    "/etc/inputrc",
    NULL,
};

static void sandbox_ttl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sandbox *sbx = arg;

	(void)fd;
	(void)what;
	sandbox_destroy(sbx, "timeout reached");
}

static void sandbox_death_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sandbox *sbx = arg;

	(void)fd;
	(void)what;
	emu_log("fault: sandbox-death sandbox=%s", sbx->id);
	sandbox_destroy(sbx, "injected death");
}

/* Probe once: bwrap exists and may create namespaces here. */
static int sandbox_bwrap_works(void)
{
	pid_t pid;
	int status, devnull;

	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execlp("bwrap", "bwrap", "--ro-bind", "/", "/", "--unshare-pid", "true", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int sandbox_init(const char *root)
{
	if (mkdir(root, 0755) != 0 && errno != EEXIST)
		return -1;
	if (access(root, W_OK | X_OK) != 0)
		return -1;
	if (emu.use_bwrap && !sandbox_bwrap_works()) {
		emu.use_bwrap = 0;
		emu_log(
		    "bubblewrap unavailable here: sandboxes are plain directories and processes can see host paths");
	} else if (!emu.use_bwrap)
		emu_log("--no-bwrap: sandboxes are plain directories and processes can see host paths");
	return 0;
}

void sandbox_shutdown(void)
{
	struct sandbox *sbx;

	while ((sbx = TAILQ_FIRST(&emu.sandboxes)) != NULL)
		sandbox_destroy(sbx, "emulator shutdown");
}

static int sandbox_mkdirs(struct sandbox *sbx)
{
	char p[PATH_MAX];

	if (mkdir(sbx->dir, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/home", sbx->dir);
	if (mkdir(p, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s%s", sbx->dir, EMU_HOME);
	if (mkdir(p, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/tmp", sbx->dir);
	if (mkdir(p, 01777) != 0 || chmod(p, 01777) != 0)
		return -1;
	return 0;
}

static char *sandbox_token(void)
{
	unsigned char rnd[24];
	char *hex = emu_xmalloc(sizeof(rnd) * 2 + 1);
	size_t i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		emu_fatal("RAND_bytes failed");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	return hex;
}

struct sandbox *sandbox_create(const char *template_id, int timeout_s, int secure, json_t *metadata, json_t *env_vars)
{
	struct sandbox *sbx = emu_xcalloc(1, sizeof(*sbx));
	int death;

	emu_random_id(sbx->id, EMU_SANDBOX_ID_LEN);
	if (asprintf(&sbx->dir, "%s/%s", emu.root, sbx->id) < 0)
		emu_fatal("out of memory");
	if (sandbox_mkdirs(sbx) != 0) {
		emu_log("sandbox=%s: cannot create %s: %s", sbx->id, sbx->dir, strerror(errno));
		free(sbx->dir);
		free(sbx);
		return NULL;
	}
	sbx->template_id = emu_xstrdup(template_id);
	sbx->access_token = secure ? sandbox_token() : NULL;
	sbx->metadata = metadata != NULL ? json_incref(metadata) : json_object();
	sbx->env_vars = env_vars != NULL ? json_incref(env_vars) : json_object();
	sbx->started_ms = emu_now_ms();
	TAILQ_INIT(&sbx->procs);
	sbx->ttl_ev = evtimer_new(emu.base, sandbox_ttl_cb, sbx);
	sandbox_set_end(sbx, sbx->started_ms + (int64_t)timeout_s * 1000);
	if ((death = fault_sandbox_death_after()) > 0) {
		sbx->death_ev = evtimer_new(emu.base, sandbox_death_cb, sbx);
		emu_set_timer(sbx->death_ev, (int64_t)death * 1000);
	}
	TAILQ_INSERT_TAIL(&emu.sandboxes, sbx, entry);
	emu.nsandboxes++;
	emu_log("sandbox=%s created template=%s timeout_s=%d secure=%d", sbx->id, template_id, timeout_s, secure);
	return sbx;
}

struct sandbox *sandbox_find(const char *id)
{
	struct sandbox *sbx;

	TAILQ_FOREACH(sbx, &emu.sandboxes, entry)
	if (strcmp(sbx->id, id) == 0)
		return sbx;
	return NULL;
}

void sandbox_set_end(struct sandbox *sbx, int64_t end_ms)
{
	sbx->end_ms = end_ms;
	emu_set_timer(sbx->ttl_ev, end_ms - emu_now_ms());
}

static int sandbox_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* Best effort: a process still dying may race us; the VM would be gone anyway. */
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Like the VM going away: every process dies, every stream is cut without an
 * EndStream, and the files are gone. Later calls get 404 (API) / 502 (envd). */
void sandbox_destroy(struct sandbox *sbx, const char *why)
{
	emu_log("sandbox=%s destroyed: %s", sbx->id, why);
	sbx->dead = 1;
	TAILQ_REMOVE(&emu.sandboxes, sbx, entry);
	emu.nsandboxes--;
	proc_kill_all(sbx);
	event_free(sbx->ttl_ev);
	if (sbx->death_ev != NULL)
		event_free(sbx->death_ev);
	nftw(sbx->dir, sandbox_rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	free(sbx->dir);
	free(sbx->template_id);
	free(sbx->access_token);
	json_decref(sbx->metadata);
	json_decref(sbx->env_vars);
	free(sbx);
}

/* Lexically clean a sandbox path like Go's filepath.Clean on an absolute
 * path: relative paths hang off /home/user, ".." never climbs above "/". */
char *sandbox_clean_path(const char *path)
{
	char *full, *clean, *tok, *save;
	size_t len = 0;

	if (path == NULL || *path == '\0')
		path = EMU_HOME;
	if (strlen(path) > PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (asprintf(&full, "%s%s%s", path[0] == '/' ? "" : EMU_HOME, path[0] == '/' ? "" : "/", path) < 0)
		emu_fatal("out of memory");
	clean = emu_xcalloc(1, strlen(full) + 2);
	for (tok = strtok_r(full, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			while (len > 0 && clean[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			clean[len] = '\0';
			continue;
		}
		clean[len++] = '/';
		strcpy(clean + len, tok);
		len += strlen(tok);
	}
	if (len == 0)
		strcpy(clean, "/");
	free(full);
	return clean;
}

char *sandbox_host_path(struct sandbox *sbx, const char *path, char **clean_out)
{
	char *clean = sandbox_clean_path(path), *host;

	if (clean == NULL)
		return NULL;
	if (asprintf(&host, "%s%s", sbx->dir, strcmp(clean, "/") == 0 ? "" : clean) < 0)
		emu_fatal("out of memory");
	if (clean_out != NULL)
		*clean_out = clean;
	else
		free(clean);
	return host;
}

/* Open a cleaned sandbox path with the sandbox's directory as "/": symlinks a
 * sandboxed process planted resolve inside the sandbox, never on the host. */
int sandbox_open(struct sandbox *sbx, const char *clean, int flags, mode_t mode)
{
	struct open_how how = {0};
	const char *rel = clean[0] == '/' ? clean + 1 : clean;
	int root, fd, saved;

	if ((root = open(sbx->dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.mode = (flags & O_CREAT) ? mode : 0;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, root, *rel ? rel : ".", &how, sizeof(how));
	saved = errno;
	close(root);
	errno = saved;
	return fd;
}

/* The parent directory of clean (as an O_PATH fd) and its last component. */
int sandbox_open_parent(struct sandbox *sbx, const char *clean, const char **name)
{
	char *parent;
	const char *slash = strrchr(clean, '/');
	int fd, saved;

	if (slash == NULL || slash[1] == '\0') {
		errno = EINVAL;
		return -1;
	}
	parent = emu_xstrdup(clean);
	parent[slash - clean == 0 ? 1 : slash - clean] = '\0';
	fd = sandbox_open(sbx, parent, O_PATH | O_DIRECTORY, 0);
	saved = errno;
	free(parent);
	errno = saved;
	*name = slash + 1;
	return fd;
}

/* mkdir -p inside the sandbox; *created tells whether the last one was new. */
int sandbox_mkdir_p(struct sandbox *sbx, const char *clean, int *created)
{
	char *p = emu_xstrdup(clean), *s;
	const char *name;
	int fd, rc = 0;

	*created = 0;
	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (strcmp(p, "/") != 0) {
			if ((fd = sandbox_open_parent(sbx, p, &name)) < 0) {
				rc = -1;
				break;
			}
			*created = mkdirat(fd, name, 0755) == 0;
			if (!*created && errno != EEXIST) {
				close(fd);
				rc = -1;
				break;
			}
			close(fd);
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	if (rc == 0 && !*created) {
		/* Existing: it must be a directory (resolving symlinks in the sandbox). */
		fd = sandbox_open(sbx, clean, O_PATH | O_DIRECTORY, 0);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return rc;
}

/* argv for bwrap: the sandbox's tree as /home/user and /tmp, the host's /usr
 * read-only, and nothing else of the host. */
static char **sandbox_bwrap_argv(struct sandbox *sbx, char *const argv[], const char *cwd_sbx)
{
	size_t n = 0, cap = 96, i;
	char **av;
	char *home, *tmp;
	struct stat st;

	for (i = 0; argv[i] != NULL; i++)
		cap++;
	av = emu_xcalloc(cap, sizeof(char *));
	if (asprintf(&home, "%s%s", sbx->dir, EMU_HOME) < 0 || asprintf(&tmp, "%s/tmp", sbx->dir) < 0)
		emu_fatal("out of memory");
	av[n++] = "bwrap";
	av[n++] = "--die-with-parent";
	av[n++] = "--unshare-pid";
	av[n++] = "--unshare-ipc";
	av[n++] = "--unshare-uts";
	av[n++] = "--hostname";
	av[n++] = "e2b-sandbox";
	for (i = 0; sandbox_ro_paths[i] != NULL && n + 4 < cap; i++) {
		if (lstat(sandbox_ro_paths[i], &st) != 0)
			continue;
		av[n++] = "--ro-bind";
		av[n++] = (char *)sandbox_ro_paths[i];
		av[n++] = (char *)sandbox_ro_paths[i];
	}
	av[n++] = "--symlink";
	av[n++] = "usr/bin";
	av[n++] = "/bin";
	av[n++] = "--symlink";
	av[n++] = "usr/sbin";
	av[n++] = "/sbin";
	av[n++] = "--symlink";
	av[n++] = "usr/lib";
	av[n++] = "/lib";
	if (lstat("/usr/lib64", &st) == 0) {
		av[n++] = "--symlink";
		av[n++] = "usr/lib64";
		av[n++] = "/lib64";
	}
	av[n++] = "--proc";
	av[n++] = "/proc";
	av[n++] = "--dev";
	av[n++] = "/dev";
	av[n++] = "--bind";
	av[n++] = tmp;
	av[n++] = "/tmp";
	av[n++] = "--bind";
	av[n++] = home;
	av[n++] = EMU_HOME;
	av[n++] = "--chdir";
	av[n++] = (char *)cwd_sbx;
	av[n++] = "--";
	for (i = 0; argv[i] != NULL; i++)
		av[n++] = argv[i];
	av[n] = NULL;
	return av;
}

static void sandbox_child(struct sandbox *sbx, char *const argv[], char *const envp[], const char *cwd_host,
                          const char *cwd_sbx, int in[2], int out[2], int err[2], int stdin_on)
{
	int devnull;

	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	if (stdin_on)
		dup2(in[0], 0);
	else if ((devnull = open("/dev/null", O_RDONLY)) >= 0)
		dup2(devnull, 0);
	dup2(out[1], 1);
	dup2(err[1], 2);
	/* Leave only 0-2 open, so no emulator socket leaks into the sandbox. */
	closefrom(3);
	if (emu.use_bwrap) {
		execve("/usr/bin/bwrap", sandbox_bwrap_argv(sbx, argv, cwd_sbx), envp);
	} else {
		if (chdir(cwd_host) != 0)
			_exit(126);
		execve(argv[0], argv, envp);
		if (strchr(argv[0], '/') == NULL)
			execvpe(argv[0], argv, envp);
	}
	fprintf(stderr, "fork/exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Start argv in the sandbox, in its own process group. fds_out = stdin
 * (or -1), stdout, stderr pipes, non-blocking on our side. */
pid_t sandbox_spawn(struct sandbox *sbx, char *const argv[], char *const envp[], const char *cwd_host,
                    const char *cwd_sbx, int stdin_on, int fds_out[3], char *err, size_t errlen)
{
	int in[2] = {-1, -1}, out[2], errp[2];
	pid_t pid;

	if ((stdin_on && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		sandbox_child(sbx, argv, envp, cwd_host, cwd_sbx, in, out, errp, stdin_on);
	setpgid(pid, pid); /* both sides, so a kill right after fork finds the group */
	if (stdin_on)
		close(in[0]);
	close(out[1]);
	close(errp[1]);
	fds_out[0] = stdin_on ? in[1] : -1;
	fds_out[1] = out[0];
	fds_out[2] = errp[0];
	for (int i = 0; i < 3; i++)
		if (fds_out[i] >= 0)
			fcntl(fds_out[i], F_SETFL, fcntl(fds_out[i], F_GETFL) | O_NONBLOCK);
	return pid;
}
