/* text.c - UTF-8 validation, character classes, tokeniser and stopwords. */
#include "core/text.h"
#include "core/text_int.h"

#include <string.h>

size_t text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	/* Only the first continuation byte has a narrowed range. */
	if (s[1] < lo || s[1] > hi)
		return 0;
	v = (v << 6) | (s[1] & 0x3f);
	for (i = 2; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	*cp = v;
	return need + 1;
}

int text_is_utf8(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		/* Eight ASCII bytes at a time: no high bit, no zero byte. */
		if (len - i >= 8) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			if (!(w & 0x8080808080808080ull) &&
			    !((w - 0x0101010101010101ull) & ~w &
			      0x8080808080808080ull)) {
				i += 8;
				continue;
			}
		}
		if (s[i] == 0)
			return 0;
		n = text_utf8_decode(s + i, len - i, &cp);
		if (!n)
			return 0;
		i += n;
	}
	return 1;
}

int text_cp_is_space(uint32_t cp)
{
	return cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

int text_cp_is_word(uint32_t cp)
{
	if (cp < 0x80)
		return 0; /* ASCII has its own table */
	if (cp < 0xc0)	  /* Latin-1 punctuation, except ª µ º */
		return cp == 0xaa || cp == 0xb5 || cp == 0xba;
	if (cp == 0xd7 || cp == 0xf7) /* × ÷ */
		return 0;
	if (cp >= 0x2000 && cp <= 0x2bff) /* punctuation, symbols, arrows */
		return 0;
	if (cp >= 0x2e00 && cp <= 0x2e7f) /* supplemental punctuation */
		return 0;
	if (cp >= 0x3000 && cp <= 0x303f) /* CJK symbols and punctuation */
		return 0;
	if (cp >= 0xd800 && cp <= 0xf8ff) /* surrogates, private use */
		return 0;
	if (cp >= 0xfe00 && cp <= 0xfe0f) /* variation selectors */
		return 0;
	if (cp >= 0xfe10 && cp <= 0xfe6f) /* vertical, CJK compat, small */
		return 0;
	if (cp == 0xfeff || (cp >= 0xfff0 && cp <= 0xffff)) /* BOM, specials */
		return 0;
	if (cp >= 0xff00 && cp <= 0xffef) /* fullwidth: keep letters, digits */
		return (cp >= 0xff10 && cp <= 0xff19) ||
		       (cp >= 0xff21 && cp <= 0xff3a) ||
		       (cp >= 0xff41 && cp <= 0xff5a) ||
		       (cp >= 0xff66 && cp <= 0xffdc);
	if (cp >= 0x1f000 && cp <= 0x1faff) /* emoji, game symbols */
		return 0;
	if (cp >= 0xe0000) /* tags, private use planes */
		return 0;
	return 1;
}

/* Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, grouped by length. */
static const char *const text_stop1[] = { "a" };
static const char *const text_stop2[] = { "an", "as", "at", "be", "by",
					  "if", "in", "is", "it", "no",
					  "of", "on", "or", "to" };
static const char *const text_stop3[] = { "and", "are", "but", "for",
					  "not", "the", "was" };
static const char *const text_stop4[] = { "into", "such", "that", "then",
					  "they", "this", "will", "with" };
static const char *const text_stop5[] = { "their", "there", "these" };

int text_is_stopword(const char *word, size_t len)
{
	const char *const *set;
	size_t n, i;

	switch (len) {
	case 1:
		set = text_stop1;
		n = sizeof(text_stop1) / sizeof(*text_stop1);
		break;
	case 2:
		set = text_stop2;
		n = sizeof(text_stop2) / sizeof(*text_stop2);
		break;
	case 3:
		set = text_stop3;
		n = sizeof(text_stop3) / sizeof(*text_stop3);
		break;
	case 4:
		set = text_stop4;
		n = sizeof(text_stop4) / sizeof(*text_stop4);
		break;
	case 5:
		set = text_stop5;
		n = sizeof(text_stop5) / sizeof(*text_stop5);
		break;
	default:
		return 0;
	}
	/* Most words are not stopwords: their first letter rules most out. */
	for (i = 0; i < n; i++)
		if (set[i][0] == word[0] &&
		    memcmp(word + 1, set[i] + 1, len - 1) == 0)
			return 1;
	return 0;
}

/* Hands one finished token to the callback after stopping and stemming. */
static int text_emit(char *tok, size_t len, int ascii_az, unsigned flags,
		     text_token_fn *fn, void *arg)
{
	if ((flags & TEXT_STOP) && text_is_stopword(tok, len))
		return 0;
	if ((flags & TEXT_STEM) && ascii_az)
		len = text_stem(tok, len);
	tok[len] = '\0';
	return fn(arg, tok, len);
}

static inline int text_emit_raw(char *tok, size_t len, int az, text_raw_fn *fn,
				void *arg)
{
	tok[len] = '\0';
	return fn(arg, tok, len, az);
}

/*
 * The tokeniser of both: each token goes to fn after `flags`, or with raw
 * set, as it was found (lowercased, not stopped or stemmed) to raw_fn,
 * which is told whether it is made of a-z only.
 */
static inline int text_scan(const char *text, size_t len, unsigned flags,
			    text_token_fn *fn, text_raw_fn *raw_fn, void *arg)
{
	const unsigned char *s = (const unsigned char *)text;
	char tok[TEXT_TOKEN_MAX + 1];
	size_t i = 0, n = 0, step;
	int az = 1, full = 0, word, rc;
	uint32_t cp;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x80) {
			/* c | 0x20 lowercases a letter (and spoils others) */
			int letter = (unsigned)((c | 0x20) - 'a') < 26;
			int digit = (unsigned)(c - '0') < 10;

			step = 1;
			if (letter)
				c |= 0x20;
			word = letter | digit;
			az &= !digit;
		} else {
			step = text_utf8_decode(s + i, len - i, &cp);
			word = step && text_cp_is_word(cp);
			if (!step)
				step = 1;
			az &= !word;
		}
		if (word) {
			/* A long word keeps its first TEXT_TOKEN_MAX bytes. */
			full |= n + step > TEXT_TOKEN_MAX;
			if (!full) {
				if (step == 1)
					tok[n] = (char)c;
				else
					memcpy(tok + n, s + i, step);
				n += step;
			}
		} else if (n) {
			rc = raw_fn ? text_emit_raw(tok, n, az, raw_fn, arg)
				    : text_emit(tok, n, az, flags, fn, arg);
			if (rc)
				return rc;
			n = 0;
			az = 1;
			full = 0;
		}
		i += step;
	}
	if (n)
		return raw_fn ? text_emit_raw(tok, n, az, raw_fn, arg)
			      : text_emit(tok, n, az, flags, fn, arg);
	return 0;
}

int text_tokenize(const char *text, size_t len, unsigned flags,
		  text_token_fn *fn, void *arg)
{
	return text_scan(text, len, flags, fn, NULL, arg);
}

int text_tokenize_raw(const char *text, size_t len, text_raw_fn *fn, void *arg)
{
	return text_scan(text, len, 0, NULL, fn, arg);
}
