/*
 * args.c: pure parsing of command arguments (KEY[=VALUE] pairs, numbers,
 * sizes), kept apart from I/O so the unit tests can reach every branch.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

/* POSIX-ish environment name: [A-Za-z_][A-Za-z0-9_]*. */
int args_env_name_ok(const char *name)
{
	if (name == NULL || *name == '\0' || (*name >= '0' && *name <= '9'))
		return 0;
	for (const char *p = name; *p != '\0'; p++) {
		char ch = *p;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return 0;
	}
	return 1;
}

int args_kv(const char *arg, int from_env, char *(*getenv_fn)(const char *), struct kvlist *l, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	const char *value;
	char *key;

	if (eq == arg) {
		snprintf(err, errlen, "'%s': empty name", arg);
		return -1;
	}
	key = eq != NULL ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
	if (from_env && !args_env_name_ok(key)) {
		snprintf(err, errlen, "'%s': not a valid environment variable name", key);
		free(key);
		return -1;
	}
	if (eq != NULL)
		value = eq + 1;
	else if (!from_env) {
		snprintf(err, errlen, "'%s': expected KEY=VALUE", arg);
		free(key);
		return -1;
	} else if ((value = getenv_fn(key)) == NULL) {
		snprintf(err, errlen, "%s: not set in the environment", key);
		free(key);
		return -1;
	}
	if (kvlist_get(l, key) != NULL) {
		snprintf(err, errlen, "%s: given twice", key);
		free(key);
		return -1;
	}
	kvlist_add(l, key, value);
	free(key);
	return 0;
}

int args_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int args_size(const char *s, size_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1ULL << 10;
		break;
	case 'm':
	case 'M':
		mul = 1ULL << 20;
		break;
	case 'g':
	case 'G':
		mul = 1ULL << 30;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0' && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
		return -1;
	if (v > SIZE_MAX / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

/* "90" (seconds), "45s", "15m", "12h", "30d", "2w". */
int args_duration(const char *s, int64_t *secs)
{
	long long v;
	int64_t mul = 1;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 'w':
		mul = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > INT64_MAX / 1000 / mul)
		return -1;
	*secs = (int64_t)v * mul;
	return 0;
}
