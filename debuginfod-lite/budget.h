/* The server's memory budget (--memory-budget): one pool of bytes that
 * every large transient allocation reserves from before it is made:
 * decompressed sections, symbolization-index builds, unwind compiles,
 * profile merges and parses, buffered request bodies, compressed answers.
 *
 * A reservation is an estimate taken before the work starts (the work then
 * checks it stays inside it where it can measure itself), so refusals come
 * early and cost nothing.  Invariant: reserved <= limit, always. */
#ifndef DEBUGINFOD_LITE_BUDGET_H
#define DEBUGINFOD_LITE_BUDGET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum budget_refusal {
	BUDGET_BUSY,  /* would exceed the budget now: may fit later (503 + Retry-After) */
	BUDGET_NEVER, /* larger than the whole budget (413) */
	BUDGET_REFUSAL_COUNT,
};

struct mem_budget {
	pthread_mutex_t lock;
	uint64_t limit;    /* bytes; fixed after budget_init */
	uint64_t reserved; /* guarded by lock */
	uint64_t peak;     /* highest `reserved` seen, guarded by lock */
	atomic_uint_fast64_t refusals[BUDGET_REFUSAL_COUNT];
};

void budget_init(struct mem_budget *b, uint64_t limit);
void budget_destroy(struct mem_budget *b);
/* Reserve `bytes`: 0, -EBUSY (would exceed the budget now) or -EFBIG
 * (more than the whole budget).  Refusals are counted. */
int budget_reserve(struct mem_budget *b, uint64_t bytes);
void budget_release(struct mem_budget *b, uint64_t bytes);
/* A snapshot for /metrics. */
void budget_read(struct mem_budget *b, uint64_t *reserved, uint64_t *peak);

/* The default budget: the smaller of 1 GiB and a quarter of physical RAM. */
uint64_t budget_default_limit(void);

#endif
