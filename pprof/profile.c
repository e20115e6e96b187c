/* pprof profiles: the in-memory model, the string table, id lookups,
 * building, merging and the frame-kind rule (pprof.h).  The wire format is
 * in codec.c. */
#include "pprof/pprof.h"
#include "pprof/pprof_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int pprof_oom(struct err *e)
{
	return err_set(e, ENOMEM, "out of memory reading the profile");
}

/* A content key under construction (the maps' keys are bytes); a failed
 * append marks it, so a key is built without a check per field. */
struct key {
	struct vec bytes; /* uint8_t */
	bool oom;
};

static void key_init(struct key *k)
{
	vec_init(&k->bytes, 1);
	k->oom = false;
}

static void key_add(struct key *k, const void *s, size_t n)
{
	if (k->oom || n == 0) /* s may be NULL then (a sample without labels) */
		return;
	if (vec_reserve(&k->bytes, k->bytes.len + n)) {
		k->oom = true;
		return;
	}
	memcpy((uint8_t *)k->bytes.data + k->bytes.len, s, n);
	k->bytes.len += n;
}

/* Write v as a varint at w (at most 10 bytes); returns the end. */
static uint8_t *key_varint(uint8_t *w, uint64_t v)
{
	while (v >= 0x80) {
		*w++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*w++ = (uint8_t)v;
	return w;
}

/* ---- the profile ---- */
struct pprof_profile *pprof_alloc(void)
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
	hashmap_init(&pv->strings);
	hashmap_init(&pv->funcs);
	hashmap_init(&pv->maps);
	hashmap_init(&pv->locs);
	hashmap_init(&pv->samples);
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
	hashmap_free(&pv->strings);
	hashmap_free(&pv->funcs);
	hashmap_free(&pv->maps);
	hashmap_free(&pv->locs);
	hashmap_free(&pv->samples);
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
int pprof_str_append(struct pprof_profile *p, const char *s, size_t len)
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
		if (hashmap_find(&pv->strings, t, strlen(t), &v, true) < 0)
			return -ENOMEM;
	}
	uint64_t v = pv->str_off.len;
	size_t len = strlen(s);
	int r = hashmap_find(&pv->strings, s, len, &v, true);
	if (r < 0)
		return -ENOMEM;
	if (r == 1)
		return (int64_t)v;
	if (pprof_str_append(p, s, len))
		return -ENOMEM;
	pv->strings_indexed = pv->str_off.len;
	return (int64_t)v;
}

int64_t pprof_append_string(struct pprof_profile *p, const char *s)
{
	struct pprof_private *pv = p->priv;
	int64_t idx = (int64_t)pv->str_off.len;
	if (pprof_str_append(p, s ? s : "", s ? strlen(s) : 0))
		return -ENOMEM;
	return idx;
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

uint64_t pprof_id_of(const struct pprof_profile *p, enum pprof_record kind, size_t i)
{
	switch (kind) {
	case PPROF_MAPPINGS: return VEC_AT(&p->mappings, struct pprof_mapping, i).id;
	case PPROF_LOCATIONS: return VEC_AT(&p->locations, struct pprof_location, i).id;
	default: return VEC_AT(&p->functions, struct pprof_function, i).id;
	}
}

const struct vec *pprof_records(const struct pprof_profile *p, enum pprof_record kind)
{
	return kind == 0 ? &p->mappings : kind == 1 ? &p->locations : &p->functions;
}

/* Index of the record with this id, SIZE_MAX when none.  Ids that equal
 * index+1 (what every writer we know produces) need no table; when all of
 * them do, neither does an absent id, which is what the interning functions
 * probe for on every new record (a table rebuilt each time made adding n
 * records O(n^2 log n)). */
size_t pprof_find_id(struct pprof_profile *p, enum pprof_record kind, uint64_t id)
{
	const struct vec *v = pprof_records(p, kind);
	if (id && id <= v->len && pprof_id_of(p, kind, id - 1) == id)
		return id - 1;
	struct pprof_private *pv = p->priv;
	struct id_index *t = &pv->ids[kind];
	if (t->dense > v->len)
		t->dense = 0;
	while (t->dense < v->len && pprof_id_of(p, kind, t->dense) == t->dense + 1)
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
			pairs[i] = (struct id_pair){pprof_id_of(p, kind, i), i};
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
	size_t i = pprof_find_id(p, PPROF_MAPPINGS, id);
	return i == SIZE_MAX ? NULL : &VEC_AT(&p->mappings, struct pprof_mapping, i);
}

struct pprof_location *pprof_location_by_id(struct pprof_profile *p, uint64_t id)
{
	size_t i = pprof_find_id(p, PPROF_LOCATIONS, id);
	return i == SIZE_MAX ? NULL : &VEC_AT(&p->locations, struct pprof_location, i);
}

struct pprof_function *pprof_function_by_id(struct pprof_profile *p, uint64_t id)
{
	size_t i = pprof_find_id(p, PPROF_FUNCTIONS, id);
	return i == SIZE_MAX ? NULL : &VEC_AT(&p->functions, struct pprof_function, i);
}

static size_t vec_bytes(const struct vec *v)
{
	return v->cap * v->elem_size;
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
		 hashmap_memory(&pv->strings) + hashmap_memory(&pv->funcs) + hashmap_memory(&pv->maps) +
		 hashmap_memory(&pv->locs) + hashmap_memory(&pv->samples);
	for (size_t i = 0; i < ARRAY_SIZE(pv->ids); i++)
		if (pv->ids[i].pairs && pv->ids[i].built_for != SIZE_MAX)
			total += pv->ids[i].built_for * 2 * sizeof(uint64_t);
	return total;
}

/* ---- building ---- */
struct pprof_profile *pprof_new(const char *const *types, const char *const *units, size_t n)
{
	struct pprof_profile *p = pprof_alloc();
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
static int mapping_key(const struct pprof_profile *p, const struct pprof_mapping *m, struct key *k)
{
	k->bytes.len = 0;
	const char *s = pprof_str(p, m->build_id);
	key_add(k, s, strlen(s) + 1);
	s = pprof_str(p, m->filename);
	key_add(k, s, strlen(s) + 1);
	uint64_t nums[3] = {m->memory_start, m->memory_limit, m->file_offset};
	key_add(k, nums, sizeof(nums));
	return k->oom ? -ENOMEM : 0;
}

static int index_mappings(struct pprof_profile *p, struct key *k)
{
	struct pprof_private *pv = p->priv;
	for (; pv->maps_indexed < p->mappings.len; pv->maps_indexed++) {
		const struct pprof_mapping *m = &VEC_AT(&p->mappings, struct pprof_mapping, pv->maps_indexed);
		uint64_t id = m->id;
		if (mapping_key(p, m, k) || hashmap_find(&pv->maps, k->bytes.data, k->bytes.len, &id, true) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Map a mapping with this content, creating it when new; returns its id or 0. */
static uint64_t intern_mapping(struct pprof_profile *p, const struct pprof_mapping *tmpl,
			       const char *build_id, const char *filename)
{
	struct key k;
	key_init(&k);
	uint64_t id = 0;
	struct pprof_mapping m = *tmpl;
	m.build_id = pprof_intern(p, build_id);
	m.filename = pprof_intern(p, filename);
	if (m.build_id < 0 || m.filename < 0 || index_mappings(p, &k) || mapping_key(p, &m, &k))
		goto out;
	id = p->mappings.len + 1;
	while (pprof_find_id(p, PPROF_MAPPINGS, id) != SIZE_MAX) /* parsed profiles may use any ids */
		id++;
	int r = hashmap_find(&p->priv->maps, k.bytes.data, k.bytes.len, &id, true);
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
	vec_free(&k.bytes);
	return id;
}

uint64_t pprof_add_mapping(struct pprof_profile *p, const char *build_id, const char *filename)
{
	struct pprof_mapping m = {.memory_limit = UINT64_MAX};
	return intern_mapping(p, &m, build_id, filename);
}

/* Function by content: (name, system_name, filename) as string indexes
 * of p, and start_line.  Returns its id, 0 on ENOMEM. */
static uint64_t intern_function(struct pprof_profile *p, const struct pprof_function *f)
{
	struct pprof_private *pv = p->priv;
	for (; pv->funcs_indexed < p->functions.len; pv->funcs_indexed++) {
		const struct pprof_function *g = &VEC_AT(&p->functions, struct pprof_function,
							 pv->funcs_indexed);
		int64_t key[4] = {g->name, g->system_name, g->filename, g->start_line};
		uint64_t id = g->id;
		if (hashmap_find(&pv->funcs, key, sizeof(key), &id, true) < 0)
			return 0;
	}
	int64_t key[4] = {f->name, f->system_name, f->filename, f->start_line};
	uint64_t id = p->functions.len + 1;
	while (pprof_find_id(p, PPROF_FUNCTIONS, id) != SIZE_MAX)
		id++;
	int r = hashmap_find(&pv->funcs, key, sizeof(key), &id, true);
	if (r < 0)
		return 0;
	if (r == 0) {
		struct pprof_function *nf = vec_push(&p->functions);
		if (!nf)
			return 0;
		*nf = *f;
		nf->id = id;
		pv->funcs_indexed = p->functions.len;
	}
	return id;
}

uint64_t pprof_intern_function(struct pprof_profile *p, const char *name, const char *system_name,
			       const char *filename, int64_t start_line)
{
	struct pprof_function f = {0, pprof_intern(p, name), pprof_intern(p, system_name),
				   pprof_intern(p, filename), start_line};
	if (f.name < 0 || f.system_name < 0 || f.filename < 0)
		return 0;
	return intern_function(p, &f);
}

int pprof_set_lines(struct pprof_profile *p, size_t li, const struct pprof_line *lines, size_t n)
{
	/* Appended: other locations' ranges into p->lines stay valid. */
	size_t off = p->lines.len;
	if (li >= p->locations.len)
		return -EINVAL;
	if (vec_reserve(&p->lines, off + n))
		return -ENOMEM;
	if (n)
		memcpy(&VEC_AT(&p->lines, struct pprof_line, off), lines, n * sizeof(*lines));
	p->lines.len += n;
	struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, li);
	l->line_off = off;
	l->line_count = n;
	return 0;
}

/* Location key: (mapping, address, kind, is_folded, lines).  The kind keeps
 * a leaf and a return address at one address apart (pprof.h). */
static int location_key(const struct pprof_profile *p, const struct pprof_location *l, uint8_t kind,
			struct key *k)
{
	k->bytes.len = 0;
	uint64_t head[4] = {l->mapping_id, l->address, kind | (uint64_t)l->is_folded << 8,
			    l->line_count};
	key_add(k, head, sizeof(head));
	if (l->line_count)
		key_add(k, &VEC_AT(&p->lines, struct pprof_line, l->line_off),
			 l->line_count * sizeof(struct pprof_line));
	return k->oom ? -ENOMEM : 0;
}

static int index_locations(struct pprof_profile *p, struct key *k)
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
		    hashmap_find(&pv->locs, k->bytes.data, k->bytes.len, &id, true) < 0) {
			free(kinds);
			return -ENOMEM;
		}
	}
	free(kinds);
	return 0;
}

void pprof_locations_changed(struct pprof_profile *p)
{
	hashmap_free(&p->priv->locs);
	p->priv->locs_indexed = 0;
	hashmap_free(&p->priv->samples);
	p->priv->samples_indexed = 0;
}

/* Location with this content (lines copied from `lines`); returns id or 0. */
static uint64_t intern_location(struct pprof_profile *p, const struct pprof_location *tmpl,
				const struct pprof_line *lines, uint8_t kind, struct key *k)
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
	while (pprof_find_id(p, PPROF_LOCATIONS, id) != SIZE_MAX)
		id++;
	int r = hashmap_find(&p->priv->locs, k->bytes.data, k->bytes.len, &id, true);
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

/* Sample key: location ids, then labels.  Label strings are canonical
 * indexes (what pprof_intern returns for their text), so equal labels give
 * equal keys without hashing their text for every sample. */
static int sample_key(const uint64_t *locs, size_t nlocs, const struct pprof_label *labels,
		      size_t nlabels, struct key *k)
{
	/* Varints, as on the wire: ids and string indexes are small, and a
	 * key a third as long is hashed and compared a third as long, once
	 * per sample of every merge.  The count of locations first, then four
	 * numbers per label, keeps the encoding unambiguous. */
	k->bytes.len = 0;
	if (vec_reserve(&k->bytes, 10 * (1 + nlocs + 4 * nlabels))) {
		k->oom = true;
		return -ENOMEM;
	}
	uint8_t *start = k->bytes.data, *w = start;
	w = key_varint(w, nlocs);
	for (size_t i = 0; i < nlocs; i++)
		w = key_varint(w, locs[i]);
	for (size_t i = 0; i < nlabels; i++) {
		w = key_varint(w, (uint64_t)labels[i].key);
		w = key_varint(w, (uint64_t)labels[i].str);
		w = key_varint(w, (uint64_t)labels[i].num);
		w = key_varint(w, (uint64_t)labels[i].num_unit);
	}
	k->bytes.len = (size_t)(w - start);
	return 0;
}

/* Enter the samples not yet in the content map.  A parsed profile's labels
 * may name duplicate strings: they are keyed by canonical index. */
static int index_samples(struct pprof_profile *p, struct key *k)
{
	struct pprof_private *pv = p->priv;
	if (pv->samples_indexed == p->samples.len)
		return 0;
	size_t nstr = pprof_string_count(p);
	int64_t *canon = malloc((nstr ? nstr : 1) * sizeof(*canon));
	struct vec labels;
	vec_init(&labels, sizeof(struct pprof_label));
	int err = canon ? 0 : -ENOMEM;
	for (size_t i = 0; i < nstr && !err; i++)
		if ((canon[i] = pprof_intern(p, pprof_str(p, (int64_t)i))) < 0)
			err = -ENOMEM;
	for (; pv->samples_indexed < p->samples.len && !err; pv->samples_indexed++) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, pv->samples_indexed);
		labels.len = 0;
		if (vec_reserve(&labels, s->label_count)) {
			err = -ENOMEM;
			break;
		}
		for (size_t j = 0; j < s->label_count; j++) {
			struct pprof_label l = VEC_AT(&p->labels, struct pprof_label, s->label_off + j);
			/* validated: every index is below nstr */
			l.key = canon[l.key];
			l.str = canon[l.str];
			l.num_unit = canon[l.num_unit];
			VEC_AT(&labels, struct pprof_label, labels.len++) = l;
		}
		uint64_t v = pv->samples_indexed;
		if (sample_key(&VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off), s->loc_count,
			       labels.data, labels.len, k) ||
		    hashmap_find(&pv->samples, k->bytes.data, k->bytes.len, &v, true) < 0)
			err = -ENOMEM;
	}
	free(canon);
	vec_free(&labels);
	return err;
}

/* Add (or sum into) the sample with these location ids and labels (label
 * strings canonical in p). */
static int add_sample_ids(struct pprof_profile *p, const uint64_t *locs, size_t nlocs,
			  const int64_t *values, const struct pprof_label *labels, size_t nlabels,
			  struct key *k)
{
	if (index_samples(p, k) || sample_key(locs, nlocs, labels, nlabels, k))
		return -ENOMEM;
	uint64_t si = p->samples.len;
	int r = hashmap_find(&p->priv->samples, k->bytes.data, k->bytes.len, &si, true);
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
	struct key k;
	key_init(&k);
	uint64_t *ids = malloc((nframes ? nframes : 1) * sizeof(*ids));
	struct pprof_label *ls = calloc(nlabels ? nlabels : 1, sizeof(*ls));
	int err = 0;
	if (!ids || !ls) {
		err = pprof_oom(e);
		goto out;
	}
	for (size_t i = 0; i < nframes; i++) {
		if (frames[i].mapping_id && pprof_find_id(p, PPROF_MAPPINGS, frames[i].mapping_id) == SIZE_MAX) {
			err = err_set(e, EINVAL, "frame %zu: unknown mapping id %llu", i,
				      (unsigned long long)frames[i].mapping_id);
			goto out;
		}
		struct pprof_location l = {.mapping_id = frames[i].mapping_id,
					   .address = frames[i].address};
		ids[i] = intern_location(p, &l, NULL, i == 0 ? PPROF_LEAF_PC : PPROF_RETURN_ADDRESS, &k);
		if (!ids[i]) {
			err = pprof_oom(e);
			goto out;
		}
	}
	for (size_t i = 0; i < nlabels; i++) {
		ls[i].key = pprof_intern(p, labels[i][0]);
		ls[i].str = pprof_intern(p, labels[i][1]);
		if (ls[i].key < 0 || ls[i].str < 0) {
			err = pprof_oom(e);
			goto out;
		}
	}
	if (add_sample_ids(p, ids, nframes, values, ls, nlabels, &k))
		err = pprof_oom(e);
out:
	vec_free(&k.bytes);
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
	/* src is const; its id lookups may build a cached table, nothing else. */
	struct pprof_profile *s = (struct pprof_profile *)src;
	size_t nstr = pprof_string_count(src);
	uint8_t *kinds = NULL;
	/* Each of src's strings is interned into dst once, here: every record
	 * and label below is translated by index, never looked up by text. */
	int64_t *str = malloc((nstr ? nstr : 1) * sizeof(int64_t));
	uint64_t *map_ids = calloc(src->mappings.len + 1, sizeof(uint64_t));
	uint64_t *fn_ids = calloc(src->functions.len + 1, sizeof(uint64_t));
	uint64_t *loc_ids = calloc(src->locations.len + 1, sizeof(uint64_t));
	struct vec lines, ids, labels;
	vec_init(&lines, sizeof(struct pprof_line));
	vec_init(&ids, sizeof(uint64_t));
	vec_init(&labels, sizeof(struct pprof_label));
	struct key k;
	key_init(&k);
	int err = 0;
	if (!str || !map_ids || !fn_ids || !loc_ids || pprof_location_kinds(src, &kinds, e))
		goto nomem;
	for (size_t i = 0; i < nstr; i++)
		if ((str[i] = pprof_intern(dst, pprof_str(src, (int64_t)i))) < 0)
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
		struct pprof_function df = {0, str[f->name], str[f->system_name], str[f->filename],
					    f->start_line};
		if (!(fn_ids[i] = intern_function(dst, &df)))
			goto nomem;
	}
	for (size_t i = 0; i < src->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&src->locations, struct pprof_location, i);
		struct pprof_location t = *l;
		t.mapping_id = l->mapping_id ? map_ids[pprof_find_id(s, PPROF_MAPPINGS, l->mapping_id)] : 0;
		lines.len = 0;
		if (vec_reserve(&lines, l->line_count))
			goto nomem;
		for (size_t j = 0; j < l->line_count; j++) {
			struct pprof_line ln = VEC_AT(&src->lines, struct pprof_line, l->line_off + j);
			if (ln.function_id)
				ln.function_id = fn_ids[pprof_find_id(s, PPROF_FUNCTIONS, ln.function_id)];
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
			VEC_AT(&ids, uint64_t, ids.len++) = loc_ids[pprof_find_id(s, PPROF_LOCATIONS, id)];
		}
		for (size_t j = 0; j < sm->label_count; j++) {
			const struct pprof_label *sl = &VEC_AT(&src->labels, struct pprof_label, sm->label_off + j);
			VEC_AT(&labels, struct pprof_label, labels.len++) =
				(struct pprof_label){str[sl->key], str[sl->str], sl->num, str[sl->num_unit]};
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
	err = pprof_oom(e);
out:
	free(kinds);
	free(str);
	free(map_ids);
	free(fn_ids);
	free(loc_ids);
	vec_free(&lines);
	vec_free(&ids);
	vec_free(&labels);
	vec_free(&k.bytes);
	return err;
}

int pprof_location_kinds(const struct pprof_profile *p, uint8_t **out, struct err *e)
{
	struct pprof_profile *q = (struct pprof_profile *)p; /* find_id caches only */
	/* bit 0: seen as leaf, bit 1: seen as caller */
	uint8_t *seen = calloc(p->locations.len + 1, 1);
	if (!seen)
		return pprof_oom(e);
	for (size_t i = 0; i < p->samples.len; i++) {
		const struct pprof_sample *s = &VEC_AT(&p->samples, struct pprof_sample, i);
		for (size_t j = 0; j < s->loc_count; j++) {
			size_t li = pprof_find_id(q, PPROF_LOCATIONS, VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off + j));
			if (li != SIZE_MAX)
				seen[li] |= j == 0 ? 1 : 2;
		}
	}
	for (size_t i = 0; i < p->locations.len; i++)
		seen[i] = seen[i] == 2 ? PPROF_RETURN_ADDRESS : PPROF_LEAF_PC;
	*out = seen;
	return 0;
}
