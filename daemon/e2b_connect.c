/*
 * e2b_connect.c: the Connect protocol as envd speaks it with the JSON codec:
 * envelopes read incrementally across any chunk boundary, EndStream and
 * error bodies, and protojson bytes (base64). Pure: no I/O.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "osirisd.h"

/* ---- errors ---------------------------------------------------------- */

void e2b_error_set(struct e2b_error *e, long status, const char *code, const char *fmt, ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	e->http_status = status;
	snprintf(e->code, sizeof(e->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

const char *e2b_error_str(const struct e2b_error *e, char *out, size_t outlen)
{
	if (e->http_status == 0)
		snprintf(out, outlen, "%s%s%s", e->code[0] ? e->code : "", e->code[0] ? ": " : "", e->message);
	else
		snprintf(out, outlen, "HTTP %ld %s: %s", e->http_status, e->code[0] ? e->code : "error", e->message);
	return out;
}

/* The Python SDK's PLAIN_HTTP_ERROR_CODES, plus Connect's own statuses. */
const char *e2b_connect_code_for_status(long status)
{
	switch (status) {
	case 400:
		return "invalid_argument";
	case 401:
		return "unauthenticated";
	case 403:
		return "permission_denied";
	case 404:
		return "not_found";
	case 409:
		return "already_exists";
	case 413:
	case 429:
		return "resource_exhausted";
	case 499:
		return "canceled";
	case 500:
		return "internal";
	case 501:
	case 505:
		return "unimplemented";
	case 502:
	case 503:
		return "unavailable";
	case 504:
		return "deadline_exceeded";
	default:
		return "unknown";
	}
}

/* {code: "not_found"|404, message: "..."}; anything else is plain text. */
static void e2b_error_from_body(struct e2b_error *e, long status, const uint8_t *body, size_t len)
{
	json_t *j = len > 0 ? json_loadb((const char *)body, len, 0, NULL) : NULL;
	json_t *code = json_object_get(j, "code"), *msg = json_object_get(j, "message");

	snprintf(e->code, sizeof(e->code), "%s",
	         json_is_string(code) ? log_esc(json_string_value(code), 40) : e2b_connect_code_for_status(status));
	if (json_is_string(msg))
		snprintf(e->message, sizeof(e->message), "%s", log_esc(json_string_value(msg), 400));
	else if (len > 0)
		snprintf(e->message, sizeof(e->message), "%s", log_esc((const char *)body, len < 200 ? len : 200));
	else
		snprintf(e->message, sizeof(e->message), "empty answer");
	json_decref(j);
}

void e2b_error_from_result(struct e2b_error *e, struct e2b_http_req *r, const struct e2b_http_result *res)
{
	memset(e, 0, sizeof(*e));
	if (res->curl_code != 0) {
		e->curl_code = res->curl_code;
		e->http_status = 0;
		snprintf(e->code, sizeof(e->code), "unavailable");
		snprintf(e->message, sizeof(e->message), "%s", res->error != NULL ? res->error : "transport error");
	} else {
		e->http_status = res->status;
		e2b_error_from_body(e, res->status, res->body, res->body_len);
	}
	e2b_http_scrub(r, e->message, sizeof(e->message));
}

/* ---- envelopes ------------------------------------------------------- */

void e2b_envelope_reader_init(struct e2b_envelope_reader *rd, size_t max)
{
	memset(rd, 0, sizeof(*rd));
	buf_init(&rd->msg);
	rd->max = max;
}

void e2b_envelope_reader_free(struct e2b_envelope_reader *rd)
{
	buf_free(&rd->msg);
}

int e2b_envelope_pending(const struct e2b_envelope_reader *rd)
{
	return rd->hdr_len > 0;
}

/* The 5-byte header is whole: check it before a byte of the body is kept. */
static int e2b_envelope_header(struct e2b_envelope_reader *rd, char *err, size_t errlen)
{
	rd->flags = rd->hdr[0];
	rd->need = (uint32_t)rd->hdr[1] << 24 | (uint32_t)rd->hdr[2] << 16 | (uint32_t)rd->hdr[3] << 8 | rd->hdr[4];
	if (rd->flags & E2B_ENVELOPE_FLAG_COMPRESSED) {
		snprintf(err, errlen, "compressed envelope, but no encoding was negotiated");
		return -1;
	}
	if (rd->flags & ~(E2B_ENVELOPE_FLAG_COMPRESSED | E2B_ENVELOPE_FLAG_END)) {
		snprintf(err, errlen, "envelope with reserved flags 0x%02x", rd->flags);
		return -1;
	}
	if (rd->need > rd->max) {
		snprintf(err, errlen, "envelope of %u bytes exceeds the limit of %zu", rd->need, rd->max);
		return -1;
	}
	buf_reset(&rd->msg);
	return 0;
}

int e2b_envelope_feed(struct e2b_envelope_reader *rd, const uint8_t *p, size_t len, e2b_envelope_cb cb, void *arg,
                      char *err, size_t errlen)
{
	size_t take;

	if (rd->failed) {
		snprintf(err, errlen, "envelope stream already failed");
		return -1;
	}
	for (;;) {
		if (rd->hdr_len < sizeof(rd->hdr)) {
			if (len == 0)
				return 0;
			take = sizeof(rd->hdr) - rd->hdr_len < len ? sizeof(rd->hdr) - rd->hdr_len : len;
			memcpy(rd->hdr + rd->hdr_len, p, take);
			rd->hdr_len += take;
			p += take;
			len -= take;
			if (rd->hdr_len < sizeof(rd->hdr))
				return 0;
			if (e2b_envelope_header(rd, err, errlen) != 0) {
				rd->failed = 1;
				return -1;
			}
		}
		take = rd->need - rd->msg.len < len ? rd->need - rd->msg.len : len;
		buf_add(&rd->msg, p, take);
		p += take;
		len -= take;
		if (rd->msg.len < rd->need)
			return 0;
		rd->hdr_len = 0;
		if (cb(rd->flags, rd->msg.data, rd->msg.len, arg) != 0)
			return 1;
	}
}

void e2b_envelope_pack(struct buf *out, uint8_t flags, const void *msg, size_t len)
{
	uint8_t hdr[5] = {flags, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};

	buf_add(out, hdr, sizeof(hdr));
	buf_add(out, msg, len);
}

int e2b_connect_end_parse(const uint8_t *msg, size_t len, struct e2b_error *e)
{
	json_t *j = json_loadb((const char *)msg, len, 0, NULL), *err, *code, *m;
	int rc = 0;

	if (!json_is_object(j)) {
		e2b_error_set(e, 0, "internal", "malformed EndStream message");
		json_decref(j);
		return -1;
	}
	err = json_object_get(j, "error");
	if (err != NULL && !json_is_null(err)) {
		code = json_object_get(err, "code");
		m = json_object_get(err, "message");
		e2b_error_set(e, 0, json_is_string(code) ? log_esc(json_string_value(code), 40) : "unknown", "%s",
		              json_is_string(m) ? log_esc(json_string_value(m), 400) : "stream ended with an error");
		rc = 1;
	}
	json_decref(j);
	return rc;
}

/* ---- protojson bytes -------------------------------------------------- */

static const char e2b_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *e2b_base64_encode(const void *data, size_t len)
{
	const uint8_t *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;
	uint32_t v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = e2b_b64[v >> 18];
		*o++ = e2b_b64[(v >> 12) & 63];
		*o++ = e2b_b64[(v >> 6) & 63];
		*o++ = e2b_b64[v & 63];
	}
	if (i < len) {
		v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = e2b_b64[v >> 18];
		*o++ = e2b_b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? e2b_b64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int e2b_base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int e2b_base64_decode(const char *s, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	size_t i, nbits = 0;
	int v;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	buf_reserve(out, len / 4 * 3 + 3);
	for (i = 0; i < len; i++) {
		if ((v = e2b_base64_value(s[i])) < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			buf_addc(out, (char)(acc >> nbits));
			acc &= (1u << nbits) - 1;
		}
	}
	return 0;
}
