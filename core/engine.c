/* engine.c - durable collections: open, commit, reads (the public API). */

/*
 * Storage format, version 4 (docs/FORMAT.md says the same at more length).
 * All integers are little-endian; xxh3 means XXH3_64bits (seed 0).
 *
 *   lodefs.format                 {"lodefs":"store","format":4}\n, written
 *                                 once with a conditional (absent) put;
 *                                 any other format is -EPROTO
 *   log/<writer>/<seq>.seg        one committed batch; <seq> is 16 lowercase
 *                                 hex digits, per writer, increasing (gaps
 *                                 allowed: a failed put burns its number)
 *   ckpt/<id>/kv                  the key index: every key, its stamps and
 *                                 where its value is, with the value's xxh3
 *   ckpt/<id>/values              JSON and BLOB values, packed
 *   ckpt/<id>/vec-<n>             one vector collection: its float32 block
 *   ckpt/<id>/ext-<name>          an extension's bytes (optional)
 *   ckpt/<id>/manifest            written last; what the checkpoint covers
 *
 * <writer> is [0-9a-z-]{1,32}; <id> is 16 hex digits of the checkpoint's
 * HLC, '-', its writer, so ids sort by time.
 *
 * Segment: a 64-byte header (magic "LODEFSSG", u16 format version, u8
 * writer length, u8 0, u32 record count, u64 seq, u64 HLC, writer id
 * NUL-padded to 32 bytes), the records, then the xxh3 of everything before
 * it (u64).  A record is u8 op (1 put, 2 delete, 3 drop), u8 type
 * (1 JSON, 2 BLOB, 3 VEC; 0 for delete/drop), u16 flags (puts: 1 update,
 * 2 first), u32 collection length, u32 key length (0 for drop), u32 0,
 * u64 value length, then collection NUL key NUL value; an update then
 * carries the key's creation stamp: u64 HLC (0: this batch), u32 record
 * index, u32 writer length, writer.  JSON is a validated object,
 * whitespace between tokens removed; VEC is dim float32.
 *
 * HLC: physical milliseconds << 16 | logical counter.  Each engine issues
 * HLCs greater than any it has seen (its clock, segments and checkpoints
 * it loaded), so one writer's HLCs rise with its seq.  Replay orders
 * batches by (HLC, writer id, seq); every key carries the stamp (HLC,
 * writer) of the batch that last wrote it and a record applies only if
 * its stamp is not older than the key's and than the collection's last
 * drop.  Deleted keys stay as stamped tombstones (checkpointed for
 * ENG_TOMB_GRACE_MS), so batches from several writers converge in any
 * arrival order to last-writer-wins.
 *
 * Order: keys iterate by creation stamp (HLC, writer, record index) of
 * the put that created them, as a Python dict does.  A put records
 * whether its writer saw the key live (update, carrying the key's stamp)
 * or created it (its own stamp), so the stamp is chosen by
 * last-writer-wins together with the value and every engine converges to
 * one order.  A put that found its collection empty is flagged first;
 * collections iterate by the latest such stamp.
 *
 * Checkpoint kv object (the key index): magic "LODEFSKV", u32 version,
 * u32 collection count; per collection, by name, u32 name length, u32 0,
 * u64 entry count, u64 drop HLC, u32 drop writer, u32 0, its place (u64
 * HLC, u32 writer, u32 index), name NUL padded to 8; per entry, live ones
 * in creation order, u64 HLC, u32 writer, u8 type (0 = tombstone, 1 JSON,
 * 2 BLOB, 3 VEC), u8 0, u16 0, u32 key length, u32 value length, u64
 * value offset in the values object (VEC: row in the vec object), u64
 * xxh3 of the value (of its chunk sums, below, if it has them), creation
 * stamp (u64, u32, u32; 0 for a tombstone),
 * key NUL padded to 8.  Keys are used in place from the mapped object.
 *
 * Checkpoint values object: magic "LODEFSVL", u32 version, u32 0, then
 * each JSON/BLOB value and a NUL, and after a value of more than 1 MiB
 * its chunk sums (u64 xxh3 of each MiB, the last one shorter), packed.
 * Open maps it (or, on a backend that cannot map, reads it whole) but
 * reads none of it: a value is checked when it is read (engine_get,
 * engine_get_ref, engine_foreach, a checkpoint copying it; a lazy ref,
 * chunk by chunk as the caller asks), and the object as a whole by
 * engine_fsck.
 *
 * Checkpoint vec object: magic "LODEFSVC", u32 version, u32 dim, u64 rows,
 * u64 data offset (multiple of 64), u32 name length, u32 0, name NUL, zero
 * fill; rows*dim float32 in creation order to the end (the block
 * engine_with_vecs hands out, checked whole the first time it does).
 *
 * Checkpoint ext-<name> object: the bytes the extension saved.
 *
 * Writers in stamps index the manifest's writer list.  The manifest is
 * compact JSON {"lodefs_checkpoint":4,"id","hlc" (hex),"writers":[[id,
 * highest seq covered],...],"objects":[{"name","size","xxh3" (hex) and
 * for vectors "coll","dim","rows"}]}, "\n", the xxh3 of the preceding
 * bytes as 16 hex digits, "\n".
 *
 * Open: check lodefs.format; load the newest checkpoint with a valid
 * manifest (checking every object's size, the kv object's xxh3 and
 * structure and the vec objects' headers), merge any other valid
 * checkpoint covering segments it does not; if only one was loaded, hand
 * extensions their intact objects (a bad one is skipped, never damage);
 * replay uncovered segments in (HLC, writer, seq) order.  A checkpoint
 * without a manifest is unfinished (ignored); a manifest that exists but
 * does not verify, with no newer valid checkpoint, is damage (-EUCLEAN).
 * A segment that fails its checksum is a torn tail if no later segment of
 * its writer exists (ignored and deleted), damage otherwise (-EUCLEAN).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "core/engine_int.h"

/* --- format file ---------------------------------------------------------- */

static const char eng_format_text[] = "{\"lodefs\":\"store\",\"format\":4}\n";

static int eng_format_parse(const void *p, size_t n)
{
	json_t *root = json_loadb(p, n, 0, NULL);
	json_t *v = json_object_get(root, "format");
	json_int_t version = json_is_integer(v) ? json_integer_value(v) : 0;
	const char *kind = json_string_value(json_object_get(root, "lodefs"));
	int rc = 0;

	if (!kind || strcmp(kind, "store") != 0 || version < 1)
		rc = eng_fail(-EUCLEAN, "%s is not a lodefs format file",
			      ENG_FORMAT_KEY);
	else if (version > ENG_FORMAT_VERSION)
		rc = eng_fail(-EPROTO,
			      "store format %lld is newer than this "
			      "program (%d)",
			      (long long)version, ENG_FORMAT_VERSION);
	else if (version < ENG_FORMAT_VERSION)
		rc = eng_fail(-EPROTO,
			      "store format %lld was never released and "
			      "cannot be read (this program: %d); create the "
			      "store again",
			      (long long)version, ENG_FORMAT_VERSION);
	json_decref(root);
	return rc;
}

static int eng_any_fn(void *arg, const char *key, uint64_t size)
{
	return 1;
}

/* Returns 1 if the store holds engine objects, 0 if not, or -errno. */
static int eng_store_nonempty(struct backend *be)
{
	int rc = backend_list(be, "log/", eng_any_fn, NULL);

	if (rc == 0)
		rc = backend_list(be, "ckpt/", eng_any_fn, NULL);
	return rc;
}

static int eng_format_open(struct engine *e)
{
	const struct backend_cond absent = { .kind = BACKEND_COND_ABSENT };
	void *p;
	size_t n;
	int rc, tries;

	for (tries = 0; tries < 2; tries++) {
		rc = backend_get(e->be, ENG_FORMAT_KEY, &p, &n);
		if (rc == 0) {
			rc = eng_format_parse(p, n);
			free(p);
			return rc;
		}
		if (rc != -ENOENT)
			return eng_fail(rc, "cannot read %s", ENG_FORMAT_KEY);
		rc = eng_store_nonempty(e->be);
		if (rc < 0)
			return eng_fail(rc, "cannot list the store");
		if (rc > 0)
			return eng_fail(-EUCLEAN,
					"%s is missing but the store holds "
					"log or checkpoint objects",
					ENG_FORMAT_KEY);
		if (e->read_only)
			return 0; /* an empty store reads as empty */
		rc = backend_put(e->be, ENG_FORMAT_KEY, eng_format_text,
				 sizeof(eng_format_text) - 1, &absent);
		if (rc != -EEXIST)
			return rc ? eng_fail(rc, "cannot write %s",
					     ENG_FORMAT_KEY)
				  : 0;
		/* another writer created it meanwhile: read theirs */
	}
	return eng_fail(-EIO, "%s keeps changing", ENG_FORMAT_KEY);
}

/* --- open / close --------------------------------------------------------- */

static void eng_random_writer(char *out)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = XXH3_64bits_withSeed(&r, sizeof(r),
					 eng_now_ms() ^ (uint64_t)getpid());
	snprintf(out, ENG_WRITER_MAX + 1, "%016llx", (unsigned long long)r);
}

/* Copies the extensions of opts into the engine; -EINVAL if invalid. */
static int eng_exts_copy(struct engine *e, const struct engine_opts *opts)
{
	size_t i, j;

	if (!opts || !opts->n_exts)
		return 0;
	if (!opts->exts)
		return eng_fail(-EINVAL, "n_exts without exts");
	e->exts = calloc(opts->n_exts, sizeof(*e->exts));
	if (!e->exts)
		return eng_fail(-ENOMEM, "out of memory");
	for (i = 0; i < opts->n_exts; i++) {
		const char *name = opts->exts[i].name;

		if (eng_ext_name_valid(name))
			return eng_fail(-EINVAL, "extension name must match "
						 "[a-z0-9_]{1,32}");
		for (j = 0; j < i; j++) {
			if (strcmp(e->exts[j].name, name) == 0)
				return eng_fail(-EINVAL,
						"extension %s given twice",
						name);
		}
		strcpy(e->exts[i].name, name);
		e->exts[i].ext = opts->exts[i];
		e->exts[i].ext.name = e->exts[i].name;
		e->n_exts++;
	}
	return 0;
}

/*
 * The state lock prefers writers: with glibc's default (readers first) a
 * steady stream of readers, such as a busy mount's lookups and queries,
 * could hold off commits for ever.  The price is that a read lock must
 * never be taken twice by one thread (callbacks must not re-enter).
 */
static void eng_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

int engine_open_observed(struct backend *be, const struct engine_opts *opts,
			 engine_observe_fn *fn, void *arg, struct engine **out)
{
	char writer[ENG_WRITER_MAX + 1];
	struct engine *e;
	int rc;

	eng_clear_error();
	if (!be || !out)
		return eng_fail(-EINVAL, "no backend or no result pointer");
	*out = NULL;
	if (opts && opts->writer) {
		if (eng_writer_valid(opts->writer))
			return eng_fail(-EINVAL,
					"writer id must match [0-9a-z-]{1,32}");
		strcpy(writer, opts->writer);
	} else {
		eng_random_writer(writer);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return eng_fail(-ENOMEM, "out of memory");
	e->be = be;
	e->read_only = opts && opts->read_only;
	e->ckpt_every = opts ? opts->checkpoint_segments : 0;
	e->obs = fn;
	e->obs_arg = arg;
	eng_lock_init(&e->lock);
	pthread_mutex_init(&e->commit_lock, NULL);
	pthread_mutex_init(&e->pin_mu, NULL);
	pthread_mutex_init(&e->lazy_mu, NULL);
	strcpy(e->self_id, writer);
	e->self = eng_writer_get(e, writer);
	if (e->self == ENG_NO_WRITER) {
		rc = eng_fail(-ENOMEM, "out of memory");
		goto out_close;
	}
	rc = eng_exts_copy(e, opts);
	if (rc)
		goto out_close;
	rc = eng_format_open(e);
	if (rc)
		goto out_close;
	rc = eng_sync(e, true);
	if (rc)
		goto out_close;
	if (e->next_seq <= e->writers[e->self].seen)
		e->next_seq = e->writers[e->self].seen + 1;
	*out = e;
	return 0;
out_close:
	engine_close(e);
	return rc;
}

int engine_open(struct backend *be, const struct engine_opts *opts,
		struct engine **out)
{
	return engine_open_observed(be, opts, NULL, NULL, out);
}

void engine_close(struct engine *e)
{
	size_t i;

	if (!e)
		return;
	eng_colls_free(e);
	eng_pins_free(e); /* after: freeing entries orphans pinned blocks */
	eng_lazies_free(e);
	for (i = 0; i < e->nmaps; i++)
		eng_obj_release(e->be, e->maps[i].data, e->maps[i].cookie);
	free(e->maps);
	free(e->writers);
	free(e->ckpts);
	free(e->exts);
	pthread_rwlock_destroy(&e->lock);
	pthread_mutex_destroy(&e->commit_lock);
	pthread_mutex_destroy(&e->pin_mu);
	pthread_mutex_destroy(&e->lazy_mu);
	free(e);
}

void engine_set_observer(struct engine *e, engine_observe_fn *fn, void *arg)
{
	pthread_rwlock_wrlock(&e->lock);
	e->obs = fn;
	e->obs_arg = arg;
	pthread_rwlock_unlock(&e->lock);
}

/* --- commit --------------------------------------------------------------- */

static int eng_commit_locked(struct engine *e, struct engine_batch *b,
			     bool consume, bool logged)
{
	const struct backend_cond absent = { .kind = BACKEND_COND_ABSENT };
	struct eng_seg_hdr h = { .version = ENG_FORMAT_VERSION };
	struct eng_buf seg = { 0 };
	char key[ENG_NAME_MAX];
	size_t end;
	int rc, tries;

	if (e->broken)
		return eng_fail(-EIO, "engine state is incomplete; reopen");
	if (b->count > UINT32_MAX)
		return eng_fail(-EINVAL, "too many records in one batch");
	/*
	 * The records are prepared straight into the segment, after room
	 * for its header: a batch is in memory twice at most (the batch,
	 * the segment).  A batch the caller gives up (engine_commit_consume)
	 * is given back to the kernel as it is prepared, and the segment as
	 * it is applied: about once.
	 */
	eng_buf_zero(&seg, ENG_SEG_HDR);
	rc = seg.err ? eng_fail(-ENOMEM, "out of memory")
		     : eng_prepare(e, b, consume, &seg);
	if (rc)
		goto out_free;
	h.nrec = (uint32_t)b->count;
	if (consume) {
		eng_buf_free(&b->recs); /* all in the segment now */
		b->count = 0;
		b->bytes = 0;
	}
	end = seg.len;
	if (!logged) {
		/*
		 * No segment: the records are applied as a commit's are, and
		 * the next checkpoint writes them (engine_commit_unlogged).
		 * The batch still takes a seq, as a failed put does, with no
		 * object behind it: the checkpoint records it as seen, which
		 * tells every reader that the checkpoint holds more than the
		 * segments before it (a checkpoint whose seqs a reader has
		 * seen is skipped as already reflected).
		 */
		h.seq = e->next_seq++;
		h.hlc = eng_hlc_next(e);
		pthread_rwlock_wrlock(&e->lock);
		rc = eng_recs_apply_spend(e, &seg, end, ENG_SEG_HDR, h.nrec,
					  h.hlc, e->self, ENG_OBSERVE);
		if (h.seq > e->writers[e->self].seen)
			e->writers[e->self].seen = h.seq;
		if (!rc) {
			e->commits++;
			e->unlogged++;
			e->last_commit_hlc = h.hlc;
		}
		pthread_rwlock_unlock(&e->lock);
		if (rc) {
			e->broken = rc;
			rc = eng_fail(rc, "a batch could not be applied in "
					  "memory; reopen");
		}
		goto out_free;
	}
	strcpy(h.writer, e->writers[e->self].id);
	/*
	 * A failed put burns its seq (the object may exist after all, if the
	 * error came after the write); -EEXIST means the name is taken.
	 * Records refer to their own batch without naming its HLC or seq,
	 * so they are encoded once.
	 */
	for (tries = 0;; tries++) {
		h.seq = e->next_seq++;
		h.hlc = eng_hlc_next(e);
		rc = eng_seg_seal(&seg, &h, end);
		if (rc) {
			rc = eng_fail(rc, "out of memory");
			goto out_free;
		}
		eng_seg_name(key, h.writer, h.seq);
		rc = backend_put(e->be, key, seg.p, seg.len, &absent);
		if (rc != -EEXIST || tries == 8)
			break;
	}
	if (rc) {
		rc = eng_fail(rc, "cannot write %s", key);
		goto out_free;
	}
	pthread_rwlock_wrlock(&e->lock);
	if (consume)
		rc = eng_recs_apply_spend(e, &seg, end, ENG_SEG_HDR, h.nrec,
					  h.hlc, e->self, ENG_OBSERVE);
	else
		rc = eng_recs_apply(e, seg.p, end, ENG_SEG_HDR, h.nrec, h.hlc,
				    e->self, ENG_OBSERVE);
	if (h.seq > e->writers[e->self].seen)
		e->writers[e->self].seen = h.seq;
	e->segments++;
	e->segment_bytes += seg.len;
	if (!rc) {
		e->commits++;
		e->last_commit_hlc = h.hlc;
	}
	pthread_rwlock_unlock(&e->lock);
	if (rc) {
		/* durable but not in memory: only a reopen can fix that */
		e->broken = rc;
		rc = eng_fail(rc,
			      "%s is written but could not be applied "
			      "in memory; reopen",
			      key);
		goto out_free;
	}
	eng_buf_free(&seg);
	if (e->ckpt_every && e->segments >= e->ckpt_every) {
		/* the commit stands whether or not the checkpoint works */
		eng_checkpoint_locked(e);
		eng_clear_error();
	}
out_free:
	eng_buf_free(&seg);
	return rc;
}

static int eng_commit(struct engine *e, struct engine_batch *b, bool consume,
		      bool logged)
{
	int rc;

	eng_clear_error();
	if (!e || !b)
		return eng_fail(-EINVAL, "no engine or no batch");
	if (b->err)
		rc = eng_fail(b->err, "%s", b->why);
	else if (!b->count)
		rc = 0;
	else if (e->read_only)
		rc = eng_fail(-EROFS, "engine is read-only");
	else {
		pthread_mutex_lock(&e->commit_lock);
		rc = eng_commit_locked(e, b, consume, logged);
		pthread_mutex_unlock(&e->commit_lock);
	}
	if (consume) {
		/* spent, whatever happened: empty, as engine_batch_new */
		eng_buf_free(&b->recs);
		b->count = 0;
		b->bytes = 0;
		b->err = 0;
		b->why[0] = '\0';
	}
	return rc;
}

int engine_commit(struct engine *e, struct engine_batch *b)
{
	return eng_commit(e, b, false, true);
}

int engine_commit_consume(struct engine *e, struct engine_batch *b)
{
	return eng_commit(e, b, true, true);
}

int engine_commit_unlogged(struct engine *e, struct engine_batch *b)
{
	return eng_commit(e, b, true, false);
}

int engine_checkpoint(struct engine *e)
{
	int rc;

	eng_clear_error();
	if (!e)
		return eng_fail(-EINVAL, "no engine");
	pthread_mutex_lock(&e->commit_lock);
	rc = eng_checkpoint_locked(e);
	pthread_mutex_unlock(&e->commit_lock);
	return rc;
}

int engine_refresh(struct engine *e)
{
	int rc;

	eng_clear_error();
	if (!e)
		return eng_fail(-EINVAL, "no engine");
	pthread_mutex_lock(&e->commit_lock);
	rc = e->broken ? eng_fail(-EIO, "engine state is incomplete; reopen")
		       : eng_sync(e, false);
	pthread_mutex_unlock(&e->commit_lock);
	return rc;
}

/* --- reads ---------------------------------------------------------------- */

const struct eng_ent *eng_live(const struct engine *e, const char *coll,
			       const char *key, const struct eng_coll **cp)
{
	const struct eng_coll *c;
	const struct eng_ent *s;

	if (!coll || !key)
		return NULL;
	c = eng_coll_find(e, coll);
	s = eng_ent_find(c, key);
	if (!s || s->type == ENGINE_NONE)
		return NULL;
	*cp = c;
	return s;
}

int eng_live_value(const struct engine *e, const char *coll, const char *key,
		   const struct eng_ent **sp, const void **data, size_t *len)
{
	const struct eng_coll *c = NULL;

	*sp = eng_live(e, coll, key, &c);
	if (!*sp)
		return -ENOENT;
	return eng_value_read(e, c, *sp, data, len);
}

int engine_get(struct engine *e, const char *coll, const char *key,
	       enum engine_type *type, void **data, size_t *len)
{
	const struct eng_ent *s;
	const void *v;
	char *copy;
	size_t n;
	int rc = 0;

	if (!e || !data || !len)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	rc = eng_live_value(e, coll, key, &s, &v, &n);
	if (rc)
		goto out_unlock;
	copy = malloc(n + 1);
	if (!copy) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	if (n)
		memcpy(copy, v, n);
	copy[n] = '\0';
	*data = copy;
	*len = n;
	if (type)
		*type = (enum engine_type)s->type;
out_unlock:
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

int engine_get_each(struct engine *e, const char *coll, const char *const *keys,
		    size_t n, engine_each_fn *fn, void *arg)
{
	struct eng_ent *ents[ENG_FIND_MANY];
	const struct eng_coll *c;
	size_t i, j, m;
	int rc = 0;

	if (!e || !fn || (n && (!keys || !coll)))
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	c = eng_coll_find(e, coll);
	for (i = 0; i < n && !rc; i += m) {
		m = n - i < ENG_FIND_MANY ? n - i : ENG_FIND_MANY;
		eng_ent_find_many(c, keys + i, m, ents);
		for (j = 0; j < m && !rc; j++) {
			const void *v;
			size_t len;

			if (!ents[j] || ents[j]->type == ENGINE_NONE) {
				rc = fn(arg, i + j, ENGINE_NONE, NULL, 0);
				continue;
			}
			rc = eng_value_read(e, c, ents[j], &v, &len);
			if (!rc)
				rc = fn(arg, i + j,
					(enum engine_type)ents[j]->type, v,
					len);
		}
	}
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

int engine_exists(struct engine *e, const char *coll, const char *key)
{
	const struct eng_coll *c;
	int found;

	if (!e)
		return 0;
	pthread_rwlock_rdlock(&e->lock);
	found = eng_live(e, coll, key, &c) != NULL;
	pthread_rwlock_unlock(&e->lock);
	return found;
}

int engine_foreach(struct engine *e, const char *coll, engine_foreach_fn *fn,
		   void *arg)
{
	const struct eng_coll *c;
	size_t i;
	int rc = 0;

	if (!e || !coll || !fn)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	c = eng_coll_find(e, coll);
	/* entries are kept in creation order (holes: key NULL) */
	for (i = 0; c && i < c->nents && !rc; i++) {
		const struct eng_ent *s = &c->ents[i];
		const void *data;
		size_t len;

		if (!s->key || s->type == ENGINE_NONE)
			continue;
		rc = eng_value_read(e, c, s, &data, &len);
		if (!rc)
			rc = fn(arg, s->key, (enum engine_type)s->type, data,
				len);
	}
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

size_t engine_count(struct engine *e, const char *coll)
{
	const struct eng_coll *c;
	size_t n;

	if (!e || !coll)
		return 0;
	pthread_rwlock_rdlock(&e->lock);
	c = eng_coll_find(e, coll);
	n = c ? c->live : 0;
	pthread_rwlock_unlock(&e->lock);
	return n;
}

int engine_collections(struct engine *e, engine_coll_fn *fn, void *arg)
{
	size_t i;
	int rc = 0;

	if (!e || !fn)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	for (i = 0; i < e->ncolls && !rc; i++) {
		if (e->corder[i]->live)
			rc = fn(arg, e->corder[i]->name);
	}
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

/*
 * Checks a block used in place from a checkpoint against its vec object's
 * xxh3 the first time it is handed out (open does not read vectors).
 * Concurrent readers may both check it; the result is the same.
 */
static int eng_vblock_verify(const struct engine *e, const struct eng_coll *c,
			     struct eng_vblock *b)
{
	int v = b->verified;

	if (v == 0) {
		v = eng_xxh3(b->obj, b->obj_len) == b->obj_xxh3 ? 1 : -1;
		b->verified = v;
	}
	if (v > 0)
		return 0;
	return eng_fail(-EIO,
			"%s: the vectors in %s fail their checksum (damaged "
			"on disk; engine_fsck lists every damaged vector)",
			c->name, eng_map_name(e, b->obj));
}

int engine_with_vecs(struct engine *e, const char *coll, engine_vecs_fn *fn,
		     void *arg)
{
	struct engine_vec_block *blocks;
	struct engine_vecs v;
	struct eng_coll *c;
	size_t i;
	int rc;

	if (!e || !coll || !fn)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	c = eng_coll_find(e, coll);
	if (!c || !c->live) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (!c->vec_live) {
		rc = -EINVAL;
		goto out_unlock;
	}
	for (i = 0; i < c->nvb; i++) {
		rc = eng_vblock_verify(e, c, &c->vb[i]);
		if (rc)
			goto out_unlock;
	}
	blocks = calloc(c->nvb, sizeof(*blocks));
	if (!blocks) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	for (i = 0; i < c->nvb; i++) {
		blocks[i].data = c->vb[i].data;
		blocks[i].n = c->vb[i].n;
		blocks[i].keys = c->vb[i].keys;
	}
	v.dim = c->dim;
	v.live = c->vec_live;
	v.nblocks = c->nvb;
	v.blocks = blocks;
	rc = fn(arg, &v);
	free(blocks);
out_unlock:
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

uint32_t engine_vec_dim(struct engine *e, const char *coll)
{
	const struct eng_coll *c;
	uint32_t dim;

	if (!e || !coll)
		return 0;
	pthread_rwlock_rdlock(&e->lock);
	c = eng_coll_find(e, coll);
	dim = c && c->vec_live ? c->dim : 0;
	pthread_rwlock_unlock(&e->lock);
	return dim;
}

void engine_get_stats(struct engine *e, struct engine_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	if (!e)
		return;
	pthread_rwlock_rdlock(&e->lock);
	strcpy(st->writer, e->self_id);
	st->segments = e->segments;
	st->segment_bytes = e->segment_bytes;
	st->checkpoint_bytes = e->checkpoint_bytes;
	st->commits = e->commits;
	st->unlogged = e->unlogged;
	st->last_commit_hlc = e->last_commit_hlc;
	st->mem_bytes = sizeof(*e) + e->heap +
			e->colls_cap * 2 * sizeof(e->colls[0]); /* + corder */
	for (i = 0; i < e->ncolls; i++) {
		st->keys += e->colls[i]->live;
		st->mem_bytes += sizeof(*e->colls[i]) +
				 strlen(e->colls[i]->name) + 1 +
				 e->colls[i]->nvb * sizeof(struct eng_vblock);
	}
	for (i = 0; i < e->nmaps; i++) {
		if (e->maps[i].lazy)
			st->values_mapped += e->maps[i].len;
		else
			st->mem_bytes += e->maps[i].len;
	}
	pthread_rwlock_unlock(&e->lock);
}
