/* common/gopclntab: the Go 1.18, 1.19 and 1.20-1.22 layouts, synthesized
 * here from the documented layout (docs/go.md) since bookworm builds only
 * 1.19 (the real 1.19 binaries are checked against go tool addr2line in
 * tests/symbolizer/test_go_names.sh).  Each synthetic table has two
 * functions: main.outer (a frame, an inlined call of main.inl) and a
 * TOPFRAME runtime.goexit; the reader's answers and the unwind rows compiled
 * from them are compared with what the bytes say.  Malformed tables are
 * refused with a reason. */
#include "common/gopclntab.h"
#include "unwind-compiler/go_rows.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <string.h>

#define TEXT    0x401000ull
#define SECTION 0x4f0000ull
#define GOFUNC  0x500000ull

struct buf {
	uint8_t b[4096];
	size_t n;
};
static size_t put(struct buf *b, const void *p, size_t n)
{
	size_t at = b->n;
	memcpy(b->b + b->n, p, n);
	b->n += n;
	return at;
}
static size_t put32(struct buf *b, uint32_t v) { return put(b, &v, 4); }
static size_t put64(struct buf *b, uint64_t v) { return put(b, &v, 8); }
static void set64(struct buf *b, size_t at, uint64_t v) { memcpy(b->b + at, &v, 8); }
static void set32(struct buf *b, size_t at, uint32_t v) { memcpy(b->b + at, &v, 4); }

struct synth {
	struct buf sec, inl;
	uint32_t magic;
};

/* Build a table in layout `layout` (118, 119 or 120). */
static void synthesize(struct synth *s, int layout)
{
	memset(s, 0, sizeof(*s));
	struct buf *b = &s->sec;
	bool v120 = layout == 120;
	put32(b, v120 ? 0xfffffff1u : 0xfffffff0u);
	uint8_t hdr[4] = {0, 0, 1, 8};
	put(b, hdr, 4);
	put64(b, 2);    /* nfunc */
	put64(b, 1);    /* nfiles */
	put64(b, TEXT); /* textStart */
	size_t offs = b->n;
	for (int i = 0; i < 5; i++)
		put64(b, 0);
	/* funcnametab */
	set64(b, offs, b->n);
	size_t names = b->n;
	put(b, "\0main.outer\0main.inl\0runtime.goexit\0", 36);
	uint32_t n_outer = 1, n_inl = 12, n_goexit = 21;
	/* cutab: CU 0, file 0 -> filetab offset 0 */
	set64(b, offs + 8, b->n);
	put32(b, 0);
	/* filetab */
	set64(b, offs + 16, b->n);
	put(b, "/src/a.go\0", 10);
	/* pctab (offset 0 means "no table": start with a pad byte) */
	set64(b, offs + 24, b->n);
	size_t pct = b->n;
	put(b, "\0", 1);
	static const uint8_t sp0[] = {2, 4, 48, 0x38, 47, 4, 0};       /* 0, 24, 0 */
	static const uint8_t file0[] = {2, 0x40, 0};                    /* file 0 */
	static const uint8_t ln0[] = {22, 0x10, 20, 0x10, 17, 0x20, 0}; /* 10, 20, 11 */
	static const uint8_t inl0[] = {0, 0x10, 2, 0x10, 1, 0x20, 0};   /* -1, 0, -1 */
	static const uint8_t sp1[] = {2, 0x10, 0}, file1[] = {2, 0x10, 0}, ln1[] = {10, 0x10, 0};
	uint32_t o_sp0 = (uint32_t)(put(b, sp0, sizeof(sp0)) - pct);
	uint32_t o_file0 = (uint32_t)(put(b, file0, sizeof(file0)) - pct);
	uint32_t o_ln0 = (uint32_t)(put(b, ln0, sizeof(ln0)) - pct);
	uint32_t o_inl0 = (uint32_t)(put(b, inl0, sizeof(inl0)) - pct);
	uint32_t o_sp1 = (uint32_t)(put(b, sp1, sizeof(sp1)) - pct);
	uint32_t o_file1 = (uint32_t)(put(b, file1, sizeof(file1)) - pct);
	uint32_t o_ln1 = (uint32_t)(put(b, ln1, sizeof(ln1)) - pct);
	while (b->n % 8)
		put(b, "\0", 1);
	/* function table + _func records */
	set64(b, offs + 32, b->n);
	size_t pcln = b->n;
	size_t ftab = put32(b, 0);
	put32(b, 0);
	put32(b, 0x40);
	put32(b, 0);
	put32(b, 0x50);
	put32(b, 0);
	for (int f = 0; f < 2; f++) {
		while (b->n % 8)
			put(b, "\0", 1);
		set32(b, ftab + 8 * f + 4, (uint32_t)(b->n - pcln));
		put32(b, f ? 0x40 : 0);                /* entryOff */
		put32(b, f ? n_goexit : n_outer);      /* nameOff */
		put32(b, 0);                           /* args */
		put32(b, 0);                           /* deferreturn */
		put32(b, f ? o_sp1 : o_sp0);
		put32(b, f ? o_file1 : o_file0);
		put32(b, f ? o_ln1 : o_ln0);
		put32(b, f ? 0 : 3);                   /* npcdata */
		put32(b, 0);                           /* cuOffset */
		if (v120)
			put32(b, f ? 4 : 9);           /* startLine */
		uint8_t tail[4] = {0, f ? GO_FUNC_F_TOPFRAME : 0, 0, f ? 0 : 4};
		put(b, tail, 4);
		if (f)
			continue;
		put32(b, 0);
		put32(b, 0);
		put32(b, o_inl0);
		if (layout == 118) {
			if ((SECTION + b->n) & 4)
				put32(b, 0);
			put64(b, 0);
			put64(b, 0);
			put64(b, 0);
			put64(b, GOFUNC); /* the inline tree */
		} else {
			put32(b, ~0u);
			put32(b, ~0u);
			put32(b, ~0u);
			put32(b, 0); /* gofunc + 0 */
		}
	}
	(void)names;
	/* The inline tree: one call of main.inl whose call site is at +0x24. */
	if (v120) {
		put32(&s->inl, 0); /* funcID, pad */
		put32(&s->inl, n_inl);
		put32(&s->inl, 0x24);
		put32(&s->inl, 19);
	} else {
		put32(&s->inl, 0xffff); /* parent -1, funcID 0, pad */
		put32(&s->inl, 0);      /* file */
		put32(&s->inl, 11);     /* line */
		put32(&s->inl, n_inl);
		put32(&s->inl, 0x24);
	}
}

struct rows {
	uint64_t pc[8];
	struct unwind_rule r[8];
	int n;
};
static int collect(void *arg, uint64_t pc, const struct unwind_rule *r)
{
	struct rows *rs = arg;
	if (rs->n < 8) {
		rs->pc[rs->n] = pc;
		rs->r[rs->n++] = *r;
	}
	return 0;
}

static void test_layout(int layout)
{
	char name[64];
	struct synth s;
	synthesize(&s, layout);
	struct go_pclntab t;
	memset(&t, 0, sizeof(t));
	go_pclntab_add_region(&t, GOFUNC, s.inl.b, s.inl.n);
	struct err e = {{0}};
	int rc = go_pclntab_open(&t, s.sec.b, s.sec.n, SECTION, 0, layout == 118 ? GO_PCLN_118 : 0, &e);
	snprintf(name, sizeof(name), "gopclntab_%d_open", layout);
	CHECK(rc == 0 && t.layout == (layout == 118 ? GO_PCLN_118 : layout == 119 ? GO_PCLN_119 : GO_PCLN_120) &&
	      t.nfunc == 2, name, "rc %d (%s) layout %d nfunc %u", rc, e.msg, t.layout, t.nfunc);
	if (rc)
		return;
	t.gofunc = GOFUNC;
	struct go_func f;
	rc = go_pclntab_find(&t, 0x401014, &f);
	int32_t sp = -9, line = -9, fileno = -9, ix = -9;
	if (rc == 0) {
		go_pcvalue_at(&t, &f, f.pcsp, 0x401014, &sp);
		go_pcvalue_at(&t, &f, f.pcln, 0x401014, &line);
		go_pcvalue_at(&t, &f, f.pcfile, 0x401014, &fileno);
		go_pcvalue_at(&t, &f, f.inl_index, 0x401014, &ix);
	}
	const char *file = rc ? NULL : go_pclntab_file(&t, &f, fileno);
	snprintf(name, sizeof(name), "gopclntab_%d_function_and_lines", layout);
	CHECK(rc == 0 && !strcmp(f.name, "main.outer") && f.entry == 0x401000 && f.end == 0x401040 &&
	      sp == 24 && line == 20 && file && !strcmp(file, "/src/a.go") &&
	      f.start_line == (layout == 120 ? 9 : 0),
	      name, "rc %d %s [%llx,%llx) sp %d line %d file %s start %d", rc, rc ? "" : f.name,
	      (unsigned long long)f.entry, (unsigned long long)f.end, sp, line, file ? file : "-",
	      f.start_line);
	struct go_inlined_call c = {0};
	int32_t call_line = -9, parent_ix = -9;
	rc = ix == 0 ? go_pclntab_inlined(&t, &f, ix, &c) : -EINVAL;
	if (rc == 0) {
		go_pcvalue_at(&t, &f, f.pcln, c.parent_pc, &call_line);
		go_pcvalue_at(&t, &f, f.inl_index, c.parent_pc, &parent_ix);
	}
	snprintf(name, sizeof(name), "gopclntab_%d_inline_tree", layout);
	CHECK(rc == 0 && c.name && !strcmp(c.name, "main.inl") && c.parent_pc == 0x401024 &&
	      call_line == 11 && parent_ix == -1, name, "ix %d rc %d name %s parent_pc %llx line %d",
	      ix, rc, c.name ? c.name : "-", (unsigned long long)c.parent_pc, call_line);

	struct rows r0 = {0}, r1 = {0};
	uint64_t nrows = 0;
	go_func_rows(&t, 0, collect, &r0, &nrows, &e);
	go_func_rows(&t, 1, collect, &r1, &nrows, &e);
	snprintf(name, sizeof(name), "gopclntab_%d_unwind_rows", layout);
	CHECK(r0.n == 3 && r0.pc[0] == 0x401000 && r0.r[0].cfa_offset == 8 && r0.pc[1] == 0x401004 &&
	      r0.r[1].cfa_offset == 32 && r0.r[1].cfa_reg == UNWIND_X86_RSP &&
	      r0.r[1].ra_type == UNWIND_LOC_AT_CFA && r0.r[1].ra_arg == -8 && r0.pc[2] == 0x40103c &&
	      r0.r[2].cfa_offset == 8 && r1.n == 1 && r1.pc[0] == 0x401040 &&
	      r1.r[0].ra_type == UNWIND_LOC_UNDEFINED,
	      name, "%d rows (%llx +%d, %llx +%d), goexit %d rows ra %d", r0.n,
	      (unsigned long long)r0.pc[0], r0.r[0].cfa_offset, (unsigned long long)r0.pc[1],
	      r0.r[1].cfa_offset, r1.n, r1.r[0].ra_type);
}

static void test_hostile(void)
{
	struct synth s;
	synthesize(&s, 120);
	struct go_pclntab t;
	struct err e = {{0}};
	memset(&t, 0, sizeof(t));
	uint32_t old = 0xfffffffa;
	memcpy(s.sec.b, &old, 4);
	CHECK(go_pclntab_open(&t, s.sec.b, s.sec.n, SECTION, 0, 0, &e) == -ENOTSUP && e.msg[0],
	      "gopclntab_old_magic_refused", "%s", e.msg);
	synthesize(&s, 120);
	/* function 1's entry before function 0's end: unsorted */
	size_t pcln;
	memcpy(&pcln, s.sec.b + 8 + 7 * 8, 8);
	set32(&s.sec, pcln + 8, 0);
	memset(&e, 0, sizeof(e));
	memset(&t, 0, sizeof(t));
	CHECK(go_pclntab_open(&t, s.sec.b, s.sec.n, SECTION, 0, 0, &e) == -EINVAL &&
	      strstr(e.msg, "not sorted"), "gopclntab_unsorted_refused", "%s", e.msg);
	synthesize(&s, 120);
	memset(&e, 0, sizeof(e));
	memset(&t, 0, sizeof(t));
	CHECK(go_pclntab_open(&t, s.sec.b, 40, SECTION, 0, 0, &e) == -EINVAL && e.msg[0],
	      "gopclntab_truncated_refused", "%s", e.msg);
	/* A pcsp table that runs past its function. */
	synthesize(&s, 119);
	memset(&e, 0, sizeof(e));
	memset(&t, 0, sizeof(t));
	go_pclntab_open(&t, s.sec.b, s.sec.n, SECTION, 0, 0, &e);
	uint8_t *p = memmem(s.sec.b, s.sec.n, "\x02\x04\x30\x38\x2f\x04\x00", 7);
	if (p)
		p[5] = 0x7f;
	struct rows r = {0};
	uint64_t nrows = 0;
	int rc = p ? go_func_rows(&t, 0, collect, &r, &nrows, &e) : 0;
	CHECK(rc == -EINVAL && strstr(e.msg, "main.outer"), "gopclntab_bad_pcsp_refused",
	      "rc %d: %s", rc, e.msg);
}

/* Value deltas wrap like Go's int32 (found by fuzz_gopclntab: -1 + INT32_MIN
 * was signed overflow, which the SAN=1 build turns into an abort). */
static void test_value_wraps(void)
{
	static const uint8_t table[] = {0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x10, 0};
	struct go_pclntab t;
	memset(&t, 0, sizeof(t));
	t.data = table;
	t.size = sizeof(table);
	t.pctab_size = sizeof(table);
	t.min_lc = 1;
	struct go_func f = {.entry = 0x1000, .end = 0x2000};
	struct go_pcvalue_iter it;
	uint64_t s, e;
	int32_t v = 0;
	go_pcvalue_begin(&t, &f, 1, &it);
	int rc = go_pcvalue_next(&it, &s, &e, &v);
	CHECK(rc == 1 && s == 0x1000 && e == 0x1010 && v == INT32_MAX, "gopclntab_value_delta_wraps",
	      "rc %d [%llx,%llx) value %d", rc, (unsigned long long)s, (unsigned long long)e, v);
}

int main(void)
{
	test_value_wraps();
	test_layout(118);
	test_layout(119);
	test_layout(120);
	test_hostile();
	return check_failures ? 1 : 0;
}
