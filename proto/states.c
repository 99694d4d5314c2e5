/*
 * states.c: run and step state names as they appear on the wire and in the
 * store, and which run states are final.
 */
#include <string.h>

#include "proto.h"

static const char *const run_state_names[] = {
    [RUN_QUEUED] = "queued", [RUN_STARTING] = "starting",   [RUN_RUNNING] = "running", [RUN_SUCCEEDED] = "succeeded",
    [RUN_FAILED] = "failed", [RUN_CANCELLED] = "cancelled", [RUN_LOST] = "lost",
};

static const char *const step_state_names[] = {
    [STEP_PENDING] = "pending", [STEP_RUNNING] = "running", [STEP_SUCCEEDED] = "succeeded",
    [STEP_FAILED] = "failed",   [STEP_SKIPPED] = "skipped", [STEP_CANCELLED] = "cancelled",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *run_state_name(enum run_state s)
{
	if ((unsigned)s >= NELEM(run_state_names))
		return "unknown";
	return run_state_names[s];
}

int run_state_parse(const char *s, enum run_state *out)
{
	size_t i;

	for (i = 0; s != NULL && i < NELEM(run_state_names); i++) {
		if (strcmp(s, run_state_names[i]) == 0) {
			*out = (enum run_state)i;
			return 0;
		}
	}
	return -1;
}

int run_state_final(enum run_state s)
{
	return s == RUN_SUCCEEDED || s == RUN_FAILED || s == RUN_CANCELLED || s == RUN_LOST;
}

const char *step_state_name(enum step_state s)
{
	if ((unsigned)s >= NELEM(step_state_names))
		return "unknown";
	return step_state_names[s];
}

int step_state_parse(const char *s, enum step_state *out)
{
	size_t i;

	for (i = 0; s != NULL && i < NELEM(step_state_names); i++) {
		if (strcmp(s, step_state_names[i]) == 0) {
			*out = (enum step_state)i;
			return 0;
		}
	}
	return -1;
}
