/*
 * osirisd.c: the daemon's main. Reads the configuration (file, -o
 * overrides, -S/-D), starts the modules in dependency order on one event
 * base, handles SIGTERM/SIGINT (graceful stop) and SIGHUP (reload), and
 * tells systemd when it is ready.
 */
#include <sys/stat.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define DEFAULT_CONFIG SYSCONFDIR "/osiris/osirisd.conf"
#define MAX_OVERRIDES 256

static struct {
	struct event_base *base;
	struct config cfg;
	const char *file;
	int file_given;
	const char *overrides[MAX_OVERRIDES];
	int noverrides;
	const char *socket, *state_dir;
	int verbose;
	int stopping, activated;
	struct event *sigterm, *sigint, *sighup, *grace_ev, *hard_ev;
} d;

struct osirisd osirisd;

/* -h: the whole text on stdout, exit 0; a usage error: the first line on
 * stderr, exit 2. */
static __dead void usage(FILE *f, int code)
{
	fprintf(f, "usage: osirisd [-f FILE] [-S SOCKET] [-D STATEDIR] [-o section.key=value]... [-v] [-n] | -h\n");
	if (code == 0)
		fprintf(f, "Runs Osiris pipelines submitted with osirisctl over a Unix control socket.\n"
		           "  -f FILE     configuration file (default " DEFAULT_CONFIG " when it exists)\n"
		           "  -S SOCKET   control socket path (overrides daemon.socket)\n"
		           "  -D STATEDIR state directory (overrides daemon.state_dir)\n"
		           "  -o S.K=V    override one configuration key; may be repeated\n"
		           "  -v          log more (repeat for debug)\n"
		           "  -n          check the configuration and exit\n"
		           "  -h, --help  print this help and exit\n"
		           "See osirisd(8) and osirisd.conf(5).\n");
	exit(code);
}

static enum log_level effective_level(const struct config *c)
{
	int lvl = (int)c->log_level + d.verbose;

	return lvl > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : (enum log_level)lvl;
}

/* Defaults, then the file, then -o, then -S/-D: the same order at start
 * and on SIGHUP. */
static int load_config(struct config *c, char *err, size_t errlen)
{
	int i;

	config_defaults(c);
	if (config_load_file(c, d.file, d.file_given, err, errlen) == -1)
		return -1;
	for (i = 0; i < d.noverrides; i++) {
		if (config_set_override(c, d.overrides[i], err, errlen) == -1)
			return -1;
	}
	if (d.socket != NULL) {
		free(c->socket);
		c->socket = xstrdup(d.socket);
	}
	if (d.state_dir != NULL) {
		free(c->state_dir);
		c->state_dir = xstrdup(d.state_dir);
	}
	if (c->socket == NULL || c->state_dir == NULL) {
		snprintf(err, errlen, "no socket path or state directory (set daemon.socket/daemon.state_dir, -S/-D)");
		return -1;
	}
	return 0;
}

/* -- reload ---------------------------------------------------------------- */

static int str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

#define RELOAD_INT(field, name)                                                                                        \
	do {                                                                                                           \
		if (nc.field != d.cfg.field) {                                                                         \
			log_info("reload: %s %lld -> %lld", name, (long long)d.cfg.field, (long long)nc.field);        \
			d.cfg.field = nc.field;                                                                        \
		}                                                                                                      \
	} while (0)

#define RELOAD_FIXED(cond, name)                                                                                       \
	do {                                                                                                           \
		if (cond)                                                                                              \
			log_warnx("reload: %s changed; restart osirisd to apply it", name);                            \
	} while (0)

static void reload(void)
{
	struct config nc;
	char err[512];

	if (load_config(&nc, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the current configuration", err);
		config_free(&nc);
		return;
	}
	if (nc.log_level != d.cfg.log_level) {
		log_info("reload: daemon.log_level %d -> %d", (int)d.cfg.log_level, (int)nc.log_level);
		d.cfg.log_level = nc.log_level;
		log_set_level(effective_level(&d.cfg));
	}
	RELOAD_INT(max_concurrent_runs, "daemon.max_concurrent_runs");
	RELOAD_INT(shutdown_grace_s, "daemon.shutdown_grace_s");
	RELOAD_INT(cancel_grace_ms, "daemon.cancel_grace_ms");
	RELOAD_INT(event_flush_ms, "daemon.event_flush_ms");
	RELOAD_INT(keep_days, "daemon.keep_days");
	RELOAD_INT(keep_runs, "daemon.keep_runs");
	RELOAD_INT(max_state_bytes, "daemon.max_state_bytes");
	RELOAD_INT(min_free_bytes, "daemon.min_free_bytes");
	RELOAD_INT(prune_interval_s, "daemon.prune_interval_s");
	RELOAD_INT(local_pool_size, "local.pool_size");
	RELOAD_INT(local_max_workers, "local.max_workers");
	RELOAD_INT(local_heartbeat_s, "local.heartbeat_s");
	RELOAD_INT(e2b_pool_size, "e2b.pool_size");
	RELOAD_INT(e2b_max_sandboxes, "e2b.max_sandboxes");
	RELOAD_INT(e2b_sandbox_timeout_s, "e2b.sandbox_timeout_s");
	RELOAD_FIXED(str_differs(nc.socket, d.cfg.socket), "daemon.socket");
	RELOAD_FIXED(str_differs(nc.state_dir, d.cfg.state_dir), "daemon.state_dir");
	RELOAD_FIXED(nc.max_context_bytes != d.cfg.max_context_bytes, "daemon.max_context_bytes");
	RELOAD_FIXED(nc.follow_buffer_bytes != d.cfg.follow_buffer_bytes, "daemon.follow_buffer_bytes");
	RELOAD_INT(local_start_fail_limit, "local.start_fail_limit");
	if (str_differs(nc.local_worker, d.cfg.local_worker)) {
		log_info("reload: local.worker %s -> %s", d.cfg.local_worker != NULL ? d.cfg.local_worker : "(default)",
		         nc.local_worker != NULL ? nc.local_worker : "(default)");
		free(d.cfg.local_worker);
		d.cfg.local_worker = nc.local_worker;
		nc.local_worker = NULL;
	}
	RELOAD_FIXED(str_differs(nc.local_isolation, d.cfg.local_isolation), "local.isolation");
	RELOAD_FIXED(str_differs(nc.local_work_dir, d.cfg.local_work_dir), "local.work_dir");
	RELOAD_FIXED(nc.local_worker_max_runs != d.cfg.local_worker_max_runs, "local.worker_max_runs");
	RELOAD_FIXED(str_differs(nc.e2b_template, d.cfg.e2b_template), "e2b.template");
	RELOAD_FIXED(str_differs(nc.e2b_api_key_file, d.cfg.e2b_api_key_file), "e2b.api_key_file");
	config_free(&nc);
	pool_reload_all();
	sched_kick();
	log_info("configuration reloaded");
}

/* -- stop ------------------------------------------------------------------ */

/* Let the last answers (final follow responses) reach their clients. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {0, 20000};
	int *tries = arg;

	(void)fd;
	(void)what;
	if (control_out_pending() == 0 || ++*tries > 50) {
		event_base_loopexit(d.base, NULL);
		return;
	}
	event_base_once(d.base, -1, EV_TIMEOUT, flush_cb, tries, &tv);
}

static void stop_done(void)
{
	static int tries;

	log_info("no run left, exiting");
	flush_cb(-1, 0, &tries);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_info("shutdown grace of %d s is over: cancelling %u running runs", d.cfg.shutdown_grace_s, sched_active());
	run_cancel_all();
}

static void hard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_warnx("runs did not end after cancel; exiting anyway");
	event_base_loopexit(d.base, NULL);
}

static void stop(const char *why)
{
	struct timeval grace = {d.cfg.shutdown_grace_s, 0};
	struct timeval hard = {d.cfg.shutdown_grace_s + d.cfg.cancel_grace_ms / 1000 + 10, 0};

	if (d.stopping) {
		/* A second signal: do not wait for the grace period. */
		log_info("%s again: cancelling %u running runs now", why, sched_active());
		run_cancel_all();
		return;
	}
	d.stopping = 1;
	log_info("%s: stopping; %u runs running get up to %d s", why, sched_active(), d.cfg.shutdown_grace_s);
	sd_notify_send("STOPPING=1");
	/* The socket stays open until the loop ends: a client connecting
	 * during the grace gets an answer (busy for run.submit), not a backlog
	 * slot reset at exit. */
	method_stopping();
	d.grace_ev = evtimer_new(d.base, grace_cb, NULL);
	d.hard_ev = evtimer_new(d.base, hard_cb, NULL);
	evtimer_add(d.grace_ev, &grace);
	evtimer_add(d.hard_ev, &hard);
	sched_stop(stop_done);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sig == SIGHUP)
		reload();
	else
		stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* -- main -------------------------------------------------------------- */

static void open_std_fds(void)
{
	int fd;

	/* A child's pipes must never land on 0-2. */
	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

static void parse_args(int argc, char **argv, int *check_only)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	d.file = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "f:S:D:o:vnh", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			d.file = optarg;
			d.file_given = 1;
			break;
		case 'S':
			d.socket = optarg;
			break;
		case 'D':
			d.state_dir = optarg;
			break;
		case 'o':
			if (d.noverrides == MAX_OVERRIDES)
				fatalx("too many -o options");
			d.overrides[d.noverrides++] = optarg;
			break;
		case 'v':
			d.verbose++;
			break;
		case 'n':
			*check_only = 1;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
}

static void start(void)
{
	char err[512];
	int lfd;

	lfd = sd_notify_listen_fd();
	d.activated = lfd != -1;
	if (lfd == -1 && control_bind_socket(&d.cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* store_open creates the state dir 0700; runs/ goes inside it. */
	if ((osirisd.store = store_open(d.cfg.state_dir, err, sizeof(err))) == NULL)
		fatalx("store: %s", err);
	if (rundir_init(d.cfg.state_dir, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (connfile_init(d.cfg.connections_file, err, sizeof(err)) == -1)
		fatalx("%s", err);
	space_init(&d.cfg);
	if (prune_init(d.base, &d.cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (child_init(d.base) == -1)
		fatalx("cannot watch child processes (SIGCHLD)");
	if (pool_init(d.base, &d.cfg, sched_pool_ready_cb, NULL, err, sizeof(err)) == -1)
		fatalx("%s", err);
	sched_init(d.base, &d.cfg);
	if (run_init(d.base, &d.cfg) == -1)
		fatalx("run_init failed");
	method_init(d.base, &d.cfg);
	if (run_recover() == -1)
		fatalx("crash recovery failed (store)");
	if (control_init(d.base, &d.cfg, lfd, err, sizeof(err)) == -1)
		fatalx("%s", err);
}

static void finish(void)
{
	control_shutdown();
	prune_shutdown();
	run_shutdown(); /* releases what runs hold, before the pools go */
	sched_shutdown();
	pool_shutdown();
	child_shutdown();
	rundir_shutdown();
	connfile_shutdown();
	if (store_pending(osirisd.store) > 0)
		store_flush(osirisd.store);
	store_close(osirisd.store);
	osirisd.store = NULL;
	sd_notify_shutdown();
}

int main(int argc, char **argv)
{
	char err[512];
	int check_only = 0;

	open_std_fds();
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv, &check_only);
	log_init("osirisd", LOG_LVL_INFO);
	if (load_config(&d.cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (check_only) {
		printf("osirisd: configuration OK\n");
		config_free(&d.cfg);
		return 0;
	}
	log_set_level(effective_level(&d.cfg));
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	sd_notify_watchdog_init(d.base);
	start();
	d.sigterm = evsignal_new(d.base, SIGTERM, signal_cb, NULL);
	d.sigint = evsignal_new(d.base, SIGINT, signal_cb, NULL);
	d.sighup = evsignal_new(d.base, SIGHUP, signal_cb, NULL);
	if (evsignal_add(d.sigterm, NULL) == -1 || evsignal_add(d.sigint, NULL) == -1 ||
	    evsignal_add(d.sighup, NULL) == -1)
		fatalx("cannot install signal handlers");
	sd_notify_send("READY=1\nSTATUS=accepting runs");
	log_info("osirisd %s ready: socket %s, state %s, max_concurrent_runs %d", OSIRIS_VERSION,
	         d.activated ? "(socket-activated)" : d.cfg.socket, d.cfg.state_dir, d.cfg.max_concurrent_runs);
	event_base_dispatch(d.base);
	finish();
	event_free(d.sigterm);
	event_free(d.sigint);
	event_free(d.sighup);
	/* Stopped: a late SIGTERM (a second one from a script, systemd's after
	 * ours) must not turn the clean exit into "killed by signal 15". */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (d.grace_ev != NULL)
		event_free(d.grace_ev);
	if (d.hard_ev != NULL)
		event_free(d.hard_ev);
	event_base_free(d.base);
	config_free(&d.cfg);
	log_info("stopped");
	return 0;
}
