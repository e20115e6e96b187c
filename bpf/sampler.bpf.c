// SPDX-License-Identifier: GPL-2.0
/* perf_event sampler: user stacks by the table-driven walker (walker.c),
 * kernel stacks by bpf_get_stack, one ring-buffer record per sample.
 *
 * Minimum kernel: 5.10 with BTF (ring buffers 5.8, LPM tries without
 * preallocation).  Two builds of the walk loop, chosen at load time from
 * libbpf's feature probes (bpf/features.c), the other left unloaded:
 *   sample        bpf_loop (5.17): one frame per callback;
 *   sample_chain  before that: SAMPLER_CHAIN_FRAMES frames in a bounded
 *   + walk_more   loop, then a tail call to walk_more for the next ones.
 * Likewise bpf_task_pt_regs (5.15) or, before it, the user registers at the
 * top of the task's kernel stack (have_task_pt_regs).  Tested on 5.10, 6.1,
 * 6.12 (tests/vm) and 6.18. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "bpf/sampler.h"

char LICENSE[] SEC("license") = "GPL";

/* Load-time options (set through the skeleton's rodata before load). */
const volatile __u32 target_tgid = 0; /* 0: every process */
const volatile __u32 max_frames = 128;
const volatile __u8 walk_mode = MODE_DWARF;
const volatile __u8 kernel_stacks = 1;
/* Feature choices (bpf/features.c): the branch not taken is dead code the
 * verifier removes, so its helpers need not exist. */
const volatile __u8 have_task_pt_regs = 1;

/* Map sizes are defaults; the loader sets them from struct sampler_limits. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mapping_key);
	__type(value, struct mapping_value);
	__uint(max_entries, 65536);
} mappings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct table_info);
	__uint(max_entries, 1024);
} tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct unwind_rule);
	__uint(max_entries, 65536);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 131072);
} pages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct entry_block);
	__uint(max_entries, 2048);
} entry_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SAMPLER_COUNTERS);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sampler_scratch);
	__uint(max_entries, 1);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} samples SEC(".maps");

/* walk_more, for the tail-call chain (sampler_bpf.c fills slot 0).  No BTF
 * key/value types: 5.10 refuses them on program arrays. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1);
} walk_chain SEC(".maps");

#define PF_KTHREAD 0x00200000
/* THREAD_SIZE on x86-64 and arm64 without KASAN: the user registers sit at
 * the top of the task's kernel stack (task_pt_regs()). */
#define KERNEL_THREAD_SIZE 16384

/* --- the walker's shim --- */
struct walk_env {
	__u32 pid;
	__u32 seed; /* unknown to the verifier: see W_OPAQUE */
};

#define WALK_INLINE __always_inline
/* x ^ seed ^ seed == x, but the verifier forgets x's range, so both arms of
 * a binary-search step reach the loop head in the same state and prune. */
#define W_OPAQUE(env, x)                                                          \
	({                                                                        \
		__u32 __v = (x);                                                  \
		asm volatile("%0 ^= %1\n\t%0 ^= %1" : "+r"(__v) : "r"((env)->seed)); \
		__v;                                                              \
	})

static __always_inline void w_count(struct walk_env *env, enum sampler_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += 1;
}

static __always_inline int w_read(struct walk_env *env, void *dst, __u32 size, __u64 addr)
{
	return bpf_probe_read_user(dst, size, (const void *)addr) < 0 ? -1 : 0;
}

static __always_inline const struct mapping_value *w_mapping(struct walk_env *env, __u64 addr)
{
	struct mapping_key k = {
		.prefixlen = 96,
		.pid_be = bpf_htonl(env->pid),
		.addr_be = __builtin_bswap64(addr),
	};
	return bpf_map_lookup_elem(&mappings, &k);
}

static __always_inline const struct table_info *w_table(struct walk_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&tables, &id);
}

static __always_inline __u32 *w_page(struct walk_env *env, __u32 idx)
{
	return bpf_map_lookup_elem(&pages, &idx);
}

static __always_inline const __u8 *w_entry(struct walk_env *env, __u32 idx)
{
	__u32 block = idx / ENTRY_BLOCK_ENTRIES;
	struct entry_block *b = bpf_map_lookup_elem(&entry_blocks, &block);
	if (!b)
		return 0;
	return b->bytes + (idx & (ENTRY_BLOCK_ENTRIES - 1)) * UNWIND_ENTRY_SIZE;
}

static __always_inline const struct unwind_rule *w_rule(struct walk_env *env, __u32 idx)
{
	return bpf_map_lookup_elem(&rules, &idx);
}

/* One architecture per BPF object: the other half of the walker is dead
 * code the compiler drops. */
#if defined(__TARGET_ARCH_arm64)
#define W_A64(st) 1
#else
#define W_A64(st) 0
#endif

#include "bpf/walker.c"

static long walk_frame(__u32 i, void *ctx)
{
	struct walk_env *env = ctx;
	__u32 zero = 0;
	struct sampler_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 1;
	return walk_step(env, &s->regs, &s->rec, max_frames, walk_mode);
}

#if defined(__TARGET_ARCH_arm64)
/* user_pt_regs: regs[31], sp, pc (DWARF X0..X30, SP = 31, PC = 32). */
static __always_inline void regs_from_pt(struct walk_regs *w, struct pt_regs *r)
{
	/* Unrolled: r may be the perf event's context, which the verifier
	 * lets us read only at constant offsets. */
#pragma unroll
	for (int i = 0; i < 31; i++)
		w->r[i] = r->regs[i];
	w->r[UNWIND_A64_SP] = r->sp;
	w->r[UNWIND_A64_PC] = r->pc;
	w->arch = WALK_ARCH_AARCH64;
}
#else
static __always_inline void regs_from_pt(struct walk_regs *w, struct pt_regs *r)
{
	w->arch = WALK_ARCH_X86_64;
	w->r[UNWIND_X86_RAX] = r->ax;
	w->r[UNWIND_X86_RDX] = r->dx;
	w->r[UNWIND_X86_RCX] = r->cx;
	w->r[UNWIND_X86_RBX] = r->bx;
	w->r[UNWIND_X86_RSI] = r->si;
	w->r[UNWIND_X86_RDI] = r->di;
	w->r[UNWIND_X86_RBP] = r->bp;
	w->r[UNWIND_X86_RSP] = r->sp;
	w->r[8] = r->r8;
	w->r[9] = r->r9;
	w->r[10] = r->r10;
	w->r[11] = r->r11;
	w->r[12] = r->r12;
	w->r[13] = r->r13;
	w->r[14] = r->r14;
	w->r[15] = r->r15;
	w->r[UNWIND_X86_RIP] = r->ip;
}
#endif

/* The start of every sample: the record's header, the user registers and
 * the kernel stack.  Returns the scratch holding the record, or NULL when
 * there is nothing to send; *walk is 0 when the record is already complete
 * (kernel thread, unreadable registers). */
static __always_inline struct sampler_scratch *sample_begin(struct bpf_perf_event_data *ctx,
							     struct walk_env *env, int *walk)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	*walk = 0;
	if (tgid == 0 || (target_tgid && tgid != target_tgid))
		return 0;
	__u32 zero = 0;
	struct sampler_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	env->pid = tgid;
	env->seed = bpf_get_prandom_u32();
	w_count(env, CNT_SAMPLES);

	struct sample_record *rec = &s->rec;
	rec->time_ns = bpf_ktime_get_ns();
	rec->pid = tgid;
	rec->tid = (__u32)id;
	rec->cpu = bpf_get_smp_processor_id();
	rec->reason = WALK_END;
	rec->mode = walk_mode;
	rec->user_frames = 0;
	rec->kernel_frames = 0;
	rec->pad = 0;

	__u32 task_flags;
	struct pt_regs *uregs;
	if (have_task_pt_regs) {
		struct task_struct *task = bpf_get_current_task_btf();
		task_flags = task->flags;
		uregs = (struct pt_regs *)bpf_task_pt_regs(task);
	} else {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		task_flags = BPF_CORE_READ(task, flags);
		uregs = (struct pt_regs *)((char *)BPF_CORE_READ(task, stack) + KERNEL_THREAD_SIZE) - 1;
	}
	if (task_flags & PF_KTHREAD) {
		rec->reason = WALK_KERNEL_THREAD;
		return s;
	}

	/* User registers: from the sample when it hit user mode, else the
	 * ones saved on kernel entry. */
	/* ctx loads must be 8 bytes wide: cs is the 18th word of pt_regs. */
	int in_kernel = (((__u64 *)&ctx->regs)[17] & 3) == 0;
	if (in_kernel) {
		struct pt_regs r;
		if (bpf_probe_read_kernel(&r, sizeof(r), uregs) < 0) {
			rec->reason = WALK_READ;
			return s;
		}
		regs_from_pt(&s->regs, &r);
		if (kernel_stacks) {
			long n = bpf_get_stack(ctx, rec->kstack, sizeof(rec->kstack), 0);
			if (n < 0)
				w_count(env, CNT_KSTACK_ERRORS);
			rec->kernel_frames = n < 0 ? (__s32)n : (__s32)(n / 8);
		}
	} else {
		regs_from_pt(&s->regs, (struct pt_regs *)&ctx->regs);
	}
	s->regs.valid = WALK_ALL_REGS;
	s->regs.is_return = 0;
	s->regs.last.start = 0;
	s->regs.last.end = 0;
	*walk = 1;
	return s;
}

/* The kernel's frame-pointer walk, for comparison: raw runtime addresses,
 * leaf first, into the frame slots. */
static __always_inline void sample_kernel_fp(struct bpf_perf_event_data *ctx,
					     struct sample_record *rec)
{
	__u64 *ips = (__u64 *)rec->frames;
	long n = bpf_get_stack(ctx, ips, SAMPLER_MAX_FRAMES / 2 * 8, BPF_F_USER_STACK);
	if (n < 0) {
		rec->reason = WALK_READ;
		return;
	}
	n /= 8;
	__u32 key = CNT_FRAMES;
	__u64 *frames_seen = bpf_map_lookup_elem(&counters, &key);
	if (frames_seen)
		*frames_seen += n;
	/* Spread the 8-byte addresses into 16-byte frames, last first. */
	for (int i = SAMPLER_MAX_FRAMES / 2 - 1; i >= 0; i--) {
		if (i >= n)
			continue;
		__u64 ip = ips[i & (SAMPLER_MAX_FRAMES - 1)];
		struct frame *f = &rec->frames[i & (SAMPLER_MAX_FRAMES - 1)];
		f->addr = ip;
		f->object_id = OBJECT_NONE;
		f->kind = i ? FRAME_RETURN : FRAME_LEAF;
		f->via_fp = 1;
		f->pad = 0;
	}
	rec->user_frames = n > SAMPLER_MAX_FRAMES / 2 ? SAMPLER_MAX_FRAMES / 2 : n;
	rec->reason = n >= SAMPLER_MAX_FRAMES / 2 ? WALK_MAX_FRAMES : WALK_END;
}

/* Count the stop reason and send the record, cut after its frames. */
static __always_inline void sample_end(struct walk_env *env, struct sample_record *rec)
{
	__u32 nframes = rec->user_frames;
	if (nframes > SAMPLER_MAX_FRAMES)
		nframes = SAMPLER_MAX_FRAMES;
	w_count(env, (enum sampler_counter)(rec->reason < WALK_REASONS ? rec->reason : WALK_UNSUPPORTED));
	/* Waking the reader from every sample costs more than the walk (an
	 * irq_work per sample); the reader polls on a timer instead, and is
	 * woken only when the ring is half full. */
	__u64 flags = bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >
				      bpf_ringbuf_query(&samples, BPF_RB_RING_SIZE) / 2
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&samples, rec, SAMPLE_HEADER_BYTES + nframes * sizeof(struct frame),
			       flags) < 0)
		w_count(env, CNT_RB_DROPS);
}

/* Kernels with bpf_loop: the verifier sees one frame's code once. */
SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	struct walk_env env;
	int walk;
	struct sampler_scratch *s = sample_begin(ctx, &env, &walk);
	if (!s)
		return 0;
	if (walk) {
		if (walk_mode == MODE_KERNEL_FP)
			sample_kernel_fp(ctx, &s->rec);
		else
			bpf_loop(max_frames + 1, walk_frame, &env, 0);
	}
	sample_end(&env, &s->rec);
	return 0;
}

/* --- kernels without bpf_loop: a chain of tail calls --- */

/* Up to SAMPLER_CHAIN_FRAMES frames; 1 when the walk stopped. */
static __always_inline int walk_some(struct walk_env *env, struct sampler_scratch *s)
{
	for (int i = 0; i < SAMPLER_CHAIN_FRAMES; i++)
		if (walk_step(env, &s->regs, &s->rec, max_frames, walk_mode))
			return 1;
	return 0;
}

/* Walk on, then hand over to the next link of the chain; if the kernel's
 * tail-call limit is reached the walk stops at the frame limit. */
static __always_inline void walk_chain_on(struct bpf_perf_event_data *ctx, struct walk_env *env,
					  struct sampler_scratch *s)
{
	if (!walk_some(env, s)) {
		bpf_tail_call(ctx, &walk_chain, 0);
		s->rec.reason = WALK_MAX_FRAMES;
	}
	sample_end(env, &s->rec);
}

SEC("perf_event")
int walk_more(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0;
	struct sampler_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct walk_env env = { .pid = s->rec.pid, .seed = bpf_get_prandom_u32() };
	walk_chain_on(ctx, &env, s);
	return 0;
}

SEC("perf_event")
int sample_chain(struct bpf_perf_event_data *ctx)
{
	struct walk_env env;
	int walk;
	struct sampler_scratch *s = sample_begin(ctx, &env, &walk);
	if (!s)
		return 0;
	if (walk && walk_mode != MODE_KERNEL_FP) {
		walk_chain_on(ctx, &env, s);
		return 0;
	}
	if (walk)
		sample_kernel_fp(ctx, &s->rec);
	sample_end(&env, &s->rec);
	return 0;
}
