/* The replica-local LRU disk cache of blobs (blob_cache.h).
 *
 * Invariants, under the lock: every present entry is on the LRU list
 * exactly once (head = most recent) and names a file DIR/<flat name>;
 * total is the sum of the present entries' sizes; the map names every
 * entry, present or free, and is rebuilt when free ones outnumber the rest. */
#include "debuginfod-lite/blob_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hashmap.h"

#define NONE UINT32_MAX
#define TMP_PREFIX ".tmp-"

struct entry {
	char name[BLOB_CACHE_NAME_MAX + 1];
	uint64_t size;
	uint32_t prev, next;
	bool present;
};

struct blob_cache {
	char *dir;
	uint64_t quota, total;
	pthread_mutex_t lock;
	struct hashmap map; /* name -> entry index */
	struct vec entries; /* struct entry */
	uint32_t head, tail, free_list, live;
	uint64_t tmp_seq;
	struct blob_cache_stats stats;
};

bool blob_cache_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > BLOB_CACHE_NAME_MAX || name[0] == '.' || name[0] == '/' ||
	    strstr(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-' || ch == '/'))
			return false;
	}
	return true;
}

/* One flat directory: '/' in a name becomes '%', which names never hold. */
static void flat_path(const struct blob_cache *c, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/", c->dir);
	for (const char *p = name; *p && n >= 0 && (size_t)n + 1 < cap; p++)
		out[n++] = *p == '/' ? '%' : *p;
	out[n] = '\0';
}

static struct entry *at(struct blob_cache *c, uint32_t i)
{
	return &VEC_AT(&c->entries, struct entry, i);
}

static void lru_unlink(struct blob_cache *c, uint32_t i)
{
	struct entry *e = at(c, i);
	if (e->prev != NONE)
		at(c, e->prev)->next = e->next;
	else
		c->head = e->next;
	if (e->next != NONE)
		at(c, e->next)->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NONE;
}

static void lru_push_head(struct blob_cache *c, uint32_t i)
{
	struct entry *e = at(c, i);
	e->prev = NONE;
	e->next = c->head;
	if (c->head != NONE)
		at(c, c->head)->prev = i;
	c->head = i;
	if (c->tail == NONE)
		c->tail = i;
}

/* The entry of name, or NONE. */
static uint32_t lookup(struct blob_cache *c, const char *name)
{
	uint64_t v;
	if (hashmap_find(&c->map, name, strlen(name), &v, false) != 1)
		return NONE;
	uint32_t i = (uint32_t)v;
	return at(c, i)->present && strcmp(at(c, i)->name, name) == 0 ? i : NONE;
}

/* Free entries stay in the map (it never deletes): rebuild it from the
 * live ones when they are the minority, so churn cannot grow it forever. */
static int compact_map(struct blob_cache *c)
{
	if (hashmap_count(&c->map) < 1024 || hashmap_count(&c->map) < 2 * (size_t)c->live)
		return 0;
	struct hashmap fresh;
	hashmap_init(&fresh);
	for (uint32_t i = 0; i < c->entries.len; i++) {
		struct entry *e = at(c, i);
		uint64_t v = i;
		if (e->present && hashmap_find(&fresh, e->name, strlen(e->name), &v, true) < 0) {
			hashmap_free(&fresh);
			return -ENOMEM;
		}
	}
	hashmap_free(&c->map);
	c->map = fresh;
	return 0;
}

static int add_entry(struct blob_cache *c, const char *name, uint64_t size, uint32_t *out)
{
	uint32_t i;
	if (c->free_list != NONE) {
		i = c->free_list;
		c->free_list = at(c, i)->next;
	} else {
		if (c->entries.len >= NONE - 1 || !vec_push(&c->entries))
			return -ENOMEM;
		i = (uint32_t)(c->entries.len - 1);
	}
	struct entry *e = at(c, i);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->size = size;
	e->present = true;
	uint64_t *slot;
	if (hashmap_slot(&c->map, name, strlen(name), &slot) < 0) {
		e->present = false;
		e->next = c->free_list;
		c->free_list = i;
		return -ENOMEM;
	}
	*slot = i;
	lru_push_head(c, i);
	c->total += size;
	c->live++;
	*out = i;
	return 0;
}

static void remove_entry(struct blob_cache *c, uint32_t i, bool unlink_file)
{
	struct entry *e = at(c, i);
	if (unlink_file) {
		char path[PATH_MAX];
		flat_path(c, e->name, path, sizeof(path));
		unlink(path);
	}
	lru_unlink(c, i);
	c->total -= e->size;
	c->live--;
	e->present = false;
	e->next = c->free_list;
	c->free_list = i;
}

static void evict(struct blob_cache *c)
{
	while (c->total > c->quota && c->tail != NONE) {
		remove_entry(c, c->tail, true);
		c->stats.evictions++;
	}
	compact_map(c);
}

struct seed {
	char name[BLOB_CACHE_NAME_MAX + 1];
	uint64_t size;
	int64_t atime_ns;
};

static int by_atime_desc(const void *a, const void *b)
{
	const struct seed *x = a, *y = b;
	return x->atime_ns < y->atime_ns ? 1 : x->atime_ns > y->atime_ns ? -1 : 0;
}

int blob_cache_open(const char *dir, uint64_t quota, struct blob_cache **out, struct err *e)
{
	*out = NULL;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, "cache directory %s: %m", dir);
	DIR *d = opendir(dir);
	if (!d)
		return err_set(e, errno, "cache directory %s: %m", dir);
	struct blob_cache *c = calloc(1, sizeof(*c));
	if (!c) {
		closedir(d);
		return -ENOMEM;
	}
	c->dir = strdup(dir);
	c->quota = quota;
	c->head = c->tail = c->free_list = NONE;
	pthread_mutex_init(&c->lock, NULL);
	hashmap_init(&c->map);
	vec_init(&c->entries, sizeof(struct entry));
	struct vec seeds;
	vec_init(&seeds, sizeof(struct seed));
	int rc = c->dir ? 0 : -ENOMEM;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' && strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
			unlinkat(dirfd(d), de->d_name, 0); /* a fetch that never finished */
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		struct seed *s = vec_push(&seeds);
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		size_t dn = strlen(de->d_name);
		if (dn > BLOB_CACHE_NAME_MAX) {
			unlinkat(dirfd(d), de->d_name, 0);
			seeds.len--;
			continue;
		}
		memcpy(s->name, de->d_name, dn + 1);
		for (char *p = s->name; *p; p++)
			if (*p == '%')
				*p = '/';
		s->size = (uint64_t)st.st_size;
		s->atime_ns = (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec;
		if (!blob_cache_name_ok(s->name)) {
			unlinkat(dirfd(d), de->d_name, 0);
			seeds.len--;
		}
	}
	closedir(d);
	if (rc == 0) {
		/* Oldest last: pushed to the head in reverse, newest ends first. */
		if (seeds.len)
			qsort(seeds.data, seeds.len, sizeof(struct seed), by_atime_desc);
		for (size_t i = seeds.len; rc == 0 && i-- > 0;) {
			uint32_t idx;
			rc = add_entry(c, VEC_AT(&seeds, struct seed, i).name,
				       VEC_AT(&seeds, struct seed, i).size, &idx);
		}
		evict(c);
	}
	vec_free(&seeds);
	if (rc < 0) {
		blob_cache_close(c);
		return err_set(e, -rc, "cache directory %s: %s", dir, strerror(-rc));
	}
	*out = c;
	return 0;
}

void blob_cache_close(struct blob_cache *c)
{
	if (!c)
		return;
	hashmap_free(&c->map);
	vec_free(&c->entries);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

int blob_cache_get(struct blob_cache *c, const char *name, uint64_t *size)
{
	if (!blob_cache_name_ok(name))
		return -EINVAL;
	char path[PATH_MAX];
	flat_path(c, name, path, sizeof(path));
	pthread_mutex_lock(&c->lock);
	uint32_t i = lookup(c, name);
	int fd = -ENOENT;
	if (i != NONE) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) { /* removed behind our back */
			remove_entry(c, i, false);
			fd = -ENOENT;
		} else {
			*size = at(c, i)->size;
			lru_unlink(c, i);
			lru_push_head(c, i);
		}
	}
	if (fd >= 0)
		c->stats.hits++;
	else
		c->stats.misses++;
	pthread_mutex_unlock(&c->lock);
	return fd;
}

int blob_cache_tmp(struct blob_cache *c, char *path, size_t cap)
{
	uint64_t seq = __atomic_add_fetch(&c->tmp_seq, 1, __ATOMIC_RELAXED);
	int n = snprintf(path, cap, "%s/" TMP_PREFIX "%d-%llu", c->dir, (int)getpid(),
			 (unsigned long long)seq);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

int blob_cache_commit(struct blob_cache *c, const char *tmp_path, const char *name)
{
	if (!blob_cache_name_ok(name))
		return -EINVAL;
	char path[PATH_MAX];
	flat_path(c, name, path, sizeof(path));
	int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if ((uint64_t)st.st_size > c->quota) {
		/* Larger than the whole cache: it would only flush the rest. */
		unlink(tmp_path);
		return fd;
	}
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	if (rename(tmp_path, path) < 0) {
		rc = -errno;
	} else {
		/* Content-addressed: a name already here had the same bytes. */
		uint32_t i = lookup(c, name);
		if (i != NONE)
			remove_entry(c, i, false);
		rc = add_entry(c, name, (uint64_t)st.st_size, &i);
		if (rc < 0)
			unlink(path);
		else
			c->stats.inserts++;
		evict(c);
	}
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

void blob_cache_drop(struct blob_cache *c, const char *name)
{
	if (!blob_cache_name_ok(name))
		return;
	pthread_mutex_lock(&c->lock);
	uint32_t i = lookup(c, name);
	if (i != NONE)
		remove_entry(c, i, true);
	pthread_mutex_unlock(&c->lock);
}

void blob_cache_stats(struct blob_cache *c, struct blob_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	out->bytes = c->total;
	out->files = c->live;
	out->quota = c->quota;
	pthread_mutex_unlock(&c->lock);
}
