/* Directory scanning (scan.h). */
#include "debuginfod-lite/scan.h"
#include "debuginfod-lite/artifact.h"
#include "debuginfod-lite/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SCAN_MAX_DEPTH 32

static uint32_t file_crc32(const char *path, bool *ok)
{
	*ok = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	uLong crc = crc32(0, NULL, 0);
	uint8_t buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = crc32(crc, buf, (uInt)n);
	close(fd);
	*ok = n == 0;
	return (uint32_t)crc;
}

static void fill_candidate(struct artifact *a, const char *build_id, enum artifact_kind kind,
			   int quality, const char *path, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->build_id, sizeof(a->build_id), "%s", build_id);
	a->kind = kind;
	a->origin = ORIGIN_SCAN;
	a->quality = quality;
	snprintf(a->path, sizeof(a->path), "%s", path);
	snprintf(a->file, sizeof(a->file), "%s", path);
	a->size = (uint64_t)st->st_size;
	a->mtime = (int64_t)st->st_mtime;
}

/* A stripped file's debug file named by .gnu_debuglink, in the places gdb
 * looks: next to it, in .debug/, and under /usr/lib/debug. */
static void index_debuglink(struct store *s, const char *path, const struct elf_info *info,
			    struct err *e)
{
	char dir[PATH_MAX], cand[3][PATH_MAX + 300];
	snprintf(dir, sizeof(dir), "%s", path);
	char *d = dirname(dir);
	snprintf(cand[0], sizeof(cand[0]), "%s/%s", d, info->debuglink);
	snprintf(cand[1], sizeof(cand[1]), "%s/.debug/%s", d, info->debuglink);
	snprintf(cand[2], sizeof(cand[2]), "/usr/lib/debug%s/%s", d, info->debuglink);
	for (size_t i = 0; i < ARRAY_SIZE(cand); i++) {
		char real[PATH_MAX];
		struct stat st;
		if (!realpath(cand[i], real) || strcmp(real, path) == 0 || stat(real, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		bool ok;
		if (file_crc32(real, &ok) != info->debuglink_crc || !ok)
			continue;
		struct elf_object o;
		struct err oe = { { 0 } };
		if (elf_object_open(&o, real, &oe) < 0)
			continue;
		struct elf_info dinfo;
		elf_info_read(&o, &dinfo);
		elf_object_close(&o);
		if (dinfo.debuginfo_quality < QUALITY_DWARF)
			continue;
		struct artifact a;
		fill_candidate(&a, info->build_id, ART_DEBUGINFO, dinfo.debuginfo_quality, real, &st);
		store_add_external(s, &a, e);
		return;
	}
}

int scan_file(struct store *s, const char *path, const struct stat *st, struct scan_counts *c,
	      struct err *e)
{
	c->files++;
	if (store_scanned_same(s, path, (uint64_t)st->st_size, (int64_t)st->st_mtime)) {
		c->unchanged++;
		return 0;
	}
	/* Cheap magic check before handing the file to libelf. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint8_t magic[4] = { 0 };
	bool elf = fd >= 0 && pread(fd, magic, 4, 0) == 4 && memcmp(magic, ELFMAG, 4) == 0;
	if (fd >= 0)
		close(fd);
	if (elf) {
		struct elf_object o;
		struct err oe = { { 0 } };
		if (elf_object_open(&o, path, &oe) == 0) {
			struct elf_info info;
			elf_info_read(&o, &info);
			elf_object_close(&o);
			c->elf++;
			store_forget_external(s, path, e);
			struct artifact a;
			if (info.build_id[0] && info.debuginfo_quality >= QUALITY_DWARF) {
				fill_candidate(&a, info.build_id, ART_DEBUGINFO,
					       info.debuginfo_quality, path, st);
				store_add_external(s, &a, e);
				c->indexed++;
			}
			if (info.build_id[0] && info.executable) {
				fill_candidate(&a, info.build_id, ART_EXECUTABLE, QUALITY_SYMTAB, path,
					       st);
				store_add_external(s, &a, e);
				c->indexed++;
			}
			if (info.build_id[0] && info.debuglink[0] &&
			    info.debuginfo_quality < QUALITY_DWARF)
				index_debuglink(s, path, &info, e);
		}
	}
	return store_scanned_set(s, path, (uint64_t)st->st_size, (int64_t)st->st_mtime, e);
}

static void scan_dir(struct store *s, const char *dir, int depth, struct scan_counts *c,
		     struct err *e)
{
	if (depth > SCAN_MAX_DEPTH)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		struct stat st;
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			scan_dir(s, path, depth + 1, c, e);
		} else if (S_ISLNK(st.st_mode) || S_ISREG(st.st_mode)) {
			/* Symlinks to files are followed (the .build-id tree is
			 * made of them); to directories they are not (loops). */
			char real[PATH_MAX];
			if (!realpath(path, real) || stat(real, &st) < 0 || !S_ISREG(st.st_mode) ||
			    st.st_size < 64)
				continue;
			scan_file(s, real, &st, c, e);
		}
	}
	closedir(d);
}

int scan_tree(struct store *s, const char *root, struct scan_counts *counts, struct err *e)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(root, real) || stat(real, &st) < 0)
		return err_set(e, errno, "scan %s: %s", root, strerror(errno));
	if (S_ISREG(st.st_mode))
		return scan_file(s, real, &st, counts, e);
	scan_dir(s, real, 0, counts, e);
	return 0;
}
