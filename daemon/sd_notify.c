/*
 * sd_notify.c: the systemd protocols by hand, no libsystemd: state
 * notifications as datagrams to $NOTIFY_SOCKET (abstract '@' names too),
 * the watchdog ping at half of $WATCHDOG_USEC, socket activation (fd 3).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define SD_LISTEN_FDS_START 3

static struct {
	int setup;
	int fd;
	struct sockaddr_un sa;
	socklen_t salen;
	struct event *wd_ev;
} sdn = {0, -1, {0}, 0, NULL};

/* Read the environment once and unset it: workers must not inherit it. */
static void sd_notify_setup(void)
{
	const char *path;
	size_t len;

	if (sdn.setup)
		return;
	sdn.setup = 1;
	path = getenv("NOTIFY_SOCKET");
	if (path == NULL || *path == '\0')
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sdn.sa.sun_path)) {
		log_warnx("NOTIFY_SOCKET %s: unsupported address", log_esc(path, 128));
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	sdn.sa.sun_family = AF_UNIX;
	memcpy(sdn.sa.sun_path, path, len);
	if (path[0] == '@')
		sdn.sa.sun_path[0] = '\0'; /* abstract namespace */
	sdn.salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	sdn.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sdn.fd == -1)
		log_warn("sd_notify: socket");
	unsetenv("NOTIFY_SOCKET");
}

void sd_notify_send(const char *state)
{
	sd_notify_setup();
	if (sdn.fd == -1)
		return;
	if (sendto(sdn.fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sdn.sa, sdn.salen) == -1)
		log_warn("sd_notify: sendto");
}

static void sd_notify_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify_send("WATCHDOG=1");
}

void sd_notify_watchdog_init(struct event_base *base)
{
	const char *e;
	char usec[32] = "", pid[32] = "", *end;
	struct timeval tv;
	unsigned long long us;

	sd_notify_setup();
	if ((e = getenv("WATCHDOG_USEC")) != NULL)
		snprintf(usec, sizeof(usec), "%s", e);
	if ((e = getenv("WATCHDOG_PID")) != NULL)
		snprintf(pid, sizeof(pid), "%s", e);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (*usec == '\0' || sdn.fd == -1)
		return;
	if (*pid != '\0' && strtol(pid, NULL, 10) != (long)getpid())
		return;
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || us == 0) {
		log_warnx("WATCHDOG_USEC %s: not a number", log_esc(usec, 32));
		return;
	}
	us /= 2;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	sdn.wd_ev = event_new(base, -1, EV_PERSIST, sd_notify_watchdog_cb, NULL);
	if (sdn.wd_ev == NULL || event_add(sdn.wd_ev, &tv) == -1)
		fatalx("sd_notify: cannot arm the watchdog timer");
	log_debug("watchdog: ping every %llu us", us);
}

int sd_notify_listen_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long n;
	int fd = -1;

	if (pid != NULL && fds != NULL && strtol(pid, NULL, 10) == (long)getpid()) {
		n = strtol(fds, NULL, 10);
		if (n >= 1) {
			fd = SD_LISTEN_FDS_START;
			if (n > 1)
				log_warnx("socket activation: %ld sockets passed, using the first", n);
			if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
				fatal("socket activation: fd %d", fd);
		}
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return fd;
}

void sd_notify_shutdown(void)
{
	if (sdn.wd_ev != NULL)
		event_free(sdn.wd_ev);
	sdn.wd_ev = NULL;
	if (sdn.fd != -1)
		close(sdn.fd);
	sdn.fd = -1;
}
