/* The walker on hostile input: random registers and stack bytes (with
 * plausible code and stack pointers mixed in) over the real tables of this
 * process's objects.  Every walk must end, within the frame limit, with a
 * known reason, and never read outside the copied stack (ASan in SAN=1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/loader.h"
#include "tests/lib/check.h"

#define WALKS 40000
#define STACK_WORDS 512

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
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
	size_t nmap = ld.mappings.len;

	uint64_t *stack = malloc(STACK_WORDS * 8);
	struct sample_record *rec = malloc(sizeof(*rec));
	uint64_t counters[SAMPLER_COUNTERS] = { 0 };
	const uint64_t stack_addr = 0x7ffd00000000ull;
	int bad = 0, max_frames = 0;
	for (int w = 0; w < WALKS; w++) {
		const struct loaded_mapping *m =
			&VEC_AT(&ld.mappings, struct loaded_mapping, rnd() % nmap);
		uint64_t code = m->start + rnd() % (m->end - m->start);
		for (int i = 0; i < STACK_WORDS; i++) {
			switch (rnd() % 4) {
			case 0: stack[i] = rnd(); break;
			case 1: stack[i] = stack_addr + (rnd() % (STACK_WORDS * 8 + 64)); break;
			case 2: {
				const struct loaded_mapping *c =
					&VEC_AT(&ld.mappings, struct loaded_mapping, rnd() % nmap);
				stack[i] = c->start + rnd() % (c->end - c->start);
				break;
			}
			default: stack[i] = rnd() % 64; break;
			}
		}
		struct replay_input in = {
			.pid = (uint32_t)self, .tid = (uint32_t)self, .stack = (const uint8_t *)stack,
			.stack_size = STACK_WORDS * 8 - (rnd() % 64), .stack_addr = stack_addr,
		};
		for (int r = 0; r < SAMPLER_REGS; r++)
			in.regs[r] = rnd() % 2 ? rnd() : stack_addr + rnd() % (STACK_WORDS * 8);
		in.regs[UNWIND_X86_RSP] = stack_addr + (rnd() % 64) * 8;
		in.regs[UNWIND_X86_RIP] = code;
		uint32_t limit = 1 + (uint32_t)(rnd() % SAMPLER_MAX_FRAMES);
		replay_walk(&img, &in, (uint8_t)(rnd() % 2 ? MODE_DWARF : MODE_FP), limit, rec,
			    counters);
		if (rec->user_frames > limit || rec->reason >= WALK_REASONS)
			bad++;
		if (rec->user_frames > max_frames)
			max_frames = rec->user_frames;
	}
	printf("# %d walks: max %d frames;", WALKS, max_frames);
	for (int r = 0; r < WALK_REASONS; r++)
		printf(" %s %llu", walk_reason_name((unsigned)r), (unsigned long long)counters[r]);
	printf("\n");
	CHECK(bad == 0, "robust_walks_bounded", "%d walks broke the frame limit or the reasons", bad);
	CHECK(counters[CNT_SAMPLES] == WALKS, "robust_walks_all_ended", "%llu of %d",
	      (unsigned long long)counters[CNT_SAMPLES], WALKS);
	free(stack);
	free(rec);
	loader_free(&ld);
	sampler_image_free(&img);
	CHECK_EXIT();
}
