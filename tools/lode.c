/* lode.c - the command line tool: every `lode COMMAND`. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "backends/backend.h"
#include "backends/backend_source.h"
#include "core/store.h"
#include "core/vec.h"
#include "tools/lode.h"

#define LODE_BATCH_DOCS	 256
#define LODE_BATCH_BYTES (16u << 20)

const char *lode_prog = "lode";

void lode_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", lode_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *lode_why(int rc)
{
	const char *why = store_last_error();

	return why && *why ? why : strerror(-rc);
}

int lode_open_backend(struct lode_ctx *c, const char *path, int create)
{
	struct backend_source_opts bo = { .s3.path_style = -1,
					  .create = create };
	char err[512];
	int rc;

	rc = backend_open_source(path, &bo, &c->be, &c->src, err, sizeof(err));
	if (rc)
		lode_err("%s", err);
	return rc;
}

void lode_close_backend(struct lode_ctx *c)
{
	backend_close(c->be);
	backend_source_release(&c->src);
	c->be = NULL;
}

int lode_open(struct lode_ctx *c, const char *path, int write,
	      const struct store_opts *opts)
{
	struct store_opts o;
	char lock[4096];
	int rc;

	memset(c, 0, sizeof(*c));
	c->path = path;
	c->lock_fd = -1;
	rc = lode_open_backend(c, path, write);
	if (rc)
		return rc;
	if (write && c->src.local_dir) {
		snprintf(lock, sizeof(lock), "%s/.lodefs.lock",
			 c->src.local_dir);
		c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (c->lock_fd < 0 || flock(c->lock_fd, LOCK_EX | LOCK_NB)) {
			lode_err("%s: the store is in use by another writer "
				 "(a mount or another lode)",
				 path);
			rc = -EBUSY;
			goto out_backend;
		}
	}
	if (opts)
		o = *opts;
	else
		store_opts_init(&o);
	o.engine.read_only = !write;
	/* the mount builds HNSW graphs; lode would drop a build half done */
	o.ann_no_build = 1;
	if (write && !o.engine.checkpoint_segments)
		o.engine.checkpoint_segments = 256;
	rc = store_open(c->be, &o, &c->store);
	if (rc) {
		lode_err("%s: %s", path, lode_why(rc));
		if (rc == -EUCLEAN)
			fprintf(stderr,
				"The store is damaged; run `lode fsck %s` "
				"for a full report.\n",
				path);
		goto out_lock;
	}
	return 0;
out_lock:
	if (c->lock_fd >= 0)
		close(c->lock_fd);
out_backend:
	lode_close_backend(c);
	return rc;
}

void lode_close(struct lode_ctx *c)
{
	store_close(c->store);
	lode_close_backend(c);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
}

int lode_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

int lode_args_quiet(int argc, char **argv, const char *help, int *quiet)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			*quiet = 1;
			break;
		case 'h':
			fputs(help, stdout);
			return LODE_OK;
		default:
			fputs(help, stderr);
			return LODE_USAGE;
		}
	}
	if (argc - optind != 2) {
		fputs(help, stderr);
		return LODE_USAGE;
	}
	return -1;
}

/* --- add ---------------------------------------------------------------- */

static const char lode_add_help[] =
	"usage: lode add STORE FILE|DIR... [options]\n"
	"\n"
	"Stores each file as a document and indexes it.  A directory adds\n"
	"every regular file below it.  The document id is the path as given,\n"
	"without leading \"./\" or \"/\" (or relative to --base).\n"
	"\n"
	"  --base DIR           ids are paths relative to DIR\n"
	"  --meta JSON          extra metadata (a JSON object) for every file\n"
	"  --chunk-size N       tokens per node (default 1024)\n"
	"  --chunk-overlap N    tokens shared by neighbours (default 200)\n"
	"  -q, --quiet          no progress, no summary\n"
	"  -h, --help           this text\n";

struct lode_add {
	struct lode_ctx *c;
	const char *base;
	const char *meta;
	struct store_doc docs[LODE_BATCH_DOCS];
	char *ids[LODE_BATCH_DOCS];
	void *bufs[LODE_BATCH_DOCS];
	size_t n, bytes;
	size_t done, indexed, unchanged, binary, failed, total;
	int progress, quiet;
};

static int lode_add_flush(struct lode_add *a)
{
	int results[LODE_BATCH_DOCS];
	size_t i;
	int rc;

	if (!a->n)
		return 0;
	rc = store_docs_put(a->c->store, a->docs, a->n, results);
	if (rc == -EINVAL || rc == -ENAMETOOLONG) {
		/* Find the offending file(s): retry one by one. */
		for (i = 0; i < a->n; i++) {
			int r1 = store_docs_put(a->c->store, &a->docs[i], 1,
						&results[i]);

			if (r1) {
				lode_err("%s: %s", a->docs[i].id, lode_why(r1));
				a->failed++;
				results[i] = -1;
				if (r1 != -EINVAL && r1 != -ENAMETOOLONG) {
					rc = r1;
					break;
				}
			}
		}
		if (i == a->n)
			rc = 0;
	} else if (rc) {
		lode_err("cannot store %zu files: %s", a->n, lode_why(rc));
	}
	for (i = 0; i < a->n; i++) {
		if (!rc) {
			a->indexed += results[i] == STORE_INDEXED;
			a->unchanged += results[i] == STORE_UNCHANGED;
			a->binary += results[i] == STORE_BINARY;
		}
		free(a->ids[i]);
		free(a->bufs[i]);
	}
	a->done += a->n;
	a->n = 0;
	a->bytes = 0;
	if (a->progress)
		fprintf(stderr, "\radded %zu/%zu files", a->done, a->total);
	return rc;
}

/* The document id of `path`: relative to --base, no leading ./ or /. */
static char *lode_doc_id(const char *base, const char *path)
{
	size_t bl = base ? strlen(base) : 0;
	char *id, *w;
	const char *r;

	if (base && strncmp(path, base, bl) == 0 &&
	    (path[bl] == '/' || (bl && base[bl - 1] == '/')))
		path += bl;
	id = malloc(strlen(path) + 1);
	if (!id)
		return NULL;
	/* Drop empty and "." components. */
	for (r = path, w = id; *r;) {
		size_t n = strcspn(r, "/");

		if (n && !(n == 1 && r[0] == '.')) {
			if (w != id)
				*w++ = '/';
			memcpy(w, r, n);
			w += n;
		}
		r += n;
		if (*r == '/')
			r++;
	}
	*w = '\0';
	return id;
}

static int lode_read_file(const char *path, void **data, size_t *len,
			  struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	char *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, st)) {
		close(fd);
		return -errno;
	}
	buf = malloc(st->st_size ? (size_t)st->st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st->st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? -errno : -EIO;

			free(buf);
			close(fd);
			return e;
		}
		got += (size_t)r;
	}
	close(fd);
	*data = buf;
	*len = got;
	return 0;
}

static int lode_add_file(struct lode_add *a, const char *path)
{
	struct store_doc *d;
	struct stat st;
	void *data = NULL;
	size_t len = 0;
	int rc;

	rc = lode_read_file(path, &data, &len, &st);
	if (rc) {
		lode_err("%s: %s", path, strerror(-rc));
		a->failed++;
		return 0;
	}
	d = &a->docs[a->n];
	a->ids[a->n] = lode_doc_id(a->base, path);
	a->bufs[a->n] = data;
	if (!a->ids[a->n]) {
		free(data);
		return -ENOMEM;
	}
	memset(d, 0, sizeof(*d));
	d->id = a->ids[a->n];
	d->data = data;
	d->len = len;
	d->user_meta = a->meta;
	d->mtime = st.st_mtime;
	d->ctime = st.st_ctime;
	d->mode = st.st_mode & 07777;
	a->n++;
	a->bytes += len;
	if (a->n == LODE_BATCH_DOCS || a->bytes >= LODE_BATCH_BYTES)
		return lode_add_flush(a);
	return 0;
}

/*
 * nftw() passes its callbacks no argument, so the walk's state has to sit
 * here; lode_cmd_add sets it before walking and nothing else uses it.
 */
static struct lode_add *lode_walk_ctx;

static int lode_walk_count(const char *path, const struct stat *st, int type,
			   struct FTW *ftw)
{
	if (type == FTW_F && S_ISREG(st->st_mode))
		lode_walk_ctx->total++;
	return 0;
}

static int lode_walk_add(const char *path, const struct stat *st, int type,
			 struct FTW *ftw)
{
	if (type == FTW_F && S_ISREG(st->st_mode))
		return lode_add_file(lode_walk_ctx, path);
	if (type == FTW_DNR || type == FTW_NS) {
		lode_err("%s: cannot read", path);
		lode_walk_ctx->failed++;
	}
	return 0;
}

static int lode_cmd_add(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "base", required_argument, NULL, 'b' },
		{ "meta", required_argument, NULL, 'm' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "chunk-overlap", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct lode_add *a;
	struct store_opts opts;
	struct lode_ctx c;
	unsigned long v;
	int opt, i, rc = 0, ret;

	a = calloc(1, sizeof(*a));
	if (!a)
		return LODE_FAIL;
	store_opts_init(&opts);
	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			a->base = optarg;
			break;
		case 'm':
			a->meta = optarg;
			break;
		case 'c':
		case 'o':
			if (lode_parse_uint(optarg, 1u << 20, &v)) {
				lode_err("--%s: not a number: %s",
					 opt == 'c' ? "chunk-size"
						    : "chunk-overlap",
					 optarg);
				free(a);
				return LODE_USAGE;
			}
			if (opt == 'c')
				opts.chunk_size = (unsigned)v;
			else
				opts.chunk_overlap = (unsigned)v;
			break;
		case 'q':
			a->quiet = 1;
			break;
		case 'h':
			fputs(lode_add_help, stdout);
			free(a);
			return LODE_OK;
		default:
			fputs(lode_add_help, stderr);
			free(a);
			return LODE_USAGE;
		}
	}
	if (argc - optind < 2) {
		fputs(lode_add_help, stderr);
		free(a);
		return LODE_USAGE;
	}
	if (lode_open(&c, argv[optind], 1, &opts)) {
		free(a);
		return LODE_FAIL;
	}
	a->c = &c;
	a->progress = !a->quiet && isatty(STDERR_FILENO);
	lode_walk_ctx = a;
	if (a->progress)
		for (i = optind + 1; i < argc; i++)
			nftw(argv[i], lode_walk_count, 32, FTW_PHYS);
	for (i = optind + 1; i < argc && !rc; i++) {
		struct stat st;

		if (stat(argv[i], &st)) {
			lode_err("%s: %s", argv[i], strerror(errno));
			a->failed++;
			continue;
		}
		if (S_ISDIR(st.st_mode))
			rc = nftw(argv[i], lode_walk_add, 32, FTW_PHYS);
		else
			rc = lode_add_file(a, argv[i]);
	}
	if (!rc)
		rc = lode_add_flush(a);
	if (a->progress)
		fputc('\n', stderr);
	if (!a->quiet)
		printf("%zu indexed, %zu unchanged, %zu binary (stored, not "
		       "indexed), %zu failed\n",
		       a->indexed, a->unchanged, a->binary, a->failed);
	ret = rc || a->failed ? LODE_FAIL : LODE_OK;
	for (i = 0; i < (int)a->n; i++) {
		free(a->ids[i]);
		free(a->bufs[i]);
	}
	free(a);
	lode_close(&c);
	return ret;
}

/* --- query -------------------------------------------------------------- */

static const char lode_query_help[] =
	"usage: lode query STORE TEXT [options]\n"
	"\n"
	"Prints the best nodes for TEXT, best first.\n"
	"\n"
	"  -k N                 how many results (default 2, as LlamaIndex)\n"
	"  --mode MODE          keyword (default), vector or hybrid\n"
	"  --alpha A            hybrid: weight of the vector side (0.5)\n"
	"  --ns NAMESPACE       vector namespace (default)\n"
	"  --doc ID             only nodes of this document (repeatable)\n"
	"  --where EXPR         metadata filter, e.g. year>=2020 (repeatable,\n"
	"                       all must hold)\n"
	"  --filters JSON       LlamaIndex MetadataFilters as JSON\n"
	"  --json               the result as JSON\n"
	"  -h, --help           this text\n";

/* Prints up to `max` bytes of text on one indented line, spaces folded. */
static void lode_print_snippet(const char *text, size_t max)
{
	size_t out = 0;
	int space = 0;

	fputs("   ", stdout);
	for (; *text && out < max; text++) {
		if (*text == ' ' || *text == '\n' || *text == '\t' ||
		    *text == '\r') {
			space = out > 0;
			continue;
		}
		if (space) {
			putchar(' ');
			out++;
			space = 0;
		}
		putchar(*text);
		out++;
	}
	fputs(*text ? "...\n" : "\n", stdout);
}

static int lode_cmd_query(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "alpha", required_argument, NULL, 'a' },
		{ "ns", required_argument, NULL, 'n' },
		{ "doc", required_argument, NULL, 'd' },
		{ "where", required_argument, NULL, 'w' },
		{ "filters", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct store_query q = { 0 };
	struct vec_filters *filters = NULL;
	const char **docs = NULL;
	struct store_hit *hits = NULL;
	struct lode_ctx c;
	char err[256];
	size_t n = 0, i;
	unsigned long v;
	int opt, json = 0, filters_json = 0, rc, ret = LODE_USAGE;

	q.alpha = -1;
	docs = calloc((size_t)argc, sizeof(*docs));
	if (!docs)
		return LODE_FAIL;
	while ((opt = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			if (lode_parse_uint(optarg, 1u << 20, &v) || !v) {
				lode_err("-k: not a positive number: %s",
					 optarg);
				goto out;
			}
			q.k = v;
			break;
		case 'm':
			if (!strcmp(optarg, "keyword"))
				q.mode = STORE_MODE_KEYWORD;
			else if (!strcmp(optarg, "vector"))
				q.mode = STORE_MODE_VECTOR;
			else if (!strcmp(optarg, "hybrid"))
				q.mode = STORE_MODE_HYBRID;
			else {
				lode_err("--mode: keyword, vector or hybrid, "
					 "not %s",
					 optarg);
				goto out;
			}
			break;
		case 'a': {
			char *end;

			q.alpha = strtof(optarg, &end);
			if (*end || end == optarg || q.alpha < 0 ||
			    q.alpha > 1) {
				lode_err("--alpha: a number from 0 to 1");
				goto out;
			}
			break;
		}
		case 'n':
			q.ns = optarg;
			break;
		case 'd':
			docs[q.n_doc_ids++] = optarg;
			q.doc_ids = docs;
			break;
		case 'w':
			if (filters_json) {
				lode_err("--where cannot be combined with "
					 "--filters");
				goto out;
			}
			if (!filters &&
			    vec_filter_new(VEC_COND_AND, &filters)) {
				lode_err("out of memory");
				goto out;
			}
			if (vec_filter_parse_where(optarg, filters, err,
						   sizeof(err))) {
				lode_err("--where %s: %s", optarg, err);
				goto out;
			}
			break;
		case 'f':
			if (filters) {
				lode_err("--filters cannot be combined with "
					 "--where");
				goto out;
			}
			if (vec_filter_parse(optarg, strlen(optarg), &filters,
					     err, sizeof(err))) {
				lode_err("--filters: %s", err);
				goto out;
			}
			filters_json = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(lode_query_help, stdout);
			ret = LODE_OK;
			goto out;
		default:
			fputs(lode_query_help, stderr);
			goto out;
		}
	}
	if (argc - optind != 2) {
		fputs(lode_query_help, stderr);
		goto out;
	}
	q.text = argv[optind + 1];
	q.filters = filters;
	ret = LODE_FAIL;
	if (lode_open(&c, argv[optind], 0, NULL))
		goto out;
	rc = store_query(c.store, &q, &hits, &n);
	if (rc) {
		lode_err("query: %s", lode_why(rc));
	} else if (json) {
		char *text = store_hits_json(&q, hits, n);

		if (text) {
			puts(text);
			ret = LODE_OK;
		}
		free(text);
	} else {
		for (i = 0; i < n; i++) {
			printf("%zu. %.4f  %s  (%s)\n", i + 1, hits[i].score,
			       hits[i].ref_doc_id ? hits[i].ref_doc_id : "-",
			       hits[i].node_id);
			lode_print_snippet(hits[i].text, 200);
		}
		if (!n)
			printf("no results\n");
		ret = LODE_OK;
	}
	store_hits_free(hits, n);
	lode_close(&c);
out:
	vec_filter_free(filters);
	free(docs);
	return ret;
}

/* --- get ---------------------------------------------------------------- */

static const char lode_get_help[] =
	"usage: lode get STORE ID [options]\n"
	"\n"
	"Prints a document's bytes; if no document has that id, the node's\n"
	"JSON.\n"
	"\n"
	"  --node               the node ID (TextNode JSON)\n"
	"  --index              the index struct ID\n"
	"  --vector NS          the vector of ID in namespace NS, one number\n"
	"                       per line\n"
	"  --kv COLLECTION      the raw JSON value of ID in COLLECTION\n"
	"  --graph              the [relation, object] pairs of subject ID\n"
	"  -h, --help           this text\n";

static int lode_write_all(const void *data, size_t len)
{
	return fwrite(data, 1, len, stdout) == len ? 0 : -EIO;
}

static int lode_cmd_get(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "node", no_argument, NULL, 'n' },
		{ "index", no_argument, NULL, 'i' },
		{ "vector", required_argument, NULL, 'v' },
		{ "kv", required_argument, NULL, 'k' },
		{ "graph", no_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *ns = NULL, *coll = NULL, *id;
	int opt, what = 0, rc;
	struct lode_ctx c;
	void *data = NULL;
	size_t len = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			ns = optarg;
			what = opt;
			break;
		case 'k':
			coll = optarg;
			what = opt;
			break;
		case 'n':
		case 'i':
		case 'g':
			what = opt;
			break;
		case 'h':
			fputs(lode_get_help, stdout);
			return LODE_OK;
		default:
			fputs(lode_get_help, stderr);
			return LODE_USAGE;
		}
	}
	if (argc - optind != 2) {
		fputs(lode_get_help, stderr);
		return LODE_USAGE;
	}
	id = argv[optind + 1];
	if (lode_open(&c, argv[optind], 0, NULL))
		return LODE_FAIL;
	switch (what) {
	case 0:
		rc = store_doc_get(c.store, id, &data, &len);
		if (rc != -ENOENT)
			break;
		/* not a document: maybe a node */
		__attribute__((fallthrough));
	case 'n':
		rc = store_node_get(c.store, id, (char **)&data, &len);
		break;
	case 'i':
		rc = store_index_get(c.store, id, (char **)&data, &len);
		break;
	case 'k':
		rc = store_kv_get(c.store, coll, id, (char **)&data, &len);
		break;
	case 'g':
		rc = store_graph_get(c.store, id, (char **)&data);
		len = rc ? 0 : strlen(data);
		break;
	case 'v': {
		float *v;
		uint32_t dim, i;

		rc = store_vec_get(c.store, ns, id, &v, &dim);
		for (i = 0; !rc && i < dim; i++)
			printf("%.9g\n", v[i]);
		if (!rc)
			free(v);
		break;
	}
	default:
		rc = -EINVAL;
	}
	if (!rc && data)
		rc = lode_write_all(data, len);
	if (!rc && data && what && what != 'v')
		putchar('\n');
	if (rc)
		lode_err("%s: %s", id,
			 rc == -ENOENT ? "no such entry" : lode_why(rc));
	free(data);
	lode_close(&c);
	return rc ? LODE_FAIL : LODE_OK;
}

/* --- rm ----------------------------------------------------------------- */

static const char lode_rm_help[] =
	"usage: lode rm STORE ID... [options]\n"
	"\n"
	"Deletes each document with its nodes, vectors and ref_doc_info; an\n"
	"ID that is not a document but a node deletes that node.\n"
	"\n"
	"  --node               ID is a node even if a document has that id\n"
	"  -h, --help           this text\n";

static int lode_cmd_rm(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "node", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, node = 0, i, rc, ret = LODE_OK;
	struct lode_ctx c;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			node = 1;
			break;
		case 'h':
			fputs(lode_rm_help, stdout);
			return LODE_OK;
		default:
			fputs(lode_rm_help, stderr);
			return LODE_USAGE;
		}
	}
	if (argc - optind < 2) {
		fputs(lode_rm_help, stderr);
		return LODE_USAGE;
	}
	if (lode_open(&c, argv[optind], 1, NULL))
		return LODE_FAIL;
	for (i = optind + 1; i < argc; i++) {
		rc = -ENOENT;
		if (!node)
			rc = store_doc_del(c.store, argv[i]);
		if (rc == -ENOENT)
			rc = store_node_del(c.store, argv[i]);
		if (rc) {
			lode_err("%s: %s", argv[i],
				 rc == -ENOENT ? "no such document or node"
					       : lode_why(rc));
			ret = LODE_FAIL;
		}
	}
	lode_close(&c);
	return ret;
}

/* --- stats -------------------------------------------------------------- */

static const char lode_stats_help[] =
	"usage: lode stats STORE [--json]\n"
	"\n"
	"Counts of documents, nodes, vectors per namespace, triples and the\n"
	"engine's segments and bytes.\n";

static int lode_print_ns(void *arg, const char *ns, size_t count, uint32_t dim)
{
	json_t *o = arg;

	if (o)
		json_object_set_new(o, ns,
				    json_pack("{s:I,s:I}", "vectors",
					      (json_int_t)count, "dim",
					      (json_int_t)dim));
	else
		printf("vectors/%-12s %zu x %u\n", ns, count, dim);
	return 0;
}

static int lode_cmd_stats(int argc, char **argv)
{
	struct store_stats st;
	struct lode_ctx c;
	int json = 0, i;
	const char *path = NULL;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "-h") ||
			   !strcmp(argv[i], "--help")) {
			fputs(lode_stats_help, stdout);
			return LODE_OK;
		} else if (!path && argv[i][0] != '-') {
			path = argv[i];
		} else {
			fputs(lode_stats_help, stderr);
			return LODE_USAGE;
		}
	}
	if (!path) {
		fputs(lode_stats_help, stderr);
		return LODE_USAGE;
	}
	if (lode_open(&c, path, 0, NULL))
		return LODE_FAIL;
	store_get_stats(c.store, &st);
	if (json) {
		json_t *ns = json_object();
		json_t *o;
		char *text;

		store_namespaces(c.store, lode_print_ns, ns);
		o = json_pack(
			"{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:{s:I,s:I,s:I,s:I}}",
			"backend", c.be->name, "where", c.be->where,
			"documents", (json_int_t)st.documents, "nodes",
			(json_int_t)st.nodes, "triples", (json_int_t)st.triples,
			"indexes", (json_int_t)st.indexes, "vectors", ns,
			"engine", "segments", (json_int_t)st.engine.segments,
			"segment_bytes", (json_int_t)st.engine.segment_bytes,
			"checkpoint_bytes",
			(json_int_t)st.engine.checkpoint_bytes, "keys",
			(json_int_t)st.engine.keys);
		text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
		json_decref(o);
	} else {
		printf("store        %s (%s)\n", c.be->where, c.be->name);
		printf("documents    %" PRIu64 "\n", st.documents);
		printf("nodes        %" PRIu64 "\n", st.nodes);
		printf("triples      %" PRIu64 "\n", st.triples);
		printf("indexes      %" PRIu64 "\n", st.indexes);
		store_namespaces(c.store, lode_print_ns, NULL);
		printf("segments     %" PRIu64 " (%" PRIu64 " bytes)\n",
		       st.engine.segments, st.engine.segment_bytes);
		printf("checkpoint   %" PRIu64 " bytes\n",
		       st.engine.checkpoint_bytes);
	}
	lode_close(&c);
	return LODE_OK;
}

/* --- compact ------------------------------------------------------------ */

static const char lode_compact_help[] =
	"usage: lode compact STORE\n"
	"\n"
	"Writes a checkpoint of the whole store and deletes the log segments\n"
	"it covers, so that the next open is one read.\n";

static int lode_cmd_compact(int argc, char **argv)
{
	struct lode_ctx c;
	int rc;

	if (argc == 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(lode_compact_help, stdout);
		return LODE_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fputs(lode_compact_help, stderr);
		return LODE_USAGE;
	}
	if (lode_open(&c, argv[1], 1, NULL))
		return LODE_FAIL;
	rc = engine_checkpoint(store_engine(c.store));
	if (rc)
		lode_err("compact: %s", lode_why(rc));
	lode_close(&c);
	return rc ? LODE_FAIL : LODE_OK;
}

/* --- fsck --------------------------------------------------------------- */

static const char lode_fsck_help[] =
	"usage: lode fsck STORE\n"
	"\n"
	"Verifies every checksum of every object, that the log replays, and\n"
	"the cross-references between documents, nodes, vectors and\n"
	"ref_doc_info.  Exit status 0: clean; 1: damage (each problem is\n"
	"printed); 2: usage.\n";

struct lode_fsck {
	unsigned long problems, warnings;
};

static void lode_fsck_report(void *arg, const char *key, const char *problem)
{
	struct lode_fsck *f = arg;

	if (strncmp(problem, "warning:", 8) == 0)
		f->warnings++;
	else
		f->problems++;
	printf("%s: %s\n", key, problem);
}

static int lode_cmd_fsck(int argc, char **argv)
{
	struct lode_fsck f = { 0 };
	struct lode_ctx c;
	int rc;

	if (argc == 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(lode_fsck_help, stdout);
		return LODE_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fputs(lode_fsck_help, stderr);
		return LODE_USAGE;
	}
	memset(&c, 0, sizeof(c));
	if (lode_open_backend(&c, argv[1], 0))
		return LODE_FAIL;
	rc = engine_fsck(c.be, lode_fsck_report, &f);
	lode_close_backend(&c);
	if (rc < 0) {
		lode_err("%s: %s", argv[1], strerror(-rc));
		return LODE_FAIL;
	}
	if (f.problems == 0) {
		/* The objects are sound: now the references between them. */
		if (lode_open(&c, argv[1], 0, NULL))
			return LODE_FAIL;
		rc = store_fsck(c.store, lode_fsck_report, &f);
		lode_close(&c);
		if (rc < 0) {
			lode_err("%s: %s", argv[1], lode_why(rc));
			return LODE_FAIL;
		}
	}
	printf("%s: %lu problem%s, %lu warning%s\n", argv[1], f.problems,
	       f.problems == 1 ? "" : "s", f.warnings,
	       f.warnings == 1 ? "" : "s");
	return f.problems ? LODE_FAIL : LODE_OK;
}

static const char lode_help[] =
	"usage: lode COMMAND STORE [ARGS...]\n"
	"\n"
	"STORE is a directory, s3://BUCKET[/PREFIX] or "
	"r2://ACCOUNT_ID/BUCKET[/PREFIX]\n"
	"(credentials and endpoint from AWS_* variables and ~/.aws).  A "
	"local store\n"
	"must not be mounted to be written; an S3 or R2 store may be.\n"
	"\n"
	"  add      store and index files\n"
	"  query    search the store\n"
	"  get      print a document, node, vector, index struct or kv value\n"
	"  rm       delete documents (with their nodes) or nodes\n"
	"  stats    counts and sizes\n"
	"  compact  write a checkpoint, drop covered log segments\n"
	"  fsck     verify checksums and cross-references\n"
	"  import   read a LlamaIndex persist directory into the store\n"
	"  export   write the store as a LlamaIndex persist directory\n"
	"  import-vectors  set a namespace's vectors from an .fvecs file\n"
	"  search   exact top-k ids for each query of an .fvecs file\n"
	"\n"
	"`lode COMMAND --help` tells more.\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "add", lode_cmd_add },
		{ "query", lode_cmd_query },
		{ "get", lode_cmd_get },
		{ "rm", lode_cmd_rm },
		{ "stats", lode_cmd_stats },
		{ "compact", lode_cmd_compact },
		{ "fsck", lode_cmd_fsck },
		{ "import", lode_cmd_import },
		{ "export", lode_cmd_export },
		{ "import-vectors", lode_cmd_import_vectors },
		{ "search", lode_cmd_search },
	};
	size_t i;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(lode_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? LODE_USAGE : LODE_OK;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			static char prog[64];

			snprintf(prog, sizeof(prog), "lode %s", cmds[i].name);
			lode_prog = prog;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	}
	lode_err("unknown command %s", argv[1]);
	fputs(lode_help, stderr);
	return LODE_USAGE;
}
