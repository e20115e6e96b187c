/* The S3 blob backend (--blobs s3://BUCKET[/PREFIX]): blob keys become
 * object keys under PREFIX, moved by the S3 client (s3.h).  The replica-local
 * cache in front of it is blobs.c's; this file only talks to the store.
 *
 * Blobs are content-addressed, so a PUT of a key that exists stores the
 * same bytes again: harmless for small blobs, and skipped after a HEAD for
 * large ones (nothing big is uploaded twice). */
#include "debuginfod-lite/blobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debuginfod-lite/s3.h"

/* Above this, ask first whether the store has the blob already. */
#define HEAD_BEFORE_PUT (1u << 20)

struct blob_s3 {
	struct s3_client *client;
	char *prefix; /* "" or "PREFIX/" */
};

/* s3://BUCKET[/PREFIX] */
static int parse_url(const char *url, char **bucket, char **prefix, struct err *e)
{
	if (strncmp(url, "s3://", 5) != 0)
		return err_set(e, EINVAL, "--blobs %s: expected s3://BUCKET[/PREFIX]", url);
	const char *b = url + 5, *slash = strchr(b, '/');
	size_t blen = slash ? (size_t)(slash - b) : strlen(b);
	const char *p = slash ? slash + 1 : "";
	size_t plen = strlen(p);
	while (plen && p[plen - 1] == '/')
		plen--;
	if (!blen)
		return err_set(e, EINVAL, "--blobs %s: no bucket", url);
	if (plen > 512)
		return err_set(e, EINVAL, "--blobs %s: prefix too long", url);
	*bucket = strndup(b, blen);
	if (asprintf(prefix, "%.*s%s", (int)plen, p, plen ? "/" : "") < 0)
		*prefix = NULL;
	if (!*bucket || !*prefix) {
		free(*bucket);
		free(*prefix);
		*bucket = *prefix = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* The interface's errors: -EAGAIN for anything transient. */
static int map_err(int rc)
{
	if (rc < 0 && rc != -ENOENT && s3_unavailable(rc))
		return -EAGAIN;
	return rc;
}

static int s3b_open(void **impl, const struct blob_options *opt, struct err *e)
{
	struct blob_s3 *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	char *bucket = NULL;
	int rc = parse_url(opt->url, &bucket, &s->prefix, e);
	if (rc == 0) {
		struct s3_config cfg = {
			.bucket = bucket,
			.endpoint = opt->s3_endpoint,
			.region = opt->s3_region,
			.credentials_file = opt->s3_credentials,
			/* blobs.c checks every download's SHA-256 against its name. */
			.caller_verifies_content = true,
		};
		rc = s3_client_new(&cfg, &s->client, e);
	}
	/* Created at start when missing; a store that is down now fails the
	 * start after the client's retries, which says so at once. */
	if (rc == 0)
		rc = s3_ensure_bucket(s->client, e);
	free(bucket);
	if (rc < 0) {
		s3_client_free(s->client);
		free(s->prefix);
		free(s);
		return rc;
	}
	*impl = s;
	return 0;
}

static void s3b_close(void *impl)
{
	struct blob_s3 *s = impl;
	if (!s)
		return;
	s3_client_free(s->client);
	free(s->prefix);
	free(s);
}

static int full_key(const struct blob_s3 *s, const char *key, char *out, size_t cap,
		    struct err *e)
{
	int n = snprintf(out, cap, "%s%s", s->prefix, key);
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, ENAMETOOLONG, "blob key %s%s too long", s->prefix, key);
	return 0;
}

static int s3b_put(void *impl, const char *key, const char *tmp_path, int fd, uint64_t size,
		   const char *sha256_hex, struct err *e)
{
	(void)tmp_path, (void)sha256_hex;
	struct blob_s3 *s = impl;
	char k[1024];
	int rc = full_key(s, key, k, sizeof(k), e);
	if (rc < 0)
		return rc;
	if (size > HEAD_BEFORE_PUT) {
		struct s3_object_info info;
		struct err ignored;
		err_clear(&ignored);
		if (s3_head(s->client, k, &info, &ignored) == 0 && info.size == size)
			return 0;
	}
	return map_err(s3_put_fd(s->client, k, fd, size, NULL, e));
}

static int s3b_get(void *impl, const char *key, int fd, uint64_t *size, struct err *e)
{
	struct blob_s3 *s = impl;
	char k[1024];
	int rc = full_key(s, key, k, sizeof(k), e);
	if (rc < 0)
		return rc;
	struct s3_object_info info;
	rc = s3_get_fd(s->client, k, fd, &info, e);
	if (rc == 0)
		*size = info.size;
	return map_err(rc);
}

static int s3b_stat(void *impl, const char *key, uint64_t *size, int64_t *mtime,
		    struct err *e)
{
	struct blob_s3 *s = impl;
	char k[1024];
	int rc = full_key(s, key, k, sizeof(k), e);
	if (rc < 0)
		return rc;
	struct s3_object_info info;
	rc = s3_head(s->client, k, &info, e);
	if (rc == 0) {
		*size = info.size;
		*mtime = info.mtime;
	}
	return map_err(rc);
}

static int s3b_del(void *impl, const char *key, struct err *e)
{
	struct blob_s3 *s = impl;
	char k[1024];
	int rc = full_key(s, key, k, sizeof(k), e);
	if (rc < 0)
		return rc;
	return map_err(s3_delete(s->client, k, e));
}

struct list_ctx {
	size_t skip; /* strlen(prefix): keys are handed back without it */
	int (*fn)(void *ctx, const char *key, uint64_t size, int64_t mtime);
	void *ctx;
	int result;
};

static int on_object(void *arg, const struct s3_list_entry *ent)
{
	struct list_ctx *l = arg;
	if (strlen(ent->key) < l->skip)
		return 0;
	int rc = l->fn(l->ctx, ent->key + l->skip, ent->size, ent->mtime);
	if (rc != 0) {
		l->result = rc;
		return 1; /* stop; s3_list returns 0, the caller gets rc */
	}
	return 0;
}

static int s3b_list(void *impl, const char *prefix,
		    int (*fn)(void *ctx, const char *key, uint64_t size, int64_t mtime),
		    void *ctx, struct err *e)
{
	struct blob_s3 *s = impl;
	char k[1024];
	int rc = full_key(s, prefix, k, sizeof(k), e);
	if (rc < 0)
		return rc;
	struct list_ctx l = {.skip = strlen(s->prefix), .fn = fn, .ctx = ctx};
	rc = s3_list(s->client, k, on_object, &l, e);
	if (rc < 0)
		return map_err(rc);
	return l.result;
}

static int s3b_ping(void *impl, struct err *e)
{
	struct blob_s3 *s = impl;
	return map_err(s3_ping(s->client, e));
}

/* Per S3 operation: calls, failures, HTTP attempts, retries, bytes, and a
 * latency histogram of whole calls (retries included). */
static void s3b_metrics(void *impl, void (*put)(void *ctx, const char *text), void *ctx)
{
	struct blob_s3 *s = impl;
	char line[256];
	put(ctx, "# TYPE s3_operations_total counter\n# TYPE s3_errors_total counter\n"
		 "# TYPE s3_requests_total counter\n# TYPE s3_retries_total counter\n"
		 "# TYPE s3_bytes_total counter\n"
		 "# TYPE s3_operation_duration_seconds histogram\n");
	for (int op = 0; op < S3_OP_COUNT; op++) {
		struct s3_op_stats st;
		s3_stats(s->client, (enum s3_op)op, &st);
		const char *name = s3_op_name((enum s3_op)op);
		snprintf(line, sizeof(line),
			 "s3_operations_total{op=\"%s\"} %llu\ns3_errors_total{op=\"%s\"} %llu\n"
			 "s3_requests_total{op=\"%s\"} %llu\ns3_retries_total{op=\"%s\"} %llu\n"
			 "s3_bytes_total{op=\"%s\"} %llu\n",
			 name, (unsigned long long)st.ops, name, (unsigned long long)st.errors, name,
			 (unsigned long long)st.requests, name, (unsigned long long)st.retries, name,
			 (unsigned long long)st.bytes);
		put(ctx, line);
		uint64_t cumulative = 0;
		for (int i = 0; i < S3_LATENCY_BUCKETS; i++) {
			cumulative += st.latency[i];
			snprintf(line, sizeof(line),
				 "s3_operation_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n", name,
				 s3_latency_bucket_le[i], (unsigned long long)cumulative);
			put(ctx, line);
		}
		snprintf(line, sizeof(line),
			 "s3_operation_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n"
			 "s3_operation_duration_seconds_sum{op=\"%s\"} %.6f\n"
			 "s3_operation_duration_seconds_count{op=\"%s\"} %llu\n",
			 name, (unsigned long long)st.ops, name, (double)st.latency_sum_us / 1e6, name,
			 (unsigned long long)st.ops);
		put(ctx, line);
	}
}

const struct blob_backend blob_backend_s3 = {
	.scheme = "s3",
	.open = s3b_open,
	.close = s3b_close,
	.put = s3b_put,
	.get = s3b_get,
	.stat = s3b_stat,
	.del = s3b_del,
	.list = s3b_list,
	.ping = s3b_ping,
	.metrics = s3b_metrics,
};
