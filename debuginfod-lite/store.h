/* The artifact store: candidate rows in the metadata database (metadb.h:
 * sqlite or PostgreSQL) over content-addressed blobs (blobs.h: a local
 * directory or an object store).  docs/data-directory.md has the layout.
 *
 * An artifact is identified by (build-ID, kind, name): name is "" for
 * debuginfo and executable, the absolute path for a source, the section name
 * for a section, and the format version for an unwind table.  Several
 * *candidates* may exist for one artifact (a scanned file, an upload, an
 * upstream copy); lookups return them best first (quality, then newest), so
 * a stripped upload never shadows real debuginfo.
 *
 * A candidate lives either in a blob (uploads, upstream copies, derived
 * tables) or in an external file found by --scan, which is re-checked
 * (size, mtime) each time it is opened.
 *
 * Crash safety: a blob is written to tmp/, fsync'ed and renamed into place
 * before the index row that names it is committed, so a row never refers to
 * a partial blob.  A crash leaves at most an unreferenced blob or a tmp file,
 * both removed by store_groom()/blobs_open().
 *
 * Thread safety: every function may be called from any thread (the
 * database keeps a pool of connections). */
#ifndef DEBUGINFOD_LITE_STORE_H
#define DEBUGINFOD_LITE_STORE_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/sha256.h"
#include "debuginfod-lite/blobs.h"
#include "debuginfod-lite/metadb.h"

enum artifact_kind {
	ART_DEBUGINFO,
	ART_EXECUTABLE,
	ART_SOURCE,
	ART_SECTION,
	ART_UNWIND,
	ART_SYMZ,     /* symbolization index (derived), name = format version */
	ART_KIND_COUNT,
};
const char *artifact_kind_name(enum artifact_kind k);

enum artifact_origin {
	ORIGIN_SCAN,     /* an external file found by --scan */
	ORIGIN_UPLOAD,   /* PUT by a client with a token */
	ORIGIN_UPSTREAM, /* fetched from an upstream server (expires) */
	ORIGIN_DERIVED,  /* computed here (unwind tables); can be rebuilt */
	ORIGIN_IMPORTED, /* a --scan'ned file copied into the blob store (shared store) */
};
const char *artifact_origin_name(enum artifact_origin o);

/* Quality of a debuginfo/executable candidate: higher wins. */
enum artifact_quality {
	QUALITY_NONE = 0,    /* nothing useful for this kind */
	QUALITY_SYMTAB = 1,  /* symbols only (.symtab), or a plain executable */
	QUALITY_DWARF = 2,   /* real .debug_info */
};

#define ARTIFACT_NAME_MAX 1024

struct artifact {
	char build_id[BUILD_ID_HEX_MAX];
	enum artifact_kind kind;
	char name[ARTIFACT_NAME_MAX];
	enum artifact_origin origin;
	int quality;
	char blob[SHA256_HEX_LEN + 1]; /* "" for external files */
	char path[PATH_MAX];           /* where to read it: the external file, or the
					* blob's local file once store_open_artifact ran */
	char file[PATH_MAX];           /* the name to report (X-DEBUGINFOD-FILE) */
	uint64_t size;
	int64_t mtime;                 /* seconds; for external files, what was indexed */
	int64_t expires;               /* 0 = never; else unix seconds */
};

/* A candidate's identity: everything else zero, for the caller to fill. */
void artifact_init(struct artifact *a, const char *build_id, enum artifact_kind kind,
		   const char *name, enum artifact_origin origin, int quality);

struct store;

/* Create or upgrade the schema; the store uses db and blobs, owned by the
 * caller. */
int store_open(struct store **out, struct db *db, struct blob_store *blobs, struct err *e);
void store_close(struct store *s);
struct blob_store *store_blobs(const struct store *s);
struct db *store_db(const struct store *s);

/* Up to max candidates for (build_id, kind, name), best first, skipping
 * expired ones.  Returns the count (0 = none) or -errno. */
int store_lookup(struct store *s, const char *build_id, enum artifact_kind kind,
		 const char *name, struct artifact *out, int max, struct err *e);
/* The lookup cache of a shared store (store.c): answers from it, and
 * lookups that went to the database. */
void store_cache_stats(struct store *s, uint64_t *hits, uint64_t *misses);
/* Open a candidate for reading.  For external files checks that size and
 * mtime still match the index; a vanished or changed file is dropped from
 * the index and -ENOENT returned.  On success *fd is open and *st filled. */
int store_open_artifact(struct store *s, struct artifact *a, int *fd, struct stat *st,
			struct err *e);

/* The candidates of (build_id, kind, name) that still open (as
 * store_open_artifact checks them), best first: fn is called on each until
 * it returns non-zero, which is returned; 0 when none took, -errno when the
 * lookup failed. */
typedef int (*store_candidate_cb)(void *ctx, const struct artifact *a);
int store_each_openable(struct store *s, const char *build_id, enum artifact_kind kind,
			const char *name, store_candidate_cb fn, void *ctx);

/* Record an external file (from --scan) as a candidate.  With a shared
 * store (store_shared) the file is imported into the blob store instead
 * (content-addressed: stored once however many replicas scan it), so that
 * every replica can serve what any lists. */
int store_add_external(struct store *s, const struct artifact *a, struct err *e);
/* Record another candidate for a blob already stored (a->blob set), e.g.
 * an unstripped executable that is also debuginfo. */
int store_add_blob_candidate(struct store *s, const struct artifact *a, struct err *e);
/* Forget every candidate that refers to external file `path`. */
int store_forget_external(struct store *s, const char *path, struct err *e);

/* Scan bookkeeping: has `path` with this size/mtime been indexed already? */
bool store_scanned_same(struct store *s, const char *path, uint64_t size, int64_t mtime);
int store_scanned_set(struct store *s, const char *path, uint64_t size, int64_t mtime,
		      struct err *e);

/* Writing a blob (blobs.h): begin, write (hashes as it goes), then commit
 * or abort (blob_tmp_write, blob_tmp_abort). */
int store_tmp_begin(struct store *s, struct blob_tmp *t, struct err *e);
/* Store the blob (deduplicated by content), then insert the index row
 * described by *a (its blob and size are filled in here).  The tmp is
 * consumed whatever the outcome. */
int store_tmp_commit(struct store *s, struct blob_tmp *t, struct artifact *a, struct err *e);
/* Convenience: a whole blob from memory. */
int store_put_mem(struct store *s, const void *data, size_t size, struct artifact *a,
		  struct err *e);

/* Called (on the inserting thread, after the commit) for every new
 * debuginfo or executable candidate: upload, scan, upstream copy.  Must be
 * quick and must not call back into the store. */
typedef void (*store_candidate_fn)(void *ctx, const char *build_id, enum artifact_kind kind,
				   int quality);
void store_set_candidate_hook(struct store *s, store_candidate_fn fn, void *ctx);
/* Forget every candidate of (build_id, kind): stale derived artifacts. */
int store_forget_kind(struct store *s, const char *build_id, enum artifact_kind kind,
		      struct err *e);

/* Negative cache of upstream misses. */
bool store_miss_cached(struct store *s, const char *build_id, enum artifact_kind kind,
		       const char *name);
int store_miss_put(struct store *s, const char *build_id, enum artifact_kind kind,
		   const char *name, int64_t expires, struct err *e);

/* /metadata: every debuginfo/executable candidate whose reported file name
 * equals `value` (glob false) or matches the sqlite GLOB `value` (a
 * pre-filter; the caller applies fnmatch).  fn returns 0 to go on, anything
 * else stops the walk and is returned. */
typedef int (*store_meta_fn)(void *ctx, const char *build_id, enum artifact_kind kind,
			     const char *file);
int store_metadata(struct store *s, bool glob, const char *value, store_meta_fn fn, void *ctx,
		   struct err *e);

struct store_stats {
	uint64_t candidates, blobs_bytes, external;
};
int store_stats(struct store *s, struct store_stats *st, struct err *e);

/* Cluster-wide single-flight, through the database.  store_shared: other
 * replicas may use this database (PostgreSQL).  store_claim: 1 when this
 * process now holds `key` for ttl_s seconds (free, or its claim expired:
 * a replica that died), 0 when another holds it, -errno.  store_renew_claim
 * extends this process's claim to ttl_s seconds from now: 1, or 0 when it
 * is no longer this process's.  store_unclaim gives it back. */
bool store_shared(const struct store *s);
int store_claim(struct store *s, const char *key, unsigned ttl_s, struct err *e);
int store_renew_claim(struct store *s, const char *key, unsigned ttl_s, struct err *e);
void store_unclaim(struct store *s, const char *key);

/* Drop expired candidates and misses, unreferenced blobs, and (when
 * quota_bytes > 0) the least recently used upstream/derived blobs (last use:
 * blob_last_use, recorded by store_open_artifact) until the blob total fits
 * the quota.  Uploads and scanned files are never evicted by quota. */
int store_groom(struct store *s, uint64_t quota_bytes, struct err *e);

#endif
