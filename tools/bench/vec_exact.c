/* vec_exact.c - exact vector top-k: in-process, through the mount, against
 * faiss IndexFlatIP and a plain memory scan of the same bytes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "backends/backend.h"
#include "core/engine.h"
#include "core/store.h"
#include "core/vec.h"
#include "core/vec_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/*
 * usage: bench_vec_exact DIR [--lodefs PATH] [--rows N] [--dim D]
 *                        [--queries Q] [--runs R] [-k K] [--no-faiss]
 *                        [--before-queries B] [--cpu-time]
 *                        [--best-kernel] [--int8-only]
 *
 * 1. DIR/base-N-D.fvecs and DIR/queries-Q-D.fvecs: synthetic clustered
 *    float32 data (N / 1000 + 1 Gaussian centres, each row a centre plus
 *    Gaussian noise of a third of its scale; queries likewise), fixed
 *    seed, written once and reused.
 * 2. DIR/store-N-D: a store holding the rows in namespace "default"
 *    (ids v0, v1, ...), one commit and a checkpoint, built once.  It is
 *    opened as a mount opens it, so the rows are the checkpoint's mapped
 *    pages.
 * 3. In-process, one query at a time, R rounds of Q queries: the memory
 *    scan (a sum of every float of the view, AVX-512 where the CPU has
 *    it: the physical limit of one pass) interleaved with store_query
 *    (what query/ runs) with each ranking kernel the CPU has (only the
 *    best with --best-kernel), first with the float32 scan
 *    (vec_q8_mode(0)), then with the int8 first pass (the copy built by
 *    the first query, timed apart; answers checked equal to the float32
 *    ones) (medians of the per-query times; the ratio pairs each query
 *    with the scan pass just before it); then, medians of the rounds, the
 *    previous vec_topk (every row scored in double: vec_topk_double) on
 *    B queries (default 20; 0 skips it), and store_vec_search (`lode search`: the
 *    queries in passes of 64).
 * 4. Through the mount (with --lodefs): `LODEFS -f STORE DIR/mnt`, and per
 *    query a JSON request file query/bNNN.json (query_embedding,
 *    similarity_top_k) written, closed, read back and removed, timed
 *    end to end (with --cpu-time: the CPU time of this process plus the
 *    daemon's, from /proc).
 * 5. faiss (unless --no-faiss): /usr/bin/python3 vec_exact.py on the same
 *    files, IndexFlatIP, one query per search call, one thread (timed in
 *    CPU time too with --cpu-time).
 *
 * Every answer (mount, faiss, previous vec_topk) is compared with the
 * in-process one; then the ratios against the targets of issue 6.  Pin it
 * to one CPU with `taskset -c 0` (the mount daemon inherits it).
 */

#ifndef VEC_EXACT_PY
#define VEC_EXACT_PY "tools/bench/vec_exact.py"
#endif

static char ve_mnt[4096];
static int ve_mounted;
static pid_t ve_daemon = -1;

static void ve_unmount(void)
{
	int st;

	if (ve_mounted) {
		pid_t p = fork();

		if (p == 0) {
			execlp("fusermount3", "fusermount3", "-u", ve_mnt,
			       (char *)NULL);
			_exit(127);
		}
		if (p > 0)
			waitpid(p, &st, 0);
		ve_mounted = 0;
	}
	if (ve_daemon > 0) {
		waitpid(ve_daemon, &st, 0);
		ve_daemon = -1;
	}
}

static void ve_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_vec_exact: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ve_unmount();
	exit(1);
}

static void ve_signal(int sig)
{
	ve_die("interrupted by signal %d", sig);
}

static double ve_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The clock of the in-process figures: wall time, or with --cpu-time this
 * process's CPU time, which a machine shared with other work disturbs
 * less (time slices taken by others do not count; cache sharing still
 * does).  The mount and faiss figures follow (see ve_mount_now and
 * vec_exact.py).
 */
static int ve_cpu_time;
/* --best-kernel: only the kernel the CPU runs best (1M rows: time). */
static int ve_best_kernel;
/* --int8-only: skip the float32 scan (vec_q8_mode(0)) in step 3. */
static int ve_int8_only;

static double ve_inproc_now(void)
{
	struct timespec ts;

	if (!ve_cpu_time)
		return ve_now();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ve_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double ve_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), ve_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --- data ----------------------------------------------------------------- */

static uint64_t ve_rng = 0x2545f4914f6cdd1dull;

static double ve_uniform(void)
{
	ve_rng ^= ve_rng << 13;
	ve_rng ^= ve_rng >> 7;
	ve_rng ^= ve_rng << 17;
	return ((double)(ve_rng >> 11) + 0.5) / 9007199254740992.0;
}

static double ve_gauss(void)
{
	return sqrt(-2 * log(ve_uniform())) * cos(2 * M_PI * ve_uniform());
}

/* rows x dim floats around `centres` (nc x dim). */
static void ve_gen(float *out, size_t rows, uint32_t dim, const float *centres,
		   size_t nc)
{
	size_t i, j;

	for (i = 0; i < rows; i++) {
		const float *c =
			centres + (size_t)(ve_uniform() * (double)nc) * dim;

		for (j = 0; j < dim; j++)
			out[i * dim + j] = c[j] + (float)(ve_gauss() / 3);
	}
}

static void ve_write_fvecs(const char *path, const float *v, size_t rows,
			   uint32_t dim)
{
	char tmp[4200];
	int32_t d = (int32_t)dim;
	FILE *f;
	size_t i;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f)
		ve_die("%s: %s", tmp, strerror(errno));
	for (i = 0; i < rows; i++)
		if (fwrite(&d, 4, 1, f) != 1 ||
		    fwrite(v + i * dim, 4, dim, f) != dim)
			ve_die("%s: write failed", tmp);
	if (fclose(f) || rename(tmp, path))
		ve_die("%s: %s", path, strerror(errno));
}

/* Reads an fvecs file of rows x dim into v; 0, or -1 if it is not that. */
static int ve_read_fvecs(const char *path, float *v, size_t rows, uint32_t dim)
{
	FILE *f = fopen(path, "rb");
	int32_t d;
	size_t i;
	int rc = 0;

	if (!f)
		return -1;
	for (i = 0; i < rows && !rc; i++)
		if (fread(&d, 4, 1, f) != 1 || d != (int32_t)dim ||
		    fread(v + i * dim, 4, dim, f) != dim)
			rc = -1;
	if (!rc && fgetc(f) != EOF)
		rc = -1;
	fclose(f);
	return rc;
}

/* --- in-process ------------------------------------------------------------ */

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) static float ve_sum_avx512(const float *p,
							      size_t n)
{
	__m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
	__m512 c = _mm512_setzero_ps(), d = _mm512_setzero_ps();
	size_t i = 0;
	float t = 0;

	for (; i + 64 <= n; i += 64) {
		a = _mm512_add_ps(a, _mm512_loadu_ps(p + i));
		b = _mm512_add_ps(b, _mm512_loadu_ps(p + i + 16));
		c = _mm512_add_ps(c, _mm512_loadu_ps(p + i + 32));
		d = _mm512_add_ps(d, _mm512_loadu_ps(p + i + 48));
	}
	for (; i < n; i++)
		t += p[i];
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b),
						  _mm512_add_ps(c, d))) +
	       t;
}
#endif

static float ve_sum_c(const float *p, size_t n)
{
	float acc[16] = { 0 }, t = 0;
	size_t i = 0, l;

	for (; i + 16 <= n; i += 16)
		for (l = 0; l < 16; l++)
			acc[l] += p[i + l];
	for (; i < n; i++)
		t += p[i];
	for (l = 0; l < 16; l++)
		t += acc[l];
	return t;
}

struct ve_scan {
	double sum;
	size_t bytes;
};

/* The physical limit: every float of the view read once and added. */
static int ve_scan_fn(void *arg, const struct engine_vecs *v)
{
	struct ve_scan *sc = arg;
	size_t b;

	for (b = 0; b < v->nblocks; b++) {
		size_t n = v->blocks[b].n * (size_t)v->dim;

#if defined(__x86_64__) && defined(__GNUC__)
		if (__builtin_cpu_supports("avx512f"))
			sc->sum += ve_sum_avx512(v->blocks[b].data, n);
		else
#endif
			sc->sum += ve_sum_c(v->blocks[b].data, n);
		sc->bytes += n * sizeof(float);
	}
	return 0;
}

struct ve_old {
	const float *q;
	uint32_t dim;
	size_t k;
	struct vec_hit *hits;
	size_t n;
};

/* The previous vec_topk: every row scored in double. */
static int ve_old_fn(void *arg, const struct engine_vecs *v)
{
	struct ve_old *o = arg;
	double qq = vec_dot_double(o->q, o->q, o->dim);

	return vec_topk_double(v, o->q, qq, o->dim, o->k, NULL, NULL, &o->hits,
			       &o->n);
}

/* ids[qi * k + j]: the row number of hit j of query qi, -1 if none. */
/* Stores opened with no HNSW graph: the exact scan is what is measured. */
static struct store_opts ve_sopts;

static void ve_store_query(struct store *s, const float *q, uint32_t dim,
			   size_t k, long *ids)
{
	struct store_query sq = { 0 };
	struct store_hit *h;
	size_t n, j;
	int rc;

	sq.embedding = q;
	sq.dim = dim;
	sq.k = k;
	sq.mode = STORE_MODE_VECTOR;
	sq.exact = 1;
	rc = store_query(s, &sq, &h, &n);
	if (rc)
		ve_die("store_query: %s (%s)", strerror(-rc),
		       store_last_error());
	for (j = 0; j < k; j++)
		ids[j] = j < n ? atol(h[j].node_id + 1) : -1;
	store_hits_free(h, n);
}

static size_t ve_diff(const long *a, const long *b, size_t nq, size_t k)
{
	size_t i, bad = 0;

	for (i = 0; i < nq; i++)
		bad += memcmp(a + i * k, b + i * k, k * sizeof(*a)) != 0;
	return bad;
}

/* --- the mount ------------------------------------------------------------- */

static void ve_mount(const char *lodefs, const char *store_dir, const char *log)
{
	struct stat a, b;
	char parent[4200];
	int i, st;

	mkdir(ve_mnt, 0755);
	ve_daemon = fork();
	if (ve_daemon < 0)
		ve_die("fork: %s", strerror(errno));
	if (ve_daemon == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* no HNSW build competing with the exact scan */
		execl(lodefs, lodefs, "-f", "-o", "ann_threshold=0", store_dir,
		      ve_mnt, (char *)NULL);
		_exit(127);
	}
	snprintf(parent, sizeof(parent), "%s/..", ve_mnt);
	for (i = 0; i < 1200; i++) {
		if (waitpid(ve_daemon, &st, WNOHANG) == ve_daemon) {
			ve_daemon = -1;
			ve_die("lodefs exited before mounting; see %s", log);
		}
		if (stat(ve_mnt, &a) == 0 && stat(parent, &b) == 0 &&
		    a.st_dev != b.st_dev) {
			ve_mounted = 1;
			return;
		}
		usleep(50000);
	}
	ve_die("lodefs did not mount %s within 60 s; see %s", ve_mnt, log);
}

/*
 * With --cpu-time, the mount's clock: this process's CPU time plus the
 * daemon's (utime + stime from /proc, in clock ticks), so that both ends
 * of every request count and time slices taken by others do not.
 */
static double ve_mount_now(void)
{
	unsigned long long ut = 0, stime = 0;
	char path[64], buf[1024], *p;
	FILE *f;

	if (!ve_cpu_time)
		return ve_now();
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)ve_daemon);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		ve_die("%s: cannot read", path);
	fclose(f);
	p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
			 "%llu",
			 &ut, &stime) != 2)
		ve_die("%s: unexpected format", path);
	return ve_inproc_now() +
	       (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* One request file: written, closed, read back, removed.  Returns s. */
static double ve_mount_query(size_t qi, const char *req, size_t reqlen,
			     size_t k, long *ids)
{
	static char buf[1 << 20];
	char path[4300];
	json_t *root, *arr;
	json_error_t e;
	double t0 = ve_now(), t;
	size_t n = 0, j;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "%s/query/b%zu.json", ve_mnt, qi);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, req, reqlen) != (ssize_t)reqlen || close(fd))
		ve_die("%s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ve_die("%s: %s", path, strerror(errno));
	while ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	t = ve_now() - t0;
	if (unlink(path))
		ve_die("unlink %s: %s", path, strerror(errno));
	buf[n] = 0;
	root = json_loads(buf, 0, &e);
	arr = json_object_get(root, "ids");
	if (!json_is_array(arr))
		ve_die("%s: no ids in the result: %.200s", path, buf);
	for (j = 0; j < k; j++) {
		const char *id = json_string_value(json_array_get(arr, j));

		ids[j] = id ? atol(id + 1) : -1;
	}
	json_decref(root);
	return t;
}

static char *ve_request(const float *q, uint32_t dim, size_t k, size_t *len)
{
	size_t cap = 64 + (size_t)dim * 20, n = 0;
	char *b = malloc(cap);
	uint32_t j;

	if (!b)
		ve_die("out of memory");
	n += (size_t)snprintf(b + n, cap - n, "{\"query_embedding\": [");
	for (j = 0; j < dim; j++)
		n += (size_t)snprintf(b + n, cap - n, "%s%.9g", j ? "," : "",
				      q[j]);
	/* exact: this benchmark is the exact scan, not HNSW */
	n += (size_t)snprintf(
		b + n, cap - n,
		"], \"similarity_top_k\": %zu, \"exact\": true}\n", k);
	*len = n;
	return b;
}

/* --- faiss ----------------------------------------------------------------- */

static double ve_faiss(const char *base, const char *queries, size_t k,
		       size_t runs, size_t nq, long *ids, int *threads)
{
	char cmd[9000], line[1 << 14];
	double qps = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s' '%s' %zu %zu%s",
		 VEC_EXACT_PY, base, queries, k, runs,
		 ve_cpu_time ? " cpu" : "");
	p = popen(cmd, "r");
	if (!p)
		ve_die("cannot run %s", cmd);
	while (fgets(line, sizeof(line), p)) {
		size_t qi, j;
		char *s, *e;

		if (sscanf(line, "faiss_flat_qps %lf", &qps) == 1)
			continue;
		if (sscanf(line, "faiss_threads %d", threads) == 1)
			continue;
		if (strncmp(line, "faiss_ids ", 10))
			continue;
		qi = strtoul(line + 10, &s, 10);
		if (qi >= nq)
			continue;
		for (j = 0; j < k; j++) {
			ids[qi * k + j] = strtol(s, &e, 10);
			if (e == s)
				ids[qi * k + j] = -1;
			s = e;
		}
	}
	if (pclose(p) != 0 || qps <= 0)
		ve_die("%s failed", cmd);
	return qps;
}

/* --- main ------------------------------------------------------------------ */

static void ve_usage(void)
{
	fprintf(stderr, "usage: bench_vec_exact DIR [--lodefs PATH] [--rows N] "
			"[--dim D] [--queries Q]\n"
			"                       [--runs R] [-k K] [--no-faiss] "
			"[--before-queries B]\n"
			"                       [--cpu-time] [--best-kernel] "
			"[--int8-only]\n");
	exit(2);
}

struct ve_round {
	double *per; /* per query, s */
};

int main(int argc, char **argv)
{
	const char *dir = NULL, *lodefs = NULL;
	size_t rows = 100000, nq = 200, runs = 3, k = 10, nbefore = 20;
	uint32_t dim = 384;
	int faiss = 1, a, faiss_threads = 0;
	char base_p[4200], q_p[4200], store_p[4200], done_p[4300], log_p[4300];
	float *base, *qs, *centres;
	long *ids_in, *ids_x;
	size_t nc, i, r, kk;
	double *lat, *med, t0, scan_qps, bytes_gb = 0, in_qps = 0,
					 mount_qps = 0;
	double before_qps = 0, batch_qps, faiss_qps = 0, in_ratio = 0;
	double f32_ratio = 0;
	long *ids_f32;
	int q8, q8_built = 0;
	const char *kernels[8];
	int nk;
	struct backend *be;
	struct store *s;
	struct stat st;

	store_opts_init(&ve_sopts);
	ve_sopts.ann_threshold = 0;
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--lodefs") && a + 1 < argc)
			lodefs = argv[++a];
		else if (!strcmp(argv[a], "--rows") && a + 1 < argc)
			rows = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--dim") && a + 1 < argc)
			dim = (uint32_t)strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--queries") && a + 1 < argc)
			nq = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--runs") && a + 1 < argc)
			runs = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "-k") && a + 1 < argc)
			k = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--before-queries") && a + 1 < argc)
			nbefore = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--no-faiss"))
			faiss = 0;
		else if (!strcmp(argv[a], "--cpu-time"))
			ve_cpu_time = 1;
		else if (!strcmp(argv[a], "--best-kernel"))
			ve_best_kernel = 1;
		else if (!strcmp(argv[a], "--int8-only"))
			ve_int8_only = 1;
		else if (argv[a][0] == '-' || dir)
			ve_usage();
		else
			dir = argv[a];
	}
	if (!dir || !rows || !dim || !nq || !runs || !k)
		ve_usage();
	if (nbefore > nq)
		nbefore = nq;
	setvbuf(stdout, NULL, _IOLBF,
		0); /* lines appear as they are measured */
	signal(SIGINT, ve_signal);
	signal(SIGTERM, ve_signal);
	mkdir(dir, 0755);
	snprintf(base_p, sizeof(base_p), "%s/base-%zu-%u.fvecs", dir, rows,
		 dim);
	snprintf(q_p, sizeof(q_p), "%s/queries-%zu-%u.fvecs", dir, nq, dim);
	snprintf(store_p, sizeof(store_p), "%s/store-%zu-%u", dir, rows, dim);
	snprintf(done_p, sizeof(done_p), "%s/.built", store_p);
	snprintf(log_p, sizeof(log_p), "%s/lodefs.log", dir);
	snprintf(ve_mnt, sizeof(ve_mnt), "%s/mnt", dir);

	base = malloc(rows * dim * sizeof(float));
	qs = malloc(nq * dim * sizeof(float));
	ids_in = malloc(nq * k * sizeof(long));
	ids_x = malloc(nq * k * sizeof(long));
	ids_f32 = malloc(nq * k * sizeof(long));
	lat = malloc(nq * sizeof(double));
	med = malloc(runs * sizeof(double));
	if (!base || !qs || !ids_in || !ids_x || !ids_f32 || !lat || !med)
		ve_die("out of memory");

	/* 1. data, fixed seed: the same files on every machine */
	if (ve_read_fvecs(base_p, base, rows, dim) ||
	    ve_read_fvecs(q_p, qs, nq, dim)) {
		t0 = ve_now();
		nc = rows / 1000 + 1;
		centres = malloc(nc * dim * sizeof(float));
		if (!centres)
			ve_die("out of memory");
		for (i = 0; i < nc * dim; i++)
			centres[i] = (float)ve_gauss();
		ve_gen(base, rows, dim, centres, nc);
		ve_gen(qs, nq, dim, centres, nc);
		ve_write_fvecs(base_p, base, rows, dim);
		ve_write_fvecs(q_p, qs, nq, dim);
		free(centres);
		printf("data      %zu x %u + %zu queries written in %.1f s\n",
		       rows, dim, nq, ve_now() - t0);
	}

	/* 2. the store, built once */
	if (stat(done_p, &st)) {
		char(*names)[24] = malloc(rows * sizeof(*names));
		const char **idv = malloc(rows * sizeof(*idv));
		char cmd[4400];
		int rc;

		if (!names || !idv)
			ve_die("out of memory");
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store_p);
		if (system(cmd))
			ve_die("%s failed", cmd);
		mkdir(store_p, 0755);
		for (i = 0; i < rows; i++) {
			snprintf(names[i], sizeof(names[i]), "v%zu", i);
			idv[i] = names[i];
		}
		t0 = ve_now();
		if ((rc = backend_local_open(store_p, &be)) ||
		    (rc = store_open(be, &ve_sopts, &s)))
			ve_die("%s: %s", store_p, strerror(-rc));
		rc = store_vec_put_many(s, NULL, idv, base, dim, rows, dim,
					NULL, NULL);
		if (!rc)
			rc = engine_checkpoint(store_engine(s));
		if (rc)
			ve_die("building %s: %s (%s)", store_p, strerror(-rc),
			       store_last_error());
		store_close(s);
		backend_close(be);
		free(names);
		free(idv);
		if (close(open(done_p, O_WRONLY | O_CREAT, 0644)))
			ve_die("%s: %s", done_p, strerror(errno));
		printf("store     %zu vectors committed + checkpoint in %.1f "
		       "s\n",
		       rows, ve_now() - t0);
	}

	/* 3. in-process */
	{
		int rc;

		if ((rc = backend_local_open(store_p, &be)) ||
		    (rc = store_open(be, &ve_sopts, &s)))
			ve_die("%s: %s", store_p, strerror(-rc));
	}
	printf("config    %zu x %u float32 (%.1f MB), %zu queries, k=%zu, "
	       "%zu rounds, kernel %s, in-process clock: %s\n",
	       rows, dim, (double)rows * dim * 4 / 1e6, nq, k, runs,
	       vec_kernel_name(), ve_cpu_time ? "CPU time" : "wall");

	/*
	 * The physical limit (a plain sum over the same bytes) and
	 * store_query with every kernel, interleaved: each query is timed
	 * right after a scan pass, so that both see the same machine (other
	 * work on a shared machine comes and goes within seconds).  Figures
	 * are per-item medians over every round.
	 */
	nk = vec_kernel_list(kernels, 8);
	/* the first read of the rows (checksum, page cache) is not timed */
	vec_q8_mode(0);
	ve_store_query(s, qs, dim, k, ids_in);
	{
		double *tscan = malloc(runs * nq * sizeof(double));
		double *tq = malloc(runs * nq * sizeof(double));
		double *all_scan = malloc(2 * nk * runs * nq * sizeof(double));
		size_t nall = 0, m;

		if (!tscan || !tq || !all_scan)
			ve_die("out of memory");
		for (kk = (size_t)nk; kk-- > 0;) {
			if (ve_best_kernel && kk)
				continue;
			vec_kernel_select(kernels[kk]);
			for (q8 = ve_int8_only; q8 < 2; q8++) {
				/* float32 scan, then int8 (built: timed apart) */
				vec_q8_mode(q8);
				t0 = ve_now();
				ve_store_query(s, qs, dim, k, ids_in);
				if (q8 && !q8_built++)
					printf("int8      copy built by the "
					       "first "
					       "query: %.2f s wall\n",
					       ve_now() - t0);
				for (i = 1; i < 3 && i < nq; i++) /* warm-up */
					ve_store_query(s, qs + i * dim, dim, k,
						       ids_in);
				for (r = 0, m = 0; r < runs; r++) {
					for (i = 0; i < nq; i++, m++) {
						struct ve_scan sc = { 0 };

						t0 = ve_inproc_now();
						engine_with_vecs(
							store_engine(s),
							"vector_"
							"store"
							"/" STORE_NS_DEFAULT,
							ve_scan_fn, &sc);
						tscan[m] = ve_inproc_now() - t0;
						bytes_gb =
							(double)sc.bytes / 1e9;
						t0 = ve_inproc_now();
						ve_store_query(s, qs + i * dim,
							       dim, k,
							       ids_in + i * k);
						tq[m] = ve_inproc_now() - t0;
						all_scan[nall++] = tscan[m];
					}
				}
				/* the last is the best kernel, int8 */
				in_qps = 1 / ve_median(tq, m);
				scan_qps = 1 / ve_median(tscan, m);
				in_ratio = in_qps / scan_qps;
				if (!q8)
					f32_ratio = in_ratio;
				printf("inproc    %8.1f queries/s  "
				       "store_query, kernel "
				       "%s, %s "
				       "(%.2fx the scan beside it: %.1f "
				       "passes/s)\n",
				       in_qps, kernels[kk],
				       q8 ? "int8 first pass" : "float32 scan",
				       in_ratio, scan_qps);
				for (i = 0; q8 && !ve_int8_only && i < nq * k;
				     i++)
					if (ids_in[i] != ids_f32[i])
						ve_die("int8 and float32 "
						       "answers "
						       "differ (query %zu)",
						       i / k);
				if (!q8)
					memcpy(ids_f32, ids_in,
					       nq * k * sizeof(long));
			}
		}
		vec_q8_mode(-1);
		scan_qps = 1 / ve_median(all_scan, nall);
		printf("scan      %8.1f passes/s  (%.1f GB/s; the bandwidth "
		       "limit, median of all %zu passes)\n",
		       scan_qps, scan_qps * bytes_gb, nall);
		free(tscan);
		free(tq);
		free(all_scan);
	}
	vec_kernel_select(NULL);

	/* the previous vec_topk (double), on fewer queries: it is slow */
	for (r = 0; nbefore && r < runs; r++) {
		t0 = ve_inproc_now();
		for (i = 0; i < nbefore; i++) {
			struct ve_old o = { .q = qs + i * dim,
					    .dim = dim,
					    .k = k };
			size_t j;

			engine_with_vecs(store_engine(s),
					 "vector_store/" STORE_NS_DEFAULT,
					 ve_old_fn, &o);
			for (j = 0; j < k; j++)
				ids_x[i * k + j] =
					j < o.n ? atol(o.hits[j].key + 1) : -1;
			vec_hits_free(o.hits, o.n);
		}
		med[r] = (double)nbefore / (ve_inproc_now() - t0);
	}
	if (nbefore)
		before_qps = ve_median(med, runs);
	if (nbefore)
		printf("before    %8.1f queries/s  previous vec_topk (double), "
		       "%zu queries; answers differ on %zu\n",
		       before_qps, nbefore, ve_diff(ids_in, ids_x, nbefore, k));

	/* lode search: the queries in passes of 64 */
	{
		struct vec_hit **h = calloc(nq, sizeof(*h));
		size_t *hn = calloc(nq, sizeof(*hn)), j;

		if (!h || !hn)
			ve_die("out of memory");
		for (r = 0; r < runs; r++) {
			int rc;

			t0 = ve_inproc_now();
			rc = store_vec_search(s, NULL, qs, nq, dim, k, h, hn);
			med[r] = (double)nq / (ve_inproc_now() - t0);
			if (rc)
				ve_die("store_vec_search: %s", strerror(-rc));
			for (i = 0; i < nq; i++) {
				for (j = 0; j < k; j++)
					ids_x[i * k + j] =
						j < hn[i]
							? atol(h[i][j].key + 1)
							: -1;
				vec_hits_free(h[i], hn[i]);
			}
		}
		batch_qps = ve_median(med, runs);
		printf("batch     %8.1f queries/s  store_vec_search (lode "
		       "search), 64 a pass; answers differ on %zu\n",
		       batch_qps, ve_diff(ids_in, ids_x, nq, k));
		free(h);
		free(hn);
	}
	store_close(s);
	backend_close(be);

	/* 4. through the mount */
	if (lodefs) {
		char **req = malloc(nq * sizeof(*req));
		size_t *reqlen = malloc(nq * sizeof(*reqlen));

		if (!req || !reqlen)
			ve_die("out of memory");
		for (i = 0; i < nq; i++)
			req[i] = ve_request(qs + i * dim, dim, k, &reqlen[i]);
		ve_mount(lodefs, store_p, log_p);
		for (i = 0; i < 3 && i < nq; i++)
			ve_mount_query(i, req[i], reqlen[i], k, ids_x);
		for (r = 0; r < runs; r++) {
			t0 = ve_mount_now();
			for (i = 0; i < nq; i++)
				lat[i] = ve_mount_query(i, req[i], reqlen[i], k,
							ids_x + i * k);
			med[r] = (double)nq / (ve_mount_now() - t0);
		}
		mount_qps = ve_median(med, runs);
		printf("mount     %8.1f queries/s  JSON request files, %s, "
		       "median %.0f us wall; answers differ on %zu\n",
		       mount_qps,
		       ve_cpu_time ? "CPU time (reader + daemon)" : "wall",
		       ve_median(lat, nq) * 1e6, ve_diff(ids_in, ids_x, nq, k));
		ve_unmount();
		for (i = 0; i < nq; i++)
			free(req[i]);
		free(req);
		free(reqlen);
	}

	/* 5. faiss */
	if (faiss) {
		faiss_qps = ve_faiss(base_p, q_p, k, runs, nq, ids_x,
				     &faiss_threads);
		printf("faiss     %8.1f queries/s  IndexFlatIP, nq=1 per "
		       "call, %d thread, %s; answers differ on %zu\n",
		       faiss_qps, faiss_threads,
		       ve_cpu_time ? "CPU time" : "wall",
		       ve_diff(ids_in, ids_x, nq, k));
	}

	printf("\nratios (targets of issue 6)\n");
	printf("  in-process / scan limit      %6.2f   (>= 0.85; paired "
	       "medians; int8 first pass)\n",
	       in_ratio);
	printf("  float32 scan / scan limit    %6.2f   (before the int8 "
	       "pass)\n",
	       f32_ratio);
	if (lodefs && faiss)
		printf("  mount / faiss flat           %6.2f   (>= 4)\n",
		       mount_qps / faiss_qps);
	if (faiss)
		printf("  in-process / faiss flat      %6.2f\n",
		       in_qps / faiss_qps);
	if (nbefore)
		printf("  in-process / previous        %6.2f\n",
		       in_qps / before_qps);
	printf("  batch / scan limit           %6.2f\n", batch_qps / scan_qps);
	printf("  one at a time, queries/s     %8.1f   (1M x 384 on one core: "
	       ">= 25)\n",
	       in_qps);
	printf("  best exact queries/s         %8.1f\n",
	       batch_qps > in_qps ? batch_qps : in_qps);
	free(base);
	free(qs);
	free(ids_in);
	free(ids_x);
	free(ids_f32);
	free(lat);
	free(med);
	return 0;
}
