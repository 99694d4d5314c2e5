/*
 * osirisctl.c: entry point of the control client: global options, then
 * the command from the table in ctl.c. Each command lives in the file of its
 * family and does connect -> hello -> one call -> print -> exit.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

/* Global options stop at the first non-option (the command). */
static int ctl_parse_global(struct ctl *ctl, int argc, char **argv, const char **sockopt, int *help)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (strcmp(a, "--json") == 0)
			ctl->json = 1;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			*help = 1;
		else if (strcmp(a, "-S") == 0 || strcmp(a, "--socket") == 0) {
			if (i + 1 >= argc) {
				out_error("usage", "option %s requires an argument", a);
				return -1;
			}
			*sockopt = argv[++i];
		} else if (strncmp(a, "-S", 2) == 0)
			*sockopt = a + 2;
		else if (strncmp(a, "--socket=", 9) == 0)
			*sockopt = a + 9;
		else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("osirisctl %s\n", OSIRIS_VERSION);
			exit(EXIT_OK);
		} else {
			out_error("usage", "unknown option %s (try 'osirisctl --help')", a);
			return -1;
		}
	}
	return i;
}

int main(int argc, char **argv)
{
	struct ctl ctl = {0};
	const char *sockopt = NULL;
	const struct ctl_cmd *cmd;
	int help = 0, i, rc;

	/* A closed stdout or a dead daemon shows up as EPIPE, handled where it
	 * happens, instead of killing us mid-line. */
	signal(SIGPIPE, SIG_IGN);
	log_init("osirisctl", LOG_LVL_WARN);

	if ((i = ctl_parse_global(&ctl, argc, argv, &sockopt, &help)) < 0)
		return EXIT_USAGE;
	if (i >= argc) {
		if (help) {
			ctl_usage_print(stdout);
			return EXIT_OK;
		}
		out_error("usage", "missing command (try 'osirisctl --help')");
		return EXIT_USAGE;
	}
	if ((cmd = ctl_cmd_find(argv[i])) == NULL) {
		out_error("usage", "unknown command '%s' (try 'osirisctl --help')", argv[i]);
		return EXIT_USAGE;
	}
	if (help) {
		ctl_cmd_help(cmd, stdout);
		return EXIT_OK;
	}
	ctl.socket = session_socket_path(sockopt);
	optind = 0; /* GNU: reinitialise getopt for the command's own argv */
	opterr = 0;
	rc = cmd->fn(&ctl, argc - i, argv + i);
	out_flush();
	return rc;
}
