/* The pprof library (pprof/pprof.h): build, serialize, parse, merge, and
 * hostile input.  Linked with libpprof and libcommon only (tests/module.mk):
 * that pprof/ needs nothing of the symbolizer is checked by this link.
 * Profiles for other tests are written by
 * tests/debuginfod-lite/test_profile_tool. */
#include "pprof/pprof.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <string.h>

static int parse_bytes(const uint8_t *b, size_t n, struct err *e)
{
	struct pprof_profile *p = NULL;
	err_clear(e);
	int r = pprof_parse(b, n, &p, e);
	pprof_free(p);
	return r;
}

static void hostile(void)
{
	struct err e = {{0}};
	/* string_table ["", "x"], sample_type {type: 7 (out of range)} */
	const uint8_t bad_str[] = {0x0a, 0x02, 0x08, 0x07, 0x32, 0x00, 0x32, 0x01, 'x'};
	CHECK(parse_bytes(bad_str, sizeof(bad_str), &e) == -EINVAL && strstr(e.msg, "string index 7"),
	      "hostile_bad_string_index", "%s", e.msg);
	/* a packed location_id list whose length runs past the end */
	const uint8_t trunc[] = {0x12, 0x05, 0x0a, 0x7f, 0x01};
	CHECK(parse_bytes(trunc, sizeof(trunc), &e) == -EINVAL && strstr(e.msg, "past the end"),
	      "hostile_truncated", "%s", e.msg);
	/* a length prefix of 2^63: must not allocate */
	const uint8_t huge[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
	CHECK(parse_bytes(huge, sizeof(huge), &e) == -EINVAL, "hostile_huge_count", "%s", e.msg);
	/* sample referring to location 5 that does not exist */
	const uint8_t dangling[] = {0x12, 0x02, 0x08, 0x05, 0x32, 0x00};
	CHECK(parse_bytes(dangling, sizeof(dangling), &e) == -EINVAL && strstr(e.msg, "unknown location"),
	      "hostile_dangling_location", "%s", e.msg);
	/* two locations with id 1 */
	const uint8_t dup[] = {0x22, 0x02, 0x08, 0x01, 0x22, 0x02, 0x08, 0x01};
	CHECK(parse_bytes(dup, sizeof(dup), &e) == -EINVAL && strstr(e.msg, "duplicate location"),
	      "hostile_duplicate_id", "%s", e.msg);
	/* string_table[0] not empty */
	const uint8_t s0[] = {0x32, 0x01, 'a'};
	CHECK(parse_bytes(s0, sizeof(s0), &e) == -EINVAL, "hostile_string0", "%s", e.msg);
	/* group wire type */
	const uint8_t grp[] = {0x0b};
	CHECK(parse_bytes(grp, sizeof(grp), &e) == -EINVAL, "hostile_group", "%s", e.msg);
	/* gzip bomb: 600 MB of zeros compressed is refused by size, quickly */
	const char *types[] = {"x"}, *units[] = {"count"};
	struct pprof_profile *p = pprof_new(types, units, 1);
	uint8_t *gz;
	size_t gzn;
	CHECK(p && pprof_serialize(p, true, &gz, &gzn, &e) == 0, "serialize_empty", "%s", e.msg);
	if (gzn > 10) {
		gz[gzn - 10] ^= 0x55; /* corrupt the deflate stream's end */
		CHECK(parse_bytes(gz, gzn, &e) == -EINVAL, "hostile_corrupt_gzip", "%s", e.msg);
	}
	free(gz);
	pprof_free(p);
}

static void roundtrip_and_merge(void)
{
	struct err e = {{0}};
	const char *types[] = {"samples", "cpu"}, *units[] = {"count", "nanoseconds"};
	struct pprof_profile *a = pprof_new(types, units, 2);
	uint64_t m = pprof_add_mapping(a, "00112233", "/bin/x");
	CHECK(m == 1 && pprof_add_mapping(a, "00112233", "/bin/x") == 1, "mapping_interned", "%llu",
	      (unsigned long long)m);
	struct pprof_frame st1[] = {{m, 0x1000}, {m, 0x2000}}, st2[] = {{m, 0x2000}, {m, 0x1000}};
	int64_t v[2] = {1, 10};
	const char *lab[][2] = {{"thread", "main"}};
	pprof_add_sample(a, st1, 2, v, lab, 1, &e);
	pprof_add_sample(a, st1, 2, v, lab, 1, &e);
	pprof_add_sample(a, st2, 2, v, NULL, 0, &e);
	/* 0x1000 and 0x2000 each as leaf and as caller: 4 locations, 2 samples */
	CHECK(a->locations.len == 4 && a->samples.len == 2, "add_sample_dedup", "%zu locations %zu samples",
	      a->locations.len, a->samples.len);
	uint8_t *kinds = NULL;
	pprof_location_kinds(a, &kinds, &e);
	CHECK(kinds && kinds[0] == PPROF_LEAF_PC && kinds[1] == PPROF_RETURN_ADDRESS, "location_kinds",
	      "%d %d", kinds ? kinds[0] : -1, kinds ? kinds[1] : -1);
	free(kinds);
	uint8_t *buf;
	size_t n;
	struct pprof_profile *b = NULL;
	int r = pprof_serialize(a, true, &buf, &n, &e);
	if (!r)
		r = pprof_parse(buf, n, &b, &e);
	CHECK(!r && b->samples.len == 2 && b->locations.len == 4 &&
		      VEC_AT(&b->sample_values, int64_t, 1) == 20 &&
		      !strcmp(pprof_str(b, VEC_AT(&b->labels, struct pprof_label, 0).str), "main"),
	      "serialize_parse_roundtrip", "%s", e.msg);
	if (!r) {
		uint8_t *buf2;
		size_t n2;
		pprof_serialize(b, false, &buf2, &n2, &e);
		uint8_t *buf1;
		size_t n1;
		pprof_serialize(a, false, &buf1, &n1, &e);
		CHECK(n1 == n2 && !memcmp(buf1, buf2, n1), "roundtrip_bytes_identical", "%zu vs %zu", n1, n2);
		free(buf1);
		free(buf2);
		CHECK(pprof_merge(a, b, &e) == 0 && a->samples.len == 2 && a->locations.len == 4 &&
			      VEC_AT(&a->sample_values, int64_t, 1) == 40,
		      "merge_sums_identical_samples", "%s samples %zu", e.msg, a->samples.len);
		const char *t2[] = {"alloc"}, *u2[] = {"bytes"};
		struct pprof_profile *c = pprof_new(t2, u2, 1);
		err_clear(&e);
		CHECK(pprof_merge(a, c, &e) == -EINVAL && e.msg[0], "merge_refuses_other_types", "%s", e.msg);
		pprof_free(c);
	}
	free(buf);
	pprof_free(a);
	pprof_free(b);
}

/* A new record in a profile whose ids are not index+1 must not reuse an id:
 * locations 3 and 1, then a third location (id 3 is taken, 4 is free). */
static void new_id_in_sparse_profile(void)
{
	const uint8_t sparse[] = {
		0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,                   /* sample_type {1, 2} */
		0x12, 0x07, 0x0a, 0x02, 0x03, 0x01, 0x12, 0x01, 0x01, /* sample [3, 1] = 1 */
		0x22, 0x04, 0x08, 0x03, 0x18, 0x10,                   /* location 3 at 0x10 */
		0x22, 0x04, 0x08, 0x01, 0x18, 0x20,                   /* location 1 at 0x20 */
		0x32, 0x00, 0x32, 0x01, 'x', 0x32, 0x05, 'c', 'o', 'u', 'n', 't'};
	struct err e = {{0}};
	struct pprof_profile *p = NULL, *q = NULL;
	struct pprof_frame fr = {0, 0x30};
	int64_t v = 1;
	uint8_t *buf = NULL;
	size_t n;
	int r = pprof_parse(sparse, sizeof(sparse), &p, &e);
	if (!r)
		r = pprof_add_sample(p, &fr, 1, &v, NULL, 0, &e);
	if (!r)
		r = pprof_serialize(p, false, &buf, &n, &e);
	if (!r)
		r = pprof_parse(buf, n, &q, &e); /* refuses duplicate ids */
	CHECK(!r && q->locations.len == 3 &&
		      VEC_AT(&q->locations, struct pprof_location, 2).id == 4,
	      "new_id_in_sparse_profile", "%s", e.msg);
	free(buf);
	pprof_free(p);
	pprof_free(q);
}

int main(void)
{
	hostile();
	roundtrip_and_merge();
	new_id_in_sparse_profile();
	CHECK_EXIT();
}
