/*
 * e2b_api.c: the E2B client and its control plane (https://api.<domain>,
 * REST + JSON, X-API-Key): configuration as the official SDKs read it, the
 * API key file, and create / list / get / kill / timeout / connect.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "osirisd.h"

#define E2B_DEFAULT_DOMAIN "e2b.app"
#define E2B_DEFAULT_TEMPLATE "base"
#define E2B_DEFAULT_SANDBOX_TIMEOUT_S 300 /* the SDKs' default */
#define E2B_DEFAULT_REQUEST_TIMEOUT_MS 60000
#define E2B_DEFAULT_MAX_RETRIES 4
#define E2B_DEFAULT_RETRY_BASE_MS 200
#define E2B_KEY_FILE_MAX 4096
#define E2B_LIST_PAGE 100

struct e2b_client {
	struct event_base *base;
	struct e2b_http *http;
	struct e2b_settings s;
};

/* ---- configuration ----------------------------------------------------- */

static const char *e2b_pick(const char *given, const char *env)
{
	const char *v;

	if (given != NULL && *given != '\0')
		return given;
	v = getenv(env);
	return v != NULL && *v != '\0' ? v : NULL;
}

/* The SDKs check ^e2b_[0-9a-f]+$ unless E2B_VALIDATE_API_KEY=false. */
static int e2b_key_valid(const char *key)
{
	const char *p;
	const char *skip = getenv("E2B_VALIDATE_API_KEY");

	if (skip != NULL && strcmp(skip, "false") == 0)
		return 1;
	if (strncmp(key, "e2b_", 4) != 0 || key[4] == '\0')
		return 0;
	for (p = key + 4; *p; p++)
		if (!isdigit((unsigned char)*p) && (*p < 'a' || *p > 'f'))
			return 0;
	return 1;
}

static char *e2b_url_dup(const char *url, const char *what, char *err, size_t errlen)
{
	size_t n = strlen(url);

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "%s %s: not an http:// or https:// URL", what, log_esc(url, 200));
		return NULL;
	}
	while (n > 0 && url[n - 1] == '/')
		n--;
	return xstrndup(url, n);
}

int e2b_settings_resolve(const struct e2b_config *cfg, struct e2b_settings *out, char *err, size_t errlen)
{
	const char *key = e2b_pick(cfg->api_key, "E2B_API_KEY");
	const char *dom = e2b_pick(cfg->domain, "E2B_DOMAIN");
	const char *api = e2b_pick(cfg->api_url, "E2B_API_URL");
	const char *sbx = e2b_pick(cfg->sandbox_url, "E2B_SANDBOX_URL");

	memset(out, 0, sizeof(*out));
	if (key == NULL) {
		snprintf(err, errlen, "no E2B API key: set e2b.api_key_file or E2B_API_KEY");
		return -1;
	}
	if (!e2b_key_valid(key)) {
		snprintf(err, errlen,
		         "the E2B API key is not of the form e2b_<hex> (E2B_VALIDATE_API_KEY=false skips this)");
		return -1;
	}
	out->api_key = xstrdup(key);
	out->domain = xstrdup(dom != NULL ? dom : E2B_DEFAULT_DOMAIN);
	if (api != NULL)
		out->api_url = e2b_url_dup(api, "E2B API URL", err, errlen);
	else
		xasprintf(&out->api_url, "https://api.%s", out->domain);
	if (out->api_url == NULL ||
	    (sbx != NULL && (out->sandbox_url = e2b_url_dup(sbx, "E2B sandbox URL", err, errlen)) == NULL)) {
		e2b_settings_free(out);
		return -1;
	}
	out->ca_file = cfg->ca_file != NULL ? xstrdup(cfg->ca_file) : NULL;
	out->request_timeout_ms =
	    cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : E2B_DEFAULT_REQUEST_TIMEOUT_MS;
	out->max_retries = cfg->max_retries > 0 ? cfg->max_retries : E2B_DEFAULT_MAX_RETRIES;
	out->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : E2B_DEFAULT_RETRY_BASE_MS;
	return 0;
}

void e2b_settings_free(struct e2b_settings *s)
{
	if (s->api_key != NULL)
		explicit_bzero(s->api_key, strlen(s->api_key));
	free(s->api_key);
	free(s->domain);
	free(s->api_url);
	free(s->sandbox_url);
	free(s->ca_file);
	memset(s, 0, sizeof(*s));
}

static int e2b_key_file_check(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: owned by uid %u, not by the daemon's uid %u", path, (unsigned)st.st_uid,
		         (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "%s: mode %04o lets group or others at the API key (chmod 600 it)", path,
		         (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (st.st_size > E2B_KEY_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes, not an API key", path, E2B_KEY_FILE_MAX);
		return -1;
	}
	return 0;
}

char *e2b_client_load_key_file(const char *path, char *err, size_t errlen)
{
	char buf[E2B_KEY_FILE_MAX + 1], *key = NULL;
	size_t len = 0, start = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (e2b_key_file_check(fd, path, err, errlen) == 0) {
		while (len < E2B_KEY_FILE_MAX && (n = read(fd, buf + len, E2B_KEY_FILE_MAX - len)) > 0)
			len += (size_t)n;
		while (len > 0 && isspace((unsigned char)buf[len - 1]))
			len--;
		while (start < len && isspace((unsigned char)buf[start]))
			start++;
		if (start == len)
			snprintf(err, errlen, "%s: empty", path);
		else
			key = xstrndup(buf + start, len - start);
		explicit_bzero(buf, sizeof(buf));
	}
	close(fd);
	return key;
}

/* ---- the client -------------------------------------------------------- */

struct e2b_client *e2b_client_new(struct event_base *base, const struct e2b_config *cfg, char *err, size_t errlen)
{
	struct e2b_client *c = xcalloc(1, sizeof(*c));

	c->base = base;
	if (e2b_settings_resolve(cfg, &c->s, err, errlen) != 0 ||
	    (c->http = e2b_http_new(base, c->s.ca_file, err, errlen)) == NULL) {
		e2b_settings_free(&c->s);
		free(c);
		return NULL;
	}
	e2b_http_add_secret(c->http, c->s.api_key);
	log_info("e2b: api=%s envd=%s%s", c->s.api_url, c->s.sandbox_url ? c->s.sandbox_url : "https://49983-<id>.",
	         c->s.sandbox_url ? "" : c->s.domain);
	return c;
}

void e2b_client_free(struct e2b_client *c)
{
	if (c == NULL)
		return;
	e2b_proc_close_all(c);
	e2b_call_cancel_all(c);
	e2b_http_free(c->http);
	e2b_settings_free(&c->s);
	free(c);
}

const struct e2b_settings *e2b_client_settings(const struct e2b_client *c)
{
	return &c->s;
}

struct e2b_http *e2b_client_http(const struct e2b_client *c)
{
	return c->http;
}

struct event_base *e2b_client_base(const struct e2b_client *c)
{
	return c->base;
}

/* ---- sandboxes --------------------------------------------------------- */

int e2b_sandbox_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!isdigit((unsigned char)id[i]) && (id[i] < 'a' || id[i] > 'z'))
			return 0;
	return i > 0 && i < sizeof(((struct e2b_sandbox *)0)->id);
}

void e2b_sandbox_clear(struct e2b_sandbox *s)
{
	if (s->access_token != NULL)
		explicit_bzero(s->access_token, strlen(s->access_token));
	free(s->access_token);
	free(s->domain);
	kvlist_free(&s->metadata);
	memset(s, 0, sizeof(*s));
}

void e2b_sandbox_copy(struct e2b_sandbox *dst, const struct e2b_sandbox *src)
{
	size_t i;

	*dst = *src;
	dst->access_token = src->access_token ? xstrdup(src->access_token) : NULL;
	dst->domain = src->domain ? xstrdup(src->domain) : NULL;
	memset(&dst->metadata, 0, sizeof(dst->metadata));
	for (i = 0; i < src->metadata.n; i++)
		kvlist_add(&dst->metadata, src->metadata.v[i].key, src->metadata.v[i].value);
}

static void e2b_json_str(json_t *j, const char *key, char *out, size_t outlen)
{
	json_t *v = json_object_get(j, key);

	snprintf(out, outlen, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int64_t e2b_json_time(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	int64_t ms = 0;

	if (!json_is_string(v) || time_parse_iso8601(json_string_value(v), &ms) != 0)
		return 0;
	return ms;
}

/* Sandbox, SandboxDetail and ListedSandbox share these fields. */
static int e2b_sandbox_from_json(json_t *j, struct e2b_sandbox *s)
{
	json_t *v;
	const char *k;

	memset(s, 0, sizeof(*s));
	v = json_object_get(j, "sandboxID");
	if (!json_is_string(v) || !e2b_sandbox_id_valid(json_string_value(v)))
		return -1;
	snprintf(s->id, sizeof(s->id), "%s", json_string_value(v));
	e2b_json_str(j, "templateID", s->template_id, sizeof(s->template_id));
	e2b_json_str(j, "envdVersion", s->envd_version, sizeof(s->envd_version));
	e2b_json_str(j, "state", s->state, sizeof(s->state));
	if (json_is_string(v = json_object_get(j, "envdAccessToken")))
		s->access_token = xstrdup(json_string_value(v));
	if (json_is_string(v = json_object_get(j, "domain")) && json_string_length(v) > 0)
		s->domain = xstrdup(json_string_value(v));
	s->started_ms = e2b_json_time(j, "startedAt");
	s->end_ms = e2b_json_time(j, "endAt");
	json_object_foreach(json_object_get(j, "metadata"), k, v)
	{
		if (json_is_string(v))
			kvlist_add(&s->metadata, k, json_string_value(v));
	}
	return 0;
}

/* ---- one control-plane call -------------------------------------------- */

struct e2b_api_op {
	struct e2b_client *c;
	const char *method;
	char *url;
	char *body; /* JSON, or NULL */
	e2b_sandbox_cb sbx_cb;
	e2b_done_cb done_cb;
	e2b_list_cb list_cb;
	void *arg;
	/* list: pages collected so far */
	struct e2b_sandbox *v;
	size_t n;
	char *next_token;
};

static void e2b_api_op_free(void *arg)
{
	struct e2b_api_op *op = arg;
	size_t i;

	for (i = 0; i < op->n; i++)
		e2b_sandbox_clear(&op->v[i]);
	free(op->v);
	free(op->url);
	free(op->body);
	free(op->next_token);
	free(op);
}

static struct e2b_http_req *e2b_api_build(struct e2b_call *call, void *arg)
{
	struct e2b_api_op *op = arg;
	struct e2b_http_req *r;
	char *url = NULL, *tok;

	(void)call;
	if (op->next_token != NULL) {
		tok = e2b_url_escape(op->next_token);
		xasprintf(&url, "%s&nextToken=%s", op->url, tok);
		free(tok);
	}
	r = e2b_http_req_new(op->c->http, op->method, url != NULL ? url : op->url);
	free(url);
	e2b_http_req_header(r, "X-API-Key", op->c->s.api_key, 1);
	if (op->body != NULL) {
		e2b_http_req_header(r, "Content-Type", "application/json", 0);
		e2b_http_req_body(r, op->body, strlen(op->body));
	}
	e2b_http_req_timeout(r, op->c->s.request_timeout_ms, 0);
	return r;
}

static struct e2b_api_op *e2b_api_op_new(struct e2b_client *c, const char *method, void *arg, const char *fmt, ...)
    PRINTFLIKE(4, 5);

static struct e2b_api_op *e2b_api_op_new(struct e2b_client *c, const char *method, void *arg, const char *fmt, ...)
{
	struct e2b_api_op *op = xcalloc(1, sizeof(*op));
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&op->url, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	op->c = c;
	op->method = method;
	op->arg = arg;
	return op;
}

/* A 2xx whose body must be a Sandbox object. */
static void e2b_api_sandbox_finish(struct e2b_call *call, void *arg, const struct e2b_http_result *res,
                                   const struct e2b_error *err)
{
	struct e2b_api_op *op = arg;
	struct e2b_sandbox s;
	struct e2b_error bad;
	json_t *j;

	(void)call;
	if (err != NULL) {
		op->sbx_cb(err, NULL, op->arg);
		return;
	}
	j = json_loadb((const char *)res->body, res->body_len, 0, NULL);
	if (!json_is_object(j) || e2b_sandbox_from_json(j, &s) != 0) {
		e2b_error_set(&bad, res->status, "internal", "malformed sandbox in the answer");
		op->sbx_cb(&bad, NULL, op->arg);
	} else {
		op->sbx_cb(NULL, &s, op->arg);
		e2b_sandbox_clear(&s);
	}
	json_decref(j);
}

static void e2b_api_done_finish(struct e2b_call *call, void *arg, const struct e2b_http_result *res,
                                const struct e2b_error *err)
{
	struct e2b_api_op *op = arg;

	(void)call;
	(void)res;
	op->done_cb(err, op->arg);
}

/* DELETE: a sandbox that is already gone is what the caller wanted. */
static void e2b_api_kill_finish(struct e2b_call *call, void *arg, const struct e2b_http_result *res,
                                const struct e2b_error *err)
{
	struct e2b_api_op *op = arg;

	(void)call;
	(void)res;
	op->done_cb(err != NULL && err->http_status == 404 ? NULL : err, op->arg);
}

static const struct e2b_call_ops e2b_api_create_ops = {"create", E2B_RETRY_CREATE, e2b_api_build,
                                                       e2b_api_sandbox_finish, e2b_api_op_free};
static const struct e2b_call_ops e2b_api_get_ops = {"get", E2B_RETRY_IDEMPOTENT, e2b_api_build, e2b_api_sandbox_finish,
                                                    e2b_api_op_free};
static const struct e2b_call_ops e2b_api_connect_ops = {"connect", E2B_RETRY_IDEMPOTENT, e2b_api_build,
                                                        e2b_api_sandbox_finish, e2b_api_op_free};
static const struct e2b_call_ops e2b_api_kill_ops = {"kill", E2B_RETRY_IDEMPOTENT, e2b_api_build, e2b_api_kill_finish,
                                                     e2b_api_op_free};
static const struct e2b_call_ops e2b_api_timeout_ops = {"timeout", E2B_RETRY_IDEMPOTENT, e2b_api_build,
                                                        e2b_api_done_finish, e2b_api_op_free};

static json_t *e2b_kvlist_json(const struct kvlist *l)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; l != NULL && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

static char *e2b_json_dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (s == NULL)
		fatalx("e2b: cannot encode a request");
	return s;
}

struct e2b_call *e2b_sandbox_create(struct e2b_client *c, const struct e2b_create_opts *o, e2b_sandbox_cb cb, void *arg)
{
	struct e2b_api_op *op = e2b_api_op_new(c, "POST", arg, "%s/sandboxes", c->s.api_url);

	op->sbx_cb = cb;
	/* secure: envd then wants the access token the answer carries. */
	op->body = e2b_json_dump(json_pack("{s:s,s:i,s:b,s:o}", "templateID",
	                                   o->template_id != NULL ? o->template_id : E2B_DEFAULT_TEMPLATE, "timeout",
	                                   o->timeout_s > 0 ? o->timeout_s : E2B_DEFAULT_SANDBOX_TIMEOUT_S, "secure", 1,
	                                   "metadata", e2b_kvlist_json(o->metadata)));
	return e2b_call_start(c, &e2b_api_create_ops, op);
}

/* An id that is not [a-z0-9]+ never goes into a URL: the call fails (on the
 * loop, like any other error) instead. */
static struct e2b_call *e2b_api_call(struct e2b_client *c, const char *id, const struct e2b_call_ops *ops,
                                     struct e2b_api_op *op)
{
	if (id == NULL || !e2b_sandbox_id_valid(id))
		return e2b_call_fail(c, ops, op, "invalid sandbox id %s", id ? log_esc(id, 64) : "(null)");
	return e2b_call_start(c, ops, op);
}

struct e2b_call *e2b_sandbox_get(struct e2b_client *c, const char *id, e2b_sandbox_cb cb, void *arg)
{
	struct e2b_api_op *op = e2b_api_op_new(c, "GET", arg, "%s/sandboxes/%s", c->s.api_url, id ? id : "");

	op->sbx_cb = cb;
	return e2b_api_call(c, id, &e2b_api_get_ops, op);
}

struct e2b_call *e2b_sandbox_kill(struct e2b_client *c, const char *id, e2b_done_cb cb, void *arg)
{
	struct e2b_api_op *op = e2b_api_op_new(c, "DELETE", arg, "%s/sandboxes/%s", c->s.api_url, id ? id : "");

	op->done_cb = cb;
	return e2b_api_call(c, id, &e2b_api_kill_ops, op);
}

struct e2b_call *e2b_sandbox_set_timeout(struct e2b_client *c, const char *id, int timeout_s, e2b_done_cb cb, void *arg)
{
	struct e2b_api_op *op = e2b_api_op_new(c, "POST", arg, "%s/sandboxes/%s/timeout", c->s.api_url, id ? id : "");

	op->done_cb = cb;
	op->body = e2b_json_dump(json_pack("{s:i}", "timeout", timeout_s));
	return e2b_api_call(c, id, &e2b_api_timeout_ops, op);
}

struct e2b_call *e2b_sandbox_connect(struct e2b_client *c, const char *id, int timeout_s, e2b_sandbox_cb cb, void *arg)
{
	struct e2b_api_op *op = e2b_api_op_new(c, "POST", arg, "%s/sandboxes/%s/connect", c->s.api_url, id ? id : "");

	op->sbx_cb = cb;
	op->body = e2b_json_dump(json_pack("{s:i}", "timeout", timeout_s));
	return e2b_api_call(c, id, &e2b_api_connect_ops, op);
}

/* ---- list, all pages ----------------------------------------------------- */

static int e2b_api_list_page(struct e2b_api_op *op, const struct e2b_http_result *res, struct e2b_error *e)
{
	json_t *j = json_loadb((const char *)res->body, res->body_len, 0, NULL), *item;
	size_t i;

	if (!json_is_array(j)) {
		e2b_error_set(e, res->status, "internal", "malformed sandbox list in the answer");
		json_decref(j);
		return -1;
	}
	if (json_array_size(j) > E2B_LIST_MAX - op->n) {
		e2b_error_set(e, res->status, "resource_exhausted", "more than %d sandboxes listed", E2B_LIST_MAX);
		json_decref(j);
		return -1;
	}
	op->v = xreallocarray(op->v, op->n + json_array_size(j) + 1, sizeof(*op->v));
	json_array_foreach(j, i, item)
	{
		if (json_is_object(item) && e2b_sandbox_from_json(item, &op->v[op->n]) == 0)
			op->n++;
	}
	json_decref(j);
	return 0;
}

static void e2b_api_list_finish(struct e2b_call *call, void *arg, const struct e2b_http_result *res,
                                const struct e2b_error *err)
{
	struct e2b_api_op *op = arg;
	struct e2b_error e;
	size_t before = op->n;

	if (err != NULL) {
		op->list_cb(err, NULL, 0, op->arg);
		return;
	}
	if (e2b_api_list_page(op, res, &e) != 0) {
		op->list_cb(&e, NULL, 0, op->arg);
		return;
	}
	free(op->next_token);
	op->next_token = NULL;
	if (res->next_token != NULL && op->n > before) {
		op->next_token = xstrdup(res->next_token);
		e2b_call_continue(call);
		return;
	}
	op->list_cb(NULL, op->v, op->n, op->arg);
}

static const struct e2b_call_ops e2b_api_list_ops = {"list", E2B_RETRY_IDEMPOTENT, e2b_api_build, e2b_api_list_finish,
                                                     e2b_api_op_free};

/* metadata=<escape(escape(k)=escape(v)&...)>, as the JS SDK builds it. */
static char *e2b_api_metadata_query(const struct kvlist *md)
{
	struct buf b;
	char *k, *v, *out;
	size_t i;

	buf_init(&b);
	for (i = 0; md != NULL && i < md->n; i++) {
		k = e2b_url_escape(md->v[i].key);
		v = e2b_url_escape(md->v[i].value);
		buf_printf(&b, "%s%s=%s", i ? "&" : "", k, v);
		free(k);
		free(v);
	}
	out = e2b_url_escape(buf_cstr(&b));
	buf_free(&b);
	return out;
}

struct e2b_call *e2b_sandbox_list(struct e2b_client *c, const struct kvlist *metadata, e2b_list_cb cb, void *arg)
{
	char *md = e2b_api_metadata_query(metadata);
	struct e2b_api_op *op = e2b_api_op_new(c, "GET", arg, "%s/v2/sandboxes?state=running,paused&limit=%d%s%s",
	                                       c->s.api_url, E2B_LIST_PAGE, *md ? "&metadata=" : "", md);

	free(md);
	op->list_cb = cb;
	return e2b_call_start(c, &e2b_api_list_ops, op);
}
