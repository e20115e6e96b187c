/* JIT code: perf maps (/tmp/perf-PID.map) and jitdump files (jit-PID.dump).
 * Both hold absolute runtime addresses of one process (docs/symbolizer.md describes both formats).
 * Overlaps are resolved last-writer-wins: runtimes reuse code memory, and a
 * later line/record describes the newer code. */
#include "symbolizer/symbolizer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JIT_FILE (1ull << 31)
#define MAX_NAME 4096

struct raw_entry {
	uint64_t start, end;
	uint32_t name; /* offset in names */
};

struct symz_jit_map {
	struct symz_jit_entry *entries; /* disjoint, sorted by start */
	size_t n;
	char *names;
};

struct jit_builder {
	struct raw_entry *raw;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
};

static int jb_add(struct jit_builder *b, uint64_t start, uint64_t size, const char *name,
		  size_t name_len)
{
	if (size == 0 || start + size < start)
		return 0; /* nothing to find there */
	if (name_len > MAX_NAME)
		name_len = MAX_NAME;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		struct raw_entry *nr = realloc(b->raw, ncap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		b->raw = nr;
		b->cap = ncap;
	}
	if (b->names_len + name_len + 1 > b->names_cap) {
		size_t ncap = b->names_cap ? b->names_cap * 2 : 4096;
		while (ncap < b->names_len + name_len + 1)
			ncap *= 2;
		char *nn = realloc(b->names, ncap);
		if (!nn)
			return -ENOMEM;
		b->names = nn;
		b->names_cap = ncap;
	}
	if (b->names_len + name_len + 1 > UINT32_MAX)
		return -EFBIG;
	memcpy(b->names + b->names_len, name, name_len);
	b->names[b->names_len + name_len] = 0;
	b->raw[b->n].start = start;
	b->raw[b->n].end = start + size;
	b->raw[b->n].name = (uint32_t)b->names_len;
	b->names_len += name_len + 1;
	b->n++;
	return 0;
}

/* Code that left [start, start+size) (JIT_CODE_MOVE): a newer entry without
 * a name, so older entries stop answering there. */
#define TOMBSTONE UINT32_MAX
static int jb_remove(struct jit_builder *b, uint64_t start, uint64_t size)
{
	size_t before = b->n;
	int r = jb_add(b, start, size, "", 0);
	if (r == 0 && b->n > before)
		b->raw[b->n - 1].name = TOMBSTONE;
	return r;
}

static size_t lower_bound(const uint64_t *a, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Smallest unowned elementary interval >= i (path-halving union-find). */
static size_t next_free(size_t *next, size_t i)
{
	while (next[i] != i) {
		next[i] = next[next[i]];
		i = next[i];
	}
	return i;
}

/* Newest entry first; each elementary interval goes to the first (newest)
 * entry that covers it: O(n log n) whatever the overlaps. */
static int jb_finish(struct jit_builder *b, struct symz_jit_map **out, struct err *e)
{
	size_t nb = 2 * b->n;
	uint64_t *bounds = malloc((nb + 1) * sizeof(*bounds));
	size_t *next = NULL;
	uint32_t *owner = NULL;
	struct symz_jit_map *m = calloc(1, sizeof(*m));
	int r = 0;
	if (!bounds || !m)
		goto oom;
	for (size_t i = 0; i < b->n; i++) {
		bounds[2 * i] = b->raw[i].start;
		bounds[2 * i + 1] = b->raw[i].end;
	}
	nb = sort_unique_u64(bounds, nb);
	next = malloc((nb + 1) * sizeof(*next));
	owner = malloc((nb + 1) * sizeof(*owner));
	if (!next || !owner)
		goto oom;
	for (size_t i = 0; i <= nb; i++) {
		next[i] = i;
		owner[i] = UINT32_MAX;
	}
	for (size_t k = b->n; k-- > 0;) {
		size_t lo = lower_bound(bounds, nb, b->raw[k].start);
		size_t hi = lower_bound(bounds, nb, b->raw[k].end);
		for (size_t j = next_free(next, lo); j < hi; j = next_free(next, j + 1)) {
			owner[j] = (uint32_t)k;
			next[j] = j + 1;
		}
	}
	m->entries = calloc(nb ? nb : 1, sizeof(*m->entries));
	if (!m->entries)
		goto oom;
	for (size_t i = 0; i + 1 < nb; i++) {
		if (owner[i] == UINT32_MAX || b->raw[owner[i]].name == TOMBSTONE)
			continue;
		struct symz_jit_entry *last = m->n ? &m->entries[m->n - 1] : NULL;
		if (last && owner[i] == owner[i - 1] && last->start + last->size == bounds[i]) {
			last->size = bounds[i + 1] - last->start;
			continue;
		}
		m->entries[m->n].start = bounds[i];
		m->entries[m->n].size = bounds[i + 1] - bounds[i];
		m->entries[m->n].name = (const char *)(uintptr_t)b->raw[owner[i]].name;
		m->n++;
	}
	m->names = b->names;
	b->names = NULL;
	for (size_t i = 0; i < m->n; i++)
		m->entries[i].name = m->names + (uintptr_t)m->entries[i].name;
	*out = m;
	m = NULL;
	goto done;
oom:
	r = err_set(e, ENOMEM, "out of memory");
done:
	free(bounds);
	free(next);
	free(owner);
	if (m) {
		free(m->entries);
		free(m);
	}
	free(b->raw);
	free(b->names);
	return r;
}

static const char *parse_hex(const char *p, const char *end, uint64_t *v)
{
	if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	uint64_t r = 0;
	int digits = 0;
	for (; p < end; p++) {
		int c = (unsigned char)*p, d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			break;
		if (++digits > 16)
			return NULL;
		r = r * 16 + (uint64_t)d;
	}
	if (!digits)
		return NULL;
	*v = r;
	return p;
}

int symz_perf_map_parse(const char *text, size_t size, struct symz_jit_map **out,
			size_t *bad_lines, struct err *e)
{
	struct jit_builder b = {0};
	size_t bad = 0;
	const char *p = text, *end = text + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break; /* a partial last line: the writer is still writing it */
		const char *q = p, *le = nl;
		if (le > q && le[-1] == '\r')
			le--;
		uint64_t start, len;
		if (q == le) {
			p = nl + 1;
			continue;
		}
		q = parse_hex(q, le, &start);
		if (q && q < le && (*q == ' ' || *q == '\t')) {
			while (q < le && (*q == ' ' || *q == '\t'))
				q++;
			q = parse_hex(q, le, &len);
		} else {
			q = NULL;
		}
		if (!q || q >= le || (*q != ' ' && *q != '\t')) {
			bad++;
			p = nl + 1;
			continue;
		}
		q++; /* the name is the rest of the line, spaces included */
		if (jb_add(&b, start, len, q, (size_t)(le - q))) {
			free(b.raw);
			free(b.names);
			return err_set(e, ENOMEM, "out of memory");
		}
		p = nl + 1;
	}
	if (bad_lines)
		*bad_lines = bad;
	return jb_finish(&b, out, e);
}

int symz_perf_map_load(const char *path, struct symz_jit_map **out, struct err *e)
{
	uint8_t *data;
	size_t size;
	int r = read_file(path, MAX_JIT_FILE, &data, &size, e);
	if (r)
		return err_set(e, -r, "%s: cannot read perf map", path);
	size_t bad = 0;
	r = symz_perf_map_parse((const char *)data, size, out, &bad, e);
	free(data);
	if (!r && bad && symz_jit_count(*out) == 0) {
		symz_jit_free(*out);
		*out = NULL;
		return err_set(e, EINVAL, "%s: not a perf map (%zu malformed lines, none valid)",
			       path, bad);
	}
	return r;
}

#define JITDUMP_MAGIC 0x4A695444u
#define JIT_CODE_LOAD 0
#define JIT_CODE_MOVE 1

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

int symz_jitdump_parse(const uint8_t *d, size_t size, struct symz_jit_map **out, struct err *e)
{
	if (size < 40)
		return err_set(e, EINVAL, "jitdump: file shorter than its header");
	uint32_t magic = rd32(d);
	if (magic == __builtin_bswap32(JITDUMP_MAGIC))
		return err_set(e, ENOTSUP, "jitdump: byte-swapped (big-endian) dumps not supported");
	if (magic != JITDUMP_MAGIC)
		return err_set(e, EINVAL, "jitdump: bad magic 0x%08x", magic);
	uint32_t hdr_size = rd32(d + 8);
	if (hdr_size < 40 || hdr_size > size)
		return err_set(e, EINVAL, "jitdump: bad header size %u", hdr_size);
	struct jit_builder b = {0};
	/* code_index -> name offset of JIT_CODE_LOADs, for MOVEs. */
	struct { uint64_t index; uint32_t name; size_t len; } *loads = NULL;
	size_t nloads = 0, cap = 0;
	size_t off = hdr_size;
	int r = 0;
	while (size - off >= 16) {
		uint32_t id = rd32(d + off), total = rd32(d + off + 4);
		if (total < 16 || total > size - off)
			break; /* truncated tail (the runtime is still writing) or garbage */
		const uint8_t *p = d + off + 16;
		size_t len = total - 16;
		if (id == JIT_CODE_LOAD && len >= 40) {
			uint64_t addr = rd64(p + 16), csize = rd64(p + 24), index = rd64(p + 32);
			const char *name = (const char *)p + 40;
			size_t nlen = strnlen(name, len - 40);
			if (nlen == len - 40) {
				off += total;
				continue; /* name not terminated inside the record */
			}
			uint32_t name_off = (uint32_t)b.names_len;
			r = jb_add(&b, addr, csize, name, nlen);
			if (r)
				break;
			if (nloads == cap) {
				cap = cap ? cap * 2 : 256;
				void *nl = realloc(loads, cap * sizeof(*loads));
				if (!nl) {
					r = -ENOMEM;
					break;
				}
				loads = nl;
			}
			loads[nloads].index = index;
			loads[nloads].name = name_off;
			loads[nloads].len = nlen;
			nloads++;
		} else if (id == JIT_CODE_MOVE && len >= 48) {
			uint64_t oaddr = rd64(p + 16), naddr = rd64(p + 24), csize = rd64(p + 32);
			uint64_t index = rd64(p + 40);
			for (size_t i = nloads; i-- > 0;) {
				if (loads[i].index != index)
					continue;
				char name[MAX_NAME + 1];
				memcpy(name, b.names + loads[i].name, loads[i].len + 1);
				r = jb_remove(&b, oaddr, csize);
				if (!r)
					r = jb_add(&b, naddr, csize, name, loads[i].len);
				break;
			}
			if (r)
				break;
		}
		off += total;
	}
	free(loads);
	if (r) {
		free(b.raw);
		free(b.names);
		return err_set(e, -r, "jitdump: out of memory");
	}
	return jb_finish(&b, out, e);
}

int symz_jitdump_load(const char *path, struct symz_jit_map **out, struct err *e)
{
	uint8_t *data;
	size_t size;
	int r = read_file(path, MAX_JIT_FILE, &data, &size, e);
	if (r)
		return err_set(e, -r, "%s: cannot read jitdump", path);
	r = symz_jitdump_parse(data, size, out, e);
	free(data);
	if (r)
		err_set(e, -r, "%s", path);
	return r;
}

const struct symz_jit_entry *symz_jit_lookup(const struct symz_jit_map *m, uint64_t frame_addr,
					     enum symz_frame_kind kind)
{
	uint64_t addr;
	if (!symz_lookup_pc(frame_addr, kind, &addr))
		return NULL;
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->entries[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct symz_jit_entry *x = &m->entries[lo - 1];
	return addr - x->start < x->size ? x : NULL;
}

size_t symz_jit_count(const struct symz_jit_map *m)
{
	return m->n;
}

void symz_jit_free(struct symz_jit_map *m)
{
	if (!m)
		return;
	free(m->entries);
	free(m->names);
	free(m);
}
