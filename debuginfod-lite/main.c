/* debuginfod-lite: command line → server_config → run until SIGTERM. */
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/migrate.h"
#include "debuginfod-lite/ratelimit.h"
#include "debuginfod-lite/server.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: debuginfod-lite [--data DIR] [--listen ADDR:PORT] [--scan DIR]...\n"
		"                       [--upstream URL]... [--token-file FILE] [options]\n"
		"       debuginfod-lite migrate --data DIR --db URL --blobs URL  (see --help there)\n"
		"A debuginfod-compatible server with uploads, federation and unwind tables.\n"
		"  --data DIR               this replica's working area (tmp/, cache/) and, by\n"
		"                           default, its store (sqlite index + blobs); ./var\n"
		"  --db URL                 metadata: sqlite:PATH (default DIR/index.sqlite and\n"
		"                           DIR/profiles.sqlite) or postgresql://… (libpq URI;\n"
		"                           replicas sharing it form a cluster)\n"
		"  --blobs URL              blob storage: file:DIR (default: the data dir)\n"
		"  --cache-quota BYTES      local cache of remote blobs under DIR/cache (1 GiB)\n"
		"  --memory-cache BYTES     bytes of artifacts of 64 KiB or less kept in memory\n"
		"                           and answered from there (64 MiB; 0: none)\n"
		"  --db-timeout S           longest wait for one database statement (15)\n"
		"  --listen ADDR:PORT       default 127.0.0.1:8002 (port 0: any free port)\n"
		"  --scan DIR               index ELF files under DIR (repeatable)\n"
		"  --rescan SECONDS         rescan period, 0 = once (default 300)\n"
		"  --upstream URL           federate misses to URL (repeatable; default\n"
		"                           $DEBUGINFOD_URLS)\n"
		"  --upstream-timeout S     connect and low-speed timeout (default 10)\n"
		"  --positive-ttl S         keep upstream copies S seconds, 0 = forever (604800)\n"
		"  --negative-ttl S         remember upstream misses and failed index builds S s (600)\n"
		"  --forwarded-ttl-limit N  X-Forwarded-For hops before no federation (8)\n"
		"  --upstream-rate N/s      upstream fetches for build-IDs the store lacks, whole\n"
		"                           server: a burst of N, then N a second (or N/m, N/h;\n"
		"                           0 = no cap); over it: a connection reset (20/s)\n"
		"  --upstream-client-rate N/s  the same per client address (5/s)\n"
		"  --upstream-wait S        a fetch over a cap waits up to S seconds for its\n"
		"                           turn before the reset (5; 0 = reset at once)\n"
		"  --token-file FILE        bearer tokens, one a line; enables PUT uploads\n"
		"                           (and reads whatever --read-token-file guards)\n"
		"  --read-token-file FILE   bearer tokens that may read: once set, GET /profiles,\n"
		"                           /profiles/list, /perf-maps/ and POST /symbolize need\n"
		"                           one (or an upload token); default: open\n"
		"  --private                artifact reads (/buildid/, /metadata, /metrics) need\n"
		"                           a token too; only GET / stays open (default: open,\n"
		"                           as debuginfod clients expect)\n"
		"  --max-connections N      open connections of all clients together (16384)\n"
		"  --max-connections-per-client N  per client address (IPv6: per /64);\n"
		"                           0 = no cap (1024)\n"
		"  --max-upload BYTES       largest upload or upstream body (2 GiB)\n"
		"  --source-root DIR        local files served as source/<path> lie below DIR\n"
		"                           (repeatable; default /usr/src and /usr/include;\n"
		"                           'none': no local sources) and are named by the\n"
		"                           DWARF of a --scan'ned file; never the data dir or\n"
		"                           token files.  Uploaded debuginfo's sources come from\n"
		"                           debuginfod-upload --sources, upstream debuginfo's\n"
		"                           from the upstreams\n"
		"  --max-source-upload BYTES  largest uploaded source file (64 MiB)\n"
		"  --quota BYTES            cap on upstream/derived blob bytes (0 = none)\n"
		"  --threads N              HTTP worker threads (default: CPUs)\n"
		"  --conn-timeout S         idle connection timeout (default 30)\n"
		"  --symbolize-cache N      open symbolization indexes kept in memory (32)\n"
		"  --symbolize-max-addresses N  addresses per POST /symbolize (200000)\n"
		"  --request-deadline S     a request's headers (and /symbolize body) must\n"
		"                           arrive within S seconds, 0 = no limit (30)\n"
		"  --no-watch               no inotify on --scan dirs (periodic rescans only)\n"
		"  --profile-max-size BYTES largest POST /profiles or /perf-maps body (64 MiB)\n"
		"  --profile-retention-days N  delete profiles stored N days ago, 0 = keep (30)\n"
		"  --profile-quota-mb N     cap on stored profile bytes, oldest go first (0 = none)\n"
		"  --profile-quota BYTES    the same in bytes\n"
		"  --profile-retry S        retry missing build-IDs every S seconds, 0 = never (300)\n"
		"  --profile-claim S        a replica's claim on a batch of profiles holds S\n"
		"                           seconds: how soon others take over from a dead one (60)\n"
		"  --memory-budget BYTES    transient memory for heavy work at once: decompressed\n"
		"                           sections, index builds, profile merges, bodies\n"
		"                           (default: the smaller of 1 GiB and RAM/4)\n"
		"  --max-decompressed BYTES largest decompressed ELF section (256 MiB)\n"
		"  --max-decompressed-body BYTES  largest decompressed gzip request body\n"
		"                           (128 MiB)\n"
		"  --max-heavy N            heavy requests at once (/symbolize, GET /profiles,\n"
		"                           section and unwind derivation); default: CPUs\n"
		"  --port-file FILE         write the bound port to FILE once listening\n"
		"  --verbose                log every request\n"
		"  --help\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "debuginfod-lite: %s %s: expected a non-negative number\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "migrate") == 0)
		return migrate_main(argc - 1, argv + 1);
	struct server_config c;
	server_config_defaults(&c);
	const char *port_file = NULL;
	enum { O_DATA = 256, O_LISTEN, O_SCAN, O_RESCAN, O_UPSTREAM, O_UTIMEOUT, O_PTTL, O_NTTL,
	       O_FWD, O_TOKENS, O_MAXUP, O_QUOTA, O_THREADS, O_CTIMEOUT, O_PORTFILE, O_VERBOSE,
	       O_SYMZ_CACHE, O_SYMZ_MAX, O_DEADLINE, O_NOWATCH, O_PMAX, O_PDAYS, O_PQUOTA, O_PQUOTAB, O_PRETRY, O_PCLAIM,
	       O_SRCROOT, O_MAXSRC, O_URATE, O_UCRATE, O_UWAIT, O_READ_TOKENS, O_PRIVATE, O_MAXCONN,
	       O_MAXCONN_CLIENT, O_MEMBUDGET, O_MAXDEC, O_MAXDECBODY, O_MAXHEAVY, O_DB, O_BLOBS,
	       O_CACHEQ, O_MEMCACHE, O_S3END, O_S3REGION, O_S3CRED, O_DBTIMEOUT, O_HELP };
	static const struct option opts[] = {
		{ "data", required_argument, NULL, O_DATA },
		{ "db", required_argument, NULL, O_DB },
		{ "blobs", required_argument, NULL, O_BLOBS },
		{ "cache-quota", required_argument, NULL, O_CACHEQ },
		{ "memory-cache", required_argument, NULL, O_MEMCACHE },
		{ "db-timeout", required_argument, NULL, O_DBTIMEOUT },
		{ "s3-endpoint", required_argument, NULL, O_S3END },
		{ "s3-region", required_argument, NULL, O_S3REGION },
		{ "s3-credentials", required_argument, NULL, O_S3CRED },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "scan", required_argument, NULL, O_SCAN },
		{ "rescan", required_argument, NULL, O_RESCAN },
		{ "upstream", required_argument, NULL, O_UPSTREAM },
		{ "upstream-timeout", required_argument, NULL, O_UTIMEOUT },
		{ "positive-ttl", required_argument, NULL, O_PTTL },
		{ "negative-ttl", required_argument, NULL, O_NTTL },
		{ "forwarded-ttl-limit", required_argument, NULL, O_FWD },
		{ "upstream-rate", required_argument, NULL, O_URATE },
		{ "upstream-client-rate", required_argument, NULL, O_UCRATE },
		{ "upstream-wait", required_argument, NULL, O_UWAIT },
		{ "token-file", required_argument, NULL, O_TOKENS },
		{ "read-token-file", required_argument, NULL, O_READ_TOKENS },
		{ "private", no_argument, NULL, O_PRIVATE },
		{ "max-connections", required_argument, NULL, O_MAXCONN },
		{ "max-connections-per-client", required_argument, NULL, O_MAXCONN_CLIENT },
		{ "max-upload", required_argument, NULL, O_MAXUP },
		{ "source-root", required_argument, NULL, O_SRCROOT },
		{ "max-source-upload", required_argument, NULL, O_MAXSRC },
		{ "quota", required_argument, NULL, O_QUOTA },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "conn-timeout", required_argument, NULL, O_CTIMEOUT },
		{ "port-file", required_argument, NULL, O_PORTFILE },
		{ "symbolize-cache", required_argument, NULL, O_SYMZ_CACHE },
		{ "request-deadline", required_argument, NULL, O_DEADLINE },
		{ "no-watch", no_argument, NULL, O_NOWATCH },
		{ "symbolize-max-addresses", required_argument, NULL, O_SYMZ_MAX },
		{ "profile-max-size", required_argument, NULL, O_PMAX },
		{ "profile-retention-days", required_argument, NULL, O_PDAYS },
		{ "profile-quota-mb", required_argument, NULL, O_PQUOTA },
		{ "profile-quota", required_argument, NULL, O_PQUOTAB },
		{ "profile-retry", required_argument, NULL, O_PRETRY },
		{ "profile-claim", required_argument, NULL, O_PCLAIM },
		{ "memory-budget", required_argument, NULL, O_MEMBUDGET },
		{ "max-decompressed", required_argument, NULL, O_MAXDEC },
		{ "max-decompressed-body", required_argument, NULL, O_MAXDECBODY },
		{ "max-heavy", required_argument, NULL, O_MAXHEAVY },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	int opt;
	uint64_t v;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "option";
		switch (opt) {
		case O_DATA: c.data_dir = optarg; break;
		case O_DB: c.db_url = optarg; break;
		case O_BLOBS: c.blobs_url = optarg; break;
		case O_S3END: c.s3_endpoint = optarg; break;
		case O_S3REGION: c.s3_region = optarg; break;
		case O_S3CRED: c.s3_credentials = optarg; break;
		case O_LISTEN: c.listen = optarg; break;
		case O_SCAN:
		case O_UPSTREAM: {
			bool scan = opt == O_SCAN;
			int *n = scan ? &c.n_scan : &c.n_upstreams;
			if (*n >= SERVER_MAX_LIST) {
				fprintf(stderr, "debuginfod-lite: too many --%s\n", scan ? "scan" : "upstream");
				return 2;
			}
			(scan ? c.scan_dirs : c.upstreams)[(*n)++] = optarg;
			break;
		}
		case O_TOKENS: c.token_file = optarg; break;
		case O_SRCROOT:
			/* The first --source-root replaces the defaults. */
			if (c.source_roots_default) {
				c.n_source_roots = 0;
				c.source_roots_default = false;
			}
			if (strcmp(optarg, "none") == 0)
				break;
			if (c.n_source_roots >= SERVER_MAX_LIST) {
				fprintf(stderr, "debuginfod-lite: too many --source-root\n");
				return 2;
			}
			c.source_roots[c.n_source_roots++] = optarg;
			break;
		case O_READ_TOKENS: c.read_token_file = optarg; break;
		case O_PRIVATE: c.private_reads = true; break;
		case O_PORTFILE: port_file = optarg; break;
		case O_VERBOSE: c.verbose = true; break;
		case O_NOWATCH: c.no_watch = true; break;
		case O_HELP: usage(stdout); return 0;
		case O_URATE:
		case O_UCRATE:
			if (rate_cap_parse(optarg, opt == O_URATE ? &c.upstream_rate
								  : &c.upstream_client_rate) < 0) {
				fprintf(stderr, "debuginfod-lite: %s %s: expected N/s, N/m, N/h or 0\n",
					name, optarg);
				return 2;
			}
			break;
		case O_RESCAN: case O_UTIMEOUT: case O_PTTL: case O_NTTL: case O_FWD: case O_MAXUP:
		case O_QUOTA: case O_THREADS: case O_CTIMEOUT: case O_SYMZ_CACHE: case O_SYMZ_MAX:
		case O_DEADLINE: case O_PMAX: case O_PDAYS: case O_PQUOTA: case O_PQUOTAB: case O_PRETRY: case O_PCLAIM:
		case O_MAXSRC: case O_UWAIT:
		case O_MAXCONN: case O_MAXCONN_CLIENT:
		case O_MEMBUDGET: case O_MAXDEC: case O_MAXDECBODY: case O_MAXHEAVY: case O_CACHEQ: case O_MEMCACHE: case O_DBTIMEOUT:
			if (parse_u64(name, optarg, &v) < 0)
				return 2;
			if ((opt == O_MAXCONN && (v < 1 || v > 1000000)) ||
			    (opt == O_MAXCONN_CLIENT && v > 1000000)) {
				fprintf(stderr, "debuginfod-lite: %s %s: expected %s to 1000000\n", name,
					optarg, opt == O_MAXCONN ? "1" : "0");
				return 2;
			}
			if (opt == O_MAXCONN) c.max_connections = (unsigned)v;
			if (opt == O_MAXCONN_CLIENT) c.max_connections_per_client = (unsigned)v;
			if (opt == O_RESCAN) c.rescan_s = (unsigned)v;
			if (opt == O_UTIMEOUT) c.upstream_timeout_s = (unsigned)(v ? v : 1);
			if (opt == O_PTTL) c.positive_ttl_s = (int64_t)v;
			if (opt == O_NTTL) c.negative_ttl_s = (int64_t)v;
			if (opt == O_FWD) c.forwarded_ttl_limit = (unsigned)v;
			if (opt == O_MAXUP) c.max_upload = v;
			if (opt == O_MAXSRC) c.max_source = v;
			if (opt == O_UWAIT) c.upstream_wait_ms = (unsigned)(v > 60 ? 60 : v) * 1000;
			if (opt == O_QUOTA) c.quota = v;
			if (opt == O_CACHEQ) c.cache_quota = v;
			if (opt == O_MEMCACHE) c.memory_cache = v;
			if (opt == O_DBTIMEOUT) c.db_timeout_s = (unsigned)(v < 1 ? 1 : v > 3600 ? 3600 : v);
			if (opt == O_THREADS) c.threads = (unsigned)(v > 1024 ? 1024 : v);
			if (opt == O_CTIMEOUT) c.conn_timeout_s = (unsigned)v;
			if (opt == O_SYMZ_CACHE) c.symz_cache = (unsigned)(v < 1 ? 1 : v > 4096 ? 4096 : v);
			if (opt == O_SYMZ_MAX) c.symbolize_max_addresses = v;
			if (opt == O_DEADLINE) c.request_deadline_s = (unsigned)(v > 86400 ? 86400 : v);
			if (opt == O_PMAX) c.profile_max_body = v;
			if (opt == O_PDAYS) c.profile_retention_s = v > 1000000 ? 0 : v * 86400;
			if (opt == O_PQUOTA) c.profile_quota = v > (UINT64_MAX >> 20) ? 0 : v << 20;
			if (opt == O_PQUOTAB) c.profile_quota = v;
			if (opt == O_PRETRY) c.profile_retry_s = (unsigned)(v > 86400 ? 86400 : v);
			if (opt == O_PCLAIM) c.profile_claim_s = (unsigned)(v < 2 ? 2 : v > 3600 ? 3600 : v);
			if (opt == O_MEMBUDGET) c.memory_budget = v < (1u << 20) ? 1u << 20 : v;
			if (opt == O_MAXDEC) c.max_decompressed = v ? v : 1;
			if (opt == O_MAXDECBODY) c.max_decompressed_body = v ? v : 1;
			if (opt == O_MAXHEAVY) c.max_heavy = (unsigned)(v < 1 ? 1 : v > 1024 ? 1024 : v);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "debuginfod-lite: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	/* DEBUGINFOD_URLS, as libdebuginfod reads it, when no --upstream. */
	char *urls = NULL;
	if (c.n_upstreams == 0 && getenv("DEBUGINFOD_URLS")) {
		urls = strdup(getenv("DEBUGINFOD_URLS"));
		for (char *save = NULL, *tok = strtok_r(urls, " \t", &save);
		     tok && c.n_upstreams < SERVER_MAX_LIST; tok = strtok_r(NULL, " \t", &save))
			if (strncmp(tok, "ima:", 4) != 0)
				c.upstreams[c.n_upstreams++] = tok;
	}
	if (c.upstream_max_time_s < c.upstream_timeout_s)
		c.upstream_max_time_s = c.upstream_timeout_s;

	/* Many concurrent connections need many descriptors. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	/* Block the stop signals in every thread; main waits for them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	struct server *s;
	struct err e = { { 0 } };
	if (server_start(&s, &c, &e) < 0) {
		fprintf(stderr, "debuginfod-lite: %s\n", e.msg);
		free(urls);
		return 1;
	}
	log_info("msg=\"listening\" port=%u data=\"%s\" scan=%d upstreams=%d uploads=%s reads=%s",
		 server_port(s), c.data_dir, c.n_scan, c.n_upstreams, c.token_file ? "on" : "off",
		 c.private_reads ? "private" : c.read_token_file ? "token" : "open");
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", server_port(s)) < 0 || fclose(f) != 0 ||
		    rename(tmp, port_file) < 0)
			log_warn("msg=\"cannot write --port-file %s\"", port_file);
	}
	int sig;
	sigwait(&stop, &sig);
	log_info("msg=\"stopping\" signal=%d", sig);
	server_stop(s);
	curl_global_cleanup();
	free(urls);
	log_info("msg=\"stopped\"");
	return 0;
}
