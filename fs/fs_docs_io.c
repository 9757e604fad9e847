/* fs_docs_io.c - docs/ contents: open files, commits, attributes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_int.h"

/* --- content -------------------------------------------------------------- */

static struct fs_file *fs_file_new(void)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (f)
		pthread_mutex_init(&f->mu, NULL);
	return f;
}

struct fs_file *fs_file_pin(struct fs *fs, struct fs_ino *ip)
{
	struct fs_file *f;

	pthread_mutex_lock(&fs->mu);
	f = ip->file;
	if (f)
		f->opens++;
	pthread_mutex_unlock(&fs->mu);
	return f;
}

void fs_file_unpin(struct fs *fs, struct fs_ino *ip, struct fs_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&fs->mu);
	f->opens--;
	fs_file_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->mu);
}

/* Frees ip's file if nothing needs it any more; caller holds fs->mu. */
void fs_file_maybe_free(struct fs *fs, struct fs_ino *ip)
{
	struct fs_file *f = ip->file;

	int busy;

	if (!f || f->opens || f->dirty)
		return;
	/* queued or being committed: the commit round frees it after */
	pthread_mutex_lock(&fs->pend_mu);
	busy = f->pending || f->inflight;
	pthread_mutex_unlock(&fs->pend_mu);
	if (busy)
		return;
	ip->file = NULL;
	fs_file_free(fs, f);
	fs_ino_forget(fs, ip->ino, 0);
}

/* Drops f's content: the private copy, or the ref to the stored bytes. */
static void fs_file_drop_content(struct fs *fs, struct fs_file *f)
{
	if (f->ref.data)
		store_ref_release(fs->st, &f->ref);
	else
		free(f->buf);
	f->buf = NULL;
	f->len = f->cap = 0;
}

void fs_file_free(struct fs *fs, struct fs_file *f)
{
	pthread_mutex_destroy(&f->mu);
	fs_file_drop_content(fs, f);
	json_decref(f->xattrs);
	free(f);
}

/*
 * Checks bytes [off, off + n) of f's stored content before they are used
 * (a large document from a checkpoint is checked a chunk at a time, the
 * first time one is read); a private copy needs nothing.  -EIO says why in
 * .lodefs/errors.  Caller holds f->mu.
 */
static int fs_file_check(struct fs *fs, const struct fs_ino *ip,
			 struct fs_file *f, size_t off, size_t n)
{
	int rc;

	if (!f->ref.data || !n)
		return 0;
	rc = store_ref_check(fs->st, &f->ref, off, n);
	if (rc)
		fs_error(fs, ip->keys[0], "cannot read the content: %s",
			 store_last_error());
	return rc;
}

/*
 * Makes f's buffer a private copy with room for n bytes (copy-on-write:
 * the stored bytes are read-only and stay what open readers see until
 * the file is freed; here the copy replaces them for every handle, as
 * the old private buffer did).  Caller holds f->mu.
 */
static int fs_file_reserve(struct fs *fs, const struct fs_ino *ip,
			   struct fs_file *f, size_t n)
{
	char *b;
	size_t cap;

	if (n <= f->cap)
		return 0;
	if (n < f->len)
		n = f->len; /* a copy of stored bytes keeps them all */
	cap = f->cap ? f->cap : 4096;
	while (cap < n)
		cap = cap < (64u << 20) ? cap * 2 : cap + (64u << 20);
	if (f->ref.data) {
		/* the copy is committed later: the stored bytes must be sound */
		int rc = fs_file_check(fs, ip, f, 0, f->len);

		if (rc)
			return rc;
		b = malloc(cap);
		if (b && f->len)
			memcpy(b, f->buf, f->len);
	} else {
		b = realloc(f->buf, cap);
	}
	if (!b)
		return -ENOMEM;
	if (f->ref.data)
		store_ref_release(fs->st, &f->ref);
	f->buf = b;
	f->cap = cap;
	return 0;
}

/*
 * Loads the stored content (used in place, see struct fs_file) and user
 * metadata; caller holds f->mu.
 */
static int fs_file_load(struct fs *fs, struct fs_ino *ip, struct fs_file *f)
{
	struct store_file sf = { 0 };
	struct engine_ref ref;
	int rc;

	if (f->loaded)
		return 0;
	rc = store_doc_get_ref(fs->st, ip->keys[0], &ref);
	if (rc == -ENOENT) /* made here and not committed yet: ref zeroed */
		rc = 0;
	if (rc) {
		/* -EIO: damaged on disk, and the reason names the object */
		fs_error(fs, ip->keys[0], "cannot read the content: %s",
			 rc == -ENOMEM ? "out of memory" : store_last_error());
		return rc;
	}
	if (!f->xattrs) {
		json_error_t err;

		if (store_doc_stat(fs->st, ip->keys[0], &sf) == 0 && sf.xattrs)
			f->xattrs = json_loads(sf.xattrs, 0, &err);
		store_file_release(&sf);
		if (!f->xattrs)
			f->xattrs = json_object();
	}
	fs_file_drop_content(fs, f);
	f->ref = ref;
	f->buf = (char *)ref.data; /* read-only: written only after a copy */
	f->len = ref.len;
	f->loaded = 1;
	return 0;
}

void fs_docs_keep_content(struct fs *fs, uint64_t ino)
{
	struct fs_ino *ip;
	struct fs_file *f = NULL;

	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_find(fs, ino);
	if (ip && ip->file) {
		f = ip->file;
		f->opens++; /* pinned while loading */
	}
	pthread_mutex_unlock(&fs->mu);
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	if (fs_file_load(fs, ip, f))
		fs_error(fs, ip->keys[0],
			 "could not keep the content for its open readers");
	pthread_mutex_unlock(&f->mu);
	pthread_mutex_lock(&fs->mu);
	f->opens--;
	fs_file_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->mu);
}

struct fs_handle *fs_handle_new(struct fs_ino *ip, int wr)
{
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (h) {
		h->ip = ip;
		h->wr = wr;
	}
	return h;
}

/* Gives ip an open file (made if needed); caller holds fs->mu. */
struct fs_file *fs_file_open(struct fs_ino *ip)
{
	if (!ip->file && !(ip->file = fs_file_new()))
		return NULL;
	ip->file->opens++;
	ip->opens++;
	return ip->file;
}

int fs_docs_open(struct fs *fs, struct fs_ino *ip, int flags,
		 struct fs_handle **hp)
{
	int wr = (flags & O_ACCMODE) != O_RDONLY;
	struct fs_handle *h = fs_handle_new(ip, wr);
	struct fs_file *f;
	int rc;

	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&fs->mu);
	f = fs_file_open(ip);
	pthread_mutex_unlock(&fs->mu);
	if (!f) {
		free(h);
		return -ENOMEM;
	}
	pthread_mutex_lock(&f->mu);
	/*
	 * A reader loads the content at its first read: when the kernel still
	 * has every page (keep_cache), no read comes and nothing is loaded.
	 */
	rc = wr ? fs_file_load(fs, ip, f) : 0;
	if (!rc && wr && (flags & O_TRUNC) && f->len) {
		f->len = 0;
		f->dirty = 1;
		f->version++;
	}
	pthread_mutex_unlock(&f->mu);
	if (!rc && wr && (flags & O_TRUNC)) {
		struct fs_dent *d;

		pthread_mutex_lock(&fs->mu);
		if ((d = fs_dent_by_ino(fs, ip->ino))) {
			d->size = 0;
			clock_gettime(CLOCK_REALTIME, &d->mtime);
			d->ctime = d->mtime;
		}
		pthread_mutex_unlock(&fs->mu);
	}
	if (rc) {
		fs_docs_release(fs, h);
		return rc;
	}
	*hp = h;
	return 0;
}

void fs_docs_read(struct fs *fs, fuse_req_t req, struct fs_handle *h,
		  size_t size, off_t off)
{
	struct fs_ino *ip = h->ip;
	struct fs_file *f;
	size_t n = 0;
	int rc;

	/*
	 * The reply is written from the file's buffer without a copy.  Once
	 * the kernel has it, the reader may close and a RELEASE on another
	 * thread may free the file before writev() returns here: an extra
	 * open count pins the file until this thread is done with it, and
	 * its mutex keeps writers from moving the buffer meanwhile.
	 */
	pthread_mutex_lock(&fs->mu);
	f = ip->file;
	f->opens++;
	pthread_mutex_unlock(&fs->mu);
	pthread_mutex_lock(&f->mu);
	rc = fs_file_load(fs, ip, f);
	if (!rc && (size_t)off < f->len) {
		n = size < f->len - (size_t)off ? size : f->len - (size_t)off;
		rc = fs_file_check(fs, ip, f, (size_t)off, n);
	}
	if (rc)
		fuse_reply_err(req, rc == -ENOMEM ? ENOMEM : EIO);
	else
		fuse_reply_buf(req, n ? f->buf + off : NULL, n);
	pthread_mutex_unlock(&f->mu);
	pthread_mutex_lock(&fs->mu);
	f->opens--;
	fs_file_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->mu);
}

/* A directory's entries changed: its mtime and ctime move (fs->mu held). */
void fs_dent_dir_changed(struct fs_dent *dir)
{
	if (!dir)
		return;
	clock_gettime(CLOCK_REALTIME, &dir->mtime);
	dir->ctime = dir->mtime;
}

static void fs_dent_touch(struct fs *fs, uint64_t ino, int64_t size)
{
	struct fs_dent *d;

	pthread_mutex_lock(&fs->mu);
	if ((d = fs_dent_by_ino(fs, ino))) {
		if (size >= 0)
			d->size = (uint64_t)size;
		clock_gettime(CLOCK_REALTIME, &d->mtime);
		d->ctime = d->mtime;
	}
	pthread_mutex_unlock(&fs->mu);
}

ssize_t fs_docs_write(struct fs *fs, struct fs_handle *h, const char *buf,
		      size_t size, off_t off)
{
	struct fs_file *f = h->ip->file;
	size_t end = (size_t)off + size;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = fs_file_reserve(fs, h->ip, f, end);
	if (!rc) {
		if ((size_t)off > f->len)
			memset(f->buf + f->len, 0, (size_t)off - f->len);
		memcpy(f->buf + off, buf, size);
		if (end > f->len)
			f->len = end;
		f->dirty = 1;
		f->version++;
		end = f->len;
	}
	pthread_mutex_unlock(&f->mu);
	if (rc)
		return rc;
	fs_dent_touch(fs, h->ip->ino, (int64_t)end);
	return (ssize_t)size;
}

/* --- commits -------------------------------------------------------------- */

/*
 * Adds ip's current content to t as a document put; caller holds f->mu.
 * Skips (returns 1) a document that was removed meanwhile.
 */
static int fs_docs_txn_put(struct fs *fs, struct store_txn *t,
			   struct fs_ino *ip, int *result)
{
	struct fs_file *f = ip->file;
	struct store_doc doc = { 0 };
	struct fs_dent *d;
	char *meta = NULL;
	int rc;

	pthread_mutex_lock(&fs->mu);
	d = ip->unlinked ? NULL : fs_dent_by_ino(fs, ip->ino);
	if (d) {
		doc.mode = d->mode & 07777;
		doc.mtime = d->mtime.tv_sec;
		doc.ctime = d->ctime.tv_sec;
		doc.ino = d->ino;
	}
	pthread_mutex_unlock(&fs->mu);
	if (!d)
		return 1;
	if (f->xattrs && json_object_size(f->xattrs))
		meta = json_dumps(f->xattrs,
				  JSON_COMPACT | JSON_PRESERVE_ORDER);
	/* stored bytes still in use are committed again: sound ones only */
	rc = fs_file_check(fs, ip, f, 0, f->len);
	if (rc) {
		free(meta);
		return rc;
	}
	doc.id = ip->keys[0];
	doc.data = f->buf ? f->buf : "";
	doc.len = f->len;
	doc.user_meta = meta;
	rc = store_txn_doc_put(t, &doc, result);
	free(meta);
	return rc;
}

void fs_docs_committed(struct fs *fs, int rc)
{
	if (rc) {
		atomic_fetch_add(&fs->commit_errors, 1);
		return;
	}
	atomic_fetch_add(&fs->commits, 1);
	atomic_store(&fs->last_commit_ns, fs_now_ns());
	atomic_fetch_add(&fs->version, 1);
}

static void fs_docs_note_result(struct fs *fs, const char *id, int result)
{
	if (result == STORE_BINARY)
		fs_error(fs, id,
			 "stored, not indexed: not UTF-8 text (binary file)");
}

/* Commits one document now (sync=close, fsync); caller holds docs_mu. */
int fs_docs_commit_one(struct fs *fs, struct fs_ino *ip)
{
	struct fs_file *f = ip->file;
	struct store_txn *t;
	struct fs_dels dels;
	uint64_t v;
	int rc, result = STORE_UNCHANGED;

	rc = fs_docs_txn_begin(fs, &t, &dels);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->mu);
	v = f->version;
	rc = fs_docs_txn_put(fs, t, ip, &result);
	if (rc < 0)
		fs_error(fs, ip->keys[0], "refused: %s", store_last_error());
	pthread_mutex_unlock(&f->mu);
	if (rc < 0) {
		fs_docs_txn_end(fs, t, &dels, rc);
		return rc;
	}
	rc = fs_docs_txn_end(fs, t, &dels, 0);
	fs_docs_committed(fs, rc);
	pthread_mutex_lock(&f->mu);
	if (rc) {
		fs_error(fs, ip->keys[0], "commit failed: %s (%s)",
			 store_last_error(), strerror(-rc));
	} else {
		fs_docs_note_result(fs, ip->keys[0], result);
		if (f->version == v)
			f->dirty = 0;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Queues ip for the background commit (sync=fsync). */
static int fs_docs_enqueue(struct fs *fs, struct fs_ino *ip)
{
	struct fs_file *f = ip->file;
	int rc = 0;

	pthread_mutex_lock(&fs->pend_mu);
	if (!f->pending) {
		struct fs_ino **p = fs_reserve(fs->pend, &fs->cap_pend,
					       fs->n_pend + 1, sizeof(*p), 256);

		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		fs->pend = p;
		fs->pend[fs->n_pend++] = ip;
		f->pending = 1;
	}
	fs->pend_bytes += f->len;
	/* the first change queued starts the flusher's second */
	if (fs->n_pend + fs->dels.n == 1 ||
	    fs->pend_bytes > FS_PEND_BYTES_MAX || fs->n_pend > FS_PEND_DOCS_MAX)
		pthread_cond_signal(&fs->pend_cv);
out:
	pthread_mutex_unlock(&fs->pend_mu);
	return rc;
}

/*
 * With an embeddings server, the round's documents are embedded before
 * its transaction (which holds the store's write lock), all of them in
 * as few requests as the client's bounds allow.  From copies: a file may
 * change meanwhile, and its changed chunks are then asked for at the put.
 * A failure is remembered by the store for the puts of this thread, which
 * then fail at once (store_embed_release after the transaction).
 */
static void fs_docs_embed_prepare(struct fs *fs, struct fs_ino **list, size_t n)
{
	struct store_doc *docs;
	size_t i, m = 0;

	if (!fs->opts.embed_url || !n)
		return;
	docs = calloc(n, sizeof(*docs));
	if (!docs)
		return;
	for (i = 0; i < n; i++) {
		struct fs_file *f = list[i]->file;
		void *copy;

		pthread_mutex_lock(&f->mu);
		copy = f->len ? malloc(f->len) : NULL;
		if (copy) {
			memcpy(copy, f->buf, f->len);
			docs[m].id = list[i]->keys[0];
			docs[m].data = copy;
			docs[m++].len = f->len;
		}
		pthread_mutex_unlock(&f->mu);
	}
	store_embed_prepare(fs->st, docs, m);
	for (i = 0; i < m; i++)
		free((void *)docs[i].data);
	free(docs);
}

/*
 * One round: commits everything queued, in one transaction.  Rounds run
 * one at a time (docs_mu) and take the queue inside it, so when a round
 * that took the queue at request number G finishes, every file queued
 * before G is committed or has its error set: pend_committed = G.  Under
 * sync=close the closing threads run rounds themselves, so that files
 * closed together share one commit (group commit); under sync=fsync the
 * flusher runs them, and a failed round's files are queued again.
 */
static int fs_docs_round(struct fs *fs, int requeue)
{
	struct fs_ino **list;
	struct fs_dels dels;
	size_t n, i;
	uint64_t *vers = NULL, round;
	int *results = NULL, *refused = NULL;
	struct store_txn *t = NULL;
	int rc;

	pthread_mutex_lock(&fs->docs_mu);
	pthread_mutex_lock(&fs->pend_mu);
	list = fs->pend;
	n = fs->n_pend;
	round = fs->pend_gen;
	fs->pend = NULL;
	fs->n_pend = fs->cap_pend = 0;
	fs->pend_bytes = 0;
	for (i = 0; i < n; i++) {
		list[i]->file->pending = 0;
		list[i]->file->inflight = 1;
	}
	fs_dels_take_locked(fs, &dels);
	pthread_mutex_unlock(&fs->pend_mu);
	rc = 0;
	if (!n && !dels.n)
		goto done;
	vers = calloc(n + 1, sizeof(*vers));
	results = calloc(n + 1, sizeof(*results));
	refused = calloc(n + 1, sizeof(*refused));
	fs_docs_embed_prepare(fs, list, n);
	rc = !vers || !results || !refused ? -ENOMEM
					   : store_txn_begin(fs->st, &t);
	/* removals first: they were made before the closes still queued */
	if (!rc)
		rc = fs_dels_txn_add(fs, t, &dels);
	for (i = 0; i < n && !rc; i++) {
		struct fs_file *f = list[i]->file;

		pthread_mutex_lock(&f->mu);
		vers[i] = f->version;
		refused[i] = fs_docs_txn_put(fs, t, list[i], &results[i]);
		if (refused[i] < 0) /* this one only: the others go on */
			fs_error(fs, list[i]->keys[0], "refused: %s",
				 store_last_error());
		pthread_mutex_unlock(&f->mu);
	}
	rc = t ? fs_docs_txn_end(fs, t, &dels, rc) : rc;
	store_embed_release(fs->st);
	if (!t)
		fs_dels_done(fs, &dels, rc);
	fs_docs_committed(fs, rc);
	/* one line per document (the first 20), so each path is named */
	for (i = 0; rc && i < n && i < 20; i++)
		fs_error(fs, list[i]->keys[0], "not committed: %s (%s)",
			 store_last_error(), strerror(-rc));
	if (rc && n > 20)
		fs_error(fs, NULL, "and %zu more documents not committed",
			 n - 20);
	for (i = 0; i < n; i++) {
		struct fs_file *f = list[i]->file;

		pthread_mutex_lock(&f->mu);
		if (rc) {
			f->error = -EIO;
		} else if (refused[i] < 0) {
			f->error = refused[i];
		} else {
			fs_docs_note_result(fs, list[i]->keys[0], results[i]);
			if (f->version == vers[i])
				f->dirty = 0;
		}
		pthread_mutex_unlock(&f->mu);
		pthread_mutex_lock(&fs->pend_mu);
		f->inflight = 0;
		pthread_mutex_unlock(&fs->pend_mu);
		if (rc && requeue)
			fs_docs_enqueue(fs, list[i]); /* retried next round */
		pthread_mutex_lock(&fs->mu);
		fs_file_maybe_free(fs, list[i]);
		pthread_mutex_unlock(&fs->mu);
	}
done:
	pthread_mutex_lock(&fs->pend_mu);
	if (round > fs->pend_committed)
		fs->pend_committed = round;
	fs->pend_err = rc;
	pthread_cond_broadcast(&fs->pend_done);
	pthread_mutex_unlock(&fs->pend_mu);
	pthread_mutex_unlock(&fs->docs_mu);
	free(vers);
	free(results);
	free(refused);
	free(list);
	return rc;
}

static void *fs_docs_flusher(void *arg)
{
	struct fs *fs = arg;

	pthread_mutex_lock(&fs->pend_mu);
	for (;;) {
		struct timespec until;
		int rc;

		/* asleep while nothing is queued and no round is asked for */
		while (!fs->stopping && fs->pend_gen == fs->pend_committed &&
		       !fs->n_pend && !fs->dels.n)
			pthread_cond_wait(&fs->pend_cv, &fs->pend_mu);
		/*
		 * A round a second after the first change queued (a burst of
		 * closes shorter than that is one round, after it), or at
		 * once when asked or when much is waiting.
		 */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!fs->stopping && fs->pend_gen == fs->pend_committed &&
		       fs->pend_bytes <= FS_PEND_BYTES_MAX &&
		       fs->n_pend + fs->dels.n <= FS_PEND_DOCS_MAX)
			if (pthread_cond_timedwait(&fs->pend_cv, &fs->pend_mu,
						   &until) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&fs->pend_mu);
		rc = fs_docs_round(fs, 1);
		pthread_mutex_lock(&fs->pend_mu);
		if (fs->stopping && (rc || (!fs->n_pend && !fs->dels.n)))
			break;
	}
	pthread_mutex_unlock(&fs->pend_mu);
	return NULL;
}

int fs_docs_flusher_start(struct fs *fs)
{
	int rc;

	if (fs->opts.sync != FS_SYNC_FSYNC)
		return 0;
	rc = pthread_create(&fs->flusher, NULL, fs_docs_flusher, fs);
	if (rc)
		return -rc;
	fs->flusher_running = 1;
	return 0;
}

int fs_docs_flusher_stop(struct fs *fs)
{
	int rc;

	if (!fs->flusher_running)
		return 0;
	pthread_mutex_lock(&fs->pend_mu);
	fs->stopping = 1;
	pthread_cond_signal(&fs->pend_cv);
	pthread_mutex_unlock(&fs->pend_mu);
	pthread_join(fs->flusher, NULL);
	fs->flusher_running = 0;
	rc = fs->pend_err;
	if (!rc && (fs->n_pend || fs->dels.n))
		rc = -EIO;
	return rc;
}

/*
 * Waits until every file queued so far is committed: sync=fsync asks the
 * flusher, sync=close runs rounds in this thread until one covers them.
 */
static void fs_docs_wait_round(struct fs *fs)
{
	uint64_t target;

	pthread_mutex_lock(&fs->pend_mu);
	target = ++fs->pend_gen;
	if (fs->flusher_running) {
		pthread_cond_signal(&fs->pend_cv);
		while (fs->pend_committed < target)
			pthread_cond_wait(&fs->pend_done, &fs->pend_mu);
		pthread_mutex_unlock(&fs->pend_mu);
		return;
	}
	while (fs->pend_committed < target) {
		pthread_mutex_unlock(&fs->pend_mu);
		fs_docs_round(fs, 0);
		pthread_mutex_lock(&fs->pend_mu);
	}
	pthread_mutex_unlock(&fs->pend_mu);
}

/*
 * Makes ip's changes durable: at close under sync=close, at fsync under
 * both; at close under sync=fsync it only queues them.  Returns the
 * file's commit error, if any (EIO, or EINVAL for a refused document).
 */
static int fs_docs_commit(struct fs *fs, struct fs_ino *ip, int wait)
{
	struct fs_file *f = ip->file;
	int rc, dirty, pending, removals;

	pthread_mutex_lock(&f->mu);
	dirty = f->dirty && !ip->unlinked;
	pthread_mutex_unlock(&f->mu);
	if (dirty) {
		rc = fs_docs_enqueue(fs, ip);
		if (rc)
			return rc;
	}
	/* queued, or taken by a round still committing it */
	pthread_mutex_lock(&fs->pend_mu);
	pending = f->pending || f->inflight;
	/* fsync() makes the removals before it durable too */
	removals = wait && fs->dels.n;
	pthread_mutex_unlock(&fs->pend_mu);
	if ((pending || removals) && (wait || fs->opts.sync == FS_SYNC_CLOSE))
		fs_docs_wait_round(fs);
	pthread_mutex_lock(&f->mu);
	rc = f->error;
	f->error = 0;
	pthread_mutex_unlock(&f->mu);
	if (!rc && removals) {
		pthread_mutex_lock(&fs->pend_mu);
		rc = fs->pend_err ? -EIO : 0;
		pthread_mutex_unlock(&fs->pend_mu);
	}
	return rc;
}

int fs_docs_flush(struct fs *fs, struct fs_handle *h)
{
	if (!h->wr)
		return 0;
	return fs_docs_commit(fs, h->ip, 0);
}

int fs_docs_fsync(struct fs *fs, struct fs_handle *h)
{
	return fs_docs_commit(fs, h->ip, 1);
}

int fs_docs_fsyncdir(struct fs *fs)
{
	int rc;

	if (!fs_dels_count(fs))
		return 0;
	fs_docs_wait_round(fs);
	pthread_mutex_lock(&fs->pend_mu);
	rc = fs->pend_err ? -EIO : 0;
	pthread_mutex_unlock(&fs->pend_mu);
	return rc;
}

void fs_docs_release(struct fs *fs, struct fs_handle *h)
{
	struct fs_ino *ip = h->ip;

	pthread_mutex_lock(&fs->mu);
	if (ip->file)
		ip->file->opens--;
	ip->opens--;
	fs_file_maybe_free(fs, ip);
	if (!ip->file && !ip->opens)
		fs_ino_forget(fs, ip->ino, 0);
	pthread_mutex_unlock(&fs->mu);
	free(h);
}

/* --- attributes ----------------------------------------------------------- */

/* Commits a change of mode/times (and xattrs) of a stored document. */
int fs_docs_commit_attr(struct fs *fs, struct fs_dent *d, const char *xattrs)
{
	struct store_txn *t;
	struct fs_dels dels;
	int rc = fs_docs_txn_begin(fs, &t, &dels);

	if (rc)
		return rc;
	if (S_ISDIR(d->mode))
		rc = fs_docs_dir_record(t, d);
	else
		rc = store_txn_doc_attr(t, d->path, d->mode & 07777,
					d->mtime.tv_sec, d->ctime.tv_sec,
					xattrs);
	if (rc) {
		fs_docs_txn_end(fs, t, &dels, rc);
		return rc;
	}
	rc = fs_docs_txn_end(fs, t, &dels, 0);
	fs_docs_committed(fs, rc);
	return rc;
}

/* 1 if ip's document has changes that the next flush commits anyway. */
int fs_docs_open_dirty(struct fs *fs, struct fs_ino *ip)
{
	struct fs_file *f = fs_file_pin(fs, ip);
	int dirty = 0;

	if (f) {
		pthread_mutex_lock(&f->mu);
		dirty = f->dirty;
		pthread_mutex_unlock(&f->mu);
		pthread_mutex_lock(&fs->pend_mu);
		dirty = dirty || f->pending || f->inflight;
		pthread_mutex_unlock(&fs->pend_mu);
	}
	fs_file_unpin(fs, ip, f);
	return dirty;
}

int fs_docs_setattr(struct fs *fs, struct fs_ino *ip, const struct stat *a,
		    int to_set, struct stat *out)
{
	struct fs_dent *d, saved;
	struct timespec now;
	int rc = 0, is_dir;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&fs->docs_mu);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		struct fs_file *f;

		pthread_mutex_lock(&fs->mu);
		d = fs_dent_by_ino(fs, ip->ino);
		f = d && !S_ISDIR(d->mode) ? fs_file_open(ip) : NULL;
		pthread_mutex_unlock(&fs->mu);
		if (!d) {
			rc = -ENOENT;
			goto out;
		}
		if (!f) {
			rc = S_ISDIR(d->mode) ? -EISDIR : -ENOMEM;
			goto out;
		}
		pthread_mutex_lock(&f->mu);
		rc = fs_file_load(fs, ip, f);
		if (!rc)
			rc = fs_file_reserve(fs, ip, f, (size_t)a->st_size);
		if (!rc) {
			if ((size_t)a->st_size > f->len)
				memset(f->buf + f->len, 0,
				       (size_t)a->st_size - f->len);
			f->len = (size_t)a->st_size;
			f->dirty = 1;
			f->version++;
		}
		pthread_mutex_unlock(&f->mu);
		if (!rc)
			fs_dent_touch(fs, ip->ino, a->st_size);
		/* Not open elsewhere: truncate(2) is durable when it returns
		 * (sync=close) or within a second (sync=fsync) */
		if (!rc && f->opens == 1)
			rc = fs->opts.sync == FS_SYNC_CLOSE
				     ? fs_docs_commit_one(fs, ip)
				     : fs_docs_enqueue(fs, ip);
		pthread_mutex_lock(&fs->mu);
		f->opens--;
		ip->opens--;
		fs_file_maybe_free(fs, ip);
		pthread_mutex_unlock(&fs->mu);
		if (rc)
			goto out;
	}
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_by_ino(fs, ip->ino);
	if (!d) {
		pthread_mutex_unlock(&fs->mu);
		rc = -ENOENT;
		goto out;
	}
	saved = *d;
	is_dir = S_ISDIR(d->mode);
	if (to_set & FUSE_SET_ATTR_MODE)
		d->mode = (d->mode & S_IFMT) | (a->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		d->mtime = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		d->mtime = a->st_mtim;
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME))
		d->ctime = (to_set & FUSE_SET_ATTR_CTIME) ? a->st_ctim : now;
	pthread_mutex_unlock(&fs->mu);
	if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_MTIME |
		       FUSE_SET_ATTR_MTIME_NOW)) &&
	    (is_dir || !fs_docs_open_dirty(fs, ip))) {
		struct fs_dent copy;

		pthread_mutex_lock(&fs->mu);
		copy = *d;
		copy.path = strdup(d->path);
		pthread_mutex_unlock(&fs->mu);
		if (!copy.path) {
			rc = -ENOMEM;
		} else if (is_dir || store_doc_exists(fs->st, copy.path)) {
			rc = fs_docs_commit_attr(fs, &copy, NULL);
			if (!rc && is_dir) {
				pthread_mutex_lock(&fs->mu);
				d->recorded = 1;
				pthread_mutex_unlock(&fs->mu);
			}
		}
		free(copy.path);
		if (rc) {
			pthread_mutex_lock(&fs->mu);
			d->mode = saved.mode;
			d->mtime = saved.mtime;
			d->ctime = saved.ctime;
			pthread_mutex_unlock(&fs->mu);
			fs_error(fs, ip->keys[0], "setattr failed: %s",
				 store_last_error());
			rc = -EIO;
			goto out;
		}
	}
	pthread_mutex_lock(&fs->mu);
	fs_dent_stat(fs, d, out);
	pthread_mutex_unlock(&fs->mu);
out:
	pthread_mutex_unlock(&fs->docs_mu);
	return rc;
}
