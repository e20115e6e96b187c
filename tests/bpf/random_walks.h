/* Random walks over hostile stacks, shared by test_walker_robust.c (x86-64,
 * this process's tables) and test_walker_arm64.c (aarch64, Debian's libc
 * table).  The test sets the registers; these fill the stack (random words,
 * pointers into the stack, code addresses, small numbers), walk with a
 * random frame limit and mode, and check that every walk ended within its
 * limit with a known reason. */
#ifndef TESTS_BPF_RANDOM_WALKS_H
#define TESTS_BPF_RANDOM_WALKS_H

#include <stdio.h>
#include <stdlib.h>

#include "bpf/loader.h"
#include "tests/lib/check.h"

#define RW_STACK_WORDS 512

struct random_walks {
	uint64_t rng;        /* xorshift64 state: the seed */
	uint64_t stack_addr; /* where the copied stack claims to be */
	uint64_t *stack;     /* RW_STACK_WORDS words */
	struct sample_record *rec;
	uint64_t counters[SAMPLER_COUNTERS];
	int bad, max_frames;
};

static uint64_t rw_rnd(struct random_walks *rw)
{
	rw->rng ^= rw->rng << 13;
	rw->rng ^= rw->rng >> 7;
	rw->rng ^= rw->rng << 17;
	return rw->rng;
}

static void rw_init(struct random_walks *rw, uint64_t seed, uint64_t stack_addr)
{
	*rw = (struct random_walks){.rng = seed, .stack_addr = stack_addr};
	rw->stack = malloc(RW_STACK_WORDS * 8);
	rw->rec = malloc(sizeof(*rw->rec));
	if (!rw->stack || !rw->rec) {
		printf("FAIL random_walks: out of memory\n");
		exit(1);
	}
}

static void rw_free(struct random_walks *rw)
{
	free(rw->stack);
	free(rw->rec);
}

/* A fresh random stack in in->stack; code(rw, ctx) is a plausible code
 * address. */
static void rw_stack(struct random_walks *rw, struct replay_input *in,
		     uint64_t (*code)(struct random_walks *rw, void *ctx), void *ctx)
{
	for (int i = 0; i < RW_STACK_WORDS; i++) {
		switch (rw_rnd(rw) % 4) {
		case 0: rw->stack[i] = rw_rnd(rw); break;
		case 1: rw->stack[i] = rw->stack_addr + (rw_rnd(rw) % (RW_STACK_WORDS * 8 + 64)); break;
		case 2: rw->stack[i] = code(rw, ctx); break;
		default: rw->stack[i] = rw_rnd(rw) % 64; break;
		}
	}
	in->stack = (const uint8_t *)rw->stack;
	in->stack_size = RW_STACK_WORDS * 8 - (rw_rnd(rw) % 64);
	in->stack_addr = rw->stack_addr;
}

/* Walk in (registers set) with a random frame limit, by DWARF tables except
 * one time in fp_one_in, and tally the result. */
static void rw_walk(struct random_walks *rw, struct sampler_image *img,
		    const struct replay_input *in, unsigned fp_one_in)
{
	uint32_t limit = 1 + (uint32_t)(rw_rnd(rw) % SAMPLER_MAX_FRAMES);
	replay_walk(img, in, (uint8_t)(rw_rnd(rw) % fp_one_in ? MODE_DWARF : MODE_FP), limit,
		    rw->rec, rw->counters);
	if (rw->rec->user_frames > limit || rw->rec->reason >= WALK_REASONS)
		rw->bad++;
	if (rw->rec->user_frames > rw->max_frames)
		rw->max_frames = rw->rec->user_frames;
}

/* The reasons walks ended, and the checks PREFIX_walks_bounded and
 * PREFIX_walks_all_ended (both fail unless setup_ok). */
static void rw_report(const struct random_walks *rw, int walks, const char *what,
		      const char *prefix, int setup_ok)
{
	char bounded[64], ended[64];
	printf("# %d %s: max %d frames;", walks, what, rw->max_frames);
	for (int r = 0; r < WALK_REASONS; r++)
		printf(" %s %llu", walk_reason_name((unsigned)r), (unsigned long long)rw->counters[r]);
	printf("\n");
	snprintf(bounded, sizeof(bounded), "%s_walks_bounded", prefix);
	snprintf(ended, sizeof(ended), "%s_walks_all_ended", prefix);
	CHECK(setup_ok && rw->bad == 0, bounded, "%d walks broke the frame limit or the reasons",
	      rw->bad);
	CHECK(setup_ok && rw->counters[CNT_SAMPLES] == (uint64_t)walks, ended, "%llu of %d",
	      (unsigned long long)rw->counters[CNT_SAMPLES], walks);
}

#endif
