/* ELF access shared by every component: open from a path or from memory,
 * build-ID, sections (decompressed), PT_LOAD segments.
 *
 * Section bytes are read straight from the image with bounds checks instead
 * of through elf_getdata(): it is faster, and it lets us decompress zstd
 * sections, which libelf 0.188 cannot. */
#include "common/common.h"
#include "common/sha256.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2
#endif

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static void elf_init(void)
{
	elf_version(EV_CURRENT);
}

/* Go's linker writes its build-ID as a note named "Go" (namesz 4: "Go\\0\\0") of this type
 * (cmd/link: ELF_NOTE_GOBUILDID_TAG) in .note.go.buildid. */
#define NT_GO_BUILD_ID 4

/* Scan one note area: the GNU build-ID wins (returns 1); a Go build-ID note
 * is remembered in *go and *go_len for identity_from_go(). */
static int find_build_id_in_notes(struct elf_object *o, const uint8_t *p, size_t size,
				  size_t align, const uint8_t **go, size_t *go_len)
{
	size_t off = 0;
	if (align < 4)
		align = 4;
	while (size - off >= 12) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		memcpy(&type, p + off + 8, 4);
		off += 12;
		size_t name_pad = ((size_t)namesz + align - 1) & ~(align - 1);
		size_t desc_pad = ((size_t)descsz + align - 1) & ~(align - 1);
		if (namesz > size - off || name_pad > size - off)
			return 0;
		const uint8_t *name = p + off;
		off += name_pad;
		if (descsz > size - off)
			return 0;
		if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
		    descsz > 0 && descsz <= BUILD_ID_MAX) {
			memcpy(o->build_id, p + off, descsz);
			o->build_id_len = descsz;
			o->id_kind = ELF_ID_GNU;
			return 1;
		}
		if (type == NT_GO_BUILD_ID && (namesz == 3 || namesz == 4) && memcmp(name, "Go", 3) == 0 &&
		    descsz > 0 && !*go) {
			*go = p + off;
			*go_len = descsz;
		}
		if (desc_pad > size - off)
			return 0;
		off += desc_pad;
	}
	return 0;
}

static bool in_image(const struct elf_object *o, uint64_t off, uint64_t size)
{
	return off <= o->image_size && size <= o->image_size - off;
}

/* The identity of an object without a GNU build-ID (docs/identity.md).
 * Each scheme hashes a distinct prefix first, so the two derived kinds can
 * never produce the same ID from different inputs. */
static void identity_from_go(struct elf_object *o, const uint8_t *note, size_t len)
{
	uint8_t digest[32];
	struct sha256 h;
	while (len && note[len - 1] == 0) /* the linker pads the string with NULs */
		len--;
	if (sha256_init(&h) < 0)
		return;
	sha256_update(&h, ELF_ID_GO_PREFIX, sizeof(ELF_ID_GO_PREFIX));
	sha256_update(&h, note, len);
	if (sha256_final(&h, digest) < 0)
		return;
	memcpy(o->build_id, digest, ELF_ID_GO_LEN);
	o->build_id_len = ELF_ID_GO_LEN;
	o->id_kind = ELF_ID_GO;
}

static void identity_from_content(struct elf_object *o)
{
	uint8_t digest[32], size_le[8];
	struct sha256 h;
	uint64_t size = o->image_size;
	size_t head = size < ELF_ID_CONTENT_CHUNK ? (size_t)size : ELF_ID_CONTENT_CHUNK;
	for (int i = 0; i < 8; i++)
		size_le[i] = (uint8_t)(size >> (8 * i));
	if (sha256_init(&h) < 0)
		return;
	sha256_update(&h, ELF_ID_CONTENT_PREFIX, sizeof(ELF_ID_CONTENT_PREFIX));
	sha256_update(&h, size_le, sizeof(size_le));
	sha256_update(&h, o->image, head);
	sha256_update(&h, o->image + size - head, head);
	if (sha256_final(&h, digest) < 0)
		return;
	memcpy(o->build_id, digest, ELF_ID_CONTENT_LEN);
	o->build_id_len = ELF_ID_CONTENT_LEN;
	o->id_kind = ELF_ID_CONTENT;
}

static void read_build_id(struct elf_object *o)
{
	size_t nphdr = 0, shnum = 0;
	Elf_Scn *scn = NULL;
	const uint8_t *go = NULL;
	size_t go_len = 0;
	if (elf_getshdrnum(o->elf, &shnum) == 0 && shnum > 0) {
		while ((scn = elf_nextscn(o->elf, scn))) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
				continue;
			if (!in_image(o, sh.sh_offset, sh.sh_size))
				continue;
			if (find_build_id_in_notes(o, o->image + sh.sh_offset, sh.sh_size,
						   sh.sh_addralign, &go, &go_len))
				return;
		}
	}
	if (elf_getphdrnum(o->elf, &nphdr) == 0) {
		for (size_t i = 0; i < nphdr; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(o->elf, (int)i, &ph) || ph.p_type != PT_NOTE)
				continue;
			if (!in_image(o, ph.p_offset, ph.p_filesz))
				continue;
			if (find_build_id_in_notes(o, o->image + ph.p_offset, ph.p_filesz,
						   ph.p_align, &go, &go_len))
				return;
		}
	}
	if (go)
		identity_from_go(o, go, go_len);
	else
		identity_from_content(o);
}

static int open_image(struct elf_object *o, struct err *e)
{
	pthread_once(&elf_once, elf_init);
	if (o->image_size < EI_NIDENT || memcmp(o->image, ELFMAG, SELFMAG) != 0)
		return err_set(e, EINVAL, "not an ELF file (bad magic)");
	if (o->image[EI_DATA] != ELFDATA2LSB)
		return err_set(e, ENOTSUP, "big-endian ELF is not supported");
	if (o->image[EI_CLASS] != ELFCLASS64 && o->image[EI_CLASS] != ELFCLASS32)
		return err_set(e, EINVAL, "bad ELF class %u", o->image[EI_CLASS]);
	o->elf = elf_memory((char *)o->image, o->image_size);
	if (!o->elf || elf_kind(o->elf) != ELF_K_ELF)
		return err_set(e, EINVAL, "not a valid ELF file: %s", elf_errmsg(-1));
	if (!gelf_getehdr(o->elf, &o->ehdr))
		return err_set(e, EINVAL, "bad ELF header: %s", elf_errmsg(-1));
	read_build_id(o);
	return 0;
}

int elf_object_open(struct elf_object *o, const char *path, struct err *e)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	snprintf(o->name, sizeof(o->name), "%s", path);
	struct stat st;
	int fd = open_regular_file(path, &st, e);
	if (fd < 0)
		return fd;
	if (st.st_size == 0) {
		close(fd);
		return err_set(e, EINVAL, "empty file");
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		int saved = errno;
		close(fd);
		return err_set(e, saved, "cannot map: %s", strerror(saved));
	}
	o->fd = fd;
	o->image = map;
	o->image_size = (size_t)st.st_size;
	o->image_mapped = true;
	int r = open_image(o, e);
	if (r)
		elf_object_close(o);
	return r;
}

int elf_object_open_mem(struct elf_object *o, const void *buf, size_t size, const char *name,
			struct err *e)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	snprintf(o->name, sizeof(o->name), "%s", name ? name : "<memory>");
	o->image = buf;
	o->image_size = size;
	int r = open_image(o, e);
	if (r)
		elf_object_close(o);
	return r;
}

void elf_object_close(struct elf_object *o)
{
	if (o->elf)
		elf_end(o->elf);
	if (o->image_mapped)
		munmap((void *)o->image, o->image_size);
	if (o->fd >= 0)
		close(o->fd);
	o->elf = NULL;
	o->image = NULL;
	o->fd = -1;
	o->image_mapped = false;
}

static int decompress(struct elf_object *o, const char *name, struct section *s, struct err *e)
{
	/* Elf32_Chdr and Elf64_Chdr both start with ch_type; ch_size is 32 or
	 * 64 bits wide at a class-dependent offset. */
	bool is64 = o->ehdr.e_ident[EI_CLASS] == ELFCLASS64;
	size_t hdr = is64 ? sizeof(Elf64_Chdr) : sizeof(Elf32_Chdr);
	if (s->size < hdr)
		return err_set(e, EINVAL, "section %s: compression header truncated", name);
	uint32_t ch_type;
	uint64_t ch_size;
	memcpy(&ch_type, s->data, sizeof(ch_type));
	if (is64) {
		memcpy(&ch_size, s->data + offsetof(Elf64_Chdr, ch_size), sizeof(ch_size));
	} else {
		Elf32_Word size32;
		memcpy(&size32, s->data + offsetof(Elf32_Chdr, ch_size), sizeof(size32));
		ch_size = size32;
	}
	uint64_t max = o->max_decompressed ? o->max_decompressed : ELF_MAX_DECOMPRESSED;
	if (ch_size > max)
		return err_set(e, EFBIG, "section %s: claims %llu decompressed bytes, over the"
			       " limit of %llu", name, (unsigned long long)ch_size,
			       (unsigned long long)max);
	uint8_t *out = malloc(ch_size ? ch_size : 1);
	if (!out)
		return err_set(e, ENOMEM, "section %s: out of memory", name);
	const uint8_t *in = s->data + hdr;
	size_t in_size = s->size - hdr;
	if (ch_type == ELFCOMPRESS_ZLIB) {
		uLongf got = ch_size;
		int zr = uncompress(out, &got, in, in_size);
		if (zr != Z_OK || got != ch_size) {
			free(out);
			return err_set(e, EINVAL, "section %s: zlib data is corrupt (%s)", name,
				       zr == Z_OK ? "size mismatch" : zError(zr));
		}
	} else if (ch_type == ELFCOMPRESS_ZSTD) {
		size_t got = ZSTD_decompress(out, ch_size, in, in_size);
		if (ZSTD_isError(got) || got != ch_size) {
			free(out);
			return err_set(e, EINVAL, "section %s: zstd data is corrupt (%s)", name,
				       ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size mismatch");
		}
	} else {
		free(out);
		return err_set(e, ENOTSUP, "section %s: unknown compression type %u", name, ch_type);
	}
	s->data = out;
	s->size = ch_size;
	s->owned = out;
	return 0;
}

bool elf_object_shdr(struct elf_object *o, const char *name, GElf_Shdr *out)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(o->elf, &shstrndx) != 0)
		return false;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(o->elf, scn))) {
		const char *n;
		if (gelf_getshdr(scn, out) && (n = elf_strptr(o->elf, shstrndx, out->sh_name)) &&
		    strcmp(n, name) == 0)
			return true;
	}
	return false;
}

bool elf_object_has_data(struct elf_object *o, const char *name, uint64_t min_size)
{
	GElf_Shdr sh;
	return elf_object_shdr(o, name, &sh) && sh.sh_type != SHT_NOBITS && sh.sh_size > 0 &&
	       sh.sh_size >= min_size && in_image(o, sh.sh_offset, sh.sh_size);
}

int elf_object_section(struct elf_object *o, const char *name, struct section *s, struct err *e)
{
	memset(s, 0, sizeof(*s));
	GElf_Shdr sh;
	if (!elf_object_shdr(o, name, &sh))
		return 0;
	s->found = true;
	s->addr = sh.sh_addr;
	s->type = sh.sh_type;
	s->flags = sh.sh_flags;
	if (sh.sh_type == SHT_NOBITS)
		return 0;
	if (!in_image(o, sh.sh_offset, sh.sh_size))
		return err_set(e, EINVAL, "section %s: offset 0x%llx size 0x%llx lies outside the file",
			       name, (unsigned long long)sh.sh_offset, (unsigned long long)sh.sh_size);
	s->data = o->image + sh.sh_offset;
	s->size = sh.sh_size;
	if (sh.sh_flags & SHF_COMPRESSED)
		return decompress(o, name, s, e);
	return 0;
}

/* The decompressed size a compressed section's header claims, 0 when it
 * has none that reads. */
static uint64_t claimed_size(struct elf_object *o, const GElf_Shdr *sh)
{
	bool is64 = o->ehdr.e_ident[EI_CLASS] == ELFCLASS64;
	size_t hdr = is64 ? sizeof(Elf64_Chdr) : sizeof(Elf32_Chdr);
	if (!in_image(o, sh->sh_offset, sh->sh_size) || sh->sh_size < hdr)
		return 0;
	if (is64) {
		Elf64_Chdr ch;
		memcpy(&ch, o->image + sh->sh_offset, sizeof(ch));
		return ch.ch_size;
	}
	Elf32_Chdr ch;
	memcpy(&ch, o->image + sh->sh_offset, sizeof(ch));
	return ch.ch_size;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void elf_object_plain_sizes(struct elf_object *o, const char *name, struct elf_plain_sizes *out)
{
	memset(out, 0, sizeof(*out));
	size_t shstrndx;
	if (elf_getshdrstrndx(o->elf, &shstrndx) != 0)
		return;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(o->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		const char *n = elf_strptr(o->elf, shstrndx, sh.sh_name);
		if (name && (!n || strcmp(n, name) != 0))
			continue;
		uint64_t plain = sh.sh_size;
		if (sh.sh_flags & SHF_COMPRESSED) {
			plain = claimed_size(o, &sh);
			out->inflated = add_sat(out->inflated, plain);
			if (plain > out->largest)
				out->largest = plain;
		}
		if (n && strncmp(n, ".debug_", 7) == 0)
			out->dwarf = add_sat(out->dwarf, plain);
	}
}

void section_free(struct section *s)
{
	free(s->owned);
	s->owned = NULL;
}

int elf_object_segments(struct elf_object *o, struct elf_segment *segs, size_t max, struct err *e)
{
	size_t nphdr;
	if (elf_getphdrnum(o->elf, &nphdr) != 0)
		return err_set(e, EINVAL, "bad program headers: %s", elf_errmsg(-1));
	size_t n = 0;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o->elf, (int)i, &ph))
			return err_set(e, EINVAL, "bad program header %zu", i);
		if (ph.p_type != PT_LOAD)
			continue;
		if (n == max)
			return err_set(e, E2BIG, "more than %zu PT_LOAD segments", max);
		segs[n].vaddr = ph.p_vaddr;
		segs[n].memsz = ph.p_memsz;
		segs[n].offset = ph.p_offset;
		segs[n].filesz = ph.p_filesz;
		segs[n].flags = ph.p_flags;
		n++;
	}
	return (int)n;
}

const char *elf_id_kind_name(enum elf_id_kind k)
{
	switch (k) {
	case ELF_ID_GNU: return "gnu";
	case ELF_ID_GO: return "go";
	case ELF_ID_CONTENT: return "content";
	default: return "none";
	}
}
