/*
 * registry_static.c: the network drivers of osiris-worker-static (what an
 * E2B sandbox runs). mysql.* are real: Debian ships libmariadb.a and the
 * static OpenSSL and zlib it needs. graphql.extractor is real over
 * httpc_ossl.c, not libcurl: a static libcurl needs libnghttp2/libssh2/
 * libpsl/librtmp/libzstd/libgssapi_krb5/libldap archives Debian does not
 * ship. postgres.* and supabase.* stay stand-ins (unavail.c): a static libpq
 * needs libpgcommon.a and libpgport.a (not in libpq-dev) and
 * libgssapi_krb5/libldap archives. Keep the names in step with
 * registry_net.c.
 */
#include <stddef.h>

#include "drivers.h"

#define NONET(n, k) {.name = (n), .run = unavail_run, .keys = (k)}
static const struct driver_ops registry_static_nonet[] = {
    NONET("postgres.extractor", pg_extractor_keys),
    NONET("postgres.writer", pg_writer_keys),
    NONET("supabase.extractor", pg_extractor_keys),
    NONET("supabase.writer", pg_writer_keys),
};
static const struct driver_ops *const registry_static_drivers[] = {
    &driver_mysql_extractor,
    &driver_mysql_writer,
    &driver_graphql_extractor,
    &registry_static_nonet[0],
    &registry_static_nonet[1],
    &registry_static_nonet[2],
    &registry_static_nonet[3],
};

const struct driver_ops *
registry_net_at(size_t i)
{
	return i < sizeof(registry_static_drivers) / sizeof(registry_static_drivers[0]) ? registry_static_drivers[i]
	                                                                                : NULL;
}
