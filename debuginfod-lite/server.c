/* debuginfod-lite: daemon setup, routing, responses, slow work. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/body_cache.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/parse.h"
#include "debuginfod-lite/profiles.h"
#include "debuginfod-lite/scan.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static enum MHD_Result handle_root(struct request *r)
{
	return respond_text(r, 200, "debuginfod-lite (debuginfod-compatible) 0.1\n");
}

/* The route table: first match wins.  GET routes also answer HEAD. */
const struct route server_routes[] = {
	{ METHOD_GET | METHOD_HEAD, "/buildid/", "buildid", BODY_NONE, 0, NULL, NULL,
	  handle_buildid, ACCESS_ARTIFACT },
	{ METHOD_PUT, "/buildid/", "upload", BODY_STREAM, 0, upload_begin, upload_chunk,
	  upload_finish, ACCESS_OWN },
	{ METHOD_POST, "/symbolize", "symbolize", BODY_BUFFER, 16u << 20, NULL, NULL,
	  handle_symbolize, ACCESS_READ },
	{ METHOD_POST, "/profiles", "profiles_post", BODY_STREAM, 0, profiles_begin, profiles_chunk,
	  handle_profiles_post, ACCESS_OWN },
	{ METHOD_GET | METHOD_HEAD, "/profiles", "profiles", BODY_NONE, 0, NULL, NULL,
	  handle_profiles_get, ACCESS_READ },
	{ METHOD_GET | METHOD_HEAD, "/profiles/list", "profiles_list", BODY_NONE, 0, NULL, NULL,
	  handle_profiles_list, ACCESS_READ },
	{ METHOD_POST, "/perf-maps", "perf_maps_post", BODY_STREAM, 0, profiles_begin,
	  profiles_chunk, handle_perf_map_post, ACCESS_OWN },
	{ METHOD_GET | METHOD_HEAD, "/perf-maps/", "perf_maps", BODY_NONE, 0, NULL, NULL,
	  handle_perf_map_get, ACCESS_READ },
	{ METHOD_POST, "/symbolz", "symbolz", BODY_BUFFER, 4u << 20, NULL, NULL, handle_symbolz,
	  ACCESS_READ },
	{ METHOD_GET | METHOD_HEAD, "/metadata", "metadata", BODY_NONE, 0, NULL, NULL,
	  handle_metadata, ACCESS_ARTIFACT },
	{ METHOD_GET | METHOD_HEAD, "/metrics", "metrics", BODY_NONE, 0, NULL, NULL,
	  handle_metrics, ACCESS_ARTIFACT },
	/* Open even under --private: health checks with nothing to leak. */
	{ METHOD_GET | METHOD_HEAD, "/healthz", "healthz", BODY_NONE, 0, NULL, NULL, handle_healthz,
	  ACCESS_OWN },
	{ METHOD_GET | METHOD_HEAD, "/readyz", "readyz", BODY_NONE, 0, NULL, NULL, handle_readyz,
	  ACCESS_OWN },
	{ METHOD_GET | METHOD_HEAD, "/", "root", BODY_NONE, 0, NULL, NULL, handle_root, ACCESS_OWN },
};
const int server_route_count = (int)ARRAY_SIZE(server_routes);

const char *request_header(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* --- responses --- */

static enum MHD_Result queue(struct request *r, unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	r->status = (int)status;
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result respond_buffer(struct request *r, unsigned status, const char *content_type,
			       void *data, size_t size, bool free_data)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		size, data, free_data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	if (!resp) {
		if (free_data)
			free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	r->bytes = size;
	return queue(r, status, resp);
}

enum MHD_Result respond_compressible(struct request *r, unsigned status, const char *content_type,
				     void *data, size_t size)
{
	void *z;
	size_t zsize;
	const char *coding;
	if (!compress_for_client(r, data, size, &z, &zsize, &coding)) {
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(size, data, MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(data);
			return MHD_NO;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
		r->bytes = size;
		return queue(r, status, resp);
	}
	free(data);
	struct MHD_Response *resp = MHD_create_response_from_buffer(zsize, z, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(z);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, coding);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	r->bytes = zsize;
	return queue(r, status, resp);
}

enum MHD_Result respond_text(struct request *r, unsigned status, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return respond_buffer(r, status, "text/plain", text, (size_t)n, true);
}

enum MHD_Result respond_json(struct request *r, unsigned status, const char *json)
{
	return respond_buffer(r, status, "application/json", (void *)json, strlen(json), false);
}

enum MHD_Result respond_reset(struct request *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	r->status = 0; /* logged as "reset" */
	return MHD_NO;
}

/* --- memory, heavy work, clients that leave --- */

bool heavy_begin(struct request *r)
{
	struct server *s = r->srv;
	if (r->heavy || r->heavy_queued)
		return true;
	pthread_mutex_lock(&s->lock);
	bool ok = true;
	if (s->heavy_active < s->heavy_limit) {
		s->heavy_active++;
		r->heavy = true;
	} else if (s->heavy_waiting < s->heavy_limit * HEAVY_QUEUE_PER_SLOT) {
		s->heavy_waiting++; /* slow_main waits for a slot */
		r->heavy_queued = true;
	} else {
		ok = false;
	}
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		s->heavy_refusals++;
	return ok;
}

/* On the worker thread: wait (bounded, and only while the client is still
 * there) for the slot heavy_begin queued r for. */
static bool heavy_wait(struct request *r)
{
	struct server *s = r->srv;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += HEAVY_WAIT_S;
	pthread_mutex_lock(&s->lock);
	while (s->heavy_active >= s->heavy_limit && !s->stopping) {
		/* Wake at least every second to look at the client. */
		struct timespec tick;
		clock_gettime(CLOCK_REALTIME, &tick);
		tick.tv_sec += 1;
		bool last = tick.tv_sec >= until.tv_sec;
		pthread_cond_timedwait(&s->cond, &s->lock, last ? &until : &tick);
		if (s->heavy_active < s->heavy_limit)
			break;
		pthread_mutex_unlock(&s->lock);
		bool gone = client_gone(r);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		pthread_mutex_lock(&s->lock);
		if (gone || now.tv_sec >= until.tv_sec)
			break;
	}
	bool ok = s->heavy_active < s->heavy_limit && !s->stopping;
	if (ok)
		s->heavy_active++;
	s->heavy_waiting--;
	r->heavy_queued = false;
	r->heavy = ok;
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		s->heavy_refusals++;
	return ok;
}

static void heavy_end(struct request *r)
{
	if (!r->heavy)
		return;
	pthread_mutex_lock(&r->srv->lock);
	r->srv->heavy_active--;
	pthread_cond_broadcast(&r->srv->cond); /* a queued request may go */
	pthread_mutex_unlock(&r->srv->lock);
	r->heavy = false;
}

enum MHD_Result respond_refusal(struct request *r, int rc, const char *why)
{
	unsigned status = rc == -EFBIG ? 413 : 503;
	r->srv->transient_refusals += status == 503;
	char *text = NULL;
	int n = asprintf(&text, "%s\n", why);
	if (n < 0)
		return MHD_NO;
	struct MHD_Response *resp =
		MHD_create_response_from_buffer((size_t)n, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (status == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
	r->bytes = (uint64_t)n;
	return queue(r, status, resp);
}

static void http_date(int64_t t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The whole file (from fd, or its cached bytes) compressed for the
 * client, or NULL (not accepted, not worth it, unreadable): then the caller
 * sends it as is. */
static struct MHD_Response *compressed_file_response(struct request *r, int fd,
						      const struct body *body, uint64_t size,
						      uint64_t *len, const char **coding)
{
	if (size < COMPRESS_MIN || size > COMPRESS_MAX || r->method == METHOD_HEAD ||
	    http_pick_coding(request_header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING)) == CODING_IDENTITY)
		return NULL;
	/* The file and its compressed copy (at most as large, or we send the
	 * file): over the budget, the file goes as is. */
	if (request_reserve(r, 2 * size) < 0)
		return NULL;
	uint8_t *data = NULL;
	if (!body) {
		if (!(data = malloc(size)))
			return NULL;
		size_t got = 0;
		while (got < size) {
			ssize_t n = pread(fd, data + got, size - got, (off_t)got);
			if (n <= 0) {
				free(data);
				return NULL;
			}
			got += (size_t)n;
		}
	}
	void *z;
	size_t zsize;
	bool ok = compress_for_client(r, body ? body->data : data, size, &z, &zsize, coding);
	free(data);
	if (!ok)
		return NULL;
	struct MHD_Response *resp = MHD_create_response_from_buffer(zsize, z, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(z);
	else
		*len = zsize;
	return resp;
}

/* Where an artifact's bytes may be kept in memory (body_cache.h): a
 * blob's hash, or a scanned file's path at its indexed time.  Local
 * sources are opened under the source rule every time: never kept. */
static bool body_key(const struct artifact *a, char *key, size_t size)
{
	if (a->size > BODY_CACHE_MAX_OBJECT || (a->kind == ART_SOURCE && a->origin == ORIGIN_SCAN))
		return false;
	int n = a->blob[0] ? snprintf(key, size, "b:%s", a->blob)
			   : snprintf(key, size, "p:%lld:%s", (long long)a->mtime, a->path);
	return n > 0 && (size_t)n < size;
}

struct body *cached_body(struct request *r, const struct artifact *a)
{
	char key[PATH_MAX + 96];
	if (!body_key(a, key, sizeof(key)))
		return NULL;
	struct stat st;
	/* A scanned file must still be the one indexed, and a stored blob
	 * still there, its use recorded for the quota's LRU; if not, the
	 * caller opens it and forgets the row. */
	if (a->origin == ORIGIN_SCAN ? stat(a->path, &st) < 0 || (uint64_t)st.st_size != a->size ||
					       (int64_t)st.st_mtime != a->mtime
				     : blob_note_use(r->srv->core->blobs, BLOB_AREA_ARTIFACTS, a->blob) < 0)
		return NULL;
	return body_cache_get(r->srv->bodies, key, a->size);
}

static void body_response_done(void *cls)
{
	body_unref(cls);
}

/* A response that sends part of a cached body and then lets go of it. */
static struct MHD_Response *body_response(struct body *b, uint64_t first, uint64_t len)
{
	return MHD_create_response_from_buffer_with_free_callback_cls(
		(size_t)len, b->data + first, &body_response_done, b);
}

/* Let go of an artifact's bytes: its open file or its cached copy. */
static void release(int fd, struct body *body)
{
	if (fd >= 0)
		close(fd);
	body_unref(body);
}

enum MHD_Result respond_artifact(struct request *r, const struct artifact *a, int fd,
				 struct body *body, uint64_t size, int64_t mtime)
{
	const char *maxsize = request_header(r, "X-DEBUGINFOD-MAXSIZE");
	if (maxsize) {
		char *end;
		errno = 0;
		unsigned long long max = strtoull(maxsize, &end, 10);
		if (!errno && end != maxsize && size > max) {
			release(fd, body);
			return respond_text(r, 406, "File too large, max size=%llu\n", max);
		}
	}
	char etag[SHA256_HEX_LEN + 16] = "";
	if (a->blob[0]) {
		snprintf(etag, sizeof(etag), "\"%s\"", a->blob);
		/* The tag of any representation (identity, -gzip, -zstd) names
		 * the same content. */
		const char *inm = request_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
		if (inm && (strstr(inm, a->blob) || strcmp(inm, "*") == 0)) {
			release(fd, body);
			struct MHD_Response *resp =
				MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
			return queue(r, 304, resp);
		}
	}
	uint64_t first = 0, last = size ? size - 1 : 0;
	int range = http_parse_range(request_header(r, MHD_HTTP_HEADER_RANGE), size, &first, &last);
	if (range < 0) {
		release(fd, body);
		char cr[64];
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		return queue(r, 416, resp);
	}
	uint64_t len = size ? last - first + 1 : 0;
	/* Text-like artifacts (sources, unwind tables, sections) are sent
	 * compressed when the client asks; debuginfo and executables go as
	 * they are: from memory when small, else by sendfile. */
	struct MHD_Response *resp = NULL;
	const char *coding = NULL;
	if (range == 0 && (a->kind == ART_SOURCE || a->kind == ART_UNWIND || a->kind == ART_SECTION))
		resp = compressed_file_response(r, fd, body, size, &len, &coding);
	char key[PATH_MAX + 96];
	if (resp) {
		release(fd, body);
		if (etag[0]) /* another representation, another tag */
			snprintf(etag, sizeof(etag), "\"%s-%s\"", a->blob, coding);
	} else if (!body && size == a->size && body_key(a, key, sizeof(key))) {
		/* Small: kept in memory from now on, header and body sent
		 * together (body_cache.h has the measurements). */
		body = body_cache_fill(r->srv->bodies, key, size, mtime, fd);
	}
	if (!resp && body) {
		if (fd >= 0)
			close(fd);
		mtime = body->mtime;
		if (!(resp = body_response(body, first, len)))
			body_unref(body);
	} else if (!resp) {
		resp = MHD_create_response_from_fd_at_offset64(len, fd, first);
		if (!resp)
			close(fd);
	}
	if (!resp)
		return MHD_NO;
	char num[32], date[64];
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	snprintf(num, sizeof(num), "%" PRIu64, size);
	MHD_add_response_header(resp, "X-DEBUGINFOD-SIZE", num);
	/* A scanned path may hold any byte but NUL: never raw in a header. */
	char file[3 * sizeof(a->file)];
	http_header_escape(a->file, file, sizeof(file));
	MHD_add_response_header(resp, "X-DEBUGINFOD-FILE", file);
	if (a->kind == ART_DEBUGINFO || a->kind == ART_EXECUTABLE)
		MHD_add_response_header(resp, "X-DEBUGINFOD-LITE-QUALITY",
					a->quality >= QUALITY_DWARF ? "dwarf" : "symtab");
	http_date(mtime, date, sizeof(date));
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (etag[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	if (a->kind == ART_SOURCE || a->kind == ART_UNWIND || a->kind == ART_SECTION)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	if (coding)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, coding);
	unsigned status = 200;
	if (range > 0) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last,
			 size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		status = 206;
	}
	r->bytes = len;
	return queue(r, status, resp);
}

/* --- slow work on its own thread, connection suspended --- */

static void *slow_main(void *arg)
{
	struct request *r = arg;
	struct server *s = r->srv;
	r->slow_result = r->heavy_queued && !heavy_wait(r) ? -EBUSY : r->slow(r);
	r->slow_state = 2;
	heavy_end(r);
	/* Resume under the lock so server_stop() never sees a suspended
	 * connection without a job. */
	pthread_mutex_lock(&s->lock);
	MHD_resume_connection(r->conn);
	s->active_jobs--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

enum MHD_Result run_slow(struct request *r, slow_fn fn)
{
	struct server *s = r->srv;
	pthread_attr_t attr;
	pthread_t t;
	r->slow = fn;
	r->slow_state = 1;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		if (r->heavy_queued) {
			s->heavy_waiting--;
			r->heavy_queued = false;
		}
		pthread_mutex_unlock(&s->lock);
		return respond_reset(r);
	}
	s->active_jobs++;
	MHD_suspend_connection(r->conn);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, slow_main, r);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		MHD_resume_connection(r->conn);
		s->active_jobs--;
		if (r->heavy_queued) {
			s->heavy_waiting--;
			r->heavy_queued = false;
		}
		pthread_mutex_unlock(&s->lock);
		r->slow_state = 0;
		return respond_reset(r);
	}
	pthread_mutex_unlock(&s->lock);
	return MHD_YES;
}

/* --- dispatch --- */

static unsigned method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return METHOD_GET;
	if (strcmp(m, "HEAD") == 0)
		return METHOD_HEAD;
	if (strcmp(m, "PUT") == 0)
		return METHOD_PUT;
	if (strcmp(m, "POST") == 0)
		return METHOD_POST;
	return 0;
}

static bool path_matches(const char *pattern, const char *url)
{
	size_t n = strlen(pattern);
	if (n > 1 && pattern[n - 1] == '/')
		return strncmp(url, pattern, n) == 0;
	return strcmp(url, pattern) == 0;
}

int request_reserve_body(struct request *r, size_t len)
{
	/* Whole MiBs ahead of the buffer, so most pieces reserve nothing. */
	if (len <= r->body_reserved)
		return 0;
	uint64_t want = ((uint64_t)len + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	int rc = request_reserve(r, want - r->body_reserved);
	if (rc == 0)
		r->body_reserved = want;
	return rc;
}

/* The URL limit: MHD has already refused what does not fit its buffer. */
#define URL_MAX 4096

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct server *s = cls;
	struct request *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = s;
		r->ctx.core = s->core;
		r->conn = conn;
		r->url = url;
		r->start_ns = now_ns();
		r->route_index = -1;
		r->tmp.fd = -1;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		r->ctx.fd = ci ? ci->connect_fd : -1;
		r->method = method_bit(method);
		vec_init(&r->body, 1);
		*con_cls = r;
		bool path_known = false;
		for (int i = 0; i < server_route_count; i++) {
			if (!path_matches(server_routes[i].path, url))
				continue;
			path_known = true;
			if (server_routes[i].methods & r->method) {
				r->route = &server_routes[i];
				r->route_index = i;
				break;
			}
		}
		/* The edge first: a smuggling attempt or a control byte is
		 * refused whatever the route, before any body, and closes. */
		char why[256];
		int st = edge_check(r, why, sizeof(why));
		if (st) {
			deadline_request_in(s, conn);
			return refuse_before_body(r, (unsigned)st, why);
		}
		if (r->route && !read_authorized(r)) {
			s->reads_unauthorized++;
			deadline_request_in(s, conn);
			return refuse_before_body(r, 401, "missing or wrong bearer token\n");
		}
		if (!r->route) {
			r->body_error = path_known ? 405 : 404;
			snprintf(r->body_msg, sizeof(r->body_msg), "%s",
				 path_known ? "method not allowed" : "not found");
		} else if (strlen(url) > URL_MAX) {
			r->body_error = 414;
			snprintf(r->body_msg, sizeof(r->body_msg), "URL too long");
		}
		if (!r->route || r->route->body != BODY_BUFFER)
			deadline_request_in(s, conn);
		/* A route's begin() sees the headers before any body (and
		 * before "100 Continue"), so refusals cost no upload. */
		if (r->route && !r->body_error && r->route->begin) {
			enum MHD_Result ret = r->route->begin(r);
			if (r->status || ret == MHD_NO)
				return ret;
		}
		/* Otherwise answer on a later call: answering before the
		 * (empty) body is read would cost the keep-alive. */
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t len = *upload_data_size;
		*upload_data_size = 0;
		r->received += len;
		if (r->body_error || !r->route)
			return MHD_YES; /* discard the rest */
		if (r->route->body == BODY_STREAM) {
			int st = r->route->chunk(r, upload_data, len);
			if (st)
				r->body_error = st;
		} else if (r->route->body == BODY_BUFFER) {
			int brc;
			if (r->body.len + len > r->route->max_body) {
				r->body_error = 413;
				snprintf(r->body_msg, sizeof(r->body_msg), "body larger than %llu bytes",
					 (unsigned long long)r->route->max_body);
			} else if ((brc = request_reserve_body(r, r->body.len + len)) < 0) {
				r->body_error = brc == -EFBIG ? 413 : 503;
				snprintf(r->body_msg, sizeof(r->body_msg), "%s",
					 brc == -EFBIG ? "body larger than the memory budget"
						       : "memory budget full, retry later");
			} else if (vec_reserve(&r->body, r->body.len + len) < 0) {
				r->body_error = 503;
			} else {
				memcpy((uint8_t *)r->body.data + r->body.len, upload_data, len);
				r->body.len += len;
			}
		} else {
			r->body_error = 413;
			snprintf(r->body_msg, sizeof(r->body_msg), "this endpoint takes no body");
		}
		return MHD_YES;
	}
	deadline_request_in(s, conn);
	if (r->body_error == 503) /* out of memory for the body: may fit later */
		return respond_refusal(r, -EBUSY,
				       r->body_msg[0] ? r->body_msg : "out of memory, retry later");
	if (r->body_error)
		return respond_text(r, (unsigned)r->body_error, "%s\n",
				    r->body_msg[0] ? r->body_msg : "request refused");
	return r->route->handle(r);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;
	if (!r)
		return;
	metrics_record(r);
	deadline_request_done(r->srv, conn);
	if (r->srv->cfg.verbose)
		log_info("method=%s url=\"%s\" status=%d bytes=%llu us=%llu",
			 r->method == METHOD_GET ? "GET" : r->method == METHOD_HEAD ? "HEAD"
			 : r->method == METHOD_PUT ? "PUT" : r->method == METHOD_POST ? "POST" : "other",
			 r->url, r->status, (unsigned long long)r->bytes,
			 (unsigned long long)((now_ns() - r->start_ns) / 1000));
	if (r->tmp_open)
		blob_tmp_abort(&r->tmp);
	if (r->job && r->job_free)
		r->job_free(r->job);
	vec_free(&r->body);
	heavy_end(r);
	request_unreserve(r, r->ctx.reserved);
	free(r);
	*con_cls = NULL;
}

/* --- scanning thread --- */

static void *scanner_main(void *arg)
{
	struct server *s = arg;
	for (;;) {
		uint64_t t0 = now_ns();
		struct scan_counts c = { 0 };
		for (int i = 0; i < s->cfg.n_scan; i++) {
			struct err e = { { 0 } };
			if (scan_tree(s->core->store, s->cfg.scan_dirs[i], &c, &e) < 0)
				log_warn("msg=\"%s\"", e.msg);
			pthread_mutex_lock(&s->lock);
			bool stop = s->stopping;
			pthread_mutex_unlock(&s->lock);
			if (stop)
				return NULL;
		}
		s->scan_files = c.files;
		s->scan_indexed += c.indexed;
		if (s->cfg.n_scan)
			log_info("msg=\"scan done\" files=%llu elf=%llu indexed=%llu unchanged=%llu ms=%llu",
				 (unsigned long long)c.files, (unsigned long long)c.elf,
				 (unsigned long long)c.indexed, (unsigned long long)c.unchanged,
				 (unsigned long long)((now_ns() - t0) / 1000000));
		struct err e = { { 0 } };
		if (store_groom(s->core->store, s->cfg.quota, &e) < 0)
			log_warn("msg=\"groom: %s\"", e.msg);
		pthread_mutex_lock(&s->lock);
		if (s->cfg.rescan_s == 0 && !s->stopping) {
			while (!s->stopping && !s->rescan_now)
				pthread_cond_wait(&s->cond, &s->lock);
		} else if (!s->stopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += s->cfg.rescan_s;
			while (!s->stopping && !s->rescan_now &&
			       pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
				;
		}
		bool stop = s->stopping;
		s->rescan_now = false;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return NULL;
	}
}

/* --- start / stop --- */

static int load_tokens(char (*tokens)[SERVER_TOKEN_SIZE], int *n_tokens, const char *opt, const char *path,
		       struct err *e)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return err_set(e, errno, "%s %s: %s", opt, path, strerror(errno));
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");
		line[n] = 0;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (strlen(p) >= sizeof(tokens[0]) || *n_tokens >= SERVER_MAX_TOKENS) {
			fclose(f);
			return err_set(e, EINVAL, "%s %s: token too long or too many", opt, path);
		}
		snprintf(tokens[(*n_tokens)++], sizeof(tokens[0]), "%s", p);
	}
	fclose(f);
	if (*n_tokens == 0)
		return err_set(e, EINVAL, "%s %s: no token in it", opt, path);
	return 0;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, struct err *e)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return err_set(e, EINVAL, "--listen %s: expected ADDR:PORT", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535 || colon[1] == 0)
		return err_set(e, EINVAL, "--listen %s: bad port", listen);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (host[0] == 0 || strcmp(host, "*") == 0)
		sa->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return err_set(e, EINVAL, "--listen %s: bad IPv4 address", listen);
	return 0;
}

/* Both users of MHD's connection notifications. */
static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode code)
{
	edge_notify(cls, conn, code);
	deadline_notify(cls, conn, socket_context, code);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	log_warn("msg=\"mhd: %s\"", msg);
}

/* Everything server_start set up once no thread runs: its failure path
 * and server_stop end here. */
static void server_free(struct server *s)
{
	profiles_stop(s->profiles);
	edge_stop(s);
	core_close(s->core);
	body_cache_free(s->bodies);
	free(s->route_metrics);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->conn_lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

int server_start(struct server **out, const struct server_config *c, struct err *e)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	s->cfg = *c;
	if (!s->cfg.memory_budget)
		s->cfg.memory_budget = budget_default_limit();
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->conn_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->route_metrics = calloc((size_t)server_route_count, sizeof(*s->route_metrics));
	s->bodies = body_cache_new(c->memory_cache);
	struct sockaddr_in sa;
	int rc = s->route_metrics && s->bodies ? 0 : err_set(e, ENOMEM, "out of memory");
	if (rc == 0)
		rc = parse_listen(c->listen, &sa, e);
	if (rc == 0 && c->token_file)
		rc = load_tokens(s->tokens, &s->n_tokens, "--token-file", c->token_file, e);
	if (rc == 0 && c->read_token_file)
		rc = load_tokens(s->read_tokens, &s->n_read_tokens, "--read-token-file",
				 c->read_token_file, e);
	if (rc == 0 && c->private_reads && !c->token_file && !c->read_token_file)
		rc = err_set(e, EINVAL, "--private needs --read-token-file or --token-file");
	if (rc == 0)
		rc = edge_start(s, e);
	if (rc == 0)
		rc = core_open(&s->core, &s->cfg, e);
	if (rc == 0)
		rc = profiles_start(&s->profiles, s->core, e);
	if (rc < 0)
		goto fail;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = c->threads;
	if (!threads)
		threads = cpus > 0 ? (unsigned)cpus : 2;
	/* Heavy work is CPU-bound: more at once than CPUs only adds memory. */
	s->heavy_limit = c->max_heavy ? c->max_heavy : cpus > 2 ? (unsigned)cpus : 2;
	unsigned mhd_limit = c->max_connections ? c->max_connections + c->max_connections / 4 + 64
						: 1u << 20;
	s->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_USE_ITC,
		0, &edge_accept, s, &access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_SOCK_ADDR, &sa,
		/* SO_REUSEADDR: a restarted server binds its port again at
		 * once, whatever connections of the old one linger. */
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
		MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
		c->conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, &request_completed, s,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096,
		/* edge_accept enforces (and meters) the caps; MHD's own global
		 * limit, split over the pool threads, is only a backstop. */
		MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0,
		MHD_OPTION_NOTIFY_CONNECTION, &connection_notify, s,
		MHD_OPTION_UNESCAPE_CALLBACK, &edge_unescape, s, MHD_OPTION_END);
	if (!s->mhd) {
		rc = err_set(e, EADDRINUSE, "cannot listen on %s (in use, or not permitted)",
			     c->listen);
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : ntohs(sa.sin_port);
	if (pthread_create(&s->scanner, NULL, scanner_main, s) == 0)
		s->scanner_running = true;
	if (c->request_deadline_s && pthread_create(&s->reaper, NULL, deadline_main, s) == 0)
		s->reaper_running = true;
	if (c->n_scan && !c->no_watch && pthread_create(&s->watcher, NULL, watcher_main, s) == 0)
		s->watcher_running = true;
	*out = s;
	return 0;
fail:
	server_free(s);
	return rc;
}

unsigned server_port(const struct server *s)
{
	return s->port;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	MHD_quiesce_daemon(s->mhd); /* stop accepting; serve what is in flight */
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	core_stop(s->core); /* upstream token waits give up */
	/* Slow jobs end by their own timeouts; wait for them (bounded). */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	while (s->active_jobs > 0 &&
	       pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&s->lock);
	/* Give in-flight responses a moment to drain. */
	for (int i = 0; i < 50; i++) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!di || di->num_connections == 0)
			break;
		usleep(100 * 1000);
	}
	MHD_stop_daemon(s->mhd);
	if (s->scanner_running)
		pthread_join(s->scanner, NULL);
	if (s->watcher_running)
		pthread_join(s->watcher, NULL);
	if (s->reaper_running)
		pthread_join(s->reaper, NULL);
	server_free(s);
}
