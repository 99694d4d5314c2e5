/*
 * ctl.c: the command table of osirisctl ({name, usage, summary, fn, options}),
 * help texts, and the argument-error lines every command shares.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/osirisctl.h"

static int cmd_help(struct ctl *ctl, int argc, char **argv);

static const struct ctl_cmd ctl_cmds[] = {
    {"submit",
     "[--backend local|e2b] [-e KEY[=VALUE]]... [--secret KEY[=VALUE]]... [--priority N] [--label K=V]... "
     "[--max-context BYTES] [--wait] [-f|--follow] DIR|manifest.yaml",
     "submit a pipeline run and print its id", cmd_submit,
     "  --backend B         local (default) or e2b\n"
     "  -e KEY[=VALUE]      plain env for the run (value from this environment if omitted)\n"
     "  --secret KEY[=VAL]  secret env: never stored, masked as *** (prefer the form without =VAL)\n"
     "  --priority N        higher runs first (default 0)\n"
     "  --label K=V         attach a label\n"
     "  --max-context BYTES cap on the packed context (K/M/G suffixes, default 64M)\n"
     "  --wait              wait for the run, exit with its status\n"
     "  -f, --follow        stream the run's output, exit with its status\n"},
    {"logs", "[-f] [--since SEQ] [--tail N] RUN", "print a run's events and log lines", cmd_logs,
     "  -f, --follow        follow until the run ends, exit with its status\n"
     "  --since SEQ         only records after sequence number SEQ\n"
     "  --tail N            start with the last N records\n"
     "  --json              one JSON object per line (the run.event params)\n"},
    {"runs", "[--state STATE] [--limit N]", "list runs, newest first", cmd_runs,
     "  --state STATE       queued starting running succeeded failed cancelled lost\n"
     "  --limit N           at most N runs (daemon default 50)\n"},
    {"show", "RUN", "show one run and its steps", cmd_show, NULL},
    {"cancel", "RUN", "cancel a queued or running run", cmd_cancel, NULL},
    {"artifacts", "RUN [--get PATH [-o FILE]] [--export DIR]", "list, fetch or export a run's artifacts", cmd_artifacts,
     "  --get PATH          write one artifact to stdout (checked against its sha256)\n"
     "  -o FILE             with --get: write to FILE instead\n"
     "  --export DIR        write the finished run as an Osiris run directory: events.jsonl,\n"
     "                      metrics.jsonl, osiris.log, status.json, artifacts/ (DIR must be new\n"
     "                      or empty)\n"},
    {"pool", "", "show the worker pools", cmd_pool, NULL},
    {"prune", "[--older-than DURATION] [--keep N] [--dry-run]", "remove old finished runs and their files", cmd_prune,
     "  --older-than D      runs that finished more than D ago (90s, 15m, 12h, 30d, 2w)\n"
     "  --keep N            all but the newest N finished runs\n"
     "  --dry-run           only say how many runs and bytes would go\n"
     "Without --older-than/--keep the daemon's retention applies (daemon.keep_days,\n"
     "keep_runs, max_state_bytes). Queued and running runs are never removed.\n"
     "Root or the daemon's own user only.\n"},
    {"ping", "", "check that the daemon answers", cmd_ping, NULL},
    {"version", "", "print client, daemon and protocol versions", cmd_version, NULL},
    {"help", "[COMMAND]", "show help for a command", cmd_help, NULL},
};
#define NCMDS (sizeof ctl_cmds / sizeof ctl_cmds[0])

const struct ctl_cmd *ctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

void ctl_cmd_help(const struct ctl_cmd *cmd, FILE *f)
{
	fprintf(f, "usage: osirisctl [-S SOCKET] [--json] %s%s%s\n\n%s.\n", cmd->name, *cmd->usage ? " " : "",
	        cmd->usage, cmd->summary);
	if (cmd->options != NULL)
		fprintf(f, "\n%s", cmd->options);
}

int ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	out_error(cmd->name, "%s (usage: osirisctl %s%s%s)", why, cmd->name, *cmd->usage ? " " : "", cmd->usage);
	return EXIT_USAGE;
}

/* getopt_long with opterr = 0 returns '?' or ':'; say which option. */
static int ctl_getopt_error(const struct ctl_cmd *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return ctl_usage_error(cmd, "option %s requires an argument", arg);
	if (optopt != 0 && strncmp(arg, "--", 2) != 0)
		return ctl_usage_error(cmd, "unknown option -%c", optopt);
	return ctl_usage_error(cmd, "unknown option %s", arg);
}

int ctl_getopt(const struct ctl_cmd *cmd, struct ctl *ctl, int argc, char **argv, const char *shortopts,
               const struct option *longopts, int *rc)
{
	int ch;

	*rc = 0;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (ch) {
		case 'J':
			ctl->json = 1;
			break;
		case 'h':
			ctl_cmd_help(cmd, stdout);
			*rc = -1;
			return -1;
		case '?':
		case ':':
			*rc = ctl_getopt_error(cmd, ch, argv);
			return -1;
		default:
			return ch;
		}
	}
	return -1;
}

int ctl_operands(const struct ctl_cmd *cmd, int argc, int nargs, const char *missing)
{
	if (argc - optind < nargs)
		return ctl_usage_error(cmd, "missing %s", missing);
	if (argc - optind > nargs)
		return ctl_usage_error(cmd, "too many arguments");
	return 0;
}

int ctl_parse_simple(const struct ctl_cmd *cmd, struct ctl *ctl, int argc, char **argv, int nargs)
{
	static const struct option opts[] = {CTL_OPTS_SHARED};
	int rc;

	while (ctl_getopt(cmd, ctl, argc, argv, ":h", opts, &rc) != -1)
		; /* no options of its own */
	if (rc != 0)
		return rc;
	return ctl_operands(cmd, argc, nargs, cmd->usage);
}

void ctl_usage_print(FILE *f)
{
	fprintf(f, "usage: osirisctl [-S SOCKET] [--json] COMMAND [ARGS]\n\n"
	           "Control client of osirisd. The socket comes from -S, else $OSIRIS_SOCKET,\n"
	           "else the daemon's default.\n\ncommands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-10s %s\n", ctl_cmds[i].name, ctl_cmds[i].summary);
	fprintf(f, "\nexit codes: 0 ok, 1 run failed/cancelled/lost, 2 usage or request rejected,\n"
	           "3 daemon unreachable, 4 protocol mismatch. 'osirisctl help COMMAND' for details.\n");
}

static int cmd_help(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd;

	(void)ctl;
	if (argc < 2) {
		ctl_usage_print(stdout);
		return EXIT_OK;
	}
	if ((cmd = ctl_cmd_find(argv[1])) == NULL) {
		out_error("help", "unknown command '%s'", argv[1]);
		return EXIT_USAGE;
	}
	ctl_cmd_help(cmd, stdout);
	return EXIT_OK;
}
