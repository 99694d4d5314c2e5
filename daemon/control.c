/*
 * control.c: the control socket. Listens on a Unix socket (or the one
 * systemd passed), reads msgpack-rpc requests with limits checked before
 * decoding, hands them to method.c, and owns each connection's lifetime:
 * one disconnect path, objects reaped after the callback that killed them.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define CONTROL_CLOSE_TIMEOUT_S 5
/* A client that sends requests without reading the answers is not read
 * from while this much output waits for it (follow output is bounded on
 * its own, see follow.c). */
#define CONTROL_OUT_MAX (16 * 1024 * 1024)

static struct {
	struct event_base *base;
	const struct config *cfg;
	struct evconnlistener *lst;
	TAILQ_HEAD(, conn) conns;
	uint64_t next_id;
	char *path;   /* unlinked at shutdown when we created it */
	int bound_fd; /* from control_bind_socket, 0 = none */
	struct rpc_limits lim;
} ctl;

/* -- output ------------------------------------------------------------ */

static int control_pk_write(void *data, const char *buf, size_t len)
{
	return evbuffer_add(data, buf, len);
}

void conn_packer(struct conn *c, msgpack_packer *pk)
{
	msgpack_packer_init(pk, bufferevent_get_output(c->bev), control_pk_write);
}

size_t conn_out_len(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void conn_error(struct conn *c, uint32_t msgid, enum rpc_err code, const char *fmt, ...)
{
	msgpack_packer pk;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conn_packer(c, &pk);
	rpc_pack_error(&pk, msgid, rpc_err_name(code), msg);
}

/* -- lifetime ------------------------------------------------------------ */

static void control_conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&ctl.conns, c, entry);
	bufferevent_free(c->bev);
	rpc_reader_free(&c->rd);
	event_free(c->reap_ev);
	free(c);
}

void conn_drop(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = 1;
	log_debug("conn=%llu uid=%ld closed: %s", (unsigned long long)c->id, (long)c->uid, why);
	follow_conn_gone(c);
	prune_conn_gone(c);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->reap_ev, EV_TIMEOUT, 0);
}

/* Stop reading, let what is queued (an error response) go out, then drop. */
static void control_conn_close_after_flush(struct conn *c, const char *why)
{
	struct timeval tv = {CONTROL_CLOSE_TIMEOUT_S, 0};

	if (c->dead || c->closing)
		return;
	c->closing = 1;
	log_debug("conn=%llu closing: %s", (unsigned long long)c->id, why);
	follow_conn_gone(c);
	prune_conn_gone(c);
	bufferevent_disable(c->bev, EV_READ);
	if (conn_out_len(c) == 0) {
		conn_drop(c, why);
		return;
	}
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
}

/* -- input ------------------------------------------------------------- */

static void control_conn_message(struct conn *c, struct rpc_msg *m)
{
	if (m->type != RPC_REQUEST) {
		if (m->type == RPC_RESPONSE) {
			control_conn_close_after_flush(c, "client sent a response");
			rpc_msg_free(m);
			free(m);
			return;
		}
		rpc_msg_free(m); /* notifications from clients carry nothing we use */
		free(m);
		return;
	}
	if (method_dispatch(c, m))
		return; /* kept by the handler */
	rpc_msg_free(m);
	free(m);
}

/* Answers go out before anything else the loop has queued (a pool refill
 * spawning a process, a store flush): write now what the socket takes. */
static void control_conn_flush(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->dead || evbuffer_get_length(out) == 0)
		return;
	if (evbuffer_write(out, bufferevent_getfd(c->bev)) < 0 && errno != EAGAIN && errno != EINTR)
		return; /* the bufferevent sees the error on its next write */
	if (!TAILQ_EMPTY(&c->followers) && evbuffer_get_length(out) <= (size_t)ctl.cfg->follow_buffer_bytes / 4)
		follow_conn_drained(c);
}

/* Handle the complete messages buffered in c->rd. 0, or -1 once c is
 * closing or dead. */
static int control_conn_process(struct conn *c)
{
	struct rpc_msg *m;
	char err[256];
	uint32_t msgid;
	int rc, has_id, big;

	for (;;) {
		if (c->dead || c->closing)
			return -1;
		if (conn_out_len(c) > CONTROL_OUT_MAX) {
			/* backpressure: the write callback resumes */
			bufferevent_disable(c->bev, EV_READ);
			c->throttled = 1;
			return 0;
		}
		m = xmalloc(sizeof(*m));
		rc = rpc_reader_next(&c->rd, m, err, sizeof(err), &msgid, &has_id, &big);
		if (rc != 1) {
			free(m);
			if (rc == 0)
				return 0;
			log_info("conn=%llu uid=%ld bad message: %s", (unsigned long long)c->id, (long)c->uid, err);
			if (has_id)
				conn_error(c, msgid, big ? ERR_TOO_LARGE : ERR_INVALID_REQUEST, "%s", err);
			control_conn_close_after_flush(c, err);
			return -1;
		}
		control_conn_message(c, m);
	}
}

static void control_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec vec[16];
	size_t len;
	int n, i;

	while (!c->dead && !c->closing && (len = evbuffer_get_length(in)) > 0) {
		n = evbuffer_peek(in, -1, NULL, vec, 16);
		if (n > 16)
			n = 16;
		len = 0;
		for (i = 0; i < n; i++) {
			rpc_reader_add(&c->rd, vec[i].iov_base, vec[i].iov_len);
			len += vec[i].iov_len;
		}
		evbuffer_drain(in, len);
		if (c->throttled || control_conn_process(c) == -1)
			return;
	}
	control_conn_flush(c);
}

static void control_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->dead)
		return;
	if (c->closing) {
		if (conn_out_len(c) == 0)
			conn_drop(c, "closed after the error response");
		return;
	}
	if (c->throttled && conn_out_len(c) <= CONTROL_OUT_MAX / 2) {
		c->throttled = 0;
		bufferevent_enable(c->bev, EV_READ);
		if (control_conn_process(c) == -1) /* messages already buffered */
			return;
	}
	if (!TAILQ_EMPTY(&c->followers))
		follow_conn_drained(c);
}

static void control_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		conn_drop(c, "timed out");
	else if (what & BEV_EVENT_ERROR)
		conn_drop(c, strerror(EVUTIL_SOCKET_ERROR()));
	else if (what & BEV_EVENT_EOF) {
		if (conn_out_len(c) > 0 && TAILQ_EMPTY(&c->followers))
			control_conn_close_after_flush(c, "peer closed");
		else
			conn_drop(c, "peer closed");
	}
}

static void control_accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct conn *c;
	size_t low;

	(void)lst;
	(void)sa;
	(void)salen;
	(void)arg;
	c = xcalloc(1, sizeof(*c));
	c->id = ++ctl.next_id;
	c->uid = (uid_t)-1;
	c->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		c->uid = cred.uid;
		c->pid = cred.pid;
	}
	TAILQ_INIT(&c->followers);
	rpc_reader_init(&c->rd, &ctl.lim);
	c->bev = bufferevent_socket_new(ctl.base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->reap_ev = event_new(ctl.base, -1, 0, control_conn_reap_cb, c);
	if (c->bev == NULL || c->reap_ev == NULL)
		fatalx("control: cannot set up a connection");
	/* Followers resume once the output drained under a quarter of the cap. */
	low = (size_t)ctl.cfg->follow_buffer_bytes / 4;
	bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
	bufferevent_setcb(c->bev, control_conn_read_cb, control_conn_write_cb, control_conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&ctl.conns, c, entry);
	log_debug("conn=%llu uid=%ld pid=%ld accepted", (unsigned long long)c->id, (long)c->uid, (long)c->pid);
}

static void control_accept_error_cb(struct evconnlistener *lst, void *arg)
{
	(void)lst;
	(void)arg;
	/* EMFILE and friends: libevent retries on the next readiness. */
	log_warn("control: accept");
}

/* -- the socket ----------------------------------------------------------- */

/* If something answers on path, another daemon owns it; if nothing does,
 * the socket file is stale and can go. */
static int control_check_stale(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
		close(fd);
		snprintf(err, errlen, "another osirisd is listening on %s", path);
		return -1;
	}
	close(fd);
	if (errno != ECONNREFUSED) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	log_info("removing stale socket %s", path);
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* DESIGN §9: the socket belongs to group osiris when that group exists, so
 * its members may use it (0660). */
static void control_set_group(const char *path)
{
	struct group *gr = getgrnam("osiris");

	if (gr != NULL && chown(path, (uid_t)-1, gr->gr_gid) == -1)
		log_warn("chown %s to group osiris", path);
}

static int control_bind(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (mkdir_parents(path) == -1) {
		snprintf(err, errlen, "cannot create the directory of %s: %s", path, strerror(errno));
		return -1;
	}
	if (control_check_stale(path, &sun, err, errlen) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0117); /* the socket is created 0660 */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	control_set_group(path);
	if (listen(fd, 256) == -1) {
		snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Bound before the store is opened: a second osirisd on a live socket is
 * refused before it creates or migrates anything in its state dir. */
int control_bind_socket(const struct config *cfg, char *err, size_t errlen)
{
	int fd;

	if ((fd = control_bind(cfg->socket, err, errlen)) == -1)
		return -1;
	ctl.bound_fd = fd;
	ctl.path = xstrdup(cfg->socket);
	return 0;
}

int control_init(struct event_base *base, const struct config *cfg, int listen_fd, char *err, size_t errlen)
{
	int fd = listen_fd;

	ctl.base = base;
	ctl.cfg = cfg;
	TAILQ_INIT(&ctl.conns);
	rpc_limits_default(&ctl.lim, (size_t)cfg->max_context_bytes);
	follow_set_cap((size_t)cfg->follow_buffer_bytes);
	if (fd == -1 && ctl.bound_fd > 0) {
		fd = ctl.bound_fd;
		ctl.bound_fd = 0;
	} else if (fd == -1) {
		if ((fd = control_bind(cfg->socket, err, errlen)) == -1)
			return -1;
		ctl.path = xstrdup(cfg->socket);
	} else {
		evutil_make_socket_nonblocking(fd);
		evutil_make_socket_closeonexec(fd);
	}
	ctl.lst =
	    evconnlistener_new(base, control_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ctl.lst == NULL) {
		snprintf(err, errlen, "cannot listen on the control socket");
		return -1;
	}
	evconnlistener_set_error_cb(ctl.lst, control_accept_error_cb);
	log_info("listening on %s%s", listen_fd != -1 ? "the socket-activated fd" : cfg->socket,
	         listen_fd != -1 ? "" : "");
	return 0;
}

size_t control_out_pending(void)
{
	struct conn *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &ctl.conns, entry)
	{
		if (!c->dead)
			n += conn_out_len(c);
	}
	return n;
}

void control_shutdown(void)
{
	struct conn *c;

	/* The path goes first: a client connecting now finds no socket rather
	 * than a backlog slot that the close below resets. */
	if (ctl.path != NULL) {
		unlink(ctl.path);
		free(ctl.path);
		ctl.path = NULL;
	}
	if (ctl.lst != NULL)
		evconnlistener_free(ctl.lst);
	ctl.lst = NULL;
	while ((c = TAILQ_FIRST(&ctl.conns)) != NULL) {
		follow_conn_gone(c);
		prune_conn_gone(c);
		TAILQ_REMOVE(&ctl.conns, c, entry);
		bufferevent_free(c->bev);
		rpc_reader_free(&c->rd);
		event_free(c->reap_ev);
		free(c);
	}
}
