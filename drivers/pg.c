/*
 * pg.c: what the postgres.* and supabase.* drivers share: a libpq
 * connection built from the step's connection fields (a DSN, a Supabase
 * project URL, or host fields), statements, quoting, one-line errors.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

#define PG_MAX_PARAMS 16

struct pg_params {
	const char *k[PG_MAX_PARAMS + 1];
	const char *v[PG_MAX_PARAMS + 1];
	int n;
	char port[32], timeout[32], host[256];
};

static void pg_param(struct pg_params *p, const char *k, const char *v)
{
	if (v == NULL || p->n == PG_MAX_PARAMS)
		return;
	p->k[p->n] = k;
	p->v[p->n++] = v;
}

/*
 * Supabase: https://<ref>.supabase.co (the project URL users write) has its
 * database at db.<ref>.supabase.co:5432, user postgres, database postgres,
 * TLS required. A pg_dsn or explicit host wins over this.
 */
static const char *pg_supabase_host(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://"), *dot;

	p = p != NULL ? p + 3 : url;
	dot = strchr(p, '.');
	if (dot == NULL || dot == p || strncmp(dot, ".supabase.", 10) != 0)
		return NULL;
	snprintf(buf, len, "db.%.*s.supabase.co", (int)(dot - p), p);
	return buf;
}

static void pg_params_fill(const json_t *cfg, struct pg_params *p, int *expand)
{
	char n1[32], n2[32];
	const char *dsn = cfg_conn(cfg, "pg_dsn", n1, sizeof(n1)), *url, *host, *v;
	int64_t t = 30;

	if (dsn == NULL)
		dsn = cfg_conn(cfg, "dsn", n1, sizeof(n1));
	if (dsn == NULL)
		dsn = cfg_conn(cfg, "connection_string", n1, sizeof(n1));
	*expand = dsn != NULL;
	if (dsn != NULL) {
		pg_param(p, "dbname", dsn); /* expanded: a URI or key=value list */
	} else {
		url = cfg_conn(cfg, "url", n1, sizeof(n1));
		host = cfg_conn(cfg, "host", n2, sizeof(n2));
		if (host == NULL && url != NULL && (host = pg_supabase_host(url, p->host, sizeof(p->host))) != NULL)
			pg_param(p, "sslmode", "require");
		pg_param(p, "host", host);
		if ((v = cfg_conn(cfg, "port", n2, sizeof(n2))) != NULL)
			snprintf(p->port, sizeof(p->port), "%s", v);
		pg_param(p, "port", p->port[0] ? p->port : NULL);
		v = cfg_conn(cfg, "database", n2, sizeof(n2));
		pg_param(p, "dbname", v != NULL ? v : cfg_conn(cfg, "dbname", n2, sizeof(n2)));
		v = cfg_conn(cfg, "user", n2, sizeof(n2));
		pg_param(p, "user", v != NULL ? v : cfg_conn(cfg, "username", n2, sizeof(n2)));
		pg_param(p, "password", cfg_conn(cfg, "password", n2, sizeof(n2)));
		pg_param(p, "sslmode", cfg_conn(cfg, "sslmode", n2, sizeof(n2)));
	}
	if ((v = cfg_conn(cfg, "timeout", n2, sizeof(n2))) != NULL)
		t = strtoll(v, NULL, 10);
	snprintf(p->timeout, sizeof(p->timeout), "%lld", (long long)(t > 0 ? t : 30));
	pg_param(p, "connect_timeout", p->timeout);
	pg_param(p, "application_name", "osiris-worker");
	pg_param(p, "client_encoding", "UTF8");
}

const char *pg_errline(struct pg_conn *c, char *buf, size_t len)
{
	const char *m = c != NULL ? PQerrorMessage(c) : "out of memory";
	size_t n, o = 0;

	/* libpq's text spans lines ("...failed: Connection refused\n\tIs the
	 * server running..."; "ERROR: ...\nLINE 1: ..."): one line, the
	 * "ERROR:  " prefix dropped since the step error says it */
	if (strncmp(m, "ERROR:  ", 8) == 0)
		m += 8;
	for (n = 0; m[n] != '\0' && o + 1 < len; n++) {
		char ch = m[n] == '\n' || m[n] == '\t' ? ' ' : m[n];
		if (ch == ' ' && (o == 0 || buf[o - 1] == ' '))
			continue;
		buf[o++] = ch;
	}
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
	return buf;
}

/* Server notices (NOTICE: relation exists, skipping) go to the step's
 * debug log, not to the worker's stderr. */
static void pg_notice_cb(void *arg, const char *msg)
{
	ctx_log(arg, LOG_LVL_DEBUG, "postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

int pg_connect(struct driver_ctx *ctx, const json_t *cfg, struct pg_conn **out)
{
	struct pg_params p;
	PGconn *c;
	char err[512];
	int expand;

	memset(&p, 0, sizeof(p));
	pg_params_fill(cfg, &p, &expand);
	c = PQconnectdbParams(p.k, p.v, expand);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		ctx_fail(ctx, "ConnectionError", "postgres: cannot connect: %s", pg_errline(c, err, sizeof(err)));
		PQfinish(c);
		return -1;
	}
	PQsetNoticeProcessor(c, pg_notice_cb, ctx);
	*out = c;
	return 0;
}

int pg_exec(struct driver_ctx *ctx, struct pg_conn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	char err[512];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	PQclear(r);
	return ctx_fail(ctx, PQstatus(c) == CONNECTION_OK ? "QueryError" : "ConnectionError", "%s: %s", what,
	                pg_errline(c, err, sizeof(err)));
}

char *pg_ident(struct pg_conn *c, const char *name)
{
	char *q = PQescapeIdentifier(c, name, strlen(name)), *out;

	if (q == NULL)
		return NULL;
	out = xstrdup(q);
	PQfreemem(q);
	return out;
}

char *pg_qualified(struct driver_ctx *ctx, struct pg_conn *c, const char *schema, const char *table)
{
	char *s = pg_ident(c, schema), *t = pg_ident(c, table), *out = NULL;

	if (s == NULL || t == NULL)
		ctx_fail(ctx, "ConfigError", "'schema'/'table' cannot be quoted");
	else
		xasprintf(&out, "%s.%s", s, t);
	free(s);
	free(t);
	return out;
}
