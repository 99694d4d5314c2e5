/*
 * zygote.c: osiris-worker --zygote. Started once per sandbox, it loads
 * nothing run-specific and forks one child per run on `fork`; the child
 * answers and serves that one run over the same stdin/stdout, then exits
 * on `reset` (or stdin EOF). The zygote reaps it, empties the workspace
 * directories and announces `ready` again. A child that dies otherwise
 * (killed, crashed, ended by the daemon after a failed or cancelled run)
 * is reaped the same way; the zygote then waits for the daemon's sync
 * marker before its `ready`, so the bytes the dead child left half-read or
 * half-written never shift the stream. See PROTOCOL.md §5.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

/* The run's process while one lives: SIGTERM/SIGINT are passed on to it
 * (the daemon may only know the zygote's pid). Cleared before the reap, so
 * a signal never reaches a recycled pid. */
static volatile pid_t zygote_child;

/* Set by the child once it answered `fork` (a page shared with it): a child
 * that dies before has written nothing, and the zygote answers the `fork`
 * itself with an error instead of waiting for a resync nobody will ask. */
static volatile int *zygote_answered;

static void zygote_signal_forward_cb(int sig)
{
	pid_t pid = zygote_child;

	if (pid > 0)
		kill(pid, sig);
}

static void zygote_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = zygote_signal_forward_cb;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* a daemon gone while we announce `ready`: EPIPE, and a clean exit */
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);
}

static void zygote_reply_pid(struct worker *w, uint32_t msgid)
{
	msgpack_packer pk;
	struct buf b;

	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 1);
	mp_pack_kint(&pk, "pid", (int64_t)getpid());
	rpc_reply_end(w, &b);
}

/* Everything under dir, not dir itself (the sandbox binds it). */
static void zygote_empty_dir(const char *dir)
{
	struct dirent *de;
	char *path;
	DIR *d;

	if (dir == NULL || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		xasprintf(&path, "%s/%s", dir, de->d_name);
		if (rmtree(path) == -1)
			log_warn("cannot remove %s", path);
		free(path);
	}
	closedir(d);
}

static int zygote_tmp_entry_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0)
		return 0;
	/* A directory holding a mount point (the workspace's bind under a
	 * /tmp work dir) stays: rmdir says EBUSY or ENOTEMPTY, and that is
	 * fine. */
	if (type == FTW_DP)
		(void)rmdir(path);
	else if (unlink(path) == -1 && errno != ENOENT)
		log_warn("cannot remove %s", path);
	return 0;
}

/* The sandbox's private /tmp (bwrap's tmpfs, --private-tmp): whatever a run
 * left there goes before the next one. FTW_MOUNT: the host directories
 * bound into it (work dirs, the worker binary) are other filesystems and
 * are neither entered nor removed; FTW_PHYS: no symlink is followed. */
static void zygote_empty_tmp(const struct worker *w)
{
	if (w->private_tmp)
		(void)nftw("/tmp", zygote_tmp_entry_cb, 16, FTW_DEPTH | FTW_MOUNT | FTW_PHYS);
}

/* Wait for the daemon's marker (PROTO_SYNC_MAGIC and its nonce) and write
 * it back: 1, or 0 at EOF, -1 on a read error. Whatever came before it was
 * meant for a run's process (perhaps half a `prepare` with its secrets):
 * skipped and wiped. */
static int zygote_sync(struct worker *w)
{
	uint8_t chunk[4096];
	const uint8_t *m;
	size_t off, drop;
	ssize_t n;

	for (;;) {
		m = memmem(w->in.data, w->in.len, PROTO_SYNC_MAGIC, PROTO_SYNC_MAGIC_LEN);
		off = m != NULL ? (size_t)(m - w->in.data) : 0;
		if (m != NULL && w->in.len - off >= PROTO_SYNC_LEN) {
			rpc_write(w, m, PROTO_SYNC_LEN);
			explicit_bzero(w->in.data, off + PROTO_SYNC_LEN);
			buf_consume(&w->in, off + PROTO_SYNC_LEN);
			return 1;
		}
		/* Keep what may be the start of the marker. */
		drop = m != NULL ? off : w->in.len > PROTO_SYNC_MAGIC_LEN ? w->in.len - PROTO_SYNC_MAGIC_LEN : 0;
		if (drop > 0) {
			explicit_bzero(w->in.data, drop);
			buf_consume(&w->in, drop);
		}
		do
			n = read(w->in_fd, chunk, sizeof(chunk));
		while (n == -1 && errno == EINTR);
		if (n <= 0) {
			if (n == -1)
				log_warn("stdin");
			explicit_bzero(chunk, sizeof(chunk));
			return n == 0 ? 0 : -1;
		}
		buf_add(&w->in, chunk, (size_t)n);
		explicit_bzero(chunk, (size_t)n);
	}
}

/* Read requests until `fork` (1, its msgid), EOF (0) or a bad message
 * (-1). Only `ping` is served here: the zygote never reads a `prepare`,
 * so no run's bundle or secrets ever enter its memory. */
static int zygote_next_fork(struct worker *w, uint32_t *msgid)
{
	uint8_t chunk[4096];
	struct rpc_msg msg;
	size_t len, need;
	const char *serr = NULL;
	char err[256];
	enum rpc_scan sc;
	ssize_t n;
	int is_fork, rc;

	for (;;) {
		/* A marker where a request would start: the daemon resyncs
		 * (it saw a child end that exited 0 without `reset`). */
		if (w->in.len > 0 && w->in.data[0] == (uint8_t)PROTO_SYNC_MAGIC[0]) {
			if ((rc = zygote_sync(w)) <= 0)
				return rc;
			worker_ready(w, 1);
			continue;
		}
		while ((sc = rpc_scan(w->in.data, w->in.len, &w->limits, &len, &need, &serr)) == RPC_SCAN_OK) {
			if (rpc_decode(w->in.data, len, &msg, err, sizeof(err)) < 0) {
				log_warnx("protocol violation on stdin: %s", err);
				return -1;
			}
			buf_consume(&w->in, len);
			is_fork = msg.type == RPC_REQUEST && strcmp(msg.method, "fork") == 0;
			if (is_fork)
				*msgid = msg.msgid;
			else if (msg.type == RPC_REQUEST && strcmp(msg.method, "ping") == 0)
				rpc_reply_empty(w, msg.msgid);
			else if (msg.type == RPC_REQUEST)
				rpc_reply_error(w, msg.msgid, ERR_INVALID_REQUEST,
				                "this is a zygote: send `fork` and talk to the child");
			rpc_msg_free(&msg);
			if (is_fork)
				return 1;
		}
		if (sc == RPC_SCAN_ERROR) {
			log_warnx("protocol violation on stdin: %s", serr != NULL ? serr : "bad message");
			return -1;
		}
		do
			n = read(w->in_fd, chunk, sizeof(chunk));
		while (n == -1 && errno == EINTR);
		if (n == -1) {
			log_warn("stdin");
			return -1;
		}
		if (n == 0)
			return 0;
		buf_add(&w->in, chunk, (size_t)n);
	}
}

/* Wait for the child to end without reaping it first (WNOWAIT): until
 * zygote_child is cleared its pid cannot be reused. */
static int zygote_wait(pid_t pid)
{
	siginfo_t si;
	int status = 0;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0)
			break;
		if (errno != EINTR)
			fatal("waitid");
	}
	zygote_child = 0;
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			fatal("waitpid");
	}
	return status;
}

/* The run's process ended without `reset`: killed (by the daemon after a
 * failed or cancelled run, or by anyone), crashed, or exited non-zero. */
static void zygote_log_end(int status)
{
	int sig;

	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		log_warnx("the run's process was killed by signal %d (%s)", sig, strsignal(sig));
	} else {
		log_warnx("the run's process exited %d", WEXITSTATUS(status));
	}
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* The child's malloc would take one copy-on-write fault per heap page it
 * touches first; the heap (a few hundred KiB) is copied in one call while
 * the child waits for its `prepare`. (Code pages fault in as the run needs
 * them: mapping all of it ahead made each idle child's RSS 14 MB for no
 * gain that stood out from the noise.) */
static void zygote_child_populate(void)
{
	char line[512], perms[8];
	unsigned long lo, hi;
	FILE *f;

	if ((f = fopen("/proc/self/maps", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && perms[1] == 'w' &&
		    strstr(line, "[heap]") != NULL) {
			(void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
			break;
		}
	}
	fclose(f);
}

/* In the child: a process of its own for one run, killed with the zygote. */
static void zygote_child_init(struct worker *w, pid_t parent, uint32_t msgid, void (*child_signals)(void))
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(1);
	/* Only the zygote hides from same-uid tracers, not the run's process. */
	(void)prctl(PR_SET_DUMPABLE, 1);
	child_signals();
	w->forked = 1;
	zygote_reply_pid(w, msgid);
	*zygote_answered = 1;
	zygote_child_populate();
}

/* What every run would otherwise set up in its own process, each time:
 * OpenSSL's digest and configuration (sha256 of the artifacts, some
 * milliseconds), the time zone, the JSON hash seed. Nothing run-specific. */
static void zygote_preload(void)
{
	char hex[65];

	sha256_hex("", 0, hex);
	tzset();
	json_object_seed(0);
}

int zygote_serve(struct worker *w, void (*child_signals)(void))
{
	pid_t pid, self = getpid();
	uint32_t msgid = 0;
	int rc, status;

	/* A run's process must not read or write the zygote's memory through
	 * /proc or ptrace: not dumpable, same uid or not. */
	(void)prctl(PR_SET_DUMPABLE, 0);
	zygote_answered =
	    mmap(NULL, sizeof(*zygote_answered), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (zygote_answered == MAP_FAILED)
		fatal("mmap");
	zygote_signals();
	zygote_preload();
	for (;;) {
		zygote_empty_dir(w->workdir);
		zygote_empty_dir(w->spill_dir);
		zygote_empty_tmp(w);
		worker_ready(w, 1);
		if ((rc = zygote_next_fork(w, &msgid)) <= 0)
			return rc;
		*zygote_answered = 0;
		if ((pid = fork()) == -1) {
			rpc_reply_error(w, msgid, ERR_INTERNAL, "fork failed");
			continue;
		}
		if (pid == 0) {
			zygote_child_init(w, self, msgid, child_signals);
			return 1;
		}
		zygote_child = pid;
		/* Whatever came after `fork` is the child's to read. */
		if (w->in.len > 0)
			explicit_bzero(w->in.data, w->in.len);
		buf_reset(&w->in);
		status = zygote_wait(pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			continue;
		zygote_log_end(status);
		zygote_empty_dir(w->workdir);
		zygote_empty_dir(w->spill_dir);
		if (!*zygote_answered) {
			rpc_reply_error(w, msgid, ERR_INTERNAL, "the run's process ended before it answered fork");
			continue;
		}
		if ((rc = zygote_sync(w)) <= 0)
			return rc;
	}
}
