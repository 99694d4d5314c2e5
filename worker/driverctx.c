/*
 * wctx.c: the worker's side of struct driver_ctx: driver log lines and
 * metrics become masked notifications tagged with the step, and
 * cancellation is SIGTERM or a `cancel` request read between rows.
 */
#include "worker.h"

static void
wctx_log_cb(struct driver_ctx *ctx, enum log_level level, const char *msg)
{
	emit_log(ctx->arg, level, ctx->step_id, msg);
}

static void
wctx_metric_cb(struct driver_ctx *ctx, const char *name, double value)
{
	emit_metric(ctx->arg, name, ctx->step_id, value);
}

static int
wctx_cancelled_cb(struct driver_ctx *ctx)
{
	return rpc_poll_control(ctx->arg);
}

void
wctx_init(struct worker *w, struct driver_ctx *ctx, const char *step_id)
{
	ctx_init(ctx, w->ws, step_id);
	ctx->log_fn = wctx_log_cb;
	ctx->metric_fn = wctx_metric_cb;
	ctx->cancelled_fn = wctx_cancelled_cb;
	ctx->arg = w;
}
