/* symbolizer: (build-ID, file address) -> function, file, line, column and
 * inline chain, answered from a compact per-build-ID index.
 *
 * The index (format in symbolizer/symz_format.h, docs/symbolization-index-format.md)
 * is built once from an ELF object and its DWARF with libdw, serialized, and
 * from then on opened read-only (mmap or a caller's buffer).  A built index
 * and an opened one are the same thing: building produces the serialized
 * bytes and opens them, so every lookup goes through one reader.
 *
 * Addresses are *file addresses* (docs/architecture.md, "Addresses"): the address in the ELF
 * object's own virtual address space, bias already removed.  Normalizing a
 * process address into one is the caller's job (agent); symbolizing it is ours.
 *
 * Thread safety: no global mutable state.  Lookups on one index may run from
 * many threads at once; building indexes in parallel is fine. */
#ifndef SYMBOLIZER_H
#define SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct symz_index;

struct symz_build_options {
	/* Root of the separate-debug tree: <dir>/.build-id/xx/yyyy.debug and
	 * <dir>/<binary's directory>/<debuglink>.  NULL: /usr/lib/debug. */
	const char *debug_dir;
	/* An explicit separate debug file (path), tried before any search. */
	const char *debug_file;
	/* Directory of the ELF (for .gnu_debuglink next to it); NULL when the
	 * ELF came from memory without a path. */
	const char *elf_dir;
	/* Do not look for a separate debug file / dwz alt file on disk. */
	bool no_search;
	/* Largest decompressed section read (-EFBIG beyond); 0 = the
	 * default of common.h (ELF_MAX_DECOMPRESSED). */
	uint64_t max_decompressed;
};

/* Where the names came from, for reports. */
struct symz_stats {
	uint64_t functions, inline_nodes, symbols, scope_segments, line_rows;
	uint64_t dwarf_bytes; /* uncompressed .debug_* bytes used */
	uint64_t index_bytes;
	double build_ms;
	char debug_file[512]; /* the file DWARF came from ("" = none) */
	char alt_file[512];   /* the dwz supplementary file ("" = none) */
	bool minidebuginfo;   /* symbols from .gnu_debugdata (MiniDebugInfo) too */
};

/* Build an index for the ELF at `path` (symbols + DWARF from it or from its
 * separate debug file).  An object with neither DWARF nor a symbol table is
 * an error (-ENODATA). */
int symz_index_build_path(const char *path, const struct symz_build_options *opt,
			  struct symz_index **out, struct err *e);
/* The same for images in memory: `elf` is the object (executable or debug
 * file); `debug` (may be NULL) its separate debug file; `alt` (may be NULL) the
 * dwz supplementary file.  The buffers are only read during the call. */
int symz_index_build_mem(const void *elf, size_t elf_size, const void *debug, size_t debug_size,
			 const void *alt, size_t alt_size, const struct symz_build_options *opt,
			 struct symz_index **out, struct err *e);

/* Open a serialized index (validated completely: lookups never read out of
 * bounds afterwards).  _open maps the file; _open_mem uses (does not copy)
 * the caller's buffer, which must outlive the index. */
int symz_index_open(const char *path, struct symz_index **out, struct err *e);
int symz_index_open_mem(const void *data, size_t size, struct symz_index **out, struct err *e);
void symz_index_free(struct symz_index *idx);

/* The serialized bytes (valid while idx lives) and writing them atomically. */
const void *symz_index_data(const struct symz_index *idx, size_t *size);
int symz_index_write(const struct symz_index *idx, const char *path, struct err *e);
const struct symz_stats *symz_index_stats(const struct symz_index *idx); /* built ones only */
/* Build-ID of the object the index describes (len 0: none). */
const uint8_t *symz_index_build_id(const struct symz_index *idx, size_t *len);

/* The lowest address a function of the index covers (false: none).  In a
 * vmlinux that is _text (the startup code), the base of kernel frames. */
bool symz_index_first_function(const struct symz_index *idx, uint64_t *addr);

/* What a frame's address is (docs/architecture.md, "Addresses"): a leaf PC
 * is looked up as is; a return address points after the call, so address-1
 * is looked up; ADJUSTED means the caller already subtracted.  Every lookup
 * (DWARF and symbol indexes, JIT maps) takes the kind and applies the rule
 * through symz_lookup_pc, its one home. */
enum symz_frame_kind {
	SYMZ_LEAF_PC = 0,
	SYMZ_RETURN_ADDRESS = 1,
	SYMZ_ADJUSTED = 2,
};

struct symz_frame {
	const char *function;     /* demangled; NULL = unknown */
	const char *linkage_name; /* as in DWARF/symtab before demangling; NULL = none */
	const char *file;         /* NULL = unknown */
	uint32_t line;            /* 0 = unknown */
	uint32_t column;          /* 0 = unknown */
	uint32_t decl_line;       /* line of the function's declaration; 0 = unknown */
	uint64_t entry;           /* function's DW_AT_low_pc / symbol value; 0 = unknown */
	bool inlined;             /* this frame was inlined into the next one */
	bool from_symtab;         /* name from the ELF symbol table (no DWARF function) */
};

/* The JSON of frames, as `symbolize --json` prints them and POST /symbolize
 * answers: [{"function":…,"file":…,"line":…,"column":…,"inlined":…},…],
 * unknown values null.  Output goes through w(ctx, bytes, n). */
typedef void (*symz_write_fn)(void *ctx, const char *p, size_t n);
enum {
	SYMZ_JSON_BASENAMES = 1, /* file names without their directories */
	SYMZ_JSON_VERBOSE = 2,   /* also linkage_name, start_address, decl_line, from_symtab */
};
void symz_write_frames_json(symz_write_fn w, void *ctx, const struct symz_frame *fr, size_t n,
			    unsigned flags);
/* A JSON string (escaped, quoted), or null for NULL. */
void symz_write_json_string(symz_write_fn w, void *ctx, const char *s);

/* The address to look up for a frame of this kind.  False for a return
 * address of 0: no call precedes it, nothing to name. */
bool symz_lookup_pc(uint64_t addr, enum symz_frame_kind kind, uint64_t *pc);

/* Symbolize one address.  Fills at most max frames, innermost first, and
 * returns how many frames the address has (may exceed max), 0 when nothing
 * is known about it.  Strings point into the index. */
size_t symz_lookup(const struct symz_index *idx, uint64_t addr, enum symz_frame_kind kind,
		   struct symz_frame *frames, size_t max);

/* Demangle C++ (Itanium) and Rust names; returns a malloc'ed string or NULL
 * when `name` is not mangled.  Strips ELF symbol versions (@VER, @@VER). */
char *symz_demangle(const char *name);

/* ---- JIT code (absolute runtime addresses of one process) ---- */
struct symz_jit_map;
struct symz_jit_entry {
	uint64_t start, size;
	const char *name;
};
/* /tmp/perf-PID.map: "START SIZE name" per line, hex with or without 0x.
 * Malformed lines are skipped (counted), a partial last line is ignored;
 * overlapping entries are resolved last-writer-wins (later lines win). */
int symz_perf_map_parse(const char *text, size_t size, struct symz_jit_map **out,
			size_t *bad_lines, struct err *e);
int symz_perf_map_load(const char *path, struct symz_jit_map **out, struct err *e);
/* jit-PID.dump (JIT_CODE_LOAD / JIT_CODE_MOVE records; truncated tail ok). */
int symz_jitdump_parse(const uint8_t *data, size_t size, struct symz_jit_map **out,
		       struct err *e);
int symz_jitdump_load(const char *path, struct symz_jit_map **out, struct err *e);
/* The entry holding the address of a frame of this kind (NULL: none). */
const struct symz_jit_entry *symz_jit_lookup(const struct symz_jit_map *m, uint64_t addr,
					     enum symz_frame_kind kind);
size_t symz_jit_count(const struct symz_jit_map *m);
void symz_jit_free(struct symz_jit_map *m);

/* ---- kernel frames (a kallsyms snapshot, docs/profiler-agent.md) ----
 * The snapshot is /proc/kallsyms with kernel addresses made relative to
 * _text and module addresses relative to their module's base, in one of two
 * text forms:
 *   text:  "OFFSET TYPE NAME" or "OFFSET TYPE NAME\t[MODULE]" per line, in
 *          any order (what agents before the delta form sent);
 *   delta: the first line KALLSYMS_DELTA_MAGIC (common/proc.h), then the kernel's
 *          symbols, then per module a line "[MODULE]" and its symbols, each
 *          symbol "DELTA TYPE NAME" with DELTA the hex distance from the
 *          section's previous symbol (the first: from 0).  Sections list
 *          symbols by offset; of equal offsets, in /proc/kallsyms order.
 * Both name every frame alike.  A malformed line is an error naming it
 * (the agent writes the snapshot; anything else is not one).  Names are
 * chosen as perf chooses them from kallsyms. */
struct symz_kallsyms;
int symz_kallsyms_parse(const char *text, size_t size, struct symz_kallsyms **out,
			struct err *e);
/* The symbol holding offset in module (NULL or "": the kernel), NULL when
 * none. */
const char *symz_kallsyms_lookup(const struct symz_kallsyms *k, const char *module,
				 uint64_t offset, enum symz_frame_kind kind);
size_t symz_kallsyms_count(const struct symz_kallsyms *k);
void symz_kallsyms_free(struct symz_kallsyms *k);

/* ---- symbolizing a pprof profile (pprof/pprof.h) ----
 * In place: Location.address and the Mapping are kept; Function and Line
 * (inline frames as extra lines, innermost first) are written and the
 * mappings' has_* flags set.  Two kinds of mappings are named:
 *   - a mapping with a build-ID: file addresses, looked up in the
 *     symbolization index the index resolver returns;
 *   - a mapping named "perf-map:<sha256>" (JIT code, docs/profiler-agent.md):
 *     runtime addresses, looked up in the perf-map snapshot with that
 *     SHA-256 that the perf-map resolver returns;
 *   - kernel mappings "[kernel.kallsyms]" and "[kmod:NAME]" of a profile
 *     whose comment "profiler-agent.kernel ... kallsyms=<sha256>" names a
 *     kallsyms snapshot: offsets from _text (or the module's base).  The
 *     kernel's are named from its vmlinux when the index resolver has one
 *     for the kernel's build-ID (DWARF: file, line, inline frames), else,
 *     and modules always, from the snapshot the kallsyms resolver returns. */
struct pprof_profile;

#define SYMZ_PERF_MAP_PREFIX "perf-map:"
#define SYMZ_KERNEL_MAPPING "[kernel.kallsyms]"
#define SYMZ_KMOD_PREFIX "[kmod:"
#define SYMZ_KERNEL_COMMENT "profiler-agent.kernel "

/* Finds the index for a build-ID (hex).  Return 0 and *idx, -ENOENT when the
 * debuginfo is missing (other errors are reported as missing too, with e).
 * *idx stays owned by the resolver and valid until symbolizing returns. */
typedef int (*symz_index_resolver)(void *ctx, const char *build_id, const char *filename,
				   const struct symz_index **idx, struct err *e);
/* Finds the perf-map snapshot whose content has this SHA-256 (lowercase
 * hex).  Same contract as the index resolver. */
typedef int (*symz_perf_map_resolver)(void *ctx, const char *sha256,
				      const struct symz_jit_map **map, struct err *e);

/* Finds the kallsyms snapshot with this SHA-256.  Same contract. */
typedef int (*symz_kallsyms_resolver)(void *ctx, const char *sha256,
				      const struct symz_kallsyms **k, struct err *e);

enum symz_pprof_kind_policy {
	SYMZ_PPROF_KIND_POSITION = 0, /* pprof_location_kinds() */
	SYMZ_PPROF_KIND_AS_IS = 1,    /* every address looked up as is (what pprof does) */
};

struct symz_pprof_options {
	bool force; /* re-symbolize locations that already have lines */
	enum symz_pprof_kind_policy kind;
	symz_index_resolver resolve_index;       /* NULL: build-ID mappings left alone */
	symz_perf_map_resolver resolve_perf_map; /* NULL: JIT mappings left alone (counted
						    as no_build_id) */
	symz_kallsyms_resolver resolve_kallsyms; /* NULL: kernel mappings left alone */
	void *ctx;                               /* passed to all three */
};

/* Something a profile needed and did not get. */
struct symz_pprof_missing {
	char build_id[BUILD_ID_HEX_MAX]; /* or "perf-map:<sha256>" when perf_map,
					    "kallsyms:<sha256>" when kallsyms */
	char filename[256];
	bool perf_map;
	bool kallsyms;
	size_t locations;
	char reason[512];
};

struct symz_pprof_report {
	size_t locations;    /* in the profile */
	size_t symbolized;   /* lines written by us (JIT frames included) */
	size_t jit;          /* of which JIT frames named from perf maps */
	size_t kernel;       /* of which kernel frames named from kallsyms */
	size_t kept;         /* already symbolized, left alone (no force) */
	size_t unknown;      /* debuginfo or perf map present, address not covered */
	size_t missing;      /* debuginfo or perf map missing: left as they were */
	size_t no_build_id;  /* no mapping, or a mapping with neither build-ID nor perf map */
	struct symz_pprof_missing *missing_ids; /* malloc'ed; free with symz_pprof_report_free */
	size_t n_missing_ids;
};

int symz_pprof_symbolize(struct pprof_profile *p, const struct symz_pprof_options *opt,
			 struct symz_pprof_report *rep, struct err *e);
void symz_pprof_report_free(struct symz_pprof_report *rep);

#endif
