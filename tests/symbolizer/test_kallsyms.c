/* The kallsyms snapshot parser and lookup (symbolizer/kallsyms.c), and a
 * profile with kernel and module frames named through symz_pprof_symbolize.
 * The expected names follow perf's rules (symbols of types T/W/D/B, the
 * later alias wins); test_agent_kernel.sh checks them against perf itself. */
#include "symbolizer/symbolizer.h"
#include "pprof/pprof.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <string.h>

static const char snap[] =
	"0 T _text\n"
	"0 T _stext\n"
	"100 t helper\n"
	"180 r rodata_is_not_code\n"
	"200 T __ia32_sys_getppid\n"
	"200 T __x64_sys_getppid\n"
	"300 W weak_fn\n"
	"0 t mod_start\t[mod]\n"
	"40 T mod_fn\t[mod]\n"
	"10 t other_fn\t[other]\n";

static int resolve_k(void *ctx, const char *sha, const struct symz_kallsyms **k, struct err *e)
{
	(void)e;
	if (strcmp(sha, "00000000000000000000000000000000000000000000000000000000000000aa"))
		return -ENOENT;
	*k = ctx;
	return 0;
}

static void profile_test(struct symz_kallsyms *k)
{
	static const char *const types[] = { "samples" }, *const units[] = { "count" };
	struct pprof_profile *p = pprof_new(types, units, 1);
	uint64_t km = pprof_add_mapping(p, "4a5a", SYMZ_KERNEL_MAPPING);
	uint64_t mm = pprof_add_mapping(p, "77", "[kmod:mod]");
	uint64_t um = pprof_add_mapping(p, "", "[kmod:unknown]");
	/* a leaf in helper, return addresses in mod_fn and in
	 * __x64_sys_getppid (looked up at address - 1), one in a module the
	 * snapshot does not have. */
	struct pprof_frame fr[] = { { km, 0x104 }, { mm, 0x41 }, { km, 0x201 }, { um, 0x10 } };
	int64_t v = 1;
	struct err e = {{0}};
	int rc = pprof_add_sample(p, fr, 4, &v, NULL, 0, &e);
	int64_t c = pprof_intern(p, "profiler-agent.kernel build_id=4a5a text=0xffffffff81000000 "
				    "kallsyms=00000000000000000000000000000000000000000000000000000000000000AA");
	*(int64_t *)vec_push(&p->comments) = c;
	struct symz_pprof_options o = { .resolve_kallsyms = resolve_k, .ctx = k };
	struct symz_pprof_report rep;
	rc |= symz_pprof_symbolize(p, &o, &rep, &e);
	const char *names[4] = { 0 };
	for (size_t i = 0; i < p->locations.len && i < 4; i++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, i);
		if (l->line_count) {
			const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off);
			const struct pprof_function *f = pprof_function_by_id(p, ln->function_id);
			names[i] = f ? pprof_str(p, f->name) : NULL;
		}
	}
	CHECK(rc == 0 && rep.kernel == 3 && names[0] && !strcmp(names[0], "helper") && names[1] &&
	      !strcmp(names[1], "mod_fn") && names[2] && !strcmp(names[2], "__x64_sys_getppid") &&
	      !names[3] && rep.unknown == 1,
	      "kallsyms_profile_frames", "rc %d kernel %zu unknown %zu: %s %s %s %s", rc, rep.kernel,
	      rep.unknown, names[0], names[1], names[2], names[3]);
	symz_pprof_report_free(&rep);
	pprof_free(p);
}

int main(void)
{
	struct symz_kallsyms *k = NULL;
	struct err e = {{0}};
	int rc = symz_kallsyms_parse(snap, strlen(snap), &k, &e);
	CHECK(rc == 0 && symz_kallsyms_count(k) == 7, "kallsyms_parse", "rc %d: %s", rc, e.msg);
	if (rc)
		CHECK_EXIT();
	const char *a = symz_kallsyms_lookup(k, NULL, 0x150, SYMZ_LEAF_PC);
	const char *b = symz_kallsyms_lookup(k, "", 0x200, SYMZ_LEAF_PC);
	const char *c = symz_kallsyms_lookup(k, NULL, 0x200, SYMZ_RETURN_ADDRESS);
	const char *d = symz_kallsyms_lookup(k, NULL, 0x10, SYMZ_LEAF_PC);
	CHECK(a && !strcmp(a, "helper") && b && !strcmp(b, "__x64_sys_getppid") && c &&
	      !strcmp(c, "helper") && d && !strcmp(d, "_stext"),
	      "kallsyms_perf_rules", "%s %s %s %s", a, b, c, d);
	const char *m = symz_kallsyms_lookup(k, "mod", 0x50, SYMZ_LEAF_PC);
	const char *o = symz_kallsyms_lookup(k, "other", 0x5, SYMZ_LEAF_PC);
	const char *n = symz_kallsyms_lookup(k, "nomod", 0x50, SYMZ_LEAF_PC);
	CHECK(m && !strcmp(m, "mod_fn") && !o && !n, "kallsyms_modules", "%s %s %s", m, o, n);
	profile_test(k);
	symz_kallsyms_free(k);

	static const struct {
		const char *name, *text, *want;
	} bad[] = {
		{ "kallsyms_bad_line", "0 T a\nzz T b\n", "line 2: expected" },
		{ "kallsyms_bad_module", "0 T a\n10 t b [mod\n", "line 2: expected '[MODULE]'" },
		{ "kallsyms_trailing", "0 T a\n10 t b\t[m] junk\n", "line 2: text after the module" },
		{ "kallsyms_empty", "", "no text or data symbols" },
		{ "kallsyms_no_code", "0 r ro\n8 A abs\n", "no text or data symbols" },
		{ "kallsyms_nul", "0 T a\n1 T b\0c\n", "line 2: NUL byte" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err be = {{0}};
		struct symz_kallsyms *bk = NULL;
		size_t len = strlen(bad[i].text);
		if (!strcmp(bad[i].name, "kallsyms_nul"))
			len = 13;
		int brc = symz_kallsyms_parse(bad[i].text, len, &bk, &be);
		CHECK(brc < 0 && !bk && strstr(be.msg, bad[i].want), bad[i].name, "rc %d: '%s'", brc,
		      be.msg);
	}
	char longline[2100];
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "0 T ", 4);
	struct err le = {{0}};
	rc = symz_kallsyms_parse(longline, sizeof(longline), &k, &le);
	CHECK(rc == -EINVAL && strstr(le.msg, "longer than"), "kallsyms_long_line", "rc %d: %s", rc,
	      le.msg);
	CHECK_EXIT();
}
