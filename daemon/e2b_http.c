/*
 * e2b_http.c: asynchronous HTTP for the E2B client. One libcurl multi handle
 * driven by the daemon's libevent loop (the model is curl's hiperfifo.c),
 * connections reused, TLS verified, answers capped or streamed, uploads
 * streamed from a file. The only file in the daemon that calls libcurl.
 */
#include <sys/stat.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "osirisd.h"

#define E2B_HTTP_MAX_SECRETS 4
#define E2B_HTTP_TOKEN_MAX 1024 /* X-Next-Token kept at most */
#define E2B_HTTP_CONNECT_TIMEOUT_MS 10000
#define E2B_HTTP_ERROR_MAX 512

/* A socket curl asked us to watch. */
struct e2b_http_sock {
	struct e2b_http *h;
	curl_socket_t fd;
	struct event *ev;
	TAILQ_ENTRY(e2b_http_sock) entry;
};

struct e2b_http_req {
	struct e2b_http *h;
	CURL *easy;
	char *method;
	struct curl_slist *headers;
	char *secrets[E2B_HTTP_MAX_SECRETS];
	size_t nsecrets;
	struct buf body; /* a request body from memory */
	int has_body;
	int body_fd; /* a request body streamed from a file, or -1 */
	off_t body_off, body_size;
	long timeout_ms, stall_s;
	struct buf resp;
	size_t max_body;
	e2b_http_data_cb data_cb;
	e2b_http_done_cb done_cb;
	void *arg;
	int retry_after_s;
	char *next_token;
	char errbuf[CURL_ERROR_SIZE];
	char local_err[256]; /* why we aborted the transfer ourselves */
	int started, attached, dead;
	TAILQ_ENTRY(e2b_http_req) entry;
};

struct e2b_http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer_ev;
	struct event *kick_ev; /* adds and frees, run outside curl's callbacks */
	char *ca_file;
	char *secrets[E2B_HTTP_MAX_SECRETS];
	size_t nsecrets;
	int in_curl; /* inside curl_multi_socket_action: no multi calls allowed */
	TAILQ_HEAD(, e2b_http_req) reqs;
	TAILQ_HEAD(, e2b_http_sock) socks;
};

static int e2b_http_users;

static void e2b_http_kick(struct e2b_http *h)
{
	event_active(h->kick_ev, EV_TIMEOUT, 1);
}

static void e2b_http_secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void e2b_http_req_destroy(struct e2b_http_req *r)
{
	size_t i;

	TAILQ_REMOVE(&r->h->reqs, r, entry);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	for (i = 0; i < r->nsecrets; i++)
		e2b_http_secret_free(r->secrets[i]);
	if (r->body_fd != -1)
		close(r->body_fd);
	buf_free(&r->body);
	buf_free(&r->resp);
	free(r->next_token);
	free(r->method);
	free(r);
}

/* ---- secrets never reach an error text ------------------------------ */

static void e2b_http_scrub_one(char *s, size_t cap, const char *secret)
{
	size_t slen = strlen(secret), tail;
	char *p;

	if (slen < 3)
		return;
	while ((p = strstr(s, secret)) != NULL) {
		tail = strlen(p + slen) + 1;
		if ((size_t)(p - s) + 3 + tail > cap)
			tail = cap - (size_t)(p - s) - 3;
		memmove(p + 3, p + slen, tail);
		memcpy(p, "***", 3);
		s[cap - 1] = '\0';
	}
}

void e2b_http_scrub(const struct e2b_http_req *r, char *s, size_t cap)
{
	size_t i;

	if (cap == 0)
		return;
	for (i = 0; i < r->nsecrets; i++)
		e2b_http_scrub_one(s, cap, r->secrets[i]);
	for (i = 0; i < r->h->nsecrets; i++)
		e2b_http_scrub_one(s, cap, r->h->secrets[i]);
}

void e2b_http_add_secret(struct e2b_http *h, const char *secret)
{
	if (secret == NULL || h->nsecrets == E2B_HTTP_MAX_SECRETS)
		return;
	h->secrets[h->nsecrets++] = xstrdup(secret);
}

/* ---- curl's callbacks ------------------------------------------------ */

static void e2b_http_sock_event_cb(evutil_socket_t fd, short what, void *arg);

static void e2b_http_sock_remove(struct e2b_http *h, struct e2b_http_sock *sk)
{
	TAILQ_REMOVE(&h->socks, sk, entry);
	event_free(sk->ev);
	free(sk);
}

static int e2b_http_multi_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct e2b_http *h = userp;
	struct e2b_http_sock *sk = sockp;
	short kind;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL)
			e2b_http_sock_remove(h, sk);
		return 0;
	}
	if (sk == NULL) {
		sk = xcalloc(1, sizeof(*sk));
		sk->h = h;
		sk->fd = s;
		TAILQ_INSERT_TAIL(&h->socks, sk, entry);
		curl_multi_assign(h->multi, s, sk);
	} else
		event_free(sk->ev);
	kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	sk->ev = event_new(h->base, s, kind, e2b_http_sock_event_cb, h);
	if (sk->ev == NULL || event_add(sk->ev, NULL) == -1)
		fatalx("e2b: cannot watch a socket");
	return 0;
}

static int e2b_http_multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct e2b_http *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer_ev);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer_ev, &tv);
	return 0;
}

static size_t e2b_http_req_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct e2b_http_req *r = arg;
	size_t n = size * nmemb;
	long status = 0;

	if (r->dead)
		return 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (r->data_cb != NULL && status >= 200 && status < 300) {
		if (r->data_cb(r, (const uint8_t *)ptr, n, r->arg) != 0 || r->dead) {
			if (r->local_err[0] == '\0')
				snprintf(r->local_err, sizeof(r->local_err), "transfer aborted by its receiver");
			return 0;
		}
		return n;
	}
	if (n > r->max_body - r->resp.len) {
		snprintf(r->local_err, sizeof(r->local_err), "answer larger than %zu bytes (HTTP %ld)", r->max_body,
		         status);
		return 0;
	}
	buf_add(&r->resp, ptr, n);
	return n;
}

/* Only the two headers the E2B client acts on are looked at. */
static size_t e2b_http_req_header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct e2b_http_req *r = arg;
	size_t n = size * nmemb, vlen;
	const char *v;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) { /* a new answer (after a 1xx) */
		r->retry_after_s = -1;
		free(r->next_token);
		r->next_token = NULL;
		return n;
	}
	if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
		char tmp[16];
		vlen = n - 12 < sizeof(tmp) - 1 ? n - 12 : sizeof(tmp) - 1;
		memcpy(tmp, ptr + 12, vlen);
		tmp[vlen] = '\0';
		char *end;
		long s = strtol(tmp, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		r->retry_after_s = (*end == '\0' && s >= 0 && end != tmp) ? (int)(s > 3600 ? 3600 : s) : -1;
	} else if (n > 13 && strncasecmp(ptr, "X-Next-Token:", 13) == 0) {
		v = ptr + 13;
		vlen = n - 13;
		while (vlen > 0 && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		free(r->next_token);
		r->next_token = vlen > 0 && vlen <= E2B_HTTP_TOKEN_MAX ? xstrndup(v, vlen) : NULL;
	}
	return n;
}

static size_t e2b_http_req_read_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct e2b_http_req *r = arg;
	size_t n = size * nmemb;
	ssize_t got;

	if (r->dead)
		return CURL_READFUNC_ABORT;
	if (r->body_off >= r->body_size)
		return 0;
	if ((off_t)n > r->body_size - r->body_off)
		n = (size_t)(r->body_size - r->body_off);
	do
		got = pread(r->body_fd, ptr, n, r->body_off);
	while (got == -1 && errno == EINTR);
	if (got <= 0) {
		snprintf(r->local_err, sizeof(r->local_err), "reading the upload: %s",
		         got == 0 ? "file shrank while sent" : strerror(errno));
		return CURL_READFUNC_ABORT;
	}
	r->body_off += got;
	return (size_t)got;
}

/* curl rewinds when it must resend (a reused connection was closed). */
static int e2b_http_req_seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct e2b_http_req *r = arg;

	if (origin != SEEK_SET || offset < 0 || offset > r->body_size)
		return CURL_SEEKFUNC_FAIL;
	r->body_off = (off_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* ---- completion ------------------------------------------------------ */

static int e2b_http_code_not_sent(CURLcode code)
{
	return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
	       code == CURLE_COULDNT_RESOLVE_PROXY;
}

static void e2b_http_req_error_text(struct e2b_http_req *r, CURLcode code, char *out, size_t outlen)
{
	const char *why = r->local_err[0] ? r->local_err : r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
	const char *tls = "";

	if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
	    code == CURLE_SSL_CONNECT_ERROR)
		tls = "TLS: ";
	snprintf(out, outlen, "%s%s", tls, log_esc(why, 400));
	e2b_http_scrub(r, out, outlen);
}

static void e2b_http_req_finish(struct e2b_http_req *r, CURLcode code)
{
	struct e2b_http_result res = {.curl_code = (int)code, .retry_after_s = r->retry_after_s};
	char err[E2B_HTTP_ERROR_MAX];

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
	if (code != CURLE_OK) {
		e2b_http_req_error_text(r, code, err, sizeof(err));
		res.error = err;
		res.not_sent = e2b_http_code_not_sent(code);
	}
	buf_cstr(&r->resp);
	res.body = r->resp.data;
	res.body_len = r->resp.len;
	res.next_token = r->next_token;
	r->dead = 1;
	r->done_cb(r, &res, r->arg);
}

static void e2b_http_check_done(struct e2b_http *h)
{
	struct e2b_http_req *r;
	CURLcode code;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		code = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_multi_remove_handle(h->multi, r->easy);
		r->attached = 0;
		if (!r->dead)
			e2b_http_req_finish(r, code);
		r->dead = 1;
		e2b_http_kick(h);
	}
}

static void e2b_http_action(struct e2b_http *h, curl_socket_t fd, int action)
{
	int running;

	h->in_curl++;
	curl_multi_socket_action(h->multi, fd, action, &running);
	h->in_curl--;
	e2b_http_check_done(h);
}

static void e2b_http_sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	e2b_http_action(arg, fd, action);
}

static void e2b_http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	e2b_http_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* Outside curl: attach new requests, detach cancelled ones, free the dead. */
static void e2b_http_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct e2b_http *h = arg;
	struct e2b_http_req *r, *next;
	CURLMcode mc;

	(void)fd;
	(void)what;
	for (r = TAILQ_FIRST(&h->reqs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (r->dead && r->attached) {
			curl_multi_remove_handle(h->multi, r->easy);
			r->attached = 0;
		}
		if (r->dead) {
			e2b_http_req_destroy(r);
			continue;
		}
		if (!r->started || r->attached)
			continue;
		if ((mc = curl_multi_add_handle(h->multi, r->easy)) != CURLM_OK) {
			snprintf(r->local_err, sizeof(r->local_err), "%s", curl_multi_strerror(mc));
			e2b_http_req_finish(r, CURLE_FAILED_INIT);
			e2b_http_kick(h);
			continue;
		}
		r->attached = 1;
	}
}

/* ---- the client's side ----------------------------------------------- */

struct e2b_http *e2b_http_new(struct event_base *base, const char *ca_file, char *err, size_t errlen)
{
	struct e2b_http *h;

	if (ca_file != NULL && access(ca_file, R_OK) != 0) {
		snprintf(err, errlen, "CA file %s: %s", ca_file, strerror(errno));
		return NULL;
	}
	if (e2b_http_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		e2b_http_users--;
		snprintf(err, errlen, "curl_global_init failed");
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->ca_file = ca_file != NULL ? xstrdup(ca_file) : NULL;
	TAILQ_INIT(&h->reqs);
	TAILQ_INIT(&h->socks);
	if ((h->multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	h->timer_ev = evtimer_new(base, e2b_http_timer_cb, h);
	h->kick_ev = event_new(base, -1, 0, e2b_http_kick_cb, h);
	if (h->timer_ev == NULL || h->kick_ev == NULL)
		fatalx("e2b: cannot create events");
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, e2b_http_multi_sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, e2b_http_multi_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return h;
}

void e2b_http_free(struct e2b_http *h)
{
	struct e2b_http_req *r;
	struct e2b_http_sock *sk;
	size_t i;

	if (h == NULL)
		return;
	while ((r = TAILQ_FIRST(&h->reqs)) != NULL) {
		if (r->attached)
			curl_multi_remove_handle(h->multi, r->easy);
		e2b_http_req_destroy(r);
	}
	curl_multi_cleanup(h->multi);
	while ((sk = TAILQ_FIRST(&h->socks)) != NULL)
		e2b_http_sock_remove(h, sk);
	event_free(h->timer_ev);
	event_free(h->kick_ev);
	for (i = 0; i < h->nsecrets; i++)
		e2b_http_secret_free(h->secrets[i]);
	free(h->ca_file);
	free(h);
	if (--e2b_http_users == 0)
		curl_global_cleanup();
}

size_t e2b_http_active(const struct e2b_http *h)
{
	const struct e2b_http_req *r;
	size_t n = 0;

	TAILQ_FOREACH(r, &h->reqs, entry)
	if (!r->dead)
		n++;
	return n;
}

static void e2b_http_req_setopts(struct e2b_http_req *r, const char *url)
{
	CURL *e = r->easy;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (r->h->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, r->h->ca_file);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)E2B_HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "osirisd/" OSIRIS_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, e2b_http_req_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, e2b_http_req_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
}

struct e2b_http_req *e2b_http_req_new(struct e2b_http *h, const char *method, const char *url)
{
	struct e2b_http_req *r = xcalloc(1, sizeof(*r));

	r->h = h;
	r->method = xstrdup(method);
	r->body_fd = -1;
	r->retry_after_s = -1;
	r->max_body = E2B_HTTP_MAX_BODY_DEFAULT;
	r->timeout_ms = 60000;
	buf_init(&r->body);
	buf_init(&r->resp);
	if ((r->easy = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	e2b_http_req_setopts(r, url);
	/* No 100-continue round trip before a body. */
	r->headers = curl_slist_append(r->headers, "Expect:");
	TAILQ_INSERT_TAIL(&h->reqs, r, entry);
	return r;
}

void e2b_http_req_header(struct e2b_http_req *r, const char *name, const char *value, int secret)
{
	char *line;

	xasprintf(&line, "%s: %s", name, value);
	r->headers = curl_slist_append(r->headers, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (r->headers == NULL)
		fatalx("curl_slist_append failed");
	if (secret && r->nsecrets < E2B_HTTP_MAX_SECRETS)
		r->secrets[r->nsecrets++] = xstrdup(value);
}

void e2b_http_req_body(struct e2b_http_req *r, const void *data, size_t len)
{
	buf_reset(&r->body);
	buf_add(&r->body, data, len);
	r->has_body = 1;
}

int e2b_http_req_body_fd(struct e2b_http_req *r, int fd, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "upload source is not a regular file");
		return -1;
	}
	if ((r->body_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		return -1;
	}
	r->body_size = st.st_size;
	return 0;
}

void e2b_http_req_timeout(struct e2b_http_req *r, long timeout_ms, long stall_s)
{
	r->timeout_ms = timeout_ms;
	r->stall_s = stall_s;
}

void e2b_http_req_max_body(struct e2b_http_req *r, size_t max)
{
	r->max_body = max;
}

void e2b_http_req_stream(struct e2b_http_req *r, e2b_http_data_cb cb)
{
	r->data_cb = cb;
}

static void e2b_http_req_set_body(struct e2b_http_req *r)
{
	CURL *e = r->easy;

	if (r->body_fd != -1) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_size);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, e2b_http_req_read_cb);
		curl_easy_setopt(e, CURLOPT_READDATA, r);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, e2b_http_req_seek_cb);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
	} else if (r->has_body || strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.len ? (char *)r->body.data : "");
	}
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
}

void e2b_http_req_start(struct e2b_http_req *r, e2b_http_done_cb cb, void *arg)
{
	CURL *e = r->easy;

	r->done_cb = cb;
	r->arg = arg;
	e2b_http_req_set_body(r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	if (r->timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	if (r->stall_s > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, r->stall_s);
	}
	r->started = 1;
	e2b_http_kick(r->h);
}

void e2b_http_req_cancel(struct e2b_http_req *r)
{
	if (r == NULL || r->dead)
		return;
	r->dead = 1;
	if (r->attached && r->h->in_curl == 0) {
		curl_multi_remove_handle(r->h->multi, r->easy);
		r->attached = 0;
	}
	e2b_http_kick(r->h);
}

char *e2b_url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
	unsigned char ch;

	for (; *s; s++) {
		ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '.' || ch == '_' || ch == '~') {
			*o++ = (char)ch;
			continue;
		}
		*o++ = '%';
		*o++ = hex[ch >> 4];
		*o++ = hex[ch & 15];
	}
	*o = '\0';
	return out;
}
