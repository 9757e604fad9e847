/* text_stem.c - the Porter2 (Snowball English) stemmer. */
#include "core/text.h"

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

static int text_stem_vowel(char c)
{
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' ||
	       c == 'y';
}

/* Whether w ends with sfx[0..n); the last letter is checked first. */
static int text_stem_ends_n(const struct text_stemmer *st, const char *sfx,
			    size_t n)
{
	return n <= st->len && st->w[st->len - 1] == sfx[n - 1] &&
	       memcmp(st->w + st->len - n, sfx, n) == 0;
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

static void text_stem_prelude(struct text_stemmer *st)
{
	size_t i;

	if (st->w[0] == 'y')
		st->w[0] = 'Y';
	for (i = 1; i < st->len; i++)
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
 */
struct text_stem_rule {
	const char *sfx;
	const char *rep; /* "": delete */
	char cond;	 /* 0 none, 'l' preceded by l, 'L' valid li-ending,
			    '2' suffix in R2, 't' preceded by s or t */
	unsigned char sfx_len, rep_len;
};

#define TEXT_STEM_RULE(s, r, c)                       \
	{                                             \
		s, r, c, sizeof(s) - 1, sizeof(r) - 1 \
	}

/* Finds the longest matching rule among n; NULL if none. */
static const struct text_stem_rule *
text_stem_match(const struct text_stemmer *st, const struct text_stem_rule *r,
		size_t n)
{
	const struct text_stem_rule *best = NULL;
	size_t i, bl = 0;

	for (i = 0; i < n; i++) {
		size_t l = r[i].sfx_len;

		if (l > bl && text_stem_ends_n(st, r[i].sfx, l)) {
			best = &r[i];
			bl = l;
		}
	}
	return best;
}

/* Applies the longest matching rule if its suffix starts at or after min. */
static void text_stem_apply(struct text_stemmer *st,
			    const struct text_stem_rule *r, size_t n,
			    size_t min)
{
	const struct text_stem_rule *m = text_stem_match(st, r, n);
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
	static const char *const inv[] = { "inning",  "outing",	 "canning",
					   "herring", "earring", "proceed",
					   "exceed",  "succeed" };
	size_t i;

	for (i = 0; i < sizeof(inv) / sizeof(*inv); i++)
		if (inv[i][0] == st->w[0] && strlen(inv[i]) == st->len &&
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

static const struct text_stem_rule text_stem_step2[] = {
	TEXT_STEM_RULE("tional", "tion", 0),
	TEXT_STEM_RULE("enci", "ence", 0),
	TEXT_STEM_RULE("anci", "ance", 0),
	TEXT_STEM_RULE("abli", "able", 0),
	TEXT_STEM_RULE("entli", "ent", 0),
	TEXT_STEM_RULE("izer", "ize", 0),
	TEXT_STEM_RULE("ization", "ize", 0),
	TEXT_STEM_RULE("ational", "ate", 0),
	TEXT_STEM_RULE("ation", "ate", 0),
	TEXT_STEM_RULE("ator", "ate", 0),
	TEXT_STEM_RULE("alism", "al", 0),
	TEXT_STEM_RULE("aliti", "al", 0),
	TEXT_STEM_RULE("alli", "al", 0),
	TEXT_STEM_RULE("fulness", "ful", 0),
	TEXT_STEM_RULE("ousli", "ous", 0),
	TEXT_STEM_RULE("ousness", "ous", 0),
	TEXT_STEM_RULE("iveness", "ive", 0),
	TEXT_STEM_RULE("iviti", "ive", 0),
	TEXT_STEM_RULE("biliti", "ble", 0),
	TEXT_STEM_RULE("bli", "ble", 0),
	TEXT_STEM_RULE("ogi", "og", 'l'),
	TEXT_STEM_RULE("fulli", "ful", 0),
	TEXT_STEM_RULE("lessli", "less", 0),
	TEXT_STEM_RULE("li", "", 'L'),
};

static const struct text_stem_rule text_stem_step3[] = {
	TEXT_STEM_RULE("tional", "tion", 0),
	TEXT_STEM_RULE("ational", "ate", 0),
	TEXT_STEM_RULE("alize", "al", 0),
	TEXT_STEM_RULE("icate", "ic", 0),
	TEXT_STEM_RULE("iciti", "ic", 0),
	TEXT_STEM_RULE("ical", "ic", 0),
	TEXT_STEM_RULE("ful", "", 0),
	TEXT_STEM_RULE("ness", "", 0),
	TEXT_STEM_RULE("ative", "", '2'),
};

static const struct text_stem_rule text_stem_step4[] = {
	TEXT_STEM_RULE("al", "", 0),	TEXT_STEM_RULE("ance", "", 0),
	TEXT_STEM_RULE("ence", "", 0),	TEXT_STEM_RULE("er", "", 0),
	TEXT_STEM_RULE("ic", "", 0),	TEXT_STEM_RULE("able", "", 0),
	TEXT_STEM_RULE("ible", "", 0),	TEXT_STEM_RULE("ant", "", 0),
	TEXT_STEM_RULE("ement", "", 0), TEXT_STEM_RULE("ment", "", 0),
	TEXT_STEM_RULE("ent", "", 0),	TEXT_STEM_RULE("ism", "", 0),
	TEXT_STEM_RULE("ate", "", 0),	TEXT_STEM_RULE("iti", "", 0),
	TEXT_STEM_RULE("ous", "", 0),	TEXT_STEM_RULE("ive", "", 0),
	TEXT_STEM_RULE("ize", "", 0),	TEXT_STEM_RULE("ion", "", 't'),
};

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

/* The exceptional forms, checked on the whole word before anything else. */
static const char *const text_stem_exc1[][2] = {
	{ "skis", "ski" },	{ "skies", "sky" },    { "dying", "die" },
	{ "lying", "lie" },	{ "tying", "tie" },    { "idly", "idl" },
	{ "gently", "gentl" },	{ "ugly", "ugli" },    { "early", "earli" },
	{ "only", "onli" },	{ "singly", "singl" }, { "sky", "sky" },
	{ "news", "news" },	{ "howe", "howe" },    { "atlas", "atlas" },
	{ "cosmos", "cosmos" }, { "bias", "bias" },    { "andes", "andes" },
};

size_t text_stem(char *word, size_t len)
{
	struct text_stemmer st = { .w = word, .len = len };
	size_t i;

	for (i = 0; i < len; i++)
		if (word[i] < 'a' || word[i] > 'z')
			return len;
	for (i = 0; i < sizeof(text_stem_exc1) / sizeof(*text_stem_exc1); i++) {
		const char *from = text_stem_exc1[i][0];
		const char *to = text_stem_exc1[i][1];

		if (from[0] == word[0] && strlen(from) == len &&
		    memcmp(word, from, len) == 0) {
			memcpy(word, to, strlen(to));
			return strlen(to);
		}
	}
	if (len < 3)
		return len;
	text_stem_prelude(&st);
	text_stem_1a(&st);
	if (!text_stem_exception2(&st)) {
		text_stem_1b(&st);
		text_stem_1c(&st);
		text_stem_apply(&st, text_stem_step2,
				sizeof(text_stem_step2) /
					sizeof(*text_stem_step2),
				st.p1);
		text_stem_apply(&st, text_stem_step3,
				sizeof(text_stem_step3) /
					sizeof(*text_stem_step3),
				st.p1);
		text_stem_apply(&st, text_stem_step4,
				sizeof(text_stem_step4) /
					sizeof(*text_stem_step4),
				st.p2);
		if (st.len > 0)
			text_stem_5(&st);
	}
	for (i = 0; i < st.len; i++)
		if (word[i] == 'Y')
			word[i] = 'y';
	return st.len;
}
