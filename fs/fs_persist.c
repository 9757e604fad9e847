/* fs_persist.c - persist/: LlamaIndex's persist directory, live. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/persist.h"
#include "fs/fs_int.h"
#include "fs/fs_views_int.h"

/*
 * A file of persist/ can be far larger than memory (every node's text and
 * every vector as decimal text), so it never lives in memory whole: a read
 * generates it with persist_export into an unlinked temporary file (a
 * "generation") and serves reads with pread; a write goes to another
 * unlinked temporary file that persist_import reads, mapped, at close.
 *
 * A generation is made for one state of the store (store_version) and
 * reused while the store stays in that state.  Each handle holds the
 * generation it opened, so a reader reads one consistent snapshot to the
 * end even if the store changes meanwhile; the file goes when its last
 * reader does.  Files are opened with direct_io and attributes are never
 * cached: a read is not cut at a size the kernel remembered from another
 * generation, and nothing is served from the page cache across a change.
 */

/* One generated file: its bytes in an unlinked temporary file. */
struct fs_pgen {
	unsigned refs; /* the cache's and each handle's (persist mu) */
	int fd;
	uint64_t size;
	uint64_t version; /* store_version() before it was generated */
	struct timespec made;
};

/* The latest generation of a name. */
struct fs_pentry {
	char *name;
	struct fs_pgen *gen;
	struct fs_pentry *next;
};

struct fs_persist {
	pthread_mutex_t mu;	/* the cache and generations' refs */
	pthread_mutex_t gen_mu; /* one export at a time */
	struct fs_pentry *cache;
	atomic_uint_fast64_t exports, reused, bytes_generated;
	atomic_uint_fast64_t imports, bytes_imported, refused, failed;
};

/* What a handle of a persist file holds. */
struct fs_phandle {
	pthread_mutex_t mu;
	struct fs_pgen *gen; /* what reads return until something is written */
	int wfd;	     /* what was written, -1 until the first write */
	uint64_t wlen;	     /* its size */
	int trunc; /* nothing of gen carries over (O_TRUNC or created) */
	int dirty; /* written since the last import */
};

int fs_persist_init(struct fs *fs)
{
	struct fs_persist *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->gen_mu, NULL);
	fs->persist = p;
	return 0;
}

static void fs_pgen_unref(struct fs_persist *p, struct fs_pgen *g)
{
	int last;

	if (!g)
		return;
	pthread_mutex_lock(&p->mu);
	last = --g->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (last) {
		close(g->fd);
		free(g);
	}
}

void fs_persist_free(struct fs *fs)
{
	struct fs_persist *p = fs->persist;
	struct fs_pentry *e;

	if (!p)
		return;
	while ((e = p->cache)) {
		p->cache = e->next;
		fs_pgen_unref(p, e->gen);
		free(e->name);
		free(e);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->gen_mu);
	free(p);
	fs->persist = NULL;
}

static char *fs_persist_path(const char *name)
{
	char *path;

	return asprintf(&path, "persist/%s", name) < 0 ? NULL : path;
}

/*
 * An unlinked temporary file: O_TMPFILE in $TMPDIR, /var/tmp or /tmp,
 * else a named one removed at once (file systems without O_TMPFILE).
 * Returns the descriptor or a negative errno.
 */
static int fs_persist_tmpfile(void)
{
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	char path[4096];
	size_t i;
	int fd, err = ENOENT;

	for (i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		if (!dirs[i] || !*dirs[i])
			continue;
		fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		err = errno;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		if (!dirs[i] || !*dirs[i] ||
		    snprintf(path, sizeof(path), "%s/lodefs-persist.XXXXXX",
			     dirs[i]) >= (int)sizeof(path))
			continue;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0) {
			unlink(path);
			return fd;
		}
		err = errno;
	}
	return -err;
}

/* pwrite of all `len` bytes at off: 0 or a negative errno. */
static int fs_persist_pwrite(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

struct fs_pgen_out {
	int fd;
	uint64_t off;
};

/* persist_export's output: appended to the generation's file. */
static int fs_pgen_write(void *arg, const void *data, size_t len)
{
	struct fs_pgen_out *o = arg;
	int rc = fs_persist_pwrite(o->fd, data, len, (off_t)o->off);

	if (!rc)
		o->off += len;
	return rc;
}

/* Generates file `name` of state `version` into a new generation. */
static int fs_pgen_make(struct fs *fs, const char *name, uint64_t version,
			struct fs_pgen **out)
{
	struct fs_persist *p = fs->persist;
	struct fs_pgen_out o = { .fd = fs_persist_tmpfile() };
	struct fs_pgen *g;
	char *path;
	int rc;

	if (o.fd < 0) {
		rc = o.fd;
		fs_error(fs, "persist", "no temporary file for %s: %s", name,
			 strerror(-rc));
		return rc;
	}
	rc = persist_export(fs->st, name, fs_pgen_write, &o, NULL, NULL);
	if (!rc && !(g = calloc(1, sizeof(*g))))
		rc = -ENOMEM;
	if (rc) {
		close(o.fd);
		if (rc == -ENOENT || rc == -ENOMEM)
			return rc;
		path = fs_persist_path(name);
		if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG)
			fs_error(fs, path,
				 "cannot generate: the temporary directory "
				 "is full (%s)",
				 strerror(-rc));
		else
			fs_error(fs, path, "cannot generate: %s",
				 store_last_error());
		free(path);
		return rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG ? rc
								      : -EIO;
	}
	g->fd = o.fd;
	g->size = o.off;
	g->version = version;
	g->refs = 1;
	clock_gettime(CLOCK_REALTIME, &g->made);
	atomic_fetch_add(&p->exports, 1);
	atomic_fetch_add(&p->bytes_generated, o.off);
	*out = g;
	return 0;
}

/* The cached generation of name if it is of state v, with a reference. */
static struct fs_pgen *fs_pgen_cached(struct fs_persist *p, const char *name,
				      uint64_t v)
{
	struct fs_pentry *e;
	struct fs_pgen *g = NULL;

	pthread_mutex_lock(&p->mu);
	for (e = p->cache; e; e = e->next)
		if (strcmp(e->name, name) == 0) {
			if (e->gen->version == v) {
				g = e->gen;
				g->refs++;
			}
			break;
		}
	pthread_mutex_unlock(&p->mu);
	return g;
}

/* Makes g the cached generation of name (the cache takes a reference). */
static int fs_pgen_cache(struct fs_persist *p, const char *name,
			 struct fs_pgen *g)
{
	struct fs_pentry *e;
	struct fs_pgen *old = NULL;

	pthread_mutex_lock(&p->mu);
	for (e = p->cache; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			break;
	if (!e && (e = calloc(1, sizeof(*e))) && !(e->name = strdup(name))) {
		free(e);
		e = NULL;
	}
	if (!e) {
		pthread_mutex_unlock(&p->mu);
		return -ENOMEM;
	}
	if (!e->gen) {
		e->next = p->cache;
		p->cache = e;
	}
	old = e->gen;
	e->gen = g;
	g->refs++;
	pthread_mutex_unlock(&p->mu);
	fs_pgen_unref(p, old);
	return 0;
}

/*
 * The generation of file `name` for the store as it is now, with a
 * reference for the caller: the cached one if the store has not changed
 * since it was made, else a new one.  -ENOENT if the name is not shown.
 */
static int fs_pgen_get(struct fs *fs, const char *name, struct fs_pgen **out)
{
	struct fs_persist *p = fs->persist;
	struct fs_pgen *g;
	uint64_t v = store_version(fs->st);
	int rc;

	if ((g = fs_pgen_cached(p, name, v))) {
		atomic_fetch_add(&p->reused, 1);
		*out = g;
		return 0;
	}
	/* One export at a time: readers that arrive together share it. */
	pthread_mutex_lock(&p->gen_mu);
	/* read before exporting: a change during the export makes the
	 * generation look stale, never a stale one look current */
	v = store_version(fs->st);
	if ((g = fs_pgen_cached(p, name, v))) {
		pthread_mutex_unlock(&p->gen_mu);
		atomic_fetch_add(&p->reused, 1);
		*out = g;
		return 0;
	}
	rc = fs_pgen_make(fs, name, v, &g);
	if (!rc) /* if it cannot be cached, the caller's is enough */
		fs_pgen_cache(p, name, g);
	pthread_mutex_unlock(&p->gen_mu);
	if (!rc)
		*out = g;
	return rc;
}

/* --- names ---------------------------------------------------------------- */

/* A walk of persist_list: listing, finding a name or an inode number. */
struct fs_persist_find {
	struct fs_dirlist *l; /* listing into l, if set */
	const char *name;     /* else: stops (1) at this name, if set */
	uint64_t ino;	      /* else: stops at the name of this number */
	char *found;	      /* that name, malloc'd */
};

static int fs_persist_find_one(void *arg, const char *name)
{
	struct fs_persist_find *f = arg;
	uint64_t ino = fs_hash_ino(FS_K_PERSIST, name, NULL, NULL);

	if (f->l)
		return fs_dirlist_add(f->l, name, ino, S_IFREG);
	if (f->name)
		return strcmp(name, f->name) == 0;
	if (ino != f->ino)
		return 0;
	f->found = strdup(name);
	return f->found ? 1 : -ENOMEM;
}

/* 1 if persist/ shows `name` now, 0 if not, or a negative errno. */
static int fs_persist_listed(struct fs *fs, const char *name)
{
	struct fs_persist_find f = { .name = name };

	return persist_list(fs->st, fs_persist_find_one, &f);
}

int fs_persist_list(struct fs *fs, struct fs_dirlist *l)
{
	struct fs_persist_find f = { .l = l };

	return persist_list(fs->st, fs_persist_find_one, &f);
}

/* --- entries -------------------------------------------------------------- */

static void fs_persist_stat(struct fs *fs, struct fs_ino *ip, uint64_t size,
			    const struct fs_pgen *g, struct stat *st)
{
	fs_view_stat(fs, ip, (size_t)size, st);
	/* a new generation is a changed file (for make, rsync, caches) */
	if (g)
		st->st_mtim = st->st_ctim = g->made;
}

int fs_persist_getattr(struct fs *fs, struct fs_ino *ip, struct fs_handle *h,
		       struct stat *st)
{
	struct fs_pgen *g = NULL;
	int rc;

	if (h && h->ph) {
		/* the snapshot this handle reads, or what it wrote */
		struct fs_phandle *ph = h->ph;
		uint64_t size;

		pthread_mutex_lock(&ph->mu);
		size = ph->wfd >= 0 ? ph->wlen
		       : ph->trunc  ? 0
		       : ph->gen    ? ph->gen->size
				    : 0;
		fs_persist_stat(fs, ip, size, ph->wfd < 0 ? ph->gen : NULL, st);
		pthread_mutex_unlock(&ph->mu);
		return 0;
	}
	rc = fs_pgen_get(fs, ip->keys[0], &g);
	if (rc == -ENOENT && ip->opens) { /* created, not imported yet */
		fs_persist_stat(fs, ip, 0, NULL, st);
		return 0;
	}
	if (rc)
		return rc;
	fs_persist_stat(fs, ip, g->size, g, st);
	fs_pgen_unref(fs->persist, g);
	return 0;
}

int fs_persist_lookup(struct fs *fs, const char *name,
		      struct fuse_entry_param *e)
{
	int rc = fs_persist_listed(fs, name);

	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	return rc ? fs_view_ref_hash(fs, FS_K_PERSIST, name, NULL, NULL, e)
		  : -ENOENT;
}

int fs_persist_resolve(struct fs *fs, uint64_t ino, struct fuse_entry_param *e)
{
	struct fs_persist_find f = { .ino = ino };
	int rc = persist_list(fs->st, fs_persist_find_one, &f);

	if (rc <= 0)
		return rc == -ENOMEM ? rc : -ESTALE;
	rc = fs_view_ref_hash(fs, FS_K_PERSIST, f.found, NULL, NULL, e);
	free(f.found);
	return rc == -ENOENT ? -ESTALE : rc;
}

/* --- open, read, write ---------------------------------------------------- */

static int fs_persist_handle(struct fs *fs, struct fs_ino *ip, int wr,
			     int trunc, struct fs_pgen *g,
			     struct fs_handle **hp)
{
	struct fs_handle *h = calloc(1, sizeof(*h));
	struct fs_phandle *ph = calloc(1, sizeof(*ph));

	if (!h || !ph) {
		free(h);
		free(ph);
		return -ENOMEM;
	}
	pthread_mutex_init(&ph->mu, NULL);
	ph->gen = g;
	ph->wfd = -1;
	ph->trunc = trunc;
	h->ip = ip;
	h->wr = wr;
	h->ph = ph;
	*hp = h;
	return 0;
}

int fs_persist_open(struct fs *fs, struct fs_ino *ip, int flags,
		    struct fs_handle **hp)
{
	int wr = (flags & O_ACCMODE) != O_RDONLY;
	int trunc = wr && (flags & O_TRUNC);
	struct fs_pgen *g = NULL;
	int rc = 0;

	/* Python's write pattern (O_TRUNC) needs no generation at all. */
	if (!trunc) {
		rc = fs_pgen_get(fs, ip->keys[0], &g);
		if (rc == -ENOENT && wr) { /* no longer shown: starts empty */
			rc = 0;
			trunc = 1;
		}
	}
	if (!rc)
		rc = fs_persist_handle(fs, ip, wr, trunc, g, hp);
	if (rc) {
		fs_pgen_unref(fs->persist, g);
		return rc;
	}
	pthread_mutex_lock(&fs->mu);
	ip->opens++;
	pthread_mutex_unlock(&fs->mu);
	return 0;
}

int fs_persist_create(struct fs *fs, const char *name,
		      struct fuse_entry_param *e, struct fs_handle **hp)
{
	uint64_t ino = fs_hash_ino(FS_K_PERSIST, name, NULL, NULL);
	enum persist_kind kind;
	struct fs_ino *ip;
	char ns[256];
	int rc = persist_name(name, &kind, ns, sizeof(ns));

	if (rc) {
		char *path = fs_persist_path(name);

		fs_error(fs, path,
			 "refused: persist/ holds docstore.json, "
			 "index_store.json, graph_store.json, "
			 "property_graph_store.json and "
			 "<namespace>__vector_store.json%s",
			 rc == -EINVAL ? " (not a valid namespace)" : "");
		free(path);
		return -EINVAL;
	}
	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_get(fs, ino, FS_K_PERSIST, name, NULL, NULL, 1);
	if (ip)
		ip->opens++;
	pthread_mutex_unlock(&fs->mu);
	if (!ip)
		return -ENOMEM;
	rc = fs_persist_handle(fs, ip, 1, 1, NULL, hp);
	if (rc) {
		pthread_mutex_lock(&fs->mu);
		ip->opens--;
		fs_ino_forget(fs, ino, 1);
		pthread_mutex_unlock(&fs->mu);
		return rc;
	}
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = ip->gen;
	fs_persist_stat(fs, ip, 0, NULL, &e->attr);
	return 0;
}

void fs_persist_read(struct fs *fs, fuse_req_t req, struct fs_handle *h,
		     size_t size, off_t off)
{
	struct fs_phandle *ph = h->ph;
	uint64_t end;
	char *buf;
	ssize_t n;
	int fd;

	pthread_mutex_lock(&ph->mu);
	if (ph->wfd >= 0) {
		fd = ph->wfd;
		end = ph->wlen;
	} else if (ph->gen && !ph->trunc) {
		fd = ph->gen->fd;
		end = ph->gen->size;
	} else {
		fd = -1;
		end = 0;
	}
	pthread_mutex_unlock(&ph->mu);
	if (off < 0 || (uint64_t)off >= end) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > end - (uint64_t)off)
		size = (size_t)(end - (uint64_t)off);
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/*
	 * fd stays open until this handle is released, which the kernel
	 * does not do while this read is unanswered; a write on another
	 * thread may replace wfd's content, as on any file.
	 */
	do
		n = pread(fd, buf, size, off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/*
 * Gives the handle its file of written bytes, carrying over what it read
 * unless it was truncated; caller holds ph->mu.
 */
static int fs_persist_wfd(struct fs_phandle *ph)
{
	char buf[65536];
	uint64_t off = 0;
	int fd, rc = 0;

	if (ph->wfd >= 0)
		return 0;
	fd = fs_persist_tmpfile();
	if (fd < 0)
		return fd;
	if (!ph->trunc && ph->gen) {
		while (off < ph->gen->size && !rc) {
			ssize_t n = pread(ph->gen->fd, buf, sizeof(buf),
					  (off_t)off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				rc = n < 0 ? -errno : -EIO;
			else if (!(rc = fs_persist_pwrite(fd, buf, (size_t)n,
							  (off_t)off)))
				off += (uint64_t)n;
		}
	}
	if (rc) {
		close(fd);
		return rc;
	}
	ph->wfd = fd;
	ph->wlen = off;
	return 0;
}

ssize_t fs_persist_write(struct fs *fs, struct fs_handle *h, const char *buf,
			 size_t size, off_t off)
{
	struct fs_phandle *ph = h->ph;
	int rc;

	pthread_mutex_lock(&ph->mu);
	rc = fs_persist_wfd(ph);
	if (!rc)
		rc = fs_persist_pwrite(ph->wfd, buf, size, off);
	if (!rc) {
		if ((uint64_t)off + size > ph->wlen)
			ph->wlen = (uint64_t)off + size;
		ph->dirty = 1;
	}
	pthread_mutex_unlock(&ph->mu);
	return rc ? rc : (ssize_t)size;
}

int fs_persist_truncate(struct fs *fs, struct fs_handle *h, off_t size)
{
	struct fs_phandle *ph = h->ph;
	int rc;

	if (!ph || !h->wr)
		return -EBADF;
	pthread_mutex_lock(&ph->mu);
	rc = fs_persist_wfd(ph);
	if (!rc && ftruncate(ph->wfd, size))
		rc = -errno;
	if (!rc) {
		ph->wlen = (uint64_t)size;
		ph->dirty = 1;
	}
	pthread_mutex_unlock(&ph->mu);
	return rc;
}

/* persist_import of what was written, mapped: 0 or a negative errno. */
static int fs_persist_import(struct fs *fs, struct fs_handle *h)
{
	struct fs_persist *p = fs->persist;
	struct fs_phandle *ph = h->ph;
	const char *name = h->ip->keys[0];
	void *map = NULL;
	char *path;
	int rc;

	if (ph->wlen > SIZE_MAX)
		return -EFBIG;
	if (ph->wlen) {
		map = mmap(NULL, (size_t)ph->wlen, PROT_READ, MAP_PRIVATE,
			   ph->wfd, 0);
		if (map == MAP_FAILED)
			return errno == ENOMEM ? -ENOMEM : -EIO;
	}
	rc = persist_import(fs->st, name, map ? map : "", (size_t)ph->wlen,
			    NULL, NULL);
	if (map)
		munmap(map, (size_t)ph->wlen);
	if (!rc) {
		atomic_fetch_add(&p->imports, 1);
		atomic_fetch_add(&p->bytes_imported, ph->wlen);
		/* query/ results and the other views' caches key on it */
		atomic_fetch_add(&fs->version, 1);
		return 0;
	}
	if (rc == -ENOMEM)
		return rc;
	path = fs_persist_path(name);
	if (rc == -EINVAL || rc == -ENOENT) {
		atomic_fetch_add(&p->refused, 1);
		fs_error(fs, path, "refused: %s", store_last_error());
		rc = -EINVAL;
	} else {
		atomic_fetch_add(&p->failed, 1);
		fs_error(fs, path, "import failed, nothing changed: %s",
			 store_last_error());
		rc = -EIO;
	}
	free(path);
	return rc;
}

int fs_persist_apply(struct fs *fs, struct fs_handle *h)
{
	struct fs_phandle *ph = h->ph;
	int rc = 0;

	if (!ph || !h->wr)
		return 0;
	pthread_mutex_lock(&ph->mu);
	if (ph->dirty) {
		/* tried once: a refusal is reported by this flush only */
		ph->dirty = 0;
		rc = fs_persist_import(fs, h);
	}
	pthread_mutex_unlock(&ph->mu);
	return rc;
}

void fs_persist_release(struct fs *fs, struct fs_handle *h)
{
	struct fs_phandle *ph = h->ph;

	pthread_mutex_lock(&fs->mu);
	h->ip->opens--;
	fs_ino_forget(fs, h->ip->ino, 0);
	pthread_mutex_unlock(&fs->mu);
	if (ph) {
		if (ph->wfd >= 0)
			close(ph->wfd);
		fs_pgen_unref(fs->persist, ph->gen);
		pthread_mutex_destroy(&ph->mu);
		free(ph);
	}
	free(h);
}

int fs_persist_refuse(struct fs *fs, const char *name, const char *what)
{
	char *path = fs_persist_path(name);

	fs_error(fs, path,
		 "refused: %s in persist/ (its files are generated from the "
		 "store; write one to replace what it holds)",
		 what);
	free(path);
	return -EPERM;
}

json_t *fs_persist_stats(struct fs *fs)
{
	struct fs_persist *p = fs->persist;

	if (!p)
		return json_object();
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "exports",
			 (json_int_t)atomic_load(&p->exports), "reused",
			 (json_int_t)atomic_load(&p->reused), "bytes_generated",
			 (json_int_t)atomic_load(&p->bytes_generated),
			 "imports", (json_int_t)atomic_load(&p->imports),
			 "bytes_imported",
			 (json_int_t)atomic_load(&p->bytes_imported), "refused",
			 (json_int_t)atomic_load(&p->refused), "failed",
			 (json_int_t)atomic_load(&p->failed));
}
