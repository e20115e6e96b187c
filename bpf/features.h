/* What the running kernel offers the BPF programs, probed at load time with
 * libbpf's feature probes (never from the version number: distributions
 * backport, and lockdown or configuration take features away).
 *
 * The sampler and the agent's lifecycle hooks call these before loading;
 * a kernel that lacks something required gets one sentence naming it (the
 * first missing feature), and nothing is loaded. */
#ifndef BPF_FEATURES_H
#define BPF_FEATURES_H

#include <stdbool.h>

#include "common/common.h"

struct bpf_features {
	bool loop;         /* bpf_loop (5.17): one frame per callback; else tail calls */
	bool task_pt_regs; /* bpf_task_pt_regs + bpf_get_current_task_btf (5.15);
			    * else pt_regs from task->stack */
};

/* The sampler's needs: kernel BTF, perf_event programs, ring buffer, LPM
 * trie, per-CPU arrays, bpf_probe_read_user/kernel, bpf_get_stack, ring
 * buffer output/query, bpf_get_current_task; and either bpf_loop or tail
 * calls (program arrays).  0 with *f filled, or -errno with e saying what
 * is missing.  SAMPLER_VERBOSE=1 prints every probe's answer;
 * SAMPLER_COMPAT=1 chooses what a 5.10 kernel gets (tail calls, registers
 * from the kernel stack) wherever it can run, to test and measure it. */
int bpf_features_sampler(struct bpf_features *f, struct err *e);

/* The exec/fork/exit hooks' needs: kernel BTF with the sched_process_*
 * tracepoints (tp_btf), ring buffer, hash map, the tracing helpers they
 * call.  0, or -errno with e saying what is missing. */
int bpf_features_lifecycle(struct err *e);

/* "bpf_loop" or "tail calls, N frames per program": how the sampler walks
 * with these features. */
const char *bpf_features_walk(const struct bpf_features *f);

#endif
