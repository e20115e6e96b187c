/* Symbolizing a pprof profile in place (symbolizer.h, "symbolizing a pprof
 * profile"): DWARF and symbol-table names from symbolization indexes for
 * mappings with a build-ID, JIT names from perf-map snapshots for mappings
 * named "perf-map:<sha256>", kernel names from the profile's kallsyms
 * snapshot.  Built on pprof/'s public API only. */
#include "symbolizer/symbolizer.h"
#include "pprof/pprof.h"
#include "common/hashmap.h"
#include "common/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pprof_location_kinds' values are handed to the lookups as they are. */
_Static_assert((int)PPROF_LEAF_PC == (int)SYMZ_LEAF_PC, "frame kinds differ");
_Static_assert((int)PPROF_RETURN_ADDRESS == (int)SYMZ_RETURN_ADDRESS, "frame kinds differ");

#define MAX_FRAMES 256

/* One resolution (a build-ID's index or a perf map), shared by every
 * mapping that names it. */
struct resolved {
	const struct symz_index *idx;    /* build-ID: NULL = missing */
	const struct symz_jit_map *map;  /* perf map: NULL = missing */
	const struct symz_kallsyms *ks;  /* kallsyms: NULL = missing */
	int vmlinux;                     /* for a kernel's index: -1 not checked, 0 unusable, 1 ok */
	uint64_t text;                   /* its _text (vmlinux) */
	size_t missing_slot;             /* index in rep->missing_ids */
};

struct work {
	struct pprof_profile *p;
	const struct symz_pprof_options *opt;
	struct symz_pprof_report *rep;
	struct hashmap by_ref; /* build-ID hex or "perf-map:<sha>" -> index in res */
	struct vec res;        /* struct resolved */
	struct symz_frame *frames;
	struct pprof_line *lines;
	char kallsyms_sha[SHA256_HEX_LEN + 1]; /* from the kernel comment; "" = none */
};

enum ref_kind { REF_INDEX, REF_PERF_MAP, REF_KALLSYMS };

void symz_pprof_report_free(struct symz_pprof_report *rep)
{
	free(rep->missing_ids);
	rep->missing_ids = NULL;
	rep->n_missing_ids = 0;
}

static int add_missing(struct symz_pprof_report *rep, const char *ref, const char *filename,
		       enum ref_kind kind, const char *reason)
{
	struct symz_pprof_missing *n = realloc(rep->missing_ids, (rep->n_missing_ids + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	rep->missing_ids = n;
	n += rep->n_missing_ids++;
	memset(n, 0, sizeof(*n));
	snprintf(n->build_id, sizeof(n->build_id), "%s", ref);
	snprintf(n->filename, sizeof(n->filename), "%s", filename);
	snprintf(n->reason, sizeof(n->reason), "%s", reason);
	n->perf_map = kind == REF_PERF_MAP;
	n->kallsyms = kind == REF_KALLSYMS;
	return 0;
}

/* A SHA-256 in hex (lowercased into sha) at the start of s, ended by end_chars. */
static bool take_sha(const char *s, const char *end_chars, char sha[SHA256_HEX_LEN + 1])
{
	for (size_t i = 0; i < SHA256_HEX_LEN; i++) {
		int c = s[i];
		if (hex_value(c) < 0)
			return false;
		sha[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	sha[SHA256_HEX_LEN] = 0;
	return strchr(end_chars, s[SHA256_HEX_LEN]) != NULL;
}

/* The SHA-256 (lowercased) in a "perf-map:<sha256>" mapping name. */
static bool perf_map_sha(const char *name, char sha[SHA256_HEX_LEN + 1])
{
	size_t plen = strlen(SYMZ_PERF_MAP_PREFIX);
	return !strncmp(name, SYMZ_PERF_MAP_PREFIX, plen) && strlen(name + plen) == SHA256_HEX_LEN &&
	       take_sha(name + plen, "", sha);
}

/* The kallsyms snapshot the agent's kernel comment names ("" = none). */
static void find_kallsyms_sha(const struct pprof_profile *p, char sha[SHA256_HEX_LEN + 1])
{
	sha[0] = 0;
	for (size_t i = 0; i < p->comments.len; i++) {
		const char *c = pprof_str(p, VEC_AT(&p->comments, int64_t, i));
		if (strncmp(c, SYMZ_KERNEL_COMMENT, strlen(SYMZ_KERNEL_COMMENT)))
			continue;
		const char *k = strstr(c, " kallsyms=");
		if (k && strlen(k + 10) >= SHA256_HEX_LEN && take_sha(k + 10, " \n", sha))
			return;
		sha[0] = 0;
	}
}

/* The module a kernel mapping stands for: "" for the kernel itself, NAME
 * for "[kmod:NAME]"; NULL when the mapping is not a kernel one. */
static const char *kernel_module(const char *fname, char *buf, size_t size)
{
	if (!strcmp(fname, SYMZ_KERNEL_MAPPING))
		return "";
	size_t plen = strlen(SYMZ_KMOD_PREFIX), n = strlen(fname);
	if (n <= plen + 1 || strncmp(fname, SYMZ_KMOD_PREFIX, plen) || fname[n - 1] != ']' ||
	    n - plen - 1 >= size)
		return NULL;
	memcpy(buf, fname + plen, n - plen - 1);
	buf[n - plen - 1] = 0;
	return buf;
}

/* The resolution for ref (a build-ID or "perf-map:<sha>"), asked of the
 * resolver the first time.  NULL on ENOMEM. */
static struct resolved *resolve(struct work *w, const char *ref, enum ref_kind kind,
				const char *sha, const char *filename)
{
	uint64_t slot = w->res.len;
	int r = hashmap_find(&w->by_ref, ref, strlen(ref), &slot, true);
	if (r < 0)
		return NULL;
	if (r == 1)
		return &VEC_AT(&w->res, struct resolved, slot);
	struct resolved *rs = vec_push(&w->res);
	if (!rs)
		return NULL;
	rs->vmlinux = -1;
	struct err why = {{0}};
	const struct symz_pprof_options *o = w->opt;
	int rc = kind == REF_PERF_MAP ? o->resolve_perf_map(o->ctx, sha, &rs->map, &why)
		 : kind == REF_KALLSYMS ? o->resolve_kallsyms(o->ctx, sha, &rs->ks, &why)
		 : o->resolve_index(o->ctx, ref, filename, &rs->idx, &why);
	if (rc != 0 || (!rs->idx && !rs->map && !rs->ks)) {
		rs->idx = NULL;
		rs->map = NULL;
		rs->ks = NULL;
		rs->missing_slot = w->rep->n_missing_ids;
		if (add_missing(w->rep, ref, filename, kind, why.msg[0] ? why.msg : "not found"))
			return NULL;
	}
	return rs;
}

/* Lines for a JIT frame: one function per name (its system name too). */
static int name_jit(struct work *w, size_t li, const struct resolved *rs, enum symz_frame_kind kind,
		    struct pprof_mapping *m)
{
	const struct pprof_location *l = &VEC_AT(&w->p->locations, struct pprof_location, li);
	const struct symz_jit_entry *je = symz_jit_lookup(rs->map, l->address, kind);
	if (!je) {
		w->rep->unknown++;
		return 0;
	}
	struct pprof_line ln = {pprof_intern_function(w->p, je->name, je->name, "", 0), 0, 0};
	if (!ln.function_id || pprof_set_lines(w->p, li, &ln, 1))
		return -ENOMEM;
	m->has_functions = true;
	w->rep->symbolized++;
	w->rep->jit++;
	return 0;
}

/* A kernel frame: the symbol kallsyms has there, as perf names it. */
static int name_kernel(struct work *w, size_t li, const struct resolved *rs, const char *module,
		       enum symz_frame_kind kind, struct pprof_mapping *m)
{
	const struct pprof_location *l = &VEC_AT(&w->p->locations, struct pprof_location, li);
	const char *name = symz_kallsyms_lookup(rs->ks, module, l->address, kind);
	if (!name) {
		w->rep->unknown++;
		return 0;
	}
	struct pprof_line ln = {pprof_intern_function(w->p, name, name, "", 0), 0, 0};
	if (!ln.function_id || pprof_set_lines(w->p, li, &ln, 1))
		return -ENOMEM;
	m->has_functions = true;
	w->rep->symbolized++;
	w->rep->kernel++;
	return 0;
}

/* Lines from an index for the file address addr: inline frames as extra
 * lines, innermost first. */
static int name_native(struct work *w, size_t li, const struct resolved *rs, uint64_t addr,
		       enum symz_frame_kind kind, struct pprof_mapping *m)
{
	size_t n = symz_lookup(rs->idx, addr, kind, w->frames, MAX_FRAMES);
	if (n == 0) {
		w->rep->unknown++;
		return 0;
	}
	if (n > MAX_FRAMES)
		n = MAX_FRAMES;
	for (size_t i = 0; i < n; i++) {
		const struct symz_frame *fr = &w->frames[i];
		uint64_t fid = pprof_intern_function(w->p, fr->function,
						     fr->linkage_name ? fr->linkage_name : fr->function,
						     fr->file, fr->decl_line);
		if (!fid)
			return -ENOMEM;
		w->lines[i] = (struct pprof_line){fid, fr->line, fr->column};
		m->has_functions |= fr->function != NULL;
		m->has_filenames |= fr->file != NULL;
		m->has_line_numbers |= fr->line != 0;
	}
	if (pprof_set_lines(w->p, li, w->lines, n))
		return -ENOMEM;
	m->has_inline_frames = true;
	/* one symbol per address from us */
	VEC_AT(&w->p->locations, struct pprof_location, li).is_folded = false;
	w->rep->symbolized++;
	return 0;
}

/* Is this index the kernel's vmlinux, and where is its _text?  Kernel frames
 * are offsets from _text, the first function of a vmlinux (startup code).
 * When the kallsyms snapshot is there, the function the index has at that
 * address must be the one kallsyms has at offset 0, or the index is not
 * used: offsets into the wrong object would give confident wrong names. */
static bool vmlinux_usable(struct work *w, struct resolved *vm, const struct resolved *ks)
{
	if (vm->vmlinux >= 0)
		return vm->vmlinux;
	vm->vmlinux = 0;
	if (!symz_index_first_function(vm->idx, &vm->text))
		return false;
	if (ks && ks->ks) {
		const char *want = symz_kallsyms_lookup(ks->ks, NULL, 0, SYMZ_LEAF_PC);
		size_t n = symz_lookup(vm->idx, vm->text, SYMZ_LEAF_PC, w->frames, MAX_FRAMES);
		if (n > MAX_FRAMES)
			n = MAX_FRAMES;
		const struct symz_frame *outer = n ? &w->frames[n - 1] : NULL;
		const char *have = !outer ? NULL : outer->linkage_name ? outer->linkage_name
									  : outer->function;
		if (!want || !have || strcmp(want, have))
			return false;
	}
	vm->vmlinux = 1;
	return true;
}

/* Name location li, or count why not. */
static int symbolize_location(struct work *w, size_t li, enum symz_frame_kind kind)
{
	struct pprof_profile *p = w->p;
	const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, li);
	struct symz_pprof_report *rep = w->rep;
	struct pprof_mapping *m = l->mapping_id ? pprof_mapping_by_id(p, l->mapping_id) : NULL;
	const char *bid = m ? pprof_str(p, m->build_id) : "";
	const char *fname = m ? pprof_str(p, m->filename) : "";
	char sha[SHA256_HEX_LEN + 1], ref[sizeof(SYMZ_PERF_MAP_PREFIX) + SHA256_HEX_LEN];
	char modbuf[128];
	const char *module = m ? kernel_module(fname, modbuf, sizeof(modbuf)) : NULL;
	if (module) {
		/* Kernel frames are offsets, never file addresses: only the
		 * kallsyms snapshot can name them. */
		if (!w->kallsyms_sha[0] || !w->opt->resolve_kallsyms) {
			rep->no_build_id++;
			return 0;
		}
		if (l->line_count && !w->opt->force) {
			rep->kept++;
			return 0;
		}
		snprintf(ref, sizeof(ref), "kallsyms:%s", w->kallsyms_sha);
		struct resolved *rs = resolve(w, ref, REF_KALLSYMS, w->kallsyms_sha, fname);
		if (!rs)
			return -ENOMEM;
		/* The kernel's own debuginfo by build-ID first: file, line, inlines. */
		if (!module[0] && bid[0] && w->opt->resolve_index) {
			size_t ks_slot = (size_t)(rs - (struct resolved *)w->res.data);
			struct resolved *vm = resolve(w, bid, REF_INDEX, NULL, fname);
			if (!vm)
				return -ENOMEM;
			rs = &VEC_AT(&w->res, struct resolved, ks_slot); /* res may have moved */
			if (vm->idx && vmlinux_usable(w, vm, rs))
				return name_native(w, li, vm, l->address + vm->text, kind, m);
		}
		if (!rs->ks) {
			rep->missing++;
			rep->missing_ids[rs->missing_slot].locations++;
			return 0;
		}
		return name_kernel(w, li, rs, module, kind, m);
	}
	bool jit = m && !bid[0] && perf_map_sha(fname, sha);
	if (!m || (!bid[0] && !jit) || (jit && !w->opt->resolve_perf_map)) {
		rep->no_build_id++;
		return 0;
	}
	if (l->line_count && !w->opt->force) {
		rep->kept++;
		return 0;
	}
	if (!jit && !w->opt->resolve_index) {
		rep->missing++; /* nobody to ask */
		return 0;
	}
	if (jit)
		snprintf(ref, sizeof(ref), "%s%s", SYMZ_PERF_MAP_PREFIX, sha);
	const struct resolved *rs =
		resolve(w, jit ? ref : bid, jit ? REF_PERF_MAP : REF_INDEX, jit ? sha : NULL, fname);
	if (!rs)
		return -ENOMEM;
	if (!rs->idx && !rs->map) {
		rep->missing++;
		rep->missing_ids[rs->missing_slot].locations++;
		return 0;
	}
	return jit ? name_jit(w, li, rs, kind, m) : name_native(w, li, rs, l->address, kind, m);
}

int symz_pprof_symbolize(struct pprof_profile *p, const struct symz_pprof_options *opt,
			 struct symz_pprof_report *rep, struct err *e)
{
	static const struct symz_pprof_options defaults = {0};
	struct work w = {.p = p, .opt = opt ? opt : &defaults, .rep = rep};
	memset(rep, 0, sizeof(*rep));
	hashmap_init(&w.by_ref);
	vec_init(&w.res, sizeof(struct resolved));
	uint8_t *kinds = NULL;
	w.frames = malloc(MAX_FRAMES * sizeof(*w.frames));
	w.lines = malloc(MAX_FRAMES * sizeof(*w.lines));
	int err = 0;
	if (!w.frames || !w.lines) {
		err = -ENOMEM;
		goto out;
	}
	find_kallsyms_sha(p, w.kallsyms_sha);
	if (w.opt->kind == SYMZ_PPROF_KIND_POSITION && (err = pprof_location_kinds(p, &kinds, e)))
		goto out;
	for (size_t li = 0; li < p->locations.len && !err; li++) {
		rep->locations++;
		err = symbolize_location(&w, li, kinds ? (enum symz_frame_kind)kinds[li] : SYMZ_LEAF_PC);
	}
	if (rep->symbolized)
		pprof_locations_changed(p);
out:
	if (err == -ENOMEM)
		err_set(e, ENOMEM, "out of memory symbolizing the profile");
	free(kinds);
	free(w.frames);
	free(w.lines);
	vec_free(&w.res);
	hashmap_free(&w.by_ref);
	return err;
}
