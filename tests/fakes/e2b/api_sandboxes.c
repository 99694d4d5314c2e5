/*
 * api_sandboxes.c: the E2B control plane (api.e2b.app, spec/openapi.yml):
 * sandbox create/list/info/kill/timeout/refreshes/connect with the status
 * codes and {"code":<int>,"message":...} bodies of E2B's API handlers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "emulator.h"

#define API_LIST_LIMIT_MAX 100

/* A create waiting out --create-delay-ms (the cold start). */
struct api_pending_create {
	struct evhttp_request *req;
	struct event *ev;
	char *template_id;
	int timeout_s;
	int secure;
	json_t *metadata;
	json_t *env_vars;
};

static void api_not_found(struct evhttp_request *req, const char *id)
{
	emu_reply_api_error(req, 404, "Sandbox \"%s\" doesn't exist or you don't have access to it", id);
}

/* NewSandbox response (Sandbox schema). */
static json_t *api_sandbox_json(struct sandbox *sbx)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:n,s:n}", "templateID", sbx->template_id, "alias",
	                      sbx->template_id, "sandboxID", sbx->id, "clientID", EMU_CLIENT_ID, "envdVersion",
	                      EMU_ENVD_VERSION, "trafficAccessToken", "domain");

	if (sbx->access_token != NULL)
		json_object_set_new(j, "envdAccessToken", json_string(sbx->access_token));
	return j;
}

/* ListedSandbox; with detail=1 the SandboxDetail extras. */
static json_t *api_listed_json(struct sandbox *sbx, int detail)
{
	char started[40], end[40];
	json_t *j;

	emu_iso8601(sbx->started_ms, started, sizeof(started));
	emu_iso8601(sbx->end_ms, end, sizeof(end));
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:O,s:s,s:s,s:[]}", "templateID", sbx->template_id, "alias",
	              sbx->template_id, "sandboxID", sbx->id, "clientID", EMU_CLIENT_ID, "startedAt", started, "endAt",
	              end, "cpuCount", 2, "memoryMB", 512, "diskSizeMB", 10240, "metadata", sbx->metadata, "state",
	              "running", "envdVersion", EMU_ENVD_VERSION, "volumeMounts");
	if (detail) {
		if (sbx->access_token != NULL)
			json_object_set_new(j, "envdAccessToken", json_string(sbx->access_token));
		json_object_set_new(j, "domain", json_null());
		json_object_set_new(j, "allowInternetAccess", json_true());
		json_object_set_new(j, "lifecycle", json_pack("{s:b,s:s}", "autoResume", 0, "onTimeout", "kill"));
	}
	return j;
}

static int api_string_map(json_t *j)
{
	const char *k;
	json_t *v;

	if (!json_is_object(j))
		return 0;
	json_object_foreach(j, k, v) if (!json_is_string(v)) return 0;
	return 1;
}

static void api_create_finish(struct api_pending_create *pc)
{
	struct sandbox *sbx;

	if (emu.nsandboxes >= EMU_MAX_SANDBOXES) {
		emu_reply_api_error(
		    pc->req, 429,
		    "you have reached the maximum number of concurrent E2B sandboxes (%d). If you need more, please "
		    "visit 'https://e2b.dev/docs/billing'",
		    EMU_MAX_SANDBOXES);
	} else if ((sbx = sandbox_create(pc->template_id, pc->timeout_s, pc->secure, pc->metadata, pc->env_vars)) ==
	           NULL) {
		emu_reply_json(pc->req, 500,
		               json_pack("{s:i,s:s,s:s}", "code", 500, "message", "Failed to create sandbox",
		                         "error_code", "sandbox_create_failed"));
	} else
		emu_reply_json(pc->req, 201, api_sandbox_json(sbx));
	if (pc->ev != NULL)
		event_free(pc->ev);
	free(pc->template_id);
	json_decref(pc->metadata);
	json_decref(pc->env_vars);
	free(pc);
}

static void api_create_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	api_create_finish(arg);
}

/* POST /sandboxes and POST /v2/sandboxes. The SDK 2.x never sends `secure`
 * and expects an access token: the v2 route defaults it to true. */
static void api_sandboxes_create(struct evhttp_request *req, int v2)
{
	struct api_pending_create *pc;
	json_t *body, *tmpl, *tmo, *sec;
	char err[256];
	json_int_t timeout = 15;

	if ((body = emu_read_json_body(req, err, sizeof(err))) == NULL) {
		emu_reply_api_error(req, 400, "%s", err);
		return;
	}
	tmpl = json_object_get(body, "templateID");
	tmo = json_object_get(body, "timeout");
	sec = json_object_get(body, "secure");
	if (!json_is_string(tmpl) || json_string_length(tmpl) == 0 || json_string_length(tmpl) > 128) {
		emu_reply_api_error(req, 400, "Invalid request body: templateID is required");
	} else if (tmo != NULL && !json_is_null(tmo) && !json_is_integer(tmo)) {
		emu_reply_api_error(req, 400, "Invalid request body: timeout must be an integer");
	} else if (tmo != NULL && json_is_integer(tmo) && (timeout = json_integer_value(tmo)) <= 0) {
		emu_reply_api_error(req, 400, "Timeout must be greater than 0");
	} else if (timeout > EMU_MAX_TIMEOUT_S) {
		emu_reply_api_error(req, 400, "Timeout cannot be greater than %d hours", EMU_MAX_TIMEOUT_S / 3600);
	} else if (json_object_get(body, "metadata") != NULL && !json_is_null(json_object_get(body, "metadata")) &&
	           !api_string_map(json_object_get(body, "metadata"))) {
		emu_reply_api_error(req, 400, "Invalid request body: metadata must map strings to strings");
	} else if (json_object_get(body, "envVars") != NULL && !json_is_null(json_object_get(body, "envVars")) &&
	           !api_string_map(json_object_get(body, "envVars"))) {
		emu_reply_api_error(req, 400, "Invalid request body: envVars must map strings to strings");
	} else if (json_is_true(json_object_get(body, "autoPause"))) {
		emu_reply_api_error(req, 400, "autoPause is not supported by e2b-emulator");
	} else {
		pc = emu_xcalloc(1, sizeof(*pc));
		pc->req = req;
		pc->template_id = emu_xstrdup(json_string_value(tmpl));
		pc->timeout_s = (int)timeout;
		pc->secure = sec != NULL && json_is_boolean(sec) ? json_is_true(sec) : v2;
		pc->metadata = api_string_map(json_object_get(body, "metadata"))
		                   ? json_incref(json_object_get(body, "metadata"))
		                   : NULL;
		pc->env_vars = api_string_map(json_object_get(body, "envVars"))
		                   ? json_incref(json_object_get(body, "envVars"))
		                   : NULL;
		if (emu.create_delay_ms > 0) {
			pc->ev = evtimer_new(emu.base, api_create_delay_cb, pc);
			emu_set_timer(pc->ev, emu.create_delay_ms);
		} else
			api_create_finish(pc);
	}
	json_decref(body);
}

/* "k=v&k2=v2" (already query-decoded once) matches when every pair is in md. */
static int api_metadata_match(json_t *md, const char *filter)
{
	char *copy = emu_xstrdup(filter), *pair, *save, *eq, *k, *v;
	int ok = 1;

	for (pair = strtok_r(copy, "&", &save); pair != NULL && ok; pair = strtok_r(NULL, "&", &save)) {
		eq = strchr(pair, '=');
		if (eq != NULL)
			*eq = '\0';
		k = evhttp_uridecode(pair, 0, NULL);
		v = evhttp_uridecode(eq != NULL ? eq + 1 : "", 0, NULL);
		ok =
		    json_is_string(json_object_get(md, k)) && strcmp(json_string_value(json_object_get(md, k)), v) == 0;
		free(k);
		free(v);
	}
	free(copy);
	return ok;
}

static int api_sandbox_cmp(const void *a, const void *b)
{
	const struct sandbox *x = *(struct sandbox *const *)a, *y = *(struct sandbox *const *)b;

	if (x->started_ms != y->started_ms)
		return x->started_ms < y->started_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Validate the list query; fills *limit (0 = unlimited) or replies 400. */
static int api_list_query(struct evhttp_request *req, struct evkeyvalq *q, int v2, long *limit, int *want_running,
                          int *desc)
{
	const char *state = evhttp_find_header(q, "state"), *lim = evhttp_find_header(q, "limit");
	const char *order = evhttp_find_header(q, "order");
	char *end;

	*limit = v2 ? API_LIST_LIMIT_MAX : 0;
	*want_running = 1;
	*desc = order != NULL && strcmp(order, "desc") == 0;
	if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
		emu_reply_api_error(req, 400, "Invalid order \"%s\": use asc or desc", order);
		return -1;
	}
	if (v2 && lim != NULL) {
		errno = 0;
		*limit = strtol(lim, &end, 10);
		if (errno || *end || *limit < 1 || *limit > API_LIST_LIMIT_MAX) {
			emu_reply_api_error(req, 400, "Invalid limit \"%s\": must be between 1 and %d", lim,
			                    API_LIST_LIMIT_MAX);
			return -1;
		}
	}
	if (v2 && state != NULL) {
		char *copy = emu_xstrdup(state), *s, *save;
		*want_running = 0;
		for (s = strtok_r(copy, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
			if (strcmp(s, "running") == 0)
				*want_running = 1;
			else if (strcmp(s, "paused") != 0) {
				emu_reply_api_error(req, 400, "Invalid state \"%s\": use running or paused", s);
				free(copy);
				return -1;
			}
		}
		free(copy);
	}
	return 0;
}

/* GET /v2/sandboxes (paged by X-Next-Token) and the deprecated GET /sandboxes. */
static void api_sandboxes_list(struct evhttp_request *req, int v2)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq q;
	const char *md, *tmpl, *token;
	struct sandbox **all, *sbx;
	size_t n = 0, i, start = 0, emitted = 0;
	long limit;
	int want_running, desc;
	json_t *arr;
	char next[64], key[64];

	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		emu_reply_api_error(req, 400, "malformed query string");
		return;
	}
	if (api_list_query(req, &q, v2, &limit, &want_running, &desc) != 0) {
		evhttp_clear_headers(&q);
		return;
	}
	md = evhttp_find_header(&q, "metadata");
	tmpl = evhttp_find_header(&q, "template");
	token = v2 ? evhttp_find_header(&q, "nextToken") : NULL;
	all = emu_xcalloc(emu.nsandboxes + 1, sizeof(*all));
	TAILQ_FOREACH(sbx, &emu.sandboxes, entry)
	{
		if (!want_running || (md != NULL && !api_metadata_match(sbx->metadata, md)) ||
		    (tmpl != NULL && *tmpl && strcmp(tmpl, sbx->template_id) != 0))
			continue;
		all[n++] = sbx;
	}
	qsort(all, n, sizeof(*all), api_sandbox_cmp);
	if (desc)
		for (i = 0; i < n / 2; i++) {
			sbx = all[i];
			all[i] = all[n - 1 - i];
			all[n - 1 - i] = sbx;
		}
	/* The token names the last sandbox of the previous page. */
	for (i = 0; token != NULL && i < n; i++) {
		snprintf(key, sizeof(key), "%lld.%s", (long long)all[i]->started_ms, all[i]->id);
		if (strcmp(key, token) == 0) {
			start = i + 1;
			break;
		}
	}
	arr = json_array();
	for (i = start; i < n && (limit == 0 || (long)emitted < limit); i++, emitted++)
		json_array_append_new(arr, api_listed_json(all[i], 0));
	if (i < n) {
		snprintf(next, sizeof(next), "%lld.%s", (long long)all[i - 1]->started_ms, all[i - 1]->id);
		evhttp_add_header(evhttp_request_get_output_headers(req), "X-Next-Token", next);
	}
	snprintf(next, sizeof(next), "%zu", emu.nsandboxes);
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Total-Running", next);
	free(all);
	evhttp_clear_headers(&q);
	emu_reply_json(req, 200, arr);
}

/* Read {"<field>": int} from the body; *val untouched when absent. */
static int api_body_int(struct evhttp_request *req, const char *field, int required, json_int_t *val)
{
	char err[256];
	json_t *body = emu_read_json_body(req, err, sizeof(err)), *v;

	if (body == NULL) {
		emu_reply_api_error(req, 400, "%s", err);
		return -1;
	}
	v = json_object_get(body, field);
	if ((v == NULL && required) || (v != NULL && !json_is_integer(v) && !json_is_null(v))) {
		emu_reply_api_error(req, 400, "Invalid request body: %s must be an integer", field);
		json_decref(body);
		return -1;
	}
	if (json_is_integer(v))
		*val = json_integer_value(v);
	json_decref(body);
	return 0;
}

/* KeepAliveFor: now + duration, never past startedAt + the plan maximum. */
static int64_t api_keepalive_end(struct sandbox *sbx, json_int_t seconds)
{
	int64_t now = emu_now_ms(), max_end = sbx->started_ms + (int64_t)EMU_MAX_TIMEOUT_S * 1000;
	int64_t end = now + (int64_t)seconds * 1000;

	return end > max_end ? max_end : end;
}

static void api_sandbox_timeout(struct evhttp_request *req, struct sandbox *sbx)
{
	json_int_t t = 0;

	if (api_body_int(req, "timeout", 1, &t) != 0)
		return;
	if (t < 0) {
		emu_reply_api_error(req, 400, "Timeout must be greater than or equal to 0");
		return;
	}
	sandbox_set_end(sbx, api_keepalive_end(sbx, t)); /* may shorten */
	emu_reply_empty(req, 204);
}

static void api_sandbox_refresh(struct evhttp_request *req, struct sandbox *sbx)
{
	json_int_t d = 15;
	int64_t end;

	if (api_body_int(req, "duration", 0, &d) != 0)
		return;
	if (d < 0 || d > 3600) {
		emu_reply_api_error(req, 400, "Duration must be between 0 and 3600 seconds");
		return;
	}
	if (d < 15)
		d = 15;
	end = api_keepalive_end(sbx, d);
	if (end > sbx->end_ms) /* extend only */
		sandbox_set_end(sbx, end);
	emu_reply_empty(req, 204);
}

static void api_sandbox_connect(struct evhttp_request *req, struct sandbox *sbx)
{
	json_int_t t = 0;
	int64_t end;

	if (api_body_int(req, "timeout", 0, &t) != 0)
		return;
	if (t < 0 || t > EMU_MAX_TIMEOUT_S) {
		emu_reply_api_error(req, 400, "Timeout cannot be greater than %d hours", EMU_MAX_TIMEOUT_S / 3600);
		return;
	}
	end = api_keepalive_end(sbx, t);
	if (end > sbx->end_ms)
		sandbox_set_end(sbx, end);
	emu_reply_json(req, 200, api_sandbox_json(sbx)); /* 200: it was running (201 = resumed) */
}

/* /sandboxes/{id}[/{action}] and /v2/sandboxes/{id}/connect. */
static void api_sandbox_route(struct evhttp_request *req, const char *rest, int v2)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char id[64], *action;
	const char *slash = strchr(rest, '/');
	size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	struct sandbox *sbx;

	if (n == 0 || n >= sizeof(id)) {
		emu_reply_api_error(req, 404, "Not Found");
		return;
	}
	memcpy(id, rest, n);
	id[n] = '\0';
	if (n > 9 && strcmp(id + n - 9, "-" EMU_CLIENT_ID) == 0) /* old "<id>-<clientID>" form */
		id[n - 9] = '\0';
	action = slash != NULL ? (char *)slash + 1 : NULL;
	sbx = sandbox_find(id);
	if (action == NULL && !v2 && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_DELETE)) {
		if (sbx == NULL)
			api_not_found(req, id);
		else if (cmd == EVHTTP_REQ_GET)
			emu_reply_json(req, 200, api_listed_json(sbx, 1));
		else {
			sandbox_destroy(sbx, "killed by API");
			emu_reply_empty(req, 204);
		}
		return;
	}
	if (action == NULL || cmd != EVHTTP_REQ_POST ||
	    (v2 && strcmp(action, "connect") != 0 && strcmp(action, "logs") != 0)) {
		if (action != NULL &&
		    (strcmp(action, "logs") == 0 || strcmp(action, "metrics") == 0 || strcmp(action, "network") == 0))
			emu_reply_api_error(req, 501, "%s is not emulated by e2b-emulator", action);
		else
			emu_reply_api_error(req, 405, "Method Not Allowed");
		return;
	}
	if (sbx == NULL) {
		api_not_found(req, id);
		return;
	}
	if (strcmp(action, "timeout") == 0)
		api_sandbox_timeout(req, sbx);
	else if (strcmp(action, "refreshes") == 0)
		api_sandbox_refresh(req, sbx);
	else if (strcmp(action, "connect") == 0)
		api_sandbox_connect(req, sbx);
	else if (strcmp(action, "pause") == 0 || strcmp(action, "resume") == 0 || strcmp(action, "fork") == 0 ||
	         strcmp(action, "snapshots") == 0)
		emu_reply_api_error(req, 501, "%s is not emulated by e2b-emulator", action);
	else
		emu_reply_api_error(req, 404, "Not Found");
}

/* Name of the endpoint for --fault http-error:endpoint=NAME. */
static const char *api_endpoint_name(enum evhttp_cmd_type cmd, const char *path)
{
	const char *last = strrchr(path, '/');

	if (strcmp(path, "/sandboxes") == 0 || strcmp(path, "/v2/sandboxes") == 0)
		return cmd == EVHTTP_REQ_POST ? "create" : "list";
	if (last != NULL && strncmp(path, "/sandboxes/", 11) == 0 && last == path + 10)
		return cmd == EVHTTP_REQ_DELETE ? "kill" : "get";
	return last != NULL ? last + 1 : path;
}

static int api_check_key(struct evhttp_request *req)
{
	const char *key = emu_header(req, "X-API-Key");

	if (key == NULL || *key == '\0') {
		emu_reply_api_error(req, 401,
		                    "Invalid API key, please visit https://e2b.dev/docs/api-key for more information.");
		return -1;
	}
	if (emu.api_key != NULL && strcmp(key, emu.api_key) != 0) {
		emu_reply_api_error(req, 401,
		                    "Invalid API key, please visit https://e2b.dev/docs/api-key for more information.");
		return -1;
	}
	return 0;
}

void api_dispatch(struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int status, retry;
	char ra[16];

	if (strcmp(path, "/health") == 0) {
		struct evbuffer *out = evbuffer_new();
		evbuffer_add_printf(out, "Health check successful");
		evhttp_send_reply(req, 200, "OK", out);
		evbuffer_free(out);
		return;
	}
	if (api_check_key(req) != 0)
		return;
	if ((status = fault_check_endpoint(api_endpoint_name(cmd, path), &retry)) != 0) {
		emu_log("fault: endpoint=%s status=%d", api_endpoint_name(cmd, path), status);
		if (status == 429) {
			snprintf(ra, sizeof(ra), "%d", retry);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
			evhttp_add_header(evhttp_request_get_output_headers(req), "RateLimit-Remaining", "0");
			evhttp_add_header(evhttp_request_get_output_headers(req), "RateLimit-Reset", ra);
			emu_reply_api_error(req, 429, "Rate limit exceeded");
		} else
			emu_reply_api_error(req, status, "injected fault on %s", api_endpoint_name(cmd, path));
		return;
	}
	if (strcmp(path, "/sandboxes") == 0 || strcmp(path, "/v2/sandboxes") == 0) {
		int v2 = path[1] == 'v';
		if (cmd == EVHTTP_REQ_POST)
			api_sandboxes_create(req, v2);
		else if (cmd == EVHTTP_REQ_GET)
			api_sandboxes_list(req, v2);
		else
			emu_reply_api_error(req, 405, "Method Not Allowed");
	} else if (strncmp(path, "/sandboxes/", 11) == 0)
		api_sandbox_route(req, path + 11, 0);
	else if (strncmp(path, "/v2/sandboxes/", 14) == 0)
		api_sandbox_route(req, path + 14, 1);
	else
		emu_reply_api_error(req, 404, "Not Found");
}
