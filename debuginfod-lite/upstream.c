/* Federation: fetch a missing artifact from the --upstream servers with
 * libcurl, validate it, and keep it in the store (origin "upstream", with a
 * TTL).  Definite misses are cached for negative_ttl_s; transient trouble
 * (timeouts, 5xx, bodies that fail validation) is not cached and is
 * reported as -EAGAIN so that the caller never turns it into a miss. */
#include "debuginfod-lite/core.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <time.h>

struct fetch {
	struct blob_tmp *tmp;
	uint64_t max;
	bool too_big;
	bool html;
	char file[PATH_MAX];
	struct err *e;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;
	if (f->tmp->size + n > f->max) {
		f->too_big = true;
		return 0;
	}
	return blob_tmp_write(f->tmp, data, n, f->e) < 0 ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;
	char line[PATH_MAX + 64];
	size_t len = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
	memcpy(line, data, len);
	line[len] = 0;
	line[strcspn(line, "\r\n")] = 0;
	if (strncasecmp(line, "X-DEBUGINFOD-FILE:", 18) == 0) {
		const char *v = line + 18;
		while (*v == ' ')
			v++;
		snprintf(f->file, sizeof(f->file), "%.*s", (int)sizeof(f->file) - 1, v);
	} else if (strncasecmp(line, "Content-Type:", 13) == 0 && strcasestr(line + 13, "html")) {
		f->html = true;
	}
	return n;
}

/* Append `name` (an absolute path) with each segment escaped, keeping the
 * slashes, as libdebuginfod does. */
static int append_escaped_path(CURL *c, char *url, size_t size, const char *name)
{
	size_t len = strlen(url);
	const char *p = name;
	while (*p) {
		const char *seg = p + (*p == '/');
		const char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		char *esc = curl_easy_escape(c, seg, (int)n);
		if (!esc)
			return -ENOMEM;
		int w = snprintf(url + len, size - len, "/%s", esc);
		curl_free(esc);
		if (w < 0 || (size_t)w >= size - len)
			return -ENAMETOOLONG;
		len += (size_t)w;
		p = seg + n;
	}
	return 0;
}

static bool body_valid(const char *build_id, enum artifact_kind kind, struct fetch *f,
		       int *quality, struct err *e)
{
	if (f->html)
		return err_set(e, EBADMSG, "upstream sent an HTML page"), false;
	*quality = 1;
	if (kind != ART_DEBUGINFO && kind != ART_EXECUTABLE)
		return true;
	struct elf_object o;
	if (elf_object_open(&o, f->tmp->path, e) < 0)
		return false;
	struct elf_info info;
	elf_info_read(&o, &info);
	elf_object_close(&o);
	if (strcmp(info.build_id, build_id) != 0)
		return err_set(e, EBADMSG, "upstream ELF has build-ID '%s'", info.build_id), false;
	if (kind == ART_DEBUGINFO && info.debuginfo_quality == QUALITY_NONE)
		return err_set(e, EBADMSG, "upstream debuginfo has no debug info"), false;
	if (kind == ART_EXECUTABLE && !info.executable)
		return err_set(e, EBADMSG, "upstream executable has no code"), false;
	if (kind == ART_DEBUGINFO)
		*quality = info.debuginfo_quality;
	return true;
}

/* One GET to an upstream with what every upstream request carries: the
 * forwarding headers (loop protection: the hops so far plus the caller)
 * and the timeouts.  The body goes to on_data(arg), headers to on_head
 * (NULL: ignored); c is cleaned up; *code gets the HTTP status. */
static CURLcode perform(struct core_ctx *ctx, CURL *c, const char *url, curl_write_callback on_data,
			curl_write_callback on_head, void *arg, long *code)
{
	struct core *s = ctx->core;
	char xff[sizeof(ctx->forwarded_for) + 96], ua[sizeof(ctx->user_agent) + 16];
	snprintf(xff, sizeof(xff), "X-Forwarded-For: %s%s%s", ctx->forwarded_for,
		 ctx->forwarded_for[0] ? ", " : "", ctx->peer);
	snprintf(ua, sizeof(ua), "User-Agent: %s", ctx->user_agent);
	struct curl_slist *hdrs = curl_slist_append(NULL, xff);
	hdrs = curl_slist_append(hdrs, ua);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 6L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)s->cfg.upstream_timeout_s);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)s->cfg.upstream_timeout_s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)s->cfg.upstream_max_time_s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, arg);
	if (on_head) {
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, arg);
	}
	CURLcode cc = curl_easy_perform(c);
	*code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return cc;
}

/* One upstream: 1 stored, 0 definite 404, -EAGAIN transient. */
static int fetch_one(struct core_ctx *ctx, const char *build_id, const char *base,
		     enum artifact_kind kind, const char *name, struct err *e)
{
	struct core *s = ctx->core;
	CURL *c = curl_easy_init();
	if (!c)
		return -EAGAIN;
	char url[PATH_MAX + 512];
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	snprintf(url, sizeof(url), "%.*s/buildid/%s/%s", (int)blen, base, build_id,
		 artifact_kind_name(kind));
	if (name[0] && append_escaped_path(c, url, sizeof(url), name) < 0) {
		curl_easy_cleanup(c);
		return -EAGAIN;
	}
	struct blob_tmp tmp;
	if (store_tmp_begin(s->store, &tmp, e) < 0) {
		curl_easy_cleanup(c);
		return -EAGAIN;
	}
	struct fetch f = { .tmp = &tmp, .max = s->cfg.max_upload, .e = e };
	long code;
	CURLcode cc = perform(ctx, c, url, on_body, on_header, &f, &code);

	int rc;
	int quality = 0;
	if (cc == CURLE_OK && code == 200 && body_valid(build_id, kind, &f, &quality, e)) {
		struct artifact a;
		artifact_init(&a, build_id, kind, name, ORIGIN_UPSTREAM, quality);
		snprintf(a.file, sizeof(a.file), "%s", f.file[0] ? f.file : url);
		a.expires = s->cfg.positive_ttl_s ? (int64_t)time(NULL) + s->cfg.positive_ttl_s : 0;
		rc = store_tmp_commit(s->store, &tmp, &a, e) < 0 ? -EAGAIN : 1;
		if (rc == 1) {
			s->upstream_hits++;
			log_info("msg=\"upstream hit\" url=\"%s\" bytes=%llu", url,
				 (unsigned long long)a.size);
		}
		return rc;
	}
	blob_tmp_abort(&tmp);
	if (cc == CURLE_OK && code == 200) {
		s->upstream_rejected++;
		log_warn("msg=\"upstream body rejected\" url=\"%s\" why=\"%s\"", url, e->msg);
		return -EAGAIN;
	}
	if (cc == CURLE_OK && code == 404)
		return 0;
	s->upstream_errors++;
	log_warn("msg=\"upstream trouble\" url=\"%s\" curl=\"%s\" status=%ld%s", url,
		 curl_easy_strerror(cc), code, f.too_big ? " too_big=1" : "");
	return -EAGAIN;
}

/* How often a fetch over a cap looks for a token again. */
#define UPSTREAM_WAIT_STEP_US 50000

int upstream_take_token(struct core_ctx *ctx, struct err *e)
{
	struct core *s = ctx->core;
	/* Amplification caps.  A fetch over a cap waits for a token up to
	 * --upstream-wait, so an honest burst (gdb asking for fifty libraries)
	 * is slowed down rather than refused; one that still has none is
	 * transient trouble (a reset for debuginfod clients), never a miss, so
	 * nothing is cached and a later request may still find the artifact.
	 * Background work (no connection) answers to the global cap only. */
	uint64_t give_up_ns = now_ns() + (uint64_t)s->cfg.upstream_wait_ms * 1000000ull;
	bool delayed = false;
	for (;;) {
		enum limit_verdict v = upstream_limiter_take(&s->upstream_limit,
							     ctx->per_client_cap ? ctx->peer : NULL,
							     now_ns());
		if (v == LIMIT_PASS)
			break;
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping || now_ns() >= give_up_ns) {
			if (v == LIMIT_GLOBAL) {
				s->upstream_refused_global++;
				return err_set(e, EAGAIN, "upstream fetches over --upstream-rate");
			}
			s->upstream_refused_client++;
			return err_set(e, EAGAIN, "upstream fetches over --upstream-client-rate");
		}
		delayed = true;
		usleep(UPSTREAM_WAIT_STEP_US);
	}
	if (delayed)
		s->upstream_delayed++;
	return 0;
}

int upstream_fetch(struct core_ctx *ctx, const char *build_id, enum artifact_kind kind,
		   const char *name, struct err *e)
{
	struct core *s = ctx->core;
	bool transient = false;
	int rc = upstream_take_token(ctx, e);
	if (rc < 0)
		return rc;
	s->upstream_fetches++;
	for (int i = 0; i < s->cfg.n_upstreams; i++) {
		int got = fetch_one(ctx, build_id, s->cfg.upstreams[i], kind, name, e);
		if (got == 1)
			return 1;
		if (got < 0)
			transient = true;
	}
	if (transient)
		return -EAGAIN;
	s->upstream_misses++;
	store_miss_put(s->store, build_id, kind, name, (int64_t)time(NULL) + s->cfg.negative_ttl_s,
		       e);
	return 0;
}

/* --- /metadata --- */

struct text_body {
	struct vec bytes;
	bool too_big;
};

static size_t on_text(char *data, size_t size, size_t nmemb, void *arg)
{
	struct text_body *b = arg;
	size_t n = size * nmemb;
	if (b->bytes.len + n > UPSTREAM_METADATA_MAX) {
		b->too_big = true;
		return 0;
	}
	if (vec_reserve(&b->bytes, b->bytes.len + n + 1) < 0)
		return 0;
	memcpy((char *)b->bytes.data + b->bytes.len, data, n);
	b->bytes.len += n;
	return n;
}

int upstream_metadata(struct core_ctx *ctx, const char *base, const char *key, const char *value,
		      char **body, size_t *len, struct err *e)
{
	*body = NULL;
	CURL *c = curl_easy_init();
	if (!c)
		return err_set(e, ENOMEM, "out of memory");
	char *k = curl_easy_escape(c, key, 0), *v = curl_easy_escape(c, value, 0);
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	char *url = NULL;
	if (k && v && asprintf(&url, "%.*s/metadata?key=%s&value=%s", (int)blen, base, k, v) < 0)
		url = NULL;
	curl_free(k);
	curl_free(v);
	if (!url) {
		curl_easy_cleanup(c);
		return err_set(e, ENOMEM, "out of memory");
	}
	struct text_body b = { .too_big = false };
	vec_init(&b.bytes, 1);
	long code;
	CURLcode cc = perform(ctx, c, url, on_text, NULL, &b, &code);
	int rc = 0;
	if (cc != CURLE_OK || code != 200) {
		ctx->core->upstream_errors++;
		log_warn("msg=\"upstream metadata trouble\" url=\"%s\" curl=\"%s\" status=%ld%s", url,
			 curl_easy_strerror(cc), code, b.too_big ? " too_big=1" : "");
		rc = err_set(e, EAGAIN, "%s: %s (status %ld)", url, curl_easy_strerror(cc), code);
		vec_free(&b.bytes);
	} else {
		*len = b.bytes.len;
		*body = b.bytes.data ? b.bytes.data : strdup("");
		if (!*body)
			rc = err_set(e, ENOMEM, "out of memory");
	}
	free(url);
	return rc;
}
