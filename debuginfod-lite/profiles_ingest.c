/* The profile store's ingest (profiles.h): a posted pprof body is checked
 * within the memory budget, its metadata collected (times, sample types,
 * labels, the build-IDs and perf maps it uses), the perf maps the agent
 * embedded stored, and the profile kept as received. */
#include "debuginfod-lite/profiles.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/parse.h"
#include "common/gzip.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REF_MAX (BUILD_ID_HEX_MAX + 16)

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

int profile_meta_add_label(struct profile_meta *m, const char *k, size_t klen, const char *v,
			   size_t vlen)
{
	if (!label_ok(k, klen, v, vlen))
		return -EINVAL;
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
			profile_meta_add_label(m, k, strlen(k), v, strlen(v));
	}
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
	/* The kallsyms snapshot the agent's kernel comment names is stored with
	 * the perf maps, and referred to like one, so it lives as long as a
	 * profile needs it and a late one queues the profile again. */
	for (size_t i = 0; i < p->comments.len; i++) {
		const char *c = pprof_str(p, VEC_AT(&p->comments, int64_t, i));
		const char *k = strncmp(c, SYMZ_KERNEL_COMMENT, strlen(SYMZ_KERNEL_COMMENT)) ? NULL
			      : strstr(c, " kallsyms=");
		char sha[SHA256_HEX_LEN + 1], ref[REF_MAX];
		if (!k || strlen(k + 10) < SHA256_HEX_LEN)
			continue;
		memcpy(sha, k + 10, SHA256_HEX_LEN);
		sha[SHA256_HEX_LEN] = 0;
		if (!is_hex(sha, SHA256_HEX_LEN, SHA256_HEX_LEN))
			continue;
		snprintf(ref, sizeof(ref), PERF_MAP_PREFIX "%s", sha);
		if (add_ref(&m->refs, ref) < 0) {
			snprintf(msg, size, "out of memory");
			return -ENOMEM;
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
/* The agent's kallsyms snapshot (comment "profiler-agent.kallsyms
 * sha256=<h> encoding=text\n<snapshot>") is stored the same way, after a
 * parse that refuses a malformed one. */
static void store_agent_perf_maps(struct server *s, const struct pprof_profile *p)
{
	static const char head[] = "profiler-agent.jit perf-map sha256=";
	static const char khead[] = "profiler-agent.kallsyms sha256=";
	static const char enc[] = " encoding=text\n";
	for (size_t i = 0; i < p->comments.len; i++) {
		const char *c = pprof_str(p, VEC_AT(&p->comments, int64_t, i));
		bool kallsyms = strncmp(c, khead, sizeof(khead) - 1) == 0;
		if (!kallsyms && strncmp(c, head, sizeof(head) - 1) != 0)
			continue;
		const char *want = c + (kallsyms ? sizeof(khead) : sizeof(head)) - 1;
		if (strlen(want) < SHA256_HEX_LEN + sizeof(enc) - 1 ||
		    strncmp(want + SHA256_HEX_LEN, enc, sizeof(enc) - 1) != 0) {
			log_error("msg=\"profile: malformed profiler-agent.jit comment %zu, ignored\"", i);
			continue;
		}
		const char *text = want + SHA256_HEX_LEN + sizeof(enc) - 1;
		char sha[SHA256_HEX_LEN + 1];
		bool was_new;
		struct err e = { { 0 } };
		if (kallsyms) {
			struct symz_kallsyms *k = NULL;
			if (symz_kallsyms_parse(text, strlen(text), &k, &e) < 0) {
				log_error("msg=\"profile: kallsyms snapshot in comment %zu: %s\"", i,
					  e.msg);
				continue;
			}
			symz_kallsyms_free(k);
		}
		if (perf_map_insert(s, text, strlen(text), sha, &was_new, &e) < 0)
			log_error("msg=\"profile: perf map in comment %zu: %s\"", i, e.msg);
		else if (strncmp(sha, want, SHA256_HEX_LEN) != 0)
			log_error("msg=\"profile: perf map in comment %zu hashes to %s, not %.64s\"", i,
				  sha, want);
	}
}

int profiles_ingest(struct server *s, struct core_ctx *ctx, const void *body, size_t len,
		    struct profile_post *j)
{
	struct pprof_profile *p = NULL;
	struct err e = { { 0 } };
	j->status = 400;
	if (len == 0) {
		snprintf(j->msg, sizeof(j->msg), "empty body: expected a pprof profile");
		return 0;
	}
	/* Reserve the decompressed body and its parse before inflating: the
	 * gzip trailer's claim, capped by --max-decompressed-body, which the
	 * parser then enforces whatever the trailer said. */
	uint64_t max_plain = s->cfg.max_decompressed_body;
	bool gz = len >= 2 && ((const uint8_t *)body)[0] == 0x1f &&
		  ((const uint8_t *)body)[1] == 0x8b;
	/* Deflate expands at most 1032:1; a trailer claiming more is a lie
	 * (or a truncated stream), and the bound holds regardless. */
	uint64_t bound = (uint64_t)len * 1032 + 65536;
	uint64_t claimed = gzip_claimed_size(body, len);
	uint64_t plain = !gz ? len : claimed && claimed <= bound ? claimed : bound;
	if (plain > max_plain)
		plain = max_plain;
	uint64_t need = plain * (1 + PROFILE_PARSE_FACTOR);
	int brc = core_reserve(ctx, need);
	if (brc < 0) {
		j->status = brc;
		snprintf(j->msg, sizeof(j->msg), "%s", brc == -EFBIG
			 ? "the profile is larger than the server's memory budget"
			 : "memory budget full, retry later");
		return 0;
	}
	int prc = pprof_parse_limited(body, len, gz ? (plain ? plain : 1) : max_plain,
				      &p, &e);
	if (prc < 0) {
		core_unreserve(ctx, need);
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
	core_unreserve(ctx, need);
	if (rc < 0)
		return 0;
	int64_t id = 0;
	rc = profiles_insert(s, body, len, &j->meta, &id, &e);
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
		profiles_counters(s)->stored++;
	else
		profiles_counters(s)->duplicate++;
	json_t *o = json_pack("{s:I,s:b,s:I,s:I,s:I}", "id", (json_int_t)id, "duplicate", rc == 0,
			      "samples", (json_int_t)j->meta.samples, "time_start_ns",
			      (json_int_t)j->meta.t_start, "time_end_ns", (json_int_t)j->meta.t_end);
	if (o)
		profiles_describe(s, id, o, &e);
	j->json = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return 0;
}

