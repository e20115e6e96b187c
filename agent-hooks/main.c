/* profiler-agent: parse options, run the agent (agent.c). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "agent-hooks/agent_hooks.h"

static const char usage[] =
	"usage: profiler-agent --server URL (--pid PID | --all) [options]\n"
	"Samples processes with the BPF DWARF unwinder; unwind tables come from the\n"
	"server by build-ID; profiles leave as unsymbolized gzipped pprof.\n"
	"  --server URL         debuginfod-lite (tables; profiles to URL/profiles)\n"
	"  --pid PID            this process and its descendants\n"
	"  --all                every process (a /proc scan at start, then exec hooks)\n"
	"  --frequency HZ       samples per second per CPU (default 19)\n"
	"  --duration S         stop after S seconds (default: until SIGINT/SIGTERM)\n"
	"  --interval S         one profile every S seconds (default 10)\n"
	"  --output DIR         also write every profile to DIR (JIT snapshots in DIR/jit)\n"
	"  --label k=v          add a label to every sample (repeatable)\n"
	"  --profile-url URL    POST profiles here instead of <server>/profiles\n"
	"  --token-file FILE    Bearer token for POST /profiles (first line of FILE)\n"
	"  --no-upload          do not POST profiles (tables only; needs --output)\n"
	"  --cache-dir DIR      unwind table cache (default $XDG_CACHE_HOME/profiler-agent,\n"
	"                       /var/cache/profiler-agent for root)\n"
	"  --cache-max-mb N     tables and ETags kept in the cache (default 256); the least\n"
	"                       recently used go first\n"
	"  --table-max-mb N     refuse a table larger than this, fetched (before reading\n"
	"                       its body) or cached (default 64)\n"
	"  --buffer-dir DIR     profiles waiting for the server (default CACHE/buffer)\n"
	"  --buffer-max-mb N    buffer limit (default 64); the oldest go first when full\n"
	"  --table-idle S       unload tables unused for S seconds (default 60)\n"
	"  --table-retry S      ask the server again for a table it lacked after S\n"
	"                       seconds, doubling up to 300 (default 30); a table it\n"
	"                       then has replaces the one compiled here\n"
	"  --limits SPEC        BPF map limits (see unwind-sample --help)\n"
	"  --no-kernel          no kernel stacks\n"
	"  --stats-file FILE    write JSON counters at exit (default: stderr)\n";

static volatile int stop;
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "profiler-agent: bad %s '%s'\n", what, arg);
	return -1;
}

static int parse_number(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct agent_options *o, char *cache, size_t csize,
		      char *buffer, size_t bsize)
{
	enum { O_INTERVAL = 256, O_PROFILE_URL, O_NO_UPLOAD, O_CACHE, O_BUFFER, O_BUFMAX,
	       O_IDLE, O_LIMITS, O_NO_KERNEL, O_STATS, O_LABEL, O_TOKEN_FILE, O_CACHE_MAX,
	       O_TABLE_MAX, O_RETRY };
	static const struct option longopts[] = {
		{ "server", required_argument, 0, 's' },    { "pid", required_argument, 0, 'p' },
		{ "all", no_argument, 0, 'a' },             { "frequency", required_argument, 0, 'F' },
		{ "duration", required_argument, 0, 'd' },  { "output", required_argument, 0, 'o' },
		{ "interval", required_argument, 0, O_INTERVAL },
		{ "label", required_argument, 0, O_LABEL },
		{ "profile-url", required_argument, 0, O_PROFILE_URL },
		{ "token-file", required_argument, 0, O_TOKEN_FILE },
		{ "no-upload", no_argument, 0, O_NO_UPLOAD },
		{ "cache-dir", required_argument, 0, O_CACHE },
		{ "cache-max-mb", required_argument, 0, O_CACHE_MAX },
		{ "table-max-mb", required_argument, 0, O_TABLE_MAX },
		{ "buffer-dir", required_argument, 0, O_BUFFER },
		{ "buffer-max-mb", required_argument, 0, O_BUFMAX },
		{ "table-idle", required_argument, 0, O_IDLE },
		{ "table-retry", required_argument, 0, O_RETRY },
		{ "limits", required_argument, 0, O_LIMITS },
		{ "no-kernel", no_argument, 0, O_NO_KERNEL },
		{ "stats-file", required_argument, 0, O_STATS },
		{ "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 },
	};
	agent_options_default(o);
	int c;
	double v;
	struct err e = { { 0 } };
	while ((c = getopt_long(argc, argv, "s:p:aF:d:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->server = optarg; break;
		case 'p':
			if (parse_number(optarg, 1, 0x7fffffff, &v) < 0 || v != (double)(long)v)
				return bad("--pid", optarg);
			o->pid = (pid_t)v;
			break;
		case 'a': o->all = true; break;
		case 'F':
			if (parse_number(optarg, 1, 10000, &v) < 0)
				return bad("--frequency", optarg);
			o->frequency_hz = (uint32_t)v;
			break;
		case 'd':
			if (parse_number(optarg, 0.01, 1e7, &o->duration_s) < 0)
				return bad("--duration", optarg);
			break;
		case O_INTERVAL:
			if (parse_number(optarg, 0.05, 86400, &o->interval_s) < 0)
				return bad("--interval", optarg);
			break;
		case 'o': o->output_dir = optarg; break;
		case O_LABEL: {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || o->nlabels == AGENT_MAX_LABELS)
				return bad("--label (want k=v, at most 32)", optarg);
			*eq = 0;
			o->labels[o->nlabels][0] = optarg;
			o->labels[o->nlabels++][1] = eq + 1;
			break;
		}
		case O_PROFILE_URL: o->profile_url = optarg; break;
		case O_TOKEN_FILE: {
			static char token[512];
			FILE *f = fopen(optarg, "r");
			if (!f || !fgets(token, sizeof(token), f)) {
				if (f)
					fclose(f);
				return bad("--token-file (cannot read a token from)", optarg);
			}
			fclose(f);
			token[strcspn(token, "\r\n")] = 0;
			if (!token[0])
				return bad("--token-file (empty token in)", optarg);
			o->token = token;
			break;
		}
		case O_NO_UPLOAD: o->no_server_profiles = true; break;
		case O_CACHE: o->cache_dir = optarg; break;
		case O_BUFFER: o->buffer_dir = optarg; break;
		case O_BUFMAX:
			if (parse_number(optarg, 1, 1 << 20, &v) < 0)
				return bad("--buffer-max-mb", optarg);
			o->buffer_max_bytes = (uint64_t)(v * 1048576);
			break;
		case O_CACHE_MAX:
		case O_TABLE_MAX:
			/* Fractions allow sub-megabyte limits (tests, small nodes). */
			if (parse_number(optarg, 0.001, 1 << 20, &v) < 0)
				return bad(c == O_CACHE_MAX ? "--cache-max-mb" : "--table-max-mb", optarg);
			*(c == O_CACHE_MAX ? &o->cache_max_bytes : &o->table_max_bytes) =
				(uint64_t)(v * 1048576);
			break;
		case O_IDLE:
			if (parse_number(optarg, 0, 1e7, &o->table_idle_s) < 0)
				return bad("--table-idle", optarg);
			break;
		case O_RETRY:
			if (parse_number(optarg, 1, 300, &v) < 0 || v != (double)(unsigned)v)
				return bad("--table-retry", optarg);
			o->table_retry_s = (unsigned)v;
			break;
		case O_LIMITS:
			if (sampler_limits_parse(&o->lim, optarg, &e) < 0) {
				fprintf(stderr, "profiler-agent: %s\n", e.msg);
				return -1;
			}
			break;
		case O_NO_KERNEL: o->kernel = false; break;
		case O_STATS: o->stats_file = optarg; break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return -1;
		}
	}
	if (optind < argc)
		return bad("argument", argv[optind]);
	if ((o->pid != 0) == o->all) {
		fprintf(stderr, "profiler-agent: give exactly one of --pid PID or --all\n");
		return -1;
	}
	if (!o->server && !o->profile_url && !o->output_dir) {
		fprintf(stderr, "profiler-agent: give --server URL (or --output DIR)\n");
		return -1;
	}
	if (!o->cache_dir) {
		const char *xdg = getenv("XDG_CACHE_HOME");
		if (xdg && *xdg)
			snprintf(cache, csize, "%s/profiler-agent", xdg);
		else if (geteuid() == 0)
			snprintf(cache, csize, "/var/cache/profiler-agent");
		else
			snprintf(cache, csize, "%s/.cache/profiler-agent",
				 getenv("HOME") ? getenv("HOME") : "/tmp");
		o->cache_dir = cache;
	}
	if (!o->buffer_dir) {
		snprintf(buffer, bsize, "%s/buffer", o->cache_dir);
		o->buffer_dir = buffer;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct agent_options o;
	char cache[4096], buffer[4200];
	if (parse_args(argc, argv, &o, cache, sizeof(cache), buffer, sizeof(buffer)) < 0)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct err e = { { 0 } };
	int rc = agent_run(&o, &stop, &e);
	if (rc < 0)
		fprintf(stderr, "profiler-agent: %s\n", e.msg);
	curl_global_cleanup();
	return rc < 0 ? 1 : 0;
}
