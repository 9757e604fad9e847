/* backend_cache.h - a local, bounded, checksummed cache in front of a backend. */
#ifndef LODEFS_BACKEND_CACHE_H
#define LODEFS_BACKEND_CACHE_H

#include <stdint.h>

#include "backends/backend.h"

/*
 * Wraps `inner` (and takes ownership: closing the wrapper closes it) with a
 * cache of whole objects in the directory `dir` (created if absent), at
 * most `max_bytes` of cached data (0: 1 GiB) beyond what is mapped.
 *
 * The store's objects are written once and never changed in place (see
 * docs/FORMAT.md: segments, checkpoint objects and the format file are
 * put once under a fresh key), so a cached copy of a key is valid for as
 * long as the key exists: get, get_range and map are served from the
 * cache without asking `inner`; put writes through to `inner` first and
 * caches what it wrote; del deletes from `inner` and the cache; list and
 * head always ask `inner` (they are how other writers' changes are seen).
 *
 * Each cache file records the object's key, size and xxh3; a file that
 * does not verify (torn, damaged, another key) is dropped and the object
 * fetched again, the first time it is used by this process.  map()
 * returns a read-only mapping of the cache file, so a store on a remote
 * backend opens like a local one.  Least recently used files are removed
 * when the total goes over max_bytes (a mapped file's data stays valid
 * until unmap).  Several processes may share one cache directory.
 *
 * Returns 0 or a negative errno (inner is closed on failure too).
 */
int backend_cache_open(struct backend *inner, const char *dir,
		       uint64_t max_bytes, struct backend **out);

struct backend_cache_stats {
	unsigned long long hits, misses, evictions, corrupt;
	uint64_t bytes; /* cached now */
};

/* Returns -EINVAL if `be` is not a cache backend. */
int backend_cache_get_stats(struct backend *be, struct backend_cache_stats *st);

#endif
