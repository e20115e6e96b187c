/* The walker on hostile input: random registers and stack bytes (with
 * plausible code and stack pointers mixed in) over the real tables of this
 * process's objects.  Every walk must end, within the frame limit, with a
 * known reason, and never read outside the copied stack (ASan in SAN=1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/loader.h"
#include "tests/bpf/random_walks.h"
#include "tests/lib/check.h"

#define WALKS 40000

/* A code address: somewhere in one of this process's mappings. */
static uint64_t mapped_code(struct random_walks *rw, void *ctx)
{
	const struct sampler_loader *ld = ctx;
	const struct loaded_mapping *c =
		&VEC_AT(&ld->mappings, struct loaded_mapping, rw_rnd(rw) % ld->mappings.len);
	return c->start + rw_rnd(rw) % (c->end - c->start);
}

int main(void)
{
	struct sampler_limits lim;
	sampler_limits_default(&lim);
	struct sampler_image img;
	struct err e = { { 0 } };
	if (sampler_image_init(&img, &lim, &e) < 0) {
		CHECK(0, "robust_image", "%s", e.msg);
		CHECK_EXIT();
	}
	struct sampler_backend be = sampler_image_backend(&img);
	struct sampler_loader ld;
	loader_init(&ld, &lim, &be, &e);
	pid_t self = getpid();
	struct loader_proc_stats ps = { 0 };
	int rc = loader_add_process(&ld, self, &ps, &e);
	CHECK(rc == 0 && ps.new_mappings >= 2, "robust_loader", "rc %d: %s", rc, e.msg);
	if (rc < 0) {
		loader_free(&ld);
		sampler_image_free(&img);
		CHECK_EXIT();
	}

	struct random_walks rw;
	rw_init(&rw, 0x9e3779b97f4a7c15ull, 0x7ffd00000000ull);
	for (int w = 0; w < WALKS; w++) {
		uint64_t code = mapped_code(&rw, &ld);
		struct replay_input in = { .pid = (uint32_t)self, .tid = (uint32_t)self };
		rw_stack(&rw, &in, mapped_code, &ld);
		for (int r = 0; r < SAMPLER_REGS; r++)
			in.regs[r] = rw_rnd(&rw) % 2 ? rw_rnd(&rw)
						 : rw.stack_addr + rw_rnd(&rw) % (RW_STACK_WORDS * 8);
		in.regs[UNWIND_X86_RSP] = rw.stack_addr + (rw_rnd(&rw) % 64) * 8;
		in.regs[UNWIND_X86_RIP] = code;
		rw_walk(&rw, &img, &in, 2);
	}
	rw_report(&rw, WALKS, "walks", "robust", 1);
	rw_free(&rw);
	loader_free(&ld);
	sampler_image_free(&img);
	CHECK_EXIT();
}
