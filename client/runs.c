/*
 * runs.c: the run commands that are one call each: `runs` (run.list),
 * `show` (run.get) and `cancel` (run.cancel). Human output reads the run
 * objects generically, so fields the daemon adds later do no harm.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

/* Wall time the run took so far: finished (or now) minus started. */
static void runs_duration(const msgpack_object *run, char *dst, size_t len)
{
	int64_t started = out_time_ms(mp_get(run, "started_at"));
	int64_t finished = out_time_ms(mp_get(run, "finished_at"));

	if (started < 0) {
		snprintf(dst, len, "-");
		return;
	}
	if (finished < 0)
		finished = time_now_ms();
	out_duration(finished >= started ? finished - started : 0, dst, len);
}

static void runs_table_add(struct out_table *t, const msgpack_object *run)
{
	struct buf id, state, pipeline, backend;
	char submitted[32], duration[32];
	const char *cells[6];

	buf_init(&id);
	buf_init(&state);
	buf_init(&pipeline);
	buf_init(&backend);
	out_datetime(out_time_ms(mp_get(run, "submitted_at")), submitted, sizeof submitted);
	runs_duration(run, duration, sizeof duration);
	cells[0] = out_str(&id, run, "id");
	cells[1] = out_str(&state, run, "state");
	cells[2] = out_str(&pipeline, run, "pipeline");
	cells[3] = out_str(&backend, run, "backend");
	cells[4] = submitted;
	cells[5] = duration;
	out_table_row(t, cells);
	buf_free(&id);
	buf_free(&state);
	buf_free(&pipeline);
	buf_free(&backend);
}

static int runs_print(struct ctl *ctl, const msgpack_object *result)
{
	static const char *const header[] = {"ID", "STATE", "PIPELINE", "BACKEND", "SUBMITTED", "DURATION"};
	const msgpack_object *runs = mp_get(result, "runs");
	struct out_table t;

	if (runs == NULL || runs->type != MSGPACK_OBJECT_ARRAY) {
		out_error("runs", "bad answer from the daemon: no runs array");
		return EXIT_PROTOCOL;
	}
	if (ctl->json) {
		json_out_doc(json_from_mp(runs));
		return EXIT_OK;
	}
	out_table_init(&t, 6, header);
	for (uint32_t i = 0; i < runs->via.array.size; i++)
		runs_table_add(&t, &runs->via.array.ptr[i]);
	out_table_print(&t);
	out_table_free(&t);
	return EXIT_OK;
}

int cmd_runs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'n'},
	    CTL_OPTS_SHARED,
	};
	const struct ctl_cmd *cmd = ctl_cmd_find("runs");
	const char *state = NULL;
	enum run_state st;
	int64_t limit = -1;
	struct rpc_msg resp;
	msgpack_packer *pk;
	struct session c;
	int ch, rc;

	while ((ch = ctl_getopt(cmd, ctl, argc, argv, ":h", opts, &rc)) != -1) {
		switch (ch) {
		case 's':
			if (run_state_parse(optarg, &st) == -1)
				return ctl_usage_error(cmd, "--state: unknown state '%s'", optarg);
			state = optarg;
			break;
		case 'n':
			if (args_int(optarg, 1, INT32_MAX, &limit) == -1)
				return ctl_usage_error(cmd, "--limit: '%s' is not a positive count", optarg);
			break;
		}
	}
	if (rc != 0 || (rc = ctl_operands(cmd, argc, 0, NULL)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_open(&c, ctl->socket)) != 0)
		return rc;
	pk = session_request(&c, "run.list");
	msgpack_pack_map(pk, (state != NULL) + (limit > 0));
	if (state != NULL)
		mp_pack_kstr(pk, "state", state);
	if (limit > 0)
		mp_pack_kint(pk, "limit", limit);
	if ((rc = session_call(&c, "runs", NULL, NULL, &resp)) == 0) {
		rc = runs_print(ctl, resp.result);
		rpc_msg_free(&resp);
	}
	session_close(&c);
	return rc;
}

static void show_field(const char *label, const char *value)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%-10s %s\n", label, value);
	out_write(b.data, b.len);
	buf_free(&b);
}

static void show_time(const msgpack_object *run, const char *label, const char *key)
{
	char when[32];

	out_datetime(out_time_ms(mp_get(run, key)), when, sizeof when);
	show_field(label, when);
}

/* labels/env as "k=v k=v"; secrets (names only) as a list. */
static void show_map_field(const msgpack_object *run, const char *label, const char *key)
{
	const msgpack_object *o = mp_get(run, key);
	struct buf b;

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL ||
	    ((o->type == MSGPACK_OBJECT_MAP || o->type == MSGPACK_OBJECT_ARRAY) && o->via.map.size == 0))
		return;
	buf_init(&b);
	if (o->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			if (i > 0)
				buf_addc(&b, ' ');
			out_value(&b, &o->via.map.ptr[i].key);
			buf_addc(&b, '=');
			out_value(&b, &o->via.map.ptr[i].val);
		}
	} else if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i > 0)
				buf_addc(&b, ' ');
			out_value(&b, &o->via.array.ptr[i]);
		}
	} else
		out_value(&b, o);
	show_field(label, buf_cstr(&b));
	buf_free(&b);
}

static void show_steps(const msgpack_object *steps)
{
	static const char *const header[] = {"STEP", "DRIVER", "STATE", "ROWS_IN", "ROWS_OUT", "DURATION", "ERROR"};
	static const char *const keys[] = {"id", "driver", "state", "rows_in", "rows_out", "duration_ms", "error"};
	struct buf cell[7];
	const char *cells[7];
	struct out_table t;

	out_write("\n", 1);
	out_table_init(&t, 7, header);
	for (size_t k = 0; k < 7; k++)
		buf_init(&cell[k]);
	for (uint32_t i = 0; i < steps->via.array.size; i++) {
		const msgpack_object *s = &steps->via.array.ptr[i];
		int64_t ms;

		for (size_t k = 0; k < 7; k++)
			cells[k] = out_str(&cell[k], s, keys[k]);
		/* A step that never started has no duration, not 0ms. */
		if (out_time_ms(mp_get(s, "started_at")) < 0 && mp_get(s, "started_at") != NULL) {
			buf_reset(&cell[5]);
			buf_addc(&cell[5], '-');
			cells[5] = buf_cstr(&cell[5]);
		} else if (mp_get_int(s, "duration_ms", &ms) == 0 && ms >= 0) {
			char d[32];

			out_duration(ms, d, sizeof d);
			buf_reset(&cell[5]);
			buf_adds(&cell[5], d);
			cells[5] = buf_cstr(&cell[5]);
		}
		out_table_row(&t, cells);
	}
	out_table_print(&t);
	out_table_free(&t);
	for (size_t k = 0; k < 7; k++)
		buf_free(&cell[k]);
}

static void show_print(const msgpack_object *run)
{
	const msgpack_object *steps = mp_get(run, "steps");
	struct buf b, v;
	char duration[32];
	int64_t code;

	buf_init(&b);
	buf_init(&v);
	show_field("id", out_str(&v, run, "id"));
	buf_adds(&b, out_str(&v, run, "state"));
	if (mp_get_int(run, "exit_code", &code) == 0)
		buf_printf(&b, " (exit %" PRId64 ")", code);
	show_field("state", buf_cstr(&b));
	show_field("pipeline", out_str(&v, run, "pipeline"));
	show_field("backend", out_str(&v, run, "backend"));
	show_field("worker", out_str(&v, run, "worker"));
	show_time(run, "submitted", "submitted_at");
	show_time(run, "started", "started_at");
	show_time(run, "finished", "finished_at");
	runs_duration(run, duration, sizeof duration);
	show_field("duration", duration);
	if (mp_get(run, "error") != NULL && mp_get(run, "error")->type != MSGPACK_OBJECT_NIL)
		show_field("error", out_str(&v, run, "error"));
	show_map_field(run, "labels", "labels");
	show_map_field(run, "env", "env");
	show_map_field(run, "secrets", "secrets");
	show_field("events", out_str(&v, run, "last_seq"));
	if (steps != NULL && steps->type == MSGPACK_OBJECT_ARRAY)
		show_steps(steps);
	buf_free(&b);
	buf_free(&v);
}

int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_find("show");
	struct rpc_msg resp;
	struct session c;
	int rc;

	if ((rc = ctl_parse_simple(cmd, ctl, argc, argv, 1)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_simple(ctl, "show", "run.get", argv[optind], &c, &resp)) != 0)
		return rc;
	if (resp.result == NULL || resp.result->type != MSGPACK_OBJECT_MAP) {
		out_error("show", "bad answer from the daemon: the run is not a map");
		rc = EXIT_PROTOCOL;
	} else if (ctl->json)
		json_out_doc(json_from_mp(resp.result));
	else
		show_print(resp.result);
	rpc_msg_free(&resp);
	session_close(&c);
	return rc;
}

static int runs_state_final(const msgpack_object *o)
{
	enum run_state st;
	char name[32];

	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= sizeof name)
		return 0;
	memcpy(name, o->via.str.ptr, o->via.str.size);
	name[o->via.str.size] = '\0';
	return run_state_parse(name, &st) == 0 && run_state_final(st);
}

int cmd_cancel(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_find("cancel");
	struct rpc_msg resp;
	struct buf id, state, line;
	struct session c;
	int rc;

	if ((rc = ctl_parse_simple(cmd, ctl, argc, argv, 1)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_simple(ctl, "cancel", "run.cancel", argv[optind], &c, &resp)) != 0)
		return rc;
	if (ctl->json) {
		json_out_doc(json_from_mp(resp.result));
	} else {
		buf_init(&id);
		buf_init(&state);
		buf_init(&line);
		out_str(&id, resp.result, "run");
		out_str(&state, resp.result, "state");
		if (mp_str_eq(mp_get(resp.result, "state"), "cancelled"))
			buf_printf(&line, "%s cancelled\n", buf_cstr(&id));
		else if (runs_state_final(mp_get(resp.result, "state")))
			buf_printf(&line, "%s already %s\n", buf_cstr(&id), buf_cstr(&state));
		else
			buf_printf(&line, "%s %s (cancel requested)\n", buf_cstr(&id), buf_cstr(&state));
		out_write(line.data, line.len);
		buf_free(&id);
		buf_free(&state);
		buf_free(&line);
	}
	rpc_msg_free(&resp);
	session_close(&c);
	return EXIT_OK;
}
