/* The memory budget: see budget.h. */
#include "debuginfod-lite/budget.h"

#include <assert.h>
#include <errno.h>
#include <unistd.h>

void budget_init(struct mem_budget *b, uint64_t limit)
{
	pthread_mutex_init(&b->lock, NULL);
	b->limit = limit;
	b->reserved = 0;
	b->peak = 0;
	for (int i = 0; i < BUDGET_REFUSAL_COUNT; i++)
		atomic_init(&b->refusals[i], 0);
}

void budget_destroy(struct mem_budget *b)
{
	pthread_mutex_destroy(&b->lock);
}

int budget_reserve(struct mem_budget *b, uint64_t bytes)
{
	if (bytes > b->limit) {
		b->refusals[BUDGET_NEVER]++;
		return -EFBIG;
	}
	pthread_mutex_lock(&b->lock);
	int rc = 0;
	if (bytes > b->limit - b->reserved) {
		rc = -EBUSY;
	} else {
		b->reserved += bytes;
		if (b->reserved > b->peak)
			b->peak = b->reserved;
	}
	pthread_mutex_unlock(&b->lock);
	if (rc)
		b->refusals[BUDGET_BUSY]++;
	return rc;
}

void budget_release(struct mem_budget *b, uint64_t bytes)
{
	pthread_mutex_lock(&b->lock);
	assert(bytes <= b->reserved);
	b->reserved -= bytes <= b->reserved ? bytes : b->reserved;
	pthread_mutex_unlock(&b->lock);
}

void budget_read(struct mem_budget *b, uint64_t *reserved, uint64_t *peak)
{
	pthread_mutex_lock(&b->lock);
	*reserved = b->reserved;
	*peak = b->peak;
	pthread_mutex_unlock(&b->lock);
}

uint64_t budget_default_limit(void)
{
	/* A quarter of RAM leaves the rest to the page cache (which serves
	 * blobs with sendfile) and to neighbours; 1 GiB fits a large
	 * index build (libxul-sized DWARF is handled by a larger setting). */
	uint64_t cap = 1ull << 30;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages > 0 && page > 0) {
		uint64_t quarter = (uint64_t)pages * (uint64_t)page / 4;
		if (quarter < cap)
			cap = quarter;
	}
	return cap;
}
