/*
 * driverctx.c: the worker's side of struct driver_ctx: driver log lines and
 * metrics become masked notifications tagged with the step, and
 * cancellation is SIGTERM or a `cancel` request read between rows.
 */
#include "worker.h"

static void driverctx_log_cb(struct driver_ctx *ctx, enum log_level level, const char *msg)
{
	emit_log(ctx->arg, level, ctx->step_id, msg);
}

static void driverctx_metric_cb(struct driver_ctx *ctx, const char *name, double value)
{
	emit_metric(ctx->arg, name, ctx->step_id, value);
}

static int driverctx_cancelled_cb(struct driver_ctx *ctx)
{
	return rpc_poll_control(ctx->arg);
}

void driverctx_init(struct worker *w, struct driver_ctx *ctx, const char *step_id)
{
	ctx_init(ctx, w->ws, step_id);
	ctx->log_fn = driverctx_log_cb;
	ctx->metric_fn = driverctx_metric_cb;
	ctx->cancelled_fn = driverctx_cancelled_cb;
	ctx->arg = w;
}
