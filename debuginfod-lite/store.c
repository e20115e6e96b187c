/* The artifact store: candidate rows in the metadata database (metadb.h),
 * content in the blob store (blobs.h).  See store.h. */
#include "debuginfod-lite/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The PostgreSQL channel on which changes of candidates are announced. */
#define STORE_CHANNEL "dil_candidates"

/* Schema steps (metadb.h db_migrate): step i brings the "artifacts"
 * schema to version i + 1.  The sqlite steps keep the tables an older
 * single-node data directory already has (CREATE … IF NOT EXISTS). */
static const char *const schema_sqlite[] = {
	"CREATE TABLE IF NOT EXISTS candidates("
	"  build_id TEXT NOT NULL, kind INTEGER NOT NULL, name TEXT NOT NULL,"
	"  loc TEXT NOT NULL,"         /* blob hash, or the external file's path (origin 0) */
	"  origin INTEGER NOT NULL, quality INTEGER NOT NULL, file TEXT NOT NULL,"
	"  size INTEGER NOT NULL, mtime INTEGER NOT NULL, expires INTEGER NOT NULL,"
	"  PRIMARY KEY(build_id, kind, name, loc)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS candidates_loc ON candidates(loc);"
	"CREATE TABLE IF NOT EXISTS scanned(path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER)"
	"  WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS misses(build_id TEXT, kind INTEGER, name TEXT,"
	"  expires INTEGER, PRIMARY KEY(build_id, kind, name)) WITHOUT ROWID;",
	/* 2: cluster-wide single-flight (store_claim). */
	"CREATE TABLE IF NOT EXISTS claims(key TEXT PRIMARY KEY, owner TEXT NOT NULL,"
	"  expires INTEGER NOT NULL) WITHOUT ROWID;",
};

static const char *const schema_postgres[] = {
	"CREATE TABLE IF NOT EXISTS candidates("
	"  build_id TEXT NOT NULL, kind INTEGER NOT NULL, name TEXT NOT NULL,"
	"  loc TEXT NOT NULL, origin INTEGER NOT NULL, quality INTEGER NOT NULL,"
	"  file TEXT NOT NULL, size BIGINT NOT NULL, mtime BIGINT NOT NULL,"
	"  expires BIGINT NOT NULL, PRIMARY KEY(build_id, kind, name, loc));"
	"CREATE INDEX IF NOT EXISTS candidates_loc ON candidates(loc);"
	"CREATE TABLE IF NOT EXISTS scanned(path TEXT PRIMARY KEY, size BIGINT, mtime BIGINT);"
	"CREATE TABLE IF NOT EXISTS misses(build_id TEXT, kind INTEGER, name TEXT,"
	"  expires BIGINT, PRIMARY KEY(build_id, kind, name));",
	"CREATE TABLE IF NOT EXISTS claims(key TEXT PRIMARY KEY, owner TEXT NOT NULL,"
	"  expires BIGINT NOT NULL);",
	/* 3: every change of candidates tells the replicas' lookup caches,
	 * from inside the writing transaction: delivered at its commit. */
	"CREATE OR REPLACE FUNCTION candidates_notify() RETURNS trigger LANGUAGE plpgsql AS"
	"  $$BEGIN PERFORM pg_notify('" STORE_CHANNEL "', ''); RETURN NULL; END$$;"
	"CREATE TRIGGER candidates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
	"  ON candidates FOR EACH STATEMENT EXECUTE FUNCTION candidates_notify();",
};

/* Unreferenced blobs younger than this are left alone by store_groom(). */
#define BLOB_GRACE_S 3600

/* The lookup cache: store_lookup answers, the negative ones too, kept per
 * process so that a warm GET or 404 costs no database round trip.  With
 * sqlite, one process writes, and its own writes void the cache
 * (candidates_changed); the single node's warm 35 KB GET went from 34k to
 * 47k req/s with it (wrk -t2 -c16, 2 cores).  A cluster's replicas
 * (tests/bench/bench_cluster.sh, two replicas behind
 * nginx: the warm 35 KB GET went from 6.1k to 13.7k req/s, the 404 from
 * 8.5k to 24.5k; the single node beside them: 21.8k and 21.3k, 43.4k and
 * 35.4k).  Correct across replicas: every change of candidates anywhere sends a notice at its
 * commit (schema step 3), and each lookup first reads the notices that
 * arrived (db_changed, non-blocking) and drops the whole cache on one; a
 * lookup that races a notice stores its answer under the generation it
 * started with, so the notice voids it.  Without a working listener
 * nothing is cached.  LOOKUP_TTL_NS is the safety net for a notice lost in
 * a way the socket does not show. */
#define LOOKUP_SLOTS 1024
#define LOOKUP_TTL_NS 2000000000ull

struct lookup_row {
	int origin, quality;
	uint64_t size;
	int64_t mtime, expires;
	char *loc, *file;
};

struct lookup_entry {
	uint64_t gen, until_ns;
	int64_t expires;       /* the earliest of its candidates' (0: none) */
	enum artifact_kind kind;
	int max, n;
	char build_id[BUILD_ID_HEX_MAX];
	char *name;
	struct lookup_row *rows;
};

struct lookup_cache {
	pthread_mutex_t lock;
	uint64_t gen;
	struct lookup_entry slots[LOOKUP_SLOTS];
};

struct store {
	struct db *db;
	struct lookup_cache *cache; /* NULL: not shared, or no listener */
	atomic_uint_fast64_t cache_hits, cache_misses;
	char owner[128]; /* this process in claims (host:pid:random) */
	struct blob_store *blobs;
	/* Told about every new debuginfo/executable candidate. */
	store_candidate_fn candidate_hook;
	void *candidate_ctx;
};

void artifact_init(struct artifact *a, const char *build_id, enum artifact_kind kind,
		   const char *name, enum artifact_origin origin, int quality)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->build_id, sizeof(a->build_id), "%s", build_id);
	a->kind = kind;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->origin = origin;
	a->quality = quality;
}

const char *artifact_kind_name(enum artifact_kind k)
{
	static const char *const names[ART_KIND_COUNT] = {
		"debuginfo", "executable", "source", "section", "unwind", "symz",
	};
	return (unsigned)k < ART_KIND_COUNT ? names[k] : "invalid";
}

const char *artifact_origin_name(enum artifact_origin o)
{
	static const char *const names[] = { "scan", "upload", "upstream", "derived", "imported" };
	return (unsigned)o < ARRAY_SIZE(names) ? names[o] : "invalid";
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int store_open(struct store **out, struct db *db, struct blob_store *blobs, struct err *e)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	s->db = db;
	s->blobs = blobs;
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	snprintf(s->owner, sizeof(s->owner), "%.64s:%d:%08lx", host, (int)getpid(),
		 (unsigned long)(now_ns() & 0xffffffff));
	bool pg = db_dialect(db) == DB_POSTGRES;
	int rc = db_migrate(db, "artifacts", pg ? schema_postgres : schema_sqlite,
			    pg ? (int)ARRAY_SIZE(schema_postgres) : (int)ARRAY_SIZE(schema_sqlite), e);
	struct db_conn *c = NULL;
	if (rc == 0)
		rc = db_get(db, &c, e);
	/* Local source rows are a cache, derived again on demand under the
	 * current source rule; an older version derived them from any DWARF. */
	if (rc == 0)
		rc = db_exec(c, NULL, e, "DELETE FROM candidates WHERE kind=2 AND origin=0", "");
	db_put(db, c);
	if (rc < 0) {
		free(s);
		return rc;
	}
	/* Without it, every lookup goes to the database: slower, right. */
	struct err ignored = { { 0 } };
	s->cache = calloc(1, sizeof(*s->cache));
	if (s->cache) {
		pthread_mutex_init(&s->cache->lock, NULL);
		s->cache->gen = 1; /* 0: "do not cache" */
		db_listen(db, STORE_CHANNEL, &ignored); /* -EAGAIN: retried later */
	}
	*out = s;
	return 0;
}

static void entry_clear(struct lookup_entry *en)
{
	for (int i = 0; i < en->n; i++) {
		free(en->rows[i].loc);
		free(en->rows[i].file);
	}
	free(en->rows);
	free(en->name);
	memset(en, 0, sizeof(*en));
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->cache) {
		for (int i = 0; i < LOOKUP_SLOTS; i++)
			entry_clear(&s->cache->slots[i]);
		pthread_mutex_destroy(&s->cache->lock);
		free(s->cache);
	}
	free(s);
}

void store_cache_stats(struct store *s, uint64_t *hits, uint64_t *misses)
{
	*hits = s->cache_hits;
	*misses = s->cache_misses;
}

static struct lookup_entry *lookup_slot(struct lookup_cache *lc, const char *build_id,
					enum artifact_kind kind, const char *name, int max)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = build_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ (unsigned)kind) * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ (unsigned)max) * 1099511628211ull;
	return &lc->slots[h % LOOKUP_SLOTS];
}

static void row_to_artifact(const struct lookup_row *r, const char *build_id,
			    enum artifact_kind kind, const char *name, struct artifact *a)
{
	artifact_init(a, build_id, kind, name, (enum artifact_origin)r->origin, r->quality);
	snprintf(a->file, sizeof(a->file), "%s", r->file);
	a->size = r->size;
	a->mtime = r->mtime;
	a->expires = r->expires;
	if (a->origin == ORIGIN_SCAN)
		snprintf(a->path, sizeof(a->path), "%s", r->loc);
	else
		snprintf(a->blob, sizeof(a->blob), "%s", r->loc);
}

/* A cached answer: its count, or -1 when there is none to trust.
 * *gen: the generation a lookup from the database is stored under. */
static int cache_get(struct store *s, const char *build_id, enum artifact_kind kind,
		     const char *name, struct artifact *out, int max, uint64_t *gen)
{
	struct lookup_cache *lc = s->cache;
	int changed = db_changed(s->db);
	pthread_mutex_lock(&lc->lock);
	if (changed != 0)
		lc->gen++; /* a notice, or none can be trusted: all is void */
	*gen = changed < 0 ? 0 : lc->gen;
	int n = -1;
	struct lookup_entry *en = lookup_slot(lc, build_id, kind, name, max);
	if (changed >= 0 && en->name && en->gen == lc->gen && now_ns() < en->until_ns &&
	    (!en->expires || en->expires > now_s()) && en->kind == kind && en->max == max &&
	    strcmp(en->build_id, build_id) == 0 && strcmp(en->name, name) == 0) {
		n = en->n;
		for (int i = 0; i < n; i++)
			row_to_artifact(&en->rows[i], build_id, kind, name, &out[i]);
	}
	pthread_mutex_unlock(&lc->lock);
	if (n >= 0)
		s->cache_hits++;
	else
		s->cache_misses++;
	return n;
}

static void cache_put(struct store *s, const char *build_id, enum artifact_kind kind,
		      const char *name, const struct artifact *a, int n, int max, uint64_t gen)
{
	struct lookup_cache *lc = s->cache;
	struct lookup_entry fresh = { .gen = gen, .until_ns = now_ns() + LOOKUP_TTL_NS,
				      .kind = kind, .max = max, .n = 0 };
	snprintf(fresh.build_id, sizeof(fresh.build_id), "%s", build_id);
	if (!gen || !(fresh.name = strdup(name)) ||
	    (n && !(fresh.rows = calloc((size_t)n, sizeof(*fresh.rows))))) {
		entry_clear(&fresh);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct lookup_row *r = &fresh.rows[i];
		r->origin = (int)a[i].origin;
		r->quality = a[i].quality;
		r->size = a[i].size;
		r->mtime = a[i].mtime;
		r->expires = a[i].expires;
		r->loc = strdup(a[i].origin == ORIGIN_SCAN ? a[i].path : a[i].blob);
		r->file = strdup(a[i].file);
		fresh.n = i + 1;
		if (!r->loc || !r->file) {
			entry_clear(&fresh);
			return;
		}
		if (r->expires && (!fresh.expires || r->expires < fresh.expires))
			fresh.expires = r->expires;
	}
	pthread_mutex_lock(&lc->lock);
	struct lookup_entry *en = lookup_slot(lc, build_id, kind, name, max);
	struct lookup_entry old = *en;
	bool current = gen == lc->gen;
	if (current)
		*en = fresh;
	pthread_mutex_unlock(&lc->lock);
	entry_clear(current ? &old : &fresh);
}

struct blob_store *store_blobs(const struct store *s)
{
	return s->blobs;
}

struct db *store_db(const struct store *s)
{
	return s->db;
}

int store_lookup(struct store *s, const char *build_id, enum artifact_kind kind,
		 const char *name, struct artifact *out, int max, struct err *e)
{
	uint64_t gen = 0;
	if (s->cache && max > 0) {
		int n = cache_get(s, build_id, kind, name ? name : "", out, max, &gen);
		if (n >= 0)
			return n;
	}
	struct db_conn *c;
	int rc = db_get(s->db, &c, e);
	if (rc < 0)
		return rc;
	struct db_rows *q = NULL;
	rc = db_query(c, &q, e,
		      "SELECT loc, origin, quality, file, size, mtime, expires FROM candidates"
		      " WHERE build_id=? AND kind=? AND name=? AND (expires=0 OR expires>?)"
		      " ORDER BY quality DESC, origin=1 DESC, mtime DESC LIMIT ?",
		      "titIi", build_id, (int)kind, name ? name : "", now_s(), max);
	int n = 0;
	while (rc == 0 && n < max && (rc = db_next(q)) == 1) {
		rc = 0;
		struct artifact *a = &out[n++];
		artifact_init(a, build_id, kind, name ? name : "", (enum artifact_origin)db_int(q, 1),
			      (int)db_int(q, 2));
		snprintf(a->file, sizeof(a->file), "%s", db_text(q, 3));
		a->size = (uint64_t)db_int(q, 4);
		a->mtime = db_int(q, 5);
		a->expires = db_int(q, 6);
		if (a->origin == ORIGIN_SCAN)
			snprintf(a->path, sizeof(a->path), "%s", db_text(q, 0));
		else
			snprintf(a->blob, sizeof(a->blob), "%s", db_text(q, 0));
	}
	db_done(q);
	db_put(s->db, c);
	if (rc < 0)
		return err_set(e, -rc, "candidate lookup failed");
	if (gen)
		cache_put(s, build_id, kind, name ? name : "", out, n, max, gen);
	return n;
}

/* This replica changed candidates: its own next lookup must not wait for
 * the notice (which reaches its listener a little later) to see it. */
static void candidates_changed(struct store *s)
{
	if (!s->cache)
		return;
	pthread_mutex_lock(&s->cache->lock);
	s->cache->gen++;
	pthread_mutex_unlock(&s->cache->lock);
}

int store_forget_external(struct store *s, const char *path, struct err *e)
{
	int rc = db_exec_pooled(s->db, NULL, e, "DELETE FROM candidates WHERE origin=0 AND loc=?", "t",
				path);
	candidates_changed(s);
	return rc;
}

static void forget_one(struct store *s, const struct artifact *a)
{
	struct err ignored = { { 0 } };
	db_exec_pooled(s->db, NULL, &ignored,
		   "DELETE FROM candidates WHERE build_id=? AND kind=? AND name=? AND loc=?", "titt",
		   a->build_id, (int)a->kind, a->name, a->origin == ORIGIN_SCAN ? a->path : a->blob);
	candidates_changed(s);
}

int store_open_artifact(struct store *s, struct artifact *a, int *fd, struct stat *st,
			struct err *e)
{
	if (a->origin != ORIGIN_SCAN) {
		int rc = blob_open(s->blobs, BLOB_AREA_ARTIFACTS, a->blob, fd, st, a->path,
				   sizeof(a->path), e);
		if (rc == -ENOENT)
			forget_one(s, a); /* the row outlived its blob */
		if (rc == 0 && (uint64_t)st->st_size != a->size) {
			close(*fd);
			forget_one(s, a);
			return err_set(e, ENOENT, "blob %s: %llu bytes, the index says %llu", a->blob,
				       (unsigned long long)st->st_size,
				       (unsigned long long)a->size);
		}
		return rc;
	}
	int f = open(a->path, O_RDONLY | O_CLOEXEC);
	if (f < 0 || fstat(f, st) < 0) {
		int errnum = errno;
		if (f >= 0)
			close(f);
		if (errnum == ENOENT)
			forget_one(s, a);
		return err_set(e, errnum, "%s: %s", a->path, strerror(errnum));
	}
	if ((uint64_t)st->st_size != a->size || (int64_t)st->st_mtime != a->mtime) {
		close(f);
		/* A scanned file changed under us: forget it; the rescan will
		 * index the new content. */
		forget_one(s, a);
		return err_set(e, ENOENT, "%s changed since it was indexed", a->path);
	}
	*fd = f;
	return 0;
}

int store_each_openable(struct store *s, const char *build_id, enum artifact_kind kind,
			const char *name, store_candidate_cb fn, void *ctx)
{
	enum { MAX_CANDIDATES = 8 };
	struct artifact cands[MAX_CANDIDATES];
	struct err e = { { 0 } };
	int n = store_lookup(s, build_id, kind, name, cands, MAX_CANDIDATES, &e);
	for (int i = 0; i < n; i++) {
		int fd;
		struct stat st;
		if (store_open_artifact(s, &cands[i], &fd, &st, &e) < 0)
			continue;
		close(fd);
		int rc = fn(ctx, &cands[i]);
		if (rc)
			return rc;
	}
	return n < 0 ? n : 0;
}

static int insert_candidate(struct store *s, const struct artifact *a, const char *loc,
			    struct err *e)
{
	int rc = db_exec_pooled(s->db, NULL, e,
			    "INSERT INTO candidates(build_id, kind, name, loc, origin, quality, file,"
			    " size, mtime, expires) VALUES(?,?,?,?,?,?,?,?,?,?)"
			    " ON CONFLICT(build_id, kind, name, loc) DO UPDATE SET"
			    " origin=excluded.origin, quality=excluded.quality, file=excluded.file,"
			    " size=excluded.size, mtime=excluded.mtime, expires=excluded.expires",
			    "tittiitIII", a->build_id, (int)a->kind, a->name, loc, (int)a->origin,
			    (int)a->quality, a->file, (int64_t)a->size, (int64_t)a->mtime,
			    (int64_t)a->expires);
	candidates_changed(s);
	if (rc == 0 && s->candidate_hook && (a->kind == ART_DEBUGINFO || a->kind == ART_EXECUTABLE))
		s->candidate_hook(s->candidate_ctx, a->build_id, a->kind, a->quality);
	return rc;
}

void store_set_candidate_hook(struct store *s, store_candidate_fn fn, void *ctx)
{
	s->candidate_hook = fn;
	s->candidate_ctx = ctx;
}

int store_forget_kind(struct store *s, const char *build_id, enum artifact_kind kind,
		      struct err *e)
{
	int rc = db_exec_pooled(s->db, NULL, e, "DELETE FROM candidates WHERE build_id=? AND kind=?",
				"ti", build_id, (int)kind);
	candidates_changed(s);
	return rc;
}

/* Copy a scanned file into the blob store, streamed, and name it. */
static int import_external(struct store *s, const struct artifact *a, struct err *e)
{
	int fd = open(a->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: %s", a->path, strerror(errno));
	struct blob_tmp t;
	int rc = blob_tmp_begin(s->blobs, &t, e);
	char buf[65536];
	ssize_t n = 0;
	while (rc == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		rc = blob_tmp_write(&t, buf, (size_t)n, e);
	close(fd);
	if (rc == 0 && (n < 0 || t.size != a->size))
		rc = err_set(e, EIO, "%s changed while it was imported", a->path);
	if (rc < 0) {
		if (t.fd >= 0)
			blob_tmp_abort(&t);
		return rc;
	}
	struct artifact imported = *a;
	imported.origin = ORIGIN_IMPORTED;
	return store_tmp_commit(s, &t, &imported, e);
}

int store_add_external(struct store *s, const struct artifact *a, struct err *e)
{
	if (store_shared(s))
		return import_external(s, a, e);
	return insert_candidate(s, a, a->path, e);
}

int store_add_blob_candidate(struct store *s, const struct artifact *a, struct err *e)
{
	if (strlen(a->blob) != SHA256_HEX_LEN)
		return err_set(e, EINVAL, "no blob to refer to");
	return insert_candidate(s, a, a->blob, e);
}

bool store_scanned_same(struct store *s, const char *path, uint64_t size, int64_t mtime)
{
	struct err e = { { 0 } };
	struct db_conn *c;
	if (db_get(s->db, &c, &e) < 0)
		return false;
	struct db_rows *q = NULL;
	bool same = false;
	if (db_query(c, &q, &e, "SELECT size, mtime FROM scanned WHERE path=?", "t", path) == 0) {
		same = db_next(q) == 1 && (uint64_t)db_int(q, 0) == size && db_int(q, 1) == mtime;
		db_done(q);
	}
	db_put(s->db, c);
	return same;
}

int store_scanned_set(struct store *s, const char *path, uint64_t size, int64_t mtime,
		      struct err *e)
{
	return db_exec_pooled(s->db, NULL, e,
			  "INSERT INTO scanned(path, size, mtime) VALUES(?,?,?) ON CONFLICT(path)"
			  " DO UPDATE SET size=excluded.size, mtime=excluded.mtime",
			  "tII", path, (int64_t)size, mtime);
}

int store_tmp_begin(struct store *s, struct blob_tmp *t, struct err *e)
{
	return blob_tmp_begin(s->blobs, t, e);
}

int store_tmp_commit(struct store *s, struct blob_tmp *t, struct artifact *a, struct err *e)
{
	a->size = t->size;
	int rc = blob_tmp_commit(s->blobs, t, BLOB_AREA_ARTIFACTS, a->blob, e);
	if (rc < 0)
		return rc;
	if (!a->mtime)
		a->mtime = now_s();
	return insert_candidate(s, a, a->blob, e);
}

int store_put_mem(struct store *s, const void *data, size_t size, struct artifact *a,
		  struct err *e)
{
	int rc = blob_put_mem(s->blobs, BLOB_AREA_ARTIFACTS, data, size, a->blob, e);
	if (rc < 0)
		return rc;
	a->size = size;
	if (!a->mtime)
		a->mtime = now_s();
	return insert_candidate(s, a, a->blob, e);
}

bool store_miss_cached(struct store *s, const char *build_id, enum artifact_kind kind,
		       const char *name)
{
	struct err e = { { 0 } };
	struct db_conn *c;
	if (db_get(s->db, &c, &e) < 0)
		return false;
	int64_t one;
	bool found = false;
	db_query_int(c, &one, &found, &e,
		     "SELECT 1 FROM misses WHERE build_id=? AND kind=? AND name=? AND expires>?",
		     "titI", build_id, (int)kind, name ? name : "", now_s());
	db_put(s->db, c);
	return found;
}

int store_miss_put(struct store *s, const char *build_id, enum artifact_kind kind,
		   const char *name, int64_t expires, struct err *e)
{
	return db_exec_pooled(s->db, NULL, e,
			  "INSERT INTO misses(build_id, kind, name, expires) VALUES(?,?,?,?)"
			  " ON CONFLICT(build_id, kind, name) DO UPDATE SET expires=excluded.expires",
			  "titI", build_id, (int)kind, name ? name : "", expires);
}

int store_stats(struct store *s, struct store_stats *st, struct err *e)
{
	memset(st, 0, sizeof(*st));
	struct db_conn *c;
	int rc = db_get(s->db, &c, e);
	if (rc < 0)
		return rc;
	struct db_rows *q = NULL;
	rc = db_query(c, &q, e,
		      "SELECT count(*), coalesce(sum(CASE WHEN origin=0 THEN 1 ELSE 0 END), 0),"
		      " (SELECT coalesce(sum(size), 0) FROM (SELECT DISTINCT loc, size"
		      "   FROM candidates WHERE origin<>0) AS b) FROM candidates", "");
	if (rc == 0) {
		if (db_next(q) == 1) {
			st->candidates = (uint64_t)db_int(q, 0);
			st->external = (uint64_t)db_int(q, 1);
			st->blobs_bytes = (uint64_t)db_int(q, 2);
		} else {
			rc = err_set(e, EIO, "store statistics: no row");
		}
		db_done(q);
	}
	db_put(s->db, c);
	return rc;
}

struct unreferenced_ctx {
	struct store *s;
	struct db_conn *c;
	struct vec gone; /* char[SHA256_HEX_LEN + 1] */
};

static int collect_unreferenced(void *ctx, const char *hash, uint64_t size, int64_t mtime)
{
	(void)size;
	struct unreferenced_ctx *u = ctx;
	/* Young blobs may belong to a commit whose row is not inserted yet. */
	if (mtime > now_s() - BLOB_GRACE_S)
		return 0;
	struct err e = { { 0 } };
	int64_t one;
	bool used = true; /* on doubt, keep */
	if (db_query_int(u->c, &one, &used, &e,
			 "SELECT 1 FROM candidates WHERE loc=? AND origin<>0 LIMIT 1", "t", hash) < 0)
		return -EAGAIN; /* the database went away: stop, keep everything */
	if (!used) {
		char *slot = vec_push(&u->gone);
		if (slot)
			snprintf(slot, SHA256_HEX_LEN + 1, "%s", hash);
	}
	return 0;
}

static void remove_unreferenced_blobs(struct store *s)
{
	struct err e = { { 0 } };
	struct unreferenced_ctx u = { .s = s };
	if (db_get(s->db, &u.c, &e) < 0)
		return;
	vec_init(&u.gone, SHA256_HEX_LEN + 1);
	int rc = blob_list(s->blobs, BLOB_AREA_ARTIFACTS, collect_unreferenced, &u, &e);
	db_put(s->db, u.c);
	for (size_t i = 0; rc == 0 && i < u.gone.len; i++)
		blob_delete(s->blobs, BLOB_AREA_ARTIFACTS, (const char *)u.gone.data +
			    i * (SHA256_HEX_LEN + 1), &e);
	vec_free(&u.gone);
}

struct evictable {
	char loc[SHA256_HEX_LEN + 1];
	int64_t used; /* the blob's last use (blob_open) */
};

static int by_last_use(const void *a, const void *b)
{
	const struct evictable *x = a, *y = b;
	return x->used < y->used ? -1 : x->used > y->used;
}

/* Re-obtainable blobs (upstream copies, derived artifacts), least recently
 * used first, until the blob total fits quota_bytes.  A blob that also
 * serves an upload is kept: deleting its upstream row frees nothing. */
static int evict_to_quota(struct store *s, uint64_t quota_bytes, struct err *e)
{
	struct store_stats st;
	int rc = store_stats(s, &st, e);
	if (rc < 0 || st.blobs_bytes <= quota_bytes)
		return rc;
	struct db_conn *c;
	rc = db_get(s->db, &c, e);
	if (rc < 0)
		return rc;
	struct vec cands;
	vec_init(&cands, sizeof(struct evictable));
	struct db_rows *q = NULL;
	rc = db_query(c, &q, e,
		      "SELECT DISTINCT loc FROM candidates WHERE origin IN (2,3)"
		      " AND loc NOT IN (SELECT loc FROM candidates WHERE origin IN (0,1,4))", "");
	int step = 0;
	while (rc == 0 && (step = db_next(q)) == 1) {
		const char *loc = db_text(q, 0);
		if (strlen(loc) != SHA256_HEX_LEN)
			continue;
		struct evictable *ev = vec_push(&cands);
		if (!ev) {
			rc = err_set(e, ENOMEM, "out of memory");
			break;
		}
		snprintf(ev->loc, sizeof(ev->loc), "%s", loc);
		ev->used = blob_last_use(s->blobs, BLOB_AREA_ARTIFACTS, loc);
	}
	db_done(q);
	if (rc == 0 && step < 0)
		rc = err_set(e, -step, "reading evictable blobs failed");
	db_put(s->db, c);
	if (rc == 0)
		qsort(cands.data, cands.len, sizeof(struct evictable), by_last_use);
	for (size_t i = 0; rc == 0 && i < cands.len && st.blobs_bytes > quota_bytes; i++) {
		const struct evictable *ev = &VEC_AT(&cands, struct evictable, i);
		rc = db_exec_pooled(s->db, NULL, e, "DELETE FROM candidates WHERE loc=?", "t", ev->loc);
		candidates_changed(s);
		if (rc == 0)
			rc = store_stats(s, &st, e);
	}
	vec_free(&cands);
	return rc;
}

int store_groom(struct store *s, uint64_t quota_bytes, struct err *e)
{
	int rc = db_exec_pooled(s->db, NULL, e, "DELETE FROM candidates WHERE expires<>0 AND expires<=?",
			    "I", now_s());
	if (rc == 0)
		rc = db_exec_pooled(s->db, NULL, e, "DELETE FROM misses WHERE expires<=?", "I", now_s());
	if (rc == 0 && quota_bytes)
		rc = evict_to_quota(s, quota_bytes, e);
	if (rc == 0)
		remove_unreferenced_blobs(s);
	return rc;
}

/* A shell glob as a LIKE pattern that matches at least what it matches
 * (the caller applies fnmatch): * → %, ? → _, and from the first bracket
 * on, anything. */
static void glob_to_like(const char *glob, char *out, size_t size)
{
	size_t o = 0;
	for (const char *g = glob; *g && o + 3 < size; g++) {
		if (*g == '*') {
			out[o++] = '%';
		} else if (*g == '?') {
			out[o++] = '_';
		} else if (*g == '[') {
			out[o++] = '%';
			break;
		} else if (*g == '%' || *g == '_' || *g == '\\') {
			out[o++] = '\\';
			out[o++] = *g;
		} else {
			out[o++] = *g;
		}
	}
	out[o] = 0;
}

int store_metadata(struct store *s, bool glob, const char *value, store_meta_fn fn, void *ctx,
		   struct err *e)
{
	struct db_conn *c;
	int rc = db_get(s->db, &c, e);
	if (rc < 0)
		return rc;
	char like[2 * ARTIFACT_NAME_MAX + 8];
	const char *sql;
	if (!glob) {
		sql = "SELECT DISTINCT build_id, kind, file FROM candidates"
		      " WHERE kind IN (0,1) AND (expires=0 OR expires>?) AND file=?"
		      " ORDER BY file, kind, build_id";
	} else if (db_dialect(s->db) == DB_SQLITE) {
		sql = "SELECT DISTINCT build_id, kind, file FROM candidates"
		      " WHERE kind IN (0,1) AND (expires=0 OR expires>?) AND file GLOB ?"
		      " ORDER BY file, kind, build_id";
	} else {
		glob_to_like(value, like, sizeof(like));
		value = like;
		sql = "SELECT DISTINCT build_id, kind, file FROM candidates"
		      " WHERE kind IN (0,1) AND (expires=0 OR expires>?) AND file LIKE ?"
		      " ORDER BY file, kind, build_id";
	}
	struct db_rows *q = NULL;
	rc = db_query(c, &q, e, sql, "It", now_s(), value);
	int step = 0;
	while (rc == 0 && (step = db_next(q)) == 1)
		rc = fn(ctx, db_text(q, 0), (enum artifact_kind)db_int(q, 1), db_text(q, 2));
	if (step < 0 && rc == 0)
		rc = err_set(e, -step, "metadata query failed");
	db_done(q);
	db_put(s->db, c);
	return rc < 0 ? rc : 0;
}

bool store_shared(const struct store *s)
{
	return db_dialect(s->db) == DB_POSTGRES;
}

int store_claim(struct store *s, const char *key, unsigned ttl_s, struct err *e)
{
	int64_t now = now_s(), won = 0;
	int rc = db_exec_pooled(s->db, &won, e,
			    "INSERT INTO claims(key, owner, expires) VALUES(?,?,?) ON CONFLICT(key)"
			    " DO UPDATE SET owner=excluded.owner, expires=excluded.expires"
			    " WHERE claims.expires<?", "ttII", key, s->owner, now + (int64_t)ttl_s, now);
	return rc < 0 ? rc : won > 0;
}

int store_renew_claim(struct store *s, const char *key, unsigned ttl_s, struct err *e)
{
	int64_t held = 0;
	int rc = db_exec_pooled(s->db, &held, e, "UPDATE claims SET expires=? WHERE key=? AND owner=?",
				"Itt", now_s() + (int64_t)ttl_s, key, s->owner);
	return rc < 0 ? rc : held > 0;
}

void store_unclaim(struct store *s, const char *key)
{
	struct err ignored = { { 0 } };
	db_exec_pooled(s->db, NULL, &ignored, "DELETE FROM claims WHERE key=? AND owner=?", "tt", key,
		   s->owner);
}
