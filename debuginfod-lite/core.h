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

#include <stdbool.h>
#include <stdint.h>

#include "debuginfod-lite/store.h"

struct server; /* the core's state: store, caches, caps, counters */

struct core_ctx {
	struct server *srv;
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
void core_ctx_background(struct core_ctx *c, struct server *srv, const char *who);

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
void symz_release(struct server *s, struct symz_handle *h);

#endif
