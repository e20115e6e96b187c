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
#include "tests/bpf/random_walks.h"
#include "tests/lib/check.h"

#define WALKS 20000

static const uint64_t bias = 0x5502000000ull, text_end = 0x180000;

/* A code address: somewhere in libc's text, where the test maps it. */
static uint64_t libc_code(struct random_walks *rw, void *ctx)
{
	return bias + rw_rnd(rw) % text_end;
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
	int rc = loader_add_object(&ld, libc, "libc.so.6", &id, &e);
	if (rc == 0)
		rc = loader_add_mapping(&ld, 1, bias, bias + text_end, bias, id, &e);
	const struct loaded_object *o = loader_object(&ld, id);
	CHECK(rc == 0 && o && o->has_table, "arm64_loader_table", "rc %d: %s %s", rc, e.msg,
	      o ? o->note : "");
	struct random_walks rw;
	rw_init(&rw, 0x2545f4914f6cdd1dull, 0x5500800000ull);
	for (int w = 0; w < WALKS && rc == 0; w++) {
		struct replay_input in = { .pid = 1, .tid = 1, .arch = WALK_ARCH_AARCH64 };
		rw_stack(&rw, &in, libc_code, NULL);
		for (int r = 0; r < SAMPLER_REGS; r++)
			in.regs[r] = rw_rnd(&rw) % 2 ? libc_code(&rw, NULL)
						 : rw.stack_addr + rw_rnd(&rw) % (RW_STACK_WORDS * 8);
		in.regs[UNWIND_A64_SP] = rw.stack_addr + (rw_rnd(&rw) % 64) * 8;
		in.regs[UNWIND_A64_PC] = bias + (rw_rnd(&rw) % text_end & ~3ull);
		rw_walk(&rw, &img, &in, 4);
	}
	rw_report(&rw, WALKS, "aarch64 walks", "arm64", rc == 0);
	rw_free(&rw);
	loader_free(&ld);
	sampler_image_free(&img);
	CHECK_EXIT();
}
