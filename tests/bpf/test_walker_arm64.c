/* The aarch64 half of the walker on hostile input, and the loader's
 * architecture check.
 *   - A loader walking aarch64 refuses this host's x86-64 tables (the
 *     object is left to frame pointers, and says why).
 *   - 20,000 aarch64 walks with random registers and stack words (plausible
 *     code and stack pointers mixed in) over Debian's arm64 libc table
 *     (tests/lib/arm64_root.sh fetches it): every walk
 *     ends within its frame limit with a known reason, and never reads
 *     outside the copied stack (ASan in SAN=1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/loader.h"
#include "tests/lib/check.h"

#define WALKS 20000
#define STACK_WORDS 512

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void refuses_other_arch(const struct sampler_limits *lim)
{
	struct sampler_image img;
	struct err e = { { 0 } };
	if (sampler_image_init(&img, lim, &e) < 0) {
		CHECK(0, "arm64_loader_image", "%s", e.msg);
		return;
	}
	struct sampler_backend be = sampler_image_backend(&img);
	struct sampler_loader ld;
	loader_init(&ld, lim, &be, &e);
	ld.arch = UNWIND_ARCH_AARCH64;
	uint32_t id = 0;
	int rc = loader_add_object(&ld, "/proc/self/exe", "self", &id, &e);
	const struct loaded_object *o = rc == 0 ? loader_object(&ld, id) : NULL;
	CHECK(o && !o->has_table && strstr(o->note, "architecture"), "arm64_loader_refuses_x86_table",
	      "rc %d, %s", rc, o ? o->note : e.msg);
	loader_free(&ld);
	sampler_image_free(&img);
}

int main(void)
{
	struct sampler_limits lim;
	sampler_limits_default(&lim);
	refuses_other_arch(&lim);

	/* The root of Debian arm64 objects: fetched (once) by the script the
	 * shell tests use; it prints the directory. */
	const char *top = getenv("TOP");
	char cmd[4096], root[4096] = "", libc[4096 + 64];
	snprintf(cmd, sizeof(cmd), "%s/tests/lib/arm64_root.sh 2>/dev/null", top ? top : ".");
	FILE *p = popen(cmd, "r");
	if (p) {
		if (!fgets(root, sizeof(root), p))
			root[0] = 0;
		pclose(p);
	}
	root[strcspn(root, "\n")] = 0;
	snprintf(libc, sizeof(libc), "%s/lib/aarch64-linux-gnu/libc.so.6", root);
	if (!root[0] || access(libc, R_OK) != 0) {
		SKIP("arm64_random_walks", "%s not fetched (tests/lib/arm64_root.sh)", libc);
		CHECK_EXIT();
	}
	struct sampler_image img;
	struct err e = { { 0 } };
	if (sampler_image_init(&img, &lim, &e) < 0) {
		CHECK(0, "arm64_image", "%s", e.msg);
		CHECK_EXIT();
	}
	struct sampler_backend be = sampler_image_backend(&img);
	struct sampler_loader ld;
	loader_init(&ld, &lim, &be, &e);
	ld.arch = UNWIND_ARCH_AARCH64;
	uint32_t id = 0;
	const uint64_t bias = 0x5502000000ull, text_end = 0x180000;
	int rc = loader_add_object(&ld, libc, "libc.so.6", &id, &e);
	if (rc == 0)
		rc = loader_add_mapping(&ld, 1, bias, bias + text_end, bias, id, &e);
	const struct loaded_object *o = loader_object(&ld, id);
	CHECK(rc == 0 && o && o->has_table, "arm64_loader_table", "rc %d: %s %s", rc, e.msg,
	      o ? o->note : "");
	uint64_t *stack = malloc(STACK_WORDS * 8);
	struct sample_record *rec = malloc(sizeof(*rec));
	uint64_t counters[SAMPLER_COUNTERS] = { 0 };
	const uint64_t stack_addr = 0x5500800000ull;
	int bad = 0, max_frames = 0;
	for (int w = 0; w < WALKS && rc == 0; w++) {
		for (int i = 0; i < STACK_WORDS; i++) {
			switch (rnd() % 4) {
			case 0: stack[i] = rnd(); break;
			case 1: stack[i] = stack_addr + (rnd() % (STACK_WORDS * 8 + 64)); break;
			case 2: stack[i] = bias + rnd() % text_end; break;
			default: stack[i] = rnd() % 64; break;
			}
		}
		struct replay_input in = {
			.pid = 1, .tid = 1, .arch = WALK_ARCH_AARCH64, .stack = (const uint8_t *)stack,
			.stack_size = STACK_WORDS * 8 - (rnd() % 64), .stack_addr = stack_addr,
		};
		for (int r = 0; r < SAMPLER_REGS; r++)
			in.regs[r] = rnd() % 2 ? bias + rnd() % text_end : stack_addr + rnd() % (STACK_WORDS * 8);
		in.regs[UNWIND_A64_SP] = stack_addr + (rnd() % 64) * 8;
		in.regs[UNWIND_A64_PC] = bias + (rnd() % text_end & ~3ull);
		uint32_t limit = 1 + (uint32_t)(rnd() % SAMPLER_MAX_FRAMES);
		replay_walk(&img, &in, (uint8_t)(rnd() % 4 ? MODE_DWARF : MODE_FP), limit, rec, counters);
		if (rec->user_frames > limit || rec->reason >= WALK_REASONS)
			bad++;
		if (rec->user_frames > max_frames)
			max_frames = rec->user_frames;
	}
	printf("# %d aarch64 walks: max %d frames;", WALKS, max_frames);
	for (int r = 0; r < WALK_REASONS; r++)
		printf(" %s %llu", walk_reason_name((unsigned)r), (unsigned long long)counters[r]);
	printf("\n");
	CHECK(rc == 0 && bad == 0, "arm64_walks_bounded", "%d walks broke the frame limit or the reasons", bad);
	CHECK(rc == 0 && counters[CNT_SAMPLES] == WALKS, "arm64_walks_all_ended", "%llu of %d",
	      (unsigned long long)counters[CNT_SAMPLES], WALKS);
	free(stack);
	free(rec);
	loader_free(&ld);
	sampler_image_free(&img);
	CHECK_EXIT();
}
