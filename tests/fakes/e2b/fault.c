/*
 * fault.c: --fault SPEC, the failures the E2B cloud shows in practice, on
 * demand: rate limiting on create, 5xx on an endpoint, streams cut mid-way,
 * sandboxes dying early. Counters are per spec, so runs are deterministic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

#define FAULT_MAX 32

enum fault_kind { FAULT_RATE_LIMIT, FAULT_HTTP_ERROR, FAULT_STREAM_CUT, FAULT_SANDBOX_DEATH };

struct fault {
	enum fault_kind kind;
	char endpoint[64];
	int status;
	int retry_after;
	long after;
	long every;
	long count; /* 0 = unlimited */
	long calls;
	long fired;
};

static struct fault fault_table[FAULT_MAX];

const char *fault_usage(void)
{
	return "      rate-limit[:every=N][:retry-after=S][:count=K]\n"
	       "          every Nth create (POST /sandboxes, /v2/sandboxes) answers 429\n"
	       "          {\"code\":429,\"message\":\"Rate limit exceeded\"} with Retry-After: S (default 1)\n"
	       "      http-error:endpoint=NAME[:status=CODE][:every=N][:count=K]\n"
	       "          every Nth call of NAME answers CODE (default 503). NAME: create list get kill\n"
	       "          timeout refreshes connect health files (files.get, files.post) process.<Method>\n"
	       "          filesystem.<Method> or *\n"
	       "      stream-cut:after=BYTES[:every=N][:count=K]\n"
	       "          every Nth Start/Connect stream is cut (no EndStream) after BYTES body bytes\n"
	       "      sandbox-death:after=SECONDS[:every=N][:count=K]\n"
	       "          every Nth new sandbox dies SECONDS after create, as if its VM vanished\n"
	       "      every= defaults to 1; count=K stops the fault after K firings (0 = never stops)\n";
}

static int fault_number(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int fault_option(struct fault *f, const char *key, const char *val, char *err, size_t errlen)
{
	long n;

	if (strcmp(key, "every") == 0 && fault_number(val, 1, 1000000, &f->every) == 0)
		return 0;
	if (strcmp(key, "count") == 0 && fault_number(val, 0, 1000000, &f->count) == 0)
		return 0;
	if (strcmp(key, "after") == 0 && f->kind != FAULT_RATE_LIMIT && fault_number(val, 1, 1L << 40, &f->after) == 0)
		return 0;
	if (strcmp(key, "retry-after") == 0 && f->kind == FAULT_RATE_LIMIT && fault_number(val, 0, 3600, &n) == 0) {
		f->retry_after = (int)n;
		return 0;
	}
	if (strcmp(key, "status") == 0 && f->kind == FAULT_HTTP_ERROR && fault_number(val, 400, 599, &n) == 0) {
		f->status = (int)n;
		return 0;
	}
	if (strcmp(key, "endpoint") == 0 && f->kind == FAULT_HTTP_ERROR && *val && strlen(val) < sizeof(f->endpoint)) {
		snprintf(f->endpoint, sizeof(f->endpoint), "%s", val);
		return 0;
	}
	snprintf(err, errlen, "bad or unknown option \"%s=%s\"", key, val);
	return -1;
}

int fault_parse(const char *spec, char *err, size_t errlen)
{
	struct fault f = {.every = 1, .retry_after = 1, .status = 503};
	char buf[256], *tok, *save, *eq;

	if (emu.nfaults >= FAULT_MAX) {
		snprintf(err, errlen, "at most %d faults", FAULT_MAX);
		return -1;
	}
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "spec too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	tok = strtok_r(buf, ":", &save);
	if (tok == NULL || (strcmp(tok, "rate-limit") != 0 && strcmp(tok, "http-error") != 0 &&
	                    strcmp(tok, "stream-cut") != 0 && strcmp(tok, "sandbox-death") != 0)) {
		snprintf(err, errlen, "unknown fault kind (rate-limit, http-error, stream-cut, sandbox-death)");
		return -1;
	}
	f.kind = strcmp(tok, "rate-limit") == 0   ? FAULT_RATE_LIMIT
	         : strcmp(tok, "http-error") == 0 ? FAULT_HTTP_ERROR
	         : strcmp(tok, "stream-cut") == 0 ? FAULT_STREAM_CUT
	                                          : FAULT_SANDBOX_DEATH;
	while ((tok = strtok_r(NULL, ":", &save)) != NULL) {
		if ((eq = strchr(tok, '=')) == NULL) {
			snprintf(err, errlen, "expected key=value, got \"%s\"", tok);
			return -1;
		}
		*eq = '\0';
		if (fault_option(&f, tok, eq + 1, err, errlen) != 0)
			return -1;
	}
	if (f.kind == FAULT_RATE_LIMIT) {
		snprintf(f.endpoint, sizeof(f.endpoint), "create");
		f.status = 429;
	}
	if (f.kind == FAULT_HTTP_ERROR && f.endpoint[0] == '\0') {
		snprintf(err, errlen, "http-error needs endpoint=NAME");
		return -1;
	}
	if ((f.kind == FAULT_STREAM_CUT || f.kind == FAULT_SANDBOX_DEATH) && f.after == 0) {
		snprintf(err, errlen, "%s needs after=N", f.kind == FAULT_STREAM_CUT ? "stream-cut" : "sandbox-death");
		return -1;
	}
	fault_table[emu.nfaults++] = f;
	return 0;
}

/* Count a call against f; 1 when this call is one the fault hits. */
static int fault_fires(struct fault *f)
{
	f->calls++;
	if (f->calls % f->every != 0 || (f->count != 0 && f->fired >= f->count))
		return 0;
	f->fired++;
	return 1;
}

int fault_check_endpoint(const char *endpoint, int *retry_after)
{
	size_t i;

	*retry_after = 0;
	for (i = 0; i < emu.nfaults; i++) {
		struct fault *f = &fault_table[i];
		if (f->kind != FAULT_RATE_LIMIT && f->kind != FAULT_HTTP_ERROR)
			continue;
		if (strcmp(f->endpoint, "*") != 0 && strcmp(f->endpoint, endpoint) != 0)
			continue;
		if (fault_fires(f)) {
			if (f->kind == FAULT_RATE_LIMIT)
				*retry_after = f->retry_after;
			return f->status;
		}
	}
	return 0;
}

size_t fault_stream_cut_after(void)
{
	size_t i;

	for (i = 0; i < emu.nfaults; i++)
		if (fault_table[i].kind == FAULT_STREAM_CUT && fault_fires(&fault_table[i]))
			return (size_t)fault_table[i].after;
	return 0;
}

int fault_sandbox_death_after(void)
{
	size_t i;

	for (i = 0; i < emu.nfaults; i++)
		if (fault_table[i].kind == FAULT_SANDBOX_DEATH && fault_fires(&fault_table[i]))
			return (int)fault_table[i].after;
	return 0;
}
