/* vec_hnsw.h - HNSW graph over float32 rows, for approximate cosine top-k. */
#ifndef LODEFS_VEC_HNSW_H
#define LODEFS_VEC_HNSW_H

#include <stddef.h>
#include <stdint.h>

/*
 * Hierarchical navigable small world graph (Malkov and Yashunin) with the
 * neighbour-selection heuristic.  Similarity is cosine: each node keeps its
 * row normalised in IEEE half floats (half the bytes a search waits for)
 * and the xxh3 of the float32 row as given, not the row itself; a query is
 * normalised once in float32, so a comparison is one dot product
 * (AVX-512 / AVX2+F16C / plain C, chosen at run time: the family of the
 * float32 kernel vec_kernel_name() of vec.h names when the graph is made,
 * so LODEFS_VEC_KERNEL and vec_kernel_select force both).  Scores from the
 * graph are approximate cosines (relative error ~1e-3); callers that need
 * the exact double cosine of vec.h recompute it from their own rows.
 *
 * Nodes are numbered 0, 1, ... in the order they are added and never
 * removed: a node is HIDDEN (being added; never returned), LIVE or
 * DELETED (still used to navigate, never returned).  hnsw_add and
 * hnsw_search may run at the same time from any number of threads (each
 * neighbour list has its own lock, taken only while it is copied or
 * changed); hnsw_set_state is atomic.  hnsw_save and hnsw_free need that
 * nothing else runs.
 */

#define HNSW_M_DEFAULT	 24
#define HNSW_EFC_DEFAULT 100
#define HNSW_EF_DEFAULT	 64

enum hnsw_state {
	HNSW_HIDDEN = 0,
	HNSW_LIVE = 1,
	HNSW_DELETED = 2,
};

struct hnsw;

struct hnsw_params {
	uint32_t dim;
	unsigned m;		  /* links per node above layer 0 (2m at 0) */
	unsigned ef_construction; /* breadth of the search that links a node */
	uint64_t seed;		  /* levels: a hash of (seed, node number) */
};

/* 0, -EINVAL (dim 0, m < 2 or > 128) or -ENOMEM. */
int hnsw_new(const struct hnsw_params *p, struct hnsw **out);
void hnsw_free(struct hnsw *h); /* NULL is ok */

/*
 * Adds row `vec` (dim floats, copied; must be finite) with `key` (copied)
 * in state `state` (HIDDEN to publish later with hnsw_set_state).  *id
 * (may be NULL) gets its number.  0, -ENOSPC (graph full) or -ENOMEM.
 */
int hnsw_add(struct hnsw *h, const float *vec, const char *key, int state,
	     uint32_t *id);

void hnsw_set_state(struct hnsw *h, uint32_t id, int state);
int hnsw_state(const struct hnsw *h, uint32_t id);

size_t hnsw_size(const struct hnsw *h);	   /* nodes, any state */
size_t hnsw_deleted(const struct hnsw *h); /* nodes in state DELETED */
uint32_t hnsw_dim(const struct hnsw *h);
/* The graph's kernel family: "avx512", "avx2" or "generic". */
const char *hnsw_kernel(const struct hnsw *h);
const char *hnsw_key(const struct hnsw *h, uint32_t id);

/* Result filter for a LIVE node: 1 to return it, 0 to skip it. */
typedef int hnsw_allow_fn(void *arg, uint32_t id);

struct hnsw_hit {
	float sim; /* float32 cosine */
	uint32_t id;
};

/*
 * The k most similar LIVE nodes that `allow` accepts (NULL: all) to
 * `query` (dim floats, finite), searching with breadth max(ef, k).
 * out[] must hold k hits; *n gets how many were found, best first.
 * 0 or -ENOMEM.
 */
int hnsw_search(struct hnsw *h, const float *query, size_t k, unsigned ef,
		hnsw_allow_fn *allow, void *arg, struct hnsw_hit *out,
		size_t *n);

/*
 * Serialisation.  The format (native little-endian, version in the magic):
 *
 *   "LHNSW\0\0\1" u32 dim, m, ef_construction, n; u64 seed; u32 entry;
 *   i32 top level; then per node: u8 level, u8 state (1 live, 2 deleted),
 *   u16 0, u32 key length, u64 xxh3 of the row's dim*4 bytes, the key,
 *   for a DELETED node its normalised half-float row (dim u16; a live row
 *   is not saved: the checkpoint has it), then for each layer 0..level:
 *   u32 count, count u32 node numbers.
 *
 * Hidden nodes are saved as deleted.  hnsw_save calls emit(ctx, data, len)
 * piece by piece and returns its first non-zero result, or 0.
 */
typedef int hnsw_emit_fn(void *ctx, const void *data, size_t len);
int hnsw_save(const struct hnsw *h, hnsw_emit_fn *emit, void *ctx);

/*
 * Parses a saved graph; every count, level and link is checked, so damaged
 * bytes give -EINVAL, never a graph that points outside itself.  Live nodes
 * come without their rows: give each with hnsw_bind, then call
 * hnsw_bound; until then the graph must not be searched.  *used gets the
 * bytes read.  0, -EINVAL or -ENOMEM.
 */
int hnsw_load(const void *data, size_t len, struct hnsw **out, size_t *used);

/*
 * Gives node id its row.  -ESTALE if the row's xxh3 is not the one saved
 * (the graph does not describe these vectors), -EINVAL if id is not a live
 * unbound node.
 */
int hnsw_bind(struct hnsw *h, uint32_t id, const float *vec);

/* 0 if every live node got its row (frees the saved hashes), else -ESTALE. */
int hnsw_bound(struct hnsw *h);

#endif /* LODEFS_VEC_HNSW_H */
