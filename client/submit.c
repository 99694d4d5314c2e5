/*
 * submit.c: `osirisctl submit`: pack the run context (the directory holding
 * the manifest, like a docker build context), send run.submit, print the run
 * id first, then optionally wait for or follow the run on the same socket.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/osirisctl.h"

struct submit_opts {
	struct msg_submit msg;
	size_t max_context;
	int wait;
	int follow;
	char *dir;
};

/* DIR holds manifest.yaml; a file names the manifest inside its directory. */
static int submit_context(const struct ctl_cmd *cmd, const char *arg, struct submit_opts *so)
{
	struct stat st;
	char *copy, *mpath;

	if (stat(arg, &st) == -1) {
		out_error(cmd->name, "%s: %s", arg, strerror(errno));
		return EXIT_USAGE;
	}
	if (S_ISDIR(st.st_mode)) {
		so->dir = xstrdup(arg);
		so->msg.manifest = xstrdup("manifest.yaml");
		xasprintf(&mpath, "%s/manifest.yaml", arg);
		errno = 0;
		if (stat(mpath, &st) == -1 || !S_ISREG(st.st_mode)) {
			out_error(cmd->name, "%s: %s", mpath, errno != 0 ? strerror(errno) : "not a regular file");
			free(mpath);
			return EXIT_USAGE;
		}
		free(mpath);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		out_error(cmd->name, "%s: not a directory or a manifest file", arg);
		return EXIT_USAGE;
	}
	copy = xstrdup(arg);
	so->dir = xstrdup(dirname(copy));
	free(copy);
	copy = xstrdup(arg);
	so->msg.manifest = xstrdup(basename(copy));
	free(copy);
	return 0;
}

static int submit_kv_error(const char *flag, const char *err)
{
	out_error("submit", "%s %s", flag, err);
	return EXIT_USAGE;
}

static int submit_parse(const struct ctl_cmd *cmd, struct ctl *ctl, int argc, char **argv, struct submit_opts *so)
{
	static const struct option opts[] = {
	    {"backend", required_argument, NULL, 'b'},
	    {"env", required_argument, NULL, 'e'},
	    {"secret", required_argument, NULL, 'x'},
	    {"priority", required_argument, NULL, 'p'},
	    {"label", required_argument, NULL, 'l'},
	    {"max-context", required_argument, NULL, 'm'},
	    {"wait", no_argument, NULL, 'w'},
	    {"follow", no_argument, NULL, 'f'},
	    CTL_OPTS_SHARED,
	};
	char err[256];
	int ch, rc;

	while ((ch = ctl_getopt(cmd, ctl, argc, argv, ":e:fh", opts, &rc)) != -1) {
		switch (ch) {
		case 'b':
			free(so->msg.backend);
			so->msg.backend = xstrdup(optarg);
			break;
		case 'e':
			if (args_kv(optarg, 1, getenv, &so->msg.env, err, sizeof err) == -1)
				return submit_kv_error("-e", err);
			break;
		case 'x':
			if (args_kv(optarg, 1, getenv, &so->msg.secrets, err, sizeof err) == -1)
				return submit_kv_error("--secret", err);
			break;
		case 'l':
			if (args_kv(optarg, 0, getenv, &so->msg.labels, err, sizeof err) == -1)
				return submit_kv_error("--label", err);
			break;
		case 'p':
			if (args_int(optarg, INT32_MIN, INT32_MAX, &so->msg.priority) == -1)
				return ctl_usage_error(cmd, "--priority: '%s' is not an integer", optarg);
			break;
		case 'm':
			if (args_size(optarg, &so->max_context) == -1 || so->max_context == 0)
				return ctl_usage_error(cmd, "--max-context: '%s' is not a size", optarg);
			break;
		case 'w':
			so->wait = 1;
			break;
		case 'f':
			so->follow = 1;
			break;
		}
	}
	if (rc != 0 || (rc = ctl_operands(cmd, argc, 1, "DIR or manifest")) != 0)
		return rc;
	return submit_context(cmd, argv[optind], so);
}

/* Sends run.submit; prints the id on its own first line. */
static int submit_send(struct session *c, struct submit_opts *so, char **run)
{
	struct rpc_msg resp;
	msgpack_packer *pk;
	int rc;

	/* The context goes from the buffer it was read into straight to the
	 * socket (writev), not through a packed copy of itself. */
	pk = session_request(c, "run.submit");
	msg_submit_pack_head(pk);
	if ((rc = session_send(c)) != 0)
		return rc;
	if (bundle_write_fd(&so->msg.bundle, c->fd) == -1) {
		out_error("submit", "write: %s", strerror(errno));
		return EXIT_UNREACHABLE;
	}
	msg_submit_pack_tail(pk, &so->msg);
	if ((rc = session_call(c, "submit", NULL, NULL, &resp)) != 0)
		return rc;
	if (mp_get_str(resp.result, "run", run) != 0 || *run == NULL || **run == '\0') {
		out_error("submit", "bad answer from the daemon: no run id");
		rpc_msg_free(&resp);
		return EXIT_PROTOCOL;
	}
	rpc_msg_free(&resp);
	out_write(*run, strlen(*run));
	out_write("\n", 1);
	out_flush();
	return 0;
}

static void submit_opts_free(struct submit_opts *so)
{
	msg_submit_free(&so->msg);
	free(so->dir);
}

int cmd_submit(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_find("submit");
	struct submit_opts so;
	char err[512], *run = NULL;
	struct session c;
	int rc;

	memset(&so, 0, sizeof so);
	so.max_context = CTL_MAX_CONTEXT;
	if ((rc = submit_parse(cmd, ctl, argc, argv, &so)) != 0) {
		submit_opts_free(&so);
		return rc == -1 ? EXIT_OK : rc;
	}
	if (so.msg.backend == NULL)
		so.msg.backend = xstrdup("local");
	if (bundle_from_dir(&so.msg.bundle, so.dir, so.max_context, err, sizeof err) == -1) {
		out_error("submit", "%s", err);
		submit_opts_free(&so);
		return EXIT_USAGE;
	}
	if ((rc = session_open(&c, ctl->socket)) != 0) {
		submit_opts_free(&so);
		return rc;
	}
	rc = submit_send(&c, &so, &run);
	if (rc == 0 && (so.wait || so.follow))
		rc = logs_follow(&c, "submit", run, 0, 1,
		                 !so.follow  ? FOLLOW_QUIET
		                 : ctl->json ? FOLLOW_JSON
		                             : FOLLOW_HUMAN);
	free(run);
	session_close(&c);
	submit_opts_free(&so);
	return rc;
}
