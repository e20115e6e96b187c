/* GET /metadata?key=file|glob&value=V, as elfutils 0.192+ answers it
 * (research/debuginfod.md §1.1): the indexed debuginfo and executable
 * files whose name equals V (file) or matches V with fnmatch(FNM_PATHNAME)
 * (glob), as {"results":[{"type","buildid","file"}…],"complete":bool}. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Enough for any real query; past it the answer says complete:false. */
#define METADATA_MAX_RESULTS 10000

struct meta_walk {
	json_t *results;
	const char *glob; /* NULL for key=file */
	size_t n;
	bool truncated;
};

static int add_result(void *ctx, const char *build_id, enum artifact_kind kind, const char *file)
{
	struct meta_walk *w = ctx;
	if (w->glob && !metadata_glob_match(w->glob, file))
		return 0;
	if (w->n >= METADATA_MAX_RESULTS) {
		w->truncated = true;
		return 1;
	}
	/* Names are bytes (a scanned path, an older upload's name): the
	 * answer shows them scrubbed to UTF-8, or one name would fail it. */
	char *clean = utf8_scrub(file);
	json_t *o = clean ? json_pack("{s:s,s:s,s:s}", "type",
				      kind == ART_DEBUGINFO ? "debuginfo" : "executable",
				      "buildid", build_id, "file", clean)
			  : NULL;
	free(clean);
	if (!o || json_array_append_new(w->results, o) < 0)
		return -ENOMEM;
	w->n++;
	return 0;
}

enum MHD_Result handle_metadata(struct request *r)
{
	const char *key = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "key");
	const char *value = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "value");
	if (!key || !value || !*value)
		return respond_text(r, 400, "/metadata webapi error, need key and value\n");
	bool glob = strcmp(key, "glob") == 0;
	if (!glob && strcmp(key, "file") != 0)
		return respond_text(r, 400, "/metadata webapi error, unsupported key\n");
	if (strlen(value) > 4096)
		return respond_text(r, 400, "/metadata webapi error, value too long\n");
	struct meta_walk w = { .results = json_array(), .glob = glob ? value : NULL };
	if (!w.results)
		return MHD_NO;
	struct err e = { { 0 } };
	int rc = store_metadata(r->srv->store, glob, value, add_result, &w, &e);
	if (rc < 0) {
		json_decref(w.results);
		return respond_text(r, 503, "/metadata error: %s\n", e.msg);
	}
	json_t *root = json_pack("{s:o,s:b}", "results", w.results, "complete", !w.truncated);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!text)
		return MHD_NO;
	return respond_compressible(r, 200, "application/json", text, strlen(text));
}
