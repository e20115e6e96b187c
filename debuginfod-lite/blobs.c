/* The blob interface over its backends, and the replica-local cache of
 * remote blobs (blobs.h). */
#include "debuginfod-lite/blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The backends --blobs may name, by scheme.  An object store adds its
 * line here. */
static const struct blob_backend *const backends[] = {
	&blob_backend_file,
	&blob_backend_s3,
};

/* The last use of a blob is recorded at most this often. */
#define USE_GRANULE_S 60

struct blob_store {
	const struct blob_backend *be;
	void *impl;
	char name[PATH_MAX];
	char data_dir[PATH_MAX - 256];
	uint64_t cache_quota;
	pthread_mutex_t cache_lock; /* eviction passes, one at a time */
	struct blob_metrics metrics;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int blob_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int make_dirs(const char *base, const char *const *subs, struct err *e)
{
	char path[PATH_MAX];
	for (; *subs; subs++) {
		snprintf(path, sizeof(path), "%s/%s", base, *subs);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return err_set(e, errno, "%s: %s", path, strerror(errno));
	}
	return 0;
}

static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void cache_evict(struct blob_store *b, bool measure);

int blobs_open(struct blob_store **out, const struct blob_options *opt, struct err *e)
{
	struct blob_store *b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, ENOMEM, "out of memory");
	const char *url = opt->url ? opt->url : "file:";
	const char *colon = strchr(url, ':');
	size_t scheme_len = colon ? (size_t)(colon - url) : strlen(url);
	for (size_t i = 0; i < ARRAY_SIZE(backends) && !b->be; i++)
		if (strlen(backends[i]->scheme) == scheme_len &&
		    strncmp(backends[i]->scheme, url, scheme_len) == 0)
			b->be = backends[i];
	if (!b->be) {
		free(b);
		return err_set(e, ENOTSUP, "--blobs %s: unknown storage (file:DIR%s)", url,
			       ARRAY_SIZE(backends) > 1 ? ", s3://BUCKET[/PREFIX]" : "");
	}
	char real[PATH_MAX];
	if (blob_mkdir_p(opt->data_dir) < 0 || !realpath(opt->data_dir, real) || strlen(real) >= sizeof(b->data_dir)) {
		free(b);
		return err_set(e, ENOENT, "data directory %s: %s", opt->data_dir, strerror(errno));
	}
	memcpy(b->data_dir, real, strlen(real) + 1);
	b->cache_quota = opt->cache_quota;
	int rc = make_dirs(b->data_dir, (const char *const[]){ "tmp", NULL }, e);
	if (rc < 0) {
		free(b);
		return rc;
	}
	/* Whatever is in tmp/ was being written when we last stopped. */
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tmp", b->data_dir);
	empty_dir(tmp);
	rc = b->be->open(&b->impl, opt, e);
	if (rc < 0) {
		free(b);
		return rc;
	}
	if (!b->be->local_path) {
		rc = make_dirs(b->data_dir, (const char *const[]){ "cache", NULL }, e);
		if (rc < 0) {
			b->be->close(b->impl);
			free(b);
			return rc;
		}
	}
	if (b->be->local_path && (!opt->url || strcmp(opt->url, "file:") == 0))
		snprintf(b->name, sizeof(b->name), "file:%s", b->data_dir);
	else
		snprintf(b->name, sizeof(b->name), "%s", url);
	pthread_mutex_init(&b->cache_lock, NULL);
	if (!b->be->local_path)
		cache_evict(b, true);
	*out = b;
	return 0;
}

void blobs_close(struct blob_store *b)
{
	if (!b)
		return;
	b->be->close(b->impl);
	pthread_mutex_destroy(&b->cache_lock);
	free(b);
}

bool blobs_remote(const struct blob_store *b)
{
	return !b->be->local_path;
}

const char *blobs_name(const struct blob_store *b)
{
	return b->name;
}

const char *blobs_data_dir(const struct blob_store *b)
{
	return b->data_dir;
}

const struct blob_metrics *blobs_metrics(const struct blob_store *b)
{
	return &b->metrics;
}

void blobs_backend_metrics(struct blob_store *b, void (*put)(void *ctx, const char *text),
			   void *ctx)
{
	if (b->be->metrics)
		b->be->metrics(b->impl, put, ctx);
}

static bool valid_hash(const char *hash)
{
	return strlen(hash) == SHA256_HEX_LEN &&
	       strspn(hash, "0123456789abcdef") == SHA256_HEX_LEN;
}

static void blob_key(const char *area, const char *hash, char *out, size_t size)
{
	snprintf(out, size, "%s/%.2s/%s", area, hash, hash + 2);
}

static int note(struct blob_store *b, int rc, uint64_t start)
{
	b->metrics.latency_us += (now_ns() - start) / 1000;
	if (rc < 0 && rc != -ENOENT) {
		b->metrics.errors++;
		if (rc == -EAGAIN)
			b->metrics.unavailable++;
	}
	return rc;
}

/* ---- writing ---- */

int blob_tmp_begin(struct blob_store *b, struct blob_tmp *t, struct err *e)
{
	t->hash.ctx = NULL;
	snprintf(t->path, sizeof(t->path), "%s/tmp/blob.XXXXXX", b->data_dir);
	t->fd = mkostemp(t->path, O_CLOEXEC);
	if (t->fd < 0)
		return err_set(e, errno, "%s: %s", t->path, strerror(errno));
	if (sha256_init(&t->hash) < 0) {
		blob_tmp_abort(t);
		return err_set(e, ENOMEM, "out of memory");
	}
	t->size = 0;
	return 0;
}

int blob_tmp_write(struct blob_tmp *t, const void *data, size_t len, struct err *e)
{
	const uint8_t *p = data;
	sha256_update(&t->hash, data, len);
	t->size += len;
	while (len) {
		ssize_t n = write(t->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(e, n < 0 ? errno : EIO, "%s: write: %s", t->path,
				       strerror(n < 0 ? errno : EIO));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void blob_tmp_abort(struct blob_tmp *t)
{
	sha256_discard(&t->hash);
	if (t->fd >= 0) {
		close(t->fd);
		unlink(t->path);
	}
	t->fd = -1;
}

static void cache_path(struct blob_store *b, const char *key, char *out, size_t size)
{
	snprintf(out, size, "%s/cache/%s", b->data_dir, key);
}

static void cache_admit(struct blob_store *b, const char *tmp_path, const char *key,
			uint64_t size);

int blob_tmp_commit(struct blob_store *b, struct blob_tmp *t, const char *area, char *hash,
		    struct err *e)
{
	if (sha256_final_hex(&t->hash, hash) < 0) {
		blob_tmp_abort(t);
		return err_set(e, EIO, "%s: cannot hash the blob", t->path);
	}
	char key[128];
	blob_key(area, hash, key, sizeof(key));
	uint64_t start = now_ns();
	b->metrics.puts++;
	int rc = b->be->put(b->impl, key, t->path, t->fd, t->size, hash, e);
	note(b, rc, start);
	if (rc == 0) {
		b->metrics.put_bytes += t->size;
		if (!b->be->local_path)
			cache_admit(b, t->path, key, t->size); /* hot right after upload */
	}
	close(t->fd);
	t->fd = -1;
	unlink(t->path); /* gone already when the backend took it */
	return rc;
}

int blob_put_mem(struct blob_store *b, const char *area, const void *data, size_t size,
		 char *hash, struct err *e)
{
	struct blob_tmp t;
	int rc = blob_tmp_begin(b, &t, e);
	if (rc < 0)
		return rc;
	rc = blob_tmp_write(&t, data, size, e);
	if (rc < 0) {
		blob_tmp_abort(&t);
		return rc;
	}
	return blob_tmp_commit(b, &t, area, hash, e);
}

/* ---- the cache of remote blobs ---- */

struct cached_file {
	char path[PATH_MAX];
	int64_t used;
	uint64_t size;
};

static int by_use(const void *x, const void *y)
{
	const struct cached_file *a = x, *b = y;
	return a->used < b->used ? -1 : a->used > b->used;
}

/* Measure the cache and, when it holds more than its quota, evict least
 * recently used first until it holds 90% of it.  Runs when the running
 * count says the quota is passed, and once at open (the cache outlives a
 * restart; the count starts from what is on disk).  An evicted file still
 * open by a reader stays readable until closed. */
static void cache_evict(struct blob_store *b, bool measure)
{
	if (!b->cache_quota || (!measure && b->metrics.cache_bytes <= b->cache_quota))
		return;
	pthread_mutex_lock(&b->cache_lock);
	struct vec files;
	vec_init(&files, sizeof(struct cached_file));
	char top[PATH_MAX];
	snprintf(top, sizeof(top), "%s/cache", b->data_dir);
	uint64_t total = 0;
	DIR *areas = opendir(top);
	struct dirent *ae;
	while (areas && (ae = readdir(areas))) {
		if (ae->d_name[0] == '.')
			continue;
		char area[PATH_MAX];
		if (snprintf(area, sizeof(area), "%s/%.64s", top, ae->d_name) >= (int)sizeof(area))
			continue;
		DIR *d = opendir(area);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (strlen(de->d_name) != 2)
				continue;
			char sub[PATH_MAX];
			if (snprintf(sub, sizeof(sub), "%s/%s", area, de->d_name) >= (int)sizeof(sub))
				continue;
			DIR *d2 = opendir(sub);
			struct dirent *fe;
			while (d2 && (fe = readdir(d2))) {
				struct stat st;
				if (fe->d_name[0] == '.' || fstatat(dirfd(d2), fe->d_name, &st, 0) < 0)
					continue;
				struct cached_file *cf = vec_push(&files);
				if (!cf)
					break;
				if (snprintf(cf->path, sizeof(cf->path), "%s/%.64s", sub, fe->d_name) >=
				    (int)sizeof(cf->path)) {
					files.len--;
					continue;
				}
				cf->used = (int64_t)st.st_atime;
				cf->size = (uint64_t)st.st_size;
				total += cf->size;
			}
			if (d2)
				closedir(d2);
		}
		if (d)
			closedir(d);
	}
	if (areas)
		closedir(areas);
	if (files.len) /* qsort wants a non-null base even for no elements */
		qsort(files.data, files.len, sizeof(struct cached_file), by_use);
	uint64_t target = total > b->cache_quota ? b->cache_quota / 10 * 9 : total;
	for (size_t i = 0; i < files.len && total > target; i++) {
		const struct cached_file *cf = &VEC_AT(&files, struct cached_file, i);
		if (unlink(cf->path) == 0) {
			total -= cf->size;
			b->metrics.cache_evictions++;
		}
	}
	b->metrics.cache_bytes = total;
	vec_free(&files);
	pthread_mutex_unlock(&b->cache_lock);
}

static void cache_admit(struct blob_store *b, const char *tmp_path, const char *key,
			uint64_t size)
{
	char path[PATH_MAX], dir[PATH_MAX];
	cache_path(b, key, path, sizeof(path));
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	char *slash = strrchr(dir, '/');
	*slash = 0;
	mkdir(dir, 0755); /* cache/<area> */
	*slash = '/';
	mkdir(dir, 0755); /* cache/<area>/ab */
	chmod(tmp_path, 0444);
	if (link(tmp_path, path) == 0 || rename(tmp_path, path) == 0) {
		b->metrics.cache_bytes += size;
		cache_evict(b, false);
	}
}

/* Download key into the cache, checking its SHA-256 against its name.
 * *fd is opened on the downloaded file before it enters the cache, so the
 * caller reads it even when eviction removes it from the cache at once (a
 * blob larger than the quota, or a full cache under load). */
static int cache_fill(struct blob_store *b, const char *key, const char *hash, int *fd,
		      struct err *e)
{
	struct blob_tmp t;
	int rc = blob_tmp_begin(b, &t, e);
	if (rc < 0)
		return rc;
	uint64_t size = 0, start = now_ns();
	b->metrics.gets++;
	b->metrics.cache_misses++;
	rc = note(b, b->be->get(b->impl, key, t.fd, &size, e), start);
	if (rc == 0) {
		/* Hash what landed on disk, not what the backend said. */
		uint8_t buf[65536];
		ssize_t n;
		uint64_t got = 0;
		lseek(t.fd, 0, SEEK_SET);
		while ((n = read(t.fd, buf, sizeof(buf))) > 0) {
			sha256_update(&t.hash, buf, (size_t)n);
			got += (uint64_t)n;
		}
		char have[SHA256_HEX_LEN + 1];
		if (n < 0 || sha256_final_hex(&t.hash, have) < 0)
			rc = err_set(e, EIO, "%s: cannot read the download", key);
		else if (strcmp(have, hash) != 0)
			rc = err_set(e, EAGAIN, "%s: downloaded content hashes to %s (%llu bytes)",
				     key, have, (unsigned long long)got);
		if (rc < 0)
			b->metrics.errors++;
		else
			b->metrics.get_bytes += got;
		if (rc == 0 && (*fd = open(t.path, O_RDONLY | O_CLOEXEC)) < 0)
			rc = err_set(e, errno, "%s: %s", t.path, strerror(errno));
		if (rc == 0)
			cache_admit(b, t.path, key, got);
	}
	close(t.fd);
	unlink(t.path);
	sha256_discard(&t.hash);
	return rc;
}

/* ---- reading ---- */

/* A blob's key, and where its local copy is: the file itself (a local
 * backend) or its place in the cache of a remote one. */
static void local_copy(struct blob_store *b, const char *area, const char *hash, char *key,
		       size_t key_size, char *local, size_t local_size)
{
	blob_key(area, hash, key, key_size);
	if (b->be->local_path)
		b->be->local_path(b->impl, key, local, local_size);
	else
		cache_path(b, key, local, local_size);
}

/* The local copy (open as fd, or named by path when fd < 0) was used. */
static void record_use(int fd, const char *path, const struct stat *st)
{
	/* Set explicitly, so noatime mounts keep it; at most once a minute
	 * per blob, so serving costs no extra write.  The mtime stays the
	 * write time (grooming's grace period needs it). */
	if ((int64_t)st->st_atime < now_s() - USE_GRANULE_S) {
		const struct timespec used[2] = { { .tv_nsec = UTIME_NOW },
						  { .tv_nsec = UTIME_OMIT } };
		if (fd >= 0)
			futimens(fd, used);
		else if (path)
			utimensat(AT_FDCWD, path, used, 0);
	}
}

int blob_open(struct blob_store *b, const char *area, const char *hash, int *fd,
	      struct stat *st, char *path, size_t path_size, struct err *e)
{
	if (!valid_hash(hash))
		return err_set(e, EINVAL, "not a blob name: %.80s", hash);
	char key[128], local[PATH_MAX];
	local_copy(b, area, hash, key, sizeof(key), local, sizeof(local));
	int f = open(local, O_RDONLY | O_CLOEXEC);
	if (f < 0 && errno == ENOENT && !b->be->local_path) {
		int rc = cache_fill(b, key, hash, &f, e);
		if (rc < 0)
			return rc;
	} else if (f >= 0 && !b->be->local_path) {
		b->metrics.cache_hits++;
	}
	if (f < 0 || fstat(f, st) < 0) {
		int errnum = errno;
		if (f >= 0)
			close(f);
		return err_set(e, errnum, "%s: %s", local, strerror(errnum));
	}
	record_use(f, NULL, st);
	if (path)
		snprintf(path, path_size, "%s", local);
	*fd = f;
	return 0;
}

int blob_read(struct blob_store *b, const char *area, const char *hash, uint64_t max,
	      uint8_t **data, size_t *size, struct err *e)
{
	int fd;
	struct stat st;
	int rc = blob_open(b, area, hash, &fd, &st, NULL, 0, e);
	if (rc < 0)
		return rc;
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return err_set(e, EFBIG, "blob %s: %lld bytes, over %llu", hash,
			       (long long)st.st_size, (unsigned long long)max);
	}
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		return err_set(e, EIO, "blob %s: short read", hash);
	}
	*data = buf;
	*size = got;
	return 0;
}

int blob_stat(struct blob_store *b, const char *area, const char *hash, uint64_t *size,
	      int64_t *mtime, struct err *e)
{
	if (!valid_hash(hash))
		return err_set(e, EINVAL, "not a blob name");
	char key[128];
	blob_key(area, hash, key, sizeof(key));
	uint64_t start = now_ns();
	return note(b, b->be->stat(b->impl, key, size, mtime, e), start);
}

int blob_note_use(struct blob_store *b, const char *area, const char *hash)
{
	if (!valid_hash(hash))
		return -EINVAL;
	char key[128], local[PATH_MAX];
	local_copy(b, area, hash, key, sizeof(key), local, sizeof(local));
	struct stat st;
	if (stat(local, &st) < 0)
		return errno == ENOENT && !b->be->local_path ? 0 : -errno;
	record_use(-1, local, &st);
	return 0;
}

int64_t blob_last_use(struct blob_store *b, const char *area, const char *hash)
{
	char key[128], local[PATH_MAX];
	local_copy(b, area, hash, key, sizeof(key), local, sizeof(local));
	struct stat st;
	return stat(local, &st) == 0 ? (int64_t)st.st_atime : 0;
}

int blob_delete(struct blob_store *b, const char *area, const char *hash, struct err *e)
{
	if (!valid_hash(hash))
		return err_set(e, EINVAL, "not a blob name");
	char key[128];
	blob_key(area, hash, key, sizeof(key));
	if (!b->be->local_path) {
		char local[PATH_MAX];
		cache_path(b, key, local, sizeof(local));
		unlink(local);
	}
	uint64_t start = now_ns();
	return note(b, b->be->del(b->impl, key, e), start);
}

struct list_ctx {
	blob_list_fn fn;
	void *ctx;
	size_t prefix_len;
};

static int list_key(void *ctx, const char *key, uint64_t size, int64_t mtime)
{
	struct list_ctx *l = ctx;
	/* "<area>/ab/cdef…" → "abcdef…" */
	const char *rest = key + l->prefix_len;
	char hash[SHA256_HEX_LEN + 1];
	if (strlen(rest) != SHA256_HEX_LEN + 1 || rest[2] != '/')
		return 0;
	memcpy(hash, rest, 2);
	memcpy(hash + 2, rest + 3, SHA256_HEX_LEN - 2);
	hash[SHA256_HEX_LEN] = 0;
	return valid_hash(hash) ? l->fn(l->ctx, hash, size, mtime) : 0;
}

int blob_list(struct blob_store *b, const char *area, blob_list_fn fn, void *ctx,
	      struct err *e)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "%s/", area);
	struct list_ctx l = { fn, ctx, strlen(prefix) };
	uint64_t start = now_ns();
	return note(b, b->be->list(b->impl, prefix, list_key, &l, e), start);
}

int blobs_ping(struct blob_store *b, struct err *e)
{
	uint64_t start = now_ns();
	return note(b, b->be->ping(b->impl, e), start);
}
