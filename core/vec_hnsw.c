/* vec_hnsw.c - HNSW graph over float32 rows (see vec_hnsw.h). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/vec_hnsw.h"
#include "core/vec_hnsw_int.h"

/*
 * Nodes live in chunks that never move, so that a search can read a node
 * while another thread adds more: the chunk table is sized once for the
 * largest graph.
 */
#define HNSW_CHUNK_BITS 12
#define HNSW_CHUNK	(1u << HNSW_CHUNK_BITS)
#define HNSW_MAX_CHUNKS 16384 /* 67M nodes */
#define HNSW_LOCKS	4096
#define HNSW_MAX_LEVEL	15
#define HNSW_MAGIC	"LHNSW\0\0\1"
#define HNSW_MAGIC_LEN	8
#define HNSW_KEY_MAX	4096

struct hnsw_chunk {
	uint16_t *half; /* rows normalised, as IEEE half floats */
	uint64_t *hash; /* xxh3 of each float32 row as it was given */
	uint32_t *l0;	/* per node: count, then m0 links */
	uint32_t **up;	/* per node: levels 1..level, each count + m */
	char **key;
	uint8_t *level;
	_Atomic uint8_t *state;
};

/* Scratch of one search: visit marks and the two heaps. */
struct hnsw_scratch {
	struct hnsw_scratch *next;
	uint16_t *mark;
	size_t mark_cap;
	uint16_t epoch;
	struct hnsw_hit *cand, *res;
	size_t cand_cap, res_cap;
	uint32_t *links;
	float *q;
};

struct hnsw {
	uint32_t dim;
	unsigned m, m0, efc;
	double ml;
	uint64_t seed;
	const char *kern; /* name of the kernel family below */
	hnsw_hdot_fn *hdot;
	hnsw_hhdot_fn *hhdot;
	hnsw_f2h_row_fn *f2h_row;
	_Atomic uint32_t n;
	_Atomic size_t ndeleted;
	pthread_mutex_t grow_mu;
	pthread_mutex_t ep_mu;
	uint32_t ep;
	int top; /* level of ep; -1 while empty */
	pthread_mutex_t pool_mu;
	struct hnsw_scratch *pool;
	uint64_t *hash; /* after hnsw_load, until hnsw_bound */
	uint8_t *bound;
	pthread_mutex_t locks[HNSW_LOCKS];
	struct hnsw_chunk *_Atomic chunks[HNSW_MAX_CHUNKS];
};

/* --- nodes ----------------------------------------------------------------- */

static inline struct hnsw_chunk *hnsw_chunk_of(const struct hnsw *h,
					       uint32_t id)
{
	return atomic_load_explicit(
		&((struct hnsw *)h)->chunks[id >> HNSW_CHUNK_BITS],
		memory_order_acquire);
}

#define HNSW_SLOT(id) ((id) & (HNSW_CHUNK - 1))

static inline const uint16_t *hnsw_half(const struct hnsw *h, uint32_t id)
{
	return hnsw_chunk_of(h, id)->half + (size_t)HNSW_SLOT(id) * h->dim;
}

/* 1 / |row| (0 for a zero row). */
static float hnsw_inv_norm(const float *row, uint32_t dim)
{
	double nn = 0;
	uint32_t i;

	for (i = 0; i < dim; i++)
		nn += (double)row[i] * row[i];
	return nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
}

/*
 * Slot s gets row: its normalised half floats and its xxh3.  The float32
 * row itself is not kept (the engine holds it; callers rescore from it).
 */
static void hnsw_set_row(const struct hnsw *h, struct hnsw_chunk *c, size_t s,
			 const float *row)
{
	h->f2h_row(row, hnsw_inv_norm(row, h->dim), c->half + s * h->dim,
		   h->dim);
	c->hash[s] = XXH3_64bits(row, h->dim * sizeof(float));
}

/* The link list of id at layer l: [count, links...]. */
static inline uint32_t *hnsw_links(const struct hnsw *h, uint32_t id, int l)
{
	struct hnsw_chunk *c = hnsw_chunk_of(h, id);

	if (l == 0)
		return c->l0 + (size_t)HNSW_SLOT(id) * (h->m0 + 1);
	return c->up[HNSW_SLOT(id)] + (size_t)(l - 1) * (h->m + 1);
}

static inline pthread_mutex_t *hnsw_lock(struct hnsw *h, uint32_t id)
{
	return &h->locks[id % HNSW_LOCKS];
}

static void hnsw_chunk_free(struct hnsw_chunk *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < HNSW_CHUNK; i++) {
		if (c->up)
			free(c->up[i]);
		if (c->key)
			free(c->key[i]);
	}
	free(c->half);
	free(c->hash);
	free(c->l0);
	free(c->up);
	free(c->key);
	free(c->level);
	free((void *)c->state);
	free(c);
}

/* Makes sure the chunk of node id exists. */
static int hnsw_chunk_ensure(struct hnsw *h, uint32_t id)
{
	size_t ci = id >> HNSW_CHUNK_BITS;
	struct hnsw_chunk *c;
	int rc = 0;

	if (ci >= HNSW_MAX_CHUNKS)
		return -ENOSPC;
	if (hnsw_chunk_of(h, id))
		return 0;
	pthread_mutex_lock(&h->grow_mu);
	if (atomic_load(&h->chunks[ci]))
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	c->half = malloc((size_t)HNSW_CHUNK * h->dim * sizeof(uint16_t));
	c->hash = calloc(HNSW_CHUNK, sizeof(uint64_t));
	c->l0 = calloc((size_t)HNSW_CHUNK * (h->m0 + 1), sizeof(uint32_t));
	c->up = calloc(HNSW_CHUNK, sizeof(*c->up));
	c->key = calloc(HNSW_CHUNK, sizeof(*c->key));
	c->level = calloc(HNSW_CHUNK, 1);
	c->state = calloc(HNSW_CHUNK, 1);
	if (!c->half || !c->hash || !c->l0 || !c->up || !c->key || !c->level ||
	    !c->state) {
		hnsw_chunk_free(c);
		rc = -ENOMEM;
		goto out;
	}
	atomic_store_explicit(&h->chunks[ci], c, memory_order_release);
out:
	pthread_mutex_unlock(&h->grow_mu);
	return rc;
}

int hnsw_new(const struct hnsw_params *p, struct hnsw **out)
{
	const struct hnsw_kern *k;
	struct hnsw *h;
	size_t i;

	*out = NULL;
	if (!p || p->dim == 0 || p->m < 2 || p->m > 128)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->dim = p->dim;
	h->m = p->m;
	h->m0 = 2 * p->m;
	h->efc = p->ef_construction ? p->ef_construction : HNSW_EFC_DEFAULT;
	h->ml = 1.0 / log((double)p->m);
	h->seed = p->seed;
	k = hnsw_kern_get();
	h->kern = k->name;
	h->hdot = k->hdot;
	h->hhdot = k->hhdot;
	h->f2h_row = k->f2h_row;
	h->top = -1;
	pthread_mutex_init(&h->grow_mu, NULL);
	pthread_mutex_init(&h->ep_mu, NULL);
	pthread_mutex_init(&h->pool_mu, NULL);
	for (i = 0; i < HNSW_LOCKS; i++)
		pthread_mutex_init(&h->locks[i], NULL);
	*out = h;
	return 0;
}

void hnsw_free(struct hnsw *h)
{
	struct hnsw_scratch *sc;
	size_t i;

	if (!h)
		return;
	for (i = 0; i < HNSW_MAX_CHUNKS; i++)
		hnsw_chunk_free(atomic_load(&h->chunks[i]));
	while ((sc = h->pool)) {
		h->pool = sc->next;
		free(sc->mark);
		free(sc->cand);
		free(sc->res);
		free(sc->links);
		free(sc->q);
		free(sc);
	}
	for (i = 0; i < HNSW_LOCKS; i++)
		pthread_mutex_destroy(&h->locks[i]);
	pthread_mutex_destroy(&h->grow_mu);
	pthread_mutex_destroy(&h->ep_mu);
	pthread_mutex_destroy(&h->pool_mu);
	free(h->hash);
	free(h->bound);
	free(h);
}

size_t hnsw_size(const struct hnsw *h)
{
	return atomic_load(&((struct hnsw *)h)->n);
}

size_t hnsw_deleted(const struct hnsw *h)
{
	return atomic_load(&((struct hnsw *)h)->ndeleted);
}

uint32_t hnsw_dim(const struct hnsw *h)
{
	return h->dim;
}

const char *hnsw_kernel(const struct hnsw *h)
{
	return h->kern;
}

const char *hnsw_key(const struct hnsw *h, uint32_t id)
{
	return hnsw_chunk_of(h, id)->key[HNSW_SLOT(id)];
}

int hnsw_state(const struct hnsw *h, uint32_t id)
{
	return atomic_load_explicit(&hnsw_chunk_of(h, id)->state[HNSW_SLOT(id)],
				    memory_order_acquire);
}

void hnsw_set_state(struct hnsw *h, uint32_t id, int state)
{
	uint8_t old = atomic_exchange(
		&hnsw_chunk_of(h, id)->state[HNSW_SLOT(id)], (uint8_t)state);

	if (old != HNSW_DELETED && state == HNSW_DELETED)
		atomic_fetch_add(&h->ndeleted, 1);
	else if (old == HNSW_DELETED && state != HNSW_DELETED)
		atomic_fetch_sub(&h->ndeleted, 1);
}

/* --- scratch --------------------------------------------------------------- */

static struct hnsw_scratch *hnsw_scratch_get(struct hnsw *h, size_t nodes,
					     size_t ef)
{
	struct hnsw_scratch *sc;

	pthread_mutex_lock(&h->pool_mu);
	sc = h->pool;
	if (sc)
		h->pool = sc->next;
	pthread_mutex_unlock(&h->pool_mu);
	if (!sc) {
		sc = calloc(1, sizeof(*sc));
		if (!sc)
			return NULL;
		sc->links = malloc((h->m0 + 1) * sizeof(uint32_t));
		sc->q = malloc(h->dim * sizeof(float));
		if (!sc->links || !sc->q)
			goto fail;
	}
	if (sc->mark_cap < nodes) {
		size_t cap = nodes + nodes / 2 + HNSW_CHUNK;
		uint16_t *m = realloc(sc->mark, cap * sizeof(*m));

		if (!m)
			goto fail;
		memset(m, 0, cap * sizeof(*m));
		sc->mark = m;
		sc->mark_cap = cap;
		sc->epoch = 0;
	}
	if (sc->res_cap < ef + 1) {
		struct hnsw_hit *r = realloc(sc->res, (ef + 1) * sizeof(*r));

		if (!r)
			goto fail;
		sc->res = r;
		sc->res_cap = ef + 1;
	}
	if (++sc->epoch == 0) {
		memset(sc->mark, 0, sc->mark_cap * sizeof(*sc->mark));
		sc->epoch = 1;
	}
	return sc;
fail:
	free(sc->mark);
	free(sc->cand);
	free(sc->res);
	free(sc->links);
	free(sc->q);
	free(sc);
	return NULL;
}

static void hnsw_scratch_put(struct hnsw *h, struct hnsw_scratch *sc)
{
	pthread_mutex_lock(&h->pool_mu);
	sc->next = h->pool;
	h->pool = sc;
	pthread_mutex_unlock(&h->pool_mu);
}

/* --- heaps: cand is a max-heap on sim, res a min-heap ------------------- */

static inline void heap_up(struct hnsw_hit *a, size_t i, int max)
{
	struct hnsw_hit x = a[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (max ? a[p].sim >= x.sim : a[p].sim <= x.sim)
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = x;
}

static inline void heap_down(struct hnsw_hit *a, size_t len, size_t i, int max)
{
	struct hnsw_hit x = a[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= len)
			break;
		if (c + 1 < len &&
		    (max ? a[c + 1].sim > a[c].sim : a[c + 1].sim < a[c].sim))
			c++;
		if (max ? a[c].sim <= x.sim : a[c].sim >= x.sim)
			break;
		a[i] = a[c];
		i = c;
	}
	a[i] = x;
}

static int cand_push(struct hnsw_scratch *sc, size_t *len, struct hnsw_hit x)
{
	if (*len == sc->cand_cap) {
		size_t cap = sc->cand_cap ? sc->cand_cap * 2 : 256;
		struct hnsw_hit *c = realloc(sc->cand, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		sc->cand = c;
		sc->cand_cap = cap;
	}
	sc->cand[*len] = x;
	heap_up(sc->cand, (*len)++, 1);
	return 0;
}

/* Copies id's links at layer l (under its lock) into sc->links; count. */
static uint32_t hnsw_copy_links(struct hnsw *h, uint32_t id, int l,
				uint32_t *dst)
{
	pthread_mutex_t *mu = hnsw_lock(h, id);
	const uint32_t *src;
	uint32_t cnt;

	pthread_mutex_lock(mu);
	src = hnsw_links(h, id, l);
	cnt = src[0];
	memcpy(dst, src + 1, cnt * sizeof(*dst));
	pthread_mutex_unlock(mu);
	return cnt;
}

/*
 * Asks for every cache line of node id's row (each 64-byte line, not
 * every other one trusting the adjacent-line prefetcher: 5% fewer us a
 * search at ef 16 while another core loaded memory).
 */
static inline void hnsw_prefetch_row(const struct hnsw *h, uint32_t id)
{
	const char *p = (const char *)hnsw_half(h, id);
	size_t off, len = (size_t)h->dim * sizeof(uint16_t);

	for (off = 0; off < len; off += 64)
		__builtin_prefetch(p + off);
}

/* cos(q, node id) for a normalised q, from the half-float row. */
static inline float hnsw_sim(const struct hnsw *h, const float *q, uint32_t id)
{
	return h->hdot(q, hnsw_half(h, id), h->dim);
}

/* Greedy walk on layer l from *ep towards q (one best at a time). */
static void hnsw_greedy(struct hnsw *h, const float *q, int l, uint32_t *ep,
			float *ep_sim, uint32_t *buf, uint32_t limit)
{
	int moved = 1;

	while (moved) {
		uint32_t cnt, i;

		moved = 0;
		cnt = hnsw_copy_links(h, *ep, l, buf);
		for (i = 0; i < cnt; i++) {
			float s;

			if (buf[i] >= limit)
				continue;
			s = hnsw_sim(h, q, buf[i]);
			if (s > *ep_sim) {
				*ep_sim = s;
				*ep = buf[i];
				moved = 1;
			}
		}
	}
}

/*
 * Best-first search of layer l from the entries eps[0..neps) (their sims
 * computed); keeps the ef best nodes that `keep` accepts in sc->res as a
 * min-heap of *nres.  Nodes not kept are still walked through.  Nodes
 * numbered >= limit (added after the search began) are ignored.
 */
struct hnsw_keep {
	int query; /* 1: only LIVE nodes that allow accepts */
	hnsw_allow_fn *allow;
	void *arg;
};

static inline int hnsw_keeps(const struct hnsw *h, const struct hnsw_keep *k,
			     uint32_t id)
{
	if (!k->query)
		return 1;
	if (hnsw_state(h, id) != HNSW_LIVE)
		return 0;
	return !k->allow || k->allow(k->arg, id);
}

static int hnsw_search_layer(struct hnsw *h, struct hnsw_scratch *sc,
			     const float *q, const struct hnsw_hit *eps,
			     size_t neps, size_t ef, int l,
			     const struct hnsw_keep *keep, uint32_t limit,
			     size_t *nres)
{
	size_t ncand = 0, nr = 0, i;
	uint16_t ep = sc->epoch;

	for (i = 0; i < neps; i++) {
		sc->mark[eps[i].id] = ep;
		if (cand_push(sc, &ncand, eps[i]))
			return -ENOMEM;
		if (hnsw_keeps(h, keep, eps[i].id)) {
			sc->res[nr] = eps[i];
			heap_up(sc->res, nr++, 0);
			if (nr > ef) {
				sc->res[0] = sc->res[--nr];
				heap_down(sc->res, nr, 0, 0);
			}
		}
	}
	while (ncand) {
		struct hnsw_hit c = sc->cand[0];
		uint32_t cnt, j, todo;

		if (nr >= ef && c.sim < sc->res[0].sim)
			break;
		sc->cand[0] = sc->cand[--ncand];
		heap_down(sc->cand, ncand, 0, 1);
		cnt = hnsw_copy_links(h, c.id, l, sc->links);
		/* keep the unvisited ones, then fetch rows two ahead */
		for (j = 0, todo = 0; j < cnt; j++) {
			uint32_t nb = sc->links[j];

			if (nb >= limit || sc->mark[nb] == ep)
				continue;
			sc->mark[nb] = ep;
			sc->links[todo++] = nb;
		}
		for (j = 0; j < todo && j < 2; j++)
			hnsw_prefetch_row(h, sc->links[j]);
		for (j = 0; j < todo; j++) {
			uint32_t nb = sc->links[j];
			struct hnsw_hit x;

			if (j + 2 < todo)
				hnsw_prefetch_row(h, sc->links[j + 2]);
			x.id = nb;
			x.sim = hnsw_sim(h, q, nb);
			if (nr >= ef && x.sim <= sc->res[0].sim)
				continue;
			if (cand_push(sc, &ncand, x))
				return -ENOMEM;
			if (!hnsw_keeps(h, keep, nb))
				continue;
			sc->res[nr] = x;
			heap_up(sc->res, nr++, 0);
			if (nr > ef) {
				sc->res[0] = sc->res[--nr];
				heap_down(sc->res, nr, 0, 0);
			}
		}
	}
	*nres = nr;
	return 0;
}

static int hit_cmp_desc(const void *pa, const void *pb)
{
	const struct hnsw_hit *a = pa, *b = pb;

	if (a->sim != b->sim)
		return a->sim < b->sim ? 1 : -1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* cos(a, b) of two nodes. */
static inline float hnsw_sim2(const struct hnsw *h, uint32_t a, uint32_t b)
{
	return h->hhdot(hnsw_half(h, a), hnsw_half(h, b), h->dim);
}

/*
 * The neighbour-selection heuristic: from cands (sorted best first, sims
 * to the base), keep a candidate only if it is closer to the base than to
 * every one already kept, up to max.  Returns how many were kept, moved
 * to the front.
 */
static size_t hnsw_select(const struct hnsw *h, struct hnsw_hit *cands,
			  size_t n, size_t max)
{
	size_t kept = 0, i, j;

	for (i = 0; i < n && kept < max; i++) {
		int good = 1;

		for (j = 0; j < kept; j++)
			if (hnsw_sim2(h, cands[i].id, cands[j].id) >
			    cands[i].sim) {
				good = 0;
				break;
			}
		if (good)
			cands[kept++] = cands[i];
	}
	return kept;
}

/* Adds link id -> nb at layer l, pruning nb's list when it is full. */
static int hnsw_link_back(struct hnsw *h, uint32_t nb, uint32_t id, int l,
			  float sim, struct hnsw_hit *tmp)
{
	pthread_mutex_t *mu = hnsw_lock(h, nb);
	unsigned max = l ? h->m : h->m0;
	uint32_t *ln, cnt, i;

	pthread_mutex_lock(mu);
	ln = hnsw_links(h, nb, l);
	cnt = ln[0];
	for (i = 0; i < cnt; i++)
		if (ln[1 + i] == id)
			goto out;
	if (cnt < max) {
		ln[1 + cnt] = id;
		ln[0] = cnt + 1;
		goto out;
	}
	tmp[0].id = id;
	tmp[0].sim = sim;
	for (i = 0; i < cnt; i++) {
		tmp[1 + i].id = ln[1 + i];
		tmp[1 + i].sim = hnsw_sim2(h, nb, ln[1 + i]);
	}
	qsort(tmp, cnt + 1, sizeof(*tmp), hit_cmp_desc);
	cnt = (uint32_t)hnsw_select(h, tmp, cnt + 1, max);
	for (i = 0; i < cnt; i++)
		ln[1 + i] = tmp[i].id;
	ln[0] = cnt;
out:
	pthread_mutex_unlock(mu);
	return 0;
}

static uint64_t hnsw_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static int hnsw_level_for(const struct hnsw *h, uint32_t id)
{
	/* uniform in (0, 1] */
	double u = ((hnsw_mix(h->seed ^ ((uint64_t)id << 1)) >> 11) + 1) *
		   (1.0 / 9007199254740992.0);
	int l = (int)(-log(u) * h->ml);

	return l > HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : l;
}

/* Fills node id's fields (its chunk exists). */
static int hnsw_node_init(struct hnsw *h, uint32_t id, const float *vec,
			  const char *key, int level)
{
	struct hnsw_chunk *c = hnsw_chunk_of(h, id);
	size_t s = HNSW_SLOT(id);

	c->key[s] = strdup(key ? key : "");
	if (level > 0)
		c->up[s] = calloc((size_t)level * (h->m + 1), sizeof(uint32_t));
	if (!c->key[s] || (level > 0 && !c->up[s]))
		return -ENOMEM;
	if (vec)
		hnsw_set_row(h, c, s, vec);
	c->level[s] = (uint8_t)level;
	return 0;
}

int hnsw_add(struct hnsw *h, const float *vec, const char *key, int state,
	     uint32_t *idp)
{
	struct hnsw_scratch *sc = NULL;
	struct hnsw_hit *eps = NULL, *sel = NULL, *lb = NULL;
	uint32_t id, ep, limit;
	float ep_sim, inv;
	int level, top, l, rc;
	size_t neps, nres, i;

	id = atomic_fetch_add(&h->n, 1);
	rc = hnsw_chunk_ensure(h, id);
	if (rc)
		return rc; /* the number stays unused: never linked */
	level = hnsw_level_for(h, id);
	rc = hnsw_node_init(h, id, vec, key, level);
	if (rc)
		return rc;
	if (idp)
		*idp = id;

	pthread_mutex_lock(&h->ep_mu);
	top = h->top;
	ep = h->ep;
	if (top < 0) {
		h->ep = id;
		h->top = level;
		pthread_mutex_unlock(&h->ep_mu);
		goto done;
	}
	pthread_mutex_unlock(&h->ep_mu);

	/* ep and every node reachable from it were numbered before now */
	limit = atomic_load(&h->n);
	sc = hnsw_scratch_get(h, limit, h->efc);
	eps = malloc((h->efc + 1) * sizeof(*eps));
	sel = malloc((h->efc + 1) * sizeof(*sel));
	lb = malloc((h->m0 + 1) * sizeof(*lb));
	if (!sc || !eps || !sel || !lb) {
		rc = -ENOMEM;
		goto out;
	}
	inv = hnsw_inv_norm(vec, h->dim);
	for (i = 0; i < h->dim; i++)
		sc->q[i] = vec[i] * inv;
	ep_sim = hnsw_sim(h, sc->q, ep);
	for (l = top; l > level; l--)
		hnsw_greedy(h, sc->q, l, &ep, &ep_sim, sc->links, limit);
	eps[0].id = ep;
	eps[0].sim = ep_sim;
	neps = 1;
	for (l = level < top ? level : top; l >= 0; l--) {
		struct hnsw_keep keep = { 0 };
		size_t kept;
		uint32_t *ln;

		sc->mark[id] = sc->epoch; /* never link to itself */
		rc = hnsw_search_layer(h, sc, sc->q, eps, neps, h->efc, l,
				       &keep, limit, &nres);
		if (rc)
			goto out;
		if (++sc->epoch == 0) {
			memset(sc->mark, 0, sc->mark_cap * sizeof(*sc->mark));
			sc->epoch = 1;
		}
		memcpy(eps, sc->res, nres * sizeof(*eps));
		qsort(eps, nres, sizeof(*eps), hit_cmp_desc);
		neps = nres;
		memcpy(sel, eps, nres * sizeof(*sel));
		kept = hnsw_select(h, sel, nres, h->m);
		pthread_mutex_lock(hnsw_lock(h, id));
		ln = hnsw_links(h, id, l);
		for (i = 0; i < kept; i++)
			ln[1 + i] = sel[i].id;
		ln[0] = (uint32_t)kept;
		pthread_mutex_unlock(hnsw_lock(h, id));
		for (i = 0; i < kept; i++)
			hnsw_link_back(h, sel[i].id, id, l, sel[i].sim, lb);
	}
	if (level > top) {
		pthread_mutex_lock(&h->ep_mu);
		if (level > h->top) {
			h->top = level;
			h->ep = id;
		}
		pthread_mutex_unlock(&h->ep_mu);
	}
done:
	if (state != HNSW_HIDDEN)
		hnsw_set_state(h, id, state);
	rc = 0;
out:
	if (sc)
		hnsw_scratch_put(h, sc);
	free(eps);
	free(sel);
	free(lb);
	return rc;
}

int hnsw_search(struct hnsw *h, const float *query, size_t k, unsigned ef,
		hnsw_allow_fn *allow, void *arg, struct hnsw_hit *out,
		size_t *n)
{
	struct hnsw_keep keep = { .query = 1, .allow = allow, .arg = arg };
	struct hnsw_scratch *sc;
	struct hnsw_hit ep0;
	uint32_t ep, limit, i;
	size_t breadth = ef > k ? ef : k, nres;
	double nn = 0;
	float inv, ep_sim;
	int top, l, rc;

	*n = 0;
	if (k == 0)
		return 0;
	pthread_mutex_lock(&h->ep_mu);
	top = h->top;
	ep = h->ep;
	pthread_mutex_unlock(&h->ep_mu);
	if (top < 0)
		return 0;
	limit = atomic_load(&h->n);
	sc = hnsw_scratch_get(h, limit, breadth);
	if (!sc)
		return -ENOMEM;
	for (i = 0; i < h->dim; i++)
		nn += (double)query[i] * query[i];
	inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
	for (i = 0; i < h->dim; i++)
		sc->q[i] = query[i] * inv;
	ep_sim = hnsw_sim(h, sc->q, ep);
	for (l = top; l > 0; l--)
		hnsw_greedy(h, sc->q, l, &ep, &ep_sim, sc->links, limit);
	ep0.id = ep;
	ep0.sim = ep_sim;
	rc = hnsw_search_layer(h, sc, sc->q, &ep0, 1, breadth, 0, &keep, limit,
			       &nres);
	if (!rc) {
		qsort(sc->res, nres, sizeof(*sc->res), hit_cmp_desc);
		if (nres > k)
			nres = k;
		memcpy(out, sc->res, nres * sizeof(*out));
		*n = nres;
	}
	hnsw_scratch_put(h, sc);
	return rc;
}

/* --- save / load ----------------------------------------------------------- */

struct hnsw_head {
	char magic[HNSW_MAGIC_LEN];
	uint32_t dim, m, efc, n;
	uint64_t seed;
	uint32_t ep;
	int32_t top;
};

struct hnsw_nhead {
	uint8_t level, state;
	uint16_t zero;
	uint32_t keylen;
	uint64_t hash;
};

int hnsw_save(const struct hnsw *h, hnsw_emit_fn *emit, void *ctx)
{
	struct hnsw_head hd = { 0 };
	uint32_t n = atomic_load(&((struct hnsw *)h)->n), id;
	int rc, l;

	memcpy(hd.magic, HNSW_MAGIC, HNSW_MAGIC_LEN);
	hd.dim = h->dim;
	hd.m = h->m;
	hd.efc = h->efc;
	hd.n = n;
	hd.seed = h->seed;
	hd.ep = h->ep;
	hd.top = h->top;
	rc = emit(ctx, &hd, sizeof(hd));
	for (id = 0; id < n && !rc; id++) {
		struct hnsw_chunk *c = hnsw_chunk_of(h, id);
		struct hnsw_nhead nh = { 0 };
		size_t s = HNSW_SLOT(id);
		/*
		 * A number an out-of-memory add left unused: not saved, so
		 * the next open rebuilds (the checkpoint stays valid).
		 */
		if (!c || !c->key[s])
			return -ENOMEM;
		nh.level = c->level[s];
		nh.state = hnsw_state(h, id) == HNSW_LIVE ? HNSW_LIVE
							  : HNSW_DELETED;
		nh.keylen = (uint32_t)strlen(c->key[s]);
		nh.hash = c->hash[s];
		rc = emit(ctx, &nh, sizeof(nh));
		if (!rc)
			rc = emit(ctx, c->key[s], nh.keylen);
		if (!rc && nh.state == HNSW_DELETED)
			rc = emit(ctx, c->half + s * h->dim,
				  h->dim * sizeof(uint16_t));
		for (l = 0; l <= nh.level && !rc; l++) {
			const uint32_t *ln = hnsw_links(h, id, l);

			rc = emit(ctx, ln, (ln[0] + 1) * sizeof(uint32_t));
		}
	}
	return rc;
}

struct hnsw_rd {
	const unsigned char *p, *end;
};

static int hnsw_take(struct hnsw_rd *r, void *dst, size_t len)
{
	if ((size_t)(r->end - r->p) < len)
		return -EINVAL;
	memcpy(dst, r->p, len);
	r->p += len;
	return 0;
}

int hnsw_load(const void *data, size_t len, struct hnsw **out, size_t *used)
{
	struct hnsw_rd r = { data, (const unsigned char *)data + len };
	struct hnsw_params p = { 0 };
	struct hnsw_head hd;
	struct hnsw *h = NULL;
	char *key = NULL;
	uint32_t id, i;
	int rc, l;

	*out = NULL;
	if (hnsw_take(&r, &hd, sizeof(hd)) ||
	    memcmp(hd.magic, HNSW_MAGIC, HNSW_MAGIC_LEN) != 0)
		return -EINVAL;
	if (hd.n > (uint64_t)HNSW_MAX_CHUNKS * HNSW_CHUNK ||
	    (hd.n == 0) != (hd.top < 0) || hd.top > HNSW_MAX_LEVEL ||
	    (hd.n && hd.ep >= hd.n) || hd.dim > (1u << 20))
		return -EINVAL;
	p.dim = hd.dim;
	p.m = hd.m;
	p.ef_construction = hd.efc;
	p.seed = hd.seed;
	rc = hnsw_new(&p, &h);
	if (rc)
		return rc;
	h->hash = malloc((hd.n ? hd.n : 1) * sizeof(*h->hash));
	h->bound = calloc(hd.n ? hd.n : 1, 1);
	key = malloc(HNSW_KEY_MAX + 1);
	if (!h->hash || !h->bound || !key) {
		rc = -ENOMEM;
		goto fail;
	}
	for (id = 0; id < hd.n; id++) {
		struct hnsw_nhead nh;
		struct hnsw_chunk *c;
		size_t s = HNSW_SLOT(id);

		rc = -EINVAL;
		if (hnsw_take(&r, &nh, sizeof(nh)) ||
		    nh.level > HNSW_MAX_LEVEL ||
		    (nh.state != HNSW_LIVE && nh.state != HNSW_DELETED) ||
		    nh.keylen > HNSW_KEY_MAX || hnsw_take(&r, key, nh.keylen))
			goto fail;
		key[nh.keylen] = '\0';
		if (memchr(key, '\0', nh.keylen))
			goto fail;
		rc = hnsw_chunk_ensure(h, id);
		if (rc)
			goto fail;
		c = hnsw_chunk_of(h, id);
		rc = hnsw_node_init(h, id, NULL, key, nh.level);
		if (rc)
			goto fail;
		atomic_store(&h->n, id + 1);
		rc = -EINVAL;
		memset(c->half + s * h->dim, 0, h->dim * sizeof(uint16_t));
		c->hash[s] = nh.hash;
		h->hash[id] = nh.hash;
		if (nh.state == HNSW_DELETED) {
			uint16_t *hv = c->half + s * h->dim;

			/* only navigated through: its half floats suffice */
			if (hnsw_take(&r, hv, h->dim * sizeof(uint16_t)))
				goto fail;
			for (i = 0; i < h->dim; i++)
				if (((hv[i] >> 10) & 0x1f) == 0x1f)
					goto fail; /* Inf or NaN */
			h->bound[id] = 1;
			hnsw_set_state(h, id, HNSW_DELETED);
		} else {
			atomic_store(&c->state[s], (uint8_t)HNSW_LIVE);
		}
		for (l = 0; l <= nh.level; l++) {
			uint32_t *ln = hnsw_links(h, id, l), cnt;

			if (hnsw_take(&r, &cnt, sizeof(cnt)) ||
			    cnt > (l ? h->m : h->m0) ||
			    hnsw_take(&r, ln + 1, cnt * sizeof(uint32_t)))
				goto fail;
			for (i = 0; i < cnt; i++)
				if (ln[1 + i] >= hd.n)
					goto fail;
			ln[0] = cnt;
		}
	}
	/* a link to layer l must point at a node that has layer l */
	for (id = 0; id < hd.n; id++) {
		int lev = hnsw_chunk_of(h, id)->level[HNSW_SLOT(id)];

		for (l = 1; l <= lev; l++) {
			const uint32_t *ln = hnsw_links(h, id, l);

			for (i = 0; i < ln[0]; i++)
				if (hnsw_chunk_of(h, ln[1 + i])
					    ->level[HNSW_SLOT(ln[1 + i])] < l) {
					rc = -EINVAL;
					goto fail;
				}
		}
	}
	if (hd.n &&
	    hnsw_chunk_of(h, hd.ep)->level[HNSW_SLOT(hd.ep)] != hd.top) {
		rc = -EINVAL;
		goto fail;
	}
	h->ep = hd.ep;
	h->top = hd.top;
	free(key);
	*used = (size_t)(r.p - (const unsigned char *)data);
	*out = h;
	return 0;
fail:
	free(key);
	hnsw_free(h);
	return rc;
}

int hnsw_bind(struct hnsw *h, uint32_t id, const float *vec)
{
	struct hnsw_chunk *c;
	size_t s = HNSW_SLOT(id);

	if (!h->hash || id >= atomic_load(&h->n) || h->bound[id] ||
	    hnsw_state(h, id) != HNSW_LIVE)
		return -EINVAL;
	if (XXH3_64bits(vec, h->dim * sizeof(float)) != h->hash[id])
		return -ESTALE;
	c = hnsw_chunk_of(h, id);
	hnsw_set_row(h, c, s, vec);
	h->bound[id] = 1;
	return 0;
}

int hnsw_bound(struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n), id;

	if (!h->hash)
		return 0;
	for (id = 0; id < n; id++)
		if (!h->bound[id])
			return -ESTALE;
	free(h->hash);
	free(h->bound);
	h->hash = NULL;
	h->bound = NULL;
	return 0;
}
