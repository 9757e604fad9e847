/* vec_hnsw_kern.c - half-float rows and their dot products for vec_hnsw.c. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/vec_hnsw_int.h"

/*
 * Searches compare the query with half-float copies of the normalised
 * rows: half the bytes of float32 to bring from memory, which is what a
 * graph search waits on, for a relative error near 1e-3 on each
 * component.  Rows are normalised, so components are at most 1 in
 * magnitude: no overflow; below 2^-14 they flush to zero.
 */
uint16_t hnsw_f2h(float f)
{
	uint32_t x, sign, m, h, rest;
	int32_t e;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000;
	e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
	m = x & 0x7fffff;
	if (e <= 0)
		return (uint16_t)sign;
	if (e >= 31)
		return (uint16_t)(sign | 0x7bff);
	h = sign | ((uint32_t)e << 10) | (m >> 13);
	rest = m & 0x1fff;
	if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
		h++; /* a carry into the exponent is still right */
	return (uint16_t)h;
}

static float hnsw_h2f(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f;
	uint32_t x = e ? sign | ((e - 15 + 127) << 23) | ((h & 0x3ffu) << 13)
		       : sign; /* never made: subnormals */
	float f;

	memcpy(&f, &x, 4);
	return f;
}

static float hnsw_hdot_c(const float *q, const uint16_t *hv, uint32_t dim)
{
	float s0 = 0, s1 = 0;
	uint32_t i = 0;

	for (; i + 2 <= dim; i += 2) {
		s0 += q[i] * hnsw_h2f(hv[i]);
		s1 += q[i + 1] * hnsw_h2f(hv[i + 1]);
	}
	for (; i < dim; i++)
		s0 += q[i] * hnsw_h2f(hv[i]);
	return s0 + s1;
}

__attribute__((target("avx2,fma,f16c"))) static float
hnsw_hdot_avx2(const float *q, const uint16_t *hv, uint32_t dim)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m128 h;
	uint32_t i = 0;
	float s;

	for (; i + 16 <= dim; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i),
				     _mm256_cvtph_ps(_mm_loadu_si128(
					     (const void *)(hv + i))),
				     s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8),
				     _mm256_cvtph_ps(_mm_loadu_si128(
					     (const void *)(hv + i + 8))),
				     s1);
	}
	s0 = _mm256_add_ps(s0, s1);
	h = _mm_add_ps(_mm256_castps256_ps128(s0),
		       _mm256_extractf128_ps(s0, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_movehdup_ps(h));
	s = _mm_cvtss_f32(h);
	for (; i < dim; i++)
		s += q[i] * hnsw_h2f(hv[i]);
	return s;
}

__attribute__((target("avx512f"))) static float
hnsw_hdot_avx512(const float *q, const uint16_t *hv, uint32_t dim)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	uint32_t i = 0;
	float s;

	for (; i + 32 <= dim; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i),
				     _mm512_cvtph_ps(_mm256_loadu_si256(
					     (const void *)(hv + i))),
				     s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16),
				     _mm512_cvtph_ps(_mm256_loadu_si256(
					     (const void *)(hv + i + 16))),
				     s1);
	}
	for (; i + 16 <= dim; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i),
				     _mm512_cvtph_ps(_mm256_loadu_si256(
					     (const void *)(hv + i))),
				     s0);
	s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
	for (; i < dim; i++)
		s += q[i] * hnsw_h2f(hv[i]);
	return s;
}

static float hnsw_hhdot_c(const uint16_t *a, const uint16_t *b, uint32_t dim)
{
	float s0 = 0, s1 = 0;
	uint32_t i = 0;

	for (; i + 2 <= dim; i += 2) {
		s0 += hnsw_h2f(a[i]) * hnsw_h2f(b[i]);
		s1 += hnsw_h2f(a[i + 1]) * hnsw_h2f(b[i + 1]);
	}
	for (; i < dim; i++)
		s0 += hnsw_h2f(a[i]) * hnsw_h2f(b[i]);
	return s0 + s1;
}

__attribute__((target("avx2,fma,f16c"))) static float
hnsw_hhdot_avx2(const uint16_t *a, const uint16_t *b, uint32_t dim)
{
	__m256 s0 = _mm256_setzero_ps();
	__m128 h;
	uint32_t i = 0;
	float s;

	for (; i + 8 <= dim; i += 8)
		s0 = _mm256_fmadd_ps(
			_mm256_cvtph_ps(_mm_loadu_si128((const void *)(a + i))),
			_mm256_cvtph_ps(_mm_loadu_si128((const void *)(b + i))),
			s0);
	h = _mm_add_ps(_mm256_castps256_ps128(s0),
		       _mm256_extractf128_ps(s0, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_movehdup_ps(h));
	s = _mm_cvtss_f32(h);
	for (; i < dim; i++)
		s += hnsw_h2f(a[i]) * hnsw_h2f(b[i]);
	return s;
}

__attribute__((target("avx512f"))) static float
hnsw_hhdot_avx512(const uint16_t *a, const uint16_t *b, uint32_t dim)
{
	__m512 s0 = _mm512_setzero_ps();
	uint32_t i = 0;
	float s;

	for (; i + 16 <= dim; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(
					     (const void *)(a + i))),
				     _mm512_cvtph_ps(_mm256_loadu_si256(
					     (const void *)(b + i))),
				     s0);
	s = _mm512_reduce_add_ps(s0);
	for (; i < dim; i++)
		s += hnsw_h2f(a[i]) * hnsw_h2f(b[i]);
	return s;
}

hnsw_hhdot_fn *hnsw_pick_hhdot(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return hnsw_hhdot_avx512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    __builtin_cpu_supports("f16c"))
		return hnsw_hhdot_avx2;
	return hnsw_hhdot_c;
}

hnsw_hdot_fn *hnsw_pick_hdot(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return hnsw_hdot_avx512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    __builtin_cpu_supports("f16c"))
		return hnsw_hdot_avx2;
	return hnsw_hdot_c;
}
