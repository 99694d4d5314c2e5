/*
 * mask.c: secret masking, the one mechanism every sink (events, logs,
 * errors, artifacts listings) uses before text leaves a worker or daemon.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

/*
 * Values shorter than MASK_MIN_LEN are ignored: masking "a" or "1" would
 * replace every occurrence of that letter in all output and destroy the
 * text while protecting nothing (such a secret is guessable anyway).
 */
#define MASK_MIN_LEN 3

struct mask_secret {
	char *value;
	size_t len;
};

struct mask {
	struct mask_secret *v; /* longest first, so overlapping secrets mask fully */
	size_t n;
	/* first[c]: 1 when some secret starts with byte c; lets the scan skip
	 * most positions with one table lookup (called on every log line) */
	uint8_t first[256];
	size_t minlen;
};

struct mask *mask_new(void)
{
	return xcalloc(1, sizeof(struct mask));
}

void mask_free(struct mask *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->v[i].value);
	free(m->v);
	free(m);
}

void mask_add(struct mask *m, const char *secret)
{
	size_t len, i;

	if (secret == NULL || (len = strlen(secret)) < MASK_MIN_LEN)
		return;
	for (i = 0; i < m->n; i++)
		if (m->v[i].len == len && memcmp(m->v[i].value, secret, len) == 0)
			return;
	m->v = xreallocarray(m->v, m->n + 1, sizeof(*m->v));
	/* insertion keeps the array sorted by decreasing length */
	for (i = m->n; i > 0 && m->v[i - 1].len < len; i--)
		m->v[i] = m->v[i - 1];
	m->v[i].value = xstrdup(secret);
	m->v[i].len = len;
	m->n++;
	m->first[(unsigned char)secret[0]] = 1;
	if (m->minlen == 0 || len < m->minlen)
		m->minlen = len;
}

size_t mask_count(const struct mask *m)
{
	return m == NULL ? 0 : m->n;
}

/* Length of the longest secret matching at s[0..avail), 0 if none. */
static size_t mask_match(const struct mask *m, const char *s, size_t avail)
{
	size_t i;

	if (!m->first[(unsigned char)s[0]])
		return 0;
	for (i = 0; i < m->n; i++) {
		if (m->v[i].len <= avail && memcmp(m->v[i].value, s, m->v[i].len) == 0)
			return m->v[i].len;
	}
	return 0;
}

char *mask_apply(const struct mask *m, const char *s)
{
	struct buf b;
	size_t len, i, k, copied = 0;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	if (m == NULL || m->n == 0 || len < m->minlen)
		return xstrdup(s);
	buf_init(&b);
	for (i = 0; i + m->minlen <= len;) {
		if ((k = mask_match(m, s + i, len - i)) == 0) {
			i++;
			continue;
		}
		buf_add(&b, s + copied, i - copied);
		buf_add(&b, "***", 3);
		i += k;
		copied = i;
	}
	if (copied == 0)
		return xstrdup(s);
	buf_add(&b, s + copied, len - copied);
	return buf_cstr(&b);
}

int mask_hit(const struct mask *m, const char *s, size_t len)
{
	size_t i;

	if (m == NULL || m->n == 0 || s == NULL || len < m->minlen)
		return 0;
	for (i = 0; i + m->minlen <= len; i++)
		if (mask_match(m, s + i, len - i) != 0)
			return 1;
	return 0;
}
