/*
 * unavail.c: the run of a network driver a binary does not link (see
 * registry_nonet.c, registry_static.c): the step fails with a line saying
 * which driver and why.
 */
#include <string.h>

#include "drivers.h"

int unavail_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                size_t ninputs, struct table **output)
{
	const char *name = json_string_value(json_object_get(cfg, "component")), *lib = "its client library";

	(void)inputs;
	(void)input_names;
	(void)ninputs;
	(void)output;
	if (name == NULL)
		name = "?";
	else if (strncmp(name, "postgres.", 9) == 0 || strncmp(name, "supabase.", 9) == 0)
		lib = "libpq";
	else if (strncmp(name, "mysql.", 6) == 0)
		lib = "libmariadb";
	else if (strncmp(name, "graphql.", 8) == 0)
		lib = "libcurl";
	return ctx_fail(
	    ctx, "DriverUnavailable",
	    "driver %s is not available in this build of osiris-worker (it links no %s); run it on a worker "
	    "built with it",
	    name, lib);
}
