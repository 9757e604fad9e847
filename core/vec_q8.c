/* vec_q8.c - exact top-k of large namespaces: an int8 first pass, rescored. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/vec.h"
#include "core/vec_int.h"

/*
 * The scan of vec_topk reads every float32 row (1.5 KiB at 384 dims) and
 * is bound by memory bandwidth.  Here an int8 copy of the rows, a quarter
 * of the bytes, is read instead, and only the rows that can belong to the
 * top k are read in float32, to be rescored exactly as vec_topk does.
 *
 * Codes.  Row r (float32, dim d), in double: u = r / |r|, m = max |u_i|,
 * a = m / 127 rounded to float (the row's step), c_i = round(u_i / a) in
 * [-127, 127], stored as c_i + 128 (unsigned, as vpdpbusd wants it), and
 * e = |u - a c| (the residual's norm) rounded up to float.  The query
 * likewise: Q = b C, residual norm f, signed codes.
 *
 * Bound.  With R = a c the row's dequantised unit vector and q^ the unit
 * query: q^.u - Q.R = q^.(u - R) + (q^ - Q).R, so by Cauchy-Schwarz
 * |q^.u - Q.R| <= e + f |R| <= e + f (1 + e).  Q.R = a b sum C c is exact
 * in integers; the float arithmetic turning it into a score and a bound
 * (a few roundings of numbers below 4: under 3e-6) and the distance of
 * the reference (vec_score_double, double sums over float products) from
 * the true cosine (under 1e-11 up to 65536 dims) are covered by VEC_Q8_EPS.
 * So each row gets lo <= exact score <= hi.  A row whose hi is below the
 * k-th best lo among eligible rows scores strictly below the k-th best
 * exact score and cannot be in the top k, ties included; every other row
 * is rescored in double, so answers are those of vec_topk bit for bit.
 * Rows whose |r|^2 (double, exact products) is 0, not finite, below 1e-60
 * or above 1e60 get no codes (a = 0) and are always rescored, as vec_topk
 * does with untrusted norms.
 *
 * Keeping the copy in step.  Engine blocks are not append-only: a put
 * overwrites its key's row in place, a delete frees the row (keys[i] =
 * NULL) and a later put reuses it, blocks grow by realloc, and a
 * checkpoint replaces every block with the packed rows of the checkpoint
 * (eng_vec_compact: rows move, key strings stay) without any observer
 * call; a refresh or reload comes as observed puts.  So the copy relies on
 * two facts instead of block addresses: (1) view row i holds the vector of
 * the key whose string is keys[i], and a key string is not moved while its
 * key lives (a checkpoint moves rows, not key strings); (2) every change of
 * a key's vector is an observed put naming the key string keys[] will hold
 * (vec_q8_observe).  Each coded row remembers the key pointer it was coded
 * for (kp); at each search, under the engine's read lock, every row whose
 * keys[i] differs from kp[i] (moved, reused, appended, revived) is coded
 * again, and so is the row of every key observed since the last search
 * (found through the row pointer the observer gave, else by a pass over
 * the keys).  Comparing the key arrays costs 16 bytes per row, 4% of the
 * int8 pass at 384 dims; nothing depends on block addresses, which
 * malloc may reuse.
 */

/* Covers float rounding and the reference's own error: see above. */
#define VEC_Q8_EPS 1e-5f
/* Rows per tile: 64 rows of codes (24 KiB at 384 dims) stay in L1/L2. */
#define VEC_Q8_TILE 64
/* Codes are padded to this: the kernels need no tail. */
#define VEC_Q8_ALIGN 64
/* Larger dims could overflow the int32 sums (255 * 127 * 65536 < 2^31). */
#define VEC_Q8_DIM_MAX 65536
/* Rows of |r|^2 outside [MIN, MAX] are always rescored. */
#define VEC_Q8_NORM_MIN 1e-60
#define VEC_Q8_NORM_MAX 1e60

struct vec_q8_dirty {
	const char *key;
	const float *row; /* NULL: a delete */
};

struct vec_q8 {
	/* searches: read; bringing the copy up to date: write */
	pthread_rwlock_t lock;
	uint32_t dim;
	size_t stride; /* bytes of codes per row */
	size_t rows;   /* rows coded (global index over the blocks) */
	size_t cap;
	uint8_t *codes;
	float *step;	 /* a; 0: the row is always rescored */
	float *err;	 /* e */
	const char **kp; /* key each row was coded for (NULL: none) */
	size_t live;	 /* live rows at the last update */
	/* observed changes since the last update (dlock) */
	pthread_mutex_t dlock;
	struct vec_q8_dirty *dirty;
	size_t ndirty, dcap;
	size_t dels;
	int full;	/* too many changes: code every row again */
	uint64_t coded; /* rows coded so far (tests) */
};

static _Atomic int vec_q8_mode_cur = -2; /* -2: not read from env yet */

int vec_q8_mode(int mode)
{
	int old = vec_q8_mode_cur;

	if (old == -2) {
		const char *env = getenv("LODEFS_VEC_Q8");

		old = env && *env ? (atoi(env) ? 1 : 0) : -1;
	}
	vec_q8_mode_cur = mode < -1 ? -1 : mode > 1 ? 1 : mode;
	return old;
}

static int vec_q8_mode_get(void)
{
	int m = vec_q8_mode_cur;

	if (m == -2) {
		m = vec_q8_mode(-1);
		vec_q8_mode_cur = m;
	}
	return m;
}

int vec_q8_new(struct vec_q8 **out)
{
	struct vec_q8 *z = calloc(1, sizeof(*z));

	*out = NULL;
	if (!z)
		return -ENOMEM;
	pthread_rwlock_init(&z->lock, NULL);
	pthread_mutex_init(&z->dlock, NULL);
	*out = z;
	return 0;
}

/* Drops the codes (the copy is then rebuilt from nothing). */
static void vec_q8_clear(struct vec_q8 *z)
{
	free(z->codes);
	free(z->step);
	free(z->err);
	free(z->kp);
	z->codes = NULL;
	z->step = z->err = NULL;
	z->kp = NULL;
	z->rows = z->cap = 0;
	z->dim = 0;
	z->stride = 0;
}

void vec_q8_free(struct vec_q8 *z)
{
	if (!z)
		return;
	vec_q8_clear(z);
	free(z->dirty);
	pthread_rwlock_destroy(&z->lock);
	pthread_mutex_destroy(&z->dlock);
	free(z);
}

void vec_q8_observe(struct vec_q8 *z, const char *key, const float *row)
{
	if (!z || !key)
		return;
	pthread_mutex_lock(&z->dlock);
	if (!z->rows || z->full)
		goto out; /* nothing coded yet, or everything will be */
	if (!row) {
		/*
		 * A dead row is never a candidate (keys[i] is NULL); when
		 * (nearly) every coded row died, the collection was emptied
		 * or dropped: give the memory back.
		 */
		if (++z->dels >= z->live) {
			z->full = 2;
			pthread_mutex_unlock(&z->dlock);
			/* no search runs: the caller holds the write lock */
			pthread_rwlock_wrlock(&z->lock);
			vec_q8_clear(z);
			pthread_rwlock_unlock(&z->lock);
			return;
		}
		goto out;
	}
	if (z->ndirty == z->dcap) {
		size_t cap = z->dcap ? 2 * z->dcap : 64;
		struct vec_q8_dirty *d;

		if (z->ndirty >= 4096 && z->ndirty >= z->rows / 16) {
			/* cheaper to code every row again */
			z->full = 1;
			z->ndirty = 0;
			goto out;
		}
		d = realloc(z->dirty, cap * sizeof(*d));
		if (!d) {
			z->full = 1;
			z->ndirty = 0;
			goto out;
		}
		z->dirty = d;
		z->dcap = cap;
	}
	z->dirty[z->ndirty].key = key;
	z->dirty[z->ndirty++].row = row;
out:
	pthread_mutex_unlock(&z->dlock);
}

/*
 * x rounded half away from zero and clamped to [-127, 127].  Any integer
 * would do (the residual is measured from the code chosen); this one
 * compiles to a truncating conversion, not a libm call.
 */
static inline double vec_q8_round(double x)
{
	x = x > 127 ? 127 : x < -127 ? -127 : x;
	return (double)(int)(x + (x >= 0 ? 0.5 : -0.5));
}

/* Codes row r into codes / *step / *err (see the comment at the top). */
static void vec_q8_code(const float *r, uint32_t dim, size_t stride,
			uint8_t *codes, float *step, float *err)
{
	/*
	 * Eight independent lanes, so that GCC vectorises the sums (a
	 * single double accumulator is a chain of dependent adds).
	 */
	double t[8] = { 0 }, rr, inv, a, ia, e2;
	float mx[8] = { 0 }, m = 0;
	uint32_t i, l, full = dim - dim % 8;

	for (i = 0; i < full; i += 8)
		for (l = 0; l < 8; l++) {
			float x = fabsf(r[i + l]);

			t[l] += (double)x * x;
			mx[l] = x > mx[l] ? x : mx[l];
		}
	for (; i < dim; i++) {
		float x = fabsf(r[i]);

		t[0] += (double)x * x;
		mx[0] = x > mx[0] ? x : mx[0];
	}
	rr = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
	for (l = 0; l < 8; l++)
		m = mx[l] > m ? mx[l] : m;
	memset(codes + dim, 128, stride - dim);
	if (!(rr >= VEC_Q8_NORM_MIN && rr <= VEC_Q8_NORM_MAX)) {
		memset(codes, 128, dim);
		*step = 0;
		*err = 0;
		return;
	}
	inv = 1.0 / sqrt(rr);
	a = (float)(m * inv / 127);
	ia = 1.0 / a;
	memset(t, 0, sizeof(t));
	for (i = 0; i < full; i += 8)
		for (l = 0; l < 8; l++) {
			double u = r[i + l] * inv, c = vec_q8_round(u * ia);
			double d = u - c * a;

			t[l] += d * d;
			codes[i + l] = (uint8_t)(int)(c + 128);
		}
	for (; i < dim; i++) {
		double u = r[i] * inv, c = vec_q8_round(u * ia), d;

		d = u - c * a;
		t[0] += d * d;
		codes[i] = (uint8_t)(int)(c + 128);
	}
	e2 = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
	*step = (float)a;
	*err = nextafterf((float)(sqrt(e2) * (1 + 1e-9)), INFINITY);
}

static int vec_q8_grow(struct vec_q8 *z, size_t rows)
{
	size_t cap = z->cap ? z->cap : 1024;
	void *p;

	while (cap < rows)
		cap *= 2;
	if (cap == z->cap)
		return 0;
	p = realloc(z->codes, cap * z->stride);
	if (!p)
		return -ENOMEM;
	z->codes = p;
	p = realloc(z->step, cap * sizeof(*z->step));
	if (!p)
		return -ENOMEM;
	z->step = p;
	p = realloc(z->err, cap * sizeof(*z->err));
	if (!p)
		return -ENOMEM;
	z->err = p;
	p = realloc(z->kp, cap * sizeof(*z->kp));
	if (!p)
		return -ENOMEM;
	z->kp = p;
	z->cap = cap;
	return 0;
}

/* Forgets the code of every row of v whose key is in keys[0..n). */
static int vec_q8_forget_keys(struct vec_q8 *z, const struct engine_vecs *v,
			      const char **keys, size_t n)
{
	size_t cap = 16, b, i, g = 0, h;
	const char **set;

	while (cap < 2 * n)
		cap *= 2;
	set = calloc(cap, sizeof(*set));
	if (!set)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		for (h = ((uintptr_t)keys[i] >> 4) & (cap - 1); set[h];
		     h = (h + 1) & (cap - 1))
			if (set[h] == keys[i])
				break;
		set[h] = keys[i];
	}
	for (b = 0; b < v->nblocks; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];

		for (i = 0; i < blk->n; i++, g++) {
			const char *k = blk->keys ? blk->keys[i] : NULL;

			if (!k)
				continue;
			for (h = ((uintptr_t)k >> 4) & (cap - 1); set[h];
			     h = (h + 1) & (cap - 1))
				if (set[h] == k) {
					z->kp[g] = NULL;
					break;
				}
		}
	}
	free(set);
	return 0;
}

/*
 * Brings z up to date with v (caller: z->lock for writing, the engine's
 * read lock, so that no observer call runs meanwhile).
 */
static int vec_q8_update(struct vec_q8 *z, const struct engine_vecs *v)
{
	struct vec_q8_dirty *dirty;
	const char **left = NULL;
	size_t ndirty, nleft = 0, total = 0, b, i, g, d;
	int full, rc = 0;

	for (b = 0; b < v->nblocks; b++)
		total += v->blocks[b].n;
	pthread_mutex_lock(&z->dlock);
	dirty = z->dirty;
	ndirty = z->ndirty;
	full = z->full;
	z->dirty = NULL;
	z->ndirty = z->dcap = 0;
	z->full = 0;
	z->dels = 0;
	pthread_mutex_unlock(&z->dlock);

	if (z->dim != v->dim || full == 2)
		vec_q8_clear(z);
	if (!z->dim) {
		z->dim = v->dim;
		z->stride = (v->dim + VEC_Q8_ALIGN - 1) / VEC_Q8_ALIGN *
			    VEC_Q8_ALIGN;
	}
	rc = vec_q8_grow(z, total);
	if (rc)
		goto out;
	if (total > z->rows)
		memset(z->kp + z->rows, 0, (total - z->rows) * sizeof(*z->kp));
	z->rows = total;
	if (full) {
		memset(z->kp, 0, total * sizeof(*z->kp));
		ndirty = 0;
	}
	/* the row each changed key was put in, if it is still there */
	for (d = 0; d < ndirty; d++) {
		const float *p = dirty[d].row;
		int found = 0;

		for (b = 0, g = 0; b < v->nblocks && !found; b++) {
			const struct engine_vec_block *blk = &v->blocks[b];

			if (blk->n && blk->keys && p >= blk->data &&
			    p < blk->data + blk->n * (size_t)v->dim &&
			    (size_t)(p - blk->data) % v->dim == 0) {
				i = (size_t)(p - blk->data) / v->dim;
				if (blk->keys[i] == dirty[d].key) {
					z->kp[g + i] = NULL;
					found = 1;
				}
			}
			g += blk->n;
		}
		if (!found) {
			if (!left) {
				left = malloc(ndirty * sizeof(*left));
				if (!left) {
					rc = -ENOMEM;
					goto out;
				}
			}
			left[nleft++] = dirty[d].key;
		}
	}
	if (nleft) {
		rc = vec_q8_forget_keys(z, v, left, nleft);
		if (rc)
			goto out;
	}
	/* every row whose key is not the one it was coded for */
	for (b = 0, g = 0; b < v->nblocks; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];
		const char *const *keys = blk->keys;

		if (!keys) {
			memset(z->kp + g, 0, blk->n * sizeof(*z->kp));
		} else if (memcmp(keys, z->kp + g, blk->n * sizeof(*keys))) {
			for (i = 0; i < blk->n; i++) {
				if (keys[i] == z->kp[g + i])
					continue;
				z->kp[g + i] = keys[i];
				if (!keys[i])
					continue;
				vec_q8_code(blk->data + i * (size_t)v->dim,
					    v->dim, z->stride,
					    z->codes + (g + i) * z->stride,
					    &z->step[g + i], &z->err[g + i]);
				z->coded++;
			}
		}
		g += blk->n;
	}
	pthread_mutex_lock(&z->dlock);
	z->live = v->live;
	pthread_mutex_unlock(&z->dlock);
out:
	if (rc) {
		/* start again from nothing next time */
		vec_q8_clear(z);
	}
	free(left);
	free(dirty);
	return rc;
}

uint64_t vec_q8_coded(struct vec_q8 *z)
{
	uint64_t n;

	pthread_rwlock_rdlock(&z->lock);
	n = z->coded;
	pthread_rwlock_unlock(&z->lock);
	return n;
}

/* --- the search ----------------------------------------------------------- */

struct vec_q8_cand {
	const float *row;
	const char *key;
	float hi, lo; /* bounds on the exact score */
};

struct vec_q8_run {
	struct vec_query *q;
	double qq;
	int8_t *qc;   /* stride codes */
	int32_t qoff; /* 128 * sum qc: the rows' +128 taken back */
	float qstep;  /* b */
	float qerr;   /* f */
	float thr;    /* rows whose hi is below are not candidates */
	struct vec_q8_cand *cand;
	size_t len, cap;
	struct vec_q8_cand *odd; /* always rescored */
	size_t nodd, capodd;
	uint8_t **allow;
	int active, want;
};

VEC_DEFINE_SELECT(vec_q8_select, struct vec_q8_cand, lo)

/* The k-th largest lo (1 <= k <= n), which c[k - 1] then holds. */
static float vec_q8_lo_at(struct vec_q8_cand *c, size_t n, size_t k)
{
	vec_q8_select(c, n, k);
	return c[k - 1].lo;
}

/* thr = the k-th best lo; drops candidates whose hi is below it. */
static int vec_q8_prune(struct vec_q8_run *r)
{
	size_t k = r->q->k, i, m = 0;

	if (r->len > k) {
		float t = vec_q8_lo_at(r->cand, r->len, k);

		if (t > r->thr)
			r->thr = t;
		for (i = 0; i < r->len; i++)
			if (r->cand[i].hi >= r->thr)
				r->cand[m++] = r->cand[i];
		r->len = m;
	}
	if (r->len * 2 >= r->cap) {
		struct vec_q8_cand *c =
			realloc(r->cand, 2 * r->cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		r->cand = c;
		r->cap *= 2;
	}
	return 0;
}

static void vec_q8_run_free(struct vec_q8_run *r, size_t nblocks)
{
	free(r->qc);
	free(r->cand);
	free(r->odd);
	vec_allow_free(r->allow, nblocks);
}

static int vec_q8_run_init(struct vec_q8_run *r, struct vec_query *q,
			   const struct engine_vecs *v, uint32_t dim,
			   size_t stride, size_t rows)
{
	double inv, m = 0, b, ib, f2 = 0;
	int32_t sum = 0;
	uint32_t i;

	memset(r, 0, sizeof(*r));
	r->q = q;
	q->rc = vec_check(v, q->query, dim, &q->hits, &q->n, &r->qq);
	if (q->rc || q->k == 0 || rows == 0)
		return 0;
	if (r->qq == 0) {
		/* every score is 0.0: the order is the key order alone */
		q->rc = vec_topk_double(v, q->query, r->qq, dim, q->k,
					q->filter, q->arg, &q->hits, &q->n);
		return 0;
	}
	r->qc = calloc(stride, 1);
	r->cap = 2 * (q->k < rows ? q->k : rows) + 256;
	r->cand = malloc(r->cap * sizeof(*r->cand));
	if (!r->qc || !r->cand)
		return q->rc = -ENOMEM;
	/* the query's codes, as a row's (vec_q8_code) but signed */
	inv = 1.0 / sqrt(r->qq);
	for (i = 0; i < dim; i++) {
		double u = fabs(q->query[i] * inv);

		if (u > m)
			m = u;
	}
	b = (float)(m / 127);
	ib = 1.0 / b;
	for (i = 0; i < dim; i++) {
		double u = q->query[i] * inv, c = vec_q8_round(u * ib), d;

		d = u - c * b;
		f2 += d * d;
		r->qc[i] = (int8_t)c;
		sum += (int32_t)c;
	}
	r->qoff = 128 * sum;
	r->qstep = (float)b;
	r->qerr = nextafterf((float)(sqrt(f2) * (1 + 1e-9)), INFINITY);
	r->thr = -INFINITY;
	if (q->filter) {
		q->rc = vec_allow_make(v, q->filter, q->arg, &r->allow);
		if (q->rc)
			return q->rc;
	}
	r->active = 1;
	return 0;
}

static int vec_q8_push(struct vec_q8_cand **arr, size_t *n, size_t *cap,
		       const float *row, const char *key, float hi, float lo)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct vec_q8_cand *p = realloc(*arr, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = c;
	}
	(*arr)[*n].row = row;
	(*arr)[*n].key = key;
	(*arr)[*n].hi = hi;
	(*arr)[(*n)++].lo = lo;
	return 0;
}

/* Bounds rows [first, first + n) of block blk (codes from global g). */
static int vec_q8_run_tile(struct vec_q8_run *r, const struct vec_q8 *z,
			   const struct engine_vec_block *blk,
			   const uint8_t *allow, size_t first, size_t g,
			   size_t n, const int32_t *dots)
{
	const uint32_t dim = z->dim;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		size_t row = first + i;
		float a = z->step[g + i], e, s, bnd, hi;

		if (a == 0) {
			/* no codes: always rescored */
			if (!blk->keys[row] ||
			    (allow && !(allow[row / 8] >> (row % 8) & 1)))
				continue;
			rc = vec_q8_push(&r->odd, &r->nodd, &r->capodd,
					 blk->data + row * (size_t)dim,
					 blk->keys[row], 0, 0);
			if (rc)
				return rc;
			continue;
		}
		e = z->err[g + i];
		s = (float)(dots[i] - r->qoff) * (a * r->qstep);
		bnd = e + r->qerr * (1 + e) + VEC_Q8_EPS;
		hi = s + bnd;
		if (!(hi >= r->thr))
			continue;
		if (!blk->keys[row] ||
		    (allow && !(allow[row / 8] >> (row % 8) & 1)))
			continue;
		if (r->len == r->cap) {
			rc = vec_q8_prune(r);
			if (rc)
				return rc;
			if (!(hi >= r->thr))
				continue;
		}
		r->cand[r->len].row = blk->data + row * (size_t)dim;
		r->cand[r->len].key = blk->keys[row];
		r->cand[r->len].hi = hi;
		r->cand[r->len++].lo = s - bnd;
	}
	return 0;
}

/* Rescoring in double and the final order, exactly as vec_topk. */
static int vec_q8_run_finish(struct vec_q8_run *r, uint32_t dim)
{
	struct vec_query *q = r->q;
	struct vec_cand *all;
	size_t i, m = 0;
	int rc;

	rc = vec_q8_prune(r);
	if (rc)
		return rc;
	all = malloc((r->len + r->nodd + 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (i = 0; i < r->len + r->nodd; i++) {
		const struct vec_q8_cand *c =
			i < r->len ? &r->cand[i] : &r->odd[i - r->len];
		double s;

		if (i < r->len && !(c->hi >= r->thr))
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

/* The scan over z's codes for every query of qs (z read-locked). */
static int vec_q8_scan(const struct vec_q8 *z, const struct engine_vecs *v,
		       struct vec_query *qs, size_t nq)
{
	vec_q8_dots_fn *dots_fn = vec_q8_kernel();
	int32_t dots[VEC_Q8_TILE];
	struct vec_q8_run *runs;
	size_t j, b, g, active = 0;
	int rc = 0;

	runs = calloc(nq ? nq : 1, sizeof(*runs));
	if (!runs) {
		for (j = 0; j < nq; j++)
			qs[j].rc = -ENOMEM;
		return nq ? -ENOMEM : 0;
	}
	for (j = 0; j < nq; j++) {
		vec_q8_run_init(&runs[j], &qs[j], v, z->dim, z->stride,
				z->rows);
		active += runs[j].active;
	}
	for (b = 0, g = 0; active && b < v->nblocks; g += v->blocks[b++].n) {
		const struct engine_vec_block *blk = &v->blocks[b];
		size_t t, n;

		if (!blk->keys)
			continue;
		for (t = 0; t < blk->n && active; t += n) {
			const uint8_t *codes = z->codes + (g + t) * z->stride;
			int needed = 0;

			n = blk->n - t < VEC_Q8_TILE ? blk->n - t : VEC_Q8_TILE;
			for (j = 0; j < nq; j++) {
				struct vec_q8_run *r = &runs[j];
				uint8_t *bits = r->allow ? r->allow[b] : NULL;

				r->want = r->active &&
					  (!r->allow ||
					   (bits && vec_bits_any(bits, t, n)));
				needed |= r->want;
			}
			if (!needed)
				continue;
			for (j = 0; j < nq; j++) {
				struct vec_q8_run *r = &runs[j];

				if (!r->want)
					continue;
				dots_fn(r->qc, codes, n, z->stride, dots);
				r->q->rc = vec_q8_run_tile(
					r, z, blk,
					r->allow ? r->allow[b] : NULL, t, g + t,
					n, dots);
				if (r->q->rc) {
					r->active = 0;
					active--;
				}
			}
		}
	}
	for (j = 0; j < nq; j++) {
		if (runs[j].active)
			qs[j].rc = vec_q8_run_finish(&runs[j], z->dim);
		vec_q8_run_free(&runs[j], v->nblocks);
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

/*
 * Whether the int8 copy pays for v: enough rows, and codes plus per-row
 * data (stride + 16 bytes) at most 30% of the float32 row.
 */
static int vec_q8_worth(const struct engine_vecs *v)
{
	size_t stride, rows = 0, b;
	int mode = vec_q8_mode_get();

	if (mode == 0 || !v || v->dim == 0 || v->dim > VEC_Q8_DIM_MAX)
		return 0;
	if (mode == 1)
		return 1;
	for (b = 0; b < v->nblocks; b++)
		rows += v->blocks[b].n;
	stride = (v->dim + VEC_Q8_ALIGN - 1) / VEC_Q8_ALIGN * VEC_Q8_ALIGN;
	return rows >= VEC_Q8_MIN_ROWS &&
	       (stride + 16) * 10 <= (size_t)v->dim * 4 * 3;
}

int vec_topk_batch_q8(const struct engine_vecs *v, uint32_t dim,
		      struct vec_query *qs, size_t nq, struct vec_q8 *z)
{
	int rc;

	if (!z || !qs || !v || dim != v->dim)
		return vec_topk_batch(v, dim, qs, nq);
	if (!vec_q8_worth(v)) {
		/* give the memory of a copy that no longer pays back */
		if (pthread_rwlock_trywrlock(&z->lock) == 0) {
			vec_q8_clear(z);
			pthread_rwlock_unlock(&z->lock);
		}
		return vec_topk_batch(v, dim, qs, nq);
	}
	pthread_rwlock_wrlock(&z->lock);
	rc = vec_q8_update(z, v);
	pthread_rwlock_unlock(&z->lock);
	if (rc)
		return vec_topk_batch(v, dim, qs, nq);
	/*
	 * Another search of the same view may update z in between: it finds
	 * the same rows (no write runs under the engine's read lock), so z
	 * still matches v.
	 */
	pthread_rwlock_rdlock(&z->lock);
	if (z->dim != dim) {
		pthread_rwlock_unlock(&z->lock);
		return vec_topk_batch(v, dim, qs, nq);
	}
	rc = vec_q8_scan(z, v, qs, nq);
	pthread_rwlock_unlock(&z->lock);
	return rc;
}

/* --- per-store set -------------------------------------------------------- */

struct vec_q8_ent {
	struct vec_q8_ent *next;
	struct vec_q8 *z;
	char coll[];
};

struct vec_q8_set {
	pthread_mutex_t lock;
	struct vec_q8_ent *head;
};

int vec_q8_set_new(struct vec_q8_set **out)
{
	struct vec_q8_set *s = calloc(1, sizeof(*s));

	*out = s;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

void vec_q8_set_free(struct vec_q8_set *s)
{
	struct vec_q8_ent *e;

	if (!s)
		return;
	while ((e = s->head)) {
		s->head = e->next;
		vec_q8_free(e->z);
		free(e);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static struct vec_q8_ent *vec_q8_set_find(struct vec_q8_set *s,
					  const char *coll)
{
	struct vec_q8_ent *e;

	for (e = s->head; e; e = e->next)
		if (strcmp(e->coll, coll) == 0)
			return e;
	return NULL;
}

struct vec_q8 *vec_q8_set_get(struct vec_q8_set *s, const char *coll)
{
	struct vec_q8_ent *e;
	size_t len;

	if (!s || !coll)
		return NULL;
	pthread_mutex_lock(&s->lock);
	e = vec_q8_set_find(s, coll);
	if (!e) {
		len = strlen(coll) + 1;
		e = malloc(sizeof(*e) + len);
		if (e && vec_q8_new(&e->z) == 0) {
			memcpy(e->coll, coll, len);
			e->next = s->head;
			s->head = e;
		} else {
			free(e);
			e = NULL;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return e ? e->z : NULL;
}

void vec_q8_set_observe(struct vec_q8_set *s, const char *coll, const char *key,
			const float *row)
{
	struct vec_q8_ent *e;

	if (!s || !coll)
		return;
	pthread_mutex_lock(&s->lock);
	e = vec_q8_set_find(s, coll);
	pthread_mutex_unlock(&s->lock);
	if (e)
		vec_q8_observe(e->z, key, row);
}
