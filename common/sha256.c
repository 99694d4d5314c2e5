/*
 * sha256.c: the sha256 of artifacts and bundles for the daemon and the
 * worker, through OpenSSL's EVP (its SHA extensions / AVX code). osirisctl
 * links client/sha256.c instead, which spares it loading libcrypto.
 */
#include <stdlib.h>

#include <openssl/evp.h>

#include "common.h"

struct sha256_ctx {
	EVP_MD_CTX *md;
};

struct sha256_ctx *sha256_begin(void)
{
	struct sha256_ctx *c = xmalloc(sizeof(*c));

	if ((c->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)
		fatalx("sha256_begin: OpenSSL EVP init failed");
	return c;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(c->md, data, len) != 1)
		fatalx("sha256_update: OpenSSL EVP update failed");
}

void sha256_end(struct sha256_ctx *c, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (EVP_DigestFinal_ex(c->md, md, &n) != 1 || n != 32)
		fatalx("sha256_end: OpenSSL EVP final failed");
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
	EVP_MD_CTX_free(c->md);
	free(c);
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	struct sha256_ctx *c = sha256_begin();

	sha256_update(c, data, len);
	sha256_end(c, out);
}
