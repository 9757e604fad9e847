/* engine_ref.c - values used in place: refs and the pins that keep them. */

/*
 * A ref points into memory the engine owns.  Checkpoint objects stay
 * mapped for the engine's life, so a value read from one needs nothing
 * more.  A value committed or replayed since open lives in its entry's
 * owned block (key, NUL, value, NUL), which the engine frees when the key
 * is overwritten, deleted or dropped: a ref to it pins the block, and the
 * engine, instead of freeing a pinned block, marks it orphaned; the last
 * release frees it.  Vectors are copied, since rows move (checkpoints
 * compact them) and change in place (an overwrite reuses the row); the
 * copy is a pin born orphaned.
 *
 * Pins are a short list (one per block that refs hold: the documents a
 * mount has open), searched linearly, under pin_mu.  Pinning happens
 * under the read lock and orphaning under the write lock, so a block
 * cannot be freed between finding its entry and pinning it; a release
 * takes pin_mu alone and never waits for a commit.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/engine_int.h"

/* The pin of block, or NULL; caller holds pin_mu. */
static struct eng_pin *eng_pin_find(const struct engine *e, const void *block)
{
	struct eng_pin *p;

	for (p = e->pins; p; p = p->next) {
		if (p->block == block)
			return p;
	}
	return NULL;
}

/* One more ref to `block` (orphan: a copy only the ref uses); pin_mu held. */
static struct eng_pin *eng_pin_add(struct engine *e, const void *block,
				   bool orphan)
{
	struct eng_pin *p = orphan ? NULL : eng_pin_find(e, block);

	if (p) {
		p->refs++;
		return p;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->block = block;
	p->refs = 1;
	p->orphan = orphan;
	p->next = e->pins;
	if (e->pins)
		e->pins->prev = p;
	e->pins = p;
	e->npins++;
	return p;
}

/* Unlinks and frees p, and its block if the engine let go of it. */
static void eng_pin_free(struct engine *e, struct eng_pin *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		e->pins = p->next;
	if (p->next)
		p->next->prev = p->prev;
	e->npins--;
	if (p->orphan)
		free((void *)p->block);
	free(p);
}

bool eng_pin_orphan(struct engine *e, const void *block)
{
	struct eng_pin *p;

	/* pins are added under the read lock: none can appear meanwhile */
	if (!e->npins)
		return false;
	pthread_mutex_lock(&e->pin_mu);
	p = eng_pin_find(e, block);
	if (p)
		p->orphan = true;
	pthread_mutex_unlock(&e->pin_mu);
	return p != NULL;
}

void eng_pins_free(struct engine *e)
{
	while (e->pins)
		eng_pin_free(e, e->pins);
}

/*
 * Pins what keeps `data` (the value of entry s) alive for a ref: nothing
 * for a checkpoint's value, the owned block, or a copy of a vector (then
 * *data becomes the copy).  Caller holds the read lock.
 */
static int eng_ref_hold(struct engine *e, const struct eng_ent *s,
			const void **data, size_t len, void **hold)
{
	struct eng_pin *p = NULL;
	void *copy = NULL;

	if (s->type != ENGINE_VEC && !(s->own & ENG_OWN))
		return 0; /* in a checkpoint object, mapped for good */
	if (s->type == ENGINE_VEC) {
		copy = malloc(len ? len : 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, *data, len);
	}
	pthread_mutex_lock(&e->pin_mu);
	p = eng_pin_add(e, copy ? copy : s->key, copy != NULL);
	pthread_mutex_unlock(&e->pin_mu);
	if (!p) {
		free(copy);
		return -ENOMEM;
	}
	if (copy)
		*data = copy;
	*hold = p;
	return 0;
}

int engine_get_ref(struct engine *e, const char *coll, const char *key,
		   struct engine_ref *ref)
{
	const struct eng_ent *s;
	const void *v;
	size_t n;
	int rc;

	if (!ref)
		return -EINVAL;
	memset(ref, 0, sizeof(*ref));
	if (!e)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	rc = eng_live_value(e, coll, key, &s, &v, &n);
	if (!rc)
		rc = eng_ref_hold(e, s, &v, n, &ref->hold);
	if (!rc) {
		ref->data = v;
		ref->len = n;
		ref->type = (enum engine_type)s->type;
	}
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

void engine_ref_release(struct engine *e, struct engine_ref *ref)
{
	struct eng_pin *p;

	if (!ref)
		return;
	p = ref->hold;
	if (p && e) {
		pthread_mutex_lock(&e->pin_mu);
		if (--p->refs == 0)
			eng_pin_free(e, p);
		pthread_mutex_unlock(&e->pin_mu);
	}
	memset(ref, 0, sizeof(*ref));
}

/* --- lazy refs: large checkpoint values checked chunk by chunk ------------ */

/*
 * A large value of a checkpoint (eng_nchunks > 0) that a lazy ref reads:
 * its chunk sums, checked against its keys entry when the state is made,
 * and one bit per chunk, set once the chunk matched its sum.  Values stay
 * mapped for the engine's life, so the state does too (a chunk is read
 * and checked once per engine, as a whole value was per ref before).  Two
 * readers may check one chunk at once: both hash it, both set the bit.
 */
struct eng_lazy {
	const uint8_t *val;
	size_t len;
	size_t n;	     /* chunks */
	const uint8_t *sums; /* n u64 xxh3, after the value's NUL */
	bool mapped;	     /* in a mapped values object: advise the kernel */
	_Atomic uint64_t *done;
	struct eng_lazy *next;
	char what[]; /* "coll/key", then NUL, the object's name, NUL */
};

void eng_lazies_free(struct engine *e)
{
	while (e->lazies) {
		struct eng_lazy *l = e->lazies;

		e->lazies = l->next;
		free(l->done);
		free(l);
	}
}

/*
 * The chunk state of entry s (a live chunked JSON/BLOB value of a
 * checkpoint) of collection c, made on first use: -EIO if its table of
 * sums or its NUL is damaged.  Caller holds the read lock.
 */
static int eng_lazy_get(struct engine *e, const struct eng_coll *c,
			const struct eng_ent *s, struct eng_lazy **out)
{
	const uint8_t *v = (const uint8_t *)s->val;
	const uint8_t *hdr = (const uint8_t *)s->key - ENG_KEYS_ENT;
	const char *obj = eng_map_name(e, v);
	size_t n = eng_nchunks(s->len), cl = strlen(c->name);
	size_t kl = strlen(s->key), ol = strlen(obj);
	struct eng_lazy *l;
	int rc = 0;

	pthread_mutex_lock(&e->lazy_mu);
	for (l = e->lazies; l; l = l->next) {
		if (l->val == v)
			break;
	}
	if (l)
		goto out;
	/* the table (and the NUL before it) is all that is read now */
	if (v[s->len] ||
	    eng_xxh3(v + s->len + 1, 8 * n) != eng_le64(hdr + ENG_KEYS_SUM)) {
		rc = eng_fail(-EIO,
			      "%s/%s: the value in %s fails its checksum "
			      "(its chunk sums are damaged on disk; "
			      "engine_fsck lists every damaged value)",
			      c->name, s->key, obj);
		goto out;
	}
	l = calloc(1, sizeof(*l) + cl + 1 + kl + 1 + ol + 1);
	if (l)
		l->done = calloc((n + 63) / 64, sizeof(*l->done));
	if (!l || !l->done) {
		free(l);
		l = NULL;
		rc = eng_fail(-ENOMEM, "out of memory");
		goto out;
	}
	l->val = v;
	l->len = s->len;
	l->n = n;
	l->sums = v + s->len + 1;
	l->mapped = eng_map_lazy(e, v, s->len);
	memcpy(l->what, c->name, cl);
	l->what[cl] = '/';
	memcpy(l->what + cl + 1, s->key, kl + 1);
	memcpy(l->what + cl + 1 + kl + 1, obj, ol + 1);
	if (l->mapped) {
		/*
		 * The reader goes on sequentially from here: the kernel
		 * reads ahead of the chunk being checked (growing windows,
		 * asynchronous), so the disk works while earlier chunks are
		 * served.  The advice stays for the engine's life, like the
		 * state; a value this large is read whole or in big runs.
		 */
		eng_advise_range(v, s->len, MADV_SEQUENTIAL);
	}
	l->next = e->lazies;
	e->lazies = l;
out:
	pthread_mutex_unlock(&e->lazy_mu);
	*out = l;
	return rc;
}

int engine_get_ref_lazy(struct engine *e, const char *coll, const char *key,
			struct engine_ref *ref)
{
	const struct eng_coll *c = NULL;
	const struct eng_ent *s;
	struct eng_lazy *l = NULL;
	int rc;

	if (!ref)
		return -EINVAL;
	memset(ref, 0, sizeof(*ref));
	if (!e)
		return -EINVAL;
	pthread_rwlock_rdlock(&e->lock);
	s = eng_live(e, coll, key, &c);
	if (s && (s->own & ENG_CKV) &&
	    (s->type == ENGINE_JSON || s->type == ENGINE_BLOB) &&
	    eng_nchunks(s->len)) {
		rc = eng_lazy_get(e, c, s, &l);
		if (!rc) {
			ref->data = s->val;
			ref->len = s->len;
			ref->type = (enum engine_type)s->type;
			ref->parts = l;
		}
		pthread_rwlock_unlock(&e->lock);
		return rc;
	}
	pthread_rwlock_unlock(&e->lock);
	return engine_get_ref(e, coll, key, ref);
}

int engine_ref_check(struct engine *e, const struct engine_ref *ref, size_t off,
		     size_t len)
{
	struct eng_lazy *l = ref ? ref->parts : NULL;
	size_t i, last;

	if (!l || !len || off >= l->len)
		return 0;
	if (len > l->len - off)
		len = l->len - off;
	last = (off + len - 1) / ENG_CHUNK;
	for (i = off / ENG_CHUNK; i <= last; i++) {
		uint64_t bit = (uint64_t)1 << (i % 64);
		size_t at = i * (size_t)ENG_CHUNK;
		size_t cl = l->len - at < ENG_CHUNK ? l->len - at : ENG_CHUNK;

		if (atomic_load_explicit(&l->done[i / 64],
					 memory_order_acquire) &
		    bit)
			continue;
		if (eng_xxh3(l->val + at, cl) != eng_le64(l->sums + 8 * i))
			return eng_fail(-EIO,
					"%s: the value in %s fails its "
					"checksum at bytes %zu-%zu (damaged "
					"on disk; engine_fsck lists every "
					"damaged value)",
					l->what, l->what + strlen(l->what) + 1,
					at, at + cl - 1);
		atomic_fetch_or_explicit(&l->done[i / 64], bit,
					 memory_order_release);
	}
	(void)e;
	return 0;
}
