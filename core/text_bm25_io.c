/* text_bm25_io.c - saving and loading the BM25 index (the LODEBM25 format). */
#include "core/text.h"
#include "core/text_bm25_int.h"
#include "core/text_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* --- persistence --------------------------------------------------------- */

/*
 * The saved form, all integers little-endian:
 *
 *   header   "LODEBM25", u32 version (1), u32 flags (0),
 *            f64 k1, b, bigram_weight (IEEE 754 bits),
 *            u32 ndocs, u32 nterms, u64 postings, u64 total_len,
 *            u64 dict_bytes
 *   docs     ndocs times: u32 len, u32 nterms, u32 id_bytes,
 *            u32 fwd_bytes, the id (no NUL), the term list: nterms
 *            varints, the ascending term numbers as deltas
 *   dict     dict_bytes: nterms keys as the dictionary's pool holds them,
 *            [u8 length][bytes], in term-number order
 *   postings nterms times: u32 df, u32 bytes, the postings list: df
 *            varint pairs (doc number delta, tf), docs ascending
 *
 * It is the index compacted: documents are the live ones renumbered
 * 0..ndocs-1 in order, so every posting is live and a term's df is its
 * number of postings.  Terms keep their numbers (those left without
 * postings included), so the term lists need no rewriting.  Loading
 * copies the lists as they are after checking every varint in them:
 * doc and term numbers in range and ascending, tf > 0, each term's df
 * equal to the number of term lists naming it, the header's totals equal
 * to the sums.  Whatever bytes it is given, the index it builds is one
 * that puts, deletes, compactions and searches can work on.
 */
#define BM25_MAGIC    "LODEBM25"
#define BM25_VERSION  1
#define BM25_HDR      72 /* header bytes */
#define BM25_DOC_HDR  16
#define BM25_TERM_HDR 8
#define BM25_WBUF     (64 * 1024) /* save's write buffer */

static void bm25_le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void bm25_le64_put(uint8_t *p, uint64_t v)
{
	bm25_le32_put(p, (uint32_t)v);
	bm25_le32_put(p + 4, (uint32_t)(v >> 32));
}

static uint32_t bm25_le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t bm25_le64_get(const uint8_t *p)
{
	return bm25_le32_get(p) | (uint64_t)bm25_le32_get(p + 4) << 32;
}

static uint64_t bm25_f64_bits(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return u;
}

static double bm25_bits_f64(uint64_t u)
{
	double v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

/* Gathers small writes into BM25_WBUF-byte emits; the first error sticks. */
struct bm25_writer {
	text_emit_fn *emit;
	void *ctx;
	uint8_t *buf;
	size_t used;
	int rc;
};

static void bm25_w_flush(struct bm25_writer *w)
{
	if (w->used && !w->rc)
		w->rc = w->emit(w->ctx, w->buf, w->used);
	w->used = 0;
}

static void bm25_w_bytes(struct bm25_writer *w, const void *data, size_t n)
{
	if (w->used + n > BM25_WBUF) {
		bm25_w_flush(w);
		/* A big piece goes out as it is rather than through buf. */
		if (n > BM25_WBUF / 2) {
			if (!w->rc)
				w->rc = w->emit(w->ctx, data, n);
			return;
		}
	}
	if (n)
		memcpy(w->buf + w->used, data, n);
	w->used += n;
}

/* The bytes of a term list: its nterms varints end in a byte below 0x80. */
static size_t bm25_fwd_len(const struct text_doc *doc)
{
	const uint8_t *p = doc->terms;
	uint32_t i;

	if (!doc->nterms) /* a loaded document's list may be NULL */
		return 0;
	for (i = 0; i < doc->nterms; i++)
		while (*p++ & 0x80)
			;
	return (size_t)(p - doc->terms);
}

static void bm25_save_header(const struct text_index *idx,
			     struct bm25_writer *w)
{
	uint8_t h[BM25_HDR];

	memcpy(h, BM25_MAGIC, 8);
	bm25_le32_put(h + 8, BM25_VERSION);
	bm25_le32_put(h + 12, 0);
	bm25_le64_put(h + 16, bm25_f64_bits(idx->k1));
	bm25_le64_put(h + 24, bm25_f64_bits(idx->b));
	bm25_le64_put(h + 32, bm25_f64_bits(idx->bigram_weight));
	bm25_le32_put(h + 40, idx->nids);
	bm25_le32_put(h + 44, idx->dict.n);
	bm25_le64_put(h + 48, idx->postings - idx->dead_postings);
	bm25_le64_put(h + 56, idx->total_len);
	bm25_le64_put(h + 64, idx->dict.pool_len);
	bm25_w_bytes(w, h, sizeof(h));
}

static void bm25_save_docs(const struct text_index *idx, struct bm25_writer *w)
{
	uint8_t h[BM25_DOC_HDR];
	uint32_t d;

	for (d = 0; d < idx->ndocs && !w->rc; d++) {
		const struct text_doc *doc = &idx->docs[d];
		size_t idl, fwdl;

		if (!doc->id)
			continue;
		idl = strlen(doc->id);
		fwdl = bm25_fwd_len(doc);
		bm25_le32_put(h, doc->len);
		bm25_le32_put(h + 4, doc->nterms);
		bm25_le32_put(h + 8, (uint32_t)idl);
		bm25_le32_put(h + 12, (uint32_t)fwdl);
		bm25_w_bytes(w, h, sizeof(h));
		bm25_w_bytes(w, doc->id, idl);
		bm25_w_bytes(w, doc->terms, fwdl);
	}
}

/*
 * Writes each term's postings; with remap (old doc number -> new, or
 * BM25_NONE for the dead), rewrites them into scratch without the dead,
 * as a compaction would.
 */
static void bm25_save_postings(const struct text_index *idx,
			       const uint32_t *remap, uint8_t *scratch,
			       struct bm25_writer *w)
{
	uint8_t h[BM25_TERM_HDR];
	uint32_t t;

	for (t = 0; t < idx->dict.n && !w->rc; t++) {
		const struct text_term *term = &idx->terms[t];
		const uint8_t *rd = bm25_post_c(term);
		uint32_t last;
		size_t n;

		bm25_le32_put(h, term->df);
		if (!remap) {
			bm25_le32_put(h + 4, term->len);
			bm25_w_bytes(w, h, sizeof(h));
			bm25_w_bytes(w, rd, term->len);
			continue;
		}
		n = bm25_remap_postings(rd, term->len, remap, scratch, &last);
		bm25_le32_put(h + 4, (uint32_t)n);
		bm25_w_bytes(w, h, sizeof(h));
		bm25_w_bytes(w, scratch, n);
	}
}

int text_index_save(struct text_index *idx, text_emit_fn *emit, void *ctx)
{
	struct bm25_writer w = { .emit = emit, .ctx = ctx };
	uint32_t *remap = NULL, d, t, nd = 0, max = 0;
	uint8_t *scratch = NULL;
	int rc = -ENOMEM;

	if (!idx || !emit)
		return -EINVAL;
	w.buf = malloc(BM25_WBUF);
	if (!w.buf)
		return -ENOMEM;
	pthread_rwlock_rdlock(&idx->lock);
	/*
	 * Dead postings are left out by renumbering on the fly, as
	 * bm25_compact() would, rather than by compacting: that would need
	 * the write lock and stop searches.  A rewritten list is never
	 * longer than the list, so scratch has the longest one's size.
	 */
	if (idx->dead_docs) {
		remap = malloc(idx->ndocs * sizeof(*remap));
		for (t = 0; t < idx->dict.n; t++)
			if (idx->terms[t].len > max)
				max = idx->terms[t].len;
		scratch = malloc(max ? max : 1);
		if (!remap || !scratch)
			goto out_unlock;
		for (d = 0; d < idx->ndocs; d++)
			remap[d] = idx->docs[d].id ? nd++ : BM25_NONE;
	}
	bm25_save_header(idx, &w);
	bm25_save_docs(idx, &w);
	bm25_w_bytes(&w, idx->dict.pool, idx->dict.pool_len);
	bm25_save_postings(idx, remap, scratch, &w);
	bm25_w_flush(&w);
	rc = w.rc;
out_unlock:
	pthread_rwlock_unlock(&idx->lock);
	free(scratch);
	free(remap);
	free(w.buf);
	return rc;
}

/* A cursor over the bytes being loaded. */
struct bm25_reader {
	const uint8_t *p, *end;
};

/* The next n bytes, or NULL if there are fewer. */
static const uint8_t *bm25_r_take(struct bm25_reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if ((size_t)(r->end - r->p) < n)
		return NULL;
	r->p += n;
	return p;
}

/*
 * Reads a varint written by text_varint_put(), no further than end: at
 * most TEXT_VARINT_MAX bytes, no bits beyond 32, no superfluous zero
 * byte.  Returns 0 or -EINVAL.
 */
static inline int bm25_varint_check(const uint8_t **pp, const uint8_t *end,
				    uint32_t *v)
{
	const uint8_t *p = *pp;
	uint32_t x = 0, shift;
	uint8_t c;

	if (p < end && *p < 0x80) {
		*v = *p;
		*pp = p + 1;
		return 0;
	}
	if (end - p >= 2 && p[1] < 0x80 && p[1]) { /* the common others */
		*v = (uint32_t)(p[0] & 0x7f) | (uint32_t)p[1] << 7;
		*pp = p + 2;
		return 0;
	}
	for (shift = 0;; shift += 7) {
		if (p == end || shift > 28)
			return -EINVAL;
		c = *p++;
		if (shift == 28 && c > 0x0f)
			return -EINVAL;
		x |= (uint32_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			break;
	}
	if (!c)
		return -EINVAL;
	*v = x;
	*pp = p;
	return 0;
}

/*
 * Checks a term list of nterms varints filling fwd[0..len): ascending term
 * numbers below nterms_all.  Counts each term in cnt.  Returns 0 or
 * -EINVAL.
 */
static int bm25_check_fwd(const uint8_t *fwd, size_t len, uint32_t nterms,
			  uint32_t nterms_all, uint32_t *cnt)
{
	const uint8_t *p = fwd, *end = fwd + len;
	uint64_t t = 0;
	uint32_t i, delta;

	for (i = 0; i < nterms; i++) {
		if (bm25_varint_check(&p, end, &delta) || (i && !delta))
			return -EINVAL;
		t += delta;
		if (t >= nterms_all)
			return -EINVAL;
		cnt[t]++;
	}
	return p == end ? 0 : -EINVAL;
}

/*
 * Ids are put in the map BM25_LOAD_AHEAD documents after their hash is
 * taken and their slot prefetched: the map is far bigger than the caches
 * and each insertion would otherwise wait for memory.
 */
#define BM25_LOAD_AHEAD 16

/* Puts doc d, of id hash h, in the id map; -EINVAL if its id is there. */
static int bm25_load_id(struct text_index *idx, uint32_t d, uint32_t h)
{
	uint32_t slot = bm25_id_slot(idx, idx->docs[d].id, h);

	if (idx->ids[slot])
		return -EINVAL;
	idx->ids[slot] = bm25_id_value(h, d);
	idx->nids++;
	return 0;
}

/* Loads the documents; cnt[t] gets how many name term t. */
static int bm25_load_docs(struct text_index *idx, struct bm25_reader *r,
			  uint32_t ndocs, uint32_t nterms, uint32_t *cnt)
{
	uint32_t nslots = 64, h, d, ring[BM25_LOAD_AHEAD];
	const uint8_t *hdr, *idp, *fwdp;
	uint32_t len, nt, idl, fwdl;
	char *id;
	uint8_t *fwd;

	if (!ndocs)
		return 0;
	while (nslots < 2 * (uint64_t)ndocs)
		nslots *= 2;
	idx->docs = malloc((size_t)ndocs * sizeof(*idx->docs));
	idx->ids = calloc(nslots, sizeof(*idx->ids));
	if (!idx->docs || !idx->ids)
		return -ENOMEM;
	idx->docs_cap = ndocs;
	idx->ids_slots = nslots;
	while (idx->ndocs < ndocs) {
		hdr = bm25_r_take(r, BM25_DOC_HDR);
		if (!hdr)
			return -EINVAL;
		len = bm25_le32_get(hdr);
		nt = bm25_le32_get(hdr + 4);
		idl = bm25_le32_get(hdr + 8);
		fwdl = bm25_le32_get(hdr + 12);
		idp = bm25_r_take(r, idl);
		fwdp = bm25_r_take(r, fwdl);
		/* As put makes them: tokens give terms, bigrams at most 2x. */
		if (!idl || !idp || !fwdp || memchr(idp, '\0', idl) ||
		    (len == 0) != (nt == 0) ||
		    nt > (idx->bigram_weight > 0 ? 2 * (uint64_t)len : len) ||
		    bm25_check_fwd(fwdp, fwdl, nt, nterms, cnt))
			return -EINVAL;
		id = malloc((size_t)idl + 1);
		fwd = fwdl ? malloc(fwdl) : NULL;
		if (!id || (fwdl && !fwd)) {
			free(id);
			free(fwd);
			return -ENOMEM;
		}
		memcpy(id, idp, idl);
		id[idl] = '\0';
		if (fwdl)
			memcpy(fwd, fwdp, fwdl);
		idx->docs[idx->ndocs] = (struct text_doc){
			.id = id, .terms = fwd, .nterms = nt, .len = len
		};
		d = idx->ndocs++; /* from here on freed with the index */
		h = bm25_id_hash(id);
		__builtin_prefetch(&idx->ids[h & (nslots - 1)]);
		if (d >= BM25_LOAD_AHEAD &&
		    bm25_load_id(idx, d - BM25_LOAD_AHEAD,
				 ring[d % BM25_LOAD_AHEAD]))
			return -EINVAL;
		ring[d % BM25_LOAD_AHEAD] = h;
		idx->postings += nt;
		idx->total_len += len;
		idx->n += len > 0;
		idx->fwd_bytes += fwdl;
		idx->id_bytes += (uint64_t)idl + 1;
	}
	for (d = ndocs > BM25_LOAD_AHEAD ? ndocs - BM25_LOAD_AHEAD : 0;
	     d < ndocs; d++)
		if (bm25_load_id(idx, d, ring[d % BM25_LOAD_AHEAD]))
			return -EINVAL;
	return 0;
}

/* Checks a postings list of df postings filling post[0..len). */
static int bm25_check_post(const uint8_t *post, size_t len, uint32_t df,
			   uint32_t ndocs, uint32_t *last)
{
	const uint8_t *p = post, *end = post + len;
	uint64_t d = 0;
	uint32_t i, delta, tf;

	for (i = 0; i < df; i++) {
		if (bm25_varint_check(&p, end, &delta) ||
		    bm25_varint_check(&p, end, &tf) || (i && !delta) || !tf)
			return -EINVAL;
		d += delta;
		if (d >= ndocs)
			return -EINVAL;
	}
	*last = (uint32_t)d;
	return p == end ? 0 : -EINVAL;
}

/* Loads every term's postings, which cnt says how many to expect. */
static int bm25_load_postings(struct text_index *idx, struct bm25_reader *r,
			      const uint32_t *cnt)
{
	const uint8_t *h, *post;
	uint32_t t, df, len;

	for (t = 0; t < idx->dict.n; t++) {
		struct text_term *term = &idx->terms[t];

		h = bm25_r_take(r, BM25_TERM_HDR);
		if (!h)
			return -EINVAL;
		df = bm25_le32_get(h);
		len = bm25_le32_get(h + 4);
		post = bm25_r_take(r, len);
		if (!post || df != cnt[t] ||
		    bm25_check_post(post, len, df, idx->ndocs, &term->last))
			return -EINVAL;
		if (len > BM25_INLINE) {
			term->post.heap = malloc(len);
			if (!term->post.heap)
				return -ENOMEM;
			term->cap = len;
			idx->post_bytes += len;
		}
		memcpy(bm25_post(term), post, len);
		term->len = len;
		term->df = df;
	}
	return 0;
}

int text_index_load(const void *data, size_t len, struct text_index **out)
{
	struct bm25_reader r;
	struct text_index_opts opts;
	struct text_index *idx = NULL;
	uint32_t ndocs, nterms, *cnt = NULL;
	uint64_t postings, total_len, dict_bytes;
	const uint8_t *h, *dict;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!data)
		return -EINVAL;
	r.p = data;
	r.end = r.p + len;
	h = bm25_r_take(&r, BM25_HDR);
	if (!h || memcmp(h, BM25_MAGIC, 8) != 0 ||
	    bm25_le32_get(h + 8) != BM25_VERSION || bm25_le32_get(h + 12) != 0)
		return -EINVAL;
	opts.k1 = bm25_bits_f64(bm25_le64_get(h + 16));
	opts.b = bm25_bits_f64(bm25_le64_get(h + 24));
	opts.bigram_weight = bm25_bits_f64(bm25_le64_get(h + 32));
	ndocs = bm25_le32_get(h + 40);
	nterms = bm25_le32_get(h + 44);
	postings = bm25_le64_get(h + 48);
	total_len = bm25_le64_get(h + 56);
	dict_bytes = bm25_le64_get(h + 64);
	/* Bound the counts by the bytes before allocating for them. */
	if (ndocs > (len - BM25_HDR) / BM25_DOC_HDR ||
	    nterms > (len - BM25_HDR) / (2 + BM25_TERM_HDR) ||
	    ndocs >= (1u << 30))
		return -EINVAL;
	rc = text_index_new_opts(&opts, &idx);
	if (rc)
		return rc;
	rc = -ENOMEM;
	cnt = calloc(nterms ? nterms : 1, sizeof(*cnt));
	if (nterms) {
		idx->terms = calloc(nterms, sizeof(*idx->terms));
		idx->terms_cap = idx->terms ? nterms : 0;
	}
	if (!cnt || (nterms && !idx->terms))
		goto out_free;
	rc = bm25_load_docs(idx, &r, ndocs, nterms, cnt);
	if (rc)
		goto out_free;
	rc = -EINVAL;
	if (idx->postings != postings || idx->total_len != total_len ||
	    dict_bytes > (size_t)(r.end - r.p))
		goto out_free;
	dict = bm25_r_take(&r, (size_t)dict_bytes);
	rc = text_strs_load(&idx->dict, (const char *)dict, (size_t)dict_bytes,
			    nterms);
	if (rc)
		goto out_free;
	rc = bm25_load_postings(idx, &r, cnt);
	if (!rc && r.p != r.end)
		rc = -EINVAL; /* trailing bytes */
	if (rc)
		goto out_free;
	free(cnt);
	*out = idx;
	return 0;
out_free:
	free(cnt);
	text_index_free(idx);
	return rc;
}
