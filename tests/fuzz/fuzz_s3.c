/* libFuzzer target for what the S3 client reads from the store
 * (debuginfod-lite/s3.h): ListObjectsV2 pages, error documents and
 * credentials files.  Checks what callers rely on: every listed key is
 * non-empty, NUL-terminated and at most 1024 bytes, the continuation token
 * fits its buffer, and the error code is NUL-terminated within its buffer. */
#include "debuginfod-lite/s3.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

static int on_entry(void *arg, const struct s3_list_entry *ent)
{
	size_t *count = arg;
	size_t n = strlen(ent->key);
	if (n == 0 || n > 1024 || strlen(ent->etag) >= 80)
		abort();
	return ++*count > 100000 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	bool truncated;
	char token[64];
	size_t count = 0;
	int rc = s3_list_parse(copy, size, on_entry, &count, &truncated, token, sizeof(token));
	if (rc == 0 && strlen(token) >= sizeof(token))
		abort();
	char code[16];
	memset(code, 'x', sizeof(code));
	s3_error_code_parse(copy, size, code, sizeof(code));
	if (!memchr(code, '\0', sizeof(code)))
		abort();
	char *key, *secret, *session;
	if (s3_credentials_parse(copy, size, "default", &key, &secret, &session) == 0) {
		if (!key || !secret)
			abort();
		free(key);
		free(secret);
		free(session);
	}
	free(copy);
	return 0;
}
