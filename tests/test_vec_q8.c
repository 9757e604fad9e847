/* test_vec_q8.c - the int8 first pass: exact answers, never a stale copy. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "backends/backend.h"
#include "core/engine.h"
#include "core/store.h"
#include "core/store_int.h"
#include "core/vec.h"
#include "core/vec_int.h"

/* --- helpers ------------------------------------------------------------- */

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

static void tview_add(struct tview *t, float *data, size_t n, const char **keys)
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

static void tview_recount(struct tview *t)
{
	size_t b, i;

	t->v.live = 0;
	for (b = 0; b < t->v.nblocks; b++)
		for (i = 0; i < t->blk[b].n; i++)
			t->v.live += t->blk[b].keys[i] != NULL;
}

static float lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int odd_key_filter(void *arg, const char *key)
{
	(void)arg;
	return (key[strlen(key) - 1] - '0') % 2 == 1;
}

/*
 * vec_topk_batch_q8 with z gives exactly vec_topk_double's answer: same
 * keys, same order, bit-identical scores.  Returns the hits found.
 */
static size_t check_q8(const struct engine_vecs *v, struct vec_q8 *z,
		       const float *q, size_t k, vec_filter_fn *filter,
		       const char *what)
{
	struct vec_query qs = { .query = q, .k = k, .filter = filter };
	struct vec_hit *r;
	size_t rn, i;
	double qq = 0;

	cr_assert_eq(vec_check(v, q, v->dim, &r, &rn, &qq), 0);
	cr_assert_eq(
		vec_topk_double(v, q, qq, v->dim, k, filter, NULL, &r, &rn), 0);
	cr_assert_eq(vec_topk_batch_q8(v, v->dim, &qs, 1, z), 0, "%s", what);
	cr_assert_eq(qs.rc, 0);
	cr_assert_eq(qs.n, rn, "%s (%s): %zu hits, reference %zu", what,
		     vec_q8_kernel_name(), qs.n, rn);
	for (i = 0; i < rn; i++) {
		cr_assert_str_eq(qs.hits[i].key, r[i].key, "%s (%s) rank %zu",
				 what, vec_q8_kernel_name(), i);
		cr_assert(qs.hits[i].score == r[i].score,
			  "%s (%s) rank %zu: %.17g vs %.17g", what,
			  vec_q8_kernel_name(), i, qs.hits[i].score,
			  r[i].score);
	}
	vec_hits_free(qs.hits, qs.n);
	vec_hits_free(r, rn);
	return rn;
}

enum {
	DATA_RANDOM,
	DATA_CLUSTERED,
	DATA_TIES,	/* exact duplicates and scaled copies */
	DATA_NEAR_TIES, /* differences far inside the int8 error */
	DATA_ODD,	/* zero, tiny, huge, NaN and Inf rows among others */
	DATA_NKINDS
};

static const char *data_names[] = { "random", "clustered", "ties", "near-ties",
				    "odd" };

static void make_rows(float *rows, size_t n, uint32_t dim, int kind,
		      uint64_t seed)
{
	uint64_t s = seed;
	size_t i, d;

	for (i = 0; i < n * dim; i++)
		rows[i] = lcg(&s);
	switch (kind) {
	case DATA_CLUSTERED:
		/* 8 centres, rows within a small radius of one of them */
		for (i = 8; i < n; i++)
			for (d = 0; d < dim; d++)
				rows[i * dim + d] = rows[(i % 8) * dim + d] +
						    0.02f * lcg(&s);
		break;
	case DATA_TIES:
		for (i = 4; i < n; i++) {
			float f = i % 3 == 0 ? 1.0f : i % 3 == 1 ? 2.0f : 0.5f;

			for (d = 0; d < dim; d++)
				rows[i * dim + d] = rows[(i % 4) * dim + d] * f;
		}
		break;
	case DATA_NEAR_TIES:
		for (i = 1; i < n; i++)
			for (d = 0; d < dim; d++)
				rows[i * dim + d] = rows[d] + (float)(i % 7) *
								      1e-6f *
								      lcg(&s);
		break;
	case DATA_ODD:
		for (i = 0; i < n; i++) {
			float *r = rows + i * dim;

			switch (i % 9) {
			case 0:
				memset(r, 0, dim * sizeof(float));
				break;
			case 1:
				for (d = 0; d < dim; d++)
					r[d] *= 1e-38f; /* denormal-ish */
				break;
			case 2:
				for (d = 0; d < dim; d++)
					r[d] *= 1e30f;
				break;
			case 3:
				r[dim / 2] = i % 2 ? NAN : INFINITY;
				break;
			case 4:
				/* one component only: a code at the clamp */
				memset(r, 0, dim * sizeof(float));
				r[i % dim] = -3.0f;
				break;
			default:
				break;
			}
		}
		break;
	default:
		break;
	}
}

static void make_keys(char (*names)[16], const char **keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(names[i], 16, "k%05zu", i);
		keys[i] = names[i];
	}
}

/* --- exactness ------------------------------------------------------------ */

Test(vec_q8, every_kernel_gives_the_reference_answers)
{
	static const uint32_t dims[] = { 1, 3, 17, 64, 65, 130, 384 };
	static const size_t ks[] = { 1, 10, 100, 5000 };
	enum { ROWS = 1500 };
	const char *names[8];
	int nk = vec_kernel_list(names, 8), ki, kind;
	size_t di, i, j;

	vec_q8_mode(1);
	cr_assert_gt(nk, 0);
	for (ki = 0; ki < nk; ki++) {
		cr_assert_eq(vec_kernel_select(names[ki]), 0);
		for (di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
			uint32_t dim = dims[di];
			float *rows = malloc(ROWS * dim * sizeof(float));
			float *q = malloc(dim * sizeof(float));
			char(*kn)[16] = malloc(ROWS * 16);
			const char **keys = malloc(ROWS * sizeof(*keys));

			make_keys(kn, keys, ROWS);
			for (kind = 0; kind < DATA_NKINDS; kind++) {
				struct tview t;
				struct vec_q8 *z;
				uint64_t s = 77 + kind;
				char what[96];

				make_rows(rows, ROWS, dim, kind, 11 + di);
				/* some dead rows; two blocks */
				for (i = 0; i < ROWS; i += 13)
					keys[i] = NULL;
				tview_init(&t, dim);
				tview_add(&t, rows, 700, keys);
				tview_add(&t, rows + 700 * dim, ROWS - 700,
					  keys + 700);
				cr_assert_eq(vec_q8_new(&z), 0);
				for (j = 0; j < 4; j++) {
					size_t d;

					/* queries: a row, a row nudged, random */
					const float *src =
						rows + (j ? 105 : 5) * dim;

					for (d = 0; d < dim; d++)
						q[d] = j < 2 ? src[d] : lcg(&s);
					if (j == 1)
						q[0] += 1e-4f;
					snprintf(what, sizeof(what),
						 "%s dim %u query %zu",
						 data_names[kind], dim, j);
					check_q8(&t.v, z, q, ks[j], NULL, what);
					check_q8(&t.v, z, q, 10, odd_key_filter,
						 what);
				}
				cr_assert_gt(vec_q8_coded(z), 0);
				vec_q8_free(z);
				make_keys(kn, keys, ROWS);
			}
			free(rows);
			free(q);
			free(kn);
			free(keys);
		}
	}
	vec_kernel_select(NULL);
}

Test(vec_q8, kernels_agree_with_plain_integer_sums)
{
	enum { N = 37, STRIDE = 448 };
	static uint8_t rows[N * STRIDE];
	static int8_t q[STRIDE];
	int32_t out[N];
	const char *names[8];
	int nk = vec_kernel_list(names, 8), ki;
	uint64_t s = 5;
	size_t i, j;

	for (i = 0; i < sizeof(rows); i++)
		rows[i] = (uint8_t)(lcg(&s) * 128 + 128);
	for (i = 0; i < STRIDE; i++)
		q[i] = (int8_t)(lcg(&s) * 127);
	/* the extremes: 255 * -127 everywhere */
	memset(rows, 255, STRIDE);
	for (ki = 0; ki < nk; ki++) {
		cr_assert_eq(vec_kernel_select(names[ki]), 0);
		/* forcing a float32 kernel forces its int8 code */
		if (strcmp(names[ki], "avx512") == 0)
			cr_assert(strcmp(vec_q8_kernel_name(), "avx512vnni") ==
						  0 ||
					  strcmp(vec_q8_kernel_name(),
						 "avx2") == 0,
				  "%s", vec_q8_kernel_name());
		else
			cr_assert_str_eq(vec_q8_kernel_name(), names[ki]);
		memset(q, -127, 64);
		vec_q8_kernel()(q, rows, N, STRIDE, out);
		for (j = 0; j < N; j++) {
			int32_t want = 0;

			for (i = 0; i < STRIDE; i++)
				want += (int32_t)rows[j * STRIDE + i] * q[i];
			cr_assert_eq(out[j], want, "%s row %zu",
				     vec_q8_kernel_name(), j);
		}
	}
	vec_kernel_select(NULL);
}

Test(vec_q8, batches_and_k_bounds)
{
	enum { ROWS = 3000, D = 48, NQ = 9 };
	static float rows[ROWS * D], qv[NQ * D];
	static char kn[ROWS][16];
	static const char *keys[ROWS];
	struct vec_query qs[NQ];
	struct tview t;
	struct vec_q8 *z;
	uint64_t s = 3;
	size_t i, j;

	vec_q8_mode(1);
	make_rows(rows, ROWS, D, DATA_CLUSTERED, 8);
	make_keys(kn, keys, ROWS);
	for (i = 0; i < NQ * D; i++)
		qv[i] = lcg(&s);
	tview_init(&t, D);
	tview_add(&t, rows, ROWS, keys);
	cr_assert_eq(vec_q8_new(&z), 0);
	memset(qs, 0, sizeof(qs));
	for (j = 0; j < NQ; j++) {
		qs[j].query = qv + j * D;
		qs[j].k = j == 0 ? 0 : j == 1 ? ROWS + 10 : 3 * j;
		qs[j].filter = j % 3 == 2 ? odd_key_filter : NULL;
	}
	memset(qv + 8 * D, 0, D * sizeof(float)); /* a zero query */
	cr_assert_eq(vec_topk_batch_q8(&t.v, D, qs, NQ, z), 0);
	for (j = 0; j < NQ; j++) {
		struct vec_query one = qs[j];
		struct vec_hit *r;
		size_t rn;
		double qq;

		cr_assert_eq(vec_check(&t.v, one.query, D, &r, &rn, &qq), 0);
		cr_assert_eq(vec_topk_double(&t.v, one.query, qq, D, one.k,
					     one.filter, NULL, &r, &rn),
			     0);
		cr_assert_eq(qs[j].n, rn, "query %zu", j);
		for (i = 0; i < rn; i++) {
			cr_assert_str_eq(qs[j].hits[i].key, r[i].key);
			cr_assert(qs[j].hits[i].score == r[i].score);
		}
		vec_hits_free(r, rn);
		vec_hits_free(qs[j].hits, qs[j].n);
	}
	cr_assert_eq(qs[1].n, ROWS);
	cr_assert_eq(qs[0].n, 0);
	vec_q8_free(z);
}

Test(vec_q8, built_only_for_large_namespaces_unless_forced)
{
	enum { D = 128, N = VEC_Q8_MIN_ROWS };
	float *rows = malloc((size_t)N * D * sizeof(float)), q[D];
	char(*kn)[16] = malloc((size_t)N * 16);
	const char **keys = malloc(N * sizeof(*keys));
	struct tview t;
	struct vec_q8 *z;
	size_t d;

	cr_assert_eq(vec_q8_mode(-1), -1, "LODEFS_VEC_Q8 is not set");
	make_rows(rows, N, D, DATA_RANDOM, 12);
	make_keys(kn, keys, N);
	for (d = 0; d < D; d++)
		q[d] = rows[d];
	cr_assert_eq(vec_q8_new(&z), 0);
	tview_init(&t, D);
	tview_add(&t, rows, N - 1, keys);
	check_q8(&t.v, z, q, 10, NULL, "below the threshold");
	cr_assert_eq(vec_q8_coded(z), 0);
	t.blk[0].n = N;
	tview_recount(&t);
	check_q8(&t.v, z, q, 10, NULL, "at the threshold");
	cr_assert_eq(vec_q8_coded(z), N);
	/* off: the float32 scan, and the copy is dropped */
	vec_q8_mode(0);
	check_q8(&t.v, z, q, 10, NULL, "off");
	vec_q8_mode(-1);
	check_q8(&t.v, z, q, 10, NULL, "on again");
	cr_assert_eq(vec_q8_coded(z), 2 * N);
	vec_q8_free(z);
	free(rows);
	free(kn);
	free(keys);
}

/* --- staleness on a view -------------------------------------------------- */

Test(vec_q8, observed_puts_deletes_and_silent_moves_are_seen)
{
	enum { ROWS = 2000, D = 64, CAP = 2400 };
	static float rows[CAP * D], moved[CAP * D], q[D];
	static char kn[CAP][16];
	static const char *keys[CAP], *mkeys[CAP];
	struct tview t;
	struct vec_q8 *z;
	uint64_t s = 9;
	size_t i, d, n = ROWS;
	uint64_t coded;

	vec_q8_mode(1);
	make_rows(rows, CAP, D, DATA_RANDOM, 4);
	make_keys(kn, keys, CAP);
	for (d = 0; d < D; d++)
		q[d] = rows[17 * D + d];
	tview_init(&t, D);
	tview_add(&t, rows, n, keys);
	cr_assert_eq(vec_q8_new(&z), 0);
	check_q8(&t.v, z, q, 10, NULL, "first");
	coded = vec_q8_coded(z);
	cr_assert_eq(coded, ROWS);
	check_q8(&t.v, z, q, 10, NULL, "again");
	cr_assert_eq(vec_q8_coded(z), coded, "nothing changed: no coding");

	/* overwrite in place: row 500 becomes the query's best match */
	for (d = 0; d < D; d++)
		rows[500 * D + d] = q[d] * 3;
	vec_q8_observe(z, keys[500], rows + 500 * D);
	cr_assert_eq(check_q8(&t.v, z, q, 10, NULL, "overwrite"), 10);
	cr_assert_eq(vec_q8_coded(z), coded + 1);

	/* delete the best (row 17), reuse its row for a new key */
	vec_q8_observe(z, keys[17], NULL);
	keys[17] = NULL;
	t.v.live--;
	check_q8(&t.v, z, q, 10, NULL, "delete");
	keys[17] = kn[CAP - 1];
	t.v.live++;
	for (d = 0; d < D; d++)
		rows[17 * D + d] = -q[d];
	vec_q8_observe(z, keys[17], rows + 17 * D);
	check_q8(&t.v, z, q, 10, NULL, "reuse");

	/* appends */
	for (i = n; i < n + 300; i++) {
		for (d = 0; d < D; d++)
			rows[i * D + d] = q[d] + 0.001f * (float)i;
		vec_q8_observe(z, keys[i], rows + i * D);
	}
	n += 300;
	t.blk[0].n = n;
	tview_recount(&t);
	check_q8(&t.v, z, q, 20, NULL, "append");

	/*
	 * A checkpoint moves rows to a new block without telling anyone
	 * (eng_vec_compact): here the rows reversed, dead rows dropped, keys
	 * the same strings.
	 */
	{
		size_t m = 0;

		for (i = n; i-- > 0;) {
			if (!keys[i])
				continue;
			memcpy(moved + m * D, rows + i * D, D * sizeof(float));
			mkeys[m++] = keys[i];
		}
		tview_init(&t, D);
		tview_add(&t, moved, m, mkeys);
		check_q8(&t.v, z, q, 20, NULL, "silent move");
		check_q8(&t.v, z, q, 20, odd_key_filter, "silent move, filter");
	}

	/* a key overwritten after the move: found through its row */
	for (d = 0; d < D; d++)
		moved[3 * D + d] = q[d];
	vec_q8_observe(z, mkeys[3], moved + 3 * D);
	check_q8(&t.v, z, q, 5, NULL, "overwrite after move");
	/* a change observed with a stale row pointer: found by its key */
	for (d = 0; d < D; d++)
		moved[9 * D + d] = q[d] * 0.5f + lcg(&s) * 1e-3f;
	vec_q8_observe(z, mkeys[9], rows + 9 * D);
	check_q8(&t.v, z, q, 5, NULL, "stale row pointer");
	vec_q8_free(z);
}

Test(vec_q8, many_changes_recode_everything_and_dim_changes_reset)
{
	enum { ROWS = 5000, D = 64 };
	static float rows[ROWS * D], rows2[ROWS * (D + 64)], q[D + 64];
	static char kn[ROWS][16];
	static const char *keys[ROWS];
	struct tview t;
	struct vec_q8 *z;
	uint64_t s = 1;
	size_t i, d;

	vec_q8_mode(1);
	make_rows(rows, ROWS, D, DATA_RANDOM, 2);
	make_keys(kn, keys, ROWS);
	for (d = 0; d < D + 64; d++)
		q[d] = lcg(&s);
	tview_init(&t, D);
	tview_add(&t, rows, ROWS, keys);
	cr_assert_eq(vec_q8_new(&z), 0);
	check_q8(&t.v, z, q, 10, NULL, "first");
	for (i = 0; i < ROWS; i++) {
		for (d = 0; d < D; d++)
			rows[i * D + d] = lcg(&s);
		vec_q8_observe(z, keys[i], rows + i * D);
	}
	check_q8(&t.v, z, q, 10, NULL, "every row rewritten");
	cr_assert_geq(vec_q8_coded(z), 2 * ROWS);

	/* every key deleted (a drop), then the namespace at another dim */
	for (i = 0; i < ROWS; i++)
		vec_q8_observe(z, keys[i], NULL);
	make_rows(rows2, ROWS, D + 64, DATA_CLUSTERED, 3);
	tview_init(&t, D + 64);
	tview_add(&t, rows2, ROWS, keys);
	check_q8(&t.v, z, q, 10, NULL, "new dim");
	vec_q8_free(z);
}

/* --- through the store ---------------------------------------------------- */

struct refq {
	const float *q;
	size_t k;
	struct vec_hit *hits;
	size_t n;
};

static int ref_fn(void *arg, const struct engine_vecs *v)
{
	struct refq *r = arg;
	double qq;
	int rc = vec_check(v, r->q, v->dim, &r->hits, &r->n, &qq);

	return rc ? rc
		  : vec_topk_double(v, r->q, qq, v->dim, r->k, NULL, NULL,
				    &r->hits, &r->n);
}

/* The store's exact answers (query and batch) equal the reference. */
static void check_store(struct store *st, const float *q, uint32_t dim,
			size_t k, const char *what)
{
	struct store_query sq = { .embedding = q,
				  .dim = dim,
				  .k = k,
				  .mode = STORE_MODE_VECTOR,
				  .exact = 1 };
	struct refq r = { .q = q, .k = k };
	struct store_hit *h;
	struct vec_hit *bh;
	size_t n, bn, i;

	cr_assert_eq(engine_with_vecs(store_engine(st), "vector_store/default",
				      ref_fn, &r),
		     0);
	cr_assert_eq(store_query(st, &sq, &h, &n), 0, "%s: %s", what,
		     store_last_error());
	cr_assert_eq(store_vec_search(st, NULL, q, 1, dim, k, &bh, &bn), 0);
	cr_assert_eq(n, r.n, "%s", what);
	cr_assert_eq(bn, r.n, "%s", what);
	for (i = 0; i < n; i++) {
		cr_assert_str_eq(h[i].node_id, r.hits[i].key, "%s rank %zu",
				 what, i);
		cr_assert(h[i].score == r.hits[i].score, "%s rank %zu", what,
			  i);
		cr_assert_str_eq(bh[i].key, r.hits[i].key, "%s rank %zu", what,
				 i);
		cr_assert(bh[i].score == r.hits[i].score);
	}
	store_hits_free(h, n);
	vec_hits_free(bh, bn);
	vec_hits_free(r.hits, r.n);
}

Test(vec_q8, store_writes_deletes_checkpoints_and_refresh_are_seen)
{
	enum { N = 3000, D = 96 };
	static float rows[N * D], q[D], v[D];
	static char kn[N][16];
	static const char *ids[N];
	struct backend *be;
	struct store *st, *st2;
	uint64_t s = 21;
	size_t i, d;

	vec_q8_mode(1);
	make_rows(rows, N, D, DATA_CLUSTERED, 6);
	make_keys(kn, ids, N);
	for (d = 0; d < D; d++)
		q[d] = rows[40 * D + d] + 0.01f * lcg(&s);
	cr_assert_eq(backend_memory_open(&be), 0);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
	cr_assert_eq(
		store_vec_put_many(st, NULL, ids, rows, D, N, D, NULL, NULL), 0,
		"%s", store_last_error());
	check_store(st, q, D, 10, "first");
	/* a poor row overwritten in place by the best match */
	for (d = 0; d < D; d++)
		v[d] = q[d] * 3;
	cr_assert_eq(store_vec_put(st, NULL, ids[2999], v, D), 0);
	check_store(st, q, D, 10, "overwrite in place");

	/* overwrite the best rows with their opposites, one by one */
	for (i = 0; i < 5; i++) {
		struct store_query sq = { .embedding = q,
					  .dim = D,
					  .k = 1,
					  .mode = STORE_MODE_VECTOR,
					  .exact = 1 };
		struct store_hit *h;
		size_t n;
		float *cur;
		uint32_t dim;

		cr_assert_eq(store_query(st, &sq, &h, &n), 0);
		cr_assert_eq(n, 1);
		cr_assert_eq(store_vec_get(st, NULL, h[0].node_id, &cur, &dim),
			     0);
		for (d = 0; d < D; d++)
			v[d] = -cur[d];
		cr_assert_eq(store_vec_put(st, NULL, h[0].node_id, v, D), 0);
		free(cur);
		store_hits_free(h, 1);
		check_store(st, q, D, 10, "overwrite");
	}
	/* deletes, then new keys that reuse the freed rows */
	for (i = 40; i < 3000; i += 8)
		cr_assert_eq(store_vec_del(st, NULL, ids[i]), 0);
	check_store(st, q, D, 10, "deletes");
	for (i = 0; i < 50; i++) {
		char id[32];

		snprintf(id, sizeof(id), "new%02zu", i);
		for (d = 0; d < D; d++)
			v[d] = q[d] + 0.05f * lcg(&s);
		cr_assert_eq(store_vec_put(st, NULL, id, v, D), 0);
	}
	check_store(st, q, D, 10, "new keys in freed rows");
	/* a checkpoint moves every row (dead ones dropped) */
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	check_store(st, q, D, 10, "after checkpoint");
	for (d = 0; d < D; d++)
		v[d] = q[d];
	cr_assert_eq(store_vec_put(st, NULL, ids[1], v, D), 0);
	check_store(st, q, D, 10, "overwrite after checkpoint");
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	check_store(st, q, D, 10, "second checkpoint");

	/* another writer's changes arrive through a refresh */
	cr_assert_eq(store_open(be, NULL, &st2), 0, "%s", store_last_error());
	check_store(st2, q, D, 10, "second store");
	for (d = 0; d < D; d++)
		v[d] = -q[d];
	cr_assert_eq(store_vec_put(st, NULL, ids[1], v, D), 0);
	for (d = 0; d < D; d++)
		v[d] = q[d] * 2;
	cr_assert_eq(store_vec_put(st, NULL, ids[2], v, D), 0);
	cr_assert_gt(store_refresh(st2, NULL, NULL), 0, "%s",
		     store_last_error());
	check_store(st2, q, D, 10, "after refresh");
	store_close(st2);

	/* reopen: a fresh copy of the checkpoint's rows */
	store_close(st);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
	check_store(st, q, D, 10, "reopened");
	store_close(st);
	backend_close(be);
}

/*
 * In automatic mode a large namespace gets its copy at the first exact
 * search, but a search restricted to fewer rows than that threshold (a
 * selective filter the graph hands to the scan) is made in float32 and
 * builds none; its answers are the reference's either way.
 */
Test(vec_q8, selective_searches_build_no_copy)
{
	enum { N = VEC_Q8_MIN_ROWS, D = 128, FEW = 100 };
	static char kn[N][16];
	static const char *ids[N];
	float *rows = malloc((size_t)N * D * sizeof(*rows)), q[D];
	struct store_query sq = { .embedding = q,
				  .dim = D,
				  .k = 10,
				  .mode = STORE_MODE_VECTOR,
				  .exact = 1 };
	struct backend *be;
	struct store *st;
	struct vec_q8 *z;
	struct store_hit *h;
	size_t n, i;
	uint64_t s = 5;

	cr_assert_not_null(rows);
	vec_q8_mode(-1);
	make_rows(rows, N, D, DATA_CLUSTERED, 7);
	make_keys(kn, ids, N);
	for (i = 0; i < D; i++)
		q[i] = rows[17 * D + i] + 0.01f * lcg(&s);
	cr_assert_eq(backend_memory_open(&be), 0);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
	cr_assert_eq(
		store_vec_put_many(st, NULL, ids, rows, D, N, D, NULL, NULL), 0,
		"%s", store_last_error());
	z = vec_q8_set_get(st->q8, "vector_store/default");
	cr_assert_not_null(z);

	/* restricted to FEW nodes: float32, no copy, the best of those */
	sq.node_ids = ids;
	sq.n_node_ids = FEW;
	cr_assert_eq(store_query(st, &sq, &h, &n), 0, "%s", store_last_error());
	cr_assert_eq(n, 10);
	for (i = 0; i < n; i++)
		cr_assert_lt(atoi(h[i].node_id + 1), FEW, "%s outside the set",
			     h[i].node_id);
	store_hits_free(h, n);
	cr_assert_eq(vec_q8_coded(z), 0, "a selective search built a copy");

	/* unrestricted: the copy is built, answers are the reference's */
	check_store(st, q, D, 10, "large namespace, automatic");
	cr_assert_eq(vec_q8_coded(z), N);
	store_close(st);
	backend_close(be);
	free(rows);
}
