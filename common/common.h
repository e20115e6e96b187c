/* Shared helpers for every component: error reporting, ELF access, build-IDs.
 *
 * Error convention: functions return 0 on success or a negative errno, and
 * fill a caller-supplied struct err with one human sentence that carries the
 * context (file, offset, what was expected).  The caller that talks to the
 * user prefixes what it knows (usually the file name) and prints it once. */
#ifndef COMMON_H
#define COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <gelf.h>

struct err {
	char msg[512];
};

/* Record an error (the first one wins: the innermost cause is the useful one)
 * and return -errnum so callers can write `return err_set(e, EINVAL, ...)`. */
int err_set(struct err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void err_clear(struct err *e);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Growable array of fixed-size elements. */
struct vec {
	void *data;
	size_t len, cap, elem_size;
};
void vec_init(struct vec *v, size_t elem_size);
void *vec_push(struct vec *v); /* zeroed new element, NULL on ENOMEM */
int vec_reserve(struct vec *v, size_t cap);
void vec_free(struct vec *v);
#define VEC_AT(v, type, i) (((type *)(v)->data)[i])

/* Sort v ascending and drop repeats; returns the new length. */
size_t sort_unique_u64(uint64_t *v, size_t n);

/* Build-IDs: at most 64 bytes (NT_GNU_BUILD_ID is usually 20). */
#define BUILD_ID_MAX 64
#define BUILD_ID_HEX_MAX (2 * BUILD_ID_MAX + 1)
void build_id_to_hex(const uint8_t *id, size_t len, char *hex /* BUILD_ID_HEX_MAX */);
/* Parse lowercase or uppercase hex of an even length 2..128; -EINVAL otherwise. */
int build_id_from_hex(const char *hex, uint8_t *id, size_t *len);

/* How an object's identity was found (docs/identity.md). */
enum elf_id_kind {
	ELF_ID_NONE = 0,
	ELF_ID_GNU = 1,     /* NT_GNU_BUILD_ID, as the linker wrote it */
	ELF_ID_GO = 2,      /* SHA-256("go-buildid" NUL, Go build-ID note) truncated */
	ELF_ID_CONTENT = 3, /* SHA-256("elf-content" NUL, size, head, tail) truncated */
};
#define ELF_ID_GO_PREFIX      "go-buildid"
#define ELF_ID_GO_LEN         20
#define ELF_ID_CONTENT_PREFIX "elf-content"
#define ELF_ID_CONTENT_LEN    16
#define ELF_ID_CONTENT_CHUNK  4096
/* "gnu", "go", "content" (or "none"), for messages and JSON. */
const char *elf_id_kind_name(enum elf_id_kind k);

/* One PT_LOAD segment, for address normalization (docs/architecture.md, "Addresses"). */
struct elf_segment {
	uint64_t vaddr, memsz, offset, filesz;
	uint32_t flags; /* PF_X | PF_W | PF_R */
};

/* An ELF object opened from a file or from a caller's memory buffer.
 * Read-only; independent objects may be used from different threads. */
struct elf_object {
	Elf *elf;
	int fd;               /* -1 when opened from memory */
	const uint8_t *image; /* the whole file (mmap or caller buffer) */
	size_t image_size;
	bool image_mapped;    /* image was mmap'ed by us */
	GElf_Ehdr ehdr;
	/* The object's identity (docs/identity.md): its GNU build-ID, else
	 * one derived from its Go build-ID note, else a hash of its content.
	 * Every opened object has one; id_kind says which. */
	uint8_t build_id[BUILD_ID_MAX];
	size_t build_id_len;  /* 0 only if hashing failed (out of memory) */
	enum elf_id_kind id_kind;
	char name[256];       /* for messages */
	/* Largest decompressed section elf_object_section() will produce
	 * (-EFBIG beyond); 0 = ELF_MAX_DECOMPRESSED.  Set after opening. */
	uint64_t max_decompressed;
};

/* The default cap on one decompressed section: hostile headers can claim
 * any size, and a real .debug_info this large is rare. */
#define ELF_MAX_DECOMPRESSED (256ull << 20)

int elf_object_open(struct elf_object *o, const char *path, struct err *e);
int elf_object_open_mem(struct elf_object *o, const void *buf, size_t size,
			const char *name, struct err *e);
void elf_object_close(struct elf_object *o);

/* A section's contents, decompressed when SHF_COMPRESSED (zlib or zstd).
 * data points into the image or into `owned` (free with section_free). */
struct section {
	const uint8_t *data;
	size_t size;
	uint64_t addr;     /* sh_addr */
	uint32_t type;     /* sh_type; SHT_NOBITS sections have size 0 */
	uint64_t flags;
	void *owned;
	bool found;
};
/* The header of the first section called `name`; false when there is none
 * (or no section headers at all). */
bool elf_object_shdr(struct elf_object *o, const char *name, GElf_Shdr *out);
/* Whether section `name` exists with at least min_size bytes in the file
 * (not SHT_NOBITS, inside the image). */
bool elf_object_has_data(struct elf_object *o, const char *name, uint64_t min_size);

/* Find a section by name.  Not found is not an error (s->found = false);
 * a section that cannot be read or decompressed is. */
int elf_object_section(struct elf_object *o, const char *name, struct section *s,
		       struct err *e);
void section_free(struct section *s);

/* What reading o's sections would allocate, from the headers alone (for
 * estimates made before the work): `inflated` sums the decompressed sizes
 * claimed by SHF_COMPRESSED sections (of every section, or of the one
 * called `name` when name is not NULL); `dwarf` sums the .debug_* sections
 * as they read (decompressed); `largest` is the largest claimed
 * decompressed section. */
struct elf_plain_sizes {
	uint64_t inflated, dwarf, largest;
};
void elf_object_plain_sizes(struct elf_object *o, const char *name, struct elf_plain_sizes *out);

/* The PT_LOAD segments, in program-header order; returns the count or -errno. */
int elf_object_segments(struct elf_object *o, struct elf_segment *segs, size_t max,
			struct err *e);

/* Open a regular file for reading: the fd, st filled; -errno (not a
 * regular file: -EINVAL). */
int open_regular_file(const char *path, struct stat *st, struct err *e);
/* Read a whole file into memory, refusing files larger than max_size. */
int read_file(const char *path, size_t max_size, uint8_t **out, size_t *out_size,
	      struct err *e);

/* Write a whole file atomically: a temporary file beside it, fsync, rename.
 * A reader sees the old file or the new one, never a part. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
		      struct err *e);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* The value of one hex digit (either case), -1 for anything else. */
int hex_value(int c);

/* Any byte below 0x20, or DEL?  (Never shown raw in a header, a name.) */
bool has_control_byte(const char *s);

/* UTF-8 as RFC 3629 defines it: the length (1-4) of the well-formed
 * sequence at s[0..n), or 0 when there is none (a stray continuation byte,
 * an overlong form, a surrogate, past U+10FFFF, cut short). */
size_t utf8_sequence(const unsigned char *s, size_t n);
bool utf8_valid(const char *s, size_t n);
/* The one rule for text we did not write (DWARF, file names, labels) on its
 * way into JSON: each byte that starts no well-formed sequence becomes
 * U+FFFD.  Returns a malloc'ed copy, NULL on ENOMEM. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"
char *utf8_scrub(const char *s);

#endif
