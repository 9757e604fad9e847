/* engine_open.c - benchmark: open time and memory of a large engine store. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/engine.h"

/*
 * usage: engine_open [--nodes N] [--dim D] [--dir DIR] [--keep]
 *
 * Builds DIR (default /tmp/lodefs-bench-engine) as a local store without
 * fsync: N nodes of ~1 KB JSON in docstore/data and N float32 vectors of D
 * dimensions in vector_store/default, in batches of 10,000, then takes a
 * checkpoint.  Then, in a fresh child process and after asking the kernel
 * to drop the store's pages from its cache (posix_fadvise; without root
 * this is best effort), times engine_open and reports the child's peak
 * RSS next to the raw size of the data; then does what a first query
 * does, an exact scan of every vector (engine_with_vecs) and a few
 * engine_get of nodes, and reports the peak again.  "raw" counts every
 * byte of keys, JSON and vectors; "vectors + text" counts the vectors and
 * the node text only (the budget of a query process is 1.3x that).
 * Prints figures; never fails on them.
 */

#define BENCH_BATCH 10000

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t bench_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A LlamaIndex-shaped TextNode of about 1 KB; *tl is its text's length. */
static size_t bench_node(char *out, size_t cap, size_t i, uint64_t *rng,
			 size_t *tl)
{
	static const char *const words[] = {
		"storage", "context",  "vector",    "index",	  "query",
		"node",	   "document", "retrieval", "engine",	  "segment",
		"the",	   "of",       "and",	    "a",	  "checkpoint",
		"durable", "object",   "backend",   "filesystem", "search",
	};
	char text[900];
	size_t n = 0;

	while (n < 780) {
		const char *w = words[bench_rng(rng) % 20];

		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s",
				      n ? " " : "", w);
	}
	*tl = n;
	return (size_t)snprintf(
		out, cap,
		"{\"id_\": \"node-%08zu\", \"embedding\": null, "
		"\"metadata\": {\"file_name\": \"doc-%06zu.txt\", "
		"\"page_label\": \"%zu\"}, \"excluded_embed_metadata_keys\": "
		"[], \"excluded_llm_metadata_keys\": [], \"relationships\": "
		"{\"1\": {\"node_id\": \"doc-%06zu\", \"node_type\": \"4\"}}, "
		"\"text\": \"%s\", \"start_char_idx\": 0, \"end_char_idx\": "
		"%zu, \"class_name\": \"TextNode\"}",
		i, i / 5, i % 300, i / 5, text, n);
}

static int bench_build(const char *dir, size_t nodes, uint32_t dim,
		       uint64_t *raw, uint64_t *vt)
{
	struct backend *be;
	struct engine *e;
	struct engine_opts o = { .writer = "bench" };
	struct engine_stats st;
	float *v = malloc(dim * sizeof(float));
	char json[2048], key[32];
	uint64_t rng = 88172645463325252ull;
	double t0 = bench_now(), t1;
	size_t i, d;
	int rc;

	rc = backend_local_open_flags(dir, BACKEND_LOCAL_NO_FSYNC, &be);
	if (rc)
		return rc;
	rc = engine_open(be, &o, &e);
	if (rc)
		goto out_close;
	for (i = 0; i < nodes && !rc; i += BENCH_BATCH) {
		struct engine_batch *b = engine_batch_new();
		size_t j;

		for (j = i; j < i + BENCH_BATCH && j < nodes; j++) {
			size_t tl, n = bench_node(json, sizeof(json), j, &rng,
						  &tl);

			snprintf(key, sizeof(key), "node-%08zu", j);
			for (d = 0; d < dim; d++)
				v[d] = (float)(bench_rng(&rng) % 2001) /
					       1000.0f -
				       1.0f;
			engine_batch_put_json(b, "docstore/data", key, json, n);
			engine_batch_put_vec(b, "vector_store/default", key, v,
					     dim);
			*raw += n + strlen(key) * 2 + dim * sizeof(float);
			*vt += tl + dim * sizeof(float);
		}
		rc = engine_commit(e, b);
		engine_batch_free(b);
	}
	if (rc) {
		fprintf(stderr, "commit: %s\n", engine_last_error());
		goto out_engine;
	}
	t1 = bench_now();
	printf("build:      %.2f s (%zu commits)\n", t1 - t0,
	       (nodes + BENCH_BATCH - 1) / BENCH_BATCH);
	rc = engine_checkpoint(e);
	if (rc) {
		fprintf(stderr, "checkpoint: %s\n", engine_last_error());
		goto out_engine;
	}
	engine_get_stats(e, &st);
	printf("checkpoint: %.2f s, %.1f MB\n", bench_now() - t1,
	       (double)st.checkpoint_bytes / 1e6);
out_engine:
	engine_close(e);
out_close:
	backend_close(be);
	free(v);
	return rc;
}

static int bench_drop_cache_fn(const char *path, const struct stat *sb,
			       int flag, struct FTW *ftw)
{
	int fd;

	if (flag != FTW_F)
		return 0;
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	return 0;
}

/*
 * Peak RSS of this process in bytes: VmHWM, which exec resets.  (wait4's
 * and getrusage's ru_maxrss are not: exec carries over the peak of the
 * forked copy of the parent, which built the store.)
 */
static double bench_peak_rss(void)
{
	char line[256];
	double kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			kib = strtod(line + 6, NULL);
			break;
		}
	}
	fclose(f);
	return kib * 1024;
}

struct bench_scan {
	const float *q;
	double best;
	size_t rows;
};

/* An exact top-1 scan: a dot product with every live row. */
static int bench_scan_fn(void *arg, const struct engine_vecs *v)
{
	struct bench_scan *s = arg;
	size_t b, i, d;

	for (b = 0; b < v->nblocks; b++) {
		for (i = 0; i < v->blocks[b].n; i++) {
			const float *row = v->blocks[b].data + i * v->dim;
			double dot = 0;

			if (!v->blocks[b].keys[i])
				continue;
			for (d = 0; d < v->dim; d++)
				dot += (double)row[d] * s->q[d];
			if (dot > s->best)
				s->best = dot;
			s->rows++;
		}
	}
	return 0;
}

/* What a first query does: scan every vector, read a few nodes. */
static void bench_query(struct engine *e)
{
	struct bench_scan s = { .best = -1e300 };
	uint32_t dim = engine_vec_dim(e, "vector_store/default");
	size_t n = engine_count(e, "docstore/data"), i, len;
	float *q = calloc(dim ? dim : 1, sizeof(float));
	char key[32];
	double t0 = bench_now();
	void *data;
	int rc;

	if (!q)
		return;
	for (i = 0; i < dim; i++)
		q[i] = i % 2 ? 0.5f : -0.25f;
	s.q = q;
	rc = engine_with_vecs(e, "vector_store/default", bench_scan_fn, &s);
	printf("scan:       %.2f s, %zu rows%s\n", bench_now() - t0, s.rows,
	       rc ? " (failed)" : "");
	for (i = 0; i < 10 && n; i++) {
		snprintf(key, sizeof(key), "node-%08zu", (i * 7919) % n);
		if (engine_get(e, "docstore/data", key, NULL, &data, &len) == 0)
			free(data);
	}
	free(q);
}

/* Runs in a fresh child so that its peak RSS is the open's alone. */
static int bench_open_child(const char *dir, uint64_t raw, uint64_t vt,
			    bool cold)
{
	struct backend *be;
	struct engine *e;
	struct engine_opts o = { .read_only = 1 };
	struct engine_stats st;
	double t0, rss;
	int rc;

	if (cold)
		nftw(dir, bench_drop_cache_fn, 16, FTW_PHYS);
	rc = backend_local_open(dir, &be);
	if (rc)
		return rc;
	t0 = bench_now();
	rc = engine_open(be, &o, &e);
	if (rc) {
		fprintf(stderr, "open: %s\n", engine_last_error());
		backend_close(be);
		return rc;
	}
	printf("open %s:  %.2f s (%zu nodes, %zu vectors)\n",
	       cold ? "cold" : "warm", bench_now() - t0,
	       engine_count(e, "docstore/data"),
	       engine_count(e, "vector_store/default"));
	engine_get_stats(e, &st);
	rss = bench_peak_rss();
	printf("memory:     peak RSS %.1f MB, engine %.1f MB (+ %.1f MB of "
	       "values mapped, read on demand), raw data %.1f MB (RSS %.2fx "
	       "raw), vectors + text %.1f MB (RSS %.2fx)\n",
	       rss / 1e6, (double)st.mem_bytes / 1e6,
	       (double)st.values_mapped / 1e6, (double)raw / 1e6,
	       rss / (double)raw, (double)vt / 1e6, rss / (double)vt);
	bench_query(e);
	rss = bench_peak_rss();
	printf("query:      peak RSS %.1f MB (%.2fx raw, %.2fx vectors + "
	       "text)\n",
	       rss / 1e6, rss / (double)raw, rss / (double)vt);
	engine_close(e);
	backend_close(be);
	return 0;
}

static int bench_rm_fn(const char *path, const struct stat *sb, int flag,
		       struct FTW *ftw)
{
	return remove(path);
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp/lodefs-bench-engine";
	size_t nodes = 100000;
	uint32_t dim = 384;
	uint64_t raw = 0, vt = 0;
	int keep = 0, i, rc, status;
	pid_t pid;

	if (argc == 6 && strcmp(argv[1], "--open-only") == 0) {
		rc = bench_open_child(argv[2], strtoull(argv[3], NULL, 10),
				      strtoull(argv[4], NULL, 10),
				      strcmp(argv[5], "cold") == 0);
		return rc ? 1 : 0;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
			nodes = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--dim") == 0 && i + 1 < argc)
			dim = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--keep") == 0)
			keep = 1;
		else {
			fprintf(stderr,
				"usage: %s [--nodes N] [--dim D] [--dir DIR] "
				"[--keep]\n",
				argv[0]);
			return 2;
		}
	}
	nftw(dir, bench_rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	printf("store:      %s, %zu nodes, dim %u\n", dir, nodes, dim);
	fflush(stdout);
	rc = bench_build(dir, nodes, dim, &raw, &vt);
	if (rc) {
		fprintf(stderr, "build failed: %s\n", strerror(-rc));
		return 1;
	}
	fflush(stdout);
	for (i = 0; i < 2; i++) {
		const char *mode = i == 0 ? "cold" : "warm";

		pid = fork();
		if (pid == 0) {
			/* exec: the parent's heap must not count in the RSS */
			char rawarg[32], vtarg[32];

			snprintf(rawarg, sizeof(rawarg), "%llu",
				 (unsigned long long)raw);
			snprintf(vtarg, sizeof(vtarg), "%llu",
				 (unsigned long long)vt);
			execl("/proc/self/exe", argv[0], "--open-only", dir,
			      rawarg, vtarg, mode, (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "open failed\n");
			return 1;
		}
	}
	if (!keep)
		nftw(dir, bench_rm_fn, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
