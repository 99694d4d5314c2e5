/*
 * rundir.c: the per-run directories, STATE/runs/<xx>/<id> with xx the id's
 * last two characters (1024 shards: a year of runs never makes one huge
 * directory; the last characters are random in a run id, the first ones
 * are its time and would put every run of a year in one shard). Run dirs
 * of older daemons, STATE/runs/<id>, are still found (rundir_path) and
 * age out with retention. Creating inodes can
 * cost far more than the rest of a submit (on ext4 without a journal, ~0.5
 * ms each), so a helper thread keeps a few empty run directories (with their
 * `bundle` file and `artifacts/`) ready in STATE/.spare; a submit renames one
 * into place, which allocates nothing. Without a spare it creates one inline.
 * This file alone knows the layout: everyone else asks for a path here.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define RUNDIR_SPARES 16
#define RUNDIR_BUNDLE "bundle"       /* the packed context (bundle_load's format) */
#define RUNDIR_MANIFEST "manifest"   /* a non-default manifest path, when given */
#define RUNDIR_ARTIFACTS "artifacts" /* collected artifacts kept as files */

static struct {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, stop;
	char *spare_dir, *runs_dir;
	uint64_t next;                 /* name of the next spare */
	uint64_t ready[RUNDIR_SPARES]; /* ring of spares ready to take */
	size_t head, n;
} rd = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The layout of a fresh run directory: dir, dir/bundle, dir/artifacts. */
static int rundir_make(const char *dir)
{
	char path[4096];
	int fd;

	if (mkdir(dir, 0755) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/" RUNDIR_BUNDLE, dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		return -1;
	close(fd);
	snprintf(path, sizeof(path), "%s/" RUNDIR_ARTIFACTS, dir);
	return mkdir(path, 0755);
}

static void *rundir_thread(void *arg)
{
	char dir[4096];
	uint64_t name;
	int failures = 0;

	(void)arg;
	pthread_mutex_lock(&rd.mu);
	while (!rd.stop) {
		if (rd.n == RUNDIR_SPARES || failures > 3) {
			pthread_cond_wait(&rd.cv, &rd.mu);
			if (failures > 3)
				failures = 3; /* a spare was taken: one more try (space may be back) */
			continue;
		}
		name = rd.next++;
		pthread_mutex_unlock(&rd.mu);
		snprintf(dir, sizeof(dir), "%s/%llu", rd.spare_dir, (unsigned long long)name);
		if (rundir_make(dir) == -1) {
			rmtree(dir);
			failures++; /* a full disk: stop trying, submits create inline */
			pthread_mutex_lock(&rd.mu);
			continue;
		}
		failures = 0;
		pthread_mutex_lock(&rd.mu);
		rd.ready[(rd.head + rd.n) % RUNDIR_SPARES] = name;
		rd.n++;
	}
	pthread_mutex_unlock(&rd.mu);
	return NULL;
}

int rundir_init(const char *state_dir, char *err, size_t errlen)
{
	char *runs;

	xasprintf(&rd.spare_dir, "%s/.spare", state_dir);
	xasprintf(&rd.runs_dir, "%s/runs", state_dir);
	xasprintf(&runs, "%s/.", rd.runs_dir);
	if (mkdir_parents(runs) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", rd.runs_dir, strerror(errno));
		free(runs);
		return -1;
	}
	free(runs);
	/* Spares of a previous life are just empty directories: start over. */
	rmtree(rd.spare_dir);
	if (mkdir(rd.spare_dir, 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", rd.spare_dir, strerror(errno));
		return -1;
	}
	if (pthread_create(&rd.th, NULL, rundir_thread, NULL) != 0) {
		snprintf(err, errlen, "cannot start the run directory thread");
		return -1;
	}
	rd.started = 1;
	return 0;
}

void rundir_shutdown(void)
{
	if (rd.started) {
		pthread_mutex_lock(&rd.mu);
		rd.stop = 1;
		pthread_cond_signal(&rd.cv);
		pthread_mutex_unlock(&rd.mu);
		pthread_join(rd.th, NULL);
		rd.started = 0;
	}
	if (rd.spare_dir != NULL)
		rmtree(rd.spare_dir);
	free(rd.spare_dir);
	free(rd.runs_dir);
	rd.spare_dir = rd.runs_dir = NULL;
}

static char *rundir_sharded(const char *runs_dir, const char *id)
{
	size_t n = strlen(id);
	char *p;

	xasprintf(&p, "%s/%s/%s", runs_dir, n >= 2 ? id + n - 2 : "__", id);
	return p;
}

char *rundir_path(const char *id)
{
	char *sharded = rundir_sharded(rd.runs_dir, id), *legacy;

	xasprintf(&legacy, "%s/%s", rd.runs_dir, id);
	if (access(sharded, F_OK) != 0 && access(legacy, F_OK) == 0) {
		free(sharded);
		return legacy;
	}
	free(legacy);
	return sharded;
}

/* name inside the run's directory. */
static char *rundir_file(const char *id, const char *name)
{
	char *dir = rundir_path(id), *path;

	xasprintf(&path, "%s/%s", dir, name);
	free(dir);
	return path;
}

char *rundir_bundle(const char *id)
{
	return rundir_file(id, RUNDIR_BUNDLE);
}

char *rundir_manifest(const char *id)
{
	return rundir_file(id, RUNDIR_MANIFEST);
}

char *rundir_artifacts(const char *id)
{
	return rundir_file(id, RUNDIR_ARTIFACTS);
}

char *rundir_artifact(const char *id, const char *path)
{
	char *dir = rundir_path(id), *file;

	xasprintf(&file, "%s/" RUNDIR_ARTIFACTS "/%s", dir, path);
	free(dir);
	return file;
}

int64_t rundir_bytes(int64_t file_size)
{
	return file_size <= 0 ? 0 : (file_size + 4095) / 4096 * 4096;
}

/* The shard holding dir, made on first use. */
static int rundir_shard_make(const char *dir)
{
	char *shard = xstrdup(dir);
	int rc;

	*strrchr(shard, '/') = '\0';
	rc = mkdir(shard, 0755) == -1 && errno != EEXIST ? -1 : 0;
	free(shard);
	return rc;
}

static int rundir_rename(const char *from, const char *to)
{
	if (rename(from, to) == 0)
		return 0;
	if (errno != ENOENT || rundir_shard_make(to) == -1)
		return -1;
	return rename(from, to);
}

/* STATE/runs/<xx>/<id> with an empty `bundle` and `artifacts/`. */
int rundir_create(const char *id)
{
	char spare[4096], *dir = rundir_sharded(rd.runs_dir, id);
	uint64_t name = 0;
	int have = 0, rc = 0, saved;

	pthread_mutex_lock(&rd.mu);
	if (rd.n > 0) {
		name = rd.ready[rd.head];
		rd.head = (rd.head + 1) % RUNDIR_SPARES;
		rd.n--;
		have = 1;
		pthread_cond_signal(&rd.cv);
	}
	pthread_mutex_unlock(&rd.mu);
	if (have) {
		snprintf(spare, sizeof(spare), "%s/%llu", rd.spare_dir, (unsigned long long)name);
		if (rundir_rename(spare, dir) == 0)
			goto out;
		log_warn("rename %s", spare);
		rmtree(spare);
	}
	if (rundir_shard_make(dir) == -1 || rundir_make(dir) == -1) {
		saved = errno;
		rmtree(dir);
		errno = saved;
		rc = -1;
	}
out:
	free(dir);
	return rc;
}
