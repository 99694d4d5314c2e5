/*
 * csv_writer.c: filesystem.csv_writer. Writes its first input as CSV inside
 * the workspace (parents created). Columns keep the table's order: the
 * Python driver sorts them lexicographically, which breaks round trips and
 * surprises users, so we deliberately do NOT sort.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers.h"

static const char *const csv_writer_keys[] = {"path",        "delimiter", "header",     "newline", "encoding",
                                              "create_dirs", "quoting",   "chunk_size", NULL};

static int csv_writer_opts(struct driver_ctx *ctx, const json_t *cfg, struct csv_wopts *o)
{
	const char *s;
	int rc;

	o->delim = ',';
	o->header = 1;
	o->newline = "\n";
	if (cfg_delim(ctx, cfg, &o->delim) < 0 || cfg_bool(ctx, cfg, "header", &o->header) < 0 ||
	    cfg_encoding(ctx, cfg) < 0)
		return -1;
	if ((rc = cfg_str(ctx, cfg, "newline", &s)) < 0)
		return -1;
	if (rc == 0) {
		if (strcmp(s, "lf") == 0)
			o->newline = "\n";
		else if (strcmp(s, "crlf") == 0)
			o->newline = "\r\n";
		else if (strcmp(s, "cr") == 0)
			o->newline = "\r";
		else
			return ctx_fail(ctx, "ConfigError", "'newline' must be lf, crlf or cr, not '%s'", s);
	}
	if ((rc = cfg_str(ctx, cfg, "quoting", &s)) < 0)
		return -1;
	if (rc == 0 && strcmp(s, "minimal") != 0)
		return ctx_fail(ctx, "ConfigError", "quoting '%s' is not supported (only minimal)", s);
	return 0;
}

/* Write to a temporary file beside the target and rename it into place:
 * readers never see half a file, and a table still mapping the old file
 * (csv_extractor) keeps its bytes. */
static int csv_writer_write(struct driver_ctx *ctx, const char *rel, const char *full, const struct table *t,
                            const struct csv_wopts *o)
{
	char *tmp;
	int fd, e;

	if (mkdir_parents(full) < 0)
		return ctx_fail(ctx, "IOError", "%s: cannot create parent directories: %s", rel, strerror(errno));
	xasprintf(&tmp, "%s.tmp-XXXXXX", full);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		e = errno;
		free(tmp);
		return ctx_fail(ctx, "IOError", "%s: %s", rel, strerror(e));
	}
	fchmod(fd, 0644);
	if (csv_format_fd(fd, t, o) < 0 || close(fd) < 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		return ctx_fail(ctx, "IOError", "%s: write: %s", rel, strerror(e));
	}
	if (rename(tmp, full) < 0) {
		e = errno;
		unlink(tmp);
		free(tmp);
		return ctx_fail(ctx, "IOError", "%s: %s", rel, strerror(e));
	}
	free(tmp);
	return 0;
}

static int csv_writer_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                          size_t ninputs, struct table **output)
{
	struct csv_wopts o;
	const char *rel;
	char *full;
	int rc;

	(void)input_names;
	(void)output;
	if (ninputs == 0 || inputs[0] == NULL)
		return ctx_fail(ctx, "ValueError",
		                "csv_writer needs an input table (add the producing step to 'needs')");
	if ((rc = cfg_str(ctx, cfg, "path", &rel)) != 0)
		return rc < 0 ? -1 : ctx_fail(ctx, "ConfigError", "'path' is required");
	if (csv_writer_opts(ctx, cfg, &o) < 0)
		return -1;
	if ((full = ctx_path(ctx, rel)) == NULL)
		return -1;
	rc = csv_writer_write(ctx, rel, full, inputs[0], &o);
	free(full);
	if (rc < 0)
		return -1;
	ctx->rows_written = (int64_t)inputs[0]->nrows;
	ctx_log(ctx, LOG_LVL_INFO, "wrote %zu rows, %zu columns to %s", inputs[0]->nrows, inputs[0]->ncols, rel);
	return 0;
}

const struct driver_ops driver_csv_writer = {
    .name = "filesystem.csv_writer",
    .run = csv_writer_run,
    .keys = csv_writer_keys,
};
