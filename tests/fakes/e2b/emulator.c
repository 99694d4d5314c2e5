/*
 * emulator.c: e2b-emulator's main: flags, the libevent HTTP server, and the
 * router that splits one loopback port into the E2B control plane and envd
 * (by E2b-Sandbox-Id header or a "49983-<id>.<domain>" Host, like E2B's proxy).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/rand.h>

#include "emulator.h"

struct emu emu;

static void emu_vlog(const char *level, const char *fmt, va_list ap) __attribute__((__format__(__printf__, 2, 0)));

static void emu_vlog(const char *level, const char *fmt, va_list ap)
{
	char ts[32];

	emu_iso8601(emu_now_ms(), ts, sizeof(ts));
	fprintf(stderr, "%s e2b-emulator[%d]: %s", ts, (int)getpid(), level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void emu_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emu_vlog("", fmt, ap);
	va_end(ap);
}

void emu_debug(const char *fmt, ...)
{
	va_list ap;

	if (!emu.verbose)
		return;
	va_start(ap, fmt);
	emu_vlog("debug: ", fmt, ap);
	va_end(ap);
}

void emu_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emu_vlog("fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void *emu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		emu_fatal("out of memory (%zu bytes)", n);
	return p;
}

void *emu_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		emu_fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

char *emu_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		emu_fatal("out of memory");
	return p;
}

int64_t emu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 in UTC with milliseconds, as the E2B API prints startedAt/endAt. */
void emu_iso8601(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
}

const char *emu_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 499:
		return "Client Closed Request";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 507:
		return "Insufficient Storage";
	default:
		return "Unknown";
	}
}

void emu_reply_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = json_dumps(body, JSON_COMPACT);

	if (out == NULL || text == NULL)
		emu_fatal("out of memory");
	evbuffer_add(out, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json; charset=utf-8");
	evhttp_send_reply(req, code, emu_reason(code), out);
	evbuffer_free(out);
	free(text);
	json_decref(body);
}

void emu_reply_empty(struct evhttp_request *req, int code)
{
	evhttp_send_reply(req, code, emu_reason(code), NULL);
}

/* The control plane's and envd's REST error body: {"code":<int>,"message":...}. */
void emu_reply_api_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emu_reply_json(req, code, json_pack("{s:i,s:s}", "code", code, "message", msg));
}

json_t *emu_read_json_body(struct evhttp_request *req, char *err, size_t errlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *j;

	if (len == 0)
		return json_object();
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
	if (j == NULL) {
		snprintf(err, errlen, "invalid JSON body: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		snprintf(err, errlen, "request body must be a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

const char *emu_header(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* len chars of [a-z0-9], like E2B's uniuri.NewLenChars(20, "a-z0-9"). */
void emu_random_id(char *out, size_t len)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[64];
	size_t i;

	if (len > sizeof(rnd) || RAND_bytes(rnd, (int)len) != 1)
		emu_fatal("RAND_bytes failed");
	for (i = 0; i < len; i++)
		out[i] = alphabet[rnd[i] % 36];
	out[len] = '\0';
}

void emu_set_timer(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(ev, &tv);
}

/* E2B's proxy honours routing headers only for sandbox.*, localhost or an IP. */
static int emulator_host_takes_headers(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	char h[256];
	char *colon;

	if (host == NULL)
		return 1;
	snprintf(h, sizeof(h), "%s", host);
	if (h[0] == '[') {
		char *end = strchr(h, ']');
		if (end != NULL)
			*end = '\0';
		return inet_pton(AF_INET6, h + 1, &a6) == 1;
	}
	if ((colon = strrchr(h, ':')) != NULL)
		*colon = '\0';
	return strcmp(h, "localhost") == 0 || strncmp(h, "sandbox.", 8) == 0 || inet_pton(AF_INET, h, &a4) == 1;
}

/* "49983-<id>.<domain>" → port and id; 0 when the host is not of that shape. */
static int emulator_host_sandbox(const char *host, int *port, char *id, size_t idlen)
{
	const char *p = host, *dash, *dot;
	size_t n;

	if (host == NULL || !isdigit((unsigned char)*p))
		return 0;
	*port = 0;
	while (isdigit((unsigned char)*p) && *port < 100000)
		*port = *port * 10 + (*p++ - '0');
	dash = p;
	if (*dash != '-')
		return 0;
	dot = strchr(dash + 1, '.');
	if (dot == NULL)
		return 0;
	n = (size_t)(dot - dash - 1);
	if (n == 0 || n >= idlen)
		return 0;
	memcpy(id, dash + 1, n);
	id[n] = '\0';
	return 1;
}

static void emulator_envd(struct evhttp_request *req, const char *id, const char *path, const char *query)
{
	struct sandbox *sbx = sandbox_find(id);
	const char *token;
	char endpoint[128];
	int status, retry;

	if (sbx == NULL || sbx->dead) {
		emu_debug("envd sandbox=%s path=%s: not found", id, path);
		emu_reply_json(
		    req, 502,
		    json_pack("{s:s,s:s,s:i}", "sandboxId", id, "message", "The sandbox was not found", "code", 502));
		return;
	}
	if (strncmp(path, "/process.Process/", 17) == 0)
		snprintf(endpoint, sizeof(endpoint), "process.%s", path + 17);
	else if (strncmp(path, "/filesystem.Filesystem/", 23) == 0)
		snprintf(endpoint, sizeof(endpoint), "filesystem.%s", path + 23);
	else
		snprintf(endpoint, sizeof(endpoint), "%s", path[0] == '/' ? path + 1 : path);
	status = fault_check_endpoint(endpoint, &retry);
	if (status == 0 && strcmp(path, "/files") == 0) {
		/* files.get (download) or files.post (upload) alone */
		snprintf(endpoint, sizeof(endpoint), "files.%s",
		         evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "get" : "post");
		status = fault_check_endpoint(endpoint, &retry);
	}
	if (status != 0) {
		emu_log("fault: endpoint=%s status=%d sandbox=%s", endpoint, status, id);
		emu_reply_api_error(req, status, "injected fault on %s", endpoint);
		return;
	}
	if (strcmp(path, "/health") == 0) {
		envd_files_health(req, sbx);
		return;
	}
	if (strcmp(path, "/files") == 0) {
		envd_files_handle(req, sbx, query);
		return;
	}
	/* envd's auth middleware: every other path needs the access token. */
	token = emu_header(req, "X-Access-Token");
	if (sbx->access_token != NULL && (token == NULL || strcmp(token, sbx->access_token) != 0)) {
		emu_reply_api_error(
		    req, 401,
		    "unauthorized access, please provide a valid access token or method signing if supported");
		return;
	}
	if (strncmp(path, "/process.Process/", 17) == 0)
		envd_process_dispatch(req, sbx, path + 17);
	else if (strncmp(path, "/filesystem.Filesystem/", 23) == 0)
		envd_filesystem_dispatch(req, sbx, path + 23);
	else {
		struct evbuffer *out = evbuffer_new();
		evbuffer_add_printf(out, "404 page not found\n");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
		evhttp_send_reply(req, 404, "Not Found", out);
		evbuffer_free(out);
	}
}

static void emulator_request_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	const char *host = emu_header(req, "Host");
	const char *hid = emu_header(req, "E2b-Sandbox-Id");
	const char *hport = emu_header(req, "E2b-Sandbox-Port");
	struct evhttp_uri *u;
	char id[64], *path;
	const char *query;
	int port;

	(void)arg;
	u = evhttp_uri_parse_with_flags(uri, EVHTTP_URI_NONCONFORMANT);
	if (u == NULL || evhttp_uri_get_path(u) == NULL) {
		emu_reply_api_error(req, 400, "malformed request URI");
		if (u != NULL)
			evhttp_uri_free(u);
		return;
	}
	path = evhttp_uridecode(evhttp_uri_get_path(u), 0, NULL);
	query = evhttp_uri_get_query(u);
	emu_debug("%d %s host=%s sandbox=%s", (int)evhttp_request_get_command(req), uri, host ? host : "-",
	          hid ? hid : "-");
	if (emulator_host_sandbox(host, &port, id, sizeof(id))) {
		if (port != EMU_ENVD_PORT)
			emu_reply_json(req, 502,
			               json_pack("{s:s,s:s,s:i,s:i}", "sandboxId", id, "message",
			                         "The sandbox is running but port is not open", "port", port, "code",
			                         502));
		else
			emulator_envd(req, id, path, query);
	} else if ((hid != NULL || hport != NULL) && emulator_host_takes_headers(host)) {
		if (hid == NULL)
			emu_reply_api_error(req, 400, "Missing header: E2b-Sandbox-Id");
		else if (hport == NULL)
			emu_reply_api_error(req, 400, "Missing header: E2b-Sandbox-Port");
		else if (atoi(hport) != EMU_ENVD_PORT)
			emu_reply_json(req, 502,
			               json_pack("{s:s,s:s,s:i,s:i}", "sandboxId", hid, "message",
			                         "The sandbox is running but port is not open", "port", atoi(hport),
			                         "code", 502));
		else
			emulator_envd(req, hid, path, query);
	} else
		api_dispatch(req, path);
	free(path);
	evhttp_uri_free(u);
}

static void emulator_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	emu_log("signal %d: shutting down", (int)sig);
	event_base_loopexit(emu.base, NULL);
}

static void emulator_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	pid_t pid;
	int status;

	(void)sig;
	(void)what;
	(void)arg;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		envd_process_child_exited(pid, status);
}

static __dead void emulator_usage(int code)
{
	FILE *f = code ? stderr : stdout;

	fprintf(f,
	        "usage: e2b-emulator [--listen ADDR:PORT] [--port-file FILE] [--root DIR] [--api-key KEY]\n"
	        "                    [--create-delay-ms N] [--fault SPEC]... [--no-bwrap]\n"
	        "                    [--tls-cert FILE --tls-key FILE] [-v]\n"
	        "\n"
	        "Offline stand-in for the E2B cloud: the control plane (POST /sandboxes, GET /v2/sandboxes, ...)\n"
	        "and envd (/health, /files, process.Process, filesystem.Filesystem) on one loopback port.\n"
	        "Point the SDKs at it with E2B_API_URL=http://ADDR:PORT and E2B_SANDBOX_URL=http://ADDR:PORT;\n"
	        "envd calls are routed by the E2b-Sandbox-Id header or a Host of 49983-<id>.<domain>.\n"
	        "\n"
	        "  --listen ADDR:PORT    loopback address to bind (default 127.0.0.1:0, port 0 = any)\n"
	        "  --port-file FILE      write the bound port (decimal + newline) to FILE once listening\n"
	        "  --root DIR            parent of the sandboxes' directories (default: a new /tmp dir)\n"
	        "  --api-key KEY         accept only this X-API-Key (default: any non-empty key)\n"
	        "  --create-delay-ms N   delay each create like a cold start (the cloud: ~820)\n"
	        "  --fault SPEC          inject a failure; repeatable. SPEC grammar:\n"
	        "%s"
	        "  --no-bwrap            do not isolate processes with bubblewrap even if it works\n"
	        "  --tls-cert FILE       serve HTTPS with this PEM certificate chain (with --tls-key)\n"
	        "  --tls-key FILE        the certificate's PEM private key\n"
	        "  -v, --verbose         log every request\n"
	        "  -h, --help            this help\n",
	        fault_usage());
	exit(code);
}

static int emulator_is_loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

static void emulator_parse_listen(const char *spec, char *addr, size_t addrlen, int *port)
{
	const char *colon = strrchr(spec, ':');
	char *end;
	long p;

	if (colon == NULL || (size_t)(colon - spec) >= addrlen)
		emu_fatal("--listen %s: expected ADDR:PORT", spec);
	if (spec[0] == '[' && colon > spec + 1 && colon[-1] == ']') {
		memcpy(addr, spec + 1, (size_t)(colon - spec - 2));
		addr[colon - spec - 2] = '\0';
	} else {
		memcpy(addr, spec, (size_t)(colon - spec));
		addr[colon - spec] = '\0';
	}
	if (strcmp(addr, "localhost") == 0)
		snprintf(addr, addrlen, "127.0.0.1");
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || p < 0 || p > 65535)
		emu_fatal("--listen %s: bad port", spec);
	if (!emulator_is_loopback(addr))
		emu_fatal("--listen %s: only loopback addresses are allowed", spec);
	*port = (int)p;
}

static void emulator_write_port_file(const char *file, int port)
{
	char tmp[PATH_MAX];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid());
	if ((f = fopen(tmp, "w")) == NULL)
		emu_fatal("--port-file %s: %s", file, strerror(errno));
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, file) != 0)
		emu_fatal("--port-file %s: %s", file, strerror(errno));
}

static int emulator_listen(const char *addr, int port)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd;
	int one = 1;

	bs = evhttp_bind_socket_with_handle(emu.http, addr, (ev_uint16_t)port);
	if (bs == NULL)
		emu_fatal("cannot listen on %s:%d: %s", addr, port, strerror(errno));
	fd = evhttp_bound_socket_get_fd(bs);
	/* Accepted connections inherit it: a response's small writes (a
	 * Connect envelope per worker message) go out at once, as from E2B's
	 * edge (Go sets TCP_NODELAY), not after a delayed ACK. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		emu_fatal("setsockopt TCP_NODELAY: %s", strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		emu_fatal("getsockname: %s", strerror(errno));
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static char *emulator_default_root(void)
{
	char tmpl[] = "/tmp/e2b-emulator.XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		emu_fatal("mkdtemp: %s", strerror(errno));
	return emu_xstrdup(tmpl);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"root", required_argument, NULL, 'r'},
	    {"api-key", required_argument, NULL, 'k'},
	    {"create-delay-ms", required_argument, NULL, 'd'},
	    {"fault", required_argument, NULL, 'f'},
	    {"no-bwrap", no_argument, NULL, 'B'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen = "127.0.0.1:0", *port_file = NULL, *tls_cert = NULL, *tls_key = NULL;
	struct event *sigint_ev, *sigterm_ev, *sigchld_ev;
	char addr[128], err[256], *end;
	int c, port, no_bwrap = 0, root_owned = 0;
	long v;

	TAILQ_INIT(&emu.sandboxes);
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'r':
			emu.root = emu_xstrdup(optarg);
			break;
		case 'k':
			emu.api_key = emu_xstrdup(optarg);
			break;
		case 'd':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 0 || v > 600000)
				emu_fatal("--create-delay-ms %s: expected 0..600000", optarg);
			emu.create_delay_ms = (int)v;
			break;
		case 'f':
			if (fault_parse(optarg, err, sizeof(err)) != 0)
				emu_fatal("--fault %s: %s", optarg, err);
			break;
		case 'B':
			no_bwrap = 1;
			break;
		case 'C':
			tls_cert = optarg;
			break;
		case 'K':
			tls_key = optarg;
			break;
		case 'v':
			emu.verbose = 1;
			break;
		case 'h':
			emulator_usage(0);
		default:
			emulator_usage(2);
		}
	}
	if (optind != argc || (tls_cert == NULL) != (tls_key == NULL))
		emulator_usage(2);
	emulator_parse_listen(listen, addr, sizeof(addr), &port);
	if (emu.root == NULL) {
		emu.root = emulator_default_root();
		root_owned = 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((emu.base = event_base_new()) == NULL || (emu.http = evhttp_new(emu.base)) == NULL)
		emu_fatal("libevent init failed");
	emu.use_bwrap = !no_bwrap;
	if (sandbox_init(emu.root) != 0)
		emu_fatal("--root %s: %s", emu.root, strerror(errno));
	evhttp_set_allowed_methods(emu.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
	                                         EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_max_body_size(emu.http, EMU_MAX_BODY);
	evhttp_set_timeout(emu.http, 640); /* envd's IdleTimeout */
	evhttp_set_gencb(emu.http, emulator_request_cb, NULL);
	if (tls_cert != NULL)
		tls_init(emu.http, tls_cert, tls_key);
	port = emulator_listen(addr, port);
	sigint_ev = evsignal_new(emu.base, SIGINT, emulator_signal_cb, NULL);
	sigterm_ev = evsignal_new(emu.base, SIGTERM, emulator_signal_cb, NULL);
	sigchld_ev = evsignal_new(emu.base, SIGCHLD, emulator_sigchld_cb, NULL);
	evsignal_add(sigint_ev, NULL);
	evsignal_add(sigterm_ev, NULL);
	evsignal_add(sigchld_ev, NULL);
	if (port_file != NULL)
		emulator_write_port_file(port_file, port);
	emu_log("listening on %s://%s:%d root=%s isolation=%s create_delay_ms=%d faults=%zu",
	        tls_cert != NULL ? "https" : "http", addr, port, emu.root, emu.use_bwrap ? "bwrap" : "plain-directory",
	        emu.create_delay_ms, emu.nfaults);
	event_base_dispatch(emu.base);
	sandbox_shutdown();
	if (root_owned && rmdir(emu.root) != 0)
		emu_log("cannot remove %s: %s", emu.root, strerror(errno));
	evhttp_free(emu.http);
	tls_shutdown();
	event_free(sigint_ev);
	event_free(sigterm_ev);
	event_free(sigchld_ev);
	event_base_free(emu.base);
	free(emu.root);
	free(emu.api_key);
	return 0;
}
