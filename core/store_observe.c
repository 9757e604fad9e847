/* store_observe.c - the keyword index follows docstore/data, with hints. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/pyjson.h"
#include "core/store_int.h"
#include "core/vec.h"

/*
 * The hints of the batch this thread is committing, set by
 * store_commit_hinted for the length of its engine_commit only: the
 * engine calls the observer in the committing thread.
 */
static _Thread_local struct store_hints *store_hints_cur;

/* Room for one more hint: 0 or -ENOMEM. */
static int store_hints_grow(struct store_hints *h)
{
	struct store_hint *v;
	size_t cap;

	if (h->n < h->cap)
		return 0;
	cap = h->cap ? h->cap * 2 : 16;
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

int store_hints_add(struct store_hints *h, const char *key, const char *json,
		    size_t json_len, const char *text, size_t text_len)
{
	size_t kl = strlen(key) + 1;
	struct store_hint *e;
	char *p;

	if (store_hints_grow(h))
		return -ENOMEM;
	p = malloc(kl + text_len);
	if (!p)
		return -ENOMEM;
	e = &h->v[h->n++];
	memcpy(p, key, kl);
	memcpy(p + kl, text, text_len);
	e->key = p;
	e->text = p + kl;
	e->text_len = text_len;
	e->json_len = json_len;
	e->json_hash = XXH3_64bits(json, json_len);
	e->prep = STORE_HINT_TEXT;
	return 0;
}

int store_hints_add_prep(struct store_hints *h, const char *key,
			 size_t json_len, uint64_t json_hash, int64_t prep)
{
	struct store_hint *e;
	char *k;

	if (store_hints_grow(h))
		return -ENOMEM;
	k = strdup(key);
	if (!k)
		return -ENOMEM;
	e = &h->v[h->n++];
	e->key = k;
	e->text = NULL;
	e->text_len = 0;
	e->json_len = json_len;
	e->json_hash = json_hash;
	e->prep = prep;
	return 0;
}

void store_hints_cut(struct store_hints *h, size_t n)
{
	while (h->n > n)
		free(h->v[--h->n].key);
	if (h->next > n)
		h->next = n;
}

void store_hints_free(struct store_hints *h)
{
	store_hints_cut(h, 0);
	free(h->v);
	h->v = NULL;
	h->cap = 0;
	text_prep_free(h->prep);
	h->prep = NULL;
}

int store_commit_hinted_with(struct store *s, struct engine_batch *b,
			     struct store_hints *h,
			     int (*commit)(struct engine *,
					   struct engine_batch *))
{
	int rc;

	h->next = 0;
	store_hints_cur = h;
	rc = commit(s->eng, b);
	store_hints_cur = NULL;
	return rc;
}

int store_commit_hinted(struct store *s, struct engine_batch *b,
			struct store_hints *h)
{
	return store_commit_hinted_with(s, b, h, engine_commit);
}

/*
 * The hint for the value `data` of node `key`, or NULL.  Values are
 * applied in batch order, as the hints were added, so the next one
 * usually matches; the hash proves that it describes these very bytes.
 * Only a few hints ahead are tried: a node without a hint (an import
 * leaves one out when it runs short of memory) must not cost a walk of
 * every hint after it, which for many such nodes would be quadratic.
 */
#define STORE_HINT_WINDOW 64
static const struct store_hint *store_hint_find(struct store_hints *h,
						const char *key,
						const void *data, size_t len)
{
	uint64_t hash = 0;
	int hashed = 0;
	size_t i;

	for (i = h->next; i < h->n && i - h->next < STORE_HINT_WINDOW; i++) {
		const struct store_hint *e = &h->v[i];

		if (e->json_len != len || strcmp(e->key, key) != 0)
			continue;
		if (!hashed) {
			hash = XXH3_64bits(data, len);
			hashed = 1;
		}
		if (e->json_hash == hash) {
			h->next = i + 1;
			return e;
		}
	}
	return NULL;
}

void store_textbuf_free(struct store_textbuf *tb)
{
	free(tb->text);
	free(tb->scratch);
	memset(tb, 0, sizeof(*tb));
}

void store_observe_free(struct store *s)
{
	store_textbuf_free(&s->obs_buf);
}

/* The first character of the value after the key just read. */
static char store_peek(const struct pyj_in *in)
{
	const char *q = in->p;

	while (q < in->end && (*q == ' ' || *q == '\t' || *q == '\n' ||
			       *q == '\r' || *q == ':'))
		q++;
	return q < in->end ? *q : '\0';
}

/* 1 if the decoded string is what jansson would load: no NUL, no surrogate. */
static int store_text_plain(const char *t, size_t n)
{
	const char *q = t, *end = t + n;

	if (memchr(t, 0, n))
		return 0;
	/* the reader decodes an unpaired surrogate escape to ED A0..BF xx */
	while ((q = memchr(q, 0xed, (size_t)(end - q))) != NULL) {
		if (q + 1 < end && (unsigned char)q[1] >= 0xa0)
			return 0;
		q++;
	}
	return 1;
}

/*
 * Walks the members of "__data__" (its '{' read): *found 1 and the text
 * copied if the last "text" is a string, 0 if it is anything else or
 * absent.  0, -1 (not what was expected) or -ENOMEM.
 */
static int store_data_text(struct store_textbuf *tb, struct pyj_in *in,
			   int *found, size_t *text_len)
{
	enum pyj_tok t;

	*found = 0;
	while ((t = pyj_next(in)) == PYJ_KEY) {
		if (in->slen != 4 || memcmp(in->str, "text", 4) != 0 ||
		    store_peek(in) != '"') {
			if (in->slen == 4 && memcmp(in->str, "text", 4) == 0)
				*found = 0; /* a text that is not a string */
			if (pyj_skip_value(in) == PYJ_ERROR)
				return -1;
			continue;
		}
		if (pyj_next(in) != PYJ_STR)
			return -1;
		if (in->slen + 1 > tb->text_cap) {
			size_t cap = tb->text_cap ? tb->text_cap : 4096;
			char *b;

			while (cap < in->slen + 1)
				cap *= 2;
			b = realloc(tb->text, cap);
			if (!b)
				return -ENOMEM;
			tb->text = b;
			tb->text_cap = cap;
		}
		memcpy(tb->text, in->str, in->slen);
		tb->text[in->slen] = '\0';
		*text_len = in->slen;
		*found = 1;
	}
	return t == PYJ_OBJ_END ? 0 : -1;
}

int store_node_text(struct store_textbuf *tb, const char *json, size_t len,
		    const char **text, size_t *text_len)
{
	struct pyj_in in;
	enum pyj_tok t = PYJ_ERROR;
	int found = 0, rc = 0;

	pyj_in_init(&in, json, len);
	in.scratch = tb->scratch;
	in.scratch_cap = tb->scratch_cap;
	if (pyj_next(&in) != PYJ_OBJ)
		rc = -1;
	/*
	 * json_loadb keeps the last value of a key that comes twice, so a
	 * later "__data__" (or "text") replaces what an earlier one said.
	 */
	while (!rc && (t = pyj_next(&in)) == PYJ_KEY) {
		if (in.slen != 8 || memcmp(in.str, "__data__", 8) != 0) {
			if (pyj_skip_value(&in) == PYJ_ERROR)
				rc = -1;
			continue;
		}
		found = 0;
		if (store_peek(&in) != '{') {
			if (pyj_skip_value(&in) == PYJ_ERROR)
				rc = -1;
			continue;
		}
		if (pyj_next(&in) != PYJ_OBJ)
			rc = -1;
		else
			rc = store_data_text(tb, &in, &found, text_len);
	}
	if (!rc && (t != PYJ_OBJ_END || pyj_next(&in) != PYJ_EOF))
		rc = -1;
	tb->scratch = in.scratch;
	tb->scratch_cap = in.scratch_cap;
	if (rc)
		return rc;
	if (!found)
		return 0;
	if (!store_text_plain(tb->text, *text_len))
		return -1;
	*text = tb->text;
	return 1;
}

void store_observe(void *arg, const char *coll, const char *key,
		   enum engine_type type, const void *data, size_t len,
		   unsigned flags)
{
	struct store *s = arg;
	const struct store_hint *hint;
	const char *t;
	size_t tlen;
	json_t *w, *text;
	int rc;

	atomic_fetch_add(&s->version, 1);
	if (flags & ENGINE_OBS_REMOTE)
		store_note_change(s, coll, key, flags);
	store_ann_observe(s->ann, coll, key, type, data, len, flags);
	/* a put names the row it wrote; anything else frees the key's row */
	vec_q8_set_observe(s->q8, coll, key,
			   type == ENGINE_VEC ? (const float *)data : NULL);
	if (strcmp(coll, STORE_C_DATA) != 0)
		return;
	/* A keyword index loaded from the checkpoint already has these. */
	if ((flags & ENGINE_OBS_CHECKPOINT) && s->bm25_loaded)
		return;
	if (type != ENGINE_JSON) {
		text_index_del(s->bm25, key);
		return;
	}
	hint = store_hints_cur && !flags
		       ? store_hint_find(store_hints_cur, key, data, len)
		       : NULL;
	if (hint && hint->prep == STORE_HINT_NONE) {
		text_index_del(s->bm25, key);
		return;
	}
	if (hint && hint->prep >= 0 &&
	    text_index_put_prepared(s->bm25, key, store_hints_cur->prep,
				    (uint32_t)hint->prep) == 0)
		return;
	if (hint && hint->prep == STORE_HINT_TEXT) {
		text_index_put(s->bm25, key, hint->text, hint->text_len);
		return;
	}
	/*
	 * Only the text is needed: the pull reader finds it without building
	 * the tree jansson would (that was a quarter of an import's time).
	 * What it cannot settle exactly as jansson would goes to jansson.
	 */
	rc = store_node_text(&s->obs_buf, data, len, &t, &tlen);
	if (rc == 1) {
		text_index_put(s->bm25, key, t, tlen);
		return;
	}
	if (rc == 0) {
		text_index_del(s->bm25, key);
		return;
	}
	w = json_loadb(data, len, 0, NULL);
	text = json_object_get(json_object_get(w, "__data__"), "text");
	if (json_is_string(text))
		text_index_put(s->bm25, key, json_string_value(text),
			       json_string_length(text));
	else
		text_index_del(s->bm25, key);
	json_decref(w);
}
