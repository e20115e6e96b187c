/* GET /metadata?key=file|glob&value=V, as elfutils 0.192+ answers it: the
 * indexed debuginfo and executable files whose name equals V (file) or
 * matches V with fnmatch(FNM_PATHNAME) (glob), as
 * {"results":[{"type","buildid","file"}…],"complete":bool}.
 *
 * Federated as elfutils does: with --upstream servers, each one's
 * /metadata answer is merged in (duplicates dropped), and "complete" is
 * false when one failed, answered incomplete, or the merge was cut. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Enough for any real query; past it the answer says complete:false. */
#define METADATA_MAX_RESULTS 10000

struct meta_walk {
	json_t *results;
	json_t *seen;     /* "type buildid file" keys already in results */
	const char *glob; /* NULL for key=file */
	size_t n;
	bool truncated;
	bool complete;    /* every upstream answered, completely */
	char key[8];
	char *value;
};

static void walk_free(void *p)
{
	struct meta_walk *w = p;
	json_decref(w->results);
	json_decref(w->seen);
	free(w->value);
	free(w);
}

/* Add one result unless already there: 0, 1 when full, -ENOMEM. */
static int add_entry(struct meta_walk *w, const char *type, const char *build_id,
		     const char *file)
{
	char *seen_key = NULL;
	if (asprintf(&seen_key, "%s %s %s", type, build_id, file) < 0)
		return -ENOMEM;
	if (json_object_get(w->seen, seen_key)) {
		free(seen_key);
		return 0;
	}
	if (w->n >= METADATA_MAX_RESULTS) {
		free(seen_key);
		w->truncated = true;
		return 1;
	}
	json_t *o = json_pack("{s:s,s:s,s:s}", "type", type, "buildid", build_id, "file", file);
	/* The _new calls take the reference even when they fail. */
	int rc = o && json_array_append_new(w->results, o) == 0 &&
			 json_object_set_new(w->seen, seen_key, json_true()) == 0
			 ? 0
			 : -ENOMEM;
	free(seen_key);
	if (rc == 0)
		w->n++;
	return rc;
}

static int add_result(void *ctx, const char *build_id, enum artifact_kind kind, const char *file)
{
	struct meta_walk *w = ctx;
	if (w->glob && !metadata_glob_match(w->glob, file))
		return 0;
	/* Names are bytes (a scanned path, an older upload's name): the
	 * answer shows them scrubbed to UTF-8, or one name would fail it. */
	char *clean = utf8_scrub(file);
	if (!clean)
		return -ENOMEM;
	int rc = add_entry(w, kind == ART_DEBUGINFO ? "debuginfo" : "executable", build_id, clean);
	free(clean);
	return rc;
}

static bool hex_build_id(const char *s)
{
	size_t n = strlen(s);
	return n >= 2 && n < BUILD_ID_HEX_MAX && n % 2 == 0 &&
	       strspn(s, "0123456789abcdef") == n;
}

/* Merge one upstream's answer: only well-formed entries, re-made from
 * their three fields.  False when the answer is unusable or incomplete. */
static bool merge_upstream(struct meta_walk *w, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr);
	json_t *results = json_object_get(root, "results");
	bool complete = json_is_array(results) && json_is_true(json_object_get(root, "complete"));
	size_t i;
	json_t *it;
	json_array_foreach(results, i, it) {
		const char *type = json_string_value(json_object_get(it, "type"));
		const char *id = json_string_value(json_object_get(it, "buildid"));
		const char *file = json_string_value(json_object_get(it, "file"));
		if (!type || !id || !file || !hex_build_id(id) ||
		    (strcmp(type, "debuginfo") != 0 && strcmp(type, "executable") != 0)) {
			complete = false;
			continue;
		}
		if (add_entry(w, type, id, file) != 0)
			break;
	}
	json_decref(root);
	return complete;
}

/* Runs on a worker thread: ask each upstream in turn. */
static int federate(struct request *r)
{
	struct meta_walk *w = r->job;
	struct server *s = r->srv;
	for (int i = 0; i < s->cfg.n_upstreams && !w->truncated; i++) {
		struct err e = { { 0 } };
		char *body = NULL;
		size_t len = 0;
		int rc = upstream_take_token(&r->ctx, &e);
		bool reserved = rc == 0 && request_reserve(r, UPSTREAM_METADATA_MAX) == 0;
		if (rc == 0 && !reserved)
			rc = err_set(&e, EBUSY, "no memory budget for an upstream answer now");
		if (rc == 0)
			rc = upstream_metadata(&r->ctx, s->cfg.upstreams[i], w->key, w->value, &body, &len,
					       &e);
		if (rc < 0 || !merge_upstream(w, body, len))
			w->complete = false;
		if (rc < 0)
			log_warn("msg=\"metadata: upstream %s: %s\"", s->cfg.upstreams[i], e.msg);
		free(body);
		if (reserved)
			request_unreserve(r, UPSTREAM_METADATA_MAX);
	}
	return 0;
}

static enum MHD_Result respond_walk(struct request *r, struct meta_walk *w)
{
	json_t *root = json_pack("{s:O,s:b}", "results", w->results, "complete",
				 w->complete && !w->truncated);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!text)
		return MHD_NO;
	return respond_compressible(r, 200, "application/json", text, strlen(text));
}

enum MHD_Result handle_metadata(struct request *r)
{
	if (r->slow_state == 2)
		return respond_walk(r, r->job);
	const char *key = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "key");
	const char *value = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "value");
	if (!key || !value || !*value)
		return respond_text(r, 400, "/metadata webapi error, need key and value\n");
	bool glob = strcmp(key, "glob") == 0;
	if (!glob && strcmp(key, "file") != 0)
		return respond_text(r, 400, "/metadata webapi error, unsupported key\n");
	if (strlen(value) > 4096)
		return respond_text(r, 400, "/metadata webapi error, value too long\n");
	struct meta_walk *w = calloc(1, sizeof(*w));
	if (!w)
		return MHD_NO;
	r->job = w;
	r->job_free = walk_free;
	w->results = json_array();
	w->seen = json_object();
	w->value = strdup(value);
	w->complete = true;
	snprintf(w->key, sizeof(w->key), "%s", key);
	if (!w->results || !w->seen || !w->value)
		return MHD_NO;
	w->glob = glob ? w->value : NULL;
	struct err e = { { 0 } };
	int rc = store_metadata(r->srv->core->store, glob, value, add_result, w, &e);
	if (rc < 0)
		return respond_text(r, 503, "/metadata error: %s\n", e.msg);
	copy_forwarding(r);
	/* Loop protection as for artifacts: past the hop limit, local only. */
	if (!r->srv->cfg.n_upstreams || r->ctx.hops >= r->srv->cfg.forwarded_ttl_limit)
		return respond_walk(r, w);
	return run_slow(r, federate);
}
