/* The symbolization index, version 1: one little-endian, mmap-able file per
 * build-ID.  docs/symbolization-index-format.md describes it for readers in
 * other languages; this header is the definition.
 *
 * Idea: two sorted partitions of the address space answer every lookup with
 * two binary searches.
 *   - The scope partition maps each address to the *deepest* code scope that
 *     contains it: an inlined_subroutine, else the concrete subprogram, else
 *     an ELF symbol.  Scopes (nodes) point to their parent, so the inline
 *     chain is a walk up; each node carries its call_file/line/column, which
 *     is the location shown for its *caller's* frame: DW_AT_call_file/line
 *     describe where the inlined body was called from, not the body.
 *   - The line partition maps each address to the line-table row in force
 *     (file, line, column), stored in blocks of varint-coded deltas.
 * A segment runs from its start to the next segment's start; gaps are
 * explicit (node SYMZ_NONE / file 0), so nothing extends past real code. */
#ifndef SYMZ_FORMAT_H
#define SYMZ_FORMAT_H

#include <stdint.h>

#define SYMZ_MAGIC "SYMZIDX"   /* 8 bytes with the NUL */
#define SYMZ_VERSION 1
#define SYMZ_NONE 0xffffffffu
#define SYMZ_LINE_BLOCK 32     /* line entries per block */

enum symz_section_id {
	SYMZ_SEC_STRINGS = 0,  /* NUL-terminated strings; offset 0 is "" */
	SYMZ_SEC_FILES,        /* uint32_t[nfiles]: string offset of each path */
	SYMZ_SEC_NODES,        /* struct symz_node[nnodes] */
	SYMZ_SEC_SCOPE_ADDR,   /* uint64_t[nseg]: segment starts, strictly increasing */
	SYMZ_SEC_SCOPE_NODE,   /* uint32_t[nseg]: node index or SYMZ_NONE (gap) */
	SYMZ_SEC_LINE_ADDR,    /* uint64_t[nblocks]: address of each block's first entry */
	SYMZ_SEC_LINE_OFF,     /* uint32_t[nblocks]: offset of each block in LINE_DATA */
	SYMZ_SEC_LINE_DATA,    /* varint-coded line entries, see below */
	SYMZ_SEC_COUNT
};

struct symz_section {
	uint64_t offset; /* from the start of the file, 8-aligned */
	uint64_t size;   /* bytes */
};

struct symz_header {
	char magic[8];          /* "SYMZIDX\0" */
	uint32_t version;       /* SYMZ_VERSION; readers refuse others */
	uint32_t header_size;   /* sizeof(struct symz_header) */
	uint64_t file_size;     /* whole index, for truncation checks */
	uint32_t flags;         /* SYMZ_F_* */
	uint32_t line_entries;  /* total entries in LINE_DATA */
	uint8_t build_id_len;   /* 0: the object had no NT_GNU_BUILD_ID */
	uint8_t reserved[7];
	uint8_t build_id[64];
	struct symz_section sec[SYMZ_SEC_COUNT];
};
_Static_assert(sizeof(struct symz_header) == 8 + 4 + 4 + 8 + 4 + 4 + 8 + 64 + 16 * SYMZ_SEC_COUNT,
	       "symz_header has no padding");

#define SYMZ_F_HAS_DWARF  1u /* built from DWARF (else symbol table only) */
#define SYMZ_F_HAS_SYMTAB 2u
#define SYMZ_F_HAS_GOPCLNTAB 4u /* Go functions, lines and inline trees from .gopclntab */

/* A code scope.  Node 0.. in any order; parent always refers to a node. */
struct symz_node {
	uint32_t name;        /* string: demangled name ("" unknown) */
	uint32_t linkage;     /* string: linkage (mangled) name ("" = same as name) */
	uint32_t parent;      /* node this one is inlined into, SYMZ_NONE for a function */
	uint32_t call_file;   /* file index of the call site (inlined nodes), SYMZ_NONE */
	uint32_t call_line;   /* 0 = unknown */
	uint32_t call_column; /* 0 = unknown */
	uint32_t decl_line;   /* DW_AT_decl_line of the function, 0 = unknown */
	uint32_t flags;       /* SYMZ_N_* */
	uint64_t entry;       /* DW_AT_low_pc / symbol value, 0 = unknown */
};
_Static_assert(sizeof(struct symz_node) == 40, "symz_node layout");

#define SYMZ_N_INLINED 1u /* DW_TAG_inlined_subroutine */
#define SYMZ_N_SYMTAB  2u /* from the ELF symbol table, not DWARF */

/* LINE_DATA: block b starts at LINE_OFF[b] and holds up to SYMZ_LINE_BLOCK
 * entries (the last block may hold fewer; blocks end where the next begins or
 * at the end of the section).  Each entry:
 *   uleb128 addr_delta   (from the previous entry; 0 for the block's first,
 *                         whose address is LINE_ADDR[b])
 *   uleb128 file         (file index + 1; 0 = gap: no line information)
 *   if file != 0:
 *     sleb128 line_delta (from the previous non-gap entry in the block, or
 *                         from 0 for the first)
 *     uleb128 column     (0 = unknown)
 * An entry applies from its address to the next entry's address. */

#endif
