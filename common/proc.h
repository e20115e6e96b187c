/* Parsers for the /proc text the agent and the loader read about other
 * processes.  That text is shaped by the sampled processes (a mapped file's
 * name is theirs to choose), so it is untrusted: the parsers take a buffer
 * and its length, hold no state and never read past it, so a fuzzer can
 * call them directly (tests/fuzz/fuzz_proc.c). */
#ifndef COMMON_PROC_H
#define COMMON_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One line of /proc/PID/maps:
 *   start-end perms offset dev inode [path]
 * path points into the line (path_len bytes, without the newline); a
 * mapping without a name has path_len 0. */
struct proc_map {
	uint64_t start, end, offset;
	char perms[5]; /* "r-xp" */
	const char *path;
	size_t path_len;
};
/* 0, or -EINVAL when the line is not of that shape or end <= start. */
int proc_maps_line(const char *line, size_t len, struct proc_map *m);

/* The pid as the process itself sees it: the last number of the "NSpid:"
 * line of /proc/PID/status text.  0 when there is none. */
pid_t proc_status_nspid(const char *text, size_t len);

/* One line of /proc/kallsyms: "address type name [module]".  name points
 * into the line.  0, or -EINVAL. */
int proc_kallsyms_line(const char *line, size_t len, uint64_t *addr, char *type,
		       const char **name, size_t *name_len);

/* The first line of a kallsyms snapshot in the delta form, which
 * profiler-agent writes and the symbolizer reads (symbolizer/symbolizer.h,
 * "kernel frames"). */
#define KALLSYMS_DELTA_MAGIC "kallsyms-delta 1\n"

#endif
