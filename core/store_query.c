/* store_query.c - retrieval: BM25, exact cosine, hybrid fusion, MMR, results. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_int.h"
#include "core/vec.h"

/* Which nodes a query may return, when it is restricted at all. */
struct store_allow {
	struct strset *set; /* NULL: every node */
};

static int store_allow_fn(void *arg, const char *id)
{
	const struct store_allow *a = arg;

	return !a->set || strset_has(a->set, id);
}

struct store_allow_scan {
	struct store_allow *allow;
	const struct strset *candidates; /* NULL: all nodes */
	const struct vec_filters *filters;
	int rc;
};

static int store_allow_node(void *arg, const char *key, enum engine_type type,
			    const void *data, size_t len)
{
	struct store_allow_scan *sc = arg;
	json_t *w, *meta;
	int ok = 1;

	if (sc->candidates && !strset_has(sc->candidates, key))
		return 0;
	if (sc->filters) {
		w = json_loadb(data, len, 0, NULL);
		meta = json_object_get(json_object_get(w, "__data__"),
				       "metadata");
		/* vec_filter_match takes NULL (a node without metadata) as {} */
		ok = vec_filter_match(sc->filters, meta);
		json_decref(w);
	}
	if (ok && strset_add(sc->allow->set, key))
		return -ENOMEM;
	return 0;
}

/* Collects the node ids of the restricting ref docs and node ids. */
static int store_query_candidates(struct store *s, const struct store_query *q,
				  struct strset **out)
{
	struct strset *set;
	size_t i, j;
	int rc = 0;

	*out = NULL;
	if (!q->doc_ids && !q->node_ids)
		return 0;
	set = strset_new();
	if (!set)
		return -ENOMEM;
	for (i = 0; i < q->n_node_ids && !rc; i++)
		rc = strset_add(set, q->node_ids[i]);
	for (i = 0; i < q->n_doc_ids && !rc; i++) {
		json_t *info, *ids;

		if (store_get_object(s, STORE_C_REFS, q->doc_ids[i], &info))
			continue;
		ids = json_object_get(info, "node_ids");
		for (j = 0; j < json_array_size(ids) && !rc; j++) {
			const char *id =
				json_string_value(json_array_get(ids, j));

			if (id)
				rc = strset_add(set, id);
		}
		json_decref(info);
	}
	if (rc) {
		strset_free(set);
		return rc;
	}
	*out = set;
	return 0;
}

/*
 * LlamaIndex applies node_ids, doc_ids and filters together (AND); with
 * both node_ids and doc_ids a node must match either list.
 */
static int store_query_allow(struct store *s, const struct store_query *q,
			     struct store_allow *allow)
{
	struct store_allow_scan sc = { 0 };
	struct strset *cand;
	int rc;

	allow->set = NULL;
	rc = store_query_candidates(s, q, &cand);
	if (rc)
		return rc;
	if (!cand && !q->filters)
		return 0;
	if (cand && !q->filters) {
		allow->set = cand;
		return 0;
	}
	allow->set = strset_new();
	if (!allow->set) {
		strset_free(cand);
		return -ENOMEM;
	}
	sc.allow = allow;
	sc.candidates = cand;
	sc.filters = q->filters;
	rc = engine_foreach(s->eng, STORE_C_DATA, store_allow_node, &sc);
	strset_free(cand);
	if (rc) {
		strset_free(allow->set);
		allow->set = NULL;
	}
	return rc;
}

/* A scored id, the common currency of the retrievers below. */
struct store_scored {
	char *id;
	double score;
};

static void store_scored_free(struct store_scored *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i].id);
	free(v);
}

static int store_keyword(struct store *s, const struct store_query *q, size_t k,
			 struct store_allow *allow, struct store_scored **out,
			 size_t *n)
{
	struct text_results r = { 0 };
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	if (!q->text || !*q->text)
		return store_fail(-EINVAL, "a keyword query needs query text");
	rc = text_index_search(s->bm25, q->text, k,
			       allow->set ? store_allow_fn : NULL, allow, &r);
	if (rc)
		return rc;
	*out = calloc(r.n ? r.n : 1, sizeof(**out));
	if (!*out) {
		text_results_free(&r);
		return -ENOMEM;
	}
	for (i = 0; i < r.n; i++) {
		(*out)[i].id = r.hits[i].id;
		(*out)[i].score = r.hits[i].score;
		r.hits[i].id = NULL;
	}
	*n = r.n;
	text_results_free(&r);
	return 0;
}

struct store_vscan {
	struct store *s;
	const char *coll; /* concurrent queries on it share one pass */
	const float *query;
	uint32_t dim;
	size_t k;
	int mmr;	  /* re-rank by maximal marginal relevance */
	double threshold; /* MMR lambda, in [0, 1] */
	struct store_allow *allow;
	struct vec_hit *hits;
	size_t n;
};

static int store_vscan(void *arg, const struct engine_vecs *v)
{
	struct store_vscan *vs = arg;
	struct vec_q8 *z = NULL;

	if (v->dim != vs->dim)
		return store_fail(-EINVAL,
				  "query vector has %u dimensions; the "
				  "namespace holds %u",
				  vs->dim, v->dim);
	if (vs->mmr)
		return vec_mmr(v, vs->query, vs->dim, vs->k, vs->threshold,
			       vs->allow->set ? store_allow_fn : NULL,
			       vs->allow, &vs->hits, &vs->n);
	/*
	 * A filter letting fewer rows through than a namespace needs for an
	 * int8 copy (a selective one the graph sent here, say) is scanned in
	 * float32: the scan skips the tiles it excludes, and such queries
	 * alone should not cost a copy of every row.
	 */
	if (!vs->allow->set || strset_count(vs->allow->set) >= VEC_Q8_MIN_ROWS)
		z = vec_q8_set_get(vs->s->q8, vs->coll);
	return vec_topk_shared_q8(vs->s->eng, vs->coll, z, v, vs->query,
				  vs->dim, vs->k,
				  vs->allow->set ? store_allow_fn : NULL,
				  vs->allow, &vs->hits, &vs->n);
}

/*
 * Exact cosine top-k of the namespace, or with mmr set its MMR re-ranking
 * (threshold = lambda), whose scores are then the MMR scores, as
 * SimpleVectorStore reports them.
 */
static int store_vector(struct store *s, const struct store_query *q, size_t k,
			int mmr, double threshold, struct store_allow *allow,
			struct store_scored **out, size_t *n)
{
	char coll[STORE_NS_MAX + 32];
	struct store_vscan vs = { 0 };
	float *own = NULL;
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	rc = store_vec_coll(q->ns, coll, sizeof(coll));
	if (rc)
		return rc;
	vs.query = q->embedding;
	vs.dim = q->dim;
	if (!vs.query) {
		/* Without a model, the text gets the built-in embedding. */
		if (!q->text || !*q->text)
			return store_fail(-EINVAL,
					  "a vector query needs "
					  "query_embedding or query text");
		vs.dim = engine_vec_dim(s->eng, coll);
		if (!vs.dim)
			return 0;
		if (vs.dim != s->opts.embed_dim)
			return store_fail(-EINVAL,
					  "namespace %s holds %u-dimensional "
					  "vectors from a model; give "
					  "query_embedding",
					  q->ns ? q->ns : STORE_NS_DEFAULT,
					  vs.dim);
		own = malloc(vs.dim * sizeof(*own));
		if (!own)
			return -ENOMEM;
		if (s->embed) {
			/* the model that made the vectors embeds the query */
			size_t tl = strlen(q->text);

			rc = store_embed_texts(s, &q->text, &tl, 1, own);
			if (rc) {
				free(own);
				return rc;
			}
		} else {
			vec_embed_hash(q->text, strlen(q->text), vs.dim, own);
		}
		vs.query = own;
	}
	vs.s = s;
	vs.coll = coll;
	vs.k = k;
	vs.mmr = mmr;
	vs.threshold = threshold;
	vs.allow = allow;
	/*
	 * The namespace's HNSW graph where it has one; MMR stays exact (it
	 * compares every row with the last pick, as SimpleVectorStore does).
	 * -ENOENT from the graph means: scan exactly.
	 */
	rc = -ENOENT;
	if (!mmr && !q->exact)
		rc = store_ann_search(s->ann, coll, vs.query, vs.dim, k, q->ef,
				      allow->set ? store_allow_fn : NULL, allow,
				      allow->set ? strset_count(allow->set)
						 : SIZE_MAX,
				      &vs.hits, &vs.n);
	if (rc == -ENOENT)
		rc = engine_with_vecs(s->eng, coll, store_vscan, &vs);
	free(own);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	*out = calloc(vs.n ? vs.n : 1, sizeof(**out));
	if (!*out) {
		vec_hits_free(vs.hits, vs.n);
		return -ENOMEM;
	}
	for (i = 0; i < vs.n; i++) {
		(*out)[i].id = vs.hits[i].key;
		(*out)[i].score = vs.hits[i].score;
		vs.hits[i].key = NULL;
	}
	*n = vs.n;
	vec_hits_free(vs.hits, vs.n);
	return 0;
}

/*
 * Min-max normalises scores into [0, 1]; when all are equal (one result,
 * say) they become 1 if positive, else 0, as LlamaIndex does.
 */
static void store_normalise(struct store_scored *v, size_t n)
{
	double lo = INFINITY, hi = -INFINITY;
	size_t i;

	for (i = 0; i < n; i++) {
		lo = fmin(lo, v[i].score);
		hi = fmax(hi, v[i].score);
	}
	for (i = 0; i < n; i++)
		v[i].score = hi > lo	? (v[i].score - lo) / (hi - lo)
			     : hi > 0.0 ? 1.0
					: 0.0;
}

/* Fused scores, highest first; ties keep their order (pos). */
static int store_fused_cmp(const void *a, const void *b, void *arg)
{
	const struct store_scored *all = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (all[x].score != all[y].score)
		return all[x].score < all[y].score ? 1 : -1;
	return x < y ? -1 : x > y;
}

/*
 * LlamaIndex's relative score fusion (QueryFusionRetriever,
 * FUSION_MODES.RELATIVE_SCORE, with the weights [alpha, 1 - alpha] and
 * one query): each side min-max normalised, the vector side weighted
 * alpha and the keyword side 1 - alpha, summed per node, sorted by score
 * with ties in the order first seen (vector results, then keyword-only
 * ones), as Python's stable sort leaves them.  LlamaIndex merges nodes
 * of the same text; here a node is its id.
 */
static int store_fuse(struct store_scored *vec, size_t nv,
		      struct store_scored *kw, size_t nk, double alpha,
		      size_t k, struct store_scored **out, size_t *n)
{
	struct store_scored *all, *sorted;
	size_t i, j, m = 0, *ord;

	store_normalise(vec, nv);
	store_normalise(kw, nk);
	all = calloc(nv + nk + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (i = 0; i < nv; i++) {
		all[m].id = vec[i].id;
		vec[i].id = NULL;
		all[m++].score = alpha * vec[i].score;
	}
	for (i = 0; i < nk; i++) {
		for (j = 0; j < nv; j++)
			if (all[j].id && strcmp(all[j].id, kw[i].id) == 0)
				break;
		if (j < nv) {
			all[j].score += (1 - alpha) * kw[i].score;
			continue;
		}
		all[m].id = kw[i].id;
		kw[i].id = NULL;
		all[m++].score = (1 - alpha) * kw[i].score;
	}
	ord = malloc((m ? m : 1) * sizeof(*ord));
	sorted = calloc(m + 1, sizeof(*sorted));
	if (!ord || !sorted) {
		free(ord);
		free(sorted);
		store_scored_free(all, m);
		return -ENOMEM;
	}
	for (i = 0; i < m; i++)
		ord[i] = i;
	qsort_r(ord, m, sizeof(*ord), store_fused_cmp, all);
	for (i = 0; i < m; i++)
		sorted[i] = all[ord[i]];
	free(ord);
	free(all);
	for (i = k; i < m; i++) {
		free(sorted[i].id);
		sorted[i].id = NULL;
	}
	*out = sorted;
	*n = m < k ? m : k;
	return 0;
}

/* Fills a hit from the node's stored JSON. */
static int store_fill_hit(struct store *s, const struct store_scored *sc,
			  struct store_hit *h)
{
	json_t *w, *d, *meta, *src;
	const char *ref;
	int rc;

	h->score = sc->score;
	h->node_id = strdup(sc->id);
	if (!h->node_id)
		return -ENOMEM;
	rc = store_get_object(s, STORE_C_DATA, sc->id, &w);
	if (rc == -ENOENT) {
		/* A vector without a node: report the id alone. */
		h->text = strdup("");
		h->metadata = strdup("{}");
		return h->text && h->metadata ? 0 : -ENOMEM;
	}
	if (rc)
		return rc;
	d = json_object_get(w, "__data__");
	meta = json_object_get(d, "metadata");
	src = json_object_get(json_object_get(d, "relationships"),
			      STORE_REL_SOURCE);
	ref = json_string_value(json_object_get(src, "node_id"));
	h->text = strdup(store_str(json_object_get(d, "text")));
	h->metadata = json_is_object(meta) ? store_dump(meta) : strdup("{}");
	h->ref_doc_id = ref ? strdup(ref) : NULL;
	json_decref(w);
	if (!h->text || !h->metadata || (ref && !h->ref_doc_id))
		return -ENOMEM;
	return 0;
}

int store_query(struct store *s, const struct store_query *q,
		struct store_hit **hits, size_t *n)
{
	struct store_scored *vec = NULL, *kw = NULL, *res = NULL;
	size_t nv = 0, nk = 0, nres = 0, k = q->k ? q->k : 2, i;
	struct store_allow allow = { 0 };
	enum store_mode mode = q->mode;
	double alpha = q->alpha < 0 ? 0.5 : q->alpha;
	/*
	 * Callers zero-initialise store_query, so mmr_threshold is only read
	 * in MMR mode, where 0 is a real lambda (all novelty).  LlamaIndex's
	 * `mmr_threshold or 0.5` would turn 0 into 0.5; we keep what was
	 * asked for.
	 */
	double lambda = q->mmr_threshold < 0 ? VEC_MMR_THRESHOLD_DEFAULT
					     : q->mmr_threshold;
	int rc;

	store_clear_error();
	*hits = NULL;
	*n = 0;
	if (alpha > 1)
		return store_fail(-EINVAL, "alpha must be between 0 and 1");
	if (q->embedding && q->dim == 0)
		return store_fail(-EINVAL, "empty query_embedding");
	if (mode == STORE_MODE_MMR && !(lambda <= 1))
		return store_fail(-EINVAL,
				  "mmr_threshold must be between 0 and 1");
	if (mode == STORE_MODE_DEFAULT)
		mode = q->embedding ? STORE_MODE_VECTOR : STORE_MODE_KEYWORD;
	atomic_fetch_add(&s->queries, 1);
	rc = store_query_allow(s, q, &allow);
	if (rc)
		return rc;
	switch (mode) {
	case STORE_MODE_KEYWORD:
		rc = store_keyword(s, q, k, &allow, &res, &nres);
		break;
	case STORE_MODE_VECTOR:
		rc = store_vector(s, q, k, 0, 0, &allow, &res, &nres);
		break;
	case STORE_MODE_MMR:
		rc = store_vector(s, q, k, 1, lambda, &allow, &res, &nres);
		break;
	case STORE_MODE_HYBRID:
		rc = store_vector(s, q, k, 0, 0, &allow, &vec, &nv);
		if (!rc)
			rc = store_keyword(s, q, k, &allow, &kw, &nk);
		if (!rc)
			rc = store_fuse(vec, nv, kw, nk, alpha, k, &res, &nres);
		break;
	default:
		rc = store_fail(-EINVAL, "unknown query mode");
	}
	if (rc)
		goto out;
	*hits = calloc(nres ? nres : 1, sizeof(**hits));
	if (!*hits) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nres && !rc; i++)
		rc = store_fill_hit(s, &res[i], &(*hits)[i]);
	if (rc) {
		store_hits_free(*hits, nres);
		*hits = NULL;
		goto out;
	}
	*n = nres;
out:
	store_scored_free(vec, nv);
	store_scored_free(kw, nk);
	store_scored_free(res, nres);
	strset_free(allow.set);
	return rc;
}

void store_hits_free(struct store_hit *hits, size_t n)
{
	size_t i;

	for (i = 0; hits && i < n; i++) {
		free(hits[i].node_id);
		free(hits[i].ref_doc_id);
		free(hits[i].text);
		free(hits[i].metadata);
	}
	free(hits);
}

static const char *store_mode_name(enum store_mode m, int vector)
{
	switch (m) {
	case STORE_MODE_KEYWORD:
		return "keyword";
	case STORE_MODE_VECTOR:
		return "vector";
	case STORE_MODE_HYBRID:
		return "hybrid";
	case STORE_MODE_MMR:
		return "mmr";
	default:
		return vector ? "vector" : "keyword";
	}
}

char *store_hits_json(const struct store_query *q, const struct store_hit *hits,
		      size_t n)
{
	json_t *root = json_object(), *nodes = json_array(),
	       *ids = json_array();
	json_t *sims = json_array();
	char *text = NULL;
	size_t i;

	if (!root || !nodes || !ids || !sims)
		goto out;
	json_object_set_new(root, "query_str",
			    q->text ? json_string(q->text) : json_null());
	json_object_set_new(
		root, "mode",
		json_string(store_mode_name(q->mode, !!q->embedding)));
	json_object_set_new(root, "similarity_top_k",
			    json_integer((json_int_t)(q->k ? q->k : 2)));
	for (i = 0; i < n; i++) {
		json_t *meta = json_loads(hits[i].metadata, 0, NULL);
		json_t *h = json_object();

		json_object_set_new(h, "rank", json_integer((json_int_t)i + 1));
		json_object_set_new(h, "score", json_real(hits[i].score));
		json_object_set_new(h, "node_id", json_string(hits[i].node_id));
		json_object_set_new(h, "ref_doc_id",
				    hits[i].ref_doc_id
					    ? json_string(hits[i].ref_doc_id)
					    : json_null());
		json_object_set_new(h, "text", json_string(hits[i].text));
		json_object_set_new(h, "metadata", meta ? meta : json_object());
		json_array_append_new(nodes, h);
		json_array_append_new(ids, json_string(hits[i].node_id));
		json_array_append_new(sims, json_real(hits[i].score));
	}
	json_object_set(root, "nodes", nodes);
	json_object_set(root, "ids", ids);
	json_object_set(root, "similarities", sims);
	text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	json_decref(nodes);
	json_decref(ids);
	json_decref(sims);
	return text;
}
