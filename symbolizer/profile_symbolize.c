/* Symbolizing a pprof profile in place from symbolization indexes
 * (keep Location.address and the Mapping, write Function and
 * Line, set the has_* flags, recompute is_folded). */
#include "pprof/pprof.h"
#include "pprof/pprof_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 256

/* One build-ID's resolution, shared by every mapping that names it. */
struct resolved {
	const struct symz_index *idx; /* NULL: missing */
	size_t missing_slot;          /* index in rep->missing_ids */
};

void pprof_report_free(struct pprof_symbolize_report *rep)
{
	free(rep->missing_ids);
	rep->missing_ids = NULL;
	rep->n_missing_ids = 0;
}

static int add_missing(struct pprof_symbolize_report *rep, const char *build_id, const char *filename,
		       const char *reason)
{
	struct pprof_missing *n = realloc(rep->missing_ids, (rep->n_missing_ids + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	rep->missing_ids = n;
	n += rep->n_missing_ids++;
	memset(n, 0, sizeof(*n));
	snprintf(n->build_id, sizeof(n->build_id), "%s", build_id);
	snprintf(n->filename, sizeof(n->filename), "%s", filename);
	snprintf(n->reason, sizeof(n->reason), "%s", reason);
	return 0;
}

/* Replace location li's lines with the frames (innermost first). */
static int write_lines(struct pprof_profile *p, size_t li, const struct symz_frame *fr, size_t n,
		       struct pprof_mapping *m)
{
	size_t off = p->lines.len;
	if (vec_reserve(&p->lines, off + n))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t fid = pprof_intern_function(p, fr[i].function ? fr[i].function : "",
						     fr[i].linkage_name ? fr[i].linkage_name
									: fr[i].function ? fr[i].function : "",
						     fr[i].file ? fr[i].file : "", fr[i].decl_line);
		if (!fid)
			return -ENOMEM;
		struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, p->lines.len++);
		ln->function_id = fid;
		ln->line = fr[i].line;
		ln->column = fr[i].column;
		m->has_functions |= fr[i].function != NULL;
		m->has_filenames |= fr[i].file != NULL;
		m->has_line_numbers |= fr[i].line != 0;
	}
	m->has_inline_frames = true;
	struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, li);
	l->line_off = off;
	l->line_count = n;
	l->is_folded = false; /* one symbol per address from us */
	return 0;
}

int pprof_symbolize(struct pprof_profile *p, pprof_index_resolver resolve, void *ctx,
		    const struct pprof_symbolize_options *opt, struct pprof_symbolize_report *rep,
		    struct err *e)
{
	static const struct pprof_symbolize_options defaults = {0};
	if (!opt)
		opt = &defaults;
	memset(rep, 0, sizeof(*rep));
	uint8_t *kinds = NULL;
	struct symz_frame *frames = malloc(MAX_FRAMES * sizeof(*frames));
	struct vec res;
	vec_init(&res, sizeof(struct resolved));
	struct kmap by_id;
	kmap_init(&by_id);
	int err = 0;
	if (!frames) {
		err = -ENOMEM;
		goto out;
	}
	if (opt->kind == PPROF_KIND_POSITION && (err = pprof_location_kinds(p, &kinds, e)))
		goto out;
	bool changed = false;
	for (size_t li = 0; li < p->locations.len; li++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, li);
		rep->locations++;
		struct pprof_mapping *m = l->mapping_id ? pprof_mapping_by_id(p, l->mapping_id) : NULL;
		const char *bid = m ? pprof_str(p, m->build_id) : "";
		if (!bid[0]) {
			rep->no_build_id++;
			continue;
		}
		if (l->line_count && !opt->force) {
			rep->kept++;
			continue;
		}
		uint64_t slot = res.len;
		int r = kmap_find(&by_id, bid, strlen(bid), &slot, true);
		if (r < 0) {
			err = -ENOMEM;
			goto out;
		}
		if (r == 0) {
			struct resolved *rs = vec_push(&res);
			if (!rs) {
				err = -ENOMEM;
				goto out;
			}
			struct err why = {{0}};
			const char *fname = pprof_str(p, m->filename);
			if (resolve(ctx, bid, fname, &rs->idx, &why) != 0 || !rs->idx) {
				rs->idx = NULL;
				rs->missing_slot = rep->n_missing_ids;
				if (add_missing(rep, bid, fname, why.msg[0] ? why.msg : "not found")) {
					err = -ENOMEM;
					goto out;
				}
			}
		}
		const struct resolved *rs = &VEC_AT(&res, struct resolved, slot);
		if (!rs->idx) {
			rep->missing++;
			rep->missing_ids[rs->missing_slot].locations++;
			continue;
		}
		enum symz_frame_kind kind = kinds ? (enum symz_frame_kind)kinds[li] : SYMZ_LEAF_PC;
		size_t n = symz_lookup(rs->idx, l->address, kind, frames, MAX_FRAMES);
		if (n == 0) {
			rep->unknown++;
			continue;
		}
		if ((err = write_lines(p, li, frames, n < MAX_FRAMES ? n : MAX_FRAMES, m)))
			goto out;
		rep->symbolized++;
		changed = true;
	}
	if (changed)
		pprof_forget_locations(p);
out:
	if (err == -ENOMEM)
		err_set(e, ENOMEM, "out of memory symbolizing the profile");
	free(kinds);
	free(frames);
	vec_free(&res);
	kmap_free(&by_id);
	return err;
}
