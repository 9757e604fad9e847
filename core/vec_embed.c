/* vec_embed.c - the built-in embedding: signed hashing of words and n-grams. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* short inputs: the inlined hash skips a call and dispatch per feature */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/vec.h"
#include "core/vec_int.h"

#define VEC_EMBED_WORD_CPS 64 /* longer runs are cut into words this long */
#define VEC_EMBED_GRAM_MIN 3
#define VEC_EMBED_GRAM_MAX 5
/* counts below this weigh 1 + ln(count) from a table made once */
#define VEC_EMBED_LN_CACHE 256

/*
 * Term frequencies keyed by feature hash: open addressing, linear probe.
 * A slot keeps its key and count side by side, so a probe touches one
 * cache line.
 *
 * The order of the slots decides the order in which each bucket's weights
 * are summed, so it is part of the output: the table must start at 1024
 * slots, double when an add finds it half full (whether or not the key is
 * new), re-insert in slot order when it grows, and see new keys in the
 * order of their first occurrence in the text.
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

static int vec_tf_full(const struct vec_tf *t)
{
	return (t->used + 1) * 2 > t->cap;
}

static int vec_tf_grow(struct vec_tf *t)
{
	struct vec_tf bigger;
	size_t i, j, mask;

	if (vec_tf_init(&bigger, t->cap * 2))
		return -ENOMEM;
	/* as vec_tf_put of each, knowing that the keys are all different */
	mask = bigger.cap - 1;
	for (i = 0; i < t->cap; i++) {
		if (!t->slots[i].count)
			continue;
		for (j = (size_t)t->slots[i].key & mask; bigger.slots[j].count;
		     j = (j + 1) & mask)
			;
		bigger.slots[j] = t->slots[i];
	}
	bigger.used = t->used;
	vec_tf_fini(t);
	*t = bigger;
	return 0;
}

/* Adds `count` occurrences of h, as that many adds of one would. */
static int vec_tf_add(struct vec_tf *t, uint64_t h, uint32_t count)
{
	if (vec_tf_full(t) && vec_tf_grow(t))
		return -ENOMEM;
	vec_tf_put(t, h, count);
	return 0;
}

/*
 * The distinct words of a text, in the order of their first occurrence,
 * with how often each occurs.  A word's features are a function of its
 * bytes alone, so they are hashed once per distinct word and added with
 * the word's count: the tf table sees its new keys in the same order as
 * if every occurrence were added one by one, and so ends up the same.
 */
struct vec_went {
	uint64_t hash;	   /* xxh3 of the bytes with the word seed */
	uint32_t off, len; /* in the arena */
	uint32_t count;
};

struct vec_words {
	struct vec_went *v;
	size_t n, cap;
	uint32_t *index; /* entry + 1, 0 empty; power-of-two size */
	size_t icap;
	unsigned char *arena;
	size_t alen, acap;
	size_t occ;	 /* words seen, repeats included */
	size_t last_new; /* occurrence number of the last new word */
};

static void vec_words_fini(struct vec_words *w)
{
	free(w->v);
	free(w->index);
	free(w->arena);
}

static int vec_words_rehash(struct vec_words *w, size_t icap)
{
	uint32_t *index = calloc(icap, sizeof(*index));
	size_t i, j;

	if (!index)
		return -ENOMEM;
	for (i = 0; i < w->n; i++) {
		for (j = (size_t)w->v[i].hash & (icap - 1); index[j];
		     j = (j + 1) & (icap - 1))
			;
		index[j] = (uint32_t)i + 1;
	}
	free(w->index);
	w->index = index;
	w->icap = icap;
	return 0;
}

static void *vec_grow(void *p, size_t *cap, size_t need, size_t elem,
		      size_t first)
{
	size_t c = *cap ? *cap : first;

	while (c < need)
		c *= 2;
	if (c == *cap)
		return p;
	p = realloc(p, c * elem);
	if (p)
		*cap = c;
	return p;
}

/* Counts one occurrence of the word s[0..len) (lowercased UTF-8). */
static int vec_words_add(struct vec_words *w, const unsigned char *s,
			 size_t len)
{
	uint64_t h = XXH3_64bits_withSeed(s, len, VEC_EMBED_SEED_WORD);
	struct vec_went *e;
	size_t j;
	void *p;

	w->occ++;
	for (j = (size_t)h & (w->icap - 1); w->index[j];
	     j = (j + 1) & (w->icap - 1)) {
		e = &w->v[w->index[j] - 1];
		if (e->hash == h && e->len == len &&
		    memcmp(w->arena + e->off, s, len) == 0) {
			e->count++;
			return 0;
		}
	}
	if (!(p = vec_grow(w->v, &w->cap, w->n + 1, sizeof(*w->v), 64)))
		return -ENOMEM;
	w->v = p;
	if (!(p = vec_grow(w->arena, &w->acap, w->alen + len, 1, 1024)))
		return -ENOMEM;
	w->arena = p;
	e = &w->v[w->n];
	e->hash = h;
	e->off = (uint32_t)w->alen;
	e->len = (uint32_t)len;
	e->count = 1;
	memcpy(w->arena + w->alen, s, len);
	w->alen += len;
	w->index[j] = (uint32_t)++w->n;
	w->last_new = w->occ;
	if (w->n * 2 > w->icap)
		return vec_words_rehash(w, w->icap * 2);
	return 0;
}

static int vec_embed_words(const unsigned char *u, size_t len,
			   struct vec_words *w)
{
	unsigned char buf[4 * VEC_EMBED_WORD_CPS];
	size_t i = 0, n = 0, ncp = 0, step;
	uint32_t cp;

	while (i < len) {
		if (u[i] < 0x80) { /* ASCII: the common case, decoded here */
			cp = u[i];
			step = 1;
			if (cp >= 'A' && cp <= 'Z')
				cp += 32;
			else if (!((cp >= 'a' && cp <= 'z') ||
				   (cp >= '0' && cp <= '9')))
				cp = VEC_UTF8_BAD; /* not a word character */
		} else {
			step = vec_utf8_next(u, len, i, &cp);
			cp = vec_cp_is_word(cp) ? vec_cp_lower(cp)
						: VEC_UTF8_BAD;
		}
		i += step;
		if (cp == VEC_UTF8_BAD) {
			if (ncp && vec_words_add(w, buf, n))
				return -ENOMEM;
			n = ncp = 0;
			continue;
		}
		if (ncp == VEC_EMBED_WORD_CPS) {
			if (vec_words_add(w, buf, n))
				return -ENOMEM;
			n = ncp = 0;
		}
		if (cp < 0x80)
			buf[n++] = (unsigned char)cp;
		else
			n += vec_utf8_put(cp, buf + n);
		ncp++;
	}
	if (ncp && vec_words_add(w, buf, n))
		return -ENOMEM;
	return 0;
}

/* Adds the features of one distinct word: the word, then its n-grams. */
static int vec_embed_features(const struct vec_words *w,
			      const struct vec_went *e, struct vec_tf *tf)
{
	unsigned char buf[2 + 4 * VEC_EMBED_WORD_CPS];
	size_t off[VEC_EMBED_WORD_CPS + 3];
	uint64_t h[1 + 3 * (VEC_EMBED_WORD_CPS + 2)];
	size_t nsym = 1, n, s, k, nh = 0;

	h[nh++] = e->hash;
	/* "<word>": symbol j starts at off[j] */
	buf[0] = '<';
	memcpy(buf + 1, w->arena + e->off, e->len);
	buf[1 + e->len] = '>';
	off[0] = 0;
	for (k = 0; k < e->len; k++)
		if ((buf[1 + k] & 0xC0) != 0x80)
			off[nsym++] = 1 + k;
	off[nsym] = 1 + e->len;
	off[nsym + 1] = 2 + e->len;
	nsym++;
	for (n = VEC_EMBED_GRAM_MIN; n <= VEC_EMBED_GRAM_MAX && n <= nsym; n++)
		for (s = 0; s + n <= nsym; s++)
			h[nh++] = XXH3_64bits_withSeed(buf + off[s],
						       off[s + n] - off[s],
						       VEC_EMBED_SEED_GRAM);
	for (k = 0; k < nh; k++)
		__builtin_prefetch(&tf->slots[h[k] & (tf->cap - 1)]);
	for (k = 0; k < nh; k++)
		if (vec_tf_add(tf, h[k], e->count))
			return -ENOMEM;
	return 0;
}

static int vec_embed_count(const unsigned char *u, size_t len,
			   struct vec_tf *tf)
{
	struct vec_words w = { 0 };
	size_t i;
	int rc;

	rc = vec_words_rehash(&w, 256);
	if (!rc)
		rc = vec_embed_words(u, len, &w);
	for (i = 0; i < w.n && !rc; i++)
		rc = vec_embed_features(&w, &w.v[i], tf);
	/*
	 * Adding every occurrence would make one more add after the last new
	 * key whenever a word repeats after the last new word's first
	 * occurrence; that add grows a half-full table, so this does too.
	 */
	if (!rc && w.occ > w.last_new && vec_tf_full(tf))
		rc = vec_tf_grow(tf);
	vec_words_fini(&w);
	return rc;
}

/*
 * 1 + ln c for the counts most features have, the same doubles log()
 * gives (c 0 weighs 0: an empty slot adds nothing); filled once.
 */
static double vec_embed_wgt[VEC_EMBED_LN_CACHE];
static pthread_once_t vec_embed_wgt_once = PTHREAD_ONCE_INIT;

static void vec_embed_wgt_init(void)
{
	uint32_t c;

	vec_embed_wgt[1] = 1.0; /* ln 1 is exactly 0 */
	for (c = 2; c < VEC_EMBED_LN_CACHE; c++)
		vec_embed_wgt[c] = 1.0 + log((double)c);
}

int vec_embed_hash(const char *text, size_t len, uint32_t dim, float *out)
{
	struct vec_tf tf;
	double *acc, ss = 0, norm;
	uint64_t mask = (dim & (dim - 1)) == 0 ? dim - 1 : 0;
	size_t i;
	int rc;

	if (dim == 0 || dim > VEC_EMBED_DIM_MAX || !out || (!text && len))
		return -EINVAL;
	pthread_once(&vec_embed_wgt_once, vec_embed_wgt_init);
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

	/*
	 * Slot order is a function of the input alone: deterministic sums.
	 * An empty slot (key 0) adds +0.0 to bucket 0, which changes nothing:
	 * a sum of non-zero weights is never -0.0.
	 */
	for (i = 0; i < tf.cap; i++) {
		uint64_t h = tf.slots[i].key;
		uint32_t c = tf.slots[i].count;
		double wgt = c < VEC_EMBED_LN_CACHE ? vec_embed_wgt[c]
						    : 1.0 + log((double)c);

		acc[mask ? h & mask : h % dim] += (h >> 63) ? -wgt : wgt;
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
