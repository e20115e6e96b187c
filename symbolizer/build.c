/* Building a symbolization index from an ELF object, its DWARF (libdw) and
 * its symbol table.  See symz_format.h for what is built and why.
 *
 * libdw is used for parsing only (units, DIEs, ranges, line tables); the
 * per-address helpers of libdwfl are avoided on purpose: they
 * walk a unit's DIEs again for every address, which is what the index is
 * built to avoid. */
#include "symbolizer/index.h"
#include "symbolizer/internal.h"
#include "common/gopclntab.h"
#include "common/hashmap.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- maps (common/hashmap.h) ----
 * Integer keys (libdw pointers, string offsets) are hashed as their bytes.
 * A key absent until now is inserted with value 0 for the caller to set
 * (an error in between sets b->oom, and the build is abandoned). */
static int map_slot(struct hashmap *m, uint64_t key, uint64_t **value)
{
	return hashmap_slot(m, &key, sizeof(key), value);
}

/* Interned strings: the index's string section is the key arena of one map
 * (each string NUL-terminated, "" at offset 0), the value a string's offset.
 * Returns the offset of s, or UINT32_MAX on ENOMEM / overflow. */
static uint32_t str_add(struct hashmap *strs, const char *s)
{
	if (!s || !*s)
		return 0;
	size_t n = strlen(s);
	/* One lookup: a new string lands at the arena's end (offsets stay
	 * below UINT32_MAX, the format's limit). */
	uint64_t off = hashmap_next_offset(strs);
	if (off + n + 1 > UINT32_MAX - 1 || hashmap_find(strs, s, n, &off, true) < 0)
		return UINT32_MAX;
	return (uint32_t)off;
}

/* ---- the builder ---- */
struct range {
	uint64_t lo, hi;
	uint32_t node, depth; /* depth 0: symbol, 1: function, 2+: inlined */
	uint32_t order;
};

struct row {
	uint64_t addr;
	uint32_t file; /* index + 1; 0: end of sequence */
	uint32_t line, column, order;
};

struct code_range {
	uint64_t lo, hi;
};

/* An ELF function symbol (from the debug file's .symtab, else the object's). */
struct sym {
	uint64_t addr, size;
	const char *name; /* owned by libelf, valid while the ELF is open */
	int rank;         /* aliases at one address: lowest rank first */
};

struct builder {
	struct hashmap strs;   /* the string section (str_add) */
	struct vec files;      /* uint32_t string offsets */
	struct hashmap file_by_str; /* string offset -> file index */
	struct hashmap file_by_ptr; /* libdw path pointer -> file index */
	struct hashmap name_by_ptr; /* libdw linkage/name pointer -> node name pair index */
	struct vec name_pairs; /* uint32_t[2] {name, linkage} */
	struct vec nodes;      /* struct symz_node */
	struct vec ranges;     /* struct range */
	struct vec rows;       /* struct row */
	struct code_range *code; /* executable sections: ranges outside are dead code */
	size_t ncode;
	struct sym *syms;        /* function symbols, by address then rank */
	size_t nsyms;
	Elf *mini_elf;           /* MiniDebugInfo's ELF (names in syms point into it) */
	uint8_t *mini_image;
	uint32_t order;
	bool oom;
	struct symz_stats *stats;
};

static bool in_code(const struct builder *b, uint64_t lo, uint64_t hi)
{
	if (!b->ncode)
		return lo != 0;
	for (size_t i = 0; i < b->ncode; i++)
		if (lo >= b->code[i].lo && lo < b->code[i].hi && hi <= b->code[i].hi)
			return true;
	return false;
}

static bool addr_in_code(const struct builder *b, uint64_t a, bool end)
{
	if (!b->ncode)
		return a != 0;
	for (size_t i = 0; i < b->ncode; i++)
		if (a >= b->code[i].lo && (end ? a <= b->code[i].hi : a < b->code[i].hi))
			return true;
	return false;
}

/* Relative paths are shown below the unit's comp_dir, as llvm-symbolizer,
 * addr2line and eu-addr2line all do ("./libio/./libio/wgenops.c"). */
static uint32_t file_index(struct builder *b, const char *path, const char *comp_dir)
{
	char joined[4096];
	if (path[0] != '/' && comp_dir && *comp_dir &&
	    (size_t)snprintf(joined, sizeof(joined), "%s/%s", comp_dir, path) < sizeof(joined))
		path = joined;
	uint32_t s = str_add(&b->strs, path);
	if (s == UINT32_MAX) {
		b->oom = true;
		return SYMZ_NONE;
	}
	uint64_t *idx;
	int r = map_slot(&b->file_by_str, s, &idx);
	if (r == 1)
		return (uint32_t)*idx;
	uint32_t *f = r < 0 ? NULL : vec_push(&b->files);
	if (!f) {
		b->oom = true;
		return SYMZ_NONE;
	}
	*f = s;
	*idx = b->files.len - 1;
	return (uint32_t)*idx;
}

/* File index for a libdw path pointer (the same string is returned for every
 * row of one file, so the pointer is a cheap cache key). */
static uint32_t file_by_ptr(struct builder *b, const char *path, const char *comp_dir)
{
	if (!path)
		return SYMZ_NONE;
	uint64_t *idx;
	int r = map_slot(&b->file_by_ptr, (uintptr_t)path, &idx);
	if (r == 1)
		return (uint32_t)*idx;
	if (r < 0) {
		b->oom = true;
		return SYMZ_NONE;
	}
	/* file_index grows other maps, never this one: idx stays valid. */
	uint32_t file = file_index(b, path, comp_dir);
	*idx = file;
	return file;
}

/* {name, linkage} string offsets for a raw (possibly mangled) name. */
static void intern_name(struct builder *b, const char *raw, bool strip_clone, uint32_t *name,
			uint32_t *linkage)
{
	*name = *linkage = 0;
	if (!raw || !*raw)
		return;
	uint64_t *pair = NULL;
	if (!strip_clone) {
		int r = map_slot(&b->name_by_ptr, (uintptr_t)raw, &pair);
		if (r < 0) {
			b->oom = true;
			return;
		}
		if (r == 1) {
			uint32_t *p = &VEC_AT(&b->name_pairs, uint32_t, 2 * *pair);
			*name = p[0];
			*linkage = p[1];
			return;
		}
	}
	char *base = strip_clone ? symz_strip_clone_suffix(raw) : NULL;
	const char *src = base ? base : raw;
	char *dem = symz_demangle(src);
	*name = str_add(&b->strs, dem ? dem : src);
	*linkage = dem ? str_add(&b->strs, src) : 0;
	free(dem);
	free(base);
	if (*name == UINT32_MAX || *linkage == UINT32_MAX) {
		b->oom = true;
		*name = *linkage = 0;
		return;
	}
	if (strip_clone)
		return;
	uint32_t *p0 = vec_push(&b->name_pairs), *p1 = vec_push(&b->name_pairs);
	if (!p0 || !p1) {
		b->oom = true;
		return;
	}
	*p0 = *name;
	*p1 = *linkage;
	/* str_add never touches name_by_ptr, so pair is still ours. */
	*pair = b->name_pairs.len / 2 - 1;
}

static uint32_t add_node(struct builder *b, const struct symz_node *n)
{
	struct symz_node *p = vec_push(&b->nodes);
	if (!p) {
		b->oom = true;
		return SYMZ_NONE;
	}
	*p = *n;
	return (uint32_t)(b->nodes.len - 1);
}

static void add_range(struct builder *b, uint64_t lo, uint64_t hi, uint32_t node, uint32_t depth)
{
	struct range *r = vec_push(&b->ranges);
	if (!r) {
		b->oom = true;
		return;
	}
	r->lo = lo;
	r->hi = hi;
	r->node = node;
	r->depth = depth;
	r->order = b->order++;
}

/* ---- DWARF ---- */
struct cu_ctx {
	Dwarf_Files *files; /* of the unit holding the DIEs (split unit if any) */
	size_t nfiles;
	uint32_t *file_map; /* DWARF file number -> our file index (lazily) */
	const char *comp_dir;
};

static uint32_t cu_file(struct builder *b, struct cu_ctx *cu, Dwarf_Word idx)
{
	if (!cu->files || idx >= cu->nfiles)
		return SYMZ_NONE;
	if (cu->file_map[idx] == UINT32_MAX - 1) {
		const char *path = dwarf_filesrc(cu->files, idx, NULL, NULL);
		cu->file_map[idx] = path ? file_index(b, path, cu->comp_dir) : SYMZ_NONE;
	}
	return cu->file_map[idx];
}

/* Does the demangled C++ name `dem` name the function DW_AT_name `dwname`
 * ("__adjust_heap<…>", "operator()<…>")?  Its unqualified name must appear
 * as a component: after the start, a space or "::", before '<' or '('. */
static bool demangled_names(const char *dem, const char *dwname)
{
	size_t n = strncmp(dwname, "operator", 8) == 0 ? 8 : strcspn(dwname, "<(");
	if (n == 0)
		return false;
	for (const char *p = dem; *p; p++) {
		if (strncmp(p, dwname, n) != 0)
			continue;
		bool start = p == dem || p[-1] == ' ' || p[-1] == ':' || p[-1] == '~';
		if (start && (n == 8 || p[n] == '<' || p[n] == '('))
			return true;
	}
	return false;
}

/* GCC omits DW_AT_linkage_name on some template instantiations (std::sort's
 * helpers with a lambda argument): the DIE has only the short DW_AT_name.
 * The mangled name is the ELF symbol at the function's entry address, which
 * is also what llvm-symbolizer shows for the outermost frame. */
static const char *entry_symbol(const struct builder *b, uint64_t entry, const char *dwname)
{
	size_t lo = 0, hi = b->nsyms;
	if (!dwname || !entry)
		return NULL;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (b->syms[mid].addr < entry)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < b->nsyms && b->syms[lo].addr == entry; lo++) {
		const char *name = b->syms[lo].name;
		if (name[0] != '_' || name[1] != 'Z')
			continue;
		char *dem = symz_demangle(name);
		bool match = dem && demangled_names(dem, dwname);
		free(dem);
		if (match)
			return name;
	}
	return NULL;
}

/* Lowest address of a DIE's code: DW_AT_low_pc, else its first range. */
static uint64_t die_start(Dwarf_Die *die)
{
	Dwarf_Addr low, base, hi;
	if (dwarf_lowpc(die, &low) == 0)
		return low;
	if (dwarf_ranges(die, 0, &base, &low, &hi) > 0)
		return low;
	return 0;
}

/* Names of a subprogram or inlined_subroutine DIE.  A function (not an
 * inlined instance) without a linkage name takes its ELF entry symbol's. */
static void die_name(struct builder *b, Dwarf_Die *die, bool inlined, uint32_t *name,
		     uint32_t *linkage)
{
	Dwarf_Attribute a;
	const char *link = NULL;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
		link = dwarf_formstring(&a);
	if (!link) {
		link = dwarf_diename(die);
		const char *sym = inlined ? NULL : entry_symbol(b, die_start(die), link);
		if (sym) {
			intern_name(b, sym, true, name, linkage);
			return;
		}
	}
	intern_name(b, link, false, name, linkage);
}

static uint32_t udata_attr(Dwarf_Die *die, unsigned at)
{
	Dwarf_Attribute a;
	Dwarf_Word w;
	if (!dwarf_attr(die, at, &a) || dwarf_formudata(&a, &w) != 0 || w > UINT32_MAX)
		return 0;
	return (uint32_t)w;
}

/* Add die's code ranges for `node`; returns how many were kept. */
static int add_die_ranges(struct builder *b, Dwarf_Die *die, uint32_t node, uint32_t depth)
{
	Dwarf_Addr base, lo, hi;
	ptrdiff_t off = 0;
	int kept = 0;
	while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
		if (hi <= lo || !in_code(b, lo, hi))
			continue; /* empty, or tombstoned discarded code (S7) */
		add_range(b, lo, hi, node, depth);
		kept++;
	}
	return kept;
}

static bool has_code(Dwarf_Die *die)
{
	return dwarf_hasattr(die, DW_AT_low_pc) || dwarf_hasattr(die, DW_AT_ranges);
}

static void walk(struct builder *b, struct cu_ctx *cu, Dwarf_Die *die, uint32_t parent,
		 uint32_t depth, unsigned level)
{
	Dwarf_Die child;
	if (level > 256 || dwarf_child(die, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);
		switch (tag) {
		case DW_TAG_subprogram:
		case DW_TAG_inlined_subroutine: {
			if (!has_code(&child))
				break; /* abstract or declaration: nothing at any address */
			bool inl = tag == DW_TAG_inlined_subroutine;
			if (inl && parent == SYMZ_NONE)
				break; /* inlined into nothing: malformed */
			struct symz_node n = {0};
			die_name(b, &child, inl, &n.name, &n.linkage);
			n.parent = inl ? parent : SYMZ_NONE;
			n.call_file = SYMZ_NONE;
			if (inl) {
				Dwarf_Attribute a;
				Dwarf_Word fi;
				if (dwarf_attr(&child, DW_AT_call_file, &a) &&
				    dwarf_formudata(&a, &fi) == 0)
					n.call_file = cu_file(b, cu, fi);
				n.call_line = udata_attr(&child, DW_AT_call_line);
				n.call_column = udata_attr(&child, DW_AT_call_column);
				n.flags = SYMZ_N_INLINED;
			}
			int dl;
			if (dwarf_decl_line(&child, &dl) == 0 && dl > 0)
				n.decl_line = (uint32_t)dl;
			Dwarf_Addr low;
			if (dwarf_lowpc(&child, &low) == 0)
				n.entry = low;
			uint32_t id = add_node(b, &n);
			if (id == SYMZ_NONE)
				return;
			uint32_t d = depth + 1;
			if (add_die_ranges(b, &child, id, d) == 0) {
				b->nodes.len--; /* only dead code: forget it */
				break;
			}
			if (inl)
				b->stats->inline_nodes++;
			else
				b->stats->functions++;
			walk(b, cu, &child, id, d, level + 1);
			break;
		}
		case DW_TAG_lexical_block:
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_class_type:
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
			walk(b, cu, &child, tag == DW_TAG_lexical_block ? parent : SYMZ_NONE,
			     tag == DW_TAG_lexical_block ? depth : 0, level + 1);
			break;
		default:
			break;
		}
	} while (!b->oom && dwarf_siblingof(&child, &child) == 0);
}

static const char *comp_dir_of(Dwarf_Die *cudie)
{
	Dwarf_Attribute a;
	return dwarf_attr_integrate(cudie, DW_AT_comp_dir, &a) ? dwarf_formstring(&a) : NULL;
}

static void add_lines(struct builder *b, Dwarf_Die *cudie)
{
	const char *comp_dir = comp_dir_of(cudie);
	Dwarf_Lines *lines;
	size_t n;
	if (dwarf_getsrclines(cudie, &lines, &n) != 0)
		return;
	/* libdw sorts a unit's rows by address with end_sequence rows first,
	 * which loses which sequence a row at an end address belongs to.  A row
	 * that repeats the previous location at an address where a sequence of
	 * this unit ends is that sequence's zero-length last row (GCC emits
	 * them); llvm-symbolizer never shows it, so it is dropped. */
	struct row prev = {0}, cur_last = {0};
	bool have_prev = false, have_cur = false, end_here = false;
	uint64_t cur_addr = 0;
	for (size_t i = 0; i < n && !b->oom; i++) {
		Dwarf_Line *l = dwarf_onesrcline(lines, i);
		Dwarf_Addr addr;
		bool end = false;
		int ln = 0, col = 0;
		if (!l || dwarf_lineaddr(l, &addr) != 0)
			continue;
		if (i == 0 || addr != cur_addr) {
			if (have_cur) {
				prev = cur_last;
				have_prev = true;
			}
			have_cur = end_here = false;
			cur_addr = addr;
		}
		dwarf_lineendsequence(l, &end);
		if (!addr_in_code(b, addr, end))
			continue; /* tombstoned sequence of discarded code (S7) */
		struct row r = {.addr = addr, .order = b->order++};
		if (end) {
			end_here = true;
		} else {
			dwarf_lineno(l, &ln);
			dwarf_linecol(l, &col);
			uint32_t f = file_by_ptr(b, dwarf_linesrc(l, NULL, NULL), comp_dir);
			if (f != SYMZ_NONE) { /* a row without a file gives no information */
				r.file = f + 1;
				r.line = ln > 0 ? (uint32_t)ln : 0;
				r.column = col > 0 ? (uint32_t)col : 0;
			}
			if (end_here && have_prev && prev.file == r.file && prev.line == r.line &&
			    prev.column == r.column)
				continue;
			cur_last = r;
			have_cur = true;
		}
		struct row *p = vec_push(&b->rows);
		if (!p) {
			b->oom = true;
			return;
		}
		*p = r;
	}
}

static int add_dwarf(struct builder *b, Dwarf *dw, struct err *e)
{
	Dwarf_CU *cu = NULL, *next;
	Dwarf_Half version;
	uint8_t unit_type;
	Dwarf_Die cudie, subdie;
	int r;
	while ((r = dwarf_get_units(dw, cu, &next, &version, &unit_type, &cudie, &subdie)) == 0) {
		cu = next;
		if (unit_type == DW_UT_type || unit_type == DW_UT_split_type ||
		    unit_type == DW_UT_partial)
			continue; /* no code of their own (dwz partial units hold shared DIEs) */
		add_lines(b, &cudie);
		Dwarf_Die *tree = &cudie;
		if (unit_type == DW_UT_skeleton && dwarf_tag(&subdie) == DW_TAG_compile_unit)
			tree = &subdie; /* split DWARF: DIEs live in the .dwo */
		struct cu_ctx ctx = {0};
		ctx.comp_dir = comp_dir_of(&cudie);
		if (dwarf_getsrcfiles(tree, &ctx.files, &ctx.nfiles) != 0 &&
		    (tree == &cudie || dwarf_getsrcfiles(&cudie, &ctx.files, &ctx.nfiles) != 0)) {
			ctx.files = NULL;
			ctx.nfiles = 0;
		}
		if (ctx.nfiles) {
			ctx.file_map = malloc(ctx.nfiles * sizeof(uint32_t));
			if (!ctx.file_map)
				return err_set(e, ENOMEM, "out of memory");
			for (size_t i = 0; i < ctx.nfiles; i++)
				ctx.file_map[i] = UINT32_MAX - 1;
		}
		/* The unit DIE itself may be a function-less CU; walk its children. */
		walk(b, &ctx, tree, SYMZ_NONE, 0, 0);
		free(ctx.file_map);
		if (b->oom)
			return err_set(e, ENOMEM, "out of memory while indexing DWARF");
	}
	if (r < 0)
		return err_set(e, EINVAL, "DWARF units unreadable: %s", dwarf_errmsg(-1));
	return 0;
}

/* ---- ELF symbol table (fallback where DWARF has no function) ---- */

static int sym_rank(const GElf_Sym *s, const char *name)
{
	int bind = GELF_ST_BIND(s->st_info);
	int r = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
	r = r * 4 + (s->st_size ? 0 : 2);
	size_t us = 0;
	while (name[us] == '_')
		us++;
	return r * 64 + (int)(us < 63 ? us : 63);
}

static int cmp_sym(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return strcmp(x->name, y->name);
}

/* elf's .symtab, else (dynsym_ok) its .dynsym; NULL when neither. */
static Elf_Scn *symtab_of(Elf *elf, bool dynsym_ok, GElf_Shdr *out)
{
	Elf_Scn *scn = NULL, *use = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB || (dynsym_ok && sh.sh_type == SHT_DYNSYM && !use)) {
			use = scn;
			*out = sh;
		}
	}
	return use;
}

/* Append the function symbols of elf's symbol section scn to b->syms
 * (unsorted). */
static int append_syms(struct builder *b, Elf *elf, Elf_Scn *use, const GElf_Shdr *use_sh)
{
	Elf_Data *d = elf_getdata(use, NULL);
	if (!d || use_sh->sh_entsize == 0)
		return 0;
	size_t n = d->d_size / use_sh->sh_entsize;
	struct sym *syms = realloc(b->syms, (b->nsyms + n + 1) * sizeof(*syms));
	if (!syms)
		return -ENOMEM;
	b->syms = syms;
	size_t k = b->nsyms;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym s;
		if (!gelf_getsym(d, (int)i, &s))
			continue;
		int type = GELF_ST_TYPE(s.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF ||
		    s.st_value == 0)
			continue;
		const char *name = elf_strptr(elf, use_sh->sh_link, s.st_name);
		if (!name || !*name)
			continue;
		uint64_t hi = s.st_value + (s.st_size ? s.st_size : 1);
		if (hi < s.st_value || !in_code(b, s.st_value, hi))
			continue;
		memset(&syms[k], 0, sizeof(syms[k]));
		syms[k].addr = s.st_value;
		syms[k].size = s.st_size;
		syms[k].name = name;
		syms[k].rank = sym_rank(&s, name);
		k++;
	}
	b->nsyms = k;
	return 0;
}

/* Function symbols of elf's .symtab (else .dynsym) into b->syms, sorted. */
static int collect_syms(struct builder *b, Elf *elf)
{
	GElf_Shdr sh;
	Elf_Scn *use = symtab_of(elf, true, &sh);
	free(b->syms);
	b->syms = NULL;
	b->nsyms = 0;
	if (!use)
		return 0;
	int r = append_syms(b, elf, use, &sh);
	if (r == 0 && b->nsyms)
		qsort(b->syms, b->nsyms, sizeof(*b->syms), cmp_sym);
	return r;
}

/* MiniDebugInfo: the .symtab inside .gnu_debugdata joins what .dynsym has
 * (it holds only the functions .dynsym lacks).  Used when there is no
 * full .symtab; DWARF, when there is some, still names first. */
static int add_minidebuginfo(struct builder *b, Elf *obj, struct err *e)
{
	int r = symz_minidebuginfo_open(obj, &b->mini_image, &b->mini_elf, e);
	if (r <= 0)
		return r;
	GElf_Shdr sh;
	Elf_Scn *scn = symtab_of(b->mini_elf, false, &sh);
	if (!scn)
		return err_set(e, EINVAL, ".gnu_debugdata: the ELF inside has no .symtab");
	if (append_syms(b, b->mini_elf, scn, &sh) < 0)
		return err_set(e, ENOMEM, "out of memory");
	if (b->nsyms)
		qsort(b->syms, b->nsyms, sizeof(*b->syms), cmp_sym);
	b->stats->minidebuginfo = true;
	return 0;
}

static int add_symtab(struct builder *b, struct err *e)
{
	for (size_t i = 0; i < b->nsyms && !b->oom; i++) {
		const struct sym *s = &b->syms[i];
		if (i && s->addr == b->syms[i - 1].addr)
			continue; /* an alias: the best-ranked one came first */
		struct symz_node nd = {0};
		nd.parent = SYMZ_NONE;
		nd.call_file = SYMZ_NONE;
		nd.flags = SYMZ_N_SYMTAB;
		nd.entry = s->addr;
		intern_name(b, s->name, true, &nd.name, &nd.linkage);
		uint32_t id = add_node(b, &nd);
		if (id == SYMZ_NONE)
			break;
		/* A sizeless symbol answers only for its own address. */
		add_range(b, s->addr, s->addr + (s->size ? s->size : 1), id, 0);
		b->stats->symbols++;
	}
	if (b->oom)
		return err_set(e, ENOMEM, "out of memory");
	return 0;
}

/* ---- Go's .gopclntab (where there is no DWARF) ---- */

/* Deepest inline nesting followed; Go's inliner goes far less deep, and a
 * hostile tree whose parent_pc points back into its own run would loop. */
#define GO_INLINE_MAX_DEPTH 32
/* Inlined calls indexed per function: each costs a walk of the function's
 * tables, so a hostile tree is cut here (real functions stay far below;
 * beyond it the function's own frame still answers). */
#define GO_INLINE_MAX_PER_FUNC 4096

struct go_inl {
	int32_t ix;
	uint32_t node, depth;
};

/* The node of inline-tree entry ix of f, creating it and its enclosing
 * entries; *depth is its scope depth (function = 1).  SYMZ_NONE on a
 * malformed tree (the range is then left to the function). */
static uint32_t go_inline_node(struct builder *b, const struct go_pclntab *t,
			       const struct go_func *f, uint32_t fn_node, int32_t ix,
			       struct vec *seen, unsigned level, uint32_t *depth)
{
	for (size_t i = 0; i < seen->len; i++) {
		struct go_inl *g = &VEC_AT(seen, struct go_inl, i);
		if (g->ix == ix) {
			*depth = g->depth;
			return g->node;
		}
	}
	struct go_inlined_call c;
	if (level >= GO_INLINE_MAX_DEPTH || seen->len >= GO_INLINE_MAX_PER_FUNC ||
	    go_pclntab_inlined(t, f, ix, &c) < 0)
		return SYMZ_NONE;
	int32_t parent_ix, fileno, line;
	if (go_pcvalue_at(t, f, f->inl_index, c.parent_pc, &parent_ix) < 0 ||
	    go_pcvalue_at(t, f, f->pcfile, c.parent_pc, &fileno) < 0 ||
	    go_pcvalue_at(t, f, f->pcln, c.parent_pc, &line) < 0)
		return SYMZ_NONE;
	uint32_t parent = fn_node, parent_depth = 1;
	if (parent_ix >= 0) {
		parent = go_inline_node(b, t, f, fn_node, parent_ix, seen, level + 1, &parent_depth);
		if (parent == SYMZ_NONE)
			return SYMZ_NONE;
	}
	const char *file = go_pclntab_file(t, f, fileno);
	struct symz_node nd = {0};
	nd.parent = parent;
	nd.call_file = file ? file_index(b, file, NULL) : SYMZ_NONE;
	nd.call_line = line > 0 ? (uint32_t)line : 0;
	nd.flags = SYMZ_N_INLINED;
	intern_name(b, c.name, false, &nd.name, &nd.linkage);
	uint32_t node = add_node(b, &nd);
	struct go_inl *g = node == SYMZ_NONE ? NULL : vec_push(seen);
	if (!g) {
		b->oom = true;
		return SYMZ_NONE;
	}
	*g = (struct go_inl){ix, node, parent_depth + 1};
	b->stats->inline_nodes++;
	*depth = parent_depth + 1;
	return node;
}

/* Line rows of f: the pcfile and pcln tables walked side by side. */
static int go_lines(struct builder *b, const struct go_pclntab *t, const struct go_func *f)
{
	struct go_pcvalue_iter fi, li;
	uint64_t fs = 0, fe = 0, ls = 0, le = 0;
	int32_t fv = -1, lv = -1;
	int fr, lr;
	go_pcvalue_begin(t, f, f->pcfile, &fi);
	go_pcvalue_begin(t, f, f->pcln, &li);
	fr = go_pcvalue_next(&fi, &fs, &fe, &fv);
	lr = go_pcvalue_next(&li, &ls, &le, &lv);
	uint64_t pc = f->entry;
	int32_t last_fv = -1;
	uint32_t fidx = SYMZ_NONE; /* of last_fv: a function's rows rarely change file */
	while (fr > 0 && lr > 0 && !b->oom) {
		struct row *r = vec_push(&b->rows);
		if (!r) {
			b->oom = true;
			break;
		}
		*r = (struct row){.addr = pc, .order = b->order++};
		if (fv != last_fv) {
			const char *file = go_pclntab_file(t, f, fv);
			fidx = file ? file_index(b, file, NULL) : SYMZ_NONE;
			last_fv = fv;
		}
		if (fidx != SYMZ_NONE && lv > 0) {
			r->file = fidx + 1;
			r->line = (uint32_t)lv;
		}
		pc = fe < le ? fe : le;
		if (fe == pc)
			fr = go_pcvalue_next(&fi, &fs, &fe, &fv);
		if (le == pc)
			lr = go_pcvalue_next(&li, &ls, &le, &lv);
	}
	struct row *r = vec_push(&b->rows); /* end of the function's sequence */
	if (!r) {
		b->oom = true;
		return -ENOMEM;
	}
	*r = (struct row){.addr = pc, .order = b->order++};
	return fr < 0 || lr < 0 ? -EINVAL : 0;
}

/* Functions, inline chains and lines from .gopclntab.  A malformed
 * function is skipped (counted) rather than failing the whole object; a
 * header that cannot be read fails it. */
static int add_gopclntab(struct builder *b, const struct go_pclntab *t, struct err *e)
{
	struct vec seen;
	vec_init(&seen, sizeof(struct go_inl));
	for (uint32_t i = 0; i < t->nfunc && !b->oom; i++) {
		struct go_func f;
		struct err fe = {{0}};
		if (go_pclntab_func(t, i, &f, &fe) < 0 || !in_code(b, f.entry, f.end))
			continue;
		struct symz_node nd = {0};
		nd.parent = SYMZ_NONE;
		nd.call_file = SYMZ_NONE;
		nd.entry = f.entry;
		nd.decl_line = f.start_line > 0 ? (uint32_t)f.start_line : 0;
		intern_name(b, f.name, false, &nd.name, &nd.linkage);
		uint32_t fn_node = add_node(b, &nd);
		if (fn_node == SYMZ_NONE)
			break;
		add_range(b, f.entry, f.end, fn_node, 1);
		b->stats->functions++;
		seen.len = 0;
		struct go_pcvalue_iter it;
		uint64_t s, en;
		int32_t ix;
		go_pcvalue_begin(t, &f, f.inl_index, &it);
		while (f.inl_tree && go_pcvalue_next(&it, &s, &en, &ix) > 0) {
			if (ix < 0)
				continue;
			uint32_t depth = 0;
			uint32_t node = go_inline_node(b, t, &f, fn_node, ix, &seen, 0, &depth);
			if (node != SYMZ_NONE)
				add_range(b, s, en, node, depth);
		}
		go_lines(b, t, &f);
	}
	vec_free(&seen);
	if (b->oom)
		return err_set(e, ENOMEM, "out of memory while indexing .gopclntab");
	return 0;
}

/* ---- flattening and serialization ---- */
static int cmp_range_depth(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* At one address an end of sequence comes first (a sequence of another
	 * unit may start there); then rows in file order, the last one wins. */
	if ((x->file != 0) != (y->file != 0))
		return x->file != 0 ? 1 : -1;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct flat {
	uint64_t *seg_addr;
	uint32_t *seg_node;
	size_t nseg;
};

/* Paint ranges shallow-to-deep onto the elementary intervals between all
 * boundaries: each address ends up owned by the deepest scope covering it. */
static int flatten_scopes(struct builder *b, struct flat *f, struct err *e)
{
	size_t nr = b->ranges.len;
	struct range *rs = b->ranges.data;
	uint64_t *bounds = malloc((2 * nr + 1) * sizeof(*bounds));
	if (!bounds)
		return err_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < nr; i++) {
		bounds[2 * i] = rs[i].lo;
		bounds[2 * i + 1] = rs[i].hi;
	}
	size_t nb = 2 * nr;
	nb = sort_unique_u64(bounds, nb);
	uint32_t *owner = malloc((nb ? nb : 1) * sizeof(*owner));
	if (!owner) {
		free(bounds);
		return err_set(e, ENOMEM, "out of memory");
	}
	memset(owner, 0xff, (nb ? nb : 1) * sizeof(*owner));
	if (nr)
		qsort(rs, nr, sizeof(*rs), cmp_range_depth);
	for (size_t i = 0; i < nr; i++) {
		size_t lo = 0, hi = nb;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (bounds[mid] < rs[i].lo)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t j = lo; j < nb && bounds[j] < rs[i].hi; j++)
			owner[j] = rs[i].node;
	}
	/* Merge neighbours with the same owner. */
	size_t k = 0;
	for (size_t i = 0; i < nb; i++) {
		if (k && owner[k - 1] == owner[i])
			continue;
		if (!k && owner[i] == SYMZ_NONE)
			continue;
		bounds[k] = bounds[i];
		owner[k] = owner[i];
		k++;
	}
	f->seg_addr = bounds;
	f->seg_node = owner;
	f->nseg = k;
	b->stats->scope_segments = k;
	return 0;
}

static size_t put_uleb(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		p[n++] = c | (v ? 0x80 : 0);
	} while (v);
	return n;
}

static size_t put_sleb(uint8_t *p, int64_t v)
{
	size_t n = 0;
	for (;;) {
		uint8_t c = v & 0x7f;
		v >>= 7; /* arithmetic shift (gnu11) */
		bool done = (v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40));
		p[n++] = c | (done ? 0 : 0x80);
		if (done)
			return n;
	}
}

struct lines_out {
	uint64_t *blk_addr;
	uint32_t *blk_off;
	size_t nblocks;
	uint8_t *data;
	size_t size;
	uint32_t entries;
};

static int encode_lines(struct builder *b, struct lines_out *o, struct err *e)
{
	struct row *rows = b->rows.data;
	size_t n = b->rows.len;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_row);
	/* Collapse: the last row at each address; drop rows equal to the one before. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && rows[i + 1].addr == rows[i].addr)
			continue;
		if (k && rows[k - 1].file == rows[i].file && rows[k - 1].line == rows[i].line &&
		    rows[k - 1].column == rows[i].column)
			continue;
		if (!k && rows[i].file == 0)
			continue;
		rows[k++] = rows[i];
	}
	b->stats->line_rows = k;
	size_t nblocks = (k + SYMZ_LINE_BLOCK - 1) / SYMZ_LINE_BLOCK;
	o->blk_addr = malloc((nblocks ? nblocks : 1) * sizeof(uint64_t));
	o->blk_off = malloc((nblocks ? nblocks : 1) * sizeof(uint32_t));
	o->data = malloc(k * 40 + 1); /* 4 varints of at most 10 bytes */
	if (!o->blk_addr || !o->blk_off || !o->data)
		return err_set(e, ENOMEM, "out of memory");
	size_t off = 0;
	int64_t prev_line = 0;
	uint64_t prev_addr = 0;
	for (size_t i = 0; i < k; i++) {
		if (i % SYMZ_LINE_BLOCK == 0) {
			if (off > UINT32_MAX)
				return err_set(e, EFBIG, "line table too large for the index");
			o->blk_addr[i / SYMZ_LINE_BLOCK] = rows[i].addr;
			o->blk_off[i / SYMZ_LINE_BLOCK] = (uint32_t)off;
			prev_line = 0;
			prev_addr = rows[i].addr;
		}
		off += put_uleb(o->data + off, rows[i].addr - prev_addr);
		off += put_uleb(o->data + off, rows[i].file);
		if (rows[i].file) {
			off += put_sleb(o->data + off, (int64_t)rows[i].line - prev_line);
			off += put_uleb(o->data + off, rows[i].column);
			prev_line = rows[i].line;
		}
		prev_addr = rows[i].addr;
	}
	o->nblocks = nblocks;
	o->size = off;
	o->entries = (uint32_t)k;
	return 0;
}

static size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

static int serialize(struct builder *b, const struct elf_object *obj, uint32_t flags,
		     struct symz_index **out, struct err *e)
{
	struct flat f = {0};
	struct lines_out lo = {0};
	int r = flatten_scopes(b, &f, e);
	if (!r)
		r = encode_lines(b, &lo, e);
	if (r)
		goto done;
	size_t strs_len;
	const char *strs = hashmap_arena(&b->strs, &strs_len);
	const void *src[SYMZ_SEC_COUNT] = {
		strs, b->files.data, b->nodes.data, f.seg_addr, f.seg_node,
		lo.blk_addr, lo.blk_off, lo.data,
	};
	size_t len[SYMZ_SEC_COUNT] = {
		strs_len, b->files.len * 4, b->nodes.len * sizeof(struct symz_node),
		f.nseg * 8, f.nseg * 4, lo.nblocks * 8, lo.nblocks * 4, lo.size,
	};
	size_t total = align8(sizeof(struct symz_header));
	for (int i = 0; i < SYMZ_SEC_COUNT; i++)
		total = align8(total + len[i]);
	uint8_t *buf = calloc(1, total);
	if (!buf) {
		r = err_set(e, ENOMEM, "out of memory");
		goto done;
	}
	struct symz_header *h = (void *)buf;
	memcpy(h->magic, SYMZ_MAGIC, 8);
	h->version = SYMZ_VERSION;
	h->header_size = sizeof(*h);
	h->file_size = total;
	h->flags = flags;
	h->line_entries = lo.entries;
	h->build_id_len = (uint8_t)obj->build_id_len;
	memcpy(h->build_id, obj->build_id, obj->build_id_len);
	size_t pos = align8(sizeof(*h));
	for (int i = 0; i < SYMZ_SEC_COUNT; i++) {
		h->sec[i].offset = pos;
		h->sec[i].size = len[i];
		if (len[i])
			memcpy(buf + pos, src[i], len[i]);
		pos = align8(pos + len[i]);
	}
	struct symz_index *x = NULL;
	r = symz_index_open_mem(buf, total, &x, e);
	if (r) {
		free(buf);
		goto done;
	}
	x->owned = buf;
	x->stats = *b->stats;
	x->stats.index_bytes = total;
	*out = x;
done:
	free(f.seg_addr);
	free(f.seg_node);
	free(lo.blk_addr);
	free(lo.blk_off);
	free(lo.data);
	return r;
}

static void builder_free(struct builder *b)
{
	hashmap_free(&b->strs);
	vec_free(&b->files);
	hashmap_free(&b->file_by_str);
	hashmap_free(&b->file_by_ptr);
	hashmap_free(&b->name_by_ptr);
	vec_free(&b->name_pairs);
	vec_free(&b->nodes);
	vec_free(&b->ranges);
	vec_free(&b->rows);
	free(b->code);
	free(b->syms);
	if (b->mini_elf)
		elf_end(b->mini_elf);
	free(b->mini_image);
}

/* Executable sections of the object (section headers survive in debug files
 * with their addresses, so either file will do). */
static int collect_code(struct builder *b, Elf *elf)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t n = 0, cap = 0;
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_EXECINSTR) ||
		    !(sh.sh_flags & SHF_ALLOC) || sh.sh_size == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct code_range *nc = realloc(b->code, cap * sizeof(*nc));
			if (!nc)
				return -ENOMEM;
			b->code = nc;
		}
		b->code[n].lo = sh.sh_addr;
		b->code[n].hi = sh.sh_addr + sh.sh_size;
		n++;
	}
	b->ncode = n;
	return 0;
}

/* go_only: leave DWARF out (it is still the source of the symbols). */
static int build_index(struct elf_object *obj, struct elf_object *dbg, struct elf_object *alt,
		       bool go_only, struct symz_stats *stats, struct symz_index **out,
		       struct err *e)
{
	struct builder b;
	memset(&b, 0, sizeof(b));
	vec_init(&b.files, sizeof(uint32_t));
	vec_init(&b.name_pairs, sizeof(uint32_t));
	vec_init(&b.nodes, sizeof(struct symz_node));
	vec_init(&b.ranges, sizeof(struct range));
	vec_init(&b.rows, sizeof(struct row));
	b.stats = stats;
	hashmap_init(&b.strs);
	hashmap_init(&b.file_by_str);
	hashmap_init(&b.file_by_ptr);
	hashmap_init(&b.name_by_ptr);
	uint64_t empty = 0; /* "" at offset 0: str_add's answer for no string */
	if (hashmap_find(&b.strs, "", 0, &empty, true) < 0)
		return err_set(e, ENOMEM, "out of memory");
	uint64_t t0 = now_ns();
	int r = 0;
	uint32_t flags = 0;
	Dwarf *dw = NULL, *altdw = NULL;
	if (collect_code(&b, obj->elf) || (b.ncode == 0 && dbg && collect_code(&b, dbg->elf))) {
		r = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	/* Symbols: the debug file's full .symtab if there is one, else the object's. */
	if ((dbg && dbg != obj && collect_syms(&b, dbg->elf)) ||
	    (b.nsyms == 0 && collect_syms(&b, obj->elf))) {
		r = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	/* No full .symtab anywhere: MiniDebugInfo's, beside .dynsym. */
	GElf_Shdr ignored_sh;
	if (!symtab_of(obj->elf, false, &ignored_sh) &&
	    !(dbg && dbg != obj && symtab_of(dbg->elf, false, &ignored_sh))) {
		struct err me = {{0}};
		if ((r = add_minidebuginfo(&b, obj->elf, &me)) < 0) {
			r = err_set(e, -r, "%s: %s", obj->name, me.msg);
			goto out;
		}
	}
	if (dbg && !go_only) {
		dw = dwarf_begin_elf(dbg->elf, DWARF_C_READ, NULL);
		if (!dw) {
			r = err_set(e, EINVAL, "%s: cannot read DWARF: %s", dbg->name,
				    dwarf_errmsg(-1));
			goto out;
		}
		if (alt) {
			altdw = dwarf_begin_elf(alt->elf, DWARF_C_READ, NULL);
			if (!altdw) {
				r = err_set(e, EINVAL, "%s: cannot read DWARF: %s", alt->name,
					    dwarf_errmsg(-1));
				goto out;
			}
			dwarf_setalt(dw, altdw);
		}
		r = add_dwarf(&b, dw, e);
		if (r)
			goto out;
		flags |= SYMZ_F_HAS_DWARF;
	}
	/* Go: .gopclntab when there is no DWARF (Go's DWARF, when kept,
	 * describes the same functions and inline trees). */
	struct go_pclntab go;
	if (!(flags & SYMZ_F_HAS_DWARF)) {
		r = go_pclntab_open_elf(&go, obj, e);
		if (r == 0)
			r = add_gopclntab(&b, &go, e);
		if (r && r != -ENODATA)
			goto out;
		if (r == 0)
			flags |= SYMZ_F_HAS_GOPCLNTAB;
		r = 0;
	}
	r = add_symtab(&b, e);
	if (r)
		goto out;
	if (stats->symbols)
		flags |= SYMZ_F_HAS_SYMTAB;
	if (!(flags & (SYMZ_F_HAS_DWARF | SYMZ_F_HAS_GOPCLNTAB)) && !stats->symbols) {
		r = err_set(e, ENODATA, "%s: no DWARF, no .gopclntab and no symbol table", obj->name);
		goto out;
	}
	r = serialize(&b, obj, flags, out, e);
	if (!r)
		(*out)->stats.build_ms = (double)(now_ns() - t0) / 1e6;
out:
	if (dw)
		dwarf_end(dw);
	if (altdw)
		dwarf_end(altdw);
	builder_free(&b);
	return r;
}

int symz_build_core(struct elf_object *obj, struct elf_object *dbg, struct elf_object *alt,
		    struct symz_stats *stats, struct symz_index **out, struct err *e)
{
	int r = build_index(obj, dbg, alt, false, stats, out, e);
	if (r || !dbg || !((*out)->hdr->flags & SYMZ_F_HAS_DWARF) ||
	    !elf_object_has_data(obj, ".gopclntab", 16))
		return r;
	/* A Go binary with DWARF: .gopclntab too, and the more complete of the
	 * two is kept (more functions, then more inline frames).  Go's DWARF
	 * and .gopclntab usually describe the same functions, and .gopclntab
	 * the same inline trees and names as the Go tools show them
	 * (docs/go.md). */
	struct symz_stats gs = *stats;
	gs.functions = gs.inline_nodes = gs.symbols = gs.scope_segments = gs.line_rows = 0;
	gs.index_bytes = 0;
	struct symz_index *gi = NULL;
	struct err ge = {{0}};
	if (build_index(obj, dbg, alt, true, &gs, &gi, &ge) < 0)
		return 0; /* the DWARF index stands */
	if (gs.functions > stats->functions ||
	    (gs.functions == stats->functions && gs.inline_nodes > stats->inline_nodes)) {
		gi->stats.build_ms += (*out)->stats.build_ms; /* both builds */
		*stats = gs;
		symz_index_free(*out);
		*out = gi;
	} else {
		symz_index_free(gi);
	}
	return 0;
}
