/* Kernel feature probes for the BPF programs (see features.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf/features.h"
#include "bpf/sampler.h"

static bool verbose(void)
{
	return getenv("SAMPLER_VERBOSE") != NULL;
}

/* libbpf's own messages only with SAMPLER_VERBOSE: what is missing is
 * said once, by us. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && verbose())
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static const char *release(void)
{
	static struct utsname u;
	if (!u.release[0] && uname(&u) < 0)
		return "?";
	return u.release;
}

/* The kernel's BTF as libbpf finds it for CO-RE and tp_btf: NULL (and a
 * sentence in e) when there is none. */
static struct btf *kernel_btf(struct err *e)
{
	struct btf *b = btf__load_vmlinux_btf();
	if (!b) {
		struct stat st;
		const char *why = stat("/sys/kernel/btf/vmlinux", &st) < 0 ? strerror(errno)
									: "not readable as BTF";
		err_set(e, EOPNOTSUPP,
			"kernel %s has no usable BTF (/sys/kernel/btf/vmlinux: %s); the BPF programs "
			"need CONFIG_DEBUG_INFO_BTF",
			release(), why);
		return NULL;
	}
	return b;
}

/* A probe's answer: 1 yes, 0 no, < 0 the probe itself failed (no bpf()
 * at all, or no permission) -- that is reported as such, not as a missing
 * feature. */
static int answer(const char *what, int rc)
{
	if (verbose())
		fprintf(stderr, "bpf feature %-32s %s\n", what,
			rc > 0 ? "yes" : rc == 0 ? "no" : strerror(-rc));
	return rc;
}

static int probe_map(enum bpf_map_type t, const char *name)
{
	return answer(name, libbpf_probe_bpf_map_type(t, NULL));
}

static int probe_prog(enum bpf_prog_type t, const char *name)
{
	return answer(name, libbpf_probe_bpf_prog_type(t, NULL));
}

/* A second opinion on a helper libbpf says is there.  libbpf 1.1 (bookworm)
 * counts a helper as missing only when the verifier says "invalid func" or
 * "unknown func"; newer kernels say "program of this type cannot use
 * helper" for one they withhold -- measured: on 6.12 booted with
 * lockdown=confidentiality libbpf answered yes for bpf_probe_read_kernel and
 * the sampler then failed to load (tests/vm/test_kernels.sh).  So: the same
 * two-instruction program, and we read the verifier's log. */
static int helper_refused(enum bpf_prog_type t, enum bpf_func_id id)
{
	struct bpf_insn insns[2] = {
		{ .code = BPF_JMP | BPF_CALL, .imm = id },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char log[4096];
	log[0] = 0;
	LIBBPF_OPTS(bpf_prog_load_opts, o, .log_buf = log, .log_size = sizeof(log), .log_level = 1);
	int fd = bpf_prog_load(t, NULL, "GPL", insns, 2, &o);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return strstr(log, "cannot use helper") || strstr(log, "invalid func ") ||
	       strstr(log, "unknown func ");
}

static int probe_helper(enum bpf_prog_type t, enum bpf_func_id id, const char *name)
{
	int rc = libbpf_probe_bpf_helper(t, id, NULL);
	if (rc > 0 && helper_refused(t, id))
		rc = 0;
	return answer(name, rc);
}

static int missing(struct err *e, int rc, const char *what, const char *needed_for)
{
	if (rc < 0)
		return err_set(e, -rc, "cannot probe the kernel's BPF features (%s: %s): needs root "
			       "or CAP_BPF+CAP_PERFMON", what, strerror(-rc));
	/* Lockdown takes helpers away (reading kernel memory): say so. */
	char mode[128] = "", *l, *r;
	FILE *f = fopen("/sys/kernel/security/lockdown", "re");
	if (f) {
		if (fgets(mode, sizeof(mode), f) && (l = strchr(mode, '[')) && (r = strchr(l, ']')) &&
		    strncmp(l, "[none]", 6)) {
			*r = 0;
			memmove(mode, l + 1, strlen(l + 1) + 1);
		} else {
			mode[0] = 0;
		}
		fclose(f);
	}
	return err_set(e, EOPNOTSUPP, "kernel %s lacks %s, which %s needs%s%s%s", release(), what,
		       needed_for, mode[0] ? " (kernel lockdown: " : "", mode, mode[0] ? ")" : "");
}

struct helper {
	enum bpf_func_id id;
	const char *name;
};

#define H(x) { BPF_FUNC_##x, "BPF helper bpf_" #x }
#define STR_(x) #x
#define STR(x) STR_(x)

int bpf_features_sampler(struct bpf_features *f, struct err *e)
{
	memset(f, 0, sizeof(*f));
	libbpf_set_print(libbpf_print);
	static const char who[] = "the sampler";
	struct btf *b = kernel_btf(e);
	if (!b)
		return -EOPNOTSUPP;
	btf__free(b);
	int rc = probe_prog(BPF_PROG_TYPE_PERF_EVENT, "perf_event BPF programs");
	if (rc <= 0)
		return missing(e, rc, "perf_event BPF programs", who);
	static const struct {
		enum bpf_map_type t;
		const char *name;
	} maps[] = {
		{ BPF_MAP_TYPE_RINGBUF, "BPF ring buffers" },
		{ BPF_MAP_TYPE_LPM_TRIE, "BPF LPM trie maps" },
		{ BPF_MAP_TYPE_PERCPU_ARRAY, "BPF per-CPU array maps" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++)
		if ((rc = probe_map(maps[i].t, maps[i].name)) <= 0)
			return missing(e, rc, maps[i].name, who);
	static const struct helper needed[] = {
		H(probe_read_user), H(probe_read_kernel), H(get_stack), H(ringbuf_output),
		H(ringbuf_query), H(get_current_task), H(get_prandom_u32),
	};
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++)
		if ((rc = probe_helper(BPF_PROG_TYPE_PERF_EVENT, needed[i].id, needed[i].name)) <= 0)
			return missing(e, rc, needed[i].name, who);
	/* libbpf decides from a tracepoint program whether the kernel has
	 * bpf_probe_read_kernel, and otherwise rewrites our calls to the
	 * older bpf_probe_read; under lockdown (6.12) perf_event programs may
	 * keep the helper while tracepoint programs lose both. */
	if ((rc = probe_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_probe_read_kernel,
			       "BPF helper bpf_probe_read_kernel (tracepoint)")) <= 0)
		return missing(e, rc, "BPF helper bpf_probe_read_kernel", who);
	rc = probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_loop, "BPF helper bpf_loop");
	if (rc < 0)
		return missing(e, rc, "BPF helper bpf_loop", who);
	f->loop = rc > 0;
	if (!f->loop) {
		if ((rc = probe_map(BPF_MAP_TYPE_PROG_ARRAY, "BPF program arrays")) <= 0 ||
		    (rc = probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_tail_call,
				       "BPF helper bpf_tail_call")) <= 0)
			return missing(e, rc, "both bpf_loop and BPF tail calls", who);
	}
	int a = probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_task_pt_regs,
			     "BPF helper bpf_task_pt_regs");
	int c = probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_get_current_task_btf,
			     "BPF helper bpf_get_current_task_btf");
	f->task_pt_regs = a > 0 && c > 0;
	if (getenv("SAMPLER_COMPAT")) {
		/* The build for kernels before 5.15, on any kernel. */
		if (f->loop && ((rc = probe_map(BPF_MAP_TYPE_PROG_ARRAY, "BPF program arrays")) <= 0 ||
				(rc = probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_tail_call,
						   "BPF helper bpf_tail_call")) <= 0))
			return missing(e, rc, "BPF tail calls", who);
		f->loop = f->task_pt_regs = false;
	}
	return 0;
}

int bpf_features_lifecycle(struct err *e)
{
	static const char who[] = "the exec/fork/exit hooks";
	libbpf_set_print(libbpf_print);
	struct btf *b = kernel_btf(e);
	if (!b)
		return -EOPNOTSUPP;
	/* tp_btf programs attach to the tracepoint's BTF type, as libbpf
	 * looks it up. */
	static const char *const tps[] = { "btf_trace_sched_process_exec",
					   "btf_trace_sched_process_fork",
					   "btf_trace_sched_process_exit" };
	for (size_t i = 0; i < ARRAY_SIZE(tps); i++) {
		int id = btf__find_by_name_kind(b, tps[i], BTF_KIND_TYPEDEF);
		answer(tps[i], id > 0);
		if (id <= 0) {
			btf__free(b);
			char what[96];
			snprintf(what, sizeof(what), "BTF tracepoint %s (tp_btf programs)", tps[i] + 10);
			return missing(e, 0, what, who);
		}
	}
	btf__free(b);
	int rc;
	if ((rc = probe_map(BPF_MAP_TYPE_RINGBUF, "BPF ring buffers")) <= 0)
		return missing(e, rc, "BPF ring buffers", who);
	if ((rc = probe_map(BPF_MAP_TYPE_HASH, "BPF hash maps")) <= 0)
		return missing(e, rc, "BPF hash maps", who);
	/* tp_btf programs get the tracing helpers; libbpf cannot probe that
	 * program type without an attach target, and kprobes share the set. */
	static const struct helper needed[] = {
		H(probe_read_kernel), H(probe_read_kernel_str), H(ringbuf_reserve),
		H(ringbuf_submit), H(ktime_get_ns),
	};
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++)
		if ((rc = probe_helper(BPF_PROG_TYPE_KPROBE, needed[i].id, needed[i].name)) <= 0)
			return missing(e, rc, needed[i].name, who);
	return 0;
}

const char *bpf_features_walk(const struct bpf_features *f)
{
	if (f->loop)
		return "bpf_loop, one frame per callback";
	return "tail calls, " STR(SAMPLER_CHAIN_FRAMES) " frames per program (no bpf_loop)";
}
