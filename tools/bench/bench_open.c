/* bench_open.c - cold open of a large store against Python's json.load. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "backends/backend.h"
#include "core/engine.h"
#include "core/store.h"

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
 *    --split adds a child that only opens the engine (no keyword index),
 *    to show where the open time goes.
 *
 * A DIR that already holds a store built with the same N and D is reused
 * (generation takes minutes at N = 1,000,000).  Without --keep, DIR/store,
 * DIR/persist and DIR/params are removed at the end.
 * Internal: bench_open --child STORE DIM store|engine
 */

#define BO_BATCH_NODES 10000
#define BO_SEED 0x6c6f64656673ull /* "lodefs" */
#define BO_QUERY_SEED 0x7175657279ull
#define BO_KEYWORD_QUERY "ancient river valley harvest"
#define BO_PYTHON "/usr/bin/python3"
#define BO_PY_LOAD                                                     \
	"import json, sys; json.load(open(sys.argv[1])); "             \
	"json.load(open(sys.argv[2]))"

struct bo_opts {
	size_t nodes;
	uint32_t dim;
	const char *dir;
	int keep;
	int repeat;
	int digits;
	int split;
	int python;
};

static void bo_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bo_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_open: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t bo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- deterministic randomness (splitmix64) ------------------------------ */

struct bo_rng {
	uint64_t s;
};

static uint64_t bo_rand(struct bo_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static size_t bo_below(struct bo_rng *r, size_t n)
{
	return (size_t)(bo_rand(r) % n);
}

/* A random vector, uniform in [-1, 1) per component, then L2-normalised. */
static void bo_rand_vec(struct bo_rng *r, float *v, uint32_t dim)
{
	double sum = 0;
	uint32_t i;

	for (i = 0; i < dim; i++) {
		v[i] = (float)((double)(bo_rand(r) >> 11) / 4503599627370496.0 -
			       1.0);
		sum += (double)v[i] * v[i];
	}
	sum = sqrt(sum);
	for (i = 0; i < dim; i++)
		v[i] = (float)(v[i] / sum);
}

/* A UUID4-shaped id. */
static void bo_uuid(struct bo_rng *r, char out[37])
{
	uint64_t a = bo_rand(r), b = bo_rand(r);

	a = (a & ~0xf000ull) | 0x4000ull;
	b = (b & ~(3ull << 62)) | (2ull << 62);
	snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64
		 "-%04" PRIx64 "-%012" PRIx64,
		 a >> 32, (a >> 16) & 0xffff, a & 0xffff, b >> 48,
		 (uint64_t)(b & 0xffffffffffffull));
}

/* A sha256-shaped hex digest (64 digits) of `len` bytes. */
static void bo_hash64(const void *data, size_t len, char out[65])
{
	XXH128_hash_t h = XXH3_128bits(data, len);
	XXH128_hash_t g = XXH3_128bits_withSeed(data, len, 1);

	snprintf(out, 65, "%016llx%016llx%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64,
		 (unsigned long long)g.high64, (unsigned long long)g.low64);
}

/* --- pseudo-English ----------------------------------------------------- */

static const char *const bo_words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it",
	"as", "was", "with", "be", "by", "on", "not", "he", "this", "are",
	"or", "his", "from", "at", "which", "but", "have", "an", "had",
	"they", "you", "were", "their", "one", "all", "we", "can", "her",
	"has", "there", "been", "if", "more", "when", "will", "would", "who",
	"so", "no", "river", "mountain", "valley", "harvest", "ancient",
	"city", "market", "winter", "summer", "garden", "orchard", "apple",
	"farmer", "bridge", "tower", "engine", "storage", "memory", "signal",
	"window", "library", "letter", "record", "season", "village",
	"harbour", "ship", "voyage", "island", "forest", "stone", "metal",
	"copper", "silver", "bread", "water", "fire", "light", "shadow",
	"music", "painter", "teacher", "student", "question", "answer",
	"number", "measure", "weight", "distance", "journey", "road",
	"station", "railway", "machine", "factory", "worker", "merchant",
	"coin", "price", "trade", "law", "court", "king", "queen", "council",
	"church", "school", "doctor", "fever", "medicine", "plant", "seed",
	"flower", "leaf", "root", "branch", "bird", "horse", "sheep", "wool",
	"cloth", "thread", "needle", "kitchen", "table", "chair", "door",
	"roof", "wall", "floor", "candle", "lamp", "clock", "hour", "morning",
	"evening", "night", "moon", "star", "planet", "ocean", "wave",
	"storm", "rain", "snow", "wind", "cloud", "north", "south", "east",
	"west", "large", "small", "old", "new", "early", "late", "quiet",
	"bright", "dark", "heavy", "careful", "simple", "strange", "common",
	"rare", "quick", "slow", "grow", "build", "carry", "write", "read",
	"count", "travel", "follow", "discover", "explain", "remember",
	"repair", "gather", "divide", "measure", "observe", "describe",
	"compare", "produce", "store", "open", "close", "between", "under",
	"over", "through", "after", "before", "during", "without", "across",
};

#define BO_NWORDS (sizeof(bo_words) / sizeof(bo_words[0]))

struct bo_buf {
	char *s;
	size_t len, cap;
};

static void bo_reserve(struct bo_buf *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->len + more + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s)
		bo_die("out of memory");
	b->s = s;
	b->cap = cap;
}

static void bo_putn(struct bo_buf *b, const char *s, size_t n)
{
	bo_reserve(b, n);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void bo_puts(struct bo_buf *b, const char *s)
{
	bo_putn(b, s, strlen(s));
}

static void bo_printf(struct bo_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bo_printf(struct bo_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	bo_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A JSON string as Python's json.dumps writes it (ensure_ascii). */
static void bo_put_jstr(struct bo_buf *b, const char *s, size_t n)
{
	size_t i;

	bo_reserve(b, 2 * n + 2);
	b->s[b->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			bo_reserve(b, 2);
			b->s[b->len++] = '\\';
			b->s[b->len++] = (char)c;
		} else if (c == '\n') {
			bo_putn(b, "\\n", 2);
		} else if (c < 0x20 || c >= 0x7f) {
			/* the generator only writes ASCII */
			bo_printf(b, "\\u%04x", c);
		} else {
			bo_reserve(b, 1);
			b->s[b->len++] = (char)c;
		}
	}
	bo_reserve(b, 1);
	b->s[b->len++] = '"';
	b->s[b->len] = '\0';
}

/* Appends one float as Python prints a float (a '.0' on integral values). */
static void bo_put_float(struct bo_buf *b, float f, int digits)
{
	int n;

	bo_reserve(b, 40);
	n = snprintf(b->s + b->len, 40, "%.*g", digits, (double)f);
	if (!memchr(b->s + b->len, '.', (size_t)n) &&
	    !memchr(b->s + b->len, 'e', (size_t)n)) {
		memcpy(b->s + b->len + n, ".0", 3);
		n += 2;
	}
	b->len += (size_t)n;
}

/*
 * Appends pseudo-English of about `target` bytes: sentences of 6-16 words,
 * now and then a paragraph break.
 */
static void bo_put_text(struct bo_buf *b, struct bo_rng *r, size_t target)
{
	size_t start = b->len;

	while (b->len - start < target) {
		size_t words = 6 + bo_below(r, 11), i;

		if (b->len > start)
			bo_puts(b, bo_below(r, 5) == 0 ? "\n\n" : " ");
		for (i = 0; i < words; i++) {
			const char *w = bo_words[bo_below(r, BO_NWORDS)];
			size_t at;

			if (i)
				bo_puts(b, bo_below(r, 12) == 0 ? ", " : " ");
			at = b->len;
			bo_puts(b, w);
			if (i == 0 && b->s[at] >= 'a' && b->s[at] <= 'z')
				b->s[at] = (char)(b->s[at] - 'a' + 'A');
		}
		bo_puts(b, ".");
	}
}

/* --- generation --------------------------------------------------------- */

/* The six parts of the two persist files, written as entries arrive. */
enum bo_part {
	BO_DS_META,   /* docstore/metadata */
	BO_DS_DATA,   /* docstore/data */
	BO_DS_REFS,   /* docstore/ref_doc_info */
	BO_VS_EMB,    /* embedding_dict */
	BO_VS_REF,    /* text_id_to_ref_doc_id */
	BO_VS_META,   /* metadata_dict */
	BO_NPARTS,
};

static const char *const bo_part_key[BO_NPARTS] = {
	"docstore/metadata", "docstore/data",	     "docstore/ref_doc_info",
	"embedding_dict",    "text_id_to_ref_doc_id", "metadata_dict",
};

struct bo_gen {
	const struct bo_opts *o;
	struct bo_rng rng;
	struct engine *eng;
	struct engine_batch *batch;
	size_t batch_nodes;
	FILE *part[BO_NPARTS];
	size_t part_n[BO_NPARTS];
	char part_path[BO_NPARTS][4096];
	uint64_t text_bytes;
	uint64_t commit_ns;
	float *vec;
	struct bo_buf b, t, meta;
};

/* Writes `"key": value` to a part, with ", " before all but the first. */
static void bo_part_put(struct bo_gen *g, enum bo_part p, const char *key,
			const char *val, size_t len)
{
	FILE *f = g->part[p];

	if (g->part_n[p]++)
		fputs(", ", f);
	fprintf(f, "\"%s\": ", key);
	if (fwrite(val, 1, len, f) != len)
		bo_die("write %s: %s", g->part_path[p], strerror(errno));
}

static void bo_check(int rc, const char *what)
{
	if (rc)
		bo_die("%s: %s (%s)", what, strerror(-rc), engine_last_error());
}

static void bo_commit(struct bo_gen *g)
{
	uint64_t t = bo_now_ns();

	bo_check(engine_commit(g->eng, g->batch), "engine_commit");
	g->commit_ns += bo_now_ns() - t;
	engine_batch_free(g->batch);
	g->batch = engine_batch_new();
	if (!g->batch)
		bo_die("out of memory");
	g->batch_nodes = 0;
}

struct bo_node {
	char id[37];
	char hash[65];
	size_t text_off, text_len, start;
};

/* Appends a RelatedNodeInfo. */
static void bo_put_related(struct bo_buf *b, const char *id, const char *type,
			   const char *meta, const char *hash)
{
	bo_printf(b,
		  "{\"node_id\": \"%s\", \"node_type\": \"%s\", "
		  "\"metadata\": %s, \"hash\": \"%s\", "
		  "\"class_name\": \"RelatedNodeInfo\"}",
		  id, type, meta, hash);
}

static const char bo_excluded[] =
	"[\"file_name\", \"file_type\", \"file_size\", \"creation_date\", "
	"\"last_modified_date\", \"last_accessed_date\"]";

/* One document of `n` nodes: its nodes, vectors, metadata, ref_doc_info. */
static void bo_gen_doc(struct bo_gen *g, size_t doc_no, size_t n)
{
	struct bo_node nodes[8];
	char doc_id[37], doc_hash[65];
	struct bo_buf *b = &g->b, *t = &g->t, *meta = &g->meta;
	size_t i, pos = 0;
	uint32_t d;

	bo_uuid(&g->rng, doc_id);
	t->len = 0;
	for (i = 0; i < n; i++) {
		bo_uuid(&g->rng, nodes[i].id);
		nodes[i].text_off = t->len;
		bo_put_text(t, &g->rng, 400 + bo_below(&g->rng, 160));
		nodes[i].text_len = t->len - nodes[i].text_off;
		nodes[i].start = pos;
		pos += nodes[i].text_len + 1;
		bo_hash64(t->s + nodes[i].text_off, nodes[i].text_len,
			  nodes[i].hash);
		g->text_bytes += nodes[i].text_len;
	}
	bo_hash64(t->s, t->len, doc_hash);

	meta->len = 0;
	bo_printf(meta,
		  "{\"file_path\": \"data/doc_%07zu.txt\", "
		  "\"file_name\": \"doc_%07zu.txt\", "
		  "\"file_type\": \"text/plain\", \"file_size\": %zu, "
		  "\"creation_date\": \"2024-06-01\", "
		  "\"last_modified_date\": \"2024-06-01\"}",
		  doc_no, doc_no, pos ? pos - 1 : 0);

	b->len = 0;
	bo_printf(b, "{\"doc_hash\": \"%s\"}", doc_hash);
	bo_check(engine_batch_put_json(g->batch, "docstore/metadata", doc_id,
				       b->s, b->len),
		 "batch");
	bo_part_put(g, BO_DS_META, doc_id, b->s, b->len);

	for (i = 0; i < n; i++) {
		const struct bo_node *nd = &nodes[i];

		/* docstore/data: the TextNode, as llama-index-core 0.12 */
		b->len = 0;
		bo_printf(b,
			  "{\"__data__\": {\"id_\": \"%s\", \"embedding\": null, "
			  "\"metadata\": %s, "
			  "\"excluded_embed_metadata_keys\": %s, "
			  "\"excluded_llm_metadata_keys\": %s, "
			  "\"relationships\": {\"1\": ",
			  nd->id, meta->s, bo_excluded, bo_excluded);
		bo_put_related(b, doc_id, "4", meta->s, doc_hash);
		if (i > 0) {
			bo_puts(b, ", \"2\": ");
			bo_put_related(b, nodes[i - 1].id, "1", "{}",
				       nodes[i - 1].hash);
		}
		if (i + 1 < n) {
			bo_puts(b, ", \"3\": ");
			bo_put_related(b, nodes[i + 1].id, "1", "{}",
				       nodes[i + 1].hash);
		}
		bo_puts(b, "}, \"metadata_template\": \"{key}: {value}\", "
			   "\"metadata_separator\": \"\\n\", \"text\": ");
		bo_put_jstr(b, t->s + nd->text_off, nd->text_len);
		bo_printf(b,
			  ", \"mimetype\": \"text/plain\", "
			  "\"start_char_idx\": %zu, \"end_char_idx\": %zu, "
			  "\"metadata_seperator\": \"\\n\", "
			  "\"text_template\": "
			  "\"{metadata_str}\\n\\n{content}\", "
			  "\"class_name\": \"TextNode\"}, \"__type__\": \"1\"}",
			  nd->start, nd->start + nd->text_len);
		bo_check(engine_batch_put_json(g->batch, "docstore/data", nd->id,
					       b->s, b->len),
			 "batch");
		bo_part_put(g, BO_DS_DATA, nd->id, b->s, b->len);

		/* docstore/metadata of the node */
		b->len = 0;
		bo_printf(b, "{\"doc_hash\": \"%s\", \"ref_doc_id\": \"%s\"}",
			  nd->hash, doc_id);
		bo_check(engine_batch_put_json(g->batch, "docstore/metadata",
					       nd->id, b->s, b->len),
			 "batch");
		bo_part_put(g, BO_DS_META, nd->id, b->s, b->len);

		/* the vector, and the vector store's three dicts */
		bo_rand_vec(&g->rng, g->vec, g->o->dim);
		bo_check(engine_batch_put_vec(g->batch, "vector_store/default",
					      nd->id, g->vec, g->o->dim),
			 "batch");
		b->len = 0;
		bo_puts(b, "[");
		for (d = 0; d < g->o->dim; d++) {
			if (d)
				bo_putn(b, ", ", 2);
			bo_put_float(b, g->vec[d], g->o->digits);
		}
		bo_puts(b, "]");
		bo_part_put(g, BO_VS_EMB, nd->id, b->s, b->len);
		b->len = 0;
		bo_printf(b, "\"%s\"", doc_id);
		bo_part_put(g, BO_VS_REF, nd->id, b->s, b->len);
		b->len = 0;
		bo_putn(b, meta->s, meta->len - 1);
		bo_printf(b,
			  ", \"_node_type\": \"TextNode\", "
			  "\"document_id\": \"%s\", \"doc_id\": \"%s\", "
			  "\"ref_doc_id\": \"%s\"}",
			  doc_id, doc_id, doc_id);
		bo_part_put(g, BO_VS_META, nd->id, b->s, b->len);
	}

	/* ref_doc_info */
	b->len = 0;
	bo_puts(b, "{\"node_ids\": [");
	for (i = 0; i < n; i++)
		bo_printf(b, "%s\"%s\"", i ? ", " : "", nodes[i].id);
	bo_printf(b, "], \"metadata\": %s}", meta->s);
	bo_check(engine_batch_put_json(g->batch, "docstore/ref_doc_info",
				       doc_id, b->s, b->len),
		 "batch");
	bo_part_put(g, BO_DS_REFS, doc_id, b->s, b->len);

	g->batch_nodes += n;
	if (g->batch_nodes >= BO_BATCH_NODES)
		bo_commit(g);
}

/* Appends file `src` to `out` and removes it. */
static void bo_append_file(FILE *out, const char *src)
{
	int in = open(src, O_RDONLY);
	struct stat st;
	off_t off = 0;

	if (in < 0 || fstat(in, &st))
		bo_die("%s: %s", src, strerror(errno));
	fflush(out);
	while (off < st.st_size) {
		ssize_t n = sendfile(fileno(out), in, &off,
				     (size_t)(st.st_size - off));

		if (n <= 0)
			bo_die("copy %s: %s", src, n ? strerror(errno) : "EOF");
	}
	close(in);
	unlink(src);
	if (fseeko(out, 0, SEEK_END))
		bo_die("seek: %s", strerror(errno));
}

/* {"k1": {PART}, "k2": {PART}, ...} from parts [first, first+3). */
static void bo_assemble(struct bo_gen *g, const char *path, int first)
{
	FILE *out = fopen(path, "w");
	int p;

	if (!out)
		bo_die("%s: %s", path, strerror(errno));
	for (p = first; p < first + 3; p++) {
		fprintf(out, "%s\"%s\": {", p == first ? "{" : ", ",
			bo_part_key[p]);
		bo_append_file(out, g->part_path[p]);
		fputs("}", out);
	}
	fputs("}", out);
	if (fclose(out))
		bo_die("%s: %s", path, strerror(errno));
}

static void bo_mkdir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		bo_die("mkdir %s: %s", path, strerror(errno));
}

/* Builds DIR/store and DIR/persist; runs in a child so memory goes away. */
static int bo_generate(const struct bo_opts *o)
{
	struct bo_gen g = { .o = o, .rng = { BO_SEED } };
	struct engine_opts eo = { 0 };
	struct backend *be;
	char path[4096];
	size_t done = 0, doc = 0;
	uint64_t t0 = bo_now_ns(), t1, t2, t3;
	FILE *f;
	int p;

	snprintf(path, sizeof(path), "%s/store", o->dir);
	bo_check(backend_local_open_flags(path, BACKEND_LOCAL_NO_FSYNC, &be),
		 "backend_local_open_flags");
	bo_check(engine_open(be, &eo, &g.eng), "engine_open");
	g.batch = engine_batch_new();
	g.vec = malloc(o->dim * sizeof(*g.vec));
	if (!g.batch || !g.vec)
		bo_die("out of memory");
	snprintf(path, sizeof(path), "%s/persist", o->dir);
	bo_mkdir(path);
	for (p = 0; p < BO_NPARTS; p++) {
		snprintf(g.part_path[p], sizeof(g.part_path[p]),
			 "%s/persist/.part%d", o->dir, p);
		g.part[p] = fopen(g.part_path[p], "w");
		if (!g.part[p])
			bo_die("%s: %s", g.part_path[p], strerror(errno));
		setvbuf(g.part[p], NULL, _IOFBF, 1 << 20);
	}
	while (done < o->nodes) {
		size_t n = 3 + bo_below(&g.rng, 5);

		if (n > o->nodes - done)
			n = o->nodes - done;
		bo_gen_doc(&g, doc++, n);
		done += n;
		if (isatty(2) && doc % 2000 == 0)
			fprintf(stderr, "\rgenerated %zu/%zu nodes", done,
				o->nodes);
	}
	bo_commit(&g);
	if (isatty(2))
		fputc('\n', stderr);
	t1 = bo_now_ns();
	bo_check(engine_checkpoint(g.eng), "engine_checkpoint");
	t2 = bo_now_ns();
	for (p = 0; p < BO_NPARTS; p++)
		if (fclose(g.part[p]))
			bo_die("%s: %s", g.part_path[p], strerror(errno));
	snprintf(path, sizeof(path), "%s/persist/docstore.json", o->dir);
	bo_assemble(&g, path, BO_DS_META);
	snprintf(path, sizeof(path), "%s/persist/default__vector_store.json",
		 o->dir);
	bo_assemble(&g, path, BO_VS_EMB);
	engine_close(g.eng);
	backend_close(be);
	t3 = bo_now_ns();

	snprintf(path, sizeof(path), "%s/params", o->dir);
	f = fopen(path, "w");
	if (!f)
		bo_die("%s: %s", path, strerror(errno));
	fprintf(f, "nodes %zu\ndim %u\ndigits %d\ndocs %zu\ntext_bytes %" PRIu64
		   "\n",
		o->nodes, o->dim, o->digits, doc, g.text_bytes);
	if (fclose(f))
		bo_die("%s: %s", path, strerror(errno));
	printf("generated    %zu nodes in %zu documents, %.1f MB of node "
	       "text\n",
	       o->nodes, doc, g.text_bytes / 1e6);
	printf("  build      %.1f s (of which engine commits %.1f s), "
	       "checkpoint %.1f s, persist files %.1f s\n",
	       (t1 - t0) / 1e9, g.commit_ns / 1e9, (t2 - t1) / 1e9,
	       (t3 - t2) / 1e9);
	fflush(stdout); /* the caller leaves with _exit() */
	free(g.vec);
	free(g.b.s);
	free(g.t.s);
	free(g.meta.s);
	engine_batch_free(g.batch);
	return 0;
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

static int bo_child(int argc, char **argv)
{
	struct store_opts so;
	struct store_query q = { 0 };
	struct store_hit *hits = NULL;
	struct store_stats st;
	struct engine_stats es;
	struct backend *be;
	struct store *s;
	struct engine *e;
	struct bo_rng rng = { BO_QUERY_SEED };
	uint64_t t_open, t_vec, t_kw;
	size_t nhits = 0, nkw = 0;
	double top = 0;
	uint32_t dim;
	float *qv;
	int rc, engine_only;

	if (argc != 5)
		bo_die("--child STORE DIM store|engine");
	dim = (uint32_t)strtoul(argv[3], NULL, 10);
	engine_only = strcmp(argv[4], "engine") == 0;
	rc = backend_local_open(argv[2], &be);
	if (rc)
		bo_die("backend_local_open %s: %s", argv[2], strerror(-rc));
	store_opts_init(&so);
	so.engine.read_only = 1;
	if (engine_only) {
		rc = engine_open(be, &so.engine, &e);
		t_open = bo_now_ns();
		if (rc)
			bo_die("engine_open: %s (%s)", strerror(-rc),
			       engine_last_error());
		engine_get_stats(e, &es);
		printf("open_ns %" PRIu64 "\nhwm_kib %ld\nmem_bytes %" PRIu64
		       "\nkeys %" PRIu64 "\n",
		       t_open, bo_status_kib("VmHWM"), es.mem_bytes, es.keys);
		fflush(stdout);
		engine_close(e);
		backend_close(be);
		return 0;
	}
	rc = store_open(be, &so, &s);
	t_open = bo_now_ns();
	if (rc)
		bo_die("store_open: %s (%s)", strerror(-rc), store_last_error());
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
	uint64_t t0, end;   /* fork and exit, monotonic ns */
	int status;
	long maxrss_kib;    /* wait4's ru_maxrss */
	char out[2048];	    /* the child's stdout */
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
	int digits = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/params", o->dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fscanf(f, "%31s %llu", key, &v) == 2) {
		if (strcmp(key, "nodes") == 0)
			nodes = (size_t)v;
		else if (strcmp(key, "dim") == 0)
			dim = (unsigned)v;
		else if (strcmp(key, "digits") == 0)
			digits = (int)v;
		else if (strcmp(key, "text_bytes") == 0)
			*text_bytes = v;
	}
	fclose(f);
	return nodes == o->nodes && dim == o->dim && digits == o->digits;
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
	      "  --split       also time an engine-only open (where time "
	      "goes)\n"
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

int main(int argc, char **argv)
{
	struct bo_opts o = {
		.nodes = 1000000, .dim = 384, .dir = "/tmp/lodefs-bench-open",
		.repeat = 1, .digits = 9, .python = 1,
	};
	static char a_self[] = "/proc/self/exe", a_child[] = "--child",
		    a_store[] = "store", a_engine[] = "engine",
		    a_py[] = BO_PYTHON, a_c[] = "-c", a_load[] = BO_PY_LOAD;
	char store[4096], persist[4096], vpath[4200], dpath[4200], why[128];
	char *lode_argv[6], *eng_argv[6], *py_argv[6], dim[16];
	double *t_open, *t_first, *t_exit, *t_py, *t_eng, *rss, *py_rss;
	double raw, sec_l, sec_p = 0, ratio_mem;
	uint64_t text_bytes = 0;
	struct bo_run r;
	int i, dropped = 1, py_failed = 0;

	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return bo_child(argc, argv);
	bo_parse(argc, argv, &o);
	bo_prepare(&o, &text_bytes);

	snprintf(store, sizeof(store), "%s/store", o.dir);
	snprintf(persist, sizeof(persist), "%s/persist", o.dir);
	snprintf(vpath, sizeof(vpath), "%s/default__vector_store.json",
		 persist);
	snprintf(dpath, sizeof(dpath), "%s/docstore.json", persist);
	raw = (double)o.nodes * o.dim * 4 + (double)text_bytes;
	printf("data         %zu nodes x %u dims: vectors %.1f MB + node text "
	       "%.1f MB = %.1f MB raw\n",
	       o.nodes, o.dim, o.nodes * (double)o.dim * 4 / 1e6,
	       text_bytes / 1e6, raw / 1e6);
	printf("on disk      store %.1f MB; persist %.1f MB (floats %%.%dg)\n",
	       bo_du(store) / 1e6, bo_du(persist) / 1e6, o.digits);

	lode_argv[0] = a_self;
	lode_argv[1] = a_child;
	lode_argv[2] = store;
	snprintf(dim, sizeof(dim), "%u", o.dim);
	lode_argv[3] = dim;
	lode_argv[4] = a_store;
	lode_argv[5] = NULL;
	memcpy(eng_argv, lode_argv, sizeof(eng_argv));
	eng_argv[4] = a_engine;
	py_argv[0] = a_py;
	py_argv[1] = a_c;
	py_argv[2] = a_load;
	py_argv[3] = vpath;
	py_argv[4] = dpath;
	py_argv[5] = NULL;

	t_open = calloc(7 * (size_t)o.repeat, sizeof(double));
	if (!t_open)
		bo_die("out of memory");
	t_first = t_open + o.repeat;
	t_exit = t_first + o.repeat;
	t_py = t_exit + o.repeat;
	t_eng = t_py + o.repeat;
	rss = t_eng + o.repeat;
	py_rss = rss + o.repeat;

	for (i = 0; i < o.repeat; i++) {
		if (bo_drop_caches())
			dropped = 0;
		bo_spawn(lode_argv, &r);
		if (!WIFEXITED(r.status) || WEXITSTATUS(r.status))
			bo_die("lodefs child: %s",
			       bo_status_text(r.status, why, sizeof(why)));
		t_open[i] = (bo_field(&r, "open_ns") - r.t0) / 1e9;
		t_first[i] = (bo_field(&r, "vec_ns") - r.t0) / 1e9;
		t_exit[i] = (r.end - r.t0) / 1e9;
		rss[i] = bo_field(&r, "hwm_kib") * 1024;
		printf("lodefs #%d    open %.3f s, first answer %.3f s "
		       "(vector top-10, top score %.4f), keyword answer "
		       "%.3f s, exit %.3f s; peak RSS %.1f MB (wait4 %.1f "
		       "MB); engine mem %.1f MB\n",
		       i + 1, t_open[i], t_first[i], bo_field(&r, "vec_top"),
		       (bo_field(&r, "kw_ns") - r.t0) / 1e9, t_exit[i],
		       rss[i] / 1e6, r.maxrss_kib * 1024 / 1e6,
		       bo_field(&r, "mem_bytes") / 1e6);
		if (bo_field(&r, "vec_hits") != 10 ||
		    bo_field(&r, "nodes") != (double)o.nodes)
			printf("WARNING      %g vector hits, %g nodes "
			       "(expected 10, %zu)\n",
			       bo_field(&r, "vec_hits"), bo_field(&r, "nodes"),
			       o.nodes);
		if (o.split) {
			if (bo_drop_caches())
				dropped = 0;
			bo_spawn(eng_argv, &r);
			if (!WIFEXITED(r.status) || WEXITSTATUS(r.status))
				bo_die("engine child: %s",
				       bo_status_text(r.status, why,
						      sizeof(why)));
			t_eng[i] = (bo_field(&r, "open_ns") - r.t0) / 1e9;
			printf("engine #%d    engine_open alone %.3f s, peak "
			       "RSS %.1f MB, engine mem %.1f MB\n",
			       i + 1, t_eng[i],
			       bo_field(&r, "hwm_kib") * 1024 / 1e6,
			       bo_field(&r, "mem_bytes") / 1e6);
		}
		if (!o.python || py_failed)
			continue;
		if (bo_drop_caches())
			dropped = 0;
		bo_spawn(py_argv, &r);
		t_py[i] = (r.end - r.t0) / 1e9;
		py_rss[i] = r.maxrss_kib * 1024.0;
		printf("python #%d    json.load of both files %.3f s, peak RSS "
		       "%.1f MB: %s\n",
		       i + 1, t_py[i], py_rss[i] / 1e6,
		       bo_status_text(r.status, why, sizeof(why)));
		if (!WIFEXITED(r.status) || WEXITSTATUS(r.status))
			py_failed = 1;
	}
	if (!dropped)
		printf("WARNING      could not drop the page cache (not root?): "
		       "the figures are warm\n");

	sec_l = bo_median(t_first, o.repeat);
	ratio_mem = bo_median(rss, o.repeat) / raw;
	printf("\nmedians of %d run%s, N=%zu D=%u, page cache dropped before "
	       "each step\n",
	       o.repeat, o.repeat > 1 ? "s" : "", o.nodes, o.dim);
	printf("lodefs       open %.3f s, first answer %.3f s, exit %.3f s, "
	       "peak RSS %.1f MB\n",
	       bo_median(t_open, o.repeat), sec_l, bo_median(t_exit, o.repeat),
	       bo_median(rss, o.repeat) / 1e6);
	if (o.split)
		printf("split        engine_open %.3f s; store layer (keyword "
		       "index from node JSON) ~%.3f s\n",
		       bo_median(t_eng, o.repeat),
		       bo_median(t_open, o.repeat) -
			       bo_median(t_eng, o.repeat));
	if (o.python && !py_failed) {
		sec_p = bo_median(t_py, o.repeat);
		printf("python       %.3f s, peak RSS %.1f MB\n", sec_p,
		       bo_median(py_rss, o.repeat) / 1e6);
		printf("ratio        python/lodefs %.1fx (target >= 20x)\n",
		       sec_p / sec_l);
	} else if (o.python) {
		printf("python       FAILED (see above): no ratio\n");
	}
	printf("memory       lodefs peak RSS / (vectors + node text) = %.2f "
	       "(target <= 1.3)\n",
	       ratio_mem);

	if (!o.keep) {
		char params[4096];

		nftw(store, bo_rm_fn, 16, FTW_DEPTH | FTW_PHYS);
		nftw(persist, bo_rm_fn, 16, FTW_DEPTH | FTW_PHYS);
		snprintf(params, sizeof(params), "%s/params", o.dir);
		unlink(params);
		rmdir(o.dir);
	}
	free(t_open);
	return 0;
}
