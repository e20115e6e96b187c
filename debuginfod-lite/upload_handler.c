/* PUT /buildid/<id>/{debuginfo,executable,source/<path>}: authenticated,
 * validated, content-deduplicated uploads.  The body streams into a store
 * tmp file (hashed on the way); it becomes visible only after validation,
 * fsync and rename, so a crash at any point leaves the artifact absent or
 * whole.
 *
 * A source is accepted only for a path that the DWARF of the build-ID's
 * stored debuginfo names: the uploader cannot plant files under names the
 * build never used. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/parse.h"
#include "debuginfod-lite/sources.h"

#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compare without leaking the stored token: every byte of its slot
 * (zero past its end) are compared whatever the presented token's length,
 * so the time depends on nothing but the caller's own input. */
static bool token_equal(const char *presented, const char stored[SERVER_TOKEN_SIZE])
{
	size_t len = strlen(presented);
	unsigned char diff = len >= SERVER_TOKEN_SIZE;
	for (size_t i = 0; i < SERVER_TOKEN_SIZE; i++) {
		unsigned char c = i < len ? (unsigned char)presented[i] : 0;
		diff |= (unsigned char)(c ^ (unsigned char)stored[i]);
	}
	return diff == 0;
}

/* Is the request's bearer token one of tokens[0..n)?  Every token is
 * compared, so the time taken does not say which one (or none) matched. */
static bool bearer_in(struct request *r, const char (*tokens)[SERVER_TOKEN_SIZE], int n)
{
	const char *h = request_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	bool ok = false;
	for (int i = 0; i < n; i++)
		ok |= token_equal(tok, tokens[i]);
	return ok;
}

bool bearer_authorized(struct request *r)
{
	return bearer_in(r, (const char (*)[SERVER_TOKEN_SIZE])r->srv->tokens, r->srv->n_tokens);
}

bool read_authorized(struct request *r)
{
	struct server *s = r->srv;
	enum route_access need = r->route ? r->route->access : ACCESS_OWN;
	bool guarded = (need == ACCESS_READ && (s->n_read_tokens || s->cfg.private_reads)) ||
		       (need == ACCESS_ARTIFACT && s->cfg.private_reads);
	if (!guarded)
		return true;
	/* Both lists are compared whatever the first says: constant time. */
	bool reader = bearer_in(r, (const char (*)[SERVER_TOKEN_SIZE])s->read_tokens, s->n_read_tokens);
	bool writer = bearer_authorized(r);
	return reader | writer;
}

enum MHD_Result refuse_before_body(struct request *r, unsigned status, const char *msg)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"debuginfod-lite\"");
	if (status == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
	/* The body (if any) will not be read: close the connection after. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	r->status = (int)status;
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result refuse(struct request *r, unsigned status, const char *msg)
{
	r->srv->uploads_rejected++;
	return refuse_before_body(r, status, msg);
}

static uint64_t upload_limit(const struct request *r)
{
	return r->kind == ART_SOURCE ? r->srv->cfg.max_source : r->srv->cfg.max_upload;
}

/* May a source be uploaded under r->name?  0, or the status to refuse
 * with (reason in msg).  The DWARF is read before any body: a refusal
 * costs no transfer. */
static unsigned source_named(struct request *r, char *msg, size_t size)
{
	for (const unsigned char *p = (const unsigned char *)r->name; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(msg, size, "control byte in the source path\n");
			return 400;
		}
	struct artifact cands[8];
	struct err e = { { 0 } };
	int n = store_lookup(r->srv->core->store, r->build_id, ART_DEBUGINFO, "", cands,
			     (int)ARRAY_SIZE(cands), &e);
	if (n == -EAGAIN) {
		snprintf(msg, size, "storage unavailable, try again later\n");
		return 503;
	}
	if (n <= 0) {
		snprintf(msg, size, "no debuginfo stored for %s: upload it before its sources\n",
			 r->build_id);
		return 422;
	}
	struct dwarf_names_cache *names = r->srv->core->source_names;
	for (int i = 0; i < n; i++) {
		int fd;
		struct stat st;
		/* Opening gives a blob its local file (path). */
		if (store_open_artifact(r->srv->core->store, &cands[i], &fd, &st, &e) < 0)
			continue;
		close(fd);
		if (dwarf_names_source_cached(names, cands[i].path, r->name, &e) == 1)
			return 0;
	}
	snprintf(msg, size, "the DWARF of %s does not name %s\n", r->build_id, r->name);
	return 422;
}

enum MHD_Result upload_begin(struct request *r)
{
	struct server *s = r->srv;
	if (s->n_tokens == 0)
		return refuse(r, 403, "uploads are disabled (the server has no --token-file)\n");
	if (!bearer_authorized(r))
		return refuse(r, 401, "missing or wrong bearer token\n");
	int st = parse_buildid_path(r, r->url + strlen("/buildid/"));
	if (st) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s\n", r->body_msg);
		return refuse(r, (unsigned)st, msg);
	}
	if (r->kind != ART_DEBUGINFO && r->kind != ART_EXECUTABLE && r->kind != ART_SOURCE)
		return refuse(r, 405, "only debuginfo, executable and source/<path> can be uploaded\n");
	/* The name is echoed in X-DEBUGINFOD-FILE and /metadata: refuse what
	 * cannot be shown as is rather than store it mangled. */
	const char *fname = request_header(r, "X-Debuginfod-Lite-Filename");
	if (fname && (has_control_byte(fname) || !utf8_valid(fname, strlen(fname))))
		return refuse(r, 400, "X-Debuginfod-Lite-Filename: control bytes or invalid UTF-8\n");
	const char *cl = request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > upload_limit(r)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "body larger than the limit of %llu bytes\n",
			 (unsigned long long)upload_limit(r));
		return refuse(r, 413, msg);
	}
	if (r->kind == ART_SOURCE) {
		char msg[ARTIFACT_NAME_MAX + BUILD_ID_HEX_MAX + 64];
		unsigned refusal = source_named(r, msg, sizeof(msg));
		if (refusal)
			return refuse(r, refusal, msg);
	}
	struct err e = { { 0 } };
	if (store_tmp_begin(s->core->store, &r->tmp, &e) < 0) {
		log_error("msg=\"upload tmp: %s\"", e.msg);
		return refuse(r, 507, "cannot store the upload\n");
	}
	r->tmp_open = true;
	return MHD_YES;
}

int upload_chunk(struct request *r, const char *data, size_t len)
{
	if (r->tmp.size + len > upload_limit(r)) {
		snprintf(r->body_msg, sizeof(r->body_msg), "body larger than the limit of %llu bytes",
			 (unsigned long long)upload_limit(r));
		return 413;
	}
	struct err e = { { 0 } };
	if (blob_tmp_write(&r->tmp, data, len, &e) < 0) {
		log_error("msg=\"upload write: %s\"", e.msg);
		snprintf(r->body_msg, sizeof(r->body_msg), "cannot store the upload");
		return 507;
	}
	return 0;
}

static enum MHD_Result reject(struct request *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum MHD_Result reject(struct request *r, unsigned status, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->srv->uploads_rejected++;
	log_info("msg=\"upload rejected\" build_id=%s kind=%s status=%u why=\"%s\"", r->build_id,
		 artifact_kind_name(r->kind), status, msg);
	return respond_text(r, status, "%s\n", msg);
}

/* A source: its path was checked against the DWARF in upload_begin; the
 * content is the uploader's word, as the debuginfo is. */
static enum MHD_Result finish_source(struct request *r)
{
	struct artifact a;
	struct err e = { { 0 } };
	artifact_init(&a, r->build_id, ART_SOURCE, r->name, ORIGIN_UPLOAD, 1);
	snprintf(a.file, sizeof(a.file), "%s", r->name);
	r->tmp_open = false;
	int rc = store_tmp_commit(r->srv->core->store, &r->tmp, &a, &e);
	if (rc < 0) {
		log_error("msg=\"upload commit: %s\"", e.msg);
		if (rc == -EAGAIN) /* storage away: the client sends it again */
			return respond_refusal(r, -EBUSY, "storage unavailable, try again later");
		return respond_text(r, 507, "cannot store the upload\n");
	}
	r->srv->uploads_ok++;
	log_info("msg=\"upload stored\" build_id=%s kind=source sha256=%s bytes=%llu", a.build_id,
		 a.blob, (unsigned long long)a.size);
	char *json = NULL;
	/* The path is not echoed: it is the client's own, and may not be UTF-8. */
	int n = asprintf(&json,
			 "{\"build_id\":\"%s\",\"kind\":\"source\",\"sha256\":\"%s\",\"size\":%llu}\n",
			 a.build_id, a.blob, (unsigned long long)a.size);
	if (n < 0)
		return MHD_NO;
	return respond_buffer(r, 201, "application/json", json, (size_t)n, true);
}

enum MHD_Result upload_finish(struct request *r)
{
	struct server *s = r->srv;
	if (!r->tmp_open)
		return respond_text(r, 500, "upload state lost\n");
	if (r->kind == ART_SOURCE)
		return finish_source(r);
	struct err e = { { 0 } };
	struct elf_object o;
	if (r->tmp.size == 0)
		return reject(r, 400, "empty body");
	if (elf_object_open(&o, r->tmp.path, &e) < 0)
		return reject(r, 400, "not an ELF file");
	struct elf_info info;
	elf_info_read(&o, &info);
	elf_object_close(&o);
	if (!info.build_id[0])
		return reject(r, 400, "the ELF file has no build-ID note");
	if (strcmp(info.build_id, r->build_id) != 0)
		return reject(r, 400, "build-ID mismatch: the file has %s, the URL says %s",
			      info.build_id, r->build_id);
	if (r->kind == ART_DEBUGINFO && info.debuginfo_quality == QUALITY_NONE)
		return reject(r, 422, "no .debug_info and no .symtab: nothing to serve as debuginfo");
	if (r->kind == ART_EXECUTABLE && !info.executable)
		return reject(r, 422, "no loadable code: a separate debug file is not an executable");

	struct artifact a;
	artifact_init(&a, r->build_id, r->kind, "", ORIGIN_UPLOAD,
		      r->kind == ART_DEBUGINFO ? info.debuginfo_quality : QUALITY_SYMTAB);
	const char *fname = request_header(r, "X-Debuginfod-Lite-Filename");
	if (fname && *fname && !strchr(fname, '/') && strlen(fname) < 200)
		snprintf(a.file, sizeof(a.file), "%s", fname);
	else
		snprintf(a.file, sizeof(a.file), "%s.%s", r->build_id, artifact_kind_name(r->kind));
	r->tmp_open = false;
	int rc = store_tmp_commit(s->core->store, &r->tmp, &a, &e);
	if (rc < 0) {
		log_error("msg=\"upload commit: %s\"", e.msg);
		if (rc == -EAGAIN) /* storage away: the client sends it again */
			return respond_refusal(r, -EBUSY, "storage unavailable, try again later");
		return respond_text(r, 507, "cannot store the upload\n");
	}
	/* The same file may serve as the other kind too (unstripped binary). */
	struct artifact other = a;
	bool also = false;
	if (r->kind == ART_EXECUTABLE && info.debuginfo_quality >= QUALITY_DWARF) {
		other.kind = ART_DEBUGINFO;
		other.quality = info.debuginfo_quality;
		also = true;
	} else if (r->kind == ART_DEBUGINFO && info.executable) {
		other.kind = ART_EXECUTABLE;
		other.quality = QUALITY_SYMTAB;
		also = true;
	}
	if (also)
		store_add_blob_candidate(s->core->store, &other, &e);

	struct artifact best;
	bool is_best = store_lookup(s->core->store, a.build_id, a.kind, "", &best, 1, &e) == 1 &&
		       strcmp(best.blob, a.blob) == 0;
	s->uploads_ok++;
	log_info("msg=\"upload stored\" build_id=%s kind=%s sha256=%s bytes=%llu best=%d",
		 a.build_id, artifact_kind_name(a.kind), a.blob, (unsigned long long)a.size, is_best);
	char *json = NULL;
	int n = asprintf(&json,
			 "{\"build_id\":\"%s\",\"kind\":\"%s\",\"sha256\":\"%s\",\"size\":%llu,"
			 "\"quality\":\"%s\",\"served\":%s%s}\n",
			 a.build_id, artifact_kind_name(a.kind), a.blob, (unsigned long long)a.size,
			 a.quality >= QUALITY_DWARF ? "dwarf" : "symtab", is_best ? "true" : "false",
			 also ? ",\"also\":\"" : "");
	if (n < 0)
		return MHD_NO;
	if (also) {
		char *full = NULL;
		json[n - 2] = 0; /* drop "}\n" */
		n = asprintf(&full, "%s%s\"}\n", json, artifact_kind_name(other.kind));
		free(json);
		if (n < 0)
			return MHD_NO;
		json = full;
	}
	return respond_buffer(r, 201, "application/json", json, (size_t)n, true);
}
