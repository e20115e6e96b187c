/* libFuzzer target for the .gopclntab reader (common/gopclntab.h): any
 * bytes as a .gopclntab section.  The first byte picks the 1.18 or 1.19
 * reading of magic 0xfffffff0; the section is also the memory funcdata
 * points into (gofunc = its start), so inline trees are read from it.
 * Every function, pc-value table, name, file and inline entry is read.  (The
 * unwind rows and the symbolization index built from a whole Go binary are
 * fuzzed by fuzz_unwind and fuzz_symbuild, whose seeds include the Go
 * fixture.)  The suite replays seeds (tests/fuzz/replay.c). */
#include "common/gopclntab.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

#define SECTION_ADDR 0x4f8000ull
#define TEXT_ADDR    0x401000ull

static void walk_table(const struct go_pclntab *t, const struct go_func *f, uint32_t off)
{
	struct go_pcvalue_iter it;
	uint64_t s, e;
	int32_t v;
	go_pcvalue_begin(t, f, off, &it);
	while (go_pcvalue_next(&it, &s, &e, &v) > 0) {
		if (s < f->entry || e > f->end || s >= e)
			abort(); /* a run outside its function */
		if (off == f->pcfile)
			(void)go_pclntab_file(t, f, v);
		if (off == f->inl_index && v >= 0) {
			struct go_inlined_call c;
			if (go_pclntab_inlined(t, f, v, &c) == 0 &&
			    (c.parent_pc < f->entry || c.parent_pc >= f->end || !c.name))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int hint = data[0] & 1 ? GO_PCLN_118 : 0;
	data++, size--;
	uint8_t *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	struct go_pclntab t;
	memset(&t, 0, sizeof(t));
	go_pclntab_add_region(&t, SECTION_ADDR, copy, size);
	struct err e = {{0}};
	if (go_pclntab_open(&t, copy, size, SECTION_ADDR, TEXT_ADDR, hint, &e) == 0) {
		t.gofunc = SECTION_ADDR;
		uint32_t n = t.nfunc < 100000 ? t.nfunc : 100000;
		for (uint32_t i = 0; i < n; i++) {
			struct go_func f;
			struct err fe = {{0}};
			if (go_pclntab_func(&t, i, &f, &fe) < 0) {
				if (!fe.msg[0])
					abort(); /* every failure says why */
				continue;
			}
			if (!f.name || f.entry >= f.end)
				abort();
			walk_table(&t, &f, f.pcsp);
			walk_table(&t, &f, f.pcfile);
			walk_table(&t, &f, f.pcln);
			walk_table(&t, &f, f.inl_index);
			struct go_func g;
			if (go_pclntab_find(&t, f.entry, &g) == 0 && g.entry != f.entry)
				abort();
		}
	} else if (!e.msg[0]) {
		abort();
	}
	free(copy);
	return 0;
}
