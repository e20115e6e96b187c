/* pprof profiles (profile.proto, package perftools.profiles): the model,
 * the wire codec (parse, serialize, gzip), validation and merge.  Naming
 * frames is the symbolizer's (symz_pprof_symbolize in symbolizer.h); this
 * component knows nothing of debuginfo, so the agent can write profiles
 * without linking the symbolizer.
 *
 * The codec is ours (no generated code): the wire format is small, and
 * owning it lets every read be bounds-checked and every count be limited by
 * the bytes that carry it.  A parsed profile is validated completely (string
 * indexes, ids, references, value counts) before anyone sees it.
 *
 * Users: `symbolize pprof`, the server's profile store and the agent, which
 * writes unsymbolized profiles (docs/architecture.md, "Profiles"):
 *   - every Mapping carries build_id (lowercase hex, a string) and, for
 *     normalized addresses, memory_start = file_offset = 0 and memory_limit =
 *     UINT64_MAX (pprof's convention for "addresses already adjusted");
 *   - Location.address is a *file address* of that object (docs/architecture.md, "Addresses");
 *   - frame kind follows the sample position: location_id[0] of a sample is
 *     the leaf PC, every other one a return address.  The writer never shares
 *     a Location between the two kinds (a leaf and a return address at the
 *     same address are two Locations), so the kind of each Location is
 *     recoverable: see pprof_location_kinds().
 *
 * Memory: a profile owns everything it points to; references between
 * records are ids (as on the wire) or offsets into the profile's flat
 * arrays, so adding records never invalidates them.  Not thread-safe:
 * one profile, one thread at a time. */
#ifndef PPROF_PPROF_H
#define PPROF_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* How an address is looked up (docs/architecture.md, "Addresses"); the
 * values are the symbolizer's enum symz_frame_kind. */
enum pprof_frame_kind {
	PPROF_LEAF_PC = 0,        /* as is */
	PPROF_RETURN_ADDRESS = 1, /* at address - 1 */
};

/* Decompressed profiles larger than this are refused (gzip bombs);
 * pprof_parse_limited takes a smaller cap. */
#define PPROF_MAX_SIZE (256u << 20)

struct pprof_value_type {
	int64_t type, unit; /* string indexes */
};

struct pprof_label {
	int64_t key, str, num, num_unit;
};

/* Ranges into the profile's flat arrays (sample_loc_ids, sample_values,
 * labels). */
struct pprof_sample {
	size_t loc_off, loc_count;
	size_t value_off, value_count;
	size_t label_off, label_count;
};

struct pprof_mapping {
	uint64_t id, memory_start, memory_limit, file_offset;
	int64_t filename, build_id; /* string indexes */
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct pprof_line {
	uint64_t function_id;
	int64_t line, column;
};

struct pprof_location {
	uint64_t id, mapping_id, address;
	size_t line_off, line_count; /* into lines; line[0] innermost */
	bool is_folded;
};

struct pprof_function {
	uint64_t id;
	int64_t name, system_name, filename, start_line;
};

struct pprof_profile {
	struct vec sample_types;   /* struct pprof_value_type */
	struct vec samples;        /* struct pprof_sample */
	struct vec mappings;       /* struct pprof_mapping */
	struct vec locations;      /* struct pprof_location */
	struct vec functions;      /* struct pprof_function */
	struct vec sample_loc_ids; /* uint64_t */
	struct vec sample_values;  /* int64_t */
	struct vec labels;         /* struct pprof_label */
	struct vec lines;          /* struct pprof_line */
	struct vec comments;       /* int64_t string indexes */
	struct pprof_value_type period_type;
	int64_t drop_frames, keep_frames, time_nanos, duration_nanos, period;
	int64_t default_sample_type, doc_url;
	struct pprof_private *priv; /* strings and lookup tables */
};

/* ---- reading ---- */
/* Parse a gzipped or plain profile.proto.  Errors name the message, field
 * and byte offset. */
int pprof_parse(const void *data, size_t size, struct pprof_profile **out, struct err *e);
/* The same, refusing (-EFBIG) a profile whose decompressed (or plain)
 * size is over max_plain (0 = PPROF_MAX_SIZE, which also caps it). */
int pprof_parse_limited(const void *data, size_t size, size_t max_plain,
			struct pprof_profile **out, struct err *e);
/* Bytes of heap p holds (its arrays, strings and lookup tables), to
 * check a merge against a memory budget. */
size_t pprof_memory(const struct pprof_profile *p);
int pprof_read_file(const char *path, struct pprof_profile **out, struct err *e);
void pprof_free(struct pprof_profile *p);

/* String table: pprof_str(p, 0) is "".  Out-of-range indexes give "". */
const char *pprof_str(const struct pprof_profile *p, int64_t idx);
size_t pprof_string_count(const struct pprof_profile *p);
/* Index of s, added when new. -ENOMEM on failure. */
int64_t pprof_intern(struct pprof_profile *p, const char *s);
/* Index of s appended as a new string, without looking for an equal one
 * (a comment: a perf map or kallsyms snapshot of megabytes, which hashing
 * for nothing would cost milliseconds).  A later pprof_intern indexes it
 * then.  -ENOMEM on failure. */
int64_t pprof_append_string(struct pprof_profile *p, const char *s);

/* Records by id (NULL: none).  Pointers are valid until the next addition. */
struct pprof_mapping *pprof_mapping_by_id(struct pprof_profile *p, uint64_t id);
struct pprof_location *pprof_location_by_id(struct pprof_profile *p, uint64_t id);
struct pprof_function *pprof_function_by_id(struct pprof_profile *p, uint64_t id);

/* ---- writing ---- */
/* An empty profile with the given sample types ("cpu","nanoseconds"), ... */
struct pprof_profile *pprof_new(const char *const *types, const char *const *units, size_t n);

/* The mapping for (build_id hex, filename), created with the normalized-address
 * convention above.  Returns its id, 0 on ENOMEM. */
uint64_t pprof_add_mapping(struct pprof_profile *p, const char *build_id, const char *filename);

/* One frame of a sample as the agent sees it. */
struct pprof_frame {
	uint64_t mapping_id; /* from pprof_add_mapping; 0 = none */
	uint64_t address;    /* file address (or runtime address without mapping) */
};
/* Add a sample: frames[0] is the leaf PC, the others return addresses.
 * Identical locations are shared; values are copied (count = sample types).
 * Labels are (key, value) string pairs, may be NULL. */
int pprof_add_sample(struct pprof_profile *p, const struct pprof_frame *frames, size_t nframes,
		     const int64_t *values, const char *const (*labels)[2], size_t nlabels,
		     struct err *e);

/* Add every sample of src to dst (same sample types required): mappings,
 * functions and locations are mapped by content, samples with the same
 * stack and labels are summed. */
int pprof_merge(struct pprof_profile *dst, const struct pprof_profile *src, struct err *e);

/* Serialize (gzip true: what goes on disk).  *out is malloc'ed. */
int pprof_serialize(const struct pprof_profile *p, bool gzip, uint8_t **out, size_t *size,
		    struct err *e);
/* Atomic write: temporary file, fsync, rename. */
int pprof_write_file(const struct pprof_profile *p, const char *path, bool gzip, struct err *e);

/* ---- rewriting locations ---- */
/* Frame kind of each location (indexed like p->locations), by the position
 * rule above: used only as location_id[0] -> leaf PC; used anywhere else ->
 * return address.  A third-party Location used in both positions is looked
 * up as a leaf (an address at a function's start looked up at -1 would name
 * the wrong function; a return address looked up as is only risks the next
 * line).  *out is malloc'ed (uint8_t enum pprof_frame_kind). */
int pprof_location_kinds(const struct pprof_profile *p, uint8_t **out, struct err *e);

/* The function with this content, added when new; returns its id, 0 on
 * ENOMEM.  NULL strings are "". */
uint64_t pprof_intern_function(struct pprof_profile *p, const char *name, const char *system_name,
			       const char *filename, int64_t start_line);

/* Replace location li's (an index into p->locations) lines with n lines
 * (line[0] innermost).  0, -EINVAL (no such location) or -ENOMEM.  Call
 * pprof_locations_changed once done. */
int pprof_set_lines(struct pprof_profile *p, size_t li, const struct pprof_line *lines, size_t n);

/* Locations' lines were rewritten: forget the content maps that key on them
 * (they are rebuilt on the next addition or merge). */
void pprof_locations_changed(struct pprof_profile *p);

#endif
