/* The metadata interface: pool, parameters, metrics, schema versions
 * (metadb.h).  The engines are in db_sqlite.c and db_postgres.c. */
#include "debuginfod-lite/metadb.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_MAX_PARAMS 64

struct db_conn {
	struct db *db;
	void *impl;
	bool broken; /* lost: closed instead of returned to the pool */
	bool idle;   /* just taken from the pool: may have died while it waited */
	struct db_conn *next_free;
};

struct db {
	const struct db_backend *be;
	void *impl;
	enum db_dialect dialect;
	char name[512];
	pthread_mutex_t pool_lock;
	struct db_conn *free_conns;
	struct db_metrics metrics;
};

/* "postgresql://user:secret@host/db" → "postgresql://user@host/db" */
static void redact(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
	if (at && colon && colon < at)
		snprintf(out, size, "%.*s%s", (int)(colon - url), url, at);
	else
		snprintf(out, size, "%s", url);
}

int db_open(struct db **out, const char *url, unsigned timeout_s, struct err *e)
{
	struct db *d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(e, ENOMEM, "out of memory");
	const char *target;
	if (strncmp(url, "sqlite:", 7) == 0) {
		d->be = &db_backend_sqlite;
		d->dialect = DB_SQLITE;
		target = url + 7;
	} else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
		d->be = &db_backend_postgres;
		d->dialect = DB_POSTGRES;
		target = url;
	} else {
		free(d);
		return err_set(e, EINVAL, "--db %s: expected sqlite:PATH or postgresql://…", url);
	}
	redact(url, d->name, sizeof(d->name));
	pthread_mutex_init(&d->pool_lock, NULL);
	int rc = d->be->open(&d->impl, target, timeout_s, e);
	if (rc < 0) {
		pthread_mutex_destroy(&d->pool_lock);
		free(d);
		return rc;
	}
	/* One connection now, so that a wrong URL fails at start. */
	struct db_conn *c;
	rc = db_get(d, &c, e);
	if (rc < 0) {
		db_close(d);
		return rc;
	}
	db_put(d, c);
	*out = d;
	return 0;
}

void db_close(struct db *d)
{
	if (!d)
		return;
	while (d->free_conns) {
		struct db_conn *c = d->free_conns;
		d->free_conns = c->next_free;
		d->be->disconnect(d->impl, c->impl);
		free(c);
	}
	d->be->close(d->impl);
	pthread_mutex_destroy(&d->pool_lock);
	free(d);
}

enum db_dialect db_dialect(const struct db *d)
{
	return d->dialect;
}

const char *db_name(const struct db *d)
{
	return d->name;
}

const struct db_metrics *db_metrics(const struct db *d)
{
	return &d->metrics;
}

int db_get(struct db *d, struct db_conn **out, struct err *e)
{
	pthread_mutex_lock(&d->pool_lock);
	struct db_conn *c = d->free_conns;
	if (c)
		d->free_conns = c->next_free;
	pthread_mutex_unlock(&d->pool_lock);
	if (c)
		c->idle = true;
	if (!c) {
		if (!(c = calloc(1, sizeof(*c))))
			return err_set(e, ENOMEM, "out of memory");
		c->db = d;
		int rc = d->be->connect(d->impl, &c->impl, e);
		if (rc < 0) {
			free(c);
			d->metrics.unavailable++;
			return rc;
		}
	}
	c->broken = false;
	*out = c;
	return 0;
}

/* A pooled connection may have died while idle (the database restarted):
 * its first statement failing for that is retried once on a new one.
 * Nothing was done on the dead one, so nothing runs twice. */
static bool reconnect(struct db_conn *c)
{
	if (!c->idle)
		return false;
	c->idle = false;
	void *fresh;
	struct err ignored = { { 0 } };
	if (c->db->be->connect(c->db->impl, &fresh, &ignored) < 0)
		return false;
	c->db->be->disconnect(c->db->impl, c->impl);
	c->impl = fresh;
	return true;
}

void db_put(struct db *d, struct db_conn *c)
{
	if (!c)
		return;
	if (c->broken) {
		d->be->disconnect(d->impl, c->impl);
		free(c);
		return;
	}
	pthread_mutex_lock(&d->pool_lock);
	c->next_free = d->free_conns;
	d->free_conns = c;
	pthread_mutex_unlock(&d->pool_lock);
}

static int note(struct db *d, struct db_conn *c, int rc, uint64_t start)
{
	d->metrics.statements++;
	d->metrics.latency_us += (now_ns() - start) / 1000;
	if (rc < 0) {
		d->metrics.errors++;
		if (rc == -EAGAIN) {
			c->broken = true;
			d->metrics.unavailable++;
		}
	}
	return rc;
}

static int collect(const char *types, va_list ap, struct db_param *params, struct err *e)
{
	int n = 0;
	for (; types[n]; n++) {
		if (n == DB_MAX_PARAMS)
			return err_set(e, E2BIG, "too many SQL parameters");
		struct db_param *p = &params[n];
		p->type = types[n];
		if (types[n] == 't')
			p->text = va_arg(ap, const char *);
		else if (types[n] == 'i')
			p->num = va_arg(ap, int);
		else if (types[n] == 'I')
			p->num = va_arg(ap, int64_t);
		else
			abort(); /* a caller's type string is wrong: a bug */
		if (types[n] == 't' && !p->text)
			p->text = "";
	}
	return n;
}

static int run(struct db *d, struct db_conn *c, struct db_rows *q, int64_t *changes,
	       struct err *e, const char *sql, const char *types, va_list ap)
{
	struct db_param params[DB_MAX_PARAMS];
	int n = collect(types, ap, params, e);
	if (n < 0)
		return n;
	uint64_t start = now_ns();
	int rc = d->be->run(d->impl, c->impl, sql, params, n, q, changes, e);
	if (rc == -EAGAIN && reconnect(c)) {
		err_clear(e);
		rc = d->be->run(d->impl, c->impl, sql, params, n, q, changes, e);
	}
	c->idle = false;
	return note(d, c, rc, start);
}

int db_exec(struct db_conn *c, int64_t *changes, struct err *e, const char *sql,
	    const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int rc = run(c->db, c, NULL, changes, e, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_vexec(struct db_conn *c, int64_t *changes, struct err *e, const char *sql,
	     const char *types, va_list ap)
{
	return run(c->db, c, NULL, changes, e, sql, types, ap);
}

static int vquery(struct db_conn *c, struct db_rows **out, struct err *e, const char *sql,
		  const char *types, va_list ap)
{
	struct db_rows *q = calloc(1, sizeof(*q));
	if (!q)
		return err_set(e, ENOMEM, "out of memory");
	q->db = c->db;
	q->conn = c;
	q->row = -1;
	int rc = run(c->db, c, q, NULL, e, sql, types, ap);
	if (rc < 0) {
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

int db_query(struct db_conn *c, struct db_rows **out, struct err *e, const char *sql,
	     const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int rc = vquery(c, out, e, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_next(struct db_rows *q)
{
	int rc = q->db->be->next(q);
	if (rc < 0)
		note(q->db, q->conn, rc, now_ns());
	return rc;
}

int64_t db_int(struct db_rows *q, int col)
{
	return q->db->be->integer(q, col);
}

const char *db_text(struct db_rows *q, int col)
{
	const char *t = q->db->be->text(q, col);
	return t ? t : "";
}

void db_done(struct db_rows *q)
{
	if (!q)
		return;
	q->db->be->done(q);
	free(q);
}

int db_query_int(struct db_conn *c, int64_t *out, bool *found, struct err *e, const char *sql,
		 const char *types, ...)
{
	struct db_rows *q;
	va_list ap;
	va_start(ap, types);
	int rc = vquery(c, &q, e, sql, types, ap);
	va_end(ap);
	if (rc < 0)
		return rc;
	rc = db_next(q);
	*found = rc == 1;
	if (rc == 1)
		*out = db_int(q, 0);
	db_done(q);
	return rc < 0 ? err_set(e, -rc, "reading a row failed") : 0;
}

int db_exec_pooled(struct db *d, int64_t *changes, struct err *e, const char *sql,
		   const char *types, ...)
{
	struct db_conn *c;
	int rc = db_get(d, &c, e);
	if (rc < 0)
		return rc;
	va_list ap;
	va_start(ap, types);
	rc = run(d, c, NULL, changes, e, sql, types, ap);
	va_end(ap);
	db_put(d, c);
	return rc;
}

int db_begin(struct db_conn *c, struct err *e)
{
	uint64_t start = now_ns();
	int rc = c->db->be->begin(c->db->impl, c->impl, e);
	if (rc == -EAGAIN && reconnect(c)) {
		err_clear(e);
		rc = c->db->be->begin(c->db->impl, c->impl, e);
	}
	c->idle = false;
	return note(c->db, c, rc, start);
}

int db_commit(struct db_conn *c, struct err *e)
{
	uint64_t start = now_ns();
	return note(c->db, c, c->db->be->end(c->db->impl, c->impl, true, e), start);
}

void db_rollback(struct db_conn *c)
{
	struct err ignored = { { 0 } };
	c->db->be->end(c->db->impl, c->impl, false, &ignored);
}

int db_listen(struct db *d, const char *channel, struct err *e)
{
	if (!d->be->listen)
		return err_set(e, ENOTSUP, "%s: no change notices", d->be->name);
	return d->be->listen(d->impl, channel, e);
}

int db_changed(struct db *d)
{
	return d->be->changed ? d->be->changed(d->impl) : -EAGAIN;
}

int db_ping(struct db *d, struct err *e)
{
	struct db_conn *c;
	int rc = db_get(d, &c, e);
	if (rc < 0)
		return rc;
	int64_t one;
	bool found;
	rc = db_query_int(c, &one, &found, e, "SELECT 1", "");
	db_put(d, c);
	return rc;
}

/* The versions table is created outside the steps' transactions; a step
 * and the row that records it commit together.  Two replicas starting at
 * once: the second's INSERT of the same version fails its transaction, it
 * rolls back and reads the version again. */
int db_migrate(struct db *d, const char *component, const char *const *steps, int n_steps,
	       struct err *e)
{
	struct db_conn *c;
	int rc = db_get(d, &c, e);
	if (rc < 0)
		return rc;
	rc = db_exec(c, NULL, e,
		     "CREATE TABLE IF NOT EXISTS schema_versions(component TEXT NOT NULL,"
		     " version INTEGER NOT NULL, PRIMARY KEY(component, version))", "");
	for (int attempt = 0; rc == 0 && attempt < 5; attempt++) {
		int64_t have = 0;
		bool found;
		rc = db_query_int(c, &have, &found, e,
				  "SELECT coalesce(max(version), 0) FROM schema_versions"
				  " WHERE component=?", "t", component);
		if (rc < 0)
			break;
		if (have > n_steps) {
			rc = err_set(e, EPROTO, "%s: schema version %lld of %s is newer than this"
				     " server's (%d)", d->name, (long long)have, component, n_steps);
			break;
		}
		if (have == n_steps)
			break;
		struct err step_err = { { 0 } };
		rc = db_begin(c, &step_err);
		if (rc == 0)
			rc = db_exec(c, NULL, &step_err, steps[have], "");
		if (rc == 0)
			rc = db_exec(c, NULL, &step_err,
				     "INSERT INTO schema_versions(component, version) VALUES(?, ?)",
				     "tI", component, have + 1);
		if (rc == 0)
			rc = db_commit(c, &step_err);
		if (rc < 0) {
			db_rollback(c);
			if (rc == -EAGAIN || attempt == 4) {
				err_set(e, -rc, "%s: schema %s step %lld: %s", d->name, component,
					(long long)have + 1, step_err.msg);
				break;
			}
			rc = 0; /* another replica may have done it: read again */
		} else {
			attempt = -1; /* next step */
		}
	}
	db_put(d, c);
	return rc;
}
