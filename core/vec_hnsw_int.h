/* vec_hnsw_int.h - internals of core/vec_hnsw*.c; others use vec_hnsw.h. */
#ifndef LODEFS_VEC_HNSW_INT_H
#define LODEFS_VEC_HNSW_INT_H

#include <stdint.h>

/* dot(q, h): a float32 query against a row of IEEE half floats. */
typedef float hnsw_hdot_fn(const float *q, const uint16_t *h, uint32_t dim);
/* dot(a, b) of two half-float rows. */
typedef float hnsw_hhdot_fn(const uint16_t *a, const uint16_t *b, uint32_t dim);

/* The fastest kernels this CPU runs (AVX-512, AVX2+F16C, or plain C). */
hnsw_hdot_fn *hnsw_pick_hdot(void);
hnsw_hhdot_fn *hnsw_pick_hhdot(void);

/*
 * float -> IEEE half, rounding to nearest even; values below 2^-14 in
 * magnitude flush to zero, above 65504 saturate (rows are normalised:
 * neither matters).
 */
uint16_t hnsw_f2h(float f);

#endif /* LODEFS_VEC_HNSW_INT_H */
