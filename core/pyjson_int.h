/* pyjson_int.h - what the pyjson_*.c files share; not for other modules. */
#ifndef LODEFS_PYJSON_INT_H
#define LODEFS_PYJSON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/pyjson.h"

#define PYJ_BUF_SIZE	  (256u << 10)
#define PYJ_DEPTH_MAX	  4096 /* containers; the reader's stack holds bits */
#define PYJ_JANSSON_DEPTH 2048 /* JSON_PARSER_MAX_DEPTH of jansson 2.14 */
/* Python 3.11's int() refuses longer digit strings (sys.int_info). */
#define PYJ_PY_INT_DIGITS 4300

#if defined(__GNUC__)
#define pyj_likely(x)	__builtin_expect(!!(x), 1)
#define pyj_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define pyj_likely(x)	(x)
#define pyj_unlikely(x) (x)
#endif

static const char pyj_hex[] = "0123456789abcdef";

#define PYJ_ONES  0x0101010101010101ull
#define PYJ_HIGHS 0x8080808080808080ull

/*
 * 1 for the bytes json.dumps writes as themselves: printable ASCII but the
 * quote and the backslash.
 */
static inline bool pyj_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Nonzero if any byte of w is zero (exact as a yes/no answer). */
static inline uint64_t pyj_haszero(uint64_t w)
{
	return (w - PYJ_ONES) & ~w & PYJ_HIGHS;
}

/* Nonzero if a byte of w is not plain (see pyj_plain). */
static inline uint64_t pyj_word_special(uint64_t w)
{
	return (w & PYJ_HIGHS) | ((w - PYJ_ONES * 0x20) & ~w & PYJ_HIGHS) |
	       pyj_haszero(w ^ (PYJ_ONES * '"')) |
	       pyj_haszero(w ^ (PYJ_ONES * '\\')) |
	       pyj_haszero(w ^ (PYJ_ONES * 0x7f));
}

/* The end of the run of plain bytes that starts at p. */
static inline const unsigned char *pyj_plain_run(const unsigned char *p,
						 const unsigned char *end)
{
#ifdef __SSE2__
	/* 16 at a time: a signed byte below 0x20 is a control or >= 0x80 */
	const __m128i sp = _mm_set1_epi8(0x20), qu = _mm_set1_epi8('"');
	const __m128i bs = _mm_set1_epi8('\\'), del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i x = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, sp),
						      _mm_cmpeq_epi8(v, qu)),
					 _mm_or_si128(_mm_cmpeq_epi8(v, bs),
						      _mm_cmpeq_epi8(v, del)));
		unsigned m = (unsigned)_mm_movemask_epi8(x);

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
#else
	uint64_t w;

	while (end - p >= 8) {
		memcpy(&w, p, 8);
		if (pyj_word_special(w))
			break;
		p += 8;
	}
#endif
	while (p < end && pyj_plain(*p))
		p++;
	return p;
}

/*
 * Length of the well-formed UTF-8 sequence at p (2-4), or 0.  With
 * `surrogates`, ED A0..BF xx (a surrogate as WTF-8 holds it) is accepted.
 * *cp gets the code point.
 */
static inline int pyj_utf8_seq(const unsigned char *p, const unsigned char *end,
			       bool surrogates, uint32_t *cp)
{
	unsigned c = p[0];
	size_t avail = (size_t)(end - p);

	if (c >= 0xc2 && c <= 0xdf) {
		if (avail < 2 || (p[1] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x1fu) << 6) | (p[1] & 0x3fu);
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = 0x80, hi = 0xbf;

		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed && !surrogates)
			hi = 0x9f;
		if (avail < 3 || p[1] < lo || p[1] > hi ||
		    (p[2] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) |
		      (p[2] & 0x3fu);
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = 0x80, hi = 0xbf;

		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (avail < 4 || p[1] < lo || p[1] > hi ||
		    (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) |
		      ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu);
		return 4;
	}
	return 0;
}

static inline char *pyj_put_u(char *w, unsigned u)
{
	w[0] = '\\';
	w[1] = 'u';
	w[2] = pyj_hex[(u >> 12) & 15];
	w[3] = pyj_hex[(u >> 8) & 15];
	w[4] = pyj_hex[(u >> 4) & 15];
	w[5] = pyj_hex[u & 15];
	return w + 6;
}

/* A code point as json.dumps escapes it (never a plain byte). */
static inline char *pyj_put_cp(char *w, uint32_t cp)
{
	switch (cp) {
	case '"':
		*w++ = '\\';
		*w++ = '"';
		return w;
	case '\\':
		*w++ = '\\';
		*w++ = '\\';
		return w;
	case '\n':
		*w++ = '\\';
		*w++ = 'n';
		return w;
	case '\r':
		*w++ = '\\';
		*w++ = 'r';
		return w;
	case '\t':
		*w++ = '\\';
		*w++ = 't';
		return w;
	case '\b':
		*w++ = '\\';
		*w++ = 'b';
		return w;
	case '\f':
		*w++ = '\\';
		*w++ = 'f';
		return w;
	}
	if (cp >= 0x20 && cp < 0x7f) {
		*w++ = (char)cp;
		return w;
	}
	if (cp >= 0x10000) {
		cp -= 0x10000;
		w = pyj_put_u(w, 0xd800 | (cp >> 10));
		return pyj_put_u(w, 0xdc00 | (cp & 0x3ff));
	}
	return pyj_put_u(w, cp);
}

/* pyjson.c: makes room for n more bytes (0, or o->err). */
int pyj_room_slow(struct pyj_out *o, size_t n);

static inline int pyj_room(struct pyj_out *o, size_t n)
{
	if (pyj_likely(o->cap - o->len >= n))
		return 0;
	return pyj_room_slow(o, n);
}

/* Bytes written into the buffer after pyj_room: counts them. */
static inline void pyj_put(struct pyj_out *o, size_t n)
{
	o->len += n;
	o->total += n;
}

static inline const char *pyj_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* The special bytes of a string's inside: controls, ", \, and >= 0x80. */
static inline uint64_t pyj_word_str(uint64_t w)
{
	return (w & PYJ_HIGHS) | ((w - PYJ_ONES * 0x20) & ~w & PYJ_HIGHS) |
	       pyj_haszero(w ^ (PYJ_ONES * '"')) |
	       pyj_haszero(w ^ (PYJ_ONES * '\\'));
}

/*
 * The end of the run that starts at p of bytes a string holds as they
 * are: not a control, '"', '\\', nor >= 0x80.
 */
static inline const char *pyj_str_run(const char *p, const char *end)
{
#ifdef __SSE2__
	const __m128i sp = _mm_set1_epi8(0x20), qu = _mm_set1_epi8('"');
	const __m128i bs = _mm_set1_epi8('\\');

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i x = _mm_or_si128(_mm_cmplt_epi8(v, sp),
					 _mm_or_si128(_mm_cmpeq_epi8(v, qu),
						      _mm_cmpeq_epi8(v, bs)));
		unsigned m = (unsigned)_mm_movemask_epi8(x);

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
#else
	while (end - p >= 8) {
		uint64_t x;

		memcpy(&x, p, 8);
		if (pyj_word_str(x))
			break;
		p += 8;
	}
#endif
	while (p < end && (unsigned char)*p >= 0x20 && *p != '"' &&
	       *p != '\\' && (unsigned char)*p < 0x80)
		p++;
	return p;
}

/* pyjson.c: the inside of a string (`surrogates`: s is WTF-8). */
void pyj_str_body(struct pyj_out *o, const unsigned char *s, size_t len,
		  bool surrogates);

/* pyjson_num.c */
const char *pyj_scan_number(const char *p, const char *end, int *is_int);
double pyj_strtod_n(const char *s, size_t len, int *err);

static inline int pyj_hex4(const char *p, uint32_t *v)
{
	uint32_t r = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		r <<= 4;
		if (c >= '0' && c <= '9')
			r |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			r |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			r |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*v = r;
	return 0;
}

/*
 * The escape at p (p[0] == '\\'): its code point (a surrogate pair
 * joined) and the length of its text, or 0 if malformed.  *lone: an
 * unpaired surrogate.
 */
static inline size_t pyj_escape(const char *p, const char *end, uint32_t *cp,
				bool *lone)
{
	uint32_t u, u2;

	*lone = false;
	if (end - p < 2)
		return 0;
	switch (p[1]) {
	case '"':
	case '\\':
	case '/':
		*cp = (unsigned char)p[1];
		return 2;
	case 'b':
		*cp = '\b';
		return 2;
	case 'f':
		*cp = '\f';
		return 2;
	case 'n':
		*cp = '\n';
		return 2;
	case 'r':
		*cp = '\r';
		return 2;
	case 't':
		*cp = '\t';
		return 2;
	case 'u':
		if (end - p < 6 || pyj_hex4(p + 2, &u))
			return 0;
		*cp = u;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (end - p >= 12 && p[6] == '\\' && p[7] == 'u' &&
			    !pyj_hex4(p + 8, &u2) && u2 >= 0xdc00 &&
			    u2 <= 0xdfff) {
				*cp = 0x10000 + ((u - 0xd800) << 10) +
				      (u2 - 0xdc00);
				return 12;
			}
			*lone = true;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			*lone = true;
		}
		return 6;
	}
	return 0;
}

#endif
