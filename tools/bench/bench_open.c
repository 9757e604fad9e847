/* bench_open.c - cold open of a large store against Python's json.load. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
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
#include "core/text.h"
#include "tools/bench/bench_open.h"

/*
 * usage: bench_open [--nodes N] [--dim D] [--dir DIR] [--keep]
 *                   [--repeat R] [--digits 9|17] [--split] [--no-python]
 *
 * 1. Builds DIR/store: N LlamaIndex TextNodes (docstore/data, with
 *    docstore/metadata and ref_doc_info grouping 3-7 nodes per document)
 *    and N normalised float32 vectors of D dimensions in
 *    vector_store/default, through the engine in batches of ~10,000 nodes
 *    on a local backend without fsync, then checkpoints it.
 * 2. Writes what LlamaIndex persists for the same data:
 *    DIR/persist/docstore.json and DIR/persist/default__vector_store.json,
 *    in json.dumps's default format.  Floats are written "%.9g" (enough to
 *    round-trip the float32; Python's repr of the float32 widened to a
 *    double has ~17 digits, so the real file is larger and slower to load:
 *    --digits 17 writes "%.17g" for that length).
 * 3. Drops the page cache before each timed step, then times, R times:
 *    a child process (fork+exec) that opens the store and answers a top-10
 *    vector query and a keyword query, and
 *    /usr/bin/python3 json.load of the two persist files.
 *    --split adds a child that shows where store_open's time goes: it
 *    opens the engine alone, then does the store observer's work for each
 *    node outside core/ and times its halves (JSON parse, BM25 put).
 *
 * The lodefs figure is fork to the vector answer (what a user waits for);
 * the Python figure is fork to exit.  Peak RSS: the child's VmHWM for
 * lodefs, wait4's ru_maxrss for Python (this parent stays small: the data
 * is generated in a child that has exited).
 *
 * A DIR that already holds a store built by this generator with the same
 * N, D and digits is reused (generation takes minutes at N = 1,000,000).
 * Without --keep, DIR/store, DIR/persist and DIR/params are removed at
 * the end.
 * Internal: bench_open --child STORE DIM store|split
 */

#define BO_KEYWORD_QUERY "ancient river valley harvest"
#define BO_PYTHON	 "/usr/bin/python3"
#define BO_PY_LOAD                                         \
	"import json, sys; json.load(open(sys.argv[1])); " \
	"json.load(open(sys.argv[2]))"

void bo_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_open: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

uint64_t bo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- the timed child: open, one vector and one keyword query ------------ */

/* VmHWM or VmRSS from /proc/self/status, in KiB (0 if unknown). */
static long bo_status_kib(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * --split: where store_open's time goes, measured outside core/.  Opens the
 * engine alone (checkpoint load and replay), sums each collection, then
 * does what the store's observer does at open for every docstore/data
 * value, timing its two halves apart: parsing the node JSON (jansson) to
 * find "text", and adding the text to a BM25 index (core/text.h).
 */
struct bo_split {
	struct text_index *idx;
	uint64_t parse_ns, index_ns, bytes;
	size_t n;
};

static int bo_split_node(void *arg, const char *key, enum engine_type type,
			 const void *data, size_t len)
{
	struct bo_split *sp = arg;
	uint64_t t0 = bo_now_ns(), t1;
	json_t *w = json_loadb(data, len, 0, NULL);
	json_t *text = json_object_get(json_object_get(w, "__data__"), "text");

	t1 = bo_now_ns();
	sp->parse_ns += t1 - t0;
	if (json_is_string(text))
		text_index_put(sp->idx, key, json_string_value(text),
			       json_string_length(text));
	sp->index_ns += bo_now_ns() - t1;
	json_decref(w);
	return 0;
}

static int bo_split_sum(void *arg, const char *key, enum engine_type type,
			const void *data, size_t len)
{
	struct bo_split *sp = arg;

	sp->n++;
	sp->bytes += len + strlen(key);
	return 0;
}

static int bo_split_coll(void *arg, const char *coll)
{
	struct engine *e = arg;
	struct bo_split sp = { 0 };

	engine_foreach(e, coll, bo_split_sum, &sp);
	printf("coll %s %zu %" PRIu64 "\n", coll, sp.n, sp.bytes);
	return 0;
}

static int bo_child_split(struct backend *be, const struct engine_opts *eo)
{
	struct bo_split sp = { 0 };
	struct engine_stats es;
	struct engine *e;
	uint64_t t0, t1;
	long hwm;
	int rc;

	rc = engine_open(be, eo, &e);
	t0 = bo_now_ns();
	if (rc)
		bo_die("engine_open: %s (%s)", strerror(-rc),
		       engine_last_error());
	hwm = bo_status_kib("VmHWM");
	engine_get_stats(e, &es);
	engine_collections(e, bo_split_coll, e);
	rc = text_index_new(&sp.idx);
	if (rc)
		bo_die("text_index_new: %s", strerror(-rc));
	t1 = bo_now_ns();
	engine_foreach(e, "docstore/data", bo_split_node, &sp);
	printf("open_ns %" PRIu64 "\nengine_hwm_kib %ld\nmem_bytes %" PRIu64
	       "\nwalk_ns %" PRIu64 "\nparse_ns %" PRIu64 "\nindex_ns %" PRIu64
	       "\nhwm_kib %ld\n",
	       t0, hwm, es.mem_bytes, bo_now_ns() - t1, sp.parse_ns,
	       sp.index_ns, bo_status_kib("VmHWM"));
	fflush(stdout);
	text_index_free(sp.idx);
	engine_close(e);
	return 0;
}

/* bench_open --child STORE DIM store|split: prints "key value" lines. */
static int bo_child(int argc, char **argv)
{
	struct store_opts so;
	struct store_query q = { 0 };
	struct store_hit *hits = NULL;
	struct store_stats st;
	struct backend *be;
	struct store *s;
	struct bo_rng rng = { BO_QUERY_SEED };
	uint64_t t_open, t_vec, t_kw;
	size_t nhits = 0, nkw = 0;
	double top = 0;
	uint32_t dim;
	float *qv;
	int rc;

	if (argc != 5)
		bo_die("--child STORE DIM store|split");
	dim = (uint32_t)strtoul(argv[3], NULL, 10);
	rc = backend_local_open(argv[2], &be);
	if (rc)
		bo_die("backend_local_open %s: %s", argv[2], strerror(-rc));
	store_opts_init(&so);
	so.engine.read_only = 1;
	if (strcmp(argv[4], "split") == 0) {
		rc = bo_child_split(be, &so.engine);
		backend_close(be);
		return rc;
	}
	rc = store_open(be, &so, &s);
	t_open = bo_now_ns();
	if (rc)
		bo_die("store_open: %s (%s)", strerror(-rc),
		       store_last_error());
	printf("open_ns %" PRIu64 "\nopen_rss_kib %ld\n", t_open,
	       bo_status_kib("VmRSS"));

	qv = malloc(dim * sizeof(*qv));
	if (!qv)
		bo_die("out of memory");
	bo_rand_vec(&rng, qv, dim);
	q.embedding = qv;
	q.dim = dim;
	q.k = 10;
	q.mode = STORE_MODE_VECTOR;
	rc = store_query(s, &q, &hits, &nhits);
	t_vec = bo_now_ns();
	if (rc)
		bo_die("vector query: %s (%s)", strerror(-rc),
		       store_last_error());
	if (nhits)
		top = hits[0].score;
	store_hits_free(hits, nhits);

	memset(&q, 0, sizeof(q));
	q.text = BO_KEYWORD_QUERY;
	q.k = 10;
	q.mode = STORE_MODE_KEYWORD;
	rc = store_query(s, &q, &hits, &nkw);
	t_kw = bo_now_ns();
	if (rc)
		bo_die("keyword query: %s (%s)", strerror(-rc),
		       store_last_error());
	store_hits_free(hits, nkw);
	store_get_stats(s, &st);
	printf("vec_ns %" PRIu64 "\nkw_ns %" PRIu64 "\nhwm_kib %ld\n"
	       "vec_hits %zu\nvec_top %.6f\nkw_hits %zu\nnodes %" PRIu64
	       "\nmem_bytes %" PRIu64 "\n",
	       t_vec, t_kw, bo_status_kib("VmHWM"), nhits, top, nkw, st.nodes,
	       st.engine.mem_bytes);
	fflush(stdout);
	free(qv);
	store_close(s);
	backend_close(be);
	return 0;
}

/* --- the orchestrator --------------------------------------------------- */

static int bo_drop_caches(void)
{
	int fd, ok;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return -errno;
	ok = write(fd, "3", 1) == 1;
	close(fd);
	return ok ? 0 : -EIO;
}

struct bo_run {
	uint64_t t0, end; /* fork and exit, monotonic ns */
	int status;
	long maxrss_kib; /* wait4's ru_maxrss */
	char out[2048];	 /* the child's stdout */
};

/* fork+exec argv with stdout on a pipe; waits and fills `r`. */
static void bo_spawn(char *const *argv, struct bo_run *r)
{
	struct rusage ru;
	size_t got = 0;
	ssize_t n;
	int fds[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe(fds))
		bo_die("pipe: %s", strerror(errno));
	fflush(stdout);
	r->t0 = bo_now_ns();
	pid = fork();
	if (pid < 0)
		bo_die("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], r->out + got, sizeof(r->out) - 1 - got)) > 0)
		got += (size_t)n;
	r->out[got] = '\0';
	close(fds[0]);
	if (wait4(pid, &r->status, 0, &ru) < 0)
		bo_die("wait4: %s", strerror(errno));
	r->end = bo_now_ns();
	r->maxrss_kib = ru.ru_maxrss;
}

/* The value of "key N" in a child's output, or 0. */
static double bo_field(const struct bo_run *r, const char *key)
{
	size_t n = strlen(key);
	const char *p = r->out;

	while (p && *p) {
		if (strncmp(p, key, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

static const char *bo_status_text(int status, char *buf, size_t size)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return "ok";
	if (WIFEXITED(status))
		snprintf(buf, size, "FAILED: exit status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		snprintf(buf, size,
			 "KILLED by SIGKILL (the OOM killer, most likely: see "
			 "dmesg)");
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "KILLED by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "status 0x%x", status);
	return buf;
}

static int bo_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double bo_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bo_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bo_rm_fn(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path) ? -errno : 0;
}

static uint64_t bo_du_total;

static int bo_du_fn(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	if (flag == FTW_F)
		bo_du_total += (uint64_t)st->st_size;
	return 0;
}

/* Bytes of the regular files under `path`. */
static uint64_t bo_du(const char *path)
{
	bo_du_total = 0;
	nftw(path, bo_du_fn, 16, FTW_PHYS);
	return bo_du_total;
}

/* Reads DIR/params; returns 1 if it matches `o` (and sets *text_bytes). */
static int bo_params_match(const struct bo_opts *o, uint64_t *text_bytes)
{
	char path[4096], key[32];
	unsigned long long v;
	size_t nodes = 0;
	unsigned dim = 0;
	int digits = 0, gen = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/params", o->dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fscanf(f, "%31s %llu", key, &v) == 2) {
		if (strcmp(key, "generator") == 0)
			gen = (int)v;
		else if (strcmp(key, "nodes") == 0)
			nodes = (size_t)v;
		else if (strcmp(key, "dim") == 0)
			dim = (unsigned)v;
		else if (strcmp(key, "digits") == 0)
			digits = (int)v;
		else if (strcmp(key, "text_bytes") == 0)
			*text_bytes = v;
	}
	fclose(f);
	return gen == BO_GENERATOR && nodes == o->nodes && dim == o->dim &&
	       digits == o->digits;
}

static void bo_usage(FILE *f)
{
	fputs("usage: bench_open [--nodes N] [--dim D] [--dir DIR] [--keep]\n"
	      "                  [--repeat R] [--digits 9|17] [--split] "
	      "[--no-python]\n"
	      "  --nodes N     TextNodes and vectors (default 1000000)\n"
	      "  --dim D       vector dimension (default 384)\n"
	      "  --dir DIR     work directory (default "
	      "/tmp/lodefs-bench-open)\n"
	      "  --keep        keep DIR/store and DIR/persist for the next "
	      "run\n"
	      "  --repeat R    timed runs of each side; medians (default 1)\n"
	      "  --digits G    float digits in the persist JSON (default 9)\n"
	      "  --split       also show where store_open's time goes\n"
	      "  --no-python   skip the Python anchor\n",
	      f);
}

static void bo_parse(int argc, char **argv, struct bo_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--keep") == 0) {
			o->keep = 1;
		} else if (strcmp(a, "--split") == 0) {
			o->split = 1;
		} else if (strcmp(a, "--no-python") == 0) {
			o->python = 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			bo_usage(stdout);
			exit(0);
		} else if (v && strcmp(a, "--nodes") == 0) {
			o->nodes = strtoull(v, NULL, 10);
			i++;
		} else if (v && strcmp(a, "--dim") == 0) {
			o->dim = (uint32_t)strtoul(v, NULL, 10);
			i++;
		} else if (v && strcmp(a, "--dir") == 0) {
			o->dir = v;
			i++;
		} else if (v && strcmp(a, "--repeat") == 0) {
			o->repeat = atoi(v);
			i++;
		} else if (v && strcmp(a, "--digits") == 0) {
			o->digits = atoi(v);
			i++;
		} else {
			bo_usage(stderr);
			exit(2);
		}
	}
	if (!o->nodes || !o->dim || o->repeat < 1 || o->digits < 1 ||
	    o->digits > 17) {
		bo_usage(stderr);
		exit(2);
	}
}

/* Generation runs in a child so that its memory is gone before timing. */
static void bo_prepare(const struct bo_opts *o, uint64_t *text_bytes)
{
	char path[4096];
	struct stat st;
	int status;
	pid_t pid;

	if (bo_params_match(o, text_bytes)) {
		printf("reusing      %s (same nodes, dim, digits)\n", o->dir);
		return;
	}
	snprintf(path, sizeof(path), "%s/store", o->dir);
	if (stat(path, &st) == 0)
		bo_die("%s exists but was not built with these parameters; "
		       "remove it",
		       path);
	bo_mkdir(o->dir);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bo_die("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(bo_generate(o));
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		bo_die("generating the data failed");
	if (!bo_params_match(o, text_bytes))
		bo_die("generation left no params file");
}

/* What each timed run measures; medians are taken per metric. */
enum bo_metric {
	BM_OPEN,      /* fork to store_open returned, s */
	BM_FIRST,     /* fork to the vector answer, s */
	BM_KW,	      /* fork to the keyword answer, s */
	BM_EXIT,      /* fork to exit, s */
	BM_RSS,	      /* VmHWM, bytes */
	BM_ENG,	      /* split: fork to engine_open returned, s */
	BM_ENG_RSS,   /* split: VmHWM after engine_open, bytes */
	BM_PARSE,     /* split: node JSON parsing, s */
	BM_INDEX,     /* split: BM25 index of node text, s */
	BM_SPLIT_RSS, /* split: VmHWM with the BM25 index, bytes */
	BM_PY,	      /* python: fork to exit, s */
	BM_PY_RSS,    /* python: ru_maxrss, bytes */
	BM_N,
};

struct bo_bench {
	struct bo_opts o;
	char store[4096], persist[4096], vpath[4200], dpath[4200], dim[16];
	double *m[BM_N];
	int dropped;   /* 0 if dropping the page cache failed */
	int py_failed; /* the Python anchor failed: no more runs of it */
};

static void bo_cold(struct bo_bench *b)
{
	if (bo_drop_caches())
		b->dropped = 0;
}

static void bo_time_lodefs(struct bo_bench *b, int i)
{
	static char a_self[] = "/proc/self/exe", a_child[] = "--child",
		    a_store[] = "store";
	char *argv[] = { a_self, a_child, b->store, b->dim, a_store, NULL };
	char why[128];
	struct bo_run r;

	bo_cold(b);
	bo_spawn(argv, &r);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status))
		bo_die("lodefs child: %s",
		       bo_status_text(r.status, why, sizeof(why)));
	b->m[BM_OPEN][i] = (bo_field(&r, "open_ns") - r.t0) / 1e9;
	b->m[BM_FIRST][i] = (bo_field(&r, "vec_ns") - r.t0) / 1e9;
	b->m[BM_KW][i] = (bo_field(&r, "kw_ns") - r.t0) / 1e9;
	b->m[BM_EXIT][i] = (r.end - r.t0) / 1e9;
	b->m[BM_RSS][i] = bo_field(&r, "hwm_kib") * 1024;
	printf("lodefs #%d    open %.3f s, first answer %.3f s (vector "
	       "top-10, top score %.4f), keyword answer %.3f s, exit %.3f "
	       "s; peak RSS %.1f MB (wait4 %.1f MB); engine mem %.1f MB\n",
	       i + 1, b->m[BM_OPEN][i], b->m[BM_FIRST][i],
	       bo_field(&r, "vec_top"), b->m[BM_KW][i], b->m[BM_EXIT][i],
	       b->m[BM_RSS][i] / 1e6, r.maxrss_kib * 1024 / 1e6,
	       bo_field(&r, "mem_bytes") / 1e6);
	if (bo_field(&r, "vec_hits") != 10 ||
	    bo_field(&r, "nodes") != (double)b->o.nodes)
		printf("WARNING      %g vector hits, %g nodes (expected 10, "
		       "%zu)\n",
		       bo_field(&r, "vec_hits"), bo_field(&r, "nodes"),
		       b->o.nodes);
}

static void bo_time_split(struct bo_bench *b, int i)
{
	static char a_self[] = "/proc/self/exe", a_child[] = "--child",
		    a_split[] = "split";
	char *argv[] = { a_self, a_child, b->store, b->dim, a_split, NULL };
	char why[128], name[256];
	unsigned long long n, bytes;
	const char *p;
	struct bo_run r;

	bo_cold(b);
	bo_spawn(argv, &r);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status))
		bo_die("split child: %s",
		       bo_status_text(r.status, why, sizeof(why)));
	b->m[BM_ENG][i] = (bo_field(&r, "open_ns") - r.t0) / 1e9;
	b->m[BM_ENG_RSS][i] = bo_field(&r, "engine_hwm_kib") * 1024;
	b->m[BM_PARSE][i] = bo_field(&r, "parse_ns") / 1e9;
	b->m[BM_INDEX][i] = bo_field(&r, "index_ns") / 1e9;
	b->m[BM_SPLIT_RSS][i] = bo_field(&r, "hwm_kib") * 1024;
	printf("split #%d     engine_open %.3f s (peak RSS %.1f MB, engine "
	       "mem %.1f MB); then per docstore/data value: JSON parse "
	       "%.3f s, BM25 put %.3f s (peak RSS %.1f MB)\n",
	       i + 1, b->m[BM_ENG][i], b->m[BM_ENG_RSS][i] / 1e6,
	       bo_field(&r, "mem_bytes") / 1e6, b->m[BM_PARSE][i],
	       b->m[BM_INDEX][i], b->m[BM_SPLIT_RSS][i] / 1e6);
	if (i)
		return;
	for (p = r.out; (p = strstr(p, "coll ")); p++)
		if ((p == r.out || p[-1] == '\n') &&
		    sscanf(p, "coll %255s %llu %llu", name, &n, &bytes) == 3)
			printf("  %-22s %10llu keys %10.1f MB (keys + "
			       "values)\n",
			       name, n, bytes / 1e6);
}

static void bo_time_python(struct bo_bench *b, int i)
{
	static char a_py[] = BO_PYTHON, a_c[] = "-c", a_load[] = BO_PY_LOAD;
	char *argv[] = { a_py, a_c, a_load, b->vpath, b->dpath, NULL };
	char why[128];
	struct bo_run r;

	bo_cold(b);
	bo_spawn(argv, &r);
	b->m[BM_PY][i] = (r.end - r.t0) / 1e9;
	b->m[BM_PY_RSS][i] = r.maxrss_kib * 1024.0;
	printf("python #%d    json.load of both files %.3f s, peak RSS %.1f "
	       "MB: %s\n",
	       i + 1, b->m[BM_PY][i], b->m[BM_PY_RSS][i] / 1e6,
	       bo_status_text(r.status, why, sizeof(why)));
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status))
		b->py_failed = 1;
}

static void bo_report(struct bo_bench *b, double raw)
{
	const struct bo_opts *o = &b->o;
	double med[BM_N];
	int k;

	for (k = 0; k < BM_N; k++)
		med[k] = bo_median(b->m[k], o->repeat);
	if (!b->dropped)
		printf("WARNING      could not drop the page cache (not "
		       "root?): the figures are warm\n");
	printf("\nmedians of %d run%s, N=%zu D=%u, page cache dropped "
	       "before each step\n",
	       o->repeat, o->repeat > 1 ? "s" : "", o->nodes, o->dim);
	printf("lodefs       open %.3f s, first answer %.3f s, keyword "
	       "answer %.3f s, exit %.3f s, peak RSS %.1f MB\n",
	       med[BM_OPEN], med[BM_FIRST], med[BM_KW], med[BM_EXIT],
	       med[BM_RSS] / 1e6);
	if (o->split)
		printf("split        engine_open %.3f s + node JSON parse %.3f "
		       "s + BM25 put %.3f s (store_open %.3f s); peak RSS "
		       "engine %.1f MB, + BM25 %.1f MB\n",
		       med[BM_ENG], med[BM_PARSE], med[BM_INDEX], med[BM_OPEN],
		       med[BM_ENG_RSS] / 1e6, med[BM_SPLIT_RSS] / 1e6);
	if (o->python && !b->py_failed) {
		printf("python       %.3f s, peak RSS %.1f MB\n", med[BM_PY],
		       med[BM_PY_RSS] / 1e6);
		printf("ratio        python / lodefs first answer %.1fx "
		       "(target >= 20x)\n",
		       med[BM_PY] / med[BM_FIRST]);
	} else if (o->python) {
		printf("python       FAILED (see above): no ratio\n");
	}
	printf("memory       lodefs peak RSS / (vectors %.1f MB + node text "
	       "%.1f MB) = %.2f (target <= 1.3)\n",
	       o->nodes * (double)o->dim * 4 / 1e6,
	       (raw - o->nodes * (double)o->dim * 4) / 1e6, med[BM_RSS] / raw);
}

static void bo_cleanup(const struct bo_bench *b)
{
	char params[4200];

	nftw(b->store, bo_rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	nftw(b->persist, bo_rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(params, sizeof(params), "%s/params", b->o.dir);
	unlink(params);
	rmdir(b->o.dir);
}

int main(int argc, char **argv)
{
	struct bo_bench b = {
		.o = { .nodes = 1000000,
		       .dim = 384,
		       .dir = "/tmp/lodefs-bench-open",
		       .repeat = 1,
		       .digits = 9,
		       .python = 1 },
		.dropped = 1,
	};
	uint64_t text_bytes = 0;
	double raw;
	int i, k;

	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return bo_child(argc, argv);
	bo_parse(argc, argv, &b.o);
	bo_prepare(&b.o, &text_bytes);

	snprintf(b.store, sizeof(b.store), "%s/store", b.o.dir);
	snprintf(b.persist, sizeof(b.persist), "%s/persist", b.o.dir);
	snprintf(b.vpath, sizeof(b.vpath), "%s/default__vector_store.json",
		 b.persist);
	snprintf(b.dpath, sizeof(b.dpath), "%s/docstore.json", b.persist);
	snprintf(b.dim, sizeof(b.dim), "%u", b.o.dim);
	raw = (double)b.o.nodes * b.o.dim * 4 + (double)text_bytes;
	printf("data         %zu nodes x %u dims: vectors %.1f MB + node text "
	       "%.1f MB = %.1f MB raw\n",
	       b.o.nodes, b.o.dim, b.o.nodes * (double)b.o.dim * 4 / 1e6,
	       text_bytes / 1e6, raw / 1e6);
	printf("on disk      store %.1f MB; persist %.1f MB (floats %%.%dg)\n",
	       bo_du(b.store) / 1e6, bo_du(b.persist) / 1e6, b.o.digits);

	for (k = 0; k < BM_N; k++) {
		b.m[k] = calloc((size_t)b.o.repeat, sizeof(double));
		if (!b.m[k])
			bo_die("out of memory");
	}
	for (i = 0; i < b.o.repeat; i++) {
		bo_time_lodefs(&b, i);
		if (b.o.split)
			bo_time_split(&b, i);
		if (b.o.python && !b.py_failed)
			bo_time_python(&b, i);
	}
	bo_report(&b, raw);
	if (!b.o.keep)
		bo_cleanup(&b);
	for (k = 0; k < BM_N; k++)
		free(b.m[k]);
	return 0;
}
