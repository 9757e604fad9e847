/* store_int.h - what the store_*.c files share; not for other modules. */
#ifndef LODEFS_STORE_INT_H
#define LODEFS_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "core/store.h"
#include "core/store_ann.h"
#include "core/text.h"

#define STORE_C_DATA	"docstore/data"
#define STORE_C_META	"docstore/metadata"
#define STORE_C_REFS	"docstore/ref_doc_info"
#define STORE_C_INDEX	"index_store/data"
#define STORE_C_GRAPH	"graph_store/data"
#define STORE_C_CONTENT "lodefs/content"
#define STORE_C_FILES	"lodefs/files"
#define STORE_C_DIRS	"lodefs/dirs"
/*
 * persist/ (core/persist.h): per vector namespace, what the file said of
 * each id besides its vector ("lodefs/vec_meta/<ns>": id -> {"ref_doc_id":
 * D, "metadata": M}); node ids deleted since the vector index was written
 * (id -> {}); each file's top-level layout; files kept as text.
 */
#define STORE_C_VEC_META_PREFIX "lodefs/vec_meta/"
#define STORE_C_NODES_DEL	"lodefs/nodes_dict_del"
#define STORE_C_PERSIST		"lodefs/persist"
#define STORE_C_PERSIST_FILES	"lodefs/persist_files"
#define STORE_VEC_PREFIX	"vector_store/"
#define STORE_NS_MAX		200

/* LlamaIndex's NodeRelationship and ObjectType values. */
#define STORE_REL_SOURCE    "1"
#define STORE_REL_PREVIOUS  "2"
#define STORE_REL_NEXT	    "3"
#define STORE_TYPE_TEXT	    "1"
#define STORE_TYPE_DOCUMENT "4"

/* Buffers for store_node_text, kept from call to call. */
struct store_textbuf {
	char *text, *scratch;
	size_t text_cap, scratch_cap;
};

struct embed_remote;

struct store {
	struct backend *be;
	struct engine *eng;
	struct store_opts opts;
	struct text_index *bm25;
	/* The embeddings server (opts.embed_url), or NULL: built-in. */
	struct embed_remote *embed;
	/* The keyword index came from the checkpoint (extension "bm25"). */
	int bm25_loaded;
	/* HNSW graphs of large vector namespaces (core/store_ann.h). */
	struct store_ann *ann;
	/*
	 * int8 copies of large vector namespaces for exact search (vec.h,
	 * vec_topk_batch_q8), kept in step by store_observe.
	 */
	struct vec_q8_set *q8;
	/* Checkpoint extensions: [0] "bm25", [1] "hnsw". */
	struct engine_ext exts[2];
	/* Serialises read-modify-write sequences (ref_doc_info, triples). */
	pthread_mutex_t wlock;
	atomic_uint_fast64_t queries;
	/* Records applied (store_observe): store_version(). */
	atomic_uint_fast64_t version;
	/*
	 * Changes other writers made (ENGINE_OBS_REMOTE), kept for
	 * store_refresh while tracking is on: kinds and keys, chg_mu.
	 */
	pthread_mutex_t chg_mu;
	int chg_track;
	struct store_change *chg;
	size_t n_chg, cap_chg;
	uint64_t chg_remote; /* every remote change applied, tracked or not */
	/*
	 * store_observe's buffers, reused from call to call (the engine
	 * calls the observer under its write lock, one call at a time): a
	 * node's text, and the pull reader's scratch.
	 */
	struct store_textbuf obs_buf;
};

/* A change another writer made to a docs/ entry (store_refresh). */
struct store_change {
	int kind; /* enum store_change_kind */
	char *key;
};

/* Called by store_observe for every change: keeps what store_refresh needs. */
void store_note_change(struct store *s, const char *coll, const char *key,
		       unsigned flags);
void store_changes_free(struct store *s);

/* Makes s->embed when opts.embed_url is set (store_embed.c). */
int store_embed_open(struct store *s);

/*
 * The embeddings server's vectors of a document's n chunks (*out,
 * malloc'd, n * embed_dim floats): those store_embed_prepare made for
 * this thread, the others asked for in one go.  A failure fails the whole
 * write: a document is never stored with nodes missing their vectors.
 */
int store_ingest_remote_vecs(struct store *s, const struct store_doc *d,
			     const struct text_chunk *chunks, size_t n,
			     float **out);

/*
 * Vectors of n texts from the embeddings server (s->embed set) into
 * out[n * opts.embed_dim]: 0, or -EIO with the reason set.
 */
int store_embed_texts(struct store *s, const char *const *texts,
		      const size_t *lens, size_t n, float *out);

/* Sets the thread's error text and returns rc (a negative errno). */
int store_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The string value of j, or "" if j is not a string. */
static inline const char *store_str(const json_t *j)
{
	const char *v = json_string_value(j);

	return v ? v : "";
}

/* Clears the thread's error text. */
void store_clear_error(void);

/*
 * Parses `len` bytes of JSON that must be an object.  Returns 0 and a new
 * reference in *out, or -EINVAL with the reason set (`what` names the
 * input in the message).
 */
int store_parse_object(const char *what, const char *data, size_t len,
		       json_t **out);

/* Compact JSON text of `j` in key order as inserted; malloc'd or NULL. */
char *store_dump(const json_t *j);

/* Adds `j` under coll/key to batch `b` (does not steal j). */
int store_batch_put_obj(struct engine_batch *b, const char *coll,
			const char *key, const json_t *j);

/*
 * Adds `text` (len bytes), the compact dump of a jansson value (as
 * store_dump writes it), under coll/key to `b`: it is not parsed again
 * when the engine would accept it as it is, which is all but always.
 */
int store_batch_put_dump(struct engine_batch *b, const char *coll,
			 const char *key, const char *text, size_t len);

/*
 * Hints for store_observe: the text of each node a batch puts in
 * docstore/data, so that the observer does not parse again the JSON that
 * was just built.  A hint names the node and the hash and length of its
 * JSON; the observer uses it only for exactly those bytes, and parses
 * whatever has no hint.  The builder of a batch owns its hints: a step
 * rolled back cuts the hints it added (store_hints_cut to the count
 * before the step), and store_commit_hinted commits the batch with them.
 */
struct store_hint {
	char *key;  /* malloc'd, text follows it in the same block */
	char *text; /* not NUL-terminated */
	size_t text_len;
	size_t json_len;
	uint64_t json_hash; /* xxh3 of the JSON */
	/*
	 * STORE_HINT_TEXT: the text is `text`; STORE_HINT_NONE: the node has
	 * no text (it leaves the keyword index); 0 or more: the text was
	 * analysed ahead, as document `prep` of the hints' text_prep.
	 */
	int64_t prep;
};
#define STORE_HINT_TEXT (-1)
#define STORE_HINT_NONE (-2)
struct store_hints {
	struct store_hint *v;
	size_t n, cap;
	size_t next; /* the observer's place (hints match in batch order) */
	struct text_prep *prep; /* owned; NULL if no hint uses one */
};
/* Adds the hint for node `key` put as `json`: 0 or -ENOMEM. */
int store_hints_add(struct store_hints *h, const char *key, const char *json,
		    size_t json_len, const char *text, size_t text_len);
/*
 * Adds the hint for node `key` whose JSON (json_len bytes) hashes to
 * json_hash: `prep` is STORE_HINT_NONE or a document of h->prep.
 */
int store_hints_add_prep(struct store_hints *h, const char *key,
			 size_t json_len, uint64_t json_hash, int64_t prep);
/* Drops the hints after the first n. */
void store_hints_cut(struct store_hints *h, size_t n);
/* Drops every hint, frees the array and the text_prep; *h may be used again. */
void store_hints_free(struct store_hints *h);
/* engine_commit of b with h (may be empty) handed to the observer. */
int store_commit_hinted(struct store *s, struct engine_batch *b,
			struct store_hints *h);
/* The same with another commit (engine_commit_consume, ..._unlogged). */
int store_commit_hinted_with(struct store *s, struct engine_batch *b,
			     struct store_hints *h,
			     int (*commit)(struct engine *,
					   struct engine_batch *));

/* Loads coll/key as a JSON object: 0, -ENOENT, or -EINVAL if damaged. */
int store_get_object(struct store *s, const char *coll, const char *key,
		     json_t **out);

/* Writes "vector_store/<ns>" into buf; -EINVAL for an invalid ns. */
int store_vec_coll(const char *ns, char *buf, size_t size);
/* Writes "lodefs/vec_meta/<ns>" into buf (ns as checked by store_vec_coll). */
void store_vec_meta_coll(const char *ns, char *buf, size_t size);

/* Checks an id (node, doc, index, subject): non-empty UTF-8, not too long. */
int store_check_id(const char *what, const char *id);

/*
 * Checks a document id or directory path (`what` names it in the reason):
 * a relative path without empty, . or .. parts.  0 or -EINVAL /
 * -ENAMETOOLONG with the reason set.
 */
int store_check_path(const char *what, const char *id);

/* Checks the collection and key of a raw kv write: 0 or -EINVAL. */
int store_kv_check(const char *coll, const char *key);

/*
 * Collects the names of the vector namespaces (without the prefix) into a
 * NULL-terminated malloc'd array; free with store_free_strv.
 */
int store_list_namespaces(struct store *s, char ***out);
void store_free_strv(char **v);

/*
 * Adds to `b` the deletion of node `id`: its docstore data and metadata,
 * its vector and persist/ vector metadata in every namespace of `nss`,
 * and a tombstone in lodefs/nodes_dict_del (so the vector index of
 * index_store.json leaves it out while it is gone; core/persist.h).
 */
int store_batch_del_node(struct engine_batch *b, char *const *nss,
			 const char *id);

/*
 * Adds to `b` the writing of document d (d->user_meta is ignored: `user`,
 * a JSON object or NULL, is its user metadata) against the committed
 * state, as one document of store_docs_put: the content only if it
 * changed, the lodefs/files record only if it changed, the nodes only if
 * the content or their metadata changed.  *result gets the enum
 * store_put_result.  The nodes' hints go to `hints` (NULL: none).  On
 * error b and hints may hold part of the records: the caller rolls them
 * back or drops them.
 */
int store_batch_doc_json(struct store *s, struct engine_batch *b,
			 struct store_hints *hints, char *const *nss,
			 const struct store_doc *d, json_t *user, int *result);

/* The same, with the user metadata parsed from d->user_meta. */
int store_batch_doc(struct store *s, struct engine_batch *b,
		    struct store_hints *hints, char *const *nss,
		    const struct store_doc *d, int *result);

/*
 * Adds to `b` the deletion of document `id`: its nodes, their vectors in
 * every namespace of `nss`, docstore metadata, ref_doc_info, content and
 * lodefs/files record.
 */
int store_batch_doc_del(struct store *s, struct engine_batch *b,
			char *const *nss, const char *id);

/*
 * Fills *f from a lodefs/files record (missing fields are 0; xattrs "{}"
 * if none).  0 or -ENOMEM; free with store_file_release.
 */
int store_file_parse(const json_t *rec, struct store_file *f);

/* The unsigned integer j holds (an ino is kept as its bit pattern), or 0. */
static inline uint64_t store_u64(const json_t *j)
{
	return json_is_integer(j) ? (uint64_t)json_integer_value(j) : 0;
}

/* The observer that keeps the keyword index in step with docstore/data. */
void store_observe(void *arg, const char *coll, const char *key,
		   enum engine_type type, const void *data, size_t len,
		   unsigned flags);
/* Frees the observer's buffers (at close). */
void store_observe_free(struct store *s);

/*
 * The text a node's JSON holds (what json_loadb finds at
 * ["__data__"]["text"], the last of each key when one comes twice): 1 and
 * *text / *len (in tb, valid until the next call with it) if it is a
 * string, 0 if there is none or it is not a string, -1 if the pull reader
 * cannot tell exactly what jansson would (the caller asks jansson), or
 * -ENOMEM.  `json` is a value the engine holds: one object json_loadb
 * accepts.
 */
int store_node_text(struct store_textbuf *tb, const char *json, size_t len,
		    const char **text, size_t *text_len);
void store_textbuf_free(struct store_textbuf *tb);

/* A set of strings (open addressing), for id restrictions. */
struct strset;
struct strset *strset_new(void);
void strset_free(struct strset *set); /* accepts NULL */
int strset_add(struct strset *set, const char *s);
int strset_has(const struct strset *set, const char *s);
size_t strset_count(const struct strset *set);

#endif
