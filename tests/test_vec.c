/* test_vec.c - exact top-k, MMR, hashed embedding and metadata filters. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <xxhash.h>

#include "core/engine.h"
#include "core/vec.h"
#include "core/vec_int.h"

/* XXH3 of the 1024 floats of the pinned embedding text below. */
#define VEC_TEST_EMBED_PIN 0xe4c7ea03534bf9b6ULL

/* --- helpers ------------------------------------------------------------- */

/* A view with up to 8 blocks over caller-owned rows and keys. */
struct tview {
	struct engine_vecs v;
	struct engine_vec_block blk[8];
};

static void tview_init(struct tview *t, uint32_t dim)
{
	memset(t, 0, sizeof(*t));
	t->v.dim = dim;
	t->v.blocks = t->blk;
}

static void tview_add(struct tview *t, const float *data, size_t n,
		      const char *const *keys)
{
	size_t i;

	cr_assert_lt(t->v.nblocks, 8);
	t->blk[t->v.nblocks].data = data;
	t->blk[t->v.nblocks].n = n;
	t->blk[t->v.nblocks].keys = keys;
	t->v.nblocks++;
	for (i = 0; i < n; i++)
		t->v.live += keys[i] != NULL;
}

static void assert_hit(const struct vec_hit *h, const char *key, double score)
{
	cr_assert_str_eq(h->key, key);
	cr_assert(fabs(h->score - score) < 1e-12, "%s: score %.17g, want %.17g",
		  key, h->score, score);
}

/* Deterministic pseudo-random floats in [-1, 1). */
static float lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static double ref_cos(const float *a, const float *b, uint32_t dim)
{
	double ab = 0, aa = 0, bb = 0;
	uint32_t i;

	for (i = 0; i < dim; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	if (aa == 0 || bb == 0)
		return 0;
	return ab / (sqrt(aa) * sqrt(bb));
}

/* --- vec_topk ------------------------------------------------------------ */

Test(vec_topk, scores_are_hand_computed_cosines_best_first)
{
	static const float rows[] = { 1, 0, 0, 1, 1, 1, -1, 0, 4, 3 };
	static const char *const keys[] = { "a", "b", "c", "d", "e" };
	static const float q[] = { 3, 4 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 5, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 10, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 5);
	assert_hit(&h[0], "c", 7.0 / (5 * sqrt(2))); /* (3,4).(1,1) */
	assert_hit(&h[1], "e", 24.0 / 25.0);	     /* (3,4).(4,3) / 25 */
	assert_hit(&h[2], "b", 0.8);
	assert_hit(&h[3], "a", 0.6);
	assert_hit(&h[4], "d", -0.6);
	vec_hits_free(h, n);
}

Test(vec_topk, equal_scores_keep_the_larger_key_like_llamaindex_heap)
{
	static const float rows[] = { 1, 0, 1, 0, 1, 0, 0, 1 };
	static const char *const keys[] = { "b", "a", "c", "z" };
	static const float q[] = { 1, 0 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 4, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 2, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 2);
	/* heapq pops the smallest (score, id): "a" goes first */
	assert_hit(&h[0], "c", 1);
	assert_hit(&h[1], "b", 1);
	vec_hits_free(h, n);

	cr_assert_eq(vec_topk(&t.v, q, 2, 3, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(h[2].key, "a");
	vec_hits_free(h, n);
}

Test(vec_topk, dead_rows_are_skipped)
{
	static const float rows[] = { 1, 0, 0.5f, 0.5f, 0, 1 };
	static const char *const keys[] = { NULL, "half", "up" };
	static const float q[] = { 1, 0 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 3, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 3, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0].key, "half");
	cr_assert_str_eq(h[1].key, "up");
	vec_hits_free(h, n);
}

struct seen {
	char keys[8][8];
	int n;
	const char *refuse;
	int error;
};

static int seen_filter(void *arg, const char *key)
{
	struct seen *s = arg;

	if (s->n < 8)
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->n++;
	if (s->error)
		return s->error;
	return strcmp(key, s->refuse) != 0;
}

Test(vec_topk, filter_refuses_rows_before_they_are_scored)
{
	static const float good[] = { 1, 0, 0, 1 };
	static const char *const good_keys[] = { "a", "b" };
	static const char *const bad_keys[] = { "x" };
	static const float q[] = { 1, 0 };
	struct seen s = { .refuse = "x" };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, good, 2, good_keys);
	/* no data at all behind "x": scoring it would crash */
	tview_add(&t, NULL, 1, bad_keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 5, seen_filter, &s, &h, &n), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.keys[2], "x");
	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0].key, "a");
	cr_assert_str_eq(h[1].key, "b");
	vec_hits_free(h, n);
}

Test(vec_topk, filter_error_aborts_the_search)
{
	static const float rows[] = { 1, 0 };
	static const char *const keys[] = { "a" };
	static const float q[] = { 1, 0 };
	struct seen s = { .refuse = "", .error = -EIO };
	struct tview t;
	struct vec_hit *h = (struct vec_hit *)1;
	size_t n = 7;

	tview_init(&t, 2);
	tview_add(&t, rows, 1, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 5, seen_filter, &s, &h, &n), -EIO);
	cr_assert_null(h);
	cr_assert_eq(n, 0);
}

Test(vec_topk, k_larger_than_rows_returns_all_and_k_zero_none)
{
	static const float rows[] = { 1, 0, 0, 1, 1, 1 };
	static const char *const keys[] = { "a", "b", "c" };
	static const float q[] = { 1, 0 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 3, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, (size_t)-1, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 3);
	vec_hits_free(h, n);
	cr_assert_eq(vec_topk(&t.v, q, 2, 0, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(h);
}

Test(vec_topk, multi_block_view_matches_brute_force)
{
	enum { ROWS = 300, DIM = 13 }; /* 13: exercises the kernel tail */
	static float data[ROWS * DIM];
	static char names[ROWS][8];
	static const char *keys[ROWS];
	float q[DIM];
	double want[ROWS];
	uint64_t seed = 42;
	struct tview t;
	struct vec_hit *h;
	size_t n, i, j;

	for (i = 0; i < ROWS * DIM; i++)
		data[i] = lcg(&seed);
	for (i = 0; i < DIM; i++)
		q[i] = lcg(&seed);
	for (i = 0; i < ROWS; i++) {
		snprintf(names[i], sizeof(names[i]), "k%03zu", i);
		/* every 7th row is dead */
		keys[i] = i % 7 == 3 ? NULL : names[i];
		want[i] = keys[i] ? ref_cos(q, data + i * DIM, DIM) : -2;
	}
	tview_init(&t, DIM);
	tview_add(&t, data, 100, keys);
	tview_add(&t, data + 100 * DIM, 1, keys + 100);
	tview_add(&t, data + 101 * DIM, 0, keys + 101);
	tview_add(&t, data + 101 * DIM, ROWS - 101, keys + 101);
	cr_assert_eq(vec_topk(&t.v, q, DIM, 25, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 25);
	for (i = 0; i < n; i++) {
		size_t better = 0, row = (size_t)atoi(h[i].key + 1);

		cr_assert(fabs(h[i].score - want[row]) < 1e-12);
		for (j = 0; j < ROWS; j++)
			better += keys[j] && want[j] > want[row];
		cr_assert_eq(better, i, "%s ranked %zu, %zu rows better",
			     h[i].key, i, better);
	}
	vec_hits_free(h, n);
}

Test(vec_topk, zero_vectors_score_zero_instead_of_nan)
{
	static const float rows[] = { 0, 0, 1, 0, -1, 0 };
	static const char *const keys[] = { "zero", "same", "opposite" };
	static const float q[] = { 1, 0 }, q0[] = { 0, 0 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 3, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 3, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 3);
	assert_hit(&h[0], "same", 1);
	assert_hit(&h[1], "zero", 0);
	assert_hit(&h[2], "opposite", -1);
	vec_hits_free(h, n);

	/* a zero query: every row 0.0, larger keys first */
	cr_assert_eq(vec_topk(&t.v, q0, 2, 3, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 3);
	assert_hit(&h[0], "zero", 0);
	assert_hit(&h[1], "same", 0);
	assert_hit(&h[2], "opposite", 0);
	cr_assert_not(signbit(h[2].score));
	vec_hits_free(h, n);
	cr_assert_eq(vec_cosine(q0, q, 2), 0.0);
}

Test(vec_topk, orthogonal_rows_report_positive_zero)
{
	static const float rows[] = { -1, 0 };
	static const char *const keys[] = { "a" };
	static const float q[] = { 0, 1 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 1, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 1, NULL, NULL, &h, &n), 0);
	cr_assert_eq(h[0].score, 0.0);
	cr_assert_not(signbit(h[0].score));
	vec_hits_free(h, n);
}

Test(vec_topk, nan_rows_are_skipped_and_nan_queries_refused)
{
	static const float rows[] = { NAN, 0, 1, 0, INFINITY, 1 };
	static const char *const keys[] = { "nan", "ok", "inf" };
	static const float q[] = { 1, 0 }, qbad[] = { 1, NAN };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 3, keys);
	cr_assert_eq(vec_topk(&t.v, q, 2, 3, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(h[0].key, "ok");
	vec_hits_free(h, n);
	cr_assert_eq(vec_topk(&t.v, qbad, 2, 3, NULL, NULL, &h, &n), -EINVAL);
}

Test(vec_topk, dimension_mismatch_is_einval)
{
	static const float rows[] = { 1, 0, 0, 0 };
	static const char *const keys[] = { "a" };
	static const float q[] = { 1, 0, 0, 0 };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 4);
	tview_add(&t, rows, 1, keys);
	cr_assert_eq(vec_topk(&t.v, q, 3, 1, NULL, NULL, &h, &n), -EINVAL);
	cr_assert_eq(vec_topk(&t.v, q, 0, 1, NULL, NULL, &h, &n), -EINVAL);
	cr_assert_eq(vec_mmr(&t.v, q, 3, 1, 0.5, NULL, NULL, &h, &n), -EINVAL);
	cr_assert_eq(vec_topk(NULL, q, 4, 1, NULL, NULL, &h, &n), -EINVAL);
	cr_assert_eq(vec_topk(&t.v, q, 4, 1, NULL, NULL, &h, &n), 0);
	vec_hits_free(h, n);
}

/* --- parity with SimpleVectorStore on the py_persist fixtures ------------ */

struct parity {
	json_t *metadata_dict;
	struct vec_filters *f;
};

static int parity_filter(void *arg, const char *key)
{
	struct parity *p = arg;

	return vec_filter_match(p->f, json_object_get(p->metadata_dict, key));
}

static json_t *load_fixture(const char *rel)
{
	const char *shared = getenv("LODEFS_SHARED");
	char path[4096];
	json_error_t jerr;
	json_t *j;

	cr_assert_not_null(shared, "LODEFS_SHARED is not set");
	snprintf(path, sizeof(path), "%s/fixtures/%s", shared, rel);
	j = json_load_file(path, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", path, jerr.text);
	return j;
}

/* Runs every expected query; `split` spreads the rows over blocks. */
static void run_parity(const char *dir, int split)
{
	char rel[256];
	json_t *store, *expected, *emb, *queries, *qj, *vecj;
	const char *key;
	static float data[64 * 8];
	static const char *keys[64];
	size_t nrows = 0, qi, i;
	uint32_t dim = 0;
	struct tview t;

	snprintf(rel, sizeof(rel), "%s/default__vector_store.json", dir);
	store = load_fixture(rel);
	snprintf(rel, sizeof(rel), "%s.expected.json", dir);
	expected = load_fixture(rel);
	emb = json_object_get(store, "embedding_dict");
	json_object_foreach(emb, key, vecj)
	{
		json_t *x;

		if (!dim)
			dim = (uint32_t)json_array_size(vecj);
		cr_assert_eq(json_array_size(vecj), dim);
		cr_assert_lt(2 * nrows + 2, 64);
		if (split)
			keys[nrows++] = NULL; /* a dead row before each */
		json_array_foreach(vecj, i, x) data[nrows * dim + i] =
			(float)json_number_value(x);
		keys[nrows++] = key;
	}
	tview_init(&t, dim);
	if (split) {
		for (i = 0; i < nrows; i += 4)
			tview_add(&t, data + i * dim,
				  nrows - i < 4 ? nrows - i : 4, keys + i);
	} else {
		tview_add(&t, data, nrows, keys);
	}

	queries = json_object_get(expected, "queries");
	cr_assert_gt(json_array_size(queries), 0);
	json_array_foreach(queries, qi, qj)
	{
		json_t *filters = json_object_get(qj, "filters");
		json_t *result = json_object_get(qj, "result");
		struct parity p = {
			.metadata_dict =
				json_object_get(store, "metadata_dict"),
		};
		float q[8];
		struct vec_hit *h;
		char err[256];
		size_t n;
		json_t *x;

		cr_assert_eq(
			json_array_size(json_object_get(qj, "query_embedding")),
			dim);
		json_array_foreach(json_object_get(qj, "query_embedding"), i, x)
			q[i] = (float)json_number_value(x);
		if (!json_is_null(filters)) {
			char *text = json_dumps(filters, 0);

			cr_assert_eq(vec_filter_parse(text, strlen(text), &p.f,
						      err, sizeof(err)),
				     0, "%s", err);
			free(text);
		}
		cr_assert_eq(
			vec_topk(&t.v, q, dim,
				 (size_t)json_integer_value(json_object_get(
					 qj, "similarity_top_k")),
				 p.f ? parity_filter : NULL, &p, &h, &n),
			0);
		cr_assert_eq(n, json_array_size(result), "%s query %zu", dir,
			     qi);
		for (i = 0; i < n; i++) {
			json_t *r = json_array_get(result, i);
			double want =
				json_real_value(json_object_get(r, "score"));

			cr_assert_str_eq(
				h[i].key,
				json_string_value(json_object_get(r, "id")),
				"%s query %zu rank %zu", dir, qi, i);
			cr_assert(fabs(h[i].score - want) < 1e-6,
				  "%s query %zu rank %zu: %.17g vs %.17g", dir,
				  qi, i, h[i].score, want);
		}
		vec_hits_free(h, n);
		vec_filter_free(p.f);
	}
	json_decref(store);
	json_decref(expected);
}

Test(vec_topk, parity_py_persist)
{
	run_parity("py_persist", 0);
	run_parity("py_persist", 1);
}

Test(vec_topk, parity_py_persist_single)
{
	run_parity("py_persist_single", 0);
	run_parity("py_persist_single", 1);
}

Test(vec_topk, parity_py_persist_v0_10)
{
	run_parity("py_persist_v0_10", 0);
	run_parity("py_persist_v0_10", 1);
}

Test(vec_topk, parity_holds_with_every_kernel)
{
	const char *names[8];
	int n = vec_kernel_list(names, 8), i;

	for (i = 0; i < n; i++) {
		cr_assert_eq(vec_kernel_select(names[i]), 0);
		run_parity("py_persist", 1);
		run_parity("py_persist_single", 0);
		run_parity("py_persist_v0_10", 1);
	}
	vec_kernel_select(NULL);
}

/* --- float32 kernels, rescoring, batches, coalescing ------------------- */

/*
 * Same keys in the same order with bit-identical scores as the reference
 * scan in double (vec_topk_double), which is what vec_topk was before the
 * float32 kernels: the parity the kernels must keep.
 */
static void assert_same_as_reference(const struct engine_vecs *v,
				     const float *q, uint32_t dim, size_t k,
				     vec_filter_fn *filter, void *arg,
				     const char *what)
{
	struct vec_hit *h, *r;
	size_t n, rn, i;
	double qq = 0;

	cr_assert_eq(vec_check(v, q, dim, &r, &rn, &qq), 0);
	cr_assert_eq(vec_topk_double(v, q, qq, dim, k, filter, arg, &r, &rn),
		     0);
	cr_assert_eq(vec_topk(v, q, dim, k, filter, arg, &h, &n), 0, "%s",
		     what);
	cr_assert_eq(n, rn, "%s (%s): %zu hits, reference %zu", what,
		     vec_kernel_name(), n, rn);
	for (i = 0; i < n; i++) {
		cr_assert_str_eq(h[i].key, r[i].key, "%s (%s) rank %zu", what,
				 vec_kernel_name(), i);
		cr_assert(h[i].score == r[i].score,
			  "%s (%s) rank %zu: %.17g vs %.17g", what,
			  vec_kernel_name(), i, h[i].score, r[i].score);
	}
	vec_hits_free(h, n);
	vec_hits_free(r, rn);
}

/* Every kernel this CPU runs, one after the other; returns how many. */
static int each_kernel(const char **names)
{
	int n = vec_kernel_list(names, 8);

	cr_assert_gt(n, 0);
	cr_assert_str_eq(names[n - 1], "generic");
	return n;
}

static int odd_rows_filter(void *arg, const char *key)
{
	(void)arg;
	return (key[strlen(key) - 1] - '0') % 2 == 1;
}

Test(vec_kernel, every_kernel_ranks_like_the_double_reference)
{
	static const uint32_t dims[] = { 1, 3, 7, 8, 13, 16, 17, 33, 384 };
	enum { ROWS = 700 };
	const char *names[8];
	int nk = each_kernel(names), ki;
	size_t di, i;

	for (ki = 0; ki < nk; ki++) {
		cr_assert_eq(vec_kernel_select(names[ki]), 0);
		cr_assert_str_eq(vec_kernel_name(), names[ki]);
		for (di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
			uint32_t dim = dims[di];
			float *data = malloc(ROWS * dim * sizeof(float));
			float *q = malloc(dim * sizeof(float));
			char(*names_)[8] = malloc(ROWS * 8);
			const char **keys = malloc(ROWS * sizeof(*keys));
			uint64_t seed = 7 + dim;
			struct tview t;

			cr_assert(data && q && names_ && keys);
			for (i = 0; i < ROWS * dim; i++)
				data[i] = lcg(&seed);
			for (i = 0; i < dim; i++)
				q[i] = lcg(&seed);
			for (i = 0; i < ROWS; i++) {
				snprintf(names_[i], 8, "r%04zu", i);
				keys[i] = i % 11 == 5 ? NULL : names_[i];
			}
			/* duplicates: exact ties broken by key */
			memcpy(data + 10 * dim, data + 20 * dim,
			       dim * sizeof(float));
			memcpy(data + 30 * dim, data + 20 * dim,
			       dim * sizeof(float));
			/* zero, tiny, huge and NaN rows */
			memset(data + 40 * dim, 0, dim * sizeof(float));
			for (i = 0; i < dim; i++) {
				data[41 * dim + i] = 1e-30f * q[i];
				data[42 * dim + i] = 1e30f * q[i];
			}
			data[43 * dim] = NAN;
			data[44 * dim + dim - 1] = INFINITY;
			tview_init(&t, dim);
			tview_add(&t, data, 300, keys);
			tview_add(&t, data + 300 * dim, 1, keys + 300);
			tview_add(&t, data + 301 * dim, ROWS - 301, keys + 301);
			assert_same_as_reference(&t.v, q, dim, 1, NULL, NULL,
						 "k=1");
			assert_same_as_reference(&t.v, q, dim, 10, NULL, NULL,
						 "k=10");
			assert_same_as_reference(&t.v, q, dim, 250, NULL, NULL,
						 "k=250");
			assert_same_as_reference(&t.v, q, dim, ROWS, NULL, NULL,
						 "k=all");
			assert_same_as_reference(&t.v, q, dim, 10,
						 odd_rows_filter, NULL,
						 "filtered");
			free(data);
			free(q);
			free(names_);
			free(keys);
		}
	}
	cr_assert_eq(vec_kernel_select(NULL), 0);
}

/*
 * Rows whose exact cosines differ by less than the float32 rounding noise:
 * the float32 ranking orders them wrongly, only the rescoring in double
 * with the full margin gets the reference's answer (this fails with the
 * margin set to zero).
 */
Test(vec_kernel, near_ties_are_ordered_by_the_double_rescoring)
{
	enum { DIM = 384, ROWS = 400 };
	static float data[ROWS * DIM], q[DIM], base[DIM];
	static char names_[ROWS][8];
	static const char *keys[ROWS];
	const char *names[8];
	int nk = each_kernel(names), ki;
	uint64_t seed = 99;
	struct tview t;
	size_t i, j;

	for (i = 0; i < DIM; i++) {
		q[i] = lcg(&seed);
		base[i] = lcg(&seed);
	}
	for (i = 0; i < ROWS; i++) {
		snprintf(names_[i], 8, "n%03zu", (i * 37) % ROWS);
		keys[i] = names_[i];
		/* the same row, every coordinate nudged by -1, 0 or +1 ulp */
		for (j = 0; j < DIM; j++) {
			float x = base[j];
			float u = lcg(&seed);

			data[i * DIM + j] =
				u < -0.33f  ? nextafterf(x, -INFINITY)
				: u > 0.33f ? nextafterf(x, INFINITY)
					    : x;
		}
	}
	tview_init(&t, DIM);
	tview_add(&t, data, ROWS, keys);
	for (ki = 0; ki < nk; ki++) {
		cr_assert_eq(vec_kernel_select(names[ki]), 0);
		assert_same_as_reference(&t.v, q, DIM, 1, NULL, NULL, "near");
		assert_same_as_reference(&t.v, q, DIM, 5, NULL, NULL, "near");
		assert_same_as_reference(&t.v, q, DIM, 37, NULL, NULL, "near");
	}
	vec_kernel_select(NULL);
}

Test(vec_kernel, select_refuses_unknown_names)
{
	const char *before = vec_kernel_name();

	cr_assert_eq(vec_kernel_select("sse9"), -EINVAL);
	cr_assert_str_eq(vec_kernel_name(), before);
	cr_assert_eq(vec_kernel_select("generic"), 0);
	cr_assert_str_eq(vec_kernel_name(), "generic");
	cr_assert_eq(vec_kernel_select(NULL), 0);
	cr_assert_str_eq(vec_kernel_name(), before);
}

static void env_generic(void)
{
	setenv("LODEFS_VEC_KERNEL", "generic", 1);
}

/* Each test runs in a fresh process: the choice is made at first use. */
Test(vec_kernel, environment_forces_a_kernel, .init = env_generic)
{
	cr_assert_str_eq(vec_kernel_name(), "generic");
}

/* A clustered data set for the batch and coalescing tests. */
struct tdata {
	uint32_t dim;
	size_t rows;
	float *data;
	char (*names)[8];
	const char **keys;
	struct tview t;
};

static void tdata_make(struct tdata *d, uint32_t dim, size_t rows)
{
	uint64_t seed = 1234;
	size_t i, j;

	d->dim = dim;
	d->rows = rows;
	d->data = malloc(rows * dim * sizeof(float));
	d->names = malloc(rows * sizeof(*d->names));
	d->keys = malloc(rows * sizeof(*d->keys));
	cr_assert(d->data && d->names && d->keys);
	for (i = 0; i < rows; i++) {
		/* 8 clusters: many rows close to each other */
		for (j = 0; j < dim; j++)
			d->data[i * dim + j] =
				(float)((i % 8) == j % 8) + 0.05f * lcg(&seed);
		snprintf(d->names[i], 8, "c%05zu", i);
		d->keys[i] = i % 13 == 4 ? NULL : d->names[i];
	}
	tview_init(&d->t, dim);
	tview_add(&d->t, d->data, rows / 2, d->keys);
	tview_add(&d->t, d->data + rows / 2 * dim, rows - rows / 2,
		  d->keys + rows / 2);
}

static void tdata_free(struct tdata *d)
{
	free(d->data);
	free(d->names);
	free(d->keys);
}

static void assert_hits_eq(const struct vec_hit *a, size_t na,
			   const struct vec_hit *b, size_t nb, const char *what)
{
	size_t i;

	cr_assert_eq(na, nb, "%s: %zu vs %zu hits", what, na, nb);
	for (i = 0; i < na; i++) {
		cr_assert_str_eq(a[i].key, b[i].key, "%s rank %zu", what, i);
		cr_assert(a[i].score == b[i].score, "%s rank %zu", what, i);
	}
}

Test(vec_topk, batch_answers_equal_solo_answers)
{
	enum { NQ = 9 };
	struct vec_query qs[NQ];
	float qv[NQ][48];
	struct tdata d;
	uint64_t seed = 5;
	size_t i, j;

	tdata_make(&d, 48, 3000);
	memset(qs, 0, sizeof(qs));
	for (i = 0; i < NQ; i++) {
		for (j = 0; j < 48; j++)
			qv[i][j] = (float)(j % 8 == i % 8) + 0.1f * lcg(&seed);
		qs[i].query = qv[i];
		qs[i].k = 1 + i * 3;
		qs[i].filter = i % 2 ? odd_rows_filter : NULL;
	}
	memset(qv[7], 0, sizeof(qv[7])); /* a zero query among them */
	qv[8][3] = NAN;			 /* and a refused one */
	cr_assert_eq(vec_topk_batch(&d.t.v, 48, qs, NQ), -EINVAL);
	for (i = 0; i < NQ; i++) {
		struct vec_hit *h;
		size_t n;
		int rc = vec_topk(&d.t.v, qv[i], 48, qs[i].k, qs[i].filter,
				  NULL, &h, &n);

		cr_assert_eq(qs[i].rc, rc, "query %zu", i);
		if (i == 8) {
			cr_assert_eq(rc, -EINVAL);
			cr_assert_null(qs[i].hits);
			continue;
		}
		cr_assert_eq(rc, 0);
		cr_assert_eq(n, qs[i].k);
		assert_hits_eq(qs[i].hits, qs[i].n, h, n, "batch");
		vec_hits_free(h, n);
		vec_hits_free(qs[i].hits, qs[i].n);
	}
	tdata_free(&d);
}

struct coalesce_arg {
	const struct engine_vecs *v;
	const float *q;
	size_t k;
	vec_filter_fn *filter;
	struct vec_hit *hits;
	size_t n;
	int rc;
};

static void *coalesce_thread(void *p)
{
	struct coalesce_arg *a = p;

	a->rc = vec_topk_shared(a, "coll", a->v, a->q, 32, a->k, a->filter,
				NULL, &a->hits, &a->n);
	return NULL;
}

static int coalesce_owner; /* one store for all threads */

static void *coalesce_thread_owner(void *p)
{
	struct coalesce_arg *a = p;

	/* one owner for all: the same collection of the same store */
	a->rc = vec_topk_shared(&coalesce_owner, "coll", a->v, a->q, 32, a->k,
				a->filter, NULL, &a->hits, &a->n);
	return NULL;
}

Test(vec_topk, coalesced_answers_equal_solo_answers)
{
	enum { NT = 8 };
	struct coalesce_arg a[NT];
	pthread_t th[NT];
	float qv[NT][32];
	uint64_t seed = 77, p0, q0, p1, q1;
	struct tdata d;
	size_t i, j;

	tdata_make(&d, 32, 5000);
	for (i = 0; i < NT; i++) {
		for (j = 0; j < 32; j++)
			qv[i][j] = (float)(j % 8 == i % 8) + 0.2f * lcg(&seed);
		a[i] = (struct coalesce_arg){
			.v = &d.t.v,
			.q = qv[i],
			.k = 3 + i,
			.filter = i % 3 ? NULL : odd_rows_filter
		};
	}
	/* the first leader waits until all eight are queued: one pass */
	vec_coalesce_stats(&p0, &q0);
	vec_coalesce_hold(NT);
	for (i = 0; i < NT; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, coalesce_thread_owner,
					    &a[i]),
			     0);
	for (i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	vec_coalesce_stats(&p1, &q1);
	cr_assert_eq(p1 - p0, 1, "%llu passes", (unsigned long long)(p1 - p0));
	cr_assert_eq(q1 - q0, NT);
	for (i = 0; i < NT; i++) {
		struct vec_hit *h;
		size_t n;

		cr_assert_eq(a[i].rc, 0);
		cr_assert_eq(vec_topk(&d.t.v, qv[i], 32, a[i].k, a[i].filter,
				      NULL, &h, &n),
			     0);
		assert_hits_eq(a[i].hits, a[i].n, h, n, "coalesced");
		vec_hits_free(h, n);
		vec_hits_free(a[i].hits, a[i].n);
	}

	/* different owners are different stores: never one pass */
	vec_coalesce_stats(&p0, &q0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(
			pthread_create(&th[i], NULL, coalesce_thread, &a[i]),
			0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	vec_coalesce_stats(&p1, &q1);
	cr_assert_eq(p1 - p0, 4);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(a[i].rc, 0);
		vec_hits_free(a[i].hits, a[i].n);
	}
	tdata_free(&d);
}

/* Many threads, no hold: whatever gets coalesced, answers stay solo's. */
Test(vec_topk, concurrent_shared_queries_under_load)
{
	enum { NT = 16 };
	struct coalesce_arg a[NT];
	pthread_t th[NT];
	float qv[NT][32];
	uint64_t seed = 3;
	struct tdata d;
	size_t i, j;
	int round;

	tdata_make(&d, 32, 4000);
	for (round = 0; round < 5; round++) {
		for (i = 0; i < NT; i++) {
			for (j = 0; j < 32; j++)
				qv[i][j] = lcg(&seed);
			a[i] = (struct coalesce_arg){ .v = &d.t.v,
						      .q = qv[i],
						      .k = 1 + i % 7 };
			cr_assert_eq(pthread_create(&th[i], NULL,
						    coalesce_thread_owner,
						    &a[i]),
				     0);
		}
		for (i = 0; i < NT; i++) {
			struct vec_hit *h;
			size_t n;

			pthread_join(th[i], NULL);
			cr_assert_eq(a[i].rc, 0);
			cr_assert_eq(vec_topk(&d.t.v, qv[i], 32, a[i].k, NULL,
					      NULL, &h, &n),
				     0);
			assert_hits_eq(a[i].hits, a[i].n, h, n, "load");
			vec_hits_free(h, n);
			vec_hits_free(a[i].hits, a[i].n);
		}
	}
	tdata_free(&d);
}

/* --- vec_mmr ------------------------------------------------------------- */

/* get_top_k_mmr_embeddings, transcribed; rows in key order. */
static size_t ref_mmr(const float *rows, size_t nrows, uint32_t dim,
		      const float *q, size_t k, double t, size_t *pick,
		      double *score)
{
	double sim[64], best;
	int taken[64] = { 0 };
	size_t i, m = 0, last = 0, bi = 0;

	for (i = 0; i < nrows; i++)
		sim[i] = ref_cos(q, rows + i * dim, dim);
	best = -INFINITY;
	for (i = 0; i < nrows; i++)
		if (sim[i] * t > best) {
			best = sim[i] * t;
			bi = i;
		}
	while (m < k && m < nrows) {
		pick[m] = bi;
		score[m++] = best;
		taken[bi] = 1;
		last = bi;
		best = -INFINITY;
		for (i = 0; i < nrows; i++) {
			double s;

			if (taken[i])
				continue;
			s = t * sim[i] - (1 - t) * ref_cos(rows + i * dim,
							   rows + last * dim,
							   dim);
			if (s > best) {
				best = s;
				bi = i;
			}
		}
	}
	return m;
}

Test(vec_mmr, second_pick_is_the_diverse_row_not_the_duplicate)
{
	static const float rows[] = {
		1,    0.1f,  0,	   /* a: close to the query */
		1,    0.12f, 0,	   /* b: near duplicate of a */
		0.6f, 0,     0.8f, /* c: different direction */
	};
	static const char *const keys[] = { "a", "b", "c" };
	static const float q[] = { 1, 0, 0.1f };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 3);
	tview_add(&t, rows, 3, keys);
	cr_assert_eq(vec_topk(&t.v, q, 3, 2, NULL, NULL, &h, &n), 0);
	cr_assert_str_eq(h[1].key, "b");
	vec_hits_free(h, n);

	cr_assert_eq(vec_mmr(&t.v, q, 3, 2, 0.5, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0].key, "a");
	cr_assert_str_eq(h[1].key, "c");
	/* first score is threshold * similarity, as LlamaIndex reports */
	cr_assert(fabs(h[0].score - 0.5 * ref_cos(q, rows, 3)) < 1e-12);
	cr_assert(fabs(h[1].score - (0.5 * ref_cos(q, rows + 6, 3) -
				     0.5 * ref_cos(rows + 6, rows, 3))) <
		  1e-12);
	vec_hits_free(h, n);
}

Test(vec_mmr, matches_llamaindex_algorithm_on_random_rows)
{
	enum { ROWS = 40, DIM = 11 };
	static float rows[ROWS * DIM];
	static char names[ROWS][8];
	static const char *keys[ROWS];
	static const double thresholds[] = { 0.5, 0.0, 1.0, 0.3, 0.9 };
	float q[DIM];
	size_t pick[ROWS], i, ti, n, m;
	double score[ROWS];
	uint64_t seed = 7;
	struct tview t;
	struct vec_hit *h;

	for (i = 0; i < ROWS * DIM; i++)
		rows[i] = lcg(&seed);
	for (i = 0; i < DIM; i++)
		q[i] = lcg(&seed);
	for (i = 0; i < ROWS; i++) {
		snprintf(names[i], sizeof(names[i]), "r%02zu", i);
		keys[i] = names[i];
	}
	tview_init(&t, DIM);
	tview_add(&t, rows, 15, keys);
	tview_add(&t, rows + 15 * DIM, ROWS - 15, keys + 15);
	for (ti = 0; ti < sizeof(thresholds) / sizeof(thresholds[0]); ti++) {
		m = ref_mmr(rows, ROWS, DIM, q, 12, thresholds[ti], pick,
			    score);
		cr_assert_eq(vec_mmr(&t.v, q, DIM, 12, thresholds[ti], NULL,
				     NULL, &h, &n),
			     0);
		cr_assert_eq(n, m);
		for (i = 0; i < n; i++) {
			cr_assert_str_eq(h[i].key, keys[pick[i]],
					 "t=%g rank %zu", thresholds[ti], i);
			cr_assert(fabs(h[i].score - score[i]) < 1e-12);
		}
		vec_hits_free(h, n);
	}
}

Test(vec_mmr, filter_dead_rows_and_k_bounds)
{
	static const float rows[] = { 1, 0, 0, 1, 1, 1, 1, 0 };
	static const char *const keys[] = { "a", NULL, "c", "x" };
	static const float q[] = { 1, 0 };
	struct seen s = { .refuse = "x" };
	struct tview t;
	struct vec_hit *h;
	size_t n;

	tview_init(&t, 2);
	tview_add(&t, rows, 4, keys);
	cr_assert_eq(vec_mmr(&t.v, q, 2, 10, 0.5, seen_filter, &s, &h, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0].key, "a");
	cr_assert_str_eq(h[1].key, "c");
	vec_hits_free(h, n);
	cr_assert_eq(vec_mmr(&t.v, q, 2, 0, 0.5, NULL, NULL, &h, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(vec_mmr(&t.v, q, 2, 1, NAN, NULL, NULL, &h, &n), -EINVAL);
}

/* --- vec_embed ----------------------------------------------------------- */

static float *embed(const char *text, uint32_t dim)
{
	float *v = malloc(dim * sizeof(*v));

	cr_assert_not_null(v);
	cr_assert_eq(vec_embed_hash(text, strlen(text), dim, v), 0);
	return v;
}

static double norm(const float *v, uint32_t dim)
{
	double s = 0;
	uint32_t i;

	for (i = 0; i < dim; i++)
		s += (double)v[i] * v[i];
	return sqrt(s);
}

static int same_embedding(const char *a, const char *b)
{
	float *x = embed(a, VEC_EMBED_DIM_DEFAULT);
	float *y = embed(b, VEC_EMBED_DIM_DEFAULT);
	int same = !memcmp(x, y, VEC_EMBED_DIM_DEFAULT * sizeof(float));

	free(x);
	free(y);
	return same;
}

/* The documented construction, rebuilt here from the header alone. */
static void spec_add(double *acc, uint32_t dim, const char *s, size_t n,
		     uint64_t seed, double w)
{
	uint64_t h = XXH3_64bits_withSeed(s, n, seed);

	acc[h % dim] += (h >> 63) ? -w : w;
}

Test(vec_embed, follows_the_documented_construction)
{
	/* "Fig fig, FIG!  kiwi": word fig tf 3, kiwi tf 1, with grams */
	static const char *const fig_grams[] = { "<fi",	 "fig",	 "ig>",
						 "<fig", "fig>", "<fig>" };
	static const char *const kiwi_grams[] = {
		"<ki",	"kiw",	"iwi",	 "wi>",	  "<kiw",
		"kiwi", "iwi>", "<kiwi", "kiwi>",
	};
	enum { DIM = 4096 };
	double acc[DIM] = { 0 }, s = 0, w3 = 1 + log(3.0);
	float *v = embed("Fig fig, FIG!  kiwi", DIM);
	size_t i;

	spec_add(acc, DIM, "fig", 3, VEC_EMBED_SEED_WORD, w3);
	spec_add(acc, DIM, "kiwi", 4, VEC_EMBED_SEED_WORD, 1);
	for (i = 0; i < sizeof(fig_grams) / sizeof(fig_grams[0]); i++)
		spec_add(acc, DIM, fig_grams[i], strlen(fig_grams[i]),
			 VEC_EMBED_SEED_GRAM, w3);
	for (i = 0; i < sizeof(kiwi_grams) / sizeof(kiwi_grams[0]); i++)
		spec_add(acc, DIM, kiwi_grams[i], strlen(kiwi_grams[i]),
			 VEC_EMBED_SEED_GRAM, 1);
	for (i = 0; i < DIM; i++)
		s += acc[i] * acc[i];
	for (i = 0; i < DIM; i++)
		cr_assert(fabs(v[i] - acc[i] / sqrt(s)) < 1e-7, "bucket %zu",
			  i);
	free(v);
}

Test(vec_embed, is_deterministic_and_pinned)
{
	static const char text[] =
		"The quick brown fox jumps over the lazy dog; "
		"Ünïcödé Straße ПРИВЕТ 東京タワー 42";
	float *a = embed(text, VEC_EMBED_DIM_DEFAULT);
	float *b = embed(text, VEC_EMBED_DIM_DEFAULT);

	cr_assert_eq(memcmp(a, b, VEC_EMBED_DIM_DEFAULT * sizeof(float)), 0);
	/*
	 * Stored built-in vectors depend on these exact bits: if this
	 * fails, the embedding changed and existing stores need re-ingest.
	 */
	cr_assert_eq(XXH3_64bits(a, VEC_EMBED_DIM_DEFAULT * sizeof(float)),
		     VEC_TEST_EMBED_PIN, "pin is 0x%016llxULL",
		     (unsigned long long)XXH3_64bits(a, VEC_EMBED_DIM_DEFAULT *
								sizeof(float)));
	free(a);
	free(b);
}

/*
 * 40 KB of a small vocabulary (most words repeat), words seen once and
 * runs cut at 64 code points: the feature table grows several times and
 * repeated words are counted, not hashed again.  The pins are those of the
 * implementation that added every occurrence one by one.
 */
static size_t long_text(char *buf, size_t cap)
{
	static const char *const words[] = {
		"river",  "Mountain", "valley", "harvest", "ancient",
		"city",	  "market",   "winter", "Straße",  "école",
		"Привет", "東京",     "the",	"of",	   "and",
		"a",	  "is",	      "apple",	"apples",  "orchard",
	};
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	size_t n = 0, i;

	while (n + 80 < cap) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		if (s % 97 == 0) { /* a run longer than 64 code points */
			for (i = 0; i < 70; i++)
				buf[n++] = (char)('a' + (s >> (i % 50)) % 26);
		} else {
			const char *w =
				words[s % (sizeof(words) / sizeof(words[0]))];

			memcpy(buf + n, w, strlen(w));
			n += strlen(w);
			if (s % 7 == 0) /* a word of its own, seen once */
				n += (size_t)snprintf(
					buf + n, cap - n, "%llx",
					(unsigned long long)(s >> 20));
		}
		buf[n++] = s % 5 ? ' ' : '\n';
	}
	buf[n] = '\0';
	return n;
}

Test(vec_embed, a_long_repetitive_text_is_pinned)
{
	static const struct {
		uint32_t dim;
		uint64_t pin;
	} pins[] = {
		{ 1024, 0x7911c1036cd257e4ULL },
		{ 100, 0x7d76d7367aa9cec3ULL },
		{ 7, 0xa38278b056dc0a21ULL },
	};
	static char text[40000];
	float v[1024];
	size_t n = long_text(text, sizeof(text)), i;

	cr_assert_eq(n, 39926);
	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		uint64_t h;

		cr_assert_eq(vec_embed_hash(text, n, pins[i].dim, v), 0);
		h = XXH3_64bits(v, pins[i].dim * sizeof(float));
		cr_assert_eq(h, pins[i].pin, "dim %u: pin is 0x%016llxULL",
			     pins[i].dim, (unsigned long long)h);
	}
}

Test(vec_embed, vectors_have_unit_norm)
{
	static const char *const texts[] = {
		"a",
		"apple pie",
		"Rust is a memory safe systems language",
		"Paris is the capital of France.",
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		float *v = embed(texts[i], 384);

		cr_assert(fabs(norm(v, 384) - 1) < 1e-6, "%s", texts[i]);
		free(v);
	}
}

Test(vec_embed, text_without_words_is_the_zero_vector)
{
	static const char *const texts[] = { "", "   ", "!!! ... ---",
					     "\xe2\x80\x94 \xf0\x9f\x98\x80" };
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		float *v = embed(texts[i], 64);

		cr_assert_eq(norm(v, 64), 0.0, "%s", texts[i]);
		free(v);
	}
	cr_assert_eq(vec_embed_hash(NULL, 0, 64, (float[64]){ 1 }), 0);
}

Test(vec_embed, similar_texts_are_closer_than_unrelated_ones)
{
	float *a = embed("how do apples grow on apple trees", 1024);
	float *b = embed("Apple trees: growing apples in an orchard", 1024);
	float *c = embed("the stock market crashed in October 1929", 1024);
	float *d = embed("apples", 1024);
	float *e = embed("apple", 1024);

	cr_assert_gt(vec_cosine(a, b, 1024), vec_cosine(a, c, 1024) + 0.2);
	/* shared n-grams make inflections similar */
	cr_assert_gt(vec_cosine(d, e, 1024), 0.5);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
}

Test(vec_embed, case_punctuation_and_repetition_do_not_matter)
{
	cr_assert(same_embedding("Hello, World!", "hello world"));
	cr_assert(same_embedding("ÉCOLE Straße", "école straße"));
	cr_assert(same_embedding("ПРИВЕТ Мир", "привет мир"));
	/* every tf doubles: weights scale alike, the direction stays */
	cr_assert(same_embedding("fig kiwi", "fig kiwi fig kiwi"));
	cr_assert_not(same_embedding("fig kiwi", "fig kiwi fig"));
	/* invalid UTF-8 separates words like a space */
	cr_assert(same_embedding("ab\xff"
				 "cd",
				 "ab cd"));
	cr_assert_not(same_embedding("abcd", "ab cd"));
}

Test(vec_embed, long_runs_are_cut_not_dropped)
{
	char run[1001];
	float *v;

	memset(run, 'x', 1000);
	run[1000] = '\0';
	v = embed(run, 256);
	cr_assert(fabs(norm(v, 256) - 1) < 1e-6);
	free(v);
}

Test(vec_embed, bad_dimensions_are_einval)
{
	float v[4];

	cr_assert_eq(vec_embed_hash("a", 1, 0, v), -EINVAL);
	cr_assert_eq(vec_embed_hash("a", 1, VEC_EMBED_DIM_MAX + 1, v), -EINVAL);
	cr_assert_eq(vec_embed_hash("a", 1, 4, NULL), -EINVAL);
}

/* --- vec_filter ---------------------------------------------------------- */

/* 1/0 for a JSON filter against JSON metadata ("" for no metadata). */
static int fm(const char *filters, const char *metadata)
{
	struct vec_filters *f;
	json_t *md = NULL;
	char err[256];
	int r;

	cr_assert_eq(vec_filter_parse(filters, strlen(filters), &f, err,
				      sizeof(err)),
		     0, "%s: %s", filters, err);
	if (*metadata) {
		md = json_loads(metadata, 0, NULL);
		cr_assert_not_null(md, "%s", metadata);
	}
	r = vec_filter_match(f, md);
	json_decref(md);
	vec_filter_free(f);
	return r;
}

/* One filter {"key": "k", "operator": op, "value": value}. */
static int op1(const char *op, const char *value, const char *metadata)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"filters\": [{\"key\": \"k\", \"operator\": \"%s\", "
		 "\"value\": %s}]}",
		 op, value);
	return fm(buf, metadata);
}

/* A where= expression against metadata. */
static int wm(const char *expr, const char *metadata)
{
	struct vec_filters *f;
	json_t *md = json_loads(metadata, 0, NULL);
	char err[256];
	int r;

	cr_assert_not_null(md);
	cr_assert_eq(vec_filter_new(VEC_COND_AND, &f), 0);
	cr_assert_eq(vec_filter_parse_where(expr, f, err, sizeof(err)), 0,
		     "%s: %s", expr, err);
	cr_assert_eq(vec_filter_count(f), 1);
	r = vec_filter_match(f, md);
	json_decref(md);
	vec_filter_free(f);
	return r;
}

static void parse_fails(const char *json, const char *needle)
{
	struct vec_filters *f = (struct vec_filters *)1;
	char err[256] = "";

	cr_assert_eq(vec_filter_parse(json, strlen(json), &f, err, sizeof(err)),
		     -EINVAL, "%s", json);
	cr_assert_null(f);
	cr_assert(strstr(err, needle), "%s: \"%s\" lacks \"%s\"", json, err,
		  needle);
}

static void where_fails(const char *expr, const char *needle)
{
	struct vec_filters *f;
	char err[256] = "";

	cr_assert_eq(vec_filter_new(VEC_COND_AND, &f), 0);
	cr_assert_eq(vec_filter_parse_where(expr, f, err, sizeof(err)), -EINVAL,
		     "%s", expr);
	cr_assert_eq(vec_filter_count(f), 0, "%s changed f", expr);
	cr_assert(strstr(err, needle), "%s: \"%s\" lacks \"%s\"", expr, err,
		  needle);
	vec_filter_free(f);
}

Test(vec_filter, eq_uses_python_equality)
{
	cr_assert(op1("==", "2021", "{\"k\": 2021}"));
	cr_assert(op1("==", "2021.0", "{\"k\": 2021}"));
	cr_assert(op1("==", "1", "{\"k\": true}"));
	cr_assert_not(op1("==", "\"2021\"", "{\"k\": 2021}"));
	cr_assert(op1("==", "\"alice\"", "{\"k\": \"alice\"}"));
	cr_assert_not(op1("==", "\"Alice\"", "{\"k\": \"alice\"}"));
	cr_assert(op1("==", "[1, \"a\"]", "{\"k\": [1.0, \"a\"]}"));
	cr_assert_not(op1("==", "\"a\"", "{\"k\": [\"a\"]}"));
	cr_assert_not(op1("==", "2021", "{}"));
	cr_assert_not(op1("==", "null", "{\"k\": null}"));
}

Test(vec_filter, legacy_entry_without_operator_is_equality)
{
	static const char f[] =
		"{\"filters\": [{\"key\": \"author\", \"value\": \"alice\"}]}";

	cr_assert(fm(f, "{\"author\": \"alice\"}"));
	cr_assert_not(fm(f, "{\"author\": \"bob\"}"));
}

Test(vec_filter, ne_and_nin_hold_for_a_missing_key)
{
	cr_assert(op1("!=", "1", "{\"k\": 2}"));
	cr_assert_not(op1("!=", "1", "{\"k\": 1.0}"));
	cr_assert(op1("!=", "1", "{}"));
	cr_assert(op1("!=", "1", "{\"k\": null}"));
	cr_assert(op1("nin", "[\"a\"]", "{}"));
	cr_assert(op1("nin", "[\"a\"]", "{\"k\": \"b\"}"));
	cr_assert_not(op1("nin", "[\"a\"]", "{\"k\": \"a\"}"));
}

Test(vec_filter, ordering_compares_like_python)
{
	cr_assert(op1(">", "2020.5", "{\"k\": 2021}"));
	cr_assert_not(op1(">", "2021", "{\"k\": 2021}"));
	cr_assert(op1(">=", "2021", "{\"k\": 2021.0}"));
	cr_assert(op1("<", "1", "{\"k\": false}"));
	cr_assert(op1("<=", "\"b\"", "{\"k\": \"abc\"}"));
	cr_assert(op1(">", "\"B\"", "{\"k\": \"a\"}")); /* code points */
	cr_assert(op1("<", "[1, 3]", "{\"k\": [1, 2, 9]}"));
	cr_assert(op1("<", "[1, 2]", "{\"k\": [1]}"));
	/* exact int/float comparison beyond 2^53 */
	cr_assert(op1(">", "9007199254740992.0", "{\"k\": 9007199254740993}"));
	cr_assert_not(op1(">", "2020", "{}"));
	cr_assert_not(op1("<=", "2020", "{\"k\": null}"));
}

Test(vec_filter, type_errors_exclude_the_node_whatever_the_condition)
{
	/* "2021" > 2020 raises TypeError in Python */
	cr_assert_not(op1(">", "2020", "{\"k\": \"2021\"}"));
	cr_assert_not(op1("<=", "2020", "{\"k\": \"2021\"}"));
	cr_assert_not(fm("{\"condition\": \"not\", \"filters\": [{\"key\": "
			 "\"k\", \"operator\": \">\", \"value\": 1}]}",
			 "{\"k\": \"x\"}"));
	cr_assert_not(fm("{\"condition\": \"or\", \"filters\": ["
			 "{\"key\": \"a\", \"value\": 1},"
			 "{\"key\": \"k\", \"operator\": \">\", \"value\": 1}"
			 "]}",
			 "{\"a\": 1, \"k\": [1]}"));
	/* the same OR without the error matches */
	cr_assert(fm("{\"condition\": \"or\", \"filters\": ["
		     "{\"key\": \"a\", \"value\": 1},"
		     "{\"key\": \"k\", \"operator\": \">\", \"value\": 1}"
		     "]}",
		     "{\"a\": 1, \"k\": 0}"));
}

Test(vec_filter, in_and_nin_test_membership)
{
	cr_assert(op1("in", "[\"a.txt\", \"b.txt\"]", "{\"k\": \"b.txt\"}"));
	cr_assert_not(op1("in", "[\"a.txt\"]", "{\"k\": \"c.txt\"}"));
	cr_assert(op1("in", "[1, 2]", "{\"k\": 2.0}"));
	cr_assert_not(op1("in", "[\"1\"]", "{\"k\": 1}"));
	cr_assert_not(op1("in", "[\"a\"]", "{}"));
	/* a string value: substring test */
	cr_assert(op1("in", "\"apple pie\"", "{\"k\": \"pie\"}"));
	/* 5 in "abc" raises: neither in nor nin */
	cr_assert_not(op1("in", "\"abc\"", "{\"k\": 5}"));
	cr_assert_not(op1("nin", "\"abc\"", "{\"k\": 5}"));
	cr_assert_not(op1("nin", "7", "{\"k\": 5}"));
}

Test(vec_filter, contains_looks_inside_the_metadata_value)
{
	cr_assert(op1("contains", "\"red\"", "{\"k\": [\"red\", \"green\"]}"));
	cr_assert_not(op1("contains", "\"blue\"", "{\"k\": [\"red\"]}"));
	cr_assert(op1("contains", "2", "{\"k\": [1, 2.0]}"));
	cr_assert(op1("contains", "\"pie\"", "{\"k\": \"apple pie\"}"));
	cr_assert(op1("contains", "\"x\"", "{\"k\": {\"x\": 0}}"));
	cr_assert_not(op1("contains", "1", "{\"k\": \"1\"}"));
	cr_assert_not(op1("contains", "1", "{\"k\": 1}"));
	cr_assert_not(op1("contains", "\"red\"", "{}"));
}

Test(vec_filter, text_match_is_case_sensitive_and_needs_strings)
{
	cr_assert(op1("text_match", "\"Apple\"", "{\"k\": \"Apple Pie\"}"));
	cr_assert_not(op1("text_match", "\"apple\"", "{\"k\": \"Apple Pie\"}"));
	cr_assert_not(op1("text_match", "\"1\"", "{\"k\": 1}"));
	cr_assert_not(op1("text_match", "\"a\"", "{}"));
	cr_assert(op1("text_match_insensitive", "\"APPLE\"",
		      "{\"k\": \"Apple Pie\"}"));
	cr_assert(op1("text_match_insensitive",
		      "\"\xc3\xa9"
		      "cole\"",
		      "{\"k\": \"GRANDE \xc3\x89"
		      "COLE\"}"));
	cr_assert(op1("text_match_insensitive", "\"\xd0\xbc\xd0\xb8\xd1\x80\"",
		      "{\"k\": \"\xd0\x9c\xd0\x98\xd0\xa0\"}"));
	cr_assert_not(op1("text_match_insensitive", "\"pear\"",
			  "{\"k\": \"Apple Pie\"}"));
	cr_assert_not(op1("text_match_insensitive", "1", "{\"k\": \"1\"}"));
}

Test(vec_filter, any_and_all_short_circuit_like_python)
{
	static const char tags[] = "{\"k\": [\"red\", \"green\"]}";

	cr_assert(op1("any", "[\"blue\", \"red\"]", tags));
	cr_assert_not(op1("any", "[\"blue\"]", tags));
	cr_assert_not(op1("any", "[]", tags));
	cr_assert(op1("all", "[\"green\", \"red\"]", tags));
	cr_assert_not(op1("all", "[\"red\", \"blue\"]", tags));
	cr_assert(op1("all", "[]", tags));
	cr_assert_not(op1("any", "[\"red\"]", "{}"));
	/* 1 in "abc" raises, unless any() stopped before it */
	cr_assert(op1("any", "[\"a\", 1]", "{\"k\": \"abc\"}"));
	cr_assert_not(op1("all", "[\"a\", 1]", "{\"k\": \"abc\"}"));
	/* a string value iterates its characters */
	cr_assert(op1("any", "\"xr\"", "{\"k\": [\"r\"]}"));
	cr_assert_not(op1("all", "\"xr\"", "{\"k\": [\"r\"]}"));
	/* a number value is not iterable */
	cr_assert_not(op1("any", "1", "{\"k\": [1]}"));
}

Test(vec_filter, is_empty_accepts_missing_null_and_empty)
{
	cr_assert(op1("is_empty", "null", "{}"));
	cr_assert(op1("is_empty", "null", "{\"k\": null}"));
	cr_assert(op1("is_empty", "null", "{\"k\": \"\"}"));
	cr_assert(op1("is_empty", "null", "{\"k\": []}"));
	cr_assert_not(op1("is_empty", "null", "{\"k\": \"x\"}"));
	cr_assert_not(op1("is_empty", "null", "{\"k\": 0}"));
	cr_assert_not(op1("is_empty", "null", "{\"k\": {}}"));
	/* value omitted altogether */
	cr_assert(fm("{\"filters\": [{\"key\": \"k\", \"operator\": "
		     "\"is_empty\"}]}",
		     "{}"));
}

Test(vec_filter, conditions_and_or_not_and_nesting)
{
	static const char md[] = "{\"a\": 1, \"b\": 2}";

	cr_assert(fm("{\"filters\": [{\"key\": \"a\", \"value\": 1}, "
		     "{\"key\": \"b\", \"value\": 2}]}",
		     md));
	cr_assert_not(fm("{\"condition\": \"and\", \"filters\": [{\"key\": "
			 "\"a\", \"value\": 1}, {\"key\": \"b\", \"value\": "
			 "3}]}",
			 md));
	cr_assert(fm("{\"condition\": \"or\", \"filters\": [{\"key\": \"a\", "
		     "\"value\": 9}, {\"key\": \"b\", \"value\": 2}]}",
		     md));
	cr_assert_not(fm("{\"condition\": \"or\", \"filters\": [{\"key\": "
			 "\"a\", \"value\": 9}, {\"key\": \"b\", \"value\": "
			 "9}]}",
			 md));
	cr_assert(fm("{\"condition\": \"not\", \"filters\": [{\"key\": \"a\", "
		     "\"value\": 9}, {\"key\": \"b\", \"value\": 9}]}",
		     md));
	cr_assert_not(fm("{\"condition\": \"not\", \"filters\": [{\"key\": "
			 "\"a\", \"value\": 9}, {\"key\": \"b\", \"value\": "
			 "2}]}",
			 md));
	/* a == 1 and (b == 9 or not (b == 3)) */
	cr_assert(fm("{\"filters\": [{\"key\": \"a\", \"value\": 1}, "
		     "{\"condition\": \"or\", \"filters\": ["
		     "{\"key\": \"b\", \"value\": 9}, "
		     "{\"condition\": \"not\", \"filters\": [{\"key\": \"b\", "
		     "\"value\": 3}]}]}]}",
		     md));
	cr_assert_not(fm("{\"filters\": [{\"key\": \"a\", \"value\": 1}, "
			 "{\"condition\": \"or\", \"filters\": ["
			 "{\"key\": \"b\", \"value\": 9}, "
			 "{\"condition\": \"not\", \"filters\": [{\"key\": "
			 "\"b\", \"value\": 2}]}]}]}",
			 md));
	/* empty groups match everything, whatever their condition */
	cr_assert(fm("{\"filters\": [], \"condition\": \"or\"}", md));
	cr_assert(fm("{\"filters\": [{\"filters\": [], \"condition\": "
		     "\"or\"}]}",
		     md));
	cr_assert(fm("{\"filters\": [], \"condition\": null}", md));
}

Test(vec_filter, missing_metadata_counts_as_empty)
{
	struct vec_filters *f;
	json_t *notobj = json_integer(3);

	static const char json[] = "{\"filters\": [{\"key\": \"k\", "
				   "\"operator\": \"!=\", \"value\": 1}]}";

	cr_assert_eq(vec_filter_parse(json, strlen(json), &f, NULL, 0), 0);
	cr_assert(vec_filter_match(f, NULL));
	cr_assert(vec_filter_match(f, notobj));
	cr_assert(vec_filter_match(NULL, notobj));
	vec_filter_free(f);
	json_decref(notobj);
}

Test(vec_filter, parse_errors_are_einval_with_a_reason)
{
	parse_fails("{\"filters\": [", "invalid JSON");
	parse_fails("[]", "expected an object");
	parse_fails("{\"condition\": \"and\"}", "missing \"filters\"");
	parse_fails("{\"filters\": {}}", "expected a list");
	parse_fails("{\"filters\": [3]}", "filters[0]: expected an object");
	parse_fails("{\"filters\": [{\"value\": 1}]}", "neither");
	parse_fails("{\"filters\": [{\"key\": 1, \"value\": 1}]}",
		    "filters[0].key");
	parse_fails("{\"filters\": [{\"key\": \"a\", \"operator\": \"~=\", "
		    "\"value\": 1}]}",
		    "filters[0].operator");
	parse_fails("{\"filters\": [{\"key\": \"a\", \"operator\": \"gte\", "
		    "\"value\": 1}]}",
		    "operator");
	parse_fails("{\"filters\": [{\"key\": \"a\", \"value\": {}}]}",
		    "filters[0].value");
	parse_fails("{\"filters\": [{\"key\": \"a\", \"value\": [[1]]}]}",
		    "value");
	parse_fails("{\"filters\": [{\"key\": \"a\", \"value\": 1}], "
		    "\"condition\": \"xor\"}",
		    "condition");
	parse_fails("{\"filters\": [{\"key\": \"a\", \"value\": 1}], "
		    "\"condition\": null}",
		    "condition");
	parse_fails("{\"filters\": [{\"filters\": [{\"key\": 2}]}]}",
		    "filters.filters[0].filters[0].key");
}

Test(vec_filter, nesting_depth_is_bounded)
{
	char buf[4096] = "";
	int i;

	for (i = 0; i < 40; i++)
		strcat(buf, "{\"filters\": [");
	for (i = 0; i < 40; i++)
		strcat(buf, "]}");
	parse_fails(buf, "nested too deeply");
}

Test(vec_filter, where_symbolic_operators)
{
	cr_assert(wm("year>=2020", "{\"year\": 2021}"));
	cr_assert_not(wm("year>=2020", "{\"year\": 2019}"));
	cr_assert_not(wm("year>=2020", "{\"year\": \"2021\"}"));
	cr_assert(wm("year<2020", "{\"year\": 1889}"));
	cr_assert(wm("year<=2020", "{\"year\": 2020.0}"));
	cr_assert(wm("year>2020.5", "{\"year\": 2021}"));
	cr_assert(wm("author==alice", "{\"author\": \"alice\"}"));
	cr_assert(wm("author=alice", "{\"author\": \"alice\"}"));
	cr_assert(wm(" author == alice ", "{\"author\": \"alice\"}"));
	cr_assert(wm("lang!=en", "{}"));
	cr_assert_not(wm("lang!=en", "{\"lang\": \"en\"}"));
	/* quoted: a string even when it looks like a number */
	cr_assert(wm("code==\"2020\"", "{\"code\": \"2020\"}"));
	cr_assert_not(wm("code==2020", "{\"code\": \"2020\"}"));
	cr_assert(wm("draft==true", "{\"draft\": true}"));
	cr_assert(wm("x==-1.5e1", "{\"x\": -15}"));
	cr_assert(wm("name==2020a", "{\"name\": \"2020a\"}"));
	cr_assert(wm("t==\"\"", "{\"t\": \"\"}"));
}

Test(vec_filter, where_word_operators)
{
	static const char tags[] = "{\"tags\": [\"red\", \"green\"]}";

	cr_assert(wm("year~gte~2020", "{\"year\": 2020}"));
	cr_assert(wm("year~lt~2020", "{\"year\": 2019}"));
	cr_assert(wm("year~>=~2020", "{\"year\": 2020}"));
	cr_assert(wm("year ~ gte ~ 2020", "{\"year\": 2020}"));
	cr_assert(wm("tags~any~blue,red", tags));
	cr_assert_not(wm("tags~all~blue,red", tags));
	cr_assert(wm("tags~all~ red , green ", tags));
	cr_assert(wm("tags~contains~red", tags));
	cr_assert(wm("file_name~in~a.txt,\"b,c.txt\"",
		     "{\"file_name\": \"b,c.txt\"}"));
	cr_assert_not(
		wm("file_name~in~a.txt,\"b,c.txt\"", "{\"file_name\": \"b\"}"));
	cr_assert(wm("n~nin~1,2", "{\"n\": 3}"));
	cr_assert_not(wm("n~nin~1,2", "{\"n\": 2.0}"));
	cr_assert(wm("title~text_match~Apple", "{\"title\": \"Apple Pie\"}"));
	cr_assert_not(
		wm("title~text_match~apple", "{\"title\": \"Apple Pie\"}"));
	cr_assert(wm("title~text_match_insensitive~apple pie",
		     "{\"title\": \"APPLE PIE\"}"));
	cr_assert(wm("notes~is_empty", "{\"notes\": \"\"}"));
	cr_assert_not(wm("notes~is_empty", "{\"notes\": \"x\"}"));
	cr_assert(wm("path~contains~a~b", "{\"path\": \"xa~by\"}"));
}

Test(vec_filter, where_segments_and_together)
{
	struct vec_filters *f;
	json_t *yes =
		json_loads("{\"year\": 2021, \"author\": \"alice\"}", 0, NULL);
	json_t *no =
		json_loads("{\"year\": 2021, \"author\": \"bob\"}", 0, NULL);

	cr_assert_eq(vec_filter_new(VEC_COND_AND, &f), 0);
	cr_assert_eq(vec_filter_parse_where("year>=2020", f, NULL, 0), 0);
	cr_assert_eq(vec_filter_parse_where("author==alice", f, NULL, 0), 0);
	cr_assert_eq(vec_filter_count(f), 2);
	cr_assert(vec_filter_match(f, yes));
	cr_assert_not(vec_filter_match(f, no));
	vec_filter_free(f);
	json_decref(yes);
	json_decref(no);
}

Test(vec_filter, where_errors_are_einval_and_leave_f_alone)
{
	where_fails("year", "no operator");
	where_fails("==alice", "empty key");
	where_fails(" ~in~a", "empty key");
	where_fails("a~bogus~1", "unknown operator");
	where_fails("a!x", "'!'");
	where_fails("a==", "empty value");
	where_fails("a~gt", "needs a value");
	where_fails("a~is_empty~x", "no value");
	where_fails("a~in~x,,y", "empty value");
	where_fails("a~in~x,", "empty value");
	where_fails("a~in~\"x", "unterminated quote");
	where_fails("a~in~\"x\"y", "after a quoted value");
	where_fails("a==1e999999", "out of range");
}

Test(vec_filter, groups_can_be_built_programmatically)
{
	struct vec_filters *f, *g;
	json_t *v = json_integer(2);
	json_t *md = json_loads("{\"a\": 1, \"b\": 2}", 0, NULL);
	json_t *obj = json_object();

	cr_assert_eq(vec_filter_new(VEC_COND_AND, &f), 0);
	cr_assert_eq(vec_filter_new(VEC_COND_OR, &g), 0);
	cr_assert_eq(vec_filter_add(f, "a", VEC_OP_LT, v), 0);
	cr_assert_eq(vec_filter_add(g, "b", VEC_OP_EQ, v), 0);
	cr_assert_eq(vec_filter_add(g, "c", VEC_OP_IS_EMPTY, NULL), 0);
	cr_assert_eq(vec_filter_add(g, "c", VEC_OP_EQ, obj), -EINVAL);
	cr_assert_eq(vec_filter_add_group(f, g), 0);
	cr_assert_eq(vec_filter_add_group(f, f), -EINVAL);
	cr_assert_eq(vec_filter_count(f), 2);
	cr_assert(vec_filter_match(f, md));
	json_integer_set(v, 0); /* values were copied */
	cr_assert(vec_filter_match(f, md));
	cr_assert_str_eq(vec_filter_op_name(VEC_OP_TEXT_MATCH_INSENSITIVE),
			 "text_match_insensitive");
	cr_assert_str_eq(vec_filter_op_name(VEC_OP_GTE), ">=");
	vec_filter_free(f);
	json_decref(v);
	json_decref(md);
	json_decref(obj);
}
