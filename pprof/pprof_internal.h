/* Between the files of pprof/ (profile.c: the model, building, merging;
 * codec.c: the wire format, validation, gzip).  Nothing outside pprof/
 * includes this. */
#ifndef PPROF_INTERNAL_H
#define PPROF_INTERNAL_H

#include "common/hashmap.h"
#include "pprof/pprof.h"

struct id_index {
	void *pairs;      /* sorted (id, index) */
	size_t built_for; /* record count it was built for; SIZE_MAX: failed */
	size_t dense;     /* records 0..dense-1 have id == index + 1 */
};

enum pprof_record { PPROF_MAPPINGS, PPROF_LOCATIONS, PPROF_FUNCTIONS };

/* The string table and the lazily built content maps.  Each *_indexed
 * counts the records already entered into its map. */
struct pprof_private {
	struct vec str_off;   /* size_t offsets into str_bytes, one per string */
	struct vec str_bytes; /* strings, each followed by a NUL */
	struct hashmap strings, funcs, maps, locs, samples;
	size_t strings_indexed, funcs_indexed, maps_indexed, locs_indexed, samples_indexed;
	struct id_index ids[3]; /* by enum pprof_record */
};

struct pprof_profile *pprof_alloc(void);
/* Append a string to the table as is (no interning; NUL bytes allowed). */
int pprof_str_append(struct pprof_profile *p, const char *s, size_t len);
/* Length of string idx (strings may hold NUL bytes on the wire). */
size_t pprof_str_len(const struct pprof_profile *p, int64_t idx);
/* Index of the record with this id, SIZE_MAX when none (or when the
 * lookup table could not be allocated: ids[kind].built_for == SIZE_MAX). */
size_t pprof_find_id(struct pprof_profile *p, enum pprof_record kind, uint64_t id);
uint64_t pprof_id_of(const struct pprof_profile *p, enum pprof_record kind, size_t i);
const struct vec *pprof_records(const struct pprof_profile *p, enum pprof_record kind);
int pprof_oom(struct err *e);

#endif
