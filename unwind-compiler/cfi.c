/* DWARF CFI parser and interpreter (.eh_frame and .debug_frame).
 *
 * Our own, rather than libdw's: we need every row of every FDE, in one pass,
 * in a few milliseconds for libc; libdw answers one PC at a time.  libdw is
 * the oracle instead (see verify.c). */
#include "unwind-compiler/cfi.h"

#include <dwarf.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* DW_CFA_remember_state nesting we accept; real code uses 1 or 2. */
#define MAX_STATE_DEPTH 32

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint8_t rd_u8(struct rd *r)
{
	if (r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

static uint64_t rd_fixed(struct rd *r, unsigned n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		r->p = r->end;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	for (;;) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		uint8_t b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		else if (b & 0x7f)
			r->bad = true; /* does not fit 64 bits */
		shift += 7;
		if (!(b & 0x80))
			return v;
	}
}

static int64_t rd_sleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~0ull << shift;
	return (int64_t)v;
}

/* Read an encoded pointer (DW_EH_PE_*).  field_addr is the address the
 * field itself would have when loaded (for pcrel). */
static uint64_t rd_pointer(struct rd *r, uint8_t enc, uint8_t addr_size, uint64_t field_addr,
			   bool *unsupported)
{
	uint64_t v;
	if (enc == DW_EH_PE_omit)
		return 0;
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr: v = rd_fixed(r, addr_size); break;
	case DW_EH_PE_uleb128: v = rd_uleb(r); break;
	case DW_EH_PE_udata2: v = rd_fixed(r, 2); break;
	case DW_EH_PE_udata4: v = rd_fixed(r, 4); break;
	case DW_EH_PE_udata8: v = rd_fixed(r, 8); break;
	case DW_EH_PE_sleb128: v = (uint64_t)rd_sleb(r); break;
	case DW_EH_PE_sdata2: v = (uint64_t)(int64_t)(int16_t)rd_fixed(r, 2); break;
	case DW_EH_PE_sdata4: v = (uint64_t)(int64_t)(int32_t)rd_fixed(r, 4); break;
	case DW_EH_PE_sdata8: v = rd_fixed(r, 8); break;
	default:
		*unsupported = true;
		return 0;
	}
	switch (enc & 0x70) {
	case DW_EH_PE_absptr: break;
	case DW_EH_PE_pcrel: v += field_addr; break;
	default:
		/* textrel/datarel/funcrel/aligned never appear in FDE
		 * pointers of x86-64 or aarch64 objects. */
		*unsupported = true;
		return 0;
	}
	if (addr_size == 4)
		v &= 0xffffffffu;
	return v;
}

/* Size of the fixed part of an encoded pointer, for the FDE's pc_range,
 * which uses the same format without the application bits. */
static uint64_t rd_range(struct rd *r, uint8_t enc, uint8_t addr_size, bool *unsupported)
{
	return rd_pointer(r, (uint8_t)(enc & 0x0f), addr_size, 0, unsupported);
}

static int parse_cie(const struct cfi_section *sec, struct rd *r, uint64_t offset, struct cie *c,
		     struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->offset = offset;
	c->addr_size = sec->addr_size;
	c->aarch64 = sec->machine == EM_AARCH64;
	c->fp_reg = c->aarch64 ? 29 : 6;
	c->sp_reg = c->aarch64 ? 31 : 7;
	c->fde_encoding = DW_EH_PE_absptr;
	c->lsda_encoding = DW_EH_PE_omit;
	c->version = rd_u8(r);
	if (c->version != 1 && c->version != 3 && c->version != 4)
		return err_set(e, EINVAL, "CIE at 0x%llx: unsupported version %u",
			       (unsigned long long)offset, c->version);
	const uint8_t *aug = r->p;
	while (r->p < r->end && *r->p)
		r->p++;
	if (r->p >= r->end)
		return err_set(e, EINVAL, "CIE at 0x%llx: unterminated augmentation string",
			       (unsigned long long)offset);
	size_t aug_len = (size_t)(r->p - aug);
	r->p++;
	if (aug_len >= 2 && aug[0] == 'e' && aug[1] == 'h')
		return err_set(e, ENOTSUP, "CIE at 0x%llx: obsolete \"eh\" augmentation",
			       (unsigned long long)offset);
	if (c->version == 4) {
		c->addr_size = rd_u8(r);
		uint8_t seg_size = rd_u8(r);
		if ((c->addr_size != 4 && c->addr_size != 8) || seg_size != 0)
			return err_set(e, EINVAL, "CIE at 0x%llx: address size %u, segment size %u",
				       (unsigned long long)offset, c->addr_size, seg_size);
	}
	c->code_align = rd_uleb(r);
	c->data_align = rd_sleb(r);
	c->ra_reg = c->version == 1 ? rd_u8(r) : (uint32_t)rd_uleb(r);
	if (aug_len && aug[0] == 'z') {
		c->has_z = true;
		uint64_t len = rd_uleb(r);
		if (r->bad || len > (uint64_t)(r->end - r->p))
			return err_set(e, EINVAL, "CIE at 0x%llx: augmentation data overruns the CIE",
				       (unsigned long long)offset);
		struct rd a = {r->p, r->p + len, false};
		r->p += len;
		for (size_t i = 1; i < aug_len; i++) {
			bool unsup = false;
			switch (aug[i]) {
			case 'R': c->fde_encoding = rd_u8(&a); break;
			case 'L': c->lsda_encoding = rd_u8(&a); break;
			case 'P': {
				uint8_t penc = rd_u8(&a);
				uint64_t field = sec->addr + (uint64_t)(a.p - sec->data);
				rd_pointer(&a, (uint8_t)(penc & 0x7f), c->addr_size, field, &unsup);
				/* An unusual personality encoding does not matter
				 * to unwinding; its length does, and we know it
				 * only for the encodings rd_pointer reads. */
				if (unsup && (penc & 0x0f) > DW_EH_PE_sdata8)
					return err_set(e, ENOTSUP,
						       "CIE at 0x%llx: personality encoding 0x%x",
						       (unsigned long long)offset, penc);
				break;
			}
			case 'S': c->signal = true; break;
			case 'B': case 'G': break; /* aarch64 BTI / MTE tags */
			default:
				/* Unknown letters: the rest of the data is skipped
				 * as a whole thanks to 'z'. */
				i = aug_len;
				break;
			}
		}
		if (a.bad)
			return err_set(e, EINVAL, "CIE at 0x%llx: truncated augmentation data",
				       (unsigned long long)offset);
	} else if (aug_len) {
		return err_set(e, ENOTSUP, "CIE at 0x%llx: unknown augmentation \"%.*s\"",
			       (unsigned long long)offset, (int)aug_len, (const char *)aug);
	}
	if (r->bad)
		return err_set(e, EINVAL, "CIE at 0x%llx: truncated", (unsigned long long)offset);
	if (c->code_align == 0)
		return err_set(e, EINVAL, "CIE at 0x%llx: code alignment factor 0",
			       (unsigned long long)offset);
	if (c->ra_reg >= 128)
		return err_set(e, EINVAL, "CIE at 0x%llx: return address register %u",
			       (unsigned long long)offset, c->ra_reg);
	c->insns = r->p;
	c->insns_len = (size_t)(r->end - r->p);
	return 0;
}

/* CIE lookup by section offset: CIEs are few (tens), FDEs many (thousands),
 * and FDEs usually refer to the CIE just before them. */
struct cie_index {
	uint64_t *offsets; /* parallel to the cie vector, by position */
	size_t n, cap;
	size_t last;
};

static int find_or_parse_cie(const struct cfi_section *sec, uint64_t cie_off, struct vec *cies,
			     size_t first_cie, struct cie_index *ix, uint32_t *out, struct err *e)
{
	if (ix->n && ix->offsets[ix->last] == cie_off) {
		*out = (uint32_t)(first_cie + ix->last);
		return 0;
	}
	for (size_t i = 0; i < ix->n; i++) {
		if (ix->offsets[i] == cie_off) {
			ix->last = i;
			*out = (uint32_t)(first_cie + i);
			return 0;
		}
	}
	/* Not seen yet (a CIE after its FDE): parse it in place. */
	if (cie_off + 4 > sec->size)
		return err_set(e, EINVAL, "CIE pointer 0x%llx lies outside the section",
			       (unsigned long long)cie_off);
	struct rd r = {sec->data + cie_off, sec->data + sec->size, false};
	uint64_t len = rd_fixed(&r, 4);
	unsigned id_size = 4;
	if (len == 0xffffffffu) {
		len = rd_fixed(&r, 8);
		id_size = 8;
	}
	if (r.bad || len < id_size || len > (uint64_t)(r.end - r.p))
		return err_set(e, EINVAL, "CIE at 0x%llx: bad length", (unsigned long long)cie_off);
	r.end = r.p + len;
	uint64_t id = rd_fixed(&r, id_size);
	uint64_t want = sec->is_eh ? 0 : (id_size == 4 ? 0xffffffffu : ~0ull);
	if (id != want)
		return err_set(e, EINVAL, "FDE points at 0x%llx, which is not a CIE",
			       (unsigned long long)cie_off);
	struct cie c;
	int rc = parse_cie(sec, &r, cie_off, &c, e);
	if (rc)
		return rc;
	struct cie *slot = vec_push(cies);
	if (!slot)
		return err_set(e, ENOMEM, "out of memory");
	*slot = c;
	if (ix->n == ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : 16;
		uint64_t *n = realloc(ix->offsets, ncap * sizeof(*n));
		if (!n)
			return err_set(e, ENOMEM, "out of memory");
		ix->offsets = n;
		ix->cap = ncap;
	}
	ix->offsets[ix->n] = cie_off;
	ix->last = ix->n++;
	*out = (uint32_t)(cies->len - 1);
	return 0;
}

int cfi_parse_section(const struct cfi_section *sec, struct vec *cies, struct vec *fdes,
		      struct err *e)
{
	size_t first_cie = cies->len;
	struct cie_index ix = {0};
	int rc = 0;
	size_t off = 0;
	const char *what = sec->is_eh ? ".eh_frame" : ".debug_frame";
	while (off + 4 <= sec->size) {
		struct rd r = {sec->data + off, sec->data + sec->size, false};
		uint64_t len = rd_fixed(&r, 4);
		unsigned id_size = 4;
		if (len == 0) {
			if (sec->is_eh)
				break; /* zero terminator */
			off += 4;
			continue;
		}
		if (len == 0xffffffffu) {
			len = rd_fixed(&r, 8);
			id_size = 8;
		}
		if (r.bad || len < id_size || len > (uint64_t)(r.end - r.p)) {
			rc = err_set(e, EINVAL, "%s: entry at 0x%zx has length %llu, past the end of the section",
				     what, off, (unsigned long long)len);
			break;
		}
		size_t next = (size_t)(r.p - sec->data) + (size_t)len;
		r.end = r.p + len;
		uint64_t id_pos = (uint64_t)(r.p - sec->data);
		uint64_t id = rd_fixed(&r, id_size);
		bool is_cie = sec->is_eh ? id == 0 : id == (id_size == 4 ? 0xffffffffu : ~0ull);
		if (is_cie) {
			bool known = false;
			for (size_t i = 0; i < ix.n; i++)
				known |= ix.offsets[i] == off;
			if (!known) {
				uint32_t idx;
				if ((rc = find_or_parse_cie(sec, off, cies, first_cie, &ix, &idx, e)))
					break;
			}
			off = next;
			continue;
		}
		uint64_t cie_off;
		if (sec->is_eh) {
			if (id > id_pos) {
				rc = err_set(e, EINVAL, "%s: FDE at 0x%zx points before the section", what, off);
				break;
			}
			cie_off = id_pos - id;
		} else {
			cie_off = id;
		}
		uint32_t ci;
		if ((rc = find_or_parse_cie(sec, cie_off, cies, first_cie, &ix, &ci, e))) {
			/* Give the FDE's position too. */
			break;
		}
		const struct cie *c = &VEC_AT(cies, struct cie, ci);
		bool unsup = false;
		uint64_t field = sec->addr + (uint64_t)(r.p - sec->data);
		uint8_t enc = sec->is_eh ? c->fde_encoding : DW_EH_PE_absptr;
		uint64_t start = rd_pointer(&r, enc, c->addr_size, field, &unsup);
		uint64_t range = rd_range(&r, enc, c->addr_size, &unsup);
		if (unsup) {
			rc = err_set(e, ENOTSUP, "%s: FDE at 0x%zx uses pointer encoding 0x%x", what, off, enc);
			break;
		}
		if (c->has_z) {
			uint64_t alen = rd_uleb(&r);
			if (r.bad || alen > (uint64_t)(r.end - r.p)) {
				rc = err_set(e, EINVAL, "%s: FDE at 0x%zx: augmentation data overruns it", what, off);
				break;
			}
			r.p += alen;
		}
		if (r.bad) {
			rc = err_set(e, EINVAL, "%s: FDE at 0x%zx is truncated", what, off);
			break;
		}
		off = next;
		/* Discarded code: address 0 or a tombstone, or an empty range. */
		uint64_t limit = c->addr_size == 4 ? 0xffffffffull : ~0ull;
		if (start == 0 || range == 0 || start >= limit - 1 || range > limit - start)
			continue;
		struct fde *f = vec_push(fdes);
		if (!f) {
			rc = err_set(e, ENOMEM, "out of memory");
			break;
		}
		f->start = start;
		f->end = start + range;
		f->cie_index = ci;
		f->insns = r.p;
		f->insns_len = (size_t)(r.end - r.p);
		f->from_debug_frame = !sec->is_eh;
	}
	free(ix.offsets);
	return rc;
}

struct interp {
	const struct cie *cie;
	struct cfi_row_state st, initial;
	struct cfi_row_state stack[MAX_STATE_DEPTH];
	unsigned depth;
	uint64_t pc, end;
	cfi_row_fn fn;
	void *arg;
	bool done;
};

static struct cfi_rule *tracked(struct interp *in, uint64_t reg)
{
	if (reg == in->cie->ra_reg)
		return &in->st.ra;
	if (reg == in->cie->fp_reg)
		return &in->st.rbp;
	if (reg == in->cie->sp_reg)
		return &in->st.rsp;
	return NULL;
}

static const struct cfi_rule *initial_rule(struct interp *in, uint64_t reg)
{
	if (reg == in->cie->ra_reg)
		return &in->initial.ra;
	if (reg == in->cie->fp_reg)
		return &in->initial.rbp;
	return &in->initial.rsp;
}

/* Close the current row at new_pc. */
static int advance(struct interp *in, uint64_t new_pc, struct err *e)
{
	if (new_pc < in->pc)
		return err_set(e, EINVAL, "FDE 0x%llx: location moves backwards",
			       (unsigned long long)in->pc);
	if (new_pc == in->pc)
		return 0;
	uint64_t row_end = new_pc < in->end ? new_pc : in->end;
	int rc = in->fn(in->arg, in->pc, row_end, &in->st);
	if (rc)
		return rc;
	in->pc = new_pc;
	if (new_pc >= in->end)
		in->done = true;
	return 0;
}

static int run(struct interp *in, const uint8_t *p, size_t len, bool in_cie, struct err *e)
{
	struct rd r = {p, p + len, false};
	const struct cie *c = in->cie;
	while (r.p < r.end && !r.bad && !in->done) {
		uint8_t op = rd_u8(&r);
		uint8_t low = op & 0x3f;
		uint64_t reg, delta;
		struct cfi_rule *t;
		int rc;
		switch (op & 0xc0) {
		case DW_CFA_advance_loc:
			if (in_cie)
				goto bad_in_cie;
			if ((rc = advance(in, in->pc + low * c->code_align, e)))
				return rc;
			continue;
		case DW_CFA_offset:
			if ((t = tracked(in, low)))
				*t = (struct cfi_rule){.type = CFI_RULE_OFFSET,
						       .off = (int64_t)rd_uleb(&r) * c->data_align};
			else
				rd_uleb(&r);
			continue;
		case DW_CFA_restore:
			if (in_cie)
				goto bad_in_cie;
			if ((t = tracked(in, low)))
				*t = *initial_rule(in, low);
			continue;
		}
		switch (op) {
		case DW_CFA_nop:
			break;
		case DW_CFA_set_loc: {
			if (in_cie)
				goto bad_in_cie;
			bool unsup = false;
			uint64_t loc = rd_pointer(&r, (uint8_t)(c->has_z ? c->fde_encoding & 0x0f
								   : DW_EH_PE_absptr),
						  c->addr_size, 0, &unsup);
			if (unsup || (c->has_z && (c->fde_encoding & 0x70)))
				return err_set(e, ENOTSUP, "DW_CFA_set_loc with a relative encoding");
			if ((rc = advance(in, loc, e)))
				return rc;
			break;
		}
		case DW_CFA_advance_loc1:
		case DW_CFA_advance_loc2:
		case DW_CFA_advance_loc4:
			if (in_cie)
				goto bad_in_cie;
			delta = rd_fixed(&r, op == DW_CFA_advance_loc1 ? 1 : op == DW_CFA_advance_loc2 ? 2 : 4);
			if ((rc = advance(in, in->pc + delta * c->code_align, e)))
				return rc;
			break;
		case DW_CFA_offset_extended:
		case DW_CFA_offset_extended_sf:
		case DW_CFA_GNU_negative_offset_extended: {
			reg = rd_uleb(&r);
			int64_t off = op == DW_CFA_offset_extended ? (int64_t)rd_uleb(&r) * c->data_align
				      : op == DW_CFA_offset_extended_sf ? rd_sleb(&r) * c->data_align
				      : -(int64_t)rd_uleb(&r) * c->data_align;
			if ((t = tracked(in, reg)))
				*t = (struct cfi_rule){.type = CFI_RULE_OFFSET, .off = off};
			break;
		}
		case DW_CFA_val_offset:
		case DW_CFA_val_offset_sf: {
			reg = rd_uleb(&r);
			int64_t off = op == DW_CFA_val_offset ? (int64_t)rd_uleb(&r) * c->data_align
							      : rd_sleb(&r) * c->data_align;
			if ((t = tracked(in, reg)))
				*t = (struct cfi_rule){.type = CFI_RULE_VAL_OFFSET, .off = off};
			break;
		}
		case DW_CFA_restore_extended:
			if (in_cie)
				goto bad_in_cie;
			reg = rd_uleb(&r);
			if ((t = tracked(in, reg)))
				*t = *initial_rule(in, reg);
			break;
		case DW_CFA_undefined:
		case DW_CFA_same_value:
			reg = rd_uleb(&r);
			if ((t = tracked(in, reg)))
				*t = (struct cfi_rule){.type = op == DW_CFA_undefined ? CFI_RULE_UNDEF
										   : CFI_RULE_SAME};
			break;
		case DW_CFA_register: {
			reg = rd_uleb(&r);
			uint64_t reg2 = rd_uleb(&r);
			if ((t = tracked(in, reg)))
				*t = (struct cfi_rule){.type = CFI_RULE_REGISTER, .reg = (uint32_t)reg2};
			break;
		}
		case DW_CFA_remember_state:
			if (in->depth == MAX_STATE_DEPTH)
				return err_set(e, EINVAL, "DW_CFA_remember_state nested deeper than %d",
					       MAX_STATE_DEPTH);
			in->stack[in->depth++] = in->st;
			break;
		case DW_CFA_restore_state: {
			if (in->depth == 0)
				return err_set(e, EINVAL, "DW_CFA_restore_state without remember_state");
			/* The CFA rule is part of the saved row (DWARF 5
			 * §6.4.2.4), as GCC and LLVM both assume. */
			in->st = in->stack[--in->depth];
			break;
		}
		case DW_CFA_def_cfa:
		case DW_CFA_def_cfa_sf:
			reg = rd_uleb(&r);
			in->st.cfa = (struct cfi_cfa){
				.reg = (uint32_t)reg,
				.off = op == DW_CFA_def_cfa ? (int64_t)rd_uleb(&r)
							    : rd_sleb(&r) * c->data_align};
			break;
		case DW_CFA_def_cfa_register:
			reg = rd_uleb(&r);
			/* Only valid on a register+offset CFA.  LLVM turns an
			 * expression into reg+0 here, which gives wrong rows in
			 * libgcrypt; libdw refuses, and so do we. */
			if (in->st.cfa.is_expr)
				in->st.cfa = (struct cfi_cfa){.invalid = true};
			in->st.cfa.reg = (uint32_t)reg;
			break;
		case DW_CFA_def_cfa_offset:
		case DW_CFA_def_cfa_offset_sf: {
			int64_t off = op == DW_CFA_def_cfa_offset ? (int64_t)rd_uleb(&r)
								  : rd_sleb(&r) * c->data_align;
			if (in->st.cfa.is_expr)
				in->st.cfa = (struct cfi_cfa){.invalid = true};
			in->st.cfa.off = off;
			break;
		}
		case DW_CFA_def_cfa_expression: {
			uint64_t elen = rd_uleb(&r);
			if (r.bad || elen > (uint64_t)(r.end - r.p))
				return err_set(e, EINVAL, "CFA expression overruns the FDE");
			in->st.cfa = (struct cfi_cfa){.is_expr = true, .expr = r.p, .expr_len = elen};
			r.p += elen;
			break;
		}
		case DW_CFA_expression:
		case DW_CFA_val_expression: {
			reg = rd_uleb(&r);
			uint64_t elen = rd_uleb(&r);
			if (r.bad || elen > (uint64_t)(r.end - r.p))
				return err_set(e, EINVAL, "register expression overruns the FDE");
			if ((t = tracked(in, reg)))
				*t = (struct cfi_rule){.type = op == DW_CFA_expression ? CFI_RULE_EXPR
										     : CFI_RULE_VAL_EXPR,
						       .expr = r.p, .expr_len = elen};
			r.p += elen;
			break;
		}
		case DW_CFA_GNU_args_size:
			rd_uleb(&r);
			break;
		case DW_CFA_GNU_window_save:
			/* DW_CFA_AARCH64_negate_ra_state on aarch64 (same
			 * opcode): the return address is signed from here
			 * on, or no longer.  No meaning on x86-64. */
			if (c->aarch64)
				in->st.ra_signed = !in->st.ra_signed;
			break;
		default:
			return err_set(e, EINVAL, "unknown CFA opcode 0x%02x", op);
		}
	}
	if (r.bad)
		return err_set(e, EINVAL, "CFA program is truncated");
	return 0;
bad_in_cie:
	return err_set(e, EINVAL, "CIE at 0x%llx: location opcode in initial instructions",
		       (unsigned long long)c->offset);
}

int cfi_run_fde(const struct fde *fde, cfi_row_fn fn, void *arg, struct err *e)
{
	struct interp in;
	memset(&in.st, 0, sizeof(in.st));
	in.cie = fde->cie;
	in.depth = 0;
	in.pc = fde->start;
	in.end = fde->end;
	in.fn = fn;
	in.arg = arg;
	in.done = false;
	int rc = run(&in, fde->cie->insns, fde->cie->insns_len, true, e);
	if (rc)
		return rc;
	in.initial = in.st;
	in.depth = 0;
	rc = run(&in, fde->insns, fde->insns_len, false, e);
	if (rc)
		return rc;
	if (!in.done && in.pc < in.end)
		rc = fn(arg, in.pc, in.end, &in.st);
	return rc;
}
