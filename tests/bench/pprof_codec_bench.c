/* pprof codec benchmark: our hand-written codec (pprof/pprof.h)
 * beside protobuf-c code generated from tests/bench/profile.proto, on the
 * same bytes.
 *
 * Input: NPROF profiles built with our API, as the agent writes them for one
 * service over consecutive windows: NMAP mappings with build-IDs, NFUNC
 * functions, up to NFUNC * SITES locations with 1-3 lines each (inlining),
 * `samples` samples per profile with two labels and two values, stacks 8-32
 * deep; consecutive profiles share 3/4 of their stacks.  Each phase runs
 * `runs` times per codec (order alternating), and the median is reported:
 *   decode     profile 0, plain bytes -> in-memory profile
 *   decode.gz  the same, gzipped
 *   merge      the NPROF decoded profiles into a new one
 *   encode     the merged profile -> plain bytes
 *   encode.gz  the same, gzipped (zlib level 6 on both sides)
 * Our decode also validates every index and reference; protobuf-c's checks
 * the wire format only.  Peak memory is the RSS high-water mark during the
 * phase above the RSS before it (/proc/self/clear_refs resets the mark).
 *
 * Usage: pprof_codec_bench [samples [runs]].  Output, read by
 * bench_pprof.sh, one record a line:
 *   info WHAT key=value...
 *   size NAME BYTES
 *   phase NAME OURS_MS PBC_MS OURS_PEAK_KB PBC_PEAK_KB
 *   check NAME ok|FAIL
 * Exits 1 when a check fails. */
#include <fcntl.h>
#include <stddef.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "profile.pb-c.h" /* generated into $(BUILD)/bench/gen */
#include "pprof/pprof.h"

typedef Perftools__Profiles__Profile PbProfile;
typedef Perftools__Profiles__Sample PbSample;
typedef Perftools__Profiles__Label PbLabel;
typedef Perftools__Profiles__Mapping PbMapping;
typedef Perftools__Profiles__Location PbLocation;
typedef Perftools__Profiles__Line PbLine;
typedef Perftools__Profiles__Function PbFunction;
typedef Perftools__Profiles__ValueType PbValueType;

enum {
	NPROF = 4,
	NMAP = 200,
	FUNCS_PER_MAP = 25,
	NFUNC = NMAP * FUNCS_PER_MAP,
	SITES = 10,     /* per function: LEAF_SITES leaf PCs, the rest return addresses */
	LEAF_SITES = 3, /* (never the same address: see pbc_merge) */
	NTHREAD = 48,
	NENDPOINT = 20,
};

static void die(const char *what)
{
	fprintf(stderr, "pprof_codec_bench: %s\n", what);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static uint64_t mix(uint64_t x) /* splitmix64: the generator's only randomness */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t fnv(uint64_t h, const void *data, size_t len) /* FNV-1a, as profile.c */
{
	const uint8_t *d = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ d[i]) * 1099511628211ull;
	return h;
}
#define FNV_INIT 1469598103934665603ull

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- peak memory of one phase ---- */
static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			kb = atol(line + strlen(field));
	if (f)
		fclose(f);
	return kb;
}

static long peak_start(void)
{
	malloc_trim(0); /* free memory kept by malloc would hide the phase's growth */
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	bool reset = fd >= 0 && write(fd, "5", 1) == 1; /* 5: reset VmHWM to VmRSS */
	if (fd >= 0)
		close(fd);
	return reset ? status_kb("VmRSS:") : -1;
}

static long peak_end(long start_kb)
{
	return start_kb < 0 ? -1 : status_kb("VmHWM:") - start_kb;
}

/* ---- gzip for protobuf-c (our codec has its own, with the same settings) ---- */
static void gz_deflate(const uint8_t *in, size_t size, uint8_t **out, size_t *out_size)
{
	z_stream z = {0};
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		die("deflateInit2");
	size_t cap = deflateBound(&z, size);
	*out = xmalloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)size;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		die("deflate");
	*out_size = cap - z.avail_out;
	deflateEnd(&z);
}

static void gz_inflate(const uint8_t *in, size_t size, uint8_t **out, size_t *out_size)
{
	z_stream z = {0};
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		die("inflateInit2");
	size_t cap = size * 4 + 4096, len = 0;
	uint8_t *buf = xmalloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)size;
	int zr;
	do {
		if (len == cap && !(buf = realloc(buf, cap *= 2)))
			die("out of memory");
		z.next_out = buf + len;
		z.avail_out = (uInt)(cap - len);
		zr = inflate(&z, Z_NO_FLUSH);
		len = cap - z.avail_out;
	} while (zr == Z_OK);
	if (zr != Z_STREAM_END)
		die("corrupt gzip");
	inflateEnd(&z);
	*out = buf;
	*out_size = len;
}

/* ---- the input, built with our API ---- */
/* Function f has SITES addresses: 0x1000 * (f % FUNCS_PER_MAP + 1) + 16 * site
 * in mapping f / FUNCS_PER_MAP. */
static uint64_t site_address(uint64_t f, uint64_t site)
{
	return 0x1000 * (f % FUNCS_PER_MAP + 1) + 16 * site;
}

static int64_t start_line(uint64_t f)
{
	return 10 + (int64_t)(f % 400) * 3;
}

/* Stack number k: a leaf PC, then return addresses; the frames nearest the
 * root come from few functions, as main() and thread starts do. */
static size_t stack_of(uint64_t k, const uint64_t *map_ids, struct pprof_frame *fr)
{
	size_t depth = 8 + mix(k) % 25;
	for (size_t j = 0; j < depth; j++) {
		uint64_t h = mix(k * 64 + j + 1), from_root = depth - 1 - j;
		uint64_t choices = from_root < 10 ? 8ull << from_root : NFUNC;
		uint64_t f = h % (choices < NFUNC ? choices : NFUNC);
		uint64_t site = j == 0 ? (h >> 32) % LEAF_SITES
				       : LEAF_SITES + (h >> 32) % (SITES - LEAF_SITES);
		fr[j] = (struct pprof_frame){map_ids[f / FUNCS_PER_MAP], site_address(f, site)};
	}
	return depth;
}

/* Lines of the location at (function f, site): 0-2 inlined callees, then f. */
static void add_lines(struct pprof_profile *p, struct pprof_location *loc, uint64_t f, uint64_t site)
{
	size_t n = 1 + mix(f * SITES + site) % 3;
	loc->line_off = p->lines.len;
	loc->line_count = n;
	for (size_t t = 0; t < n; t++) {
		uint64_t g = t + 1 == n ? f
				: f - f % FUNCS_PER_MAP + (f % FUNCS_PER_MAP + 1 + t) % FUNCS_PER_MAP;
		struct pprof_line *l = vec_push(&p->lines);
		if (!l)
			die("out of memory");
		*l = (struct pprof_line){g + 1, start_line(g) + 2 + (int64_t)(t + 1 == n ? site : t),
					 (int64_t)(1 + site % 7)};
	}
}

static struct pprof_profile *build_profile(size_t which, size_t nsample)
{
	static const char *const types[] = {"samples", "cpu"}, *const units[] = {"count", "nanoseconds"};
	struct pprof_profile *p = pprof_new(types, units, 2);
	char text[3][128];
	uint64_t map_ids[NMAP];
	struct err e = {{0}};
	if (!p)
		die("out of memory");
	for (uint64_t m = 0; m < NMAP; m++) {
		snprintf(text[0], sizeof(text[0]), "%016llx%016llx%08llx", (unsigned long long)mix(m),
			 (unsigned long long)mix(m + NMAP), (unsigned long long)(mix(m) >> 32));
		snprintf(text[1], sizeof(text[1]), "/usr/lib/x86_64-linux-gnu/libservice%03llu.so.1",
			 (unsigned long long)m);
		if (!(map_ids[m] = pprof_add_mapping(p, text[0], text[1])) || map_ids[m] != m + 1)
			die("pprof_add_mapping");
		struct pprof_mapping *mp = pprof_mapping_by_id(p, map_ids[m]);
		mp->has_functions = mp->has_filenames = mp->has_line_numbers = mp->has_inline_frames = true;
	}
	for (uint64_t f = 0; f < NFUNC; f++) {
		unsigned long long ns = f / 50, cls = f / 5 % 10, fn = f % 5;
		snprintf(text[0], sizeof(text[0]), "svc%llu::Handler%llu::step%llu(Request const&)", ns, cls, fn);
		snprintf(text[1], sizeof(text[1]), "_ZN3svc%llu8Handler%llu5step%lluERK7Request", ns, cls, fn);
		snprintf(text[2], sizeof(text[2]), "src/svc%llu/handler%llu.cc", ns, cls);
		struct pprof_function *fp = vec_push(&p->functions);
		if (!fp)
			die("out of memory");
		*fp = (struct pprof_function){f + 1, pprof_intern(p, text[0]), pprof_intern(p, text[1]),
					      pprof_intern(p, text[2]), start_line(f)};
	}
	char threads[NTHREAD][24], endpoints[NENDPOINT][32];
	for (int i = 0; i < NTHREAD; i++)
		snprintf(threads[i], sizeof(threads[i]), "worker-%02d", i);
	for (int i = 0; i < NENDPOINT; i++)
		snprintf(endpoints[i], sizeof(endpoints[i]), "/api/v1/resource%02d", i);
	struct pprof_frame frames[32];
	for (uint64_t j = 0; j < nsample; j++) {
		uint64_t k = which * (nsample / 4) + j, count = 1 + (k + which) % 5;
		const char *const labels[2][2] = {{"thread", threads[k % NTHREAD]},
						  {"endpoint", endpoints[k % NENDPOINT]}};
		int64_t values[2] = {(int64_t)count, (int64_t)count * 10000000};
		size_t n = stack_of(k, map_ids, frames);
		if (pprof_add_sample(p, frames, n, values, labels, 2, &e))
			die(e.msg);
	}
	for (size_t i = 0; i < p->locations.len; i++) {
		struct pprof_location *loc = &VEC_AT(&p->locations, struct pprof_location, i);
		uint64_t f = (loc->mapping_id - 1) * FUNCS_PER_MAP + loc->address / 0x1000 - 1;
		add_lines(p, loc, f, loc->address % 0x1000 / 16);
	}
	p->period_type = (struct pprof_value_type){pprof_intern(p, "cpu"), pprof_intern(p, "nanoseconds")};
	p->period = 10000000;
	p->time_nanos = 1700000000000000000 + (int64_t)which * 10000000000;
	p->duration_nanos = 10000000000;
	return p;
}

/* ---- protobuf-c: a merge over the generated structs ---- */
/* Byte keys -> dense indexes 0, 1, ... in order of first insertion. */
struct itab {
	uint32_t *slot; /* entry + 1; 0 = empty */
	size_t nslot, n, cap;
	struct ient { uint64_t hash; size_t off, len; } *ent;
	uint8_t *keys;
	size_t keys_len, keys_cap;
};

static size_t itab_get(struct itab *t, const void *key, size_t len, bool add, bool *added)
{
	uint64_t h = fnv(FNV_INIT, key, len);
	size_t j = t->nslot ? h & (t->nslot - 1) : 0;
	for (; t->nslot && t->slot[j]; j = (j + 1) & (t->nslot - 1)) {
		const struct ient *e = &t->ent[t->slot[j] - 1];
		if (e->hash == h && e->len == len && !memcmp(t->keys + e->off, key, len))
			return *added = false, t->slot[j] - 1;
	}
	if (!add)
		return SIZE_MAX;
	if (t->n == t->cap && !(t->ent = realloc(t->ent, (t->cap = t->cap * 2 + 64) * sizeof(*t->ent))))
		die("out of memory");
	while (t->keys_len + len >= t->keys_cap) /* >=: keys never NULL, for memcpy/memcmp */
		if (!(t->keys = realloc(t->keys, t->keys_cap = t->keys_cap * 2 + 4096)))
			die("out of memory");
	memcpy(t->keys + t->keys_len, key, len);
	t->ent[t->n] = (struct ient){h, t->keys_len, len};
	t->keys_len += len;
	if (++t->n * 2 > t->nslot) { /* rehash everything, the new entry included */
		free(t->slot);
		t->nslot = t->nslot ? t->nslot * 2 : 64;
		t->slot = calloc(t->nslot, sizeof(*t->slot));
		if (!t->slot)
			die("out of memory");
		for (size_t i = 0; i < t->n; i++) {
			for (j = t->ent[i].hash & (t->nslot - 1); t->slot[j]; j = (j + 1) & (t->nslot - 1))
				;
			t->slot[j] = (uint32_t)(i + 1);
		}
	} else {
		t->slot[j] = (uint32_t)t->n;
	}
	*added = true;
	return t->n - 1;
}

static void itab_free(struct itab *t)
{
	free(t->slot);
	free(t->ent);
	free(t->keys);
}

/* Output id of each record of one input, found by the input's id: when ids
 * are index + 1 (every writer we know) without a lookup. */
struct idmap {
	uint64_t *in_id, *out_id;
	size_t n;
	struct itab by_id;
};

static uint64_t idmap_out(struct idmap *m, uint64_t id)
{
	bool added;
	if (id && id <= m->n && m->in_id[id - 1] == id)
		return m->out_id[id - 1];
	if (!m->by_id.n)
		for (size_t i = 0; i < m->n; i++)
			itab_get(&m->by_id, &m->in_id[i], 8, true, &added);
	size_t i = itab_get(&m->by_id, &id, 8, false, &added);
	return i == SIZE_MAX ? 0 : m->out_id[i];
}

struct u64s {
	uint64_t *v;
	size_t n, cap;
};

static void push(struct u64s *k, uint64_t v)
{
	if (k->n == k->cap && !(k->v = realloc(k->v, (k->cap = k->cap * 2 + 64) * 8)))
		die("out of memory");
	k->v[k->n++] = v;
}

#define NEW(type, init) ({ type *n_ = xmalloc(sizeof(type)); init(n_); n_; })
#define ALLOC_N(ptr, n) ((ptr) = xmalloc((n) * sizeof(*(ptr))))

/* What pprof_merge does: strings, mappings, functions and locations of
 * every input are interned by content (strings by text; mappings by
 * build-ID, filename and range; functions by name, system name, file and
 * start line; locations by mapping, address, is_folded and lines) in hash
 * tables, renumbered 1..n, and samples with the same stack and labels are
 * summed.  Unlike ours, a leaf PC and a return address at one address become
 * one location (our generator never makes both).  Every message is malloc'ed
 * as protobuf-c's own unpack does, so free_unpacked frees the result. */
static PbProfile *pbc_merge(PbProfile *const *in, size_t nin)
{
	PbProfile *out = NEW(PbProfile, perftools__profiles__profile__init);
	size_t cap[5] = {1, 0, 0, 0, 0}; /* strings, mappings, functions, locations, samples */
	for (size_t i = 0; i < nin; i++) {
		cap[0] += in[i]->n_string_table, cap[1] += in[i]->n_mapping, cap[2] += in[i]->n_function;
		cap[3] += in[i]->n_location, cap[4] += in[i]->n_sample;
	}
	ALLOC_N(out->string_table, cap[0]), ALLOC_N(out->mapping, cap[1]), ALLOC_N(out->function, cap[2]);
	ALLOC_N(out->location, cap[3]), ALLOC_N(out->sample, cap[4]);
	struct itab strs = {0}, maps = {0}, funcs = {0}, locs = {0}, samples = {0};
	struct u64s k = {0};
	bool added;
	itab_get(&strs, "", 0, true, &added);
	out->string_table[out->n_string_table++] = strdup("");
	for (size_t i = 0; i < nin; i++) {
		const PbProfile *p = in[i];
		int64_t *str;
		ALLOC_N(str, p->n_string_table);
		for (size_t s = 0; s < p->n_string_table; s++) {
			const char *text = p->string_table[s];
			str[s] = (int64_t)itab_get(&strs, text, strlen(text), true, &added);
			if (added)
				out->string_table[out->n_string_table++] = strdup(text);
		}
#define STR(x) ((uint64_t)(x) < p->n_string_table ? str[x] : 0)
		if (i == 0) {
			ALLOC_N(out->sample_type, p->n_sample_type);
			for (size_t t = 0; t < p->n_sample_type; t++) {
				PbValueType *vt = out->sample_type[out->n_sample_type++] =
					NEW(PbValueType, perftools__profiles__value_type__init);
				vt->type = STR(p->sample_type[t]->type), vt->unit = STR(p->sample_type[t]->unit);
			}
		} else if (p->n_sample_type != out->n_sample_type) {
			die("cannot merge profiles with different sample types");
		}
		struct idmap mid = {.n = p->n_mapping}, fid = {.n = p->n_function}, lid = {.n = p->n_location};
		ALLOC_N(mid.in_id, mid.n), ALLOC_N(mid.out_id, mid.n);
		for (size_t j = 0; j < p->n_mapping; j++) {
			const PbMapping *m = p->mapping[j];
			uint64_t key[5] = {STR(m->build_id), STR(m->filename), m->memory_start, m->memory_limit,
					   m->file_offset};
			size_t x = itab_get(&maps, key, sizeof(key), true, &added);
			if (added) {
				PbMapping *o = out->mapping[out->n_mapping++] = NEW(PbMapping, perftools__profiles__mapping__init);
				*o = *m, o->id = x + 1, o->build_id = STR(m->build_id), o->filename = STR(m->filename);
			}
			PbMapping *o = out->mapping[x];
			o->has_functions |= m->has_functions, o->has_filenames |= m->has_filenames;
			o->has_line_numbers |= m->has_line_numbers, o->has_inline_frames |= m->has_inline_frames;
			mid.in_id[j] = m->id, mid.out_id[j] = x + 1;
		}
		ALLOC_N(fid.in_id, fid.n), ALLOC_N(fid.out_id, fid.n);
		for (size_t j = 0; j < p->n_function; j++) {
			const PbFunction *f = p->function[j];
			uint64_t key[4] = {STR(f->name), STR(f->system_name), STR(f->filename), f->start_line};
			size_t x = itab_get(&funcs, key, sizeof(key), true, &added);
			if (added) {
				PbFunction *o = out->function[out->n_function++] = NEW(PbFunction, perftools__profiles__function__init);
				o->id = x + 1, o->name = key[0], o->system_name = key[1], o->filename = key[2];
				o->start_line = f->start_line;
			}
			fid.in_id[j] = f->id, fid.out_id[j] = x + 1;
		}
		ALLOC_N(lid.in_id, lid.n), ALLOC_N(lid.out_id, lid.n);
		for (size_t j = 0; j < p->n_location; j++) {
			const PbLocation *l = p->location[j];
			k.n = 0;
			push(&k, l->mapping_id ? idmap_out(&mid, l->mapping_id) : 0), push(&k, l->address);
			push(&k, l->is_folded);
			for (size_t t = 0; t < l->n_line; t++) {
				push(&k, l->line[t]->function_id ? idmap_out(&fid, l->line[t]->function_id) : 0);
				push(&k, l->line[t]->line), push(&k, l->line[t]->column);
			}
			size_t x = itab_get(&locs, k.v, k.n * 8, true, &added);
			if (added) {
				PbLocation *o = out->location[out->n_location++] = NEW(PbLocation, perftools__profiles__location__init);
				o->id = x + 1, o->mapping_id = k.v[0], o->address = l->address, o->is_folded = l->is_folded;
				ALLOC_N(o->line, l->n_line);
				for (size_t t = 0; t < l->n_line; t++) {
					PbLine *ln = o->line[o->n_line++] = NEW(PbLine, perftools__profiles__line__init);
					ln->function_id = k.v[3 + 3 * t], ln->line = l->line[t]->line;
					ln->column = l->line[t]->column;
				}
			}
			lid.in_id[j] = l->id, lid.out_id[j] = x + 1;
		}
		for (size_t j = 0; j < p->n_sample; j++) {
			const PbSample *s = p->sample[j];
			k.n = 0;
			push(&k, s->n_location_id);
			for (size_t t = 0; t < s->n_location_id; t++)
				push(&k, idmap_out(&lid, s->location_id[t]));
			for (size_t t = 0; t < s->n_label; t++) {
				const PbLabel *lb = s->label[t];
				push(&k, STR(lb->key)), push(&k, STR(lb->str)), push(&k, lb->num);
				push(&k, STR(lb->num_unit));
			}
			size_t x = itab_get(&samples, k.v, k.n * 8, true, &added);
			size_t nv = s->n_value < out->n_sample_type ? s->n_value : out->n_sample_type;
			if (!added) {
				for (size_t v = 0; v < nv; v++)
					out->sample[x]->value[v] = (int64_t)((uint64_t)out->sample[x]->value[v] + (uint64_t)s->value[v]);
				continue;
			}
			PbSample *o = out->sample[out->n_sample++] = NEW(PbSample, perftools__profiles__sample__init);
			o->n_location_id = s->n_location_id;
			memcpy(ALLOC_N(o->location_id, o->n_location_id), &k.v[1], o->n_location_id * 8);
			o->n_value = out->n_sample_type;
			memset(ALLOC_N(o->value, o->n_value), 0, o->n_value * 8);
			memcpy(o->value, s->value, nv * 8);
			ALLOC_N(o->label, s->n_label);
			for (size_t t = 0; t < s->n_label; t++) {
				PbLabel *lb = o->label[o->n_label++] = NEW(PbLabel, perftools__profiles__label__init);
				const uint64_t *lk = &k.v[1 + s->n_location_id + 4 * t];
				lb->key = lk[0], lb->str = lk[1], lb->num = lk[2], lb->num_unit = lk[3];
			}
		}
#undef STR
		if (p->duration_nanos > 0 && out->duration_nanos <= INT64_MAX - p->duration_nanos)
			out->duration_nanos += p->duration_nanos;
		if (!out->time_nanos || (p->time_nanos && p->time_nanos < out->time_nanos))
			out->time_nanos = p->time_nanos;
		struct idmap *ms[] = {&mid, &fid, &lid};
		for (int t = 0; t < 3; t++)
			free(ms[t]->in_id), free(ms[t]->out_id), itab_free(&ms[t]->by_id);
		free(str);
	}
	itab_free(&strs), itab_free(&maps), itab_free(&funcs), itab_free(&locs), itab_free(&samples);
	free(k.v);
	return out;
}

/* ---- equivalence: counts, value totals and a content fingerprint ---- */
/* The fingerprint sums, over samples, value[0] times a hash of the stack as
 * text and numbers (build-ID, address, function names and lines of every
 * location) and of the labels' text: independent of ids and order. */
struct summary {
	size_t samples, locations, functions, mappings;
	int64_t total[2];
	uint64_t fingerprint;
};

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1);
}

static struct summary sum_ours(struct pprof_profile *p)
{
	struct summary s = {p->samples.len, p->locations.len, p->functions.len, p->mappings.len, {0}, 0};
	for (size_t i = 0; i < p->samples.len; i++) {
		const struct pprof_sample *sm = &VEC_AT(&p->samples, struct pprof_sample, i);
		const int64_t *v = &VEC_AT(&p->sample_values, int64_t, sm->value_off);
		uint64_t h = FNV_INIT;
		for (size_t j = 0; j < sm->loc_count; j++) {
			const struct pprof_location *l =
				pprof_location_by_id(p, VEC_AT(&p->sample_loc_ids, uint64_t, sm->loc_off + j));
			const struct pprof_mapping *m = pprof_mapping_by_id(p, l->mapping_id);
			h = fnv(fnv_str(h, m ? pprof_str(p, m->build_id) : ""), &l->address, 8);
			for (size_t t = 0; t < l->line_count; t++) {
				const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off + t);
				const struct pprof_function *f = pprof_function_by_id(p, ln->function_id);
				h = fnv(fnv_str(h, f ? pprof_str(p, f->name) : ""), &ln->line, 8);
			}
		}
		for (size_t j = 0; j < sm->label_count; j++) {
			const struct pprof_label *lb = &VEC_AT(&p->labels, struct pprof_label, sm->label_off + j);
			h = fnv_str(fnv_str(h, pprof_str(p, lb->key)), pprof_str(p, lb->str));
		}
		for (size_t t = 0; t < 2 && t < sm->value_count; t++)
			s.total[t] += v[t];
		s.fingerprint += h * (uint64_t)v[0];
	}
	return s;
}

/* Locations, mappings and functions by id (the id is their first field). */
#define ID_OFFSET offsetof(PbLocation, id)
_Static_assert(offsetof(PbMapping, id) == ID_OFFSET && offsetof(PbFunction, id) == ID_OFFSET,
	       "id at the same place in every record with one");

static void index_ids(struct itab *t, void *const *recs, size_t n)
{
	bool added;
	for (size_t i = 0; i < n; i++)
		itab_get(t, (const char *)recs[i] + ID_OFFSET, 8, true, &added);
}

static void *by_id(struct itab *t, void *const *recs, uint64_t id)
{
	bool added;
	size_t i = itab_get(t, &id, 8, false, &added);
	return i == SIZE_MAX ? NULL : recs[i];
}

static struct summary sum_pbc(const PbProfile *p)
{
	struct summary s = {p->n_sample, p->n_location, p->n_function, p->n_mapping, {0}, 0};
	struct itab locs = {0}, maps = {0}, funcs = {0};
	index_ids(&locs, (void *const *)p->location, p->n_location);
	index_ids(&maps, (void *const *)p->mapping, p->n_mapping);
	index_ids(&funcs, (void *const *)p->function, p->n_function);
#define PSTR(x) ((uint64_t)(x) < p->n_string_table ? p->string_table[x] : "")
	for (size_t i = 0; i < p->n_sample; i++) {
		const PbSample *sm = p->sample[i];
		uint64_t h = FNV_INIT;
		for (size_t j = 0; j < sm->n_location_id; j++) {
			const PbLocation *l = by_id(&locs, (void *const *)p->location, sm->location_id[j]);
			const PbMapping *m = by_id(&maps, (void *const *)p->mapping, l->mapping_id);
			h = fnv(fnv_str(h, m ? PSTR(m->build_id) : ""), &l->address, 8);
			for (size_t t = 0; t < l->n_line; t++) {
				const PbFunction *f = by_id(&funcs, (void *const *)p->function, l->line[t]->function_id);
				h = fnv(fnv_str(h, f ? PSTR(f->name) : ""), &l->line[t]->line, 8);
			}
		}
		for (size_t j = 0; j < sm->n_label; j++)
			h = fnv_str(fnv_str(h, PSTR(sm->label[j]->key)), PSTR(sm->label[j]->str));
		for (size_t t = 0; t < 2 && t < sm->n_value; t++)
			s.total[t] += sm->value[t];
		s.fingerprint += h * (uint64_t)(sm->n_value ? sm->value[0] : 0);
	}
#undef PSTR
	itab_free(&locs), itab_free(&maps), itab_free(&funcs);
	return s;
}

static int failures;

static void check(const char *name, struct summary a, struct summary b)
{
	bool same = a.samples == b.samples && a.locations == b.locations && a.functions == b.functions &&
		    a.mappings == b.mappings && a.total[0] == b.total[0] && a.total[1] == b.total[1] &&
		    a.fingerprint == b.fingerprint;
	printf("check %s %s samples=%zu/%zu locations=%zu/%zu total=%lld/%lld\n", name,
	       same ? "ok" : "FAIL", a.samples, b.samples, a.locations, b.locations,
	       (long long)a.total[0], (long long)b.total[0]);
	failures += !same;
}

/* ---- the phases ---- */
struct bytes {
	uint8_t *d;
	size_t len;
};

struct bench {
	struct bytes plain[NPROF], gz[NPROF];
	struct pprof_profile *ours_in[NPROF], *ours_merged;
	PbProfile *pbc_in[NPROF], *pbc_merged;
};

/* A phase's product; freed after timing unless the harness keeps it. */
struct product {
	void *ptr;
	void (*drop)(void *);
};

static void drop_ours(void *p) { pprof_free(p); }
static void drop_pbc(void *p) { perftools__profiles__profile__free_unpacked(p, NULL); }
static void drop_bytes(void *b) { free(((struct bytes *)b)->d); free(b); }

static struct pprof_profile *ours_parse(const struct bytes *b)
{
	struct pprof_profile *p;
	struct err e = {{0}};
	if (pprof_parse(b->d, b->len, &p, &e))
		die(e.msg);
	return p;
}

static PbProfile *pbc_unpack(const struct bytes *b)
{
	PbProfile *p = perftools__profiles__profile__unpack(NULL, b->len, b->d);
	if (!p)
		die("protobuf-c cannot unpack the profile");
	return p;
}

static struct product ours_decode(struct bench *b) { return (struct product){ours_parse(&b->plain[0]), drop_ours}; }
static struct product ours_decode_gz(struct bench *b) { return (struct product){ours_parse(&b->gz[0]), drop_ours}; }

static struct product pbc_decode(struct bench *b) { return (struct product){pbc_unpack(&b->plain[0]), drop_pbc}; }

static struct product pbc_decode_gz(struct bench *b)
{
	struct bytes plain;
	gz_inflate(b->gz[0].d, b->gz[0].len, &plain.d, &plain.len);
	PbProfile *p = pbc_unpack(&plain);
	free(plain.d);
	return (struct product){p, drop_pbc};
}

static struct product ours_merge(struct bench *b)
{
	const struct pprof_profile *first = b->ours_in[0];
	const char *types[2], *units[2];
	struct err e = {{0}};
	if (first->sample_types.len > 2)
		die("more than two sample types");
	for (size_t t = 0; t < first->sample_types.len; t++) {
		const struct pprof_value_type *vt = &VEC_AT(&first->sample_types, struct pprof_value_type, t);
		types[t] = pprof_str(first, vt->type), units[t] = pprof_str(first, vt->unit);
	}
	struct pprof_profile *dst = pprof_new(types, units, first->sample_types.len);
	if (!dst)
		die("out of memory");
	for (size_t i = 0; i < NPROF; i++)
		if (pprof_merge(dst, b->ours_in[i], &e))
			die(e.msg);
	return (struct product){dst, drop_ours};
}

static struct product pbc_merge_all(struct bench *b) { return (struct product){pbc_merge(b->pbc_in, NPROF), drop_pbc}; }

static struct product ours_encode_to(struct bench *b, bool gzip)
{
	struct bytes *out = xmalloc(sizeof(*out));
	struct err e = {{0}};
	if (pprof_serialize(b->ours_merged, gzip, &out->d, &out->len, &e))
		die(e.msg);
	return (struct product){out, drop_bytes};
}

static struct product pbc_encode_to(struct bench *b, bool gzip)
{
	struct bytes *out = xmalloc(sizeof(*out));
	out->len = perftools__profiles__profile__get_packed_size(b->pbc_merged);
	out->d = xmalloc(out->len);
	perftools__profiles__profile__pack(b->pbc_merged, out->d);
	if (gzip) {
		uint8_t *plain = out->d;
		gz_deflate(plain, out->len, &out->d, &out->len);
		free(plain);
	}
	return (struct product){out, drop_bytes};
}

static struct product ours_encode(struct bench *b) { return ours_encode_to(b, false); }
static struct product ours_encode_gz(struct bench *b) { return ours_encode_to(b, true); }
static struct product pbc_encode(struct bench *b) { return pbc_encode_to(b, false); }
static struct product pbc_encode_gz(struct bench *b) { return pbc_encode_to(b, true); }

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

/* Run one phase `runs` times per codec; print the medians.  The merge
 * phase's last products become the inputs of the encode phases. */
static void run_phase(struct bench *b, const char *name, struct product (*fn[2])(struct bench *),
		      int runs, bool keep_as_merged)
{
	double ms[2][runs];
	long kb[2][runs];
	for (int r = 0; r < runs; r++) {
		for (int i = 0; i < 2; i++) {
			int c = r % 2 ? 1 - i : i; /* alternate which codec goes first */
			long start = peak_start();
			double t0 = now_ms();
			struct product out = fn[c](b);
			ms[c][r] = now_ms() - t0;
			kb[c][r] = peak_end(start);
			if (keep_as_merged && r == runs - 1) {
				void **slot = c ? (void **)&b->pbc_merged : (void **)&b->ours_merged;
				if (*slot)
					out.drop(*slot);
				*slot = out.ptr;
			} else {
				out.drop(out.ptr);
			}
		}
	}
	for (int c = 0; c < 2; c++) {
		qsort(ms[c], runs, sizeof(double), cmp_double);
		qsort(kb[c], runs, sizeof(long), cmp_long);
	}
	printf("phase %s %.1f %.1f %ld %ld\n", name, ms[0][runs / 2], ms[1][runs / 2], kb[0][runs / 2],
	       kb[1][runs / 2]);
	fflush(stdout);
}

static void print_counts(const char *what, struct summary s, size_t strings)
{
	printf("info %s samples=%zu locations=%zu functions=%zu mappings=%zu strings=%zu\n", what,
	       s.samples, s.locations, s.functions, s.mappings, strings);
}

int main(int argc, char **argv)
{
	size_t nsample = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	struct bench b = {0};
	struct err e = {{0}};
	if (nsample < 4 || runs < 1)
		die("usage: pprof_codec_bench [samples >= 4 [runs >= 1]]");
	for (size_t i = 0; i < NPROF; i++) {
		struct pprof_profile *p = build_profile(i, nsample);
		if (pprof_serialize(p, false, &b.plain[i].d, &b.plain[i].len, &e) ||
		    pprof_serialize(p, true, &b.gz[i].d, &b.gz[i].len, &e))
			die(e.msg);
		pprof_free(p);
		b.ours_in[i] = ours_parse(&b.plain[i]);
		b.pbc_in[i] = pbc_unpack(&b.plain[i]);
		char name[32];
		snprintf(name, sizeof(name), "decode.input%zu", i);
		check(name, sum_ours(b.ours_in[i]), sum_pbc(b.pbc_in[i]));
	}
	print_counts("input0", sum_ours(b.ours_in[0]), pprof_string_count(b.ours_in[0]));
	printf("size input0.plain %zu\nsize input0.gz %zu\n", b.plain[0].len, b.gz[0].len);

	struct product (*decode[2])(struct bench *) = {ours_decode, pbc_decode};
	struct product (*decode_gz[2])(struct bench *) = {ours_decode_gz, pbc_decode_gz};
	struct product (*merge[2])(struct bench *) = {ours_merge, pbc_merge_all};
	struct product (*encode[2])(struct bench *) = {ours_encode, pbc_encode};
	struct product (*encode_gz[2])(struct bench *) = {ours_encode_gz, pbc_encode_gz};
	run_phase(&b, "decode", decode, runs, false);
	run_phase(&b, "decode.gz", decode_gz, runs, false);
	run_phase(&b, "merge", merge, runs, true);
	run_phase(&b, "encode", encode, runs, false);
	run_phase(&b, "encode.gz", encode_gz, runs, false);

	/* Both merges agree, both add up to the inputs, and each codec reads
	 * what the other wrote. */
	struct summary ours = sum_ours(b.ours_merged), pbc = sum_pbc(b.pbc_merged), in = {0};
	for (size_t i = 0; i < NPROF; i++) {
		struct summary s = sum_ours(b.ours_in[i]);
		in.total[0] += s.total[0], in.total[1] += s.total[1], in.fingerprint += s.fingerprint;
	}
	print_counts("merged", ours, pprof_string_count(b.ours_merged));
	check("merge.same", ours, pbc);
	struct summary totals = ours;
	totals.total[0] = in.total[0], totals.total[1] = in.total[1], totals.fingerprint = in.fingerprint;
	check("merge.sums_inputs", ours, totals);
	struct product ours_bytes = ours_encode(&b), pbc_bytes = pbc_encode(&b);
	struct product ours_gz = ours_encode_gz(&b), pbc_gz = pbc_encode_gz(&b);
	struct bytes *ob = ours_bytes.ptr, *pb = pbc_bytes.ptr;
	printf("size merged.plain %zu %zu\nsize merged.gz %zu %zu\n", ob->len, pb->len,
	       ((struct bytes *)ours_gz.ptr)->len, ((struct bytes *)pbc_gz.ptr)->len);
	struct pprof_profile *ours_of_pbc = ours_parse(pb);
	PbProfile *pbc_of_ours = pbc_unpack(ob);
	check("ours_reads_protobuf-c", sum_ours(ours_of_pbc), pbc);
	check("protobuf-c_reads_ours", sum_pbc(pbc_of_ours), ours);
	pprof_free(ours_of_pbc);
	drop_pbc(pbc_of_ours);
	ours_bytes.drop(ob), pbc_bytes.drop(pb), ours_gz.drop(ours_gz.ptr), pbc_gz.drop(pbc_gz.ptr);
	for (size_t i = 0; i < NPROF; i++) {
		pprof_free(b.ours_in[i]);
		drop_pbc(b.pbc_in[i]);
		free(b.plain[i].d);
		free(b.gz[i].d);
	}
	pprof_free(b.ours_merged);
	drop_pbc(b.pbc_merged);
	return failures ? 1 : 0;
}
