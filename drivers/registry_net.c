/*
 * registry_net.c: the drivers built on network client libraries (libpq,
 * libmariadb, libcurl), linked into the dynamic osiris-worker only; the
 * registry asks here for names it does not have itself.
 */
#include <stddef.h>

#include "drivers.h"

static const struct driver_ops *const registry_net_drivers[] = {
    &driver_pg_extractor,    &driver_pg_writer,    &driver_supabase_extractor, &driver_supabase_writer,
    &driver_mysql_extractor, &driver_mysql_writer, &driver_graphql_extractor,
};

const struct driver_ops *registry_net_at(size_t i)
{
	return i < sizeof(registry_net_drivers) / sizeof(registry_net_drivers[0]) ? registry_net_drivers[i] : NULL;
}
