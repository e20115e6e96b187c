/* The local-directory blob backend (blobs.h): key "<area>/ab/cdef…" is the
 * file DIR/<area>/ab/cdef…, read-only once written.  This is the layout a
 * single node has always had (docs/data-directory.md), so an existing data
 * directory is served as is. */
#include "debuginfod-lite/blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct file_backend {
	char dir[PATH_MAX - 128];
};

static int fb_open(void **impl, const struct blob_options *opt, struct err *e)
{
	const char *dir = opt->url && strncmp(opt->url, "file:", 5) == 0 && opt->url[5]
				  ? opt->url + 5 : opt->data_dir;
	struct file_backend *f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, ENOMEM, "out of memory");
	char real[PATH_MAX];
	int rc = blob_mkdir_p(dir);
	if (rc < 0 || !realpath(dir, real)) {
		free(f);
		return err_set(e, rc < 0 ? -rc : errno, "blob directory %s: %s", dir,
			       strerror(rc < 0 ? -rc : errno));
	}
	if (strlen(real) >= sizeof(f->dir)) {
		free(f);
		return err_set(e, ENAMETOOLONG, "blob directory %s: path too long", dir);
	}
	memcpy(f->dir, real, strlen(real) + 1);
	*impl = f;
	return 0;
}

static void fb_close(void *impl)
{
	free(impl);
}

static int fb_local_path(void *impl, const char *key, char *out, size_t size)
{
	struct file_backend *f = impl;
	return snprintf(out, size, "%s/%s", f->dir, key) >= (int)size ? -ENAMETOOLONG : 0;
}

static void fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int fb_put(void *impl, const char *key, const char *tmp_path, int fd, uint64_t size,
		  const char *sha256_hex, struct err *e)
{
	(void)sha256_hex;
	char path[PATH_MAX];
	if (fb_local_path(impl, key, path, sizeof(path)) < 0)
		return err_set(e, ENAMETOOLONG, "%s: path too long", key);
	if (fsync(fd) < 0)
		return err_set(e, errno, "fsync: %s", strerror(errno));
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	int rc = blob_mkdir_p(dir);
	if (rc < 0)
		return err_set(e, -rc, "%s: %s", dir, strerror(-rc));
	struct stat st;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size == size) {
		/* Same content already stored: keep it young for grooming. */
		utimensat(AT_FDCWD, path, NULL, 0);
		return 0;
	}
	chmod(tmp_path, 0444);
	if (rename(tmp_path, path) < 0)
		return err_set(e, errno, "rename to %s: %s", path, strerror(errno));
	fsync_parent(path);
	return 0;
}

static int fb_get(void *impl, const char *key, int fd, uint64_t *size, struct err *e)
{
	char path[PATH_MAX];
	if (fb_local_path(impl, key, path, sizeof(path)) < 0)
		return err_set(e, ENAMETOOLONG, "%s: path too long", key);
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	char buf[65536];
	ssize_t n;
	*size = 0;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(fd, buf, (size_t)n) != n) {
			close(in);
			return err_set(e, EIO, "copying %s: short write", path);
		}
		*size += (uint64_t)n;
	}
	close(in);
	return n < 0 ? err_set(e, EIO, "%s: read error", path) : 0;
}

static int fb_stat(void *impl, const char *key, uint64_t *size, int64_t *mtime, struct err *e)
{
	char path[PATH_MAX];
	struct stat st;
	if (fb_local_path(impl, key, path, sizeof(path)) < 0 || stat(path, &st) < 0)
		return err_set(e, ENOENT, "%s: no such blob", key);
	*size = (uint64_t)st.st_size;
	*mtime = (int64_t)st.st_mtime;
	return 0;
}

static int fb_del(void *impl, const char *key, struct err *e)
{
	char path[PATH_MAX];
	if (fb_local_path(impl, key, path, sizeof(path)) < 0)
		return err_set(e, ENAMETOOLONG, "%s: path too long", key);
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	return 0;
}

static int fb_list(void *impl, const char *prefix,
		   int (*fn)(void *ctx, const char *key, uint64_t size, int64_t mtime), void *ctx,
		   struct err *e)
{
	char top[PATH_MAX];
	if (fb_local_path(impl, prefix, top, sizeof(top)) < 0)
		return err_set(e, ENAMETOOLONG, "%s: path too long", prefix);
	DIR *d = opendir(top);
	if (!d)
		return errno == ENOENT ? 0 : err_set(e, errno, "%s: %s", top, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (strlen(de->d_name) != 2)
			continue;
		DIR *d2 = fdopendir(openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!d2)
			continue;
		struct dirent *be;
		while (rc == 0 && (be = readdir(d2))) {
			char key[PATH_MAX];
			struct stat st;
			if (be->d_name[0] == '.' || strlen(be->d_name) != SHA256_HEX_LEN - 2 ||
			    fstatat(dirfd(d2), be->d_name, &st, 0) < 0)
				continue;
			snprintf(key, sizeof(key), "%s%s/%s", prefix, de->d_name, be->d_name);
			rc = fn(ctx, key, (uint64_t)st.st_size, (int64_t)st.st_mtime);
		}
		closedir(d2);
	}
	closedir(d);
	return rc;
}

static int fb_ping(void *impl, struct err *e)
{
	struct file_backend *f = impl;
	return access(f->dir, W_OK) == 0 ? 0 : err_set(e, EAGAIN, "%s: not writable", f->dir);
}

const struct blob_backend blob_backend_file = {
	.scheme = "file",
	.open = fb_open,
	.close = fb_close,
	.put = fb_put,
	.get = fb_get,
	.stat = fb_stat,
	.del = fb_del,
	.list = fb_list,
	.ping = fb_ping,
	.local_path = fb_local_path,
};
