/* The profile store (docs/architecture.md "Layers", docs/http-api.md
 * "Profiles", docs/data-directory.md): a unit of its own over the storage
 * interfaces and the debuginfo core —
 *   ingest (profiles_ingest.c): a posted pprof checked and kept as received;
 *   query and merge (profiles_merge.c);
 *   the worker and retention (profiles.c): new profiles symbolized in
 *   batches, re-symbolized when missing debuginfo (or a perf map) arrives,
 *   retention and the quota enforced.
 * Its rows are in the metadata database (blobs in the "profiles" area), its
 * state and counters in struct profile_store.  The HTTP layer (profiles_http.c)
 * only parses, routes and answers; it hands the core context of the
 * request (core.h) down, as the worker hands its own.
 *
 * A profile's raw blob is kept as received; its symbolized copy is a second
 * blob, replaced whenever the profile is symbolized again. */
#ifndef DEBUGINFOD_LITE_PROFILES_H
#define DEBUGINFOD_LITE_PROFILES_H

#include <stdatomic.h>

#include "debuginfod-lite/core.h"

/* Create or upgrade the profile store's tables in db. */
int profiles_schema(struct db *db, struct err *e);
struct profile_store; /* its worker, queue, claims and counters (profiles.c) */
/* Open the profile store on core->profiles_db and start the worker. */
int profiles_start(struct profile_store **out, struct core *core, struct err *e);
/* Stop the worker (it finishes the profile in hand) and close. */
void profiles_stop(struct profile_store *ps);

struct profile_counters {
	atomic_uint_fast64_t stored, duplicate, rejected, symbolized, deleted, perf_maps_stored;
};
struct profile_counters *profiles_counters(struct profile_store *ps);
/* The core it sits on, and the configuration (the core's copy). */
struct core *profiles_core(struct profile_store *ps);
const struct server_config *profiles_config(struct profile_store *ps);

/* ---- between profiles.c and profiles_http.c ---- */

#include "pprof/pprof.h"
#include "symbolizer/symbolizer.h"

#define PROFILE_MAX_LABELS 32
#define PERF_MAP_PREFIX SYMZ_PERF_MAP_PREFIX

struct profile_row {
	int64_t id;
	char raw[SHA256_HEX_LEN + 1], sym[SHA256_HEX_LEN + 1]; /* sym "" = none yet */
	uint64_t raw_size, sym_size, samples;
	int64_t received, t_start, t_end; /* unix ns */
	int state;                        /* enum profile_state */
};

enum profile_state {
	PROFILE_NEW = 0,       /* waiting for the worker */
	PROFILE_DONE = 1,      /* symbolized, nothing missing */
	PROFILE_PARTIAL = 2,   /* symbolized; some debuginfo/perf maps missing */
	PROFILE_REDO = 3,      /* something it missed arrived: symbolize again */
};

struct profile_meta {
	int64_t t_start, t_end, received;
	uint64_t samples;
	char sample_types[256];
	int n_labels;
	char label_key[PROFILE_MAX_LABELS][128], label_value[PROFILE_MAX_LABELS][512];
	struct vec refs; /* char[BUILD_ID_HEX_MAX + 16]: build-IDs and "perf-map:<sha>" */
};

struct profile_query {
	bool has_from, has_to;
	int64_t from_ns, to_ns;
	int64_t id; /* 0: any */
	int n_labels;
	char label_key[16][128], label_value[16][512];
};

int profile_meta_add_label(struct profile_meta *m, const char *k, size_t klen, const char *v,
			   size_t vlen);

/* POST /profiles: what ingesting a body answers. */
struct profile_post {
	int status;       /* 201 stored, 200 duplicate, 4xx/5xx, or -EBUSY/-EFBIG: a refusal */
	char msg[600];    /* why, for a refusal */
	char *json;       /* 201/200 body */
	struct profile_meta meta; /* labels from headers on entry */
};
int profiles_ingest(struct profile_store *ps, struct core_ctx *ctx, const void *body, size_t len,
		    struct profile_post *j);

/* GET /profiles: the matching profiles merged (and symbolized). */
struct profile_merge {
	struct profile_query q;
	bool symbolize;
	int status;       /* 200, 404, 503, or -EBUSY/-EFBIG: a refusal */
	char msg[600];
	uint8_t *out;     /* gzipped pprof */
	size_t out_size;
	size_t merged, skipped;
	uint64_t held;    /* budget bytes the merge holds (the answer's, at the end) */
};
/* 0 (j->status says), or -ECANCELED when nobody waits any more. */
int profiles_merge(struct profile_store *ps, struct core_ctx *ctx, struct profile_merge *j);

/* Rows matching q, oldest first (*rows malloc'ed). */
int profiles_query(struct profile_store *ps, const struct profile_query *q, struct profile_row **rows,
		   size_t *n, struct err *e);
/* Store a validated profile: 1 stored (*id new), 0 the same bytes were
 * already stored (*id theirs), -errno. */
int profiles_insert(struct profile_store *ps, const void *body, size_t size,
		    const struct profile_meta *m, int64_t *id, struct err *e);
/* The labels and referenced objects of a profile as JSON members of obj. */
int profiles_describe(struct profile_store *ps, int64_t id, void *json_obj, struct err *e);
int perf_map_insert(struct profile_store *ps, const void *text, size_t size, char *sha, bool *was_new,
		    struct err *e);
/* in as lowercase hex into out when it is hex of min..max digits (even). */
bool profile_lower_hex(const char *in, char *out, size_t size, size_t min, size_t max);
bool perf_map_known(struct profile_store *ps, const char *sha);
/* Memory estimates, per byte of a profile's decompressed protobuf
 * (measured with pprof_memory on 200k random stacks: 4.4 parsed, 8.6 for
 * an accumulator it was merged into, content maps included):
 * a parsed profile, and what merging it adds to the accumulator. */
#define PROFILE_PARSE_FACTOR 6
#define PROFILE_MERGE_FACTOR 10
/* A stored blob's size and its decompressed size (the gzip trailer of a
 * blob we validated, or its size when it is not gzip). */
int profile_blob_sizes(struct profile_store *ps, const char *hash, uint64_t *size, uint64_t *plain,
		       struct err *e);
/* Read a blob of the profile area into memory (*data malloc'ed). */
int profile_blob_read(struct profile_store *ps, const char *hash, uint8_t **data, size_t *size,
		      struct err *e);
void profiles_wake(struct profile_store *ps);

/* Symbolizing: build-ID indexes and perf maps looked up once per
 * resolver, however many profiles use them. */
struct profile_resolver;
struct profile_resolver *profile_resolver_new(struct profile_store *ps, struct core_ctx *ctx);
void profile_resolver_free(struct profile_resolver *res);
/* The context whose budget and federation headers the resolver uses. */
struct core_ctx *res_ctx(struct profile_resolver *res);
/* Symbolize p in place (JIT frames from stored perf maps, the rest from
 * build-ID indexes).  missing (may be NULL) receives the refs that could not
 * be resolved (char[BUILD_ID_HEX_MAX + 16]). */
int profile_symbolize(struct profile_resolver *res, struct pprof_profile *p, struct vec *missing,
		      struct err *e);

#endif
