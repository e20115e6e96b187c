/* GET/HEAD /buildid/<id>/{debuginfo,executable,source/<path>,section/<name>,unwind}
 *
 * Order: the store (scanned files, uploads, cached upstream copies, derived
 * artifacts); then, on a worker thread, derive (sections, sources, unwind
 * tables) or fetch from upstream, store the result and serve it from the
 * store like any other hit. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/body_cache.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/sources.h"
#include "unwind-compiler/unwind_compiler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CANDIDATES 8
#define SECTION_NAME_MAX 255

static const char *unwind_version(void)
{
#define STR2(x) #x
#define STR(x) STR2(x)
	return "v" STR(UNWIND_TABLE_VERSION);
}

int parse_buildid_path(struct request *r, const char *rest)
{
	const char *slash = strchr(rest, '/');
	size_t id_len = slash ? (size_t)(slash - rest) : strlen(rest);
	if (!build_id_valid(rest, id_len)) {
		snprintf(r->body_msg, sizeof(r->body_msg), "invalid buildid");
		return 400;
	}
	memcpy(r->build_id, rest, id_len);
	r->build_id[id_len] = 0;
	if (!slash) {
		snprintf(r->body_msg, sizeof(r->body_msg), "missing artifact type");
		return 400;
	}
	const char *type = slash + 1;
	r->name[0] = 0;
	if (strcmp(type, "debuginfo") == 0) {
		r->kind = ART_DEBUGINFO;
	} else if (strcmp(type, "executable") == 0) {
		r->kind = ART_EXECUTABLE;
	} else if (strcmp(type, "unwind") == 0) {
		r->kind = ART_UNWIND;
		snprintf(r->name, sizeof(r->name), "%s", unwind_version());
	} else if (strncmp(type, "section/", 8) == 0) {
		const char *sec = type + 8;
		size_t n = strlen(sec);
		if (n == 0 || n > SECTION_NAME_MAX ||
		    strspn(sec, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
			snprintf(r->body_msg, sizeof(r->body_msg), "invalid section suffix");
			return 400;
		}
		r->kind = ART_SECTION;
		memcpy(r->name, sec, n + 1);
	} else if (strncmp(type, "source/", 7) == 0) {
		/* The path keeps its leading slash; MHD already %-decoded it, so
		 * encoded traversal is caught here too. */
		const char *src = type + 6;
		if (strlen(src) <= 1) {
			snprintf(r->body_msg, sizeof(r->body_msg), "invalid source suffix");
			return 400;
		}
		if (strlen(src) >= sizeof(r->name) || !path_canonical(src, r->name, sizeof(r->name))) {
			snprintf(r->body_msg, sizeof(r->body_msg), "invalid source path");
			return 400;
		}
		r->kind = ART_SOURCE;
	} else {
		snprintf(r->body_msg, sizeof(r->body_msg), "invalid artifacttype");
		return 400;
	}
	return 0;
}

/* A local source file is opened under the source rule every time, not
 * only when it was first derived: roots change between runs, and a link
 * may be swapped in after the check. */
static int open_candidate(struct request *r, struct artifact *a, int *fd, struct stat *st,
			  struct err *e)
{
	if (a->kind != ART_SOURCE || a->origin != ORIGIN_SCAN)
		return store_open_artifact(r->srv->core->store, a, fd, st, e);
	int rc = source_open_local(&r->srv->core->sources, a->path, fd, st, e);
	if (rc == 0 && ((uint64_t)st->st_size != a->size || (int64_t)st->st_mtime != a->mtime)) {
		close(*fd);
		rc = err_set(e, ENOENT, "%s changed since it was indexed", a->path);
	}
	if (rc == -ENOENT) { /* changed or gone; a refused one stays refused */
		struct err ignored = { { 0 } };
		store_forget_external(r->srv->core->store, a->path, &ignored);
	}
	return rc;
}

/* Serve the best candidate that still opens.  Returns true when a
 * response was queued (*ret set). */
static bool serve_from_store(struct request *r, enum MHD_Result *ret)
{
	struct artifact cands[MAX_CANDIDATES];
	struct err e = { { 0 } };
	int n = store_lookup(r->srv->core->store, r->build_id, r->kind, r->name, cands, MAX_CANDIDATES, &e);
	if (n < 0)
		log_warn("msg=\"lookup %s: %s\"", r->build_id, e.msg);
	/* The database or the blob store is away: reset the connection, as
	 * for a failing upstream, so that clients retry instead of caching a
	 * miss; nothing is asked upstream meanwhile. */
	bool storage_away = n == -EAGAIN;
	for (int i = 0; i < n; i++) {
		struct body *b = cached_body(r, &cands[i]);
		if (b) {
			*ret = respond_artifact(r, &cands[i], -1, b, b->size, b->mtime);
			return true;
		}
		int fd;
		struct stat st;
		int rc = open_candidate(r, &cands[i], &fd, &st, &e);
		storage_away |= rc == -EAGAIN;
		if (rc < 0)
			continue;
		*ret = respond_artifact(r, &cands[i], fd, NULL, (uint64_t)st.st_size,
					cands[i].origin == ORIGIN_SCAN ? cands[i].mtime
								       : (int64_t)st.st_mtime);
		return true;
	}
	if (storage_away) {
		r->srv->transient_refusals++;
		*ret = respond_reset(r);
		return true;
	}
	return false;
}

/* Runs on a worker thread: the core derives or fetches the artifact. */
static int slow_obtain(struct request *r)
{
	return core_obtain(&r->ctx, r->build_id, r->kind, r->name);
}

void copy_forwarding(struct request *r)
{
	const char *xff = request_header(r, "X-Forwarded-For");
	const char *ua = request_header(r, MHD_HTTP_HEADER_USER_AGENT);
	snprintf(r->ctx.user_agent, sizeof(r->ctx.user_agent), "%s", ua ? ua : "debuginfod-lite");
	snprintf(r->ctx.peer, sizeof(r->ctx.peer), "unknown");
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr,
			  r->ctx.peer, sizeof(r->ctx.peer));
	r->ctx.hops = 0;
	if (xff && *xff) {
		r->ctx.hops = 1;
		for (const char *p = xff; *p; p++)
			r->ctx.hops += *p == ',';
	}
	r->ctx.may_ask_upstream = true;
	r->ctx.per_client_cap = true;
	if (xff && strlen(xff) < sizeof(r->ctx.forwarded_for))
		snprintf(r->ctx.forwarded_for, sizeof(r->ctx.forwarded_for), "%s", xff);
	else
		r->ctx.forwarded_for[0] = 0;
}

enum MHD_Result handle_buildid(struct request *r)
{
	enum MHD_Result ret;
	if (r->slow_state == 2) {
		if (r->slow_result == 1 && serve_from_store(r, &ret))
			return ret;
		/* Stored but unreadable now, a full disk, a full budget, an
		 * upstream in trouble: never a 404, which libdebuginfod would
		 * cache as a miss for 10 minutes. */
		if (r->slow_result == 1 || transient_error(r->slow_result)) {
			r->srv->transient_refusals++;
			return respond_reset(r);
		}
		return respond_text(r, 404, "not found\n");
	}
	int st = parse_buildid_path(r, r->url + strlen("/buildid/"));
	if (st)
		return respond_text(r, (unsigned)st, "%s\n", r->body_msg);
	if (serve_from_store(r, &ret))
		return ret;
	copy_forwarding(r);
	bool derivable = r->kind == ART_SECTION || r->kind == ART_SOURCE || r->kind == ART_UNWIND;
	if (!derivable && !core_may_federate(&r->ctx, r->build_id, r->kind, r->name))
		return respond_text(r, 404, "not found\n");
	/* Decompressing a section and compiling CFI are heavy work. */
	if ((r->kind == ART_SECTION || r->kind == ART_UNWIND) && !heavy_begin(r))
		return respond_reset(r);
	return run_slow(r, slow_obtain);
}
