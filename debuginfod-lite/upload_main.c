/* debuginfod-upload: send executables and debuginfo to debuginfod-lite.
 *
 * For each FILE: read its build-ID, decide what it can serve as (an
 * executable, debuginfo, or both when unstripped), ask the server with HEAD
 * whether it already has as good a copy, and PUT what is missing.  Transient
 * failures (connection trouble, 5xx) are retried; any file that could not be
 * uploaded makes the exit status non-zero. */
#include "common/common.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct options {
	const char *server;
	const char *token;
	unsigned retries;
	bool progress;
	bool quiet;
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
		"Exits 0 when every file is on the server afterwards.\n");
}

struct head_result {
	bool present;
	bool dwarf; /* X-DEBUGINFOD-LITE-QUALITY: dwarf */
};

static size_t on_head_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct head_result *h = arg;
	size_t n = size * nmemb;
	if (n > 26 && strncasecmp(data, "X-DEBUGINFOD-LITE-QUALITY:", 26) == 0)
		h->dwarf = memmem(data + 26, n - 26, "dwarf", 5) != NULL;
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

/* -1 transport error, else the HTTP status. */
static long head(const struct options *o, const char *url, struct head_result *h)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	memset(h, 0, sizeof(*h));
	curl_easy_setopt(c, CURLOPT_URL, url);
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
	h->present = code == 200;
	return code;
}

/* -1 transport error, else the HTTP status; the body (a reason) in msg. */
static long put(const struct options *o, const char *url, const char *path, uint64_t size,
		char *msg, size_t msg_size)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(msg, msg_size, "%s", strerror(errno));
		return -2;
	}
	CURL *c = curl_easy_init();
	char auth[600], fname[300], pathcopy[PATH_MAX];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token ? o->token : "");
	snprintf(pathcopy, sizeof(pathcopy), "%s", path);
	/* The server refuses a name with control bytes or invalid UTF-8, and
	 * ignores one of 200 bytes or more: then send none and let it name
	 * the upload <build-id>.<kind>. */
	const char *base = basename(pathcopy);
	bool name_ok = strlen(base) < 200 && !has_control_byte(base) && utf8_valid(base, strlen(base));
	snprintf(fname, sizeof(fname), "X-Debuginfod-Lite-Filename: %s", name_ok ? base : "");
	struct curl_slist *hdrs = curl_slist_append(NULL, auth);
	if (name_ok)
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
	fclose(f);
	return code;
}

static bool transient(long code)
{
	return code == -1 || code == 408 || code == 429 || (code >= 500 && code != 501);
}

/* 0 uploaded or already there, -1 failed. */
static int upload_kind(const struct options *o, const char *path, const struct elf_info *info,
		       const char *kind, bool ours_dwarf, uint64_t size)
{
	char url[4096];
	snprintf(url, sizeof(url), "%s/buildid/%s/%s", o->server, info->build_id, kind);
	char msg[512] = "";
	long code = 0;
	for (unsigned attempt = 0; attempt <= o->retries; attempt++) {
		if (attempt)
			usleep(250000u << (attempt < 5 ? attempt : 5));
		struct head_result h;
		long hc = head(o, url, &h);
		if (hc == -1 && attempt < o->retries)
			continue;
		if (h.present && (strcmp(kind, "debuginfo") != 0 || h.dwarf || !ours_dwarf)) {
			if (!o->quiet)
				printf("%s: %s %s already on the server\n", path, kind, info->build_id);
			return 0;
		}
		code = put(o, url, path, size, msg, sizeof(msg));
		if (code == 200 || code == 201) {
			if (!o->quiet)
				printf("%s: %s %s uploaded\n", path, kind, info->build_id);
			return 0;
		}
		if (code == -2 || !transient(code))
			break;
	}
	fprintf(stderr, "debuginfod-upload: %s: %s upload failed (%s%ld): %s\n", path, kind,
		code < 0 ? "no HTTP status " : "HTTP ", code, msg[0] ? msg : "no reason given");
	return -1;
}

static int upload_file(const struct options *o, const char *path)
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
		rc = -1;
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { .retries = 3, .progress = isatty(2) };
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "retries", required_argument, NULL, 'r' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
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
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.token)
		o.token = getenv("DEBUGINFOD_UPLOAD_TOKEN");
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
	if (failed)
		fprintf(stderr, "debuginfod-upload: %d of %d file(s) failed\n", failed, argc - optind);
	return failed ? 1 : 0;
}
