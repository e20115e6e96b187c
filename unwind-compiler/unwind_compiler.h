/* unwind-compiler: ELF call-frame information -> compact unwind table.
 *
 * The library behind `unwind-compile`, the server's /buildid/<id>/unwind and
 * the agent's local fallback.  Every function is re-entrant: no global
 * mutable state, so many threads may compile at once. */
#ifndef UNWIND_COMPILER_H
#define UNWIND_COMPILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "unwind-compiler/unwind_table.h"

struct unwind_stats {
	uint64_t cfi_rows;         /* rows of the interpreted DWARF CFI */
	uint64_t fdes;             /* FDEs used */
	uint64_t fde_gaps;         /* FDE ends where no other FDE starts */
	uint64_t unsupported_rows; /* CFI rows that became UNSUPPORTED */
	uint64_t entries, rules, pages, table_bytes;
	double compile_ms;
};

struct unwind_compile_options {
	/* Also read .debug_frame for code .eh_frame does not cover (default
	 * on); set false to compile .eh_frame alone. */
	bool no_debug_frame;
	/* Largest decompressed section read (-EFBIG beyond); 0 = the
	 * default of common.h (ELF_MAX_DECOMPRESSED). */
	uint64_t max_decompressed;
};

/* A compiled table: `data` holds the serialized format of unwind_table.h. */
struct unwind_table {
	uint8_t *data;
	size_t size;
	struct unwind_stats stats;
};

/* Compile an opened ELF object; a file path; or an ELF image in memory.
 * Returns 0 or -errno with a one-line reason in *e.  An object with no CFI
 * at all is an error (-ENODATA). */
int unwind_compile(struct elf_object *o, const struct unwind_compile_options *opt,
		   struct unwind_table *out, struct err *e);
int unwind_compile_file(const char *path, const struct unwind_compile_options *opt,
			struct unwind_table *out, struct err *e);
int unwind_compile_mem(const void *image, size_t size, const struct unwind_compile_options *opt,
		       struct unwind_table *out, struct err *e);
void unwind_table_free(struct unwind_table *t);

/* A read-only view of a serialized table (e.g. mmap'ed or fetched from the
 * server).  unwind_table_open() validates everything a reader relies on, so
 * lookups on an opened view never read out of bounds. */
struct unwind_view {
	const struct unwind_table_header *hdr;
	const struct unwind_rule *rules;
	const uint32_t *pages;
	const uint8_t *entries;
};
int unwind_table_open(struct unwind_view *v, const void *data, size_t size, struct err *e);

/* The rule in force at file address pc, or NULL where the table has no row
 * (outside every page, or before the first entry).  *start and *end (either
 * may be NULL) receive the address range of that row. */
const struct unwind_rule *unwind_table_lookup(const struct unwind_view *v, uint64_t pc,
					      uint64_t *start, uint64_t *end);

/* Print one row per line in address order (docs/unwind-table-format.md). */
void unwind_table_dump(const struct unwind_view *v, FILE *out);
/* Format a rule of a table of architecture arch (UNWIND_ARCH_*) in the dump
 * notation: "CFA=RSP+16: RBP=[CFA-16]: RIP=[CFA-8]" on x86-64,
 * "CFA=SP+48: X29=[CFA-48]: X30=[CFA-40]" on aarch64. */
void unwind_rule_format(const struct unwind_rule *r, uint16_t arch, char *buf, size_t size);

/* Compare every row of the table with libdw's dwarf_cfi_addrframe for the
 * same object.  Prints each difference (at most max_report) to `report`;
 * returns the number of differing rows, or -errno. */
long unwind_verify(struct elf_object *o, const struct unwind_view *v, FILE *report,
		   unsigned max_report, uint64_t *checked_rows, struct err *e);

#endif
