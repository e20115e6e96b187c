/* A replica's local copy of remote blobs: a directory of whole files bounded
 * by a byte quota, least recently used out first.
 *
 * The S3 blob backend fetches a blob into the cache's tmp/ and commits it
 * under its name; from then on it is served by sendfile from a local fd
 * until it is evicted.  A reader holds an open fd, so eviction (an unlink)
 * never cuts a transfer short.  A file enters under its name only by rename,
 * after it was written and checked whole, so the cache never holds a partial
 * blob; at start the directory is re-read (files ordered by access time) and
 * leftover temporary files are removed.  Thread-safe. */
#ifndef DEBUGINFOD_LITE_BLOB_CACHE_H
#define DEBUGINFOD_LITE_BLOB_CACHE_H

#include <stdint.h>

#include "common/common.h"

/* Names: 1-200 bytes of [A-Za-z0-9._/-], no "..", not starting with '.' or '/'. */
#define BLOB_CACHE_NAME_MAX 200

struct blob_cache;

struct blob_cache_stats {
	uint64_t hits, misses, inserts, evictions;
	uint64_t bytes, files, quota;
};

/* quota 0: nothing is kept (every commit is evicted at once). */
int blob_cache_open(const char *dir, uint64_t quota, struct blob_cache **out, struct err *e);
void blob_cache_close(struct blob_cache *c);

/* An fd (O_RDONLY) on the cached blob and its size, or -ENOENT. */
int blob_cache_get(struct blob_cache *c, const char *name, uint64_t *size);
/* A new temporary file in the cache's directory: its fd (O_RDWR), its path
 * in path (cap >= PATH_MAX). */
int blob_cache_tmp(struct blob_cache *c, char *path, size_t cap);
/* Move a complete temporary file in under name.  Returns an fd (O_RDONLY)
 * on it, valid even when the quota evicts it at once. */
int blob_cache_commit(struct blob_cache *c, const char *tmp_path, const char *name);
/* Forget a blob (deleted from the store). */
void blob_cache_drop(struct blob_cache *c, const char *name);
void blob_cache_stats(struct blob_cache *c, struct blob_cache_stats *out);

bool blob_cache_name_ok(const char *name);

#endif
