/* The table-driven stack walker: one source for the BPF sampler and for user
 * space (replay tests, tools).  Not compiled on its own: sampler.bpf.c and
 * walker_user.c include it after defining the shim:
 *
 *   struct walk_env                      per-sample context (pid, memory, maps)
 *   WALK_INLINE                          __always_inline in BPF
 *   w_read(env, dst, size, addr)         read user memory; 0 or < 0
 *   w_mapping(env, addr)                 mapping_value * covering addr, or NULL
 *   w_table(env, id)                     table_info * of object id, or NULL
 *   w_page(env, global_idx)              __u32 * of a pages[] value, or NULL
 *   w_entry(env, global_idx)             const __u8 * to a 3-byte entry, or NULL
 *   w_rule(env, global_idx)              const struct unwind_rule *, or NULL
 *   w_count(env, counter)                bump a counter
 *   W_OPAQUE(env, x)                     x, with its range hidden from the BPF
 *                                        verifier (keeps the search loop from
 *                                        exploding into 2^13 states)
 *   W_A64(st)                            optional: nonzero when walking aarch64
 *                                        (default: st->arch; BPF fixes it at
 *                                        compile time from __TARGET_ARCH_*)
 *
 * walk_step() unwinds one frame: it records the frame for the current RIP
 * and computes the caller's registers, or stops with a reason.  It returns 0
 * to continue and 1 to stop (the bpf_loop callback convention).
 */

#define REG_BIT(n) (1ull << (n))

#ifndef W_A64
#define W_A64(st) ((st)->arch == WALK_ARCH_AARCH64)
#endif

static WALK_INLINE int walk_stop(struct sample_record *rec, enum walk_reason why)
{
	rec->reason = why;
	return 1;
}

/* The rule in force at file address pc in table t (unwind_table.h's lookup:
 * page index, then at most UNWIND_MAX_SEARCH_STEPS steps of binary search). */
static WALK_INLINE const struct unwind_rule *walk_lookup(struct walk_env *env,
							 const struct table_info *t, __u64 pc)
{
	if (pc < t->base)
		return 0;
	__u64 page = (pc - t->base) >> UNWIND_PAGE_SHIFT;
	if (page >= t->page_count)
		return 0;
	__u32 *lo_p = w_page(env, t->pages_first + (__u32)page);
	__u32 *hi_p = w_page(env, t->pages_first + (__u32)page + 1);
	if (!lo_p || !hi_p)
		return 0;
	__u32 lo = *lo_p, hi = *hi_p;
	if (hi > t->entry_count || lo > hi || hi - lo > UNWIND_PAGE_SIZE)
		return 0;
	__u32 off = (__u32)(pc & UNWIND_OFFSET_MASK);
	for (int step = 0; step < UNWIND_MAX_SEARCH_STEPS; step++) {
		lo = W_OPAQUE(env, lo);
		hi = W_OPAQUE(env, hi);
		if (lo >= hi)
			break;
		__u32 mid = lo + (hi - lo) / 2;
		const __u8 *e = w_entry(env, t->entries_first + mid);
		if (!e)
			return 0;
		if (unwind_entry_offset(e) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo is the first entry above pc; the one before it rules (it may
	 * be on an earlier page: a function can span pages). */
	if (lo == 0)
		return 0;
	const __u8 *e = w_entry(env, t->entries_first + lo - 1);
	if (!e)
		return 0;
	__u32 rule = unwind_entry_rule(e);
	if (rule >= t->rule_count)
		return 0;
	return w_rule(env, t->rules_first + rule);
}

/* Caller found by frame pointer: [rbp] = caller's rbp, [rbp + 8] = return
 * address, CFA = rbp + 16.  An RBP of 0 marks the outermost frame (psABI). */
static WALK_INLINE int walk_fp_step(struct walk_env *env, struct walk_regs *st,
				    struct sample_record *rec, struct frame *f)
{
	if (!(st->valid & REG_BIT(UNWIND_X86_RBP)))
		return walk_stop(rec, WALK_NEED_REG);
	__u64 rbp = st->r[UNWIND_X86_RBP];
	if (rbp == 0)
		return walk_stop(rec, WALK_END);
	if (rbp + 16 <= st->r[UNWIND_X86_RSP])
		return walk_stop(rec, WALK_NO_PROGRESS);
	__u64 saved[2];
	if (w_read(env, saved, sizeof(saved), rbp) < 0)
		return walk_stop(rec, WALK_READ);
	f->via_fp = 1;
	w_count(env, CNT_FP_STEPS);
	if (saved[1] == 0)
		return walk_stop(rec, WALK_END);
	st->r[UNWIND_X86_RSP] = rbp + 16;
	st->r[UNWIND_X86_RBP] = saved[0];
	st->r[UNWIND_X86_RIP] = saved[1];
	st->valid = REG_BIT(UNWIND_X86_RSP) | REG_BIT(UNWIND_X86_RBP) | REG_BIT(UNWIND_X86_RIP);
	st->is_return = 1;
	return 0;
}

/* A sigreturn trampoline: the interrupted frame's registers are all in the
 * kernel's ucontext at RSP + 40 (struct sigcontext_64 order below). */
static WALK_INLINE int walk_signal_step(struct walk_env *env, struct walk_regs *st,
					struct sample_record *rec, struct frame *f)
{
	/* The trampoline's address is where sigreturn begins, not after a
	 * call: like libdwfl, report it as an activation (no -1). */
	f->kind = FRAME_LEAF;
	/* sigcontext_64: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip */
	__u64 gregs[SIGCONTEXT_NREGS];
	if (w_read(env, gregs, sizeof(gregs), st->r[UNWIND_X86_RSP] + SIGFRAME_MCONTEXT_OFFSET) < 0)
		return walk_stop(rec, WALK_READ);
	for (int i = 0; i < 8; i++)
		st->r[8 + i] = gregs[i];
	st->r[UNWIND_X86_RDI] = gregs[8];
	st->r[UNWIND_X86_RSI] = gregs[9];
	st->r[UNWIND_X86_RBP] = gregs[10];
	st->r[UNWIND_X86_RBX] = gregs[11];
	st->r[UNWIND_X86_RDX] = gregs[12];
	st->r[UNWIND_X86_RAX] = gregs[13];
	st->r[UNWIND_X86_RCX] = gregs[14];
	st->r[UNWIND_X86_RSP] = gregs[15];
	st->r[UNWIND_X86_RIP] = gregs[16];
	st->valid = (1ull << UNWIND_X86_NREGS) - 1;
	/* The interrupted PC is where execution resumes, not a return
	 * address: look it up as is, and its leaf-only registers are known. */
	st->is_return = 0;
	w_count(env, CNT_SIGNAL_FRAMES);
	if (gregs[16] == 0)
		return walk_stop(rec, WALK_END);
	return 0;
}

/* Value of a register at a location rule; returns 0, or a walk_reason. */
static WALK_INLINE int walk_loc(struct walk_env *env, const struct walk_regs *st, __u8 type,
				__s32 arg, __u64 cfa, __u64 *out)
{
	if (type == UNWIND_LOC_AT_CFA) {
		if (w_read(env, out, sizeof(*out), cfa + (__s64)arg) < 0)
			return WALK_READ;
		return 0;
	}
	if (type == UNWIND_LOC_IN_REG) {
		if (arg < 0 || arg >= SAMPLER_REGS || !(st->valid & REG_BIT(arg)))
			return WALK_NEED_REG;
		*out = st->r[arg & 31];
		return 0;
	}
	return WALK_UNSUPPORTED;
}

#include "bpf/walker_arm64.c"

/* Unwind one frame.  mode is an enum walk_mode; max_frames <= SAMPLER_MAX_FRAMES. */
static WALK_INLINE int walk_step(struct walk_env *env, struct walk_regs *st,
				 struct sample_record *rec, __u32 max_frames, __u8 mode)
{
	__u32 n = rec->user_frames;
	if (n >= max_frames || n >= SAMPLER_MAX_FRAMES)
		return walk_stop(rec, WALK_MAX_FRAMES);
	__u64 pc = st->r[W_A64(st) ? UNWIND_A64_PC : UNWIND_X86_RIP];
	/* A return address points after the call, maybe past the end of the
	 * caller (noreturn calls): the call itself is at pc - 1. */
	__u64 lookup_pc = st->is_return ? pc - 1 : pc;
	struct frame *f = &rec->frames[n & (SAMPLER_MAX_FRAMES - 1)];
	f->kind = st->is_return ? FRAME_RETURN : FRAME_LEAF;
	f->via_fp = 0;
	f->pad = 0;
	rec->user_frames = n + 1;
	w_count(env, CNT_FRAMES);

	/* Consecutive frames are usually in the same object: one LPM lookup
	 * per object change, not per frame. */
	if (!(lookup_pc >= st->last.start && lookup_pc < st->last.end)) {
		const struct mapping_value *m = w_mapping(env, lookup_pc);
		if (!m) {
			f->addr = pc;
			f->object_id = OBJECT_NONE;
			if (W_A64(st))
				return a64_no_cfi(env, st, rec, f, mode, WALK_NO_MAPPING);
			if (mode == MODE_FP)
				return walk_fp_step(env, st, rec, f);
			return walk_stop(rec, WALK_NO_MAPPING);
		}
		st->last.bias = m->bias;
		st->last.start = m->start;
		st->last.end = m->end;
		st->last.object_id = m->object_id;
		st->last.flags = m->flags;
	}
	__u64 bias = st->last.bias;
	__u32 object_id = st->last.object_id;
	__u32 mflags = st->last.flags;
	f->addr = pc - bias;
	f->object_id = object_id;
	if (W_A64(st) && (mode == MODE_FP || (mflags & MAPPING_F_FP_ONLY)))
		return a64_no_cfi(env, st, rec, f, MODE_FP, WALK_NO_ROW);
	if (mode == MODE_FP || (mflags & MAPPING_F_FP_ONLY))
		return walk_fp_step(env, st, rec, f);

	const struct table_info *t = w_table(env, object_id);
	if (!t)
		return W_A64(st) ? a64_no_cfi(env, st, rec, f, mode, WALK_NO_TABLE)
				 : walk_stop(rec, WALK_NO_TABLE);
	const struct unwind_rule *r = walk_lookup(env, t, lookup_pc - bias);
	if (!r)
		return W_A64(st) ? a64_no_cfi(env, st, rec, f, mode, WALK_NO_ROW)
				 : walk_stop(rec, WALK_NO_ROW);
	if (W_A64(st))
		return a64_rule_step(env, st, rec, f, r, mode);
	__u8 cfa_type = r->cfa_type, cfa_reg = r->cfa_reg;
	__u8 rbp_type = r->rbp_type, ra_type = r->ra_type;
	__s32 cfa_offset = r->cfa_offset, rbp_arg = r->rbp_arg, ra_arg = r->ra_arg;
	__s8 cfa_aux = r->cfa_aux;

	__u64 cfa;
	switch (cfa_type) {
	case UNWIND_CFA_END:
		return walk_stop(rec, WALK_NO_ROW);
	case UNWIND_CFA_SIGNAL:
		return walk_signal_step(env, st, rec, f);
	case UNWIND_CFA_REG:
	case UNWIND_CFA_DEREF:
		if (cfa_reg >= SAMPLER_REGS || !(st->valid & REG_BIT(cfa_reg)))
			return walk_stop(rec, WALK_NEED_REG);
		cfa = st->r[cfa_reg & 31] + (__s64)cfa_offset;
		if (cfa_type == UNWIND_CFA_DEREF) {
			if (w_read(env, &cfa, sizeof(cfa), cfa) < 0)
				return walk_stop(rec, WALK_READ);
			cfa += (__s64)cfa_aux;
		}
		break;
	case UNWIND_CFA_PLT:
		cfa = st->r[UNWIND_X86_RSP] + (__s64)cfa_offset +
		      ((__s64)(pc & 15) >= (__s64)cfa_aux ? 8 : 0);
		break;
	default:
		return walk_stop(rec, WALK_UNSUPPORTED);
	}

	__u64 ra = 0;
	if (ra_type == UNWIND_LOC_UNDEFINED)
		return walk_stop(rec, WALK_END);
	__u64 rbp = st->r[UNWIND_X86_RBP];
	int rbp_known = (st->valid & REG_BIT(UNWIND_X86_RBP)) != 0;
	/* The common frame: RBP saved just below the return address.  One
	 * 16-byte read instead of two. */
	__u64 pair[2];
	if (ra_type == UNWIND_LOC_AT_CFA && rbp_type == UNWIND_LOC_AT_CFA &&
	    rbp_arg == ra_arg - 8 && w_read(env, pair, sizeof(pair), cfa + (__s64)rbp_arg) == 0) {
		rbp = pair[0];
		ra = pair[1];
		rbp_known = 1;
		goto have_caller;
	}
	int why = walk_loc(env, st, ra_type, ra_arg, cfa, &ra);
	if (why)
		return walk_stop(rec, why);

	if (rbp_type == UNWIND_LOC_UNDEFINED) {
		rbp_known = 0;
	} else if (rbp_type != UNWIND_LOC_SAME) {
		/* A slot we cannot read only makes RBP unknown: epilogues keep
		 * the "saved at CFA-k" rule after the pop, so the slot can lie
		 * below RSP, outside a copied stack.  The walk needs RBP only
		 * if a later rule does. */
		rbp_known = walk_loc(env, st, rbp_type, rbp_arg, cfa, &rbp) == 0;
	}

have_caller:
	if (cfa <= st->r[UNWIND_X86_RSP])
		return walk_stop(rec, WALK_NO_PROGRESS);
	if (ra == 0)
		return walk_stop(rec, WALK_END);
	st->r[UNWIND_X86_RSP] = cfa;
	st->r[UNWIND_X86_RBP] = rbp;
	st->r[UNWIND_X86_RIP] = ra;
	st->valid = REG_BIT(UNWIND_X86_RSP) | REG_BIT(UNWIND_X86_RIP) |
		    (rbp_known ? REG_BIT(UNWIND_X86_RBP) : 0);
	st->is_return = 1;
	return 0;
}
