/* Source lookup through libdw (sources.h). */
#include "debuginfod-lite/sources.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool path_canonical(const char *in, char *out, size_t size)
{
	if (in[0] != '/' || size < 2)
		return false;
	size_t len = 0;
	out[len] = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *seg = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - seg);
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			if (len == 0)
				return false; /* above the root */
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the slash */
			out[len] = 0;
			continue;
		}
		if (len + 1 + n + 1 > size)
			return false;
		out[len++] = '/';
		memcpy(out + len, seg, n);
		len += n;
		out[len] = 0;
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = 0;
	}
	return true;
}

int dwarf_names_source(const char *debug_path, const char *want, struct err *e)
{
	int fd = open(debug_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: %s", debug_path, strerror(errno));
	Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
	if (!dw) {
		close(fd);
		return err_set(e, ENODATA, "%s: no DWARF: %s", debug_path, dwarf_errmsg(-1));
	}
	int found = 0;
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (!found && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		if (!dwarf_offdie(dw, off + hsize, &cu)) {
			off = next;
			continue;
		}
		off = next;
		Dwarf_Files *files;
		size_t nfiles;
		if (dwarf_getsrcfiles(&cu, &files, &nfiles) != 0)
			continue;
		Dwarf_Attribute attr;
		const char *comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr));
		for (size_t i = 0; i < nfiles && !found; i++) {
			const char *name = dwarf_filesrc(files, i, NULL, NULL);
			if (!name || !*name)
				continue;
			char full[4096], canon[4096];
			if (name[0] == '/')
				snprintf(full, sizeof(full), "%s", name);
			else if (comp_dir && comp_dir[0] == '/')
				snprintf(full, sizeof(full), "%s/%s", comp_dir, name);
			else
				continue;
			if (path_canonical(full, canon, sizeof(canon)) && strcmp(canon, want) == 0)
				found = 1;
		}
	}
	dwarf_end(dw);
	close(fd);
	return found;
}
