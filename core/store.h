/* store.h - the storage context: docstore, index, vector and graph stores. */
#ifndef LODEFS_STORE_H
#define LODEFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backends/backend.h"
#include "core/engine.h"

/*
 * One store is LlamaIndex's StorageContext on top of the engine: every view
 * (documents, nodes, vectors, index structs, triples) is a set of engine
 * collections named as LlamaIndex names them:
 *
 *   docstore/data          node_id -> {"__data__": TextNode, "__type__": "1"}
 *   docstore/metadata      id -> {"doc_hash": H[, "ref_doc_id": D]}
 *   docstore/ref_doc_info  doc_id -> {"node_ids": [...], "metadata": {...}}
 *   index_store/data       index_id -> {"__type__": T, "__data__": "..."}
 *   vector_store/<ns>      node_id -> float32[dim] (ENGINE_VEC)
 *   graph_store/data       subject -> {"rels": [[rel, obj], ...]}
 *   lodefs/content         doc_id -> the document's bytes (ENGINE_BLOB)
 *   lodefs/files           doc_id -> {"mode", "mtime", "ctime", "size",
 *                                     "hash", "indexed", "xattrs": {...}}
 *
 * Every mutating call is one engine batch: it is durable when the call
 * returns 0 and it is either wholly applied or not at all.  A failing call
 * returns a negative errno and leaves a reason in store_last_error().
 * Functions are thread safe.
 */

#define STORE_NS_DEFAULT	    "default"
#define STORE_CHUNK_SIZE_DEFAULT    1024
#define STORE_CHUNK_OVERLAP_DEFAULT 200

struct store;

struct store_opts {
	unsigned chunk_size;	/* tokens per node */
	unsigned chunk_overlap; /* tokens, less than chunk_size */
	/*
	 * Dimension of the built-in hashed embedding given to nodes that come
	 * without one; 0 disables built-in vectors.
	 */
	uint32_t embed_dim;
	struct engine_opts engine;
};

/* Fills `o` with the defaults. */
void store_opts_init(struct store_opts *o);

/*
 * Opens the store held by `be` (borrowed; it must outlive the store) and
 * its keyword index: loaded from the checkpoint where one was saved there,
 * else built from the nodes.  `opts` may be NULL for defaults; the store
 * sets opts->engine.exts itself (any given there are ignored).
 * Returns 0, or a negative errno with store_last_error() set (-EUCLEAN: the
 * store is damaged; run `lode fsck`).
 */
int store_open(struct backend *be, const struct store_opts *opts,
	       struct store **out);

/* Closes the store; does not close the backend.  Accepts NULL. */
void store_close(struct store *s);

/* The engine underneath (borrowed, valid until store_close). */
struct engine *store_engine(struct store *s);

/* Reason for the last failure of a store call in this thread, or "". */
const char *store_last_error(void);

/* --- documents ---------------------------------------------------------- */

struct store_doc {
	const char *id; /* the document id: a relative path */
	const void *data;
	size_t len;
	/* Extra user metadata as a JSON object text, or NULL. */
	const char *user_meta;
	time_t mtime;  /* 0 = now */
	time_t ctime;  /* 0 = mtime */
	unsigned mode; /* permission bits; 0 = 0644 */
};

enum store_put_result {
	STORE_INDEXED = 0,   /* stored, split into nodes and indexed */
	STORE_UNCHANGED = 1, /* same content and metadata: nothing written */
	STORE_BINARY = 2,    /* stored, not indexed: not UTF-8 text */
};

/*
 * Stores `n` documents in one atomic batch, replacing any previous version
 * and its nodes, vectors and ref_doc_info.  Text (valid UTF-8 without NUL)
 * is split into nodes like SentenceSplitter, with SOURCE/PREVIOUS/NEXT
 * relationships and SimpleDirectoryReader-like metadata, given the built-in
 * vector and indexed for keyword search.  results[i] (may be NULL) gets an
 * enum store_put_result per document.  Later entries with the same id win.
 * Returns 0 or a negative errno; on error nothing is changed.
 */
int store_docs_put(struct store *s, const struct store_doc *docs, size_t n,
		   int *results);

/* The document's bytes: *data malloc'd (free()), NUL-terminated. -ENOENT. */
int store_doc_get(struct store *s, const char *id, void **data, size_t *len);

/*
 * Deletes a ref doc with all its nodes, their vectors (every namespace),
 * docstore metadata, ref_doc_info and the stored content.  -ENOENT if
 * neither content nor ref_doc_info exists for `id`.
 */
int store_doc_del(struct store *s, const char *id);

/* 1 if `id` is a stored document (content or ref_doc_info), else 0. */
int store_doc_exists(struct store *s, const char *id);

/* --- nodes -------------------------------------------------------------- */

/*
 * Inserts or replaces a node given as LlamaIndex TextNode JSON (the object
 * stored under "__data__"; a full {"__data__":..., "__type__":...} wrapper
 * is accepted too).  "id_" is required.  An "embedding" array goes to the
 * default vector namespace and is stored as null in the docstore, as
 * LlamaIndex does; without one the built-in embedding is computed.  The
 * SOURCE relationship ("1") links the node to its ref doc.  -EINVAL for
 * invalid JSON or a wrong shape, with the reason in store_last_error().
 */
int store_node_put(struct store *s, const char *json, size_t len);

/* The node's TextNode JSON (the "__data__" object), malloc'd. -ENOENT. */
int store_node_get(struct store *s, const char *id, char **json, size_t *len);

/* Deletes a node, its vectors and metadata; updates ref_doc_info. */
int store_node_del(struct store *s, const char *id);

/* --- vectors ------------------------------------------------------------ */

/* Sets node `id`'s vector in namespace `ns`.  -EINVAL on a wrong dim. */
int store_vec_put(struct store *s, const char *ns, const char *id,
		  const float *v, uint32_t dim);
/* *v malloc'd (free()), *dim floats.  -ENOENT. */
int store_vec_get(struct store *s, const char *ns, const char *id, float **v,
		  uint32_t *dim);
int store_vec_del(struct store *s, const char *ns, const char *id);

/* --- index store -------------------------------------------------------- */

/*
 * Stores an index struct {"__type__": T, "__data__": ...} under `id`.
 * -EINVAL if it is not an object with a string "__type__" and "__data__".
 */
int store_index_put(struct store *s, const char *id, const char *json,
		    size_t len);
int store_index_get(struct store *s, const char *id, char **json, size_t *len);
int store_index_del(struct store *s, const char *id);

/* --- graph store (SimpleGraphStore) ------------------------------------- */

/* Adds (subj, rel, obj) unless present. */
int store_graph_upsert(struct store *s, const char *subj, const char *rel,
		       const char *obj);
/* Removes (subj, rel, obj); -ENOENT if absent. */
int store_graph_delete(struct store *s, const char *subj, const char *rel,
		       const char *obj);
/* [[rel, obj], ...] of `subj` as JSON text, malloc'd ("[]" if none). */
int store_graph_get(struct store *s, const char *subj, char **json);
/*
 * SimpleGraphStore.get_rel_map(subjs, depth, limit) as JSON text
 * {subj: [[subj, rel, obj], ...], ...}; subjs NULL / n 0 = every subject.
 */
int store_graph_rel_map(struct store *s, const char *const *subjs, size_t n,
			int depth, int limit, char **json);

/* --- raw kv ------------------------------------------------------------- */

/* A JSON object value in any collection; see engine_get for ownership. */
int store_kv_put(struct store *s, const char *coll, const char *key,
		 const char *json, size_t len);
int store_kv_get(struct store *s, const char *coll, const char *key,
		 char **json, size_t *len);
int store_kv_del(struct store *s, const char *coll, const char *key);

/* --- query -------------------------------------------------------------- */

enum store_mode {
	STORE_MODE_DEFAULT = 0, /* keyword without vectors, else as set */
	STORE_MODE_KEYWORD,
	STORE_MODE_VECTOR,
	STORE_MODE_HYBRID,
};

struct vec_filters;

struct store_query {
	const char *text;	/* query_str; may be NULL for vector queries */
	const float *embedding; /* query_embedding or NULL */
	uint32_t dim;
	size_t k; /* similarity_top_k; 0 = 2, as LlamaIndex */
	enum store_mode mode;
	float alpha;	/* hybrid weight of the vector side; <0 = 0.5 */
	const char *ns; /* vector namespace; NULL = "default" */
	const char *const *doc_ids; /* restrict to these ref docs, or NULL */
	size_t n_doc_ids;
	const char *const *node_ids; /* restrict to these nodes, or NULL */
	size_t n_node_ids;
	const struct vec_filters *filters; /* borrowed, or NULL */
};

struct store_hit {
	double score;
	char *node_id;
	char *ref_doc_id; /* NULL if none */
	char *text;
	char *metadata; /* JSON object text */
};

/*
 * Runs a query.  *hits is a malloc'd array of *n hits, best first; free it
 * with store_hits_free.  -EINVAL for a bad query (reason set).
 */
int store_query(struct store *s, const struct store_query *q,
		struct store_hit **hits, size_t *n);
void store_hits_free(struct store_hit *hits, size_t n);

/*
 * Renders hits as the JSON result document (NodeWithScore field names):
 * {"query_str":..., "mode":..., "nodes": [{"rank", "score", "node_id",
 * "ref_doc_id", "text", "metadata"}...], "ids": [...], "similarities":
 * [...]}.  Returns malloc'd text or NULL on out of memory.
 */
char *store_hits_json(const struct store_query *q, const struct store_hit *hits,
		      size_t n);

/* --- maintenance -------------------------------------------------------- */

struct store_stats {
	struct engine_stats engine;
	uint64_t documents; /* ref docs */
	uint64_t nodes;
	uint64_t triples;
	uint64_t indexes;
	uint64_t queries;
	/* 1 if the keyword index was loaded from the checkpoint at open. */
	int keyword_index_loaded;
};

void store_get_stats(struct store *s, struct store_stats *st);

/* Namespaces that hold vectors: fn(arg, ns, count, dim). */
typedef int store_ns_fn(void *arg, const char *ns, size_t count, uint32_t dim);
int store_namespaces(struct store *s, store_ns_fn *fn, void *arg);

/*
 * Checks cross-references of an open store: each node of ref_doc_info
 * exists and points back to its doc, every node has docstore metadata,
 * every vector belongs to a node, every document's content matches its
 * recorded hash.  Reports each problem through `report` and returns their
 * number.
 */
int store_fsck(struct store *s, engine_report_fn *report, void *arg);

#endif
