/* /metrics: Prometheus text exposition of per-route counters and latency
 * histograms, federation and store figures. */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/body_cache.h"
#include "debuginfod-lite/profiles.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double latency_bucket_le[LATENCY_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10,
};

static const int status_codes[STATUS_SLOTS - 1] = {
	200, 201, 206, 304, 400, 401, 403, 404, 405, 406, 413, 414, 416, 422, 503,
};

static int status_slot(int status)
{
	for (int i = 0; i < STATUS_SLOTS - 1; i++)
		if (status_codes[i] == status)
			return i;
	return STATUS_SLOTS - 1;
}

void metrics_record(struct request *r)
{
	if (r->route_index < 0)
		return;
	struct route_metrics *m = &r->srv->route_metrics[r->route_index];
	m->by_status[status_slot(r->status)]++;
	uint64_t us = (now_ns() - r->start_ns) / 1000;
	m->latency_sum_us += us;
	for (int i = 0; i < LATENCY_BUCKETS; i++)
		if ((double)us / 1e6 <= latency_bucket_le[i]) {
			m->latency[i]++;
			break;
		}
	m->bytes += r->bytes;
}

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *nb = realloc(t->buf, cap);
		if (!nb) {
			t->failed = true;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

static void put_text(void *ctx, const char *text)
{
	put(ctx, "%s", text);
}

/* The storage backends: latency and errors of the metadata database(s)
 * and the blob store, and the local cache of remote blobs. */
static void put_backends(struct text *t, struct server *s)
{
	struct db *dbs[2] = { s->core->db, s->core->profiles_db };
	const char *names[2] = { "artifacts", "profiles" };
	put(t, "# TYPE backend_statements_total counter\n"
	       "# TYPE backend_errors_total counter\n"
	       "# TYPE backend_unavailable_total counter\n"
	       "# TYPE backend_latency_seconds_sum counter\n");
	for (int i = 0; i < 2; i++) {
		if (!dbs[i])
			continue;
		const struct db_metrics *m = db_metrics(dbs[i]);
		put(t, "backend_statements_total{backend=\"db\",use=\"%s\"} %llu\n"
		       "backend_errors_total{backend=\"db\",use=\"%s\"} %llu\n"
		       "backend_unavailable_total{backend=\"db\",use=\"%s\"} %llu\n"
		       "backend_latency_seconds_sum{backend=\"db\",use=\"%s\"} %.6f\n",
		    names[i], (unsigned long long)m->statements, names[i],
		    (unsigned long long)m->errors, names[i], (unsigned long long)m->unavailable,
		    names[i], (double)m->latency_us / 1e6);
	}
	const struct blob_metrics *b = blobs_metrics(s->core->blobs);
	put(t, "backend_statements_total{backend=\"blobs\",use=\"put\"} %llu\n"
	       "backend_statements_total{backend=\"blobs\",use=\"get\"} %llu\n"
	       "backend_errors_total{backend=\"blobs\",use=\"all\"} %llu\n"
	       "backend_unavailable_total{backend=\"blobs\",use=\"all\"} %llu\n"
	       "backend_latency_seconds_sum{backend=\"blobs\",use=\"all\"} %.6f\n"
	       "# TYPE blob_cache_hits_total counter\nblob_cache_hits_total %llu\n"
	       "# TYPE blob_cache_misses_total counter\nblob_cache_misses_total %llu\n"
	       "# TYPE blob_cache_evictions_total counter\nblob_cache_evictions_total %llu\n"
	       "# TYPE blob_cache_bytes gauge\nblob_cache_bytes %llu\n",
	    (unsigned long long)b->puts, (unsigned long long)b->gets,
	    (unsigned long long)b->errors, (unsigned long long)b->unavailable,
	    (double)b->latency_us / 1e6, (unsigned long long)b->cache_hits,
	    (unsigned long long)b->cache_misses, (unsigned long long)b->cache_evictions,
	    (unsigned long long)b->cache_bytes);
	blobs_backend_metrics(s->core->blobs, put_text, t);
	uint64_t hits, misses;
	store_cache_stats(s->core->store, &hits, &misses);
	put(t, "# TYPE lookup_cache_hits_total counter\nlookup_cache_hits_total %llu\n"
	       "# TYPE lookup_cache_misses_total counter\nlookup_cache_misses_total %llu\n",
	    (unsigned long long)hits, (unsigned long long)misses);
	struct body_cache_stats bs;
	body_cache_stats(s->bodies, &bs);
	put(t, "# TYPE body_cache_hits_total counter\nbody_cache_hits_total %llu\n"
	       "# TYPE body_cache_misses_total counter\nbody_cache_misses_total %llu\n"
	       "# TYPE body_cache_fills_total counter\nbody_cache_fills_total %llu\n"
	       "# TYPE body_cache_bytes gauge\nbody_cache_bytes %llu\n",
	    (unsigned long long)bs.hits, (unsigned long long)bs.misses,
	    (unsigned long long)bs.fills, (unsigned long long)bs.bytes);
}

enum MHD_Result handle_metrics(struct request *r)
{
	struct server *s = r->srv;
	struct text t = { .buf = malloc(8192), .cap = 8192 };
	if (!t.buf)
		return MHD_NO;
	put(&t, "# TYPE http_responses_total counter\n");
	for (int i = 0; i < server_route_count; i++)
		for (int j = 0; j < STATUS_SLOTS; j++) {
			uint64_t v = s->route_metrics[i].by_status[j];
			if (!v)
				continue;
			if (j < STATUS_SLOTS - 1)
				put(&t, "http_responses_total{route=\"%s\",code=\"%d\"} %llu\n",
				    server_routes[i].metric, status_codes[j], (unsigned long long)v);
			else
				put(&t, "http_responses_total{route=\"%s\",code=\"other\"} %llu\n",
				    server_routes[i].metric, (unsigned long long)v);
		}
	put(&t, "# TYPE http_request_duration_seconds histogram\n");
	for (int i = 0; i < server_route_count; i++) {
		struct route_metrics *m = &s->route_metrics[i];
		uint64_t cum = 0, count = 0;
		for (int j = 0; j < STATUS_SLOTS; j++)
			count += m->by_status[j];
		for (int j = 0; j < LATENCY_BUCKETS; j++) {
			cum += m->latency[j];
			put(&t, "http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
			    server_routes[i].metric, latency_bucket_le[j], (unsigned long long)cum);
		}
		put(&t, "http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
		    server_routes[i].metric, (unsigned long long)count);
		put(&t, "http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
		    server_routes[i].metric, (double)m->latency_sum_us / 1e6);
		put(&t, "http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    server_routes[i].metric, (unsigned long long)count);
		put(&t, "http_response_bytes_total{route=\"%s\"} %llu\n", server_routes[i].metric,
		    (unsigned long long)m->bytes);
	}
#define COUNTER(name, field) \
	put(&t, "# TYPE " name " counter\n" name " %llu\n", (unsigned long long)s->field)
	COUNTER("upstream_fetches_total", core->upstream_fetches);
	COUNTER("upstream_hits_total", core->upstream_hits);
	COUNTER("upstream_misses_total", core->upstream_misses);
	COUNTER("upstream_errors_total", core->upstream_errors);
	COUNTER("upstream_rejected_bodies_total", core->upstream_rejected);
	COUNTER("singleflight_joined_total", core->flights_joined);
	COUNTER("singleflight_joined_cluster_total", core->flights_joined_cluster);
	COUNTER("unwind_compiles_total", core->unwind_compiles);
	COUNTER("symbolize_index_builds_total", core->symz_builds);
	COUNTER("symbolize_index_build_failures_total", core->symz_build_failures);
	COUNTER("symbolize_index_failures_cached_total", core->symz_failures_cached);
	COUNTER("symbolize_index_loads_total", core->symz_loads);
	COUNTER("symbolize_index_cache_hits_total", core->symz_cache_hits);
	COUNTER("symbolize_addresses_total", symz_addresses);
	COUNTER("symbolz_addresses_total", symbolz_addresses);
	COUNTER("request_deadline_cuts_total", deadline_cuts);
	COUNTER("uploads_stored_total", uploads_ok);
	COUNTER("uploads_rejected_total", uploads_rejected);
	COUNTER("scan_indexed_total", scan_indexed);
	const struct profile_counters *pc = profiles_counters(s->profiles);
#define PCOUNTER(name, field) \
	put(&t, "# TYPE " name " counter\n" name " %llu\n", (unsigned long long)pc->field)
	PCOUNTER("profiles_stored_total", stored);
	PCOUNTER("profiles_duplicate_total", duplicate);
	PCOUNTER("profiles_rejected_total", rejected);
	PCOUNTER("profiles_symbolized_total", symbolized);
	PCOUNTER("profiles_deleted_total", deleted);
	PCOUNTER("perf_maps_stored_total", perf_maps_stored);
	COUNTER("reads_unauthorized_total", reads_unauthorized);
	COUNTER("heavy_refusals_total", heavy_refusals);
	COUNTER("work_abandoned_total", core->work_abandoned);
	COUNTER("transient_refusals_total", transient_refusals);
#undef COUNTER
	put(&t, "# TYPE upstream_refused_total counter\n"
		"upstream_refused_total{cap=\"global\"} %llu\n"
		"upstream_refused_total{cap=\"client\"} %llu\n",
	    (unsigned long long)s->core->upstream_refused_global,
	    (unsigned long long)s->core->upstream_refused_client);
	put(&t, "# TYPE upstream_delayed_total counter\nupstream_delayed_total %llu\n",
	    (unsigned long long)s->core->upstream_delayed);
	/* The HTTP edge (edge.c, docs/security.md) */
	put(&t, "# TYPE connections_open gauge\nconnections_open %llu\n"
		"# TYPE connections_max gauge\nconnections_max %u\n"
		"# TYPE connections_max_per_client gauge\nconnections_max_per_client %u\n"
		"# TYPE connections_refused_total counter\n"
		"connections_refused_total{reason=\"per_client\"} %llu\n"
		"connections_refused_total{reason=\"global\"} %llu\n"
		"# TYPE requests_refused_total counter\n"
		"requests_refused_total{reason=\"control_byte\"} %llu\n"
		"requests_refused_total{reason=\"smuggling\"} %llu\n"
		"requests_refused_total{reason=\"query\"} %llu\n",
	    (unsigned long long)s->conns_open, s->cfg.max_connections,
	    s->cfg.max_connections_per_client, (unsigned long long)s->conns_refused_client,
	    (unsigned long long)s->conns_refused_global, (unsigned long long)s->edge_refused_control,
	    (unsigned long long)s->edge_refused_smuggling, (unsigned long long)s->edge_refused_query);
	uint64_t reserved, peak;
	budget_read(&s->core->budget, &reserved, &peak);
	pthread_mutex_lock(&s->lock);
	unsigned heavy = s->heavy_active;
	pthread_mutex_unlock(&s->lock);
	put(&t, "# TYPE memory_budget_bytes gauge\nmemory_budget_bytes %llu\n"
		"# TYPE memory_reserved_bytes gauge\nmemory_reserved_bytes %llu\n"
		"# TYPE memory_reserved_peak_bytes gauge\nmemory_reserved_peak_bytes %llu\n"
		"# TYPE memory_budget_refusals_total counter\n"
		"memory_budget_refusals_total{reason=\"busy\"} %llu\n"
		"memory_budget_refusals_total{reason=\"never\"} %llu\n"
		"# TYPE heavy_active gauge\nheavy_active %u\n"
		"# TYPE heavy_limit gauge\nheavy_limit %u\n",
	    (unsigned long long)s->core->budget.limit, (unsigned long long)reserved,
	    (unsigned long long)peak, (unsigned long long)s->core->budget.refusals[BUDGET_BUSY],
	    (unsigned long long)s->core->budget.refusals[BUDGET_NEVER], heavy, s->heavy_limit);
	put(&t, "# TYPE scan_files gauge\nscan_files %llu\n", (unsigned long long)s->scan_files);
	struct store_stats st;
	struct err e = { { 0 } };
	if (store_stats(s->core->store, &st, &e) == 0)
		put(&t, "# TYPE store_candidates gauge\nstore_candidates %llu\n"
			"# TYPE store_external_files gauge\nstore_external_files %llu\n"
			"# TYPE store_blob_bytes gauge\nstore_blob_bytes %llu\n",
		    (unsigned long long)st.candidates, (unsigned long long)st.external,
		    (unsigned long long)st.blobs_bytes);
	put_backends(&t, s);
	if (t.failed) {
		free(t.buf);
		return MHD_NO;
	}
	return respond_buffer(r, 200, "text/plain; version=0.0.4", t.buf, t.len, true);
}

enum MHD_Result handle_healthz(struct request *r)
{
	return respond_text(r, 200, "ok\n");
}

enum MHD_Result handle_readyz(struct request *r)
{
	struct server *s = r->srv;
	struct err e = { { 0 } };
	int rc = db_ping(s->core->db, &e);
	if (rc == 0 && s->core->profiles_db != s->core->db)
		rc = db_ping(s->core->profiles_db, &e);
	const char *what = "database";
	if (rc == 0) {
		what = "blob store";
		rc = blobs_ping(s->core->blobs, &e);
	}
	if (rc < 0) {
		char why[600];
		snprintf(why, sizeof(why), "%s unreachable: %s", what, e.msg);
		return respond_refusal(r, -EBUSY, why);
	}
	return respond_text(r, 200, "ready\n");
}
