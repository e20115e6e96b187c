/* Content-Encoding for compressible bodies (docs/http-api.md): gzip
 * (zlib, level 6) or zstd (level 3), as the client's Accept-Encoding
 * allows.  Only bodies worth it are compressed; a coding that does not
 * shrink the body is not used. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static int gzip_mem(const void *in, size_t in_size, void **out, size_t *out_size)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t cap = deflateBound(&z, (uLong)in_size);
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)in_size;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	size_t n = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*out_size = n;
	return 0;
}

static int zstd_mem(const void *in, size_t in_size, void **out, size_t *out_size)
{
	size_t cap = ZSTD_compressBound(in_size);
	void *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	size_t n = ZSTD_compress(buf, cap, in, in_size, 3);
	if (ZSTD_isError(n)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*out_size = n;
	return 0;
}

bool compress_for_client(struct request *r, const void *data, size_t size, void **out,
			 size_t *out_size, const char **coding)
{
	if (size < COMPRESS_MIN || size > COMPRESS_MAX || r->method == METHOD_HEAD)
		return false;
	enum content_coding c = http_pick_coding(request_header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	if (c == CODING_IDENTITY)
		return false;
	int rc = c == CODING_ZSTD ? zstd_mem(data, size, out, out_size)
				  : gzip_mem(data, size, out, out_size);
	if (rc < 0)
		return false;
	if (*out_size >= size) {
		free(*out);
		return false;
	}
	*coding = c == CODING_ZSTD ? "zstd" : "gzip";
	return true;
}
