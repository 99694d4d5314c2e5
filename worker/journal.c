/*
 * journal.c: the bounded ring of records the worker has sent (the last
 * 65536 records or 16 MiB, whichever is reached first), so a daemon that
 * lost its connection can ask for `replay {since}`.
 */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

void
journal_init(struct journal *j)
{
	memset(j, 0, sizeof(*j));
	j->r = xcalloc(WORKER_JOURNAL_RECORDS, sizeof(*j->r));
}

static void
journal_drop_oldest(struct journal *j)
{
	struct journal_rec *r = &j->r[j->head];

	j->bytes -= r->len;
	free(r->data);
	memset(r, 0, sizeof(*r));
	j->head = (j->head + 1) % WORKER_JOURNAL_RECORDS;
	j->n--;
}

/* Drop every record, keep the ring (a worker between two runs). */
void
journal_clear(struct journal *j)
{
	while (j->n > 0)
		journal_drop_oldest(j);
	j->head = 0;
	j->bytes = 0;
}

void
journal_free(struct journal *j)
{
	while (j->n > 0)
		journal_drop_oldest(j);
	free(j->r);
	memset(j, 0, sizeof(*j));
}

void
journal_add(struct journal *j, int64_t seq, const void *data, size_t len)
{
	struct journal_rec *r;

	if (len > WORKER_JOURNAL_BYTES)
		return; /* cannot be kept; replay will show the gap through first_seq */
	while (j->n > 0 && (j->n == WORKER_JOURNAL_RECORDS || j->bytes + len > WORKER_JOURNAL_BYTES))
		journal_drop_oldest(j);
	r = &j->r[(j->head + j->n) % WORKER_JOURNAL_RECORDS];
	r->seq = seq;
	r->data = xmalloc(len ? len : 1);
	memcpy(r->data, data, len);
	r->len = len;
	j->bytes += len;
	j->n++;
}

int64_t
journal_first_seq(const struct journal *j)
{
	return j->n ? j->r[j->head].seq : 0;
}

int
journal_each(const struct journal *j, int64_t since, int (*fn)(const struct journal_rec *, void *), void *arg)
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
