/* The upstream fetch caps (debuginfod-lite/ratelimit.c) driven with a
 * made-up clock: bursts, refill, the two buckets taken together, keys per
 * host, a full client table, and the flag syntax. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "debuginfod-lite/ratelimit.h"
#include "tests/lib/check.h"

#define S 1000000000ull

static int passes(struct upstream_limiter *l, const char *peer, uint64_t t, int n)
{
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += upstream_limiter_take(l, peer, t) == LIMIT_PASS;
	return ok;
}

int main(void)
{
	struct rate_cap g, c;
	CHECK(rate_cap_parse("20/s", &g) == 0 && g.per_s == 20 && g.burst == 20, "parse_per_second",
	      "%g %g", g.per_s, g.burst);
	CHECK(rate_cap_parse("3/m", &c) == 0 && c.per_s == 3.0 / 60 && c.burst == 3, "parse_per_minute",
	      "%g %g", c.per_s, c.burst);
	CHECK(rate_cap_parse("0.5", &c) == 0 && c.per_s == 0.5 && c.burst == 1, "parse_fraction",
	      "%g %g", c.per_s, c.burst);
	CHECK(rate_cap_parse("0", &c) == 0 && c.per_s == 0, "parse_off", "%g", c.per_s);
	const char *bad[] = { "", "x", "-1/s", "5/d", "nan", "inf/s", "5/s/s", "1e99" };
	int refused = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused += rate_cap_parse(bad[i], &c) == -EINVAL;
	CHECK(refused == (int)(sizeof(bad) / sizeof(bad[0])), "parse_refuses_malformed", "%d", refused);

	/* Per client 3/m, global 5/m. */
	struct upstream_limiter l;
	rate_cap_parse("5/m", &g);
	rate_cap_parse("3/m", &c);
	CHECK(upstream_limiter_init(&l, &g, &c) == 0, "init", "failed");
	uint64_t t = 1000 * S;
	CHECK(passes(&l, "10.0.0.1", t, 100) == 3, "client_burst", "wrong");
	CHECK(upstream_limiter_take(&l, "10.0.0.1", t) == LIMIT_CLIENT, "client_refusal", "wrong");
	CHECK(passes(&l, "10.0.0.2", t, 100) == 2, "global_burst_shared", "wrong");
	CHECK(upstream_limiter_take(&l, "10.0.0.3", t) == LIMIT_GLOBAL, "global_refusal", "wrong");
	/* 20 s later: one client token back, and the global bucket has 1.67. */
	CHECK(passes(&l, "10.0.0.1", t + 20 * S, 10) == 1, "client_refill", "wrong");
	/* A client refused by its own bucket takes nothing from the global one. */
	CHECK(passes(&l, "10.0.0.1", t + 20 * S, 50) == 0 && passes(&l, NULL, t + 20 * S, 5) == 0,
	      "background_global_only", "wrong");
	CHECK(passes(&l, NULL, t + 200 * S, 10) == 5, "background_not_per_client", "wrong");
	upstream_limiter_free(&l);

	/* Keys: an IPv6 /64 is one client; a full table forgets, never grows. */
	rate_cap_parse("0", &g);
	rate_cap_parse("1/h", &c);
	upstream_limiter_init(&l, &g, &c);
	CHECK(passes(&l, "2001:db8::1", t, 1) == 1 && passes(&l, "2001:db8::2", t, 1) == 0 &&
		      passes(&l, "2001:db8:0:1::1", t, 1) == 1,
	      "ipv6_by_prefix", "wrong");
	char ip[32];
	int fresh = 0;
	for (int i = 0; i < 3 * LIMITER_CLIENT_SLOTS; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		fresh += passes(&l, ip, t + (uint64_t)i, 1);
	}
	CHECK(fresh == 3 * LIMITER_CLIENT_SLOTS, "many_clients_fixed_table", "%d", fresh);
	/* The most recent client is remembered: still refused. */
	CHECK(upstream_limiter_take(&l, ip, t + 4 * LIMITER_CLIENT_SLOTS) == LIMIT_CLIENT,
	      "recent_client_kept", "wrong");
	upstream_limiter_free(&l);
	CHECK_EXIT();
}
