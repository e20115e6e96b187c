/* Source files named by an object's DWARF line tables. */
#ifndef DEBUGINFOD_LITE_SOURCES_H
#define DEBUGINFOD_LITE_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"

/* Remove "." and ".." segments and repeated slashes (RFC 3986 §5.2.4) from
 * an absolute path.  Returns false when ".." would climb above the root or
 * the result does not fit. */
bool path_canonical(const char *in, char *out, size_t size);

/* Does the DWARF of `debug_path` name source file `want` (canonical,
 * absolute)?  Relative names are resolved against the CU's DW_AT_comp_dir.
 * Returns 1 yes, 0 no, -errno when the file cannot be read. */
int dwarf_names_source(const char *debug_path, const char *want, struct err *e);

#endif
