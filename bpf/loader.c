/* Process mappings -> objects (by build-ID) -> tables -> sampler maps. */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/loader.h"
#include "common/proc.h"
#include "unwind-compiler/unwind_compiler.h"

void sampler_limits_default(struct sampler_limits *l)
{
	l->max_objects = 1024;
	l->max_rules = 65536;        /* 768 KiB */
	l->max_pages = 131072;       /* 512 KiB: 512 MiB of text */
	l->max_entry_blocks = 2048;  /* 6 MiB: 2M entries */
	l->max_mappings = 65536;
	l->ringbuf_bytes = 4u << 20;
	l->max_frames = 128;
}

int sampler_limits_parse(struct sampler_limits *l, const char *spec, struct err *e)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "objects", offsetof(struct sampler_limits, max_objects) },
		{ "rules", offsetof(struct sampler_limits, max_rules) },
		{ "pages", offsetof(struct sampler_limits, max_pages) },
		{ "entry_blocks", offsetof(struct sampler_limits, max_entry_blocks) },
		{ "mappings", offsetof(struct sampler_limits, max_mappings) },
		{ "ringbuf_bytes", offsetof(struct sampler_limits, ringbuf_bytes) },
		{ "frames", offsetof(struct sampler_limits, max_frames) },
	};
	char buf[512];
	if (strlen(spec) >= sizeof(buf))
		return err_set(e, EINVAL, "limits: specification too long");
	strcpy(buf, spec);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			return err_set(e, EINVAL, "limits: '%s' is not name=value", tok);
		*eq = 0;
		char *end;
		errno = 0;
		unsigned long v = strtoul(eq + 1, &end, 0);
		if (errno || *end || v == 0 || v > UINT32_MAX)
			return err_set(e, EINVAL, "limits: bad value for %s", tok);
		size_t i;
		for (i = 0; i < ARRAY_SIZE(fields); i++)
			if (!strcmp(fields[i].name, tok))
				break;
		if (i == ARRAY_SIZE(fields))
			return err_set(e, EINVAL, "limits: unknown limit '%s'", tok);
		*(uint32_t *)((char *)l + fields[i].off) = (uint32_t)v;
	}
	if (l->max_frames > SAMPLER_MAX_FRAMES)
		return err_set(e, EINVAL, "limits: frames must be <= %d", SAMPLER_MAX_FRAMES);
	if (l->ringbuf_bytes < 4096 || (l->ringbuf_bytes & (l->ringbuf_bytes - 1)))
		return err_set(e, EINVAL, "limits: ringbuf_bytes must be a power of two >= 4096");
	return 0;
}

const char *walk_reason_name(unsigned reason)
{
	static const char *const names[WALK_REASONS] = {
		[WALK_END] = "end", [WALK_NO_MAPPING] = "no-mapping", [WALK_NO_ROW] = "no-cfi",
		[WALK_UNSUPPORTED] = "unsupported", [WALK_NEED_REG] = "leaf-register",
		[WALK_READ] = "read-error", [WALK_MAX_FRAMES] = "max-frames",
		[WALK_NO_PROGRESS] = "no-progress", [WALK_NO_TABLE] = "no-table",
		[WALK_KERNEL_THREAD] = "kernel-thread",
	};
	return reason < WALK_REASONS ? names[reason] : "unknown";
}

int loader_init(struct sampler_loader *ld, const struct sampler_limits *lim,
		const struct sampler_backend *be, struct err *e)
{
	memset(ld, 0, sizeof(*ld));
	ld->lim = *lim;
	ld->be = *be;
#if defined(__aarch64__)
	ld->arch = UNWIND_ARCH_AARCH64;
#else
	ld->arch = UNWIND_ARCH_X86_64;
#endif
	ld->anon_object = OBJECT_NONE;
	vec_init(&ld->objects, sizeof(struct loaded_object));
	vec_init(&ld->mappings, sizeof(struct loaded_mapping));
	for (size_t i = 0; i < ARRAY_SIZE(ld->space); i++)
		vec_init(&ld->space[i].free, sizeof(struct loader_range));
	return 0;
}

void loader_free(struct sampler_loader *ld)
{
	vec_free(&ld->objects);
	vec_free(&ld->mappings);
	for (size_t i = 0; i < ARRAY_SIZE(ld->space); i++)
		vec_free(&ld->space[i].free);
}

void loader_set_table_source(struct sampler_loader *ld, const struct loader_table_source *src)
{
	ld->source = *src;
}

/* First fit among the freed ranges, else from the top.  count == 0 always
 * succeeds at the top (an empty slice takes no room). */
static bool space_alloc(struct loader_space *sp, uint32_t limit, uint32_t count, uint32_t *first)
{
	for (size_t i = 0; count && i < sp->free.len; i++) {
		struct loader_range *r = &VEC_AT(&sp->free, struct loader_range, i);
		if (r->count < count)
			continue;
		*first = r->first;
		r->first += count;
		r->count -= count;
		if (!r->count) {
			memmove(r, r + 1, (sp->free.len - i - 1) * sizeof(*r));
			sp->free.len--;
		}
		return true;
	}
	if (count > limit - sp->top)
		return false;
	*first = sp->top;
	sp->top += count;
	return true;
}

static void space_release(struct loader_space *sp, uint32_t first, uint32_t count)
{
	if (!count)
		return;
	size_t i = 0;
	while (i < sp->free.len && VEC_AT(&sp->free, struct loader_range, i).first < first)
		i++;
	if (!vec_push(&sp->free))
		return; /* out of memory: the range is leaked, never reused twice */
	struct loader_range *r = &VEC_AT(&sp->free, struct loader_range, i);
	memmove(r + 1, r, (sp->free.len - 1 - i) * sizeof(*r));
	*r = (struct loader_range){ first, count };
	/* Coalesce with the neighbours, then give the top back. */
	if (i + 1 < sp->free.len && r->first + r->count == r[1].first) {
		r->count += r[1].count;
		memmove(r + 1, r + 2, (sp->free.len - i - 2) * sizeof(*r));
		sp->free.len--;
	}
	if (i > 0 && r[-1].first + r[-1].count == r->first) {
		r[-1].count += r->count;
		memmove(r, r + 1, (sp->free.len - i - 1) * sizeof(*r));
		sp->free.len--;
		r--;
	}
	struct loader_range *last = &VEC_AT(&sp->free, struct loader_range, sp->free.len - 1);
	if (last->first + last->count == sp->top) {
		sp->top = last->first;
		sp->free.len--;
	}
}

/* Unload one object's table: its slices return to the free space and its
 * table_info says "no table" (nothing maps it, so no walk reads it). */
static void evict_table(struct sampler_loader *ld, struct loaded_object *o)
{
	if (!o->has_table)
		return;
	space_release(&ld->space[0], o->rules_first, o->rules);
	space_release(&ld->space[1], o->pages_first, o->pages + 1);
	space_release(&ld->space[2], o->blocks_first, o->blocks);
	ld->rules_used -= o->rules;
	ld->pages_used -= o->pages + 1;
	ld->blocks_used -= o->blocks;
	struct table_info ti = { 0 };
	ld->be.update(ld->be.impl, SMAP_TABLES, &o->id, &ti);
	o->has_table = false;
	o->evicted = true;
	snprintf(o->note, sizeof(o->note), "table unloaded (unused)");
}

/* The unused object whose table has been unused longest (NULL: none). */
static struct loaded_object *least_useful(struct sampler_loader *ld, bool with_table)
{
	struct loaded_object *best = NULL;
	for (size_t i = 0; i < ld->objects.len; i++) {
		struct loaded_object *o = &VEC_AT(&ld->objects, struct loaded_object, i);
		if (o->refs || o->id == ld->anon_object || (with_table && !o->has_table))
			continue;
		if (!best || o->last_used_ns < best->last_used_ns)
			best = o;
	}
	return best;
}

unsigned loader_unload_unused(struct sampler_loader *ld, uint64_t unused_before_ns)
{
	unsigned n = 0;
	for (size_t i = 0; i < ld->objects.len; i++) {
		struct loaded_object *o = &VEC_AT(&ld->objects, struct loaded_object, i);
		if (!o->refs && o->has_table && o->id != ld->anon_object &&
		    o->last_used_ns < unused_before_ns) {
			evict_table(ld, o);
			n++;
		}
	}
	return n;
}

const struct loaded_mapping *loader_find_mapping(const struct sampler_loader *ld, uint32_t pid,
						 uint64_t addr)
{
	for (size_t i = 0; i < ld->mappings.len; i++) {
		const struct loaded_mapping *m = &VEC_AT(&ld->mappings, struct loaded_mapping, i);
		if (m->pid == pid && addr >= m->start && addr < m->end)
			return m;
	}
	return NULL;
}

const struct loaded_object *loader_object(const struct sampler_loader *ld, uint32_t id)
{
	return id < ld->objects.len ? &VEC_AT(&ld->objects, struct loaded_object, id) : NULL;
}

static struct loaded_object *find_object(struct sampler_loader *ld, const char *build_id,
					 const char *path)
{
	for (size_t i = 0; i < ld->objects.len; i++) {
		struct loaded_object *o = &VEC_AT(&ld->objects, struct loaded_object, i);
		if (build_id[0] ? !strcmp(o->build_id, build_id)
				: (!o->build_id[0] && !strcmp(o->path, path)))
			return o;
	}
	return NULL;
}

static struct loaded_object *new_object(struct sampler_loader *ld, const char *build_id,
					const char *path, struct err *e)
{
	struct loaded_object *o;
	if (ld->objects.len >= ld->lim.max_objects) {
		/* Reuse the slot of the object unused longest. */
		o = least_useful(ld, false);
		if (!o) {
			err_set(e, E2BIG, "object limit (%u) reached loading %s",
				ld->lim.max_objects, path);
			return NULL;
		}
		if (o->has_table)
			ld->evictions++;
		evict_table(ld, o);
		uint32_t id = o->id;
		memset(o, 0, sizeof(*o));
		o->id = id;
	} else {
		o = vec_push(&ld->objects);
		if (!o) {
			err_set(e, ENOMEM, "out of memory");
			return NULL;
		}
		o->id = (uint32_t)(ld->objects.len - 1);
	}
	snprintf(o->build_id, sizeof(o->build_id), "%s", build_id);
	snprintf(o->path, sizeof(o->path), "%s", path);
	return o;
}

/* Write an FP-only table_info (no rows) so the BPF side knows the id. */
static int write_table_info(struct sampler_loader *ld, uint32_t id, const struct table_info *ti,
			    struct err *e)
{
	int rc = ld->be.update(ld->be.impl, SMAP_TABLES, &id, ti);
	if (rc < 0)
		return err_set(e, -rc, "cannot write table info %u: %s", id, strerror(-rc));
	return 0;
}

/* Copy the table's arrays into the global rule/page/entry maps as they are. */
static int load_table(struct sampler_loader *ld, struct loaded_object *o, const struct unwind_view *v,
		      size_t table_bytes, struct err *e)
{
	const struct unwind_table_header *h = v->hdr;
	if (h->arch != ld->arch)
		return err_set(e, ENOEXEC, "%s: table for architecture %u, the walk is for %u", o->path,
			       h->arch, ld->arch);
	uint32_t blocks = (h->entry_count + ENTRY_BLOCK_ENTRIES - 1) / ENTRY_BLOCK_ENTRIES;
	uint32_t rf, pf, bf;
	for (;;) {
		bool r_ok = space_alloc(&ld->space[0], ld->lim.max_rules, h->rule_count, &rf);
		bool p_ok = r_ok && space_alloc(&ld->space[1], ld->lim.max_pages,
						h->page_count + 1, &pf);
		bool b_ok = p_ok && space_alloc(&ld->space[2], ld->lim.max_entry_blocks, blocks,
						&bf);
		if (b_ok)
			break;
		if (p_ok)
			space_release(&ld->space[1], pf, h->page_count + 1);
		if (r_ok)
			space_release(&ld->space[0], rf, h->rule_count);
		/* Make room by unloading the table unused longest. */
		struct loaded_object *victim = least_useful(ld, true);
		if (!victim || victim == o)
			return err_set(e, E2BIG,
				       "%s: table (%u rules, %u pages, %u entries) exceeds the "
				       "remaining map space",
				       o->path, h->rule_count, h->page_count, h->entry_count);
		evict_table(ld, victim);
		ld->evictions++;
	}
	struct table_info ti = {
		.base = h->base, .page_count = h->page_count, .entry_count = h->entry_count,
		.rule_count = h->rule_count, .rules_first = rf,
		.pages_first = pf, .entries_first = bf * ENTRY_BLOCK_ENTRIES,
	};
	int rc = 0;
	for (uint32_t i = 0; i < h->rule_count && rc >= 0; i++) {
		uint32_t k = ti.rules_first + i;
		rc = ld->be.update(ld->be.impl, SMAP_RULES, &k, &v->rules[i]);
	}
	for (uint32_t i = 0; i <= h->page_count && rc >= 0; i++) {
		uint32_t k = ti.pages_first + i;
		rc = ld->be.update(ld->be.impl, SMAP_PAGES, &k, &v->pages[i]);
	}
	struct entry_block *blk = malloc(sizeof(*blk));
	if (!blk)
		return err_set(e, ENOMEM, "out of memory");
	for (uint32_t b = 0; b < blocks && rc >= 0; b++) {
		uint32_t first = b * ENTRY_BLOCK_ENTRIES;
		uint32_t n = h->entry_count - first < ENTRY_BLOCK_ENTRIES ? h->entry_count - first
									 : ENTRY_BLOCK_ENTRIES;
		memset(blk, 0, sizeof(*blk));
		memcpy(blk->bytes, v->entries + (size_t)first * UNWIND_ENTRY_SIZE,
		       (size_t)n * UNWIND_ENTRY_SIZE);
		uint32_t k = bf + b;
		rc = ld->be.update(ld->be.impl, SMAP_ENTRY_BLOCKS, &k, blk);
	}
	free(blk);
	if (rc >= 0)
		rc = write_table_info(ld, o->id, &ti, e) < 0 ? -EIO : 0;
	else
		err_set(e, -rc, "%s: writing the table into the maps: %s", o->path, strerror(-rc));
	if (rc < 0) {
		space_release(&ld->space[0], rf, h->rule_count);
		space_release(&ld->space[1], pf, h->page_count + 1);
		space_release(&ld->space[2], bf, blocks);
		return rc;
	}
	ld->rules_used += h->rule_count;
	ld->pages_used += h->page_count + 1;
	ld->blocks_used += blocks;
	o->rules_first = rf;
	o->pages_first = pf;
	o->blocks_first = bf;
	o->blocks = blocks;
	o->has_table = true;
	o->evicted = false;
	o->table_bytes = table_bytes;
	o->entries = h->entry_count;
	o->rules = h->rule_count;
	o->pages = h->page_count;
	return 0;
}

static int add_opened(struct sampler_loader *ld, struct elf_object *elf, const char *display_path,
		      uint32_t *id, struct err *e)
{
	char hex[BUILD_ID_HEX_MAX] = "";
	if (elf->build_id_len)
		build_id_to_hex(elf->build_id, elf->build_id_len, hex);
	struct loaded_object *o = find_object(ld, hex, display_path);
	if (o && !o->evicted) {
		*id = o->id;
		return 0;
	}
	if (!o)
		o = new_object(ld, hex, display_path, e);
	if (!o)
		return -E2BIG;
	*id = o->id;
	struct err ce = { { 0 } };
	struct err le = { { 0 } };
	int rc = -ENOENT;
	if (hex[0] && ld->source.fetch) {
		/* The server's table first; a bad one is reported and replaced
		 * by a local compile. */
		uint8_t *data = NULL;
		size_t size = 0;
		rc = ld->source.fetch(ld->source.arg, hex, display_path, &data, &size, &ce);
		if (rc == 0) {
			struct unwind_view v;
			rc = unwind_table_open(&v, data, size, &ce);
			if (rc < 0)
				ld->bad_fetches++;
			else if ((rc = load_table(ld, o, &v, size, &le)) == 0)
				o->origin = TABLE_FETCHED;
		}
		free(data);
	}
	if (rc < 0 && rc != -E2BIG) {
		struct unwind_table t = { 0 };
		struct unwind_compile_options opt = { 0 };
		memset(&ce, 0, sizeof(ce));
		if (unwind_compile(elf, &opt, &t, &ce) == 0) {
			struct unwind_view v;
			rc = unwind_table_open(&v, t.data, t.size, &ce);
			if (rc == 0 && (rc = load_table(ld, o, &v, t.size, &le)) == 0)
				o->origin = TABLE_COMPILED;
			unwind_table_free(&t);
		}
	}
	if (rc == -E2BIG) {
		/* No room even after evicting every unused table: this object
		 * is walked by frame pointers, and the refusal is counted. */
		ld->refusals++;
		snprintf(ce.msg, sizeof(ce.msg), "%s", le.msg);
	} else if (rc < 0 && le.msg[0]) {
		/* A table the loader would not take (another architecture). */
		snprintf(ce.msg, sizeof(ce.msg), "%s", le.msg);
	}
	if (!o->has_table) {
		/* No CFI: frames in this object are walked by frame pointers. */
		snprintf(o->note, sizeof(o->note), "%.127s", ce.msg[0] ? ce.msg : "no table");
		struct table_info ti = { 0 };
		return write_table_info(ld, o->id, &ti, e);
	}
	return 0;
}

int loader_replace_table(struct sampler_loader *ld, uint32_t id, const uint8_t *data, size_t size,
			 enum table_origin origin, struct err *e)
{
	if (id >= ld->objects.len)
		return err_set(e, ENOENT, "no object %u", id);
	struct loaded_object *o = &VEC_AT(&ld->objects, struct loaded_object, id);
	if (!o->has_table)
		return err_set(e, ENOENT, "%s: no table loaded", o->path);
	struct unwind_view v;
	int rc = unwind_table_open(&v, data, size, e);
	if (rc < 0) {
		ld->bad_fetches++;
		return rc;
	}
	/* The new arrays go into free space and the table_info switches to
	 * them in one map update: a walk sees the old table or the new one,
	 * never a mix.  The old slices are freed only afterwards. */
	struct loaded_object old = *o;
	rc = load_table(ld, o, &v, size, e);
	if (rc < 0)
		return rc;
	space_release(&ld->space[0], old.rules_first, old.rules);
	space_release(&ld->space[1], old.pages_first, old.pages + 1);
	space_release(&ld->space[2], old.blocks_first, old.blocks);
	ld->rules_used -= old.rules;
	ld->pages_used -= old.pages + 1;
	ld->blocks_used -= old.blocks;
	o->origin = (uint8_t)origin;
	return 0;
}

int loader_add_object(struct sampler_loader *ld, const char *open_path, const char *display_path,
		      uint32_t *id, struct err *e)
{
	struct elf_object elf;
	int rc = elf_object_open(&elf, open_path, e);
	if (rc < 0)
		return rc;
	rc = add_opened(ld, &elf, display_path, id, e);
	elf_object_close(&elf);
	return rc;
}

int loader_add_object_mem(struct sampler_loader *ld, const void *image, size_t size,
			  const char *display_path, uint32_t *id, struct err *e)
{
	struct elf_object elf;
	int rc = elf_object_open_mem(&elf, image, size, display_path, e);
	if (rc < 0)
		return rc;
	rc = add_opened(ld, &elf, display_path, id, e);
	elf_object_close(&elf);
	return rc;
}

/* The LPM key of the largest aligned block that starts at addr and ends at
 * or before end; *size receives the block size.  Walking addr += size from
 * start covers [start, end) with the fewest prefixes. */
static struct mapping_key next_prefix(uint32_t pid, uint64_t addr, uint64_t end, uint64_t *size)
{
	unsigned bits = addr ? (unsigned)__builtin_ctzll(addr) : 63;
	if (bits > 63)
		bits = 63;
	while (bits > 0 && (end - addr) < (1ull << bits))
		bits--;
	*size = 1ull << bits;
	return (struct mapping_key){
		.prefixlen = 32 + 64 - bits, .pid_be = htobe32(pid), .addr_be = htobe64(addr),
	};
}

static int insert_range(struct sampler_loader *ld, uint32_t pid, uint64_t start, uint64_t end,
			const struct mapping_value *val, struct err *e)
{
	uint64_t size;
	for (uint64_t addr = start; addr < end; addr += size) {
		struct mapping_key k = next_prefix(pid, addr, end, &size);
		int rc = ld->be.update(ld->be.impl, SMAP_MAPPINGS, &k, val);
		if (rc < 0)
			return err_set(e, -rc, "pid %u: inserting mapping %#" PRIx64 ": %s", pid, addr,
				       strerror(-rc));
		ld->prefixes_used++;
	}
	return 0;
}

static void remove_range(struct sampler_loader *ld, uint32_t pid, uint64_t start, uint64_t end)
{
	uint64_t size;
	for (uint64_t addr = start; addr < end; addr += size) {
		struct mapping_key k = next_prefix(pid, addr, end, &size);
		if (ld->be.remove)
			ld->be.remove(ld->be.impl, SMAP_MAPPINGS, &k);
		if (ld->prefixes_used)
			ld->prefixes_used--;
	}
}

static bool mapping_known(struct sampler_loader *ld, uint32_t pid, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < ld->mappings.len; i++) {
		struct loaded_mapping *m = &VEC_AT(&ld->mappings, struct loaded_mapping, i);
		if (m->pid == pid && m->start == start && m->end == end)
			return true;
	}
	return false;
}

/* bias = runtime address - file address, from the PT_LOAD holding `offset`. */
static int mapping_bias(const char *open_path, uint64_t start, uint64_t offset, uint64_t *bias,
			struct err *e)
{
	struct elf_object elf;
	int rc = elf_object_open(&elf, open_path, e);
	if (rc < 0)
		return rc;
	struct elf_segment segs[32];
	int n = elf_object_segments(&elf, segs, ARRAY_SIZE(segs), e);
	elf_object_close(&elf);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		uint64_t seg_page = segs[i].offset & ~0xfffull;
		if (offset >= seg_page && offset < segs[i].offset + segs[i].filesz) {
			*bias = start - offset + segs[i].offset - segs[i].vaddr;
			return 0;
		}
	}
	return err_set(e, ENOENT, "%s: no PT_LOAD holds file offset %#" PRIx64, open_path, offset);
}

static int read_vdso(pid_t pid, uint64_t start, uint64_t end, uint8_t **out, struct err *e)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	size_t size = end - start;
	uint8_t *buf = size <= (1u << 20) ? malloc(size) : NULL;
	ssize_t got = buf ? pread(fd, buf, size, (off_t)start) : -1;
	close(fd);
	if (got != (ssize_t)size) {
		free(buf);
		return err_set(e, EIO, "pid %d: cannot read the vDSO", (int)pid);
	}
	*out = buf;
	return 0;
}

/* After adding a mapping's object: 1 to go on with val filled in, 0 to
 * skip the mapping (object unreadable: counted), < 0 when out of map space. */
static int use_object(struct sampler_loader *ld, int rc, uint32_t id, const struct err *oe,
		      struct mapping_value *val, struct loader_proc_stats *st, struct err *e)
{
	if (rc == -E2BIG)
		return err_set(e, E2BIG, "%s", oe->msg);
	if (rc < 0) {
		st->objects_failed++;
		return 0;
	}
	const struct loaded_object *o = loader_object(ld, id);
	val->object_id = id;
	val->flags = o && o->has_table ? 0 : MAPPING_F_FP_ONLY;
	return 1;
}

static int insert_mapping(struct sampler_loader *ld, uint32_t pid, uint64_t start, uint64_t end,
			  struct mapping_value *val, struct err *e)
{
	val->start = start;
	val->end = end;
	int rc = insert_range(ld, pid, start, end, val, e);
	if (rc < 0)
		return rc;
	struct loaded_mapping *m = vec_push(&ld->mappings);
	if (!m)
		return err_set(e, ENOMEM, "out of memory");
	VEC_AT(&ld->objects, struct loaded_object, val->object_id).refs++;
	*m = (struct loaded_mapping){ .pid = pid, .start = start, .end = end,
				      .bias = val->bias, .object_id = val->object_id };
	return 0;
}

static int add_mapping(struct sampler_loader *ld, pid_t pid, uint64_t start, uint64_t end,
		       uint64_t offset, const char *path, struct loader_proc_stats *st, struct err *e)
{
	struct mapping_value val = { 0 };
	uint32_t id;
	int rc;
	struct err oe = { { 0 } };
	if (path[0] == 0 || !strncmp(path, "[anon", 5) || !strncmp(path, "//anon", 6) ||
	    !strncmp(path, "/memfd:", 7)) {
		/* JIT and other anonymous code: frame pointers, runtime addresses. */
		if (ld->anon_object == OBJECT_NONE) {
			struct loaded_object *o = new_object(ld, "", "[anon]", e);
			if (!o)
				return -E2BIG;
			snprintf(o->note, sizeof(o->note), "anonymous code");
			struct table_info ti = { 0 };
			rc = write_table_info(ld, o->id, &ti, e);
			if (rc < 0)
				return rc;
			ld->anon_object = o->id;
		}
		val.object_id = ld->anon_object;
		val.flags = MAPPING_F_FP_ONLY;
	} else if (!strcmp(path, "[vdso]")) {
		uint8_t *img = NULL;
		if (read_vdso(pid, start, end, &img, &oe) < 0) {
			st->objects_failed++;
			return 0;
		}
		rc = loader_add_object_mem(ld, img, end - start, "[vdso]", &id, &oe);
		free(img);
		rc = use_object(ld, rc, id, &oe, &val, st, e);
		if (rc <= 0)
			return rc;
		val.bias = start; /* the x86-64 vDSO is linked at 0 */
	} else if (path[0] == '[') {
		return 0; /* [vsyscall]: nothing to unwind */
	} else {
		/* map_files reaches the mapped file even when it was deleted
		 * or lives in another mount namespace. */
		char open_path[PATH_MAX];
		snprintf(open_path, sizeof(open_path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 (int)pid, start, end);
		if (access(open_path, R_OK) != 0)
			snprintf(open_path, sizeof(open_path), "%s", path);
		uint64_t bias = 0;
		rc = mapping_bias(open_path, start, offset, &bias, &oe);
		if (rc == 0)
			rc = loader_add_object(ld, open_path, path, &id, &oe);
		rc = use_object(ld, rc, id, &oe, &val, st, e);
		if (rc <= 0)
			return rc;
		val.bias = bias;
	}
	rc = insert_mapping(ld, (uint32_t)pid, start, end, &val, e);
	if (rc == 0)
		st->new_mappings++;
	return rc;
}

int loader_add_mapping(struct sampler_loader *ld, uint32_t pid, uint64_t start, uint64_t end,
		       uint64_t bias, uint32_t id, struct err *e)
{
	const struct loaded_object *o = loader_object(ld, id);
	if (!o)
		return err_set(e, ENOENT, "no object %u", id);
	struct mapping_value val = { .bias = bias, .object_id = id,
				     .flags = o->has_table ? 0 : MAPPING_F_FP_ONLY };
	return insert_mapping(ld, pid, start, end, &val, e);
}

int loader_add_process(struct sampler_loader *ld, pid_t pid, struct loader_proc_stats *st,
		       struct err *e)
{
	struct loader_proc_stats local = { 0 };
	if (!st)
		st = &local;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	char line[4096 + 256];
	int rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		struct proc_map m;
		if (proc_maps_line(line, strlen(line), &m) < 0 || m.perms[2] != 'x')
			continue;
		line[m.path - line + m.path_len] = 0;
		if (mapping_known(ld, (uint32_t)pid, m.start, m.end))
			continue;
		rc = add_mapping(ld, pid, m.start, m.end, m.offset, m.path, st, e);
	}
	fclose(f);
	return rc;
}

int loader_remove_process(struct sampler_loader *ld, pid_t pid, struct err *e)
{
	size_t w = 0;
	for (size_t i = 0; i < ld->mappings.len; i++) {
		struct loaded_mapping *m = &VEC_AT(&ld->mappings, struct loaded_mapping, i);
		if (m->pid == (uint32_t)pid) {
			remove_range(ld, m->pid, m->start, m->end);
			struct loaded_object *o = &VEC_AT(&ld->objects, struct loaded_object,
							  m->object_id);
			assert(o->refs > 0);
			if (--o->refs == 0)
				o->last_used_ns = now_ns();
		} else
			VEC_AT(&ld->mappings, struct loaded_mapping, w++) = *m;
	}
	ld->mappings.len = w;
	return 0;
}

void loader_format_frame(const struct sampler_loader *ld, const struct frame *f, char *buf,
			 size_t size)
{
	const struct loaded_object *o = f->object_id == OBJECT_NONE ? NULL
								    : loader_object(ld, f->object_id);
	if (!o)
		snprintf(buf, size, "0x%" PRIx64, (uint64_t)f->addr);
	else
		snprintf(buf, size, "%s+0x%" PRIx64, o->build_id[0] ? o->build_id : o->path,
			 (uint64_t)f->addr);
}
