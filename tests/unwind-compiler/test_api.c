/* The unwind-compiler library API: memory vs file, threads, lookups,
 * validation of damaged tables, errors for objects without CFI. */
#include "unwind-compiler/unwind_compiler.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define NTHREADS 4

struct job {
	const uint8_t *image;
	size_t size;
	struct unwind_table table;
	int rc;
};

static void *compile_job(void *arg)
{
	struct job *j = arg;
	struct err e = {0};
	j->rc = unwind_compile_mem(j->image, j->size, NULL, &j->table, &e);
	return NULL;
}

static bool same_table(const struct unwind_table *a, const struct unwind_table *b)
{
	return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

/* Every lookup inside a row returns that row, with its bounds. */
static bool lookups_consistent(const struct unwind_view *v, char *why, size_t why_size)
{
	const struct unwind_table_header *h = v->hdr;
	uint64_t pc = h->base;
	uint64_t limit = h->base + ((uint64_t)h->page_count << UNWIND_PAGE_SHIFT);
	uint64_t rows = 0;
	uint64_t first = h->base + unwind_entry_offset(v->entries);
	if (first > h->base && unwind_table_lookup(v, first - 1, NULL, NULL)) {
		snprintf(why, why_size, "a row before the first entry");
		return false;
	}
	pc = first;
	while (pc < limit) {
		uint64_t s, e, s2, e2;
		const struct unwind_rule *r = unwind_table_lookup(v, pc, &s, &e);
		if (!r || s != pc || e <= s) {
			snprintf(why, why_size, "row at 0x%llx: start 0x%llx end 0x%llx",
				 (unsigned long long)pc, (unsigned long long)s, (unsigned long long)e);
			return false;
		}
		uint64_t probes[] = {s + (e - s) / 2, e - 1 < limit ? e - 1 : limit - 1};
		for (size_t i = 0; i < 2; i++) {
			const struct unwind_rule *r2 = unwind_table_lookup(v, probes[i], &s2, &e2);
			if (r2 != r || s2 != s || (e2 != e && e < limit)) {
				snprintf(why, why_size, "0x%llx is inside row 0x%llx but finds another",
					 (unsigned long long)probes[i], (unsigned long long)s);
				return false;
			}
		}
		rows++;
		pc = e;
	}
	if (rows != h->entry_count) {
		snprintf(why, why_size, "walked %llu rows, table has %u entries",
			 (unsigned long long)rows, h->entry_count);
		return false;
	}
	return true;
}

int main(void)
{
	struct err e = {0};
	uint8_t *image;
	size_t size;
	if (read_file(LIBC, 64u << 20, &image, &size, &e)) {
		SKIP("api", "%s: %s", LIBC, e.msg);
		return 0;
	}
	struct unwind_table from_file, from_mem;
	int rc = unwind_compile_file(LIBC, NULL, &from_file, &e);
	CHECK(rc == 0, "api compile file", "%s", e.msg);
	rc = unwind_compile_mem(image, size, NULL, &from_mem, &e);
	CHECK(rc == 0, "api compile memory", "%s", e.msg);
	CHECK(same_table(&from_file, &from_mem), "api memory equals file", "tables differ");

	struct job jobs[NTHREADS];
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		jobs[i] = (struct job){.image = image, .size = size};
		pthread_create(&th[i], NULL, compile_job, &jobs[i]);
	}
	bool all_same = true;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		all_same &= jobs[i].rc == 0 && same_table(&jobs[i].table, &from_file);
		unwind_table_free(&jobs[i].table);
	}
	CHECK(all_same, "api concurrent compiles agree", "a thread's table differs");

	struct unwind_view v;
	rc = unwind_table_open(&v, from_file.data, from_file.size, &e);
	CHECK(rc == 0, "api open table", "%s", e.msg);
	char why[256] = "";
	if (rc == 0)
		CHECK(lookups_consistent(&v, why, sizeof(why)), "api lookups", "%s", why);
	CHECK(v.hdr->cfi_rows == from_file.stats.cfi_rows && v.hdr->fde_count == from_file.stats.fdes,
	      "api header counts", "header %u rows, stats %llu", v.hdr->cfi_rows,
	      (unsigned long long)from_file.stats.cfi_rows);

	/* Damaged tables: every single-byte change in the header, rules and
	 * page index, and a sample of the entries, is either refused by
	 * unwind_table_open or leaves a table that lookups walk safely (ASan
	 * watches). */
	uint8_t *copy = malloc(from_file.size);
	size_t refused = 0, tried = 0;
	for (size_t off = 0; off < from_file.size; off += off < v.hdr->entries_offset ? 1 : 97) {
		memcpy(copy, from_file.data, from_file.size);
		copy[off] ^= (uint8_t)(0x5a ^ off);
		struct unwind_view dv;
		struct err de = {0};
		tried++;
		if (unwind_table_open(&dv, copy, from_file.size, &de)) {
			refused++;
			continue;
		}
		for (uint64_t pc = dv.hdr->base; pc < dv.hdr->base + 64 * UNWIND_PAGE_SIZE; pc += 61)
			unwind_table_lookup(&dv, pc, NULL, NULL);
	}
	free(copy);
	printf("# damaged tables: %zu tried, %zu refused\n", tried, refused);
	CHECK(refused > 0, "api damaged tables refused or safe", "nothing refused");
	struct unwind_view tv;
	CHECK(unwind_table_open(&tv, from_file.data, from_file.size - 8, &e) != 0,
	      "api truncated table refused", "accepted");

	/* A separate debug file has no CFI of its own (its .eh_frame is
	 * NOBITS): a clear error, not an empty table. */
	struct elf_object o;
	struct err de = {0};
	if (elf_object_open(&o, LIBC, &de) == 0 && o.build_id_len) {
		char hex[BUILD_ID_HEX_MAX], path[512];
		build_id_to_hex(o.build_id, o.build_id_len, hex);
		snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
		struct unwind_table t;
		rc = unwind_compile_file(path, NULL, &t, &de);
		if (rc == -ENOENT)
			SKIP("api debug file without CFI", "%s not installed (libc6-dbg)", path);
		else
			CHECK(rc == -ENODATA && strstr(de.msg, "no call-frame information"),
			      "api debug file without CFI", "rc %d: %s", rc, de.msg);
		elf_object_close(&o);
	}
	unwind_table_free(&from_file);
	unwind_table_free(&from_mem);
	free(image);
	CHECK_EXIT();
}
