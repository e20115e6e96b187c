/* Runs a libFuzzer target over files (a seed corpus) without libFuzzer, so
 * the test suite (plain and under ASan/UBSan) exercises every fuzz target. */
#include "common/common.h"

#include <stdio.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"

int main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		uint8_t *buf;
		size_t size;
		struct err e = {0};
		if (read_file(argv[i], 64u << 20, &buf, &size, &e)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], e.msg);
			failed = 1;
			continue;
		}
		LLVMFuzzerTestOneInput(buf, size);
		free(buf);
	}
	printf("replayed %d inputs\n", argc - 1);
	return failed;
}
