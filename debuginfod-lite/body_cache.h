/* The bodies of small artifacts, kept in memory by the HTTP layer so
 * that a warm GET of one is answered from memory, header and body in one
 * send, with no open, stat, read or close of its file.
 *
 * Measured with wrk -t2 -c16 on a 35 KB scanned executable, 2 cores,
 * loopback, beside nginx serving the same file (~62k req/s):
 *   sendfile after a separate header send (two packets)     ~42k req/s
 *   the file read per request, header and body in one send  ~48k req/s
 *   this cache (a stat per request for a scanned file)      ~73k req/s
 * (libmicrohttpd sends the header of an fd response apart from its body;
 * a memory response goes out in one sendmsg.)
 *
 * An entry is keyed by where the bytes live (a blob's content hash, or a
 * scanned file's path and modification time) and their size, so a changed
 * file is never answered from an old copy; the caller also checks that a
 * scanned file still has that size and time.  Entries are
 * reference-counted: a response being sent keeps its bytes alive after
 * the entry is replaced.  Direct-mapped slots and a byte cap
 * (--memory-cache) bound the memory. */
#ifndef DIL_BODY_CACHE_H
#define DIL_BODY_CACHE_H

#include <stdatomic.h>
#include <stdint.h>

#define BODY_CACHE_SLOTS 1024
#define BODY_CACHE_MAX_OBJECT (64 * 1024)

struct body {
	atomic_uint refs;
	uint64_t size;
	int64_t mtime;
	char *key;
	unsigned char data[];
};

struct body_cache;

/* cap: the most bytes kept (0: nothing is kept; fills still read). */
struct body_cache *body_cache_new(uint64_t cap);
void body_cache_free(struct body_cache *bc);

/* The cached bytes for key at this size, with a reference the caller
 * drops with body_unref(); NULL when there are none.  (A key that can
 * change content names its version: a scanned file's key holds its
 * modification time.) */
struct body *body_cache_get(struct body_cache *bc, const char *key, uint64_t size);

/* Read `size` bytes of fd from offset 0 and keep them under key, with
 * the time to answer as their Last-Modified (the slot's former entry is
 * dropped; over the cap, nothing is kept).  Returns the bytes with a
 * reference for the caller, or NULL (too large, out of memory, short
 * read). */
struct body *body_cache_fill(struct body_cache *bc, const char *key, uint64_t size,
			     int64_t mtime, int fd);

void body_unref(struct body *b);

struct body_cache_stats {
	uint64_t hits, misses, fills, bytes;
};
void body_cache_stats(struct body_cache *bc, struct body_cache_stats *out);

#endif
