/*
 * vec_hnsw.c - build and query core/vec_hnsw.c on raw float32 files.
 *
 *   bench_vec_hnsw BASE.f32 QUERY.f32 GT.i32 N DIM NQ THREADS EF,EF,...
 *       [M [EFC]]
 *
 * Made to be driven by vec_hnsw.py (which writes the files and runs the
 * anchors); prints "build_s SECONDS" then one line per ef:
 * "ef EF recall R qps Q", queries one at a time on one thread, top-10,
 * recall against GT (NQ x 10 int32 row numbers).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/vec_hnsw.h"

static void *read_file(const char *path, size_t len);

struct build {
	struct hnsw *h;
	const float *base;
	size_t n;
	uint32_t dim;
	atomic_size_t next;
	int rc;
};

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* CPU seconds of the whole process, every thread (user + system). */
static double cpu_all(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void *builder(void *arg)
{
	struct build *b = arg;
	char key[32];
	size_t i;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->n) {
		snprintf(key, sizeof(key), "v%zu", i);
		if (hnsw_add(b->h, b->base + i * b->dim, key, HNSW_LIVE,
			     NULL)) {
			b->rc = -ENOMEM;
			break;
		}
	}
	return NULL;
}

static int emit_file(void *ctx, const void *data, size_t len)
{
	return fwrite(data, 1, len, ctx) == len ? 0 : -EIO;
}

/*
 * With BENCH_HNSW_GRAPH=FILE set: load the graph from FILE if it exists
 * (rows bound from BASE, as a store binds them at open), else build it
 * and save it there.  For tuning queries without rebuilding each time.
 */
static struct hnsw *load_graph(const char *path, const float *base, size_t n,
			       uint32_t dim)
{
	struct hnsw *h = NULL;
	size_t len, used, i;
	FILE *f = path ? fopen(path, "rb") : NULL;
	void *data;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = (size_t)ftell(f);
	fclose(f);
	data = read_file(path, len);
	if (hnsw_load(data, len, &h, &used) == 0) {
		/* node numbers are not row numbers: keys are "v<row>" */
		for (i = 0; i < hnsw_size(h); i++) {
			size_t row = strtoull(hnsw_key(h, (uint32_t)i) + 1,
					      NULL, 10);

			if (row < n)
				hnsw_bind(h, (uint32_t)i, base + row * dim);
		}
		if (hnsw_bound(h)) {
			hnsw_free(h);
			h = NULL;
		}
	}
	free(data);
	return h;
}

static void *read_file(const char *path, size_t len)
{
	FILE *f = fopen(path, "rb");
	void *p = malloc(len ? len : 1);

	if (!f || !p || fread(p, 1, len, f) != len) {
		fprintf(stderr, "cannot read %zu bytes of %s\n", len, path);
		exit(1);
	}
	fclose(f);
	return p;
}

int main(int argc, char **argv)
{
	struct hnsw_params p = { .m = HNSW_M_DEFAULT,
				 .ef_construction = HNSW_EFC_DEFAULT,
				 .seed = 1 };
	struct build b = { 0 };
	struct hnsw_hit *res;
	size_t *nres;
	pthread_t th[64];
	size_t n, nq, i, j, t, nthreads;
	float *query;
	int32_t *gt;
	char *efs, *tok, *save;
	double t0, c0;

	if (argc < 9) {
		fprintf(stderr,
			"usage: %s BASE.f32 QUERY.f32 GT.i32 N DIM NQ THREADS "
			"EF,EF,... [M [EFC]]\n",
			argv[0]);
		return 2;
	}
	n = strtoull(argv[4], NULL, 10);
	p.dim = (uint32_t)strtoul(argv[5], NULL, 10);
	nq = strtoull(argv[6], NULL, 10);
	nthreads = strtoull(argv[7], NULL, 10);
	if (argc > 9)
		p.m = (unsigned)strtoul(argv[9], NULL, 10);
	if (argc > 10)
		p.ef_construction = (unsigned)strtoul(argv[10], NULL, 10);
	if (nthreads < 1 || nthreads > 64)
		nthreads = 1;
	b.base = read_file(argv[1], n * p.dim * sizeof(float));
	query = read_file(argv[2], nq * p.dim * sizeof(float));
	gt = read_file(argv[3], nq * 10 * sizeof(int32_t));
	b.n = n;
	b.dim = p.dim;
	b.h = load_graph(getenv("BENCH_HNSW_GRAPH"), b.base, n, p.dim);
	if (b.h) {
		printf("build_s 0 cpu_s 0 m %u efc %u threads 0 (loaded)\n",
		       p.m, p.ef_construction);
		goto queries;
	}
	if (hnsw_new(&p, &b.h))
		return 1;
	t0 = now();
	c0 = cpu_all();
	for (t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, builder, &b);
	for (t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	if (b.rc)
		return 1;
	printf("build_s %.3f cpu_s %.3f m %u efc %u threads %zu\n", now() - t0,
	       cpu_all() - c0, p.m, p.ef_construction, nthreads);
	if (getenv("BENCH_HNSW_GRAPH")) {
		FILE *f = fopen(getenv("BENCH_HNSW_GRAPH"), "wb");

		if (!f || hnsw_save(b.h, emit_file, f) || fclose(f))
			fprintf(stderr, "cannot save the graph\n");
	}
queries:
	res = malloc(nq * 10 * sizeof(*res));
	nres = calloc(nq, sizeof(*nres));
	if (!res || !nres)
		return 1;
	efs = strdup(argv[8]);
	for (tok = strtok_r(efs, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned ef = (unsigned)strtoul(tok, NULL, 10);
		size_t found = 0;
		double dt, dc;

		t0 = now();
		c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
		for (i = 0; i < nq; i++)
			hnsw_search(b.h, query + i * p.dim, 10, ef, NULL, NULL,
				    res + i * 10, &nres[i]);
		dt = now() - t0;
		dc = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
		for (i = 0; i < nq; i++) {
			for (j = 0; j < nres[i]; j++) {
				/* keys are "v<row>" */
				size_t row = strtoull(
					hnsw_key(b.h, res[i * 10 + j].id) + 1,
					NULL, 10);

				for (t = 0; t < 10; t++)
					if (gt[i * 10 + t] == (int32_t)row)
						found++;
			}
		}
		printf("ef %u recall %.4f qps %.0f cpu_qps %.0f\n", ef,
		       (double)found / (nq * 10.0), nq / dt, nq / dc);
	}
	free(efs);
	free(res);
	free(nres);
	hnsw_free(b.h);
	free((void *)b.base);
	free(query);
	free(gt);
	return 0;
}
