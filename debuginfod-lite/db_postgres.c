/* The PostgreSQL backend of the metadata interface (metadb.h), through
 * libpq.  Statements arrive with `?` placeholders and are sent as $1, $2…
 * (text parameters; the server infers their types from the statement).
 * A connection that is lost (CONNECTION_BAD) makes the call fail with
 * -EAGAIN: the pool drops it and the next db_get connects afresh, so the
 * server recovers without a restart when the database returns. */
#include "debuginfod-lite/metadb.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A slow database costs a request seconds, never more: connecting is
 * bounded by libpq's connect_timeout, a statement by the server's
 * statement_timeout and, should the server not answer at all (stopped,
 * partitioned), by our own wait on the socket (--db-timeout plus a
 * margin), after which the connection is dropped. */
#define PG_CONNECT_TIMEOUT_S "5"
#define PG_CLIENT_MARGIN_MS 2000

/* A lost listener is connected again at most this often. */
#define PG_LISTEN_RETRY_NS 1000000000ull

struct pg_db {
	char *uri;
	unsigned timeout_ms;
	char statement_timeout[64]; /* "-c statement_timeout=N" */
	/* db_listen: a connection of its own, polled (never waited on) by
	 * db_changed under `listen_lock`. */
	pthread_mutex_t listen_lock;
	PGconn *listener;
	char channel[64];
	bool listening, connecting;
	uint64_t retry_at;
};

static int pg_open(void **impl, const char *target, unsigned timeout_s, struct err *e)
{
	struct pg_db *p = calloc(1, sizeof(*p));
	if (!p || !(p->uri = strdup(target))) {
		free(p);
		return err_set(e, ENOMEM, "out of memory");
	}
	p->timeout_ms = (timeout_s ? timeout_s : 15) * 1000u;
	snprintf(p->statement_timeout, sizeof(p->statement_timeout),
		 "-c statement_timeout=%u", p->timeout_ms);
	pthread_mutex_init(&p->listen_lock, NULL);
	*impl = p;
	return 0;
}

static void pg_close(void *impl)
{
	struct pg_db *p = impl;
	if (p->listener)
		PQfinish(p->listener);
	pthread_mutex_destroy(&p->listen_lock);
	free(p->uri);
	free(p);
}

static int pg_connect(void *impl, void **out, struct err *e)
{
	struct pg_db *p = impl;
	const char *keys[] = { "dbname", "connect_timeout", "options", "application_name", NULL };
	const char *values[] = { p->uri, PG_CONNECT_TIMEOUT_S, p->statement_timeout,
				 "debuginfod-lite", NULL };
	/* expand_dbname: the URI's own settings come first, ours fill in. */
	PGconn *c = PQconnectdbParams(keys, values, 1);
	if (!c)
		return err_set(e, ENOMEM, "out of memory");
	if (PQstatus(c) != CONNECTION_OK) {
		err_set(e, EAGAIN, "postgresql: %s", PQerrorMessage(c));
		PQfinish(c);
		return -EAGAIN;
	}
	if (PQsetnonblocking(c, 1) != 0) {
		err_set(e, EAGAIN, "postgresql: %s", PQerrorMessage(c));
		PQfinish(c);
		return -EAGAIN;
	}
	*out = c;
	return 0;
}

static void pg_disconnect(void *impl, void *conn)
{
	(void)impl;
	PQfinish(conn);
}

/* "?"s become "$n", outside quoted strings.  out holds at least
 * strlen(sql) * 2 + 1... bounded by the caller's buffer. */
static int translate(const char *sql, char *out, size_t size)
{
	size_t o = 0;
	int n = 0;
	bool quoted = false;
	for (const char *s = sql; *s; s++) {
		if (*s == '\'')
			quoted = !quoted;
		if (*s == '?' && !quoted) {
			int w = snprintf(out + o, size - o, "$%d", ++n);
			if (w < 0 || (size_t)w >= size - o)
				return -E2BIG;
			o += (size_t)w;
			continue;
		}
		if (o + 1 >= size)
			return -E2BIG;
		out[o++] = *s;
	}
	out[o] = 0;
	return n;
}

/* Send sql (with params when n_params >= 0) and wait for its result, at
 * most the client timeout: the last result, or the first error; NULL
 * with *timed_out when the server did not answer in time. */
static PGresult *exec_bounded(struct pg_db *p, PGconn *c, const char *sql, int n_params,
			      const char *const *values, bool *timed_out)
{
	*timed_out = false;
	int sent = n_params >= 0 ? PQsendQueryParams(c, sql, n_params, NULL, values, NULL, NULL, 0)
				 : PQsendQuery(c, sql);
	if (!sent)
		return NULL;
	uint64_t deadline = now_ns() + (uint64_t)(p->timeout_ms + PG_CLIENT_MARGIN_MS) * 1000000ull;
	PGresult *keep = NULL;
	for (;;) {
		int flushed = PQflush(c);
		if (flushed < 0)
			break;
		if (flushed == 0 && !PQisBusy(c)) {
			PGresult *r = PQgetResult(c);
			if (!r)
				break;
			ExecStatusType st = PQresultStatus(r);
			bool failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
			bool keep_failed = keep && PQresultStatus(keep) != PGRES_COMMAND_OK &&
					   PQresultStatus(keep) != PGRES_TUPLES_OK;
			if (!keep_failed || failed) {
				PQclear(keep);
				keep = r;
			} else {
				PQclear(r);
			}
			continue;
		}
		uint64_t now = now_ns();
		if (now >= deadline) {
			*timed_out = true;
			PQclear(keep);
			return NULL;
		}
		struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN | (flushed ? POLLOUT : 0) };
		int pr = poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr > 0 && !PQconsumeInput(c))
			break;
	}
	return keep;
}

static int result_error(PGconn *c, PGresult *r, struct err *e)
{
	/* A lost connection, a server shutting down or a statement timeout
	 * passes; anything else is a refusal of the statement. */
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	bool transient = PQstatus(c) != CONNECTION_OK || !state ||
			 strncmp(state, "08", 2) == 0 || /* connection exception */
			 strncmp(state, "57", 2) == 0 || /* operator intervention */
			 strncmp(state, "53", 2) == 0 || /* insufficient resources */
			 strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0;
	int rc = err_set(e, transient ? EAGAIN : EIO, "postgresql: %s",
			 r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	/* A unique violation is worth telling apart (callers race on purpose). */
	if (state && strcmp(state, "23505") == 0)
		rc = -EEXIST;
	return rc;
}

static int pg_run(void *impl, void *conn, const char *sql, const struct db_param *params,
		  int n_params, struct db_rows *q, int64_t *changes, struct err *e)
{
	struct pg_db *p = impl;
	PGconn *c = conn;
	PGresult *r;
	bool timed_out = false;
	if (!n_params && !q) {
		r = exec_bounded(p, c, sql, -1, NULL, &timed_out); /* schemas: several statements */
	} else {
		size_t need = strlen(sql) * 2 + 16;
		char *text = malloc(need);
		char nums[64][24];
		const char *values[64];
		if (!text || n_params > 64) {
			free(text);
			return err_set(e, ENOMEM, "out of memory");
		}
		if (translate(sql, text, need) < 0) {
			free(text);
			return err_set(e, E2BIG, "statement too long");
		}
		for (int i = 0; i < n_params; i++) {
			if (params[i].type == 't') {
				values[i] = params[i].text;
			} else {
				snprintf(nums[i], sizeof(nums[i]), "%" PRId64, params[i].num);
				values[i] = nums[i];
			}
		}
		r = exec_bounded(p, c, text, n_params, values, &timed_out);
		free(text);
	}
	if (timed_out)
		return err_set(e, EAGAIN, "postgresql: no answer within %u ms", p->timeout_ms +
			       PG_CLIENT_MARGIN_MS);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		int rc = result_error(c, r, e);
		PQclear(r);
		return rc;
	}
	if (changes) {
		const char *n = PQcmdTuples(r);
		*changes = n && *n ? strtoll(n, NULL, 10) : 0;
	}
	if (q) {
		q->impl = r;
		q->n_rows = PQntuples(r);
		q->row = -1;
	} else {
		PQclear(r);
	}
	return 0;
}

static int pg_next(struct db_rows *q)
{
	if (q->row + 1 >= q->n_rows)
		return 0;
	q->row++;
	return 1;
}

static const char *pg_text(struct db_rows *q, int col)
{
	PGresult *r = q->impl;
	if (q->row < 0 || col >= PQnfields(r) || PQgetisnull(r, q->row, col))
		return "";
	return PQgetvalue(r, q->row, col);
}

static int64_t pg_integer(struct db_rows *q, int col)
{
	const char *t = pg_text(q, col);
	/* numeric sums come as "123" too; booleans as "t"/"f" */
	if (t[0] == 't' && !t[1])
		return 1;
	return strtoll(t, NULL, 10);
}

static void pg_done(struct db_rows *q)
{
	PQclear(q->impl);
}

static int pg_simple(struct pg_db *p, PGconn *c, const char *sql, struct err *e)
{
	bool timed_out;
	PGresult *r = exec_bounded(p, c, sql, -1, NULL, &timed_out);
	if (timed_out)
		return err_set(e, EAGAIN, "postgresql: no answer to %s", sql);
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = result_error(c, r, e);
	PQclear(r);
	return rc;
}

static int pg_begin(void *impl, void *conn, struct err *e)
{
	return pg_simple(impl, conn, "BEGIN", e);
}

static int pg_end(void *impl, void *conn, bool commit, struct err *e)
{
	return pg_simple(impl, conn, commit ? "COMMIT" : "ROLLBACK", e);
}

/* A listening connection, or NULL. */
static PGconn *listen_connect(struct pg_db *p, struct err *e)
{
	void *conn;
	if (pg_connect(p, &conn, e) < 0)
		return NULL;
	char sql[96];
	snprintf(sql, sizeof(sql), "LISTEN %s", p->channel);
	if (pg_simple(p, conn, sql, e) < 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static int pg_listen(void *impl, const char *channel, struct err *e)
{
	struct pg_db *p = impl;
	if (strspn(channel, "abcdefghijklmnopqrstuvwxyz_") != strlen(channel) ||
	    strlen(channel) >= sizeof(p->channel))
		return err_set(e, EINVAL, "bad channel name %s", channel);
	pthread_mutex_lock(&p->listen_lock);
	bool already = p->listening;
	if (!already) {
		snprintf(p->channel, sizeof(p->channel), "%s", channel);
		p->listening = true;
	}
	pthread_mutex_unlock(&p->listen_lock);
	if (already)
		return 0;
	PGconn *c = listen_connect(p, e);
	if (!c)
		return -EAGAIN; /* db_changed connects again later */
	pthread_mutex_lock(&p->listen_lock);
	p->listener = c;
	pthread_mutex_unlock(&p->listen_lock);
	return 0;
}

/* Per lookup: a non-blocking read of whatever notices the socket holds. */
static int pg_changed(void *impl)
{
	struct pg_db *p = impl;
	int rc = 0;
	pthread_mutex_lock(&p->listen_lock);
	if (!p->listening || p->connecting) {
		rc = -EAGAIN;
	} else if (!p->listener) {
		uint64_t now = now_ns();
		if (now < p->retry_at) {
			rc = -EAGAIN;
		} else {
			/* Connect outside the lock: others see -EAGAIN meanwhile. */
			p->connecting = true;
			p->retry_at = now + PG_LISTEN_RETRY_NS;
			pthread_mutex_unlock(&p->listen_lock);
			struct err ignored = { { 0 } };
			PGconn *c = listen_connect(p, &ignored);
			pthread_mutex_lock(&p->listen_lock);
			p->connecting = false;
			p->listener = c;
			rc = c ? 1 : -EAGAIN; /* notices were missed while it was down */
		}
	} else if (!PQconsumeInput(p->listener) || PQstatus(p->listener) != CONNECTION_OK) {
		PQfinish(p->listener);
		p->listener = NULL;
		p->retry_at = 0;
		rc = -EAGAIN;
	} else {
		PGnotify *n;
		while ((n = PQnotifies(p->listener))) {
			PQfreemem(n);
			rc = 1;
		}
	}
	pthread_mutex_unlock(&p->listen_lock);
	return rc;
}

const struct db_backend db_backend_postgres = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.connect = pg_connect,
	.disconnect = pg_disconnect,
	.run = pg_run,
	.next = pg_next,
	.integer = pg_integer,
	.text = pg_text,
	.done = pg_done,
	.begin = pg_begin,
	.end = pg_end,
	.listen = pg_listen,
	.changed = pg_changed,
};
