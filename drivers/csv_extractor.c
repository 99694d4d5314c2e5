/*
 * csv_extractor.c: filesystem.csv_extractor. Reads a workspace CSV file in
 * one go (mapped) and parses it with csv.c (RFC 4180, lossless typing). Keys as in
 * Osiris: path, delimiter, header, encoding (utf-8 only), skip_rows, limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers.h"

static const char *const csv_extractor_keys[] = {"path", "delimiter", "header", "encoding", "skip_rows", "limit", NULL};

/*
 * Map the whole file privately: page-cache pages are used as they are and
 * only pages with "" escapes get copied when unescaped in place. Safe
 * against our own writers, which replace files by rename() and so never
 * truncate a mapped inode.
 */
static int csv_extractor_map(struct driver_ctx *ctx, const char *rel, const char *full, char **data, size_t *len)
{
	struct stat sb;
	void *p;
	int fd;

	if ((fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return ctx_fail(ctx, "FileNotFoundError", "%s: %s", rel, strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return ctx_fail(ctx, "IOError", "%s: not a regular file", rel);
	}
	*len = (size_t)sb.st_size;
	if (*len == 0) {
		close(fd);
		*data = NULL;
		return 0;
	}
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return ctx_fail(ctx, "IOError", "%s: mmap: %s", rel, strerror(errno));
	madvise(p, *len, MADV_SEQUENTIAL);
	*data = p;
	return 0;
}

static int csv_extractor_cancel_cb(void *arg)
{
	return ctx_cancelled(arg);
}

static int csv_extractor_opts(struct driver_ctx *ctx, const json_t *cfg, struct csv_opts *o)
{
	json_t *h = json_object_get(cfg, "header");
	int64_t n;
	int rc;

	csv_opts_default(o);
	if (cfg_delim(ctx, cfg, &o->delim) < 0 || cfg_encoding(ctx, cfg) < 0)
		return -1;
	if (h != NULL && json_is_integer(h)) {
		/* pandas' header=0 means "the first row" */
		if (json_integer_value(h) != 0)
			return ctx_fail(ctx, "ConfigError", "'header' must be true, false or 0");
	} else if (cfg_bool(ctx, cfg, "header", &o->header) < 0) {
		return -1;
	}
	if ((rc = cfg_int(ctx, cfg, "skip_rows", &n)) < 0)
		return -1;
	if (rc == 0) {
		if (n < 0)
			return ctx_fail(ctx, "ConfigError", "'skip_rows' must not be negative");
		o->skip_rows = (size_t)n;
	}
	if ((rc = cfg_int(ctx, cfg, "limit", &n)) < 0)
		return -1;
	if (rc == 0) {
		if (n < 0)
			return ctx_fail(ctx, "ConfigError", "'limit' must not be negative");
		o->limit = n;
	}
	o->cancelled = csv_extractor_cancel_cb;
	o->arg = ctx;
	return 0;
}

static int csv_extractor_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                             size_t ninputs, struct table **output)
{
	struct csv_opts o;
	const char *rel;
	char *full, *data = NULL;
	size_t len = 0;
	int rc;

	(void)inputs;
	(void)input_names;
	(void)ninputs;
	if ((rc = cfg_str(ctx, cfg, "path", &rel)) != 0)
		return rc < 0 ? -1 : ctx_fail(ctx, "ConfigError", "'path' is required");
	if (csv_extractor_opts(ctx, cfg, &o) < 0)
		return -1;
	if ((full = ctx_path(ctx, rel)) == NULL)
		return -1;
	rc = csv_extractor_map(ctx, rel, full, &data, &len);
	free(full);
	if (rc < 0)
		return -1;
	rc = csv_parse(rel, data ? data : "", len, &o, output, ctx->error, sizeof(ctx->error));
	if (rc != 0) {
		if (data != NULL)
			munmap(data, len);
		snprintf(ctx->error_type, sizeof(ctx->error_type), "%s", rc > 0 ? "Cancelled" : "CSVParseError");
		return -1;
	}
	table_adopt_map(*output, data, len);
	ctx->rows_read = (int64_t)(*output)->nrows;
	ctx_log(ctx, LOG_LVL_INFO, "read %zu rows, %zu columns from %s", (*output)->nrows, (*output)->ncols, rel);
	return 0;
}

const struct driver_ops driver_csv_extractor = {
    .name = "filesystem.csv_extractor",
    .run = csv_extractor_run,
    .keys = csv_extractor_keys,
};
