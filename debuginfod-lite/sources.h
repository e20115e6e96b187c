/* Source files named by an object's DWARF line tables, and the rule for
 * reading one from the local disk.
 *
 * Trust (docs/security.md "Sources"): a name in DWARF is the word of whoever
 * built the object.  The server reads a local file for it only when the
 * DWARF comes from a --scan'ned file AND the file resolves, without a
 * symbolic link left to swap, to a regular file under a source root and
 * outside every forbidden path (the data directory, token files).  The
 * uploader applies the same rule to its build tree, so a hostile build
 * cannot make CI upload the CI machine's secrets either. */
#ifndef DEBUGINFOD_LITE_SOURCES_H
#define DEBUGINFOD_LITE_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "common/common.h"

/* Remove "." and ".." segments and repeated slashes (RFC 3986 §5.2.4) from
 * an absolute path.  Returns false when ".." would climb above the root or
 * the result does not fit. */
bool path_canonical(const char *in, char *out, size_t size);

/* Is `path` `dir` itself or below it?  Both canonical and absolute. */
bool path_under(const char *path, const char *dir);

/* Called with each source file a DWARF line table names, canonical and
 * absolute (a relative name joined to the CU's DW_AT_comp_dir; names that
 * stay relative are skipped).  Return 0 to go on; anything else stops the
 * walk and is returned by dwarf_sources_each. */
typedef int (*dwarf_source_fn)(void *ctx, const char *path);
int dwarf_sources_each(const char *debug_path, dwarf_source_fn fn, void *ctx, struct err *e);

/* Does the DWARF of `debug_path` name source file `want` (canonical,
 * absolute)?  Returns 1 yes, 0 no, -errno when the file cannot be read. */
int dwarf_names_source(const char *debug_path, const char *want, struct err *e);

/* dwarf_names_source with memory: the sorted names of the last few DWARF
 * files asked about (an uploader sends the sources of one build-ID in a
 * row; each question would otherwise read all of its DWARF again).  Files
 * are known by path, inode, size and mtime.  Thread-safe. */
struct dwarf_names_cache;
struct dwarf_names_cache *dwarf_names_cache_new(void);
void dwarf_names_cache_free(struct dwarf_names_cache *c);
int dwarf_names_source_cached(struct dwarf_names_cache *c, const char *debug_path,
			      const char *want, struct err *e);

/* Where local sources may be read from.  Paths are stored resolved
 * (realpath), so a symbolic link never widens a root or hides a forbidden
 * file. */
#define SOURCE_POLICY_MAX 64
struct source_forbidden {
	char *path;
	bool have_id; /* an existing file: a hard link to it is refused too */
	dev_t dev;
	ino_t ino;
};
struct source_policy {
	char *roots[SOURCE_POLICY_MAX];
	int n_roots;
	struct source_forbidden forbidden[SOURCE_POLICY_MAX];
	int n_forbidden;
};

/* Allow files below directory `dir` (which must exist). */
int source_policy_add_root(struct source_policy *p, const char *dir, struct err *e);
/* Never serve `path` (a file, or a directory and all below it), even under
 * a root.  It need not exist yet. */
int source_policy_forbid(struct source_policy *p, const char *path, struct err *e);
void source_policy_free(struct source_policy *p);
/* Is the resolved `real` path (with its stat, or NULL) forbidden? */
bool source_policy_forbidden(const struct source_policy *p, const char *real,
			     const struct stat *st);

/* Open the local file `path` for reading under the policy: resolved with
 * realpath, under a root, not forbidden, opened without following any
 * symbolic link (so one swapped in after the check is refused), a regular
 * file.  On success *fd is open and *st filled.  -ENOENT: no such file;
 * -EACCES: outside the roots, forbidden, or not a regular file. */
int source_open_local(const struct source_policy *p, const char *path, int *fd, struct stat *st,
		      struct err *e);

#endif
