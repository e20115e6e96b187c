/* The agent's kernel side (agent-hooks/kernel.c) on a made-up /proc and /sys:
 * build-IDs of the kernel and of a module, _text, the module's base, the
 * normalized kallsyms snapshot, and kernel and module frames of a sample as
 * the profile carries them; then the symbolizer names those frames from the
 * snapshot the profile names (the path the server and `symbolize pprof`
 * take).  This machine's kernel may have no modules: this is where module
 * frames are checked end to end.  Then this machine's /proc/kallsyms: the
 * snapshot in the delta form names frames as the text form and
 * /proc/kallsyms itself do. */
#include "agent-hooks/agent_hooks.h"
#include "symbolizer/symbolizer.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *root, const char *rel, const void *data, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		mkdir(path, 0755);
		*p = '/';
	}
	FILE *f = fopen(path, "we");
	if (f) {
		fwrite(data, 1, size, f);
		fclose(f);
	}
}

/* An ELF note: GNU build-ID of 20 bytes of `fill`. */
static void put_note(const char *root, const char *rel, uint8_t fill)
{
	uint8_t note[12 + 4 + 20];
	uint32_t hdr[3] = { 4, 20, 3 };
	memcpy(note, hdr, 12);
	memcpy(note + 12, "GNU", 4);
	memset(note + 16, fill, 20);
	put(root, rel, note, sizeof(note));
}

static const struct symz_kallsyms *snapshot;

static int resolve_kallsyms(void *ctx, const char *sha, const struct symz_kallsyms **k,
			    struct err *e)
{
	const struct kernel_info *ki = ctx;
	if (strcmp(sha, ki->kallsyms_sha))
		return err_set(e, ENOENT, "not this snapshot");
	*k = snapshot;
	return 0;
}

/* Append to a growing buffer (the test's own text-form snapshot). */
static int buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap * 2 : 1 << 20;
		while (c < *len + n + 1)
			c *= 2;
		char *b = realloc(*buf, c);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = 0;
	return 0;
}

struct live_sym {
	unsigned long long addr;
	char type, name[520], mod[64];
	bool kept; /* in the snapshot: a kernel symbol, or of a module /proc/modules has */
};

/* This machine's kernel: the snapshot the agent builds (the delta form)
 * names every symbol's address, and the byte after it, as the text form
 * the agent sent before names it (the test writes that form itself from
 * /proc/kallsyms and /proc/modules), and each text or data symbol alone
 * at its address by its own /proc/kallsyms name. */
static void live_test(void)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	struct kernel_info k;
	struct err e = {{0}};
	if (!f || geteuid() != 0) {
		SKIP("kallsyms_delta_names_as_proc_kallsyms", "needs root and /proc/kallsyms");
		if (f)
			fclose(f);
		return;
	}
	size_t n = 0, cap = 1 << 18;
	struct live_sym *syms = malloc(cap * sizeof(*syms));
	char line[1200];
	unsigned long long text = 0;
	while (syms && fgets(line, sizeof(line), f)) {
		struct live_sym *y = &syms[n];
		y->mod[0] = 0;
		y->kept = false;
		if (sscanf(line, "%llx %c %519s [%63[^]]]", &y->addr, &y->type, y->name, y->mod) < 3)
			continue;
		if (!y->mod[0] && !strcmp(y->name, "_text"))
			text = y->addr;
		if (++n == cap) {
			struct live_sym *m = realloc(syms, (cap *= 2) * sizeof(*syms));
			if (!m)
				break;
			syms = m;
		}
	}
	fclose(f);
	if (!text) {
		SKIP("kallsyms_delta_names_as_proc_kallsyms", "kallsyms addresses are hidden");
		free(syms);
		return;
	}
	/* Module bases as /proc/modules shows them. */
	char mods[512][64];
	unsigned long long bases[512];
	size_t nmods = 0;
	FILE *m = fopen("/proc/modules", "re");
	while (m && nmods < 512 && fgets(line, sizeof(line), m))
		if (sscanf(line, "%63s %*s %*s %*s %*s %llx", mods[nmods], &bases[nmods]) == 2)
			nmods++;
	if (m)
		fclose(m);
	int rc = kernel_info_read(&k, NULL, &e);
	char *old = NULL;
	size_t old_len = 0, old_cap = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct live_sym *y = &syms[i];
		unsigned long long base = text;
		size_t j = 0;
		if (y->mod[0]) {
			while (j < nmods && strcmp(mods[j], y->mod))
				j++;
			if (j == nmods)
				continue;
			base = bases[j];
		}
		if (y->addr < base)
			continue;
		char l[700];
		int len = y->mod[0] ? snprintf(l, sizeof(l), "%llx %c %s\t[%s]\n", y->addr - base,
					      y->type, y->name, y->mod)
				    : snprintf(l, sizeof(l), "%llx %c %s\n", y->addr - base, y->type,
					       y->name);
		rc = buf_add(&old, &old_len, &old_cap, l, (size_t)len);
		y->addr -= base; /* from here on, the offset */
		y->kept = true;
	}
	struct symz_kallsyms *kd = NULL, *kt = NULL;
	if (rc == 0)
		rc = symz_kallsyms_parse(k.kallsyms, k.kallsyms_size, &kd, &e);
	if (rc == 0)
		rc = symz_kallsyms_parse(old, old_len, &kt, &e);
	size_t compared = 0, differ = 0, alone = 0, misnamed = 0;
	const char *first_diff = "";
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct live_sym *y = &syms[i];
		const char *mod = y->mod[0] ? y->mod : NULL;
		if (!y->kept)
			continue;
		for (uint64_t d = 0; d < 2; d++)
			for (int kind = 0; kind < 3; kind++) {
				const char *a = symz_kallsyms_lookup(kd, mod, y->addr + d, kind);
				const char *b = symz_kallsyms_lookup(kt, mod, y->addr + d, kind);
				compared++;
				if (!a != !b || (a && strcmp(a, b))) {
					if (!differ++)
						first_diff = y->name;
				}
			}
		/* Alone at its address among /proc/kallsyms' text and data
		 * symbols (a neighbour in the list shares it otherwise). */
		bool shared = (i > 0 && syms[i - 1].addr == y->addr && !strcmp(syms[i - 1].mod, y->mod)) ||
			      (i + 1 < n && syms[i + 1].addr == y->addr && !strcmp(syms[i + 1].mod, y->mod));
		if (!strchr("TtWwDdBb", y->type) || shared)
			continue;
		alone++;
		const char *a = symz_kallsyms_lookup(kd, mod, y->addr, SYMZ_LEAF_PC);
		if (!a || strcmp(a, y->name)) {
			if (!misnamed++)
				fprintf(stderr, "# %s at 0x%llx named %s\n", y->name, y->addr, a ? a : "(none)");
		}
	}
	printf("# %zu /proc/kallsyms lines, %zu lookups compared, %zu symbols alone at their address\n",
	       n, compared, alone);
	CHECK(rc == 0 && compared > 1000 && differ == 0 && alone > 1000 && misnamed == 0 &&
	      k.kallsyms_size < old_len,
	      "kallsyms_delta_names_as_proc_kallsyms",
	      "rc %d (%s): %zu of %zu lookups differ from the text form's (first at %s), %zu of %zu "
	      "symbols misnamed; delta %zu bytes, text %zu",
	      rc, e.msg, differ, compared, first_diff, misnamed, alone, k.kallsyms_size, old_len);
	symz_kallsyms_free(kd);
	symz_kallsyms_free(kt);
	free(old);
	free(syms);
	kernel_info_free(&k);
}

int main(void)
{
	char root[] = "/tmp/test_kernel_info.XXXXXX";
	if (!mkdtemp(root)) {
		CHECK(0, "kernel_info_read", "mkdtemp failed");
		CHECK_EXIT();
	}
	static const char kallsyms[] =
		"0000000000000000 A fixed_percpu_data\n"
		"ffffffff81000000 T _text\n"
		"ffffffff81000000 T startup_64\n"
		"ffffffff81000100 t helper\n"
		"ffffffff81000200 T do_sys\n"
		"ffffffffc0000000 t mod_start\t[mymod]\n"
		"ffffffffc0000040 T mod_fn\t[mymod]\n"
		"ffffffffc1000000 t gone_fn\t[unloaded]\n";
	static const char modules[] = "mymod 4096 0 - Live 0xffffffffc0000000\n";
	put(root, "proc/kallsyms", kallsyms, strlen(kallsyms));
	put(root, "proc/modules", modules, strlen(modules));
	put_note(root, "sys/kernel/notes", 0xab);
	put_note(root, "sys/module/mymod/notes/.note.gnu.build-id", 0xcd);

	struct kernel_info k;
	struct err e = {{0}};
	int rc = kernel_info_read(&k, root, &e);
	const struct kernel_module *m = k.modules.len ? &VEC_AT(&k.modules, struct kernel_module, 0) : NULL;
	CHECK(rc == 0 && k.text == 0xffffffff81000000ull && !strcmp(k.build_id, "abababababababababababababababababababab") &&
	      m && !strcmp(m->name, "mymod") && m->base == 0xffffffffc0000000ull && m->size == 4096 &&
	      !strcmp(m->build_id, "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"),
	      "kernel_info_read", "rc %d (%s) text 0x%llx id %s modules %zu", rc, e.msg,
	      (unsigned long long)k.text, k.build_id, k.modules.len);
	if (rc) {
		CHECK_EXIT();
	}
	/* The delta form: offsets from _text or the module's base, each from
	 * the previous symbol; fixed_percpu_data (below _text) and gone_fn
	 * (a module /proc/modules does not have) are left out. */
	static const char want_snap[] = "kallsyms-delta 1\n0 T _text\n0 T startup_64\n100 t helper\n"
					"100 T do_sys\n[mymod]\n0 t mod_start\n40 T mod_fn\n";
	CHECK(k.kallsyms_size == strlen(want_snap) && !memcmp(k.kallsyms, want_snap, k.kallsyms_size),
	      "kernel_snapshot_normalized", "'%.*s'", (int)k.kallsyms_size, k.kallsyms);

	/* One sample: a leaf in mod_fn, return addresses into do_sys and helper. */
	struct agent_profile ap;
	agent_profile_begin(&ap, 99, &e);
	ap.kernel = &k;
	static struct sample_record rec;
	rec.kernel_frames = 3;
	rec.kstack[0] = 0xffffffffc0000045ull;
	rec.kstack[1] = 0xffffffff81000205ull;
	rec.kstack[2] = 0xffffffff81000101ull;
	rc = agent_profile_add(&ap, NULL, &rec, NULL, 0, &e);
	char note[256];
	kernel_info_comment(&k, note, sizeof(note));
	const char *comments[] = { note };
	uint8_t *data = NULL;
	size_t size = 0;
	if (rc == 0)
		rc = agent_profile_finish(&ap, comments, 1, 6, &data, &size, &e);
	agent_profile_free(&ap);
	struct pprof_profile *p = NULL;
	if (rc == 0)
		rc = pprof_parse(data, size, &p, &e);
	free(data);
	CHECK(rc == 0 && p->locations.len == 3, "kernel_frames_in_profile", "rc %d: %s", rc, e.msg);
	if (rc)
		CHECK_EXIT();
	char got[512] = "";
	size_t len = 0;
	for (size_t i = 0; i < p->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, i);
		const struct pprof_mapping *mp = pprof_mapping_by_id(p, l->mapping_id);
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s %.4s 0x%llx", i ? "; " : "",
					pprof_str(p, mp->filename), pprof_str(p, mp->build_id),
					(unsigned long long)l->address);
	}
	CHECK(!strcmp(got, "[kmod:mymod] cdcd 0x45; [kernel.kallsyms] abab 0x205; "
			   "[kernel.kallsyms] abab 0x101"),
	      "kernel_frames_normalized", "%s", got);

	struct symz_kallsyms *ks = NULL;
	rc = symz_kallsyms_parse(k.kallsyms, k.kallsyms_size, &ks, &e);
	snapshot = ks;
	struct symz_pprof_options o = { .resolve_kallsyms = resolve_kallsyms, .ctx = &k };
	struct symz_pprof_report rep;
	if (rc == 0)
		rc = symz_pprof_symbolize(p, &o, &rep, &e);
	len = 0;
	got[0] = 0;
	for (size_t i = 0; rc == 0 && i < p->locations.len; i++) {
		const struct pprof_location *l = &VEC_AT(&p->locations, struct pprof_location, i);
		const char *name = "?";
		if (l->line_count) {
			const struct pprof_line *ln = &VEC_AT(&p->lines, struct pprof_line, l->line_off);
			name = pprof_str(p, pprof_function_by_id(p, ln->function_id)->name);
		}
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "", name);
	}
	CHECK(rc == 0 && !strcmp(got, "mod_fn do_sys helper"), "kernel_and_module_frames_named",
	      "rc %d (%s): %s", rc, e.msg, got);
	if (rc == 0)
		symz_pprof_report_free(&rep);
	symz_kallsyms_free(ks);
	pprof_free(p);
	kernel_info_free(&k);
	live_test();
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	CHECK_EXIT();
}
