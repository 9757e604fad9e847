/* vec_int.h - internals shared by core/vec*.c only; other modules use vec.h. */
#ifndef LODEFS_VEC_INT_H
#define LODEFS_VEC_INT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Scoring kernels.  This is the seam for runtime dispatch: vec_kernel_get()
 * returns the portable kernel today; an AVX2 / AVX-512 kernel chosen with
 * __builtin_cpu_supports() and a variant taking precomputed row norms go
 * here without touching the callers.  Kernels accumulate in double so that
 * every kernel rounds the same way up to summation order.
 */
struct vec_kernel {
	const char *name;
	/* sum of a[i] * b[i] */
	double (*dot)(const float *restrict a, const float *restrict b,
		      uint32_t dim);
	/* *dot = sum q[i] * r[i] and *rr = sum r[i] * r[i], reading r once */
	void (*dot_norm)(const float *restrict q, const float *restrict r,
			 uint32_t dim, double *dot, double *rr);
};

const struct vec_kernel *vec_kernel_get(void);

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

#endif /* LODEFS_VEC_INT_H */
