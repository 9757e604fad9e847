/* backend_local.c - a backend in a local directory, one file per object. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/backend_int.h"

/*
 * On-disk layout.  A key is split at '/' into components: every component
 * but the last names a directory, the last names a regular file.  Within a
 * component, '%', bytes below 0x20, 0x7f and a leading '.' are written as
 * %XX (upper-case hex), everything else (UTF-8 included) as is; an empty
 * component is written "%00", which is never an escape because keys hold
 * no NUL.  A directory name carries one more '%' at its end, which no
 * object name can end with, so the object "a" (file "a") and the object
 * "a/b" (file "a%/b") coexist, as they do in S3.
 *
 * No encoded name starts with '.', so "." and ".." are never produced and
 * `<root>/.tmp` (temporary files and the lock files) is never listed.
 * Names that are not the canonical encoding of some component (files put
 * there by hand) are ignored by list().
 *
 * Writers serialise the step that changes what is visible (the rename,
 * the unlink, creating and removing directories) with a mutex between
 * threads and flock() on .tmp/commit.lock between processes; writing and
 * syncing the temporary file happens outside that lock.  Each open
 * instance holds a shared flock() on .tmp/open.lock; the instance that
 * gets it exclusively at open knows no put is in flight and removes
 * leftover temporary files.
 */

#define LOCAL_NAME_MAX 255
/* Room for the longest encoding of any valid key, checked against PATH_MAX. */
#define LOCAL_PATH_BUF	  (PATH_MAX + LOCAL_NAME_MAX + 2)
#define LOCAL_TMP_DIR	  ".tmp"
#define LOCAL_OPEN_LOCK	  "open.lock"
#define LOCAL_COMMIT_LOCK "commit.lock"
#define LOCAL_TMP_PREFIX  "put-"

struct local_backend {
	struct backend be; /* first: the public part */
	char *root;	   /* absolute path, also be.where */
	unsigned flags;
	int rootfd;
	int tmpfd;	      /* <root>/.tmp */
	int openlockfd;	      /* shared flock() while this instance is open */
	int commitlockfd;     /* exclusive flock() around visible changes */
	pthread_mutex_t lock; /* the same, between this instance's threads */
	atomic_ulong tmpseq;  /* makes temporary file names unique */
};

/* An encoded key: `path` relative to the root, the object's name at dirlen. */
struct local_path {
	char path[LOCAL_PATH_BUF];
	size_t dirlen; /* 0 at the root, else just past the last '/' */
};

static struct local_backend *local_of(struct backend *be)
{
	return (struct local_backend *)be;
}

static bool local_sync(const struct local_backend *l)
{
	return !(l->flags & BACKEND_LOCAL_NO_FSYNC);
}

static int local_fsync(const struct local_backend *l, int fd)
{
	if (local_sync(l) && fsync(fd) < 0)
		return -errno;
	return 0;
}

static bool local_must_escape(unsigned char b, size_t i)
{
	/* Not '/': a component has none, so a name decoding to one is foreign. */
	return b < 0x20 || b == 0x7f || b == '%' || (i == 0 && b == '.');
}

/*
 * Encodes the component `c` of `n` bytes into `out` (room for
 * LOCAL_NAME_MAX + 1 bytes), NUL-terminated.  Returns the encoded length
 * or -ENAMETOOLONG.
 */
static int local_encode_comp(const char *c, size_t n, bool dir, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0, i;

	if (n == 0) {
		memcpy(out, "%00", 3);
		o = 3;
	}
	for (i = 0; i < n; i++) {
		unsigned char b = (unsigned char)c[i];

		if (!local_must_escape(b, i)) {
			if (o + 1 > LOCAL_NAME_MAX)
				return -ENAMETOOLONG;
			out[o++] = (char)b;
			continue;
		}
		if (o + 3 > LOCAL_NAME_MAX)
			return -ENAMETOOLONG;
		out[o++] = '%';
		out[o++] = hex[b >> 4];
		out[o++] = hex[b & 0xf];
	}
	if (dir) {
		if (o + 1 > LOCAL_NAME_MAX)
			return -ENAMETOOLONG;
		out[o++] = '%';
	}
	out[o] = '\0';
	return (int)o;
}

static int local_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Decodes the on-disk `name` into `out` (room for LOCAL_NAME_MAX bytes)
 * and tells whether it names a directory.  Returns the component's length,
 * or -1 if `name` is not the canonical encoding of a component.
 */
static int local_decode_name(const char *name, char *out, bool *dir)
{
	char check[LOCAL_NAME_MAX + 1];
	size_t len = strlen(name), o = 0, i;
	int hi, lo;

	if (len == 0 || len > LOCAL_NAME_MAX)
		return -1;
	*dir = false;
	for (i = 0; i < len; i++) {
		if (name[i] != '%') {
			out[o++] = name[i];
			continue;
		}
		if (i == len - 1) {
			*dir = true;
			break;
		}
		if (i + 2 >= len)
			return -1;
		hi = local_hex(name[i + 1]);
		lo = local_hex(name[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	/* "%00" is the empty component and NUL appears nowhere else. */
	if (o == 1 && out[0] == '\0')
		o = 0;
	else if (memchr(out, '\0', o))
		return -1;
	if (local_encode_comp(out, o, *dir, check) < 0 ||
	    strcmp(check, name) != 0)
		return -1;
	return (int)o;
}

/*
 * Encodes `key` into `p`.  Returns 0, -EINVAL for an invalid key or
 * -ENAMETOOLONG when a name or the whole path is too long for the disk.
 */
static int local_encode_key(const char *key, struct local_path *p)
{
	const char *c = key;
	size_t pos = 0;
	int n;

	if (backend_key_check(key))
		return -EINVAL;
	p->dirlen = 0;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t clen = slash ? (size_t)(slash - c) : strlen(c);

		n = local_encode_comp(c, clen, slash != NULL, p->path + pos);
		if (n < 0)
			return n;
		pos += (size_t)n;
		if (pos >= PATH_MAX)
			return -ENAMETOOLONG;
		if (!slash)
			break;
		p->path[pos++] = '/';
		p->dirlen = pos;
		c = slash + 1;
	}
	return 0;
}

/* Maps a failed lookup's errno: anything that means "no such object". */
static int local_lookup_err(int err)
{
	if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG ||
	    err == EISDIR || err == ELOOP)
		return -ENOENT;
	return -err;
}

static int local_lock(struct local_backend *l)
{
	pthread_mutex_lock(&l->lock);
	while (flock(l->commitlockfd, LOCK_EX) < 0) {
		int err = errno;

		if (err != EINTR) {
			pthread_mutex_unlock(&l->lock);
			return -err;
		}
	}
	return 0;
}

static void local_unlock(struct local_backend *l)
{
	flock(l->commitlockfd, LOCK_UN);
	pthread_mutex_unlock(&l->lock);
}

/*
 * Opens the directory that holds p's object into *dfd.  With `create`,
 * makes missing directories, syncing the parent of each one it makes;
 * callers hold the commit lock so that del() cannot remove them again
 * before they are used.  Returns 0 or a negative errno.
 */
static int local_open_parent(struct local_backend *l,
			     const struct local_path *p, bool create, int *dfd)
{
	char dir[LOCAL_PATH_BUF];
	char *c, *slash;
	int fd, next, rc;

	if (p->dirlen == 0) {
		fd = fcntl(l->rootfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		*dfd = fd;
		return 0;
	}
	memcpy(dir, p->path, p->dirlen - 1);
	dir[p->dirlen - 1] = '\0';
	fd = openat(l->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || !create) {
		if (fd < 0)
			return -errno;
		*dfd = fd;
		return 0;
	}
	fd = fcntl(l->rootfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	for (c = dir; c; c = slash) {
		slash = strchr(c, '/');
		if (slash)
			*slash++ = '\0';
		if (mkdirat(fd, c, 0777) == 0) {
			rc = local_fsync(l, fd);
			if (rc)
				goto out_close;
		} else if (errno != EEXIST) {
			rc = -errno;
			goto out_close;
		}
		next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (next < 0) {
			rc = -errno;
			goto out_close;
		}
		close(fd);
		fd = next;
	}
	*dfd = fd;
	return 0;
out_close:
	close(fd);
	return rc;
}

static void local_etag(const struct stat *st, char *etag)
{
	unsigned long long ns =
		(unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
		(unsigned long long)st->st_mtim.tv_nsec;

	snprintf(etag, BACKEND_ETAG_MAX, "\"%llx-%llx-%llx\"",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size, ns);
}

/* Opens the object for reading; fills *st.  Returns 0 or -errno. */
static int local_open_obj(struct local_backend *l, const char *key, int *fdp,
			  struct stat *st)
{
	struct local_path p;
	int fd, rc;

	rc = local_encode_key(key, &p);
	if (rc)
		return rc == -ENAMETOOLONG ? -ENOENT : rc;
	fd = openat(l->rootfd, p.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return local_lookup_err(errno);
	if (fstat(fd, st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*fdp = fd;
	return 0;
}

static int local_get(struct backend *be, const char *key, void **data,
		     size_t *len)
{
	struct local_backend *l = local_of(be);
	struct stat st;
	size_t size, got = 0;
	char *buf;
	int fd, rc;

	rc = local_open_obj(l, key, &fd, &st);
	if (rc)
		return rc;
	if ((uint64_t)st.st_size >= SIZE_MAX) {
		rc = -EFBIG;
		goto out_close;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = backend_pread_all(fd, buf, size, 0, &got);
	if (!rc && got != size)
		rc = -EIO; /* objects are never changed in place */
	if (rc) {
		free(buf);
		goto out_close;
	}
	buf[size] = '\0';
	*data = buf;
	*len = size;
out_close:
	close(fd);
	return rc;
}

static int local_get_range(struct backend *be, const char *key, uint64_t off,
			   size_t len, void *buf, size_t *got)
{
	struct local_backend *l = local_of(be);
	struct stat st;
	int fd, rc;

	rc = local_open_obj(l, key, &fd, &st);
	if (rc)
		return rc;
	if (off >= (uint64_t)st.st_size)
		*got = 0;
	else
		rc = backend_pread_all(fd, buf, len, off, got);
	close(fd);
	return rc;
}

static int local_head(struct backend *be, const char *key,
		      struct backend_stat *st)
{
	struct local_backend *l = local_of(be);
	struct local_path p;
	struct stat s;
	int rc;

	rc = local_encode_key(key, &p);
	if (rc)
		return rc == -ENAMETOOLONG ? -ENOENT : rc;
	if (fstatat(l->rootfd, p.path, &s, 0) < 0)
		return local_lookup_err(errno);
	if (!S_ISREG(s.st_mode))
		return -ENOENT;
	st->size = (uint64_t)s.st_size;
	local_etag(&s, st->etag);
	return 0;
}

struct local_map {
	void *addr; /* NULL for an empty object */
	size_t len;
};

static int local_map(struct backend *be, const char *key, const void **data,
		     size_t *len, void **cookie)
{
	static const char empty[1];
	struct local_backend *l = local_of(be);
	struct local_map *m;
	struct stat st;
	int fd, rc;

	rc = local_open_obj(l, key, &fd, &st);
	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = -ENOMEM;
		goto out_close;
	}
	if ((uint64_t)st.st_size > SIZE_MAX) {
		rc = -EFBIG;
		goto out_free;
	}
	m->len = (size_t)st.st_size;
	if (m->len) {
		/* Safe to share: a put replaces the file, never writes it. */
		m->addr = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd, 0);
		if (m->addr == MAP_FAILED) {
			rc = -errno;
			goto out_free;
		}
	}
	*data = m->addr ? m->addr : empty;
	*len = m->len;
	*cookie = m;
	close(fd);
	return 0;
out_free:
	free(m);
out_close:
	close(fd);
	return rc;
}

static void local_unmap(struct backend *be, void *cookie)
{
	struct local_map *m = cookie;

	if (!m)
		return;
	if (m->addr)
		munmap(m->addr, m->len);
	free(m);
}

/*
 * Writes `data` to a new temporary file in .tmp and syncs it; its name is
 * left in `name`.  The mtime is set from the fine-grained clock so that
 * ETags differ even when a replacement reuses the inode number within the
 * file system's coarse timestamp tick.  Returns 0 or -errno, leaving no
 * file behind on error.
 */
static int local_tmp_write(struct local_backend *l, const void *data,
			   size_t len, char *name, size_t cap)
{
	struct timespec ts[2];
	int fd = -1, rc, tries;

	for (tries = 0; tries < 64 && fd < 0; tries++) {
		snprintf(name, cap, LOCAL_TMP_PREFIX "%ld-%lx-%lu",
			 (long)getpid(), (unsigned long)(uintptr_t)l,
			 atomic_fetch_add(&l->tmpseq, 1));
		fd = openat(l->tmpfd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	rc = backend_write_all(fd, data, len);
	if (rc)
		goto out_unlink;
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[1] = ts[0];
	if (futimens(fd, ts) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	rc = local_fsync(l, fd);
	if (rc)
		goto out_unlink;
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto out_unlink;
	}
	return 0;
out_unlink:
	if (fd >= 0)
		close(fd);
	unlinkat(l->tmpfd, name, 0);
	return rc;
}

/* Does an object with this ETag exist at `name` in `dfd`?  0 or -EEXIST. */
static int local_check_etag(int dfd, const char *name, const char *etag)
{
	char cur[BACKEND_ETAG_MAX];
	struct stat st;

	if (fstatat(dfd, name, &st, 0) < 0) {
		if (errno == ENOENT)
			return -EEXIST;
		return -errno;
	}
	if (!S_ISREG(st.st_mode))
		return -EEXIST;
	local_etag(&st, cur);
	return strcmp(cur, etag) == 0 ? 0 : -EEXIST;
}

/* Renames `tmp` to `name` only if `name` does not exist. */
static int local_rename_absent(struct local_backend *l, const char *tmp,
			       int dfd, const char *name)
{
	struct stat st;

	if (renameat2(l->tmpfd, tmp, dfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -errno;
	/* No RENAME_NOREPLACE here: the commit lock still makes it atomic. */
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	if (renameat(l->tmpfd, tmp, dfd, name) < 0)
		return -errno;
	return 0;
}

/*
 * Makes the synced temporary file `tmp` visible as p's object if `cond`
 * holds.  Returns 0 or -errno; on error `tmp` still exists, except when
 * only the final directory sync failed: then the object is visible but
 * may not survive a crash, and the error says so.
 */
static int local_commit(struct local_backend *l, const struct local_path *p,
			const char *tmp, const struct backend_cond *cond)
{
	const char *name = p->path + p->dirlen;
	enum backend_cond_kind kind = cond ? cond->kind : BACKEND_COND_NONE;
	int dfd, rc;

	rc = local_lock(l);
	if (rc)
		return rc;
	rc = local_open_parent(l, p, true, &dfd);
	if (rc)
		goto out_unlock;
	if (kind == BACKEND_COND_ABSENT) {
		rc = local_rename_absent(l, tmp, dfd, name);
	} else {
		if (kind == BACKEND_COND_ETAG)
			rc = local_check_etag(dfd, name, cond->etag);
		if (!rc && renameat(l->tmpfd, tmp, dfd, name) < 0)
			rc = -errno;
	}
	local_unlock(l);
	if (!rc)
		rc = local_fsync(l, dfd);
	close(dfd);
	return rc;
out_unlock:
	local_unlock(l);
	return rc;
}

static int local_put(struct backend *be, const char *key, const void *data,
		     size_t len, const struct backend_cond *cond)
{
	struct local_backend *l = local_of(be);
	struct local_path p;
	char tmp[128];
	int rc;

	rc = local_encode_key(key, &p);
	if (rc)
		return rc;
	if (cond && cond->kind != BACKEND_COND_NONE &&
	    cond->kind != BACKEND_COND_ABSENT &&
	    cond->kind != BACKEND_COND_ETAG)
		return -EINVAL;
	if (cond && cond->kind == BACKEND_COND_ETAG && !cond->etag)
		return -EEXIST;
	rc = local_tmp_write(l, data, len, tmp, sizeof(tmp));
	if (rc)
		return rc;
	rc = local_commit(l, &p, tmp, cond);
	if (rc)
		unlinkat(l->tmpfd, tmp, 0); /* ENOENT if only the sync failed */
	return rc;
}

/* Removes p's directories from the deepest up while they are empty. */
static void local_prune_dirs(struct local_backend *l,
			     const struct local_path *p)
{
	char dir[LOCAL_PATH_BUF];
	char *slash;

	if (p->dirlen == 0)
		return;
	memcpy(dir, p->path, p->dirlen - 1);
	dir[p->dirlen - 1] = '\0';
	if (local_lock(l))
		return;
	for (;;) {
		if (unlinkat(l->rootfd, dir, AT_REMOVEDIR) < 0)
			break;
		slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	local_unlock(l);
}

static int local_del(struct backend *be, const char *key)
{
	struct local_backend *l = local_of(be);
	struct local_path p;
	int dfd, rc;

	rc = local_encode_key(key, &p);
	if (rc)
		return rc == -ENAMETOOLONG ? 0 : rc;
	rc = local_lock(l);
	if (rc)
		return rc;
	rc = local_open_parent(l, &p, false, &dfd);
	if (rc) {
		local_unlock(l);
		return local_lookup_err(-rc) == -ENOENT ? 0 : rc;
	}
	if (unlinkat(dfd, p.path + p.dirlen, 0) < 0) {
		rc = local_lookup_err(errno);
		local_unlock(l);
		close(dfd);
		return rc == -ENOENT ? 0 : rc;
	}
	local_unlock(l);
	rc = local_fsync(l, dfd);
	close(dfd);
	/* A leftover empty directory is harmless: no need to sync this. */
	local_prune_dirs(l, &p);
	return rc;
}

/* One entry of a directory being listed. */
struct local_ent {
	char *name;	/* on-disk name */
	size_t complen; /* decoded component, plus '/' for a directory */
	bool dir;
	char comp[];
};

static int local_ent_cmp(const void *a, const void *b)
{
	const struct local_ent *x = *(struct local_ent *const *)a;
	const struct local_ent *y = *(struct local_ent *const *)b;
	size_t n = x->complen < y->complen ? x->complen : y->complen;
	int c = memcmp(x->comp, y->comp, n);

	if (c)
		return c;
	return (x->complen > y->complen) - (x->complen < y->complen);
}

struct local_lister {
	struct local_backend *l;
	const char *prefix;
	size_t plen;
	backend_list_fn *fn;
	void *arg;
	char key[BACKEND_KEY_MAX + 1]; /* the directory's keys' common part */
};

/*
 * Does the key part `c` (clen bytes at offset `at` of the key) agree with
 * the prefix?  With `whole`, c ends the key, so it must cover the prefix.
 */
static bool local_matches(const struct local_lister *ls, size_t at,
			  const char *c, size_t clen, bool whole)
{
	size_t rlen = ls->plen > at ? ls->plen - at : 0;
	size_t n = clen < rlen ? clen : rlen;

	if (whole && clen < rlen)
		return false;
	return memcmp(c, ls->prefix + at, n) == 0;
}

static void local_ents_free(struct local_ent **ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
}

/* Reads, filters and sorts the entries of directory `dfd`. */
static int local_read_dir(struct local_lister *ls, int dfd, size_t at,
			  struct local_ent ***entsp, size_t *np)
{
	struct local_ent **ents = NULL, *e;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;
	int fd, rc = 0;

	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		rc = -errno;
		close(fd);
		return rc;
	}
	for (;;) {
		char comp[LOCAL_NAME_MAX + 1];
		size_t nlen;
		bool isdir;
		int clen;

		errno = 0;
		d = readdir(dir);
		if (!d) {
			rc = errno ? -errno : 0;
			break;
		}
		clen = local_decode_name(d->d_name, comp, &isdir);
		if (clen < 0)
			continue;
		if (isdir)
			comp[clen++] = '/';
		if (!local_matches(ls, at, comp, (size_t)clen, !isdir))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct local_ent **ne =
				realloc(ents, ncap * sizeof(*ents));

			if (!ne) {
				rc = -ENOMEM;
				break;
			}
			ents = ne;
			cap = ncap;
		}
		nlen = strlen(d->d_name);
		e = malloc(sizeof(*e) + (size_t)clen + nlen + 1);
		if (!e) {
			rc = -ENOMEM;
			break;
		}
		memcpy(e->comp, comp, (size_t)clen);
		e->complen = (size_t)clen;
		e->dir = isdir;
		e->name = e->comp + clen;
		memcpy(e->name, d->d_name, nlen + 1);
		ents[n++] = e;
	}
	closedir(dir);
	if (rc) {
		local_ents_free(ents, n);
		return rc;
	}
	if (n)
		qsort(ents, n, sizeof(*ents), local_ent_cmp);
	*entsp = ents;
	*np = n;
	return 0;
}

/*
 * Lists directory `dfd`, whose keys all start with ls->key[0..at).
 * Children are visited in the order of their component (plus '/' for a
 * directory), which is the memcmp order of the keys they hold.
 */
static int local_list_dir(struct local_lister *ls, int dfd, size_t at)
{
	struct local_ent **ents = NULL;
	size_t n = 0, i;
	int rc;

	rc = local_read_dir(ls, dfd, at, &ents, &n);
	if (rc)
		return rc;
	for (i = 0; i < n && !rc; i++) {
		struct local_ent *e = ents[i];
		struct stat st;
		int sub;

		if (at + e->complen > BACKEND_KEY_MAX)
			continue; /* not a valid key: put there by hand */
		memcpy(ls->key + at, e->comp, e->complen);
		ls->key[at + e->complen] = '\0';
		if (!e->dir) {
			/* Gone since readdir (a concurrent del): skip it. */
			if (fstatat(dfd, e->name, &st, 0) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			rc = ls->fn(ls->arg, ls->key, (uint64_t)st.st_size);
			continue;
		}
		sub = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0) {
			if (errno != ENOENT && errno != ENOTDIR)
				rc = -errno;
			continue;
		}
		rc = local_list_dir(ls, sub, at + e->complen);
		close(sub);
	}
	local_ents_free(ents, n);
	return rc;
}

static int local_list(struct backend *be, const char *prefix,
		      backend_list_fn *fn, void *arg)
{
	struct local_lister ls = {
		.l = local_of(be),
		.prefix = prefix,
		.plen = strlen(prefix),
		.fn = fn,
		.arg = arg,
	};
	struct local_path p = { .dirlen = 0 };
	const char *slash;
	size_t at = 0;
	int dfd, rc;

	if (ls.plen > BACKEND_KEY_MAX)
		return 0; /* no key is that long */
	/* Start in the deepest directory that the prefix names. */
	slash = strrchr(prefix, '/');
	if (slash) {
		at = (size_t)(slash - prefix) + 1;
		memcpy(ls.key, prefix, at);
		ls.key[at] = '\0';
		rc = local_encode_key(ls.key, &p);
		if (rc) /* a directory that cannot exist holds no keys */
			return rc == -ENAMETOOLONG ? 0 : rc;
	}
	rc = local_open_parent(ls.l, &p, false, &dfd);
	if (rc)
		return local_lookup_err(-rc) == -ENOENT ? 0 : rc;
	rc = local_list_dir(&ls, dfd, at);
	close(dfd);
	return rc;
}

static void local_close(struct backend *be)
{
	struct local_backend *l = local_of(be);

	if (!l)
		return;
	if (l->commitlockfd >= 0)
		close(l->commitlockfd);
	if (l->openlockfd >= 0)
		close(l->openlockfd); /* drops the shared lock */
	if (l->tmpfd >= 0)
		close(l->tmpfd);
	if (l->rootfd >= 0)
		close(l->rootfd);
	pthread_mutex_destroy(&l->lock);
	free(l->root);
	free(l);
}

/* Removes leftover temporary files; only called when no put is in flight. */
static void local_clean_tmp(struct local_backend *l)
{
	struct dirent *d;
	DIR *dir;
	int fd;

	fd = openat(l->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, LOCAL_TMP_PREFIX,
			    strlen(LOCAL_TMP_PREFIX)) == 0)
			unlinkat(l->tmpfd, d->d_name, 0);
	}
	closedir(dir);
}

static int local_flock(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Opens (creating) .tmp and its lock files, and cleans up after crashes. */
static int local_open_tmp(struct local_backend *l)
{
	int rc;

	if (mkdirat(l->rootfd, LOCAL_TMP_DIR, 0777) == 0) {
		rc = local_fsync(l, l->rootfd);
		if (rc)
			return rc;
	} else if (errno != EEXIST) {
		return -errno;
	}
	l->tmpfd = openat(l->rootfd, LOCAL_TMP_DIR,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->tmpfd < 0)
		return -errno;
	l->openlockfd = openat(l->tmpfd, LOCAL_OPEN_LOCK,
			       O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (l->openlockfd < 0)
		return -errno;
	l->commitlockfd = openat(l->tmpfd, LOCAL_COMMIT_LOCK,
				 O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (l->commitlockfd < 0)
		return -errno;
	rc = local_flock(l->openlockfd, LOCK_EX | LOCK_NB);
	if (rc == 0)
		local_clean_tmp(l);
	else if (rc != -EWOULDBLOCK)
		return rc;
	return local_flock(l->openlockfd, LOCK_SH);
}

int backend_local_open_flags(const char *dir, unsigned flags,
			     struct backend **out)
{
	struct local_backend *l;
	int rc;

	if (!dir || !*dir || (flags & ~(unsigned)BACKEND_LOCAL_NO_FSYNC))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->flags = flags;
	l->rootfd = l->tmpfd = l->openlockfd = l->commitlockfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	atomic_init(&l->tmpseq, 0);
	rc = backend_mkdirs(dir, local_sync(l));
	if (rc)
		goto out_close;
	l->rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->rootfd < 0) {
		rc = -errno;
		goto out_close;
	}
	l->root = realpath(dir, NULL);
	if (!l->root) {
		rc = -errno;
		goto out_close;
	}
	rc = local_open_tmp(l);
	if (rc)
		goto out_close;
	l->be.version = BACKEND_VERSION;
	l->be.name = "local";
	l->be.where = l->root;
	l->be.get = local_get;
	l->be.get_range = local_get_range;
	l->be.head = local_head;
	l->be.put = local_put;
	l->be.del = local_del;
	l->be.list = local_list;
	l->be.map = local_map;
	l->be.unmap = local_unmap;
	l->be.close = local_close;
	*out = &l->be;
	return 0;
out_close:
	local_close(&l->be);
	return rc;
}

int backend_local_open(const char *dir, struct backend **out)
{
	return backend_local_open_flags(dir, 0, out);
}
