/* SHA-256, for content-addressed blob names and snapshot hashes: a thin
 * layer over libcrypto's EVP interface, so the rest of the code base has one
 * small API and no OpenSSL types. */
#ifndef COMMON_SHA256_H
#define COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

/* A running hash.  ctx is NULL before init, after final and after discard,
 * so discard may always be called. */
struct sha256 {
	void *ctx; /* EVP_MD_CTX */
};

/* 0, or -ENOMEM (then update is a no-op and final fails). */
int sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Finish and free.  0, or -EIO when the hash could not be computed. */
int sha256_final(struct sha256 *h, uint8_t digest[32]);
/* Finish and write the lowercase hex digest (65 bytes with the NUL). */
int sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1]);
/* Free an unfinished hash (an aborted write). */
void sha256_discard(struct sha256 *h);
/* The hex digest of one buffer.  0 or -EIO. */
int sha256_hex_of(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

#endif
