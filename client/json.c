/*
 * json.c: msgpack -> JSON for --json output. Generic on purpose, so every
 * key the daemon sends appears: ints stay ints, floats stay floats, bin
 * becomes base64, a str that is not UTF-8 keeps its bad bytes as "\xNN".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

void json_base64(struct buf *b, const uint8_t *data, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

		buf_addc(b, tab[v >> 18]);
		buf_addc(b, tab[(v >> 12) & 63]);
		buf_addc(b, tab[(v >> 6) & 63]);
		buf_addc(b, tab[v & 63]);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;

		buf_addc(b, tab[v >> 18]);
		buf_addc(b, tab[(v >> 12) & 63]);
		buf_adds(b, "==");
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;

		buf_addc(b, tab[v >> 18]);
		buf_addc(b, tab[(v >> 12) & 63]);
		buf_addc(b, tab[(v >> 6) & 63]);
		buf_addc(b, '=');
	}
}

/* Valid UTF-8 is kept as is (NUL included, jansson escapes it); each
 * invalid byte becomes the four characters \xNN. */
static json_t *json_str(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	struct buf b;
	json_t *j;

	if (utf8_invalid(p, len) == NULL)
		return json_stringn(s, len);
	buf_init(&b);
	while (p < end) {
		const uint8_t *bad = utf8_invalid(p, (size_t)(end - p));
		const uint8_t *stop = bad != NULL ? bad : end;

		buf_add(&b, p, (size_t)(stop - p));
		p = stop;
		if (bad != NULL)
			buf_printf(&b, "\\x%02x", *p++);
	}
	j = json_stringn((const char *)b.data, b.len);
	buf_free(&b);
	return j;
}

static json_t *json_bin(const uint8_t *data, size_t len)
{
	struct buf b;
	json_t *j;

	buf_init(&b);
	json_base64(&b, data, len);
	j = json_stringn(b.len > 0 ? (const char *)b.data : "", b.len);
	buf_free(&b);
	return j;
}

/* JSON keys are strings: a str key as text, anything else as its JSON. */
static char *json_key(const msgpack_object *k, size_t *len)
{
	json_t *j = json_from_mp(k);
	char *s;

	if (j != NULL && json_is_string(j)) {
		*len = json_string_length(j);
		s = xmalloc(*len + 1);
		memcpy(s, json_string_value(j), *len + 1);
	} else {
		s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		if (s == NULL)
			s = xstrdup("?");
		*len = strlen(s);
	}
	json_decref(j);
	return s;
}

static json_t *json_map(const msgpack_object *o)
{
	json_t *obj = json_object();

	for (uint32_t i = 0; i < o->via.map.size; i++) {
		size_t klen;
		char *key = json_key(&o->via.map.ptr[i].key, &klen);

		json_object_setn_new(obj, key, klen, json_from_mp(&o->via.map.ptr[i].val));
		free(key);
	}
	return obj;
}

json_t *json_from_mp(const msgpack_object *o)
{
	json_t *j;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		/* Beyond int64 JSON readers disagree anyway; keep the magnitude. */
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		/* JSON has no NaN or infinity. */
		return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
	case MSGPACK_OBJECT_STR:
		return json_str(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return json_bin((const uint8_t *)o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT:
		j = json_object();
		json_object_set_new(j, "ext_type", json_integer(o->via.ext.type));
		json_object_set_new(j, "data", json_bin((const uint8_t *)o->via.ext.ptr, o->via.ext.size));
		return j;
	case MSGPACK_OBJECT_ARRAY:
		j = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			json_array_append_new(j, json_from_mp(&o->via.array.ptr[i]));
		return j;
	case MSGPACK_OBJECT_MAP:
		return json_map(o);
	}
	return json_null();
}

static void json_out(json_t *j, size_t flags)
{
	char *s = json_dumps(j, flags | JSON_ENCODE_ANY);

	if (s == NULL) {
		out_error("json", "cannot encode the output");
		json_decref(j);
		return;
	}
	out_write(s, strlen(s));
	out_write("\n", 1);
	free(s);
	json_decref(j);
}

void json_out_doc(json_t *j)
{
	json_out(j, JSON_INDENT(2));
}

void json_out_line(json_t *j)
{
	json_out(j, JSON_COMPACT);
}
