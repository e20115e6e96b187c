/* Small artifact bodies in memory (body_cache.h). */
#include "body_cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hashmap.h"

struct body_cache {
	pthread_mutex_t lock;
	struct body *slots[BODY_CACHE_SLOTS];
	uint64_t cap;
	uint64_t hits, misses, fills, bytes; /* under lock */
};

struct body_cache *body_cache_new(uint64_t cap)
{
	struct body_cache *bc = calloc(1, sizeof(*bc));
	if (bc) {
		pthread_mutex_init(&bc->lock, NULL);
		bc->cap = cap;
	}
	return bc;
}

void body_unref(struct body *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		free(b->key);
		free(b);
	}
}

void body_cache_free(struct body_cache *bc)
{
	if (!bc)
		return;
	for (int i = 0; i < BODY_CACHE_SLOTS; i++)
		body_unref(bc->slots[i]);
	pthread_mutex_destroy(&bc->lock);
	free(bc);
}

static unsigned slot_of(const char *key)
{
	uint64_t h = hash_fnv1a64(key, strlen(key));
	return (unsigned)((h ^ (h >> 32)) % BODY_CACHE_SLOTS);
}

struct body *body_cache_get(struct body_cache *bc, const char *key, uint64_t size)
{
	unsigned i = slot_of(key);
	pthread_mutex_lock(&bc->lock);
	struct body *b = bc->slots[i];
	if (b && b->size == size && strcmp(b->key, key) == 0) {
		atomic_fetch_add(&b->refs, 1);
		bc->hits++;
	} else {
		b = NULL;
		bc->misses++;
	}
	pthread_mutex_unlock(&bc->lock);
	return b;
}

struct body *body_cache_fill(struct body_cache *bc, const char *key, uint64_t size,
			     int64_t mtime, int fd)
{
	if (size > BODY_CACHE_MAX_OBJECT)
		return NULL;
	struct body *b = malloc(sizeof(*b) + (size ? size : 1));
	if (!b)
		return NULL;
	b->size = size;
	b->mtime = mtime;
	b->key = strdup(key);
	atomic_init(&b->refs, 2); /* the slot's and the caller's */
	size_t got = 0;
	while (b->key && got < size) {
		ssize_t n = pread(fd, b->data + got, size - got, (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (!b->key || got < size) {
		free(b->key);
		free(b);
		return NULL;
	}
	unsigned i = slot_of(key);
	pthread_mutex_lock(&bc->lock);
	struct body *old = bc->slots[i];
	uint64_t bytes = bc->bytes - (old ? old->size : 0) + size;
	if (bytes <= bc->cap) {
		bc->slots[i] = b;
		bc->bytes = bytes;
		bc->fills++;
	} else {
		old = NULL; /* kept as it is; b lives only as long as its response */
		atomic_store(&b->refs, 1);
	}
	pthread_mutex_unlock(&bc->lock);
	body_unref(old);
	return b;
}

void body_cache_stats(struct body_cache *bc, struct body_cache_stats *out)
{
	pthread_mutex_lock(&bc->lock);
	out->hits = bc->hits;
	out->misses = bc->misses;
	out->fills = bc->fills;
	out->bytes = bc->bytes;
	pthread_mutex_unlock(&bc->lock);
}
