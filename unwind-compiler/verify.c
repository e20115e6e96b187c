/* `unwind-compile --verify`: every row of our table against libdw.
 *
 * libdw is an independent reading of the same CFI (its own parser and
 * interpreter).  We walk the address space in steps that stop at every row
 * boundary of both sides, so each distinct pair of (our row, libdw row) is
 * compared at least once, and convert libdw's answer into the rule we should
 * have produced.  The conversion is written against libdw's Dwarf_Op form,
 * not against our parser's, so a bug in one is not copied into the other. */
#include "unwind-compiler/unwind_compiler.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define X86_SIGFRAME_RSP 160
#define X86_SIGFRAME_RIP 168

static struct unwind_rule unsup(enum unwind_unsupported_reason why)
{
	return (struct unwind_rule){.cfa_type = UNWIND_CFA_UNSUPPORTED, .cfa_reg = (uint8_t)why};
}

static bool breg(const Dwarf_Op *op, uint64_t *reg, int64_t *off)
{
	if (op->atom >= DW_OP_breg0 && op->atom <= DW_OP_breg31) {
		*reg = op->atom - DW_OP_breg0;
		*off = (int64_t)op->number;
		return true;
	}
	if (op->atom == DW_OP_bregx) {
		*reg = op->number;
		*off = (int64_t)op->number2;
		return true;
	}
	return false;
}

/* libdw CFA ops -> rule (type and CFA fields only); false: not expressible. */
static bool cfa_from_ops(const Dwarf_Op *ops, size_t n, struct unwind_rule *r)
{
	uint64_t reg;
	int64_t off;
	if (n == 0 || !breg(&ops[0], &reg, &off) || reg > UNWIND_X86_R15 || off < INT32_MIN ||
	    off > INT32_MAX)
		return false;
	*r = (struct unwind_rule){.cfa_reg = (uint8_t)reg, .cfa_offset = (int32_t)off};
	if (n == 1) {
		r->cfa_type = UNWIND_CFA_REG;
		return true;
	}
	if (ops[1].atom == DW_OP_deref && (n == 2 || (n == 3 && ops[2].atom == DW_OP_plus_uconst &&
						       ops[2].number <= INT8_MAX))) {
		r->cfa_type = UNWIND_CFA_DEREF;
		r->cfa_aux = n == 3 ? (int8_t)ops[2].number : 0;
		return true;
	}
	if (n == 9 && reg == UNWIND_X86_RSP && ops[1].atom == DW_OP_breg0 + UNWIND_X86_RIP &&
	    ops[1].number == 0 && ops[2].atom == DW_OP_lit15 && ops[3].atom == DW_OP_and &&
	    ops[4].atom >= DW_OP_lit0 && ops[4].atom <= DW_OP_lit15 && ops[5].atom == DW_OP_ge &&
	    ops[6].atom == DW_OP_lit3 && ops[7].atom == DW_OP_shl && ops[8].atom == DW_OP_plus) {
		r->cfa_type = UNWIND_CFA_PLT;
		r->cfa_aux = (int8_t)(ops[4].atom - DW_OP_lit0);
		return true;
	}
	return false;
}

enum loc_kind { LOC_BAD, LOC_SAME, LOC_UNDEF, LOC_AT_CFA, LOC_IN_REG, LOC_VAL_CFA };

static enum loc_kind loc_from_libdw(Dwarf_Frame *fr, int regno, int64_t *arg)
{
	Dwarf_Op mem[3], *ops = NULL;
	size_t n = 0;
	*arg = 0;
	if (dwarf_frame_register(fr, regno, mem, &ops, &n) != 0)
		return LOC_BAD;
	if (n == 0)
		return ops == NULL ? LOC_SAME : LOC_UNDEF;
	if (ops[0].atom == DW_OP_regx && n == 1) {
		*arg = (int64_t)ops[0].number;
		return LOC_IN_REG;
	}
	if (ops[0].atom != DW_OP_call_frame_cfa)
		return LOC_BAD;
	size_t i = 1;
	if (i < n && ops[i].atom == DW_OP_plus_uconst)
		*arg = (int64_t)ops[i++].number;
	if (i == n)
		return LOC_AT_CFA;
	if (i + 1 == n && ops[i].atom == DW_OP_stack_value)
		return LOC_VAL_CFA;
	return LOC_BAD;
}

static bool loc_to_rule(enum loc_kind k, int64_t arg, bool is_ra, uint8_t *type, int16_t *out)
{
	int64_t lo = is_ra ? INT8_MIN : INT16_MIN, hi = is_ra ? INT8_MAX : INT16_MAX;
	*out = 0;
	switch (k) {
	case LOC_SAME:
		*type = UNWIND_LOC_SAME;
		return !is_ra;
	case LOC_UNDEF:
		*type = UNWIND_LOC_UNDEFINED;
		return true;
	case LOC_AT_CFA:
		if (arg < lo || arg > hi)
			return false;
		*type = UNWIND_LOC_AT_CFA;
		*out = (int16_t)arg;
		return true;
	case LOC_IN_REG:
		if (arg < 0 || arg > UNWIND_X86_R15)
			return false;
		*type = UNWIND_LOC_IN_REG;
		*out = (int16_t)arg;
		return true;
	default:
		return false;
	}
}

/* What our table should say, according to libdw. */
static struct unwind_rule expected_rule(Dwarf_Frame *fr)
{
	Dwarf_Addr start, end;
	bool signal = false;
	int ra_reg = dwarf_frame_info(fr, &start, &end, &signal);
	Dwarf_Op *ops;
	size_t n;
	struct unwind_rule r;
	if (dwarf_frame_cfa(fr, &ops, &n) != 0)
		return unsup(UNWIND_UNSUP_CFA_EXPR);
	if (signal) {
		/* Kernel layout: CFA = *(RSP+160), RIP saved at RSP+168.
		 * libdw renders an expression rule as [call_frame_cfa, ops]. */
		Dwarf_Op mem[3], *rops = NULL;
		size_t rn = 0;
		uint64_t reg;
		int64_t off;
		if (!cfa_from_ops(ops, n, &r) || r.cfa_type != UNWIND_CFA_DEREF ||
		    r.cfa_reg != UNWIND_X86_RSP || r.cfa_offset != X86_SIGFRAME_RSP || r.cfa_aux)
			return unsup(UNWIND_UNSUP_SIGNAL);
		if (dwarf_frame_register(fr, ra_reg, mem, &rops, &rn) != 0 || rn != 2 ||
		    rops[0].atom != DW_OP_call_frame_cfa || !breg(&rops[1], &reg, &off) ||
		    reg != UNWIND_X86_RSP || off != X86_SIGFRAME_RIP)
			return unsup(UNWIND_UNSUP_SIGNAL);
		return (struct unwind_rule){.cfa_type = UNWIND_CFA_SIGNAL};
	}
	if (!cfa_from_ops(ops, n, &r)) {
		/* def_cfa with an offset beyond 32 bits is a range problem. */
		uint64_t reg;
		int64_t off;
		if (n == 1 && breg(&ops[0], &reg, &off) && reg <= UNWIND_X86_R15)
			return unsup(UNWIND_UNSUP_RANGE);
		return unsup(UNWIND_UNSUP_CFA_EXPR);
	}
	int64_t arg;
	enum loc_kind rsp = loc_from_libdw(fr, UNWIND_X86_RSP, &arg);
	if (!(rsp == LOC_SAME || rsp == LOC_UNDEF || (rsp == LOC_VAL_CFA && arg == 0)))
		return unsup(UNWIND_UNSUP_RSP_RULE);
	enum loc_kind k = loc_from_libdw(fr, UNWIND_X86_RBP, &arg);
	if (!loc_to_rule(k, arg, false, &r.rbp_type, &r.rbp_arg))
		return unsup(UNWIND_UNSUP_RBP_RULE);
	int16_t ra_arg;
	k = loc_from_libdw(fr, ra_reg, &arg);
	if (!loc_to_rule(k, arg, true, &r.ra_type, &ra_arg))
		return unsup(UNWIND_UNSUP_RA_RULE);
	r.ra_arg = (int8_t)ra_arg;
	return r;
}

/* aarch64: what our table should say, according to libdw.  libdw does not
 * track RA_SIGN_STATE (negate_ra_state), so the PAC flag is not compared
 * here; the llvm-dwarfdump-19 comparison checks it (its reg34). */
static struct unwind_rule expected_rule_a64(Dwarf_Frame *fr)
{
	Dwarf_Addr start, end;
	bool signal = false;
	int ra_reg = dwarf_frame_info(fr, &start, &end, &signal);
	Dwarf_Op *ops;
	size_t n;
	uint64_t reg;
	int64_t off, arg;
	if (dwarf_frame_cfa(fr, &ops, &n) != 0 || n != 1 || !breg(&ops[0], &reg, &off))
		return unsup(signal ? UNWIND_UNSUP_SIGNAL : UNWIND_UNSUP_CFA_EXPR);
	enum loc_kind fp = loc_from_libdw(fr, UNWIND_A64_X29, &arg);
	int64_t fp_arg = arg;
	enum loc_kind ra = loc_from_libdw(fr, ra_reg, &arg);
	int64_t ra_arg = arg;
	if (signal) {
		/* The vDSO trampoline: CFA = X29, X29 at [CFA], X30 at [CFA+8]. */
		if (reg != UNWIND_A64_X29 || off != 0 || fp != LOC_AT_CFA || fp_arg != 0 ||
		    ra != LOC_AT_CFA || ra_arg != 8)
			return unsup(UNWIND_UNSUP_SIGNAL);
		return (struct unwind_rule){.cfa_type = UNWIND_CFA_SIGNAL};
	}
	if (reg > UNWIND_A64_SP)
		return unsup(UNWIND_UNSUP_CFA_EXPR);
	if (off < INT32_MIN || off > INT32_MAX)
		return unsup(UNWIND_UNSUP_RANGE);
	struct unwind_rule r = {.cfa_type = UNWIND_CFA_REG, .cfa_reg = (uint8_t)reg,
				.cfa_offset = (int32_t)off};
	enum loc_kind sp = loc_from_libdw(fr, UNWIND_A64_SP, &arg);
	if (!(sp == LOC_SAME || sp == LOC_UNDEF || (sp == LOC_VAL_CFA && arg == 0)))
		return unsup(UNWIND_UNSUP_RSP_RULE);
	switch (fp) {
	case LOC_SAME: r.rbp_type = UNWIND_LOC_SAME; break;
	case LOC_UNDEF: r.rbp_type = UNWIND_LOC_UNDEFINED; break;
	case LOC_AT_CFA:
		if (fp_arg % 8 || fp_arg / 8 < INT16_MIN || fp_arg / 8 > INT16_MAX)
			return unsup(UNWIND_UNSUP_RBP_RULE);
		r.rbp_type = UNWIND_LOC_AT_CFA;
		r.rbp_arg = (int16_t)(fp_arg / 8);
		break;
	case LOC_IN_REG:
		if (fp_arg < 0 || fp_arg > UNWIND_A64_X30)
			return unsup(UNWIND_UNSUP_RBP_RULE);
		r.rbp_type = UNWIND_LOC_IN_REG;
		r.rbp_arg = (int16_t)fp_arg;
		break;
	default:
		return unsup(UNWIND_UNSUP_RBP_RULE);
	}
	if (r.rbp_type == UNWIND_LOC_AT_CFA && ra == LOC_AT_CFA && ra_arg == fp_arg + 8) {
		r.ra_type = UNWIND_LOC_FRAME_RECORD;
		return r;
	}
	switch (ra) {
	case LOC_SAME: r.ra_type = UNWIND_LOC_SAME; break; /* LR still live */
	case LOC_UNDEF: r.ra_type = UNWIND_LOC_UNDEFINED; break;
	case LOC_AT_CFA:
		if (ra_arg % 8 || ra_arg / 8 < INT8_MIN || ra_arg / 8 > INT8_MAX)
			return unsup(UNWIND_UNSUP_RA_RULE);
		r.ra_type = UNWIND_LOC_AT_CFA;
		r.ra_arg = (int8_t)(ra_arg / 8);
		break;
	case LOC_IN_REG:
		if (ra_arg < 0 || ra_arg > UNWIND_A64_X30)
			return unsup(UNWIND_UNSUP_RA_RULE);
		r.ra_type = UNWIND_LOC_IN_REG;
		r.ra_arg = (int8_t)ra_arg;
		break;
	default:
		return unsup(UNWIND_UNSUP_RA_RULE);
	}
	return r;
}

struct cfis {
	Dwarf_CFI *eh, *debug;
	Dwarf *dw;
};

/* libdw's frame at pc from .eh_frame, else .debug_frame; NULL if none. */
static Dwarf_Frame *libdw_frame(struct cfis *c, uint64_t pc)
{
	Dwarf_Frame *fr = NULL;
	if (c->eh && dwarf_cfi_addrframe(c->eh, pc, &fr) == 0)
		return fr;
	if (c->debug && dwarf_cfi_addrframe(c->debug, pc, &fr) == 0)
		return fr;
	return NULL;
}

long unwind_verify(struct elf_object *o, const struct unwind_view *v, FILE *report,
		   unsigned max_report, uint64_t *checked_rows, struct err *e)
{
	struct cfis c = {0};
	if (v->hdr->flags & UNWIND_TABLE_F_EH_FRAME)
		c.eh = dwarf_getcfi_elf(o->elf);
	if (v->hdr->flags & UNWIND_TABLE_F_DEBUG_FRAME) {
		c.dw = dwarf_begin_elf(o->elf, DWARF_C_READ, NULL);
		if (c.dw)
			c.debug = dwarf_getcfi(c.dw);
	}
	if (!c.eh && !c.debug) {
		if (c.dw)
			dwarf_end(c.dw);
		return err_set(e, ENODATA, "libdw finds no CFI in this object: %s", dwarf_errmsg(-1));
	}
	long diffs = 0;
	uint64_t checked = 0;
	const struct unwind_table_header *h = v->hdr;
	uint64_t pc = h->base;
	uint64_t limit = h->base + ((uint64_t)h->page_count << UNWIND_PAGE_SHIFT);
	char ours[160], theirs[160];
	while (pc < limit) {
		uint64_t rs, re;
		const struct unwind_rule *r = unwind_table_lookup(v, pc, &rs, &re);
		if (!r) { /* before the first entry */
			pc = h->base + unwind_entry_offset(v->entries);
			continue;
		}
		if (re > limit)
			re = limit;
		if (pc < rs) { /* cannot happen: lookup found the row containing pc */
			pc = rs;
			continue;
		}
		Dwarf_Frame *fr = libdw_frame(&c, pc);
		uint64_t next = re;
		bool bad = false;
		if (r->cfa_type == UNWIND_CFA_END) {
			if (fr) {
				bad = true;
				snprintf(theirs, sizeof(theirs), "a row");
			}
			next = re; /* END rows only claim their first address */
			if (fr) {
				Dwarf_Addr s, en;
				bool sig;
				dwarf_frame_info(fr, &s, &en, &sig);
				if (en > pc && en < next)
					next = en;
			}
		} else if (!fr) {
			/* No CFI here: acceptable only in alignment padding
			 * after a function (our row spans it), so libdw must
			 * have a row again within 16 bytes, or our row end. */
			uint64_t resume = pc + 1;
			Dwarf_Frame *nf = NULL;
			while (resume < re && resume - pc < 16 && !(nf = libdw_frame(&c, resume)))
				resume++;
			free(nf);
			if (pc == rs || resume - pc >= 16) {
				bad = true;
				snprintf(theirs, sizeof(theirs), "no row");
			}
			next = resume;
		} else {
			Dwarf_Addr s, en;
			bool sig;
			dwarf_frame_info(fr, &s, &en, &sig);
			bool a64 = h->arch == UNWIND_ARCH_AARCH64;
			struct unwind_rule want = a64 ? expected_rule_a64(fr) : expected_rule(fr);
			struct unwind_rule have = *r;
			if (a64 && have.cfa_type == UNWIND_CFA_REG)
				have.cfa_aux &= (int8_t)~UNWIND_A64_F_RA_SIGNED;
			if (memcmp(&want, &have, sizeof(want)) != 0) {
				bad = true;
				unwind_rule_format(&want, h->arch, theirs, sizeof(theirs));
			}
			if (en > pc && en < next)
				next = en;
		}
		checked++;
		if (bad) {
			diffs++;
			if (report && (unsigned long)diffs <= max_report) {
				unwind_rule_format(r, h->arch, ours, sizeof(ours));
				fprintf(report, "0x%" PRIx64 ": ours %s, libdw %s\n", pc, ours, theirs);
			}
		}
		free(fr);
		pc = next > pc ? next : pc + 1;
	}
	if (c.eh)
		dwarf_cfi_end(c.eh);
	if (c.dw)
		dwarf_end(c.dw);
	if (checked_rows)
		*checked_rows = checked;
	return diffs;
}
