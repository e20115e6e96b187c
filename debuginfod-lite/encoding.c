/* Content-Encoding for compressible bodies (docs/http-api.md): gzip
 * (zlib, level 6) or zstd (level 3), as the client's Accept-Encoding
 * allows.  Only bodies worth it are compressed; a coding that does not
 * shrink the body is not used. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/parse.h"
#include "common/gzip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static int gzip_mem(const void *in, size_t in_size, void **out, size_t *out_size)
{
	struct err ignored = { { 0 } }; /* a body that fails to compress is sent as is */
	uint8_t *buf;
	int rc = gzip_compress(in, in_size, &buf, out_size, &ignored);
	if (rc == 0)
		*out = buf;
	return rc;
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
