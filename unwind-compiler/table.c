/* Reading a serialized table: validation, lookup, the text dump. */
#include "unwind-compiler/unwind_compiler.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const char *const x86_reg_names[UNWIND_X86_NREGS] = {
	"RAX", "RDX", "RCX", "RBX", "RSI", "RDI", "RBP", "RSP", "R8",
	"R9",  "R10", "R11", "R12", "R13", "R14", "R15", "RIP",
};

/* Architectural names, as llvm-dwarfdump prints them (it says WSP/W29/W30
 * for aarch64's SP/X29/X30; the dump uses the X names). */
static const char *reg_name(uint16_t arch, unsigned reg, char *tmp, size_t size)
{
	if (arch == UNWIND_ARCH_AARCH64) {
		if (reg == UNWIND_A64_SP)
			return "SP";
		if (reg <= UNWIND_A64_X30) {
			snprintf(tmp, size, "X%u", reg);
			return tmp;
		}
	} else if (reg < UNWIND_X86_NREGS) {
		return x86_reg_names[reg];
	}
	snprintf(tmp, size, "reg%u", reg);
	return tmp;
}

static bool rule_valid_a64(const struct unwind_rule *r)
{
	switch (r->cfa_type) {
	case UNWIND_CFA_END:
	case UNWIND_CFA_SIGNAL:
	case UNWIND_CFA_UNSUPPORTED:
		return true;
	case UNWIND_CFA_REG:
		break;
	default:
		return false; /* DEREF and PLT are x86-64 forms */
	}
	if (r->cfa_reg > UNWIND_A64_SP || (r->cfa_aux & ~UNWIND_A64_F_RA_SIGNED))
		return false;
	if (r->rbp_type > UNWIND_LOC_UNDEFINED || r->ra_type > UNWIND_LOC_FRAME_RECORD)
		return false;
	if (r->ra_type == UNWIND_LOC_FRAME_RECORD && r->rbp_type != UNWIND_LOC_AT_CFA)
		return false;
	if (r->rbp_type == UNWIND_LOC_IN_REG && (r->rbp_arg < 0 || r->rbp_arg > UNWIND_A64_X30))
		return false;
	if (r->ra_type == UNWIND_LOC_IN_REG && (r->ra_arg < 0 || r->ra_arg > UNWIND_A64_X30))
		return false;
	return true;
}

static bool rule_valid(uint16_t arch, const struct unwind_rule *r)
{
	if (arch == UNWIND_ARCH_AARCH64)
		return rule_valid_a64(r);
	switch (r->cfa_type) {
	case UNWIND_CFA_END:
	case UNWIND_CFA_SIGNAL:
	case UNWIND_CFA_UNSUPPORTED:
		return true;
	case UNWIND_CFA_REG:
	case UNWIND_CFA_DEREF:
	case UNWIND_CFA_PLT:
		break;
	default:
		return false;
	}
	if (r->cfa_reg >= UNWIND_X86_RIP)
		return false;
	if (r->rbp_type > UNWIND_LOC_UNDEFINED || r->ra_type > UNWIND_LOC_UNDEFINED)
		return false;
	if (r->rbp_type == UNWIND_LOC_IN_REG && (r->rbp_arg < 0 || r->rbp_arg >= UNWIND_X86_RIP))
		return false;
	if (r->ra_type == UNWIND_LOC_IN_REG && (r->ra_arg < 0 || r->ra_arg >= UNWIND_X86_RIP))
		return false;
	return true;
}

int unwind_table_open(struct unwind_view *v, const void *data, size_t size, struct err *e)
{
	memset(v, 0, sizeof(*v));
	const struct unwind_table_header *h = data;
	if (size < sizeof(*h) || ((uintptr_t)data & 7))
		return err_set(e, EINVAL, "unwind table: %zu bytes is too short (or misaligned)", size);
	if (h->magic != UNWIND_TABLE_MAGIC)
		return err_set(e, EINVAL, "unwind table: bad magic 0x%08x", h->magic);
	if (h->version != UNWIND_TABLE_VERSION)
		return err_set(e, EPROTO, "unwind table: format version %u, this build reads %u",
			       h->version, UNWIND_TABLE_VERSION);
	if (h->arch != UNWIND_ARCH_X86_64 && h->arch != UNWIND_ARCH_AARCH64)
		return err_set(e, ENOTSUP, "unwind table: architecture %u is not supported", h->arch);
	if (h->header_size != sizeof(*h) || h->total_size != size)
		return err_set(e, EINVAL, "unwind table: header says %u bytes, have %zu",
			       h->total_size, size);
	if (h->rule_count > UNWIND_MAX_RULES || h->page_count == 0 || h->entry_count == 0 ||
	    (h->base & UNWIND_OFFSET_MASK))
		return err_set(e, EINVAL, "unwind table: bad counts (%u rules, %u pages, %u entries)",
			       h->rule_count, h->page_count, h->entry_count);
	uint64_t rules_end = (uint64_t)h->rules_offset + (uint64_t)h->rule_count * sizeof(struct unwind_rule);
	uint64_t pages_end = (uint64_t)h->pages_offset + ((uint64_t)h->page_count + 1) * 4;
	uint64_t entries_end = (uint64_t)h->entries_offset + (uint64_t)h->entry_count * UNWIND_ENTRY_SIZE;
	if (h->rules_offset < sizeof(*h) || (h->rules_offset & 3) || (h->pages_offset & 3) ||
	    rules_end > size || pages_end > size || entries_end > size)
		return err_set(e, EINVAL, "unwind table: a section lies outside the table");
	if (h->base + ((uint64_t)h->page_count << UNWIND_PAGE_SHIFT) < h->base)
		return err_set(e, EINVAL, "unwind table: pages wrap around the address space");
	v->hdr = h;
	v->rules = (const struct unwind_rule *)((const uint8_t *)data + h->rules_offset);
	v->pages = (const uint32_t *)((const uint8_t *)data + h->pages_offset);
	v->entries = (const uint8_t *)data + h->entries_offset;
	for (uint32_t i = 0; i < h->rule_count; i++)
		if (!rule_valid(h->arch, &v->rules[i]))
			return err_set(e, EINVAL, "unwind table: rule %u is malformed", i);
	/* Pages are monotone, entries sorted inside each page, every rule
	 * index in range: what the lookup's binary search relies on. */
	if (v->pages[0] != 0 || v->pages[h->page_count] != h->entry_count)
		return err_set(e, EINVAL, "unwind table: page index does not cover the entries");
	for (uint32_t p = 0; p < h->page_count; p++) {
		uint32_t lo = v->pages[p], hi = v->pages[p + 1];
		if (lo > hi || hi > h->entry_count || hi - lo > UNWIND_PAGE_SIZE)
			return err_set(e, EINVAL, "unwind table: page %u has a bad entry range", p);
		for (uint32_t i = lo; i < hi; i++) {
			const uint8_t *en = v->entries + 3 * (size_t)i;
			if (unwind_entry_rule(en) >= h->rule_count)
				return err_set(e, EINVAL, "unwind table: entry %u names rule %u of %u", i,
					       unwind_entry_rule(en), h->rule_count);
			if (i > lo && unwind_entry_offset(en) <= unwind_entry_offset(en - 3))
				return err_set(e, EINVAL, "unwind table: entries of page %u are not sorted", p);
		}
	}
	return 0;
}

static uint64_t entry_pc(const struct unwind_view *v, uint32_t page, uint32_t i)
{
	return v->hdr->base + ((uint64_t)page << UNWIND_PAGE_SHIFT) +
	       unwind_entry_offset(v->entries + 3 * (size_t)i);
}

/* Page that holds entry i (entries of empty pages belong to none). */
static uint32_t page_of_entry(const struct unwind_view *v, uint32_t i)
{
	uint32_t lo = 0, hi = v->hdr->page_count; /* find last page with pages[p] <= i */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->pages[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

const struct unwind_rule *unwind_table_lookup(const struct unwind_view *v, uint64_t pc,
					      uint64_t *start, uint64_t *end)
{
	const struct unwind_table_header *h = v->hdr;
	if (pc < h->base || ((pc - h->base) >> UNWIND_PAGE_SHIFT) >= h->page_count)
		return NULL;
	uint32_t page = (uint32_t)((pc - h->base) >> UNWIND_PAGE_SHIFT);
	uint32_t off = (uint32_t)(pc & UNWIND_OFFSET_MASK);
	uint32_t lo = v->pages[page], hi = v->pages[page + 1];
	/* Last entry in [lo, hi) with offset <= off, else lo - 1. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (unwind_entry_offset(v->entries + 3 * (size_t)mid) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	uint32_t idx = lo - 1;
	if (start || end) {
		uint32_t ipage = idx >= v->pages[page] ? page : page_of_entry(v, idx);
		if (start)
			*start = entry_pc(v, ipage, idx);
		if (end) {
			if (idx + 1 < h->entry_count) {
				uint32_t npage = ipage;
				while (v->pages[npage + 1] <= idx + 1)
					npage++;
				*end = entry_pc(v, npage, idx + 1);
			} else {
				*end = h->base + ((uint64_t)h->page_count << UNWIND_PAGE_SHIFT);
			}
		}
	}
	return &v->rules[unwind_entry_rule(v->entries + 3 * (size_t)idx)];
}

static const char *unsupported_reason(unsigned why)
{
	switch (why) {
	case UNWIND_UNSUP_CFA_EXPR: return "cfa-expression";
	case UNWIND_UNSUP_RBP_RULE: return "rbp-rule";
	case UNWIND_UNSUP_RA_RULE: return "ra-rule";
	case UNWIND_UNSUP_RSP_RULE: return "rsp-rule";
	case UNWIND_UNSUP_RANGE: return "offset-range";
	case UNWIND_UNSUP_SIGNAL: return "signal-layout";
	case UNWIND_UNSUP_OVERLAP: return "overlapping-fde";
	default: return "unknown";
	}
}

static size_t fmt_offset(char *buf, size_t size, long long off)
{
	return off ? (size_t)snprintf(buf, size, "%+lld", off) : (buf[0] = 0, 0);
}

static void fmt_loc(uint16_t arch, char *buf, size_t size, const char *name, uint8_t type,
		    int32_t arg)
{
	char tmp[16], o[24];
	switch (type) {
	case UNWIND_LOC_AT_CFA:
		fmt_offset(o, sizeof(o), arg);
		snprintf(buf, size, ": %s=[CFA%s]", name, o);
		break;
	case UNWIND_LOC_IN_REG:
		snprintf(buf, size, ": %s=%s", name, reg_name(arch, (unsigned)arg, tmp, sizeof(tmp)));
		break;
	case UNWIND_LOC_UNDEFINED:
		snprintf(buf, size, ": %s=undefined", name);
		break;
	default:
		buf[0] = 0;
	}
}

void unwind_rule_format(const struct unwind_rule *r, uint16_t arch, char *buf, size_t size)
{
	char tmp[16], o[24], aux[24], rbp[48], ra[48];
	switch (r->cfa_type) {
	case UNWIND_CFA_END:
		snprintf(buf, size, "END");
		return;
	case UNWIND_CFA_SIGNAL:
		snprintf(buf, size, "CFA=SIGNAL");
		return;
	case UNWIND_CFA_UNSUPPORTED:
		snprintf(buf, size, "UNSUPPORTED(%s)", unsupported_reason(r->cfa_reg));
		return;
	}
	if (arch == UNWIND_ARCH_AARCH64) {
		/* X30 offsets are stored in 8-byte slots; LR still live
		 * (SAME) is not printed, like any unchanged register. */
		int32_t fp_off = r->rbp_type == UNWIND_LOC_AT_CFA ? r->rbp_arg * 8 : r->rbp_arg;
		fmt_loc(arch, rbp, sizeof(rbp), "X29", r->rbp_type, fp_off);
		if (r->ra_type == UNWIND_LOC_FRAME_RECORD)
			fmt_loc(arch, ra, sizeof(ra), "X30", UNWIND_LOC_AT_CFA, fp_off + 8);
		else
			fmt_loc(arch, ra, sizeof(ra), "X30", r->ra_type,
				r->ra_type == UNWIND_LOC_AT_CFA ? r->ra_arg * 8 : r->ra_arg);
		fmt_offset(o, sizeof(o), r->cfa_offset);
		snprintf(buf, size, "CFA=%s%s%s%s%s", reg_name(arch, r->cfa_reg, tmp, sizeof(tmp)), o,
			 rbp, ra, (r->cfa_aux & UNWIND_A64_F_RA_SIGNED) ? ": PAC" : "");
		return;
	}
	fmt_loc(arch, rbp, sizeof(rbp), "RBP", r->rbp_type, r->rbp_arg);
	fmt_loc(arch, ra, sizeof(ra), "RIP", r->ra_type, r->ra_arg);
	const char *base = reg_name(arch, r->cfa_reg, tmp, sizeof(tmp));
	fmt_offset(o, sizeof(o), r->cfa_offset);
	if (r->cfa_type == UNWIND_CFA_REG)
		snprintf(buf, size, "CFA=%s%s%s%s", base, o, rbp, ra);
	else if (r->cfa_type == UNWIND_CFA_DEREF)
	{
		fmt_offset(aux, sizeof(aux), r->cfa_aux);
		snprintf(buf, size, "CFA=[%s%s]%s%s%s", base, o, aux, rbp, ra);
	}
	else
		snprintf(buf, size, "CFA=PLT(%s%s,%d)%s%s", base, o, r->cfa_aux, rbp, ra);
}

void unwind_table_dump(const struct unwind_view *v, FILE *out)
{
	const struct unwind_table_header *h = v->hdr;
	char text[160];
	for (uint32_t p = 0; p < h->page_count; p++) {
		for (uint32_t i = v->pages[p]; i < v->pages[p + 1]; i++) {
			const uint8_t *en = v->entries + 3 * (size_t)i;
			unwind_rule_format(&v->rules[unwind_entry_rule(en)], h->arch, text, sizeof(text));
			fprintf(out, "0x%" PRIx64 ": %s\n", entry_pc(v, p, i), text);
		}
	}
}
