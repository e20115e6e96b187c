/* Unwind tables by build-ID from debuginfod-lite (GET /buildid/<id>/unwind).
 *
 * Invariants:
 *  - at most one HTTP request per build-ID per run while the server answers
 *    (200 or 304 -> the table is on disk and reused; 404 -> compile locally
 *    until the retry time, which doubles up to RETRY_MAX_NS);
 *  - a transport error marks the whole server down: no request at all until
 *    its retry time (backoff doubling up to RETRY_MAX_NS), so a dead server
 *    costs one timeout, not one per process start;
 *  - the disk cache holds <id>.unwind and <id>.etag, written atomically; a
 *    cached table is revalidated with If-None-Match once per run, and used
 *    as is while the server is down.
 * The loader validates every table with unwind_table_open. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-hooks/agent_hooks.h"

#define MAX_TABLE_BYTES (256u << 20)
#define RETRY_MIN_NS (1000000000ull)
#define RETRY_MAX_NS (300000000000ull)

enum id_state { ID_NEW = 0, ID_ON_DISK, ID_MISSING };

struct id_entry {
	char build_id[BUILD_ID_HEX_MAX];
	uint8_t state;
	uint32_t requests;
	uint64_t retry_at_ns, backoff_ns;
};

struct table_fetcher {
	char *server;
	char *cache_dir;
	unsigned timeout_ms;
	CURL *curl;
	struct vec ids; /* struct id_entry */
	uint64_t down_until_ns, down_backoff_ns;
	struct table_fetcher_stats st;
};

int table_fetcher_new(struct table_fetcher **out, const struct table_fetcher_options *opt,
		      struct err *e)
{
	struct table_fetcher *f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, ENOMEM, "out of memory");
	vec_init(&f->ids, sizeof(struct id_entry));
	f->timeout_ms = opt->timeout_ms ? opt->timeout_ms : 5000;
	if (opt->server) {
		size_t n = strlen(opt->server);
		while (n && opt->server[n - 1] == '/')
			n--;
		f->server = strndup(opt->server, n);
		f->curl = curl_easy_init();
		if (!f->server || !f->curl) {
			table_fetcher_free(f);
			return err_set(e, ENOMEM, "cannot set up libcurl");
		}
	}
	if (opt->cache_dir) {
		f->cache_dir = strdup(opt->cache_dir);
		if (!f->cache_dir) {
			table_fetcher_free(f);
			return err_set(e, ENOMEM, "out of memory");
		}
		if (mkdir(opt->cache_dir, 0755) < 0 && errno != EEXIST) {
			int rc = errno;
			table_fetcher_free(f);
			return err_set(e, rc, "cache directory %s: %s", opt->cache_dir, strerror(rc));
		}
	}
	*out = f;
	return 0;
}

void table_fetcher_free(struct table_fetcher *f)
{
	if (!f)
		return;
	if (f->curl)
		curl_easy_cleanup(f->curl);
	vec_free(&f->ids);
	free(f->server);
	free(f->cache_dir);
	free(f);
}

void table_fetcher_stats(const struct table_fetcher *f, struct table_fetcher_stats *st)
{
	*st = f->st;
	st->build_ids = f->ids.len;
	st->max_requests_per_build_id = 0;
	for (size_t i = 0; i < f->ids.len; i++) {
		uint32_t r = VEC_AT(&f->ids, struct id_entry, i).requests;
		if (r > st->max_requests_per_build_id)
			st->max_requests_per_build_id = r;
	}
}

static struct id_entry *id_entry(struct table_fetcher *f, const char *build_id)
{
	for (size_t i = 0; i < f->ids.len; i++) {
		struct id_entry *x = &VEC_AT(&f->ids, struct id_entry, i);
		if (!strcmp(x->build_id, build_id))
			return x;
	}
	struct id_entry *x = vec_push(&f->ids);
	if (x)
		snprintf(x->build_id, sizeof(x->build_id), "%s", build_id);
	return x;
}

static void cache_path(const struct table_fetcher *f, const char *build_id, const char *ext,
		       char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.%s", f->cache_dir, build_id, ext);
}

static int read_cached(const struct table_fetcher *f, const char *build_id, uint8_t **data,
		       size_t *size, struct err *e)
{
	if (!f->cache_dir)
		return -ENOENT;
	char path[4096];
	cache_path(f, build_id, "unwind", path, sizeof(path));
	return read_file(path, MAX_TABLE_BYTES, data, size, e);
}

struct body {
	uint8_t *data;
	size_t len, cap;
	bool too_big;
	char etag[256];
};

static size_t on_body(char *ptr, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = sz * n;
	if (add > MAX_TABLE_BYTES - b->len) {
		b->too_big = true;
		return 0;
	}
	if (b->len + add > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + add)
			cap *= 2;
		uint8_t *nd = realloc(b->data, cap);
		if (!nd)
			return 0;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, add);
	b->len += add;
	return add;
}

static size_t on_header(char *buf, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = sz * n;
	if (len > 5 && !strncasecmp(buf, "ETag:", 5)) {
		const char *v = buf + 5;
		size_t vl = len - 5;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(b->etag)) {
			memcpy(b->etag, v, vl);
			b->etag[vl] = 0;
		}
	}
	return len;
}

static void server_down(struct table_fetcher *f)
{
	f->down_backoff_ns = f->down_backoff_ns ? f->down_backoff_ns * 2 : RETRY_MIN_NS;
	if (f->down_backoff_ns > RETRY_MAX_NS)
		f->down_backoff_ns = RETRY_MAX_NS;
	f->down_until_ns = now_ns() + f->down_backoff_ns;
}

/* One GET, revalidating the cached copy when there is one.  Returns the
 * HTTP status (200/304/…), or -errno on a transport failure. */
static int request(struct table_fetcher *f, struct id_entry *x, struct body *b, struct err *e)
{
	char url[1024], etag[300] = "", tag_path[4096], table_path[4096];
	snprintf(url, sizeof(url), "%s/buildid/%s/unwind", f->server, x->build_id);
	struct curl_slist *hdrs = NULL;
	if (f->cache_dir) {
		/* Revalidate only a copy we still have. */
		cache_path(f, x->build_id, "etag", tag_path, sizeof(tag_path));
		cache_path(f, x->build_id, "unwind", table_path, sizeof(table_path));
		uint8_t *tag = NULL;
		size_t tag_len = 0;
		struct err ignore = { { 0 } };
		struct stat sb;
		if (stat(table_path, &sb) == 0 &&
		    read_file(tag_path, 255, &tag, &tag_len, &ignore) == 0 && tag_len &&
		    !memchr(tag, '\n', tag_len) && !memchr(tag, '\r', tag_len)) {
			snprintf(etag, sizeof(etag), "If-None-Match: %.*s", (int)tag_len, (char *)tag);
			hdrs = curl_slist_append(hdrs, etag);
		}
		free(tag);
	}
	CURL *c = f->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "profiler-agent/0.1");
	f->st.requests++;
	x->requests++;
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		if (b->too_big)
			return err_set(e, EFBIG, "%s: table larger than %u bytes", url, MAX_TABLE_BYTES);
		f->st.transport_errors++;
		return err_set(e, ECONNREFUSED, "%s: %s", url, curl_easy_strerror(cc));
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return (int)status;
}

/* Keep the body as the cached table (atomic) with its ETag. */
static void store_cached(struct table_fetcher *f, const char *build_id, const struct body *b)
{
	if (!f->cache_dir)
		return;
	char path[4096];
	struct err ignore = { { 0 } };
	cache_path(f, build_id, "unwind", path, sizeof(path));
	if (write_file_atomic(path, b->data, b->len, 0644, &ignore) < 0)
		return;
	cache_path(f, build_id, "etag", path, sizeof(path));
	if (b->etag[0])
		write_file_atomic(path, b->etag, strlen(b->etag), 0644, &ignore);
	else
		unlink(path);
}

int table_fetcher_get(void *fetcher, const char *build_id, const char *path, uint8_t **data,
		      size_t *size, struct err *e)
{
	struct table_fetcher *f = fetcher;
	struct id_entry *x = id_entry(f, build_id);
	if (!x)
		return err_set(e, ENOMEM, "out of memory");
	uint64_t now = now_ns();
	if (x->state == ID_ON_DISK) {
		if (read_cached(f, build_id, data, size, e) == 0) {
			f->st.disk_hits++;
			return 0;
		}
		x->state = ID_NEW; /* cache removed under us: ask again */
	}
	bool may_ask = f->server && now >= f->down_until_ns &&
		       (x->state == ID_NEW || now >= x->retry_at_ns);
	if (!may_ask) {
		/* Server down or known to lack it: a stale cached copy is still
		 * the right table (tables are immutable per build-ID). */
		if (read_cached(f, build_id, data, size, e) == 0) {
			f->st.disk_hits++;
			return 0;
		}
		f->st.fallbacks++;
		return -ENOENT;
	}
	struct body b = { 0 };
	struct err re = { { 0 } };
	int status = request(f, x, &b, &re);
	int rc;
	if (status == 200 && b.len) {
		f->st.ok_200++;
		store_cached(f, build_id, &b);
		x->state = ID_ON_DISK;
		f->down_backoff_ns = 0;
		*data = b.data;
		*size = b.len;
		return 0;
	}
	free(b.data);
	if (status == 304) {
		f->st.not_modified_304++;
		f->down_backoff_ns = 0;
		if ((rc = read_cached(f, build_id, data, size, e)) == 0) {
			x->state = ID_ON_DISK;
			f->st.disk_hits++;
			return 0;
		}
		return rc;
	}
	if (status < 0) {
		server_down(f);
	} else {
		if (status == 404)
			f->st.not_found_404++;
		else
			f->st.other_status++;
		/* The server lacks it (or failed): retry later, doubling. */
		x->state = ID_MISSING;
		x->backoff_ns = x->backoff_ns ? x->backoff_ns * 2 : 30 * RETRY_MIN_NS;
		if (x->backoff_ns > RETRY_MAX_NS)
			x->backoff_ns = RETRY_MAX_NS;
		x->retry_at_ns = now + x->backoff_ns;
	}
	if (read_cached(f, build_id, data, size, e) == 0) {
		f->st.disk_hits++;
		return 0;
	}
	f->st.fallbacks++;
	(void)path;
	return -ENOENT;
}
