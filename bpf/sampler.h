/* The one header that the BPF sampler (sampler.bpf.c) and user space (the
 * loader, the replay walker, unwind-sample and profiler-agent) agree on.
 *
 * Map layout (all declared at the top of sampler.bpf.c; sizes set by the
 * loader from struct sampler_limits, so memory is bounded and explicit):
 *
 *   mappings      LPM_TRIE, no prealloc   {pid, address prefix} -> mapping_value
 *   tables        ARRAY  table id          -> table_info (where its slices are)
 *   rules         ARRAY  global rule index -> struct unwind_rule (12 B)
 *   pages         ARRAY  global page index -> __u32 (entry index, object-relative)
 *   entry_blocks  ARRAY  block index       -> 1024 entries of 3 bytes
 *   counters      PERCPU_ARRAY reason      -> __u64
 *   scratch       PERCPU_ARRAY 0           -> sample_record being built
 *   samples       RINGBUF                  sample_record (variable length)
 *
 * A table (one per ELF object, keyed by build-ID in the loader, so libc is
 * loaded once for every process) is copied into rules/pages/entry_blocks as
 * the unwind-compiler produced it: no re-encoding.  Page values stay relative
 * to the object's first entry; table_info says where each slice starts.
 * An object's entries start on a block boundary so no block is shared.
 */
#ifndef BPF_SAMPLER_H
#define BPF_SAMPLER_H

#include "unwind-compiler/unwind_table.h"

/* Hard ceilings; the run-time limits in struct sampler_limits are <= these. */
#define SAMPLER_MAX_FRAMES   256 /* user frames per sample (power of two) */
#define SAMPLER_MAX_KFRAMES  127 /* kernel frames (perf_event_max_stack default) */
/* Registers of a walk, DWARF-numbered: x86-64 uses 0..16 (RIP = 16),
 * aarch64 0..32 (X0..X30, SP = 31, PC = 32). */
#define SAMPLER_REGS         UNWIND_A64_NREGS

/* Without bpf_loop (kernels before 5.17) the walk is a chain of programs
 * joined by tail calls, each unwinding this many frames in a bounded loop;
 * a chain has at most 33 programs (the kernel's tail-call limit, 32 on 5.10,
 * plus the first), so 33 * 8 >= SAMPLER_MAX_FRAMES. */
#define SAMPLER_CHAIN_FRAMES 8
#define SAMPLER_CHAIN_PROGS  33

#define ENTRY_BLOCK_ENTRIES  1024
#define ENTRY_BLOCK_BYTES    (ENTRY_BLOCK_ENTRIES * UNWIND_ENTRY_SIZE)

/* The object id of a mapping with no object we know (never stored). */
#define OBJECT_NONE          0xffffffffu

/* Why a walk stopped.  WALK_END is the only success: the outermost frame was
 * reached (return address undefined, zero, or a zero frame pointer). */
enum walk_reason {
	WALK_END = 0,
	WALK_NO_MAPPING = 1,   /* PC in no known mapping (JIT not registered, maps stale) */
	WALK_NO_ROW = 2,       /* table has no row for the PC (gap, code without CFI) */
	WALK_UNSUPPORTED = 3,  /* row is UNWIND_CFA_UNSUPPORTED or an unknown rule */
	WALK_NEED_REG = 4,     /* rule uses a register only known in the interrupted frame */
	WALK_READ = 5,         /* reading the stack (CFA, RA, RBP) failed */
	WALK_MAX_FRAMES = 6,   /* frame limit reached */
	WALK_NO_PROGRESS = 7,  /* the CFA did not move up the stack */
	WALK_NO_TABLE = 8,     /* mapping names a table that is not loaded */
	WALK_KERNEL_THREAD = 9,/* sample of a kernel thread: no user stack */
	WALK_REASONS = 10,
};

/* Counters (per CPU); the first WALK_REASONS are per stop reason. */
enum sampler_counter {
	CNT_SAMPLES = WALK_REASONS, /* samples taken for the target */
	CNT_FRAMES,                 /* user frames recorded */
	CNT_RB_DROPS,               /* ring buffer full: sample lost */
	CNT_FP_STEPS,               /* frames unwound by frame pointer */
	CNT_SIGNAL_FRAMES,          /* signal frames crossed */
	CNT_KSTACK_ERRORS,          /* bpf_get_stack failed */
	SAMPLER_COUNTERS,
};

/* Walk modes (load-time option). */
enum walk_mode {
	MODE_DWARF = 0,  /* table-driven walk, frame pointers where there is no table */
	MODE_FP = 1,     /* frame pointers only, by our walker (no tables consulted) */
	MODE_KERNEL_FP = 2, /* bpf_get_stack(BPF_F_USER_STACK): the kernel's FP walk */
};

/* LPM key: pid and address, both big-endian so prefixes are bit prefixes. */
struct mapping_key {
	__u32 prefixlen; /* 32 (pid) + address bits */
	__u32 pid_be;
	__u64 addr_be;
};

/* Mapping flags. */
#define MAPPING_F_FP_ONLY 0x1 /* no table: walk this code by frame pointers */

struct mapping_value {
	__u64 bias;       /* runtime address - file address */
	__u64 start, end; /* the whole mapping, so the walker can reuse one
			   * lookup for the next frames in the same object */
	__u32 object_id;  /* index into `tables`; names the object in frames */
	__u32 flags;      /* MAPPING_F_* */
};

/* Where one object's table slices live in the global arrays. */
struct table_info {
	__u64 base;          /* header.base */
	__u32 page_count;    /* pages[pages_first .. + page_count] (page_count + 1 values) */
	__u32 entry_count;
	__u32 rule_count;
	__u32 rules_first;   /* global index of rule 0 */
	__u32 pages_first;   /* global index of pages[0] */
	__u32 entries_first; /* global entry index of entry 0 (multiple of 1024) */
};

struct entry_block {
	__u8 bytes[ENTRY_BLOCK_BYTES];
};

/* Frame kinds (docs/architecture.md, "Addresses"): the leaf PC (or a PC restored from a signal
 * frame) is looked up as is; a return address as address - 1. */
#define FRAME_LEAF   0
#define FRAME_RETURN 1

/* One user frame: the address as unwound, normalized to the object's file
 * addresses (runtime - bias); OBJECT_NONE keeps the runtime address. */
struct frame {
	__u64 addr;
	__u32 object_id;
	__u8 kind;    /* FRAME_LEAF / FRAME_RETURN */
	__u8 via_fp;  /* this frame's caller was found by frame pointer */
	__u16 pad;
};

/* A sample as it leaves BPF on the ring buffer; only the first user_frames
 * frames are sent (the record is cut there).  Frames are leaf first. */
struct sample_record {
	__u64 time_ns;
	__u32 pid, tid;
	__u32 cpu;
	__u8 reason;        /* enum walk_reason */
	__u8 mode;          /* enum walk_mode */
	__u16 user_frames;
	__s32 kernel_frames;/* < 0: bpf_get_stack error; 0: sample hit user mode */
	__u32 pad;
	__u64 kstack[SAMPLER_MAX_KFRAMES + 1];
	struct frame frames[SAMPLER_MAX_FRAMES];
};

#define SAMPLE_HEADER_BYTES ((unsigned long)&((struct sample_record *)0)->frames)

/* The architecture a walk follows (walk_regs.arch). */
#define WALK_ARCH_X86_64  0
#define WALK_ARCH_AARCH64 1

/* Register state of the walk: DWARF-numbered registers and which are known.
 * After an ordinary frame step only RSP, RBP and RIP are known (aarch64: SP,
 * X29, X30 and PC); after a signal frame all of them are (they come from
 * the kernel's ucontext / rt_sigframe). */
struct walk_regs {
	__u64 r[SAMPLER_REGS];
	__u64 valid;     /* bit n: r[n] known */
	__u8 is_return;  /* r[RIP] is a return address: look up RIP - 1 */
	__u8 arch;       /* WALK_ARCH_* */
	__u8 pad[6];
	struct mapping_value last; /* last mapping found (end == 0: none) */
};
#define WALK_ALL_REGS ((1ull << SAMPLER_REGS) - 1)

/* Per-CPU scratch: the record being built and the walk's state. */
struct sampler_scratch {
	struct walk_regs regs;
	struct sample_record rec;
};

/* struct ucontext on x86-64: uc_mcontext (struct sigcontext) sits after
 * uc_flags (8), uc_link (8) and uc_stack (24).  A sigreturn trampoline runs
 * with RSP pointing at the ucontext (the handler's `ret` popped pretcode). */
#define SIGFRAME_MCONTEXT_OFFSET 40
/* struct sigcontext_64 register slots, in order, as DWARF numbers. */
#define SIGCONTEXT_NREGS 17

_Static_assert(sizeof(struct mapping_key) == 16, "mapping_key is 16 bytes");
_Static_assert(sizeof(struct mapping_value) == 32, "mapping_value is 32 bytes");
_Static_assert(sizeof(struct table_info) == 32, "table_info is 32 bytes");
_Static_assert(sizeof(struct frame) == 16, "frame is 16 bytes");
_Static_assert(sizeof(struct entry_block) == 3072, "entry block is 3 KiB");
_Static_assert(sizeof(struct sample_record) == 32 + 8 * 128 + 16 * 256, "sample_record layout");
_Static_assert(sizeof(struct walk_regs) == 8 * 33 + 16 + 32, "walk_regs layout");
_Static_assert(sizeof(struct sampler_scratch) <= 32768, "per-CPU value limit is 32 KiB");
_Static_assert((SAMPLER_MAX_FRAMES & (SAMPLER_MAX_FRAMES - 1)) == 0, "power of two");
_Static_assert(SAMPLER_CHAIN_FRAMES * SAMPLER_CHAIN_PROGS >= SAMPLER_MAX_FRAMES,
	       "a tail-call chain walks every frame a record holds");

#endif
