/* bench_open_gen.c - bench_open's data: TextNodes, vectors, persist JSON. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "backends/backend.h"
#include "core/engine.h"
#include "core/store.h"
#include "tools/bench/bench_open.h"

/* --- deterministic randomness (splitmix64) ------------------------------ */

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
void bo_rand_vec(struct bo_rng *r, float *v, uint32_t dim)
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
	snprintf(out, 37,
		 "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
		 "-%012" PRIx64,
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
	"the",	   "of",       "and",	   "to",       "in",	   "a",
	"is",	   "that",     "for",	   "it",       "as",	   "was",
	"with",	   "be",       "by",	   "on",       "not",	   "he",
	"this",	   "are",      "or",	   "his",      "from",	   "at",
	"which",   "but",      "have",	   "an",       "had",	   "they",
	"you",	   "were",     "their",	   "one",      "all",	   "we",
	"can",	   "her",      "has",	   "there",    "been",	   "if",
	"more",	   "when",     "will",	   "would",    "who",	   "so",
	"no",	   "river",    "mountain", "valley",   "harvest",  "ancient",
	"city",	   "market",   "winter",   "summer",   "garden",   "orchard",
	"apple",   "farmer",   "bridge",   "tower",    "engine",   "storage",
	"memory",  "signal",   "window",   "library",  "letter",   "record",
	"season",  "village",  "harbour",  "ship",     "voyage",   "island",
	"forest",  "stone",    "metal",	   "copper",   "silver",   "bread",
	"water",   "fire",     "light",	   "shadow",   "music",	   "painter",
	"teacher", "student",  "question", "answer",   "number",   "measure",
	"weight",  "distance", "journey",  "road",     "station",  "railway",
	"machine", "factory",  "worker",   "merchant", "coin",	   "price",
	"trade",   "law",      "court",	   "king",     "queen",	   "council",
	"church",  "school",   "doctor",   "fever",    "medicine", "plant",
	"seed",	   "flower",   "leaf",	   "root",     "branch",   "bird",
	"horse",   "sheep",    "wool",	   "cloth",    "thread",   "needle",
	"kitchen", "table",    "chair",	   "door",     "roof",	   "wall",
	"floor",   "candle",   "lamp",	   "clock",    "hour",	   "morning",
	"evening", "night",    "moon",	   "star",     "planet",   "ocean",
	"wave",	   "storm",    "rain",	   "snow",     "wind",	   "cloud",
	"north",   "south",    "east",	   "west",     "large",	   "small",
	"old",	   "new",      "early",	   "late",     "quiet",	   "bright",
	"dark",	   "heavy",    "careful",  "simple",   "strange",  "common",
	"rare",	   "quick",    "slow",	   "grow",     "build",	   "carry",
	"write",   "read",     "count",	   "travel",   "follow",   "discover",
	"explain", "remember", "repair",   "gather",   "divide",   "measure",
	"observe", "describe", "compare",  "produce",  "store",	   "open",
	"close",   "between",  "under",	   "over",     "through",  "after",
	"before",  "during",   "without",  "across",
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
	BO_DS_META, /* docstore/metadata */
	BO_DS_DATA, /* docstore/data */
	BO_DS_REFS, /* docstore/ref_doc_info */
	BO_VS_EMB,  /* embedding_dict */
	BO_VS_REF,  /* text_id_to_ref_doc_id */
	BO_VS_META, /* metadata_dict */
	BO_NPARTS,
};

static const char *const bo_part_key[BO_NPARTS] = {
	"docstore/metadata", "docstore/data",	      "docstore/ref_doc_info",
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
		bo_printf(
			b,
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
		bo_check(engine_batch_put_json(g->batch, "docstore/data",
					       nd->id, b->s, b->len),
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

void bo_mkdir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		bo_die("mkdir %s: %s", path, strerror(errno));
}

int bo_generate(const struct bo_opts *o)
{
	struct bo_gen g = { .o = o, .rng = { BO_SEED } };
	struct store_opts so;
	struct store *store;
	struct backend *be;
	char path[4096];
	size_t done = 0, doc = 0;
	uint64_t t0 = bo_now_ns(), t1, t2, t3;
	FILE *f;
	int p, rc;

	snprintf(path, sizeof(path), "%s/store", o->dir);
	bo_check(backend_local_open_flags(path, BACKEND_LOCAL_NO_FSYNC, &be),
		 "backend_local_open_flags");
	/*
	 * Through the store, so that its observer sees every commit and its
	 * checkpoint holds whatever the store saves there; the batches go
	 * straight to the engine underneath.
	 */
	store_opts_init(&so);
	rc = store_open(be, &so, &store);
	if (rc)
		bo_die("store_open: %s (%s)", strerror(-rc),
		       store_last_error());
	g.eng = store_engine(store);
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
	store_close(store);
	backend_close(be);
	t3 = bo_now_ns();

	snprintf(path, sizeof(path), "%s/params", o->dir);
	f = fopen(path, "w");
	if (!f)
		bo_die("%s: %s", path, strerror(errno));
	fprintf(f,
		"generator %d\nnodes %zu\ndim %u\ndigits %d\ndocs %zu\n"
		"text_bytes %" PRIu64 "\n",
		BO_GENERATOR, o->nodes, o->dim, o->digits, doc, g.text_bytes);
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
