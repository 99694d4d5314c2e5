/*
 * store.c: the daemon's durable state (runs, steps, the per-run record
 * stream, metrics, the artifact index, sandboxes) behind struct store_ops,
 * and its SQLite implementation. All SQL of the project lives here; callers
 * speak domain types. WAL, versioned migrations, batched events.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define STORE_APP_ID 0x4f534952                /* "OSIR" in PRAGMA application_id: ours vs a foreign SQLite file */
#define STORE_BUSY_MS 5000                     /* another process (sqlite3 CLI, backup) holding the lock */
#define STORE_READ_PAGE 512                    /* records copied out per statement in store_event_read */
#define STORE_PENDING_FLUSH 16384              /* store_event_add commits inline past this many records */
#define STORE_PENDING_MAX (1 << 20)            /* records kept across failing flushes before new ones are dropped */
#define STORE_BLOB_MAX (16 << 20)              /* largest blob stored or decoded (record data, labels, env) */
#define STORE_PENDING_BYTES ((size_t)64 << 20) /* record bytes kept across failing flushes (a full disk) */

/* The final run states, the only ones retention may delete. */
#define STORE_FINAL "('succeeded', 'failed', 'cancelled', 'lost')"

/*
 * Ordered migrations: entry i takes user_version i to i+1, each applied in
 * its own transaction. Never edit a shipped entry; append a new one.
 */
static const char *const store_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE runs ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " state TEXT NOT NULL,"
    " pipeline TEXT,"
    " backend TEXT NOT NULL,"
    " worker TEXT,"
    " uid INTEGER NOT NULL DEFAULT -1,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " exit_code INTEGER,"
    " error TEXT,"
    " submitted_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " last_seq INTEGER NOT NULL DEFAULT 0,"
    " labels BLOB,"      /* msgpack map str->str */
    " env BLOB,"         /* msgpack map str->str, plain env only */
    " secret_names BLOB" /* msgpack array of str: names, never values */
    ");"
    "CREATE INDEX runs_newest ON runs (submitted_at DESC, id DESC);"
    "CREATE INDEX runs_state ON runs (state, submitted_at, id);"
    "CREATE TABLE steps ("
    " run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " driver TEXT,"
    " state TEXT NOT NULL,"
    " rows_in INTEGER NOT NULL DEFAULT 0,"
    " rows_out INTEGER NOT NULL DEFAULT 0,"
    " duration_ms INTEGER NOT NULL DEFAULT 0,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " error TEXT,"
    " error_type TEXT,"
    " PRIMARY KEY (run_id, id)"
    ") WITHOUT ROWID;"
    "CREATE TABLE events ("
    " run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"   /* event | metric | log */
    " origin TEXT NOT NULL," /* worker | daemon */
    " name TEXT NOT NULL,"
    " step_id TEXT,"
    " data BLOB NOT NULL," /* the raw msgpack map */
    " PRIMARY KEY (run_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE metrics ("
    " run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " step_id TEXT,"
    " name TEXT NOT NULL,"
    " value REAL,"
    " ts INTEGER NOT NULL,"
    " PRIMARY KEY (run_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE artifacts ("
    " run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
    " path TEXT NOT NULL,"
    " step_id TEXT,"
    " size INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " PRIMARY KEY (run_id, path)"
    ") WITHOUT ROWID;",
    /* 2: retention. disk_bytes: what the run's directory holds (bundle,
     * artifacts, directories; whole 4 KiB blocks), backfilled from the
     * artifact index; runs_final: the prune order (oldest final runs first)
     * without touching queued or running ones. Also switches auto_vacuum to
     * INCREMENTAL (store_auto_vacuum: a VACUUM cannot run in a transaction). */
    "ALTER TABLE runs ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX runs_final ON runs (submitted_at, id) WHERE state IN " STORE_FINAL ";"
    "UPDATE runs SET disk_bytes = 8192 + (SELECT COALESCE(SUM((size + 4095) / 4096 * 4096), 0) "
    "FROM artifacts WHERE artifacts.run_id = runs.id);",
    /* 3: a worker record keeps the worker's own seq beside the daemon's, so
     * a re-attached worker can be asked to `replay {since}` its journal. */
    "ALTER TABLE events ADD COLUMN wseq INTEGER;",
    /* 4: the sandboxes a remote backend holds, written before one is used,
     * so that a restarted daemon re-attaches to the runs in them (a run's
     * row names its sandbox in `worker`). Never an access token. */
    "CREATE TABLE sandboxes ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " backend TEXT NOT NULL,"
    " domain TEXT,"
    " envd_version TEXT,"
    " pid INTEGER NOT NULL DEFAULT 0,"
    " tag TEXT,"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 5: small artifacts (those a worker sends inline with `finish`) live
     * here, not as files: data holds their bytes; NULL means the file is
     * STATE/runs/<id>/artifacts/<path> (every row before this version). */
    "ALTER TABLE artifacts ADD COLUMN data BLOB;",
};
#define STORE_NMIGRATIONS ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_RUN_INSERT,
	ST_RUN_UPDATE,
	ST_RUN_GET,
	ST_RUN_EXISTS,
	ST_RUN_PREFIX,
	ST_RUN_LIST,
	ST_RUN_LIST_STATE,
	ST_RUN_IDS_STATE,
	ST_STEP_INSERT,
	ST_STEP_UPSERT,
	ST_STEP_UPDATE,
	ST_STEP_LIST,
	ST_EVENT_INSERT,
	ST_METRIC_INSERT,
	ST_EVENT_READ,
	ST_EVENT_LAST,
	ST_ART_INSERT,
	ST_ART_LIST,
	ST_ART_GET,
	ST_RUN_BYTES,
	ST_FINAL_COUNT,
	ST_PRUNE_NEXT,
	ST_PRUNE_DELETE,
	ST_FILES_BYTES,
	ST_DB_PAGES,
	ST_INCR_VACUUM,
	ST_CHECKPOINT,
	ST_WSEQ_LAST,
	ST_SBX_PUT,
	ST_SBX_GET,
	ST_SBX_DELETE,
	ST_SBX_LIST,
	ST__COUNT
};

#define RUN_COLS                                                                                                       \
	"id, state, pipeline, backend, worker, uid, priority, exit_code, error, "                                      \
	"submitted_at, started_at, finished_at, last_seq, labels, env, secret_names"
#define STEP_COLS "id, driver, state, rows_in, rows_out, duration_ms, started_at, finished_at, error, error_type"

static const char *const store_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_RUN_INSERT] = "INSERT INTO runs (" RUN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                      "?13, ?14, ?15, ?16)",
    [ST_RUN_UPDATE] = "UPDATE runs SET state = ?2, worker = ?3, exit_code = ?4, error = ?5, started_at = ?6, "
                      "finished_at = ?7, last_seq = ?8 WHERE id = ?1",
    [ST_RUN_GET] = "SELECT " RUN_COLS " FROM runs WHERE id = ?1",
    [ST_RUN_EXISTS] = "SELECT 1 FROM runs WHERE id = ?1",
    /* ?2 is the prefix followed by 0xff: no valid UTF-8 id starting with
     * the prefix sorts at or after it, so this is an index range scan. */
    [ST_RUN_PREFIX] = "SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 2",
    [ST_RUN_LIST] = "SELECT " RUN_COLS " FROM runs ORDER BY submitted_at DESC, id DESC LIMIT ?1",
    [ST_RUN_LIST_STATE] = "SELECT " RUN_COLS " FROM runs WHERE state = ?2 ORDER BY submitted_at DESC, id DESC "
                          "LIMIT ?1",
    [ST_RUN_IDS_STATE] = "SELECT id FROM runs WHERE state = ?1 ORDER BY submitted_at, id",
    [ST_STEP_INSERT] = "INSERT INTO steps (run_id, idx, " STEP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                       "?10, ?11, ?12)",
    [ST_STEP_UPSERT] = "INSERT INTO steps (run_id, idx, " STEP_COLS ") VALUES (?1, (SELECT COALESCE(MAX(idx) + 1, "
                       "0) FROM steps WHERE run_id = ?1), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
                       "ON CONFLICT (run_id, id) DO UPDATE SET driver = COALESCE(excluded.driver, driver), "
                       "state = excluded.state, rows_in = excluded.rows_in, rows_out = excluded.rows_out, "
                       "duration_ms = excluded.duration_ms, started_at = excluded.started_at, "
                       "finished_at = excluded.finished_at, error = excluded.error, error_type = excluded.error_type",
    /* The usual case: the row exists since store_run_insert (?2 unused). */
    [ST_STEP_UPDATE] = "UPDATE steps SET driver = COALESCE(?4, driver), state = ?5, rows_in = ?6, rows_out = ?7, "
                       "duration_ms = ?8, started_at = ?9, finished_at = ?10, error = ?11, error_type = ?12 "
                       "WHERE run_id = ?1 AND id = ?3",
    [ST_STEP_LIST] = "SELECT " STEP_COLS " FROM steps WHERE run_id = ?1 ORDER BY idx",
    [ST_EVENT_INSERT] = "INSERT INTO events (run_id, seq, ts, kind, origin, name, step_id, data, wseq) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_METRIC_INSERT] = "INSERT INTO metrics (run_id, seq, step_id, name, value, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_EVENT_READ] =
        "SELECT seq, ts, kind, origin, name, step_id, data, wseq FROM events WHERE run_id = ?1 AND seq > ?2 "
        "ORDER BY seq LIMIT ?3",
    /* The primary key's last entry for the run: no other record is read. */
    [ST_EVENT_LAST] = "SELECT MAX(seq) FROM events WHERE run_id = ?1",
    [ST_ART_INSERT] = "INSERT OR REPLACE INTO artifacts (run_id, path, step_id, size, sha256, data) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_ART_LIST] = "SELECT path, step_id, size, sha256 FROM artifacts WHERE run_id = ?1 ORDER BY path",
    [ST_ART_GET] = "SELECT size, sha256, data IS NOT NULL, data FROM artifacts WHERE run_id = ?1 AND path = ?2",
    [ST_RUN_BYTES] = "UPDATE runs SET disk_bytes = ?2 WHERE id = ?1",
    /* Both scan the partial index runs_final, never a queued or running run. */
    [ST_FINAL_COUNT] = "SELECT count(*) FROM runs WHERE state IN " STORE_FINAL,
    /* disk_bytes counts the run's files; its artifact blobs are in osiris.db
     * but go with it too, so a candidate's share counts them (length() of a
     * blob reads its header, not its bytes). */
    [ST_PRUNE_NEXT] = "SELECT id, submitted_at, finished_at, disk_bytes + (SELECT COALESCE(SUM(length(a.data)), 0) "
                      "FROM artifacts a WHERE a.run_id = runs.id), last_seq FROM runs WHERE state IN " STORE_FINAL
                      " AND (submitted_at, id) > (?1, ?2) ORDER BY submitted_at, id LIMIT ?3",
    /* Steps, events, metrics and artifacts go by ON DELETE CASCADE. */
    [ST_PRUNE_DELETE] = "DELETE FROM runs WHERE id = ?1 AND state IN " STORE_FINAL,
    [ST_FILES_BYTES] = "SELECT COALESCE(SUM(disk_bytes), 0) FROM runs",
    [ST_DB_PAGES] = "SELECT p.page_count, f.freelist_count, s.page_size FROM pragma_page_count p, "
                    "pragma_freelist_count f, pragma_page_size s",
    /* Bounded: a prune batch frees at most what its rows held. */
    [ST_INCR_VACUUM] = "PRAGMA incremental_vacuum",
    [ST_CHECKPOINT] = "PRAGMA wal_checkpoint(TRUNCATE)",
    [ST_WSEQ_LAST] = "SELECT MAX(wseq) FROM events WHERE run_id = ?1",
    [ST_SBX_PUT] = "INSERT OR REPLACE INTO sandboxes (id, backend, domain, envd_version, pid, tag, created_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_SBX_GET] = "SELECT id, backend, domain, envd_version, pid, tag, created_at FROM sandboxes WHERE id = ?1",
    [ST_SBX_DELETE] = "DELETE FROM sandboxes WHERE id = ?1",
    [ST_SBX_LIST] = "SELECT id, backend, domain, envd_version, pid, tag, created_at FROM sandboxes "
                    "WHERE backend = ?1 ORDER BY created_at, id",
};

/* A buffered artifact row; strings and bytes in the arena like records. */
struct store_art_pending {
	size_t run_off, path_off, step_off, data_off, data_len; /* step_off SIZE_MAX: none; data_off SIZE_MAX: a file */
	int64_t size;
	char sha256[65];
};

/* A buffered record; strings and data live in the arena (offsets, as the
 * arena moves when it grows). */
struct store_rec_pending {
	size_t run_off, name_off, step_off, data_off, data_len; /* step_off SIZE_MAX: no step */
	int64_t seq, ts, wseq;
	int has_value; /* a metric's value: as struct event_rec */
	double value;
	enum rec_kind kind;
	int daemon_origin;
};

/* The SQLite store: one per handle, so one per state dir (its lock). */
struct store_sqlite {
	struct store base; /* first: a struct store * is one of these */
	sqlite3 *db;
	char *path;
	int lockfd;
	sqlite3_stmt *st[ST__COUNT];
	struct store_rec_pending *pend;
	size_t npend, pendcap;
	struct buf arena;
	uint64_t dropped;               /* records lost to the pending cap, reported once per flush */
	struct store_art_pending *arts; /* artifact rows waiting for the next commit */
	size_t narts, artcap;
	char art_run_ok[128]; /* the last run an artifact was added for: it exists */
	int batch;            /* store_batch_begin depth: commits wait for the outermost end */
	int batch_txn;        /* the batch's transaction is open */
	int batch_lost;       /* a rollback inside the batch dropped writes: store_batch_end says -1 */
	int failing;          /* the last commit failed: no inline flush per record until one works */
	int full;             /* ... and it failed for want of space (SQLITE_FULL) */
};

static const struct store_ops store_sqlite_ops;
static int store_sqlite_flush(struct store *h);

static struct store_sqlite *store_sq(struct store *h)
{
	return (struct store_sqlite *)h;
}

/* Helpers ------------------------------------------------------------- */

static sqlite3_stmt *store_stmt(struct store_sqlite *sq, enum store_stmt i)
{
	sqlite3_stmt *s = sq->st[i];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void store_warn(struct store_sqlite *sq, const char *what)
{
	log_warnx("store: %s: %s", what, sqlite3_errmsg(sq->db));
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* 0 means "unset" for times: stored as NULL so SQL sees the absence. */
static void bind_time(sqlite3_stmt *s, int i, int64_t ms)
{
	if (ms == 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, ms);
}

static void bind_blob(sqlite3_stmt *s, int i, const struct buf *b)
{
	sqlite3_bind_blob(s, i, b->data != NULL ? (const void *)b->data : "", (int)b->len, SQLITE_STATIC);
}

static char *col_str(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t == NULL ? NULL : xstrdup((const char *)t);
}

/* Run a statement that returns no rows; SQLITE_DONE or the error code. */
static int store_exec_stmt(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc;
}

/* Blob codecs for the run's lists (msgpack, like the wire). */
static void store_pack_kvlist(struct buf *b, const struct kvlist *l)
{
	msgpack_packer pk;

	rpc_packer_init(&pk, b);
	kvlist_pack(&pk, l);
}

static void store_pack_names(struct buf *b, char *const *names, size_t n)
{
	msgpack_packer pk;
	size_t i;

	rpc_packer_init(&pk, b);
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++)
		mp_pack_str(&pk, names[i]);
}

/* Decode a msgpack blob column into a zone-backed object; 0, 1 when NULL/empty, -1 bad. */
static int store_col_unpack(sqlite3_stmt *s, int i, msgpack_zone *z, msgpack_object *o)
{
	const void *p = sqlite3_column_blob(s, i);
	int len = sqlite3_column_bytes(s, i);
	size_t off = 0;

	if (p == NULL || len == 0)
		return 1;
	if (len > STORE_BLOB_MAX)
		return -1;
	if (msgpack_unpack(p, (size_t)len, &off, z, o) != MSGPACK_UNPACK_SUCCESS)
		return -1;
	return 0;
}

static void store_col_kvlist(sqlite3_stmt *s, int i, const char *run_id, struct kvlist *l)
{
	msgpack_zone z;
	msgpack_object o;
	char err[128];
	int rc;

	msgpack_zone_init(&z, 512);
	rc = store_col_unpack(s, i, &z, &o);
	if (rc == -1 || (rc == 0 && kvlist_decode(&o, l, err, sizeof(err)) == -1))
		log_warnx("store: run=%s: column %s: undecodable blob ignored", run_id, sqlite3_column_name(s, i));
	msgpack_zone_destroy(&z);
}

static void store_col_names(sqlite3_stmt *s, int i, char ***names, size_t *n)
{
	msgpack_zone z;
	msgpack_object o;
	uint32_t k;

	*names = NULL;
	*n = 0;
	msgpack_zone_init(&z, 512);
	if (store_col_unpack(s, i, &z, &o) == 0 && o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size > 0) {
		*names = xcalloc(o.via.array.size, sizeof(**names));
		for (k = 0; k < o.via.array.size; k++) {
			char *v = mp_strdup(&o.via.array.ptr[k]);

			if (v != NULL)
				(*names)[(*n)++] = v;
		}
	}
	msgpack_zone_destroy(&z);
}

/* Transactions -------------------------------------------------------- */

static int store_begin(struct store_sqlite *sq)
{
	if (sq->batch > 0 && sq->batch_txn)
		return 0; /* joins the batch's transaction */
	if (store_exec_stmt(sq->st[ST_BEGIN]) != SQLITE_DONE) {
		store_warn(sq, "begin");
		return -1;
	}
	sq->batch_txn = sq->batch > 0;
	return 0;
}

static void store_rollback(struct store_sqlite *sq)
{
	/* Called right after the failing statement: its code is still current. */
	if ((sqlite3_extended_errcode(sq->db) & 0xff) == SQLITE_FULL)
		sq->full = 1;
	sq->failing = 1;
	if (sq->batch > 0)
		sq->batch_lost = 1;
	if (sq->batch > 0 && sq->batch_txn) {
		/* what the batch wrote before goes too: the callers' rows are
		 * marked clean, the next update of each writes it whole again */
		log_warnx("store: a batched transaction was rolled back");
		sq->batch_txn = 0;
	}
	if (sqlite3_get_autocommit(sq->db))
		return; /* SQLite already rolled back (e.g. SQLITE_FULL) */
	if (store_exec_stmt(sq->st[ST_ROLLBACK]) != SQLITE_DONE)
		store_warn(sq, "rollback");
}

static int store_metric_insert(struct store_sqlite *sq, const struct store_rec_pending *p, const char *run_id,
                               const char *step_id)
{
	sqlite3_stmt *s = store_stmt(sq, ST_METRIC_INSERT);
	const char *data = (const char *)sq->arena.data + p->data_off;
	msgpack_zone z;
	msgpack_object o;
	size_t off = 0;
	double v;
	int rc;

	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, p->seq);
	bind_text(s, 3, step_id);
	sqlite3_bind_text(s, 4, (const char *)sq->arena.data + p->name_off, -1, SQLITE_STATIC);
	/* A metric without a numeric value is still an event; its row says NULL.
	 * The value comes with the record when its decoder saw it (no unpack). */
	if (p->has_value > 0) {
		sqlite3_bind_double(s, 5, p->value);
	} else if (p->has_value < 0) {
		sqlite3_bind_null(s, 5);
	} else {
		msgpack_zone_init(&z, 256);
		if (msgpack_unpack(data, p->data_len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
		    mp_get_double(&o, "value", &v) == 0)
			sqlite3_bind_double(s, 5, v);
		else
			sqlite3_bind_null(s, 5);
		msgpack_zone_destroy(&z);
	}
	sqlite3_bind_int64(s, 6, p->ts);
	rc = store_exec_stmt(s);
	return rc;
}

static int store_pending_insert(struct store_sqlite *sq, const struct store_rec_pending *p)
{
	/* The hot path: every parameter is bound below and store_exec_stmt
	 * left the statement reset, so no store_stmt() round. */
	sqlite3_stmt *s = sq->st[ST_EVENT_INSERT];
	const char *base = (const char *)sq->arena.data;
	const char *step_id = p->step_off == SIZE_MAX ? NULL : base + p->step_off;
	int rc;

	sqlite3_bind_text(s, 1, base + p->run_off, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, p->seq);
	sqlite3_bind_int64(s, 3, p->ts);
	sqlite3_bind_text(s, 4, rec_kind_name(p->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, p->daemon_origin ? "daemon" : "worker", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, base + p->name_off, -1, SQLITE_STATIC);
	bind_text(s, 7, step_id);
	sqlite3_bind_blob(s, 8, base + p->data_off, (int)p->data_len, SQLITE_STATIC);
	if (p->wseq > 0)
		sqlite3_bind_int64(s, 9, p->wseq);
	else
		sqlite3_bind_null(s, 9);
	rc = store_exec_stmt(s);
	if (rc == SQLITE_DONE && p->kind == REC_METRIC)
		rc = store_metric_insert(sq, p, base + p->run_off, step_id);
	return rc;
}

static int store_art_insert(struct store_sqlite *sq, const struct store_art_pending *a)
{
	sqlite3_stmt *s = sq->st[ST_ART_INSERT]; /* every parameter bound, left reset */
	const char *base = (const char *)sq->arena.data;

	sqlite3_bind_text(s, 1, base + a->run_off, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, base + a->path_off, -1, SQLITE_STATIC);
	bind_text(s, 3, a->step_off == SIZE_MAX ? NULL : base + a->step_off);
	sqlite3_bind_int64(s, 4, a->size);
	sqlite3_bind_text(s, 5, a->sha256, -1, SQLITE_STATIC);
	if (a->data_off == SIZE_MAX)
		sqlite3_bind_null(s, 6);
	else
		sqlite3_bind_blob(s, 6, base + a->data_off, (int)a->data_len, SQLITE_STATIC);
	return store_exec_stmt(s);
}

/* The artifact rows (see store_pending_write). */
static int store_pending_arts_write(struct store_sqlite *sq)
{
	size_t i;
	int rc;

	for (i = 0; i < sq->narts; i++) {
		rc = store_art_insert(sq, &sq->arts[i]);
		if (rc == SQLITE_DONE)
			continue;
		if ((rc & 0xff) == SQLITE_CONSTRAINT || rc == SQLITE_TOOBIG) {
			log_warnx("store: run=%s artifact=%s: dropped: %s",
			          log_esc((const char *)sq->arena.data + sq->arts[i].run_off, 64),
			          log_esc((const char *)sq->arena.data + sq->arts[i].path_off, 128),
			          sqlite3_errmsg(sq->db));
			continue;
		}
		store_warn(sq, "insert artifact");
		return -1;
	}
	return 0;
}

/*
 * Write every pending row, artifact rows then records, inside the open
 * transaction. A failure that belongs to the row (constraint: unknown run or
 * duplicate seq, a daemon bug; too big) loses only that row, else one bad
 * row would wedge the stream; any other failure aborts so the caller rolls
 * back and keeps the batch for the next try.
 */
static int store_pending_write(struct store_sqlite *sq)
{
	size_t i;
	int rc;

	if (store_pending_arts_write(sq) == -1)
		return -1;
	for (i = 0; i < sq->npend; i++) {
		const struct store_rec_pending *p = &sq->pend[i];

		rc = store_pending_insert(sq, p);
		if (rc == SQLITE_DONE)
			continue;
		if ((rc & 0xff) == SQLITE_CONSTRAINT || rc == SQLITE_TOOBIG) {
			log_warnx("store: run=%s seq=%lld: record dropped: %s",
			          log_esc((const char *)sq->arena.data + p->run_off, 64), (long long)p->seq,
			          sqlite3_errmsg(sq->db));
			continue;
		}
		store_warn(sq, "insert event");
		return -1;
	}
	return 0;
}

static void store_pending_clear(struct store_sqlite *sq)
{
	sq->narts = 0;
	sq->npend = 0;
	buf_reset(&sq->arena);
	if (sq->arena.cap > (64u << 20)) /* a burst should not pin its peak forever */
		buf_free(&sq->arena);
}

/* Commit the open transaction with the pending batch in it; on failure roll
 * back (the batch stays pending). */
static int store_commit_now(struct store_sqlite *sq)
{
	if ((sq->npend > 0 || sq->narts > 0) && store_pending_write(sq) == -1) {
		store_rollback(sq);
		return -1;
	}
	if (store_exec_stmt(sq->st[ST_COMMIT]) != SQLITE_DONE) {
		store_warn(sq, "commit");
		store_rollback(sq);
		return -1;
	}
	sq->failing = sq->full = 0;
	store_pending_clear(sq);
	return 0;
}

/* Inside a batch the commit waits for store_batch_end. */
static int store_commit(struct store_sqlite *sq)
{
	if (sq->batch > 0)
		return 0;
	return store_commit_now(sq);
}

/*
 * The end of a write: commit it (inside a batch the batch's end does) when
 * its statements ended in rc == SQLITE_DONE; else log "store: <what>:
 * <SQLite's message>" and roll back. 0 or -1.
 */
static int store_write_end(struct store_sqlite *sq, int rc, const char *fmt, ...) PRINTFLIKE(3, 4);
static int store_write_end(struct store_sqlite *sq, int rc, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	if (rc == SQLITE_DONE)
		return store_commit(sq);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_warnx("store: %s: %s", what, sqlite3_errmsg(sq->db));
	store_rollback(sq);
	return -1;
}

static void store_sqlite_batch_begin(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);

	sq->batch++;
}

static int store_sqlite_batch_end(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);
	int rc, lost;

	if (sq->batch == 0 || --sq->batch > 0)
		return 0;
	if (!sq->batch_txn)
		rc = sq->npend > 0 || sq->narts > 0 ? store_sqlite_flush(&sq->base) : 0;
	else {
		sq->batch_txn = 0;
		rc = store_commit_now(sq);
	}
	lost = sq->batch_lost;
	sq->batch_lost = 0;
	return lost ? -1 : rc;
}

static int store_sqlite_full(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);

	return sq->full;
}

/* Open, migrate, close ------------------------------------------------- */

static int store_mkdir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir_parents(dir) == -1 || (mkdir(dir, 0700) == -1 && errno != EEXIST)) {
		snprintf(err, errlen, "%s: cannot create state directory: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: state directory is not a directory", dir);
		return -1;
	}
	return 0;
}

/* Two daemons on one state dir would each declare the other's runs lost. */
static int store_lock(struct store_sqlite *sq, const char *dir, char *err, size_t errlen)
{
	char *path;

	xasprintf(&path, "%s/osiris.lock", dir);
	sq->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sq->lockfd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (flock(sq->lockfd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "%s: state directory in use by another osirisd (%s)", dir,
		         errno == EWOULDBLOCK ? "locked" : strerror(errno));
		free(path);
		close(sq->lockfd);
		sq->lockfd = -1;
		return -1;
	}
	free(path);
	return 0;
}

/* One-value query, e.g. a pragma. 0 ok with *out set; -1 with err. */
static int store_query_int(struct store_sqlite *sq, const char *sql, int64_t *out, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(sq->db, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", sq->path, sqlite3_errmsg(sq->db));
		return -1;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		snprintf(err, errlen, "%s: %s", sq->path,
		         rc == SQLITE_DONE ? "query returned nothing" : sqlite3_errmsg(sq->db));
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int store_exec(struct store_sqlite *sq, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(sq->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", sq->path, msg != NULL ? msg : sqlite3_errmsg(sq->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/*
 * WAL: readers never block the writer. synchronous=NORMAL: in WAL mode a
 * commit survives a crash of osirisd (the data is in the WAL, in the page
 * cache) and the database never corrupts; only a power loss or kernel crash
 * may take back the last few commits. FULL would fsync on every commit and
 * cap runs/s at the disk's fsync rate; revisit (make it a config key) when a
 * build host needs power-loss durability of acknowledged runs.
 * Checkpoints (the only fsyncs left) every 16 MiB of WAL instead of 4: fewer
 * stalls of the loop under heavy event streams; the WAL is truncated back to
 * at most 64 MiB afterwards.
 */
static int store_pragmas(struct store_sqlite *sq, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	const unsigned char *mode;
	int ok;

	/* The first statement that reads the header: a garbage file fails here. */
	if (sqlite3_prepare_v2(sq->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		int code = sqlite3_errcode(sq->db);

		if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
			snprintf(err, errlen, "%s: not an osiris database or corrupt (%s); move it away to start fresh",
			         sq->path, sqlite3_errmsg(sq->db));
		else
			snprintf(err, errlen, "%s: %s", sq->path, sqlite3_errmsg(sq->db));
		sqlite3_finalize(s);
		return -1;
	}
	mode = sqlite3_column_text(s, 0);
	ok = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	sqlite3_finalize(s);
	if (!ok) {
		snprintf(err, errlen, "%s: cannot switch to WAL journal mode", sq->path);
		return -1;
	}
	return store_exec(sq,
	                  "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
	                  "PRAGMA cache_size=-16384; PRAGMA journal_size_limit=67108864; "
	                  "PRAGMA wal_autocheckpoint=4096;",
	                  err, errlen);
}

/* A valid SQLite file that is not ours must not be "migrated" into. */
static int store_check_identity(struct store_sqlite *sq, int64_t version, char *err, size_t errlen)
{
	int64_t app, ntables;

	if (store_query_int(sq, "PRAGMA application_id", &app, err, errlen) == -1)
		return -1;
	if (app != 0 && app != STORE_APP_ID) {
		snprintf(err, errlen, "%s: foreign SQLite database (application_id %lld), not osiris's", sq->path,
		         (long long)app);
		return -1;
	}
	if (version > STORE_NMIGRATIONS) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this osirisd knows (%d)", sq->path,
		         (long long)version, STORE_NMIGRATIONS);
		return -1;
	}
	if (version != 0)
		return 0;
	if (store_query_int(sq, "SELECT count(*) FROM sqlite_schema", &ntables, err, errlen) == -1)
		return -1;
	if (ntables != 0) {
		snprintf(err, errlen, "%s: foreign SQLite database (has tables but no osiris schema version)",
		         sq->path);
		return -1;
	}
	return 0;
}

static int store_migrate(struct store_sqlite *sq, char *err, size_t errlen)
{
	int64_t version;
	char *sql;
	int rc;

	if (store_query_int(sq, "PRAGMA user_version", &version, err, errlen) == -1 ||
	    store_check_identity(sq, version, err, errlen) == -1)
		return -1;
	for (; version < STORE_NMIGRATIONS; version++) {
		xasprintf(&sql, "BEGIN IMMEDIATE; %s; PRAGMA application_id=%d; PRAGMA user_version=%lld; COMMIT;",
		          store_migrations[version], STORE_APP_ID, (long long)version + 1);
		rc = store_exec(sq, sql, err, errlen);
		free(sql);
		if (rc == -1) {
			sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		log_info("store: migrated %s to schema version %lld", sq->path, (long long)version + 1);
	}
	return 0;
}

/*
 * Part of migration 2: space freed by pruning goes back to the filesystem
 * (PRAGMA incremental_vacuum after each prune batch). A database made
 * before needs one VACUUM to switch modes; it rewrites the file (needs as
 * much free space again) and runs once, before the loop starts. If it
 * fails (a full disk) the daemon runs on: freed pages are still reused,
 * the file just does not shrink, and the next start tries again.
 */
static void store_auto_vacuum(struct store_sqlite *sq)
{
	int64_t mode, t0;
	char err[512];

	if (store_query_int(sq, "PRAGMA auto_vacuum", &mode, err, sizeof(err)) == -1 || mode == 2)
		return;
	log_info("store: switching %s to incremental auto-vacuum (one VACUUM, once)", sq->path);
	t0 = time_mono_us();
	if (store_exec(sq, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM", err, sizeof(err)) == -1) {
		log_warnx("store: %s: pruned space is reused but not given back until a VACUUM works", err);
		return;
	}
	log_info("store: VACUUM done in %lld ms", (long long)(time_mono_us() - t0) / 1000);
}

static int store_prepare_all(struct store_sqlite *sq, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(sq->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &sq->st[i], NULL) !=
		    SQLITE_OK) {
			snprintf(err, errlen, "%s: prepare statement %d: %s", sq->path, i, sqlite3_errmsg(sq->db));
			return -1;
		}
	}
	return 0;
}

/* Everything the handle holds, and the handle. */
static void store_release(struct store_sqlite *sq)
{
	int i;

	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(sq->st[i]);
	if (sq->db != NULL && sqlite3_close(sq->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(sq->db));
	if (sq->lockfd != -1)
		close(sq->lockfd);
	free(sq->path);
	free(sq->pend);
	free(sq->arts);
	buf_free(&sq->arena);
	free(sq);
}

struct store *store_open(const char *state_dir, char *err, size_t errlen)
{
	struct store_sqlite *sq;

	if (store_mkdir(state_dir, err, errlen) == -1)
		return NULL;
	sq = xcalloc(1, sizeof(*sq));
	sq->base.ops = &store_sqlite_ops;
	sq->lockfd = -1;
	buf_init(&sq->arena);
	if (store_lock(sq, state_dir, err, errlen) == -1) {
		store_release(sq);
		return NULL;
	}
	xasprintf(&sq->path, "%s/osiris.db", state_dir);
	if (sqlite3_open_v2(sq->path, &sq->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", sq->path, sq->db != NULL ? sqlite3_errmsg(sq->db) : "out of memory");
		store_release(sq);
		return NULL;
	}
	sqlite3_busy_timeout(sq->db, STORE_BUSY_MS);
	/* A new file takes it before WAL mode writes its header: no VACUUM
	 * then. On an existing database it changes nothing by itself; on a
	 * garbage file it fails, and store_pragmas says why. */
	(void)sqlite3_exec(sq->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
	if (store_pragmas(sq, err, errlen) == -1 || store_migrate(sq, err, errlen) == -1) {
		store_release(sq);
		return NULL;
	}
	store_auto_vacuum(sq);
	if (store_prepare_all(sq, err, errlen) == -1) {
		store_release(sq);
		return NULL;
	}
	log_debug("store: opened %s (schema %d)", sq->path, STORE_NMIGRATIONS);
	return &sq->base;
}

static void store_sqlite_close(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);

	if ((sq->npend > 0 || sq->narts > 0) && store_sqlite_flush(&sq->base) == -1)
		log_warnx("store: %zu records, %zu artifact rows not written at close", sq->npend, sq->narts);
	sqlite3_exec(sq->db, "PRAGMA optimize", NULL, NULL, NULL);
	store_release(sq);
}

/* Runs and steps -------------------------------------------------------- */

static int store_step_bind(sqlite3_stmt *s, const char *run_id, int64_t idx, const struct step_info *st)
{
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, idx);
	bind_text(s, 3, st->id);
	bind_text(s, 4, st->driver);
	sqlite3_bind_text(s, 5, step_state_name(st->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, st->rows_in);
	sqlite3_bind_int64(s, 7, st->rows_out);
	sqlite3_bind_int64(s, 8, st->duration_ms);
	bind_time(s, 9, st->started_at);
	bind_time(s, 10, st->finished_at);
	bind_text(s, 11, st->error);
	bind_text(s, 12, st->error_type);
	return store_exec_stmt(s);
}

static int store_run_insert_row(struct store_sqlite *sq, const struct run_info *r, struct buf *blobs)
{
	sqlite3_stmt *s = store_stmt(sq, ST_RUN_INSERT);

	store_pack_kvlist(&blobs[0], &r->labels);
	store_pack_kvlist(&blobs[1], &r->env);
	store_pack_names(&blobs[2], r->secret_names, r->nsecret_names);
	sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, run_state_name(r->state), -1, SQLITE_STATIC);
	bind_text(s, 3, r->pipeline);
	bind_text(s, 4, r->backend != NULL ? r->backend : "local");
	bind_text(s, 5, r->worker);
	sqlite3_bind_int64(s, 6, r->uid);
	sqlite3_bind_int64(s, 7, r->priority);
	if (r->has_exit_code)
		sqlite3_bind_int64(s, 8, r->exit_code);
	bind_text(s, 9, r->error);
	sqlite3_bind_int64(s, 10, r->submitted_at);
	bind_time(s, 11, r->started_at);
	bind_time(s, 12, r->finished_at);
	sqlite3_bind_int64(s, 13, r->last_seq);
	bind_blob(s, 14, &blobs[0]);
	bind_blob(s, 15, &blobs[1]);
	bind_blob(s, 16, &blobs[2]);
	return store_exec_stmt(s);
}

static int store_sqlite_run_insert(struct store *h, const struct run_info *r)
{
	struct store_sqlite *sq = store_sq(h);
	struct buf blobs[3];
	size_t i;
	int rc, ret;

	if (r->id == NULL || store_begin(sq) == -1)
		return -1;
	for (i = 0; i < 3; i++)
		buf_init(&blobs[i]);
	rc = store_run_insert_row(sq, r, blobs);
	for (i = 0; rc == SQLITE_DONE && i < r->nsteps; i++)
		rc = store_step_bind(store_stmt(sq, ST_STEP_INSERT), r->id, (int64_t)i, &r->steps[i]);
	ret = store_write_end(sq, rc, "run=%s: insert", log_esc(r->id, 64));
	for (i = 0; i < 3; i++)
		buf_free(&blobs[i]);
	return ret;
}

static int store_sqlite_run_update(struct store *h, const struct run_info *r)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int rc;

	if (store_begin(sq) == -1)
		return -1;
	s = store_stmt(sq, ST_RUN_UPDATE);
	sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, run_state_name(r->state), -1, SQLITE_STATIC);
	bind_text(s, 3, r->worker);
	if (r->has_exit_code)
		sqlite3_bind_int64(s, 4, r->exit_code);
	bind_text(s, 5, r->error);
	bind_time(s, 6, r->started_at);
	bind_time(s, 7, r->finished_at);
	sqlite3_bind_int64(s, 8, r->last_seq);
	rc = store_exec_stmt(s);
	if (rc == SQLITE_DONE && sqlite3_changes(sq->db) != 1) {
		log_warnx("store: run=%s: update: no such run", log_esc(r->id, 64));
		store_rollback(sq);
		return -1;
	}
	return store_write_end(sq, rc, "run=%s: update", log_esc(r->id, 64));
}

static int store_sqlite_step_update(struct store *h, const char *run_id, const struct step_info *step)
{
	struct store_sqlite *sq = store_sq(h);
	int rc;

	if (step->id == NULL || store_begin(sq) == -1)
		return -1;
	/* a plain UPDATE of the row the run's insert made; only a step the
	 * run did not list gets one appended */
	rc = store_step_bind(store_stmt(sq, ST_STEP_UPDATE), run_id, 0, step);
	if (rc == SQLITE_DONE && sqlite3_changes(sq->db) == 0)
		rc = store_step_bind(store_stmt(sq, ST_STEP_UPSERT), run_id, 0, step);
	return store_write_end(sq, rc, "run=%s step=%s: update", log_esc(run_id, 64), log_esc(step->id, 64));
}

/* Fill r from a row of RUN_COLS (steps not included). */
static void store_run_from_row(sqlite3_stmt *s, struct run_info *r)
{
	memset(r, 0, sizeof(*r));
	r->id = col_str(s, 0);
	if (run_state_parse((const char *)sqlite3_column_text(s, 1), &r->state) != 0) {
		log_warnx("store: run=%s: unknown state %s, reading as lost", r->id,
		          log_esc((const char *)sqlite3_column_text(s, 1), 32));
		r->state = RUN_LOST;
	}
	r->pipeline = col_str(s, 2);
	r->backend = col_str(s, 3);
	r->worker = col_str(s, 4);
	r->uid = sqlite3_column_int64(s, 5);
	r->priority = sqlite3_column_int64(s, 6);
	r->has_exit_code = sqlite3_column_type(s, 7) != SQLITE_NULL;
	r->exit_code = sqlite3_column_int64(s, 7);
	r->error = col_str(s, 8);
	r->submitted_at = sqlite3_column_int64(s, 9);
	r->started_at = sqlite3_column_int64(s, 10);
	r->finished_at = sqlite3_column_int64(s, 11);
	r->last_seq = sqlite3_column_int64(s, 12);
	store_col_kvlist(s, 13, r->id, &r->labels);
	store_col_kvlist(s, 14, r->id, &r->env);
	store_col_names(s, 15, &r->secret_names, &r->nsecret_names);
}

static void store_step_from_row(sqlite3_stmt *s, struct step_info *st)
{
	memset(st, 0, sizeof(*st));
	st->id = col_str(s, 0);
	st->driver = col_str(s, 1);
	if (step_state_parse((const char *)sqlite3_column_text(s, 2), &st->state) != 0)
		st->state = STEP_FAILED;
	st->rows_in = sqlite3_column_int64(s, 3);
	st->rows_out = sqlite3_column_int64(s, 4);
	st->duration_ms = sqlite3_column_int64(s, 5);
	st->started_at = sqlite3_column_int64(s, 6);
	st->finished_at = sqlite3_column_int64(s, 7);
	st->error = col_str(s, 8);
	st->error_type = col_str(s, 9);
}

static int store_steps_get(struct store_sqlite *sq, struct run_info *r)
{
	sqlite3_stmt *s = store_stmt(sq, ST_STEP_LIST);
	size_t cap = 0;
	int rc;

	sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (r->nsteps == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			r->steps = xreallocarray(r->steps, cap, sizeof(*r->steps));
		}
		store_step_from_row(s, &r->steps[r->nsteps++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_warn(sq, "read steps");
		return -1;
	}
	return 0;
}

static int store_sqlite_run_get(struct store *h, const char *id, struct run_info *out)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	s = store_stmt(sq, ST_RUN_GET);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 1;
	}
	if (rc != SQLITE_ROW) {
		store_warn(sq, "read run");
		sqlite3_reset(s);
		return -1;
	}
	store_run_from_row(s, out);
	sqlite3_reset(s);
	if (store_steps_get(sq, out) == -1) {
		run_info_free(out);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

static int store_sqlite_run_resolve(struct store *h, const char *prefix, char *id, size_t idlen)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	char *hi;
	char *found = NULL;
	int rc, n = 0;

	if (prefix == NULL || *prefix == '\0')
		return 1;
	/* [prefix, prefix "\xff"): ids starting with prefix, the exact id first. */
	xasprintf(&hi, "%s\xff", prefix);
	s = store_stmt(sq, ST_RUN_PREFIX);
	sqlite3_bind_text(s, 1, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, hi, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);

		/* An exact match wins even when it is also a prefix of another id. */
		if (n++ == 0)
			found = xstrdup(v);
		if (strcmp(found, prefix) == 0)
			break;
	}
	sqlite3_reset(s);
	free(hi);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_warn(sq, "resolve run");
		free(found);
		return -1;
	}
	rc = n == 0 ? 1 : (n > 1 && strcmp(found, prefix) != 0) ? 2 : 0;
	if (rc == 0 && strlen(found) >= idlen)
		rc = -1;
	if (rc == 0)
		memcpy(id, found, strlen(found) + 1);
	free(found);
	return rc;
}

static int store_sqlite_run_list(struct store *h, const char *state, int limit, struct run_info **out, size_t *n)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	s = store_stmt(sq, state != NULL ? ST_RUN_LIST_STATE : ST_RUN_LIST);
	sqlite3_bind_int64(s, 1, limit > 0 ? limit : -1);
	if (state != NULL)
		sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		store_run_from_row(s, &(*out)[(*n)++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_warn(sq, "list runs");
		while (*n > 0)
			run_info_free(&(*out)[--(*n)]);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int store_sqlite_run_ids_in_state(struct store *h, enum run_state state, char ***ids, size_t *n)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	s = store_stmt(sq, ST_RUN_IDS_STATE);
	sqlite3_bind_text(s, 1, run_state_name(state), -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*ids = xreallocarray(*ids, cap, sizeof(**ids));
		}
		(*ids)[(*n)++] = col_str(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_warn(sq, "list run ids");
		while (*n > 0)
			free((*ids)[--(*n)]);
		free(*ids);
		*ids = NULL;
		return -1;
	}
	return 0;
}

/* Events ---------------------------------------------------------------- */

static size_t store_arena_str(struct store_sqlite *sq, const char *s)
{
	size_t off = sq->arena.len;

	buf_add(&sq->arena, s, strlen(s) + 1);
	return off;
}

static int store_sqlite_event_add(struct store *h, const char *run_id, const struct event_rec *e)
{
	struct store_sqlite *sq = store_sq(h);
	struct store_rec_pending *p;

	if (run_id == NULL || e->name == NULL)
		return -1;
	if (e->data_len > STORE_BLOB_MAX) {
		log_warnx("store: run=%s seq=%lld: record data of %zu bytes refused", log_esc(run_id, 64),
		          (long long)e->seq, e->data_len);
		return -1;
	}
	if (sq->npend >= STORE_PENDING_FLUSH && !sq->failing)
		store_sqlite_flush(&sq->base);
	if (sq->npend >= STORE_PENDING_MAX || sq->arena.len >= STORE_PENDING_BYTES) {
		if (sq->dropped++ == 0)
			log_warnx("store: %zu records pending and the store is failing: dropping new records",
			          sq->npend);
		return -1;
	}
	if (sq->npend == sq->pendcap) {
		sq->pendcap = sq->pendcap == 0 ? 256 : sq->pendcap * 2;
		sq->pend = xreallocarray(sq->pend, sq->pendcap, sizeof(*sq->pend));
	}
	p = &sq->pend[sq->npend++];
	p->seq = e->seq;
	p->wseq = e->wseq;
	p->ts = e->ts;
	p->kind = e->kind;
	p->daemon_origin = e->daemon_origin;
	p->has_value = e->has_value;
	p->value = e->value;
	p->run_off = store_arena_str(sq, run_id);
	p->name_off = store_arena_str(sq, e->name);
	p->step_off = e->step_id != NULL ? store_arena_str(sq, e->step_id) : SIZE_MAX;
	p->data_off = sq->arena.len;
	if (e->data != NULL && e->data_len > 0) {
		buf_add(&sq->arena, e->data, e->data_len);
		p->data_len = e->data_len;
	} else {
		buf_addc(&sq->arena, (char)0x80); /* empty map: data is never NULL */
		p->data_len = 1;
	}
	return 0;
}

static int store_sqlite_flush(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);

	if (sq->npend == 0 && sq->narts == 0)
		return 0;
	if (store_begin(sq) == -1)
		return -1;
	if (store_commit(sq) == -1)
		return -1;
	if (sq->dropped > 0) {
		log_warnx("store: %llu records were dropped while the store failed", (unsigned long long)sq->dropped);
		sq->dropped = 0;
	}
	return 0;
}

static size_t store_sqlite_pending(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);

	return sq->npend + sq->narts;
}

static int store_kind_parse(const char *s, enum rec_kind *k)
{
	if (s != NULL && strcmp(s, "metric") == 0)
		*k = REC_METRIC;
	else if (s != NULL && strcmp(s, "log") == 0)
		*k = REC_LOG;
	else
		*k = REC_EVENT;
	return 0;
}

/* One page of records copied out (offsets into b), so that the statement is
 * reset before any callback runs: callbacks may call back into the store. */
struct store_page_rec {
	struct event_rec rec;
	size_t name_off, step_off, data_off;
};

static int store_event_page(struct store_sqlite *sq, const char *run_id, int64_t since, int64_t max, struct buf *b,
                            struct store_page_rec *recs, size_t *n)
{
	sqlite3_stmt *s = store_stmt(sq, ST_EVENT_READ);
	int rc;

	*n = 0;
	buf_reset(b);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, since);
	sqlite3_bind_int64(s, 3, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_page_rec *pr = &recs[(*n)++];
		const char *step = (const char *)sqlite3_column_text(s, 5);

		memset(pr, 0, sizeof(*pr));
		pr->rec.seq = sqlite3_column_int64(s, 0);
		pr->rec.ts = sqlite3_column_int64(s, 1);
		pr->rec.wseq = sqlite3_column_int64(s, 7); /* NULL reads as 0 */
		store_kind_parse((const char *)sqlite3_column_text(s, 2), &pr->rec.kind);
		pr->rec.daemon_origin = strcmp((const char *)sqlite3_column_text(s, 3), "daemon") == 0;
		pr->name_off = b->len;
		buf_adds(b, (const char *)sqlite3_column_text(s, 4));
		buf_addc(b, '\0');
		pr->step_off = step != NULL ? b->len : SIZE_MAX;
		if (step != NULL)
			buf_add(b, step, strlen(step) + 1);
		pr->data_off = b->len;
		pr->rec.data_len = (size_t)sqlite3_column_bytes(s, 6);
		buf_add(b, sqlite3_column_blob(s, 6), pr->rec.data_len);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_warn(sq, "read events");
		return -1;
	}
	return 0;
}

static int store_sqlite_event_read(struct store *h, const char *run_id, int64_t since, int64_t limit,
                                   int (*cb)(const struct event_rec *, void *), void *arg)
{
	struct store_sqlite *sq = store_sq(h);
	struct store_page_rec *recs;
	struct buf b;
	size_t i, n;
	int64_t left = limit > 0 ? limit : INT64_MAX;
	int ret = 0;

	if (sq->npend > 0 && store_sqlite_flush(&sq->base) == -1)
		log_warnx("store: run=%s: reading without the pending records", log_esc(run_id, 64));
	recs = xcalloc(STORE_READ_PAGE, sizeof(*recs));
	buf_init(&b);
	while (left > 0 && ret == 0) {
		int64_t want = left < STORE_READ_PAGE ? left : STORE_READ_PAGE;

		if (store_event_page(sq, run_id, since, want, &b, recs, &n) == -1) {
			ret = -1;
			break;
		}
		for (i = 0; i < n && ret == 0; i++) {
			struct event_rec *e = &recs[i].rec;

			e->name = (char *)b.data + recs[i].name_off;
			e->step_id = recs[i].step_off == SIZE_MAX ? NULL : (char *)b.data + recs[i].step_off;
			e->data = b.data + recs[i].data_off;
			since = e->seq;
			left--;
			if (cb(e, arg) != 0)
				ret = 1;
		}
		if ((int64_t)n < want)
			break;
	}
	buf_free(&b);
	free(recs);
	return ret == -1 ? -1 : 0;
}

static int store_sqlite_event_last_seq(struct store *h, const char *run_id, int64_t *out)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int64_t max = 0;
	size_t i;
	int rc;

	/* Records not committed yet hold their seqs already. */
	for (i = 0; i < sq->npend; i++) {
		const struct store_rec_pending *p = &sq->pend[i];

		if (p->seq > max && strcmp((const char *)sq->arena.data + p->run_off, run_id) == 0)
			max = p->seq;
	}
	s = store_stmt(sq, ST_EVENT_LAST);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) > max)
		max = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		store_warn(sq, "last record seq");
		return -1;
	}
	*out = max;
	return 0;
}

/* Artifacts ------------------------------------------------------------ */

/* The foreign key, checked now since the row is written later: once per
 * run (a run's artifacts come together), not per artifact. */
static int store_run_exists(struct store_sqlite *sq, const char *run_id)
{
	sqlite3_stmt *s;
	int rc;

	if (strcmp(sq->art_run_ok, run_id) == 0)
		return 1;
	s = store_stmt(sq, ST_RUN_EXISTS);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			log_warnx("store: run=%s: artifact for an unknown run", log_esc(run_id, 64));
		else
			store_warn(sq, "run lookup");
	} else if (strlen(run_id) < sizeof(sq->art_run_ok))
		memcpy(sq->art_run_ok, run_id, strlen(run_id) + 1);
	return rc == SQLITE_ROW;
}

/* Like a record: buffered, committed with the next flush or run update
 * (run_end's update makes a run's artifact rows durable with its end).
 * data (len bytes, at most STORE_ART_BLOB_MAX) is the artifact's content
 * kept in the row; NULL: it is a file in the run's directory. */
static int store_sqlite_artifact_add(struct store *h, const char *run_id, const struct artifact_info *a,
                                     const void *data, size_t len)
{
	struct store_sqlite *sq = store_sq(h);
	struct store_art_pending *c;

	if (a->path == NULL || run_id == NULL)
		return -1;
	if (data != NULL && len > STORE_ART_BLOB_MAX) {
		log_warnx("store: run=%s artifact=%s: %zu bytes is too big for the store", log_esc(run_id, 64),
		          log_esc(a->path, 128), len);
		return -1;
	}
	if (!store_run_exists(sq, run_id))
		return -1;
	if (sq->narts >= STORE_PENDING_MAX || sq->arena.len >= STORE_PENDING_BYTES) {
		log_warnx("store: run=%s artifact=%s: too many artifact rows pending", log_esc(run_id, 64),
		          log_esc(a->path, 128));
		return -1;
	}
	if (sq->narts == sq->artcap) {
		sq->artcap = sq->artcap == 0 ? 64 : sq->artcap * 2;
		sq->arts = xreallocarray(sq->arts, sq->artcap, sizeof(*sq->arts));
	}
	c = &sq->arts[sq->narts++];
	c->run_off = store_arena_str(sq, run_id);
	c->path_off = store_arena_str(sq, a->path);
	c->step_off = a->step_id != NULL ? store_arena_str(sq, a->step_id) : SIZE_MAX;
	c->data_off = SIZE_MAX;
	c->data_len = 0;
	if (data != NULL) {
		c->data_off = sq->arena.len;
		c->data_len = len;
		buf_add(&sq->arena, len > 0 ? data : "", len);
	}
	c->size = a->size;
	memcpy(c->sha256, a->sha256, sizeof(c->sha256));
	if (sq->narts >= STORE_PENDING_FLUSH)
		return store_sqlite_flush(&sq->base);
	return 0;
}

/* One artifact's row: 0 with *a filled (free it) and, when its bytes are in
 * the store, *in_db = 1 and data holding them; 1 no such artifact; -1 the
 * store failed. */
static int store_sqlite_artifact_get(struct store *h, const char *run_id, const char *path, struct artifact_info *a,
                                     int *in_db, struct buf *data)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	const char *sha;
	int rc;

	memset(a, 0, sizeof(*a));
	*in_db = 0;
	if (sq->narts > 0 && store_sqlite_flush(&sq->base) == -1)
		log_warnx("store: run=%s: reading without the pending artifact rows", log_esc(run_id, 64));
	s = store_stmt(sq, ST_ART_GET);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		a->path = xstrdup(path);
		a->size = sqlite3_column_int64(s, 0);
		sha = (const char *)sqlite3_column_text(s, 1);
		snprintf(a->sha256, sizeof(a->sha256), "%s", sha != NULL ? sha : "");
		*in_db = sqlite3_column_int(s, 2);
		if (*in_db) {
			const void *p = sqlite3_column_blob(s, 3);
			buf_add(data, p != NULL ? p : "", (size_t)sqlite3_column_bytes(s, 3));
		}
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return 1;
	store_warn(sq, "get artifact");
	return -1;
}

static int store_sqlite_artifact_list(struct store *h, const char *run_id, struct artifact_info **out, size_t *n)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sq->narts > 0 && store_sqlite_flush(&sq->base) == -1)
		log_warnx("store: run=%s: listing without the pending artifact rows", log_esc(run_id, 64));
	s = store_stmt(sq, ST_ART_LIST);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct artifact_info *a;
		const char *sha = (const char *)sqlite3_column_text(s, 3);

		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		a = &(*out)[(*n)++];
		memset(a, 0, sizeof(*a));
		a->path = col_str(s, 0);
		a->step_id = col_str(s, 1);
		a->size = sqlite3_column_int64(s, 2);
		snprintf(a->sha256, sizeof(a->sha256), "%s", sha != NULL ? sha : "");
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_warn(sq, "list artifacts");
		while (*n > 0)
			artifact_info_free(&(*out)[--(*n)]);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Retention ------------------------------------------------------------ */

static int store_sqlite_run_disk_bytes(struct store *h, const char *run_id, int64_t bytes)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;

	if (store_begin(sq) == -1)
		return -1;
	s = store_stmt(sq, ST_RUN_BYTES);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, bytes);
	return store_write_end(sq, store_exec_stmt(s), "run=%s: disk bytes", log_esc(run_id, 64));
}

static int store_sqlite_final_count(struct store *h, int64_t *n)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int rc;

	s = store_stmt(sq, ST_FINAL_COUNT);
	rc = sqlite3_step(s);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		store_warn(sq, "count final runs");
		return -1;
	}
	return 0;
}

static int store_sqlite_prune_next(struct store *h, int64_t after_ts, const char *after_id, size_t max,
                                   struct prune_cand **out, size_t *n)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	struct prune_cand *c;
	int rc = SQLITE_DONE;

	*n = 0;
	*out = NULL;
	*out = xcalloc(max + 1, sizeof(**out));
	s = store_stmt(sq, ST_PRUNE_NEXT);
	sqlite3_bind_int64(s, 1, after_ts);
	sqlite3_bind_text(s, 2, after_id != NULL ? after_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)max);
	while (*n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		c = &(*out)[(*n)++];
		c->id = col_str(s, 0);
		c->submitted_at = sqlite3_column_int64(s, 1);
		c->finished_at = sqlite3_column_int64(s, 2);
		c->disk_bytes = sqlite3_column_int64(s, 3);
		c->records = sqlite3_column_int64(s, 4);
	}
	sqlite3_reset(s);
	if (*n < max && rc != SQLITE_DONE) {
		store_warn(sq, "prune candidates");
		store_prune_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

void store_prune_free(struct prune_cand *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(c[i].id);
	free(c);
}

/* One transaction for the batch; c[i].deleted says which went (a run that
 * is no longer final stays). The freed pages go back at once, bounded by
 * what the batch held. */
static int store_sqlite_prune_delete(struct store *h, struct prune_cand *c, size_t n, size_t *deleted)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	size_t i;
	int rc;

	*deleted = 0;
	if (store_begin(sq) == -1)
		return -1;
	sq->art_run_ok[0] = '\0';
	for (i = 0, rc = SQLITE_DONE; i < n && rc == SQLITE_DONE; i++) {
		s = store_stmt(sq, ST_PRUNE_DELETE);
		sqlite3_bind_text(s, 1, c[i].id, -1, SQLITE_STATIC);
		rc = store_exec_stmt(s);
		c[i].deleted = rc == SQLITE_DONE && sqlite3_changes(sq->db) == 1;
		*deleted += (size_t)c[i].deleted;
	}
	if (store_write_end(sq, rc, "run=%s: prune", i > 0 ? log_esc(c[i - 1].id, 64) : "") == -1) {
		for (i = 0; i < n; i++)
			c[i].deleted = 0;
		*deleted = 0;
		return -1;
	}
	s = store_stmt(sq, ST_INCR_VACUUM);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		store_warn(sq, "incremental vacuum");
	return 0;
}

/* Live pages of osiris.db (free pages not counted: they are reused). */
static int store_db_bytes(struct store_sqlite *sq, int64_t *out)
{
	sqlite3_stmt *s = store_stmt(sq, ST_DB_PAGES);
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*out = (sqlite3_column_int64(s, 0) - sqlite3_column_int64(s, 1)) * sqlite3_column_int64(s, 2);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		store_warn(sq, "page count");
		return -1;
	}
	return 0;
}

static int store_sqlite_usage(struct store *h, struct store_usage *u)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	struct stat st;
	char *wal;
	int rc;

	memset(u, 0, sizeof(*u));
	if (store_db_bytes(sq, &u->db_bytes) == -1)
		return -1;
	s = store_stmt(sq, ST_FILES_BYTES);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		u->files_bytes = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		store_warn(sq, "run disk bytes");
		return -1;
	}
	xasprintf(&wal, "%s-wal", sq->path);
	if (stat(wal, &st) == 0)
		u->wal_bytes = (int64_t)st.st_blocks * 512;
	free(wal);
	return 0;
}

static int store_sqlite_db_live_bytes(struct store *h, int64_t *out)
{
	struct store_sqlite *sq = store_sq(h);

	return store_db_bytes(sq, out);
}

/* After a prune job: the WAL's pages into the database, the WAL file
 * truncated, so that what pruning freed is free on the filesystem. */
static void store_sqlite_checkpoint(struct store *h)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int rc;

	if (sq->batch > 0)
		return;
	if ((sq->npend > 0 || sq->narts > 0) && store_sqlite_flush(&sq->base) == -1)
		return;
	s = store_stmt(sq, ST_CHECKPOINT);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		store_warn(sq, "checkpoint");
}

/* Remote backends' sandboxes ------------------------------------------------ */

static int store_sqlite_wseq_last(struct store *h, const char *run_id, int64_t *out)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int rc;

	s = store_stmt(sq, ST_WSEQ_LAST);
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0; /* NULL (none) reads as 0 */
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		store_warn(sq, "last worker seq");
		return -1;
	}
	return 0;
}

static int store_sqlite_sandbox_put(struct store *h, const struct sandbox_rec *sb)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;

	if (store_begin(sq) == -1)
		return -1;
	s = store_stmt(sq, ST_SBX_PUT);
	bind_text(s, 1, sb->id);
	bind_text(s, 2, sb->backend);
	bind_text(s, 3, sb->domain);
	bind_text(s, 4, sb->envd_version);
	sqlite3_bind_int64(s, 5, sb->pid);
	bind_text(s, 6, sb->tag);
	sqlite3_bind_int64(s, 7, sb->created_at);
	return store_write_end(sq, store_exec_stmt(s), "sandbox=%s", log_esc(sb->id, 64));
}

static int store_sqlite_sandbox_delete(struct store *h, const char *id)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;

	if (store_begin(sq) == -1)
		return -1;
	s = store_stmt(sq, ST_SBX_DELETE);
	bind_text(s, 1, id);
	return store_write_end(sq, store_exec_stmt(s), "sandbox=%s: delete", log_esc(id, 64));
}

static void store_sandbox_row(sqlite3_stmt *s, struct sandbox_rec *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->id = col_str(s, 0);
	sb->backend = col_str(s, 1);
	sb->domain = col_str(s, 2);
	sb->envd_version = col_str(s, 3);
	sb->pid = sqlite3_column_int64(s, 4);
	sb->tag = col_str(s, 5);
	sb->created_at = sqlite3_column_int64(s, 6);
}

static int store_sqlite_sandbox_get(struct store *h, const char *id, struct sandbox_rec *out)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	int rc;

	s = store_stmt(sq, ST_SBX_GET);
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		store_sandbox_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return 1;
	store_warn(sq, "sandbox");
	return -1;
}

static int store_sqlite_sandbox_list(struct store *h, const char *backend, struct sandbox_rec **out, size_t *n)
{
	struct store_sqlite *sq = store_sq(h);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	s = store_stmt(sq, ST_SBX_LIST);
	bind_text(s, 1, backend);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap != 0 ? cap * 2 : 8;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		store_sandbox_row(s, &(*out)[(*n)++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_warn(sq, "sandboxes");
		store_sandbox_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

void store_sandbox_rec_free(struct sandbox_rec *sb)
{
	free(sb->id);
	free(sb->backend);
	free(sb->domain);
	free(sb->envd_version);
	free(sb->tag);
	memset(sb, 0, sizeof(*sb));
}

void store_sandbox_free(struct sandbox_rec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		store_sandbox_rec_free(&v[i]);
	free(v);
}

/* The interface: the handle's ops ------------------------------------------ */

static const struct store_ops store_sqlite_ops = {
    .close = store_sqlite_close,
    .run_insert = store_sqlite_run_insert,
    .run_update = store_sqlite_run_update,
    .step_update = store_sqlite_step_update,
    .run_get = store_sqlite_run_get,
    .run_resolve = store_sqlite_run_resolve,
    .run_list = store_sqlite_run_list,
    .run_ids_in_state = store_sqlite_run_ids_in_state,
    .event_add = store_sqlite_event_add,
    .flush = store_sqlite_flush,
    .pending = store_sqlite_pending,
    .batch_begin = store_sqlite_batch_begin,
    .batch_end = store_sqlite_batch_end,
    .event_read = store_sqlite_event_read,
    .event_last_seq = store_sqlite_event_last_seq,
    .artifact_add = store_sqlite_artifact_add,
    .artifact_get = store_sqlite_artifact_get,
    .artifact_list = store_sqlite_artifact_list,
    .full = store_sqlite_full,
    .run_disk_bytes = store_sqlite_run_disk_bytes,
    .final_count = store_sqlite_final_count,
    .prune_next = store_sqlite_prune_next,
    .prune_delete = store_sqlite_prune_delete,
    .usage = store_sqlite_usage,
    .db_live_bytes = store_sqlite_db_live_bytes,
    .checkpoint = store_sqlite_checkpoint,
    .wseq_last = store_sqlite_wseq_last,
    .sandbox_put = store_sqlite_sandbox_put,
    .sandbox_delete = store_sqlite_sandbox_delete,
    .sandbox_get = store_sqlite_sandbox_get,
    .sandbox_list = store_sqlite_sandbox_list,
};

/* A NULL handle is a store that is not open: every call fails. */

void store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

int store_run_insert(struct store *st, const struct run_info *r)
{
	return st != NULL ? st->ops->run_insert(st, r) : -1;
}

int store_run_update(struct store *st, const struct run_info *r)
{
	return st != NULL ? st->ops->run_update(st, r) : -1;
}

int store_step_update(struct store *st, const char *run_id, const struct step_info *s)
{
	return st != NULL ? st->ops->step_update(st, run_id, s) : -1;
}

int store_run_get(struct store *st, const char *id, struct run_info *out)
{
	memset(out, 0, sizeof(*out));
	return st != NULL ? st->ops->run_get(st, id, out) : -1;
}

int store_run_resolve(struct store *st, const char *prefix, char *id, size_t idlen)
{
	return st != NULL ? st->ops->run_resolve(st, prefix, id, idlen) : -1;
}

int store_run_list(struct store *st, const char *state, int limit, struct run_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return st != NULL ? st->ops->run_list(st, state, limit, out, n) : -1;
}

int store_run_ids_in_state(struct store *st, enum run_state state, char ***ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	return st != NULL ? st->ops->run_ids_in_state(st, state, ids, n) : -1;
}

int store_event_add(struct store *st, const char *run_id, const struct event_rec *e)
{
	return st != NULL ? st->ops->event_add(st, run_id, e) : -1;
}

int store_flush(struct store *st)
{
	return st != NULL ? st->ops->flush(st) : -1;
}

size_t store_pending(struct store *st)
{
	return st != NULL ? st->ops->pending(st) : 0;
}

void store_batch_begin(struct store *st)
{
	if (st != NULL)
		st->ops->batch_begin(st);
}

int store_batch_end(struct store *st)
{
	return st != NULL ? st->ops->batch_end(st) : 0;
}

int store_event_read(struct store *st, const char *run_id, int64_t since, int64_t limit,
                     int (*cb)(const struct event_rec *, void *), void *arg)
{
	return st != NULL ? st->ops->event_read(st, run_id, since, limit, cb, arg) : -1;
}

int store_event_last_seq(struct store *st, const char *run_id, int64_t *out)
{
	return st != NULL ? st->ops->event_last_seq(st, run_id, out) : -1;
}

int store_artifact_add(struct store *st, const char *run_id, const struct artifact_info *a)
{
	return store_artifact_add_data(st, run_id, a, NULL, 0);
}

int store_artifact_add_data(struct store *st, const char *run_id, const struct artifact_info *a, const void *data,
                            size_t len)
{
	return st != NULL ? st->ops->artifact_add(st, run_id, a, data, len) : -1;
}

int store_artifact_get(struct store *st, const char *run_id, const char *path, struct artifact_info *a, int *in_db,
                       struct buf *data)
{
	memset(a, 0, sizeof(*a));
	*in_db = 0;
	return st != NULL ? st->ops->artifact_get(st, run_id, path, a, in_db, data) : -1;
}

int store_artifact_list(struct store *st, const char *run_id, struct artifact_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return st != NULL ? st->ops->artifact_list(st, run_id, out, n) : -1;
}

int store_full(struct store *st)
{
	return st != NULL ? st->ops->full(st) : 0;
}

int store_run_disk_bytes(struct store *st, const char *run_id, int64_t bytes)
{
	return st != NULL ? st->ops->run_disk_bytes(st, run_id, bytes) : -1;
}

int store_final_count(struct store *st, int64_t *n)
{
	return st != NULL ? st->ops->final_count(st, n) : -1;
}

int store_prune_next(struct store *st, int64_t after_ts, const char *after_id, size_t max, struct prune_cand **out,
                     size_t *n)
{
	*out = NULL;
	*n = 0;
	return st != NULL ? st->ops->prune_next(st, after_ts, after_id, max, out, n) : -1;
}

int store_prune_delete(struct store *st, struct prune_cand *c, size_t n, size_t *deleted)
{
	*deleted = 0;
	return st != NULL ? st->ops->prune_delete(st, c, n, deleted) : -1;
}

int store_usage(struct store *st, struct store_usage *u)
{
	memset(u, 0, sizeof(*u));
	return st != NULL ? st->ops->usage(st, u) : -1;
}

int store_db_live_bytes(struct store *st, int64_t *out)
{
	return st != NULL ? st->ops->db_live_bytes(st, out) : -1;
}

void store_checkpoint(struct store *st)
{
	if (st != NULL)
		st->ops->checkpoint(st);
}

int store_wseq_last(struct store *st, const char *run_id, int64_t *out)
{
	return st != NULL ? st->ops->wseq_last(st, run_id, out) : -1;
}

int store_sandbox_put(struct store *st, const struct sandbox_rec *sb)
{
	return st != NULL ? st->ops->sandbox_put(st, sb) : -1;
}

int store_sandbox_delete(struct store *st, const char *id)
{
	return st != NULL ? st->ops->sandbox_delete(st, id) : -1;
}

int store_sandbox_get(struct store *st, const char *id, struct sandbox_rec *out)
{
	return st != NULL ? st->ops->sandbox_get(st, id, out) : -1;
}

int store_sandbox_list(struct store *st, const char *backend, struct sandbox_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return st != NULL ? st->ops->sandbox_list(st, backend, out, n) : -1;
}
