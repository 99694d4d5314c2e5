/*
 * registry.c: drivers by Osiris component name. The worker names them all
 * in its `ready` (driver_at), so the daemon can refuse a manifest naming a
 * driver the worker does not have without linking any of them.
 */
#include <string.h>

#include "drivers.h"

static const struct driver_ops *const registry_drivers[] = {
    &driver_csv_extractor,
    &driver_csv_writer,
    &driver_sql_processor,
    &driver_noop,
};

#define REGISTRY_NLOCAL (sizeof(registry_drivers) / sizeof(registry_drivers[0]))

const struct driver_ops *driver_at(size_t i)
{
	return i < REGISTRY_NLOCAL ? registry_drivers[i] : registry_net_at(i - REGISTRY_NLOCAL);
}

const struct driver_ops *driver_find(const char *name)
{
	const struct driver_ops *ops;
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; (ops = driver_at(i)) != NULL; i++)
		if (strcmp(ops->name, name) == 0)
			return ops;
	return NULL;
}

int driver_known(const char *name)
{
	return driver_find(name) != NULL;
}

int driver_key_is_meta(const char *key)
{
	return strcmp(key, "component") == 0 || strcmp(key, "mode") == 0 || strcmp(key, "connection") == 0;
}

int driver_key_known(const struct driver_ops *ops, const char *key)
{
	size_t i;

	if (driver_key_is_meta(key))
		return 1;
	for (i = 0; ops->keys != NULL && ops->keys[i] != NULL; i++)
		if (strcmp(ops->keys[i], key) == 0)
			return 1;
	return 0;
}
