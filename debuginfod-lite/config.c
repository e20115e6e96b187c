/* The defaults of every option (main.c prints them in --help). */
#include <string.h>

#include "debuginfod-lite/config.h"

void server_config_defaults(struct server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->data_dir = "./var";
	c->cache_quota = 1ull << 30;
	c->memory_cache = 64ull << 20;
	c->s3_region = "us-east-1";
	c->listen = "127.0.0.1:8002";
	c->rescan_s = 300;
	c->conn_timeout_s = 30;
	c->max_upload = 2ull << 30;
	/* Where distributions and source packages put sources: world-readable
	 * code, no secrets.  Anything else the operator names with --source-root. */
	c->source_roots[c->n_source_roots++] = "/usr/src";
	c->source_roots[c->n_source_roots++] = "/usr/include";
	c->source_roots_default = true;
	c->max_source = 64ull << 20;
	c->upstream_timeout_s = 10;
	c->upstream_max_time_s = 300;
	c->positive_ttl_s = 7 * 86400;
	c->negative_ttl_s = 600;
	c->forwarded_ttl_limit = 8;
	c->upstream_rate = (struct rate_cap){ .per_s = 20, .burst = 20 };
	c->upstream_client_rate = (struct rate_cap){ .per_s = 5, .burst = 5 };
	c->upstream_wait_ms = 5000;
	c->symz_cache = 32;
	c->request_deadline_s = 30;
	c->symbolize_max_addresses = 200000;
	c->profile_max_body = 64ull << 20;
	c->profile_retention_s = 30 * 86400;
	c->profile_retry_s = 300;
	c->profile_claim_s = 60;
	c->max_connections = 16384;
	c->max_connections_per_client = 1024;
	c->max_decompressed = 256ull << 20;
	c->max_decompressed_body = 128ull << 20;
}
