/* fs_query.c - query/ requests: path options or LlamaIndex JSON, run, render. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/store.h"
#include "core/text.h"
#include "core/vec.h"
#include "fs/fs_query.h"

#define FS_QUERY_K_MAX	10000
#define FS_QUERY_NS_MAX 200 /* as the store's namespaces */

enum fs_query_format {
	FS_QUERY_JSON = 0,
	FS_QUERY_TEXT,
};

struct fs_qreq {
	char *text;	  /* query_str, or NULL */
	float *embedding; /* query_embedding (dim floats), or NULL */
	uint32_t dim;
	size_t k; /* 0: not set, the store's default (2) */
	enum store_mode mode;
	float alpha;	     /* <0: not set */
	float mmr_threshold; /* <0: not set */
	char *ns;	     /* NULL: the default namespace */
	/* NULL: no restriction; non-NULL with 0 ids: restrict to nothing. */
	char **doc_ids;
	size_t n_doc_ids;
	char **node_ids;
	size_t n_node_ids;
	struct vec_filters *filters; /* NULL: none */
	enum fs_query_format format;
	/* the vector side: force the exact scan; HNSW search breadth */
	int exact;     /* -1: not set, else 0 or 1 */
	int ef;	       /* 0: not set */
	unsigned seen; /* path options given so far (1 << option index) */
};

static int fs_query_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes the reason into err (may be NULL) and returns rc. */
static int fs_query_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static struct fs_qreq *fs_qreq_new(void)
{
	struct fs_qreq *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->mode = STORE_MODE_DEFAULT;
	r->alpha = -1;
	r->mmr_threshold = -1;
	r->exact = -1;
	return r;
}

static void fs_query_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void fs_qreq_free(struct fs_qreq *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->embedding);
	free(r->ns);
	fs_query_strv_free(r->doc_ids, r->n_doc_ids);
	fs_query_strv_free(r->node_ids, r->n_node_ids);
	vec_filter_free(r->filters);
	free(r);
}

/* Appends a copy of id to *v; *v stays non-NULL once anything was asked. */
static int fs_query_strv_add(char ***v, size_t *n, const char *id)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(id);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* --- values shared by both forms ---------------------------------------- */

struct fs_query_mode_name {
	const char *name;
	enum store_mode mode;
};

/*
 * "default" stays STORE_MODE_DEFAULT and is resolved by store_query: vector
 * search when the request carries a query_embedding (LlamaIndex's DEFAULT
 * is dense search), else BM25 keyword search (lodefs's default for text,
 * which needs no model).  "sparse" and "text_search" are LlamaIndex's
 * names for lexical search, which is BM25 here.
 */
static const struct fs_query_mode_name fs_query_modes[] = {
	{ "default", STORE_MODE_DEFAULT },
	{ "vector", STORE_MODE_VECTOR },
	{ "keyword", STORE_MODE_KEYWORD },
	{ "hybrid", STORE_MODE_HYBRID },
	{ "mmr", STORE_MODE_MMR },
	{ "sparse", STORE_MODE_KEYWORD },
	{ "text_search", STORE_MODE_KEYWORD },
};

/* VectorStoreQueryMode values that lodefs does not implement. */
static const char *const fs_query_modes_unsupported[] = {
	"svm",
	"logistic_regression",
	"linear_regression",
	"semantic_hybrid",
};

#define FS_QUERY_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int fs_query_parse_mode(const char *s, enum store_mode *mode, char *err,
			       size_t errlen)
{
	size_t i;

	for (i = 0; i < FS_QUERY_NELEM(fs_query_modes); i++) {
		if (strcmp(s, fs_query_modes[i].name) == 0) {
			*mode = fs_query_modes[i].mode;
			return 0;
		}
	}
	for (i = 0; i < FS_QUERY_NELEM(fs_query_modes_unsupported); i++)
		if (strcmp(s, fs_query_modes_unsupported[i]) == 0)
			return fs_query_fail(err, errlen, -EINVAL,
					     "mode '%s' is a LlamaIndex mode "
					     "lodefs does not implement",
					     s);
	return fs_query_fail(err, errlen, -EINVAL,
			     "unknown mode '%.64s' (known: default, vector, "
			     "keyword, hybrid, mmr, sparse, text_search)",
			     s);
}

static int fs_query_parse_format(const char *s, enum fs_query_format *f,
				 char *err, size_t errlen)
{
	if (strcmp(s, "json") == 0)
		*f = FS_QUERY_JSON;
	else if (strcmp(s, "text") == 0)
		*f = FS_QUERY_TEXT;
	else
		return fs_query_fail(err, errlen, -EINVAL,
				     "format must be json or text, not "
				     "'%.64s'",
				     s);
	return 0;
}

/* The store's namespace rule, checked early for a precise reason. */
static int fs_query_parse_ns(const char *s, char **out, char *err,
			     size_t errlen)
{
	size_t n = strlen(s);

	if (n == 0 || n > FS_QUERY_NS_MAX || strchr(s, '/') ||
	    !text_is_utf8(s, n))
		return fs_query_fail(err, errlen, -EINVAL,
				     "ns must be 1-%d bytes of UTF-8 without "
				     "'/'",
				     FS_QUERY_NS_MAX);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* --- path options --------------------------------------------------------- */

int fs_query_is_option(const char *seg)
{
	size_t n;

	if (!seg)
		return 0;
	n = strspn(seg, "abcdefghijklmnopqrstuvwxyz_");
	return n > 0 && seg[n] == '=';
}

/* Decimal digits only (no sign, no spaces), value in [lo, hi]. */
static int fs_query_parse_int(const char *s, long lo, long hi, long *out)
{
	long v = 0;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	for (; *s; s++) {
		v = v * 10 + (*s - '0');
		if (v > hi)
			return -EINVAL;
	}
	if (v < lo)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A plain decimal number in [0, 1] ("0.7", "1", "5e-1"). */
static int fs_query_parse_unit(const char *s, float *out)
{
	char *end;
	double v;

	if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end || errno || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = (float)v;
	return 0;
}

typedef int fs_query_opt_fn(struct fs_qreq *r, const char *val, char *err,
			    size_t errlen);

static int fs_query_opt_k(struct fs_qreq *r, const char *val, char *err,
			  size_t errlen)
{
	long v;

	if (fs_query_parse_int(val, 1, FS_QUERY_K_MAX, &v))
		return fs_query_fail(err, errlen, -EINVAL,
				     "k=%.64s: similarity_top_k must be an "
				     "integer from 1 to %d",
				     val, FS_QUERY_K_MAX);
	r->k = (size_t)v;
	return 0;
}

static int fs_query_opt_mode(struct fs_qreq *r, const char *val, char *err,
			     size_t errlen)
{
	return fs_query_parse_mode(val, &r->mode, err, errlen);
}

static int fs_query_opt_alpha(struct fs_qreq *r, const char *val, char *err,
			      size_t errlen)
{
	if (fs_query_parse_unit(val, &r->alpha))
		return fs_query_fail(err, errlen, -EINVAL,
				     "alpha=%.64s: alpha must be a number "
				     "from 0 to 1",
				     val);
	return 0;
}

static int fs_query_opt_ns(struct fs_qreq *r, const char *val, char *err,
			   size_t errlen)
{
	return fs_query_parse_ns(val, &r->ns, err, errlen);
}

static int fs_query_opt_doc(struct fs_qreq *r, const char *val, char *err,
			    size_t errlen)
{
	if (!*val)
		return fs_query_fail(err, errlen, -EINVAL,
				     "doc= needs a document id");
	return fs_query_strv_add(&r->doc_ids, &r->n_doc_ids, val);
}

static int fs_query_opt_where(struct fs_qreq *r, const char *val, char *err,
			      size_t errlen)
{
	int rc;

	/* every where= joins one "and" group */
	if (!r->filters) {
		rc = vec_filter_new(VEC_COND_AND, &r->filters);
		if (rc)
			return rc;
	}
	return vec_filter_parse_where(val, r->filters, err, errlen);
}

static int fs_query_opt_format(struct fs_qreq *r, const char *val, char *err,
			       size_t errlen)
{
	return fs_query_parse_format(val, &r->format, err, errlen);
}

static int fs_query_opt_mmr(struct fs_qreq *r, const char *val, char *err,
			    size_t errlen)
{
	if (fs_query_parse_unit(val, &r->mmr_threshold))
		return fs_query_fail(err, errlen, -EINVAL,
				     "mmr_threshold=%.64s: mmr_threshold must "
				     "be a number from 0 to 1",
				     val);
	return 0;
}

static int fs_query_opt_exact(struct fs_qreq *r, const char *val, char *err,
			      size_t errlen)
{
	if (strcmp(val, "0") && strcmp(val, "1"))
		return fs_query_fail(err, errlen, -EINVAL,
				     "exact=%.64s: exact must be 0 or 1", val);
	r->exact = val[0] == '1';
	return 0;
}

static int fs_query_opt_ef(struct fs_qreq *r, const char *val, char *err,
			   size_t errlen)
{
	long v;

	if (fs_query_parse_int(val, 1, INT_MAX, &v))
		return fs_query_fail(err, errlen, -EINVAL,
				     "ef=%.64s: ef must be a positive integer",
				     val);
	r->ef = (int)v;
	return 0;
}

static const struct fs_query_opt {
	const char *name;
	fs_query_opt_fn *set;
	int repeatable;
} fs_query_opts[] = {
	{ "k", fs_query_opt_k, 0 },
	{ "mode", fs_query_opt_mode, 0 },
	{ "alpha", fs_query_opt_alpha, 0 },
	{ "ns", fs_query_opt_ns, 0 },
	{ "doc", fs_query_opt_doc, 1 },
	{ "where", fs_query_opt_where, 1 },
	{ "format", fs_query_opt_format, 0 },
	{ "mmr_threshold", fs_query_opt_mmr, 0 },
	{ "exact", fs_query_opt_exact, 0 },
	{ "ef", fs_query_opt_ef, 0 },
};

static int fs_query_option(struct fs_qreq *r, const char *seg, char *err,
			   size_t errlen)
{
	const char *eq = strchr(seg, '=');
	size_t n, i;

	if (!fs_query_is_option(seg))
		return fs_query_fail(err, errlen, -EINVAL,
				     "'%.64s' is not a query option "
				     "(name=value)",
				     seg);
	n = (size_t)(eq - seg);
	for (i = 0; i < FS_QUERY_NELEM(fs_query_opts); i++) {
		const struct fs_query_opt *o = &fs_query_opts[i];

		if (strlen(o->name) != n || strncmp(o->name, seg, n))
			continue;
		/* a second k= is more likely a mistake than an override */
		if (!o->repeatable && (r->seen & (1u << i)))
			return fs_query_fail(err, errlen, -EINVAL,
					     "query option '%s' given twice",
					     o->name);
		r->seen |= 1u << i;
		return o->set(r, eq + 1, err, errlen);
	}
	return fs_query_fail(err, errlen, -ENOENT,
			     "unknown query option '%.*s' (known: k, mode, "
			     "alpha, ns, doc, where, format, mmr_threshold, "
			     "exact, ef)",
			     (int)(n > 64 ? 64 : n), seg);
}

int fs_qreq_from_path(const char *const *segs, size_t n, const char *text,
		      struct fs_qreq **out, char *err, size_t errlen)
{
	struct fs_qreq *r;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	r = fs_qreq_new();
	if (!r)
		return -ENOMEM;
	for (i = 0; i < n && !rc; i++)
		rc = fs_query_option(r, segs[i], err, errlen);
	if (rc)
		goto free_req;
	if (text) {
		if (!*text) {
			rc = fs_query_fail(err, errlen, -EINVAL,
					   "empty query text");
			goto free_req;
		}
		r->text = strdup(text);
		if (!r->text) {
			rc = -ENOMEM;
			goto free_req;
		}
	}
	*out = r;
	return 0;
free_req:
	fs_qreq_free(r);
	if (rc == -ENOMEM)
		fs_query_fail(err, errlen, rc, "out of memory");
	return rc;
}

/* --- JSON requests -------------------------------------------------------- */

static const char *fs_query_json_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int fs_query_json_wrong(const char *name, const char *want,
			       const json_t *v, char *err, size_t errlen)
{
	return fs_query_fail(err, errlen, -EINVAL, "%s must be %s, not %s",
			     name, want, fs_query_json_type(v));
}

/* Each handler sees a non-null value (null means "not set" throughout). */
typedef int fs_query_field_fn(struct fs_qreq *r, const char *name,
			      const json_t *v, char *err, size_t errlen);

static int fs_query_f_query_str(struct fs_qreq *r, const char *name,
				const json_t *v, char *err, size_t errlen)
{
	if (!json_is_string(v))
		return fs_query_json_wrong(name, "a string", v, err, errlen);
	r->text = strdup(json_string_value(v));
	return r->text ? 0 : -ENOMEM;
}

static int fs_query_f_embedding(struct fs_qreq *r, const char *name,
				const json_t *v, char *err, size_t errlen)
{
	size_t n = json_array_size(v), i;

	if (!json_is_array(v))
		return fs_query_json_wrong(name, "an array of numbers", v, err,
					   errlen);
	if (n == 0)
		return fs_query_fail(err, errlen, -EINVAL, "%s is empty", name);
	if (n > UINT32_MAX)
		return fs_query_fail(err, errlen, -EINVAL, "%s is too long",
				     name);
	r->embedding = malloc(n * sizeof(*r->embedding));
	if (!r->embedding)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const json_t *x = json_array_get(v, i);
		double d = json_number_value(x);

		if (!json_is_number(x))
			return fs_query_fail(err, errlen, -EINVAL,
					     "%s[%zu] must be a number, not "
					     "%s",
					     name, i, fs_query_json_type(x));
		if (!isfinite(d) || fabs(d) > FLT_MAX)
			return fs_query_fail(err, errlen, -EINVAL,
					     "%s[%zu] is outside float32 "
					     "range",
					     name, i);
		r->embedding[i] = (float)d;
	}
	r->dim = (uint32_t)n;
	return 0;
}

/* A JSON integer in [lo, hi]; reals such as 5.0 are refused. */
static int fs_query_json_int(const char *name, const json_t *v, long lo,
			     long hi, long *out, char *err, size_t errlen)
{
	json_int_t x;

	if (!json_is_integer(v))
		return fs_query_json_wrong(name, "an integer", v, err, errlen);
	x = json_integer_value(v);
	if (x < lo || x > hi)
		return fs_query_fail(err, errlen, -EINVAL,
				     "%s must be from %ld to %ld, not %lld",
				     name, lo, hi, (long long)x);
	*out = (long)x;
	return 0;
}

static int fs_query_f_top_k(struct fs_qreq *r, const char *name,
			    const json_t *v, char *err, size_t errlen)
{
	long k = 0;
	int rc = fs_query_json_int(name, v, 1, FS_QUERY_K_MAX, &k, err, errlen);

	if (!rc)
		r->k = (size_t)k;
	return rc;
}

static int fs_query_json_ids(const char *name, const json_t *v, char ***ids,
			     size_t *n, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (!json_is_array(v))
		return fs_query_json_wrong(name, "an array of strings", v, err,
					   errlen);
	/* [] is kept as "restrict to nothing", as SimpleVectorStore does */
	*ids = calloc(1, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	for (i = 0; i < json_array_size(v); i++) {
		const json_t *x = json_array_get(v, i);

		if (!json_is_string(x))
			return fs_query_fail(err, errlen, -EINVAL,
					     "%s[%zu] must be a string, not "
					     "%s",
					     name, i, fs_query_json_type(x));
		rc = fs_query_strv_add(ids, n, json_string_value(x));
		if (rc)
			return rc;
	}
	return 0;
}

static int fs_query_f_node_ids(struct fs_qreq *r, const char *name,
			       const json_t *v, char *err, size_t errlen)
{
	return fs_query_json_ids(name, v, &r->node_ids, &r->n_node_ids, err,
				 errlen);
}

static int fs_query_f_doc_ids(struct fs_qreq *r, const char *name,
			      const json_t *v, char *err, size_t errlen)
{
	return fs_query_json_ids(name, v, &r->doc_ids, &r->n_doc_ids, err,
				 errlen);
}

static int fs_query_f_filters(struct fs_qreq *r, const char *name,
			      const json_t *v, char *err, size_t errlen)
{
	if (!json_is_object(v))
		return fs_query_json_wrong(name, "a MetadataFilters object", v,
					   err, errlen);
	return vec_filter_from_json(v, &r->filters, err, errlen);
}

static int fs_query_f_mode(struct fs_qreq *r, const char *name, const json_t *v,
			   char *err, size_t errlen)
{
	if (!json_is_string(v))
		return fs_query_json_wrong(name, "a string", v, err, errlen);
	return fs_query_parse_mode(json_string_value(v), &r->mode, err, errlen);
}

static int fs_query_json_unit(const char *name, const json_t *v, float *out,
			      char *err, size_t errlen)
{
	double d = json_number_value(v);

	if (!json_is_number(v))
		return fs_query_json_wrong(name, "a number", v, err, errlen);
	if (!(d >= 0 && d <= 1))
		return fs_query_fail(err, errlen, -EINVAL,
				     "%s must be from 0 to 1, not %g", name, d);
	*out = (float)d;
	return 0;
}

static int fs_query_f_alpha(struct fs_qreq *r, const char *name,
			    const json_t *v, char *err, size_t errlen)
{
	return fs_query_json_unit(name, v, &r->alpha, err, errlen);
}

static int fs_query_f_mmr(struct fs_qreq *r, const char *name, const json_t *v,
			  char *err, size_t errlen)
{
	return fs_query_json_unit(name, v, &r->mmr_threshold, err, errlen);
}

static int fs_query_f_exact(struct fs_qreq *r, const char *name,
			    const json_t *v, char *err, size_t errlen)
{
	long x = 0;

	if (json_is_boolean(v)) {
		r->exact = json_is_true(v);
		return 0;
	}
	if (!json_is_integer(v) ||
	    fs_query_json_int(name, v, 0, 1, &x, NULL, 0))
		return fs_query_fail(err, errlen, -EINVAL,
				     "%s must be true, false, 0 or 1", name);
	r->exact = (int)x;
	return 0;
}

static int fs_query_f_ef(struct fs_qreq *r, const char *name, const json_t *v,
			 char *err, size_t errlen)
{
	long ef = 0;
	int rc = fs_query_json_int(name, v, 1, INT_MAX, &ef, err, errlen);

	if (!rc)
		r->ef = (int)ef;
	return rc;
}

static int fs_query_f_ns(struct fs_qreq *r, const char *name, const json_t *v,
			 char *err, size_t errlen)
{
	if (!json_is_string(v))
		return fs_query_json_wrong(name, "a string", v, err, errlen);
	return fs_query_parse_ns(json_string_value(v), &r->ns, err, errlen);
}

static int fs_query_f_format(struct fs_qreq *r, const char *name,
			     const json_t *v, char *err, size_t errlen)
{
	if (!json_is_string(v))
		return fs_query_json_wrong(name, "a string", v, err, errlen);
	return fs_query_parse_format(json_string_value(v), &r->format, err,
				     errlen);
}

/*
 * Fields of VectorStoreQuery that lodefs has no use for; dataclasses.asdict
 * writes them, as null, so null is accepted.  A value is refused, since
 * ignoring it would answer a different question than the one asked:
 * output_fields and embedding_field (which stored fields to return and
 * search: lodefs has one of each), sparse_top_k and hybrid_top_k (separate
 * k for the keyword side and the fused list: lodefs uses similarity_top_k
 * for both).
 */
static int fs_query_f_unsupported(struct fs_qreq *r, const char *name,
				  const json_t *v, char *err, size_t errlen)
{
	return fs_query_fail(err, errlen, -EINVAL,
			     "%s is a LlamaIndex field lodefs does not "
			     "support; leave it out or null",
			     name);
}

static const struct fs_query_field {
	const char *name;
	fs_query_field_fn *set;
} fs_query_fields[] = {
	{ "query_str", fs_query_f_query_str },
	{ "query_embedding", fs_query_f_embedding },
	{ "similarity_top_k", fs_query_f_top_k },
	{ "node_ids", fs_query_f_node_ids },
	{ "doc_ids", fs_query_f_doc_ids },
	{ "filters", fs_query_f_filters },
	{ "mode", fs_query_f_mode },
	{ "alpha", fs_query_f_alpha },
	{ "mmr_threshold", fs_query_f_mmr },
	{ "exact", fs_query_f_exact },
	{ "ef", fs_query_f_ef },
	{ "ns", fs_query_f_ns },
	{ "format", fs_query_f_format },
	{ "output_fields", fs_query_f_unsupported },
	{ "embedding_field", fs_query_f_unsupported },
	{ "sparse_top_k", fs_query_f_unsupported },
	{ "hybrid_top_k", fs_query_f_unsupported },
};

static int fs_query_field(struct fs_qreq *r, const char *name, const json_t *v,
			  char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < FS_QUERY_NELEM(fs_query_fields); i++) {
		if (strcmp(name, fs_query_fields[i].name))
			continue;
		if (json_is_null(v))
			return 0;
		return fs_query_fields[i].set(r, name, v, err, errlen);
	}
	return fs_query_fail(err, errlen, -EINVAL,
			     "unknown field '%.64s' in query JSON (known: "
			     "query_str, query_embedding, similarity_top_k, "
			     "node_ids, doc_ids, filters, mode, alpha, "
			     "mmr_threshold, exact, ef, ns, format)",
			     name);
}

int fs_qreq_from_json(const char *json, size_t len, struct fs_qreq **out,
		      char *err, size_t errlen)
{
	struct fs_qreq *r = NULL;
	json_error_t jerr;
	const char *name;
	json_t *root, *v;
	int rc = 0;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	/* a repeated key is refused: which one wins would be a guess */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fs_query_fail(err, errlen, -EINVAL,
				     "query JSON invalid at line %d column "
				     "%d: %s",
				     jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		rc = fs_query_json_wrong("query JSON", "an object", root, err,
					 errlen);
		goto free_root;
	}
	r = fs_qreq_new();
	if (!r) {
		rc = -ENOMEM;
		goto free_root;
	}
	json_object_foreach(root, name, v)
	{
		rc = fs_query_field(r, name, v, err, errlen);
		if (rc)
			goto free_req;
	}
	if (!r->text && !r->embedding) {
		rc = fs_query_fail(err, errlen, -EINVAL,
				   "query JSON needs query_str or "
				   "query_embedding");
		goto free_req;
	}
	json_decref(root);
	*out = r;
	return 0;
free_req:
	fs_qreq_free(r);
free_root:
	json_decref(root);
	if (rc == -ENOMEM)
		fs_query_fail(err, errlen, rc, "out of memory");
	return rc;
}

/* --- running and rendering ------------------------------------------------ */

struct fs_query_buf {
	char *data;
	size_t len, cap;
};

static int fs_query_buf_add(struct fs_query_buf *b, const char *s, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *nd;

	while (cap - b->len < n + 1)
		cap *= 2;
	if (cap != b->cap) {
		nd = realloc(b->data, cap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/*
 * One block per hit, for people and grep:
 *
 *   1. 0.8123 node_id (ref_doc_id)
 *   the node's text
 *   <blank line>
 *
 * "(ref_doc_id)" is left out for a node without one; no hits, no output.
 */
static int fs_query_render_text(const struct store_hit *hits, size_t n,
				char **out, size_t *len)
{
	struct fs_query_buf b = { 0 };
	char head[64];
	size_t i, tl;
	int rc = fs_query_buf_add(&b, "", 0);

	for (i = 0; i < n && !rc; i++) {
		snprintf(head, sizeof(head), "%zu. %.4f ", i + 1,
			 hits[i].score);
		rc = fs_query_buf_add(&b, head, strlen(head));
		if (!rc)
			rc = fs_query_buf_add(&b, hits[i].node_id,
					      strlen(hits[i].node_id));
		if (!rc && hits[i].ref_doc_id) {
			rc = fs_query_buf_add(&b, " (", 2);
			if (!rc)
				rc = fs_query_buf_add(
					&b, hits[i].ref_doc_id,
					strlen(hits[i].ref_doc_id));
			if (!rc)
				rc = fs_query_buf_add(&b, ")", 1);
		}
		if (!rc)
			rc = fs_query_buf_add(&b, "\n", 1);
		tl = strlen(hits[i].text);
		if (!rc)
			rc = fs_query_buf_add(&b, hits[i].text, tl);
		if (!rc && tl && hits[i].text[tl - 1] != '\n')
			rc = fs_query_buf_add(&b, "\n", 1);
		if (!rc)
			rc = fs_query_buf_add(&b, "\n", 1);
	}
	if (rc) {
		free(b.data);
		return rc;
	}
	*out = b.data;
	*len = b.len;
	return 0;
}

static int fs_query_render_json(const struct store_query *q,
				const struct store_hit *hits, size_t n,
				char **out, size_t *len)
{
	char *text = store_hits_json(q, hits, n), *nt;
	size_t tl;

	if (!text)
		return -ENOMEM;
	tl = strlen(text);
	nt = realloc(text, tl + 2);
	if (!nt) {
		free(text);
		return -ENOMEM;
	}
	nt[tl] = '\n';
	nt[tl + 1] = '\0';
	*out = nt;
	*len = tl + 1;
	return 0;
}

int fs_qreq_run(struct store *s, const struct fs_qreq *r, char **out,
		size_t *len, char *err, size_t errlen)
{
	struct store_query q = { 0 };
	struct store_hit *hits;
	size_t n;
	int rc;

	*out = NULL;
	*len = 0;
	if (err && errlen)
		err[0] = '\0';
	q.text = r->text;
	q.embedding = r->embedding;
	q.dim = r->dim;
	q.k = r->k;
	q.mode = r->mode;
	q.alpha = r->alpha;
	q.ns = r->ns;
	q.doc_ids = (const char *const *)r->doc_ids;
	q.n_doc_ids = r->n_doc_ids;
	q.node_ids = (const char *const *)r->node_ids;
	q.n_node_ids = r->n_node_ids;
	q.filters = r->filters;
	q.mmr_threshold = r->mmr_threshold;
	q.exact = r->exact == 1;
	q.ef = r->ef > 0 ? (unsigned)r->ef : 0;
	rc = store_query(s, &q, &hits, &n);
	if (rc)
		return fs_query_fail(err, errlen, rc, "%s",
				     *store_last_error() ? store_last_error()
							 : strerror(-rc));
	if (r->format == FS_QUERY_TEXT)
		rc = fs_query_render_text(hits, n, out, len);
	else
		rc = fs_query_render_json(&q, hits, n, out, len);
	store_hits_free(hits, n);
	if (rc)
		fs_query_fail(err, errlen, rc, "out of memory");
	return rc;
}

const char *fs_qreq_ns(const struct fs_qreq *r)
{
	return r ? r->ns : NULL;
}
