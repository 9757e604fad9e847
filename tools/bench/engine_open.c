/* engine_open.c - benchmark: open time and memory of a large engine store. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
 * RSS next to the raw size of the data.  Prints figures; never fails on
 * them.
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

/* A LlamaIndex-shaped TextNode of about 1 KB. */
static size_t bench_node(char *out, size_t cap, size_t i, uint64_t *rng)
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
		       uint64_t *raw)
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
			size_t n = bench_node(json, sizeof(json), j, &rng);

			snprintf(key, sizeof(key), "node-%08zu", j);
			for (d = 0; d < dim; d++)
				v[d] = (float)(bench_rng(&rng) % 2001) /
					       1000.0f -
				       1.0f;
			engine_batch_put_json(b, "docstore/data", key, json, n);
			engine_batch_put_vec(b, "vector_store/default", key, v,
					     dim);
			*raw += n + strlen(key) * 2 + dim * sizeof(float);
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

/* Runs in a fresh child so that its peak RSS is the open's alone. */
static int bench_open_child(const char *dir, uint64_t raw, bool cold)
{
	struct backend *be;
	struct engine *e;
	struct engine_opts o = { .read_only = 1 };
	struct engine_stats st;
	struct rusage ru;
	double t0;
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
	getrusage(RUSAGE_SELF, &ru);
	printf("memory:     peak RSS %.1f MB, engine %.1f MB, raw data "
	       "%.1f MB (RSS %.2fx raw)\n",
	       (double)ru.ru_maxrss * 1024 / 1e6, (double)st.mem_bytes / 1e6,
	       (double)raw / 1e6, (double)ru.ru_maxrss * 1024 / (double)raw);
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
	uint64_t raw = 0;
	int keep = 0, i, rc, status;
	pid_t pid;

	if (argc == 5 && strcmp(argv[1], "--open-only") == 0) {
		rc = bench_open_child(argv[2], strtoull(argv[3], NULL, 10),
				      strcmp(argv[4], "cold") == 0);
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
	rc = bench_build(dir, nodes, dim, &raw);
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
			char rawarg[32];

			snprintf(rawarg, sizeof(rawarg), "%llu",
				 (unsigned long long)raw);
			execl("/proc/self/exe", argv[0], "--open-only", dir,
			      rawarg, mode, (char *)NULL);
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
