/* The strict HTTP edge: what every connection and every request passes
 * before it reaches a route (docs/security.md "The HTTP edge").
 *
 * Connection caps.  libmicrohttpd's own per-IP and global limits close
 * sockets without telling us, so they cannot be metered; instead the accept
 * policy (edge_accept) refuses a connection when its client already holds
 * --max-connections-per-client, or when --max-connections are open.  The
 * counts move on MHD's STARTED/CLOSED notifications, which come in pairs,
 * so nothing leaks when MHD drops a connection between the policy and
 * STARTED.  The price: a pool thread accepting at the same moment as
 * another may let one client exceed its cap by at most the pool size.
 *
 * Requests.  libmicrohttpd 0.9.75 takes Transfer-Encoding over
 * Content-Length and the first of two Content-Lengths; a proxy in front may
 * read them the other way, and the bytes one side takes for a body the
 * other takes for a second request.  Such requests are refused before any
 * body is read, and the connection is closed (refuse_before_body). */
#include "common/hashmap.h"
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLIENT_BUCKETS 1024

/* A client: an IPv4 address, or an IPv6 /64 (one host's share of a
 * network; a single address would let it open 2^64 "clients"). */
struct client {
	uint8_t key[16];
	unsigned open;
	struct client *next;
};

struct edge_clients {
	pthread_mutex_t lock;
	struct client *bucket[CLIENT_BUCKETS];
};

int edge_start(struct server *s, struct err *e)
{
	s->clients = calloc(1, sizeof(*s->clients));
	if (!s->clients)
		return err_set(e, ENOMEM, "out of memory");
	pthread_mutex_init(&s->clients->lock, NULL);
	return 0;
}

void edge_stop(struct server *s)
{
	struct edge_clients *c = s->clients;
	if (!c)
		return;
	for (int i = 0; i < CLIENT_BUCKETS; i++)
		while (c->bucket[i]) {
			struct client *n = c->bucket[i]->next;
			free(c->bucket[i]);
			c->bucket[i] = n;
		}
	pthread_mutex_destroy(&c->lock);
	free(c);
	s->clients = NULL;
}

static bool client_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			memcpy(key + 12, a->s6_addr + 12, 4);
		else
			memcpy(key, a->s6_addr, 8);
		return true;
	}
	return false;
}

static unsigned bucket_of(const uint8_t key[16])
{
	uint64_t h = hash_fnv1a64(key, 16);
	return (unsigned)((h ^ (h >> 32)) % CLIENT_BUCKETS);
}

/* Caller holds the lock. */
static struct client **find(struct edge_clients *c, const uint8_t key[16])
{
	struct client **p = &c->bucket[bucket_of(key)];
	while (*p && memcmp((*p)->key, key, 16) != 0)
		p = &(*p)->next;
	return p;
}

enum MHD_Result edge_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct server *s = cls;
	(void)addrlen;
	if (s->cfg.max_connections && s->conns_open >= s->cfg.max_connections) {
		s->conns_refused_global++;
		return MHD_NO;
	}
	uint8_t key[16];
	if (!s->cfg.max_connections_per_client || !client_key(addr, key))
		return MHD_YES;
	pthread_mutex_lock(&s->clients->lock);
	struct client *c = *find(s->clients, key);
	bool full = c && c->open >= s->cfg.max_connections_per_client;
	pthread_mutex_unlock(&s->clients->lock);
	if (full) {
		s->conns_refused_client++;
		return MHD_NO;
	}
	return MHD_YES;
}

void edge_notify(struct server *s, struct MHD_Connection *conn,
		 enum MHD_ConnectionNotificationCode code)
{
	bool started = code == MHD_CONNECTION_NOTIFY_STARTED;
	if (started)
		s->conns_open++;
	else
		s->conns_open--;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	uint8_t key[16];
	/* The same address at both ends: STARTED and CLOSED balance. */
	if (!ci || !client_key(ci->client_addr, key))
		return;
	pthread_mutex_lock(&s->clients->lock);
	struct client **p = find(s->clients, key);
	if (started) {
		if (!*p)
			*p = calloc(1, sizeof(**p)); /* ENOMEM: this one goes uncounted */
		if (*p) {
			memcpy((*p)->key, key, 16);
			(*p)->open++;
		}
	} else if (*p && --(*p)->open == 0) {
		struct client *gone = *p;
		*p = gone->next;
		free(gone);
	}
	pthread_mutex_unlock(&s->clients->lock);
}

size_t edge_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return http_unescape(s);
}

struct param_walk {
	struct query_param p[QUERY_MAX_PARAMS + 1];
	size_t n;
};

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct param_walk *w = cls;
	(void)kind;
	if (w->n > QUERY_MAX_PARAMS)
		return MHD_NO; /* one past the limit is enough to refuse */
	w->p[w->n].key = key ? key : "";
	w->p[w->n].value = value;
	w->n++;
	return MHD_YES;
}

struct length_walk {
	const char *first;
	bool differ;
	int te;
};

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct length_walk *w = cls;
	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		w->te++;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (!w->first)
		w->first = value ? value : "";
	else if (strcmp(w->first, value ? value : "") != 0)
		w->differ = true;
	return MHD_YES;
}

/* Only "label" may repeat (GET /profiles, AND of labels). */
static const char *const repeatable_params[] = { "label", NULL };

int edge_check(struct request *r, char *msg, size_t msz)
{
	struct server *s = r->srv;
	struct length_walk lw = { 0 };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, framing_header, &lw);
	if (lw.te > 1 || (lw.te && lw.first) || lw.differ) {
		s->edge_refused_smuggling++;
		snprintf(msg, msz, "%s\n",
			 lw.differ ? "two different Content-Length headers"
			 : lw.te > 1 ? "more than one Transfer-Encoding header"
				     : "Content-Length together with Transfer-Encoding");
		return 400;
	}
	if (has_control_byte(r->url)) {
		s->edge_refused_control++;
		snprintf(msg, msz, "control byte in the path\n");
		return 400;
	}
	struct param_walk *pw = malloc(sizeof(*pw));
	if (!pw) {
		snprintf(msg, msz, "out of memory\n");
		return 503;
	}
	pw->n = 0;
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_param, pw);
	char why[200];
	int rc = query_params_check(pw->p, pw->n, repeatable_params, why, sizeof(why));
	free(pw);
	if (rc < 0) {
		s->edge_refused_query++;
		snprintf(msg, msz, "%s\n", why);
		return 400;
	}
	return 0;
}
