/* cranfield.c - BM25 retrieval quality and speed on Cranfield. */
#include "core/text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * usage: bench_cranfield [-B | -w BIGRAM_WEIGHT] [DIR]
 *
 * -B adds bigrams at TEXT_BM25_BIGRAM_WEIGHT, -w at the weight given.
 *
 * DIR holds cran.all.1400, cran.qry and cranqrel; by default it is
 * $LODEFS_SHARED/fixtures/cranfield.  A document is its title and abstract
 * (.T and .W); a query is its whole .W text.  Following the collection's
 * README: the query id in cranqrel is the query's 1-based position in
 * cran.qry, the one row per query with grade -1 is dropped, and grades 1..4
 * count as relevant.  Prints binary nDCG@10 and recall@100 averaged over
 * the queries with at least one relevant document, and the wall times.
 */

#define CRAN_DOCS     1400
#define CRAN_NDCG_K   10
#define CRAN_RECALL_K 100

struct cran_buf {
	char *s;
	size_t len, cap;
};

struct cran_item {
	int id;
	struct cran_buf text;
};

struct cran_set {
	struct cran_item *v;
	size_t n, cap;
};

static int cran_append(struct cran_buf *b, const char *s, size_t n)
{
	if (b->len + n + 2 > b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		char *p;

		while (cap < b->len + n + 2)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p)
			return -ENOMEM;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len++] = '\n';
	b->s[b->len] = '\0';
	return 0;
}

static char *cran_slurp(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	long size;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cranfield: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1))) {
		if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		} else {
			buf[size] = '\0';
		}
	}
	fclose(f);
	if (!buf)
		fprintf(stderr, "cranfield: cannot read %s\n", path);
	return buf;
}

/*
 * Parses the SMART format: ".I n" starts a record, a line that is exactly
 * ".T", ".A", ".B" or ".W" switches field, and the text of the fields named
 * in `keep` is gathered (a few records repeat a marker; we keep going).
 */
static int cran_parse(char *data, const char *keep, struct cran_set *set)
{
	char *line = data, *nl, field = 0;
	struct cran_item *cur = NULL;
	size_t n;

	for (; *line; line = nl ? nl + 1 : line + n) {
		nl = strchr(line, '\n');
		n = nl ? (size_t)(nl - line) : strlen(line);
		while (n && (line[n - 1] == ' ' || line[n - 1] == '\r' ||
			     line[n - 1] == '\t'))
			n--;
		if (n >= 3 && strncmp(line, ".I ", 3) == 0) {
			if (set->n == set->cap) {
				size_t cap = set->cap ? 2 * set->cap : 256;
				struct cran_item *v =
					realloc(set->v, cap * sizeof(*v));

				if (!v)
					return -ENOMEM;
				set->v = v;
				set->cap = cap;
			}
			cur = &set->v[set->n++];
			memset(cur, 0, sizeof(*cur));
			cur->id = atoi(line + 3);
			field = 0;
		} else if (n == 2 && line[0] == '.' &&
			   strchr("TABW", line[1])) {
			field = line[1];
		} else if (cur && field && strchr(keep, field)) {
			if (cran_append(&cur->text, line, n))
				return -ENOMEM;
		}
		if (!nl)
			break;
	}
	return 0;
}

static double cran_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cran_free(struct cran_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->v[i].text.s);
	free(set->v);
}

int main(int argc, char **argv)
{
	struct text_index_opts opts = { TEXT_BM25_K1, TEXT_BM25_B, 0 };
	struct cran_set docs = { 0 }, queries = { 0 };
	struct text_index_stats ist;
	struct text_index *idx = NULL;
	char *all = NULL, *qry = NULL, *rel = NULL, *p;
	unsigned char(*relevant)[CRAN_DOCS + 1] = NULL;
	size_t *nrel = NULL, i, j, judged = 0, used = 0;
	const char *dir = NULL, *shared;
	char def[4096], id[16];
	double ndcg = 0, recall = 0, t0, t1, t2;
	int rc = 1, q, d, g, opt;

	for (opt = 1; opt < argc; opt++) {
		if (strcmp(argv[opt], "-w") == 0 && opt + 1 < argc)
			opts.bigram_weight = atof(argv[++opt]);
		else if (strcmp(argv[opt], "-B") == 0)
			opts.bigram_weight = TEXT_BM25_BIGRAM_WEIGHT;
		else
			dir = argv[opt];
	}
	if (!dir) {
		shared = getenv("LODEFS_SHARED");
		snprintf(def, sizeof(def), "%s/fixtures/cranfield",
			 shared ? shared : "../shared");
		dir = def;
	}
	all = cran_slurp(dir, "cran.all.1400");
	qry = cran_slurp(dir, "cran.qry");
	rel = cran_slurp(dir, "cranqrel");
	if (!all || !qry || !rel)
		goto out;
	if (cran_parse(all, "TW", &docs) || cran_parse(qry, "W", &queries) ||
	    text_index_new_opts(&opts, &idx))
		goto out;
	relevant = calloc(queries.n + 1, sizeof(*relevant));
	nrel = calloc(queries.n + 1, sizeof(*nrel));
	if (!relevant || !nrel)
		goto out;
	for (p = rel; sscanf(p, "%d %d %d", &q, &d, &g) == 3;) {
		if (g >= 1 && g <= 4 && q >= 1 && (size_t)q <= queries.n &&
		    d >= 1 && d <= CRAN_DOCS && !relevant[q][d]) {
			relevant[q][d] = 1;
			nrel[q]++;
			judged++;
		}
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}

	t0 = cran_now();
	for (i = 0; i < docs.n; i++) {
		snprintf(id, sizeof(id), "%d", docs.v[i].id);
		if (text_index_put(idx, id,
				   docs.v[i].text.s ? docs.v[i].text.s : "",
				   docs.v[i].text.len))
			goto out;
	}
	t1 = cran_now();
	for (i = 0; i < queries.n; i++) {
		struct text_results res;
		double dcg = 0, idcg = 0;
		size_t found = 0, qn = i + 1;

		if (text_index_search(
			    idx, queries.v[i].text.s ? queries.v[i].text.s : "",
			    CRAN_RECALL_K, NULL, NULL, &res))
			goto out;
		if (nrel[qn]) {
			for (j = 0; j < res.n; j++) {
				d = atoi(res.hits[j].id);
				if (d < 1 || d > CRAN_DOCS || !relevant[qn][d])
					continue;
				found++;
				if (j < CRAN_NDCG_K)
					dcg += 1 / log2((double)j + 2);
			}
			for (j = 0; j < nrel[qn] && j < CRAN_NDCG_K; j++)
				idcg += 1 / log2((double)j + 2);
			ndcg += dcg / idcg;
			recall += (double)found / nrel[qn];
			used++;
		}
		text_results_free(&res);
	}
	t2 = cran_now();
	if (!used)
		goto out;
	printf("docs %zu queries %zu (with judgments %zu) relevant pairs %zu\n",
	       docs.n, queries.n, used, judged);
	printf("bm25 k1=%.2f b=%.2f bigram_weight=%.3f\n", opts.k1, opts.b,
	       opts.bigram_weight);
	printf("nDCG@10 %.4f\nrecall@100 %.4f\n", ndcg / used, recall / used);
	text_index_stats(idx, &ist);
	printf("index: %llu terms, %llu postings, %.1f MB\n",
	       (unsigned long long)ist.terms, (unsigned long long)ist.postings,
	       ist.memory_bytes / 1e6);
	printf("index %.1f ms, %zu queries %.1f ms (%.3f ms/query)\n",
	       (t1 - t0) * 1e3, queries.n, (t2 - t1) * 1e3,
	       (t2 - t1) * 1e3 / queries.n);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "cranfield: failed\n");
	text_index_free(idx);
	cran_free(&docs);
	cran_free(&queries);
	free(relevant);
	free(nrel);
	free(all);
	free(qry);
	free(rel);
	return rc;
}
