/* libFuzzer target for what bpf/ reads from outside: the --limits
 * specification, and the walker over arbitrary registers and stack bytes
 * (the stack of a sampled process is untrusted).  The walker runs against
 * the real tables of this process's own objects, loaded once.
 *
 * Input: byte 0 selects the target.
 *   0: the rest is a limits string for sampler_limits_parse.
 *   1: 17 registers (8 bytes each, RIP taken modulo the executable
 *      mappings), then the stack bytes; byte 1 picks the walk mode. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/loader.h"

#include "tests/fuzz/fuzz.h"

static struct sampler_image img;
static struct sampler_loader ld;
static int loaded;

static void load_self(void)
{
	struct sampler_limits lim;
	struct err e = { { 0 } };
	sampler_limits_default(&lim);
	if (sampler_image_init(&img, &lim, &e) < 0)
		abort();
	struct sampler_backend be = sampler_image_backend(&img);
	loader_init(&ld, &lim, &be, &e);
	if (loader_add_process(&ld, getpid(), NULL, &e) < 0 || ld.mappings.len == 0)
		abort();
	loaded = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0) {
		char spec[600];
		size_t n = size - 1 < sizeof(spec) - 1 ? size - 1 : sizeof(spec) - 1;
		memcpy(spec, data + 1, n);
		spec[n] = 0;
		struct sampler_limits lim;
		struct err e = { { 0 } };
		sampler_limits_default(&lim);
		sampler_limits_parse(&lim, spec, &e);
		return 0;
	}
	if (size < 2 + 8 * SAMPLER_REGS)
		return 0;
	if (!loaded)
		load_self();
	struct replay_input in = { .pid = (uint32_t)getpid(), .tid = 1 };
	memcpy(in.regs, data + 2, 8 * SAMPLER_REGS);
	const struct loaded_mapping *m =
		&VEC_AT(&ld.mappings, struct loaded_mapping, in.regs[0] % ld.mappings.len);
	in.regs[UNWIND_X86_RIP] = m->start + in.regs[UNWIND_X86_RIP] % (m->end - m->start);
	in.stack = data + 2 + 8 * SAMPLER_REGS;
	in.stack_size = size - 2 - 8 * SAMPLER_REGS;
	in.stack_addr = in.regs[UNWIND_X86_RSP];
	/* Own copy so ASan catches any read past the end of the stack. */
	uint8_t *stack = malloc(in.stack_size ? in.stack_size : 1);
	memcpy(stack, in.stack, in.stack_size);
	in.stack = stack;
	struct sample_record *rec = malloc(sizeof(*rec));
	replay_walk(&img, &in, data[1] % 2 ? MODE_FP : MODE_DWARF, SAMPLER_MAX_FRAMES, rec, NULL);
	if (rec->user_frames > SAMPLER_MAX_FRAMES || rec->reason >= WALK_REASONS)
		abort();
	free(rec);
	free(stack);
	return 0;
}
