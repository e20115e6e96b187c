/* libFuzzer target for core-dump replay (bpf/core.h): any bytes as an ELF
 * core.  Parses it, finds its objects (none open under a missing sysroot,
 * except the vDSO image the core itself carries), and walks every thread
 * through the user-space walker, x86-64 or aarch64, reading the core's
 * memory.  Every failure must say why; nothing may read out of bounds. */
#include "bpf/core.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	struct core_dump c;
	struct err e = { { 0 } };
	if (core_open_mem(&c, copy, size, &e) < 0) {
		if (!e.msg[0])
			abort(); /* every failure must say why */
		free(copy);
		return 0;
	}
	struct sampler_limits lim;
	sampler_limits_default(&lim);
	lim.max_objects = 16;
	lim.max_rules = 4096;
	lim.max_pages = 4096;
	lim.max_entry_blocks = 16;
	lim.max_mappings = 256;
	struct sampler_image img;
	struct sampler_loader ld;
	struct core_object objs[8];
	struct sample_record *rec = malloc(sizeof(*rec));
	if (rec && sampler_image_init(&img, &lim, &e) == 0) {
		struct sampler_backend be = sampler_image_backend(&img);
		loader_init(&ld, &lim, &be, &e);
		ld.arch = c.arch;
		struct err me = { { 0 } };
		core_map_objects(&c, &ld, "/nonexistent-sysroot", objs, 8, &me);
		for (size_t i = 0; i < c.threads.len && i < 64; i++) {
			const struct core_thread *t = &VEC_AT(&c.threads, struct core_thread, i);
			struct replay_input in = { .pid = c.pid, .tid = t->tid, .arch = c.walk_arch,
						   .read = core_read, .read_arg = &c };
			memcpy(in.regs, t->regs, sizeof(in.regs));
			replay_walk(&img, &in, MODE_DWARF, SAMPLER_MAX_FRAMES, rec, NULL);
			if (rec->user_frames > SAMPLER_MAX_FRAMES)
				abort();
		}
		loader_free(&ld);
		sampler_image_free(&img);
	}
	free(rec);
	core_close(&c);
	free(copy);
	return 0;
}
