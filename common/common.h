/*
 * common.h: what every osiris program shares: logging, checked allocation,
 * growable byte buffers, time, hashing, path and text checks, manifests.
 */
#ifndef OSIRIS_COMMON_H
#define OSIRIS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OSIRIS_VERSION "0.1.0"

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif
#define PRINTFLIKE(a, b) __attribute__((__format__(__printf__, a, b)))

/* log.c */
enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
/* Open logging for program `name` (stderr). Journald level prefixes ("<3>")
 * are added when JOURNAL_STREAM is set. */
void log_init(const char *name, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out); /* 0 ok, -1 bad */
void log_warn(const char *fmt, ...) PRINTFLIKE(1, 2);    /* appends strerror(errno) */
void log_warnx(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_info(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_debug(const char *fmt, ...) PRINTFLIKE(1, 2);
__dead void fatal(const char *fmt, ...) PRINTFLIKE(1, 2); /* with strerror */
__dead void fatalx(const char *fmt, ...) PRINTFLIKE(1, 2);
/* Escape peer-supplied text for a log line: control chars and non-ASCII as
 * \xNN, at most `max` input bytes. Returns a static ring buffer slot. */
const char *log_esc(const char *s, size_t max);

/* xmalloc.c: overflow-checked, fatal on OOM. Only for internal objects;
 * anything a peer sizes is checked against a limit first. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
int xasprintf(char **ret, const char *fmt, ...) PRINTFLIKE(2, 3);

/* buf.c: growable byte buffer. */
struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTFLIKE(2, 3);
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
char *buf_cstr(struct buf *b);             /* NUL-terminates (not counted) */

/* util.c */
int64_t time_now_ms(void);  /* wall clock, ms since the Unix epoch */
int64_t time_mono_us(void); /* monotonic, µs */
/* "2026-11-26T12:24:44.123Z"; out must hold 32 bytes. */
void time_iso8601(int64_t ms, char *out, size_t outlen);
/* Parse what time_iso8601 writes (any 0-9 fraction digits, UTC "Z" only).
 * 0 ok, -1 malformed. */
int time_parse_iso8601(const char *s, int64_t *ms);
/* lowercase hex sha256 of data; out holds 65 bytes. */
void sha256_hex(const void *data, size_t len, char out[65]);
struct sha256_ctx;
struct sha256_ctx *sha256_begin(void);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_end(struct sha256_ctx *c, char out[65]); /* frees c */
/* A path is safe when relative, non-empty, without "..", "." or empty
 * components after normalisation, and without NUL. */
int path_is_safe(const char *path);
/* mkdir -p for the parents of `path` (mode 0755). 0 or -1 with errno. */
int mkdir_parents(const char *path);
/* The same for a path relative to the directory open as dirfd. */
int mkdir_parents_at(int dirfd, const char *path);
/* rm -rf, every step relative to an open directory fd, no symlink
 * followed: 0 (also when path is missing) or -1 with errno. */
int rmtree(const char *path);
/* rm -rf of what the directory open as dfd holds (dfd closed here). */
int rmtree_fd(int dfd);
/* Returns NULL when s[0..len) is valid UTF-8, else a pointer to the first
 * bad byte. */
const uint8_t *utf8_invalid(const uint8_t *s, size_t len);
/* df_<sanitized id>: chars outside [0-9A-Za-z_] become '_', '_' prefixed to
 * a leading digit. Returns a new string. */
char *step_input_name(const char *step_id);
/* Value of ${name} (NULL: not set); *secret = 1 when it is a secret. */
typedef const char *(*var_lookup_fn)(void *arg, const char *name, int *secret);
/* Append in to out with each ${NAME} (NAME = [A-Za-z_][A-Za-z0-9_]*, under
 * 256 bytes) replaced through lookup, $${ as a literal "${", any other $
 * literal. 0; -1 for a malformed reference (*at points at it); -2 for a
 * NAME lookup does not know (in var). *secret |= what lookup said. */
int var_expand(const char *in, var_lookup_fn lookup, void *arg, struct buf *out, int *secret, const char **at,
               char var[256]);
/* Read a whole file, at most `max` bytes (-1 with errno EFBIG beyond). */
int file_read_all(const char *path, size_t max, struct buf *out);
/* Write all len bytes to fd, resuming after short writes and EINTR. 0, or
 * -1 with errno. */
int write_all(int fd, const void *data, size_t len);
struct iovec;
/* The same for what n iovecs hold (they are advanced past what is written). */
int writev_all(int fd, struct iovec *iov, int n);

/* fcopy.c: file bytes moved in the kernel (copy_file_range, then
 * sendfile, then pread/write). */
int fcopy_range(int in, off_t *off, int out, size_t len, char *via);
/* Hard link of fd at newdirfd/newname, else a copy of its len bytes: 1
 * linked, 0 copied, -1 with errno and nothing left behind. */
int fcopy_link_or_copy(int fd, size_t len, int newdirfd, const char *newname);

/* mask.c: secret masking, one mechanism for every sink. */
struct mask;
struct mask *mask_new(void);
void mask_free(struct mask *m);
void mask_add(struct mask *m, const char *secret); /* values shorter than 3 bytes are ignored */
size_t mask_count(const struct mask *m);
/* Copy of s with every secret value replaced by "***". */
char *mask_apply(const struct mask *m, const char *s);
int mask_hit(const struct mask *m, const char *s, size_t len);

/* manifest.c: the compiled Osiris manifest (manifest.yaml). */
struct manifest_step {
	char *id;
	char *driver;   /* registry key: `driver`, else `component` */
	char *cfg_path; /* relative to the manifest's directory */
	char **needs;
	size_t nneeds;
	size_t *need_idx; /* index into steps[] of each need */
};
struct manifest {
	char *pipeline_id; /* may be NULL */
	struct manifest_step *steps;
	size_t nsteps;
	size_t *order; /* topological order of needs, manifest order breaks ties */
};
/* Parse and check structure: YAML syntax (error names the line), steps with
 * ids, duplicate ids, needs naming a missing step, needs cycles, unsafe
 * cfg_path. `drivers` (may be NULL) rejects unknown drivers. Fills
 * `err` with one line ("manifest.yaml:12: ...") and returns -1 on error. */
struct manifest_drivers {
	int (*known)(const char *name, void *arg); /* 0: unknown driver */
	void *arg;
};
int manifest_parse(struct manifest *m, const char *text, size_t len, const struct manifest_drivers *drivers, char *err,
                   size_t errlen);
void manifest_free(struct manifest *m);
const struct manifest_step *manifest_step_find(const struct manifest *m, const char *id);
/* Check one cfg/<id>.json text: valid JSON object, every path-like value
 * (key "path") safe. -1 with a one-line err. */
int manifest_cfg_check(const char *name, const char *json, size_t len, char *err, size_t errlen);
struct json_t;
/* The same check, keeping the parsed object in *out when it passes (the
 * worker's steps use it instead of parsing the file again). */
int manifest_cfg_load(const char *name, const char *json, size_t len, struct json_t **out, char *err, size_t errlen);

/* conn.c: Osiris connections (osiris_connections.yaml layout). */
#define CONN_CONTEXT_FILE "osiris_connections.yaml" /* its name in the run context */
struct json_t;
/* Value of ${name} for a connection field; *secret = 1 when it came from a
 * secret (a run secret or a credential). NULL: not set. */
typedef var_lookup_fn conn_lookup_fn;
/* A field whose name holds password/token/secret/key/dsn/...: a secret. */
int conn_key_secret(const char *key);
/* Parse YAML text into {family: {alias: {fields}}} (the "connections"
 * mapping; an absent one is empty). -1 with a one-line err naming `name`. */
int conn_parse(const char *name, const char *text, size_t len, struct json_t **out, char *err, size_t errlen);
/* The same, and with creds non-NULL the top-level "credentials" mapping
 * (daemon.connections_file: {NAME: {allow: [...]}}; absent: empty). */
int conn_parse_all(const char *name, const char *text, size_t len, struct json_t **out, struct json_t **creds,
                   char *err, size_t errlen);
/* "@family.alias" or "@family" (alias NULL): 0, or -1 when malformed. */
int conn_ref_parse(const char *ref, char **family, char **alias);
/* The alias, or with alias NULL the one with `default: true`, else the one
 * named "default"; *found names it. NULL when absent. */
const struct json_t *conn_find(const struct json_t *conns, const char *family, const char *alias, const char **found);
/* A copy of conn without `default` and `allow`, ${VAR} substituted; *secrets lists the
 * secret field names. NULL with a one-line err naming `what` and the
 * variable (never a value). */
struct json_t *conn_resolve(const struct json_t *conn, const char *what, conn_lookup_fn lookup, void *arg,
                            struct json_t **secrets, char *err, size_t errlen);

#endif
