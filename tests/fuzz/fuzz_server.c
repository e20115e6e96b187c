/* libFuzzer target for debuginfod-lite's request parsers: the bytes are
 * given, as a string, to each parser that sees untrusted input — the
 * /buildid/ path, source-path canonicalization, Range, Accept-Encoding, the
 * /metadata glob, the edge's unescaping, query numbers and parameters,
 * header escaping, UTF-8 scrubbing — and, as a body, to the POST
 * /symbolize JSON parser.
 * Besides ASan/UBSan it checks each parser's promises (abort on a broken
 * one).  `make fuzz FUZZ=server`; the suite replays seeds_server.sh. */
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/parse.h"
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/sources.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

static bool canonical_form(const char *p)
{
	if (p[0] != '/')
		return false;
	return !strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../") &&
	       strcmp(p + strlen(p) - (strlen(p) >= 2 ? 2 : 0), "/.") != 0 &&
	       strcmp(p + strlen(p) - (strlen(p) >= 3 ? 3 : 0), "/..") != 0;
}

static void check_buildid_path(const char *s)
{
	struct request *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	int st = parse_buildid_path(r, s);
	if (st == 0) {
		if (!build_id_valid(r->build_id, strlen(r->build_id)))
			abort();
		if (r->kind == ART_SOURCE && !canonical_form(r->name))
			abort();
	} else if (st < 400 || st > 499 || !r->body_msg[0]) {
		abort(); /* a refusal is a 4xx with a reason */
	}
	free(r);
}

static void check_canonical(const char *s)
{
	char out[ARTIFACT_NAME_MAX], again[ARTIFACT_NAME_MAX];
	if (s[0] != '/' || !path_canonical(s, out, sizeof(out)))
		return;
	if (!canonical_form(out) || !path_canonical(out, again, sizeof(again)) ||
	    strcmp(out, again) != 0)
		abort(); /* not canonical, or not idempotent */
}

static void check_range(const char *s, uint64_t size)
{
	uint64_t first = 0, last = 0;
	int rc = http_parse_range(s, size, &first, &last);
	if (rc == 1 && (first > last || last >= size))
		abort();
}

static void check_symbolize(const uint8_t *data, size_t size)
{
	struct symbolize_limits lim = { .max_requests = 64, .max_addresses = 4096 };
	struct symbolize_batch b;
	char msg[256];
	int rc = symbolize_parse((const char *)data, size, &lim, &b, msg, sizeof(msg));
	if (rc < 0) {
		if (!msg[0])
			abort(); /* every refusal says why */
		return;
	}
	if (b.n_entries > lim.max_requests || b.n_addrs > lim.max_addresses)
		abort();
	for (size_t i = 0; i < b.n_entries; i++) {
		const struct symbolize_entry *en = &b.entries[i];
		if (en->first + en->count > b.n_addrs ||
		    !build_id_valid(en->build_id, strlen(en->build_id)))
			abort();
	}
	symbolize_batch_free(&b);
}

/* The edge: what reaches a handler has no NUL cut short and no control
 * byte unseen; numbers are in range; headers stay printable; JSON text
 * stays UTF-8. */
static void check_edge(const char *s, const uint8_t *data, size_t size)
{
	char *u = strdup(s);
	if (!u)
		return;
	size_t n = http_unescape(u);
	if (n != strlen(u) || n > strlen(s))
		abort();
	/* A %00 (or raw control byte) in s is still seen after decoding. */
	if (memchr(data, 0, size) == NULL && (strstr(s, "%00") || has_control_byte(s)) &&
	    !has_control_byte(u))
		abort();
	free(u);
	uint64_t v = 0;
	if (parse_query_u64(s, 1000000, &v) == 0 && v > 1000000)
		abort();
	char hdr[256];
	http_header_escape(s, hdr, sizeof(hdr));
	for (const char *p = hdr; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			abort();
	char *clean = utf8_scrub(s);
	if (clean && !utf8_valid(clean, strlen(clean)))
		abort();
	free(clean);
	/* The bytes as '&'-separated key=value pairs. */
	struct query_param qp[QUERY_MAX_PARAMS + 2];
	size_t nq = 0;
	char *q = strdup(s), *save = NULL;
	for (char *tok = q ? strtok_r(q, "&", &save) : NULL; tok && nq < ARRAY_SIZE(qp);
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		if (eq)
			*eq++ = 0;
		qp[nq].key = tok;
		qp[nq++].value = eq;
	}
	static const char *const rep[] = { "label", NULL };
	char msg[200];
	msg[0] = 0;
	if (query_params_check(qp, nq, rep, msg, sizeof(msg)) < 0 && !msg[0])
		abort(); /* every refusal says why */
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	check_buildid_path(s);
	check_canonical(s);
	check_range(s, 0);
	check_range(s, 1000);
	check_range(s, UINT64_MAX);
	(void)http_pick_coding(s);
	(void)metadata_glob_match(s, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	check_symbolize(data, size);
	check_edge(s, data, size);
	free(s);
	return 0;
}
