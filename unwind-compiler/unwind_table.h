/* The compiled unwind table: one per ELF object, keyed by its build-ID.
 *
 * This header is the contract between the compiler (user space), the agent
 * (which copies the arrays into BPF maps as they are) and the BPF walker.
 * It is plain data: little-endian, no pointers, mmap-able.  See
 * docs/unwind-table-format.md for the prose version and the dump syntax.
 *
 * A table answers one question: "at this PC of this object, how do I find
 * the caller's registers?"  DWARF CFI answers it with a small program per
 * function; we run those programs ahead of time and keep only what an x86-64
 * stack walker needs: the CFA, the caller's RBP and the return address.
 *
 *   struct unwind_table_header      (136 bytes)
 *   struct unwind_rule  rules[]     (12 bytes each, deduplicated per object)
 *   __u32               pages[]     (page_count + 1 entries)
 *   __u8                entries[]   (3 bytes each, UNWIND_ENTRY_SIZE)
 *
 * Entries are sorted by address.  Each says "from this address on, rule R
 * applies" and stays in force until the next entry.  Addresses are split in
 * 4 KiB pages starting at header.base: an entry stores only its offset inside
 * its page (12 bits) next to its rule index (12 bits), and pages[p] is the
 * index of the first entry at or after page p, so the entries of page p are
 * [pages[p], pages[p + 1]).
 *
 * Lookup of a file address pc (see unwind_table_lookup() for the C version):
 *   1. page = (pc - base) >> 12; pc outside [base, base + page_count * 4096)
 *      has no row.
 *   2. binary-search entries [pages[page], pages[page + 1]) for the last one
 *      whose offset <= (pc & 0xfff): at most 12 steps (4096 offsets/page).
 *   3. none there: the answer is entry pages[page] - 1, the last entry of an
 *      earlier page (a function can span pages); none at all: no row.
 *   4. the entry's rule tells how to unwind; UNWIND_CFA_END means "no CFI here".
 * Return addresses are looked up as pc - 1 (docs/architecture.md, "Addresses"): the walker's job.
 */
#ifndef UNWIND_TABLE_H
#define UNWIND_TABLE_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define UNWIND_TABLE_MAGIC   0x54574e55u /* "UNWT" read as a little-endian u32 */
#define UNWIND_TABLE_VERSION 1

#define UNWIND_PAGE_SHIFT    12
#define UNWIND_PAGE_SIZE     (1u << UNWIND_PAGE_SHIFT)
#define UNWIND_OFFSET_MASK   (UNWIND_PAGE_SIZE - 1)
#define UNWIND_ENTRY_SIZE    3
/* 12 bits of rule index in an entry. */
#define UNWIND_MAX_RULES     4096
/* Binary-search steps that always suffice inside one page: log2(4096) + 1. */
#define UNWIND_MAX_SEARCH_STEPS 13

/* ELF e_machine values, so aarch64 can follow x86-64 in the same format. */
#define UNWIND_ARCH_X86_64   62
#define UNWIND_ARCH_AARCH64  183

/* DWARF register numbers of x86-64 (System V psABI, figure 3.36). */
enum unwind_x86_reg {
	UNWIND_X86_RAX = 0, UNWIND_X86_RDX = 1, UNWIND_X86_RCX = 2, UNWIND_X86_RBX = 3,
	UNWIND_X86_RSI = 4, UNWIND_X86_RDI = 5, UNWIND_X86_RBP = 6, UNWIND_X86_RSP = 7,
	UNWIND_X86_R8 = 8, UNWIND_X86_R15 = 15, UNWIND_X86_RIP = 16,
	UNWIND_X86_NREGS = 17,
};

/* DWARF register numbers of aarch64 ("DWARF for the Arm 64-bit
 * Architecture", register numbering).  On an aarch64 table the rule fields
 * named after x86-64 mean: rbp_* = X29 (the frame pointer), ra_* = X30 (the
 * link register, which holds the return address); cfa_reg is SP, X29 or
 * (leaf frames only) another X register.  Differences from x86-64:
 *   - ra_type SAME: the return address is still live in LR (leaf code, or
 *     before the prologue stored it);
 *   - AT_CFA arguments count 8-byte slots: X29 = [CFA + 8 * rbp_arg],
 *     X30 = [CFA + 8 * ra_arg] (GCC saves X29 up to 64 KiB below the CFA
 *     in python3.11, beyond an s16 of bytes);
 *   - ra_type FRAME_RECORD: X30 is saved right above X29, in the frame
 *     record {X29, X30} at CFA + 8 * rbp_arg (GCC puts it at the bottom of
 *     the frame: 8 KiB below the CFA in lua5.4, beyond an s8 of slots);
 *   - cfa_aux of a REG rule carries UNWIND_A64_F_RA_SIGNED: the return
 *     address was signed (DW_CFA_AARCH64_negate_ra_state, pointer
 *     authentication) and the walker must strip the PAC bits;
 *   - SIGNAL: the vDSO's __kernel_rt_sigreturn; SP points at the kernel's
 *     struct rt_sigframe, whose sigcontext holds every register;
 *   - DEREF and PLT are x86-64 only. */
enum unwind_a64_reg {
	UNWIND_A64_X0 = 0, UNWIND_A64_X29 = 29, UNWIND_A64_X30 = 30, UNWIND_A64_SP = 31,
	UNWIND_A64_PC = 32,
	UNWIND_A64_NREGS = 33,
};
#define UNWIND_A64_F_RA_SIGNED 0x1
/* struct rt_sigframe: siginfo (128 bytes), then struct ucontext, whose
 * uc_mcontext (struct sigcontext, 16-byte aligned) starts at 176:
 * fault_address, regs[31], sp, pc, pstate. */
#define UNWIND_A64_SIGFRAME_REGS (128 + 176 + 8)

/* How the CFA (the caller's stack pointer) is computed, or a command that
 * replaces the normal rule.  The CFA is DWARF's Canonical Frame Address: the
 * value RSP had just before the call instruction that entered this frame. */
enum unwind_cfa_type {
	/* No CFI covers this address: the end of a function with no other
	 * function after it, or a real gap.  Walkers stop (or try frame
	 * pointers, if they choose to). */
	UNWIND_CFA_END = 0,
	/* CFA = reg[cfa_reg] + cfa_offset.  DW_CFA_def_cfa; also the
	 * one-op expression DW_OP_breg<n> <off>.  cfa_reg is RSP or RBP in
	 * 99.9% of rows; RAX/RSI/R9/R11… appear in hand-written assembly and
	 * are only known in the interrupted (leaf) frame or below a signal
	 * frame, which the walker must check. */
	UNWIND_CFA_REG = 1,
	/* CFA = *(reg[cfa_reg] + cfa_offset) + cfa_aux.  GCC's stack
	 * realignment (DW_OP_breg6 -8; DW_OP_deref) and similar. */
	UNWIND_CFA_DEREF = 2,
	/* The lazy-binding PLT expression of GCC/ld:
	 * CFA = RSP + cfa_offset + ((RIP & 15) >= cfa_aux ? 8 : 0)
	 * cfa_aux is 11 for .plt entries, 10 for some variants. */
	UNWIND_CFA_PLT = 3,
	/* A sigreturn trampoline (CIE augmentation "S", e.g. __restore_rt):
	 * RSP points at a struct ucontext; every register of the interrupted
	 * frame is in uc_mcontext (at RSP + 40 on x86-64). */
	UNWIND_CFA_SIGNAL = 4,
	/* CFI exists but cannot be expressed (DWARF expression, caller RSP
	 * not equal to the CFA, …).  Walkers stop and say why; cfa_reg holds
	 * an enum unwind_unsupported_reason.  Never a silently wrong row. */
	UNWIND_CFA_UNSUPPORTED = 5,
};

/* Where a caller's register value is (used for RBP and the return address). */
enum unwind_loc_type {
	UNWIND_LOC_SAME = 0,      /* unchanged: the caller's value is the current one */
	UNWIND_LOC_AT_CFA = 1,    /* saved in memory at CFA + arg */
	UNWIND_LOC_IN_REG = 2,    /* held in register number arg (vfork keeps RA in RDI) */
	UNWIND_LOC_UNDEFINED = 3, /* no value; for the return address: outermost frame */
	UNWIND_LOC_FRAME_RECORD = 4, /* aarch64 X30 only: in the slot above X29's */
};

enum unwind_unsupported_reason {
	UNWIND_UNSUP_CFA_EXPR = 1,   /* CFA is a DWARF expression we do not model */
	UNWIND_UNSUP_RBP_RULE = 2,   /* RBP rule is an expression or val_offset */
	UNWIND_UNSUP_RA_RULE = 3,    /* return-address rule not expressible */
	UNWIND_UNSUP_RSP_RULE = 4,   /* caller's RSP is not the CFA */
	UNWIND_UNSUP_RANGE = 5,      /* an offset that does not fit its field */
	UNWIND_UNSUP_SIGNAL = 6,     /* signal frame whose CFI disagrees with the kernel's layout */
	UNWIND_UNSUP_OVERLAP = 7,    /* the rest of an FDE that another FDE overlaps */
};

/* One deduplicated unwinding rule.  12 bytes; a few hundred per object.
 * A value that does not fit its field makes the row UNSUPPORTED (reason
 * UNWIND_UNSUP_RANGE): nothing is ever truncated. */
struct unwind_rule {
	__u8 cfa_type;    /* enum unwind_cfa_type */
	__u8 cfa_reg;     /* DWARF register the CFA is based on; UNSUPPORTED: the reason */
	__u8 rbp_type;    /* enum unwind_loc_type: where the caller's RBP is */
	__u8 ra_type;     /* enum unwind_loc_type: where the return address is */
	__s32 cfa_offset; /* see enum unwind_cfa_type; 32 bits: frames over 32 KiB exist */
	__s16 rbp_arg;    /* AT_CFA: offset from the CFA; IN_REG: register number */
	__s8 ra_arg;      /* AT_CFA: offset from the CFA (-8 on x86-64); IN_REG: register */
	__s8 cfa_aux;     /* DEREF: added after the load (0..127); PLT: the RIP threshold */
};

struct unwind_table_header {
	__u32 magic;          /* UNWIND_TABLE_MAGIC */
	__u16 version;        /* UNWIND_TABLE_VERSION */
	__u16 arch;           /* ELF e_machine: UNWIND_ARCH_* */
	__u32 header_size;    /* sizeof(struct unwind_table_header) */
	__u32 flags;          /* UNWIND_TABLE_F_* */
	__u64 base;           /* file address of page 0 (4 KiB aligned) */
	__u32 page_count;     /* pages[] has page_count + 1 entries */
	__u32 entry_count;
	__u32 rule_count;
	__u32 rules_offset;   /* byte offsets from the start of the header */
	__u32 pages_offset;
	__u32 entries_offset;
	__u32 total_size;     /* bytes of the whole table */
	__u32 cfi_rows;       /* rows of the DWARF CFI this was compiled from */
	__u32 fde_count;
	__u32 unsupported_rows; /* CFI rows that became UNWIND_CFA_UNSUPPORTED */
	__u8 build_id_len;    /* 0: the object had no build-ID */
	__u8 reserved[7];
	__u8 build_id[64];
};

/* Flags. */
#define UNWIND_TABLE_F_EH_FRAME    0x1 /* rows from .eh_frame */
#define UNWIND_TABLE_F_DEBUG_FRAME 0x2 /* rows from .debug_frame */
#define UNWIND_TABLE_F_GOPCLNTAB   0x4 /* rows from Go's .gopclntab SP deltas */

/* Sizes are part of the format: BPF and user space must agree. */
_Static_assert(sizeof(struct unwind_rule) == 12, "unwind_rule is 12 bytes");
_Static_assert(sizeof(struct unwind_table_header) == 136, "header is 136 bytes");

/* Decode entry i of an entries array (3 bytes, little-endian). */
static inline __u32 unwind_entry_offset(const __u8 *e)
{
	return (__u32)e[0] | ((__u32)(e[1] & 0x0f) << 8);
}
static inline __u32 unwind_entry_rule(const __u8 *e)
{
	return ((__u32)e[1] >> 4) | ((__u32)e[2] << 4);
}

#endif
