/* SHA-256 through libcrypto's EVP interface (sha256.h). */
#include "common/sha256.h"

#include <errno.h>
#include <openssl/evp.h>

int sha256_init(struct sha256 *h)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	h->ctx = ctx;
	return ctx ? 0 : -ENOMEM;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	if (!h->ctx)
		return;
	if (EVP_DigestUpdate(h->ctx, data, len) != 1) {
		/* Nothing sensible can follow: make final fail. */
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

int sha256_final(struct sha256 *h, uint8_t digest[32])
{
	unsigned len = 0;
	int ok = h->ctx && EVP_DigestFinal_ex(h->ctx, digest, &len) == 1 && len == 32;
	sha256_discard(h);
	return ok ? 0 : -EIO;
}

static void to_hex(const uint8_t digest[32], char hex[SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[SHA256_HEX_LEN] = 0;
}

int sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1])
{
	uint8_t digest[32];
	hex[0] = 0;
	int rc = sha256_final(h, digest);
	if (rc == 0)
		to_hex(digest, hex);
	return rc;
}

void sha256_discard(struct sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int sha256_hex_of(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	uint8_t digest[32];
	unsigned n = 0;
	hex[0] = 0;
	if (EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -EIO;
	to_hex(digest, hex);
	return 0;
}
