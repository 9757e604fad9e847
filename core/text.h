/* text.h - tokeniser, Porter2 stemmer, BM25 index and sentence splitter. */
#ifndef LODEFS_CORE_TEXT_H
#define LODEFS_CORE_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Pure functions and one self-locking index; nothing here touches storage
 * or prints.  Functions returning int return 0 or a negative errno.
 */

/* --- UTF-8 --------------------------------------------------------------- */

/*
 * Returns 1 if data[0..len) is text: strictly valid UTF-8 (no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequence) and
 * free of NUL bytes, which only binary files contain.  Returns 0 otherwise.
 * An empty buffer is text.
 */
int text_is_utf8(const void *data, size_t len);

/* --- analysis ------------------------------------------------------------ */

/* Longest token in bytes; longer words are cut at a UTF-8 boundary. */
#define TEXT_TOKEN_MAX 64

enum text_analysis {
	TEXT_LOWER = 0,	  /* lowercase tokens only */
	TEXT_STOP = 1,	  /* drop Lucene's 33 English stopwords */
	TEXT_STEM = 2,	  /* Porter2-stem tokens made only of a-z */
	TEXT_ANALYZE = 3, /* both: what the index does */
};

/*
 * Called once per token.  tok is NUL-terminated, len bytes (at most
 * TEXT_TOKEN_MAX), borrowed for the call.  A non-zero return stops the
 * tokeniser, which then returns that value.
 */
typedef int text_token_fn(void *arg, const char *tok, size_t len);

/*
 * Splits text[0..len) into tokens: maximal runs of ASCII letters and
 * digits (lowercased) and of non-ASCII characters that are not
 * punctuation, symbols or spaces (so "naïve" and "日本" are tokens; we
 * have no Unicode tables, so this goes by blocks), then applies `flags`
 * (enum text_analysis).  Bytes that are not valid UTF-8, NUL included,
 * separate tokens.  Returns 0, or the first non-zero value fn returned.
 */
int text_tokenize(const char *text, size_t len, unsigned flags,
		  text_token_fn *fn, void *arg);

/* Returns 1 if the lowercase word[0..len) is one of Lucene's stopwords. */
int text_is_stopword(const char *word, size_t len);

/*
 * Porter2 (Snowball English: the classic version published on
 * snowball.tartarus.org, with the gener/commun/arsen R1 exceptions, which
 * is what NLTK implements) stems the lowercase word[0..len) in place and
 * returns its new length, which is never longer.  Words with a byte
 * outside a-z are left as they are (so no apostrophe handling: the
 * tokeniser never makes them).  word[result] is not written; add a NUL
 * yourself if you need one.
 */
size_t text_stem(char *word, size_t len);

/* --- token counting ------------------------------------------------------ */

/*
 * Approximate number of tiktoken cl100k_base tokens in text[0..len).  We
 * do not ship cl100k's 100k merges, so this counts its pre-tokeniser
 * pieces instead: a run of letters is ceil(ASCII letters / 6) tokens plus
 * one per non-ASCII letter; digits come in groups of up to 3; every
 * punctuation or symbol character, and every invalid byte, is one token;
 * a whitespace run is one token, except that its last character rides
 * free on a following letter run or punctuation, as cl100k's " word" does.
 * It is an approximation, meant to err high rather than low, and not
 * checked against cl100k here.  It is subadditive: count(a + b) <=
 * count(a) + count(b), which is what keeps merged chunks within size.
 */
size_t text_count_tokens(const char *text, size_t len);

/* --- sentence splitter --------------------------------------------------- */

#define TEXT_CHUNK_SIZE	   1024 /* LlamaIndex's defaults, in tokens */
#define TEXT_CHUNK_OVERLAP 200

struct text_chunk {
	size_t start, end;	     /* byte range [start, end) in the input */
	size_t start_char, end_char; /* the same range in code points, as
					Python's start_char_idx/end_char_idx
					(an invalid byte counts as one) */
	size_t tokens;		     /* text_count_tokens() of the chunk */
	const char *text;	     /* NUL-terminated copy of the range */
};

/*
 * Splits text[0..len) like LlamaIndex's SentenceSplitter: pieces are cut
 * at the paragraph separator "\n\n\n", then at sentence ends (a rule-based
 * stand-in for NLTK's Punkt: a run of . ! ? and closing quotes or
 * brackets followed by whitespace, unless the dot follows a single letter
 * or a common abbreviation; or one of 。 ！ ？), then by the regex
 * "[^,.;。？！]+[,.;。？！]?", then at spaces, then between characters,
 * each level only for pieces still above chunk_size tokens; pieces are
 * then merged greedily into chunks of at most chunk_size tokens, each new
 * chunk starting with the previous chunk's trailing pieces that fit in
 * chunk_overlap tokens.  Counts come from text_count_tokens(), so they
 * approximate cl100k.  To split metadata-aware, subtract
 * text_count_tokens(metadata) from chunk_size yourself.
 *
 * Differences from LlamaIndex, on purpose: a chunk never exceeds
 * chunk_size (LlamaIndex can overshoot when the overlap plus the next
 * piece is too big; we drop overlap pieces from the front instead), and
 * cuts never fall inside a valid UTF-8 sequence.
 *
 * Chunks are stripped of leading and trailing whitespace (Python's
 * str.strip() set) by moving start and end inward, so every chunk is
 * exactly the substring text[start..end) of the input, and both start and
 * end strictly increase from chunk to chunk.  Whitespace-only chunks are
 * dropped (so empty or blank text gives *n = 0 and *chunks = NULL), and so
 * is a chunk that stripping leaves inside its neighbour.  Invalid UTF-8
 * is split on byte boundaries and never read past len.
 *
 * Returns 0, -EINVAL if chunk_size is 0 or chunk_overlap > chunk_size, or
 * -ENOMEM.  On success *chunks is one allocation, texts included, that the
 * caller frees with text_chunks_free(); it does not borrow `text`.
 */
int text_split(const char *text, size_t len, size_t chunk_size,
	       size_t chunk_overlap, struct text_chunk **chunks, size_t *n);

/* Frees what text_split() returned.  Accepts NULL; n is unused. */
void text_chunks_free(struct text_chunk *chunks, size_t n);

/* --- BM25 index ---------------------------------------------------------- */

/*
 * An in-memory inverted index over documents named by caller strings (node
 * ids).  Documents are analysed with TEXT_ANALYZE; a document's length is
 * its token count after stopword removal.  Scores are Okapi BM25 with
 * Lucene's idf:
 *
 *   score(d, q) = sum over query tokens t (repeats count again) of
 *     idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
 *   idf(t) = log(1 + (N - df + 0.5) / (df + 0.5))
 *
 * where N counts the documents with at least one token (as Lucene's
 * docCount does) and avgdl is their mean length.  With bigram_weight > 0,
 * each pair of adjacent tokens in the query (after stopword removal) adds
 * bigram_weight times the same formula over adjacent token pairs in the
 * documents.  That is an ordered-window feature of Metzler and Croft's
 * sequential dependence model, whose published weights (0.85 unigrams,
 * 0.10 ordered pairs) give TEXT_BM25_BIGRAM_WEIGHT; on Cranfield it lifts
 * nDCG@10 from 0.385 to 0.390, but on real text it costs about ten times
 * the memory (most bigrams are seen once), hence off by default.
 *
 * All functions are safe to call from several threads at once: the index
 * holds a writer-preferring rwlock; searches run in parallel.
 */
struct text_index;

struct text_index_opts {
	double k1;	      /* term frequency saturation, default 1.2 */
	double b;	      /* length normalisation, default 0.75 */
	double bigram_weight; /* 0 (default) indexes no bigrams */
};

#define TEXT_BM25_K1		1.2
#define TEXT_BM25_B		0.75
#define TEXT_BM25_BIGRAM_WEIGHT (0.10 / 0.85)

/* Creates an empty index with the defaults above. */
int text_index_new(struct text_index **out);

/*
 * Creates an empty index; opts may be NULL for the defaults.  Returns
 * -EINVAL for k1 < 0, b outside [0, 1] or bigram_weight < 0.
 */
int text_index_new_opts(const struct text_index_opts *opts,
			struct text_index **out);

/* Frees the index.  Accepts NULL.  No call may be running on it. */
void text_index_free(struct text_index *idx);

/*
 * Adds the document `id` (a non-empty NUL-terminated string) with the text
 * text[0..len), or replaces it if present.  id is copied; text is only
 * read, before the write lock is taken.  Returns 0, -EINVAL, or -ENOMEM,
 * in which case the index is as before the call.
 */
int text_index_put(struct text_index *idx, const char *id, const char *text,
		   size_t len);

/*
 * Documents analysed ahead of their text_index_put, in another thread if
 * need be: text_prep_add tokenises, stems and counts a text (the costly
 * part of a put) into the batch, without the index; later
 * text_index_put_prepared(idx, id, p, doc) does what
 * text_index_put(idx, id, text, len) would have done with that text,
 * to the byte.  A batch is made for one index (its bigram setting) and
 * is used by one thread at a time, text_index_put_prepared included (it
 * caches in the batch the index's number of each term, so a term shared
 * by many documents is looked up once).  Memory: about 8 bytes per
 * distinct term of each document, plus the batch's vocabulary.
 */
struct text_prep;
/* 0, -EINVAL, -ENOMEM; *out freed with text_prep_free. */
int text_prep_new(const struct text_index *idx, struct text_prep **out);
void text_prep_free(struct text_prep *p); /* accepts NULL */
/* Analyses text[0..len): *doc gets its number (0, 1, ...).  0 or -errno. */
int text_prep_add(struct text_prep *p, const char *text, size_t len,
		  uint32_t *doc);
/* Documents in the batch. */
uint32_t text_prep_count(const struct text_prep *p);
/*
 * text_index_put of document `doc` of p under `id`: 0, -EINVAL (no such
 * document, or p was made for an index with another bigram setting),
 * -ENOMEM (the index is as before).
 */
int text_index_put_prepared(struct text_index *idx, const char *id,
			    struct text_prep *p, uint32_t doc);
/*
 * Whether text_index_put_prepared(idx, id, p, doc) takes the document
 * (the same bigram setting, a document of p); it may still run short of
 * memory.
 */
int text_prep_fits(const struct text_index *idx, const struct text_prep *p,
		   uint32_t doc);

/* Removes the document `id`.  Returns 0, or -ENOENT if it is absent. */
int text_index_del(struct text_index *idx, const char *id);

/*
 * Decides whether document `id` may appear in results: non-zero keeps it.
 * Called at most once per candidate, before it is scored, with the index's
 * read lock held: it must not call any text_index_*() on the same index
 * (a waiting writer would deadlock a second read lock).
 */
typedef int text_filter_fn(void *arg, const char *id);

struct text_hit {
	char *id;
	double score;
};

struct text_results {
	struct text_hit *hits; /* n hits, best first */
	size_t n;
};

/*
 * Finds the k best documents for `query` (NUL-terminated), skipping those
 * `filter` (may be NULL) rejects.  Only documents sharing a token with the
 * query are returned, sorted by score descending, ties by id ascending
 * (strcmp).  On success the caller owns results->hits and the ids in them,
 * freed by text_results_free(); on error *results is empty.  Returns 0,
 * -EINVAL or -ENOMEM.
 */
int text_index_search(struct text_index *idx, const char *query, size_t k,
		      text_filter_fn *filter, void *arg,
		      struct text_results *results);

/* Frees the hits of results and empties it.  Accepts NULL. */
void text_results_free(struct text_results *results);

struct text_index_stats {
	uint64_t docs;	       /* documents present */
	uint64_t n;	       /* N: documents with at least one token */
	double avgdl;	       /* mean length over those N, 0 if N is 0 */
	uint64_t terms;	       /* distinct terms ever seen (and bigrams) */
	uint64_t postings;     /* postings stored, deleted ones included */
	uint64_t dead;	       /* postings of deleted documents */
	uint64_t memory_bytes; /* approximate heap use */
};

/* The index's bigram_weight (as created or loaded). */
double text_index_bigram_weight(const struct text_index *idx);

/* Fills *st with a consistent snapshot. */
void text_index_stats(struct text_index *idx, struct text_index_stats *st);

/*
 * Drops the postings of deleted and replaced documents now.  The index
 * does it by itself once they are a quarter of all postings, so this is
 * only for tests and for trimming memory at quiet times.  Returns 0.
 */
int text_index_compact(struct text_index *idx);

/* --- BM25 persistence ---------------------------------------------------- */

/*
 * Writes len bytes of a saved index somewhere (the engine's checkpoint
 * object); data is borrowed for the call.  Returns 0 or a negative errno,
 * which stops text_index_save().
 */
typedef int text_emit_fn(void *ctx, const void *data, size_t len);

/*
 * Serialises the whole index (options, documents with their ids, lengths
 * and term lists, every term with its postings) by calling emit any number
 * of times, each with len > 0 (pieces of up to 64 KiB, or one long
 * postings list).  It holds the read lock throughout, so the snapshot is
 * consistent and searches go on, but puts and deletes wait for the end
 * (and, the lock preferring writers, so do searches that come after a
 * waiting put): emit should be quick, and must not call text_index_*() on
 * the same index.
 * Dead postings are left out without compacting the index itself: the
 * saved form is that of the index compacted.  The format (text_bm25_io.c) is
 * versioned and little-endian, and every length and count in it is
 * checked on load.  Returns 0, the first non-zero result of emit (after
 * which emit is not called again), -EINVAL if idx or emit is NULL, or
 * -ENOMEM.
 */
int text_index_save(struct text_index *idx, text_emit_fn *emit, void *ctx);

/*
 * Builds a new index from data[0..len), bytes that text_index_save()
 * produced, without tokenising anything; data is borrowed for the call
 * only.  The new index searches exactly as the saved one did (same hits,
 * same scores), takes puts and deletes as usual, and holds no more memory
 * than an index built by puts would.  On success *out is freed with
 * text_index_free(); on error it is NULL.  Returns 0, -EINVAL if the bytes
 * are not a saved index (wrong magic or version, truncated, trailing
 * bytes, a length or count that does not add up: any input is safe to
 * pass) or out is NULL, or -ENOMEM.
 */
int text_index_load(const void *data, size_t len, struct text_index **out);

#endif
