/* The sqlite backend of the metadata interface (metadb.h): the embedded
 * default, one file, WAL.  Writers are serialized by a mutex of ours (a
 * transaction holds it from BEGIN to COMMIT) rather than by sqlite's busy
 * handler: cheaper, and never SQLITE_BUSY. */
#include "debuginfod-lite/metadb.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sq_db {
	char path[PATH_MAX];
	pthread_mutex_t write_lock;
};

struct sq_conn {
	sqlite3 *db;
	bool in_txn;
};

/* Statements are cached per connection by their SQL text (the server has
 * a few dozen). */
#define SQ_CACHE 64

struct sq_cached {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct sq_conn_full {
	struct sq_conn c;
	struct sq_cached cache[SQ_CACHE];
	int n_cached;
};

static int sq_open(void **impl, const char *target, unsigned timeout_s, struct err *e)
{
	(void)timeout_s; /* the busy timeout is ours: writers are serialized */
	struct sq_db *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	if (snprintf(s->path, sizeof(s->path), "%s", target) >= (int)sizeof(s->path) || !*target) {
		free(s);
		return err_set(e, EINVAL, "sqlite:%s: bad path", target);
	}
	pthread_mutex_init(&s->write_lock, NULL);
	*impl = s;
	return 0;
}

static void sq_close(void *impl)
{
	struct sq_db *s = impl;
	pthread_mutex_destroy(&s->write_lock);
	free(s);
}

static int sq_connect(void *impl, void **out, struct err *e)
{
	struct sq_db *s = impl;
	struct sq_conn_full *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ENOMEM, "out of memory");
	int rc = sqlite3_open_v2(s->path, &c->c.db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		err_set(e, EIO, "%s: %s", s->path, c->c.db ? sqlite3_errmsg(c->c.db) : "cannot open");
		sqlite3_close(c->c.db);
		free(c);
		return -EIO;
	}
	sqlite3_busy_timeout(c->c.db, 10000);
	sqlite3_exec(c->c.db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	sqlite3_exec(c->c.db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	*out = c;
	return 0;
}

static void sq_disconnect(void *impl, void *conn)
{
	(void)impl;
	struct sq_conn_full *c = conn;
	for (int i = 0; i < c->n_cached; i++) {
		sqlite3_finalize(c->cache[i].stmt);
		free((char *)c->cache[i].sql);
	}
	sqlite3_close(c->c.db);
	free(c);
}

/* The cached statement for sql (callers pass string literals or built
 * strings; the cache keys on content, so built strings work too but are
 * prepared once each). */
static sqlite3_stmt *prepared(struct sq_conn_full *c, const char *sql, bool *cached,
			      struct err *e)
{
	for (int i = 0; i < c->n_cached; i++)
		if (c->cache[i].sql == sql || strcmp(c->cache[i].sql, sql) == 0) {
			*cached = true;
			sqlite3_reset(c->cache[i].stmt);
			sqlite3_clear_bindings(c->cache[i].stmt);
			return c->cache[i].stmt;
		}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(c->c.db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK) {
		err_set(e, EIO, "sqlite prepare: %s", sqlite3_errmsg(c->c.db));
		return NULL;
	}
	/* Only literal-looking, parameterized statements are worth keeping. */
	*cached = false;
	if (c->n_cached < SQ_CACHE && strchr(sql, '?')) {
		char *copy = strdup(sql);
		if (copy) {
			c->cache[c->n_cached].sql = copy;
			c->cache[c->n_cached++].stmt = st;
			*cached = true;
		}
	}
	return st;
}

static bool is_write(const char *sql)
{
	while (*sql == ' ' || *sql == '\n')
		sql++;
	return strncasecmp(sql, "SELECT", 6) != 0;
}

struct sq_rows {
	sqlite3_stmt *st;
	bool cached;
	int first; /* the step run() already took: SQLITE_ROW/DONE */
};

static int sq_run(void *impl, void *conn, const char *sql, const struct db_param *params,
		  int n_params, struct db_rows *q, int64_t *changes, struct err *e)
{
	struct sq_db *s = impl;
	struct sq_conn_full *c = conn;
	bool lock = !c->c.in_txn && is_write(sql);
	if (lock)
		pthread_mutex_lock(&s->write_lock);
	int rc = 0;
	if (!n_params && !q) {
		/* Schemas: several statements, no parameters. */
		char *msg = NULL;
		if (sqlite3_exec(c->c.db, sql, NULL, NULL, &msg) != SQLITE_OK)
			rc = err_set(e, EIO, "sqlite: %s", msg ? msg : "?");
		sqlite3_free(msg);
		if (changes)
			*changes = sqlite3_changes(c->c.db);
		goto out;
	}
	bool cached;
	sqlite3_stmt *st = prepared(c, sql, &cached, e);
	if (!st) {
		rc = -EIO;
		goto out;
	}
	for (int i = 0; i < n_params; i++) {
		if (params[i].type == 't')
			sqlite3_bind_text(st, i + 1, params[i].text, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, i + 1, params[i].num);
	}
	int step = sqlite3_step(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = err_set(e, EIO, "sqlite: %s", sqlite3_errmsg(c->c.db));
		if (cached)
			sqlite3_reset(st);
		else
			sqlite3_finalize(st);
		goto out;
	}
	if (changes)
		*changes = sqlite3_changes(c->c.db);
	if (q) {
		struct sq_rows *r = malloc(sizeof(*r));
		if (!r) {
			rc = err_set(e, ENOMEM, "out of memory");
		} else {
			r->st = st;
			r->cached = cached;
			r->first = step;
			q->impl = r;
		}
		if (r)
			goto out;
	}
	if (cached)
		sqlite3_reset(st);
	else
		sqlite3_finalize(st);
out:
	if (lock)
		pthread_mutex_unlock(&s->write_lock);
	return rc;
}

static int sq_next(struct db_rows *q)
{
	struct sq_rows *r = q->impl;
	int step;
	if (r->first) {
		step = r->first;
		r->first = 0;
	} else {
		step = sqlite3_step(r->st);
	}
	return step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : -EIO;
}

static int64_t sq_integer(struct db_rows *q, int col)
{
	return sqlite3_column_int64(((struct sq_rows *)q->impl)->st, col);
}

static const char *sq_text(struct db_rows *q, int col)
{
	return (const char *)sqlite3_column_text(((struct sq_rows *)q->impl)->st, col);
}

static void sq_done(struct db_rows *q)
{
	struct sq_rows *r = q->impl;
	if (!r)
		return;
	if (r->cached)
		sqlite3_reset(r->st);
	else
		sqlite3_finalize(r->st);
	free(r);
}

static int sq_begin(void *impl, void *conn, struct err *e)
{
	struct sq_db *s = impl;
	struct sq_conn_full *c = conn;
	pthread_mutex_lock(&s->write_lock);
	if (sqlite3_exec(c->c.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&s->write_lock);
		return err_set(e, EIO, "sqlite BEGIN: %s", sqlite3_errmsg(c->c.db));
	}
	c->c.in_txn = true;
	return 0;
}

static int sq_end(void *impl, void *conn, bool commit, struct err *e)
{
	struct sq_db *s = impl;
	struct sq_conn_full *c = conn;
	if (!c->c.in_txn)
		return 0;
	int rc = 0;
	if (sqlite3_exec(c->c.db, commit ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) {
		rc = err_set(e, EIO, "sqlite %s: %s", commit ? "COMMIT" : "ROLLBACK",
			     sqlite3_errmsg(c->c.db));
		sqlite3_exec(c->c.db, "ROLLBACK", NULL, NULL, NULL);
	}
	c->c.in_txn = false;
	pthread_mutex_unlock(&s->write_lock);
	return rc;
}

/* One process owns a sqlite database (the data directory is this
 * server's), and its own writes void its caches as they commit
 * (store.c: candidates_changed): nobody else has anything to tell. */
static int sq_listen(void *impl, const char *channel, struct err *e)
{
	(void)impl, (void)channel, (void)e;
	return 0;
}

static int sq_changed(void *impl)
{
	(void)impl;
	return 0;
}

const struct db_backend db_backend_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.connect = sq_connect,
	.disconnect = sq_disconnect,
	.run = sq_run,
	.next = sq_next,
	.integer = sq_integer,
	.text = sq_text,
	.done = sq_done,
	.begin = sq_begin,
	.end = sq_end,
	.listen = sq_listen,
	.changed = sq_changed,
};
