/* Parsers for untrusted request input, kept free of server state so that
 * the fuzz target (tests/fuzz/fuzz_server.c) can call them directly.
 * Each returns 0 on success, or fails with a one-line reason in msg. */
#ifndef DEBUGINFOD_LITE_PARSE_H
#define DEBUGINFOD_LITE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "symbolizer/symbolizer.h"

/* Range: bytes=a-b | bytes=a- | bytes=-n (one range; others get the whole
 * body).  Returns 1 with [*first,*last] for a satisfiable range, 0 for no
 * (usable) Range header, -1 for an unsatisfiable one. */
int http_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last);

/* Accept-Encoding: which of our codings the client takes (q=0 refuses). */
enum content_coding { CODING_IDENTITY, CODING_GZIP, CODING_ZSTD };
enum content_coding http_pick_coding(const char *accept_encoding);

/* POST /symbolize request (docs/http-api.md). */
struct symbolize_limits {
	size_t max_requests;  /* entries in "requests" */
	size_t max_addresses; /* over all entries */
};
struct symbolize_entry {
	char build_id[BUILD_ID_HEX_MAX]; /* lowercase */
	enum symz_frame_kind kind;
	bool inlines;       /* all inline frames (default) or the innermost only */
	size_t first, count; /* slice of symbolize_batch.addrs */
};
struct symbolize_batch {
	struct symbolize_entry *entries;
	size_t n_entries;
	uint64_t *addrs;
	size_t n_addrs;
};
/* Returns 0, or -EINVAL (malformed) / -E2BIG (over a limit) with msg set. */
int symbolize_parse(const char *body, size_t len, const struct symbolize_limits *lim,
		    struct symbolize_batch *out, char *msg, size_t msg_size);
void symbolize_batch_free(struct symbolize_batch *b);

/* Does `path` match a /metadata glob (fnmatch with FNM_PATHNAME, as elfutils)? */
bool metadata_glob_match(const char *glob, const char *path);

/* --- The strict HTTP edge (docs/security.md "The HTTP edge") --- */

/* libmicrohttpd's unescape step (MHD_OPTION_UNESCAPE_CALLBACK), for the
 * path and every query key and value: %XX decoded in place.  A decoded NUL
 * would end the C string and silently drop the rest, so it is written as
 * DEL (0x7f) instead, which has_control_byte() then refuses like any other
 * control byte.  Returns the new length. */
size_t http_unescape(char *s);

/* The query parameters of a request, as libmicrohttpd lists them (every
 * pair, in order; a repeated key appears once per occurrence). */
#define QUERY_MAX_PARAMS 64
struct query_param {
	const char *key, *value; /* value may be NULL ("?flag") */
};
/* Control bytes in a key or value, a single-valued key given twice (every
 * key but those in `repeatable`, a NULL-terminated list), more than
 * QUERY_MAX_PARAMS pairs: -EINVAL with msg set. */
int query_params_check(const struct query_param *p, size_t n, const char *const *repeatable,
		       char *msg, size_t msg_size);
/* A query number: decimal digits only (no sign, no spaces, no 0x), at most
 * max.  Returns 0 or -EINVAL (-ERANGE over max). */
int parse_query_u64(const char *s, uint64_t max, uint64_t *out);

/* A header value built from stored bytes (X-DEBUGINFOD-FILE): control
 * bytes, DEL, '%' and bytes >= 0x80 become %XX, so the value is printable
 * ASCII and percent-decodes back to the stored name.  Truncated to size. */
void http_header_escape(const char *in, char *out, size_t size);

#endif
