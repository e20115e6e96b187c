/* Samples -> one unsymbolized pprof per interval (the address and
 * profile contracts of docs/architecture.md; the exact contents are in
 * docs/profiler-agent.md).
 *
 * Frame kinds follow pprof position: location 0 is the leaf PC, the rest
 * are return addresses.  Kernel frames come first (the innermost), then
 * the user frames.  A PC restored from a signal frame in the middle of a
 * stack is a leaf PC that position alone cannot express: it is written as
 * PC + 1, so the return-address rule (look up address - 1) finds exactly
 * the interrupted instruction. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent-hooks/agent_hooks.h"
#include "common/gzip.h"

struct jit_mapping_ref {
	pid_t pid;
	uint64_t mapping_id;
};

struct object_mapping {
	uint64_t mapping_id;
	char build_id[BUILD_ID_HEX_MAX];
	char path[256];
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int agent_profile_begin(struct agent_profile *ap, uint32_t frequency_hz, struct err *e)
{
	static const char *const types[] = { "samples", "cpu" };
	static const char *const units[] = { "count", "nanoseconds" };
	memset(ap, 0, sizeof(*ap));
	ap->p = pprof_new(types, units, 2);
	if (!ap->p)
		return err_set(e, ENOMEM, "out of memory");
	ap->period_ns = 1000000000ull / (frequency_hz ? frequency_hz : 1);
	ap->p->period = (int64_t)ap->period_ns;
	ap->p->period_type.type = pprof_intern(ap->p, "cpu");
	ap->p->period_type.unit = pprof_intern(ap->p, "nanoseconds");
	ap->start_real_ns = realtime_ns();
	ap->start_mono_ns = now_ns();
	vec_init(&ap->object_mapping, sizeof(struct object_mapping));
	vec_init(&ap->jit_mappings, sizeof(struct jit_mapping_ref));
	vec_init(&ap->kmod_mappings, sizeof(uint64_t));
	return 0;
}

void agent_profile_free(struct agent_profile *ap)
{
	pprof_free(ap->p);
	vec_free(&ap->object_mapping);
	vec_free(&ap->jit_mappings);
	vec_free(&ap->kmod_mappings);
	memset(ap, 0, sizeof(*ap));
}

/* The pprof mapping of a loader object; object slots can be reused by the
 * loader, so the cached entry is checked against the object's identity. */
static uint64_t object_mapping(struct agent_profile *ap, const struct loaded_object *o)
{
	while (ap->object_mapping.len <= o->id)
		if (!vec_push(&ap->object_mapping))
			return 0;
	struct object_mapping *m = &VEC_AT(&ap->object_mapping, struct object_mapping, o->id);
	if (m->mapping_id && !strcmp(m->build_id, o->build_id) && !strcmp(m->path, o->path))
		return m->mapping_id;
	m->mapping_id = pprof_add_mapping(ap->p, o->build_id, o->path);
	memcpy(m->build_id, o->build_id, sizeof(m->build_id));
	memcpy(m->path, o->path, sizeof(m->path));
	return m->mapping_id;
}

static uint64_t jit_mapping(struct agent_profile *ap, pid_t pid)
{
	for (size_t i = 0; i < ap->jit_mappings.len; i++) {
		struct jit_mapping_ref *r = &VEC_AT(&ap->jit_mappings, struct jit_mapping_ref, i);
		if (r->pid == pid)
			return r->mapping_id;
	}
	char name[64];
	snprintf(name, sizeof(name), "[anon:jit pid %d]", (int)pid);
	uint64_t id = pprof_add_mapping(ap->p, "", name);
	struct jit_mapping_ref *r = id ? vec_push(&ap->jit_mappings) : NULL;
	if (!r)
		return 0;
	r->pid = pid;
	r->mapping_id = id;
	return id;
}

/* A kernel frame: the kernel image's mapping ("[kernel.kallsyms]", the
 * kernel's build-ID, offsets from _text) or a module's ("[kmod:NAME]", its
 * build-ID, offsets from its base).  Without kernel_info, the old form:
 * runtime addresses under "[kernel.kallsyms]" without build-ID. */
static struct pprof_frame kernel_frame(struct agent_profile *ap, uint64_t addr)
{
	const struct kernel_info *k = ap->kernel;
	if (!k) {
		if (!ap->kernel_mapping)
			ap->kernel_mapping = pprof_add_mapping(ap->p, "", "[kernel.kallsyms]");
		return (struct pprof_frame){ ap->kernel_mapping, addr };
	}
	uint64_t offset;
	int mi = kernel_normalize(k, addr, &offset);
	if (mi < 0) {
		if (!ap->kernel_mapping)
			ap->kernel_mapping = pprof_add_mapping(ap->p, k->build_id, "[kernel.kallsyms]");
		return (struct pprof_frame){ ap->kernel_mapping, offset };
	}
	while (ap->kmod_mappings.len <= (size_t)mi)
		if (!vec_push(&ap->kmod_mappings))
			return (struct pprof_frame){ 0, addr };
	uint64_t *id = &VEC_AT(&ap->kmod_mappings, uint64_t, mi);
	if (!*id) {
		const struct kernel_module *m = &VEC_AT(&k->modules, struct kernel_module, mi);
		char name[KERNEL_MODULE_NAME + 8];
		snprintf(name, sizeof(name), "[kmod:%s]", m->name);
		*id = pprof_add_mapping(ap->p, m->build_id, name);
	}
	return (struct pprof_frame){ *id, offset };
}

int agent_profile_add(struct agent_profile *ap, const struct sampler_loader *ld,
		      const struct sample_record *rec, const char *const (*labels)[2],
		      size_t nlabels, struct err *e)
{
	struct pprof_frame frames[SAMPLER_MAX_KFRAMES + 1 + SAMPLER_MAX_FRAMES];
	size_t n = 0;
	int kn = rec->kernel_frames;
	if (kn > SAMPLER_MAX_KFRAMES + 1)
		kn = SAMPLER_MAX_KFRAMES + 1;
	for (int i = 0; i < kn; i++)
		frames[n++] = kernel_frame(ap, rec->kstack[i]);
	unsigned un = rec->user_frames > SAMPLER_MAX_FRAMES ? SAMPLER_MAX_FRAMES : rec->user_frames;
	for (unsigned i = 0; i < un; i++) {
		const struct frame *f = &rec->frames[i];
		const struct loaded_object *o =
			f->object_id == OBJECT_NONE ? NULL : loader_object(ld, f->object_id);
		uint64_t mapping = 0;
		if (o && o->id == ld->anon_object)
			mapping = jit_mapping(ap, (pid_t)rec->pid);
		else if (o)
			mapping = object_mapping(ap, o);
		uint64_t addr = f->addr;
		if (n > 0 && f->kind == FRAME_LEAF)
			addr++; /* mid-stack leaf PC: see the top of this file */
		frames[n++] = (struct pprof_frame){ mapping, addr };
	}
	if (n == 0)
		return 0; /* nothing to attribute (kernel thread without stack) */
	int64_t values[2] = { 1, (int64_t)ap->period_ns };
	int rc = pprof_add_sample(ap->p, frames, n, values, labels, nlabels, e);
	if (rc == 0)
		ap->samples++;
	return rc;
}

size_t agent_profile_jit_pids(const struct agent_profile *ap, pid_t *pids, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < ap->jit_mappings.len && n < max; i++)
		pids[n++] = VEC_AT(&ap->jit_mappings, struct jit_mapping_ref, i).pid;
	return n;
}

/* A comment is its own string: appended, not interned (a snapshot of
 * megabytes would be hashed and copied once more for nothing). */
static int add_comment(struct pprof_profile *p, const char *text, struct err *e)
{
	int64_t idx = pprof_append_string(p, text);
	int64_t *slot = idx < 0 ? NULL : vec_push(&p->comments);
	if (!slot)
		return err_set(e, ENOMEM, "out of memory");
	*slot = idx;
	return 0;
}

static char *base64(const uint8_t *data, size_t size)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((size + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < size; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < size)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < size)
			v |= data[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < size ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < size ? tab[v & 63] : '=';
	}
	*o = 0;
	return out;
}

int agent_profile_attach_jit(struct agent_profile *ap, pid_t pid, struct jit_snapshot *snap,
			     struct err *e)
{
	uint64_t id = 0;
	for (size_t i = 0; i < ap->jit_mappings.len; i++) {
		struct jit_mapping_ref *r = &VEC_AT(&ap->jit_mappings, struct jit_mapping_ref, i);
		if (r->pid == pid)
			id = r->mapping_id;
	}
	struct pprof_mapping *m = id ? pprof_mapping_by_id(ap->p, id) : NULL;
	if (!m)
		return err_set(e, ENOENT, "pid %d has no JIT mapping in this profile", (int)pid);
	const char *kind = snap->kind == JIT_DUMP ? "jitdump" : "perf-map";
	char name[128];
	/* perf-map:<sha256> is what debuginfod-lite's profile store resolves
	 * (docs/http-api.md); it has no jitdump reader yet. */
	if (snap->kind == JIT_DUMP)
		snprintf(name, sizeof(name), "jit:jitdump:%s", snap->hash);
	else
		snprintf(name, sizeof(name), "perf-map:%s", snap->hash);
	int64_t idx = pprof_intern(ap->p, name);
	if (idx < 0)
		return err_set(e, ENOMEM, "out of memory");
	m = pprof_mapping_by_id(ap->p, id);
	m->filename = idx;
	if (snap->shipped || !snap->content)
		return 0;
	/* The content travels once, as a comment: a header line, then the
	 * perf map as text or the jitdump in base64. */
	char *body = snap->kind == JIT_DUMP ? base64(snap->content, snap->size)
					    : strndup((const char *)snap->content, snap->size);
	size_t hl = 160 + (body ? strlen(body) : 0);
	char *text = body ? malloc(hl) : NULL;
	if (!text) {
		free(body);
		return err_set(e, ENOMEM, "out of memory");
	}
	snprintf(text, hl, "profiler-agent.jit %s sha256=%s encoding=%s\n%s", kind, snap->hash,
		 snap->kind == JIT_DUMP ? "base64" : "text", body);
	int rc = add_comment(ap->p, text, e);
	free(text);
	free(body);
	return rc;
}

int agent_profile_finish(struct agent_profile *ap, const char *const *comments, size_t ncomments,
			 int gzip_level, uint8_t **out, size_t *size, struct err *e)
{
	ap->p->time_nanos = (int64_t)ap->start_real_ns;
	ap->p->duration_nanos = (int64_t)(now_ns() - ap->start_mono_ns);
	for (size_t i = 0; i < ncomments; i++) {
		int rc = add_comment(ap->p, comments[i], e);
		if (rc < 0)
			return rc;
	}
	uint8_t *plain = NULL;
	size_t plain_size = 0;
	int rc = pprof_serialize(ap->p, false, &plain, &plain_size, e);
	if (rc < 0)
		return rc;
	rc = gzip_compress_level(plain, plain_size, gzip_level, out, size, e);
	free(plain);
	return rc;
}
