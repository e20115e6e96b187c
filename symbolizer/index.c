/* Reading a serialized symbolization index: open, validate, look up. */
#include "symbolizer/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper inline chains than this are refused at lookup (a corrupt parent
 * cycle must not loop forever). */
#define MAX_CHAIN 1024

static int check_section(const struct symz_header *h, size_t file_size, int id, size_t elem,
			 struct err *e)
{
	const struct symz_section *s = &h->sec[id];
	if (s->offset % 8 || s->offset > file_size || s->size > file_size - s->offset)
		return err_set(e, EINVAL, "index section %d out of bounds (offset %llu size %llu)",
			       id, (unsigned long long)s->offset, (unsigned long long)s->size);
	if (elem && s->size % elem)
		return err_set(e, EINVAL, "index section %d size %llu not a multiple of %zu", id,
			       (unsigned long long)s->size, elem);
	return 0;
}

static int validate(struct symz_index *x, struct err *e)
{
	const struct symz_header *h = (const void *)x->data;
	if (x->size < sizeof(*h) || memcmp(h->magic, SYMZ_MAGIC, 8) != 0)
		return err_set(e, EINVAL, "not a symbolization index (bad magic)");
	if (h->version != SYMZ_VERSION)
		return err_set(e, EPROTO, "index format version %u, this reader knows %u", h->version,
			       SYMZ_VERSION);
	if (h->header_size != sizeof(*h) || h->file_size != x->size)
		return err_set(e, EINVAL, "index truncated or header size wrong (%llu bytes, header "
			       "says %llu)", (unsigned long long)x->size,
			       (unsigned long long)h->file_size);
	if (h->build_id_len > sizeof(h->build_id))
		return err_set(e, EINVAL, "index build-ID length %u too long", h->build_id_len);
	static const size_t elem[SYMZ_SEC_COUNT] = {
		[SYMZ_SEC_STRINGS] = 1, [SYMZ_SEC_FILES] = 4,
		[SYMZ_SEC_NODES] = sizeof(struct symz_node), [SYMZ_SEC_SCOPE_ADDR] = 8,
		[SYMZ_SEC_SCOPE_NODE] = 4, [SYMZ_SEC_LINE_ADDR] = 8, [SYMZ_SEC_LINE_OFF] = 4,
		[SYMZ_SEC_LINE_DATA] = 1,
	};
	for (int i = 0; i < SYMZ_SEC_COUNT; i++) {
		int r = check_section(h, x->size, i, elem[i], e);
		if (r)
			return r;
	}
	x->hdr = h;
	x->strings = (const char *)x->data + h->sec[SYMZ_SEC_STRINGS].offset;
	x->strings_size = h->sec[SYMZ_SEC_STRINGS].size;
	if (x->strings_size == 0 || x->strings[0] != 0 || x->strings[x->strings_size - 1] != 0)
		return err_set(e, EINVAL, "index string table malformed");
	x->files = (const void *)(x->data + h->sec[SYMZ_SEC_FILES].offset);
	x->nfiles = h->sec[SYMZ_SEC_FILES].size / 4;
	x->nodes = (const void *)(x->data + h->sec[SYMZ_SEC_NODES].offset);
	x->nnodes = h->sec[SYMZ_SEC_NODES].size / sizeof(struct symz_node);
	x->scope_addr = (const void *)(x->data + h->sec[SYMZ_SEC_SCOPE_ADDR].offset);
	x->scope_node = (const void *)(x->data + h->sec[SYMZ_SEC_SCOPE_NODE].offset);
	x->nseg = h->sec[SYMZ_SEC_SCOPE_ADDR].size / 8;
	x->line_addr = (const void *)(x->data + h->sec[SYMZ_SEC_LINE_ADDR].offset);
	x->line_off = (const void *)(x->data + h->sec[SYMZ_SEC_LINE_OFF].offset);
	x->nblocks = h->sec[SYMZ_SEC_LINE_ADDR].size / 8;
	x->line_data = x->data + h->sec[SYMZ_SEC_LINE_DATA].offset;
	x->line_size = h->sec[SYMZ_SEC_LINE_DATA].size;
	if (h->sec[SYMZ_SEC_SCOPE_NODE].size / 4 != x->nseg ||
	    h->sec[SYMZ_SEC_LINE_OFF].size / 4 != x->nblocks)
		return err_set(e, EINVAL, "index arrays of different lengths");
	for (size_t i = 0; i < x->nfiles; i++)
		if (x->files[i] >= x->strings_size)
			return err_set(e, EINVAL, "index file %zu: bad string offset", i);
	for (size_t i = 0; i < x->nnodes; i++) {
		const struct symz_node *n = &x->nodes[i];
		if (n->name >= x->strings_size || n->linkage >= x->strings_size ||
		    (n->parent != SYMZ_NONE && n->parent >= x->nnodes) ||
		    (n->call_file != SYMZ_NONE && n->call_file >= x->nfiles))
			return err_set(e, EINVAL, "index node %zu out of range", i);
	}
	for (size_t i = 0; i < x->nseg; i++) {
		if (i && x->scope_addr[i] <= x->scope_addr[i - 1])
			return err_set(e, EINVAL, "index scope %zu not sorted", i);
		if (x->scope_node[i] != SYMZ_NONE && x->scope_node[i] >= x->nnodes)
			return err_set(e, EINVAL, "index scope %zu: bad node", i);
	}
	for (size_t i = 0; i < x->nblocks; i++) {
		if (x->line_off[i] >= x->line_size ||
		    (i && (x->line_addr[i] <= x->line_addr[i - 1] ||
			   x->line_off[i] <= x->line_off[i - 1])))
			return err_set(e, EINVAL, "index line block %zu malformed", i);
	}
	return 0;
}

static int open_common(struct symz_index *x, struct symz_index **out, struct err *e)
{
	int r = validate(x, e);
	if (r) {
		symz_index_free(x);
		return r;
	}
	*out = x;
	return 0;
}

int symz_index_open_mem(const void *data, size_t size, struct symz_index **out, struct err *e)
{
	struct symz_index *x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(e, ENOMEM, "out of memory");
	if ((uintptr_t)data % 8) { /* arrays are read in place: keep them aligned */
		x->owned = malloc(size ? size : 1);
		if (!x->owned) {
			free(x);
			return err_set(e, ENOMEM, "out of memory");
		}
		memcpy(x->owned, data, size);
		data = x->owned;
	}
	x->data = data;
	x->size = size;
	return open_common(x, out, e);
}

int symz_index_open(const char *path, struct symz_index **out, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return err_set(e, EINVAL, "%s: not a non-empty regular file", path);
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	int saved = errno;
	close(fd);
	if (map == MAP_FAILED)
		return err_set(e, saved, "%s: cannot map: %s", path, strerror(saved));
	struct symz_index *x = calloc(1, sizeof(*x));
	if (!x) {
		munmap(map, (size_t)st.st_size);
		return err_set(e, ENOMEM, "out of memory");
	}
	x->data = map;
	x->size = (size_t)st.st_size;
	x->mapped = true;
	int r = open_common(x, out, e);
	if (r)
		err_set(e, -r, "%s", path); /* first error wins; keeps the cause */
	return r;
}

void symz_index_free(struct symz_index *x)
{
	if (!x)
		return;
	if (x->mapped)
		munmap((void *)x->data, x->size);
	free(x->owned);
	free(x);
}

const void *symz_index_data(const struct symz_index *x, size_t *size)
{
	*size = x->size;
	return x->data;
}

const struct symz_stats *symz_index_stats(const struct symz_index *x)
{
	return &x->stats;
}

const uint8_t *symz_index_build_id(const struct symz_index *x, size_t *len)
{
	*len = x->hdr->build_id_len;
	return x->hdr->build_id;
}

int symz_index_write(const struct symz_index *x, const char *path, struct err *e)
{
	return write_file_atomic(path, x->data, x->size, 0644, e);
}

/* Index of the last element <= key in a sorted array, or -1. */
static ptrdiff_t last_le(const uint64_t *a, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

static bool read_uleb(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

static bool read_sleb(const uint8_t **p, const uint8_t *end, int64_t *v)
{
	uint64_t r = 0;
	unsigned shift = 0;
	while (*p < end && shift < 64) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				r |= ~0ull << shift;
			*v = (int64_t)r;
			return true;
		}
	}
	return false;
}

/* The line-table row in force at addr: file index or SYMZ_NONE. */
static uint32_t line_lookup(const struct symz_index *x, uint64_t addr, uint32_t *line,
			    uint32_t *column)
{
	ptrdiff_t b = last_le(x->line_addr, x->nblocks, addr);
	if (b < 0)
		return SYMZ_NONE;
	const uint8_t *p = x->line_data + x->line_off[b];
	const uint8_t *end = (size_t)b + 1 < x->nblocks ? x->line_data + x->line_off[b + 1]
							 : x->line_data + x->line_size;
	uint64_t cur = x->line_addr[b], file = 0, col = 0;
	int64_t ln = 0;
	uint32_t found_file = SYMZ_NONE, found_line = 0, found_col = 0;
	for (unsigned i = 0; i < SYMZ_LINE_BLOCK && p < end; i++) {
		uint64_t delta;
		if (!read_uleb(&p, end, &delta) || !read_uleb(&p, end, &file))
			break;
		if (i && delta == 0)
			break; /* corrupt: entries must advance */
		cur += delta;
		if (cur > addr)
			break;
		if (file) {
			int64_t d;
			if (!read_sleb(&p, end, &d) || !read_uleb(&p, end, &col))
				break;
			ln += d;
			if (file - 1 >= x->nfiles)
				break;
			found_file = (uint32_t)(file - 1);
			found_line = (uint32_t)ln;
			found_col = (uint32_t)col;
		} else {
			found_file = SYMZ_NONE;
		}
	}
	*line = found_line;
	*column = found_col;
	return found_file;
}

static const char *str_or_null(const struct symz_index *x, uint32_t off)
{
	return off ? x->strings + off : NULL;
}

static void fill_function(const struct symz_index *x, const struct symz_node *n,
			  struct symz_frame *f)
{
	f->function = str_or_null(x, n->name);
	f->linkage_name = n->linkage ? x->strings + n->linkage : f->function;
	f->decl_line = n->decl_line;
	f->entry = n->entry;
	f->inlined = n->flags & SYMZ_N_INLINED;
	f->from_symtab = n->flags & SYMZ_N_SYMTAB;
}

bool symz_index_first_function(const struct symz_index *x, uint64_t *addr)
{
	for (size_t i = 0; i < x->nseg; i++)
		if (x->scope_node[i] != SYMZ_NONE) {
			*addr = x->scope_addr[i];
			return true;
		}
	return false;
}

bool symz_lookup_pc(uint64_t addr, enum symz_frame_kind kind, uint64_t *pc)
{
	if (kind == SYMZ_RETURN_ADDRESS) {
		if (addr == 0)
			return false;
		addr -= 1;
	}
	*pc = addr;
	return true;
}

size_t symz_lookup(const struct symz_index *x, uint64_t frame_addr, enum symz_frame_kind kind,
		   struct symz_frame *frames, size_t max)
{
	uint64_t addr;
	if (!symz_lookup_pc(frame_addr, kind, &addr))
		return 0;
	uint32_t line = 0, column = 0;
	uint32_t file = line_lookup(x, addr, &line, &column);
	ptrdiff_t s = last_le(x->scope_addr, x->nseg, addr);
	uint32_t node = s >= 0 ? x->scope_node[s] : SYMZ_NONE;
	if (node == SYMZ_NONE && file == SYMZ_NONE)
		return 0;
	struct symz_frame f;
	memset(&f, 0, sizeof(f));
	if (file != SYMZ_NONE) {
		f.file = x->strings + x->files[file];
		f.line = line;
		f.column = column;
	}
	if (node != SYMZ_NONE)
		fill_function(x, &x->nodes[node], &f);
	size_t n = 0;
	if (max > 0)
		frames[0] = f;
	n = 1;
	while (node != SYMZ_NONE && n < MAX_CHAIN) {
		const struct symz_node *cur = &x->nodes[node];
		if (cur->parent == SYMZ_NONE)
			break;
		memset(&f, 0, sizeof(f));
		fill_function(x, &x->nodes[cur->parent], &f);
		if (cur->call_file != SYMZ_NONE)
			f.file = x->strings + x->files[cur->call_file];
		f.line = cur->call_line;
		f.column = cur->call_column;
		if (n < max)
			frames[n] = f;
		n++;
		node = cur->parent;
	}
	return n;
}
