/* GET/HEAD /buildid/<id>/{debuginfo,executable,source/<path>,section/<name>,unwind}
 *
 * Order: the store (scanned files, uploads, cached upstream copies, derived
 * artifacts); then, on a worker thread, derive (sections, sources, unwind
 * tables) or fetch from upstream, store the result and serve it from the
 * store like any other hit. */
#include "debuginfod-lite/server_internal.h"
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
		return store_open_artifact(r->srv->store, a, fd, st, e);
	int rc = source_open_local(&r->srv->sources, a->path, fd, st, e);
	if (rc == 0 && ((uint64_t)st->st_size != a->size || (int64_t)st->st_mtime != a->mtime)) {
		close(*fd);
		rc = err_set(e, ENOENT, "%s changed since it was indexed", a->path);
	}
	if (rc == -ENOENT) { /* changed or gone; a refused one stays refused */
		struct err ignored = { { 0 } };
		store_forget_external(r->srv->store, a->path, &ignored);
	}
	return rc;
}

/* Serve the best candidate that still opens.  Returns true when a
 * response was queued (*ret set). */
static bool serve_from_store(struct request *r, enum MHD_Result *ret)
{
	struct artifact cands[MAX_CANDIDATES];
	struct err e = { { 0 } };
	int n = store_lookup(r->srv->store, r->build_id, r->kind, r->name, cands, MAX_CANDIDATES, &e);
	if (n < 0)
		log_warn("msg=\"lookup %s: %s\"", r->build_id, e.msg);
	/* The database or the blob store is away: reset the connection, as
	 * for a failing upstream, so that clients retry instead of caching a
	 * miss; nothing is asked upstream meanwhile. */
	bool storage_away = n == -EAGAIN;
	for (int i = 0; i < n; i++) {
		int fd;
		struct stat st;
		int rc = open_candidate(r, &cands[i], &fd, &st, &e);
		storage_away |= rc == -EAGAIN;
		if (rc < 0)
			continue;
		*ret = respond_artifact(r, &cands[i], fd, (uint64_t)st.st_size,
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

/* The best local candidate of another kind (e.g. debuginfo for a section)
 * that still opens; its path in *a. */
static int take_first(void *ctx, const struct artifact *a)
{
	*(struct artifact *)ctx = *a;
	return 1;
}

static bool best_local(struct request *r, enum artifact_kind kind, struct artifact *a)
{
	return store_each_openable(r->srv->store, r->build_id, kind, "", take_first, a) == 1;
}

bool may_federate(struct request *r, enum artifact_kind kind, const char *name)
{
	if (r->srv->cfg.n_upstreams == 0)
		return false;
	/* Loop protection as elfutils: the hops in X-Forwarded-For. */
	if (r->forwarded_hops >= r->srv->cfg.forwarded_ttl_limit)
		return false;
	return !store_miss_cached(r->srv->store, r->build_id, kind, name);
}

/* Bytes an unwind compile holds per byte of CFI (.eh_frame + .debug_frame):
 * the parsed CIEs/FDEs, the row entries and the serialized table (measured
 * on libc and libstdc++: under 8; doubled for margin). */
#define UNWIND_MEM_FACTOR 16

/* Reserve what decompressing section `name` of o will allocate.  0, or
 * -EFBIG (over --max-decompressed or the whole budget) / -EBUSY. */
static int reserve_section(struct request *r, struct elf_object *o, const char *name,
			   uint64_t *reserved, struct err *e)
{
	struct elf_plain_sizes ps;
	elf_object_plain_sizes(o, name, &ps);
	*reserved = 0;
	if (ps.largest > r->srv->cfg.max_decompressed)
		return err_set(e, EFBIG, "section %s claims %llu decompressed bytes, over"
			       " --max-decompressed %llu", name, (unsigned long long)ps.largest,
			       (unsigned long long)r->srv->cfg.max_decompressed);
	int rc = request_reserve(r, ps.inflated);
	if (rc < 0)
		return err_set(e, -rc, "section %s: %llu decompressed bytes do not fit the memory"
			       " budget%s", name, (unsigned long long)ps.inflated,
			       rc == -EBUSY ? " now" : "");
	*reserved = ps.inflated;
	return 0;
}

static int derive_section(struct request *r, struct err *e)
{
	struct artifact src;
	enum artifact_kind order[] = { ART_DEBUGINFO, ART_EXECUTABLE };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!best_local(r, order[i], &src))
			continue;
		struct elf_object o;
		if (elf_object_open(&o, src.path, e) < 0)
			continue;
		o.max_decompressed = r->srv->cfg.max_decompressed;
		uint64_t reserved = 0;
		struct section sec = { 0 };
		int rc = reserve_section(r, &o, r->name, &reserved, e);
		if (rc == 0)
			rc = elf_object_section(&o, r->name, &sec, e);
		if (rc == 0 && sec.found && sec.type != SHT_NOBITS) {
			struct artifact a;
			artifact_init(&a, r->build_id, ART_SECTION, r->name, ORIGIN_DERIVED, 1);
			snprintf(a.file, sizeof(a.file), "%s", src.file);
			rc = store_put_mem(r->srv->store, sec.data, sec.size, &a, e);
			section_free(&sec);
			elf_object_close(&o);
			request_unreserve(r, reserved);
			return rc < 0 ? rc : 1;
		}
		if (rc == 0)
			section_free(&sec);
		elf_object_close(&o);
		request_unreserve(r, reserved);
		/* Over a limit, or no room: trouble of ours, never a miss. */
		if (rc < 0 && transient_error(rc))
			return rc;
		/* elfutils: a local debuginfo without the section is a 404,
		 * without asking upstream. */
		if (order[i] == ART_DEBUGINFO && (rc < 0 || !sec.found))
			return 0;
	}
	if (may_federate(r, ART_SECTION, r->name))
		return upstream_fetch(r, ART_SECTION, r->name, e);
	return 0;
}

/* A source not in the store yet (uploaded sources are blobs there).
 * Local files are read only for DWARF from a --scan'ned file, under the
 * source rule; DWARF that was uploaded or fetched never makes us read a
 * local file: its sources come from the upload or from the upstreams. */
static int derive_source(struct request *r, struct err *e)
{
	struct artifact cands[MAX_CANDIDATES];
	int n = store_lookup(r->srv->store, r->build_id, ART_DEBUGINFO, "", cands, MAX_CANDIDATES, e);
	for (int i = 0; i < n; i++) {
		if (cands[i].origin != ORIGIN_SCAN ||
		    dwarf_names_source_cached(r->srv->source_names, cands[i].path, r->name, e) != 1)
			continue;
		int fd;
		struct stat st;
		int rc = source_open_local(&r->srv->sources, r->name, &fd, &st, e);
		if (rc < 0) {
			if (rc == -EACCES)
				log_info("msg=\"source refused\" build_id=%s why=\"%s\"", r->build_id,
					 e->msg);
			break; /* named, but not served from this machine: maybe upstream */
		}
		close(fd);
		struct artifact a;
		artifact_init(&a, r->build_id, ART_SOURCE, r->name, ORIGIN_SCAN, 1);
		snprintf(a.path, sizeof(a.path), "%s", r->name);
		snprintf(a.file, sizeof(a.file), "%s", r->name);
		a.size = (uint64_t)st.st_size;
		a.mtime = (int64_t)st.st_mtime;
		rc = store_add_external(r->srv->store, &a, e);
		return rc < 0 ? rc : 1;
	}
	err_clear(e);
	if (may_federate(r, ART_SOURCE, r->name))
		return upstream_fetch(r, ART_SOURCE, r->name, e);
	return 0;
}

static int derive_unwind(struct request *r, struct err *e)
{
	struct artifact src;
	bool have = best_local(r, ART_EXECUTABLE, &src);
	if (!have && may_federate(r, ART_EXECUTABLE, "")) {
		int rc = upstream_fetch(r, ART_EXECUTABLE, "", e);
		if (rc <= 0)
			return rc;
		have = best_local(r, ART_EXECUTABLE, &src);
	}
	if (!have)
		have = best_local(r, ART_DEBUGINFO, &src); /* .debug_frame */
	if (!have)
		return 0;
	struct unwind_table t = { 0 };
	struct unwind_compile_options opt = { .max_decompressed = r->srv->cfg.max_decompressed };
	struct elf_object o;
	int rc = elf_object_open(&o, src.path, e);
	if (rc < 0) {
		log_warn("msg=\"unwind compile %s (%s): %s\"", r->build_id, src.path, e->msg);
		return transient_error(rc) ? rc : 0;
	}
	/* The estimate: the CFI as it reads (decompressed) times the factor,
	 * plus the decompressed copies themselves. */
	struct elf_plain_sizes eh, df;
	GElf_Shdr sh;
	elf_object_plain_sizes(&o, ".eh_frame", &eh);
	elf_object_plain_sizes(&o, ".debug_frame", &df);
	uint64_t cfi = df.dwarf + (eh.inflated ? eh.inflated
			   : elf_object_shdr(&o, ".eh_frame", &sh) ? sh.sh_size : 0);
	uint64_t need = cfi > UINT64_MAX / (UNWIND_MEM_FACTOR + 1)
				? UINT64_MAX
				: cfi * UNWIND_MEM_FACTOR + eh.inflated + df.inflated;
	if (eh.largest > opt.max_decompressed || df.largest > opt.max_decompressed)
		rc = err_set(e, EFBIG, "CFI claims more than --max-decompressed %llu bytes",
			     (unsigned long long)opt.max_decompressed);
	else if ((rc = request_reserve(r, need)) < 0)
		err_set(e, -rc, "unwind compile needs about %llu bytes: over the memory budget%s",
			(unsigned long long)need, rc == -EBUSY ? " now" : "");
	bool reserved = rc == 0;
	if (rc == 0)
		rc = unwind_compile(&o, &opt, &t, e);
	elf_object_close(&o);
	if (rc < 0) {
		if (reserved)
			request_unreserve(r, need);
		log_warn("msg=\"unwind compile %s (%s): %s\"", r->build_id, src.path, e->msg);
		return transient_error(rc) ? rc : 0;
	}
	r->srv->unwind_compiles++;
	struct artifact a;
	artifact_init(&a, r->build_id, ART_UNWIND, r->name, ORIGIN_DERIVED, 1);
	snprintf(a.file, sizeof(a.file), "%.*s.unwind", (int)sizeof(a.file) - 16, src.file);
	rc = store_put_mem(r->srv->store, t.data, t.size, &a, e);
	unwind_table_free(&t);
	request_unreserve(r, need);
	return rc < 0 ? rc : 1;
}

/* Runs on a worker thread; single-flight per artifact. */
static int slow_obtain(struct request *r)
{
	char key[sizeof(((struct flight *)0)->key)];
	snprintf(key, sizeof(key), "%d/%s/%s", r->kind, r->build_id, r->name);
	struct flight *f;
	int result;
	if (!flight_begin(r->srv, key, &f, &result))
		return result;
	struct err e = { { 0 } };
	switch (r->kind) {
	case ART_SECTION:
		result = derive_section(r, &e);
		break;
	case ART_SOURCE:
		result = derive_source(r, &e);
		break;
	case ART_UNWIND:
		result = derive_unwind(r, &e);
		break;
	default:
		result = may_federate(r, r->kind, r->name) ? upstream_fetch(r, r->kind, r->name, &e)
							   : 0;
		break;
	}
	if (result < 0 && result != -EAGAIN)
		log_warn("msg=\"%s/%s: %s\"", r->build_id, artifact_kind_name(r->kind), e.msg);
	flight_finish(r->srv, f, result);
	return result;
}

void copy_forwarding(struct request *r)
{
	const char *xff = request_header(r, "X-Forwarded-For");
	const char *ua = request_header(r, MHD_HTTP_HEADER_USER_AGENT);
	snprintf(r->user_agent, sizeof(r->user_agent), "%s", ua ? ua : "debuginfod-lite");
	snprintf(r->peer, sizeof(r->peer), "unknown");
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr,
			  r->peer, sizeof(r->peer));
	r->forwarded_hops = 0;
	if (xff && *xff) {
		r->forwarded_hops = 1;
		for (const char *p = xff; *p; p++)
			r->forwarded_hops += *p == ',';
	}
	if (xff && strlen(xff) < sizeof(r->forwarded_for))
		snprintf(r->forwarded_for, sizeof(r->forwarded_for), "%s", xff);
	else
		r->forwarded_for[0] = 0;
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
	if (!derivable && !may_federate(r, r->kind, r->name))
		return respond_text(r, 404, "not found\n");
	/* Decompressing a section and compiling CFI are heavy work. */
	if ((r->kind == ART_SECTION || r->kind == ART_UNWIND) && !heavy_begin(r))
		return respond_reset(r);
	return run_slow(r, slow_obtain);
}
