/* `symbolize pprof IN -o OUT`: (re-)symbolize a profile on disk.  The work is
 * in the library (symz_pprof_symbolize); this file finds indexes by build-ID
 * and perf-map snapshots by SHA-256. */
#include "symbolizer/cli.h"
#include "pprof/pprof.h"
#include "common/sha256.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct resolver_ctx {
	const char *debug_dir, *server, *cache_dir;
	const char *token; /* --token-file's, for a --private server */
	const char *perf_map_dir;
	struct symz_index **opened;
	size_t nopened;
	struct symz_jit_map **maps;
	size_t nmaps;
	const struct pprof_profile *profile; /* for a kallsyms snapshot it carries */
	struct symz_kallsyms *kallsyms;     /* the one the profile names, once read */
};

/* Perf-map snapshots are read whole; the agent caps what it captures far
 * below this. */
#define PERF_MAP_MAX_SIZE (256u << 20)

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

/* A snapshot named by its SHA-256 under --perf-map-dir: DIR/<sha256>,
 * DIR/<sha256>.EXT (as profiler-agent --output writes them), or DIR/ab/cdef…
 * as the server stores them (DATA/profiles/).  The content must hash to its
 * name: a stale or edited file would name frames wrongly. */
static int read_snapshot(const char *dir, const char *sha, const char *ext, uint8_t **text,
			 size_t *size, struct err *e)
{
	if (!dir)
		return err_set(e, ENOENT, "no --perf-map-dir given");
	char flat[PATH_MAX], with_ext[PATH_MAX], split[PATH_MAX], got[SHA256_HEX_LEN + 1];
	snprintf(flat, sizeof(flat), "%s/%s", dir, sha);
	snprintf(with_ext, sizeof(with_ext), "%s/%s.%s", dir, sha, ext);
	snprintf(split, sizeof(split), "%s/%.2s/%s", dir, sha, sha + 2);
	const char *path = access(flat, R_OK) == 0 ? flat : access(with_ext, R_OK) == 0 ? with_ext
										    : split;
	if (access(path, R_OK) != 0)
		return err_set(e, ENOENT, "none of %s, %s, %s exists", flat, with_ext, split);
	int r = read_file(path, PERF_MAP_MAX_SIZE, text, size, e);
	if (r)
		return r;
	if ((r = sha256_hex_of(*text, *size, got)) < 0)
		err_set(e, -r, "%s: cannot hash", path);
	else if (strcmp(got, sha) != 0)
		r = err_set(e, EINVAL, "%s: content hashes to %s, not to its name", path, got);
	if (r) {
		free(*text);
		*text = NULL;
	}
	return r;
}

static int resolve_perf_map(void *vctx, const char *sha, const struct symz_jit_map **out,
			    struct err *e)
{
	struct resolver_ctx *c = vctx;
	uint8_t *text;
	size_t size, bad;
	int r = read_snapshot(c->perf_map_dir, sha, "map", &text, &size, e);
	if (r)
		return r;
	struct symz_jit_map *map = NULL;
	r = symz_perf_map_parse((const char *)text, size, &map, &bad, e);
	free(text);
	if (r)
		return r;
	struct symz_jit_map **n = realloc(c->maps, (c->nmaps + 1) * sizeof(*n));
	if (!n) {
		symz_jit_free(map);
		return err_set(e, ENOMEM, "out of memory");
	}
	c->maps = n;
	c->maps[c->nmaps++] = map;
	*out = map;
	return 0;
}

/* The kallsyms snapshot: carried by the profile itself (the first profile
 * of an agent run has it as a comment, docs/profiler-agent.md), else read
 * from --perf-map-dir like a perf map. */
static int resolve_kallsyms(void *vctx, const char *sha, const struct symz_kallsyms **out,
			    struct err *e)
{
	struct resolver_ctx *c = vctx;
	static const char head[] = "profiler-agent.kallsyms sha256=";
	if (c->kallsyms) {
		*out = c->kallsyms;
		return 0;
	}
	const struct pprof_profile *p = c->profile;
	for (size_t i = 0; p && i < p->comments.len; i++) {
		const char *t = pprof_str(p, VEC_AT(&p->comments, int64_t, i));
		const char *nl = strchr(t, '\n');
		if (strncmp(t, head, sizeof(head) - 1) || !nl ||
		    strncasecmp(t + sizeof(head) - 1, sha, SHA256_HEX_LEN))
			continue;
		char got[SHA256_HEX_LEN + 1];
		if (sha256_hex_of(nl + 1, strlen(nl + 1), got) < 0 || strcmp(got, sha))
			return err_set(e, EINVAL, "the profile's kallsyms snapshot hashes to %s, not %s",
				       got, sha);
		int r = symz_kallsyms_parse(nl + 1, strlen(nl + 1), &c->kallsyms, e);
		*out = c->kallsyms;
		return r;
	}
	uint8_t *text;
	size_t size;
	int r = read_snapshot(c->perf_map_dir, sha, "kallsyms", &text, &size, e);
	if (r)
		return r;
	r = symz_kallsyms_parse((const char *)text, size, &c->kallsyms, e);
	free(text);
	*out = c->kallsyms;
	return r;
}

static void usage(FILE *f)
{
	fputs("usage: symbolize pprof IN -o OUT [--server URL [--token-file F]] [--debug-dir DIR]\n"
	      "                        [--perf-map-dir DIR] [--force]\n"
	      "                        [--kind position|as-is] [--cache-dir DIR | --no-cache]\n"
	      "Reads a gzipped (or plain) profile.proto whose mappings carry build-IDs and whose\n"
	      "locations hold file addresses; writes it gzipped with Function/Line filled in.\n"
	      "  --perf-map-dir DIR\n"
	      "                 name JIT frames (mappings \"perf-map:<sha256>\") from perf-map\n"
	      "                 snapshots named by their SHA-256: DIR/<sha256> (flat), or\n"
	      "                 DIR/ab/cdef... as the server stores them (give DATA/profiles);\n"
	      "                 kernel frames from the kallsyms snapshot the profile names, when\n"
	      "                 the profile does not carry it itself (DIR/<sha256>.kallsyms too)\n"
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
		{"perf-map-dir", required_argument, 0, 'p'},
		{"force", no_argument, 0, 'f'},
		{"kind", required_argument, 0, 'k'},
		{"cache-dir", required_argument, 0, 'c'},
		{"no-cache", no_argument, 0, 'n'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct resolver_ctx ctx = {0};
	struct symz_pprof_options so = {.resolve_index = resolve,
					.resolve_perf_map = resolve_perf_map,
					.resolve_kallsyms = resolve_kallsyms,
					.ctx = &ctx};
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
		case 'p': ctx.perf_map_dir = optarg; break;
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
	if (!ctx.cache_dir && !no_cache)
		ctx.cache_dir = symz_default_cache_dir(cache_buf, sizeof(cache_buf));
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
	ctx.profile = p;
	if (symz_pprof_symbolize(p, &so, &rep, &e)) {
		fprintf(stderr, "symbolize pprof: %s: %s\n", in, e.msg);
		rc = 1;
	} else if (pprof_write_file(p, outp, true, &e)) {
		fprintf(stderr, "symbolize pprof: %s\n", e.msg);
		rc = 1;
	} else {
		fprintf(stderr,
			"symbolize pprof: %zu locations: %zu symbolized, %zu already symbolized (kept), "
			"%zu not covered by debuginfo, %zu with missing debuginfo, %zu without build-ID; "
			"%zu JIT frames named from perf maps, %zu kernel frames from kallsyms\n",
			rep.locations, rep.symbolized, rep.kept, rep.unknown, rep.missing,
			rep.no_build_id, rep.jit, rep.kernel);
		for (size_t i = 0; i < rep.n_missing_ids; i++) {
			const struct symz_pprof_missing *mi = &rep.missing_ids[i];
			if (mi->kallsyms)
				fprintf(stderr, "  missing kallsyms snapshot: %s (%zu locations): %s\n",
					mi->build_id + strlen("kallsyms:"), mi->locations, mi->reason);
			else if (mi->perf_map)
				fprintf(stderr, "  missing perf map: %s (%zu locations): %s\n",
					mi->build_id + strlen(SYMZ_PERF_MAP_PREFIX), mi->locations, mi->reason);
			else
				fprintf(stderr, "  missing debuginfo: %s (%s, %zu locations): %s\n",
					mi->build_id, mi->filename[0] ? mi->filename : "no file name",
					mi->locations, mi->reason);
		}
	}
	symz_pprof_report_free(&rep);
	pprof_free(p);
	for (size_t i = 0; i < ctx.nopened; i++)
		symz_index_free(ctx.opened[i]);
	free(ctx.opened);
	for (size_t i = 0; i < ctx.nmaps; i++)
		symz_jit_free(ctx.maps[i]);
	free(ctx.maps);
	symz_kallsyms_free(ctx.kallsyms);
	return rc;
}
