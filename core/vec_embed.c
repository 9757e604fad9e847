/* vec_embed.c - the built-in embedding: signed hashing of words and n-grams. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/vec.h"
#include "core/vec_int.h"

#define VEC_EMBED_WORD_CPS 64 /* longer runs are cut into words this long */
#define VEC_EMBED_GRAM_MIN 3
#define VEC_EMBED_GRAM_MAX 5

/*
 * Term frequencies keyed by feature hash: open addressing, linear probe.
 * A slot keeps its key and count side by side, so a probe touches one
 * cache line.
 */
struct vec_tf_slot {
	uint64_t key;
	uint32_t count; /* 0: empty slot */
};

struct vec_tf {
	struct vec_tf_slot *slots;
	size_t cap; /* power of two */
	size_t used;
};

static int vec_tf_init(struct vec_tf *t, size_t cap)
{
	t->slots = calloc(cap, sizeof(*t->slots));
	t->cap = cap;
	t->used = 0;
	return t->slots ? 0 : -ENOMEM;
}

static void vec_tf_fini(struct vec_tf *t)
{
	free(t->slots);
}

static void vec_tf_put(struct vec_tf *t, uint64_t h, uint32_t count)
{
	size_t mask = t->cap - 1, i = (size_t)h & mask;
	struct vec_tf_slot *s;

	while (t->slots[i].count && t->slots[i].key != h)
		i = (i + 1) & mask;
	s = &t->slots[i];
	if (!s->count) {
		s->key = h;
		t->used++;
	}
	/* saturate: beyond 2^32 occurrences ln(tf) barely moves */
	s->count =
		s->count > UINT32_MAX - count ? UINT32_MAX : s->count + count;
}

static int vec_tf_add(struct vec_tf *t, uint64_t h)
{
	if ((t->used + 1) * 2 > t->cap) {
		struct vec_tf bigger;
		size_t i;

		if (vec_tf_init(&bigger, t->cap * 2))
			return -ENOMEM;
		for (i = 0; i < t->cap; i++)
			if (t->slots[i].count)
				vec_tf_put(&bigger, t->slots[i].key,
					   t->slots[i].count);
		vec_tf_fini(t);
		*t = bigger;
	}
	vec_tf_put(t, h, 1);
	return 0;
}

/*
 * One word being assembled as "<word>": buf[0] is '<', the lowercased
 * UTF-8 of the word follows, off[j] is where symbol j starts (symbol 0 is
 * '<', symbol ncp + 1 is '>').
 */
struct vec_word {
	unsigned char buf[2 + 4 * VEC_EMBED_WORD_CPS];
	size_t off[VEC_EMBED_WORD_CPS + 3];
	size_t ncp;
	size_t len; /* bytes after buf[0] */
};

static int vec_word_flush(struct vec_word *w, struct vec_tf *tf)
{
	size_t nsym, n, s;

	if (w->ncp == 0)
		return 0;
	if (vec_tf_add(tf, XXH3_64bits_withSeed(w->buf + 1, w->len,
						VEC_EMBED_SEED_WORD)))
		return -ENOMEM;
	w->buf[0] = '<';
	w->buf[1 + w->len] = '>';
	w->off[0] = 0;
	w->off[w->ncp + 1] = 1 + w->len;
	w->off[w->ncp + 2] = 2 + w->len;
	nsym = w->ncp + 2;
	for (n = VEC_EMBED_GRAM_MIN; n <= VEC_EMBED_GRAM_MAX && n <= nsym; n++)
		for (s = 0; s + n <= nsym; s++)
			if (vec_tf_add(tf, XXH3_64bits_withSeed(
						   w->buf + w->off[s],
						   w->off[s + n] - w->off[s],
						   VEC_EMBED_SEED_GRAM)))
				return -ENOMEM;
	w->ncp = 0;
	w->len = 0;
	return 0;
}

static int vec_embed_count(const unsigned char *u, size_t len,
			   struct vec_tf *tf)
{
	struct vec_word w = { .ncp = 0 };
	size_t i = 0, step;
	uint32_t cp;

	while (i < len) {
		step = vec_utf8_next(u, len, i, &cp);
		i += step;
		if (!vec_cp_is_word(cp)) {
			if (vec_word_flush(&w, tf))
				return -ENOMEM;
			continue;
		}
		if (w.ncp == VEC_EMBED_WORD_CPS && vec_word_flush(&w, tf))
			return -ENOMEM;
		w.off[1 + w.ncp++] = 1 + w.len;
		w.len += vec_utf8_put(vec_cp_lower(cp), w.buf + 1 + w.len);
	}
	return vec_word_flush(&w, tf);
}

int vec_embed_hash(const char *text, size_t len, uint32_t dim, float *out)
{
	struct vec_tf tf;
	double *acc, ss = 0, norm;
	size_t i;
	int rc;

	if (dim == 0 || dim > VEC_EMBED_DIM_MAX || !out || (!text && len))
		return -EINVAL;
	rc = vec_tf_init(&tf, 1024);
	if (rc)
		return rc;
	acc = calloc(dim, sizeof(*acc));
	if (!acc) {
		rc = -ENOMEM;
		goto out_tf;
	}
	rc = vec_embed_count((const unsigned char *)text, len, &tf);
	if (rc)
		goto out_acc;

	/* slot order is a function of the input alone: deterministic sums */
	for (i = 0; i < tf.cap; i++) {
		uint64_t h = tf.slots[i].key;
		uint32_t c = tf.slots[i].count;
		double wgt;

		if (!c)
			continue;
		/* ln 1 is exactly 0: most features skip the call */
		wgt = c == 1 ? 1.0 : 1.0 + log((double)c);
		acc[h % dim] += (h >> 63) ? -wgt : wgt;
	}
	for (i = 0; i < dim; i++)
		ss += acc[i] * acc[i];
	if (ss == 0) {
		memset(out, 0, dim * sizeof(*out));
	} else {
		norm = sqrt(ss);
		for (i = 0; i < dim; i++)
			out[i] = (float)(acc[i] / norm);
	}
out_acc:
	free(acc);
out_tf:
	vec_tf_fini(&tf);
	return rc;
}
