/* test_ann.c - HNSW graphs: recall, deletes, filters, persistence, threads. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "backends/backend.h"
#include "core/store.h"
#include "core/store_ann.h"
#include "core/store_int.h"
#include "core/vec.h"
#include "core/vec_hnsw.h"
#include "core/vec_hnsw_int.h"

#define DIM	 32
#define NROWS	 3000
#define NQ	 60
#define K	 10
#define THRESH	 1000
#define CLUSTERS 40

static struct backend *be;
static struct store *st;
static float *rows, *queries;

/* xorshift64*: the same data on every run */
static uint64_t rng_state;

static double rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return ((rng_state * 0x2545F4914F6CDD1DULL) >> 11) *
	       (1.0 / 9007199254740992.0);
}

static double gauss(void)
{
	double u = rnd() + 1e-12, v = rnd();

	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* n rows around CLUSTERS random centres. */
static float *clustered(size_t n, uint64_t seed)
{
	static float centres[CLUSTERS][DIM];
	float *out = malloc(n * DIM * sizeof(float));
	size_t i, j;

	rng_state = 0x1234567;
	for (i = 0; i < CLUSTERS; i++)
		for (j = 0; j < DIM; j++)
			centres[i][j] = (float)gauss();
	rng_state = seed;
	for (i = 0; i < n; i++) {
		size_t c = (size_t)(rnd() * CLUSTERS) % CLUSTERS;

		for (j = 0; j < DIM; j++)
			out[i * DIM + j] =
				centres[c][j] + (float)(0.6 * gauss());
	}
	return out;
}

static void open_store_opts(size_t threshold, int no_build)
{
	struct store_opts o;

	store_opts_init(&o);
	o.ann_threshold = threshold;
	o.ann_no_build = no_build;
	cr_assert_eq(store_open(be, &o, &st), 0, "%s", store_last_error());
}

static void open_store(size_t threshold)
{
	open_store_opts(threshold, 0);
}

static void setup(void)
{
	cr_assert_eq(backend_memory_open(&be), 0);
	open_store(THRESH);
	rows = clustered(NROWS, 99);
	queries = clustered(NQ, 7);
}

static void teardown(void)
{
	store_close(st);
	backend_close(be);
	free(rows);
	free(queries);
}

static void put_rows(size_t from, size_t to)
{
	char id[32];
	size_t i;

	for (i = from; i < to; i++) {
		snprintf(id, sizeof(id), "r%05zu", i);
		cr_assert_eq(store_vec_put(st, "big", id, rows + i * DIM, DIM),
			     0, "%s", store_last_error());
	}
}

struct res {
	size_t n;
	char ids[K][16];
	double scores[K];
};

static void run(const float *q, int exact, const char *const *node_ids,
		size_t n_node_ids, struct res *r)
{
	struct store_query sq = { 0 };
	struct store_hit *hits;
	size_t i, n;

	sq.embedding = q;
	sq.dim = DIM;
	sq.k = K;
	sq.mode = STORE_MODE_VECTOR;
	sq.ns = "big";
	sq.exact = exact;
	sq.node_ids = node_ids;
	sq.n_node_ids = n_node_ids;
	cr_assert_eq(store_query(st, &sq, &hits, &n), 0, "%s",
		     store_last_error());
	cr_assert_leq(n, K);
	r->n = n;
	for (i = 0; i < n; i++) {
		snprintf(r->ids[i], sizeof(r->ids[i]), "%s", hits[i].node_id);
		r->scores[i] = hits[i].score;
	}
	store_hits_free(hits, n);
}

static size_t overlap(const struct res *a, const struct res *b)
{
	size_t i, j, hit = 0;

	for (i = 0; i < a->n; i++)
		for (j = 0; j < b->n; j++)
			hit += strcmp(a->ids[i], b->ids[j]) == 0;
	return hit;
}

static uint64_t searches(void)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.ann.searches;
}

/* recall@10 of the graph against exact=1 over all queries */
static double recall(void)
{
	size_t i, hit = 0, tot = 0;
	uint64_t before = searches();

	for (i = 0; i < NQ; i++) {
		struct res a, e;

		run(queries + i * DIM, 0, NULL, 0, &a);
		run(queries + i * DIM, 1, NULL, 0, &e);
		hit += overlap(&a, &e);
		tot += e.n;
	}
	/* the graph answered every non-exact query, exact=1 none */
	cr_assert_eq(searches() - before, NQ);
	return (double)hit / tot;
}

TestSuite(ann, .init = setup, .fini = teardown, .timeout = 300);

/* --- the graph alone --------------------------------------------------- */

/* recall@10 of a fresh graph at the default ef; *kern gets its kernels */
static double graph_recall(const char **kern)
{
	struct hnsw_params p = { .dim = DIM,
				 .m = HNSW_M_DEFAULT,
				 .ef_construction = HNSW_EFC_DEFAULT };
	struct hnsw_hit hits[K];
	struct hnsw *h;
	size_t i, j, n, hit = 0;
	char key[16];

	cr_assert_eq(hnsw_new(&p, &h), 0);
	*kern = hnsw_kernel(h);
	for (i = 0; i < NROWS; i++) {
		snprintf(key, sizeof(key), "%zu", i);
		cr_assert_eq(hnsw_add(h, rows + i * DIM, key, HNSW_LIVE, NULL),
			     0);
	}
	for (i = 0; i < NQ; i++) {
		/* exact top-k by the same float cosine, by brute force */
		struct hnsw_hit best[K];
		size_t nb = 0, m;

		for (j = 0; j < NROWS; j++) {
			struct hnsw_hit x = { (float)vec_cosine(
						      queries + i * DIM,
						      rows + j * DIM, DIM),
					      (uint32_t)j };

			for (m = nb < K ? nb++ : K;
			     m > 0 && best[m - 1].sim < x.sim; m--)
				if (m < K)
					best[m] = best[m - 1];
			if (m < K)
				best[m] = x;
		}
		cr_assert_eq(hnsw_search(h, queries + i * DIM, K,
					 HNSW_EF_DEFAULT, NULL, NULL, hits, &n),
			     0);
		cr_assert_eq(n, K);
		for (j = 0; j < n; j++) {
			if (j)
				cr_assert_geq(hits[j - 1].sim, hits[j].sim);
			/* the graph's score is the cosine to ~1e-3 */
			cr_assert_leq(
				fabs(hits[j].sim -
				     vec_cosine(queries + i * DIM,
						rows + hits[j].id * DIM, DIM)),
				4e-3, "%s: node %u", *kern, hits[j].id);
			for (m = 0; m < K; m++)
				hit += hits[j].id == best[m].id;
		}
	}
	hnsw_free(h);
	return (double)hit / (NQ * K);
}

Test(ann, graph_recall_at_default_ef)
{
	const char *kern;
	double r = graph_recall(&kern);

	cr_assert_geq(r, 0.95, "recall %.3f (%s)", r, kern);
}

/*
 * Every kernel family this CPU runs builds and searches a graph as well:
 * vec_kernel_select, the switch of the float32 kernels, also picks the
 * half-float ones of graphs made after it.
 */
Test(ann, graph_recall_with_every_kernel)
{
	const char *names[8], *kern;
	int nk = vec_kernel_list(names, 8), ki, seen = 0;
	double r;

	cr_assert_geq(nk, 1);
	for (ki = 0; ki < nk; ki++) {
		const struct hnsw_kern *want = hnsw_kern_find(names[ki]);

		cr_assert_eq(vec_kernel_select(names[ki]), 0);
		r = graph_recall(&kern);
		cr_assert_str_eq(kern, hnsw_kern_get()->name);
		if (want) {
			cr_assert_str_eq(kern, names[ki]);
			seen++;
		}
		cr_assert_geq(r, 0.95, "recall %.3f with %s", r, kern);
	}
	/* plain C always runs, and the families this CPU runs all ran */
	cr_assert_eq(seen, hnsw_kern_list(names, 8));
	cr_assert_eq(vec_kernel_select(NULL), 0);
}

static void env_generic(void)
{
	setenv("LODEFS_VEC_KERNEL", "generic", 1);
}

/* Each test runs in a fresh process: the choice is made at first use. */
Test(ann_kern, environment_forces_both_families, .init = env_generic)
{
	struct hnsw_params p = { .dim = 8, .m = 4 };
	struct hnsw *h;

	cr_assert_eq(hnsw_new(&p, &h), 0);
	cr_assert_str_eq(vec_kernel_name(), "generic");
	cr_assert_str_eq(hnsw_kernel(h), "generic");
	hnsw_free(h);
}

Test(ann_kern, names)
{
	const char *names[8];
	int n = hnsw_kern_list(names, 8), i;

	cr_assert_geq(n, 1);
	cr_assert_str_eq(names[n - 1], "generic");
	for (i = 0; i < n; i++)
		cr_assert_eq(hnsw_kern_find(names[i])->name, names[i]);
	cr_assert_null(hnsw_kern_find("sse9"));
	cr_assert_str_eq(hnsw_kern_get()->name, names[0]);
}

/* --- half floats ------------------------------------------------------- */

static float f_of(uint32_t x)
{
	float f;

	memcpy(&f, &x, 4);
	return f;
}

Test(ann_kern, f2h_rounds_to_nearest_even)
{
	/* 1 + 2^-11 is half-way between 1 and 1 + 2^-10: the even one */
	cr_assert_eq(hnsw_f2h(1.0f + 0x1p-11f), 0x3c00);
	cr_assert_eq(hnsw_f2h(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
	cr_assert_eq(hnsw_f2h(1.0f + 0x1p-11f - 0x1p-20f), 0x3c00);
	/* 1 + 3 * 2^-11: half-way between odd 0x3c01 and even 0x3c02 */
	cr_assert_eq(hnsw_f2h(1.0f + 3 * 0x1p-11f), 0x3c02);
	cr_assert_eq(hnsw_f2h(-(1.0f + 3 * 0x1p-11f)), 0xbc02);
	/* rounding up carries into the exponent */
	cr_assert_eq(hnsw_f2h(2.0f - 0x1p-12f), 0x4000);
	cr_assert_eq(hnsw_f2h(1.0f), 0x3c00);
	cr_assert_eq(hnsw_f2h(-0.5f), 0xb800);
	cr_assert_eq(hnsw_f2h(0.0f), 0);
	cr_assert_eq(hnsw_f2h(-0.0f), 0x8000);
}

Test(ann_kern, f2h_flushes_and_saturates)
{
	cr_assert_eq(hnsw_f2h(0x1p-14f), 0x0400); /* smallest normal */
	cr_assert_eq(hnsw_f2h(0x1p-15f), 0);	  /* a subnormal: flushed */
	cr_assert_eq(hnsw_f2h(-0x1p-15f), 0x8000);
	cr_assert_eq(hnsw_f2h(1e-30f), 0);
	cr_assert_eq(hnsw_f2h(65504.0f), 0x7bff);
	cr_assert_eq(hnsw_f2h(65519.0f), 0x7bff);
	cr_assert_eq(hnsw_f2h(65520.0f), 0x7bff); /* not infinity */
	cr_assert_eq(hnsw_f2h(-65520.0f), 0xfbff);
	cr_assert_eq(hnsw_f2h(1e30f), 0x7bff);
	cr_assert_eq(hnsw_f2h(-1e30f), 0xfbff);
	cr_assert_eq(hnsw_f2h(f_of(0x7f800000)), 0x7bff); /* infinity */
}

/* Every finite normal half (and zero) comes back as itself. */
Test(ann_kern, h2f_f2h_round_trip)
{
	uint32_t h;

	for (h = 0; h < 0x10000; h++) {
		uint32_t e = (h >> 10) & 0x1f;

		if (e == 0x1f || (e == 0 && (h & 0x3ff)))
			continue; /* inf/nan, subnormals: never made */
		cr_assert_eq(hnsw_f2h(hnsw_h2f((uint16_t)h)), h, "%#x", h);
	}
	cr_assert_float_eq(hnsw_h2f(0x3c00), 1.0f, 0);
	cr_assert_float_eq(hnsw_h2f(0x0400), 0x1p-14f, 0);
	cr_assert_float_eq(hnsw_h2f(0xfbff), -65504.0f, 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("f16c"))) static uint16_t hw_f2h(float f)
{
	return (uint16_t)_mm_extract_epi16(
		_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}

/* In the normal range f2h is the hardware's conversion, bit for bit. */
Test(ann_kern, f2h_matches_f16c)
{
	uint32_t i;

	__builtin_cpu_init();
	if (!__builtin_cpu_supports("f16c"))
		cr_skip_test("no F16C");
	rng_state = 0xf16c;
	for (i = 0; i < 2000000; i++) {
		/* exponents from 2^-14 to 2^15: every normal half */
		uint32_t x = (uint32_t)(rnd() * 4294967296.0);
		uint32_t e = (x >> 23) & 0xff;
		float f;

		e = 113 + e % 30;
		x = (x & 0x807fffffu) | (e << 23);
		f = f_of(x);
		if (fabsf(f) >= 65520.0f)
			continue; /* where f2h saturates, F16C gives inf */
		cr_assert_eq(hnsw_f2h(f), hw_f2h(f), "%a", (double)f);
	}
}
#endif

/*
 * Each kernel's row conversion is hnsw_f2h of each scaled component, bit
 * for bit: values around the flush (2^-14) and saturation (65520) edges,
 * halfway cases, signed zeros, subnormal and infinite inputs, in rows of
 * every length around the vector widths, unaligned too.
 */
Test(ann_kern, every_row_conversion_is_f2h)
{
	static const float edge[] = {
		0.0f,
		-0.0f,
		0x1p-14f,
		-0x1p-14f,
		0x1.fffffep-15f,
		0x1.ffep-15f,
		0x1p-15f,
		0x1p-149f,
		65504.0f,
		65519.99f,
		65520.0f,
		-65520.0f,
		65536.0f,
		1e30f,
		1.0f + 0x1p-11f,
		1.0f + 3 * 0x1p-11f,
		0.5f,
		-1.0f,
		0x1.0p-1f,
		0.1f,
	};
	const char *names[8];
	int nk = hnsw_kern_list(names, 8), ki;
	float row[80];
	uint16_t got[80];
	size_t rep, i, len, off;

	for (ki = 0; ki < nk; ki++) {
		const struct hnsw_kern *k = hnsw_kern_find(names[ki]);

		rng_state = 0xc0de;
		for (rep = 0; rep < 4000; rep++) {
			float scale = rep % 3 ? (float)(rnd() * 2) : 1.0f;

			len = 1 + rep % 64;
			off = rep % 5;
			for (i = 0; i < len; i++) {
				if (rnd() < 0.3) {
					row[off + i] =
						edge[(size_t)(rnd() * 20) % 20];
				} else {
					/* exponents 2^-20 .. 2^17, either sign */
					uint32_t x = (uint32_t)(rnd() *
								4294967296.0);

					x = (x & 0x807fffffu) |
					    ((107 + (x >> 23) % 38) << 23);
					row[off + i] = f_of(x);
				}
			}
			if (rep == 7)
				row[off] = f_of(0x7f800000); /* infinity */
			k->f2h_row(row + off, scale, got + off, (uint32_t)len);
			for (i = 0; i < len; i++)
				cr_assert_eq(got[off + i],
					     hnsw_f2h(row[off + i] * scale),
					     "%s: %a * %a -> %#x, f2h %#x",
					     k->name, (double)row[off + i],
					     (double)scale, got[off + i],
					     hnsw_f2h(row[off + i] * scale));
		}
	}
}

/* --- the half-float dot kernels ---------------------------------------- */

/*
 * Each kernel against the exact dot product (in double) of the same
 * float32 query and half-float row, for lengths around every vector
 * width and tail, on unaligned pointers too.  Every product is exact in
 * float32 (11-bit by 24-bit mantissas under FMA, and h2f is exact), so
 * the only error is the float32 summation of dim terms in any order:
 * at most dim * 2^-24 * sum |q_i h_i| (first order; the bound below adds
 * 1%).  A kernel that drops or repeats a tail element misses by a whole
 * term, far above it.
 */
Test(ann_kern, every_kernel_within_the_summation_bound)
{
	static const uint32_t dims[] = { 1,  2,	 3,  7,	 8,  9,	  15,  16,
					 17, 31, 32, 33, 47, 100, 384, 1000 };
	const char *names[8];
	int nk = hnsw_kern_list(names, 8), ki;
	float *q = malloc((1001 + 1) * sizeof(float));
	uint16_t *a = malloc((1001 + 1) * sizeof(uint16_t));
	uint16_t *b = malloc((1001 + 1) * sizeof(uint16_t));
	size_t di, rep, i;

	for (ki = 0; ki < nk; ki++) {
		const struct hnsw_kern *k = hnsw_kern_find(names[ki]);

		cr_assert_not_null(k);
		rng_state = 0xd07;
		for (di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
			for (rep = 0; rep < 20; rep++) {
				uint32_t d = dims[di];
				size_t off = rep & 1; /* unaligned rows */
				double ref = 0, mag = 0, rh = 0, mh = 0;
				double bound, bh, got;

				for (i = 0; i < d; i++) {
					q[off + i] = (float)(2 * rnd() - 1);
					a[off + i] = hnsw_f2h(
						(float)(2 * rnd() - 1));
					b[off + i] = hnsw_f2h(
						(float)(2 * rnd() - 1));
				}
				for (i = 0; i < d; i++) {
					double x = hnsw_h2f(a[off + i]);
					double y = hnsw_h2f(b[off + i]);

					ref += q[off + i] * x;
					mag += fabs(q[off + i] * x);
					rh += x * y;
					mh += fabs(x * y);
				}
				bound = 1.01 * d * 0x1p-24 * mag + 1e-30;
				bh = 1.01 * d * 0x1p-24 * mh + 1e-30;
				got = k->hdot(q + off, a + off, d);
				cr_assert_leq(fabs(got - ref), bound,
					      "%s hdot dim %u: %.9g vs %.9g",
					      k->name, d, got, ref);
				got = k->hhdot(a + off, b + off, d);
				cr_assert_leq(fabs(got - rh), bh,
					      "%s hhdot dim %u: %.9g vs %.9g",
					      k->name, d, got, rh);
			}
	}
	free(q);
	free(a);
	free(b);
}

/* --- through the store ------------------------------------------------- */

Test(ann, store_recall_against_exact)
{
	struct store_stats s;
	double r;

	put_rows(0, NROWS);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.graphs, 1);
	cr_assert_eq(s.ann.nodes, NROWS);
	cr_assert_eq(s.ann.pending, 0);
	r = recall();
	cr_assert_geq(r, 0.95, "recall@10 %.3f", r);
}

Test(ann, below_threshold_is_exact)
{
	struct res a;

	put_rows(0, THRESH - 1);
	store_wait_index(st);
	run(queries, 0, NULL, 0, &a);
	cr_assert_eq(searches(), 0);
	cr_assert_eq(a.n, K);
}

Test(ann, exact_flag_equals_the_exact_scan)
{
	struct res a[NQ], e;
	size_t i, j;

	put_rows(0, NROWS);
	store_wait_index(st);
	for (i = 0; i < NQ; i++)
		run(queries + i * DIM, 1, NULL, 0, &a[i]);
	/* the same rows in a store that never builds a graph */
	store_close(st);
	backend_close(be);
	cr_assert_eq(backend_memory_open(&be), 0);
	open_store(0);
	put_rows(0, NROWS);
	for (i = 0; i < NQ; i++) {
		run(queries + i * DIM, 0, NULL, 0, &e);
		cr_assert_eq(a[i].n, e.n);
		for (j = 0; j < e.n; j++) {
			cr_assert_str_eq(a[i].ids[j], e.ids[j]);
			cr_assert_eq(a[i].scores[j], e.scores[j]);
		}
	}
	cr_assert_eq(searches(), 0);
}

Test(ann, graph_scores_are_the_exact_scores)
{
	struct res a, e;
	size_t i, j, k;

	put_rows(0, NROWS);
	store_wait_index(st);
	for (i = 0; i < NQ; i++) {
		run(queries + i * DIM, 0, NULL, 0, &a);
		run(queries + i * DIM, 1, NULL, 0, &e);
		for (j = 0; j < a.n; j++) {
			if (j)
				cr_assert_geq(a.scores[j - 1], a.scores[j]);
			for (k = 0; k < e.n; k++)
				if (strcmp(a.ids[j], e.ids[k]) == 0)
					cr_assert_eq(a.scores[j], e.scores[k]);
		}
	}
}

Test(ann, deleted_and_overwritten_rows_are_never_returned)
{
	float far[DIM];
	struct res a;
	size_t i, j;
	char id[32];

	put_rows(0, NROWS);
	store_wait_index(st);
	/* delete every row a query finds; none may come back */
	for (i = 0; i < NQ; i++) {
		run(queries + i * DIM, 0, NULL, 0, &a);
		for (j = 0; j < a.n; j++) {
			int rc = store_vec_del(st, "big", a.ids[j]);

			cr_assert(rc == 0 || rc == -ENOENT);
		}
		run(queries + i * DIM, 0, NULL, 0, &a);
		for (j = 0; j < a.n; j++) {
			float *v;
			uint32_t d;

			cr_assert_eq(store_vec_get(st, "big", a.ids[j], &v, &d),
				     0, "deleted row %s returned", a.ids[j]);
			free(v);
		}
	}
	/* a row moved far away no longer matches where it was */
	for (i = 0; i < DIM; i++)
		far[i] = i == 0 ? 1.0f : 0.0f;
	run(queries, 1, NULL, 0, &a);
	snprintf(id, sizeof(id), "%s", a.ids[0]);
	cr_assert_eq(store_vec_put(st, "big", id, far, DIM), 0);
	run(queries, 0, NULL, 0, &a);
	for (j = 0; j < a.n; j++)
		cr_assert_str_neq(a.ids[j], id);
	store_wait_index(st);
	run(queries, 0, NULL, 0, &a);
	for (j = 0; j < a.n; j++)
		cr_assert_str_neq(a.ids[j], id);
}

Test(ann, many_deletes_rebuild_the_graph)
{
	struct store_stats s;
	char id[32];
	size_t i;

	put_rows(0, NROWS);
	store_wait_index(st);
	for (i = 0; i < NROWS / 2 + 100; i++) {
		snprintf(id, sizeof(id), "r%05zu", i);
		cr_assert_eq(store_vec_del(st, "big", id), 0);
	}
	store_wait_index(st);
	store_get_stats(st, &s);
	/*
	 * Rebuilt from the rows left (a second build) once more than half
	 * were deleted; deletes that came after the rebuild started are
	 * marked in the new graph.
	 */
	cr_assert_eq(s.ann.graphs, 1);
	cr_assert_eq(s.ann.built, 2, "built %llu nodes %llu deleted %llu",
		     (unsigned long long)s.ann.built,
		     (unsigned long long)s.ann.nodes,
		     (unsigned long long)s.ann.deleted);
	cr_assert_eq(s.ann.nodes - s.ann.deleted, NROWS / 2 - 100);
	cr_assert_lt(s.ann.deleted, 100);
	cr_assert_eq(recall() >= 0.95, 1);
}

Test(ann, fresh_rows_are_found_before_they_are_linked)
{
	struct res a;
	size_t i;
	char id[32];

	put_rows(0, NROWS);
	store_wait_index(st);
	/* rows equal to the queries: each is its query's best match */
	for (i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "q%03zu", i);
		cr_assert_eq(
			store_vec_put(st, "big", id, queries + i * DIM, DIM),
			0);
		run(queries + i * DIM, 0, NULL, 0, &a);
		cr_assert_str_eq(a.ids[0], id);
	}
}

static const char **pick_ids(size_t every, size_t *n)
{
	const char **ids = malloc(NROWS * sizeof(*ids));
	static char buf[NROWS][16];
	size_t i;

	*n = 0;
	for (i = 0; i < NROWS; i += every) {
		snprintf(buf[i], sizeof(buf[i]), "r%05zu", i);
		ids[(*n)++] = buf[i];
	}
	return ids;
}

Test(ann, filtered_queries_return_only_allowed_rows)
{
	const char **ids;
	size_t n, i, j, hit = 0, tot = 0;
	uint64_t before;

	put_rows(0, NROWS);
	store_wait_index(st);
	/* every 3rd row: not selective, the graph searches with the filter */
	ids = pick_ids(3, &n);
	before = searches();
	for (i = 0; i < NQ; i++) {
		struct res a, e;

		run(queries + i * DIM, 0, ids, n, &a);
		run(queries + i * DIM, 1, ids, n, &e);
		cr_assert_eq(a.n, K);
		for (j = 0; j < a.n; j++)
			cr_assert_eq(atoi(a.ids[j] + 1) % 3, 0, "%s", a.ids[j]);
		hit += overlap(&a, &e);
		tot += e.n;
	}
	cr_assert_eq(searches() - before, NQ);
	cr_assert_geq((double)hit / tot, 0.95, "filtered recall %.3f",
		      (double)hit / tot);
	free(ids);

	/* 1 row in 100: selective, answered exactly */
	ids = pick_ids(100, &n);
	before = searches();
	for (i = 0; i < NQ; i++) {
		struct res a, e;

		run(queries + i * DIM, 0, ids, n, &a);
		run(queries + i * DIM, 1, ids, n, &e);
		cr_assert_eq(a.n, e.n);
		for (j = 0; j < a.n; j++)
			cr_assert_str_eq(a.ids[j], e.ids[j]);
	}
	cr_assert_eq(searches(), before);
	free(ids);
}

/* --- persistence ---------------------------------------------------------- */

static void reopen(void)
{
	store_close(st);
	open_store(THRESH);
}

Test(ann, no_build_builds_nothing_but_keeps_and_searches_a_loaded_graph)
{
	struct store_stats s;
	uint64_t before;
	struct res a;

	/* a store past the threshold, opened as lode opens it */
	store_close(st);
	open_store_opts(THRESH, 1);
	put_rows(0, NROWS - 100);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.built, 0);
	cr_assert_eq(s.ann.nodes, 0);
	run(rows, 0, NULL, 0, &a); /* answered exactly */
	cr_assert_str_eq(a.ids[0], "r00000");
	/* a graph the mount built... */
	reopen();
	store_wait_index(st);
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	/* ...is loaded, searched and saved again, new rows found exactly */
	store_close(st);
	open_store_opts(THRESH, 1);
	put_rows(NROWS - 100, NROWS);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.loaded, 1);
	before = searches();
	run(rows + (size_t)(NROWS - 1) * DIM, 0, NULL, 0, &a);
	cr_assert_gt(searches(), before);
	cr_assert_str_eq(a.ids[0], "r02999");
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.built, 0);
	reopen();
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.loaded, 1);
	cr_assert_eq(s.ann.discarded, 0);
}

Test(ann, graph_is_loaded_from_the_checkpoint_not_rebuilt)
{
	struct store_stats s;
	struct res a;
	double r;

	put_rows(0, NROWS - 100);
	store_wait_index(st);
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	/* after the checkpoint: replayed at open, queued, then linked */
	put_rows(NROWS - 100, NROWS);
	cr_assert_eq(store_vec_del(st, "big", "r00000"), 0);
	reopen();
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.loaded, 1);
	cr_assert_eq(s.ann.built, 0);
	cr_assert_eq(s.ann.discarded, 0);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.nodes, NROWS);
	cr_assert_eq(s.ann.deleted, 1);
	r = recall();
	cr_assert_geq(r, 0.95, "recall@10 after reopen %.3f", r);
	run(rows, 0, NULL, 0, &a);
	cr_assert_str_neq(a.ids[0], "r00000");
}

/*
 * A graph built in the background is saved by a checkpoint the builder
 * asks for once it is complete, so the next open loads it: a store that
 * is only read (or a mount with few commits) does not build it again at
 * every open.  Later growth by less than half the graph waits for the
 * next checkpoint anyone writes.
 */
Test(ann, completed_build_is_saved_without_a_checkpoint_by_the_caller)
{
	struct store_stats s;
	uint64_t saves;
	double r;

	/* one put a commit: the builder may save once midway, too */
	put_rows(0, NROWS - 200);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_geq(s.ann.saves, 1, "no checkpoint after the build");
	saves = s.ann.saves;
	cr_assert_eq(s.ann.save_failures, 0);
	cr_assert_eq(s.ann.pending, 0);
	/* a few more rows: linked, not worth a checkpoint of their own */
	put_rows(NROWS - 200, NROWS);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.saves, saves, "a checkpoint for 200 rows");
	reopen();
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.loaded, 1, "the graph was not in the checkpoint");
	cr_assert_eq(s.ann.built, 0);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.nodes, NROWS);
	cr_assert_eq(s.ann.saves, 0, "a loaded graph saved again");
	r = recall();
	cr_assert_geq(r, 0.95, "recall@10 after reopen %.3f", r);
}

/*
 * A checkpoint whose graph lacks some of its rows (saved while they were
 * still queued): at open those rows are queued by key, not copied, and
 * the builder links them from the engine's rows.
 */
Test(ann, rows_missing_from_a_saved_graph_are_queued_without_copies)
{
	struct store_stats s;
	double r;

	put_rows(0, NROWS / 2);
	store_wait_index(st);
	/* no builder: the new rows stay queued through the checkpoint */
	store_close(st);
	open_store_opts(THRESH, 1);
	put_rows(NROWS / 2, NROWS);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.pending, NROWS - NROWS / 2);
	cr_assert_eq(s.ann.pending_copies, NROWS - NROWS / 2,
		     "a put is queued with its row");
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	store_close(st);
	open_store_opts(THRESH, 1);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.loaded, 1);
	cr_assert_eq(s.ann.nodes, NROWS / 2);
	cr_assert_eq(s.ann.pending, NROWS - NROWS / 2);
	cr_assert_eq(s.ann.pending_copies, 0,
		     "%llu checkpoint rows copied into the queue",
		     (unsigned long long)s.ann.pending_copies);
	/* a builder links them from the engine */
	reopen();
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.nodes, NROWS);
	cr_assert_eq(s.ann.pending, 0);
	r = recall();
	cr_assert_geq(r, 0.95, "recall@10 %.3f", r);
}

static int find_ext(void *arg, const char *key, uint64_t size)
{
	size_t n = strlen(key);

	(void)size;
	if (n > 9 && strcmp(key + n - 9, "/ext-hnsw") == 0)
		snprintf(arg, 512, "%s", key);
	return 0;
}

Test(ann, damaged_graph_object_is_rebuilt)
{
	struct store_stats s;
	char key[512] = "";
	void *data;
	size_t len;
	double r;

	put_rows(0, NROWS);
	store_wait_index(st);
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	cr_assert_eq(backend_list(be, "ckpt/", find_ext, key), 0);
	cr_assert_neq(key[0], '\0', "no ext-hnsw object in the checkpoint");
	cr_assert_eq(backend_get(be, key, &data, &len), 0);
	((unsigned char *)data)[len / 2] ^= 0x40;
	cr_assert_eq(backend_put(be, key, data, len, NULL), 0);
	free(data);
	reopen();
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.loaded, 0);
	store_wait_index(st);
	store_get_stats(st, &s);
	cr_assert_eq(s.ann.built, 1);
	cr_assert_eq(s.ann.nodes, NROWS);
	r = recall();
	cr_assert_geq(r, 0.95, "recall@10 %.3f", r);
}

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static int buf_emit(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;

	if (b->n + len > b->cap) {
		b->cap = (b->n + len) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
	return 0;
}

/* Loads blob into a new manager and binds rows[] as a checkpoint would. */
static void load_blob(const struct buf *b, size_t changed,
		      struct store_ann_stats *s)
{
	struct store_ann *a;
	float v[DIM];
	char id[32];
	size_t i;

	cr_assert_eq(store_ann_new(THRESH, &a), 0);
	cr_assert_eq(store_ann_ext_load(a, b->p, b->n), 0);
	for (i = 0; i < NROWS; i++) {
		snprintf(id, sizeof(id), "r%05zu", i);
		memcpy(v, rows + i * DIM, sizeof(v));
		if (i == changed)
			v[3] += 0.5f;
		store_ann_observe(a, "vector_store/big", id, ENGINE_VEC, v,
				  sizeof(v), ENGINE_OBS_CHECKPOINT);
	}
	cr_assert_eq(store_ann_start(a, NULL), 0);
	store_ann_get_stats(a, s);
	store_ann_free(a);
}

Test(ann, graph_that_does_not_match_the_vectors_is_discarded)
{
	struct store_ann_stats s;
	struct buf b = { 0 };
	size_t cut;

	put_rows(0, NROWS);
	store_wait_index(st);
	cr_assert_eq(store_ann_ext_save(st->ann, buf_emit, &b), 0);

	load_blob(&b, SIZE_MAX, &s); /* the same rows: kept */
	cr_assert_eq(s.loaded, 1);
	cr_assert_eq(s.discarded, 0);
	cr_assert_eq(s.graphs, 1);

	load_blob(&b, 1234, &s); /* one row differs: dropped */
	cr_assert_eq(s.loaded, 0);
	cr_assert_eq(s.discarded, 1);
	cr_assert_eq(s.graphs, 0);

	/* cut anywhere: refused whole (the store then rebuilds) */
	for (cut = 0; cut < b.n; cut += b.n / 97 + 1) {
		struct store_ann *a;
		struct buf t = b;

		t.n = cut;
		cr_assert_eq(store_ann_new(THRESH, &a), 0);
		cr_assert_neq(store_ann_ext_load(a, t.p, t.n), 0, "cut %zu",
			      cut);
		store_ann_free(a);
	}
	free(b.p);
}

/* --- threads ---------------------------------------------------------------- */

struct qthread {
	atomic_int *stop;
	int failures;
	size_t queries;
};

static void *querier(void *arg)
{
	struct qthread *t = arg;
	size_t i = 0;

	while (!atomic_load(t->stop)) {
		struct store_query sq = { 0 };
		struct store_hit *hits;
		size_t n, j;

		sq.embedding = queries + (i++ % NQ) * DIM;
		sq.dim = DIM;
		sq.k = K;
		sq.mode = STORE_MODE_VECTOR;
		sq.ns = "big";
		if (store_query(st, &sq, &hits, &n)) {
			t->failures++;
			continue;
		}
		for (j = 1; j < n; j++)
			if (hits[j - 1].score < hits[j].score ||
			    strcmp(hits[j - 1].node_id, hits[j].node_id) == 0)
				t->failures++;
		store_hits_free(hits, n);
		t->queries++;
	}
	return NULL;
}

Test(ann, queries_while_rows_are_added_and_deleted)
{
	atomic_int stop = 0;
	struct qthread t[2] = { { &stop, 0, 0 }, { &stop, 0, 0 } };
	pthread_t th[2];
	struct res a;
	char id[32];
	size_t i;

	put_rows(0, THRESH + 200);
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, querier, &t[i]);
	put_rows(THRESH + 200, NROWS);
	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "r%05zu", i * 7);
		cr_assert_eq(store_vec_del(st, "big", id), 0);
	}
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	store_wait_index(st);
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(t[i].failures, 0);
		cr_assert_gt(t[i].queries, 0);
	}
	run(rows + 7 * DIM, 0, NULL, 0, &a);
	for (i = 0; i < a.n; i++)
		cr_assert_str_neq(a.ids[i], "r00007");
	run(rows + 8 * DIM, 0, NULL, 0, &a);
	cr_assert_str_eq(a.ids[0], "r00008"); /* itself, not deleted */
}
