/* POST /profiles, GET /profiles, GET /profiles/list, POST /perf-maps,
 * GET /perf-maps/<sha256> (docs/http-api.md "Profiles"). */
#include "debuginfod-lite/profiles.h"
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/parse.h"
#include "common/gzip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REF_MAX (BUILD_ID_HEX_MAX + 16)

static bool peer_is_loopback(struct request *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return false;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* With --token-file: a bearer token, as for uploads.  Without: loopback
 * clients only (an agent on the server's own host, tests). */
enum MHD_Result profiles_begin(struct request *r)
{
	struct server *s = r->srv;
	if (s->n_tokens ? !bearer_authorized(r) : !peer_is_loopback(r)) {
		profiles_counters(s->profiles)->rejected++;
		return s->n_tokens ? refuse_before_body(r, 401, "missing or wrong bearer token\n")
				   : refuse_before_body(r, 403, "profiles are accepted from loopback only"
							  " (the server has no --token-file)\n");
	}
	const char *cl = request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > s->cfg.profile_max_body) {
		char msg[128];
		snprintf(msg, sizeof(msg), "body larger than the limit of %llu bytes\n",
			 (unsigned long long)s->cfg.profile_max_body);
		profiles_counters(s->profiles)->rejected++;
		return refuse_before_body(r, 413, msg);
	}
	return MHD_YES;
}

int profiles_chunk(struct request *r, const char *data, size_t len)
{
	if (r->body.len + len > r->srv->cfg.profile_max_body) {
		snprintf(r->body_msg, sizeof(r->body_msg), "body larger than the limit of %llu bytes",
			 (unsigned long long)r->srv->cfg.profile_max_body);
		profiles_counters(r->srv->profiles)->rejected++;
		return 413;
	}
	int rc = request_reserve_body(r, r->body.len + len);
	if (rc < 0) {
		snprintf(r->body_msg, sizeof(r->body_msg), "%s", rc == -EFBIG
			 ? "body larger than the memory budget" : "memory budget full, retry later");
		return rc == -EFBIG ? 413 : 503;
	}
	if (vec_reserve(&r->body, r->body.len + len) < 0) {
		snprintf(r->body_msg, sizeof(r->body_msg), "out of memory");
		return 503;
	}
	memcpy((uint8_t *)r->body.data + r->body.len, data, len);
	r->body.len += len;
	return 0;
}

/* ---- POST /profiles ---- */

static void post_job_free(void *p)
{
	struct profile_post *j = p;
	free(j->json);
	vec_free(&j->meta.refs);
	free(j);
}

struct header_walk {
	struct profile_meta *m;
	char bad[256];
};

static enum MHD_Result header_label(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct header_walk *w = cls;
	(void)kind;
	if (strcasecmp(key, "X-Profile-Label") != 0 || w->bad[0])
		return MHD_YES;
	const char *eq = value ? strchr(value, '=') : NULL;
	if (!eq || profile_meta_add_label(w->m, value, (size_t)(eq - value), eq + 1,
					  strlen(eq + 1)) < 0)
		snprintf(w->bad, sizeof(w->bad), "bad X-Profile-Label '%.100s': expected k=v"
			 " (key without spaces or '=', at most %d labels)", value ? value : "",
			 PROFILE_MAX_LABELS);
	return MHD_YES;
}

/* On a worker thread: the profile store ingests the body. */
static int post_work(struct request *r)
{
	return profiles_ingest(r->srv->profiles, &r->ctx, r->body.data, r->body.len, r->job);
}

enum MHD_Result handle_profiles_post(struct request *r)
{
	struct profile_post *j = r->job;
	if (r->slow_state == 2) {
		if (j->status == -EBUSY || j->status == -EFBIG) {
			profiles_counters(r->srv->profiles)->rejected++;
			return respond_refusal(r, j->status, j->msg);
		}
		if (j->status >= 400) {
			profiles_counters(r->srv->profiles)->rejected++;
			return respond_text(r, (unsigned)j->status, "%s\n", j->msg);
		}
		char *json = j->json;
		j->json = NULL;
		if (!json)
			return respond_text(r, 503, "out of memory\n");
		size_t n = strlen(json);
		json[n] = 0;
		return respond_buffer(r, (unsigned)j->status, "application/json", json, n, true);
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return MHD_NO;
	r->job = j;
	r->job_free = post_job_free;
	vec_init(&j->meta.refs, REF_MAX);
	struct header_walk w = { .m = &j->meta };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, header_label, &w);
	if (w.bad[0]) {
		profiles_counters(r->srv->profiles)->rejected++;
		return respond_text(r, 400, "%s\n", w.bad);
	}
	return run_slow(r, post_work);
}

/* ---- queries ---- */

struct query_walk {
	struct profile_query *q;
	int symbolize; /* -1 unset */
	char bad[256];
};

/* Unix seconds whose whole second still fits int64 nanoseconds. */
static bool parse_seconds(const char *v, int64_t *ns)
{
	uint64_t sec;
	if (parse_query_u64(v, INT64_MAX / 1000000000 - 1, &sec) < 0)
		return false;
	*ns = (int64_t)sec * 1000000000;
	return true;
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct query_walk *w = cls;
	struct profile_query *q = w->q;
	(void)kind;
	if (w->bad[0])
		return MHD_YES;
	const char *v = value ? value : "";
	if (strcmp(key, "from") == 0) {
		q->has_from = parse_seconds(v, &q->from_ns);
		if (!q->has_from)
			snprintf(w->bad, sizeof(w->bad), "from=%.60s: expected unix seconds", v);
	} else if (strcmp(key, "to") == 0) {
		q->has_to = parse_seconds(v, &q->to_ns);
		if (q->has_to)
			q->to_ns += 999999999; /* the whole second */
		else
			snprintf(w->bad, sizeof(w->bad), "to=%.60s: expected unix seconds", v);
	} else if (strcmp(key, "id") == 0) {
		uint64_t id = 0;
		if (parse_query_u64(v, INT64_MAX, &id) < 0 || id == 0)
			snprintf(w->bad, sizeof(w->bad), "id=%.60s: expected a profile id (1 to %lld)",
				 v, (long long)INT64_MAX);
		q->id = (int64_t)id;
	} else if (strcmp(key, "label") == 0) {
		const char *eq = strchr(v, '=');
		if (!eq || eq == v || (size_t)(eq - v) >= sizeof(q->label_key[0]) ||
		    strlen(eq + 1) >= sizeof(q->label_value[0]) ||
		    q->n_labels >= (int)ARRAY_SIZE(q->label_key)) {
			snprintf(w->bad, sizeof(w->bad), "label=%.60s: expected label=key=value"
				 " (at most %d)", v, (int)ARRAY_SIZE(q->label_key));
		} else {
			snprintf(q->label_key[q->n_labels], sizeof(q->label_key[0]), "%.*s",
				 (int)(eq - v), v);
			snprintf(q->label_value[q->n_labels++], sizeof(q->label_value[0]), "%s",
				 eq + 1);
		}
	} else if (strcmp(key, "symbolize") == 0) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			snprintf(w->bad, sizeof(w->bad), "symbolize=%.20s: expected 0 or 1", v);
		w->symbolize = v[0] == '1';
	} else {
		snprintf(w->bad, sizeof(w->bad), "unknown parameter '%.60s' (from, to, label, id,"
			 " symbolize)", key);
	}
	return MHD_YES;
}

static void get_job_free(void *p)
{
	struct profile_merge *j = p;
	free(j->out);
	free(j);
}

/* On a worker thread: the profile store merges (and symbolizes). */
static int get_work(struct request *r)
{
	return profiles_merge(r->srv->profiles, &r->ctx, r->job);
}

static int parse_query(struct request *r, struct profile_query *q, int *symbolize, char *bad,
		       size_t size)
{
	struct query_walk w = { .q = q, .symbolize = -1 };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg, &w);
	*symbolize = w.symbolize;
	if (!w.bad[0] && q->has_from && q->has_to && q->from_ns > q->to_ns)
		snprintf(w.bad, sizeof(w.bad), "from is after to");
	snprintf(bad, size, "%s", w.bad);
	return w.bad[0] ? -EINVAL : 0;
}

enum MHD_Result handle_profiles_get(struct request *r)
{
	struct profile_merge *j = r->job;
	if (r->slow_state == 2) {
		if (r->slow_result == -ECANCELED)
			return respond_reset(r); /* the client left */
		if (r->slow_result == -EBUSY)
			return respond_refusal(r, -EBUSY, "too many heavy requests at once, retry later");
		if (j->status == -EBUSY || j->status == -EFBIG)
			return respond_refusal(r, j->status, j->msg);
		if (j->status != 200)
			return respond_text(r, (unsigned)j->status, "%s\n", j->msg);
		struct MHD_Response *resp = MHD_create_response_from_buffer(
			j->out_size, j->out, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			return MHD_NO;
		j->out = NULL;
		char num[32];
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
					"attachment; filename=\"profile.pb.gz\"");
		snprintf(num, sizeof(num), "%zu", j->merged);
		MHD_add_response_header(resp, "X-Profiles-Merged", num);
		snprintf(num, sizeof(num), "%zu", j->skipped);
		MHD_add_response_header(resp, "X-Profiles-Skipped", num);
		r->bytes = j->out_size;
		r->status = 200;
		enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return MHD_NO;
	r->job = j;
	r->job_free = get_job_free;
	int symbolize;
	char bad[256];
	if (parse_query(r, &j->q, &symbolize, bad, sizeof(bad)) < 0)
		return respond_text(r, 400, "%s\n", bad);
	j->symbolize = symbolize != 0;
	copy_forwarding(r);
	if (!heavy_begin(r))
		return respond_refusal(r, -EBUSY, "too many heavy requests at once, retry later");
	return run_slow(r, get_work);
}

enum MHD_Result handle_profiles_list(struct request *r)
{
	struct profile_query q = { 0 };
	int symbolize;
	char bad[256];
	if (parse_query(r, &q, &symbolize, bad, sizeof(bad)) < 0)
		return respond_text(r, 400, "%s\n", bad);
	struct profile_row *rows = NULL;
	size_t n = 0;
	struct err e = { { 0 } };
	if (profiles_query(r->srv->profiles, &q, &rows, &n, &e) < 0)
		return respond_text(r, 503, "%s\n", e.msg);
	static const char *const states[] = { "new", "symbolized", "partial", "pending" };
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct profile_row *row = &rows[i];
		json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:s,s:I}", "id",
				      (json_int_t)row->id, "received_ns", (json_int_t)row->received,
				      "time_start_ns", (json_int_t)row->t_start, "time_end_ns",
				      (json_int_t)row->t_end, "samples", (json_int_t)row->samples,
				      "raw_sha256", row->raw, "raw_size", (json_int_t)row->raw_size,
				      "state", (unsigned)row->state < 4 ? states[row->state] : "?",
				      "symbolized_size", (json_int_t)row->sym_size);
		if (o) {
			profiles_describe(r->srv->profiles, row->id, o, &e);
			json_array_append_new(list, o);
		}
	}
	free(rows);
	json_t *top = json_pack("{s:o}", "profiles", list);
	char *text = top ? json_dumps(top, JSON_COMPACT) : NULL;
	json_decref(top);
	if (!text)
		return respond_text(r, 503, "out of memory\n");
	size_t len = strlen(text);
	char *body = malloc(len + 2);
	if (!body) {
		free(text);
		return MHD_NO;
	}
	memcpy(body, text, len);
	body[len] = '\n';
	free(text);
	return respond_compressible(r, 200, "application/json", body, len + 1);
}

/* ---- perf maps ---- */

enum MHD_Result handle_perf_map_post(struct request *r)
{
	struct server *s = r->srv;
	if (r->body.len == 0)
		return respond_text(r, 400, "empty body: expected a perf map (START SIZE name lines)\n");
	/* Must read as a perf map: at least one good line.  Its entries take
	 * about as much heap as the text (names are copied). */
	int brc = request_reserve(r, 2 * (uint64_t)r->body.len);
	if (brc < 0)
		return respond_refusal(r, brc, brc == -EFBIG ? "the perf map is larger than the"
				       " server's memory budget" : "memory budget full, retry later");
	struct symz_jit_map *m = NULL;
	size_t bad = 0;
	struct err e = { { 0 } };
	int prc = symz_perf_map_parse(r->body.data, r->body.len, &m, &bad, &e);
	request_unreserve(r, 2 * (uint64_t)r->body.len);
	if (prc < 0)
		return respond_text(r, 400, "%s\n", e.msg);
	size_t entries = symz_jit_count(m);
	symz_jit_free(m);
	if (entries == 0)
		return respond_text(r, 400, "not a perf map: no \"START SIZE name\" line\n");
	char sha[SHA256_HEX_LEN + 1];
	bool was_new = false;
	int mrc = perf_map_insert(s->profiles, r->body.data, r->body.len, sha, &was_new, &e);
	if (mrc < 0) {
		log_error("msg=\"perf map store: %s\"", e.msg);
		if (mrc == -EAGAIN)
			return respond_refusal(r, -EBUSY, "storage unavailable, try again later");
		return respond_text(r, 507, "cannot store the perf map\n");
	}
	if (was_new)
		profiles_counters(s->profiles)->perf_maps_stored++;
	char *json = NULL;
	int n = asprintf(&json, "{\"sha256\":\"%s\",\"mapping\":\"" PERF_MAP_PREFIX "%s\","
			 "\"entries\":%zu,\"bad_lines\":%zu,\"duplicate\":%s}\n",
			 sha, sha, entries, bad, was_new ? "false" : "true");
	if (n < 0)
		return MHD_NO;
	return respond_buffer(r, was_new ? 201 : 200, "application/json", json, (size_t)n, true);
}

enum MHD_Result handle_perf_map_get(struct request *r)
{
	const char *sha = r->url + strlen("/perf-maps/");
	char low[SHA256_HEX_LEN + 1];
	if (!profile_lower_hex(sha, low, sizeof(low), SHA256_HEX_LEN, SHA256_HEX_LEN))
		return respond_text(r, 400, "expected /perf-maps/<sha256>\n");
	uint8_t *data;
	size_t size;
	struct err e = { { 0 } };
	if (!perf_map_known(r->srv->profiles, low) || profile_blob_read(r->srv->profiles, low, &data, &size, &e) < 0)
		return respond_text(r, 404, "no such perf map\n");
	return respond_compressible(r, 200, "text/plain", data, size);
}
