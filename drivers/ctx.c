/*
 * ctx.c: the driver side of the driver context. Drivers log, report
 * metrics, poll for cancellation and resolve workspace paths through these;
 * the worker installs the hooks (tests may leave them NULL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers.h"

void ctx_init(struct driver_ctx *ctx, const char *workspace, const char *step_id)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->workspace = workspace;
	ctx->step_id = step_id;
	ctx->rows_read = -1;
	ctx->rows_written = -1;
}

void ctx_log(struct driver_ctx *ctx, enum log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (ctx->log_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctx->log_fn(ctx, level, line);
}

void ctx_metric(struct driver_ctx *ctx, const char *name, double value)
{
	if (ctx->metric_fn != NULL)
		ctx->metric_fn(ctx, name, value);
}

int ctx_cancelled(struct driver_ctx *ctx)
{
	return ctx->cancelled_fn != NULL && ctx->cancelled_fn(ctx);
}

int ctx_fail(struct driver_ctx *ctx, const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
	va_end(ap);
	snprintf(ctx->error_type, sizeof(ctx->error_type), "%s", type);
	return -1;
}

char *ctx_path(struct driver_ctx *ctx, const char *rel)
{
	char *out;

	if (!path_is_safe(rel)) {
		ctx_fail(ctx, "ConfigError", "path \"%s\" is absolute or escapes the run context", log_esc(rel, 256));
		return NULL;
	}
	xasprintf(&out, "%s/%s", ctx->workspace, rel);
	return out;
}

int ctx_retry(struct driver_ctx *ctx, int64_t retries, int (*attempt)(void *), void (*end)(void *), void *arg)
{
	int64_t n;
	int rc, lost;

	for (n = 0;; n++) {
		rc = attempt(arg);
		/* only a lost connection is retried: an SQL error would fail again */
		lost = rc < 0 && strcmp(ctx->error_type, "ConnectionError") == 0;
		end(arg);
		if (rc == 0 || !lost || n >= retries || ctx_cancelled(ctx))
			return rc;
		ctx_log(ctx, LOG_LVL_WARN, "attempt %lld failed (%s); retrying", (long long)n + 1, ctx->error);
		sleep((unsigned)(1u << (n < 4 ? n : 4)));
	}
}
