/*
 * runid.c: run ids. ULID-like: 10 Crockford base32 chars of the 48-bit
 * millisecond time, then 16 of 80 random bits (getrandom); within one
 * millisecond the random part is incremented so ids sort by submission.
 */
#include <string.h>
#include <sys/random.h>

#include "osirisd.h"

static const char run_id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void run_id_encode(uint64_t ms, const uint8_t rnd[10], char out[RUN_ID_LEN + 1])
{
	int i, bit;

	ms &= (UINT64_C(1) << 48) - 1;
	for (i = 9; i >= 0; i--) {
		out[i] = run_id_alphabet[ms & 31];
		ms >>= 5;
	}
	/* 80 bits -> 16 groups of 5, most significant first. */
	for (i = 0; i < 16; i++) {
		unsigned v = 0;
		for (bit = 0; bit < 5; bit++) {
			int b = i * 5 + bit;
			v = v << 1 | ((rnd[b / 8] >> (7 - b % 8)) & 1);
		}
		out[10 + i] = run_id_alphabet[v];
	}
	out[RUN_ID_LEN] = '\0';
}

int run_id_rnd_next(uint8_t rnd[10])
{
	int i;

	for (i = 9; i >= 0; i--) {
		if (++rnd[i] != 0)
			return 0;
	}
	return -1;
}

static void run_id_random(uint8_t rnd[10])
{
	size_t got = 0;
	ssize_t n;

	while (got < 10) {
		n = getrandom(rnd + got, 10 - got, 0);
		if (n < 0)
			fatal("getrandom");
		got += (size_t)n;
	}
}

void run_id_new(char out[RUN_ID_LEN + 1])
{
	static uint64_t last_ms;
	static uint8_t last_rnd[10];
	uint64_t ms = (uint64_t)time_now_ms();

	if (ms <= last_ms) {
		/* Same (or a stepped-back) millisecond: keep ids increasing. */
		ms = last_ms;
		if (run_id_rnd_next(last_rnd) == -1) {
			ms = ++last_ms;
			run_id_random(last_rnd);
		}
	} else {
		last_ms = ms;
		run_id_random(last_rnd);
		last_rnd[0] &= 0x7f; /* headroom so increments rarely overflow */
	}
	run_id_encode(ms, last_rnd, out);
}
