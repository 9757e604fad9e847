/* text_split.c - approximate token counting and the sentence splitter. */
#include "core/text.h"
#include "core/text_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- token counting ------------------------------------------------------ */

enum text_class {
	TEXT_C_PUNCT = 0, /* also controls, symbols and invalid bytes */
	TEXT_C_LETTER,
	TEXT_C_DIGIT,
	TEXT_C_SPACE,
};

/* ASCII letters per cl100k-ish token in our approximation. */
#define TEXT_LETTERS_PER_TOKEN 6

/* Classifies the character at s; *step gets its length in bytes. */
static enum text_class text_class_at(const unsigned char *s, size_t n,
				     size_t *step)
{
	unsigned char c = s[0];
	uint32_t cp;

	if (c < 0x80) {
		*step = 1;
		if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			return TEXT_C_LETTER;
		if (c >= '0' && c <= '9')
			return TEXT_C_DIGIT;
		if (c == ' ' || (c >= '\t' && c <= '\r'))
			return TEXT_C_SPACE;
		return TEXT_C_PUNCT;
	}
	*step = text_utf8_decode(s, n, &cp);
	if (!*step) {
		*step = 1;
		return TEXT_C_PUNCT;
	}
	if (text_cp_is_space(cp))
		return TEXT_C_SPACE;
	return text_cp_is_word(cp) ? TEXT_C_LETTER : TEXT_C_PUNCT;
}

size_t text_count_tokens(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, tokens = 0, step;

	while (i < len) {
		enum text_class k = text_class_at(s + i, len - i, &step);
		size_t ascii = 0, chars = 0, last = i;

		switch (k) {
		case TEXT_C_LETTER:
			/* ceil(ASCII letters / 6) + one per other letter */
			while (i < len && k == TEXT_C_LETTER) {
				if (step == 1)
					ascii++;
				else
					tokens++;
				i += step;
				if (i < len)
					k = text_class_at(s + i, len - i,
							  &step);
			}
			tokens += (ascii + TEXT_LETTERS_PER_TOKEN - 1) /
				  TEXT_LETTERS_PER_TOKEN;
			break;
		case TEXT_C_DIGIT:
			while (i < len && s[i] >= '0' && s[i] <= '9') {
				chars++;
				i++;
			}
			tokens += (chars + 2) / 3;
			break;
		case TEXT_C_SPACE:
			while (i < len && k == TEXT_C_SPACE) {
				chars++;
				last = i;
				i += step;
				if (i < len)
					k = text_class_at(s + i, len - i,
							  &step);
			}
			/* " word" and " (" are one token in cl100k. */
			if (i < len && s[last] == ' ' &&
			    (k == TEXT_C_LETTER || k == TEXT_C_PUNCT))
				tokens += chars > 1;
			else
				tokens++;
			break;
		default:
			tokens++;
			i += step;
			break;
		}
	}
	return tokens;
}

/* --- splitting into pieces ----------------------------------------------- */

/*
 * A piece of the text.  Pieces are contiguous and cover the text, so a
 * piece ends where the next begins (the last one at the end of the text).
 */
struct text_piece {
	size_t start;
	size_t tokens;
};

struct text_pieces {
	struct text_piece *v;
	size_t n, cap;
};

/* Cut points inside [s, e), strictly increasing, excluding s itself. */
struct text_cuts {
	size_t *v;
	size_t n, cap;
};

static int text_cuts_add(struct text_cuts *c, size_t at)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		size_t *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = at;
	return 0;
}

static int text_pieces_add(struct text_pieces *p, size_t start, size_t tokens)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct text_piece *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n].start = start;
	p->v[p->n].tokens = tokens;
	p->n++;
	return 0;
}

/* Python's "text".split(sep), each part after the first keeping sep. */
static int text_cut_sep(const char *t, size_t s, size_t e, const char *sep,
			struct text_cuts *c)
{
	size_t l = strlen(sep), i = s;
	int rc;

	while (i + l <= e) {
		const char *hit = memchr(t + i, sep[0], e - i - l + 1);

		if (!hit)
			break;
		i = (size_t)(hit - t);
		if (memcmp(hit, sep, l) == 0) {
			if (i > s && (rc = text_cuts_add(c, i)))
				return rc;
			i += l;
		} else {
			i++;
		}
	}
	return 0;
}

/* Whether the bytes at t[i..e) start 。 ！ or ？; returns their length. */
static size_t text_cjk_stop(const unsigned char *t, size_t i, size_t e)
{
	if (e - i < 3)
		return 0;
	if (t[i] == 0xe3 && t[i + 1] == 0x80 && t[i + 2] == 0x82) /* 。 */
		return 3;
	if (t[i] == 0xef && t[i + 1] == 0xbc &&
	    (t[i + 2] == 0x81 || t[i + 2] == 0x9f)) /* ！ ？ */
		return 3;
	return 0;
}

/* The abbreviations after which a single '.' does not end a sentence. */
static int text_is_abbrev(const char *w, size_t n)
{
	static const char *const abbr[] = {
		"mr",	"mrs",	"ms",  "dr",	 "prof", "sr",	"jr",	"st",
		"vs",	"etc",	"fig", "figs",	 "eq",	 "eqs", "no",	"nos",
		"vol",	"pp",	"al",  "approx", "dept", "inc", "ltd",	"co",
		"corp", "jan",	"feb", "mar",	 "apr",	 "jun", "jul",	"aug",
		"sep",	"sept", "oct", "nov",	 "dec",	 "ref", "refs", "cf",
	};
	char low[8];
	size_t i;

	if (n == 0 || n >= sizeof(low))
		return 0;
	for (i = 0; i < n; i++)
		low[i] = (char)(w[i] | 0x20);
	for (i = 0; i < sizeof(abbr) / sizeof(*abbr); i++)
		if (strlen(abbr[i]) == n && memcmp(low, abbr[i], n) == 0)
			return 1;
	return 0;
}

/*
 * Whether the '.' at t[dot] follows an initial ("J."), a dotted
 * abbreviation ("e.g.") or a word from the list above.
 */
static int text_after_abbrev(const char *t, size_t s, size_t dot)
{
	size_t b = dot;

	while (b > s && ((t[b - 1] | 0x20) >= 'a' && (t[b - 1] | 0x20) <= 'z'))
		b--;
	if (b == dot)
		return 0;
	if (dot - b == 1 || (b > s && t[b - 1] == '.'))
		return 1;
	return text_is_abbrev(t + b, dot - b);
}

/*
 * A stand-in for NLTK's Punkt: a sentence ends after a run of . ! ? (or
 * one of 。 ！ ？) and any closing quotes or brackets, when whitespace
 * follows (not needed after the CJK marks); the next sentence starts at
 * the next non-space character, so the whitespace stays with the sentence
 * before, as LlamaIndex's span-based split does.
 */
static int text_cut_sentences(const char *text, size_t s, size_t e,
			      struct text_cuts *c)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t i = s, j, cjk;
	int rc;

	while (i < e) {
		unsigned char ch = t[i];

		cjk = text_cjk_stop(t, i, e);
		if (ch != '.' && ch != '!' && ch != '?' && !cjk) {
			i++;
			continue;
		}
		j = i + (cjk ? cjk : 1);
		while (!cjk && j < e &&
		       (t[j] == '.' || t[j] == '!' || t[j] == '?'))
			j++;
		if (!cjk && ch == '.' && j == i + 1 &&
		    text_after_abbrev(text, s, i)) {
			i = j;
			continue;
		}
		while (j < e && (t[j] == '"' || t[j] == '\'' || t[j] == ')' ||
				 t[j] == ']' || t[j] == '}'))
			j++;
		if (!cjk && (j >= e || !text_ascii_is_space(t[j]))) {
			i = j;
			continue;
		}
		while (j < e && text_ascii_is_space(t[j]))
			j++;
		if (j < e && (rc = text_cuts_add(c, j)))
			return rc;
		i = j;
	}
	return 0;
}

/* The length of a secondary-regex punctuation mark at t[i], else 0. */
static size_t text_phrase_mark(const unsigned char *t, size_t i, size_t e)
{
	if (t[i] == ',' || t[i] == '.' || t[i] == ';')
		return 1;
	return text_cjk_stop(t, i, e);
}

/* re.findall("[^,.;。？！]+[,.;。？！]?|[,.;。？！]", text) as cuts. */
static int text_cut_phrases(const char *text, size_t s, size_t e,
			    struct text_cuts *c)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t i = s, m, step;
	uint32_t cp;
	int rc;

	while (i < e) {
		m = text_phrase_mark(t, i, e);
		if (!m) {
			while (i < e && !(m = text_phrase_mark(t, i, e))) {
				step = text_utf8_decode(t + i, e - i, &cp);
				i += step ? step : 1;
			}
			if (m)
				i += m;
		} else {
			i += m;
		}
		if (i < e && (rc = text_cuts_add(c, i)))
			return rc;
	}
	return 0;
}

/* Every character on its own; invalid bytes one at a time. */
static int text_cut_chars(const char *text, size_t s, size_t e,
			  struct text_cuts *c)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t i = s, step;
	uint32_t cp;
	int rc;

	while (i < e) {
		step = text_utf8_decode(t + i, e - i, &cp);
		i += step ? step : 1;
		if (i < e && (rc = text_cuts_add(c, i)))
			return rc;
	}
	return 0;
}

/*
 * SentenceSplitter._get_splits_by_fns: the first of paragraphs, sentences,
 * phrases, words and characters that cuts the piece.  (LlamaIndex also
 * marks which pieces are sentences, but its _merge never ends up reading
 * the mark, so we do not keep it.)
 */
static int text_cut_any(const char *t, size_t s, size_t e, struct text_cuts *c)
{
	int rc;

	c->n = 0;
	if ((rc = text_cut_sep(t, s, e, "\n\n\n", c)) || c->n)
		return rc;
	if ((rc = text_cut_sentences(t, s, e, c)) || c->n)
		return rc;
	if ((rc = text_cut_phrases(t, s, e, c)) || c->n)
		return rc;
	if ((rc = text_cut_sep(t, s, e, " ", c)) || c->n)
		return rc;
	return text_cut_chars(t, s, e, c);
}

/* SentenceSplitter._split: pieces of [s, e) of at most size tokens. */
static int text_split_rec(const char *t, size_t s, size_t e, size_t size,
			  struct text_pieces *out)
{
	struct text_cuts c = { 0 };
	size_t tokens = text_count_tokens(t + s, e - s), i, a, b;
	int rc;

	if (tokens <= size)
		return text_pieces_add(out, s, tokens);
	rc = text_cut_any(t, s, e, &c);
	if (rc)
		goto out;
	if (!c.n) {
		/* Cannot happen with our counts (a character is one token);
		 * keep the piece whole rather than loop. */
		rc = text_pieces_add(out, s, tokens);
		goto out;
	}
	for (i = 0; i <= c.n && !rc; i++) {
		a = i ? c.v[i - 1] : s;
		b = i < c.n ? c.v[i] : e;
		rc = text_split_rec(t, a, b, size, out);
	}
out:
	free(c.v);
	return rc;
}

/* --- merging pieces into chunks ------------------------------------------ */

struct text_range {
	size_t start, end;
};

struct text_ranges {
	struct text_range *v;
	size_t n, cap;
};

/*
 * Strips whitespace off [s, e) and records it unless nothing is left or it
 * adds nothing to the chunk before.
 */
static int text_ranges_add(struct text_ranges *r, const char *text, size_t s,
			   size_t e)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t step, b;
	uint32_t cp;

	while (s < e) {
		if (t[s] < 0x80 && text_ascii_is_space(t[s])) {
			s++;
			continue;
		}
		step = text_utf8_decode(t + s, e - s, &cp);
		if (!step || cp < 0x80 || !text_cp_is_space(cp))
			break;
		s += step;
	}
	while (e > s) {
		if (t[e - 1] < 0x80) {
			if (!text_ascii_is_space(t[e - 1]))
				break;
			e--;
			continue;
		}
		/* Find the start of the sequence ending at e - 1. */
		b = e - 1;
		while (b > s && e - b < 4 && (t[b] & 0xc0) == 0x80)
			b--;
		step = text_utf8_decode(t + b, e - b, &cp);
		if (step != e - b || !text_cp_is_space(cp))
			break;
		e = b;
	}
	if (s == e)
		return 0;
	/*
	 * Starts never go back, but stripping can make a chunk whose new
	 * pieces were only whitespace lie inside the one before, or make the
	 * one before a prefix of this one.  Keep only the larger.
	 */
	if (r->n && e <= r->v[r->n - 1].end)
		return 0;
	if (r->n && s == r->v[r->n - 1].start) {
		r->v[r->n - 1].end = e;
		return 0;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct text_range *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].start = s;
	r->v[r->n].end = e;
	r->n++;
	return 0;
}

/*
 * SentenceSplitter._merge over pieces p[0..n), the text ending at len.  A
 * chunk is always a run of consecutive pieces [lo, i), which is what makes
 * it a substring of the input.
 */
static int text_merge(const char *text, size_t len, const struct text_pieces *p,
		      size_t size, size_t overlap, struct text_ranges *out)
{
	size_t lo = 0, i = 0, cur = 0, j, ov;
	int fresh = 1, rc;

#define TEXT_PIECE_END(k) ((k) + 1 < p->n ? p->v[(k) + 1].start : len)
	while (i < p->n) {
		size_t t = p->v[i].tokens;

		if (cur + t > size && !fresh) {
			rc = text_ranges_add(out, text, p->v[lo].start,
					     TEXT_PIECE_END(i - 1));
			if (rc)
				return rc;
			/* Carry the trailing pieces that fit in overlap. */
			ov = 0;
			for (j = i;
			     j > lo && ov + p->v[j - 1].tokens <= overlap; j--)
				ov += p->v[j - 1].tokens;
			lo = j;
			cur = ov;
			fresh = 1;
			continue;
		}
		/* Unlike LlamaIndex, drop overlap rather than overshoot. */
		while (cur + t > size && lo < i)
			cur -= p->v[lo++].tokens;
		cur += t;
		i++;
		fresh = 0;
	}
	if (!fresh)
		return text_ranges_add(out, text, p->v[lo].start, len);
#undef TEXT_PIECE_END
	return 0;
}

/* Counts code points from *pos to `to`, advancing the cursor there. */
static size_t text_cp_advance(const char *text, size_t *pos, size_t *cps,
			      size_t to)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t step;
	uint32_t cp;

	if (to < *pos) {
		*pos = 0;
		*cps = 0;
	}
	while (*pos < to) {
		step = text_utf8_decode(t + *pos, to - *pos, &cp);
		*pos += step ? step : 1;
		(*cps)++;
	}
	return *cps;
}

int text_split(const char *text, size_t len, size_t chunk_size,
	       size_t chunk_overlap, struct text_chunk **chunks, size_t *n)
{
	struct text_pieces p = { 0 };
	struct text_ranges r = { 0 };
	struct text_chunk *out = NULL;
	size_t i, bytes, spos = 0, scp = 0, epos = 0, ecp = 0;
	char *buf;
	int rc;

	*chunks = NULL;
	*n = 0;
	if (!chunk_size || chunk_overlap > chunk_size || (!text && len))
		return -EINVAL;
	if (!len)
		return 0;
	rc = text_split_rec(text, 0, len, chunk_size, &p);
	if (!rc)
		rc = text_merge(text, len, &p, chunk_size, chunk_overlap, &r);
	if (rc || !r.n)
		goto out;
	bytes = r.n * sizeof(*out);
	for (i = 0; i < r.n; i++)
		bytes += r.v[i].end - r.v[i].start + 1;
	out = malloc(bytes);
	if (!out) {
		rc = -ENOMEM;
		goto out;
	}
	buf = (char *)(out + r.n);
	for (i = 0; i < r.n; i++) {
		size_t s = r.v[i].start, e = r.v[i].end;

		out[i].start = s;
		out[i].end = e;
		out[i].start_char = text_cp_advance(text, &spos, &scp, s);
		out[i].end_char = text_cp_advance(text, &epos, &ecp, e);
		out[i].tokens = text_count_tokens(text + s, e - s);
		memcpy(buf, text + s, e - s);
		buf[e - s] = '\0';
		out[i].text = buf;
		buf += e - s + 1;
	}
	*chunks = out;
	*n = r.n;
out:
	free(p.v);
	free(r.v);
	return rc;
}

void text_chunks_free(struct text_chunk *chunks, size_t n)
{
	(void)n;
	free(chunks);
}
