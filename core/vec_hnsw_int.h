/* vec_hnsw_int.h - internals of core/vec_hnsw*.c; others use vec_hnsw.h. */
#ifndef LODEFS_VEC_HNSW_INT_H
#define LODEFS_VEC_HNSW_INT_H

#include <stddef.h>
#include <stdint.h>

/* dot(q, h): a float32 query against a row of IEEE half floats. */
typedef float hnsw_hdot_fn(const float *q, const uint16_t *h, uint32_t dim);
/* dot(a, b) of two half-float rows. */
typedef float hnsw_hhdot_fn(const uint16_t *a, const uint16_t *b, uint32_t dim);

/* out[i] = hnsw_f2h(row[i] * scale), bit for bit. */
typedef void hnsw_f2h_row_fn(const float *row, float scale, uint16_t *out,
			     uint32_t dim);

/* One family of half-float kernels: "avx512", "avx2" (+F16C), "generic". */
struct hnsw_kern {
	const char *name;
	hnsw_hdot_fn *hdot;
	hnsw_hhdot_fn *hhdot;
	hnsw_f2h_row_fn *f2h_row;
};

/*
 * The family matching vec_kernel_name() (core/vec.h) now: the environment
 * variable LODEFS_VEC_KERNEL or vec_kernel_select() force both the
 * float32 ranking kernels and these.  A graph takes it once, in hnsw_new
 * (and hnsw_load): select before making the graph.
 */
const struct hnsw_kern *hnsw_kern_get(void);

/* The family of that name, NULL if unknown or this CPU cannot run it. */
const struct hnsw_kern *hnsw_kern_find(const char *name);

/* Names of the families this CPU runs, best first; returns how many. */
int hnsw_kern_list(const char **names, size_t max);

/*
 * float -> IEEE half, rounding to nearest even; values below 2^-14 in
 * magnitude flush to zero (sign kept), at or above 65520 (which would
 * round to infinity) saturate to +-65504 (rows are normalised: neither
 * matters).
 */
uint16_t hnsw_f2h(float f);

/* IEEE half -> float, exact for every half hnsw_f2h makes. */
float hnsw_h2f(uint16_t h);

#endif /* LODEFS_VEC_HNSW_INT_H */
