/*
 * registry_static.c: the network drivers of osiris-worker-static (what an
 * E2B sandbox runs). mysql.* are real: Debian ships libmariadb.a and the
 * static OpenSSL and zlib it needs. graphql.extractor is real over
 * httpc_ossl.c, not libcurl: a static libcurl needs libnghttp2/libssh2/
 * libpsl/librtmp/libzstd/libgssapi_krb5/libldap archives Debian does not
 * ship. postgres.* and supabase.* are real when the Makefile found the
 * libpgcommon/libpgport archives of libpq.a's version (WORKER_STATIC_PG;
 * GSSAPI and LDAP fail, nogss.c), else stand-ins (unavail.c). Keep the
 * names in step with registry_net.c.
 */
#include <stddef.h>

#include "drivers.h"

#ifndef WORKER_STATIC_PG
#define NONET(n, k)                                                                                                    \
	{                                                                                                              \
		.name = (n), .run = unavail_run, .keys = (k)                                                           \
	}
static const struct driver_ops registry_static_nonet[] = {
    NONET("postgres.extractor", pg_extractor_keys),
    NONET("postgres.writer", pg_writer_keys),
    NONET("supabase.extractor", pg_extractor_keys),
    NONET("supabase.writer", pg_writer_keys),
};
#endif
static const struct driver_ops *const registry_static_drivers[] = {
    &driver_mysql_extractor, &driver_mysql_writer, &driver_graphql_extractor,
#ifdef WORKER_STATIC_PG
    &driver_pg_extractor,    &driver_pg_writer,    &driver_supabase_extractor, &driver_supabase_writer,
#else
    &registry_static_nonet[0], &registry_static_nonet[1], &registry_static_nonet[2], &registry_static_nonet[3],
#endif
};

const struct driver_ops *registry_net_at(size_t i)
{
	return i < sizeof(registry_static_drivers) / sizeof(registry_static_drivers[0]) ? registry_static_drivers[i]
	                                                                                : NULL;
}
