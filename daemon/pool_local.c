/*
 * pool_local.c: the local backend. Keeps local.pool_size idle worker
 * sandboxes ready (stdin/stdout pipes, under bubblewrap when available),
 * refills in the background, caps the total at local.max_workers. By
 * default (local.worker_max_runs = 1) each sandbox runs `osiris-worker
 * --zygote`, which forks a fresh process per run: the session sends `fork`
 * on its `ready`, the child serves one run and exits on `reset`, and the
 * sandbox goes back to the idle set (worker/zygote.c, PROTOCOL.md §5). With
 * local.worker_max_runs > 1 a plain worker whose run succeeded is `reset`
 * and serves again instead. Each sandbox gets its own directory under
 * local.work_dir (in memory by default, with a twin on disk for large
 * contexts), removed once it is reaped. A worker is finished only once it
 * is reaped and its stdout hit EOF.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "osirisd.h"

#define LW_KILL_AFTER_MS 2000
#define LW_STDERR_LINE 4096
#define LW_DIR_PREFIX "wk-"

/* LW_RESETTING: back from a run, `reset` sent, idle once it answers. */
enum lw_state { LW_WARMING, LW_IDLE, LW_BUSY, LW_RESETTING, LW_RELEASED };

struct local_pool;
struct lworker {
	struct worker w;
	struct local_pool *lp;
	pid_t pid;
	enum lw_state state;
	int on_demand; /* spawned beyond the warm target: a "cold" worker */
	struct bufferevent *in, *out, *err;
	int info_fd; /* bwrap --info-fd: tells the worker's own pid */
	char info[1024];
	size_t ninfo;
	struct event *info_ev;
	pid_t wpid;         /* the worker itself (bwrap's child), 0 until known */
	char last_err[256]; /* its last stderr line (masked), for failure reasons */
	int reaped, out_eof, status, gone_sent, freeing;
	unsigned runs;         /* runs taken by this process */
	char *dir;             /* its --workdir, under local.work_dir */
	char *spill;           /* its --spill-dir (on disk), when work_dir is in memory */
	pid_t cpid;            /* a zygote's current child (the run's process), 0 if none */
	int64_t idle_us;       /* when it last became idle */
	int cfd;               /* a pidfd of cpid (-1: not watched) */
	struct event *cev;     /* cfd readable: the run's process ended */
	int child_dead;        /* cpid ended since its fork */
	int resync_pending;    /* cpid is being killed; resync once it is gone */
	struct event *sync_ev; /* a resync that takes too long discards the sandbox */
	struct event *kill_ev;
	TAILQ_ENTRY(lworker) entry;
};
TAILQ_HEAD(lworker_list, lworker);

struct local_pool {
	struct pool *p;
	struct lworker_list workers;
	struct lworker_list dead; /* freed by reap_ev, outside their callbacks */
	unsigned demand;
	struct pool_latency lat;
	struct event *refill_ev, *reap_ev, *backoff_ev, *trim_ev;
	char *path;
	char *work_dir;    /* local.work_dir, resolved at start */
	char *spill_dir;   /* on disk, for contexts too big for a work_dir in memory */
	char mem_max[24];  /* local.work_dir_max_bytes, as the worker's --mem-max */
	uint64_t dir_seq;  /* names the workers' directories */
	struct sandbox sb; /* the view under bwrap (when bwrap) */
	char **envp;       /* the workers' environment, built once at start */
	int bwrap;
	int stopping;
	struct pool_starts starts; /* workers in a row that died before ready */
	int in_backoff;
};

static void pool_local_refill(struct local_pool *lp);
static void pool_local_refill_later(struct local_pool *lp);
static void pool_local_release_lw(struct lworker *lw);
static ssize_t pool_local_write(void *tctx, const void *buf, size_t len);
static void pool_local_kill(void *tctx, int hard);
static void pool_local_sess_ready(struct worker *w);
static void pool_local_sess_failed(struct worker *w, const char *why);
static void pool_local_child_exit_cb(pid_t pid, int status, void *arg);
static void pool_local_sess_forked(struct worker *w, int64_t pid);
static void pool_local_trim_later(struct local_pool *lp);
static void pool_local_child_watch(struct lworker *lw);
static void pool_local_release_lw(struct lworker *lw);

static const struct wsess_transport pool_local_transport = {
    .write = pool_local_write,
    .kill = pool_local_kill,
};
static const struct wsess_owner pool_local_owner = {
    .ready = pool_local_sess_ready,
    .failed = pool_local_sess_failed,
    .forked = pool_local_sess_forked,
};

static struct local_pool *pool_local_of(struct pool *p)
{
	return p->impl;
}

static struct lworker *pool_local_lw(struct worker *w)
{
	return w->impl;
}

static void pool_local_counts(struct local_pool *lp, unsigned *idle, unsigned *warming, unsigned *busy, unsigned *alive)
{
	struct lworker *lw;

	*idle = *warming = *busy = *alive = 0;
	TAILQ_FOREACH(lw, &lp->workers, entry)
	{
		if (!lw->reaped)
			(*alive)++;
		if (lw->reaped || lw->out_eof)
			continue;
		if (lw->state == LW_IDLE)
			(*idle)++;
		else if (lw->state == LW_WARMING || lw->state == LW_RESETTING)
			(*warming)++;
		else if (lw->state == LW_BUSY)
			(*busy)++;
	}
}

/* -- process start ------------------------------------------------------ */

/* Workers get a minimal environment, not the daemon's: whatever osirisd
 * inherited (API keys, tokens) must not reach a step. The run's own env and
 * secrets travel in `prepare`. OSIRIS_MAX_CONTEXT keeps the worker's
 * message limit equal to the daemon's. */
static const char *const pool_local_env_keep[] = {"PATH", "TMPDIR",       "LANG",          "LC_ALL",
                                                  "TZ",   "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};

static char **pool_local_env(const struct config *cfg)
{
	size_t n = sizeof(pool_local_env_keep) / sizeof(pool_local_env_keep[0]), i, k = 0;
	char **envp = xcalloc(n + 3, sizeof(*envp));
	const char *v;

	for (i = 0; i < n; i++)
		if ((v = getenv(pool_local_env_keep[i])) != NULL)
			xasprintf(&envp[k++], "%s=%s", pool_local_env_keep[i], v);
	xasprintf(&envp[k++], "OSIRIS_MAX_CONTEXT=%lld", (long long)cfg->max_context_bytes);
	/* A zygote resolves every library symbol once, at its start: its
	 * children would each resolve (and copy a page for) every first call. */
	if (cfg->local_worker_max_runs <= 1)
		envp[k++] = xstrdup("LD_BIND_NOW=1");
	envp[k] = NULL;
	return envp;
}

static void pool_local_env_free(char **envp)
{
	size_t i;

	for (i = 0; envp != NULL && envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

/* The worker's argv: under bwrap the sandbox's view around it. Unless
 * local.worker_max_runs asks for reuse, the worker is a zygote that forks
 * a fresh process per run (worker/zygote.c). */
static void pool_local_argv(struct local_pool *lp, const char *dir, const char *spill, const char *argv[], size_t max)
{
	const char *dirs[3] = {dir, spill, NULL}, *wargs[12];
	size_t n = 0, i;

	wargs[n++] = "--workdir";
	wargs[n++] = dir;
	if (spill != NULL) {
		snprintf(lp->mem_max, sizeof(lp->mem_max), "%lld", (long long)lp->p->cfg->local_work_dir_max_bytes);
		wargs[n++] = "--spill-dir";
		wargs[n++] = spill;
		wargs[n++] = "--mem-max";
		wargs[n++] = lp->mem_max;
	}
	if (lp->p->cfg->local_worker_max_runs <= 1) {
		wargs[n++] = "--zygote";
		/* bwrap's /tmp is the sandbox's own: the zygote empties it
		 * between runs (unsandboxed it is the host's, left alone). */
		if (lp->bwrap)
			wargs[n++] = "--private-tmp";
	}
	wargs[n] = NULL;
	if (lp->bwrap) {
		sandbox_argv_worker(&lp->sb, dirs, 1, wargs, argv, max);
		return;
	}
	if (n + 2 > max)
		fatalx("pool_local_argv: too many arguments");
	argv[0] = lp->path;
	for (i = 0; i <= n; i++)
		argv[i + 1] = wargs[i];
}

/* fd_info >= 0: given to bwrap as SANDBOX_INFO_FD. */
static pid_t pool_local_spawn_process(struct local_pool *lp, const char *dir, const char *spill, int fd_in, int fd_out,
                                      int fd_err, int fd_info)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	const char *argv[160];
	pid_t pid;
	int rc;

	pool_local_argv(lp, dir, spill, argv, sizeof(argv) / sizeof(argv[0]));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd_in, 0);
	posix_spawn_file_actions_adddup2(&fa, fd_out, 1);
	posix_spawn_file_actions_adddup2(&fa, fd_err, 2);
	if (fd_info >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd_info, SANDBOX_INFO_FD);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGCHLD);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	/* Own process group: a Ctrl-C meant for osirisd does not hit workers. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	/* An absolute path spares the PATH walk (a failed execve per entry). */
	if (strchr(argv[0], '/') != NULL)
		rc = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)(uintptr_t)argv, lp->envp);
	else
		rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)(uintptr_t)argv, lp->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

/* The pipes of one worker: [0] ours, [1] the child's, for stdin, stdout,
 * stderr and (under bwrap) the info fd. Ours are non-blocking. */
struct lw_pipes {
	int in[2], out[2], err[2], info[2];
};

static void pool_local_pipes_close(struct lw_pipes *pp)
{
	int *fds = &pp->in[0];
	size_t i;

	for (i = 0; i < sizeof(*pp) / sizeof(int); i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static int pool_local_pipe(int fds[2], int child_reads)
{
	int p[2], fd;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	fds[0] = child_reads ? p[1] : p[0];
	fds[1] = child_reads ? p[0] : p[1];
	/* Not on the info fd's number, which adddup2 would leave close-on-exec. */
	if (fds[1] == SANDBOX_INFO_FD) {
		if ((fd = fcntl(fds[1], F_DUPFD_CLOEXEC, SANDBOX_INFO_FD + 1)) == -1)
			return -1;
		close(fds[1]);
		fds[1] = fd;
	}
	return fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
}

static int pool_local_pipes_open(struct lw_pipes *pp, int info)
{
	memset(pp, -1, sizeof(*pp));
	if (pool_local_pipe(pp->in, 1) == -1 || pool_local_pipe(pp->out, 0) == -1 ||
	    pool_local_pipe(pp->err, 0) == -1 || (info && pool_local_pipe(pp->info, 0) == -1)) {
		pool_local_pipes_close(pp);
		return -1;
	}
	return 0;
}

/* Start one worker process in dir: pid, or -1 (errno) with nothing open. */
static pid_t pool_local_start_process(struct local_pool *lp, const char *dir, const char *spill, struct lw_pipes *pp)
{
	pid_t pid;
	int saved;

	if (pool_local_pipes_open(pp, lp->bwrap) == -1)
		return -1;
	pid = pool_local_spawn_process(lp, dir, spill, pp->in[1], pp->out[1], pp->err[1], pp->info[1]);
	saved = errno;
	close(pp->in[1]);
	close(pp->out[1]);
	close(pp->err[1]);
	if (pp->info[1] >= 0)
		close(pp->info[1]);
	pp->in[1] = pp->out[1] = pp->err[1] = pp->info[1] = -1;
	if (pid == -1) {
		pool_local_pipes_close(pp);
		errno = saved;
	}
	return pid;
}

static void pool_local_worker_read_cb(struct bufferevent *bev, void *arg);
static void pool_local_worker_event_cb(struct bufferevent *bev, short what, void *arg);
static void pool_local_worker_stderr_cb(struct bufferevent *bev, void *arg);
static void pool_local_worker_stderr_event_cb(struct bufferevent *bev, short what, void *arg);
static void pool_local_worker_in_event_cb(struct bufferevent *bev, short what, void *arg);

static int pool_local_mkdir(const char *dir)
{
	if (mkdir(dir, 0700) == -1 && (errno != EEXIST || rmtree(dir) == -1 || mkdir(dir, 0700) == -1))
		return -1;
	return 0;
}

/* A fresh, private directory for one worker's workspaces, and its twin on
 * disk when work_dir is in memory (*spill, else NULL). */
static char *pool_local_make_dir(struct local_pool *lp, char **spill)
{
	unsigned long long seq = (unsigned long long)++lp->dir_seq;
	char *dir;

	*spill = NULL;
	xasprintf(&dir, "%s/" LW_DIR_PREFIX "%llu", lp->work_dir, seq);
	if (pool_local_mkdir(dir) == -1) {
		free(dir);
		return NULL;
	}
	if (lp->spill_dir != NULL) {
		xasprintf(spill, "%s/" LW_DIR_PREFIX "%llu", lp->spill_dir, seq);
		if (pool_local_mkdir(*spill) == -1) {
			int saved = errno;
			free(*spill);
			*spill = NULL;
			rmdir(dir);
			free(dir);
			errno = saved;
			return NULL;
		}
	}
	return dir;
}

static void pool_local_remove_dir(const char *what, char *dir)
{
	if (dir != NULL && rmtree(dir) == -1 && errno != ENOENT)
		log_warn("%s: cannot remove %s", what, dir);
	free(dir);
}

static void pool_local_start_failed(struct local_pool *lp, const char *reason);

/* bwrap's info fd: written (in several writes) before the worker runs,
 * then closed; it tells the worker's own pid, which gets the soft signals.
 * Read to EOF: closing it early would kill bwrap with SIGPIPE mid-setup and
 * orphan the half-made sandbox. */
static void pool_local_info_read(struct lworker *lw)
{
	char buf[512];
	size_t room;
	ssize_t n;

	while (lw->info_fd >= 0) {
		n = read(lw->info_fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n > 0) {
			room = sizeof(lw->info) - 1 - lw->ninfo;
			memcpy(lw->info + lw->ninfo, buf, (size_t)n < room ? (size_t)n : room);
			lw->ninfo += (size_t)n < room ? (size_t)n : room;
			if (lw->wpid == 0)
				lw->wpid = sandbox_info_pid(lw->info, lw->ninfo);
			continue;
		}
		event_del(lw->info_ev);
		close(lw->info_fd);
		lw->info_fd = -1;
	}
}

static void pool_local_worker_info_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_local_info_read(arg);
}

static struct bufferevent *pool_local_bev(struct local_pool *lp, int fd)
{
	struct bufferevent *bev = bufferevent_socket_new(lp->p->base, fd, BEV_OPT_CLOSE_ON_FREE);

	if (bev == NULL)
		fatalx("pool_local: bufferevent_socket_new failed");
	return bev;
}

static struct lworker *pool_local_spawn(struct local_pool *lp, int on_demand)
{
	struct lw_pipes pp;
	struct lworker *lw;
	char *dir, *spill, why[PATH_MAX + 64];
	pid_t pid;

	if ((dir = pool_local_make_dir(lp, &spill)) == NULL) {
		snprintf(why, sizeof(why), "cannot create a workspace in %s: %s", lp->work_dir, strerror(errno));
		pool_local_start_failed(lp, why);
		return NULL;
	}
	if ((pid = pool_local_start_process(lp, dir, spill, &pp)) == -1) {
		snprintf(why, sizeof(why), "cannot execute %s: %s", lp->bwrap ? lp->sb.bwrap : lp->path,
		         strerror(errno));
		rmdir(dir);
		free(dir);
		if (spill != NULL)
			rmdir(spill);
		free(spill);
		pool_local_start_failed(lp, why);
		return NULL;
	}
	lw = xcalloc(1, sizeof(*lw));
	lw->lp = lp;
	lw->pid = pid;
	lw->cfd = -1;
	lw->wpid = lp->bwrap ? 0 : pid;
	child_watch(pid, pool_local_child_exit_cb, lw);
	lw->state = LW_WARMING;
	lw->on_demand = on_demand;
	lw->dir = dir;
	lw->spill = spill;
	lw->w.pool = lp->p;
	lw->w.impl = lw;
	lw->w.spawned_us = time_mono_us();
	snprintf(lw->w.id, sizeof(lw->w.id), "local-%ld", (long)pid);
	lw->w.sess =
	    wsess_new(&lw->w, &pool_local_transport, lw, &pool_local_owner, (size_t)lp->p->cfg->max_context_bytes);
	wsess_heartbeat_start(lw->w.sess, lp->p->base);
	lw->in = pool_local_bev(lp, pp.in[0]);
	lw->out = pool_local_bev(lp, pp.out[0]);
	lw->err = pool_local_bev(lp, pp.err[0]);
	lw->info_fd = pp.info[0];
	if (lw->info_fd >= 0) {
		lw->info_ev = event_new(lp->p->base, lw->info_fd, EV_READ | EV_PERSIST, pool_local_worker_info_cb, lw);
		if (lw->info_ev == NULL || event_add(lw->info_ev, NULL) == -1)
			fatalx("pool_local: cannot watch the info fd");
	}
	bufferevent_setcb(lw->in, NULL, NULL, pool_local_worker_in_event_cb, lw);
	bufferevent_setcb(lw->out, pool_local_worker_read_cb, NULL, pool_local_worker_event_cb, lw);
	bufferevent_setcb(lw->err, pool_local_worker_stderr_cb, NULL, pool_local_worker_stderr_event_cb, lw);
	bufferevent_enable(lw->out, EV_READ);
	bufferevent_enable(lw->err, EV_READ);
	TAILQ_INSERT_TAIL(&lp->workers, lw, entry);
	log_debug("worker=%s spawned%s%s in %s", lw->w.id, lp->bwrap ? " under bwrap" : "",
	          on_demand ? " on demand" : "", dir);
	return lw;
}

/* -- lifetime ------------------------------------------------------------ */

static void pool_local_schedule_free(struct lworker *lw)
{
	if (lw->freeing)
		return;
	lw->freeing = 1;
	TAILQ_REMOVE(&lw->lp->workers, lw, entry);
	TAILQ_INSERT_TAIL(&lw->lp->dead, lw, entry);
	event_active(lw->lp->reap_ev, EV_TIMEOUT, 0);
}

static void pool_local_child_unwatch(struct lworker *lw);

static void pool_local_free(struct lworker *lw)
{
	if (!lw->reaped)
		child_forget(lw->pid);
	pool_local_child_unwatch(lw);
	if (lw->sync_ev != NULL)
		event_free(lw->sync_ev);
	if (lw->kill_ev != NULL)
		event_free(lw->kill_ev);
	if (lw->info_ev != NULL)
		event_free(lw->info_ev);
	if (lw->info_fd >= 0)
		close(lw->info_fd);
	if (lw->in != NULL)
		bufferevent_free(lw->in);
	if (lw->out != NULL)
		bufferevent_free(lw->out);
	if (lw->err != NULL)
		bufferevent_free(lw->err);
	wsess_free(lw->w.sess);
	/* Gone (reaped, or given up on at shutdown): whatever a killed worker
	 * left in its directory goes with it. */
	pool_local_remove_dir(lw->w.id, lw->dir);
	pool_local_remove_dir(lw->w.id, lw->spill);
	free(lw);
}

static void pool_local_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct local_pool *lp = arg;
	struct lworker *lw;

	(void)fd;
	(void)what;
	while ((lw = TAILQ_FIRST(&lp->dead)) != NULL) {
		TAILQ_REMOVE(&lp->dead, lw, entry);
		pool_local_free(lw);
	}
	pool_local_refill(lp);
}

static void pool_local_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct local_pool *lp = arg;

	(void)fd;
	(void)what;
	lp->in_backoff = 0;
	pool_local_refill(lp);
}

/* A worker that died before doing any work: wait before the next spawn so a
 * broken worker binary does not turn into a fork storm (50 ms doubling up
 * to LW_BACKOFF_MAX_MS, which is also how soon a fixed worker is noticed). */
#define LW_BACKOFF_MAX_MS 5000

static void pool_local_backoff(struct local_pool *lp, int64_t ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	lp->in_backoff = 1;
	evtimer_add(lp->backoff_ev, &tv);
}

/* The start of a worker failed (reason says how): back off; logged when
 * the reason changes and on the 1st, 2nd, 4th, 8th... failure in a row, so
 * a worker that never starts costs a few log lines, not one per attempt.
 * From local.start_fail_limit failures on, runs waiting for the pool fail
 * with the reason, until a worker starts again. */
static void pool_local_start_failed(struct local_pool *lp, const char *reason)
{
	pool_local_backoff(lp, pool_start_failed(lp->p, &lp->starts, reason, lp->p->cfg->local_start_fail_limit));
}

/* How a worker ended, for people: "osiris-worker exited 127: <the last
 * line it wrote to stderr>" or "... killed by signal 11 (Segmentation
 * fault)". */
static void pool_local_exit_text(const struct local_pool *lp, int st, const char *last_err, char *out, size_t outlen)
{
	const char *name = strrchr(lp->path, '/');
	int sig = 0, code = -1;
	size_t n;

	name = name != NULL ? name + 1 : lp->path;
	if (WIFSIGNALED(st)) {
		sig = WTERMSIG(st);
	} else if (WIFEXITED(st)) {
		code = WEXITSTATUS(st);
		/* bwrap exits 128 + N for a worker killed by signal N. */
		if (lp->bwrap && code > 128 && code < 128 + 65) {
			sig = code - 128;
			code = -1;
		}
	}
	if (sig != 0)
		n = (size_t)snprintf(out, outlen, "%s killed by signal %d (%s)", name, sig, strsignal(sig));
	else
		n = (size_t)snprintf(out, outlen, "%s exited %d", name, code);
	if (last_err[0] != '\0' && n < outlen)
		snprintf(out + n, outlen - n, ": %s", last_err);
}

/* Reaped and stdout at EOF: tell the taker, or just forget the worker. */
static void pool_local_check_done(struct lworker *lw)
{
	struct local_pool *lp = lw->lp;
	char reason[512];

	if (!lw->reaped || !lw->out_eof)
		return;
	pool_local_exit_text(lp, lw->status, lw->last_err, reason, sizeof(reason));
	switch (lw->state) {
	case LW_BUSY:
		if (lw->gone_sent)
			return;
		lw->gone_sent = 1;
		log_debug("worker=%s gone (%s)", lw->w.id, log_esc(reason, 512));
		wsess_closed(lw->w.sess, reason);
		break;
	case LW_RELEASED:
	case LW_RESETTING:
		if (lw->state == LW_RESETTING)
			log_warnx("worker=%s exited during reset (%s)", lw->w.id, log_esc(reason, 512));
		pool_local_schedule_free(lw);
		break;
	case LW_WARMING:
	case LW_IDLE:
		if (!lp->stopping)
			pool_local_start_failed(lp, reason);
		pool_local_schedule_free(lw);
		break;
	}
}

/* child.c reaped the worker (bwrap, or the worker itself). At stop the
 * pool only notes it: there is no run left to tell. */
static void pool_local_child_exit_cb(pid_t pid, int status, void *arg)
{
	struct lworker *lw = arg;

	(void)pid;
	lw->reaped = 1;
	lw->status = status;
	if (lw->kill_ev != NULL)
		evtimer_del(lw->kill_ev);
	if (!lw->lp->stopping)
		pool_local_check_done(lw);
}

/* The session says the worker is idle: it announced `ready`, or answered
 * the `reset` after a run. */
static void pool_local_sess_ready(struct worker *w)
{
	struct lworker *lw = pool_local_lw(w);
	struct local_pool *lp = lw->lp;
	int64_t ms;

	if (lw->state == LW_WARMING) {
		lw->w.ready_us = time_mono_us();
		ms = (lw->w.ready_us - lw->w.spawned_us + 500) / 1000;
		pool_latency_add(&lp->lat, ms);
		pool_start_ok(lp->p, &lp->starts, lw->w.id);
		log_debug("worker=%s ready in %lld ms", lw->w.id, (long long)ms);
	} else if (lw->state == LW_RESETTING) {
		log_debug("worker=%s reset after %u runs", lw->w.id, lw->runs);
	} else {
		return;
	}
	if (lw->sync_ev != NULL)
		evtimer_del(lw->sync_ev);
	lw->state = LW_IDLE;
	lw->idle_us = time_mono_us();
	pool_local_trim_later(lp);
	if (lp->p->ready_cb != NULL)
		lp->p->ready_cb(lp->p, lp->p->ready_arg);
}

/* The host's pid of a zygote's child. Unsandboxed it is the pid the child
 * reported; under bwrap (another pid namespace) it is the one child of the
 * zygote, which /proc/PID/task/PID/children names. 0 when unknown. */
static pid_t pool_local_child_pid(struct lworker *lw, int64_t reported)
{
	char path[64], buf[64];
	ssize_t n;
	long v;
	int fd;

	if (!lw->lp->bwrap)
		return (pid_t)reported;
	if (lw->wpid == 0)
		pool_local_info_read(lw);
	if (lw->wpid == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)lw->wpid, (long)lw->wpid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v > 0 && v < 1L << 30 ? (pid_t)v : 0;
}

/* A zygote forked the next run's process: the worker is known by it (the
 * run's `worker`, the pid a soft cancel signals). */
static void pool_local_sess_forked(struct worker *w, int64_t pid)
{
	struct lworker *lw = pool_local_lw(w);

	lw->cpid = pool_local_child_pid(lw, pid);
	if (lw->cpid > 0)
		snprintf(lw->w.id, sizeof(lw->w.id), "local-%ld", (long)lw->cpid);
	pool_local_child_watch(lw);
	log_debug("worker=%s forked by the zygote %ld", lw->w.id, (long)lw->pid);
}

static void pool_local_sess_failed(struct worker *w, const char *why)
{
	struct lworker *lw = pool_local_lw(w);
	char reason[128];

	log_warnx("worker=%s discarded: %s", w->id, why);
	/* A zygote that gives no process for the next run (`fork` refused)
	 * is a worker that does not start: the pool backs off. */
	if (wsess_is_zygote(w->sess) && (lw->state == LW_WARMING || lw->state == LW_RESETTING) && !lw->lp->stopping) {
		snprintf(reason, sizeof(reason), "osiris-worker --zygote: %s", why);
		pool_local_start_failed(lw->lp, reason);
	}
	pool_local_release_lw(lw);
	pool_local_refill_later(lw->lp);
}

/* -- a zygote's run process ------------------------------------------------- */

/* How long a resync may take (the kill, the zygote's reap and cleanup, its
 * echo and the next fork) before the sandbox is discarded instead. */
#define LW_SYNC_MS 5000

static pid_t pool_local_ppid(pid_t pid)
{
	char path[64], line[128];
	long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "PPid: %ld", &v) == 1)
			break;
	}
	fclose(f);
	return (pid_t)v;
}

static void pool_local_child_unwatch(struct lworker *lw)
{
	if (lw->cev != NULL) {
		event_free(lw->cev);
		lw->cev = NULL;
	}
	if (lw->cfd >= 0) {
		close(lw->cfd);
		lw->cfd = -1;
	}
}

static void pool_local_release_now(struct lworker *lw, const char *why)
{
	log_warnx("worker=%s discarded: %s", lw->w.id, why);
	pool_local_release_lw(lw);
	pool_local_refill_later(lw->lp);
}

/* The run's process is gone: resync with the zygote, which reaped it and
 * emptied its workspace. Ours not yet sent to it is dropped. */
static void pool_local_resync_now(struct lworker *lw)
{
	struct evbuffer *out;

	lw->resync_pending = 0;
	lw->cpid = 0;
	if (lw->in != NULL && (out = bufferevent_get_output(lw->in)) != NULL)
		evbuffer_drain(out, evbuffer_get_length(out));
	if (lw->in == NULL || wsess_resync(lw->w.sess) == -1) {
		pool_local_release_now(lw, "cannot resync with the zygote");
		return;
	}
	log_debug("worker=%s resyncing with its zygote", lw->w.id);
}

static void pool_local_sync_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lworker *lw = arg;

	(void)fd;
	(void)what;
	if (lw->state == LW_RESETTING)
		pool_local_release_now(lw, "the zygote did not resync in time");
}

/* The run on lw failed or was cancelled (or its waiting process died):
 * end the run's process if it lives, then resync. 0, or -1 when the
 * sandbox cannot be kept (the caller discards it): not a zygote, going,
 * or a process the pool cannot watch. */
static int pool_local_resync_start(struct lworker *lw)
{
	struct timeval tv = {LW_SYNC_MS / 1000, (LW_SYNC_MS % 1000) * 1000};

	if (lw->lp->stopping || lw->reaped || lw->out_eof || lw->in == NULL || !wsess_is_zygote(lw->w.sess) ||
	    !wsess_usable(lw->w.sess) || (!lw->child_dead && lw->cfd < 0))
		return -1;
	if (!lw->child_dead && syscall(SYS_pidfd_send_signal, lw->cfd, SIGKILL, NULL, 0) == -1 && errno != ESRCH)
		return -1;
	lw->state = LW_RESETTING;
	lw->gone_sent = 0;
	lw->w.mask = NULL;
	wsess_detach(lw->w.sess);
	if (lw->sync_ev == NULL && (lw->sync_ev = evtimer_new(lw->lp->p->base, pool_local_sync_timeout_cb, lw)) == NULL)
		fatalx("pool_local: evtimer_new");
	evtimer_add(lw->sync_ev, &tv);
	if (lw->child_dead)
		pool_local_resync_now(lw);
	else
		lw->resync_pending = 1;
	return 0;
}

static void pool_local_child_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lworker *lw = arg;
	char why[96];

	(void)fd;
	(void)what;
	pool_local_child_unwatch(lw);
	lw->child_dead = 1;
	switch (lw->state) {
	case LW_BUSY: /* the run is told; its release resyncs */
		snprintf(why, sizeof(why), "its run's process %ld ended", (long)lw->cpid);
		wsess_child_gone(lw->w.sess, why);
		break;
	case LW_IDLE:
		log_warnx("worker=%s: the process waiting for a run ended", lw->w.id);
		if (pool_local_resync_start(lw) == -1)
			pool_local_release_now(lw, "its waiting process ended");
		break;
	case LW_RESETTING:
		if (lw->resync_pending)
			pool_local_resync_now(lw);
		break; /* else the end that follows `reset` */
	default:
		break;
	}
}

/* Watch the run's process through a pidfd: its end is seen although the
 * zygote, not this daemon, is its parent. Only a process whose parent is
 * our zygote is watched (a pid reused meanwhile is not ours). */
static void pool_local_child_watch(struct lworker *lw)
{
	pid_t zygote = lw->wpid != 0 ? lw->wpid : lw->pid;

	pool_local_child_unwatch(lw);
	lw->child_dead = 0;
	if (lw->cpid <= 0 || (lw->cfd = (int)syscall(SYS_pidfd_open, lw->cpid, 0)) == -1)
		return;
	if (pool_local_ppid(lw->cpid) != zygote) {
		pool_local_child_unwatch(lw);
		return;
	}
	lw->cev = event_new(lw->lp->p->base, lw->cfd, EV_READ, pool_local_child_end_cb, lw);
	if (lw->cev == NULL || event_add(lw->cev, NULL) == -1)
		fatalx("pool_local: cannot watch a run's process");
}

static void pool_local_worker_read_cb(struct bufferevent *bev, void *arg)
{
	struct lworker *lw = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec vec[8];
	size_t len;
	int n, i;

	while ((len = evbuffer_get_length(in)) > 0) {
		n = evbuffer_peek(in, -1, NULL, vec, 8);
		if (n > 8)
			n = 8;
		len = 0;
		for (i = 0; i < n; i++) {
			if (lw->state != LW_RELEASED)
				wsess_input(lw->w.sess, vec[i].iov_base, vec[i].iov_len);
			len += vec[i].iov_len;
		}
		evbuffer_drain(in, len);
	}
}

static void pool_local_worker_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lworker *lw = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		pool_local_worker_read_cb(bev, arg);
		bufferevent_disable(bev, EV_READ);
		lw->out_eof = 1;
		pool_local_check_done(lw);
	}
}

static void pool_local_worker_in_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lworker *lw = arg;

	/* EPIPE on stdin: the worker is going; SIGCHLD and stdout EOF tell. */
	(void)what;
	bufferevent_disable(bev, EV_WRITE);
	(void)lw;
}

/* -- stderr: free-form diagnostics, logged at debug ---------------------- */

/* Kept (masked, control characters replaced) for the reason a start or
 * a run failed: a worker that cannot load a library says why here. */
static void pool_local_keep_last_err(char *last, size_t lastlen, const char *text, size_t len)
{
	size_t i;

	while (len > 0 && (*text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' '))
		len--;
	if (len == 0)
		return;
	snprintf(last, lastlen, "%.*s", (int)(len < lastlen ? len : lastlen - 1), text);
	for (i = 0; last[i] != '\0'; i++) {
		if ((unsigned char)last[i] < 0x20 || last[i] == 0x7f)
			last[i] = '?';
	}
}

static void pool_local_stderr_line(struct lworker *lw, const char *line, size_t len)
{
	char *text, *masked;

	text = xstrndup(line, len);
	masked = lw->w.mask != NULL ? mask_apply(lw->w.mask, text) : NULL;
	pool_local_keep_last_err(lw->last_err, sizeof(lw->last_err), masked != NULL ? masked : text,
	                         strlen(masked != NULL ? masked : text));
	log_debug("worker=%s stderr: %s", lw->w.id, log_esc(masked != NULL ? masked : text, LW_STDERR_LINE));
	free(masked);
	free(text);
}

static void pool_local_worker_stderr_cb(struct bufferevent *bev, void *arg)
{
	struct lworker *lw = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		pool_local_stderr_line(lw, line, len);
		free(line);
	}
	/* An endless line is cut rather than buffered without bound. */
	while ((len = evbuffer_get_length(in)) >= LW_STDERR_LINE) {
		unsigned char *p = evbuffer_pullup(in, LW_STDERR_LINE);
		pool_local_stderr_line(lw, (const char *)p, LW_STDERR_LINE);
		evbuffer_drain(in, LW_STDERR_LINE);
	}
}

static void pool_local_worker_stderr_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lworker *lw = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		pool_local_worker_stderr_cb(bev, arg);
		if ((len = evbuffer_get_length(in)) > 0) {
			pool_local_stderr_line(lw, (const char *)evbuffer_pullup(in, -1), len);
			evbuffer_drain(in, len);
		}
		bufferevent_disable(bev, EV_READ);
	}
}

/* -- refill ------------------------------------------------------------- */

static void pool_local_refill(struct local_pool *lp)
{
	const struct config *cfg = lp->p->cfg;
	unsigned idle, warming, busy, alive, target;
	struct lworker *lw;

	if (lp->stopping || lp->in_backoff)
		return;
	target = (unsigned)(cfg->local_pool_size > 0 ? cfg->local_pool_size : 0) + lp->demand;
	pool_local_counts(lp, &idle, &warming, &busy, &alive);
	while (idle + warming < target && alive < (unsigned)cfg->local_max_workers) {
		lw = pool_local_spawn(lp, idle + warming >= (unsigned)cfg->local_pool_size);
		if (lw == NULL)
			return; /* backing off */
		warming++;
		alive++;
	}
}

static void pool_local_refill_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_local_refill(arg);
}

/* While an idle worker is left, spawning can wait a moment: the run that
 * just took one is unpacking its bundle and should not share the CPU with a
 * process start. With none left, refill at once. */
#define LW_REFILL_DELAY_US 15000

static void pool_local_refill_later(struct local_pool *lp)
{
	struct timeval tv = {0, LW_REFILL_DELAY_US};
	unsigned idle, warming, busy, alive;

	if (evtimer_pending(lp->refill_ev, NULL))
		return;
	pool_local_counts(lp, &idle, &warming, &busy, &alive);
	if (idle == 0)
		tv.tv_usec = 0;
	evtimer_add(lp->refill_ev, &tv);
}

/* -- trim --------------------------------------------------------------- */

/* Sandboxes made on demand for a burst that is gone: idle ones above the
 * target (local.pool_size plus what queued runs wait for) go once idle for
 * POOL_SURPLUS_IDLE_S. The oldest go first. */

static unsigned pool_local_target(const struct local_pool *lp)
{
	return (unsigned)(lp->p->cfg->local_pool_size > 0 ? lp->p->cfg->local_pool_size : 0) + lp->demand;
}

static void pool_local_trim(struct local_pool *lp)
{
	unsigned idle, warming, busy, alive, target = pool_local_target(lp);
	int64_t now = time_mono_us(), linger = (int64_t)POOL_SURPLUS_IDLE_S * 1000000;
	struct lworker *lw, *next;

	if (lp->stopping)
		return;
	pool_local_counts(lp, &idle, &warming, &busy, &alive);
	for (lw = TAILQ_FIRST(&lp->workers); lw != NULL && idle > target; lw = next) {
		next = TAILQ_NEXT(lw, entry);
		if (lw->state != LW_IDLE || lw->reaped || lw->out_eof || now - lw->idle_us < linger)
			continue;
		log_debug("worker=%s idle above the pool's target for %d s, retiring it", lw->w.id,
		          POOL_SURPLUS_IDLE_S);
		pool_local_release_lw(lw);
		idle--;
	}
	pool_local_trim_later(lp);
}

static void pool_local_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_local_trim(arg);
}

/* While there are more idle sandboxes than the target, look again when the
 * oldest idle one has lingered long enough. */
static void pool_local_trim_later(struct local_pool *lp)
{
	unsigned idle, warming, busy, alive;
	int64_t oldest = INT64_MAX, due_us;
	struct lworker *lw;
	struct timeval tv;

	if (lp->stopping || lp->trim_ev == NULL || evtimer_pending(lp->trim_ev, NULL))
		return;
	pool_local_counts(lp, &idle, &warming, &busy, &alive);
	if (idle <= pool_local_target(lp))
		return;
	TAILQ_FOREACH(lw, &lp->workers, entry)
	{
		if (lw->state == LW_IDLE && !lw->reaped && !lw->out_eof && lw->idle_us < oldest)
			oldest = lw->idle_us;
	}
	due_us = oldest + (int64_t)POOL_SURPLUS_IDLE_S * 1000000 - time_mono_us();
	if (due_us < 1000)
		due_us = 1000;
	tv.tv_sec = due_us / 1000000;
	tv.tv_usec = due_us % 1000000;
	evtimer_add(lp->trim_ev, &tv);
}

/* -- start: worker path, isolation probe -------------------------------- */

static char *pool_local_default_path(void);

static char *pool_local_worker_path(const struct config *cfg)
{
	return cfg->local_worker != NULL && *cfg->local_worker != '\0' ? xstrdup(cfg->local_worker)
	                                                               : pool_local_default_path();
}

static char *pool_local_default_path(void)
{
	char exe[PATH_MAX], *dir, *path;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		dir = dirname(exe);
		xasprintf(&path, "%s/osiris-worker", dir);
		if (access(path, X_OK) == 0)
			return path;
		free(path);
	}
	return xstrdup(LIBEXECDIR "/osiris-worker");
}

static char *pool_local_find_bwrap(void)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *cand, *found = NULL;

	copy = xstrdup(path != NULL ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir != NULL && found == NULL; dir = strtok_r(NULL, ":", &save)) {
		if (*dir != '/')
			continue; /* a relative PATH entry would follow our cwd */
		xasprintf(&cand, "%s/bwrap", dir);
		if (access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(copy);
	return found;
}

#define LW_PROBE_MS 10000

struct lw_probe {
	struct lw_pipes pp;
	struct rpc_reader rd;
	pid_t pid;
	int ready, answered, eof;
	char last_err[256];
	struct buf errline;
};

/* What the probe worker wrote: `ready` (its drivers are the pool's until
 * a worker of the pool says otherwise), then the answer to our ping. */
static void pool_local_probe_out(struct local_pool *lp, struct lw_probe *pr, const uint8_t *data, size_t len)
{
	static const uint8_t ping[] = {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80};
	struct msg_ready rm;
	struct rpc_msg msg;
	char err[256];
	uint32_t id;
	int has_id, big;

	rpc_reader_add(&pr->rd, data, len);
	while (!pr->answered && rpc_reader_next(&pr->rd, &msg, err, sizeof(err), &id, &has_id, &big) == 1) {
		if (msg.type == RPC_NOTIFY && strcmp(msg.method, "ready") == 0 && !pr->ready) {
			pr->ready = 1;
			if (msg_ready_decode(msg.params, &rm, err, sizeof(err)) == 0) {
				pool_worker_ready(lp->p, &rm);
				msg_ready_free(&rm);
			}
			if (write(pr->pp.in[0], ping, sizeof(ping)) != (ssize_t)sizeof(ping))
				pr->eof = 1;
		} else if (msg.type == RPC_RESPONSE && msg.msgid == 1 && msg.error == NULL) {
			pr->answered = 1;
		}
		rpc_msg_free(&msg);
	}
}

static void pool_local_probe_err(struct lw_probe *pr, const uint8_t *data, size_t len)
{
	const uint8_t *nl;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		buf_add(&pr->errline, data, nl != NULL ? (size_t)(nl - data) : len);
		if (nl == NULL)
			break;
		pool_local_keep_last_err(pr->last_err, sizeof(pr->last_err), (const char *)pr->errline.data,
		                         pr->errline.len);
		buf_reset(&pr->errline);
		len -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	if (pr->errline.len > LW_STDERR_LINE)
		buf_reset(&pr->errline);
}

/* Read the probe's stdout and stderr until it answered, ended or ran out
 * of time. */
static void pool_local_probe_wait(struct local_pool *lp, struct lw_probe *pr)
{
	int64_t deadline = time_mono_us() + LW_PROBE_MS * 1000LL;
	struct pollfd pfd[2];
	uint8_t data[4096];
	ssize_t n;
	int i;

	while (!pr->answered && !pr->eof && time_mono_us() < deadline) {
		pfd[0].fd = pr->pp.out[0];
		pfd[1].fd = pr->pp.err[0];
		pfd[0].events = pfd[1].events = POLLIN;
		if (poll(pfd, 2, 100) == -1 && errno != EINTR)
			return;
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, data, sizeof(data));
			if (n > 0 && i == 0)
				pool_local_probe_out(lp, pr, data, (size_t)n);
			else if (n > 0)
				pool_local_probe_err(pr, data, (size_t)n);
			else if (n == 0 && i == 0)
				pr->eof = 1;
		}
	}
}

/* Wait for the probe to exit (it does once its stdin closes), killing it
 * after a while; its stderr's last line is read to the end. */
static int pool_local_probe_reap(struct lw_probe *pr)
{
	int64_t deadline = time_mono_us() + 2000000;
	uint8_t data[4096];
	int status = 0;
	ssize_t n;

	close(pr->pp.in[0]);
	pr->pp.in[0] = -1;
	while (waitpid(pr->pid, &status, WNOHANG) == 0) {
		if (time_mono_us() >= deadline) {
			kill(pr->pid, SIGKILL);
			deadline = INT64_MAX;
		}
		usleep(2000);
	}
	while ((n = read(pr->pp.err[0], data, sizeof(data))) > 0)
		pool_local_probe_err(pr, data, (size_t)n);
	if (pr->errline.len > 0)
		pool_local_keep_last_err(pr->last_err, sizeof(pr->last_err), (const char *)pr->errline.data,
		                         pr->errline.len);
	return status;
}

/* Start one worker exactly as the pool does (argv, environment, view,
 * workspace) and check it answers `ping`: 0, or -1 with why. Unsandboxed
 * with a view built, the files it maps join the view. */
static int pool_local_probe(struct local_pool *lp, char *why, size_t whylen)
{
	struct rpc_limits lim;
	struct lw_probe pr;
	char *dir, *spill;
	int status;

	memset(&pr, 0, sizeof(pr));
	buf_init(&pr.errline);
	if ((dir = pool_local_make_dir(lp, &spill)) == NULL) {
		snprintf(why, whylen, "cannot create a workspace in %s: %s", lp->work_dir, strerror(errno));
		return -1;
	}
	if ((pr.pid = pool_local_start_process(lp, dir, spill, &pr.pp)) == -1) {
		snprintf(why, whylen, "cannot execute %s: %s", lp->bwrap ? lp->sb.bwrap : lp->path, strerror(errno));
		pool_local_remove_dir("local pool", dir);
		pool_local_remove_dir("local pool", spill);
		return -1;
	}
	rpc_limits_default(&lim, (size_t)lp->p->cfg->max_context_bytes);
	rpc_reader_init(&pr.rd, &lim);
	pool_local_probe_wait(lp, &pr);
	if (pr.answered && !lp->bwrap && lp->sb.bwrap != NULL)
		sandbox_add_maps(&lp->sb, pr.pid);
	status = pool_local_probe_reap(&pr);
	if (!pr.answered && pr.eof)
		pool_local_exit_text(lp, status, pr.last_err, why, whylen);
	else if (!pr.answered)
		snprintf(why, whylen, "%s did not answer ping within %d s", lp->path, LW_PROBE_MS / 1000);
	rpc_reader_free(&pr.rd);
	buf_free(&pr.errline);
	pool_local_pipes_close(&pr.pp);
	pool_local_remove_dir("local pool", dir);
	pool_local_remove_dir("local pool", spill);
	return pr.answered ? 0 : -1;
}

/* Can bwrap start a sandbox here at all (user namespaces, a chroot)? The
 * view without the worker runs /usr/bin/true; why gets bwrap's last line. */
static int pool_local_bwrap_works(struct local_pool *lp, char *why, size_t whylen)
{
	posix_spawn_file_actions_t fa;
	const char *argv[160];
	struct lw_probe pr;
	int null, status;
	pid_t pid;

	memset(&pr, 0, sizeof(pr));
	buf_init(&pr.errline);
	memset(&pr.pp, -1, sizeof(pr.pp));
	if (pool_local_pipe(pr.pp.err, 0) == -1 || (null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		pool_local_pipes_close(&pr.pp);
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	sandbox_argv_cmd(&lp->sb, "/usr/bin/true", argv, sizeof(argv) / sizeof(argv[0]));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, null, 0);
	posix_spawn_file_actions_adddup2(&fa, null, 1);
	posix_spawn_file_actions_adddup2(&fa, pr.pp.err[1], 2);
	status = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)(uintptr_t)argv, lp->envp);
	posix_spawn_file_actions_destroy(&fa);
	close(null);
	close(pr.pp.err[1]);
	pr.pp.err[1] = -1;
	if (status != 0) {
		pool_local_pipes_close(&pr.pp);
		snprintf(why, whylen, "cannot execute %s: %s", argv[0], strerror(status));
		return -1;
	}
	pr.pid = pid;
	pr.pp.in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* closed by the reap */
	status = pool_local_probe_reap(&pr);
	buf_free(&pr.errline);
	pool_local_pipes_close(&pr.pp);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(why, whylen, "%s", pr.last_err[0] != '\0' ? pr.last_err : "bwrap failed");
	return -1;
}

/* Decide how workers start: under bwrap when local.isolation=auto finds it
 * and a real worker answers inside it; without, when only that works (a
 * host without user namespaces). A worker that starts in neither way is the
 * worker's problem, not isolation's: the pool reports it and retries. */
static void pool_local_isolation(struct local_pool *lp)
{
	const char *mode = lp->p->cfg->local_isolation;
	char *bwrap, why[512], why2[512];

	if (mode == NULL || strcmp(mode, "auto") == 0) {
		if ((bwrap = pool_local_find_bwrap()) == NULL) {
			log_info("local pool: bwrap not found, workers run without isolation");
		} else {
			sandbox_init(&lp->sb, bwrap, lp->path);
			free(bwrap);
			if (pool_local_bwrap_works(lp, why, sizeof(why)) == 0) {
				lp->bwrap = 1;
			} else {
				log_warnx("local pool: bwrap cannot start here (%s); workers run without isolation",
				          log_esc(why, 512));
				sandbox_free(&lp->sb);
			}
		}
	}
	if (pool_local_probe(lp, why, sizeof(why)) == 0)
		return;
	if (!lp->bwrap) {
		pool_local_start_failed(lp, why);
		return;
	}
	lp->bwrap = 0;
	if (pool_local_probe(lp, why2, sizeof(why2)) == -1) {
		lp->bwrap = 1; /* isolation is not what is wrong */
		pool_local_start_failed(lp, why);
		return;
	}
	lp->bwrap = 1; /* it may have loaded libraries from outside the view */
	if (pool_local_probe(lp, why2, sizeof(why2)) == 0) {
		log_info("local pool: the worker loads %zu files from outside the system trees, bound read-only",
		         lp->sb.nextra);
		return;
	}
	lp->bwrap = 0;
	sandbox_free(&lp->sb);
	log_warnx("local pool: bwrap cannot start the worker here (%s); workers run without isolation",
	          log_esc(why, 512));
}

/* Entries of a previous daemon's workers (killed, or the daemon crashed):
 * only our own names, in case work_dir is shared with anything else. */
static void pool_local_clean_work_dir(const char *work_dir)
{
	struct dirent *de;
	char *path;
	DIR *d;

	if ((d = opendir(work_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, LW_DIR_PREFIX, strlen(LW_DIR_PREFIX)) != 0)
			continue;
		xasprintf(&path, "%s/%s", work_dir, de->d_name);
		log_info("local pool: removing stale worker directory %s", path);
		if (rmtree(path) == -1)
			log_warn("rmtree %s", path);
		free(path);
	}
	closedir(d);
}

static int pool_local_in_memory(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

/* mkdir 0700, or an existing directory that is ours and private: in a
 * world-writable /dev/shm anyone could have made it first. */
static int pool_local_private_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	if (lstat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

#define LW_STATE_FILE ".state_dir"

/* work-<hash> directories beside ours whose daemon's state dir is gone (a
 * daemon killed, its state dir removed, as tests do): nobody would ever
 * clean them, and they are in memory. Ours record their state dir. */
static void pool_local_sweep_mem(const char *base, const char *mine)
{
	char *path, *rec, state[PATH_MAX];
	struct dirent *de;
	struct stat st;
	ssize_t n;
	DIR *d;
	int fd;

	if ((d = opendir(base)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "work-", 5) != 0)
			continue;
		xasprintf(&path, "%s/%s", base, de->d_name);
		xasprintf(&rec, "%s/" LW_STATE_FILE, path);
		n = -1;
		if (strcmp(path, mine) != 0 && (fd = open(rec, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
			n = read(fd, state, sizeof(state) - 1);
			close(fd);
		}
		if (n > 0) {
			state[n] = '\0';
			if (state[0] == '/' && stat(state, &st) == -1 && errno == ENOENT) {
				log_info("local pool: removing %s (its state dir %s is gone)", path,
				         log_esc(state, 256));
				if (rmtree(path) == -1)
					log_warn("rmtree %s", path);
			}
		}
		free(rec);
		free(path);
	}
	closedir(d);
}

/* Record which state dir a work-<hash> directory belongs to. */
static void pool_local_mem_record(const char *dir, const char *state_dir)
{
	char *rec;
	int fd;

	xasprintf(&rec, "%s/" LW_STATE_FILE, dir);
	if ((fd = open(rec, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) != -1) {
		if (write(fd, state_dir, strlen(state_dir)) == -1)
			log_warn("%s", rec);
		close(fd);
	}
	free(rec);
}

/* The default work_dir in memory, or NULL: under systemd the unit's
 * RuntimeDirectory= ($RUNTIME_DIRECTORY/work), else $XDG_RUNTIME_DIR/osiris,
 * else /dev/shm/osiris-$UID, each only when it is a tmpfs. Outside systemd
 * the directory is named after the state dir (work-<hash>), so daemons of
 * one user with different state dirs never share (or clean) it. */
static char *pool_local_mem_dir(const struct config *cfg)
{
	const char *rt = getenv("RUNTIME_DIRECTORY"), *xdg = getenv("XDG_RUNTIME_DIR");
	uint64_t h = 1469598103934665603ULL;
	const char *c;
	char *base = NULL, *dir = NULL;
	int hashed = 0;

	for (c = cfg->state_dir; *c != '\0'; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ULL;
	if (rt != NULL && *rt == '/') {
		base = xstrndup(rt, strcspn(rt, ":")); /* the first of them */
		if (pool_local_in_memory(base))
			xasprintf(&dir, "%s/work", base);
	} else if (xdg != NULL && *xdg == '/' && pool_local_in_memory(xdg)) {
		xasprintf(&base, "%s/osiris", xdg);
		if (mkdir(base, 0700) == 0 || errno == EEXIST)
			hashed = xasprintf(&dir, "%s/work-%016llx", base, (unsigned long long)h);
	} else if (pool_local_in_memory("/dev/shm")) {
		xasprintf(&base, "/dev/shm/osiris-%lu", (unsigned long)geteuid());
		if (pool_local_private_dir(base) == 0)
			hashed = xasprintf(&dir, "%s/work-%016llx", base, (unsigned long long)h);
	}
	if (dir != NULL && ((mkdir(dir, 0700) == -1 && errno != EEXIST) || access(dir, W_OK | X_OK) == -1)) {
		log_warn("local pool: %s (workspaces stay on disk)", dir);
		free(dir);
		dir = NULL;
	}
	if (dir != NULL && hashed) {
		pool_local_mem_record(dir, cfg->state_dir);
		pool_local_sweep_mem(base, dir);
	}
	free(base);
	return dir;
}

static int pool_local_dir_ready(const char *dir, char *err, size_t errlen)
{
	char *probe;

	xasprintf(&probe, "%s/.", dir);
	if (mkdir_parents(probe) == -1 || access(dir, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "local.work_dir %s: %s", dir, strerror(errno));
		free(probe);
		return -1;
	}
	free(probe);
	pool_local_clean_work_dir(dir);
	return 0;
}

/* local.work_dir as set; by default a directory in memory (workspaces of
 * contexts up to local.work_dir_max_bytes), <state_dir>/work on disk for
 * the others, or for all of them when there is no tmpfs or the cap is 0. */
static int pool_local_work_dir(struct local_pool *lp, char *err, size_t errlen)
{
	const struct config *cfg = lp->p->cfg;
	char *disk;

	if (cfg->local_work_dir != NULL && *cfg->local_work_dir != '\0') {
		lp->work_dir = xstrdup(cfg->local_work_dir);
		return pool_local_dir_ready(lp->work_dir, err, errlen);
	}
	xasprintf(&disk, "%s/work", cfg->state_dir);
	if (cfg->local_work_dir_max_bytes > 0 && (lp->work_dir = pool_local_mem_dir(cfg)) != NULL) {
		lp->spill_dir = disk;
		if (pool_local_dir_ready(lp->spill_dir, err, errlen) == -1)
			return -1;
		return pool_local_dir_ready(lp->work_dir, err, errlen);
	}
	lp->work_dir = disk;
	return pool_local_dir_ready(lp->work_dir, err, errlen);
}

static int pool_local_start(struct pool *p, char *err, size_t errlen)
{
	const struct config *cfg = p->cfg;
	struct local_pool *lp = xcalloc(1, sizeof(*lp));

	p->impl = lp;
	p->heartbeat_s = cfg->local_heartbeat_s;
	lp->p = p;
	TAILQ_INIT(&lp->workers);
	lp->starts.what = "worker";
	lp->starts.whats = "workers";
	lp->starts.base_ms = 50;
	lp->starts.max_ms = LW_BACKOFF_MAX_MS;
	TAILQ_INIT(&lp->dead);
	/* A worker that does not start is not a reason to refuse to start:
	 * the pool reports it and fails runs with it until it is fixed. */
	lp->path = pool_local_worker_path(cfg);
	if (pool_local_work_dir(lp, err, errlen) == -1)
		return -1;
	lp->envp = pool_local_env(cfg);
	lp->refill_ev = evtimer_new(p->base, pool_local_refill_cb, lp);
	lp->reap_ev = event_new(p->base, -1, 0, pool_local_reap_cb, lp);
	lp->backoff_ev = evtimer_new(p->base, pool_local_backoff_cb, lp);
	lp->trim_ev = evtimer_new(p->base, pool_local_trim_cb, lp);
	if (lp->refill_ev == NULL || lp->reap_ev == NULL || lp->backoff_ev == NULL || lp->trim_ev == NULL) {
		snprintf(err, errlen, "local pool: cannot set up events");
		return -1;
	}
	pool_local_isolation(lp);
	log_info(
	    "local pool: worker %s, pool_size %d, max_workers %d, worker_max_runs %d, isolation %s, work_dir %s%s%s",
	    lp->path, cfg->local_pool_size, cfg->local_max_workers, cfg->local_worker_max_runs,
	    lp->bwrap ? "bwrap" : "none", lp->work_dir,
	    lp->spill_dir != NULL ? " (in memory), larger contexts in " : "",
	    lp->spill_dir != NULL ? lp->spill_dir : "");
	pool_local_refill(lp);
	return 0;
}

/* -- the pool_ops ------------------------------------------------------- */

static void pool_local_stop(struct pool *p)
{
	struct local_pool *lp = pool_local_of(p);
	struct lworker *lw;

	if (lp == NULL)
		return;
	lp->stopping = 1;
	/* Shutdown, the loop is over: stdin EOF lets workers exit (and clean
	 * their workspace); what is still there after a second is killed.
	 * bufferevent_free defers the close to a finalizer that needs the
	 * loop, so the fd is detached and closed here. */
	TAILQ_FOREACH(lw, &lp->workers, entry)
	{
		if (lw->in != NULL) {
			evutil_socket_t fd = bufferevent_getfd(lw->in);
			bufferevent_disable(lw->in, EV_READ | EV_WRITE);
			bufferevent_setfd(lw->in, -1);
			if (fd >= 0)
				close(fd);
			bufferevent_free(lw->in);
			lw->in = NULL;
		}
	}
	child_reap_until(time_mono_us() + 1000000);
	TAILQ_FOREACH(lw, &lp->workers, entry)
	{
		if (!lw->reaped)
			kill(lw->pid, SIGKILL);
	}
	child_reap_until(time_mono_us() + 2000000);
	while ((lw = TAILQ_FIRST(&lp->workers)) != NULL) {
		TAILQ_REMOVE(&lp->workers, lw, entry);
		pool_local_free(lw);
	}
	while ((lw = TAILQ_FIRST(&lp->dead)) != NULL) {
		TAILQ_REMOVE(&lp->dead, lw, entry);
		pool_local_free(lw);
	}
	event_free(lp->refill_ev);
	event_free(lp->reap_ev);
	event_free(lp->backoff_ev);
	event_free(lp->trim_ev);
	free(lp->path);
	/* Our directory in memory goes too (RuntimeDirectory= is kept). */
	if (lp->spill_dir != NULL) {
		char *rec;
		xasprintf(&rec, "%s/" LW_STATE_FILE, lp->work_dir);
		(void)unlink(rec);
		free(rec);
		(void)rmdir(lp->work_dir);
	}
	free(lp->work_dir);
	free(lp->spill_dir);
	sandbox_free(&lp->sb);
	pool_starts_free(&lp->starts);
	pool_local_env_free(lp->envp);
	free(lp);
	p->impl = NULL;
}

static void pool_local_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lworker *lw = arg;

	(void)fd;
	(void)what;
	if (!lw->reaped) {
		log_warnx("worker=%s did not exit after its stdin closed, killing it", lw->w.id);
		kill(lw->pid, SIGKILL);
	}
}

static void pool_local_release_lw(struct lworker *lw)
{
	struct timeval tv = {LW_KILL_AFTER_MS / 1000, (LW_KILL_AFTER_MS % 1000) * 1000};

	lw->state = LW_RELEASED;
	lw->w.mask = NULL;
	/* stdin EOF asks the worker to exit (and remove its workspace). */
	if (lw->in != NULL) {
		bufferevent_free(lw->in);
		lw->in = NULL;
	}
	if (lw->reaped && lw->out_eof) {
		pool_local_schedule_free(lw);
		return;
	}
	if (!lw->reaped) {
		if (lw->kill_ev == NULL)
			lw->kill_ev = evtimer_new(lw->lp->p->base, pool_local_kill_cb, lw);
		evtimer_add(lw->kill_ev, &tv);
	}
}

static int pool_local_resync_start(struct lworker *lw);

static void pool_local_release(struct worker *w)
{
	struct lworker *lw = pool_local_lw(w);

	if (lw->state == LW_RELEASED)
		return;
	/* A failed or cancelled run on a zygote's sandbox: only the run's
	 * process goes, the sandbox serves the next run. */
	if (lw->state == LW_BUSY && pool_local_resync_start(lw) == 0)
		return;
	pool_local_release_lw(lw);
	pool_local_refill_later(lw->lp);
}

/* The run on w succeeded: keep the process for another run (reset first)
 * unless it has served local.worker_max_runs or cannot be trusted. */
static void pool_local_recycle(struct worker *w)
{
	struct lworker *lw = pool_local_lw(w);
	struct local_pool *lp = lw->lp;

	/* A zygote's run process exits on `reset`: the next run gets a fork. */
	if (lw->state != LW_BUSY || lp->stopping || lw->reaped || lw->out_eof || lw->in == NULL ||
	    (!wsess_is_zygote(lw->w.sess) && lw->runs >= (unsigned)lp->p->cfg->local_worker_max_runs)) {
		log_debug("worker=%s retired after %u runs", lw->w.id, lw->runs);
		pool_local_release(w);
		return;
	}
	lw->state = LW_RESETTING;
	lw->on_demand = 0;
	lw->gone_sent = 0;
	lw->w.mask = NULL;
	lw->cpid = 0;
	if (wsess_reset(lw->w.sess) == -1) {
		pool_local_release(w);
		return;
	}
	log_debug("worker=%s resetting after %u runs", lw->w.id, lw->runs);
}

/* local.worker changed: later workers start the new binary (in a view
 * rebuilt around it). Any reload retries a failing pool at once. */
static void pool_local_reload_worker(struct local_pool *lp)
{
	char *path = pool_local_worker_path(lp->p->cfg), *bwrap;

	if (strcmp(path, lp->path) != 0) {
		log_info("local pool: worker %s -> %s", lp->path, path);
		free(lp->path);
		lp->path = path;
		if (lp->sb.bwrap != NULL) {
			bwrap = xstrdup(lp->sb.bwrap);
			sandbox_free(&lp->sb);
			sandbox_init(&lp->sb, bwrap, lp->path);
			free(bwrap);
		}
	} else {
		free(path);
	}
	if (lp->in_backoff) {
		evtimer_del(lp->backoff_ev);
		lp->in_backoff = 0;
	}
}

static void pool_local_reload(struct pool *p)
{
	struct local_pool *lp = pool_local_of(p);
	unsigned idle, warming, busy, alive, target;
	struct lworker *lw, *next;

	pool_local_reload_worker(lp);
	p->heartbeat_s = p->cfg->local_heartbeat_s;
	target = (unsigned)(p->cfg->local_pool_size > 0 ? p->cfg->local_pool_size : 0) + lp->demand;
	pool_local_counts(lp, &idle, &warming, &busy, &alive);
	/* A smaller pool: retire the surplus idle workers. */
	for (lw = TAILQ_FIRST(&lp->workers); lw != NULL && idle > target; lw = next) {
		next = TAILQ_NEXT(lw, entry);
		if (lw->state == LW_IDLE && !lw->reaped && !lw->out_eof) {
			pool_local_release_lw(lw);
			idle--;
		}
	}
	pool_local_refill_later(lp);
}

static struct worker *pool_local_take(struct pool *p)
{
	struct local_pool *lp = pool_local_of(p);
	unsigned idle, warming, busy, alive;
	struct lworker *lw;

	if (lp->stopping)
		return NULL;
	TAILQ_FOREACH(lw, &lp->workers, entry)
	{
		if (lw->state == LW_IDLE && !lw->reaped && !lw->out_eof)
			break;
	}
	if (lw == NULL) {
		pool_local_counts(lp, &idle, &warming, &busy, &alive);
		if (warming == 0 && alive < (unsigned)p->cfg->local_max_workers && !lp->in_backoff) {
			(void)pool_local_spawn(lp, 1); /* NULL: backing off */
		}
		return NULL;
	}
	if (lp->bwrap && lw->wpid == 0)
		pool_local_info_read(lw);
	lw->state = LW_BUSY;
	lw->runs++;
	lw->w.warm = !lw->on_demand;
	pool_local_refill_later(lp);
	return &lw->w;
}

/* The session's transport: the worker's stdin, in order (one write now
 * when nothing is queued, so the worker starts on a request without waiting
 * for the next loop iteration; the rest through the bufferevent). */
static ssize_t pool_local_write(void *tctx, const void *buf, size_t len)
{
	struct lworker *lw = tctx;
	const uint8_t *p = buf;
	size_t left = len;
	ssize_t n;

	if (lw->in == NULL || lw->reaped)
		return -1;
	if (evbuffer_get_length(bufferevent_get_output(lw->in)) == 0) {
		do
			n = write(bufferevent_getfd(lw->in), p, left);
		while (n == -1 && errno == EINTR);
		if (n > 0) {
			p += n;
			left -= (size_t)n;
		}
	}
	if (left > 0 && bufferevent_write(lw->in, p, left) == -1)
		return -1;
	return (ssize_t)len;
}

/* Soft: SIGTERM to the worker itself (under bwrap, the pid bwrap
 * reported: SIGTERM to bwrap would kill the sandbox at once). Hard:
 * SIGKILL to the process we started, which takes the sandbox with it. */
static void pool_local_kill(void *tctx, int hard)
{
	struct lworker *lw = tctx;
	pid_t pid;

	if (lw->reaped)
		return;
	if (hard) {
		log_debug("worker=%s SIGKILL", lw->w.id);
		kill(lw->pid, SIGKILL);
		return;
	}
	if (lw->wpid == 0)
		pool_local_info_read(lw);
	/* A zygote's child runs the step (the zygote would pass it on too). */
	pid = lw->cpid != 0 ? lw->cpid : lw->wpid != 0 ? lw->wpid : lw->pid;
	log_debug("worker=%s SIGTERM to pid %ld", lw->w.id, (long)pid);
	kill(pid, SIGTERM);
}

static void pool_local_cancel(struct worker *w, int hard)
{
	struct lworker *lw = pool_local_lw(w);

	/* A zygote's child is killed alone: the sandbox outlives the run. */
	if (hard && lw->cfd >= 0 && !lw->child_dead) {
		log_debug("worker=%s SIGKILL to the run's process", lw->w.id);
		if (syscall(SYS_pidfd_send_signal, lw->cfd, SIGKILL, NULL, 0) == 0)
			return;
	}
	pool_local_kill(lw, hard);
}

/*
 * stage: the run's stored bundle appears in the worker's own directory
 * (bound read-write in its view, at the same path) as LW_STAGED, a hard
 * link when the work dir shares the state dir's filesystem, else an
 * in-kernel copy (fcopy: a tmpfs work dir). The worker maps it for
 * `prepare` and unlinks it at once (a bundle_path inside its --workdir is
 * consumed), so no step ever sees a path to the stored inode. Synchronous:
 * a link is a few µs; the copy is the kernel's, without a pass through
 * this process's memory.
 */
#define LW_STAGED ".osiris-bundle"
static void pool_local_stage(struct worker *w, const char *bundle_file,
                             void (*done)(struct worker *w, const char *path, const char *err, void *arg), void *arg)
{
	struct lworker *lw = pool_local_lw(w);
	char *path, why[PATH_MAX + 64];
	struct stat st;
	int fd, dfd = -1, rc = -1;

	xasprintf(&path, "%s/" LW_STAGED, lw->dir);
	if ((fd = open(bundle_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1 && fstat(fd, &st) == 0 &&
	    (dfd = open(lw->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) != -1 &&
	    (unlinkat(dfd, LW_STAGED, 0) == 0 || errno == ENOENT))
		rc = fcopy_link_or_copy(fd, (size_t)st.st_size, dfd, LW_STAGED);
	snprintf(why, sizeof(why), "cannot stage %s in %s: %s", bundle_file, lw->dir, strerror(errno));
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	log_debug("worker=%s run context %s at %s", w->id,
	          rc == 1   ? "linked"
	          : rc == 0 ? "copied"
	                    : "not staged",
	          path);
	if (rc == -1)
		done(w, NULL, why, arg);
	else
		done(w, path, NULL, arg);
	free(path);
}

/*
 * open_artifact: the worker's workspace is the one osiris-ws-* entry of
 * its directory (none or several: -1, the caller uses `read`); the file is resolved beneath it by openat2 with no
 * symlink, magic link or mount crossing (a worker cannot point the daemon
 * elsewhere). Without openat2 (ENOSYS) the caller reads through the worker.
 */
static int pool_local_open_artifact(struct worker *w, const char *path)
{
	struct lworker *lw = pool_local_lw(w);
	struct open_how how;
	struct dirent *de;
	struct stat st;
	int dfd, ws = -1, fd, saved;
	DIR *d;

	if ((dfd = open(lw->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "osiris-ws-", 10) != 0)
			continue;
		if (ws != -1) { /* more than one: not sure which is the run's */
			close(ws);
			closedir(d);
			return errno = EEXIST, -1;
		}
		ws = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (ws == -1)
			break;
	}
	closedir(d);
	if (ws == -1)
		return errno = ENOENT, -1;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	fd = (int)syscall(SYS_openat2, ws, path, &how, sizeof(how));
	saved = errno;
	close(ws);
	if (fd != -1 && (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))) {
		close(fd);
		return errno = EINVAL, -1;
	}
	errno = saved;
	return fd;
}

static void pool_local_status(struct pool *p, struct pool_info *out)
{
	struct local_pool *lp = pool_local_of(p);
	unsigned idle, warming, busy, alive;

	pool_local_counts(lp, &idle, &warming, &busy, &alive);
	memset(out, 0, sizeof(*out));
	out->backend = xstrdup("local");
	out->target = p->cfg->local_pool_size;
	out->idle = idle;
	out->warming = warming;
	out->busy = busy;
	out->max = p->cfg->local_max_workers;
	out->failing = p->failure != NULL;
	pool_starts_fill(&lp->starts, out);
	pool_latency_fill(&lp->lat, out);
}

static void pool_local_demand(struct pool *p, unsigned n)
{
	struct local_pool *lp = pool_local_of(p);

	if (lp->demand == n)
		return;
	lp->demand = n;
	pool_local_refill(lp);
	pool_local_trim_later(lp);
}

const struct pool_ops pool_local_ops = {
    .name = "local",
    .start = pool_local_start,
    .stop = pool_local_stop,
    .reload = pool_local_reload,
    .take = pool_local_take,
    .stage = pool_local_stage,
    .open_artifact = pool_local_open_artifact,
    .cancel = pool_local_cancel,
    .release = pool_local_release,
    .recycle = pool_local_recycle,
    .status = pool_local_status,
    .demand = pool_local_demand,
};
