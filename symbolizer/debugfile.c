/* Finding and opening what an index is built from: the separate debug file
 * (build-ID tree, .gnu_debuglink), the dwz supplementary file
 * (.gnu_debugaltlink), and a decompressed image of files with
 * SHF_COMPRESSED sections (libdw 0.188 cannot read zstd ones). */
#include "symbolizer/index.h"
#include "symbolizer/internal.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_DEBUG_DIR "/usr/lib/debug"

/* An opened input: the object, plus the decompressed image it may use. */
struct input {
	struct elf_object obj;
	bool open;
	uint8_t *plain; /* decompressed image (owned) */
};

static void input_close(struct input *in)
{
	if (in->open)
		elf_object_close(&in->obj);
	free(in->plain);
	memset(in, 0, sizeof(*in));
}

static bool has_compressed(struct elf_object *o)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(o->elf, scn))) {
		GElf_Shdr sh;
		if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_COMPRESSED) &&
		    sh.sh_type != SHT_NOBITS)
			return true;
	}
	return false;
}

/* Rewrite o as an image whose SHF_COMPRESSED sections are stored
 * decompressed (sections only: libdw and libelf need nothing else). */
static int plain_image(struct elf_object *o, uint8_t **out, size_t *out_size, uint64_t *dwarf_bytes,
		       struct err *e)
{
	if (o->ehdr.e_ident[EI_CLASS] != ELFCLASS64)
		return err_set(e, ENOTSUP, "%s: compressed sections in 32-bit ELF are not supported",
			       o->name);
	size_t shnum, shstrndx;
	if (elf_getshdrnum(o->elf, &shnum) != 0 || elf_getshdrstrndx(o->elf, &shstrndx) != 0 ||
	    shnum == 0)
		return err_set(e, EINVAL, "%s: no section headers", o->name);
	struct section *secs = calloc(shnum, sizeof(*secs));
	Elf64_Shdr *shdrs = calloc(shnum, sizeof(*shdrs));
	int r = 0;
	if (!secs || !shdrs) {
		r = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	size_t off = sizeof(Elf64_Ehdr);
	for (size_t i = 0; i < shnum; i++) {
		Elf_Scn *scn = elf_getscn(o->elf, i);
		GElf_Shdr sh;
		if (!scn || !gelf_getshdr(scn, &sh)) {
			r = err_set(e, EINVAL, "%s: bad section header %zu", o->name, i);
			goto out;
		}
		Elf64_Shdr *d = &shdrs[i];
		d->sh_name = sh.sh_name;
		d->sh_type = sh.sh_type;
		d->sh_flags = sh.sh_flags & ~(uint64_t)SHF_COMPRESSED;
		d->sh_addr = sh.sh_addr;
		d->sh_offset = sh.sh_offset;
		d->sh_size = sh.sh_size;
		d->sh_link = sh.sh_link;
		d->sh_info = sh.sh_info;
		d->sh_addralign = sh.sh_addralign;
		d->sh_entsize = sh.sh_entsize;
		if (i == 0 || sh.sh_type == SHT_NOBITS || sh.sh_size == 0)
			continue;
		const char *name = elf_strptr(o->elf, shstrndx, sh.sh_name);
		if ((sh.sh_flags & SHF_COMPRESSED) && name) {
			r = elf_object_section(o, name, &secs[i], e);
			if (r)
				goto out;
			d->sh_addralign = 8;
		} else {
			if (sh.sh_offset > o->image_size || sh.sh_size > o->image_size - sh.sh_offset) {
				r = err_set(e, EINVAL, "%s: section %zu outside the file", o->name, i);
				goto out;
			}
			secs[i].data = o->image + sh.sh_offset;
			secs[i].size = sh.sh_size;
		}
		if (name && strncmp(name, ".debug_", 7) == 0)
			*dwarf_bytes += secs[i].size;
		size_t align = d->sh_addralign > 1 && d->sh_addralign <= 64 ? d->sh_addralign : 1;
		off = (off + align - 1) & ~(align - 1);
		d->sh_offset = off;
		d->sh_size = secs[i].size;
		off += secs[i].size;
	}
	off = (off + 7) & ~(size_t)7;
	size_t total = off + shnum * sizeof(Elf64_Shdr);
	uint8_t *img = calloc(1, total);
	if (!img) {
		r = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	Elf64_Ehdr eh;
	memcpy(&eh, o->image, sizeof(eh));
	eh.e_phoff = 0;
	eh.e_phnum = 0;
	eh.e_shoff = off;
	eh.e_shentsize = sizeof(Elf64_Shdr);
	memcpy(img, &eh, sizeof(eh));
	for (size_t i = 1; i < shnum; i++)
		if (secs[i].size && shdrs[i].sh_type != SHT_NOBITS)
			memcpy(img + shdrs[i].sh_offset, secs[i].data, secs[i].size);
	memcpy(img + off, shdrs, shnum * sizeof(Elf64_Shdr));
	*out = img;
	*out_size = total;
out:
	if (secs)
		for (size_t i = 0; i < shnum; i++)
			section_free(&secs[i]);
	free(secs);
	free(shdrs);
	return r;
}

static uint64_t dwarf_size(struct elf_object *o)
{
	uint64_t total = 0;
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	if (elf_getshdrstrndx(o->elf, &shstrndx) != 0)
		return 0;
	while ((scn = elf_nextscn(o->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		const char *n = elf_strptr(o->elf, shstrndx, sh.sh_name);
		if (n && strncmp(n, ".debug_", 7) == 0)
			total += sh.sh_size;
	}
	return total;
}

/* Open from a path or memory; if `for_dwarf` and the file has compressed
 * sections, reopen it from a decompressed image. */
static int input_open(struct input *in, const char *path, const void *buf, size_t size,
		      const char *name, bool for_dwarf, uint64_t max_dec, uint64_t *dwarf_bytes,
		      struct err *e)
{
	memset(in, 0, sizeof(*in));
	int r = path ? elf_object_open(&in->obj, path, e)
		     : elf_object_open_mem(&in->obj, buf, size, name, e);
	if (r)
		return r;
	in->obj.max_decompressed = max_dec;
	in->open = true;
	if (!for_dwarf)
		return 0;
	if (!has_compressed(&in->obj)) {
		if (dwarf_bytes)
			*dwarf_bytes += dwarf_size(&in->obj);
		return 0;
	}
	uint8_t *img = NULL;
	size_t img_size = 0;
	uint64_t dummy = 0;
	r = plain_image(&in->obj, &img, &img_size, dwarf_bytes ? dwarf_bytes : &dummy, e);
	if (r) {
		input_close(in);
		return r;
	}
	/* Keep the original's identity (build-ID is in a note the image dropped
	 * only if it was in a NOBITS section, which cannot happen). */
	char saved_name[sizeof(in->obj.name)];
	memcpy(saved_name, in->obj.name, sizeof(saved_name));
	elf_object_close(&in->obj);
	in->open = false;
	r = elf_object_open_mem(&in->obj, img, img_size, saved_name, e);
	if (r) {
		free(img);
		return r;
	}
	in->obj.max_decompressed = max_dec;
	in->open = true;
	in->plain = img;
	return 0;
}

static bool same_build_id(const struct elf_object *a, const struct elf_object *b)
{
	/* A content hash names one file, never its debug file: with no note
	 * to compare, accept (a debuglink without IDs). */
	if (!a->build_id_len || !b->build_id_len || a->id_kind == ELF_ID_CONTENT ||
	    b->id_kind == ELF_ID_CONTENT)
		return true;
	return a->build_id_len == b->build_id_len &&
	       memcmp(a->build_id, b->build_id, a->build_id_len) == 0;
}

static void build_id_path(char *out, size_t size, const char *dir, const uint8_t *id, size_t len,
			  const char *suffix)
{
	char hex[BUILD_ID_HEX_MAX];
	build_id_to_hex(id, len, hex);
	snprintf(out, size, "%s/.build-id/%.2s/%s%s", dir, hex, hex + 2, suffix);
}

/* Try a candidate debug file for obj: exists, has DWARF, same build-ID. */
static bool try_debug(struct input *dbg, const struct elf_object *obj, const char *path,
		      uint64_t max_dec, uint64_t *dwarf_bytes)
{
	struct err ignored = {{0}};
	if (access(path, R_OK) != 0)
		return false;
	uint64_t bytes = 0;
	if (input_open(dbg, path, NULL, 0, NULL, true, max_dec, &bytes, &ignored))
		return false;
	if (!same_build_id(obj, &dbg->obj) || !elf_object_has_data(&dbg->obj, ".debug_info", 1)) {
		input_close(dbg);
		return false;
	}
	*dwarf_bytes += bytes;
	return true;
}

/* .gnu_debuglink: file name, NUL, padding, CRC (the CRC is not checked: a
 * build-ID match is checked instead when both files have one). */
static bool find_by_debuglink(struct input *dbg, struct elf_object *obj, const char *elf_dir,
			      const char *debug_dir, uint64_t max_dec, uint64_t *dwarf_bytes)
{
	struct section s;
	struct err ignored = {{0}};
	if (elf_object_section(obj, ".gnu_debuglink", &s, &ignored) || !s.found)
		return false;
	char name[256];
	size_t n = strnlen((const char *)s.data, s.size);
	if (n == 0 || n >= sizeof(name) || n == s.size || memchr(s.data, '/', n)) {
		section_free(&s);
		return false;
	}
	memcpy(name, s.data, n);
	name[n] = 0;
	section_free(&s);
	char path[PATH_MAX * 2];
	const char *dir = elf_dir ? elf_dir : ".";
	const char *fmts[] = {"%s/%s", "%s/.debug/%s"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), fmts[i], dir, name);
		if (strcmp(path, obj->name) != 0 && try_debug(dbg, obj, path, max_dec, dwarf_bytes))
			return true;
	}
	if (elf_dir) {
		char abs[PATH_MAX];
		if (realpath(elf_dir, abs)) {
			snprintf(path, sizeof(path), "%s%s/%s", debug_dir, abs, name);
			if (try_debug(dbg, obj, path, max_dec, dwarf_bytes))
				return true;
		}
	}
	return false;
}

/* .gnu_debugaltlink: path, NUL, build-ID of the dwz supplementary file. */
static int find_alt(struct input *alt, struct elf_object *dbg, const char *debug_dir,
		    char *found, size_t found_size, uint64_t max_dec, uint64_t *dwarf_bytes,
		    struct err *e)
{
	struct section s;
	int r = elf_object_section(dbg, ".gnu_debugaltlink", &s, e);
	if (r || !s.found)
		return r;
	size_t n = strnlen((const char *)s.data, s.size);
	if (n == 0 || n >= s.size || s.size - n - 1 > BUILD_ID_MAX) {
		section_free(&s);
		return err_set(e, EINVAL, "%s: malformed .gnu_debugaltlink", dbg->name);
	}
	char name[PATH_MAX];
	snprintf(name, sizeof(name), "%.*s", (int)n, (const char *)s.data);
	struct elf_object want = {0};
	want.build_id_len = s.size - n - 1;
	memcpy(want.build_id, s.data + n + 1, want.build_id_len);
	section_free(&s);
	char cand[3][PATH_MAX * 2];
	int nc = 0;
	if (name[0] == '/') {
		snprintf(cand[nc++], sizeof(cand[0]), "%s", name);
	} else {
		char dirbuf[sizeof(dbg->name)];
		memcpy(dirbuf, dbg->name, sizeof(dirbuf));
		snprintf(cand[nc++], sizeof(cand[0]), "%s/%s", dirname(dirbuf), name);
	}
	if (want.build_id_len)
		build_id_path(cand[nc++], sizeof(cand[0]), debug_dir, want.build_id,
			      want.build_id_len, ".debug");
	for (int i = 0; i < nc; i++) {
		struct err ignored = {{0}};
		if (access(cand[i], R_OK) != 0)
			continue;
		uint64_t bytes = 0;
		if (input_open(alt, cand[i], NULL, 0, NULL, true, max_dec, &bytes, &ignored))
			continue;
		if (!same_build_id(&want, &alt->obj)) {
			input_close(alt);
			continue;
		}
		*dwarf_bytes += bytes;
		size_t cl = strnlen(cand[i], found_size - 1);
		memcpy(found, cand[i], cl);
		found[cl] = 0;
		return 0;
	}
	return err_set(e, ENOENT, "%s: dwz supplementary file %s not found", dbg->name, name);
}

static int build(struct input *obj, struct input *dbg_in, struct input *alt_in,
		 const struct symz_build_options *opt, const char *elf_dir, struct symz_index **out,
		 struct err *e)
{
	struct symz_stats stats;
	memset(&stats, 0, sizeof(stats));
	const char *debug_dir = opt && opt->debug_dir ? opt->debug_dir : DEFAULT_DEBUG_DIR;
	bool search = !(opt && opt->no_search);
	uint64_t max_dec = opt ? opt->max_decompressed : 0;
	struct input local_dbg = {0}, local_alt = {0};
	struct elf_object *dbg = NULL, *alt = NULL;
	int r = 0;
	if (dbg_in && dbg_in->open) {
		dbg = &dbg_in->obj;
	} else if (elf_object_has_data(&obj->obj, ".debug_info", 1)) {
		/* Use the object itself, decompressed when needed. */
		r = input_open(&local_dbg, NULL, obj->obj.image, obj->obj.image_size, obj->obj.name,
			       true, max_dec, &stats.dwarf_bytes, e);
		if (r)
			goto out;
		dbg = &local_dbg.obj;
	} else if (search) {
		char path[PATH_MAX * 2];
		bool ok = false;
		if (opt && opt->debug_file)
			ok = try_debug(&local_dbg, &obj->obj, opt->debug_file, max_dec,
				       &stats.dwarf_bytes);
		if (!ok && obj->obj.build_id_len) {
			build_id_path(path, sizeof(path), debug_dir, obj->obj.build_id,
				      obj->obj.build_id_len, ".debug");
			ok = try_debug(&local_dbg, &obj->obj, path, max_dec, &stats.dwarf_bytes);
		}
		if (!ok)
			ok = find_by_debuglink(&local_dbg, &obj->obj, elf_dir, debug_dir, max_dec,
					       &stats.dwarf_bytes);
		if (ok)
			dbg = &local_dbg.obj;
	}
	if (dbg)
		snprintf(stats.debug_file, sizeof(stats.debug_file), "%s", dbg->name);
	if (alt_in && alt_in->open) {
		alt = &alt_in->obj;
	} else if (dbg && search) {
		r = find_alt(&local_alt, dbg, debug_dir, stats.alt_file, sizeof(stats.alt_file),
			     max_dec, &stats.dwarf_bytes, e);
		if (r)
			goto out;
		if (local_alt.open)
			alt = &local_alt.obj;
	}
	r = symz_build_core(&obj->obj, dbg, alt, &stats, out, e);
out:
	input_close(&local_dbg);
	input_close(&local_alt);
	return r;
}

int symz_index_build_path(const char *path, const struct symz_build_options *opt,
			  struct symz_index **out, struct err *e)
{
	struct input obj;
	uint64_t max_dec = opt ? opt->max_decompressed : 0;
	int r = input_open(&obj, path, NULL, 0, NULL, false, max_dec, NULL, e);
	if (r)
		return r;
	char dirbuf[PATH_MAX];
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	struct symz_build_options o = opt ? *opt : (struct symz_build_options){0};
	const char *dir = o.elf_dir ? o.elf_dir : dirname(dirbuf);
	struct input dbg = {0};
	if (o.debug_file) {
		uint64_t ignored = 0;
		r = input_open(&dbg, o.debug_file, NULL, 0, NULL, true, max_dec, &ignored, e);
		if (!r && !same_build_id(&obj.obj, &dbg.obj))
			r = err_set(e, EINVAL, "%s: build-ID differs from %s", o.debug_file, path);
		if (r) {
			input_close(&obj);
			return r;
		}
	}
	r = build(&obj, &dbg, NULL, &o, dir, out, e);
	if (!r && dbg.open)
		snprintf((*out)->stats.debug_file, sizeof((*out)->stats.debug_file), "%s",
			 o.debug_file);
	input_close(&dbg);
	input_close(&obj);
	return r;
}

int symz_index_build_mem(const void *elf, size_t elf_size, const void *debug, size_t debug_size,
			 const void *alt, size_t alt_size, const struct symz_build_options *opt,
			 struct symz_index **out, struct err *e)
{
	struct input obj, dbg = {0}, altin = {0};
	uint64_t bytes = 0;
	uint64_t max_dec = opt ? opt->max_decompressed : 0;
	int r = input_open(&obj, NULL, elf, elf_size, "<memory>", false, max_dec, NULL, e);
	if (r)
		return r;
	if (debug)
		r = input_open(&dbg, NULL, debug, debug_size, "<debug memory>", true, max_dec, &bytes,
			       e);
	if (!r && alt)
		r = input_open(&altin, NULL, alt, alt_size, "<alt memory>", true, max_dec, &bytes, e);
	struct symz_build_options o = opt ? *opt : (struct symz_build_options){0};
	if (!opt)
		o.no_search = true;
	if (!r)
		r = build(&obj, &dbg, &altin, &o, o.elf_dir, out, e);
	if (!r)
		(*out)->stats.dwarf_bytes += bytes;
	input_close(&altin);
	input_close(&dbg);
	input_close(&obj);
	return r;
}
