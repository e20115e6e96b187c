/* walker.c built for user space: the shim reads an in-memory image of the
 * sampler maps and a copied stack, so a captured sample replays exactly as
 * the BPF program would walk it. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/loader.h"

struct walk_env {
	const struct sampler_image *img;
	const struct replay_input *in;
	uint64_t *counters;
};

#define WALK_INLINE inline
#define W_OPAQUE(env, x) (x)

static int w_read(struct walk_env *env, void *dst, uint32_t size, uint64_t addr)
{
	const struct replay_input *in = env->in;
	if (in->read)
		return in->read(in->read_arg, dst, size, addr);
	if (addr < in->stack_addr || addr - in->stack_addr > in->stack_size ||
	    in->stack_size - (addr - in->stack_addr) < size)
		return -EFAULT;
	memcpy(dst, in->stack + (addr - in->stack_addr), size);
	return 0;
}

static const struct mapping_value *w_mapping(struct walk_env *env, uint64_t addr)
{
	return sampler_image_mapping(env->img, env->in->pid, addr);
}

static const struct table_info *w_table(struct walk_env *env, uint32_t id)
{
	if (id >= env->img->lim.max_objects || !env->img->table_present[id])
		return NULL;
	return &env->img->tables[id];
}

static uint32_t *w_page(struct walk_env *env, uint32_t idx)
{
	return idx < env->img->lim.max_pages ? &env->img->pages[idx] : NULL;
}

static const uint8_t *w_entry(struct walk_env *env, uint32_t idx)
{
	uint32_t block = idx / ENTRY_BLOCK_ENTRIES;
	if (block >= env->img->lim.max_entry_blocks)
		return NULL;
	return env->img->blocks[block].bytes + (idx % ENTRY_BLOCK_ENTRIES) * UNWIND_ENTRY_SIZE;
}

static const struct unwind_rule *w_rule(struct walk_env *env, uint32_t idx)
{
	return idx < env->img->lim.max_rules ? &env->img->rules[idx] : NULL;
}

static void w_count(struct walk_env *env, enum sampler_counter c)
{
	if (env->counters)
		env->counters[c]++;
}

#include "bpf/walker.c"

void replay_walk(const struct sampler_image *img, const struct replay_input *in, uint8_t mode,
		 uint32_t max_frames, struct sample_record *out, uint64_t counters[SAMPLER_COUNTERS])
{
	struct walk_env env = { .img = img, .in = in, .counters = counters };
	struct walk_regs st;
	memset(&st, 0, sizeof(st));
	memset(out, 0, SAMPLE_HEADER_BYTES);
	out->pid = in->pid;
	out->tid = in->tid;
	out->mode = mode;
	memcpy(st.r, in->regs, sizeof(st.r));
	st.valid = WALK_ALL_REGS;
	st.arch = in->arch;
	if (max_frames > SAMPLER_MAX_FRAMES)
		max_frames = SAMPLER_MAX_FRAMES;
	if (counters)
		counters[CNT_SAMPLES]++;
	for (uint32_t i = 0; i <= max_frames; i++)
		if (walk_step(&env, &st, out, max_frames, mode))
			break;
	if (counters)
		counters[out->reason]++;
}

/* --- the in-memory image of the maps --- */

int sampler_image_init(struct sampler_image *img, const struct sampler_limits *lim, struct err *e)
{
	memset(img, 0, sizeof(*img));
	img->lim = *lim;
	img->tables = calloc(lim->max_objects, sizeof(*img->tables));
	img->table_present = calloc(lim->max_objects, 1);
	img->rules = calloc(lim->max_rules, sizeof(*img->rules));
	img->pages = calloc(lim->max_pages, sizeof(*img->pages));
	img->blocks = calloc(lim->max_entry_blocks, sizeof(*img->blocks));
	img->prefixes = calloc(lim->max_mappings, sizeof(*img->prefixes));
	if (!img->tables || !img->table_present || !img->rules || !img->pages || !img->blocks ||
	    !img->prefixes) {
		sampler_image_free(img);
		return err_set(e, ENOMEM, "cannot allocate the sampler map image");
	}
	return 0;
}

void sampler_image_free(struct sampler_image *img)
{
	free(img->tables);
	free(img->table_present);
	free(img->rules);
	free(img->pages);
	free(img->blocks);
	free(img->prefixes);
	memset(img, 0, sizeof(*img));
}

static int image_update(void *impl, enum sampler_map_id map, const void *key, const void *value)
{
	struct sampler_image *img = impl;
	uint32_t idx = 0;
	if (map != SMAP_MAPPINGS)
		memcpy(&idx, key, sizeof(idx));
	switch (map) {
	case SMAP_TABLES:
		if (idx >= img->lim.max_objects)
			return -E2BIG;
		img->tables[idx] = *(const struct table_info *)value;
		img->table_present[idx] = 1;
		return 0;
	case SMAP_RULES:
		if (idx >= img->lim.max_rules)
			return -E2BIG;
		img->rules[idx] = *(const struct unwind_rule *)value;
		return 0;
	case SMAP_PAGES:
		if (idx >= img->lim.max_pages)
			return -E2BIG;
		img->pages[idx] = *(const uint32_t *)value;
		return 0;
	case SMAP_ENTRY_BLOCKS:
		if (idx >= img->lim.max_entry_blocks)
			return -E2BIG;
		img->blocks[idx] = *(const struct entry_block *)value;
		return 0;
	case SMAP_MAPPINGS: {
		const struct mapping_key *k = key;
		for (size_t i = 0; i < img->nprefixes; i++)
			if (!memcmp(&img->prefixes[i].key, k, sizeof(*k))) {
				img->prefixes[i].value = *(const struct mapping_value *)value;
				return 0;
			}
		if (img->nprefixes >= img->lim.max_mappings)
			return -E2BIG;
		img->prefixes[img->nprefixes].key = *k;
		img->prefixes[img->nprefixes++].value = *(const struct mapping_value *)value;
		return 0;
	}
	}
	return -EINVAL;
}

static int image_remove(void *impl, enum sampler_map_id map, const void *key)
{
	struct sampler_image *img = impl;
	if (map != SMAP_MAPPINGS)
		return -EINVAL;
	for (size_t i = 0; i < img->nprefixes; i++)
		if (!memcmp(&img->prefixes[i].key, key, sizeof(struct mapping_key))) {
			img->prefixes[i] = img->prefixes[--img->nprefixes];
			return 0;
		}
	return -ENOENT;
}

struct sampler_backend sampler_image_backend(struct sampler_image *img)
{
	return (struct sampler_backend){ .update = image_update, .remove = image_remove, .impl = img };
}

const struct mapping_value *sampler_image_mapping(const struct sampler_image *img, uint32_t pid,
						  uint64_t addr)
{
	/* Same semantics as BPF_MAP_TYPE_LPM_TRIE over {pid, addr} big-endian. */
	const struct mapping_value *best = NULL;
	uint32_t best_len = 0;
	for (size_t i = 0; i < img->nprefixes; i++) {
		const struct mapping_key *k = &img->prefixes[i].key;
		if (be32toh(k->pid_be) != pid || k->prefixlen < 32 || k->prefixlen > 96)
			continue;
		uint32_t bits = k->prefixlen - 32;
		uint64_t mask = bits == 0 ? 0 : ~0ull << (64 - bits);
		if (((addr ^ be64toh(k->addr_be)) & mask) == 0 && (!best || k->prefixlen > best_len)) {
			best = &img->prefixes[i].value;
			best_len = k->prefixlen;
		}
	}
	return best;
}
