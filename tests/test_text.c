/* test_text.c - tokeniser, stemmer, BM25 index and sentence splitter. */
#include "core/text.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- helpers ------------------------------------------------------------- */

struct toks {
	char v[64][TEXT_TOKEN_MAX + 1];
	size_t n;
};

static int collect(void *arg, const char *tok, size_t len)
{
	struct toks *t = arg;

	cr_assert_eq(strlen(tok), len);
	if (t->n < 64)
		memcpy(t->v[t->n++], tok, len + 1);
	return 0;
}

static struct toks tokens(const char *s, unsigned flags)
{
	struct toks t = { .n = 0 };

	cr_assert_eq(text_tokenize(s, strlen(s), flags, collect, &t), 0);
	return t;
}

static void assert_tokens(const char *s, unsigned flags, const char **want,
			  size_t n)
{
	struct toks t = tokens(s, flags);
	size_t i;

	cr_assert_eq(t.n, n, "\"%s\": %zu tokens, want %zu", s, t.n, n);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(t.v[i], want[i], "\"%s\" token %zu", s, i);
}

#define ASSERT_TOKENS(s, flags, ...)                           \
	do {                                                   \
		const char *want_[] = { __VA_ARGS__ };         \
		assert_tokens(s, flags, want_,                 \
			      sizeof(want_) / sizeof(*want_)); \
	} while (0)

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1))) {
		*len = fread(buf, 1, (size_t)size, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

/* --- utf8 ---------------------------------------------------------------- */

Test(utf8, accepts_ascii_and_multibyte_text)
{
	cr_assert(text_is_utf8("", 0));
	cr_assert(text_is_utf8("plain ascii text, long enough for words", 39));
	cr_assert(text_is_utf8("na\xc3\xafve caf\xc3\xa9", 12));
	cr_assert(text_is_utf8("\xe6\x97\xa5\xe6\x9c\xac", 6)); /* 日本 */
	cr_assert(text_is_utf8("\xf0\x9f\x98\x80", 4));		/* U+1F600 */
	cr_assert(text_is_utf8("\xf4\x8f\xbf\xbf", 4));		/* U+10FFFF */
	cr_assert(text_is_utf8("\xed\x9f\xbf", 3));		/* U+D7FF */
	cr_assert(text_is_utf8("\xee\x80\x80", 3));		/* U+E000 */
	cr_assert(text_is_utf8("\xc2\x80", 2));			/* U+0080 */
}

Test(utf8, rejects_overlong_forms)
{
	cr_assert_not(text_is_utf8("\xc0\x80", 2));
	cr_assert_not(text_is_utf8("\xc1\xbf", 2));
	cr_assert_not(text_is_utf8("\xe0\x80\x80", 3));
	cr_assert_not(text_is_utf8("\xe0\x9f\xbf", 3));
	cr_assert_not(text_is_utf8("\xf0\x80\x80\x80", 4));
	cr_assert_not(text_is_utf8("\xf0\x8f\xbf\xbf", 4));
}

Test(utf8, rejects_surrogates_and_beyond_max)
{
	cr_assert_not(text_is_utf8("\xed\xa0\x80", 3)); /* U+D800 */
	cr_assert_not(text_is_utf8("\xed\xbf\xbf", 3)); /* U+DFFF */
	cr_assert_not(text_is_utf8("\xf4\x90\x80\x80", 4));
	cr_assert_not(text_is_utf8("\xf5\x80\x80\x80", 4));
	cr_assert_not(text_is_utf8("\xff", 1));
	cr_assert_not(text_is_utf8("\xfe", 1));
}

Test(utf8, rejects_truncated_and_stray_bytes)
{
	cr_assert_not(text_is_utf8("abc\xc3", 4));
	cr_assert_not(text_is_utf8("\xe6\x97", 2));
	cr_assert_not(text_is_utf8("\xf0\x9f\x98", 3));
	cr_assert_not(text_is_utf8("\x80", 1));
	cr_assert_not(text_is_utf8("ok\xbfok", 5));
	cr_assert_not(text_is_utf8("\xc3\x28", 2));
	/* the bad byte sits after a run the 8-byte fast path skips */
	cr_assert_not(text_is_utf8("abcdefgh\xc3", 9));
}

Test(utf8, treats_nul_bytes_as_binary)
{
	cr_assert_not(text_is_utf8("a\0b", 3));
	cr_assert_not(text_is_utf8("abcdefghijklmnop\0", 17));
	cr_assert_not(text_is_utf8("\0", 1));
}

/* --- tokenize ------------------------------------------------------------ */

Test(tokenize, lowercases_ascii_runs_of_letters_and_digits)
{
	ASSERT_TOKENS("Hello, WORLD! 42x B-52 e=mc2", TEXT_LOWER, "hello",
		      "world", "42x", "b", "52", "e", "mc2");
}

Test(tokenize, keeps_utf8_letters_inside_words)
{
	ASSERT_TOKENS("Na\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac!",
		      TEXT_LOWER, "na\xc3\xafve", "caf\xc3\xa9",
		      "\xe6\x97\xa5\xe6\x9c\xac");
}

Test(tokenize, splits_at_unicode_punctuation_and_spaces)
{
	/* em dash, curly quotes, no-break space, ideographic full stop */
	ASSERT_TOKENS("a\xe2\x80\x94"
		      "b \xe2\x80\x9c"
		      "c\xe2\x80\x9d\xc2\xa0"
		      "d\xe3\x80\x82"
		      "e",
		      TEXT_LOWER, "a", "b", "c", "d", "e");
}

Test(tokenize, invalid_utf8_separates_tokens_without_crashing)
{
	ASSERT_TOKENS("ab\xff"
		      "cd\xc3"
		      "ef\xed\xa0\x80"
		      "gh\xe6\x97",
		      TEXT_LOWER, "ab", "cd", "ef", "gh");
}

Test(tokenize, cuts_long_words_at_token_max)
{
	char buf[200];
	struct toks t;

	memset(buf, 'x', 150);
	buf[150] = '\0';
	t = tokens(buf, TEXT_LOWER);
	cr_assert_eq(t.n, 1);
	cr_assert_eq(strlen(t.v[0]), TEXT_TOKEN_MAX);
	/* a multibyte letter that does not fit is not cut in half */
	memset(buf, 'x', 63);
	memcpy(buf + 63, "\xc3\xa9yz", 5);
	t = tokens(buf, TEXT_LOWER);
	cr_assert_eq(t.n, 1);
	cr_assert_eq(strlen(t.v[0]), 63);
	cr_assert(text_is_utf8(t.v[0], 63));
}

static int stop_at_second(void *arg, const char *tok, size_t len)
{
	int *n = arg;

	(void)tok;
	(void)len;
	return ++*n == 2 ? 7 : 0;
}

Test(tokenize, callback_result_stops_and_is_returned)
{
	int n = 0;

	cr_assert_eq(text_tokenize("one two three", 13, TEXT_LOWER,
				   stop_at_second, &n),
		     7);
	cr_assert_eq(n, 2);
}

Test(tokenize, analyze_stops_and_stems)
{
	ASSERT_TOKENS("The Running dogs and THE skies", TEXT_ANALYZE, "run",
		      "dog", "sky");
	ASSERT_TOKENS("The Running dogs", TEXT_STOP, "running", "dogs");
	ASSERT_TOKENS("The Running dogs", TEXT_STEM, "the", "run", "dog");
	/* digits and non-ASCII words are not stemmed */
	ASSERT_TOKENS("flows2 caf\xc3\xa9s", TEXT_ANALYZE, "flows2",
		      "caf\xc3\xa9s");
}

/* --- stopwords ----------------------------------------------------------- */

Test(stopwords, are_lucenes_33_english_stopwords)
{
	static const char *const lucene[] = {
		"a",	"an",  "and",	"are",	"as",	 "at",	  "be",
		"but",	"by",  "for",	"if",	"in",	 "into",  "is",
		"it",	"no",  "not",	"of",	"on",	 "or",	  "such",
		"that", "the", "their", "then", "there", "these", "they",
		"this", "to",  "was",	"will", "with",
	};
	static const char *const others[] = { "those", "i",   "he",   "from",
					      "have",  "an1", "thes", "ther",
					      "wil",   "aa",  "nor",  "" };
	size_t i;

	cr_assert_eq(sizeof(lucene) / sizeof(*lucene), 33);
	for (i = 0; i < 33; i++)
		cr_assert(text_is_stopword(lucene[i], strlen(lucene[i])), "%s",
			  lucene[i]);
	for (i = 0; i < sizeof(others) / sizeof(*others); i++)
		cr_assert_not(text_is_stopword(others[i], strlen(others[i])),
			      "%s", others[i]);
}

Test(stopwords, are_removed_by_analysis_only)
{
	ASSERT_TOKENS("to be or not to be", TEXT_LOWER, "to", "be", "or", "not",
		      "to", "be");
	cr_assert_eq(tokens("to be or not to be", TEXT_ANALYZE).n, 0);
	/* stopwords are matched before stemming, as Lucene does */
	ASSERT_TOKENS("thes this", TEXT_ANALYZE, "thes");
}

/* --- stem ---------------------------------------------------------------- */

static const char *const stem_pairs[][2] = {
	/* the examples of the Porter2 description and its vocabulary */
	{ "consign", "consign" },
	{ "consigned", "consign" },
	{ "consigning", "consign" },
	{ "consignment", "consign" },
	{ "consist", "consist" },
	{ "consisted", "consist" },
	{ "consistency", "consist" },
	{ "consistent", "consist" },
	{ "consistently", "consist" },
	{ "consisting", "consist" },
	{ "consists", "consist" },
	{ "consolation", "consol" },
	{ "consolations", "consol" },
	{ "consolatory", "consolatori" },
	{ "console", "consol" },
	{ "consoled", "consol" },
	{ "consolidate", "consolid" },
	{ "consolingly", "consol" },
	{ "conspicuous", "conspicu" },
	{ "conspiracy", "conspiraci" },
	{ "conspirators", "conspir" },
	{ "constable", "constabl" },
	{ "constancy", "constanc" },
	{ "knack", "knack" },
	{ "knackeries", "knackeri" },
	{ "knaves", "knave" },
	{ "kneaded", "knead" },
	{ "kneeling", "kneel" },
	{ "knees", "knee" },
	{ "knightly", "knight" },
	{ "knitting", "knit" },
	{ "knives", "knive" },
	{ "knocker", "knocker" },
	{ "generously", "generous" },
	{ "running", "run" },
	{ "hopping", "hop" },
	{ "hoped", "hope" },
	{ "hoping", "hope" },
	/* step 1a */
	{ "caresses", "caress" },
	{ "ties", "tie" },
	{ "cries", "cri" },
	{ "gas", "gas" },
	{ "this", "this" },
	{ "gaps", "gap" },
	{ "kiwis", "kiwi" },
	/* step 1b / 1c */
	{ "agreed", "agre" },
	{ "feed", "feed" },
	{ "luxuriating", "luxuri" },
	{ "cry", "cri" },
	{ "by", "by" },
	{ "say", "say" },
	{ "saying", "say" },
	/* R1 exceptions */
	{ "communism", "communism" },
	{ "general", "general" },
	{ "arsenal", "arsenal" },
	/* later steps */
	{ "hopefulness", "hope" },
	{ "heavily", "heavili" },
	{ "sensational", "sensat" },
	{ "adoption", "adopt" },
	{ "replacement", "replac" },
	{ "relativity", "relat" },
	{ "aerodynamics", "aerodynam" },
	{ "experimental", "experiment" },
	{ "beautifully", "beauti" },
	/* exceptional forms */
	{ "skis", "ski" },
	{ "skies", "sky" },
	{ "sky", "sky" },
	{ "dying", "die" },
	{ "lying", "lie" },
	{ "tying", "tie" },
	{ "news", "news" },
	{ "idly", "idl" },
	{ "gently", "gentl" },
	{ "ugly", "ugli" },
	{ "early", "earli" },
	{ "only", "onli" },
	{ "singly", "singl" },
	{ "howe", "howe" },
	{ "atlas", "atlas" },
	{ "cosmos", "cosmos" },
	{ "bias", "bias" },
	{ "andes", "andes" },
	{ "inning", "inning" },
	{ "innings", "inning" },
	{ "outing", "outing" },
	{ "canning", "canning" },
	{ "proceed", "proceed" },
	{ "exceed", "exceed" },
	{ "succeed", "succeed" },
	/* short words are left alone */
	{ "is", "is" },
	{ "a", "a" },
};

Test(stem, matches_porter2_table)
{
	size_t i;

	cr_assert_geq(sizeof(stem_pairs) / sizeof(*stem_pairs), 40);
	for (i = 0; i < sizeof(stem_pairs) / sizeof(*stem_pairs); i++) {
		char w[64];
		size_t n = strlen(stem_pairs[i][0]);

		memcpy(w, stem_pairs[i][0], n);
		n = text_stem(w, n);
		w[n] = '\0';
		cr_assert_str_eq(w, stem_pairs[i][1], "stem(%s)",
				 stem_pairs[i][0]);
	}
}

Test(stem, leaves_words_with_other_bytes_alone)
{
	char w[] = "running2";

	cr_assert_eq(text_stem(w, 8), 8);
	cr_assert_str_eq(w, "running2");
	cr_assert_eq(text_stem(w, 0), 0);
}

/* --- count_tokens --------------------------------------------------------- */

Test(count_tokens, counts_pretokeniser_pieces)
{
	cr_assert_eq(text_count_tokens("", 0), 0);
	cr_assert_eq(text_count_tokens("hello", 5), 1);
	cr_assert_eq(text_count_tokens("hello world", 11), 2);
	cr_assert_eq(text_count_tokens("hello  world", 12), 3);
	cr_assert_eq(text_count_tokens("hello.", 6), 2);
	cr_assert_eq(text_count_tokens("1234567", 7), 3);
	cr_assert_eq(text_count_tokens("internationalization", 20), 4);
	cr_assert_eq(text_count_tokens("\xe6\x97\xa5\xe6\x9c\xac", 6), 2);
	cr_assert_eq(text_count_tokens("   ", 3), 1);
	cr_assert_eq(text_count_tokens("a\n\nb", 4), 3);
	cr_assert_eq(text_count_tokens("\xff\xfe", 2), 2);
}

Test(count_tokens, is_subadditive)
{
	static const char *const units[] = { "a",    "bc",	 " ",
					     "\n",   "1",	 ".",
					     ",",    "\xc3\xa9", "\xe6\x97\xa5",
					     "\xff", "\t",	 "xyz" };
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 2000; round++) {
		char buf[256];
		size_t cuts[64], n = 0, len = 0, i;
		int k = 1 +
			(int)((seed = seed * 1103515245 + 12345) >> 16) % 40;

		while (k--) {
			const char *u =
				units[((seed = seed * 1103515245 + 12345) >>
				       16) %
				      (sizeof(units) / sizeof(*units))];
			memcpy(buf + len, u, strlen(u));
			len += strlen(u);
			cuts[n++] = len;
		}
		for (i = 0; i < n; i++) {
			size_t c = cuts[i];

			cr_assert_leq(
				text_count_tokens(buf, len),
				text_count_tokens(buf, c) +
					text_count_tokens(buf + c, len - c),
				"round %d cut %zu", round, c);
		}
	}
}

/* --- split --------------------------------------------------------------- */

/* Checks what must hold of every split, whatever the input. */
static void check_chunks(const char *text, size_t len, size_t size,
			 const struct text_chunk *c, size_t n)
{
	size_t i, j, cps;

	for (i = 0; i < n; i++) {
		cr_assert_lt(c[i].start, c[i].end, "chunk %zu empty", i);
		cr_assert_leq(c[i].end, len);
		cr_assert_eq(memcmp(c[i].text, text + c[i].start,
				    c[i].end - c[i].start),
			     0, "chunk %zu is not its substring", i);
		cr_assert_eq(c[i].text[c[i].end - c[i].start], '\0');
		cr_assert_eq(c[i].tokens,
			     text_count_tokens(text + c[i].start,
					       c[i].end - c[i].start));
		cr_assert_leq(c[i].tokens, size, "chunk %zu: %zu tokens", i,
			      c[i].tokens);
		cr_assert_neq(c[i].text[0], ' ');
		cr_assert_neq(c[i].text[c[i].end - c[i].start - 1], ' ');
		if (i) {
			cr_assert_gt(c[i].start, c[i - 1].start);
			cr_assert_gt(c[i].end, c[i - 1].end);
		}
		if (text_is_utf8(text, len)) {
			/* cuts keep sequences whole; char offsets agree */
			cr_assert(
				text_is_utf8(c[i].text, c[i].end - c[i].start));
			for (j = 0, cps = 0; j < c[i].start; j++)
				cps += ((unsigned char)text[j] & 0xc0) != 0x80;
			cr_assert_eq(c[i].start_char, cps);
			for (; j < c[i].end; j++)
				cps += ((unsigned char)text[j] & 0xc0) != 0x80;
			cr_assert_eq(c[i].end_char, cps);
		}
	}
}

/* Every non-space byte of the text lies in some chunk. */
static void check_coverage(const char *text, size_t len,
			   const struct text_chunk *c, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < len; i++) {
		if (text[i] == ' ' || text[i] == '\n')
			continue;
		while (k < n && c[k].end <= i)
			k++;
		cr_assert(k < n && c[k].start <= i, "byte %zu lost", i);
	}
}

static char *sentences(size_t count, size_t *len)
{
	char *buf = malloc(count * 80 + 1);
	size_t i, n = 0;

	for (i = 0; i < count; i++)
		n += (size_t)sprintf(buf + n,
				     "Sentence %zu tells of the flow over a "
				     "wing at speed. ",
				     i);
	*len = n;
	return buf;
}

Test(split, empty_and_blank_text_give_no_chunks)
{
	struct text_chunk *c = (void *)1;
	size_t n = 7;

	cr_assert_eq(text_split("", 0, 1024, 200, &c, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(c);
	cr_assert_eq(text_split(" \n\t \n\n\n  ", 9, 1024, 200, &c, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(c);
	text_chunks_free(c, n);
}

Test(split, short_text_is_one_stripped_chunk)
{
	const char *t = "\n  Hello there. How are you?  \n";
	struct text_chunk *c;
	size_t n;

	cr_assert_eq(text_split(t, strlen(t), TEXT_CHUNK_SIZE,
				TEXT_CHUNK_OVERLAP, &c, &n),
		     0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(c[0].text, "Hello there. How are you?");
	cr_assert_eq(c[0].start, 3);
	cr_assert_eq(c[0].end, 3 + strlen("Hello there. How are you?"));
	text_chunks_free(c, n);
}

Test(split, rejects_bad_sizes)
{
	struct text_chunk *c;
	size_t n;

	cr_assert_eq(text_split("abc", 3, 0, 0, &c, &n), -EINVAL);
	cr_assert_eq(text_split("abc", 3, 10, 11, &c, &n), -EINVAL);
}

Test(split, chunks_fit_overlap_and_reconstruct_the_text)
{
	size_t len, n, i;
	char *t = sentences(200, &len);
	struct text_chunk *c;

	cr_assert_eq(text_split(t, len, 64, 16, &c, &n), 0);
	cr_assert_gt(n, 10);
	check_chunks(t, len, 64, c, n);
	check_coverage(t, len, c, n);
	for (i = 1; i < n; i++) {
		/* the overlap is whole sentences of the previous chunk */
		cr_assert_lt(c[i].start, c[i - 1].end, "no overlap at %zu", i);
		cr_assert_eq(strncmp(c[i].text, "Sentence ", 9), 0);
	}
	/* sentences are kept whole */
	for (i = 0; i < n; i++)
		cr_assert_eq(c[i].text[c[i].end - c[i].start - 1], '.');
	text_chunks_free(c, n);
	free(t);
}

Test(split, no_overlap_when_zero)
{
	size_t len, n, i;
	char *t = sentences(100, &len);
	struct text_chunk *c;

	cr_assert_eq(text_split(t, len, 50, 0, &c, &n), 0);
	for (i = 1; i < n; i++)
		cr_assert_geq(c[i].start, c[i - 1].end);
	check_chunks(t, len, 50, c, n);
	check_coverage(t, len, c, n);
	text_chunks_free(c, n);
	free(t);
}

Test(split, overlap_is_dropped_rather_than_overshooting)
{
	/* 4 + 4 + 17 tokens: the overlap (8) plus the last sentence would
	 * make 25, over the size, where LlamaIndex would overshoot */
	const char *t = "One two. Three four. aa bb cc dd ee ff gg hh ii jj kk "
			"ll mm nn oo pp.";
	struct text_chunk *c;
	size_t n;

	cr_assert_eq(text_split(t, strlen(t), 20, 15, &c, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(c[0].text, "One two. Three four.");
	cr_assert_eq(c[1].start, 21);
	cr_assert_eq(c[1].tokens, 17);
	check_chunks(t, strlen(t), 20, c, n);
	text_chunks_free(c, n);
}

Test(split, prefers_paragraph_boundaries)
{
	size_t la, lb, n;
	char *a = sentences(3, &la), *b = sentences(3, &lb);
	char *t = malloc(la + lb + 4);
	struct text_chunk *c;
	size_t tok = text_count_tokens(a, la);

	memcpy(t, a, la);
	memcpy(t + la, "\n\n\n", 3);
	memcpy(t + la + 3, b, lb);
	cr_assert_eq(text_split(t, la + lb + 3, tok + 5, 0, &c, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(c[0].start, 0);
	cr_assert_eq(c[0].end, la - 1); /* trailing space stripped */
	cr_assert_eq(c[1].start, la + 3);
	check_chunks(t, la + lb + 3, tok + 5, c, n);
	text_chunks_free(c, n);
	free(a);
	free(b);
	free(t);
}

Test(split, sentence_without_punctuation_is_split_at_spaces)
{
	char *t = malloc(5001);
	size_t i, n;
	struct text_chunk *c;

	for (i = 0; i < 1000; i++)
		memcpy(t + 5 * i, "word ", 5);
	t[5000] = '\0';
	cr_assert_eq(text_split(t, 5000, 50, 10, &c, &n), 0);
	cr_assert_gt(n, 10);
	check_chunks(t, 5000, 50, c, n);
	check_coverage(t, 5000, c, n);
	for (i = 0; i < n; i++)
		cr_assert_eq(strncmp(c[i].text, "word", 4), 0);
	text_chunks_free(c, n);
	free(t);
}

Test(split, word_without_spaces_is_split_between_characters)
{
	char *t = malloc(3000);
	size_t i, n;
	struct text_chunk *c;

	/* a long run of 3-byte letters: cuts must fall between them */
	for (i = 0; i < 1000; i++)
		memcpy(t + 3 * i, "\xe6\x97\xa5", 3);
	cr_assert_eq(text_split(t, 3000, 100, 20, &c, &n), 0);
	cr_assert_gt(n, 10);
	check_chunks(t, 3000, 100, c, n);
	check_coverage(t, 3000, c, n);
	text_chunks_free(c, n);
	free(t);
}

Test(split, cjk_sentences_split_at_ideographic_full_stops)
{
	const char *s = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x80\x82";
	char t[12 * 40 + 1];
	size_t i, n;
	struct text_chunk *c;

	for (i = 0; i < 40; i++)
		memcpy(t + 12 * i, s, 12);
	cr_assert_eq(text_split(t, 12 * 40, 20, 5, &c, &n), 0);
	cr_assert_gt(n, 1);
	check_chunks(t, 12 * 40, 20, c, n);
	for (i = 0; i < n; i++)
		cr_assert_eq(memcmp(c[i].text + (c[i].end - c[i].start) - 3,
				    "\xe3\x80\x82", 3),
			     0);
	text_chunks_free(c, n);
}

Test(split, abbreviations_do_not_end_sentences)
{
	const char *t = "Dr. Smith met J. Doe, e.g. at noon. Then they left.";
	struct text_chunk *c;
	size_t n;

	/* 19 tokens in all, 16 in the first sentence with its space */
	cr_assert_eq(text_split(t, strlen(t), 16, 0, &c, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(c[0].text, "Dr. Smith met J. Doe, e.g. at noon.");
	cr_assert_str_eq(c[1].text, "Then they left.");
	text_chunks_free(c, n);
}

Test(split, invalid_utf8_does_not_crash)
{
	unsigned seed = 42;
	size_t len = 20000, i, n, round;
	char *t = malloc(len);
	struct text_chunk *c;

	for (round = 0; round < 4; round++) {
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			if (round & 1)
				t[i] = (char)(seed >> 16);
			else
				t[i] = "ab .\n\xc3\xe6\xff\x80,"[(seed >> 16) %
								 10];
		}
		cr_assert_eq(text_split(t, len, 32 + round * 50, 8, &c, &n), 0);
		cr_assert_gt(n, 0);
		check_chunks(t, len, 32 + round * 50, c, n);
		text_chunks_free(c, n);
	}
	/* a truncated sequence at the very end */
	cr_assert_eq(text_split("abc \xe6\x97", 6, 1, 0, &c, &n), 0);
	check_chunks("abc \xe6\x97", 6, 1, c, n);
	text_chunks_free(c, n);
	free(t);
}

Test(split, char_offsets_count_code_points)
{
	/* bytes: é 0-1, '.' 2, ' ' 3, 日 4-6, '.' 7, ' ' 8, "Fin." 9-12 */
	const char *t = "\xc3\xa9. \xe6\x97\xa5. Fin.";
	struct text_chunk *c;
	size_t n;

	cr_assert_eq(text_split(t, strlen(t), 3, 0, &c, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(c[0].start_char, 0);
	cr_assert_eq(c[0].end_char, 2);
	cr_assert_eq(c[1].start, 4);
	cr_assert_eq(c[1].end, 8);
	cr_assert_eq(c[1].start_char, 3);
	cr_assert_eq(c[1].end_char, 5);
	cr_assert_eq(c[2].start, 9);
	cr_assert_eq(c[2].start_char, 6);
	cr_assert_eq(c[2].end_char, 10);
	text_chunks_free(c, n);
}

/* --- bm25 ---------------------------------------------------------------- */

/* The formula, written out independently of the index. */
static double bm25(double tf, double df, double n, double dl, double avgdl)
{
	double idf = log(1 + (n - df + 0.5) / (df + 0.5));

	return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl));
}

static struct text_index *tiny_index(void)
{
	struct text_index *idx;

	cr_assert_eq(text_index_new(&idx), 0);
	/* lengths after stopwords: 3, 2, 4 */
	cr_assert_eq(text_index_put(idx, "d1", "The cat and the dog, cat.", 25),
		     0);
	cr_assert_eq(text_index_put(idx, "d2", "dog fish", 8), 0);
	cr_assert_eq(text_index_put(idx, "d3", "fish FISH fish bird", 19), 0);
	return idx;
}

static double score_of(const struct text_results *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->hits[i].id, id) == 0)
			return r->hits[i].score;
	return -1;
}

Test(bm25, scores_match_the_formula)
{
	struct text_index *idx = tiny_index();
	struct text_index_stats st;
	struct text_results r;

	text_index_stats(idx, &st);
	cr_assert_eq(st.docs, 3);
	cr_assert_eq(st.n, 3);
	cr_assert_float_eq(st.avgdl, 3.0, 1e-12);
	cr_assert_eq(
		text_index_search(idx, "cats and fish", 10, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 3);
	cr_assert_float_eq(score_of(&r, "d1"), bm25(2, 1, 3, 3, 3), 1e-9);
	cr_assert_float_eq(score_of(&r, "d2"), bm25(1, 2, 3, 2, 3), 1e-9);
	cr_assert_float_eq(score_of(&r, "d3"), bm25(3, 2, 3, 4, 3), 1e-9);
	cr_assert_gt(r.hits[0].score, r.hits[1].score);
	cr_assert_gt(r.hits[1].score, r.hits[2].score);
	text_results_free(&r);
	text_index_free(idx);
}

Test(bm25, repeated_query_terms_count_again)
{
	struct text_index *idx = tiny_index();
	struct text_results r;

	cr_assert_eq(text_index_search(idx, "cat cat fish", 10, NULL, NULL, &r),
		     0);
	cr_assert_float_eq(score_of(&r, "d1"), 2 * bm25(2, 1, 3, 3, 3), 1e-9);
	text_results_free(&r);
	text_index_free(idx);
}

Test(bm25, results_are_sorted_and_cut_at_k)
{
	struct text_index *idx = tiny_index();
	struct text_results r;

	cr_assert_eq(text_index_search(idx, "fish dog", 2, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.hits[0].id, "d2");
	cr_assert_float_eq(r.hits[0].score,
			   bm25(1, 2, 3, 2, 3) + bm25(1, 2, 3, 2, 3), 1e-9);
	text_results_free(&r);
	cr_assert_eq(text_index_search(idx, "fish", 0, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(text_index_search(idx, "zebra the", 5, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 0);
	cr_assert_null(r.hits);
	text_index_free(idx);
}

Test(bm25, ties_rank_by_id_ascending)
{
	struct text_index *idx;
	struct text_results r;
	static const char *const ids[] = { "m", "b", "z", "a", "k" };
	size_t i;

	cr_assert_eq(text_index_new(&idx), 0);
	for (i = 0; i < 5; i++)
		cr_assert_eq(text_index_put(idx, ids[i], "same words here", 15),
			     0);
	cr_assert_eq(text_index_put(idx, "other", "unrelated", 9), 0);
	cr_assert_eq(text_index_search(idx, "words", 4, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 4);
	cr_assert_str_eq(r.hits[0].id, "a");
	cr_assert_str_eq(r.hits[1].id, "b");
	cr_assert_str_eq(r.hits[2].id, "k");
	cr_assert_str_eq(r.hits[3].id, "m");
	cr_assert_eq(r.hits[0].score, r.hits[3].score);
	text_results_free(&r);
	text_index_free(idx);
}

Test(bm25, put_replaces_a_document)
{
	struct text_index *idx = tiny_index();
	struct text_index_stats st;
	struct text_results r;

	cr_assert_eq(text_index_put(idx, "d1", "bird bird", 9), 0);
	text_index_stats(idx, &st);
	cr_assert_eq(st.docs, 3);
	cr_assert_eq(st.n, 3);
	cr_assert_float_eq(st.avgdl, (2 + 2 + 4) / 3.0, 1e-12);
	cr_assert_eq(text_index_search(idx, "cat", 10, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(text_index_search(idx, "bird", 10, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.hits[0].id, "d1");
	cr_assert_float_eq(r.hits[0].score, bm25(2, 2, 3, 2, 8 / 3.0), 1e-9);
	text_results_free(&r);
	text_index_free(idx);
}

Test(bm25, del_removes_and_updates_n_and_avgdl)
{
	struct text_index *idx = tiny_index();
	struct text_index_stats st;
	struct text_results r;

	cr_assert_eq(text_index_del(idx, "d3"), 0);
	cr_assert_eq(text_index_del(idx, "d3"), -ENOENT);
	cr_assert_eq(text_index_del(idx, "nope"), -ENOENT);
	text_index_stats(idx, &st);
	cr_assert_eq(st.docs, 2);
	cr_assert_eq(st.n, 2);
	cr_assert_float_eq(st.avgdl, 2.5, 1e-12);
	cr_assert_eq(text_index_search(idx, "fish", 10, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 1);
	cr_assert_str_eq(r.hits[0].id, "d2");
	/* df(fish) is now 1 of N = 2 */
	cr_assert_float_eq(r.hits[0].score, bm25(1, 1, 2, 2, 2.5), 1e-9);
	text_results_free(&r);
	text_index_free(idx);
}

Test(bm25, documents_without_tokens_do_not_count_in_n)
{
	struct text_index *idx = tiny_index();
	struct text_index_stats st;

	cr_assert_eq(text_index_put(idx, "empty", "the and of", 10), 0);
	cr_assert_eq(text_index_put(idx, "blank", "", 0), 0);
	text_index_stats(idx, &st);
	cr_assert_eq(st.docs, 5);
	cr_assert_eq(st.n, 3);
	cr_assert_float_eq(st.avgdl, 3.0, 1e-12);
	cr_assert_eq(text_index_del(idx, "blank"), 0);
	text_index_stats(idx, &st);
	cr_assert_eq(st.docs, 4);
	text_index_free(idx);
}

struct filter_log {
	int calls[3];
};

static int reject_d2(void *arg, const char *id)
{
	struct filter_log *log = arg;

	cr_assert(id[0] == 'd' && id[1] >= '1' && id[1] <= '3');
	log->calls[id[1] - '1']++;
	return strcmp(id, "d2") != 0;
}

Test(bm25, filter_drops_documents_and_runs_once_per_candidate)
{
	struct text_index *idx = tiny_index();
	struct filter_log log = { { 0 } };
	struct text_results r;

	cr_assert_eq(
		text_index_search(idx, "dog fish cat", 10, reject_d2, &log, &r),
		0);
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.hits[0].id, "d1");
	cr_assert_str_eq(r.hits[1].id, "d3");
	cr_assert_eq(log.calls[0], 1);
	cr_assert_eq(log.calls[1], 1);
	cr_assert_eq(log.calls[2], 1);
	text_results_free(&r);
	text_index_free(idx);
}

Test(bm25, rejects_bad_arguments)
{
	struct text_index *idx = tiny_index();
	struct text_results r;
	struct text_index_opts bad = { 1.2, 1.5, 0 };
	struct text_index *other;

	cr_assert_eq(text_index_put(idx, "", "x", 1), -EINVAL);
	cr_assert_eq(text_index_put(idx, NULL, "x", 1), -EINVAL);
	cr_assert_eq(text_index_put(idx, "x", NULL, 1), -EINVAL);
	cr_assert_eq(text_index_search(idx, NULL, 1, NULL, NULL, &r), -EINVAL);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(text_index_new_opts(&bad, &other), -EINVAL);
	text_index_free(idx);
	text_index_free(NULL);
	text_results_free(NULL);
}

/* Same documents, one index churned and compacted, one built fresh. */
Test(bm25, compaction_keeps_results_identical)
{
	struct text_index *a, *b;
	struct text_index_stats st;
	struct text_results ra, rb;
	char id[32], text[128];
	size_t i;
	int d;

	cr_assert_eq(text_index_new(&a), 0);
	cr_assert_eq(text_index_new(&b), 0);
	for (d = 0; d < 3000; d++) {
		snprintf(id, sizeof(id), "doc%d", d);
		snprintf(text, sizeof(text), "w%d w%d w%d common shared%d",
			 d % 7, d % 13, d % 101, d % 3);
		cr_assert_eq(text_index_put(a, id, text, strlen(text)), 0);
	}
	/* replace the odd ones, delete two thirds of the even ones */
	for (d = 0; d < 3000; d++) {
		snprintf(id, sizeof(id), "doc%d", d);
		if (d % 2) {
			snprintf(text, sizeof(text), "w%d common extra%d",
				 d % 11, d % 5);
			cr_assert_eq(text_index_put(a, id, text, strlen(text)),
				     0);
		} else if (d % 3) {
			cr_assert_eq(text_index_del(a, id), 0);
		}
	}
	text_index_stats(a, &st);
	cr_assert_gt(st.dead, 0);
	cr_assert_eq(text_index_compact(a), 0);
	text_index_stats(a, &st);
	cr_assert_eq(st.dead, 0);
	for (d = 0; d < 3000; d++) {
		snprintf(id, sizeof(id), "doc%d", d);
		if (d % 2)
			snprintf(text, sizeof(text), "w%d common extra%d",
				 d % 11, d % 5);
		else if (d % 3 == 0)
			snprintf(text, sizeof(text),
				 "w%d w%d w%d common shared%d", d % 7, d % 13,
				 d % 101, d % 3);
		else
			continue;
		cr_assert_eq(text_index_put(b, id, text, strlen(text)), 0);
	}
	cr_assert_eq(text_index_put(a, "late", "w3 common", 9), 0);
	cr_assert_eq(text_index_put(b, "late", "w3 common", 9), 0);
	cr_assert_eq(text_index_search(a, "w3 extra2 shared0 common", 50, NULL,
				       NULL, &ra),
		     0);
	cr_assert_eq(text_index_search(b, "w3 extra2 shared0 common", 50, NULL,
				       NULL, &rb),
		     0);
	cr_assert_eq(ra.n, 50);
	cr_assert_eq(ra.n, rb.n);
	for (i = 0; i < ra.n; i++) {
		cr_assert_str_eq(ra.hits[i].id, rb.hits[i].id);
		cr_assert_float_eq(ra.hits[i].score, rb.hits[i].score, 1e-9);
	}
	text_results_free(&ra);
	text_results_free(&rb);
	text_index_free(a);
	text_index_free(b);
}

Test(bm25, bigrams_add_weighted_phrase_matches)
{
	struct text_index_opts o = { TEXT_BM25_K1, TEXT_BM25_B, 0.5 };
	struct text_index *idx;
	struct text_results r;

	cr_assert_eq(text_index_new_opts(&o, &idx), 0);
	cr_assert_eq(text_index_put(idx, "phrase", "heat transfer rate", 18),
		     0);
	cr_assert_eq(text_index_put(idx, "apart", "transfer heat rate", 18), 0);
	cr_assert_eq(text_index_put(idx, "other", "boundary layer", 14), 0);
	cr_assert_eq(
		text_index_search(idx, "heat transfer", 10, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.hits[0].id, "phrase");
	/* unigrams tie; the bigram adds 0.5 * BM25 of "heat transfer" */
	cr_assert_float_eq(r.hits[0].score - r.hits[1].score,
			   0.5 * bm25(1, 1, 3, 3, 8 / 3.0), 1e-9);
	text_results_free(&r);
	text_index_free(idx);
}

/* A brute-force model: the current documents, scored from scratch. */
struct model_doc {
	char id[16];
	char text[160];
	int live;
};

struct model_terms {
	char v[64][TEXT_TOKEN_MAX + 1];
	size_t n;
};

static int model_collect(void *arg, const char *tok, size_t len)
{
	struct model_terms *t = arg;

	if (t->n < 64)
		memcpy(t->v[t->n++], tok, len + 1);
	return 0;
}

static struct model_terms model_analyze(const char *text)
{
	struct model_terms t = { .n = 0 };

	text_tokenize(text, strlen(text), TEXT_ANALYZE, model_collect, &t);
	return t;
}

static int cmp_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y) - (x > y);
}

/* The model's scores, best first; returns how many documents matched. */
static size_t model_search(const struct model_doc *docs, size_t ndocs,
			   const char *query, double *out)
{
	struct model_terms q = model_analyze(query), d;
	double n = 0, total = 0, df[64] = { 0 };
	size_t i, j, k, m = 0;

	for (i = 0; i < ndocs; i++) {
		if (!docs[i].live)
			continue;
		d = model_analyze(docs[i].text);
		if (d.n) {
			n++;
			total += (double)d.n;
		}
		for (j = 0; j < q.n; j++)
			for (k = 0; k < d.n; k++)
				if (strcmp(q.v[j], d.v[k]) == 0) {
					df[j]++;
					break;
				}
	}
	for (i = 0; i < ndocs; i++) {
		double score = 0, tf;

		if (!docs[i].live)
			continue;
		d = model_analyze(docs[i].text);
		for (j = 0; j < q.n; j++) {
			for (k = 0, tf = 0; k < d.n; k++)
				tf += strcmp(q.v[j], d.v[k]) == 0;
			if (tf)
				score += bm25(tf, df[j], n, (double)d.n,
					      total / n);
		}
		if (score > 0)
			out[m++] = score;
	}
	qsort(out, m, sizeof(*out), cmp_desc);
	return m;
}

Test(bm25, matches_brute_force_under_churn)
{
	static const char *const words[] = {
		"flow",	 "wing",     "shock", "the",  "heat",  "boundary",
		"layer", "pressure", "of",    "mach", "flows", "winged",
		"body",	 "cone",     "plate", "and",  "slip",  "stream",
	};
	static struct model_doc docs[120];
	static const char *const queries[] = { "flow wing", "heat of the layer",
					       "shock shock cone", "mach body",
					       "stream plate flows" };
	struct text_index *idx;
	unsigned seed = 99;
	double want[120];
	size_t i, j, m;
	int op;

	cr_assert_eq(text_index_new(&idx), 0);
	for (i = 0; i < 120; i++)
		snprintf(docs[i].id, sizeof(docs[i].id), "d%03zu", i);
	for (op = 0; op < 3000; op++) {
		size_t d = ((seed = seed * 1103515245 + 12345) >> 16) % 120;
		size_t nw = ((seed = seed * 1103515245 + 12345) >> 16) % 12;
		size_t len = 0;

		if (((seed >> 8) & 7) == 0) {
			cr_assert_eq(text_index_del(idx, docs[d].id),
				     docs[d].live ? 0 : -ENOENT);
			docs[d].live = 0;
		} else {
			docs[d].text[0] = '\0';
			for (j = 0; j < nw; j++) {
				const char *w =
					words[((seed = seed * 1103515245 +
						       12345) >>
					       16) %
					      (sizeof(words) / sizeof(*words))];
				len += (size_t)sprintf(docs[d].text + len,
						       "%s ", w);
			}
			cr_assert_eq(text_index_put(idx, docs[d].id,
						    docs[d].text, len),
				     0);
			docs[d].live = 1;
		}
		if (op % 700 == 699)
			cr_assert_eq(text_index_compact(idx), 0);
		if (op % 100 != 99)
			continue;
		for (i = 0; i < sizeof(queries) / sizeof(*queries); i++) {
			struct text_results r;

			m = model_search(docs, 120, queries[i], want);
			cr_assert_eq(text_index_search(idx, queries[i], 200,
						       NULL, NULL, &r),
				     0);
			cr_assert_eq(r.n, m, "op %d \"%s\": %zu hits, want %zu",
				     op, queries[i], r.n, m);
			for (j = 0; j < m; j++)
				cr_assert_float_eq(r.hits[j].score, want[j],
						   1e-9, "op %d hit %zu", op,
						   j);
			text_results_free(&r);
		}
	}
	text_index_free(idx);
}

struct churn {
	struct text_index *idx;
	int writer;
	int failures;
};

static void *churn_run(void *arg)
{
	struct churn *c = arg;
	char id[16], text[64];
	int i;

	for (i = 0; i < 400; i++) {
		struct text_results r;
		size_t j;

		snprintf(id, sizeof(id), "n%d", i % 50);
		if (c->writer) {
			snprintf(text, sizeof(text), "alpha beta%d gamma%d",
				 i % 7, i);
			if (i % 5 == 4)
				text_index_del(c->idx, id);
			else if (text_index_put(c->idx, id, text, strlen(text)))
				c->failures++;
			continue;
		}
		if (text_index_search(c->idx, "alpha beta3", 10, NULL, NULL,
				      &r)) {
			c->failures++;
			continue;
		}
		for (j = 1; j < r.n; j++)
			if (r.hits[j].score > r.hits[j - 1].score)
				c->failures++;
		text_results_free(&r);
	}
	return NULL;
}

Test(bm25, concurrent_searches_and_writes_are_safe)
{
	struct text_index *idx;
	struct churn c[4];
	pthread_t th[4];
	int i;

	cr_assert_eq(text_index_new(&idx), 0);
	for (i = 0; i < 4; i++) {
		c[i] = (struct churn){ .idx = idx, .writer = i < 2 };
		cr_assert_eq(pthread_create(&th[i], NULL, churn_run, &c[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(c[i].failures, 0);
	}
	text_index_free(idx);
}

/* --- text_persist -------------------------------------------------------- */

/* A growing buffer that text_index_save() writes into. */
struct membuf {
	unsigned char *p;
	size_t len, cap;
	int calls, fail_at, err; /* fail_at: fail the n-th call (1-based) */
};

static int membuf_emit(void *ctx, const void *data, size_t len)
{
	struct membuf *b = ctx;

	cr_assert_gt(len, 0, "emit of nothing");
	if (++b->calls == b->fail_at)
		return b->err;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;

		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		cr_assert_not_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

/* The saved bytes of idx, in a buffer of exactly their size. */
static unsigned char *save_bytes(struct text_index *idx, size_t *len)
{
	struct membuf b = { 0 };
	unsigned char *p;

	cr_assert_eq(text_index_save(idx, membuf_emit, &b), 0);
	*len = b.len;
	p = malloc(b.len ? b.len : 1);
	cr_assert_not_null(p);
	memcpy(p, b.p, b.len);
	free(b.p);
	return p;
}

static struct text_index *round_trip(struct text_index *idx)
{
	struct text_index *out;
	unsigned char *bytes;
	size_t len;

	bytes = save_bytes(idx, &len);
	cr_assert_eq(text_index_load(bytes, len, &out), 0);
	free(bytes);
	return out;
}

static unsigned persist_rand(unsigned *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return (*seed >> 16) & 0x7fff;
}

/* Words of skewed frequency, some stemming together, some stopwords. */
static const char *const persist_words[] = {
	"flow",	  "flows",   "flowing", "wing",	    "wings",  "shock",
	"the",	  "of",	     "and",	"heat",	    "heated", "boundary",
	"layer",  "layers",  "mach",	"pressure", "body",   "cone",
	"plate",  "slip",    "stream",	"naïve",    "日本",   "supersonic",
	"nozzle", "laminar", "vortex",	"drag",	    "lift",   "a",
};

/* Writes a random text of up to 39 words into text (>= 512 bytes). */
static size_t persist_text(unsigned *seed, char *text)
{
	size_t nw = persist_rand(seed) % 40, len = 0, j;
	size_t nwords = sizeof(persist_words) / sizeof(*persist_words);

	text[0] = '\0';
	for (j = 0; j < nw; j++) {
		unsigned r = persist_rand(seed);

		/* one word in four is rare: w0..w999 */
		if (r % 4 == 0)
			len += (size_t)sprintf(text + len, "w%u ",
					       persist_rand(seed) % 1000);
		else
			len += (size_t)sprintf(
				text + len, "%s ",
				persist_words[(r / 4) * (r / 4) % 97 % nwords]);
	}
	return len;
}

static void persist_query(unsigned *seed, char *q)
{
	size_t nw = 1 + persist_rand(seed) % 4, len = 0, j;
	size_t nwords = sizeof(persist_words) / sizeof(*persist_words);

	q[0] = '\0';
	for (j = 0; j < nw; j++) {
		unsigned r = persist_rand(seed);

		if (r % 3 == 0)
			len += (size_t)sprintf(q + len, "w%u ",
					       persist_rand(seed) % 1000);
		else
			len += (size_t)sprintf(q + len, "%s ",
					       persist_words[r % nwords]);
	}
}

/* Same hits, same order, bit-identical scores. */
static void assert_same_search(struct text_index *a, struct text_index *b,
			       const char *query, size_t k)
{
	struct text_results ra, rb;
	size_t i;

	cr_assert_eq(text_index_search(a, query, k, NULL, NULL, &ra), 0);
	cr_assert_eq(text_index_search(b, query, k, NULL, NULL, &rb), 0);
	cr_assert_eq(ra.n, rb.n, "\"%s\": %zu hits, want %zu", query, rb.n,
		     ra.n);
	for (i = 0; i < ra.n; i++) {
		cr_assert_str_eq(ra.hits[i].id, rb.hits[i].id, "\"%s\" hit %zu",
				 query, i);
		cr_assert(ra.hits[i].score == rb.hits[i].score,
			  "\"%s\" hit %zu: %.17g, want %.17g", query, i,
			  rb.hits[i].score, ra.hits[i].score);
	}
	text_results_free(&ra);
	text_results_free(&rb);
}

static void assert_same_searches(struct text_index *a, struct text_index *b,
				 unsigned seed, int n)
{
	char q[128];
	int i;

	for (i = 0; i < n; i++) {
		persist_query(&seed, q);
		assert_same_search(a, b, q, i % 2 ? 10 : 100000);
	}
	assert_same_search(a, b, "the of and", 10);
	assert_same_search(a, b, "", 10);
	assert_same_search(a, b, "unknownword", 10);
}

static void assert_same_stats(struct text_index *a, struct text_index *b)
{
	struct text_index_stats sa, sb;

	text_index_stats(a, &sa);
	text_index_stats(b, &sb);
	cr_assert_eq(sa.docs, sb.docs);
	cr_assert_eq(sa.n, sb.n);
	cr_assert(sa.avgdl == sb.avgdl, "avgdl %.17g, want %.17g", sb.avgdl,
		  sa.avgdl);
	cr_assert_eq(sa.terms, sb.terms);
	cr_assert_eq(sa.postings, sb.postings);
	cr_assert_eq(sa.dead, sb.dead);
}

/* Puts ndocs random documents "d0".., then replaces and deletes some. */
static void persist_fill(struct text_index *idx, unsigned *seed, int ndocs,
			 int churn)
{
	char id[32], text[512];
	size_t len;
	int i;

	for (i = 0; i < ndocs; i++) {
		snprintf(id, sizeof(id), "d%d", i);
		len = persist_text(seed, text);
		cr_assert_eq(text_index_put(idx, id, text, len), 0);
	}
	for (i = 0; i < churn; i++) {
		snprintf(id, sizeof(id), "d%u", persist_rand(seed) % ndocs);
		if (i % 3 == 0) {
			int rc = text_index_del(idx, id);

			cr_assert(rc == 0 || rc == -ENOENT);
		} else {
			len = persist_text(seed, text);
			cr_assert_eq(text_index_put(idx, id, text, len), 0);
		}
	}
}

Test(text_persist, round_trip_keeps_results_scores_and_stats)
{
	struct text_index *a, *b, *c;
	struct text_index_stats sa, sb;
	unsigned char *bytes, *again, *compacted;
	size_t len, len2, len3;
	unsigned seed = 7;

	cr_assert_eq(text_index_new(&a), 0);
	persist_fill(a, &seed, 3000, 1500);
	text_index_stats(a, &sa);
	cr_assert_gt(sa.dead, 0, "the save must have dead postings to drop");
	bytes = save_bytes(a, &len);
	cr_assert_eq(text_index_load(bytes, len, &b), 0);
	text_index_stats(b, &sb);
	cr_assert_eq(sb.dead, 0);
	cr_assert_eq(sb.postings, sa.postings - sa.dead);
	cr_assert_leq(sb.memory_bytes, sa.memory_bytes);
	assert_same_searches(a, b, 1, 300);

	/* The saved form is the compacted index's, and it is stable. */
	cr_assert_eq(text_index_compact(a), 0);
	text_index_stats(a, &sa);
	cr_assert_leq(sb.memory_bytes, sa.memory_bytes);
	assert_same_stats(a, b);
	compacted = save_bytes(a, &len2);
	cr_assert_eq(len2, len);
	cr_assert_eq(memcmp(compacted, bytes, len), 0);
	again = save_bytes(b, &len3);
	cr_assert_eq(len3, len);
	cr_assert_eq(memcmp(again, bytes, len), 0);
	c = round_trip(b);
	assert_same_stats(b, c);
	assert_same_searches(a, c, 2, 50);
	free(bytes);
	free(again);
	free(compacted);
	text_index_free(a);
	text_index_free(b);
	text_index_free(c);
}

Test(text_persist, updates_after_load_match_a_built_index)
{
	struct text_index *a, *b;
	struct text_index_stats sa, sb;
	char id[32], text[512];
	unsigned seed = 11, ops = 12;
	uint64_t max_dead = 0;
	int i, compacted = 0;
	size_t len;

	cr_assert_eq(text_index_new(&a), 0);
	persist_fill(a, &seed, 2000, 600);
	b = round_trip(a);
	/*
	 * The same operations on both: new documents, replaced and deleted
	 * loaded ones, enough of them for b to compact by itself.
	 */
	for (i = 0; i < 4000; i++) {
		unsigned r = persist_rand(&ops);

		if (r % 4 == 0) {
			snprintf(id, sizeof(id), "new%d", i);
		} else {
			snprintf(id, sizeof(id), "d%u",
				 persist_rand(&ops) % 2000);
		}
		if (r % 4 == 1) {
			cr_assert_eq(text_index_del(b, id),
				     text_index_del(a, id));
		} else {
			len = persist_text(&ops, text);
			cr_assert_eq(text_index_put(a, id, text, len), 0);
			cr_assert_eq(text_index_put(b, id, text, len), 0);
		}
		text_index_stats(b, &sb);
		compacted |= sb.dead < max_dead;
		if (sb.dead > max_dead)
			max_dead = sb.dead;
		if (i % 500 == 499)
			assert_same_searches(a, b, (unsigned)i, 20);
	}
	cr_assert(compacted, "the loaded index never compacted by itself");
	text_index_stats(a, &sa);
	cr_assert_eq(sa.docs, sb.docs);
	cr_assert_eq(sa.n, sb.n);
	cr_assert(sa.avgdl == sb.avgdl);
	cr_assert_eq(sa.terms, sb.terms);
	assert_same_searches(a, b, 3, 200);
	cr_assert_eq(text_index_compact(a), 0);
	cr_assert_eq(text_index_compact(b), 0);
	assert_same_stats(a, b);
	text_index_free(a);
	text_index_free(b);
}

Test(text_persist, empty_index_round_trips)
{
	struct text_index *a, *b;
	struct text_index_stats st;
	struct text_results r;

	cr_assert_eq(text_index_new(&a), 0);
	b = round_trip(a);
	assert_same_stats(a, b);
	text_index_stats(b, &st);
	cr_assert_eq(st.docs, 0);
	cr_assert_eq(st.terms, 0);
	cr_assert_eq(text_index_search(b, "anything", 10, NULL, NULL, &r), 0);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(text_index_del(b, "x"), -ENOENT);
	cr_assert_eq(text_index_put(a, "x", "some words", 10), 0);
	cr_assert_eq(text_index_put(b, "x", "some words", 10), 0);
	assert_same_search(a, b, "words", 10);
	text_index_free(b);

	/* no documents left, but their terms */
	cr_assert_eq(text_index_del(a, "x"), 0);
	b = round_trip(a);
	text_index_stats(b, &st);
	cr_assert_eq(st.docs, 0);
	cr_assert_eq(st.terms, 2);
	cr_assert_eq(st.postings, 0);
	cr_assert_eq(text_index_put(a, "y", "more words", 10), 0);
	cr_assert_eq(text_index_put(b, "y", "more words", 10), 0);
	assert_same_search(a, b, "words more", 10);
	text_index_free(a);
	text_index_free(b);
}

Test(text_persist, documents_without_tokens_survive)
{
	struct text_index *a = tiny_index(), *b;

	cr_assert_eq(text_index_put(a, "empty", "the and of", 10), 0);
	cr_assert_eq(text_index_put(a, "blank", "", 0), 0);
	b = round_trip(a);
	assert_same_stats(a, b);
	assert_same_search(a, b, "cat fish dog", 10);
	cr_assert_eq(text_index_del(b, "blank"), 0);
	cr_assert_eq(text_index_del(b, "empty"), 0);
	cr_assert_eq(text_index_del(a, "blank"), 0);
	cr_assert_eq(text_index_del(a, "empty"), 0);
	assert_same_stats(a, b);
	text_index_free(a);
	text_index_free(b);
}

Test(text_persist, bigram_option_and_parameters_are_preserved)
{
	struct text_index_opts o = { 0.9, 0.4, TEXT_BM25_BIGRAM_WEIGHT };
	struct text_index *a, *b;
	unsigned seed = 5;

	cr_assert_eq(text_index_new_opts(&o, &a), 0);
	persist_fill(a, &seed, 500, 200);
	b = round_trip(a);
	/* scores depend on k1, b and the bigram weight */
	assert_same_searches(a, b, 4, 100);
	assert_same_search(a, b, "heat flow boundary layer", 10);
	cr_assert_eq(text_index_compact(a), 0);
	assert_same_stats(a, b);
	/* new documents get bigrams too */
	cr_assert_eq(text_index_put(a, "p", "boundary layer heat", 19), 0);
	cr_assert_eq(text_index_put(b, "p", "boundary layer heat", 19), 0);
	assert_same_stats(a, b);
	assert_same_search(a, b, "boundary layer heat", 10);
	text_index_free(a);
	text_index_free(b);
}

/* A small index with a bit of everything, for the malformed input tests. */
static struct text_index *persist_small(void)
{
	struct text_index *idx;
	unsigned seed = 3;

	cr_assert_eq(text_index_new(&idx), 0);
	persist_fill(idx, &seed, 12, 6);
	cr_assert_eq(text_index_put(idx, "none", "the of", 6), 0);
	cr_assert_eq(text_index_put(idx, "long",
				    "flow flow flow flow flow flow flow flow "
				    "flow flow wing wing wing",
				    53),
		     0);
	return idx;
}

Test(text_persist, truncated_input_is_einval)
{
	struct text_index *idx = persist_small(), *out;
	unsigned char *bytes, *cut;
	size_t len, n;

	bytes = save_bytes(idx, &len);
	for (n = 0; n < len; n++) {
		/* exactly n bytes on the heap: ASan sees a read past them */
		cut = malloc(n ? n : 1);
		cr_assert_not_null(cut);
		memcpy(cut, bytes, n);
		out = (struct text_index *)cut;
		cr_assert_eq(text_index_load(cut, n, &out), -EINVAL,
			     "%zu of %zu bytes", n, len);
		cr_assert_null(out);
		free(cut);
	}
	/* and so are trailing bytes */
	cut = malloc(len + 1);
	cr_assert_not_null(cut);
	memcpy(cut, bytes, len);
	cut[len] = 0;
	cr_assert_eq(text_index_load(cut, len + 1, &out), -EINVAL);
	free(cut);
	cr_assert_eq(text_index_load(NULL, 0, &out), -EINVAL);
	cr_assert_eq(text_index_load(bytes, len, NULL), -EINVAL);
	free(bytes);
	text_index_free(idx);
}

/* Adds delta to the little-endian integer of `size` bytes at p. */
static void bump_le(unsigned char *p, size_t size, int delta)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	v += (uint64_t)(int64_t)delta;
	for (i = 0; i < size; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

Test(text_persist, wrong_header_fields_are_einval)
{
	/* offsets and sizes in the header (see text_bm25_io.c) */
	static const size_t fields[][2] = {
		{ 0, 1 },  /* magic */
		{ 7, 1 },  /* magic */
		{ 8, 4 },  /* version */
		{ 12, 4 }, /* flags */
		{ 40, 4 }, /* ndocs */
		{ 44, 4 }, /* nterms */
		{ 48, 8 }, /* postings */
		{ 56, 8 }, /* total_len */
		{ 64, 8 }, /* dict_bytes */
	};
	struct text_index *idx = persist_small(), *out;
	unsigned char *bytes;
	size_t len, i;
	int delta;

	bytes = save_bytes(idx, &len);
	for (i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		for (delta = -1; delta <= 1; delta += 2) {
			bump_le(bytes + fields[i][0], fields[i][1], delta);
			cr_assert_eq(text_index_load(bytes, len, &out), -EINVAL,
				     "field at %zu %+d", fields[i][0], delta);
			bump_le(bytes + fields[i][0], fields[i][1], -delta);
		}
	}
	/* b = 2 is not an option text_index_new_opts() takes */
	bytes[24 + 7] = 0x40;
	bytes[24 + 6] = 0x00;
	cr_assert_eq(text_index_load(bytes, len, &out), -EINVAL);
	free(bytes);
	text_index_free(idx);
}

Test(text_persist, duplicate_ids_and_terms_are_einval)
{
	struct text_index *idx, *out;
	unsigned char *bytes, *p;
	size_t len;

	cr_assert_eq(text_index_new(&idx), 0);
	cr_assert_eq(text_index_put(idx, "idA", "flow", 4), 0);
	cr_assert_eq(text_index_put(idx, "idB", "wing", 4), 0);
	bytes = save_bytes(idx, &len);
	p = memmem(bytes, len, "idB", 3);
	cr_assert_not_null(p);
	p[2] = 'A';
	cr_assert_eq(text_index_load(bytes, len, &out), -EINVAL);
	p[2] = 'B';
	cr_assert_eq(text_index_load(bytes, len, &out), 0);
	text_index_free(out);
	/* the dictionary: [length]key, "flow" then "wing" */
	p = memmem(bytes, len, "\x04wing", 5);
	cr_assert_not_null(p);
	memcpy(p + 1, "flow", 4);
	cr_assert_eq(text_index_load(bytes, len, &out), -EINVAL);
	free(bytes);
	text_index_free(idx);
}

Test(text_persist, duplicates_far_apart_are_einval)
{
	static const char *const dups[][2] = {
		{ "t011", "t010" }, /* next to each other */
		{ "t050", "t010" }, /* far apart */
		{ "t099", "t000" }, /* first and last */
	};
	struct text_index *idx, *out;
	unsigned char *bytes, *p;
	char text[600], key[6];
	size_t len, n = 0, i;

	for (i = 0; i < 100; i++)
		n += (size_t)sprintf(text + n, "t%03zu ", i);
	cr_assert_eq(text_index_new(&idx), 0);
	cr_assert_eq(text_index_put(idx, "d", text, n), 0);
	bytes = save_bytes(idx, &len);
	for (i = 0; i < sizeof(dups) / sizeof(*dups); i++) {
		snprintf(key, sizeof(key), "\x04%s", dups[i][0]);
		p = memmem(bytes, len, key, 5);
		cr_assert_not_null(p);
		memcpy(p + 1, dups[i][1], 4);
		cr_assert_eq(text_index_load(bytes, len, &out), -EINVAL,
			     "%s as %s", dups[i][0], dups[i][1]);
		memcpy(p + 1, dups[i][0], 4);
	}
	cr_assert_eq(text_index_load(bytes, len, &out), 0);
	text_index_free(out);
	free(bytes);
	text_index_free(idx);

	/* and ids: id000..id099, each saved as its bytes after its length */
	cr_assert_eq(text_index_new(&idx), 0);
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "id%03zu", i);
		cr_assert_eq(text_index_put(idx, key, "flow", 4), 0);
	}
	bytes = save_bytes(idx, &len);
	for (i = 0; i < sizeof(dups) / sizeof(*dups); i++) {
		char from[6], to[6];

		snprintf(from, sizeof(from), "id%s", dups[i][0] + 1);
		snprintf(to, sizeof(to), "id%s", dups[i][1] + 1);
		p = memmem(bytes, len, from, 5);
		cr_assert_not_null(p);
		memcpy(p, to, 5);
		cr_assert_eq(text_index_load(bytes, len, &out), -EINVAL,
			     "%s as %s", from, to);
		memcpy(p, from, 5);
	}
	cr_assert_eq(text_index_load(bytes, len, &out), 0);
	text_index_free(out);
	free(bytes);
	text_index_free(idx);
}

/* Uses an index that loaded from corrupted bytes as any other. */
static void exercise(struct text_index *idx)
{
	static const char *const queries[] = { "flow wing", "heat of the layer",
					       "w5 w17 naïve", "日本 mach" };
	struct text_index_stats st;
	struct text_results r;
	struct membuf b = { 0 };
	char id[32];
	size_t i;
	int d;

	text_index_stats(idx, &st);
	for (i = 0; i < sizeof(queries) / sizeof(*queries); i++) {
		cr_assert_eq(
			text_index_search(idx, queries[i], 5, NULL, NULL, &r),
			0);
		text_results_free(&r);
	}
	for (d = 0; d < 24; d++) {
		snprintf(id, sizeof(id), "d%d", d);
		text_index_del(idx, id);
	}
	cr_assert_eq(text_index_put(idx, "d3", "flow heat w5", 12), 0);
	cr_assert_eq(text_index_put(idx, "fresh", "wing mach", 9), 0);
	cr_assert_eq(text_index_compact(idx), 0);
	cr_assert_eq(text_index_search(idx, "flow wing", 5, NULL, NULL, &r), 0);
	text_results_free(&r);
	cr_assert_eq(text_index_save(idx, membuf_emit, &b), 0);
	free(b.p);
}

Test(text_persist, corrupted_bytes_are_einval_or_a_working_index)
{
	struct text_index *idx = persist_small(), *out;
	unsigned char *bytes, *bad;
	size_t len, i;
	unsigned seed = 1234;
	int trial, flips, loaded = 0;

	bytes = save_bytes(idx, &len);
	bad = malloc(len);
	cr_assert_not_null(bad);
	for (trial = 0; trial < 1000; trial++) {
		memcpy(bad, bytes, len);
		flips = 1 + (int)(persist_rand(&seed) % 4);
		for (i = 0; i < (size_t)flips; i++) {
			size_t at = ((size_t)persist_rand(&seed) << 15 |
				     persist_rand(&seed)) %
				    len;

			/* a changed byte, or one bit, or a small number */
			switch (persist_rand(&seed) % 3) {
			case 0:
				bad[at] ^= (unsigned char)(1 +
							   persist_rand(&seed) %
								   255);
				break;
			case 1:
				bad[at] ^=
					(unsigned char)(1u << (persist_rand(
								       &seed) %
							       8));
				break;
			default:
				bad[at] = (unsigned char)(persist_rand(&seed) %
							  4);
			}
		}
		switch (text_index_load(bad, len, &out)) {
		case 0:
			loaded++;
			exercise(out);
			text_index_free(out);
			break;
		case -EINVAL:
			cr_assert_null(out);
			break;
		default:
			cr_assert_fail("trial %d: neither 0 nor -EINVAL",
				       trial);
		}
	}
	/* a byte of a tf or a term's text goes unnoticed: that is fine */
	cr_assert_lt(loaded, 1000);
	free(bad);
	free(bytes);
	text_index_free(idx);
}

Test(text_persist, emit_errors_stop_the_save)
{
	struct text_index *idx, *out;
	struct membuf b = { 0 };
	unsigned seed = 9;
	int calls, n;

	cr_assert_eq(text_index_new(&idx), 0);
	persist_fill(idx, &seed, 3000, 1000);
	cr_assert_eq(text_index_save(idx, membuf_emit, &b), 0);
	calls = b.calls;
	cr_assert_gt(calls, 1, "the test wants a save of several emits");
	free(b.p);
	for (n = 1; n <= calls; n++) {
		b = (struct membuf){ .fail_at = n, .err = -EIO };
		cr_assert_eq(text_index_save(idx, membuf_emit, &b), -EIO);
		cr_assert_eq(b.calls, n, "emit called after it failed");
		free(b.p);
	}
	/* the index is untouched and still saves whole */
	out = round_trip(idx);
	assert_same_searches(idx, out, 8, 20);
	cr_assert_eq(text_index_save(NULL, membuf_emit, &b), -EINVAL);
	cr_assert_eq(text_index_save(idx, NULL, &b), -EINVAL);
	text_index_free(out);
	text_index_free(idx);
}

struct persist_saver {
	struct text_index *idx;
	int failures;
};

static void *persist_save_run(void *arg)
{
	struct persist_saver *s = arg;
	struct text_index *out;
	struct membuf b;
	int i;

	for (i = 0; i < 20; i++) {
		b = (struct membuf){ 0 };
		if (text_index_save(s->idx, membuf_emit, &b) ||
		    text_index_load(b.p, b.len, &out))
			s->failures++;
		else
			text_index_free(out);
		free(b.p);
	}
	return NULL;
}

Test(text_persist, saves_alongside_writes_are_consistent)
{
	struct text_index *idx;
	struct persist_saver s;
	struct churn c[2];
	pthread_t th[3];
	int i;

	cr_assert_eq(text_index_new(&idx), 0);
	s = (struct persist_saver){ .idx = idx };
	for (i = 0; i < 2; i++) {
		c[i] = (struct churn){ .idx = idx, .writer = i == 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, churn_run, &c[i]), 0);
	}
	cr_assert_eq(pthread_create(&th[2], NULL, persist_save_run, &s), 0);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(c[0].failures + c[1].failures + s.failures, 0);
	text_index_free(idx);
}

/* --- cranfield ----------------------------------------------------------- */

/*
 * Indexes the first 200 Cranfield abstracts and checks that query 1 (on
 * aeroelastic models of heated high speed aircraft) finds its judged
 * documents among them near the top.
 */
Test(cranfield, bm25_ranks_judged_documents_first)
{
	const char *shared = getenv("LODEFS_SHARED");
	char path[4096], id[16];
	char *all, *p, *next;
	size_t len, i, hits = 0;
	struct text_index *idx;
	struct text_results r;
	int doc = 0;
	static const int rel[] = { 12, 13, 14, 15, 29,	30,  31,  37,  51, 52,
				   56, 57, 66, 95, 102, 142, 184, 185, 195 };

	snprintf(path, sizeof(path), "%s/fixtures/cranfield/cran.all.1400",
		 shared ? shared : "../shared");
	all = slurp(path, &len);
	if (!all)
		cr_skip_test("no Cranfield collection at %s", path);
	cr_assert_eq(text_index_new(&idx), 0);
	for (p = strstr(all, ".I "); p && doc < 200; p = next) {
		next = strstr(p + 3, "\n.I ");
		snprintf(id, sizeof(id), "%d", atoi(p + 3));
		cr_assert_eq(
			text_index_put(idx, id, p,
				       next ? (size_t)(next - p) : strlen(p)),
			0);
		doc++;
	}
	cr_assert_eq(doc, 200);
	cr_assert_eq(text_index_search(idx,
				       "what similarity laws must be obeyed "
				       "when constructing aeroelastic models "
				       "of heated high speed aircraft .",
				       10, NULL, NULL, &r),
		     0);
	cr_assert_eq(r.n, 10);
	for (i = 0; i < r.n; i++) {
		size_t j;

		for (j = 0; j < sizeof(rel) / sizeof(*rel); j++)
			hits += atoi(r.hits[i].id) == rel[j];
	}
	/* BM25 gets 7 of them, with document 51 first */
	cr_assert_geq(hits, 5, "only %zu judged documents in the top 10", hits);
	cr_assert_str_eq(r.hits[0].id, "51");
	text_results_free(&r);
	text_index_free(idx);
	free(all);
}

/* --- text_prep: documents analysed ahead ---------------------------------- */

/*
 * Two indexes fed the same puts and deletes, one through text_index_put,
 * the other through a text_prep batch analysed first (several documents
 * sharing terms, a replacement, empty and stopword-only texts): the same
 * saved bytes, with and without bigrams.
 */
#define LONG64                             \
	"abcdefghijklmnopqrstuvwxyzabcdef" \
	"ghijklmnopqrstuvwxyzabcdefghings"

/*
 * Text i of prepared_equals_put: mostly persist_text's, and some that
 * the analysis treats apart: empty, stopwords only, words and pairs
 * repeated, non-ASCII words, and words cut at TEXT_TOKEN_MAX bytes: one
 * of a-z only (stemmed), the same 64 letters followed by a digit past
 * the cut (not stemmed: the word was not made of a-z only) and by a
 * non-ASCII letter.
 */
static size_t prep_text(int i, unsigned *seed, char *text)
{
	static const char *const special[] = {
		"",
		"the and of a",
		"running runs running ran runner running runs",
		"na\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
		"na\xc3\xafve "
		"running",
		/* 64 letters ending in "ings", which the stemmer cuts */
		LONG64 " stemming",
		LONG64 "7 stemming",
		LONG64 "\xc3\xa9 stemming the " LONG64 "es",
	};
	size_t n = sizeof(special) / sizeof(*special);

	if (i >= 17 && (size_t)(i - 17) < n) {
		snprintf(text, 512, "%s", special[i - 17]);
		return strlen(text);
	}
	return persist_text(seed, text);
}

static void prepared_equals_put(const struct text_index_opts *opts)
{
	struct text_index *a, *b, *c;
	struct text_prep *p, *pq;
	struct text_results ra, rc;
	unsigned seed = 7, qseed;
	char q[256];
	size_t j;
	char id[32], text[512];
	uint32_t doc[400];
	size_t len, la, lb;
	unsigned char *sa, *sb;
	int i;

	cr_assert_eq(text_index_new_opts(opts, &a), 0);
	cr_assert_eq(text_index_new_opts(opts, &b), 0);
	cr_assert_eq(text_prep_new(b, &p), 0);
	/* analysed in one pass, before any of them is put */
	for (i = 0; i < 400; i++) {
		len = prep_text(i, &seed, text);
		cr_assert_eq(text_prep_add(p, text, len, &doc[i]), 0);
		cr_assert_eq(doc[i], (uint32_t)i);
		snprintf(id, sizeof(id), "d%d", i % 350); /* 50 replaced */
		cr_assert_eq(text_index_put(a, id, text, len), 0);
		if (i == 200)
			cr_assert_eq(text_index_del(a, "d3"), 0);
	}
	cr_assert_eq(text_prep_count(p), 400);
	for (i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "d%d", i % 350);
		cr_assert_eq(text_index_put_prepared(b, id, p, doc[i]), 0);
		if (i == 200)
			cr_assert_eq(text_index_del(b, "d3"), 0);
	}
	cr_assert_eq(text_index_put_prepared(b, "x", p, 400), -EINVAL);
	sa = save_bytes(a, &la);
	sb = save_bytes(b, &lb);
	cr_assert_eq(la, lb);
	cr_assert_eq(memcmp(sa, sb, la), 0);
	free(sb);
	/*
	 * The batch keeps b's term numbers: the same batch put into another
	 * index (whose numbers differ: it has seen other terms first) must
	 * not use them.
	 */
	cr_assert_eq(text_index_new_opts(opts, &c), 0);
	cr_assert_eq(text_index_put(c, "other", "zebra quokka and wombat", 23),
		     0);
	cr_assert_eq(text_index_del(c, "other"), 0);
	for (i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "d%d", i % 350);
		cr_assert_eq(text_index_put_prepared(c, id, p, doc[i]), 0);
		if (i == 200)
			cr_assert_eq(text_index_del(c, "d3"), 0);
	}
	qseed = 11;
	for (i = 0; i < 200; i++) {
		persist_query(&qseed, q);
		cr_assert_eq(text_index_search(a, q, 20, NULL, NULL, &ra), 0);
		cr_assert_eq(text_index_search(c, q, 20, NULL, NULL, &rc), 0);
		cr_assert_eq(ra.n, rc.n, "%s", q);
		for (j = 0; j < ra.n; j++) {
			cr_assert_str_eq(ra.hits[j].id, rc.hits[j].id);
			cr_assert_eq(ra.hits[j].score, rc.hits[j].score);
		}
		text_results_free(&ra);
		text_results_free(&rc);
	}
	text_index_free(c);
	/* analysed and put in turns: the cache grows with the batch */
	seed = 7;
	cr_assert_eq(text_index_new_opts(opts, &c), 0);
	cr_assert_eq(text_prep_new(c, &pq), 0);
	for (i = 0; i < 400; i++) {
		len = prep_text(i, &seed, text);
		cr_assert_eq(text_prep_add(pq, text, len, &doc[i]), 0);
		snprintf(id, sizeof(id), "d%d", i % 350);
		cr_assert_eq(text_index_put_prepared(c, id, pq, doc[i]), 0);
		if (i == 200)
			cr_assert_eq(text_index_del(c, "d3"), 0);
	}
	sb = save_bytes(c, &lb);
	cr_assert_eq(la, lb);
	cr_assert_eq(memcmp(sa, sb, la), 0);
	free(sa);
	free(sb);
	text_prep_free(pq);
	text_index_free(c);
	text_prep_free(p);
	text_index_free(a);
	text_index_free(b);
}

Test(text_prep, prepared_puts_build_the_index_puts_build)
{
	struct text_index_opts bigrams = { .k1 = TEXT_BM25_K1,
					   .b = TEXT_BM25_B,
					   .bigram_weight =
						   TEXT_BM25_BIGRAM_WEIGHT };
	struct text_index *plain, *bi;
	struct text_prep *p;
	uint32_t d;

	prepared_equals_put(NULL);
	prepared_equals_put(&bigrams);
	/* a batch made for one bigram setting is refused by the other */
	cr_assert_eq(text_index_new(&plain), 0);
	cr_assert_eq(text_index_new_opts(&bigrams, &bi), 0);
	cr_assert_eq(text_prep_new(plain, &p), 0);
	cr_assert_eq(text_prep_add(p, "some words", 10, &d), 0);
	cr_assert_eq(text_index_put_prepared(bi, "x", p, d), -EINVAL);
	cr_assert_eq(text_index_put_prepared(plain, "x", p, d), 0);
	text_index_free(bi);
	text_prep_free(p);
	text_index_free(plain);
}
