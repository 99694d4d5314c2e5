/*
 * logs.c: `osirisctl logs`, and the run.follow loop that `submit -f` and
 * `submit --wait` share: every run.event is printed (one line, flushed when
 * the socket has nothing more buffered) until the final response.
 */
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

struct logs_ctx {
	enum follow_mode mode;
	struct buf line;
};

static int logs_event_cb(const struct rpc_msg *m, void *arg)
{
	struct logs_ctx *lc = arg;

	if (strcmp(m->method, "run.event") != 0 || m->params == NULL)
		return 0; /* versioning is additive: unknown notifications are ignored */
	switch (lc->mode) {
	case FOLLOW_QUIET:
		break;
	case FOLLOW_JSON:
		json_out_line(json_from_mp(m->params));
		break;
	case FOLLOW_HUMAN:
		buf_reset(&lc->line);
		out_record(&lc->line, m->params);
		buf_addc(&lc->line, '\n');
		out_write(lc->line.data, lc->line.len);
		break;
	}
	return 0;
}

/* The final state decides the exit status; exit_code is the daemon's view
 * of the same thing and wins when present. */
static int logs_final_status(const msgpack_object *result)
{
	int64_t code;

	if (mp_get_int(result, "exit_code", &code) == 0)
		return code == 0 ? EXIT_OK : EXIT_RUN_FAILED;
	return mp_str_eq(mp_get(result, "state"), "succeeded") ? EXIT_OK : EXIT_RUN_FAILED;
}

int logs_call(struct session *c, const char *what, const char *run, int64_t since, int follow, session_notify_cb cb,
              void *arg, struct rpc_msg *resp)
{
	msgpack_packer *pk;

	pk = session_request(c, "run.follow");
	msgpack_pack_map(pk, 3);
	mp_pack_kstr(pk, "run", run);
	mp_pack_kint(pk, "since", since);
	mp_pack_key(pk, "follow");
	if (follow)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	return session_call(c, what, cb, arg, resp);
}

int logs_follow(struct session *c, const char *what, const char *run, int64_t since, int follow, enum follow_mode mode)
{
	struct logs_ctx lc = {.mode = mode};
	struct rpc_msg resp;
	int rc;

	buf_init(&lc.line);
	rc = logs_call(c, what, run, since, follow, logs_event_cb, &lc, &resp);
	buf_free(&lc.line);
	if (rc != 0)
		return rc;
	rc = follow ? logs_final_status(resp.result) : EXIT_OK;
	rpc_msg_free(&resp);
	return rc;
}

/* --tail N: start N records before the run's last seq (never before --since). */
static int logs_tail_since(struct session *c, const char *run, int64_t tail, int64_t *since)
{
	msgpack_packer *pk;
	struct rpc_msg resp;
	int64_t last = 0;
	int rc;

	pk = session_request(c, "run.get");
	msgpack_pack_map(pk, 1);
	mp_pack_kstr(pk, "run", run);
	if ((rc = session_call(c, "logs", NULL, NULL, &resp)) != 0)
		return rc;
	if (mp_get_int(resp.result, "last_seq", &last) == -1) {
		out_error("logs", "bad answer from the daemon: last_seq is not an integer");
		rpc_msg_free(&resp);
		return EXIT_PROTOCOL;
	}
	rpc_msg_free(&resp);
	if (last - tail > *since)
		*since = last - tail;
	return 0;
}

int cmd_logs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"since", required_argument, NULL, 's'},
	    {"tail", required_argument, NULL, 't'},
	    CTL_OPTS_SHARED,
	};
	const struct ctl_cmd *cmd = ctl_cmd_find("logs");
	int64_t since = 0, tail = -1;
	int ch, follow = 0, rc;
	struct session c;

	while ((ch = ctl_getopt(cmd, ctl, argc, argv, ":fh", opts, &rc)) != -1) {
		switch (ch) {
		case 'f':
			follow = 1;
			break;
		case 's':
			if (args_int(optarg, 0, INT64_MAX, &since) == -1)
				return ctl_usage_error(cmd, "--since: '%s' is not a sequence number", optarg);
			break;
		case 't':
			if (args_int(optarg, 0, INT64_MAX, &tail) == -1)
				return ctl_usage_error(cmd, "--tail: '%s' is not a count", optarg);
			break;
		}
	}
	if (rc != 0 || (rc = ctl_operands(cmd, argc, 1, "RUN")) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_open(&c, ctl->socket)) != 0)
		return rc;
	if (tail >= 0 && (rc = logs_tail_since(&c, argv[optind], tail, &since)) != 0) {
		session_close(&c);
		return rc;
	}
	rc = logs_follow(&c, "logs", argv[optind], since, follow, ctl->json ? FOLLOW_JSON : FOLLOW_HUMAN);
	session_close(&c);
	return rc;
}
