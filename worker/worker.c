/*
 * worker.c: osiris-worker's main. Parses the few flags, installs the signal
 * handlers (SIGTERM cancels the step in progress), announces `ready` and
 * serves msgpack-rpc on stdin/stdout until EOF, then removes its workspace.
 * With --zygote it forks one child per run instead (zygote.c).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"

static void worker_signal_cancel_cb(int sig)
{
	(void)sig;
	worker_cancel = 1;
}

static __dead void worker_usage(FILE *f, int code)
{
	fprintf(
	    f,
	    "usage: osiris-worker [--workdir DIR] [--spill-dir DIR --mem-max BYTES] [--zygote [--private-tmp]] [-v]\n"
	    "       osiris-worker --version | --help\n"
	    "Executes Osiris runs for osirisd: msgpack-rpc on stdin/stdout (see PROTOCOL.md).\n"
	    "  --workdir DIR    create the private workspace under DIR (default $TMPDIR or /tmp)\n"
	    "  --spill-dir DIR  workspaces of contexts larger than --mem-max go under DIR instead\n"
	    "  --mem-max BYTES  the largest context whose workspace is created under --workdir\n"
	    "  --zygote         fork a fresh process per run (`fork`), never serve one itself\n"
	    "  --private-tmp    /tmp is this sandbox's own: the zygote empties it between runs\n"
	    "  -v               debug diagnostics on stderr\n"
	    "Environment: OSIRIS_MAX_CONTEXT (bytes, default 67108864) caps a message/bundle.\n");
	exit(code);
}

/* Also the handlers of a zygote's child (zygote.c). */
static void worker_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_signal_cancel_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static size_t worker_max_context(void)
{
	const char *s = getenv("OSIRIS_MAX_CONTEXT");
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0')
		return 64u * 1024 * 1024;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > (1ULL << 40))
		fatalx("OSIRIS_MAX_CONTEXT: bad value '%s'", log_esc(s, 32));
	return (size_t)v;
}

void worker_ready(struct worker *w, int zygote)
{
	struct msg_ready m = {.pid = (int64_t)getpid(), .protocol = PROTO_VERSION, .zygote = zygote, .has_drivers = 1};
	msgpack_packer pk;
	struct buf b;

	m.version = xstrdup(OSIRIS_VERSION);
	while (driver_at(m.ndrivers) != NULL)
		m.ndrivers++;
	m.drivers = xcalloc(m.ndrivers, sizeof(*m.drivers));
	for (size_t i = 0; i < m.ndrivers; i++)
		m.drivers[i] = xstrdup(driver_at(i)->name);
	buf_init(&b);
	rpc_packer_init(&pk, &b);
	rpc_pack_notify_head(&pk, "ready");
	msg_ready_pack(&pk, &m);
	rpc_write(w, b.data, b.len);
	buf_free(&b);
	msg_ready_free(&m);
}

static int64_t worker_bytes_arg(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		fatalx("--mem-max: bad value '%s'", log_esc(s, 32));
	return (int64_t)v;
}

static void worker_dir_check(const char *what, const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		fatalx("%s %s: not a directory", what, dir);
}

static void worker_init(struct worker *w, const char *workdir, const char *spill_dir, int64_t mem_max)
{
	const char *tmp = getenv("TMPDIR");

	memset(w, 0, sizeof(*w));
	w->in_fd = STDIN_FILENO;
	w->out_fd = STDOUT_FILENO;
	buf_init(&w->in);
	buf_init(&w->out);
	w->max_context = worker_max_context();
	rpc_limits_default(&w->limits, w->max_context);
	if (workdir == NULL)
		workdir = (tmp != NULL && *tmp != '\0') ? tmp : "/tmp";
	worker_dir_check("workdir", workdir);
	w->workdir = xstrdup(workdir);
	if (spill_dir != NULL) {
		worker_dir_check("spill-dir", spill_dir);
		w->spill_dir = xstrdup(spill_dir);
		w->mem_max = mem_max;
	}
	w->mask = mask_new();
	w->ws_fd = -1;
	w->watch.fd = -1;
	journal_init(&w->journal);
}

static void worker_shutdown(struct worker *w)
{
	prepare_cleanup(w);
	watch_close(&w->watch);
	journal_free(&w->journal);
	mask_free(w->mask);
	buf_free(&w->in);
	buf_free(&w->out);
	free(w->workdir);
	free(w->spill_dir);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"workdir", required_argument, NULL, 'w'}, {"spill-dir", required_argument, NULL, 'S'},
	    {"mem-max", required_argument, NULL, 'M'}, {"zygote", no_argument, NULL, 'Z'},
	    {"private-tmp", no_argument, NULL, 'T'},   {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *workdir = NULL, *spill_dir = NULL;
	enum log_level level = LOG_LVL_INFO;
	int64_t mem_max = INT64_MAX;
	struct worker w;
	int c, rc, zygote = 0, private_tmp = 0;

	while ((c = getopt_long(argc, argv, "w:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			workdir = optarg;
			break;
		case 'S':
			spill_dir = optarg;
			break;
		case 'M':
			mem_max = worker_bytes_arg(optarg);
			break;
		case 'Z':
			zygote = 1;
			break;
		case 'T':
			private_tmp = 1;
			break;
		case 'v':
			level = LOG_LVL_DEBUG;
			break;
		case 'V':
			printf("osiris-worker %s (protocol %d)\n", OSIRIS_VERSION, PROTO_VERSION);
			return 0;
		case 'h':
			worker_usage(stdout, 0);
		default:
			worker_usage(stderr, 2);
		}
	}
	if (optind != argc)
		worker_usage(stderr, 2);
	log_init("osiris-worker", level);
	worker_signals();
	worker_init(&w, workdir, spill_dir, mem_max);
	w.private_tmp = private_tmp;
	if (zygote) {
		/* The zygote returns here in each run's child (1), else at EOF. */
		if ((rc = zygote_serve(&w, worker_signals)) == 1) {
			/* the run's process, idle until its `prepare` */
			rpc_timer_prestart();
			rc = rpc_serve(&w);
		}
	} else {
		rpc_timer_prestart();
		worker_ready(&w, 0);
		rc = rpc_serve(&w);
	}
	worker_shutdown(&w);
	return rc < 0 ? 1 : 0;
}
