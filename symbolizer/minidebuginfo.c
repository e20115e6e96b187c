/* MiniDebugInfo: the xz-compressed ELF in .gnu_debugdata that Fedora and
 * RHEL-family binaries carry (a .symtab of the functions .dynsym lacks;
 * docs/symbolizer.md).  Decompressed with liblzma under fixed bounds: the
 * section is untrusted input. */
#include "symbolizer/internal.h"

#include <errno.h>
#include <gelf.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

/* Real MiniDebugInfo is tens to hundreds of KiB; xz's default level needs
 * 9 MiB to decode.  Anything past these is not MiniDebugInfo. */
#define MINIDEBUG_MAX_OUT (64u << 20)
#define MINIDEBUG_MEMLIMIT (128u << 20)

static const char *lzma_why(lzma_ret r)
{
	switch (r) {
	case LZMA_FORMAT_ERROR: return "not an xz stream";
	case LZMA_OPTIONS_ERROR: return "unsupported xz options";
	case LZMA_DATA_ERROR: return "corrupt xz data";
	case LZMA_BUF_ERROR: return "truncated xz stream";
	case LZMA_MEMLIMIT_ERROR: return "needs more than 128 MiB to decompress";
	case LZMA_MEM_ERROR: return "out of memory";
	default: return "xz error";
	}
}

int symz_minidebuginfo_decompress(const void *xz, size_t size, uint8_t **out, size_t *out_size,
				  struct err *e)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r = lzma_stream_decoder(&s, MINIDEBUG_MEMLIMIT, 0);
	if (r != LZMA_OK)
		return err_set(e, ENOMEM, ".gnu_debugdata: %s", lzma_why(r));
	size_t cap = size * 4 + 4096, len = 0;
	if (cap > MINIDEBUG_MAX_OUT)
		cap = MINIDEBUG_MAX_OUT;
	uint8_t *buf = malloc(cap);
	s.next_in = xz;
	s.avail_in = size;
	int rc = 0;
	while (buf) {
		s.next_out = buf + len;
		s.avail_out = cap - len;
		r = lzma_code(&s, LZMA_FINISH);
		len = cap - s.avail_out;
		if (r == LZMA_STREAM_END)
			break;
		if (r != LZMA_OK) {
			rc = err_set(e, r == LZMA_MEM_ERROR ? ENOMEM : EINVAL, ".gnu_debugdata: %s",
				     lzma_why(r));
			break;
		}
		if (s.avail_out == 0) {
			if (cap >= MINIDEBUG_MAX_OUT) {
				rc = err_set(e, EFBIG, ".gnu_debugdata: decompresses to more than %u MiB",
					     MINIDEBUG_MAX_OUT >> 20);
				break;
			}
			size_t ncap = cap * 2 > MINIDEBUG_MAX_OUT ? MINIDEBUG_MAX_OUT : cap * 2;
			uint8_t *n = realloc(buf, ncap);
			if (!n) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = n;
			cap = ncap;
		} else if (s.avail_in == 0) {
			rc = err_set(e, EINVAL, ".gnu_debugdata: %s", lzma_why(LZMA_BUF_ERROR));
			break;
		}
	}
	lzma_end(&s);
	if (!buf)
		return err_set(e, ENOMEM, "out of memory");
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*out_size = len;
	return 0;
}

int symz_minidebuginfo_open(Elf *outer, uint8_t **image, Elf **inner, struct err *e)
{
	*image = NULL;
	*inner = NULL;
	size_t shstrndx;
	if (elf_getshdrstrndx(outer, &shstrndx) < 0)
		return 0;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(outer, scn))) {
		const char *name;
		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(outer, shstrndx, sh.sh_name)) ||
		    strcmp(name, ".gnu_debugdata"))
			continue;
		if (sh.sh_type == SHT_NOBITS)
			return 0;
		Elf_Data *d = elf_rawdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size == 0)
			return err_set(e, EINVAL, ".gnu_debugdata: section data out of the file");
		size_t size;
		int rc = symz_minidebuginfo_decompress(d->d_buf, d->d_size, image, &size, e);
		if (rc)
			return rc;
		*inner = elf_memory((char *)*image, size);
		GElf_Ehdr ie, oe;
		if (!*inner || elf_kind(*inner) != ELF_K_ELF || !gelf_getehdr(*inner, &ie) ||
		    !gelf_getehdr(outer, &oe) || ie.e_machine != oe.e_machine ||
		    gelf_getclass(*inner) != gelf_getclass(outer)) {
			if (*inner)
				elf_end(*inner);
			free(*image);
			*image = NULL;
			*inner = NULL;
			return err_set(e, EINVAL,
				       ".gnu_debugdata: does not hold an ELF file for this machine");
		}
		return 1;
	}
	return 0;
}
