/* vec_topk.c - exact top-k: float32 SIMD ranking, double rescoring, batches. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/engine.h"
#include "core/vec.h"
#include "core/vec_int.h"

/*
 * Bytes of rows per tile: the tile's rows stay in L1/L2 while every query
 * of a batch is scored against them, so memory is read once per batch.
 */
#define VEC_TILE_BYTES (32u << 10)
#define VEC_TILE_MAX   64
/* Queries one coalesced pass answers at most. */
#define VEC_BATCH_MAX 64
/*
 * A float32 squared norm below this (or not finite) is not trusted: the
 * products may have underflowed or overflowed, so the row is rescored
 * whatever its float32 score.  Above it, underflow costs less than 1e-20
 * of a score.
 */
#define VEC_NORM_MIN 1e-30f

/* A row that reached the float32 candidate list. */
struct vec_fcand {
	const float *row;
	const char *key;
	float s; /* float32 cosine */
};

/* One query while the rows are scanned. */
struct vec_run {
	struct vec_query *q;
	float *qn; /* the query / |query|, rounded to float32 */
	double qq; /* |query|^2 in double, for the rescoring */
	float thr; /* rows scoring below are not candidates */
	struct vec_fcand *cand;
	size_t len, cap;
	struct vec_fcand *odd; /* untrusted float32: always rescored */
	size_t nodd, capodd;
	uint8_t **allow; /* per block: bit i set = row i passes the filter */
	int active;	 /* still scanning (else rc or result is final) */
	int want;	 /* the current tile holds rows it may score */
};

/*
 * The bound E on |float32 cosine - exact cosine|.  With the query rounded
 * to float32 (error u = 2^-24 per element), a float32 dot product over dim
 * terms in any order (error <= gamma_dim * |q||r|, Cauchy-Schwarz) and
 * the norm likewise, the error is at most about (1.5 * dim + 5) * u; this
 * takes (4 * dim + 64) * u, more than twice that, to cover the double
 * reference's own rounding and second-order terms with room to spare.
 */
static double vec_err_bound(uint32_t dim)
{
	return (4.0 * dim + 64.0) * 0x1p-24;
}

/* Rearranges c so that c[k - 1] holds the k-th largest s (1 <= k <= n). */
VEC_DEFINE_SELECT(vec_select, struct vec_fcand, s)

/*
 * Raises the threshold to (k-th best float32 score) - 2E and drops the
 * candidates below it; grows the list when near ties keep it full.
 */
static int vec_prune(struct vec_run *r, double twice_e)
{
	size_t k = r->q->k, i, m = 0;
	float t;

	if (r->len > k) {
		vec_select(r->cand, r->len, k);
		t = (float)((double)r->cand[k - 1].s - twice_e);
		/* rounding must never raise it: step down one float */
		t = nextafterf(t, -INFINITY);
		if (t > r->thr)
			r->thr = t;
		for (i = 0; i < r->len; i++)
			if (r->cand[i].s >= r->thr)
				r->cand[m++] = r->cand[i];
		r->len = m;
	}
	if (r->len * 2 >= r->cap) {
		struct vec_fcand *c = realloc(r->cand, 2 * r->cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		r->cand = c;
		r->cap *= 2;
	}
	return 0;
}

static int vec_push_odd(struct vec_run *r, const float *row, const char *key)
{
	if (r->nodd == r->capodd) {
		size_t cap = r->capodd ? 2 * r->capodd : 16;
		struct vec_fcand *o = realloc(r->odd, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		r->odd = o;
		r->capodd = cap;
	}
	r->odd[r->nodd].row = row;
	r->odd[r->nodd].key = key;
	r->odd[r->nodd++].s = 0;
	return 0;
}

static void vec_run_free(struct vec_run *r, size_t nblocks)
{
	free(r->qn);
	free(r->cand);
	free(r->odd);
	vec_allow_free(r->allow, nblocks);
}

void vec_allow_free(uint8_t **allow, size_t nblocks)
{
	size_t b;

	for (b = 0; allow && b < nblocks; b++)
		free(allow[b]);
	free(allow);
}

int vec_allow_make(const struct engine_vecs *v, vec_filter_fn *filter,
		   void *arg, uint8_t ***allowp)
{
	uint8_t **allow;
	size_t b, i;
	int rc;

	*allowp = allow = calloc(v->nblocks ? v->nblocks : 1, sizeof(*allow));
	if (!allow)
		return -ENOMEM;
	for (b = 0; b < v->nblocks; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];
		uint8_t *bits;

		if (!blk->keys || !blk->n)
			continue;
		bits = calloc((blk->n + 7) / 8, 1);
		if (!bits)
			return -ENOMEM;
		allow[b] = bits;
		for (i = 0; i < blk->n; i++) {
			if (!blk->keys[i])
				continue;
			rc = filter(arg, blk->keys[i]);
			if (rc < 0)
				return rc;
			if (rc)
				bits[i / 8] |= (uint8_t)(1u << (i % 8));
		}
	}
	return 0;
}

/*
 * Prepares one query: checks, the normalised float32 copy, the filter
 * bitmap.  A query that needs no scan (error, k == 0, a zero query) is
 * finished here and left inactive.
 */
static int vec_run_init(struct vec_run *r, struct vec_query *q,
			const struct engine_vecs *v, uint32_t dim)
{
	size_t rows, i;
	double inv;

	memset(r, 0, sizeof(*r));
	r->q = q;
	q->rc = vec_check(v, q->query, dim, &q->hits, &q->n, &r->qq);
	if (q->rc)
		return 0;
	rows = vec_rows(v);
	if (q->k == 0 || rows == 0)
		return 0;
	if (r->qq == 0) {
		/* every score is 0.0: the order is the key order alone */
		q->rc = vec_topk_double(v, q->query, r->qq, dim, q->k,
					q->filter, q->arg, &q->hits, &q->n);
		return 0;
	}
	r->qn = malloc(dim * sizeof(*r->qn));
	r->cap = 2 * (q->k < rows ? q->k : rows) + 256;
	r->cand = malloc(r->cap * sizeof(*r->cand));
	if (!r->qn || !r->cand)
		return q->rc = -ENOMEM;
	inv = 1.0 / sqrt(r->qq);
	for (i = 0; i < dim; i++)
		r->qn[i] = (float)(q->query[i] * inv);
	r->thr = -INFINITY;
	if (q->filter) {
		q->rc = vec_allow_make(v, q->filter, q->arg, &r->allow);
		if (q->rc)
			return q->rc;
	}
	r->active = 1;
	return 0;
}

/* Rescoring in double and the final order, exactly as the reference. */
static int vec_run_finish(struct vec_run *r, uint32_t dim, double twice_e)
{
	struct vec_query *q = r->q;
	struct vec_cand *all;
	size_t i, m = 0;
	int rc;

	rc = vec_prune(r, twice_e);
	if (rc)
		return rc;
	all = malloc((r->len + r->nodd + 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (i = 0; i < r->len + r->nodd; i++) {
		const struct vec_fcand *c =
			i < r->len ? &r->cand[i] : &r->odd[i - r->len];
		double s;

		if (i < r->len && c->s < r->thr)
			continue;
		s = vec_score_double(q->query, r->qq, c->row, dim);
		if (isnan(s))
			continue;
		all[m].key = c->key;
		all[m++].score = s;
	}
	qsort(all, m, sizeof(*all), vec_topk_cmp);
	rc = vec_emit(all, m < q->k ? m : q->k, &q->hits, &q->n);
	free(all);
	return rc;
}

int vec_bits_any(const uint8_t *bits, size_t from, size_t n)
{
	size_t i = from, end = from + n;

	for (; i < end && i % 8; i++)
		if (bits[i / 8] >> (i % 8) & 1)
			return 1;
	for (; i + 8 <= end; i += 8)
		if (bits[i / 8])
			return 1;
	for (; i < end; i++)
		if (bits[i / 8] >> (i % 8) & 1)
			return 1;
	return 0;
}

/* Scores rows [0, n) of a tile (norms in inv, NaN = untrusted) for r. */
static int vec_run_tile(struct vec_run *r, const struct engine_vec_block *blk,
			uint8_t *allow, size_t first, const float *rows,
			size_t n, uint32_t dim, const float *inv,
			const float *dots, int any_odd, double twice_e)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		float s = dots[i] * inv[i];
		size_t row = first + i;

		if (!(s >= r->thr)) {
			if (!any_odd || !isnan(inv[i]))
				continue;
			if (!blk->keys[row] ||
			    (allow && !(allow[row / 8] >> (row % 8) & 1)))
				continue;
			rc = vec_push_odd(r, rows + i * (size_t)dim,
					  blk->keys[row]);
			if (rc)
				return rc;
			continue;
		}
		if (!blk->keys[row] ||
		    (allow && !(allow[row / 8] >> (row % 8) & 1)))
			continue;
		if (r->len == r->cap) {
			rc = vec_prune(r, twice_e);
			if (rc)
				return rc;
			if (!(s >= r->thr))
				continue;
		}
		r->cand[r->len].row = rows + i * (size_t)dim;
		r->cand[r->len].key = blk->keys[row];
		r->cand[r->len++].s = s;
	}
	return 0;
}

/*
 * Turns squared norms into 1 / norm; an untrusted one (see VEC_NORM_MIN)
 * becomes NaN.  Returns 1 if there was one.
 */
static int vec_inv_norms(float *inv, size_t n)
{
	int odd = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (isfinite(inv[i]) && inv[i] >= VEC_NORM_MIN) {
			inv[i] = 1.0f / sqrtf(inv[i]);
		} else {
			inv[i] = NAN;
			odd = 1;
		}
	}
	return odd;
}

int vec_topk_batch(const struct engine_vecs *v, uint32_t dim,
		   struct vec_query *qs, size_t nq)
{
	const struct vec_kernel *kern = vec_kernel_get();
	float inv[VEC_TILE_MAX], dots[VEC_TILE_MAX];
	struct vec_run *runs;
	double twice_e = 2 * vec_err_bound(dim);
	size_t tile, j, b, active = 0;
	int rc = 0;

	if (!qs)
		return -EINVAL;
	if (!v) {
		for (j = 0; j < nq; j++) {
			qs[j].hits = NULL;
			qs[j].n = 0;
			qs[j].rc = -EINVAL;
		}
		return nq ? -EINVAL : 0;
	}
	runs = calloc(nq ? nq : 1, sizeof(*runs));
	if (!runs) {
		for (j = 0; j < nq; j++)
			qs[j].rc = -ENOMEM;
		return nq ? -ENOMEM : 0;
	}
	for (j = 0; j < nq; j++) {
		vec_run_init(&runs[j], &qs[j], v, dim);
		active += runs[j].active;
	}
	tile = dim ? VEC_TILE_BYTES / (dim * sizeof(float)) : 1;
	tile = tile < 4 ? 4 : tile > VEC_TILE_MAX ? VEC_TILE_MAX : tile;

	for (b = 0; active && b < v->nblocks; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];
		size_t t, n;

		if (!blk->keys)
			continue;
		for (t = 0; t < blk->n && active; t += n) {
			const float *rows = blk->data + t * (size_t)dim;
			int any_odd = 0, needed = 0, first;

			n = blk->n - t < tile ? blk->n - t : tile;
			/*
			 * A tile no query's filter lets through is not read
			 * at all (rows are scored only after the filter).
			 */
			for (j = 0; j < nq; j++) {
				struct vec_run *r = &runs[j];
				uint8_t *bits = r->allow ? r->allow[b] : NULL;

				r->want = r->active &&
					  (!r->allow ||
					   (bits && vec_bits_any(bits, t, n)));
				needed |= r->want;
			}
			if (!needed)
				continue;
			for (j = 0, first = 1; j < nq; j++) {
				struct vec_run *r = &runs[j];

				if (!r->want)
					continue;
				if (!first) {
					kern->dots(r->qn, rows, n, dim, dots);
				} else {
					/*
					 * The first query reads the rows from
					 * memory and takes their norms on the
					 * way; the others find them in cache.
					 */
					kern->dots_norms(r->qn, rows, n, dim,
							 dots, inv);
					any_odd = vec_inv_norms(inv, n);
					first = 0;
				}
				r->q->rc = vec_run_tile(
					r, blk, r->allow ? r->allow[b] : NULL,
					t, rows, n, dim, inv, dots, any_odd,
					twice_e);
				if (r->q->rc) {
					r->active = 0;
					active--;
				}
			}
		}
	}
	for (j = 0; j < nq; j++) {
		if (runs[j].active)
			qs[j].rc = vec_run_finish(&runs[j], dim, twice_e);
		vec_run_free(&runs[j], v->nblocks);
		if (qs[j].rc) {
			vec_hits_free(qs[j].hits, qs[j].n);
			qs[j].hits = NULL;
			qs[j].n = 0;
			if (!rc)
				rc = qs[j].rc;
		}
	}
	free(runs);
	return rc;
}

int vec_topk(const struct engine_vecs *v, const float *query, uint32_t dim,
	     size_t k, vec_filter_fn *filter, void *arg, struct vec_hit **hits,
	     size_t *n)
{
	struct vec_query q = {
		.query = query, .k = k, .filter = filter, .arg = arg
	};
	int rc;

	if (!hits || !n)
		return -EINVAL;
	rc = vec_topk_batch(v, dim, &q, 1);
	*hits = q.hits;
	*n = q.n;
	return rc;
}

/* --- coalescing ----------------------------------------------------------- */

/* A caller of vec_topk_shared, queued until a leader answers it. */
struct vec_wait {
	const void *owner;
	const char *coll;
	const struct engine_vecs *v;
	uint32_t dim;
	struct vec_q8 *q8; /* the collection's int8 copy, or NULL */
	struct vec_query q;
	int state; /* VEC_W_* */
	struct vec_wait *next;
};

enum { VEC_W_QUEUED, VEC_W_CLAIMED, VEC_W_DONE };

/* A pass in progress, so that later arrivals queue behind it. */
struct vec_leader {
	const void *owner;
	const char *coll;
	struct vec_leader *next;
};

static pthread_mutex_t vec_co_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t vec_co_cond = PTHREAD_COND_INITIALIZER;
static struct vec_wait *vec_co_queue;
static struct vec_leader *vec_co_leaders;
static uint64_t vec_co_passes, vec_co_queries;
static size_t vec_co_hold;

static int vec_co_same(const void *owner, const char *coll, const void *o2,
		       const char *c2)
{
	return owner == o2 && strcmp(coll, c2) == 0;
}

static int vec_co_leading(const struct vec_wait *w)
{
	const struct vec_leader *l;

	for (l = vec_co_leaders; l; l = l->next)
		if (vec_co_same(w->owner, w->coll, l->owner, l->coll))
			return 1;
	return 0;
}

static size_t vec_co_queued(const struct vec_wait *w)
{
	const struct vec_wait *x;
	size_t n = 0;

	for (x = vec_co_queue; x; x = x->next)
		n += vec_co_same(w->owner, w->coll, x->owner, x->coll);
	return n;
}

/* Test hook: wait (bounded) for `hold` queued queries on w's collection. */
static void vec_co_wait_hold(const struct vec_wait *w)
{
	struct timespec until;

	if (!vec_co_hold)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	while (vec_co_queued(w) < vec_co_hold)
		if (pthread_cond_timedwait(&vec_co_cond, &vec_co_lock, &until))
			break;
	vec_co_hold = 0;
}

/* Called locked by the leader `me`: scans for every query claimed. */
static void vec_co_lead(struct vec_wait *me)
{
	struct vec_wait *claimed[VEC_BATCH_MAX], **pp;
	struct vec_query qs[VEC_BATCH_MAX];
	struct vec_leader lead = { .owner = me->owner, .coll = me->coll };
	size_t n = 0, i;

	/* registered first: arrivals during the hold queue behind it */
	lead.next = vec_co_leaders;
	vec_co_leaders = &lead;
	vec_co_wait_hold(me);
	for (pp = &vec_co_queue; *pp && n < VEC_BATCH_MAX;) {
		struct vec_wait *w = *pp;

		if (vec_co_same(me->owner, me->coll, w->owner, w->coll) &&
		    w->dim == me->dim) {
			*pp = w->next;
			w->state = VEC_W_CLAIMED;
			claimed[n++] = w;
		} else {
			pp = &w->next;
		}
	}
	vec_co_passes++;
	vec_co_queries += n;
	pthread_mutex_unlock(&vec_co_lock);

	for (i = 0; i < n; i++)
		qs[i] = claimed[i]->q;
	vec_topk_batch_q8(me->v, me->dim, qs, n, me->q8);

	pthread_mutex_lock(&vec_co_lock);
	for (i = 0; i < n; i++) {
		claimed[i]->q = qs[i];
		claimed[i]->state = VEC_W_DONE;
	}
	for (struct vec_leader **lp = &vec_co_leaders; *lp; lp = &(*lp)->next)
		if (*lp == &lead) {
			*lp = lead.next;
			break;
		}
	pthread_cond_broadcast(&vec_co_cond);
}

int vec_topk_shared(const void *owner, const char *coll,
		    const struct engine_vecs *v, const float *query,
		    uint32_t dim, size_t k, vec_filter_fn *filter, void *arg,
		    struct vec_hit **hits, size_t *n)
{
	return vec_topk_shared_q8(owner, coll, NULL, v, query, dim, k, filter,
				  arg, hits, n);
}

int vec_topk_shared_q8(const void *owner, const char *coll, struct vec_q8 *z,
		       const struct engine_vecs *v, const float *query,
		       uint32_t dim, size_t k, vec_filter_fn *filter, void *arg,
		       struct vec_hit **hits, size_t *n)
{
	struct vec_wait me = {
		.owner = owner,
		.coll = coll,
		.v = v,
		.dim = dim,
		.q8 = z,
		.q = { .query = query, .k = k, .filter = filter, .arg = arg },
	};
	struct vec_wait **pp;

	if (!hits || !n)
		return -EINVAL;
	if (!coll) {
		struct vec_query q = {
			.query = query, .k = k, .filter = filter, .arg = arg
		};
		int rc = vec_topk_batch_q8(v, dim, &q, 1, z);

		*hits = q.hits;
		*n = q.n;
		return rc;
	}
	pthread_mutex_lock(&vec_co_lock);
	for (pp = &vec_co_queue; *pp; pp = &(*pp)->next)
		;
	*pp = &me; /* FIFO: the oldest waiters are claimed first */
	pthread_cond_broadcast(&vec_co_cond); /* for a holding leader */
	while (me.state != VEC_W_DONE) {
		if (me.state == VEC_W_QUEUED && !vec_co_leading(&me))
			vec_co_lead(&me);
		else
			pthread_cond_wait(&vec_co_cond, &vec_co_lock);
	}
	pthread_mutex_unlock(&vec_co_lock);
	*hits = me.q.hits;
	*n = me.q.n;
	return me.q.rc;
}

void vec_coalesce_stats(uint64_t *passes, uint64_t *queries)
{
	pthread_mutex_lock(&vec_co_lock);
	if (passes)
		*passes = vec_co_passes;
	if (queries)
		*queries = vec_co_queries;
	pthread_mutex_unlock(&vec_co_lock);
}

void vec_coalesce_hold(size_t n)
{
	pthread_mutex_lock(&vec_co_lock);
	vec_co_hold = n;
	pthread_mutex_unlock(&vec_co_lock);
}
