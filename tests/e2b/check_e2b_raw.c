/*
 * check_e2b_raw.c: raw-protocol tests of e2b-emulator that the SDK suite
 * cannot see: Connect envelopes split across TCP writes, int64-as-string and
 * omitted defaults, error bodies and status codes, cuts without EndStream.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define API_KEY "e2b_00112233445566778899aabbccddeeff00112233"

struct emu_proc {
	pid_t pid;
	int port;
	char dir[64];
};

struct resp {
	int status;
	char *headers; /* raw header block, NUL-terminated */
	uint8_t *body; /* de-chunked */
	size_t len;
	int chunked;
	int complete; /* terminating chunk (or full Content-Length) seen */
	double secs;
};

struct env {
	uint8_t flags;
	json_t *msg;
};

static struct emu_proc main_emu;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emu_start(struct emu_proc *e, const char *const extra[])
{
	const char *bin = getenv("E2B_EMULATOR");
	char port_file[128], root[128];
	const char *argv[32];
	size_t n = 0;
	FILE *f;

	ck_assert_msg(bin != NULL, "E2B_EMULATOR must name the e2b-emulator binary");
	snprintf(e->dir, sizeof(e->dir), "/tmp/e2b-raw.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	snprintf(port_file, sizeof(port_file), "%s/port", e->dir);
	snprintf(root, sizeof(root), "%s/root", e->dir);
	argv[n++] = bin;
	argv[n++] = "--port-file";
	argv[n++] = port_file;
	argv[n++] = "--root";
	argv[n++] = root;
	argv[n++] = "--api-key";
	argv[n++] = API_KEY;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	e->pid = fork();
	if (e->pid == 0) {
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 200 && (f = fopen(port_file, "r")) == NULL; i++)
		usleep(25000);
	ck_assert_msg(f != NULL, "emulator did not write %s", port_file);
	ck_assert_int_eq(fscanf(f, "%d", &e->port), 1);
	fclose(f);
}

static void emu_stop(struct emu_proc *e)
{
	char cmd[160];
	int status;

	if (e->pid <= 0)
		return;
	kill(e->pid, SIGTERM);
	waitpid(e->pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", e->dir);
	e->pid = 0;
}

static void resp_free(struct resp *r)
{
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static const char *resp_header(struct resp *r, const char *name, char *out, size_t outlen)
{
	char *p = r->headers;
	size_t nl = strlen(name);

	while ((p = strcasestr(p, name)) != NULL) {
		if (p[-1] == '\n' && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ')
				p++;
			size_t i = 0;
			while (p[i] && p[i] != '\r' && i + 1 < outlen) {
				out[i] = p[i];
				i++;
			}
			out[i] = '\0';
			return out;
		}
		p += nl;
	}
	return NULL;
}

/* De-chunk raw[hdr_end..]; complete when the 0-size chunk arrived. */
static void resp_dechunk(struct resp *r, const uint8_t *raw, size_t len)
{
	size_t pos = 0;

	r->body = malloc(len + 1);
	r->len = 0;
	while (pos < len) {
		char *end;
		unsigned long n = strtoul((const char *)raw + pos, &end, 16);
		const uint8_t *crlf = memmem(raw + pos, len - pos, "\r\n", 2);
		if (crlf == NULL)
			return;
		pos = (size_t)(crlf - raw) + 2;
		if (n == 0) {
			r->complete = 1;
			return;
		}
		if (pos + n > len) { /* partial chunk: keep what arrived */
			memcpy(r->body + r->len, raw + pos, len - pos);
			r->len += len - pos;
			return;
		}
		memcpy(r->body + r->len, raw + pos, n);
		r->len += n;
		pos += n + 2;
	}
}

/* One HTTP/1.1 exchange on a fresh connection ("Connection: close"): the
 * request goes out in `chunk`-byte writes, the response is read to EOF. */
static void http(struct emu_proc *e, const char *method, const char *path, const char *hdrs, const void *body,
                 size_t blen, size_t chunk, struct resp *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char head[4096];
	uint8_t *req, *raw = NULL, buf[4096];
	size_t rlen, off, rawlen = 0;
	ssize_t n;
	int fd, one = 1;
	char *hend;

	memset(r, 0, sizeof(*r));
	sa.sin_port = htons((uint16_t)e->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(head, sizeof(head),
	         "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n", method,
	         path, e->port, hdrs ? hdrs : "", blen);
	rlen = strlen(head) + blen;
	req = malloc(rlen);
	memcpy(req, head, strlen(head));
	if (blen)
		memcpy(req + strlen(head), body, blen);
	r->secs = now_s();
	for (off = 0; off < rlen; off += (size_t)n) {
		size_t want = chunk && rlen - off > chunk ? chunk : rlen - off;
		n = write(fd, req + off, want);
		ck_assert_int_gt(n, 0);
		if (chunk)
			usleep(2000); /* separate TCP segments */
	}
	free(req);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		raw = realloc(raw, rawlen + (size_t)n + 1);
		memcpy(raw + rawlen, buf, (size_t)n);
		rawlen += (size_t)n;
	}
	close(fd);
	r->secs = now_s() - r->secs;
	ck_assert_msg(rawlen > 12, "no HTTP response");
	raw[rawlen] = '\0';
	r->status = atoi((char *)raw + 9);
	hend = strstr((char *)raw, "\r\n\r\n");
	ck_assert_ptr_nonnull(hend);
	r->headers = strndup((char *)raw, (size_t)(hend - (char *)raw) + 2);
	r->chunked = strcasestr(r->headers, "Transfer-Encoding: chunked") != NULL;
	if (r->chunked)
		resp_dechunk(r, (uint8_t *)hend + 4, rawlen - (size_t)(hend + 4 - (char *)raw));
	else {
		r->len = rawlen - (size_t)(hend + 4 - (char *)raw);
		r->body = malloc(r->len + 1);
		memcpy(r->body, hend + 4, r->len);
		r->complete = 1;
	}
	r->body[r->len] = '\0';
	free(raw);
}

static json_t *resp_json(struct resp *r)
{
	json_error_t err;
	json_t *j = json_loadb((const char *)r->body, r->len, 0, &err);

	ck_assert_msg(j != NULL, "response is not JSON (%s): %.*s", err.text, (int)r->len, r->body);
	return j;
}

/* Split a de-chunked stream body into envelopes; returns the count. */
static size_t envelopes(struct resp *r, struct env *out, size_t max, size_t *trailing)
{
	size_t pos = 0, n = 0;

	while (r->len - pos >= 5 && n < max) {
		uint32_t len = (uint32_t)r->body[pos + 1] << 24 | (uint32_t)r->body[pos + 2] << 16 |
		               (uint32_t)r->body[pos + 3] << 8 | r->body[pos + 4];
		json_error_t err;
		if (r->len - pos - 5 < len)
			break;
		out[n].flags = r->body[pos];
		out[n].msg = json_loadb((const char *)r->body + pos + 5, len, 0, &err);
		ck_assert_msg(out[n].msg != NULL, "envelope %zu is not JSON: %s", n, err.text);
		n++;
		pos += 5 + len;
	}
	*trailing = r->len - pos;
	return n;
}

static void envelopes_free(struct env *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(e[i].msg);
}

static char *create_sandbox(struct emu_proc *e, const char *route, const char *body, char **token)
{
	struct resp r;
	json_t *j;
	char *id;

	http(e, "POST", route, "X-API-Key: " API_KEY "\r\nContent-Type: application/json\r\n", body, strlen(body), 0,
	     &r);
	ck_assert_msg(r.status == 201, "create: %d %s", r.status, r.body);
	j = resp_json(&r);
	id = strdup(json_string_value(json_object_get(j, "sandboxID")));
	if (token != NULL)
		*token = json_is_string(json_object_get(j, "envdAccessToken"))
		             ? strdup(json_string_value(json_object_get(j, "envdAccessToken")))
		             : NULL;
	json_decref(j);
	resp_free(&r);
	return id;
}

static void envd_headers(char *out, size_t len, const char *id, const char *extra)
{
	snprintf(out, len, "E2b-Sandbox-Id: %s\r\nE2b-Sandbox-Port: 49983\r\n%s", id, extra ? extra : "");
}

/* POST a server-streaming call with the one request envelope. */
static void stream_call(struct emu_proc *e, const char *id, const char *method, const char *json, const char *extra,
                        size_t chunk, struct resp *r)
{
	size_t jl = strlen(json);
	uint8_t *body = malloc(jl + 5);
	char path[128], hdrs[1024], more[512];

	body[0] = 0;
	body[1] = (uint8_t)(jl >> 24);
	body[2] = (uint8_t)(jl >> 16);
	body[3] = (uint8_t)(jl >> 8);
	body[4] = (uint8_t)jl;
	memcpy(body + 5, json, jl);
	snprintf(path, sizeof(path), "/process.Process/%s", method);
	snprintf(more, sizeof(more), "Content-Type: application/connect+json\r\nConnect-Protocol-Version: 1\r\n%s",
	         extra ? extra : "");
	envd_headers(hdrs, sizeof(hdrs), id, more);
	http(e, "POST", path, hdrs, body, jl + 5, chunk, r);
	free(body);
}

static void unary_call(struct emu_proc *e, const char *id, const char *path, const char *json, struct resp *r)
{
	char hdrs[1024];

	envd_headers(hdrs, sizeof(hdrs), id, "Content-Type: application/json\r\nConnect-Protocol-Version: 1\r\n");
	http(e, "POST", path, hdrs, json, strlen(json), 0, r);
}

static char *b64dec(const char *s)
{
	size_t n = strlen(s);
	unsigned char *out = calloc(1, n + 1);
	int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);

	while (n > 0 && s[n - 1] == '=') {
		n--;
		len--;
	}
	out[len < 0 ? 0 : len] = '\0';
	return (char *)out;
}

static json_t *ev(struct env *e, const char *kind)
{
	return json_object_get(json_object_get(e->msg, "event"), kind);
}

/* ---- control plane ---- */

START_TEST(t_api_auth_and_errors)
{
	struct resp r;
	json_t *j;

	http(&main_emu, "POST", "/sandboxes", "Content-Type: application/json\r\n", "{}", 2, 0, &r);
	ck_assert_int_eq(r.status, 401);
	j = resp_json(&r);
	ck_assert(json_is_integer(json_object_get(j, "code"))); /* API errors: int code */
	ck_assert_int_eq(json_integer_value(json_object_get(j, "code")), 401);
	ck_assert(json_is_string(json_object_get(j, "message")));
	json_decref(j);
	resp_free(&r);

	http(&main_emu, "GET", "/sandboxes/nosuchsandbox0000000", "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 404);
	j = resp_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "code")), 404);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")),
	                 "Sandbox \"nosuchsandbox0000000\" doesn't exist or you don't have access to it");
	json_decref(j);
	resp_free(&r);

	http(&main_emu, "DELETE", "/sandboxes/nosuchsandbox0000000", "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);

	http(&main_emu, "POST", "/sandboxes", "X-API-Key: " API_KEY "\r\nContent-Type: application/json\r\n",
	     "{\"templateID\":\"base\",\"timeout\":0}", 33, 0, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_nonnull(strstr((char *)r.body, "Timeout must be greater than 0"));
	resp_free(&r);
}
END_TEST

START_TEST(t_api_create_defaults_and_ttl_ops)
{
	char *tok, *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\"}", &tok);
	char path[128];
	struct resp r;
	json_t *j;
	struct tm tm = {0};
	time_t started, end;

	ck_assert_ptr_null(tok); /* v1 route: secure only when asked */
	snprintf(path, sizeof(path), "/sandboxes/%s", id);
	http(&main_emu, "GET", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 200);
	j = resp_json(&r);
	strptime(json_string_value(json_object_get(j, "startedAt")), "%Y-%m-%dT%H:%M:%S", &tm);
	started = timegm(&tm);
	strptime(json_string_value(json_object_get(j, "endAt")), "%Y-%m-%dT%H:%M:%S", &tm);
	end = timegm(&tm);
	ck_assert_int_eq(end - started, 15); /* API default TTL */
	ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "running");
	ck_assert_str_eq(json_string_value(json_object_get(j, "clientID")), "6532622b");
	json_decref(j);
	resp_free(&r);

	snprintf(path, sizeof(path), "/sandboxes/%s/timeout", id);
	http(&main_emu, "POST", path, "X-API-Key: " API_KEY "\r\nContent-Type: application/json\r\n", "{}", 2, 0, &r);
	ck_assert_int_eq(r.status, 400); /* timeout is required */
	resp_free(&r);
	http(&main_emu, "POST", path, "X-API-Key: " API_KEY "\r\nContent-Type: application/json\r\n",
	     "{\"timeout\":600}", 15, 0, &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_uint_eq(r.len, 0);
	resp_free(&r);
	snprintf(path, sizeof(path), "/sandboxes/%s/refreshes", id);
	http(&main_emu, "POST", path, "X-API-Key: " API_KEY "\r\nContent-Type: application/json\r\n",
	     "{\"duration\":3601}", 17, 0, &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	http(&main_emu, "POST", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	/* refreshes only extend: the 600 s TTL survives a 15 s refresh */
	snprintf(path, sizeof(path), "/sandboxes/%s", id);
	http(&main_emu, "GET", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	j = resp_json(&r);
	strptime(json_string_value(json_object_get(j, "endAt")), "%Y-%m-%dT%H:%M:%S", &tm);
	ck_assert_int_ge(timegm(&tm) - time(NULL), 590);
	json_decref(j);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v2/sandboxes/%s/connect", id);
	http(&main_emu, "POST", path, "X-API-Key: " API_KEY "\r\nContent-Type: application/json\r\n",
	     "{\"timeout\":10}", 14, 0, &r);
	ck_assert_int_eq(r.status, 200);
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "sandboxID")), id);
	ck_assert(json_is_null(json_object_get(j, "domain")));
	json_decref(j);
	resp_free(&r);
	snprintf(path, sizeof(path), "/sandboxes/%s", id);
	http(&main_emu, "DELETE", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(t_api_list_paging)
{
	char *ids[3];
	struct resp r;
	char next[128], path[256];
	json_t *j;

	for (int i = 0; i < 3; i++)
		ids[i] = create_sandbox(
		    &main_emu, "/v2/sandboxes",
		    "{\"templateID\":\"base\",\"metadata\":{\"suite\":\"paging\",\"sp ace\":\"a&b=c\"}}", NULL);
	/* metadata=<urlencode("sp%20ace=a%26b%3Dc&suite=paging")>, as the SDK builds it */
	http(&main_emu, "GET", "/v2/sandboxes?metadata=sp%2520ace%3Da%2526b%253Dc%26suite%3Dpaging&limit=2",
	     "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 200);
	j = resp_json(&r);
	ck_assert_uint_eq(json_array_size(j), 2);
	ck_assert_ptr_nonnull(resp_header(&r, "X-Next-Token", next, sizeof(next)));
	json_decref(j);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v2/sandboxes?metadata=suite%%3Dpaging&limit=2&nextToken=%s", next);
	http(&main_emu, "GET", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	j = resp_json(&r);
	ck_assert_uint_eq(json_array_size(j), 1);
	ck_assert_ptr_null(resp_header(&r, "X-Next-Token", next, sizeof(next)));
	json_decref(j);
	resp_free(&r);
	http(&main_emu, "GET", "/v2/sandboxes?metadata=suite%3Dpaging&state=paused", "X-API-Key: " API_KEY "\r\n", NULL,
	     0, 0, &r);
	ck_assert_str_eq((char *)r.body, "[]");
	resp_free(&r);
	http(&main_emu, "GET", "/v2/sandboxes?limit=0", "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/sandboxes/%s", ids[i]);
		http(&main_emu, "DELETE", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
		resp_free(&r);
		free(ids[i]);
	}
}
END_TEST

/* ---- envd routing and auth ---- */

START_TEST(t_envd_routing_and_auth)
{
	char *tok, *id = create_sandbox(&main_emu, "/v2/sandboxes", "{\"templateID\":\"base\"}", &tok);
	char hdrs[512];
	struct resp r;
	json_t *j;

	ck_assert_ptr_nonnull(tok); /* v2 create: secure by default */
	http(&main_emu, "GET", "/health", "E2b-Sandbox-Id: nosuchsandbox0000000\r\nE2b-Sandbox-Port: 49983\r\n", NULL,
	     0, 0, &r);
	ck_assert_int_eq(r.status, 502);
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "The sandbox was not found");
	ck_assert_str_eq(json_string_value(json_object_get(j, "sandboxId")), "nosuchsandbox0000000");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "code")), 502);
	json_decref(j);
	resp_free(&r);
	http(&main_emu, "GET", "/health", "E2b-Sandbox-Id: x\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_nonnull(strstr((char *)r.body, "Missing header: E2b-Sandbox-Port"));
	resp_free(&r);
	/* No token: /health is open, RPCs are not. */
	envd_headers(hdrs, sizeof(hdrs), id, NULL);
	http(&main_emu, "GET", "/health", hdrs, NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	unary_call(&main_emu, id, "/process.Process/List", "{}", &r);
	ck_assert_int_eq(r.status, 401);
	j = resp_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "code")), 401);
	json_decref(j);
	resp_free(&r);
	/* Host-based routing, as the per-sandbox host 49983-<id>.<domain>. */
	{
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)main_emu.port)};
		char req[512], buf[512];
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		ssize_t n;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		snprintf(req, sizeof(req),
		         "POST /process.Process/List HTTP/1.1\r\nHost: 49983-%s.e2b.app\r\nX-Access-Token: %s\r\n"
		         "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
		         id, tok);
		ck_assert_int_gt(write(fd, req, strlen(req)), 0);
		n = read(fd, buf, sizeof(buf) - 1);
		ck_assert_int_gt(n, 12);
		buf[n] = '\0';
		ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "host routing: %s", buf);
		close(fd);
	}
	free(id);
	free(tok);
}
END_TEST

/* ---- Connect envelopes ---- */

START_TEST(t_start_envelopes_across_chunking)
{
	char *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\"}", NULL), ct[128], *out;
	struct env e[16];
	size_t n, trailing;
	struct resp r;

	/* The request envelope arrives one byte per TCP segment. */
	stream_call(&main_emu, id, "Start",
	            "{\"process\":{\"cmd\":\"/bin/bash\",\"args\":[\"-c\",\"echo hello; exit 3\"]},\"stdin\":false}",
	            NULL, 1, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(resp_header(&r, "Content-Type", ct, sizeof(ct)), "application/connect+json");
	ck_assert(r.chunked && r.complete);
	n = envelopes(&r, e, 16, &trailing);
	ck_assert_uint_eq(trailing, 0);
	ck_assert_uint_ge(n, 4);
	ck_assert_int_eq(e[0].flags, 0);
	ck_assert(json_is_integer(json_object_get(ev(&e[0], "start"), "pid"))); /* uint32: a number */
	ck_assert_ptr_nonnull(ev(&e[1], "data"));
	out = b64dec(json_string_value(json_object_get(ev(&e[1], "data"), "stdout")));
	ck_assert_str_eq(out, "hello\n");
	free(out);
	ck_assert_int_eq(json_integer_value(json_object_get(ev(&e[n - 2], "end"), "exitCode")), 3);
	ck_assert(json_is_true(json_object_get(ev(&e[n - 2], "end"), "exited")));
	ck_assert_str_eq(json_string_value(json_object_get(ev(&e[n - 2], "end"), "status")), "exit status 3");
	ck_assert_str_eq(json_string_value(json_object_get(ev(&e[n - 2], "end"), "error")), "exit status 3");
	ck_assert_int_eq(e[n - 1].flags, 0x02);
	ck_assert_uint_eq(json_object_size(e[n - 1].msg), 0); /* EndStream {} = success */
	envelopes_free(e, n);
	resp_free(&r);

	/* exit 0: exitCode (sint32 0) and error are omitted, exited stays. */
	stream_call(&main_emu, id, "Start", "{\"process\":{\"cmd\":\"/bin/true\"},\"stdin\":false}", NULL, 7, &r);
	n = envelopes(&r, e, 16, &trailing);
	ck_assert_uint_eq(n, 3);
	ck_assert_ptr_null(json_object_get(ev(&e[1], "end"), "exitCode"));
	ck_assert_ptr_null(json_object_get(ev(&e[1], "end"), "error"));
	ck_assert(json_is_true(json_object_get(ev(&e[1], "end"), "exited")));
	ck_assert_str_eq(json_string_value(json_object_get(ev(&e[1], "end"), "status")), "exit status 0");
	envelopes_free(e, n);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(t_stream_errors_are_endstream)
{
	char *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\"}", NULL), hdrs[512];
	struct env e[4];
	size_t n, trailing;
	struct resp r;
	json_t *err;
	uint8_t bad[] = {0, 0, 0, 0, 100, '{', '}'};

	stream_call(&main_emu, id, "Start", "{\"process\":{\"cmd\":\"/bin/true\",\"cwd\":\"/home/user/nope\"}}", NULL,
	            0, &r);
	ck_assert_int_eq(r.status, 200);
	n = envelopes(&r, e, 4, &trailing);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(e[0].flags, 0x02);
	err = json_object_get(e[0].msg, "error");
	ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "invalid_argument");
	ck_assert_str_eq(json_string_value(json_object_get(err, "message")), "cwd '/home/user/nope' does not exist");
	envelopes_free(e, n);
	resp_free(&r);

	stream_call(&main_emu, id, "Connect", "{\"process\":{\"pid\":4000000}}", NULL, 0, &r);
	n = envelopes(&r, e, 4, &trailing);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(e[0].flags, 0x02);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e[0].msg, "error"), "code")), "not_found");
	envelopes_free(e, n);
	resp_free(&r);

	/* A truncated request envelope (claims 100 bytes, carries 2). */
	envd_headers(hdrs, sizeof(hdrs), id, "Content-Type: application/connect+json\r\n");
	http(&main_emu, "POST", "/process.Process/Start", hdrs, bad, sizeof(bad), 0, &r);
	ck_assert_int_eq(r.status, 200);
	n = envelopes(&r, e, 4, &trailing);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e[0].msg, "error"), "code")),
	                 "invalid_argument");
	envelopes_free(e, n);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(t_unary_errors_and_int64_strings)
{
	char *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\"}", NULL), hdrs[512], ct[64];
	struct resp r;
	json_t *j, *entry;

	envd_headers(hdrs, sizeof(hdrs), id, "Content-Type: application/octet-stream\r\n");
	http(&main_emu, "POST", "/files?path=%2Fhome%2Fuser%2Fin.json", hdrs, "{\"hello\":\"world\"}", 17, 0, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	unary_call(&main_emu, id, "/filesystem.Filesystem/Stat", "{\"path\":\"/home/user/in.json\"}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(resp_header(&r, "Content-Type", ct, sizeof(ct)), "application/json");
	j = resp_json(&r);
	entry = json_object_get(j, "entry");
	ck_assert(json_is_string(json_object_get(entry, "size"))); /* int64 → string */
	ck_assert_str_eq(json_string_value(json_object_get(entry, "size")), "17");
	ck_assert(json_is_integer(json_object_get(entry, "mode"))); /* uint32 → number */
	ck_assert_str_eq(json_string_value(json_object_get(entry, "type")), "FILE_TYPE_FILE");
	json_decref(j);
	resp_free(&r);

	unary_call(&main_emu, id, "/filesystem.Filesystem/Stat", "{\"path\":\"/home/user/none\"}", &r);
	ck_assert_int_eq(r.status, 404);
	j = resp_json(&r);
	ck_assert(json_is_string(json_object_get(j, "code"))); /* Connect errors: string code */
	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "not_found");
	json_decref(j);
	resp_free(&r);
	unary_call(&main_emu, id, "/filesystem.Filesystem/MakeDir", "{\"path\":\"/home/user\"}", &r);
	ck_assert_int_eq(r.status, 409);
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "already_exists");
	json_decref(j);
	resp_free(&r);
	unary_call(&main_emu, id, "/process.Process/SendSignal",
	           "{\"process\":{\"pid\":4000000},\"signal\":\"SIGNAL_SIGKILL\"}", &r);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);
	unary_call(&main_emu, id, "/process.Process/List", "{not json", &r);
	ck_assert_int_eq(r.status, 400);
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "invalid_argument");
	json_decref(j);
	resp_free(&r);
	envd_headers(hdrs, sizeof(hdrs), id, "Content-Type: text/plain\r\n");
	http(&main_emu, "POST", "/process.Process/List", hdrs, "{}", 2, 0, &r);
	ck_assert_int_eq(r.status, 415);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(t_keepalive_and_connect_timeout)
{
	char *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\"}", NULL);
	struct env e[32];
	size_t n, trailing, ka = 0;
	struct resp r;

	stream_call(&main_emu, id, "Start", "{\"process\":{\"cmd\":\"/bin/sleep\",\"args\":[\"3.5\"]}}",
	            "Keepalive-Ping-Interval: 1\r\n", 0, &r);
	n = envelopes(&r, e, 32, &trailing);
	for (size_t i = 0; i < n; i++)
		ka += ev(&e[i], "keepalive") != NULL;
	ck_assert_uint_ge(ka, 2);
	ck_assert_ptr_nonnull(ev(&e[n - 2], "end"));
	envelopes_free(e, n);
	resp_free(&r);

	/* Connect-Timeout-Ms on Start is the process's life: SIGKILL at the deadline. */
	stream_call(&main_emu, id, "Start", "{\"process\":{\"cmd\":\"/bin/sleep\",\"args\":[\"30\"]}}",
	            "Connect-Timeout-Ms: 500\r\n", 0, &r);
	ck_assert(r.secs < 5);
	n = envelopes(&r, e, 32, &trailing);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(json_integer_value(json_object_get(ev(&e[1], "end"), "exitCode")), -1);
	ck_assert_str_eq(json_string_value(json_object_get(ev(&e[1], "end"), "status")), "signal: killed");
	ck_assert_ptr_null(json_object_get(ev(&e[1], "end"), "exited"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e[2].msg, "error"), "code")),
	                 "deadline_exceeded");
	envelopes_free(e, n);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(t_exit_retention_by_tag)
{
	char *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\"}", NULL);
	struct env e[8];
	size_t n, trailing;
	struct resp r;

	stream_call(&main_emu, id, "Start",
	            "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"echo gone; exit 4\"]},\"tag\":\"w1\"}", NULL,
	            0, &r);
	resp_free(&r);
	/* A late Connect gets start + the retained end, and no replayed output. */
	stream_call(&main_emu, id, "Connect", "{\"process\":{\"tag\":\"w1\"}}", NULL, 0, &r);
	n = envelopes(&r, e, 8, &trailing);
	ck_assert_uint_eq(n, 3);
	ck_assert_ptr_nonnull(ev(&e[0], "start"));
	ck_assert_int_eq(json_integer_value(json_object_get(ev(&e[1], "end"), "exitCode")), 4);
	ck_assert_int_eq(e[2].flags, 0x02);
	envelopes_free(e, n);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(t_ttl_expiry_cuts_without_endstream)
{
	char *id = create_sandbox(&main_emu, "/sandboxes", "{\"templateID\":\"base\",\"timeout\":1}", NULL), path[128],
	     hdrs[256];
	struct env e[8];
	size_t n, trailing;
	struct resp r;

	stream_call(&main_emu, id, "Start", "{\"process\":{\"cmd\":\"/bin/sleep\",\"args\":[\"30\"]}}", NULL, 0, &r);
	ck_assert(r.secs < 5);
	ck_assert_msg(!r.complete, "a dying sandbox must not end its streams cleanly");
	n = envelopes(&r, e, 8, &trailing);
	ck_assert_uint_eq(n, 1); /* only start: no end event, no EndStream */
	ck_assert_ptr_nonnull(ev(&e[0], "start"));
	envelopes_free(e, n);
	resp_free(&r);
	envd_headers(hdrs, sizeof(hdrs), id, NULL);
	http(&main_emu, "GET", "/health", hdrs, NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 502);
	resp_free(&r);
	snprintf(path, sizeof(path), "/sandboxes/%s", id);
	http(&main_emu, "GET", path, "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);
	free(id);
}
END_TEST

/* ---- /files ---- */

START_TEST(t_files_multipart_and_signature)
{
	char *tok, *id = create_sandbox(&main_emu, "/v2/sandboxes", "{\"templateID\":\"base\"}", &tok);
	const char *mp =
	    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/m/a.txt\"\r\n"
	    "Content-Type: application/octet-stream\r\n\r\nAAA\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nignored\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m/b.txt\"\r\n\r\nB\r\nB\r\n--XyZ--\r\n";
	char hdrs[512], more[256], path[512], raw[512], b64[64];
	unsigned char dg[SHA256_DIGEST_LENGTH];
	struct resp r;
	json_t *j;
	size_t l;

	snprintf(more, sizeof(more), "X-Access-Token: %s\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n", tok);
	envd_headers(hdrs, sizeof(hdrs), id, more);
	http(&main_emu, "POST", "/files", hdrs, mp, strlen(mp), 3, &r);
	ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
	j = resp_json(&r);
	ck_assert_uint_eq(json_array_size(j), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "path")), "/home/user/m/b.txt");
	json_decref(j);
	resp_free(&r);
	/* Download signed instead of the token header. */
	snprintf(raw, sizeof(raw), "/home/user/m/b.txt:read::%s", tok);
	SHA256((unsigned char *)raw, strlen(raw), dg);
	EVP_EncodeBlock((unsigned char *)b64, dg, sizeof(dg));
	for (l = strlen(b64); l > 0 && b64[l - 1] == '='; l--)
		b64[l - 1] = '\0';
	for (char *c = b64; *c; c++) /* URL-encode + and / */
		if (*c == '+' || *c == '/') {
			memmove(c + 3, c + 1, strlen(c + 1) + 1);
			memcpy(c, *c == '+' ? "%2B" : "%2F", 3);
		}
	envd_headers(hdrs, sizeof(hdrs), id, NULL);
	snprintf(path, sizeof(path), "/files?path=%%2Fhome%%2Fuser%%2Fm%%2Fb.txt&signature=v1_%s", b64);
	http(&main_emu, "GET", path, hdrs, NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq((char *)r.body, "B\r\nB");
	resp_free(&r);
	http(&main_emu, "GET", "/files?path=%2Fhome%2Fuser%2Fm%2Fb.txt&signature=v1_bogus", hdrs, NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	snprintf(more, sizeof(more), "X-Access-Token: %s\r\n", tok);
	envd_headers(hdrs, sizeof(hdrs), id, more);
	http(&main_emu, "GET", "/files?path=%2Fhome%2Fuser%2Fm", hdrs, NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	http(&main_emu, "GET", "/files?path=%2Fhome%2Fuser%2Fnone", hdrs, NULL, 0, 0, &r);
	ck_assert_int_eq(r.status, 404);
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "path '/home/user/none' does not exist");
	json_decref(j);
	resp_free(&r);
	free(id);
	free(tok);
}
END_TEST

/* ---- faults ---- */

START_TEST(t_faults)
{
	const char *args[] = {"--fault", "rate-limit:every=1:count=1:retry-after=7",
	                      "--fault", "http-error:endpoint=list:status=503:every=2",
	                      "--fault", "stream-cut:after=10:count=1",
	                      NULL};
	struct emu_proc f = {0};
	char ra[16], *id;
	struct resp r;
	json_t *j;

	emu_start(&f, args);
	http(&f, "POST", "/sandboxes", "X-API-Key: " API_KEY "\r\n", "{\"templateID\":\"base\"}", 21, 0, &r);
	ck_assert_int_eq(r.status, 429);
	ck_assert_str_eq(resp_header(&r, "Retry-After", ra, sizeof(ra)), "7");
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "Rate limit exceeded");
	json_decref(j);
	resp_free(&r);
	id = create_sandbox(&f, "/sandboxes", "{\"templateID\":\"base\"}", NULL);
	for (int i = 1; i <= 4; i++) {
		http(&f, "GET", "/v2/sandboxes", "X-API-Key: " API_KEY "\r\n", NULL, 0, 0, &r);
		ck_assert_int_eq(r.status, i % 2 == 0 ? 503 : 200);
		resp_free(&r);
	}
	stream_call(&f, id, "Start", "{\"process\":{\"cmd\":\"/bin/echo\",\"args\":[\"x\"]}}", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, 10);
	ck_assert(!r.complete);
	resp_free(&r);
	free(id);
	emu_stop(&f);
}
END_TEST

static void main_setup(void)
{
	emu_start(&main_emu, NULL);
}

static void main_teardown(void)
{
	emu_stop(&main_emu);
}

int main(void)
{
	Suite *s = suite_create("e2b_raw");
	TCase *api = tcase_create("control_plane"), *envd = tcase_create("envd"), *faults = tcase_create("faults");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(api, main_setup, main_teardown);
	tcase_add_unchecked_fixture(envd, main_setup, main_teardown);
	tcase_set_timeout(envd, 60);
	tcase_set_timeout(faults, 60);
	tcase_add_test(api, t_api_auth_and_errors);
	tcase_add_test(api, t_api_create_defaults_and_ttl_ops);
	tcase_add_test(api, t_api_list_paging);
	tcase_add_test(envd, t_envd_routing_and_auth);
	tcase_add_test(envd, t_start_envelopes_across_chunking);
	tcase_add_test(envd, t_stream_errors_are_endstream);
	tcase_add_test(envd, t_unary_errors_and_int64_strings);
	tcase_add_test(envd, t_keepalive_and_connect_timeout);
	tcase_add_test(envd, t_exit_retention_by_tag);
	tcase_add_test(envd, t_ttl_expiry_cuts_without_endstream);
	tcase_add_test(envd, t_files_multipart_and_signature);
	tcase_add_test(faults, t_faults);
	suite_add_tcase(s, api);
	suite_add_tcase(s, envd);
	suite_add_tcase(s, faults);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
