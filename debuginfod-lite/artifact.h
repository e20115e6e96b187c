/* What an ELF file can be served as: its build-ID, whether it is debuginfo
 * (and how good), whether it is an executable, and its .gnu_debuglink. */
#ifndef DEBUGINFOD_LITE_ARTIFACT_H
#define DEBUGINFOD_LITE_ARTIFACT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

struct elf_info {
	char build_id[BUILD_ID_HEX_MAX]; /* "" when the file has no build-ID note */
	int debuginfo_quality;           /* enum artifact_quality as debuginfo */
	bool executable;                 /* has loadable code in the file */
	char debuglink[256];             /* .gnu_debuglink file name, "" if none */
	uint32_t debuglink_crc;
};

/* Sections that hold a name and an ID (.gnu_debuglink, .gnu_debugaltlink)
 * are read with this decompression cap. */
#define SMALL_SECTION_MAX (64u << 10)

/* Classify an opened ELF object.  Never fails on odd files: what cannot be
 * read is simply not claimed. */
void elf_info_read(struct elf_object *o, struct elf_info *info);

/* Is `s` a build-ID as the protocol allows it: lowercase hex, even length,
 * 2..2*BUILD_ID_MAX characters? */
bool build_id_valid(const char *s, size_t len);

#endif
