/* persist_int.h - what the persist_*.c files share; not for other modules. */
#ifndef LODEFS_PERSIST_INT_H
#define LODEFS_PERSIST_INT_H

#include <sys/types.h>

#include "core/persist.h"
#include "core/store_int.h"

#define PERSIST_F_DOCSTORE	"docstore.json"
#define PERSIST_F_INDEX		"index_store.json"
#define PERSIST_F_GRAPH		"graph_store.json"
#define PERSIST_F_PGRAPH	"property_graph_store.json"
#define PERSIST_VEC_SUFFIX	"__vector_store.json"
#define PERSIST_VEC_LEGACY	"vector_store.json"
#define PERSIST_NAME_MAX	(STORE_NS_MAX + 32)
#define PERSIST_DOCSTORE_PREFIX "docstore/"
#define PERSIST_INDEX_PREFIX	"index_store/"

/* The three members of a <ns>__vector_store.json, in Python's order. */
#define PERSIST_EMBEDDINGS "embedding_dict"
#define PERSIST_REF_DOCS   "text_id_to_ref_doc_id"
#define PERSIST_METADATA   "metadata_dict"
/* Their names in a lodefs/vec_meta record. */
#define PERSIST_VM_REF	"ref_doc_id"
#define PERSIST_VM_META "metadata"

#define PERSIST_GRAPH_DICT "graph_dict"

/*
 * The name a file's record goes under in lodefs/persist: `name` itself,
 * except the layout before namespaces, "vector_store.json", which is
 * "default__vector_store.json".  buf holds PERSIST_NAME_MAX bytes.
 */
void persist_file_key(enum persist_kind kind, const char *ns, char *buf,
		      size_t size);

/*
 * The record of file `key` in lodefs/persist: *keys (an array of the
 * top-level keys in file order) and *extra (an object: key -> value kept
 * verbatim), new references, both NULL when the file was never written.
 * Returns 0, or -EIO with the reason set if the record is damaged.
 */
int persist_rec_get(struct store *s, const char *key, json_t **keys,
		    json_t **extra);

/*
 * An ordered set of ids: the bytes in one arena, an index by hash.  Used
 * for the keys of a collection walked once and then looked up, which
 * the engine's callbacks do not allow.
 */
struct persist_ids {
	char *arena;
	size_t alen, acap;
	size_t *off; /* id i is arena + off[i], NUL-terminated */
	size_t n, ocap;
	size_t *slots; /* index + 1 of an id, 0 for an empty slot */
	size_t scap;
};

/*
 * Adds `id` (len bytes, no NUL inside): 1 if it is new, 0 if it was
 * there, -ENOMEM.  *idx (may be NULL) gets its index either way.
 */
int persist_ids_add(struct persist_ids *ids, const char *id, size_t len,
		    size_t *idx);
/* The index of `id`, or -1. */
ssize_t persist_ids_find(const struct persist_ids *ids, const char *id,
			 size_t len);
static inline const char *persist_ids_get(const struct persist_ids *ids,
					  size_t i)
{
	return ids->arena + ids->off[i];
}
void persist_ids_free(struct persist_ids *ids); /* and zeroes it */

/* Collects the keys of collection `coll` in order into ids. */
int persist_ids_of(struct store *s, const char *coll, struct persist_ids *ids);

/*
 * The names of the non-empty collections that start with `prefix`, in
 * the engine's order, NULL-terminated; free with store_free_strv.
 */
int persist_colls(struct store *s, const char *prefix, char ***out);

/* --- export (persist.c, persist_vec.c) --------------------------------- */

/* One export under way. */
struct persist_out {
	struct store *s;
	struct pyj_out o;
	persist_progress_fn *progress;
	void *parg;
	uint64_t done, total; /* entries written, entries to write */
	/* a value copied out of a record (persist_out_field) */
	char *buf;
	size_t blen, bcap;
};

/* One more entry written: progress now and then. */
void persist_out_tick(struct persist_out *x);
/* `"key": ` after a ", " unless *first (then cleared). */
void persist_out_key(struct persist_out *x, int *first, const char *key,
		     size_t len);
/*
 * A stored value (any JSON text) as Python writes it: o->err, or -EIO with
 * the reason set (naming what/key) if the text is not JSON.
 */
int persist_out_value(struct persist_out *x, const char *what, const char *key,
		      const void *json, size_t len);
/* A jansson value (a record's "extra" member) as Python writes it. */
int persist_out_json(struct persist_out *x, const char *key, const json_t *v);
/*
 * Copies member `field` of the JSON object text `json` into x->buf (its
 * text without whitespace, x->blen bytes): 1, 0 if there is no such
 * member, -EIO if the text is not an object.
 */
int persist_out_field(struct persist_out *x, const void *json, size_t len,
		      const char *field);

/* 1 if the array of strings `keys` holds k. */
int persist_keys_has(const json_t *keys, const char *k);
/* Appends k to `keys` unless it is there: 0 or -ENOMEM. */
int persist_keys_append(json_t *keys, const char *k);

/* <ns>__vector_store.json (persist_vec.c). */
int persist_export_vectors(struct persist_out *x, const char *ns);

#endif
