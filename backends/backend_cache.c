/* backend_cache.c - a bounded, checksummed cache of whole objects on disk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "backends/backend_cache_int.h"
#include "backends/backend_int.h"

/*
 * The cache directory:
 *
 *   CACHEDIR.TAG   tells backup tools to skip the directory
 *   tmp/           cache files being written; removed at open once stale
 *   xx/<32 hex>    one file per key, named by the key's XXH3-128 in
 *                  lower-case hex (canonical, big-endian), in the
 *                  subdirectory named by its first byte
 *
 * A cache file holds the object's bytes from offset 0, so that map() maps
 * the file itself, page-aligned whatever the page size; then the key;
 * then a footer (struct cache_footer, in the machine's byte order: a cache
 * never leaves its machine).  The footer's object size, key and xxh3 are
 * checked before a file is used, so a file torn by a crash (files are
 * renamed into place without fsync: it may be empty, short or hold zeros),
 * damaged, or holding another key, is dropped and fetched again.
 */

#define CACHE_MAGIC	  "LODEFSCF"
#define CACHE_VERSION	  1
#define CACHE_DEFAULT_MAX (1ULL << 30)
#define CACHE_TMP_DIR	  "tmp"
#define CACHE_TAG	  "CACHEDIR.TAG"
#define CACHE_TOUCH_SEC	  60 /* how stale a used file's mtime may get */

struct cache_footer {
	char magic[8];
	uint32_t version;
	uint32_t keylen;
	uint64_t size; /* of the object */
	uint64_t hash; /* XXH3_64bits of the object */
};

_Static_assert(sizeof(struct cache_footer) == CACHE_FOOTER_SIZE, "footer");

/* What a read asks for; `op` says which members are used. */
enum cache_op { CACHE_GET, CACHE_RANGE, CACHE_MAP };

struct cache_req {
	enum cache_op op;
	const char *key;
	void **data;  /* GET */
	size_t *len;  /* GET, MAP */
	uint64_t off; /* RANGE: off, want, buf, got */
	size_t want;
	void *buf;
	size_t *got;
	const void **mdata; /* MAP: mdata, len, cookie */
	void **cookie;
};

/* A mapping handed out by map(). */
struct cache_map {
	void *addr; /* mmap'd cache file, or NULL */
	size_t len;
	void *heap;	       /* or a buffer from inner (no cache file) */
	struct cache_ent *ent; /* pinned while mapped, or NULL */
};

/* A cache file being written. */
struct cache_tmp {
	int rc; /* 0: written, open in fd; else -errno or -1 (not tried) */
	int fd;
	char name[64]; /* in tmp/ */
	struct stat st;
};

#define CACHE_TMP_NONE             \
	{                          \
		.rc = -1, .fd = -1 \
	}

static const char cache_empty[1];

static struct cache_backend *cache_of(struct backend *be)
{
	return (struct cache_backend *)be;
}

/* --- cache files ------------------------------------------------------- */

/*
 * Checks that the open file `fd` (`st`) is the cache file of `key` and
 * reads its footer into *f.  Returns 0, -EBADMSG if it is not, or -errno.
 */
static int cache_check_file(int fd, const struct stat *st, const char *key,
			    struct cache_footer *f)
{
	char tail[BACKEND_KEY_MAX + sizeof(*f)];
	size_t klen = strlen(key), n = klen + sizeof(*f), got;
	int rc;

	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size < n)
		return -EBADMSG;
	rc = backend_pread_all(fd, tail, n, (uint64_t)st->st_size - n, &got);
	if (rc)
		return rc;
	if (got != n)
		return -EBADMSG;
	memcpy(f, tail + klen, sizeof(*f));
	if (memcmp(f->magic, CACHE_MAGIC, sizeof(f->magic)) != 0 ||
	    f->version != CACHE_VERSION || f->keylen != klen ||
	    f->size != (uint64_t)st->st_size - n || memcmp(tail, key, klen))
		return -EBADMSG;
	if (f->size >= SIZE_MAX)
		return -EFBIG;
	return 0;
}

/*
 * Maps the object's bytes of a checked cache file into *addr (NULL for an
 * empty object) and, unless `verified`, checks them against the footer.
 * Returns 0, -EBADMSG or -errno.
 */
static int cache_map_file(int fd, const struct cache_footer *f, bool verified,
			  void **addr)
{
	const void *p = cache_empty;

	*addr = NULL;
	if (f->size) {
		*addr = mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, fd,
			     0);
		if (*addr == MAP_FAILED) {
			*addr = NULL;
			return -errno;
		}
		p = *addr;
	}
	if (!verified && XXH3_64bits(p, (size_t)f->size) != f->hash) {
		if (*addr)
			munmap(*addr, (size_t)f->size);
		*addr = NULL;
		return -EBADMSG;
	}
	return 0;
}

/*
 * Serves `rq` from the checked cache file `fd`, hashing what it reads
 * unless `verified`.  For a map, *m (allocated by the caller) gets the
 * mapping.  Returns 0, -EBADMSG if the bytes do not match, or -errno.
 */
static int cache_serve_file(struct cache_req *rq, int fd,
			    const struct cache_footer *f, bool verified,
			    struct cache_map *m)
{
	size_t size = (size_t)f->size, got;
	void *addr;
	char *buf;
	int rc;

	switch (rq->op) {
	case CACHE_GET:
		buf = malloc(size + 1);
		if (!buf)
			return -ENOMEM;
		rc = backend_pread_all(fd, buf, size, 0, &got);
		if (!rc && (got != size ||
			    (!verified && XXH3_64bits(buf, size) != f->hash)))
			rc = -EBADMSG;
		if (rc) {
			free(buf);
			return rc;
		}
		buf[size] = '\0';
		*rq->data = buf;
		*rq->len = size;
		return 0;
	case CACHE_RANGE:
		if (!verified) {
			rc = cache_map_file(fd, f, false, &addr);
			if (rc)
				return rc;
			if (addr)
				munmap(addr, size);
		}
		if (rq->off >= f->size) {
			*rq->got = 0;
			return 0;
		}
		got = f->size - rq->off < rq->want ? size - (size_t)rq->off
						   : rq->want;
		rc = backend_pread_all(fd, rq->buf, got, rq->off, rq->got);
		if (!rc && *rq->got != got)
			rc = -EBADMSG;
		return rc;
	case CACHE_MAP:
		rc = cache_map_file(fd, f, verified, &m->addr);
		m->len = size;
		return rc;
	}
	return -EINVAL;
}

/*
 * Writes the cache file of `key` holding `data` into tmp/.  Sets t->rc to
 * 0 with the file open read-write in t->fd, or to -errno leaving no file.
 */
static void cache_tmp_write(struct cache_backend *c, const char *key,
			    const void *data, size_t len, struct cache_tmp *t)
{
	char tail[BACKEND_KEY_MAX + sizeof(struct cache_footer)];
	struct cache_footer f = { .version = CACHE_VERSION };
	size_t klen = strlen(key);

	memcpy(f.magic, CACHE_MAGIC, sizeof(f.magic));
	f.keylen = (uint32_t)klen;
	f.size = len;
	f.hash = XXH3_64bits(data, len);
	memcpy(tail, key, klen);
	memcpy(tail + klen, &f, sizeof(f));
	snprintf(t->name, sizeof(t->name), "%ld-%lx-%lu", (long)getpid(),
		 (unsigned long)(uintptr_t)c, atomic_fetch_add(&c->tmpseq, 1));
	t->fd = openat(c->tmpfd, t->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		       0666);
	if (t->fd < 0) {
		t->rc = -errno;
		return;
	}
	t->rc = backend_write_all(t->fd, data, len);
	if (!t->rc)
		t->rc = backend_write_all(t->fd, tail, klen + sizeof(f));
	if (!t->rc && fstat(t->fd, &t->st) < 0)
		t->rc = -errno;
	if (t->rc) {
		close(t->fd);
		t->fd = -1;
		unlinkat(c->tmpfd, t->name, 0);
	}
}

/* Renames the written temporary file into place as e's file. */
static int cache_rename(struct cache_backend *c, struct cache_ent *e,
			const struct cache_tmp *t)
{
	char rel[CACHE_REL_MAX], sub[3];

	cache_rel(e->h, rel);
	if (renameat(c->tmpfd, t->name, c->rootfd, rel) < 0) {
		if (errno != ENOENT)
			return -errno;
		memcpy(sub, rel, 2);
		sub[2] = '\0';
		if (mkdirat(c->rootfd, sub, 0777) < 0 && errno != EEXIST)
			return -errno;
		if (renameat(c->tmpfd, t->name, c->rootfd, rel) < 0)
			return -errno;
	}
	cache_set_file(c, e, (uint64_t)t->st.st_size);
	cache_memo_set(&e->memo, &t->st);
	return 0;
}

/*
 * Under the lock, at the end of a fetch or put that began at generation
 * `gen`: makes `t` e's cache file, unless a put or del of the key began
 * since (then what inner holds is theirs to cache), else removes it.
 * With `want` (inner succeeded), failing to is counted as an error.
 * Returns whether `t` is now e's file.
 */
static bool cache_install(struct cache_backend *c, struct cache_ent *e,
			  uint64_t gen, const struct cache_tmp *t, bool want)
{
	bool current = e->gen == gen && !e->writing;
	bool done = !t->rc && current && cache_rename(c, e, t) == 0;

	if (!t->rc && !done)
		unlinkat(c->tmpfd, t->name, 0);
	if (want && current && !done)
		c->st.errors++;
	return done;
}

/* Is the file at `rel` the one open as `st`?  Call under the lock. */
static bool cache_same_file(struct cache_backend *c, const char *rel,
			    const struct stat *st)
{
	struct stat now;

	return fstatat(c->rootfd, rel, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	       now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* --- reads ------------------------------------------------------------- */

static int cache_map_new(struct cache_req *rq, struct cache_map **m)
{
	*m = NULL;
	if (rq->op != CACHE_MAP)
		return 0;
	*m = calloc(1, sizeof(**m));
	return *m ? 0 : -ENOMEM;
}

static void cache_map_out(struct cache_req *rq, struct cache_map *m)
{
	*rq->mdata = m->addr ? m->addr : m->heap ? m->heap : cache_empty;
	*rq->len = m->len;
	*rq->cookie = m;
}

/*
 * Serves `rq` from n's cache file.  Returns 0, -ENOENT when there is no
 * usable file (a damaged one is removed), or another -errno to return.
 */
static int cache_hit(struct cache_backend *c, struct cache_req *rq,
		     const struct cache_name *n, const struct cache_memo *memo)
{
	struct cache_footer f;
	struct cache_map *m;
	struct cache_ent *e;
	struct stat st;
	bool verified;
	int fd, rc;

	fd = openat(c->rootfd, n->rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno;
		pthread_mutex_lock(&c->lock);
		e = cache_find(c, n->h);
		/* Removed by another process, if it is still gone. */
		if (rc == ENOENT && e && e->fsize &&
		    faccessat(c->rootfd, n->rel, F_OK, 0) < 0) {
			cache_set_file(c, e, 0);
			cache_ent_put(c, e);
		}
		pthread_mutex_unlock(&c->lock);
		return rc == ENOMEM ? -ENOMEM : -ENOENT;
	}
	rc = cache_map_new(rq, &m);
	if (rc)
		goto out_close;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_free;
	}
	verified = cache_memo_matches(memo, &st);
	rc = cache_check_file(fd, &st, rq->key, &f);
	if (!rc)
		rc = cache_serve_file(rq, fd, &f, verified, m);
	if (rc == -ENOMEM)
		goto out_free;
	if (!rc && time(NULL) - st.st_mtime >= CACHE_TOUCH_SEC) {
		/* The LRU order of the next open; advice only. */
		futimens(fd, NULL);
	}
	pthread_mutex_lock(&c->lock);
	if (rc) {
		if (rc == -EBADMSG)
			c->st.corrupt++;
		else
			c->st.errors++;
		e = cache_find(c, n->h);
		if (cache_same_file(c, n->rel, &st)) {
			unlinkat(c->rootfd, n->rel, 0);
			if (e) {
				cache_set_file(c, e, 0);
				cache_ent_put(c, e);
			}
		}
		pthread_mutex_unlock(&c->lock);
		rc = -ENOENT;
		goto out_free;
	}
	c->st.hits++;
	e = NULL;
	if (cache_same_file(c, n->rel, &st))
		e = cache_ent_get(c, n->h);
	if (e) {
		cache_set_file(c, e, (uint64_t)st.st_size);
		cache_memo_set(&e->memo, &st);
		if (m) {
			cache_pin(c, e);
			m->ent = e;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (m)
		cache_map_out(rq, m);
	close(fd);
	return 0;
out_free:
	free(m);
out_close:
	close(fd);
	return rc;
}

/*
 * Fetches the object from inner and serves `rq` with it.  With `e` (whose
 * `fetching` the caller set, generation `gen`), also writes its cache
 * file and installs it if no put or del of the key came meanwhile.
 */
static int cache_fetch(struct cache_backend *c, struct cache_req *rq,
		       struct cache_ent *e, uint64_t gen)
{
	struct cache_tmp t = CACHE_TMP_NONE;
	struct cache_map *m = NULL;
	void *buf = NULL;
	size_t len = 0;
	int rc;

	rc = cache_map_new(rq, &m);
	if (!rc)
		rc = c->inner->get(c->inner, rq->key, &buf, &len);
	if (!rc && e)
		cache_tmp_write(c, rq->key, buf, len, &t);
	if (!t.rc && m && len) {
		/* The mapping outlives the file if it is not installed. */
		m->addr = mmap(NULL, len, PROT_READ, MAP_SHARED, t.fd, 0);
		if (m->addr == MAP_FAILED)
			m->addr = NULL;
	}
	if (e) {
		pthread_mutex_lock(&c->lock);
		e->fetching = false;
		pthread_cond_broadcast(&c->fetched);
		if (cache_install(c, e, gen, &t, !rc) && m) {
			cache_pin(c, e);
			m->ent = e;
		}
		cache_evict(c, e);
		cache_ent_put(c, e);
		pthread_mutex_unlock(&c->lock);
	}
	if (t.fd >= 0)
		close(t.fd);
	if (rc) {
		free(m);
		return rc;
	}
	switch (rq->op) {
	case CACHE_GET:
		*rq->data = buf;
		*rq->len = len;
		return 0;
	case CACHE_RANGE:
		*rq->got = 0;
		if (rq->off < len) {
			*rq->got = len - (size_t)rq->off < rq->want
					   ? len - (size_t)rq->off
					   : rq->want;
			memcpy(rq->buf, (char *)buf + rq->off, *rq->got);
		}
		break;
	case CACHE_MAP:
		m->len = len;
		if (!m->addr && len) {
			m->heap = buf;
			buf = NULL;
		}
		cache_map_out(rq, m);
		break;
	}
	free(buf);
	return 0;
}

/*
 * Serves a read: from the cache file if there is a good one, else from
 * inner, caching what it fetched.  One thread at a time fetches a key; the
 * others wait for it and then read its file.
 */
static int cache_read(struct cache_backend *c, struct cache_req *rq)
{
	struct cache_memo memo = { .ok = false };
	struct cache_ent *e;
	struct cache_name n;
	uint64_t gen = 0;
	bool writing;
	int rc;

	if (backend_key_check(rq->key))
		return -EINVAL;
	cache_name_of(rq->key, &n);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while ((e = cache_find(c, n.h)) && e->fetching)
			pthread_cond_wait(&c->fetched, &c->lock);
		writing = e && e->writing;
		if (e)
			memo = e->memo;
		pthread_mutex_unlock(&c->lock);
		if (!writing) {
			rc = cache_hit(c, rq, &n, &memo);
			if (rc != -ENOENT)
				return rc;
		}
		pthread_mutex_lock(&c->lock);
		e = cache_find(c, n.h);
		if (!e || !e->fetching)
			break;
	}
	c->st.misses++;
	/* While the key is being written, what inner holds is not cached. */
	if (e && e->writing) {
		e = NULL;
	} else {
		e = cache_ent_get(c, n.h);
		if (e) {
			e->fetching = true;
			gen = e->gen;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return cache_fetch(c, rq, e, gen);
}

static int cache_get(struct backend *be, const char *key, void **data,
		     size_t *len)
{
	struct cache_req rq = {
		.op = CACHE_GET, .key = key, .data = data, .len = len
	};

	return cache_read(cache_of(be), &rq);
}

static int cache_get_range(struct backend *be, const char *key, uint64_t off,
			   size_t len, void *buf, size_t *got)
{
	struct cache_req rq = { .op = CACHE_RANGE,
				.key = key,
				.off = off,
				.want = len,
				.buf = buf,
				.got = got };

	return cache_read(cache_of(be), &rq);
}

static int cache_map(struct backend *be, const char *key, const void **data,
		     size_t *len, void **cookie)
{
	struct cache_req rq = { .op = CACHE_MAP,
				.key = key,
				.mdata = data,
				.len = len,
				.cookie = cookie };

	return cache_read(cache_of(be), &rq);
}

static void cache_unmap(struct backend *be, void *cookie)
{
	struct cache_backend *c = cache_of(be);
	struct cache_map *m = cookie;

	if (!m)
		return;
	if (m->addr)
		munmap(m->addr, m->len);
	free(m->heap);
	if (m->ent) {
		pthread_mutex_lock(&c->lock);
		cache_unpin(c, m->ent);
		cache_ent_put(c, m->ent);
		cache_evict(c, NULL);
		pthread_mutex_unlock(&c->lock);
	}
	free(m);
}

/* --- writes, and what always asks inner -------------------------------- */

/*
 * Starts a put or del of `key`: drops the cached copy and marks the key
 * as being written.  Returns 0 with the entry in *ep and its new
 * generation in *gen, -EINVAL for an invalid key, or -ENOMEM.
 */
static int cache_write_begin(struct cache_backend *c, const char *key,
			     struct cache_ent **ep, uint64_t *gen)
{
	struct cache_name n;
	struct cache_ent *e;

	if (backend_key_check(key))
		return -EINVAL;
	cache_name_of(key, &n);
	pthread_mutex_lock(&c->lock);
	e = cache_ent_get(c, n.h);
	if (e) {
		*gen = e->gen = ++c->gen_seq;
		e->writing++;
		cache_unlink(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	*ep = e;
	return e ? 0 : -ENOMEM;
}

/* Ends what cache_write_begin() began, installing `t` if it still may. */
static void cache_write_end(struct cache_backend *c, struct cache_ent *e,
			    uint64_t gen, struct cache_tmp *t, bool want)
{
	pthread_mutex_lock(&c->lock);
	e->writing--;
	cache_install(c, e, gen, t, want);
	cache_evict(c, e);
	cache_ent_put(c, e);
	pthread_mutex_unlock(&c->lock);
	if (t->fd >= 0)
		close(t->fd);
}

static int cache_put(struct backend *be, const char *key, const void *data,
		     size_t len, const struct backend_cond *cond)
{
	struct cache_backend *c = cache_of(be);
	struct cache_tmp t = CACHE_TMP_NONE;
	struct cache_ent *e;
	uint64_t gen;
	int rc;

	rc = cache_write_begin(c, key, &e, &gen);
	if (rc)
		return rc;
	rc = c->inner->put(c->inner, key, data, len, cond);
	if (!rc)
		cache_tmp_write(c, key, data, len, &t);
	cache_write_end(c, e, gen, &t, !rc);
	return rc;
}

static int cache_del(struct backend *be, const char *key)
{
	struct cache_backend *c = cache_of(be);
	struct cache_tmp none = CACHE_TMP_NONE;
	struct cache_ent *e;
	uint64_t gen;
	int rc;

	rc = cache_write_begin(c, key, &e, &gen);
	if (rc)
		return rc;
	rc = c->inner->del(c->inner, key);
	cache_write_end(c, e, gen, &none, false);
	return rc;
}

/*
 * Each cached copy is dropped as del drops it; the deletes themselves go
 * to inner together, in as few requests as it can.
 */
static int cache_del_many(struct backend *be, const char *const *keys, size_t n)
{
	struct cache_backend *c = cache_of(be);
	struct cache_tmp none = CACHE_TMP_NONE;
	struct cache_ent **es;
	uint64_t *gens;
	size_t i, begun = 0;
	int rc = 0;

	es = calloc(n ? n : 1, sizeof(*es));
	gens = calloc(n ? n : 1, sizeof(*gens));
	if (!es || !gens) {
		free(es);
		free(gens);
		return -ENOMEM;
	}
	for (; begun < n && !rc; begun++)
		rc = cache_write_begin(c, keys[begun], &es[begun],
				       &gens[begun]);
	if (rc)
		begun--; /* the failed one was not begun */
	else
		rc = backend_del_many(c->inner, keys, n);
	for (i = 0; i < begun; i++)
		cache_write_end(c, es[i], gens[i], &none, false);
	free(es);
	free(gens);
	return rc;
}

static int cache_head(struct backend *be, const char *key,
		      struct backend_stat *st)
{
	struct cache_backend *c = cache_of(be);

	return c->inner->head(c->inner, key, st);
}

static int cache_list(struct backend *be, const char *prefix,
		      backend_list_fn *fn, void *arg)
{
	struct cache_backend *c = cache_of(be);

	return c->inner->list(c->inner, prefix, fn, arg);
}

/* --- open and close ---------------------------------------------------- */

static void cache_close(struct backend *be)
{
	struct cache_backend *c = cache_of(be);
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nbuckets; i++) {
		struct cache_ent *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->chain;
			free(e);
		}
	}
	free(c->buckets);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->rootfd >= 0)
		close(c->rootfd);
	pthread_cond_destroy(&c->fetched);
	pthread_mutex_destroy(&c->lock);
	backend_close(c->inner);
	free(c->where);
	free(c->root);
	free(c);
}

/* Marks the directory as a cache (bford.info/cachedir); advice only. */
static void cache_write_tag(struct cache_backend *c)
{
	static const char tag[] =
		"Signature: 8a477f597d28d172789f06886806bc55\n"
		"# This file is a cache directory tag created by lodefs.\n";
	int fd = openat(c->rootfd, CACHE_TAG,
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

	if (fd < 0)
		return;
	if (backend_write_all(fd, tag, sizeof(tag) - 1))
		unlinkat(c->rootfd, CACHE_TAG, 0);
	close(fd);
}

static int cache_open_dirs(struct cache_backend *c, const char *dir)
{
	int rc = backend_mkdirs(dir, false);

	if (rc)
		return rc;
	c->rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		return -errno;
	c->root = realpath(dir, NULL);
	if (!c->root)
		return -errno;
	if (mkdirat(c->rootfd, CACHE_TMP_DIR, 0777) < 0 && errno != EEXIST)
		return -errno;
	c->tmpfd = openat(c->rootfd, CACHE_TMP_DIR,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->tmpfd < 0)
		return -errno;
	return 0;
}

int backend_cache_open(struct backend *inner, const char *dir,
		       uint64_t max_bytes, struct backend **out)
{
	struct cache_backend *c;
	const char *iw;
	size_t n;
	int rc;

	if (!inner)
		return -EINVAL;
	if (!dir || !*dir || !out) {
		backend_close(inner);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		backend_close(inner);
		return -ENOMEM;
	}
	c->inner = inner;
	c->rootfd = c->tmpfd = -1;
	c->max = max_bytes ? max_bytes : CACHE_DEFAULT_MAX;
	atomic_init(&c->tmpseq, 0);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->fetched, NULL);
	c->nbuckets = 256;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = cache_open_dirs(c, dir);
	if (rc)
		goto out_close;
	cache_write_tag(c);
	cache_clean_tmp(c);
	rc = cache_scan(c);
	if (rc)
		goto out_close;
	cache_evict(c, NULL);
	iw = inner->where ? inner->where : "";
	n = strlen(iw) + strlen(" (cache )") + strlen(c->root) + 1;
	c->where = malloc(n);
	if (!c->where) {
		rc = -ENOMEM;
		goto out_close;
	}
	snprintf(c->where, n, "%s (cache %s)", iw, c->root);
	c->be = (struct backend){
		.version = BACKEND_VERSION,
		.name = "cache",
		.where = c->where,
		.get = cache_get,
		.get_range = cache_get_range,
		.head = cache_head,
		.put = cache_put,
		.del = cache_del,
		.del_many = cache_del_many,
		.list = cache_list,
		.map = cache_map,
		.unmap = cache_unmap,
		.close = cache_close,
	};
	*out = &c->be;
	return 0;
out_close:
	cache_close(&c->be);
	return rc;
}

int backend_cache_get_stats(struct backend *be, struct backend_cache_stats *st)
{
	struct cache_backend *c = cache_of(be);

	if (!be || be->get != cache_get)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->bytes = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return 0;
}
