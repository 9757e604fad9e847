/* vec_int.h - internals shared by core/vec*.c only; other modules use vec.h. */
#ifndef LODEFS_VEC_INT_H
#define LODEFS_VEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/vec.h"

/*
 * float32 ranking kernels (core/vec_simd.c), one per instruction set, the
 * best the CPU runs chosen at first use (LODEFS_VEC_KERNEL or
 * vec_kernel_select override).  They only rank: exact scores come from
 * vec_dot_double, the same on every machine.
 */
struct vec_kernel {
	const char *name; /* "avx512", "avx2", "generic" */
	/* out[j] = sum q[i] * rows[j * dim + i], for j < n */
	void (*dots)(const float *q, const float *rows, size_t n, uint32_t dim,
		     float *out);
	/* out[j] = sum rows[j * dim + i]^2, for j < n */
	void (*norms)(const float *rows, size_t n, uint32_t dim, float *out);
	/* both at once, each row read once (and the next ones prefetched) */
	void (*dots_norms)(const float *q, const float *rows, size_t n,
			   uint32_t dim, float *dots, float *norms);
};

const struct vec_kernel *vec_kernel_get(void);

/*
 * int8 kernels (core/vec_simd.c): out[j] = sum rows[j * stride + i] * q[i]
 * for i < stride, exact in int32, rows unsigned and q signed (as
 * vpdpbusd takes them).  stride is a multiple of 64.  The one in use
 * follows the float32 kernel (vec_kernel_select).
 */
typedef void vec_q8_dots_fn(const int8_t *q, const uint8_t *rows, size_t n,
			    size_t stride, int32_t *out);
vec_q8_dots_fn *vec_q8_kernel(void);
/* Rows z has coded since it was made (tests: what an update costs). */
uint64_t vec_q8_coded(struct vec_q8 *z);

/*
 * The filter's verdict on every live row of v, before any is scored:
 * (*allow)[b] bit i set = row i of block b passes (NULL for a block
 * without rows).  0, -ENOMEM or the filter's error; free with
 * vec_allow_free(*allow, v->nblocks) either way.
 */
int vec_allow_make(const struct engine_vecs *v, vec_filter_fn *filter,
		   void *arg, uint8_t ***allow);
void vec_allow_free(uint8_t **allow, size_t nblocks);
/* 1 if any of bits [from, from + n) is set. */
int vec_bits_any(const uint8_t *bits, size_t from, size_t n);

/*
 * sum a[i] * b[i] in double with a fixed summation order (eight lanes,
 * then pairwise), so the result does not depend on compiler or CPU: the
 * scores SimpleVectorStore parity is checked against.
 */
double vec_dot_double(const float *restrict a, const float *restrict b,
		      uint32_t dim);

/* The exact score of one row: vec_cos_from over vec_dot_double. */
double vec_score_double(const float *query, double qq, const float *row,
			uint32_t dim);

/* A row found by a search: key borrowed from the view. */
struct vec_cand {
	const char *key;
	double score;
};

/* LlamaIndex's (score, id) tuple order: 1 if a beats b. */
int vec_topk_better(const struct vec_cand *a, const struct vec_cand *b);
/* qsort comparator: best first by vec_topk_better. */
int vec_topk_cmp(const void *pa, const void *pb);
/* Copies cands[0..m) into a new hit array (*hits, *n); 0 or -ENOMEM. */
int vec_emit(const struct vec_cand *cands, size_t m, struct vec_hit **hits,
	     size_t *n);
/* Argument checks shared by the searches: 0 and *qq = |q|^2, or -EINVAL. */
int vec_check(const struct engine_vecs *v, const float *query, uint32_t dim,
	      struct vec_hit **hits, size_t *n, double *qq);
/* Live-or-dead rows over all blocks. */
size_t vec_rows(const struct engine_vecs *v);
/*
 * The scan in double over every row (the reference vec_topk is checked
 * against, and the path for a zero query, where every score is 0.0).
 */
int vec_topk_double(const struct engine_vecs *v, const float *query, double qq,
		    uint32_t dim, size_t k, vec_filter_fn *filter, void *arg,
		    struct vec_hit **hits, size_t *n);

/*
 * Tests only: the next coalescing leader on a collection waits (up to a
 * few seconds) until `n` queries on it are queued before it scans, so
 * that a test can make coalescing happen without relying on timing.  0
 * turns it off.
 */
void vec_coalesce_hold(size_t n);

/* dot / (sqrt(aa) * sqrt(bb)), 0.0 if aa or bb is 0, never -0.0. */
double vec_cos_from(double dot, double aa, double bb);

/* --- UTF-8 --------------------------------------------------------------- */

/*
 * Decodes the sequence at s[i] (i < len): stores the code point in *cp and
 * returns its length; an invalid or truncated sequence (overlong,
 * surrogate, > U+10FFFF) gives *cp = VEC_UTF8_BAD and length 1.
 */
#define VEC_UTF8_BAD 0xFFFFFFFFu
size_t vec_utf8_next(const unsigned char *s, size_t len, size_t i,
		     uint32_t *cp);

/* Encodes cp (<= U+10FFFF) into out[0..3]; returns the length. */
size_t vec_utf8_put(uint32_t cp, unsigned char *out);

/*
 * Simple lowercase mapping: ASCII, Latin-1, Latin Extended-A and
 * Additional, Greek, Cyrillic, Armenian, fullwidth Latin, a few letterlike
 * symbols.  Other code points map to themselves.
 */
uint32_t vec_cp_lower(uint32_t cp);

/* 1 if cp belongs to a word: ASCII [A-Za-z0-9] or a non-ASCII letter. */
int vec_cp_is_word(uint32_t cp);

/*
 * Lowercases n bytes of UTF-8 into out, which must hold 2 * n bytes (U+0130
 * grows from 2 to 3 bytes, as in Python); invalid bytes are copied.
 * Returns the length written.
 */
size_t vec_utf8_lower(const char *s, size_t n, char *out);

/*
 * Defines `static void name(type *c, size_t n, size_t k)`: rearranges c
 * so that c[k - 1] holds the element with the k-th largest float `field`
 * (1 <= k <= n), by quickselect.  A macro, not a function over void *, so
 * that each candidate type keeps its own inlined comparisons and swaps
 * (the exact scan and the int8 pass prune with it as they go).
 */
#define VEC_DEFINE_SELECT(name, type, field)                       \
	static void name(type *c, size_t n, size_t k)              \
	{                                                          \
		size_t lo = 0, hi = n - 1, want = k - 1;           \
                                                                   \
		while (lo < hi) {                                  \
			float pivot = c[lo + (hi - lo) / 2].field; \
			size_t i = lo, j = hi;                     \
                                                                   \
			while (i <= j) {                           \
				while (c[i].field > pivot)         \
					i++;                       \
				while (c[j].field < pivot)         \
					j--;                       \
				if (i <= j) {                      \
					type t = c[i];             \
                                                                   \
					c[i] = c[j];               \
					c[j] = t;                  \
					i++;                       \
					if (j == 0)                \
						break;             \
					j--;                       \
				}                                  \
			}                                          \
			if (want <= j)                             \
				hi = j;                            \
			else if (want >= i)                        \
				lo = i;                            \
			else                                       \
				break;                             \
		}                                                  \
	}

#endif /* LODEFS_VEC_INT_H */
