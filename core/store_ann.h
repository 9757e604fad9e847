/* store_ann.h - HNSW graphs of the store's large vector namespaces. */
#ifndef LODEFS_STORE_ANN_H
#define LODEFS_STORE_ANN_H

#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "core/store.h"
#include "core/vec.h"

/*
 * One graph (core/vec_hnsw.h) per vector namespace ("vector_store/<ns>")
 * holding at least `threshold` vectors, kept by one background thread per
 * store:
 *
 *   - The store's observer hands every vector put and delete to
 *     store_ann_observe (under the engine's write lock, so cheaply: a
 *     delete marks the node deleted, a put marks the old node deleted and
 *     queues the new row).  The builder thread links queued rows into the
 *     graph one by one.  A query searches the graph and scans the queue
 *     exactly, so it never misses a fresh vector.
 *   - A namespace without a graph is only counted: when a put takes it to
 *     the threshold, the builder queues all its keys (engine_with_vecs),
 *     without copying rows: it reads each with engine_get as it links it.  When more than half of a graph's nodes are deleted,
 *     the graph is dropped and built again the same way.
 *   - Graphs ride in every checkpoint as the extension "hnsw" (format
 *     below) without the live rows, which the checkpoint already holds:
 *     at open the observer's checkpoint calls give each node its row,
 *     checked against the xxh3 the graph recorded.  A graph with a node
 *     whose row is missing or different is discarded and rebuilt, never
 *     searched.
 *
 * Extension format: "LANN\0\0\0\1", u32 number of graphs, then per graph
 * u32 name length, the collection name, u64 length, the hnsw_save bytes.
 *
 * Locks: an rwlock (writers preferred) over everything, taken shared by
 * queries and by the builder for one insert, exclusively by the observer,
 * checkpoint save and graph swaps; a mutex for the queue, which queries
 * and the builder share.  The engine's lock, where held, is always taken
 * first.
 */

struct store_ann;

/* threshold 0: never a graph.  0 or -ENOMEM. */
int store_ann_new(size_t threshold, struct store_ann **out);
/*
 * Before store_ann_start: graphs loaded are searched and saved, but no
 * builder runs (store_opts.ann_no_build).
 */
void store_ann_no_build(struct store_ann *a);

/*
 * Called once the engine is open: drops loaded graphs that did not match
 * the checkpoint, then starts the builder thread (eng NULL: no thread,
 * for tests).  0 or a negative errno.
 */
int store_ann_start(struct store_ann *a, struct engine *eng);

/* Stops the builder and frees everything.  NULL is ok. */
void store_ann_free(struct store_ann *a);

/* The observer's share (see struct engine_ext and engine_observe_fn). */
void store_ann_observe(struct store_ann *a, const char *coll, const char *key,
		       enum engine_type type, const void *data, size_t len,
		       unsigned flags);

/* engine_ext callbacks; arg is the struct store_ann. */
int store_ann_ext_save(void *arg, engine_ext_emit_fn *emit, void *ctx);
int store_ann_ext_load(void *arg, const void *data, size_t len);

/* Key filter of a query: 1 to return the key, 0 to skip it. */
typedef int store_ann_allow_fn(void *arg, const char *key);

/*
 * The k best rows of collection `coll` for `query`, as vec_topk would
 * return them (exact double cosine, ties to the larger key) but searched
 * in the graph with breadth ef (0: HNSW_EF_DEFAULT).  `allowed` is the
 * number of keys `allow` accepts (SIZE_MAX: no filter).  Returns -ENOENT
 * when the caller should scan exactly instead: no graph, the graph does
 * not cover most rows yet, a selective filter, or a filtered search that
 * did not find k rows.  Else 0 or -ENOMEM.
 */
int store_ann_search(struct store_ann *a, const char *coll, const float *query,
		     uint32_t dim, size_t k, unsigned ef,
		     store_ann_allow_fn *allow, void *arg, size_t allowed,
		     struct vec_hit **hits, size_t *n);

/* Waits until the builder has nothing left to do (tests, benchmarks). */
void store_ann_wait(struct store_ann *a);

void store_ann_get_stats(struct store_ann *a, struct store_ann_stats *st);

/* A filter that lets through less than this share of rows is run exactly. */
#define STORE_ANN_SELECTIVE 0.02

#endif /* LODEFS_STORE_ANN_H */
