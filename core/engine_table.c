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
	e->ncolls++;
	return c;
}

static uint64_t eng_hash(const char *key)
{
	return XXH3_64bits(key, strlen(key));
}

static struct eng_ent *eng_ent_lookup(const struct eng_coll *c, const char *key,
				      uint32_t h)
{
	size_t mask = c->cap - 1, i;

	if (!c->cap)
		return NULL;
	for (i = h & mask;; i = (i + 1) & mask) {
		struct eng_ent *s = &c->slots[i];

		if (!s->key)
			return NULL;
		if (s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
}

struct eng_ent *eng_ent_find(const struct eng_coll *c, const char *key)
{
	if (!c || !c->cap)
		return NULL;
	return eng_ent_lookup(c, key, (uint32_t)eng_hash(key));
}

static void eng_slots_insert(struct eng_ent *slots, size_t cap,
			     const struct eng_ent *ent)
{
	size_t mask = cap - 1, i;

	for (i = ent->hash & mask; slots[i].key; i = (i + 1) & mask)
		;
	slots[i] = *ent;
}

/* Resizes the table to hold `want` entries under a 3/4 load. */
static int eng_coll_rehash(struct engine *e, struct eng_coll *c, size_t want)
{
	size_t cap = 16, i;
	struct eng_ent *ns;

	while (cap / 4 * 3 < want)
		cap *= 2;
	ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (i = 0; i < c->cap; i++) {
		if (c->slots[i].key)
			eng_slots_insert(ns, cap, &c->slots[i]);
	}
	e->heap -= c->cap * sizeof(*ns);
	e->heap += cap * sizeof(*ns);
	free(c->slots);
	c->slots = ns;
	c->cap = cap;
	return 0;
}

int eng_coll_reserve(struct engine *e, struct eng_coll *c, size_t n)
{
	if (c->used + n <= c->cap / 4 * 3)
		return 0;
	return eng_coll_rehash(e, c, c->used + n);
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

static void eng_vec_reset(struct engine *e, struct eng_coll *c)
{
	size_t i;

	for (i = 0; i < c->nvb; i++) {
		struct eng_vblock *b = &c->vb[i];

		if (b->owned) {
			free(b->data);
			e->heap -= b->cap * c->dim * sizeof(float);
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
	c->nvb++;
	return 0;
}

int eng_vec_install(struct engine *e, struct eng_coll *c, const float *data,
		    size_t rows, uint32_t dim)
{
	if (c->nvb)
		return -EINVAL;
	c->dim = dim;
	return eng_vblock_push(e, c, rows, (float *)data, false);
}

/*
 * Before a mapped vector block is released, tombstones (deleted vectors)
 * may still use key strings inside it: give them their own copies.
 * Returns false if that failed (the block must then be kept).
 */
static bool eng_keys_unpin(struct engine *e, struct eng_coll *c,
			   const struct eng_map *m)
{
	size_t i;

	for (i = 0; i < c->cap; i++) {
		struct eng_ent *s = &c->slots[i];
		const uint8_t *k = (const uint8_t *)s->key;
		const char *copy;

		if (!k || (s->own & ENG_OWN) || k < m->data ||
		    k >= m->data + m->len)
			continue;
		copy = eng_own_alloc(e, s->key, s->val, s->len, &s->val);
		if (!copy)
			return false;
		s->key = copy;
		s->own = ENG_OWN;
	}
	return true;
}

int eng_vec_compact(struct engine *e, struct eng_coll *c, const uint8_t *buf,
		    size_t len)
{
	size_t rows = (size_t)eng_le64(buf + 16),
	       off = (size_t)eng_le64(buf + 24);
	size_t kpos = off + rows * c->dim * sizeof(float), i, r, n = 0;
	const char **keys = calloc(rows ? rows : 1, sizeof(*keys));
	struct eng_vblock *vb = calloc(1, sizeof(*vb));

	if (!keys || !vb || rows != c->vec_live || kpos > len) {
		free(keys);
		free(vb);
		return -ENOMEM;
	}
	/* the row order eng_vec_build wrote; keys now live in buf */
	for (i = 0; i < c->nvb; i++) {
		struct eng_vblock *b = &c->vb[i];

		for (r = 0; r < b->n; r++) {
			const char *nk = (const char *)buf + kpos + ENG_VEC_ROW;
			struct eng_ent *s;

			if (!b->keys[r])
				continue;
			s = eng_ent_find(c, b->keys[r]);
			kpos = ENG_PAD8(kpos + ENG_VEC_ROW + strlen(nk) + 1);
			eng_own_free(e, s);
			s->key = nk;
			s->len = (uint32_t)n;
			keys[n++] = nk;
		}
	}
	for (i = 0; i < c->nvb; i++) {
		struct eng_vblock *b = &c->vb[i];
		const struct eng_map *m = NULL;
		size_t j;

		if (b->owned) {
			free(b->data);
			e->heap -= b->cap * c->dim * sizeof(float);
		}
		for (j = 0; !b->owned && j < e->nmaps; j++) {
			const uint8_t *d = (const uint8_t *)b->data;

			if (d >= e->maps[j].data &&
			    d < e->maps[j].data + e->maps[j].len)
				m = &e->maps[j];
		}
		if (m && eng_keys_unpin(e, c, m))
			eng_map_drop(e, b->data);
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
}

static void eng_observe(struct engine *e, unsigned flags, const char *coll,
			const struct eng_ent *s, const struct eng_coll *c)
{
	if (!(flags & ENG_OBSERVE) || !e->obs)
		return;
	if (s->type == ENGINE_VEC)
		e->obs(e->obs_arg, coll, s->key, ENGINE_VEC,
		       eng_vec_row(c, s->len), (size_t)c->dim * sizeof(float));
	else
		e->obs(e->obs_arg, coll, s->key, (enum engine_type)s->type,
		       s->val, s->len);
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

/* Inserts an empty entry for a key known to be absent (hash h). */
static struct eng_ent *eng_ent_slot(struct engine *e, struct eng_coll *c,
				    const char *key, uint32_t h, bool *fresh)
{
	struct eng_ent *s;
	size_t mask, i;

	*fresh = false;
	if (eng_coll_reserve(e, c, 1))
		return NULL;
	mask = c->cap - 1;
	for (i = h & mask; c->slots[i].key; i = (i + 1) & mask)
		;
	s = &c->slots[i];
	memset(s, 0, sizeof(*s));
	s->hash = h;
	s->key = key; /* placeholder until the caller sets the real key */
	c->used++;
	*fresh = true;
	return s;
}

/* Undoes eng_ent_slot's insertion when the caller cannot fill it. */
static void eng_ent_unslot(struct eng_coll *c, struct eng_ent *s)
{
	size_t mask = c->cap - 1, i = (size_t)(s - c->slots), j;

	/* backward-shift deletion keeps every probe chain intact */
	s->key = NULL;
	c->used--;
	for (j = (i + 1) & mask; c->slots[j].key; j = (j + 1) & mask) {
		size_t home = c->slots[j].hash & mask;

		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			c->slots[i] = c->slots[j];
			c->slots[j].key = NULL;
			i = j;
		}
	}
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
		  uint64_t hlc, uint32_t w, unsigned flags, size_t row)
{
	uint32_t h = (uint32_t)eng_hash(key);
	struct eng_ent *s = eng_ent_lookup(c, key, h);
	uint32_t dim = (uint32_t)(len / sizeof(float));
	const char *nkey, *nval = NULL;
	bool fresh = false, same_vec;
	uint8_t nown, old;
	size_t nrow = 0;
	int rc;

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
		s = eng_ent_slot(e, c, key, h, &fresh);
		if (!s)
			return -ENOMEM;
	}

	/* Build the new key/value and row first: failure changes nothing. */
	nkey = s->key;
	nown = s->own;
	if (type != ENGINE_VEC || fresh || ((s->own & ENG_OWN) && s->val)) {
		if (flags & ENG_STABLE) {
			nkey = key;
			nval = type == ENGINE_VEC ? NULL : val;
			nown = 0;
		} else {
			nkey = eng_own_alloc(e, key,
					     type == ENGINE_VEC ? NULL : val,
					     len, &nval);
			nown = ENG_OWN;
			if (!nkey)
				goto out_unslot;
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

	s->key = nkey;
	s->own = nown;
	s->val = nval;
	s->len = (uint32_t)(type == ENGINE_VEC ? nrow : len);
	s->type = (uint8_t)type;
	s->hlc = hlc;
	s->writer = w;
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
out_unslot:
	if (fresh)
		eng_ent_unslot(c, s);
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
	uint32_t h = (uint32_t)eng_hash(key);
	struct eng_ent *s = eng_ent_lookup(c, key, h);
	bool fresh, was_live;

	if (eng_stale(e, c, s, hlc, w))
		return 0;
	if (!s) {
		/* a tombstone, so that an older put replayed later loses */
		const char *k = flags & ENG_STABLE
					? key
					: eng_own_alloc(e, key, NULL, 0, NULL);

		if (!k)
			return -ENOMEM;
		s = eng_ent_slot(e, c, key, h, &fresh);
		if (!s) {
			if (k != key)
				free((void *)k);
			return -ENOMEM;
		}
		s->key = k;
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
 * Rebuilds the table keeping only entries for which keep() holds; removed
 * live entries are reported as deletes.  If the new table cannot be
 * allocated, removed entries stay as tombstones instead (same meaning).
 */
static void eng_coll_filter(struct engine *e, struct eng_coll *c,
			    bool (*keep)(const struct engine *,
					 const struct eng_ent *, uint64_t,
					 uint32_t),
			    uint64_t hlc, uint32_t w, unsigned flags)
{
	size_t i, n = 0, cap = 16;
	struct eng_ent *ns;

	for (i = 0; i < c->cap; i++) {
		struct eng_ent *s = &c->slots[i];

		if (!s->key || keep(e, s, hlc, w))
			continue;
		if (s->type != ENGINE_NONE) {
			eng_ent_clear(e, c, s);
			eng_observe(e, flags, c->name, s, c);
		}
	}
	for (i = 0; i < c->cap; i++)
		n += c->slots[i].key && keep(e, &c->slots[i], hlc, w);
	while (cap / 4 * 3 < n)
		cap *= 2;
	ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return;
	for (i = 0; i < c->cap; i++) {
		struct eng_ent *s = &c->slots[i];

		if (!s->key)
			continue;
		if (keep(e, s, hlc, w))
			eng_slots_insert(ns, cap, s);
		else
			eng_own_free(e, s);
	}
	e->heap -= c->cap * sizeof(*ns);
	e->heap += cap * sizeof(*ns);
	free(c->slots);
	c->slots = ns;
	c->cap = cap;
	c->used = n;
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
		struct eng_coll *c = e->colls[i];

		for (j = 0; j < c->cap; j++) {
			struct eng_ent *s = &c->slots[j];

			if (s->key && s->type != ENGINE_NONE)
				eng_observe(e, ENG_OBSERVE, c->name, s, c);
		}
	}
}

void eng_colls_free(struct engine *e)
{
	size_t i, j;

	for (i = 0; i < e->ncolls; i++) {
		struct eng_coll *c = e->colls[i];

		for (j = 0; j < c->cap; j++) {
			if (c->slots[j].key)
				eng_own_free(e, &c->slots[j]);
		}
		eng_vec_reset(e, c);
		free(c->slots);
		free(c->name);
		free(c);
	}
	free(e->colls);
	e->colls = NULL;
	e->ncolls = e->colls_cap = 0;
}
