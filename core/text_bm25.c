/* text_bm25.c - the incremental, thread-safe BM25 inverted index. */
#include "core/text.h"
#include "core/text_bm25_int.h"
#include "core/text_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Structures: text_bm25_int.h; saving and loading: text_bm25_io.c. */

#define BM25_BIGRAM_SEP ' ' /* never inside a token */

/* --- document analysis, done before taking the lock ---------------------- */

/* The distinct terms (and bigrams) of a text with their frequencies. */
struct bm25_bag {
	struct text_strs keys;
	uint32_t *tf;
	uint64_t *hash; /* text_strs_hash() of each key, for the dictionary */
	uint32_t tf_cap;
	uint32_t len; /* unigram tokens */
	int bigrams;
	char prev[TEXT_TOKEN_MAX + 1];
	size_t prev_len;
	int err;
};

static int bm25_bag_count(struct bm25_bag *bag, const char *key, size_t len)
{
	uint64_t h = text_strs_hash(key, len);
	uint32_t e;
	int added, rc;

	if (bag->keys.n == bag->tf_cap) {
		uint32_t cap = bag->tf_cap ? 2 * bag->tf_cap : 64;
		uint32_t *tf = realloc(bag->tf, cap * sizeof(*tf));
		uint64_t *hash;

		if (!tf)
			return -ENOMEM;
		bag->tf = tf;
		hash = realloc(bag->hash, cap * sizeof(*hash));
		if (!hash)
			return -ENOMEM;
		bag->hash = hash;
		bag->tf_cap = cap;
	}
	rc = text_strs_intern_hash(&bag->keys, key, len, h, &e, &added);
	if (rc)
		return rc;
	if (added) {
		bag->tf[e] = 0;
		bag->hash[e] = h;
	}
	if (bag->tf[e] < UINT32_MAX)
		bag->tf[e]++;
	return 0;
}

static int bm25_bag_token(void *arg, const char *tok, size_t len)
{
	struct bm25_bag *bag = arg;
	char pair[2 * TEXT_TOKEN_MAX + 1];
	int rc;

	rc = bm25_bag_count(bag, tok, len);
	if (!rc && bag->bigrams && bag->prev_len) {
		memcpy(pair, bag->prev, bag->prev_len);
		pair[bag->prev_len] = BM25_BIGRAM_SEP;
		memcpy(pair + bag->prev_len + 1, tok, len);
		rc = bm25_bag_count(bag, pair, bag->prev_len + 1 + len);
	}
	if (rc) {
		bag->err = rc;
		return rc;
	}
	if (bag->bigrams) {
		memcpy(bag->prev, tok, len);
		bag->prev_len = len;
	}
	if (bag->len < UINT32_MAX)
		bag->len++;
	return 0;
}

static int bm25_bag_fill(struct bm25_bag *bag, const char *text, size_t len,
			 int bigrams)
{
	memset(bag, 0, sizeof(*bag));
	bag->bigrams = bigrams;
	text_tokenize(text, len, TEXT_ANALYZE, bm25_bag_token, bag);
	return bag->err;
}

static void bm25_bag_free(struct bm25_bag *bag)
{
	text_strs_free(&bag->keys);
	free(bag->tf);
	free(bag->hash);
}

/* --- the id map ---------------------------------------------------------- */

uint32_t bm25_id_hash(const char *id)
{
	return (uint32_t)XXH3_64bits(id, strlen(id));
}

uint32_t bm25_id_slot(const struct text_index *idx, const char *id, uint32_t h)
{
	uint32_t mask = idx->ids_slots - 1, i = h & mask;
	uint64_t v;

	for (;; i = (i + 1) & mask) {
		v = idx->ids[i];
		if (!v || (BM25_ID_HASH(v) == h &&
			   strcmp(idx->docs[BM25_ID_DOC(v)].id, id) == 0))
			return i;
	}
}

static int bm25_id_rehash(struct text_index *idx, uint32_t nslots)
{
	uint64_t *old = idx->ids, v;
	uint32_t i, j, mask = nslots - 1;

	idx->ids = calloc(nslots, sizeof(*idx->ids));
	if (!idx->ids) {
		idx->ids = old;
		return -ENOMEM;
	}
	for (i = 0; i < idx->ids_slots; i++) {
		v = old[i];
		if (!v)
			continue;
		for (j = BM25_ID_HASH(v) & mask; idx->ids[j];
		     j = (j + 1) & mask)
			;
		idx->ids[j] = v;
	}
	free(old);
	idx->ids_slots = nslots;
	return 0;
}

/* Removes slot i, shifting later members of its cluster back. */
static void bm25_id_remove(struct text_index *idx, uint32_t i)
{
	uint32_t mask = idx->ids_slots - 1, j = i, home;

	for (;;) {
		j = (j + 1) & mask;
		if (!idx->ids[j])
			break;
		home = BM25_ID_HASH(idx->ids[j]) & mask;
		/* Move j into the hole unless its home lies in (i, j]. */
		if (i <= j ? (home <= i || home > j)
			   : (home <= i && home > j)) {
			idx->ids[i] = idx->ids[j];
			i = j;
		}
	}
	idx->ids[i] = 0;
	idx->nids--;
}

/* --- writing ------------------------------------------------------------- */

/*
 * Forgets doc d: fixes df, N and avgdl; its postings become dead.  Returns
 * its id, which the caller frees or reuses.
 */
static char *bm25_kill(struct text_index *idx, uint32_t d)
{
	struct text_doc *doc = &idx->docs[d];
	const uint8_t *p = doc->terms;
	uint32_t i, t = 0;
	char *id = doc->id;

	for (i = 0; i < doc->nterms; i++) {
		t += text_varint_get(&p);
		idx->terms[t].df--;
	}
	if (doc->terms) /* NULL for a loaded document without terms */
		idx->fwd_bytes -= (uint64_t)(p - doc->terms);
	idx->id_bytes -= strlen(id) + 1;
	idx->dead_postings += doc->nterms;
	if (doc->len) {
		idx->n--;
		idx->total_len -= doc->len;
	}
	free(doc->terms);
	doc->id = NULL;
	doc->terms = NULL;
	idx->dead_docs++;
	return id;
}

/*
 * Sorts a document's term numbers, tmp being room for n more.  A few
 * dozen distinct terms are ordered fastest by insertion sort; beyond
 * that (any document with word pairs indexed) a radix sort by bytes,
 * skipping the bytes all numbers share: two or three passes with no
 * comparison through a function pointer, where qsort() took two fifths
 * of an import's commit time spent on the keyword index.
 */
static void bm25_sort_u32(uint32_t *v, size_t n, uint32_t *tmp)
{
	uint32_t cnt[4][256], x, *src = v, *dst = tmp, *t;
	size_t i, j, pos, sum;
	unsigned b, sh;

	if (n <= 64) {
		for (i = 1; i < n; i++) {
			x = v[i];
			for (j = i; j > 0 && v[j - 1] > x; j--)
				v[j] = v[j - 1];
			v[j] = x;
		}
		return;
	}
	memset(cnt, 0, sizeof(cnt));
	for (i = 0; i < n; i++) {
		x = v[i];
		cnt[0][x & 0xff]++;
		cnt[1][(x >> 8) & 0xff]++;
		cnt[2][(x >> 16) & 0xff]++;
		cnt[3][x >> 24]++;
	}
	for (b = 0; b < 4; b++) {
		sh = 8 * b;
		if (cnt[b][(v[0] >> sh) & 0xff] == n)
			continue; /* every number has this byte */
		for (i = 0, sum = 0; i < 256; i++) {
			pos = sum;
			sum += cnt[b][i];
			cnt[b][i] = (uint32_t)pos;
		}
		for (i = 0; i < n; i++)
			dst[cnt[b][(src[i] >> sh) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
}

/*
 * Rewrites every postings list without dead documents and renumbers the
 * live ones densely.  In place: a kept posting's new delta is at most the
 * sum of the old deltas it replaces, so its varint is never longer, and
 * the writer never overtakes the reader.  Without memory for the
 * renumbering table it does nothing.
 */
static void bm25_compact(struct text_index *idx)
{
	uint32_t *remap, d, nd = 0, t;

	remap = malloc((idx->ndocs ? idx->ndocs : 1) * sizeof(*remap));
	if (!remap)
		return;
	for (d = 0; d < idx->ndocs; d++)
		remap[d] = idx->docs[d].id ? nd++ : BM25_NONE;
	idx->post_bytes = 0;
	for (t = 0; t < idx->dict.n; t++) {
		struct text_term *term = &idx->terms[t];
		uint8_t *base = bm25_post(term);

		term->len = (uint32_t)bm25_remap_postings(
			base, term->len, remap, base, &term->last);
		if (term->cap && term->len <= BM25_INLINE) {
			uint8_t *heap = term->post.heap;

			memcpy(term->post.in, heap, term->len);
			free(heap);
			term->cap = 0;
		} else if (term->cap > 2 * term->len + 16) {
			uint8_t *p = realloc(term->post.heap, term->len);

			if (p) {
				term->post.heap = p;
				term->cap = term->len;
			}
		}
		idx->post_bytes += term->cap;
	}
	for (d = 0; d < idx->ndocs; d++)
		if (remap[d] != BM25_NONE)
			idx->docs[remap[d]] = idx->docs[d];
	/* The id map names only live documents: same slots, new numbers. */
	for (d = 0; d < idx->ids_slots; d++) {
		uint64_t v = idx->ids[d];

		if (v)
			idx->ids[d] = bm25_id_value(BM25_ID_HASH(v),
						    remap[BM25_ID_DOC(v)]);
	}
	idx->ndocs = nd;
	idx->postings -= idx->dead_postings;
	idx->dead_postings = 0;
	idx->dead_docs = 0;
	free(remap);
}

static void bm25_maybe_compact(struct text_index *idx)
{
	if ((idx->dead_postings > 4096 &&
	     idx->dead_postings * 4 > idx->postings) ||
	    (idx->dead_docs > 4096 && idx->dead_docs * 4ull > idx->ndocs))
		bm25_compact(idx);
}

/* Makes room for `more` bytes in term t's postings. */
static int bm25_term_reserve(struct text_index *idx, uint32_t t, size_t more)
{
	struct text_term *term = &idx->terms[t];
	size_t cap;
	uint8_t *p;

	if (term->len + more <= (term->cap ? term->cap : BM25_INLINE))
		return 0;
	cap = term->cap ? (size_t)term->cap + term->cap / 2 : 2 * BM25_INLINE;
	if (cap < term->len + more)
		cap = term->len + more;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	if (term->cap) {
		p = realloc(term->post.heap, cap);
		if (!p)
			return -ENOMEM;
	} else {
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		memcpy(p, term->post.in, term->len);
	}
	idx->post_bytes += cap - term->cap;
	term->post.heap = p;
	term->cap = (uint32_t)cap;
	return 0;
}

/*
 * A document's distinct terms as text_index_put adds them: entry i is key
 * kid[i] (i itself if kid is NULL) of `keys`, hashed hash[that key],
 * with frequency tf[i]; `len` tokens.  A bag describes itself so; a
 * prepared document (struct text_prep) points into its batch's arrays.
 */
struct bm25_terms {
	const struct text_strs *keys;
	const uint64_t *hash;
	const uint32_t *kid;
	const uint32_t *tf;
	uint32_t n, len;
	/*
	 * NULL, or by key of `keys`: its term number in the index + 1, 0 if
	 * not known yet; filled in as the keys are interned.
	 */
	uint32_t *gmap;
};

static inline uint32_t bm25_terms_key(const struct bm25_terms *t, uint32_t i)
{
	return t->kid ? t->kid[i] : i;
}

/*
 * Interns every term into the dictionary, gid getting their numbers, and
 * makes room in each for a posting of document d.
 */
static int bm25_intern_terms(struct text_index *idx, const struct bm25_terms *t,
			     uint32_t d, uint32_t *gid)
{
	uint32_t i, k;
	const char *key;
	size_t l;
	int added, rc;

	for (i = 0; i < t->n; i++) {
		if (idx->dict.n == idx->terms_cap) {
			uint32_t cap =
				idx->terms_cap ? 2 * idx->terms_cap : 256;
			struct text_term *terms;

			if (cap < idx->terms_cap)
				return -ENOMEM;
			terms = realloc(idx->terms,
					(size_t)cap * sizeof(*terms));
			if (!terms)
				return -ENOMEM;
			idx->terms = terms;
			idx->terms_cap = cap;
		}
		k = bm25_terms_key(t, i);
		if (t->gmap && t->gmap[k]) {
			gid[i] = t->gmap[k] - 1;
		} else {
			key = text_strs_key(t->keys, k, &l);
			rc = text_strs_intern_hash(&idx->dict, key, l,
						   t->hash[k], &gid[i], &added);
			if (rc)
				return rc;
			if (added)
				memset(&idx->terms[gid[i]], 0,
				       sizeof(*idx->terms));
			if (t->gmap)
				t->gmap[k] = gid[i] + 1;
		}
		rc = bm25_term_reserve(
			idx, gid[i],
			text_varint_len(d - idx->terms[gid[i]].last) +
				text_varint_len(t->tf[i]));
		if (rc)
			return rc;
	}
	return 0;
}

/* Reserves room for one more document and one more id. */
static int bm25_reserve_doc(struct text_index *idx)
{
	int rc;

	if (idx->ndocs == BM25_NONE - 1)
		bm25_compact(idx);
	if (idx->ndocs == BM25_NONE - 1)
		return -ENOSPC;
	if (idx->ndocs == idx->docs_cap) {
		/* A loaded index may hold fewer than 64. */
		uint32_t cap = idx->docs_cap < 64
				       ? 64
				       : idx->docs_cap + idx->docs_cap / 2;
		struct text_doc *docs;

		if (cap < idx->docs_cap || cap > BM25_NONE - 1)
			cap = BM25_NONE - 1;
		docs = realloc(idx->docs, (size_t)cap * sizeof(*docs));
		if (!docs)
			return -ENOMEM;
		idx->docs = docs;
		idx->docs_cap = cap;
	}
	if ((uint64_t)(idx->nids + 1) * 2 > idx->ids_slots) {
		rc = bm25_id_rehash(idx,
				    idx->ids_slots ? 2 * idx->ids_slots : 64);
		if (rc)
			return rc;
	}
	return 0;
}

/* Adds or replaces document `id` (hashed h) with the terms t. */
static int bm25_put_terms(struct text_index *idx, const char *id, uint32_t h,
			  const struct bm25_terms *t)
{
	uint32_t *gid = NULL, *sorted, i, d, slot, n = t->n;
	uint8_t *fwd = NULL, *p;
	size_t fwd_len = 0;
	char *copy = NULL;
	int rc;

	gid = malloc((3 * (size_t)n + 1) * sizeof(*gid));
	fwd = malloc((size_t)n * TEXT_VARINT_MAX + 1);
	copy = strdup(id);
	if (!gid || !fwd || !copy) {
		rc = -ENOMEM;
		goto out_free;
	}
	sorted = gid + n;

	pthread_rwlock_wrlock(&idx->lock);
	/* Everything that can fail happens before the first change. */
	rc = bm25_reserve_doc(idx);
	if (!rc)
		rc = bm25_intern_terms(idx, t, idx->ndocs, gid);
	if (rc)
		goto out_unlock;
	memcpy(sorted, gid, n * sizeof(*gid));
	bm25_sort_u32(sorted, n, sorted + n);
	for (i = 0; i < n; i++)
		fwd_len += text_varint_put(fwd + fwd_len,
					   sorted[i] - (i ? sorted[i - 1] : 0));
	p = realloc(fwd, fwd_len ? fwd_len : 1);
	if (p)
		fwd = p;

	/* Commit: nothing below allocates. */
	slot = bm25_id_slot(idx, id, h);
	if (idx->ids[slot]) {
		free(copy);
		copy = bm25_kill(idx, BM25_ID_DOC(idx->ids[slot]));
	} else {
		idx->nids++;
	}
	d = idx->ndocs++;
	for (i = 0; i < n; i++) {
		struct text_term *term = &idx->terms[gid[i]];
		uint8_t *post = bm25_post(term);

		term->len += (uint32_t)text_varint_put(post + term->len,
						       d - term->last);
		term->len +=
			(uint32_t)text_varint_put(post + term->len, t->tf[i]);
		term->last = d;
		term->df++;
	}
	idx->postings += n;
	idx->fwd_bytes += fwd_len;
	idx->id_bytes += strlen(copy) + 1;
	idx->docs[d].id = copy;
	idx->docs[d].terms = fwd;
	idx->docs[d].nterms = n;
	idx->docs[d].len = t->len;
	if (t->len) {
		idx->n++;
		idx->total_len += t->len;
	}
	idx->ids[slot] = bm25_id_value(h, d);
	copy = NULL;
	fwd = NULL;
	bm25_maybe_compact(idx);
out_unlock:
	pthread_rwlock_unlock(&idx->lock);
out_free:
	free(copy);
	free(fwd);
	free(gid);
	return rc;
}

int text_index_put(struct text_index *idx, const char *id, const char *text,
		   size_t len)
{
	struct bm25_bag bag;
	struct bm25_terms t;
	int rc;

	if (!idx || !id || !*id || (!text && len))
		return -EINVAL;
	rc = bm25_bag_fill(&bag, text, len, idx->bigram_weight > 0);
	if (!rc) {
		t = (struct bm25_terms){ .keys = &bag.keys,
					 .hash = bag.hash,
					 .tf = bag.tf,
					 .n = bag.keys.n,
					 .len = bag.len };
		rc = bm25_put_terms(idx, id, bm25_id_hash(id), &t);
	}
	bm25_bag_free(&bag);
	return rc;
}

/* --- documents analysed ahead (text_prep) -------------------------------- */

/*
 * The terms of every document of the batch in one dictionary of their
 * own: document i's terms are kid[off..off+n) with tf[off..off+n), in
 * the order of their first token, as its bag lists them.
 */
struct text_prep_doc {
	size_t off;
	uint32_t n, len;
};

struct text_prep {
	int bigrams;
	struct text_strs keys;
	uint64_t *hash; /* by key */
	uint32_t hash_cap;
	uint32_t *kid, *tf;
	size_t nt, tcap;
	struct text_prep_doc *docs;
	uint32_t ndocs, dcap;
	/*
	 * By key: its term number in index `gserial` + 1 (0: not known), so
	 * that a key shared by many documents is looked up in the index's
	 * dictionary once, not once per document.  Term numbers are never
	 * taken back from an index, so what is cached stays true.
	 */
	uint32_t *gmap;
	uint32_t gmap_cap;
	uint64_t gserial;
	/*
	 * text_prep_add's memory of what it did before, so that a word met
	 * again costs one lookup, not a stopword test, a stem and the
	 * lookups of its stem and of its pair with the word before:
	 * words: the a-z words met (as found, unstemmed), word_kid by word:
	 * the key of its stem + 1, 0 for a stopword, BM25_NONE not known;
	 * pairs: open addressing from (key a << 32 | key b) + 1 (0: empty)
	 * to the key of the pair "a b";
	 * seen/seen_at by key: the number of the text_prep_add call that
	 * last counted it, and where in that text's list.
	 */
	struct text_strs words;
	uint32_t *word_kid;
	uint32_t word_cap;
	uint64_t *pair_key;
	uint32_t *pair_kid;
	uint32_t pair_slots, npairs;
	uint32_t *seen, *seen_at;
	uint32_t seen_cap, stamp;
};

int text_prep_new(const struct text_index *idx, struct text_prep **out)
{
	struct text_prep *p;

	*out = NULL;
	if (!idx)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->bigrams = idx->bigram_weight > 0;
	*out = p;
	return 0;
}

void text_prep_free(struct text_prep *p)
{
	if (!p)
		return;
	text_strs_free(&p->keys);
	free(p->hash);
	free(p->kid);
	free(p->tf);
	free(p->docs);
	free(p->gmap);
	text_strs_free(&p->words);
	free(p->word_kid);
	free(p->pair_key);
	free(p->pair_kid);
	free(p->seen);
	free(p->seen_at);
	free(p);
}

uint32_t text_prep_count(const struct text_prep *p)
{
	return p ? p->ndocs : 0;
}

/* Key key[0..len) of p (added if new, with its hash): 0 or -ENOMEM. */
static int bm25_prep_key(struct text_prep *p, const char *key, size_t len,
			 uint32_t *kid)
{
	uint64_t h = text_strs_hash(key, len);
	int added, rc;

	if (p->keys.n == p->hash_cap) {
		uint32_t cap = p->hash_cap ? 2 * p->hash_cap : 1024;
		uint64_t *hv;

		if (cap < p->hash_cap)
			return -ENOMEM;
		hv = realloc(p->hash, (size_t)cap * sizeof(*hv));
		if (!hv)
			return -ENOMEM;
		p->hash = hv;
		p->hash_cap = cap;
	}
	if (p->keys.n == p->seen_cap) {
		uint32_t cap = p->seen_cap ? 2 * p->seen_cap : 1024, *v;

		if (cap < p->seen_cap)
			return -ENOMEM;
		v = realloc(p->seen, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->seen = v;
		v = realloc(p->seen_at, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->seen_at = v;
		p->seen_cap = cap;
	}
	rc = text_strs_intern_hash(&p->keys, key, len, h, kid, &added);
	if (rc)
		return rc;
	if (added) {
		p->hash[*kid] = h;
		p->seen[*kid] = 0;
	}
	return 0;
}

static inline uint32_t bm25_pair_home(uint64_t k, uint32_t slots)
{
	return (uint32_t)((k * 0x9e3779b97f4a7c15ull) >> 32) & (slots - 1);
}

static int bm25_pair_grow(struct text_prep *p)
{
	uint32_t slots = p->pair_slots ? 2 * p->pair_slots : 4096, i, j;
	uint64_t *key;
	uint32_t *kid;

	if (slots < p->pair_slots)
		return -ENOMEM;
	key = calloc(slots, sizeof(*key));
	kid = malloc((size_t)slots * sizeof(*kid));
	if (!key || !kid) {
		free(key);
		free(kid);
		return -ENOMEM;
	}
	for (i = 0; i < p->pair_slots; i++) {
		if (!p->pair_key[i])
			continue;
		for (j = bm25_pair_home(p->pair_key[i], slots); key[j];
		     j = (j + 1) & (slots - 1))
			;
		key[j] = p->pair_key[i];
		kid[j] = p->pair_kid[i];
	}
	free(p->pair_key);
	free(p->pair_kid);
	p->pair_key = key;
	p->pair_kid = kid;
	p->pair_slots = slots;
	return 0;
}

/* The key of the pair "a b" of keys a and b: 0 or -ENOMEM. */
static int bm25_prep_pair(struct text_prep *p, uint32_t a, uint32_t b,
			  uint32_t *kid)
{
	uint64_t k = ((uint64_t)a << 32 | b) + 1;
	char pair[2 * TEXT_TOKEN_MAX + 1];
	const char *ka, *kb;
	size_t la, lb;
	uint32_t i;
	int rc;

	if ((uint64_t)(p->npairs + 1) * 2 > p->pair_slots) {
		rc = bm25_pair_grow(p);
		if (rc)
			return rc;
	}
	for (i = bm25_pair_home(k, p->pair_slots); p->pair_key[i];
	     i = (i + 1) & (p->pair_slots - 1))
		if (p->pair_key[i] == k) {
			*kid = p->pair_kid[i];
			return 0;
		}
	ka = text_strs_key(&p->keys, a, &la);
	kb = text_strs_key(&p->keys, b, &lb);
	memcpy(pair, ka, la);
	pair[la] = BM25_BIGRAM_SEP;
	memcpy(pair + la + 1, kb, lb);
	rc = bm25_prep_key(p, pair, la + 1 + lb, kid);
	if (rc)
		return rc;
	p->pair_key[i] = k;
	p->pair_kid[i] = *kid;
	p->npairs++;
	return 0;
}

/* One text being added: its list is p->kid/tf[p->nt .. p->nt + n). */
struct bm25_prep_run {
	struct text_prep *p;
	uint32_t n, len;
	uint32_t prev; /* key of the token before, or BM25_NONE */
	int err;
};

/* Counts key k once more in the text (a new entry the first time). */
static int bm25_prep_count(struct bm25_prep_run *r, uint32_t k)
{
	struct text_prep *p = r->p;
	size_t at;

	if (p->seen[k] == p->stamp) {
		at = p->nt + p->seen_at[k];
		if (p->tf[at] < UINT32_MAX)
			p->tf[at]++;
		return 0;
	}
	if (p->nt + r->n == p->tcap) {
		size_t cap = p->tcap ? 2 * p->tcap : 4096;
		uint32_t *v;

		v = realloc(p->kid, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->kid = v;
		v = realloc(p->tf, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->tf = v;
		p->tcap = cap;
	}
	p->seen[k] = p->stamp;
	p->seen_at[k] = r->n;
	p->kid[p->nt + r->n] = k;
	p->tf[p->nt + r->n] = 1;
	r->n++;
	return 0;
}

/*
 * A token: what bm25_bag_token does with the token text_tokenize would
 * hand it (stopped, stemmed), with the same terms in the same order.
 */
static int bm25_prep_token(void *arg, char *tok, size_t len, int az)
{
	struct bm25_prep_run *r = arg;
	struct text_prep *p = r->p;
	uint32_t w, k, pk;
	int added, rc;

	if (!az) {
		/* never a stopword, never stemmed */
		rc = bm25_prep_key(p, tok, len, &k);
	} else {
		if (p->words.n == p->word_cap) {
			uint32_t cap = p->word_cap ? 2 * p->word_cap : 1024;
			uint32_t *v;

			rc = -ENOMEM;
			if (cap < p->word_cap)
				goto fail;
			v = realloc(p->word_kid, (size_t)cap * sizeof(*v));
			if (!v)
				goto fail;
			p->word_kid = v;
			p->word_cap = cap;
		}
		rc = text_strs_intern_hash(&p->words, tok, len,
					   text_strs_hash(tok, len), &w,
					   &added);
		if (rc)
			goto fail;
		if (added)
			p->word_kid[w] = BM25_NONE;
		if (p->word_kid[w] == BM25_NONE) {
			if (text_is_stopword(tok, len)) {
				p->word_kid[w] = 0;
			} else {
				len = text_stem(tok, len);
				rc = bm25_prep_key(p, tok, len, &k);
				if (rc)
					goto fail;
				p->word_kid[w] = k + 1;
			}
		}
		if (!p->word_kid[w])
			return 0; /* a stopword */
		k = p->word_kid[w] - 1;
	}
	if (!rc)
		rc = bm25_prep_count(r, k);
	if (!rc && p->bigrams && r->prev != BM25_NONE) {
		rc = bm25_prep_pair(p, r->prev, k, &pk);
		if (!rc)
			rc = bm25_prep_count(r, pk);
	}
	if (rc)
		goto fail;
	if (p->bigrams)
		r->prev = k;
	if (r->len < UINT32_MAX)
		r->len++;
	return 0;
fail:
	r->err = rc;
	return rc;
}

int text_prep_add(struct text_prep *p, const char *text, size_t len,
		  uint32_t *doc)
{
	struct bm25_prep_run r = { .p = p, .prev = BM25_NONE };

	if (!p || (!text && len))
		return -EINVAL;
	if (p->ndocs == UINT32_MAX)
		return -ENOSPC;
	if (p->ndocs == p->dcap) {
		uint32_t cap = p->dcap ? 2 * p->dcap : 256;
		struct text_prep_doc *d;

		if (cap < p->dcap)
			return -ENOMEM;
		d = realloc(p->docs, (size_t)cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		p->docs = d;
		p->dcap = cap;
	}
	/* a new number for this call: what a failed one marked is stale */
	if (++p->stamp == 0) {
		if (p->seen)
			memset(p->seen, 0,
			       (size_t)p->seen_cap * sizeof(*p->seen));
		p->stamp = 1;
	}
	text_tokenize_raw(text, len, bm25_prep_token, &r);
	if (r.err)
		return r.err;
	p->docs[p->ndocs] =
		(struct text_prep_doc){ .off = p->nt, .n = r.n, .len = r.len };
	p->nt += r.n;
	*doc = p->ndocs++;
	return 0;
}

/*
 * p's cache of term numbers, made right for idx and every key of p: NULL
 * without memory for it (then every key is looked up).
 */
static uint32_t *bm25_prep_gmap(struct text_prep *p,
				const struct text_index *idx)
{
	uint32_t cap, *m;

	if (p->gmap && p->gserial != idx->serial)
		memset(p->gmap, 0, (size_t)p->gmap_cap * sizeof(*p->gmap));
	p->gserial = idx->serial;
	if (p->keys.n > p->gmap_cap) {
		cap = p->keys.n > p->gmap_cap * 2 ? p->keys.n : p->gmap_cap * 2;
		m = realloc(p->gmap, (size_t)cap * sizeof(*m));
		if (!m)
			return NULL;
		memset(m + p->gmap_cap, 0,
		       (size_t)(cap - p->gmap_cap) * sizeof(*m));
		p->gmap = m;
		p->gmap_cap = cap;
	}
	return p->gmap;
}

int text_prep_fits(const struct text_index *idx, const struct text_prep *p,
		   uint32_t doc)
{
	return idx && p && doc < p->ndocs &&
	       p->bigrams == (idx->bigram_weight > 0);
}

int text_index_put_prepared(struct text_index *idx, const char *id,
			    struct text_prep *p, uint32_t doc)
{
	const struct text_prep_doc *d;
	struct bm25_terms t;

	if (!idx || !id || !*id || !p || doc >= p->ndocs)
		return -EINVAL;
	/* the bag was made with the bigram setting of its index */
	if (p->bigrams != (idx->bigram_weight > 0))
		return -EINVAL;
	d = &p->docs[doc];
	t = (struct bm25_terms){ .keys = &p->keys,
				 .hash = p->hash,
				 .kid = p->kid + d->off,
				 .tf = p->tf + d->off,
				 .n = d->n,
				 .len = d->len,
				 .gmap = bm25_prep_gmap(p, idx) };
	return bm25_put_terms(idx, id, bm25_id_hash(id), &t);
}

int text_index_del(struct text_index *idx, const char *id)
{
	uint32_t slot, h;
	int rc = -ENOENT;

	if (!idx || !id)
		return -EINVAL;
	h = bm25_id_hash(id);
	pthread_rwlock_wrlock(&idx->lock);
	if (idx->ids_slots) {
		slot = bm25_id_slot(idx, id, h);
		if (idx->ids[slot]) {
			uint32_t d = BM25_ID_DOC(idx->ids[slot]);

			bm25_id_remove(idx, slot);
			free(bm25_kill(idx, d));
			bm25_maybe_compact(idx);
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	return rc;
}

int text_index_compact(struct text_index *idx)
{
	if (!idx)
		return -EINVAL;
	pthread_rwlock_wrlock(&idx->lock);
	if (idx->dead_docs)
		bm25_compact(idx);
	pthread_rwlock_unlock(&idx->lock);
	return 0;
}

/* --- searching ----------------------------------------------------------- */

struct bm25_cand {
	double score;
	const char *id;
};

/* Whether a ranks below b: lower score, or same score and larger id. */
static int bm25_worse(const struct bm25_cand *a, const struct bm25_cand *b)
{
	if (a->score != b->score)
		return a->score < b->score;
	return strcmp(a->id, b->id) > 0;
}

static int bm25_cand_cmp(const void *a, const void *b)
{
	const struct bm25_cand *x = a, *y = b;

	if (bm25_worse(x, y))
		return 1;
	return bm25_worse(y, x) ? -1 : 0;
}

/* Sifts h[i] down a heap whose root is its worst member. */
static void bm25_heap_down(struct bm25_cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		struct bm25_cand tmp;

		if (l < n && bm25_worse(&h[l], &h[w]))
			w = l;
		if (r < n && bm25_worse(&h[r], &h[w]))
			w = r;
		if (w == i)
			return;
		tmp = h[i];
		h[i] = h[w];
		h[w] = tmp;
		i = w;
	}
}

static void bm25_heap_up(struct bm25_cand *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		struct bm25_cand tmp;

		if (!bm25_worse(&h[i], &h[parent]))
			return;
		tmp = h[i];
		h[i] = h[parent];
		h[parent] = tmp;
		i = parent;
	}
}

/* Per-query scratch: one accumulator per doc number, and who got one. */
struct bm25_acc {
	double *score; /* 0 untouched, < 0 filtered out */
	uint32_t *touched;
	size_t ntouched;
};

/* Adds weight * BM25(term) to every live document in term's postings. */
static void bm25_score_term(const struct text_index *idx,
			    const struct text_term *term, double weight,
			    text_filter_fn *filter, void *arg,
			    struct bm25_acc *acc)
{
	const uint8_t *p = bm25_post_c(term), *end = p + term->len;
	double avgdl = (double)idx->total_len / (double)idx->n;
	double k1 = idx->k1, b = idx->b;
	uint32_t d = 0, tf;

	while (p < end) {
		const struct text_doc *doc;

		d += text_varint_get(&p);
		tf = text_varint_get(&p);
		doc = &idx->docs[d];
		if (!doc->id || acc->score[d] < 0)
			continue;
		if (acc->score[d] == 0) {
			if (filter && !filter(arg, doc->id)) {
				acc->score[d] = -1;
				continue;
			}
			acc->touched[acc->ntouched++] = d;
		}
		acc->score[d] += weight * tf * (k1 + 1) /
				 (tf + k1 * (1 - b + b * doc->len / avgdl));
	}
}

/* Picks the k best touched documents into results, best first. */
static int bm25_top_k(const struct text_index *idx, const struct bm25_acc *acc,
		      size_t k, struct text_results *results)
{
	struct bm25_cand *h, c;
	size_t i, n = 0;

	if (k > acc->ntouched)
		k = acc->ntouched;
	if (!k)
		return 0;
	h = malloc(k * sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (i = 0; i < acc->ntouched; i++) {
		uint32_t d = acc->touched[i];

		c.score = acc->score[d];
		c.id = idx->docs[d].id;
		if (n < k) {
			h[n] = c;
			bm25_heap_up(h, n++);
		} else if (bm25_worse(&h[0], &c)) {
			h[0] = c;
			bm25_heap_down(h, n, 0);
		}
	}
	qsort(h, n, sizeof(*h), bm25_cand_cmp);
	results->hits = calloc(n, sizeof(*results->hits));
	if (!results->hits) {
		free(h);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		results->hits[i].id = strdup(h[i].id);
		results->hits[i].score = h[i].score;
		if (!results->hits[i].id) {
			results->n = i;
			text_results_free(results);
			free(h);
			return -ENOMEM;
		}
	}
	results->n = n;
	free(h);
	return 0;
}

int text_index_search(struct text_index *idx, const char *query, size_t k,
		      text_filter_fn *filter, void *arg,
		      struct text_results *results)
{
	struct bm25_acc acc = { 0 };
	struct bm25_bag bag;
	uint32_t i, t;
	int rc;

	if (!results)
		return -EINVAL;
	results->hits = NULL;
	results->n = 0;
	if (!idx || !query)
		return -EINVAL;
	if (!k)
		return 0;
	rc = bm25_bag_fill(&bag, query, strlen(query), idx->bigram_weight > 0);
	if (rc)
		goto out_bag;
	pthread_rwlock_rdlock(&idx->lock);
	if (!idx->n || !bag.keys.n)
		goto out_unlock;
	acc.score = calloc(idx->ndocs, sizeof(*acc.score));
	acc.touched = malloc(idx->ndocs * sizeof(*acc.touched));
	if (!acc.score || !acc.touched) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	for (i = 0; i < bag.keys.n; i++) {
		const struct text_term *term;
		double idf, w;
		const char *key;
		size_t l;

		key = text_strs_key(&bag.keys, i, &l);
		t = text_strs_find(&idx->dict, key, l);
		if (t == BM25_NONE || !idx->terms[t].df)
			continue;
		term = &idx->terms[t];
		idf = log(1 +
			  ((double)idx->n - term->df + 0.5) / (term->df + 0.5));
		w = idf * bag.tf[i];
		if (memchr(key, BM25_BIGRAM_SEP, l))
			w *= idx->bigram_weight;
		bm25_score_term(idx, term, w, filter, arg, &acc);
	}
	rc = bm25_top_k(idx, &acc, k, results);
out_unlock:
	pthread_rwlock_unlock(&idx->lock);
	free(acc.score);
	free(acc.touched);
out_bag:
	bm25_bag_free(&bag);
	return rc;
}

void text_results_free(struct text_results *results)
{
	size_t i;

	if (!results)
		return;
	for (i = 0; i < results->n; i++)
		free(results->hits[i].id);
	free(results->hits);
	results->hits = NULL;
	results->n = 0;
}

/* --- life cycle and stats ------------------------------------------------ */

static atomic_uint_fast64_t bm25_serials; /* indexes made so far */

int text_index_new_opts(const struct text_index_opts *opts,
			struct text_index **out)
{
	struct text_index *idx;
	pthread_rwlockattr_t attr;
	int rc;

	*out = NULL;
	if (opts && (!(opts->k1 >= 0) || !(opts->b >= 0 && opts->b <= 1) ||
		     !(opts->bigram_weight >= 0)))
		return -EINVAL;
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	idx->k1 = opts ? opts->k1 : TEXT_BM25_K1;
	idx->b = opts ? opts->b : TEXT_BM25_B;
	idx->bigram_weight = opts ? opts->bigram_weight : 0;
	idx->serial = atomic_fetch_add(&bm25_serials, 1) + 1;
	/* Writers first: a steady stream of queries must not starve them. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = -pthread_rwlock_init(&idx->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc) {
		free(idx);
		return rc;
	}
	*out = idx;
	return 0;
}

double text_index_bigram_weight(const struct text_index *idx)
{
	return idx->bigram_weight; /* set once, at creation */
}

int text_index_new(struct text_index **out)
{
	return text_index_new_opts(NULL, out);
}

void text_index_free(struct text_index *idx)
{
	uint32_t i;

	if (!idx)
		return;
	for (i = 0; i < idx->ndocs; i++) {
		free(idx->docs[i].id);
		free(idx->docs[i].terms);
	}
	for (i = 0; i < idx->dict.n; i++)
		if (idx->terms[i].cap)
			free(idx->terms[i].post.heap);
	free(idx->docs);
	free(idx->ids);
	free(idx->terms);
	text_strs_free(&idx->dict);
	pthread_rwlock_destroy(&idx->lock);
	free(idx);
}

void text_index_stats(struct text_index *idx, struct text_index_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!idx)
		return;
	pthread_rwlock_rdlock(&idx->lock);
	st->docs = idx->nids;
	st->n = idx->n;
	st->avgdl = idx->n ? (double)idx->total_len / (double)idx->n : 0;
	st->terms = idx->dict.n;
	st->postings = idx->postings;
	st->dead = idx->dead_postings;
	st->memory_bytes =
		sizeof(*idx) + idx->post_bytes + idx->fwd_bytes +
		(uint64_t)idx->docs_cap * sizeof(*idx->docs) +
		(uint64_t)idx->ids_slots * sizeof(*idx->ids) +
		(uint64_t)idx->terms_cap * sizeof(*idx->terms) +
		(uint64_t)idx->dict.cap * sizeof(*idx->dict.off) +
		(uint64_t)idx->dict.nslots * sizeof(*idx->dict.slots) +
		idx->dict.pool_cap + idx->id_bytes;
	pthread_rwlock_unlock(&idx->lock);
}
