/*
 * httpc_ossl.c: the HTTP POSTs of graphql.extractor in the static worker,
 * where no static libcurl can be linked (drivers/README.md): HTTP/1.1 over
 * a TCP socket, TLS by OpenSSL (certificate and host name verified unless
 * validate_ssl is false; the system CAs, or SSL_CERT_FILE/SSL_CERT_DIR).
 * One connection per request ("Connection: close"), no proxies, no
 * redirects, no compression; Content-Length, chunked or close-delimited
 * bodies. The whole request shares one deadline (timeout); a cancelled step
 * is seen within a second.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "drivers.h"

#define HTTPC_HEAD_MAX (64 * 1024)

struct httpc {
	struct driver_ctx *ctx;
	int tls, verify;
	char host[256], port[8], *path;
	int64_t timeout;
	struct buf hdrs; /* "Name: value\r\n" lines */
	/* one request */
	int fd;
	SSL_CTX *sctx;
	SSL *ssl;
	double deadline;
};

static double httpc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* http[s]://host[:port][/path]; [v6] hosts. -1 when malformed. */
static int httpc_url(struct httpc *h, const char *url)
{
	const char *p, *hend, *pstart;
	size_t n;

	if (strncasecmp(url, "https://", 8) == 0)
		h->tls = 1, p = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return -1;
	pstart = p + strcspn(p, "/?#");
	if (*p == '[') {
		if ((hend = memchr(p, ']', (size_t)(pstart - p))) == NULL)
			return -1;
		n = (size_t)(hend - p - 1);
		p++;
		hend++;
	} else {
		hend = memchr(p, ':', (size_t)(pstart - p));
		if (hend == NULL)
			hend = pstart;
		n = (size_t)(hend - p);
	}
	if (n == 0 || n >= sizeof(h->host) || memchr(p, '@', n) != NULL)
		return -1;
	memcpy(h->host, p, n);
	h->host[n] = '\0';
	if (*hend == ':') {
		n = (size_t)(pstart - hend - 1);
		if (n == 0 || n >= sizeof(h->port) || strspn(hend + 1, "0123456789") < n)
			return -1;
		memcpy(h->port, hend + 1, n);
		h->port[n] = '\0';
	} else if (hend != pstart) {
		return -1;
	} else {
		snprintf(h->port, sizeof(h->port), "%s", h->tls ? "443" : "80");
	}
	if (*pstart == '/')
		h->path = xstrdup(pstart);
	else
		xasprintf(&h->path, "/%s", pstart); /* "?query" or "" */
	h->path[strcspn(h->path, "#")] = '\0';
	return 0;
}

struct httpc *httpc_new(struct driver_ctx *ctx, const char *url, int64_t timeout, int verify)
{
	struct httpc *h = xcalloc(1, sizeof(*h));

	h->ctx = ctx;
	h->timeout = timeout;
	h->verify = verify;
	h->fd = -1;
	buf_init(&h->hdrs);
	if (httpc_url(h, url) == -1) {
		/* httpc_post says so: keep the object, mark it unusable */
		h->host[0] = '\0';
	}
	return h;
}

void httpc_header(struct httpc *h, const char *line)
{
	buf_adds(&h->hdrs, line);
	buf_add(&h->hdrs, "\r\n", 2);
}

void httpc_basic(struct httpc *h, const char *user, const char *pass)
{
	struct buf up;
	unsigned char *b64;
	size_t n;

	buf_init(&up);
	buf_printf(&up, "%s:%s", user, pass);
	n = 4 * ((up.len + 2) / 3) + 1;
	b64 = xmalloc(n);
	EVP_EncodeBlock(b64, up.data, (int)up.len);
	buf_printf(&h->hdrs, "Authorization: Basic %s\r\n", (char *)b64);
	explicit_bzero(b64, n);
	explicit_bzero(up.data, up.len);
	free(b64);
	buf_free(&up);
}

/* Wait for fd to be ready (POLLIN/POLLOUT) in 1 s slices until the deadline,
 * watching for cancellation. 0 ready, -1 with err. */
static int httpc_wait(struct httpc *h, short ev, char *err, size_t errlen)
{
	struct pollfd p = {.fd = h->fd, .events = ev};
	double left;
	int rc;

	for (;;) {
		if (ctx_cancelled(h->ctx)) {
			snprintf(err, errlen, "cancelled");
			return -1;
		}
		if ((left = h->deadline - httpc_now()) <= 0) {
			snprintf(err, errlen, "timed out after %lld s", (long long)h->timeout);
			return -1;
		}
		rc = poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int httpc_connect(struct httpc *h, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
	socklen_t len;
	int rc, e = 0;

	if ((rc = getaddrinfo(h->host, h->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", log_esc(h->host, 100), gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((h->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
			continue;
		if (connect(h->fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && httpc_wait(h, POLLOUT, err, errlen) == 0 &&
		     (len = sizeof(e), getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &e, &len)) == 0 && e == 0))
			break;
		if (e == 0)
			e = errno;
		close(h->fd);
		h->fd = -1;
		if (ctx_cancelled(h->ctx) || h->deadline <= httpc_now())
			break;
	}
	freeaddrinfo(res);
	if (h->fd == -1) {
		if (!ctx_cancelled(h->ctx) && h->deadline > httpc_now())
			snprintf(err, errlen, "cannot connect to %s port %s: %s", log_esc(h->host, 100), h->port,
			         strerror(e));
		return -1;
	}
	return 0;
}

/* Drive one SSL call to completion: >0 bytes, 0 EOF, -1 error (err). */
static int httpc_ssl_io(struct httpc *h, int wr, void *p, int n, char *err, size_t errlen)
{
	int rc, e;

	for (;;) {
		ERR_clear_error();
		rc = h->ssl == NULL ? -2
		     : wr == 2      ? SSL_connect(h->ssl)
		     : wr           ? SSL_write(h->ssl, p, n)
		                    : SSL_read(h->ssl, p, n);
		if (rc > 0)
			return rc;
		e = SSL_get_error(h->ssl, rc);
		if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && rc == 0 && wr == 0))
			return 0;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (httpc_wait(h, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, err, errlen) == -1)
				return -1;
			continue;
		}
		if (wr == 2 && SSL_get_verify_result(h->ssl) != X509_V_OK)
			snprintf(err, errlen, "TLS: certificate of %s not verified: %s", log_esc(h->host, 100),
			         X509_verify_cert_error_string(SSL_get_verify_result(h->ssl)));
		else
			snprintf(err, errlen, "TLS: %s",
			         e == SSL_ERROR_SYSCALL && errno != 0 ? strerror(errno)
			         : ERR_peek_last_error()              ? ERR_reason_error_string(ERR_peek_last_error())
			                                              : "connection closed");
		return -1;
	}
}

/* 0, or -1 (err; *final for a certificate the peer cannot prove). */
static int httpc_tls(struct httpc *h, int *final, char *err, size_t errlen)
{
	unsigned char a[16];
	int ip;

	if ((h->sctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "TLS: cannot set up OpenSSL");
		return -1;
	}
	SSL_CTX_set_min_proto_version(h->sctx, TLS1_2_VERSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* servers that close without close_notify (as libcurl allows): the
	 * body's framing (Content-Length, chunked) still catches a cut */
	SSL_CTX_set_options(h->sctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (h->verify)
		SSL_CTX_set_default_verify_paths(h->sctx);
	if ((h->ssl = SSL_new(h->sctx)) == NULL) { /* it takes the context's settings */
		snprintf(err, errlen, "TLS: cannot set up OpenSSL");
		return -1;
	}
	ip = inet_pton(AF_INET, h->host, a) == 1 || inet_pton(AF_INET6, h->host, a) == 1;
	if (h->verify) {
		SSL_set_verify(h->ssl, SSL_VERIFY_PEER, NULL);
		if (ip) /* an address is matched against the IP names, a host name against the DNS ones */
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), h->host);
		else
			SSL_set1_host(h->ssl, h->host);
	}
	if (!ip) /* SNI carries host names only */
		SSL_set_tlsext_host_name(h->ssl, h->host);
	SSL_set_fd(h->ssl, h->fd);
	if (httpc_ssl_io(h, 2, NULL, 0, err, errlen) <= 0) {
		*final = h->verify && SSL_get_verify_result(h->ssl) != X509_V_OK;
		return -1;
	}
	return 0;
}

static int httpc_io(struct httpc *h, int wr, void *p, size_t n, char *err, size_t errlen)
{
	ssize_t rc;

	if (h->ssl != NULL)
		return httpc_ssl_io(h, wr, p, n > (1 << 30) ? 1 << 30 : (int)n, err, errlen);
	for (;;) {
		rc = wr ? send(h->fd, p, n, MSG_NOSIGNAL) : recv(h->fd, p, n, 0);
		if (rc >= 0)
			return (int)rc;
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "%s", strerror(errno));
			return -1;
		}
		if (httpc_wait(h, wr ? POLLOUT : POLLIN, err, errlen) == -1)
			return -1;
	}
}

static int httpc_send(struct httpc *h, const char *p, size_t n, char *err, size_t errlen)
{
	int rc;

	while (n > 0) {
		if ((rc = httpc_io(h, 1, (void *)(uintptr_t)p, n, err, errlen)) <= 0) {
			if (rc == 0)
				snprintf(err, errlen, "connection closed while sending");
			return -1;
		}
		p += rc;
		n -= (size_t)rc;
	}
	return 0;
}

/* 1 when raw holds a whole response by its own framing (a server that
 * keeps the connection open despite "Connection: close" is not waited for). */
static int httpc_complete(const struct buf *raw)
{
	const char *p = (const char *)raw->data, *eoh, *line, *nl;
	unsigned long long clen;
	char *end;

	if (raw->len < 4 || (eoh = memmem(p, raw->len, "\r\n\r\n", 4)) == NULL)
		return 0;
	for (line = p; line < eoh; line = nl + 2) {
		nl = memmem(line, (size_t)(eoh + 2 - line), "\r\n", 2);
		if (strncasecmp(line, "Content-Length:", 15) == 0) {
			clen = strtoull(line + 15, &end, 10);
			return clen <= raw->len - (size_t)(eoh + 4 - p);
		}
		if (strncasecmp(line, "Transfer-Encoding:", 18) == 0)
			return raw->len >= 5 && memcmp(p + raw->len - 5, "0\r\n\r\n", 5) == 0 &&
			       (size_t)(eoh + 4 - p) < raw->len - 5 + 1;
	}
	return 0;
}

/* The whole response into raw, at most max + head. */
static int httpc_recv_all(struct httpc *h, struct buf *raw, size_t max, char *err, size_t errlen)
{
	char tmp[16384];
	int rc;

	for (;;) {
		if (httpc_complete(raw))
			return 0;
		if ((rc = httpc_io(h, 0, tmp, sizeof(tmp), err, errlen)) < 0)
			return -1;
		if (rc == 0)
			return 0;
		if (raw->len + (size_t)rc > max + HTTPC_HEAD_MAX) {
			snprintf(err, errlen, "the response is larger than %zu bytes", max);
			return -2;
		}
		buf_add(raw, tmp, (size_t)rc);
	}
}

/* De-chunk src into out. -1 when malformed or cut. */
static int httpc_dechunk(const char *p, const char *end, struct buf *out)
{
	unsigned long long n;
	char *e;

	for (;;) {
		n = strtoull(p, &e, 16);
		if (e == p || (e = memmem(e, (size_t)(end - e), "\r\n", 2)) == NULL)
			return -1;
		p = e + 2;
		if (n == 0)
			return 0;
		if (n > (unsigned long long)(end - p) || (size_t)(end - p) - n < 2)
			return -1;
		buf_add(out, p, n);
		p += n + 2;
	}
}

/* Status line, headers, body of raw. 1 (retry) when cut or garbled. */
static int httpc_parse(struct buf *raw, struct buf *out, long *status, char *err, size_t errlen)
{
	const char *p = (const char *)raw->data, *end = p + raw->len, *eoh, *line, *nl, *c;
	unsigned long long clen = 0;
	int chunked = 0, have_len = 0;

	buf_addc(raw, '\0');
	raw->len--;
	if (raw->len == 0) {
		snprintf(err, errlen, "empty reply from the server");
		return 1;
	}
	if ((eoh = memmem(p, raw->len, "\r\n\r\n", 4)) == NULL || sscanf(p, "HTTP/1.%*1[01] %3ld", status) != 1) {
		snprintf(err, errlen, "a cut or malformed HTTP response");
		return 1;
	}
	for (line = strstr(p, "\r\n") + 2; line < eoh; line = nl + 2) {
		nl = strstr(line, "\r\n");
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			have_len = 1, clen = strtoull(line + 15, NULL, 10);
		else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
		         (c = strcasestr(line, "chunked")) != NULL && c < nl)
			chunked = 1;
	}
	p = eoh + 4;
	if (chunked) {
		if (httpc_dechunk(p, end, out) == -1) {
			snprintf(err, errlen, "a cut chunked HTTP response");
			return 1;
		}
	} else if (have_len) {
		if (clen > (unsigned long long)(end - p)) {
			snprintf(err, errlen, "the connection was cut after %zu of %llu body bytes", (size_t)(end - p),
			         clen);
			return 1;
		}
		buf_add(out, p, (size_t)clen);
	} else {
		buf_add(out, p, (size_t)(end - p));
	}
	return 0;
}

static void httpc_close(struct httpc *h)
{
	if (h->ssl != NULL)
		SSL_free(h->ssl);
	if (h->sctx != NULL)
		SSL_CTX_free(h->sctx);
	if (h->fd != -1)
		close(h->fd);
	h->ssl = NULL;
	h->sctx = NULL;
	h->fd = -1;
}

int httpc_post(struct httpc *h, const char *payload, struct buf *out, size_t max, long *status, char *err,
               size_t errlen)
{
	struct buf req, raw;
	int rc = 1, final = 0;

	*status = 0;
	if (h->host[0] == '\0') {
		snprintf(err, errlen, "not an http:// or https:// URL");
		return -1;
	}
	h->deadline = httpc_now() + (double)h->timeout;
	buf_init(&req);
	buf_init(&raw);
	buf_printf(&req,
	           "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: osiris-worker/%s\r\n"
	           "Connection: close\r\nContent-Length: %zu\r\n",
	           h->path, strchr(h->host, ':') ? "[" : "", h->host, strchr(h->host, ':') ? "]" : "",
	           strcmp(h->port, h->tls ? "443" : "80") ? ":" : "",
	           strcmp(h->port, h->tls ? "443" : "80") ? h->port : "", OSIRIS_VERSION, strlen(payload));
	buf_add(&req, h->hdrs.data, h->hdrs.len);
	buf_add(&req, "\r\n", 2);
	buf_adds(&req, payload);
	if (httpc_connect(h, err, errlen) == 0 && (!h->tls || httpc_tls(h, &final, err, errlen) == 0) &&
	    httpc_send(h, (const char *)req.data, req.len, err, errlen) == 0) {
		rc = httpc_recv_all(h, &raw, max, err, errlen);
		if (rc == 0)
			rc = httpc_parse(&raw, out, status, err, errlen);
		else
			rc = rc == -2 ? -1 : 1;
	} else {
		rc = final ? -1 : 1;
	}
	httpc_close(h);
	explicit_bzero(req.data, req.len);
	buf_free(&req);
	buf_free(&raw);
	return rc;
}

void httpc_free(struct httpc *h)
{
	if (h == NULL)
		return;
	httpc_close(h);
	explicit_bzero(h->hdrs.data, h->hdrs.len);
	buf_free(&h->hdrs);
	free(h->path);
	free(h);
}
