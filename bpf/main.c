/* unwind-sample: sample a process with the BPF sampler and print folded
 * stacks, root first: "frame;frame;…;leaf COUNT". */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpf/core.h"
#include "bpf/loader.h"
#include "symbolizer/symbolizer.h"

static const char usage[] =
	"usage: unwind-sample [--frequency HZ] [--duration S] (--pid PID | -- COMMAND ARGS...)\n"
	"       unwind-sample --core CORE [--sysroot DIR]\n"
	"  --core CORE      unwind every thread of an ELF core dump (x86-64 or aarch64)\n"
	"                   with our tables and walker; one line per thread\n"
	"  --sysroot DIR    read the core's objects under DIR (when DIR holds them)\n"
	"  --frequency HZ   samples per second per CPU (default 99)\n"
	"  --duration S     seconds to sample (default 5; COMMAND is stopped after it)\n"
	"  --pid PID        sample this running process\n"
	"  --symbolize      add function names: <object>+0x<addr>:<name>\n"
	"  --mode M         dwarf (default), fp (our walker, frame pointers only),\n"
	"                   kernel-fp (bpf_get_stack, runtime addresses)\n"
	"  --no-kernel      do not record kernel stacks\n"
	"  --limits SPEC    map limits, e.g. objects=1024,rules=65536,pages=131072,\n"
	"                   entry_blocks=2048,mappings=65536,ringbuf_bytes=4194304,frames=128\n"
	"  --stats          print counters, map memory and BPF run time to stderr\n"
	"Output: one line per distinct stack, root first; user frames are\n"
	"<build-id or path>+0x<file address>, kernel frames [k]+0x<address>; a walk\n"
	"that stopped early begins with [truncated:<reason>].\n";

struct options {
	uint32_t frequency;
	double duration;
	pid_t pid;
	char **command;
	bool symbolize, stats, kernel, limits_given;
	uint8_t mode;
	struct sampler_limits lim;
	const char *core, *sysroot;
};

struct collector {
	struct sampler_loader *ld;
	bool symbolize;
	struct vec names; /* struct named_object: one index per object path */
	struct vec lines; /* char * */
	uint64_t records;
	bool failed;
};

/* --symbolize: names for people through the symbolizer library, one index
 * per object (built from its DWARF, a separate debug file, or its symbol
 * table); the raw frames stay the contract. */
struct named_object {
	char *path;
	struct symz_index *idx; /* NULL: nothing to name it with */
};

static struct symz_index *index_for(struct collector *c, const char *path)
{
	for (size_t i = 0; i < c->names.len; i++) {
		struct named_object *o = &VEC_AT(&c->names, struct named_object, i);
		if (!strcmp(o->path, path))
			return o->idx;
	}
	struct named_object *o = vec_push(&c->names);
	if (!o)
		return NULL;
	o->path = strdup(path);
	struct err e = { { 0 } };
	if (o->path && symz_index_build_path(path, NULL, &o->idx, &e) < 0)
		o->idx = NULL;
	return o->idx;
}

/* The function holding the frame: the outermost of its inline chain. */
static const char *frame_name(struct collector *c, const char *path, const struct frame *f)
{
	if (path[0] != '/')
		return NULL;
	struct symz_index *idx = index_for(c, path);
	struct symz_frame frames[32];
	size_t n = idx ? symz_lookup(idx, f->addr,
				     f->kind == FRAME_RETURN ? SYMZ_RETURN_ADDRESS : SYMZ_LEAF_PC,
				     frames, ARRAY_SIZE(frames))
		       : 0;
	if (n > ARRAY_SIZE(frames))
		n = ARRAY_SIZE(frames);
	return n ? frames[n - 1].function : NULL;
}

static void names_free(struct collector *c)
{
	for (size_t i = 0; i < c->names.len; i++) {
		struct named_object *o = &VEC_AT(&c->names, struct named_object, i);
		free(o->path);
		symz_index_free(o->idx);
	}
	vec_free(&c->names);
}

static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 2 > *cap) {
		size_t nc = (*cap ? *cap * 2 : 1024) + n;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	if (*len)
		(*buf)[(*len)++] = ';';
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	return 0;
}

static void on_record(void *arg, const struct sample_record *rec, size_t size)
{
	struct collector *c = arg;
	char *line = NULL, frame[512];
	size_t len = 0, cap = 0;
	int rc = 0;
	c->records++;
	if (rec->reason != WALK_END) {
		snprintf(frame, sizeof(frame), "[truncated:%s]", walk_reason_name(rec->reason));
		rc |= append(&line, &len, &cap, frame);
	}
	for (int i = (int)rec->user_frames - 1; i >= 0; i--) {
		const struct frame *f = &rec->frames[i];
		loader_format_frame(c->ld, f, frame, sizeof(frame));
		const struct loaded_object *o = f->object_id == OBJECT_NONE
						       ? NULL
						       : loader_object(c->ld, f->object_id);
		const char *name = c->symbolize && o ? frame_name(c, o->path, f) : NULL;
		if (name)
			snprintf(frame + strlen(frame), sizeof(frame) - strlen(frame), ":%s", name);
		rc |= append(&line, &len, &cap, frame);
	}
	int kn = rec->kernel_frames > SAMPLER_MAX_KFRAMES + 1 ? SAMPLER_MAX_KFRAMES + 1
							       : rec->kernel_frames;
	for (int i = kn - 1; i >= 0; i--) {
		snprintf(frame, sizeof(frame), "[k]+0x%" PRIx64, (uint64_t)rec->kstack[i]);
		rc |= append(&line, &len, &cap, frame);
	}
	if (!line)
		rc |= append(&line, &len, &cap, "[empty]");
	char **slot = rc ? NULL : vec_push(&c->lines);
	if (!slot) {
		free(line);
		c->failed = true;
		return;
	}
	*slot = line;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_folded(struct collector *c)
{
	qsort(c->lines.data, c->lines.len, sizeof(char *), cmp_str);
	for (size_t i = 0; i < c->lines.len;) {
		size_t j = i;
		char *s = VEC_AT(&c->lines, char *, i);
		while (j < c->lines.len && !strcmp(VEC_AT(&c->lines, char *, j), s))
			j++;
		printf("%s %zu\n", s, j - i);
		i = j;
	}
	for (size_t i = 0; i < c->lines.len; i++)
		free(VEC_AT(&c->lines, char *, i));
	vec_free(&c->lines);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "frequency", required_argument, 0, 'F' }, { "duration", required_argument, 0, 'd' },
		{ "pid", required_argument, 0, 'p' },       { "symbolize", no_argument, 0, 's' },
		{ "mode", required_argument, 0, 'm' },      { "no-kernel", no_argument, 0, 'K' },
		{ "limits", required_argument, 0, 'L' },    { "stats", no_argument, 0, 'S' },
		{ "core", required_argument, 0, 'C' },      { "sysroot", required_argument, 0, 'R' },
		{ "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->frequency = 99;
	o->duration = 5;
	o->kernel = true;
	sampler_limits_default(&o->lim);
	int c;
	char *end;
	struct err e = { { 0 } };
	while ((c = getopt_long(argc, argv, "+F:d:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'F': {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > 100000) {
				fprintf(stderr, "unwind-sample: bad --frequency '%s'\n", optarg);
				return -1;
			}
			o->frequency = (uint32_t)v;
			break;
		}
		case 'd':
			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0) || o->duration > 86400) {
				fprintf(stderr, "unwind-sample: bad --duration '%s'\n", optarg);
				return -1;
			}
			break;
		case 'p': {
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 0x7fffffff) {
				fprintf(stderr, "unwind-sample: bad --pid '%s'\n", optarg);
				return -1;
			}
			o->pid = (pid_t)v;
			break;
		}
		case 's': o->symbolize = true; break;
		case 'S': o->stats = true; break;
		case 'K': o->kernel = false; break;
		case 'm':
			if (!strcmp(optarg, "dwarf"))
				o->mode = MODE_DWARF;
			else if (!strcmp(optarg, "fp"))
				o->mode = MODE_FP;
			else if (!strcmp(optarg, "kernel-fp"))
				o->mode = MODE_KERNEL_FP;
			else {
				fprintf(stderr, "unwind-sample: bad --mode '%s'\n", optarg);
				return -1;
			}
			break;
		case 'C': o->core = optarg; break;
		case 'R': o->sysroot = optarg; break;
		case 'L':
			o->limits_given = true;
			if (sampler_limits_parse(&o->lim, optarg, &e) < 0) {
				fprintf(stderr, "unwind-sample: %s\n", e.msg);
				return -1;
			}
			break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return -1;
		}
	}
	if (optind < argc)
		o->command = argv + optind;
	if (o->core && (o->pid || o->command)) {
		fprintf(stderr, "unwind-sample: --core replays a core dump: no --pid or COMMAND with it\n");
		return -1;
	}
	if (o->sysroot && !o->core) {
		fprintf(stderr, "unwind-sample: --sysroot goes with --core\n");
		return -1;
	}
	if (o->core)
		return 0;
	if ((o->pid != 0) == (o->command != NULL)) {
		fprintf(stderr, "unwind-sample: give exactly one of --pid PID or -- COMMAND\n");
		return -1;
	}
	return 0;
}

/* Fork COMMAND, held until `go` is written so sampling starts first. */
static pid_t spawn(char **argv, int *go_fd)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[1]);
		char c;
		if (read(p[0], &c, 1) != 1)
			_exit(127);
		close(p[0]);
		execvp(argv[0], argv);
		_exit(127); /* the parent reports it */
	}
	close(p[0]);
	*go_fd = p[1];
	return pid;
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void print_stats(struct sampler_bpf *s, struct sampler_loader *ld, int stats_fd,
			bool detail)
{
	uint64_t cnt[SAMPLER_COUNTERS];
	struct err e = { { 0 } };
	if (sampler_bpf_counters(s, cnt, &e) < 0)
		return;
	uint64_t complete = cnt[WALK_END];
	fprintf(stderr, "unwind-sample: %" PRIu64 " samples, %" PRIu64 " walked to the end (%.2f%%)",
		cnt[CNT_SAMPLES], complete,
		cnt[CNT_SAMPLES] ? 100.0 * (double)complete / (double)cnt[CNT_SAMPLES] : 0.0);
	for (unsigned r = 1; r < WALK_REASONS; r++)
		if (cnt[r])
			fprintf(stderr, ", %s %" PRIu64, walk_reason_name(r), cnt[r]);
	fprintf(stderr, "; %" PRIu64 " frames, %" PRIu64 " by frame pointer, %" PRIu64
			" signal frames, %" PRIu64 " ring-buffer drops\n",
		cnt[CNT_FRAMES], cnt[CNT_FP_STEPS], cnt[CNT_SIGNAL_FRAMES], cnt[CNT_RB_DROPS]);
	if (detail)
		fprintf(stderr, "unwind-sample: walk by %s\n", sampler_bpf_walk(s));
	uint64_t mem = sampler_bpf_map_memory(s, detail ? stderr : NULL);
	fprintf(stderr,
		"unwind-sample: map memory %" PRIu64 " bytes; %zu objects, %u rules, %u pages, "
		"%u entry blocks, %u mapping prefixes in use\n",
		mem, ld->objects.len, ld->rules_used, ld->pages_used, ld->blocks_used,
		ld->prefixes_used);
	uint64_t ns, runs;
	if (stats_fd >= 0 && sampler_bpf_run_stats(s, &ns, &runs) == 0 && runs)
		/* Runs for other processes exit early but their time is in ns:
		 * dividing by the target's samples errs on the high side. */
		fprintf(stderr,
			"unwind-sample: bpf run time %" PRIu64 " ns over %" PRIu64
			" runs (%" PRIu64 " target samples): %.0f ns/sample, %.1f ns/frame, "
			"%.1f frames/sample\n",
			ns, runs, cnt[CNT_SAMPLES],
			cnt[CNT_SAMPLES] ? (double)ns / (double)cnt[CNT_SAMPLES] : 0.0,
			cnt[CNT_FRAMES] ? (double)ns / (double)cnt[CNT_FRAMES] : 0.0,
			cnt[CNT_SAMPLES] ? (double)cnt[CNT_FRAMES] / (double)cnt[CNT_SAMPLES] : 0.0);
	if (detail)
		for (size_t i = 0; i < ld->objects.len; i++) {
			const struct loaded_object *o = loader_object(ld, (uint32_t)i);
			fprintf(stderr, "  object %u %s %s: %s%s\n", o->id,
				o->build_id[0] ? o->build_id : "-", o->path,
				o->has_table ? "table" : "frame pointers: ", o->has_table ? "" : o->note);
		}
}

/* --core: every thread of the core through the user-space walker, one
 * line per thread in the core's order (the order eu-stack prints). */
static int replay_core(struct options *o)
{
	struct err e = { { 0 } };
	struct core_dump c;
	if (core_open(&c, o->core, &e) < 0) {
		fprintf(stderr, "unwind-sample: %s: %s\n", o->core, e.msg);
		return 1;
	}
	if (!o->limits_given)
		o->lim.max_frames = SAMPLER_MAX_FRAMES;
	int status = 1;
	struct sampler_image img;
	struct sampler_loader ld;
	struct collector col = { 0 };
	struct core_object *objs = calloc(CORE_MAX_OBJECTS, sizeof(*objs));
	struct sample_record *rec = malloc(sizeof(*rec));
	vec_init(&col.names, sizeof(struct named_object));
	vec_init(&col.lines, sizeof(char *));
	memset(&ld, 0, sizeof(ld));
	if (sampler_image_init(&img, &o->lim, &e) < 0)
		goto out_core;
	struct sampler_backend be = sampler_image_backend(&img);
	loader_init(&ld, &o->lim, &be, &e);
	ld.arch = c.arch;
	if (!objs || !rec) {
		err_set(&e, ENOMEM, "out of memory");
		goto out;
	}
	int n = core_map_objects(&c, &ld, o->sysroot, objs, CORE_MAX_OBJECTS, &e);
	if (n < 0)
		goto out;
	for (int i = 0; i < n; i++)
		if (objs[i].problem)
			fprintf(stderr, "unwind-sample: %s: %s (%s) %s\n", o->core, objs[i].path,
				objs[i].open_path, objs[i].problem);
	col.ld = &ld;
	col.symbolize = o->symbolize;
	for (size_t i = 0; i < c.threads.len; i++) {
		const struct core_thread *t = &VEC_AT(&c.threads, struct core_thread, i);
		struct replay_input in = { .pid = c.pid, .tid = t->tid, .arch = c.walk_arch,
					   .read = core_read, .read_arg = &c };
		memcpy(in.regs, t->regs, sizeof(in.regs));
		replay_walk(&img, &in, o->mode == MODE_FP ? MODE_FP : MODE_DWARF, o->lim.max_frames,
			    rec, NULL);
		rec->kernel_frames = 0;
		on_record(&col, rec, 0);
	}
	if (col.failed) {
		err_set(&e, ENOMEM, "out of memory collecting stacks");
		goto out;
	}
	for (size_t i = 0; i < col.lines.len; i++)
		printf("%s 1\n", VEC_AT(&col.lines, char *, i));
	status = 0;
out:
	loader_free(&ld);
	sampler_image_free(&img);
out_core:
	if (status && e.msg[0])
		fprintf(stderr, "unwind-sample: %s: %s\n", o->core, e.msg);
	for (size_t i = 0; i < col.lines.len; i++)
		free(VEC_AT(&col.lines, char *, i));
	vec_free(&col.lines);
	names_free(&col);
	free(objs);
	free(rec);
	core_close(&c);
	return status;
}

int main(int argc, char **argv)
{
	struct options o;
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	if (o.core)
		return replay_core(&o);
	struct err e = { { 0 } };
	int go_fd = -1;
	pid_t pid = o.pid;
	if (o.command) {
		pid = spawn(o.command, &go_fd);
		if (pid < 0) {
			fprintf(stderr, "unwind-sample: fork: %s\n", strerror(errno));
			return 1;
		}
	} else if (kill(pid, 0) < 0) {
		fprintf(stderr, "unwind-sample: no process %d: %s\n", (int)pid, strerror(errno));
		return 1;
	}
	int status = 1;
	bool pid_reaped = false;
	struct sampler_bpf *s = NULL;
	struct sampler_loader ld;
	struct collector col = { 0 };
	vec_init(&col.names, sizeof(struct named_object));
	vec_init(&col.lines, sizeof(char *));
	memset(&ld, 0, sizeof(ld));
	struct sampler_bpf_options bo = {
		.lim = o.lim, .target_tgid = (uint32_t)pid, .mode = o.mode, .kernel_stacks = o.kernel,
	};
	int stats_fd = -1;
	if (sampler_bpf_open(&s, &bo, &e) < 0)
		goto out;
	struct sampler_backend be = sampler_bpf_backend(s);
	loader_init(&ld, &o.lim, &be, &e);
	if (o.stats)
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (loader_add_process(&ld, pid, NULL, &e) < 0)
		goto out;
	if (sampler_bpf_attach(s, o.frequency, &e) < 0)
		goto out;
	col.symbolize = o.symbolize;
	col.ld = &ld;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (go_fd >= 0) {
		if (write(go_fd, "g", 1) != 1) {
			err_set(&e, EIO, "cannot start the command");
			goto out;
		}
		close(go_fd);
		go_fd = -1;
	}
	uint64_t start = now_ns(), deadline = start + (uint64_t)(o.duration * 1e9);
	uint64_t next_scan = start;
	bool child_done = false;
	while (!interrupted && now_ns() < deadline && !child_done) {
		uint64_t now = now_ns();
		if (now >= next_scan) {
			/* New libraries (dlopen, and ld.so's work after exec). */
			struct err se = { { 0 } };
			if (loader_add_process(&ld, pid, NULL, &se) < 0 && se.msg[0] &&
			    kill(pid, 0) == 0 && !strstr(se.msg, "No such file"))
				fprintf(stderr, "unwind-sample: %s\n", se.msg);
			next_scan = now + (now - start < 200000000ull ? 10000000ull : 200000000ull);
		}
		int rc = sampler_bpf_poll(s, 10, on_record, &col);
		if (rc < 0) {
			err_set(&e, -rc, "reading the ring buffer: %s", strerror(-rc));
			goto out;
		}
		int wstatus;
		if (o.command && waitpid(pid, &wstatus, WNOHANG) == pid) {
			child_done = true;
			pid_reaped = true;
			if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
				err_set(&e, ENOENT, "cannot run %s (not found or not executable)",
					o.command[0]);
				goto out;
			}
		}
		else if (!o.command && kill(pid, 0) < 0)
			child_done = true;
	}
	while (sampler_bpf_poll(s, 0, on_record, &col) > 0)
		;
	if (col.failed) {
		err_set(&e, ENOMEM, "out of memory collecting stacks");
		goto out;
	}
	print_folded(&col);
	print_stats(s, &ld, stats_fd, o.stats);
	status = 0;
out:
	if (status && e.msg[0])
		fprintf(stderr, "unwind-sample: %s\n", e.msg);
	if (o.command && pid > 0 && !pid_reaped) {
		if (go_fd >= 0)
			close(go_fd);
		if (waitpid(pid, NULL, WNOHANG) == 0) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
		}
	}
	for (size_t i = 0; i < col.lines.len; i++)
		free(VEC_AT(&col.lines, char *, i));
	vec_free(&col.lines);
	names_free(&col);
	loader_free(&ld);
	sampler_bpf_close(s);
	if (stats_fd >= 0)
		close(stats_fd);
	return status;
}
