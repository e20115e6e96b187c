/* The S3 client (s3.h): signing by libcurl, streaming through pread/pwrite,
 * integrity by MD5/ETag, retries with backoff. */
#include "debuginfod-lite/s3.h"

#include <ctype.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/sha256.h"

#define IO_CHUNK (256 * 1024)
#define ERROR_BODY_MAX (64 * 1024)
#define LIST_BODY_MAX (16 * 1024 * 1024)
#define KEY_MAX 1024
#define TOKEN_MAX 4096
#define IDLE_HANDLES 16
#define MAX_PARTS 10000

const double s3_latency_bucket_le[S3_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 10,
};

static const char *const op_names[S3_OP_COUNT] = {
	[S3_OP_GET] = "get", [S3_OP_PUT] = "put", [S3_OP_HEAD] = "head",
	[S3_OP_DELETE] = "delete", [S3_OP_LIST] = "list", [S3_OP_BUCKET] = "bucket",
};

struct s3_client {
	char *bucket, *endpoint, *region, *sigv4;
	char *userpwd;     /* "KEY:SECRET" */
	char *token_header; /* "x-amz-security-token: …" or NULL */
	uint64_t multipart_threshold, part_size;
	unsigned max_attempts, backoff_base_ms, backoff_max_ms;
	unsigned connect_timeout_ms, idle_timeout_s, request_timeout_ms, list_page_keys;
	bool caller_verifies_content;
	uint64_t rng; /* jitter, advanced atomically */
	pthread_mutex_t lock;
	CURL *idle[IDLE_HANDLES]; /* kept for their open connections */
	unsigned n_idle;
	struct s3_op_stats stats[S3_OP_COUNT];
};

const char *s3_op_name(enum s3_op op)
{
	return op < S3_OP_COUNT ? op_names[op] : "?";
}

bool s3_unavailable(int err)
{
	return err == -EAGAIN || err == -ETIMEDOUT || err == -ECONNREFUSED || err == -EIO ||
	       err == -ECONNRESET;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

#define ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)

static void stats_record(struct s3_client *c, enum s3_op op, uint64_t start_us, int rc,
			 uint64_t bytes)
{
	struct s3_op_stats *s = &c->stats[op];
	uint64_t us = now_us() - start_us;
	ADD(s->ops, 1);
	if (rc < 0 && rc != -ENOENT)
		ADD(s->errors, 1);
	ADD(s->bytes, bytes);
	ADD(s->latency_sum_us, us);
	for (int i = 0; i < S3_LATENCY_BUCKETS; i++)
		if ((double)us / 1e6 <= s3_latency_bucket_le[i]) {
			ADD(s->latency[i], 1);
			break;
		}
}

void s3_stats(struct s3_client *c, enum s3_op op, struct s3_op_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (op >= S3_OP_COUNT)
		return;
	const struct s3_op_stats *s = &c->stats[op];
	out->ops = __atomic_load_n(&s->ops, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
	out->requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
	out->retries = __atomic_load_n(&s->retries, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
	out->latency_sum_us = __atomic_load_n(&s->latency_sum_us, __ATOMIC_RELAXED);
	for (int i = 0; i < S3_LATENCY_BUCKETS; i++)
		out->latency[i] = __atomic_load_n(&s->latency[i], __ATOMIC_RELAXED);
}

/* --- credentials --- */

static char *trim(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

int s3_credentials_parse(const char *text, size_t len, const char *profile, char **access_key,
			 char **secret_key, char **session_token)
{
	*access_key = *secret_key = *session_token = NULL;
	char *copy = strndup(text, len);
	if (!copy)
		return -ENOMEM;
	bool in_profile = false, seen_profile = false;
	int rc = 0;
	char *line = copy;
	while (line && *line && rc == 0) {
		char *nl = strchr(line, '\n');
		char *end = nl ? nl : line + strlen(line);
		char *next = nl ? nl + 1 : NULL;
		char *s = trim(line, end);
		line = next;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close)
				continue;
			char *name = trim(s + 1, close);
			in_profile = strcmp(name, profile) == 0;
			seen_profile |= in_profile;
			continue;
		}
		if (!in_profile)
			continue;
		char *eq = strchr(s, '=');
		if (!eq)
			continue;
		char *value = trim(eq + 1, eq + 1 + strlen(eq + 1));
		char *name = trim(s, eq);
		char **slot = strcmp(name, "aws_access_key_id") == 0       ? access_key
			      : strcmp(name, "aws_secret_access_key") == 0 ? secret_key
			      : strcmp(name, "aws_session_token") == 0     ? session_token
									   : NULL;
		if (!slot)
			continue;
		free(*slot);
		if (!(*slot = strdup(value)))
			rc = -ENOMEM;
	}
	free(copy);
	if (rc == 0 && (!seen_profile || !*access_key || !**access_key || !*secret_key ||
			!**secret_key))
		rc = -ENOENT;
	if (rc < 0) {
		free(*access_key);
		free(*secret_key);
		free(*session_token);
		*access_key = *secret_key = *session_token = NULL;
	}
	return rc;
}

static int load_credentials(const struct s3_config *cfg, char **key, char **secret, char **token,
			    struct err *e)
{
	*key = *secret = *token = NULL;
	if (cfg->access_key && cfg->secret_key) {
		*key = strdup(cfg->access_key);
		*secret = strdup(cfg->secret_key);
		*token = cfg->session_token ? strdup(cfg->session_token) : NULL;
		return *key && *secret ? 0 : -ENOMEM;
	}
	if (cfg->credentials_file) {
		uint8_t *text;
		size_t len;
		int rc = read_file(cfg->credentials_file, 64 * 1024, &text, &len, e);
		if (rc < 0)
			return rc;
		const char *profile = cfg->profile ? cfg->profile : getenv("AWS_PROFILE");
		if (!profile || !*profile)
			profile = "default";
		rc = s3_credentials_parse((const char *)text, len, profile, key, secret, token);
		free(text);
		if (rc == -ENOENT)
			return err_set(e, ENOENT,
				       "%s: no [%s] with aws_access_key_id and aws_secret_access_key",
				       cfg->credentials_file, profile);
		return rc;
	}
	const char *k = getenv("AWS_ACCESS_KEY_ID"), *s = getenv("AWS_SECRET_ACCESS_KEY");
	if (!k || !*k || !s || !*s)
		return err_set(e, ENOENT,
			       "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
			       "or give a credentials file");
	const char *t = getenv("AWS_SESSION_TOKEN");
	*key = strdup(k);
	*secret = strdup(s);
	*token = t && *t ? strdup(t) : NULL;
	return *key && *secret ? 0 : -ENOMEM;
}

/* --- client --- */

static bool bucket_name_ok(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-' ||
		      b[i] == '.'))
			return false;
	return true;
}

int s3_client_new(const struct s3_config *cfg, struct s3_client **out, struct err *e)
{
	*out = NULL;
	if (!cfg->bucket || !bucket_name_ok(cfg->bucket))
		return err_set(e, EINVAL, "S3 bucket name '%s': 3-63 of a-z 0-9 . -",
			       cfg->bucket ? cfg->bucket : "");
	if (cfg->endpoint && strncmp(cfg->endpoint, "http://", 7) != 0 &&
	    strncmp(cfg->endpoint, "https://", 8) != 0)
		return err_set(e, EINVAL, "S3 endpoint '%s' is not an http:// or https:// URL",
			       cfg->endpoint);
	const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
	for (const char *p = region; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-'))
			return err_set(e, EINVAL, "S3 region '%s'", region);
	uint64_t part = cfg->part_size ? cfg->part_size : 16u << 20;
	if (part < 64 * 1024)
		return err_set(e, EINVAL, "S3 part size %" PRIu64 " is below 64 KiB", part);

	struct s3_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->multipart_threshold = cfg->multipart_threshold ? cfg->multipart_threshold : 32u << 20;
	c->part_size = part;
	c->max_attempts = cfg->max_attempts ? cfg->max_attempts : 5;
	c->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 50;
	c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 2000;
	c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
	c->idle_timeout_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : 10;
	c->request_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 30000;
	c->list_page_keys = cfg->list_page_keys;
	c->caller_verifies_content = cfg->caller_verifies_content;
	c->rng = now_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;

	char *key = NULL, *secret = NULL, *token = NULL;
	int rc = load_credentials(cfg, &key, &secret, &token, e);
	if (rc == 0) {
		size_t elen = cfg->endpoint ? strlen(cfg->endpoint) : 0;
		while (elen && cfg->endpoint[elen - 1] == '/')
			elen--;
		c->bucket = strdup(cfg->bucket);
		c->region = strdup(region);
		c->endpoint = cfg->endpoint ? strndup(cfg->endpoint, elen) : NULL;
		if (asprintf(&c->sigv4, "aws:amz:%s:s3", region) < 0)
			c->sigv4 = NULL;
		if (asprintf(&c->userpwd, "%s:%s", key, secret) < 0)
			c->userpwd = NULL;
		if (token && asprintf(&c->token_header, "x-amz-security-token: %s", token) < 0)
			c->token_header = NULL;
		if (!c->bucket || !c->region || (cfg->endpoint && !c->endpoint) || !c->sigv4 ||
		    !c->userpwd || (token && !c->token_header))
			rc = -ENOMEM;
	}
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(key);
	free(secret);
	free(token);
	if (rc < 0) {
		s3_client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n_idle; i++)
		curl_easy_cleanup(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->bucket);
	free(c->endpoint);
	free(c->region);
	free(c->sigv4);
	if (c->userpwd)
		explicit_bzero(c->userpwd, strlen(c->userpwd));
	free(c->userpwd);
	free(c->token_header);
	free(c);
}

static CURL *handle_get(struct s3_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->n_idle)
		h = c->idle[--c->n_idle];
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_put(struct s3_client *c, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->n_idle < IDLE_HANDLES) {
		c->idle[c->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* --- URLs --- */

/* S3's URI encoding: unreserved characters stay, '/' stays in keys, every
 * other byte becomes %XX (upper-case).  SigV4 signs the path and query as
 * sent, so this is also the canonical form. */
static int uri_encode(char *out, size_t cap, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
			     (keep_slash && ch == '/');
		if (n + 4 > cap)
			return -ENAMETOOLONG;
		if (plain) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
	return 0;
}

/* key NULL: the bucket itself.  query: already canonical (sorted, encoded,
 * every parameter with '='). */
static char *make_url(struct s3_client *c, const char *key, const char *query)
{
	char path[3 * KEY_MAX + 8] = "";
	if (key && (strlen(key) > KEY_MAX || uri_encode(path, sizeof(path), key, true) < 0))
		return NULL;
	char *url;
	int n;
	if (c->endpoint)
		n = asprintf(&url, "%s/%s%s%s%s%s", c->endpoint, c->bucket, key ? "/" : "", path,
			     query ? "?" : "", query ? query : "");
	else
		n = asprintf(&url, "https://%s.s3.%s.amazonaws.com/%s%s%s", c->bucket, c->region,
			     path, query ? "?" : "", query ? query : "");
	return n < 0 ? NULL : url;
}

/* --- one HTTP exchange --- */

struct md5 {
	EVP_MD_CTX *ctx;
};
static int md5_init(struct md5 *m)
{
	m->ctx = EVP_MD_CTX_new();
	if (!m->ctx || EVP_DigestInit_ex(m->ctx, EVP_md5(), NULL) != 1) {
		EVP_MD_CTX_free(m->ctx);
		m->ctx = NULL;
		return -ENOMEM;
	}
	return 0;
}
static void md5_update(struct md5 *m, const void *p, size_t n)
{
	if (m->ctx)
		EVP_DigestUpdate(m->ctx, p, n);
}
static int md5_final(struct md5 *m, uint8_t out[16])
{
	unsigned int len = 0;
	int ok = m->ctx && EVP_DigestFinal_ex(m->ctx, out, &len) == 1 && len == 16;
	EVP_MD_CTX_free(m->ctx);
	m->ctx = NULL;
	return ok ? 0 : -EIO;
}
static void md5_discard(struct md5 *m)
{
	EVP_MD_CTX_free(m->ctx);
	m->ctx = NULL;
}
static void to_hex(const uint8_t *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}
static void to_base64(const uint8_t *p, size_t n, char *out /* 4*ceil(n/3)+1 */)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* Where a GET body goes: pwrite into fd, hashed on the way.  Where an
 * error body goes: a bounded buffer. */
struct sink {
	int fd;            /* -1: memory only */
	uint64_t written;
	struct md5 whole;  /* MD5 of the body */
	struct md5 part;   /* MD5 of the current part (multipart ETag) */
	struct md5 outer;  /* MD5 of the parts' MD5s */
	uint64_t part_size, part_fill, parts;
	char *mem;
	size_t mem_len, mem_cap, mem_max;
	int io_error;
};

struct source {
	int fd;            /* -1: mem */
	const uint8_t *mem;
	uint64_t start, len, pos;
	int io_error;
};

struct response {
	long status;
	bool etag_seen;
	char etag[80];
	char meta_part_size[24];
	char last_modified[64];
	int64_t content_length; /* -1 unknown */
};

struct exchange {
	struct s3_client *c;
	const char *method;      /* GET HEAD PUT POST DELETE */
	const char *key;         /* NULL: the bucket */
	const char *query;       /* canonical, or NULL */
	struct curl_slist *headers;
	struct source *src;      /* PUT/POST body, or NULL */
	struct sink *body;       /* 2xx body */
	bool timeout_all;        /* whole-request timeout (bodiless operations) */
	int (*prepare)(struct exchange *x); /* before each attempt, or NULL */
	unsigned attempts;       /* 0: the client's max_attempts */
	struct response resp;
	struct sink errbody;     /* non-2xx body (bounded) */
	CURLcode curl_rc;
	char curl_err[CURL_ERROR_SIZE];
};

static int mem_append(struct sink *s, const char *p, size_t n)
{
	if (s->mem_len + n > s->mem_max)
		return -EFBIG;
	if (s->mem_len + n + 1 > s->mem_cap) {
		size_t cap = s->mem_cap ? s->mem_cap : 4096;
		while (cap < s->mem_len + n + 1)
			cap *= 2;
		char *m = realloc(s->mem, cap);
		if (!m)
			return -ENOMEM;
		s->mem = m;
		s->mem_cap = cap;
	}
	memcpy(s->mem + s->mem_len, p, n);
	s->mem_len += n;
	s->mem[s->mem_len] = '\0';
	return 0;
}

static void sink_hash(struct sink *s, const char *p, size_t n)
{
	md5_update(&s->whole, p, n);
	if (!s->part_size)
		return;
	while (n) {
		uint64_t take = s->part_size - s->part_fill;
		if (take > n)
			take = n;
		md5_update(&s->part, p, take);
		s->part_fill += take;
		p += take;
		n -= take;
		if (s->part_fill == s->part_size) {
			uint8_t d[16];
			if (md5_final(&s->part, d) == 0)
				md5_update(&s->outer, d, 16);
			s->parts++;
			s->part_fill = 0;
			md5_init(&s->part);
		}
	}
}

/* Our multipart objects carry their part size: with it the multipart ETag
 * can be recomputed while the body streams by. */
static void sink_learn_part_size(struct sink *s, const char *text)
{
	char *end;
	errno = 0;
	unsigned long long ps = strtoull(text, &end, 10);
	if (errno || *end || ps < 1 || ps > (1ull << 34))
		return;
	if (md5_init(&s->part) < 0 || md5_init(&s->outer) < 0) {
		md5_discard(&s->part);
		return;
	}
	s->part_size = ps;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t n = size * nmemb;
	bool ok2xx = x->resp.status >= 200 && x->resp.status < 300;
	struct sink *s = ok2xx && x->body ? x->body : &x->errbody;
	if (s->fd >= 0) {
		if (s->written == 0 && !s->part_size && x->resp.meta_part_size[0] &&
		    strchr(x->resp.etag, '-') && !x->c->caller_verifies_content) {
			/* A multipart ETag: the whole body's MD5 is of no use. */
			sink_learn_part_size(s, x->resp.meta_part_size);
			if (s->part_size)
				md5_discard(&s->whole);
		}
		size_t done = 0;
		while (done < n) {
			ssize_t w = pwrite(s->fd, p + done, n - done, (off_t)(s->written + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				s->io_error = w < 0 ? -errno : -EIO;
				return 0; /* aborts the transfer */
			}
			done += (size_t)w;
		}
		sink_hash(s, p, n);
		s->written += n;
		return n;
	}
	int rc = mem_append(s, p, n);
	if (rc == -EFBIG && s == &x->errbody)
		return n; /* the head of an error document is enough */
	if (rc < 0) {
		s->io_error = rc;
		return 0;
	}
	s->written += n;
	return n;
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && isspace((unsigned char)*v))
		v++, n--;
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		v++, n -= 2;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t n = size * nmemb;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue, say): forget the last. */
		x->resp.etag_seen = false;
		x->resp.etag[0] = x->resp.meta_part_size[0] = x->resp.last_modified[0] = '\0';
		const char *sp = memchr(p, ' ', n);
		x->resp.status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	const char *colon = memchr(p, ':', n);
	if (!colon)
		return n;
	size_t name_len = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vlen = n - name_len - 1;
	if (name_len == 4 && strncasecmp(p, "ETag", 4) == 0) {
		copy_header_value(x->resp.etag, sizeof(x->resp.etag), v, vlen);
		x->resp.etag_seen = true;
	} else if (name_len == 20 && strncasecmp(p, "x-amz-meta-part-size", 20) == 0) {
		copy_header_value(x->resp.meta_part_size, sizeof(x->resp.meta_part_size), v, vlen);
	} else if (name_len == 13 && strncasecmp(p, "Last-Modified", 13) == 0) {
		copy_header_value(x->resp.last_modified, sizeof(x->resp.last_modified), v, vlen);
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct source *s = arg;
	size_t want = size * nmemb;
	uint64_t left = s->len - s->pos;
	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (s->fd < 0) {
		memcpy(buf, s->mem + s->start + s->pos, want);
		s->pos += want;
		return want;
	}
	for (;;) {
		ssize_t r = pread(s->fd, buf, want, (off_t)(s->start + s->pos));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) { /* the file shrank under us: never send a short body */
			s->io_error = r < 0 ? -errno : -EIO;
			return CURL_READFUNC_ABORT;
		}
		s->pos += (uint64_t)r;
		return (size_t)r;
	}
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct source *s = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > s->len)
		return CURL_SEEKFUNC_FAIL;
	s->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* One attempt.  Returns 0 when an HTTP answer came (any status), or the
 * errno of a transport failure. */
static int exchange_once(struct exchange *x)
{
	struct s3_client *c = x->c;
	memset(&x->resp, 0, sizeof(x->resp));
	x->resp.content_length = -1;
	free(x->errbody.mem);
	memset(&x->errbody, 0, sizeof(x->errbody));
	x->errbody.fd = -1;
	x->errbody.mem_max = ERROR_BODY_MAX;
	x->curl_err[0] = '\0';

	char *url = make_url(c, x->key, x->query);
	if (!url)
		return -ENAMETOOLONG;
	CURL *h = handle_get(c);
	if (!h) {
		free(url);
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->idle_timeout_s);
	if (x->timeout_all)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->request_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	/* Large reads: fewer callbacks and pwrites per megabyte. */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	/* Ask for the bytes as stored, never a re-encoded body. */
	curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (strcmp(x->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(x->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(x->src ? x->src->len : 0));
	} else if (strcmp(x->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(x->src ? x->src->len : 0));
	} else if (strcmp(x->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
	}
	if (x->src) {
		x->src->pos = 0;
		x->src->io_error = 0;
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x->src);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x->src);
	}

	CURLcode rc = curl_easy_perform(h);
	x->curl_rc = rc;
	curl_off_t cl = -1;
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
		x->resp.content_length = cl;
	handle_put(c, rc == CURLE_OK ? h : NULL);
	if (rc != CURLE_OK)
		curl_easy_cleanup(h);
	free(url);

	if (x->body && x->body->io_error)
		return x->body->io_error == -ENOMEM ? -ENOMEM : x->body->io_error;
	if (x->src && x->src->io_error)
		return x->src->io_error;
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_PARTIAL_FILE:
		return -EIO; /* a truncated body */
	default:
		return -ECONNRESET;
	}
}

/* A transport error or an answer worth asking again. */
static bool retryable(int rc, long status, const char *code)
{
	if (rc == -ENOMEM || rc == -ENAMETOOLONG || rc == -EINVAL || rc == -ENOSPC ||
	    rc == -EFBIG || rc == -EBADF)
		return false;
	if (rc < 0)
		return true;
	return status == 500 || status == 502 || status == 503 || status == 504 ||
	       status == 429 || strcmp(code, "SlowDown") == 0 ||
	       strcmp(code, "InternalError") == 0 || strcmp(code, "RequestTimeout") == 0;
}

static void backoff(struct s3_client *c, unsigned attempt)
{
	uint64_t cap = (uint64_t)c->backoff_base_ms << (attempt < 20 ? attempt : 20);
	if (cap > c->backoff_max_ms)
		cap = c->backoff_max_ms;
	/* xorshift64, shared by every thread: exactness does not matter. */
	uint64_t r = __atomic_load_n(&c->rng, __ATOMIC_RELAXED);
	r ^= r << 13;
	r ^= r >> 7;
	r ^= r << 17;
	__atomic_store_n(&c->rng, r, __ATOMIC_RELAXED);
	uint64_t ms = cap ? r % (cap + 1) : 0;
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int status_errno(long status)
{
	switch (status) {
	case 404:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 409:
		return -EEXIST;
	case 412:
		return -ESTALE;
	case 500:
	case 502:
	case 503:
	case 504:
	case 429:
		return -EAGAIN;
	default:
		return -EPROTO;
	}
}

/* Called after an answered 2xx exchange: 0, or an error that is retried. */
typedef int (*verify_fn)(struct exchange *x, void *arg);

/* The exchange with retries.  Returns 0 on a 2xx that verify accepted,
 * else a negative errno with e set. */
static int exchange(struct exchange *x, enum s3_op op, verify_fn verify, void *verify_arg,
		    struct err *e)
{
	struct s3_client *c = x->c;
	int rc = 0;
	char code[64] = "";
	unsigned attempts = x->attempts ? x->attempts : c->max_attempts;
	for (unsigned attempt = 0; attempt < attempts; attempt++) {
		if (attempt) {
			ADD(c->stats[op].retries, 1);
			backoff(c, attempt);
		}
		ADD(c->stats[op].requests, 1);
		code[0] = '\0';
		if (x->prepare && (rc = x->prepare(x)) < 0)
			break;
		rc = exchange_once(x);
		long status = x->resp.status;
		if (rc == 0 && (status < 200 || status >= 300)) {
			s3_error_code_parse(x->errbody.mem, x->errbody.mem_len, code, sizeof(code));
			rc = strcmp(code, "SlowDown") == 0 ? -EAGAIN : status_errno(status);
			if (!retryable(0, status, code))
				break;
			continue;
		}
		if (rc == 0 && verify)
			rc = verify(x, verify_arg);
		if (rc == 0 || !retryable(rc, 0, ""))
			break;
	}
	free(x->errbody.mem);
	x->errbody.mem = NULL;
	if (rc == 0)
		return 0;
	const char *what = x->key ? x->key : "(bucket)";
	if (x->resp.status && (x->resp.status < 200 || x->resp.status >= 300))
		return err_set(e, -rc, "S3 %s %s/%s: HTTP %ld%s%s", x->method, c->bucket, what,
			       x->resp.status, code[0] ? " " : "", code);
	if (rc == -EIO)
		return err_set(e, EIO, "S3 %s %s/%s: the body failed its length or ETag check",
			       x->method, c->bucket, what);
	return err_set(e, -rc, "S3 %s %s/%s: %s", x->method, c->bucket, what,
		       x->curl_err[0] ? x->curl_err : strerror(-rc));
}

static struct curl_slist *add_header(struct curl_slist *l, bool *failed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static struct curl_slist *add_header(struct curl_slist *l, bool *failed, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		*failed = true;
		return l;
	}
	struct curl_slist *nl = curl_slist_append(l, line);
	if (!nl)
		*failed = true;
	return nl ? nl : l;
}

/* Headers every request carries; payload_sha256 NULL: UNSIGNED-PAYLOAD. */
static struct curl_slist *base_headers(struct s3_client *c, const char *payload_sha256,
				       bool *failed)
{
	struct curl_slist *l = NULL;
	l = add_header(l, failed, "x-amz-content-sha256: %s",
		       payload_sha256 ? payload_sha256 : "UNSIGNED-PAYLOAD");
	if (c->token_header)
		l = add_header(l, failed, "%s", c->token_header);
	return l;
}

/* --- PUT --- */

/* SHA-256 and MD5 of a source's bytes: the first pass, so that the upload
 * that follows is signed over its payload and checked by the store. */
static int hash_source(const struct source *s, char sha_hex[SHA256_HEX_LEN + 1],
		       uint8_t md5_out[16])
{
	struct sha256 sh;
	struct md5 m;
	int rc = sha256_init(&sh);
	if (rc < 0)
		return rc;
	if ((rc = md5_init(&m)) < 0) {
		sha256_discard(&sh);
		return rc;
	}
	uint8_t *buf = s->fd >= 0 ? malloc(IO_CHUNK) : NULL;
	if (s->fd >= 0 && !buf)
		rc = -ENOMEM;
	for (uint64_t off = 0; rc == 0 && off < s->len;) {
		size_t want = s->len - off < IO_CHUNK ? (size_t)(s->len - off) : IO_CHUNK;
		const uint8_t *p;
		if (s->fd < 0) {
			p = s->mem + s->start + off;
		} else {
			ssize_t r = pread(s->fd, buf, want, (off_t)(s->start + off));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				rc = r < 0 ? -errno : -EIO;
				break;
			}
			want = (size_t)r;
			p = buf;
		}
		sha256_update(&sh, p, want);
		md5_update(&m, p, want);
		off += want;
	}
	free(buf);
	if (rc < 0) {
		sha256_discard(&sh);
		md5_discard(&m);
		return rc;
	}
	rc = sha256_final_hex(&sh, sha_hex);
	int rc2 = md5_final(&m, md5_out);
	return rc < 0 ? rc : rc2;
}

static int verify_etag_md5(struct exchange *x, void *arg)
{
	const char *want_hex = arg;
	/* RGW may answer a part or a PUT without an ETag only on old versions;
	 * when one is there it must be ours. */
	if (x->resp.etag_seen && x->resp.etag[0] && strcasecmp(x->resp.etag, want_hex) != 0)
		return -EIO;
	return 0;
}

/* PUT (or UploadPart with query) of one source, checked end to end. */
static int put_source(struct s3_client *c, const char *key, const char *query,
		      struct source *src, const char *extra_header, char etag_out[80],
		      struct err *e)
{
	char sha_hex[SHA256_HEX_LEN + 1], md5_hex[33], md5_b64[32];
	uint8_t md5[16];
	int rc = hash_source(src, sha_hex, md5);
	if (rc < 0)
		return err_set(e, -rc, "S3 PUT %s: reading the source: %s", key, strerror(-rc));
	to_hex(md5, 16, md5_hex);
	to_base64(md5, 16, md5_b64);
	bool failed = false;
	struct curl_slist *hl = base_headers(c, sha_hex, &failed);
	hl = add_header(hl, &failed, "Content-MD5: %s", md5_b64);
	hl = add_header(hl, &failed, "Content-Type: application/octet-stream");
	if (extra_header)
		hl = add_header(hl, &failed, "%s", extra_header);
	if (failed) {
		curl_slist_free_all(hl);
		return -ENOMEM;
	}
	struct exchange x = {.c = c, .method = "PUT", .key = key, .query = query,
			     .headers = hl, .src = src};
	rc = exchange(&x, S3_OP_PUT, verify_etag_md5, md5_hex, e);
	curl_slist_free_all(hl);
	if (rc == 0 && etag_out)
		snprintf(etag_out, 80, "%s", md5_hex);
	return rc;
}

struct mp_state {
	char upload_id[256];
};

static int xml_text_of(const char *xml, size_t len, const char *element, char *out,
		       size_t cap);

static int multipart_put(struct s3_client *c, const char *key, int fd, uint64_t size,
			 struct s3_object_info *info, struct err *e)
{
	uint64_t nparts = (size + c->part_size - 1) / c->part_size;
	if (nparts > MAX_PARTS)
		return err_set(e, EFBIG, "S3 PUT %s: %" PRIu64 " bytes need more than %d parts",
			       key, size, MAX_PARTS);
	/* Initiate: curl 7.88 signs a query parameter without '=' wrongly. */
	bool failed = false;
	struct curl_slist *hl = base_headers(c, NULL, &failed);
	hl = add_header(hl, &failed, "x-amz-meta-part-size: %" PRIu64, c->part_size);
	hl = add_header(hl, &failed, "Content-Type: application/octet-stream");
	if (failed) {
		curl_slist_free_all(hl);
		return -ENOMEM;
	}
	struct sink reply = {.fd = -1, .mem_max = ERROR_BODY_MAX};
	struct source empty = {.fd = -1, .mem = (const uint8_t *)"", .len = 0};
	struct exchange x = {.c = c, .method = "POST", .key = key, .query = "uploads=",
			     .headers = hl, .src = &empty, .body = &reply};
	int rc = exchange(&x, S3_OP_PUT, NULL, NULL, e);
	curl_slist_free_all(hl);
	struct mp_state mp = {""};
	if (rc == 0 && xml_text_of(reply.mem, reply.mem_len, "UploadId", mp.upload_id,
				   sizeof(mp.upload_id)) < 0)
		rc = err_set(e, EPROTO, "S3 POST %s?uploads: no UploadId in the answer", key);
	free(reply.mem);
	if (rc < 0)
		return rc;
	char id_enc[3 * sizeof(mp.upload_id)];
	if (uri_encode(id_enc, sizeof(id_enc), mp.upload_id, false) < 0)
		return err_set(e, EPROTO, "S3 POST %s?uploads: UploadId too long", key);

	/* The parts, in order; their ETags (the MD5s) build the completion. */
	char *complete = NULL;
	size_t complete_len = 0;
	FILE *cx = open_memstream(&complete, &complete_len);
	if (!cx)
		rc = -ENOMEM;
	else
		fputs("<CompleteMultipartUpload>", cx);
	for (uint64_t i = 0; rc == 0 && i < nparts; i++) {
		uint64_t off = i * c->part_size;
		struct source part = {.fd = fd, .start = off,
				      .len = size - off < c->part_size ? size - off : c->part_size};
		char query[900], etag[80];
		/* Sorted by name: partNumber before uploadId. */
		snprintf(query, sizeof(query), "partNumber=%" PRIu64 "&uploadId=%s", i + 1, id_enc);
		rc = put_source(c, key, query, &part, NULL, etag, e);
		if (rc == 0)
			fprintf(cx, "<Part><PartNumber>%" PRIu64 "</PartNumber><ETag>\"%s\"</ETag></Part>",
				i + 1, etag);
	}
	if (cx) {
		fputs("</CompleteMultipartUpload>", cx);
		if (fclose(cx) != 0 && rc == 0)
			rc = -ENOMEM;
	}
	char query[900];
	snprintf(query, sizeof(query), "uploadId=%s", id_enc);
	if (rc == 0) {
		char sha_hex[SHA256_HEX_LEN + 1];
		struct source body = {.fd = -1, .mem = (const uint8_t *)complete,
				      .len = complete_len};
		int hrc = sha256_hex_of(complete, complete_len, sha_hex);
		failed = hrc < 0;
		hl = base_headers(c, sha_hex, &failed);
		hl = add_header(hl, &failed, "Content-Type: application/xml");
		struct sink answer = {.fd = -1, .mem_max = ERROR_BODY_MAX};
		if (failed) {
			rc = -ENOMEM;
		} else {
			struct exchange cxg = {.c = c, .method = "POST", .key = key, .query = query,
					       .headers = hl, .src = &body, .body = &answer};
			rc = exchange(&cxg, S3_OP_PUT, NULL, NULL, e);
			/* S3 may answer 200 with an <Error> inside. */
			char code[64];
			if (rc == 0) {
				s3_error_code_parse(answer.mem, answer.mem_len, code, sizeof(code));
				if (code[0])
					rc = err_set(e, EIO, "S3 complete %s: %s", key, code);
			}
		}
		curl_slist_free_all(hl);
		free(answer.mem);
	}
	free(complete);
	if (rc < 0) {
		/* Abort, so the store frees the parts; its own failure changes nothing. */
		struct err ignored;
		bool f2 = false;
		struct curl_slist *al = base_headers(c, NULL, &f2);
		struct exchange ax = {.c = c, .method = "DELETE", .key = key, .query = query,
				      .headers = al, .timeout_all = true};
		if (!f2)
			exchange(&ax, S3_OP_DELETE, NULL, NULL, &ignored);
		curl_slist_free_all(al);
		return rc;
	}
	/* What a GET will see: check it, and report the stored ETag. */
	struct s3_object_info st;
	rc = s3_head(c, key, &st, e);
	if (rc == 0 && st.size != size)
		rc = err_set(e, EIO, "S3 PUT %s: stored %" PRIu64 " bytes of %" PRIu64, key,
			     st.size, size);
	if (rc == 0 && info)
		*info = st;
	return rc;
}

/* One PUT of the whole source; info gets its size and ETag. */
static int single_put(struct s3_client *c, const char *key, struct source *src,
		      struct s3_object_info *info, struct err *e)
{
	char etag[80];
	int rc = put_source(c, key, NULL, src, NULL, etag, e);
	if (rc == 0 && info) {
		memset(info, 0, sizeof(*info));
		info->size = src->len;
		snprintf(info->etag, sizeof(info->etag), "%s", etag);
	}
	return rc;
}

int s3_put_fd(struct s3_client *c, const char *key, int fd, uint64_t size,
	      struct s3_object_info *info, struct err *e)
{
	uint64_t t0 = now_us();
	int rc;
	if (size > c->multipart_threshold) {
		rc = multipart_put(c, key, fd, size, info, e);
	} else {
		struct source src = {.fd = fd, .start = 0, .len = size};
		rc = single_put(c, key, &src, info, e);
	}
	stats_record(c, S3_OP_PUT, t0, rc, rc == 0 ? size : 0);
	return rc;
}

int s3_put_mem(struct s3_client *c, const char *key, const void *data, size_t size,
	       struct s3_object_info *info, struct err *e)
{
	uint64_t t0 = now_us();
	struct source src = {.fd = -1, .mem = data, .len = size};
	int rc = single_put(c, key, &src, info, e);
	stats_record(c, S3_OP_PUT, t0, rc, rc == 0 ? size : 0);
	return rc;
}

/* --- GET / HEAD / DELETE --- */

static void fill_info(const struct response *resp, uint64_t size, struct s3_object_info *info)
{
	if (!info)
		return;
	memset(info, 0, sizeof(*info));
	info->size = size;
	snprintf(info->etag, sizeof(info->etag), "%s", resp->etag);
	if (resp->last_modified[0]) {
		time_t t = curl_getdate(resp->last_modified, NULL);
		info->mtime = t > 0 ? (int64_t)t : 0;
	}
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* The whole body arrived and its ETag is what the store announced. */
static int verify_get(struct exchange *x, void *arg)
{
	(void)arg;
	struct sink *s = x->body;
	if (x->resp.content_length < 0 || (uint64_t)x->resp.content_length != s->written)
		return -EIO;
	if (x->c->caller_verifies_content)
		return 0;
	const char *etag = x->resp.etag;
	size_t n = strlen(etag);
	uint8_t d[16];
	char hex[33];
	if (n == 32 && is_hex(etag, 32)) {
		if (md5_final(&s->whole, d) < 0)
			return -EIO;
		to_hex(d, 16, hex);
		return strcasecmp(hex, etag) == 0 ? 0 : -EIO;
	}
	const char *dash = strchr(etag, '-');
	if (dash && dash - etag == 32 && is_hex(etag, 32) && s->part_size) {
		if (s->part_fill) { /* the last, short part */
			if (md5_final(&s->part, d) < 0)
				return -EIO;
			md5_update(&s->outer, d, 16);
			s->parts++;
		}
		char want[80];
		if (md5_final(&s->outer, d) < 0)
			return -EIO;
		to_hex(d, 16, hex);
		snprintf(want, sizeof(want), "%s-%" PRIu64, hex, s->parts);
		return strcasecmp(want, etag) == 0 ? 0 : -EIO;
	}
	/* An ETag we cannot recompute (another writer's multipart object, or
	 * server-side encryption): the length check is all there is. */
	return 0;
}

static void sink_reset(struct sink *s)
{
	md5_discard(&s->whole);
	md5_discard(&s->part);
	md5_discard(&s->outer);
	s->written = s->part_fill = s->parts = s->part_size = 0;
	s->io_error = 0;
}

/* Before each GET attempt: the file and the hashes start afresh. */
static int get_prepare(struct exchange *x)
{
	struct sink *s = x->body;
	sink_reset(s);
	if (ftruncate(s->fd, 0) < 0)
		return -errno;
	return x->c->caller_verifies_content ? 0 : md5_init(&s->whole);
}

int s3_get_fd(struct s3_client *c, const char *key, int fd, struct s3_object_info *info,
	      struct err *e)
{
	uint64_t t0 = now_us();
	bool failed = false;
	struct curl_slist *hl = base_headers(c, NULL, &failed);
	if (failed) {
		curl_slist_free_all(hl);
		return -ENOMEM;
	}
	struct sink s = {.fd = fd};
	struct exchange x = {.c = c, .method = "GET", .key = key, .headers = hl, .body = &s,
			     .prepare = get_prepare};
	int rc = exchange(&x, S3_OP_GET, verify_get, NULL, e);
	uint64_t got = s.written;
	if (rc == 0)
		fill_info(&x.resp, got, info);
	else if (ftruncate(fd, 0) < 0 && rc != -EBADF)
		rc = err_set(e, errno, "S3 GET %s: cannot truncate the partial body: %m", key);
	sink_reset(&s);
	curl_slist_free_all(hl);
	stats_record(c, S3_OP_GET, t0, rc, rc == 0 ? got : 0);
	return rc;
}

/* HEAD or DELETE of a key (NULL: the bucket): no body either way.
 * attempts 0: the client's max_attempts.  resp (may be NULL) gets the answer. */
static int bodiless(struct s3_client *c, enum s3_op op, const char *method, const char *key,
		    unsigned attempts, struct response *resp, struct err *e)
{
	bool failed = false;
	struct curl_slist *hl = base_headers(c, NULL, &failed);
	if (failed) {
		curl_slist_free_all(hl);
		return -ENOMEM;
	}
	struct exchange x = {.c = c, .method = method, .key = key, .headers = hl,
			     .timeout_all = true, .attempts = attempts};
	int rc = exchange(&x, op, NULL, NULL, e);
	if (resp)
		*resp = x.resp;
	curl_slist_free_all(hl);
	return rc;
}

int s3_head(struct s3_client *c, const char *key, struct s3_object_info *info, struct err *e)
{
	uint64_t t0 = now_us();
	struct response resp;
	int rc = bodiless(c, S3_OP_HEAD, "HEAD", key, 0, &resp, e);
	if (rc == 0) {
		if (resp.content_length < 0)
			rc = err_set(e, EPROTO, "S3 HEAD %s: no Content-Length", key);
		else
			fill_info(&resp, (uint64_t)resp.content_length, info);
	}
	stats_record(c, S3_OP_HEAD, t0, rc, 0);
	return rc;
}

int s3_delete(struct s3_client *c, const char *key, struct err *e)
{
	uint64_t t0 = now_us();
	int rc = bodiless(c, S3_OP_DELETE, "DELETE", key, 0, NULL, e);
	if (rc == -ENOENT) {
		err_clear(e);
		rc = 0;
	}
	stats_record(c, S3_OP_DELETE, t0, rc, 0);
	return rc;
}

/* --- bucket --- */

int s3_ensure_bucket(struct s3_client *c, struct err *e)
{
	uint64_t t0 = now_us();
	struct err head_err;
	err_clear(&head_err);
	int rc = bodiless(c, S3_OP_BUCKET, "HEAD", NULL, 0, NULL, &head_err);
	if (rc == -ENOENT) {
		char *conf = NULL;
		if (strcmp(c->region, "us-east-1") != 0 &&
		    asprintf(&conf,
			     "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
			     "</CreateBucketConfiguration>",
			     c->region) < 0)
			conf = NULL;
		const char *body = conf ? conf : "";
		char sha_hex[SHA256_HEX_LEN + 1];
		bool failed = sha256_hex_of(body, strlen(body), sha_hex) < 0;
		struct curl_slist *hl = base_headers(c, sha_hex, &failed);
		struct source src = {.fd = -1, .mem = (const uint8_t *)body, .len = strlen(body)};
		struct exchange px = {.c = c, .method = "PUT", .key = NULL, .headers = hl,
				      .src = &src, .timeout_all = true};
		rc = failed ? -ENOMEM : exchange(&px, S3_OP_BUCKET, NULL, NULL, e);
		if (rc == -EEXIST) { /* another replica made it first */
			err_clear(e);
			rc = 0;
		}
		curl_slist_free_all(hl);
		free(conf);
	} else if (rc < 0) {
		err_set(e, -rc, "%s", head_err.msg);
	}
	stats_record(c, S3_OP_BUCKET, t0, rc, 0);
	return rc;
}

int s3_ping(struct s3_client *c, struct err *e)
{
	uint64_t t0 = now_us();
	int rc = bodiless(c, S3_OP_BUCKET, "HEAD", NULL, 1, NULL, e);
	stats_record(c, S3_OP_BUCKET, t0, rc, 0);
	return rc;
}

/* --- XML (expat) --- */

/* Parsing with expat, not by hand: S3 answers are XML with entities
 * (&quot; in every ETag), and a hand-written reader of them would be one
 * more parser of untrusted input to fuzz.  DOCTYPEs are refused, so no
 * entity can expand. */
struct xml_walk {
	XML_Parser p;
	int depth;
	char path[4][32]; /* element names down to depth 4 */
	char text[KEY_MAX + 1];
	size_t text_len;
	bool overflow;
	int rc;
	/* list */
	s3_list_fn fn;
	void *arg;
	char key[KEY_MAX + 1], etag[80];
	uint64_t size;
	int64_t mtime;
	bool stopped;
	bool *truncated;
	char *token;
	size_t token_cap;
	/* single element */
	const char *want;
	char *out;
	size_t out_cap;
	bool found;
};

/* "2026-01-01T12:00:00.000Z" (S3's LastModified): seconds, 0 if unreadable. */
static int64_t iso8601_seconds(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n < 19)
		return 0;
	if (tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t > 0 ? (int64_t)t : 0;
}

static void XMLCALL on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal)
{
	struct xml_walk *w = arg;
	(void)name, (void)sysid, (void)pubid, (void)has_internal;
	w->rc = -EPROTO;
	XML_StopParser(w->p, XML_FALSE);
}

static void XMLCALL on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_walk *w = arg;
	(void)attrs;
	if (w->depth < 4)
		snprintf(w->path[w->depth], sizeof(w->path[0]), "%s", name);
	w->depth++;
	w->text_len = 0;
	w->overflow = false;
	if (w->fn && w->depth == 2 && strcmp(name, "Contents") == 0) {
		w->key[0] = w->etag[0] = '\0';
		w->size = 0;
		w->mtime = 0;
	}
}

static void XMLCALL on_text(void *arg, const XML_Char *s, int len)
{
	struct xml_walk *w = arg;
	if (len < 0 || w->text_len + (size_t)len > KEY_MAX) {
		w->overflow = true;
		return;
	}
	memcpy(w->text + w->text_len, s, (size_t)len);
	w->text_len += (size_t)len;
}

static void stop_with(struct xml_walk *w, int rc)
{
	if (w->rc == 0)
		w->rc = rc;
	XML_StopParser(w->p, XML_FALSE);
}

static void XMLCALL on_end(void *arg, const XML_Char *name)
{
	struct xml_walk *w = arg;
	w->text[w->text_len] = '\0';
	int d = w->depth;
	w->depth--;
	if (w->want) {
		if (!w->found && strcmp(name, w->want) == 0) {
			if (!w->overflow && w->text_len < w->out_cap) {
				memcpy(w->out, w->text, w->text_len + 1);
				w->found = true;
			}
		}
		w->text_len = 0;
		return;
	}
	if (!w->fn)
		return;
	if (d == 3 && strcmp(w->path[1], "Contents") == 0) {
		if (strcmp(name, "Key") == 0) {
			if (w->overflow || w->text_len == 0)
				return stop_with(w, -EPROTO);
			memcpy(w->key, w->text, w->text_len + 1);
		} else if (strcmp(name, "Size") == 0) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(w->text, &end, 10);
			if (w->overflow || end == w->text || *end || errno || w->text[0] == '-')
				return stop_with(w, -EPROTO);
			w->size = v;
		} else if (strcmp(name, "ETag") == 0) {
			copy_header_value(w->etag, sizeof(w->etag), w->text, w->text_len);
		} else if (strcmp(name, "LastModified") == 0) {
			w->mtime = iso8601_seconds(w->text);
		}
	} else if (d == 2 && strcmp(name, "Contents") == 0) {
		if (!w->key[0])
			return stop_with(w, -EPROTO);
		struct s3_list_entry ent = {.key = w->key, .size = w->size, .etag = w->etag,
					    .mtime = w->mtime};
		int rc = w->fn(w->arg, &ent);
		if (rc != 0) {
			w->stopped = rc > 0;
			return stop_with(w, rc < 0 ? rc : 1);
		}
	} else if (d == 2 && strcmp(name, "IsTruncated") == 0) {
		*w->truncated = strcmp(w->text, "true") == 0;
	} else if (d == 2 && strcmp(name, "NextContinuationToken") == 0) {
		if (w->overflow || w->text_len >= w->token_cap)
			return stop_with(w, -EPROTO);
		memcpy(w->token, w->text, w->text_len + 1);
	}
	w->text_len = 0;
}

static int xml_walk_run(struct xml_walk *w, const char *xml, size_t len)
{
	if (len > LIST_BODY_MAX || len > INT32_MAX)
		return -EPROTO;
	w->p = XML_ParserCreate("UTF-8");
	if (!w->p)
		return -ENOMEM;
	XML_SetUserData(w->p, w);
	XML_SetElementHandler(w->p, on_start, on_end);
	XML_SetCharacterDataHandler(w->p, on_text);
	XML_SetStartDoctypeDeclHandler(w->p, on_doctype);
	enum XML_Status st = XML_Parse(w->p, xml, (int)len, XML_TRUE);
	XML_ParserFree(w->p);
	w->p = NULL;
	if (w->rc != 0)
		return w->rc;
	return st == XML_STATUS_OK ? 0 : -EPROTO;
}

static int xml_text_of(const char *xml, size_t len, const char *element, char *out, size_t cap)
{
	if (!xml || !cap)
		return -EPROTO;
	struct xml_walk w = {.want = element, .out = out, .out_cap = cap};
	out[0] = '\0';
	int rc = xml_walk_run(&w, xml, len);
	if (rc < 0 && !w.found)
		return rc;
	return w.found ? 0 : -ENOENT;
}

void s3_error_code_parse(const char *xml, size_t len, char *code, size_t cap)
{
	if (!cap)
		return;
	code[0] = '\0';
	if (!xml || !len)
		return;
	/* A truncated error body (we keep its first 64 KiB) still has its Code
	 * near the top: take it even when the document does not close. */
	if (xml_text_of(xml, len, "Code", code, cap) < 0)
		code[0] = '\0';
}

int s3_list_parse(const char *xml, size_t len, s3_list_fn fn, void *arg, bool *truncated,
		  char *next_token, size_t token_cap)
{
	if (!token_cap)
		return -EINVAL;
	*truncated = false;
	next_token[0] = '\0';
	struct xml_walk w = {.fn = fn, .arg = arg, .truncated = truncated, .token = next_token,
			     .token_cap = token_cap};
	int rc = xml_walk_run(&w, xml, len);
	if (w.stopped)
		return 1;
	return rc;
}

int s3_list(struct s3_client *c, const char *prefix, s3_list_fn fn, void *arg, struct err *e)
{
	uint64_t t0 = now_us();
	char token[TOKEN_MAX] = "", token_enc[3 * TOKEN_MAX + 1], prefix_enc[3 * KEY_MAX + 1];
	if (prefix && (strlen(prefix) > KEY_MAX ||
		       uri_encode(prefix_enc, sizeof(prefix_enc), prefix, false) < 0))
		return err_set(e, EINVAL, "S3 list: prefix too long");
	bool failed = false;
	struct curl_slist *hl = base_headers(c, NULL, &failed);
	int rc = failed ? -ENOMEM : 0;
	uint64_t pages = 0;
	while (rc == 0) {
		char *query;
		/* Parameters sorted by name, values encoded: the canonical query. */
		if (token[0] && uri_encode(token_enc, sizeof(token_enc), token, false) < 0) {
			rc = -EPROTO;
			break;
		}
		char max_keys[32] = "";
		if (c->list_page_keys)
			snprintf(max_keys, sizeof(max_keys), "&max-keys=%u", c->list_page_keys);
		if (asprintf(&query, "%s%s%slist-type=2%s%s%s",
			     token[0] ? "continuation-token=" : "", token[0] ? token_enc : "",
			     token[0] ? "&" : "", max_keys, prefix ? "&prefix=" : "",
			     prefix ? prefix_enc : "") < 0) {
			rc = -ENOMEM;
			break;
		}
		struct sink page = {.fd = -1, .mem_max = LIST_BODY_MAX};
		struct exchange x = {.c = c, .method = "GET", .key = NULL, .query = query,
				     .headers = hl, .body = &page, .timeout_all = true};
		rc = exchange(&x, S3_OP_LIST, NULL, NULL, e);
		bool truncated = false;
		char next[TOKEN_MAX];
		if (rc == 0) {
			rc = s3_list_parse(page.mem ? page.mem : "", page.mem_len, fn, arg,
					   &truncated, next, sizeof(next));
			if (rc == -EPROTO)
				err_set(e, EPROTO, "S3 list %s: unreadable ListBucketResult",
					c->bucket);
		}
		free(page.mem);
		free(query);
		pages++;
		if (rc != 0)
			break;
		if (!truncated)
			break;
		if (!next[0] || strcmp(next, token) == 0) {
			rc = err_set(e, EPROTO, "S3 list %s: truncated page without a new token",
				     c->bucket);
			break;
		}
		memcpy(token, next, sizeof(token));
	}
	curl_slist_free_all(hl);
	if (rc > 0)
		rc = 0;
	stats_record(c, S3_OP_LIST, t0, rc, 0);
	return rc;
}
