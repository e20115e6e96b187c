/* --scan: index ELF files found under directories into the store, at start
 * and then periodically (files whose size and mtime did not change are
 * skipped cheaply). */
#ifndef DEBUGINFOD_LITE_SCAN_H
#define DEBUGINFOD_LITE_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "debuginfod-lite/store.h"

struct scan_counts {
	uint64_t files, elf, indexed, unchanged;
};

/* Index one directory tree (or one file). */
int scan_tree(struct store *s, const char *root, struct scan_counts *counts, struct err *e);
/* Index one ELF file; `path` should be canonical. */
int scan_file(struct store *s, const char *path, const struct stat *st, struct scan_counts *c,
	      struct err *e);

#endif
