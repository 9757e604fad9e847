/* engine.c - durable collections: open, commit, reads (the public API). */

/*
 * Storage format, version 1 (docs/FORMAT.md says the same at more length).
 * All integers are little-endian; xxh3 means XXH3_64bits (seed 0).
 *
 *   lodefs.format                 {"lodefs":"store","format":1}\n, written
 *                                 once with a conditional (absent) put
 *   log/<writer>/<seq>.seg        one committed batch; <seq> is 16 lowercase
 *                                 hex digits, per writer, increasing (gaps
 *                                 allowed: a failed put burns its number)
 *   ckpt/<id>/kv                  JSON and BLOB values, tombstones, drops
 *   ckpt/<id>/vec-<n>             one vector collection: float32 block, keys
 *   ckpt/<id>/manifest            written last; what the checkpoint covers
 *
 * <writer> is [0-9a-z-]{1,32}; <id> is 16 hex digits of the checkpoint's
 * HLC, '-', its writer, so ids sort by time.
 *
 * Segment: a 64-byte header (magic "LODEFSSG", u16 format version, u8
 * writer length, u8 0, u32 record count, u64 seq, u64 HLC, writer id
 * NUL-padded to 32 bytes), the records, then the xxh3 of everything before
 * it (u64).  A record is u8 op (1 put, 2 delete, 3 drop), u8 type
 * (1 JSON, 2 BLOB, 3 VEC; 0 for delete/drop), u16 0, u32 collection
 * length, u32 key length (0 for drop), u32 0, u64 value length, then
 * collection NUL key NUL value.  JSON is a validated object, whitespace
 * between tokens removed; VEC is dim float32.
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
 * Checkpoint kv object: magic "LODEFSKV", u32 version, u32 collection
 * count; per collection u32 name length, u32 0, u64 entry count, u64 drop
 * HLC, u32 drop writer, u32 0, name NUL padded to 8; per entry u64 HLC,
 * u32 writer, u8 type (0 = tombstone), u8 0, u16 0, u32 key length, u32
 * value length, key NUL value NUL padded to 8.  Keys and values are used
 * in place from the mapped object.
 *
 * Checkpoint vec object: magic "LODEFSVC", u32 version, u32 dim, u64 rows,
 * u64 data offset (multiple of 64), u32 name length, u32 0, name NUL, zero
 * fill; rows*dim float32 (the block engine_with_vecs hands out); per row
 * u64 HLC, u32 writer, u32 key length, key NUL padded to 8.
 *
 * Writers in stamps index the manifest's writer list.  The manifest is
 * compact JSON {"lodefs_checkpoint":1,"id","hlc" (hex),"writers":[[id,
 * highest seq covered],...],"objects":[{"name","size","xxh3" (hex) and
 * for vectors "coll","dim","rows"}]}, "\n", the xxh3 of the preceding
 * bytes as 16 hex digits, "\n".
 *
 * Open: check lodefs.format; load the newest checkpoint with a valid
 * manifest (verifying every object's size and xxh3), merge any other valid
 * checkpoint covering segments it does not; replay uncovered segments in
 * (HLC, writer, seq) order.  A checkpoint without a manifest is unfinished
 * (ignored); a manifest that exists but does not verify, with no newer
 * valid checkpoint, is damage (-EUCLEAN).  A segment that fails its checksum is a torn
 * tail if no later segment of its writer exists (ignored and deleted),
 * damage otherwise (-EUCLEAN).
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

static const char eng_format_text[] = "{\"lodefs\":\"store\",\"format\":1}\n";

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
	pthread_rwlock_init(&e->lock, NULL);
	pthread_mutex_init(&e->commit_lock, NULL);
	strcpy(e->self_id, writer);
	e->self = eng_writer_get(e, writer);
	if (e->self == ENG_NO_WRITER) {
		rc = eng_fail(-ENOMEM, "out of memory");
		goto out_close;
	}
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
	for (i = 0; i < e->nmaps; i++)
		eng_obj_release(e->be, e->maps[i].data, e->maps[i].cookie);
	free(e->maps);
	free(e->writers);
	free(e->ckpts);
	pthread_rwlock_destroy(&e->lock);
	pthread_mutex_destroy(&e->commit_lock);
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

/*
 * Validation simulates the batch over the current state: what type each
 * touched key has after the records before it, and how many vectors (of
 * which dim) each touched collection holds.
 */
struct eng_vcoll {
	const char *name;
	struct eng_coll *c; /* NULL if it does not exist yet */
	uint32_t gen;	    /* bumped by a drop: older key states lapse */
	bool dropped;
	size_t vec_live;
	uint32_t dim;
};

struct eng_vkey {
	const char *key; /* NULL: empty slot */
	uint32_t coll;
	uint32_t gen;
	uint8_t type;
};

struct eng_validate {
	struct engine *e;
	struct eng_vcoll *colls;
	size_t ncolls;
	size_t colls_cap;
	size_t last; /* the collection found last: batches repeat it */
	struct eng_vkey *keys;
	size_t cap;
};

static int eng_vcoll_get(struct eng_validate *v, const char *name,
			 uint32_t *idx)
{
	struct eng_vcoll *vc;
	size_t i;

	if (v->ncolls && strcmp(v->colls[v->last].name, name) == 0) {
		*idx = (uint32_t)v->last;
		return 0;
	}
	for (i = 0; i < v->ncolls; i++) {
		if (strcmp(v->colls[i].name, name) == 0) {
			*idx = (uint32_t)(v->last = i);
			return 0;
		}
	}
	if (v->ncolls == v->colls_cap) {
		size_t cap = v->colls_cap ? v->colls_cap * 2 : 8;
		void *p = realloc(v->colls, cap * sizeof(*v->colls));

		if (!p)
			return -ENOMEM;
		v->colls = p;
		v->colls_cap = cap;
	}
	vc = &v->colls[v->ncolls];
	memset(vc, 0, sizeof(*vc));
	vc->name = name;
	vc->c = eng_coll_find(v->e, name);
	if (vc->c && vc->c->vec_live) {
		vc->vec_live = vc->c->vec_live;
		vc->dim = vc->c->dim;
	}
	*idx = (uint32_t)(v->last = v->ncolls++);
	return 0;
}

static struct eng_vkey *eng_vkey_slot(struct eng_validate *v, uint32_t coll,
				      const char *key)
{
	size_t mask = v->cap - 1;
	size_t i =
		(XXH3_64bits(key, strlen(key)) ^ (coll * 0x9e3779b97f4a7c15u)) &
		mask;

	for (;; i = (i + 1) & mask) {
		struct eng_vkey *k = &v->keys[i];

		if (!k->key || (k->coll == coll && strcmp(k->key, key) == 0))
			return k;
	}
}

static int eng_validate_rec(struct eng_validate *v, const struct eng_rec *r)
{
	struct eng_vcoll *vc;
	struct eng_vkey *k;
	uint32_t ci, dim;
	uint8_t cur;
	int rc;

	rc = eng_vcoll_get(v, r->coll, &ci);
	if (rc)
		return eng_fail(rc, "out of memory");
	vc = &v->colls[ci];
	if (r->op == ENG_OP_DROP) {
		vc->gen++;
		vc->dropped = true;
		vc->vec_live = 0;
		return 0;
	}
	k = eng_vkey_slot(v, ci, r->key);
	if (k->key && k->gen == vc->gen) {
		cur = k->type;
	} else if (vc->dropped) {
		cur = ENGINE_NONE;
	} else {
		const struct eng_ent *s = eng_ent_find(vc->c, r->key);

		cur = s ? s->type : ENGINE_NONE;
	}
	if (r->op == ENG_OP_PUT && cur != ENGINE_NONE && cur != r->type)
		return eng_fail(-EINVAL,
				"%s/%.200s: a key cannot change type (delete "
				"it first)",
				r->coll, r->key);
	if (r->op == ENG_OP_PUT && r->type == ENGINE_VEC) {
		dim = (uint32_t)(r->len / sizeof(float));
		if (vc->vec_live && dim != vc->dim &&
		    !(cur == ENGINE_VEC && vc->vec_live == 1))
			return eng_fail(-EINVAL,
					"%s/%.200s: vector has %u dimensions, "
					"the collection %u",
					r->coll, r->key, dim, vc->dim);
		if (cur != ENGINE_VEC)
			vc->vec_live++;
		vc->dim = dim;
	} else if (r->op == ENG_OP_DEL && cur == ENGINE_VEC) {
		vc->vec_live--;
	}
	k->key = r->key;
	k->coll = ci;
	k->gen = vc->gen;
	k->type = r->op == ENG_OP_PUT ? r->type : ENGINE_NONE;
	return 0;
}

/* Checks the batch against the state; caller holds commit_lock. */
static int eng_validate(struct engine *e, const struct engine_batch *b)
{
	struct eng_validate v = { .e = e };
	size_t pos = 0, i;
	const char *why;
	struct eng_rec r;
	int rc = 0;

	v.cap = 16;
	while (v.cap / 2 < b->count)
		v.cap *= 2;
	v.keys = calloc(v.cap, sizeof(*v.keys));
	if (!v.keys)
		return eng_fail(-ENOMEM, "out of memory");
	for (i = 0; i < b->count && !rc; i++) {
		rc = eng_rec_next(b->recs.p, b->recs.len, &pos, &r, &why);
		if (rc)
			rc = eng_fail(-EINVAL, "bad record in batch: %s", why);
		else
			rc = eng_validate_rec(&v, &r);
	}
	free(v.keys);
	free(v.colls);
	return rc;
}

/* Applies a committed batch; caller holds commit_lock and the write lock. */
static int eng_apply_batch(struct engine *e, const struct engine_batch *b,
			   uint64_t hlc)
{
	size_t pos = 0, i;
	const char *why;
	struct eng_rec r;
	int rc = 0;

	for (i = 0; i < b->count && rc >= 0; i++) {
		struct eng_coll *c;

		eng_rec_next(b->recs.p, b->recs.len, &pos, &r, &why);
		c = eng_coll_get(e, r.coll);
		if (!c)
			return -ENOMEM;
		if (r.op == ENG_OP_PUT)
			rc = eng_apply_put(e, c, r.key, r.type, r.val, r.len,
					   hlc, e->self, ENG_OBSERVE, 0);
		else if (r.op == ENG_OP_DEL)
			rc = eng_apply_del(e, c, r.key, hlc, e->self,
					   ENG_OBSERVE);
		else
			rc = eng_apply_drop(e, c, hlc, e->self, ENG_OBSERVE);
	}
	return rc < 0 ? rc : 0;
}

static int eng_commit_locked(struct engine *e, const struct engine_batch *b)
{
	const struct backend_cond absent = { .kind = BACKEND_COND_ABSENT };
	struct eng_seg_hdr h = { .version = ENG_FORMAT_VERSION };
	struct eng_buf seg = { 0 };
	char key[ENG_NAME_MAX];
	int rc, tries;

	if (e->broken)
		return eng_fail(-EIO, "engine state is incomplete; reopen");
	rc = eng_validate(e, b);
	if (rc)
		return rc;
	strcpy(h.writer, e->writers[e->self].id);
	h.nrec = (uint32_t)b->count;
	/*
	 * A failed put burns its seq (the object may exist after all, if the
	 * error came after the write); -EEXIST means the name is taken.
	 */
	for (tries = 0;; tries++) {
		h.seq = e->next_seq++;
		h.hlc = eng_hlc_next(e);
		seg.len = 0;
		rc = eng_seg_encode(&seg, &h, b->recs.p, b->recs.len);
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
	rc = eng_apply_batch(e, b, h.hlc);
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
	if (e->ckpt_every && e->segments >= e->ckpt_every) {
		/* the commit stands whether or not the checkpoint works */
		eng_checkpoint_locked(e);
		eng_clear_error();
	}
out_free:
	eng_buf_free(&seg);
	return rc;
}

int engine_commit(struct engine *e, struct engine_batch *b)
{
	int rc;

	eng_clear_error();
	if (!e || !b)
		return eng_fail(-EINVAL, "no engine or no batch");
	if (b->err)
		return eng_fail(b->err, "%s", b->why);
	if (!b->count)
		return 0;
	if (e->read_only)
		return eng_fail(-EROFS, "engine is read-only");
	pthread_mutex_lock(&e->commit_lock);
	rc = eng_commit_locked(e, b);
	pthread_mutex_unlock(&e->commit_lock);
	return rc;
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

static const struct eng_ent *eng_live(const struct engine *e, const char *coll,
				      const char *key,
				      const struct eng_coll **cp)
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

/* Value bytes of a live entry (a row for vectors). */
static const void *eng_value(const struct eng_coll *c, const struct eng_ent *s,
			     size_t *len)
{
	if (s->type == ENGINE_VEC) {
		*len = (size_t)c->dim * sizeof(float);
		return eng_vec_row(c, s->len);
	}
	*len = s->len;
	return s->val;
}

int engine_get(struct engine *e, const char *coll, const char *key,
	       enum engine_type *type, void **data, size_t *len)
{
	const struct eng_coll *c = NULL;
	const struct eng_ent *s;
	const void *v;
	char *copy;
	size_t n;
	int rc = 0;

	if (!e || !data || !len)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	s = eng_live(e, coll, key, &c);
	if (!s) {
		rc = -ENOENT;
		goto out_unlock;
	}
	v = eng_value(c, s, &n);
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

static int eng_ent_ptr_cmp(const void *a, const void *b)
{
	const struct eng_ent *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

int engine_foreach(struct engine *e, const char *coll, engine_foreach_fn *fn,
		   void *arg)
{
	const struct eng_coll *c;
	const struct eng_ent **v;
	size_t i, n = 0;
	int rc = 0;

	if (!e || !coll || !fn)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	c = eng_coll_find(e, coll);
	if (!c || !c->live)
		goto out_unlock;
	v = malloc(c->live * sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	for (i = 0; i < c->cap; i++) {
		if (c->slots[i].key && c->slots[i].type != ENGINE_NONE)
			v[n++] = &c->slots[i];
	}
	/* strcmp orders as unsigned bytes: the memcmp order */
	qsort(v, n, sizeof(*v), eng_ent_ptr_cmp);
	for (i = 0; i < n && !rc; i++) {
		size_t len;
		const void *data = eng_value(c, v[i], &len);

		rc = fn(arg, v[i]->key, (enum engine_type)v[i]->type, data,
			len);
	}
	free(v);
out_unlock:
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
		if (e->colls[i]->live)
			rc = fn(arg, e->colls[i]->name);
	}
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

int engine_with_vecs(struct engine *e, const char *coll, engine_vecs_fn *fn,
		     void *arg)
{
	struct engine_vec_block *blocks;
	struct engine_vecs v;
	const struct eng_coll *c;
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
	st->last_commit_hlc = e->last_commit_hlc;
	st->mem_bytes =
		sizeof(*e) + e->heap + e->colls_cap * sizeof(e->colls[0]);
	for (i = 0; i < e->ncolls; i++) {
		st->keys += e->colls[i]->live;
		st->mem_bytes += sizeof(*e->colls[i]) +
				 strlen(e->colls[i]->name) + 1 +
				 e->colls[i]->nvb * sizeof(struct eng_vblock);
	}
	for (i = 0; i < e->nmaps; i++)
		st->mem_bytes += e->maps[i].len;
	pthread_rwlock_unlock(&e->lock);
}
