/* Replay test: samples of the deep fixture captured with perf_event_open
 * (user registers + a copy of the user stack), each unwound twice over the
 * same bytes: by our walker (walker.c built for user space, reading the map
 * image the loader filled) and by libdwfl (dwfl_attach_state with our
 * memory_read/set_initial_registers).  >= 99.5% must agree frame for frame.
 * No BPF is needed; perf_event_open on a child process is. */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf/loader.h"
#include "tests/lib/check.h"

#define STACK_BYTES   32768
#define WANT_SAMPLES  800
#define RING_PAGES    256
#define REGS_MASK     0xff0fffull /* AX..SS and R8..R15 (DS/ES/FS/GS refused) */
#define NREGS_SAMPLED 20

struct sample {
	uint32_t pid, tid;
	uint64_t regs[SAMPLER_REGS];
	uint8_t *stack;
	size_t stack_size;
};

/* perf register order within REGS_MASK -> DWARF numbering. */
static void perf_to_dwarf(const uint64_t *p, uint64_t *d)
{
	d[UNWIND_X86_RAX] = p[0];
	d[UNWIND_X86_RBX] = p[1];
	d[UNWIND_X86_RCX] = p[2];
	d[UNWIND_X86_RDX] = p[3];
	d[UNWIND_X86_RSI] = p[4];
	d[UNWIND_X86_RDI] = p[5];
	d[UNWIND_X86_RBP] = p[6];
	d[UNWIND_X86_RSP] = p[7];
	d[UNWIND_X86_RIP] = p[8];
	for (int i = 0; i < 8; i++)
		d[8 + i] = p[12 + i];
}

static int perf_open(pid_t pid)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_TASK_CLOCK,
		.size = sizeof(attr),
		.sample_period = 1000000, /* 1 ms of the task's CPU time */
		.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER,
		.sample_regs_user = REGS_MASK,
		.sample_stack_user = STACK_BYTES,
		.disabled = 1,
		/* User time only: then perf_event_paranoid <= 2 lets an
		 * unprivileged user sample its own child. */
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};
	return (int)syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Copy out the records of the ring; returns samples appended. */
static size_t drain(struct perf_event_mmap_page *meta, size_t data_size, struct sample *out,
		    size_t have, size_t max)
{
	uint8_t *data = (uint8_t *)meta + meta->data_offset;
	uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = meta->data_tail;
	size_t n = have;
	static uint8_t rec[65536 + 1024];
	while (tail < head) {
		struct perf_event_header h;
		for (size_t i = 0; i < sizeof(h); i++)
			((uint8_t *)&h)[i] = data[(tail + i) % data_size];
		if (h.size < sizeof(h))
			break;
		for (size_t i = 0; i < h.size; i++)
			rec[i] = data[(tail + i) % data_size];
		tail += h.size;
		if (h.type != PERF_RECORD_SAMPLE || n >= max)
			continue;
		const uint8_t *p = rec + sizeof(h);
		const uint8_t *end = rec + h.size;
		struct sample s = { 0 };
		memcpy(&s.pid, p, 4);
		memcpy(&s.tid, p + 4, 4);
		p += 8;
		uint64_t abi;
		memcpy(&abi, p, 8);
		p += 8;
		if (abi != PERF_SAMPLE_REGS_ABI_64)
			continue;
		uint64_t pregs[NREGS_SAMPLED];
		memcpy(pregs, p, sizeof(pregs));
		p += sizeof(pregs);
		uint64_t size;
		memcpy(&size, p, 8);
		p += 8;
		if (size == 0 || p + size + 8 > end)
			continue;
		uint64_t dyn;
		memcpy(&dyn, p + size, 8);
		if (dyn > size)
			dyn = size;
		perf_to_dwarf(pregs, s.regs);
		s.stack = malloc(dyn ? dyn : 1);
		if (!s.stack)
			continue;
		memcpy(s.stack, p, dyn);
		s.stack_size = dyn;
		out[n++] = s;
	}
	__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
	return n - have;
}

/* libdwfl's ELF symbol names for one object (the oracle says which leaves
 * keep their function at PC - 1). */
struct dwfl_names {
	Dwfl *dwfl;
	Dwfl_Module *mod;
};

static const Dwfl_Callbacks names_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static bool dwfl_names_open(struct dwfl_names *dn, const char *path)
{
	dn->dwfl = dwfl_begin(&names_callbacks);
	dn->mod = dn->dwfl ? dwfl_report_elf(dn->dwfl, path, path, -1, 0, false) : NULL;
	if (dn->dwfl)
		dwfl_report_end(dn->dwfl, NULL, NULL);
	return dn->mod != NULL;
}

static const char *dwfl_name(struct dwfl_names *dn, uint64_t addr)
{
	GElf_Sym sym;
	GElf_Off off = 0;
	return dwfl_module_addrinfo(dn->mod, addr, &off, &sym, NULL, NULL, NULL);
}

/* --- libdwfl over the same bytes --- */
struct dwfl_ctx {
	const struct sample *cur;
	int done;
};

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct dwfl_ctx *c = arg;
	if (*thread_argp)
		return 0;
	*thread_argp = c;
	return (pid_t)c->cur->tid;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct dwfl_ctx *c = arg;
	const struct sample *s = c->cur;
	uint64_t base = s->regs[UNWIND_X86_RSP];
	if (addr < base || addr - base > s->stack_size || s->stack_size - (addr - base) < 8)
		return false;
	memcpy(result, s->stack + (addr - base), 8);
	return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	struct dwfl_ctx *c = thread_arg;
	Dwarf_Word regs[17];
	for (int i = 0; i < 17; i++)
		regs[i] = c->cur->regs[i];
	if (!dwfl_thread_state_registers(thread, 0, 17, regs))
		return false;
	dwfl_thread_state_register_pc(thread, c->cur->regs[UNWIND_X86_RIP]);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = cb_next_thread,
	.memory_read = cb_memory_read,
	.set_initial_registers = cb_set_initial_registers,
};

struct ref_frame {
	uint64_t norm;
	bool activation;
	bool known;
};
struct ref_stack {
	struct ref_frame f[SAMPLER_MAX_FRAMES];
	int n;
};

static int cb_frame(Dwfl_Frame *state, void *arg)
{
	struct ref_stack *rs = arg;
	Dwarf_Addr pc;
	bool act;
	if (!dwfl_frame_pc(state, &pc, &act))
		return DWARF_CB_ABORT;
	if (rs->n >= SAMPLER_MAX_FRAMES)
		return DWARF_CB_ABORT;
	struct ref_frame *f = &rs->f[rs->n++];
	Dwfl *dwfl = dwfl_thread_dwfl(dwfl_frame_thread(state));
	Dwfl_Module *mod = dwfl_addrmodule(dwfl, act ? pc : pc - 1);
	Dwarf_Addr bias = 0;
	f->known = mod && dwfl_module_getelf(mod, &bias);
	f->norm = pc - (f->known ? bias : 0);
	f->activation = act;
	return DWARF_CB_OK;
}

static uint64_t runtime_address(const struct sampler_loader *ld, const struct frame *f)
{
	for (size_t i = 0; i < ld->mappings.len; i++) {
		const struct loaded_mapping *m = &VEC_AT(&ld->mappings, struct loaded_mapping, i);
		if (m->object_id == f->object_id)
			return f->addr + m->bias;
	}
	return f->addr;
}

/* One sample unwound by both; prints the first differences. */
struct comparer {
	const struct sampler_image *img;
	const struct sampler_loader *ld;
	Dwfl *dwfl;
	struct dwfl_ctx *dctx;
	uint32_t pid;
	struct sample_record *rec;
	struct ref_stack *rs;
	int shown;
};

static bool replay_both(struct comparer *c, const struct sample *s, uint64_t *counters, size_t i)
{
	struct sample_record *rec = c->rec;
	struct ref_stack *rs = c->rs;
	struct replay_input in = {
		.pid = c->pid, .tid = s->tid, .stack = s->stack, .stack_size = s->stack_size,
		.stack_addr = s->regs[UNWIND_X86_RSP],
	};
	memcpy(in.regs, s->regs, sizeof(in.regs));
	replay_walk(c->img, &in, MODE_DWARF, SAMPLER_MAX_FRAMES, rec, counters);
	c->dctx->cur = s;
	rs->n = 0;
	dwfl_getthread_frames(c->dwfl, (pid_t)s->tid, cb_frame, rs);
	bool eq = rs->n == rec->user_frames;
	for (int k = 0; eq && k < rs->n; k++) {
		/* libdwfl's proc report may lack the vDSO: then it gives the
		 * runtime address; compare ours at runtime. */
		uint64_t ours = rs->f[k].known ? rec->frames[k].addr
					       : runtime_address(c->ld, &rec->frames[k]);
		eq = rs->f[k].norm == ours &&
		     rs->f[k].activation == (rec->frames[k].kind == FRAME_LEAF);
	}
	if (!eq && c->shown < 5) {
		c->shown++;
		printf("# sample %zu differs: ours %u frames (stop: %s), libdwfl %d\n", i,
		       rec->user_frames, walk_reason_name(rec->reason), rs->n);
		for (int k = 0; k < rs->n || k < rec->user_frames; k++)
			printf("#   %2d ours %#" PRIx64 "%s  dwfl %#" PRIx64 "%s\n", k,
			       k < rec->user_frames ? (uint64_t)rec->frames[k].addr : 0,
			       k < rec->user_frames && rec->frames[k].kind == FRAME_LEAF ? "*" : " ",
			       k < rs->n ? rs->f[k].norm : 0,
			       k < rs->n && rs->f[k].activation ? "*" : " ");
	}
	return eq;
}

/* A sample as if its leaf had just called qsort@plt and was stopped at
 * byte `off` of the PLT entry (0: jmp *GOT, 6: push, 11: jmp PLT0, after
 * the push).  Exercises the PLT CFA expression on real stacks. */
static bool plt_sample(const struct sample *s, uint64_t plt_entry, unsigned off, struct sample *out)
{
	unsigned extra = off >= 11 ? 2 : 1;
	*out = *s;
	out->stack = malloc(s->stack_size + 8 * extra);
	if (!out->stack)
		return false;
	uint64_t words[2] = { 0x5 /* pushed relocation index */, s->regs[UNWIND_X86_RIP] };
	memcpy(out->stack, words + (2 - extra), 8 * extra);
	memcpy(out->stack + 8 * extra, s->stack, s->stack_size);
	out->stack_size = s->stack_size + 8 * extra;
	out->regs[UNWIND_X86_RSP] = s->regs[UNWIND_X86_RSP] - 8 * extra;
	out->regs[UNWIND_X86_RIP] = plt_entry + off;
	return true;
}

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};

static int fixture_has_lib(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "r");
	int found = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "libdeepfix.so"))
			found = 1;
	fclose(f);
	return found;
}

int main(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char fixture[512];
	snprintf(fixture, sizeof(fixture), "%s/fixtures/bpf/deep", build);
	if (access(fixture, X_OK) != 0) {
		CHECK(0, "replay_fixture", "%s not built", fixture);
		CHECK_EXIT();
	}
	pid_t child = fork();
	if (child == 0) {
		execl(fixture, fixture, "mixed", "20", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !fixture_has_lib(child); i++)
		usleep(5000);
	int fd = perf_open(child);
	if (fd < 0) {
		SKIP("replay_vs_libdwfl", "perf_event_open: %s (perf_event_paranoid?)",
		     strerror(errno));
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return 0;
	}
	long page = sysconf(_SC_PAGESIZE);
	size_t data_size = (size_t)RING_PAGES * (size_t)page;
	void *ring = mmap(NULL, data_size + (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(ring != MAP_FAILED, "replay_mmap", "mmap: %s", strerror(errno));
	if (ring == MAP_FAILED)
		CHECK_EXIT();

	struct sample *samples = calloc(WANT_SAMPLES, sizeof(*samples));
	size_t n = 0;
	ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
	for (int i = 0; i < 400 && n < WANT_SAMPLES; i++) {
		usleep(10000);
		n += drain(ring, data_size, samples, n, WANT_SAMPLES);
	}
	ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	n += drain(ring, data_size, samples, n, WANT_SAMPLES);

	/* The maps the BPF program would see, built by the loader. */
	struct sampler_limits lim;
	sampler_limits_default(&lim);
	lim.max_entry_blocks = 512;
	struct sampler_image img;
	struct err e = { { 0 } };
	int rc = sampler_image_init(&img, &lim, &e);
	CHECK(rc == 0, "replay_image", "%s", e.msg);
	struct sampler_backend be = sampler_image_backend(&img);
	struct sampler_loader ld;
	loader_init(&ld, &lim, &be, &e);
	struct loader_proc_stats ps = { 0 };
	rc = loader_add_process(&ld, child, &ps, &e);
	CHECK(rc == 0 && ps.new_mappings >= 4 && ps.objects_failed == 0, "replay_loader",
	      "rc %d, %u mappings, %u objects failed: %s", rc, ps.new_mappings, ps.objects_failed,
	      e.msg);

	Dwfl *dwfl = dwfl_begin(&proc_callbacks);
	struct dwfl_ctx dctx = { 0 };
	dwfl_report_begin(dwfl);
	int rep = dwfl_linux_proc_report(dwfl, child);
	dwfl_report_end(dwfl, NULL, NULL);
	bool attached = rep == 0 && dwfl_attach_state(dwfl, NULL, child, &thread_callbacks, &dctx);
	CHECK(attached, "replay_dwfl_attach", "%s", dwfl_errmsg(-1));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (!attached)
		CHECK_EXIT();

	size_t same = 0, deep = 0, signal_walks = 0, three_objects = 0, complete = 0;
	int max_depth = 0;
	uint64_t counters[SAMPLER_COUNTERS] = { 0 };
	struct sample_record *rec = malloc(sizeof(*rec));
	struct ref_stack *rs = malloc(sizeof(*rs));
	struct comparer cmp = { .img = &img, .ld = &ld, .dwfl = dwfl, .dctx = &dctx,
				.pid = (uint32_t)child, .rec = rec, .rs = rs };
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &samples[i];
		uint64_t before_sig = counters[CNT_SIGNAL_FRAMES];
		bool eq = replay_both(&cmp, s, counters, i);
		same += eq;
		if (rec->user_frames > max_depth)
			max_depth = rec->user_frames;
		deep += rec->user_frames >= 40;
		complete += rec->reason == WALK_END;
		if (counters[CNT_SIGNAL_FRAMES] > before_sig && rec->reason == WALK_END && eq)
			signal_walks++;
		uint32_t seen[8];
		int nseen = 0;
		for (int k = 0; k < rec->user_frames; k++) {
			int found = 0;
			for (int j = 0; j < nseen; j++)
				found |= seen[j] == rec->frames[k].object_id;
			if (!found && nseen < 8)
				seen[nseen++] = rec->frames[k].object_id;
		}
		three_objects += nseen >= 3 && rec->reason == WALK_END;
	}
	printf("# signal frames crossed: %" PRIu64 "\n", counters[CNT_SIGNAL_FRAMES]);
	printf("# %zu samples: %zu identical to libdwfl, %zu walked to the end, %zu >= 40 frames "
	       "(max %d), %zu through a signal frame, %zu across 3+ objects\n",
	       n, same, complete, deep, max_depth, signal_walks, three_objects);
	CHECK(n >= 300, "replay_samples", "only %zu samples captured", n);
	CHECK(n && (double)same >= 0.995 * (double)n, "replay_vs_libdwfl",
	      "%zu of %zu samples identical (%.2f%%, need 99.5%%)", same, n,
	      n ? 100.0 * (double)same / (double)n : 0.0);
	CHECK(deep >= n / 4 && max_depth >= 40, "replay_depth_40", "%zu deep samples, max %d", deep,
	      max_depth);
	CHECK(signal_walks > 0, "replay_signal_frames", "no complete walk through a signal frame");
	CHECK(three_objects > n / 4, "replay_shared_lib_and_libc",
	      "%zu walks span program, library and libc", three_objects);
	CHECK(complete >= n * 99 / 100, "replay_complete_walks", "%zu of %zu walks reached _start",
	      complete, n);

	/* PLT stubs: qsort@plt of the fixture, at each instruction. */
	struct elf_object fx;
	struct section plt = { 0 };
	uint64_t exe_bias = 0;
	for (size_t i = 0; i < ld.mappings.len; i++) {
		const struct loaded_mapping *m = &VEC_AT(&ld.mappings, struct loaded_mapping, i);
		const struct loaded_object *o = loader_object(&ld, m->object_id);
		if (o && strstr(o->path, "/fixtures/bpf/deep"))
			exe_bias = m->bias;
	}
	if (elf_object_open(&fx, fixture, &e) == 0) {
		elf_object_section(&fx, ".plt", &plt, &e);
		elf_object_close(&fx);
	}
	size_t plt_same = 0, plt_total = 0, plt_frame1 = 0;
	struct dwfl_names names = { 0 };
	bool have_names = dwfl_names_open(&names, fixture);
	for (size_t i = 0; have_names && plt.found && exe_bias && i < n && plt_total < 300; i++) {
		/* The leaf's PC becomes a return address: use leaves where
		 * PC - 1 is in the same function (libdwfl's symbols say). */
		struct replay_input in0 = {
			.pid = (uint32_t)child, .tid = samples[i].tid, .stack = samples[i].stack,
			.stack_size = samples[i].stack_size,
			.stack_addr = samples[i].regs[UNWIND_X86_RSP],
		};
		memcpy(in0.regs, samples[i].regs, sizeof(in0.regs));
		replay_walk(&img, &in0, MODE_DWARF, SAMPLER_MAX_FRAMES, rec, NULL);
		const struct loaded_object *lo = loader_object(&ld, rec->frames[0].object_id);
		/* Leaves in the program only (not, say, in __restore_rt). */
		const char *n0, *n1;
		if (!lo || !strstr(lo->path, "/fixtures/bpf/deep") || rec->frames[0].addr == 0 ||
		    !(n0 = dwfl_name(&names, rec->frames[0].addr)) ||
		    !(n1 = dwfl_name(&names, rec->frames[0].addr - 1)) || strcmp(n0, n1))
			continue;
		static const unsigned offs[] = { 0, 6, 11 };
		for (unsigned k = 0; k < 3; k++) {
			struct sample ps2;
			if (!plt_sample(&samples[i], exe_bias + plt.addr + 16, offs[k], &ps2))
				continue;
			plt_total++;
			plt_same += replay_both(&cmp, &ps2, NULL, 10000 + i);
			plt_frame1 += rec->user_frames > 2 && rec->frames[1].kind == FRAME_RETURN &&
				      runtime_address(&ld, &rec->frames[1]) == samples[i].regs[UNWIND_X86_RIP];
			free(ps2.stack);
		}
	}
	section_free(&plt);
	if (names.dwfl)
		dwfl_end(names.dwfl);
	printf("# PLT: %zu synthesized samples, %zu identical to libdwfl, %zu found the caller\n",
	       plt_total, plt_same, plt_frame1);
	CHECK(plt_total >= 150 && plt_same == plt_total && plt_frame1 == plt_total, "replay_plt_stubs",
	      "%zu of %zu PLT samples identical to libdwfl", plt_same, plt_total);

	free(rec);
	free(rs);
	for (size_t i = 0; i < n; i++)
		free(samples[i].stack);
	free(samples);
	dwfl_end(dwfl);
	loader_free(&ld);
	sampler_image_free(&img);
	munmap(ring, data_size + (size_t)page);
	close(fd);
	CHECK_EXIT();
}
