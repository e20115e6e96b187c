/* See gzip.h. */
#include "common/gzip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* zlib counts in uInt: feed and drain at most 1 GiB at a time. */
#define ZCHUNK (1u << 30)

bool gzip_is(const void *data, size_t size)
{
	const uint8_t *b = data;
	return size >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

uint64_t gzip_claimed_size(const void *data, size_t size)
{
	const uint8_t *b = data;
	if (size < 18 || !gzip_is(data, size))
		return 0;
	return (uint64_t)b[size - 4] | (uint64_t)b[size - 3] << 8 | (uint64_t)b[size - 2] << 16 |
	       (uint64_t)b[size - 1] << 24;
}

static uInt chunk(size_t left)
{
	return (uInt)(left > ZCHUNK ? ZCHUNK : left);
}

int gzip_compress(const void *in, size_t size, uint8_t **out, size_t *out_size, struct err *e)
{
	return gzip_compress_level(in, size, 6, out, out_size, e);
}

int gzip_compress_level(const void *in, size_t size, int level, uint8_t **out, size_t *out_size,
			struct err *e)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (level < 1 || level > 9)
		return err_set(e, EINVAL, "gzip level %d is not 1..9", level);
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return err_set(e, ENOMEM, "cannot initialise zlib");
	size_t cap = deflateBound(&z, (uLong)size) + 64;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return err_set(e, ENOMEM, "out of memory compressing %zu bytes", size);
	}
	const uint8_t *src = in;
	int zr = Z_OK;
	z.next_in = (Bytef *)src;
	while (zr == Z_OK) {
		size_t in_left = size - (size_t)(z.next_in - src);
		z.avail_in = chunk(in_left);
		z.next_out = buf + z.total_out;
		z.avail_out = chunk(cap - z.total_out);
		zr = deflate(&z, in_left > ZCHUNK ? Z_NO_FLUSH : Z_FINISH);
	}
	size_t n = z.total_out;
	deflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(buf);
		return err_set(e, EIO, "gzip compression failed");
	}
	*out = buf;
	*out_size = n;
	return 0;
}

int gzip_decompress(const void *in, size_t size, size_t max, uint8_t **out, size_t *out_size,
		    struct err *e)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return err_set(e, ENOMEM, "cannot initialise zlib");
	/* A first guess of 4:1, grown by doubling up to max. */
	size_t cap = size < max / 4 ? size * 4 + 4096 : max, len = 0;
	if (cap > max)
		cap = max;
	uint8_t *buf = malloc(cap ? cap : 1);
	const uint8_t *src = in;
	int zr = Z_OK;
	z.next_in = (Bytef *)src;
	while (buf) {
		size_t in_left = size - (size_t)(z.next_in - src);
		z.avail_in = chunk(in_left);
		z.next_out = buf + len;
		z.avail_out = chunk(cap - len);
		zr = inflate(&z, Z_NO_FLUSH);
		len = (size_t)(z.next_out - buf);
		if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR))
			break;
		if (zr == Z_BUF_ERROR && z.avail_in == 0 && len < cap)
			break; /* input ended early */
		if (len == cap) {
			if (cap >= max) {
				inflateEnd(&z);
				free(buf);
				return err_set(e, EFBIG, "gzip data decompresses to more than %zu bytes",
					       max);
			}
			cap = cap > max / 2 ? max : cap * 2;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	inflateEnd(&z);
	if (!buf)
		return err_set(e, ENOMEM, "out of memory decompressing gzip data");
	if (zr != Z_STREAM_END) {
		free(buf);
		return err_set(e, EINVAL, "gzip data %s", zr == Z_DATA_ERROR ? "corrupt" : "truncated");
	}
	*out = buf;
	*out_size = len;
	return 0;
}
