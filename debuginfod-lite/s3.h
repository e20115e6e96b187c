/* A small S3 client: one bucket, objects streamed from and to file
 * descriptors, never held whole in memory.
 *
 * It holds no server state, so the blob backend, the migrate command and the
 * tests use it alike.  Requests are signed with AWS Signature V4 by libcurl
 * (CURLOPT_AWS_SIGV4).  With an endpoint the addressing is path-style
 * (ENDPOINT/BUCKET/KEY: Ceph RGW, MinIO); without one it is AWS's
 * virtual-hosted style (https://BUCKET.s3.REGION.amazonaws.com/KEY).
 *
 * Integrity: a PUT sends the payload's SHA-256 (x-amz-content-sha256) and MD5
 * (Content-MD5), so the store refuses a body damaged on the way, and the
 * answered ETag is checked against the MD5.  Objects above the multipart
 * threshold go up in parts, each checked the same way, and carry their part
 * size in x-amz-meta-part-size.  A GET counts the bytes against
 * Content-Length and recomputes the ETag: the MD5 of the body, or for a
 * multipart object the MD5 of the parts' MD5s, "-N".  Only when every check
 * holds does it return 0; otherwise the file is truncated to zero, so no
 * caller can mistake a partial body for the object.
 *
 * Retries: transport errors, timeouts, 500, 503 (SlowDown included), 429 and
 * failed integrity checks are tried again, up to max_attempts, after an
 * exponential backoff with full jitter.  Other answers are final.
 *
 * Errors (negative errno): -ENOENT no such object; -EACCES refused (403);
 * -EIO integrity (short body, wrong ETag); -EAGAIN the store kept answering
 * 5xx/SlowDown; -ETIMEDOUT no progress within the idle timeout;
 * -ECONNREFUSED unreachable; -EPROTO an answer we cannot read; -EINVAL,
 * -ENOMEM.  s3_unavailable() tells the transient ones apart. */
#ifndef DEBUGINFOD_LITE_S3_H
#define DEBUGINFOD_LITE_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct s3_config {
	const char *bucket;
	const char *endpoint;         /* "http://127.0.0.1:7480"; NULL: AWS virtual-hosted */
	const char *region;           /* NULL: "us-east-1" */
	/* Credentials: these, else credentials_file's [profile] (AWS's INI
	 * layout), else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
	 * (/ AWS_SESSION_TOKEN). */
	const char *access_key, *secret_key, *session_token;
	const char *credentials_file;
	const char *profile;          /* NULL: $AWS_PROFILE, else "default" */
	uint64_t multipart_threshold; /* 0: 32 MiB.  Larger objects go in parts */
	uint64_t part_size;           /* 0: 16 MiB (S3 wants >= 5 MiB but the last) */
	unsigned max_attempts;        /* 0: 5 */
	unsigned backoff_base_ms;     /* 0: 50; attempt n waits rand(0, base * 2^n) */
	unsigned backoff_max_ms;      /* 0: 2000 */
	unsigned connect_timeout_ms;  /* 0: 2000 */
	unsigned idle_timeout_s;      /* 0: 10; no byte moved for this long fails */
	unsigned request_timeout_ms;  /* 0: 30000; whole-request limit of the bodiless ones */
	unsigned list_page_keys;      /* 0: the store's default (1000) */
	/* The caller checks every downloaded body against a stronger hash of
	 * its own (content-addressed blobs): a GET then checks the length but
	 * does not recompute the ETag, which saves an MD5 pass per byte. */
	bool caller_verifies_content;
};

struct s3_client;

int s3_client_new(const struct s3_config *cfg, struct s3_client **out, struct err *e);
void s3_client_free(struct s3_client *c);

/* Create the bucket when it is missing (one that we own already is fine). */
int s3_ensure_bucket(struct s3_client *c, struct err *e);
/* One HEAD of the bucket, without retries: is the store there now? */
int s3_ping(struct s3_client *c, struct err *e);

struct s3_object_info {
	uint64_t size;
	char etag[80];  /* without the quotes */
	int64_t mtime;  /* seconds since the epoch, 0 when unknown */
};

/* Upload bytes [0, size) of fd (read with pread: a regular file) as key.
 * info (may be NULL) receives the size and ETag. */
int s3_put_fd(struct s3_client *c, const char *key, int fd, uint64_t size,
	      struct s3_object_info *info, struct err *e);
/* Upload a buffer (small objects). */
int s3_put_mem(struct s3_client *c, const char *key, const void *data, size_t size,
	       struct s3_object_info *info, struct err *e);
/* Download key into fd (a regular file, written from offset 0 and truncated
 * to the object's size).  On any failure fd is left truncated to 0. */
int s3_get_fd(struct s3_client *c, const char *key, int fd, struct s3_object_info *info,
	      struct err *e);
int s3_head(struct s3_client *c, const char *key, struct s3_object_info *info, struct err *e);
/* Deleting a missing key succeeds, as in S3. */
int s3_delete(struct s3_client *c, const char *key, struct err *e);

struct s3_list_entry {
	const char *key;
	uint64_t size;
	const char *etag;
	int64_t mtime; /* LastModified, seconds since the epoch; 0 when absent */
};
/* Called once per object; return 0 to go on, > 0 to stop (s3_list then
 * returns 0), < 0 to stop with that error. */
typedef int (*s3_list_fn)(void *arg, const struct s3_list_entry *ent);
/* Every object whose key starts with prefix (NULL: all), in key order,
 * page by page (ListObjectsV2 with continuation tokens). */
int s3_list(struct s3_client *c, const char *prefix, s3_list_fn fn, void *arg, struct err *e);

/* The parser of one ListObjectsV2 page, exposed for the fuzzer: calls fn per
 * <Contents>, and sets *truncated and next_token (NUL-terminated, empty when
 * absent).  -EPROTO on malformed or oversized input (keys over 1024 bytes,
 * tokens over token_cap - 1, any DOCTYPE). */
int s3_list_parse(const char *xml, size_t len, s3_list_fn fn, void *arg, bool *truncated,
		  char *next_token, size_t token_cap);
/* The <Code> of an S3 error document ("SlowDown"), or "" when there is none. */
void s3_error_code_parse(const char *xml, size_t len, char *code, size_t code_cap);

/* AWS's shared-credentials INI text: the [profile] section's
 * aws_access_key_id, aws_secret_access_key and aws_session_token (NULL when
 * absent); the caller frees them.  -ENOENT when the profile or a key is
 * missing. */
int s3_credentials_parse(const char *text, size_t len, const char *profile, char **access_key,
			 char **secret_key, char **session_token);

/* True for the errors that mean "the store is unreachable or overloaded
 * now": the caller answers 503 with Retry-After and tries again later. */
bool s3_unavailable(int err);

/* Counters per operation, for /metrics.  An operation is one call (retries
 * included in its latency); requests counts every HTTP attempt. */
enum s3_op {
	S3_OP_GET,
	S3_OP_PUT,
	S3_OP_HEAD,
	S3_OP_DELETE,
	S3_OP_LIST,
	S3_OP_BUCKET,
	S3_OP_COUNT
};
#define S3_LATENCY_BUCKETS 10
extern const double s3_latency_bucket_le[S3_LATENCY_BUCKETS]; /* seconds */
struct s3_op_stats {
	uint64_t ops, errors, requests, retries, bytes;
	uint64_t latency_sum_us;
	uint64_t latency[S3_LATENCY_BUCKETS]; /* per bucket, not cumulative */
};
const char *s3_op_name(enum s3_op op);
void s3_stats(struct s3_client *c, enum s3_op op, struct s3_op_stats *out);

#endif
