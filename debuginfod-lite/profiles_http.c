/* POST /profiles, GET /profiles, GET /profiles/list, POST /perf-maps,
 * GET /perf-maps/<sha256> (docs/http-api.md "Profiles"). */
#include "debuginfod-lite/profiles.h"
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
		s->profiles_rejected++;
		return s->n_tokens ? refuse_before_body(r, 401, "missing or wrong bearer token\n")
				   : refuse_before_body(r, 403, "profiles are accepted from loopback only"
							  " (the server has no --token-file)\n");
	}
	const char *cl = request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > s->cfg.profile_max_body) {
		char msg[128];
		snprintf(msg, sizeof(msg), "body larger than the limit of %llu bytes\n",
			 (unsigned long long)s->cfg.profile_max_body);
		s->profiles_rejected++;
		return refuse_before_body(r, 413, msg);
	}
	return MHD_YES;
}

int profiles_chunk(struct request *r, const char *data, size_t len)
{
	if (r->body.len + len > r->srv->cfg.profile_max_body) {
		snprintf(r->body_msg, sizeof(r->body_msg), "body larger than the limit of %llu bytes",
			 (unsigned long long)r->srv->cfg.profile_max_body);
		r->srv->profiles_rejected++;
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

struct post_job {
	int status;       /* HTTP answer */
	char msg[600];    /* 4xx reason */
	char *json;       /* 201/200 body */
	struct profile_meta meta;
};

static void post_job_free(void *p)
{
	struct post_job *j = p;
	free(j->json);
	vec_free(&j->meta.refs);
	free(j);
}

static bool label_ok(const char *k, size_t klen, const char *v, size_t vlen)
{
	if (klen == 0 || klen >= 128 || vlen >= 512)
		return false;
	for (size_t i = 0; i < klen; i++)
		if ((unsigned char)k[i] < 0x21 || k[i] == '=' || k[i] == 0x7f)
			return false;
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return false;
	/* Labels are answered in JSON (/profiles/list): UTF-8 only. */
	return utf8_valid(k, klen) && utf8_valid(v, vlen);
}

static int add_label(struct profile_meta *m, const char *k, size_t klen, const char *v,
		     size_t vlen)
{
	int i;
	for (i = 0; i < m->n_labels; i++)
		if (strlen(m->label_key[i]) == klen && memcmp(m->label_key[i], k, klen) == 0)
			break;
	if (i == m->n_labels) {
		if (m->n_labels >= PROFILE_MAX_LABELS)
			return -E2BIG;
		m->n_labels++;
	}
	snprintf(m->label_key[i], sizeof(m->label_key[i]), "%.*s", (int)klen, k);
	snprintf(m->label_value[i], sizeof(m->label_value[i]), "%.*s", (int)vlen, v);
	return 0;
}

/* String labels every sample carries with one value (host, pid, exe…). */
static void constant_labels(struct pprof_profile *p, struct profile_meta *m)
{
	if (p->samples.len == 0)
		return;
	const struct pprof_sample *s0 = &VEC_AT(&p->samples, struct pprof_sample, 0);
	for (size_t li = 0; li < s0->label_count; li++) {
		const struct pprof_label *l =
			&VEC_AT(&p->labels, struct pprof_label, s0->label_off + li);
		if (!l->str)
			continue;
		bool everywhere = true;
		for (size_t si = 1; si < p->samples.len && everywhere; si++) {
			const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, si);
			bool found = false;
			for (size_t k = 0; k < s->label_count && !found; k++) {
				const struct pprof_label *o =
					&VEC_AT(&p->labels, struct pprof_label, s->label_off + k);
				found = o->key == l->key && o->str == l->str;
			}
			everywhere = found;
		}
		const char *k = pprof_str(p, l->key), *v = pprof_str(p, l->str);
		if (everywhere && label_ok(k, strlen(k), v, strlen(v)))
			add_label(m, k, strlen(k), v, strlen(v));
	}
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
	if (!eq || !label_ok(value, (size_t)(eq - value), eq + 1, strlen(eq + 1)) ||
	    add_label(w->m, value, (size_t)(eq - value), eq + 1, strlen(eq + 1)) < 0)
		snprintf(w->bad, sizeof(w->bad), "bad X-Profile-Label '%.100s': expected k=v"
			 " (key without spaces or '=', at most %d labels)", value ? value : "",
			 PROFILE_MAX_LABELS);
	return MHD_YES;
}

static bool is_hex(const char *s, size_t min, size_t max)
{
	char low[REF_MAX];
	return profile_lower_hex(s, low, sizeof(low), min, max);
}

static int add_ref(struct vec *refs, const char *ref)
{
	char low[REF_MAX];
	size_t n = strlen(ref);
	if (n >= REF_MAX)
		return 0;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)((ref[i] >= 'A' && ref[i] <= 'F') ? ref[i] - 'A' + 'a' : ref[i]);
	for (size_t i = 0; i < refs->len; i++)
		if (strcmp((const char *)refs->data + i * REF_MAX, low) == 0)
			return 0;
	char *slot = vec_push(refs);
	if (!slot)
		return -ENOMEM;
	memcpy(slot, low, n + 1);
	return 0;
}

static int collect_meta(struct pprof_profile *p, struct profile_meta *m, char *msg, size_t size)
{
	m->received = (int64_t)time(NULL) * 1000000000;
	m->t_start = p->time_nanos > 0 ? p->time_nanos : m->received;
	int64_t dur = p->duration_nanos > 0 ? p->duration_nanos : 0;
	m->t_end = m->t_start > INT64_MAX - dur ? INT64_MAX : m->t_start + dur;
	m->samples = p->samples.len;
	size_t len = 0;
	for (size_t i = 0; i < p->sample_types.len && len + 1 < sizeof(m->sample_types); i++) {
		const struct pprof_value_type *vt =
			&VEC_AT(&p->sample_types, struct pprof_value_type, i);
		int n = snprintf(m->sample_types + len, sizeof(m->sample_types) - len, "%s%s/%s",
				 i ? "," : "", pprof_str(p, vt->type), pprof_str(p, vt->unit));
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (p->sample_types.len == 0) {
		snprintf(msg, size, "bad profile: no sample types");
		return -EINVAL;
	}
	vec_init(&m->refs, REF_MAX);
	for (size_t i = 0; i < p->mappings.len; i++) {
		const struct pprof_mapping *mp = &VEC_AT(&p->mappings, struct pprof_mapping, i);
		const char *bid = pprof_str(p, mp->build_id), *fname = pprof_str(p, mp->filename);
		int rc = 0;
		if (bid[0] && is_hex(bid, 2, 2 * BUILD_ID_MAX))
			rc = add_ref(&m->refs, bid);
		if (strncmp(fname, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) == 0) {
			if (!is_hex(fname + strlen(PERF_MAP_PREFIX), SHA256_HEX_LEN, SHA256_HEX_LEN)) {
				snprintf(msg, size, "mapping %" PRIu64 ": '%.80s' is not perf-map:<sha256>",
					 mp->id, fname);
				return -EINVAL;
			}
			rc = add_ref(&m->refs, fname);
		}
		if (rc < 0) {
			snprintf(msg, size, "out of memory");
			return rc;
		}
	}
	return 0;
}

/* profiler-agent sends each perf-map snapshot once, inside the first profile
 * that references it, as the comment "profiler-agent.jit perf-map
 * sha256=<h> encoding=text\n<map>" (docs/profiler-agent.md); its mappings
 * are named perf-map:<h>.  Store such snapshots as POST /perf-maps would.  A
 * snapshot that does not hash to its name is logged and left out: the
 * profile stays good, its JIT frames are reported missing. */
static void store_agent_perf_maps(struct server *s, const struct pprof_profile *p)
{
	static const char head[] = "profiler-agent.jit perf-map sha256=";
	static const char enc[] = " encoding=text\n";
	for (size_t i = 0; i < p->comments.len; i++) {
		const char *c = pprof_str(p, VEC_AT(&p->comments, int64_t, i));
		if (strncmp(c, head, sizeof(head) - 1) != 0)
			continue;
		const char *want = c + sizeof(head) - 1;
		if (strlen(want) < SHA256_HEX_LEN + sizeof(enc) - 1 ||
		    strncmp(want + SHA256_HEX_LEN, enc, sizeof(enc) - 1) != 0) {
			log_error("msg=\"profile: malformed profiler-agent.jit comment %zu, ignored\"", i);
			continue;
		}
		const char *text = want + SHA256_HEX_LEN + sizeof(enc) - 1;
		char sha[SHA256_HEX_LEN + 1];
		bool was_new;
		struct err e = { { 0 } };
		if (perf_map_insert(s, text, strlen(text), sha, &was_new, &e) < 0)
			log_error("msg=\"profile: perf map in comment %zu: %s\"", i, e.msg);
		else if (strncmp(sha, want, SHA256_HEX_LEN) != 0)
			log_error("msg=\"profile: perf map in comment %zu hashes to %s, not %.64s\"", i,
				  sha, want);
	}
}

static int post_work(struct request *r)
{
	struct post_job *j = r->job;
	struct server *s = r->srv;
	struct pprof_profile *p = NULL;
	struct err e = { { 0 } };
	j->status = 400;
	if (r->body.len == 0) {
		snprintf(j->msg, sizeof(j->msg), "empty body: expected a pprof profile");
		return 0;
	}
	/* Reserve the decompressed body and its parse before inflating: the
	 * gzip trailer's claim, capped by --max-decompressed-body, which the
	 * parser then enforces whatever the trailer said. */
	uint64_t max_plain = s->cfg.max_decompressed_body;
	bool gz = r->body.len >= 2 && ((uint8_t *)r->body.data)[0] == 0x1f &&
		  ((uint8_t *)r->body.data)[1] == 0x8b;
	/* Deflate expands at most 1032:1; a trailer claiming more is a lie
	 * (or a truncated stream), and the bound holds regardless. */
	uint64_t bound = (uint64_t)r->body.len * 1032 + 65536;
	uint64_t claimed = gzip_claimed_size(r->body.data, r->body.len);
	uint64_t plain = !gz ? r->body.len : claimed && claimed <= bound ? claimed : bound;
	if (plain > max_plain)
		plain = max_plain;
	uint64_t need = plain * (1 + PROFILE_PARSE_FACTOR);
	int brc = request_reserve(r, need);
	if (brc < 0) {
		j->status = brc;
		snprintf(j->msg, sizeof(j->msg), "%s", brc == -EFBIG
			 ? "the profile is larger than the server's memory budget"
			 : "memory budget full, retry later");
		return 0;
	}
	int prc = pprof_parse_limited(r->body.data, r->body.len, gz ? (plain ? plain : 1) : max_plain,
				      &p, &e);
	if (prc < 0) {
		request_unreserve(r, need);
		snprintf(j->msg, sizeof(j->msg), "%s", e.msg);
		j->status = prc == -ENOMEM ? 503 : prc == -EFBIG ? 413 : 400;
		return 0;
	}
	int rc = collect_meta(p, &j->meta, j->msg, sizeof(j->msg));
	if (rc == 0)
		constant_labels(p, &j->meta);
	if (rc == 0)
		store_agent_perf_maps(s, p);
	pprof_free(p);
	request_unreserve(r, need);
	if (rc < 0)
		return 0;
	int64_t id = 0;
	rc = profiles_insert(s, r->body.data, r->body.len, &j->meta, &id, &e);
	if (rc < 0) {
		log_error("msg=\"profile store: %s\"", e.msg);
		/* The database or blob store is away: 503 + Retry-After, and
		 * the agent's buffer sends it again. */
		j->status = rc == -EAGAIN ? -EBUSY : 507;
		snprintf(j->msg, sizeof(j->msg), "%s", rc == -EAGAIN
			 ? "storage unavailable, try again later" : "cannot store the profile");
		return 0;
	}
	j->status = rc == 1 ? 201 : 200;
	if (rc == 1)
		s->profiles_stored++;
	else
		s->profiles_duplicate++;
	json_t *o = json_pack("{s:I,s:b,s:I,s:I,s:I}", "id", (json_int_t)id, "duplicate", rc == 0,
			      "samples", (json_int_t)j->meta.samples, "time_start_ns",
			      (json_int_t)j->meta.t_start, "time_end_ns", (json_int_t)j->meta.t_end);
	if (o)
		profiles_describe(s, id, o, &e);
	j->json = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return 0;
}

enum MHD_Result handle_profiles_post(struct request *r)
{
	struct post_job *j = r->job;
	if (r->slow_state == 2) {
		if (j->status == -EBUSY || j->status == -EFBIG) {
			r->srv->profiles_rejected++;
			return respond_refusal(r, j->status, j->msg);
		}
		if (j->status >= 400) {
			r->srv->profiles_rejected++;
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
		r->srv->profiles_rejected++;
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

struct get_job {
	struct profile_query q;
	bool symbolize;
	int status;
	char msg[600];
	uint8_t *out;
	size_t out_size;
	size_t merged, skipped;
	uint64_t held; /* budget bytes the merge holds */
};

static void get_job_free(void *p)
{
	struct get_job *j = p;
	free(j->out);
	free(j);
}

/* Hold `want` bytes of the request's budget for the merge (grown, never
 * shrunk here).  0, -EBUSY or -EFBIG. */
static int merge_hold(struct request *r, struct get_job *j, uint64_t want)
{
	if (want <= j->held)
		return 0;
	if (want > r->srv->budget.limit)
		return -EFBIG;
	int rc = request_reserve(r, want - j->held);
	if (rc == 0)
		j->held = want;
	return rc;
}

/* Give back what the merge holds (it failed, or was abandoned). */
static void merge_release(struct request *r, struct get_job *j)
{
	request_unreserve(r, j->held);
	j->held = 0;
}

static void merge_refused(struct get_job *j, struct server *s, int rc, size_t n,
			  uint64_t stored)
{
	j->status = rc;
	if (rc == -EFBIG)
		snprintf(j->msg, sizeof(j->msg), "merging the %zu matching profiles (%llu MiB stored)"
			 " needs more than the memory budget (%llu MiB): narrow from/to or add"
			 " label=key=value (or id=N)", n, (unsigned long long)(stored >> 20),
			 (unsigned long long)(s->budget.limit >> 20));
	else
		snprintf(j->msg, sizeof(j->msg), "memory budget full, retry later");
}

/* Merge the matching profiles (their symbolized copies when asked for
 * and present), then symbolize what is still raw.  One profile at a time:
 * the accumulator (measured with pprof_memory) plus what the next profile
 * needs stays inside the reservation, or the merge stops (413 when it can
 * never fit, 503 when it may later).  Between profiles it checks that the
 * client is still there. */
static int get_work(struct request *r)
{
	struct get_job *j = r->job;
	struct server *s = r->srv;
	struct err e = { { 0 } };
	struct profile_row *rows = NULL;
	size_t n = 0;
	j->status = 503;
	if (profiles_query(s, &j->q, &rows, &n, &e) < 0) {
		snprintf(j->msg, sizeof(j->msg), "%s", e.msg);
		return 0;
	}
	/* Before starting, from the blobs' sizes: the profile that needs the
	 * most must fit the budget on its own, or no merge can. */
	uint64_t stored = 0, single = 0;
	for (size_t i = 0; i < n; i++) {
		bool sym = j->symbolize && rows[i].sym[0];
		uint64_t blob, plain;
		if (profile_blob_sizes(s, sym ? rows[i].sym : rows[i].raw, &blob, &plain, &e) < 0)
			continue;
		stored += blob;
		uint64_t need = blob + plain * (1 + PROFILE_PARSE_FACTOR + PROFILE_MERGE_FACTOR);
		single = need > single ? need : single;
	}
	if (single > s->budget.limit) {
		merge_refused(j, s, -EFBIG, n, stored);
		free(rows);
		return 0;
	}
	struct pprof_profile *acc = NULL;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (client_gone(r)) {
			rc = -ECANCELED;
			break;
		}
		const char *hash = j->symbolize && rows[i].sym[0] ? rows[i].sym : rows[i].raw;
		uint8_t *data;
		size_t size;
		struct pprof_profile *p = NULL;
		uint64_t blob, plain;
		if (profile_blob_sizes(s, hash, &blob, &plain, &e) < 0) {
			log_warn("msg=\"profile %lld: %s\"", (long long)rows[i].id, e.msg);
			j->skipped++;
			continue;
		}
		/* The accumulator, this blob, its decompressed copy, its
		 * parse, and what merging it may add. */
		uint64_t want = (acc ? pprof_memory(acc) : 0) + blob +
				plain * (1 + PROFILE_PARSE_FACTOR + PROFILE_MERGE_FACTOR);
		rc = merge_hold(r, j, want);
		if (rc < 0)
			break;
		if (profile_blob_read(s, hash, &data, &size, &e) < 0) {
			log_warn("msg=\"profile %lld: %s\"", (long long)rows[i].id, e.msg);
			j->skipped++;
			continue;
		}
		rc = pprof_parse(data, size, &p, &e);
		free(data);
		if (rc < 0) {
			log_warn("msg=\"profile %lld: %s\"", (long long)rows[i].id, e.msg);
			j->skipped++;
			rc = 0;
			continue;
		}
		if (!acc) {
			acc = p;
			j->merged++;
			continue;
		}
		struct err me = { { 0 } };
		int mrc = pprof_merge(acc, p, &me);
		if (mrc < 0) {
			if (mrc == -ENOMEM)
				rc = -ENOMEM;
			j->skipped++; /* other sample types */
		} else {
			j->merged++;
		}
		pprof_free(p);
	}
	free(rows);
	if (rc == -ECANCELED) {
		log_info("msg=\"GET /profiles abandoned: the client left\" merged=%zu", j->merged);
		pprof_free(acc);
		merge_release(r, j);
		return rc;
	}
	if (rc == -EBUSY || rc == -EFBIG) {
		merge_refused(j, s, rc, n, stored);
		pprof_free(acc);
		merge_release(r, j);
		return 0;
	}
	if (rc == 0 && !acc) {
		j->status = 404;
		snprintf(j->msg, sizeof(j->msg), "no stored profile matches");
		return 0;
	}
	/* Symbolizing may double the profile's heap (lines, functions);
	 * serializing makes a copy at most as large as that heap. */
	if (rc == 0 && client_gone(r))
		rc = -ECANCELED;
	if (rc == 0 &&
	    (rc = merge_hold(r, j, (j->symbolize ? 3 : 2) * pprof_memory(acc))) < 0) {
		merge_refused(j, s, rc, n, stored);
		pprof_free(acc);
		merge_release(r, j);
		return 0;
	}
	if (rc == 0 && j->symbolize) {
		struct profile_resolver *res = profile_resolver_new(r);
		rc = res ? profile_symbolize(res, acc, NULL, &e) : -ENOMEM;
		profile_resolver_free(res);
	}
	if (rc == 0 && client_gone(r))
		rc = -ECANCELED;
	if (rc == 0)
		rc = pprof_serialize(acc, true, &j->out, &j->out_size, &e);
	pprof_free(acc);
	if (rc == -ECANCELED)
		log_info("msg=\"GET /profiles abandoned: the client left\" merged=%zu", j->merged);
	if (rc < 0)
		merge_release(r, j);
	if (rc == -ECANCELED)
		return rc;
	/* What stays is the answer, held until it is sent. */
	if (rc == 0 && j->out_size < j->held) {
		request_unreserve(r, j->held - j->out_size);
		j->held = j->out_size;
	}
	if (rc < 0) {
		snprintf(j->msg, sizeof(j->msg), "%s", e.msg[0] ? e.msg : "out of memory");
		return 0;
	}
	j->status = 200;
	return 0;
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
	struct get_job *j = r->job;
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
	if (profiles_query(r->srv, &q, &rows, &n, &e) < 0)
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
			profiles_describe(r->srv, row->id, o, &e);
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
	int mrc = perf_map_insert(s, r->body.data, r->body.len, sha, &was_new, &e);
	if (mrc < 0) {
		log_error("msg=\"perf map store: %s\"", e.msg);
		if (mrc == -EAGAIN)
			return respond_refusal(r, -EBUSY, "storage unavailable, try again later");
		return respond_text(r, 507, "cannot store the perf map\n");
	}
	if (was_new)
		s->perf_maps_stored++;
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
	if (!is_hex(sha, SHA256_HEX_LEN, SHA256_HEX_LEN))
		return respond_text(r, 400, "expected /perf-maps/<sha256>\n");
	char low[SHA256_HEX_LEN + 1];
	profile_lower_hex(sha, low, sizeof(low), SHA256_HEX_LEN, SHA256_HEX_LEN);
	uint8_t *data;
	size_t size;
	struct err e = { { 0 } };
	if (!perf_map_known(r->srv, low) || profile_blob_read(r->srv, low, &data, &size, &e) < 0)
		return respond_text(r, 404, "no such perf map\n");
	return respond_compressible(r, 200, "text/plain", data, size);
}
