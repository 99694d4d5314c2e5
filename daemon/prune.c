/*
 * prune.c: retention. A job removes final runs, oldest first, in batches:
 * one short transaction deletes a batch's rows (steps, events, metrics and
 * artifacts go with the run by cascade), then a helper thread removes the
 * batch's run directories and the loop takes the next batch once that is
 * done, so neither SQLite nor unlink(2) holds the loop for long. Jobs come
 * from the retention timer (daemon.keep_days, keep_runs, max_state_bytes)
 * and from run.prune; one runs at a time, in order.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define PRUNE_BATCH_RUNS 256
#define PRUNE_BATCH_RECORDS 20000 /* records one transaction deletes, about: a few ms of the loop */
#define PRUNE_RECORD_BYTES 150    /* a record's share of osiris.db, to size a batch against the byte cap */
#define PRUNE_RM_DEPTH 64         /* deeper artifact trees are left (and logged) */

struct prune_job {
	struct prune_policy pol;
	int dry_run;
	struct conn *conn; /* NULL: the retention timer, or the client left */
	uint32_t msgid;
	int begun;
	int64_t excess; /* final runs beyond pol.keep still to remove */
	int64_t over;   /* bytes over pol.max_bytes still to free */
	int64_t saved_excess, saved_over;
	int64_t cur_ts; /* cursor: the last run looked at */
	char *cur_id;
	int stop;        /* the last batch met a run to keep */
	int files_first; /* rows could not be deleted (disk full): files went first */
	int64_t db_before;
	int64_t runs, bytes, t0_us;
	TAILQ_ENTRY(prune_job) entry;
};

static struct {
	struct event_base *base;
	const struct config *cfg;
	TAILQ_HEAD(, prune_job) jobs;
	struct event *step_ev, *timer_ev, *done_ev;
	/* the remover thread */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, stop;
	int pipe[2];
	char **dirs; /* handed to the thread; NULL when it has nothing */
	size_t ndirs;
	int64_t freed;  /* bytes the last hand-over freed */
	int finished;   /* the thread is done with dirs */
	unsigned ended; /* runs ended since the last timer pass */
} pr = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .pipe = {-1, -1}};

static void prune_next_job(void);

/* -- the remover thread ----------------------------------------------------- */

/* Remove path (never following a symlink) and what is under it; the bytes
 * its blocks held. */
static int64_t prune_rm_at(int dfd, const char *name, int depth)
{
	struct stat st;
	struct dirent *de;
	int64_t n = 0;
	DIR *d;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) == 0 && st.st_nlink <= 1)
			n = (int64_t)st.st_blocks * 512;
		return n;
	}
	if (depth < PRUNE_RM_DEPTH && (fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
		} else {
			while ((de = readdir(d)) != NULL) {
				if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
					n += prune_rm_at(dirfd(d), de->d_name, depth + 1);
			}
			closedir(d);
		}
	}
	if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
		n += (int64_t)st.st_blocks * 512;
	return n;
}

static void *prune_thread(void *arg)
{
	int64_t freed;
	size_t i;

	(void)arg;
	pthread_mutex_lock(&pr.mu);
	for (;;) {
		while (!pr.stop && (pr.dirs == NULL || pr.finished))
			pthread_cond_wait(&pr.cv, &pr.mu);
		if (pr.stop)
			break;
		pthread_mutex_unlock(&pr.mu);
		for (freed = 0, i = 0; i < pr.ndirs; i++)
			freed += prune_rm_at(AT_FDCWD, pr.dirs[i], 0);
		pthread_mutex_lock(&pr.mu);
		pr.freed = freed;
		pr.finished = 1;
		/* one byte per hand-over: the pipe cannot be full */
		(void)!write(pr.pipe[1], "x", 1);
	}
	pthread_mutex_unlock(&pr.mu);
	return NULL;
}

/* Give the thread the directories of the runs (taken: all, else only the
 * deleted ones); prune_files_done_cb continues the job. */
static void prune_handover(struct prune_cand *c, size_t n, int all)
{
	char **dirs = xcalloc(n + 1, sizeof(*dirs));
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (all || c[i].deleted)
			dirs[k++] = rundir_path(c[i].id);
	}
	pthread_mutex_lock(&pr.mu);
	pr.dirs = dirs;
	pr.ndirs = k;
	pr.finished = 0;
	pthread_cond_signal(&pr.cv);
	pthread_mutex_unlock(&pr.mu);
}

/* -- selection (pure) ------------------------------------------------------ */

size_t prune_pick(const struct prune_policy *pol, int64_t *excess, int64_t *over, const struct prune_cand *c, size_t n,
                  int *stop)
{
	int64_t records = 0;
	size_t i;

	*stop = 0;
	for (i = 0; i < n; i++) {
		int aged = pol->before_ms > 0 && c[i].finished_at > 0 && c[i].finished_at < pol->before_ms;

		if (!aged && *excess <= 0 && *over <= 0) {
			*stop = 1; /* oldest first: what follows is newer */
			break;
		}
		if (i > 0 && records + c[i].records > PRUNE_BATCH_RECORDS)
			break;
		records += c[i].records;
		(*excess)--;
		*over -= c[i].disk_bytes + c[i].records * PRUNE_RECORD_BYTES;
	}
	return i;
}

/* -- jobs ---------------------------------------------------------------- */

static void prune_job_free(struct prune_job *j)
{
	free(j->cur_id);
	free(j);
}

static void prune_reply(struct prune_job *j, const char *error, const struct store_usage *u)
{
	msgpack_packer pk;

	if (j->conn == NULL)
		return;
	if (error != NULL) {
		conn_error(j->conn, j->msgid, ERR_INTERNAL, "prune: %s", error);
		return;
	}
	conn_packer(j->conn, &pk);
	rpc_pack_result_head(&pk, j->msgid);
	msgpack_pack_map(&pk, 4);
	mp_pack_kint(&pk, "runs", j->runs);
	mp_pack_kint(&pk, "bytes", j->bytes);
	mp_pack_key(&pk, "dry_run");
	if (j->dry_run)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	mp_pack_kint(&pk, "state_bytes", u->db_bytes + u->wal_bytes + u->files_bytes);
}

static void prune_finish(struct prune_job *j, const char *error)
{
	struct store_usage u;
	char bytes_s[32];
	int64_t ms = (time_mono_us() - j->t0_us) / 1000;

	if (!j->dry_run && j->runs > 0)
		store_checkpoint(osirisd.store);
	if (store_usage(osirisd.store, &u) == -1)
		memset(&u, 0, sizeof(u));
	space_fmt(j->bytes, bytes_s, sizeof(bytes_s));
	if (error != NULL)
		log_warnx("prune: stopped after %lld runs: %s", (long long)j->runs, error);
	else if (j->runs > 0 || j->conn != NULL)
		log_info("prune: %s %lld runs, %s, in %lld ms%s", j->dry_run ? "would remove" : "removed",
		         (long long)j->runs, bytes_s, (long long)ms, j->conn != NULL ? " (run.prune)" : "");
	prune_reply(j, error, &u);
	TAILQ_REMOVE(&pr.jobs, j, entry);
	prune_job_free(j);
	prune_next_job();
}

static int prune_begin(struct prune_job *j)
{
	struct store_usage u;
	int64_t nfinal;

	j->begun = 1;
	j->t0_us = time_mono_us();
	j->excess = j->over = 0;
	if (j->pol.keep >= 0) {
		if (store_final_count(osirisd.store, &nfinal) == -1)
			return -1;
		j->excess = nfinal > j->pol.keep ? nfinal - j->pol.keep : 0;
	}
	if (j->pol.max_bytes > 0) {
		if (store_usage(osirisd.store, &u) == -1)
			return -1;
		/* the WAL is left out: bounded (journal_size_limit), truncated
		 * after each prune, and its size says nothing about the runs */
		j->over = u.db_bytes + u.files_bytes - j->pol.max_bytes;
	}
	return 0;
}

static void prune_cursor(struct prune_job *j, const struct prune_cand *c)
{
	j->cur_ts = c->submitted_at;
	free(j->cur_id);
	j->cur_id = xstrdup(c->id);
}

/* Delete the batch's rows, then its files (thread). On a full disk the
 * rows cannot go (deleting needs WAL space): the files go first and the
 * rows are retried once they are gone. */
static int prune_delete(struct prune_job *j, struct prune_cand *c, size_t take)
{
	size_t deleted;

	int64_t t0 = time_mono_us();

	if (store_db_live_bytes(osirisd.store, &j->db_before) == -1)
		j->db_before = 0;
	if (store_prune_delete(osirisd.store, c, take, &deleted) == -1) {
		if (!store_full(osirisd.store) || j->files_first)
			return -1;
		log_warnx("prune: the state dir is full: removing the files of %zu runs before their rows", take);
		j->files_first = 1;
		j->excess = j->saved_excess; /* the same runs again, next step */
		j->over = j->saved_over;
		j->stop = 0;
		prune_handover(c, take, 1);
		return 0;
	}
	log_debug("prune: %zu runs deleted from the store in %lld us", deleted, (long long)(time_mono_us() - t0));
	j->files_first = 0;
	j->runs += (int64_t)deleted;
	prune_cursor(j, &c[take - 1]);
	prune_handover(c, take, 0);
	return 0;
}

static void prune_dry(struct prune_job *j, const struct prune_cand *c, size_t take)
{
	size_t i;

	for (i = 0; i < take; i++)
		j->bytes += c[i].disk_bytes;
	j->runs += (int64_t)take;
	prune_cursor(j, &c[take - 1]);
	event_active(pr.step_ev, EV_TIMEOUT, 0);
}

static void prune_step(struct prune_job *j)
{
	struct prune_cand *c;
	size_t n, take;

	if (!j->begun && prune_begin(j) == -1) {
		prune_finish(j, "cannot read the store");
		return;
	}
	if (j->stop || store_prune_next(osirisd.store, j->cur_ts, j->cur_id, PRUNE_BATCH_RUNS, &c, &n) == -1) {
		prune_finish(j, j->stop ? NULL : "cannot read the store");
		return;
	}
	j->saved_excess = j->excess;
	j->saved_over = j->over;
	take = prune_pick(&j->pol, &j->excess, &j->over, c, n, &j->stop);
	if (take == 0) {
		store_prune_free(c, n);
		prune_finish(j, NULL);
		return;
	}
	if (take == n && n < PRUNE_BATCH_RUNS)
		j->stop = 1; /* nothing older is left */
	if (j->dry_run)
		prune_dry(j, c, take);
	else if (prune_delete(j, c, take) == -1)
		prune_finish(j, store_full(osirisd.store) ? "the state dir is full and the rows cannot be deleted"
		                                          : "cannot delete runs from the store");
	store_prune_free(c, n);
}

/* The thread removed a batch's directories. */
static void prune_files_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prune_job *j = TAILQ_FIRST(&pr.jobs);
	int64_t db_after = 0, db_freed = 0, freed;
	char byte;
	size_t i;

	(void)what;
	(void)arg;
	if (read(fd, &byte, 1) != 1)
		return;
	pthread_mutex_lock(&pr.mu);
	freed = pr.freed;
	for (i = 0; i < pr.ndirs; i++)
		free(pr.dirs[i]);
	free(pr.dirs);
	pr.dirs = NULL;
	pr.ndirs = 0;
	pthread_mutex_unlock(&pr.mu);
	if (j == NULL)
		return;
	j->bytes += freed;
	if (j->files_first) {
		prune_step(j); /* the rows, now that there is room */
		return;
	}
	if (store_db_live_bytes(osirisd.store, &db_after) == 0 && j->db_before > db_after)
		db_freed = j->db_before - db_after;
	j->bytes += db_freed;
	if (j->pol.max_bytes > 0)
		j->over = j->saved_over - freed - db_freed; /* measured, not estimated */
	prune_step(j);
}

static void prune_step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prune_job *j = TAILQ_FIRST(&pr.jobs);

	(void)fd;
	(void)what;
	(void)arg;
	if (j != NULL)
		prune_step(j);
}

static void prune_next_job(void)
{
	if (!TAILQ_EMPTY(&pr.jobs))
		event_active(pr.step_ev, EV_TIMEOUT, 0);
}

void prune_request(struct conn *c, uint32_t msgid, const struct prune_policy *pol, int dry_run)
{
	struct prune_job *j = xcalloc(1, sizeof(*j));
	int idle = TAILQ_EMPTY(&pr.jobs);

	j->pol = *pol;
	j->dry_run = dry_run;
	j->conn = c;
	j->msgid = msgid;
	TAILQ_INSERT_TAIL(&pr.jobs, j, entry);
	if (idle)
		prune_next_job();
}

void prune_policy_config(const struct config *cfg, struct prune_policy *pol)
{
	pol->before_ms = cfg->keep_days > 0 ? time_now_ms() - (int64_t)cfg->keep_days * 86400000 : 0;
	pol->keep = cfg->keep_runs > 0 ? cfg->keep_runs : -1;
	pol->max_bytes = cfg->max_state_bytes;
}

void prune_conn_gone(struct conn *c)
{
	struct prune_job *j;

	TAILQ_FOREACH(j, &pr.jobs, entry)
	{
		if (j->conn == c)
			j->conn = NULL; /* the job goes on; its result is only logged */
	}
}

/* -- retention timer -------------------------------------------------------- */

static void prune_timer_arm(void)
{
	struct timeval tv = {pr.cfg->prune_interval_s, 0};

	evtimer_add(pr.timer_ev, &tv);
}

static void prune_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prune_policy pol;

	(void)fd;
	(void)what;
	(void)arg;
	pr.ended = 0;
	prune_timer_arm();
	prune_policy_config(pr.cfg, &pol);
	if (!TAILQ_EMPTY(&pr.jobs) || (pol.before_ms == 0 && pol.keep < 0 && pol.max_bytes == 0))
		return;
	prune_request(NULL, 0, &pol, 0);
}

/* A run ended. With daemon.keep_runs set, a pass starts as soon as a tenth
 * of it (at least 64 runs) ended since the last one: a busy host does not
 * pile up a whole prune_interval_s of runs beside the kept ones. */
void prune_run_ended(void)
{
	struct timeval now = {0, 0};
	unsigned every;

	if (pr.cfg == NULL || pr.timer_ev == NULL || pr.cfg->keep_runs <= 0)
		return;
	every = (unsigned)pr.cfg->keep_runs / 10 > 64 ? (unsigned)pr.cfg->keep_runs / 10 : 64;
	if (++pr.ended < every)
		return;
	pr.ended = 0;
	evtimer_add(pr.timer_ev, &now); /* the timer's pass, now; it re-arms itself */
}

/* -- start and stop -------------------------------------------------------- */

int prune_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	struct timeval first = {1, 0}; /* soon after start: a daemon down for a while catches up */

	pr.base = base;
	pr.cfg = cfg;
	TAILQ_INIT(&pr.jobs);
	if (pipe2(pr.pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "prune: pipe: %s", strerror(errno));
		return -1;
	}
	pr.step_ev = event_new(base, -1, 0, prune_step_cb, NULL);
	pr.timer_ev = evtimer_new(base, prune_timer_cb, NULL);
	pr.done_ev = event_new(base, pr.pipe[0], EV_READ | EV_PERSIST, prune_files_done_cb, NULL);
	if (pr.step_ev == NULL || pr.timer_ev == NULL || pr.done_ev == NULL || event_add(pr.done_ev, NULL) == -1)
		fatalx("prune_init: event_new");
	if (pthread_create(&pr.th, NULL, prune_thread, NULL) != 0) {
		snprintf(err, errlen, "cannot start the prune thread");
		return -1;
	}
	pr.started = 1;
	evtimer_add(pr.timer_ev, &first);
	return 0;
}

void prune_shutdown(void)
{
	struct prune_job *j;
	size_t i;

	if (pr.started) {
		pthread_mutex_lock(&pr.mu);
		pr.stop = 1;
		pthread_cond_signal(&pr.cv);
		pthread_mutex_unlock(&pr.mu);
		pthread_join(pr.th, NULL);
		pr.started = 0;
	}
	for (i = 0; i < pr.ndirs; i++)
		free(pr.dirs[i]);
	free(pr.dirs);
	pr.dirs = NULL;
	while ((j = TAILQ_FIRST(&pr.jobs)) != NULL) {
		TAILQ_REMOVE(&pr.jobs, j, entry);
		prune_job_free(j);
	}
	if (pr.step_ev != NULL)
		event_free(pr.step_ev);
	if (pr.timer_ev != NULL)
		event_free(pr.timer_ev);
	if (pr.done_ev != NULL)
		event_free(pr.done_ev);
	pr.step_ev = pr.timer_ev = pr.done_ev = NULL;
	for (i = 0; i < 2; i++) {
		if (pr.pipe[i] != -1)
			close(pr.pipe[i]);
		pr.pipe[i] = -1;
	}
}
