/* Go's .gopclntab: the function table every Go binary carries, even
 * stripped (`-ldflags="-s -w"`), because the runtime needs it for its own
 * tracebacks.  One reader for the two users: unwind-compiler/ turns its
 * per-function SP deltas into unwind rows, symbolizer/ turns its names,
 * file/line tables and inline trees into symbolization indexes.
 *
 * Layouts read (docs/go.md has the field tables):
 *   GO_PCLN_118  magic 0xfffffff0, funcdata as pointers       (Go 1.18)
 *   GO_PCLN_119  magic 0xfffffff0, funcdata as u32 offsets    (Go 1.19)
 *   GO_PCLN_120  magic 0xfffffff1, _func.startLine, 16-byte
 *                inlinedCall                                 (Go 1.20, 1.21, 1.22)
 * 1.18 and 1.19 share a magic; the version in .go.buildinfo tells them
 * apart.
 *
 * Everything is untrusted: every offset is bounds-checked against the
 * section, every varint and every pc-value walk is bounded, names are
 * returned only when NUL-terminated inside their table. */
#ifndef COMMON_GOPCLNTAB_H
#define COMMON_GOPCLNTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

enum go_pcln_layout {
	GO_PCLN_118 = 118,
	GO_PCLN_119 = 119,
	GO_PCLN_120 = 120,
};

/* _func.flag bits (runtime/symtab.go). */
#define GO_FUNC_F_TOPFRAME 0x1 /* outermost frame of a stack: goexit, mstart, rt0_go, sigtramp */
#define GO_FUNC_F_SPWRITE  0x2 /* writes SP arbitrarily: pcsp cannot unwind it */
#define GO_FUNC_F_ASM      0x4

/* PCDATA / FUNCDATA table numbers. */
#define GO_PCDATA_INLTREEINDEX 2
#define GO_FUNCDATA_INLTREE    3

/* Read-only memory the funcdata pointers can point into (the inline trees
 * live in go:func.* inside .rodata). */
#define GO_PCLN_MAX_REGIONS 16
struct go_region {
	uint64_t addr;
	const uint8_t *data;
	size_t size;
};

struct go_pclntab {
	const uint8_t *data; /* the whole .gopclntab */
	size_t size;
	uint64_t addr;       /* its file address */
	enum go_pcln_layout layout;
	uint8_t ptr_size, min_lc;
	uint32_t nfunc;
	uint64_t text_start;
	/* Sub-tables as [offset, size) inside data. */
	size_t funcnames, funcnames_size;
	size_t cutab, cutab_size;
	size_t filetab, filetab_size;
	size_t pctab, pctab_size;
	size_t pcln, pcln_size; /* functab followed by the _func records */
	/* moduledata.gofunc: base of 1.19+ funcdata offsets; 0 = unknown
	 * (inline trees are then not read). */
	uint64_t gofunc;
	struct go_region regions[GO_PCLN_MAX_REGIONS];
	unsigned nregions;
};

/* One function, decoded from its _func record. */
struct go_func {
	uint64_t entry, end;   /* [entry, end) file addresses */
	const char *name;      /* "" when unreadable */
	uint32_t pcsp, pcfile, pcln; /* offsets into pctab (0: none) */
	uint32_t cu_offset;
	uint32_t inl_index;    /* pcdata[INLTREEINDEX] offset, 0: none */
	uint64_t inl_tree;     /* address of funcdata[INLTREE], 0: none */
	int32_t start_line;    /* 1.20+, else 0 */
	uint8_t func_id, flag;
};

/* Parse the header of a .gopclntab image at file address `addr`.
 * text_fallback is used when the header's textStart is 0 (PIE binaries
 * whose textStart is filled by a relocation); layout_hint picks between
 * 1.18 and 1.19 for magic 0xfffffff0 (0: assume 1.19).  -EINVAL with a
 * reason for anything malformed, -ENOTSUP for other magics (Go <= 1.17). */
int go_pclntab_open(struct go_pclntab *t, const uint8_t *data, size_t size, uint64_t addr,
		    uint64_t text_fallback, int layout_hint, struct err *e);

/* Find .gopclntab in an ELF object, with the Go version from .go.buildinfo
 * and moduledata.gofunc from .noptrdata.  -ENODATA when there is none. */
int go_pclntab_open_elf(struct go_pclntab *t, struct elf_object *o, struct err *e);

/* Add a region of memory that funcdata may point into. */
void go_pclntab_add_region(struct go_pclntab *t, uint64_t addr, const uint8_t *data, size_t size);

/* Function i (0 <= i < nfunc), in address order; -EINVAL if its record is
 * out of bounds or its range is not increasing. */
int go_pclntab_func(const struct go_pclntab *t, uint32_t i, struct go_func *f, struct err *e);
/* The function containing pc; -ENOENT if none. */
int go_pclntab_find(const struct go_pclntab *t, uint64_t pc, struct go_func *f);

/* Walk one pc-value table of f (pcsp, pcfile, pcln or a pcdata): each call
 * yields the next run [*start, *end) with *value.  Returns 1 for a run, 0
 * at the end, -EINVAL for a table that is malformed or leaves the
 * function. */
struct go_pcvalue_iter {
	const uint8_t *p, *limit;
	uint64_t pc, func_end;
	int32_t value;
	bool first;
	uint8_t quantum;
	uint32_t empty_runs;
};
#define GO_PCVALUE_MAX_EMPTY_RUNS 16
void go_pcvalue_begin(const struct go_pclntab *t, const struct go_func *f, uint32_t off,
		      struct go_pcvalue_iter *it);
int go_pcvalue_next(struct go_pcvalue_iter *it, uint64_t *start, uint64_t *end, int32_t *value);
/* The value at pc (-1 if none, as the runtime does); -EINVAL if malformed. */
int go_pcvalue_at(const struct go_pclntab *t, const struct go_func *f, uint32_t off, uint64_t pc,
		  int32_t *value);

/* Names: a function name by its funcnametab offset, a file by f's per-CU
 * file number.  NULL when out of bounds or not NUL-terminated. */
const char *go_pclntab_name(const struct go_pclntab *t, int64_t nameoff);
const char *go_pclntab_file(const struct go_pclntab *t, const struct go_func *f, int32_t fileno);

/* One inlined call from f's inline tree. */
struct go_inlined_call {
	const char *name;  /* the inlined function */
	uint64_t parent_pc;/* an address in f whose file/line is the call site */
	int32_t parent;    /* index of the enclosing inlined call, < 0: f itself */
	uint8_t func_id;
};
/* Entry ix of f's inline tree; -ENOENT without a tree, -EINVAL if out of bounds. */
int go_pclntab_inlined(const struct go_pclntab *t, const struct go_func *f, int32_t ix,
		       struct go_inlined_call *out);

#endif
