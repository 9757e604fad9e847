/* vec.c - double-precision scoring, the reference top-k scan, and MMR. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/vec.h"
#include "core/vec_int.h"

/* --- kernels ------------------------------------------------------------- */

/*
 * Eight independent accumulators so that the compiler turns the inner
 * loop into SIMD lanes at -O2 without reassociating anything (the sum order
 * is fixed, so results do not depend on the compiler).  Float products are
 * exact in double.
 */
#define VEC_LANES 8

/* acc[0..7] += x[0..7] * y[0..7] in double; SLP-vectorised by the compiler. */
static inline void vec_fma8(double acc[restrict VEC_LANES],
			    const float *restrict x, const float *restrict y)
{
	double t0 = acc[0], t1 = acc[1], t2 = acc[2], t3 = acc[3];
	double t4 = acc[4], t5 = acc[5], t6 = acc[6], t7 = acc[7];

	t0 += (double)x[0] * (double)y[0];
	t1 += (double)x[1] * (double)y[1];
	t2 += (double)x[2] * (double)y[2];
	t3 += (double)x[3] * (double)y[3];
	t4 += (double)x[4] * (double)y[4];
	t5 += (double)x[5] * (double)y[5];
	t6 += (double)x[6] * (double)y[6];
	t7 += (double)x[7] * (double)y[7];
	acc[0] = t0;
	acc[1] = t1;
	acc[2] = t2;
	acc[3] = t3;
	acc[4] = t4;
	acc[5] = t5;
	acc[6] = t6;
	acc[7] = t7;
}

/* Fixed pairwise order: the result does not depend on the compiler. */
static inline double vec_sum8(const double acc[VEC_LANES], double tail)
{
	return ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
	       ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

double vec_dot_double(const float *restrict a, const float *restrict b,
		      uint32_t dim)
{
	double acc[VEC_LANES] = { 0 };
	double tail = 0;
	size_t n = dim, j;

	for (; n >= VEC_LANES; n -= VEC_LANES, a += VEC_LANES, b += VEC_LANES)
		vec_fma8(acc, a, b);
	for (j = 0; j < n; j++)
		tail += (double)a[j] * (double)b[j];
	return vec_sum8(acc, tail);
}

/*
 * Two passes over r: the row is in L1 for the second, so memory traffic is
 * the same as one fused pass, and each pass is the vectorised dot above
 * (GCC does not SLP-vectorise the fused form at -O2).
 */
static void vec_dot_norm(const float *restrict q, const float *restrict r,
			 uint32_t dim, double *dot, double *rr)
{
	*dot = vec_dot_double(q, r, dim);
	*rr = vec_dot_double(r, r, dim);
}

double vec_cos_from(double dot, double aa, double bb)
{
	double s;

	/* numpy gives 0/0 = nan here; a zero vector is simply unrelated */
	if (aa == 0 || bb == 0)
		return 0.0;
	s = dot / (sqrt(aa) * sqrt(bb));
	return s == 0 ? 0.0 : s; /* -0.0 -> 0.0 */
}

double vec_cosine(const float *a, const float *b, uint32_t dim)
{
	double ab, bb;

	vec_dot_norm(a, b, dim, &ab, &bb);
	return vec_cos_from(ab, vec_dot_double(a, a, dim), bb);
}

double vec_score_double(const float *query, double qq, const float *row,
			uint32_t dim)
{
	double dot, rr;

	vec_dot_norm(query, row, dim, &dot, &rr);
	return vec_cos_from(dot, qq, rr);
}

/* --- shared checks and results ------------------------------------------- */

void vec_hits_free(struct vec_hit *hits, size_t n)
{
	size_t i;

	if (!hits)
		return;
	for (i = 0; i < n; i++)
		free(hits[i].key);
	free(hits);
}

int vec_check(const struct engine_vecs *v, const float *query, uint32_t dim,
	      struct vec_hit **hits, size_t *n, double *qq)
{
	uint32_t i;

	if (!hits || !n)
		return -EINVAL;
	*hits = NULL;
	*n = 0;
	if (!v || !query || dim == 0 || v->dim != dim ||
	    (v->nblocks && !v->blocks))
		return -EINVAL;
	for (i = 0; i < dim; i++)
		if (!isfinite(query[i]))
			return -EINVAL;
	*qq = vec_dot_double(query, query, dim);
	return 0;
}

size_t vec_rows(const struct engine_vecs *v)
{
	size_t b, rows = 0;

	for (b = 0; b < v->nblocks; b++)
		rows += v->blocks[b].n;
	return rows;
}

int vec_emit(const struct vec_cand *cands, size_t m, struct vec_hit **hits,
	     size_t *n)
{
	struct vec_hit *out;
	size_t i;

	if (m == 0)
		return 0;
	out = calloc(m, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (i = 0; i < m; i++) {
		out[i].key = strdup(cands[i].key);
		if (!out[i].key) {
			vec_hits_free(out, i);
			return -ENOMEM;
		}
		/* -0.0 (e.g. 0 * a negative similarity) prints oddly */
		out[i].score = cands[i].score == 0 ? 0.0 : cands[i].score;
	}
	*hits = out;
	*n = m;
	return 0;
}

/* --- top-k --------------------------------------------------------------- */

int vec_topk_better(const struct vec_cand *a, const struct vec_cand *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	return strcmp(a->key, b->key) > 0;
}

int vec_topk_cmp(const void *pa, const void *pb)
{
	const struct vec_cand *a = pa, *b = pb;

	return vec_topk_better(b, a) - vec_topk_better(a, b);
}

/* Min-heap on vec_topk_better: heap[0] is the worst kept candidate. */
static void vec_heap_down(struct vec_cand *heap, size_t len, size_t i)
{
	struct vec_cand x = heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= len)
			break;
		if (c + 1 < len && vec_topk_better(&heap[c], &heap[c + 1]))
			c++;
		if (!vec_topk_better(&x, &heap[c]))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = x;
}

static void vec_heap_up(struct vec_cand *heap, size_t i)
{
	struct vec_cand x = heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!vec_topk_better(&heap[p], &x))
			break;
		heap[i] = heap[p];
		i = p;
	}
	heap[i] = x;
}

/* The reference: every row scored in double (vec_check already done). */
int vec_topk_double(const struct engine_vecs *v, const float *query, double qq,
		    uint32_t dim, size_t k, vec_filter_fn *filter, void *arg,
		    struct vec_hit **hits, size_t *n)
{
	struct vec_cand *heap;
	size_t cap, len = 0, b, i;
	int rc = 0;

	cap = vec_rows(v);
	if (k < cap)
		cap = k;
	if (cap == 0)
		return 0;
	heap = malloc(cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;

	for (b = 0; b < v->nblocks; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];

		for (i = 0; blk->keys && i < blk->n; i++) {
			struct vec_cand c = { .key = blk->keys[i] };
			if (!c.key)
				continue;
			if (filter) {
				rc = filter(arg, c.key);
				if (rc < 0)
					goto out_heap;
				if (rc == 0)
					continue;
			}
			c.score = vec_score_double(
				query, qq, blk->data + i * (size_t)dim, dim);
			if (isnan(c.score))
				continue;
			if (len < cap) {
				heap[len] = c;
				vec_heap_up(heap, len++);
			} else if (vec_topk_better(&c, &heap[0])) {
				heap[0] = c;
				vec_heap_down(heap, len, 0);
			}
		}
	}
	qsort(heap, len, sizeof(*heap), vec_topk_cmp);
	rc = vec_emit(heap, len, hits, n);
out_heap:
	free(heap);
	return rc;
}

/* --- MMR ----------------------------------------------------------------- */

struct vec_mmr_row {
	const float *row;
	const char *key;
	double sim; /* cosine with the query */
	double rr;  /* |row|^2 */
};

/* Strictly better MMR score, ties to the smaller key. */
static int vec_mmr_better(double s, const char *key, double best,
			  const char *best_key)
{
	if (!best_key || s > best)
		return 1;
	return s == best && strcmp(key, best_key) < 0;
}

/* Collects the rows that pass the filter and score a number. */
static int vec_mmr_collect(const struct engine_vecs *v, const float *query,
			   double qq, vec_filter_fn *filter, void *arg,
			   struct vec_mmr_row **rows, size_t *nrows)
{
	struct vec_mmr_row *out;
	size_t total = vec_rows(v), m = 0, b, i;
	int rc;

	*rows = NULL;
	*nrows = 0;
	if (total == 0)
		return 0;
	out = malloc(total * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (b = 0; b < v->nblocks; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];

		for (i = 0; blk->keys && i < blk->n; i++) {
			struct vec_mmr_row r = {
				.row = blk->data + i * (size_t)v->dim,
				.key = blk->keys[i],
			};
			double dot;

			if (!r.key)
				continue;
			if (filter) {
				rc = filter(arg, r.key);
				if (rc < 0) {
					free(out);
					return rc;
				}
				if (rc == 0)
					continue;
			}
			vec_dot_norm(query, r.row, v->dim, &dot, &r.rr);
			r.sim = vec_cos_from(dot, qq, r.rr);
			if (isnan(r.sim))
				continue;
			out[m++] = r;
		}
	}
	*rows = out;
	*nrows = m;
	return 0;
}

int vec_mmr(const struct engine_vecs *v, const float *query, uint32_t dim,
	    size_t k, double threshold, vec_filter_fn *filter, void *arg,
	    struct vec_hit **hits, size_t *n)
{
	struct vec_mmr_row *rows;
	struct vec_cand *picks;
	size_t nrows, m, npicks = 0, left, i, best_i;
	double qq;
	int rc;

	rc = vec_check(v, query, dim, hits, n, &qq);
	if (rc)
		return rc;
	if (!isfinite(threshold))
		return -EINVAL;
	if (k == 0)
		return 0;
	rc = vec_mmr_collect(v, query, qq, filter, arg, &rows, &nrows);
	if (rc || nrows == 0)
		return rc;
	m = k < nrows ? k : nrows;
	picks = malloc(m * sizeof(*picks));
	if (!picks) {
		free(rows);
		return -ENOMEM;
	}

	/* first pick: the best threshold * similarity */
	best_i = 0;
	for (i = 1; i < nrows; i++)
		if (vec_mmr_better(threshold * rows[i].sim, rows[i].key,
				   threshold * rows[best_i].sim,
				   rows[best_i].key))
			best_i = i;
	left = nrows;
	for (;;) {
		struct vec_mmr_row last = rows[best_i];
		const char *best_key = NULL;
		double best = 0;

		if (npicks == 0)
			picks[npicks].score = threshold * last.sim;
		/* remaining rows stay in rows[0..left) */
		picks[npicks++].key = last.key;
		rows[best_i] = rows[--left];
		if (npicks == m)
			break;
		for (i = 0; i < left; i++) {
			double dot, s;

			/* overlap with the LAST pick only, as LlamaIndex */
			dot = vec_dot_double(rows[i].row, last.row, dim);
			s = threshold * rows[i].sim -
			    (1 - threshold) *
				    vec_cos_from(dot, rows[i].rr, last.rr);
			if (vec_mmr_better(s, rows[i].key, best, best_key)) {
				best = s;
				best_key = rows[i].key;
				best_i = i;
			}
		}
		picks[npicks].score = best;
	}
	rc = vec_emit(picks, npicks, hits, n);
	free(picks);
	free(rows);
	return rc;
}
