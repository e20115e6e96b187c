/* What the fuzz targets here share: libFuzzer's entry point (replay.c calls
 * it for the suite's seed corpora) and the private copy of the input each
 * parser is handed. */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A heap copy of exactly size bytes (malloc's alignment, writable, nothing
 * after it, so ASan catches a read past the end); NULL when out of memory.
 * The caller frees it. */
static inline void *fuzz_copy(const uint8_t *data, size_t size)
{
	void *copy = malloc(size ? size : 1);
	if (copy)
		memcpy(copy, data, size);
	return copy;
}

#endif
