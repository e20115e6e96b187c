/* Source names through libdw, and the local-file rule (sources.h). */
#include "debuginfod-lite/sources.h"
#include "common/hashmap.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool path_canonical(const char *in, char *out, size_t size)
{
	if (in[0] != '/' || size < 2)
		return false;
	size_t len = 0;
	out[len] = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *seg = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - seg);
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			if (len == 0)
				return false; /* above the root */
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the slash */
			out[len] = 0;
			continue;
		}
		if (len + 1 + n + 1 > size)
			return false;
		out[len++] = '/';
		memcpy(out + len, seg, n);
		len += n;
		out[len] = 0;
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = 0;
	}
	return true;
}

bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

int dwarf_sources_each(const char *debug_path, dwarf_source_fn fn, void *ctx, struct err *e)
{
	int fd = open(debug_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: %s", debug_path, strerror(errno));
	Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
	if (!dw) {
		close(fd);
		return err_set(e, ENODATA, "%s: no DWARF: %s", debug_path, dwarf_errmsg(-1));
	}
	int rc = 0;
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (rc == 0 && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		bool have_cu = dwarf_offdie(dw, off + hsize, &cu) != NULL;
		off = next;
		Dwarf_Files *files;
		size_t nfiles;
		if (!have_cu || dwarf_getsrcfiles(&cu, &files, &nfiles) != 0)
			continue;
		Dwarf_Attribute attr;
		const char *comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr));
		for (size_t i = 0; i < nfiles && rc == 0; i++) {
			const char *name = dwarf_filesrc(files, i, NULL, NULL);
			if (!name || !*name)
				continue;
			char full[PATH_MAX], canon[PATH_MAX];
			int n;
			if (name[0] == '/')
				n = snprintf(full, sizeof(full), "%s", name);
			else if (comp_dir && comp_dir[0] == '/')
				n = snprintf(full, sizeof(full), "%s/%s", comp_dir, name);
			else
				continue; /* no absolute name: no client can ask for it */
			if (n < 0 || (size_t)n >= sizeof(full) ||
			    !path_canonical(full, canon, sizeof(canon)))
				continue;
			rc = fn(ctx, canon);
		}
	}
	dwarf_end(dw);
	close(fd);
	return rc;
}

static int stop_at_match(void *want, const char *path)
{
	return strcmp(path, want) == 0;
}

int dwarf_names_source(const char *debug_path, const char *want, struct err *e)
{
	return dwarf_sources_each(debug_path, stop_at_match, (void *)want, e);
}

/* --- the names cache --- */

#define NAMES_CACHE_SLOTS 4
#define NAMES_CACHE_MAX_BYTES (16u << 20) /* per file; more is not kept */

struct names_entry {
	char *path; /* NULL: empty slot */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct hashmap names; /* the names as keys */
	uint64_t used;        /* LRU clock */
};

struct dwarf_names_cache {
	pthread_mutex_t lock;
	struct names_entry slot[NAMES_CACHE_SLOTS];
	uint64_t clock;
};

struct dwarf_names_cache *dwarf_names_cache_new(void)
{
	struct dwarf_names_cache *c = calloc(1, sizeof(*c));
	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void names_entry_clear(struct names_entry *en)
{
	free(en->path);
	hashmap_free(&en->names);
	memset(en, 0, sizeof(*en));
}

void dwarf_names_cache_free(struct dwarf_names_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < NAMES_CACHE_SLOTS; i++)
		names_entry_clear(&c->slot[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool same_file(const struct names_entry *en, const char *path, const struct stat *st)
{
	return en->path && strcmp(en->path, path) == 0 && en->dev == st->st_dev &&
	       en->ino == st->st_ino && en->size == st->st_size &&
	       en->mtime.tv_sec == st->st_mtim.tv_sec && en->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The names of one file, bounded. */
struct name_set {
	struct hashmap *map;
	bool too_big;
};

static int set_add(void *ctx, const char *path)
{
	struct name_set *set = ctx;
	if (hashmap_memory(set->map) > NAMES_CACHE_MAX_BYTES) {
		set->too_big = true;
		return 1; /* stop: answered without the cache */
	}
	uint64_t unused = 0;
	return hashmap_find(set->map, path, strlen(path), &unused, true) < 0 ? -ENOMEM : 0;
}

/* Read the names of `path` into a new entry; -errno, or 1 when there are
 * too many to keep. */
static int names_entry_fill(struct names_entry *en, const char *path, const struct stat *st,
			    struct err *e)
{
	hashmap_init(&en->names);
	struct name_set set = { &en->names, false };
	int rc = dwarf_sources_each(path, set_add, &set, e);
	if (rc == 0 && !set.too_big && !(en->path = strdup(path)))
		rc = err_set(e, ENOMEM, "out of memory");
	if (rc < 0 || set.too_big) {
		hashmap_free(&en->names);
		return rc < 0 ? rc : 1;
	}
	en->dev = st->st_dev;
	en->ino = st->st_ino;
	en->size = st->st_size;
	en->mtime = st->st_mtim;
	return 0;
}

static bool entry_names(struct names_entry *en, const char *want)
{
	uint64_t unused;
	return hashmap_find(&en->names, want, strlen(want), &unused, false) == 1;
}

int dwarf_names_source_cached(struct dwarf_names_cache *c, const char *debug_path,
			      const char *want, struct err *e)
{
	struct stat st;
	if (stat(debug_path, &st) < 0)
		return err_set(e, errno, "%s: %s", debug_path, strerror(errno));
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < NAMES_CACHE_SLOTS; i++) {
		struct names_entry *en = &c->slot[i];
		if (!same_file(en, debug_path, &st))
			continue;
		en->used = ++c->clock;
		int found = entry_names(en, want);
		pthread_mutex_unlock(&c->lock);
		return found;
	}
	pthread_mutex_unlock(&c->lock);
	/* Read outside the lock: two readers of one file may both read it. */
	struct names_entry fresh = { 0 };
	int rc = names_entry_fill(&fresh, debug_path, &st, e);
	if (rc == 1)
		return dwarf_names_source(debug_path, want, e);
	if (rc < 0)
		return rc;
	int found = entry_names(&fresh, want);
	pthread_mutex_lock(&c->lock);
	struct names_entry *victim = &c->slot[0];
	for (int i = 1; i < NAMES_CACHE_SLOTS; i++)
		if (c->slot[i].used < victim->used)
			victim = &c->slot[i];
	names_entry_clear(victim);
	*victim = fresh;
	victim->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* --- the local-file rule --- */

int source_policy_add_root(struct source_policy *p, const char *dir, struct err *e)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(dir, real) || stat(real, &st) < 0)
		return err_set(e, errno, "source root %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ENOTDIR, "source root %s: not a directory", dir);
	if (p->n_roots >= SOURCE_POLICY_MAX)
		return err_set(e, E2BIG, "more than %d source roots", SOURCE_POLICY_MAX);
	if (!(p->roots[p->n_roots] = strdup(real)))
		return err_set(e, ENOMEM, "out of memory");
	p->n_roots++;
	return 0;
}

int source_policy_forbid(struct source_policy *p, const char *path, struct err *e)
{
	if (p->n_forbidden >= SOURCE_POLICY_MAX)
		return err_set(e, E2BIG, "more than %d forbidden source paths", SOURCE_POLICY_MAX);
	struct source_forbidden *f = &p->forbidden[p->n_forbidden];
	char real[PATH_MAX], cwd[PATH_MAX], abs[2 * PATH_MAX];
	struct stat st;
	if (realpath(path, real)) {
		f->path = strdup(real);
		if (stat(real, &st) == 0 && S_ISREG(st.st_mode)) {
			f->have_id = true;
			f->dev = st.st_dev;
			f->ino = st.st_ino;
		}
	} else {
		/* Not there yet: forbid the name it will have. */
		if (path[0] == '/')
			snprintf(abs, sizeof(abs), "%s", path);
		else if (getcwd(cwd, sizeof(cwd)))
			snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
		else
			return err_set(e, errno, "%s: %s", path, strerror(errno));
		if (!path_canonical(abs, real, sizeof(real)))
			return err_set(e, ENAMETOOLONG, "%s: path too long", path);
		f->path = strdup(real);
	}
	if (!f->path)
		return err_set(e, ENOMEM, "out of memory");
	p->n_forbidden++;
	return 0;
}

void source_policy_free(struct source_policy *p)
{
	for (int i = 0; i < p->n_roots; i++)
		free(p->roots[i]);
	for (int i = 0; i < p->n_forbidden; i++)
		free(p->forbidden[i].path);
	memset(p, 0, sizeof(*p));
}

bool source_policy_forbidden(const struct source_policy *p, const char *real,
			     const struct stat *st)
{
	for (int i = 0; i < p->n_forbidden; i++) {
		const struct source_forbidden *f = &p->forbidden[i];
		if (path_under(real, f->path))
			return true;
		if (st && f->have_id && st->st_dev == f->dev && st->st_ino == f->ino)
			return true;
	}
	return false;
}

/* Open a path that realpath() produced, so one that has no symbolic link
 * left: a link found now was swapped in since, and is refused (ELOOP). */
static int open_resolved(const char *real)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; /* a FIFO must not block us */
#ifdef SYS_openat2
	struct open_how how = { .flags = (uint64_t)flags, .resolve = RESOLVE_NO_SYMLINKS };
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof(how));
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return fd;
#endif
	/* Older kernels: the last component at least, and then ask the kernel
	 * what was opened. */
	int f = open(real, flags | O_NOFOLLOW);
	if (f < 0)
		return f;
	char proc[64], opened[PATH_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f);
	ssize_t n = readlink(proc, opened, sizeof(opened) - 1);
	if (n >= 0) {
		opened[n] = 0;
		if (strcmp(opened, real) != 0) {
			close(f);
			errno = ELOOP;
			return -1;
		}
	}
	return f;
}

int source_open_local(const struct source_policy *p, const char *path, int *fd, struct stat *st,
		      struct err *e)
{
	char real[PATH_MAX];
	if (!realpath(path, real)) {
		int errnum = errno == ENOENT || errno == ENOTDIR ? ENOENT : EACCES;
		return err_set(e, errnum, "%s: %s", path, strerror(errno));
	}
	bool rooted = false;
	for (int i = 0; i < p->n_roots && !rooted; i++)
		rooted = path_under(real, p->roots[i]);
	if (!rooted)
		return err_set(e, EACCES, "%s: outside every source root", path);
	if (source_policy_forbidden(p, real, NULL))
		return err_set(e, EACCES, "%s: one of the server's own files", path);
	int f = open_resolved(real);
	if (f < 0) {
		int errnum = errno;
		return err_set(e, errnum == ENOENT ? ENOENT : EACCES, "%s: %s", path,
			       strerror(errnum));
	}
	if (fstat(f, st) < 0 || !S_ISREG(st->st_mode) || source_policy_forbidden(p, real, st)) {
		close(f);
		return err_set(e, EACCES, "%s: not a regular file that may be served", path);
	}
	*fd = f;
	return 0;
}
