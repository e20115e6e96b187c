/* The artifact store: sqlite3 index + content-addressed blobs (store.h). */
#include "debuginfod-lite/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One sqlite connection with its prepared statements.  A connection is used
 * by one thread at a time: taken from the pool, returned after the call. */
enum stmt_id {
	ST_LOOKUP,
	ST_INSERT,
	ST_FORGET_EXTERNAL,
	ST_FORGET_ONE,
	ST_SCANNED_GET,
	ST_SCANNED_SET,
	ST_FORGET_KIND,
	ST_MISS_GET,
	ST_MISS_PUT,
	ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_LOOKUP] = "SELECT loc, origin, quality, file, size, mtime, expires FROM candidates"
		      " WHERE build_id=?1 AND kind=?2 AND name=?3 AND (expires=0 OR expires>?4)"
		      " ORDER BY quality DESC, origin=1 DESC, mtime DESC LIMIT ?5",
	[ST_INSERT] = "INSERT OR REPLACE INTO candidates(build_id, kind, name, loc, origin, quality,"
		      " file, size, mtime, expires) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
	[ST_FORGET_EXTERNAL] = "DELETE FROM candidates WHERE origin=0 AND loc=?1",
	[ST_FORGET_ONE] = "DELETE FROM candidates WHERE build_id=?1 AND kind=?2 AND name=?3"
			  " AND loc=?4",
	[ST_SCANNED_GET] = "SELECT size, mtime FROM scanned WHERE path=?1",
	[ST_SCANNED_SET] = "INSERT OR REPLACE INTO scanned(path, size, mtime) VALUES(?1,?2,?3)",
	[ST_FORGET_KIND] = "DELETE FROM candidates WHERE build_id=?1 AND kind=?2",
	[ST_MISS_GET] = "SELECT 1 FROM misses WHERE build_id=?1 AND kind=?2 AND name=?3"
			" AND expires>?4",
	[ST_MISS_PUT] = "INSERT OR REPLACE INTO misses(build_id, kind, name, expires)"
			" VALUES(?1,?2,?3,?4)",
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
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
	"  expires INTEGER, PRIMARY KEY(build_id, kind, name)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"INSERT OR IGNORE INTO meta VALUES('schema', '1');"
	/* Local source rows are a cache, derived again on demand under the
	 * current source rule; an older version derived them from any DWARF. */
	"DELETE FROM candidates WHERE kind=2 AND origin=0;";

/* Unreferenced blobs younger than this are left alone by store_groom(). */
#define BLOB_GRACE_S 3600
/* The last-use time of a blob is recorded at most this often. */
#define BLOB_USE_GRANULE_S 60

struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	struct conn *next_free;
};

/* Room in PATH_MAX for "/blobs/xx/<62 hex>" and the like. */
#define STORE_DIR_MAX (PATH_MAX - 256)

struct store {
	char dir[STORE_DIR_MAX];
	char db_path[PATH_MAX];
	pthread_mutex_t pool_lock;
	struct conn *free_conns;
	/* Writers are serialized here rather than by sqlite's busy handler:
	 * cheaper and never SQLITE_BUSY. */
	pthread_mutex_t write_lock;
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
	static const char *const names[] = { "scan", "upload", "upstream", "derived" };
	return (unsigned)o < ARRAY_SIZE(names) ? names[o] : "invalid";
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->stmt[i]);
	sqlite3_close(c->db);
	free(c);
}

static int conn_new(struct store *s, struct conn **out, struct err *e)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ENOMEM, "out of memory");
	int rc = sqlite3_open_v2(s->db_path, &c->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		err_set(e, EIO, "%s: %s", s->db_path, c->db ? sqlite3_errmsg(c->db) : "cannot open");
		conn_free(c);
		return -EIO;
	}
	sqlite3_busy_timeout(c->db, 10000);
	sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	*out = c;
	return 0;
}

static struct conn *conn_get(struct store *s, struct err *e)
{
	pthread_mutex_lock(&s->pool_lock);
	struct conn *c = s->free_conns;
	if (c)
		s->free_conns = c->next_free;
	pthread_mutex_unlock(&s->pool_lock);
	if (!c && conn_new(s, &c, e) < 0)
		return NULL;
	return c;
}

static void conn_put(struct store *s, struct conn *c)
{
	pthread_mutex_lock(&s->pool_lock);
	c->next_free = s->free_conns;
	s->free_conns = c;
	pthread_mutex_unlock(&s->pool_lock);
}

static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id, struct err *e)
{
	if (!c->stmt[id] &&
	    sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
			       NULL) != SQLITE_OK) {
		err_set(e, EIO, "sqlite prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	sqlite3_reset(c->stmt[id]);
	sqlite3_clear_bindings(c->stmt[id]);
	return c->stmt[id];
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void empty_tmp_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

int store_open(struct store **out, const char *dir, struct err *e)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	char real[PATH_MAX];
	if (!realpath(dir, real)) {
		int rc = mkdir_p(dir);
		if (rc < 0 || !realpath(dir, real)) {
			free(s);
			return err_set(e, rc < 0 ? -rc : errno, "data directory %s: %s", dir,
				       strerror(rc < 0 ? -rc : errno));
		}
	}
	if (strlen(real) >= sizeof(s->dir)) {
		free(s);
		return err_set(e, ENAMETOOLONG, "data directory %s: path too long", dir);
	}
	memcpy(s->dir, real, strlen(real) + 1);
	char sub[PATH_MAX + 16];
	for (const char *const *p = (const char *const[]){ "blobs", "tmp", NULL }; *p; p++) {
		snprintf(sub, sizeof(sub), "%s/%s", s->dir, *p);
		if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
			int errnum = errno;
			free(s);
			return err_set(e, errnum, "%s: %s", sub, strerror(errnum));
		}
	}
	/* Whatever is in tmp/ was being written when we last stopped. */
	snprintf(sub, sizeof(sub), "%s/tmp", s->dir);
	empty_tmp_dir(sub);
	snprintf(s->db_path, sizeof(s->db_path), "%s/index.sqlite", s->dir);
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->write_lock, NULL);
	struct conn *c;
	int rc = conn_new(s, &c, e);
	if (rc < 0) {
		free(s);
		return rc;
	}
	char *msg = NULL;
	if (sqlite3_exec(c->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, EIO, "%s: %s", s->db_path, msg ? msg : "schema");
		sqlite3_free(msg);
		conn_free(c);
		free(s);
		return -EIO;
	}
	conn_put(s, c);
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	while (s->free_conns) {
		struct conn *c = s->free_conns;
		s->free_conns = c->next_free;
		conn_free(c);
	}
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->write_lock);
	free(s);
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

static void blob_path(const struct store *s, const char *hash, char *out, size_t size)
{
	store_area_path(s, "blobs", hash, out, size);
}

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src ? (const char *)src : "");
}

int store_lookup(struct store *s, const char *build_id, enum artifact_kind kind,
		 const char *name, struct artifact *out, int max, struct err *e)
{
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	sqlite3_stmt *q = stmt(c, ST_LOOKUP, e);
	int n = 0;
	if (!q) {
		conn_put(s, c);
		return -EIO;
	}
	sqlite3_bind_text(q, 1, build_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, kind);
	sqlite3_bind_text(q, 3, name ? name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, now_s());
	sqlite3_bind_int(q, 5, max);
	int rc;
	while (n < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct artifact *a = &out[n++];
		snprintf(a->build_id, sizeof(a->build_id), "%s", build_id);
		a->kind = kind;
		snprintf(a->name, sizeof(a->name), "%s", name ? name : "");
		a->origin = sqlite3_column_int(q, 1);
		a->quality = sqlite3_column_int(q, 2);
		copy_text(a->file, sizeof(a->file), sqlite3_column_text(q, 3));
		a->size = (uint64_t)sqlite3_column_int64(q, 4);
		a->mtime = sqlite3_column_int64(q, 5);
		a->expires = sqlite3_column_int64(q, 6);
		const unsigned char *loc = sqlite3_column_text(q, 0);
		if (a->origin == ORIGIN_SCAN) {
			a->blob[0] = 0;
			copy_text(a->path, sizeof(a->path), loc);
		} else {
			copy_text(a->blob, sizeof(a->blob), loc);
			blob_path(s, a->blob, a->path, sizeof(a->path));
		}
	}
	sqlite3_reset(q);
	conn_put(s, c);
	return n;
}

/* Run one cached write statement under the write lock.  `types` gives
 * the parameters in order: 't' text, 'i' int, 'I' int64. */
/* Bind the arguments a type string describes: 't' text, 'i' int, 'I'
 * int64, one letter per parameter in order. */
static void bind_args(sqlite3_stmt *q, const char *types, va_list ap)
{
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(q, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
		else if (types[i] == 'i')
			sqlite3_bind_int(q, i + 1, va_arg(ap, int));
		else if (types[i] == 'I')
			sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
		else
			abort(); /* a caller's type string is wrong: a bug */
	}
}

static int write_stmt(struct store *s, enum stmt_id id, struct err *e, const char *types, ...)
{
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	int rc = -EIO;
	pthread_mutex_lock(&s->write_lock);
	sqlite3_stmt *q = stmt(c, id, e);
	if (q) {
		va_list ap;
		va_start(ap, types);
		bind_args(q, types, ap);
		va_end(ap);
		rc = sqlite3_step(q) == SQLITE_DONE ? 0 : err_set(e, EIO, "sqlite: %s",
								  sqlite3_errmsg(c->db));
		sqlite3_reset(q);
	}
	pthread_mutex_unlock(&s->write_lock);
	conn_put(s, c);
	return rc;
}

/* Does query id return a row?  Its first ncols columns (int64) go to cols.
 * A database that cannot be read answers false. */
static bool read_row(struct store *s, enum stmt_id id, int64_t *cols, int ncols,
		     const char *types, ...)
{
	struct err e = { { 0 } };
	struct conn *c = conn_get(s, &e);
	if (!c)
		return false;
	bool row = false;
	sqlite3_stmt *q = stmt(c, id, &e);
	if (q) {
		va_list ap;
		va_start(ap, types);
		bind_args(q, types, ap);
		va_end(ap);
		row = sqlite3_step(q) == SQLITE_ROW;
		for (int i = 0; row && i < ncols; i++)
			cols[i] = sqlite3_column_int64(q, i);
		sqlite3_reset(q);
	}
	conn_put(s, c);
	return row;
}

static int exec_forget(struct store *s, enum stmt_id id, const struct artifact *a,
		       const char *path, struct err *e)
{
	if (id == ST_FORGET_EXTERNAL)
		return write_stmt(s, id, e, "t", path);
	return write_stmt(s, id, e, "titt", a->build_id, (int)a->kind, a->name,
			  a->origin == ORIGIN_SCAN ? a->path : a->blob);
}

int store_forget_external(struct store *s, const char *path, struct err *e)
{
	return exec_forget(s, ST_FORGET_EXTERNAL, NULL, path, e);
}

int store_open_artifact(struct store *s, const struct artifact *a, int *fd, struct stat *st,
			struct err *e)
{
	int f = open(a->path, O_RDONLY | O_CLOEXEC);
	if (f < 0 || fstat(f, st) < 0) {
		int errnum = errno;
		if (f >= 0)
			close(f);
		if (errnum == ENOENT) {
			struct err ignored = { { 0 } };
			exec_forget(s, ST_FORGET_ONE, a, NULL, &ignored);
		}
		return err_set(e, errnum, "%s: %s", a->path, strerror(errnum));
	}
	if ((uint64_t)st->st_size != a->size ||
	    (a->origin == ORIGIN_SCAN && (int64_t)st->st_mtime != a->mtime)) {
		close(f);
		/* A scanned file changed under us: forget it; the rescan will
		 * index the new content. */
		struct err ignored = { { 0 } };
		exec_forget(s, ST_FORGET_ONE, a, NULL, &ignored);
		return err_set(e, ENOENT, "%s changed since it was indexed", a->path);
	}
	/* Quota eviction goes by last use, kept as the blob's atime (its
	 * mtime stays the write time, which the unreferenced-blob grace needs).
	 * Set explicitly, so noatime mounts keep it too; at most once a
	 * minute per blob, so serving costs no extra write. */
	if (a->blob[0] && (int64_t)st->st_atime < now_s() - BLOB_USE_GRANULE_S) {
		const struct timespec used[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };
		futimens(f, used);
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
	int rc = write_stmt(s, ST_INSERT, e, "tittiitIII", a->build_id, (int)a->kind, a->name, loc,
			    (int)a->origin, (int)a->quality, a->file, (int64_t)a->size,
			    (int64_t)a->mtime, (int64_t)a->expires);
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
	return write_stmt(s, ST_FORGET_KIND, e, "ti", build_id, (int)kind);
}

int store_add_external(struct store *s, const struct artifact *a, struct err *e)
{
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
	int64_t cols[2];
	return read_row(s, ST_SCANNED_GET, cols, 2, "t", path) && (uint64_t)cols[0] == size &&
	       cols[1] == mtime;
}

int store_scanned_set(struct store *s, const char *path, uint64_t size, int64_t mtime,
		      struct err *e)
{
	return write_stmt(s, ST_SCANNED_SET, e, "tII", path, (int64_t)size, mtime);
}

int store_tmp_begin(struct store *s, struct store_tmp *t, struct err *e)
{
	t->hash.ctx = NULL;
	snprintf(t->path, sizeof(t->path), "%s/tmp/blob.XXXXXX", s->dir);
	t->fd = mkostemp(t->path, O_CLOEXEC);
	if (t->fd < 0)
		return err_set(e, errno, "%s: %s", t->path, strerror(errno));
	if (sha256_init(&t->hash) < 0) {
		store_tmp_abort(t);
		return err_set(e, ENOMEM, "out of memory");
	}
	t->size = 0;
	return 0;
}

int store_tmp_write(struct store_tmp *t, const void *data, size_t len, struct err *e)
{
	const uint8_t *p = data;
	sha256_update(&t->hash, data, len);
	t->size += len;
	while (len) {
		ssize_t n = write(t->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(e, n < 0 ? errno : EIO, "%s: write: %s", t->path,
				       strerror(n < 0 ? errno : EIO));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void store_tmp_abort(struct store_tmp *t)
{
	sha256_discard(&t->hash);
	if (t->fd >= 0) {
		close(t->fd);
		unlink(t->path);
	}
	t->fd = -1;
}

static void fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* fsync the tmp, then move it to DIR/<area>/ab/cdef… (deduplicated by
 * content).  Fills hash and path; the tmp is consumed. */
static int commit_blob(struct store *s, struct store_tmp *t, const char *area, char *hash,
		       char *path, size_t path_size, struct err *e)
{
	if (fsync(t->fd) < 0) {
		int errnum = errno;
		store_tmp_abort(t);
		return err_set(e, errnum, "fsync: %s", strerror(errnum));
	}
	close(t->fd);
	t->fd = -1;
	if (sha256_final_hex(&t->hash, hash) < 0) {
		unlink(t->path);
		return err_set(e, EIO, "%s: cannot hash the blob", t->path);
	}
	store_area_path(s, area, hash, path, path_size);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", s->dir, area);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int errnum = errno;
		unlink(t->path);
		return err_set(e, errnum, "%s: %s", dir, strerror(errnum));
	}
	snprintf(dir, sizeof(dir), "%s/%s/%.2s", s->dir, area, hash);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int errnum = errno;
		unlink(t->path);
		return err_set(e, errnum, "%s: %s", dir, strerror(errnum));
	}
	struct stat st;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size == t->size) {
		unlink(t->path); /* same content already stored */
		utimensat(AT_FDCWD, path, NULL, 0); /* keep it young for store_groom */
	} else {
		chmod(t->path, 0444);
		if (rename(t->path, path) < 0) {
			int errnum = errno;
			unlink(t->path);
			return err_set(e, errnum, "rename to %s: %s", path, strerror(errnum));
		}
		fsync_dir(path);
	}
	return 0;
}

int store_tmp_commit(struct store *s, struct store_tmp *t, struct artifact *a, struct err *e)
{
	a->size = t->size;
	int rc = commit_blob(s, t, "blobs", a->blob, a->path, sizeof(a->path), e);
	if (rc < 0)
		return rc;
	if (!a->mtime)
		a->mtime = now_s();
	return insert_candidate(s, a, a->blob, e);
}

void store_area_path(const struct store *s, const char *area, const char *hash, char *out,
		     size_t size)
{
	snprintf(out, size, "%s/%s/%.2s/%s", s->dir, area, hash, hash + 2);
}

/* A temporary blob holding data, ready to commit (aborted on failure). */
static int tmp_from_mem(struct store *s, struct store_tmp *t, const void *data, size_t size,
			struct err *e)
{
	int rc = store_tmp_begin(s, t, e);
	if (rc < 0)
		return rc;
	rc = store_tmp_write(t, data, size, e);
	if (rc < 0)
		store_tmp_abort(t);
	return rc;
}

int store_put_area(struct store *s, const char *area, const void *data, size_t size, char *hash,
		   struct err *e)
{
	struct store_tmp t;
	int rc = tmp_from_mem(s, &t, data, size, e);
	if (rc < 0)
		return rc;
	char path[PATH_MAX];
	return commit_blob(s, &t, area, hash, path, sizeof(path), e);
}

int store_put_mem(struct store *s, const void *data, size_t size, struct artifact *a,
		  struct err *e)
{
	struct store_tmp t;
	int rc = tmp_from_mem(s, &t, data, size, e);
	return rc < 0 ? rc : store_tmp_commit(s, &t, a, e);
}

bool store_miss_cached(struct store *s, const char *build_id, enum artifact_kind kind,
		       const char *name)
{
	return read_row(s, ST_MISS_GET, NULL, 0, "titI", build_id, (int)kind, name ? name : "",
			now_s());
}

int store_miss_put(struct store *s, const char *build_id, enum artifact_kind kind,
		   const char *name, int64_t expires, struct err *e)
{
	return write_stmt(s, ST_MISS_PUT, e, "titI", build_id, (int)kind, name ? name : "", expires);
}

static int exec_sql(struct store *s, const char *sql, struct err *e)
{
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	char *msg = NULL;
	pthread_mutex_lock(&s->write_lock);
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg) == SQLITE_OK
			 ? 0
			 : err_set(e, EIO, "sqlite: %s", msg ? msg : "?");
	pthread_mutex_unlock(&s->write_lock);
	sqlite3_free(msg);
	conn_put(s, c);
	return rc;
}

int store_stats(struct store *s, struct store_stats *st, struct err *e)
{
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	memset(st, 0, sizeof(*st));
	sqlite3_stmt *q;
	int rc = -EIO;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT count(*), sum(origin=0),"
			       " (SELECT coalesce(sum(size),0) FROM (SELECT DISTINCT loc, size"
			       "   FROM candidates WHERE origin<>0)) FROM candidates",
			       -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW) {
			st->candidates = (uint64_t)sqlite3_column_int64(q, 0);
			st->external = (uint64_t)sqlite3_column_int64(q, 1);
			st->blobs_bytes = (uint64_t)sqlite3_column_int64(q, 2);
			rc = 0;
		}
		sqlite3_finalize(q);
	}
	if (rc < 0)
		err_set(e, EIO, "sqlite: %s", sqlite3_errmsg(c->db));
	conn_put(s, c);
	return rc;
}

/* Is blob `hash` named by any candidate? */
static bool blob_referenced(sqlite3 *db, const char *hash)
{
	sqlite3_stmt *q;
	bool used = true; /* on doubt, keep */
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM candidates WHERE loc=?1 AND origin<>0 LIMIT 1",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
		used = sqlite3_step(q) == SQLITE_ROW;
		sqlite3_finalize(q);
	}
	return used;
}

static void remove_unreferenced_blobs(struct store *s, struct conn *c)
{
	char top[PATH_MAX + 8];
	snprintf(top, sizeof(top), "%s/blobs", s->dir);
	DIR *d = opendir(top);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 2)
			continue;
		char sub[PATH_MAX + 16];
		snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
		DIR *d2 = opendir(sub);
		if (!d2)
			continue;
		struct dirent *be;
		while ((be = readdir(d2))) {
			char hash[SHA256_HEX_LEN + 8];
			if (be->d_name[0] == '.' ||
			    snprintf(hash, sizeof(hash), "%s%s", de->d_name, be->d_name) !=
				    SHA256_HEX_LEN)
				continue;
			/* Young blobs may belong to a commit whose row is
			 * not inserted yet. */
			struct stat st;
			if (fstatat(dirfd(d2), be->d_name, &st, 0) < 0 ||
			    st.st_mtime > now_s() - BLOB_GRACE_S)
				continue;
			pthread_mutex_lock(&s->write_lock);
			if (!blob_referenced(c->db, hash))
				unlinkat(dirfd(d2), be->d_name, 0);
			pthread_mutex_unlock(&s->write_lock);
		}
		closedir(d2);
	}
	closedir(d);
}

struct evictable {
	char loc[SHA256_HEX_LEN + 1];
	int64_t used; /* the blob's atime: its last use (store_open_artifact) */
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
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	struct vec cands;
	vec_init(&cands, sizeof(struct evictable));
	sqlite3_stmt *q;
	rc = -EIO;
	if (sqlite3_prepare_v2(c->db, "SELECT DISTINCT loc FROM candidates WHERE origin IN (2,3)"
				      " AND loc NOT IN (SELECT loc FROM candidates WHERE origin IN (0,1))",
			       -1, &q, NULL) == SQLITE_OK) {
		rc = 0;
		while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
			const char *loc = (const char *)sqlite3_column_text(q, 0);
			struct evictable *ev;
			if (!loc || strlen(loc) != SHA256_HEX_LEN ||
			    strspn(loc, "0123456789abcdef") != SHA256_HEX_LEN)
				continue; /* not a blob name: never quoted into SQL below */
			if (!(ev = vec_push(&cands))) {
				rc = err_set(e, ENOMEM, "out of memory");
				break;
			}
			snprintf(ev->loc, sizeof(ev->loc), "%s", loc);
			char path[PATH_MAX];
			struct stat bst;
			blob_path(s, loc, path, sizeof(path));
			ev->used = stat(path, &bst) == 0 ? (int64_t)bst.st_atime : 0;
		}
		sqlite3_finalize(q);
	}
	if (rc == -EIO)
		err_set(e, EIO, "sqlite: %s", sqlite3_errmsg(c->db));
	conn_put(s, c);
	if (rc == 0)
		qsort(cands.data, cands.len, sizeof(struct evictable), by_last_use);
	for (size_t i = 0; rc == 0 && i < cands.len && st.blobs_bytes > quota_bytes; i++) {
		const struct evictable *ev = (const struct evictable *)cands.data + i;
		char sql[128];
		snprintf(sql, sizeof(sql), "DELETE FROM candidates WHERE loc='%s'", ev->loc);
		rc = exec_sql(s, sql, e);
		if (rc == 0)
			rc = store_stats(s, &st, e);
	}
	vec_free(&cands);
	return rc;
}

int store_groom(struct store *s, uint64_t quota_bytes, struct err *e)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "DELETE FROM candidates WHERE expires<>0 AND expires<=%lld;"
		 "DELETE FROM misses WHERE expires<=%lld;",
		 (long long)now_s(), (long long)now_s());
	int rc = exec_sql(s, sql, e);
	if (rc < 0)
		return rc;
	if (quota_bytes) {
		rc = evict_to_quota(s, quota_bytes, e);
		if (rc < 0)
			return rc;
	}
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	remove_unreferenced_blobs(s, c);
	conn_put(s, c);
	return 0;
}

int store_metadata(struct store *s, bool glob, const char *value, store_meta_fn fn, void *ctx,
		   struct err *e)
{
	struct conn *c = conn_get(s, e);
	if (!c)
		return -EIO;
	sqlite3_stmt *q;
	int rc = -EIO;
	const char *sql = glob ? "SELECT DISTINCT build_id, kind, file FROM candidates"
				 " WHERE kind IN (0,1) AND (expires=0 OR expires>?2) AND file GLOB ?1"
				 " ORDER BY file, kind, build_id"
			       : "SELECT DISTINCT build_id, kind, file FROM candidates"
				 " WHERE kind IN (0,1) AND (expires=0 OR expires>?2) AND file=?1"
				 " ORDER BY file, kind, build_id";
	if (sqlite3_prepare_v2(c->db, sql, -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, value, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, now_s());
		int step;
		rc = 0;
		while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW)
			rc = fn(ctx, (const char *)sqlite3_column_text(q, 0),
				(enum artifact_kind)sqlite3_column_int(q, 1),
				(const char *)sqlite3_column_text(q, 2));
		if (rc == 0 && step != SQLITE_DONE)
			rc = -EIO;
		sqlite3_finalize(q);
	}
	if (rc == -EIO)
		err_set(e, EIO, "sqlite: %s", sqlite3_errmsg(c->db));
	conn_put(s, c);
	return rc < 0 ? rc : 0;
}
