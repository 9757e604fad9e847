/* lode_vectors.c - `lode import-vectors` and `lode search`: TexMex fvecs
 * files (as ANN benchmarks ship them) in and exact top-k out. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/engine.h"
#include "core/vec.h"
#include "tools/lode.h"

/* Dimensions an fvecs row may have (the built-in embedding's limit). */
#define LODE_FVECS_DIM_MAX VEC_EMBED_DIM_MAX

/*
 * An fvecs file, mapped: per row a little-endian int32 dim then dim
 * float32.  Rows are 4 + 4 * dim bytes, so row i's floats are at
 * data + i * stride + 1 (in floats).
 */
struct lode_fvecs {
	const char *path;
	void *map;
	size_t len;
	uint32_t dim;
	size_t rows;
};

static void lode_fvecs_close(struct lode_fvecs *f)
{
	if (f->map && f->len)
		munmap(f->map, f->len);
	f->map = NULL;
}

static const float *lode_fvecs_row(const struct lode_fvecs *f, size_t i)
{
	return (const float *)f->map + i * ((size_t)f->dim + 1) + 1;
}

static int32_t lode_le32(const unsigned char *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			 (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/*
 * Maps and checks the whole file before anything is written: every row
 * has the first row's dimension, the file ends on a row boundary, every
 * value is finite.  Messages name the row (from 0) and the byte offset.
 */
static int lode_fvecs_open(struct lode_fvecs *f, const char *path)
{
	const unsigned char *p;
	struct stat st;
	size_t rowlen, i, j;
	int32_t d;
	int fd;

	memset(f, 0, sizeof(*f));
	f->path = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		lode_err("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_size < 4) {
		lode_err("%s: %s", path,
			 st.st_size ? "truncated: no complete dimension field"
				    : "empty file, no vectors");
		close(fd);
		return -1;
	}
	f->len = (size_t)st.st_size;
	f->map = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		lode_err("%s: %s", path, strerror(errno));
		return -1;
	}
	madvise(f->map, f->len, MADV_SEQUENTIAL);
	p = f->map;
	d = lode_le32(p);
	if (d <= 0 || d > LODE_FVECS_DIM_MAX) {
		lode_err("%s: row 0: dimension %" PRId32 " (1 to %d allowed)",
			 path, d, LODE_FVECS_DIM_MAX);
		goto bad;
	}
	f->dim = (uint32_t)d;
	rowlen = 4 + 4 * (size_t)f->dim;
	f->rows = f->len / rowlen;
	for (i = 0; i < f->rows; i++) {
		const float *r = lode_fvecs_row(f, i);

		d = lode_le32(p + i * rowlen);
		if (d != (int32_t)f->dim) {
			lode_err("%s: row %zu (byte %zu): dimension %" PRId32
				 ", row 0 has %u",
				 path, i, i * rowlen, d, f->dim);
			goto bad;
		}
		for (j = 0; j < f->dim; j++)
			if (!isfinite(r[j])) {
				lode_err("%s: row %zu: value %zu is not a "
					 "finite number",
					 path, i, j);
				goto bad;
			}
	}
	if (f->len % rowlen) {
		d = f->len - f->rows * rowlen >= 4
			    ? lode_le32(p + f->rows * rowlen)
			    : (int32_t)f->dim;
		if (d != (int32_t)f->dim)
			lode_err("%s: row %zu (byte %zu): dimension %" PRId32
				 ", row 0 has %u",
				 path, f->rows, f->rows * rowlen, d, f->dim);
		else
			lode_err("%s: truncated: row %zu has %zu of its %zu "
				 "bytes",
				 path, f->rows, f->len % rowlen, rowlen);
		goto bad;
	}
	return 0;
bad:
	lode_fvecs_close(f);
	return -1;
}

/* --- import-vectors ------------------------------------------------------ */

static const char lode_import_vectors_help[] =
	"usage: lode import-vectors STORE NS FILE.fvecs [options]\n"
	"\n"
	"Sets the vectors of FILE.fvecs (TexMex format: per row a little-\n"
	"endian int32 dimension then that many float32) in vector namespace\n"
	"NS, in one commit, then writes a checkpoint.  Row i gets the id\n"
	"v<i> (from v0) unless --ids gives the ids.  The whole file is\n"
	"checked first: a row of another dimension, a truncated row, a value\n"
	"that is not a finite number, an id count that differs from the row\n"
	"count or a dimension other than the namespace's imports nothing.\n"
	"\n"
	"  -i, --ids FILE       one id per line, in row order\n"
	"  -q, --quiet          no progress, no summary\n"
	"  -h, --help           this text\n";

/* Reads FILE into one buffer and splits it into lines (ids). */
static int lode_read_ids(const char *path, char **buf, char ***ids, size_t *n)
{
	FILE *fp = fopen(path, "re");
	size_t len = 0, cap = 0, m = 0, i;
	char *b = NULL, **v;
	int c;

	*buf = NULL;
	*ids = NULL;
	*n = 0;
	if (!fp) {
		lode_err("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((c = getc(fp)) != EOF) {
		if (len + 2 > cap) {
			char *nb = realloc(b, cap = cap ? 2 * cap : 1 << 16);

			if (!nb) {
				free(b);
				fclose(fp);
				lode_err("%s: out of memory", path);
				return -1;
			}
			b = nb;
		}
		b[len++] = (char)c;
	}
	fclose(fp);
	if (!b) {
		*buf = calloc(1, 1);
		return *buf ? 0 : -1;
	}
	if (b[len - 1] != '\n')
		b[len++] = '\n'; /* a last line without its newline */
	b[len] = '\0';
	for (i = 0; i < len; i++)
		m += b[i] == '\n';
	v = malloc((m ? m : 1) * sizeof(*v));
	if (!v) {
		free(b);
		lode_err("%s: out of memory", path);
		return -1;
	}
	m = 0;
	for (i = 0; i < len;) {
		char *line = b + i, *nl = strchr(line, '\n');

		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0'; /* CRLF files */
		v[m++] = line;
		i = (size_t)(nl - b) + 1;
	}
	*buf = b;
	*ids = v;
	*n = m;
	return 0;
}

/* The dimension of namespace ns, or 0 if it holds no vectors. */
struct lode_nsdim {
	const char *ns;
	uint32_t dim;
};

static int lode_nsdim_fn(void *arg, const char *ns, size_t count, uint32_t dim)
{
	struct lode_nsdim *d = arg;

	if (strcmp(ns, d->ns) == 0 && count)
		d->dim = dim;
	return 0;
}

static uint32_t lode_ns_dim(struct store *s, const char *ns)
{
	struct lode_nsdim d = { .ns = ns };

	store_namespaces(s, lode_nsdim_fn, &d);
	return d.dim;
}

int lode_cmd_import_vectors(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ids", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *ids_path = NULL, *ns, *file;
	char *idbuf = NULL, **ids = NULL, (*names)[24] = NULL;
	struct lode_fvecs f = { 0 };
	struct lode_bar bar;
	struct lode_ctx c;
	size_t nids = 0, i;
	uint32_t have;
	int opt, quiet = 0, progress, rc, ret = LODE_FAIL;
	double t0 = lode_now(), t1;

	while ((opt = getopt_long(argc, argv, "i:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			ids_path = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(lode_import_vectors_help, stdout);
			return LODE_OK;
		default:
			fputs(lode_import_vectors_help, stderr);
			return LODE_USAGE;
		}
	}
	if (argc - optind != 3) {
		fputs(lode_import_vectors_help, stderr);
		return LODE_USAGE;
	}
	ns = argv[optind + 1];
	file = argv[optind + 2];
	progress = !quiet && isatty(STDERR_FILENO);
	if (lode_fvecs_open(&f, file))
		goto refused;
	if (ids_path) {
		if (lode_read_ids(ids_path, &idbuf, &ids, &nids))
			goto refused;
		if (nids != f.rows) {
			lode_err("%s has %zu id%s for the %zu row%s of %s",
				 ids_path, nids, nids == 1 ? "" : "s", f.rows,
				 f.rows == 1 ? "" : "s", file);
			goto refused;
		}
	} else {
		names = malloc((f.rows ? f.rows : 1) * sizeof(*names));
		ids = malloc((f.rows ? f.rows : 1) * sizeof(*ids));
		if (!names || !ids) {
			lode_err("out of memory");
			goto refused;
		}
		for (i = 0; i < f.rows; i++) {
			snprintf(names[i], sizeof(names[i]), "v%zu", i);
			ids[i] = names[i];
		}
	}
	if (lode_open(&c, argv[optind], 1, NULL))
		goto refused;
	have = lode_ns_dim(c.store, ns);
	if (have && have != f.dim) {
		lode_err("%s has %u-dimensional vectors; namespace %s holds %u",
			 file, f.dim, ns, have);
		lode_close(&c);
		goto refused;
	}
	lode_bar_start(&bar, progress, file, f.len);
	rc = store_vec_put_many(c.store, ns, (const char *const *)ids,
				lode_fvecs_row(&f, 0), (size_t)f.dim + 1,
				f.rows, f.dim, lode_bar_progress, &bar);
	if (rc) {
		if (bar.drawn)
			fputc('\n', stderr);
		lode_err("%s: %s", file, lode_why(rc));
		lode_close(&c);
		goto refused;
	}
	lode_bar_draw(&bar, 1);
	/* as `lode import`: the next open reads a checkpoint, not the log */
	if (progress)
		fprintf(stderr, "(checkpoint)  writing...");
	t1 = lode_now();
	rc = engine_checkpoint(store_engine(c.store));
	if (progress)
		fprintf(stderr, "\r(checkpoint)  %s in %.1f s\n",
			rc ? "failed" : "written", lode_now() - t1);
	if (rc)
		lode_err("the checkpoint after the import failed (%s); the "
			 "vectors are imported, `lode compact` makes it later",
			 lode_why(rc));
	if (!quiet)
		printf("%zu vector%s of %u dimensions imported into %s in "
		       "%.2f s\n",
		       f.rows, f.rows == 1 ? "" : "s", f.dim, ns,
		       lode_now() - t0);
	lode_close(&c);
	ret = LODE_OK;
	goto out;
refused:
	lode_err("nothing was imported");
out:
	lode_fvecs_close(&f);
	free(idbuf);
	free(ids);
	free(names);
	return ret;
}

/* --- search -------------------------------------------------------------- */

static const char lode_search_help[] =
	"usage: lode search STORE NS QUERIES.fvecs [options]\n"
	"\n"
	"Exact cosine top-k of vector namespace NS for each query of\n"
	"QUERIES.fvecs (TexMex format, the namespace's dimension): one line\n"
	"per query, in file order, of the ids found, best first, separated\n"
	"by spaces.  Queries are answered in passes over the vectors that\n"
	"serve many queries each.\n"
	"\n"
	"  -k, --top-k N        ids per query (default 10)\n"
	"  -s, --scores         print id:score pairs\n"
	"  -h, --help           this text\n";

int lode_cmd_search(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "top-k", required_argument, NULL, 'k' },
		{ "scores", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct lode_fvecs f = { 0 };
	struct vec_hit **hits = NULL;
	size_t *nhits = NULL, i, j;
	unsigned long k = 10;
	struct lode_ctx c;
	float *queries = NULL;
	uint32_t have;
	int opt, scores = 0, rc, ret = LODE_FAIL;
	const char *ns;

	while ((opt = getopt_long(argc, argv, "k:sh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			if (lode_parse_uint(optarg, 1ul << 20, &k) || !k) {
				lode_err("-k: a number from 1 to %lu: %s",
					 1ul << 20, optarg);
				return LODE_USAGE;
			}
			break;
		case 's':
			scores = 1;
			break;
		case 'h':
			fputs(lode_search_help, stdout);
			return LODE_OK;
		default:
			fputs(lode_search_help, stderr);
			return LODE_USAGE;
		}
	}
	if (argc - optind != 3) {
		fputs(lode_search_help, stderr);
		return LODE_USAGE;
	}
	ns = argv[optind + 1];
	if (lode_fvecs_open(&f, argv[optind + 2]))
		return LODE_FAIL;
	if (lode_open(&c, argv[optind], 0, NULL)) {
		lode_fvecs_close(&f);
		return LODE_FAIL;
	}
	have = lode_ns_dim(c.store, ns);
	if (!have) {
		lode_err("namespace %s holds no vectors", ns);
		goto out;
	}
	if (have != f.dim) {
		lode_err("%s has %u-dimensional queries; namespace %s holds %u",
			 f.path, f.dim, ns, have);
		goto out;
	}
	/* contiguous copies: the search reads each query many times */
	queries = malloc((f.rows ? f.rows : 1) * f.dim * sizeof(*queries));
	hits = calloc(f.rows ? f.rows : 1, sizeof(*hits));
	nhits = calloc(f.rows ? f.rows : 1, sizeof(*nhits));
	if (!queries || !hits || !nhits) {
		lode_err("out of memory");
		goto out;
	}
	for (i = 0; i < f.rows; i++)
		memcpy(queries + i * f.dim, lode_fvecs_row(&f, i),
		       f.dim * sizeof(*queries));
	rc = store_vec_search(c.store, ns, queries, f.rows, f.dim, k, hits,
			      nhits);
	if (rc) {
		lode_err("%s", lode_why(rc));
		goto out;
	}
	for (i = 0; i < f.rows; i++) {
		for (j = 0; j < nhits[i]; j++) {
			if (j)
				putchar(' ');
			if (scores)
				printf("%s:%.9g", hits[i][j].key,
				       hits[i][j].score);
			else
				fputs(hits[i][j].key, stdout);
		}
		putchar('\n');
	}
	if (fflush(stdout) || ferror(stdout)) {
		lode_err("writing the results: %s", strerror(errno));
		goto out;
	}
	ret = LODE_OK;
out:
	for (i = 0; hits && i < f.rows; i++)
		vec_hits_free(hits[i], nhits[i]);
	free(hits);
	free(nhits);
	free(queries);
	lode_close(&c);
	lode_fvecs_close(&f);
	return ret;
}
