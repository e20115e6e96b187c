/* pprof profiles: in-memory model, protobuf wire codec, validation, gzip,
 * building and merging.  Field numbers are those of the public
 * profile.proto (package perftools.profiles); docs/symbolizer.md lists the
 * fields we read and write. */
#include "pprof/pprof.h"
#include "pprof/pprof_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- a byte-keyed hash map (FNV-1a), entries in insertion order ---- */
struct kent {
	uint64_t hash, value;
	size_t key_off, key_len;
};

static uint64_t hash_bytes(const void *key, size_t len)
{
	const uint8_t *k = key;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}

void kmap_init(struct kmap *m)
{
	memset(m, 0, sizeof(*m));
	vec_init(&m->ents, sizeof(struct kent));
	vec_init(&m->keys, 1);
}

void kmap_free(struct kmap *m)
{
	free(m->slots);
	vec_free(&m->ents);
	vec_free(&m->keys);
	kmap_init(m);
}

static int kmap_grow(struct kmap *m)
{
	size_t n = m->nslots ? m->nslots * 2 : 64;
	uint32_t *s = calloc(n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < m->ents.len; i++) {
		size_t j = VEC_AT(&m->ents, struct kent, i).hash & (n - 1);
		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = (uint32_t)(i + 1);
	}
	free(m->slots);
	m->slots = s;
	m->nslots = n;
	return 0;
}

/* Look key up; when absent and `add`, insert it with *value.  Returns 1 when
 * found (*value set), 0 when added or absent, -ENOMEM. */
int kmap_find(struct kmap *m, const void *key, size_t len, uint64_t *value, bool add)
{
	uint64_t h = hash_bytes(key, len);
	if (m->nslots) {
		for (size_t j = h & (m->nslots - 1); m->slots[j]; j = (j + 1) & (m->nslots - 1)) {
			const struct kent *k = &VEC_AT(&m->ents, struct kent, m->slots[j] - 1);
			if (k->hash == h && k->key_len == len &&
			    !memcmp((const uint8_t *)m->keys.data + k->key_off, key, len)) {
				*value = k->value;
				return 1;
			}
		}
	}
	if (!add)
		return 0;
	if (m->ents.len >= UINT32_MAX - 1)
		return -ENOMEM;
	if ((m->ents.len + 1) * 2 > m->nslots && kmap_grow(m))
		return -ENOMEM;
	if (vec_reserve(&m->keys, m->keys.len + len + 1))
		return -ENOMEM;
	struct kent *k = vec_push(&m->ents);
	if (!k)
		return -ENOMEM;
	k->hash = h;
	k->value = *value;
	k->key_off = m->keys.len;
	k->key_len = len;
	if (len)
		memcpy((uint8_t *)m->keys.data + m->keys.len, key, len);
	m->keys.len += len;
	size_t j = h & (m->nslots - 1);
	while (m->slots[j])
		j = (j + 1) & (m->nslots - 1);
	m->slots[j] = (uint32_t)m->ents.len;
	return 0;
}

/* ---- the profile ---- */
static struct pprof_profile *profile_alloc(void)
{
	struct pprof_profile *p = calloc(1, sizeof(*p));
	struct pprof_private *pv = calloc(1, sizeof(*pv));
	if (!p || !pv) {
		free(p);
		free(pv);
		return NULL;
	}
	p->priv = pv;
	vec_init(&p->sample_types, sizeof(struct pprof_value_type));
	vec_init(&p->samples, sizeof(struct pprof_sample));
	vec_init(&p->mappings, sizeof(struct pprof_mapping));
	vec_init(&p->locations, sizeof(struct pprof_location));
	vec_init(&p->functions, sizeof(struct pprof_function));
	vec_init(&p->sample_loc_ids, sizeof(uint64_t));
	vec_init(&p->sample_values, sizeof(int64_t));
	vec_init(&p->labels, sizeof(struct pprof_label));
	vec_init(&p->lines, sizeof(struct pprof_line));
	vec_init(&p->comments, sizeof(int64_t));
	vec_init(&pv->str_off, sizeof(size_t));
	vec_init(&pv->str_bytes, 1);
	kmap_init(&pv->strings);
	kmap_init(&pv->funcs);
	kmap_init(&pv->maps);
	kmap_init(&pv->locs);
	kmap_init(&pv->samples);
	return p;
}

void pprof_free(struct pprof_profile *p)
{
	if (!p)
		return;
	struct pprof_private *pv = p->priv;
	vec_free(&p->sample_types);
	vec_free(&p->samples);
	vec_free(&p->mappings);
	vec_free(&p->locations);
	vec_free(&p->functions);
	vec_free(&p->sample_loc_ids);
	vec_free(&p->sample_values);
	vec_free(&p->labels);
	vec_free(&p->lines);
	vec_free(&p->comments);
	vec_free(&pv->str_off);
	vec_free(&pv->str_bytes);
	kmap_free(&pv->strings);
	kmap_free(&pv->funcs);
	kmap_free(&pv->maps);
	kmap_free(&pv->locs);
	kmap_free(&pv->samples);
	for (int i = 0; i < 3; i++)
		free(pv->ids[i].pairs);
	free(pv);
	free(p);
}

size_t pprof_string_count(const struct pprof_profile *p)
{
	return p->priv->str_off.len;
}

size_t pprof_str_len(const struct pprof_profile *p, int64_t idx)
{
	const struct pprof_private *pv = p->priv;
	if (idx < 0 || (uint64_t)idx >= pv->str_off.len)
		return 0;
	size_t end = (uint64_t)idx + 1 < pv->str_off.len ? VEC_AT(&pv->str_off, size_t, idx + 1)
							 : pv->str_bytes.len;
	return end - VEC_AT(&pv->str_off, size_t, idx) - 1;
}

const char *pprof_str(const struct pprof_profile *p, int64_t idx)
{
	const struct pprof_private *pv = p->priv;
	if (idx < 0 || (uint64_t)idx >= pv->str_off.len)
		return "";
	return (const char *)pv->str_bytes.data + VEC_AT(&pv->str_off, size_t, idx);
}

/* Append a string to the table (no interning). */
static int str_append(struct pprof_profile *p, const char *s, size_t len)
{
	struct pprof_private *pv = p->priv;
	if (vec_reserve(&pv->str_bytes, pv->str_bytes.len + len + 1))
		return -ENOMEM;
	size_t *off = vec_push(&pv->str_off);
	if (!off)
		return -ENOMEM;
	*off = pv->str_bytes.len;
	memcpy((char *)pv->str_bytes.data + pv->str_bytes.len, s, len);
	((char *)pv->str_bytes.data)[pv->str_bytes.len + len] = 0;
	pv->str_bytes.len += len + 1;
	return 0;
}

int64_t pprof_intern(struct pprof_profile *p, const char *s)
{
	struct pprof_private *pv = p->priv;
	if (!s)
		s = "";
	/* The interning map is built on first use (parsed profiles may never
	 * need it); the first of duplicate strings wins. */
	for (; pv->strings_indexed < pv->str_off.len; pv->strings_indexed++) {
		const char *t = pprof_str(p, (int64_t)pv->strings_indexed);
		uint64_t v = pv->strings_indexed;
		if (kmap_find(&pv->strings, t, strlen(t), &v, true) < 0)
			return -ENOMEM;
	}
	uint64_t v = pv->str_off.len;
	size_t len = strlen(s);
	int r = kmap_find(&pv->strings, s, len, &v, true);
	if (r < 0)
		return -ENOMEM;
	if (r == 1)
		return (int64_t)v;
	if (str_append(p, s, len))
		return -ENOMEM;
	pv->strings_indexed = pv->str_off.len;
	return (int64_t)v;
}

/* ---- id lookups: sorted (id, index) pairs per kind, rebuilt when stale ---- */
struct id_pair {
	uint64_t id;
	size_t index;
};

static int cmp_id_pair(const void *a, const void *b)
{
	const struct id_pair *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static size_t id_of(const struct pprof_profile *p, int kind, size_t i)
{
	switch (kind) {
	case 0: return VEC_AT(&p->mappings, struct pprof_mapping, i).id;
	case 1: return VEC_AT(&p->locations, struct pprof_location, i).id;
	default: return VEC_AT(&p->functions, struct pprof_function, i).id;
	}
}

static const struct vec *kind_vec(const struct pprof_profile *p, int kind)
{
	return kind == 0 ? &p->mappings : kind == 1 ? &p->locations : &p->functions;
}

/* Index of the record with this id, SIZE_MAX when none.  Ids that equal
 * index+1 (what every writer we know produces) need no table; when all of
 * them do, neither does an absent id, which is what the interning functions
 * probe for on every new record (a table rebuilt each time made adding n
 * records O(n^2 log n)). */
static size_t find_id(struct pprof_profile *p, int kind, uint64_t id)
{
	const struct vec *v = kind_vec(p, kind);
	if (id && id <= v->len && id_of(p, kind, id - 1) == id)
		return id - 1;
	struct pprof_private *pv = p->priv;
	struct id_index *t = &pv->ids[kind];
	if (t->dense > v->len)
		t->dense = 0;
	while (t->dense < v->len && id_of(p, kind, t->dense) == t->dense + 1)
		t->dense++;
	if (t->dense == v->len)
		return SIZE_MAX;
	if (t->built_for != v->len || !t->pairs) {
		free(t->pairs);
		t->pairs = malloc((v->len ? v->len : 1) * sizeof(struct id_pair));
		if (!t->pairs) {
			t->built_for = SIZE_MAX;
			return SIZE_MAX;
		}
		struct id_pair *pairs = t->pairs;
		for (size_t i = 0; i < v->len; i++)
			pairs[i] = (struct id_pair){id_of(p, kind, i), i};
		qsort(pairs, v->len, sizeof(*pairs), cmp_id_pair);
		t->built_for = v->len;
	}
	const struct id_pair *pairs = t->pairs;
	size_t lo = 0, hi = v->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pairs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->len && pairs[lo].id == id ? pairs[lo].index : SIZE_MAX;
}

struct pprof_mapping *pprof_mapping_by_id(struct pprof_profile *p, uint64_t id)
{
	size_t i = find_id(p, 0, id);
	return i == SIZE_MAX ? NULL : &VEC_AT(&p->mappings, struct pprof_mapping, i);
}

struct pprof_location *pprof_location_by_id(struct pprof_profile *p, uint64_t id)
{
	size_t i = find_id(p, 1, id);
	return i == SIZE_MAX ? NULL : &VEC_AT(&p->locations, struct pprof_location, i);
}

struct pprof_function *pprof_function_by_id(struct pprof_profile *p, uint64_t id)
{
	size_t i = find_id(p, 2, id);
	return i == SIZE_MAX ? NULL : &VEC_AT(&p->functions, struct pprof_function, i);
}

size_t pprof_location_index(struct pprof_profile *p, uint64_t id)
{
	return find_id(p, 1, id);
}

/* ---- wire decoding ---- */
struct rd {
	const uint8_t *p, *end, *base;
	const char *what; /* message being read, for errors */
	struct err *e;
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int rd_fail(struct rd *r, const char *why)
{
	return err_set(r->e, EINVAL, "bad profile: %s in %s at byte %zu", why, r->what,
		       (size_t)(r->p - r->base));
}

static int rd_varint(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return rd_fail(r, "truncated varint");
		uint8_t b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return rd_fail(r, "varint longer than 10 bytes");
}

/* One field: its number, wire type, and value (varint) or payload (LEN). */
struct field {
	uint32_t num;
	int wt;
	uint64_t v;
	struct rd sub;
};

static int rd_field(struct rd *r, struct field *f, const char *sub_what)
{
	uint64_t key;
	int err = rd_varint(r, &key);
	if (err)
		return err;
	f->num = (uint32_t)(key >> 3);
	f->wt = (int)(key & 7);
	if (key >> 3 == 0 || key >> 3 > 0x1fffffff)
		return rd_fail(r, "bad field number");
	switch (f->wt) {
	case WT_VARINT:
		return rd_varint(r, &f->v);
	case WT_I64:
		if (r->end - r->p < 8)
			return rd_fail(r, "truncated fixed64");
		r->p += 8;
		return 0;
	case WT_I32:
		if (r->end - r->p < 4)
			return rd_fail(r, "truncated fixed32");
		r->p += 4;
		return 0;
	case WT_LEN: {
		uint64_t len;
		if ((err = rd_varint(r, &len)))
			return err;
		if (len > (uint64_t)(r->end - r->p))
			return rd_fail(r, "length past the end");
		f->sub = (struct rd){r->p, r->p + len, r->base, sub_what, r->e};
		r->p += len;
		return 0;
	}
	default:
		return rd_fail(r, "unsupported wire type (groups)");
	}
}

static int want(struct rd *r, const struct field *f, int wt)
{
	return f->wt == wt ? 0 : rd_fail(r, "wrong wire type");
}

/* A repeated integer field, packed or not. */
static int rd_repeated(struct rd *r, const struct field *f, struct vec *out)
{
	if (f->wt == WT_VARINT) {
		uint64_t *slot = vec_push(out);
		if (!slot)
			return -ENOMEM;
		*slot = f->v;
		return 0;
	}
	if (f->wt != WT_LEN)
		return rd_fail(r, "wrong wire type");
	struct rd s = f->sub;
	/* Every element takes at least one byte: this bounds the allocation. */
	if (vec_reserve(out, out->len + (size_t)(s.end - s.p)))
		return -ENOMEM;
	while (s.p < s.end) {
		uint64_t v;
		int err = rd_varint(&s, &v);
		if (err)
			return err;
		VEC_AT(out, uint64_t, out->len++) = v;
	}
	return 0;
}

static int oom(struct err *e)
{
	return err_set(e, ENOMEM, "out of memory reading the profile");
}

static int rd_value_type(struct rd *r, struct pprof_value_type *vt)
{
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "ValueType");
		if (err)
			return err;
		if (f.num == 1 || f.num == 2) {
			if ((err = want(r, &f, WT_VARINT)))
				return err;
			*(f.num == 1 ? &vt->type : &vt->unit) = (int64_t)f.v;
		}
	}
	return 0;
}

static int rd_label(struct rd *r, struct pprof_label *l)
{
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Label");
		if (err)
			return err;
		if (f.num < 1 || f.num > 4)
			continue;
		if ((err = want(r, &f, WT_VARINT)))
			return err;
		int64_t *dst[] = {&l->key, &l->str, &l->num, &l->num_unit};
		*dst[f.num - 1] = (int64_t)f.v;
	}
	return 0;
}

static int rd_sample(struct pprof_profile *p, struct rd *r)
{
	struct pprof_sample *s = vec_push(&p->samples);
	if (!s)
		return oom(r->e);
	s->loc_off = p->sample_loc_ids.len;
	s->value_off = p->sample_values.len;
	s->label_off = p->labels.len;
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Sample");
		if (err)
			return err;
		if (f.num == 1 || f.num == 2) {
			err = rd_repeated(r, &f, f.num == 1 ? &p->sample_loc_ids : &p->sample_values);
		} else if (f.num == 3) {
			if (!(err = want(r, &f, WT_LEN))) {
				struct pprof_label *l = vec_push(&p->labels);
				err = l ? rd_label(&f.sub, l) : oom(r->e);
			}
		}
		if (err)
			return err == -ENOMEM ? oom(r->e) : err;
	}
	s = &VEC_AT(&p->samples, struct pprof_sample, p->samples.len - 1);
	s->loc_count = p->sample_loc_ids.len - s->loc_off;
	s->value_count = p->sample_values.len - s->value_off;
	s->label_count = p->labels.len - s->label_off;
	return 0;
}

static int rd_mapping(struct pprof_profile *p, struct rd *r)
{
	struct pprof_mapping *m = vec_push(&p->mappings);
	if (!m)
		return oom(r->e);
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Mapping");
		if (err)
			return err;
		if (f.num < 1 || f.num > 10)
			continue;
		if ((err = want(r, &f, WT_VARINT)))
			return err;
		switch (f.num) {
		case 1: m->id = f.v; break;
		case 2: m->memory_start = f.v; break;
		case 3: m->memory_limit = f.v; break;
		case 4: m->file_offset = f.v; break;
		case 5: m->filename = (int64_t)f.v; break;
		case 6: m->build_id = (int64_t)f.v; break;
		case 7: m->has_functions = f.v != 0; break;
		case 8: m->has_filenames = f.v != 0; break;
		case 9: m->has_line_numbers = f.v != 0; break;
		case 10: m->has_inline_frames = f.v != 0; break;
		}
	}
	return 0;
}

static int rd_line(struct rd *r, struct pprof_line *l)
{
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Line");
		if (err)
			return err;
		if (f.num < 1 || f.num > 3)
			continue;
		if ((err = want(r, &f, WT_VARINT)))
			return err;
		if (f.num == 1)
			l->function_id = f.v;
		else
			*(f.num == 2 ? &l->line : &l->column) = (int64_t)f.v;
	}
	return 0;
}

static int rd_location(struct pprof_profile *p, struct rd *r)
{
	struct pprof_location *loc = vec_push(&p->locations);
	if (!loc)
		return oom(r->e);
	size_t idx = p->locations.len - 1;
	size_t line_off = p->lines.len;
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Location");
		if (err)
			return err;
		loc = &VEC_AT(&p->locations, struct pprof_location, idx);
		if (f.num == 4) {
			if ((err = want(r, &f, WT_LEN)))
				return err;
			struct pprof_line *l = vec_push(&p->lines);
			if (!l)
				return oom(r->e);
			if ((err = rd_line(&f.sub, l)))
				return err;
			continue;
		}
		if (f.num < 1 || f.num > 5)
			continue;
		if ((err = want(r, &f, WT_VARINT)))
			return err;
		switch (f.num) {
		case 1: loc->id = f.v; break;
		case 2: loc->mapping_id = f.v; break;
		case 3: loc->address = f.v; break;
		case 5: loc->is_folded = f.v != 0; break;
		}
	}
	loc = &VEC_AT(&p->locations, struct pprof_location, idx);
	loc->line_off = line_off;
	loc->line_count = p->lines.len - line_off;
	return 0;
}

static int rd_function(struct pprof_profile *p, struct rd *r)
{
	struct pprof_function *fn = vec_push(&p->functions);
	if (!fn)
		return oom(r->e);
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Function");
		if (err)
			return err;
		if (f.num < 1 || f.num > 5)
			continue;
		if ((err = want(r, &f, WT_VARINT)))
			return err;
		switch (f.num) {
		case 1: fn->id = f.v; break;
		case 2: fn->name = (int64_t)f.v; break;
		case 3: fn->system_name = (int64_t)f.v; break;
		case 4: fn->filename = (int64_t)f.v; break;
		case 5: fn->start_line = (int64_t)f.v; break;
		}
	}
	return 0;
}

static int rd_profile(struct pprof_profile *p, struct rd *r)
{
	struct field f;
	while (r->p < r->end) {
		int err = rd_field(r, &f, "Profile");
		if (err)
			return err;
		switch (f.num) {
		case 1:
		case 11: {
			if ((err = want(r, &f, WT_LEN)))
				return err;
			struct pprof_value_type *vt = f.num == 11 ? &p->period_type
								  : vec_push(&p->sample_types);
			if (!vt)
				return oom(r->e);
			err = rd_value_type(&f.sub, vt);
			break;
		}
		case 2: err = want(r, &f, WT_LEN) ?: rd_sample(p, &f.sub); break;
		case 3: err = want(r, &f, WT_LEN) ?: rd_mapping(p, &f.sub); break;
		case 4: err = want(r, &f, WT_LEN) ?: rd_location(p, &f.sub); break;
		case 5: err = want(r, &f, WT_LEN) ?: rd_function(p, &f.sub); break;
		case 6:
			if (!(err = want(r, &f, WT_LEN)) &&
			    str_append(p, (const char *)f.sub.p, (size_t)(f.sub.end - f.sub.p)))
				err = oom(r->e);
			break;
		case 13:
			err = rd_repeated(r, &f, &p->comments);
			if (err == -ENOMEM)
				err = oom(r->e);
			break;
		case 7: case 8: case 9: case 10: case 12: case 14: case 15: {
			if ((err = want(r, &f, WT_VARINT)))
				return err;
			int64_t *dst = f.num == 7 ? &p->drop_frames : f.num == 8 ? &p->keep_frames
				     : f.num == 9 ? &p->time_nanos : f.num == 10 ? &p->duration_nanos
				     : f.num == 12 ? &p->period : f.num == 14 ? &p->default_sample_type
				     : &p->doc_url;
			*dst = (int64_t)f.v;
			break;
		}
		default:
			break; /* unknown field: skipped, as protobuf readers do */
		}
		if (err)
			return err;
	}
	return 0;
}

/* ---- validation: after this, every index and reference is in range ---- */
static int check_str(const struct pprof_profile *p, int64_t idx, const char *what, uint64_t id,
		     const char *field, struct err *e)
{
	if (idx >= 0 && (uint64_t)idx < pprof_string_count(p))
		return 0;
	return err_set(e, EINVAL, "bad profile: %s %llu: %s string index %lld out of range (%zu strings)",
		       what, (unsigned long long)id, field, (long long)idx, pprof_string_count(p));
}

static int check_unique_ids(struct pprof_profile *p, int kind, const char *what, struct err *e)
{
	const struct vec *v = kind_vec(p, kind);
	for (size_t i = 0; i < v->len; i++) {
		uint64_t id = id_of(p, kind, i);
		if (id == 0)
			return err_set(e, EINVAL, "bad profile: %s #%zu has id 0", what, i);
		if (find_id(p, kind, id) != i)
			return err_set(e, EINVAL, "bad profile: duplicate %s id %llu", what,
				       (unsigned long long)id);
	}
	return 0;
}

static int validate(struct pprof_profile *p, struct err *e)
{
	int err;
	if (pprof_string_count(p) == 0 && str_append(p, "", 0))
		return oom(e);
	if (pprof_str_len(p, 0) != 0)
		return err_set(e, EINVAL, "bad profile: string_table[0] must be \"\"");
	size_t nst = p->sample_types.len;
	for (size_t i = 0; i < nst; i++) {
		const struct pprof_value_type *vt = &VEC_AT(&p->sample_types, struct pprof_value_type, i);
		if ((err = check_str(p, vt->type, "sample_type", i, "type", e)) ||
		    (err = check_str(p, vt->unit, "sample_type", i, "unit", e)))
			return err;
	}
	if ((err = check_str(p, p->period_type.type, "period_type", 0, "type", e)) ||
	    (err = check_str(p, p->period_type.unit, "period_type", 0, "unit", e)) ||
	    (err = check_str(p, p->drop_frames, "profile", 0, "drop_frames", e)) ||
	    (err = check_str(p, p->keep_frames, "profile", 0, "keep_frames", e)) ||
	    (err = check_str(p, p->default_sample_type, "profile", 0, "default_sample_type", e)) ||
	    (err = check_str(p, p->doc_url, "profile", 0, "doc_url", e)))
		return err;
	for (size_t i = 0; i < p->comments.len; i++)
		if ((err = check_str(p, VEC_AT(&p->comments, int64_t, i), "comment", i, "text", e)))
			return err;
	if ((err = check_unique_ids(p, 0, "mapping", e)) ||
	    (err = check_unique_ids(p, 1, "location", e)) ||
	    (err = check_unique_ids(p, 2, "function", e)))
		return err;
	for (size_t i = 0; i < p->mappings.len; i++) {
		const struct pprof_mapping *m = &VEC_AT(&p->mappings, struct pprof_mapping, i);
		if ((err = check_str(p, m->filename, "mapping", m->id, "filename", e)) ||
		    (err = check_str(p, m->build_id, "mapping", m->id, "build_id", e)))
			return err;
	}
	for (size_t i = 0; i < p->functions.len; i++) {
		const struct pprof_function *f = &VEC_AT(&p->functions, struct pprof_function, i);
		if ((err = check_str(p, f->name, "function", f->id, "name", e)) ||
		    (err = check_str(p, f->system_name, "function", f->id, "system_name", e)) ||
		    (err = check_str(p, f->filename, "function", f->id, "filename", e)))
			return err;
	}
	for (size_t i = 0; i < p->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, i);
		if (l->mapping_id && find_id(p, 0, l->mapping_id) == SIZE_MAX)
			return err_set(e, EINVAL, "bad profile: location %llu refers to unknown mapping %llu",
				       (unsigned long long)l->id, (unsigned long long)l->mapping_id);
		for (size_t j = 0; j < l->line_count; j++) {
			uint64_t fid = VEC_AT(&p->lines, struct pprof_line, l->line_off + j).function_id;
			if (fid && find_id(p, 2, fid) == SIZE_MAX)
				return err_set(e, EINVAL,
					       "bad profile: location %llu refers to unknown function %llu",
					       (unsigned long long)l->id, (unsigned long long)fid);
		}
	}
	for (size_t i = 0; i < p->samples.len; i++) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, i);
		if (s->value_count != nst)
			return err_set(e, EINVAL, "bad profile: sample %zu has %zu values for %zu sample types",
				       i, s->value_count, nst);
		for (size_t j = 0; j < s->loc_count; j++) {
			uint64_t id = VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off + j);
			if (find_id(p, 1, id) == SIZE_MAX)
				return err_set(e, EINVAL, "bad profile: sample %zu refers to unknown location %llu",
					       i, (unsigned long long)id);
		}
		for (size_t j = 0; j < s->label_count; j++) {
			const struct pprof_label *l = &VEC_AT(&p->labels, struct pprof_label, s->label_off + j);
			if ((err = check_str(p, l->key, "label of sample", i, "key", e)) ||
			    (err = check_str(p, l->str, "label of sample", i, "str", e)) ||
			    (err = check_str(p, l->num_unit, "label of sample", i, "num_unit", e)))
				return err;
		}
	}
	if (p->priv->ids[0].built_for == SIZE_MAX || p->priv->ids[1].built_for == SIZE_MAX ||
	    p->priv->ids[2].built_for == SIZE_MAX)
		return oom(e);
	return 0;
}

/* ---- gzip ---- */
static int gunzip(const uint8_t *in, size_t size, size_t max, uint8_t **out, size_t *out_size,
		  struct err *e)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return err_set(e, ENOMEM, "cannot initialise zlib");
	size_t cap = size * 4 + 4096, len = 0;
	if (cap > max)
		cap = max;
	uint8_t *buf = malloc(cap);
	int zr = Z_OK;
	z.next_in = (Bytef *)in;
	while (buf) {
		/* zlib counts in uInt: feed at most 1 GiB at a time. */
		size_t in_left = size - (size_t)(z.next_in - in);
		z.avail_in = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
		z.next_out = buf + len;
		z.avail_out = (uInt)(cap - len);
		zr = inflate(&z, Z_NO_FLUSH);
		len = cap - z.avail_out;
		if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR))
			break;
		if (zr == Z_BUF_ERROR && z.avail_in == 0 && len < cap)
			break; /* input ended early */
		if (len == cap) {
			if (cap >= max) {
				inflateEnd(&z);
				free(buf);
				return err_set(e, EFBIG, "profile decompresses to more than %zu bytes",
					       max);
			}
			cap = cap * 2 > max ? max : cap * 2;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	inflateEnd(&z);
	if (!buf)
		return err_set(e, ENOMEM, "out of memory decompressing the profile");
	if (zr != Z_STREAM_END) {
		free(buf);
		return err_set(e, EINVAL, "bad profile: gzip data %s",
			       zr == Z_DATA_ERROR ? "corrupt" : "truncated");
	}
	*out = buf;
	*out_size = len;
	return 0;
}

int pprof_parse(const void *data, size_t size, struct pprof_profile **out, struct err *e)
{
	return pprof_parse_limited(data, size, PPROF_MAX_SIZE, out, e);
}

uint64_t pprof_gzip_claimed_size(const void *data, size_t size)
{
	const uint8_t *b = data;
	if (size < 18 || b[0] != 0x1f || b[1] != 0x8b)
		return 0;
	return (uint64_t)b[size - 4] | (uint64_t)b[size - 3] << 8 | (uint64_t)b[size - 2] << 16 |
	       (uint64_t)b[size - 1] << 24;
}

int pprof_parse_limited(const void *data, size_t size, size_t max_plain,
			struct pprof_profile **out, struct err *e)
{
	const uint8_t *bytes = data;
	uint8_t *plain = NULL;
	if (max_plain == 0 || max_plain > PPROF_MAX_SIZE)
		max_plain = PPROF_MAX_SIZE;
	if (size == 0)
		return err_set(e, EINVAL, "bad profile: empty input");
	if (size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
		int err = gunzip(bytes, size, max_plain, &plain, &size, e);
		if (err)
			return err;
		bytes = plain;
	} else if (size > max_plain) {
		return err_set(e, EFBIG, "profile is larger than %zu bytes", max_plain);
	}
	struct pprof_profile *p = profile_alloc();
	if (!p) {
		free(plain);
		return oom(e);
	}
	struct rd r = {bytes, bytes + size, bytes, "Profile", e};
	int err = rd_profile(p, &r);
	free(plain);
	if (!err)
		err = validate(p, e);
	if (err) {
		pprof_free(p);
		return err;
	}
	*out = p;
	return 0;
}

static size_t vec_bytes(const struct vec *v)
{
	return v->cap * v->elem_size;
}

static size_t kmap_bytes(const struct kmap *m)
{
	return m->nslots * sizeof(*m->slots) + vec_bytes(&m->ents) + vec_bytes(&m->keys);
}

size_t pprof_memory(const struct pprof_profile *p)
{
	const struct vec *vs[] = {&p->sample_types, &p->samples, &p->mappings, &p->locations,
				  &p->functions, &p->sample_loc_ids, &p->sample_values, &p->labels,
				  &p->lines, &p->comments};
	size_t total = sizeof(*p);
	for (size_t i = 0; i < ARRAY_SIZE(vs); i++)
		total += vec_bytes(vs[i]);
	const struct pprof_private *pv = p->priv;
	if (!pv)
		return total;
	total += sizeof(*pv) + vec_bytes(&pv->str_off) + vec_bytes(&pv->str_bytes) +
		 kmap_bytes(&pv->strings) + kmap_bytes(&pv->funcs) + kmap_bytes(&pv->maps) +
		 kmap_bytes(&pv->locs) + kmap_bytes(&pv->samples);
	for (size_t i = 0; i < ARRAY_SIZE(pv->ids); i++)
		if (pv->ids[i].pairs && pv->ids[i].built_for != SIZE_MAX)
			total += pv->ids[i].built_for * 2 * sizeof(uint64_t);
	return total;
}

int pprof_read_file(const char *path, struct pprof_profile **out, struct err *e)
{
	uint8_t *buf;
	size_t size;
	int err = read_file(path, PPROF_MAX_SIZE, &buf, &size, e);
	if (err)
		return err;
	err = pprof_parse(buf, size, out, e);
	free(buf);
	return err;
}

/* ---- wire encoding ---- */
struct wb {
	uint8_t *d;
	size_t len, cap;
	bool oom;
};

static void wb_bytes(struct wb *w, const void *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t ncap = w->cap ? w->cap : 4096;
		while (ncap < w->len + n)
			ncap *= 2;
		uint8_t *nd = realloc(w->d, ncap);
		if (!nd) {
			w->oom = true;
			return;
		}
		w->d = nd;
		w->cap = ncap;
	}
	memcpy(w->d + w->len, s, n);
	w->len += n;
}

static void wb_varint(struct wb *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	wb_bytes(w, b, n);
}

static void wb_key(struct wb *w, uint32_t num, int wt)
{
	wb_varint(w, (uint64_t)num << 3 | (uint64_t)wt);
}

/* Varint field, omitted when 0 (proto3 default). */
static void wb_u(struct wb *w, uint32_t num, uint64_t v)
{
	if (!v)
		return;
	wb_key(w, num, WT_VARINT);
	wb_varint(w, v);
}

/* Append the message in `sub` as field num of w, and empty sub. */
static void wb_msg(struct wb *w, uint32_t num, struct wb *sub)
{
	if (sub->oom)
		w->oom = true;
	wb_key(w, num, WT_LEN);
	wb_varint(w, sub->len);
	wb_bytes(w, sub->d, sub->len);
	sub->len = 0;
}

static void wb_packed(struct wb *w, uint32_t num, const uint64_t *v, size_t n, struct wb *tmp)
{
	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		wb_varint(tmp, v[i]);
	wb_msg(w, num, tmp);
}

static void encode(const struct pprof_profile *p, struct wb *w, struct wb *m, struct wb *t)
{
	for (size_t i = 0; i < p->sample_types.len; i++) {
		const struct pprof_value_type *vt = &VEC_AT(&p->sample_types, struct pprof_value_type, i);
		wb_u(m, 1, (uint64_t)vt->type);
		wb_u(m, 2, (uint64_t)vt->unit);
		wb_msg(w, 1, m);
	}
	for (size_t i = 0; i < p->samples.len; i++) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, i);
		wb_packed(m, 1, &VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off), s->loc_count, t);
		wb_packed(m, 2, (const uint64_t *)&VEC_AT(&p->sample_values, int64_t, s->value_off),
			  s->value_count, t);
		for (size_t j = 0; j < s->label_count; j++) {
			const struct pprof_label *l = &VEC_AT(&p->labels, struct pprof_label, s->label_off + j);
			wb_u(t, 1, (uint64_t)l->key);
			wb_u(t, 2, (uint64_t)l->str);
			wb_u(t, 3, (uint64_t)l->num);
			wb_u(t, 4, (uint64_t)l->num_unit);
			wb_msg(m, 3, t);
		}
		wb_msg(w, 2, m);
	}
	for (size_t i = 0; i < p->mappings.len; i++) {
		const struct pprof_mapping *mp = &VEC_AT(&p->mappings, struct pprof_mapping, i);
		wb_u(m, 1, mp->id);
		wb_u(m, 2, mp->memory_start);
		wb_u(m, 3, mp->memory_limit);
		wb_u(m, 4, mp->file_offset);
		wb_u(m, 5, (uint64_t)mp->filename);
		wb_u(m, 6, (uint64_t)mp->build_id);
		wb_u(m, 7, mp->has_functions);
		wb_u(m, 8, mp->has_filenames);
		wb_u(m, 9, mp->has_line_numbers);
		wb_u(m, 10, mp->has_inline_frames);
		wb_msg(w, 3, m);
	}
	for (size_t i = 0; i < p->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, i);
		wb_u(m, 1, l->id);
		wb_u(m, 2, l->mapping_id);
		wb_u(m, 3, l->address);
		for (size_t j = 0; j < l->line_count; j++) {
			const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off + j);
			wb_u(t, 1, ln->function_id);
			wb_u(t, 2, (uint64_t)ln->line);
			wb_u(t, 3, (uint64_t)ln->column);
			wb_msg(m, 4, t);
		}
		wb_u(m, 5, l->is_folded);
		wb_msg(w, 4, m);
	}
	for (size_t i = 0; i < p->functions.len; i++) {
		const struct pprof_function *f = &VEC_AT(&p->functions, struct pprof_function, i);
		wb_u(m, 1, f->id);
		wb_u(m, 2, (uint64_t)f->name);
		wb_u(m, 3, (uint64_t)f->system_name);
		wb_u(m, 4, (uint64_t)f->filename);
		wb_u(m, 5, (uint64_t)f->start_line);
		wb_msg(w, 5, m);
	}
	for (size_t i = 0; i < pprof_string_count(p); i++) {
		const char *s = pprof_str(p, (int64_t)i);
		size_t n = pprof_str_len(p, (int64_t)i);
		wb_key(w, 6, WT_LEN);
		wb_varint(w, n);
		wb_bytes(w, s, n);
	}
	wb_u(w, 7, (uint64_t)p->drop_frames);
	wb_u(w, 8, (uint64_t)p->keep_frames);
	wb_u(w, 9, (uint64_t)p->time_nanos);
	wb_u(w, 10, (uint64_t)p->duration_nanos);
	if (p->period_type.type || p->period_type.unit) {
		wb_u(m, 1, (uint64_t)p->period_type.type);
		wb_u(m, 2, (uint64_t)p->period_type.unit);
		wb_msg(w, 11, m);
	}
	wb_u(w, 12, (uint64_t)p->period);
	wb_packed(w, 13, (const uint64_t *)p->comments.data, p->comments.len, t);
	wb_u(w, 14, (uint64_t)p->default_sample_type);
	wb_u(w, 15, (uint64_t)p->doc_url);
	if (m->oom || t->oom)
		w->oom = true;
}

static int gzip_buf(const uint8_t *in, size_t size, uint8_t **out, size_t *out_size, struct err *e)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return err_set(e, ENOMEM, "cannot initialise zlib");
	size_t cap = deflateBound(&z, (uLong)size) + 64;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return oom(e);
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)size;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	int zr = deflate(&z, Z_FINISH);
	*out_size = cap - z.avail_out;
	deflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(buf);
		return err_set(e, EIO, "gzip compression failed");
	}
	*out = buf;
	return 0;
}

int pprof_serialize(const struct pprof_profile *p, bool gzip, uint8_t **out, size_t *size,
		    struct err *e)
{
	struct wb w = {0}, m = {0}, t = {0};
	encode(p, &w, &m, &t);
	free(m.d);
	free(t.d);
	if (w.oom) {
		free(w.d);
		return err_set(e, ENOMEM, "out of memory serializing the profile");
	}
	if (w.len > PPROF_MAX_SIZE) {
		free(w.d);
		return err_set(e, EFBIG, "profile would be larger than %u bytes", PPROF_MAX_SIZE);
	}
	if (!gzip) {
		*out = w.d ? w.d : malloc(1);
		*size = w.len;
		return *out ? 0 : oom(e);
	}
	int err = gzip_buf(w.d, w.len, out, size, e);
	free(w.d);
	return err;
}

int pprof_write_file(const struct pprof_profile *p, const char *path, bool gzip, struct err *e)
{
	uint8_t *buf;
	size_t size;
	int err = pprof_serialize(p, gzip, &buf, &size, e);
	if (err)
		return err;
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp)) {
		free(buf);
		return err_set(e, ENAMETOOLONG, "%s: path too long", path);
	}
	int fd = mkstemp(tmp);
	if (fd < 0) {
		err = errno;
		free(buf);
		return err_set(e, err, "%s: %s", tmp, strerror(err));
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	free(buf);
	if (done < size || fsync(fd) != 0 || fchmod(fd, 0644) != 0) {
		err = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return err_set(e, err, "%s: write failed: %s", tmp, strerror(err));
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		err = errno;
		unlink(tmp);
		return err_set(e, err, "%s: %s", path, strerror(err));
	}
	return 0;
}

/* ---- building ---- */
struct pprof_profile *pprof_new(const char *const *types, const char *const *units, size_t n)
{
	struct pprof_profile *p = profile_alloc();
	if (!p)
		return NULL;
	if (pprof_intern(p, "") != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct pprof_value_type *vt = vec_push(&p->sample_types);
		if (!vt)
			goto fail;
		vt->type = pprof_intern(p, types[i]);
		vt->unit = pprof_intern(p, units[i]);
		if (vt->type < 0 || vt->unit < 0)
			goto fail;
	}
	return p;
fail:
	pprof_free(p);
	return NULL;
}

/* Keys of the content maps.  Mapping: (build_id, filename, start, limit,
 * offset) as strings' text, so that maps from different profiles compare. */
static int mapping_key(const struct pprof_profile *p, const struct pprof_mapping *m, struct wb *k)
{
	k->len = 0;
	const char *s = pprof_str(p, m->build_id);
	wb_bytes(k, s, strlen(s) + 1);
	s = pprof_str(p, m->filename);
	wb_bytes(k, s, strlen(s) + 1);
	uint64_t nums[3] = {m->memory_start, m->memory_limit, m->file_offset};
	wb_bytes(k, nums, sizeof(nums));
	return k->oom ? -ENOMEM : 0;
}

static int index_mappings(struct pprof_profile *p, struct wb *k)
{
	struct pprof_private *pv = p->priv;
	for (; pv->maps_indexed < p->mappings.len; pv->maps_indexed++) {
		const struct pprof_mapping *m = &VEC_AT(&p->mappings, struct pprof_mapping, pv->maps_indexed);
		uint64_t id = m->id;
		if (mapping_key(p, m, k) || kmap_find(&pv->maps, k->d, k->len, &id, true) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Map a mapping with this content, creating it when new; returns its id or 0. */
static uint64_t intern_mapping(struct pprof_profile *p, const struct pprof_mapping *tmpl,
			       const char *build_id, const char *filename)
{
	struct wb k = {0};
	uint64_t id = 0;
	struct pprof_mapping m = *tmpl;
	m.build_id = pprof_intern(p, build_id);
	m.filename = pprof_intern(p, filename);
	if (m.build_id < 0 || m.filename < 0 || index_mappings(p, &k) || mapping_key(p, &m, &k))
		goto out;
	id = p->mappings.len + 1;
	while (find_id(p, 0, id) != SIZE_MAX) /* parsed profiles may use any ids */
		id++;
	int r = kmap_find(&p->priv->maps, k.d, k.len, &id, true);
	if (r < 0) {
		id = 0;
	} else if (r == 0) {
		struct pprof_mapping *nm = vec_push(&p->mappings);
		if (!nm) {
			id = 0;
			goto out;
		}
		*nm = m;
		nm->id = id;
		p->priv->maps_indexed = p->mappings.len;
	}
out:
	free(k.d);
	return id;
}

uint64_t pprof_add_mapping(struct pprof_profile *p, const char *build_id, const char *filename)
{
	struct pprof_mapping m = {.memory_limit = UINT64_MAX};
	return intern_mapping(p, &m, build_id, filename);
}

/* Function by content (name, system_name, filename, start_line). */
uint64_t pprof_intern_function(struct pprof_profile *p, const char *name, const char *system_name,
			       const char *filename, int64_t start_line)
{
	struct pprof_private *pv = p->priv;
	struct pprof_function f = {0, pprof_intern(p, name), pprof_intern(p, system_name),
				   pprof_intern(p, filename), start_line};
	if (f.name < 0 || f.system_name < 0 || f.filename < 0)
		return 0;
	for (; pv->funcs_indexed < p->functions.len; pv->funcs_indexed++) {
		const struct pprof_function *g = &VEC_AT(&p->functions, struct pprof_function,
							 pv->funcs_indexed);
		int64_t key[4] = {g->name, g->system_name, g->filename, g->start_line};
		uint64_t id = g->id;
		if (kmap_find(&pv->funcs, key, sizeof(key), &id, true) < 0)
			return 0;
	}
	int64_t key[4] = {f.name, f.system_name, f.filename, f.start_line};
	uint64_t id = p->functions.len + 1;
	while (find_id(p, 2, id) != SIZE_MAX)
		id++;
	int r = kmap_find(&pv->funcs, key, sizeof(key), &id, true);
	if (r < 0)
		return 0;
	if (r == 0) {
		struct pprof_function *nf = vec_push(&p->functions);
		if (!nf)
			return 0;
		*nf = f;
		nf->id = id;
		pv->funcs_indexed = p->functions.len;
	}
	return id;
}

/* Location key: (mapping, address, kind, is_folded, lines).  The kind keeps
 * a leaf and a return address at one address apart (profile.h). */
static int location_key(const struct pprof_profile *p, const struct pprof_location *l, uint8_t kind,
			struct wb *k)
{
	k->len = 0;
	uint64_t head[4] = {l->mapping_id, l->address, kind | (uint64_t)l->is_folded << 8,
			    l->line_count};
	wb_bytes(k, head, sizeof(head));
	if (l->line_count)
		wb_bytes(k, &VEC_AT(&p->lines, struct pprof_line, l->line_off),
			 l->line_count * sizeof(struct pprof_line));
	return k->oom ? -ENOMEM : 0;
}

static int index_locations(struct pprof_profile *p, struct wb *k)
{
	struct pprof_private *pv = p->priv;
	if (pv->locs_indexed == p->locations.len)
		return 0;
	uint8_t *kinds;
	struct err ignored = {{0}};
	if (pprof_location_kinds(p, &kinds, &ignored))
		return -ENOMEM;
	for (; pv->locs_indexed < p->locations.len; pv->locs_indexed++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location,
							 pv->locs_indexed);
		uint64_t id = l->id;
		if (location_key(p, l, kinds[pv->locs_indexed], k) ||
		    kmap_find(&pv->locs, k->d, k->len, &id, true) < 0) {
			free(kinds);
			return -ENOMEM;
		}
	}
	free(kinds);
	return 0;
}

void pprof_forget_locations(struct pprof_profile *p)
{
	kmap_free(&p->priv->locs);
	p->priv->locs_indexed = 0;
	kmap_free(&p->priv->samples);
	p->priv->samples_indexed = 0;
}

/* Location with this content (lines copied from `lines`); returns id or 0. */
static uint64_t intern_location(struct pprof_profile *p, const struct pprof_location *tmpl,
				const struct pprof_line *lines, uint8_t kind, struct wb *k)
{
	if (index_locations(p, k))
		return 0;
	/* Stage the lines at the end of p->lines: they are dropped again when
	 * the location already exists. */
	size_t line_off = p->lines.len;
	if (vec_reserve(&p->lines, line_off + tmpl->line_count))
		return 0;
	if (tmpl->line_count)
		memcpy(&VEC_AT(&p->lines, struct pprof_line, line_off), lines,
		       tmpl->line_count * sizeof(*lines));
	p->lines.len += tmpl->line_count;
	struct pprof_location l = *tmpl;
	l.line_off = line_off;
	if (location_key(p, &l, kind, k))
		return 0;
	uint64_t id = p->locations.len + 1;
	while (find_id(p, 1, id) != SIZE_MAX)
		id++;
	int r = kmap_find(&p->priv->locs, k->d, k->len, &id, true);
	if (r != 0)
		p->lines.len = line_off;
	if (r < 0)
		return 0;
	if (r == 0) {
		struct pprof_location *nl = vec_push(&p->locations);
		if (!nl)
			return 0;
		*nl = l;
		nl->id = id;
		p->priv->locs_indexed = p->locations.len;
	}
	return id;
}

/* Sample key: location ids, then labels by text. */
static int sample_key(const struct pprof_profile *p, const uint64_t *locs, size_t nlocs,
		      const struct pprof_label *labels, size_t nlabels, struct wb *k)
{
	k->len = 0;
	wb_bytes(k, &nlocs, sizeof(nlocs));
	wb_bytes(k, locs, nlocs * sizeof(*locs));
	for (size_t i = 0; i < nlabels; i++) {
		const char *s = pprof_str(p, labels[i].key);
		wb_bytes(k, s, strlen(s) + 1);
		s = pprof_str(p, labels[i].str);
		wb_bytes(k, s, strlen(s) + 1);
		s = pprof_str(p, labels[i].num_unit);
		wb_bytes(k, s, strlen(s) + 1);
		wb_bytes(k, &labels[i].num, sizeof(labels[i].num));
	}
	return k->oom ? -ENOMEM : 0;
}

static int index_samples(struct pprof_profile *p, struct wb *k)
{
	struct pprof_private *pv = p->priv;
	for (; pv->samples_indexed < p->samples.len; pv->samples_indexed++) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, pv->samples_indexed);
		uint64_t v = pv->samples_indexed;
		if (sample_key(p, &VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off), s->loc_count,
			       &VEC_AT(&p->labels, struct pprof_label, s->label_off), s->label_count, k) ||
		    kmap_find(&pv->samples, k->d, k->len, &v, true) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Add (or sum into) the sample with these location ids and labels. */
static int add_sample_ids(struct pprof_profile *p, const uint64_t *locs, size_t nlocs,
			  const int64_t *values, const struct pprof_label *labels, size_t nlabels,
			  struct wb *k)
{
	if (index_samples(p, k) || sample_key(p, locs, nlocs, labels, nlabels, k))
		return -ENOMEM;
	uint64_t si = p->samples.len;
	int r = kmap_find(&p->priv->samples, k->d, k->len, &si, true);
	if (r < 0)
		return -ENOMEM;
	size_t nv = p->sample_types.len;
	if (r == 1) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, si);
		for (size_t i = 0; i < nv; i++) {
			int64_t *dst = &VEC_AT(&p->sample_values, int64_t, s->value_off + i);
			*dst = (int64_t)((uint64_t)*dst + (uint64_t)values[i]); /* wraps, no UB */
		}
		return 0;
	}
	if (vec_reserve(&p->sample_loc_ids, p->sample_loc_ids.len + nlocs) ||
	    vec_reserve(&p->sample_values, p->sample_values.len + nv) ||
	    vec_reserve(&p->labels, p->labels.len + nlabels))
		return -ENOMEM;
	struct pprof_sample *s = vec_push(&p->samples);
	if (!s)
		return -ENOMEM;
	s->loc_off = p->sample_loc_ids.len;
	s->loc_count = nlocs;
	s->value_off = p->sample_values.len;
	s->value_count = nv;
	s->label_off = p->labels.len;
	s->label_count = nlabels;
	if (nlocs)
		memcpy(&VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off), locs, nlocs * sizeof(*locs));
	if (nv)
		memcpy(&VEC_AT(&p->sample_values, int64_t, s->value_off), values, nv * sizeof(*values));
	if (nlabels)
		memcpy(&VEC_AT(&p->labels, struct pprof_label, s->label_off), labels,
		       nlabels * sizeof(*labels));
	p->sample_loc_ids.len += nlocs;
	p->sample_values.len += nv;
	p->labels.len += nlabels;
	p->priv->samples_indexed = p->samples.len;
	return 0;
}

int pprof_add_sample(struct pprof_profile *p, const struct pprof_frame *frames, size_t nframes,
		     const int64_t *values, const char *const (*labels)[2], size_t nlabels,
		     struct err *e)
{
	struct wb k = {0};
	uint64_t *ids = malloc((nframes ? nframes : 1) * sizeof(*ids));
	struct pprof_label *ls = calloc(nlabels ? nlabels : 1, sizeof(*ls));
	int err = 0;
	if (!ids || !ls) {
		err = oom(e);
		goto out;
	}
	for (size_t i = 0; i < nframes; i++) {
		if (frames[i].mapping_id && find_id(p, 0, frames[i].mapping_id) == SIZE_MAX) {
			err = err_set(e, EINVAL, "frame %zu: unknown mapping id %llu", i,
				      (unsigned long long)frames[i].mapping_id);
			goto out;
		}
		struct pprof_location l = {.mapping_id = frames[i].mapping_id,
					   .address = frames[i].address};
		ids[i] = intern_location(p, &l, NULL, i == 0 ? SYMZ_LEAF_PC : SYMZ_RETURN_ADDRESS, &k);
		if (!ids[i]) {
			err = oom(e);
			goto out;
		}
	}
	for (size_t i = 0; i < nlabels; i++) {
		ls[i].key = pprof_intern(p, labels[i][0]);
		ls[i].str = pprof_intern(p, labels[i][1]);
		if (ls[i].key < 0 || ls[i].str < 0) {
			err = oom(e);
			goto out;
		}
	}
	if (add_sample_ids(p, ids, nframes, values, ls, nlabels, &k))
		err = oom(e);
out:
	free(k.d);
	free(ids);
	free(ls);
	return err;
}

/* ---- merging ---- */
static bool same_types(const struct pprof_profile *a, const struct pprof_profile *b)
{
	if (a->sample_types.len != b->sample_types.len)
		return false;
	for (size_t i = 0; i < a->sample_types.len; i++) {
		const struct pprof_value_type *x = &VEC_AT(&a->sample_types, struct pprof_value_type, i);
		const struct pprof_value_type *y = &VEC_AT(&b->sample_types, struct pprof_value_type, i);
		if (strcmp(pprof_str(a, x->type), pprof_str(b, y->type)) ||
		    strcmp(pprof_str(a, x->unit), pprof_str(b, y->unit)))
			return false;
	}
	return true;
}

int pprof_merge(struct pprof_profile *dst, const struct pprof_profile *src, struct err *e)
{
	if (!same_types(dst, src))
		return err_set(e, EINVAL, "cannot merge profiles with different sample types");
	/* src is const; its id lookups may need a table: use a private copy of
	 * the lookups through a cast-free path by indexing ids ourselves. */
	struct pprof_profile *s = (struct pprof_profile *)src; /* find_id caches only */
	uint8_t *kinds = NULL;
	uint64_t *map_ids = calloc(src->mappings.len + 1, sizeof(uint64_t));
	uint64_t *fn_ids = calloc(src->functions.len + 1, sizeof(uint64_t));
	uint64_t *loc_ids = calloc(src->locations.len + 1, sizeof(uint64_t));
	struct vec lines, ids, labels;
	vec_init(&lines, sizeof(struct pprof_line));
	vec_init(&ids, sizeof(uint64_t));
	vec_init(&labels, sizeof(struct pprof_label));
	struct wb k = {0};
	int err = 0;
	if (!map_ids || !fn_ids || !loc_ids || pprof_location_kinds(src, &kinds, e))
		goto nomem;
	for (size_t i = 0; i < src->mappings.len; i++) {
		const struct pprof_mapping *m = &VEC_AT(&src->mappings, struct pprof_mapping, i);
		map_ids[i] = intern_mapping(dst, m, pprof_str(src, m->build_id), pprof_str(src, m->filename));
		if (!map_ids[i])
			goto nomem;
		struct pprof_mapping *dm = pprof_mapping_by_id(dst, map_ids[i]);
		dm->has_functions |= m->has_functions;
		dm->has_filenames |= m->has_filenames;
		dm->has_line_numbers |= m->has_line_numbers;
		dm->has_inline_frames |= m->has_inline_frames;
	}
	for (size_t i = 0; i < src->functions.len; i++) {
		const struct pprof_function *f = &VEC_AT(&src->functions, struct pprof_function, i);
		fn_ids[i] = pprof_intern_function(dst, pprof_str(src, f->name), pprof_str(src, f->system_name),
						  pprof_str(src, f->filename), f->start_line);
		if (!fn_ids[i])
			goto nomem;
	}
	for (size_t i = 0; i < src->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&src->locations, struct pprof_location, i);
		struct pprof_location t = *l;
		t.mapping_id = l->mapping_id ? map_ids[find_id(s, 0, l->mapping_id)] : 0;
		lines.len = 0;
		if (vec_reserve(&lines, l->line_count))
			goto nomem;
		for (size_t j = 0; j < l->line_count; j++) {
			struct pprof_line ln = VEC_AT(&src->lines, struct pprof_line, l->line_off + j);
			if (ln.function_id)
				ln.function_id = fn_ids[find_id(s, 2, ln.function_id)];
			VEC_AT(&lines, struct pprof_line, lines.len++) = ln;
		}
		loc_ids[i] = intern_location(dst, &t, lines.data, kinds[i], &k);
		if (!loc_ids[i])
			goto nomem;
	}
	for (size_t i = 0; i < src->samples.len; i++) {
		const struct pprof_sample *sm = &VEC_AT(&src->samples, struct pprof_sample, i);
		ids.len = labels.len = 0;
		if (vec_reserve(&ids, sm->loc_count) || vec_reserve(&labels, sm->label_count))
			goto nomem;
		for (size_t j = 0; j < sm->loc_count; j++) {
			uint64_t id = VEC_AT(&src->sample_loc_ids, uint64_t, sm->loc_off + j);
			VEC_AT(&ids, uint64_t, ids.len++) = loc_ids[find_id(s, 1, id)];
		}
		for (size_t j = 0; j < sm->label_count; j++) {
			const struct pprof_label *sl = &VEC_AT(&src->labels, struct pprof_label, sm->label_off + j);
			struct pprof_label dl = {pprof_intern(dst, pprof_str(src, sl->key)),
						 pprof_intern(dst, pprof_str(src, sl->str)), sl->num,
						 pprof_intern(dst, pprof_str(src, sl->num_unit))};
			if (dl.key < 0 || dl.str < 0 || dl.num_unit < 0)
				goto nomem;
			VEC_AT(&labels, struct pprof_label, labels.len++) = dl;
		}
		if (add_sample_ids(dst, ids.data, ids.len, &VEC_AT(&src->sample_values, int64_t, sm->value_off),
				   labels.data, labels.len, &k))
			goto nomem;
	}
	if (src->duration_nanos > 0 && dst->duration_nanos <= INT64_MAX - src->duration_nanos)
		dst->duration_nanos += src->duration_nanos;
	if (!dst->time_nanos || (src->time_nanos && src->time_nanos < dst->time_nanos))
		dst->time_nanos = src->time_nanos;
	goto out;
nomem:
	err = oom(e);
out:
	free(kinds);
	free(map_ids);
	free(fn_ids);
	free(loc_ids);
	vec_free(&lines);
	vec_free(&ids);
	vec_free(&labels);
	free(k.d);
	return err;
}

int pprof_location_kinds(const struct pprof_profile *p, uint8_t **out, struct err *e)
{
	struct pprof_profile *q = (struct pprof_profile *)p; /* find_id caches only */
	/* bit 0: seen as leaf, bit 1: seen as caller */
	uint8_t *seen = calloc(p->locations.len + 1, 1);
	if (!seen)
		return oom(e);
	for (size_t i = 0; i < p->samples.len; i++) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, i);
		for (size_t j = 0; j < s->loc_count; j++) {
			size_t li = find_id(q, 1, VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off + j));
			if (li != SIZE_MAX)
				seen[li] |= j == 0 ? 1 : 2;
		}
	}
	for (size_t i = 0; i < p->locations.len; i++)
		seen[i] = seen[i] == 2 ? SYMZ_RETURN_ADDRESS : SYMZ_LEAF_PC;
	*out = seen;
	return 0;
}
