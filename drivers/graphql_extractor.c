/*
 * graphql_extractor.c: graphql.extractor (over httpc: libcurl in the
 * dynamic worker, HTTP/1.1 over OpenSSL in the static one). POSTs {query, variables}, each page
 * once; Relay-style cursor pagination; rows from `data_path`, flattened
 * like pandas.json_normalize; retries with backoff on 429/5xx and on a cut
 * or refused connection; a response with `errors` fails with the server's
 * message. Keys and defaults as in Osiris.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers.h"

#define GRAPHQL_BODY_MAX (256u * 1024 * 1024)
#define GRAPHQL_MAX_COLS 4096

struct graphql {
	struct driver_ctx *ctx;
	const json_t *cfg;
	struct httpc *http;
	const char *endpoint, *query;
	json_t *vars;
	int64_t timeout, retries, max_pages;
	double delay;
	int paginate, flatten, verify;
	const char *page_path, *cursor_field, *next_field, *var_name, *data_path;
	struct buf body;
	int64_t requests, pages;
	/* Rows go into the table page by page (each page's JSON is freed
	 * once read): columns in first-seen order, a row without one gets
	 * NULL. */
	struct table *t;
	json_t *colidx; /* column name -> index */
	size_t nrows;
	struct buf name; /* the flattened name being built */
};

/* A cfg string: the connection's value first for secrets the compiler
 * strips from cfgs (auth_token, headers...). */
static const char *graphql_str(struct graphql *g, const char *key, const char *def)
{
	char num[32];
	const char *v = cfg_conn(g->cfg, key, num, sizeof(num));

	return v != NULL && v != num ? v : def;
}

static int graphql_auth(struct graphql *g)
{
	const char *type = graphql_str(g, "auth_type", "none"), *tok = graphql_str(g, "auth_token", NULL);
	const char *user = graphql_str(g, "auth_username", NULL),
	           *hname = graphql_str(g, "auth_header_name", "X-API-Key");
	char *h;

	if (tok == NULL)
		tok = graphql_str(g, "token", graphql_str(g, "api_key", graphql_str(g, "password", NULL)));
	if (strcmp(type, "none") == 0)
		return 0;
	if (tok == NULL)
		return ctx_fail(g->ctx, "ConfigError", "auth_type '%s' needs auth_token (from the connection)", type);
	if (strcmp(type, "bearer") == 0) {
		xasprintf(&h, "Authorization: Bearer %s", tok);
	} else if (strcmp(type, "api_key") == 0) {
		xasprintf(&h, "%s: %s", hname, tok);
	} else if (strcmp(type, "basic") == 0) {
		httpc_basic(g->http, user != NULL ? user : graphql_str(g, "username", ""), tok);
		return 0;
	} else {
		return ctx_fail(g->ctx, "ConfigError", "'auth_type' must be none, bearer, basic or api_key");
	}
	httpc_header(g->http, h);
	explicit_bzero(h, strlen(h));
	free(h);
	return 0;
}

static int graphql_headers(struct graphql *g)
{
	const json_t *rc = json_object_get(g->cfg, "resolved_connection"), *hs, *v;
	const char *k;
	char *h;
	int pass;

	httpc_header(g->http, "Content-Type: application/json");
	httpc_header(g->http, "Accept: application/json");
	for (pass = 0; pass < 2; pass++) {
		hs = json_object_get(pass == 0 ? g->cfg : rc, "headers");
		if (hs != NULL && !json_is_object(hs))
			return ctx_fail(g->ctx, "ConfigError", "'headers' must be an object of strings");
		json_object_foreach((json_t *)hs, k, v)
		{
			if (!json_is_string(v) || strpbrk(k, ":\r\n") || strpbrk(json_string_value(v), "\r\n"))
				return ctx_fail(g->ctx, "ConfigError", "header '%s' is not a valid header",
				                log_esc(k, 64));
			xasprintf(&h, "%s: %s", k, json_string_value(v));
			httpc_header(g->http, h);
			free(h);
		}
	}
	return graphql_auth(g);
}

static int graphql_config(struct graphql *g)
{
	const json_t *v;
	int rc;

	g->timeout = 30;
	g->retries = 3;
	g->delay = 1.0;
	g->flatten = g->verify = 1;
	g->page_path = "data.pageInfo";
	g->cursor_field = "endCursor";
	g->next_field = "hasNextPage";
	g->var_name = "after";
	g->data_path = "data";
	g->endpoint = graphql_str(g, "endpoint", graphql_str(g, "url", NULL));
	if ((rc = cfg_str(g->ctx, g->cfg, "query", &g->query)) != 0)
		return rc < 0 ? -1 : ctx_fail(g->ctx, "ConfigError", "'query' is required");
	if (g->endpoint == NULL)
		return ctx_fail(g->ctx, "ConfigError", "'endpoint' is required (in the cfg or the connection)");
	if (cfg_int(g->ctx, g->cfg, "timeout", &g->timeout) < 0 ||
	    cfg_int(g->ctx, g->cfg, "max_retries", &g->retries) < 0 ||
	    cfg_int(g->ctx, g->cfg, "max_pages", &g->max_pages) < 0 ||
	    cfg_bool(g->ctx, g->cfg, "pagination_enabled", &g->paginate) < 0 ||
	    cfg_bool(g->ctx, g->cfg, "flatten_result", &g->flatten) < 0 ||
	    cfg_bool(g->ctx, g->cfg, "validate_ssl", &g->verify) < 0 ||
	    cfg_str(g->ctx, g->cfg, "pagination_path", &g->page_path) < 0 ||
	    cfg_str(g->ctx, g->cfg, "pagination_cursor_field", &g->cursor_field) < 0 ||
	    cfg_str(g->ctx, g->cfg, "pagination_has_next_field", &g->next_field) < 0 ||
	    cfg_str(g->ctx, g->cfg, "pagination_variable_name", &g->var_name) < 0 ||
	    cfg_str(g->ctx, g->cfg, "data_path", &g->data_path) < 0)
		return -1;
	if ((v = json_object_get(g->cfg, "retry_delay")) != NULL && json_is_number(v))
		g->delay = json_number_value(v);
	v = json_object_get(g->cfg, "variables");
	if (v != NULL && !json_is_null(v) && !json_is_object(v))
		return ctx_fail(g->ctx, "ConfigError", "'variables' must be an object");
	g->vars = json_is_object(v) ? json_deep_copy(v) : json_object();
	if (g->timeout < 1 || g->retries < 0 || g->retries > 100 || g->max_pages < 0)
		return ctx_fail(g->ctx, "ConfigError", "'timeout' >= 1, 'max_retries' 0..100, 'max_pages' >= 0");
	return 0;
}

/* "data.items.edges" ("$." allowed) in v; NULL when absent. */
static json_t *graphql_path(json_t *v, const char *path)
{
	char key[256];
	const char *p = path, *dot;
	size_t n;

	if (strncmp(p, "$.", 2) == 0)
		p += 2;
	while (*p != '\0' && v != NULL) {
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		p += n + (dot != NULL);
	}
	return v;
}

/* One POST. 0: body holds a 2xx answer; 1: retryable (429, 5xx, network);
 * -1: final error (ctx->error set). */
static int graphql_post(struct graphql *g, const char *payload)
{
	long status = 0;
	char err[256];
	int rc;

	buf_reset(&g->body);
	g->requests++;
	rc = httpc_post(g->http, payload, &g->body, GRAPHQL_BODY_MAX, &status, err, sizeof(err));
	if (ctx_cancelled(g->ctx))
		return ctx_fail(g->ctx, "Cancelled", "cancelled");
	if (rc != 0) {
		ctx_fail(g->ctx, "ConnectionError", "graphql: %s: %s", log_esc(g->endpoint, 200), err);
		return rc;
	}
	if (status >= 200 && status < 300)
		return 0;
	buf_addc(&g->body, '\0');
	ctx_fail(g->ctx, "HTTPError", "graphql: %s: HTTP %ld: %s", log_esc(g->endpoint, 200), status,
	         log_esc((const char *)g->body.data, 200));
	return status == 429 || status >= 500 ? 1 : -1;
}

static json_t *graphql_fetch(struct graphql *g)
{
	json_t *req = json_pack("{s:s,s:O}", "query", g->query, "variables", g->vars), *resp;
	char *payload = json_dumps(req, JSON_COMPACT);
	json_error_t je;
	int64_t attempt;
	int rc = -1;

	json_decref(req);
	for (attempt = 0; attempt <= g->retries; attempt++) {
		if (attempt > 0) {
			ctx_log(g->ctx, LOG_LVL_WARN, "request %lld failed (%s); retry %lld of %lld",
			        (long long)g->requests, g->ctx->error, (long long)attempt, (long long)g->retries);
			usleep((useconds_t)(g->delay * 1e6 * (double)(1 << (attempt - 1 < 10 ? attempt - 1 : 10))));
		}
		if ((rc = graphql_post(g, payload)) <= 0)
			break;
	}
	free(payload);
	if (rc != 0)
		return NULL;
	if ((resp = json_loadb((const char *)g->body.data, g->body.len, 0, &je)) == NULL || !json_is_object(resp)) {
		json_decref(resp);
		ctx_fail(g->ctx, "GraphQLError", "graphql: the response is not a JSON object: %s",
		         log_esc(je.text, 120));
		return NULL;
	}
	return resp;
}

static const char *graphql_text(struct table *t, json_t *v, size_t *len);

/* Value v for column `name` of the current row; a name the row already
 * has (a literal "a.b" and a flattened a.b) keeps the last value, as a
 * JSON object would. */
static int graphql_put(struct graphql *g, const char *name, json_t *v)
{
	json_t *ix = json_object_get(g->colidx, name);
	struct column *c;
	const char *s = NULL;
	size_t col, len = 0, r;

	if (ix == NULL) {
		if (g->t->ncols >= GRAPHQL_MAX_COLS)
			return ctx_fail(g->ctx, "GraphQLError", "more than %d columns", GRAPHQL_MAX_COLS);
		col = table_add_column(g->t, name, strlen(name));
		json_object_set_new(g->colidx, name, json_integer((json_int_t)col));
		for (r = 0; r < g->nrows; r++)
			table_push(g->t, col, NULL, 0);
	} else {
		col = (size_t)json_integer_value(ix);
	}
	if (v != NULL && !json_is_null(v))
		s = graphql_text(g->t, v, &len);
	c = &g->t->cols[col];
	if (c->n == g->nrows) {
		table_push(g->t, col, s, len);
		return 0;
	}
	c->v[g->nrows].s = s;
	c->v[g->nrows].len = (uint32_t)len;
	if (s != NULL)
		c->nulls[g->nrows / 64] &= ~((uint64_t)1 << (g->nrows % 64));
	else
		c->nulls[g->nrows / 64] |= (uint64_t)1 << (g->nrows % 64);
	return 0;
}

/* pandas.json_normalize: nested objects become "a.b" columns. g->name
 * holds the prefix (without its NUL) on entry and on return. */
static int graphql_flatten(struct graphql *g, json_t *v, unsigned depth)
{
	size_t plen = g->name.len;
	const char *k;
	json_t *c;

	json_object_foreach(v, k, c)
	{
		g->name.len = plen;
		if (plen > 0)
			buf_add(&g->name, ".", 1);
		buf_add(&g->name, k, strlen(k));
		if (g->flatten && json_is_object(c) && depth < 32) {
			if (graphql_flatten(g, c, depth + 1) < 0)
				return -1;
			continue;
		}
		buf_add(&g->name, "", 1);
		if (graphql_put(g, (const char *)g->name.data, c) < 0)
			return -1;
	}
	g->name.len = plen;
	return 0;
}

/* One row: an object flattened, anything else as column "value". */
static int graphql_row(struct graphql *g, json_t *row)
{
	size_t i;
	int rc;

	g->name.len = 0;
	rc = json_is_object(row) ? graphql_flatten(g, row, 0) : graphql_put(g, "value", row);
	if (rc < 0)
		return -1;
	for (i = 0; i < g->t->ncols; i++)
		if (g->t->cols[i].n == g->nrows)
			table_push(g->t, i, NULL, 0);
	g->nrows++;
	return 0;
}

static int graphql_collect(struct graphql *g, json_t *resp)
{
	json_t *data = graphql_path(resp, g->data_path), *row;
	size_t i;

	if (data == NULL || json_is_null(data))
		return 0;
	if (json_is_object(data))
		return graphql_row(g, data);
	if (!json_is_array(data))
		return ctx_fail(g->ctx, "GraphQLError", "data_path '%s' is not an object or a list",
		                log_esc(g->data_path, 80));
	json_array_foreach(data, i, row) if (graphql_row(g, row) < 0) return -1;
	return 0;
}

/* The server's errors: the first message, and how many there were. */
static int graphql_errors(struct graphql *g, json_t *resp)
{
	json_t *errs = json_object_get(resp, "errors");
	const char *msg;

	if (errs == NULL || json_is_null(errs) || (json_is_array(errs) && json_array_size(errs) == 0))
		return 0;
	msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
	return ctx_fail(g->ctx, "GraphQLError", "graphql: the server answered with %zu error(s): %s",
	                json_is_array(errs) ? json_array_size(errs) : 1, msg ? log_esc(msg, 400) : "(no message)");
}

static int graphql_pages(struct graphql *g)
{
	json_t *resp, *pi, *next, *cursor;
	int more = 1, rc = 0;

	while (more && rc == 0) {
		if ((resp = graphql_fetch(g)) == NULL)
			return -1;
		rc = graphql_errors(g, resp);
		if (rc == 0)
			rc = graphql_collect(g, resp);
		g->pages++;
		more = 0;
		if (rc == 0 && g->paginate && (g->max_pages == 0 || g->pages < g->max_pages)) {
			pi = graphql_path(resp, g->page_path);
			next = json_object_get(pi, g->next_field);
			cursor = json_object_get(pi, g->cursor_field);
			if (json_is_true(next) && cursor != NULL && !json_is_null(cursor)) {
				json_object_set(g->vars, g->var_name, cursor);
				more = 1;
			}
		}
		json_decref(resp);
	}
	return rc;
}

static const char *graphql_text(struct table *t, json_t *v, size_t *len)
{
	char num[32], *s;
	const char *out;

	if (json_is_string(v)) {
		*len = json_string_length(v);
		return table_strdup(t, json_string_value(v), *len);
	}
	if (json_is_integer(v))
		*len = canon_fmt_int(json_integer_value(v), num);
	else if (json_is_real(v))
		*len = canon_fmt_double(json_real_value(v), num);
	else if (json_is_boolean(v))
		*len = (size_t)snprintf(num, sizeof(num), "%s", json_is_true(v) ? "true" : "false");
	else {
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		*len = strlen(s);
		out = table_strdup(t, s, *len);
		free(s);
		return out;
	}
	return table_strdup(t, num, *len);
}

static int graphql_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                       size_t ninputs, struct table **output)
{
	struct graphql g;
	int rc = -1;

	(void)inputs;
	(void)input_names;
	(void)ninputs;
	memset(&g, 0, sizeof(g));
	g.ctx = ctx;
	g.cfg = cfg;
	g.t = table_new(0);
	g.colidx = json_object();
	buf_init(&g.body);
	buf_init(&g.name);
	if (graphql_config(&g) < 0)
		goto out;
	if ((g.http = httpc_new(ctx, g.endpoint, g.timeout, g.verify)) == NULL) {
		ctx_fail(ctx, "DriverError", "graphql: cannot set up an HTTP client");
		goto out;
	}
	if (graphql_headers(&g) < 0)
		goto out;
	if (graphql_pages(&g) == 0) {
		table_finish(g.t);
		*output = g.t;
		g.t = NULL;
		rc = 0;
		ctx->rows_read = (int64_t)(*output)->nrows;
		ctx_log(ctx, LOG_LVL_INFO, "read %zu rows in %lld pages, %lld requests", (*output)->nrows,
		        (long long)g.pages, (long long)g.requests);
	}
	ctx_metric(ctx, "requests_made", (double)g.requests);
	ctx_metric(ctx, "pages_fetched", (double)g.pages);
out:
	httpc_free(g.http);
	json_decref(g.vars);
	table_free(g.t);
	json_decref(g.colidx);
	buf_free(&g.body);
	buf_free(&g.name);
	return rc;
}

const struct driver_ops driver_graphql_extractor = {
    .name = "graphql.extractor",
    .run = graphql_run,
    .keys = graphql_extractor_keys,
};
