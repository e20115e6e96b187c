/* The profile store: metadata in DIR/profiles.sqlite, blobs in
 * DIR/profiles/, symbolization shared with POST /symbolize, and the worker
 * thread (batches, late debuginfo, retention).  See profiles.h. */
#include "debuginfod-lite/profiles.h"
#include "debuginfod-lite/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REF_MAX (BUILD_ID_HEX_MAX + 16)
#define PENDING_MAX 256
#define BATCH_MAX 32
/* A perf map nobody refers to is kept this long (the agent posts it before
 * the profile that names it). */
#define PERF_MAP_GRACE_S 3600

struct pending_ref {
	char ref[REF_MAX];
	int quality;
};

struct profiles {
	struct server *srv; /* the debuginfo core under it, and the config */
	struct profile_counters counters;
	/* This replica's name in worker claims (host:pid:random). */
	char owner[128];
	struct db *db;
	struct blob_store *blobs;
	pthread_t worker;
	bool worker_running;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t cond;
	bool stopping, wake;
	struct pending_ref pending[PENDING_MAX];
	int n_pending;
	bool pending_overflow; /* too many: re-check every partial profile */
};

/* Schema steps of the "profiles" component (metadb.h db_migrate). */
static const char *const schema_sqlite[] = {
	"CREATE TABLE IF NOT EXISTS profiles("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  raw TEXT NOT NULL UNIQUE, raw_size INTEGER NOT NULL,"
	"  sym TEXT NOT NULL DEFAULT '', sym_size INTEGER NOT NULL DEFAULT 0,"
	"  received INTEGER NOT NULL, t_start INTEGER NOT NULL, t_end INTEGER NOT NULL,"
	"  samples INTEGER NOT NULL, sample_types TEXT NOT NULL, state INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS profiles_state ON profiles(state);"
	"CREATE TABLE IF NOT EXISTS profile_labels(profile INTEGER NOT NULL, key TEXT NOT NULL,"
	"  value TEXT NOT NULL, PRIMARY KEY(profile, key)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS profile_labels_kv ON profile_labels(key, value);"
	"CREATE TABLE IF NOT EXISTS profile_refs(profile INTEGER NOT NULL, ref TEXT NOT NULL,"
	"  missing INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(profile, ref)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS profile_refs_ref ON profile_refs(ref, missing);"
	"CREATE TABLE IF NOT EXISTS perf_maps(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,"
	"  received INTEGER NOT NULL) WITHOUT ROWID;",
	/* 2: worker claims (see next_batch). */
	"ALTER TABLE profiles ADD COLUMN claim_owner TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE profiles ADD COLUMN claim_expires INTEGER NOT NULL DEFAULT 0;",
};

static const char *const schema_postgres[] = {
	"CREATE TABLE IF NOT EXISTS profiles("
	"  id BIGSERIAL PRIMARY KEY,"
	"  raw TEXT NOT NULL UNIQUE, raw_size BIGINT NOT NULL,"
	"  sym TEXT NOT NULL DEFAULT '', sym_size BIGINT NOT NULL DEFAULT 0,"
	"  received BIGINT NOT NULL, t_start BIGINT NOT NULL, t_end BIGINT NOT NULL,"
	"  samples BIGINT NOT NULL, sample_types TEXT NOT NULL, state INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS profiles_state ON profiles(state);"
	"CREATE TABLE IF NOT EXISTS profile_labels(profile BIGINT NOT NULL, key TEXT NOT NULL,"
	"  value TEXT NOT NULL, PRIMARY KEY(profile, key));"
	"CREATE INDEX IF NOT EXISTS profile_labels_kv ON profile_labels(key, value);"
	"CREATE TABLE IF NOT EXISTS profile_refs(profile BIGINT NOT NULL, ref TEXT NOT NULL,"
	"  missing INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(profile, ref));"
	"CREATE INDEX IF NOT EXISTS profile_refs_ref ON profile_refs(ref, missing);"
	"CREATE TABLE IF NOT EXISTS perf_maps(sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL,"
	"  received BIGINT NOT NULL);",
	"ALTER TABLE profiles ADD COLUMN claim_owner TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE profiles ADD COLUMN claim_expires BIGINT NOT NULL DEFAULT 0;",
};

/* A worker claims a batch for this long, and renews the claim of what is
 * left before each profile; a replica that dies mid-batch (kill -9) thus
 * leaves its profiles to the others once the claim expires. */
#define CLAIM_S 60

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Open a stored blob: its fd and stat, or -errno. */
static int open_blob(struct server *s, const char *hash, struct stat *st, struct err *e)
{
	int fd;
	int rc = blob_open(s->profiles->blobs, BLOB_AREA_PROFILES, hash, &fd, st, NULL, 0, e);
	return rc < 0 ? rc : fd;
}

int profile_blob_read(struct server *s, const char *hash, uint8_t **data, size_t *size,
		      struct err *e)
{
	return blob_read(s->profiles->blobs, BLOB_AREA_PROFILES, hash, UINT64_MAX, data, size, e);
}

int profile_blob_sizes(struct server *s, const char *hash, uint64_t *size, uint64_t *plain,
		       struct err *e)
{
	struct stat st;
	int fd = open_blob(s, hash, &st, e);
	if (fd < 0)
		return fd;
	uint8_t head[2] = { 0 }, tail[4] = { 0 };
	*size = *plain = (uint64_t)st.st_size;
	if (st.st_size >= 18 && pread(fd, head, 2, 0) == 2 && head[0] == 0x1f && head[1] == 0x8b &&
	    pread(fd, tail, 4, st.st_size - 4) == 4)
		*plain = (uint64_t)tail[0] | (uint64_t)tail[1] << 8 | (uint64_t)tail[2] << 16 |
			 (uint64_t)tail[3] << 24;
	close(fd);
	return 0;
}

/* Remove a blob of the area when no row names it any more (c: the
 * caller's connection). */
static void unlink_if_unused(struct profiles *ps, struct db_conn *c, const char *hash)
{
	if (!hash[0])
		return;
	struct err e = { { 0 } };
	int64_t one;
	bool used = true; /* on doubt, keep */
	if (db_query_int(c, &one, &used, &e,
			 "SELECT 1 FROM profiles WHERE raw=? OR sym=?"
			 " UNION ALL SELECT 1 FROM perf_maps WHERE sha256=? LIMIT 1",
			 "ttt", hash, hash, hash) < 0)
		return;
	if (!used)
		blob_delete(ps->blobs, BLOB_AREA_PROFILES, hash, &e);
}

static void queue_ref(struct profiles *ps, const char *ref, int quality);

/* ---- storing ---- */

int profiles_insert(struct server *s, const void *body, size_t size,
		    const struct profile_meta *m, int64_t *id, struct err *e)
{
	struct profiles *ps = s->profiles;
	char hash[SHA256_HEX_LEN + 1];
	int rc = blob_put_mem(ps->blobs, BLOB_AREA_PROFILES, body, size, hash, e);
	if (rc < 0)
		return rc;
	struct db_conn *c;
	rc = db_get(ps->db, &c, e);
	if (rc < 0)
		return rc;
	int64_t old;
	bool dup = false;
	rc = db_query_int(c, &old, &dup, e, "SELECT id FROM profiles WHERE raw=?", "t", hash);
	if (rc == 0 && dup) {
		db_put(ps->db, c);
		*id = old;
		return 0;
	}
	/* The row, its labels and its refs stand together or not at all. */
	int64_t new_id = 0;
	bool found = false;
	if (rc == 0)
		rc = db_begin(c, e);
	if (rc == 0)
		rc = db_query_int(c, &new_id, &found, e,
				  "INSERT INTO profiles(raw, raw_size, received, t_start, t_end, samples,"
				  " sample_types, state) VALUES(?,?,?,?,?,?,?,0) RETURNING id",
				  "tIIIIIt", hash, (int64_t)size, m->received, m->t_start, m->t_end,
				  (int64_t)m->samples, m->sample_types);
	if (rc == 0 && !found)
		rc = err_set(e, EIO, "profile insert returned no id");
	for (int i = 0; rc == 0 && i < m->n_labels; i++)
		rc = db_exec(c, NULL, e,
			     "INSERT INTO profile_labels(profile, key, value) VALUES(?,?,?)"
			     " ON CONFLICT(profile, key) DO UPDATE SET value=excluded.value", "Itt",
			     new_id, m->label_key[i], m->label_value[i]);
	for (size_t i = 0; rc == 0 && i < m->refs.len; i++)
		rc = db_exec(c, NULL, e,
			     "INSERT INTO profile_refs(profile, ref) VALUES(?,?) ON CONFLICT DO NOTHING",
			     "It", new_id, (const char *)m->refs.data + i * REF_MAX);
	if (rc == 0)
		rc = db_commit(c, e);
	if (rc < 0) {
		db_rollback(c);
		/* Another replica stored the same bytes at the same moment. */
		if (rc == -EEXIST && db_query_int(c, &old, &dup, e, "SELECT id FROM profiles"
						  " WHERE raw=?", "t", hash) == 0 && dup) {
			db_put(ps->db, c);
			*id = old;
			return 0;
		}
		if (rc != -EAGAIN)
			unlink_if_unused(ps, c, hash);
	}
	db_put(ps->db, c);
	if (rc < 0)
		return rc;
	*id = new_id;
	profiles_wake(s);
	return 1;
}

int perf_map_insert(struct server *s, const void *text, size_t size, char *sha, bool *was_new,
		    struct err *e)
{
	struct profiles *ps = s->profiles;
	int rc = blob_put_mem(ps->blobs, BLOB_AREA_PROFILES, text, size, sha, e);
	if (rc < 0)
		return rc;
	int64_t changes = 0;
	rc = db_exec_pooled(ps->db, &changes, e,
		    "INSERT INTO perf_maps(sha256, size, received) VALUES(?,?,?)"
		    " ON CONFLICT DO NOTHING", "tII", sha, (int64_t)size, (int64_t)time(NULL));
	*was_new = rc == 0 && changes > 0;
	if (*was_new) {
		/* Profiles that arrived before their perf map. */
		char ref[REF_MAX];
		snprintf(ref, sizeof(ref), PERF_MAP_PREFIX "%s", sha);
		queue_ref(ps, ref, 0);
	}
	return rc;
}

bool perf_map_known(struct server *s, const char *sha)
{
	struct profiles *ps = s->profiles;
	struct err e = { { 0 } };
	struct db_conn *c;
	if (db_get(ps->db, &c, &e) < 0)
		return false;
	int64_t one;
	bool known = false;
	db_query_int(c, &one, &known, &e, "SELECT 1 FROM perf_maps WHERE sha256=?", "t", sha);
	db_put(ps->db, c);
	return known;
}

/* ---- querying ---- */

static void row_read(struct db_rows *q, struct profile_row *r)
{
	r->id = db_int(q, 0);
	snprintf(r->raw, sizeof(r->raw), "%s", db_text(q, 1));
	snprintf(r->sym, sizeof(r->sym), "%s", db_text(q, 2));
	r->raw_size = (uint64_t)db_int(q, 3);
	r->sym_size = (uint64_t)db_int(q, 4);
	r->received = db_int(q, 5);
	r->t_start = db_int(q, 6);
	r->t_end = db_int(q, 7);
	r->samples = (uint64_t)db_int(q, 8);
	r->state = (int)db_int(q, 9);
}

#define ROW_COLUMNS "id, raw, sym, raw_size, sym_size, received, t_start, t_end, samples, state"

/* Every row of q into *rows (malloc'ed); q is finished here. */
static int select_rows(struct db_rows *q, struct profile_row **rows, size_t *n, struct err *e)
{
	struct vec v;
	vec_init(&v, sizeof(struct profile_row));
	int step;
	while ((step = db_next(q)) == 1) {
		struct profile_row *r = vec_push(&v);
		if (!r) {
			step = -ENOMEM;
			break;
		}
		row_read(q, r);
	}
	db_done(q);
	if (step < 0) {
		vec_free(&v);
		return err_set(e, -step, "reading profile rows failed");
	}
	*rows = v.data;
	*n = v.len;
	return 0;
}

int profiles_query(struct server *s, const struct profile_query *pq, struct profile_row **rows,
		   size_t *n, struct err *e)
{
	/* Every condition is present, switched off by its own flag, so that
	 * the parameters keep their places whatever the query asks. */
	char sql[4096];
	int len = snprintf(sql, sizeof(sql),
			   "SELECT " ROW_COLUMNS " FROM profiles WHERE (?=0 OR id=?)"
			   " AND (?=0 OR t_end>=?) AND (?=0 OR t_start<=?)");
	char types[8 + 2 * 16 + 1] = "IIIIII";
	for (int i = 0; i < pq->n_labels && i < 16; i++) {
		len += snprintf(sql + len, sizeof(sql) - (size_t)len,
				" AND id IN (SELECT profile FROM profile_labels WHERE key=?"
				" AND value=?)");
		strcat(types, "tt");
	}
	snprintf(sql + len, sizeof(sql) - (size_t)len, " ORDER BY id");
	struct profiles *ps = s->profiles;
	struct db_conn *c;
	int rc = db_get(ps->db, &c, e);
	if (rc < 0)
		return rc;
	/* Up to 16 label pairs: pass them all, the statement uses the first
	 * n_labels (the type string says how many). */
	const char *k[16] = { 0 }, *v[16] = { 0 };
	for (int i = 0; i < 16; i++) {
		k[i] = i < pq->n_labels ? pq->label_key[i] : "";
		v[i] = i < pq->n_labels ? pq->label_value[i] : "";
	}
	struct db_rows *q = NULL;
	rc = db_query(c, &q, e, sql, types, (int64_t)(pq->id != 0), pq->id,
		      (int64_t)pq->has_from, pq->from_ns, (int64_t)pq->has_to, pq->to_ns,
		      k[0], v[0], k[1], v[1], k[2], v[2], k[3], v[3], k[4], v[4], k[5], v[5],
		      k[6], v[6], k[7], v[7], k[8], v[8], k[9], v[9], k[10], v[10], k[11], v[11],
		      k[12], v[12], k[13], v[13], k[14], v[14], k[15], v[15]);
	if (rc == 0)
		rc = select_rows(q, rows, n, e);
	db_put(ps->db, c);
	return rc;
}

int profiles_describe(struct server *s, int64_t id, void *json_obj, struct err *e)
{
	json_t *obj = json_obj, *labels = json_object(), *ids = json_array(),
	       *maps = json_array(), *missing = json_array();
	struct profiles *ps = s->profiles;
	struct db_conn *c = NULL;
	int rc = db_get(ps->db, &c, e);
	struct db_rows *q = NULL;
	if (rc == 0)
		rc = db_query(c, &q, e, "SELECT key, value FROM profile_labels WHERE profile=?"
				       " ORDER BY key", "I", id);
	if (rc == 0) {
		while (db_next(q) == 1)
			json_object_set_new(labels, db_text(q, 0), json_string(db_text(q, 1)));
		db_done(q);
		rc = db_query(c, &q, e, "SELECT ref, missing FROM profile_refs WHERE profile=?"
				       " ORDER BY ref", "I", id);
	}
	if (rc == 0) {
		while (db_next(q) == 1) {
			const char *ref = db_text(q, 0);
			bool is_map = strncmp(ref, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) == 0;
			json_array_append_new(is_map ? maps : ids,
					      json_string(is_map ? ref + strlen(PERF_MAP_PREFIX) : ref));
			if (db_int(q, 1))
				json_array_append_new(missing, json_string(ref));
		}
		db_done(q);
	}
	if (c)
		db_put(ps->db, c);
	json_object_set_new(obj, "labels", labels);
	json_object_set_new(obj, "build_ids", ids);
	json_object_set_new(obj, "perf_maps", maps);
	json_object_set_new(obj, "missing", missing);
	return rc;
}

/* ---- symbolizing ---- */

struct resolved_id {
	char build_id[BUILD_ID_HEX_MAX];
	int rc; /* symz_acquire's */
	struct symz_handle h;
};

struct resolved_map {
	char sha[SHA256_HEX_LEN + 1];
	struct symz_jit_map *map; /* NULL: not stored or unreadable */
};

struct profile_resolver {
	struct core_ctx *ctx;
	struct vec ids;  /* struct resolved_id */
	struct vec maps; /* struct resolved_map */
	char kallsyms_sha[SHA256_HEX_LEN + 1];
	struct symz_kallsyms *kallsyms; /* the last one asked for; NULL: none */
};

struct profile_resolver *profile_resolver_new(struct core_ctx *ctx)
{
	struct profile_resolver *res = calloc(1, sizeof(*res));
	if (!res)
		return NULL;
	res->ctx = ctx;
	vec_init(&res->ids, sizeof(struct resolved_id));
	vec_init(&res->maps, sizeof(struct resolved_map));
	return res;
}

void profile_resolver_free(struct profile_resolver *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->ids.len; i++)
		symz_release(res->ctx->srv, &VEC_AT(&res->ids, struct resolved_id, i).h);
	for (size_t i = 0; i < res->maps.len; i++)
		symz_jit_free(VEC_AT(&res->maps, struct resolved_map, i).map);
	vec_free(&res->ids);
	vec_free(&res->maps);
	symz_kallsyms_free(res->kallsyms);
	free(res);
}

struct core_ctx *res_ctx(struct profile_resolver *res)
{
	return res->ctx;
}

bool profile_lower_hex(const char *in, char *out, size_t size, size_t min, size_t max)
{
	size_t n = strlen(in);
	if (n < min || n > max || n % 2 || n >= size)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[n] = 0;
	return true;
}

static int resolve_id(void *ctx, const char *build_id, const char *filename,
		      const struct symz_index **idx, struct err *e)
{
	struct profile_resolver *res = ctx;
	(void)filename;
	char id[BUILD_ID_HEX_MAX];
	if (!profile_lower_hex(build_id, id, sizeof(id), 2, 2 * BUILD_ID_MAX))
		return err_set(e, EINVAL, "not a hex build-ID");
	struct resolved_id *ri = NULL;
	for (size_t i = 0; i < res->ids.len && !ri; i++)
		if (strcmp(VEC_AT(&res->ids, struct resolved_id, i).build_id, id) == 0)
			ri = &VEC_AT(&res->ids, struct resolved_id, i);
	if (!ri) {
		struct symz_handle h = { 0 };
		int rc = symz_acquire(res->ctx, id, &h);
		ri = vec_push(&res->ids);
		if (!ri) {
			symz_release(res->ctx->srv, &h);
			return err_set(e, ENOMEM, "out of memory");
		}
		snprintf(ri->build_id, sizeof(ri->build_id), "%s", id);
		ri->rc = rc;
		ri->h = h;
	}
	if (ri->rc != 1)
		return err_set(e, ENOENT, "%s", ri->rc == 0 ? "no debuginfo"
					   : ri->rc == -EAGAIN ? "upstream unavailable"
					   : "cannot build the symbolization index");
	*idx = ri->h.idx;
	return 0;
}

/* The stored perf map with this SHA-256, parsed once per resolver. */
static int resolve_perf_map(void *ctx, const char *sha, const struct symz_jit_map **out,
			    struct err *e)
{
	struct profile_resolver *res = ctx;
	for (size_t i = 0; i < res->maps.len; i++) {
		struct resolved_map *rm = &VEC_AT(&res->maps, struct resolved_map, i);
		if (strcmp(rm->sha, sha) == 0) {
			*out = rm->map;
			return rm->map ? 0 : err_set(e, ENOENT, "perf map not stored");
		}
	}
	struct resolved_map *rm = vec_push(&res->maps);
	if (!rm)
		return err_set(e, ENOMEM, "out of memory");
	snprintf(rm->sha, sizeof(rm->sha), "%s", sha);
	uint8_t *text;
	size_t size;
	size_t bad;
	struct err why = { { 0 } };
	if (profile_blob_read(res->ctx->srv, sha, &text, &size, &why) == 0) {
		if (symz_perf_map_parse((const char *)text, size, &rm->map, &bad, &why) < 0)
			log_warn("msg=\"perf map %s: %s\"", sha, why.msg);
		free(text);
	}
	*out = rm->map;
	return rm->map ? 0 : err_set(e, ENOENT, "perf map not stored");
}

/* A stored kallsyms snapshot (kept in the perf-map store), parsed once and
 * kept while the resolver asks for the same one: the agents of one kernel
 * all send the same snapshot. */
static int resolve_kallsyms(void *ctx, const char *sha, const struct symz_kallsyms **out,
			    struct err *e)
{
	struct profile_resolver *res = ctx;
	if (strcmp(res->kallsyms_sha, sha) != 0) {
		symz_kallsyms_free(res->kallsyms);
		res->kallsyms = NULL;
		snprintf(res->kallsyms_sha, sizeof(res->kallsyms_sha), "%s", sha);
		uint8_t *text;
		size_t size;
		struct err why = { { 0 } };
		if (perf_map_known(res->ctx->srv, sha) &&
		    profile_blob_read(res->ctx->srv, sha, &text, &size, &why) == 0) {
			if (symz_kallsyms_parse((const char *)text, size, &res->kallsyms, &why) < 0)
				log_warn("msg=\"kallsyms snapshot %s: %s\"", sha, why.msg);
			free(text);
		}
	}
	*out = res->kallsyms;
	return res->kallsyms ? 0 : err_set(e, ENOENT, "kallsyms snapshot not stored");
}

static int add_missing(struct vec *missing, const char *ref)
{
	if (!missing)
		return 0;
	for (size_t i = 0; i < missing->len; i++)
		if (strcmp((const char *)missing->data + i * REF_MAX, ref) == 0)
			return 0;
	char *slot = vec_push(missing);
	if (!slot)
		return -ENOMEM;
	snprintf(slot, REF_MAX, "%s", ref);
	return 0;
}

/* Names frames through the symbolizer: build-IDs through the server's
 * index cache, JIT frames ("perf-map:<sha256>" mappings) through the stored
 * perf maps. */
int profile_symbolize(struct profile_resolver *res, struct pprof_profile *p, struct vec *missing,
		      struct err *e)
{
	struct symz_pprof_options opt = { .resolve_index = resolve_id,
					  .resolve_perf_map = resolve_perf_map,
					  .resolve_kallsyms = resolve_kallsyms,
					  .ctx = res };
	struct symz_pprof_report rep;
	int rc = symz_pprof_symbolize(p, &opt, &rep, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < rep.n_missing_ids && rc == 0; i++) {
		const struct symz_pprof_missing *mi = &rep.missing_ids[i];
		char id[BUILD_ID_HEX_MAX];
		char ref[REF_MAX];
		if (mi->perf_map)
			rc = add_missing(missing, mi->build_id);
		else if (mi->kallsyms) { /* kept with the perf maps: see collect_meta */
			snprintf(ref, sizeof(ref), PERF_MAP_PREFIX "%s", mi->build_id + strlen("kallsyms:"));
			rc = add_missing(missing, ref);
		}
		else if (profile_lower_hex(mi->build_id, id, sizeof(id), 2, 2 * BUILD_ID_MAX))
			rc = add_missing(missing, id);
	}
	symz_pprof_report_free(&rep);
	if (rc < 0)
		err_set(e, ENOMEM, "out of memory");
	return rc;
}

/* ---- the worker ---- */

/* A profile queued again (state 3) was queued because something it used
 * arrived, possibly through another replica: this replica's memory of a
 * failed index build, or its open index built from worse debuginfo, must
 * not answer for it. */
static void forget_local_state(struct server *s, int64_t id)
{
	struct profiles *ps = s->profiles;
	struct err e = { { 0 } };
	struct db_conn *c;
	if (db_get(ps->db, &c, &e) < 0)
		return;
	struct db_rows *q;
	if (db_query(c, &q, &e, "SELECT ref FROM profile_refs WHERE profile=?", "I", id) == 0) {
		while (db_next(q) == 1) {
			const char *ref = db_text(q, 0);
			if (strncmp(ref, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) == 0)
				continue;
			symz_debuginfo_arrived(s->symz_cache, ref);
			symz_cache_drop(s->symz_cache, ref);
		}
		db_done(q);
	}
	db_put(ps->db, c);
}

/* Symbolize one stored profile and record the outcome.  -EBUSY: the
 * memory budget is full, try again later (the row is left as it was). */
static int symbolize_row(struct server *s, struct profile_resolver *res,
			 const struct profile_row *row)
{
	struct profiles *ps = s->profiles;
	struct err e = { { 0 } };
	uint8_t *raw = NULL, *out = NULL;
	size_t raw_size, out_size;
	struct pprof_profile *p = NULL;
	struct vec missing;
	vec_init(&missing, REF_MAX);
	char hash[SHA256_HEX_LEN + 1] = "";
	/* The blob, its decompressed copy, the parsed profile with the lines
	 * symbolizing adds (counted as a merge), the serialized copy. */
	uint64_t blob = 0, plain = 0, need = 0;
	if (row->state == PROFILE_REDO && db_dialect(ps->db) == DB_POSTGRES)
		forget_local_state(s, row->id);
	int rc = profile_blob_sizes(s, row->raw, &blob, &plain, &e);
	if (rc == 0) {
		need = blob + plain * (2 + PROFILE_PARSE_FACTOR + PROFILE_MERGE_FACTOR);
		rc = core_reserve(res->ctx, need);
		if (rc == -EBUSY) {
			vec_free(&missing);
			return rc;
		}
		if (rc < 0) {
			err_set(&e, EFBIG, "needs about %llu bytes, over the memory budget",
				(unsigned long long)need);
			need = 0;
		}
	}
	if (rc == 0)
		rc = profile_blob_read(s, row->raw, &raw, &raw_size, &e);
	if (rc == 0)
		rc = pprof_parse(raw, raw_size, &p, &e);
	if (rc == 0)
		rc = profile_symbolize(res, p, &missing, &e);
	if (rc == 0)
		rc = pprof_serialize(p, true, &out, &out_size, &e);
	if (rc == 0)
		rc = blob_put_mem(ps->blobs, BLOB_AREA_PROFILES, out, out_size, hash, &e);
	struct db_conn *c = NULL;
	struct err dbe = { { 0 } };
	int db_rc = rc == -EAGAIN ? rc : db_get(ps->db, &c, &dbe);
	if (db_rc < 0) {
		/* The database or the blob store is away: the row stays as it
		 * was, for this replica or another to take up later. */
		log_warn("msg=\"profile %lld: storage unavailable: %s\"", (long long)row->id,
			 rc < 0 ? e.msg : dbe.msg);
	} else if (rc < 0) {
		/* Unreadable blob (the store is damaged) or out of memory:
		 * park it as partial so the worker does not spin on it. */
		log_warn("msg=\"profile %lld: cannot symbolize: %s\"", (long long)row->id, e.msg);
		db_exec(c, NULL, &dbe, "UPDATE profiles SET state=2, claim_owner='', claim_expires=0"
			" WHERE id=? AND claim_owner=?", "It", row->id, ps->owner);
	} else {
		int state = missing.len ? PROFILE_PARTIAL : PROFILE_DONE;
		/* A redo asked for meanwhile is seen by the next handle_pending
		 * (requeue_ref acts on state 2 rows only, after this). */
		int64_t mine = 0;
		db_rc = db_begin(c, &dbe);
		/* Only while the claim is still ours: a claim that expired
		 * under us belongs to another replica now, and its answer
		 * stands. */
		if (db_rc == 0)
			db_rc = db_exec(c, &mine, &dbe,
					"UPDATE profiles SET sym=?, sym_size=?, state=?, claim_owner='',"
					" claim_expires=0 WHERE id=? AND claim_owner=?",
					"tIiIt", hash, (int64_t)out_size, state, row->id, ps->owner);
		if (db_rc == 0 && mine == 0)
			db_rc = err_set(&dbe, ESTALE, "the claim expired: another replica has it");
		if (db_rc == 0)
			db_rc = db_exec(c, NULL, &dbe,
					"UPDATE profile_refs SET missing=0 WHERE profile=?", "I", row->id);
		for (size_t i = 0; db_rc == 0 && i < missing.len; i++)
			db_rc = db_exec(c, NULL, &dbe,
					"INSERT INTO profile_refs(profile, ref, missing) VALUES(?,?,1)"
					" ON CONFLICT(profile, ref) DO UPDATE SET missing=1", "It",
					row->id, (const char *)missing.data + i * REF_MAX);
		if (db_rc == 0)
			db_rc = db_commit(c, &dbe);
		if (db_rc < 0) {
			db_rollback(c);
			log_warn("msg=\"profile %lld: %s\"", (long long)row->id, dbe.msg);
			/* With the claim lost, the replica that has it may be
			 * writing the very same bytes: leave them. */
			if (db_rc != -ESTALE && strcmp(hash, row->sym) != 0)
				unlink_if_unused(ps, c, hash);
		} else {
			if (row->sym[0] && strcmp(row->sym, hash) != 0)
				unlink_if_unused(ps, c, row->sym);
			ps->counters.symbolized++;
		}
	}
	db_put(ps->db, c);
	vec_free(&missing);
	pprof_free(p);
	free(raw);
	free(out);
	core_unreserve(res->ctx, need);
	return 0;
}

/* Profiles that missed `ref` are symbolized again; with `all`, every
 * profile that uses it (its index was rebuilt from better debuginfo: names
 * from the symbol table give way to DWARF's, with lines and inlines). */
static void requeue_ref(struct server *s, const char *ref, bool all)
{
	struct err e = { { 0 } };
	int64_t n = 0;
	db_exec_pooled(s->profiles->db, &n, &e,
	       all ? "UPDATE profiles SET state=3 WHERE state IN (1,2) AND id IN"
		     " (SELECT profile FROM profile_refs WHERE ref=?)"
		   : "UPDATE profiles SET state=3 WHERE state=2 AND id IN"
		     " (SELECT profile FROM profile_refs WHERE ref=? AND missing=1)",
	       "t", ref);
	if (n > 0)
		log_info("msg=\"%s arrived: %lld profile(s) to symbolize again\"", ref, (long long)n);
}

/* Late debuginfo: what the store hook queued. */
static void handle_pending(struct server *s)
{
	struct profiles *ps = s->profiles;
	struct pending_ref batch[PENDING_MAX];
	pthread_mutex_lock(&ps->lock);
	int n = ps->n_pending;
	bool overflow = ps->pending_overflow;
	memcpy(batch, ps->pending, (size_t)n * sizeof(batch[0]));
	ps->n_pending = 0;
	ps->pending_overflow = false;
	pthread_mutex_unlock(&ps->lock);
	for (int i = 0; i < n; i++) {
		bool stale = strncmp(batch[i].ref, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) != 0 &&
			     symz_check_stale(s, batch[i].ref, batch[i].quality);
		requeue_ref(s, batch[i].ref, stale);
	}
	if (overflow) {
		struct err e = { { 0 } };
		db_exec_pooled(ps->db, NULL, &e, "UPDATE profiles SET state=3 WHERE state=?", "i", PROFILE_PARTIAL);
	}
}

/* Periodic retry: missing build-IDs are asked for again (the store, then
 * upstreams once their negative-cache entry expired). */
static void retry_missing(struct server *s, struct core_ctx *ctx)
{
	struct profiles *ps = s->profiles;
	struct vec refs;
	vec_init(&refs, REF_MAX);
	struct err e = { { 0 } };
	struct db_conn *c;
	if (db_get(ps->db, &c, &e) == 0) {
		struct db_rows *q;
		if (db_query(c, &q, &e, "SELECT DISTINCT ref FROM profile_refs WHERE missing=1"
				       " LIMIT 1000", "") == 0) {
			while (db_next(q) == 1) {
				char *slot = vec_push(&refs);
				if (slot)
					snprintf(slot, REF_MAX, "%s", db_text(q, 0));
			}
			db_done(q);
		}
		db_put(ps->db, c);
	}
	for (size_t i = 0; i < refs.len; i++) {
		const char *ref = (const char *)refs.data + i * REF_MAX;
		if (strncmp(ref, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) == 0)
			continue; /* only the agent can send it */
		struct symz_handle h = { 0 };
		if (symz_acquire(ctx, ref, &h) == 1)
			requeue_ref(s, ref, false);
		symz_release(s, &h);
	}
	vec_free(&refs);
}

/* Delete a profile's rows together, then its blobs once unused. */
static int delete_profile(struct server *s, struct db_conn *c, int64_t id, const char *raw,
			  const char *sym, struct err *e)
{
	int rc = db_begin(c, e);
	if (rc == 0)
		rc = db_exec(c, NULL, e, "DELETE FROM profile_labels WHERE profile=?", "I", id);
	if (rc == 0)
		rc = db_exec(c, NULL, e, "DELETE FROM profile_refs WHERE profile=?", "I", id);
	if (rc == 0)
		rc = db_exec(c, NULL, e, "DELETE FROM profiles WHERE id=?", "I", id);
	if (rc == 0)
		rc = db_commit(c, e);
	if (rc < 0) {
		db_rollback(c);
		return rc;
	}
	unlink_if_unused(s->profiles, c, raw);
	unlink_if_unused(s->profiles, c, sym);
	s->profiles->counters.deleted++;
	return 0;
}

/* Retention and the quota hold for every profile in the database, so in
 * a cluster for all replicas together. */
static void enforce_retention(struct server *s)
{
	struct profiles *ps = s->profiles;
	const struct server_config *cfg = &s->cfg;
	struct err e = { { 0 } };
	struct db_conn *c;
	if (db_get(ps->db, &c, &e) < 0)
		return;
	for (;;) {
		/* The oldest profile, if it is too old or over the quota. */
		struct db_rows *q;
		if (db_query(c, &q, &e,
			     "SELECT id, raw, sym, received,"
			     " (SELECT coalesce(sum(raw_size + sym_size), 0) FROM profiles)"
			     " FROM profiles ORDER BY id LIMIT 1", "") < 0)
			break;
		bool drop = false;
		int64_t id = 0;
		char raw[SHA256_HEX_LEN + 1] = "", sym[SHA256_HEX_LEN + 1] = "";
		if (db_next(q) == 1) {
			id = db_int(q, 0);
			snprintf(raw, sizeof(raw), "%s", db_text(q, 1));
			snprintf(sym, sizeof(sym), "%s", db_text(q, 2));
			int64_t received = db_int(q, 3);
			uint64_t total = (uint64_t)db_int(q, 4);
			if (cfg->profile_retention_s &&
			    received < wall_ns() - (int64_t)cfg->profile_retention_s * 1000000000)
				drop = true;
			if (cfg->profile_quota && total > cfg->profile_quota)
				drop = true;
		}
		db_done(q);
		if (!drop || delete_profile(s, c, id, raw, sym, &e) < 0)
			break;
	}
	/* Perf maps no profile names any more. */
	struct db_rows *q;
	if (db_query(c, &q, &e,
		     "SELECT sha256 FROM perf_maps WHERE received<? AND NOT EXISTS"
		     " (SELECT 1 FROM profile_refs WHERE ref='" PERF_MAP_PREFIX "'||sha256)",
		     "I", (int64_t)time(NULL) - PERF_MAP_GRACE_S) == 0) {
		struct vec gone;
		vec_init(&gone, SHA256_HEX_LEN + 1);
		while (db_next(q) == 1) {
			char *slot = vec_push(&gone);
			if (slot)
				snprintf(slot, SHA256_HEX_LEN + 1, "%s", db_text(q, 0));
		}
		db_done(q);
		for (size_t i = 0; i < gone.len; i++) {
			const char *sha = (const char *)gone.data + i * (SHA256_HEX_LEN + 1);
			if (db_exec(c, NULL, &e, "DELETE FROM perf_maps WHERE sha256=?", "t", sha) == 0)
				unlink_if_unused(ps, c, sha);
		}
		vec_free(&gone);
	}
	db_put(ps->db, c);
}

static int by_id(const void *a, const void *b)
{
	const struct profile_row *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Claim up to BATCH_MAX profiles waiting for the worker (new, or queued
 * again) that no live claim holds, oldest first.  Every replica runs a
 * worker over the same rows: the claim makes sure no profile is
 * symbolized by two of them at once. */
static int next_batch(struct server *s, struct profile_row **rows, size_t *n)
{
	struct err e = { { 0 } };
	struct profiles *ps = s->profiles;
	struct db_conn *c;
	int rc = db_get(ps->db, &c, &e);
	if (rc < 0)
		return rc;
	int64_t now = (int64_t)time(NULL);
	/* PostgreSQL: rows another replica is claiming right now are skipped
	 * rather than waited for.  sqlite has one writer at a time. */
	const char *sql = db_dialect(ps->db) == DB_POSTGRES
		? "UPDATE profiles SET claim_owner=?, claim_expires=? WHERE id IN"
		  " (SELECT id FROM profiles WHERE state IN (0,3) AND claim_expires<?"
		  "  ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING " ROW_COLUMNS
		: "UPDATE profiles SET claim_owner=?, claim_expires=? WHERE id IN"
		  " (SELECT id FROM profiles WHERE state IN (0,3) AND claim_expires<?"
		  "  ORDER BY id LIMIT ?) RETURNING " ROW_COLUMNS;
	struct db_rows *q;
	rc = db_query(c, &q, &e, sql, "tIIi", ps->owner, now + CLAIM_S, now, BATCH_MAX);
	if (rc == 0)
		rc = select_rows(q, rows, n, &e);
	db_put(ps->db, c);
	if (rc == 0 && *n > 1)
		qsort(*rows, *n, sizeof(**rows), by_id);
	return rc;
}

/* Keep this replica's claims alive while it works through a batch. */
static void renew_claims(struct profiles *ps)
{
	struct err e = { { 0 } };
	db_exec_pooled(ps->db, NULL, &e, "UPDATE profiles SET claim_expires=? WHERE claim_owner=? AND"
			     " state IN (0,3)", "It", (int64_t)time(NULL) + CLAIM_S, ps->owner);
}

static void *worker_main(void *arg)
{
	struct server *s = arg;
	struct profiles *ps = s->profiles;
	/* Background work: the core federates as the server itself. */
	struct core_ctx ctx;
	core_ctx_background(&ctx, s, "profile worker");
	uint64_t next_retry = now_ns() + (uint64_t)s->cfg.profile_retry_s * 1000000000;
	for (;;) {
		handle_pending(s);
		if (s->cfg.profile_retry_s && now_ns() >= next_retry) {
			retry_missing(s, &ctx);
			next_retry = now_ns() + (uint64_t)s->cfg.profile_retry_s * 1000000000;
		}
		enforce_retention(s); /* two small queries when nothing is due */
		struct profile_row *rows = NULL;
		size_t n = 0;
		if (next_batch(s, &rows, &n) == 0 && n) {
			/* One resolver for the batch: each build-ID's index
			 * and each perf map is opened once for all of them. */
			struct profile_resolver *res = profile_resolver_new(&ctx);
			for (size_t i = 0; res && i < n; i++) {
				pthread_mutex_lock(&ps->lock);
				bool stop = ps->stopping;
				pthread_mutex_unlock(&ps->lock);
				if (stop)
					break;
				renew_claims(ps);
				if (symbolize_row(s, res, &rows[i]) == -EBUSY)
					break; /* the budget is full: the next round */
			}
			profile_resolver_free(res);
			/* What this round did not get to goes back at once. */
			struct err e = { { 0 } };
			db_exec_pooled(ps->db, NULL, &e, "UPDATE profiles SET claim_owner='', claim_expires=0"
					     " WHERE claim_owner=? AND state IN (0,3)", "t", ps->owner);
		}
		free(rows);
		pthread_mutex_lock(&ps->lock);
		if (!ps->stopping && !ps->wake && n < BATCH_MAX) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 5;
			pthread_cond_timedwait(&ps->cond, &ps->lock, &until);
		}
		ps->wake = false;
		bool stop = ps->stopping;
		pthread_mutex_unlock(&ps->lock);
		if (stop)
			return NULL;
	}
}

void profiles_wake(struct server *s)
{
	struct profiles *ps = s->profiles;
	pthread_mutex_lock(&ps->lock);
	ps->wake = true;
	pthread_cond_broadcast(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
}

/* The store's hook: a debuginfo/executable candidate for build_id. */
static void candidate_arrived(void *ctx, const char *build_id, enum artifact_kind kind,
			      int quality)
{
	(void)kind;
	struct profiles *ps = ctx;
	symz_debuginfo_arrived(ps->srv->symz_cache, build_id);
	queue_ref(ps, build_id, quality);
}

static void queue_ref(struct profiles *ps, const char *build_id, int quality)
{
	pthread_mutex_lock(&ps->lock);
	int i;
	for (i = 0; i < ps->n_pending; i++)
		if (strcmp(ps->pending[i].ref, build_id) == 0)
			break;
	if (i < ps->n_pending) {
		if (quality > ps->pending[i].quality)
			ps->pending[i].quality = quality;
	} else if (ps->n_pending < PENDING_MAX) {
		snprintf(ps->pending[ps->n_pending].ref, REF_MAX, "%s", build_id);
		ps->pending[ps->n_pending++].quality = quality;
	} else {
		ps->pending_overflow = true;
	}
	ps->wake = true;
	pthread_cond_broadcast(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
}

int profiles_schema(struct db *db, struct err *e)
{
	bool pg = db_dialect(db) == DB_POSTGRES;
	return db_migrate(db, "profiles", pg ? schema_postgres : schema_sqlite,
			  pg ? (int)ARRAY_SIZE(schema_postgres) : (int)ARRAY_SIZE(schema_sqlite), e);
}

struct profile_counters *profiles_counters(struct server *s)
{
	return &s->profiles->counters;
}

int profiles_start(struct server *s, struct err *e)
{
	struct profiles *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return err_set(e, ENOMEM, "out of memory");
	ps->srv = s;
	ps->db = s->profiles_db;
	ps->blobs = s->blobs;
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	snprintf(ps->owner, sizeof(ps->owner), "%.64s:%d:%08lx", host, (int)getpid(),
		 (unsigned long)(now_ns() & 0xffffffff));
	int rc = profiles_schema(ps->db, e);
	if (rc < 0) {
		free(ps);
		return rc;
	}
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->cond, NULL);
	s->profiles = ps;
	store_set_candidate_hook(s->store, candidate_arrived, ps);
	if (pthread_create(&ps->worker, NULL, worker_main, s) == 0)
		ps->worker_running = true;
	else
		log_warn("msg=\"cannot start the profile worker\"");
	return 0;
}

void profiles_stop(struct server *s)
{
	struct profiles *ps = s->profiles;
	if (!ps)
		return;
	pthread_mutex_lock(&ps->lock);
	ps->stopping = true;
	pthread_cond_broadcast(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
	if (ps->worker_running)
		pthread_join(ps->worker, NULL);
	store_set_candidate_hook(s->store, NULL, NULL);
	pthread_mutex_destroy(&ps->lock);
	pthread_cond_destroy(&ps->cond);
	free(ps);
	s->profiles = NULL;
}
