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

/* The same symbols in the delta form profiler-agent sends. */
static const char snap_delta[] =
	"kallsyms-delta 1\n"
	"0 T _text\n"
	"0 T _stext\n"
	"100 t helper\n"
	"80 r rodata_is_not_code\n"
	"80 T __ia32_sys_getppid\n"
	"0 T __x64_sys_getppid\n"
	"100 W weak_fn\n"
	"[mod]\n"
	"0 t mod_start\n"
	"40 T mod_fn\n"
	"[other]\n"
	"10 t other_fn\n";

/* Every lookup in the delta form answers as in the text form. */
static void delta_test(const struct symz_kallsyms *k)
{
	struct symz_kallsyms *d = NULL;
	struct err e = {{0}};
	int rc = symz_kallsyms_parse(snap_delta, strlen(snap_delta), &d, &e);
	size_t differ = 0, named = 0;
	static const char *const mods[] = { NULL, "mod", "other", "nomod" };
	for (size_t m = 0; rc == 0 && m < 4; m++)
		for (uint64_t a = 0; a < 0x400; a++)
			for (int kind = 0; kind < 3; kind++) {
				const char *x = symz_kallsyms_lookup(k, mods[m], a, kind);
				const char *y = symz_kallsyms_lookup(d, mods[m], a, kind);
				named += x != NULL;
				differ += !x != !y || (x && strcmp(x, y));
			}
	CHECK(rc == 0 && symz_kallsyms_count(d) == symz_kallsyms_count(k) && differ == 0 && named > 1000,
	      "kallsyms_delta_as_text", "rc %d (%s): %zu lookups differ, %zu named", rc, e.msg, differ,
	      named);
	symz_kallsyms_free(d);
}

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

/* The vmlinux path: a kernel mapping whose build-ID has an index is named
 * from its DWARF at _text + offset; an index whose first function is not
 * what kallsyms has at offset 0 is not trusted. */
struct vm_ctx {
	const struct symz_index *idx;
	const struct symz_kallsyms *ks;
	const char *id;
};

static int vm_resolve_index(void *ctx, const char *build_id, const char *filename,
			    const struct symz_index **idx, struct err *e)
{
	struct vm_ctx *c = ctx;
	(void)filename;
	if (strcmp(build_id, c->id))
		return err_set(e, ENOENT, "no such build-ID");
	*idx = c->idx;
	return 0;
}

static int vm_resolve_kallsyms(void *ctx, const char *sha, const struct symz_kallsyms **k,
			       struct err *e)
{
	(void)sha;
	(void)e;
	*k = ((struct vm_ctx *)ctx)->ks;
	return 0;
}

/* Names (innermost first, " | "-joined with file:line) of the one location. */
static void vm_profile(struct vm_ctx *c, uint64_t offset, char *out, size_t size)
{
	static const char *const types[] = { "samples" }, *const units[] = { "count" };
	struct pprof_profile *p = pprof_new(types, units, 1);
	uint64_t km = pprof_add_mapping(p, c->id, SYMZ_KERNEL_MAPPING);
	struct pprof_frame fr[] = { { km, offset } };
	int64_t v = 1;
	struct err e = {{0}};
	pprof_add_sample(p, fr, 1, &v, NULL, 0, &e);
	*(int64_t *)vec_push(&p->comments) = pprof_intern(p, "profiler-agent.kernel build_id=x "
		"text=0xffffffff81000000 kallsyms=00000000000000000000000000000000000000000000000000000000000000aa");
	struct symz_pprof_options o = { .resolve_index = vm_resolve_index,
					.resolve_kallsyms = vm_resolve_kallsyms, .ctx = c };
	struct symz_pprof_report rep;
	out[0] = 0;
	if (symz_pprof_symbolize(p, &o, &rep, &e) == 0) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, 0);
		size_t len = 0;
		for (size_t i = 0; i < l->line_count && len < size; i++) {
			const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off + i);
			const struct pprof_function *f = pprof_function_by_id(p, ln->function_id);
			const char *file = pprof_str(p, f->filename), *base = strrchr(file, '/');
			len += (size_t)snprintf(out + len, size - len, "%s%s %s:%ld", i ? " | " : "",
						pprof_str(p, f->name), base ? base + 1 : file,
						(long)ln->line);
		}
		symz_pprof_report_free(&rep);
	}
	pprof_free(p);
}

static void vmlinux_test(void)
{
	const char *top = getenv("TOP"), *build = getenv("BUILD");
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/fixtures/symbolizer/fakevmlinux", top ? top : ".",
		 build ? build : "build");
	struct symz_index *idx;
	struct err e = {{0}};
	if (symz_index_build_path(path, NULL, &idx, &e)) {
		CHECK(0, "kallsyms_vmlinux_dwarf", "%s: %s", path, e.msg);
		return;
	}
	char hex[BUILD_ID_HEX_MAX];
	size_t idlen;
	const uint8_t *id = symz_index_build_id(idx, &idlen);
	build_id_to_hex(id, idlen, hex);
	/* The fixture's own symbols, normalized as the agent writes them. */
	static const char good[] = "0 T startup_64\n20 T do_work\n";
	static const char other[] = "0 T something_else\n20 T do_work\n";
	struct symz_kallsyms *ks_good = NULL, *ks_other = NULL;
	symz_kallsyms_parse(good, strlen(good), &ks_good, &e);
	symz_kallsyms_parse(other, strlen(other), &ks_other, &e);
	/* A PC inside do_work's loop: helper inlined there. */
	uint64_t lo = 0, pc = 0;
	symz_index_first_function(idx, &lo);
	struct symz_frame fr[8];
	for (uint64_t a = lo + 0x20; a < lo + 0x80 && !pc; a++)
		if (symz_lookup(idx, a, SYMZ_LEAF_PC, fr, 8) == 2)
			pc = a;
	struct vm_ctx c = { idx, ks_good, hex };
	char got[512], got2[512];
	vm_profile(&c, pc - lo, got, sizeof(got));
	CHECK(lo == 0xffffffff81000000ull && pc && strstr(got, "helper fakevmlinux.c:") &&
	      strstr(got, " | do_work fakevmlinux.c:"), "kallsyms_vmlinux_dwarf",
	      "_text 0x%llx, pc 0x%llx: '%s'", (unsigned long long)lo, (unsigned long long)pc, got);
	c.ks = ks_other;
	vm_profile(&c, pc - lo, got2, sizeof(got2));
	CHECK(!strcmp(got2, "do_work :0"), "kallsyms_vmlinux_mismatch_not_trusted", "'%s'", got2);
	symz_kallsyms_free(ks_good);
	symz_kallsyms_free(ks_other);
	symz_index_free(idx);
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
	delta_test(k);
	vmlinux_test();
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
		{ "kallsyms_delta_bad_module", "kallsyms-delta 1\n0 T a\n[mod\n",
		  "line 3: expected '[MODULE]'" },
		{ "kallsyms_delta_module_junk", "kallsyms-delta 1\n0 T a\n[mod] x\n",
		  "line 3: expected '[MODULE]'" },
		{ "kallsyms_delta_trailing", "kallsyms-delta 1\n0 T a\t[m]\n",
		  "line 2: expected 'DELTA TYPE NAME'" },
		{ "kallsyms_delta_overflow", "kallsyms-delta 1\nffffffffffffffff T a\n1 T b\n",
		  "line 3: offset past 2^64" },
		{ "kallsyms_delta_empty", "kallsyms-delta 1\n[mod]\n", "no text or data symbols" },
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
