/* ELF classification for scanning, uploads and upstream validation. */
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/store.h"

#include <string.h>

bool build_id_valid(const char *s, size_t len)
{
	if (len < 2 || len % 2 || len > 2 * BUILD_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Loadable code present in the file itself: separate debug files keep the
 * program headers but their sections are NOBITS. */
static bool has_code(struct elf_object *o)
{
	struct elf_segment segs[32];
	struct err e = { { 0 } };
	int n = elf_object_segments(o, segs, ARRAY_SIZE(segs), &e);
	bool x_load = false;
	for (int i = 0; i < n; i++)
		if ((segs[i].flags & PF_X) && segs[i].filesz > 0 &&
		    segs[i].offset + segs[i].filesz <= o->image_size)
			x_load = true;
	if (!x_load)
		return false;
	size_t shnum = 0;
	if (elf_getshdrnum(o->elf, &shnum) == 0 && shnum > 1)
		return elf_object_has_data(o, ".text", 1) || elf_object_has_data(o, ".init", 1) ||
		       elf_object_has_data(o, ".plt", 1);
	return true;
}

void elf_info_read(struct elf_object *o, struct elf_info *info)
{
	memset(info, 0, sizeof(*info));
	if (o->build_id_len)
		build_id_to_hex(o->build_id, o->build_id_len, info->build_id);
	if (elf_object_has_data(o, ".debug_info", 1))
		info->debuginfo_quality = QUALITY_DWARF;
	else if (elf_object_has_data(o, ".symtab", 1))
		info->debuginfo_quality = QUALITY_SYMTAB;
	info->executable = has_code(o);

	struct section s;
	struct err e = { { 0 } };
	/* A debuglink is a file name and a CRC: a compressed one claiming
	 * more is hostile, and this runs outside the memory budget. */
	uint64_t saved_cap = o->max_decompressed;
	o->max_decompressed = SMALL_SECTION_MAX;
	int rc = elf_object_section(o, ".gnu_debuglink", &s, &e);
	o->max_decompressed = saved_cap;
	if (rc == 0 && s.found && s.size >= 8) {
		size_t len = strnlen((const char *)s.data, s.size);
		size_t crc_off = (len + 4) & ~(size_t)3;
		if (len > 0 && len < sizeof(info->debuglink) && crc_off + 4 <= s.size) {
			memcpy(info->debuglink, s.data, len);
			info->debuglink[len] = 0;
			memcpy(&info->debuglink_crc, s.data + crc_off, 4);
			if (strchr(info->debuglink, '/'))
				info->debuglink[0] = 0; /* a name, never a path */
		}
		section_free(&s);
	}
}
