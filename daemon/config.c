/*
 * config.c: osirisd's configuration: built-in defaults (which depend on the
 * uid), the INI file (inih) and -o section.key=value overrides, every key
 * checked by one table so that file, override and docs cannot drift apart.
 */
#include <sys/un.h>

#include <errno.h>
#include <ini.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

enum config_type {
	CFG_INT,       /* int, decimal, [min, max] */
	CFG_SIZE,      /* int64_t bytes, optional K/M/G suffix (powers of 1024), [min, max] */
	CFG_STR,       /* non-empty string without whitespace */
	CFG_PATH,      /* non-empty path */
	CFG_SOCKPATH,  /* a path that fits sockaddr_un */
	CFG_LOGLEVEL,  /* debug | info | warn | error */
	CFG_ISOLATION, /* auto | none */
};

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t off;
	int64_t min, max;
};

#define KEY(sec, name, type, field, min, max)                                                                          \
	{                                                                                                              \
		sec, name, type, offsetof(struct config, field), min, max                                              \
	}

/* The contract of DESIGN.md §4 plus the daemon's tuning keys; documented in
 * conf/osirisd.conf and osirisd.conf(5). */
static const struct config_key config_keys[] = {
    KEY("daemon", "socket", CFG_SOCKPATH, socket, 0, 0),
    KEY("daemon", "state_dir", CFG_PATH, state_dir, 0, 0),
    KEY("daemon", "max_concurrent_runs", CFG_INT, max_concurrent_runs, 1, 1024),
    KEY("daemon", "max_context_bytes", CFG_SIZE, max_context_bytes, 1024, 1LL << 30),
    KEY("daemon", "shutdown_grace_s", CFG_INT, shutdown_grace_s, 0, 3600),
    KEY("daemon", "log_level", CFG_LOGLEVEL, log_level, 0, 0),
    KEY("daemon", "cancel_grace_ms", CFG_INT, cancel_grace_ms, 0, 600000),
    KEY("daemon", "follow_buffer_bytes", CFG_SIZE, follow_buffer_bytes, 4096, 1LL << 30),
    KEY("daemon", "event_flush_ms", CFG_INT, event_flush_ms, 0, 1000),
    KEY("daemon", "keep_days", CFG_INT, keep_days, 0, 36500),
    KEY("daemon", "keep_runs", CFG_INT, keep_runs, 0, 1000000000),
    KEY("daemon", "max_state_bytes", CFG_SIZE, max_state_bytes, 0, 1LL << 50),
    KEY("daemon", "min_free_bytes", CFG_SIZE, min_free_bytes, 0, 1LL << 40),
    KEY("daemon", "prune_interval_s", CFG_INT, prune_interval_s, 1, 86400),
    KEY("daemon", "connections_file", CFG_PATH, connections_file, 0, 0),
    KEY("local", "pool_size", CFG_INT, local_pool_size, 0, 256),
    KEY("local", "max_workers", CFG_INT, local_max_workers, 1, 1024),
    KEY("local", "worker", CFG_PATH, local_worker, 0, 0),
    KEY("local", "isolation", CFG_ISOLATION, local_isolation, 0, 0),
    KEY("local", "heartbeat_s", CFG_INT, local_heartbeat_s, 1, 3600),
    KEY("local", "work_dir", CFG_PATH, local_work_dir, 0, 0),
    KEY("local", "work_dir_max_bytes", CFG_SIZE, local_work_dir_max_bytes, 0, 1LL << 40),
    KEY("local", "worker_max_runs", CFG_INT, local_worker_max_runs, 1, 1000000),
    KEY("local", "start_fail_limit", CFG_INT, local_start_fail_limit, 1, 1000),
    KEY("e2b", "pool_size", CFG_INT, e2b_pool_size, 0, 1000),
    KEY("e2b", "max_sandboxes", CFG_INT, e2b_max_sandboxes, 1, 10000),
    KEY("e2b", "template", CFG_STR, e2b_template, 0, 0),
    KEY("e2b", "api_key_file", CFG_PATH, e2b_api_key_file, 0, 0),
    KEY("e2b", "sandbox_timeout_s", CFG_INT, e2b_sandbox_timeout_s, 5, 86400),
    KEY("e2b", "create_rate", CFG_INT, e2b_create_rate, 1, 1000),
    KEY("e2b", "sandbox_max_runs", CFG_INT, e2b_sandbox_max_runs, 1, 1000000),
    KEY("e2b", "ca_file", CFG_PATH, e2b_ca_file, 0, 0),
    KEY("e2b", "worker_path", CFG_PATH, e2b_worker_path, 0, 0),
    KEY("e2b", "heartbeat_s", CFG_INT, e2b_heartbeat_s, 1, 3600),
    KEY("e2b", "start_fail_limit", CFG_INT, e2b_start_fail_limit, 1, 1000),
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Defaults ------------------------------------------------------------- */

static const char *config_home(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && h[0] == '/')
		return h;
	pw = getpwuid(geteuid());
	return pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

/* DESIGN §4: system paths as root, XDG paths otherwise. */
static void config_default_paths(struct config *c)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	const char *state = getenv("XDG_STATE_HOME");
	const char *home;
	unsigned uid = (unsigned)geteuid();

	if (uid == 0) {
		c->socket = xstrdup("/run/osiris/osirisd.sock");
		c->state_dir = xstrdup("/var/lib/osiris");
		return;
	}
	if (run != NULL && run[0] == '/')
		xasprintf(&c->socket, "%s/osiris/osirisd.sock", run);
	else
		xasprintf(&c->socket, "/tmp/osiris-%u/osirisd.sock", uid);
	/* XDG: a relative XDG_STATE_HOME is invalid and must be ignored. */
	if (state != NULL && state[0] == '/')
		xasprintf(&c->state_dir, "%s/osiris", state);
	else if ((home = config_home()) != NULL)
		xasprintf(&c->state_dir, "%s/.local/state/osiris", home);
	else
		xasprintf(&c->state_dir, "/tmp/osiris-%u/state", uid);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	config_default_paths(c);
	c->max_concurrent_runs = 4;
	c->max_context_bytes = 67108864;
	c->shutdown_grace_s = 30;
	c->log_level = LOG_LVL_INFO;
	c->cancel_grace_ms = 5000;
	c->follow_buffer_bytes = 1048576;
	c->event_flush_ms = 5;
	c->keep_days = 30;
	c->keep_runs = 100000;
	c->max_state_bytes = 10LL << 30;
	c->min_free_bytes = 128LL << 20;
	c->prune_interval_s = 60;
	c->local_pool_size = 2;
	c->local_max_workers = 8;
	c->local_worker = NULL; /* resolved by the daemon: beside its own binary */
	c->local_isolation = xstrdup("auto");
	c->local_heartbeat_s = 10;
	c->local_work_dir = NULL; /* resolved by the pool: a tmpfs, else <state_dir>/work */
	c->local_work_dir_max_bytes = 32LL * 1024 * 1024;
	c->local_worker_max_runs = 1;
	c->local_start_fail_limit = 5;
	c->e2b_pool_size = 0;
	c->e2b_max_sandboxes = 20;
	c->e2b_template = xstrdup("base");
	c->e2b_api_key_file = NULL;
	c->connections_file = NULL;
	c->e2b_sandbox_timeout_s = 300;
	c->e2b_create_rate = 2;
	c->e2b_sandbox_max_runs = 1;
	c->e2b_ca_file = NULL;
	c->e2b_worker_path = NULL;
	c->e2b_heartbeat_s = 15;
	c->e2b_start_fail_limit = 5;
}

void config_free(struct config *c)
{
	free(c->socket);
	free(c->state_dir);
	free(c->local_worker);
	free(c->local_isolation);
	free(c->local_work_dir);
	free(c->e2b_template);
	free(c->e2b_api_key_file);
	free(c->connections_file);
	free(c->e2b_ca_file);
	free(c->e2b_worker_path);
	memset(c, 0, sizeof(*c));
}

/* Values --------------------------------------------------------------- */

static const struct config_key *config_key_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, key) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static int config_section_known(const char *section)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0)
			return 1;
	}
	return 0;
}

/* Decimal integer with an optional K/M/G (x1024) suffix when `sized`. */
static int config_parse_int(const char *v, int sized, int64_t *out)
{
	char *end;
	long long n;
	int64_t mult = 1;

	if (*v == '\0' || (*v != '-' && (*v < '0' || *v > '9')))
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0)
		return -1;
	if (sized && *end != '\0') {
		switch (end[0] | 0x20) {
		case 'k':
			mult = 1LL << 10;
			break;
		case 'm':
			mult = 1LL << 20;
			break;
		case 'g':
			mult = 1LL << 30;
			break;
		default:
			return -1;
		}
		end++;
		if (*end == 'i' && end[1] == 'B') /* "64MiB" reads as meant */
			end += 2;
		else if (*end == 'B')
			end++;
	}
	if (*end != '\0' || n > INT64_MAX / mult || n < INT64_MIN / mult)
		return -1;
	*out = (int64_t)n * mult;
	return 0;
}

static int config_set_number(struct config *c, const struct config_key *k, const char *v, char *err, size_t errlen)
{
	int64_t n;

	if (config_parse_int(v, k->type == CFG_SIZE, &n) == -1 || n < k->min || n > k->max) {
		snprintf(err, errlen, "%s.%s: expected %s %lld..%lld%s, got \"%s\"", k->section, k->name,
		         k->type == CFG_SIZE ? "a size" : "an integer", (long long)k->min, (long long)k->max,
		         k->type == CFG_SIZE ? " (bytes, K/M/G suffix allowed)" : "", log_esc(v, 64));
		return -1;
	}
	if (k->type == CFG_SIZE)
		*(int64_t *)(void *)((char *)c + k->off) = n;
	else
		*(int *)(void *)((char *)c + k->off) = (int)n;
	return 0;
}

static int config_check_string(const struct config_key *k, const char *v, char *err, size_t errlen)
{
	const char *why = NULL;

	if (*v == '\0')
		why = "must not be empty";
	else if (k->type == CFG_STR && strpbrk(v, " \t") != NULL)
		why = "must not contain whitespace";
	else if (k->type == CFG_SOCKPATH && strlen(v) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		why = "too long for a Unix socket path (max 107 bytes)";
	else if (k->type == CFG_ISOLATION && strcmp(v, "auto") != 0 && strcmp(v, "none") != 0)
		why = "expected auto or none";
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "%s.%s: %s, got \"%s\"", k->section, k->name, why, log_esc(v, 64));
	return -1;
}

/* Strip one pair of surrounding double quotes: paths with spaces. */
static char *config_unquote(const char *v)
{
	size_t len = strlen(v);

	if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
		return xstrndup(v + 1, len - 2);
	return xstrdup(v);
}

int config_set(struct config *c, const char *section, const char *key, const char *value, char *err, size_t errlen)
{
	const struct config_key *k = config_key_find(section, key);
	enum log_level lvl;
	char *v, **slot;
	int rc = 0;

	if (k == NULL) {
		if (!config_section_known(section))
			snprintf(err, errlen, "unknown section [%s] (key %s)", log_esc(section, 64), log_esc(key, 64));
		else
			snprintf(err, errlen, "unknown key %s.%s", section, log_esc(key, 64));
		return -1;
	}
	v = config_unquote(value);
	switch (k->type) {
	case CFG_INT:
	case CFG_SIZE:
		rc = config_set_number(c, k, v, err, errlen);
		break;
	case CFG_LOGLEVEL:
		if (log_level_parse(v, &lvl) == -1) {
			snprintf(err, errlen, "%s.%s: expected debug, info, warn or error, got \"%s\"", k->section,
			         k->name, log_esc(v, 64));
			rc = -1;
		} else
			c->log_level = lvl;
		break;
	default:
		rc = config_check_string(k, v, err, errlen);
		if (rc == 0) {
			slot = (char **)(void *)((char *)c + k->off);
			free(*slot);
			*slot = v;
			v = NULL;
		}
		break;
	}
	free(v);
	return rc;
}

int config_set_override(struct config *c, const char *assignment, char *err, size_t errlen)
{
	const char *dot = strchr(assignment, '.');
	const char *eq = strchr(assignment, '=');
	char *section, *key;
	int rc;

	if (dot == NULL || eq == NULL || dot > eq || dot == assignment || eq == dot + 1) {
		snprintf(err, errlen, "-o %s: expected section.key=value", log_esc(assignment, 128));
		return -1;
	}
	section = xstrndup(assignment, (size_t)(dot - assignment));
	key = xstrndup(dot + 1, (size_t)(eq - dot - 1));
	rc = config_set(c, section, key, eq + 1, err, errlen);
	free(section);
	free(key);
	return rc;
}

/* The file ------------------------------------------------------------ */

/*
 * inih counts lines but does not tell the handler which one it is on, so the
 * reader counts them itself (inih calls the handler right after reading the
 * line). A line longer than inih's buffer would be split into two bogus
 * lines: the reader stops and reports it instead.
 */
struct config_parse {
	struct config *c;
	FILE *fp;
	int line;
	int too_long; /* line number of an over-long line */
	int err_line; /* first error from the handler */
	char err[256];
};

static char *config_parse_read_cb(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	size_t len;
	int ch;

	if (fgets(str, num, p->fp) == NULL)
		return NULL;
	p->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && (int)len == num - 1) {
		if ((ch = fgetc(p->fp)) != EOF) {
			p->too_long = p->line;
			return NULL;
		}
	}
	return str;
}

static int config_parse_handler_cb(void *user, const char *section, const char *name, const char *value)
{
	struct config_parse *p = user;
	char err[256];

	if (*section == '\0') {
		snprintf(err, sizeof(err), "key %s outside a section ([daemon], [local] or [e2b])", log_esc(name, 64));
	} else if (config_set(p->c, section, name, value, err, sizeof(err)) == 0)
		return 1;
	if (p->err_line == 0) {
		p->err_line = p->line;
		snprintf(p->err, sizeof(p->err), "%s", err);
	}
	return 0;
}

int config_load_file(struct config *c, const char *path, int must_exist, char *err, size_t errlen)
{
	struct config_parse p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.c = c;
	if ((p.fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(config_parse_read_cb, &p, config_parse_handler_cb, &p);
	if (ferror(p.fp) && rc == 0) {
		snprintf(err, errlen, "%s: read error", path);
		fclose(p.fp);
		return -1;
	}
	fclose(p.fp);
	if (p.too_long != 0 && (p.err_line == 0 || p.too_long < p.err_line) && (rc <= 0 || p.too_long < rc))
		snprintf(err, errlen, "%s:%d: line too long", path, p.too_long);
	else if (rc > 0 && (p.err_line == 0 || rc < p.err_line))
		snprintf(err, errlen, "%s:%d: syntax error: expected [section], key = value or a comment", path, rc);
	else if (p.err_line != 0)
		snprintf(err, errlen, "%s:%d: %s", path, p.err_line, p.err);
	else if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, rc == -2 ? "out of memory" : "cannot read");
	else
		return 0;
	return -1;
}
