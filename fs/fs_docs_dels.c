/* fs_docs_dels.c - sync=fsync: removed documents waiting for a commit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "fs/fs_int.h"

/*
 * With sync=fsync an unlink takes the document out of the tree at once
 * and queues the deletion of its stored version; the next transaction of
 * docs/ (a background round, or any change committed at once: mkdir,
 * rename, ...) carries every queued deletion, so that the store never
 * holds the result of a later change without the deletions before it.
 * A queued path is not in the tree, and is never in it again while it is
 * queued: a create of that path commits the queue first.
 *
 * Transactions hold docs_mu, and so does unlink, so the queue is taken
 * by one transaction at a time; pend_mu guards it, and the queue taken
 * (dels_taken), for create (which does not wait for docs_mu), the
 * flusher and .lodefs/stats.
 */

static size_t fs_dels_slot(const struct fs_dels *q, const char *path)
{
	return (size_t)XXH3_64bits(path, strlen(path)) & (q->icap - 1);
}

/* The index slot of path, or the empty one where it would go. */
static size_t fs_dels_find(const struct fs_dels *q, const char *path)
{
	size_t i = fs_dels_slot(q, path);

	while (q->index[i] && strcmp(q->v[q->index[i] - 1], path) != 0)
		i = (i + 1) & (q->icap - 1);
	return i;
}

static int fs_dels_rehash(struct fs_dels *q, size_t icap)
{
	uint32_t *index = calloc(icap, sizeof(*index));
	uint32_t *old = q->index;
	size_t i;

	if (!index)
		return -ENOMEM;
	q->index = index;
	q->icap = icap;
	for (i = 0; i < q->n; i++)
		q->index[fs_dels_find(q, q->v[i])] = (uint32_t)i + 1;
	free(old);
	return 0;
}

/* Adds path (taking it) to q; caller holds pend_mu.  0 or -ENOMEM. */
static int fs_dels_add_locked(struct fs_dels *q, char *path)
{
	char **v;

	if ((q->n + 1) * 2 > q->icap &&
	    fs_dels_rehash(q, q->icap ? q->icap * 2 : 256))
		return -ENOMEM;
	if (q->index[fs_dels_find(q, path)]) {
		free(path); /* queued already */
		return 0;
	}
	v = fs_reserve(q->v, &q->cap, q->n + 1, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	q->v = v;
	q->v[q->n++] = path;
	q->index[fs_dels_find(q, path)] = (uint32_t)q->n;
	return 0;
}

int fs_dels_queue(struct fs *fs, const char *path)
{
	char *p = strdup(path);
	int rc;

	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&fs->pend_mu);
	rc = fs_dels_add_locked(&fs->dels, p);
	/* the first change queued starts the flusher's second */
	if (!rc && (fs->dels.n + fs->n_pend == 1 ||
		    fs->dels.n + fs->n_pend > FS_PEND_DOCS_MAX))
		pthread_cond_signal(&fs->pend_cv);
	pthread_mutex_unlock(&fs->pend_mu);
	if (rc)
		free(p);
	return rc;
}

static int fs_dels_in(const struct fs_dels *q, const char *path)
{
	return q && q->n && q->index[fs_dels_find(q, path)];
}

int fs_dels_has(struct fs *fs, const char *path)
{
	int has;

	pthread_mutex_lock(&fs->pend_mu);
	has = fs_dels_in(&fs->dels, path) || fs_dels_in(fs->dels_taken, path);
	pthread_mutex_unlock(&fs->pend_mu);
	return has;
}

size_t fs_dels_count(struct fs *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->pend_mu);
	n = fs->dels.n;
	pthread_mutex_unlock(&fs->pend_mu);
	return n;
}

void fs_dels_take_locked(struct fs *fs, struct fs_dels *out)
{
	*out = fs->dels;
	memset(&fs->dels, 0, sizeof(fs->dels));
	/* still seen by fs_dels_has: a create of one of them must wait */
	if (out->n)
		fs->dels_taken = out;
}

int fs_dels_txn_add(struct fs *fs, struct store_txn *t, struct fs_dels *d)
{
	size_t i;
	int rc;

	for (i = 0; i < d->n; i++) {
		rc = store_txn_doc_del(t, d->v[i]);
		if (rc == -ENOMEM)
			return rc;
		/* refused (damaged, say): it stays, as an rm that failed */
		if (rc && rc != -ENOENT)
			fs_error(fs, d->v[i], "rm refused: %s",
				 store_last_error());
	}
	return 0;
}

/* Frees the paths of d (those not NULL) and d's arrays. */
static void fs_dels_clear(struct fs_dels *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->v[i]);
	free(d->v);
	free(d->index);
	memset(d, 0, sizeof(*d));
}

void fs_dels_done(struct fs *fs, struct fs_dels *d, int rc)
{
	size_t i;

	pthread_mutex_lock(&fs->pend_mu);
	for (i = 0; rc && i < d->n; i++) /* queued again, for a round */
		if (!fs_dels_add_locked(&fs->dels, d->v[i]))
			d->v[i] = NULL; /* the queue has it now */
	if (fs->dels_taken == d)
		fs->dels_taken = NULL;
	pthread_mutex_unlock(&fs->pend_mu);
	for (i = 0; rc && i < d->n; i++)
		if (d->v[i])
			fs_error(fs, d->v[i], "rm lost: out of memory");
	fs_dels_clear(d);
}

void fs_dels_free(struct fs_dels *d)
{
	fs_dels_clear(d);
}

int fs_docs_txn_begin(struct fs *fs, struct store_txn **t, struct fs_dels *d)
{
	int rc = store_txn_begin(fs->st, t);

	memset(d, 0, sizeof(*d));
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->pend_mu);
	fs_dels_take_locked(fs, d);
	pthread_mutex_unlock(&fs->pend_mu);
	rc = fs_dels_txn_add(fs, *t, d);
	if (rc) {
		store_txn_abort(*t);
		*t = NULL;
		fs_dels_done(fs, d, rc);
	}
	return rc;
}

int fs_docs_txn_end(struct fs *fs, struct store_txn *t, struct fs_dels *d,
		    int rc)
{
	size_t i;

	if (rc)
		store_txn_abort(t);
	else
		rc = store_txn_commit(t);
	for (i = 0; rc && i < d->n && i < 20; i++)
		fs_error(fs, d->v[i], "rm not committed yet: %s",
			 strerror(-rc));
	fs_dels_done(fs, d, rc);
	return rc;
}

int fs_dels_flush(struct fs *fs)
{
	struct store_txn *t;
	struct fs_dels d;
	int rc;

	if (!fs_dels_count(fs))
		return 0;
	rc = fs_docs_txn_begin(fs, &t, &d);
	if (rc)
		return rc;
	rc = fs_docs_txn_end(fs, t, &d, 0);
	fs_docs_committed(fs, rc);
	return rc;
}
