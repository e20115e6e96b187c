/* A whole-request deadline against slow-dribble clients (slowloris).
 * libmicrohttpd's connection timeout is an *idle* timeout: one byte every
 * few seconds keeps a connection alive for ever.  So every connection is
 * tracked from the moment it opens (and again after each completed
 * request); a reaper thread shuts down the socket of any connection whose
 * request headers (and, for buffered bodies such as /symbolize, the body)
 * have not all arrived within --request-deadline seconds.  Streamed
 * uploads are exempt once their headers are in (they have size limits and
 * the idle timeout), as is anything being answered. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct tracked_conn {
	int fd;
	uint64_t phase_start_ns; /* connection open, or the last request's end */
	bool exempt;             /* request in, or a streamed upload: not ours to cut */
	struct tracked_conn *prev, *next;
};

void deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		     enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct tracked_conn *t = calloc(1, sizeof(*t));
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!t || !ci) {
			free(t);
			*socket_context = NULL;
			return;
		}
		t->fd = ci->connect_fd;
		t->phase_start_ns = now_ns();
		pthread_mutex_lock(&s->conn_lock);
		t->next = s->conns;
		if (s->conns)
			s->conns->prev = t;
		s->conns = t;
		pthread_mutex_unlock(&s->conn_lock);
		*socket_context = t;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct tracked_conn *t = *socket_context;
		if (!t)
			return;
		/* Unlinked before MHD closes the descriptor, so the reaper
		 * never shuts down a reused fd. */
		pthread_mutex_lock(&s->conn_lock);
		if (t->prev)
			t->prev->next = t->next;
		else
			s->conns = t->next;
		if (t->next)
			t->next->prev = t->prev;
		pthread_mutex_unlock(&s->conn_lock);
		free(t);
		*socket_context = NULL;
	}
}

static struct tracked_conn *tracked(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void deadline_request_in(struct server *s, struct MHD_Connection *conn)
{
	struct tracked_conn *t = tracked(conn);
	if (!t)
		return;
	pthread_mutex_lock(&s->conn_lock);
	t->exempt = true;
	pthread_mutex_unlock(&s->conn_lock);
}

void deadline_request_done(struct server *s, struct MHD_Connection *conn)
{
	struct tracked_conn *t = tracked(conn);
	if (!t)
		return;
	pthread_mutex_lock(&s->conn_lock);
	t->exempt = false;
	t->phase_start_ns = now_ns();
	pthread_mutex_unlock(&s->conn_lock);
}

void *deadline_main(void *arg)
{
	struct server *s = arg;
	uint64_t limit = (uint64_t)s->cfg.request_deadline_s * 1000000000ull;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		if (!s->stopping)
			pthread_cond_timedwait(&s->cond, &s->lock, &until);
		bool stop = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return NULL;
		uint64_t now = now_ns();
		pthread_mutex_lock(&s->conn_lock);
		for (struct tracked_conn *t = s->conns; t; t = t->next) {
			if (t->exempt || t->fd < 0 || now - t->phase_start_ns < limit)
				continue;
			shutdown(t->fd, SHUT_RDWR); /* MHD sees the end and closes it */
			t->fd = -1;
			s->deadline_cuts++;
		}
		pthread_mutex_unlock(&s->conn_lock);
	}
}
