/* DWARF call-frame information: parsing CIEs/FDEs and running their
 * programs.  Private to unwind-compiler/.
 *
 * Everything read from the section is bounds-checked; every loop consumes at
 * least one byte per step, so hostile input cannot hang the interpreter. */
#ifndef UNWIND_CFI_H
#define UNWIND_CFI_H

#include "common/common.h"

struct cfi_section {
	const uint8_t *data;
	size_t size;
	uint64_t addr;   /* sh_addr: base for pc-relative pointers */
	bool is_eh;      /* .eh_frame (vs .debug_frame) */
	uint8_t addr_size; /* 8 for ELFCLASS64 */
	uint16_t machine;  /* ELF e_machine: EM_X86_64 or EM_AARCH64 */
};

struct cie {
	uint64_t offset;       /* in its section */
	uint8_t version;
	uint8_t fde_encoding;  /* DW_EH_PE_* of FDE pointers ('R') */
	uint8_t lsda_encoding;
	uint8_t addr_size;
	bool has_z;            /* augmentation data present */
	bool signal;           /* 'S': FDEs describe signal trampolines */
	uint64_t code_align;
	int64_t data_align;
	uint32_t ra_reg;
	/* The registers the interpreter tracks besides ra_reg, by
	 * architecture: the frame pointer (RBP 6 / X29 29) and the stack
	 * pointer (RSP 7 / SP 31).  The row calls them rbp and rsp. */
	uint8_t fp_reg, sp_reg;
	bool aarch64;          /* DW_CFA 0x2d is AARCH64_negate_ra_state */
	const uint8_t *insns;
	size_t insns_len;
};

struct fde {
	uint64_t start, end;   /* [start, end) file addresses */
	const struct cie *cie; /* points into the cie array, valid after parsing */
	uint32_t cie_index;
	const uint8_t *insns;
	size_t insns_len;
	uint8_t from_debug_frame;
	/* Not CFI: 1 + the index of a Go function whose rows come from
	 * .gopclntab (go_rows.h); 0 for a real FDE. */
	uint32_t go_func;
};

/* Parse every CIE and FDE of a section, appending to the vectors
 * (struct cie, struct fde).  FDEs for discarded code (start 0, tombstones,
 * empty ranges) are dropped. */
int cfi_parse_section(const struct cfi_section *sec, struct vec *cies, struct vec *fdes,
		      struct err *e);

/* Register rules, as DWARF defines them (DWARF 5 §6.4.1). */
enum cfi_rule_type {
	CFI_RULE_UNSPEC = 0, /* never mentioned */
	CFI_RULE_UNDEF,
	CFI_RULE_SAME,
	CFI_RULE_OFFSET,     /* saved at CFA + off */
	CFI_RULE_VAL_OFFSET, /* value is CFA + off */
	CFI_RULE_REGISTER,   /* value is in register `reg` */
	CFI_RULE_EXPR,       /* saved at the address the expression computes */
	CFI_RULE_VAL_EXPR,
};

struct cfi_rule {
	uint8_t type;
	uint32_t reg;
	int64_t off;
	const uint8_t *expr;
	size_t expr_len;
};

struct cfi_cfa {
	/* def_cfa_register/def_cfa_offset applied to an expression CFA:
	 * invalid DWARF (5 §6.4.2.2), until the next def_cfa*. */
	bool invalid;
	bool is_expr;
	uint32_t reg;
	int64_t off;
	const uint8_t *expr;
	size_t expr_len;
};

/* The part of a CFI row a walker needs: the CFA, the frame pointer (RBP,
 * or X29 on aarch64), the stack pointer (RSP / SP) and the return address
 * (RIP / X30).  ra_signed: aarch64 pointer authentication, the
 * RA_SIGN_STATE pseudo-register that DW_CFA_AARCH64_negate_ra_state toggles
 * (part of the row, so remember/restore_state keep it too). */
struct cfi_row_state {
	struct cfi_cfa cfa;
	struct cfi_rule rbp, rsp, ra;
	bool ra_signed;
};

/* Called once per row with a non-empty range [pc, end). */
typedef int (*cfi_row_fn)(void *arg, uint64_t pc, uint64_t end, const struct cfi_row_state *st);

/* Run the CIE's initial instructions and the FDE's program; call fn for each
 * row inside [fde->start, fde->end). */
int cfi_run_fde(const struct fde *fde, cfi_row_fn fn, void *arg, struct err *e);

#endif
