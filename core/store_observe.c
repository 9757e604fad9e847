/* store_observe.c - the keyword index follows docstore/data, with hints. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/store_int.h"

/*
 * The hints of the batch this thread is committing, set by
 * store_commit_hinted for the length of its engine_commit only: the
 * engine calls the observer in the committing thread.
 */
static _Thread_local struct store_hints *store_hints_cur;

int store_hints_add(struct store_hints *h, const char *key, const char *json,
		    size_t json_len, const char *text, size_t text_len)
{
	size_t kl = strlen(key) + 1;
	struct store_hint *e;
	char *p;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;

		e = realloc(h->v, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		h->v = e;
		h->cap = cap;
	}
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
}

int store_commit_hinted(struct store *s, struct engine_batch *b,
			struct store_hints *h)
{
	int rc;

	h->next = 0;
	store_hints_cur = h;
	rc = engine_commit(s->eng, b);
	store_hints_cur = NULL;
	return rc;
}

/*
 * The hint for the value `data` of node `key`, or NULL.  Values are
 * applied in batch order, as the hints were added, so the next one
 * usually matches; the hash proves that it describes these very bytes.
 */
static const struct store_hint *store_hint_find(struct store_hints *h,
						const char *key,
						const void *data, size_t len)
{
	uint64_t hash = 0;
	int hashed = 0;
	size_t i;

	for (i = h->next; i < h->n; i++) {
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

void store_observe(void *arg, const char *coll, const char *key,
		   enum engine_type type, const void *data, size_t len,
		   unsigned flags)
{
	struct store *s = arg;
	const struct store_hint *hint;
	json_t *w, *text;

	atomic_fetch_add(&s->version, 1);
	if (flags & ENGINE_OBS_REMOTE)
		store_note_change(s, coll, key, flags);
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
	if (hint) {
		text_index_put(s->bm25, key, hint->text, hint->text_len);
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
