/*
 * canon.c: canonical text renderings of int64, double and bool, and the
 * checks type inference uses: a value is typed only when rendering it back
 * gives exactly the text it came from, which is what keeps tables lossless.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"

size_t canon_fmt_int(int64_t v, char *buf)
{
	char tmp[24];
	size_t n = 0, len = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		buf[len++] = '-';
	while (n > 0)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

/* Shortest "%.Ng" (N = 15..17) that reads back to the same double. */
size_t canon_fmt_double(double v, char *buf)
{
	int prec, n = 0;

	if (isnan(v))
		return (size_t)snprintf(buf, 32, "NaN");
	if (isinf(v))
		return (size_t)snprintf(buf, 32, "%s", v < 0 ? "-inf" : "inf");
	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return (size_t)n;
}

int canon_int(const char *s, size_t len, int64_t *out)
{
	size_t i = 0, ndig;
	int neg = 0;
	uint64_t u = 0, lim;

	if (len == 0)
		return 0;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
	}
	ndig = len - i;
	if (ndig == 0 || ndig > 19)
		return 0;
	if (s[i] == '0' && (ndig > 1 || neg)) /* "007", "-0" */
		return 0;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned c = (unsigned char)s[i] - '0';
		if (c > 9)
			return 0;
		if (u > (lim - c) / 10)
			return 0;
		u = u * 10 + c;
	}
	if (out != NULL)
		*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 1;
}

/*
 * Plain decimals with at most 15 significant digits read back exactly
 * through "%.15g", so their canonical form is decided by syntax alone:
 * no leading zeros, no trailing fractional zeros, integer part of at most
 * 15 digits, at most 3 zeros right after "0." (else %g goes exponential).
 * Returns 1 canonical, 0 not canonical, -1 undecided (use the slow path).
 */
static int canon_double_fast(const char *s, size_t len)
{
	size_t i = 0, intd = 0, fracd = 0, lead0 = 0, sig;
	int dot = 0;

	if (i < len && s[i] == '-')
		i++;
	if (i == len)
		return 0;
	if (s[i] == '0') {
		if (i + 1 == len)
			return s[0] == '-' ? 0 : 1; /* "0" yes, "-0" no */
		if (s[i + 1] != '.')
			return 0;
	}
	for (; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (dot)
				return 0;
			dot = 1;
			continue;
		}
		if (c < '0' || c > '9')
			return (c == 'e' || c == 'E') ? -1 : 0;
		if (dot)
			fracd++;
		else
			intd++;
	}
	if (intd == 0 || (dot && (fracd == 0 || s[len - 1] == '0')))
		return 0;
	if (intd == 1 && s[s[0] == '-' ? 1 : 0] == '0') {
		/* 0.xxx: count the zeros after the point */
		const char *f = memchr(s, '.', len) + 1;
		while (lead0 < fracd && f[lead0] == '0')
			lead0++;
		if (lead0 > 3)
			return -1;
		sig = fracd - lead0;
	} else {
		sig = intd + fracd;
	}
	if (sig > 15 || intd > 15)
		return -1;
	return 1;
}

int canon_double(const char *s, size_t len, double *out)
{
	char tmp[40], back[32];
	char *end;
	double v;
	int fast;

	if (len == 0 || len >= sizeof(tmp) - 1)
		return 0;
	if (s[0] != '-' && (s[0] < '0' || s[0] > '9'))
		return 0;
	fast = canon_double_fast(s, len);
	if (fast == 0)
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	v = strtod(tmp, &end);
	if (end != tmp + len || !isfinite(v) || (v == 0 && signbit(v)))
		return 0;
	if (fast < 0) {
		size_t n = canon_fmt_double(v, back);
		if (n != len || memcmp(back, s, len) != 0)
			return 0;
	}
	if (out != NULL)
		*out = v;
	return 1;
}

int canon_bool(const char *s, size_t len, int *out)
{
	if (len == 4 && memcmp(s, "true", 4) == 0) {
		if (out != NULL)
			*out = 1;
		return 1;
	}
	if (len == 5 && memcmp(s, "false", 5) == 0) {
		if (out != NULL)
			*out = 0;
		return 1;
	}
	return 0;
}
