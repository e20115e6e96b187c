/* bpf/ user-space library: process mappings -> build-IDs -> unwind tables ->
 * sampler maps, and the user-space build of the walker.
 *
 * The loader writes through a backend, so the same code fills the BPF maps
 * (sampler_bpf.c) or an in-memory image of them (struct sampler_image) that
 * the user-space walker reads: replay tests exercise the exact bytes the BPF
 * program would see.  profiler-agent (agent-hooks/) builds on this library. */
#ifndef BPF_LOADER_H
#define BPF_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/common.h"
#include "bpf/sampler.h"

/* Explicit, configurable limits: every map's size comes from here. */
struct sampler_limits {
	uint32_t max_objects;      /* tables (one per ELF object, shared by processes) */
	uint32_t max_rules;        /* rules of all tables */
	uint32_t max_pages;        /* page-index values of all tables (4 KiB of text each) */
	uint32_t max_entry_blocks; /* blocks of 1024 entries */
	uint32_t max_mappings;     /* LPM prefixes (a mapping takes a few) */
	uint32_t ringbuf_bytes;    /* power of two, >= 4096 */
	uint32_t max_frames;       /* user frames per sample, <= SAMPLER_MAX_FRAMES */
};
void sampler_limits_default(struct sampler_limits *l);
/* Parse "name=value,…" (names as the fields above without "max_"); -EINVAL
 * on an unknown name or a bad value. */
int sampler_limits_parse(struct sampler_limits *l, const char *spec, struct err *e);

enum sampler_map_id { SMAP_TABLES, SMAP_RULES, SMAP_PAGES, SMAP_ENTRY_BLOCKS, SMAP_MAPPINGS };

struct sampler_backend {
	int (*update)(void *impl, enum sampler_map_id map, const void *key, const void *value);
	int (*remove)(void *impl, enum sampler_map_id map, const void *key);
	void *impl;
};

/* An in-memory image of the maps (the user-space backend). */
struct sampler_image {
	struct sampler_limits lim;
	struct table_info *tables;
	uint8_t *table_present; /* tables[i] written */
	struct unwind_rule *rules;
	uint32_t *pages;
	struct entry_block *blocks;
	struct image_prefix {
		struct mapping_key key;
		struct mapping_value value;
	} *prefixes;
	size_t nprefixes;
};
int sampler_image_init(struct sampler_image *img, const struct sampler_limits *lim, struct err *e);
void sampler_image_free(struct sampler_image *img);
struct sampler_backend sampler_image_backend(struct sampler_image *img);
/* Longest-prefix match, as the LPM trie answers it. */
const struct mapping_value *sampler_image_mapping(const struct sampler_image *img, uint32_t pid,
						  uint64_t addr);

/* Where a table came from. */
enum table_origin { TABLE_NONE = 0, TABLE_COMPILED, TABLE_FETCHED };

/* An object the loader knows: identified by build-ID, or by path without one. */
struct loaded_object {
	uint32_t id;
	bool has_table;           /* false: walked by frame pointers */
	bool evicted;             /* table unloaded (unused); reloaded on next use */
	uint8_t origin;           /* enum table_origin */
	char build_id[BUILD_ID_HEX_MAX]; /* "" when none */
	char path[256];
	uint64_t table_bytes;
	uint32_t entries, rules, pages;
	/* Invariant: refs == number of loaded_mappings naming this object.
	 * A table with refs == 0 stays loaded (a process of the same binary
	 * may start soon) until evicted for space or by loader_unload_unused. */
	uint32_t refs;
	uint64_t last_used_ns;    /* when refs last dropped to 0 */
	uint32_t rules_first, pages_first, blocks_first, blocks; /* its slices */
	char note[128];           /* why there is no table */
};

/* Where tables come from before local compilation (the agent fetches them
 * from the server).  fetch() returns 0 with a malloc'ed table in *data,
 * which the loader validates with unwind_table_open, or a negative errno
 * (-ENOENT: compile locally).  Asked only for objects with a build-ID. */
struct loader_table_source {
	int (*fetch)(void *arg, const char *build_id, const char *path, uint8_t **data,
		     size_t *size, struct err *e);
	void *arg;
};

/* Free space of one global array (rules, pages, entry blocks): a bump
 * pointer plus ranges returned by evicted tables, first fit. */
struct loader_space {
	uint32_t top;
	struct vec free; /* struct loader_range, sorted by first, coalesced */
};
struct loader_range {
	uint32_t first, count;
};

/* One executable mapping already inserted for a pid. */
struct loaded_mapping {
	uint32_t pid;
	uint64_t start, end, bias;
	uint32_t object_id;
};

struct sampler_loader {
	struct sampler_limits lim;
	/* UNWIND_ARCH_* of the processes walked (loader_init: this host's;
	 * core-dump replay sets the core's): tables of another are refused. */
	uint16_t arch;
	struct sampler_backend be;
	struct vec objects;  /* struct loaded_object, index == id */
	struct vec mappings; /* struct loaded_mapping */
	uint32_t rules_used, pages_used, blocks_used, prefixes_used;
	uint32_t anon_object; /* object id of "[anon]" (FP only), OBJECT_NONE until used */
	struct loader_table_source source; /* zero: always compile locally */
	struct loader_space space[3];      /* rules, pages, entry blocks */
	/* Reported to the user: tables evicted to make room, tables refused
	 * (left to frame pointers) because even eviction left no room, and
	 * tables whose fetched bytes failed validation. */
	uint64_t evictions, refusals, bad_fetches;
};

int loader_init(struct sampler_loader *ld, const struct sampler_limits *lim,
		const struct sampler_backend *be, struct err *e);
void loader_free(struct sampler_loader *ld);

/* Load the table of an ELF object (from `open_path`, reported as
 * `display_path`), once per build-ID.  An object without usable CFI is
 * registered as FP-only (still named in frames).  *id receives its id. */
int loader_add_object(struct sampler_loader *ld, const char *open_path, const char *display_path,
		      uint32_t *id, struct err *e);
/* Same from an ELF image in memory (the vDSO). */
int loader_add_object_mem(struct sampler_loader *ld, const void *image, size_t size,
			  const char *display_path, uint32_t *id, struct err *e);

/* Load another table for object id in place of the one it has (the
 * server's copy of a table compiled here): validated with
 * unwind_table_open, written beside the old one, then switched to at once.
 * 0, or -errno with the old table still in use. */
int loader_replace_table(struct sampler_loader *ld, uint32_t id, const uint8_t *data, size_t size,
			 enum table_origin origin, struct err *e);

struct loader_proc_stats {
	unsigned new_mappings, objects_failed;
};
/* Read /proc/PID/maps and insert every executable mapping not yet known
 * (objects are loaded on the way).  Cheap when nothing changed. */
int loader_add_process(struct sampler_loader *ld, pid_t pid, struct loader_proc_stats *st,
		       struct err *e);
/* Forget a process's mappings (its tables stay: other processes share them;
 * a table nobody maps any more becomes evictable). */
int loader_remove_process(struct sampler_loader *ld, pid_t pid, struct err *e);
/* Unload the tables unused (refs == 0) since before `unused_before_ns`
 * (now_ns() clock); returns how many were unloaded. */
unsigned loader_unload_unused(struct sampler_loader *ld, uint64_t unused_before_ns);
void loader_set_table_source(struct sampler_loader *ld, const struct loader_table_source *src);
/* Insert [start, end) of pid as code of object id at bias (runtime address
 * - file address), for a process not read from /proc (a core dump). */
int loader_add_mapping(struct sampler_loader *ld, uint32_t pid, uint64_t start, uint64_t end,
		       uint64_t bias, uint32_t id, struct err *e);
/* Mapping of pid holding runtime address addr, or NULL. */
const struct loaded_mapping *loader_find_mapping(const struct sampler_loader *ld, uint32_t pid,
						 uint64_t addr);

const struct loaded_object *loader_object(const struct sampler_loader *ld, uint32_t id);

/* Format a frame the way unwind-sample prints it:
 * "<build-id or path>+0x<addr>" (or "0x<addr>" without an object). */
void loader_format_frame(const struct sampler_loader *ld, const struct frame *f, char *buf,
			 size_t size);

/* Walk names for "[truncated:<reason>]". */
const char *walk_reason_name(unsigned reason);

/* The user-space build of walker.c.  Memory reads are served from `stack`
 * (stack_size bytes copied from stack_addr); anything else fails, like a
 * perf sample's stack copy.  Or, when `read` is set, by read(read_arg, …)
 * alone (a core dump: 0 or -errno).  regs are DWARF-numbered, all valid;
 * arch is WALK_ARCH_* (0: x86-64). */
struct replay_input {
	uint32_t pid, tid;
	uint64_t regs[SAMPLER_REGS];
	const uint8_t *stack;
	size_t stack_size;
	uint64_t stack_addr;
	uint8_t arch;
	int (*read)(void *read_arg, void *dst, uint32_t size, uint64_t addr);
	void *read_arg;
};
void replay_walk(const struct sampler_image *img, const struct replay_input *in, uint8_t mode,
		 uint32_t max_frames, struct sample_record *out, uint64_t counters[SAMPLER_COUNTERS]);

/* --- the BPF sampler (sampler_bpf.c; needs root/CAP_BPF+CAP_PERFMON, BTF) --- */
struct sampler_bpf;
struct sampler_bpf_options {
	struct sampler_limits lim;
	uint32_t target_tgid; /* 0: every process */
	uint8_t mode;         /* enum walk_mode */
	bool kernel_stacks;
};
/* Open and load the BPF object with the limits and options; the maps are
 * then filled through sampler_bpf_backend(). */
int sampler_bpf_open(struct sampler_bpf **out, const struct sampler_bpf_options *opt,
		     struct err *e);
struct sampler_backend sampler_bpf_backend(struct sampler_bpf *s);
/* One cpu-clock perf event per CPU at `frequency_hz`, running the program. */
int sampler_bpf_attach(struct sampler_bpf *s, uint32_t frequency_hz, struct err *e);
/* Deliver ring-buffer records; returns the number delivered or -errno. */
typedef void (*sampler_record_fn)(void *arg, const struct sample_record *rec, size_t size);
int sampler_bpf_poll(struct sampler_bpf *s, int timeout_ms, sampler_record_fn fn, void *arg);
/* Counters summed over CPUs (enum walk_reason, then enum sampler_counter). */
int sampler_bpf_counters(struct sampler_bpf *s, uint64_t out[SAMPLER_COUNTERS], struct err *e);
/* Kernel memory charged to the maps (fdinfo memlock), optionally per map. */
uint64_t sampler_bpf_map_memory(struct sampler_bpf *s, FILE *detail);
/* The kernel's run-time statistics of the program (kernel.bpf_stats_enabled). */
int sampler_bpf_run_stats(struct sampler_bpf *s, uint64_t *run_ns, uint64_t *run_cnt);
/* How this kernel's sampler walks ("bpf_loop, …" or "tail calls, …"). */
const char *sampler_bpf_walk(const struct sampler_bpf *s);
void sampler_bpf_close(struct sampler_bpf *s);

#endif
