/* Unwind tables by build-ID from debuginfod-lite (GET /buildid/<id>/unwind).
 *
 * Invariants:
 *  - at most one HTTP request per build-ID per run while the server answers
 *    (200 or 304 -> the table is on disk and reused; 404 -> compile locally
 *    until the retry time, which starts at retry_min (--table-retry) and
 *    doubles up to RETRY_MAX_NS; at that time table_fetcher_recheck asks
 *    again, so the agent can swap the local table for the server's);
 *  - a transport error marks the whole server down: no request at all until
 *    its retry time (backoff doubling up to RETRY_MAX_NS), so a dead server
 *    costs one timeout, not one per process start;
 *  - nothing is believed unchecked: a table, fetched or cached, is handed
 *    out only after table_check() found it well-formed, for this build-ID
 *    and this host's architecture, and at most max_table bytes.  A fetched
 *    body is held in memory (never more than max_table bytes: the cap is
 *    checked on Content-Length and again as the body grows) and written to
 *    the cache only once it passed; a rejected one counts as a 404;
 *  - the disk cache holds <id>.unwind and <id>.etag, written atomically;
 *    an entry that fails the check when read is purged (both files).  A
 *    cached table is revalidated with If-None-Match once per run, and used
 *    as is while the server is down;
 *  - the cache holds at most cache_max bytes of tables and ETags: each use
 *    sets the table's mtime, and a write first evicts the entries used
 *    least recently.  Temporary files of dead writers and ETags without a
 *    table are removed when the cache is scanned.
 * The loader validates every table again with unwind_table_open. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-hooks/agent_hooks.h"
#include "unwind-compiler/unwind_compiler.h"

#define RETRY_MIN_NS (1000000000ull)
#define RETRY_MAX_NS (300000000000ull)

/* The e_machine a table must name to be walked on this host. */
#if defined(__x86_64__)
#define HOST_ARCH UNWIND_ARCH_X86_64
#elif defined(__aarch64__)
#define HOST_ARCH UNWIND_ARCH_AARCH64
#else
#error "profiler-agent: unknown host architecture"
#endif

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
	uint64_t max_table, cache_max;
	void (*log)(void *arg, const char *msg);
	void *log_arg;
	CURL *curl;
	struct vec ids; /* struct id_entry */
	uint64_t down_until_ns, down_backoff_ns;
	uint64_t retry_min_ns; /* first retry of a table the server lacked */
	struct table_fetcher_stats st;
};

/* Why a table may not be used. */
enum verdict { TABLE_OK = 0, TABLE_TOO_BIG, TABLE_MALFORMED, TABLE_WRONG_ARCH, TABLE_WRONG_BUILD_ID };

static void say(struct table_fetcher *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct table_fetcher *f, const char *fmt, ...)
{
	if (!f->log)
		return;
	char msg[640];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->log(f->log_arg, msg);
}

/* May these bytes be loaded as build_id's table on this host?  The
 * header's build-ID and architecture first (a well-formed table of another
 * object would load and stop every walk at depth 1), then everything
 * unwind_table_open checks.  data must be 8-byte aligned (malloc'ed). */
static enum verdict table_check(const uint8_t *data, size_t size, const char *build_id,
				uint64_t max, struct err *e)
{
	if (size > max)
		return err_set(e, EFBIG, "%zu bytes, over the %llu-byte cap", size,
			       (unsigned long long)max), TABLE_TOO_BIG;
	const struct unwind_table_header *h = (const void *)data;
	if (size < sizeof(*h) || h->magic != UNWIND_TABLE_MAGIC)
		return err_set(e, EINVAL, "not an unwind table (%zu bytes)", size), TABLE_MALFORMED;
	if (h->arch != HOST_ARCH)
		return err_set(e, ENOEXEC, "header names architecture %u, this host is %u", h->arch,
			       HOST_ARCH), TABLE_WRONG_ARCH;
	char hex[BUILD_ID_HEX_MAX] = "";
	if (h->build_id_len <= sizeof(h->build_id))
		build_id_to_hex(h->build_id, h->build_id_len, hex);
	if (strcasecmp(hex, build_id) != 0)
		return err_set(e, EBADMSG, "header names build-ID '%s'", hex), TABLE_WRONG_BUILD_ID;
	struct unwind_view v;
	if (unwind_table_open(&v, data, size, e) < 0)
		return TABLE_MALFORMED;
	return TABLE_OK;
}

static void count_rejection(struct table_fetcher *f, enum verdict v)
{
	switch (v) {
	case TABLE_TOO_BIG: f->st.rejected_too_big++; break;
	case TABLE_WRONG_ARCH: f->st.rejected_arch++; break;
	case TABLE_WRONG_BUILD_ID: f->st.rejected_build_id++; break;
	case TABLE_MALFORMED: f->st.rejected_malformed++; break;
	case TABLE_OK: break;
	}
}

/* ---- the disk cache ---- */

static void cache_path(const struct table_fetcher *f, const char *build_id, const char *ext,
		       char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.%s", f->cache_dir, build_id, ext);
}

static void cache_remove(const struct table_fetcher *f, const char *build_id)
{
	char path[4096];
	cache_path(f, build_id, "unwind", path, sizeof(path));
	unlink(path);
	cache_path(f, build_id, "etag", path, sizeof(path));
	unlink(path);
}

/* The cached table of build_id, checked; a bad entry is purged.  Each use
 * moves the entry to the young end of the LRU (its mtime). */
static int cache_load(struct table_fetcher *f, const char *build_id, uint8_t **data,
		      size_t *size)
{
	if (!f->cache_dir)
		return -ENOENT;
	char path[4096];
	cache_path(f, build_id, "unwind", path, sizeof(path));
	struct err e = { { 0 } };
	uint8_t *buf = NULL;
	size_t len = 0;
	/* One byte over the cap reads as "too big" without reading it all. */
	int rc = read_file(path, f->max_table, &buf, &len, &e);
	if (rc == -ENOENT)
		return rc;
	enum verdict v = rc < 0 ? TABLE_MALFORMED : table_check(buf, len, build_id, f->max_table, &e);
	if (rc == -EFBIG)
		v = TABLE_TOO_BIG;
	if (v != TABLE_OK) {
		free(buf);
		cache_remove(f, build_id);
		f->st.cache_purged++;
		say(f, "cached table %s purged: %s", path, e.msg);
		return -ENOENT;
	}
	utimensat(AT_FDCWD, path, NULL, 0);
	*data = buf;
	*size = len;
	return 0;
}

struct cache_entry {
	char build_id[BUILD_ID_HEX_MAX];
	uint64_t bytes; /* table + ETag */
	struct timespec used;
};

static int by_use(const void *a, const void *b)
{
	const struct timespec *x = &((const struct cache_entry *)a)->used;
	const struct timespec *y = &((const struct cache_entry *)b)->used;
	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Is name "<build-id hex>.<ext>" (ext "unwind" or "etag")?  The stem in id. */
static const char *cache_name(const char *name, char *id)
{
	const char *dot = strchr(name, '.');
	uint8_t raw[BUILD_ID_MAX];
	size_t n;
	if (!dot || (size_t)(dot - name) >= BUILD_ID_HEX_MAX)
		return NULL;
	memcpy(id, name, (size_t)(dot - name));
	id[dot - name] = 0;
	if (build_id_from_hex(id, raw, &n) < 0)
		return NULL;
	if (!strncmp(dot, ".unwind", 7))
		return dot + 7;
	if (!strncmp(dot, ".etag", 5))
		return dot + 5;
	return NULL;
}

/* A "<id>.<ext>.tmp.<pid>" left by write_file_atomic: stray unless its
 * writer still runs (another agent sharing the cache). */
static bool stray_tmp(const char *rest)
{
	if (strncmp(rest, ".tmp.", 5))
		return false;
	char *end;
	long pid = strtol(rest + 5, &end, 10);
	if (*end || pid <= 0)
		return false;
	return pid == getpid() || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

/* Scan the cache: remove strays, then evict the least recently used
 * entries until `need` more bytes fit (keep_id's entry is about to be
 * replaced, so it neither counts nor goes).  Leaves the bytes in st. */
static void cache_make_room(struct table_fetcher *f, uint64_t need, const char *keep_id)
{
	DIR *d = opendir(f->cache_dir);
	if (!d)
		return;
	struct vec ents;
	vec_init(&ents, sizeof(struct cache_entry));
	uint64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char id[BUILD_ID_HEX_MAX];
		const char *rest = cache_name(de->d_name, id);
		struct stat sb, tb;
		if (!rest || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		bool is_table = !strncmp(de->d_name + strlen(id), ".unwind", 7);
		char table[BUILD_ID_HEX_MAX + 8];
		snprintf(table, sizeof(table), "%s.unwind", id);
		bool stray = *rest ? stray_tmp(rest)
				   : !is_table && fstatat(dirfd(d), table, &tb, AT_SYMLINK_NOFOLLOW) < 0;
		if (stray) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				f->st.cache_strays++;
			continue;
		}
		if (*rest || (keep_id && !strcmp(id, keep_id)))
			continue; /* a live writer's file; the entry being replaced */
		total += (uint64_t)sb.st_size;
		if (!is_table)
			continue; /* its bytes count; it goes with its table */
		struct cache_entry *ce = vec_push(&ents);
		if (!ce)
			continue;
		snprintf(ce->build_id, sizeof(ce->build_id), "%s", id);
		ce->used = sb.st_mtim;
		ce->bytes = (uint64_t)sb.st_size;
		char etag[BUILD_ID_HEX_MAX + 8];
		snprintf(etag, sizeof(etag), "%s.etag", id);
		if (fstatat(dirfd(d), etag, &tb, AT_SYMLINK_NOFOLLOW) == 0)
			ce->bytes += (uint64_t)tb.st_size;
	}
	closedir(d);
	if (ents.len)
		qsort(ents.data, ents.len, sizeof(struct cache_entry), by_use);
	for (size_t i = 0; i < ents.len && total + need > f->cache_max; i++) {
		struct cache_entry *ce = &VEC_AT(&ents, struct cache_entry, i);
		cache_remove(f, ce->build_id);
		total -= ce->bytes < total ? ce->bytes : total;
		f->st.cache_evictions++;
	}
	vec_free(&ents);
	f->st.cache_bytes = total;
}

int table_fetcher_new(struct table_fetcher **out, const struct table_fetcher_options *opt,
		      struct err *e)
{
	struct table_fetcher *f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, ENOMEM, "out of memory");
	vec_init(&f->ids, sizeof(struct id_entry));
	f->timeout_ms = opt->timeout_ms ? opt->timeout_ms : 5000;
	f->max_table = opt->max_table_bytes ? opt->max_table_bytes : TABLE_FETCHER_MAX_TABLE_DEFAULT;
	f->cache_max = opt->cache_max_bytes ? opt->cache_max_bytes : TABLE_FETCHER_CACHE_MAX_DEFAULT;
	f->retry_min_ns = (opt->retry_min_s ? opt->retry_min_s : TABLE_FETCHER_RETRY_DEFAULT_S) *
			  RETRY_MIN_NS;
	f->log = opt->log;
	f->log_arg = opt->log_arg;
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
		/* Leftovers of earlier runs, and a limit lowered since. */
		cache_make_room(f, 0, NULL);
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

/* A fetched body: never more than max bytes in memory. */
struct body {
	uint8_t *data;
	size_t len, cap;
	uint64_t max;
	bool too_big;
	char etag[256];
};

static size_t on_body(char *ptr, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = sz * n;
	if (add > b->max - b->len) {
		b->too_big = true; /* chunked, or a Content-Length that lied */
		return 0;
	}
	if (b->len + add > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + add)
			cap *= 2;
		if (cap > b->max)
			cap = (size_t)b->max;
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
		if (vl < sizeof(b->etag) && !memchr(v, '\r', vl) && !memchr(v, '\n', vl)) {
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

/* One GET, revalidating the cached copy when there is a valid one.
 * Returns the HTTP status (200/304/…), -EFBIG for a body over the cap
 * (refused on its Content-Length, or cut off as it grew), or another
 * -errno on a transport failure. */
static int request(struct table_fetcher *f, struct id_entry *x, bool revalidate,
		   struct body *b, struct err *e)
{
	char url[1024], etag[300] = "", tag_path[4096];
	snprintf(url, sizeof(url), "%s/buildid/%s/unwind", f->server, x->build_id);
	struct curl_slist *hdrs = NULL;
	if (f->cache_dir && revalidate) {
		cache_path(f, x->build_id, "etag", tag_path, sizeof(tag_path));
		uint8_t *tag = NULL;
		size_t tag_len = 0;
		struct err ignore = { { 0 } };
		if (read_file(tag_path, 255, &tag, &tag_len, &ignore) == 0 && tag_len &&
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
	/* A Content-Length over the cap ends the transfer before the body. */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "profiler-agent/0.1");
	f->st.requests++;
	x->requests++;
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		if (b->too_big || cc == CURLE_FILESIZE_EXCEEDED)
			return err_set(e, EFBIG, "body over the %llu-byte cap",
				       (unsigned long long)b->max);
		f->st.transport_errors++;
		return err_set(e, ECONNREFUSED, "%s: %s", url, curl_easy_strerror(cc));
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return (int)status;
}

/* Keep a checked table (atomic) with its ETag, after making room. */
static void cache_store(struct table_fetcher *f, const char *build_id, const struct body *b)
{
	if (!f->cache_dir)
		return;
	uint64_t need = b->len + strlen(b->etag);
	if (need > f->cache_max) {
		f->st.cache_skipped++;
		return;
	}
	cache_make_room(f, need, build_id);
	char path[4096];
	struct err ignore = { { 0 } };
	cache_path(f, build_id, "etag", path, sizeof(path));
	unlink(path); /* never an old ETag beside a new table */
	cache_path(f, build_id, "unwind", path, sizeof(path));
	if (write_file_atomic(path, b->data, b->len, 0644, &ignore) < 0)
		return;
	f->st.cache_bytes += b->len;
	cache_path(f, build_id, "etag", path, sizeof(path));
	if (b->etag[0] && write_file_atomic(path, b->etag, strlen(b->etag), 0644, &ignore) == 0)
		f->st.cache_bytes += strlen(b->etag);
}

/* When to ask again for a table compiled here: doubling from --table-retry. */
static void schedule_retry(struct table_fetcher *f, struct id_entry *x, uint64_t now)
{
	x->backoff_ns = x->backoff_ns ? x->backoff_ns * 2 : f->retry_min_ns;
	if (x->backoff_ns > RETRY_MAX_NS)
		x->backoff_ns = RETRY_MAX_NS;
	x->retry_at_ns = now + x->backoff_ns;
}

/* The server lacks build_id, failed, or sent a table we refused: compile
 * locally, ask again later. */
static void mark_missing(struct table_fetcher *f, struct id_entry *x, uint64_t now)
{
	x->state = ID_MISSING;
	schedule_retry(f, x, now);
}

/* Ask the server for build_id's table (revalidating the cached copy when
 * there is one).  0: a checked table in *data (cached); 1: 304, the cached
 * copy stands; -ENOENT: none (state and backoffs updated). */
static int ask_server(struct table_fetcher *f, struct id_entry *x, bool have_cached,
		      uint64_t now, uint8_t **data, size_t *size)
{
	struct body b = { .max = f->max_table };
	struct err re = { { 0 } };
	int status = request(f, x, have_cached, &b, &re);
	enum verdict v = status == -EFBIG ? TABLE_TOO_BIG : TABLE_OK;
	if (status == 200 &&
	    (v = table_check(b.data, b.len, x->build_id, f->max_table, &re)) == TABLE_OK) {
		f->st.ok_200++;
		cache_store(f, x->build_id, &b);
		x->state = ID_ON_DISK;
		f->down_backoff_ns = 0;
		*data = b.data;
		*size = b.len;
		return 0;
	}
	free(b.data);
	if (v != TABLE_OK) {
		/* Never loaded, never cached: as if the server had none. */
		if (status == 200)
			f->st.ok_200++;
		count_rejection(f, v);
		say(f, "table of %s from %s rejected: %s", x->build_id, f->server, re.msg);
		mark_missing(f, x, now);
		f->down_backoff_ns = 0;
	} else if (status == 304 && have_cached) {
		f->st.not_modified_304++;
		f->down_backoff_ns = 0;
		x->state = ID_ON_DISK;
		return 1;
	} else if (status < 0) {
		server_down(f);
		/* A new process still asks once the server is up again; the
		 * recheck of this table waits for its own retry time too. */
		schedule_retry(f, x, now);
	} else {
		if (status == 404)
			f->st.not_found_404++;
		else
			f->st.other_status++;
		mark_missing(f, x, now);
	}
	return -ENOENT;
}

int table_fetcher_get(void *fetcher, const char *build_id, const char *path, uint8_t **data,
		      size_t *size, struct err *e)
{
	struct table_fetcher *f = fetcher;
	struct id_entry *x = id_entry(f, build_id);
	(void)path;
	if (!x)
		return err_set(e, ENOMEM, "out of memory");
	uint64_t now = now_ns();
	if (x->state == ID_ON_DISK) {
		if (cache_load(f, build_id, data, size) == 0) {
			f->st.disk_hits++;
			return 0;
		}
		x->state = ID_NEW; /* removed (or purged) under us: ask again */
	}
	/* The cached copy is checked before it is used or revalidated: a
	 * bad one is gone by now, and is fetched anew without If-None-Match. */
	uint8_t *cached = NULL;
	size_t cached_size = 0;
	bool have_cached = cache_load(f, build_id, &cached, &cached_size) == 0;
	bool may_ask = f->server && now >= f->down_until_ns &&
		       (x->state == ID_NEW || now >= x->retry_at_ns);
	if (may_ask && ask_server(f, x, have_cached, now, data, size) == 0) {
		free(cached);
		return 0;
	}
	/* Server down, known to lack it, or refused: a cached copy that
	 * passed the check is still the right table (immutable per build-ID). */
	if (have_cached) {
		f->st.disk_hits++;
		*data = cached;
		*size = cached_size;
		return 0;
	}
	/* Compiled here: table_fetcher_recheck asks again in time, even for
	 * a table not asked for now because the server was down. */
	if (x->retry_at_ns <= now)
		schedule_retry(f, x, now);
	f->st.fallbacks++;
	return -ENOENT;
}

bool table_fetcher_recheck_due(const struct table_fetcher *f)
{
	uint64_t now = now_ns();
	if (!f->server || now < f->down_until_ns)
		return false;
	for (size_t i = 0; i < f->ids.len; i++) {
		const struct id_entry *x = &VEC_AT(&f->ids, struct id_entry, i);
		if (x->state != ID_ON_DISK && x->retry_at_ns && now >= x->retry_at_ns)
			return true;
	}
	return false;
}

void table_fetcher_recheck_done(struct table_fetcher *f)
{
	uint64_t now = now_ns();
	for (size_t i = 0; i < f->ids.len; i++) {
		struct id_entry *x = &VEC_AT(&f->ids, struct id_entry, i);
		if (x->state != ID_ON_DISK && x->retry_at_ns && now >= x->retry_at_ns)
			schedule_retry(f, x, now);
	}
}

int table_fetcher_recheck(struct table_fetcher *f, const char *build_id, uint8_t **data,
			  size_t *size)
{
	struct id_entry *x = NULL;
	for (size_t i = 0; i < f->ids.len && !x; i++)
		if (!strcmp(VEC_AT(&f->ids, struct id_entry, i).build_id, build_id))
			x = &VEC_AT(&f->ids, struct id_entry, i);
	uint64_t now = now_ns();
	/* Only a table the server lacked or could not send (it was down), once
	 * its retry time and the server's have come: at most one request per
	 * backoff step, never one per call. */
	if (!x || x->state == ID_ON_DISK || !f->server || now < f->down_until_ns ||
	    now < x->retry_at_ns)
		return -EAGAIN;
	return ask_server(f, x, false, now, data, size) == 0 ? 0 : -ENOENT;
}
