/*
 * proto.h: the wire contract. MessagePack-RPC over a byte stream with limits
 * enforced before allocation, and typed encode/decode of every message the
 * control socket (client <-> osirisd) and the worker pipe (osirisd <->
 * osiris-worker) carry. PROTOCOL.md is the normative description.
 */
#ifndef OSIRIS_PROTO_H
#define OSIRIS_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

#define PROTO_VERSION 1

/* A zygote's resynchronisation marker (PROTOCOL.md §5, zygote): after its
 * run's process died, the daemon writes PROTO_SYNC_MAGIC and a nonce of
 * PROTO_SYNC_NONCE random bytes; the zygote skips what it reads before it and
 * writes the same bytes back, and the daemon skips what it reads before them.
 * 0xc1 is never a msgpack byte, so a marker never starts a message. */
#define PROTO_SYNC_MAGIC "\xc1\xc1osiris-sync\xc1\xc1"
#define PROTO_SYNC_MAGIC_LEN 15
#define PROTO_SYNC_NONCE 16
#define PROTO_SYNC_LEN (PROTO_SYNC_MAGIC_LEN + PROTO_SYNC_NONCE)

/* errors.c: the closed set of error codes (PROTOCOL.md §errors). */
enum rpc_err {
	ERR_NONE = 0,
	ERR_INVALID_REQUEST,
	ERR_INVALID_MANIFEST,
	ERR_NOT_FOUND,
	ERR_UNSUPPORTED_VERSION,
	ERR_TOO_LARGE,
	ERR_FORBIDDEN,
	ERR_BUSY,
	ERR_INTERNAL,
};
const char *rpc_err_name(enum rpc_err e);
enum rpc_err rpc_err_parse(const char *s); /* unknown -> ERR_INTERNAL */
/* Formats a one-line reason into err; nothing when err is NULL or errlen 0. */
void rpc_err_printf(char *err, size_t errlen, const char *fmt, ...) PRINTFLIKE(3, 4);

/* codec.c ------------------------------------------------------------- */

struct rpc_limits {
	size_t max_msg;     /* bytes of one message */
	unsigned max_depth; /* nesting of arrays/maps */
	uint32_t max_elems; /* elements of one array or entries of one map */
	uint32_t max_str;   /* bytes of one str/ext (bin is bounded by max_msg) */
};
/* Defaults: max_msg = max_context_bytes + 1 MiB, depth 32, 1<<20 elems,
 * 1 MiB strings. */
void rpc_limits_default(struct rpc_limits *l, size_t max_context_bytes);

enum rpc_scan { RPC_SCAN_ERROR = -1, RPC_SCAN_MORE = 0, RPC_SCAN_OK = 1 };
/*
 * Walk one msgpack value at buf[0..len) without allocating. RPC_SCAN_OK: a
 * whole value of *msglen bytes is there and within limits. RPC_SCAN_MORE:
 * incomplete; *need is the least total length worth waiting for (exact when
 * a length header says so). RPC_SCAN_ERROR: a limit is violated or the bytes
 * are not msgpack (*err says which, static string). Element counts are
 * checked against the bytes a value needs at least, so "array of 2^32
 * elements" in 5 bytes is rejected once it cannot fit in max_msg.
 */
enum rpc_scan rpc_scan(const void *buf, size_t len, const struct rpc_limits *l, size_t *msglen, size_t *need,
                       const char **err);
/* The same, and on RPC_SCAN_ERROR *code (when not NULL) classes the
 * failure: ERR_TOO_LARGE for a size limit (message, str/ext, bin, element
 * counts), ERR_INVALID_REQUEST for anything else (not msgpack, nesting).
 * Callers decide on *code, never on the text. */
enum rpc_scan rpc_scan_code(const void *buf, size_t len, const struct rpc_limits *l, size_t *msglen, size_t *need,
                            const char **err, enum rpc_err *code);

enum rpc_type { RPC_REQUEST = 0, RPC_RESPONSE = 1, RPC_NOTIFY = 2 };
struct rpc_msg {
	enum rpc_type type;
	uint32_t msgid;               /* request, response */
	char method[64];              /* request, notify */
	const msgpack_object *params; /* request/notify: params[0], a map (or NULL if params is []) */
	const msgpack_object *error;  /* response: NULL when nil */
	const msgpack_object *result; /* response */
	/* owned */
	uint8_t *raw;
	size_t rawlen;
	msgpack_zone zone;
	msgpack_object root;
};
/* Decode one scanned message (copies the bytes: the objects point into
 * msg->raw). Checks the envelope shape. -1 with err on a bad envelope. */
int rpc_decode(const void *buf, size_t len, struct rpc_msg *msg, char *err, size_t errlen);
/* rpc_decode taking buf (malloc'd) instead of copying it; buf is the
 * message's, or freed, whatever the outcome. */
int rpc_decode_owned(uint8_t *buf, size_t len, struct rpc_msg *msg, char *err, size_t errlen);
/* rpc_msg_free, after overwriting the message's bytes (it carried secrets). */
void rpc_msg_wipe(struct rpc_msg *msg);
void rpc_msg_free(struct rpc_msg *msg);
/* Decode bytes already checked by rpc_scan (with limits) in place: no
 * copy, objects in `zone` (the caller clears it between messages); msg
 * points into buf. Not to be rpc_msg_free'd. */
int rpc_decode_view(const void *buf, size_t len, struct rpc_msg *msg, msgpack_zone *zone, char *err, size_t errlen);

/* Encoding into a struct buf. */
void rpc_packer_init(msgpack_packer *pk, struct buf *b);
/* [0, msgid, method, [ ... the caller packs exactly one map */
void rpc_pack_request_head(msgpack_packer *pk, uint32_t msgid, const char *method);
/* [2, method, [ ... the caller packs exactly one map */
void rpc_pack_notify_head(msgpack_packer *pk, const char *method);
/* [1, msgid, nil, ... the caller packs the result (one value) */
void rpc_pack_result_head(msgpack_packer *pk, uint32_t msgid);
/* [1, msgid, {code, message}, nil] */
void rpc_pack_error(msgpack_packer *pk, uint32_t msgid, const char *code, const char *message);
/* Convenience: str/nil. */
void mp_pack_str(msgpack_packer *pk, const char *s); /* nil when s is NULL */
void mp_pack_kstr(msgpack_packer *pk, const char *key, const char *val);
void mp_pack_kint(msgpack_packer *pk, const char *key, int64_t val);
void mp_pack_key(msgpack_packer *pk, const char *key);

/* Reading maps. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key); /* NULL if absent or map is not a map */
int mp_str_eq(const msgpack_object *o, const char *s);
char *mp_strdup(const msgpack_object *o); /* NULL unless str */
/* Typed fetch of map[key]: 0 ok, 1 absent (or nil; *out untouched), -1 wrong type. */
int mp_get_str(const msgpack_object *map, const char *key, char **out);
int mp_get_int(const msgpack_object *map, const char *key, int64_t *out);
int mp_get_bool(const msgpack_object *map, const char *key, int *out);
int mp_get_double(const msgpack_object *map, const char *key, double *out); /* accepts ints */

/* rpc_reader.c: incremental msgpack-rpc reading from a byte stream ----- */
struct rpc_reader {
	struct buf in;
	size_t off;  /* first unread byte in `in` */
	size_t need; /* do not rescan before this many unread bytes are there */
	struct rpc_limits lim;
	msgpack_zone zone; /* rpc_reader_next_view's objects, reused */
	int has_zone;
};
void rpc_reader_init(struct rpc_reader *r, const struct rpc_limits *lim);
void rpc_reader_free(struct rpc_reader *r);
void rpc_reader_add(struct rpc_reader *r, const void *data, size_t len);
size_t rpc_reader_unread(const struct rpc_reader *r);
/* 1: *msg holds the next message (rpc_msg_free it); 0: need more bytes;
 * -1: the stream is bad (limit or envelope): err says why (for people),
 * *msgid is the request's id when it could be read (*has_msgid), and
 * *too_large is set when rpc_scan_code classed the violation ERR_TOO_LARGE
 * (answer too_large, else invalid_request). The reader is unusable after -1. */
int rpc_reader_next(struct rpc_reader *r, struct rpc_msg *msg, char *err, size_t errlen, uint32_t *msgid,
                    int *has_msgid, int *too_large);
/* As rpc_reader_next, but the message is decoded in place, once: its
 * objects point into the reader's buffer and a zone the reader reuses, so
 * nothing is copied or allocated per message. msg is valid only until the
 * next call on r (do not rpc_msg_free it, do not keep it). */
int rpc_reader_next_view(struct rpc_reader *r, struct rpc_msg *msg, char *err, size_t errlen, uint32_t *msgid,
                         int *has_msgid, int *too_large);

/* states.c: run and step states (wire names). */
enum run_state { RUN_QUEUED, RUN_STARTING, RUN_RUNNING, RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED, RUN_LOST };
enum step_state { STEP_PENDING, STEP_RUNNING, STEP_SUCCEEDED, STEP_FAILED, STEP_SKIPPED, STEP_CANCELLED };
const char *run_state_name(enum run_state s);
int run_state_parse(const char *s, enum run_state *out);
int run_state_final(enum run_state s);
const char *step_state_name(enum step_state s);
int step_state_parse(const char *s, enum step_state *out);

/* msg.c: typed messages ------------------------------------------------ */
/*
 * Every decode function takes the params (or result) map and fills the
 * struct with owned copies (free with the matching _free), except bundle
 * file data which points into the rpc_msg (valid while the msg lives).
 * Decoders return 0, or -1 with a one-line reason in err (a missing
 * required key or a wrong type: the caller answers invalid_request).
 * Unknown keys are ignored.
 */

struct kv {
	char *key;
	char *value;
};
struct kvlist {
	struct kv *v;
	size_t n;
};
void kvlist_add(struct kvlist *l, const char *key, const char *value);
const char *kvlist_get(const struct kvlist *l, const char *key);
void kvlist_free(struct kvlist *l);
/* kvlist_free, the values overwritten first (secrets). */
void kvlist_wipe(struct kvlist *l);
void kvlist_pack(msgpack_packer *pk, const struct kvlist *l);                           /* map str->str */
int kvlist_decode(const msgpack_object *o, struct kvlist *l, char *err, size_t errlen); /* nil -> empty */

/* bundle.c: the run context, a list of files. Wire: array of
 * [path:str, mode:uint, data:bin]. */
struct bundle_file {
	char *path;
	uint32_t mode;
	const uint8_t *data; /* points into the message or into `owned` */
	size_t len;
};
struct bundle {
	struct bundle_file *files;
	size_t n;
	size_t total;   /* sum of lengths */
	uint8_t *owned; /* backing store of bundle_from_dir */
	/* bundle_load: the stored file, mapped read-only (data points into
	 * it, pages touched only when read) and kept open so that big files
	 * are extracted by copy_file_range (bundle_data_offset). */
	void *map;
	size_t maplen;
	int fd; /* valid when map != NULL */
	/* bundle_from_dir: big files mapped one by one (no copy in memory) */
	struct bundle_fmap {
		void *p;
		size_t len;
	} * fmaps;
	size_t nfmaps;
};
/* Checks every path with path_is_safe, rejects duplicates and totals over
 * max_bytes (ERR_TOO_LARGE vs ERR_INVALID_REQUEST through *code). */
int bundle_decode(const msgpack_object *o, struct bundle *b, size_t max_bytes, enum rpc_err *code, char *err,
                  size_t errlen);
void bundle_pack(msgpack_packer *pk, const struct bundle *b);
/* bundle_pack's bytes written to fd with writev, the file data straight
 * from where it lies (no packed copy). 0 or -1 with errno. */
int bundle_write_fd(const struct bundle *b, int fd);
/* For a bundle_load'ed bundle: the offset of f's data in b->fd. 0, or -1
 * when f's data is not in a stored file. */
int bundle_data_offset(const struct bundle *b, const struct bundle_file *f, off_t *off);
const struct bundle_file *bundle_find(const struct bundle *b, const char *path);
void bundle_free(struct bundle *b);
/* Pack a directory tree (regular files only, symlinks refused) into a
 * bundle; -1 with err when over max_bytes or unreadable. */
int bundle_from_dir(struct bundle *b, const char *dir, size_t max_bytes, char *err, size_t errlen);
/* Serialise to / load from a file (the packed bundle, nothing else).
 * bundle_save writes path in place, without fsync: the bundle survives a
 * daemon crash, not a power cut, like the store (WAL, synchronous=NORMAL);
 * an fsync would cost more than the whole rest of a submit. Its size in
 * *size (may be NULL). 0, or -1 with errno (path may hold a part). */
int bundle_save(const struct bundle *b, const char *path, off_t *size);
int bundle_load(struct bundle *b, const char *path, size_t max_bytes, char *err, size_t errlen);

/* hello */
struct msg_hello {
	char *sender; /* "client" in the request (osirisctl/0.1.0), "daemon" in the result */
	int64_t protocol;
	char **capabilities;
	size_t ncapabilities;
};
void msg_hello_pack(msgpack_packer *pk, const struct msg_hello *m, int is_result);
int msg_hello_decode(const msgpack_object *o, struct msg_hello *m, int is_result, char *err, size_t errlen);
void msg_hello_free(struct msg_hello *m);

/* run.submit params */
struct msg_submit {
	struct bundle bundle;
	char *manifest; /* path in the bundle; default "manifest.yaml" */
	char *backend;  /* default "local" */
	struct kvlist env;
	struct kvlist secrets;
	struct kvlist labels;
	int64_t priority; /* higher runs first; default 0 */
};
void msg_submit_pack(msgpack_packer *pk, const struct msg_submit *m);
/* msg_submit_pack in three parts: head, the bundle (bundle_pack or
 * bundle_write_fd), tail. */
void msg_submit_pack_head(msgpack_packer *pk);
void msg_submit_pack_tail(msgpack_packer *pk, const struct msg_submit *m);
int msg_submit_decode(const msgpack_object *o, struct msg_submit *m, size_t max_bytes, enum rpc_err *code, char *err,
                      size_t errlen);
void msg_submit_free(struct msg_submit *m); /* the secrets wiped (kvlist_wipe) */

/* The run object (run.get result; run.list entries omit steps). */
struct step_info {
	char *id;
	char *driver;
	enum step_state state;
	int64_t rows_in, rows_out, duration_ms;
	int64_t started_at, finished_at; /* ms epoch, 0 = unset */
	char *error;                     /* NULL = none */
	char *error_type;
};
struct run_info {
	char *id;
	enum run_state state;
	char *pipeline; /* manifest pipeline.id, may be NULL */
	char *backend;
	char *worker; /* worker/sandbox id, may be NULL */
	char *error;  /* NULL = none */
	int64_t exit_code;
	int has_exit_code;
	int64_t uid;
	int64_t priority;
	int64_t submitted_at, started_at,
	    finished_at; /* ms epoch, 0 = unset (nil on the wire, ISO strings otherwise) */
	int64_t last_seq;
	struct kvlist labels;
	struct kvlist env;   /* plain env only, never secrets */
	char **secret_names; /* names of the run's secrets; values never leave the daemon's memory */
	size_t nsecret_names;
	struct step_info *steps;
	size_t nsteps;
};
void run_info_pack(msgpack_packer *pk, const struct run_info *r, int with_steps);
int run_info_decode(const msgpack_object *o, struct run_info *r, char *err, size_t errlen);
void run_info_free(struct run_info *r);
void step_info_free(struct step_info *s);

/* One record of a run's stream: events, metrics, log lines. */
enum rec_kind { REC_EVENT, REC_METRIC, REC_LOG };
struct event_rec {
	int64_t seq;  /* per run, assigned by the daemon (worker notifications carry the worker's seq) */
	int64_t wseq; /* a worker record's own seq, kept beside the daemon's (replay {since}); 0: daemon's */
	int64_t ts;   /* ms epoch */
	enum rec_kind kind;
	int daemon_origin; /* 1: emitted by osirisd, 0: by the worker */
	char *name;        /* event name, metric name, or log level */
	char *step_id;     /* NULL when not about a step */
	uint8_t *data;     /* msgpack-encoded map of further fields (never NULL once decoded; may be an empty map) */
	size_t data_len;
	/* a metric's data.value, when the decoder saw it: 1 in value, -1 none
	 * (not numeric), 0 not looked at (read it from data) */
	int has_value;
	double value;
};
const char *rec_kind_name(enum rec_kind k);
/* Worker notification `event`/`metric`/`log`: {seq, ts, name, step_id, data}. */
void event_rec_pack_worker(msgpack_packer *pk, const struct event_rec *e);
/* Control socket `run.event` notification params: {run, seq, ts, origin, kind, name, step_id, data}. */
void event_rec_pack_run(msgpack_packer *pk, const char *run_id, const struct event_rec *e);
/* Decode either shape (kind from `kind` key, or from `method` when given). */
int event_rec_decode(const msgpack_object *o, const char *method, struct event_rec *e, char *err, size_t errlen);
void event_rec_free(struct event_rec *e);
/* As event_rec_decode, but name, step_id and data are put in scratch (reset
 * first, kept by the caller: no allocation once it has grown). e lives as
 * long as scratch is untouched; it is not event_rec_free'd. */
int event_rec_decode_buf(const msgpack_object *o, const char *method, struct event_rec *e, struct buf *scratch,
                         char *err, size_t errlen);

/* artifact.list entries; also the worker's `finish` result. */
struct artifact_info {
	char *path;
	char *step_id; /* may be NULL */
	int64_t size;
	char sha256[65];
};
void artifact_info_pack(msgpack_packer *pk, const struct artifact_info *a);
int artifact_info_decode(const msgpack_object *o, struct artifact_info *a, char *err, size_t errlen);
void artifact_info_free(struct artifact_info *a);

/* pool.status entries */
struct pool_info {
	char *backend;
	int64_t target, idle, warming, busy, max;
	int64_t start_ms[16]; /* recent worker start latencies, newest first */
	size_t nstart;
	int64_t start_failures; /* workers in a row that failed to start */
	int failing;            /* runs waiting for this pool fail (start_fail_limit reached) */
	char *last_error;       /* why the last start failed; NULL when none has */
};
void pool_info_pack(msgpack_packer *pk, const struct pool_info *p);
int pool_info_decode(const msgpack_object *o, struct pool_info *p, char *err, size_t errlen);
void pool_info_free(struct pool_info *p);

/* Worker protocol: exec_step result. */
struct step_result {
	enum step_state state; /* succeeded | failed | cancelled */
	int64_t rows_in, rows_out, duration_ms;
	char *error;
	char *error_type;
};
void step_result_pack(msgpack_packer *pk, const struct step_result *r);
int step_result_decode(const msgpack_object *o, struct step_result *r, char *err, size_t errlen);
void step_result_free(struct step_result *r);

/* Worker protocol: prepare params. */
struct msg_prepare {
	char *run_id;
	struct bundle bundle; /* inline; or bundle_path for a worker that shares the filesystem */
	char *bundle_path;
	char *manifest; /* path in the bundle */
	struct kvlist env;
	struct kvlist secrets; /* set as env in the worker and masked in all its output */
};
void msg_prepare_pack(msgpack_packer *pk, const struct msg_prepare *m);
int msg_prepare_decode(const msgpack_object *o, struct msg_prepare *m, size_t max_bytes, char *err, size_t errlen);
void msg_prepare_free(struct msg_prepare *m);
/* The reserved `prepare` secret carrying the connections the daemon resolved
 * (JSON; never put into the worker's environment), and its key holding
 * {NAME: error} for credentials the submitter may not read (PROTOCOL.md). */
#define CONNECTIONS_SECRET "OSIRIS_CONNECTIONS"
#define CONNECTIONS_REFUSED "!refused"

/* Worker protocol: the `ready` notification. Every key optional when
 * decoding; has_drivers says whether the worker named its drivers. */
#define MSG_READY_MAX_DRIVERS 1024
struct msg_ready {
	char *version;
	int64_t pid, protocol;
	int zygote;
	char **drivers; /* the driver names this worker has */
	size_t ndrivers;
	int has_drivers;
};
void msg_ready_pack(msgpack_packer *pk, const struct msg_ready *m);
int msg_ready_decode(const msgpack_object *o, struct msg_ready *m, char *err, size_t errlen);
void msg_ready_free(struct msg_ready *m);

#endif
