/* One hash map for the code base: open addressing (linear probing) from
 * byte-string keys to uint64 values.
 *
 * Keys are copied into one arena in insertion order, each followed by a NUL
 * byte, so a map of strings doubles as their string table: a key's offset in
 * the arena (hashmap_arena) never changes.  Entries are never removed.
 * Not thread-safe; no global state. */
#ifndef COMMON_HASHMAP_H
#define COMMON_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct hashmap_entry {
	uint64_t value;
	size_t key_off;   /* into the arena */
	uint32_t key_len; /* without the NUL */
	uint32_t hash;    /* low bits of the key's hash: cheap compare, rehash */
};

struct hashmap {
	uint32_t *slots;   /* entry index + 1; 0 = empty; load <= 1/2 */
	size_t nslots;     /* a power of two, or 0 */
	struct vec entries; /* struct hashmap_entry, insertion order */
	struct vec arena;   /* key bytes, each key followed by a NUL */
};

/* FNV-1a, 64 bits (the published offset basis and prime).  The seeded form
 * starts from the basis XOR seed, for tables whose slots a client must not
 * choose (a secret, random seed). */
uint64_t hash_fnv1a64_seeded(uint64_t seed, const void *data, size_t len);
static inline uint64_t hash_fnv1a64(const void *data, size_t len)
{
	return hash_fnv1a64_seeded(0, data, len);
}

void hashmap_init(struct hashmap *m);
void hashmap_free(struct hashmap *m); /* leaves m empty and usable */

/* Look key up.  Returns 1 when found (*value set); when absent, 0 after
 * inserting it with *value if `add`, else 0 with nothing changed; -ENOMEM
 * (also when the map would pass UINT32_MAX entries or keys that long). */
int hashmap_find(struct hashmap *m, const void *key, size_t len, uint64_t *value, bool add);

/* Look key up, inserting it (value 0) when absent: *value then points at
 * its value, valid until the next insertion, for the caller to read or set.
 * One probe where find-then-insert takes two.  1 found, 0 inserted, -ENOMEM. */
int hashmap_slot(struct hashmap *m, const void *key, size_t len, uint64_t **value);

/* Where the next inserted key will start in the arena. */
static inline size_t hashmap_next_offset(const struct hashmap *m)
{
	return m->arena.len;
}
/* The key arena (keys in insertion order, each NUL-terminated). */
static inline const char *hashmap_arena(const struct hashmap *m, size_t *size)
{
	*size = m->arena.len;
	return m->arena.data;
}
static inline size_t hashmap_count(const struct hashmap *m)
{
	return m->entries.len;
}
/* Heap bytes the map holds (for memory budgets). */
size_t hashmap_memory(const struct hashmap *m);

#endif
