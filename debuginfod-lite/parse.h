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

#endif
