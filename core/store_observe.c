/* store_observe.c - the keyword index follows docstore/data, with hints. */
#include <errno.h>
#include <pthread.h>
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

/*
 * The keyword index of a batch analysed ahead (an import) is built on a
 * thread of its own while the engine applies the batch on this one: the
 * observer queues each change of the index, in batch order, and the
 * thread makes them in that order, so the index is the one the observer
 * would build alone; the commit returns once the queue is empty.  The
 * changes are the observer's own (the text found, the document analysed
 * ahead, the removal), only deferred.  Short of memory for the queue,
 * the observer waits for it to empty and goes on alone.
 */
#define STORE_KWQ_BLK 256

struct store_kwop {
	const char *key; /* a hint's (borrowed) or `own` */
	char *own;	 /* key, then the text, one block */
	const char *text;
	size_t text_len;
	int64_t prep; /* a document of the prep, STORE_HINT_TEXT or _NONE */
};

struct store_kwblk {
	struct store_kwblk *next;
	size_t n; /* ops published (under mu) */
	struct store_kwop op[STORE_KWQ_BLK];
};

struct store_kwq {
	struct text_index *idx;
	struct text_prep *prep;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_kwblk *head, *tail; /* the thread's, this one's */
	int done, waiting;
};

static _Thread_local struct store_kwq *store_kwq_cur;

static void store_kwop_apply(struct store_kwq *q, const struct store_kwop *o)
{
	if (o->prep >= 0) {
		/* as the observer would (it checked that the document fits) */
		if (text_index_put_prepared(q->idx, o->key, q->prep,
					    (uint32_t)o->prep))
			text_index_put_prepared(q->idx, o->key, q->prep,
						(uint32_t)o->prep);
	} else if (o->prep == STORE_HINT_TEXT) {
		text_index_put(q->idx, o->key, o->text, o->text_len);
	} else {
		text_index_del(q->idx, o->key);
	}
}

static void *store_kwq_run(void *arg)
{
	struct store_kwq *q = arg;
	struct store_kwblk *b = q->head, *next;
	size_t i = 0, n;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (i == b->n && !b->next && !q->done) {
			q->waiting = 1;
			pthread_cond_wait(&q->cv, &q->mu);
			q->waiting = 0;
		}
		if (i == b->n) {
			if (!b->next)
				break; /* done */
			/* a full block: this one no longer touches it */
			next = b->next;
			pthread_mutex_unlock(&q->mu);
			for (i = 0; i < b->n; i++)
				free(b->op[i].own);
			free(b);
			pthread_mutex_lock(&q->mu);
			b = next;
			q->head = b;
			i = 0;
			continue;
		}
		n = b->n;
		pthread_mutex_unlock(&q->mu);
		for (; i < n; i++)
			store_kwop_apply(q, &b->op[i]);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* A queue for the keyword index of a commit of h, or NULL (no thread). */
static struct store_kwq *store_kwq_start(struct store *s, struct store_hints *h)
{
	struct store_kwq *q;

	if (!h->prep || !text_prep_count(h->prep))
		return NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->head = q->tail = calloc(1, sizeof(*q->head));
	q->idx = s->bm25;
	q->prep = h->prep;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (!q->head || pthread_create(&q->th, NULL, store_kwq_run, q)) {
		pthread_cond_destroy(&q->cv);
		pthread_mutex_destroy(&q->mu);
		free(q->head);
		free(q);
		return NULL;
	}
	return q;
}

/* Waits for every change queued to be made, then frees q. */
static void store_kwq_finish(struct store_kwq *q)
{
	struct store_kwblk *b, *next;
	size_t i;

	pthread_mutex_lock(&q->mu);
	q->done = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->th, NULL);
	for (b = q->head; b; b = next) {
		next = b->next;
		for (i = 0; i < b->n; i++)
			free(b->op[i].own);
		free(b);
	}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/*
 * Queues a change of the keyword index (key borrowed from a hint, or
 * copied with the text): 0, or -ENOMEM after the queue was emptied and
 * dropped (the caller makes the change itself, in order).
 */
static int store_kw_queue(const char *key, const char *borrowed,
			  const char *text, size_t text_len, int64_t prep)
{
	struct store_kwq *q = store_kwq_cur;
	struct store_kwop *o;
	struct store_kwblk *b;
	size_t kl;

	if (q->tail->n == STORE_KWQ_BLK) {
		b = calloc(1, sizeof(*b));
		if (!b)
			goto fail;
		pthread_mutex_lock(&q->mu);
		q->tail->next = b;
		pthread_mutex_unlock(&q->mu);
		q->tail = b;
	}
	o = &q->tail->op[q->tail->n];
	memset(o, 0, sizeof(*o));
	o->prep = prep;
	if (borrowed) {
		o->key = borrowed;
	} else {
		kl = strlen(key) + 1;
		o->own = malloc(kl + text_len);
		if (!o->own)
			goto fail;
		memcpy(o->own, key, kl);
		if (text_len)
			memcpy(o->own + kl, text, text_len);
		o->key = o->own;
		o->text = o->own + kl;
		o->text_len = text_len;
	}
	pthread_mutex_lock(&q->mu);
	q->tail->n++;
	if (q->waiting)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
fail:
	store_kwq_cur = NULL;
	store_kwq_finish(q);
	return -ENOMEM;
}

/* The observer's changes of the keyword index, queued when there is one. */
static void store_kw_del(struct store *s, const char *key)
{
	if (store_kwq_cur &&
	    !store_kw_queue(key, NULL, NULL, 0, STORE_HINT_NONE))
		return;
	text_index_del(s->bm25, key);
}

static void store_kw_put(struct store *s, const char *key, const char *text,
			 size_t len)
{
	if (store_kwq_cur &&
	    !store_kw_queue(key, NULL, text, len, STORE_HINT_TEXT))
		return;
	text_index_put(s->bm25, key, text, len);
}

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
	store_kwq_cur = store_kwq_start(s, h);
	rc = commit(s->eng, b);
	if (store_kwq_cur)
		store_kwq_finish(store_kwq_cur);
	store_kwq_cur = NULL;
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
		store_kw_del(s, key);
		return;
	}
	hint = store_hints_cur && !flags
		       ? store_hint_find(store_hints_cur, key, data, len)
		       : NULL;
	if (hint && hint->prep == STORE_HINT_NONE) {
		store_kw_del(s, key);
		return;
	}
	if (hint && hint->prep >= 0 && store_kwq_cur &&
	    text_prep_fits(s->bm25, store_hints_cur->prep,
			   (uint32_t)hint->prep) &&
	    !store_kw_queue(key, hint->key, NULL, 0, hint->prep))
		return;
	if (hint && hint->prep >= 0 &&
	    text_index_put_prepared(s->bm25, key, store_hints_cur->prep,
				    (uint32_t)hint->prep) == 0)
		return;
	if (hint && hint->prep == STORE_HINT_TEXT) {
		store_kw_put(s, key, hint->text, hint->text_len);
		return;
	}
	/*
	 * Only the text is needed: the pull reader finds it without building
	 * the tree jansson would (that was a quarter of an import's time).
	 * What it cannot settle exactly as jansson would goes to jansson.
	 */
	rc = store_node_text(&s->obs_buf, data, len, &t, &tlen);
	if (rc == 1) {
		store_kw_put(s, key, t, tlen);
		return;
	}
	if (rc == 0) {
		store_kw_del(s, key);
		return;
	}
	w = json_loadb(data, len, 0, NULL);
	text = json_object_get(json_object_get(w, "__data__"), "text");
	if (json_is_string(text))
		store_kw_put(s, key, json_string_value(text),
			     json_string_length(text));
	else
		store_kw_del(s, key);
	json_decref(w);
}
