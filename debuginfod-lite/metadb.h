/* The metadata interface: the SQL the server keeps, over sqlite (embedded,
 * the default) or PostgreSQL (libpq), behind one small statement API.
 *
 * A `struct db` is a pool of connections to one database.  A caller takes a
 * connection (db_get), runs statements on it, and gives it back (db_put);
 * a connection is used by one thread at a time.
 *
 * Statements are written once, in the SQL both engines speak, with `?`
 * placeholders (the PostgreSQL backend numbers them $1, $2…).  What differs
 * (schemas, GLOB) is chosen by the caller from db_dialect().  Parameters are
 * described by a type string, one letter each, in order:
 *   't' text (const char *), 'i' int, 'I' int64_t.
 *
 * Errors: -EIO for a statement the database refused (a bug, a full disk),
 * -EAGAIN when the database could not be reached or the connection was lost
 * (transient: the caller answers 503 or resets, and tries again later; the
 * pool drops the broken connection and reconnects on the next db_get).
 * Writes that must stand together go in one transaction (db_begin …
 * db_commit); a failure in between leaves nothing half-written.
 *
 * Schemas are versioned: db_migrate runs the steps above the version the
 * database records in its `schema_versions` table, each in a transaction,
 * so several replicas may start at once. */
#ifndef DEBUGINFOD_LITE_METADB_H
#define DEBUGINFOD_LITE_METADB_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

enum db_dialect { DB_SQLITE, DB_POSTGRES };

struct db;
struct db_conn;
struct db_rows;

/* url: "sqlite:PATH", "postgresql://…" or "postgres://…" (a libpq URI);
 * timeout_s: longest wait for one statement (PostgreSQL; 0: 15 s).
 * 0 or -errno (e says why). */
int db_open(struct db **out, const char *url, unsigned timeout_s, struct err *e);
void db_close(struct db *d);
enum db_dialect db_dialect(const struct db *d);
/* What to print: the URL without its password. */
const char *db_name(const struct db *d);

/* A connection from the pool (opened when none is free): 0, or -EAGAIN
 * when the database is unreachable. */
int db_get(struct db *d, struct db_conn **c, struct err *e);
void db_put(struct db *d, struct db_conn *c);

/* BEGIN (sqlite: IMMEDIATE, writers serialized), COMMIT, ROLLBACK. */
int db_begin(struct db_conn *c, struct err *e);
int db_commit(struct db_conn *c, struct err *e);
void db_rollback(struct db_conn *c);

/* Run a statement that returns no rows; *changes (may be NULL) gets the
 * number of rows it inserted, updated or deleted. */
int db_exec(struct db_conn *c, int64_t *changes, struct err *e, const char *sql,
	    const char *types, ...);
int db_vexec(struct db_conn *c, int64_t *changes, struct err *e, const char *sql,
	     const char *types, va_list ap);
/* Run a query; step through its rows with db_next (1 a row, 0 the end,
 * -errno), read columns, then db_done.  A statement with RETURNING is a
 * query too. */
int db_query(struct db_conn *c, struct db_rows **out, struct err *e, const char *sql,
	     const char *types, ...);
int db_next(struct db_rows *q);
int64_t db_int(struct db_rows *q, int col);
/* Never NULL ("" for NULL). */
const char *db_text(struct db_rows *q, int col);
void db_done(struct db_rows *q);

/* Convenience: the first column of the first row as int64 (*found false
 * when no row). */
int db_query_int(struct db_conn *c, int64_t *out, bool *found, struct err *e, const char *sql,
		 const char *types, ...);

/* db_exec on a connection of its own (taken from the pool, given back). */
int db_exec_pooled(struct db *d, int64_t *changes, struct err *e, const char *sql,
		   const char *types, ...);

/* Run the schema steps above the recorded version of `component`:
 * steps[i] brings it to version i + 1. */
int db_migrate(struct db *d, const char *component, const char *const *steps, int n_steps,
	       struct err *e);

/* Reachable?  (A trivial query; /readyz.) */
int db_ping(struct db *d, struct err *e);

/* Change notices, for caches in front of the database (PostgreSQL
 * LISTEN/NOTIFY; the writers' notices come from triggers, inside their
 * transactions, so they are delivered when the write commits).
 * db_listen opens a connection of its own that listens on `channel`
 * (sqlite: one process owns the file, nothing to listen to; its db_changed
 * is always 0, the writer voiding its own caches).  db_changed never
 * blocks: 1 when a notice arrived since the last call, or the listener was
 * lost and is back (anything may have changed meanwhile); 0 when none;
 * -EAGAIN when the listener is down: trust nothing cached. */
int db_listen(struct db *d, const char *channel, struct err *e);
int db_changed(struct db *d);

/* Latency and errors, for /metrics. */
struct db_metrics {
	atomic_uint_fast64_t statements, errors, unavailable, latency_us;
};
const struct db_metrics *db_metrics(const struct db *d);

/* ---- backends (db_sqlite.c, db_postgres.c) ---- */
struct db_param {
	char type;        /* 't', 'i' or 'I' as above */
	const char *text;
	int64_t num;
};

struct db_backend {
	const char *name;
	/* target: what follows "sqlite:", or the whole libpq URI. */
	int (*open)(void **impl, const char *target, unsigned timeout_s, struct err *e);
	void (*close)(void *impl);
	int (*connect)(void *impl, void **conn, struct err *e);
	void (*disconnect)(void *impl, void *conn);
	/* Run sql with its parameters.  want_rows: fill q (q->impl, n_rows). */
	int (*run)(void *impl, void *conn, const char *sql, const struct db_param *params,
		   int n_params, struct db_rows *q, int64_t *changes, struct err *e);
	int (*next)(struct db_rows *q);
	int64_t (*integer)(struct db_rows *q, int col);
	const char *(*text)(struct db_rows *q, int col);
	void (*done)(struct db_rows *q);
	int (*begin)(void *impl, void *conn, struct err *e);
	int (*end)(void *impl, void *conn, bool commit, struct err *e);
	/* Optional (NULL: -ENOTSUP): db_listen, db_changed. */
	int (*listen)(void *impl, const char *channel, struct err *e);
	int (*changed)(void *impl);
};

/* One result being read; opaque to callers. */
struct db_rows {
	struct db *db;
	struct db_conn *conn;
	void *impl;  /* the backend's statement or result */
	int row;     /* the current row (PostgreSQL) */
	int n_rows;
};

extern const struct db_backend db_backend_sqlite, db_backend_postgres;

#endif
