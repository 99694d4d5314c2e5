/*
 * emit.c: the worker's only way to say something about the run. Every
 * event, metric and log line gets the next seq, has every string masked
 * (secret values become ***; nothing is copied when there is nothing to
 * mask), is kept in the journal and written to stdout (corked: rpc.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

char *emit_mask(const struct worker *w, const char *s)
{
	if (s == NULL)
		return NULL;
	return mask_apply(w->mask, s);
}

/* s itself when it carries no secret (no copy: the usual case, and always
 * when the run has none), else a masked copy left in *tofree. */
static const char *emit_view(const struct worker *w, const char *s, char **tofree)
{
	*tofree = NULL;
	if (s == NULL || mask_count(w->mask) == 0 || !mask_hit(w->mask, s, strlen(s)))
		return s;
	return *tofree = mask_apply(w->mask, s);
}

static void emit_pack_fields(const struct worker *w, msgpack_packer *pk, const struct evf *f, size_t n)
{
	size_t i;
	char *s;

	msgpack_pack_map(pk, (uint32_t)n);
	for (i = 0; i < n; i++) {
		mp_pack_key(pk, emit_view(w, f[i].k, &s));
		free(s);
		switch (f[i].t) {
		case EVF_STR:
			mp_pack_str(pk, emit_view(w, f[i].s, &s));
			free(s);
			break;
		case EVF_INT:
			msgpack_pack_int64(pk, f[i].i);
			break;
		case EVF_DBL:
			if (f[i].d == (double)(int64_t)f[i].d && f[i].d < 9.2e18 && f[i].d > -9.2e18)
				msgpack_pack_int64(pk, (int64_t)f[i].d);
			else
				msgpack_pack_double(pk, f[i].d);
			break;
		case EVF_BOOL:
			if (f[i].i)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			break;
		}
	}
}

static void emit_record(struct worker *w, enum rec_kind kind, const char *name, const char *step_id,
                        const struct evf *f, size_t n)
{
	/* scratch buffers kept by the worker: no allocation per record */
	struct buf *data = &w->emit_data, *out = &w->emit_out;
	char *name_m, *step_m;
	struct event_rec e;
	msgpack_packer pk;

	buf_reset(data);
	buf_reset(out);
	rpc_packer_init(&pk, data);
	emit_pack_fields(w, &pk, f, n);
	memset(&e, 0, sizeof(e));
	e.seq = ++w->seq;
	e.ts = time_now_ms();
	e.kind = kind;
	e.name = (char *)(uintptr_t)emit_view(w, name, &name_m);
	e.step_id = (char *)(uintptr_t)emit_view(w, step_id, &step_m);
	e.data = data->data;
	e.data_len = data->len;
	rpc_packer_init(&pk, out);
	rpc_pack_notify_head(&pk, rec_kind_name(kind));
	event_rec_pack_worker(&pk, &e);
	if (mask_hit(w->mask, (const char *)out->data, out->len)) {
		/* belt and braces: the bytes still carry a secret (e.g. across
		 * field boundaries); send an empty record under the same seq */
		log_warnx("seq=%lld withheld: it would carry a secret value", (long long)e.seq);
		buf_reset(out);
		buf_reset(data);
		rpc_packer_init(&pk, data);
		msgpack_pack_map(&pk, 0);
		e.data = data->data;
		e.data_len = data->len;
		e.name = (char *)(uintptr_t) "record_withheld";
		e.step_id = NULL;
		rpc_packer_init(&pk, out);
		rpc_pack_notify_head(&pk, rec_kind_name(kind));
		event_rec_pack_worker(&pk, &e);
	}
	journal_add(&w->journal, e.seq, out->data, out->len);
	rpc_write(w, out->data, out->len);
	free(name_m);
	free(step_m);
	if (data->cap > 65536) /* a huge record should not pin its peak */
		buf_free(data);
	if (out->cap > 65536)
		buf_free(out);
}

void emit_event(struct worker *w, const char *name, const char *step_id, const struct evf *f, size_t n)
{
	emit_record(w, REC_EVENT, name, step_id, f, n);
}

void emit_metric(struct worker *w, const char *name, const char *step_id, double value)
{
	struct evf f[] = {EVD("value", value)};

	emit_record(w, REC_METRIC, name, step_id, f, 1);
}

static const char *emit_level_name(enum log_level level)
{
	switch (level) {
	case LOG_LVL_ERROR:
		return "error";
	case LOG_LVL_WARN:
		return "warn";
	case LOG_LVL_INFO:
		return "info";
	case LOG_LVL_DEBUG:
		return "debug";
	}
	return "info";
}

void emit_log(struct worker *w, enum log_level level, const char *step_id, const char *msg)
{
	struct evf f[] = {EVS("message", msg)};

	emit_record(w, REC_LOG, emit_level_name(level), step_id, f, 1);
}

void emit_logf(struct worker *w, enum log_level level, const char *step_id, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit_log(w, level, step_id, line);
}
