/*
 * errors.c: the closed set of wire error codes (PROTOCOL.md §2) and their
 * names; osirisctl maps them to exit codes. Also the one-line reason the
 * decoders leave in their caller's err buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

static const char *const rpc_err_names[] = {
    [ERR_NONE] = "none",
    [ERR_INVALID_REQUEST] = "invalid_request",
    [ERR_INVALID_MANIFEST] = "invalid_manifest",
    [ERR_NOT_FOUND] = "not_found",
    [ERR_UNSUPPORTED_VERSION] = "unsupported_version",
    [ERR_TOO_LARGE] = "too_large",
    [ERR_FORBIDDEN] = "forbidden",
    [ERR_BUSY] = "busy",
    [ERR_INTERNAL] = "internal",
};

const char *rpc_err_name(enum rpc_err e)
{
	if ((unsigned)e >= sizeof(rpc_err_names) / sizeof(rpc_err_names[0]))
		return "internal";
	return rpc_err_names[e];
}

enum rpc_err rpc_err_parse(const char *s)
{
	size_t i;

	for (i = ERR_INVALID_REQUEST; s != NULL && i < sizeof(rpc_err_names) / sizeof(rpc_err_names[0]); i++)
		if (strcmp(s, rpc_err_names[i]) == 0)
			return (enum rpc_err)i;
	return ERR_INTERNAL;
}

void rpc_err_printf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
