/* The profiler-agent daemon: its whole state is struct agent.
 *
 * One thread, one loop: wait for lifecycle events (exec wakes us at once),
 * take the samples the BPF sampler left on its ring buffer, rescan processes
 * whose time has come, and every interval turn the samples into a pprof
 * that leaves through the shipper.
 *
 * When a process's tables are loaded: on exec the agent scans the new image
 * at once (executable, dynamic loader, vDSO: "first tables"), then again at
 * SCAN_DELAYS after exec to pick up what ld.so maps, and whenever a sample
 * of the process stops at a PC in no known mapping (dlopen, JIT). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent-hooks/agent_hooks.h"
#include "agent-hooks/lifecycle.h"
#include "bpf/features.h"
#include "common/proc.h"

#define MS 1000000ull
static const uint64_t SCAN_DELAYS[] = { 2 * MS, 10 * MS, 50 * MS, 250 * MS, 1000 * MS };
#define NSCANS ARRAY_SIZE(SCAN_DELAYS)
#define NOMAP_RESCAN_GAP (100 * MS)
#define EXITED_GRACE (2000 * MS) /* keep labels for samples still in the ring */

struct agent_proc {
	pid_t pid;
	char pid_str[16];
	char comm[LIFECYCLE_COMM_LEN + 1];
	char exe[256];
	uint64_t exec_ns;      /* 0: found by scan, not exec */
	uint64_t last_table_ns;/* last scan that added mappings */
	uint64_t last_rescan_ns;
	uint64_t exited_ns;    /* 0: alive */
	unsigned next_scan;    /* index into SCAN_DELAYS */
	bool latency_done;
	int8_t jvm;            /* maps libjvm.so: -1 not known yet, 0 no, 1 yes */
	bool jvm_error_told;
};

struct agent {
	const struct agent_options *o;
	struct sampler_bpf *bpf;
	struct sampler_loader ld;
	bool ld_ready;
	struct lifecycle *lc;
	struct table_fetcher *tf;
	struct shipper *sh;
	struct jit_store jit;
	struct agent_profile prof;
	bool prof_ready;
	struct vec procs;       /* struct agent_proc */
	struct vec lat_first;   /* double ms: exec -> first tables */
	struct vec lat_all;     /* double ms: exec -> last tables in the first second */
	char host[256];
	char kernel_note[256];
	struct kernel_info kernel;
	bool kernel_ready;
	uint64_t execs, forks, exits, nomap_rescans, scans, scan_errors;
	uint64_t samples, samples_complete, samples_untracked, samples_lost_errors;
	uint64_t profiles, jit_snapshots, jit_files_written;
	uint64_t jvm_perf_maps, jvm_perf_map_errors;
	bool kallsyms_sent, kallsyms_already_stored;
	uint64_t tables_replaced; /* compiled here, then swapped for the server's */
	bool root_exited;
	int stats_fd;
};

void agent_options_default(struct agent_options *o)
{
	memset(o, 0, sizeof(*o));
	o->frequency_hz = 19;
	o->interval_s = 10;
	o->kernel = true;
	o->buffer_max_bytes = 64ull << 20;
	o->cache_max_bytes = TABLE_FETCHER_CACHE_MAX_DEFAULT;
	o->table_max_bytes = TABLE_FETCHER_MAX_TABLE_DEFAULT;
	o->table_idle_s = 60;
	o->table_retry_s = TABLE_FETCHER_RETRY_DEFAULT_S;
	sampler_limits_default(&o->lim);
}

static struct agent_proc *find_proc(struct agent *a, pid_t pid)
{
	for (size_t i = 0; i < a->procs.len; i++) {
		struct agent_proc *p = &VEC_AT(&a->procs, struct agent_proc, i);
		if (p->pid == pid)
			return p;
	}
	return NULL;
}

static void read_names(struct agent_proc *p)
{
	char path[64], buf[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)p->pid);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		const char *base = strrchr(buf, '/');
		snprintf(p->exe, sizeof(p->exe), "%.255s", base ? base + 1 : buf);
	}
	if (!p->comm[0]) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)p->pid);
		FILE *f = fopen(path, "re");
		if (f) {
			if (fgets(p->comm, sizeof(p->comm), f))
				p->comm[strcspn(p->comm, "\n")] = 0;
			fclose(f);
		}
	}
}

static struct agent_proc *add_proc(struct agent *a, pid_t pid)
{
	struct agent_proc *p = find_proc(a, pid);
	if (p)
		return p;
	p = vec_push(&a->procs);
	if (!p)
		return NULL;
	p->pid = pid;
	p->jvm = -1;
	snprintf(p->pid_str, sizeof(p->pid_str), "%d", (int)pid);
	return p;
}

static void push_ms(struct vec *v, uint64_t ns)
{
	double *d = vec_push(v);
	if (d)
		*d = (double)ns / 1e6;
}

/* (Re)read the process's mappings; new objects get their tables. */
static void scan_proc(struct agent *a, struct agent_proc *p)
{
	struct loader_proc_stats st = { 0 };
	struct err e = { { 0 } };
	a->scans++;
	int rc = loader_add_process(&a->ld, p->pid, &st, &e);
	uint64_t now = now_ns();
	if (rc < 0 && rc != -ENOENT && rc != -ESRCH) {
		a->scan_errors++;
		fprintf(stderr, "profiler-agent: pid %d: %s\n", (int)p->pid, e.msg);
	}
	if (st.new_mappings)
		p->last_table_ns = now;
	if (!p->exe[0])
		read_names(p);
}

static void finish_latency(struct agent *a, struct agent_proc *p)
{
	if (p->exec_ns && !p->latency_done && p->last_table_ns >= p->exec_ns) {
		push_ms(&a->lat_all, p->last_table_ns - p->exec_ns);
		p->latency_done = true;
	}
}

static void on_lifecycle(void *arg, const struct lifecycle_event *ev)
{
	struct agent *a = arg;
	pid_t pid = (pid_t)ev->pid;
	struct agent_proc *p;
	struct err e = { { 0 } };
	switch (ev->kind) {
	case LC_EXEC:
	case LC_FORK:
		if (ev->kind == LC_EXEC)
			a->execs++;
		else
			a->forks++;
		p = add_proc(a, pid);
		if (!p)
			return;
		/* A new image: the old mappings are gone. */
		loader_remove_process(&a->ld, pid, &e);
		memcpy(p->comm, ev->comm, LIFECYCLE_COMM_LEN);
		p->comm[LIFECYCLE_COMM_LEN] = 0;
		p->exe[0] = 0;
		p->exited_ns = 0;
		p->exec_ns = ev->time_ns;
		p->last_table_ns = 0;
		p->next_scan = 0;
		p->latency_done = false;
		p->jvm = -1;
		scan_proc(a, p);
		if (ev->kind == LC_EXEC && p->last_table_ns)
			push_ms(&a->lat_first, p->last_table_ns - ev->time_ns);
		break;
	case LC_EXIT:
		a->exits++;
		p = find_proc(a, pid);
		if (!p)
			return;
		finish_latency(a, p);
		p->exited_ns = now_ns();
		loader_remove_process(&a->ld, pid, &e);
		if (a->o->pid == pid)
			a->root_exited = true;
		break;
	}
}

static void on_sample(void *arg, const struct sample_record *rec, size_t size)
{
	struct agent *a = arg;
	struct agent_proc *p = find_proc(a, (pid_t)rec->pid);
	a->samples++;
	if (!p) {
		a->samples_untracked++;
		return;
	}
	if (rec->reason == WALK_END)
		a->samples_complete++;
	uint64_t now = now_ns();
	if (rec->reason == WALK_NO_MAPPING && !p->exited_ns &&
	    now - p->last_rescan_ns > NOMAP_RESCAN_GAP) {
		/* A PC in no known mapping: dlopen or JIT since the last scan. */
		p->last_rescan_ns = now;
		a->nomap_rescans++;
		scan_proc(a, p);
	}
	const char *labels[4 + AGENT_MAX_LABELS][2] = {
		{ "host", a->host }, { "pid", p->pid_str }, { "comm", p->comm }, { "exe", p->exe },
	};
	size_t n = 4;
	for (size_t i = 0; i < a->o->nlabels; i++, n++) {
		labels[n][0] = a->o->labels[i][0];
		labels[n][1] = a->o->labels[i][1];
	}
	struct err e = { { 0 } };
	if (agent_profile_add(&a->prof, &a->ld, rec, (const char *const(*)[2])labels, n, &e) < 0)
		a->samples_lost_errors++;
}

/* Scheduled rescans after exec; forget processes gone for a while. */
static void housekeeping(struct agent *a)
{
	uint64_t now = now_ns();
	size_t w = 0;
	for (size_t i = 0; i < a->procs.len; i++) {
		struct agent_proc *p = &VEC_AT(&a->procs, struct agent_proc, i);
		if (p->exited_ns && now - p->exited_ns > EXITED_GRACE)
			continue;
		if (!p->exited_ns && p->exec_ns && p->next_scan < NSCANS &&
		    now >= p->exec_ns + SCAN_DELAYS[p->next_scan]) {
			while (p->next_scan < NSCANS && now >= p->exec_ns + SCAN_DELAYS[p->next_scan])
				p->next_scan++;
			scan_proc(a, p);
			if (p->next_scan == NSCANS)
				finish_latency(a, p);
		}
		VEC_AT(&a->procs, struct agent_proc, w++) = *p;
	}
	a->procs.len = w;
}

static void write_jit_file(struct agent *a, const struct jit_snapshot *s)
{
	if (!a->o->output_dir)
		return;
	char dir[4096], path[4200];
	snprintf(dir, sizeof(dir), "%s/jit", a->o->output_dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return;
	snprintf(path, sizeof(path), "%s/%s.%s", dir, s->hash, s->kind == JIT_DUMP ? "dump" : "map");
	struct err e = { { 0 } };
	if (access(path, F_OK) != 0 && write_file_atomic(path, s->content, s->size, 0644, &e) == 0)
		a->jit_files_written++;
}

/* A HotSpot JVM writes its perf map only when asked: ask before each
 * snapshot, so the map names the code compiled since the last one. */
static void refresh_jvm_perf_map(struct agent *a, pid_t pid)
{
	struct agent_proc *p = find_proc(a, pid);
	if (!p || p->exited_ns)
		return;
	if (p->jvm < 0)
		p->jvm = jvm_is_hotspot(pid);
	if (!p->jvm)
		return;
	struct err e = { { 0 } };
	if (jvm_write_perf_map(pid, 2000, &e) == 0) {
		a->jvm_perf_maps++;
		return;
	}
	a->jvm_perf_map_errors++;
	if (!p->jvm_error_told)
		fprintf(stderr, "profiler-agent: JVM %d: no perf map (%s); Java frames stay unnamed "
				"unless it writes one (docs/profiler-agent.md)\n", (int)pid, e.msg);
	p->jvm_error_told = true;
}

/* The kallsyms snapshot beside the JIT ones: DIR/jit/<sha256>.kallsyms. */
static void write_kallsyms_file(struct agent *a)
{
	char path[4200];
	if (!a->o->output_dir)
		return;
	snprintf(path, sizeof(path), "%s/jit", a->o->output_dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return;
	snprintf(path, sizeof(path), "%s/jit/%s.kallsyms", a->o->output_dir, a->kernel.kallsyms_sha);
	struct err e = { { 0 } };
	if (access(path, F_OK) != 0)
		write_file_atomic(path, a->kernel.kallsyms, a->kernel.kallsyms_size, 0644, &e);
}

/* Close the current profile, ship it, start the next one. */
static int flush_profile(struct agent *a, struct err *e)
{
	struct agent_profile *ap = &a->prof;
	pid_t pids[256];
	size_t njit = agent_profile_jit_pids(ap, pids, ARRAY_SIZE(pids));
	struct jit_snapshot *attached[256];
	size_t nattached = 0;
	for (size_t i = 0; i < njit; i++) {
		struct err je = { { 0 } };
		refresh_jvm_perf_map(a, pids[i]);
		struct jit_snapshot *s = jit_snapshot_take(&a->jit, pids[i], &je);
		if (!s || agent_profile_attach_jit(ap, pids[i], s, &je) < 0)
			continue;
		a->jit_snapshots++;
		if (s->content)
			write_jit_file(a, s);
		attached[nattached++] = s;
	}
	int rc = 0;
	if (ap->samples) {
		char head[512];
		snprintf(head, sizeof(head),
			 "profiler-agent 1 host=%s frequency_hz=%u kernel_frames=%s", a->host,
			 a->o->frequency_hz, a->o->kernel ? "yes" : "no");
		/* The kallsyms snapshot travels once, in the first profile
		 * with kernel frames, like a perf map, unless the server has
		 * it already (another agent run of this kernel sent it). */
		bool kernel_frames = ap->kernel_mapping || ap->kmod_mappings.len;
		if (a->kernel_ready && kernel_frames && !a->kernel.kallsyms_shipped && a->sh &&
		    shipper_snapshot_stored(a->sh, a->kernel.kallsyms_sha)) {
			a->kernel.kallsyms_shipped = true;
			a->kallsyms_already_stored = true;
			write_kallsyms_file(a);
		}
		const char *kallsyms = a->kernel_ready && kernel_frames && !a->kernel.kallsyms_shipped
					       ? a->kernel.kallsyms_comment : NULL;
		const char *comments[3] = { head, a->kernel_note, kallsyms };
		size_t ncomments = !a->kernel_note[0] ? 1 : kallsyms ? 3 : 2;
		uint8_t *data = NULL;
		size_t size = 0;
		rc = agent_profile_finish(ap, comments, ncomments, kallsyms ? 1 : 6, &data, &size, e);
		if (rc == 0 && kallsyms) {
			a->kernel.kallsyms_shipped = true;
			a->kallsyms_sent = true;
			write_kallsyms_file(a);
		}
		if (rc == 0) {
			a->profiles++;
			rc = shipper_submit(a->sh, data, size, e);
			/* Buffered counts as shipped: the buffer keeps the content. */
			for (size_t i = 0; i < nattached; i++) {
				attached[i]->shipped = true;
				a->jit.bytes -= attached[i]->size;
				free(attached[i]->content);
				attached[i]->content = NULL;
			}
		}
		free(data);
	} else {
		struct err de = { { 0 } };
		shipper_drain(a->sh, &de);
	}
	agent_profile_free(ap);
	struct err be = { { 0 } };
	int brc = agent_profile_begin(ap, a->o->frequency_hz, &be);
	ap->kernel = a->kernel_ready ? &a->kernel : NULL;
	if (brc < 0 && rc == 0)
		rc = err_set(e, -brc, "%s", be.msg);
	return rc;
}

static void scan_all(struct agent *a)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	pid_t self = getpid();
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		struct agent_proc *p = add_proc(a, (pid_t)pid);
		if (p)
			scan_proc(a, p);
	}
	closedir(d);
}

/* The kernel's build-ID, _text, modules and kallsyms snapshot, so kernel
 * frames travel normalized and the service can name them (kernel.c). */
static void kernel_setup(struct agent *a)
{
	struct err e = { { 0 } };
	if (kernel_info_read(&a->kernel, NULL, &e) < 0) {
		fprintf(stderr, "profiler-agent: kernel frames stay unnamed: %s\n", e.msg);
		kernel_info_free(&a->kernel);
		return;
	}
	a->kernel_ready = true;
	kernel_info_comment(&a->kernel, a->kernel_note, sizeof(a->kernel_note));
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double pct(struct vec *v, double q)
{
	if (!v->len)
		return 0;
	qsort(v->data, v->len, sizeof(double), cmp_double);
	size_t i = (size_t)(q * (double)(v->len - 1) + 0.5);
	return VEC_AT(v, double, i);
}

static void write_stats(struct agent *a)
{
	struct table_fetcher_stats ts = { 0 };
	struct shipper_stats ss = { 0 };
	if (a->tf)
		table_fetcher_stats(a->tf, &ts);
	if (a->sh)
		shipper_stats(a->sh, &ss);
	uint64_t cnt[SAMPLER_COUNTERS] = { 0 };
	struct err e = { { 0 } };
	uint64_t bpf_ns = 0, bpf_runs = 0;
	if (a->bpf) {
		sampler_bpf_counters(a->bpf, cnt, &e);
		sampler_bpf_run_stats(a->bpf, &bpf_ns, &bpf_runs);
	}
	size_t tables = 0, fetched = 0, compiled = 0;
	for (size_t i = 0; a->ld_ready && i < a->ld.objects.len; i++) {
		const struct loaded_object *o = loader_object(&a->ld, (uint32_t)i);
		tables += o->has_table;
		fetched += o->origin == TABLE_FETCHED;
		compiled += o->origin == TABLE_COMPILED;
	}
	FILE *out = stderr;
	if (a->o->stats_file && !(out = fopen(a->o->stats_file, "we")))
		out = stderr;
	fprintf(out,
		"{\"execs\":%" PRIu64 ",\"forks\":%" PRIu64 ",\"exits\":%" PRIu64
		",\"scans\":%" PRIu64 ",\"scan_errors\":%" PRIu64 ",\"nomap_rescans\":%" PRIu64
		",\"samples\":%" PRIu64 ",\"samples_complete\":%" PRIu64
		",\"samples_untracked\":%" PRIu64 ",\"samples_lost\":%" PRIu64
		",\"bpf_samples\":%" PRIu64 ",\"bpf_ringbuf_drops\":%" PRIu64
		",\"bpf_run_ns\":%" PRIu64 ",\"bpf_runs\":%" PRIu64
		",\"objects\":%zu,\"tables_loaded\":%zu,\"tables_fetched\":%zu,\"tables_compiled\":%zu"
		",\"tables_replaced\":%" PRIu64
		",\"table_evictions\":%" PRIu64 ",\"table_refusals\":%" PRIu64
		",\"bad_fetched_tables\":%" PRIu64
		",\"fetch_requests\":%" PRIu64 ",\"fetch_200\":%" PRIu64 ",\"fetch_304\":%" PRIu64
		",\"fetch_404\":%" PRIu64 ",\"fetch_transport_errors\":%" PRIu64
		",\"fetch_disk_hits\":%" PRIu64 ",\"fetch_build_ids\":%" PRIu64
		",\"fetch_max_requests_per_build_id\":%" PRIu64 ",\"fetch_fallbacks\":%" PRIu64
		",\"tables_rejected\":%" PRIu64 ",\"tables_rejected_build_id\":%" PRIu64
		",\"tables_rejected_arch\":%" PRIu64 ",\"tables_rejected_too_big\":%" PRIu64
		",\"tables_rejected_malformed\":%" PRIu64 ",\"cache_purged\":%" PRIu64
		",\"cache_evictions\":%" PRIu64 ",\"cache_strays_removed\":%" PRIu64
		",\"cache_skipped\":%" PRIu64 ",\"cache_bytes\":%" PRIu64
		",\"profiles\":%" PRIu64 ",\"profiles_sent\":%" PRIu64
		",\"profiles_buffered\":%" PRIu64 ",\"profiles_dropped\":%" PRIu64
		",\"profiles_rejected\":%" PRIu64 ",\"profiles_written\":%" PRIu64
		",\"buffer_bytes\":%" PRIu64 ",\"jit_snapshots\":%" PRIu64
		",\"jit_files_written\":%" PRIu64 ",\"jvm_perf_maps\":%" PRIu64
		",\"jvm_perf_map_errors\":%" PRIu64 ",\"kallsyms_snapshot\":\"%s\""
		",\"exec_to_first_tables_ms\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f}"
		",\"exec_to_all_tables_ms\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f}}\n",
		a->execs, a->forks, a->exits, a->scans, a->scan_errors, a->nomap_rescans, a->samples,
		a->samples_complete, a->samples_untracked, a->samples_lost_errors, cnt[CNT_SAMPLES],
		cnt[CNT_RB_DROPS], bpf_ns, bpf_runs, a->ld_ready ? a->ld.objects.len : 0, tables,
		fetched, compiled, a->tables_replaced, a->ld.evictions, a->ld.refusals, a->ld.bad_fetches, ts.requests,
		ts.ok_200, ts.not_modified_304, ts.not_found_404, ts.transport_errors, ts.disk_hits,
		ts.build_ids, ts.max_requests_per_build_id, ts.fallbacks,
		ts.rejected_build_id + ts.rejected_arch + ts.rejected_too_big + ts.rejected_malformed,
		ts.rejected_build_id, ts.rejected_arch, ts.rejected_too_big, ts.rejected_malformed,
		ts.cache_purged, ts.cache_evictions, ts.cache_strays, ts.cache_skipped, ts.cache_bytes,
		a->profiles, ss.sent,
		ss.buffered, ss.dropped, ss.rejected, ss.written, ss.buffer_bytes, a->jit_snapshots,
		a->jit_files_written, a->jvm_perf_maps, a->jvm_perf_map_errors,
		a->kallsyms_sent ? "sent" : a->kallsyms_already_stored ? "stored" : "none", a->lat_first.len, pct(&a->lat_first, 0.5),
		pct(&a->lat_first, 0.99), a->lat_all.len, pct(&a->lat_all, 0.5),
		pct(&a->lat_all, 0.99));
	if (out != stderr)
		fclose(out);
}

/* Tables compiled here because the server lacked them (or was down) are
 * swapped for the server's as soon as a retry finds it there: the server's
 * table is the one every node shares, and may be better (built from the
 * debuginfo).  Objects nobody maps keep theirs until reloaded. */
static void replace_compiled_tables(struct agent *a)
{
	if (!a->tf || !table_fetcher_recheck_due(a->tf))
		return;
	for (size_t i = 0; i < a->ld.objects.len; i++) {
		const struct loaded_object *o = loader_object(&a->ld, (uint32_t)i);
		if (!o->has_table || o->origin != TABLE_COMPILED || !o->build_id[0])
			continue;
		uint8_t *data = NULL;
		size_t size = 0;
		if (table_fetcher_recheck(a->tf, o->build_id, &data, &size) < 0)
			continue;
		struct err e = { { 0 } };
		if (loader_replace_table(&a->ld, o->id, data, size, TABLE_FETCHED, &e) == 0) {
			a->tables_replaced++;
			fprintf(stderr, "profiler-agent: table of %s (%s) replaced by the server's\n",
				o->build_id, o->path);
		} else {
			fprintf(stderr, "profiler-agent: server's table of %s not loaded: %s\n",
				o->build_id, e.msg);
		}
		free(data);
	}
	table_fetcher_recheck_done(a->tf);
}

/* Rejected tables and purged cache entries: rare, and worth a line. */
static void log_table_trouble(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "profiler-agent: %s\n", msg);
}

static int agent_start(struct agent *a, struct err *e)
{
	const struct agent_options *o = a->o;
	struct table_fetcher_options fo = { .server = o->server, .cache_dir = o->cache_dir,
					    .max_table_bytes = o->table_max_bytes,
					    .cache_max_bytes = o->cache_max_bytes,
					    .retry_min_s = o->table_retry_s,
					    .log = log_table_trouble };
	int rc = table_fetcher_new(&a->tf, &fo, e);
	if (rc < 0)
		return rc;
	char url[2048];
	const char *purl = o->profile_url;
	if (!purl && o->server && !o->no_server_profiles) {
		snprintf(url, sizeof(url), "%s%s", o->server,
			 o->server[strlen(o->server) - 1] == '/' ? "profiles" : "/profiles");
		purl = url;
	}
	struct shipper_options so = { .url = purl, .output_dir = o->output_dir,
				      .buffer_dir = o->buffer_dir,
				      .buffer_max_bytes = o->buffer_max_bytes,
				      .token = o->token };
	if ((rc = shipper_new(&a->sh, &so, e)) < 0)
		return rc;
	struct sampler_bpf_options bo = { .lim = o->lim, .mode = MODE_DWARF,
					  .kernel_stacks = o->kernel };
	if ((rc = sampler_bpf_open(&a->bpf, &bo, e)) < 0)
		return rc;
	struct sampler_backend be = sampler_bpf_backend(a->bpf);
	if ((rc = loader_init(&a->ld, &o->lim, &be, e)) < 0)
		return rc;
	a->ld_ready = true;
	struct loader_table_source src = { .fetch = table_fetcher_get, .arg = a->tf };
	loader_set_table_source(&a->ld, &src);
	if ((rc = lifecycle_open(&a->lc, o->all, on_lifecycle, a, e)) < 0)
		return rc;
	if ((rc = agent_profile_begin(&a->prof, o->frequency_hz, e)) < 0)
		return rc;
	a->prof.kernel = a->kernel_ready ? &a->kernel : NULL;
	a->prof_ready = true;
	if (o->all) {
		scan_all(a);
	} else {
		if ((rc = lifecycle_follow(a->lc, o->pid, e)) < 0)
			return rc;
		struct agent_proc *p = add_proc(a, o->pid);
		if (!p)
			return err_set(e, ENOMEM, "out of memory");
		scan_proc(a, p);
		/* Children that already exist are followed too. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)o->pid, (int)o->pid);
		FILE *f = fopen(path, "re");
		int child;
		while (f && fscanf(f, "%d", &child) == 1) {
			struct err fe = { { 0 } };
			lifecycle_follow(a->lc, child, &fe);
			if ((p = add_proc(a, child)))
				scan_proc(a, p);
		}
		if (f)
			fclose(f);
	}
	return sampler_bpf_attach(a->bpf, o->frequency_hz, e);
}

static bool any_alive(struct agent *a)
{
	for (size_t i = 0; i < a->procs.len; i++)
		if (!VEC_AT(&a->procs, struct agent_proc, i).exited_ns)
			return true;
	return false;
}

int agent_run(const struct agent_options *o, volatile int *stop, struct err *e)
{
	/* A kernel that cannot run the BPF programs: one line naming what it
	 * lacks (main prints e), and nothing started. */
	struct bpf_features feat;
	int frc = bpf_features_sampler(&feat, e);
	if (frc == 0)
		frc = bpf_features_lifecycle(e);
	if (frc < 0)
		return frc;
	struct agent a;
	memset(&a, 0, sizeof(a));
	a.o = o;
	a.stats_fd = -1;
	vec_init(&a.procs, sizeof(struct agent_proc));
	vec_init(&a.lat_first, sizeof(double));
	vec_init(&a.lat_all, sizeof(double));
	jit_store_init(&a.jit, 64u << 20);
	if (gethostname(a.host, sizeof(a.host) - 1) < 0)
		snprintf(a.host, sizeof(a.host), "unknown");
	if (o->kernel)
		kernel_setup(&a);
	a.stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME); /* for bpf_run_ns */
	int rc = agent_start(&a, e);
	if (rc == 0 && !o->all && kill(o->pid, 0) < 0)
		rc = err_set(e, ESRCH, "no process %d", (int)o->pid);
	fprintf(stderr, "profiler-agent: %s\n", rc == 0 ? "started" : "failed to start");
	uint64_t start = now_ns();
	uint64_t interval = (uint64_t)(o->interval_s * 1e9);
	uint64_t next_flush = start + interval, next_sweep = start + 1000 * MS;
	uint64_t deadline = o->duration_s > 0 ? start + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
	while (rc == 0 && !*stop && now_ns() < deadline) {
		int prc = lifecycle_poll(a.lc, 20);
		if (prc < 0) {
			rc = err_set(e, -prc, "reading lifecycle events: %s", strerror(-prc));
			break;
		}
		prc = sampler_bpf_poll(a.bpf, 0, on_sample, &a);
		if (prc < 0) {
			rc = err_set(e, -prc, "reading samples: %s", strerror(-prc));
			break;
		}
		housekeeping(&a);
		uint64_t now = now_ns();
		if (now >= next_flush) {
			struct err fe = { { 0 } };
			if (flush_profile(&a, &fe) < 0)
				fprintf(stderr, "profiler-agent: %s\n", fe.msg);
			next_flush = now + interval;
		}
		if (now >= next_sweep) {
			loader_unload_unused(&a.ld, now - (uint64_t)(o->table_idle_s * 1e9));
			replace_compiled_tables(&a);
			next_sweep = now + 1000 * MS;
			if (!o->all && (a.root_exited || kill(o->pid, 0) < 0) && !any_alive(&a))
				break; /* everything we followed is gone */
		}
	}
	if (a.bpf && a.prof_ready) {
		/* The last samples, then the last profile. */
		while (sampler_bpf_poll(a.bpf, 0, on_sample, &a) > 0)
			;
		struct err fe = { { 0 } };
		if (flush_profile(&a, &fe) < 0)
			fprintf(stderr, "profiler-agent: %s\n", fe.msg);
	}
	if (a.tf || a.bpf)
		write_stats(&a);
	if (a.prof_ready)
		agent_profile_free(&a.prof);
	lifecycle_close(a.lc);
	if (a.ld_ready)
		loader_free(&a.ld);
	sampler_bpf_close(a.bpf);
	shipper_free(a.sh);
	table_fetcher_free(a.tf);
	jit_store_free(&a.jit);
	kernel_info_free(&a.kernel);
	vec_free(&a.procs);
	vec_free(&a.lat_first);
	vec_free(&a.lat_all);
	if (a.stats_fd >= 0)
		close(a.stats_fd);
	return rc;
}
