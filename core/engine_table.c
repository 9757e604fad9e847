/* engine_table.c - in-memory state: key tables, vector blocks, apply rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/engine_int.h"

/* --- clock and writers ---------------------------------------------------- */

uint64_t eng_hlc_next(struct engine *e)
{
	uint64_t phys = eng_now_ms() << 16;

	e->hlc = phys > e->hlc ? phys : e->hlc + 1;
	return e->hlc;
}

void eng_hlc_see(struct engine *e, uint64_t hlc)
{
	if (hlc > e->hlc)
		e->hlc = hlc;
}

uint32_t eng_writer_get(struct engine *e, const char *id)
{
	size_t i;

	for (i = e->nwriters; i-- > 0;) {
		if (strcmp(e->writers[i].id, id) == 0)
			return (uint32_t)i;
	}
	if (e->nwriters >= ENG_NO_WRITER - 1)
		return ENG_NO_WRITER;
	if (e->nwriters == e->writers_cap) {
		size_t cap = e->writers_cap ? e->writers_cap * 2 : 8;
		struct eng_writer *w = realloc(e->writers, cap * sizeof(*w));

		if (!w)
			return ENG_NO_WRITER;
		e->writers = w;
		e->writers_cap = cap;
	}
	memset(&e->writers[e->nwriters], 0, sizeof(e->writers[0]));
	strcpy(e->writers[e->nwriters].id, id);
	return (uint32_t)e->nwriters++;
}

int eng_stamp_cmp(const struct engine *e, uint64_t h1, uint32_t w1, uint64_t h2,
		  uint32_t w2)
{
	if (h1 != h2)
		return h1 < h2 ? -1 : 1;
	if (w1 == w2)
		return 0;
	if (w1 == ENG_NO_WRITER || w2 == ENG_NO_WRITER)
		return w1 == ENG_NO_WRITER ? -1 : 1;
	return strcmp(e->writers[w1].id, e->writers[w2].id);
}

int eng_cstamp_cmp(const struct engine *e, const struct eng_cstamp *a,
		   const struct eng_cstamp *b)
{
	int c = eng_stamp_cmp(e, a->hlc, a->writer, b->hlc, b->writer);

	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* --- collections ---------------------------------------------------------- */

/* Index of the first collection whose name is >= name. */
static size_t eng_coll_pos(const struct engine *e, const char *name)
{
	size_t lo = 0, hi = e->ncolls;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(e->colls[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct eng_coll *eng_coll_find(const struct engine *e, const char *name)
{
	size_t i = eng_coll_pos(e, name);

	if (i < e->ncolls && strcmp(e->colls[i]->name, name) == 0)
		return e->colls[i];
	return NULL;
}

struct eng_coll *eng_coll_get(struct engine *e, const char *name)
{
	size_t i = eng_coll_pos(e, name);
	struct eng_coll *c;

	if (i < e->ncolls && strcmp(e->colls[i]->name, name) == 0)
		return e->colls[i];
	if (e->ncolls == e->colls_cap) {
		size_t cap = e->colls_cap ? e->colls_cap * 2 : 16;
		struct eng_coll **cs = realloc(e->colls, cap * sizeof(*cs));

		if (!cs)
			return NULL;
		e->colls = cs;
		cs = realloc(e->corder, cap * sizeof(*cs));
		if (!cs)
			return NULL;
		e->corder = cs;
		e->colls_cap = cap;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->name = strdup(name);
	if (!c->name) {
		free(c);
		return NULL;
	}
	c->drop_writer = ENG_NO_WRITER;
	memmove(&e->colls[i + 1], &e->colls[i],
		(e->ncolls - i) * sizeof(e->colls[0]));
	e->colls[i] = c;
	e->corder[e->ncolls] = c;
	e->ncolls++;
	e->corder_dirty = true;
	return c;
}

void eng_coll_first(struct engine *e, struct eng_coll *c,
		    const struct eng_cstamp *cs)
{
	if (eng_cstamp_cmp(e, cs, &c->first) > 0) {
		c->first = *cs;
		e->corder_dirty = true;
	}
}

/* --- the ordered table ---------------------------------------------------- */

/* One per key of every collection: millions at a time, keep it small. */
_Static_assert(sizeof(struct eng_ent) <= 56, "struct eng_ent grew");

static uint32_t eng_hash(const char *key)
{
	return (uint32_t)XXH3_64bits(key, strlen(key));
}

/* Index slots for n entries under a 3/4 load. */
static size_t eng_index_cap(size_t n)
{
	size_t cap = 16;

	while (cap / 4 * 3 < n)
		cap *= 2;
	return cap;
}

static void eng_index_add(uint32_t *index, size_t cap, uint32_t h, size_t pos)
{
	size_t mask = cap - 1, i;

	for (i = h & mask; index[i]; i = (i + 1) & mask)
		;
	index[i] = (uint32_t)(pos + 1);
}

/* The index slot that points at entry `pos` (hash h). */
static size_t eng_index_of(const struct eng_coll *c, uint32_t h, size_t pos)
{
	size_t mask = c->cap - 1, i;

	for (i = h & mask; c->index[i] != pos + 1; i = (i + 1) & mask)
		;
	return i;
}

static struct eng_ent *eng_ent_lookup(const struct eng_coll *c, const char *key,
				      uint32_t h)
{
	size_t mask = c->cap - 1, i;

	if (!c->cap)
		return NULL;
	for (i = h & mask; c->index[i]; i = (i + 1) & mask) {
		struct eng_ent *s = &c->ents[c->index[i] - 1];

		if (s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

struct eng_ent *eng_ent_find(const struct eng_coll *c, const char *key)
{
	if (!c || !c->cap)
		return NULL;
	return eng_ent_lookup(c, key, eng_hash(key));
}

void eng_ent_find_many(const struct eng_coll *c, const char *const *keys,
		       size_t n, struct eng_ent **out)
{
	uint32_t h[ENG_FIND_MANY];
	size_t mask, i;

	if (!c || !c->cap) {
		for (i = 0; i < n; i++)
			out[i] = NULL;
		return;
	}
	mask = c->cap - 1;
	for (i = 0; i < n; i++) {
		h[i] = eng_hash(keys[i]);
		__builtin_prefetch(&c->index[h[i] & mask]);
	}
	for (i = 0; i < n; i++) {
		uint32_t slot = c->index[h[i] & mask];

		if (slot)
			__builtin_prefetch(&c->ents[slot - 1]);
	}
	for (i = 0; i < n; i++) {
		uint32_t slot = c->index[h[i] & mask];

		if (slot)
			__builtin_prefetch(c->ents[slot - 1].key);
	}
	for (i = 0; i < n; i++) {
		out[i] = eng_ent_lookup(c, keys[i], h[i]);
		if (out[i] && out[i]->type == ENGINE_VEC) {
			const char *row =
				(const char *)eng_vec_row(c, out[i]->len);
			size_t off, len = (size_t)c->dim * sizeof(float);

			for (off = 0; off < len; off += 64)
				__builtin_prefetch(row + off);
		}
	}
}

/*
 * Squeezes the holes out of the entry array into the new empty `index` of
 * icap slots (which it takes), shrinking the array to `want` entries if
 * that is smaller.
 */
static void eng_coll_squeeze(struct engine *e, struct eng_coll *c,
			     uint32_t *index, size_t icap, size_t want)
{
	struct eng_ent *ents;
	size_t i, n = 0;

	for (i = 0; i < c->nents; i++) {
		if (!c->ents[i].key)
			continue;
		if (n != i)
			c->ents[n] = c->ents[i];
		eng_index_add(index, icap, c->ents[n].hash, n);
		n++;
	}
	c->nents = n;
	if (want < c->ents_cap) {
		/* shrinking cannot really fail; if it does, keep the block */
		ents = realloc(c->ents, want * sizeof(*ents));
		if (ents) {
			e->heap -= (c->ents_cap - want) * sizeof(*ents);
			c->ents = ents;
			c->ents_cap = want;
		}
	}
	e->heap -= c->cap * sizeof(*index);
	e->heap += icap * sizeof(*index);
	free(c->index);
	c->index = index;
	c->cap = icap;
}

/* Entry capacity for `want` entries, and its index; NULL on failure. */
static uint32_t *eng_index_new(size_t *want, size_t used, size_t *icap)
{
	if (*want < used)
		*want = used;
	if (*want < 8)
		*want = 8;
	if (*want >= UINT32_MAX)
		return NULL;
	*icap = eng_index_cap(*want);
	return calloc(*icap, sizeof(uint32_t));
}

/*
 * Resizes the entry array to `want` entries (at least the ones in use),
 * without holes, and rebuilds the index for that many.  On failure
 * nothing has changed.
 */
static int eng_coll_rebuild(struct engine *e, struct eng_coll *c, size_t want)
{
	struct eng_ent *ents;
	uint32_t *index;
	size_t icap;

	index = eng_index_new(&want, c->used, &icap);
	if (!index)
		return -ENOMEM;
	if (want > c->ents_cap) {
		ents = realloc(c->ents, want * sizeof(*ents));
		if (!ents) {
			free(index);
			return -ENOMEM;
		}
		e->heap += (want - c->ents_cap) * sizeof(*ents);
		c->ents = ents;
		c->ents_cap = want;
	}
	eng_coll_squeeze(e, c, index, icap, want);
	return 0;
}

int eng_coll_reserve(struct engine *e, struct eng_coll *c, size_t n)
{
	size_t want = c->used + n;

	if (c->nents + n <= c->ents_cap)
		return 0; /* the index is sized for ents_cap */
	if (want > c->ents_cap - c->ents_cap / 4) {
		/* few holes to reclaim: grow by half (bulk loads: exactly) */
		if (want < c->ents_cap + c->ents_cap / 2)
			want = c->ents_cap + c->ents_cap / 2;
	} else {
		want = c->ents_cap;
	}
	return eng_coll_rebuild(e, c, want);
}

/* Appends an entry (room reserved) and indexes it. */
static struct eng_ent *eng_ent_append(struct eng_coll *c, uint32_t h,
				      const char *key)
{
	struct eng_ent *s = &c->ents[c->nents];

	memset(s, 0, sizeof(*s));
	s->key = key;
	s->hash = h;
	eng_index_add(c->index, c->cap, h, c->nents);
	c->nents++;
	c->used++;
	return s;
}

/* Undoes eng_ent_append of the last entry, which the caller cannot fill. */
static void eng_ent_unappend(struct eng_coll *c, struct eng_ent *s)
{
	size_t mask = c->cap - 1, i, j;

	i = eng_index_of(c, s->hash, c->nents - 1);
	c->index[i] = 0;
	/* backward-shift deletion keeps every probe chain intact */
	for (j = (i + 1) & mask; c->index[j]; j = (j + 1) & mask) {
		size_t home = c->ents[c->index[j] - 1].hash & mask;

		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			c->index[i] = c->index[j];
			c->index[j] = 0;
			i = j;
		}
	}
	s->key = NULL;
	c->nents--;
	c->used--;
}

/* Moves an entry to the end (room reserved), leaving a hole. */
static struct eng_ent *eng_ent_move_last(struct eng_coll *c, struct eng_ent *s)
{
	size_t pos = (size_t)(s - c->ents);
	struct eng_ent *d = &c->ents[c->nents];

	if (pos + 1 == c->nents)
		return s;
	c->index[eng_index_of(c, s->hash, pos)] = (uint32_t)(c->nents + 1);
	*d = *s;
	s->key = NULL;
	s->own = 0;
	c->nents++;
	return d;
}

/* Notes the order of a live entry just placed last. */
static void eng_order_note(struct engine *e, struct eng_coll *c,
			   const struct eng_ent *s)
{
	if (eng_cstamp_cmp(e, &s->created, &c->cmax) > 0)
		c->cmax = s->created;
	else
		c->unsorted = true;
}

/* Live entries by creation stamp, tombstones after them. */
static int eng_ent_order_cmp(const void *a, const void *b, void *arg)
{
	const struct eng_ent *x = a, *y = b;
	bool xl = x->type != ENGINE_NONE, yl = y->type != ENGINE_NONE;

	if (xl != yl)
		return xl ? -1 : 1;
	if (!xl)
		return 0;
	return eng_cstamp_cmp(arg, &x->created, &y->created);
}

/* Sorts a collection's entries into creation order; cannot fail. */
static void eng_coll_sort(struct engine *e, struct eng_coll *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->nents; i++) {
		if (c->ents[i].key)
			c->ents[n++] = c->ents[i];
	}
	c->nents = n;
	qsort_r(c->ents, n, sizeof(*c->ents), eng_ent_order_cmp, e);
	memset(c->index, 0, c->cap * sizeof(*c->index));
	memset(&c->cmax, 0, sizeof(c->cmax));
	for (i = 0; i < n; i++) {
		eng_index_add(c->index, c->cap, c->ents[i].hash, i);
		if (c->ents[i].type != ENGINE_NONE)
			c->cmax = c->ents[i].created;
	}
	c->unsorted = false;
}

/* Collections by their place (never placed first), then by name. */
static int eng_coll_order_cmp(const void *a, const void *b, void *arg)
{
	const struct eng_coll *const *x = a, *const *y = b;
	int c = eng_cstamp_cmp(arg, &(*x)->first, &(*y)->first);

	return c ? c : strcmp((*x)->name, (*y)->name);
}

void eng_settle(struct engine *e)
{
	size_t i;

	for (i = 0; i < e->ncolls; i++) {
		if (e->colls[i]->unsorted)
			eng_coll_sort(e, e->colls[i]);
	}
	if (e->corder_dirty) {
		qsort_r(e->corder, e->ncolls, sizeof(*e->corder),
			eng_coll_order_cmp, e);
		e->corder_dirty = false;
	}
}

/* --- owned key/value blocks ----------------------------------------------- */

static size_t eng_own_size(const struct eng_ent *s)
{
	size_t n = strlen(s->key) + 1;

	if (s->val)
		n += (size_t)s->len + 1;
	return n;
}

static void eng_own_free(struct engine *e, struct eng_ent *s)
{
	if (s->own & ENG_OWN) {
		e->heap -= eng_own_size(s);
		/* a ref may still read it: then its last release frees it */
		if (!eng_pin_orphan(e, s->key))
			free((void *)s->key);
	}
	s->own = 0;
}

/* Copies key (and value) into one block: key NUL value NUL. */
static char *eng_own_alloc(struct engine *e, const char *key, const void *val,
			   size_t len, const char **valp)
{
	size_t kl = strlen(key) + 1;
	char *p = malloc(kl + (val ? len + 1 : 0));

	if (!p)
		return NULL;
	memcpy(p, key, kl);
	if (val) {
		if (len)
			memcpy(p + kl, val, len);
		p[kl + len] = '\0';
		*valp = p + kl;
	}
	e->heap += kl + (val ? len + 1 : 0);
	return p;
}

/* --- vector rows ---------------------------------------------------------- */

static struct eng_vblock *eng_vblock_of(const struct eng_coll *c, size_t row)
{
	size_t i;

	for (i = c->nvb; i-- > 0;) {
		if (row >= c->vb[i].start)
			return &c->vb[i];
	}
	return NULL;
}

const float *eng_vec_row(const struct eng_coll *c, size_t row)
{
	const struct eng_vblock *b = eng_vblock_of(c, row);

	return b->data + (row - b->start) * c->dim;
}

int eng_value_read(const struct engine *e, const struct eng_coll *c,
		   const struct eng_ent *s, const void **data, size_t *len)
{
	const uint8_t *hdr;

	if (s->type == ENGINE_VEC) {
		*len = (size_t)c->dim * sizeof(float);
		*data = eng_vec_row(c, s->len);
	} else {
		*len = s->len;
		*data = s->val;
	}
	if (!(s->own & ENG_CKV))
		return 0;
	/* the keys entry of the checkpoint the value comes from */
	hdr = (const uint8_t *)s->key - ENG_KEYS_ENT;
	if (eng_value_ok(e, *data, *len, s->type == ENGINE_VEC,
			 eng_le64(hdr + ENG_KEYS_SUM)))
		return 0;
	return eng_fail(-EIO,
			"%s/%s: the value in %s fails its checksum (damaged "
			"on disk; engine_fsck lists every damaged value)",
			c->name, s->key, eng_map_name(e, *data));
}

static void eng_vec_reset(struct engine *e, struct eng_coll *c)
{
	size_t i;

	for (i = 0; i < c->nvb; i++) {
		struct eng_vblock *b = &c->vb[i];

		if (b->owned) {
			free(b->data);
			e->heap -= b->cap * c->dim * sizeof(float);
		} else {
			/* a vec object holds nothing else: release it */
			eng_map_drop(e, b->data);
		}
		free(b->keys);
		e->heap -= b->cap * sizeof(char *);
	}
	free(c->vb);
	free(c->free_rows);
	e->heap -= c->free_cap * sizeof(uint32_t);
	c->vb = NULL;
	c->nvb = 0;
	c->free_rows = NULL;
	c->nfree = c->free_cap = 0;
	c->vec_live = 0;
	c->dim = 0;
}

static int eng_vblock_push(struct engine *e, struct eng_coll *c, size_t cap,
			   float *data, bool owned)
{
	struct eng_vblock *vb, *b;
	size_t start = 0;

	if (c->nvb) {
		b = &c->vb[c->nvb - 1];
		start = b->start + b->cap;
	}
	if (start + cap > UINT32_MAX)
		return -ENOMEM;
	vb = realloc(c->vb, (c->nvb + 1) * sizeof(*vb));
	if (!vb)
		return -ENOMEM;
	c->vb = vb;
	b = &vb[c->nvb];
	memset(b, 0, sizeof(*b));
	b->keys = calloc(cap ? cap : 1, sizeof(char *));
	if (!b->keys)
		return -ENOMEM;
	if (owned && !data) {
		data = malloc(cap * c->dim * sizeof(float));
		if (!data) {
			free(b->keys);
			return -ENOMEM;
		}
		e->heap += cap * c->dim * sizeof(float);
	}
	e->heap += cap * sizeof(char *);
	b->data = data;
	b->cap = cap;
	b->start = start;
	b->owned = owned;
	b->n = owned ? 0 : cap;
	b->verified = 1;
	c->nvb++;
	return 0;
}

int eng_vec_install(struct engine *e, struct eng_coll *c, const float *data,
		    size_t rows, uint32_t dim, const uint8_t *obj,
		    size_t obj_len, uint64_t sum)
{
	struct eng_vblock *b;
	int rc;

	if (c->nvb)
		return -EINVAL;
	c->dim = dim;
	rc = eng_vblock_push(e, c, rows, (float *)data, false);
	if (rc)
		return rc;
	b = &c->vb[0];
	b->verified = 0;
	b->obj = obj;
	b->obj_len = obj_len;
	b->obj_xxh3 = sum;
	return 0;
}

int eng_vec_compact(struct engine *e, struct eng_coll *c, const uint8_t *buf,
		    size_t len)
{
	size_t rows = (size_t)eng_le64(buf + 16),
	       off = (size_t)eng_le64(buf + 24), i, n = 0;
	const char **keys = calloc(rows ? rows : 1, sizeof(*keys));
	struct eng_vblock *vb = calloc(1, sizeof(*vb));

	if (!keys || !vb || rows != c->vec_live ||
	    off + rows * c->dim * sizeof(float) > len) {
		free(keys);
		free(vb);
		return -ENOMEM;
	}
	/* the row order eng_vec_build wrote; keys stay where they are */
	for (i = 0; i < c->nents; i++) {
		struct eng_ent *s = &c->ents[i];

		if (!s->key || s->type != ENGINE_VEC)
			continue;
		s->len = (uint32_t)n;
		keys[n++] = s->key;
	}
	for (i = 0; i < c->nvb; i++) {
		struct eng_vblock *b = &c->vb[i];

		if (b->owned) {
			free(b->data);
			e->heap -= b->cap * c->dim * sizeof(float);
		} else {
			/* no reader runs: the caller holds the write lock */
			eng_map_drop(e, b->data);
		}
		free(b->keys);
		e->heap -= b->cap * sizeof(char *);
	}
	free(c->vb);
	free(c->free_rows);
	e->heap -= c->free_cap * sizeof(uint32_t);
	c->free_rows = NULL;
	c->nfree = c->free_cap = 0;
	vb->data = (float *)(void *)(buf + off);
	vb->keys = keys;
	vb->n = vb->cap = rows;
	/* built from values checked as they were copied (eng_keys_build) */
	vb->verified = 1;
	e->heap += rows * sizeof(char *);
	c->vb = vb;
	c->nvb = 1;
	return 0;
}

/* Returns a free global row in an owned block, or -ENOMEM. */
static int eng_row_alloc(struct engine *e, struct eng_coll *c, size_t *row)
{
	struct eng_vblock *b = c->nvb ? &c->vb[c->nvb - 1] : NULL;
	int rc;

	if (c->nfree) {
		*row = c->free_rows[--c->nfree];
		return 0;
	}
	if (b && b->owned && b->n == b->cap && b->cap < ENG_VBLOCK_MAX_ROWS) {
		size_t cap = b->cap * 2;
		float *d = realloc(b->data, cap * c->dim * sizeof(float));
		const char **k;

		if (!d)
			return -ENOMEM;
		b->data = d;
		k = realloc(b->keys, cap * sizeof(char *));
		if (!k)
			return -ENOMEM;
		b->keys = k;
		e->heap += (cap - b->cap) *
			   (c->dim * sizeof(float) + sizeof(char *));
		b->cap = cap;
	}
	if (!b || !b->owned || b->n == b->cap) {
		rc = eng_vblock_push(e, c, 64, NULL, true);
		if (rc)
			return rc;
		b = &c->vb[c->nvb - 1];
	}
	*row = b->start + b->n++;
	return 0;
}

/* Marks a row dead; rows of owned blocks can be reused. */
static void eng_row_free(struct engine *e, struct eng_coll *c, size_t row)
{
	struct eng_vblock *b = eng_vblock_of(c, row);

	b->keys[row - b->start] = NULL;
	if (!b->owned)
		return;
	if (c->nfree == c->free_cap) {
		size_t cap = c->free_cap ? c->free_cap * 2 : 64;
		uint32_t *f = realloc(c->free_rows, cap * sizeof(*f));

		if (!f)
			return; /* the row just stays dead */
		e->heap += (cap - c->free_cap) * sizeof(*f);
		c->free_rows = f;
		c->free_cap = cap;
	}
	c->free_rows[c->nfree++] = (uint32_t)row;
}

/* Drops the value an entry holds (row or bytes), keeping its key. */
static void eng_ent_clear(struct engine *e, struct eng_coll *c,
			  struct eng_ent *s)
{
	if (s->type == ENGINE_VEC) {
		eng_row_free(e, c, s->len);
		if (--c->vec_live == 0)
			eng_vec_reset(e, c);
	}
	if (s->type != ENGINE_NONE)
		c->live--;
	if (s->val && (s->own & ENG_OWN)) {
		/* shrink to the key alone; on failure keep the whole block */
		const char *nk = eng_own_alloc(e, s->key, NULL, 0, NULL);

		if (nk) {
			eng_own_free(e, s);
			s->key = nk;
			s->own = ENG_OWN;
		}
	}
	s->val = NULL;
	s->len = 0;
	s->type = ENGINE_NONE;
	s->own &= ENG_OWN;
}

static void eng_observe(struct engine *e, unsigned flags, const char *coll,
			const struct eng_ent *s, const struct eng_coll *c)
{
	unsigned of = (flags & ENG_OBS_CKPT ? ENGINE_OBS_CHECKPOINT : 0) |
		      (flags & ENG_OBS_REMOTE ? ENGINE_OBS_REMOTE : 0);

	if (!(flags & ENG_OBSERVE) || !e->obs)
		return;
	if (s->type == ENGINE_VEC)
		e->obs(e->obs_arg, coll, s->key, ENGINE_VEC,
		       eng_vec_row(c, s->len), (size_t)c->dim * sizeof(float),
		       of);
	else
		e->obs(e->obs_arg, coll, s->key, (enum engine_type)s->type,
		       s->val, s->len, of);
}

/* True if a record stamped (hlc, w) is older than what the key holds. */
static bool eng_stale(const struct engine *e, const struct eng_coll *c,
		      const struct eng_ent *s, uint64_t hlc, uint32_t w)
{
	if (c->drop_hlc &&
	    eng_stamp_cmp(e, hlc, w, c->drop_hlc, c->drop_writer) < 0)
		return true;
	return s && eng_stamp_cmp(e, hlc, w, s->hlc, s->writer) < 0;
}

/* Frees a key(/value) block built by eng_own_alloc that was not used. */
static void eng_own_discard(struct engine *e, const char *key, const char *val,
			    size_t len)
{
	struct eng_ent tmp = {
		.key = key, .val = val, .len = (uint32_t)len, .own = ENG_OWN
	};

	eng_own_free(e, &tmp);
}

int eng_apply_put(struct engine *e, struct eng_coll *c, const char *key,
		  enum engine_type type, const void *val, size_t len,
		  uint64_t hlc, uint32_t w, const struct eng_cstamp *cs,
		  unsigned flags, size_t row)
{
	uint32_t h = eng_hash(key);
	uint32_t dim = (uint32_t)(len / sizeof(float));
	const char *nkey, *nval = NULL;
	bool fresh = false, same_vec, moved;
	struct eng_ent *s;
	uint8_t nown, old;
	size_t nrow = 0;
	int rc;

	/* room first: entry pointers stay valid from here on */
	if (eng_coll_reserve(e, c, 1))
		return -ENOMEM;
	s = eng_ent_lookup(c, key, h);
	if (eng_stale(e, c, s, hlc, w))
		goto out_skip;
	same_vec = s && s->type == ENGINE_VEC;
	if (type == ENGINE_VEC && c->vec_live && dim != c->dim) {
		if (!same_vec || c->vec_live != 1) {
			e->conflicts++;
			goto out_skip;
		}
		/* the collection's only vector changes dim: start afresh */
		eng_ent_clear(e, c, s);
		same_vec = false;
	}
	if (!s) {
		/* key is a placeholder until the real one is set below */
		s = eng_ent_append(c, h, key);
		fresh = true;
	}

	/*
	 * Build the new key/value and row first: failure changes nothing.
	 * A key kept for a new vector loses ENG_CKV (its entry describes the
	 * old value); a checkpoint's value comes with its entry's key.
	 */
	nkey = s->key;
	nown = s->own & ENG_OWN;
	if (type != ENGINE_VEC || fresh || (flags & ENG_STABLE) ||
	    ((s->own & ENG_OWN) && s->val)) {
		if (flags & ENG_STABLE) {
			nkey = key;
			nval = type == ENGINE_VEC ? NULL : val;
			nown = ENG_CKV;
		} else {
			nkey = eng_own_alloc(e, key,
					     type == ENGINE_VEC ? NULL : val,
					     len, &nval);
			nown = ENG_OWN;
			if (!nkey)
				goto out_unappend;
		}
	}
	if (type == ENGINE_VEC) {
		if (flags & ENG_ADOPT) {
			nrow = row;
		} else if (same_vec && eng_vblock_of(c, s->len)->owned) {
			nrow = s->len; /* overwrite in place */
		} else {
			if (c->vec_live == 0) {
				/* only dead rows left, maybe of another dim */
				if (c->nvb)
					eng_vec_reset(e, c);
				c->dim = dim;
			}
			rc = eng_row_alloc(e, c, &nrow);
			if (rc)
				goto out_discard;
		}
	}

	/* Release the old value. */
	old = s->type;
	if (old == ENGINE_VEC && (type != ENGINE_VEC || nrow != s->len))
		eng_row_free(e, c, s->len);
	if (old == ENGINE_VEC && type != ENGINE_VEC && --c->vec_live == 0)
		eng_vec_reset(e, c);
	if (old == ENGINE_NONE)
		c->live++;
	if (type == ENGINE_VEC && old != ENGINE_VEC) {
		if (c->vec_live++ == 0)
			c->dim = dim;
	}
	if (nkey != s->key && !fresh)
		eng_own_free(e, s);

	/* A new key, or one that now has another birth, moves to its place. */
	moved = !fresh &&
		(old == ENGINE_NONE || eng_cstamp_cmp(e, &s->created, cs) != 0);
	s->key = nkey;
	s->own = nown;
	s->val = nval;
	s->len = (uint32_t)(type == ENGINE_VEC ? nrow : len);
	s->type = (uint8_t)type;
	s->hlc = hlc;
	s->writer = w;
	s->created = *cs;
	if (moved)
		s = eng_ent_move_last(c, s);
	if (fresh || moved)
		eng_order_note(e, c, s);
	if (type == ENGINE_VEC) {
		struct eng_vblock *b = eng_vblock_of(c, nrow);

		if (!(flags & ENG_ADOPT))
			memcpy(b->data + (nrow - b->start) * c->dim, val, len);
		b->keys[nrow - b->start] = nkey;
	}
	eng_observe(e, flags, c->name, s, c);
	return 1;
out_discard:
	if (nkey != s->key && nown == ENG_OWN)
		eng_own_discard(e, nkey, nval, len);
out_unappend:
	if (fresh)
		eng_ent_unappend(c, s);
	return -ENOMEM;
out_skip:
	if (flags & ENG_ADOPT) {
		struct eng_vblock *b = eng_vblock_of(c, row);

		b->keys[row - b->start] = NULL;
	}
	return 0;
}

int eng_apply_del(struct engine *e, struct eng_coll *c, const char *key,
		  uint64_t hlc, uint32_t w, unsigned flags)
{
	uint32_t h = eng_hash(key);
	struct eng_ent *s;
	bool was_live;

	if (eng_coll_reserve(e, c, 1))
		return -ENOMEM;
	s = eng_ent_lookup(c, key, h);
	if (eng_stale(e, c, s, hlc, w))
		return 0;
	if (!s) {
		/* a tombstone, so that an older put replayed later loses */
		const char *k = flags & ENG_STABLE
					? key
					: eng_own_alloc(e, key, NULL, 0, NULL);

		if (!k)
			return -ENOMEM;
		s = eng_ent_append(c, h, k);
		s->own = k == key ? 0 : ENG_OWN;
		s->type = ENGINE_NONE;
	}
	was_live = s->type != ENGINE_NONE;
	eng_ent_clear(e, c, s);
	s->hlc = hlc;
	s->writer = w;
	if (was_live)
		eng_observe(e, flags, c->name, s, c);
	return was_live;
}

/*
 * Rebuilds the table keeping only entries for which keep() holds, in
 * order; removed live entries are reported as deletes.  If the new index
 * cannot be allocated, removed entries stay as tombstones instead (same
 * meaning).
 */
static void eng_coll_filter(struct engine *e, struct eng_coll *c,
			    bool (*keep)(const struct engine *,
					 const struct eng_ent *, uint64_t,
					 uint32_t),
			    uint64_t hlc, uint32_t w, unsigned flags)
{
	size_t i, n = 0, want, icap;
	uint32_t *index;

	for (i = 0; i < c->nents; i++) {
		struct eng_ent *s = &c->ents[i];

		if (!s->key || keep(e, s, hlc, w))
			continue;
		if (s->type != ENGINE_NONE) {
			eng_ent_clear(e, c, s);
			eng_observe(e, flags, c->name, s, c);
		}
	}
	for (i = 0; i < c->nents; i++)
		n += c->ents[i].key && keep(e, &c->ents[i], hlc, w);
	if (n == c->used)
		return;
	want = n < c->ents_cap / 2 ? n : c->ents_cap;
	index = eng_index_new(&want, n, &icap);
	if (!index)
		return; /* what should go stays as tombstones */
	for (i = 0; i < c->nents; i++) {
		struct eng_ent *s = &c->ents[i];

		if (s->key && !keep(e, s, hlc, w)) {
			eng_own_free(e, s);
			s->key = NULL;
			c->used--;
		}
	}
	eng_coll_squeeze(e, c, index, icap, want);
}

static bool eng_keep_after_drop(const struct engine *e, const struct eng_ent *s,
				uint64_t hlc, uint32_t w)
{
	return eng_stamp_cmp(e, s->hlc, s->writer, hlc, w) > 0;
}

int eng_apply_drop(struct engine *e, struct eng_coll *c, uint64_t hlc,
		   uint32_t w, unsigned flags)
{
	size_t before = c->live;

	if (c->drop_hlc &&
	    eng_stamp_cmp(e, hlc, w, c->drop_hlc, c->drop_writer) < 0)
		return 0;
	eng_coll_filter(e, c, eng_keep_after_drop, hlc, w, flags);
	c->drop_hlc = hlc;
	c->drop_writer = w;
	return before != c->live;
}

static bool eng_keep_unexpired(const struct engine *e, const struct eng_ent *s,
			       uint64_t hlc, uint32_t w)
{
	return s->type != ENGINE_NONE || s->hlc >= hlc;
}

void eng_purge_tombs(struct engine *e, uint64_t hlc)
{
	size_t i;

	for (i = 0; i < e->ncolls; i++) {
		struct eng_coll *c = e->colls[i];

		if (c->used > c->live)
			eng_coll_filter(e, c, eng_keep_unexpired, hlc, 0, 0);
	}
}

void eng_observe_all(struct engine *e)
{
	size_t i, j;

	if (!e->obs)
		return;
	for (i = 0; i < e->ncolls; i++) {
		struct eng_coll *c = e->corder[i];

		for (j = 0; j < c->nents; j++) {
			struct eng_ent *s = &c->ents[j];

			if (s->key && s->type != ENGINE_NONE)
				eng_observe(e, ENG_OBSERVE | ENG_OBS_CKPT,
					    c->name, s, c);
		}
	}
}

void eng_colls_free(struct engine *e)
{
	size_t i, j;

	for (i = 0; i < e->ncolls; i++) {
		struct eng_coll *c = e->colls[i];

		for (j = 0; j < c->nents; j++) {
			if (c->ents[j].key)
				eng_own_free(e, &c->ents[j]);
		}
		eng_vec_reset(e, c);
		free(c->ents);
		free(c->index);
		free(c->name);
		free(c);
	}
	free(e->colls);
	free(e->corder);
	e->colls = NULL;
	e->corder = NULL;
	e->ncolls = e->colls_cap = 0;
}
