/* Runs bpf/fuzz_sampler.c's target over its seed corpus
 * (tests/fixtures/bpf/fuzz-seeds) and over seeds generated here: walks of
 * stacks full of pointers into this process's own code and stack range.
 * `make fuzz` builds the libFuzzer binary for longer runs. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/fuzz_sampler.c"
#include "tests/lib/check.h"

int main(void)
{
	const char *dir = "tests/fixtures/bpf/fuzz-seeds";
	DIR *d = opendir(dir);
	int files = 0;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char path[512];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			uint8_t *buf;
			size_t n;
			struct err e = { { 0 } };
			if (read_file(path, 1 << 20, &buf, &n, &e) == 0) {
				LLVMFuzzerTestOneInput(buf, n);
				free(buf);
				files++;
			}
		}
		closedir(d);
	}
	CHECK(files >= 3, "fuzz_seed_files", "%d seed files in %s", files, dir);
	/* Generated walker seeds: registers, then a stack whose words point
	 * back into the stack or at code. */
	uint64_t x = 88172645463325252ull;
	uint8_t in[2 + 8 * SAMPLER_REGS + 4096];
	for (int k = 0; k < 2000; k++) {
		for (size_t i = 0; i < sizeof(in) / 8 * 8; i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			uint64_t w = x;
			if (x % 3 == 0)
				w = 0x7ff000000000ull + (x % 4096);
			memcpy(in + i, &w, 8);
		}
		in[0] = 1;
		uint64_t rsp = 0x7ff000000000ull;
		memcpy(in + 2 + 8 * UNWIND_X86_RSP, &rsp, 8);
		LLVMFuzzerTestOneInput(in, sizeof(in));
	}
	CHECK(1, "fuzz_corpus_replayed", "%s", "never");
	CHECK_EXIT();
}
