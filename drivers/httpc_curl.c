/*
 * httpc_curl.c: the HTTP POSTs of graphql.extractor over libcurl (blocking
 * easy API: the worker runs one step at a time), in the dynamic worker.
 * The static worker has httpc_ossl.c instead (drivers.h).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

struct httpc {
	struct driver_ctx *ctx;
	CURL *curl;
	struct curl_slist *hdrs;
	struct buf *out;
	size_t max;
	char *user, *pass;
};

static size_t httpc_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct httpc *h = arg;

	if (h->out->len + size * n > h->max)
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	buf_add(h->out, p, size * n);
	return size * n;
}

static int httpc_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return ctx_cancelled(((struct httpc *)arg)->ctx);
}

struct httpc *httpc_new(struct driver_ctx *ctx, const char *url, int64_t timeout, int verify)
{
	struct httpc *h = xcalloc(1, sizeof(*h));

	h->ctx = ctx;
	if ((h->curl = curl_easy_init()) == NULL) {
		free(h);
		return NULL;
	}
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, httpc_write_cb);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, httpc_progress_cb);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, (long)timeout);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "osiris-worker/" OSIRIS_VERSION);
	curl_easy_setopt(h->curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	return h;
}

void httpc_header(struct httpc *h, const char *line)
{
	h->hdrs = curl_slist_append(h->hdrs, line);
}

void httpc_basic(struct httpc *h, const char *user, const char *pass)
{
	h->user = xstrdup(user);
	h->pass = xstrdup(pass);
	curl_easy_setopt(h->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(h->curl, CURLOPT_USERNAME, h->user);
	curl_easy_setopt(h->curl, CURLOPT_PASSWORD, h->pass);
}

int httpc_post(struct httpc *h, const char *payload, struct buf *out, size_t max, long *status, char *err,
               size_t errlen)
{
	CURLcode cc;

	h->out = out;
	h->max = max;
	*status = 0;
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, payload);
	if ((cc = curl_easy_perform(h->curl)) != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(cc));
		return cc == CURLE_WRITE_ERROR || cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ||
		               cc == CURLE_PEER_FAILED_VERIFICATION
		           ? -1
		           : 1;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

void httpc_free(struct httpc *h)
{
	struct curl_slist *s;

	if (h == NULL)
		return;
	for (s = h->hdrs; s != NULL; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(h->hdrs);
	curl_easy_cleanup(h->curl);
	if (h->pass != NULL)
		explicit_bzero(h->pass, strlen(h->pass));
	free(h->user);
	free(h->pass);
	free(h);
}
