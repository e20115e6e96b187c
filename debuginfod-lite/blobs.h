/* The blob interface: content-addressed, immutable byte strings, named by
 * the SHA-256 of their content within an *area* ("blobs" for artifacts,
 * "profiles" for pprof and perf maps).  Under it sit backends: a local
 * directory (blob_file.c, the default: --blobs file:DIR, DIR defaulting to
 * --data) and object stores (--blobs s3://…), each one `struct
 * blob_backend`, so a new store is one more file.
 *
 * Streaming both ways: a blob is written from a stream into a temporary
 * file under DATA/tmp/ (hashed on the way), then committed (put) to the
 * backend; it is read as a local file descriptor, so the HTTP layer can
 * sendfile it.  For a backend whose blobs are not local files, reads go
 * through a replica-local LRU cache under DATA/cache/ (--cache-quota
 * bytes), filled by a streamed download whose SHA-256 is checked against
 * the name before it is used: a truncated or wrong object is never served.
 *
 * Crash safety: a commit returns only once the blob is durable in the
 * backend (file: fsync of the file and its directory; object store: the
 * PUT's answer); callers commit the database row that names it after.
 *
 * Errors: -ENOENT no such blob; -EAGAIN the backend is unreachable or
 * failing (transient); other -errno. */
#ifndef DEBUGINFOD_LITE_BLOBS_H
#define DEBUGINFOD_LITE_BLOBS_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/sha256.h"

#define BLOB_AREA_ARTIFACTS "blobs"
#define BLOB_AREA_PROFILES "profiles"

/* What the command line says about blob storage. */
struct blob_options {
	const char *url;          /* --blobs: NULL = file:<data dir> */
	const char *data_dir;     /* --data: tmp/ and cache/ live here */
	uint64_t cache_quota;     /* --cache-quota: bytes of DATA/cache/ (remote backends) */
	const char *s3_endpoint;  /* --s3-endpoint URL (path-style addressing) */
	const char *s3_region;    /* --s3-region, default us-east-1 */
	const char *s3_credentials; /* --s3-credentials FILE */
};

struct blob_store;

int blobs_open(struct blob_store **out, const struct blob_options *opt, struct err *e);
void blobs_close(struct blob_store *b);
/* The backend's blobs are not local files (reads go through the cache). */
bool blobs_remote(const struct blob_store *b);
/* For logs and /metrics: "file:/var/lib/…", "s3://bucket/prefix". */
const char *blobs_name(const struct blob_store *b);
/* The replica's working directory (--data). */
const char *blobs_data_dir(const struct blob_store *b);

/* Writing: begin, write (hashed as it goes), then commit or abort. */
struct blob_tmp {
	int fd;
	char path[PATH_MAX];
	struct sha256 hash;
	uint64_t size;
};
int blob_tmp_begin(struct blob_store *b, struct blob_tmp *t, struct err *e);
int blob_tmp_write(struct blob_tmp *t, const void *data, size_t len, struct err *e);
/* Store the tmp's content in area (deduplicated: the same content is
 * stored once); hash gets its SHA256_HEX_LEN + 1 name.  The tmp is
 * consumed whatever the outcome. */
int blob_tmp_commit(struct blob_store *b, struct blob_tmp *t, const char *area, char *hash,
		    struct err *e);
void blob_tmp_abort(struct blob_tmp *t);
/* A whole blob from memory. */
int blob_put_mem(struct blob_store *b, const char *area, const void *data, size_t size,
		 char *hash, struct err *e);

/* Open a blob as a local file: *fd (O_RDONLY) and *st; path (may be NULL)
 * gets the local file's name, valid while the fd is open.  Records the
 * use (LRU: eviction by quota and of the cache goes by last use). */
int blob_open(struct blob_store *b, const char *area, const char *hash, int *fd,
	      struct stat *st, char *path, size_t path_size, struct err *e);
/* The whole blob in memory (*data malloc'ed), at most max bytes. */
int blob_read(struct blob_store *b, const char *area, const char *hash, uint64_t max,
	      uint8_t **data, size_t *size, struct err *e);
/* 0 with size and mtime (the write time, unix s), or -ENOENT. */
int blob_stat(struct blob_store *b, const char *area, const char *hash, uint64_t *size,
	      int64_t *mtime, struct err *e);
/* A blob served from a copy in memory, without blob_open: record the use
 * as blob_open does.  -ENOENT when the local backend has lost it (the
 * copy in memory outlived the blob); a remote backend's cache without it
 * is no error (nothing to record). */
int blob_note_use(struct blob_store *b, const char *area, const char *hash);
/* The blob's last use (unix s), 0 when unknown. */
int64_t blob_last_use(struct blob_store *b, const char *area, const char *hash);
int blob_delete(struct blob_store *b, const char *area, const char *hash, struct err *e);
/* Every blob of area: fn(ctx, hash, size, mtime) until it returns
 * non-zero (returned). */
typedef int (*blob_list_fn)(void *ctx, const char *hash, uint64_t size, int64_t mtime);
int blob_list(struct blob_store *b, const char *area, blob_list_fn fn, void *ctx,
	      struct err *e);
/* Reachable?  (/readyz) */
int blobs_ping(struct blob_store *b, struct err *e);

/* Latency and errors, for /metrics. */
struct blob_metrics {
	atomic_uint_fast64_t puts, gets, errors, unavailable, latency_us, put_bytes, get_bytes,
		cache_hits, cache_misses, cache_evictions, cache_bytes;
};
const struct blob_metrics *blobs_metrics(const struct blob_store *b);
/* The backend's own counters (blob_backend.metrics), if it has any. */
void blobs_backend_metrics(struct blob_store *b, void (*put)(void *ctx, const char *text),
			   void *ctx);

/* ---- backends ----
 * A key is "<area>/<2 hex>/<62 hex>".  Every call may come from any
 * thread at once. */
struct blob_backend {
	const char *scheme; /* "file", "s3": the part of --blobs before ':' */
	int (*open)(void **impl, const struct blob_options *opt, struct err *e);
	void (*close)(void *impl);
	/* Store the content of the local file tmp_path (open as fd, size
	 * bytes, SHA-256 sha256_hex) under key, durably.  May consume the
	 * file (rename it); the caller removes it if it is still there. */
	int (*put)(void *impl, const char *key, const char *tmp_path, int fd, uint64_t size,
		   const char *sha256_hex, struct err *e);
	/* Write the object's content to fd (positioned at 0); *size its length. */
	int (*get)(void *impl, const char *key, int fd, uint64_t *size, struct err *e);
	int (*stat)(void *impl, const char *key, uint64_t *size, int64_t *mtime, struct err *e);
	int (*del)(void *impl, const char *key, struct err *e);
	/* Keys under prefix ("<area>/"): fn(ctx, key, size, mtime). */
	int (*list)(void *impl, const char *prefix,
		    int (*fn)(void *ctx, const char *key, uint64_t size, int64_t mtime), void *ctx,
		    struct err *e);
	int (*ping)(void *impl, struct err *e);
	/* Optional: the object is the local file *out (no cache needed). */
	int (*local_path)(void *impl, const char *key, char *out, size_t size);
	/* Optional: the backend's own counters, as Prometheus text handed to
	 * put (one or more whole lines per call). */
	void (*metrics)(void *impl, void (*put)(void *ctx, const char *text), void *ctx);
};

extern const struct blob_backend blob_backend_file;
extern const struct blob_backend blob_backend_s3; /* blob_s3.c over s3.h */

/* mkdir -p for backends that keep files: 0 or -errno. */
int blob_mkdir_p(const char *path);

#endif
