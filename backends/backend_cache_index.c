/* backend_cache_index.c - the cache's index: key hashes, LRU, bound, scan. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend_cache_int.h"

static const char cache_hex[] = "0123456789abcdef";

void cache_rel(XXH128_hash_t h, char *rel)
{
	XXH128_canonical_t c;
	size_t i;

	XXH128_canonicalFromHash(&c, h);
	for (i = 0; i < sizeof(c.digest); i++) {
		rel[3 + 2 * i] = cache_hex[c.digest[i] >> 4];
		rel[3 + 2 * i + 1] = cache_hex[c.digest[i] & 0xf];
	}
	rel[0] = rel[3];
	rel[1] = rel[4];
	rel[2] = '/';
	rel[3 + CACHE_HEX] = '\0';
}

void cache_name_of(const char *key, struct cache_name *n)
{
	n->h = XXH3_128bits(key, strlen(key));
	cache_rel(n->h, n->rel);
}

/* Parses a file name of subdirectory `sub`; false if it is not ours. */
static bool cache_parse_name(const char *name, const char *sub,
			     XXH128_hash_t *h)
{
	XXH128_canonical_t c;
	size_t i;

	if (strlen(name) != CACHE_HEX || strncmp(name, sub, 2) != 0)
		return false;
	for (i = 0; i < CACHE_HEX; i++) {
		char ch = name[i];
		int v = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;

		if (v < 0)
			return false;
		if (i % 2 == 0)
			c.digest[i / 2] = (unsigned char)(v << 4);
		else
			c.digest[i / 2] |= (unsigned char)v;
	}
	*h = XXH128_hashFromCanonical(&c);
	return true;
}

/* --- the index: entries by hash, and the LRU list --------------------- */

static size_t cache_bucket(const struct cache_backend *c, XXH128_hash_t h)
{
	return (size_t)h.low64 & (c->nbuckets - 1);
}

struct cache_ent *cache_find(struct cache_backend *c, XXH128_hash_t h)
{
	struct cache_ent *e;

	for (e = c->buckets[cache_bucket(c, h)]; e; e = e->chain) {
		if (XXH128_isEqual(e->h, h))
			return e;
	}
	return NULL;
}

static int cache_grow(struct cache_backend *c)
{
	size_t n = c->nbuckets * 2, i;
	struct cache_ent **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (i = 0; i < c->nbuckets; i++) {
		struct cache_ent *e = c->buckets[i], *next;

		for (; e; e = next) {
			size_t j = (size_t)e->h.low64 & (n - 1);

			next = e->chain;
			e->chain = b[j];
			b[j] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return 0;
}

struct cache_ent *cache_ent_get(struct cache_backend *c, XXH128_hash_t h)
{
	struct cache_ent *e = cache_find(c, h);
	size_t b;

	if (e)
		return e;
	if (c->nents >= c->nbuckets && cache_grow(c))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->h = h;
	b = cache_bucket(c, h);
	e->chain = c->buckets[b];
	c->buckets[b] = e;
	c->nents++;
	return e;
}

void cache_ent_put(struct cache_backend *c, struct cache_ent *e)
{
	struct cache_ent **p;

	if (e->fsize || e->pins || e->writing || e->fetching)
		return;
	for (p = &c->buckets[cache_bucket(c, e->h)]; *p != e; p = &(*p)->chain)
		;
	*p = e->chain;
	c->nents--;
	free(e);
}

static void cache_lru_unlink(struct cache_backend *c, struct cache_ent *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void cache_lru_push(struct cache_backend *c, struct cache_ent *e)
{
	e->newer = NULL;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

void cache_set_file(struct cache_backend *c, struct cache_ent *e, uint64_t size)
{
	if (e->fsize) {
		c->bytes -= e->fsize;
		if (e->pins)
			c->pinned -= e->fsize;
		cache_lru_unlink(c, e);
	}
	e->fsize = size;
	if (size) {
		c->bytes += size;
		if (e->pins)
			c->pinned += size;
		cache_lru_push(c, e);
	} else {
		e->memo.ok = false;
	}
}

void cache_pin(struct cache_backend *c, struct cache_ent *e)
{
	if (e->pins++ == 0)
		c->pinned += e->fsize;
}

void cache_unpin(struct cache_backend *c, struct cache_ent *e)
{
	if (--e->pins == 0)
		c->pinned -= e->fsize;
}

void cache_memo_set(struct cache_memo *m, const struct stat *st)
{
	m->ok = true;
	m->dev = st->st_dev;
	m->ino = st->st_ino;
	m->size = st->st_size;
}

bool cache_memo_matches(const struct cache_memo *m, const struct stat *st)
{
	return m->ok && m->dev == st->st_dev && m->ino == st->st_ino &&
	       m->size == st->st_size;
}

void cache_unlink(struct cache_backend *c, struct cache_ent *e)
{
	char rel[CACHE_REL_MAX];

	cache_rel(e->h, rel);
	unlinkat(c->rootfd, rel, 0);
	cache_set_file(c, e, 0);
}

void cache_evict(struct cache_backend *c, const struct cache_ent *keep)
{
	struct cache_ent *e = c->oldest, *newer;

	while (e && c->bytes - c->pinned > c->max) {
		newer = e->newer;
		if (e != keep && !e->pins) {
			cache_unlink(c, e);
			c->st.evictions++;
			cache_ent_put(c, e);
		}
		e = newer;
	}
}

/* Opens the entries of `dfd` (closing it on every path) as a DIR. */
static DIR *cache_opendir(int dfd)
{
	DIR *d = fdopendir(dfd);

	if (!d)
		close(dfd);
	return d;
}

void cache_clean_tmp(struct cache_backend *c)
{
	time_t stale = time(NULL) - CACHE_TMP_STALE_SEC;
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd;

	fd = openat(c->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd < 0 ? NULL : cache_opendir(fd);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (d->d_name[0] != '.' &&
		    fstatat(c->tmpfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < stale)
			unlinkat(c->tmpfd, d->d_name, 0);
	}
	closedir(dir);
}

struct cache_found {
	struct cache_ent *e;
	uint64_t size;
	struct timespec mtime;
};

static int cache_found_cmp(const void *a, const void *b)
{
	const struct cache_found *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return (x->mtime.tv_nsec > y->mtime.tv_nsec) -
	       (x->mtime.tv_nsec < y->mtime.tv_nsec);
}

/* Adds the cache files of subdirectory `sub` to *found. */
static int cache_scan_sub(struct cache_backend *c, const char *sub,
			  struct cache_found **found, size_t *n, size_t *cap)
{
	struct dirent *d;
	struct stat st;
	XXH128_hash_t h;
	DIR *dir;
	int fd, rc = 0;

	fd = openat(c->rootfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dir = cache_opendir(fd);
	if (!dir)
		return -errno;
	while (!rc && (d = readdir(dir))) {
		struct cache_found *f;

		if (!cache_parse_name(d->d_name, sub, &h) ||
		    fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			    0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((size_t)st.st_size <= CACHE_FOOTER_SIZE) {
			/* Torn by a crash: no key fits, nobody can use it. */
			unlinkat(dirfd(dir), d->d_name, 0);
			continue;
		}
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 256;

			f = realloc(*found, ncap * sizeof(*f));
			if (!f) {
				rc = -ENOMEM;
				break;
			}
			*found = f;
			*cap = ncap;
		}
		f = &(*found)[(*n)++];
		f->e = cache_ent_get(c, h);
		f->size = (uint64_t)st.st_size;
		f->mtime = st.st_mtim;
		if (!f->e)
			rc = -ENOMEM;
	}
	closedir(dir);
	return rc;
}

int cache_scan(struct cache_backend *c)
{
	struct cache_found *found = NULL;
	size_t n = 0, cap = 0, i;
	int rc = 0;

	for (i = 0; i < 256 && !rc; i++) {
		char sub[3] = { cache_hex[i >> 4], cache_hex[i & 0xf], '\0' };

		rc = cache_scan_sub(c, sub, &found, &n, &cap);
	}
	if (!rc && n) {
		qsort(found, n, sizeof(*found), cache_found_cmp);
		for (i = 0; i < n; i++)
			cache_set_file(c, found[i].e, found[i].size);
	}
	free(found);
	return rc;
}
