/* The one header that lifecycle.bpf.c (exec/fork/exit hooks) and user space
 * (lifecycle.c) agree on.
 *
 * Maps (declared at the top of lifecycle.bpf.c):
 *   followed  HASH    tgid -> 1: processes whose descendants are followed
 *   events    RINGBUF struct lifecycle_event
 * With follow_all (load-time option) every exec and exit is reported and
 * `followed` is not consulted. */
#ifndef AGENT_LIFECYCLE_H
#define AGENT_LIFECYCLE_H

#define LIFECYCLE_MAX_FOLLOWED 65536
#define LIFECYCLE_COMM_LEN 16

enum lifecycle_kind {
	LC_EXEC = 1, /* pid replaced its image (its mappings are new) */
	LC_FORK = 2, /* pid is a new process (child of a followed one) */
	LC_EXIT = 3, /* the thread-group leader exited: the process is gone */
};

struct lifecycle_event {
	__u64 time_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 kind;    /* enum lifecycle_kind */
	__u32 pid;     /* tgid */
	__u32 ppid;    /* parent's tgid */
	__u32 pad;
	char comm[LIFECYCLE_COMM_LEN];
};

_Static_assert(sizeof(struct lifecycle_event) == 40, "lifecycle_event layout");

#endif
