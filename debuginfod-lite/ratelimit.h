/* Caps on upstream fetches for build-IDs the store lacks (upstream.c), so
 * that random build-IDs from one client cannot turn into a flood of
 * requests to the upstream servers: one token bucket for the server and one
 * per client address.  No server state: parsers and buckets take the time
 * as an argument, so tests drive them directly. */
#ifndef DEBUGINFOD_LITE_RATELIMIT_H
#define DEBUGINFOD_LITE_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "debuginfod-lite/config.h"

/* "N/s", "N/m" or "N/h" (N may have a fraction; a bare N means N/s): a
 * bucket of N tokens refilled at N per unit.  "0": no cap.  -EINVAL when
 * malformed. */
int rate_cap_parse(const char *s, struct rate_cap *out);

struct token_bucket {
	double tokens;  /* 0..burst */
	uint64_t at_ns; /* when tokens was last brought up to date */
};

/* Clients tracked at once.  A full table forgets the client unseen the
 * longest among a few candidates: forgetting hands that client a full
 * bucket again, which the global bucket still bounds. */
#define LIMITER_CLIENT_SLOTS 4096
#define LIMITER_PROBE 8

struct client_bucket {
	uint8_t key[16];   /* IPv4 as ::ffff:a.b.c.d; IPv6 cut to its /64 */
	bool live;
	uint64_t seen_ns;
	struct token_bucket b;
};

struct upstream_limiter {
	pthread_mutex_t lock;       /* fetches run on many worker threads */
	struct rate_cap global_cap, client_cap;
	struct token_bucket global;
	struct client_bucket *clients; /* LIMITER_CLIENT_SLOTS */
	uint64_t seed;              /* keys the slot hash: no chosen collisions */
};

enum limit_verdict { LIMIT_PASS = 0, LIMIT_GLOBAL, LIMIT_CLIENT };

int upstream_limiter_init(struct upstream_limiter *l, const struct rate_cap *global,
			  const struct rate_cap *client);
void upstream_limiter_free(struct upstream_limiter *l);
/* May one more upstream fetch start now?  peer is the client's address
 * (dotted IPv4 or IPv6 text); NULL or unparsable: only the global cap
 * applies (background work).  A fetch takes a token from both buckets or
 * from neither. */
enum limit_verdict upstream_limiter_take(struct upstream_limiter *l, const char *peer,
					 uint64_t now_ns);

#endif
