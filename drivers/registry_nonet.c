/*
 * registry_nonet.c: the network drivers' names without their code, for
 * what must not link libpq/libmariadb/libcurl: the static worker (no static
 * libpq or libcurl can be built from Debian's packages: their Kerberos and
 * LDAP dependencies ship no static archives), the daemon (it only checks
 * names) and the unit tests. A step naming one fails with a clear error.
 * Keep the names in step with registry_net.c.
 */
#include <string.h>

#include "drivers.h"

static int
registry_nonet_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
    size_t ninputs, struct table **output)
{
	(void)inputs;
	(void)input_names;
	(void)ninputs;
	(void)output;
	return ctx_fail(ctx, "DriverUnavailable",
	    "driver %s is not available in this build of osiris-worker (the static worker has no libpq, "
	    "libmariadb or libcurl); run it on a worker built with them",
	    json_string_value(json_object_get(cfg, "component")) ? json_string_value(json_object_get(cfg, "component"))
								 : "?");
}

#define NONET(n, k) {.name = (n), .run = registry_nonet_run, .keys = (k)}
static const struct driver_ops registry_nonet_drivers[] = {
    NONET("postgres.extractor", pg_extractor_keys),
    NONET("postgres.writer", pg_writer_keys),
    NONET("supabase.extractor", pg_extractor_keys),
    NONET("supabase.writer", pg_writer_keys),
    NONET("mysql.extractor", mysql_extractor_keys),
    NONET("mysql.writer", mysql_writer_keys),
    NONET("graphql.extractor", graphql_extractor_keys),
};

const struct driver_ops *
registry_net_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(registry_nonet_drivers) / sizeof(registry_nonet_drivers[0]); i++)
		if (strcmp(registry_nonet_drivers[i].name, name) == 0)
			return &registry_nonet_drivers[i];
	return NULL;
}
