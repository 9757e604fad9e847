/* text_persist.c - BM25 index: build by text_index_put vs save and load. */
#include "core/text.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * usage: bench_text_persist [-n DOCS] [-c CHURN_PCT] [-B] [-q QUERIES]
 *                           [--build-only] [-o FILE]
 *        bench_text_persist -i FILE [-r REPEAT]
 *
 * 1. Builds an index of DOCS (default 1,000,000) synthetic documents of
 *    60-100 words each, named by UUID-like ids, with text_index_put, and
 *    times the puts alone (generating the text is timed apart).  Words are
 *    drawn from a Zipf (s = 1) law over a vocabulary of 50,000 generated
 *    words, with English's stopwords and suffixes (-s, -ing, -ed, -ly,
 *    -tion...) so that the stopword filter and the stemmer do real work;
 *    sentences are capitalised and punctuated.
 * 2. With -c, puts CHURN_PCT% as many documents again under random ids
 *    of the first ones (replacing them, or bringing back deleted ones) and
 *    deletes as many random ids, so that the save has dead postings to
 *    leave out.
 * 3. Saves the index into a memory buffer (the engine's checkpoint object
 *    stands in for it) and loads it back, timing both; prints the bytes,
 *    the heap each index holds (mallinfo2) and its own estimate.
 * 4. Runs QUERIES (default 500) random queries of 1-4 words on both and
 *    counts those whose hits or scores differ at all (must be 0).
 *
 * Times are wall clock and, in parentheses, this thread's CPU time,
 * which is steadier on a shared machine.  -B indexes bigrams at
 * TEXT_BM25_BIGRAM_WEIGHT.  --build-only stops after step 1 (for profiling
 * text_index_put).  -o writes the saved bytes to FILE; -i only loads
 * FILE, REPEAT times (for profiling text_index_load).  Build with
 * buildtype=release.
 */

#define TP_VOCAB    50000
#define TP_WORD_MAX 24

struct tp_rng {
	uint64_t s;
};

static uint64_t tp_next(struct tp_rng *r)
{
	/* splitmix64: fast, and any seed is a good one */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t tp_below(struct tp_rng *r, uint32_t n)
{
	return (uint32_t)(((tp_next(r) >> 32) * n) >> 32);
}

static double tp_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tp_now(void)
{
	return tp_clock(CLOCK_MONOTONIC);
}

/* CPU time: steadier than wall time on a shared machine. */
static double tp_cpu(void)
{
	return tp_clock(CLOCK_THREAD_CPUTIME_ID);
}

static size_t tp_heap(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

struct tp_corpus {
	char words[TP_VOCAB][TP_WORD_MAX];
	double cdf[TP_VOCAB]; /* Zipf, by rank */
};

static const char *const tp_stop[] = {
	"the",	 "of",	  "and",  "to",	  "a",	  "in",	   "is",   "it", "that",
	"for",	 "was",	  "on",	  "are",  "as",	  "with",  "be",   "at", "this",
	"by",	 "not",	  "or",	  "but",  "an",	  "they",  "will", "no", "if",
	"their", "there", "into", "such", "then", "these",
};

static void tp_corpus_init(struct tp_corpus *c, struct tp_rng *r)
{
	static const char *const onset[] = { "b",  "c",	 "d",  "f",  "g",
					     "h",  "l",	 "m",  "n",  "p",
					     "r",  "s",	 "t",  "v",  "w",
					     "br", "cr", "st", "tr", "pl",
					     "sh", "ch", "th", "gr", "" };
	static const char *const nucleus[] = { "a",  "e",  "i",	 "o",  "u",
					       "ea", "ou", "ai", "io", "y" };
	static const char *const coda[] = { "",	  "",	"n",  "r",  "l",
					    "s",  "t",	"nd", "rt", "m",
					    "ck", "st", "x" };
	static const char *const suffix[] = {
		"",	"",	"",    "",	"s",	 "es",	    "ing",
		"ed",	"ly",	"er",  "tion",	"ation", "ness",    "ment",
		"able", "ical", "ize", "ities", "ful",	 "ousness",
	};
	size_t i, nstop = sizeof(tp_stop) / sizeof(*tp_stop);
	double sum = 0;

	for (i = 0; i < TP_VOCAB; i++) {
		/* English's stopwords are among its most frequent words */
		if (i % 2 == 0 && i / 2 < nstop) {
			snprintf(c->words[i], TP_WORD_MAX, "%s",
				 tp_stop[i / 2]);
		} else {
			/* frequent words are short, as in English */
			uint32_t syl = i < 500	  ? 1
				       : i < 5000 ? 1 + tp_below(r, 2)
						  : 2 + tp_below(r, 2);
			uint32_t s;
			size_t n = 0;

			c->words[i][0] = '\0';
			for (s = 0; s < syl; s++)
				n += (size_t)snprintf(c->words[i] + n,
						      TP_WORD_MAX - n, "%s%s%s",
						      onset[tp_below(r, 25)],
						      nucleus[tp_below(r, 10)],
						      coda[tp_below(r, 13)]);
			if (n < TP_WORD_MAX - 8 && tp_below(r, 3) == 0)
				snprintf(c->words[i] + n, TP_WORD_MAX - n, "%s",
					 suffix[tp_below(r, 20)]);
		}
		sum += 1.0 / (double)(i + 1);
		c->cdf[i] = sum;
	}
	for (i = 0; i < TP_VOCAB; i++)
		c->cdf[i] /= sum;
}

static const char *tp_word(const struct tp_corpus *c, struct tp_rng *r)
{
	double u = (double)(tp_next(r) >> 11) / 9007199254740992.0;
	size_t lo = 0, hi = TP_VOCAB - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return c->words[lo];
}

/* Writes a document of 60-100 words into buf (>= 4096 bytes). */
static size_t tp_doc(const struct tp_corpus *c, struct tp_rng *r, char *buf)
{
	uint32_t words = 60 + tp_below(r, 41), i, sentence = 0;
	size_t n = 0;

	for (i = 0; i < words; i++) {
		const char *w = tp_word(c, r);
		size_t l = strlen(w);

		memcpy(buf + n, w, l);
		if (sentence == 0)
			buf[n] = (char)(buf[n] - 'a' + 'A');
		n += l;
		if (++sentence > 6 && tp_below(r, 8) == 0) {
			buf[n++] = '.';
			sentence = 0;
		} else if (tp_below(r, 12) == 0) {
			buf[n++] = ',';
		}
		buf[n++] = ' ';
	}
	buf[n - 1] = '.';
	buf[n] = '\0';
	return n;
}

static void tp_id(uint64_t i, char *out)
{
	struct tp_rng r = { i * 0x2545f4914f6cdd1dull + 1 };
	uint64_t a = tp_next(&r), b = tp_next(&r);

	snprintf(out, 40,
		 "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64
		 "-%012" PRIx64,
		 a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 48,
		 b & (uint64_t)0xffffffffffff);
}

struct tp_buf {
	unsigned char *p;
	size_t len, cap;
};

static int tp_emit(void *ctx, const void *data, size_t len)
{
	struct tp_buf *b = ctx;

	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap + b->cap / 2 : 1 << 20;
		unsigned char *p;

		while (cap < b->len + len)
			cap += cap / 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static void tp_print_stats(const char *what, struct text_index *idx,
			   size_t heap)
{
	struct text_index_stats st;

	text_index_stats(idx, &st);
	printf("%-7s docs %" PRIu64 " N %" PRIu64 " avgdl %.3f terms %" PRIu64
	       " postings %" PRIu64 " dead %" PRIu64
	       "\n        heap %.1f MB (index's estimate %.1f MB)\n",
	       what, st.docs, st.n, st.avgdl, st.terms, st.postings, st.dead,
	       (double)heap / 1e6, (double)st.memory_bytes / 1e6);
}

/* Whether both indexes give exactly the same hits and scores. */
static int tp_same(struct text_index *a, struct text_index *b,
		   const char *query)
{
	struct text_results ra, rb;
	size_t i;
	int same;

	if (text_index_search(a, query, 100, NULL, NULL, &ra))
		return 0;
	if (text_index_search(b, query, 100, NULL, NULL, &rb)) {
		text_results_free(&ra);
		return 0;
	}
	same = ra.n == rb.n;
	for (i = 0; same && i < ra.n; i++)
		same = strcmp(ra.hits[i].id, rb.hits[i].id) == 0 &&
		       ra.hits[i].score == rb.hits[i].score;
	text_results_free(&ra);
	text_results_free(&rb);
	return same;
}

/* Loads a saved index from path `repeat` times; returns 0 or 1. */
static int tp_load_file(const char *path, unsigned repeat)
{
	struct tp_buf in = { 0 };
	struct text_index *idx;
	char chunk[1 << 16];
	size_t n;
	double t, c;
	FILE *f = fopen(path, "rb");
	int err = 0;

	if (!f) {
		perror(path);
		return 1;
	}
	while (!err && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		err = tp_emit(&in, chunk, n);
	fclose(f);
	while (!err && repeat--) {
		t = tp_now();
		c = tp_cpu();
		err = text_index_load(in.p, in.len, &idx);
		c = tp_cpu() - c;
		t = tp_now() - t;
		if (!err)
			printf("load    %.1f MB in %.3f s (cpu %.3f s; %.0f "
			       "MB/s)\n",
			       (double)in.len / 1e6, t, c,
			       (double)in.len / 1e6 / t);
		text_index_free(idx);
	}
	if (err)
		fprintf(stderr, "%s: %s\n", path, strerror(-err));
	free(in.p);
	return err != 0;
}

int main(int argc, char **argv)
{
	struct text_index_opts opts = { TEXT_BM25_K1, TEXT_BM25_B, 0 };
	struct text_index *idx = NULL, *loaded = NULL;
	struct tp_corpus *c = NULL;
	struct tp_rng r = { 42 };
	struct tp_buf out = { 0 };
	uint64_t ndocs = 1000000, i, bytes = 0, churn = 0;
	size_t queries = 500, heap0, heap_built, heap_loaded, bad = 0;
	double t, c0, t_gen = 0, t_put = 0, t_churn = 0, t_save, t_load;
	double c_put = 0, c_save, c_load;
	const char *save_to = NULL, *load_from = NULL;
	unsigned repeat = 1;
	int build_only = 0, rc = 1, a, err;
	char text[4096], id[40];

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "-n") == 0 && a + 1 < argc)
			ndocs = strtoull(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "-c") == 0 && a + 1 < argc)
			churn = strtoull(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "-q") == 0 && a + 1 < argc)
			queries = strtoull(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "-B") == 0)
			opts.bigram_weight = TEXT_BM25_BIGRAM_WEIGHT;
		else if (strcmp(argv[a], "-o") == 0 && a + 1 < argc)
			save_to = argv[++a];
		else if (strcmp(argv[a], "-i") == 0 && a + 1 < argc)
			load_from = argv[++a];
		else if (strcmp(argv[a], "-r") == 0 && a + 1 < argc)
			repeat = (unsigned)strtoul(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--build-only") == 0)
			build_only = 1;
		else {
			fprintf(stderr,
				"usage: %s [-n DOCS] [-c CHURN_PCT] [-B] "
				"[-q QUERIES] [--build-only] [-o FILE]\n"
				"       %s -i FILE [-r REPEAT]\n",
				argv[0], argv[0]);
			return 2;
		}
	}
	if (load_from)
		return tp_load_file(load_from, repeat);
	c = malloc(sizeof(*c));
	if (!c)
		goto out;
	tp_corpus_init(c, &r);
	heap0 = tp_heap();
	if (text_index_new_opts(&opts, &idx))
		goto out;

	for (i = 0; i < ndocs; i++) {
		size_t len;

		t = tp_now();
		tp_id(i, id);
		len = tp_doc(c, &r, text);
		bytes += len;
		t_gen += tp_now() - t;
		t = tp_now();
		c0 = tp_cpu();
		err = text_index_put(idx, id, text, len);
		c_put += tp_cpu() - c0;
		t_put += tp_now() - t;
		if (err) {
			fprintf(stderr, "put: %s\n", strerror(-err));
			goto out;
		}
	}
	printf("build   %" PRIu64 " docs, %.1f MB of text: put %.2f s "
	       "(cpu %.2f s; %.0f docs/s, %.1f MB/s), generating it %.2f s\n",
	       ndocs, (double)bytes / 1e6, t_put, c_put, (double)ndocs / t_put,
	       (double)bytes / 1e6 / t_put, t_gen);
	if (build_only) {
		rc = 0;
		goto out;
	}
	if (churn) {
		uint64_t n = ndocs * churn / 100;

		t = tp_now();
		for (i = 0; i < n; i++) {
			size_t len;

			tp_id(tp_below(&r, (uint32_t)ndocs), id);
			len = tp_doc(c, &r, text);
			if (text_index_put(idx, id, text, len))
				goto out;
			tp_id(tp_below(&r, (uint32_t)ndocs), id);
			err = text_index_del(idx, id);
			if (err && err != -ENOENT)
				goto out;
		}
		t_churn = tp_now() - t;
		printf("churn   %" PRIu64 " replaces and deletes, %.2f s\n", n,
		       t_churn);
	}
	heap_built = tp_heap() - heap0;
	tp_print_stats("built", idx, heap_built);

	t = tp_now();
	c0 = tp_cpu();
	err = text_index_save(idx, tp_emit, &out);
	c_save = tp_cpu() - c0;
	t_save = tp_now() - t;
	if (err) {
		fprintf(stderr, "save: %s\n", strerror(-err));
		goto out;
	}
	if (save_to) {
		FILE *f = fopen(save_to, "wb");

		if (!f || fwrite(out.p, 1, out.len, f) != out.len ||
		    fclose(f) != 0) {
			perror(save_to);
			goto out;
		}
	}
	heap0 = tp_heap();
	t = tp_now();
	c0 = tp_cpu();
	err = text_index_load(out.p, out.len, &loaded);
	c_load = tp_cpu() - c0;
	t_load = tp_now() - t;
	if (err) {
		fprintf(stderr, "load: %s\n", strerror(-err));
		goto out;
	}
	heap_loaded = tp_heap() - heap0;
	printf("save    %.1f MB in %.3f s (cpu %.3f s; %.0f MB/s, into a "
	       "growing buffer)\n",
	       (double)out.len / 1e6, t_save, c_save,
	       (double)out.len / 1e6 / t_save);
	printf("load    %.1f MB in %.3f s (cpu %.3f s; %.0f MB/s)\n",
	       (double)out.len / 1e6, t_load, c_load,
	       (double)out.len / 1e6 / t_load);
	tp_print_stats("loaded", loaded, heap_loaded);

	for (i = 0; i < queries; i++) {
		char q[256];
		uint32_t w = 1 + tp_below(&r, 4), j;
		size_t n = 0;

		for (j = 0; j < w; j++)
			n += (size_t)snprintf(q + n, sizeof(q) - n, "%s ",
					      c->words[tp_below(&r, 5000)]);
		bad += !tp_same(idx, loaded, q);
	}
	printf("verify  %zu queries, %zu differ\n", queries, bad);
	rc = bad != 0;
out:
	if (rc == 1)
		fprintf(stderr, "bench_text_persist: failed\n");
	text_index_free(loaded);
	text_index_free(idx);
	free(out.p);
	free(c);
	return rc;
}
