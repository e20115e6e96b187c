/* libFuzzer target for the symbolization index reader: any bytes as a
 * serialized index.  symz_index_open_mem validates completely, so lookups
 * on whatever it accepts must stay in bounds (ASan checks). */
#include "symbolizer/symbolizer.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 8-aligned private copy, as a mapped file is */
	uint8_t *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	struct symz_index *idx;
	struct err e = {{0}};
	if (symz_index_open_mem(copy, size, &idx, &e) == 0) {
		struct symz_frame fr[32];
		for (uint64_t a = 0; a < 0x6000; a += 7) {
			symz_lookup(idx, a, SYMZ_LEAF_PC, fr, 32);
			symz_lookup(idx, a, SYMZ_RETURN_ADDRESS, fr, 2);
		}
		symz_index_free(idx);
	} else if (!e.msg[0]) {
		abort();
	}
	free(copy);
	return 0;
}
