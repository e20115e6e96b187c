/* Core-dump replay: unwind every thread of an ELF core (x86-64 or aarch64)
 * with our tables and the user-space build of the BPF walker.
 *
 * The core is untrusted input: every note, segment and pointer read from it
 * is bounds-checked; lists read from its memory (the dynamic section,
 * r_debug's link_map chain) are bounded.  `unwind-sample --core` is the
 * command; tests/fuzz/fuzz_core.c feeds core_open/core_map_objects any
 * bytes. */
#ifndef BPF_CORE_H
#define BPF_CORE_H

#include "bpf/loader.h"

#define CORE_MAX_THREADS 4096
#define CORE_MAX_OBJECTS 1024

struct core_thread {
	uint32_t tid;
	uint64_t regs[SAMPLER_REGS]; /* DWARF-numbered */
};

struct core_dump {
	struct elf_object elf;
	uint16_t arch;        /* UNWIND_ARCH_* */
	uint8_t walk_arch;    /* WALK_ARCH_* */
	uint32_t pid;
	struct vec segs;      /* struct elf_segment: the core's PT_LOADs, by vaddr */
	struct vec threads;   /* struct core_thread, in note order */
	struct vec files;     /* struct core_file: NT_FILE entries */
	uint64_t at_phdr, at_entry, at_execfn, at_vdso;
	bool has_nt_file;
};

struct core_file {
	uint64_t start, end, offset;
	const char *path; /* into the core's note */
};

/* Open and parse a core: -errno with a one-line reason (not a core, a
 * truncated note, an architecture we do not walk, no thread). */
int core_open(struct core_dump *c, const char *path, struct err *e);
int core_open_mem(struct core_dump *c, const void *image, size_t size, struct err *e);
void core_close(struct core_dump *c);

/* Read process memory the core holds: 0 or -EFAULT. */
int core_read(void *core, void *dst, uint32_t size, uint64_t addr);

/* One object mapped by the process, found from NT_FILE or from the
 * dynamic linker's r_debug list. */
struct core_object {
	char path[512];      /* as the process named it */
	char open_path[512]; /* where we read it (under the sysroot) */
	uint64_t bias;       /* runtime - file address */
	uint64_t start;      /* lowest runtime address of its code, for messages */
	const char *problem; /* NULL, or why it was not used */
};

/* Find the objects, load their tables into ld (whose arch must be the
 * core's) and insert their code mappings for the core's pid.  Objects that
 * cannot be opened or whose build-ID differs from the one in the core are
 * skipped and reported in out[] (frames there stop with no-mapping).
 * Returns the number of objects (<= max) or -errno. */
int core_map_objects(struct core_dump *c, struct sampler_loader *ld, const char *sysroot,
		     struct core_object *out, size_t max, struct err *e);

#endif
