/*
 * prune.c: `osirisctl prune` (run.prune): remove final runs, their rows and
 * files, by age or count, or by the daemon's configured retention; prints
 * how many runs and bytes went (or would go, with --dry-run).
 */
#include <inttypes.h>
#include <stdio.h>

#include "client/osirisctl.h"

static void prune_bytes(int64_t v, char *dst, size_t len)
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(dst, len, "%" PRId64 " bytes", v);
	else
		snprintf(dst, len, d < 10 ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

static int prune_print(struct ctl *ctl, const msgpack_object *result)
{
	int64_t runs = -1, bytes = -1, state = -1;
	char b[32], s[32];
	int dry = 0;
	struct buf line;

	if (mp_get_int(result, "runs", &runs) != 0 || mp_get_int(result, "bytes", &bytes) != 0) {
		out_error("prune", "bad answer from the daemon: no runs or bytes");
		return EXIT_PROTOCOL;
	}
	if (ctl->json) {
		json_out_doc(json_from_mp(result));
		return EXIT_OK;
	}
	(void)mp_get_bool(result, "dry_run", &dry);
	(void)mp_get_int(result, "state_bytes", &state);
	prune_bytes(bytes, b, sizeof b);
	prune_bytes(state, s, sizeof s);
	buf_init(&line);
	buf_printf(&line, "%s %" PRId64 " run%s, %s%s", dry ? "would remove" : "removed", runs, runs == 1 ? "" : "s", b,
	           dry ? " of run files (dry run, nothing removed)" : "");
	if (state >= 0)
		buf_printf(&line, "; state dir %s", s);
	buf_addc(&line, '\n');
	out_write(line.data, line.len);
	buf_free(&line);
	return EXIT_OK;
}

int cmd_prune(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"older-than", required_argument, NULL, 'o'},
	    {"keep", required_argument, NULL, 'k'},
	    {"dry-run", no_argument, NULL, 'n'},
	    CTL_OPTS_SHARED,
	};
	const struct ctl_cmd *cmd = ctl_cmd_find("prune");
	int64_t older = -1, keep = -1;
	int ch, rc, dry = 0;
	struct rpc_msg resp;
	msgpack_packer *pk;
	struct session c;

	while ((ch = ctl_getopt(cmd, ctl, argc, argv, ":h", opts, &rc)) != -1) {
		switch (ch) {
		case 'o':
			if (args_duration(optarg, &older) == -1)
				return ctl_usage_error(
				    cmd, "--older-than: '%s' is not a duration (e.g. 30d, 12h, 15m, 90s)", optarg);
			break;
		case 'k':
			if (args_int(optarg, 0, INT64_MAX, &keep) == -1)
				return ctl_usage_error(cmd, "--keep: '%s' is not a count >= 0", optarg);
			break;
		case 'n':
			dry = 1;
			break;
		}
	}
	if (rc != 0 || (rc = ctl_operands(cmd, argc, 0, NULL)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_open(&c, ctl->socket)) != 0)
		return rc;
	pk = session_request(&c, "run.prune");
	msgpack_pack_map(pk, 1 + (older >= 0) + (keep >= 0));
	mp_pack_key(pk, "dry_run");
	if (dry)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	if (older >= 0)
		mp_pack_kint(pk, "older_than_s", older);
	if (keep >= 0)
		mp_pack_kint(pk, "keep", keep);
	if ((rc = session_call(&c, "prune", NULL, NULL, &resp)) == 0) {
		rc = prune_print(ctl, resp.result);
		rpc_msg_free(&resp);
	}
	session_close(&c);
	return rc;
}
