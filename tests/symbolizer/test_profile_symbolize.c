/* symz_pprof_symbolize on a fixture: every location of a profile gets the
 * frames symz_lookup gives for its address and kind, missing debuginfo is
 * reported, symbolized locations are kept unless forced. */
#include "pprof/pprof.h"
#include "symbolizer/symbolizer.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A resolver over one index for one build-ID. */
struct one {
	const char *build_id;
	const struct symz_index *idx;
};

static int resolve_one(void *ctx, const char *build_id, const char *filename,
		       const struct symz_index **idx, struct err *e)
{
	struct one *o = ctx;
	(void)filename;
	if (strcmp(build_id, o->build_id))
		return err_set(e, ENOENT, "no debuginfo for %s", build_id);
	*idx = o->idx;
	return 0;
}

/* Symbolize a profile of a fixture with the library and compare each
 * location with symz_lookup of the same index. */
static void symbolize_fixture(void)
{
	const char *top = getenv("TOP"), *build = getenv("BUILD");
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/fixtures/symbolizer/c-O2-dw4", top ? top : ".",
		 build ? build : "build");
	struct symz_index *idx;
	struct err e = {{0}};
	if (symz_index_build_path(path, NULL, &idx, &e)) {
		CHECK(0, "symbolize_fixture", "%s: %s", path, e.msg);
		return;
	}
	char hex[BUILD_ID_HEX_MAX];
	size_t idlen;
	const uint8_t *id = symz_index_build_id(idx, &idlen);
	build_id_to_hex(id, idlen, hex);
	const char *types[] = {"samples"}, *units[] = {"count"};
	struct pprof_profile *p = pprof_new(types, units, 1);
	uint64_t m = pprof_add_mapping(p, hex, path);
	uint64_t other = pprof_add_mapping(p, "abcdef", "/missing");
	int64_t one = 1;
	for (uint64_t a = 0x1100; a < 0x1400; a += 3) {
		struct pprof_frame st[] = {{m, a}, {m, a + 5}, {other, 0x10}};
		pprof_add_sample(p, st, 3, &one, NULL, 0, &e);
	}
	struct one ctx = {hex, idx};
	struct symz_pprof_report rep;
	struct symz_pprof_options so = {.resolve_index = resolve_one, .ctx = &ctx};
	int r = symz_pprof_symbolize(p, &so, &rep, &e);
	CHECK(!r && rep.symbolized > 100 && rep.n_missing_ids == 1 && rep.missing > 0 &&
		      !strcmp(rep.missing_ids[0].build_id, "abcdef"),
	      "symbolize_report", "r=%d symbolized=%zu missing=%zu", r, rep.symbolized, rep.missing);
	symz_pprof_report_free(&rep);
	uint8_t *kinds;
	pprof_location_kinds(p, &kinds, &e);
	size_t bad = 0, checked = 0, with_lines = 0;
	struct symz_frame fr[64];
	for (size_t i = 0; i < p->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, i);
		if (l->mapping_id != m)
			continue;
		size_t n = symz_lookup(idx, l->address, kinds[i], fr, 64);
		if (n != l->line_count) {
			bad++;
			continue;
		}
		for (size_t j = 0; j < n; j++) {
			const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off + j);
			struct pprof_function *f = pprof_function_by_id(p, ln->function_id);
			if (!f || ln->line != fr[j].line || strcmp(pprof_str(p, f->name), fr[j].function ? fr[j].function : ""))
				bad++;
		}
		checked++;
		with_lines += n > 0;
	}
	free(kinds);
	const struct pprof_mapping *mp = pprof_mapping_by_id(p, m);
	CHECK(checked > 100 && bad == 0 && mp->has_functions && mp->has_line_numbers && mp->has_inline_frames,
	      "symbolize_matches_lookup", "%zu of %zu locations differ", bad, checked);
	/* Already symbolized: kept without --force. */
	r = symz_pprof_symbolize(p, &so, &rep, &e);
	CHECK(!r && rep.symbolized == 0 && rep.kept == with_lines, "symbolize_keeps_symbolized",
	      "symbolized %zu kept %zu", rep.symbolized, rep.kept);
	symz_pprof_report_free(&rep);
	so.force = true;
	r = symz_pprof_symbolize(p, &so, &rep, &e);
	CHECK(!r && rep.symbolized == with_lines, "symbolize_force", "symbolized %zu", rep.symbolized);
	symz_pprof_report_free(&rep);
	pprof_free(p);
	symz_index_free(idx);
}

int main(void)
{
	symbolize_fixture();
	CHECK_EXIT();
}
