/* Reading Go's .gopclntab (see gopclntab.h and docs/go.md).  Hand-written:
 * no C library reads this format, and Go's own readers (debug/gosym,
 * runtime/symtab.go) are in Go. */
#include "common/gopclntab.h"

#include <errno.h>
#include <string.h>

#define PCLN_MAGIC_118 0xfffffff0u
#define PCLN_MAGIC_120 0xfffffff1u
/* The runtime's own bound on a function's inline tree is its code size;
 * this only keeps a hostile index from addressing far away. */
#define INLTREE_MAX_ENTRIES (1u << 20)

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rdptr(const uint8_t *p, unsigned ptr_size)
{
	if (ptr_size == 4)
		return rd32(p);
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

void go_pclntab_add_region(struct go_pclntab *t, uint64_t addr, const uint8_t *data, size_t size)
{
	if (t->nregions < GO_PCLN_MAX_REGIONS && data && size)
		t->regions[t->nregions++] = (struct go_region){addr, data, size};
}

/* Bytes [addr, addr + len) of the image, or NULL. */
static const uint8_t *at_addr(const struct go_pclntab *t, uint64_t addr, size_t len)
{
	for (unsigned i = 0; i < t->nregions; i++) {
		const struct go_region *r = &t->regions[i];
		if (addr >= r->addr && addr - r->addr <= r->size && len <= r->size - (addr - r->addr))
			return r->data + (addr - r->addr);
	}
	return NULL;
}

int go_pclntab_open(struct go_pclntab *t, const uint8_t *data, size_t size, uint64_t addr,
		    uint64_t text_fallback, int layout_hint, struct err *e)
{
	unsigned nregions = t->nregions;
	struct go_region regions[GO_PCLN_MAX_REGIONS];
	memcpy(regions, t->regions, sizeof(regions));
	memset(t, 0, sizeof(*t));
	memcpy(t->regions, regions, sizeof(regions));
	t->nregions = nregions;
	if (size < 8)
		return err_set(e, EINVAL, ".gopclntab: %zu bytes, too short for a header", size);
	uint32_t magic = rd32(data);
	if (magic == PCLN_MAGIC_118)
		t->layout = layout_hint == GO_PCLN_118 ? GO_PCLN_118 : GO_PCLN_119;
	else if (magic == PCLN_MAGIC_120)
		t->layout = GO_PCLN_120;
	else
		return err_set(e, ENOTSUP, ".gopclntab: magic 0x%08x is not a Go 1.18-1.22 layout",
			       magic);
	t->min_lc = data[6];
	t->ptr_size = data[7];
	if (data[4] || data[5] || (t->min_lc != 1 && t->min_lc != 2 && t->min_lc != 4) ||
	    (t->ptr_size != 4 && t->ptr_size != 8))
		return err_set(e, EINVAL, ".gopclntab: bad header (pad %u %u, quantum %u, pointer %u)",
			       data[4], data[5], t->min_lc, t->ptr_size);
	unsigned ps = t->ptr_size;
	if (size < 8 + 8 * (size_t)ps)
		return err_set(e, EINVAL, ".gopclntab: %zu bytes, too short for a header", size);
	uint64_t nfunc = rdptr(data + 8, ps);
	t->text_start = rdptr(data + 8 + 2 * ps, ps);
	if (!t->text_start)
		t->text_start = text_fallback;
	uint64_t off[5];
	for (int i = 0; i < 5; i++)
		off[i] = rdptr(data + 8 + (3 + i) * ps, ps);
	/* funcnametab, cutab, filetab, pctab, pclntab: in this order. */
	for (int i = 0; i < 5; i++)
		if (off[i] < 8 + 8 * (uint64_t)ps || off[i] > size || (i && off[i] < off[i - 1]))
			return err_set(e, EINVAL, ".gopclntab: table %d at offset 0x%llx is out of"
				       " order or outside the %zu-byte section", i,
				       (unsigned long long)off[i], size);
	t->funcnames = off[0], t->funcnames_size = off[1] - off[0];
	t->cutab = off[1], t->cutab_size = off[2] - off[1];
	t->filetab = off[2], t->filetab_size = off[3] - off[2];
	t->pctab = off[3], t->pctab_size = off[4] - off[3];
	t->pcln = off[4], t->pcln_size = size - off[4];
	if (nfunc == 0 || nfunc > t->pcln_size / 8 - 1 || t->pcln_size < 16)
		return err_set(e, EINVAL, ".gopclntab: %llu functions do not fit a %zu-byte function"
			       " table", (unsigned long long)nfunc, t->pcln_size);
	/* Entries strictly increasing: functions are disjoint, so walking every
	 * function's tables costs at most the size of the code. */
	const uint8_t *ftab = data + t->pcln;
	for (uint64_t i = 0; i < nfunc; i++)
		if (rd32(ftab + 8 * i) >= rd32(ftab + 8 * (i + 1)))
			return err_set(e, EINVAL, ".gopclntab: function table not sorted at entry %llu",
				       (unsigned long long)i);
	t->nfunc = (uint32_t)nfunc;
	t->data = data;
	t->size = size;
	t->addr = addr;
	return 0;
}

static size_t func_header_size(const struct go_pclntab *t)
{
	return t->layout == GO_PCLN_120 ? 44 : 40;
}

int go_pclntab_func(const struct go_pclntab *t, uint32_t i, struct go_func *f, struct err *e)
{
	memset(f, 0, sizeof(*f));
	if (i >= t->nfunc)
		return err_set(e, EINVAL, ".gopclntab: function %u of %u", i, t->nfunc);
	const uint8_t *ftab = t->data + t->pcln;
	uint32_t entry_off = rd32(ftab + 8 * (size_t)i);
	uint32_t func_off = rd32(ftab + 8 * (size_t)i + 4);
	uint32_t end_off = rd32(ftab + 8 * ((size_t)i + 1));
	size_t hs = func_header_size(t);
	if (end_off <= entry_off || func_off > t->pcln_size || hs > t->pcln_size - func_off)
		return err_set(e, EINVAL, ".gopclntab: function %u: bad range 0x%x..0x%x or record"
			       " offset 0x%x", i, entry_off, end_off, func_off);
	const uint8_t *r = t->data + t->pcln + func_off;
	if (rd32(r) != entry_off)
		return err_set(e, EINVAL, ".gopclntab: function %u: record says entry 0x%x, table"
			       " 0x%x", i, rd32(r), entry_off);
	f->entry = t->text_start + entry_off;
	f->end = t->text_start + end_off;
	f->name = go_pclntab_name(t, (int32_t)rd32(r + 4));
	if (!f->name)
		f->name = "";
	f->pcsp = rd32(r + 16);
	f->pcfile = rd32(r + 20);
	f->pcln = rd32(r + 24);
	uint32_t npcdata = rd32(r + 28);
	f->cu_offset = rd32(r + 32);
	size_t k = t->layout == GO_PCLN_120 ? 40 : 36;
	if (t->layout == GO_PCLN_120)
		f->start_line = (int32_t)rd32(r + 36);
	f->func_id = r[k];
	f->flag = r[k + 1];
	uint8_t nfuncdata = r[k + 3];
	size_t avail = t->pcln_size - func_off - hs;
	if (npcdata > avail / 4)
		return err_set(e, EINVAL, ".gopclntab: function %s: %u pcdata tables overrun the"
			       " section", f->name, npcdata);
	const uint8_t *pcdata = r + hs;
	if (npcdata > GO_PCDATA_INLTREEINDEX)
		f->inl_index = rd32(pcdata + 4 * GO_PCDATA_INLTREEINDEX);
	if (nfuncdata <= GO_FUNCDATA_INLTREE)
		return 0;
	size_t fd = hs + 4 * (size_t)npcdata; /* from r */
	avail = t->pcln_size - func_off;
	if (t->layout == GO_PCLN_118) {
		/* Pointers, 8-aligned in memory on 64-bit targets. */
		if (t->ptr_size == 8 && ((t->addr + t->pcln + func_off + fd) & 4))
			fd += 4;
		size_t need = fd + (size_t)nfuncdata * t->ptr_size;
		if (need > avail)
			return err_set(e, EINVAL, ".gopclntab: function %s: funcdata overruns the"
				       " section", f->name);
		f->inl_tree = rdptr(r + fd + GO_FUNCDATA_INLTREE * t->ptr_size, t->ptr_size);
	} else {
		if (fd + 4 * (size_t)nfuncdata > avail)
			return err_set(e, EINVAL, ".gopclntab: function %s: funcdata overruns the"
				       " section", f->name);
		uint32_t v = rd32(r + fd + 4 * GO_FUNCDATA_INLTREE);
		f->inl_tree = v == UINT32_MAX || !t->gofunc ? 0 : t->gofunc + v;
	}
	return 0;
}

int go_pclntab_find(const struct go_pclntab *t, uint64_t pc, struct go_func *f)
{
	if (pc < t->text_start)
		return -ENOENT;
	uint64_t off = pc - t->text_start;
	const uint8_t *ftab = t->data + t->pcln;
	if (off >= rd32(ftab + 8 * (size_t)t->nfunc))
		return -ENOENT;
	uint32_t lo = 0, hi = t->nfunc;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (rd32(ftab + 8 * (size_t)mid) <= off)
			lo = mid;
		else
			hi = mid;
	}
	struct err e;
	if (rd32(ftab + 8 * (size_t)lo) > off || go_pclntab_func(t, lo, f, &e) < 0)
		return -ENOENT;
	return pc < f->end ? 0 : -ENOENT;
}

static bool read_uvarint(const uint8_t **p, const uint8_t *limit, uint32_t *out)
{
	uint32_t v = 0;
	for (unsigned shift = 0; shift < 35; shift += 7) {
		if (*p >= limit)
			return false;
		uint8_t b = *(*p)++;
		v |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

void go_pcvalue_begin(const struct go_pclntab *t, const struct go_func *f, uint32_t off,
		      struct go_pcvalue_iter *it)
{
	memset(it, 0, sizeof(*it));
	it->value = -1;
	it->first = true;
	it->quantum = t->min_lc;
	it->pc = f->entry;
	it->func_end = f->end;
	if (off == 0 || off >= t->pctab_size)
		return; /* no table: p == limit == NULL, the walk is empty */
	it->p = t->data + t->pctab + off;
	it->limit = t->data + t->pctab + t->pctab_size;
}

int go_pcvalue_next(struct go_pcvalue_iter *it, uint64_t *start, uint64_t *end, int32_t *value)
{
	/* Each step reads at least two bytes, so a walk ends within the table. */
	for (;;) {
		if (!it->p)
			return 0;
		if (it->p >= it->limit)
			return -EINVAL; /* a table ends with a 0 value delta */
		uint32_t uvdelta, pcdelta;
		if (*it->p == 0 && !it->first)
			return 0;
		if (!read_uvarint(&it->p, it->limit, &uvdelta) ||
		    !read_uvarint(&it->p, it->limit, &pcdelta))
			return -EINVAL;
		it->first = false;
		/* Zig-zag decoding; the sum wraps as Go's int32 does. */
		it->value = (int32_t)((uint32_t)it->value + (-(uvdelta & 1) ^ (uvdelta >> 1)));
		uint64_t next = it->pc + (uint64_t)pcdelta * it->quantum;
		if (next > it->func_end)
			return -EINVAL;
		if (next == it->pc) {
			/* An empty run changes nothing; a table of nothing
			 * but empty runs would make every walk cost the whole
			 * pctab, so only a few are allowed. */
			if (++it->empty_runs > GO_PCVALUE_MAX_EMPTY_RUNS)
				return -EINVAL;
			continue;
		}
		*start = it->pc;
		*end = next;
		*value = it->value;
		it->pc = next;
		return 1;
	}
}

int go_pcvalue_at(const struct go_pclntab *t, const struct go_func *f, uint32_t off, uint64_t pc,
		  int32_t *value)
{
	struct go_pcvalue_iter it;
	go_pcvalue_begin(t, f, off, &it);
	uint64_t s, en;
	int32_t v;
	int r;
	*value = -1;
	while ((r = go_pcvalue_next(&it, &s, &en, &v)) > 0) {
		if (pc >= s && pc < en) {
			*value = v;
			return 0;
		}
	}
	return r;
}

/* A NUL-terminated string at off inside [base, base + size), or NULL. */
static const char *str_in(const struct go_pclntab *t, size_t base, size_t size, uint64_t off)
{
	if (off >= size)
		return NULL;
	const char *s = (const char *)t->data + base + off;
	return memchr(s, 0, size - off) ? s : NULL;
}

const char *go_pclntab_name(const struct go_pclntab *t, int64_t nameoff)
{
	if (nameoff < 0)
		return NULL;
	return str_in(t, t->funcnames, t->funcnames_size, (uint64_t)nameoff);
}

const char *go_pclntab_file(const struct go_pclntab *t, const struct go_func *f, int32_t fileno)
{
	if (fileno < 0)
		return NULL;
	uint64_t idx = (uint64_t)f->cu_offset + (uint64_t)fileno;
	if (idx >= t->cutab_size / 4)
		return NULL;
	uint32_t off = rd32(t->data + t->cutab + 4 * idx);
	if (off == UINT32_MAX)
		return NULL;
	return str_in(t, t->filetab, t->filetab_size, off);
}

int go_pclntab_inlined(const struct go_pclntab *t, const struct go_func *f, int32_t ix,
		       struct go_inlined_call *out)
{
	memset(out, 0, sizeof(*out));
	if (!f->inl_tree)
		return -ENOENT;
	if (ix < 0 || (uint32_t)ix >= INLTREE_MAX_ENTRIES)
		return -EINVAL;
	size_t esize = t->layout == GO_PCLN_120 ? 16 : 20;
	const uint8_t *p = at_addr(t, f->inl_tree + (uint64_t)ix * esize, esize);
	if (!p)
		return -EINVAL;
	int32_t nameoff, parent_pc;
	if (t->layout == GO_PCLN_120) {
		/* funcID, pad[3], nameOff, parentPc, startLine */
		out->func_id = p[0];
		out->parent = -2; /* not stored: found at parent_pc */
		nameoff = (int32_t)rd32(p + 4);
		parent_pc = (int32_t)rd32(p + 8);
	} else {
		/* parent (s16), funcID, pad, file, line, func_, parentPc */
		int16_t parent;
		memcpy(&parent, p, 2);
		out->parent = parent;
		out->func_id = p[2];
		nameoff = (int32_t)rd32(p + 12);
		parent_pc = (int32_t)rd32(p + 16);
	}
	out->name = go_pclntab_name(t, nameoff);
	if (!out->name || parent_pc < 0 || (uint64_t)parent_pc >= f->end - f->entry)
		return -EINVAL;
	out->parent_pc = f->entry + (uint64_t)parent_pc;
	return 0;
}

/* The Go release a binary was built with, from .go.buildinfo (Go 1.18+
 * writes the version inline: 16-byte header, flags bit 1, then at offset
 * 32 a varint-prefixed string "go1.N..."): 118, 119, 120... or 0. */
static int go_release(struct elf_object *o)
{
	struct section s = {0};
	struct err ignored = {{0}};
	int release = 0;
	if (elf_object_section(o, ".go.buildinfo", &s, &ignored) < 0 || !s.found)
		return 0;
	static const char magic[] = "\xff Go buildinf:";
	if (s.size >= 34 && !memcmp(s.data, magic, 14) && (s.data[15] & 2)) {
		const uint8_t *p = s.data + 32;
		uint32_t len;
		if (read_uvarint(&p, s.data + s.size, &len) && len <= (size_t)(s.data + s.size - p)) {
			const char *v = memmem(p, len, "go1.", 4);
			if (v) {
				int minor = 0;
				const char *end = (const char *)p + len;
				for (v += 4; v < end && *v >= '0' && *v <= '9' && minor < 1000; v++)
					minor = minor * 10 + (*v - '0');
				release = 100 + minor;
			}
		}
	}
	section_free(&s);
	return release;
}

/* moduledata.gofunc (1.19+): runtime.firstmoduledata sits in .noptrdata and
 * starts with a pointer to the pclntab header followed by the funcnametab
 * slice.  gofunc is at a fixed offset in the struct per release. */
static void find_gofunc(struct go_pclntab *t, struct elf_object *o)
{
	if (t->layout == GO_PCLN_118 || t->ptr_size != 8)
		return;
	size_t gofunc_at = t->layout == GO_PCLN_119 ? 304 : 320;
	/* .noptrdata in executables; PIE builds keep it in .data.rel.ro. */
	static const char *const where[] = {".noptrdata", ".data.rel.ro"};
	uint64_t want[2] = {t->addr, t->addr + t->funcnames};
	for (size_t w = 0; w < ARRAY_SIZE(where) && !t->gofunc; w++) {
		struct section s = {0};
		struct err ignored = {{0}};
		if (elf_object_section(o, where[w], &s, &ignored) < 0 || !s.found)
			continue;
		for (size_t off = 0; off + gofunc_at + 8 <= s.size; off += 8) {
			if (memcmp(s.data + off, want, 16) != 0)
				continue;
			uint64_t text = rdptr(s.data + off + 176, 8);
			uint64_t gofunc = rdptr(s.data + off + gofunc_at, 8);
			if (text == t->text_start && at_addr(t, gofunc, 1)) {
				t->gofunc = gofunc;
				break;
			}
		}
		section_free(&s);
	}
}

int go_pclntab_open_elf(struct go_pclntab *t, struct elf_object *o, struct err *e)
{
	memset(t, 0, sizeof(*t));
	GElf_Shdr pcln_sh, text_sh;
	/* PIE builds put it among the relocated read-only data. */
	if ((!elf_object_shdr(o, ".gopclntab", &pcln_sh) &&
	     !elf_object_shdr(o, ".data.rel.ro.gopclntab", &pcln_sh)) ||
	    pcln_sh.sh_type == SHT_NOBITS)
		return -ENODATA;
	if (pcln_sh.sh_offset > o->image_size || pcln_sh.sh_size > o->image_size - pcln_sh.sh_offset)
		return err_set(e, EINVAL, ".gopclntab lies outside the file");
	uint64_t text = elf_object_shdr(o, ".text", &text_sh) ? text_sh.sh_addr : 0;
	/* Read-only and data sections, for funcdata pointers. */
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(o->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) ||
		    sh.sh_type == SHT_NOBITS || (sh.sh_flags & SHF_COMPRESSED) ||
		    sh.sh_offset > o->image_size || sh.sh_size > o->image_size - sh.sh_offset)
			continue;
		go_pclntab_add_region(t, sh.sh_addr, o->image + sh.sh_offset, sh.sh_size);
	}
	int release = go_release(o);
	int r = go_pclntab_open(t, o->image + pcln_sh.sh_offset, pcln_sh.sh_size, pcln_sh.sh_addr,
				text, release == 118 ? GO_PCLN_118 : 0, e);
	if (r < 0)
		return r;
	find_gofunc(t, o);
	return 0;
}
