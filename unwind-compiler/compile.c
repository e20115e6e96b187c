/* Compile an ELF object's CFI into the table of unwind_table.h.
 *
 * Steps: collect FDEs (.eh_frame, then .debug_frame for code it leaves
 * uncovered), sort them, run each FDE's program, turn each row into a
 * deduplicated struct unwind_rule, and emit an entry only where the rule
 * changes.  Alignment padding between functions costs nothing; real gaps get
 * an END entry. */
#include "unwind-compiler/unwind_compiler.h"
#include "unwind-compiler/cfi.h"
#include "unwind-compiler/go_rows.h"

#include <dwarf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Gaps between FDEs shorter than this, made only of NOP/INT3 bytes (or of
 * unknown bytes, in debug files without code), are alignment padding. */
#define MAX_PADDING 16

/* The kernel's x86-64 signal frame: at the sigreturn trampoline RSP points
 * at a struct ucontext whose uc_mcontext starts 40 bytes in; the saved RSP
 * is gregs[REG_RSP = 15], the saved RIP gregs[REG_RIP = 16]. */
#define X86_UC_MCONTEXT 40
#define X86_SIGFRAME_RSP (X86_UC_MCONTEXT + 15 * 8)
#define X86_SIGFRAME_RIP (X86_UC_MCONTEXT + 16 * 8)

struct entry {
	uint64_t pc;
	uint32_t rule;
};

struct code_range {
	uint64_t addr, size;
	const uint8_t *bytes;
};

#define RULE_HASH_SLOTS 8192 /* power of two, > 2 * UNWIND_MAX_RULES */

struct builder {
	struct vec entries;            /* struct entry */
	struct unwind_rule rules[UNWIND_MAX_RULES];
	uint32_t nrules;
	uint16_t slots[RULE_HASH_SLOTS]; /* rule index + 1; 0 = empty */
	uint64_t cfi_rows, unsupported_rows;
	uint64_t fde_gaps;             /* FDE ends not followed by another FDE */
	const struct fde *fde;         /* being run */
	uint64_t covered_end;          /* end of the last FDE emitted */
	struct code_range code[64];
	size_t ncode;
	const struct go_pclntab *go; /* for pseudo-FDEs of Go functions */
	bool aarch64;                  /* padding is 4-byte NOPs, not x86 NOPs */
	struct err *e;
};

static uint32_t rule_hash(const struct unwind_rule *r)
{
	uint64_t a;
	uint32_t b;
	_Static_assert(sizeof(*r) == 12, "hash reads 12 bytes");
	memcpy(&a, r, 8);
	memcpy(&b, (const uint8_t *)r + 8, 4);
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	return (uint32_t)(h >> 40);
}

/* Index of rule r, adding it if new; -E2BIG past UNWIND_MAX_RULES. */
static int intern_rule(struct builder *b, const struct unwind_rule *r)
{
	uint32_t i = rule_hash(r) & (RULE_HASH_SLOTS - 1);
	for (;;) {
		uint16_t s = b->slots[i];
		if (!s)
			break;
		if (memcmp(&b->rules[s - 1], r, sizeof(*r)) == 0)
			return s - 1;
		i = (i + 1) & (RULE_HASH_SLOTS - 1);
	}
	if (b->nrules == UNWIND_MAX_RULES)
		return err_set(b->e, E2BIG, "more than %d distinct unwind rules in one object",
			       UNWIND_MAX_RULES);
	b->rules[b->nrules] = *r;
	b->slots[i] = (uint16_t)(++b->nrules);
	return (int)b->nrules - 1;
}

static int emit(struct builder *b, uint64_t pc, const struct unwind_rule *r)
{
	int idx = intern_rule(b, r);
	if (idx < 0)
		return idx;
	if (b->entries.len) {
		struct entry *last = &VEC_AT(&b->entries, struct entry, b->entries.len - 1);
		if (last->pc == pc) { /* a later FDE starting where a row was */
			last->rule = (uint32_t)idx;
			return 0;
		}
		if (last->rule == (uint32_t)idx)
			return 0;
	}
	struct entry *n = vec_push(&b->entries);
	if (!n)
		return err_set(b->e, ENOMEM, "out of memory");
	n->pc = pc;
	n->rule = (uint32_t)idx;
	return 0;
}

static struct unwind_rule unsupported(enum unwind_unsupported_reason why)
{
	return (struct unwind_rule){.cfa_type = UNWIND_CFA_UNSUPPORTED, .cfa_reg = (uint8_t)why};
}

/* A LEB128 number at *pp, bounded by end; *pp moves past it.  False when
 * it is truncated or longer than 64 bits. */
static bool read_leb(const uint8_t **pp, const uint8_t *end, bool is_signed, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t byte;
	do {
		if (p >= end || shift > 63)
			return false;
		byte = *p++;
		v |= (uint64_t)(byte & 0x7f) << shift;
		shift += 7;
	} while (byte & 0x80);
	if (is_signed && shift < 64 && (byte & 0x40))
		v |= ~0ull << shift;
	*pp = p;
	*out = v;
	return true;
}

/* The first op of a CFA expression, DW_OP_breg<n> <sleb> or DW_OP_bregx
 * <uleb> <sleb> (registers 0..31 and beyond): its register and offset;
 * *pp moves past it. */
static bool cfa_breg(const uint8_t **pp, const uint8_t *end, uint64_t *reg, int64_t *off)
{
	if (*pp >= end)
		return false;
	uint8_t op = *(*pp)++;
	if (op >= DW_OP_breg0 && op <= DW_OP_breg31)
		*reg = op - DW_OP_breg0;
	else if (op != DW_OP_bregx || !read_leb(pp, end, false, reg))
		return false;
	uint64_t v;
	if (!read_leb(pp, end, true, &v))
		return false;
	*off = (int64_t)v;
	return true;
}

/* Recognize the few CFA expressions real x86-64 code uses.  Returns false
 * for anything else. */
static bool cfa_expression(const uint8_t *p, size_t len, struct unwind_rule *out)
{
	const uint8_t *end = p + len;
	uint64_t reg;
	int64_t off;
	if (!cfa_breg(&p, end, &reg, &off))
		return false;
	if (reg > UNWIND_X86_R15 || off < INT32_MIN || off > INT32_MAX)
		return false;
	*out = (struct unwind_rule){.cfa_reg = (uint8_t)reg, .cfa_offset = (int32_t)off};
	if (p == end) {
		out->cfa_type = UNWIND_CFA_REG;
		return true;
	}
	if (*p == DW_OP_deref) {
		p++;
		uint64_t add = 0;
		if (p < end && *p == DW_OP_plus_uconst) {
			p++;
			if (!read_leb(&p, end, false, &add))
				return false;
		}
		if (p != end || add > INT8_MAX)
			return false;
		out->cfa_type = UNWIND_CFA_DEREF;
		out->cfa_aux = (int8_t)add;
		return true;
	}
	/* GCC/ld lazy PLT: breg7 k; breg16 0; lit15; and; litT; ge; lit3; shl; plus */
	static const uint8_t plt_tail[] = {DW_OP_lit15, DW_OP_and, 0, DW_OP_ge,
					   DW_OP_lit3, DW_OP_shl, DW_OP_plus};
	if (reg == UNWIND_X86_RSP && (size_t)(end - p) == 2 + sizeof(plt_tail) &&
	    p[0] == DW_OP_breg0 + UNWIND_X86_RIP && p[1] == 0) {
		p += 2;
		for (size_t i = 0; i < sizeof(plt_tail); i++)
			if (i != 2 && p[i] != plt_tail[i])
				return false;
		if (p[2] < DW_OP_lit0 || p[2] > DW_OP_lit0 + 15)
			return false;
		out->cfa_type = UNWIND_CFA_PLT;
		out->cfa_aux = (int8_t)(p[2] - DW_OP_lit0);
		return true;
	}
	return false;
}

/* What a register's location may be, per architecture (unwind_table.h). */
struct loc_rules {
	int64_t slot;     /* AT_CFA arguments count units of this many bytes */
	uint64_t max_reg; /* IN_REG: the highest register the walker has */
	bool ra_live;     /* no rule for the return address: still in its register */
};
/* x86-64: the return address always has an explicit rule in x86-64 CIEs;
 * without one we do not guess. */
static const struct loc_rules x86_loc = {.slot = 1, .max_reg = UNWIND_X86_R15};
/* aarch64: X30 unmentioned is still in LR; offsets in 8-byte slots. */
static const struct loc_rules a64_loc = {.slot = 8, .max_reg = UNWIND_A64_X30, .ra_live = true};

/* Where a caller's frame pointer or (is_ra) return address is; false if
 * the rule cannot be expressed.  ra_arg is an int8, rbp_arg an int16. */
static bool location(const struct loc_rules *lr, const struct cfi_rule *r, bool is_ra,
		     uint8_t *type, int16_t *arg)
{
	int64_t lo = is_ra ? INT8_MIN : INT16_MIN, hi = is_ra ? INT8_MAX : INT16_MAX;
	*arg = 0;
	switch (r->type) {
	case CFI_RULE_UNSPEC:
	case CFI_RULE_SAME:
		/* The frame pointer unmentioned: unchanged. */
		*type = UNWIND_LOC_SAME;
		return !is_ra || lr->ra_live;
	case CFI_RULE_UNDEF:
		*type = UNWIND_LOC_UNDEFINED;
		return true;
	case CFI_RULE_OFFSET:
		if (r->off % lr->slot || r->off / lr->slot < lo || r->off / lr->slot > hi)
			return false;
		*type = UNWIND_LOC_AT_CFA;
		*arg = (int16_t)(r->off / lr->slot);
		return true;
	case CFI_RULE_REGISTER:
		if (r->reg > lr->max_reg)
			return false;
		*type = UNWIND_LOC_IN_REG;
		*arg = (int16_t)r->reg;
		return true;
	default:
		return false;
	}
}

static struct unwind_rule signal_rule(const struct cfi_row_state *st)
{
	/* Trust the 'S' augmentation only where the CFI agrees with the
	 * kernel's frame layout: CFA = *(RSP + 160), RIP at RSP + 168. */
	struct unwind_rule cfa;
	if (!st->cfa.is_expr || !cfa_expression(st->cfa.expr, st->cfa.expr_len, &cfa) ||
	    cfa.cfa_type != UNWIND_CFA_DEREF || cfa.cfa_reg != UNWIND_X86_RSP ||
	    cfa.cfa_offset != X86_SIGFRAME_RSP || cfa.cfa_aux != 0)
		return unsupported(UNWIND_UNSUP_SIGNAL);
	struct unwind_rule ra;
	if (st->ra.type != CFI_RULE_EXPR || !cfa_expression(st->ra.expr, st->ra.expr_len, &ra) ||
	    ra.cfa_type != UNWIND_CFA_REG || ra.cfa_reg != UNWIND_X86_RSP ||
	    ra.cfa_offset != X86_SIGFRAME_RIP)
		return unsupported(UNWIND_UNSUP_SIGNAL);
	return (struct unwind_rule){.cfa_type = UNWIND_CFA_SIGNAL};
}

/* One CFI row -> one rule (x86-64). */
static struct unwind_rule row_rule(const struct cie *cie, const struct cfi_row_state *st)
{
	if (cie->signal)
		return signal_rule(st);
	struct unwind_rule r;
	if (st->cfa.invalid)
		return unsupported(UNWIND_UNSUP_CFA_EXPR);
	if (st->cfa.is_expr) {
		if (!cfa_expression(st->cfa.expr, st->cfa.expr_len, &r))
			return unsupported(UNWIND_UNSUP_CFA_EXPR);
	} else {
		if (st->cfa.reg > UNWIND_X86_R15)
			return unsupported(UNWIND_UNSUP_CFA_EXPR);
		if (st->cfa.off < INT32_MIN || st->cfa.off > INT32_MAX)
			return unsupported(UNWIND_UNSUP_RANGE);
		r = (struct unwind_rule){.cfa_type = UNWIND_CFA_REG, .cfa_reg = (uint8_t)st->cfa.reg,
					 .cfa_offset = (int32_t)st->cfa.off};
	}
	/* The walker takes the caller's RSP to be the CFA.  A rule that says
	 * otherwise (longjmp-like code) cannot be followed. */
	if (st->rsp.type != CFI_RULE_UNSPEC &&
	    !(st->rsp.type == CFI_RULE_VAL_OFFSET && st->rsp.off == 0))
		return unsupported(UNWIND_UNSUP_RSP_RULE);
	if (!location(&x86_loc, &st->rbp, false, &r.rbp_type, &r.rbp_arg))
		return unsupported(UNWIND_UNSUP_RBP_RULE);
	int16_t ra_arg;
	if (!location(&x86_loc, &st->ra, true, &r.ra_type, &ra_arg))
		return unsupported(UNWIND_UNSUP_RA_RULE);
	r.ra_arg = (int8_t)ra_arg;
	return r;
}

/* A one-op DW_OP_breg<n> <off> / DW_OP_bregx CFA expression on aarch64
 * (cfa_expression keeps to x86-64's registers 0..15). */
static bool a64_cfa_breg(const uint8_t *p, size_t len, uint64_t *reg, int64_t *off)
{
	const uint8_t *q = p;
	return cfa_breg(&q, p + len, reg, off) && q == p + len;
}

/* The vDSO's __kernel_rt_sigreturn ('S' CIE): its CFI names the frame
 * record the kernel pushed (CFA = X29, X29 at [CFA], X30 at [CFA+8]), which
 * does not restore SP or PC; the walker reads the whole sigcontext from the
 * rt_sigframe at SP instead.  Anything else with 'S' is not that trampoline. */
static struct unwind_rule a64_signal_rule(const struct cfi_row_state *st)
{
	if (st->cfa.is_expr || st->cfa.invalid || st->cfa.reg != UNWIND_A64_X29 || st->cfa.off != 0 ||
	    st->rbp.type != CFI_RULE_OFFSET || st->rbp.off != 0 ||
	    st->ra.type != CFI_RULE_OFFSET || st->ra.off != 8)
		return unsupported(UNWIND_UNSUP_SIGNAL);
	return (struct unwind_rule){.cfa_type = UNWIND_CFA_SIGNAL};
}

/* One CFI row -> one rule (aarch64). */
static struct unwind_rule row_rule_a64(const struct cie *cie, const struct cfi_row_state *st)
{
	if (cie->signal)
		return a64_signal_rule(st);
	if (st->cfa.invalid)
		return unsupported(UNWIND_UNSUP_CFA_EXPR);
	uint64_t reg = st->cfa.reg;
	int64_t off = st->cfa.off;
	if (st->cfa.is_expr && !a64_cfa_breg(st->cfa.expr, st->cfa.expr_len, &reg, &off))
		return unsupported(UNWIND_UNSUP_CFA_EXPR);
	if (reg > UNWIND_A64_SP)
		return unsupported(UNWIND_UNSUP_CFA_EXPR);
	if (off < INT32_MIN || off > INT32_MAX)
		return unsupported(UNWIND_UNSUP_RANGE);
	struct unwind_rule r = {.cfa_type = UNWIND_CFA_REG, .cfa_reg = (uint8_t)reg,
				.cfa_offset = (int32_t)off,
				.cfa_aux = st->ra_signed ? UNWIND_A64_F_RA_SIGNED : 0};
	if (st->rsp.type != CFI_RULE_UNSPEC &&
	    !(st->rsp.type == CFI_RULE_VAL_OFFSET && st->rsp.off == 0))
		return unsupported(UNWIND_UNSUP_RSP_RULE);
	if (!location(&a64_loc, &st->rbp, false, &r.rbp_type, &r.rbp_arg))
		return unsupported(UNWIND_UNSUP_RBP_RULE);
	if (r.rbp_type == UNWIND_LOC_AT_CFA && st->ra.type == CFI_RULE_OFFSET &&
	    st->ra.off == st->rbp.off + 8) {
		r.ra_type = UNWIND_LOC_FRAME_RECORD; /* the usual case: stp x29, x30 */
		return r;
	}
	int16_t ra_arg;
	if (!location(&a64_loc, &st->ra, true, &r.ra_type, &ra_arg))
		return unsupported(UNWIND_UNSUP_RA_RULE);
	r.ra_arg = (int8_t)ra_arg;
	return r;
}

static int on_row(void *arg, uint64_t pc, uint64_t end, const struct cfi_row_state *st)
{
	struct builder *b = arg;
	const struct cie *cie = b->fde->cie;
	struct unwind_rule r = cie->aarch64 ? row_rule_a64(cie, st) : row_rule(cie, st);
	b->cfi_rows++;
	if (r.cfa_type == UNWIND_CFA_UNSUPPORTED)
		b->unsupported_rows++;
	return emit(b, pc, &r);
}

static int go_emit(void *arg, uint64_t pc, const struct unwind_rule *r)
{
	struct builder *b = arg;
	if (r->cfa_type == UNWIND_CFA_UNSUPPORTED)
		b->unsupported_rows++;
	return emit(b, pc, r);
}

static const struct code_range *code_at(const struct builder *b, uint64_t addr)
{
	for (size_t i = 0; i < b->ncode; i++)
		if (addr >= b->code[i].addr && addr - b->code[i].addr < b->code[i].size)
			return &b->code[i];
	return NULL;
}

/* Length of the x86 NOP (or INT3, or the zero fill linkers put between
 * sections) at p; 0 if it is something else. */
static size_t nop_length(const uint8_t *p, size_t avail)
{
	size_t i = 0;
	if (p[0] == 0xcc || p[0] == 0x90 || p[0] == 0x00)
		return 1;
	while (i < avail && i < 14 && p[i] == 0x66) /* operand-size prefixes */
		i++;
	if (i < avail && p[i] == 0x2e) /* %cs prefix of "nopw %cs:…" */
		i++;
	if (i < avail && p[i] == 0x90)
		return i ? i + 1 : 0;
	if (avail - i < 3 || p[i] != 0x0f || p[i + 1] != 0x1f)
		return 0;
	uint8_t modrm = p[i + 2];
	unsigned mod = modrm >> 6, rm = modrm & 7;
	size_t len = i + 3;
	if (mod != 3 && rm == 4)
		len++; /* SIB */
	if (mod == 1)
		len += 1;
	else if (mod == 2 || (mod == 0 && rm == 5))
		len += 4;
	return len <= avail ? len : 0;
}

/* Is [from, to) alignment padding?  Needs the code bytes; where the object
 * has none (a debug file), a short gap is assumed to be padding. */
static bool is_padding(const struct builder *b, uint64_t from, uint64_t to)
{
	if (to - from >= MAX_PADDING)
		return false;
	const struct code_range *c = code_at(b, from);
	if (!c)
		return true;
	if (to - c->addr > c->size)
		return false;
	const uint8_t *p = c->bytes + (from - c->addr);
	size_t left = (size_t)(to - from);
	if (b->aarch64) {
		/* Fixed 4-byte instructions: NOP (d503201f) or zero fill. */
		static const uint8_t nop[4] = {0x1f, 0x20, 0x03, 0xd5}, zero[4];
		if (left % 4)
			return false;
		for (; left; p += 4, left -= 4)
			if (memcmp(p, nop, 4) && memcmp(p, zero, 4))
				return false;
		return true;
	}
	while (left) {
		size_t n = nop_length(p, left);
		if (!n)
			return false;
		p += n;
		left -= n;
	}
	return true;
}

static int cmp_fde(const void *a, const void *b)
{
	const struct fde *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	/* Same start: .eh_frame before .debug_frame, then longer first. */
	if (x->from_debug_frame != y->from_debug_frame)
		return x->from_debug_frame ? 1 : -1;
	return x->end > y->end ? -1 : x->end < y->end;
}

/* The code bytes, for telling padding from real gaps: executable sections,
 * or, in an object without section headers, executable PT_LOAD segments.
 * (Not segments when sections exist: a debug file keeps the program headers
 * of its executable but not the code they point at.) */
static void find_code(struct builder *b, struct elf_object *o)
{
	size_t shnum = 0;
	if (elf_getshdrnum(o->elf, &shnum) == 0 && shnum > 0) {
		Elf_Scn *scn = NULL;
		while ((scn = elf_nextscn(o->elf, scn)) && b->ncode < ARRAY_SIZE(b->code)) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
			    !(sh.sh_flags & SHF_EXECINSTR) || (sh.sh_flags & SHF_COMPRESSED))
				continue;
			if (sh.sh_offset > o->image_size || sh.sh_size > o->image_size - sh.sh_offset)
				continue;
			b->code[b->ncode++] = (struct code_range){sh.sh_addr, sh.sh_size,
								  o->image + sh.sh_offset};
		}
		return;
	}
	struct elf_segment segs[16];
	struct err ignored = {0};
	int n = elf_object_segments(o, segs, ARRAY_SIZE(segs), &ignored);
	for (int i = 0; i < n && b->ncode < ARRAY_SIZE(b->code); i++) {
		if (!(segs[i].flags & PF_X) || segs[i].offset > o->image_size ||
		    segs[i].filesz > o->image_size - segs[i].offset)
			continue;
		b->code[b->ncode++] = (struct code_range){segs[i].vaddr, segs[i].filesz,
							  o->image + segs[i].offset};
	}
}

/* An object without section headers (sstrip'ed) still has its .eh_frame:
 * PT_GNU_EH_FRAME points at .eh_frame_hdr, whose eh_frame_ptr gives the
 * address of .eh_frame.  Its size is unknown; the parser stops at the zero
 * terminator or at the end of the PT_LOAD segment that holds it. */
static int eh_frame_from_phdrs(struct elf_object *o, struct section *eh, struct err *e)
{
	size_t nphdr, shnum = 0;
	if ((elf_getshdrnum(o->elf, &shnum) == 0 && shnum > 0) || elf_getphdrnum(o->elf, &nphdr) != 0)
		return 0;
	GElf_Phdr hdr = {0};
	bool found = false;
	for (size_t i = 0; i < nphdr && !found; i++)
		found = gelf_getphdr(o->elf, (int)i, &hdr) && hdr.p_type == PT_GNU_EH_FRAME;
	if (!found)
		return 0;
	if (hdr.p_offset > o->image_size || o->image_size - hdr.p_offset < 8)
		return err_set(e, EINVAL, "PT_GNU_EH_FRAME lies outside the file");
	const uint8_t *h = o->image + hdr.p_offset;
	uint8_t enc = h[1];
	if (h[0] != 1)
		return err_set(e, ENOTSUP, ".eh_frame_hdr version %u", h[0]);
	uint64_t ptr;
	if ((enc & 0x0f) == DW_EH_PE_sdata4) {
		int32_t v;
		memcpy(&v, h + 4, 4);
		ptr = (uint64_t)(int64_t)v;
	} else if ((enc & 0x0f) == DW_EH_PE_udata4) {
		uint32_t v;
		memcpy(&v, h + 4, 4);
		ptr = v;
	} else if ((enc & 0x0f) == DW_EH_PE_udata8 || (enc & 0x0f) == DW_EH_PE_sdata8 ||
		   (enc & 0x0f) == DW_EH_PE_absptr) {
		if (o->image_size - hdr.p_offset < 12)
			return err_set(e, EINVAL, ".eh_frame_hdr is truncated");
		memcpy(&ptr, h + 4, 8);
	} else {
		return err_set(e, ENOTSUP, ".eh_frame_hdr pointer encoding 0x%x", enc);
	}
	if ((enc & 0x70) == DW_EH_PE_pcrel)
		ptr += hdr.p_vaddr + 4;
	else if ((enc & 0x70) != DW_EH_PE_absptr)
		return err_set(e, ENOTSUP, ".eh_frame_hdr pointer encoding 0x%x", enc);
	struct elf_segment segs[16];
	int n = elf_object_segments(o, segs, ARRAY_SIZE(segs), e);
	for (int i = 0; i < n; i++) {
		if (ptr < segs[i].vaddr || ptr - segs[i].vaddr >= segs[i].filesz)
			continue;
		uint64_t off = segs[i].offset + (ptr - segs[i].vaddr);
		uint64_t end = segs[i].offset + segs[i].filesz;
		if (end > o->image_size)
			end = o->image_size;
		if (off >= end)
			break;
		*eh = (struct section){.data = o->image + off, .size = end - off, .addr = ptr,
				       .type = SHT_PROGBITS, .found = true};
		return 0;
	}
	return err_set(e, EINVAL, ".eh_frame_hdr points at 0x%llx, outside every PT_LOAD segment",
		       (unsigned long long)ptr);
}

/* Drop .debug_frame FDEs that overlap .eh_frame ones: .eh_frame is what the
 * loaded code ships with, .debug_frame only fills what it leaves out. */
static size_t merge_sources(struct fde *f, size_t n)
{
	size_t out = 0;
	uint64_t eh_end = 0; /* furthest end of an .eh_frame FDE so far */
	/* Pass 1 needs .eh_frame coverage at each debug_frame FDE: since the
	 * list is sorted by start, an overlap is with an earlier-starting eh
	 * FDE (eh_end) or a later-starting one (checked via the next eh FDE). */
	for (size_t i = 0; i < n; i++) {
		if (!f[i].from_debug_frame) {
			if (f[i].end > eh_end)
				eh_end = f[i].end;
			f[out++] = f[i];
			continue;
		}
		bool overlap = f[i].start < eh_end;
		for (size_t j = i + 1; j < n && !overlap && f[j].start < f[i].end; j++)
			overlap = !f[j].from_debug_frame;
		if (!overlap)
			f[out++] = f[i];
	}
	return out;
}

static int build(struct builder *b, struct fde *fdes, size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		const struct fde *f = &fdes[i];
		uint64_t start = f->start;
		uint64_t overlapped_end = 0;
		if (b->entries.len && start < b->covered_end) {
			/* Overlapping FDEs (hand-written or broken CFI; none
			 * on a Debian system): the later-starting one wins from
			 * its start, and what remains of the earlier one after
			 * it is marked UNSUPPORTED rather than guessed. */
			while (b->entries.len &&
			       VEC_AT(&b->entries, struct entry, b->entries.len - 1).pc >= start)
				b->entries.len--;
			overlapped_end = b->covered_end;
		} else if (b->entries.len && start > b->covered_end &&
			   (b->fde_gaps++, !is_padding(b, b->covered_end, start))) {
			struct unwind_rule end = {.cfa_type = UNWIND_CFA_END};
			int rc = emit(b, b->covered_end, &end);
			if (rc)
				return rc;
		}
		b->fde = f;
		int rc = f->go_func ? go_func_rows(b->go, f->go_func - 1, go_emit, b, &b->cfi_rows, e)
				    : cfi_run_fde(f, on_row, b, e);
		if (rc) {
			char msg[sizeof(e->msg)];
			snprintf(msg, sizeof(msg), "%s", e->msg);
			err_clear(e);
			return err_set(e, -rc, "FDE for 0x%llx..0x%llx (%s): %s",
				       (unsigned long long)f->start, (unsigned long long)f->end,
				       f->from_debug_frame ? ".debug_frame" : ".eh_frame", msg);
		}
		if (overlapped_end > f->end) {
			struct unwind_rule rest = unsupported(UNWIND_UNSUP_OVERLAP);
			if ((rc = emit(b, f->end, &rest)))
				return rc;
		}
		if (f->end > b->covered_end || start >= b->covered_end)
			b->covered_end = f->end;
	}
	struct unwind_rule end = {.cfa_type = UNWIND_CFA_END};
	return emit(b, b->covered_end, &end);
}

static int serialize(struct builder *b, struct elf_object *o, uint32_t flags,
		     struct unwind_table *out, struct err *e)
{
	size_t nent = b->entries.len;
	const struct entry *ent = b->entries.data;
	uint64_t base = ent[0].pc & ~(uint64_t)UNWIND_OFFSET_MASK;
	uint64_t span = ent[nent - 1].pc - base;
	uint64_t npages = (span >> UNWIND_PAGE_SHIFT) + 1;
	if (npages > UINT32_MAX / 8 || nent > UINT32_MAX / 4)
		return err_set(e, E2BIG, "object spans too much code for one table");

	size_t rules_off = sizeof(struct unwind_table_header);
	size_t pages_off = rules_off + b->nrules * sizeof(struct unwind_rule);
	size_t entries_off = pages_off + (npages + 1) * sizeof(uint32_t);
	size_t total = (entries_off + nent * UNWIND_ENTRY_SIZE + 7) & ~(size_t)7;
	if (total > UINT32_MAX)
		return err_set(e, E2BIG, "table would be %zu bytes, over 4 GiB", total);
	uint8_t *buf = calloc(1, total);
	if (!buf)
		return err_set(e, ENOMEM, "out of memory for a %zu-byte table", total);

	struct unwind_table_header *h = (struct unwind_table_header *)buf;
	h->magic = UNWIND_TABLE_MAGIC;
	h->version = UNWIND_TABLE_VERSION;
	h->arch = o->ehdr.e_machine == EM_AARCH64 ? UNWIND_ARCH_AARCH64 : UNWIND_ARCH_X86_64;
	h->header_size = sizeof(*h);
	h->flags = flags;
	h->base = base;
	h->page_count = (uint32_t)npages;
	h->entry_count = (uint32_t)nent;
	h->rule_count = b->nrules;
	h->rules_offset = (uint32_t)rules_off;
	h->pages_offset = (uint32_t)pages_off;
	h->entries_offset = (uint32_t)entries_off;
	h->total_size = (uint32_t)total;
	h->cfi_rows = b->cfi_rows > UINT32_MAX ? UINT32_MAX : (uint32_t)b->cfi_rows;
	h->unsupported_rows = (uint32_t)b->unsupported_rows;
	h->build_id_len = (uint8_t)o->build_id_len;
	memcpy(h->build_id, o->build_id, o->build_id_len);
	memcpy(buf + rules_off, b->rules, b->nrules * sizeof(struct unwind_rule));

	uint32_t *pages = (uint32_t *)(buf + pages_off);
	uint8_t *e3 = buf + entries_off;
	size_t i = 0;
	for (uint64_t p = 0; p <= npages; p++) {
		uint64_t page_start = base + (p << UNWIND_PAGE_SHIFT);
		while (i < nent && ent[i].pc < page_start)
			i++;
		pages[p] = (uint32_t)i;
	}
	for (i = 0; i < nent; i++) {
		uint32_t off = (uint32_t)(ent[i].pc & UNWIND_OFFSET_MASK);
		uint32_t v = off | ent[i].rule << 12;
		e3[3 * i] = (uint8_t)v;
		e3[3 * i + 1] = (uint8_t)(v >> 8);
		e3[3 * i + 2] = (uint8_t)(v >> 16);
	}
	out->data = buf;
	out->size = total;
	return 0;
}

int unwind_compile(struct elf_object *o, const struct unwind_compile_options *opt,
		   struct unwind_table *out, struct err *e)
{
	static const struct unwind_compile_options defaults;
	if (!opt)
		opt = &defaults;
	uint64_t t0 = now_ns();
	memset(out, 0, sizeof(*out));
	uint16_t machine = o->ehdr.e_machine;
	if (machine != EM_X86_64 && machine != EM_AARCH64)
		return err_set(e, ENOTSUP, "e_machine %u is not supported (x86-64 and aarch64 only)",
			       machine);
	uint8_t addr_size = o->ehdr.e_ident[EI_CLASS] == ELFCLASS64 ? 8 : 4;

	struct builder *b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, ENOMEM, "out of memory");
	b->e = e;
	vec_init(&b->entries, sizeof(struct entry));
	struct vec cies, fdes;
	vec_init(&cies, sizeof(struct cie));
	vec_init(&fdes, sizeof(struct fde));
	struct section eh = {0}, df = {0};
	struct go_pclntab go;
	uint32_t flags = 0;
	if (opt->max_decompressed)
		o->max_decompressed = opt->max_decompressed;
	int rc = elf_object_section(o, ".eh_frame", &eh, e);
	if (!rc && !eh.found)
		rc = eh_frame_from_phdrs(o, &eh, e);
	if (!rc && !opt->no_debug_frame)
		rc = elf_object_section(o, ".debug_frame", &df, e);
	if (rc)
		goto out;
	if (eh.size) {
		struct cfi_section s = {eh.data, eh.size, eh.addr, true, addr_size, machine};
		if ((rc = cfi_parse_section(&s, &cies, &fdes, e)))
			goto out;
		flags |= UNWIND_TABLE_F_EH_FRAME;
	}
	size_t n_eh = fdes.len;
	if (df.size) {
		struct cfi_section s = {df.data, df.size, df.addr, false, addr_size, machine};
		if ((rc = cfi_parse_section(&s, &cies, &fdes, e)))
			goto out;
		if (fdes.len > n_eh)
			flags |= UNWIND_TABLE_F_DEBUG_FRAME;
	}
	for (size_t i = 0; i < fdes.len; i++)
		VEC_AT(&fdes, struct fde, i).cie = &VEC_AT(&cies, struct cie,
							    VEC_AT(&fdes, struct fde, i).cie_index);
	/* Go code: rows from .gopclntab replace whatever CFI covers it.  The
	 * rows say "return address at CFA-8", the x86-64 call convention; an
	 * aarch64 Go function keeps its return address in LR first, so aarch64
	 * Go code is not given rows it would walk wrongly (docs/go.md). */
	rc = machine == EM_X86_64 ? go_pclntab_open_elf(&go, o, e) : -ENODATA;
	if (rc == 0) {
		size_t ngo = 0;
		if ((rc = go_add_funcs(&go, &fdes, &ngo, e)))
			goto out;
		b->go = &go;
		if (ngo)
			flags |= UNWIND_TABLE_F_GOPCLNTAB;
	} else if (rc != -ENODATA) {
		goto out;
	}
	rc = 0;
	if (fdes.len == 0) {
		rc = err_set(e, ENODATA, "no call-frame information (no FDE in .eh_frame or .debug_frame, no .gopclntab)");
		goto out;
	}
	struct fde *f = fdes.data;
	qsort(f, fdes.len, sizeof(*f), cmp_fde);
	size_t n = merge_sources(f, fdes.len);
	if (n < fdes.len && n_eh == n)
		flags &= ~UNWIND_TABLE_F_DEBUG_FRAME;
	b->aarch64 = machine == EM_AARCH64;
	find_code(b, o);
	if ((rc = vec_reserve(&b->entries, n * 4))) {
		rc = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = build(b, f, n, e)))
		goto out;
	if ((rc = serialize(b, o, flags, out, e)))
		goto out;
	struct unwind_table_header *h = (struct unwind_table_header *)out->data;
	h->fde_count = (uint32_t)n;
	out->stats = (struct unwind_stats){
		.cfi_rows = b->cfi_rows,
		.fdes = n,
		.fde_gaps = b->fde_gaps + 1, /* and the end of the last one */
		.unsupported_rows = b->unsupported_rows,
		.entries = h->entry_count,
		.rules = h->rule_count,
		.pages = h->page_count,
		.table_bytes = out->size,
		.compile_ms = (double)(now_ns() - t0) / 1e6,
	};
out:
	section_free(&eh);
	section_free(&df);
	vec_free(&cies);
	vec_free(&fdes);
	vec_free(&b->entries);
	free(b);
	return rc;
}

int unwind_compile_file(const char *path, const struct unwind_compile_options *opt,
			struct unwind_table *out, struct err *e)
{
	struct elf_object o;
	int rc = elf_object_open(&o, path, e);
	if (rc)
		return rc;
	rc = unwind_compile(&o, opt, out, e);
	elf_object_close(&o);
	return rc;
}

int unwind_compile_mem(const void *image, size_t size, const struct unwind_compile_options *opt,
		       struct unwind_table *out, struct err *e)
{
	struct elf_object o;
	int rc = elf_object_open_mem(&o, image, size, NULL, e);
	if (rc)
		return rc;
	rc = unwind_compile(&o, opt, out, e);
	elf_object_close(&o);
	return rc;
}

void unwind_table_free(struct unwind_table *t)
{
	free(t->data);
	t->data = NULL;
	t->size = 0;
}
