/*
 * e2b_call.c: one logical E2B call over e2b_http: its attempts, the retry
 * policy (who may be retried, backoff, Retry-After) and cancellation. The
 * op (e2b_api.c, e2b_envd.c) builds each attempt's request and reads the
 * final answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "osirisd.h"

#define E2B_CALL_BACKOFF_MAX_MS 10000
#define E2B_CALL_RETRY_AFTER_MAX_S 60

struct e2b_call {
	struct e2b_client *c;
	const struct e2b_call_ops *ops;
	void *op;
	struct e2b_http_req *req;
	struct event *retry_ev;
	int attempt;
	int in_finish;
	struct e2b_error *local; /* failed before any request: reported from the loop */
	TAILQ_ENTRY(e2b_call) entry;
};

/* Every live call, so that a client going away cancels its own. */
static TAILQ_HEAD(, e2b_call) e2b_calls = TAILQ_HEAD_INITIALIZER(e2b_calls);

static void e2b_call_attempt(struct e2b_call *call);

static void e2b_call_free(struct e2b_call *call)
{
	TAILQ_REMOVE(&e2b_calls, call, entry);
	free(call->local);
	if (call->retry_ev != NULL)
		event_free(call->retry_ev);
	if (call->ops->free_op != NULL)
		call->ops->free_op(call->op);
	free(call);
}

int e2b_call_should_retry(enum e2b_retry policy, const struct e2b_http_result *res)
{
	if (res->not_sent)
		return 1;
	switch (policy) {
	case E2B_RETRY_UNSENT:
		return 0;
	case E2B_RETRY_CREATE:
		return res->curl_code == 0 && res->status == 429;
	case E2B_RETRY_IDEMPOTENT:
		if (res->curl_code != 0) /* a TLS verification failure will not heal */
			return res->error == NULL || strncmp(res->error, "TLS: ", 5) != 0;
		return res->status == 429 || res->status == 500 || res->status == 502 || res->status == 503 ||
		       res->status == 504;
	}
	return 0;
}

long e2b_call_backoff_ms(int base_ms, int attempt, int retry_after_s)
{
	long ms = base_ms;
	uint8_t rnd = 0;
	int i;

	if (retry_after_s >= 0)
		return (long)(retry_after_s > E2B_CALL_RETRY_AFTER_MAX_S ? E2B_CALL_RETRY_AFTER_MAX_S : retry_after_s) *
		       1000;
	for (i = 1; i < attempt && ms < E2B_CALL_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > E2B_CALL_BACKOFF_MAX_MS)
		ms = E2B_CALL_BACKOFF_MAX_MS;
	/* Full jitter over the upper half, so a fleet of daemons spreads out. */
	(void)RAND_bytes(&rnd, 1);
	return ms / 2 + ms / 2 * rnd / 255;
}

static void e2b_call_finish(struct e2b_call *call, const struct e2b_http_result *res, const struct e2b_error *err)
{
	call->in_finish = 1;
	call->ops->finish(call, call->op, res, err);
	call->in_finish = 0;
	if (call->req == NULL) /* not continued with another page */
		e2b_call_free(call);
}

static void e2b_call_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct e2b_call *call = arg;
	struct e2b_http_result none = {.retry_after_s = -1};

	(void)fd;
	(void)what;
	if (call->local != NULL)
		e2b_call_finish(call, &none, call->local);
	else
		e2b_call_attempt(call);
}

static void e2b_call_schedule_retry(struct e2b_call *call, const struct e2b_http_result *res, const char *why)
{
	const struct e2b_settings *s = e2b_client_settings(call->c);
	long ms = e2b_call_backoff_ms(s->retry_base_ms, call->attempt, res->retry_after_s);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	log_info("e2b: %s failed (%s), retry %d/%d in %ld ms", call->ops->what, why, call->attempt, s->max_retries, ms);
	if (call->retry_ev == NULL)
		call->retry_ev = evtimer_new(e2b_client_base(call->c), e2b_call_retry_cb, call);
	evtimer_add(call->retry_ev, &tv);
}

static void e2b_call_done_cb(struct e2b_http_req *r, const struct e2b_http_result *res, void *arg)
{
	struct e2b_call *call = arg;
	const struct e2b_settings *s = e2b_client_settings(call->c);
	struct e2b_error e;
	char why[600];
	int ok = res->curl_code == 0 && res->status >= 200 && res->status < 300;

	call->req = NULL;
	if (!ok)
		e2b_error_from_result(&e, r, res);
	if (!ok && call->attempt <= s->max_retries && e2b_call_should_retry(call->ops->retry, res)) {
		e2b_call_schedule_retry(call, res, e2b_error_str(&e, why, sizeof(why)));
		return;
	}
	e2b_call_finish(call, res, ok ? NULL : &e);
}

static void e2b_call_attempt(struct e2b_call *call)
{
	call->attempt++;
	call->req = call->ops->build(call, call->op);
	e2b_http_req_start(call->req, e2b_call_done_cb, call);
}

struct e2b_call *e2b_call_start(struct e2b_client *c, const struct e2b_call_ops *ops, void *op)
{
	struct e2b_call *call = xcalloc(1, sizeof(*call));

	call->c = c;
	call->ops = ops;
	call->op = op;
	TAILQ_INSERT_TAIL(&e2b_calls, call, entry);
	e2b_call_attempt(call);
	return call;
}

struct e2b_call *e2b_call_fail(struct e2b_client *c, const struct e2b_call_ops *ops, void *op, const char *fmt, ...)
{
	struct e2b_call *call = xcalloc(1, sizeof(*call));
	struct timeval now = {0, 0};
	va_list ap;

	call->c = c;
	call->ops = ops;
	call->op = op;
	call->local = xcalloc(1, sizeof(*call->local));
	snprintf(call->local->code, sizeof(call->local->code), "invalid_argument");
	va_start(ap, fmt);
	vsnprintf(call->local->message, sizeof(call->local->message), fmt, ap);
	va_end(ap);
	TAILQ_INSERT_TAIL(&e2b_calls, call, entry);
	call->retry_ev = evtimer_new(e2b_client_base(c), e2b_call_retry_cb, call);
	evtimer_add(call->retry_ev, &now);
	return call;
}

void e2b_call_continue(struct e2b_call *call)
{
	call->attempt = 0;
	e2b_call_attempt(call);
}

void e2b_call_cancel(struct e2b_call *call)
{
	if (call == NULL || call->in_finish)
		return;
	e2b_http_req_cancel(call->req);
	e2b_call_free(call);
}

void e2b_call_cancel_all(struct e2b_client *c)
{
	struct e2b_call *call, *next;

	for (call = TAILQ_FIRST(&e2b_calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, entry);
		if (call->c == c && !call->in_finish)
			e2b_call_cancel(call);
	}
}

void *e2b_call_op(const struct e2b_call *call)
{
	return call->op;
}
