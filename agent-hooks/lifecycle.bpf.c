// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle hooks: one program per event (exec, fork, exit), each
 * sending a struct lifecycle_event to user space, which (re)reads the
 * process's mappings on exec/fork and drops them on exit.
 *
 * Forks of followed processes are followed in the kernel, so a short-lived
 * child that execs before user space hears of its parent is not missed. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "agent-hooks/lifecycle.h"

char LICENSE[] SEC("license") = "GPL";

/* Load-time option: report every process. */
const volatile __u8 follow_all = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, LIFECYCLE_MAX_FOLLOWED);
} followed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline bool is_followed(__u32 tgid)
{
	return follow_all || bpf_map_lookup_elem(&followed, &tgid);
}

static __always_inline void emit(__u32 kind, struct task_struct *task)
{
	struct lifecycle_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev)
		return;
	ev->time_ns = bpf_ktime_get_ns();
	ev->kind = kind;
	ev->pid = BPF_CORE_READ(task, tgid);
	ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->pad = 0;
	BPF_CORE_READ_STR_INTO(&ev->comm, task, comm);
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_followed(BPF_CORE_READ(p, tgid)))
		emit(LC_EXEC, p);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	if (follow_all || ptgid == ctgid || !bpf_map_lookup_elem(&followed, &ptgid))
		return 0; /* new threads, and processes nobody asked for */
	__u8 one = 1;
	bpf_map_update_elem(&followed, &ctgid, &one, BPF_ANY);
	emit(LC_FORK, child);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (BPF_CORE_READ(p, pid) != tgid || !is_followed(tgid))
		return 0; /* a thread, not the process */
	emit(LC_EXIT, p);
	if (!follow_all)
		bpf_map_delete_elem(&followed, &tgid);
	return 0;
}
