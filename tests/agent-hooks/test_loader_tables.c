/* The loader's table life cycle as the agent uses it, on the in-memory map
 * image (no BPF needed): tables from a source (the server) validated and
 * used, bad ones replaced by a local compile, reference counts per mapping,
 * a local table swapped for the source's copy in place, unloading of unused
 * tables with their slices reused, eviction of the
 * least recently used table when the maps are full, and refusal (frame
 * pointers, counted) when even eviction leaves no room.
 * Oracle for the bytes: unwind_compile + unwind_table_open on the same file,
 * compared with what the image holds. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf/loader.h"
#include "tests/lib/check.h"
#include "unwind-compiler/unwind_compiler.h"

struct source {
	int calls;
	bool garbage;
};

/* A "server" that compiles the object itself (the bytes the real server
 * sends are the same: tests/debuginfod-lite/test_unwind.sh). */
static int fake_fetch(void *arg, const char *build_id, const char *path, uint8_t **data,
		      size_t *size, struct err *e)
{
	struct source *s = arg;
	s->calls++;
	if (s->garbage) {
		*data = calloc(1, 64);
		*size = 64;
		return *data ? 0 : -ENOMEM;
	}
	struct elf_object elf;
	int rc = elf_object_open(&elf, path, e);
	if (rc < 0)
		return rc;
	struct unwind_table t = { 0 };
	struct unwind_compile_options opt = { 0 };
	rc = unwind_compile(&elf, &opt, &t, e);
	elf_object_close(&elf);
	if (rc < 0)
		return rc;
	*data = malloc(t.size);
	if (*data)
		memcpy(*data, t.data, t.size);
	*size = t.size;
	unwind_table_free(&t);
	return *data ? 0 : -ENOMEM;
}

static pid_t spawn(const char *path, const char *arg)
{
	/* stdin: a pipe nobody writes, so a child may wait on it. */
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) || dup2(p[0], 0) < 0)
			_exit(127);
		execl(path, path, arg, (char *)NULL);
		_exit(127);
	}
	close(p[0]); /* p[1] stays open until the test exits */
	usleep(150000); /* past ld.so */
	return pid;
}

static const struct loaded_object *by_path(const struct sampler_loader *ld, const char *suffix)
{
	for (size_t i = 0; i < ld->objects.len; i++) {
		const struct loaded_object *o = loader_object(ld, (uint32_t)i);
		size_t n = strlen(o->path), m = strlen(suffix);
		if (n >= m && !strcmp(o->path + n - m, suffix))
			return o;
	}
	return NULL;
}

/* The image holds exactly the rules of the table compiled from `path`. */
static bool image_matches(const struct sampler_image *img, const struct loaded_object *o,
			  const char *path)
{
	struct elf_object elf;
	struct err e = { { 0 } };
	if (elf_object_open(&elf, path, &e) < 0)
		return false;
	struct unwind_table t = { 0 };
	struct unwind_compile_options opt = { 0 };
	struct unwind_view v;
	bool ok = unwind_compile(&elf, &opt, &t, &e) == 0 &&
		  unwind_table_open(&v, t.data, t.size, &e) == 0 &&
		  v.hdr->rule_count == o->rules && v.hdr->page_count == o->pages;
	const struct table_info *ti = ok ? &img->tables[o->id] : NULL;
	if (ok)
		ok = ti->rules_first == o->rules_first && ti->entry_count == v.hdr->entry_count &&
		     !memcmp(&img->rules[ti->rules_first], v.rules,
			     sizeof(struct unwind_rule) * v.hdr->rule_count) &&
		     !memcmp(&img->pages[ti->pages_first], v.pages,
			     sizeof(uint32_t) * (v.hdr->page_count + 1)) &&
		     !memcmp(img->blocks[ti->entries_first / ENTRY_BLOCK_ENTRIES].bytes, v.entries,
			     UNWIND_ENTRY_SIZE *
				     (v.hdr->entry_count < ENTRY_BLOCK_ENTRIES ? v.hdr->entry_count
									       : ENTRY_BLOCK_ENTRIES));
	unwind_table_free(&t);
	elf_object_close(&elf);
	return ok;
}

int main(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char spin[512], blip[512];
	(void)blip;
	snprintf(spin, sizeof(spin), "%s/fixtures/agent-hooks/spin.debug", build);
	snprintf(blip, sizeof(blip), "%s/fixtures/agent-hooks/blip", build);
	if (access(spin, X_OK) || access(blip, X_OK)) {
		SKIP("loader_tables", "fixtures not built (make fixtures)");
		CHECK_EXIT();
	}
	struct sampler_limits lim;
	sampler_limits_default(&lim);
	struct sampler_image img;
	struct err e = { { 0 } };
	if (sampler_image_init(&img, &lim, &e) < 0) {
		CHECK(0, "image_init", "%s", e.msg);
		CHECK_EXIT();
	}
	struct sampler_backend be = sampler_image_backend(&img);
	struct sampler_loader ld;
	loader_init(&ld, &lim, &be, &e);
	struct source src = { 0 };
	struct loader_table_source ts = { .fetch = fake_fetch, .arg = &src };
	loader_set_table_source(&ld, &ts);

	pid_t a = spawn(spin, "30");
	int rc = loader_add_process(&ld, a, NULL, &e);
	const struct loaded_object *o = by_path(&ld, "spin.debug");
	CHECK(rc == 0 && o && o->has_table && o->origin == TABLE_FETCHED && src.calls >= 2,
	      "tables_from_source", "rc %d, %s, %d fetches", rc, e.msg, src.calls);
	CHECK(o && image_matches(&img, o, spin), "fetched_table_in_maps", "bytes differ");
	CHECK(o && o->refs >= 1, "refs_counted", "refs %u", o ? o->refs : 0);

	/* Same binary, second process: shared, no new fetch. */
	int calls = src.calls;
	pid_t b = spawn(spin, "30");
	rc = loader_add_process(&ld, b, NULL, &e);
	uint32_t refs_two = o ? o->refs : 0;
	size_t objects_one = ld.objects.len;
	(void)objects_one;
	CHECK(rc == 0 && src.calls == calls, "shared_by_build_id", "%d fetches after the second process", src.calls - calls);
	loader_remove_process(&ld, b, &e);
	CHECK(o && o->refs == refs_two / 2 && o->has_table, "refs_drop_on_exit",
	      "refs %u after exit (was %u)", o ? o->refs : 0, refs_two);
	loader_remove_process(&ld, a, &e);
	CHECK(o && o->refs == 0 && o->has_table, "unused_table_stays", "refs %u", o ? o->refs : 0);
	uint32_t rules_before = ld.rules_used;
	unsigned n = loader_unload_unused(&ld, now_ns() + 1);
	CHECK(n >= 2 && ld.rules_used == 0 && ld.blocks_used == 0 && o && !o->has_table &&
		      o->evicted,
	      "unload_unused", "%u unloaded, %u rules still used (was %u)", n, ld.rules_used,
	      rules_before);
	/* Reload: the freed slices are reused, the table is identical. */
	rc = loader_add_process(&ld, a, NULL, &e);
	o = by_path(&ld, "spin.debug");
	CHECK(rc == 0 && o && o->has_table && !o->evicted && ld.rules_used == rules_before &&
		      ld.space[0].top == rules_before,
	      "reload_reuses_space", "rules used %u top %u (want %u)", ld.rules_used,
	      ld.space[0].top, rules_before);
	CHECK(o && image_matches(&img, o, spin), "reloaded_table_in_maps", "bytes differ");
	loader_remove_process(&ld, a, &e);
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	loader_free(&ld);

	/* A source that sends garbage: counted, compiled locally instead. */
	loader_init(&ld, &lim, &be, &e);
	struct source bad = { .garbage = true };
	struct loader_table_source bts = { .fetch = fake_fetch, .arg = &bad };
	loader_set_table_source(&ld, &bts);
	pid_t c = spawn(spin, "30");
	rc = loader_add_process(&ld, c, NULL, &e);
	o = by_path(&ld, "spin.debug");
	CHECK(rc == 0 && o && o->has_table && o->origin == TABLE_COMPILED && ld.bad_fetches >= 2,
	      "bad_fetch_compiled_locally", "rc %d origin %d bad %llu", rc, o ? o->origin : -1,
	      (unsigned long long)ld.bad_fetches);
	/* The server's copy arrives later: swapped in place, while mapped.
	 * Bad bytes are refused and the local table stays. */
	if (o) {
		uint32_t id = o->id, used = ld.rules_used, bad_before = (uint32_t)ld.bad_fetches;
		uint8_t junk[64] = { 0 };
		rc = loader_replace_table(&ld, id, junk, sizeof(junk), TABLE_FETCHED, &e);
		o = loader_object(&ld, id);
		CHECK(rc < 0 && o->has_table && o->origin == TABLE_COMPILED &&
			      ld.bad_fetches == bad_before + 1u && ld.rules_used == used,
		      "replace_refuses_bad_table", "rc %d origin %d", rc, o->origin);
		struct source good = { 0 };
		uint8_t *data = NULL;
		size_t size = 0;
		rc = fake_fetch(&good, o->build_id, spin, &data, &size, &e);
		if (rc == 0)
			rc = loader_replace_table(&ld, id, data, size, TABLE_FETCHED, &e);
		free(data);
		o = loader_object(&ld, id);
		CHECK(rc == 0 && o->has_table && o->origin == TABLE_FETCHED && o->refs >= 1 &&
			      ld.rules_used == used,
		      "replace_swaps_table", "rc %d (%s) origin %d rules %u (was %u)", rc, e.msg,
		      o->origin, ld.rules_used, used);
		CHECK(image_matches(&img, o, spin), "replaced_table_in_maps", "bytes differ");
	}
	uint32_t libc_rules = 0;
	const struct loaded_object *libc = by_path(&ld, "libc.so.6");
	if (libc)
		libc_rules = libc->rules;
	loader_remove_process(&ld, c, &e);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	loader_free(&ld);

	/* Full maps: room for about one process's tables.  lua5.4's libm
	 * evicts what the exited spin left; the tables of a third process
	 * that cannot fit beside the live lua are refused, not fatal. */
	struct sampler_limits small = lim;
	small.max_rules = libc_rules + 64;
	loader_init(&ld, &small, &be, &e);
	pid_t d = spawn(spin, "30");
	rc = loader_add_process(&ld, d, NULL, &e);
	loader_remove_process(&ld, d, &e);
	pid_t f = spawn("/usr/bin/lua5.4", "-eio.read()");
	int rc2 = loader_add_process(&ld, f, NULL, &e);
	const struct loaded_object *blip_o = by_path(&ld, "libm.so.6");
	CHECK(rc == 0 && rc2 == 0 && ld.evictions >= 1 && blip_o && blip_o->has_table,
	      "evict_least_recently_used", "rc %d/%d evictions %llu: %s", rc, rc2,
	      (unsigned long long)ld.evictions, e.msg);
	pid_t g = spawn(spin, "30");
	int rc3 = loader_add_process(&ld, g, NULL, &e);
	CHECK(rc3 == 0 && ld.refusals >= 1, "refused_when_full",
	      "rc %d refusals %llu", rc3, (unsigned long long)ld.refusals);
	kill(d, SIGKILL);
	kill(f, SIGKILL);
	kill(g, SIGKILL);
	waitpid(d, NULL, 0);
	waitpid(f, NULL, 0);
	waitpid(g, NULL, 0);
	loader_free(&ld);
	sampler_image_free(&img);
	CHECK_EXIT();
}
