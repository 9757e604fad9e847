/* fs_refresh.c - catching up with other mounts of a shared store. */
/*
 * Several mounts of one S3/R2 prefix write at once; each commits its own
 * segments and sees the others' when it catches up (store_refresh): every
 * `refresh` seconds in a thread of its own, and when something writes to
 * .lodefs/refresh.  The store reports each document and docs/ directory
 * another writer changed; the tree in memory is brought in line with the
 * store's records, and the kernel is told to forget what it cached about
 * them (attributes, pages, names).  Other views are read from the store
 * at every open and have an attribute timeout of 0, so moving fs->version
 * (the key of the query caches) is all they need.
 *
 * A document with local changes not yet committed (open and written,
 * queued for a sync=fsync round, or removed with its removal queued) is
 * left alone: this mount's commit comes later, so under last-writer-wins
 * it is the version that stays.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/fs_int.h"

enum fs_notice_kind {
	FS_N_INODE,  /* attributes and pages of ino */
	FS_N_ENTRY,  /* the name `name` in `parent` */
	FS_N_DELETE, /* `name` in `parent`, which was ino, is gone */
};

struct fs_notice {
	enum fs_notice_kind kind;
	uint64_t parent, ino;
	char *name;
};

struct fs_notices {
	struct fs_notice *v;
	size_t n, cap;
};

/* One change store_refresh reported, kept until the store is unlocked. */
struct fs_change {
	enum store_change_kind kind;
	char *key;
};

struct fs_changes {
	struct fs_change *v;
	size_t n, cap;
	int oom;
};

static void fs_notice(struct fs_notices *ns, enum fs_notice_kind kind,
		      uint64_t parent, uint64_t ino, const char *name)
{
	struct fs_notice *v;

	v = fs_reserve(ns->v, &ns->cap, ns->n + 1, sizeof(*v), 32);
	if (!v)
		return; /* the kernel's caches time out anyway */
	ns->v = v;
	v[ns->n].kind = kind;
	v[ns->n].parent = parent;
	v[ns->n].ino = ino;
	v[ns->n].name = name ? strdup(name) : NULL;
	if (name && !v[ns->n].name)
		return;
	ns->n++;
}

/*
 * Tells the kernel, with no lock held: a notice may wait for the kernel's
 * own locks, which a request in flight holds while it waits for ours.
 */
static void fs_notices_send(struct fs *fs, struct fs_notices *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++) {
		struct fs_notice *n = &ns->v[i];

		if (fs->se) {
			switch (n->kind) {
			case FS_N_INODE:
				fuse_lowlevel_notify_inval_inode(fs->se, n->ino,
								 0, 0);
				break;
			case FS_N_ENTRY:
				fuse_lowlevel_notify_inval_entry(
					fs->se, n->parent, n->name,
					strlen(n->name));
				break;
			case FS_N_DELETE:
				/* -ENOENT: the kernel had no such dentry */
				if (fuse_lowlevel_notify_delete(
					    fs->se, n->parent, n->ino, n->name,
					    strlen(n->name)) != 0)
					fuse_lowlevel_notify_inval_entry(
						fs->se, n->parent, n->name,
						strlen(n->name));
				break;
			}
		}
		free(n->name);
	}
	free(ns->v);
	ns->v = NULL;
	ns->n = ns->cap = 0;
}

static const char *fs_base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static uint64_t fs_parent_ino(const struct fs_dent *d)
{
	return d->parent ? d->parent->ino : FS_INO_DOCS;
}

/*
 * True if ip's document has changes this mount has not committed yet.
 * Caller holds fs->mu.
 */
static int fs_doc_busy(struct fs *fs, uint64_t ino)
{
	struct fs_ino *ip = fs_ino_find(fs, ino);
	struct fs_file *f = ip ? ip->file : NULL;
	int busy;

	if (!f)
		return 0;
	pthread_mutex_lock(&fs->pend_mu);
	busy = f->dirty || f->pending || f->inflight;
	pthread_mutex_unlock(&fs->pend_mu);
	return busy;
}

/*
 * The cached content of a document another writer changed: dropped when
 * nobody has it open (the next open reads the new version).  Open handles
 * keep reading the version they opened, as after a rename onto the file
 * on a local file system.  Caller holds fs->mu.
 */
static void fs_doc_forget_content(struct fs *fs, uint64_t ino)
{
	struct fs_ino *ip = fs_ino_find(fs, ino);

	if (ip && ip->file)
		fs_file_maybe_free(fs, ip);
}

/* Notices for the names of `path` that the tree did not have before. */
static void fs_notice_new_path(struct fs *fs, const char *path, size_t known,
			       struct fs_notices *ns)
{
	struct fs_dent *d = fs_dent_find(fs, path);

	/* walk up to the deepest ancestor that existed before */
	while (d && d->parent && strlen(d->parent->path) >= known &&
	       d->parent != fs->docs_root)
		d = d->parent;
	if (d)
		fs_notice(ns, FS_N_ENTRY, fs_parent_ino(d), 0,
			  fs_base(d->path));
}

/* Length of the longest ancestor path of `path` the tree has. */
static size_t fs_known_prefix(struct fs *fs, const char *path)
{
	char *p = strdup(path), *slash;
	size_t known = 0;

	if (!p)
		return 0;
	while ((slash = strrchr(p, '/'))) {
		*slash = '\0';
		if (fs_dent_find(fs, p)) {
			known = strlen(p) + 1;
			break;
		}
	}
	free(p);
	return known;
}

/* Removes the document d from the tree (fs->mu held). */
static void fs_drop_doc(struct fs *fs, struct fs_dent *d, struct fs_notices *ns)
{
	struct fs_ino *ip = fs_ino_find(fs, d->ino);

	fs_notice(ns, FS_N_DELETE, fs_parent_ino(d), d->ino, fs_base(d->path));
	if (ip) {
		ip->unlinked = 1;
		fs_doc_forget_content(fs, d->ino);
	}
	fs_dent_dir_changed(d->parent);
	fs_dent_remove(fs, d);
}

static void fs_sync_doc(struct fs *fs, const char *id, struct fs_notices *ns)
{
	struct store_file f;
	struct fs_dent *d, *o;
	struct timespec m, c;
	uint64_t ino;
	int rc = store_doc_stat(fs->st, id, &f);

	if (rc && rc != -ENOENT) {
		fs_error(fs, id, "refresh: cannot read the record: %s",
			 strerror(-rc));
		return;
	}
	/* removed here, removal not committed yet: it comes later and wins */
	if (fs_dels_has(fs, id)) {
		store_file_release(&f);
		return;
	}
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, id);
	if (d && S_ISDIR(d->mode)) {
		if (rc == 0)
			fs_error(fs, id,
				 "refresh: another mount made a file where "
				 "this one has a directory; the directory is "
				 "shown");
		goto out;
	}
	if (d && fs_doc_busy(fs, d->ino))
		goto out; /* our commit comes later and wins */
	if (rc == -ENOENT) {
		if (d)
			fs_drop_doc(fs, d, ns);
		goto out;
	}
	ino = f.ino ? f.ino : fs_hash_ino(FS_K_DOC, id, NULL, NULL);
	if (d && d->ino != ino) {
		fs_drop_doc(fs, d, ns); /* the name is another file now */
		d = NULL;
	}
	m = (struct timespec){ f.mtime, 0 };
	c = (struct timespec){ f.ctime, 0 };
	if (!d) {
		size_t known = fs_known_prefix(fs, id);

		o = fs_dent_by_ino(fs, ino);
		if (o && S_ISREG(o->mode)) {
			/* moved by the other writer: the number goes along */
			const char *slash = strrchr(id, '/');
			char *pp = slash ? strndup(id, (size_t)(slash - id))
					 : strdup("");
			struct fs_dent *nd = pp ? fs_dent_dir(fs, pp) : NULL;

			free(pp);
			if (!nd || fs_doc_busy(fs, ino))
				goto out;
			fs_notice(ns, FS_N_DELETE, fs_parent_ino(o), o->ino,
				  fs_base(o->path));
			fs_dent_dir_changed(o->parent);
			if (fs_dent_move(fs, o, nd, id))
				goto out;
			d = o;
		} else {
			d = fs_dent_add(fs, id, ino, S_IFREG | (f.mode & 07777),
					m, c);
			if (!d) {
				fs_error(fs, id, "refresh: out of memory");
				goto out;
			}
		}
		fs_dent_dir_changed(d->parent);
		fs_notice_new_path(fs, id, known, ns);
	}
	d->mode = S_IFREG | (f.mode & 07777);
	d->size = f.size;
	d->mtime = m;
	d->ctime = c;
	fs_doc_forget_content(fs, d->ino);
	fs_notice(ns, FS_N_INODE, 0, d->ino, NULL);
out:
	pthread_mutex_unlock(&fs->mu);
	store_file_release(&f);
}

static void fs_sync_dir(struct fs *fs, const char *path, struct fs_notices *ns)
{
	struct store_dir sd;
	struct fs_dent *d;
	int rc = store_dir_stat(fs->st, path, &sd);

	if (!*path)
		return; /* docs/ itself */
	if (rc && rc != -ENOENT) {
		fs_error(fs, path, "refresh: cannot read the record: %s",
			 strerror(-rc));
		return;
	}
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_find(fs, path);
	if (d && !S_ISDIR(d->mode))
		goto out; /* a file of ours holds the name: its record wins */
	if (rc == -ENOENT) {
		if (!d || d == fs->docs_root)
			goto out;
		d->recorded = 0; /* implicit while it holds something */
		if (!d->n_kids) {
			fs_notice(ns, FS_N_DELETE, fs_parent_ino(d), d->ino,
				  fs_base(d->path));
			fs_dent_dir_changed(d->parent);
			fs_dent_remove(fs, d);
		}
		goto out;
	}
	if (!d) {
		size_t known = fs_known_prefix(fs, path);
		struct timespec t = { sd.mtime, 0 };

		d = fs_dent_add(fs, path, sd.ino, S_IFDIR | 0755, t, t);
		if (!d) {
			fs_error(fs, path, "refresh: out of memory");
			goto out;
		}
		fs_dent_dir_changed(d->parent);
		fs_notice_new_path(fs, path, known, ns);
	} else if (sd.ino && d->ino != sd.ino) {
		/* two mounts made it at once: the winning record's number */
		fs_notice(ns, FS_N_DELETE, fs_parent_ino(d), d->ino,
			  fs_base(d->path));
		fs_dent_renumber(fs, d, sd.ino);
	}
	d->mode = S_IFDIR | (sd.mode ? sd.mode & 07777 : 0755);
	d->mtime = (struct timespec){ sd.mtime, 0 };
	d->ctime = (struct timespec){ sd.ctime ? sd.ctime : sd.mtime, 0 };
	d->recorded = 1;
	fs_notice(ns, FS_N_INODE, 0, d->ino, NULL);
out:
	pthread_mutex_unlock(&fs->mu);
}

static void fs_change_note(void *arg, enum store_change_kind kind,
			   const char *key)
{
	struct fs_changes *cs = arg;
	struct fs_change *v;

	v = fs_reserve(cs->v, &cs->cap, cs->n + 1, sizeof(*v), 32);
	if (!v) {
		cs->oom = 1;
		return;
	}
	cs->v = v;
	v[cs->n].kind = kind;
	v[cs->n].key = strdup(key);
	if (!v[cs->n].key) {
		cs->oom = 1;
		return;
	}
	cs->n++;
}

int fs_refresh_now(struct fs *fs)
{
	struct fs_changes cs = { 0 };
	struct fs_notices ns = { 0 };
	struct timespec now;
	size_t i;
	int rc;

	pthread_mutex_lock(&fs->refresh_mu);
	rc = store_refresh(fs->st, fs_change_note, &cs);
	if (rc > 0 || cs.n) {
		/* namespace changes are serialised with this mount's own */
		pthread_mutex_lock(&fs->docs_mu);
		pthread_mutex_lock(&fs->ns_mu);
		for (i = 0; i < cs.n; i++) {
			if (cs.v[i].kind == STORE_CHANGE_DOC)
				fs_sync_doc(fs, cs.v[i].key, &ns);
			else
				fs_sync_dir(fs, cs.v[i].key, &ns);
		}
		atomic_fetch_add(&fs->version, 1);
		pthread_mutex_unlock(&fs->ns_mu);
		pthread_mutex_unlock(&fs->docs_mu);
		atomic_fetch_add(&fs->refresh_changes, (uint64_t)cs.n);
	}
	if (cs.oom)
		fs_error(fs, "docs",
			 "refresh: out of memory; some changes of other "
			 "mounts show after a remount");
	for (i = 0; i < cs.n; i++)
		free(cs.v[i].key);
	free(cs.v);
	atomic_fetch_add(&fs->refreshes, 1);
	clock_gettime(CLOCK_REALTIME, &now);
	if (rc < 0) {
		/* one line per outage, not one per attempt */
		if (!fs->refresh_failing)
			fs_error(fs, ".lodefs/refresh",
				 "cannot catch up with other writers: %s (%s)",
				 store_last_error(), strerror(-rc));
		fs->refresh_failing = 1;
		atomic_fetch_add(&fs->refresh_errors, 1);
	} else {
		fs->refresh_failing = 0;
		atomic_store(&fs->last_refresh_ns,
			     (uint64_t)now.tv_sec * 1000000000u +
				     (uint64_t)now.tv_nsec);
		rc = 0;
	}
	pthread_mutex_unlock(&fs->refresh_mu);
	fs_notices_send(fs, &ns);
	return rc;
}

static void *fs_refresher(void *arg)
{
	struct fs *fs = arg;
	struct timespec at;
	uint64_t ns = (uint64_t)(fs->opts.refresh * 1e9);

	pthread_mutex_lock(&fs->refresher_mu);
	while (!fs->refresher_stop) {
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_sec += (time_t)(ns / 1000000000u);
		at.tv_nsec += (long)(ns % 1000000000u);
		if (at.tv_nsec >= 1000000000) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000;
		}
		while (!fs->refresher_stop &&
		       pthread_cond_timedwait(&fs->refresher_cv,
					      &fs->refresher_mu, &at) == 0)
			;
		if (fs->refresher_stop)
			break;
		pthread_mutex_unlock(&fs->refresher_mu);
		fs_refresh_now(fs);
		pthread_mutex_lock(&fs->refresher_mu);
	}
	pthread_mutex_unlock(&fs->refresher_mu);
	return NULL;
}

int fs_refresher_start(struct fs *fs)
{
	if (fs->opts.refresh <= 0)
		return 0;
	if (pthread_create(&fs->refresher, NULL, fs_refresher, fs))
		return -EAGAIN;
	fs->refresher_running = 1;
	return 0;
}

void fs_refresher_stop(struct fs *fs)
{
	if (!fs->refresher_running)
		return;
	pthread_mutex_lock(&fs->refresher_mu);
	fs->refresher_stop = 1;
	pthread_cond_signal(&fs->refresher_cv);
	pthread_mutex_unlock(&fs->refresher_mu);
	pthread_join(fs->refresher, NULL);
	fs->refresher_running = 0;
}
