/* query_overhead.c - a query/ file read through the mount vs in-process. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "core/store.h"
#include "fs/fs_query.h"

/*
 * usage: bench_query_overhead LODEFS DIR [--docs N] [--queries Q]
 *                             [--runs R] [--options SEGS] [--rebuild]
 *
 * 1. DIR/store: N (default 2,000) generated ~2 KB pseudo-English text
 *    documents (gen/fNNNNN.txt) put with store_docs_put in batches of 100,
 *    so they are split, embedded and keyword-indexed as lodefs does it.
 *    A DIR/store built earlier with the same N is reused (--rebuild makes
 *    it again).
 * 2. In-process: opens the store and runs R rounds (default 3, or
 *    $LODEFS_BENCH_RUNS) of Q (default 2,000) distinct query texts (three
 *    words of the corpus's vocabulary) through fs_qreq_from_path +
 *    fs_qreq_run, timing each query (parse, run, free).
 * 3. Closes it, mounts it: fork + exec of `LODEFS -f STORE DIR/mnt`, waits
 *    for the mount, then R rounds over the same texts, each one
 *    open("DIR/mnt/query/<text>") + read to EOF (1 MiB buffer) + close,
 *    timed end to end.  Each text is new to the daemon (it caches a
 *    result per path until the store changes), so this is the cold,
 *    real-work case.  Right after each cold read the same path is read
 *    again: the warm case (the kernel's dentry and the daemon's cached
 *    result), reported apart.
 * 4. Unmounts (fusermount3 -u, also on an error or a signal) and prints
 *    the medians of each round, the median of the round medians, the
 *    overhead (mount - in-process) in microseconds, the ratio, the FUSE
 *    requests per query file read (from .lodefs/stats) and whether the
 *    mount returned the same bytes as the in-process run.
 *
 * --options SEGS puts option segments before the text on both sides, e.g.
 * --options k=5/mode=hybrid.  Before each side, 200 other texts warm up.
 * The daemon inherits this process's CPU affinity: `taskset -c 0
 * bench_query_overhead ...` keeps the reader and the daemon on one CPU
 * (on a VM, a wakeup on another vCPU can cost more than the request).
 */

#define QO_WARMUP  200
#define QO_BUF	   (1u << 20)
#define QO_TARGET  150.0 /* us, issue 3 */
#define QO_MAXSEGS 16

static const char *qo_words =
	"the of and to in a is that for it as was with be by on not he this "
	"are or his from at which but have an had they you were their one all "
	"we can her has there been if more when will would who so no river "
	"mountain valley harvest ancient city market winter summer garden "
	"orchard apple farmer bridge tower engine storage memory signal window "
	"library letter record season village harbour ship voyage island "
	"forest stone metal copper silver bread water fire light shadow music "
	"painter teacher student question answer number measure weight "
	"distance journey road station railway machine factory worker merchant "
	"coin price trade law court king queen council church school doctor "
	"fever medicine plant seed flower leaf root branch bird horse sheep "
	"wool cloth thread needle kitchen table chair door roof wall floor "
	"candle lamp clock hour morning evening night moon star planet ocean "
	"wave storm rain snow wind cloud north south east west large small old "
	"new early late quiet bright dark heavy careful simple strange common "
	"rare quick slow grow build carry write read count travel follow "
	"discover explain remember repair gather divide observe describe "
	"compare produce store open close between under over through after "
	"before during without across";
/* the first QO_STOP words are function words: not used in query texts */
#define QO_STOP 50

static char **qo_w;
static size_t qo_nw;

/* --- the mount, undone on any exit ----------------------------------------- */

static char qo_mnt[4096];
static int qo_mounted;
static pid_t qo_daemon = -1;
static volatile sig_atomic_t qo_stop; /* a signal came: unmount and leave */

/* Runs fusermount3 -u [-z] MNT: 0 if it succeeded. */
static int qo_fusermount(int lazy)
{
	pid_t p = fork();
	int st = 0;

	if (p == 0) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", qo_mnt,
			       (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", qo_mnt,
			       (char *)NULL);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Unmounts and waits for the daemon; called on every way out. */
static void qo_unmount(void)
{
	int st;

	if (qo_mounted) {
		if (qo_fusermount(0)) {
			/* busy: detach it, and ask the daemon to leave */
			qo_fusermount(1);
			if (qo_daemon > 0)
				kill(qo_daemon, SIGTERM);
		}
		qo_mounted = 0;
	}
	if (qo_daemon > 0) {
		if (waitpid(qo_daemon, &st, 0) == qo_daemon &&
		    !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			fprintf(stderr,
				"bench_query_overhead: lodefs exited with "
				"status %d\n",
				WIFEXITED(st) ? WEXITSTATUS(st)
					      : 128 + WTERMSIG(st));
		qo_daemon = -1;
	}
}

static void qo_signal(int sig)
{
	qo_stop = sig;
}

static void qo_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_query_overhead: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	qo_unmount();
	exit(1);
}

static void qo_check_stop(void)
{
	if (qo_stop)
		qo_die("interrupted by signal %d", (int)qo_stop);
}

static uint64_t qo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- data ------------------------------------------------------------------ */

static uint64_t qo_rng = 0x9e3779b97f4a7c15ull;

static uint32_t qo_rand(uint32_t k)
{
	qo_rng ^= qo_rng << 13;
	qo_rng ^= qo_rng >> 7;
	qo_rng ^= qo_rng << 17;
	return (uint32_t)((qo_rng >> 11) % k);
}

static void qo_words_split(void)
{
	char *copy = strdup(qo_words), *save = NULL, *t;

	if (!copy)
		qo_die("out of memory");
	for (t = strtok_r(copy, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		qo_w = realloc(qo_w, (qo_nw + 1) * sizeof(*qo_w));
		if (!qo_w)
			qo_die("out of memory");
		qo_w[qo_nw++] = t;
	}
}

/* One ~2 KB document of sentences and paragraphs, malloc'd. */
static char *qo_doc(size_t *len)
{
	size_t target = 1700 + qo_rand(401), cap = 4096, n = 0;
	char *b = malloc(cap);

	if (!b)
		qo_die("out of memory");
	while (n < target) {
		unsigned s, ns = 2 + qo_rand(4);

		if (n)
			n += (size_t)snprintf(b + n, cap - n, "\n\n");
		for (s = 0; s < ns; s++) {
			unsigned i, nwords = 6 + qo_rand(11);

			for (i = 0; i < nwords; i++) {
				const char *w = qo_w[qo_rand((uint32_t)qo_nw)];

				if (n + 64 > cap && !(b = realloc(b, cap *= 2)))
					qo_die("out of memory");
				if (i == 0)
					n += (size_t)snprintf(
						b + n, cap - n, "%s%c%s",
						s ? " " : "", w[0] - 32, w + 1);
				else
					n += (size_t)snprintf(
						b + n, cap - n, "%s%s",
						qo_rand(12) ? " " : ", ", w);
			}
			b[n++] = '.';
		}
	}
	b[n++] = '\n';
	b[n] = 0;
	*len = n;
	return b;
}

/* Query text i: three content words, distinct for i < (nw - QO_STOP)^2. */
static void qo_text(size_t i, char *buf, size_t len)
{
	size_t m = qo_nw - QO_STOP;
	size_t a = i % m, b = (i / m) % m, c = (i * 7919 + 13) % m;

	snprintf(buf, len, "%s %s %s", qo_w[QO_STOP + a], qo_w[QO_STOP + b],
		 qo_w[QO_STOP + c]);
}

static int qo_mkdirs(const char *path)
{
	char buf[4096], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int qo_rm_rf(const char *path)
{
	pid_t p = fork();
	int st = 0;

	if (p == 0) {
		execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static struct store *qo_open(const char *dir, struct backend **be)
{
	struct store *s = NULL;
	int rc = backend_local_open(dir, be);

	if (rc)
		qo_die("%s: %s", dir, strerror(-rc));
	rc = store_open(*be, NULL, &s);
	if (rc)
		qo_die("store_open %s: %s (%s)", dir, strerror(-rc),
		       store_last_error());
	return s;
}

static void qo_build(const char *store_dir, const char *params, size_t ndocs)
{
	struct backend *be;
	struct store *s;
	struct store_doc docs[100];
	char *bufs[100], ids[100][32];
	uint64_t t0 = qo_now_ns();
	size_t i, k, m, bytes = 0;
	FILE *f;
	int rc;

	if (qo_rm_rf(store_dir) || qo_mkdirs(store_dir))
		qo_die("cannot make %s", store_dir);
	s = qo_open(store_dir, &be);
	for (i = 0; i < ndocs; i += m) {
		qo_check_stop();
		m = ndocs - i < 100 ? ndocs - i : 100;
		for (k = 0; k < m; k++) {
			memset(&docs[k], 0, sizeof(docs[k]));
			snprintf(ids[k], sizeof(ids[k]), "gen/f%05zu.txt",
				 i + k);
			bufs[k] = qo_doc(&docs[k].len);
			docs[k].id = ids[k];
			docs[k].data = bufs[k];
			bytes += docs[k].len;
		}
		rc = store_docs_put(s, docs, m, NULL);
		if (rc)
			qo_die("store_docs_put: %s (%s)", strerror(-rc),
			       store_last_error());
		for (k = 0; k < m; k++)
			free(bufs[k]);
	}
	store_close(s);
	backend_close(be);
	f = fopen(params, "w");
	if (!f || fprintf(f, "docs %zu\n", ndocs) < 0 || fclose(f))
		qo_die("cannot write %s", params);
	printf("store     built %zu documents (%.1f MB) in %.2f s\n", ndocs,
	       (double)bytes / 1e6, (double)(qo_now_ns() - t0) / 1e9);
}

/* --- timing ---------------------------------------------------------------- */

static int qo_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double qo_pct(double *v, size_t n, double p)
{
	size_t i;

	qsort(v, n, sizeof(*v), qo_cmp);
	i = (size_t)((double)n * p);
	return v[i < n ? i : n - 1];
}

static double qo_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), qo_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct qo_opts {
	const char *segs[QO_MAXSEGS];
	size_t nsegs;
	const char *prefix; /* "k=5/mode=hybrid/" or "" */
};

/* One in-process query; *out malloc'd.  Returns the time in us. */
static double qo_inproc(struct store *s, const struct qo_opts *o,
			const char *text, char **out, size_t *len)
{
	struct fs_qreq *r = NULL;
	char err[512];
	uint64_t t0 = qo_now_ns();
	int rc = fs_qreq_from_path(o->segs, o->nsegs, text, &r, err,
				   sizeof(err));

	if (!rc)
		rc = fs_qreq_run(s, r, out, len, err, sizeof(err));
	fs_qreq_free(r);
	if (rc)
		qo_die("query '%s': %s (%s)", text, strerror(-rc), err);
	return (double)(qo_now_ns() - t0) / 1e3;
}

/* One read of a query file; *got is what it held.  Returns us. */
static double qo_read(const char *path, char *buf, size_t *got)
{
	uint64_t t0 = qo_now_ns();
	size_t n = 0;
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		qo_die("open %s: %s", path, strerror(errno));
	while ((k = read(fd, buf + n, QO_BUF - n)) > 0)
		n += (size_t)k;
	if (k < 0)
		qo_die("read %s: %s", path, strerror(errno));
	close(fd);
	*got = n;
	return (double)(qo_now_ns() - t0) / 1e3;
}

static json_t *qo_stats(void)
{
	char path[4200];
	json_error_t e;
	json_t *j;

	snprintf(path, sizeof(path), "%s/.lodefs/stats", qo_mnt);
	j = json_load_file(path, 0, &e);
	if (!j)
		qo_die("%s: %s", path, e.text);
	return j;
}

static double qo_req(json_t *a, json_t *b, const char *op)
{
	json_t *ra = json_object_get(a, "requests"),
	       *rb = json_object_get(b, "requests");

	return (double)(json_integer_value(json_object_get(rb, op)) -
			json_integer_value(json_object_get(ra, op)));
}

static void qo_mount(const char *lodefs, const char *store_dir, const char *log)
{
	struct stat a, b;
	char parent[4200];
	int i, st;

	if (qo_mkdirs(qo_mnt))
		qo_die("cannot make %s", qo_mnt);
	qo_daemon = fork();
	if (qo_daemon < 0)
		qo_die("fork: %s", strerror(errno));
	if (qo_daemon == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(lodefs, lodefs, "-f", store_dir, qo_mnt, (char *)NULL);
		_exit(127);
	}
	snprintf(parent, sizeof(parent), "%s/..", qo_mnt);
	for (i = 0; i < 600; i++) {
		if (waitpid(qo_daemon, &st, WNOHANG) == qo_daemon) {
			qo_daemon = -1;
			qo_die("lodefs exited before mounting; see %s", log);
		}
		if (stat(qo_mnt, &a) == 0 && stat(parent, &b) == 0 &&
		    a.st_dev != b.st_dev) {
			qo_mounted = 1;
			return;
		}
		qo_check_stop();
		usleep(50000);
	}
	kill(qo_daemon, SIGTERM);
	qo_die("lodefs did not mount %s within 30 s; see %s", qo_mnt, log);
}

static void qo_usage(void)
{
	fprintf(stderr,
		"usage: bench_query_overhead LODEFS DIR [--docs N] "
		"[--queries Q] [--runs R]\n"
		"                            [--options SEGS] [--rebuild]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *lodefs = NULL, *dir = NULL, *env, *optarg_s = NULL;
	size_t ndocs = 2000, nq = 2000, runs = 3, i, r, nt, same = 0;
	size_t mism_len = 0, empty = 0, bytes = 0;
	int rebuild = 0, a;
	char store_dir[4096], params[4200], log[4200], text[256];
	char path[8192], *buf, *optcopy = NULL, *prefix = NULL, **res;
	size_t *reslen;
	double *lin, *lcold, *lwarm, *med_in, *med_cold, *med_warm;
	double m_in, m_cold, m_warm;
	struct qo_opts o = { .prefix = "" };
	struct backend *be;
	struct store *s;
	struct store_stats ss;
	json_t *st0, *st1;
	FILE *f;

	if ((env = getenv("LODEFS_BENCH_RUNS")) && atoi(env) > 0)
		runs = (size_t)atoi(env);
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--docs") == 0 && a + 1 < argc)
			ndocs = strtoul(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--queries") == 0 && a + 1 < argc)
			nq = strtoul(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--runs") == 0 && a + 1 < argc)
			runs = strtoul(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--options") == 0 && a + 1 < argc)
			optarg_s = argv[++a];
		else if (strcmp(argv[a], "--rebuild") == 0)
			rebuild = 1;
		else if (argv[a][0] == '-')
			qo_usage();
		else if (!lodefs)
			lodefs = argv[a];
		else if (!dir)
			dir = argv[a];
		else
			qo_usage();
	}
	if (!lodefs || !dir || !ndocs || !nq || !runs)
		qo_usage();
	if (access(lodefs, X_OK))
		qo_die("%s: not executable", lodefs);
	qo_words_split();
	if ((runs * nq + QO_WARMUP) > (qo_nw - QO_STOP) * (qo_nw - QO_STOP))
		qo_die("at most %zu distinct texts",
		       (qo_nw - QO_STOP) * (qo_nw - QO_STOP));
	if (optarg_s && *optarg_s) {
		char *save = NULL, *t;

		optcopy = strdup(optarg_s);
		if (!optcopy || asprintf(&prefix, "%s/", optarg_s) < 0)
			qo_die("out of memory");
		o.prefix = prefix;
		for (t = strtok_r(optcopy, "/", &save); t;
		     t = strtok_r(NULL, "/", &save)) {
			if (o.nsegs == QO_MAXSEGS)
				qo_die("too many option segments");
			o.segs[o.nsegs++] = t;
		}
	}
	if (qo_mkdirs(dir))
		qo_die("cannot make %s: %s", dir, strerror(errno));
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	snprintf(params, sizeof(params), "%s/params", dir);
	snprintf(log, sizeof(log), "%s/lodefs.log", dir);
	snprintf(qo_mnt, sizeof(qo_mnt), "%s/mnt", dir);
	{
		struct sigaction sa = { .sa_handler = qo_signal };

		sigemptyset(&sa.sa_mask); /* no SA_RESTART: slow calls stop */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}

	/* 1. the store */
	f = rebuild ? NULL : fopen(params, "r");
	if (f) {
		size_t had = 0;

		if (fscanf(f, "docs %zu", &had) != 1)
			had = 0;
		fclose(f);
		if (had != ndocs)
			qo_build(store_dir, params, ndocs);
		else
			printf("store     reusing %s\n", store_dir);
	} else {
		qo_build(store_dir, params, ndocs);
	}

	nt = runs * nq;
	buf = malloc(QO_BUF);
	lin = calloc(nt, sizeof(*lin));
	lcold = calloc(nt, sizeof(*lcold));
	lwarm = calloc(nt, sizeof(*lwarm));
	med_in = calloc(runs, sizeof(*med_in));
	med_cold = calloc(runs, sizeof(*med_cold));
	med_warm = calloc(runs, sizeof(*med_warm));
	res = calloc(nt, sizeof(*res));
	reslen = calloc(nt, sizeof(*reslen));
	if (!buf || !lin || !lcold || !lwarm || !med_in || !med_cold ||
	    !med_warm || !res || !reslen)
		qo_die("out of memory");

	/* 2. in-process */
	s = qo_open(store_dir, &be);
	store_get_stats(s, &ss);
	printf("store     %" PRIu64 " documents, %" PRIu64 " nodes in %s\n",
	       ss.documents, ss.nodes, store_dir);
	printf("queries   %zu rounds of %zu distinct texts of 3 words, "
	       "options \"%s\" (the same texts on both sides)\n",
	       runs, nq, optarg_s ? optarg_s : "");
	for (i = 0; i < QO_WARMUP; i++) {
		char *out;
		size_t len;

		qo_text(nt + i, text, sizeof(text));
		qo_inproc(s, &o, text, &out, &len);
		free(out);
	}
	for (i = 0; i < nt; i++) {
		qo_check_stop();
		qo_text(i, text, sizeof(text));
		lin[i] = qo_inproc(s, &o, text, &res[i], &reslen[i]);
		if (reslen[i] < 100)
			empty++;
		bytes += reslen[i];
	}
	store_close(s);
	backend_close(be);

	/* 3. through the mount */
	qo_mount(lodefs, store_dir, log);
	for (i = 0; i < QO_WARMUP; i++) {
		size_t got;

		qo_text(nt + i, text, sizeof(text));
		snprintf(path, sizeof(path), "%s/query/%s%s", qo_mnt, o.prefix,
			 text);
		qo_read(path, buf, &got);
	}
	st0 = qo_stats();
	for (i = 0; i < nt; i++) {
		size_t got;

		qo_check_stop();
		qo_text(i, text, sizeof(text));
		snprintf(path, sizeof(path), "%s/query/%s%s", qo_mnt, o.prefix,
			 text);
		lcold[i] = qo_read(path, buf, &got);
		if (got == reslen[i] && memcmp(buf, res[i], got) == 0)
			same++;
		else if (got != reslen[i])
			mism_len++;
		lwarm[i] = qo_read(path, buf, &got);
	}
	st1 = qo_stats();
	qo_unmount();

	/* 4. figures */
	printf("\n%-6s %14s %14s %14s %14s\n", "round", "in-process",
	       "mount cold", "mount warm", "cold - in-proc");
	for (r = 0; r < runs; r++) {
		med_in[r] = qo_median(lin + r * nq, nq);
		med_cold[r] = qo_median(lcold + r * nq, nq);
		med_warm[r] = qo_median(lwarm + r * nq, nq);
		printf("%-6zu %11.1f us %11.1f us %11.1f us %11.1f us\n", r + 1,
		       med_in[r], med_cold[r], med_warm[r],
		       med_cold[r] - med_in[r]);
	}
	m_in = qo_median(med_in, runs);
	m_cold = qo_median(med_cold, runs);
	m_warm = qo_median(med_warm, runs);
	printf("\nmedian of the %zu round medians (%zu queries each):\n", runs,
	       nq);
	printf("  in-process (fs_qreq_from_path + fs_qreq_run) %9.1f us  "
	       "(p90 %.1f, p99 %.1f over all)\n",
	       m_in, qo_pct(lin, nt, 0.9), qo_pct(lin, nt, 0.99));
	printf("  mount, cold (new path: open+read+close)      %9.1f us  "
	       "(p90 %.1f, p99 %.1f)\n",
	       m_cold, qo_pct(lcold, nt, 0.9), qo_pct(lcold, nt, 0.99));
	printf("  mount, warm (same path again, cached result) %9.1f us  "
	       "(p90 %.1f, p99 %.1f)\n",
	       m_warm, qo_pct(lwarm, nt, 0.9), qo_pct(lwarm, nt, 0.99));
	printf("  overhead, cold - in-process                  %9.1f us  "
	       "ratio %.2fx  (target <= %.0f us: %s)\n",
	       m_cold - m_in, m_cold / m_in, QO_TARGET,
	       m_cold - m_in <= QO_TARGET ? "PASS" : "MISS");
	printf("\nresults: %zu bytes per query on average, %zu empty; "
	       "mount == in-process for %zu of %zu (%zu differ in length)\n",
	       bytes / nt, empty, same, nt, mism_len);
	printf("FUSE requests per query file, cold + warm read (from "
	       ".lodefs/stats):\n ");
	{
		static const char *ops[] = { "lookup", "getattr", "open",
					     "read",   "flush",	  "release",
					     "forget", "other" };
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			printf(" %s %.2f", ops[i],
			       qo_req(st0, st1, ops[i]) / (double)nt);
		printf("\n  queries served %.2f, cache hits %.2f\n",
		       (double)(json_integer_value(json_object_get(
					json_object_get(st1, "queries"),
					"served")) -
				json_integer_value(json_object_get(
					json_object_get(st0, "queries"),
					"served"))) /
			       (double)nt,
		       (double)(json_integer_value(json_object_get(
					json_object_get(st1, "queries"),
					"cache_hits")) -
				json_integer_value(json_object_get(
					json_object_get(st0, "queries"),
					"cache_hits"))) /
			       (double)nt);
	}
	json_decref(st0);
	json_decref(st1);
	for (i = 0; i < nt; i++)
		free(res[i]);
	free(res);
	free(reslen);
	free(lin);
	free(lcold);
	free(lwarm);
	free(med_in);
	free(med_cold);
	free(med_warm);
	free(buf);
	free(optcopy);
	free(prefix);
	free(qo_w[0]);
	free(qo_w);
	return 0;
}
