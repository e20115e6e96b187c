/* The pprof wire format: decoding with every read bounds-checked,
 * validation (after it every index and reference is in range), encoding and
 * gzip.  Field numbers are those of the public schema (package
 * perftools.profiles), which tests/bench/profile.proto reproduces. */
#include "pprof/pprof.h"
#include "pprof/pprof_internal.h"

#include "common/gzip.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
		return pprof_oom(r->e);
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
				err = l ? rd_label(&f.sub, l) : pprof_oom(r->e);
			}
		}
		if (err)
			return err == -ENOMEM ? pprof_oom(r->e) : err;
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
		return pprof_oom(r->e);
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
		return pprof_oom(r->e);
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
				return pprof_oom(r->e);
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
		return pprof_oom(r->e);
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
				return pprof_oom(r->e);
			err = rd_value_type(&f.sub, vt);
			break;
		}
		case 2: err = want(r, &f, WT_LEN) ?: rd_sample(p, &f.sub); break;
		case 3: err = want(r, &f, WT_LEN) ?: rd_mapping(p, &f.sub); break;
		case 4: err = want(r, &f, WT_LEN) ?: rd_location(p, &f.sub); break;
		case 5: err = want(r, &f, WT_LEN) ?: rd_function(p, &f.sub); break;
		case 6:
			if (!(err = want(r, &f, WT_LEN)) &&
			    pprof_str_append(p, (const char *)f.sub.p, (size_t)(f.sub.end - f.sub.p)))
				err = pprof_oom(r->e);
			break;
		case 13:
			err = rd_repeated(r, &f, &p->comments);
			if (err == -ENOMEM)
				err = pprof_oom(r->e);
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

static int check_unique_ids(struct pprof_profile *p, enum pprof_record kind, const char *what, struct err *e)
{
	const struct vec *v = pprof_records(p, kind);
	for (size_t i = 0; i < v->len; i++) {
		uint64_t id = pprof_id_of(p, kind, i);
		if (id == 0)
			return err_set(e, EINVAL, "bad profile: %s #%zu has id 0", what, i);
		if (pprof_find_id(p, kind, id) != i)
			return err_set(e, EINVAL, "bad profile: duplicate %s id %llu", what,
				       (unsigned long long)id);
	}
	return 0;
}

static int validate(struct pprof_profile *p, struct err *e)
{
	int err;
	if (pprof_string_count(p) == 0 && pprof_str_append(p, "", 0))
		return pprof_oom(e);
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
	if ((err = check_unique_ids(p, PPROF_MAPPINGS, "mapping", e)) ||
	    (err = check_unique_ids(p, PPROF_LOCATIONS, "location", e)) ||
	    (err = check_unique_ids(p, PPROF_FUNCTIONS, "function", e)))
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
		if (l->mapping_id && pprof_find_id(p, PPROF_MAPPINGS, l->mapping_id) == SIZE_MAX)
			return err_set(e, EINVAL, "bad profile: location %llu refers to unknown mapping %llu",
				       (unsigned long long)l->id, (unsigned long long)l->mapping_id);
		for (size_t j = 0; j < l->line_count; j++) {
			uint64_t fid = VEC_AT(&p->lines, struct pprof_line, l->line_off + j).function_id;
			if (fid && pprof_find_id(p, PPROF_FUNCTIONS, fid) == SIZE_MAX)
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
			if (pprof_find_id(p, PPROF_LOCATIONS, id) == SIZE_MAX)
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
		return pprof_oom(e);
	return 0;
}

int pprof_parse(const void *data, size_t size, struct pprof_profile **out, struct err *e)
{
	return pprof_parse_limited(data, size, PPROF_MAX_SIZE, out, e);
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
	if (gzip_is(bytes, size)) {
		struct err why = {{0}};
		int err = gzip_decompress(bytes, size, max_plain, &plain, &size, &why);
		if (err)
			return err_set(e, -err, "%s%s", err == -EINVAL ? "bad profile: " : "profile: ",
				       why.msg);
		bytes = plain;
	} else if (size > max_plain) {
		return err_set(e, EFBIG, "profile is larger than %zu bytes", max_plain);
	}
	struct pprof_profile *p = pprof_alloc();
	if (!p) {
		free(plain);
		return pprof_oom(e);
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


/* ---- wire encoding ----
 * Two passes over the profile: the first computes the exact size of every
 * nested message (samples' and locations' sizes are kept for the second),
 * the second writes into one buffer of the total size.  No message is
 * encoded twice or copied, and the buffer never grows. */
static size_t varint_len(uint64_t v)
{
	/* 7 bits per byte; v | 1 keeps clzll defined for 0 (one byte). */
	return (size_t)(64 - __builtin_clzll(v | 1) + 6) / 7;
}

/* A varint field (omitted when 0, the proto3 default). */
static size_t u_len(uint32_t num, uint64_t v)
{
	return v ? varint_len((uint64_t)num << 3) + varint_len(v) : 0;
}

/* A length-delimited field whose payload is body bytes. */
static size_t len_len(uint32_t num, size_t body)
{
	return varint_len((uint64_t)num << 3 | WT_LEN) + varint_len(body) + body;
}

static size_t packed_body(const uint64_t *v, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += varint_len(v[i]);
	return len;
}

static size_t packed_len(uint32_t num, const uint64_t *v, size_t n)
{
	return n ? len_len(num, packed_body(v, n)) : 0;
}

static size_t value_type_body(const struct pprof_value_type *vt)
{
	return u_len(1, (uint64_t)vt->type) + u_len(2, (uint64_t)vt->unit);
}

static size_t label_body(const struct pprof_label *l)
{
	return u_len(1, (uint64_t)l->key) + u_len(2, (uint64_t)l->str) + u_len(3, (uint64_t)l->num) +
	       u_len(4, (uint64_t)l->num_unit);
}

static const uint64_t *sample_locs(const struct pprof_profile *p, const struct pprof_sample *s)
{
	return &VEC_AT(&p->sample_loc_ids, uint64_t, s->loc_off);
}

static const uint64_t *sample_vals(const struct pprof_profile *p, const struct pprof_sample *s)
{
	/* int64 values travel as their two's-complement varint. */
	return (const uint64_t *)&VEC_AT(&p->sample_values, int64_t, s->value_off);
}

static size_t sample_body(const struct pprof_profile *p, const struct pprof_sample *s)
{
	size_t len = packed_len(1, sample_locs(p, s), s->loc_count) +
		     packed_len(2, sample_vals(p, s), s->value_count);
	for (size_t j = 0; j < s->label_count; j++)
		len += len_len(3, label_body(&VEC_AT(&p->labels, struct pprof_label, s->label_off + j)));
	return len;
}

static size_t mapping_body(const struct pprof_mapping *m)
{
	return u_len(1, m->id) + u_len(2, m->memory_start) + u_len(3, m->memory_limit) +
	       u_len(4, m->file_offset) + u_len(5, (uint64_t)m->filename) +
	       u_len(6, (uint64_t)m->build_id) + u_len(7, m->has_functions) +
	       u_len(8, m->has_filenames) + u_len(9, m->has_line_numbers) +
	       u_len(10, m->has_inline_frames);
}

static size_t line_body(const struct pprof_line *ln)
{
	return u_len(1, ln->function_id) + u_len(2, (uint64_t)ln->line) + u_len(3, (uint64_t)ln->column);
}

static size_t location_body(const struct pprof_profile *p, const struct pprof_location *l)
{
	size_t len = u_len(1, l->id) + u_len(2, l->mapping_id) + u_len(3, l->address) +
		     u_len(5, l->is_folded);
	for (size_t j = 0; j < l->line_count; j++)
		len += len_len(4, line_body(&VEC_AT(&p->lines, struct pprof_line, l->line_off + j)));
	return len;
}

static size_t function_body(const struct pprof_function *f)
{
	return u_len(1, f->id) + u_len(2, (uint64_t)f->name) + u_len(3, (uint64_t)f->system_name) +
	       u_len(4, (uint64_t)f->filename) + u_len(5, (uint64_t)f->start_line);
}

/* Fields of Profile itself that are not repeated messages. */
static size_t scalars_len(const struct pprof_profile *p)
{
	size_t len = u_len(7, (uint64_t)p->drop_frames) + u_len(8, (uint64_t)p->keep_frames) +
		     u_len(9, (uint64_t)p->time_nanos) + u_len(10, (uint64_t)p->duration_nanos) +
		     u_len(12, (uint64_t)p->period) +
		     packed_len(13, (const uint64_t *)p->comments.data, p->comments.len) +
		     u_len(14, (uint64_t)p->default_sample_type) + u_len(15, (uint64_t)p->doc_url);
	if (p->period_type.type || p->period_type.unit)
		len += len_len(11, value_type_body(&p->period_type));
	return len;
}

/* The writer: the buffer was sized by the first pass, so no bounds checks. */
struct wr {
	uint8_t *p;
};

static void put_varint(struct wr *w, uint64_t v)
{
	while (v >= 0x80) {
		*w->p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*w->p++ = (uint8_t)v;
}

static void put_u(struct wr *w, uint32_t num, uint64_t v)
{
	if (!v)
		return;
	put_varint(w, (uint64_t)num << 3 | WT_VARINT);
	put_varint(w, v);
}

static void put_len(struct wr *w, uint32_t num, size_t body)
{
	put_varint(w, (uint64_t)num << 3 | WT_LEN);
	put_varint(w, body);
}

static void put_packed(struct wr *w, uint32_t num, const uint64_t *v, size_t n)
{
	if (!n)
		return;
	put_len(w, num, packed_body(v, n));
	for (size_t i = 0; i < n; i++)
		put_varint(w, v[i]);
}

static void put_value_type(struct wr *w, uint32_t num, const struct pprof_value_type *vt)
{
	put_len(w, num, value_type_body(vt));
	put_u(w, 1, (uint64_t)vt->type);
	put_u(w, 2, (uint64_t)vt->unit);
}

static void put_sample(struct wr *w, const struct pprof_profile *p, const struct pprof_sample *s,
		       size_t body)
{
	put_len(w, 2, body);
	put_packed(w, 1, sample_locs(p, s), s->loc_count);
	put_packed(w, 2, sample_vals(p, s), s->value_count);
	for (size_t j = 0; j < s->label_count; j++) {
		const struct pprof_label *l = &VEC_AT(&p->labels, struct pprof_label, s->label_off + j);
		put_len(w, 3, label_body(l));
		put_u(w, 1, (uint64_t)l->key);
		put_u(w, 2, (uint64_t)l->str);
		put_u(w, 3, (uint64_t)l->num);
		put_u(w, 4, (uint64_t)l->num_unit);
	}
}

static void put_mapping(struct wr *w, const struct pprof_mapping *m)
{
	put_len(w, 3, mapping_body(m));
	put_u(w, 1, m->id);
	put_u(w, 2, m->memory_start);
	put_u(w, 3, m->memory_limit);
	put_u(w, 4, m->file_offset);
	put_u(w, 5, (uint64_t)m->filename);
	put_u(w, 6, (uint64_t)m->build_id);
	put_u(w, 7, m->has_functions);
	put_u(w, 8, m->has_filenames);
	put_u(w, 9, m->has_line_numbers);
	put_u(w, 10, m->has_inline_frames);
}

static void put_location(struct wr *w, const struct pprof_profile *p, const struct pprof_location *l,
			 size_t body)
{
	put_len(w, 4, body);
	put_u(w, 1, l->id);
	put_u(w, 2, l->mapping_id);
	put_u(w, 3, l->address);
	for (size_t j = 0; j < l->line_count; j++) {
		const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off + j);
		put_len(w, 4, line_body(ln));
		put_u(w, 1, ln->function_id);
		put_u(w, 2, (uint64_t)ln->line);
		put_u(w, 3, (uint64_t)ln->column);
	}
	put_u(w, 5, l->is_folded);
}

static void put_function(struct wr *w, const struct pprof_function *f)
{
	put_len(w, 5, function_body(f));
	put_u(w, 1, f->id);
	put_u(w, 2, (uint64_t)f->name);
	put_u(w, 3, (uint64_t)f->system_name);
	put_u(w, 4, (uint64_t)f->filename);
	put_u(w, 5, (uint64_t)f->start_line);
}

static void put_scalars(struct wr *w, const struct pprof_profile *p)
{
	put_u(w, 7, (uint64_t)p->drop_frames);
	put_u(w, 8, (uint64_t)p->keep_frames);
	put_u(w, 9, (uint64_t)p->time_nanos);
	put_u(w, 10, (uint64_t)p->duration_nanos);
	if (p->period_type.type || p->period_type.unit)
		put_value_type(w, 11, &p->period_type);
	put_u(w, 12, (uint64_t)p->period);
	put_packed(w, 13, (const uint64_t *)p->comments.data, p->comments.len);
	put_u(w, 14, (uint64_t)p->default_sample_type);
	put_u(w, 15, (uint64_t)p->doc_url);
}

static int encode(const struct pprof_profile *p, uint8_t **out, size_t *size, struct err *e)
{
	/* Pass 1: sizes.  Samples' and locations' bodies are the costly ones
	 * to measure; they are kept for pass 2. */
	size_t *sample_len = malloc((p->samples.len + 1) * sizeof(size_t));
	size_t *loc_len = malloc((p->locations.len + 1) * sizeof(size_t));
	if (!sample_len || !loc_len) {
		free(sample_len);
		free(loc_len);
		return err_set(e, ENOMEM, "out of memory serializing the profile");
	}
	size_t total = scalars_len(p);
	for (size_t i = 0; i < p->sample_types.len; i++)
		total += len_len(1, value_type_body(&VEC_AT(&p->sample_types, struct pprof_value_type, i)));
	for (size_t i = 0; i < p->samples.len; i++) {
		sample_len[i] = sample_body(p, &VEC_AT(&p->samples, struct pprof_sample, i));
		total += len_len(2, sample_len[i]);
	}
	for (size_t i = 0; i < p->mappings.len; i++)
		total += len_len(3, mapping_body(&VEC_AT(&p->mappings, struct pprof_mapping, i)));
	for (size_t i = 0; i < p->locations.len; i++) {
		loc_len[i] = location_body(p, &VEC_AT(&p->locations, struct pprof_location, i));
		total += len_len(4, loc_len[i]);
	}
	for (size_t i = 0; i < p->functions.len; i++)
		total += len_len(5, function_body(&VEC_AT(&p->functions, struct pprof_function, i)));
	for (size_t i = 0; i < pprof_string_count(p); i++)
		total += len_len(6, pprof_str_len(p, (int64_t)i));
	uint8_t *buf = total <= PPROF_MAX_SIZE ? malloc(total ? total : 1) : NULL;
	if (!buf) {
		free(sample_len);
		free(loc_len);
		return total > PPROF_MAX_SIZE
			       ? err_set(e, EFBIG, "profile would be larger than %u bytes", PPROF_MAX_SIZE)
			       : err_set(e, ENOMEM, "out of memory serializing the profile");
	}

	/* Pass 2: write, in field order. */
	struct wr w = {buf};
	for (size_t i = 0; i < p->sample_types.len; i++)
		put_value_type(&w, 1, &VEC_AT(&p->sample_types, struct pprof_value_type, i));
	for (size_t i = 0; i < p->samples.len; i++)
		put_sample(&w, p, &VEC_AT(&p->samples, struct pprof_sample, i), sample_len[i]);
	for (size_t i = 0; i < p->mappings.len; i++)
		put_mapping(&w, &VEC_AT(&p->mappings, struct pprof_mapping, i));
	for (size_t i = 0; i < p->locations.len; i++)
		put_location(&w, p, &VEC_AT(&p->locations, struct pprof_location, i), loc_len[i]);
	for (size_t i = 0; i < p->functions.len; i++)
		put_function(&w, &VEC_AT(&p->functions, struct pprof_function, i));
	for (size_t i = 0; i < pprof_string_count(p); i++) {
		size_t n = pprof_str_len(p, (int64_t)i);
		put_len(&w, 6, n);
		memcpy(w.p, pprof_str(p, (int64_t)i), n);
		w.p += n;
	}
	put_scalars(&w, p);
	assert((size_t)(w.p - buf) == total);
	free(sample_len);
	free(loc_len);
	*out = buf;
	*size = total;
	return 0;
}

int pprof_serialize(const struct pprof_profile *p, bool gzip, uint8_t **out, size_t *size,
		    struct err *e)
{
	uint8_t *plain = NULL;
	size_t plain_size = 0;
	int err = encode(p, &plain, &plain_size, e);
	if (err || !gzip) {
		if (!err) {
			*out = plain;
			*size = plain_size;
		}
		return err;
	}
	err = gzip_compress(plain, plain_size, out, size, e);
	free(plain);
	return err;
}

int pprof_write_file(const struct pprof_profile *p, const char *path, bool gzip, struct err *e)
{
	uint8_t *buf;
	size_t size;
	int err = pprof_serialize(p, gzip, &buf, &size, e);
	if (err)
		return err;
	err = write_file_atomic(path, buf, size, 0644, e);
	free(buf);
	return err;
}
