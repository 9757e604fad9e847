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
