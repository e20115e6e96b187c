/* common/: known answers for SHA-256 (FIPS 180-4 examples), FNV-1a (its
 * authors' test vectors), the hash map, gzip, build-ID hex,
 * vectors, the /proc parsers, and write_file_atomic under concurrent
 * writers of one path. */
#include "common/common.h"
#include "common/gzip.h"
#include "common/hashmap.h"
#include "common/proc.h"
#include "common/sha256.h"
#include "tests/lib/check.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hex_of(const char *msg, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	if (sha256_hex_of(msg, len, hex) < 0)
		hex[0] = 0;
}

static void test_sha256(void)
{
	char hex[SHA256_HEX_LEN + 1];
	hex_of("abc", 3, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	      "sha256_abc", "got %s", hex);
	hex_of("", 0, hex);
	CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	      "sha256_empty", "got %s", hex);
	const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	hex_of(two_blocks, strlen(two_blocks), hex);
	CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
	      "sha256_448_bits", "got %s", hex);

	/* One million 'a', fed in uneven pieces: the incremental API agrees
	 * with the published digest whatever the piece boundaries. */
	static char million[1000000];
	memset(million, 'a', sizeof(million));
	struct sha256 h;
	int rc = sha256_init(&h);
	for (size_t off = 0, step = 1; off < sizeof(million); off += step, step = step * 3 % 997 + 1)
		sha256_update(&h, million + off,
			      off + step > sizeof(million) ? sizeof(million) - off : step);
	rc |= sha256_final_hex(&h, hex);
	CHECK(rc == 0 && !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	      "sha256_million_a_incremental", "rc %d, got %s", rc, hex);
	CHECK(h.ctx == NULL, "sha256_final_frees", "context still held");

	/* An aborted hash is freed; discard twice is harmless (ASan checks). */
	rc = sha256_init(&h);
	sha256_update(&h, "x", 1);
	sha256_discard(&h);
	sha256_discard(&h);
	CHECK(rc == 0 && h.ctx == NULL, "sha256_discard", "rc %d", rc);
	CHECK(sha256_final_hex(&h, hex) == -EIO && hex[0] == 0, "sha256_final_after_discard_fails",
	      "got %s", hex);
}

static void test_build_id_hex(void)
{
	uint8_t id[BUILD_ID_MAX], back[BUILD_ID_MAX];
	for (size_t i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(i * 37 + 5);
	char hex[BUILD_ID_HEX_MAX];
	build_id_to_hex(id, 20, hex);
	size_t len = 0;
	int rc = build_id_from_hex(hex, back, &len);
	CHECK(rc == 0 && len == 20 && !memcmp(id, back, 20) && strlen(hex) == 40,
	      "build_id_hex_round_trip", "rc %d len %zu hex %s", rc, len, hex);
	CHECK(build_id_from_hex("ABCDEF01", back, &len) == 0 && len == 4 && back[0] == 0xab,
	      "build_id_hex_upper", "len %zu", len);
	const char *bad[] = { "", "a", "abc", "zz", "0g", "12 4" };
	int refused = 0;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		refused += build_id_from_hex(bad[i], back, &len) == -EINVAL;
	char too_long[2 * BUILD_ID_MAX + 3];
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = 0;
	refused += build_id_from_hex(too_long, back, &len) == -EINVAL;
	CHECK(refused == (int)ARRAY_SIZE(bad) + 1, "build_id_hex_refuses", "%d refused", refused);
}

static void test_vec_and_sort(void)
{
	uint64_t v[] = { 9, 3, 3, 7, 1, 9, 0, 7 };
	size_t n = sort_unique_u64(v, ARRAY_SIZE(v));
	CHECK(n == 5 && v[0] == 0 && v[1] == 1 && v[2] == 3 && v[3] == 7 && v[4] == 9,
	      "sort_unique_u64", "n %zu", n);
	CHECK(sort_unique_u64(NULL, 0) == 0, "sort_unique_u64_empty", "not 0");
	struct vec vec;
	vec_init(&vec, sizeof(uint32_t));
	bool ok = true;
	for (uint32_t i = 0; i < 10000 && ok; i++) {
		uint32_t *x = vec_push(&vec);
		ok = x && *x == 0;
		if (x)
			*x = i;
	}
	for (uint32_t i = 0; i < 10000 && ok; i++)
		ok = VEC_AT(&vec, uint32_t, i) == i;
	CHECK(ok && vec.len == 10000, "vec_push_zeroed_and_kept", "len %zu", vec.len);
	vec_free(&vec);
}

struct writer {
	const char *path;
	int id;
	int failures;
};

#define WRITERS 4
#define WRITES 200
#define FILE_BYTES 65536

/* Each writer writes whole files filled with its own byte. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	static __thread uint8_t buf[FILE_BYTES];
	memset(buf, 'A' + w->id, sizeof(buf));
	for (int i = 0; i < WRITES; i++) {
		struct err e = { { 0 } };
		if (write_file_atomic(w->path, buf, sizeof(buf), 0644, &e) < 0)
			w->failures++;
	}
	return NULL;
}

/* A reader must always see one writer's whole file. */
static bool file_is_whole(const char *path)
{
	uint8_t *data = NULL;
	size_t size = 0;
	struct err e = { { 0 } };
	if (read_file(path, FILE_BYTES * 2, &data, &size, &e) < 0)
		return false;
	bool whole = size == FILE_BYTES;
	for (size_t i = 1; whole && i < size; i++)
		whole = data[i] == data[0];
	free(data);
	return whole;
}

static void test_write_file_atomic(void)
{
	char dir[] = "/tmp/test_common.XXXXXX";
	if (!mkdtemp(dir)) {
		SKIP("write_file_atomic_threads", "mkdtemp: %s", strerror(errno));
		return;
	}
	char path[256];
	snprintf(path, sizeof(path), "%s/same-path", dir);
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .path = path, .id = i };
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	int torn = 0, reads = 0;
	for (int i = 0; i < 300; i++, reads++)
		if (access(path, F_OK) == 0 && !file_is_whole(path))
			torn++;
	int failures = 0;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	CHECK(failures == 0, "write_file_atomic_threads_no_failure", "%d of %d writes failed",
	      failures, WRITERS * WRITES);
	CHECK(torn == 0 && file_is_whole(path), "write_file_atomic_threads_whole",
	      "%d of %d reads saw a torn file", torn, reads);
	int entries = 0;
	DIR *d = opendir(dir);
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_name[0] != '.') {
			entries++;
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
	CHECK(entries == 1, "write_file_atomic_leaves_no_tmp", "%d files left", entries);

	struct err e = { { 0 } };
	int rc = write_file_atomic("/nonexistent-dir/x", "x", 1, 0644, &e);
	CHECK(rc == -ENOENT && strstr(e.msg, "/nonexistent-dir/x"), "write_file_atomic_error_names_path",
	      "rc %d msg %s", rc, e.msg);
}

static void test_proc(void)
{
	const char *line = "7f1c2a400000-7f1c2a428000 r-xp 00028000 08:01 1835023    "
			   "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)\n";
	struct proc_map m;
	int rc = proc_maps_line(line, strlen(line), &m);
	CHECK(rc == 0 && m.start == 0x7f1c2a400000ull && m.end == 0x7f1c2a428000ull &&
	      m.offset == 0x28000 && !strcmp(m.perms, "r-xp") && m.path_len == 45 &&
	      !strncmp(m.path, "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)", m.path_len),
	      "proc_maps_line", "rc %d path '%.*s'", rc, (int)m.path_len, m.path ? m.path : "");
	const char *anon = "7ffd1000-7ffd3000 rw-p 00000000 00:00 0";
	rc = proc_maps_line(anon, strlen(anon), &m);
	CHECK(rc == 0 && m.path_len == 0, "proc_maps_line_anonymous", "rc %d len %zu", rc, m.path_len);
	const char *bad[] = { "2000-1000 r-xp 0 0:0 0 /x", "1000-2000 r-x 0 0:0 0 /x",
			      "1000-2000 r-xp 0 00 0 /x", "1000-2000 r-xp 0 0:0 1x /x",
			      "11112222333344445-2 r-xp 0 0:0 0", "1000", "" };
	int refused = 0;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		refused += proc_maps_line(bad[i], strlen(bad[i]), &m) == -EINVAL;
	CHECK(refused == (int)ARRAY_SIZE(bad), "proc_maps_line_refuses", "%d of %zu refused",
	      refused, ARRAY_SIZE(bad));
	const char *status = "Name:\tx\nNSpid:\t4242\t17\nTgid:\t4242\n";
	CHECK(proc_status_nspid(status, strlen(status)) == 17, "proc_status_nspid", "wrong pid");
	CHECK(proc_status_nspid("Name: x\n", 8) == 0, "proc_status_nspid_absent", "not 0");
	uint64_t addr = 0;
	char type = 0;
	const char *name = NULL;
	size_t name_len = 0;
	const char *ks = "ffffffff81000000 T _text\n";
	rc = proc_kallsyms_line(ks, strlen(ks), &addr, &type, &name, &name_len);
	CHECK(rc == 0 && addr == 0xffffffff81000000ull && type == 'T' && name_len == 5 &&
	      !memcmp(name, "_text", 5), "proc_kallsyms_line", "rc %d", rc);
}

static void test_hashmap(void)
{
	/* FNV-1a 64 test vectors published with the algorithm. */
	CHECK(hash_fnv1a64("", 0) == 0xcbf29ce484222325ull && hash_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull &&
		      hash_fnv1a64("foobar", 6) == 0x85944171f73967e8ull,
	      "fnv1a64_vectors", "got %llx", (unsigned long long)hash_fnv1a64("foobar", 6));

	struct hashmap m;
	hashmap_init(&m);
	int r0;
	enum { N = 20000 };
	char key[32];
	size_t bad = 0;
	for (uint64_t i = 0; i < N; i++) {
		int len = snprintf(key, sizeof(key), "key-%llu", (unsigned long long)i);
		uint64_t v = i * 7;
		bad += hashmap_find(&m, key, (size_t)len, &v, true) != 0;
	}
	for (uint64_t i = 0; i < N; i++) {
		int len = snprintf(key, sizeof(key), "key-%llu", (unsigned long long)i);
		uint64_t v = 0;
		bad += hashmap_find(&m, key, (size_t)len, &v, false) != 1 || v != i * 7;
	}
	uint64_t v = 99;
	CHECK(!bad && hashmap_count(&m) == N, "hashmap_find_all", "%zu wrong of %d", bad, N);
	CHECK(hashmap_find(&m, "key-", 4, &v, false) == 0 && v == 99 && hashmap_count(&m) == N,
	      "hashmap_absent", "absent key found or added");
	v = 1;
	CHECK(hashmap_find(&m, "key-5", 5, &v, true) == 1 && v == 35, "hashmap_add_existing",
	      "got value %llu", (unsigned long long)v);
	uint64_t *slot = NULL;
	r0 = hashmap_slot(&m, "new", 3, &slot);
	int r0_ok = r0 == 0 && slot && *slot == 0;
	if (slot)
		*slot = 42;
	v = 0;
	CHECK(r0_ok && hashmap_slot(&m, "new", 3, &slot) == 1 && *slot == 42 &&
		      hashmap_find(&m, "new", 3, &v, false) == 1 && v == 42,
	      "hashmap_slot", "r0=%d v=%llu", r0, (unsigned long long)v);
	hashmap_free(&m);

	/* Keys are bytes: NULs inside count, the empty key is a key, and the
	 * arena is a string table in insertion order. */
	v = hashmap_next_offset(&m);
	CHECK(hashmap_find(&m, "", 0, &v, true) == 0 && v == 0, "hashmap_empty_key", "v=%llu",
	      (unsigned long long)v);
	uint64_t off_b = hashmap_next_offset(&m), off_c;
	v = off_b;
	hashmap_find(&m, "a\0b", 3, &v, true);
	off_c = v = hashmap_next_offset(&m);
	int r = hashmap_find(&m, "a\0c", 3, &v, true);
	size_t size;
	const char *arena = hashmap_arena(&m, &size);
	CHECK(r == 0 && off_b == 1 && off_c == 5 && size == 9 && !memcmp(arena, "\0a\0b\0a\0c", 9),
	      "hashmap_arena", "r=%d off_b=%llu off_c=%llu size=%zu", r, (unsigned long long)off_b,
	      (unsigned long long)off_c, size);
	hashmap_free(&m);
}

static void test_gzip(void)
{
	/* `printf hello | gzip -n -6` */
	static const uint8_t hello_gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					   0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86,
					   0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00};
	struct err e = {{0}};
	uint8_t *out = NULL;
	size_t n = 0;
	int r = gzip_decompress(hello_gz, sizeof(hello_gz), 1024, &out, &n, &e);
	CHECK(r == 0 && n == 5 && !memcmp(out, "hello", 5), "gzip_known_answer", "r=%d %s", r, e.msg);
	free(out);
	CHECK(gzip_is(hello_gz, sizeof(hello_gz)) && gzip_claimed_size(hello_gz, sizeof(hello_gz)) == 5 &&
		      !gzip_is("hello", 5) && gzip_claimed_size("hello", 5) == 0,
	      "gzip_header", "magic or ISIZE misread");

	/* Our output is what gzip reads: round trip through the cap. */
	enum { BIG = 1 << 20 };
	uint8_t *zeros = calloc(1, BIG), *gz = NULL;
	r = gzip_compress(zeros, BIG, &gz, &n, &e);
	CHECK(r == 0 && gzip_is(gz, n) && gzip_claimed_size(gz, n) == BIG && n < BIG / 100,
	      "gzip_compress", "r=%d size=%zu %s", r, n, e.msg);
	size_t plain = 0;
	r = gzip_decompress(gz, n, BIG, &out, &plain, &e);
	CHECK(r == 0 && plain == BIG && !memcmp(out, zeros, BIG), "gzip_round_trip", "r=%d %s", r, e.msg);
	free(out);
	struct err capped = {{0}};
	r = gzip_decompress(gz, n, BIG - 1, &out, &plain, &capped);
	CHECK(r == -EFBIG, "gzip_size_cap", "r=%d %s", r, capped.msg);
	struct err cut = {{0}};
	r = gzip_decompress(gz, n / 2, BIG, &out, &plain, &cut);
	CHECK(r == -EINVAL, "gzip_truncated", "r=%d %s", r, cut.msg);
	uint8_t bad[sizeof(hello_gz)];
	memcpy(bad, hello_gz, sizeof(bad));
	bad[12] ^= 0xff;
	struct err corrupt = {{0}};
	r = gzip_decompress(bad, sizeof(bad), 1024, &out, &plain, &corrupt);
	CHECK(r == -EINVAL, "gzip_corrupt", "r=%d %s", r, corrupt.msg);
	free(gz);
	free(zeros);
}

int main(void)
{
	test_proc();
	test_sha256();
	test_build_id_hex();
	test_vec_and_sort();
	test_write_file_atomic();
	test_hashmap();
	test_gzip();
	CHECK_EXIT();
}
