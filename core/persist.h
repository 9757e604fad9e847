/* persist.h - a store as LlamaIndex's persist directory, both ways. */
#ifndef LODEFS_PERSIST_H
#define LODEFS_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/pyjson.h"
#include "core/store.h"

/*
 * Python LlamaIndex's StorageContext.persist() writes, into one directory:
 *
 *   docstore.json               {"docstore/metadata": {...},
 *                                "docstore/data": {...},
 *                                "docstore/ref_doc_info": {...}}
 *   index_store.json            {"index_store/data": {id: {"__type__": T,
 *                                "__data__": "<the struct as JSON text>"}}}
 *   graph_store.json            {"graph_dict": {subj: [[rel, obj], ...]}}
 *   <ns>__vector_store.json     {"embedding_dict": {id: [floats]},
 *                                "text_id_to_ref_doc_id": {id: doc_id},
 *                                "metadata_dict": {id: {...}}}
 *   property_graph_store.json   (when a property graph index is used)
 *
 * This module generates each file from the store and replaces what a file
 * holds from its text.  Where everything lives (the collections are the
 * engine's, docs/ARCHITECTURE.md "persist/"):
 *
 *   docstore.json      every collection "docstore/..." (values verbatim;
 *                      a collection value that is not an object, and
 *                      every top-level key that is not "docstore/...",
 *                      is kept verbatim in the file's record below)
 *   index_store.json   every collection "index_store/..." likewise
 *   graph_store.json   graph_store/data: subject -> {"rels": [[rel, obj]]}
 *   <ns>__vector...    vector_store/<ns> (float32) and lodefs/vec_meta/<ns>:
 *                      id -> {"ref_doc_id": D, "metadata": {...}} (each
 *                      field only if the file had the id in that dict);
 *                      an id without a vec_meta record (a node that came
 *                      through docs/ or nodes/) has both derived from its
 *                      node as SimpleVectorStore.add does
 *   property_graph...  lodefs/persist_files: name -> the text (BLOB)
 *   lodefs/persist     file name -> {"keys": [top-level keys in file
 *                      order], "extra": {key: value kept verbatim}}
 *
 * The vector index of index_store.json is kept live: nodes that docs/ and
 * nodes/ add (every node with a vector in the default namespace) appear in
 * the nodes_dict of the first "vector_store" struct, after its stored
 * entries; entries of nodes deleted since (lodefs/nodes_dict_del: node id
 * -> {}, written by every node deletion) are left out while the node is
 * absent from docstore/data.  A store with vectors and no vector_store
 * struct shows one, "vector_index", listing them all.
 */

/* The kinds of persist file. */
enum persist_kind {
	PERSIST_DOCSTORE = 1,
	PERSIST_INDEX_STORE,
	PERSIST_GRAPH_STORE,
	PERSIST_VECTOR_STORE,	/* <ns>__vector_store.json */
	PERSIST_PROPERTY_GRAPH, /* property_graph_store.json */
};

/*
 * What file name `name` is: 0 with *kind set and, for a vector store,
 * the namespace written into ns (size bytes; "vector_store.json", the
 * layout before namespaces, is "default"); -ENOENT for any other name,
 * -EINVAL for a namespace that is not valid.
 */
int persist_name(const char *name, enum persist_kind *kind, char *ns,
		 size_t size);

/*
 * Calls fn(arg, name) for each file the directory shows now, in this
 * order: docstore.json, index_store.json, graph_store.json,
 * property_graph_store.json (only if one was written), then
 * <ns>__vector_store.json for default, image and every other namespace
 * that holds vectors or was written.  Stops on non-0 and returns it.
 */
typedef int persist_name_fn(void *arg, const char *name);
int persist_list(struct store *s, persist_name_fn *fn, void *arg);

/* Progress: `done` of `total` (units the caller need not know). */
typedef void persist_progress_fn(void *arg, uint64_t done, uint64_t total);

/*
 * Writes file `name` through write(arg, ...) in pieces, exactly as Python
 * writes it (json.dumps defaults), from one consistent state: local
 * writers wait while it runs.  Memory stays small whatever the size of
 * the file.  Returns 0, -ENOENT for a name that is not shown, the first
 * error write() returned, or -EIO/-ENOMEM.  `progress` may be NULL.
 */
int persist_export(struct store *s, const char *name, pyj_write_fn *write,
		   void *arg, persist_progress_fn *progress, void *parg);

/*
 * Replaces what file `name` holds with the `len` bytes of its JSON text,
 * in one atomic commit (readers see the old state or the new one).
 * Returns 0; -EINVAL if the text is not valid JSON or not the file's
 * shape (store_last_error() says where and why; nothing changed); -ENOENT
 * for a name that is not a persist file; a backend error (nothing
 * applied).  Memory: the text (mapped by the caller) plus the new state.
 */
int persist_import(struct store *s, const char *name, const char *data,
		   size_t len, persist_progress_fn *progress, void *parg);

#endif
