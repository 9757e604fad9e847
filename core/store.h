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
 *                                     "hash", "indexed", "xattrs": {...},
 *                                     "ino"}
 *   lodefs/dirs            path -> {"mode", "mtime", "ctime", "ino"}
 *
 * Every mutating call is one engine batch: it is durable when the call
 * returns 0 and it is either wholly applied or not at all.  A failing call
 * returns a negative errno and leaves a reason in store_last_error().
 * Functions are thread safe.
 */

#define STORE_NS_DEFAULT	    "default"
#define STORE_CHUNK_SIZE_DEFAULT    1024
#define STORE_CHUNK_OVERLAP_DEFAULT 200
#define STORE_ANN_THRESHOLD_DEFAULT 50000

struct store;

struct store_opts {
	unsigned chunk_size;	/* tokens per node */
	unsigned chunk_overlap; /* tokens, less than chunk_size */
	/*
	 * Dimension of the built-in hashed embedding given to nodes that come
	 * without one; 0 disables built-in vectors.
	 */
	uint32_t embed_dim;
	/*
	 * Weight of adjacent word pairs in BM25 (text_index_opts): by
	 * default TEXT_BM25_BIGRAM_WEIGHT, the sequential dependence model's
	 * published 0.10 / 0.85; 0 indexes words alone, in about a tenth of
	 * the keyword index's memory (-o bm25_bigrams=0).
	 */
	double bm25_bigram_weight;
	/*
	 * Namespaces with at least this many vectors get an HNSW graph,
	 * built in the background and saved in checkpoints; smaller ones
	 * are scanned exactly (-o ann_threshold=N; 0: never HNSW).
	 */
	size_t ann_threshold;
	/*
	 * Graphs from the checkpoint are searched and saved again, but no
	 * vector is linked and no graph is built: for short-lived processes
	 * (lode), which would spend their time on a build they then drop.
	 * Vectors not in a graph are scanned exactly.
	 */
	int ann_no_build;
	/*
	 * An OpenAI-compatible /v1/embeddings server (-o embed=URL,
	 * embed_model=NAME, embed_dim=N): nodes and queries without an
	 * embedding are embedded there instead of by the built-in hashing.
	 * NULL: the built-in embedding.  Borrowed; must outlive the store.
	 */
	const char *embed_url;
	const char *embed_model;
	/* One request to it, retries apart (ms); 0: 30 s. */
	unsigned embed_timeout_ms;
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
	/*
	 * Inode number recorded with the document (lodefs/files "ino"); 0
	 * keeps the one already recorded, or makes a new one with
	 * store_new_ino() for a new document (or a record without one).
	 */
	uint64_t ino;
};

/*
 * A fresh inode number for a new document or directory: unique with
 * overwhelming probability across writers and time (xxh3 of the id, the
 * clock in ns, a random per-process salt and a per-process counter), in
 * [STORE_INO_MIN, 2^63).  Thread safe; `id` may be NULL.
 */
#define STORE_INO_MIN (1ull << 62)
uint64_t store_new_ino(const char *id);

/* A document's record in lodefs/files. */
struct store_file {
	unsigned mode;
	time_t mtime, ctime;
	uint64_t size;
	uint64_t ino; /* 0 if the record has none (older stores) */
	int indexed;  /* 1: text, split into nodes; 0: stored only */
	char hash[33];
	char *xattrs; /* JSON object text {name: value}, malloc'd */
};

/*
 * Fills *f from the record of `id`: 0, -ENOENT, or -EINVAL if the record
 * is damaged.  f->xattrs is malloc'd: free it with store_file_release
 * (*f is zeroed on error, so releasing it then is harmless too).
 */
int store_doc_stat(struct store *s, const char *id, struct store_file *f);
void store_file_release(struct store_file *f); /* accepts zeroed */

/*
 * Calls fn for every document record, in insertion order (a document
 * takes its place when it is created, a new version keeps it, a rename
 * moves it to the end); stops on non-0 and returns it.  `id` and `f` are
 * borrowed for the call.  The records are read before the first call, so
 * fn may call the store (what it changes is not seen by this walk).
 */
typedef int store_file_fn(void *arg, const char *id,
			  const struct store_file *f);
int store_files_foreach(struct store *s, store_file_fn *fn, void *arg);

/* A directory of docs/ that was made explicitly (lodefs/dirs). */
struct store_dir {
	unsigned mode; /* permission bits; 0 = 0755 */
	time_t mtime;  /* 0 = now */
	time_t ctime;  /* 0 = mtime */
	uint64_t ino;  /* 0 keeps the recorded one, else a new one */
};
/* As store_files_foreach, for the records of lodefs/dirs. */
typedef int store_dir_fn(void *arg, const char *path,
			 const struct store_dir *d);
int store_dirs_foreach(struct store *s, store_dir_fn *fn, void *arg);

/* The record of one directory: 0, -ENOENT (none), or another -errno. */
int store_dir_stat(struct store *s, const char *path, struct store_dir *d);

/*
 * With an embeddings server (opts.embed_url): embeds the nodes of the
 * text documents docs[0..n) now, in as few requests as the client's
 * bounds allow and outside every store lock, and keeps the vectors for
 * the calling thread, whose next writes of these documents
 * (store_txn_doc_put, store_docs_put) take them instead of asking again.
 * Documents whose stored content is the same bytes are skipped.  If the
 * server fails, returns -EIO (reason in store_last_error()) and those
 * writes fail at once with the same reason rather than retrying again.
 * Without a server, returns 0 and keeps nothing.  Always pair with
 * store_embed_release, in the same thread, after the writes.
 */
int store_embed_prepare(struct store *s, const struct store_doc *docs,
			size_t n);
void store_embed_release(struct store *s);

/* --- other writers ------------------------------------------------------- */

/*
 * Several mounts (and `lode`) may share one store on S3/R2; each sees what
 * the others wrote when it catches up (docs/FORMAT.md, last writer wins).
 */
enum store_change_kind {
	STORE_CHANGE_DOC = 1, /* a document (lodefs/files record): key = id */
	STORE_CHANGE_DIR,     /* a docs/ directory record: key = path */
};

/*
 * Starts (on != 0) or stops keeping the documents and directories other
 * writers change, for store_refresh to report.  Off by default, so a
 * program that never asks keeps nothing.
 */
void store_track_changes(struct store *s, int on);

/*
 * Catches up with other writers (engine_refresh).  Then, while tracking,
 * calls fn once per document and directory that other writers changed
 * since the last store_refresh, however it arrived (this refresh, or the
 * catch-up a commit or checkpoint did first), in the order they were
 * applied, and outside every lock (fn may call the store).  `fn` may be
 * NULL.  Returns the number of changes (of any collection) applied from
 * other writers by this call and since the last one, or a negative errno
 * (the changes noted so far are still reported).
 */
typedef void store_change_fn(void *arg, enum store_change_kind kind,
			     const char *key);
int store_refresh(struct store *s, store_change_fn *fn, void *arg);

enum store_put_result {
	STORE_INDEXED = 0, /* stored, split into nodes and indexed */
	/*
	 * Same content and user metadata: the nodes are not made again.
	 * Nothing is written unless the mode, times or ino differ; then
	 * only the lodefs/files record is (if the nodes' dates would change
	 * too they are made again and the result is STORE_INDEXED).
	 */
	STORE_UNCHANGED = 1,
	STORE_BINARY = 2, /* stored, not indexed: not UTF-8 text */
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
 * The document's bytes used in place, without a copy (engine_get_ref_lazy):
 * ref->data and ref->len (a NUL after them) stay valid and unchanged until
 * store_ref_release, whatever happens to the document meanwhile.  Pass
 * every range through store_ref_check before using it: a large document
 * from a checkpoint is checked a chunk at a time, as it is used (others
 * are checked whole, here).  Returns 0, -ENOENT, -EIO (damaged,
 * store_last_error() says which) or -ENOMEM; *ref is zeroed on error.
 * Release every ref before store_close.
 */
int store_doc_get_ref(struct store *s, const char *id, struct engine_ref *ref);
/*
 * Checks bytes [off, off + len) of a ref's document before they are used
 * (engine_ref_check): 0, or -EIO with store_last_error() naming the
 * document and the damaged bytes.
 */
int store_ref_check(struct store *s, const struct engine_ref *ref, size_t off,
		    size_t len);
/* Releases a ref (a zeroed one too) and zeroes it. */
void store_ref_release(struct store *s, struct engine_ref *ref);

/*
 * Deletes a ref doc with all its nodes, their vectors (every namespace),
 * docstore metadata, ref_doc_info, the stored content and its lodefs/files
 * record.  -ENOENT if
 * neither content nor ref_doc_info exists for `id`.
 */
int store_doc_del(struct store *s, const char *id);

/* 1 if `id` is a stored document (content or ref_doc_info), else 0. */
int store_doc_exists(struct store *s, const char *id);

/* --- transactions ------------------------------------------------------ */

/*
 * A transaction groups document, directory and kv changes into one atomic,
 * durable batch (a rename of a directory, a second's worth of closed
 * files).  It holds the store's write lock from begin to commit or abort,
 * so other writers wait: keep it short, end it in the thread that began
 * it, and do not call other writing store functions from that thread
 * meanwhile (they would wait for ever).  Each step reads the state as
 * committed before the transaction; an id may appear in at most one step
 * of a transaction (else -EINVAL): a document id in one document step (a
 * move counts for both ids), a directory path in one directory step, a
 * collection/key in one kv step.  Raw kv steps are not checked against
 * document steps.  A failing step leaves the transaction usable: the step
 * adds nothing and claims no id, its reason is in store_last_error().
 */
struct store_txn;

/*
 * Begins a transaction on `s`, waiting for the write lock: 0 or -ENOMEM.
 * *out is freed by store_txn_commit or store_txn_abort.
 */
int store_txn_begin(struct store *s, struct store_txn **out);
/* Adds store_docs_put of one document; *result as there (may be NULL). */
int store_txn_doc_put(struct store_txn *t, const struct store_doc *d,
		      int *result);
/* Adds store_doc_del; -ENOENT if there is no such document. */
int store_txn_doc_del(struct store_txn *t, const char *id);
/*
 * Renames document `from` to `to`, replacing `to` if it exists: content,
 * mode, times and xattrs are kept, nodes are made again under the new id
 * (file_path, file_name follow it) and everything of `from` is deleted.
 * `ino` 0 keeps from's recorded inode number (never to's).  -ENOENT if
 * `from` has no content; -EINVAL if from and to are the same.
 */
int store_txn_doc_move(struct store_txn *t, const char *from, const char *to,
		       uint64_t ino);
/*
 * Changes a document's mode and times (defaults as in struct store_doc;
 * and, when xattrs is not NULL, its user metadata: a JSON object text
 * {name: value}) without touching its content or inode number: the
 * record is rewritten, and the nodes are made again only when their
 * metadata changes (user metadata, or the creation/last-modified dates).
 * -ENOENT; -EINVAL for xattrs that are not a JSON object.
 */
int store_txn_doc_attr(struct store_txn *t, const char *id, unsigned mode,
		       time_t mtime, time_t ctime, const char *xattrs);
/*
 * Records directory `path` of docs/ (lodefs/dirs), a relative path as a
 * document id is; see struct store_dir for the defaults.
 */
int store_txn_dir_put(struct store_txn *t, const char *path,
		      const struct store_dir *d);
/* Removes the record of `path`; -ENOENT if there is none. */
int store_txn_dir_del(struct store_txn *t, const char *path);
/*
 * Raw kv steps, validated as store_kv_put (no vector_store/ collection);
 * kv_del is -ENOENT if the key does not exist.
 */
int store_txn_kv_put(struct store_txn *t, const char *coll, const char *key,
		     const char *json, size_t len);
int store_txn_kv_del(struct store_txn *t, const char *coll, const char *key);
/* Number of steps added so far (a step that changes nothing counts). */
size_t store_txn_count(const struct store_txn *t);
/*
 * Commits every step in one durable batch and frees t.  Returns 0, or a
 * negative errno with nothing applied.  A transaction with no steps
 * commits nothing and returns 0.
 */
int store_txn_commit(struct store_txn *t);
/* Drops every step and frees t.  Accepts NULL. */
void store_txn_abort(struct store_txn *t);

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
/* Called now and then by long operations: done of total units. */
typedef void store_progress_fn(void *arg, uint64_t done, uint64_t total);

/*
 * Sets n vectors of namespace `ns` in one durable batch: ids[i] gets the
 * dim floats at rows + i * stride.  All or nothing: -EINVAL (an invalid
 * id, dim 0, or a dim other than the namespace's, reason set) before
 * anything is written.  `progress` (may be NULL) counts vectors.
 */
int store_vec_put_many(struct store *s, const char *ns, const char *const *ids,
		       const float *rows, size_t stride, size_t n, uint32_t dim,
		       store_progress_fn *progress, void *parg);

struct vec_hit;

/*
 * Exact top-k of namespace `ns` for nq queries (nq * dim floats), read in
 * passes that serve up to 64 queries each (vec_topk_batch): hits[i] and
 * nhits[i] as vec_topk gives them (free with vec_hits_free).  No filters,
 * no HNSW.  An empty namespace gives no hits.  Returns 0, -EINVAL (a
 * dim other than the namespace's, a query holding NaN/Inf; reason set
 * for the first), -ENOMEM; on error every hits[i] is NULL.
 */
int store_vec_search(struct store *s, const char *ns, const float *queries,
		     size_t nq, uint32_t dim, size_t k, struct vec_hit **hits,
		     size_t *nhits);

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
	/*
	 * Vector top-k re-ranked by maximal marginal relevance, as
	 * SimpleVectorStore's MMR mode (mmr_threshold, default 0.5).
	 */
	STORE_MODE_MMR,
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
	float mmr_threshold;		   /* MMR lambda; <0 = 0.5 */
	/*
	 * Vector side: 1 forces the exact scan even where the namespace
	 * has an HNSW graph ("exact": true, exact=1); ef is HNSW's search
	 * breadth (0: the store's default, at least k).
	 */
	int exact;
	unsigned ef;
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

/* The HNSW graphs of a store (core/store_ann.h). */
struct store_ann_stats {
	uint64_t graphs;	 /* namespaces with a graph */
	uint64_t nodes;		 /* graph nodes, deleted included */
	uint64_t deleted;	 /* deleted nodes still in graphs */
	uint64_t pending;	 /* rows queued, not yet in a graph */
	uint64_t pending_copies; /* of those, queued with a copy of the row */
	uint64_t loaded;	 /* graphs loaded from the checkpoint at open */
	uint64_t built;		 /* graphs started from scratch since open */
	uint64_t discarded;	 /* loaded graphs that did not match and were
			       dropped */
	uint64_t searches;	 /* vector queries answered from a graph */
	uint64_t saves;		/* checkpoints written when a build completed */
	uint64_t save_failures; /* such checkpoints that failed */
};

struct store_stats {
	struct engine_stats engine;
	uint64_t documents; /* ref docs */
	uint64_t nodes;
	uint64_t triples;
	uint64_t indexes;
	uint64_t queries;
	/* 1 if the keyword index was loaded from the checkpoint at open. */
	int keyword_index_loaded;
	/* HNSW graphs (core/store_ann.h): sizes, loaded / built at open. */
	struct store_ann_stats ann;
};

void store_get_stats(struct store *s, struct store_stats *st);

/*
 * Waits until the background work on indexes (linking queued vectors into
 * HNSW graphs) is done.  Queries never need it; tests and bulk tools do.
 */
void store_wait_index(struct store *s);

/*
 * A number that changes whenever anything in the store changes (each
 * record applied, by this process or, through a refresh, another writer):
 * equal numbers mean an unchanged state.  Thread safe, lock free.
 */
uint64_t store_version(struct store *s);

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
