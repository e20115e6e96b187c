/* See hashmap.h. */
#include "common/hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t hash_fnv1a64_seeded(uint64_t seed, const void *data, size_t len)
{
	const uint8_t *b = data;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* FNV-1a's low bits depend only on the low bits of each byte; fold the high
 * half in so that a small table's slot sees every bit of the key. */
static uint32_t slot_hash(const void *key, size_t len)
{
	uint64_t h = hash_fnv1a64(key, len);
	return (uint32_t)(h ^ (h >> 32));
}

void hashmap_init(struct hashmap *m)
{
	m->slots = NULL;
	m->nslots = 0;
	vec_init(&m->entries, sizeof(struct hashmap_entry));
	vec_init(&m->arena, 1);
}

void hashmap_free(struct hashmap *m)
{
	free(m->slots);
	vec_free(&m->entries);
	vec_free(&m->arena);
	hashmap_init(m);
}

size_t hashmap_memory(const struct hashmap *m)
{
	return m->nslots * sizeof(*m->slots) + m->entries.cap * m->entries.elem_size +
	       m->arena.cap;
}

static int grow(struct hashmap *m)
{
	size_t n = m->nslots ? m->nslots * 2 : 64;
	uint32_t *s = calloc(n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < m->entries.len; i++) {
		size_t j = VEC_AT(&m->entries, struct hashmap_entry, i).hash & (n - 1);
		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = (uint32_t)(i + 1);
	}
	free(m->slots);
	m->slots = s;
	m->nslots = n;
	return 0;
}

/* The entry for key, inserted (value 0) when absent and `add`.  *entry is
 * NULL when absent and not added.  1 found, 0 not found, -ENOMEM. */
static int probe(struct hashmap *m, const void *key, size_t len, bool add,
		 struct hashmap_entry **entry)
{
	uint32_t h = slot_hash(key, len);
	size_t j = 0;
	*entry = NULL;
	if (m->nslots) {
		for (j = h & (m->nslots - 1); m->slots[j]; j = (j + 1) & (m->nslots - 1)) {
			struct hashmap_entry *en =
				&VEC_AT(&m->entries, struct hashmap_entry, m->slots[j] - 1);
			if (en->hash == h && en->key_len == len &&
			    !memcmp((const uint8_t *)m->arena.data + en->key_off, key, len)) {
				*entry = en;
				return 1;
			}
		}
	}
	if (!add)
		return 0;
	if (m->entries.len >= UINT32_MAX - 1 || len >= UINT32_MAX)
		return -ENOMEM;
	if ((m->entries.len + 1) * 2 > m->nslots) {
		if (grow(m))
			return -ENOMEM;
		for (j = h & (m->nslots - 1); m->slots[j]; j = (j + 1) & (m->nslots - 1))
			;
	}
	if (vec_reserve(&m->arena, m->arena.len + len + 1))
		return -ENOMEM;
	struct hashmap_entry *en = vec_push(&m->entries);
	if (!en)
		return -ENOMEM;
	*en = (struct hashmap_entry){0, m->arena.len, (uint32_t)len, h};
	uint8_t *dst = (uint8_t *)m->arena.data + m->arena.len;
	if (len)
		memcpy(dst, key, len);
	dst[len] = 0;
	m->arena.len += len + 1;
	m->slots[j] = (uint32_t)m->entries.len;
	*entry = en;
	return 0;
}

int hashmap_find(struct hashmap *m, const void *key, size_t len, uint64_t *value, bool add)
{
	struct hashmap_entry *en;
	int r = probe(m, key, len, add, &en);
	if (r == 1)
		*value = en->value;
	else if (r == 0 && en)
		en->value = *value;
	return r;
}

int hashmap_slot(struct hashmap *m, const void *key, size_t len, uint64_t **value)
{
	struct hashmap_entry *en;
	int r = probe(m, key, len, true, &en);
	if (r >= 0)
		*value = &en->value;
	return r;
}
