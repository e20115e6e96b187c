/* Internals shared by the server's source files: the daemon state, the
 * request object, the route table and the helpers handlers use.
 *
 * Adding an endpoint: write a handler `enum MHD_Result h(struct request *)`
 * and add one line to the route table in server.c, saying who may call it
 * (route.access; docs/security.md "Who may read").  For a request body pick
 * BODY_BUFFER (whole body in r->body, bounded by route->max_body) or
 * BODY_STREAM (route->chunk is called per piece, e.g. uploads). */
#ifndef DEBUGINFOD_LITE_SERVER_INTERNAL_H
#define DEBUGINFOD_LITE_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "debuginfod-lite/budget.h"
#include "debuginfod-lite/core.h"
#include "debuginfod-lite/ratelimit.h"
#include "debuginfod-lite/server.h"
#include "debuginfod-lite/sources.h"
#include "debuginfod-lite/store.h"

struct request;

enum body_mode { BODY_NONE, BODY_BUFFER, BODY_STREAM };

struct route {
	unsigned methods;   /* METHOD_* bits */
	const char *path;   /* exact, or a prefix when it ends in '/' */
	const char *metric; /* label in /metrics */
	enum body_mode body;
	uint64_t max_body;  /* BODY_BUFFER limit */
	/* Optional: called once the headers are in, before any body; may
	 * queue a response (an early refusal: 401, 413). */
	enum MHD_Result (*begin)(struct request *r);
	/* BODY_STREAM: one piece of the body; return 0 or an HTTP status to
	 * stop reading (the rest of the body is discarded). */
	int (*chunk)(struct request *r, const char *data, size_t len);
	/* The request is complete. */
	enum MHD_Result (*handle)(struct request *r);
	/* Who may call it (docs/security.md "Who may read"). */
	enum route_access {
		ACCESS_OWN,      /* open, or begin() checks its own tokens (writes) */
		ACCESS_ARTIFACT, /* debuginfod reads: a token only under --private */
		ACCESS_READ,     /* profiles, /symbolize: a token once --read-token-file or --private */
	} access;
};

enum { METHOD_GET = 1, METHOD_HEAD = 2, METHOD_PUT = 4, METHOD_POST = 8 };

/* Latency histogram buckets, seconds. */
#define LATENCY_BUCKETS 12
extern const double latency_bucket_le[LATENCY_BUCKETS];
/* Status codes counted individually in /metrics; others go to "other". */
#define STATUS_SLOTS 16

struct route_metrics {
	atomic_uint_fast64_t by_status[STATUS_SLOTS];
	atomic_uint_fast64_t latency[LATENCY_BUCKETS];
	atomic_uint_fast64_t latency_sum_us;
	atomic_uint_fast64_t bytes;
};

/* Tokens per file, and bytes per token (with its NUL). */
#define SERVER_MAX_TOKENS 16
#define SERVER_TOKEN_SIZE 256

struct server {
	struct server_config cfg;
	/* The layers under HTTP (docs/architecture.md "Layers"): the
	 * debuginfo core (its storage, caches, caps and counters) and the
	 * profile store on top of it. */
	struct core *core;
	struct profile_store *profiles;
	struct body_cache *bodies; /* small artifacts in memory (body_cache.h) */
	struct MHD_Daemon *mhd;
	unsigned port;
	char tokens[SERVER_MAX_TOKENS][SERVER_TOKEN_SIZE]; /* --token-file: write (and read) */
	int n_tokens;
	char read_tokens[SERVER_MAX_TOKENS][SERVER_TOKEN_SIZE]; /* --read-token-file: read only */
	int n_read_tokens;
	/* The HTTP edge (edge.c): open connections per client */
	struct edge_clients *clients;
	atomic_uint_fast64_t conns_open, conns_refused_client, conns_refused_global,
		edge_refused_control, edge_refused_smuggling, edge_refused_query, reads_unauthorized;

	pthread_t scanner, watcher;
	bool scanner_running, watcher_running;
	bool rescan_now;       /* the watcher asks the scanner for a full pass */
	/* Request deadline (deadline.c) */
	pthread_t reaper;
	bool reaper_running;
	pthread_mutex_t conn_lock;
	struct tracked_conn *conns;
	atomic_uint_fast64_t deadline_cuts;
	pthread_mutex_t lock;  /* guards stop, jobs, heavy slots */
	pthread_cond_t cond;   /* jobs finished, a heavy slot freed, stop */
	bool stopping;
	int active_jobs;       /* slow-work threads with a suspended connection */

	struct route_metrics *route_metrics; /* one per route */
	atomic_uint_fast64_t symz_addresses;    /* asked by POST /symbolize */
	atomic_uint_fast64_t symbolz_addresses; /* asked by pprof (POST /symbolz) */
	atomic_uint_fast64_t scan_files, scan_indexed, uploads_ok, uploads_rejected;
	/* The heavy-work slots (guarded by lock), and transient trouble
	 * answered with a reset or a 503. */
	unsigned heavy_active, heavy_limit, heavy_waiting;
	atomic_uint_fast64_t heavy_refusals, transient_refusals;
};

/* A slow operation run on its own thread while the connection is
 * suspended; its result is read by the handler when MHD calls it again. */
typedef int (*slow_fn)(struct request *r);

struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	const struct route *route;
	int route_index;
	unsigned method;
	const char *url;
	uint64_t start_ns;
	int status;        /* what we answered, for metrics and logs */
	uint64_t bytes;

	/* BODY_BUFFER */
	struct vec body;
	/* BODY_STREAM / early refusal */
	int body_error;    /* HTTP status that stopped the body, 0 if none */
	char body_msg[256];
	uint64_t received;

	/* Parsed /buildid/<id>/<kind>[/<name>] */
	char build_id[BUILD_ID_HEX_MAX];
	enum artifact_kind kind;
	char name[ARTIFACT_NAME_MAX];

	/* What the debuginfo core knows of this request (copy_forwarding
	 * fills it before the connection is suspended). */
	struct core_ctx ctx;

	/* Slow work */
	int slow_state;    /* 0 none, 1 running, 2 done */
	int slow_result;
	slow_fn slow;

	/* Uploads */
	struct blob_tmp tmp;
	bool tmp_open;

	/* Budget bytes for the body buffer (a part of ctx.reserved, all of
	 * which is released at completion), and whether it holds a
	 * heavy-work slot. */
	uint64_t body_reserved;
	bool heavy, heavy_queued;

	/* A handler's own state across the slow call (freed at completion). */
	void *job;
	void (*job_free)(void *job);
};

/* Responses. */
enum MHD_Result respond_text(struct request *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum MHD_Result respond_json(struct request *r, unsigned status, const char *json);
enum MHD_Result respond_buffer(struct request *r, unsigned status, const char *content_type,
			       void *data, size_t size, bool free_data);
/* An artifact from the store, from its open file (fd; -1 when body is
 * given) or its bytes kept in memory (body, whose reference it takes):
 * small ones from memory, large ones by sendfile; Range, HEAD,
 * X-DEBUGINFOD-* headers, X-DEBUGINFOD-MAXSIZE. */
struct body;
enum MHD_Result respond_artifact(struct request *r, const struct artifact *a, int fd,
				 struct body *body, uint64_t size, int64_t mtime);
/* The artifact's bytes when they are kept in memory and still current
 * (a scanned file is checked with stat), else NULL (body_cache.h). */
struct body *cached_body(struct request *r, const struct artifact *a);
/* Like respond_buffer (data is malloc'ed and consumed), but compressed
 * when the client accepts gzip or zstd (encoding.c). */
enum MHD_Result respond_compressible(struct request *r, unsigned status, const char *content_type,
				     void *data, size_t size);
/* Compress data as the request's Accept-Encoding allows, when worth it
 * (not HEAD, COMPRESS_MIN..COMPRESS_MAX bytes, result smaller).  On true *out is
 * malloc'ed and *coding names the Content-Encoding. */
#define COMPRESS_MIN 256
#define COMPRESS_MAX (64u << 20)
bool compress_for_client(struct request *r, const void *data, size_t size, void **out,
			 size_t *out_size, const char **coding);
/* Transient trouble: reset the connection instead of answering, so that
 * libdebuginfod retries instead of caching a 10-minute miss. */
enum MHD_Result respond_reset(struct request *r);
/* Memory and heavy work (server.c).  request_reserve: core_reserve for
 * r; what it reserves is released when the request ends, or earlier with
 * request_unreserve. */
static inline int request_reserve(struct request *r, uint64_t bytes)
{
	return core_reserve(&r->ctx, bytes);
}
static inline void request_unreserve(struct request *r, uint64_t bytes)
{
	core_unreserve(&r->ctx, bytes);
}
/* Take one of --max-heavy slots for r (released when its slow work ends).
 * When all are busy, r queues (at most HEAVY_QUEUE_PER_SLOT per slot):
 * run_slow's thread then waits up to HEAVY_WAIT_S for a slot, and the slow
 * result is -EBUSY if none came.  false: the queue is full too (counted);
 * answer with a refusal.  Call right before run_slow. */
#define HEAVY_QUEUE_PER_SLOT 8
#define HEAVY_WAIT_S 10
bool heavy_begin(struct request *r);
/* Grow the reservation for a buffered body to cover len bytes. */
int request_reserve_body(struct request *r, size_t len);
/* The client closed its connection (checked between units of long work,
 * which is then abandoned: counted in work_abandoned). */
static inline bool client_gone(struct request *r)
{
	return core_abandoned(&r->ctx);
}
/* A refusal for want of memory or slots: rc -EBUSY -> 503 + Retry-After,
 * -EFBIG -> 413, both with `why`. */
#define RETRY_AFTER_S "5"
enum MHD_Result respond_refusal(struct request *r, int rc, const char *why);
/* Run fn on a worker thread with the connection suspended.  The handler is
 * called again afterwards with r->slow_state == 2 and r->slow_result set. */
enum MHD_Result run_slow(struct request *r, slow_fn fn);

const char *request_header(struct request *r, const char *name);
/* A valid "Authorization: Bearer <token>" from --token-file? */
bool bearer_authorized(struct request *r);
/* May r read what its route guards (route->access, --read-token-file,
 * --private)?  Tokens of --token-file read too. */
bool read_authorized(struct request *r);
/* From a route's begin(): answer now, never read the body, close after. */
enum MHD_Result refuse_before_body(struct request *r, unsigned status, const char *msg);

/* Handlers (handlers_buildid.c, upload_handler.c, metrics.c). */
enum MHD_Result handle_buildid(struct request *r);
enum MHD_Result upload_begin(struct request *r);
int upload_chunk(struct request *r, const char *data, size_t len);
enum MHD_Result upload_finish(struct request *r);
enum MHD_Result handle_metrics(struct request *r);
/* /healthz: the process answers.  /readyz: and its database and blob
 * store are reachable (503 otherwise), for load balancers. */
enum MHD_Result handle_healthz(struct request *r);
enum MHD_Result handle_readyz(struct request *r);
enum MHD_Result handle_symbolize(struct request *r);
enum MHD_Result handle_metadata(struct request *r);
enum MHD_Result handle_symbolz(struct request *r);
/* The profile store's routes (profiles_http.c). */
enum MHD_Result profiles_begin(struct request *r);
int profiles_chunk(struct request *r, const char *data, size_t len);
enum MHD_Result handle_profiles_post(struct request *r);
enum MHD_Result handle_profiles_get(struct request *r);
enum MHD_Result handle_profiles_list(struct request *r);
enum MHD_Result handle_perf_map_post(struct request *r);
enum MHD_Result handle_perf_map_get(struct request *r);

void metrics_record(struct request *r);
extern const struct route server_routes[];
extern const int server_route_count;

/* Parse "/buildid/<id>/<kind>[/<name>]" (after the prefix) into r.
 * Returns 0, or an HTTP status with a message in r->body_msg. */
int parse_buildid_path(struct request *r, const char *rest);

/* The request deadline (deadline.c): MHD's connection notifier, the
 * request's arrival (headers, or headers + buffered body) and end, and
 * the reaper thread. */
void deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		     enum MHD_ConnectionNotificationCode code);
void deadline_request_in(struct server *s, struct MHD_Connection *conn);
void deadline_request_done(struct server *s, struct MHD_Connection *conn);
void *deadline_main(void *server);

/* The HTTP edge (edge.c): connection caps per client and in all, as an
 * accept policy plus MHD's connection notifications; and the checks every
 * request passes before routing (control bytes, request smuggling,
 * repeated parameters).  edge_check returns 0 or an HTTP status with a
 * reason in msg. */
int edge_start(struct server *s, struct err *e);
void edge_stop(struct server *s);
enum MHD_Result edge_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void edge_notify(struct server *s, struct MHD_Connection *conn,
		 enum MHD_ConnectionNotificationCode code);
size_t edge_unescape(void *cls, struct MHD_Connection *conn, char *s);
int edge_check(struct request *r, char *msg, size_t msg_size);

/* The inotify thread (watch.c). */
void *watcher_main(void *server);

/* Copy X-Forwarded-For, User-Agent and the peer address into r->ctx
 * (before suspending the connection). */
void copy_forwarding(struct request *r);

#endif
