// SPDX-License-Identifier: GPL-2.0
/* perf_event sampler: user stacks by the table-driven walker (walker.c),
 * kernel stacks by bpf_get_stack, one ring-buffer record per sample.
 *
 * Minimum kernel: 5.17 (bpf_loop), with BTF; also uses ring buffers (5.8),
 * bpf_task_pt_regs (5.15) and LPM tries without preallocation.  Developed
 * and tested on 6.18. */
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

#define PF_KTHREAD 0x00200000

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

SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (tgid == 0 || (target_tgid && tgid != target_tgid))
		return 0;
	__u32 zero = 0;
	struct sampler_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct walk_env env = { .pid = tgid, .seed = bpf_get_prandom_u32() };
	w_count(&env, CNT_SAMPLES);

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

	struct task_struct *task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD) {
		rec->reason = WALK_KERNEL_THREAD;
		goto out;
	}

	/* User registers: from the sample when it hit user mode, else the
	 * ones saved on kernel entry. */
	struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
	/* ctx loads must be 8 bytes wide: cs is the 18th word of pt_regs. */
	int in_kernel = (((__u64 *)&ctx->regs)[17] & 3) == 0;
	if (in_kernel) {
		struct pt_regs r;
		if (bpf_probe_read_kernel(&r, sizeof(r), uregs) < 0) {
			rec->reason = WALK_READ;
			goto out;
		}
		regs_from_pt(&s->regs, &r);
		if (kernel_stacks) {
			long n = bpf_get_stack(ctx, rec->kstack, sizeof(rec->kstack), 0);
			if (n < 0)
				w_count(&env, CNT_KSTACK_ERRORS);
			rec->kernel_frames = n < 0 ? (__s32)n : (__s32)(n / 8);
		}
	} else {
		regs_from_pt(&s->regs, (struct pt_regs *)&ctx->regs);
	}
	s->regs.valid = WALK_ALL_REGS;
	s->regs.is_return = 0;
	s->regs.last.start = 0;
	s->regs.last.end = 0;

	if (walk_mode == MODE_KERNEL_FP) {
		/* The kernel's frame-pointer walk, for comparison: raw
		 * runtime addresses, leaf first, into the frame slots. */
		__u64 *ips = (__u64 *)rec->frames;
		long n = bpf_get_stack(ctx, ips, SAMPLER_MAX_FRAMES / 2 * 8, BPF_F_USER_STACK);
		if (n < 0) {
			rec->reason = WALK_READ;
			goto out;
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
	} else {
		bpf_loop(max_frames + 1, walk_frame, &env, 0);
	}

out:;
	__u32 nframes = rec->user_frames;
	if (nframes > SAMPLER_MAX_FRAMES)
		nframes = SAMPLER_MAX_FRAMES;
	w_count(&env, (enum sampler_counter)(rec->reason < WALK_REASONS ? rec->reason : WALK_UNSUPPORTED));
	/* Waking the reader from every sample costs more than the walk (an
	 * irq_work per sample); the reader polls on a timer instead, and is
	 * woken only when the ring is half full. */
	__u64 flags = bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >
				      bpf_ringbuf_query(&samples, BPF_RB_RING_SIZE) / 2
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&samples, rec, SAMPLE_HEADER_BYTES + nframes * sizeof(struct frame),
			       flags) < 0)
		w_count(&env, CNT_RB_DROPS);
	return 0;
}
