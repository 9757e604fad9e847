/* text_stem.c - the Porter2 (Snowball English) stemmer. */
#include "core/text.h"

#include <stdint.h>
#include <string.h>

/*
 * Written from the algorithm's published description.  The word lives in
 * w[0..len); a 'y' that acts as a consonant is upper-cased to 'Y' for the
 * duration, as the description does.  R1 and R2 are kept as the offsets
 * p1 and p2 where they start; "suffix in R1" means its start is >= p1.
 */
struct text_stemmer {
	char *w;
	size_t len;
	size_t p1, p2;
};

/* Bit c - 'a' of a mask of lowercase letters. */
#define TEXT_STEM_BIT(c) (1u << ((c) - 'a'))

static int text_stem_vowel(char c)
{
	const uint32_t vowels = TEXT_STEM_BIT('a') | TEXT_STEM_BIT('e') |
				TEXT_STEM_BIT('i') | TEXT_STEM_BIT('o') |
				TEXT_STEM_BIT('u') | TEXT_STEM_BIT('y');

	return (unsigned)(c - 'a') < 26 && (vowels >> (c - 'a') & 1);
}

/* memcmp(a, b, n) == 0 for the few bytes of a suffix, without a call. */
static int text_stem_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* Whether w ends with sfx[0..n); the last letter is checked first. */
static int text_stem_ends_n(const struct text_stemmer *st, const char *sfx,
			    size_t n)
{
	return n <= st->len && st->w[st->len - 1] == sfx[n - 1] &&
	       text_stem_eq(st->w + st->len - n, sfx, n - 1);
}

#define text_stem_ends(st, lit) text_stem_ends_n(st, lit, sizeof(lit) - 1)

/* Replaces the last `cut` letters with rep[0..n). */
static void text_stem_set_n(struct text_stemmer *st, size_t cut,
			    const char *rep, size_t n)
{
	memcpy(st->w + st->len - cut, rep, n);
	st->len = st->len - cut + n;
}

#define text_stem_set(st, cut, lit) \
	text_stem_set_n(st, cut, lit, sizeof(lit) - 1)

/*
 * Whether w[0..end) ends in a short syllable: non-vowel, vowel, non-vowel
 * other than w, x or Y; or, for a two-letter word, vowel then non-vowel.
 */
static int text_stem_shortv(const struct text_stemmer *st, size_t end)
{
	const char *w = st->w;

	if (end == 2)
		return text_stem_vowel(w[0]) && !text_stem_vowel(w[1]);
	if (end < 3)
		return 0;
	return !text_stem_vowel(w[end - 3]) && text_stem_vowel(w[end - 2]) &&
	       !text_stem_vowel(w[end - 1]) && w[end - 1] != 'w' &&
	       w[end - 1] != 'x' && w[end - 1] != 'Y';
}

/* A word is short if it ends in a short syllable and R1 is empty. */
static int text_stem_is_short(const struct text_stemmer *st)
{
	return st->p1 >= st->len && text_stem_shortv(st, st->len);
}

/* The offset after the first non-vowel that follows a vowel, from `from`. */
static size_t text_stem_region(const struct text_stemmer *st, size_t from)
{
	size_t i;

	for (i = from; i + 1 < st->len; i++)
		if (text_stem_vowel(st->w[i]) && !text_stem_vowel(st->w[i + 1]))
			return i + 2;
	return st->len;
}

/* Marks consonant y's as Y, if the word has a y, and finds R1 and R2. */
static void text_stem_prelude(struct text_stemmer *st, int y)
{
	size_t i;

	if (y && st->w[0] == 'y')
		st->w[0] = 'Y';
	for (i = 1; y && i < st->len; i++)
		if (st->w[i] == 'y' && text_stem_vowel(st->w[i - 1]))
			st->w[i] = 'Y';
	if (st->len >= 5 &&
	    (memcmp(st->w, "gener", 5) == 0 || memcmp(st->w, "arsen", 5) == 0))
		st->p1 = 5;
	else if (st->len >= 6 && memcmp(st->w, "commun", 6) == 0)
		st->p1 = 6;
	else
		st->p1 = text_stem_region(st, 0);
	st->p2 = text_stem_region(st, st->p1);
	if (st->p1 > st->len)
		st->p1 = st->len;
}

/*
 * A rule table: the longest suffix that matches wins, and only it; if its
 * condition fails the step does nothing (Snowball's among semantics).
 * Suffixes and replacements live in the rule, so that matching reads one
 * small array.
 */
struct text_stem_rule {
	char sfx[8];
	char rep[5]; /* "": delete */
	char cond;   /* 0 none, 'l' preceded by l, 'L' valid li-ending,
			'2' suffix in R2, 't' preceded by s or t */
	unsigned char sfx_len, rep_len;
};

#define TEXT_STEM_RULE(s, r, c)                       \
	{                                             \
		s, r, c, sizeof(s) - 1, sizeof(r) - 1 \
	}

/*
 * The rules of a step by the last letter of their suffix, so that a word
 * is compared with the few rules that can match it: most words, which end
 * otherwise, with none.
 */
struct text_stem_rules {
	const struct text_stem_rule *r;
	size_t n;
};

struct text_stem_step {
	struct text_stem_rules by_last[26];
};

#define TEXT_STEM_RULES(c, tab) \
	[(c) - 'a'] = { tab, sizeof(tab) / sizeof(*(tab)) }

/* Finds the longest matching rule of the step; NULL if none. */
static const struct text_stem_rule *
text_stem_match(const struct text_stemmer *st, const struct text_stem_step *s)
{
	const struct text_stem_rule *best = NULL, *r;
	char c = st->w[st->len - 1];
	size_t i, n, bl = 0;

	if ((unsigned)(c - 'a') >= 26)
		return NULL;
	r = s->by_last[c - 'a'].r;
	n = s->by_last[c - 'a'].n;
	/* Their suffixes all end in c: compare the letters before it. */
	for (i = 0; i < n; i++) {
		size_t l = r[i].sfx_len;

		if (l > bl && l <= st->len &&
		    text_stem_eq(st->w + st->len - l, r[i].sfx, l - 1)) {
			best = &r[i];
			bl = l;
		}
	}
	return best;
}

/* Applies the longest matching rule if its suffix starts at or after min. */
static void text_stem_apply(struct text_stemmer *st,
			    const struct text_stem_step *s, size_t min)
{
	const struct text_stem_rule *m = text_stem_match(st, s);
	size_t l, at;
	char prev;

	if (!m)
		return;
	l = m->sfx_len;
	at = st->len - l;
	if (at < min)
		return;
	prev = at > 0 ? st->w[at - 1] : '\0';
	switch (m->cond) {
	case 'l':
		if (prev != 'l')
			return;
		break;
	case 'L':
		if (!prev || !strchr("cdeghkmnrt", prev))
			return;
		break;
	case '2':
		if (at < st->p2)
			return;
		break;
	case 't':
		if (prev != 's' && prev != 't')
			return;
		break;
	default:
		break;
	}
	text_stem_set_n(st, l, m->rep, m->rep_len);
}

static void text_stem_1a(struct text_stemmer *st)
{
	size_t i;

	if (text_stem_ends(st, "sses")) {
		text_stem_set(st, 4, "ss");
	} else if (text_stem_ends(st, "ied") || text_stem_ends(st, "ies")) {
		if (st->len > 4)
			text_stem_set(st, 3, "i");
		else
			text_stem_set(st, 3, "ie");
	} else if (text_stem_ends(st, "us") || text_stem_ends(st, "ss")) {
		return;
	} else if (text_stem_ends(st, "s")) {
		/* Delete if a vowel comes before the letter before the s. */
		for (i = 0; i + 2 < st->len; i++) {
			if (text_stem_vowel(st->w[i])) {
				st->len--;
				return;
			}
		}
	}
}

static int text_stem_exception2(const struct text_stemmer *st)
{
	static const char inv[][8] = { "inning",  "outing",  "canning",
				       "herring", "earring", "proceed",
				       "exceed",  "succeed" };
	size_t i;

	if (st->len < 6 || st->len > 7)
		return 0;
	for (i = 0; i < sizeof(inv) / sizeof(*inv); i++)
		if (inv[i][0] == st->w[0] && inv[i][st->len] == '\0' &&
		    memcmp(st->w, inv[i], st->len) == 0)
			return 1;
	return 0;
}

static void text_stem_1b(struct text_stemmer *st)
{
	size_t j, l = 0;
	int vowel = 0;

	if (text_stem_ends(st, "eedly") || text_stem_ends(st, "eed")) {
		l = text_stem_ends(st, "eedly") ? 5 : 3;
		if (st->len - l >= st->p1)
			text_stem_set(st, l, "ee");
		return;
	}
	if (text_stem_ends(st, "ingly"))
		l = 5;
	else if (text_stem_ends(st, "edly"))
		l = 4;
	else if (text_stem_ends(st, "ing"))
		l = 3;
	else if (text_stem_ends(st, "ed"))
		l = 2;
	else
		return;
	for (j = 0; j + l < st->len && !vowel; j++)
		vowel = text_stem_vowel(st->w[j]);
	if (!vowel)
		return;
	st->len -= l;
	if (text_stem_ends(st, "at") || text_stem_ends(st, "bl") ||
	    text_stem_ends(st, "iz")) {
		text_stem_set(st, 0, "e");
	} else if (st->len >= 2 && st->w[st->len - 1] == st->w[st->len - 2] &&
		   strchr("bdfgmnprt", st->w[st->len - 1])) {
		st->len--;
	} else if (text_stem_is_short(st)) {
		text_stem_set(st, 0, "e");
	}
}

static void text_stem_1c(struct text_stemmer *st)
{
	char c;

	if (st->len < 3)
		return;
	c = st->w[st->len - 1];
	if ((c == 'y' || c == 'Y') && !text_stem_vowel(st->w[st->len - 2]))
		st->w[st->len - 1] = 'i';
}

/* Step 2, by last letter. */
static const struct text_stem_rule text_stem_2i[] = {
	TEXT_STEM_RULE("enci", "ence", 0),   TEXT_STEM_RULE("anci", "ance", 0),
	TEXT_STEM_RULE("abli", "able", 0),   TEXT_STEM_RULE("entli", "ent", 0),
	TEXT_STEM_RULE("aliti", "al", 0),    TEXT_STEM_RULE("alli", "al", 0),
	TEXT_STEM_RULE("ousli", "ous", 0),   TEXT_STEM_RULE("iviti", "ive", 0),
	TEXT_STEM_RULE("biliti", "ble", 0),  TEXT_STEM_RULE("bli", "ble", 0),
	TEXT_STEM_RULE("ogi", "og", 'l'),    TEXT_STEM_RULE("fulli", "ful", 0),
	TEXT_STEM_RULE("lessli", "less", 0), TEXT_STEM_RULE("li", "", 'L'),
};
static const struct text_stem_rule text_stem_2l[] = {
	TEXT_STEM_RULE("tional", "tion", 0),
	TEXT_STEM_RULE("ational", "ate", 0),
};
static const struct text_stem_rule text_stem_2m[] = {
	TEXT_STEM_RULE("alism", "al", 0),
};
static const struct text_stem_rule text_stem_2n[] = {
	TEXT_STEM_RULE("ization", "ize", 0),
	TEXT_STEM_RULE("ation", "ate", 0),
};
static const struct text_stem_rule text_stem_2r[] = {
	TEXT_STEM_RULE("izer", "ize", 0),
	TEXT_STEM_RULE("ator", "ate", 0),
};
static const struct text_stem_rule text_stem_2s[] = {
	TEXT_STEM_RULE("fulness", "ful", 0),
	TEXT_STEM_RULE("ousness", "ous", 0),
	TEXT_STEM_RULE("iveness", "ive", 0),
};

static const struct text_stem_step text_stem_2 = { {
	TEXT_STEM_RULES('i', text_stem_2i),
	TEXT_STEM_RULES('l', text_stem_2l),
	TEXT_STEM_RULES('m', text_stem_2m),
	TEXT_STEM_RULES('n', text_stem_2n),
	TEXT_STEM_RULES('r', text_stem_2r),
	TEXT_STEM_RULES('s', text_stem_2s),
} };

/* Step 3, by last letter. */
static const struct text_stem_rule text_stem_3e[] = {
	TEXT_STEM_RULE("alize", "al", 0),
	TEXT_STEM_RULE("icate", "ic", 0),
	TEXT_STEM_RULE("ative", "", '2'),
};
static const struct text_stem_rule text_stem_3i[] = {
	TEXT_STEM_RULE("iciti", "ic", 0),
};
static const struct text_stem_rule text_stem_3l[] = {
	TEXT_STEM_RULE("tional", "tion", 0),
	TEXT_STEM_RULE("ational", "ate", 0),
	TEXT_STEM_RULE("ical", "ic", 0),
	TEXT_STEM_RULE("ful", "", 0),
};
static const struct text_stem_rule text_stem_3s[] = {
	TEXT_STEM_RULE("ness", "", 0),
};

static const struct text_stem_step text_stem_3 = { {
	TEXT_STEM_RULES('e', text_stem_3e),
	TEXT_STEM_RULES('i', text_stem_3i),
	TEXT_STEM_RULES('l', text_stem_3l),
	TEXT_STEM_RULES('s', text_stem_3s),
} };

/* Step 4, by last letter. */
static const struct text_stem_rule text_stem_4c[] = {
	TEXT_STEM_RULE("ic", "", 0),
};
static const struct text_stem_rule text_stem_4e[] = {
	TEXT_STEM_RULE("ance", "", 0), TEXT_STEM_RULE("ence", "", 0),
	TEXT_STEM_RULE("able", "", 0), TEXT_STEM_RULE("ible", "", 0),
	TEXT_STEM_RULE("ate", "", 0),  TEXT_STEM_RULE("ive", "", 0),
	TEXT_STEM_RULE("ize", "", 0),
};
static const struct text_stem_rule text_stem_4i[] = {
	TEXT_STEM_RULE("iti", "", 0),
};
static const struct text_stem_rule text_stem_4l[] = {
	TEXT_STEM_RULE("al", "", 0),
};
static const struct text_stem_rule text_stem_4m[] = {
	TEXT_STEM_RULE("ism", "", 0),
};
static const struct text_stem_rule text_stem_4n[] = {
	TEXT_STEM_RULE("ion", "", 't'),
};
static const struct text_stem_rule text_stem_4r[] = {
	TEXT_STEM_RULE("er", "", 0),
};
static const struct text_stem_rule text_stem_4s[] = {
	TEXT_STEM_RULE("ous", "", 0),
};
static const struct text_stem_rule text_stem_4t[] = {
	TEXT_STEM_RULE("ant", "", 0),
	TEXT_STEM_RULE("ement", "", 0),
	TEXT_STEM_RULE("ment", "", 0),
	TEXT_STEM_RULE("ent", "", 0),
};

static const struct text_stem_step text_stem_4 = { {
	TEXT_STEM_RULES('c', text_stem_4c),
	TEXT_STEM_RULES('e', text_stem_4e),
	TEXT_STEM_RULES('i', text_stem_4i),
	TEXT_STEM_RULES('l', text_stem_4l),
	TEXT_STEM_RULES('m', text_stem_4m),
	TEXT_STEM_RULES('n', text_stem_4n),
	TEXT_STEM_RULES('r', text_stem_4r),
	TEXT_STEM_RULES('s', text_stem_4s),
	TEXT_STEM_RULES('t', text_stem_4t),
} };

static void text_stem_5(struct text_stemmer *st)
{
	size_t at = st->len - 1;

	if (st->w[at] == 'e') {
		if (at >= st->p2 || (at >= st->p1 && !text_stem_shortv(st, at)))
			st->len--;
	} else if (st->w[at] == 'l') {
		if (at >= st->p2 && at > 0 && st->w[at - 1] == 'l')
			st->len--;
	}
}

/*
 * The exceptional forms, checked on the whole word before anything else,
 * by length: those of n letters are text_stem_exc1[text_stem_exc1_at[n -
 * 3] .. text_stem_exc1_at[n - 2]).  All end in e, g, s or y.
 */
static const char text_stem_exc1[][2][8] = {
	{ "sky", "sky" },      { "skis", "ski" },     { "idly", "idl" },
	{ "ugly", "ugli" },    { "only", "onli" },    { "news", "news" },
	{ "howe", "howe" },    { "bias", "bias" },    { "skies", "sky" },
	{ "dying", "die" },    { "lying", "lie" },    { "tying", "tie" },
	{ "early", "earli" },  { "atlas", "atlas" },  { "andes", "andes" },
	{ "gently", "gentl" }, { "singly", "singl" }, { "cosmos", "cosmos" },
};

static const unsigned char text_stem_exc1_at[] = { 0, 1, 8, 15, 18 };

#define TEXT_STEM_EXC1_LAST                                             \
	(TEXT_STEM_BIT('e') | TEXT_STEM_BIT('g') | TEXT_STEM_BIT('s') | \
	 TEXT_STEM_BIT('y'))

/* The stem of an exceptional form, or NULL. */
static const char *text_stem_exception1(const char *word, size_t len)
{
	size_t i;

	if (len < 3 || len > 6 ||
	    !(TEXT_STEM_EXC1_LAST >> (word[len - 1] - 'a') & 1))
		return NULL;
	for (i = text_stem_exc1_at[len - 3]; i < text_stem_exc1_at[len - 2];
	     i++)
		if (memcmp(word, text_stem_exc1[i][0], len) == 0)
			return text_stem_exc1[i][1];
	return NULL;
}

size_t text_stem(char *word, size_t len)
{
	struct text_stemmer st = { .w = word, .len = len };
	const char *exc;
	size_t i;
	int y = 0;

	for (i = 0; i < len; i++) {
		if (word[i] < 'a' || word[i] > 'z')
			return len;
		y |= word[i] == 'y';
	}
	exc = text_stem_exception1(word, len);
	if (exc) {
		memcpy(word, exc, strlen(exc));
		return strlen(exc);
	}
	if (len < 3)
		return len;
	text_stem_prelude(&st, y);
	text_stem_1a(&st);
	if (!text_stem_exception2(&st)) {
		text_stem_1b(&st);
		text_stem_1c(&st);
		text_stem_apply(&st, &text_stem_2, st.p1);
		text_stem_apply(&st, &text_stem_3, st.p1);
		text_stem_apply(&st, &text_stem_4, st.p2);
		if (st.len > 0)
			text_stem_5(&st);
	}
	/* Only the prelude makes a Y, of a y. */
	for (i = 0; y && i < st.len; i++)
		if (word[i] == 'Y')
			word[i] = 'y';
	return st.len;
}
