/* text_int.h - helpers shared by the core/text_*.c files only. */
#ifndef LODEFS_CORE_TEXT_INT_H
#define LODEFS_CORE_TEXT_INT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes one strictly valid UTF-8 sequence at s (n bytes available).
 * Returns its length (1..4) and stores the code point in *cp, or returns 0
 * if the bytes at s do not start a valid sequence (overlong, surrogate,
 * above U+10FFFF, truncated, stray continuation byte).  n must be >= 1.
 */
size_t text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * Whether a non-ASCII code point is part of a word.  We have no Unicode
 * tables, so everything counts as a letter except the blocks that are
 * mostly punctuation, symbols, spaces or invisible (Latin-1 punctuation,
 * General Punctuation, arrows and maths, CJK punctuation, fullwidth
 * punctuation, private use, emoji...).
 */
int text_cp_is_word(uint32_t cp);

/* Whether a non-ASCII code point is whitespace for Python's str.strip(). */
int text_cp_is_space(uint32_t cp);

/* Whether a byte is whitespace for Python's str.strip() (ASCII only). */
static inline int text_ascii_is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* --- LEB128 varints, as postings lists store them ------------------------ */

#define TEXT_VARINT_MAX 5 /* bytes for a uint32_t */

/* Writes v at p; returns the bytes written. */
static inline size_t text_varint_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* The bytes text_varint_put() would write for v. */
static inline size_t text_varint_len(uint32_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Reads a varint at *pp and advances *pp past it. */
static inline uint32_t text_varint_get(const uint8_t **pp)
{
	const uint8_t *p = *pp;
	uint32_t v = 0;
	unsigned shift = 0;

	while (*p & 0x80) {
		v |= (uint32_t)(*p++ & 0x7f) << shift;
		shift += 7;
	}
	v |= (uint32_t)*p++ << shift;
	*pp = p;
	return v;
}

/*
 * A token as text_tokenize finds it, before stopwords and stemming:
 * lowercased, NUL-terminated in a buffer of TEXT_TOKEN_MAX + 1 bytes the
 * callee may change; az says whether the word was made of a-z only (the
 * words TEXT_STEM stems; a word cut at TEXT_TOKEN_MAX is judged whole).
 */
typedef int text_raw_fn(void *arg, char *tok, size_t len, int az);

/* text_tokenize handing over the raw tokens. */
int text_tokenize_raw(const char *text, size_t len, text_raw_fn *fn, void *arg);

/* --- interned strings (text_strs.c) -------------------------------------- */

/*
 * A set of short strings (at most 255 bytes) numbered 0..n-1 in order of
 * insertion, stored as [length byte][bytes] in one pool, found through an
 * open-addressing table with linear probing.  A slot holds entry number +
 * 1 in its low half (0: empty) and the top of the key's hash in its high
 * half, so that probing past other keys rarely needs a memcmp and growing
 * the table needs no key hashed again.
 */
struct text_strs {
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t *off;
	uint32_t n, cap;
	uint64_t *slots;
	uint32_t nslots; /* a power of two, or 0 */
};

/* Key i and its length; valid until the next text_strs_intern(). */
const char *text_strs_key(const struct text_strs *s, uint32_t i, size_t *len);

/* Returns the entry number of key[0..len), or UINT32_MAX if absent. */
uint32_t text_strs_find(const struct text_strs *s, const char *key, size_t len);

/*
 * Finds key[0..len) (len <= 255) or adds it; *out gets its entry number
 * and *added whether it is new.  Returns 0 or -ENOMEM, in which case
 * nothing changed.
 */
int text_strs_intern(struct text_strs *s, const char *key, size_t len,
		     uint32_t *out, int *added);

/* The hash the set files key[0..len) under. */
uint64_t text_strs_hash(const char *key, size_t len);

/*
 * text_strs_intern() for a key whose text_strs_hash() is h, so that a
 * caller interning it in several sets hashes it once.
 */
int text_strs_intern_hash(struct text_strs *s, const char *key, size_t len,
			  uint64_t h, uint32_t *out, int *added);

/*
 * Fills the empty set s with the n keys of pool[0..len), which is laid out
 * as s->pool is ([length byte][bytes], in entry order), copying it.
 * Returns 0, -EINVAL if the pool is not n non-empty keys filling exactly
 * len bytes or holds a key twice, or -ENOMEM; on error s is empty again.
 */
int text_strs_load(struct text_strs *s, const char *pool, size_t len,
		   uint32_t n);

/* Frees what the set holds (not s itself). */
void text_strs_free(struct text_strs *s);

#endif
