/* Internal interfaces between the symbolizer's source files. */
#ifndef SYMZ_INTERNAL_H
#define SYMZ_INTERNAL_H

#include "symbolizer/symbolizer.h"

/* Build from opened objects: obj is the ELF (code addresses, symbols); dbg
 * the file with DWARF (may be obj, or NULL for symbols only); alt the dwz
 * supplementary file (may be NULL). */
int symz_build_core(struct elf_object *obj, struct elf_object *dbg, struct elf_object *alt,
		    struct symz_stats *stats, struct symz_index **out, struct err *e);

/* "foo.cold" / "foo.part.0" / "foo.isra.0" / "foo.constprop.0" ... -> malloc'ed
 * "foo"; NULL when the name has no GCC clone suffix. */
char *symz_strip_clone_suffix(const char *name);

#endif
