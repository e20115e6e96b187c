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
	struct server *srv;
	sqlite3 *db;
	pthread_mutex_t db_lock;
	pthread_t worker;
	bool worker_running;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t cond;
	bool stopping, wake;
	struct pending_ref pending[PENDING_MAX];
	int n_pending;
	bool pending_overflow; /* too many: re-check every partial profile */
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
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
	"  received INTEGER NOT NULL) WITHOUT ROWID;";

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int db_fail(struct server *s, struct err *e)
{
	return err_set(e, EIO, "profiles.sqlite: %s", sqlite3_errmsg(s->profiles->db));
}

/* Run one statement with text/integer parameters given as a format:
 * 't' text, 'i' int64.  Caller holds db_lock. */
static int db_exec(struct server *s, const char *sql, const char *types, ...)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->profiles->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	va_list ap;
	va_start(ap, types);
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(q, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

static void area_path(struct server *s, const char *hash, char *out, size_t size)
{
	store_area_path(s->store, PROFILE_AREA, hash, out, size);
}

/* Open a stored blob: its fd and stat, or -errno with the path in e. */
static int open_blob(struct server *s, const char *hash, struct stat *st, struct err *e)
{
	char path[PATH_MAX];
	area_path(s, hash, path, sizeof(path));
	struct err oe = { { 0 } };
	int fd = open_regular_file(path, st, &oe);
	return fd < 0 ? err_set(e, -fd, "%s: %s", path, oe.msg) : fd;
}

int profile_blob_read(struct server *s, const char *hash, uint8_t **data, size_t *size,
		      struct err *e)
{
	struct stat st;
	int fd = open_blob(s, hash, &st, e);
	if (fd < 0)
		return fd;
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		return err_set(e, EIO, "profile blob %s: short read", hash);
	}
	*data = buf;
	*size = got;
	return 0;
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

/* Remove a blob of the area when no row names it any more.  Caller holds
 * db_lock. */
static void unlink_if_unused(struct server *s, const char *hash)
{
	if (!hash[0])
		return;
	sqlite3_stmt *q;
	bool used = true;
	if (sqlite3_prepare_v2(s->profiles->db,
			       "SELECT 1 FROM profiles WHERE raw=?1 OR sym=?1"
			       " UNION ALL SELECT 1 FROM perf_maps WHERE sha256=?1 LIMIT 1",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
		used = sqlite3_step(q) == SQLITE_ROW;
		sqlite3_finalize(q);
	}
	if (!used) {
		char path[PATH_MAX];
		area_path(s, hash, path, sizeof(path));
		unlink(path);
	}
}

static void queue_ref(struct profiles *ps, const char *ref, int quality);

/* ---- storing ---- */

int profiles_insert(struct server *s, const void *body, size_t size,
		    const struct profile_meta *m, int64_t *id, struct err *e)
{
	char hash[SHA256_HEX_LEN + 1];
	int rc = store_put_area(s->store, PROFILE_AREA, body, size, hash, e);
	if (rc < 0)
		return rc;
	struct profiles *ps = s->profiles;
	pthread_mutex_lock(&ps->db_lock);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(ps->db, "SELECT id FROM profiles WHERE raw=?1", -1, &q, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
		bool dup = sqlite3_step(q) == SQLITE_ROW;
		if (dup)
			*id = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		if (dup) {
			pthread_mutex_unlock(&ps->db_lock);
			return 0;
		}
	}
	rc = sqlite3_exec(ps->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (rc == 0)
		rc = db_exec(s,
			     "INSERT INTO profiles(raw, raw_size, received, t_start, t_end, samples,"
			     " sample_types, state) VALUES(?1,?2,?3,?4,?5,?6,?7,0)",
			     "tiiiiit", hash, (int64_t)size, m->received, m->t_start, m->t_end,
			     (int64_t)m->samples, m->sample_types);
	int64_t new_id = sqlite3_last_insert_rowid(ps->db);
	for (int i = 0; rc == 0 && i < m->n_labels; i++)
		rc = db_exec(s, "INSERT OR REPLACE INTO profile_labels VALUES(?1,?2,?3)", "itt",
			     new_id, m->label_key[i], m->label_value[i]);
	for (size_t i = 0; rc == 0 && i < m->refs.len; i++)
		rc = db_exec(s, "INSERT OR IGNORE INTO profile_refs(profile, ref) VALUES(?1,?2)",
			     "it", new_id, (const char *)m->refs.data + i * REF_MAX);
	if (rc == 0 && sqlite3_exec(ps->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc < 0) {
		db_fail(s, e);
		sqlite3_exec(ps->db, "ROLLBACK", NULL, NULL, NULL);
		unlink_if_unused(s, hash);
	}
	pthread_mutex_unlock(&ps->db_lock);
	if (rc < 0)
		return rc;
	*id = new_id;
	profiles_wake(s);
	return 1;
}

int perf_map_insert(struct server *s, const void *text, size_t size, char *sha, bool *was_new,
		    struct err *e)
{
	int rc = store_put_area(s->store, PROFILE_AREA, text, size, sha, e);
	if (rc < 0)
		return rc;
	struct profiles *ps = s->profiles;
	pthread_mutex_lock(&ps->db_lock);
	rc = db_exec(s, "INSERT OR IGNORE INTO perf_maps VALUES(?1,?2,?3)", "tii", sha,
		     (int64_t)size, (int64_t)time(NULL));
	*was_new = sqlite3_changes(ps->db) > 0;
	if (rc < 0)
		db_fail(s, e);
	pthread_mutex_unlock(&ps->db_lock);
	if (rc == 0 && *was_new) {
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
	bool known = false;
	sqlite3_stmt *q;
	pthread_mutex_lock(&ps->db_lock);
	if (sqlite3_prepare_v2(ps->db, "SELECT 1 FROM perf_maps WHERE sha256=?1", -1, &q, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
		known = sqlite3_step(q) == SQLITE_ROW;
		sqlite3_finalize(q);
	}
	pthread_mutex_unlock(&ps->db_lock);
	return known;
}

/* ---- querying ---- */

static void row_read(sqlite3_stmt *q, struct profile_row *r)
{
	r->id = sqlite3_column_int64(q, 0);
	snprintf(r->raw, sizeof(r->raw), "%s", (const char *)sqlite3_column_text(q, 1));
	snprintf(r->sym, sizeof(r->sym), "%s", (const char *)sqlite3_column_text(q, 2));
	r->raw_size = (uint64_t)sqlite3_column_int64(q, 3);
	r->sym_size = (uint64_t)sqlite3_column_int64(q, 4);
	r->received = sqlite3_column_int64(q, 5);
	r->t_start = sqlite3_column_int64(q, 6);
	r->t_end = sqlite3_column_int64(q, 7);
	r->samples = (uint64_t)sqlite3_column_int64(q, 8);
	r->state = sqlite3_column_int(q, 9);
}

#define ROW_COLUMNS "id, raw, sym, raw_size, sym_size, received, t_start, t_end, samples, state"

static int select_rows(struct server *s, sqlite3_stmt *q, struct profile_row **rows, size_t *n,
		       struct err *e)
{
	struct vec v;
	vec_init(&v, sizeof(struct profile_row));
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		struct profile_row *r = vec_push(&v);
		if (!r) {
			vec_free(&v);
			return err_set(e, ENOMEM, "out of memory");
		}
		row_read(q, r);
	}
	if (step != SQLITE_DONE) {
		vec_free(&v);
		return db_fail(s, e);
	}
	*rows = v.data;
	*n = v.len;
	return 0;
}

int profiles_query(struct server *s, const struct profile_query *pq, struct profile_row **rows,
		   size_t *n, struct err *e)
{
	char sql[4096];
	int len = snprintf(sql, sizeof(sql), "SELECT " ROW_COLUMNS " FROM profiles WHERE 1");
	if (pq->id)
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, " AND id=?1");
	if (pq->has_from)
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, " AND t_end>=?2");
	if (pq->has_to)
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, " AND t_start<=?3");
	for (int i = 0; i < pq->n_labels; i++)
		len += snprintf(sql + len, sizeof(sql) - (size_t)len,
				" AND id IN (SELECT profile FROM profile_labels WHERE key=?%d"
				" AND value=?%d)", 4 + 2 * i, 5 + 2 * i);
	snprintf(sql + len, sizeof(sql) - (size_t)len, " ORDER BY id");
	struct profiles *ps = s->profiles;
	pthread_mutex_lock(&ps->db_lock);
	sqlite3_stmt *q;
	int rc;
	if (sqlite3_prepare_v2(ps->db, sql, -1, &q, NULL) != SQLITE_OK) {
		rc = db_fail(s, e);
	} else {
		sqlite3_bind_int64(q, 1, pq->id);
		sqlite3_bind_int64(q, 2, pq->from_ns);
		sqlite3_bind_int64(q, 3, pq->to_ns);
		for (int i = 0; i < pq->n_labels; i++) {
			sqlite3_bind_text(q, 4 + 2 * i, pq->label_key[i], -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 5 + 2 * i, pq->label_value[i], -1, SQLITE_STATIC);
		}
		rc = select_rows(s, q, rows, n, e);
		sqlite3_finalize(q);
	}
	pthread_mutex_unlock(&ps->db_lock);
	return rc;
}

int profiles_describe(struct server *s, int64_t id, void *json_obj, struct err *e)
{
	json_t *obj = json_obj, *labels = json_object(), *ids = json_array(),
	       *maps = json_array(), *missing = json_array();
	struct profiles *ps = s->profiles;
	int rc = 0;
	pthread_mutex_lock(&ps->db_lock);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(ps->db, "SELECT key, value FROM profile_labels WHERE profile=?1"
				       " ORDER BY key", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		while (sqlite3_step(q) == SQLITE_ROW)
			json_object_set_new(labels, (const char *)sqlite3_column_text(q, 0),
					    json_string((const char *)sqlite3_column_text(q, 1)));
		sqlite3_finalize(q);
	} else {
		rc = db_fail(s, e);
	}
	if (sqlite3_prepare_v2(ps->db, "SELECT ref, missing FROM profile_refs WHERE profile=?1"
				       " ORDER BY ref", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		while (sqlite3_step(q) == SQLITE_ROW) {
			const char *ref = (const char *)sqlite3_column_text(q, 0);
			bool is_map = strncmp(ref, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) == 0;
			json_array_append_new(is_map ? maps : ids,
					      json_string(is_map ? ref + strlen(PERF_MAP_PREFIX) : ref));
			if (sqlite3_column_int(q, 1))
				json_array_append_new(missing, json_string(ref));
		}
		sqlite3_finalize(q);
	} else {
		rc = db_fail(s, e);
	}
	pthread_mutex_unlock(&ps->db_lock);
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
	struct request *r;
	struct vec ids;  /* struct resolved_id */
	struct vec maps; /* struct resolved_map */
	char kallsyms_sha[SHA256_HEX_LEN + 1];
	struct symz_kallsyms *kallsyms; /* the last one asked for; NULL: none */
};

struct profile_resolver *profile_resolver_new(struct request *r)
{
	struct profile_resolver *res = calloc(1, sizeof(*res));
	if (!res)
		return NULL;
	res->r = r;
	vec_init(&res->ids, sizeof(struct resolved_id));
	vec_init(&res->maps, sizeof(struct resolved_map));
	return res;
}

void profile_resolver_free(struct profile_resolver *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->ids.len; i++)
		symz_release(res->r->srv, &VEC_AT(&res->ids, struct resolved_id, i).h);
	for (size_t i = 0; i < res->maps.len; i++)
		symz_jit_free(VEC_AT(&res->maps, struct resolved_map, i).map);
	vec_free(&res->ids);
	vec_free(&res->maps);
	symz_kallsyms_free(res->kallsyms);
	free(res);
}

struct request *res_request(struct profile_resolver *res)
{
	return res->r;
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
		int rc = symz_acquire(res->r, id, &h);
		ri = vec_push(&res->ids);
		if (!ri) {
			symz_release(res->r->srv, &h);
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
	if (profile_blob_read(res->r->srv, sha, &text, &size, &why) == 0) {
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
		if (perf_map_known(res->r->srv, sha) &&
		    profile_blob_read(res->r->srv, sha, &text, &size, &why) == 0) {
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
	int rc = profile_blob_sizes(s, row->raw, &blob, &plain, &e);
	if (rc == 0) {
		need = blob + plain * (2 + PROFILE_PARSE_FACTOR + PROFILE_MERGE_FACTOR);
		rc = request_reserve(res_request(res), need);
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
		rc = store_put_area(s->store, PROFILE_AREA, out, out_size, hash, &e);
	pthread_mutex_lock(&ps->db_lock);
	if (rc < 0) {
		/* Unreadable blob (the store is damaged) or out of memory:
		 * park it as partial so the worker does not spin on it. */
		log_warn("msg=\"profile %lld: cannot symbolize: %s\"", (long long)row->id, e.msg);
		db_exec(s, "UPDATE profiles SET state=2 WHERE id=?1", "i", row->id);
	} else {
		sqlite3_exec(ps->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		int state = missing.len ? PROFILE_PARTIAL : PROFILE_DONE;
		/* A redo asked for meanwhile is seen by the next handle_pending
		 * (requeue_ref acts on state 2 rows only, after this). */
		db_exec(s, "UPDATE profiles SET sym=?2, sym_size=?3, state=?4 WHERE id=?1", "itii",
			row->id, hash, (int64_t)out_size, (int64_t)state);
		db_exec(s, "UPDATE profile_refs SET missing=0 WHERE profile=?1", "i", row->id);
		for (size_t i = 0; i < missing.len; i++)
			db_exec(s, "INSERT INTO profile_refs(profile, ref, missing) VALUES(?1,?2,1)"
				   " ON CONFLICT(profile, ref) DO UPDATE SET missing=1", "it",
				row->id, (const char *)missing.data + i * REF_MAX);
		sqlite3_exec(ps->db, "COMMIT", NULL, NULL, NULL);
		if (row->sym[0] && strcmp(row->sym, hash) != 0)
			unlink_if_unused(s, row->sym);
		s->profiles_symbolized++;
	}
	pthread_mutex_unlock(&ps->db_lock);
	vec_free(&missing);
	pprof_free(p);
	free(raw);
	free(out);
	request_unreserve(res_request(res), need);
	return 0;
}

/* Profiles that missed `ref` are symbolized again; with `all`, every
 * profile that uses it (its index was rebuilt from better debuginfo: names
 * from the symbol table give way to DWARF's, with lines and inlines). */
static void requeue_ref(struct server *s, const char *ref, bool all)
{
	pthread_mutex_lock(&s->profiles->db_lock);
	db_exec(s,
		all ? "UPDATE profiles SET state=3 WHERE state IN (1,2) AND id IN"
		      " (SELECT profile FROM profile_refs WHERE ref=?1)"
		    : "UPDATE profiles SET state=3 WHERE state=2 AND id IN"
		      " (SELECT profile FROM profile_refs WHERE ref=?1 AND missing=1)",
		"t", ref);
	int n = sqlite3_changes(s->profiles->db);
	pthread_mutex_unlock(&s->profiles->db_lock);
	if (n > 0)
		log_info("msg=\"%s arrived: %d profile(s) to symbolize again\"", ref, n);
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
		pthread_mutex_lock(&ps->db_lock);
		db_exec(s, "UPDATE profiles SET state=3 WHERE state=2", "");
		pthread_mutex_unlock(&ps->db_lock);
	}
}

/* Periodic retry: missing build-IDs are asked for again (the store, then
 * upstreams once their negative-cache entry expired). */
static void retry_missing(struct server *s, struct request *r)
{
	struct profiles *ps = s->profiles;
	struct vec refs;
	vec_init(&refs, REF_MAX);
	pthread_mutex_lock(&ps->db_lock);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(ps->db, "SELECT DISTINCT ref FROM profile_refs WHERE missing=1"
				       " LIMIT 1000", -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			char *slot = vec_push(&refs);
			if (slot)
				snprintf(slot, REF_MAX, "%s", (const char *)sqlite3_column_text(q, 0));
		}
		sqlite3_finalize(q);
	}
	pthread_mutex_unlock(&ps->db_lock);
	for (size_t i = 0; i < refs.len; i++) {
		const char *ref = (const char *)refs.data + i * REF_MAX;
		if (strncmp(ref, PERF_MAP_PREFIX, strlen(PERF_MAP_PREFIX)) == 0)
			continue; /* only the agent can send it */
		struct symz_handle h = { 0 };
		if (symz_acquire(r, ref, &h) == 1)
			requeue_ref(s, ref, false);
		symz_release(s, &h);
	}
	vec_free(&refs);
}

/* Delete profile rows (and their blobs once unused).  Caller holds db_lock. */
static void delete_profile(struct server *s, int64_t id, const char *raw, const char *sym)
{
	db_exec(s, "DELETE FROM profile_labels WHERE profile=?1", "i", id);
	db_exec(s, "DELETE FROM profile_refs WHERE profile=?1", "i", id);
	db_exec(s, "DELETE FROM profiles WHERE id=?1", "i", id);
	unlink_if_unused(s, raw);
	unlink_if_unused(s, sym);
	s->profiles_deleted++;
}

static void enforce_retention(struct server *s)
{
	struct profiles *ps = s->profiles;
	const struct server_config *c = &s->cfg;
	pthread_mutex_lock(&ps->db_lock);
	for (;;) {
		/* The oldest profile, if it is too old or over the quota. */
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(ps->db,
				       "SELECT id, raw, sym, received,"
				       " (SELECT coalesce(sum(raw_size + sym_size), 0) FROM profiles)"
				       " FROM profiles ORDER BY id LIMIT 1",
				       -1, &q, NULL) != SQLITE_OK)
			break;
		bool drop = false;
		int64_t id = 0;
		char raw[SHA256_HEX_LEN + 1] = "", sym[SHA256_HEX_LEN + 1] = "";
		if (sqlite3_step(q) == SQLITE_ROW) {
			id = sqlite3_column_int64(q, 0);
			snprintf(raw, sizeof(raw), "%s", (const char *)sqlite3_column_text(q, 1));
			snprintf(sym, sizeof(sym), "%s", (const char *)sqlite3_column_text(q, 2));
			int64_t received = sqlite3_column_int64(q, 3);
			uint64_t total = (uint64_t)sqlite3_column_int64(q, 4);
			if (c->profile_retention_s &&
			    received < wall_ns() - (int64_t)c->profile_retention_s * 1000000000)
				drop = true;
			if (c->profile_quota && total > c->profile_quota)
				drop = true;
		}
		sqlite3_finalize(q);
		if (!drop)
			break;
		delete_profile(s, id, raw, sym);
	}
	/* Perf maps no profile names any more. */
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(ps->db,
			       "SELECT sha256 FROM perf_maps WHERE received<?1 AND NOT EXISTS"
			       " (SELECT 1 FROM profile_refs WHERE ref='" PERF_MAP_PREFIX "'||sha256)",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, (int64_t)time(NULL) - PERF_MAP_GRACE_S);
		struct vec gone;
		vec_init(&gone, SHA256_HEX_LEN + 1);
		while (sqlite3_step(q) == SQLITE_ROW) {
			char *slot = vec_push(&gone);
			if (slot)
				snprintf(slot, SHA256_HEX_LEN + 1, "%s",
					 (const char *)sqlite3_column_text(q, 0));
		}
		sqlite3_finalize(q);
		for (size_t i = 0; i < gone.len; i++) {
			const char *sha = (const char *)gone.data + i * (SHA256_HEX_LEN + 1);
			db_exec(s, "DELETE FROM perf_maps WHERE sha256=?1", "t", sha);
			unlink_if_unused(s, sha);
		}
		vec_free(&gone);
	}
	pthread_mutex_unlock(&ps->db_lock);
}

static int next_batch(struct server *s, struct profile_row **rows, size_t *n)
{
	struct err e = { { 0 } };
	pthread_mutex_lock(&s->profiles->db_lock);
	sqlite3_stmt *q;
	int rc = -EIO;
	if (sqlite3_prepare_v2(s->profiles->db,
			       "SELECT " ROW_COLUMNS " FROM profiles WHERE state IN (0,3)"
			       " ORDER BY id LIMIT ?1", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int(q, 1, BATCH_MAX);
		rc = select_rows(s, q, rows, n, &e);
		sqlite3_finalize(q);
	}
	pthread_mutex_unlock(&s->profiles->db_lock);
	return rc;
}

static void *worker_main(void *arg)
{
	struct server *s = arg;
	struct profiles *ps = s->profiles;
	/* Background work federates like a request from us. */
	struct request r = { .srv = s, .fd = -1 };
	snprintf(r.user_agent, sizeof(r.user_agent), "debuginfod-lite profile worker");
	snprintf(r.peer, sizeof(r.peer), "127.0.0.1");
	uint64_t next_retry = now_ns() + (uint64_t)s->cfg.profile_retry_s * 1000000000;
	for (;;) {
		handle_pending(s);
		if (s->cfg.profile_retry_s && now_ns() >= next_retry) {
			retry_missing(s, &r);
			next_retry = now_ns() + (uint64_t)s->cfg.profile_retry_s * 1000000000;
		}
		enforce_retention(s); /* two small queries when nothing is due */
		struct profile_row *rows = NULL;
		size_t n = 0;
		if (next_batch(s, &rows, &n) == 0 && n) {
			/* One resolver for the batch: each build-ID's index
			 * and each perf map is opened once for all of them. */
			struct profile_resolver *res = profile_resolver_new(&r);
			for (size_t i = 0; res && i < n; i++) {
				pthread_mutex_lock(&ps->lock);
				bool stop = ps->stopping;
				pthread_mutex_unlock(&ps->lock);
				if (stop)
					break;
				if (symbolize_row(s, res, &rows[i]) == -EBUSY)
					break; /* the budget is full: the next round */
			}
			profile_resolver_free(res);
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

int profiles_start(struct server *s, struct err *e)
{
	struct profiles *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return err_set(e, ENOMEM, "out of memory");
	ps->srv = s;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/profiles.sqlite", store_dir(s->store));
	if (sqlite3_open_v2(path, &ps->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						   SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		err_set(e, EIO, "%s: %s", path, ps->db ? sqlite3_errmsg(ps->db) : "cannot open");
		sqlite3_close(ps->db);
		free(ps);
		return -EIO;
	}
	sqlite3_busy_timeout(ps->db, 10000);
	char *msg = NULL;
	if (sqlite3_exec(ps->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, EIO, "%s: %s", path, msg ? msg : "schema");
		sqlite3_free(msg);
		sqlite3_close(ps->db);
		free(ps);
		return -EIO;
	}
	sqlite3_exec(ps->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	pthread_mutex_init(&ps->db_lock, NULL);
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
	sqlite3_close(ps->db);
	pthread_mutex_destroy(&ps->db_lock);
	pthread_mutex_destroy(&ps->lock);
	pthread_cond_destroy(&ps->cond);
	free(ps);
	s->profiles = NULL;
}
