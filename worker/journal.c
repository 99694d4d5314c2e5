/*
 * journal.c: the bounded ring of records the worker has sent (the last
 * 65536 records or 16 MiB, whichever is reached first), so a daemon that
 * lost its connection can ask for `replay {since}`.
 */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* Records are packed into chunks (one allocation per JOURNAL_CHUNK bytes
 * of records, not one per record); a chunk goes when its last record does. */
#define JOURNAL_CHUNK (256u * 1024)

struct journal_chunk {
	size_t len, cap;
	size_t live; /* records in it still in the ring */
	uint8_t data[];
};

void journal_init(struct journal *j)
{
	memset(j, 0, sizeof(*j));
	j->r = xcalloc(WORKER_JOURNAL_RECORDS, sizeof(*j->r));
}

static void journal_chunk_release(struct journal *j, struct journal_chunk *c)
{
	if (--c->live == 0 && c != j->cur)
		free(c);
}

static void journal_drop_oldest(struct journal *j)
{
	struct journal_rec *r = &j->r[j->head];

	j->bytes -= r->len;
	journal_chunk_release(j, r->chunk);
	memset(r, 0, sizeof(*r));
	j->head = (j->head + 1) % WORKER_JOURNAL_RECORDS;
	j->n--;
}

static void journal_drop_cur(struct journal *j)
{
	if (j->cur != NULL && j->cur->live == 0)
		free(j->cur);
	j->cur = NULL;
}

/* Drop every record, keep the ring (a worker between two runs). */
void journal_clear(struct journal *j)
{
	while (j->n > 0)
		journal_drop_oldest(j);
	journal_drop_cur(j);
	j->head = 0;
	j->bytes = 0;
}

void journal_free(struct journal *j)
{
	while (j->n > 0)
		journal_drop_oldest(j);
	journal_drop_cur(j);
	free(j->r);
	memset(j, 0, sizeof(*j));
}

/* Room for len bytes: the current chunk, or a new one (a record bigger
 * than a chunk gets one of its own size). */
static struct journal_chunk *journal_room(struct journal *j, size_t len)
{
	struct journal_chunk *c = j->cur;
	size_t cap;

	if (c != NULL && c->cap - c->len >= len)
		return c;
	journal_drop_cur(j); /* freed only when no record is in it */
	cap = len > JOURNAL_CHUNK ? len : JOURNAL_CHUNK;
	c = xmalloc(sizeof(*c) + cap);
	c->len = c->live = 0;
	c->cap = cap;
	j->cur = c;
	return c;
}

void journal_add(struct journal *j, int64_t seq, const void *data, size_t len)
{
	struct journal_chunk *c;
	struct journal_rec *r;

	if (len > WORKER_JOURNAL_BYTES)
		return; /* cannot be kept; replay will show the gap through first_seq */
	while (j->n > 0 && (j->n == WORKER_JOURNAL_RECORDS || j->bytes + len > WORKER_JOURNAL_BYTES))
		journal_drop_oldest(j);
	c = journal_room(j, len);
	r = &j->r[(j->head + j->n) % WORKER_JOURNAL_RECORDS];
	r->seq = seq;
	r->data = c->data + c->len;
	memcpy(r->data, data, len);
	r->len = len;
	r->chunk = c;
	c->len += len;
	c->live++;
	j->bytes += len;
	j->n++;
}

int64_t journal_first_seq(const struct journal *j)
{
	return j->n ? j->r[j->head].seq : 0;
}

int journal_each(const struct journal *j, int64_t since, int (*fn)(const struct journal_rec *, void *), void *arg)
{
	size_t i;
	int rc;

	for (i = 0; i < j->n; i++) {
		const struct journal_rec *r = &j->r[(j->head + i) % WORKER_JOURNAL_RECORDS];
		if (r->seq <= since)
			continue;
		if ((rc = fn(r, arg)) != 0)
			return rc;
	}
	return 0;
}
