/* Token buckets for upstream fetches (ratelimit.h).
 *
 * Invariants: a bucket holds 0..burst tokens; it is brought up to date
 * (elapsed time x rate, capped at burst) before every decision; a bucket
 * seen for the first time is full.  A fetch passes only when the client's
 * bucket and the global one both hold a whole token, and then takes one
 * from each, so a refused client never drains the global bucket. */
#include "common/hashmap.h"
#include "debuginfod-lite/ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int rate_cap_parse(const char *s, struct rate_cap *out)
{
	char *end;
	errno = 0;
	double n = strtod(s, &end);
	if (errno || end == s || !isfinite(n) || n < 0 || n > 1e9)
		return -EINVAL;
	double unit_s = 1;
	if (!strcmp(end, "/m"))
		unit_s = 60;
	else if (!strcmp(end, "/h"))
		unit_s = 3600;
	else if (*end && strcmp(end, "/s"))
		return -EINVAL;
	out->per_s = n / unit_s;
	out->burst = n < 1 ? 1 : n;
	if (n == 0)
		out->burst = 0;
	return 0;
}

static void refill(struct token_bucket *b, const struct rate_cap *cap, uint64_t now_ns)
{
	if (now_ns > b->at_ns) {
		b->tokens += (double)(now_ns - b->at_ns) / 1e9 * cap->per_s;
		if (b->tokens > cap->burst)
			b->tokens = cap->burst;
		b->at_ns = now_ns;
	}
}

int upstream_limiter_init(struct upstream_limiter *l, const struct rate_cap *global,
			  const struct rate_cap *client)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->global_cap = *global;
	l->client_cap = *client;
	l->global.tokens = global->burst;
	if (client->per_s > 0 &&
	    !(l->clients = calloc(LIMITER_CLIENT_SLOTS, sizeof(*l->clients))))
		return -ENOMEM;
	if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) != sizeof(l->seed))
		l->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	return 0;
}

void upstream_limiter_free(struct upstream_limiter *l)
{
	free(l->clients);
	l->clients = NULL;
	pthread_mutex_destroy(&l->lock);
}

/* One key per host: an IPv6 host usually owns a whole /64. */
static bool client_key(const char *peer, uint8_t key[16])
{
	memset(key, 0, 16);
	if (!peer)
		return false;
	struct in_addr a4;
	if (inet_pton(AF_INET, peer, &a4) == 1) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
		return true;
	}
	if (inet_pton(AF_INET6, peer, key) == 1) {
		memset(key + 8, 0, 8);
		return true;
	}
	return false;
}

static uint64_t key_hash(uint64_t seed, const uint8_t key[16])
{
	uint64_t h = hash_fnv1a64_seeded(seed, key, 16);
	return h ^ (h >> 29);
}

/* The client's bucket: its slot, a free one, or the one unseen the longest
 * among LIMITER_PROBE neighbours. */
static struct client_bucket *client_bucket(struct upstream_limiter *l, const uint8_t key[16],
					   uint64_t now_ns)
{
	size_t start = (size_t)(key_hash(l->seed, key) % LIMITER_CLIENT_SLOTS);
	struct client_bucket *victim = NULL;
	for (size_t i = 0; i < LIMITER_PROBE; i++) {
		struct client_bucket *c = &l->clients[(start + i) % LIMITER_CLIENT_SLOTS];
		if (c->live && !memcmp(c->key, key, 16))
			return c;
		if (!victim || (victim->live && (!c->live || c->seen_ns < victim->seen_ns)))
			victim = c;
	}
	memcpy(victim->key, key, 16);
	victim->live = true;
	victim->b.tokens = l->client_cap.burst;
	victim->b.at_ns = now_ns;
	return victim;
}

enum limit_verdict upstream_limiter_take(struct upstream_limiter *l, const char *peer,
					 uint64_t now_ns)
{
	uint8_t key[16];
	enum limit_verdict v = LIMIT_PASS;
	pthread_mutex_lock(&l->lock);
	struct client_bucket *c = NULL;
	if (l->clients && client_key(peer, key)) {
		c = client_bucket(l, key, now_ns);
		c->seen_ns = now_ns;
		refill(&c->b, &l->client_cap, now_ns);
		if (c->b.tokens < 1)
			v = LIMIT_CLIENT;
	}
	bool global_on = l->global_cap.per_s > 0;
	if (v == LIMIT_PASS && global_on) {
		refill(&l->global, &l->global_cap, now_ns);
		if (l->global.tokens < 1)
			v = LIMIT_GLOBAL;
	}
	if (v == LIMIT_PASS) {
		if (c)
			c->b.tokens -= 1;
		if (global_on)
			l->global.tokens -= 1;
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}
