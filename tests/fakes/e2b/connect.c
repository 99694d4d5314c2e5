/*
 * connect.c: the Connect protocol as envd (connect-go, JSON codec) speaks it:
 * unary calls as bare JSON with string error codes, server streams as
 * envelopes (flags u8, length u32 BE, JSON) over a chunked HTTP/1.1 reply.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <openssl/evp.h>

#include "emulator.h"

#define CONNECT_MAX_REQUEST (4u * 1024 * 1024) /* one request message */

static const struct {
	const char *code;
	int http;
} connect_codes[] = {
    {"canceled", 499},
    {"unknown", 500},
    {"invalid_argument", 400},
    {"deadline_exceeded", 504},
    {"not_found", 404},
    {"already_exists", 409},
    {"permission_denied", 403},
    {"resource_exhausted", 429},
    {"failed_precondition", 400},
    {"aborted", 409},
    {"out_of_range", 400},
    {"unimplemented", 501},
    {"internal", 500},
    {"unavailable", 503},
    {"data_loss", 500},
    {"unauthenticated", 401},
};

int connect_code_http(const char *code)
{
	size_t i;

	for (i = 0; i < sizeof(connect_codes) / sizeof(connect_codes[0]); i++)
		if (strcmp(connect_codes[i].code, code) == 0)
			return connect_codes[i].http;
	return 500;
}

void connect_unary_reply(struct evhttp_request *req, json_t *msg)
{
	struct evbuffer *out = evbuffer_new();
	char *text = json_dumps(msg, JSON_COMPACT);

	if (out == NULL || text == NULL)
		emu_fatal("out of memory");
	evbuffer_add(out, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
	free(text);
	json_decref(msg);
}

void connect_unary_error(struct evhttp_request *req, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int status = connect_code_http(code);
	json_t *body;
	struct evbuffer *out = evbuffer_new();
	char *text;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = json_pack("{s:s,s:s}", "code", code, "message", msg);
	text = json_dumps(body, JSON_COMPACT);
	evbuffer_add(out, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, status, emu_reason(status), out);
	evbuffer_free(out);
	free(text);
	json_decref(body);
}

/* Content-Type without parameters, lowercased, into buf. */
static const char *connect_media_type(struct evhttp_request *req, char *buf, size_t len)
{
	const char *ct = emu_header(req, "Content-Type");
	size_t i;

	if (ct == NULL)
		return "";
	for (i = 0; ct[i] && ct[i] != ';' && ct[i] != ' ' && i + 1 < len; i++)
		buf[i] = (char)(ct[i] >= 'A' && ct[i] <= 'Z' ? ct[i] + 32 : ct[i]);
	buf[i] = '\0';
	return buf;
}

static int connect_check_common(struct evhttp_request *req, int stream)
{
	const char *ver = emu_header(req, "Connect-Protocol-Version");
	const char *enc = emu_header(req, stream ? "Connect-Content-Encoding" : "Content-Encoding");

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		emu_reply_empty(req, 405);
		return -1;
	}
	if (ver != NULL && strcmp(ver, "1") != 0) {
		connect_unary_error(req, "invalid_argument", "connect-protocol-version must be \"1\": got \"%s\"", ver);
		return -1;
	}
	if (enc != NULL && strcasecmp(enc, "identity") != 0) {
		connect_unary_error(req, "unimplemented",
		                    "unknown compression \"%s\": supported encodings are identity", enc);
		return -1;
	}
	return 0;
}

static json_t *connect_parse_message(const uint8_t *data, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;

	if (len == 0)
		return json_object();
	j = json_loadb((const char *)data, len, 0, &jerr);
	if (j == NULL || !json_is_object(j)) {
		snprintf(err, errlen, "unmarshal message: %s", j == NULL ? jerr.text : "not a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *connect_unary_request(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char mt[64], err[512];
	json_t *j;

	if (connect_check_common(req, 0) != 0)
		return NULL;
	connect_media_type(req, mt, sizeof(mt));
	if (strcmp(mt, "application/json") != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Accept-Post",
		                  "application/json, application/proto");
		emu_reply_empty(req, 415);
		return NULL;
	}
	if (len > CONNECT_MAX_REQUEST) {
		connect_unary_error(req, "resource_exhausted", "message size %zu is larger than configured max %u", len,
		                    CONNECT_MAX_REQUEST);
		return NULL;
	}
	j = connect_parse_message(evbuffer_pullup(in, -1), len, err, sizeof(err));
	if (j == NULL)
		connect_unary_error(req, "invalid_argument", "%s", err);
	return j;
}

int connect_envelope_parse(const uint8_t *data, size_t len, size_t max, uint8_t *flags, const uint8_t **msg,
                           size_t *msglen, size_t *used)
{
	uint32_t n;

	if (len < 5)
		return 0;
	n = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | (uint32_t)data[4];
	if (n > max)
		return -1;
	if (len - 5 < n)
		return 0;
	*flags = data[0];
	*msg = data + 5;
	*msglen = n;
	*used = 5 + (size_t)n;
	return 1;
}

void connect_envelope(struct evbuffer *out, uint8_t flags, const char *json, size_t len)
{
	uint8_t hdr[5];

	hdr[0] = flags;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
	evbuffer_add(out, hdr, 5);
	evbuffer_add(out, json, len);
}

/* A stream that failed before it began: HTTP 200 and only an EndStream error. */
static void connect_stream_fail(struct evhttp_request *req, const char *code, const char *msg)
{
	struct stream *st = stream_open(req);

	stream_end(st, code, msg);
	stream_free(st);
}

json_t *connect_stream_request(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), msglen, used;
	const uint8_t *data, *msg;
	char mt[64], err[512];
	uint8_t flags;
	json_t *j;
	int rc;

	if (connect_check_common(req, 1) != 0)
		return NULL;
	connect_media_type(req, mt, sizeof(mt));
	if (strcmp(mt, "application/connect+json") != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Accept-Post",
		                  "application/connect+json, application/connect+proto");
		emu_reply_empty(req, 415);
		return NULL;
	}
	data = evbuffer_pullup(in, -1);
	rc = connect_envelope_parse(data, len, CONNECT_MAX_REQUEST, &flags, &msg, &msglen, &used);
	if (rc < 0) {
		connect_stream_fail(req, "resource_exhausted", "message is larger than configured max");
		return NULL;
	}
	if (rc == 0 || used != len) {
		connect_stream_fail(req, "invalid_argument", "protocol error: expected exactly one request envelope");
		return NULL;
	}
	if (flags != 0) {
		connect_stream_fail(req, "internal",
		                    "protocol error: sent compressed message without compression support");
		return NULL;
	}
	j = connect_parse_message(msg, msglen, err, sizeof(err));
	if (j == NULL)
		connect_stream_fail(req, "invalid_argument", err);
	return j;
}

static void stream_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	(void)fd;
	(void)what;
	stream_send(st, json_pack("{s:{s:{}}}", "event", "keepalive"));
}

static void stream_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	(void)fd;
	(void)what;
	stream_end(st, "deadline_exceeded", "context deadline exceeded");
	stream_free(st);
}

/* The client went away (or we cut the socket): libevent has detached the
 * request from the connection, so ending the reply only frees it. */
static void stream_conn_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct stream *st = arg;

	(void)evcon;
	emu_debug("stream closed by peer proc=%d", st->proc ? (int)st->proc->pid : -1);
	if (st->req != NULL && evhttp_request_get_connection(st->req) == NULL)
		evhttp_send_reply_end(st->req);
	st->req = NULL;
	st->evcon = NULL;
	st->done = 1;
	stream_free(st);
}

struct stream *stream_open(struct evhttp_request *req)
{
	struct stream *st = emu_xcalloc(1, sizeof(*st));
	const char *ka = emu_header(req, "Keepalive-Ping-Interval");
	const char *tmo = emu_header(req, "Connect-Timeout-Ms");
	long v;

	st->req = req;
	st->evcon = evhttp_request_get_connection(req);
	st->keepalive_s = EMU_KEEPALIVE_DEFAULT_S;
	if (ka != NULL && (v = strtol(ka, NULL, 10)) > 0 && v < 86400)
		st->keepalive_s = (int)v;
	st->keepalive_ev = evtimer_new(emu.base, stream_keepalive_cb, st);
	st->deadline_ev = evtimer_new(emu.base, stream_deadline_cb, st);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/connect+json");
	evhttp_send_reply_start(req, 200, "OK");
	if (st->evcon != NULL) {
		evhttp_connection_set_closecb(st->evcon, stream_conn_close_cb, st);
		/* A stream may stay silent between keepalives longer than any idle timeout. */
		bufferevent_set_timeouts(evhttp_connection_get_bufferevent(st->evcon), NULL, NULL);
	}
	emu_set_timer(st->keepalive_ev, (int64_t)st->keepalive_s * 1000);
	if (tmo != NULL && (v = strtol(tmo, NULL, 10)) > 0)
		emu_set_timer(st->deadline_ev, v);
	return st;
}

static void stream_cut_flushed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct stream *st = arg;

	(void)evcon;
	stream_cut(st);
}

static void stream_write(struct stream *st, uint8_t flags, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	struct evbuffer *buf = evbuffer_new();
	size_t len, keep;

	if (text == NULL || buf == NULL)
		emu_fatal("out of memory");
	connect_envelope(buf, flags, text, strlen(text));
	free(text);
	len = evbuffer_get_length(buf);
	if (st->cut_after != 0 && st->sent + len >= st->cut_after) {
		/* --fault stream-cut: deliver exactly cut_after bytes, then drop the socket. */
		struct evbuffer *part = evbuffer_new();

		keep = st->cut_after - st->sent;
		evbuffer_remove_buffer(buf, part, keep);
		st->sent += keep;
		emu_log("fault: stream-cut after %zu bytes", st->sent);
		st->done = 1;
		evhttp_send_reply_chunk_with_cb(st->req, part, stream_cut_flushed_cb, st);
		evbuffer_free(part);
		evbuffer_free(buf);
		return;
	}
	st->sent += len;
	evhttp_send_reply_chunk(st->req, buf);
	evbuffer_free(buf);
}

void stream_send(struct stream *st, json_t *msg)
{
	if (!st->done && st->req != NULL) {
		stream_write(st, 0, msg);
		if (!st->done)
			emu_set_timer(st->keepalive_ev, (int64_t)st->keepalive_s * 1000);
	}
	json_decref(msg);
}

/* EndStream envelope ({} or {"error":{...}}), then the last chunk. */
void stream_end(struct stream *st, const char *code, const char *message)
{
	json_t *end;

	if (st->done || st->req == NULL)
		return;
	if (code == NULL)
		end = json_object();
	else
		end = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	stream_write(st, 0x02, end);
	json_decref(end);
	if (st->done) /* cut by a fault while writing the end */
		return;
	st->done = 1;
	if (st->evcon != NULL) {
		evhttp_connection_set_closecb(st->evcon, NULL, NULL);
		evhttp_connection_set_timeout(st->evcon, 640);
	}
	evhttp_send_reply_end(st->req);
	st->req = NULL;
	st->evcon = NULL;
}

/* Drop the connection without an EndStream, as a dying VM or a cut proxy does.
 * libevent notices the dead socket and calls stream_conn_close_cb. */
void stream_cut(struct stream *st)
{
	struct bufferevent *bev;
	int fd;

	st->done = 1;
	if (st->evcon == NULL) {
		st->req = NULL;
		stream_free(st);
		return;
	}
	bev = evhttp_connection_get_bufferevent(st->evcon);
	fd = bev != NULL ? (int)bufferevent_getfd(bev) : -1;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	/* Keep st until the close callback fires: it owns freeing the request. */
	if (st->proc != NULL) {
		TAILQ_REMOVE(&st->proc->streams, st, entry);
		st->proc = NULL;
	}
}

/* Free a finished stream; a stream cut mid-flight waits for its close callback. */
void stream_free(struct stream *st)
{
	if (st->req != NULL && !st->done)
		stream_end(st, "internal", "stream abandoned");
	if (st->req != NULL)
		return; /* cut: stream_conn_close_cb frees it */
	if (st->proc != NULL)
		TAILQ_REMOVE(&st->proc->streams, st, entry);
	if (st->keepalive_ev != NULL)
		event_free(st->keepalive_ev);
	if (st->deadline_ev != NULL)
		event_free(st->deadline_ev);
	free(st);
}

char *connect_base64(const void *data, size_t len)
{
	char *out = emu_xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* protojson accepts std or URL-safe base64, with or without padding. */
int connect_unbase64(const char *s, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s), i, pad = 0, padded;
	char *tmp;
	int rc;

	padded = n + (4 - n % 4) % 4;
	tmp = emu_xmalloc(padded + 1);
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		           c == '/' || (c == '=' && i >= n - 2))) {
			free(tmp);
			return -1;
		}
		tmp[i] = c;
	}
	for (; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	if (n % 4 == 1) {
		free(tmp);
		return -1;
	}
	for (i = padded; i > 0 && tmp[i - 1] == '='; i--)
		pad++;
	*out = emu_xmalloc(padded / 4 * 3 + 1);
	rc = padded ? EVP_DecodeBlock(*out, (unsigned char *)tmp, (int)padded) : 0;
	free(tmp);
	if (rc < 0 || (size_t)rc < pad) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = (size_t)rc - pad;
	return 0;
}
