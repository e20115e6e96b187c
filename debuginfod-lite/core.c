/* The debuginfo core (core.h): what a caller may ask of it beyond the
 * store's lookups — the derived artifacts (sections, local sources,
 * unwind tables) and upstream fetches, single-flight per artifact — and
 * the small context it takes instead of an HTTP request. */
#include "debuginfod-lite/core.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/sources.h"
#include "unwind-compiler/unwind_compiler.h"

#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CANDIDATES 8

/* The metadata database(s) and the blob store.  With sqlite the artifact
 * index and the profile store are two files (profile traffic never waits
 * on the index's writer); with PostgreSQL one database holds both. */
static int storage_open(struct core *s, const struct server_config *c, struct err *e)
{
	struct blob_options bo = { .url = c->blobs_url, .data_dir = c->data_dir,
				   .cache_quota = c->cache_quota, .s3_endpoint = c->s3_endpoint,
				   .s3_region = c->s3_region, .s3_credentials = c->s3_credentials };
	int rc = blobs_open(&s->blobs, &bo, e);
	if (rc < 0)
		return rc;
	char index_url[2 * PATH_MAX + 32], profiles_url[2 * PATH_MAX + 32];
	const char *url = c->db_url;
	if (!url || strncmp(url, "sqlite:", 7) == 0) {
		const char *path = url ? url + 7 : NULL;
		char dir[PATH_MAX];
		if (path) {
			snprintf(dir, sizeof(dir), "%s", path);
			char *slash = strrchr(dir, '/');
			if (slash)
				*slash = 0;
			else
				snprintf(dir, sizeof(dir), ".");
		} else {
			snprintf(dir, sizeof(dir), "%s", blobs_data_dir(s->blobs));
		}
		snprintf(index_url, sizeof(index_url), "sqlite:%s%s%s", path ? path : dir,
			 path ? "" : "/", path ? "" : "index.sqlite");
		snprintf(profiles_url, sizeof(profiles_url), "sqlite:%s/profiles.sqlite", dir);
	} else {
		snprintf(index_url, sizeof(index_url), "%s", url);
		snprintf(profiles_url, sizeof(profiles_url), "%s", url);
	}
	rc = db_open(&s->db, index_url, c->db_timeout_s, e);
	if (rc == 0)
		rc = db_open(&s->profiles_db, profiles_url, c->db_timeout_s, e);
	if (rc == 0)
		rc = store_open(&s->store, s->db, s->blobs, e);
	if (rc == 0)
		log_info("msg=\"storage: metadata %s, blobs %s\"", db_name(s->db),
			 blobs_name(s->blobs));
	return rc;
}

/* The source rule (sources.h): the roots, and the server's own files,
 * never served even under a root.  Every file the server reads a secret
 * from belongs in `own`. */
static int sources_setup(struct core *s, const struct server_config *c, struct err *e)
{
	for (int i = 0; i < c->n_source_roots; i++) {
		struct err re = { { 0 } };
		if (source_policy_add_root(&s->sources, c->source_roots[i], &re) == 0)
			continue;
		if (!c->source_roots_default)
			return err_set(e, EINVAL, "--source-root: %s", re.msg);
		log_info("msg=\"default source root skipped: %s\"", re.msg);
	}
	if (!(s->source_names = dwarf_names_cache_new()))
		return err_set(e, ENOMEM, "out of memory");
	const char *own[] = { blobs_data_dir(s->blobs), c->token_file, c->read_token_file };
	for (size_t i = 0; i < ARRAY_SIZE(own); i++) {
		int rc = own[i] ? source_policy_forbid(&s->sources, own[i], e) : 0;
		if (rc < 0)
			return rc;
	}
	return 0;
}


int core_open(struct core **out, const struct server_config *cfg, struct err *e)
{
	struct core *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	s->cfg = *cfg;
	if (!s->cfg.memory_budget)
		s->cfg.memory_budget = budget_default_limit();
	budget_init(&s->budget, s->cfg.memory_budget);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	int rc = 0;
	if (upstream_limiter_init(&s->upstream_limit, &cfg->upstream_rate,
				  &cfg->upstream_client_rate) < 0)
		rc = err_set(e, ENOMEM, "out of memory");
	if (rc == 0)
		rc = storage_open(s, cfg, e);
	if (rc == 0)
		rc = sources_setup(s, cfg, e);
	if (rc == 0 && !(s->symz_cache = symz_cache_new(cfg->symz_cache ? cfg->symz_cache : 1)))
		rc = err_set(e, ENOMEM, "out of memory");
	if (rc < 0) {
		core_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void core_stop(struct core *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void core_close(struct core *s)
{
	if (!s)
		return;
	symz_cache_free(s->symz_cache);
	store_close(s->store);
	db_close(s->profiles_db);
	db_close(s->db);
	blobs_close(s->blobs);
	source_policy_free(&s->sources);
	dwarf_names_cache_free(s->source_names);
	upstream_limiter_free(&s->upstream_limit);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	budget_destroy(&s->budget);
	free(s);
}

bool flight_begin(struct core *s, const char *key, struct flight **out, int *result)
{
	pthread_mutex_lock(&s->lock);
	for (struct flight *f = s->flights; f; f = f->next) {
		if (strcmp(f->key, key) != 0)
			continue;
		f->waiters++;
		s->flights_joined++;
		while (!f->done)
			pthread_cond_wait(&s->cond, &s->lock);
		*result = f->result;
		if (--f->waiters == 0)
			free(f);
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	struct flight *f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&s->lock);
		*result = -ENOMEM;
		return false;
	}
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->waiters = 1;
	f->next = s->flights;
	s->flights = f;
	pthread_mutex_unlock(&s->lock);
	*out = f;
	return true;
}

void flight_finish(struct core *s, struct flight *f, int result)
{
	pthread_mutex_lock(&s->lock);
	for (struct flight **p = &s->flights; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	f->done = true;
	f->result = result;
	pthread_cond_broadcast(&s->cond);
	if (--f->waiters == 0)
		free(f);
	pthread_mutex_unlock(&s->lock);
}

bool transient_error(int rc)
{
	switch (-rc) {
	case EAGAIN: case EBUSY: case EFBIG: case ENOSPC: case EDQUOT: case EIO: case ENOMEM:
	case EMFILE: case ENFILE:
		return true;
	default:
		return false;
	}
}

void core_ctx_background(struct core_ctx *c, struct core *core, const char *who)
{
	memset(c, 0, sizeof(*c));
	c->core = core;
	c->fd = -1;
	c->may_ask_upstream = true;
	snprintf(c->user_agent, sizeof(c->user_agent), "debuginfod-lite %s", who);
	snprintf(c->peer, sizeof(c->peer), "127.0.0.1");
}

int core_reserve(struct core_ctx *c, uint64_t bytes)
{
	int rc = budget_reserve(&c->core->budget, bytes);
	if (rc == 0)
		c->reserved += bytes;
	return rc;
}

void core_unreserve(struct core_ctx *c, uint64_t bytes)
{
	if (bytes > c->reserved)
		bytes = c->reserved;
	budget_release(&c->core->budget, bytes);
	c->reserved -= bytes;
}

bool core_abandoned(struct core_ctx *c)
{
	bool gone = c->deadline_ns && now_ns() > c->deadline_ns;
	if (!gone && c->fd >= 0) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
		if (poll(&p, 1, 0) > 0) {
			gone = p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL);
			if (!gone && (p.revents & POLLIN)) {
				/* Readable: a pipelined request (still there) or EOF (gone). */
				char byte;
				gone = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
			}
		}
	}
	if (gone)
		c->core->work_abandoned++;
	return gone;
}

/* The best local candidate of another kind (e.g. debuginfo for a section)
 * that still opens; its path in *a. */
static int take_first(void *ctx, const struct artifact *a)
{
	*(struct artifact *)ctx = *a;
	return 1;
}

static bool best_local(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		       struct artifact *a)
{
	return store_each_openable(c->core->store, build_id, kind, "", take_first, a) == 1;
}

bool core_may_federate(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		       const char *name)
{
	if (!c->may_ask_upstream || c->core->cfg.n_upstreams == 0)
		return false;
	/* Loop protection as elfutils: the hops in X-Forwarded-For. */
	if (c->hops >= c->core->cfg.forwarded_ttl_limit)
		return false;
	return !store_miss_cached(c->core->store, build_id, kind, name);
}

/* Bytes an unwind compile holds per byte of CFI (.eh_frame + .debug_frame):
 * the parsed CIEs/FDEs, the row entries and the serialized table (measured
 * on libc and libstdc++: under 8; doubled for margin). */
#define UNWIND_MEM_FACTOR 16

/* Reserve what decompressing section `name` of o will allocate.  0, or
 * -EFBIG (over --max-decompressed or the whole budget) / -EBUSY. */
static int reserve_section(struct core_ctx *c, struct elf_object *o, const char *name,
			   uint64_t *reserved, struct err *e)
{
	struct elf_plain_sizes ps;
	elf_object_plain_sizes(o, name, &ps);
	*reserved = 0;
	if (ps.largest > c->core->cfg.max_decompressed)
		return err_set(e, EFBIG, "section %s claims %llu decompressed bytes, over"
			       " --max-decompressed %llu", name, (unsigned long long)ps.largest,
			       (unsigned long long)c->core->cfg.max_decompressed);
	int rc = core_reserve(c, ps.inflated);
	if (rc < 0)
		return err_set(e, -rc, "section %s: %llu decompressed bytes do not fit the memory"
			       " budget%s", name, (unsigned long long)ps.inflated,
			       rc == -EBUSY ? " now" : "");
	*reserved = ps.inflated;
	return 0;
}

static int derive_section(struct core_ctx *c, const char *build_id, const char *name,
			  struct err *e)
{
	struct artifact src;
	enum artifact_kind order[] = { ART_DEBUGINFO, ART_EXECUTABLE };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!best_local(c, build_id, order[i], &src))
			continue;
		struct elf_object o;
		if (elf_object_open(&o, src.path, e) < 0)
			continue;
		o.max_decompressed = c->core->cfg.max_decompressed;
		uint64_t reserved = 0;
		struct section sec = { 0 };
		int rc = reserve_section(c, &o, name, &reserved, e);
		if (rc == 0)
			rc = elf_object_section(&o, name, &sec, e);
		if (rc == 0 && sec.found && sec.type != SHT_NOBITS) {
			struct artifact a;
			artifact_init(&a, build_id, ART_SECTION, name, ORIGIN_DERIVED, 1);
			snprintf(a.file, sizeof(a.file), "%s", src.file);
			rc = store_put_mem(c->core->store, sec.data, sec.size, &a, e);
			section_free(&sec);
			elf_object_close(&o);
			core_unreserve(c, reserved);
			return rc < 0 ? rc : 1;
		}
		if (rc == 0)
			section_free(&sec);
		elf_object_close(&o);
		core_unreserve(c, reserved);
		/* Over a limit, or no room: trouble of ours, never a miss. */
		if (rc < 0 && transient_error(rc))
			return rc;
		/* elfutils: a local debuginfo without the section is a 404,
		 * without asking upstream. */
		if (order[i] == ART_DEBUGINFO && (rc < 0 || !sec.found))
			return 0;
	}
	if (core_may_federate(c, build_id, ART_SECTION, name))
		return upstream_fetch(c, build_id, ART_SECTION, name, e);
	return 0;
}

/* A source not in the store yet (uploaded sources are blobs there).
 * Local files are read only for DWARF from a --scan'ned file, under the
 * source rule; DWARF that was uploaded or fetched never makes us read a
 * local file: its sources come from the upload or from the upstreams. */
static int derive_source(struct core_ctx *c, const char *build_id, const char *name,
			 struct err *e)
{
	struct artifact cands[MAX_CANDIDATES];
	int n = store_lookup(c->core->store, build_id, ART_DEBUGINFO, "", cands, MAX_CANDIDATES, e);
	for (int i = 0; i < n; i++) {
		if (cands[i].origin != ORIGIN_SCAN ||
		    dwarf_names_source_cached(c->core->source_names, cands[i].path, name, e) != 1)
			continue;
		int fd;
		struct stat st;
		int rc = source_open_local(&c->core->sources, name, &fd, &st, e);
		if (rc < 0) {
			if (rc == -EACCES)
				log_info("msg=\"source refused\" build_id=%s why=\"%s\"", build_id,
					 e->msg);
			break; /* named, but not served from this machine: maybe upstream */
		}
		close(fd);
		struct artifact a;
		artifact_init(&a, build_id, ART_SOURCE, name, ORIGIN_SCAN, 1);
		snprintf(a.path, sizeof(a.path), "%s", name);
		snprintf(a.file, sizeof(a.file), "%s", name);
		a.size = (uint64_t)st.st_size;
		a.mtime = (int64_t)st.st_mtime;
		rc = store_add_external(c->core->store, &a, e);
		return rc < 0 ? rc : 1;
	}
	err_clear(e);
	if (core_may_federate(c, build_id, ART_SOURCE, name))
		return upstream_fetch(c, build_id, ART_SOURCE, name, e);
	return 0;
}

static int derive_unwind(struct core_ctx *c, const char *build_id, const char *name,
			 struct err *e)
{
	struct artifact src;
	bool have = best_local(c, build_id, ART_EXECUTABLE, &src);
	if (!have && core_may_federate(c, build_id, ART_EXECUTABLE, "")) {
		int rc = upstream_fetch(c, build_id, ART_EXECUTABLE, "", e);
		if (rc <= 0)
			return rc;
		have = best_local(c, build_id, ART_EXECUTABLE, &src);
	}
	if (!have)
		have = best_local(c, build_id, ART_DEBUGINFO, &src); /* .debug_frame */
	if (!have)
		return 0;
	struct unwind_table t = { 0 };
	struct unwind_compile_options opt = { .max_decompressed = c->core->cfg.max_decompressed };
	struct elf_object o;
	int rc = elf_object_open(&o, src.path, e);
	if (rc < 0) {
		log_warn("msg=\"unwind compile %s (%s): %s\"", build_id, src.path, e->msg);
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
	else if ((rc = core_reserve(c, need)) < 0)
		err_set(e, -rc, "unwind compile needs about %llu bytes: over the memory budget%s",
			(unsigned long long)need, rc == -EBUSY ? " now" : "");
	bool reserved = rc == 0;
	if (rc == 0)
		rc = unwind_compile(&o, &opt, &t, e);
	elf_object_close(&o);
	if (rc < 0) {
		if (reserved)
			core_unreserve(c, need);
		log_warn("msg=\"unwind compile %s (%s): %s\"", build_id, src.path, e->msg);
		return transient_error(rc) ? rc : 0;
	}
	c->core->unwind_compiles++;
	struct artifact a;
	artifact_init(&a, build_id, ART_UNWIND, name, ORIGIN_DERIVED, 1);
	snprintf(a.file, sizeof(a.file), "%.*s.unwind", (int)sizeof(a.file) - 16, src.file);
	rc = store_put_mem(c->core->store, t.data, t.size, &a, e);
	unwind_table_free(&t);
	core_unreserve(c, need);
	return rc < 0 ? rc : 1;
}

/* How long a claim holds unless renewed: a replica that died mid-work
 * leaves it to another after this; the holder renews it every third of
 * it for as long as the work runs (a 1 GB upstream fetch, a large index).
 * How long a replica waits for another's work, and how often it looks. */
#define CLUSTER_CLAIM_S 30
#define CLUSTER_WAIT_S 120
#define CLUSTER_POLL_US 100000

static unsigned claim_ttl_s(void)
{
	/* Test-only: a short claim, so a test can outlast it. */
	const char *t = getenv("DEBUGINFOD_LITE_TEST_CLAIM_S");
	unsigned long v = t ? strtoul(t, NULL, 10) : 0;
	return v >= 1 && v <= CLUSTER_CLAIM_S ? (unsigned)v : CLUSTER_CLAIM_S;
}

/* Renews a claim while its work runs, on a thread of its own. */
struct claim_keeper {
	struct store *st;
	const char *key;
	unsigned ttl_s;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;
};

static void *keep_claim(void *arg)
{
	struct claim_keeper *k = arg;
	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		uint64_t ns = (uint64_t)k->ttl_s * 1000000000ull / 3;
		t.tv_sec += (time_t)(ns / 1000000000ull);
		t.tv_nsec += (long)(ns % 1000000000ull);
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&k->cond, &k->lock, &t) != ETIMEDOUT || k->stop)
			continue;
		pthread_mutex_unlock(&k->lock);
		struct err e = { { 0 } };
		/* Lost (the database was away longer than the claim): the work
		 * goes on; at worst another replica does it too. */
		if (store_renew_claim(k->st, k->key, k->ttl_s, &e) <= 0)
			log_warn("msg=\"claim %s not renewed: %s\"", k->key, e.msg[0] ? e.msg : "taken");
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* work(arg) with the claim kept alive meanwhile. */
static int work_claimed(struct store *st, const char *key, unsigned ttl_s,
			int (*work)(void *arg), void *arg)
{
	struct claim_keeper k = { .st = st, .key = key, .ttl_s = ttl_s };
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k.cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k.lock, NULL);
	pthread_t t;
	bool keeping = pthread_create(&t, NULL, keep_claim, &k) == 0;
	int rc = work(arg);
	if (keeping) {
		pthread_mutex_lock(&k.lock);
		k.stop = true;
		pthread_cond_signal(&k.cond);
		pthread_mutex_unlock(&k.lock);
		pthread_join(t, NULL);
	}
	pthread_cond_destroy(&k.cond);
	pthread_mutex_destroy(&k.lock);
	return rc;
}

/* Runs on a worker thread; single-flight per artifact. */
int core_cluster_once(struct core_ctx *c, const char *key, int (*work)(void *arg),
		      bool (*done)(void *arg), void *arg)
{
	struct store *st = c->core->store;
	if (!store_shared(st))
		return work(arg);
	unsigned ttl_s = claim_ttl_s();
	uint64_t give_up = now_ns() + (uint64_t)CLUSTER_WAIT_S * 1000000000ull;
	bool waited = false;
	for (;;) {
		if (done(arg))
			return 1;
		struct err e = { { 0 } };
		int won = store_claim(st, key, ttl_s, &e);
		if (won < 0)
			return won == -EAGAIN ? -EAGAIN : -EIO;
		if (won) {
			/* It may have been finished between done() and the claim. */
			int rc = done(arg) ? 1 : work_claimed(st, key, ttl_s, work, arg);
			store_unclaim(st, key);
			return rc;
		}
		if (!waited)
			c->core->flights_joined_cluster++;
		waited = true;
		if (now_ns() > give_up || core_abandoned(c))
			return -EAGAIN;
		usleep(CLUSTER_POLL_US);
	}
}

struct obtain_job {
	struct core_ctx *c;
	const char *build_id, *name;
	enum artifact_kind kind;
	struct err e;
};

static bool obtain_done(void *arg)
{
	struct obtain_job *j = arg;
	struct artifact a;
	struct err ignored = { { 0 } };
	return store_lookup(j->c->core->store, j->build_id, j->kind, j->name, &a, 1, &ignored) == 1;
}

static int obtain_work(void *arg)
{
	struct obtain_job *j = arg;
	struct core_ctx *c = j->c;
	switch (j->kind) {
	case ART_SECTION:
		return derive_section(c, j->build_id, j->name, &j->e);
	case ART_SOURCE:
		return derive_source(c, j->build_id, j->name, &j->e);
	case ART_UNWIND:
		return derive_unwind(c, j->build_id, j->name, &j->e);
	default:
		return core_may_federate(c, j->build_id, j->kind, j->name)
			       ? upstream_fetch(c, j->build_id, j->kind, j->name, &j->e) : 0;
	}
}

int core_obtain(struct core_ctx *c, const char *build_id, enum artifact_kind kind,
		const char *name)
{
	char key[sizeof(((struct flight *)0)->key)];
	snprintf(key, sizeof(key), "%d/%s/%s", kind, build_id, name);
	struct flight *f;
	int result;
	if (!flight_begin(c->core, key, &f, &result))
		return result;
	/* In this process, then in the cluster: derived once, fetched once. */
	struct obtain_job j = { .c = c, .build_id = build_id, .name = name, .kind = kind };
	result = core_cluster_once(c, key, obtain_work, obtain_done, &j);
	struct err e = j.e;
	if (result < 0 && result != -EAGAIN)
		log_warn("msg=\"%s/%s: %s\"", build_id, artifact_kind_name(kind), e.msg);
	flight_finish(c->core, f, result);
	return result;
}

