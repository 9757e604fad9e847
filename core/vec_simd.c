/* vec_simd.c - float32 dot-product kernels, chosen at run time. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/vec_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VEC_X86 1
#endif

/*
 * These kernels only RANK: vec_topk rescoring the rows near the k-th place
 * in double (vec_dot_double) is what makes results exact, so the kernels
 * may differ from each other in the last bits of a float32 score (lane
 * order, fused multiply-add) without changing any answer.
 */

/* --- plain C ---------------------------------------------------------- */

/*
 * Eight lanes in locals over pointer steps (size_t, no index arithmetic
 * that could wrap): GCC SLP-vectorises this into SSE at -O2 without
 * -ffast-math, as it does vec_dot_double.
 */
static float vec_dot8_generic(const float *restrict a, const float *restrict b,
			      uint32_t dim)
{
	float t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0, t6 = 0, t7 = 0;
	float t = 0;
	size_t n = dim, j;

	for (; n >= 8; n -= 8, a += 8, b += 8) {
		t0 += a[0] * b[0];
		t1 += a[1] * b[1];
		t2 += a[2] * b[2];
		t3 += a[3] * b[3];
		t4 += a[4] * b[4];
		t5 += a[5] * b[5];
		t6 += a[6] * b[6];
		t7 += a[7] * b[7];
	}
	for (j = 0; j < n; j++)
		t += a[j] * b[j];
	return ((t0 + t4) + (t1 + t5)) + ((t2 + t6) + (t3 + t7)) + t;
}

static void vec_dots_generic(const float *q, const float *rows, size_t n,
			     uint32_t dim, float *out)
{
	size_t j;

	for (j = 0; j < n; j++)
		out[j] = vec_dot8_generic(q, rows + j * (size_t)dim, dim);
}

static void vec_norms_generic(const float *rows, size_t n, uint32_t dim,
			      float *out)
{
	size_t j;

	for (j = 0; j < n; j++) {
		const float *r = rows + j * (size_t)dim;

		out[j] = vec_dot8_generic(r, r, dim);
	}
}

static void vec_dots_norms_generic(const float *q, const float *rows, size_t n,
				   uint32_t dim, float *dots, float *norms)
{
	vec_norms_generic(rows, n, dim, norms);
	vec_dots_generic(q, rows, n, dim, dots);
}

/*
 * int8: rows unsigned (code + 128), the query signed, padded with zeros to
 * the stride; integer sums are exact, so every kernel gives the same out.
 */
static void vec_q8_dots_generic(const int8_t *q, const uint8_t *rows, size_t n,
				size_t stride, int32_t *out)
{
	size_t j, i;

	for (j = 0; j < n; j++) {
		const uint8_t *r = rows + j * stride;
		int32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;

		for (i = 0; i < stride; i += 4) {
			t0 += (int32_t)r[i] * q[i];
			t1 += (int32_t)r[i + 1] * q[i + 1];
			t2 += (int32_t)r[i + 2] * q[i + 2];
			t3 += (int32_t)r[i + 3] * q[i + 3];
		}
		out[j] = (t0 + t1) + (t2 + t3);
	}
}

#ifdef VEC_X86
/*
 * Rows ahead of the one being scored that the fused kernels prefetch: the
 * hardware prefetcher stops at 4 KiB page boundaries (a 384-float row is
 * 1.5 KiB), so the loads of the next rows are issued by hand.  Past the
 * end of the block too, into the next tile: a prefetch never faults, even
 * on an address that is not mapped.
 */
#define VEC_PREFETCH_ROWS 6

static inline void vec_prefetch_row(const float *r, size_t d)
{
	const char *p = (const char *)r, *end = (const char *)(r + d);

	for (; p < end; p += 64)
		_mm_prefetch(p, _MM_HINT_T0);
}

/* --- AVX2 + FMA --------------------------------------------------------- */

__attribute__((target("avx2,fma"))) static inline float vec_hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
			      _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

/*
 * Four rows per pass: the query is loaded once for four rows and the four
 * accumulators are independent chains, so the loop runs at load throughput.
 */
__attribute__((target("avx2,fma"))) static void
vec_dots_avx2(const float *q, const float *rows, size_t n, uint32_t dim,
	      float *out)
{
	const size_t d = dim;
	size_t j = 0, i;

	for (; j + 4 <= n; j += 4) {
		const float *r0 = rows + j * d, *r1 = r0 + d, *r2 = r1 + d,
			    *r3 = r2 + d;
		__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
		__m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
		float t0 = 0, t1 = 0, t2 = 0, t3 = 0;

		for (i = 0; i + 8 <= d; i += 8) {
			__m256 x = _mm256_loadu_ps(q + i);

			a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r0 + i), a0);
			a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r1 + i), a1);
			a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r2 + i), a2);
			a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r3 + i), a3);
		}
		for (; i < d; i++) {
			t0 += q[i] * r0[i];
			t1 += q[i] * r1[i];
			t2 += q[i] * r2[i];
			t3 += q[i] * r3[i];
		}
		out[j] = vec_hsum256(a0) + t0;
		out[j + 1] = vec_hsum256(a1) + t1;
		out[j + 2] = vec_hsum256(a2) + t2;
		out[j + 3] = vec_hsum256(a3) + t3;
	}
	for (; j < n; j++) {
		const float *r = rows + j * d;
		__m256 a = _mm256_setzero_ps();
		float t = 0;

		for (i = 0; i + 8 <= d; i += 8)
			a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i),
					    _mm256_loadu_ps(r + i), a);
		for (; i < d; i++)
			t += q[i] * r[i];
		out[j] = vec_hsum256(a) + t;
	}
}

__attribute__((target("avx2,fma"))) static void
vec_norms_avx2(const float *rows, size_t n, uint32_t dim, float *out)
{
	const size_t d = dim;
	size_t j, i;

	for (j = 0; j < n; j++) {
		const float *r = rows + j * d;
		__m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
		float t = 0;

		for (i = 0; i + 16 <= d; i += 16) {
			__m256 x = _mm256_loadu_ps(r + i);
			__m256 y = _mm256_loadu_ps(r + i + 8);

			a = _mm256_fmadd_ps(x, x, a);
			b = _mm256_fmadd_ps(y, y, b);
		}
		for (; i + 8 <= d; i += 8) {
			__m256 x = _mm256_loadu_ps(r + i);

			a = _mm256_fmadd_ps(x, x, a);
		}
		for (; i < d; i++)
			t += r[i] * r[i];
		out[j] = vec_hsum256(_mm256_add_ps(a, b)) + t;
	}
}

/* One pass over each row: its dot with q and its squared norm. */
__attribute__((target("avx2,fma"))) static void
vec_dots_norms_avx2(const float *q, const float *rows, size_t n, uint32_t dim,
		    float *dots, float *norms)
{
	const size_t d = dim;
	size_t j, i;

	for (j = 0; j < n; j++) {
		const float *r = rows + j * d;
		__m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
		__m256 na = _mm256_setzero_ps(), nb = _mm256_setzero_ps();
		float t = 0, tn = 0;

		vec_prefetch_row(r + VEC_PREFETCH_ROWS * d, d);
		for (i = 0; i + 16 <= d; i += 16) {
			__m256 x = _mm256_loadu_ps(r + i);
			__m256 y = _mm256_loadu_ps(r + i + 8);

			a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x, a);
			b = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), y, b);
			na = _mm256_fmadd_ps(x, x, na);
			nb = _mm256_fmadd_ps(y, y, nb);
		}
		for (; i + 8 <= d; i += 8) {
			__m256 x = _mm256_loadu_ps(r + i);

			a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x, a);
			na = _mm256_fmadd_ps(x, x, na);
		}
		for (; i < d; i++) {
			t += q[i] * r[i];
			tn += r[i] * r[i];
		}
		dots[j] = vec_hsum256(_mm256_add_ps(a, b)) + t;
		norms[j] = vec_hsum256(_mm256_add_ps(na, nb)) + tn;
	}
}

/* --- AVX-512 ------------------------------------------------------------ */

/* A masked load covers the tail: no scalar loop, any dim. */
__attribute__((target("avx512f"))) static void
vec_dots_avx512(const float *q, const float *rows, size_t n, uint32_t dim,
		float *out)
{
	const size_t d = dim;
	const __mmask16 tail = (__mmask16)((1u << (d % 16)) - 1);
	const size_t full = d - d % 16;
	size_t j = 0, i;

	for (; j + 4 <= n; j += 4) {
		const float *r0 = rows + j * d, *r1 = r0 + d, *r2 = r1 + d,
			    *r3 = r2 + d;
		__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
		__m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();

		for (i = 0; i < full; i += 16) {
			__m512 x = _mm512_loadu_ps(q + i);

			a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r0 + i), a0);
			a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r1 + i), a1);
			a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r2 + i), a2);
			a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r3 + i), a3);
		}
		if (tail) {
			__m512 x = _mm512_maskz_loadu_ps(tail, q + i);

			a0 = _mm512_fmadd_ps(
				x, _mm512_maskz_loadu_ps(tail, r0 + i), a0);
			a1 = _mm512_fmadd_ps(
				x, _mm512_maskz_loadu_ps(tail, r1 + i), a1);
			a2 = _mm512_fmadd_ps(
				x, _mm512_maskz_loadu_ps(tail, r2 + i), a2);
			a3 = _mm512_fmadd_ps(
				x, _mm512_maskz_loadu_ps(tail, r3 + i), a3);
		}
		out[j] = _mm512_reduce_add_ps(a0);
		out[j + 1] = _mm512_reduce_add_ps(a1);
		out[j + 2] = _mm512_reduce_add_ps(a2);
		out[j + 3] = _mm512_reduce_add_ps(a3);
	}
	for (; j < n; j++) {
		const float *r = rows + j * d;
		__m512 a = _mm512_setzero_ps();

		for (i = 0; i < full; i += 16)
			a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i),
					    _mm512_loadu_ps(r + i), a);
		if (tail)
			a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q + i),
					    _mm512_maskz_loadu_ps(tail, r + i),
					    a);
		out[j] = _mm512_reduce_add_ps(a);
	}
}

__attribute__((target("avx512f"))) static void
vec_norms_avx512(const float *rows, size_t n, uint32_t dim, float *out)
{
	const size_t d = dim;
	const __mmask16 tail = (__mmask16)((1u << (d % 16)) - 1);
	const size_t full = d - d % 16;
	size_t j, i;

	for (j = 0; j < n; j++) {
		const float *r = rows + j * d;
		__m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();

		for (i = 0; i + 32 <= full; i += 32) {
			__m512 x = _mm512_loadu_ps(r + i);
			__m512 y = _mm512_loadu_ps(r + i + 16);

			a = _mm512_fmadd_ps(x, x, a);
			b = _mm512_fmadd_ps(y, y, b);
		}
		for (; i < full; i += 16) {
			__m512 x = _mm512_loadu_ps(r + i);

			a = _mm512_fmadd_ps(x, x, a);
		}
		if (tail) {
			__m512 x = _mm512_maskz_loadu_ps(tail, r + i);

			a = _mm512_fmadd_ps(x, x, a);
		}
		out[j] = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
	}
}
/* One pass over each row: its dot with q and its squared norm. */
__attribute__((target("avx512f"))) static void
vec_dots_norms_avx512(const float *q, const float *rows, size_t n, uint32_t dim,
		      float *dots, float *norms)
{
	const size_t d = dim;
	const __mmask16 tail = (__mmask16)((1u << (d % 16)) - 1);
	const size_t full = d - d % 16;
	size_t j, i;

	for (j = 0; j < n; j++) {
		const float *r = rows + j * d;
		__m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
		__m512 na = _mm512_setzero_ps(), nb = _mm512_setzero_ps();

		vec_prefetch_row(r + VEC_PREFETCH_ROWS * d, d);
		for (i = 0; i + 32 <= full; i += 32) {
			__m512 x = _mm512_loadu_ps(r + i);
			__m512 y = _mm512_loadu_ps(r + i + 16);

			a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), x, a);
			b = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), y, b);
			na = _mm512_fmadd_ps(x, x, na);
			nb = _mm512_fmadd_ps(y, y, nb);
		}
		for (; i < full; i += 16) {
			__m512 x = _mm512_loadu_ps(r + i);

			a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), x, a);
			na = _mm512_fmadd_ps(x, x, na);
		}
		if (tail) {
			__m512 x = _mm512_maskz_loadu_ps(tail, r + i);

			a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q + i),
					    x, a);
			na = _mm512_fmadd_ps(x, x, na);
		}
		dots[j] = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
		norms[j] = _mm512_reduce_add_ps(_mm512_add_ps(na, nb));
	}
}

/* --- int8 --------------------------------------------------------------- */

/* Rows of int8 codes ahead that the int8 kernels prefetch (24 measured
 * 2-4% faster than 8 and than none at 1M x 384; 96 slower). */
#define VEC_Q8_PREFETCH_ROWS 24

static inline void vec_q8_prefetch(const uint8_t *r, size_t stride)
{
	size_t i;

	for (i = 0; i < stride; i += 64)
		_mm_prefetch((const char *)r + i, _MM_HINT_T0);
}

/*
 * Plain AVX2: 16 codes widened to 16-bit (vpmovzxbw / vpmovsxbw), then
 * vpmaddwd into eight int32 sums (255 * 127 * 2 fits 16-bit products'
 * pair sums without the saturation vpmaddubsw would hit).
 */
__attribute__((target("avx2"))) static inline int32_t vec_hsum256i(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
				  _mm256_extracti128_si256(v, 1));

	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) static void
vec_q8_dots_avx2(const int8_t *q, const uint8_t *rows, size_t n, size_t stride,
		 int32_t *out)
{
	size_t j = 0, i;

	for (; j + 2 <= n; j += 2) {
		const uint8_t *r0 = rows + j * stride, *r1 = r0 + stride;
		__m256i a0 = _mm256_setzero_si256(),
			a1 = _mm256_setzero_si256();

		vec_q8_prefetch(r0 + VEC_Q8_PREFETCH_ROWS * stride, 2 * stride);
		for (i = 0; i < stride; i += 16) {
			__m256i x = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const __m128i *)(q + i)));
			__m256i y0 = _mm256_cvtepu8_epi16(
				_mm_loadu_si128((const __m128i *)(r0 + i)));
			__m256i y1 = _mm256_cvtepu8_epi16(
				_mm_loadu_si128((const __m128i *)(r1 + i)));

			a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x, y0));
			a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, y1));
		}
		out[j] = vec_hsum256i(a0);
		out[j + 1] = vec_hsum256i(a1);
	}
	for (; j < n; j++) {
		const uint8_t *r = rows + j * stride;
		__m256i a = _mm256_setzero_si256();

		for (i = 0; i < stride; i += 16) {
			__m256i x = _mm256_cvtepi8_epi16(
				_mm_loadu_si128((const __m128i *)(q + i)));
			__m256i y = _mm256_cvtepu8_epi16(
				_mm_loadu_si128((const __m128i *)(r + i)));

			a = _mm256_add_epi32(a, _mm256_madd_epi16(x, y));
		}
		out[j] = vec_hsum256i(a);
	}
}

/* AVX-512 VNNI: vpdpbusd multiplies 64 u8 by 64 s8, four sums per lane. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
vec_q8_dots_vnni(const int8_t *q, const uint8_t *rows, size_t n, size_t stride,
		 int32_t *out)
{
	size_t j = 0, i;

	for (; j + 4 <= n; j += 4) {
		const uint8_t *r0 = rows + j * stride, *r1 = r0 + stride,
			      *r2 = r1 + stride, *r3 = r2 + stride;
		__m512i a0 = _mm512_setzero_si512(),
			a1 = _mm512_setzero_si512();
		__m512i a2 = _mm512_setzero_si512(),
			a3 = _mm512_setzero_si512();

		vec_q8_prefetch(r0 + VEC_Q8_PREFETCH_ROWS * stride, 4 * stride);
		for (i = 0; i < stride; i += 64) {
			__m512i x = _mm512_loadu_si512(q + i);

			a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(r0 + i),
						 x);
			a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(r1 + i),
						 x);
			a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(r2 + i),
						 x);
			a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(r3 + i),
						 x);
		}
		out[j] = _mm512_reduce_add_epi32(a0);
		out[j + 1] = _mm512_reduce_add_epi32(a1);
		out[j + 2] = _mm512_reduce_add_epi32(a2);
		out[j + 3] = _mm512_reduce_add_epi32(a3);
	}
	for (; j < n; j++) {
		const uint8_t *r = rows + j * stride;
		__m512i a = _mm512_setzero_si512();

		for (i = 0; i < stride; i += 64)
			a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(r + i),
						_mm512_loadu_si512(q + i));
		out[j] = _mm512_reduce_add_epi32(a);
	}
}
#endif /* VEC_X86 */

/* --- dispatch ----------------------------------------------------------- */

static const struct vec_kernel vec_kernels[] = {
#ifdef VEC_X86
	{ .name = "avx512",
	  .dots = vec_dots_avx512,
	  .norms = vec_norms_avx512,
	  .dots_norms = vec_dots_norms_avx512 },
	{ .name = "avx2",
	  .dots = vec_dots_avx2,
	  .norms = vec_norms_avx2,
	  .dots_norms = vec_dots_norms_avx2 },
#endif
	{ .name = "generic",
	  .dots = vec_dots_generic,
	  .norms = vec_norms_generic,
	  .dots_norms = vec_dots_norms_generic },
};

#define VEC_NKERNELS (sizeof(vec_kernels) / sizeof(vec_kernels[0]))

static int vec_kernel_runs(const struct vec_kernel *k)
{
#ifdef VEC_X86
	__builtin_cpu_init();
	if (strcmp(k->name, "avx512") == 0)
		return __builtin_cpu_supports("avx512f");
	if (strcmp(k->name, "avx2") == 0)
		return __builtin_cpu_supports("avx2") &&
		       __builtin_cpu_supports("fma");
#endif
	return 1;
}

static const struct vec_kernel *_Atomic vec_kernel_cur;
static pthread_once_t vec_kernel_once = PTHREAD_ONCE_INIT;

static const struct vec_kernel *vec_kernel_find(const char *name)
{
	size_t i;

	for (i = 0; i < VEC_NKERNELS; i++)
		if (strcmp(vec_kernels[i].name, name) == 0)
			return &vec_kernels[i];
	return NULL;
}

/*
 * The best kernel the CPU runs, unless LODEFS_VEC_KERNEL names one (for
 * benchmarks and for tests of a fallback on a machine that has better);
 * a name the CPU cannot run is ignored rather than crashing later.
 */
static void vec_kernel_init(void)
{
	const char *env = getenv("LODEFS_VEC_KERNEL");
	const struct vec_kernel *k = env ? vec_kernel_find(env) : NULL;
	size_t i;

	if (!k || !vec_kernel_runs(k))
		for (i = 0, k = NULL; i < VEC_NKERNELS && !k; i++)
			if (vec_kernel_runs(&vec_kernels[i]))
				k = &vec_kernels[i];
	vec_kernel_cur = k;
}

const struct vec_kernel *vec_kernel_get(void)
{
	pthread_once(&vec_kernel_once, vec_kernel_init);
	return vec_kernel_cur;
}

const char *vec_kernel_name(void)
{
	return vec_kernel_get()->name;
}

int vec_kernel_select(const char *name)
{
	const struct vec_kernel *k;

	vec_kernel_get();
	if (!name) {
		/* back to the automatic choice (ignoring the environment) */
		size_t i;

		for (i = 0; i < VEC_NKERNELS; i++)
			if (vec_kernel_runs(&vec_kernels[i])) {
				vec_kernel_cur = &vec_kernels[i];
				return 0;
			}
		return -ENOTSUP;
	}
	k = vec_kernel_find(name);
	if (!k)
		return -EINVAL;
	if (!vec_kernel_runs(k))
		return -ENOTSUP;
	vec_kernel_cur = k;
	return 0;
}

int vec_kernel_list(const char **names, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < VEC_NKERNELS; i++)
		if (vec_kernel_runs(&vec_kernels[i]) && n < max)
			names[n++] = vec_kernels[i].name;
	return (int)n;
}

/*
 * The int8 kernel of the float32 kernel in use, so that forcing one
 * (LODEFS_VEC_KERNEL, vec_kernel_select) forces the matching int8 code:
 * "avx512" runs VNNI where the CPU has it, else the AVX2 int8 code.
 */
static int vec_q8_vnni_runs(void)
{
#ifdef VEC_X86
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vnni");
#else
	return 0;
#endif
}

vec_q8_dots_fn *vec_q8_kernel(void)
{
	const char *name = vec_kernel_get()->name;

	(void)name;
#ifdef VEC_X86
	if (strcmp(name, "avx512") == 0)
		return vec_q8_vnni_runs() ? vec_q8_dots_vnni : vec_q8_dots_avx2;
	if (strcmp(name, "avx2") == 0)
		return vec_q8_dots_avx2;
#endif
	return vec_q8_dots_generic;
}

const char *vec_q8_kernel_name(void)
{
	const char *name = vec_kernel_get()->name;

	if (strcmp(name, "avx512") == 0)
		return vec_q8_vnni_runs() ? "avx512vnni" : "avx2";
	return name;
}
