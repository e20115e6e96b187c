/* Core-dump replay (core.h): parsing an ELF core, finding its objects. */
#include "bpf/core.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/* struct elf_prstatus (64-bit): pr_pid at 32, pr_reg at 112. */
#define PRSTATUS_PID 32
#define PRSTATUS_REGS 112
/* x86-64 user_regs_struct slots of the DWARF registers 0..16:
 * rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip. */
static const uint8_t x86_user_regs[UNWIND_X86_NREGS] = {
	10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16,
};
#define X86_USER_REGS 27
#define A64_USER_REGS 34 /* x0..x30, sp, pc, pstate */

#define MAX_DYNAMIC 1024   /* dynamic entries read from memory */
#define MAX_NAME 512       /* l_name bytes (struct core_object.path) */

static int cmp_seg(const void *a, const void *b)
{
	const struct elf_segment *x = a, *y = b;
	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

int core_read(void *core, void *dst, uint32_t size, uint64_t addr)
{
	struct core_dump *c = core;
	const struct elf_segment *s = c->segs.data;
	size_t lo = 0, hi = c->segs.len;
	while (lo < hi) { /* last segment with vaddr <= addr */
		size_t mid = lo + (hi - lo) / 2;
		if (s[mid].vaddr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -EFAULT;
	const struct elf_segment *g = &s[lo - 1];
	uint64_t off = addr - g->vaddr;
	if (off > g->filesz || g->filesz - off < size)
		return -EFAULT; /* not dumped (file-backed text), or past the end */
	memcpy(dst, c->elf.image + g->offset + off, size);
	return 0;
}

static int read_u64(struct core_dump *c, uint64_t addr, uint64_t *v)
{
	return core_read(c, v, 8, addr);
}

static int parse_prstatus(struct core_dump *c, const uint8_t *d, size_t n, struct err *e)
{
	bool a64 = c->arch == UNWIND_ARCH_AARCH64;
	size_t want = PRSTATUS_REGS + 8 * (a64 ? A64_USER_REGS : X86_USER_REGS);
	if (n < want)
		return err_set(e, EINVAL, "NT_PRSTATUS of %zu bytes, need %zu", n, want);
	if (c->threads.len >= CORE_MAX_THREADS)
		return err_set(e, E2BIG, "more than %d threads", CORE_MAX_THREADS);
	struct core_thread *t = vec_push(&c->threads);
	if (!t)
		return err_set(e, ENOMEM, "out of memory");
	uint32_t pid;
	memcpy(&pid, d + PRSTATUS_PID, 4);
	t->tid = pid;
	uint64_t u[A64_USER_REGS];
	memcpy(u, d + PRSTATUS_REGS, 8 * (a64 ? A64_USER_REGS : X86_USER_REGS));
	if (a64)
		memcpy(t->regs, u, 8 * UNWIND_A64_NREGS); /* x0..x30, sp, pc: DWARF order */
	else
		for (int i = 0; i < UNWIND_X86_NREGS; i++)
			t->regs[i] = u[x86_user_regs[i]];
	return 0;
}

static int parse_nt_file(struct core_dump *c, const uint8_t *d, size_t n, struct err *e)
{
	if (n < 16)
		return err_set(e, EINVAL, "NT_FILE of %zu bytes", n);
	uint64_t count, page;
	memcpy(&count, d, 8);
	memcpy(&page, d + 8, 8);
	if (count > (n - 16) / 24 || page == 0 || (page & (page - 1)) || page > (1u << 30))
		return err_set(e, EINVAL, "NT_FILE: %" PRIu64 " entries or page size %" PRIu64
			       " do not fit its %zu bytes", count, page, n);
	const char *names = (const char *)d + 16 + 24 * count, *end = (const char *)d + n;
	for (uint64_t i = 0; i < count; i++) {
		const char *nul = memchr(names, 0, (size_t)(end - names));
		if (!nul)
			return err_set(e, EINVAL, "NT_FILE: file name %" PRIu64 " is not terminated", i);
		struct core_file *f = vec_push(&c->files);
		if (!f)
			return err_set(e, ENOMEM, "out of memory");
		uint64_t pgoff;
		memcpy(&f->start, d + 16 + 24 * i, 8);
		memcpy(&f->end, d + 16 + 24 * i + 8, 8);
		memcpy(&pgoff, d + 16 + 24 * i + 16, 8);
		if (f->end <= f->start || pgoff > UINT64_MAX / page)
			return err_set(e, EINVAL, "NT_FILE: entry %" PRIu64 " has a bad range", i);
		f->offset = pgoff * page;
		f->path = names;
		names = nul + 1;
	}
	c->has_nt_file = true;
	return 0;
}

static void parse_auxv(struct core_dump *c, const uint8_t *d, size_t n)
{
	for (size_t i = 0; i + 16 <= n; i += 16) {
		uint64_t type, val;
		memcpy(&type, d + i, 8);
		memcpy(&val, d + i + 8, 8);
		switch (type) {
		case AT_PHDR: c->at_phdr = val; break;
		case AT_ENTRY: c->at_entry = val; break;
		case 31 /* AT_EXECFN */: c->at_execfn = val; break;
		case 33 /* AT_SYSINFO_EHDR */: c->at_vdso = val; break;
		}
	}
}

static int parse_notes(struct core_dump *c, const uint8_t *p, size_t n, struct err *e)
{
	size_t off = 0;
	while (off + 12 <= n) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		memcpy(&type, p + off + 8, 4);
		size_t name_off = off + 12;
		size_t desc_off = name_off + (((size_t)namesz + 3) & ~(size_t)3);
		if (namesz > n || descsz > n || desc_off > n || n - desc_off < descsz)
			return err_set(e, EINVAL, "note at 0x%zx runs past its segment", off);
		const uint8_t *d = p + desc_off;
		bool core = namesz >= 4 && !memcmp(p + name_off, "CORE", 4);
		int rc = 0;
		if (core && type == NT_PRSTATUS)
			rc = parse_prstatus(c, d, descsz, e);
		else if (core && type == NT_FILE)
			rc = parse_nt_file(c, d, descsz, e);
		else if (core && type == NT_AUXV)
			parse_auxv(c, d, descsz);
		if (rc)
			return rc;
		off = desc_off + (((size_t)descsz + 3) & ~(size_t)3);
	}
	return 0;
}

static int parse(struct core_dump *c, struct err *e)
{
	GElf_Ehdr *h = &c->elf.ehdr;
	vec_init(&c->segs, sizeof(struct elf_segment));
	vec_init(&c->threads, sizeof(struct core_thread));
	vec_init(&c->files, sizeof(struct core_file));
	if (h->e_type != ET_CORE)
		return err_set(e, EINVAL, "not a core dump (ELF type %u)", h->e_type);
	if (h->e_ident[EI_CLASS] != ELFCLASS64 || h->e_ident[EI_DATA] != ELFDATA2LSB)
		return err_set(e, ENOTSUP, "only 64-bit little-endian cores are read");
	if (h->e_machine == EM_X86_64) {
		c->arch = UNWIND_ARCH_X86_64;
		c->walk_arch = WALK_ARCH_X86_64;
	} else if (h->e_machine == EM_AARCH64) {
		c->arch = UNWIND_ARCH_AARCH64;
		c->walk_arch = WALK_ARCH_AARCH64;
	} else {
		return err_set(e, ENOTSUP, "core of e_machine %u: x86-64 and aarch64 only", h->e_machine);
	}
	size_t nphdr;
	if (elf_getphdrnum(c->elf.elf, &nphdr) != 0)
		return err_set(e, EINVAL, "cannot read the program headers: %s", elf_errmsg(-1));
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(c->elf.elf, (int)i, &ph))
			return err_set(e, EINVAL, "program header %zu: %s", i, elf_errmsg(-1));
		if (ph.p_offset > c->elf.image_size || ph.p_filesz > c->elf.image_size - ph.p_offset)
			return err_set(e, EINVAL, "segment %zu (%#" PRIx64 "+%#" PRIx64
				       ") lies past the end of the core (%zu bytes): truncated?",
				       i, (uint64_t)ph.p_offset, (uint64_t)ph.p_filesz, c->elf.image_size);
		if (ph.p_type == PT_NOTE) {
			int rc = parse_notes(c, c->elf.image + ph.p_offset, ph.p_filesz, e);
			if (rc)
				return rc;
		} else if (ph.p_type == PT_LOAD) {
			struct elf_segment *s = vec_push(&c->segs);
			if (!s)
				return err_set(e, ENOMEM, "out of memory");
			*s = (struct elf_segment){ ph.p_vaddr, ph.p_memsz, ph.p_offset,
						   ph.p_filesz < ph.p_memsz ? ph.p_filesz : ph.p_memsz,
						   ph.p_flags };
		}
	}
	if (c->threads.len == 0)
		return err_set(e, EINVAL, "no thread (NT_PRSTATUS) in the core");
	c->pid = VEC_AT(&c->threads, struct core_thread, 0).tid;
	qsort(c->segs.data, c->segs.len, sizeof(struct elf_segment), cmp_seg);
	return 0;
}

int core_open(struct core_dump *c, const char *path, struct err *e)
{
	memset(c, 0, sizeof(*c));
	int rc = elf_object_open(&c->elf, path, e);
	if (rc)
		return rc;
	if ((rc = parse(c, e)))
		core_close(c);
	return rc;
}

int core_open_mem(struct core_dump *c, const void *image, size_t size, struct err *e)
{
	memset(c, 0, sizeof(*c));
	int rc = elf_object_open_mem(&c->elf, image, size, "core", e);
	if (rc)
		return rc;
	if ((rc = parse(c, e)))
		core_close(c);
	return rc;
}

void core_close(struct core_dump *c)
{
	vec_free(&c->segs);
	vec_free(&c->threads);
	vec_free(&c->files);
	if (c->elf.elf)
		elf_object_close(&c->elf);
	memset(c, 0, sizeof(*c));
}

/* A NUL-terminated string from the core's memory; false if unreadable. */
static bool read_string(struct core_dump *c, uint64_t addr, char *buf, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (core_read(c, &buf[i], 1, addr + i) < 0)
			return false;
		if (!buf[i])
			return true;
	}
	return false;
}

/* Where to read `path` from: under the sysroot when it holds it, else the
 * path itself (qemu-user's -L semantics: a path that exists outside the
 * prefix is used as is). */
static void resolve(const char *sysroot, const char *path, char *out, size_t size)
{
	if (sysroot && sysroot[0]) {
		snprintf(out, size, "%s%s", sysroot, path);
		if (access(out, R_OK) == 0)
			return;
	}
	snprintf(out, size, "%s", path);
}

/* The build-ID the loaded image carries in memory (its PT_NOTE segments at
 * bias + p_vaddr), when the core holds those bytes. */
static bool memory_build_id(struct core_dump *c, struct elf_object *o, uint64_t bias,
			    uint8_t *id, size_t *len)
{
	size_t nphdr;
	if (elf_getphdrnum(o->elf, &nphdr) != 0)
		return false;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o->elf, (int)i, &ph) || ph.p_type != PT_NOTE || ph.p_filesz > 4096)
			continue;
		uint8_t buf[4096];
		if (core_read(c, buf, (uint32_t)ph.p_filesz, bias + ph.p_vaddr) < 0)
			continue;
		for (size_t off = 0; off + 12 <= ph.p_filesz;) {
			uint32_t nsz, dsz, type;
			memcpy(&nsz, buf + off, 4);
			memcpy(&dsz, buf + off + 4, 4);
			memcpy(&type, buf + off + 8, 4);
			size_t d = off + 12 + ((nsz + 3u) & ~3u);
			if (nsz > 4096 || dsz > 4096 || d > ph.p_filesz || ph.p_filesz - d < dsz)
				break;
			if (type == NT_GNU_BUILD_ID && nsz == 4 && !memcmp(buf + off + 12, "GNU", 4) &&
			    dsz <= BUILD_ID_MAX) {
				memcpy(id, buf + d, dsz);
				*len = dsz;
				return true;
			}
			off = d + ((dsz + 3u) & ~3u);
		}
	}
	return false;
}

/* Open one object, check it against the core, load its table and map its
 * executable segments at bias. */
static void add_object(struct core_dump *c, struct sampler_loader *ld, struct core_object *co)
{
	struct elf_object o;
	struct err oe = { { 0 } };
	if (elf_object_open(&o, co->open_path, &oe) < 0) {
		co->problem = "cannot be opened (give --sysroot?)";
		return;
	}
	uint8_t id[BUILD_ID_MAX];
	size_t len = 0;
	if (o.ehdr.e_machine != c->elf.ehdr.e_machine) {
		co->problem = "is for another architecture than the core";
	} else if (memory_build_id(c, &o, co->bias, id, &len) &&
		   (len != o.build_id_len || memcmp(id, o.build_id, len))) {
		co->problem = "has another build-ID than the object in the core";
	} else {
		struct elf_segment segs[32];
		int n = elf_object_segments(&o, segs, ARRAY_SIZE(segs), &oe);
		uint32_t obj = 0;
		if (n <= 0 || loader_add_object(ld, co->open_path, co->path, &obj, &oe) < 0) {
			co->problem = "cannot be loaded";
		} else {
			co->start = 0;
			for (int i = 0; i < n; i++) {
				if (!(segs[i].flags & PF_X) || !segs[i].memsz)
					continue;
				uint64_t start = (co->bias + segs[i].vaddr) & ~0xfffull;
				uint64_t end = co->bias + segs[i].vaddr + segs[i].memsz;
				if (!co->start)
					co->start = start;
				if (end > start && loader_add_mapping(ld, c->pid, start, end, co->bias, obj,
								      &oe) < 0)
					co->problem = "cannot be mapped (limits?)";
			}
		}
	}
	elf_object_close(&o);
}

/* NT_FILE (Linux cores): every file mapping with its offset; one object per
 * path, its bias from the mapping of its first PT_LOAD. */
static size_t objects_from_nt_file(struct core_dump *c, const char *sysroot,
				   struct core_object *out, size_t max)
{
	size_t n = 0;
	const struct core_file *f = c->files.data;
	for (size_t i = 0; i < c->files.len && n < max; i++) {
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = !strcmp(out[j].path, f[i].path);
		if (seen || f[i].path[0] != '/')
			continue;
		struct core_object *co = &out[n];
		memset(co, 0, sizeof(*co));
		snprintf(co->path, sizeof(co->path), "%s", f[i].path);
		resolve(sysroot, f[i].path, co->open_path, sizeof(co->open_path));
		/* bias from the PT_LOAD that holds this mapping's offset */
		struct elf_object o;
		struct err oe = { { 0 } };
		if (elf_object_open(&o, co->open_path, &oe) < 0)
			continue; /* not an ELF object (data files) */
		struct elf_segment segs[32];
		int ns = elf_object_segments(&o, segs, ARRAY_SIZE(segs), &oe);
		bool found = false;
		for (int s = 0; s < ns && !found; s++) {
			uint64_t page = segs[s].offset & ~0xfffull;
			if (f[i].offset >= page && f[i].offset < segs[s].offset + segs[s].filesz + 0x1000) {
				co->bias = f[i].start - f[i].offset + segs[s].offset - segs[s].vaddr;
				found = true;
			}
		}
		elf_object_close(&o);
		if (found)
			n++;
	}
	return n;
}

/* The dynamic linker's list (what libdwfl's dwfl_core_file_report reads
 * when there is no NT_FILE, as in qemu-user's cores): the executable from
 * AT_PHDR/AT_EXECFN, its PT_DYNAMIC's DT_DEBUG -> r_debug -> link_map. */
static size_t objects_from_r_debug(struct core_dump *c, const char *sysroot,
				   struct core_object *out, size_t max, struct err *e)
{
	char exe[MAX_NAME];
	if (!c->at_phdr || !c->at_execfn || !read_string(c, c->at_execfn, exe, sizeof(exe))) {
		err_set(e, ENOENT, "the core has neither NT_FILE nor a readable AT_PHDR/AT_EXECFN");
		return 0;
	}
	struct core_object *co = &out[0];
	memset(co, 0, sizeof(*co));
	snprintf(co->path, sizeof(co->path), "%s", exe);
	resolve(sysroot, exe, co->open_path, sizeof(co->open_path));
	struct elf_object o;
	if (elf_object_open(&o, co->open_path, e) < 0)
		return 0;
	size_t nphdr = 0;
	uint64_t dyn_vaddr = 0, phdr_vaddr = UINT64_MAX;
	elf_getphdrnum(o.elf, &nphdr);
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o.elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_PHDR)
			phdr_vaddr = ph.p_vaddr;
		if (ph.p_type == PT_DYNAMIC)
			dyn_vaddr = ph.p_vaddr;
	}
	uint64_t entry = o.ehdr.e_entry;
	elf_object_close(&o);
	co->bias = phdr_vaddr != UINT64_MAX ? c->at_phdr - phdr_vaddr : c->at_entry - entry;
	size_t n = 1;
	if (!dyn_vaddr)
		return n; /* static executable */
	uint64_t r_debug = 0;
	for (uint64_t i = 0; i < MAX_DYNAMIC; i++) {
		uint64_t tag, val;
		uint64_t at = co->bias + dyn_vaddr + 16 * i;
		if (read_u64(c, at, &tag) < 0 || read_u64(c, at + 8, &val) < 0 || tag == DT_NULL)
			break;
		if (tag == DT_DEBUG)
			r_debug = val;
	}
	uint64_t map = 0;
	if (!r_debug || read_u64(c, r_debug + 8, &map) < 0)
		return n;
	/* link_map: l_addr, l_name, l_ld, l_next, l_prev. */
	for (unsigned k = 0; map && k < CORE_MAX_OBJECTS && n < max; k++) {
		uint64_t l_addr, l_name, next;
		char name[MAX_NAME];
		if (read_u64(c, map, &l_addr) < 0 || read_u64(c, map + 8, &l_name) < 0 ||
		    read_u64(c, map + 24, &next) < 0)
			break;
		if (l_name && read_string(c, l_name, name, sizeof(name)) && name[0] == '/' &&
		    strcmp(name, exe) != 0) {
			co = &out[n++];
			memset(co, 0, sizeof(*co));
			snprintf(co->path, sizeof(co->path), "%s", name);
			resolve(sysroot, name, co->open_path, sizeof(co->open_path));
			co->bias = l_addr;
		}
		map = next;
	}
	return n;
}

int core_map_objects(struct core_dump *c, struct sampler_loader *ld, const char *sysroot,
		     struct core_object *out, size_t max, struct err *e)
{
	if (ld->arch != c->arch)
		return err_set(e, EINVAL, "the loader walks architecture %u, the core is %u", ld->arch,
			       c->arch);
	size_t n = c->has_nt_file ? objects_from_nt_file(c, sysroot, out, max)
				  : objects_from_r_debug(c, sysroot, out, max, e);
	if (n == 0 && e->msg[0])
		return -ENOENT;
	for (size_t i = 0; i < n; i++)
		add_object(c, ld, &out[i]);
	/* The vDSO is in the core itself (always dumped): its image from
	 * memory, linked at 0 on both architectures. */
	uint8_t hdr[64];
	if (c->at_vdso && core_read(c, hdr, sizeof(hdr), c->at_vdso) == 0 && !memcmp(hdr, ELFMAG, 4)) {
		const struct elf_segment *s = c->segs.data;
		for (size_t i = 0; i < c->segs.len; i++) {
			if (s[i].vaddr != c->at_vdso || s[i].filesz != s[i].memsz || s[i].filesz > (1u << 20))
				continue;
			uint32_t id;
			struct err ve = { { 0 } };
			if (loader_add_object_mem(ld, c->elf.image + s[i].offset, s[i].filesz, "[vdso]",
						  &id, &ve) == 0)
				loader_add_mapping(ld, c->pid, s[i].vaddr, s[i].vaddr + s[i].memsz,
						   s[i].vaddr, id, &ve);
		}
	}
	return (int)n;
}
