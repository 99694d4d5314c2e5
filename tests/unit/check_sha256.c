/*
 * check_sha256.c: osirisctl's own SHA-256 (client/sha256.c, used so that the
 * client does not load libcrypto) against FIPS 180-2 vectors and OpenSSL.
 * This binary links client/sha256.o, not common/sha256.c.
 */
#include <check.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static void openssl_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	int i;

	SHA256(data, len, md);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const struct {
	const char *msg;
	const char *hex;
} vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

START_TEST(test_vectors)
{
	const char *m = vectors[_i].msg;
	char out[65];

	sha256_hex(m, strlen(m), out);
	ck_assert_str_eq(out, vectors[_i].hex);
}
END_TEST

START_TEST(test_million_a)
{
	struct sha256_ctx *c = sha256_begin();
	char chunk[1000], out[65];
	int i;

	memset(chunk, 'a', sizeof(chunk));
	for (i = 0; i < 1000; i++)
		sha256_update(c, chunk, sizeof(chunk));
	sha256_end(c, out);
	ck_assert_str_eq(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

/* Every length across the padding boundaries, fed whole and in uneven
 * pieces, equals OpenSSL's digest. */
START_TEST(test_lengths_and_splits)
{
	static unsigned char data[4200];
	char want[65], got[65];
	size_t len, off, step;
	unsigned seed = 7;

	for (len = 0; len < sizeof(data); len++)
		data[len] = (unsigned char)(rand_r(&seed) & 0xff);
	for (len = 0; len < sizeof(data); len += (len < 200 ? 1 : 61)) {
		struct sha256_ctx *c = sha256_begin();

		openssl_hex(data, len, want);
		sha256_hex(data, len, got);
		ck_assert_str_eq(got, want);
		for (off = 0; off < len; off += step) {
			step = 1 + (size_t)rand_r(&seed) % 97;
			if (step > len - off)
				step = len - off;
			sha256_update(c, data + off, step);
		}
		sha256_end(c, got);
		ck_assert_str_eq(got, want);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sha256_client");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_loop_test(tc, test_vectors, 0, (int)(sizeof(vectors) / sizeof(vectors[0])));
	tcase_add_test(tc, test_million_a);
	tcase_add_test(tc, test_lengths_and_splits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
