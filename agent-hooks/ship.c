/* Profiles out of the host: --output DIR, POST /profiles, and an on-disk
 * buffer while the server cannot take them.
 *
 * Invariants:
 *  - order: while anything is buffered, a new profile joins the buffer
 *    behind it (so the server receives profiles oldest first);
 *  - a profile leaves the buffer only after a 2xx, or a 4xx that says the
 *    server will never take it (counted as rejected);
 *  - the buffer never exceeds buffer_max_bytes: when a new profile does
 *    not fit, the oldest ones are dropped (counted), never silently.
 * Buffer files are named <seq, zero-padded>.pb.gz; seq continues from the
 * largest name found at start, so a restarted agent resends what an
 * earlier one left. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-hooks/agent_hooks.h"

#define MAX_PROFILE_BYTES (256u << 20)

struct buffered {
	uint64_t seq, bytes;
};

struct shipper {
	struct shipper_options o;
	char *url, *output_dir, *buffer_dir;
	char *auth; /* "Authorization: Bearer …" header, or NULL */
	CURL *curl;
	struct vec queue; /* struct buffered, oldest first */
	uint64_t next_seq, out_seq;
	struct shipper_stats st;
};

static int cmp_buffered(const void *a, const void *b)
{
	uint64_t x = ((const struct buffered *)a)->seq, y = ((const struct buffered *)b)->seq;
	return x < y ? -1 : x > y;
}

static void buffer_path(const struct shipper *s, uint64_t seq, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%020" PRIu64 ".pb.gz", s->buffer_dir, seq);
}

static int make_dir(const char *path, struct err *e)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

/* Pick up profiles an earlier run left in the buffer. */
static int scan_buffer(struct shipper *s, struct err *e)
{
	DIR *d = opendir(s->buffer_dir);
	if (!d)
		return err_set(e, errno, "%s: %s", s->buffer_dir, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		uint64_t seq = strtoull(de->d_name, &end, 10);
		if (end == de->d_name || strcmp(end, ".pb.gz"))
			continue;
		char path[4096];
		struct stat sb;
		buffer_path(s, seq, path, sizeof(path));
		if (stat(path, &sb) < 0)
			continue;
		struct buffered *b = vec_push(&s->queue);
		if (!b) {
			closedir(d);
			return err_set(e, ENOMEM, "out of memory");
		}
		b->seq = seq;
		b->bytes = (uint64_t)sb.st_size;
		s->st.buffer_bytes += b->bytes;
		if (seq >= s->next_seq)
			s->next_seq = seq + 1;
	}
	closedir(d);
	if (s->queue.len)
		qsort(s->queue.data, s->queue.len, sizeof(struct buffered), cmp_buffered);
	return 0;
}

int shipper_new(struct shipper **out, const struct shipper_options *opt, struct err *e)
{
	struct shipper *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	s->o = *opt;
	s->o.token = NULL; /* kept only as the header below */
	vec_init(&s->queue, sizeof(struct buffered));
	int rc = 0;
	if (opt->url && !((s->url = strdup(opt->url)) && (s->curl = curl_easy_init())))
		rc = err_set(e, ENOMEM, "cannot set up libcurl");
	if (!rc && opt->token && asprintf(&s->auth, "Authorization: Bearer %s", opt->token) < 0) {
		s->auth = NULL;
		rc = err_set(e, ENOMEM, "out of memory");
	}
	if (!rc && opt->output_dir && !(s->output_dir = strdup(opt->output_dir)))
		rc = err_set(e, ENOMEM, "out of memory");
	if (!rc && opt->output_dir)
		rc = make_dir(opt->output_dir, e);
	if (!rc && opt->url) {
		if (!opt->buffer_dir || !(s->buffer_dir = strdup(opt->buffer_dir)))
			rc = err_set(e, EINVAL, "a buffer directory is needed with a server");
		if (!rc)
			rc = make_dir(s->buffer_dir, e);
		if (!rc)
			rc = scan_buffer(s, e);
	}
	if (rc < 0) {
		shipper_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void shipper_free(struct shipper *s)
{
	if (!s)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	vec_free(&s->queue);
	free(s->url);
	free(s->auth);
	free(s->output_dir);
	free(s->buffer_dir);
	free(s);
}

void shipper_stats(const struct shipper *s, struct shipper_stats *st)
{
	*st = s->st;
}

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

/* 0 sent, 1 rejected for good (4xx), -errno: try again later. */
static int post(struct shipper *s, const uint8_t *data, size_t size, struct err *e)
{
	CURL *c = s->curl;
	curl_easy_reset(c);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	if (s->auth)
		h = curl_slist_append(h, s->auth);
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(s->o.timeout_ms ? s->o.timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "profiler-agent/0.1");
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(h);
	if (cc != CURLE_OK)
		return err_set(e, ECONNREFUSED, "POST %s: %s", s->url, curl_easy_strerror(cc));
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return 0;
	/* Permanent refusals; 404/405 (no endpoint yet), 408, 429 and 5xx
	 * may change: keep the profile. */
	if (status == 400 || status == 413 || status == 415 || status == 422)
		return err_set(e, EINVAL, "POST %s: the server refused the profile (HTTP %ld)",
			       s->url, status), 1;
	return err_set(e, EAGAIN, "POST %s: HTTP %ld", s->url, status);
}

bool shipper_snapshot_stored(struct shipper *s, const char *sha)
{
	static const char tail[] = "/profiles";
	size_t n = s->url ? strlen(s->url) : 0;
	if (n < sizeof(tail) - 1 || strcmp(s->url + n - (sizeof(tail) - 1), tail))
		return false;
	char url[4200];
	if (snprintf(url, sizeof(url), "%.*s/perf-maps/%s", (int)(n - (sizeof(tail) - 1)), s->url,
		     sha) >= (int)sizeof(url))
		return false;
	CURL *c = s->curl;
	curl_easy_reset(c);
	struct curl_slist *h = s->auth ? curl_slist_append(NULL, s->auth) : NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "profiler-agent/0.1");
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	return status == 200;
}

static int buffer_add(struct shipper *s, const uint8_t *data, size_t size, struct err *e)
{
	if (size > s->o.buffer_max_bytes) {
		s->st.dropped++;
		return err_set(e, ENOSPC, "profile of %zu bytes is larger than the whole buffer", size);
	}
	/* Make room: the oldest go first. */
	while (s->queue.len && s->st.buffer_bytes + size > s->o.buffer_max_bytes) {
		struct buffered *old = &VEC_AT(&s->queue, struct buffered, 0);
		char path[4096];
		buffer_path(s, old->seq, path, sizeof(path));
		unlink(path);
		s->st.buffer_bytes -= old->bytes;
		s->st.dropped++;
		memmove(old, old + 1, (s->queue.len - 1) * sizeof(*old));
		s->queue.len--;
	}
	char path[4096];
	uint64_t seq = s->next_seq++;
	buffer_path(s, seq, path, sizeof(path));
	int rc = write_file_atomic(path, data, size, 0644, e);
	if (rc < 0) {
		s->st.dropped++;
		return rc;
	}
	struct buffered *b = vec_push(&s->queue);
	if (!b)
		return err_set(e, ENOMEM, "out of memory");
	b->seq = seq;
	b->bytes = size;
	s->st.buffer_bytes += size;
	s->st.buffered++;
	return 0;
}

int shipper_drain(struct shipper *s, struct err *e)
{
	while (s->url && s->queue.len) {
		struct buffered *b = &VEC_AT(&s->queue, struct buffered, 0);
		char path[4096];
		buffer_path(s, b->seq, path, sizeof(path));
		uint8_t *data = NULL;
		size_t size = 0;
		struct err re = { { 0 } };
		int rc = read_file(path, MAX_PROFILE_BYTES, &data, &size, &re);
		if (rc == 0) {
			rc = post(s, data, size, e);
			free(data);
			if (rc < 0)
				return rc; /* still down: keep it, stop here */
			if (rc == 0)
				s->st.sent++;
			else
				s->st.rejected++;
		}
		unlink(path);
		s->st.buffer_bytes -= b->bytes;
		memmove(b, b + 1, (s->queue.len - 1) * sizeof(*b));
		s->queue.len--;
	}
	return 0;
}

int shipper_submit(struct shipper *s, const uint8_t *data, size_t size, struct err *e)
{
	s->st.profiles++;
	int rc = 0;
	if (s->output_dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/profile-%06" PRIu64 ".pb.gz", s->output_dir,
			 ++s->out_seq);
		rc = write_file_atomic(path, data, size, 0644, e);
		if (rc == 0)
			s->st.written++;
	}
	if (!s->url)
		return rc;
	struct err se = { { 0 } };
	if (s->queue.len == 0 || shipper_drain(s, &se) == 0) {
		int prc = post(s, data, size, &se);
		if (prc == 0) {
			s->st.sent++;
			return rc;
		}
		if (prc == 1) {
			s->st.rejected++;
			return err_set(e, EINVAL, "%s", se.msg);
		}
	}
	int brc = buffer_add(s, data, size, e);
	return brc < 0 ? brc : rc;
}
