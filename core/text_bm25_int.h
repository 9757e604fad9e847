/* text_bm25_int.h - the BM25 index's internals, shared by text_bm25*.c only. */
#ifndef LODEFS_CORE_TEXT_BM25_INT_H
#define LODEFS_CORE_TEXT_BM25_INT_H

#include <pthread.h>
#include <stdint.h>

#include "core/text_int.h"

/*
 * Layout.  Each document gets a doc number in order of arrival; replacing
 * a document kills its number and gives it a new one, so every postings
 * list is appended in ascending doc order and can be delta-coded: a list
 * is a byte string of LEB128 varint pairs (doc - previous doc, tf), about
 * 2-3 bytes per posting.  A document keeps the ascending list of its term
 * numbers (also delta varints) so that deleting it can fix every df at
 * once; its postings stay behind as dead weight, skipped while scoring,
 * until a compaction rewrites all lists in place with renumbered docs.
 */

#define BM25_NONE UINT32_MAX

/*
 * Most terms of any vocabulary occur once or twice (Zipf), so a postings
 * list of up to BM25_INLINE bytes lives inside the term itself (cap 0)
 * rather than in a malloc'd buffer that would cost three times as much.
 */
#define BM25_INLINE 8

struct text_term {
	union {
		uint8_t *heap;
		uint8_t in[BM25_INLINE];
	} post;		   /* varint (doc delta, tf) pairs */
	uint32_t len, cap; /* bytes; cap 0 means inline */
	uint32_t df;	   /* live documents containing the term */
	uint32_t last;	   /* doc number of the last posting */
};

/* Term t's postings bytes, wherever they live. */
static inline uint8_t *bm25_post(struct text_term *t)
{
	return t->cap ? t->post.heap : t->post.in;
}

/* bm25_post() for a const term. */
static inline const uint8_t *bm25_post_c(const struct text_term *t)
{
	return t->cap ? t->post.heap : t->post.in;
}

struct text_doc {
	char *id;	/* NULL once deleted or replaced */
	uint8_t *terms; /* ascending term numbers as varint deltas */
	uint32_t nterms;
	uint32_t len; /* tokens after stopword removal */
};

struct text_index {
	pthread_rwlock_t lock;
	double k1, b, bigram_weight;

	struct text_strs dict;	 /* term -> term number */
	struct text_term *terms; /* by term number */
	uint32_t terms_cap;

	struct text_doc *docs; /* by doc number */
	uint32_t ndocs, docs_cap;
	uint64_t *ids; /* id -> doc number, open addressing */
	uint32_t nids, ids_slots;

	uint64_t n;	    /* live documents with at least one token */
	uint64_t total_len; /* their summed lengths */
	uint64_t postings;  /* stored, dead ones included */
	uint64_t dead_postings;
	uint32_t dead_docs;
	uint64_t post_bytes; /* capacity of all postings lists */
	uint64_t fwd_bytes;  /* of all documents' term lists */
	uint64_t id_bytes;
	/*
	 * Unique among the indexes of the process (never reused), so that
	 * a text_prep can tell which index its cached term numbers are of.
	 */
	uint64_t serial;
};

/* --- the id map (text_bm25.c) -------------------------------------------- */

/*
 * A slot holds 0 (empty) or the id's 32-bit hash in its high half and its
 * doc number + 1 in its low half.  The hash picks the home slot, spares
 * most string compares, and lets the table grow or lose a member without
 * reading an id.
 */
#define BM25_ID_DOC(v)	((uint32_t)(v)-1)
#define BM25_ID_HASH(v) ((uint32_t)((v) >> 32))

/* The slot value for doc number d whose id hashes to h. */
static inline uint64_t bm25_id_value(uint32_t h, uint32_t d)
{
	return (uint64_t)h << 32 | (d + 1);
}

/* Returns the 32-bit hash the id map files id (a C string) under. */
uint32_t bm25_id_hash(const char *id);

/* Returns id's slot (hash h) in idx->ids, or the empty slot it would take. */
uint32_t bm25_id_slot(const struct text_index *idx, const char *id, uint32_t h);

/*
 * Copies a postings list (len bytes at rd) to wr without the documents
 * remap[] marks BM25_NONE, renumbering the others; *last gets the last
 * new document number.  Returns the bytes written, never more than len,
 * so wr may equal rd (compaction in place).  The one rewrite that
 * compaction and saving share, so their bytes are the same.
 */
static inline size_t bm25_remap_postings(const uint8_t *rd, size_t len,
					 const uint32_t *remap, uint8_t *wr,
					 uint32_t *last)
{
	const uint8_t *end = rd + len;
	uint8_t *start = wr;
	uint32_t old = 0, prev = 0, tf;

	while (rd < end) {
		old += text_varint_get(&rd);
		tf = text_varint_get(&rd);
		if (remap[old] == BM25_NONE)
			continue;
		wr += text_varint_put(wr, remap[old] - prev);
		wr += text_varint_put(wr, tf);
		prev = remap[old];
	}
	*last = prev;
	return (size_t)(wr - start);
}

#endif
