/* gzip (RFC 1952) in memory, on zlib: the one place the code base
 * compresses or decompresses gzip (profiles, HTTP Content-Encoding). */
#ifndef COMMON_GZIP_H
#define COMMON_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* Does data start with the gzip magic? */
bool gzip_is(const void *data, size_t size);

/* The stream's own claim of its decompressed size (the ISIZE trailer,
 * modulo 2^32); 0 when data is not gzip.  A hint for estimates only. */
uint64_t gzip_claimed_size(const void *data, size_t size);

/* Compress at zlib's level 6.  *out is malloc'ed.  0, -ENOMEM or -EIO. */
int gzip_compress(const void *in, size_t size, uint8_t **out, size_t *out_size, struct err *e);

/* The same at zlib's level 1..9 (-EINVAL otherwise).  Level 1 compresses a
 * profiler-agent kallsyms snapshot about 4x faster than level 6 for about
 * 25% more bytes (docs/profiler-agent.md, "Kernel frames"). */
int gzip_compress_level(const void *in, size_t size, int level, uint8_t **out, size_t *out_size,
			struct err *e);

/* Decompress one gzip member, refusing (-EFBIG) more than max bytes of
 * output: a few bytes of input can claim gigabytes.  -EINVAL for corrupt or
 * truncated data.  *out is malloc'ed. */
int gzip_decompress(const void *in, size_t size, size_t max, uint8_t **out, size_t *out_size,
		    struct err *e);

#endif
