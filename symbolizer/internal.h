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

/* MiniDebugInfo (minidebuginfo.c).  _decompress: the xz stream of a
 * .gnu_debugdata section, bounded; *out malloc'ed.  _open: the inner ELF of
 * outer's .gnu_debugdata: 1 with *inner (elf_memory over *image, which the
 * caller frees after elf_end), 0 when there is none, -errno with e when it
 * is broken. */
#include <libelf.h>
int symz_minidebuginfo_decompress(const void *xz, size_t size, uint8_t **out, size_t *out_size,
				  struct err *e);
int symz_minidebuginfo_open(Elf *outer, uint8_t **image, Elf **inner, struct err *e);

#endif
