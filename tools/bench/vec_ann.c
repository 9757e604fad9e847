/* vec_ann.c - HNSW through the store and through a mount, against hnswlib. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/*
 * usage: bench_vec_ann DIR --lodefs PATH [--rows N] [--dim D]
 *                      [--queries Q] [--runs R] [--ef EF,EF,...]
 *                      [--threads T] [--seed S] [--no-hnswlib]
 *
 * 1. Data: vec_ann.py (run by /usr/bin/python3) writes the clustered rows
 *    and queries of vec_hnsw.py (its make_data, seed 20261124 by default)
 *    to DIR once.
 * 2. DIR/noann-N-D: a store of the rows in namespace "default" (ids v0,
 *    v1, ...) committed and checkpointed with no graph (ann_threshold=0),
 *    built once.  Every run copies it (cp -a) and works on the copy.
 * 3. Per run, in-process (what query/ runs, as bench_vec_exact measures
 *    it): store_open of the copy with the default options (HNSW from
 *    50,000 rows), so the background builder makes the graph; its build
 *    time is the time from store_open until store_wait_index returns
 *    (wall, and this process's CPU time).  Then each query one at a time
 *    with store_query, "exact" on the first run (the reference of every
 *    recall), then at each ef; then a checkpoint, which saves the graph.
 * 4. Per run, through the mount: `LODEFS -f COPY DIR/mnt` (default
 *    options), timed from the fork to the first JSON request under
 *    query/ answered (the graph comes from the checkpoint); .lodefs/stats
 *    must say so (ann.loaded 1, nothing pending).  The queries, one
 *    request file each (written, closed, read back, removed), "exact":
 *    true on the first run, then at each ef ("ef": EF), timed in wall
 *    time and in CPU time (this process + the daemon, from /proc).  Then
 *    a second copy of the store without graph is mounted: time to the
 *    first answer, and the time until .lodefs/stats shows the graph built
 *    (the background build through a mount).
 * 5. python3-hnswlib (M=32, ef_construction=100, space='cosine') on the
 *    same rows, R builds on T threads (default 1, like the store's one
 *    builder thread), every query one per knn_query call at each ef,
 *    recall against the store's exact answers.
 *
 * Figures are medians over the R runs; ratios at the smallest ef where
 * each side reaches recall@10 0.95.  Pin it with `taskset -c 0` (the
 * daemon and python inherit it).
 */

#ifndef VEC_ANN_PY
#define VEC_ANN_PY "tools/bench/vec_ann.py"
#endif

#define K      10
#define MAX_EF 16

static char va_mnt[4096];
static int va_mounted;
static pid_t va_daemon = -1;

static void va_unmount(void)
{
	int st;

	if (va_mounted) {
		pid_t p = fork();

		if (p == 0) {
			execlp("fusermount3", "fusermount3", "-u", va_mnt,
			       (char *)NULL);
			_exit(127);
		}
		if (p > 0)
			waitpid(p, &st, 0);
		va_mounted = 0;
	}
	if (va_daemon > 0) {
		waitpid(va_daemon, &st, 0);
		va_daemon = -1;
	}
}

static void va_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_vec_ann: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	va_unmount();
	exit(1);
}

static void va_signal(int sig)
{
	va_die("interrupted by signal %d", sig);
}

static double va_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double va_now(void)
{
	return va_clock(CLOCK_MONOTONIC);
}

/* CPU seconds of this process, every thread (the builder's too). */
static double va_cpu(void)
{
	return va_clock(CLOCK_PROCESS_CPUTIME_ID);
}

/* CPU seconds of the mount daemon so far (utime + stime, /proc). */
static double va_daemon_cpu(void)
{
	unsigned long long ut = 0, stime = 0;
	char path[64], buf[1024], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)va_daemon);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		va_die("%s: cannot read", path);
	fclose(f);
	p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
			 "%llu",
			 &ut, &stime) != 2)
		va_die("%s: unexpected format", path);
	return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Peak RSS of this process, MB. */
static double va_maxrss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024;
}

static int va_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double va_median(const double *v, size_t n)
{
	double *c = malloc(n * sizeof(*c)), m;

	if (!c)
		va_die("out of memory");
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), va_cmp);
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static void va_sh(const char *fmt, ...)
{
	char cmd[9000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		va_die("%s failed", cmd);
}

static float *va_read_f32(const char *path, size_t n)
{
	float *v = malloc(n * sizeof(float));
	FILE *f = fopen(path, "rb");

	if (!v || !f || fread(v, sizeof(float), n, f) != n)
		va_die("%s: cannot read %zu floats", path, n);
	fclose(f);
	return v;
}

/* hits of `got` among the k of `ref` (row numbers, -1: none) */
static size_t va_overlap(const long *got, const long *ref)
{
	size_t i, j, hit = 0;

	for (i = 0; i < K; i++)
		for (j = 0; j < K && got[i] >= 0; j++)
			hit += got[i] == ref[j];
	return hit;
}

static double va_recall(const long *got, const long *ref, size_t nq)
{
	size_t i, j, hit = 0, tot = 0;

	for (i = 0; i < nq; i++) {
		hit += va_overlap(got + i * K, ref + i * K);
		for (j = 0; j < K; j++)
			tot += ref[i * K + j] >= 0;
	}
	return tot ? (double)hit / (double)tot : 0;
}

/* --- in-process ------------------------------------------------------ */

/* ef 0 with exact: the exact scan. */
static void va_store_query(struct store *s, const float *q, uint32_t dim,
			   int exact, unsigned ef, long *ids)
{
	struct store_query sq = { 0 };
	struct store_hit *h;
	size_t n, j;
	int rc;

	sq.embedding = q;
	sq.dim = dim;
	sq.k = K;
	sq.mode = STORE_MODE_VECTOR;
	sq.exact = exact;
	sq.ef = ef;
	rc = store_query(s, &sq, &h, &n);
	if (rc)
		va_die("store_query: %s (%s)", strerror(-rc),
		       store_last_error());
	for (j = 0; j < K; j++)
		ids[j] = j < n ? atol(h[j].node_id + 1) : -1;
	store_hits_free(h, n);
}

/* --- the mount ------------------------------------------------------- */

static void va_spawn(const char *lodefs, const char *store_dir, const char *log)
{
	mkdir(va_mnt, 0755);
	va_daemon = fork();
	if (va_daemon < 0)
		va_die("fork: %s", strerror(errno));
	if (va_daemon == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(lodefs, lodefs, "-f", store_dir, va_mnt, (char *)NULL);
		_exit(127);
	}
}

static int va_is_mounted(void)
{
	char parent[4200];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", va_mnt);
	return stat(va_mnt, &a) == 0 && stat(parent, &b) == 0 &&
	       a.st_dev != b.st_dev;
}

/*
 * One request file: written, closed, read back, removed.  0, or -1 if
 * the mount is not there yet (only with `soft`).
 */
static int va_mount_query(const char *req, size_t reqlen, long *ids, int soft)
{
	static char buf[1 << 20];
	char path[4300];
	json_t *root, *arr;
	json_error_t e;
	size_t n = 0, j;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "%s/query/ann.json", va_mnt);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 && soft)
		return -1;
	if (fd < 0 || write(fd, req, reqlen) != (ssize_t)reqlen || close(fd))
		va_die("%s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		va_die("%s: %s", path, strerror(errno));
	while ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (unlink(path))
		va_die("unlink %s: %s", path, strerror(errno));
	buf[n] = 0;
	root = json_loads(buf, 0, &e);
	arr = json_object_get(root, "ids");
	if (!json_is_array(arr))
		va_die("%s: no ids in the result: %.200s", path, buf);
	for (j = 0; j < K; j++) {
		const char *id = json_string_value(json_array_get(arr, j));

		ids[j] = id ? atol(id + 1) : -1;
	}
	json_decref(root);
	return 0;
}

/* Mounts and waits for the first answer; returns the seconds it took. */
static double va_mount_first(const char *lodefs, const char *store_dir,
			     const char *log, const char *req, size_t reqlen,
			     long *ids)
{
	double t0 = va_now();
	int st;

	va_spawn(lodefs, store_dir, log);
	for (;;) {
		if (waitpid(va_daemon, &st, WNOHANG) == va_daemon) {
			va_daemon = -1;
			va_die("lodefs exited before mounting; see %s", log);
		}
		if (va_now() - t0 > 600)
			va_die("lodefs did not answer within 600 s; see %s",
			       log);
		if (!va_mounted && va_is_mounted())
			va_mounted = 1;
		if (va_mounted && va_mount_query(req, reqlen, ids, 1) == 0)
			return va_now() - t0;
		usleep(2000);
	}
}

struct va_ann {
	long graphs, nodes, pending, loaded, built, searches;
};

static void va_mount_stats(struct va_ann *a)
{
	char path[4300];
	json_error_t e;
	json_t *root, *o;

	snprintf(path, sizeof(path), "%s/.lodefs/stats", va_mnt);
	root = json_load_file(path, 0, &e);
	o = json_object_get(root, "ann");
	if (!json_is_object(o))
		va_die("%s: no \"ann\" object (%s)", path, e.text);
	a->graphs = (long)json_integer_value(json_object_get(o, "graphs"));
	a->nodes = (long)json_integer_value(json_object_get(o, "nodes"));
	a->pending = (long)json_integer_value(json_object_get(o, "pending"));
	a->loaded = (long)json_integer_value(json_object_get(o, "loaded"));
	a->built = (long)json_integer_value(json_object_get(o, "built"));
	a->searches = (long)json_integer_value(json_object_get(o, "searches"));
	json_decref(root);
}

static char *va_request(const float *q, uint32_t dim, unsigned ef, size_t *len)
{
	size_t cap = 128 + (size_t)dim * 20, n = 0;
	char *b = malloc(cap);
	uint32_t j;

	if (!b)
		va_die("out of memory");
	n += (size_t)snprintf(b + n, cap - n, "{\"query_embedding\": [");
	for (j = 0; j < dim; j++)
		n += (size_t)snprintf(b + n, cap - n, "%s%.9g", j ? "," : "",
				      q[j]);
	if (ef)
		n += (size_t)snprintf(b + n, cap - n,
				      "], \"similarity_top_k\": %d, \"ef\": "
				      "%u}\n",
				      K, ef);
	else
		n += (size_t)snprintf(b + n, cap - n,
				      "], \"similarity_top_k\": %d, "
				      "\"exact\": true}\n",
				      K);
	*len = n;
	return b;
}

/* --- main ------------------------------------------------------------ */

static void va_usage(void)
{
	fprintf(stderr,
		"usage: bench_vec_ann DIR --lodefs PATH [--rows N] [--dim D] "
		"[--queries Q]\n"
		"                     [--runs R] [--ef EF,EF,...] [--threads "
		"T] [--seed S]\n"
		"                     [--no-hnswlib]\n");
	exit(2);
}

/* per ef: recall, queries/s wall and per CPU-second, one entry a run */
struct va_side {
	double rec[MAX_EF], qps[MAX_EF][16], cqps[MAX_EF][16];
	int have;
};

static void va_print_side(const char *name, const struct va_side *s,
			  const unsigned *efs, size_t nef, size_t runs)
{
	size_t e;

	for (e = 0; e < nef; e++)
		printf("  %-8s ef %4u  recall@10 %.4f  %8.0f q/s wall  %8.0f "
		       "q/CPU-s\n",
		       name, efs[e], s->rec[e], va_median(s->qps[e], runs),
		       va_median(s->cqps[e], runs));
}

/* index of the smallest ef reaching recall `t`, -1 if none */
static int va_first_at(const struct va_side *s, size_t nef, double t)
{
	size_t e;

	for (e = 0; e < nef; e++)
		if (s->rec[e] >= t)
			return (int)e;
	return -1;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *lodefs = NULL, *efarg = "16,24,32,48,64";
	size_t rows = 100000, nq = 1000, runs = 3, nef = 0, r, e, i;
	unsigned efs[MAX_EF], seed = 20261124, threads = 1;
	uint32_t dim = 384;
	int hnswlib = 1, a, hl_missing = 0;
	char base_p[4200], q_p[4200], noann_p[4200], done_p[4300], log_p[4300],
		copy_p[4200], gt_p[4200], line[1024];
	float *base, *qs;
	long *gt, *ids, *mids;
	double build_w[16], build_c[16], open_s[16], ckpt_s[16], mload[16],
		mrebuild[16], mbuild[16], hl_bw[16], hl_bc[16],
		exact_qps = 0, mexact_qps = 0, rss_built = 0;
	struct va_side in = { 0 }, mnt = { 0 }, hl = { 0 };
	size_t mexact_diff = 0;
	struct va_ann an;
	char **req[MAX_EF + 1];
	size_t *reqlen[MAX_EF + 1];
	FILE *p;

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
		else if (!strcmp(argv[a], "--ef") && a + 1 < argc)
			efarg = argv[++a];
		else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
			threads = (unsigned)strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--seed") && a + 1 < argc)
			seed = (unsigned)strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--no-hnswlib"))
			hnswlib = 0;
		else if (argv[a][0] == '-' || dir)
			va_usage();
		else
			dir = argv[a];
	}
	for (const char *s = efarg; *s && nef < MAX_EF;) {
		char *end;

		efs[nef++] = (unsigned)strtoul(s, &end, 10);
		s = *end == ',' ? end + 1 : end;
		if (end == s && *s)
			va_usage();
	}
	if (!dir || !lodefs || !rows || !dim || !nq || !nef || !runs ||
	    runs > 16 || !threads)
		va_usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, va_signal);
	signal(SIGTERM, va_signal);
	mkdir(dir, 0755);
	snprintf(base_p, sizeof(base_p), "%s/base-%zu-%u-%u.f32", dir, rows,
		 dim, seed);
	snprintf(q_p, sizeof(q_p), "%s/query-%zu-%u-%u.f32", dir, nq, dim,
		 seed);
	snprintf(noann_p, sizeof(noann_p), "%s/noann-%zu-%u-%u", dir, rows, dim,
		 seed);
	snprintf(done_p, sizeof(done_p), "%s/.built", noann_p);
	snprintf(copy_p, sizeof(copy_p), "%s/copy", dir);
	snprintf(gt_p, sizeof(gt_p), "%s/gt.i32", dir);
	snprintf(log_p, sizeof(log_p), "%s/lodefs.log", dir);
	snprintf(va_mnt, sizeof(va_mnt), "%s/mnt", dir);

	/* 1. data */
	snprintf(line, sizeof(line),
		 "/usr/bin/python3 '%s' data '%s' %zu %u "
		 "%zu %u",
		 VEC_ANN_PY, dir, rows, dim, nq, seed);
	p = popen(line, "r");
	if (!p)
		va_die("cannot run %s", line);
	while (fgets(line, sizeof(line), p))
		if (!strncmp(line, "missing ", 8))
			va_die("/usr/bin/python3 has no module %s (Debian "
			       "package named after it); the data cannot be "
			       "made",
			       line + 8);
	if (pclose(p))
		va_die("vec_ann.py data failed");
	base = va_read_f32(base_p, rows * dim);
	qs = va_read_f32(q_p, nq * dim);
	gt = malloc(nq * K * sizeof(long));
	ids = malloc(nq * K * sizeof(long));
	mids = malloc(nq * K * sizeof(long));
	if (!gt || !ids || !mids)
		va_die("out of memory");

	/* 2. the store without graph, built once */
	{
		struct stat st;

		if (stat(done_p, &st)) {
			char(*names)[24] = malloc(rows * sizeof(*names));
			const char **idv = malloc(rows * sizeof(*idv));
			struct store_opts o;
			struct backend *be;
			struct store *s;
			double t0 = va_now();
			int rc;

			if (!names || !idv)
				va_die("out of memory");
			va_sh("rm -rf '%s'", noann_p);
			mkdir(noann_p, 0755);
			for (i = 0; i < rows; i++) {
				snprintf(names[i], sizeof(names[i]), "v%zu", i);
				idv[i] = names[i];
			}
			store_opts_init(&o);
			o.ann_threshold = 0;
			if ((rc = backend_local_open(noann_p, &be)) ||
			    (rc = store_open(be, &o, &s)))
				va_die("%s: %s", noann_p, strerror(-rc));
			rc = store_vec_put_many(s, NULL, idv, base, dim, rows,
						dim, NULL, NULL);
			if (!rc)
				rc = engine_checkpoint(store_engine(s));
			if (rc)
				va_die("building %s: %s (%s)", noann_p,
				       strerror(-rc), store_last_error());
			store_close(s);
			backend_close(be);
			free(names);
			free(idv);
			if (close(open(done_p, O_WRONLY | O_CREAT, 0644)))
				va_die("%s: %s", done_p, strerror(errno));
			printf("store     %zu vectors committed + checkpoint "
			       "(no graph) in %.1f s\n",
			       rows, va_now() - t0);
		}
	}
	printf("config    %zu x %u float32, %zu queries, k=%d, %zu runs, "
	       "kernel %s, seed %u, efs %s\n",
	       rows, dim, nq, K, runs, vec_kernel_name(), seed, efarg);

	/* request files, made once: [0] exact, [1 + e] at efs[e] */
	for (e = 0; e <= nef; e++) {
		req[e] = malloc(nq * sizeof(char *));
		reqlen[e] = malloc(nq * sizeof(size_t));
		if (!req[e] || !reqlen[e])
			va_die("out of memory");
		for (i = 0; i < nq; i++)
			req[e][i] =
				va_request(qs + i * dim, dim,
					   e ? efs[e - 1] : 0, &reqlen[e][i]);
	}

	for (r = 0; r < runs; r++) {
		struct store_opts o;
		struct store_stats ss;
		struct backend *be;
		struct store *s;
		double t0, c0, t;
		int rc;

		/* 3. in-process: the background build, then queries */
		va_sh("rm -rf '%s' && cp -a '%s' '%s'", copy_p, noann_p,
		      copy_p);
		store_opts_init(&o);
		t0 = va_now();
		c0 = va_cpu();
		if ((rc = backend_local_open(copy_p, &be)) ||
		    (rc = store_open(be, &o, &s)))
			va_die("%s: %s", copy_p, strerror(-rc));
		open_s[r] = va_now() - t0;
		store_wait_index(s);
		build_w[r] = va_now() - t0;
		build_c[r] = va_cpu() - c0;
		rss_built = va_maxrss_mb();
		store_get_stats(s, &ss);
		if (ss.ann.graphs != 1 || ss.ann.nodes != rows ||
		    ss.ann.pending || ss.ann.built != 1)
			va_die("after the build: %llu graphs, %llu nodes, "
			       "%llu pending, %llu built",
			       (unsigned long long)ss.ann.graphs,
			       (unsigned long long)ss.ann.nodes,
			       (unsigned long long)ss.ann.pending,
			       (unsigned long long)ss.ann.built);
		printf("run %zu    store_open %.2f s, graph of %zu built in "
		       "the background in %.1f s wall, %.1f s CPU\n",
		       r, open_s[r], rows, build_w[r], build_c[r]);
		if (r == 0) {
			t0 = va_now();
			for (i = 0; i < nq; i++)
				va_store_query(s, qs + i * dim, dim, 1, 0,
					       gt + i * K);
			exact_qps = (double)nq / (va_now() - t0);
			{
				int32_t *g = malloc(nq * K * sizeof(*g));
				FILE *f = fopen(gt_p, "wb");

				for (i = 0; g && i < nq * K; i++)
					g[i] = (int32_t)gt[i];
				if (!g || !f ||
				    fwrite(g, sizeof(*g), nq * K, f) !=
					    nq * K ||
				    fclose(f))
					va_die("%s: cannot write", gt_p);
				free(g);
			}
		}
		/*
		 * Warm-up: every query once at the first ef, untimed (the
		 * caches and the TLB still hold the build's or the exact
		 * scan's memory); vec_ann.py does the same for hnswlib.
		 */
		for (i = 0; i < nq; i++)
			va_store_query(s, qs + i * dim, dim, 0, efs[0], ids);
		for (e = 0; e < nef; e++) {
			t0 = va_now();
			c0 = va_cpu();
			for (i = 0; i < nq; i++)
				va_store_query(s, qs + i * dim, dim, 0, efs[e],
					       ids + i * K);
			in.qps[e][r] = (double)nq / (va_now() - t0);
			in.cqps[e][r] = (double)nq / (va_cpu() - c0);
			in.rec[e] = va_recall(ids, gt, nq);
		}
		t0 = va_now();
		rc = engine_checkpoint(store_engine(s));
		if (rc)
			va_die("checkpoint: %s", strerror(-rc));
		ckpt_s[r] = va_now() - t0;
		store_close(s);
		backend_close(be);

		/* 4. the mount of that store: the graph is in the checkpoint */
		mload[r] = va_mount_first(lodefs, copy_p, log_p, req[1][0],
					  reqlen[1][0], ids);
		va_mount_stats(&an);
		if (an.loaded != 1 || an.pending || an.nodes != (long)rows)
			va_die("mount: graph not loaded from the checkpoint "
			       "(loaded %ld, pending %ld, nodes %ld)",
			       an.loaded, an.pending, an.nodes);
		if (r == 0) {
			t0 = va_now();
			for (i = 0; i < nq; i++)
				va_mount_query(req[0][i], reqlen[0][i],
					       mids + i * K, 0);
			mexact_qps = (double)nq / (va_now() - t0);
			for (i = 0; i < nq; i++)
				mexact_diff += memcmp(mids + i * K, gt + i * K,
						      K * sizeof(long)) != 0;
		}
		for (e = 0; e < nef; e++) {
			long before;

			va_mount_stats(&an);
			before = an.searches;
			for (i = 0; i < 3 && i < nq; i++)
				va_mount_query(req[1 + e][i], reqlen[1 + e][i],
					       mids, 0);
			t0 = va_now();
			c0 = va_cpu() + va_daemon_cpu();
			for (i = 0; i < nq; i++)
				va_mount_query(req[1 + e][i], reqlen[1 + e][i],
					       mids + i * K, 0);
			t = va_now() - t0;
			mnt.cqps[e][r] =
				(double)nq / (va_cpu() + va_daemon_cpu() - c0);
			mnt.qps[e][r] = (double)nq / t;
			mnt.rec[e] = va_recall(mids, gt, nq);
			va_mount_stats(&an);
			/* every request, warm-ups too, searched the graph */
			if (an.searches - before !=
			    (long)(nq + (nq < 3 ? nq : 3)))
				va_die("mount: %ld of %zu queries answered by "
				       "the graph",
				       an.searches - before,
				       nq + (nq < 3 ? nq : 3));
		}
		va_unmount();

		/* the same rows, no graph in the checkpoint: rebuilt */
		va_sh("rm -rf '%s' && cp -a '%s' '%s'", copy_p, noann_p,
		      copy_p);
		t0 = va_now();
		mrebuild[r] = va_mount_first(lodefs, copy_p, log_p, req[1][0],
					     reqlen[1][0], ids);
		for (;;) {
			va_mount_stats(&an);
			if (an.graphs == 1 && !an.pending &&
			    an.nodes == (long)rows)
				break;
			if (va_now() - t0 > 1200)
				va_die("mount: graph not built in 1200 s");
			usleep(20000);
		}
		mbuild[r] = va_now() - t0;
		printf("run %zu    mount to first answer: graph in the "
		       "checkpoint %.3f s, rebuilt %.3f s (graph ready after "
		       "%.1f s); checkpoint with graph %.2f s\n",
		       r, mload[r], mrebuild[r], mbuild[r], ckpt_s[r]);
		va_unmount();
		va_sh("rm -rf '%s'", copy_p);
	}
	in.have = mnt.have = 1;

	/* 5. hnswlib */
	if (hnswlib) {
		char cmd[9000];

		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 '%s' hnswlib '%s' %zu %u %zu %u "
			 "'%s' %u %zu %s",
			 VEC_ANN_PY, dir, rows, dim, nq, seed, gt_p, threads,
			 runs, efarg);
		p = popen(cmd, "r");
		if (!p)
			va_die("cannot run %s", cmd);
		while (fgets(line, sizeof(line), p)) {
			unsigned rr, ef;
			double x, y, z;

			if (!strncmp(line, "missing ", 8)) {
				printf("hnswlib   NOT RUN: /usr/bin/python3 "
				       "lacks module %s",
				       line + 8);
				hl_missing = 1;
			} else if (sscanf(line, "build %u %lf %lf", &rr, &x,
					  &y) == 3 &&
				   rr < runs) {
				hl_bw[rr] = x;
				hl_bc[rr] = y;
				printf("hnswlib   run %u build %.1f s wall, "
				       "%.1f s CPU (%u threads)\n",
				       rr, x, y, threads);
			} else if (sscanf(line, "ef %u %u %lf %lf %lf", &rr,
					  &ef, &x, &y, &z) == 5 &&
				   rr < runs) {
				for (e = 0; e < nef && efs[e] != ef; e++)
					;
				if (e < nef) {
					hl.rec[e] = x;
					hl.qps[e][rr] = (double)nq / y;
					hl.cqps[e][rr] = (double)nq / z;
				}
			}
		}
		if (pclose(p))
			va_die("%s failed", cmd);
		hl.have = !hl_missing;
	}

	/* figures */
	printf("\nHNSW, %zu x %u, %zu queries one at a time, top-%d, "
	       "medians of %zu runs\n",
	       rows, dim, nq, K, runs);
	printf("  exact     in-process %8.1f q/s, mount %8.1f q/s "
	       "(\"exact\": true; mount answers differ from in-process on "
	       "%zu)\n",
	       exact_qps, mexact_qps, mexact_diff);
	printf("  lodefs store (M=%d, ef_construction=%d, 1 builder thread): "
	       "build %.1f s wall, %.1f s CPU (store_open to "
	       "store_wait_index); store_open %.2f s; peak RSS %.0f MB\n",
	       24, 100, va_median(build_w, runs), va_median(build_c, runs),
	       va_median(open_s, runs), rss_built);
	va_print_side("inproc", &in, efs, nef, runs);
	va_print_side("mount", &mnt, efs, nef, runs);
	if (hl.have) {
		printf("  hnswlib (M=32, ef_construction=100, %u threads): "
		       "build %.1f s wall, %.1f s CPU\n",
		       threads, va_median(hl_bw, runs), va_median(hl_bc, runs));
		va_print_side("hnswlib", &hl, efs, nef, runs);
	} else {
		printf("  hnswlib   not run%s\n",
		       hl_missing ? " (module missing, see above)" : "");
	}
	printf("  mount to first answer: graph in the checkpoint %.3f s, "
	       "rebuilt %.3f s (graph ready %.1f s)\n",
	       va_median(mload, runs), va_median(mrebuild, runs),
	       va_median(mbuild, runs));

	printf("\nratios (smallest ef reaching recall@10 >= 0.95 on each "
	       "side)\n");
	{
		int oi = va_first_at(&in, nef, 0.95);
		int mi = va_first_at(&mnt, nef, 0.95);
		int hi = hl.have ? va_first_at(&hl, nef, 0.95) : -1;

		if (oi >= 0 && hi >= 0)
			printf("  in-process / hnswlib   %5.2f wall, %5.2f "
			       "CPU  (ef %u vs %u)\n",
			       va_median(in.qps[oi], runs) /
				       va_median(hl.qps[hi], runs),
			       va_median(in.cqps[oi], runs) /
				       va_median(hl.cqps[hi], runs),
			       efs[oi], efs[hi]);
		if (mi >= 0 && hi >= 0)
			printf("  mount / hnswlib        %5.2f wall, %5.2f "
			       "CPU  (ef %u vs %u)\n",
			       va_median(mnt.qps[mi], runs) /
				       va_median(hl.qps[hi], runs),
			       va_median(mnt.cqps[mi], runs) /
				       va_median(hl.cqps[hi], runs),
			       efs[mi], efs[hi]);
		if (mi >= 0 && oi >= 0)
			printf("  mount / in-process     %5.2f wall\n",
			       va_median(mnt.qps[mi], runs) /
				       va_median(in.qps[oi], runs));
		if (mi >= 0)
			printf("  mount HNSW / mount exact %5.1f wall\n",
			       va_median(mnt.qps[mi], runs) / mexact_qps);
		if (hl.have)
			printf("  build store / hnswlib  %5.2f wall, %5.2f "
			       "CPU\n",
			       va_median(build_w, runs) /
				       va_median(hl_bw, runs),
			       va_median(build_c, runs) /
				       va_median(hl_bc, runs));
		if (oi < 0 || mi < 0 || (hl.have && hi < 0))
			printf("  recall 0.95 not reached on some side: add a "
			       "larger --ef\n");
		printf("  mount time, rebuilt / graph in checkpoint  %5.2f\n",
		       va_median(mrebuild, runs) / va_median(mload, runs));
	}
	for (e = 0; e <= nef; e++) {
		for (i = 0; i < nq; i++)
			free(req[e][i]);
		free(req[e]);
		free(reqlen[e]);
	}
	free(base);
	free(qs);
	free(gt);
	free(ids);
	free(mids);
	return 0;
}
