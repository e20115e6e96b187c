/* debuginfod-lite's configuration: what main.c parses from the command
 * line.  Every layer reads its part of it (the core keeps a copy), so it
 * lives apart from the HTTP layer's server.h. */
#ifndef DEBUGINFOD_LITE_CONFIG_H
#define DEBUGINFOD_LITE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define SERVER_MAX_LIST 64

/* A token bucket: refilled at per_s, holding at most burst (ratelimit.h).
 * per_s 0: no cap. */
struct rate_cap {
	double per_s, burst;
};

struct server_config {
	const char *data_dir;        /* --data, default ./var: this replica's working area */
	const char *db_url;          /* --db: sqlite:PATH (default DATA/index.sqlite) or
				      * postgresql://… */
	const char *blobs_url;       /* --blobs: file:DIR (default DATA) or s3://… */
	uint64_t cache_quota;        /* --cache-quota: local cache of remote blobs */
	uint64_t memory_cache;       /* --memory-cache: small artifacts' bytes in memory */
	unsigned db_timeout_s;       /* --db-timeout: longest wait for one statement */
	const char *s3_endpoint, *s3_region, *s3_credentials;
	const char *listen;          /* --listen ADDR:PORT, default 127.0.0.1:8002 */
	const char *scan_dirs[SERVER_MAX_LIST];
	int n_scan;
	const char *upstreams[SERVER_MAX_LIST];
	int n_upstreams;
	const char *token_file;      /* NULL: uploads are off */
	/* Local files served as source/<path> (named by scanned DWARF only) lie
	 * under one of these; the defaults are skipped when absent. */
	const char *source_roots[SERVER_MAX_LIST];
	int n_source_roots;
	bool source_roots_default;   /* still the built-in /usr/src, /usr/include */
	uint64_t max_source;         /* bytes of one uploaded source file */
	const char *read_token_file; /* tokens that may read profiles, /symbolize */
	bool private_reads;          /* --private: artifact reads need a token too */
	unsigned max_connections;    /* all clients together */
	unsigned max_connections_per_client; /* per IPv4 address (IPv6 /64); 0 = no cap */
	unsigned threads;            /* MHD pool threads; 0 = number of CPUs */
	unsigned rescan_s;           /* periodic rescan; 0 = scan once */
	unsigned conn_timeout_s;     /* idle connection timeout (slow clients) */
	uint64_t max_upload;         /* bytes */
	uint64_t quota;              /* blob bytes for upstream/derived copies; 0 = none */
	unsigned upstream_timeout_s; /* connect and low-speed timeout */
	unsigned upstream_max_time_s;/* whole transfer */
	int64_t positive_ttl_s;      /* upstream copies; 0 = keep */
	int64_t negative_ttl_s;      /* upstream misses, failed index builds */
	unsigned forwarded_ttl_limit;/* X-Forwarded-For hops before we stop federating */
	struct rate_cap upstream_rate;        /* upstream fetches, whole server */
	struct rate_cap upstream_client_rate; /* upstream fetches, per client address */
	unsigned upstream_wait_ms;   /* a fetch over a cap waits this long for a token */
	unsigned symz_cache;          /* open symbolization indexes kept (LRU) */
	uint64_t symbolize_max_addresses; /* per POST /symbolize */
	bool no_watch;               /* no inotify, periodic rescans only */
	unsigned request_deadline_s; /* whole request (headers + body) must arrive in this */
	/* Profiles (POST/GET /profiles) */
	uint64_t profile_max_body;   /* bytes of one POST /profiles or /perf-maps body */
	uint64_t profile_retention_s;/* 0 = keep forever */
	uint64_t profile_quota;      /* bytes of profile blobs, 0 = no limit */
	unsigned profile_retry_s;    /* retry missing build-IDs (upstreams), 0 = never */
	unsigned profile_claim_s;    /* a worker's claim on a batch holds this long */
	/* Memory (docs/security.md "Memory") */
	uint64_t memory_budget;      /* bytes of transient work at once; 0 = default */
	uint64_t max_decompressed;   /* one decompressed ELF section */
	uint64_t max_decompressed_body; /* one decompressed (gzip) request body */
	unsigned max_heavy;          /* heavy requests at once; 0 = CPUs */
	bool verbose;
};

void server_config_defaults(struct server_config *c);

#endif
