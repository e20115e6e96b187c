/* agent-hooks: the node side of the profiler, as a library any agent can
 * embed, and the state of the profiler-agent daemon built on it.
 *
 * The pieces, each usable alone:
 *   table_fetcher  unwind tables by build-ID from the server (ETag, on-disk
 *                  cache, one request per build-ID per run, backoff), plugged
 *                  into the bpf/ loader as its table source;
 *   lifecycle      exec/fork/exit events from BPF (lifecycle.bpf.c);
 *   agent_profile  samples -> one pprof per interval (build-IDs, normalized
 *                  addresses, frame kinds by position, labels);
 *   shipper        POST /profiles, --output DIR, an on-disk buffer while the
 *                  server is down;
 *   jit_store      perf-map / jitdump snapshots, deduplicated by SHA-256;
 *   jvm            asks HotSpot JVMs for their perf maps;
 *   kernel_info    the kernel's build-ID, _text, modules and kallsyms
 *                  snapshot, for normalized kernel frames.
 * struct agent ties them together (agent.c); profiler-agent's main() only
 * parses options.  The wire format is documented in docs/profiler-agent.md. */
#ifndef AGENT_HOOKS_H
#define AGENT_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "common/sha256.h"
#include "bpf/loader.h"
#include "pprof/pprof.h"

/* ---- unwind tables from the server ---- */
struct table_fetcher;
/* Defaults of the two limits below.  The largest real table seen is
 * libLLVM's, 2.5 MB; the cache holds about a hundred typical tables. */
#define TABLE_FETCHER_MAX_TABLE_DEFAULT (64ull << 20)
#define TABLE_FETCHER_CACHE_MAX_DEFAULT (256ull << 20)
#define TABLE_FETCHER_RETRY_DEFAULT_S 30
struct table_fetcher_options {
	const char *server;    /* base URL; NULL: never fetch (compile locally) */
	const char *cache_dir; /* on-disk cache; NULL: none */
	unsigned timeout_ms;   /* per request (connect + transfer) */
	uint64_t max_table_bytes; /* larger bodies are refused unread; 0: default */
	uint64_t cache_max_bytes; /* tables + ETags on disk (LRU); 0: default */
	/* Seconds before a table the server lacked is asked for again (then
	 * doubling up to 300); 0: TABLE_FETCHER_RETRY_DEFAULT_S. */
	unsigned retry_min_s;
	/* Told once per rejected table or purged cache entry; NULL: silent. */
	void (*log)(void *arg, const char *msg);
	void *log_arg;
};
struct table_fetcher_stats {
	uint64_t requests;     /* HTTP requests made */
	uint64_t ok_200, not_modified_304, not_found_404, other_status, transport_errors;
	uint64_t disk_hits;    /* tables served from the cache without a request */
	uint64_t build_ids;    /* distinct build-IDs asked for */
	uint64_t max_requests_per_build_id;
	uint64_t fallbacks;    /* answers "compile locally" */
	/* Fetched bodies refused before anything was loaded or written. */
	uint64_t rejected_build_id, rejected_arch, rejected_too_big, rejected_malformed;
	uint64_t cache_purged;    /* cache entries that failed validation when read */
	uint64_t cache_evictions; /* least recently used entries removed for room */
	uint64_t cache_strays;    /* leftover temporary or orphan ETag files removed */
	uint64_t cache_skipped;   /* valid tables larger than the whole cache */
	uint64_t cache_bytes;     /* bytes of tables and ETags in the cache now */
};
int table_fetcher_new(struct table_fetcher **out, const struct table_fetcher_options *opt,
		      struct err *e);
void table_fetcher_free(struct table_fetcher *f);
/* The loader's table source (struct loader_table_source.fetch). */
int table_fetcher_get(void *fetcher, const char *build_id, const char *path, uint8_t **data,
		      size_t *size, struct err *e);
/* For a table compiled locally because the server lacked it or was down:
 * once its retry time (or the server's) has come, ask again.  0 with the server's table (checked,
 * cached) in *data (malloc'ed); -EAGAIN not due (no request made);
 * -ENOENT still none (the next retry is later, doubled).  Cheap when not
 * due: call it for every compiled table now and then. */
int table_fetcher_recheck(struct table_fetcher *f, const char *build_id, uint8_t **data,
			  size_t *size);
/* Is a recheck due for any build-ID (a cheap test before a pass over the
 * loaded tables)?  After the pass, _done moves the retry time of those due
 * but not rechecked (no longer loaded) one backoff step on. */
bool table_fetcher_recheck_due(const struct table_fetcher *f);
void table_fetcher_recheck_done(struct table_fetcher *f);
void table_fetcher_stats(const struct table_fetcher *f, struct table_fetcher_stats *st);

/* ---- process lifecycle (BPF) ---- */
struct lifecycle;
struct lifecycle_event;
typedef void (*lifecycle_fn)(void *arg, const struct lifecycle_event *ev);
/* follow_all: every process; otherwise those passed to lifecycle_follow()
 * and their descendants. */
int lifecycle_open(struct lifecycle **out, bool follow_all, lifecycle_fn fn, void *arg,
		   struct err *e);
int lifecycle_follow(struct lifecycle *lc, pid_t pid, struct err *e);
/* Wait up to timeout_ms for events and deliver them; count or -errno. */
int lifecycle_poll(struct lifecycle *lc, int timeout_ms);
void lifecycle_close(struct lifecycle *lc);

/* ---- JIT symbol snapshots ---- */
#define JIT_HASH_HEX 65
enum jit_kind { JIT_PERF_MAP = 0, JIT_DUMP = 1 };
struct jit_snapshot {
	char hash[JIT_HASH_HEX]; /* SHA-256 of the content, lowercase hex */
	uint8_t kind;            /* enum jit_kind */
	uint8_t *content;        /* owned by the store */
	size_t size;
	bool shipped;            /* content already sent once */
};
struct jit_store {
	struct vec snaps; /* struct jit_snapshot */
	size_t max_bytes; /* per file */
	uint64_t bytes;   /* content held */
};
void jit_store_init(struct jit_store *js, size_t max_file_bytes);
void jit_store_free(struct jit_store *js);
/* Snapshot the perf map (or jitdump) of pid, through /proc/PID/root, with
 * the pid as the process sees it (containers).  Returns the snapshot
 * (shared by identical content) or NULL with e set (-ENOENT: none). */
struct jit_snapshot *jit_snapshot_take(struct jit_store *js, pid_t pid, struct err *e);
/* The pid as the process itself sees it (containers); pid when unknown. */
pid_t jit_ns_pid(pid_t pid);

/* ---- HotSpot JVMs (jvm.c) ---- */
/* Does pid map libjvm.so? */
bool jvm_is_hotspot(pid_t pid);
/* Have the JVM write /tmp/perf-<pid>.map now, as `jcmd <pid>
 * Compiler.perfmap` does (its attach socket, started by SIGQUIT when
 * needed); waits up to timeout_ms for the socket and for each I/O. */
int jvm_write_perf_map(pid_t pid, int timeout_ms, struct err *e);

/* ---- the kernel (kernel.c) ---- */
#define KERNEL_MODULE_NAME 64
struct kernel_module {
	char name[KERNEL_MODULE_NAME];
	uint64_t base, size;               /* as /proc/modules shows them */
	char build_id[BUILD_ID_HEX_MAX];   /* "" when it has none */
};
struct kernel_info {
	char build_id[BUILD_ID_HEX_MAX];   /* from /sys/kernel/notes; "" = none */
	uint64_t text;                     /* runtime address of _text */
	struct vec modules;                /* struct kernel_module */
	/* The normalized snapshot in the delta form (symbolizer.h, "kernel
	 * frames"), NUL-terminated, inside kallsyms_comment: the comment
	 * "profiler-agent.kallsyms sha256=<h> encoding=text\n<snapshot>" that
	 * carries it, built once so shipping it copies nothing more. */
	char *kallsyms;
	size_t kallsyms_size;
	char *kallsyms_comment;
	char kallsyms_sha[SHA256_HEX_LEN + 1];
	bool kallsyms_shipped;             /* its content went out once */
};
/* Read all of it (needs root: kallsyms addresses, /proc/modules).  root:
 * NULL for the host; a directory holding proc/ and sys/ for tests. */
int kernel_info_read(struct kernel_info *k, const char *root, struct err *e);
void kernel_info_free(struct kernel_info *k);
/* A kernel runtime address as a frame: the module it is in (index into
 * modules) or -1 for the kernel image, and the offset from that module's
 * base or from _text. */
int kernel_normalize(const struct kernel_info *k, uint64_t addr, uint64_t *offset);
/* "profiler-agent.kernel build_id=<id> text=0x<_text> kallsyms=<sha256>" */
void kernel_info_comment(const struct kernel_info *k, char *out, size_t size);

/* ---- profile aggregation ---- */
struct agent_profile {
	struct pprof_profile *p;
	uint64_t start_real_ns, start_mono_ns;
	uint64_t period_ns;
	struct vec object_mapping; /* struct object_mapping, indexed by loader object id */
	struct vec jit_mappings;   /* struct jit_mapping_ref: one per pid with JIT frames */
	uint64_t kernel_mapping;
	struct vec kmod_mappings;  /* uint64_t mapping id per kernel module, 0 = none yet */
	const struct kernel_info *kernel; /* NULL: kernel frames left as runtime addresses */
	uint64_t samples;          /* samples added */
};
struct agent_proc_labels {
	const char *pid, *comm, *exe;
};
int agent_profile_begin(struct agent_profile *ap, uint32_t frequency_hz, struct err *e);
/* Add one sample record: kernel frames (leaf first) then user frames.
 * labels: host, pid, comm, exe, then the extra k=v pairs. */
int agent_profile_add(struct agent_profile *ap, const struct sampler_loader *ld,
		      const struct sample_record *rec, const char *const (*labels)[2],
		      size_t nlabels, struct err *e);
/* Pids that have frames in JIT (anonymous) code in this profile. */
size_t agent_profile_jit_pids(const struct agent_profile *ap, pid_t *pids, size_t max);
/* Name the JIT mapping of pid after its snapshot, and attach the content
 * as a comment the first time that snapshot is shipped. */
int agent_profile_attach_jit(struct agent_profile *ap, pid_t pid, struct jit_snapshot *snap,
			     struct err *e);
/* Finish (time, duration, comments) and serialize gzipped at gzip_level
 * (1..9; the agent uses 6, and 1 for the profile that carries the kallsyms
 * snapshot, most of whose cost is compressing it). */
int agent_profile_finish(struct agent_profile *ap, const char *const *comments, size_t ncomments,
			 int gzip_level, uint8_t **out, size_t *size, struct err *e);
void agent_profile_free(struct agent_profile *ap);

/* ---- shipping ---- */
struct shipper;
struct shipper_options {
	const char *url;        /* POST target (…/profiles); NULL: none */
	const char *output_dir; /* every profile also written here; NULL: none */
	const char *buffer_dir; /* profiles waiting for the server */
	uint64_t buffer_max_bytes;
	unsigned timeout_ms;
	const char *token;      /* sent as "Authorization: Bearer"; NULL: none */
};
struct shipper_stats {
	uint64_t profiles, sent, buffered, dropped, rejected, written;
	uint64_t buffer_bytes;
};
int shipper_new(struct shipper **out, const struct shipper_options *opt, struct err *e);
/* Hand over one gzipped pprof: written to the output dir, then sent, or
 * buffered (oldest first on resend) when the server cannot take it. */
int shipper_submit(struct shipper *s, const uint8_t *data, size_t size, struct err *e);
/* Resend buffered profiles, oldest first, until one fails. */
int shipper_drain(struct shipper *s, struct err *e);
void shipper_stats(const struct shipper *s, struct shipper_stats *st);
/* Does the server the profiles go to (<base>/profiles) already hold the
 * snapshot with this SHA-256 (HEAD <base>/perf-maps/<sha>: 200)?  false on
 * any doubt (another receiver, an error): the caller then sends it. */
bool shipper_snapshot_stored(struct shipper *s, const char *sha);
void shipper_free(struct shipper *s);

/* ---- the daemon ---- */
#define AGENT_MAX_LABELS 32
struct agent_options {
	const char *server;         /* tables (and profiles unless profile_url) */
	const char *profile_url;    /* POST target; default <server>/profiles */
	const char *token;          /* Bearer token for POST /profiles, or NULL */
	pid_t pid;                  /* 0 with all */
	bool all;
	uint32_t frequency_hz;
	double duration_s;          /* 0: until SIGINT/SIGTERM */
	double interval_s;
	const char *output_dir;
	const char *cache_dir;
	uint64_t cache_max_bytes;   /* tables + ETags in cache_dir (LRU) */
	uint64_t table_max_bytes;   /* a fetched or cached table over this is refused */
	const char *buffer_dir;
	uint64_t buffer_max_bytes;
	const char *stats_file;     /* JSON counters written at exit */
	bool kernel;
	bool no_server_profiles;    /* --output only */
	const char *labels[AGENT_MAX_LABELS][2];
	size_t nlabels;
	struct sampler_limits lim;
	double table_idle_s;        /* unload tables unused this long */
	unsigned table_retry_s;     /* first retry of a table the server lacked */
};
void agent_options_default(struct agent_options *o);
/* Run until the duration ends, the --pid process exits, or *stop is set
 * (from a signal handler).  Returns 0 or -errno with e set. */
int agent_run(const struct agent_options *o, volatile int *stop, struct err *e);

#endif
