/* Snapshots of JIT symbol files (perf maps, jitdumps), deduplicated by
 * SHA-256 so a runtime whose map did not change is sent once. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/sha256.h"
#include "agent-hooks/agent_hooks.h"

void jit_store_init(struct jit_store *js, size_t max_file_bytes)
{
	memset(js, 0, sizeof(*js));
	vec_init(&js->snaps, sizeof(struct jit_snapshot));
	js->max_bytes = max_file_bytes;
}

void jit_store_free(struct jit_store *js)
{
	for (size_t i = 0; i < js->snaps.len; i++)
		free(VEC_AT(&js->snaps, struct jit_snapshot, i).content);
	vec_free(&js->snaps);
}

/* The pid as the process itself sees it (last NSpid field), which is the
 * number in its perf map's name inside a container. */
pid_t jit_ns_pid(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	uint8_t *text = NULL;
	size_t size = 0;
	struct err e = { { 0 } };
	if (read_file(path, 1 << 20, &text, &size, &e) < 0)
		return pid;
	pid_t inner = proc_status_nspid((const char *)text, size);
	free(text);
	return inner > 0 ? inner : pid;
}

/* A jitdump is found the way perf finds it: the runtime maps it. */
static bool find_jitdump(pid_t pid, char *out, size_t size)
{
	char path[64], line[4096 + 256];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		struct proc_map m;
		if (proc_maps_line(line, strlen(line), &m) < 0 || m.path_len == 0 || m.path[0] != '/')
			continue;
		line[m.path - line + m.path_len] = 0;
		const char *name = m.path;
		const char *base = strrchr(name, '/') + 1;
		if (!strncmp(base, "jit-", 4) && strstr(base, ".dump")) {
			snprintf(out, size, "/proc/%d/root%s", (int)pid, name);
			found = true;
		}
	}
	fclose(f);
	return found;
}

struct jit_snapshot *jit_snapshot_take(struct jit_store *js, pid_t pid, struct err *e)
{
	char path[4200];
	uint8_t kind = JIT_PERF_MAP;
	snprintf(path, sizeof(path), "/proc/%d/root/tmp/perf-%d.map", (int)pid, (int)jit_ns_pid(pid));
	if (access(path, R_OK) != 0) {
		if (!find_jitdump(pid, path, sizeof(path))) {
			err_set(e, ENOENT, "pid %d has no perf map or jitdump", (int)pid);
			return NULL;
		}
		kind = JIT_DUMP;
	}
	uint8_t *data = NULL;
	size_t size = 0;
	if (read_file(path, js->max_bytes, &data, &size, e) < 0)
		return NULL;
	if (kind == JIT_PERF_MAP) {
		/* The runtime may be writing: keep whole lines only. */
		while (size && data[size - 1] != '\n')
			size--;
	}
	_Static_assert(JIT_HASH_HEX >= SHA256_HEX_LEN + 1, "room for the digest");
	char hash[JIT_HASH_HEX] = "";
	if (sha256_hex_of(data, size, hash) < 0) {
		free(data);
		err_set(e, EIO, "pid %d: cannot hash its JIT snapshot", (int)pid);
		return NULL;
	}
	for (size_t i = 0; i < js->snaps.len; i++) {
		struct jit_snapshot *s = &VEC_AT(&js->snaps, struct jit_snapshot, i);
		if (!strcmp(s->hash, hash)) {
			free(data);
			return s;
		}
	}
	struct jit_snapshot *s = vec_push(&js->snaps);
	if (!s) {
		free(data);
		err_set(e, ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(s->hash, hash, sizeof(hash));
	s->kind = kind;
	s->content = data;
	s->size = size;
	js->bytes += size;
	return s;
}
