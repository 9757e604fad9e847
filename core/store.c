/* store.c - the storage context: open/close, kv, index store, vectors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/embed_remote.h"
#include "core/store_int.h"
#include "core/vec.h"

static _Thread_local char store_err[512];

int store_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_err, sizeof(store_err), fmt, ap);
	va_end(ap);
	return rc;
}

void store_clear_error(void)
{
	store_err[0] = '\0';
}

const char *store_last_error(void)
{
	if (store_err[0])
		return store_err;
	return engine_last_error();
}

void store_opts_init(struct store_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->chunk_size = STORE_CHUNK_SIZE_DEFAULT;
	o->chunk_overlap = STORE_CHUNK_OVERLAP_DEFAULT;
	o->embed_dim = VEC_EMBED_DIM_DEFAULT;
	o->bm25_bigram_weight = TEXT_BM25_BIGRAM_WEIGHT;
	o->ann_threshold = STORE_ANN_THRESHOLD_DEFAULT;
}

int store_parse_object(const char *what, const char *data, size_t len,
		       json_t **out)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
		       &jerr);
	if (!j)
		return store_fail(-EINVAL, "%s: invalid JSON at line %d: %s",
				  what, jerr.line, jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return store_fail(-EINVAL, "%s: JSON is not an object", what);
	}
	*out = j;
	return 0;
}

char *store_dump(const json_t *j)
{
	return json_dumps(j,
			  JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

/*
 * 1 if a compact jansson dump loads again as the engine loads JSON
 * (json_loadb without flags): a NUL in a string, written \u0000, is
 * refused there, and so is nesting deeper than the parser's limit (2048
 * in jansson 2.14; the bound here is far below any version's).
 */
#define STORE_DUMP_DEPTH_MAX 256
static int store_dump_loads(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	int depth = 0;

	while (p < end) {
		char c = *p++;

		if (c == '"') {
			/* to the closing quote, past escapes */
			while (p < end && *p != '"') {
				if (*p == '\\') {
					if (end - p >= 6 &&
					    memcmp(p, "\\u0000", 6) == 0)
						return 0;
					p++;
				}
				p++;
			}
			p++;
		} else if (c == '{' || c == '[') {
			if (++depth > STORE_DUMP_DEPTH_MAX)
				return 0;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 1;
}

int store_batch_put_dump(struct engine_batch *b, const char *coll,
			 const char *key, const char *text, size_t len)
{
	if (store_dump_loads(text, len))
		return engine_batch_put_json_compact(b, coll, key, text, len);
	return engine_batch_put_json(b, coll, key, text, len);
}

int store_batch_put_obj(struct engine_batch *b, const char *coll,
			const char *key, const json_t *j)
{
	char *text = store_dump(j);
	int rc;

	if (!text)
		return -ENOMEM;
	rc = store_batch_put_dump(b, coll, key, text, strlen(text));
	free(text);
	return rc;
}

int store_get_object(struct store *s, const char *coll, const char *key,
		     json_t **out)
{
	enum engine_type type;
	void *data;
	size_t len;
	int rc;

	rc = engine_get(s->eng, coll, key, &type, &data, &len);
	if (rc)
		return rc;
	if (type != ENGINE_JSON) {
		free(data);
		return store_fail(-EINVAL, "%s/%s is not JSON", coll, key);
	}
	rc = store_parse_object(coll, data, len, out);
	free(data);
	return rc;
}

int store_check_id(const char *what, const char *id)
{
	size_t n;

	if (!id || !*id)
		return store_fail(-EINVAL, "%s: empty id", what);
	n = strlen(id);
	if (n > ENGINE_KEY_MAX)
		return store_fail(-EINVAL, "%s: id of %zu bytes (at most %d)",
				  what, n, ENGINE_KEY_MAX);
	if (!text_is_utf8(id, n))
		return store_fail(-EINVAL, "%s: id is not valid UTF-8", what);
	return 0;
}

int store_vec_coll(const char *ns, char *buf, size_t size)
{
	size_t n;

	if (!ns || !*ns)
		ns = STORE_NS_DEFAULT;
	n = strlen(ns);
	if (n > STORE_NS_MAX || strchr(ns, '/') || !text_is_utf8(ns, n))
		return store_fail(-EINVAL,
				  "invalid vector namespace (1-%d bytes of "
				  "UTF-8 without '/')",
				  STORE_NS_MAX);
	snprintf(buf, size, STORE_VEC_PREFIX "%s", ns);
	return 0;
}

void store_vec_meta_coll(const char *ns, char *buf, size_t size)
{
	snprintf(buf, size, STORE_C_VEC_META_PREFIX "%s",
		 ns && *ns ? ns : STORE_NS_DEFAULT);
}

struct store_nslist {
	char **v;
	size_t n, cap;
};

static int store_collect_ns(void *arg, const char *coll)
{
	struct store_nslist *l = arg;
	size_t plen = strlen(STORE_VEC_PREFIX);

	if (strncmp(coll, STORE_VEC_PREFIX, plen) != 0)
		return 0;
	if (l->n + 2 > l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		char **nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n] = strdup(coll + plen);
	if (!l->v[l->n])
		return -ENOMEM;
	l->v[++l->n] = NULL;
	return 0;
}

int store_list_namespaces(struct store *s, char ***out)
{
	struct store_nslist l = { 0 };
	int rc;

	rc = engine_collections(s->eng, store_collect_ns, &l);
	if (!rc && !l.v) {
		l.v = calloc(1, sizeof(*l.v));
		if (!l.v)
			rc = -ENOMEM;
	}
	if (rc) {
		if (l.v) {
			l.v[l.n] = NULL;
			store_free_strv(l.v);
		}
		return rc;
	}
	*out = l.v;
	return 0;
}

void store_free_strv(char **v)
{
	char **p;

	if (!v)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

/*
 * The keyword index rides in every checkpoint as the extension "bm25", so
 * that opening a large store does not re-tokenise every node.
 */
static int store_bm25_save(void *arg, engine_ext_emit_fn *emit, void *ctx)
{
	struct store *s = arg;

	return text_index_save(s->bm25, emit, ctx);
}

static int store_bm25_load(void *arg, const void *data, size_t len)
{
	struct store *s = arg;
	struct text_index *idx;
	int rc;

	rc = text_index_load(data, len, &idx);
	if (rc)
		return rc; /* the engine then replays every node to us */
	if (text_index_bigram_weight(idx) != s->opts.bm25_bigram_weight) {
		/* saved with other options: rebuilt from the nodes instead */
		text_index_free(idx);
		return -ESTALE;
	}
	text_index_free(s->bm25);
	s->bm25 = idx;
	s->bm25_loaded = 1;
	return 0;
}

int store_open(struct backend *be, const struct store_opts *opts,
	       struct store **out)
{
	struct text_index_opts tio = { TEXT_BM25_K1, TEXT_BM25_B, 0 };
	struct engine_opts eopts;
	struct store *s;
	int rc;

	store_clear_error();
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (opts)
		s->opts = *opts;
	else
		store_opts_init(&s->opts);
	if (s->opts.chunk_size == 0 ||
	    s->opts.chunk_overlap >= s->opts.chunk_size) {
		rc = store_fail(-EINVAL,
				"chunk_overlap (%u) must be less than "
				"chunk_size (%u)",
				s->opts.chunk_overlap, s->opts.chunk_size);
		free(s);
		return rc;
	}
	s->be = be;
	pthread_mutex_init(&s->wlock, NULL);
	pthread_mutex_init(&s->chg_mu, NULL);
	tio.bigram_weight = s->opts.bm25_bigram_weight;
	rc = text_index_new_opts(&tio, &s->bm25);
	if (rc) {
		store_fail(rc, "bm25_bigram_weight must be 0 or more");
		goto out_free;
	}
	rc = vec_q8_set_new(&s->q8);
	if (!rc)
		rc = store_ann_new(s->opts.ann_threshold, &s->ann);
	if (rc)
		goto out_index;
	if (s->opts.ann_no_build)
		store_ann_no_build(s->ann);
	s->exts[0].name = "bm25";
	s->exts[0].save = store_bm25_save;
	s->exts[0].load = store_bm25_load;
	s->exts[0].arg = s;
	s->exts[1].name = "hnsw";
	s->exts[1].save = store_ann_ext_save;
	s->exts[1].load = store_ann_ext_load;
	s->exts[1].arg = s->ann;
	eopts = s->opts.engine;
	eopts.exts = s->exts;
	eopts.n_exts = 2;
	rc = engine_open_observed(be, &eopts, store_observe, s, &s->eng);
	if (rc)
		goto out_index;
	rc = store_ann_start(s->ann, s->eng);
	if (!rc)
		rc = store_embed_open(s);
	if (rc) {
		store_ann_free(s->ann);
		engine_close(s->eng);
		s->ann = NULL;
		goto out_index;
	}
	*out = s;
	return 0;
out_index:
	store_ann_free(s->ann);
	vec_q8_set_free(s->q8);
	text_index_free(s->bm25);
	store_observe_free(s);
out_free:
	pthread_mutex_destroy(&s->chg_mu);
	pthread_mutex_destroy(&s->wlock);
	free(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_ann_free(s->ann); /* its builder reads the engine */
	engine_close(s->eng);
	vec_q8_set_free(s->q8);
	embed_remote_free(s->embed);
	text_index_free(s->bm25);
	store_observe_free(s);
	store_changes_free(s);
	pthread_mutex_destroy(&s->chg_mu);
	pthread_mutex_destroy(&s->wlock);
	free(s);
}

struct engine *store_engine(struct store *s)
{
	return s->eng;
}

/* Commits `b` and frees it; the one exit of every write path. */
static int store_commit_free(struct store *s, struct engine_batch *b)
{
	int rc = engine_commit(s->eng, b);

	engine_batch_free(b);
	return rc;
}

/* --- raw kv ------------------------------------------------------------- */

int store_kv_check(const char *coll, const char *key)
{
	int rc;

	rc = store_check_id("collection", coll);
	if (!rc)
		rc = store_check_id("key", key);
	if (!rc &&
	    strncmp(coll, STORE_VEC_PREFIX, strlen(STORE_VEC_PREFIX)) == 0)
		rc = store_fail(-EINVAL, "%s holds vectors, not JSON", coll);
	return rc;
}

int store_kv_put(struct store *s, const char *coll, const char *key,
		 const char *json, size_t len)
{
	struct engine_batch *b;
	json_t *j;
	int rc;

	store_clear_error();
	rc = store_kv_check(coll, key);
	if (rc)
		return rc;
	rc = store_parse_object(key, json, len, &j);
	if (rc)
		return rc;
	b = engine_batch_new();
	if (!b) {
		json_decref(j);
		return -ENOMEM;
	}
	rc = store_batch_put_obj(b, coll, key, j);
	json_decref(j);
	if (rc) {
		engine_batch_free(b);
		return rc;
	}
	return store_commit_free(s, b);
}

int store_kv_get(struct store *s, const char *coll, const char *key,
		 char **json, size_t *len)
{
	enum engine_type type;
	void *data;
	size_t n;
	int rc;

	rc = engine_get(s->eng, coll, key, &type, &data, &n);
	if (rc)
		return rc;
	if (type != ENGINE_JSON) {
		free(data);
		return store_fail(-EINVAL, "%s/%s is not a JSON value", coll,
				  key);
	}
	*json = data;
	*len = n;
	return 0;
}

int store_kv_del(struct store *s, const char *coll, const char *key)
{
	struct engine_batch *b;
	int rc;

	if (!engine_exists(s->eng, coll, key))
		return -ENOENT;
	b = engine_batch_new();
	if (!b)
		return -ENOMEM;
	rc = engine_batch_del(b, coll, key);
	if (rc) {
		engine_batch_free(b);
		return rc;
	}
	return store_commit_free(s, b);
}

/* --- index store -------------------------------------------------------- */

int store_index_put(struct store *s, const char *id, const char *json,
		    size_t len)
{
	json_t *j, *type, *data;
	int rc;

	store_clear_error();
	rc = store_check_id("index", id);
	if (rc)
		return rc;
	rc = store_parse_object("index struct", json, len, &j);
	if (rc)
		return rc;
	type = json_object_get(j, "__type__");
	data = json_object_get(j, "__data__");
	rc = json_is_string(type) && data ? 0 : -EINVAL;
	json_decref(j);
	if (rc)
		return store_fail(rc,
				  "index struct needs a string \"__type__\" "
				  "and a \"__data__\"");
	return store_kv_put(s, STORE_C_INDEX, id, json, len);
}

int store_index_get(struct store *s, const char *id, char **json, size_t *len)
{
	return store_kv_get(s, STORE_C_INDEX, id, json, len);
}

int store_index_del(struct store *s, const char *id)
{
	return store_kv_del(s, STORE_C_INDEX, id);
}

/* --- vectors ------------------------------------------------------------ */

int store_vec_put(struct store *s, const char *ns, const char *id,
		  const float *v, uint32_t dim)
{
	char coll[STORE_NS_MAX + 32];
	struct engine_batch *b;
	uint32_t have;
	int rc;

	store_clear_error();
	rc = store_vec_coll(ns, coll, sizeof(coll));
	if (!rc)
		rc = store_check_id("vector", id);
	if (rc)
		return rc;
	if (dim == 0)
		return store_fail(-EINVAL, "empty vector");
	have = engine_vec_dim(s->eng, coll);
	if (have && have != dim)
		return store_fail(-EINVAL,
				  "vector of %u dimensions; namespace %s "
				  "holds %u",
				  dim, coll + strlen(STORE_VEC_PREFIX), have);
	b = engine_batch_new();
	if (!b)
		return -ENOMEM;
	rc = engine_batch_put_vec(b, coll, id, v, dim);
	if (rc) {
		engine_batch_free(b);
		return rc;
	}
	return store_commit_free(s, b);
}

int store_vec_put_many(struct store *s, const char *ns, const char *const *ids,
		       const float *rows, size_t stride, size_t n, uint32_t dim,
		       store_progress_fn *progress, void *parg)
{
	char coll[STORE_NS_MAX + 32];
	struct engine_batch *b;
	uint32_t have;
	size_t i;
	int rc;

	store_clear_error();
	rc = store_vec_coll(ns, coll, sizeof(coll));
	if (rc)
		return rc;
	if (dim == 0 || stride < dim || (n && (!ids || !rows)))
		return store_fail(-EINVAL, "empty vectors");
	for (i = 0; i < n; i++) {
		rc = store_check_id("vector", ids[i]);
		if (rc)
			return rc;
	}
	b = engine_batch_new();
	if (!b)
		return -ENOMEM;
	/*
	 * Under the write lock, so that the namespace cannot take another
	 * dimension between the check and the commit.
	 */
	pthread_mutex_lock(&s->wlock);
	have = engine_vec_dim(s->eng, coll);
	if (have && have != dim) {
		rc = store_fail(
			-EINVAL,
			"vectors of %u dimensions; namespace %s holds %u", dim,
			coll + strlen(STORE_VEC_PREFIX), have);
		goto out;
	}
	for (i = 0; i < n && !rc; i++) {
		rc = engine_batch_put_vec(b, coll, ids[i], rows + i * stride,
					  dim);
		if (progress && (i % 4096 == 4095 || i + 1 == n))
			progress(parg, i + 1, n);
	}
	if (!rc)
		rc = engine_commit_consume(s->eng, b);
out:
	pthread_mutex_unlock(&s->wlock);
	engine_batch_free(b);
	return rc;
}

/* Reads one namespace's rows once for a chunk of queries. */
struct store_vsearch {
	struct vec_q8 *q8;
	const float *queries;
	size_t nq;
	uint32_t dim;
	size_t k;
	struct vec_hit **hits;
	size_t *nhits;
};

static int store_vsearch_fn(void *arg, const struct engine_vecs *v)
{
	struct store_vsearch *vs = arg;
	struct vec_query qs[64];
	size_t i, j, m;
	int rc = 0;

	if (v->dim != vs->dim)
		return store_fail(-EINVAL,
				  "queries have %u dimensions; the namespace "
				  "holds %u",
				  vs->dim, v->dim);
	/* 64 queries a pass: their float32 copies stay in L2 */
	for (i = 0; i < vs->nq && !rc; i += m) {
		m = vs->nq - i < 64 ? vs->nq - i : 64;
		memset(qs, 0, sizeof(qs));
		for (j = 0; j < m; j++) {
			qs[j].query = vs->queries + (i + j) * (size_t)vs->dim;
			qs[j].k = vs->k;
		}
		rc = vec_topk_batch_q8(v, vs->dim, qs, m, vs->q8);
		for (j = 0; j < m; j++) {
			vs->hits[i + j] = qs[j].hits;
			vs->nhits[i + j] = qs[j].n;
		}
	}
	return rc;
}

int store_vec_search(struct store *s, const char *ns, const float *queries,
		     size_t nq, uint32_t dim, size_t k, struct vec_hit **hits,
		     size_t *nhits)
{
	char coll[STORE_NS_MAX + 32];
	struct store_vsearch vs = {
		.queries = queries,
		.nq = nq,
		.dim = dim,
		.k = k,
		.hits = hits,
		.nhits = nhits,
	};
	size_t i;
	int rc;

	store_clear_error();
	for (i = 0; i < nq; i++) {
		hits[i] = NULL;
		nhits[i] = 0;
	}
	rc = store_vec_coll(ns, coll, sizeof(coll));
	if (rc)
		return rc;
	if (dim == 0)
		return store_fail(-EINVAL, "empty query vectors");
	vs.q8 = vec_q8_set_get(s->q8, coll);
	rc = engine_with_vecs(s->eng, coll, store_vsearch_fn, &vs);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		for (i = 0; i < nq; i++) {
			vec_hits_free(hits[i], nhits[i]);
			hits[i] = NULL;
			nhits[i] = 0;
		}
	}
	return rc;
}

int store_vec_get(struct store *s, const char *ns, const char *id, float **v,
		  uint32_t *dim)
{
	char coll[STORE_NS_MAX + 32];
	enum engine_type type;
	void *data;
	size_t len;
	int rc;

	rc = store_vec_coll(ns, coll, sizeof(coll));
	if (rc)
		return rc;
	rc = engine_get(s->eng, coll, id, &type, &data, &len);
	if (rc)
		return rc;
	*v = data;
	*dim = (uint32_t)(len / sizeof(float));
	return 0;
}

int store_vec_del(struct store *s, const char *ns, const char *id)
{
	char coll[STORE_NS_MAX + 32], meta[STORE_NS_MAX + 32];
	struct engine_batch *b;
	int rc;

	rc = store_vec_coll(ns, coll, sizeof(coll));
	if (rc)
		return rc;
	if (!engine_exists(s->eng, coll, id))
		return -ENOENT;
	b = engine_batch_new();
	if (!b)
		return -ENOMEM;
	/* what persist/ kept of the id (its vector store entry) goes too */
	store_vec_meta_coll(ns, meta, sizeof(meta));
	rc = engine_batch_del(b, coll, id);
	if (!rc)
		rc = engine_batch_del(b, meta, id);
	if (rc) {
		engine_batch_free(b);
		return rc;
	}
	return store_commit_free(s, b);
}

/* --- stats -------------------------------------------------------------- */

struct store_triples {
	uint64_t n;
};

static int store_count_triples(void *arg, const char *key,
			       enum engine_type type, const void *data,
			       size_t len)
{
	struct store_triples *t = arg;
	json_t *j = json_loadb(data, len, 0, NULL);

	if (j) {
		t->n += json_array_size(json_object_get(j, "rels"));
		json_decref(j);
	}
	return 0;
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	struct store_triples t = { 0 };

	memset(st, 0, sizeof(*st));
	engine_get_stats(s->eng, &st->engine);
	st->documents = engine_count(s->eng, STORE_C_REFS);
	st->nodes = engine_count(s->eng, STORE_C_DATA);
	st->indexes = engine_count(s->eng, STORE_C_INDEX);
	engine_foreach(s->eng, STORE_C_GRAPH, store_count_triples, &t);
	st->triples = t.n;
	st->queries = atomic_load(&s->queries);
	st->keyword_index_loaded = s->bm25_loaded;
	store_ann_get_stats(s->ann, &st->ann);
}

void store_wait_index(struct store *s)
{
	store_ann_wait(s->ann);
}

uint64_t store_version(struct store *s)
{
	return atomic_load(&s->version);
}

int store_namespaces(struct store *s, store_ns_fn *fn, void *arg)
{
	char **nss, **p;
	int rc;

	rc = store_list_namespaces(s, &nss);
	if (rc)
		return rc;
	for (p = nss; *p && !rc; p++) {
		char coll[STORE_NS_MAX + 32];

		snprintf(coll, sizeof(coll), STORE_VEC_PREFIX "%s", *p);
		rc = fn(arg, *p, engine_count(s->eng, coll),
			engine_vec_dim(s->eng, coll));
	}
	store_free_strv(nss);
	return rc;
}

/* --- string set --------------------------------------------------------- */

struct strset {
	char **slots;
	size_t cap, n;
};

struct strset *strset_new(void)
{
	return calloc(1, sizeof(struct strset));
}

void strset_free(struct strset *set)
{
	size_t i;

	if (!set)
		return;
	for (i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	free(set);
}

static size_t strset_slot(char **slots, size_t cap, const char *s)
{
	size_t i = (size_t)XXH3_64bits(s, strlen(s)) & (cap - 1);

	while (slots[i] && strcmp(slots[i], s) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

int strset_add(struct strset *set, const char *s)
{
	size_t i;

	if ((set->n + 1) * 2 > set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 16, j;
		char **ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		for (j = 0; j < set->cap; j++)
			if (set->slots[j])
				ns[strset_slot(ns, ncap, set->slots[j])] =
					set->slots[j];
		free(set->slots);
		set->slots = ns;
		set->cap = ncap;
	}
	i = strset_slot(set->slots, set->cap, s);
	if (set->slots[i])
		return 0;
	set->slots[i] = strdup(s);
	if (!set->slots[i])
		return -ENOMEM;
	set->n++;
	return 0;
}

int strset_has(const struct strset *set, const char *s)
{
	if (!set->cap)
		return 0;
	return set->slots[strset_slot(set->slots, set->cap, s)] != NULL;
}

size_t strset_count(const struct strset *set)
{
	return set->n;
}
