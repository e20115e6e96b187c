/* libFuzzer target for the kallsyms snapshot parser (symbolizer/kallsyms.c):
 * a snapshot either parses, and then every lookup stays in bounds, or is
 * refused with a message. */
#include "symbolizer/symbolizer.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy: the parser must not read past size */
	char *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	struct symz_kallsyms *k = NULL;
	struct err e = {{0}};
	if (symz_kallsyms_parse(copy, size, &k, &e) == 0) {
		static const char *const modules[] = { NULL, "", "mod", "x" };
		for (size_t m = 0; m < 4; m++)
			for (uint64_t a = 0; a < 0x3000; a += 0x13)
				symz_kallsyms_lookup(k, modules[m], a, (enum symz_frame_kind)(a % 3));
		symz_kallsyms_lookup(k, NULL, UINT64_MAX, SYMZ_LEAF_PC);
		if (symz_kallsyms_count(k) == 0)
			abort();
		symz_kallsyms_free(k);
	} else if (!e.msg[0]) {
		abort();
	}
	free(copy);
	return 0;
}
