/*
 * codec.c: MessagePack-RPC framing. rpc_scan() bounds a message in a stream
 * without allocating, rpc_decode() unpacks and checks the envelope, and the
 * pack/get helpers keep msgpack-c details out of the rest of the tree.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* rpc_scan keeps one counter per open container; deeper nesting than this
 * is refused whatever max_depth says. */
#define RPC_SCAN_STACK 64

void rpc_limits_default(struct rpc_limits *l, size_t max_context_bytes)
{
	l->max_msg = max_context_bytes + (1u << 20);
	l->max_depth = 32;
	l->max_elems = 1u << 20;
	l->max_str = 1u << 20;
}

enum scan_kind { SK_SCALAR, SK_STR, SK_BIN, SK_EXT, SK_ARRAY, SK_MAP, SK_BAD };

struct scan_head {
	enum scan_kind kind;
	unsigned hdr;    /* header bytes, including the length field */
	unsigned lenoff; /* offset of the big-endian length field, 0 = none */
	unsigned lenbytes;
	uint64_t fixed; /* payload bytes (scalars, fixext) or count (fix containers) */
};

/* Classify a msgpack type byte. */
static struct scan_head rpc_scan_head(uint8_t c)
{
	struct scan_head h = {SK_SCALAR, 1, 0, 0, 0};

	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return h;
	if (c <= 0x8f) {
		h.kind = SK_MAP;
		h.fixed = c & 0x0f;
	} else if (c <= 0x9f) {
		h.kind = SK_ARRAY;
		h.fixed = c & 0x0f;
	} else if (c <= 0xbf) {
		h.kind = SK_STR;
		h.fixed = c & 0x1f;
	} else {
		switch (c) {
		case 0xc4:
		case 0xc5:
		case 0xc6:
			h.kind = SK_BIN;
			h.lenoff = 1;
			h.lenbytes = 1u << (c - 0xc4);
			h.hdr = 1 + h.lenbytes;
			break;
		case 0xc7:
		case 0xc8:
		case 0xc9:
			h.kind = SK_EXT;
			h.lenoff = 1;
			h.lenbytes = 1u << (c - 0xc7);
			h.hdr = 2 + h.lenbytes;
			break;
		case 0xca:
			h.fixed = 4;
			break;
		case 0xcb:
			h.fixed = 8;
			break;
		case 0xcc:
		case 0xd0:
			h.fixed = 1;
			break;
		case 0xcd:
		case 0xd1:
			h.fixed = 2;
			break;
		case 0xce:
		case 0xd2:
			h.fixed = 4;
			break;
		case 0xcf:
		case 0xd3:
			h.fixed = 8;
			break;
		case 0xd4:
		case 0xd5:
		case 0xd6:
		case 0xd7:
		case 0xd8:
			h.kind = SK_EXT;
			h.hdr = 2;
			h.fixed = 1u << (c - 0xd4);
			break;
		case 0xd9:
		case 0xda:
		case 0xdb:
			h.kind = SK_STR;
			h.lenoff = 1;
			h.lenbytes = 1u << (c - 0xd9);
			h.hdr = 1 + h.lenbytes;
			break;
		case 0xdc:
		case 0xdd:
			h.kind = SK_ARRAY;
			h.lenoff = 1;
			h.lenbytes = 2u << (c - 0xdc);
			h.hdr = 1 + h.lenbytes;
			break;
		case 0xde:
		case 0xdf:
			h.kind = SK_MAP;
			h.lenoff = 1;
			h.lenbytes = 2u << (c - 0xde);
			h.hdr = 1 + h.lenbytes;
			break;
		default: /* 0xc1: never used */
			h.kind = SK_BAD;
		}
	}
	return h;
}

static uint64_t rpc_scan_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | *p++;
	return v;
}

/* Every failure names its class: ERR_TOO_LARGE for a size limit,
 * ERR_INVALID_REQUEST for bytes that are not msgpack (or nest too deep). */
#define SCAN_FAIL(ecode, msg)                                                                                          \
	do {                                                                                                           \
		*err = (msg);                                                                                          \
		*code = (ecode);                                                                                       \
		return RPC_SCAN_ERROR;                                                                                 \
	} while (0)

/*
 * Iterative walk: `pending` counts values announced but not yet started;
 * each takes at least one byte, so end + pending is a lower bound of the
 * message length and anything that cannot fit in max_msg fails at once.
 */
enum rpc_scan rpc_scan_code(const void *buf, size_t len, const struct rpc_limits *l, size_t *msglen, size_t *need,
                            const char **err, enum rpc_err *code)
{
	const uint8_t *p = buf;
	uint64_t stack[RPC_SCAN_STACK], pos = 0, pending = 1, end, n, k;
	unsigned depth = 0, max_depth = l->max_depth < RPC_SCAN_STACK ? l->max_depth : RPC_SCAN_STACK;
	struct scan_head h;
	const char *err_none = "";
	enum rpc_err code_none;

	if (err == NULL)
		err = &err_none;
	if (code == NULL)
		code = &code_none;
	*err = NULL;
	*code = ERR_NONE;
	for (;;) {
		if (pos >= len) {
			*need = pos + pending;
			return RPC_SCAN_MORE;
		}
		h = rpc_scan_head(p[pos]);
		if (h.kind == SK_BAD)
			SCAN_FAIL(ERR_INVALID_REQUEST, "invalid msgpack type byte 0xc1");
		if (pos + h.hdr > len) {
			*need = pos + h.hdr + pending - 1;
			return RPC_SCAN_MORE;
		}
		n = h.lenbytes ? rpc_scan_be(p + pos + h.lenoff, h.lenbytes) : h.fixed;
		pending--;
		k = 0;
		end = pos + h.hdr;
		switch (h.kind) {
		case SK_STR:
		case SK_EXT:
			if (n > l->max_str)
				SCAN_FAIL(ERR_TOO_LARGE, "string or ext longer than the limit");
			end += n;
			break;
		case SK_BIN:
			if (n > l->max_msg)
				SCAN_FAIL(ERR_TOO_LARGE, "bin longer than the message limit");
			end += n;
			break;
		case SK_ARRAY:
		case SK_MAP:
			if (n > l->max_elems)
				SCAN_FAIL(ERR_TOO_LARGE, "array or map with more elements than the limit");
			if (depth + 1 > max_depth)
				SCAN_FAIL(ERR_INVALID_REQUEST, "nesting too deep");
			k = h.kind == SK_MAP ? 2 * n : n;
			pending += k;
			break;
		default:
			end += n;
		}
		if (end + pending > l->max_msg)
			SCAN_FAIL(ERR_TOO_LARGE,
			          k > 0 ? "element count exceeds the message limit" : "message too large");
		if (end > len) {
			*need = end + pending;
			return RPC_SCAN_MORE;
		}
		pos = end;
		if (k > 0) {
			stack[depth++] = k;
			continue;
		}
		/* a value is complete: close every container it completes */
		while (depth > 0 && --stack[depth - 1] == 0)
			depth--;
		if (depth == 0) {
			*msglen = pos;
			return RPC_SCAN_OK;
		}
	}
}

enum rpc_scan rpc_scan(const void *buf, size_t len, const struct rpc_limits *l, size_t *msglen, size_t *need,
                       const char **err)
{
	return rpc_scan_code(buf, len, l, msglen, need, err, NULL);
}

static int rpc_decode_envelope(struct rpc_msg *msg, char *err, size_t errlen)
{
	const msgpack_object *a, *params;
	uint32_t n;
	size_t i = 1;

	if (msg->root.type != MSGPACK_OBJECT_ARRAY) {
		snprintf(err, errlen, "message is not an array");
		return -1;
	}
	a = msg->root.via.array.ptr;
	n = msg->root.via.array.size;
	if (n < 3 || a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 > RPC_NOTIFY) {
		snprintf(err, errlen, "message type must be 0, 1 or 2");
		return -1;
	}
	msg->type = (enum rpc_type)a[0].via.u64;
	if (n != (msg->type == RPC_NOTIFY ? 3u : 4u)) {
		snprintf(err, errlen, "%s must have %d elements", msg->type == RPC_NOTIFY ? "notification" : "message",
		         msg->type == RPC_NOTIFY ? 3 : 4);
		return -1;
	}
	if (msg->type != RPC_NOTIFY) {
		if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 > UINT32_MAX) {
			snprintf(err, errlen, "msgid must be an unsigned 32-bit integer");
			return -1;
		}
		msg->msgid = (uint32_t)a[1].via.u64;
		i = 2;
	}
	if (msg->type == RPC_RESPONSE) {
		if (a[2].type != MSGPACK_OBJECT_NIL && a[2].type != MSGPACK_OBJECT_MAP) {
			snprintf(err, errlen, "response error must be nil or a map");
			return -1;
		}
		msg->error = a[2].type == MSGPACK_OBJECT_NIL ? NULL : &a[2];
		msg->result = &a[3];
		return 0;
	}
	if (a[i].type != MSGPACK_OBJECT_STR || a[i].via.str.size == 0 || a[i].via.str.size >= sizeof(msg->method) ||
	    memchr(a[i].via.str.ptr, '\0', a[i].via.str.size) != NULL) {
		snprintf(err, errlen, "method must be a non-empty string shorter than %zu bytes", sizeof(msg->method));
		return -1;
	}
	memcpy(msg->method, a[i].via.str.ptr, a[i].via.str.size);
	msg->method[a[i].via.str.size] = '\0';
	params = &a[i + 1];
	if (params->type != MSGPACK_OBJECT_ARRAY || params->via.array.size > 1) {
		snprintf(err, errlen, "params must be an array of at most one map");
		return -1;
	}
	if (params->via.array.size == 1) {
		if (params->via.array.ptr[0].type != MSGPACK_OBJECT_MAP) {
			snprintf(err, errlen, "params[0] must be a map");
			return -1;
		}
		msg->params = &params->via.array.ptr[0];
	}
	return 0;
}

static int rpc_decode_buf(const void *buf, uint8_t *owned, size_t len, struct rpc_msg *msg, char *err, size_t errlen);

int rpc_decode(const void *buf, size_t len, struct rpc_msg *msg, char *err, size_t errlen)
{
	return rpc_decode_buf(buf, NULL, len, msg, err, errlen);
}

/* As rpc_decode, taking buf (malloc'd) instead of copying it: a big
 * message (a run context) is not duplicated. buf is the message's or
 * freed, whatever the outcome. */
int rpc_decode_owned(uint8_t *buf, size_t len, struct rpc_msg *msg, char *err, size_t errlen)
{
	return rpc_decode_buf(buf, buf, len, msg, err, errlen);
}

static int rpc_decode_buf(const void *buf, uint8_t *owned, size_t len, struct rpc_msg *msg, char *err, size_t errlen)
{
	struct rpc_limits l;
	size_t off = 0, msglen = 0, need;
	const char *serr = NULL;
	msgpack_unpack_return r;

	memset(msg, 0, sizeof(*msg));
	/* Re-scan with limits derived from len: msgpack-c allocates one object
	 * per announced element before reading them, so counts must be
	 * bounded by the bytes even when the caller skipped rpc_scan. */
	l.max_msg = len;
	l.max_depth = 32;
	l.max_elems = UINT32_MAX;
	l.max_str = UINT32_MAX;
	if (len == 0 || rpc_scan(buf, len, &l, &msglen, &need, &serr) != RPC_SCAN_OK || msglen != len) {
		snprintf(err, errlen, "malformed message: %s",
		         serr != NULL                ? serr
		         : (len == 0 || msglen == 0) ? "truncated"
		                                     : "trailing bytes");
		free(owned);
		return -1;
	}
	msg->raw = owned != NULL ? owned : xmalloc(len);
	if (owned == NULL)
		memcpy(msg->raw, buf, len);
	msg->rawlen = len;
	if (!msgpack_zone_init(&msg->zone, 4096))
		fatalx("rpc_decode: out of memory");
	r = msgpack_unpack((const char *)msg->raw, len, &off, &msg->zone, &msg->root);
	if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
		snprintf(err, errlen, "malformed message: msgpack unpack failed (%d)", (int)r);
		rpc_msg_free(msg);
		return -1;
	}
	if (rpc_decode_envelope(msg, err, errlen) == -1) {
		rpc_msg_free(msg);
		return -1;
	}
	return 0;
}

int rpc_decode_view(const void *buf, size_t len, struct rpc_msg *msg, msgpack_zone *zone, char *err, size_t errlen)
{
	size_t off = 0;
	msgpack_unpack_return r;

	memset(msg, 0, sizeof(*msg));
	r = msgpack_unpack((const char *)buf, len, &off, zone, &msg->root);
	if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
		snprintf(err, errlen, "malformed message: msgpack unpack failed (%d)", (int)r);
		return -1;
	}
	if (rpc_decode_envelope(msg, err, errlen) == -1) {
		memset(msg, 0, sizeof(*msg));
		return -1;
	}
	return 0;
}

/* For a message that carried secrets: the decoded strings point into raw,
 * so overwriting raw clears them all before the memory is returned. */
void rpc_msg_wipe(struct rpc_msg *msg)
{
	if (msg->raw != NULL)
		explicit_bzero(msg->raw, msg->rawlen);
	rpc_msg_free(msg);
}

void rpc_msg_free(struct rpc_msg *msg)
{
	if (msg->raw != NULL) {
		msgpack_zone_destroy(&msg->zone);
		free(msg->raw);
	}
	memset(msg, 0, sizeof(*msg));
}

static int rpc_packer_write_cb(void *data, const char *bytes, size_t len)
{
	buf_add(data, bytes, len);
	return 0;
}

void rpc_packer_init(msgpack_packer *pk, struct buf *b)
{
	msgpack_packer_init(pk, b, rpc_packer_write_cb);
}

void rpc_pack_request_head(msgpack_packer *pk, uint32_t msgid, const char *method)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, RPC_REQUEST);
	msgpack_pack_uint32(pk, msgid);
	mp_pack_str(pk, method);
	msgpack_pack_array(pk, 1);
}

void rpc_pack_notify_head(msgpack_packer *pk, const char *method)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, RPC_NOTIFY);
	mp_pack_str(pk, method);
	msgpack_pack_array(pk, 1);
}

void rpc_pack_result_head(msgpack_packer *pk, uint32_t msgid)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, RPC_RESPONSE);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_nil(pk);
}

void rpc_pack_error(msgpack_packer *pk, uint32_t msgid, const char *code, const char *message)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, RPC_RESPONSE);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_map(pk, 2);
	mp_pack_kstr(pk, "code", code);
	mp_pack_kstr(pk, "message", message);
	msgpack_pack_nil(pk);
}

void mp_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n;

	if (s == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void mp_pack_key(msgpack_packer *pk, const char *key)
{
	mp_pack_str(pk, key);
}

void mp_pack_kstr(msgpack_packer *pk, const char *key, const char *val)
{
	mp_pack_str(pk, key);
	mp_pack_str(pk, val);
}

void mp_pack_kint(msgpack_packer *pk, const char *key, int64_t val)
{
	mp_pack_str(pk, key);
	msgpack_pack_int64(pk, val);
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	size_t klen = strlen(key);
	uint32_t i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

int mp_str_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

char *mp_strdup(const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

/* Strings with an embedded NUL are refused: they would silently truncate
 * in every C consumer. */
int mp_get_str(const msgpack_object *map, const char *key, char **out)
{
	const msgpack_object *o = mp_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 1;
	if (o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return -1;
	*out = xstrndup(o->via.str.ptr, o->via.str.size);
	return 0;
}

int mp_get_int(const msgpack_object *map, const char *key, int64_t *out)
{
	const msgpack_object *o = mp_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
		*out = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
	return -1;
}

int mp_get_bool(const msgpack_object *map, const char *key, int *out)
{
	const msgpack_object *o = mp_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 1;
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return -1;
	*out = o->via.boolean ? 1 : 0;
	return 0;
}

int mp_get_double(const msgpack_object *map, const char *key, double *out)
{
	const msgpack_object *o = mp_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 1;
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*out = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*out = (double)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = (double)o->via.i64;
		return 0;
	default:
		return -1;
	}
}
