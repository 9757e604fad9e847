/* vec_hnsw_kern.c - half-float rows and their dot products for vec_hnsw.c. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/vec.h"
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
	if ((h & 0x7fff) == 0x7c00)
		h--; /* [65520, 65536) rounds up to infinity: saturate */
	return (uint16_t)h;
}

float hnsw_h2f(uint16_t h)
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

/*
 * Rows to half floats, exactly as hnsw_f2h does each component: a graph
 * loaded from a checkpoint converts every row it binds, which made
 * hnsw_f2h a third of the time of such an open.  The hardware's
 * conversion rounds to nearest even like hnsw_f2h; what it does otherwise
 * (subnormal halves, infinity) is taken out beforehand: a lane below
 * 2^-14 in magnitude becomes a signed zero, one at or above 65520 (or not
 * a number) +-65504.
 */
static void hnsw_f2h_row_c(const float *row, float scale, uint16_t *out,
			   uint32_t dim)
{
	uint32_t i;

	for (i = 0; i < dim; i++)
		out[i] = hnsw_f2h(row[i] * scale);
}

__attribute__((target("avx2,fma,f16c"))) static void
hnsw_f2h_row_avx2(const float *row, float scale, uint16_t *out, uint32_t dim)
{
	const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(0x1p-14f);
	const __m256 hi = _mm256_set1_ps(65520.0f), top = _mm256_set1_ps(65504);
	const __m256 sign = _mm256_set1_ps(-0.0f);
	uint32_t i = 0;

	for (; i + 8 <= dim; i += 8) {
		__m256 x = _mm256_mul_ps(_mm256_loadu_ps(row + i), s);
		__m256 ax = _mm256_andnot_ps(sign, x);
		__m256 sx = _mm256_and_ps(sign, x);

		x = _mm256_blendv_ps(x, sx, _mm256_cmp_ps(ax, lo, _CMP_LT_OQ));
		x = _mm256_blendv_ps(x, _mm256_or_ps(sx, top),
				     _mm256_cmp_ps(ax, hi, _CMP_NLT_UQ));
		_mm_storeu_si128((void *)(out + i),
				 _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
	}
	for (; i < dim; i++)
		out[i] = hnsw_f2h(row[i] * scale);
}

__attribute__((target("avx512f"))) static void
hnsw_f2h_row_avx512(const float *row, float scale, uint16_t *out, uint32_t dim)
{
	const __m512 s = _mm512_set1_ps(scale), lo = _mm512_set1_ps(0x1p-14f);
	const __m512 hi = _mm512_set1_ps(65520.0f);
	const __m512i top = _mm512_castps_si512(_mm512_set1_ps(65504));
	const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
	uint32_t i = 0;

	for (; i + 16 <= dim; i += 16) {
		__m512 x = _mm512_mul_ps(_mm512_loadu_ps(row + i), s);
		__m512i xi = _mm512_castps_si512(x);
		__m512i sx = _mm512_and_si512(xi, sign);
		__m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));

		xi = _mm512_mask_mov_epi32(
			xi, _mm512_cmp_ps_mask(ax, lo, _CMP_LT_OQ), sx);
		xi = _mm512_mask_mov_epi32(
			xi, _mm512_cmp_ps_mask(ax, hi, _CMP_NLT_UQ),
			_mm512_or_si512(sx, top));
		_mm256_storeu_si256((void *)(out + i),
				    _mm512_cvtps_ph(_mm512_castsi512_ps(xi),
						    _MM_FROUND_TO_NEAREST_INT));
	}
	for (; i < dim; i++)
		out[i] = hnsw_f2h(row[i] * scale);
}

/* Best first, like the float32 kernels of vec_simd.c. */
static const struct hnsw_kern hnsw_kerns[] = {
	{ .name = "avx512",
	  .hdot = hnsw_hdot_avx512,
	  .hhdot = hnsw_hhdot_avx512,
	  .f2h_row = hnsw_f2h_row_avx512 },
	{ .name = "avx2",
	  .hdot = hnsw_hdot_avx2,
	  .hhdot = hnsw_hhdot_avx2,
	  .f2h_row = hnsw_f2h_row_avx2 },
	{ .name = "generic",
	  .hdot = hnsw_hdot_c,
	  .hhdot = hnsw_hhdot_c,
	  .f2h_row = hnsw_f2h_row_c },
};

#define HNSW_NKERNS (sizeof(hnsw_kerns) / sizeof(hnsw_kerns[0]))

static int hnsw_kern_runs(const struct hnsw_kern *k)
{
	__builtin_cpu_init();
	if (strcmp(k->name, "avx512") == 0)
		return __builtin_cpu_supports("avx512f");
	if (strcmp(k->name, "avx2") == 0)
		return __builtin_cpu_supports("avx2") &&
		       __builtin_cpu_supports("fma") &&
		       __builtin_cpu_supports("f16c");
	return 1;
}

const struct hnsw_kern *hnsw_kern_find(const char *name)
{
	size_t i;

	for (i = 0; i < HNSW_NKERNS; i++)
		if (strcmp(hnsw_kerns[i].name, name) == 0)
			return hnsw_kern_runs(&hnsw_kerns[i]) ? &hnsw_kerns[i]
							      : NULL;
	return NULL;
}

/*
 * The family of the float32 ranking kernel in use, so that one switch
 * (LODEFS_VEC_KERNEL, vec_kernel_select) forces both: a name of
 * vec_simd.c's that has no half-float twin (a variant such as
 * "avx512-vnni") takes the family its prefix names; the best this CPU runs
 * among those not above it otherwise.  An AVX2 CPU without F16C (none is
 * known) gets plain C.
 */
const struct hnsw_kern *hnsw_kern_get(void)
{
	const char *want = vec_kernel_name();
	size_t i, from = HNSW_NKERNS - 1;

	for (i = 0; i < HNSW_NKERNS; i++)
		if (strncmp(want, hnsw_kerns[i].name,
			    strlen(hnsw_kerns[i].name)) == 0) {
			from = i;
			break;
		}
	if (i == HNSW_NKERNS)
		from = 0; /* an unknown name: the best this CPU runs */
	for (i = from; i < HNSW_NKERNS; i++)
		if (hnsw_kern_runs(&hnsw_kerns[i]))
			return &hnsw_kerns[i];
	return &hnsw_kerns[HNSW_NKERNS - 1];
}

int hnsw_kern_list(const char **names, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < HNSW_NKERNS; i++)
		if (hnsw_kern_runs(&hnsw_kerns[i]) && n < max)
			names[n++] = hnsw_kerns[i].name;
	return (int)n;
}
