/* persist_scale.c - a large <ns>__vector_store.json: import memory, export speed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/persist.h"
#include "core/pyjson.h"
#include "core/store.h"

/*
 * usage: bench_persist_scale [--size BYTES] [--dim N] [--dir DIR] [--keep]
 *                            [--reuse]
 *
 * 1. Writes DIR/default__vector_store.json of about BYTES (default 1 GiB)
 *    as Python's SimpleVectorStore.persist would: DIM-dimensional (default
 *    384) vectors of random doubles in [-1, 1) printed as repr() prints
 *    them (17 significant digits, mostly), UUID4 ids, each with a ref doc
 *    id and a metadata_dict entry as SimpleVectorStore.add makes them.
 * 2. In a child process: maps the file, persist_import into a fresh local
 *    store at DIR/store, and reports the child's peak RSS (ru_maxrss)
 *    against the store's size on disk, and the import time.
 * 3. In another child: opens the store again and persist_export's the
 *    file into a sink that only counts bytes: MB/s of JSON generated
 *    (opening the store is not timed), and that child's peak RSS.
 *
 * Every phase runs in its own process, so that each ru_maxrss is that
 * phase's alone.  DIR defaults to /tmp/lodefs-persist-scale and is
 * removed at the end unless --keep; --reuse takes the file a --keep run
 * left there instead of writing it again (writing 1 GB takes minutes).
 * Build with buildtype=release.
 */

static double ps_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t ps_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void ps_uuid(uint64_t *s, char out[37])
{
	uint64_t a = ps_rand(s), b = ps_rand(s);

	a = (a & ~0xf000ull) | 0x4000ull;
	b = (b & ~(3ull << 62)) | (2ull << 62);
	snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
		 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff,
		 (unsigned)(b >> 48),
		 (unsigned long long)(b & 0xffffffffffffull));
}

static void ps_die(const char *what, int rc)
{
	fprintf(stderr, "bench_persist_scale: %s: %s (%s)\n", what,
		strerror(rc < 0 ? -rc : rc), store_last_error());
	exit(1);
}

/* Writes the file: three passes over the same ids (same seed). */
static size_t ps_generate(const char *path, uint64_t size, uint32_t dim)
{
	FILE *f = fopen(path, "w");
	char id[37], doc[37], num[PYJ_NUM_MAX + 2];
	uint64_t s, written = 0, per;
	size_t n, i;
	uint32_t d;

	if (!f)
		ps_die(path, errno);
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	/* ~20 bytes per number, ~250 per metadata entry */
	per = (uint64_t)dim * 21 + 48 + 60 + 330;
	n = (size_t)(size / per);
	if (n == 0)
		n = 1;
	written += (uint64_t)fprintf(f, "{\"embedding_dict\": {");
	s = 1;
	for (i = 0; i < n; i++) {
		ps_uuid(&s, id);
		written +=
			(uint64_t)fprintf(f, "%s\"%s\": [", i ? ", " : "", id);
		for (d = 0; d < dim; d++) {
			double x = (double)(ps_rand(&s) >> 11) /
					   4503599627370496.0 -
				   1.0;
			size_t len = pyj_fmt_f64(num + 2, x);

			num[0] = ',';
			num[1] = ' ';
			fwrite(d ? num : num + 2, 1, d ? len + 2 : len, f);
			written += d ? len + 2 : len;
		}
		written += (uint64_t)fprintf(f, "]");
	}
	written += (uint64_t)fprintf(f, "}, \"text_id_to_ref_doc_id\": {");
	s = 1;
	for (i = 0; i < n; i++) {
		uint64_t t = 77 + i / 8;

		ps_uuid(&s, id);
		for (d = 0; d < dim; d++)
			ps_rand(&s);
		ps_uuid(&t, doc);
		written += (uint64_t)fprintf(f, "%s\"%s\": \"%s\"",
					     i ? ", " : "", id, doc);
	}
	written += (uint64_t)fprintf(f, "}, \"metadata_dict\": {");
	s = 1;
	for (i = 0; i < n; i++) {
		uint64_t t = 77 + i / 8;

		ps_uuid(&s, id);
		for (d = 0; d < dim; d++)
			ps_rand(&s);
		ps_uuid(&t, doc);
		written += (uint64_t)fprintf(
			f,
			"%s\"%s\": {\"file_path\": \"data/doc-%zu.txt\", "
			"\"file_name\": \"doc-%zu.txt\", \"file_type\": "
			"\"text/plain\", \"file_size\": %zu, "
			"\"creation_date\": \"2024-06-01\", "
			"\"last_modified_date\": \"2024-06-01\", "
			"\"_node_type\": \"TextNode\", \"document_id\": "
			"\"%s\", \"doc_id\": \"%s\", \"ref_doc_id\": \"%s\"}",
			i ? ", " : "", id, i / 8, i / 8, 1000 + i, doc, doc,
			doc);
	}
	written += (uint64_t)fprintf(f, "}}");
	if (fclose(f))
		ps_die(path, errno);
	return n;
}

static uint64_t ps_du(const char *dir)
{
	char path[4096];
	uint64_t sum = 0;
	struct dirent *de;
	struct stat sb;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &sb))
			continue;
		if (S_ISDIR(sb.st_mode))
			sum += ps_du(path);
		else if (S_ISREG(sb.st_mode))
			sum += (uint64_t)sb.st_size;
	}
	closedir(d);
	return sum;
}

struct ps_result {
	double seconds;
	uint64_t bytes;
	long maxrss_kib;
	int rc;
};

static long ps_maxrss(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void ps_open(const char *dir, struct backend **be, struct store **st)
{
	int rc = backend_local_open(dir, be);

	if (rc)
		ps_die(dir, rc);
	rc = store_open(*be, NULL, st);
	if (rc)
		ps_die("store_open", rc);
}

static void ps_import(const char *file, const char *dir, struct ps_result *r)
{
	struct backend *be;
	struct store *st;
	struct stat sb;
	void *map;
	double t0;
	int fd = open(file, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb))
		ps_die(file, errno);
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		ps_die("mmap", errno);
	madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
	ps_open(dir, &be, &st);
	t0 = ps_now();
	r->rc = persist_import(st, "default__vector_store.json", map,
			       (size_t)sb.st_size, NULL, NULL);
	r->seconds = ps_now() - t0;
	if (r->rc)
		ps_die("persist_import", r->rc);
	r->bytes = (uint64_t)sb.st_size;
	r->maxrss_kib = ps_maxrss();
	store_close(st);
	backend_close(be);
	munmap(map, (size_t)sb.st_size);
	close(fd);
}

static int ps_count(void *arg, const void *data, size_t len)
{
	*(uint64_t *)arg += len;
	(void)data;
	return 0;
}

static void ps_export(const char *dir, struct ps_result *r)
{
	struct backend *be;
	struct store *st;
	double t0;

	ps_open(dir, &be, &st);
	r->bytes = 0;
	t0 = ps_now();
	r->rc = persist_export(st, "default__vector_store.json", ps_count,
			       &r->bytes, NULL, NULL);
	r->seconds = ps_now() - t0;
	if (r->rc)
		ps_die("persist_export", r->rc);
	r->maxrss_kib = ps_maxrss();
	store_close(st);
	backend_close(be);
}

/* Runs fn in a child; its result comes back through a pipe. */
static void ps_child(void (*fn)(const char *, const char *, struct ps_result *),
		     const char *a, const char *b, struct ps_result *r)
{
	int p[2], status;
	pid_t pid;

	if (pipe(p))
		ps_die("pipe", errno);
	pid = fork();
	if (pid < 0)
		ps_die("fork", errno);
	if (pid == 0) {
		close(p[0]);
		fn(a, b, r);
		if (write(p[1], r, sizeof(*r)) != (ssize_t)sizeof(*r))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], r, sizeof(*r)) != (ssize_t)sizeof(*r))
		ps_die("child", EIO);
	close(p[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		ps_die("child", EIO);
}

static void ps_import_fn(const char *file, const char *dir, struct ps_result *r)
{
	ps_import(file, dir, r);
}

static void ps_export_fn(const char *dir, const char *unused,
			 struct ps_result *r)
{
	(void)unused;
	ps_export(dir, r);
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp/lodefs-persist-scale";
	uint64_t size = 1ull << 30, disk;
	uint32_t dim = 384;
	char file[4096], store[4096], cmd[8300];
	struct ps_result im = { 0 }, ex = { 0 };
	int keep = 0, reuse = 0, i;
	struct stat sb;
	double t0;
	size_t n;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--dim") == 0 && i + 1 < argc)
			dim = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--keep") == 0)
			keep = 1;
		else if (strcmp(argv[i], "--reuse") == 0)
			reuse = 1;
		else {
			fprintf(stderr,
				"usage: %s [--size BYTES] [--dim N] "
				"[--dir DIR] [--keep] [--reuse]\n",
				argv[0]);
			return 2;
		}
	}
	snprintf(file, sizeof(file), "%s/default__vector_store.json", dir);
	snprintf(store, sizeof(store), "%s/store", dir);
	if (!reuse || stat(file, &sb)) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir,
			 store);
		if (system(cmd))
			ps_die("mkdir", EIO);
		t0 = ps_now();
		n = ps_generate(file, size, dim);
		printf("file      %s: %" PRIu64 " bytes, %zu vectors x %u "
		       "(written in %.1f s)\n",
		       file, ps_du(dir), n, dim, ps_now() - t0);
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'",
			 store, store);
		if (system(cmd))
			ps_die("mkdir", EIO);
		printf("file      %s: %" PRIu64 " bytes (reused)\n", file,
		       (uint64_t)sb.st_size);
	}
	fflush(stdout);
	ps_child(ps_import_fn, file, store, &im);
	disk = ps_du(store);
	printf("import    %.2f s (%.1f MB/s of JSON), peak RSS %.1f MB, "
	       "store on disk %.1f MB, RSS/store %.2f\n",
	       im.seconds, (double)im.bytes / 1e6 / im.seconds,
	       (double)im.maxrss_kib * 1024 / 1e6, (double)disk / 1e6,
	       (double)im.maxrss_kib * 1024 / (double)disk);
	fflush(stdout);
	ps_child(ps_export_fn, store, NULL, &ex);
	printf("export    %.2f s, %" PRIu64 " bytes, %.1f MB/s, peak RSS "
	       "%.1f MB\n",
	       ex.seconds, ex.bytes, (double)ex.bytes / 1e6 / ex.seconds,
	       (double)ex.maxrss_kib * 1024 / 1e6);
	if (!keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			ps_die("rm", EIO);
	}
	return 0;
}
