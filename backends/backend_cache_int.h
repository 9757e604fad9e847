/* backend_cache_int.h - what the cache backend's two files share. */
#ifndef LODEFS_BACKEND_CACHE_INT_H
#define LODEFS_BACKEND_CACHE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "backends/backend.h"
#include "backends/backend_cache.h"

/*
 * backend_cache.c has the backend and the cache files; this header and
 * backend_cache_index.c the in-memory index of those files.
 *
 * Invariants, all under `lock`: an entry is in the LRU list iff it knows
 * a file (fsize > 0); `bytes` is the sum of fsize, `pinned` the sum over
 * mapped entries.  This process changes files (renames, unlinks) only
 * under the lock, so a stat under the lock tells which file the index is
 * about.  Puts and dels drop the cached copy before calling inner and bump
 * the entry's generation; a fetch or a put installs its file only if the
 * generation is the one it started with and no put or del is in flight,
 * so no reader in this process sees bytes older than what inner holds.
 */

#define CACHE_FOOTER_SIZE   32	 /* struct cache_footer */
#define CACHE_TMP_STALE_SEC 3600 /* a temporary file older than this is dead */
#define CACHE_HEX	    32	 /* a file name: 128 bits in hex */
#define CACHE_REL_MAX	    (3 + CACHE_HEX + 1) /* "xx/" name NUL */

/*
 * The file this process verified last, trusted while it is the same
 * inode and size: files are only ever replaced (rename), and a replacement
 * that reuses the inode number was written whole.  Not the mtime, which
 * any process using the file may set.
 */
struct cache_memo {
	bool ok;
	dev_t dev;
	ino_t ino;
	off_t size;
};

struct cache_ent {
	struct cache_ent *chain;	 /* next in its hash bucket */
	struct cache_ent *newer, *older; /* LRU list, while fsize > 0 */
	XXH128_hash_t h;
	uint64_t fsize; /* bytes of its cache file, 0: no file known */
	uint64_t gen;	/* set from cache_backend.gen_seq by put and del */
	struct cache_memo memo;
	unsigned pins;	  /* live mappings of this entry's file */
	unsigned writing; /* puts and dels of the key in flight */
	bool fetching;	  /* a thread is fetching the key from inner */
};

struct cache_backend {
	struct backend be; /* first: the public part */
	struct backend *inner;
	char *root; /* absolute path of the cache directory */
	char *where;
	int rootfd, tmpfd;
	uint64_t max;
	atomic_ulong tmpseq;
	pthread_mutex_t lock;	/* guards everything below */
	pthread_cond_t fetched; /* an entry's fetching went false */
	struct cache_ent **buckets;
	size_t nbuckets; /* power of two */
	size_t nents;
	struct cache_ent *newest, *oldest;
	uint64_t bytes, pinned;
	uint64_t gen_seq;
	struct backend_cache_stats st;
};

struct cache_name {
	XXH128_hash_t h;
	char rel[CACHE_REL_MAX]; /* relative to the root */
};

/* The file name of a key's hash: "xx/<32 hex>", CACHE_REL_MAX bytes. */
void cache_rel(XXH128_hash_t h, char *rel);
void cache_name_of(const char *key, struct cache_name *n);

void cache_memo_set(struct cache_memo *m, const struct stat *st);
bool cache_memo_matches(const struct cache_memo *m, const struct stat *st);

/* The index: call these with `lock` held. */

struct cache_ent *cache_find(struct cache_backend *c, XXH128_hash_t h);

/* Finds or adds the entry for `h`; NULL when out of memory. */
struct cache_ent *cache_ent_get(struct cache_backend *c, XXH128_hash_t h);

/* Frees `e` if nothing refers to it any more. */
void cache_ent_put(struct cache_backend *c, struct cache_ent *e);

/* Records that e's file has `size` bytes (0: none) and was just used. */
void cache_set_file(struct cache_backend *c, struct cache_ent *e,
		    uint64_t size);

/* A mapped entry's file is not evicted. */
void cache_pin(struct cache_backend *c, struct cache_ent *e);
void cache_unpin(struct cache_backend *c, struct cache_ent *e);

/* Removes e's file from the disk and the index. */
void cache_unlink(struct cache_backend *c, struct cache_ent *e);

/*
 * Removes the least recently used files that are not mapped, except
 * `keep`, until the rest fit in max.  Another process may be reading a
 * file removed here: its open descriptor stays valid.
 */
void cache_evict(struct cache_backend *c, const struct cache_ent *keep);

/* At open, before any other thread can see `c`. */

/*
 * Removes temporary files nobody has written to for an hour: left by a
 * process that died.  Younger ones may be another process's, in flight.
 */
void cache_clean_tmp(struct cache_backend *c);

/*
 * Indexes the files already in the cache directory, least recently
 * written first, so the LRU order survives a restart; removes files too
 * short to be a cache file.  Returns 0 or -ENOMEM.
 */
int cache_scan(struct cache_backend *c);

#endif
