/* Symbolization indexes, a derived artifact of the debuginfo core (core.h).
 * POST /symbolize (symbolize_http.c) and the profile store use them.
 *
 * Per build-ID the symbolization index (symbolizer/) is built once from the
 * stored debuginfo (+ executable for its symbol table, + the dwz
 * supplementary file named by .gnu_debugaltlink, found by its own build-ID),
 * stored as a derived artifact keyed by (build-ID, "v<SYMZ_VERSION>"), then
 * mapped and kept in a small LRU of open indexes.  Concurrent requests for
 * one build-ID share one build (single-flight); a restart reopens the stored
 * index without building. */
#include "debuginfod-lite/core.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/parse.h"
#include "symbolizer/symbolizer.h"
#include "symbolizer/symz_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CANDIDATES 8
/* Heap an index build holds per byte of DWARF (libdw's trees, the index
 * being built), beyond the images and decompressed copies: measured 2.1 to
 * 3.4 on Debian's libc, libstdc++ and ld.so debug files; 4 for margin. */
#define SYMZ_BUILD_FACTOR 4
/* Builds of one index in a row while debuginfo for it keeps arriving: a
 * bound on the work one request does; the last build is kept as it is. */
#define SYMZ_BUILD_ATTEMPTS 3

/* --- the LRU of open indexes --- */

struct symz_slot {
	char build_id[BUILD_ID_HEX_MAX];
	struct symz_index *idx; /* NULL: free slot */
	int refs;               /* users right now; a slot in use is never evicted */
	uint64_t last_use;
	bool stale;             /* dropped while in use: freed by the last release */
};

/* A build-ID whose index build failed on the debuginfo we hold: it fails
 * the same way until other debuginfo arrives (symz_debuginfo_arrived) or
 * --negative-ttl passes, so it is not built again on every request. */
struct symz_failure {
	char build_id[BUILD_ID_HEX_MAX];
	int rc;               /* what the build returned */
	uint64_t expires_ns;  /* monotonic; 0 = free entry */
};
#define SYMZ_FAILURES_MAX 256

/* Debuginfo arrivals are numbered: work that read the store before an
 * arrival for its build-ID (an index build) may hold the older
 * debuginfo's names and must be done again.  Per bucket of build-IDs, the
 * number of the latest arrival: a collision only costs a spare rebuild,
 * and no arrival is ever forgotten (a scan adding thousands at once). */
#define SYMZ_ARRIVAL_BUCKETS 1024

struct symz_cache {
	pthread_mutex_t lock;
	uint64_t tick;
	struct symz_failure failures[SYMZ_FAILURES_MAX];
	uint64_t arrived[SYMZ_ARRIVAL_BUCKETS]; /* latest arrival per bucket */
	uint64_t arrival_gen;                    /* the number of the latest arrival */
	unsigned test_build_delay_ms; /* DEBUGINFOD_LITE_TEST_BUILD_DELAY_MS */
	unsigned cap;
	struct symz_slot slots[];
};

struct symz_cache *symz_cache_new(unsigned capacity)
{
	struct symz_cache *c = calloc(1, sizeof(*c) + capacity * sizeof(c->slots[0]));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->cap = capacity;
	/* Test-only: widen the window between reading the debuginfo and
	 * storing the index, so tests can make debuginfo arrive inside it. */
	const char *delay = getenv("DEBUGINFOD_LITE_TEST_BUILD_DELAY_MS");
	if (delay) {
		unsigned long ms = strtoul(delay, NULL, 10);
		c->test_build_delay_ms = ms > 10000 ? 10000 : (unsigned)ms; /* usleep's range */
	}
	return c;
}

void symz_cache_free(struct symz_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->cap; i++)
		symz_index_free(c->slots[i].idx);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Take a reference on slot i for h.  Caller holds c->lock. */
static void hold_slot(struct symz_cache *c, unsigned i, struct symz_handle *h)
{
	struct symz_slot *sl = &c->slots[i];
	sl->refs++;
	sl->last_use = ++c->tick;
	h->idx = sl->idx;
	h->slot = (int)i;
}

static bool cache_get(struct symz_cache *c, const char *build_id, struct symz_handle *h)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->cap; i++) {
		struct symz_slot *sl = &c->slots[i];
		if (sl->idx && !sl->stale && strcmp(sl->build_id, build_id) == 0) {
			hold_slot(c, i, h);
			pthread_mutex_unlock(&c->lock);
			return true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return false;
}

/* Put a freshly opened index in (consumed) and hold it. */
static void cache_put(struct symz_cache *c, const char *build_id, struct symz_index *idx,
		      struct symz_handle *h)
{
	pthread_mutex_lock(&c->lock);
	int victim = -1;
	for (unsigned i = 0; i < c->cap; i++) {
		struct symz_slot *sl = &c->slots[i];
		if (sl->idx && !sl->stale && strcmp(sl->build_id, build_id) == 0) {
			/* Someone opened it meanwhile: use theirs. */
			hold_slot(c, i, h);
			pthread_mutex_unlock(&c->lock);
			symz_index_free(idx);
			return;
		}
		if (!sl->idx)
			victim = victim >= 0 && !c->slots[victim].idx ? victim : (int)i;
		else if (sl->refs == 0 &&
			 (victim < 0 || (c->slots[victim].idx && sl->last_use < c->slots[victim].last_use)))
			victim = (int)i;
	}
	if (victim < 0) {
		pthread_mutex_unlock(&c->lock);
		h->idx = idx;
		h->slot = -1;
		return;
	}
	struct symz_slot *sl = &c->slots[victim];
	struct symz_index *old = sl->idx;
	snprintf(sl->build_id, sizeof(sl->build_id), "%s", build_id);
	sl->idx = idx;
	sl->refs = 0;
	hold_slot(c, (unsigned)victim, h);
	pthread_mutex_unlock(&c->lock);
	symz_index_free(old);
}

static void cache_release(struct symz_cache *c, struct symz_handle *h)
{
	if (h->slot < 0) {
		symz_index_free(h->idx);
	} else {
		struct symz_index *gone = NULL;
		pthread_mutex_lock(&c->lock);
		struct symz_slot *sl = &c->slots[h->slot];
		if (--sl->refs == 0 && sl->stale) {
			gone = sl->idx;
			sl->idx = NULL;
			sl->stale = false;
		}
		pthread_mutex_unlock(&c->lock);
		symz_index_free(gone);
	}
	h->idx = NULL;
}

void symz_cache_drop(struct symz_cache *c, const char *build_id)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->cap; i++) {
		struct symz_slot *sl = &c->slots[i];
		if (!sl->idx || sl->stale || strcmp(sl->build_id, build_id) != 0)
			continue;
		if (sl->refs) {
			sl->stale = true;
		} else {
			symz_index_free(sl->idx);
			sl->idx = NULL;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* The failure remembered for build_id, or 0. */
static int failure_get(struct symz_cache *c, const char *build_id, uint64_t now)
{
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < SYMZ_FAILURES_MAX && !rc; i++) {
		struct symz_failure *f = &c->failures[i];
		if (f->expires_ns > now && strcmp(f->build_id, build_id) == 0)
			rc = f->rc;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Remember a failure; when full, the entry closest to expiry makes room. */
static void failure_put(struct symz_cache *c, const char *build_id, int rc, uint64_t expires_ns)
{
	pthread_mutex_lock(&c->lock);
	unsigned victim = 0;
	for (unsigned i = 0; i < SYMZ_FAILURES_MAX; i++) {
		struct symz_failure *f = &c->failures[i];
		if (f->expires_ns && strcmp(f->build_id, build_id) == 0) {
			victim = i;
			break;
		}
		if (f->expires_ns < c->failures[victim].expires_ns)
			victim = i;
	}
	struct symz_failure *f = &c->failures[victim];
	snprintf(f->build_id, sizeof(f->build_id), "%s", build_id);
	f->rc = rc;
	f->expires_ns = expires_ns;
	pthread_mutex_unlock(&c->lock);
}

/* A build-ID is a hash already: its first hex digits pick the bucket. */
static unsigned arrival_bucket(const char *build_id)
{
	char head[9];
	snprintf(head, sizeof(head), "%s", build_id);
	return (unsigned)(strtoul(head, NULL, 16) % SYMZ_ARRIVAL_BUCKETS);
}

void symz_debuginfo_arrived(struct symz_cache *c, const char *build_id)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < SYMZ_FAILURES_MAX; i++) {
		struct symz_failure *f = &c->failures[i];
		if (f->expires_ns && strcmp(f->build_id, build_id) == 0)
			f->expires_ns = 0;
	}
	c->arrived[arrival_bucket(build_id)] = ++c->arrival_gen;
	pthread_mutex_unlock(&c->lock);
}

uint64_t symz_arrival_mark(struct symz_cache *c)
{
	pthread_mutex_lock(&c->lock);
	uint64_t mark = c->arrival_gen;
	pthread_mutex_unlock(&c->lock);
	return mark;
}

bool symz_arrived_since(struct symz_cache *c, const char *build_id, uint64_t mark)
{
	pthread_mutex_lock(&c->lock);
	bool arrived = c->arrived[arrival_bucket(build_id)] > mark;
	pthread_mutex_unlock(&c->lock);
	return arrived;
}

/* Failures that say something about the debuginfo itself, not about this
 * moment (upstreams, the memory budget, a full disk: transient_error). */
static bool failure_is_lasting(int rc)
{
	return rc < 0 && !transient_error(rc);
}

void symz_release(struct core *s, struct symz_handle *h)
{
	if (h->idx)
		cache_release(s->symz_cache, h);
}

/* --- obtaining an index --- */

static const char *symz_version(void)
{
#define STR2(x) #x
#define STR(x) STR2(x)
	return "v" STR(SYMZ_VERSION);
}

struct open_stored_ctx {
	struct core *core;
	struct symz_index **out;
};

static int try_stored(void *ctx, const struct artifact *a)
{
	struct open_stored_ctx *c = ctx;
	struct err e = { { 0 } };
	if (symz_index_open(a->path, c->out, &e) == 0) {
		c->core->symz_loads++;
		return 1;
	}
	log_warn("msg=\"stored index %s unreadable: %s\"", a->build_id, e.msg);
	return 0;
}

/* The stored index, mapped.  Returns 1, 0 when none is stored, -errno. */
static int open_stored(struct core *s, const char *build_id, struct symz_index **out)
{
	struct open_stored_ctx c = { s, out };
	return store_each_openable(s->store, build_id, ART_SYMZ, symz_version(), try_stored, &c);
}

struct open_local_ctx {
	struct artifact *a;
	struct elf_object *o;
};

static int try_local(void *ctx, const struct artifact *a)
{
	struct open_local_ctx *c = ctx;
	struct err e = { { 0 } };
	if (elf_object_open(c->o, a->path, &e) < 0)
		return 0;
	*c->a = *a;
	return 1;
}

/* The best local candidate of `kind` for build_id, opened as an ELF. */
static bool open_local(struct core *s, const char *build_id, enum artifact_kind kind,
		       struct artifact *a, struct elf_object *o)
{
	struct open_local_ctx c = { a, o };
	return store_each_openable(s->store, build_id, kind, "", try_local, &c) == 1;
}

/* Local, else from an upstream. */
static bool obtain_elf(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		       struct artifact *a, struct elf_object *o, bool *transient)
{
	if (open_local(c->core, build_id, kind, a, o))
		return true;
	bool ok = false;
	if (core_may_federate(c, build_id, kind, "")) {
		struct err e = { { 0 } };
		int rc = upstream_fetch(c, build_id, kind, "", &e);
		if (rc == -EAGAIN)
			*transient = true;
		ok = rc == 1 && open_local(c->core, build_id, kind, a, o);
	}
	return ok;
}

/* The dwz supplementary file named by the debuginfo's .gnu_debugaltlink:
 * "path\0" followed by the supplementary file's build-ID. */
static bool obtain_alt(struct core_ctx *r, struct elf_object *debug, struct artifact *a,
		       struct elf_object *o, bool *transient, char *alt_id)
{
	struct section sec;
	struct err e = { { 0 } };
	alt_id[0] = 0;
	/* Read before the build's reservation: a name and an ID, no more. */
	uint64_t saved_cap = debug->max_decompressed;
	debug->max_decompressed = SMALL_SECTION_MAX;
	int rc = elf_object_section(debug, ".gnu_debugaltlink", &sec, &e);
	debug->max_decompressed = saved_cap;
	if (rc < 0 || !sec.found)
		return false;
	const uint8_t *nul = memchr(sec.data, 0, sec.size);
	size_t id_len = nul ? sec.size - (size_t)(nul + 1 - sec.data) : 0;
	if (id_len >= 2 && id_len <= BUILD_ID_MAX)
		build_id_to_hex(nul + 1, id_len, alt_id);
	section_free(&sec);
	return alt_id[0] && obtain_elf(r, alt_id, ART_DEBUGINFO, a, o, transient);
}

bool symz_check_stale(struct core *s, const char *build_id, int quality)
{
	struct artifact cand;
	struct err e = { { 0 } };
	if (store_lookup(s->store, build_id, ART_SYMZ, symz_version(), &cand, 1, &e) != 1 ||
	    cand.quality >= quality)
		return false;
	log_info("msg=\"index %s: better debuginfo arrived, rebuilding\"", build_id);
	store_forget_kind(s->store, build_id, ART_SYMZ, &e);
	symz_cache_drop(s->symz_cache, build_id);
	return true;
}

/* Reserve what building from these three objects (NULL: absent) holds:
 * their images (mapped, and read through by libdw), each decompressed
 * section twice (the section, then the plain image made of them) and
 * SYMZ_BUILD_FACTOR per byte of DWARF.  0, -EBUSY or -EFBIG (with e). */
static int reserve_build(struct core_ctx *r, struct elf_object *objs[3], uint64_t *need,
			 struct err *e)
{
	uint64_t total = 0, largest = 0;
	for (int i = 0; i < 3; i++) {
		if (!objs[i])
			continue;
		struct elf_plain_sizes ps;
		elf_object_plain_sizes(objs[i], NULL, &ps);
		if (ps.largest > largest)
			largest = ps.largest;
		/* Sizes come from headers: saturate rather than wrap. */
		uint64_t parts[3] = { objs[i]->image_size, ps.inflated > UINT64_MAX / 2 ? UINT64_MAX
							   : 2 * ps.inflated,
				      ps.dwarf > UINT64_MAX / SYMZ_BUILD_FACTOR ? UINT64_MAX
						: SYMZ_BUILD_FACTOR * ps.dwarf };
		for (int k = 0; k < 3; k++)
			total = total > UINT64_MAX - parts[k] ? UINT64_MAX : total + parts[k];
	}
	*need = 0;
	if (largest > r->core->cfg.max_decompressed)
		return err_set(e, EFBIG, "a section claims %llu decompressed bytes, over"
			       " --max-decompressed %llu", (unsigned long long)largest,
			       (unsigned long long)r->core->cfg.max_decompressed);
	int rc = core_reserve(r, total);
	if (rc < 0)
		return err_set(e, -rc, "building the index needs about %llu bytes: over the"
			       " memory budget%s", (unsigned long long)total,
			       rc == -EBUSY ? " now" : "");
	*need = total;
	return 0;
}

/* Build and store the index for build_id.  1 built, 0 nothing to build
 * from, -EAGAIN transient upstream trouble, other -errno (logged). */
static int build_index(struct core_ctx *r, const char *build_id)
{
	struct core *s = r->core;
	struct artifact dbg_a, exe_a, alt_a;
	struct elf_object dbg, exe, alt;
	bool transient = false;
	bool have_dbg = obtain_elf(r, build_id, ART_DEBUGINFO, &dbg_a, &dbg, &transient);
	/* The executable adds its .symtab/.dynsym; fetched only when it is
	 * all there is. */
	bool have_exe = open_local(s, build_id, ART_EXECUTABLE, &exe_a, &exe);
	if (!have_dbg && !have_exe)
		have_exe = obtain_elf(r, build_id, ART_EXECUTABLE, &exe_a, &exe, &transient);
	if (!have_dbg && !have_exe)
		return transient ? -EAGAIN : 0;
	if (have_dbg && have_exe && strcmp(dbg_a.path, exe_a.path) == 0) {
		elf_object_close(&exe); /* an unstripped file serves as both */
		have_exe = false;
	}
	char alt_id[BUILD_ID_HEX_MAX];
	bool have_alt = have_dbg && obtain_alt(r, &dbg, &alt_a, &alt, &transient, alt_id);
	struct elf_object *main_obj = have_exe ? &exe : &dbg;
	struct elf_object *debug_obj = have_exe && have_dbg ? &dbg : NULL;
	struct symz_build_options opt = { .no_search = true,
					  .max_decompressed = s->cfg.max_decompressed };
	struct symz_index *idx = NULL;
	struct err e = { { 0 } };
	uint64_t need = 0;
	int rc = reserve_build(r, (struct elf_object *[]){ have_exe ? &exe : NULL,
							     have_dbg ? &dbg : NULL,
							     have_alt ? &alt : NULL }, &need, &e);
	if (rc == 0)
		rc = symz_index_build_mem(main_obj->image, main_obj->image_size,
					  debug_obj ? debug_obj->image : NULL,
					  debug_obj ? debug_obj->image_size : 0,
					  have_alt ? alt.image : NULL, have_alt ? alt.image_size : 0,
					  &opt, &idx, &e);
	if (rc < 0 && alt_id[0] && !have_alt)
		log_warn("msg=\"index %s: dwz supplementary file %s not found\"", build_id, alt_id);
	if (rc == 0 && s->symz_cache->test_build_delay_ms) {
		log_info("msg=\"test: index %s built, storing in %u ms\"", build_id,
			 s->symz_cache->test_build_delay_ms);
		usleep(s->symz_cache->test_build_delay_ms * 1000u);
	}
	if (rc == 0) {
		size_t size;
		const void *data = symz_index_data(idx, &size);
		/* The quality of what it was built from: better debuginfo
		 * arriving later makes it stale (profiles.c). */
		struct artifact a;
		artifact_init(&a, build_id, ART_SYMZ, symz_version(), ORIGIN_DERIVED,
			      have_dbg ? dbg_a.quality : QUALITY_SYMTAB);
		snprintf(a.file, sizeof(a.file), "%.*s.symz", (int)sizeof(a.file) - 8,
			 have_dbg ? dbg_a.file : exe_a.file);
		rc = store_put_mem(s->store, data, size, &a, &e);
		symz_index_free(idx);
		if (rc == 0) {
			s->symz_builds++;
			rc = 1;
		}
	}
	if (rc < 0) {
		s->symz_build_failures++;
		log_warn("msg=\"index %s: %s\"", build_id, e.msg);
	}
	core_unreserve(r, need);
	if (have_alt)
		elf_object_close(&alt);
	if (have_exe)
		elf_object_close(&exe);
	if (have_dbg)
		elf_object_close(&dbg);
	return rc;
}

/* build_index, again when debuginfo for build_id arrived meanwhile (it may
 * be newer than what the build read: that index would be stored, and name
 * frames, from the older one, or the failure or "nothing to build from"
 * would be about debuginfo no longer the best); a lasting failure is
 * remembered. */
static int build_fresh(struct core_ctx *r, const char *build_id)
{
	struct core *s = r->core;
	int result = 0;
	bool raced = false;
	for (int attempt = 1; attempt <= SYMZ_BUILD_ATTEMPTS; attempt++) {
		uint64_t mark = symz_arrival_mark(s->symz_cache);
		result = build_index(r, build_id);
		raced = symz_arrived_since(s->symz_cache, build_id, mark);
		if (!raced || result == -EAGAIN || result == -EBUSY || attempt == SYMZ_BUILD_ATTEMPTS)
			break;
		log_info("msg=\"index %s: debuginfo arrived during the build, building again\"",
			 build_id);
		struct err ignored = { { 0 } };
		if (result == 1)
			store_forget_kind(s->store, build_id, ART_SYMZ, &ignored);
	}
	/* A failure on debuginfo that was replaced meanwhile says nothing. */
	if (failure_is_lasting(result) && !raced && s->cfg.negative_ttl_s > 0)
		failure_put(s->symz_cache, build_id, result,
			    now_ns() + (uint64_t)s->cfg.negative_ttl_s * 1000000000ull);
	return result;
}

/* Hold the open index of build_id: 1, or 0 / -EAGAIN / -errno as above. */
struct build_job {
	struct core_ctx *c;
	const char *build_id;
};

static int build_work(void *arg)
{
	struct build_job *j = arg;
	return build_fresh(j->c, j->build_id);
}

static bool build_done(void *arg)
{
	struct build_job *j = arg;
	struct artifact a;
	struct err ignored = { { 0 } };
	return store_lookup(j->c->core->store, j->build_id, ART_SYMZ, symz_version(), &a, 1,
			    &ignored) == 1;
}

int symz_acquire(struct core_ctx *r, const char *build_id, struct symz_handle *h)
{
	struct core *s = r->core;
	if (cache_get(s->symz_cache, build_id, h)) {
		s->symz_cache_hits++;
		return 1;
	}
	int failed = failure_get(s->symz_cache, build_id, now_ns());
	if (failed) {
		s->symz_failures_cached++;
		return failed;
	}
	char key[sizeof(((struct flight *)0)->key)];
	snprintf(key, sizeof(key), "symz/%s", build_id);
	struct flight *f;
	int result;
	if (flight_begin(s, key, &f, &result)) {
		struct symz_index *idx = NULL;
		result = open_stored(s, build_id, &idx);
		if (result == 0) {
			/* Built once in the cluster; the others open the stored copy. */
			struct build_job j = { r, build_id };
			result = core_cluster_once(r, key, build_work, build_done, &j);
			if (result == 1)
				result = open_stored(s, build_id, &idx);
		}
		if (result == 1)
			cache_put(s->symz_cache, build_id, idx, h);
		flight_finish(s, f, result);
		return result;
	}
	if (result != 1)
		return result;
	/* The leader put it in the cache; it may have been evicted since. */
	if (cache_get(s->symz_cache, build_id, h))
		return 1;
	struct symz_index *idx;
	int rc = open_stored(s, build_id, &idx);
	if (rc == 1)
		cache_put(s->symz_cache, build_id, idx, h);
	return rc;
}

