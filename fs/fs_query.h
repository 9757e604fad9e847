/* fs_query.h - query/ requests (path options or JSON) run against a store. */
#ifndef LODEFS_FS_QUERY_H
#define LODEFS_FS_QUERY_H

#include <stddef.h>

#include "core/store.h"

/*
 * A parsed query request.  Two ways in, one way out:
 *
 *  - a path below query/: option segments "key=value" (k, mode, alpha, ns,
 *    doc, where, format, mmr_threshold, exact, ef), in any order, then the
 *    query text as the last segment: "k=5/mode=hybrid/how do apples grow".
 *    Each segment arrives already percent-decoded.  Several where= AND
 *    together; several doc= restrict to any of those documents.
 *  - a JSON LlamaIndex VectorStoreQuery written into query/<name>.json:
 *    query_str, query_embedding, similarity_top_k, node_ids, doc_ids,
 *    filters ({"filters": [...], "condition": "and"|"or"}, nested), mode
 *    ("default", "sparse"/"text_search" = keyword, "hybrid", "mmr",
 *    "vector", "keyword"), alpha, mmr_threshold, plus lodefs's exact, ef,
 *    ns, format.  Unknown fields are refused (-EINVAL), as a typo would
 *    otherwise silently change the answer.
 *
 * Errors are -EINVAL (malformed value, unknown mode, bad filter) or -ENOENT
 * (unknown option key), with a one-line reason written into err.
 */
struct fs_qreq;

/* 1 if `seg` has the shape of an option segment ("name=value", name
 * [a-z_]+), whether or not the name is known; 0 for query text. */
int fs_query_is_option(const char *seg);

/*
 * Parses option segments segs[0..n-1] (each "key=value") followed by the
 * text `text` (NULL: options only, as for a directory such as query/k=5,
 * which must still be valid).  *out is freed with fs_qreq_free.
 */
int fs_qreq_from_path(const char *const *segs, size_t n, const char *text,
		      struct fs_qreq **out, char *err, size_t errlen);

/* Parses a JSON request of `len` bytes. */
int fs_qreq_from_json(const char *json, size_t len, struct fs_qreq **out,
		      char *err, size_t errlen);

void fs_qreq_free(struct fs_qreq *r); /* accepts NULL */

/* The vector namespace the request names (borrowed), or NULL. */
const char *fs_qreq_ns(const struct fs_qreq *r);

/*
 * Runs the request.  *out (malloc'd, free()) is the result document: JSON
 * as store_hits_json writes it (rank, score, node_id, ref_doc_id, text,
 * metadata per node; ids and similarities), ending in a newline; or, with
 * format=text, one block per hit ("rank score node_id ref_doc_id" then the
 * text).  Returns 0 or a negative errno with the reason in err.
 */
int fs_qreq_run(struct store *s, const struct fs_qreq *r, char **out,
		size_t *len, char *err, size_t errlen);

#endif
