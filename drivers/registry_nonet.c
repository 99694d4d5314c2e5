/*
 * registry_nonet.c: the network drivers' names without their code, for
 * what must not link libpq/libmariadb/libcurl: the unit tests. A step naming one fails with a clear error
 * (unavail.c). Keep the names in step with registry_net.c.
 */
#include <stddef.h>

#include "drivers.h"

#define NONET(n, k)                                                                                                    \
	{                                                                                                              \
		.name = (n), .run = unavail_run, .keys = (k)                                                           \
	}
static const struct driver_ops registry_nonet_drivers[] = {
    NONET("postgres.extractor", pg_extractor_keys),     NONET("postgres.writer", pg_writer_keys),
    NONET("supabase.extractor", pg_extractor_keys),     NONET("supabase.writer", pg_writer_keys),
    NONET("mysql.extractor", mysql_extractor_keys),     NONET("mysql.writer", mysql_writer_keys),
    NONET("graphql.extractor", graphql_extractor_keys),
};

const struct driver_ops *registry_net_at(size_t i)
{
	return i < sizeof(registry_nonet_drivers) / sizeof(registry_nonet_drivers[0]) ? &registry_nonet_drivers[i]
	                                                                              : NULL;
}
