/*
 * ping.c: `osirisctl ping` (is the daemon alive, and since when) and
 * `osirisctl version` (client, daemon and protocol versions; the client
 * part prints even when the daemon is unreachable).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

int cmd_ping(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_find("ping");
	struct rpc_msg resp;
	struct buf b, d;
	int64_t uptime = -1;
	struct session c;
	int rc;

	if ((rc = ctl_parse_simple(cmd, ctl, argc, argv, 0)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_simple(ctl, "ping", "ping", NULL, &c, &resp)) != 0)
		return rc;
	if (ctl->json)
		json_out_doc(json_from_mp(resp.result));
	else {
		buf_init(&b);
		buf_init(&d);
		(void)mp_get_int(resp.result, "uptime_s", &uptime);
		buf_printf(&b, "pong (daemon %s, uptime %" PRId64 "s)\n",
		           mp_get(resp.result, "daemon") != NULL ? out_str(&d, resp.result, "daemon") : c.daemon,
		           uptime);
		out_write(b.data, b.len);
		buf_free(&b);
		buf_free(&d);
	}
	rpc_msg_free(&resp);
	session_close(&c);
	return EXIT_OK;
}

int cmd_version(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_find("version");
	struct session c;
	struct buf b;
	int rc;

	if ((rc = ctl_parse_simple(cmd, ctl, argc, argv, 0)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if (!ctl->json) {
		buf_init(&b);
		buf_printf(&b, "client   osirisctl/%s (protocol %d)\n", OSIRIS_VERSION, PROTO_VERSION);
		out_write(b.data, b.len);
		out_flush();
		buf_free(&b);
	}
	rc = session_open(&c, ctl->socket);
	if (ctl->json) {
		json_t *j =
		    json_pack("{s:s+, s:i}", "client", "osirisctl/", OSIRIS_VERSION, "client_protocol", PROTO_VERSION);

		if (rc == 0) {
			json_object_set_new(j, "daemon", json_string(c.daemon));
			json_object_set_new(j, "protocol", json_integer(c.protocol));
		}
		json_out_doc(j);
	} else if (rc == 0) {
		buf_init(&b);
		buf_printf(&b, "daemon   %s\nprotocol %" PRId64 "\n", c.daemon, c.protocol);
		out_write(b.data, b.len);
		buf_free(&b);
	}
	if (rc == 0)
		session_close(&c);
	return rc;
}
