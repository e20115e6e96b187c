/* The aarch64 half of the walker (included by walker.c, same shim, same
 * rules for BPF: bounded, no loops but the caller's).
 *
 * Registers are DWARF-numbered: X0..X30, SP = 31, PC = 32.  What differs
 * from x86-64:
 *   - the return address of the interrupted frame is in LR (X30) until the
 *     prologue saves it: a rule whose X30 is SAME reads the register;
 *   - the caller's X30 is the return address itself (DWARF's RA column);
 *   - return addresses may carry a pointer-authentication code in their
 *     top bits: stripped from every return address (user addresses have
 *     48 bits; the flag in the rule only says the CFI knew it was signed);
 *   - signal frames: the vDSO's __kernel_rt_sigreturn (a SIGNAL rule), or
 *     a trampoline outside any known object with the same two
 *     instructions (qemu-user's), found by reading the code, as libgcc does;
 *     SP then points at struct rt_sigframe;
 *   - where there is no CFI: in the interrupted frame LR is still live
 *     (PLT stubs, hand-written leaves); above it the frame record that X29
 *     points at ({caller's X29, return address}) gives the caller. */

#define A64_X29 UNWIND_A64_X29
#define A64_X30 UNWIND_A64_X30
#define A64_SP UNWIND_A64_SP
#define A64_PC UNWIND_A64_PC
/* User virtual addresses have at most 48 bits here (4 KiB pages, no LVA);
 * a PAC lives in the bits above. */
#define A64_ADDR_MASK 0x0000ffffffffffffull
/* mov x8, #139 (__NR_rt_sigreturn); svc #0 */
#define A64_SIGRETURN_INSNS 0xd4000001d2801168ull

static WALK_INLINE __u64 a64_strip_pac(__u64 ra)
{
	return ra & A64_ADDR_MASK;
}

/* At a sigreturn trampoline SP points at struct rt_sigframe; its
 * sigcontext holds regs[31], sp and pc of the interrupted frame. */
static WALK_INLINE int a64_signal_step(struct walk_env *env, struct walk_regs *st,
				       struct sample_record *rec, struct frame *f)
{
	/* Reported as an activation, like libdwfl: the trampoline was
	 * entered by a return, not a call. */
	f->kind = FRAME_LEAF;
	if (!(st->valid & REG_BIT(A64_SP)))
		return walk_stop(rec, WALK_NEED_REG);
	if (w_read(env, st->r, 8 * UNWIND_A64_NREGS, st->r[A64_SP] + UNWIND_A64_SIGFRAME_REGS) < 0)
		return walk_stop(rec, WALK_READ);
	st->valid = (1ull << UNWIND_A64_NREGS) - 1;
	st->is_return = 0; /* the interrupted PC resumes: looked up as is */
	w_count(env, CNT_SIGNAL_FRAMES);
	if (st->r[A64_PC] == 0)
		return walk_stop(rec, WALK_END);
	return 0;
}

/* No CFI for this PC (no mapping, no table, no row, or a frame-pointer-only
 * object): a sigreturn trampoline by its code, LR in the interrupted frame,
 * else the frame record at X29. */
static WALK_INLINE int a64_no_cfi(struct walk_env *env, struct walk_regs *st,
				  struct sample_record *rec, struct frame *f, __u8 mode, int why)
{
	__u64 pc = st->r[A64_PC];
	__u64 insns = 0;
	if (w_read(env, &insns, sizeof(insns), pc) == 0 && insns == A64_SIGRETURN_INSNS)
		return a64_signal_step(env, st, rec, f);
	if (why == WALK_NO_MAPPING && mode != MODE_FP)
		return walk_stop(rec, WALK_NO_MAPPING);
	w_count(env, CNT_FP_STEPS);
	f->via_fp = 1;
	if (!st->is_return) {
		/* The interrupted frame: the return address is still in LR
		 * (a PLT stub or leaf code without CFI); SP and X29 stay. */
		if (!(st->valid & REG_BIT(A64_X30)))
			return walk_stop(rec, WALK_NEED_REG);
		__u64 ra = a64_strip_pac(st->r[A64_X30]);
		if (ra == 0)
			return walk_stop(rec, WALK_END);
		st->r[A64_PC] = ra;
		st->valid &= REG_BIT(A64_SP) | REG_BIT(A64_X29);
		st->valid |= REG_BIT(A64_PC) | REG_BIT(A64_X30);
		st->is_return = 1;
		return 0;
	}
	if (!(st->valid & REG_BIT(A64_X29)))
		return walk_stop(rec, WALK_NEED_REG);
	__u64 fp = st->r[A64_X29];
	if (fp == 0)
		return walk_stop(rec, WALK_END);
	if (fp + 16 <= st->r[A64_SP])
		return walk_stop(rec, WALK_NO_PROGRESS);
	__u64 record[2];
	if (w_read(env, record, sizeof(record), fp) < 0)
		return walk_stop(rec, WALK_READ);
	__u64 ra = a64_strip_pac(record[1]);
	if (ra == 0)
		return walk_stop(rec, WALK_END);
	st->r[A64_SP] = fp + 16;
	st->r[A64_X29] = record[0];
	st->r[A64_X30] = ra;
	st->r[A64_PC] = ra;
	st->valid = REG_BIT(A64_SP) | REG_BIT(A64_X29) | REG_BIT(A64_X30) | REG_BIT(A64_PC);
	st->is_return = 1;
	return 0;
}

/* One frame by an aarch64 table rule (unwind_table.h, "aarch64"). */
static WALK_INLINE int a64_rule_step(struct walk_env *env, struct walk_regs *st,
				     struct sample_record *rec, struct frame *f,
				     const struct unwind_rule *r, __u8 mode)
{
	__u8 cfa_type = r->cfa_type, cfa_reg = r->cfa_reg;
	__u8 fp_type = r->rbp_type, ra_type = r->ra_type;
	__s32 cfa_offset = r->cfa_offset, fp_arg = r->rbp_arg, ra_arg = r->ra_arg;

	if (cfa_type == UNWIND_CFA_END)
		return a64_no_cfi(env, st, rec, f, mode, WALK_NO_ROW);
	if (cfa_type == UNWIND_CFA_SIGNAL)
		return a64_signal_step(env, st, rec, f);
	if (cfa_type != UNWIND_CFA_REG)
		return walk_stop(rec, WALK_UNSUPPORTED);
	if (cfa_reg >= SAMPLER_REGS || !(st->valid & REG_BIT(cfa_reg)))
		return walk_stop(rec, WALK_NEED_REG);
	__u64 cfa = st->r[cfa_reg & 63] + (__s64)cfa_offset;

	__u64 ra = 0, fp = st->r[A64_X29];
	int fp_known = (st->valid & REG_BIT(A64_X29)) != 0;
	if (ra_type == UNWIND_LOC_UNDEFINED)
		return walk_stop(rec, WALK_END);
	if (ra_type == UNWIND_LOC_FRAME_RECORD) {
		/* stp x29, x30: both in one 16-byte read. */
		__u64 record[2];
		if (w_read(env, record, sizeof(record), cfa + 8 * (__s64)fp_arg) < 0)
			return walk_stop(rec, WALK_READ);
		fp = record[0];
		ra = record[1];
		fp_known = 1;
		goto have_caller;
	}
	if (ra_type == UNWIND_LOC_SAME) {
		/* LR still holds the return address. */
		if (!(st->valid & REG_BIT(A64_X30)))
			return walk_stop(rec, WALK_NEED_REG);
		ra = st->r[A64_X30];
	} else if (ra_type == UNWIND_LOC_AT_CFA) {
		if (w_read(env, &ra, sizeof(ra), cfa + 8 * (__s64)ra_arg) < 0)
			return walk_stop(rec, WALK_READ);
	} else if (ra_type == UNWIND_LOC_IN_REG) {
		if (ra_arg < 0 || ra_arg >= SAMPLER_REGS || !(st->valid & REG_BIT(ra_arg)))
			return walk_stop(rec, WALK_NEED_REG);
		ra = st->r[ra_arg & 63];
	} else {
		return walk_stop(rec, WALK_UNSUPPORTED);
	}
	if (fp_type == UNWIND_LOC_AT_CFA) {
		/* Unreadable: X29 unknown, not the end of the walk (see the
		 * x86-64 RBP rule in walker.c). */
		fp_known = w_read(env, &fp, sizeof(fp), cfa + 8 * (__s64)fp_arg) == 0;
	} else if (fp_type == UNWIND_LOC_IN_REG) {
		fp_known = fp_arg >= 0 && fp_arg < SAMPLER_REGS && (st->valid & REG_BIT(fp_arg));
		fp = st->r[fp_arg & 63];
	} else if (fp_type == UNWIND_LOC_UNDEFINED) {
		fp_known = 0;
	}

have_caller:
	/* A leaf's CFA may equal SP (nothing pushed); a caller's cannot. */
	if (cfa < st->r[A64_SP] || (cfa == st->r[A64_SP] && st->is_return))
		return walk_stop(rec, WALK_NO_PROGRESS);
	ra = a64_strip_pac(ra);
	if (ra == 0)
		return walk_stop(rec, WALK_END);
	st->r[A64_SP] = cfa;
	st->r[A64_X29] = fp;
	st->r[A64_X30] = ra;
	st->r[A64_PC] = ra;
	st->valid = REG_BIT(A64_SP) | REG_BIT(A64_X30) | REG_BIT(A64_PC) |
		    (fp_known ? REG_BIT(A64_X29) : 0);
	st->is_return = 1;
	return 0;
}
