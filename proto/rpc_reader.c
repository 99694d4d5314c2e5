/*
 * rpc_reader.c: cut a byte stream (control connection, worker stdout) into
 * msgpack-rpc messages, with the limits checked by rpc_scan before anything
 * is decoded, and without rescanning a partial message on every read.
 */
#include <stdio.h>

#include "proto.h"

#define RPC_READER_GIVE_MIN (1024 * 1024)

void rpc_reader_init(struct rpc_reader *r, const struct rpc_limits *lim)
{
	buf_init(&r->in);
	r->off = 0;
	r->need = 1;
	r->lim = *lim;
	r->has_zone = 0;
}

void rpc_reader_free(struct rpc_reader *r)
{
	buf_free(&r->in);
	r->off = 0;
	if (r->has_zone)
		msgpack_zone_destroy(&r->zone);
	r->has_zone = 0;
}

size_t rpc_reader_unread(const struct rpc_reader *r)
{
	return r->in.len - r->off;
}

void rpc_reader_add(struct rpc_reader *r, const void *data, size_t len)
{
	/* Drop consumed bytes before growing, so a long stream stays small. */
	if (r->off > 0 && (r->off == r->in.len || r->off >= r->in.cap / 2)) {
		buf_consume(&r->in, r->off);
		r->off = 0;
	}
	buf_add(&r->in, data, len);
}

/* Best effort: the msgid of a request whose head is readable, so that a
 * peer breaking a limit still gets an error response. */
static int rpc_reader_peek_msgid(const uint8_t *p, size_t len, uint32_t *msgid)
{
	size_t i;

	if (len < 3)
		return 0;
	if (p[0] == 0x94)
		i = 1;
	else if (p[0] == 0xdc && len >= 5 && p[1] == 0 && p[2] == 4)
		i = 3;
	else
		return 0;
	if (p[i] != 0x00)
		return 0;
	i++;
	if (i >= len)
		return 0;
	if (p[i] <= 0x7f) {
		*msgid = p[i];
		return 1;
	}
	if (p[i] == 0xcc && i + 1 < len) {
		*msgid = p[i + 1];
		return 1;
	}
	if (p[i] == 0xcd && i + 2 < len) {
		*msgid = (uint32_t)p[i + 1] << 8 | p[i + 2];
		return 1;
	}
	if (p[i] == 0xce && i + 4 < len) {
		*msgid = (uint32_t)p[i + 1] << 24 | (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 8 | p[i + 4];
		return 1;
	}
	return 0;
}

static int rpc_reader_take(struct rpc_reader *r, struct rpc_msg *msg, char *err, size_t errlen, uint32_t *msgid,
                           int *has_msgid, int *too_large, int view)
{
	const uint8_t *p = r->in.data + r->off;
	size_t avail = r->in.len - r->off, msglen = 0, need = 0;
	const char *serr = NULL;
	enum rpc_err code;
	enum rpc_scan s;

	*has_msgid = 0;
	*too_large = 0;
	if (avail == 0 || avail < r->need)
		return 0;
	s = rpc_scan_code(p, avail, &r->lim, &msglen, &need, &serr, &code);
	if (s == RPC_SCAN_MORE) {
		r->need = need > avail ? need : avail + 1;
		return 0;
	}
	if (s == RPC_SCAN_ERROR) {
		snprintf(err, errlen, "%s", serr != NULL ? serr : "malformed message");
		*has_msgid = rpc_reader_peek_msgid(p, avail, msgid);
		*too_large = code == ERR_TOO_LARGE;
		return -1;
	}
	r->need = 1;
	/* A big message that is all the reader holds (a run context: the
	 * client waits for the answer) is handed over, not copied. */
	if (!view && r->off == 0 && msglen == r->in.len && msglen >= RPC_READER_GIVE_MIN) {
		uint8_t *data = r->in.data;
		*has_msgid = rpc_reader_peek_msgid(p, msglen, msgid);
		buf_init(&r->in);
		if (rpc_decode_owned(data, msglen, msg, err, errlen) == -1)
			return -1;
		*has_msgid = 0;
		return 1;
	}
	if (view) {
		if (!r->has_zone) {
			if (!msgpack_zone_init(&r->zone, 8192))
				fatalx("rpc_reader: out of memory");
			r->has_zone = 1;
		} else {
			msgpack_zone_clear(&r->zone);
		}
	}
	/* scanned above with the reader's limits: decoded once, in place */
	if ((view ? rpc_decode_view(p, msglen, msg, &r->zone, err, errlen) : rpc_decode(p, msglen, msg, err, errlen)) ==
	    -1) {
		*has_msgid = rpc_reader_peek_msgid(p, msglen, msgid);
		return -1;
	}
	r->off += msglen;
	return 1;
}

int rpc_reader_next(struct rpc_reader *r, struct rpc_msg *msg, char *err, size_t errlen, uint32_t *msgid,
                    int *has_msgid, int *too_large)
{
	return rpc_reader_take(r, msg, err, errlen, msgid, has_msgid, too_large, 0);
}

int rpc_reader_next_view(struct rpc_reader *r, struct rpc_msg *msg, char *err, size_t errlen, uint32_t *msgid,
                         int *has_msgid, int *too_large)
{
	return rpc_reader_take(r, msg, err, errlen, msgid, has_msgid, too_large, 1);
}
