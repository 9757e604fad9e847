/* backend_cache.h - a local, bounded, checksummed cache in front of a backend. */
#ifndef LODEFS_BACKEND_CACHE_H
#define LODEFS_BACKEND_CACHE_H

#include <stdint.h>

#include "backends/backend.h"

/*
 * Wraps `inner` (and takes ownership: closing the wrapper closes it) with a
 * cache of whole objects in the directory `dir` (created if absent), at
 * most `max_bytes` of cache files (0: 1 GiB) beyond those mapped.
 *
 * The store's objects are written once and never changed in place (see
 * docs/FORMAT.md: segments, checkpoint objects and the format file are
 * put once under a fresh key), so a cached copy of a key is valid for as
 * long as the key exists: get, get_range and map are served from the
 * cache without asking `inner`; put writes through to `inner` first and
 * caches what it wrote; del deletes from `inner` and the cache; list and
 * head always ask `inner` (they are how other writers' changes are seen).
 * Within one cache backend, put and del of a key that is cached are
 * handled exactly (the old copy is dropped before `inner` changes); a
 * process that writes different bytes under a key another process has
 * cached is not noticed: the store's keys never get different bytes.
 *
 * A miss fetches the whole object with inner's get (holding it in memory
 * once) and caches it, for get_range too: the engine reads a segment's
 * header with get_range and then the whole segment.  Only one thread
 * fetches a key at a time; the others wait and then read its file.  A
 * cache file that cannot be written (disk full, no permission) costs only
 * the caching: the read still succeeds, and map() then hands out the
 * fetched buffer.
 *
 * Each cache file records the object's key, size and xxh3; a file that
 * does not verify (torn, damaged, another key) is dropped and the object
 * fetched again.  This process checks a file's bytes the first time it
 * uses it, then trusts it while its inode and size are unchanged (files
 * are only ever replaced, by rename), so mapping a large object again
 * does not hash it again.  map() returns
 * a read-only mapping of the cache file (the object's bytes start at
 * offset 0), so a store on a remote backend opens like a local one.
 *
 * Least recently used files are removed when the total goes over
 * max_bytes, except those this process has mapped (and the object just
 * fetched).  The order is kept in memory and seeded at open from the
 * files' mtimes, which a use sets to now when it is a minute old.
 * Several processes may share one cache directory (temporary file and
 * rename, no locks); each enforces the bound over the files it knows (found
 * at open or used since), and a file another process removes is fetched
 * again.  A mapping stays valid when its file is removed, but not if the
 * file is truncated by hand (SIGBUS), as with the local backend.
 *
 * Returns 0 or a negative errno (inner is closed on failure too).
 */
int backend_cache_open(struct backend *inner, const char *dir,
		       uint64_t max_bytes, struct backend **out);

struct backend_cache_stats {
	unsigned long long hits, misses, evictions;
	unsigned long long corrupt; /* cache files that failed the checks */
	unsigned long long errors;  /* cache files not written or not read */
	uint64_t bytes;		    /* in the cache files this process knows */
};

/* Returns -EINVAL if `be` is not a cache backend. */
int backend_cache_get_stats(struct backend *be, struct backend_cache_stats *st);

#endif
