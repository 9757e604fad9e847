/* engine_load.c - loading checkpoints and replaying segments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/engine_int.h"

/* --- objects kept for the engine's life ----------------------------------- */

int eng_obj_load(struct backend *be, const char *key, const uint8_t **data,
		 size_t *len, void **cookie)
{
	const void *p;
	void *buf;
	int rc;

	*cookie = NULL;
	rc = backend_map(be, key, &p, len, cookie);
	if (rc == 0) {
		*data = p;
		return 0;
	}
	if (rc != -ENOTSUP)
		return rc;
	*cookie = NULL;
	rc = backend_get(be, key, &buf, len);
	if (rc)
		return rc;
	*data = buf;
	return 0;
}

void eng_obj_release(struct backend *be, const uint8_t *data, void *cookie)
{
	if (cookie)
		backend_unmap(be, cookie);
	else
		free((void *)data);
}

int eng_map_keep(struct engine *e, const uint8_t *data, size_t len,
		 void *cookie, const char *name, bool lazy)
{
	if (e->nmaps == e->maps_cap) {
		size_t cap = e->maps_cap ? e->maps_cap * 2 : 8;
		struct eng_map *m = realloc(e->maps, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		e->maps = m;
		e->maps_cap = cap;
	}
	e->maps[e->nmaps].data = data;
	e->maps[e->nmaps].len = len;
	e->maps[e->nmaps].cookie = cookie;
	e->maps[e->nmaps].lazy = lazy;
	snprintf(e->maps[e->nmaps].name, sizeof(e->maps[0].name), "%s", name);
	e->nmaps++;
	return 0;
}

const char *eng_map_name(const struct engine *e, const void *p)
{
	const uint8_t *q = p;
	size_t i;

	for (i = 0; i < e->nmaps; i++) {
		const struct eng_map *m = &e->maps[i];

		if (q >= m->data && q < m->data + m->len)
			return m->name;
	}
	return "a checkpoint object";
}

bool eng_map_lazy(const struct engine *e, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < e->nmaps; i++) {
		const struct eng_map *m = &e->maps[i];

		if (p >= m->data && p < m->data + m->len)
			return m->lazy && len <= (size_t)(m->data + m->len - p);
	}
	return false;
}

void eng_advise_range(const void *p, size_t len, int advice)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t a;

	if (page <= 0 || !len)
		return;
	a = (uintptr_t)p & ~((uintptr_t)page - 1);
	madvise((void *)a, (uintptr_t)p + len - a, advice);
}

void eng_chunk_sums(const void *data, size_t len, uint8_t *out)
{
	const uint8_t *p = data;
	size_t i, n = eng_nchunks(len);

	for (i = 0; i < n; i++) {
		size_t at = i * (size_t)ENG_CHUNK;
		size_t cl = len - at < ENG_CHUNK ? len - at : ENG_CHUNK;
		uint64_t h = eng_xxh3(p + at, cl);

		memcpy(out + 8 * i, &h, 8); /* little-endian host */
	}
}

bool eng_val_intact(const uint8_t *v, size_t len, uint64_t sum)
{
	size_t i, n = eng_nchunks(len);
	const uint8_t *tab = v + len + 1;

	if (!n)
		return eng_xxh3(v, len) == sum && !v[len];
	/*
	 * In the order of the bytes (the reader reads ahead sequentially):
	 * the chunks against the table, then the NUL and the table itself.
	 */
	for (i = 0; i < n; i++) {
		size_t at = i * (size_t)ENG_CHUNK;
		size_t cl = len - at < ENG_CHUNK ? len - at : ENG_CHUNK;

		if (eng_xxh3(v + at, cl) != eng_le64(tab + 8 * i))
			return false;
	}
	return !v[len] && eng_xxh3(tab, 8 * n) == sum;
}

bool eng_value_ok(const struct engine *e, const void *data, size_t len,
		  bool vec, uint64_t sum)
{
	const uint8_t *p = data;
	bool ok;

	if (len < ENG_READ_AHEAD_MIN || !eng_map_lazy(e, p, len))
		return vec ? eng_xxh3(p, len) == sum
			   : eng_val_intact(p, len, sum);
	/*
	 * Read as the kernel reads a file sequentially (readahead windows
	 * that grow, large folios), then back to no readahead: the advice
	 * splits the mapping's VMA for the while, and putting it back merges
	 * it again.  Two readers advising neighbours may share a page at the
	 * edge; advice is all it is.  The pass then runs at the disk's speed
	 * (512 MiB cold: 257 ms against 285 ms for dd), the hashing hidden
	 * under the kernel's asynchronous readahead.  Measured and slower:
	 * MADV_WILLNEED 64 MiB ahead of the hash (312 ms; each call reads at
	 * most one readahead window), MADV_POPULATE_READ in 16 MiB steps
	 * (286 ms, erratic: the steps do not overlap the hash), pread into a
	 * private buffer (399 ms: fresh anonymous pages), and either advice
	 * or POPULATE_READ under MADV_RANDOM (a page per read, 35 MiB/s).
	 */
	eng_advise_range(p, len, MADV_SEQUENTIAL);
	ok = vec ? eng_xxh3(p, len) == sum : eng_val_intact(p, len, sum);
	eng_advise_range(p, len, MADV_RANDOM);
	return ok;
}

void eng_map_drop(struct engine *e, const void *p)
{
	const uint8_t *q = p;
	size_t i;

	for (i = 0; i < e->nmaps; i++) {
		struct eng_map *m = &e->maps[i];

		if (q >= m->data && q < m->data + m->len) {
			eng_obj_release(e->be, m->data, m->cookie);
			*m = e->maps[--e->nmaps];
			return;
		}
	}
}

bool eng_ckpt_known(const struct engine *e, const char *id)
{
	size_t i;

	for (i = 0; i < e->nckpts; i++) {
		if (strcmp(e->ckpts[i], id) == 0)
			return true;
	}
	return false;
}

int eng_ckpt_remember(struct engine *e, const char *id)
{
	if (eng_ckpt_known(e, id))
		return 0;
	if (e->nckpts == e->ckpts_cap) {
		size_t cap = e->ckpts_cap ? e->ckpts_cap * 2 : 8;
		void *p = realloc(e->ckpts, cap * sizeof(e->ckpts[0]));

		if (!p)
			return -ENOMEM;
		e->ckpts = p;
		e->ckpts_cap = cap;
	}
	strcpy(e->ckpts[e->nckpts++], id);
	return 0;
}

/* --- checkpoint objects --------------------------------------------------- */

/*
 * kv object, the key index (ENG_OBJ_KEYS; "keys object" below): magic
 * "LODEFSKV", u32 version, u32 collection count; per
 * collection, in ascending name order: u32 name length, u32 0, u64
 * entries, u64 drop HLC, u32 drop writer, u32 0, the collection's place
 * (creation stamp: u64 HLC, u32 writer, u32 index; HLC 0: none), name,
 * NUL, pad to 8; per entry: u64 HLC, u32 writer, u8 type (0 tombstone,
 * 1 JSON, 2 BLOB, 3 VEC), u8 0, u16 0, u32 key length, u32 value length,
 * u64 value offset in the values object (VEC: row in the collection's vec
 * object), u64 xxh3 of the value (of its chunk sums if it has them),
 * creation stamp (all 0 for a tombstone), key, NUL, pad to 8.  Writers index the manifest's writer
 * list.  Live entries come in creation order, a collection's vector rows
 * in row order.
 *
 * values object: magic "LODEFSVL", u32 version, u32 0, then every JSON
 * and BLOB value followed by a NUL and, if it has more than ENG_CHUNK
 * bytes, its chunk sums (one u64 xxh3 per ENG_CHUNK bytes; the keys
 * entry's sum is then the xxh3 of this table), packed.  Open never reads
 * it: a value is read (and checked) when it is used.
 */

/*
 * Decodes a creation stamp; its writer must index the manifest's list
 * (and is translated to the engine's when the stamp is applied).
 */
static int eng_cstamp_get(const uint8_t *p, size_t nw, struct eng_cstamp *cs)
{
	cs->hlc = eng_le64(p);
	cs->writer = eng_le32(p + 8);
	cs->idx = eng_le32(p + 12);
	if (!cs->hlc)
		return cs->writer || cs->idx ? -EUCLEAN : 0;
	return cs->writer < nw ? 0 : -EUCLEAN;
}

enum eng_walk_mode {
	ENG_WALK_CHECK,	 /* structure only */
	ENG_WALK_VERIFY, /* values at hand against their xxh3 */
	ENG_WALK_APPLY,	 /* into the engine (after a CHECK) */
};

/* A walk over a keys object: what it needs besides the object. */
struct eng_kwalk {
	enum eng_walk_mode mode;
	const struct eng_manifest *m;
	const struct eng_loaded *objs; /* manifest order (VERIFY, APPLY) */
	uint64_t vals_size;	       /* from the manifest */
	size_t vals;		       /* index of the values object */
	struct engine *e;	       /* APPLY */
	const uint32_t *wmap;	       /* APPLY: manifest writer -> ours */
	unsigned flags;		       /* APPLY */
	eng_bad_value_fn *bad;	       /* VERIFY */
	void *bad_arg;
	size_t nbad;
};

/* The floats of vec object o as loaded (its header has been checked). */
static const float *eng_vec_data(const struct eng_loaded *l)
{
	return (const float *)(const void *)(l->data + eng_le64(l->data + 24));
}

/* VERIFY: checks one value at hand against the xxh3 of its entry. */
static void eng_walk_verify(struct eng_kwalk *w, const char *coll,
			    const char *key, uint8_t type, size_t vi,
			    uint64_t at, uint32_t vl, uint64_t sum)
{
	const struct eng_loaded *l;
	const uint8_t *v;
	size_t obj = type == ENGINE_VEC ? vi : w->vals;

	l = &w->objs[obj];
	if (!l->data)
		return;
	if (type == ENGINE_VEC)
		v = (const uint8_t *)(eng_vec_data(l) + at * (vl / 4));
	else
		v = l->data + at;
	if (type == ENGINE_VEC ? eng_xxh3(v, vl) == sum
			       : eng_val_intact(v, vl, sum))
		return;
	w->nbad++;
	if (w->bad)
		w->bad(w->bad_arg, obj, coll, key);
}

/* APPLY: one entry of collection c. */
static int eng_walk_apply(struct eng_kwalk *w, struct eng_coll *c,
			  const char *key, uint8_t type, size_t vi, bool adopt,
			  uint64_t at, uint32_t vl, uint64_t hlc, uint32_t wr,
			  const struct eng_cstamp *cs)
{
	unsigned flags = w->flags | ENG_STABLE;
	const void *val;

	if (type == ENGINE_NONE)
		return eng_apply_del(w->e, c, key, hlc, w->wmap[wr], flags);
	if (type == ENGINE_VEC) {
		val = eng_vec_data(&w->objs[vi]) + at * (vl / 4);
		if (adopt)
			flags |= ENG_ADOPT;
	} else {
		/* a pointer into the values object: nothing is read yet */
		val = w->objs[w->vals].data + at;
	}
	return eng_apply_put(w->e, c, key, type, val, vl, hlc, w->wmap[wr], cs,
			     flags, (size_t)at);
}

/* Index of the vec object of collection `name` in the manifest, or -1. */
static size_t eng_vec_obj(const struct eng_manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nobjs; i++) {
		if (m->objs[i].coll && strcmp(m->objs[i].coll, name) == 0)
			return i;
	}
	return SIZE_MAX;
}

/*
 * APPLY: uses vec object vi for collection c in place if c holds no
 * vectors yet (*adopt: its entries then adopt their rows); otherwise
 * (merging checkpoints) vectors are copied as they apply.
 */
static int eng_vec_use(struct eng_kwalk *w, struct eng_coll *c, size_t vi,
		       bool *adopt)
{
	const struct eng_mobj *o = &w->m->objs[vi];
	const struct eng_loaded *l = &w->objs[vi];
	const float *data = eng_vec_data(l);

	*adopt = false;
	if (c->nvb || !o->rows || (uintptr_t)data % sizeof(float))
		return 0;
	if (eng_vec_install(w->e, c, data, (size_t)o->rows, o->dim, l->data,
			    l->len, o->xxh3))
		return -ENOMEM;
	*adopt = true;
	return 0;
}

/* Walks the entries of one collection section starting at *pos. */
static int eng_walk_coll(struct eng_kwalk *w, const uint8_t *p, size_t n,
			 size_t *pos, const char *name, uint64_t nent,
			 struct eng_coll *c, size_t vi, bool adopt,
			 const char **why)
{
	const struct eng_mobj *vo = vi == SIZE_MAX ? NULL : &w->m->objs[vi];
	size_t nw = w->m->nwriters;
	uint64_t k, rows = 0;

	for (k = 0; k < nent; k++) {
		struct eng_cstamp cs;
		uint64_t hlc, at, sum;
		uint32_t wr, kl, vl;
		const uint8_t *q;
		uint8_t type;
		const char *key;
		int rc;

		if (n - *pos < ENG_KEYS_ENT)
			return *why = "entry past the end", -EUCLEAN;
		q = p + *pos;
		hlc = eng_le64(q);
		wr = eng_le32(q + 8);
		type = q[12];
		kl = eng_le32(q + 16);
		vl = eng_le32(q + 20);
		at = eng_le64(q + ENG_KEYS_AT);
		sum = eng_le64(q + ENG_KEYS_SUM);
		if (q[13] || eng_le16(q + 14) || wr >= nw ||
		    eng_cstamp_get(q + 40, nw, &cs) ||
		    (type != ENGINE_NONE) != (cs.hlc != 0))
			return *why = "bad entry header", -EUCLEAN;
		*pos += ENG_KEYS_ENT;
		if (kl >= n - *pos || p[*pos + kl])
			return *why = "key past the end", -EUCLEAN;
		key = (const char *)p + *pos;
		if (w->mode == ENG_WALK_CHECK &&
		    eng_name_valid(key, kl, ENGINE_KEY_MAX))
			return *why = "invalid key", -EUCLEAN;
		*pos = ENG_PAD8(*pos + kl + 1);
		if (*pos > n)
			return *why = "key past the end", -EUCLEAN;
		switch (type) {
		case ENGINE_NONE:
			if (vl || at || sum)
				return *why = "tombstone with a value",
				       -EUCLEAN;
			break;
		case ENGINE_JSON:
		case ENGINE_BLOB:
			/* the value and its NUL inside the values object */
			if (at < ENG_VALS_HDR || at >= w->vals_size ||
			    vl >= w->vals_size - at ||
			    (type == ENGINE_JSON && !vl))
				return *why = "value outside the values object",
				       -EUCLEAN;
			/* and a large one's chunk sums after its NUL */
			if (8 * (uint64_t)eng_nchunks(vl) >
			    w->vals_size - at - vl - 1)
				return *why = "chunk sums outside the values "
					      "object",
				       -EUCLEAN;
			break;
		case ENGINE_VEC:
			if (!vo || at != rows || rows >= vo->rows ||
			    vl != (uint64_t)vo->dim * sizeof(float))
				return *why = "vector entry does not match the "
					      "vec object",
				       -EUCLEAN;
			rows++;
			break;
		default:
			return *why = "bad entry type", -EUCLEAN;
		}
		if (w->mode == ENG_WALK_VERIFY && type != ENGINE_NONE)
			eng_walk_verify(w, name, key, type, vi, at, vl, sum);
		if (w->mode != ENG_WALK_APPLY)
			continue;
		/* stamps were checked: translate the writers */
		if (cs.hlc)
			cs.writer = w->wmap[cs.writer];
		rc = eng_walk_apply(w, c, key, type, vi, adopt, at, vl, hlc, wr,
				    &cs);
		if (rc < 0)
			return *why = "out of memory", rc;
	}
	if (vo && rows != vo->rows)
		return *why = "vec object has rows no entry names", -EUCLEAN;
	return 0;
}

/* Walks a keys object (see struct eng_kwalk for what it does). */
static int eng_keys_walk(struct eng_kwalk *w, const uint8_t *p, size_t n,
			 const char **why)
{
	const struct eng_manifest *m = w->m;
	size_t pos = ENG_KEYS_HDR, nw = m->nwriters, i, nvec = 0, claimed = 0;
	const char *prev = NULL;
	uint32_t ncoll;
	int rc;

	w->vals = SIZE_MAX;
	for (i = 0; i < m->nobjs; i++) {
		if (strcmp(m->objs[i].name, ENG_OBJ_VALUES) == 0)
			w->vals = i;
		nvec += m->objs[i].coll != NULL;
	}
	if (w->vals == SIZE_MAX)
		return *why = "manifest lacks the values object", -EUCLEAN;
	w->vals_size = m->objs[w->vals].size;
	if (n < ENG_KEYS_HDR || memcmp(p, ENG_KEYS_MAGIC, ENG_MAGIC_LEN) != 0)
		return *why = "bad keys object header", -EUCLEAN;
	if (eng_le32(p + 8) != ENG_FORMAT_VERSION)
		return *why = "keys object format is not this program's",
		       -EPROTO;
	ncoll = eng_le32(p + 12);
	for (i = 0; i < ncoll; i++) {
		struct eng_coll *c = NULL;
		struct eng_cstamp first;
		uint64_t nent, drop_hlc;
		uint32_t nl, drop_w;
		const char *name;
		bool adopt = false;
		size_t vi;

		if (n - pos < ENG_KEYS_COLL)
			return *why = "collection header past the end",
			       -EUCLEAN;
		nl = eng_le32(p + pos);
		nent = eng_le64(p + pos + 8);
		drop_hlc = eng_le64(p + pos + 16);
		drop_w = eng_le32(p + pos + 24);
		if (eng_le32(p + pos + 4) || eng_le32(p + pos + 28) ||
		    eng_cstamp_get(p + pos + 32, nw, &first) ||
		    (drop_hlc && drop_w >= nw) || (!drop_hlc && drop_w) ||
		    nent > n / ENG_KEYS_ENT)
			return *why = "bad collection header", -EUCLEAN;
		pos += ENG_KEYS_COLL;
		if (nl >= n - pos || p[pos + nl])
			return *why = "collection name past the end", -EUCLEAN;
		name = (const char *)p + pos;
		if (w->mode == ENG_WALK_CHECK &&
		    eng_name_valid(name, nl, ENGINE_KEY_MAX))
			return *why = "invalid collection name", -EUCLEAN;
		/* ascending names: each collection has one section */
		if (prev && strcmp(prev, name) >= 0)
			return *why = "collections out of order", -EUCLEAN;
		prev = name;
		pos = ENG_PAD8(pos + nl + 1);
		if (pos > n)
			return *why = "collection past the end", -EUCLEAN;
		vi = eng_vec_obj(m, name);
		claimed += vi != SIZE_MAX;
		if (w->mode == ENG_WALK_APPLY) {
			struct engine *e = w->e;

			c = eng_coll_get(e, name);
			if (!c || eng_coll_reserve(e, c, (size_t)nent))
				return *why = "out of memory", -ENOMEM;
			if (drop_hlc &&
			    eng_apply_drop(e, c, drop_hlc, w->wmap[drop_w],
					   w->flags) < 0)
				return *why = "out of memory", -ENOMEM;
			if (first.hlc) {
				first.writer = w->wmap[first.writer];
				eng_coll_first(e, c, &first);
			}
			rc = vi == SIZE_MAX ? 0 : eng_vec_use(w, c, vi, &adopt);
			if (rc)
				return *why = "out of memory", rc;
		}
		rc = eng_walk_coll(w, p, n, &pos, name, nent, c, vi, adopt,
				   why);
		if (rc)
			return rc;
	}
	if (pos != n)
		return *why = "bytes after the last collection", -EUCLEAN;
	if (claimed != nvec)
		return *why = "a vec object belongs to no collection", -EUCLEAN;
	return 0;
}

int eng_keys_check(const uint8_t *p, size_t n, const struct eng_manifest *m,
		   const char **why)
{
	struct eng_kwalk w = { .mode = ENG_WALK_CHECK, .m = m };

	return eng_keys_walk(&w, p, n, why);
}

size_t eng_values_verify(const struct eng_manifest *m,
			 const struct eng_loaded *objs, size_t ki,
			 eng_bad_value_fn *bad, void *arg)
{
	struct eng_kwalk w = { .mode = ENG_WALK_VERIFY,
			       .m = m,
			       .objs = objs,
			       .bad = bad,
			       .bad_arg = arg };
	const char *why;

	eng_keys_walk(&w, objs[ki].data, objs[ki].len, &why);
	return w.nbad;
}

int eng_vals_check(const uint8_t *p, size_t n, const char **why)
{
	if (n < ENG_VALS_HDR || memcmp(p, ENG_VALS_MAGIC, ENG_MAGIC_LEN) != 0 ||
	    eng_le32(p + 12))
		return *why = "bad values object header", -EUCLEAN;
	if (eng_le32(p + 8) != ENG_FORMAT_VERSION)
		return *why = "values object format is not this program's",
		       -EPROTO;
	return 0;
}

/*
 * vec object: magic "LODEFSVC", u32 version, u32 dim, u64 rows, u64 data
 * offset (a multiple of 64), u32 name length, u32 0, name, NUL, zeros up
 * to the data offset; then rows*dim float32 to the end of the object, in
 * creation order.  The keys of the rows are in the keys object.
 */
int eng_vec_check(const uint8_t *p, size_t n, const struct eng_mobj *o,
		  const char **why)
{
	uint64_t rows, off, rowbytes;
	uint32_t dim, nl;

	if (n < ENG_VEC_HDR || memcmp(p, ENG_VEC_MAGIC, ENG_MAGIC_LEN) != 0)
		return *why = "bad vec object header", -EUCLEAN;
	if (eng_le32(p + 8) != ENG_FORMAT_VERSION)
		return *why = "vec object format is not this program's",
		       -EPROTO;
	dim = eng_le32(p + 12);
	rows = eng_le64(p + 16);
	off = eng_le64(p + 24);
	nl = eng_le32(p + 32);
	if (dim != o->dim || rows != o->rows || !o->coll ||
	    nl != strlen(o->coll) || eng_le32(p + 36) ||
	    nl > n - ENG_VEC_HDR - 1 ||
	    memcmp(p + ENG_VEC_HDR, o->coll, nl) != 0 || p[ENG_VEC_HDR + nl] ||
	    off % 64 || off < ENG_VEC_HDR + nl + 1 || off > n)
		return *why = "vec object header disagrees with manifest",
		       -EUCLEAN;
	rowbytes = (uint64_t)dim * sizeof(float);
	if (rows > (n - off) / rowbytes || n - off - rows * rowbytes)
		return *why = "vectors do not fill the vec object", -EUCLEAN;
	return 0;
}

/*
 * Advice to the kernel about a mapped object; errors are ignored (it is
 * advice, and a backend's map need not be an mmap).
 */
static void eng_advise(const struct eng_loaded *l, int advice)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t a, off;

	if (!l->cookie || !l->len || page <= 0)
		return;
	a = (uintptr_t)l->data & ~((uintptr_t)page - 1);
	off = (uintptr_t)l->data - a;
	madvise((void *)a, l->len + off, advice);
}

/*
 * Reads (maps) object o of checkpoint m and checks what open checks: the
 * size always; the keys object whole (xxh3 and structure); a vec object's
 * header.  Values are not read: reads check each against its xxh3, and
 * a vec block is checked whole when engine_with_vecs first hands it out.
 */
static int eng_ckpt_obj_load(struct engine *e, const struct eng_manifest *m,
			     const struct eng_mobj *o, struct eng_loaded *l)
{
	char key[ENG_NAME_MAX];
	const char *why = NULL;
	int rc;

	snprintf(key, sizeof(key), "ckpt/%s/%s", m->id, o->name);
	rc = eng_obj_load(e->be, key, &l->data, &l->len, &l->cookie);
	if (rc == -ENOENT)
		return eng_fail(-EUCLEAN, "checkpoint object %s is missing",
				key);
	if (rc)
		return eng_fail(rc, "cannot read %s", key);
	if (l->len != o->size)
		return eng_fail(-EUCLEAN,
				"checkpoint object %s is damaged (%zu bytes, "
				"the manifest says %llu)",
				key, l->len, (unsigned long long)o->size);
	if (o->coll) {
		rc = eng_vec_check(l->data, l->len, o, &why);
	} else if (strcmp(o->name, ENG_OBJ_KEYS) == 0) {
		/* read it all now, in big requests */
		eng_advise(l, MADV_WILLNEED);
		if (eng_xxh3(l->data, l->len) != o->xxh3)
			return eng_fail(-EUCLEAN,
					"checkpoint object %s is damaged "
					"(checksum mismatch)",
					key);
		rc = eng_keys_check(l->data, l->len, m, &why);
	} else {
		/* values are read one by one: no readahead around them */
		eng_advise(l, MADV_RANDOM);
	}
	if (rc)
		return eng_fail(rc, "checkpoint object %s: %s", key, why);
	return 0;
}

/*
 * Loads checkpoint `m` into the engine: checks the objects against the
 * manifest (values aside, see eng_ckpt_obj_load), then applies the keys
 * by stamps (merging with what is there).
 */
static int eng_ckpt_load(struct engine *e, const struct eng_manifest *m,
			 unsigned flags)
{
	struct eng_kwalk w = { .mode = ENG_WALK_APPLY, .m = m, .e = e };
	struct eng_loaded *objs;
	uint32_t *wmap;
	const char *why = NULL;
	char key[ENG_NAME_MAX];
	size_t i, ki = SIZE_MAX;
	int rc = 0;

	objs = calloc(m->nobjs + 1, sizeof(*objs));
	wmap = calloc(m->nwriters + 1, sizeof(*wmap));
	if (!objs || !wmap) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < m->nwriters; i++) {
		wmap[i] = eng_writer_get(e, m->writers[i].id);
		if (wmap[i] == ENG_NO_WRITER) {
			rc = -ENOMEM;
			goto out_free;
		}
	}
	for (i = 0; i < m->nobjs; i++) {
		if (m->objs[i].ext)
			continue; /* optional: see eng_ext_load */
		if (strcmp(m->objs[i].name, ENG_OBJ_KEYS) == 0)
			ki = i;
		rc = eng_ckpt_obj_load(e, m, &m->objs[i], &objs[i]);
		if (rc)
			goto out_release;
	}
	w.objs = objs;
	w.wmap = wmap;
	w.flags = flags;
	rc = eng_keys_walk(&w, objs[ki].data, objs[ki].len, &why);
	if (rc)
		goto out_apply;
	/* entries arrive out of order when they merge with others */
	eng_settle(e);
	for (i = 0; i < m->nobjs; i++) {
		const struct eng_mobj *o = &m->objs[i];

		if (!objs[i].data)
			continue;
		snprintf(key, sizeof(key), "ckpt/%s/%s", m->id, o->name);
		rc = eng_map_keep(
			e, objs[i].data, objs[i].len, objs[i].cookie, key,
			objs[i].cookie && strcmp(o->name, ENG_OBJ_VALUES) == 0);
		if (rc) {
			why = "out of memory";
			goto out_apply;
		}
		objs[i].data = NULL; /* the engine's now */
	}
	for (i = 0; i < m->nwriters; i++) {
		struct eng_writer *wr = &e->writers[wmap[i]];

		if (m->writers[i].seq > wr->seen)
			wr->seen = m->writers[i].seq;
	}
	eng_hlc_see(e, m->hlc);
	e->checkpoint_bytes = 0;
	for (i = 0; i < m->nobjs; i++)
		e->checkpoint_bytes += m->objs[i].size;
	rc = eng_ckpt_remember(e, m->id);
	goto out_free;
out_apply:
	/* the state is partly merged: the caller must not keep using it */
	e->broken = rc;
	rc = eng_fail(rc, "loading checkpoint %s: %s", m->id, why);
out_release:
	for (i = 0; i < m->nobjs; i++) {
		if (objs[i].data)
			eng_obj_release(e->be, objs[i].data, objs[i].cookie);
	}
out_free:
	free(objs);
	free(wmap);
	return rc;
}

/* --- listing -------------------------------------------------------------- */

struct eng_lckpt {
	char id[ENG_CKPT_ID_MAX + 1];
	bool manifest;
	struct eng_manifest m;
	bool valid;
	bool damaged; /* manifest present but invalid: never cleaned */
};

struct eng_lseg {
	char *key;
	uint32_t w;
	uint64_t seq;
	uint64_t size;
	bool last; /* the highest seq of its writer in the listing */
	struct eng_seg_hdr h;
	bool have_hdr;
	uint8_t *buf;
	size_t len;
};

struct eng_list {
	struct engine *e;
	struct eng_lckpt *ck;
	size_t nck, capck;
	struct eng_lseg *segs;
	size_t nsegs, capsegs;
	int err;
};

static int eng_list_ckpt_fn(void *arg, const char *key, uint64_t size)
{
	struct eng_list *l = arg;
	char id[ENG_CKPT_ID_MAX + 1], obj[64];
	struct eng_lckpt *c;

	if (eng_ckpt_parse_name(key, id, obj, sizeof(obj)))
		return 0; /* not ours: fsck reports it */
	if (!l->nck || strcmp(l->ck[l->nck - 1].id, id) != 0) {
		if (l->nck == l->capck) {
			size_t cap = l->capck ? l->capck * 2 : 8;
			void *p = realloc(l->ck, cap * sizeof(*l->ck));

			if (!p)
				return l->err = -ENOMEM;
			l->ck = p;
			l->capck = cap;
		}
		c = &l->ck[l->nck++];
		memset(c, 0, sizeof(*c));
		strcpy(c->id, id);
	}
	c = &l->ck[l->nck - 1];
	if (strcmp(obj, "manifest") == 0)
		c->manifest = true;
	return 0;
}

static int eng_list_seg_fn(void *arg, const char *key, uint64_t size)
{
	struct eng_list *l = arg;
	char w[ENG_WRITER_MAX + 1];
	struct eng_lseg *s;
	uint64_t seq;
	uint32_t wi;

	if (eng_seg_parse_name(key, w, &seq))
		return 0; /* not ours: fsck reports it */
	wi = eng_writer_get(l->e, w);
	if (wi == ENG_NO_WRITER)
		return l->err = -ENOMEM;
	if (l->nsegs == l->capsegs) {
		size_t cap = l->capsegs ? l->capsegs * 2 : 64;
		void *p = realloc(l->segs, cap * sizeof(*l->segs));

		if (!p)
			return l->err = -ENOMEM;
		l->segs = p;
		l->capsegs = cap;
	}
	s = &l->segs[l->nsegs];
	memset(s, 0, sizeof(*s));
	s->key = strdup(key);
	if (!s->key)
		return l->err = -ENOMEM;
	s->w = wi;
	s->seq = seq;
	s->size = size;
	l->nsegs++;
	return 0;
}

static void eng_list_free(struct eng_list *l)
{
	size_t i;

	for (i = 0; i < l->nck; i++)
		eng_manifest_free(&l->ck[i].m);
	for (i = 0; i < l->nsegs; i++) {
		free(l->segs[i].key);
		free(l->segs[i].buf);
	}
	free(l->ck);
	free(l->segs);
}

static int eng_ckpt_cmp_desc(const void *a, const void *b)
{
	const struct eng_lckpt *x = a, *y = b;

	return strcmp(y->id, x->id);
}

/* True if every segment the checkpoint covers is already reflected. */
static bool eng_ckpt_subsumed(struct engine *e, const struct eng_manifest *m)
{
	size_t i, j;

	for (i = 0; i < m->nwriters; i++) {
		uint64_t seen = 0;

		for (j = 0; j < e->nwriters; j++) {
			if (strcmp(e->writers[j].id, m->writers[i].id) == 0) {
				seen = e->writers[j].seen;
				break;
			}
		}
		if (m->writers[i].seq > seen)
			return false;
	}
	return true;
}

static int eng_ckpt_del_fn(void *arg, const char *key, uint64_t size)
{
	struct backend *be = arg;

	if (strcmp(key + strlen(key) - 9, "/manifest") != 0)
		backend_del(be, key);
	return 0;
}

int eng_ckpt_delete(struct engine *e, const char *id)
{
	char key[ENG_NAME_MAX];
	int rc;

	snprintf(key, sizeof(key), "ckpt/%s/manifest", id);
	rc = backend_del(e->be, key);
	if (rc)
		return rc;
	snprintf(key, sizeof(key), "ckpt/%s/", id);
	return backend_list(e->be, key, eng_ckpt_del_fn, e->be);
}

/* True if a checkpoint newer than `id` is already loaded or written. */
static bool eng_ckpt_newer_known(const struct engine *e, const char *id)
{
	size_t i;

	for (i = 0; i < e->nckpts; i++) {
		if (strcmp(e->ckpts[i], id) > 0)
			return true;
	}
	return false;
}

/*
 * Hands each extension its object of checkpoint m when the checkpoint has
 * one and it reads back intact; anything else only skips that load (the
 * client rebuilds from the observer).
 */
static void eng_ext_load(struct engine *e, const struct eng_manifest *m)
{
	char key[ENG_NAME_MAX];
	size_t i, j, len;
	void *p;

	for (i = 0; i < m->nobjs; i++) {
		const struct eng_mobj *o = &m->objs[i];
		const struct engine_ext *x = NULL;

		for (j = 0; o->ext && j < e->n_exts; j++) {
			if (strcmp(e->exts[j].name, o->name + 4) == 0)
				x = &e->exts[j].ext;
		}
		if (!x || !x->load)
			continue;
		snprintf(key, sizeof(key), "ckpt/%s/%s", m->id, o->name);
		if (backend_get(e->be, key, &p, &len))
			continue;
		if (len == o->size && eng_xxh3(p, len) == o->xxh3)
			x->load(x->arg, p, len);
		free(p);
	}
}

static int eng_sync_ckpts(struct engine *e, bool opening, unsigned flags)
{
	struct eng_list l = { .e = e };
	const struct eng_manifest *base = NULL;
	uint64_t newest = 0;
	size_t i, loaded = 0;
	int rc;

	rc = backend_list(e->be, "ckpt/", eng_list_ckpt_fn, &l);
	if (!rc)
		rc = l.err;
	if (rc) {
		rc = eng_fail(rc, "cannot list ckpt/");
		goto out_free;
	}
	if (l.nck > 1)
		qsort(l.ck, l.nck, sizeof(*l.ck), eng_ckpt_cmp_desc);
	for (i = 0; i < l.nck; i++) {
		struct eng_lckpt *c = &l.ck[i];
		char key[ENG_NAME_MAX];
		const char *why;
		void *buf;
		size_t len;

		if (!c->manifest || eng_ckpt_known(e, c->id))
			continue;
		snprintf(key, sizeof(key), "ckpt/%s/manifest", c->id);
		rc = backend_get(e->be, key, &buf, &len);
		if (rc == -ENOENT)
			continue; /* deleted meanwhile */
		if (rc) {
			rc = eng_fail(rc, "cannot read %s", key);
			goto out_free;
		}
		rc = eng_manifest_parse(buf, len, &c->m, &why);
		free(buf);
		if (rc == -ENOMEM)
			goto out_free;
		if (rc == -EPROTO) {
			rc = eng_fail(rc, "%s: %s", key, why);
			goto out_free;
		}
		if (!rc && strcmp(c->m.id, c->id) != 0) {
			why = "manifest names another checkpoint";
			rc = -EUCLEAN;
		}
		if (rc && !newest && !eng_ckpt_newer_known(e, c->id)) {
			/*
			 * A manifest is one atomic put: a damaged one is not
			 * an unfinished checkpoint, and what it covered may
			 * be gone.  Only a newer checkpoint makes it moot.
			 */
			rc = eng_fail(-EUCLEAN, "%s is damaged: %s", key, why);
			goto out_free;
		}
		if (rc) {
			c->damaged = true;
			continue;
		}
		c->valid = true;
		if (!newest)
			newest = c->m.hlc;
		if (eng_ckpt_subsumed(e, &c->m)) {
			rc = eng_ckpt_remember(e, c->id);
			if (rc)
				goto out_free;
			continue;
		}
		if (!opening)
			pthread_rwlock_wrlock(&e->lock);
		rc = eng_ckpt_load(e, &c->m, flags);
		if (!opening)
			pthread_rwlock_unlock(&e->lock);
		if (rc)
			goto out_free;
		base = &c->m;
		loaded++;
	}
	/* extension bytes describe one checkpoint, not a merge of several */
	if (opening && loaded == 1 && e->n_exts)
		eng_ext_load(e, base);
	/*
	 * Checkpoints without a valid manifest: ours are abandoned, another
	 * writer's may still be being written unless it is old.
	 */
	for (i = 0; opening && !e->read_only && i < l.nck; i++) {
		struct eng_lckpt *c = &l.ck[i];
		char w[ENG_WRITER_MAX + 1];
		uint64_t hlc;

		if (c->valid || c->damaged || eng_ckpt_parse_id(c->id, &hlc, w))
			continue;
		if (strcmp(w, e->writers[e->self].id) == 0 ||
		    ((hlc >> 16) + ENG_CKPT_GRACE_MS < (newest >> 16)))
			eng_ckpt_delete(e, c->id);
	}
	rc = 0;
out_free:
	eng_list_free(&l);
	return rc;
}

static int eng_seg_cmp(const void *a, const void *b)
{
	const struct eng_lseg *x = a, *y = b;
	int c;

	if (x->h.hlc != y->h.hlc)
		return x->h.hlc < y->h.hlc ? -1 : 1;
	c = strcmp(x->h.writer, y->h.writer);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A segment that cannot be read: ignorable only as its writer's tail. */
static int eng_seg_bad(struct engine *e, struct eng_lseg *s, int rc,
		       const char *why)
{
	if (rc == -EBADMSG && s->last) {
		struct eng_writer *w = &e->writers[s->w];

		/* a torn tail, never acknowledged */
		if (s->seq > w->seen)
			w->seen = s->seq;
		if (!e->read_only)
			backend_del(e->be, s->key);
		return 0;
	}
	if (rc == -EBADMSG)
		return eng_fail(-EUCLEAN,
				"segment %s is damaged (%s) and is not the "
				"last of its writer",
				s->key, why);
	return eng_fail(rc, "segment %s: %s", s->key, why);
}

static int eng_sync_segs(struct engine *e, bool opening, unsigned flags)
{
	struct eng_list l = { .e = e };
	uint64_t total = 0;
	bool preload;
	size_t i;
	int rc;

	rc = backend_list(e->be, "log/", eng_list_seg_fn, &l);
	if (!rc)
		rc = l.err;
	if (rc) {
		rc = eng_fail(rc, "cannot list log/");
		goto out_free;
	}
	/* listed in key order: a writer's segments are adjacent, by seq */
	for (i = 0; i < l.nsegs; i++) {
		struct eng_lseg *s = &l.segs[i];

		s->last = i + 1 == l.nsegs || l.segs[i + 1].w != s->w;
		if (s->w == e->self && s->seq >= e->next_seq)
			e->next_seq = s->seq + 1;
		if (s->seq > e->writers[s->w].seen)
			total += s->size;
	}

	/* Read headers (or whole segments when small) to order the replay. */
	preload = total <= ENG_REPLAY_PRELOAD_MAX;
	for (i = 0; i < l.nsegs; i++) {
		struct eng_lseg *s = &l.segs[i];
		uint8_t hdr[ENG_SEG_HDR];
		const char *why = "unreadable header";
		size_t got = 0;
		void *buf;

		if (s->seq <= e->writers[s->w].seen)
			continue; /* covered */
		if (preload) {
			rc = backend_get(e->be, s->key, &buf, &s->len);
			if (!rc) {
				s->buf = buf;
				got = s->len;
			}
		} else {
			rc = backend_get_range(e->be, s->key, 0, sizeof(hdr),
					       hdr, &got);
		}
		if (rc == -ENOENT)
			continue; /* deleted meanwhile (covered elsewhere) */
		if (rc) {
			rc = eng_fail(rc, "cannot read %s", s->key);
			goto out_free;
		}
		rc = eng_seg_parse_hdr(preload ? s->buf : hdr, got, &s->h,
				       &why);
		if (rc) {
			rc = eng_seg_bad(e, s, rc, why);
			if (rc)
				goto out_free;
			continue;
		}
		if (strcmp(s->h.writer, e->writers[s->w].id) ||
		    s->h.seq != s->seq) {
			rc = eng_fail(-EUCLEAN,
				      "segment %s: header names another "
				      "writer or seq",
				      s->key);
			goto out_free;
		}
		s->have_hdr = true;
	}
	if (l.nsegs > 1)
		qsort(l.segs, l.nsegs, sizeof(*l.segs), eng_seg_cmp);

	for (i = 0; i < l.nsegs; i++) {
		struct eng_lseg *s = &l.segs[i];
		struct eng_seg_hdr h;
		const char *why;
		void *buf;

		if (!s->have_hdr)
			continue;
		if (!s->buf) {
			rc = backend_get(e->be, s->key, &buf, &s->len);
			if (rc == -ENOENT)
				continue;
			if (rc) {
				rc = eng_fail(rc, "cannot read %s", s->key);
				goto out_free;
			}
			s->buf = buf;
		}
		rc = eng_seg_verify(s->buf, s->len, &h, &why);
		if (!rc && (h.hlc != s->h.hlc || h.nrec != s->h.nrec))
			rc = eng_fail(-EUCLEAN, "segment %s changed", s->key);
		if (rc) {
			rc = eng_seg_bad(e, s, rc, why);
			if (rc)
				goto out_free;
			continue;
		}
		if (!opening)
			pthread_rwlock_wrlock(&e->lock);
		rc = eng_recs_apply(e, s->buf, s->len - ENG_TRAILER,
				    ENG_SEG_HDR, h.nrec, h.hlc, s->w, flags);
		e->segments++;
		e->segment_bytes += s->len;
		if (!opening)
			pthread_rwlock_unlock(&e->lock);
		if (rc) {
			e->broken = rc;
			rc = eng_fail(rc, "replaying %s: out of memory",
				      s->key);
			goto out_free;
		}
		if (s->seq > e->writers[s->w].seen)
			e->writers[s->w].seen = s->seq;
		eng_hlc_see(e, h.hlc);
		free(s->buf);
		s->buf = NULL;
	}
	rc = 0;
out_free:
	eng_list_free(&l);
	return rc;
}

int eng_sync(struct engine *e, bool opening)
{
	unsigned flags = opening ? 0 : ENG_OBSERVE | ENG_OBS_REMOTE;
	int rc;

	rc = eng_sync_ckpts(e, opening, flags);
	if (rc)
		return rc;
	if (opening)
		eng_observe_all(e);
	return eng_sync_segs(e, opening,
			     ENG_OBSERVE | (opening ? 0 : ENG_OBS_REMOTE));
}
