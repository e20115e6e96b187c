/* Loading, attaching and reading the BPF sampler (skeleton of sampler.bpf.c). */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/features.h"
#include "bpf/loader.h"
#include "sampler.skel.h"

struct sampler_bpf {
	struct sampler_skel *skel;
	struct bpf_program *prog; /* the one attached: sample or sample_chain */
	struct bpf_features feat;
	struct ring_buffer *rb;
	struct bpf_link **links;
	int *perf_fds;
	int ncpus;
	sampler_record_fn fn;
	void *fn_arg;
	int delivered;
};

static int silent_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("SAMPLER_VERBOSE"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

int sampler_bpf_open(struct sampler_bpf **out, const struct sampler_bpf_options *opt,
		     struct err *e)
{
	libbpf_set_print(silent_print);
	struct bpf_features feat;
	int rc = bpf_features_sampler(&feat, e);
	if (rc < 0)
		return rc;
	struct sampler_bpf *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	s->feat = feat;
	s->skel = sampler_skel__open();
	if (!s->skel) {
		rc = -errno;
		free(s);
		return err_set(e, -rc, "cannot open the BPF object: %s", strerror(-rc));
	}
	struct sampler_skel *k = s->skel;
	const struct sampler_limits *l = &opt->lim;
	k->rodata->target_tgid = opt->target_tgid;
	k->rodata->max_frames = l->max_frames;
	k->rodata->walk_mode = opt->mode;
	k->rodata->kernel_stacks = opt->kernel_stacks;
	k->rodata->have_task_pt_regs = feat.task_pt_regs;
	/* One build of the walk loop is loaded, the other never reaches the
	 * verifier (bpf_loop's callback is a load error before 5.13). */
	bpf_program__set_autoload(k->progs.sample, feat.loop);
	bpf_program__set_autoload(k->progs.sample_chain, !feat.loop);
	bpf_program__set_autoload(k->progs.walk_more, !feat.loop);
	s->prog = feat.loop ? k->progs.sample : k->progs.sample_chain;
	bpf_map__set_max_entries(k->maps.mappings, l->max_mappings);
	bpf_map__set_max_entries(k->maps.tables, l->max_objects);
	bpf_map__set_max_entries(k->maps.rules, l->max_rules);
	bpf_map__set_max_entries(k->maps.pages, l->max_pages);
	bpf_map__set_max_entries(k->maps.entry_blocks, l->max_entry_blocks);
	bpf_map__set_max_entries(k->maps.samples, l->ringbuf_bytes);
	rc = sampler_skel__load(k);
	if (!rc && !feat.loop) {
		__u32 slot = 0;
		int fd = bpf_program__fd(k->progs.walk_more);
		if (bpf_map_update_elem(bpf_map__fd(k->maps.walk_chain), &slot, &fd, BPF_ANY) < 0)
			rc = -errno;
	}
	if (rc) {
		rc = rc < 0 ? rc : -EINVAL;
		sampler_skel__destroy(k);
		free(s);
		return err_set(e, -rc,
			       "cannot load the BPF sampler (walk by %s): %s (needs root or "
			       "CAP_BPF+CAP_PERFMON; SAMPLER_VERBOSE=1 shows the verifier log)",
			       bpf_features_walk(&feat), strerror(-rc));
	}
	*out = s;
	return 0;
}

static int bpf_update(void *impl, enum sampler_map_id map, const void *key, const void *value)
{
	struct sampler_bpf *s = impl;
	struct bpf_map *m = NULL;
	switch (map) {
	case SMAP_TABLES: m = s->skel->maps.tables; break;
	case SMAP_RULES: m = s->skel->maps.rules; break;
	case SMAP_PAGES: m = s->skel->maps.pages; break;
	case SMAP_ENTRY_BLOCKS: m = s->skel->maps.entry_blocks; break;
	case SMAP_MAPPINGS: m = s->skel->maps.mappings; break;
	}
	if (!m)
		return -EINVAL;
	if (bpf_map_update_elem(bpf_map__fd(m), key, value, BPF_ANY) < 0)
		return -errno;
	return 0;
}

static int bpf_remove(void *impl, enum sampler_map_id map, const void *key)
{
	struct sampler_bpf *s = impl;
	if (map != SMAP_MAPPINGS)
		return -EINVAL;
	if (bpf_map_delete_elem(bpf_map__fd(s->skel->maps.mappings), key) < 0)
		return -errno;
	return 0;
}

struct sampler_backend sampler_bpf_backend(struct sampler_bpf *s)
{
	return (struct sampler_backend){ .update = bpf_update, .remove = bpf_remove, .impl = s };
}

int sampler_bpf_attach(struct sampler_bpf *s, uint32_t frequency_hz, struct err *e)
{
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return err_set(e, EINVAL, "cannot count CPUs");
	s->links = calloc((size_t)ncpus, sizeof(*s->links));
	s->perf_fds = calloc((size_t)ncpus, sizeof(*s->perf_fds));
	if (!s->links || !s->perf_fds)
		return err_set(e, ENOMEM, "out of memory");
	s->ncpus = ncpus;
	for (int cpu = 0; cpu < ncpus; cpu++)
		s->perf_fds[cpu] = -1;
	for (int cpu = 0; cpu < ncpus; cpu++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.size = sizeof(attr),
			.freq = 1,
			.sample_freq = frequency_hz,
		};
		int fd = (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV)
				continue; /* possible but offline CPU */
			return err_set(e, errno, "perf_event_open on CPU %d: %s", cpu, strerror(errno));
		}
		s->perf_fds[cpu] = fd;
		s->links[cpu] = bpf_program__attach_perf_event(s->prog, fd);
		if (!s->links[cpu]) {
			int rc = errno;
			s->links[cpu] = NULL;
			return err_set(e, rc, "attaching to the perf event of CPU %d: %s", cpu,
				       strerror(rc));
		}
	}
	return 0;
}

static int rb_callback(void *ctx, void *data, size_t size)
{
	struct sampler_bpf *s = ctx;
	if (size < SAMPLE_HEADER_BYTES)
		return 0;
	const struct sample_record *rec = data;
	size_t want = SAMPLE_HEADER_BYTES + (size_t)rec->user_frames * sizeof(struct frame);
	if (rec->user_frames > SAMPLER_MAX_FRAMES || want > size)
		return 0;
	s->fn(s->fn_arg, rec, size);
	s->delivered++;
	return 0;
}

int sampler_bpf_poll(struct sampler_bpf *s, int timeout_ms, sampler_record_fn fn, void *arg)
{
	if (!s->rb) {
		s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.samples), rb_callback, s, NULL);
		if (!s->rb)
			return -errno;
	}
	s->fn = fn;
	s->fn_arg = arg;
	s->delivered = 0;
	/* The program wakes us only when the ring is half full: wait for
	 * that or the timeout, then take whatever is there. */
	int rc = ring_buffer__poll(s->rb, timeout_ms);
	if (rc < 0 && rc != -EINTR)
		return rc;
	rc = ring_buffer__consume(s->rb);
	if (rc < 0 && rc != -EINTR)
		return rc;
	return s->delivered;
}

int sampler_bpf_counters(struct sampler_bpf *s, uint64_t out[SAMPLER_COUNTERS], struct err *e)
{
	int ncpus = libbpf_num_possible_cpus();
	uint64_t *vals = calloc((size_t)ncpus, sizeof(uint64_t));
	if (!vals)
		return err_set(e, ENOMEM, "out of memory");
	for (uint32_t c = 0; c < SAMPLER_COUNTERS; c++) {
		out[c] = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.counters), &c, vals) < 0)
			continue;
		for (int i = 0; i < ncpus; i++)
			out[c] += vals[i];
	}
	free(vals);
	return 0;
}

static uint64_t fd_memlock(int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	uint64_t v = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %" SCNu64, &v) == 1)
			break;
	fclose(f);
	return v;
}

uint64_t sampler_bpf_map_memory(struct sampler_bpf *s, FILE *detail)
{
	uint64_t total = 0;
	struct bpf_map *m;
	bpf_object__for_each_map(m, s->skel->obj)
	{
		uint64_t bytes = fd_memlock(bpf_map__fd(m));
		total += bytes;
		if (detail)
			fprintf(detail, "  map %-13s max_entries %-8u memlock %" PRIu64 " bytes\n",
				bpf_map__name(m), bpf_map__max_entries(m), bytes);
	}
	return total;
}

int sampler_bpf_run_stats(struct sampler_bpf *s, uint64_t *run_ns, uint64_t *run_cnt)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	/* A tail call does not return: the chain's time is the first
	 * program's. */
	if (bpf_obj_get_info_by_fd(bpf_program__fd(s->prog), &info, &len) < 0)
		return -errno;
	*run_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	return 0;
}

const char *sampler_bpf_walk(const struct sampler_bpf *s)
{
	return bpf_features_walk(&s->feat);
}

void sampler_bpf_close(struct sampler_bpf *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->ncpus; i++) {
		if (s->links && s->links[i])
			bpf_link__destroy(s->links[i]);
		if (s->perf_fds && s->perf_fds[i] >= 0)
			close(s->perf_fds[i]);
	}
	free(s->links);
	free(s->perf_fds);
	ring_buffer__free(s->rb);
	sampler_skel__destroy(s->skel);
	free(s);
}
