/* The symbolize command line: sources (ELF, index, build-ID, JIT maps),
 * address parsing, text and JSON output, the index cache. */
#include "symbolizer/cli.h"
#include "symbolizer/symz_format.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FRAMES 256

static void usage(FILE *f)
{
	fputs("usage: symbolize -e ELF [--inlines] [--json] [options] < addresses\n"
	      "       symbolize --build-id HEX [--server URL] [--debug-dir DIR] [options] < addresses\n"
	      "       symbolize --index FILE [options] < addresses\n"
	      "       symbolize --perf-map FILE | --jitdump FILE [options] < addresses\n"
	      "       symbolize index ELF -o FILE      build and write a symbolization index\n"
	      "       symbolize pprof IN -o OUT [--server URL] [--debug-dir DIR] [--force]\n"
	      "Addresses: one per line, hex with or without 0x, file addresses of the ELF\n"
	      "(runtime addresses for --perf-map/--jitdump).\n"
	      "  -e, --exe ELF          object to symbolize (its separate debug file is found\n"
	      "                         by build-ID under --debug-dir, or by .gnu_debuglink)\n"
	      "  -i, --inlines          print every inlined frame (default: innermost only)\n"
	      "  -j, --json             one JSON object per input line\n"
	      "  -a, --addresses        print the address before each result (text)\n"
	      "  -s, --basenames        strip directories from file names\n"
	      "  --kind leaf|return     addresses are leaf PCs (default) or return addresses\n"
	      "                         (return: address-1 is looked up)\n"
	      "  --debug-dir DIR        separate debug files root (default /usr/lib/debug)\n"
	      "  --debug-file FILE      use this separate debug file\n"
	      "  --server URL           debuginfod server(s) for --build-id / pprof (default\n"
	      "                         $DEBUGINFOD_URLS; fetched through libdebuginfod and its cache)\n"
	      "  --token-file FILE      bearer token for the servers (its first line; for a\n"
	      "                         debuginfod-lite --private server)\n"
	      "  --cache-dir DIR        index cache (default $XDG_CACHE_HOME/symbolize)\n"
	      "  --no-cache             neither read nor write the index cache\n"
	      "  --verbose              JSON: add linkage_name, start_address, decl_line\n"
	      "  --unbuffered           flush after every answer (by default output is\n"
	      "                         flushed whenever no more input is waiting)\n",
	      f);
}

/* ---- buffered output (printf per field is the bottleneck otherwise) ---- */
struct out {
	FILE *f;
	char buf[1 << 16];
	size_t len;
};

static void out_flush(struct out *o)
{
	if (o->len)
		fwrite(o->buf, 1, o->len, o->f);
	o->len = 0;
}

static void out_mem(struct out *o, const char *s, size_t n)
{
	if (o->len + n > sizeof(o->buf)) {
		out_flush(o);
		if (n > sizeof(o->buf)) {
			fwrite(s, 1, n, o->f);
			return;
		}
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_mem(o, tmp + sizeof(tmp) - n, (size_t)n);
}

static void out_hex(struct out *o, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	out_mem(o, "0x", 2);
	out_mem(o, tmp + sizeof(tmp) - n, (size_t)n);
}

static void out_write(void *ctx, const char *p, size_t n)
{
	out_mem(ctx, p, n);
}

static void out_json_str(struct out *o, const char *s)
{
	symz_write_json_string(out_write, o, s);
}

static const char *basename_of(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

struct opts {
	bool inlines, json, addresses, basenames, verbose;
	enum symz_frame_kind kind;
};

static void print_frames(struct out *o, const struct opts *op, const char *input_hex,
			 uint64_t addr, const struct symz_frame *fr, size_t n)
{
	if (n > MAX_FRAMES)
		n = MAX_FRAMES;
	if (!op->inlines && n > 1)
		n = 1;
	if (op->json) {
		out_str(o, "{\"address\":");
		if (input_hex) {
			out_json_str(o, input_hex);
		} else {
			out_mem(o, "\"", 1);
			out_hex(o, addr);
			out_mem(o, "\"", 1);
		}
		out_str(o, ",\"frames\":");
		symz_write_frames_json(out_write, o, fr, n,
				       (op->basenames ? SYMZ_JSON_BASENAMES : 0) |
				       (op->verbose ? SYMZ_JSON_VERBOSE : 0));
		out_str(o, "}\n");
		return;
	}
	/* addr2line -f [-i] style */
	if (op->addresses) {
		out_hex(o, addr);
		out_mem(o, "\n", 1);
	}
	if (n == 0) {
		out_str(o, "??\n??:0\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		out_str(o, fr[i].function ? fr[i].function : "??");
		out_mem(o, "\n", 1);
		const char *file = fr[i].file && op->basenames ? basename_of(fr[i].file) : fr[i].file;
		out_str(o, file ? file : "??");
		out_mem(o, ":", 1);
		if (fr[i].line)
			out_u64(o, fr[i].line);
		else
			out_mem(o, "?", 1);
		if (fr[i].column) {
			out_mem(o, ":", 1);
			out_u64(o, fr[i].column);
		}
		out_mem(o, "\n", 1);
	}
}

/* "0x1a2b", "1a2b", surrounding blanks; false when not hex. */
static bool parse_addr(const char *s, uint64_t *v)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!isxdigit((unsigned char)*s))
		return false;
	uint64_t r = 0;
	int digits = 0;
	for (; isxdigit((unsigned char)*s); s++) {
		if (++digits > 16)
			return false;
		int c = (unsigned char)*s;
		r = r * 16 + (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	if (*s)
		return false;
	*v = r;
	return true;
}

void symz_cache_path(char *out, size_t size, const char *cache_dir, const uint8_t *id, size_t len)
{
	char hex[BUILD_ID_HEX_MAX];
	build_id_to_hex(id, len, hex);
	snprintf(out, size, "%s/%s.v%d.symz", cache_dir, hex, SYMZ_VERSION);
}

static void mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

int symz_open_for_elf(const char *path, const struct symz_build_options *opt, const char *cache_dir,
		      struct symz_index **out, struct err *e)
{
	char cpath[PATH_MAX];
	cpath[0] = 0;
	if (cache_dir) {
		struct elf_object o;
		struct err ignored = {{0}};
		if (elf_object_open(&o, path, &ignored) == 0) {
			if (o.build_id_len)
				symz_cache_path(cpath, sizeof(cpath), cache_dir, o.build_id,
						o.build_id_len);
			elf_object_close(&o);
		}
		if (cpath[0] && symz_index_open(cpath, out, &ignored) == 0)
			return 0;
	}
	int r = symz_index_build_path(path, opt, out, e);
	if (r == 0 && cpath[0]) {
		struct err ignored = {{0}};
		mkdir_p(cache_dir);
		symz_index_write(*out, cpath, &ignored); /* a cache: failure is not an error */
	}
	return r;
}

const char *symz_default_cache_dir(char *buf, size_t size)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (x && *x)
		snprintf(buf, size, "%s/symbolize", x);
	else if (home && *home)
		snprintf(buf, size, "%s/.cache/symbolize", home);
	else
		return NULL;
	return buf;
}

static int index_main(int argc, char **argv)
{
	const char *in = NULL, *outp = NULL, *debug_dir = NULL;
	bool stats = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			outp = argv[++i];
		else if (!strcmp(argv[i], "--debug-dir") && i + 1 < argc)
			debug_dir = argv[++i];
		else if (!strcmp(argv[i], "--stats"))
			stats = true;
		else if (argv[i][0] != '-' && !in)
			in = argv[i];
		else {
			fprintf(stderr, "symbolize index: unexpected argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!in || (!outp && !stats)) {
		fprintf(stderr, "usage: symbolize index ELF -o FILE [--debug-dir DIR] [--stats]\n");
		return 2;
	}
	struct err e = {{0}};
	struct symz_index *idx;
	struct symz_build_options o = {.debug_dir = debug_dir};
	if (symz_index_build_path(in, &o, &idx, &e)) {
		fprintf(stderr, "symbolize: %s: %s\n", in, e.msg);
		return 1;
	}
	int rc = 0;
	if (outp && symz_index_write(idx, outp, &e)) {
		fprintf(stderr, "symbolize: %s\n", e.msg);
		rc = 1;
	}
	if (stats) {
		const struct symz_stats *s = symz_index_stats(idx);
		printf("{\"functions\":%llu,\"inline_nodes\":%llu,\"symbols\":%llu,"
		       "\"scope_segments\":%llu,\"line_rows\":%llu,\"dwarf_bytes\":%llu,"
		       "\"index_bytes\":%llu,\"build_ms\":%.1f}\n",
		       (unsigned long long)s->functions, (unsigned long long)s->inline_nodes,
		       (unsigned long long)s->symbols, (unsigned long long)s->scope_segments,
		       (unsigned long long)s->line_rows, (unsigned long long)s->dwarf_bytes,
		       (unsigned long long)s->index_bytes, s->build_ms);
	}
	symz_index_free(idx);
	return rc;
}

enum {
	OPT_KIND = 256, OPT_DEBUG_DIR, OPT_DEBUG_FILE, OPT_SERVER, OPT_BUILD_ID, OPT_INDEX,
	OPT_PERF_MAP, OPT_JITDUMP, OPT_CACHE_DIR, OPT_NO_CACHE, OPT_VERBOSE, OPT_UNBUFFERED,
	OPT_TOKEN_FILE,
};

/* True when reading the next line would block: nothing left in stdin's
 * buffer and nothing readable.  A coprocess (one address in, one answer
 * out) then gets its answer without asking; bulk input never pays. */
static bool input_would_block(void)
{
	/* glibc's FILE: bytes read from the fd but not yet consumed. */
	if (stdin->_IO_read_ptr < stdin->_IO_read_end)
		return false;
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

int symz_cli_main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "pprof"))
		return symz_pprof_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "index"))
		return index_main(argc - 1, argv + 1);
	static const struct option longopts[] = {
		{"exe", required_argument, 0, 'e'},
		{"inlines", no_argument, 0, 'i'},
		{"json", no_argument, 0, 'j'},
		{"addresses", no_argument, 0, 'a'},
		{"basenames", no_argument, 0, 's'},
		{"functions", no_argument, 0, 'f'},
		{"demangle", no_argument, 0, 'C'},
		{"help", no_argument, 0, 'h'},
		{"kind", required_argument, 0, OPT_KIND},
		{"debug-dir", required_argument, 0, OPT_DEBUG_DIR},
		{"debug-file", required_argument, 0, OPT_DEBUG_FILE},
		{"server", required_argument, 0, OPT_SERVER},
		{"token-file", required_argument, 0, OPT_TOKEN_FILE},
		{"build-id", required_argument, 0, OPT_BUILD_ID},
		{"index", required_argument, 0, OPT_INDEX},
		{"perf-map", required_argument, 0, OPT_PERF_MAP},
		{"jitdump", required_argument, 0, OPT_JITDUMP},
		{"cache-dir", required_argument, 0, OPT_CACHE_DIR},
		{"no-cache", no_argument, 0, OPT_NO_CACHE},
		{"verbose", no_argument, 0, OPT_VERBOSE},
		{"unbuffered", no_argument, 0, OPT_UNBUFFERED},
		{0, 0, 0, 0},
	};
	struct opts op = {0};
	const char *exe = NULL, *server = NULL, *build_id = NULL, *index_path = NULL;
	const char *perf_map = NULL, *jitdump = NULL, *cache_dir = NULL;
	struct symz_build_options bo = {0};
	bool no_cache = false, unbuffered = false;
	char cache_buf[PATH_MAX], token_buf[256];
	const char *token = NULL; /* --token-file: for a debuginfod-lite --private server */
	int c;
	while ((c = getopt_long(argc, argv, "e:ijasfCh", longopts, NULL)) != -1) {
		switch (c) {
		case 'e': exe = optarg; break;
		case 'i': op.inlines = true; break;
		case 'j': op.json = true; break;
		case 'a': op.addresses = true; break;
		case 's': op.basenames = true; break;
		case 'f': case 'C': break; /* always on; accepted for addr2line users */
		case 'h': usage(stdout); return 0;
		case OPT_KIND:
			if (!strcmp(optarg, "leaf"))
				op.kind = SYMZ_LEAF_PC;
			else if (!strcmp(optarg, "return"))
				op.kind = SYMZ_RETURN_ADDRESS;
			else {
				fprintf(stderr, "symbolize: --kind must be leaf or return\n");
				return 2;
			}
			break;
		case OPT_DEBUG_DIR: bo.debug_dir = optarg; break;
		case OPT_DEBUG_FILE: bo.debug_file = optarg; break;
		case OPT_SERVER: server = optarg; break;
		case OPT_TOKEN_FILE: {
			struct err te = {{0}};
			if (symz_read_token_file(optarg, token_buf, sizeof(token_buf), &te) < 0) {
				fprintf(stderr, "symbolize: %s\n", te.msg);
				return 2;
			}
			token = token_buf;
			break;
		}
		case OPT_BUILD_ID: build_id = optarg; break;
		case OPT_INDEX: index_path = optarg; break;
		case OPT_PERF_MAP: perf_map = optarg; break;
		case OPT_JITDUMP: jitdump = optarg; break;
		case OPT_CACHE_DIR: cache_dir = optarg; break;
		case OPT_NO_CACHE: no_cache = true; break;
		case OPT_VERBOSE: op.verbose = true; break;
		case OPT_UNBUFFERED: unbuffered = true; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "symbolize: unexpected argument %s (addresses come on stdin)\n",
			argv[optind]);
		return 2;
	}
	int nsrc = !!exe + !!build_id + !!index_path + !!(perf_map || jitdump);
	if (nsrc != 1) {
		fprintf(stderr, "symbolize: give exactly one of -e ELF, --build-id, --index, "
				"--perf-map/--jitdump (see --help)\n");
		return 2;
	}
	if (!cache_dir && !no_cache)
		cache_dir = symz_default_cache_dir(cache_buf, sizeof(cache_buf));
	if (no_cache)
		cache_dir = NULL;

	struct err e = {{0}};
	struct symz_index *idx = NULL;
	struct symz_jit_map *jit = NULL;
	int r = 0;
	if (exe) {
		r = symz_open_for_elf(exe, &bo, cache_dir, &idx, &e);
		if (r)
			fprintf(stderr, "symbolize: %s: %s\n", exe, e.msg);
	} else if (index_path) {
		r = symz_index_open(index_path, &idx, &e);
		if (r)
			fprintf(stderr, "symbolize: %s\n", e.msg);
	} else if (build_id) {
		uint8_t id[BUILD_ID_MAX];
		size_t len;
		char hex[BUILD_ID_HEX_MAX], path[PATH_MAX];
		if (build_id_from_hex(build_id, id, &len)) {
			fprintf(stderr, "symbolize: --build-id %s is not hex\n", build_id);
			return 2;
		}
		build_id_to_hex(id, len, hex);
		snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug",
			 bo.debug_dir ? bo.debug_dir : "/usr/lib/debug", hex, hex + 2);
		if (access(path, R_OK) != 0) {
			char *fetched = NULL;
			r = symz_fetch_debuginfo(server, token, id, len, &fetched, &e);
			if (!r)
				snprintf(path, sizeof(path), "%s", fetched);
			free(fetched);
		}
		if (!r)
			r = symz_open_for_elf(path, &bo, cache_dir, &idx, &e);
		if (r)
			fprintf(stderr, "symbolize: build-ID %s: %s\n", hex, e.msg);
	} else {
		if (perf_map)
			r = symz_perf_map_load(perf_map, &jit, &e);
		else
			r = symz_jitdump_load(jitdump, &jit, &e);
		if (r)
			fprintf(stderr, "symbolize: %s\n", e.msg);
	}
	if (r)
		return 1;

	struct out *o = malloc(sizeof(*o));
	struct symz_frame *frames = malloc(MAX_FRAMES * sizeof(*frames));
	if (!o || !frames) {
		fprintf(stderr, "symbolize: out of memory\n");
		return 1;
	}
	o->f = stdout;
	o->len = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	long lineno = 0;
	int rc = 0;
	bool tty = isatty(STDIN_FILENO);
	while ((got = getline(&line, &cap, stdin)) > 0) {
		lineno++;
		uint64_t addr;
		if (!parse_addr(line, &addr)) {
			while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
				line[--got] = 0;
			if (got == 0)
				continue;
			out_flush(o);
			fprintf(stderr, "symbolize: line %ld: not a hex address: %.80s\n", lineno, line);
			rc = 1;
			continue;
		}
		size_t n;
		if (jit) {
			const struct symz_jit_entry *je = symz_jit_lookup(jit, addr, op.kind);
			n = 0;
			if (je) {
				memset(&frames[0], 0, sizeof(frames[0]));
				frames[0].function = je->name;
				frames[0].entry = je->start;
				n = 1;
			}
		} else {
			n = symz_lookup(idx, addr, op.kind, frames, MAX_FRAMES);
		}
		print_frames(o, &op, NULL, addr, frames, n);
		if (tty || unbuffered || o->len > sizeof(o->buf) / 2 || input_would_block()) {
			out_flush(o);
			fflush(stdout);
		}
	}
	out_flush(o);
	fflush(stdout);
	free(line);
	free(frames);
	free(o);
	symz_index_free(idx);
	symz_jit_free(jit);
	return rc;
}
