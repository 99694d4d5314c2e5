/*
 * child.c: the daemon's child processes by pid (tmux's job.c is the model).
 * One SIGCHLD event reaps every child and tells the owner of each; the
 * daemon is a subreaper, so what it inherits (the orphans of a killed
 * bwrap) is reaped here too and forgotten, never left a zombie.
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/wait.h>

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "osirisd.h"

struct child {
	pid_t pid;
	child_exit_cb cb;
	void *arg;
	LIST_ENTRY(child) entry;
};

static LIST_HEAD(, child) children = LIST_HEAD_INITIALIZER(children);
static struct event *child_sigchld_ev;

static struct child *child_find(pid_t pid)
{
	struct child *c;

	LIST_FOREACH(c, &children, entry)
	{
		if (c->pid == pid)
			return c;
	}
	return NULL;
}

void child_watch(pid_t pid, child_exit_cb cb, void *arg)
{
	struct child *c = xcalloc(1, sizeof(*c));

	c->pid = pid;
	c->cb = cb;
	c->arg = arg;
	LIST_INSERT_HEAD(&children, c, entry);
}

/* The owner no longer wants to hear about pid (it is gone itself); the
 * process is still reaped when it exits. */
void child_forget(pid_t pid)
{
	struct child *c = child_find(pid);

	if (c != NULL) {
		LIST_REMOVE(c, entry);
		free(c);
	}
}

/* Reap whatever has exited; 0 when children are left, -1 when none is. */
static int child_reap_some(void)
{
	struct child *c;
	child_exit_cb cb;
	void *arg;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((c = child_find(pid)) == NULL)
			continue; /* an inherited orphan */
		cb = c->cb;
		arg = c->arg;
		LIST_REMOVE(c, entry);
		free(c);
		if (cb != NULL)
			cb(pid, status, arg);
	}
	return pid == -1 && errno == ECHILD ? -1 : 0;
}

static void child_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	(void)child_reap_some();
}

/* At stop, with no loop left to run: reap until no child is left or the
 * deadline passes. */
void child_reap_until(int64_t deadline_us)
{
	struct timespec ts = {0, 5 * 1000 * 1000};

	while (child_reap_some() == 0 && time_mono_us() < deadline_us)
		nanosleep(&ts, NULL);
}

int child_init(struct event_base *base)
{
	/* A killed bwrap orphans its sandbox: as subreaper the daemon reaps
	 * it rather than leaving zombies to an init that may not. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("prctl(PR_SET_CHILD_SUBREAPER)");
	child_sigchld_ev = evsignal_new(base, SIGCHLD, child_sigchld_cb, NULL);
	if (child_sigchld_ev == NULL || evsignal_add(child_sigchld_ev, NULL) == -1)
		return -1;
	return 0;
}

void child_shutdown(void)
{
	struct child *c;

	while ((c = LIST_FIRST(&children)) != NULL) {
		LIST_REMOVE(c, entry);
		free(c);
	}
	if (child_sigchld_ev != NULL)
		event_free(child_sigchld_ev);
	child_sigchld_ev = NULL;
}
