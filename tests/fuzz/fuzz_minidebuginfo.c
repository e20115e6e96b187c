/* libFuzzer target for MiniDebugInfo (symbolizer/minidebuginfo.c): the
 * input is the content of a .gnu_debugdata section.  It decompresses within
 * bounds or is refused with a message; what decompresses is opened as the
 * inner ELF and its symbols are walked. */
#include "symbolizer/internal.h"

#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fuzz_copy(data, size), *out = NULL;
	if (!copy)
		return 0;
	size_t out_size = 0;
	struct err e = {{0}};
	elf_version(EV_CURRENT);
	if (symz_minidebuginfo_decompress(copy, size, &out, &out_size, &e) == 0) {
		Elf *elf = elf_memory((char *)out, out_size);
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;
		while (elf && (scn = elf_nextscn(elf, scn))) {
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
				continue;
			Elf_Data *d = elf_getdata(scn, NULL);
			for (size_t i = 0; d && i < d->d_size / sh.sh_entsize && i < 100000; i++) {
				GElf_Sym s;
				if (gelf_getsym(d, (int)i, &s))
					(void)elf_strptr(elf, sh.sh_link, s.st_name);
			}
		}
		if (elf)
			elf_end(elf);
		free(out);
	} else if (!e.msg[0]) {
		abort();
	}
	free(copy);
	return 0;
}
