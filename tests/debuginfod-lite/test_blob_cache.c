/* The replica-local blob cache (debuginfod-lite/blob_cache.h): the quota
 * holds, the least recently used blob leaves first, an evicted blob stays
 * readable through an fd already open, a restart keeps what fits and
 * removes unfinished temporary files. */
#include "debuginfod-lite/blob_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/check.h"

static int put(struct blob_cache *c, const char *name, size_t size, char fill)
{
	char tmp[PATH_MAX];
	int fd = blob_cache_tmp(c, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	char *buf = malloc(size);
	memset(buf, fill, size);
	ssize_t w = write(fd, buf, size);
	free(buf);
	close(fd);
	if (w != (ssize_t)size)
		return -EIO;
	return blob_cache_commit(c, tmp, name);
}

static bool has(struct blob_cache *c, const char *name)
{
	uint64_t size;
	int fd = blob_cache_get(c, name, &size);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

int main(void)
{
	char dir[] = "/tmp/test_blob_cache.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char cdir[PATH_MAX];
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	struct err e;
	err_clear(&e);
	struct blob_cache *c;
	int rc = blob_cache_open(cdir, 3000, &c, &e);
	CHECK(rc == 0, "blob_cache_open", "%s", e.msg);
	if (rc < 0)
		CHECK_EXIT();

	int fa = put(c, "blobs/aa", 1000, 'a');
	int fb = put(c, "blobs/bb", 1000, 'b');
	int fc = put(c, "blobs/cc", 1000, 'c');
	CHECK(fa >= 0 && fb >= 0 && fc >= 0, "blob_cache_commit", "%d %d %d", fa, fb, fc);
	/* Touch aa: bb is now the least recently used. */
	CHECK(has(c, "blobs/aa"), "blob_cache_hit", "aa missing");
	int fd_d = put(c, "blobs/dd", 1000, 'd');
	CHECK(fd_d >= 0 && !has(c, "blobs/bb") && has(c, "blobs/aa") && has(c, "blobs/cc") &&
		      has(c, "blobs/dd"),
	      "blob_cache_evicts_lru", "bb %d aa %d cc %d dd %d", has(c, "blobs/bb"),
	      has(c, "blobs/aa"), has(c, "blobs/cc"), has(c, "blobs/dd"));
	char byte = 0;
	CHECK(pread(fb, &byte, 1, 999) == 1 && byte == 'b', "blob_cache_evicted_fd_still_reads",
	      "read %c", byte);
	struct blob_cache_stats st;
	blob_cache_stats(c, &st);
	CHECK(st.bytes == 3000 && st.files == 3 && st.evictions == 1, "blob_cache_accounting",
	      "bytes %llu files %llu evictions %llu", (unsigned long long)st.bytes,
	      (unsigned long long)st.files, (unsigned long long)st.evictions);

	/* A blob larger than the quota: readable through the fd, never kept. */
	int fbig = put(c, "blobs/big", 5000, 'x');
	CHECK(fbig >= 0 && pread(fbig, &byte, 1, 4999) == 1 && byte == 'x' && !has(c, "blobs/big"),
	      "blob_cache_oversized_served_not_kept", "fd %d", fbig);
	blob_cache_stats(c, &st);
	CHECK(st.bytes <= 3000, "blob_cache_quota_holds", "%llu bytes", (unsigned long long)st.bytes);

	CHECK(put(c, "../escape", 10, 'e') == -EINVAL && put(c, ".hidden", 10, 'e') == -EINVAL &&
		      put(c, "a%b", 10, 'e') == -EINVAL,
	      "blob_cache_refuses_bad_names", "accepted one");

	blob_cache_drop(c, "blobs/cc");
	CHECK(!has(c, "blobs/cc"), "blob_cache_drop", "cc still there");

	/* An unfinished fetch, then a restart with a smaller quota. */
	char tmp[PATH_MAX];
	int ft = blob_cache_tmp(c, tmp, sizeof(tmp));
	if (ft >= 0)
		close(ft);
	blob_cache_close(c);
	rc = blob_cache_open(cdir, 1500, &c, &e);
	CHECK(rc == 0 && access(tmp, F_OK) < 0, "blob_cache_restart_removes_tmp", "%s", e.msg);
	if (rc == 0) {
		blob_cache_stats(c, &st);
		CHECK(st.files == 1 && st.bytes == 1000, "blob_cache_restart_applies_quota",
		      "%llu files %llu bytes", (unsigned long long)st.files,
		      (unsigned long long)st.bytes);
		blob_cache_close(c);
	}
	close(fa), close(fb), close(fc), close(fd_d), close(fbig);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	CHECK_EXIT();
}
