/*
 * worker_harness.h: drive the real osiris-worker binary through pipes with
 * the worker protocol (PROTOCOL.md §4) from a Check test: spawn it, send
 * requests, collect notifications and responses, build contexts on disk.
 */
#ifndef OSIRIS_TESTS_WORKER_HARNESS_H
#define OSIRIS_TESTS_WORKER_HARNESS_H

#include <check.h>
#include <limits.h>
#include <sys/types.h>

#include "proto/proto.h"

struct peer {
	pid_t pid;
	int to, from;
	struct buf in;         /* unparsed bytes */
	struct buf all;        /* every byte the worker wrote */
	struct rpc_msg *notes; /* notifications, in order */
	size_t nnotes;
	uint32_t msgid;
	char workdir[64];
};

/* The worker binary: $OSIRIS_WORKER, else BUILD/bin next to BUILD/tests. */
extern char worker_path[PATH_MAX + 32];
void harness_find_worker(void);

/* peer_spawn only forks the worker; peer_start also checks its "ready"
 * (workdir /tmp/check_worker.*). peer_peek decodes the next message and
 * leaves its bytes in p->in (returns its length); peer_next consumes it and
 * keeps notifications in p->notes. Both: -1 on timeout or EOF (p->all
 * keeps every byte read). peer_finish closes
 * stdin and checks exit 0 and an empty workdir. */
void peer_spawn(struct peer *p, const char *workdir_template, const char *extra_arg);
void peer_start(struct peer *p, const char *extra_arg);
int peer_peek(struct peer *p, struct rpc_msg *msg, int timeout_ms);
int peer_next(struct peer *p, struct rpc_msg *msg, int timeout_ms);
void peer_send(struct peer *p, const struct buf *b);
void peer_finish(struct peer *p);

/* req_begin packs a request head (the caller packs exactly one map);
 * req_call sends it and waits for its response. */
void req_begin(struct peer *p, struct buf *b, msgpack_packer *pk, const char *method);
void req_call(struct peer *p, struct buf *b, struct rpc_msg *resp);
void call_simple(struct peer *p, const char *method, const char *key, const char *val, struct rpc_msg *resp);
void exec_step(struct peer *p, const char *id, struct step_result *r);

const char *note_name(const struct rpc_msg *n);
int note_is(const struct rpc_msg *n, const char *name, const char *step);
ssize_t note_find(const struct peer *p, const char *name, const char *step);
int buf_contains(const struct buf *b, const char *s);

/* Context files: dir/rel with its parents (text, or len bytes). */
void write_file(const char *dir, const char *rel, const char *text);
void write_bytes(const char *dir, const char *rel, const char *text, size_t len);

/* main() of a test program: SIGPIPE ignored, the suite run, exit status. */
int harness_run_suite(Suite *s);

#endif
