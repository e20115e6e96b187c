/* Internal: the in-memory view of an index, shared by the reader and builder. */
#ifndef SYMZ_INDEX_H
#define SYMZ_INDEX_H

#include "symbolizer/symbolizer.h"
#include "symbolizer/symz_format.h"

struct symz_index {
	const uint8_t *data; /* the serialized index */
	size_t size;
	void *owned;         /* malloc'ed copy (built, or realigned) */
	bool mapped;         /* data is an mmap of a file */
	const struct symz_header *hdr;
	const char *strings;
	size_t strings_size;
	const uint32_t *files;
	size_t nfiles;
	const struct symz_node *nodes;
	size_t nnodes;
	const uint64_t *scope_addr;
	const uint32_t *scope_node;
	size_t nseg;
	const uint64_t *line_addr;
	const uint32_t *line_off;
	size_t nblocks;
	const uint8_t *line_data;
	size_t line_size;
	struct symz_stats stats; /* filled by the builder */
};

#endif
