/* vec.h - exact vector search, built-in hashed embedding, metadata filters. */
#ifndef LODEFS_VEC_H
#define LODEFS_VEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct engine_vecs; /* core/engine.h: a read-only view of a vector collection */

/* --- exact search -------------------------------------------------------- */

/*
 * Scores are cosine similarities exactly as LlamaIndex's SimpleVectorStore
 * computes them, dot(q, v) / (|q| * |v|), here in double precision from the
 * float32 rows (every product is exact in double, so only the summation
 * rounds).  Rules LlamaIndex leaves undefined (numpy returns nan there):
 *
 *   - a zero query or a zero row scores 0.0 against everything;
 *   - a row whose score is not a number (it holds NaN or Inf) is skipped;
 *   - a query holding NaN or Inf is refused with -EINVAL;
 *   - -0.0 is reported as 0.0.
 *
 * Order: score descending; equal scores by key DESCENDING (bytewise).  This
 * is LlamaIndex's own choice, not an accident: get_top_k_embeddings keeps a
 * heapq of (score, id) tuples and pops the smallest, so on a tie at the k-th
 * place the larger id survives (the py_persist fixtures depend on it).
 */

struct vec_hit {
	char *key;    /* malloc'd copy of the row's key */
	double score; /* cosine similarity; for vec_mmr the MMR score */
};

/*
 * Row filter, called once per live row BEFORE the row is scored, with the
 * row's key (borrowed, valid during the call only).  Returns 1 to score the
 * row, 0 to skip it, or a negative errno to abort the search, which then
 * returns that value.
 */
typedef int vec_filter_fn(void *arg, const char *key);

/*
 * The k best rows of `v` for `query` (dim floats), skipping dead rows and
 * rows refused by `filter` (NULL: none refused).  On success *hits is a
 * malloc'd array of *n <= k hits (NULL when *n is 0), best first; free it
 * with vec_hits_free.  k == 0 returns no hits, k larger than the number of
 * rows returns them all.  Returns 0; -EINVAL if dim is 0 or differs from
 * v->dim or the query is not finite; -ENOMEM; or the filter's error.
 */
int vec_topk(const struct engine_vecs *v, const float *query, uint32_t dim,
	     size_t k, vec_filter_fn *filter, void *arg, struct vec_hit **hits,
	     size_t *n);

/*
 * How vec_topk is fast and still exact: the query is normalised once (in
 * double, then rounded to float32), each row's squared norm is computed in
 * float32 in the same pass over memory that computes its dot products (a
 * tile of rows, in cache, serves every query of a batch), and rows are
 * ranked by the float32 cosine with the SIMD kernel the CPU runs best
 * (vec_kernel_name).  The float32 score is within a proven bound E of
 * the exact one, so only rows within 2E of the k-th float32 score can
 * belong to the top k; those are rescored in double exactly as the
 * reference scan does, and ties and order come out identical.  Rows
 * whose float32 norm cannot be trusted (zero, tiny, huge, NaN) are always
 * rescored.  Stored rows are never modified: nothing is pre-normalised.
 */

/* One query of a batch: fill query, k, filter and arg; the rest is out. */
struct vec_query {
	const float *query; /* dim floats */
	size_t k;
	vec_filter_fn *filter; /* may be NULL */
	void *arg;
	struct vec_hit *hits; /* out, as vec_topk */
	size_t n;	      /* out */
	int rc;		      /* out: 0 or vec_topk's error */
};

/*
 * vec_topk for nq queries in one pass over the rows (blocks of rows x
 * queries, so each row is read from memory once for all of them).  Each
 * query gets exactly what vec_topk would give it, with its own rc.
 * Returns 0 if every rc is 0, else the first non-zero rc.
 */
int vec_topk_batch(const struct engine_vecs *v, uint32_t dim,
		   struct vec_query *qs, size_t nq);

/*
 * vec_topk, coalesced: concurrent calls for the same (owner, coll) are
 * answered by one pass.  The first caller scans for every caller already
 * waiting (up to a batch limit); callers arriving during its pass wait
 * and the first of them scans for all of them next.  Every caller must be
 * inside engine_with_vecs for that collection (so no write can happen
 * between their views, which are therefore the same rows); `owner`
 * tells stores apart (the engine), coll is the collection's name.
 * `filter` may be called from another caller's thread.
 */
int vec_topk_shared(const void *owner, const char *coll,
		    const struct engine_vecs *v, const float *query,
		    uint32_t dim, size_t k, vec_filter_fn *filter, void *arg,
		    struct vec_hit **hits, size_t *n);

/* Passes made and queries answered by vec_topk_shared since start. */
void vec_coalesce_stats(uint64_t *passes, uint64_t *queries);

/* The ranking kernel in use: "avx512", "avx2" or "generic". */
const char *vec_kernel_name(void);

/*
 * Forces a kernel (NULL: back to the best the CPU runs).  The environment
 * variable LODEFS_VEC_KERNEL does the same at start.  Returns 0, -EINVAL
 * for an unknown name, -ENOTSUP if this CPU cannot run it.  For tests and
 * benchmarks: answers are the same with every kernel.
 */
int vec_kernel_select(const char *name);

/* Names of the kernels this CPU runs, best first; returns how many. */
int vec_kernel_list(const char **names, size_t max);

/*
 * The int8 first pass of large namespaces.  A namespace of at least
 * VEC_Q8_MIN_ROWS rows gets, next to its float32 rows, an int8 copy
 * (struct vec_q8: each row normalised, scaled by its largest component,
 * rounded; about 26% of the float32 bytes at 384 dims) read instead of
 * the float32 rows to find candidates.  Each int8 score comes with a proven
 * bound on its distance from the exact cosine, so the candidates hold the
 * exact top k, ties included; they are rescored in double as vec_topk
 * does, and answers are bit-identical to vec_topk.  The copy is built at
 * the first search that can use it and kept in step with the rows by
 * vec_q8_observe (every vector put) and by a check of every row's key at
 * each search (see core/vec_q8.c).
 */
#define VEC_Q8_MIN_ROWS 20000

struct vec_q8;	   /* one namespace's int8 copy */
struct vec_q8_set; /* a store's: one per vector collection */

/* 0 or -ENOMEM; free with vec_q8_free (NULL is ok). */
int vec_q8_new(struct vec_q8 **out);
void vec_q8_free(struct vec_q8 *z);

/*
 * Tells z that the vector of `key` changed and is now at `row` (the
 * pointer into the collection's block the engine observer hands out), or
 * with row NULL that key was deleted.  Call it for every change of the
 * collection, as the engine observer does (under the engine's write
 * lock, so never during a search of the same collection).
 */
void vec_q8_observe(struct vec_q8 *z, const char *key, const float *row);

/*
 * vec_topk_batch with z's int8 copy (built or brought up to date first,
 * while the caller holds the engine's read lock); without it (z NULL, too
 * few rows, out of memory) exactly vec_topk_batch.
 */
int vec_topk_batch_q8(const struct engine_vecs *v, uint32_t dim,
		      struct vec_query *qs, size_t nq, struct vec_q8 *z);

/* vec_topk_shared through vec_topk_batch_q8 with z (the same for coll). */
int vec_topk_shared_q8(const void *owner, const char *coll, struct vec_q8 *z,
		       const struct engine_vecs *v, const float *query,
		       uint32_t dim, size_t k, vec_filter_fn *filter, void *arg,
		       struct vec_hit **hits, size_t *n);

/* A set of copies by collection name; 0 or -ENOMEM.  NULL is ok to free. */
int vec_q8_set_new(struct vec_q8_set **out);
void vec_q8_set_free(struct vec_q8_set *s);
/* The copy of coll (created empty if absent); NULL if out of memory. */
struct vec_q8 *vec_q8_set_get(struct vec_q8_set *s, const char *coll);
/* vec_q8_observe on coll's copy if it has one (s NULL: nothing). */
void vec_q8_set_observe(struct vec_q8_set *s, const char *coll, const char *key,
			const float *row);

/*
 * For tests and benchmarks: -1 automatic (the default: namespaces of
 * VEC_Q8_MIN_ROWS rows or more), 0 never (the float32 scan), 1 always,
 * whatever the size.  The environment variable LODEFS_VEC_Q8 (0 or 1)
 * sets it at start.  Returns the previous mode.
 */
int vec_q8_mode(int mode);

/* The int8 kernel in use: "avx512vnni", "avx2" or "generic" (it follows
 * vec_kernel_select: "avx512" uses VNNI where the CPU has it). */
const char *vec_q8_kernel_name(void);

/* LlamaIndex's default mmr_threshold (weight of relevance over novelty). */
#define VEC_MMR_THRESHOLD_DEFAULT 0.5

/*
 * Maximal marginal relevance as get_top_k_mmr_embeddings computes it, with
 * t = threshold: the first pick maximises t * sim(q, v) and scores that; each
 * next pick maximises t * sim(q, v) - (1 - t) * sim(v, last pick) and scores
 * that.  As in LlamaIndex the penalty is against the LAST pick only, not the
 * most similar pick so far.  Equal scores go to the smaller key (LlamaIndex
 * takes the first row in insertion order; rows here are in key order).  The
 * zero-vector and NaN rules of vec_topk apply.  Same ownership and errors as
 * vec_topk; -EINVAL also for a NaN or infinite threshold.
 */
int vec_mmr(const struct engine_vecs *v, const float *query, uint32_t dim,
	    size_t k, double threshold, vec_filter_fn *filter, void *arg,
	    struct vec_hit **hits, size_t *n);

/* Frees the keys and the array returned by vec_topk/vec_mmr.  NULL is ok. */
void vec_hits_free(struct vec_hit *hits, size_t n);

/*
 * Cosine similarity of two dim-float vectors with the rules above (0.0 if
 * either is zero; NaN if either holds NaN or Inf).
 */
double vec_cosine(const float *a, const float *b, uint32_t dim);

/* --- built-in embedding -------------------------------------------------- */

#define VEC_EMBED_DIM_DEFAULT 1024
#define VEC_EMBED_DIM_MAX     65536

/*
 * The xxh3 seeds of word and n-gram features.  Part of the stored format:
 * changing one changes every built-in vector already written.  Two seeds,
 * so that the word "abc" and the 3-gram "abc" are different features.
 */
#define VEC_EMBED_SEED_WORD 0x6c6f646566730001ULL
#define VEC_EMBED_SEED_GRAM 0x6c6f646566730002ULL

/*
 * Deterministic signed feature-hashing embedding of `len` bytes of UTF-8
 * text into out[dim].  Words are maximal runs of ASCII letters and digits
 * and of non-ASCII letters (invalid UTF-8, punctuation and symbols
 * separate words), lowercased (ASCII, Latin, Greek, Cyrillic, Armenian,
 * fullwidth), cut every 64 code points.  Features: each word, and each
 * character 3-, 4- and 5-gram of "<word>" (boundary markers included).
 * A feature with term frequency tf adds +-(1 + ln tf) at bucket
 * xxh3(feature, seed) mod dim, the sign being the hash's top bit; the
 * result is L2-normalised.  Text without words gives the zero vector.  The
 * same bytes give the same floats on every run and machine.  Returns 0;
 * -EINVAL if dim is 0 or above VEC_EMBED_DIM_MAX; -ENOMEM.
 */
int vec_embed_hash(const char *text, size_t len, uint32_t dim, float *out);

/* --- metadata filters ---------------------------------------------------- */

/*
 * LlamaIndex's MetadataFilters, evaluated as SimpleVectorStore evaluates
 * them (llama_index.core.vector_stores.utils.build_metadata_filter_fn, the
 * current version).  A node's metadata is a JSON object; `value` below is
 * metadata.get(key), where a missing key and JSON null are both None.
 *
 *   is_empty   value is None, "" or [] (the only operator a missing key can
 *              satisfy besides != and nin)
 *   None       every other operator is false, except != and nin: true
 *   ==  !=     Python equality: 1 == 1.0 == true, "1" != 1, lists and
 *              objects compare element by element
 *   > >= < <=  numbers with numbers (booleans count as 0/1), strings with
 *              strings (code point order), lists with lists
 *              (lexicographically); any other pair raises TypeError
 *   in  nin    value in filter_value: membership in a list, substring of a
 *              string (value must be a string), TypeError for a number
 *   contains   filter_value in value: membership in a list, substring of a
 *              string, key of an object
 *   any  all   any/all(v in value for v in filter_value), short-circuit, so
 *              an error after the deciding element is never seen; a string
 *              filter_value iterates its characters
 *   text_match             both strings: case-sensitive substring
 *   text_match_insensitive both strings: substring after lowercasing (the
 *                          lowercasing of vec_embed_hash, not full Unicode)
 *
 * Where Python raises (TypeError, e.g. "year" > 3 on a string year), the
 * whole query fails in LlamaIndex; here the offending node simply does not
 * match, whatever the conditions around it.  A group combines its filters
 * with and (all), or (any) or not (none matches); an empty group matches
 * everything.  Nested groups are a lodefs extension (SimpleVectorStore
 * raises "Nested MetadataFilters are not supported"): a nested group is
 * evaluated exactly as a top-level one would be.
 *
 * Differences from llama-index-core 0.12: there a missing key fails every
 * operator (!= and nin included), text_match is case-insensitive and the
 * condition "not" does not exist.
 */

enum vec_filter_cond {
	VEC_COND_AND = 0,
	VEC_COND_OR,
	VEC_COND_NOT,
};

enum vec_filter_op {
	VEC_OP_EQ = 0, /* "==" */
	VEC_OP_NE,     /* "!=" */
	VEC_OP_GT,     /* ">" */
	VEC_OP_GTE,    /* ">=" */
	VEC_OP_LT,     /* "<" */
	VEC_OP_LTE,    /* "<=" */
	VEC_OP_IN,     /* "in" */
	VEC_OP_NIN,    /* "nin" */
	VEC_OP_CONTAINS,
	VEC_OP_TEXT_MATCH,
	VEC_OP_TEXT_MATCH_INSENSITIVE,
	VEC_OP_ANY,
	VEC_OP_ALL,
	VEC_OP_IS_EMPTY,
};

struct vec_filters;

/* The LlamaIndex spelling of an operator ("==", "text_match", ...). */
const char *vec_filter_op_name(enum vec_filter_op op);

/* A new empty group (vec_filter_free frees it); 0, -EINVAL or -ENOMEM. */
int vec_filter_new(enum vec_filter_cond cond, struct vec_filters **out);

/*
 * Parses MetadataFilters JSON:
 *   {"filters": [F, ...], "condition": "and" | "or" | "not"}
 * where each F is {"key": K, "value": V, "operator": OP} (operator omitted:
 * "==", the legacy ExactMatchFilter) or a nested MetadataFilters object.
 * "condition" defaults to "and"; V is a string, number, boolean, null, or
 * a list of strings/numbers/booleans (a missing V is null).  Unknown
 * members are ignored, as pydantic does.  Lenient where LlamaIndex is
 * strict: booleans (pydantic's Strict types refuse them) and mixed lists.
 * On success *out belongs to the caller (vec_filter_free).  Returns 0 or
 * -EINVAL with a reason in err (NUL-terminated, truncated to errlen; err
 * may be NULL), or -ENOMEM.
 */
int vec_filter_parse(const char *json, size_t len, struct vec_filters **out,
		     char *err, size_t errlen);

/* As vec_filter_parse, from an already parsed object (borrowed). */
int vec_filter_from_json(const json_t *obj, struct vec_filters **out, char *err,
			 size_t errlen);

/*
 * Appends one filter written in the compact form used by query paths
 * (query/where=EXPR/...); the caller has percent-decoded EXPR.
 *
 *   EXPR  := KEY SYMOP VALUE | KEY "~" WORDOP [ "~" VALUE ]
 *   SYMOP := "==" | "=" | "!=" | ">=" | "<=" | ">" | "<"
 *   WORDOP:= in | nin | any | all | contains | text_match
 *          | text_match_insensitive | is_empty
 *          | eq | ne | gt | gte | lt | lte | == | != | > | >= | < | <=
 *
 * KEY runs up to the first of = ! < > ~ (so it cannot contain them; use the
 * JSON form for such keys).  Spaces around KEY, WORDOP and VALUE are
 * dropped.  For in, nin, any and all VALUE is a comma-separated list.  A
 * value (or list element) is a number if it reads as a JSON number,
 * true/false/null as such, "..." a string taken verbatim (quotes keep
 * commas, spaces and number-like strings), else the string as written.
 * is_empty takes no VALUE; every other operator needs one ("" for the
 * empty string).  A "~" after WORDOP starts VALUE, so VALUE may hold "~".
 *
 *   year>=2020            year~gte~2020      (no shell quoting needed)
 *   author==alice         author=alice       author=="2020"
 *   lang!=en              file_name~in~a.txt,b.txt
 *   tags~any~red,green    tags~all~red,green tags~contains~red
 *   title~text_match~Apple                   notes~is_empty
 *   title~text_match_insensitive~apple pie
 *
 * The filter joins f with f's own condition (make f an "and" group to AND
 * several where= segments).  Returns 0, -EINVAL with a reason in err, or
 * -ENOMEM; f is unchanged on error.
 */
int vec_filter_parse_where(const char *expr, struct vec_filters *f, char *err,
			   size_t errlen);

/*
 * Appends the filter {key, op, value} (value borrowed and deep-copied; NULL
 * means null).  Returns 0, -EINVAL (NULL key, object value), -ENOMEM.
 */
int vec_filter_add(struct vec_filters *f, const char *key,
		   enum vec_filter_op op, const json_t *value);

/*
 * Appends `child` as a nested group; on success f owns child (freed with
 * f), on error the caller still does.  Returns 0, -EINVAL, -ENOMEM.
 */
int vec_filter_add_group(struct vec_filters *f, struct vec_filters *child);

/* Number of filters and groups directly in f (0 for NULL). */
size_t vec_filter_count(const struct vec_filters *f);

/*
 * 1 if `metadata` (a JSON object, borrowed; NULL or a non-object counts as
 * {}) satisfies f, else 0.  A NULL f matches everything.
 */
int vec_filter_match(const struct vec_filters *f, const json_t *metadata);

/* Frees f and its nested groups.  NULL is ok. */
void vec_filter_free(struct vec_filters *f);

#endif /* LODEFS_VEC_H */
