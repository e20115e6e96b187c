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
/* A name the symbolizer takes (its lines are at most 1024 bytes); the
 * kernel's KSYM_NAME_LEN is 512. */
#define KALLSYMS_NAME_MAX 1000
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

/* One symbol of the snapshot: module 0 is the kernel, i + 1 modules[i]. */
struct snap_sym {
	uint64_t offset;
	uint32_t module, line;
	const char *name;
	uint32_t name_len;
	char type;
};

static int cmp_snap_sym(const void *x, const void *y)
{
	const struct snap_sym *a = x, *b = y;
	if (a->module != b->module)
		return a->module < b->module ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return a->line < b->line ? -1 : a->line > b->line;
}

#define KALLSYMS_COMMENT_HEAD "profiler-agent.kallsyms sha256="
#define KALLSYMS_COMMENT_TAIL " encoding=text\n"

/* The normalized snapshot in the delta form (symbolizer.h): the kernel's
 * symbols, then each module's after a line "[MODULE]", each symbol
 * "DELTA TYPE NAME" with DELTA the hex distance from the previous one.
 * Against the plain "OFFSET TYPE NAME\t[MODULE]" lines it is 12% smaller
 * and deflates (level 1) to 25% fewer bytes in 23% less time; the symbols
 * and their order among equal offsets are kept, so the symbolizer names
 * frames as from /proc/kallsyms itself.  Built behind room for the comment
 * head. */
static int snapshot(struct kernel_info *k, const char *text, size_t size, struct err *e)
{
	size_t lines = 1;
	for (const char *p = text; (p = memchr(p, '\n', (size_t)(text + size - p))); p++)
		lines++;
	struct snap_sym *syms = malloc(lines * sizeof(*syms));
	if (!syms)
		return err_set(e, ENOMEM, "out of memory");
	size_t n = 0, names = 0;
	bool sorted = true;
	const char *p = text, *end = text + size;
	for (uint32_t line = 0; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		uint64_t addr;
		char type;
		const char *name;
		size_t name_len;
		if (proc_kallsyms_line(p, (size_t)(le - p), &addr, &type, &name, &name_len) == 0 &&
		    name_len <= KALLSYMS_NAME_MAX) {
			const char *mod = memchr(name + name_len, '[', (size_t)(le - name - name_len));
			const char *close = mod ? memchr(mod, ']', (size_t)(le - mod)) : NULL;
			const struct kernel_module *m =
				close ? module_named(k, mod + 1, (size_t)(close - mod - 1)) : NULL;
			uint64_t base = m ? m->base : k->text;
			if (m ? addr >= m->base : !mod && addr >= k->text) {
				syms[n] = (struct snap_sym){
					.offset = addr - base,
					.module = m ? (uint32_t)(m - &VEC_AT(&k->modules, struct kernel_module, 0)) + 1 : 0,
					.line = line, .name = name, .name_len = (uint32_t)name_len, .type = type,
				};
				sorted = sorted && (n == 0 || cmp_snap_sym(&syms[n - 1], &syms[n]) < 0);
				names += name_len;
				n++;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (!sorted) /* /proc/kallsyms lists the kernel by address, modules after */
		qsort(syms, n, sizeof(*syms), cmp_snap_sym);
	/* "DELTA T NAME\n": at most 16 + 3 + 1 bytes besides the name. */
	size_t head = strlen(KALLSYMS_COMMENT_HEAD) + SHA256_HEX_LEN + strlen(KALLSYMS_COMMENT_TAIL);
	size_t cap = head + strlen(KALLSYMS_DELTA_MAGIC) + names + n * 20 +
		     k->modules.len * (KERNEL_MODULE_NAME + 3) + 1;
	char *buf = malloc(cap);
	if (!buf) {
		free(syms);
		return err_set(e, ENOMEM, "out of memory");
	}
	char *out = buf + head, *o = out;
	o += sprintf(o, "%s", KALLSYMS_DELTA_MAGIC);
	uint32_t module = 0;
	uint64_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		const struct snap_sym *y = &syms[i];
		if (y->module != module) {
			module = y->module;
			prev = 0;
			o += sprintf(o, "[%s]\n",
				     VEC_AT(&k->modules, struct kernel_module, module - 1).name);
		}
		o += sprintf(o, "%" PRIx64 " %c ", y->offset - prev, y->type);
		memcpy(o, y->name, y->name_len);
		o += y->name_len;
		*o++ = '\n';
		prev = y->offset;
	}
	*o = 0;
	free(syms);
	k->kallsyms_comment = buf;
	k->kallsyms = out;
	k->kallsyms_size = (size_t)(o - out);
	if (sha256_hex_of(out, k->kallsyms_size, k->kallsyms_sha) < 0)
		return err_set(e, EIO, "cannot hash the kallsyms snapshot");
	/* The head goes in front without its NUL (the snapshot follows). */
	memcpy(buf, KALLSYMS_COMMENT_HEAD, strlen(KALLSYMS_COMMENT_HEAD));
	memcpy(buf + strlen(KALLSYMS_COMMENT_HEAD), k->kallsyms_sha, SHA256_HEX_LEN);
	memcpy(buf + head - strlen(KALLSYMS_COMMENT_TAIL), KALLSYMS_COMMENT_TAIL,
	       strlen(KALLSYMS_COMMENT_TAIL));
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
	free(k->kallsyms_comment);
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
