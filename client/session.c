/*
 * session.c: the client's one connection to osirisd: find the socket, connect,
 * hello, then blocking request/response with notifications in between.
 * Everything the daemon sends is scanned against limits before decoding.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/osirisctl.h"

#define SESSION_READ_CHUNK 65536

char *session_socket_default(void)
{
	const char *xdg;
	char *p;

	if (geteuid() == 0)
		return xstrdup("/run/osiris/osirisd.sock");
	if ((xdg = getenv("XDG_RUNTIME_DIR")) != NULL && *xdg == '/')
		xasprintf(&p, "%s/osiris/osirisd.sock", xdg);
	else
		xasprintf(&p, "/tmp/osiris-%u/osirisd.sock", (unsigned)geteuid());
	return p;
}

const char *session_socket_path(const char *opt)
{
	const char *env;

	if (opt != NULL && *opt != '\0')
		return opt;
	if ((env = getenv("OSIRIS_SOCKET")) != NULL && *env != '\0')
		return env;
	return session_socket_default();
}

int session_exit_code(const char *code)
{
	static const struct {
		const char *code;
		int exit;
	} map[] = {
	    {"invalid_request", EXIT_USAGE}, {"invalid_manifest", EXIT_USAGE},
	    {"not_found", EXIT_USAGE},       {"unsupported_version", EXIT_PROTOCOL},
	    {"too_large", EXIT_USAGE},       {"forbidden", EXIT_USAGE},
	    {"busy", EXIT_UNREACHABLE},      {"internal", EXIT_RUN_FAILED},
	};

	if (code == NULL)
		return EXIT_RUN_FAILED;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].exit;
	return EXIT_RUN_FAILED; /* an unknown code is a daemon-side failure */
}

/* "osirisctl: connect /run/osiris/osirisd.sock: No such file or directory" */
static void PRINTFLIKE(3, 4) session_path_error(const struct session *c, const char *op, const char *fmt, ...)
{
	char what[512], why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(what, sizeof what, "%s %s", op, c->path);
	out_error(what, "%s", why);
}

static int session_connect(struct session *c)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(c->path) >= sizeof sun.sun_path) {
		session_path_error(c, "connect", "%s", strerror(ENAMETOOLONG));
		return EXIT_UNREACHABLE;
	}
	strcpy(sun.sun_path, c->path);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		out_error("socket", "%s", strerror(errno));
		return EXIT_UNREACHABLE;
	}
	while (connect(c->fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		if (errno == EINTR)
			continue;
		session_path_error(c, "connect", "%s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		return EXIT_UNREACHABLE;
	}
	return 0;
}

static int session_hello(struct session *c)
{
	msgpack_packer *pk;
	struct rpc_msg resp;
	struct msg_hello h;
	char client[64], err[256];
	int rc;

	snprintf(client, sizeof client, "osirisctl/%s", OSIRIS_VERSION);
	memset(&h, 0, sizeof h);
	h.sender = client;
	h.protocol = PROTO_VERSION;
	pk = session_request(c, "hello");
	msg_hello_pack(pk, &h, 0);
	if ((rc = session_call(c, "hello", NULL, NULL, &resp)) != 0)
		return rc;
	memset(&h, 0, sizeof h);
	if (msg_hello_decode(resp.result, &h, 1, err, sizeof err) == -1) {
		out_error("hello", "bad answer from the daemon: %s", err);
		rpc_msg_free(&resp);
		return EXIT_PROTOCOL;
	}
	rpc_msg_free(&resp);
	if (h.protocol != PROTO_VERSION) {
		out_error("hello", "daemon speaks protocol %lld, this client %d", (long long)h.protocol, PROTO_VERSION);
		msg_hello_free(&h);
		return EXIT_PROTOCOL;
	}
	if (h.sender != NULL) {
		struct buf b;

		buf_init(&b);
		out_esc(&b, h.sender, strlen(h.sender));
		c->daemon = xstrdup(buf_cstr(&b));
		buf_free(&b);
	} else
		c->daemon = xstrdup("osirisd");
	c->protocol = h.protocol;
	msg_hello_free(&h);
	return 0;
}

int session_open(struct session *c, const char *path)
{
	int rc;

	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->path = xstrdup(path);
	c->next_id = 1;
	buf_init(&c->in);
	buf_init(&c->out);
	rpc_limits_default(&c->limits, CTL_MAX_MSG);
	c->limits.max_msg = CTL_MAX_MSG;
	if ((rc = session_connect(c)) != 0 || (rc = session_hello(c)) != 0) {
		session_close(c);
		return rc;
	}
	return 0;
}

void session_close(struct session *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->path);
	free(c->daemon);
	c->path = c->daemon = NULL;
}

msgpack_packer *session_request(struct session *c, const char *method)
{
	buf_reset(&c->out);
	rpc_packer_init(&c->pk, &c->out);
	rpc_pack_request_head(&c->pk, c->next_id, method);
	return &c->pk;
}

int session_send(struct session *c)
{
	size_t off = 0;

	while (off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			session_path_error(c, "write", "%s", strerror(errno));
			return EXIT_UNREACHABLE;
		}
		off += (size_t)n;
	}
	buf_reset(&c->out);
	return 0;
}

/* Block until at least one more byte arrives. Output already produced is
 * flushed first so a follower sees every line as soon as it is decoded. */
static int session_fill(struct session *c, size_t need)
{
	size_t want = SESSION_READ_CHUNK;
	ssize_t n;

	out_flush();
	if (need > c->in.len && need - c->in.len > want)
		want = need - c->in.len;
	buf_reserve(&c->in, want);
	do
		n = read(c->fd, c->in.data + c->in.len, want);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		session_path_error(c, "read", "%s", strerror(errno));
		return EXIT_UNREACHABLE;
	}
	if (n == 0) {
		session_path_error(c, "read", "%s", "connection closed by the daemon");
		return EXIT_UNREACHABLE;
	}
	c->in.len += (size_t)n;
	return 0;
}

/* Read the next whole message into *m. */
static int session_next(struct session *c, struct rpc_msg *m)
{
	const char *why = NULL;
	char err[256];
	size_t msglen = 0, need = 0;
	int rc;

	for (;;) {
		switch (rpc_scan(c->in.data, c->in.len, &c->limits, &msglen, &need, &why)) {
		case RPC_SCAN_OK:
			if (rpc_decode(c->in.data, msglen, m, err, sizeof err) == -1) {
				session_path_error(c, "read", "protocol error: %s", err);
				return EXIT_PROTOCOL;
			}
			buf_consume(&c->in, msglen);
			return 0;
		case RPC_SCAN_MORE:
			if ((rc = session_fill(c, need)) != 0)
				return rc;
			break;
		default:
			session_path_error(c, "read", "protocol error: %s", why != NULL ? why : "bad message");
			return EXIT_PROTOCOL;
		}
	}
}

static int session_error(const char *what, const msgpack_object *error)
{
	const msgpack_object *code = mp_get(error, "code"), *msg = mp_get(error, "message");
	struct buf b, cb;
	int rc;

	buf_init(&b);
	buf_init(&cb);
	if (msg != NULL && msg->type == MSGPACK_OBJECT_STR)
		out_esc(&b, msg->via.str.ptr, msg->via.str.size);
	else
		buf_adds(&b, "request failed");
	if (code != NULL && code->type == MSGPACK_OBJECT_STR)
		buf_add(&cb, code->via.str.ptr, code->via.str.size);
	rc = session_exit_code(cb.len > 0 ? buf_cstr(&cb) : NULL);
	out_error(what, "%s", buf_cstr(&b));
	buf_free(&b);
	buf_free(&cb);
	return rc;
}

int session_call(struct session *c, const char *what, session_notify_cb cb, void *arg, struct rpc_msg *resp)
{
	uint32_t id = c->next_id++;
	int rc;

	if ((rc = session_send(c)) != 0)
		return rc;
	for (;;) {
		struct rpc_msg *m = resp;

		/* Decoded in place: the objects point into the message's own zone. */
		if ((rc = session_next(c, m)) != 0)
			return rc;
		if (m->type == RPC_NOTIFY) {
			rc = cb != NULL ? cb(m, arg) : 0;
			rpc_msg_free(m);
			if (rc != 0)
				return rc;
			continue;
		}
		if (m->type != RPC_RESPONSE || m->msgid != id) {
			session_path_error(c, "read", "protocol error: unexpected %s",
			                   m->type == RPC_REQUEST ? "request" : "response id");
			rpc_msg_free(m);
			return EXIT_PROTOCOL;
		}
		if (m->error != NULL) {
			rc = session_error(what, m->error);
			rpc_msg_free(m);
			return rc;
		}
		return 0;
	}
}

int session_simple(struct ctl *ctl, const char *what, const char *method, const char *run, struct session *c,
                   struct rpc_msg *resp)
{
	msgpack_packer *pk;
	int rc;

	if ((rc = session_open(c, ctl->socket)) != 0)
		return rc;
	pk = session_request(c, method);
	if (run != NULL) {
		msgpack_pack_map(pk, 1);
		mp_pack_kstr(pk, "run", run);
	} else
		msgpack_pack_map(pk, 0);
	if ((rc = session_call(c, what, NULL, NULL, resp)) != 0)
		session_close(c);
	return rc;
}
