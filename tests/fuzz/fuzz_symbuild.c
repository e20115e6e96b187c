/* libFuzzer target for the symbolization index builder: any bytes as an ELF
 * image (libdw underneath).  A built index must reopen and answer lookups. */
#include "symbolizer/symbolizer.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

static void probe(const struct symz_index *idx)
{
	struct symz_frame fr[32];
	for (uint64_t a = 0; a < 0x6000; a += 13) {
		symz_lookup(idx, a, SYMZ_LEAF_PC, fr, 32);
		symz_lookup(idx, a, SYMZ_RETURN_ADDRESS, fr, 32);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	struct symz_index *idx, *again;
	struct err e = {{0}};
	struct symz_build_options o = {.no_search = true};
	if (symz_index_build_mem(copy, size, NULL, 0, NULL, 0, &o, &idx, &e) == 0) {
		size_t n;
		const void *bytes = symz_index_data(idx, &n);
		struct err e2 = {{0}};
		if (symz_index_open_mem(bytes, n, &again, &e2))
			abort(); /* we built an index we cannot read */
		probe(again);
		symz_index_free(again);
		symz_index_free(idx);
	} else if (!e.msg[0]) {
		abort();
	}
	free(copy);
	return 0;
}
