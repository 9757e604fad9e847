/* fs_docs.c - docs/: a normal file tree whose files are the store's documents. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/text.h"
#include "fs/fs_int.h"

#define FS_XATTR_PREFIX	   "user."
#define FS_XATTR_VALUE_MAX 65536

/* --- the tree ------------------------------------------------------------- */

static size_t fs_dslot_path(const struct fs *fs, const char *path)
{
	return (size_t)(XXH3_64bits(path, strlen(path)) & (fs->dtab_cap - 1));
}

static size_t fs_dslot_ino(const struct fs *fs, uint64_t ino)
{
	return (size_t)(XXH3_64bits(&ino, sizeof(ino)) & (fs->dtab_cap - 1));
}

struct fs_dent *fs_dent_find(struct fs *fs, const char *path)
{
	struct fs_dent *d;

	for (d = fs->ptab[fs_dslot_path(fs, path)]; d; d = d->next_path)
		if (strcmp(d->path, path) == 0)
			return d;
	return NULL;
}

struct fs_dent *fs_dent_by_ino(struct fs *fs, uint64_t ino)
{
	struct fs_dent *d;

	for (d = fs->ntab[fs_dslot_ino(fs, ino)]; d; d = d->next_ino)
		if (d->ino == ino)
			return d;
	return NULL;
}

static void fs_dtab_link(struct fs *fs, struct fs_dent *d)
{
	size_t s = fs_dslot_path(fs, d->path), t = fs_dslot_ino(fs, d->ino);

	d->next_path = fs->ptab[s];
	fs->ptab[s] = d;
	d->next_ino = fs->ntab[t];
	fs->ntab[t] = d;
}

static void fs_dtab_unlink(struct fs *fs, struct fs_dent *d)
{
	struct fs_dent **pp;

	for (pp = &fs->ptab[fs_dslot_path(fs, d->path)]; *pp;
	     pp = &(*pp)->next_path)
		if (*pp == d) {
			*pp = d->next_path;
			break;
		}
	for (pp = &fs->ntab[fs_dslot_ino(fs, d->ino)]; *pp;
	     pp = &(*pp)->next_ino)
		if (*pp == d) {
			*pp = d->next_ino;
			break;
		}
}

static int fs_dtab_grow(struct fs *fs)
{
	size_t cap = fs->dtab_cap ? fs->dtab_cap * 2 : 4096, i;
	struct fs_dent **pt = calloc(cap, sizeof(*pt));
	struct fs_dent **nt = calloc(cap, sizeof(*nt));
	struct fs_dent **opt = fs->ptab, **ont = fs->ntab, *d, *n;
	size_t ocap = fs->dtab_cap;

	if (!pt || !nt) {
		free(pt);
		free(nt);
		return -ENOMEM;
	}
	fs->ptab = pt;
	fs->ntab = nt;
	fs->dtab_cap = cap;
	for (i = 0; i < ocap; i++)
		for (d = opt[i]; d; d = n) {
			n = d->next_path;
			fs_dtab_link(fs, d);
		}
	free(opt);
	free(ont);
	return 0;
}

static int fs_dent_kid_add(struct fs_dent *dir, struct fs_dent *d)
{
	struct fs_dent **k = fs_reserve(dir->kids, &dir->cap_kids,
					dir->n_kids + 1, sizeof(*k), 8);

	if (!k)
		return -ENOMEM;
	dir->kids = k;
	dir->kids[dir->n_kids++] = d;
	d->parent = dir;
	return 0;
}

static void fs_dent_kid_del(struct fs_dent *dir, struct fs_dent *d)
{
	size_t i;

	for (i = 0; i < dir->n_kids; i++)
		if (dir->kids[i] == d) {
			dir->kids[i] = dir->kids[--dir->n_kids];
			break;
		}
	d->parent = NULL;
}

static const char *fs_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* "dir/name" (or "name" below docs/ itself), malloc'd. */
static char *fs_join(const char *dir, const char *name)
{
	char *p;

	if (!*dir)
		return strdup(name);
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* The directory `path`, made (implicit: no record) if missing. */
struct fs_dent *fs_dent_dir(struct fs *fs, const char *path)
{
	struct fs_dent *d = fs_dent_find(fs, path);
	struct timespec t = fs->mounted;

	if (d)
		return S_ISDIR(d->mode) ? d : NULL;
	return fs_dent_add(fs, path, fs_hash_ino(FS_K_DOCDIR, path, NULL, NULL),
			   S_IFDIR | 0755, t, t);
}

struct fs_dent *fs_dent_add(struct fs *fs, const char *path, uint64_t ino,
			    unsigned mode, struct timespec mtime,
			    struct timespec ctime)
{
	struct fs_dent *d, *dir = NULL;

	if (*path) {
		const char *slash = strrchr(path, '/');
		char *pp = slash ? strndup(path, (size_t)(slash - path))
				 : strdup("");

		if (!pp)
			return NULL;
		dir = fs_dent_dir(fs, pp);
		free(pp);
		if (!dir)
			return NULL;
	}
	if ((fs->dtab_n + 1) * 4 > fs->dtab_cap * 3 && fs_dtab_grow(fs))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return NULL;
	}
	d->ino = ino;
	d->mode = mode;
	d->mtime = mtime;
	d->ctime = ctime;
	if (dir && fs_dent_kid_add(dir, d)) {
		free(d->path);
		free(d);
		return NULL;
	}
	fs_dtab_link(fs, d);
	fs->dtab_n++;
	return d;
}

void fs_dent_remove(struct fs *fs, struct fs_dent *d)
{
	if (d->parent)
		fs_dent_kid_del(d->parent, d);
	fs_dtab_unlink(fs, d);
	fs->dtab_n--;
	free(d->kids);
	free(d->path);
	free(d);
}

int fs_dent_move(struct fs *fs, struct fs_dent *d, struct fs_dent *ndir,
		 const char *newpath)
{
	size_t ol = strlen(d->path), i;
	char *np = strdup(newpath);
	struct fs_ino *ip;

	if (!np)
		return -ENOMEM;
	fs_dtab_unlink(fs, d);
	free(d->path);
	d->path = np;
	fs_dtab_link(fs, d);
	if ((ip = fs_ino_find(fs, d->ino)))
		fs_ino_set_key(ip, 0, np);
	if (ndir != d->parent) {
		fs_dent_kid_del(d->parent, d);
		if (fs_dent_kid_add(ndir, d))
			return -ENOMEM;
	}
	for (i = 0; i < d->n_kids; i++) {
		struct fs_dent *k = d->kids[i];
		char *kp = fs_join(np, k->path + ol + 1);
		int rc;

		if (!kp)
			return -ENOMEM;
		rc = fs_dent_move(fs, k, d, kp);
		free(kp);
		if (rc)
			return rc;
	}
	return 0;
}

void fs_dent_renumber(struct fs *fs, struct fs_dent *d, uint64_t ino)
{
	fs_dtab_unlink(fs, d);
	d->ino = ino;
	fs_dtab_link(fs, d);
}

static int fs_docs_load_dir(void *arg, const char *path,
			    const struct store_dir *sd)
{
	struct fs *fs = arg;
	struct timespec m = { sd->mtime, 0 }, c = { sd->ctime, 0 };
	struct fs_dent *d = fs_dent_find(fs, path);

	if (d) { /* made implicitly by a deeper record first */
		fs_dent_renumber(fs, d, sd->ino);
	} else {
		d = fs_dent_add(fs, path, sd->ino, S_IFDIR | (sd->mode & 07777),
				m, c);
		if (!d)
			return -ENOMEM;
	}
	d->mode = S_IFDIR | (sd->mode & 07777);
	d->mtime = m;
	d->ctime = c;
	d->recorded = 1;
	return 0;
}

static int fs_docs_load_file(void *arg, const char *id,
			     const struct store_file *f)
{
	struct fs *fs = arg;
	struct timespec m = { f->mtime, 0 }, c = { f->ctime, 0 };
	struct fs_dent *d;
	uint64_t ino = f->ino ? f->ino : fs_hash_ino(FS_K_DOC, id, NULL, NULL);

	d = fs_dent_add(fs, id, ino, S_IFREG | (f->mode & 07777), m, c);
	if (!d)
		return -ENOMEM;
	d->size = f->size;
	return 0;
}

int fs_docs_load(struct fs *fs)
{
	struct timespec t = fs->mounted;
	int rc;

	if (fs_dtab_grow(fs))
		return -ENOMEM;
	fs->docs_root = fs_dent_add(fs, "", FS_INO_DOCS, S_IFDIR | 0755, t, t);
	if (!fs->docs_root)
		return -ENOMEM;
	fs->docs_root->recorded = 1;
	rc = store_dirs_foreach(fs->st, fs_docs_load_dir, fs);
	if (!rc)
		rc = store_files_foreach(fs->st, fs_docs_load_file, fs);
	return rc;
}

void fs_docs_free(struct fs *fs)
{
	size_t i;

	for (i = 0; i < fs->dtab_cap; i++) {
		struct fs_dent *d = fs->ptab[i], *n;

		for (; d; d = n) {
			n = d->next_path;
			free(d->kids);
			free(d->path);
			free(d);
		}
	}
	free(fs->ptab);
	free(fs->ntab);
	fs->ptab = fs->ntab = NULL;
	fs->dtab_cap = fs->dtab_n = 0;
}

void fs_dent_stat(struct fs *fs, const struct fs_dent *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = d->ino;
	st->st_mode = d->mode;
	st->st_nlink = 1;
	if (S_ISDIR(d->mode)) {
		size_t i;

		st->st_nlink = 2;
		for (i = 0; i < d->n_kids; i++)
			st->st_nlink += S_ISDIR(d->kids[i]->mode) != 0;
	}
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = S_ISDIR(d->mode) ? 4096 : (off_t)d->size;
	st->st_blksize = 65536;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = d->mtime;
	st->st_ctim = d->ctime;
	st->st_atim = d->mtime;
}

static void fs_docs_fill(struct fs *fs, struct fs_dent *d,
			 struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = d->ino;
	e->generation = 1;
	fs_dent_stat(fs, d, &e->attr);
	e->attr_timeout = fs->opts.attr_timeout;
	e->entry_timeout = fs->opts.entry_timeout;
}

/* Takes a kernel reference on d's inode and fills e; caller holds fs->mu. */
static int fs_docs_ref(struct fs *fs, struct fs_dent *d,
		       struct fuse_entry_param *e)
{
	if (!fs_ino_get(fs, d->ino, S_ISDIR(d->mode) ? FS_K_DOCDIR : FS_K_DOC,
			d->path, NULL, NULL, 1))
		return -ENOMEM;
	fs_docs_fill(fs, d, e);
	return 0;
}

int fs_docs_lookup(struct fs *fs, struct fs_ino *dir, const char *name,
		   struct fuse_entry_param *e)
{
	struct fs_dent *d;
	char *path;
	int rc = fs_name_check(name);

	if (rc) {
		fs_error(fs, dir->keys[0], "refused name: %s",
			 rc == -EINVAL ? "not valid UTF-8"
				       : "longer than 255 bytes");
		return rc;
	}
	pthread_mutex_lock(&fs->mu);
	path = fs_join(dir->keys[0], name);
	d = path ? fs_dent_find(fs, path) : NULL;
	rc = !path ? -ENOMEM : !d ? -ENOENT : fs_docs_ref(fs, d, e);
	pthread_mutex_unlock(&fs->mu);
	free(path);
	return rc;
}

/* Takes a reference on the dentry numbered ino and fills e; `missing` if none. */
static int fs_docs_entry_of(struct fs *fs, uint64_t ino, int with_root,
			    int missing, struct fuse_entry_param *e)
{
	struct fs_dent *d;
	int rc;

	pthread_mutex_lock(&fs->mu);
	d = fs_dent_by_ino(fs, ino);
	if (d && (with_root || d != fs->docs_root))
		rc = fs_docs_ref(fs, d, e);
	else
		rc = missing;
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

int fs_docs_entry(struct fs *fs, uint64_t ino, struct fuse_entry_param *e)
{
	return fs_docs_entry_of(fs, ino, 1, -ESTALE, e);
}

int fs_docs_entry_plus(struct fs *fs, uint64_t ino, struct fuse_entry_param *e)
{
	return fs_docs_entry_of(fs, ino, 0, -ENOENT, e);
}

int fs_docs_getattr(struct fs *fs, struct fs_ino *ip, struct stat *st)
{
	struct fs_dent *d;
	int rc = 0;

	pthread_mutex_lock(&fs->mu);
	d = fs_dent_by_ino(fs, ip->ino);
	if (d) {
		fs_dent_stat(fs, d, st);
	} else if (ip->file && ip->file->opens) {
		/* removed while open: as on disk, it lives on, unlinked */
		struct fs_dent gone = { .ino = ip->ino,
					.mode = S_IFREG | 0644,
					.size = ip->file->len,
					.mtime = fs->mounted,
					.ctime = fs->mounted };

		fs_dent_stat(fs, &gone, st);
		st->st_nlink = 0;
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

int fs_docs_list(struct fs *fs, struct fs_ino *dir, struct fs_dirlist *l)
{
	struct fs_dent *d;
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&fs->mu);
	d = fs_dent_by_ino(fs, dir->ino);
	if (!d)
		rc = -ENOENT;
	for (i = 0; d && i < d->n_kids && !rc; i++)
		rc = fs_dirlist_add(l, fs_basename(d->kids[i]->path),
				    d->kids[i]->ino, d->kids[i]->mode & S_IFMT);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* --- namespace ------------------------------------------------------------ */

/* For a change of the namespace that commits: docs_mu, then ns_mu. */
static void fs_ns_lock(struct fs *fs)
{
	pthread_mutex_lock(&fs->docs_mu);
	pthread_mutex_lock(&fs->ns_mu);
}

static void fs_ns_unlock(struct fs *fs)
{
	pthread_mutex_unlock(&fs->ns_mu);
	pthread_mutex_unlock(&fs->docs_mu);
}

static int fs_docs_parent_path(struct fs_ino *dir, const char *name,
			       char **path)
{
	int rc = fs_name_check(name);

	if (rc)
		return rc;
	*path = fs_join(dir->keys[0], name);
	return *path ? 0 : -ENOMEM;
}

int fs_docs_create(struct fs *fs, struct fs_ino *dir, const char *name,
		   mode_t mode, struct fuse_entry_param *e,
		   struct fs_handle **hp)
{
	struct timespec now;
	struct fs_dent *d;
	struct fs_ino *ip = NULL;
	struct fs_handle *h;
	char *path;
	int rc = fs_docs_parent_path(dir, name, &path), all_locks = 0;

	if (rc) {
		fs_error(fs, dir->keys[0], "refused name: %s",
			 rc == -EINVAL ? "not valid UTF-8"
				       : "longer than 255 bytes");
		return rc;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	/* ns_mu alone: a create does not wait for a commit round ... */
	pthread_mutex_lock(&fs->ns_mu);
	if (fs_dels_has(fs, path)) {
		/*
		 * ... unless the path was removed and its deletion is not
		 * committed yet: it is committed first (after the round
		 * that may hold it), so that it cannot delete the new
		 * document or bring the old one back.
		 */
		pthread_mutex_unlock(&fs->ns_mu);
		fs_ns_lock(fs);
		all_locks = 1;
		if (fs_dels_has(fs, path) && fs_dels_flush(fs)) {
			fs_error(fs, path,
				 "create failed: the removal before it did "
				 "not commit");
			fs_ns_unlock(fs);
			free(path);
			return -EIO;
		}
	}
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, path);
	if (d) {
		rc = -EEXIST;
		goto out;
	}
	d = fs_dent_add(fs, path, store_new_ino(path), S_IFREG | (mode & 07777),
			now, now);
	if (d)
		fs_dent_dir_changed(d->parent);
	if (!d) {
		rc = -ENOMEM;
		goto out;
	}
	ip = fs_ino_get(fs, d->ino, FS_K_DOC, path, NULL, NULL, 1);
	if (!ip || !fs_file_open(ip)) {
		rc = -ENOMEM;
		goto out;
	}
	ip->file->loaded = 1;
	ip->file->dirty = 1; /* an empty new file is a document too */
	ip->file->xattrs = json_object();
	fs_docs_fill(fs, d, e);
out:
	pthread_mutex_unlock(&fs->mu);
	if (all_locks)
		fs_ns_unlock(fs);
	else
		pthread_mutex_unlock(&fs->ns_mu);
	free(path);
	if (rc)
		return rc;
	h = fs_handle_new(ip, 1);
	if (!h) {
		/* the kernel never sees this open: drop it */
		pthread_mutex_lock(&fs->mu);
		ip->file->opens--;
		ip->opens--;
		pthread_mutex_unlock(&fs->mu);
		return -ENOMEM;
	}
	*hp = h;
	return 0;
}

int fs_docs_dir_record(struct store_txn *t, const struct fs_dent *d)
{
	struct store_dir sd = { .mode = d->mode & 07777,
				.mtime = d->mtime.tv_sec,
				.ctime = d->ctime.tv_sec,
				.ino = d->ino };

	return store_txn_dir_put(t, d->path, &sd);
}

int fs_docs_mkdir(struct fs *fs, struct fs_ino *dir, const char *name,
		  mode_t mode, struct fuse_entry_param *e)
{
	struct fs_dent nd = { 0 }, *d;
	struct store_txn *t;
	struct fs_dels dels;
	char *path;
	int rc = fs_docs_parent_path(dir, name, &path);

	if (rc)
		return rc;
	fs_ns_lock(fs);
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, path);
	pthread_mutex_unlock(&fs->mu);
	if (d) {
		rc = -EEXIST;
		goto out;
	}
	nd.path = path;
	nd.ino = store_new_ino(path);
	nd.mode = S_IFDIR | (mode & 07777);
	clock_gettime(CLOCK_REALTIME, &nd.mtime);
	nd.ctime = nd.mtime;
	rc = fs_docs_txn_begin(fs, &t, &dels);
	if (rc)
		goto out;
	rc = fs_docs_dir_record(t, &nd);
	if (rc) {
		fs_docs_txn_end(fs, t, &dels, rc);
		goto out;
	}
	rc = fs_docs_txn_end(fs, t, &dels, 0);
	fs_docs_committed(fs, rc);
	if (rc)
		goto out;
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_add(fs, path, nd.ino, nd.mode, nd.mtime, nd.ctime);
	if (d)
		fs_dent_dir_changed(d->parent);
	if (d) {
		d->recorded = 1;
		rc = fs_docs_ref(fs, d, e);
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fs->mu);
out:
	fs_ns_unlock(fs);
	if (rc && rc != -EEXIST)
		fs_error(fs, path, "mkdir failed: %s", strerror(-rc));
	free(path);
	return rc;
}

/* 1 if dir needs a record when its last entry goes (fs->mu held). */
static int fs_docs_parent_unrecorded(struct fs *fs, const struct fs_dent *dir)
{
	return dir && !dir->recorded && dir != fs->docs_root &&
	       dir->n_kids <= 1;
}

/* Records dir when its last entry goes, so it outlives a remount. */
static int fs_docs_keep_parent(struct fs *fs, struct store_txn *t,
			       struct fs_dent *dir)
{
	if (!fs_docs_parent_unrecorded(fs, dir))
		return 0;
	return fs_docs_dir_record(t, dir);
}

/* Drops a document from the pending queue (it is being removed). */
void fs_docs_unqueue(struct fs *fs, struct fs_ino *ip)
{
	size_t i;

	pthread_mutex_lock(&fs->pend_mu);
	for (i = 0; i < fs->n_pend; i++)
		if (fs->pend[i] == ip) {
			fs->pend[i] = fs->pend[--fs->n_pend];
			ip->file->pending = 0;
			break;
		}
	pthread_mutex_unlock(&fs->pend_mu);
}

/*
 * Deletes the stored version of `path` now, in one transaction (with
 * the record of its parent if that would vanish: *kept is then set).
 */
static int fs_docs_unlink_commit(struct fs *fs, const char *path,
				 struct fs_dent *parent, int in_store,
				 int *kept)
{
	struct store_txn *t;
	struct fs_dels dels;
	size_t steps;
	int rc = fs_docs_txn_begin(fs, &t, &dels);

	if (rc)
		return rc;
	if (in_store)
		rc = store_txn_doc_del(t, path);
	if (!rc) {
		steps = store_txn_count(t);
		pthread_mutex_lock(&fs->mu);
		rc = fs_docs_keep_parent(fs, t, parent);
		*kept = !rc && store_txn_count(t) > steps;
		pthread_mutex_unlock(&fs->mu);
	}
	return fs_docs_txn_end(fs, t, &dels, rc);
}

/*
 * With sync=fsync the deletion is queued for the next round (durable
 * within a second, at an fsync or at unmount), unless the parent needs a
 * record; with sync=close it is durable when unlink returns.
 */
int fs_docs_unlink(struct fs *fs, struct fs_ino *dir, const char *name)
{
	struct fs_dent *d, *parent;
	struct fs_ino *ip;
	char *path;
	int rc = fs_docs_parent_path(dir, name, &path), in_store, kept = 0;
	int queue;

	if (rc)
		return rc;
	fs_ns_lock(fs);
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, path);
	parent = d ? d->parent : NULL;
	pthread_mutex_unlock(&fs->mu);
	if (!d) {
		rc = -ENOENT;
		goto out;
	}
	if (S_ISDIR(d->mode)) {
		rc = -EISDIR;
		goto out;
	}
	fs_docs_keep_content(fs, d->ino);
	in_store = store_doc_exists(fs->st, path);
	pthread_mutex_lock(&fs->mu);
	queue = fs->opts.sync == FS_SYNC_FSYNC &&
		!fs_docs_parent_unrecorded(fs, parent);
	pthread_mutex_unlock(&fs->mu);
	if (queue) {
		rc = in_store ? fs_dels_queue(fs, path) : 0;
	} else {
		rc = fs_docs_unlink_commit(fs, path, parent, in_store, &kept);
		fs_docs_committed(fs, rc);
	}
	if (rc) {
		fs_error(fs, path, "rm failed: %s (%s)", store_last_error(),
			 strerror(-rc));
		rc = rc == -ENOENT ? -ENOENT : -EIO;
		goto out;
	}
	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_find(fs, d->ino);
	if (ip) {
		ip->unlinked = 1;
		if (ip->file) {
			pthread_mutex_unlock(&fs->mu);
			fs_docs_unqueue(fs, ip);
			pthread_mutex_lock(&fs->mu);
			fs_file_maybe_free(fs, ip);
		}
	}
	if (kept)
		parent->recorded = 1;
	fs_dent_dir_changed(d->parent);
	fs_dent_remove(fs, d);
	pthread_mutex_unlock(&fs->mu);
out:
	fs_ns_unlock(fs);
	free(path);
	return rc;
}

int fs_docs_rmdir(struct fs *fs, struct fs_ino *dir, const char *name)
{
	struct fs_dent *d;
	struct store_txn *t = NULL;
	struct fs_dels dels;
	char *path;
	int rc = fs_docs_parent_path(dir, name, &path);

	if (rc)
		return rc;
	fs_ns_lock(fs);
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, path);
	rc = !d			 ? -ENOENT
	     : !S_ISDIR(d->mode) ? -ENOTDIR
	     : d->n_kids	 ? -ENOTEMPTY
				 : 0;
	pthread_mutex_unlock(&fs->mu);
	if (rc)
		goto out;
	rc = fs_docs_txn_begin(fs, &t, &dels);
	if (!rc) {
		if (d->recorded)
			rc = store_txn_dir_del(t, path);
		if (!rc)
			rc = fs_docs_keep_parent(fs, t, d->parent);
		rc = fs_docs_txn_end(fs, t, &dels, rc);
	}
	fs_docs_committed(fs, rc);
	if (rc) {
		fs_error(fs, path, "rmdir failed: %s", strerror(-rc));
		rc = -EIO;
		goto out;
	}
	pthread_mutex_lock(&fs->mu);
	if (d->parent && d->parent != fs->docs_root && d->parent->n_kids == 1)
		d->parent->recorded = 1;
	{
		struct fs_ino *ip = fs_ino_find(fs, d->ino);

		if (ip)
			ip->unlinked = 1;
	}
	fs_dent_dir_changed(d->parent);
	fs_dent_remove(fs, d);
	pthread_mutex_unlock(&fs->mu);
out:
	fs_ns_unlock(fs);
	free(path);
	return rc;
}

/* Collects the documents and directories below d (d included). */
struct fs_docs_walk {
	struct fs_dent **v;
	size_t n, cap;
};

static int fs_docs_walk(struct fs_docs_walk *w, struct fs_dent *d)
{
	struct fs_dent **v =
		fs_reserve(w->v, &w->cap, w->n + 1, sizeof(*v), 64);
	size_t i;

	if (!v)
		return -ENOMEM;
	w->v = v;
	w->v[w->n++] = d;
	for (i = 0; i < d->n_kids; i++)
		if (fs_docs_walk(w, d->kids[i]))
			return -ENOMEM;
	return 0;
}

/* Commits an open, changed document before it moves (it must exist). */
static int fs_docs_settle(struct fs *fs, struct fs_ino *ip)
{
	struct fs_file *f = ip ? fs_file_pin(fs, ip) : NULL;
	int dirty, rc = 0;

	if (!f)
		return 0;
	fs_docs_unqueue(fs, ip);
	pthread_mutex_lock(&f->mu);
	dirty = f->dirty;
	pthread_mutex_unlock(&f->mu);
	if (dirty)
		rc = fs_docs_commit_one(fs, ip);
	fs_file_unpin(fs, ip, f);
	return rc;
}

int fs_docs_rename(struct fs *fs, struct fs_ino *dir, const char *name,
		   struct fs_ino *ndir, const char *nname, unsigned flags)
{
	char *from = NULL, *to = NULL;
	struct fs_dent *d, *nd, *np;
	struct fs_docs_walk w = { 0 };
	struct store_txn *t = NULL;
	struct fs_dels dels;
	size_t i, fl;
	int rc;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	rc = fs_docs_parent_path(dir, name, &from);
	if (!rc)
		rc = fs_docs_parent_path(ndir, nname, &to);
	if (rc) {
		free(from);
		return rc;
	}
	fl = strlen(from);
	fs_ns_lock(fs);
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, from);
	nd = fs_dent_find(fs, to);
	np = fs_dent_by_ino(fs, ndir->ino);
	if (!d || !np)
		rc = -ENOENT;
	else if (d == nd)
		rc = 1; /* same entry: nothing to do */
	else if (nd && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	else if (nd && S_ISDIR(d->mode) && !S_ISDIR(nd->mode))
		rc = -ENOTDIR;
	else if (nd && !S_ISDIR(d->mode) && S_ISDIR(nd->mode))
		rc = -EISDIR;
	else if (nd && nd->n_kids)
		rc = -ENOTEMPTY;
	else if (S_ISDIR(d->mode) && strncmp(to, from, fl) == 0 &&
		 to[fl] == '/')
		rc = -EINVAL;
	if (!rc)
		rc = fs_docs_walk(&w, d);
	pthread_mutex_unlock(&fs->mu);
	if (rc)
		goto out;
	/*
	 * Queued removals are committed first: a target path may be one
	 * of them, and a move there must not be deleted after it.
	 */
	rc = fs_dels_flush(fs);
	if (rc) {
		fs_error(fs, from,
			 "rename to %s failed: the removals before "
			 "it did not commit",
			 to);
		rc = -EIO;
		goto out;
	}
	/* A replaced target keeps its content for its open readers. */
	if (nd && !S_ISDIR(nd->mode))
		fs_docs_keep_content(fs, nd->ino);
	/* Open documents with unsaved changes are committed first. */
	for (i = 0; i < w.n && !rc; i++)
		if (!S_ISDIR(w.v[i]->mode)) {
			struct fs_ino *ip;

			pthread_mutex_lock(&fs->mu);
			ip = fs_ino_find(fs, w.v[i]->ino);
			pthread_mutex_unlock(&fs->mu);
			rc = fs_docs_settle(fs, ip);
		}
	if (!rc)
		rc = fs_docs_txn_begin(fs, &t, &dels);
	if (!rc && nd && S_ISDIR(nd->mode) && nd->recorded)
		rc = store_txn_dir_del(t, to);
	for (i = 0; i < w.n && !rc; i++) {
		struct fs_dent *e = w.v[i];
		char *np2 = fs_join(to, "");

		free(np2);
		np2 = e == d ? strdup(to) : fs_join(to, e->path + fl + 1);
		if (!np2) {
			rc = -ENOMEM;
			break;
		}
		if (S_ISDIR(e->mode)) {
			struct fs_dent tmp = *e;

			tmp.path = np2;
			if (e->recorded)
				rc = store_txn_dir_del(t, e->path);
			if (!rc)
				rc = fs_docs_dir_record(t, &tmp);
		} else if (store_doc_exists(fs->st, e->path)) {
			rc = store_txn_doc_move(t, e->path, np2, e->ino);
		}
		free(np2);
	}
	if (!rc) {
		pthread_mutex_lock(&fs->mu);
		if (d->parent != np)
			rc = fs_docs_keep_parent(fs, t, d->parent);
		pthread_mutex_unlock(&fs->mu);
	}
	if (t)
		rc = fs_docs_txn_end(fs, t, &dels, rc);
	t = NULL;
	fs_docs_committed(fs, rc);
	if (rc) {
		fs_error(fs, from, "rename to %s failed: %s (%s)", to,
			 store_last_error(), strerror(-rc));
		rc = rc == -ENOMEM ? rc : -EIO;
		goto out;
	}
	pthread_mutex_lock(&fs->mu);
	if (d->parent != np && d->parent != fs->docs_root &&
	    d->parent->n_kids == 1)
		d->parent->recorded = 1;
	if (nd) {
		struct fs_ino *ip = fs_ino_find(fs, nd->ino);

		if (ip)
			ip->unlinked = 1;
		fs_dent_remove(fs, nd);
	}
	fs_dent_dir_changed(d->parent);
	fs_dent_dir_changed(np);
	rc = fs_dent_move(fs, d, np, to);
	for (i = 0; i < w.n; i++)
		if (S_ISDIR(w.v[i]->mode))
			w.v[i]->recorded = 1;
	clock_gettime(CLOCK_REALTIME, &d->ctime);
	pthread_mutex_unlock(&fs->mu);
out:
	if (rc == 1)
		rc = 0;
	fs_ns_unlock(fs);
	free(w.v);
	free(from);
	free(to);
	return rc;
}
