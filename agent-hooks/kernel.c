/* The running kernel as the profile describes it (docs/profiler-agent.md,
 * "Kernel frames"): its build-ID and _text, its modules (name, base, size,
 * build-ID), and a kallsyms snapshot with every address normalized the way
 * frames are, so it is the same on every boot of the same kernel and
 * modules and is sent once per agent run, content-addressed like a perf map.
 *
 * Invariant: a kernel frame's offset is from _text, a module frame's from
 * that module's base (the address /proc/modules shows), in the frames and
 * in the snapshot alike; nothing else is normalized against anything. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-hooks/agent_hooks.h"
#include "common/proc.h"
#include "common/sha256.h"

#define KALLSYMS_READ_MAX (128u << 20)
#define NT_GNU_BUILD_ID_TYPE 3

/* The GNU build-ID in a notes blob (/sys/kernel/notes, a module's
 * .note.gnu.build-id); "" when there is none. */
static void notes_build_id(const char *path, char id[BUILD_ID_HEX_MAX])
{
	uint8_t *notes = NULL;
	size_t size = 0, off = 0;
	struct err e = { { 0 } };
	id[0] = 0;
	if (read_file(path, 1 << 16, &notes, &size, &e) < 0)
		return;
	while (off + 12 <= size) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, notes + off, 4);
		memcpy(&descsz, notes + off + 4, 4);
		memcpy(&type, notes + off + 8, 4);
		if (namesz > size || descsz > size)
			break;
		size_t name_at = off + 12, desc_at = name_at + ((namesz + 3) & ~3u);
		if (desc_at + descsz > size)
			break;
		if (type == NT_GNU_BUILD_ID_TYPE && namesz == 4 && !memcmp(notes + name_at, "GNU", 4) &&
		    descsz > 0 && descsz <= BUILD_ID_MAX) {
			build_id_to_hex(notes + desc_at, descsz, id);
			break;
		}
		off = desc_at + ((descsz + 3) & ~3u);
	}
	free(notes);
}

/* A /proc file whole (its size reads as 0, so read_file cannot). */
static int read_proc(const char *path, size_t max, char **out, size_t *size, struct err *e)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (len == cap) {
			char *n = cap >= max ? NULL : realloc(buf, cap * 2);
			if (!n) {
				free(buf);
				fclose(f);
				return cap >= max ? err_set(e, EFBIG, "%s: over %zu bytes", path, max)
						  : err_set(e, ENOMEM, "out of memory");
			}
			buf = n;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	bool failed = !buf || ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return err_set(e, EIO, "%s: cannot read", path);
	}
	*out = buf;
	*size = len;
	return 0;
}

/* /proc/modules: "name size refcount deps state 0xADDRESS [taint]". */
static void read_modules(struct kernel_info *k, const char *root)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/proc/modules", root);
	FILE *f = fopen(path, "re");
	char line[1024];
	while (f && fgets(line, sizeof(line), f)) {
		char name[KERNEL_MODULE_NAME];
		unsigned long long size, base;
		if (sscanf(line, "%63s %llu %*s %*s %*s %llx", name, &size, &base) != 3 || !base)
			continue; /* addresses hidden (kptr_restrict) or odd line */
		struct kernel_module *m = vec_push(&k->modules);
		if (!m)
			break;
		snprintf(m->name, sizeof(m->name), "%s", name);
		m->base = base;
		m->size = size;
		snprintf(path, sizeof(path), "%s/sys/module/%s/notes/.note.gnu.build-id", root, name);
		notes_build_id(path, m->build_id);
	}
	if (f)
		fclose(f);
}

static const struct kernel_module *module_named(const struct kernel_info *k, const char *name,
						size_t len)
{
	for (size_t i = 0; i < k->modules.len; i++) {
		const struct kernel_module *m = &VEC_AT(&k->modules, struct kernel_module, i);
		if (strlen(m->name) == len && !memcmp(m->name, name, len))
			return m;
	}
	return NULL;
}

/* The normalized snapshot: "OFFSET TYPE NAME[\t[MODULE]]" per line. */
static int snapshot(struct kernel_info *k, const char *text, size_t size, struct err *e)
{
	size_t cap = size + 1, len = 0;
	char *out = malloc(cap);
	if (!out)
		return err_set(e, ENOMEM, "out of memory");
	const char *p = text, *end = text + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		uint64_t addr, base = k->text;
		char type;
		const char *name;
		size_t name_len;
		if (proc_kallsyms_line(p, (size_t)(le - p), &addr, &type, &name, &name_len) == 0) {
			const char *mod = memchr(name + name_len, '[', (size_t)(le - name - name_len));
			const char *close = mod ? memchr(mod, ']', (size_t)(le - mod)) : NULL;
			const struct kernel_module *m =
				close ? module_named(k, mod + 1, (size_t)(close - mod - 1)) : NULL;
			bool keep = m ? addr >= m->base : !mod && addr >= k->text;
			if (m)
				base = m->base;
			/* 16 hex digits, type, a name, a module: the line grows by
			 * at most the normalized address's width. */
			if (keep && len + 40 + name_len + (m ? strlen(m->name) : 0) > cap) {
				cap = cap * 2 + 4096;
				char *n = realloc(out, cap);
				if (!n) {
					free(out);
					return err_set(e, ENOMEM, "out of memory");
				}
				out = n;
			}
			if (keep && m)
				len += (size_t)sprintf(out + len, "%" PRIx64 " %c %.*s\t[%s]\n",
						       addr - base, type, (int)name_len, name, m->name);
			else if (keep)
				len += (size_t)sprintf(out + len, "%" PRIx64 " %c %.*s\n", addr - base,
						       type, (int)name_len, name);
		}
		p = nl ? nl + 1 : end;
	}
	k->kallsyms = out;
	k->kallsyms_size = len;
	if (sha256_hex_of(out, len, k->kallsyms_sha) < 0)
		return err_set(e, EIO, "cannot hash the kallsyms snapshot");
	return 0;
}

int kernel_info_read(struct kernel_info *k, const char *root, struct err *e)
{
	char path[4096];
	memset(k, 0, sizeof(*k));
	vec_init(&k->modules, sizeof(struct kernel_module));
	if (!root)
		root = "";
	snprintf(path, sizeof(path), "%s/sys/kernel/notes", root);
	notes_build_id(path, k->build_id);
	char *text = NULL;
	size_t size = 0;
	snprintf(path, sizeof(path), "%s/proc/kallsyms", root);
	int rc = read_proc(path, KALLSYMS_READ_MAX, &text, &size, e);
	if (rc < 0)
		return rc;
	const char *p = text, *end = p + size;
	while (p < end && !k->text) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		uint64_t addr;
		char type;
		const char *name;
		size_t name_len;
		if (proc_kallsyms_line(p, (size_t)(le - p), &addr, &type, &name, &name_len) == 0 &&
		    name_len == 5 && !memcmp(name, "_text", 5))
			k->text = addr;
		p = nl ? nl + 1 : end;
	}
	if (!k->text) {
		free(text);
		return err_set(e, EPERM, "%s shows no _text address (kptr_restrict?)", path);
	}
	read_modules(k, root);
	rc = snapshot(k, text, size, e);
	free(text);
	return rc;
}

void kernel_info_free(struct kernel_info *k)
{
	free(k->kallsyms);
	vec_free(&k->modules);
	memset(k, 0, sizeof(*k));
}

int kernel_normalize(const struct kernel_info *k, uint64_t addr, uint64_t *offset)
{
	for (size_t i = 0; i < k->modules.len; i++) {
		const struct kernel_module *m = &VEC_AT(&k->modules, struct kernel_module, i);
		if (addr >= m->base && addr - m->base < m->size) {
			*offset = addr - m->base;
			return (int)i;
		}
	}
	*offset = addr - k->text;
	return -1;
}

void kernel_info_comment(const struct kernel_info *k, char *out, size_t size)
{
	snprintf(out, size, "profiler-agent.kernel build_id=%s text=0x%" PRIx64 " kallsyms=%s",
		 k->build_id, k->text, k->kallsyms_sha);
}
