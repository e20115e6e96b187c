/* Kernel symbol snapshots (symbolizer.h, "kernel frames").
 *
 * A snapshot is /proc/kallsyms with every address normalized: kernel
 * symbols relative to _text, module symbols relative to their module's
 * base, so the same kernel and modules give the same bytes on every boot
 * and host.  Names are chosen as perf chooses them from kallsyms: symbols
 * of types T, W, D and B only; a symbol ends where the next one of the
 * same module starts; of several symbols at one address the last line
 * wins.  (perf sets each symbol's end to the next one's start before it
 * drops duplicates, so all but the last alias have length 0, and its
 * choose_best_symbol prefers a symbol with a length.  Checked against perf
 * script: memcpy/__pi_memcpy, __ia32_sys_getppid/__x64_sys_getppid.) */
#include "symbolizer/symbolizer.h"
#include "common/proc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A real kallsyms has ~150k lines of ~45 bytes; these bound a hostile one. */
#define KALLSYMS_MAX_BYTES (256u << 20)
#define KALLSYMS_MAX_LINE 1024   /* the kernel's KSYM_NAME_LEN is 512 */
#define KALLSYMS_MAX_MODULE 64   /* MODULE_NAME_LEN - 1 is 55 */

struct ksym {
	uint64_t offset;
	uint32_t module; /* index in modules; 0 = the kernel itself */
	uint32_t name;   /* offset in names */
	uint32_t line;   /* for the tie break */
	char type;
};

struct kmodule {
	uint32_t name; /* offset in names ("" for the kernel) */
	size_t first, count; /* range of syms */
};

struct symz_kallsyms {
	struct ksym *syms;
	size_t n, cap;
	struct kmodule *mods;
	size_t nmods, mods_cap;
	char *names;
	size_t names_len, names_cap;
};

static int add_name(struct symz_kallsyms *k, const char *s, size_t len, uint32_t *off)
{
	if (k->names_len + len + 1 > k->names_cap) {
		size_t cap = k->names_cap ? k->names_cap * 2 : 65536;
		while (cap < k->names_len + len + 1)
			cap *= 2;
		char *n = realloc(k->names, cap);
		if (!n)
			return -ENOMEM;
		k->names = n;
		k->names_cap = cap;
	}
	*off = (uint32_t)k->names_len;
	memcpy(k->names + k->names_len, s, len);
	k->names[k->names_len + len] = 0;
	k->names_len += len + 1;
	return 0;
}

static int module_index(struct symz_kallsyms *k, const char *name, size_t len, uint32_t *out)
{
	for (size_t i = 0; i < k->nmods; i++) {
		const char *m = k->names + k->mods[i].name;
		if (strlen(m) == len && !memcmp(m, name, len)) {
			*out = (uint32_t)i;
			return 0;
		}
	}
	if (k->nmods == k->mods_cap) {
		size_t cap = k->mods_cap ? k->mods_cap * 2 : 16;
		struct kmodule *n = realloc(k->mods, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		k->mods = n;
		k->mods_cap = cap;
	}
	struct kmodule *m = &k->mods[k->nmods];
	memset(m, 0, sizeof(*m));
	int rc = add_name(k, name, len, &m->name);
	if (rc < 0)
		return rc;
	*out = (uint32_t)k->nmods++;
	return 0;
}

static bool perf_type(char t)
{
	t = (char)toupper((unsigned char)t);
	return t == 'T' || t == 'W' || t == 'D' || t == 'B';
}

static int cmp_ksym(const void *x, const void *y)
{
	const struct ksym *a = x, *b = y;
	if (a->module != b->module)
		return a->module < b->module ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return a->line < b->line ? -1 : a->line > b->line;
}

/* Sort, keep the best symbol per address, and note each module's range. */
static void finish(struct symz_kallsyms *k)
{
	qsort(k->syms, k->n, sizeof(*k->syms), cmp_ksym);
	size_t w = 0;
	for (size_t i = 0; i < k->n; i++) {
		struct ksym *s = &k->syms[i];
		if (w > 0 && k->syms[w - 1].module == s->module && k->syms[w - 1].offset == s->offset) {
			k->syms[w - 1] = *s; /* the later line wins, as in perf */
			continue;
		}
		k->syms[w++] = *s;
	}
	k->n = w;
	for (size_t i = 0; i < k->n; i++) {
		struct kmodule *m = &k->mods[k->syms[i].module];
		if (m->count == 0)
			m->first = i;
		m->count++;
	}
}

void symz_kallsyms_free(struct symz_kallsyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->mods);
	free(k->names);
	free(k);
}

/* A symbol of module mod (mod_len 0: the kernel) at offset, kept when perf
 * would keep its type. */
static int add_sym(struct symz_kallsyms *k, const char *mod, size_t mod_len, uint64_t offset,
		   char type, const char *name, size_t name_len, uint32_t lineno, struct err *e)
{
	if (!perf_type(type))
		return 0;
	uint32_t mi;
	int rc = module_index(k, mod, mod_len, &mi);
	if (rc < 0)
		return err_set(e, -rc, "out of memory");
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 4096;
		struct ksym *n = realloc(k->syms, cap * sizeof(*n));
		if (!n)
			return err_set(e, ENOMEM, "out of memory");
		k->syms = n;
		k->cap = cap;
	}
	struct ksym *s = &k->syms[k->n];
	*s = (struct ksym){ .offset = offset, .module = mi, .line = lineno, .type = type };
	if ((rc = add_name(k, name, name_len, &s->name)) < 0)
		return err_set(e, -rc, "out of memory");
	k->n++;
	return 0;
}

static int check_line(const char *line, size_t len, uint32_t lineno, struct err *e)
{
	if (len > KALLSYMS_MAX_LINE)
		return err_set(e, EINVAL, "kallsyms line %u: longer than %u bytes", lineno,
			       KALLSYMS_MAX_LINE);
	if (memchr(line, 0, len))
		return err_set(e, EINVAL, "kallsyms line %u: NUL byte", lineno);
	return 0;
}

/* One line of the text form: "OFFSET TYPE NAME" or
 * "OFFSET TYPE NAME\t[MODULE]". */
static int parse_line(struct symz_kallsyms *k, const char *line, size_t len, uint32_t lineno,
		      struct err *e)
{
	uint64_t offset;
	char type;
	const char *name;
	size_t name_len;
	int rc = check_line(line, len, lineno, e);
	if (rc < 0)
		return rc;
	if (proc_kallsyms_line(line, len, &offset, &type, &name, &name_len) < 0)
		return err_set(e, EINVAL, "kallsyms line %u: expected 'ADDRESS TYPE NAME [MODULE]'",
			       lineno);
	const char *rest = name + name_len, *end = line + len;
	while (rest < end && (*rest == ' ' || *rest == '\t'))
		rest++;
	const char *mod = "";
	size_t mod_len = 0;
	if (rest < end) {
		const char *close = memchr(rest, ']', (size_t)(end - rest));
		if (*rest != '[' || !close || close == rest + 1)
			return err_set(e, EINVAL, "kallsyms line %u: expected '[MODULE]' after the name",
				       lineno);
		mod = rest + 1;
		mod_len = (size_t)(close - mod);
		for (const char *p = close + 1; p < end; p++)
			if (*p != ' ' && *p != '\t' && *p != '\r')
				return err_set(e, EINVAL, "kallsyms line %u: text after the module",
					       lineno);
		if (mod_len > KALLSYMS_MAX_MODULE)
			return err_set(e, EINVAL, "kallsyms line %u: module name over %u bytes",
				       lineno, KALLSYMS_MAX_MODULE);
	}
	return add_sym(k, mod, mod_len, offset, type, name, name_len, lineno, e);
}

/* The delta form's state: the section's module and the last offset. */
struct delta_state {
	const char *mod;
	size_t mod_len;
	uint64_t offset;
};

/* One line of the delta form: "[MODULE]" starts that module's section,
 * "DELTA TYPE NAME" is a symbol DELTA after the section's previous one
 * (the first: after 0). */
static int parse_delta_line(struct symz_kallsyms *k, struct delta_state *st, const char *line,
			    size_t len, uint32_t lineno, struct err *e)
{
	int rc = check_line(line, len, lineno, e);
	if (rc < 0)
		return rc;
	if (line[0] == '[') {
		const char *close = memchr(line, ']', len);
		if (!close || close == line + 1 || close != line + len - 1)
			return err_set(e, EINVAL, "kallsyms line %u: expected '[MODULE]'", lineno);
		if ((size_t)(close - line - 1) > KALLSYMS_MAX_MODULE)
			return err_set(e, EINVAL, "kallsyms line %u: module name over %u bytes",
				       lineno, KALLSYMS_MAX_MODULE);
		st->mod = line + 1;
		st->mod_len = (size_t)(close - line - 1);
		st->offset = 0;
		return 0;
	}
	uint64_t delta;
	char type;
	const char *name;
	size_t name_len;
	if (proc_kallsyms_line(line, len, &delta, &type, &name, &name_len) < 0 ||
	    name + name_len != line + len)
		return err_set(e, EINVAL, "kallsyms line %u: expected 'DELTA TYPE NAME'", lineno);
	if (delta > UINT64_MAX - st->offset)
		return err_set(e, EINVAL, "kallsyms line %u: offset past 2^64", lineno);
	st->offset += delta;
	return add_sym(k, st->mod, st->mod_len, st->offset, type, name, name_len, lineno, e);
}

int symz_kallsyms_parse(const char *text, size_t size, struct symz_kallsyms **out, struct err *e)
{
	*out = NULL;
	if (size > KALLSYMS_MAX_BYTES)
		return err_set(e, EFBIG, "kallsyms snapshot of %zu bytes, over the %u MiB limit", size,
			       KALLSYMS_MAX_BYTES >> 20);
	struct symz_kallsyms *k = calloc(1, sizeof(*k));
	if (!k)
		return err_set(e, ENOMEM, "out of memory");
	uint32_t mi;
	int rc = module_index(k, "", 0, &mi); /* module 0: the kernel */
	if (rc < 0) {
		symz_kallsyms_free(k);
		return err_set(e, ENOMEM, "out of memory");
	}
	const char *p = text, *end = text + size;
	uint32_t lineno = 0;
	size_t magic = sizeof(KALLSYMS_DELTA_MAGIC) - 1;
	bool delta = size >= magic && !memcmp(text, KALLSYMS_DELTA_MAGIC, magic);
	struct delta_state st = { "", 0, 0 };
	if (delta) {
		p += magic;
		lineno++;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		lineno++;
		if (le > p) {
			rc = delta ? parse_delta_line(k, &st, p, (size_t)(le - p), lineno, e)
				   : parse_line(k, p, (size_t)(le - p), lineno, e);
			if (rc < 0) {
				symz_kallsyms_free(k);
				return rc;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (k->n == 0) {
		symz_kallsyms_free(k);
		return err_set(e, ENODATA, "kallsyms snapshot has no text or data symbols");
	}
	finish(k);
	*out = k;
	return 0;
}

const char *symz_kallsyms_lookup(const struct symz_kallsyms *k, const char *module,
				 uint64_t offset, enum symz_frame_kind kind)
{
	uint64_t pc;
	if (!symz_lookup_pc(offset, kind, &pc))
		return NULL;
	const struct kmodule *m = NULL;
	for (size_t i = 0; i < k->nmods && !m; i++)
		if (!strcmp(k->names + k->mods[i].name, module ? module : ""))
			m = &k->mods[i];
	if (!m || m->count == 0)
		return NULL;
	const struct ksym *s = k->syms + m->first;
	size_t lo = 0, hi = m->count; /* find the last symbol with offset <= pc */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[mid].offset <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? k->names + s[lo - 1].name : NULL;
}

size_t symz_kallsyms_count(const struct symz_kallsyms *k)
{
	return k->n;
}
