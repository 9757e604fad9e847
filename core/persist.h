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
 * Keys keep their order: a file's top-level keys come back in the order
 * the file had them (its record), then collections it did not have, those
 * LlamaIndex makes first in the order a fresh store makes them (docstore:
 * metadata, data, ref_doc_info, as from_documents does).  A store that was
 * never written shows what Python writes for an empty store ("{}" for the
 * docstore and the index store).
 *
 * The vector index of index_store.json is kept live: nodes that docs/ and
 * nodes/ add (every node of docstore/data with a vector in the default
 * namespace) appear in the nodes_dict of the first "vector_store" struct,
 * after its stored entries; entries of nodes deleted since
 * (lodefs/nodes_dict_del: node id -> {}, written by every node deletion,
 * store_batch_del_node) are left out while the node is absent from
 * docstore/data; the struct is written again, as IndexDict.to_json would,
 * only when one of these changes it.  A store with such nodes and no
 * vector_store struct shows one, "vector_index" (IndexDict.to_dict's
 * fields: index_id, summary, nodes_dict, doc_id_dict, embeddings_dict),
 * listing them all.  Writing index_store.json drops the tombstones: the
 * file says what the index holds.
 *
 * For an id without a vec_meta record SimpleVectorStore.add's entries are
 * derived from the node: text_id_to_ref_doc_id is its SOURCE node id or
 * "None"; metadata_dict is node_to_metadata_dict(node, remove_text=True,
 * flat_metadata=False) without "_node_content": the node's metadata, then
 * "_node_type" (its class name), "document_id", "doc_id" and "ref_doc_id"
 * (each in place if the metadata has it).  A vector without a node is
 * taken as an empty TextNode.
 *
 * Writing <ns>__vector_store.json replaces the namespace whole: its
 * vectors (and records) go, the file's come, so the namespace takes the
 * file's dimension, whatever it had (all vectors of one file must have
 * one length).  Built-in vectors (store_opts.embed_dim) are only made
 * while the default namespace has their dimension or none.
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
 * the namespace written into ns (size bytes; 201 is always enough:
 * the name without its "__vector_store.json" ending; "vector_store.json",
 * the layout before namespaces, is "default"); -ENOENT for any other
 * name, -EINVAL for a namespace that is not valid (1 to 200
 * bytes of UTF-8 without '/').
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
 * writes it (json.dumps defaults, no trailing newline), from one
 * consistent state: the store's write lock is held while it runs, so
 * local writers wait (write() must not call the store's writing
 * functions).  Memory stays small whatever the size of the file (a
 * vector store file keeps the list of its ids).  Returns 0, -ENOENT for
 * a name that is not shown (persist_list), the first error write()
 * returned (nothing more is written then), or -EIO (a stored value is
 * damaged; store_last_error() says which) / -ENOMEM.  `progress` may be
 * NULL; its units are entries written.
 */
int persist_export(struct store *s, const char *name, pyj_write_fn *write,
		   void *arg, persist_progress_fn *progress, void *parg);

/*
 * Replaces what file `name` holds with the `len` bytes of its JSON text,
 * in one atomic commit (readers see the old state or the new one).  The
 * text is read once, front to back, into one engine batch, and nothing
 * is committed until all of it has been checked.  Returns 0; -EINVAL if
 * the text is not valid JSON or not the file's shape (store_last_error()
 * says where and why; nothing changed): a key that is empty, longer
 * than ENGINE_KEY_MAX bytes, or holds NUL or a lone surrogate; a
 * docstore/index_store entry that is not an object or holds what jansson
 * cannot load (NaN, Infinity, \u0000, an integer outside int64; vectors
 * may hold NaN and Infinity); vectors of differing lengths or out of
 * float32's range; a top-level key given twice.  -ENOENT for a name that
 * is not a persist file; a backend error (nothing applied).
 * "vector_store.json" (before namespaces) is read as the default
 * namespace's file.
 *
 * Memory: the text (mapped by the caller) plus about the new state.  Of
 * a text of 64 MiB or more, the pages already read are given back as it
 * goes (madvise MADV_PAGEOUT: a file mapping reads them again if touched;
 * anonymous memory is swapped out at worst), and the batch is committed
 * with engine_commit_consume.  `progress` may be NULL; its units are
 * bytes of text read.
 */
/*
 * 0 (the default): a vector store's numbers are converted on a second
 * thread while this one reads on; 1: on the calling thread alone (tests
 * compare the two).
 */
extern int persist_import_serial_vectors;

int persist_import(struct store *s, const char *name, const char *data,
		   size_t len, persist_progress_fn *progress, void *parg);

/*
 * persist_import with flags: PERSIST_UNLOGGED commits the file without
 * writing a log segment (engine_commit_unlogged): it is in the store at
 * once but durable only with the caller's next engine_checkpoint, and
 * lost if the store is closed before it.  For `lode import`, which ends
 * with a checkpoint: the data is written to disk once instead of twice.
 */
#define PERSIST_UNLOGGED 1u
int persist_import_flags(struct store *s, const char *name, const char *data,
			 size_t len, unsigned flags,
			 persist_progress_fn *progress, void *parg);

#endif
