/* The debuginfo core: artifact lookup and quality ranking (store.h),
 * upstream federation (upstream.c), and the derived artifacts — sections,
 * sources, unwind tables (core.c) and symbolization indexes (symbolize.c).
 *
 * The core serves whoever asks — an HTTP request, the profile worker — and
 * knows of them only this small context: until when, how many forwarding
 * hops so far, whether upstreams may be asked, who to forward as, the
 * memory the work holds, and how to tell that nobody waits any more.
 *
 * Results: 1 the artifact is in the store now, 0 a definite miss, -EAGAIN
 * transient trouble (an upstream, the storage, a cap), other -errno. */
#ifndef DEBUGINFOD_LITE_CORE_H
#define DEBUGINFOD_LITE_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "debuginfod-lite/budget.h"
#include "debuginfod-lite/ratelimit.h"
#include "debuginfod-lite/config.h"
#include "debuginfod-lite/sources.h"
#include "debuginfod-lite/store.h"

/* Single-flight: concurrent identical slow operations (upstream fetch,
 * unwind compile, index build) share one execution. */
struct flight {
	char key[BUILD_ID_HEX_MAX + ARTIFACT_NAME_MAX + 32];
	int waiters;
	bool done;
	int result;
	struct flight *next;
};

/* The core's own state.  core_open creates it over the storage the
 * configuration names; the HTTP layer and the profile store each hold a
 * pointer to it. */
struct core {
	struct server_config cfg; /* its own copy (memory_budget filled in) */
	/* The storage: the artifact index's database, the blobs, and the
	 * store over them.  profiles_db is opened here for the profile store
	 * (with sqlite a second file, with PostgreSQL the same database). */
	struct db *db, *profiles_db;
	struct blob_store *blobs;
	struct store *store;
	/* Which local files may be served as sources (sources.h): the
	 * --source-root dirs, minus the server's own files. */
	struct source_policy sources;
	struct dwarf_names_cache *source_names; /* which sources a DWARF names */
	pthread_mutex_t lock; /* guards flights, stopping */
	pthread_cond_t cond;  /* a flight finished, stopping */
	bool stopping;
	struct flight *flights;
	/* Upstream fetches: the amplification caps (upstream.c). */
	struct upstream_limiter upstream_limit;
	/* The LRU of open symbolization indexes (symbolize.c). */
	struct symz_cache *symz_cache;
	/* Memory all work holds (requests, the profile worker). */
	struct mem_budget budget;
	atomic_uint_fast64_t upstream_fetches, upstream_hits, upstream_misses, upstream_errors,
		upstream_rejected, flights_joined, unwind_compiles,
		flights_joined_cluster; /* polls of work another replica claimed */
	atomic_uint_fast64_t upstream_refused_global, upstream_refused_client, upstream_delayed;
	atomic_uint_fast64_t symz_builds, symz_build_failures, symz_loads, symz_cache_hits,
		symz_failures_cached;
	atomic_uint_fast64_t work_abandoned; /* nobody waited any more */
};

/* Open the storage cfg names and set up the core's caches and caps. */
int core_open(struct core **out, const struct server_config *cfg, struct err *e);
/* No new waits: upstream token waits give up (before the threads using
 * the core are joined). */
void core_stop(struct core *core);
/* Once nothing uses it. */
void core_close(struct core *core);

struct core_ctx {
	struct core *core;
	uint64_t deadline_ns;       /* slow work gives up after this; 0: none */
	unsigned hops;              /* X-Forwarded-For entries so far (loop protection) */
	bool may_ask_upstream;      /* false: the store and local derivation only */
	bool per_client_cap;        /* upstream fetches count against peer's own cap */
	char forwarded_for[1024];   /* what the caller's X-Forwarded-For said */
	char user_agent[256];
	char peer[64];              /* the caller's address, appended when forwarding */
	uint64_t reserved;          /* memory budget bytes held (released by the owner) */
	int fd;                     /* the client's socket, -1 for background work */
};

/* Background work (the profile worker): federates as the server itself. */
void core_ctx_background(struct core_ctx *c, struct core *core, const char *who);

/* ENOSPC, EIO, a full budget…: trouble that passes.  Never a 404. */
bool transient_error(int rc);

/* Memory budget: 0, -EBUSY (not now) or -EFBIG (never). */
int core_reserve(struct core_ctx *c, uint64_t bytes);
void core_unreserve(struct core_ctx *c, uint64_t bytes);
/* Nobody waits for this work any more: the client closed its connection
 * or the deadline passed (counted in work_abandoned). */
bool core_abandoned(struct core_ctx *c);

/* May (build_id, kind, name) be asked upstream?  Upstreams configured,
 * allowed by the caller, under the hop limit, not a cached miss. */
bool core_may_federate(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		       const char *name);
/* Put (build_id, kind, name) in the store: derive it (sections, sources,
 * unwind tables) or fetch it upstream.  Single-flight per artifact. */
int core_obtain(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		const char *name);

/* Run work once in the cluster: when the store is shared, `key` is
 * claimed in the database; a replica that finds it claimed waits until
 * done() says the result is in the store (then 1), or the claim is free
 * again (it takes it over: the holder failed or died).  -EAGAIN when the
 * database is away or the wait ends. */
int core_cluster_once(struct core_ctx *c, const char *key, int (*work)(void *arg),
		      bool (*done)(void *arg), void *arg);

/* Federation (upstream.c). */
int upstream_fetch(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		   const char *name, struct err *e);
/* Take a token from the amplification caps (waiting up to --upstream-wait):
 * 0, or -EAGAIN (counted, e says which cap) when none came. */
int upstream_take_token(struct core_ctx *c, struct err *e);
/* GET BASE/metadata?key=&value= with the forwarding headers and timeouts
 * of upstream_fetch (the caller takes the token).  0 with the body in
 * *body (malloc'ed, at most UPSTREAM_METADATA_MAX bytes), or -errno. */
#define UPSTREAM_METADATA_MAX (8u << 20)
int upstream_metadata(struct core_ctx *c, const char *base, const char *key, const char *value,
		      char **body, size_t *len, struct err *e);

/* Symbolization indexes (symbolize.c): hold build_id's index (built,
 * stored, fetched upstream as needed; one build at a time per build-ID).
 * 1 held, 0 no debuginfo, -EAGAIN upstream trouble, other -errno. */
struct symz_handle {
	struct symz_index *idx;
	int slot; /* -1: not cached (every slot busy), freed on release */
};
int symz_acquire(struct core_ctx *c, const char *build_id, struct symz_handle *h);
void symz_release(struct core *core, struct symz_handle *h);

/* Single-flight: returns true when the caller leads (must call
 * flight_finish); false when it waited for a leader, *result = its result. */
bool flight_begin(struct core *core, const char *key, struct flight **f, int *result);
void flight_finish(struct core *core, struct flight *f, int result);

/* The LRU of open symbolization indexes (symbolize.c). */
struct symz_cache *symz_cache_new(unsigned capacity);
void symz_cache_free(struct symz_cache *c);
/* Forget build_id's open index (its stored index went stale); users
 * holding it keep it until they release it. */
void symz_cache_drop(struct symz_cache *c, const char *build_id);
/* Drop the stored index of build_id if it was built from worse debuginfo
 * than `quality`; true when it did (profiles named with it are stale too). */
bool symz_check_stale(struct core *core, const char *build_id, int quality);
/* New debuginfo or executable for build_id (the store's hook; quick): a
 * remembered index build failure is dropped, and the arrival is numbered,
 * so that work which read the store before it can tell. */
void symz_debuginfo_arrived(struct symz_cache *c, const char *build_id);
/* The number of the latest arrival; later, whether build_id arrived since
 * (rarely true for another build-ID as well: a spare rebuild, never a miss). */
uint64_t symz_arrival_mark(struct symz_cache *c);
bool symz_arrived_since(struct symz_cache *c, const char *build_id, uint64_t mark);

#endif
