/* `symbolize pprof IN -o OUT`: (re-)symbolize a profile on disk.  The work is
 * in the library (profile.h); this file finds indexes by build-ID. */
#include "symbolizer/cli.h"
#include "pprof/pprof.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct resolver_ctx {
	const char *debug_dir, *server, *cache_dir;
	const char *token; /* --token-file's, for a --private server */
	struct symz_index **opened;
	size_t nopened;
};

static int keep(struct resolver_ctx *c, struct symz_index *idx, const struct symz_index **out)
{
	struct symz_index **n = realloc(c->opened, (c->nopened + 1) * sizeof(*n));
	if (!n) {
		symz_index_free(idx);
		return -ENOMEM;
	}
	c->opened = n;
	c->opened[c->nopened++] = idx;
	*out = idx;
	return 0;
}

/* The mapping's own file, when it is there and has this build-ID. */
static bool file_has_build_id(const char *path, const uint8_t *id, size_t len)
{
	struct elf_object o;
	struct err ignored = {{0}};
	if (!path[0] || path[0] == '[' || elf_object_open(&o, path, &ignored))
		return false;
	bool same = o.build_id_len == len && !memcmp(o.build_id, id, len);
	elf_object_close(&o);
	return same;
}

/* Cached index, <debug-dir>/.build-id/xx/yyyy.debug, the mapping's file,
 * then the debuginfod server. */
static int resolve(void *vctx, const char *build_id, const char *filename,
		   const struct symz_index **out, struct err *e)
{
	struct resolver_ctx *c = vctx;
	uint8_t id[BUILD_ID_MAX];
	size_t len;
	char hex[BUILD_ID_HEX_MAX], path[PATH_MAX];
	if (build_id_from_hex(build_id, id, &len))
		return err_set(e, EINVAL, "build-ID is not hex");
	build_id_to_hex(id, len, hex);
	struct symz_index *idx;
	struct symz_build_options bo = {.debug_dir = c->debug_dir};
	if (c->cache_dir) {
		struct err ignored = {{0}};
		symz_cache_path(path, sizeof(path), c->cache_dir, id, len);
		if (symz_index_open(path, &idx, &ignored) == 0)
			return keep(c, idx, out);
	}
	const char *dir = c->debug_dir ? c->debug_dir : "/usr/lib/debug";
	snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", dir, hex, hex + 2);
	if (access(path, R_OK) == 0 || file_has_build_id(filename, id, len)) {
		if (access(path, R_OK) != 0)
			snprintf(path, sizeof(path), "%s", filename);
		int r = symz_open_for_elf(path, &bo, c->cache_dir, &idx, e);
		return r ? r : keep(c, idx, out);
	}
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (!c->server && (!urls || !*urls))
		return err_set(e, ENOENT,
			       "not in %s/.build-id, not at '%s', no --server or $DEBUGINFOD_URLS",
			       dir, filename);
	char *fetched = NULL;
	int r = symz_fetch_debuginfo(c->server, c->token, id, len, &fetched, e);
	if (!r)
		r = symz_open_for_elf(fetched, &bo, c->cache_dir, &idx, e);
	free(fetched);
	return r ? r : keep(c, idx, out);
}

static void usage(FILE *f)
{
	fputs("usage: symbolize pprof IN -o OUT [--server URL [--token-file F]] [--debug-dir DIR]\n"
	      "                        [--force]\n"
	      "                        [--kind position|as-is] [--cache-dir DIR | --no-cache]\n"
	      "Reads a gzipped (or plain) profile.proto whose mappings carry build-IDs and whose\n"
	      "locations hold file addresses; writes it gzipped with Function/Line filled in.\n"
	      "  --force        re-symbolize locations that already have lines\n"
	      "  --kind K       position (default): location_id[0] of a sample is a leaf PC, the\n"
	      "                 others return addresses (looked up at address-1);\n"
	      "                 as-is: every address looked up unchanged (what pprof does)\n",
	      f);
}

int symz_pprof_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, 0, 'o'},
		{"server", required_argument, 0, 's'},
		{"token-file", required_argument, 0, 't'},
		{"debug-dir", required_argument, 0, 'd'},
		{"force", no_argument, 0, 'f'},
		{"kind", required_argument, 0, 'k'},
		{"cache-dir", required_argument, 0, 'c'},
		{"no-cache", no_argument, 0, 'n'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct resolver_ctx ctx = {0};
	struct symz_pprof_options so = {.resolve_index = resolve, .ctx = &ctx};
	const char *outp = NULL;
	bool no_cache = false;
	char cache_buf[PATH_MAX], token[256];
	struct err te = {{0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': outp = optarg; break;
		case 's': ctx.server = optarg; break;
		case 't':
			if (symz_read_token_file(optarg, token, sizeof(token), &te) < 0) {
				fprintf(stderr, "symbolize pprof: %s\n", te.msg);
				return 2;
			}
			ctx.token = token;
			break;
		case 'd': ctx.debug_dir = optarg; break;
		case 'f': so.force = true; break;
		case 'c': ctx.cache_dir = optarg; break;
		case 'n': no_cache = true; break;
		case 'k':
			if (!strcmp(optarg, "position"))
				so.kind = SYMZ_PPROF_KIND_POSITION;
			else if (!strcmp(optarg, "as-is"))
				so.kind = SYMZ_PPROF_KIND_AS_IS;
			else {
				fprintf(stderr, "symbolize pprof: --kind must be position or as-is\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || !outp) {
		usage(stderr);
		return 2;
	}
	const char *in = argv[optind];
	if (!ctx.cache_dir && !no_cache) {
		const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		if (x && *x)
			snprintf(cache_buf, sizeof(cache_buf), "%s/symbolize", x);
		else if (home && *home)
			snprintf(cache_buf, sizeof(cache_buf), "%s/.cache/symbolize", home);
		ctx.cache_dir = (x && *x) || (home && *home) ? cache_buf : NULL;
	}
	if (no_cache)
		ctx.cache_dir = NULL;

	struct err e = {{0}};
	struct pprof_profile *p;
	if (pprof_read_file(in, &p, &e)) {
		fprintf(stderr, "symbolize pprof: %s: %s\n", in, e.msg);
		return 1;
	}
	struct symz_pprof_report rep;
	int rc = 0;
	if (symz_pprof_symbolize(p, &so, &rep, &e)) {
		fprintf(stderr, "symbolize pprof: %s: %s\n", in, e.msg);
		rc = 1;
	} else if (pprof_write_file(p, outp, true, &e)) {
		fprintf(stderr, "symbolize pprof: %s\n", e.msg);
		rc = 1;
	} else {
		fprintf(stderr,
			"symbolize pprof: %zu locations: %zu symbolized, %zu already symbolized (kept), "
			"%zu not covered by debuginfo, %zu with missing debuginfo, %zu without build-ID\n",
			rep.locations, rep.symbolized, rep.kept, rep.unknown, rep.missing,
			rep.no_build_id);
		for (size_t i = 0; i < rep.n_missing_ids; i++)
			fprintf(stderr, "  missing debuginfo: %s (%s, %zu locations): %s\n",
				rep.missing_ids[i].build_id,
				rep.missing_ids[i].filename[0] ? rep.missing_ids[i].filename : "no file name",
				rep.missing_ids[i].locations, rep.missing_ids[i].reason);
	}
	symz_pprof_report_free(&rep);
	pprof_free(p);
	for (size_t i = 0; i < ctx.nopened; i++)
		symz_index_free(ctx.opened[i]);
	free(ctx.opened);
	return rc;
}
