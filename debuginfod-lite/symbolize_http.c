/* POST /symbolize: batch symbolization of (build-ID, file address) pairs
 * through the debuginfo core's symbolization indexes (symbolize.c).  The
 * answer grows in the request's memory budget. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/parse.h"
#include "symbolizer/symbolizer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 64

/* --- the response --- */

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
	int refused;        /* -EBUSY / -EFBIG: the budget said no */
	struct core_ctx *ctx; /* whose budget the buffer grows in */
};

static void out_mem(struct out *o, const char *p, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n)
			cap *= 2;
		int rc = core_reserve(o->ctx, cap - o->cap);
		if (rc < 0) {
			o->failed = true;
			o->refused = rc;
			return;
		}
		char *nb = realloc(o->buf, cap);
		if (!nb) {
			o->failed = true;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

/* One number with a short fixed text around it. */
static void out_fmt(struct out *o, const char *fmt, uint64_t v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), fmt, v);
	out_mem(o, tmp, (size_t)n);
}

static void out_write(void *ctx, const char *p, size_t n)
{
	out_mem(ctx, p, n);
}

static void out_json_str(struct out *o, const char *s)
{
	symz_write_json_string(out_write, o, s);
}

static void out_frames(struct out *o, const struct symz_frame *fr, size_t n)
{
	symz_write_frames_json(out_write, o, fr, n, 0);
}

static const char *error_text(int rc)
{
	if (rc == 0)
		return "no debuginfo";
	if (rc == -EAGAIN)
		return "upstream unavailable, retry later";
	if (rc == -EFBIG)
		return "debuginfo too large to index (over --max-decompressed or the memory budget)";
	return "cannot build the symbolization index";
}

struct symbolize_job {
	struct symbolize_batch batch;
	struct out out;
};

static void job_free(void *p)
{
	struct symbolize_job *j = p;
	symbolize_batch_free(&j->batch);
	free(j->out.buf);
	free(j);
}

/* Runs on a worker thread with the connection suspended. */
static int symbolize_work(struct request *r)
{
	struct symbolize_job *j = r->job;
	struct out *o = &j->out;
	struct symz_frame frames[MAX_FRAMES];
	o->ctx = &r->ctx;
	out_str(o, "{\"results\":[");
	for (size_t i = 0; i < j->batch.n_entries && !o->failed; i++) {
		const struct symbolize_entry *en = &j->batch.entries[i];
		/* Between entries: nobody to answer, or no room to build. */
		if (client_gone(r))
			return -ECANCELED;
		out_str(o, i ? ",{\"build_id\":\"" : "{\"build_id\":\"");
		out_str(o, en->build_id);
		out_str(o, "\"");
		struct symz_handle h = { 0 };
		int rc = symz_acquire(&r->ctx, en->build_id, &h);
		if (rc == -EBUSY)
			return -EBUSY;
		if (rc != 1) {
			out_str(o, ",\"error\":");
			out_json_str(o, error_text(rc));
			out_str(o, "}");
			continue;
		}
		out_str(o, ",\"addresses\":[");
		for (size_t k = 0; k < en->count && !o->failed; k++) {
			uint64_t addr = j->batch.addrs[en->first + k];
			size_t n = symz_lookup(h.idx, addr, en->kind, frames, MAX_FRAMES);
			if (n > MAX_FRAMES)
				n = MAX_FRAMES;
			if (!en->inlines && n > 1)
				n = 1;
			out_str(o, k ? ",{\"address\":" : "{\"address\":");
			out_fmt(o, "\"0x%" PRIx64 "\",\"frames\":", addr);
			out_frames(o, frames, n);
			out_str(o, "}");
		}
		r->srv->symz_addresses += en->count;
		symz_release(r->srv->core, &h);
		out_str(o, "]}");
	}
	out_str(o, "]}\n");
	return o->refused ? o->refused : o->failed ? -ENOMEM : 0;
}

enum MHD_Result handle_symbolize(struct request *r)
{
	struct symbolize_job *j = r->job;
	if (r->slow_state == 2) {
		if (r->slow_result == -ECANCELED)
			return respond_reset(r); /* the client left */
		if (r->slow_result == -EBUSY || r->slow_result == -EFBIG)
			return respond_refusal(r, r->slow_result,
					       r->slow_result == -EBUSY
						       ? "server busy (memory budget or --max-heavy), retry later"
						       : "the answer is larger than the memory budget:"
							 " send fewer addresses");
		if (r->slow_result < 0)
			return respond_text(r, 503, "out of memory\n");
		char *body = j->out.buf;
		size_t len = j->out.len;
		j->out.buf = NULL;
		return respond_compressible(r, 200, "application/json", body, len);
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return MHD_NO;
	r->job = j;
	r->job_free = job_free;
	struct symbolize_limits lim = {
		.max_requests = 10000,
		.max_addresses = r->srv->cfg.symbolize_max_addresses,
	};
	char msg[256];
	int rc = symbolize_parse(r->body.data ? r->body.data : "", r->body.len, &lim, &j->batch,
				 msg, sizeof(msg));
	if (rc == -E2BIG)
		return respond_text(r, 413, "%s\n", msg);
	if (rc < 0)
		return respond_text(r, 400, "%s\n", msg);
	copy_forwarding(r);
	if (!heavy_begin(r))
		return respond_refusal(r, -EBUSY, "too many heavy requests at once, retry later");
	return run_slow(r, symbolize_work);
}
