/* libFuzzer target for the unwind compiler: any bytes as an ELF image.
 * Compiles, validates the table it produced, looks up every row and dumps
 * it.  Built by `make fuzz` (clang -fsanitize=fuzzer); the suite replays a
 * seed corpus through the same function (tests/fuzz/replay.c). */
#include "unwind-compiler/unwind_compiler.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* elf_memory wants a private, aligned copy. */
	uint8_t *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	struct unwind_table t;
	struct err e = {0};
	if (unwind_compile_mem(copy, size, NULL, &t, &e) == 0) {
		struct unwind_view v;
		struct err e2 = {0};
		if (unwind_table_open(&v, t.data, t.size, &e2) != 0)
			abort(); /* we produced a table we cannot read: a bug */
		FILE *devnull = fopen("/dev/null", "w");
		if (devnull) {
			unwind_table_dump(&v, devnull);
			fclose(devnull);
		}
		for (uint64_t pc = v.hdr->base; pc < v.hdr->base + 4 * UNWIND_PAGE_SIZE; pc += 7)
			unwind_table_lookup(&v, pc, NULL, NULL);
		unwind_table_free(&t);
	} else if (!e.msg[0]) {
		abort(); /* every failure must say why */
	}
	/* The table reader on the raw bytes too: it must reject or accept
	 * safely whatever it is given. */
	if (((uintptr_t)copy & 7) == 0) {
		struct unwind_view v;
		struct err e3 = {0};
		if (unwind_table_open(&v, copy, size, &e3) == 0)
			for (uint64_t pc = v.hdr->base; pc < v.hdr->base + 2 * UNWIND_PAGE_SIZE; pc += 5)
				unwind_table_lookup(&v, pc, NULL, NULL);
	}
	free(copy);
	return 0;
}
