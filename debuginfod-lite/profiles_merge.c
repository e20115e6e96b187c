/* The profile store's query and merge (profiles.h): the matching
 * profiles merged one at a time inside the caller's memory budget, then
 * symbolized through the debuginfo core. */
#include "debuginfod-lite/profiles.h"
#include "debuginfod-lite/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hold `want` bytes of the caller's budget for the merge (grown, never
 * shrunk here).  0, -EBUSY or -EFBIG. */
static int merge_hold(struct core_ctx *ctx, struct profile_merge *j, uint64_t want)
{
	if (want <= j->held)
		return 0;
	if (want > ctx->core->budget.limit)
		return -EFBIG;
	int rc = core_reserve(ctx, want - j->held);
	if (rc == 0)
		j->held = want;
	return rc;
}

/* Give back what the merge holds (it failed, or was abandoned). */
static void merge_release(struct core_ctx *ctx, struct profile_merge *j)
{
	core_unreserve(ctx, j->held);
	j->held = 0;
}

static void merge_refused(struct profile_merge *j, struct profile_store *ps, int rc, size_t n,
			  uint64_t stored)
{
	j->status = rc;
	if (rc == -EFBIG)
		snprintf(j->msg, sizeof(j->msg), "merging the %zu matching profiles (%llu MiB stored)"
			 " needs more than the memory budget (%llu MiB): narrow from/to or add"
			 " label=key=value (or id=N)", n, (unsigned long long)(stored >> 20),
			 (unsigned long long)(profiles_core(ps)->budget.limit >> 20));
	else
		snprintf(j->msg, sizeof(j->msg), "memory budget full, retry later");
}

/* Merge the matching profiles (their symbolized copies when asked for
 * and present), then symbolize what is still raw.  One profile at a time:
 * the accumulator (measured with pprof_memory) plus what the next profile
 * needs stays inside the reservation, or the merge stops (413 when it can
 * never fit, 503 when it may later).  Between profiles it checks that the
 * client is still there. */
int profiles_merge(struct profile_store *ps, struct core_ctx *ctx, struct profile_merge *j)
{
	struct err e = { { 0 } };
	struct profile_row *rows = NULL;
	size_t n = 0;
	j->status = 503;
	if (profiles_query(ps, &j->q, &rows, &n, &e) < 0) {
		snprintf(j->msg, sizeof(j->msg), "%s", e.msg);
		return 0;
	}
	/* Before starting, from the blobs' sizes: the profile that needs the
	 * most must fit the budget on its own, or no merge can. */
	uint64_t stored = 0, single = 0;
	for (size_t i = 0; i < n; i++) {
		bool sym = j->symbolize && rows[i].sym[0];
		uint64_t blob, plain;
		if (profile_blob_sizes(ps, sym ? rows[i].sym : rows[i].raw, &blob, &plain, &e) < 0)
			continue;
		stored += blob;
		uint64_t need = blob + plain * (1 + PROFILE_PARSE_FACTOR + PROFILE_MERGE_FACTOR);
		single = need > single ? need : single;
	}
	if (single > profiles_core(ps)->budget.limit) {
		merge_refused(j, ps, -EFBIG, n, stored);
		free(rows);
		return 0;
	}
	struct pprof_profile *acc = NULL;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (core_abandoned(ctx)) {
			rc = -ECANCELED;
			break;
		}
		const char *hash = j->symbolize && rows[i].sym[0] ? rows[i].sym : rows[i].raw;
		uint8_t *data;
		size_t size;
		struct pprof_profile *p = NULL;
		uint64_t blob, plain;
		if (profile_blob_sizes(ps, hash, &blob, &plain, &e) < 0) {
			log_warn("msg=\"profile %lld: %s\"", (long long)rows[i].id, e.msg);
			j->skipped++;
			continue;
		}
		/* The accumulator, this blob, its decompressed copy, its
		 * parse, and what merging it may add. */
		uint64_t want = (acc ? pprof_memory(acc) : 0) + blob +
				plain * (1 + PROFILE_PARSE_FACTOR + PROFILE_MERGE_FACTOR);
		rc = merge_hold(ctx, j, want);
		if (rc < 0)
			break;
		if (profile_blob_read(ps, hash, &data, &size, &e) < 0) {
			log_warn("msg=\"profile %lld: %s\"", (long long)rows[i].id, e.msg);
			j->skipped++;
			continue;
		}
		rc = pprof_parse(data, size, &p, &e);
		free(data);
		if (rc < 0) {
			log_warn("msg=\"profile %lld: %s\"", (long long)rows[i].id, e.msg);
			j->skipped++;
			rc = 0;
			continue;
		}
		if (!acc) {
			acc = p;
			j->merged++;
			continue;
		}
		struct err me = { { 0 } };
		int mrc = pprof_merge(acc, p, &me);
		if (mrc < 0) {
			if (mrc == -ENOMEM)
				rc = -ENOMEM;
			j->skipped++; /* other sample types */
		} else {
			j->merged++;
		}
		pprof_free(p);
	}
	free(rows);
	if (rc == -ECANCELED) {
		log_info("msg=\"GET /profiles abandoned: the client left\" merged=%zu", j->merged);
		pprof_free(acc);
		merge_release(ctx, j);
		return rc;
	}
	if (rc == -EBUSY || rc == -EFBIG) {
		merge_refused(j, ps, rc, n, stored);
		pprof_free(acc);
		merge_release(ctx, j);
		return 0;
	}
	if (rc == 0 && !acc) {
		j->status = 404;
		snprintf(j->msg, sizeof(j->msg), "no stored profile matches");
		return 0;
	}
	/* Symbolizing may double the profile's heap (lines, functions);
	 * serializing makes a copy at most as large as that heap. */
	if (rc == 0 && core_abandoned(ctx))
		rc = -ECANCELED;
	if (rc == 0 &&
	    (rc = merge_hold(ctx, j, (j->symbolize ? 3 : 2) * pprof_memory(acc))) < 0) {
		merge_refused(j, ps, rc, n, stored);
		pprof_free(acc);
		merge_release(ctx, j);
		return 0;
	}
	if (rc == 0 && j->symbolize) {
		struct profile_resolver *res = profile_resolver_new(ps, ctx);
		rc = res ? profile_symbolize(res, acc, NULL, &e) : -ENOMEM;
		profile_resolver_free(res);
	}
	if (rc == 0 && core_abandoned(ctx))
		rc = -ECANCELED;
	if (rc == 0)
		rc = pprof_serialize(acc, true, &j->out, &j->out_size, &e);
	pprof_free(acc);
	if (rc == -ECANCELED)
		log_info("msg=\"GET /profiles abandoned: the client left\" merged=%zu", j->merged);
	if (rc < 0)
		merge_release(ctx, j);
	if (rc == -ECANCELED)
		return rc;
	/* What stays is the answer, held until it is sent. */
	if (rc == 0 && j->out_size < j->held) {
		core_unreserve(ctx, j->held - j->out_size);
		j->held = j->out_size;
	}
	if (rc < 0) {
		snprintf(j->msg, sizeof(j->msg), "%s", e.msg[0] ? e.msg : "out of memory");
		return 0;
	}
	j->status = 200;
	return 0;
}

