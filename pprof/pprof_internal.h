/* Internal to the pprof code (profile.c, profile_symbolize.c). */
#ifndef SYMZ_PROFILE_INTERNAL_H
#define SYMZ_PROFILE_INTERNAL_H

#include "pprof/pprof.h"

/* Byte-keyed hash map to uint64 values (interning by content). */
struct kmap {
	uint32_t *slots; /* entry index + 1; 0 = empty */
	size_t nslots;
	struct vec ents; /* struct kent */
	struct vec keys; /* key bytes */
};
void kmap_init(struct kmap *m);
void kmap_free(struct kmap *m);
int kmap_find(struct kmap *m, const void *key, size_t len, uint64_t *value, bool add);

struct id_index {
	void *pairs;      /* sorted (id, index) */
	size_t built_for; /* record count it was built for; SIZE_MAX: failed */
	size_t dense;     /* records 0..dense-1 have id == index + 1 */
};

/* The string table and the lazily built content maps.  Each *_indexed
 * counts the records already entered into its map. */
struct pprof_private {
	struct vec str_off;   /* size_t offsets into str_bytes, one per string */
	struct vec str_bytes; /* strings, each followed by a NUL */
	struct kmap strings, funcs, maps, locs, samples;
	size_t strings_indexed, funcs_indexed, maps_indexed, locs_indexed, samples_indexed;
	struct id_index ids[3]; /* mappings, locations, functions */
};

/* Length of string idx (strings may hold NUL bytes on the wire). */
size_t pprof_str_len(const struct pprof_profile *p, int64_t idx);
/* Function by content; returns its id, 0 on ENOMEM. */
uint64_t pprof_intern_function(struct pprof_profile *p, const char *name, const char *system_name,
			       const char *filename, int64_t start_line);
/* Index in p->locations of location id, SIZE_MAX when none. */
size_t pprof_location_index(struct pprof_profile *p, uint64_t id);
/* Location lines were rewritten: content maps of locations/samples are stale. */
void pprof_forget_locations(struct pprof_profile *p);

#endif
