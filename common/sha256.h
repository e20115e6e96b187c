/* SHA-256, for content-addressed blob names (FIPS 180-4). */
#ifndef COMMON_SHA256_H
#define COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

struct sha256 {
	uint32_t state[8];
	uint64_t total;      /* bytes hashed so far */
	uint8_t block[64];
	size_t used;         /* bytes waiting in block */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
void sha256_final(struct sha256 *h, uint8_t digest[32]);
/* Finish and write the lowercase hex digest (65 bytes with the NUL). */
void sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1]);

#endif
