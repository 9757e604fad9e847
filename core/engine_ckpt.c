/* engine_ckpt.c - writing checkpoints and collecting what they cover. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_int.h"

/* True if a tombstone is young enough to go into the checkpoint. */
static bool eng_tomb_keep(const struct eng_ent *s, uint64_t cut)
{
	return s->hlc >= cut;
}

static bool eng_keys_wants(const struct eng_ent *s, uint64_t cut)
{
	if (!s->key)
		return false;
	return s->type != ENGINE_NONE || eng_tomb_keep(s, cut);
}

/*
 * Collections that need a section in the keys object: any with entries
 * or a drop.  Counts its entries and the bytes of its section and of its
 * values.
 */
static bool eng_keys_coll_wanted(const struct eng_coll *c, uint64_t cut,
				 size_t *nent, size_t *bytes, size_t *vbytes)
{
	size_t i, n = 0, sz = ENG_KEYS_COLL + ENG_PAD8(strlen(c->name) + 1);
	size_t vsz = 0;

	for (i = 0; i < c->nents; i++) {
		const struct eng_ent *s = &c->ents[i];

		if (!eng_keys_wants(s, cut))
			continue;
		n++;
		sz += ENG_KEYS_ENT + ENG_PAD8(strlen(s->key) + 1);
		if (s->type == ENGINE_JSON || s->type == ENGINE_BLOB)
			vsz += (size_t)s->len + 1 + 8 * eng_nchunks(s->len);
	}
	*nent = n;
	*bytes = sz;
	*vbytes = vsz;
	return n || c->live || c->drop_hlc;
}

/* u64 HLC, u32 writer, u32 index: a creation stamp (all 0: none). */
static void eng_buf_cstamp(struct eng_buf *b, const struct eng_cstamp *cs)
{
	eng_buf_u64(b, cs->hlc);
	eng_buf_u32(b, cs->hlc ? cs->writer : 0);
	eng_buf_u32(b, cs->hlc ? cs->idx : 0);
}

/*
 * The sum of a live entry's value for the keys object; a JSON/BLOB value
 * is appended to vb (with its NUL and chunk sums), *at set to where.  A
 * value that came from a checkpoint must still match the checksum it had
 * there: copying a damaged value into a new checkpoint would make the
 * damage look valid.  Its chunk sums, checked with it, are copied (the
 * chunk size is the format's).  Returns 0 or -EIO (the checkpoint fails).
 */
static int eng_value_sum(const struct engine *e, const struct eng_coll *c,
			 const struct eng_ent *s, struct eng_buf *vb,
			 uint64_t *at, uint64_t *sum)
{
	const void *data;
	size_t len, n, tab;
	int rc = eng_value_read(e, c, s, &data, &len);

	if (rc)
		return rc;
	n = s->type == ENGINE_VEC ? 0 : eng_nchunks(len);
	if (s->own & ENG_CKV) /* just checked against it */
		*sum = eng_le64((const uint8_t *)s->key - ENG_KEYS_ENT +
				ENG_KEYS_SUM);
	else if (!n)
		*sum = eng_xxh3(data, len);
	if (s->type == ENGINE_VEC)
		return 0;
	*at = vb->len;
	eng_buf_put(vb, data, len);
	eng_buf_u8(vb, 0);
	if (!n || vb->err)
		return 0;
	tab = vb->len;
	if (s->own & ENG_CKV) {
		eng_buf_put(vb, (const uint8_t *)data + len + 1, 8 * n);
		return 0;
	}
	eng_buf_zero(vb, 8 * n);
	if (vb->err)
		return 0;
	eng_chunk_sums(data, len, vb->p + tab);
	*sum = eng_xxh3(vb->p + tab, 8 * n);
	return 0;
}

/*
 * Builds the keys object into kb and the values object into vb: every
 * collection that needs a section, in name order; its entries in entry
 * order (live ones by creation stamp); JSON/BLOB values appended to vb,
 * vector rows numbered as eng_vec_build writes them.
 */
static int eng_keys_build(struct engine *e, uint64_t cut, struct eng_buf *kb,
			  struct eng_buf *vb)
{
	size_t i, j, total = ENG_KEYS_HDR, vtotal = ENG_VALS_HDR;
	size_t nent, bytes, vbytes;
	uint32_t ncoll = 0;
	int rc;

	for (i = 0; i < e->ncolls; i++) {
		if (eng_keys_coll_wanted(e->colls[i], cut, &nent, &bytes,
					 &vbytes)) {
			total += bytes;
			vtotal += vbytes;
			ncoll++;
		}
	}
	if (eng_buf_reserve(kb, total) || eng_buf_reserve(vb, vtotal))
		return eng_fail(-ENOMEM, "out of memory");
	eng_buf_put(vb, ENG_VALS_MAGIC, ENG_MAGIC_LEN);
	eng_buf_u32(vb, ENG_FORMAT_VERSION);
	eng_buf_u32(vb, 0);
	eng_buf_put(kb, ENG_KEYS_MAGIC, ENG_MAGIC_LEN);
	eng_buf_u32(kb, ENG_FORMAT_VERSION);
	eng_buf_u32(kb, ncoll);
	for (i = 0; i < e->ncolls; i++) {
		const struct eng_coll *c = e->colls[i];
		size_t nl = strlen(c->name);
		uint64_t row = 0;

		if (!eng_keys_coll_wanted(c, cut, &nent, &bytes, &vbytes))
			continue;
		eng_buf_u32(kb, (uint32_t)nl);
		eng_buf_u32(kb, 0);
		eng_buf_u64(kb, nent);
		eng_buf_u64(kb, c->drop_hlc);
		eng_buf_u32(kb, c->drop_hlc ? c->drop_writer : 0);
		eng_buf_u32(kb, 0);
		eng_buf_cstamp(kb, &c->first);
		eng_buf_put(kb, c->name, nl + 1);
		eng_buf_align(kb, 8);
		/* in entry order: live entries by creation stamp */
		for (j = 0; j < c->nents; j++) {
			const struct eng_ent *s = &c->ents[j];
			struct eng_cstamp none = { 0 };
			uint64_t at = 0, sum = 0;
			uint32_t vl = 0;
			size_t kl;

			if (!eng_keys_wants(s, cut))
				continue;
			if (s->type != ENGINE_NONE) {
				rc = eng_value_sum(e, c, s, vb, &at, &sum);
				if (rc)
					return rc;
			}
			if (s->type == ENGINE_VEC) {
				at = row++;
				vl = c->dim * (uint32_t)sizeof(float);
			} else if (s->type != ENGINE_NONE) {
				vl = s->len;
			}
			kl = strlen(s->key);
			eng_buf_u64(kb, s->hlc);
			eng_buf_u32(kb, s->writer);
			eng_buf_u8(kb, s->type);
			eng_buf_u8(kb, 0);
			eng_buf_u16(kb, 0);
			eng_buf_u32(kb, (uint32_t)kl);
			eng_buf_u32(kb, vl);
			eng_buf_u64(kb, at);
			eng_buf_u64(kb, sum);
			eng_buf_cstamp(kb, s->type ? &s->created : &none);
			eng_buf_put(kb, s->key, kl + 1);
			eng_buf_align(kb, 8);
		}
	}
	if (kb->err || vb->err)
		return eng_fail(-ENOMEM, "out of memory");
	return 0;
}

/* A live vector entry of the collection. */
static bool eng_is_vec(const struct eng_ent *s)
{
	return s->key && s->type == ENGINE_VEC;
}

/*
 * One vector collection: live rows packed in creation order (so that the
 * block loads in order); their keys are in the keys object.
 */
static int eng_vec_build(struct engine *e, const struct eng_coll *c,
			 struct eng_buf *b)
{
	size_t nl = strlen(c->name), off, i;
	size_t rowbytes = (size_t)c->dim * sizeof(float);

	off = ENG_VEC_HDR + nl + 1;
	off = (off + 63) & ~(size_t)63;
	if (eng_buf_reserve(b, off + c->vec_live * rowbytes))
		return eng_fail(-ENOMEM, "out of memory");
	eng_buf_put(b, ENG_VEC_MAGIC, ENG_MAGIC_LEN);
	eng_buf_u32(b, ENG_FORMAT_VERSION);
	eng_buf_u32(b, c->dim);
	eng_buf_u64(b, c->vec_live);
	eng_buf_u64(b, off);
	eng_buf_u32(b, (uint32_t)nl);
	eng_buf_u32(b, 0);
	eng_buf_put(b, c->name, nl + 1);
	eng_buf_zero(b, off - b->len);
	for (i = 0; i < c->nents; i++) {
		if (eng_is_vec(&c->ents[i]))
			eng_buf_put(b, eng_vec_row(c, c->ents[i].len),
				    rowbytes);
	}
	return b->err ? eng_fail(-ENOMEM, "out of memory") : 0;
}

/*
 * The packed vec object just written holds exactly the live rows: use it
 * as the collection's only block, dropping dead rows and old blocks.  This
 * changes nothing visible, so it is safe even if the checkpoint fails
 * later.  On success the buffer is taken from b.
 */
static void eng_vec_adopt(struct engine *e, struct eng_coll *c,
			  const char *name, struct eng_buf *b)
{
	int rc;

	pthread_rwlock_wrlock(&e->lock);
	rc = eng_map_keep(e, b->p, b->len, NULL, name, false);
	if (!rc) {
		rc = eng_vec_compact(e, c, b->p, b->len);
		if (rc)
			e->nmaps--; /* not adopted: b keeps the buffer */
	}
	pthread_rwlock_unlock(&e->lock);
	if (!rc)
		memset(b, 0, sizeof(*b));
}

/* Puts one checkpoint object and records it in the manifest. */
static int eng_ckpt_put(struct engine *e, const char *id, struct eng_mobj *o,
			const struct eng_buf *b)
{
	const struct backend_cond absent = { .kind = BACKEND_COND_ABSENT };
	char key[ENG_NAME_MAX];
	int rc;

	snprintf(key, sizeof(key), "ckpt/%s/%s", id, o->name);
	o->size = b->len;
	o->xxh3 = eng_xxh3(b->p ? b->p : (const uint8_t *)"", b->len);
	rc = backend_put(e->be, key, b->p ? b->p : (const uint8_t *)"", b->len,
			 &absent);
	if (rc)
		return eng_fail(rc, "cannot write %s", key);
	return 0;
}

/*
 * The values object (most of a checkpoint's bytes) is written by a second
 * thread while this one builds and writes the vector and extension
 * objects: on a local store the write is mostly the kernel copying it
 * into the page cache, and the fsync, which would otherwise wait for the
 * objects after it to be built.  Every object is still written (and, on
 * a local store, fsync'd) before the manifest.
 */
struct eng_ckpt_bg {
	pthread_t th;
	struct engine *e;
	char key[ENG_NAME_MAX];
	struct eng_mobj *o;
	struct eng_buf *b;
	int rc;
	bool running;
};

static void *eng_ckpt_bg_run(void *arg)
{
	struct eng_ckpt_bg *g = arg;
	const struct backend_cond absent = { .kind = BACKEND_COND_ABSENT };
	const uint8_t *p = g->b->p ? g->b->p : (const uint8_t *)"";

	g->o->size = g->b->len;
	g->o->xxh3 = eng_xxh3(p, g->b->len);
	g->rc = backend_put(g->e->be, g->key, p, g->b->len, &absent);
	return NULL;
}

/* eng_ckpt_put on the second thread (on this one if it cannot start). */
static int eng_ckpt_put_bg(struct engine *e, const char *id, struct eng_mobj *o,
			   struct eng_buf *b, struct eng_ckpt_bg *g)
{
	snprintf(g->key, sizeof(g->key), "ckpt/%s/%s", id, o->name);
	g->e = e;
	g->o = o;
	g->b = b;
	g->rc = 0;
	g->running = pthread_create(&g->th, NULL, eng_ckpt_bg_run, g) == 0;
	return g->running ? 0 : eng_ckpt_put(e, id, o, b);
}

/* Waits for the second thread's write: its result. */
static int eng_ckpt_bg_wait(struct eng_ckpt_bg *g)
{
	if (!g->running)
		return 0;
	pthread_join(g->th, NULL);
	g->running = false;
	eng_buf_free(g->b);
	return g->rc ? eng_fail(g->rc, "cannot write %s", g->key) : 0;
}

static int eng_ext_emit(void *ctx, const void *data, size_t len)
{
	struct eng_buf *b = ctx;

	if (len && !data)
		return -EINVAL;
	eng_buf_put(b, data, len);
	return b->err;
}

/*
 * Saves extension x into b under the write lock, as its contract says.
 * Returns true if it produced an object to write.
 */
static bool eng_ext_save(struct engine *e, const struct eng_ext *x,
			 struct eng_buf *b)
{
	int rc;

	if (!x->ext.save)
		return false;
	pthread_rwlock_wrlock(&e->lock);
	rc = x->ext.save(x->ext.arg, eng_ext_emit, b);
	pthread_rwlock_unlock(&e->lock);
	return rc == 0 && !b->err;
}

struct eng_gc {
	struct engine *e;
	const char *id;
	char (*ids)[ENG_CKPT_ID_MAX + 1];
	size_t nids, capids;
	char **segs; /* covered segments, deleted together */
	size_t nsegs, capsegs;
};

static int eng_gc_seg_fn(void *arg, const char *key, uint64_t size)
{
	struct eng_gc *g = arg;
	char w[ENG_WRITER_MAX + 1];
	uint64_t seq;
	size_t i;

	if (eng_seg_parse_name(key, w, &seq))
		return 0;
	for (i = 0; i < g->e->nwriters; i++) {
		if (strcmp(g->e->writers[i].id, w) == 0) {
			if (seq <= g->e->writers[i].seen)
				break;
			return 0;
		}
	}
	if (i == g->e->nwriters)
		return 0;
	if (g->nsegs == g->capsegs) {
		size_t cap = g->capsegs ? g->capsegs * 2 : 64;
		char **v = realloc(g->segs, cap * sizeof(*v));

		if (!v)
			return 0; /* left for the next checkpoint */
		g->segs = v;
		g->capsegs = cap;
	}
	if ((g->segs[g->nsegs] = strdup(key)))
		g->nsegs++;
	return 0;
}

static int eng_gc_ckpt_fn(void *arg, const char *key, uint64_t size)
{
	struct eng_gc *g = arg;
	char id[ENG_CKPT_ID_MAX + 1], obj[64];
	void *p;

	if (eng_ckpt_parse_name(key, id, obj, sizeof(obj)) ||
	    strcmp(id, g->id) >= 0)
		return 0;
	if (g->nids && strcmp(g->ids[g->nids - 1], id) == 0)
		return 0;
	if (g->nids == g->capids) {
		size_t cap = g->capids ? g->capids * 2 : 8;

		p = realloc(g->ids, cap * sizeof(g->ids[0]));
		if (!p)
			return -ENOMEM;
		g->ids = p;
		g->capids = cap;
	}
	strcpy(g->ids[g->nids++], id);
	return 0;
}

/*
 * Deletes what the new checkpoint `id` makes redundant: covered segments,
 * older checkpoints it subsumes, abandoned ones.  Failures are harmless.
 */
static void eng_ckpt_gc(struct engine *e, const char *id, uint64_t hlc)
{
	struct eng_gc g = { .e = e, .id = id };
	size_t i, j;

	backend_list(e->be, "log/", eng_gc_seg_fn, &g);
	/* one request per 1000 segments on S3, not one per segment */
	backend_del_many(e->be, (const char *const *)g.segs, g.nsegs);
	for (i = 0; i < g.nsegs; i++)
		free(g.segs[i]);
	free(g.segs);
	backend_list(e->be, "ckpt/", eng_gc_ckpt_fn, &g);
	for (i = 0; i < g.nids; i++) {
		char key[ENG_NAME_MAX], w[ENG_WRITER_MAX + 1];
		struct eng_manifest m;
		bool del = true;
		const char *why;
		uint64_t chlc;
		size_t len;
		void *p;

		snprintf(key, sizeof(key), "ckpt/%s/manifest", g.ids[i]);
		if (backend_get(e->be, key, &p, &len) == 0) {
			if (eng_manifest_parse(p, len, &m, &why) == 0) {
				/* keep it if it covers what we have not seen */
				for (j = 0; j < m.nwriters && del; j++) {
					uint32_t wi = eng_writer_get(
						e, m.writers[j].id);

					del = wi != ENG_NO_WRITER &&
					      m.writers[j].seq <=
						      e->writers[wi].seen;
				}
				eng_manifest_free(&m);
				free(p);
				if (del)
					eng_ckpt_delete(e, g.ids[i]);
				continue;
			}
			free(p);
		}
		/* no valid manifest: abandoned, or still being written */
		if (eng_ckpt_parse_id(g.ids[i], &chlc, w) == 0 &&
		    (strcmp(w, e->writers[e->self].id) == 0 ||
		     (chlc >> 16) + ENG_CKPT_GRACE_MS < (hlc >> 16)))
			eng_ckpt_delete(e, g.ids[i]);
	}
	free(g.ids);
}

int eng_checkpoint_locked(struct engine *e)
{
	const struct backend_cond absent = { .kind = BACKEND_COND_ABSENT };
	struct eng_manifest m = { 0 };
	struct eng_buf b = { 0 }, vb = { 0 };
	struct eng_ckpt_bg bg = { .running = false };
	char key[ENG_NAME_MAX], *text = NULL;
	uint64_t hlc, cut, total = 0;
	size_t i, nvec = 0, len;
	int rc;

	if (e->read_only)
		return eng_fail(-EROFS, "engine is read-only");
	if (e->broken)
		return eng_fail(-EIO, "engine state is incomplete; reopen");
	rc = eng_sync(e, false);
	if (rc)
		return rc;

	hlc = eng_hlc_next(e);
	cut = hlc - (ENG_TOMB_GRACE_MS << 16);
	cut = cut > hlc ? 0 : cut;
	snprintf(m.id, sizeof(m.id), "%016llx-%s", (unsigned long long)hlc,
		 e->writers[e->self].id);
	m.hlc = hlc;
	m.nwriters = e->nwriters;
	for (i = 0; i < e->ncolls; i++)
		nvec += e->colls[i]->vec_live > 0;
	m.writers = calloc(e->nwriters + 1, sizeof(*m.writers));
	m.objs = calloc(nvec + e->n_exts + 3, sizeof(*m.objs));
	if (!m.writers || !m.objs) {
		rc = eng_fail(-ENOMEM, "out of memory");
		goto out_free;
	}
	for (i = 0; i < e->nwriters; i++) {
		strcpy(m.writers[i].id, e->writers[i].id);
		m.writers[i].seq = e->writers[i].seen;
	}

	/* Readers may run meanwhile; commits wait on commit_lock. */
	strcpy(m.objs[0].name, ENG_OBJ_KEYS);
	strcpy(m.objs[1].name, ENG_OBJ_VALUES);
	m.nobjs = 2;
	rc = eng_keys_build(e, cut, &b, &vb);
	if (!rc)
		rc = eng_ckpt_put_bg(e, m.id, &m.objs[1], &vb, &bg);
	if (!rc)
		rc = eng_ckpt_put(e, m.id, &m.objs[0], &b);
	eng_buf_free(&b);
	if (rc)
		goto out_undo;
	for (i = 0; i < e->ncolls; i++) {
		struct eng_coll *c = e->colls[i];
		struct eng_mobj *o = &m.objs[m.nobjs];

		if (!c->vec_live)
			continue;
		snprintf(o->name, sizeof(o->name), "vec-%zu", m.nobjs - 2);
		o->coll = c->name; /* borrowed; not freed below */
		o->dim = c->dim;
		o->rows = c->vec_live;
		m.nobjs++;
		rc = eng_vec_build(e, c, &b);
		if (!rc)
			rc = eng_ckpt_put(e, m.id, o, &b);
		if (!rc) {
			snprintf(key, sizeof(key), "ckpt/%s/%s", m.id, o->name);
			eng_vec_adopt(e, c, key, &b);
		}
		eng_buf_free(&b);
		if (rc)
			goto out_undo;
	}
	/* Extensions: one that declines or runs out of memory is left out. */
	for (i = 0; i < e->n_exts; i++) {
		struct eng_mobj *o = &m.objs[m.nobjs];

		if (eng_ext_save(e, &e->exts[i], &b)) {
			snprintf(o->name, sizeof(o->name), "ext-%s",
				 e->exts[i].name);
			o->ext = true;
			m.nobjs++;
			rc = eng_ckpt_put(e, m.id, o, &b);
		}
		eng_buf_free(&b);
		if (rc)
			goto out_undo;
	}

	rc = eng_ckpt_bg_wait(&bg);
	if (rc)
		goto out_undo;
	/* The manifest goes last: until it exists the checkpoint is not. */
	rc = eng_manifest_build(&m, &text, &len);
	if (rc) {
		rc = eng_fail(rc, "out of memory");
		goto out_undo;
	}
	snprintf(key, sizeof(key), "ckpt/%s/manifest", m.id);
	rc = backend_put(e->be, key, text, len, &absent);
	if (rc) {
		rc = eng_fail(rc, "cannot write %s", key);
		goto out_undo;
	}
	for (i = 0; i < m.nobjs; i++)
		total += m.objs[i].size;
	eng_ckpt_remember(e, m.id);
	eng_ckpt_gc(e, m.id, hlc);
	pthread_rwlock_wrlock(&e->lock);
	eng_purge_tombs(e, cut);
	e->segments = 0;
	e->segment_bytes = 0;
	e->unlogged = 0;
	e->checkpoint_bytes = total + len;
	pthread_rwlock_unlock(&e->lock);
	rc = 0;
	goto out_free;
out_undo:
	eng_ckpt_bg_wait(&bg);
	eng_ckpt_delete(e, m.id);
out_free:
	eng_buf_free(&vb);
	free(text);
	for (i = 0; m.objs && i < m.nobjs; i++)
		m.objs[i].coll = NULL;
	eng_manifest_free(&m);
	return rc;
}
