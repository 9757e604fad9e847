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
#include <stdlib.h>
#include <string.h>

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
