/* debuginfod-upload: send executables and debuginfo to debuginfod-lite.
 *
 * For each FILE: read its build-ID, decide what it can serve as (an
 * executable, debuginfo, or both when unstripped), ask the server with HEAD
 * whether it already has as good a copy, and PUT what is missing.  Transient
 * failures (connection trouble, 5xx) are retried; any file that could not be
 * uploaded makes the exit status non-zero.
 *
 * With --sources, the source files its DWARF names are read from the build
 * tree and PUT as /buildid/<id>/source/<the name in the DWARF>: the server
 * serves uploaded debuginfo's sources only from such uploads.  A name is
 * mapped back to the disk with --prefix-map (the inverse of the compiler's
 * -fdebug-prefix-map), and read only under --source-root (the build tree),
 * so a build that names /etc/shadow does not make CI upload it. */
#include "common/common.h"
#include "common/hashmap.h"
#include "common/sha256.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/sources.h"
#include "debuginfod-lite/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX_MAPS_MAX 64

struct options {
	const char *server;
	const char *token;
	unsigned retries;
	bool progress;
	bool quiet;
	bool sources;
	/* Sources are read only below these (default: the current directory). */
	struct source_policy source_roots;
	/* --prefix-map NEW=OLD: a name under NEW in the DWARF is at OLD on disk. */
	char map_new[PREFIX_MAPS_MAX][PATH_MAX], map_old[PREFIX_MAPS_MAX][PATH_MAX];
	int n_maps;
	/* Build-IDs whose sources were sent already (an unstripped binary and
	 * its debug file name the same ones). */
	struct hashmap sources_done;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: debuginfod-upload --server URL [--token TOKEN] [options] FILE...\n"
		"Upload executables and their debuginfo (separate or embedded) by build-ID.\n"
		"  --server URL      the debuginfod-lite server\n"
		"  --token TOKEN     bearer token (default $DEBUGINFOD_UPLOAD_TOKEN)\n"
		"  --token-file F    read the token from F\n"
		"  --retries N       retries for transient failures (default 3)\n"
		"  --no-progress     no progress bar even on a terminal\n"
		"  --quiet           only errors\n"
		"  --sources         also upload the source files the DWARF names (relative\n"
		"                    names joined to DW_AT_comp_dir), read from the build\n"
		"                    tree; missing ones are skipped with a warning\n"
		"  --source-root DIR read sources only below DIR (repeatable; default the\n"
		"                    current directory); files elsewhere are not read\n"
		"  --prefix-map NEW=OLD  a DWARF name under NEW is found under OLD on disk\n"
		"                    (for builds with -fdebug-prefix-map=OLD=NEW; repeatable);\n"
		"                    the DWARF's name stays the key on the server\n"
		"Exits 0 when every file (and every source found) is on the server afterwards.\n");
}

struct head_result {
	bool present;
	bool dwarf; /* X-DEBUGINFOD-LITE-QUALITY: dwarf */
	char etag[SHA256_HEX_LEN + 1]; /* a stored blob's SHA-256, "" if none */
};

static size_t on_head_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct head_result *h = arg;
	size_t n = size * nmemb;
	if (n > 26 && strncasecmp(data, "X-DEBUGINFOD-LITE-QUALITY:", 26) == 0)
		h->dwarf = memmem(data + 26, n - 26, "dwarf", 5) != NULL;
	if (n >= 5 + 2 + SHA256_HEX_LEN && strncasecmp(data, "ETag:", 5) == 0) {
		const char *q = memchr(data, '"', n);
		if (q && (size_t)(data + n - q) > SHA256_HEX_LEN + 1 && q[SHA256_HEX_LEN + 1] == '"') {
			memcpy(h->etag, q + 1, SHA256_HEX_LEN);
			h->etag[SHA256_HEX_LEN] = 0;
		}
	}
	return n;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

static int progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const char *name = arg;
	if (ultotal <= 0)
		return 0;
	int width = 30, done = (int)(width * ulnow / ultotal);
	fprintf(stderr, "\r%-28.28s [%.*s%*s] %3d%%", name, done,
		"##############################", width - done, "", (int)(100 * ulnow / ultotal));
	return 0;
}

/* -1 transport error, else the HTTP status.  The token goes along: a
 * --private server answers reads only with one. */
static long head(const struct options *o, const char *url, struct head_result *h)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	memset(h, 0, sizeof(*h));
	char auth[600];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token ? o->token : "");
	struct curl_slist *hdrs = o->token ? curl_slist_append(NULL, auth) : NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	CURLcode cc = curl_easy_perform(c);
	long code = -1;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	h->present = code == 200;
	return code;
}

/* PUT the whole of f (from its start).  -1 transport error, else the HTTP
 * status; the body (a reason) in msg.  `label` names it on the progress
 * bar and, when send_name, in X-Debuginfod-Lite-Filename. */
static long put(const struct options *o, const char *url, FILE *f, const char *label,
		bool send_name, uint64_t size, char *msg, size_t msg_size)
{
	if (fseeko(f, 0, SEEK_SET) < 0) {
		snprintf(msg, msg_size, "%s", strerror(errno));
		return -2;
	}
	CURL *c = curl_easy_init();
	char auth[600], fname[300], pathcopy[PATH_MAX];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token ? o->token : "");
	snprintf(pathcopy, sizeof(pathcopy), "%s", label);
	/* The server refuses a name with control bytes or invalid UTF-8, and
	 * ignores one of 200 bytes or more: then send none and let it name
	 * the upload <build-id>.<kind>. */
	const char *base = basename(pathcopy);
	bool name_ok = strlen(base) < 200 && !has_control_byte(base) && utf8_valid(base, strlen(base));
	snprintf(fname, sizeof(fname), "X-Debuginfod-Lite-Filename: %s", name_ok ? base : "");
	struct curl_slist *hdrs = curl_slist_append(NULL, auth);
	if (send_name && name_ok)
		hdrs = curl_slist_append(hdrs, fname);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
	FILE *body = fmemopen(msg, msg_size - 1, "w");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READDATA, f);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (body)
		curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	else
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	if (o->progress) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, basename(pathcopy));
	}
	CURLcode cc = curl_easy_perform(c);
	long code = -1;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (body)
		fclose(body);
	msg[msg_size - 1] = 0;
	msg[strcspn(msg, "\n")] = 0;
	if (cc != CURLE_OK)
		snprintf(msg, msg_size, "%s", curl_easy_strerror(cc));
	if (o->progress)
		fprintf(stderr, "\r%*s\r", 70, "");
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return code;
}

static bool transient(long code)
{
	return code == -1 || code == 408 || code == 429 || (code >= 500 && code != 501);
}

/* Does the server already have what we would send? */
typedef bool (*present_fn)(const struct head_result *h, const void *ctx);

/* HEAD url; PUT f unless present() says the server has it.  Transient
 * failures are retried.  1 already there, 0 uploaded, -1 failed (the
 * status in *code, the reason in msg). */
static int head_then_put(const struct options *o, const char *url, FILE *f, const char *label,
			 bool send_name, uint64_t size, present_fn present, const void *ctx,
			 long *code, char *msg, size_t msg_size)
{
	*code = 0;
	msg[0] = 0;
	for (unsigned attempt = 0; attempt <= o->retries; attempt++) {
		if (attempt)
			usleep(250000u << (attempt < 5 ? attempt : 5));
		struct head_result h;
		long hc = head(o, url, &h);
		if (hc == -1 && attempt < o->retries)
			continue;
		if (h.present && present(&h, ctx))
			return 1;
		*code = put(o, url, f, label, send_name, size, msg, msg_size);
		if (*code == 200 || *code == 201)
			return 0;
		if (*code == -2 || !transient(*code))
			break;
	}
	return -1;
}

/* An ELF kind is there when as good: DWARF is never replaced by less. */
static bool elf_present(const struct head_result *h, const void *ctx)
{
	const bool *ours_dwarf = ctx;
	return h->dwarf || !*ours_dwarf;
}

/* 0 uploaded or already there, -1 failed. */
static int upload_kind(const struct options *o, const char *path, const struct elf_info *info,
		       const char *kind, bool ours_dwarf, uint64_t size)
{
	char url[4096];
	snprintf(url, sizeof(url), "%s/buildid/%s/%s", o->server, info->build_id, kind);
	char msg[512] = "";
	long code = 0;
	FILE *f = fopen(path, "rb");
	int rc = -1;
	if (!f) {
		snprintf(msg, sizeof(msg), "%s", strerror(errno));
		code = -2;
	} else {
		bool dwarf_kind = strcmp(kind, "debuginfo") == 0 && ours_dwarf;
		rc = head_then_put(o, url, f, path, true, size, elf_present, &dwarf_kind, &code, msg,
				   sizeof(msg));
		fclose(f);
	}
	if (rc >= 0) {
		if (!o->quiet)
			printf("%s: %s %s %s\n", path, kind, info->build_id,
			       rc == 1 ? "already on the server" : "uploaded");
		return 0;
	}
	fprintf(stderr, "debuginfod-upload: %s: %s upload failed (%s%ld): %s\n", path, kind,
		code < 0 ? "no HTTP status " : "HTTP ", code, msg[0] ? msg : "no reason given");
	return -1;
}

/* --- sources --- */

/* A name set: the hash map drops repeats, its arena keeps one of each. */
static int collect_name(void *ctx, const char *path)
{
	uint64_t unused = 0;
	return hashmap_find(ctx, path, strlen(path), &unused, true) < 0 ? -ENOMEM : 0;
}

/* Where the DWARF's `name` is on disk: the longest --prefix-map NEW that
 * holds it is replaced by its OLD. */
static void disk_path(const struct options *o, const char *name, char *out, size_t size)
{
	int best = -1;
	size_t best_len = 0;
	for (int i = 0; i < o->n_maps; i++) {
		size_t len = strlen(o->map_new[i]);
		if (path_under(name, o->map_new[i]) && (best < 0 || len > best_len)) {
			best = i;
			best_len = len;
		}
	}
	if (best < 0)
		snprintf(out, size, "%s", name);
	else if (strcmp(o->map_new[best], "/") == 0)
		snprintf(out, size, "%s%s", o->map_old[best], name);
	else
		snprintf(out, size, "%s%s", o->map_old[best], name + best_len);
}

/* The server's URL for a source: each byte outside [A-Za-z0-9-._~/]
 * %-encoded, so any name the DWARF holds arrives as it is. */
static int source_url(const struct options *o, const char *build_id, const char *name, char *url,
		      size_t size)
{
	int n = snprintf(url, size, "%s/buildid/%s/source", o->server, build_id);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	size_t len = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
		if (len + 4 > size)
			return -ENAMETOOLONG;
		len += (size_t)snprintf(url + len, size - len, plain ? "%c" : "%%%02X", *p);
	}
	return 0;
}

static bool same_content(const struct head_result *h, const void *ctx)
{
	return strcmp(h->etag, ctx) == 0;
}

struct source_counts {
	unsigned uploaded, present, missing, outside, failed;
};

/* One source: 0 sent, already there or skipped (counted), -1 failed. */
static int upload_source(const struct options *o, const char *build_id, const char *name,
			 struct source_counts *counts)
{
	char disk[PATH_MAX + 1], url[3 * PATH_MAX + 2048], msg[512];
	struct err e = { { 0 } };
	disk_path(o, name, disk, sizeof(disk));
	int fd;
	struct stat st;
	int rc = source_open_local(&o->source_roots, disk, &fd, &st, &e);
	if (rc == -ENOENT) {
		counts->missing++;
		fprintf(stderr, "debuginfod-upload: warning: source %s: not on disk (%s), skipped\n",
			name, disk);
		return 0;
	}
	if (rc < 0) {
		counts->outside++;
		return 0;
	}
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		close(fd);
		fprintf(stderr, "debuginfod-upload: source %s: %s\n", disk, strerror(errno));
		counts->failed++;
		return -1;
	}
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1];
	uint8_t buf[65536];
	size_t got;
	sha256_init(&h);
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		sha256_update(&h, buf, got);
	sha256_final_hex(&h, hex);
	long code = 0;
	rc = -1;
	if (ferror(f))
		snprintf(msg, sizeof(msg), "read error");
	else if (source_url(o, build_id, name, url, sizeof(url)) < 0)
		snprintf(msg, sizeof(msg), "name too long");
	else
		rc = head_then_put(o, url, f, disk, false, (uint64_t)st.st_size, same_content, hex,
				   &code, msg, sizeof(msg));
	fclose(f);
	if (rc == 1)
		counts->present++;
	if (rc == 0)
		counts->uploaded++;
	if (rc >= 0)
		return 0;
	counts->failed++;
	fprintf(stderr, "debuginfod-upload: source %s (%s): upload failed (%s%ld): %s\n", name, disk,
		code <= 0 ? "no HTTP status " : "HTTP ", code, msg[0] ? msg : "no reason given");
	return -1;
}

/* Every source the DWARF of `path` names, once per build-ID. */
static int upload_sources(struct options *o, const char *path, const char *build_id)
{
	uint64_t unused = 0;
	if (hashmap_find(&o->sources_done, build_id, strlen(build_id), &unused, false) == 1)
		return 0;
	struct hashmap names;
	hashmap_init(&names);
	struct err e = { { 0 } };
	int rc = dwarf_sources_each(path, collect_name, &names, &e);
	if (rc < 0) {
		fprintf(stderr, "debuginfod-upload: %s: cannot list its sources: %s\n", path,
			e.msg[0] ? e.msg : strerror(-rc));
		hashmap_free(&names);
		return -1;
	}
	struct source_counts counts = { 0 };
	size_t size;
	const char *arena = hashmap_arena(&names, &size);
	for (size_t off = 0; off < size; off += strlen(arena + off) + 1)
		if (upload_source(o, build_id, arena + off, &counts) < 0)
			rc = -1;
	if (!o->quiet)
		printf("%s: sources %s: %u uploaded, %u already on the server, %u not on disk, "
		       "%u outside the source roots (not read)\n",
		       path, build_id, counts.uploaded, counts.present, counts.missing,
		       counts.outside);
	hashmap_free(&names);
	if (hashmap_find(&o->sources_done, build_id, strlen(build_id), &unused, true) < 0)
		return -1;
	return rc;
}

static int upload_file(struct options *o, const char *path)
{
	struct elf_object obj;
	struct err e = { { 0 } };
	if (elf_object_open(&obj, path, &e) < 0) {
		fprintf(stderr, "debuginfod-upload: %s: %s\n", path, e.msg);
		return -1;
	}
	struct elf_info info;
	elf_info_read(&obj, &info);
	uint64_t size = obj.image_size;
	elf_object_close(&obj);
	if (!info.build_id[0]) {
		fprintf(stderr, "debuginfod-upload: %s: no build-ID note; cannot be served by ID\n",
			path);
		return -1;
	}
	if (!info.executable && info.debuginfo_quality == QUALITY_NONE) {
		fprintf(stderr, "debuginfod-upload: %s: neither code nor debug info to upload\n", path);
		return -1;
	}
	int rc = 0;
	bool dwarf = info.debuginfo_quality >= QUALITY_DWARF;
	if (info.executable && upload_kind(o, path, &info, "executable", dwarf, size) < 0)
		rc = -1;
	if (info.debuginfo_quality != QUALITY_NONE &&
	    upload_kind(o, path, &info, "debuginfo", dwarf, size) < 0)
		return -1; /* its sources would be refused: the server checks them against it */
	if (o->sources && dwarf && upload_sources(o, path, info.build_id) < 0)
		rc = -1;
	return rc;
}

/* --prefix-map NEW=OLD (split at the first '=', as the compiler does). */
static int add_prefix_map(struct options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char new_part[PATH_MAX], old_part[PATH_MAX];
	if (!eq || arg[0] != '/' || eq[1] == 0 || (size_t)(eq - arg) >= sizeof(new_part)) {
		fprintf(stderr, "debuginfod-upload: --prefix-map %s: expected NEW=OLD with an "
			"absolute NEW (the name in the DWARF)\n", arg);
		return -1;
	}
	if (o->n_maps >= PREFIX_MAPS_MAX) {
		fprintf(stderr, "debuginfod-upload: more than %d --prefix-map\n", PREFIX_MAPS_MAX);
		return -1;
	}
	memcpy(new_part, arg, (size_t)(eq - arg));
	new_part[eq - arg] = 0;
	snprintf(old_part, sizeof(old_part), "%s", eq + 1);
	/* Compare the NEW side as the DWARF names are compared: canonical;
	 * a trailing slash on OLD would double the one the name keeps. */
	if (!path_canonical(new_part, o->map_new[o->n_maps], sizeof(o->map_new[0]))) {
		fprintf(stderr, "debuginfod-upload: --prefix-map %s: bad NEW path\n", arg);
		return -1;
	}
	size_t n = strlen(old_part);
	while (n > 1 && old_part[n - 1] == '/')
		old_part[--n] = 0;
	snprintf(o->map_old[o->n_maps], sizeof(o->map_old[0]), "%s", old_part);
	o->n_maps++;
	return 0;
}

int main(int argc, char **argv)
{
	static struct options o; /* the prefix maps are large for a stack */
	hashmap_init(&o.sources_done);
	o.retries = 3;
	o.progress = isatty(2);
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "retries", required_argument, NULL, 'r' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "sources", no_argument, NULL, 'S' },
		{ "source-root", required_argument, NULL, 'R' },
		{ "prefix-map", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static char token_buf[512];
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': o.server = optarg; break;
		case 't': o.token = optarg; break;
		case 'T': {
			FILE *f = fopen(optarg, "r");
			if (!f || !fgets(token_buf, sizeof(token_buf), f)) {
				fprintf(stderr, "debuginfod-upload: --token-file %s: cannot read a token\n",
					optarg);
				if (f)
					fclose(f);
				return 2;
			}
			fclose(f);
			token_buf[strcspn(token_buf, "\r\n")] = 0;
			o.token = token_buf;
			break;
		}
		case 'r': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || end == optarg || v > 20) {
				fprintf(stderr, "debuginfod-upload: --retries %s: expected 0..20\n", optarg);
				return 2;
			}
			o.retries = (unsigned)v;
			break;
		}
		case 'P': o.progress = false; break;
		case 'q': o.quiet = true; break;
		case 'S': o.sources = true; break;
		case 'R': {
			struct err e = { { 0 } };
			if (source_policy_add_root(&o.source_roots, optarg, &e) < 0) {
				fprintf(stderr, "debuginfod-upload: --source-root: %s\n", e.msg);
				return 2;
			}
			break;
		}
		case 'M':
			if (add_prefix_map(&o, optarg) < 0)
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.token)
		o.token = getenv("DEBUGINFOD_UPLOAD_TOKEN");
	if (o.sources && o.source_roots.n_roots == 0) {
		struct err e = { { 0 } };
		if (source_policy_add_root(&o.source_roots, ".", &e) < 0) {
			fprintf(stderr, "debuginfod-upload: %s\n", e.msg);
			return 2;
		}
	}
	if (!o.server || optind >= argc) {
		fprintf(stderr, "debuginfod-upload: %s (see --help)\n",
			!o.server ? "--server URL is required" : "no FILE given");
		return 2;
	}
	if (strncmp(o.server, "http://", 7) != 0 && strncmp(o.server, "https://", 8) != 0) {
		fprintf(stderr, "debuginfod-upload: --server %s: expected an http(s):// URL\n", o.server);
		return 2;
	}
	static char server[2048];
	snprintf(server, sizeof(server), "%s", o.server);
	for (size_t n = strlen(server); n && server[n - 1] == '/'; n--)
		server[n - 1] = 0;
	o.server = server;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int failed = 0;
	for (int i = optind; i < argc; i++)
		if (upload_file(&o, argv[i]) < 0)
			failed++;
	curl_global_cleanup();
	source_policy_free(&o.source_roots);
	hashmap_free(&o.sources_done);
	if (failed)
		fprintf(stderr, "debuginfod-upload: %d of %d file(s) failed\n", failed, argc - optind);
	return failed ? 1 : 0;
}
