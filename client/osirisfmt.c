/*
 * osirisfmt.c: the files of an Osiris run directory, made from what osirisd
 * holds: run.event records as events.jsonl, metrics.jsonl and osiris.log
 * lines, the run object as status.json, artifact paths under artifacts/.
 * Pure (no I/O), so `artifacts --export` is unit tested line by line.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/osirisctl.h"

void osirisfmt_ts(int64_t ms, char *dst, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char sec[32];

	if (ms < 0 || gmtime_r(&t, &tm) == NULL || strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(dst, len, "%s", "");
		return;
	}
	snprintf(dst, len, "%s.%03d000+00:00", sec, (int)(ms % 1000));
}

/* Set key unless the line has it already: the line's own keys win over a
 * record field of the same name, and a compatibility field never hides
 * one the worker sent. */
static void osirisfmt_add(json_t *o, const char *key, json_t *v)
{
	if (v == NULL)
		return;
	if (json_object_get(o, key) != NULL)
		json_decref(v);
	else
		json_object_set_new(o, key, v);
}

/* {"ts", "session", <kindkey>: name, ["step_id"]}: the head every Osiris
 * line has (SessionContext.log_event/log_metric). */
static json_t *osirisfmt_head(const struct osirisfmt_run *r, const msgpack_object *rec, const char *kindkey)
{
	const msgpack_object *name = mp_get(rec, "name");
	int64_t ms = out_time_ms(mp_get(rec, "ts"));
	json_t *o = json_object();
	char ts[48];

	if (ms >= 0) {
		osirisfmt_ts(ms, ts, sizeof ts);
		json_object_set_new(o, "ts", json_string(ts));
	} else
		json_object_set_new(o, "ts", json_null());
	json_object_set_new(o, "session", json_string(r->id));
	json_object_set_new(o, kindkey, name != NULL ? json_from_mp(name) : json_null());
	return o;
}

static void osirisfmt_step(json_t *o, const msgpack_object *rec)
{
	const msgpack_object *step = mp_get(rec, "step_id");

	if (step != NULL && step->type == MSGPACK_OBJECT_STR)
		osirisfmt_add(o, "step_id", json_from_mp(step));
}

/* The record's data fields become fields of the line, as Osiris's
 * log_event(name, **fields) spreads its keyword arguments. */
static void osirisfmt_flatten(json_t *o, const msgpack_object *data)
{
	json_t *d, *v;
	const char *k;

	if (data == NULL || data->type != MSGPACK_OBJECT_MAP)
		return;
	d = json_from_mp(data);
	json_object_foreach(d, k, v)
	{
		osirisfmt_add(o, k, json_incref(v));
	}
	json_decref(d);
}

static int osirisfmt_is(const json_t *o, const char *key, const char *s)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL && strcmp(v, s) == 0;
}

/* osirisd's run_end as the one Osiris's SessionContext.close() writes last
 * (end_time, duration_seconds), plus the outcome in Osiris's words. */
static void osirisfmt_run_end(json_t *o, const struct osirisfmt_run *r, const msgpack_object *rec)
{
	int64_t ms = out_time_ms(mp_get(rec, "ts"));

	osirisfmt_add(o, "status", json_string(osirisfmt_is(o, "state", "succeeded") ? "success" : "failed"));
	if (json_is_string(json_object_get(o, "ts")))
		osirisfmt_add(o, "end_time", json_copy(json_object_get(o, "ts")));
	if (ms >= 0 && r->started_ms >= 0 && ms >= r->started_ms)
		osirisfmt_add(o, "duration_seconds", json_real((double)(ms - r->started_ms) / 1000.0));
}

/* Fields Osiris's readers look for that our events spell differently:
 * session_reader sums rows from step_complete's rows_processed (the E2B
 * worker's name) and counts a run as failed only from error-level events
 * (it does not know step_failed). Daemon events are marked so that a
 * parity comparison can drop them (DESIGN §6). */
static void osirisfmt_event_compat(json_t *o, const struct osirisfmt_run *r, const msgpack_object *rec)
{
	int daemon = mp_str_eq(mp_get(rec, "origin"), "daemon");
	json_t *rows;

	if (daemon)
		osirisfmt_add(o, "origin", json_string("daemon"));
	if (osirisfmt_is(o, "event", "step_complete") && (rows = json_object_get(o, "rows_out")) != NULL)
		osirisfmt_add(o, "rows_processed", json_copy(rows));
	else if (!daemon && (osirisfmt_is(o, "event", "step_failed") || osirisfmt_is(o, "event", "run_failed")))
		osirisfmt_add(o, "level", json_string("error"));
	else if (daemon && osirisfmt_is(o, "event", "run_end"))
		osirisfmt_run_end(o, r, rec);
}

json_t *osirisfmt_event(const struct osirisfmt_run *r, const msgpack_object *rec)
{
	json_t *o;

	if (!mp_str_eq(mp_get(rec, "kind"), "event"))
		return NULL;
	o = osirisfmt_head(r, rec, "event");
	osirisfmt_step(o, rec);
	osirisfmt_flatten(o, mp_get(rec, "data"));
	osirisfmt_event_compat(o, r, rec);
	return o;
}

json_t *osirisfmt_metric(const struct osirisfmt_run *r, const msgpack_object *rec)
{
	const msgpack_object *value = mp_get(mp_get(rec, "data"), "value");
	json_t *o;

	if (!mp_str_eq(mp_get(rec, "kind"), "metric"))
		return NULL;
	o = osirisfmt_head(r, rec, "metric");
	json_object_set_new(o, "value", value != NULL ? json_from_mp(value) : json_null());
	osirisfmt_step(o, rec);
	osirisfmt_flatten(o, mp_get(rec, "data"));
	if (mp_str_eq(mp_get(rec, "origin"), "daemon"))
		osirisfmt_add(o, "origin", json_string("daemon"));
	return o;
}

int osirisfmt_line(json_t *j, struct buf *b)
{
	char *s = json_dumps(j, OSIRISFMT_JSONL);

	json_decref(j);
	if (s == NULL)
		return -1;
	buf_adds(b, s);
	buf_addc(b, '\n');
	free(s);
	return 0;
}

/* Python's level names (logging.getLevelName). */
static void osirisfmt_level(struct buf *b, const msgpack_object *name)
{
	static const char *const map[][2] = {
	    {"debug", "DEBUG"}, {"info", "INFO"}, {"warn", "WARNING"}, {"warning", "WARNING"}, {"error", "ERROR"}};
	struct buf raw;

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (mp_str_eq(name, map[i][0])) {
			buf_adds(b, map[i][1]);
			return;
		}
	}
	buf_init(&raw);
	if (name != NULL && name->type == MSGPACK_OBJECT_STR)
		out_esc(&raw, name->via.str.ptr, name->via.str.size);
	for (size_t i = 0; i < raw.len; i++)
		buf_addc(b, (char)toupper(raw.data[i]));
	buf_free(&raw);
}

int osirisfmt_log(const struct osirisfmt_run *r, const msgpack_object *rec, struct buf *b)
{
	const msgpack_object *step = mp_get(rec, "step_id"), *data = mp_get(rec, "data");
	const msgpack_object *msg = mp_get(data, "message");
	char when[32];

	if (!mp_str_eq(mp_get(rec, "kind"), "log"))
		return -1;
	out_datetime(out_time_ms(mp_get(rec, "ts")), when, sizeof when);
	buf_printf(b, "%s - ", when);
	if (mp_str_eq(mp_get(rec, "origin"), "daemon"))
		buf_adds(b, "osirisd");
	else if (step != NULL && step->type == MSGPACK_OBJECT_STR) {
		buf_adds(b, "osiris.step.");
		out_esc(b, step->via.str.ptr, step->via.str.size);
	} else
		buf_adds(b, "osiris.run");
	buf_printf(b, " - [%s] - ", r->id);
	osirisfmt_level(b, mp_get(rec, "name"));
	buf_adds(b, " - ");
	if (msg != NULL && msg->type == MSGPACK_OBJECT_STR)
		out_esc(b, msg->via.str.ptr, msg->via.str.size);
	else if (data != NULL)
		out_value(b, data);
	buf_addc(b, '\n');
	return 0;
}

/* Osiris's reason codes (LocalAdapter), with cancelled and lost, which
 * Osiris has no word for, named as they are. */
static const char *osirisfmt_reason(const struct run_info *ri, int64_t exit_code, size_t done, int events)
{
	if (ri->state == RUN_CANCELLED || ri->state == RUN_LOST)
		return run_state_name(ri->state);
	if (ri->state != RUN_SUCCEEDED || exit_code != 0)
		return "execution_failed";
	if (done != ri->nsteps)
		return "incomplete_steps";
	if (!events)
		return "missing_events_jsonl";
	return "";
}

json_t *osirisfmt_status(const struct run_info *ri, int events_written)
{
	int local = ri->backend == NULL || strcmp(ri->backend, "local") == 0;
	int64_t exit_code = ri->has_exit_code ? ri->exit_code : ri->state == RUN_SUCCEEDED ? 0 : 1;
	const char *reason;
	size_t done = 0;
	json_t *o;

	for (size_t i = 0; i < ri->nsteps; i++)
		done += ri->steps[i].state == STEP_SUCCEEDED;
	reason = osirisfmt_reason(ri, exit_code, done, events_written);
	o = json_object();
	json_object_set_new(o, "sandbox_id",
	                    json_string(local                ? "local"
	                                : ri->worker != NULL ? ri->worker
	                                                     : ri->backend));
	json_object_set_new(o, "exit_code", json_integer(exit_code));
	json_object_set_new(o, "steps_completed", json_integer((json_int_t)done));
	json_object_set_new(o, "steps_total", json_integer((json_int_t)ri->nsteps));
	json_object_set_new(o, "ok", json_boolean(*reason == '\0'));
	json_object_set_new(o, "session_path", json_string(local ? "local" : ri->backend));
	json_object_set_new(o, "session_copied", json_true());
	json_object_set_new(o, "events_jsonl_exists", json_boolean(events_written));
	json_object_set_new(o, "reason", json_string(reason));
	return o;
}

char *osirisfmt_artifact_path(const char *path)
{
	char *dest;

	if (!path_is_safe(path))
		return NULL;
	if (strncmp(path, "artifacts/", 10) == 0)
		return xstrdup(path);
	xasprintf(&dest, "artifacts/%s", path);
	return dest;
}
