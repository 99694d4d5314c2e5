/*
 * export.c: `osirisctl artifacts RUN --export DIR`: a finished run as the
 * directory Osiris's own tools read (events.jsonl, metrics.jsonl,
 * osiris.log, status.json, artifacts/). It is built in a temporary
 * directory and moved into place at the end, so DIR never holds half an
 * export; osirisfmt.c makes the lines.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/osirisctl.h"

enum { EXPORT_EVENTS, EXPORT_METRICS, EXPORT_LOG, EXPORT_NFILES };

static const char *const export_names[EXPORT_NFILES] = {"events.jsonl", "metrics.jsonl", "osiris.log"};

struct export
{
	struct ctl *ctl;
	struct session *c;
	struct osirisfmt_run fr;
	char *dir; /* DIR without trailing slashes */
	char *tmp; /* the directory being filled */
	FILE *f[EXPORT_NFILES];
	int64_t n[EXPORT_NFILES];
	int64_t nartifacts, bytes;
	int artifacts_rc; /* an artifact that was skipped: the export still lands */
	struct buf line;
};

int export_dir_check(const char *dir, int *exists)
{
	struct dirent *e;
	struct stat st;
	int empty = 1;
	DIR *d;

	*exists = 0;
	if (*dir == '\0') {
		out_error("export", "the directory name is empty");
		return EXIT_USAGE;
	}
	if (stat(dir, &st) == -1) {
		if (errno == ENOENT)
			return 0; /* created at the end, with its parents */
		out_error("export", "%s: %s", dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		out_error("export", "%s: exists and is not a directory", dir);
		return EXIT_USAGE;
	}
	if ((d = opendir(dir)) == NULL) {
		out_error("export", "%s: %s", dir, strerror(errno));
		return EXIT_USAGE;
	}
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	if (!empty) {
		out_error("export", "%s: directory not empty (export needs a new or empty directory)", dir);
		return EXIT_USAGE;
	}
	*exists = 1;
	return 0;
}

/* DIR's temporary twin: a sibling that is renamed to DIR, or, when DIR
 * exists (empty), a hidden directory inside it whose entries move up. */
static int export_tmp_make(struct export *x, int exists)
{
	mode_t mask = umask(0);
	char *artifacts;
	int rc = 0;

	umask(mask);
	if (!exists && mkdir_parents(x->dir) == -1) {
		out_error("export", "%s: %s", x->dir, strerror(errno));
		return EXIT_RUN_FAILED;
	}
	if (exists)
		xasprintf(&x->tmp, "%s/.osirisctl-export.XXXXXX", x->dir);
	else
		xasprintf(&x->tmp, "%s.partXXXXXX", x->dir);
	if (mkdtemp(x->tmp) == NULL) {
		out_error("export", "%s: %s", x->tmp, strerror(errno));
		free(x->tmp);
		x->tmp = NULL;
		return EXIT_RUN_FAILED;
	}
	/* Osiris's run directory always has artifacts/, even when empty */
	xasprintf(&artifacts, "%s/artifacts", x->tmp);
	if (chmod(x->tmp, 0777 & ~mask) == -1 || mkdir(artifacts, 0777) == -1) {
		out_error("export", "%s: %s", x->tmp, strerror(errno));
		rc = EXIT_RUN_FAILED;
	}
	free(artifacts);
	return rc;
}

/* The last step: DIR appears complete, or not at all. status.json moves
 * last, so that a reader who sees it sees the rest. */
static int export_tmp_place(struct export *x, int exists)
{
	static const char *const order[] = {"artifacts", "events.jsonl", "metrics.jsonl", "osiris.log", "status.json"};
	int from = -1, to = -1, rc = 0;

	if (!exists) {
		if (rename(x->tmp, x->dir) == 0)
			return 0;
		out_error("export", "%s: %s", x->dir,
		          errno == EEXIST || errno == ENOTEMPTY ? "appeared while exporting, left alone"
		                                                : strerror(errno));
		return EXIT_RUN_FAILED;
	}
	if ((from = open(x->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (to = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		out_error("export", "%s: %s", x->dir, strerror(errno));
		if (from != -1)
			close(from);
		return EXIT_RUN_FAILED;
	}
	for (size_t i = 0; i < sizeof order / sizeof order[0] && rc == 0; i++) {
		if (renameat2(from, order[i], to, order[i], RENAME_NOREPLACE) == -1) {
			out_error("export", "%s/%s: %s", x->dir, order[i], strerror(errno));
			rc = EXIT_RUN_FAILED;
		}
	}
	close(from);
	close(to);
	if (rc == 0 && rmdir(x->tmp) == -1) {
		out_error("export", "%s: %s", x->tmp, strerror(errno));
		rc = EXIT_RUN_FAILED;
	}
	return rc;
}

static int export_files_open(struct export *x)
{
	for (int i = 0; i < EXPORT_NFILES; i++) {
		char *path;

		xasprintf(&path, "%s/%s", x->tmp, export_names[i]);
		x->f[i] = fopen(path, "we");
		free(path);
		if (x->f[i] == NULL) {
			out_error("export", "%s/%s: %s", x->dir, export_names[i], strerror(errno));
			return EXIT_RUN_FAILED;
		}
	}
	return 0;
}

/* Closes every file; the first error wins. */
static int export_files_close(struct export *x)
{
	int rc = 0;

	for (int i = 0; i < EXPORT_NFILES; i++) {
		if (x->f[i] == NULL)
			continue;
		if ((fflush(x->f[i]) == EOF || ferror(x->f[i]) || fsync(fileno(x->f[i])) == -1) && rc == 0) {
			out_error("export", "%s/%s: %s", x->dir, export_names[i], strerror(errno));
			rc = EXIT_RUN_FAILED;
		}
		fclose(x->f[i]);
		x->f[i] = NULL;
	}
	return rc;
}

static int export_put(struct export *x, int which)
{
	if (x->line.len == 0) {
		out_error("export", "%s: cannot encode a record", export_names[which]);
		return EXIT_RUN_FAILED;
	}
	if (fwrite(x->line.data, 1, x->line.len, x->f[which]) != x->line.len) {
		out_error("export", "%s/%s: %s", x->dir, export_names[which], strerror(errno));
		return EXIT_RUN_FAILED;
	}
	x->n[which]++;
	return 0;
}

static int export_record_cb(const struct rpc_msg *m, void *arg)
{
	struct export *x = arg;
	json_t *j;

	if (strcmp(m->method, "run.event") != 0 || m->params == NULL)
		return 0; /* versioning is additive: unknown notifications are ignored */
	buf_reset(&x->line);
	if ((j = osirisfmt_event(&x->fr, m->params)) != NULL) {
		(void)osirisfmt_line(j, &x->line); /* nothing appended: export_put says so */
		return export_put(x, EXPORT_EVENTS);
	}
	if ((j = osirisfmt_metric(&x->fr, m->params)) != NULL) {
		(void)osirisfmt_line(j, &x->line);
		return export_put(x, EXPORT_METRICS);
	}
	if (osirisfmt_log(&x->fr, m->params, &x->line) == 0)
		return export_put(x, EXPORT_LOG);
	return 0;
}

/* Every stored record of the (finished) run, as it was stored: the worker
 * and the daemon masked secrets before anything was stored. */
static int export_records(struct export *x)
{
	struct rpc_msg resp;
	int rc;

	if ((rc = export_files_open(x)) == 0 &&
	    (rc = logs_call(x->c, "artifacts", x->fr.id, 0, 0, export_record_cb, x, &resp)) == 0)
		rpc_msg_free(&resp);
	if (export_files_close(x) != 0 && rc == 0)
		rc = EXIT_RUN_FAILED;
	return rc;
}

/* One artifact under artifacts/; a problem with it skips it (reported,
 * exit status 1) without stopping the export. */
static int export_artifact(struct export *x, const struct artifact_info *a)
{
	char *rel = osirisfmt_artifact_path(a->path), *dest;
	struct stat st;
	int rc;

	if (rel == NULL) {
		out_error("artifacts", "%s: unsafe artifact path, skipped", log_esc(a->path, 200));
		return EXIT_RUN_FAILED;
	}
	xasprintf(&dest, "%s/%s", x->tmp, rel);
	if (lstat(dest, &st) == 0) {
		out_error("artifacts", "%s: %s is another artifact's place, skipped", log_esc(a->path, 200), rel);
		rc = EXIT_RUN_FAILED;
	} else if (mkdir_parents(dest) == -1) {
		out_error("export", "%s/%s: %s", x->dir, rel, strerror(errno));
		rc = EXIT_RUN_FAILED;
	} else if ((rc = artifacts_fetch_file(x->c, x->fr.id, a, dest)) == 0) {
		x->nartifacts++;
		x->bytes += a->size;
	}
	free(rel);
	free(dest);
	return rc;
}

static int export_artifacts(struct export *x)
{
	struct artifact_list l = {0};
	int rc;

	if ((rc = artifacts_list(x->c, x->fr.id, &l)) != 0)
		return rc;
	for (size_t i = 0; i < l.n; i++) {
		rc = export_artifact(x, &l.v[i]);
		if (rc == EXIT_UNREACHABLE || rc == EXIT_PROTOCOL)
			break;
		if (rc != 0)
			x->artifacts_rc = rc;
		rc = 0;
	}
	artifacts_list_free(&l);
	return rc;
}

/* Indented like Osiris's json.dump(status, f, indent=2), no final newline. */
static int export_status(struct export *x, const struct run_info *ri)
{
	json_t *st = osirisfmt_status(ri, 1);
	char *path;
	int rc = 0;

	xasprintf(&path, "%s/status.json", x->tmp);
	if (json_dump_file(st, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == -1) {
		out_error("export", "%s/status.json: %s", x->dir, strerror(errno));
		rc = EXIT_RUN_FAILED;
	}
	json_decref(st);
	free(path);
	return rc;
}

static int export_run_get(struct session *c, const char *run, struct run_info *ri)
{
	struct rpc_msg resp;
	msgpack_packer *pk;
	char err[256];
	int rc;

	pk = session_request(c, "run.get");
	msgpack_pack_map(pk, 1);
	mp_pack_kstr(pk, "run", run);
	if ((rc = session_call(c, "artifacts", NULL, NULL, &resp)) != 0)
		return rc;
	if (run_info_decode(resp.result, ri, err, sizeof err) == -1) {
		out_error("artifacts", "bad answer from the daemon: %s", err);
		rc = EXIT_PROTOCOL;
	}
	rpc_msg_free(&resp);
	return rc;
}

static void export_print(const struct export *x)
{
	struct buf b;

	if (x->ctl->json) {
		json_out_doc(json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "dir", x->dir, "run", x->fr.id, "events",
		                       (json_int_t)x->n[EXPORT_EVENTS], "metrics", (json_int_t)x->n[EXPORT_METRICS],
		                       "logs", (json_int_t)x->n[EXPORT_LOG], "artifacts", (json_int_t)x->nartifacts,
		                       "bytes", (json_int_t)x->bytes));
		return;
	}
	buf_init(&b);
	buf_printf(&b,
	           "exported run %s to %s: %" PRId64 " events, %" PRId64 " metrics, %" PRId64 " log lines, %" PRId64
	           " artifacts (%" PRId64 " bytes)\n",
	           x->fr.id, x->dir, x->n[EXPORT_EVENTS], x->n[EXPORT_METRICS], x->n[EXPORT_LOG], x->nartifacts,
	           x->bytes);
	out_write(b.data, b.len);
	buf_free(&b);
}

/* Everything into the temporary directory, then into place. */
static int export_fill(struct export *x, const struct run_info *ri, int exists)
{
	int rc;

	if ((rc = export_tmp_make(x, exists)) == 0 && (rc = export_records(x)) == 0 &&
	    (rc = export_artifacts(x)) == 0 && (rc = export_status(x, ri)) == 0)
		rc = export_tmp_place(x, exists);
	return rc;
}

int export_run(struct ctl *ctl, struct session *c, const char *run, const char *dir, int exists)
{
	struct export x = {.ctl = ctl, .c = c};
	struct run_info ri;
	size_t len = strlen(dir);
	int rc;

	if ((rc = export_run_get(c, run, &ri)) != 0)
		return rc;
	if (!run_state_final(ri.state)) {
		out_error("artifacts", "run %s is %s: only a finished run can be exported", ri.id,
		          run_state_name(ri.state));
		run_info_free(&ri);
		return EXIT_USAGE;
	}
	while (len > 1 && dir[len - 1] == '/')
		len--;
	x.dir = xstrndup(dir, len);
	x.fr.id = ri.id;
	x.fr.started_ms = ri.started_at > 0 ? ri.started_at : ri.submitted_at > 0 ? ri.submitted_at : -1;
	buf_init(&x.line);
	if ((rc = export_fill(&x, &ri, exists)) != 0) {
		if (x.tmp != NULL)
			rmtree(x.tmp);
	} else {
		export_print(&x);
		rc = x.artifacts_rc;
	}
	buf_free(&x.line);
	free(x.tmp);
	free(x.dir);
	run_info_free(&ri);
	return rc;
}
