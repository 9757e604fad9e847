/* persist_import.c - a persist file's text replaces what the file holds. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/persist_int.h"

/*
 * The text is read once, front to back, with the pull reader: values of
 * docstore/index_store collections are copied in compact form straight
 * into one engine batch, vectors are parsed into it as float32.  Nothing
 * is committed until the whole text has been checked, so a refusal
 * changes nothing.
 */

/* What a vector store file says of one id besides its vector. */
struct pim_vm {
	char *ref, *meta; /* compact JSON text, or NULL if not given */
	size_t ref_len, meta_len;
	int written; /* its record is in the batch */
};

struct pim_ix;

struct pim {
	struct store *s;
	struct pim_ix *ix; /* docstore.json: the nodes' keyword analysis */
	const char *name;  /* as given, for messages */
	char file[PERSIST_NAME_MAX];
	enum persist_kind kind;
	const char *prefix; /* of the collections a kv file holds */
	const char *data;
	size_t len;
	struct pyj_in in;
	struct engine_batch *b;
	json_t *keys, *extra; /* the file's record */
	char top[ENGINE_KEY_MAX + 1];
	size_t top_len;
	char key[ENGINE_KEY_MAX + 1];
	char *val, *rec; /* a value copied, a record being built */
	size_t vlen, vcap, rlen, rcap;
	char *chk; /* what the check of a scalar copied (pim_copy) */
	size_t clen, ccap;
	/* vector store files */
	char vcoll[STORE_NS_MAX + 32], mcoll[STORE_NS_MAX + 32];
	float *vec;
	size_t vec_cap;
	uint32_t dim;
	struct persist_ids vm_ids;
	struct pim_vm *vm;
	size_t vm_cap;
	int refs_done; /* text_id_to_ref_doc_id has been read */
	/* progress, and giving back the text already read */
	persist_progress_fn *progress;
	void *parg;
	size_t next_tick, released;
};

#define PIM_TICK	(4u << 20)
#define PIM_RELEASE_MIN (64u << 20)

static int pim_syntax(struct pim *p)
{
	return store_fail(-EINVAL, "%s: %s", p->name, p->in.err);
}

/*
 * Progress, and the pages of a large text read so far handed back to the
 * kernel: MADV_PAGEOUT reclaims clean file pages (the caller's mapping
 * reads them again if it ever needs them) and swaps out anonymous ones
 * at worst, so a mapped 1 GB file does not stay resident beside the
 * state built from it.
 */
static void pim_release(struct pim *p, size_t off)
{
#ifdef MADV_PAGEOUT
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t from =
		((uintptr_t)p->data + p->released + pg - 1) & ~(pg - 1);
	uintptr_t to = ((uintptr_t)p->data + off) & ~(pg - 1);

	if (p->len < PIM_RELEASE_MIN || to <= from)
		return;
	madvise((void *)from, to - from, MADV_PAGEOUT);
	p->released = to - (uintptr_t)p->data;
#else
	(void)p;
	(void)off;
#endif
}

static void pim_tick(struct pim *p)
{
	size_t off = pyj_in_offset(&p->in);

	if (off < p->next_tick)
		return;
	p->next_tick = off + PIM_TICK;
	if (p->progress)
		p->progress(p->parg, off, p->len);
	pim_release(p, off);
}

/* Copies the key just read into dst, checked as an engine key. */
static int pim_key(struct pim *p, const char *where, char *dst)
{
	const char *k = p->in.str;
	size_t n = p->in.slen;

	if (n == 0)
		return store_fail(-EINVAL, "%s: %s: an empty key", p->name,
				  where);
	if (n > ENGINE_KEY_MAX)
		return store_fail(-EINVAL,
				  "%s: %s: a key of %zu bytes (at most %d): "
				  "\"%.40s...\"",
				  p->name, where, n, ENGINE_KEY_MAX, k);
	if (memchr(k, 0, n))
		return store_fail(-EINVAL,
				  "%s: %s: the key \"%.200s\" holds "
				  "a NUL character",
				  p->name, where, k);
	if (!text_is_utf8(k, n))
		return store_fail(-EINVAL,
				  "%s: %s: a key is not valid UTF-8 (a lone "
				  "surrogate?)",
				  p->name, where);
	memcpy(dst, k, n);
	dst[n] = '\0';
	if (dst == p->top)
		p->top_len = n;
	return 0;
}

static int pim_engine(struct pim *p, int rc, const char *coll, const char *key)
{
	if (rc == -ENOMEM)
		return rc;
	return store_fail(rc, "%s: %s/%.200s: refused by the store", p->name,
			  coll, key);
}

/*
 * The first character of the value after the key just read, without
 * reading it: objects are walked member by member, anything else is
 * copied whole.
 */
static char pim_peek(const struct pim *p)
{
	const char *q = p->in.p;

	while (q < p->in.end && (*q == ' ' || *q == '\t' || *q == '\n' ||
				 *q == '\r' || *q == ':'))
		q++;
	return q < p->in.end ? *q : '\0';
}

static int pim_buf_put(char **buf, size_t *len, size_t *cap, const char *s,
		       size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 256;
		char *q;

		while (c < *len + n)
			c *= 2;
		q = realloc(*buf, c);
		if (!q)
			return -ENOMEM;
		*buf = q;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	return 0;
}

/*
 * Copies the next value into p->val as the engine can hold it (what
 * jansson loads).  An object or array is checked as it is copied; with
 * `any` a string, number or literal may come too, checked inside a list
 * (the strict copy refuses a scalar at the top).
 */
static enum pyj_tok pim_copy(struct pim *p, const char *coll, const char *key,
			     int any, int *rc)
{
	struct pyj_in chk;
	enum pyj_tok t;

	p->vlen = 0;
	t = pyj_copy_value(&p->in, !any, &p->val, &p->vlen, &p->vcap);
	*rc = 0;
	if (t == PYJ_ERROR) {
		*rc = key ? store_fail(-EINVAL, "%s: %s/%.200s: %s", p->name,
				       coll, key, p->in.err)
			  : store_fail(-EINVAL, "%s: %s: %s", p->name, coll,
				       p->in.err);
		return t;
	}
	if (!any)
		return t;
	p->rlen = 0;
	*rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, "[", 1);
	if (!*rc)
		*rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, p->val, p->vlen);
	if (!*rc)
		*rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, "]", 1);
	if (*rc)
		return PYJ_ERROR;
	pyj_in_init(&chk, p->rec, p->rlen);
	p->clen = 0;
	if (pyj_copy_value(&chk, 1, &p->chk, &p->clen, &p->ccap) == PYJ_ERROR)
		*rc = key ? store_fail(-EINVAL, "%s: %s/%.200s: %s", p->name,
				       coll, key, chk.err)
			  : store_fail(-EINVAL, "%s: %s: %s", p->name, coll,
				       chk.err);
	pyj_in_free(&chk);
	return *rc ? PYJ_ERROR : t;
}

/* A top-level member this module does not know: kept as it is. */
static int pim_extra(struct pim *p)
{
	json_error_t jerr;
	json_t *v;
	int rc;

	pim_copy(p, p->top, NULL, 1, &rc);
	if (rc)
		return rc;
	v = json_loadb(p->val, p->vlen, JSON_DECODE_ANY, &jerr);
	if (!v)
		return store_fail(-EINVAL, "%s: %s: %s", p->name, p->top,
				  jerr.text);
	return json_object_set_new(p->extra, p->top, v) ? -ENOMEM : 0;
}

/* Reads the '{' of an object member (pim_peek said it is one). */
static int pim_open(struct pim *p)
{
	enum pyj_tok t = pyj_next(&p->in);

	if (t == PYJ_ERROR)
		return pim_syntax(p);
	return t == PYJ_OBJ ? 0 : -EIO;
}

/* The next key of the object being read (1), its end (0), or an error. */
static int pim_next_key(struct pim *p)
{
	enum pyj_tok t = pyj_next(&p->in);

	if (t == PYJ_OBJ_END)
		return 0;
	if (t == PYJ_KEY)
		return 1;
	return t == PYJ_ERROR ? pim_syntax(p) : -EIO;
}

/* --- the keyword analysis of docstore/data, on a second thread ---------- */

/*
 * The observer would tokenise and stem every node's text when the batch
 * is committed, after the whole file has been read: a fifth of an
 * import, on one core.  Instead each node's JSON goes, as it is put in
 * the batch, to a thread that finds its text and analyses it
 * (text_prep_add) while this one reads on; the commit hands the results
 * to the observer as hints (core/store_int.h), which it uses only for
 * the very bytes they describe, and only puts them in the index, in
 * batch order, so the index is the one the observer would build alone.
 * A node the thread could not do (out of memory, a text the pull reader
 * leaves to jansson) simply has no hint.
 */
#define PIX_QUEUE_MAX (32u << 20) /* bytes of JSON waiting */

struct pix_item {
	struct pix_item *next;
	size_t klen, jlen; /* key (NUL-terminated), then the JSON */
	char data[];
};

struct pim_ix {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t work, room;
	struct pix_item *head, *tail;
	size_t queued;	   /* bytes in the queue */
	int done, stop;	   /* no more items; drop what is queued */
	atomic_int failed; /* the thread gave up: no more hints */
	/* the thread's own until it is joined */
	struct store_hints hints;
	struct store_textbuf tb;
};

static void pix_one(struct pim_ix *x, const struct pix_item *it)
{
	const char *key = it->data, *json = it->data + it->klen + 1;
	const char *text;
	size_t tlen;
	uint32_t doc;
	int64_t prep;
	int rc;

	rc = store_node_text(&x->tb, json, it->jlen, &text, &tlen);
	if (rc < 0)
		return; /* the observer asks jansson */
	if (rc == 1) {
		if (text_prep_add(x->hints.prep, text, tlen, &doc)) {
			x->failed = 1;
			return;
		}
		prep = doc;
	} else {
		prep = STORE_HINT_NONE;
	}
	if (store_hints_add_prep(&x->hints, key, it->jlen,
				 XXH3_64bits(json, it->jlen), prep))
		x->failed = 1;
}

static void *pix_thread(void *arg)
{
	struct pim_ix *x = arg;
	struct pix_item *it;

	for (;;) {
		pthread_mutex_lock(&x->mu);
		while (!x->head && !x->done && !x->stop)
			pthread_cond_wait(&x->work, &x->mu);
		it = x->stop ? NULL : x->head;
		if (it) {
			x->head = it->next;
			if (!x->head)
				x->tail = NULL;
			x->queued -= it->klen + it->jlen;
			pthread_cond_signal(&x->room);
		}
		pthread_mutex_unlock(&x->mu);
		if (!it)
			break;
		if (!x->failed)
			pix_one(x, it);
		free(it);
	}
	return NULL;
}

/* A thread for the analysis, or NULL (then the observer does it all). */
static struct pim_ix *pix_start(struct store *s)
{
	struct pim_ix *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	if (text_prep_new(s->bm25, &x->hints.prep)) {
		free(x);
		return NULL;
	}
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->work, NULL);
	pthread_cond_init(&x->room, NULL);
	if (pthread_create(&x->th, NULL, pix_thread, x)) {
		pthread_cond_destroy(&x->room);
		pthread_cond_destroy(&x->work);
		pthread_mutex_destroy(&x->mu);
		store_hints_free(&x->hints);
		free(x);
		return NULL;
	}
	return x;
}

/* Queues node `key`'s JSON (waits while the queue is full). */
static void pix_push(struct pim_ix *x, const char *key, const char *json,
		     size_t len)
{
	size_t klen = strlen(key);
	struct pix_item *it;

	if (x->failed)
		return;
	it = malloc(sizeof(*it) + klen + 1 + len);
	if (!it)
		return; /* no hint for this one */
	it->next = NULL;
	it->klen = klen;
	it->jlen = len;
	memcpy(it->data, key, klen + 1);
	memcpy(it->data + klen + 1, json, len);
	pthread_mutex_lock(&x->mu);
	while (x->queued > PIX_QUEUE_MAX && !x->failed)
		pthread_cond_wait(&x->room, &x->mu);
	if (x->tail)
		x->tail->next = it;
	else
		x->head = it;
	x->tail = it;
	x->queued += klen + len;
	pthread_cond_signal(&x->work);
	pthread_mutex_unlock(&x->mu);
}

/*
 * Waits for the thread (after the rest of the queue, or at once with
 * `stop`) and frees all but the hints, which it returns (x is freed).
 */
static void pix_finish(struct pim_ix *x, int stop, struct store_hints *out)
{
	struct pix_item *it;

	pthread_mutex_lock(&x->mu);
	x->done = 1;
	x->stop = stop;
	pthread_cond_signal(&x->work);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->th, NULL);
	while ((it = x->head) != NULL) {
		x->head = it->next;
		free(it);
	}
	pthread_cond_destroy(&x->room);
	pthread_cond_destroy(&x->work);
	pthread_mutex_destroy(&x->mu);
	store_textbuf_free(&x->tb);
	*out = x->hints;
	free(x);
}

/* --- docstore.json, index_store.json ------------------------------------ */

/* A collection: every value an object, put as it is (compact). */
static int pim_kv_coll(struct pim *p)
{
	enum pyj_tok t;
	int rc;

	rc = pim_open(p);
	while (!rc && (rc = pim_next_key(p)) == 1) {
		rc = pim_key(p, p->top, p->key);
		if (rc)
			break;
		t = pim_copy(p, p->top, p->key, 0, &rc);
		if (rc)
			break;
		if (t != PYJ_OBJ) {
			rc = store_fail(-EINVAL,
					"%s: %s/%.200s: the value is not a "
					"JSON object",
					p->name, p->top, p->key);
			break;
		}
		rc = engine_batch_put_json_compact(p->b, p->top, p->key, p->val,
						   p->vlen);
		if (rc)
			rc = pim_engine(p, rc, p->top, p->key);
		else if (p->ix && strcmp(p->top, STORE_C_DATA) == 0)
			pix_push(p->ix, p->key, p->val, p->vlen);
		pim_tick(p);
	}
	return rc;
}

static int pim_kv_member(struct pim *p)
{
	size_t n = strlen(p->prefix);

	if (p->top_len >= n && memcmp(p->top, p->prefix, n) == 0 &&
	    pim_peek(p) == '{')
		return pim_kv_coll(p);
	return pim_extra(p);
}

/* --- graph_store.json --------------------------------------------------- */

/* 1 if the compact text is [[str, str], ...]. */
static int pim_rels_ok(const char *json, size_t len)
{
	struct pyj_in in;
	enum pyj_tok t;
	int ok = 0;

	pyj_in_init(&in, json, len);
	if (pyj_next(&in) != PYJ_ARR)
		goto out;
	while ((t = pyj_next(&in)) == PYJ_ARR) {
		if (pyj_next(&in) != PYJ_STR || pyj_next(&in) != PYJ_STR ||
		    pyj_next(&in) != PYJ_ARR_END)
			goto out;
	}
	ok = t == PYJ_ARR_END;
out:
	pyj_in_free(&in);
	return ok;
}

static int pim_graph_dict(struct pim *p)
{
	static const char where[] = PERSIST_GRAPH_DICT;
	enum pyj_tok t;
	int rc;

	if (pim_peek(p) != '{')
		return store_fail(-EINVAL, "%s: graph_dict is not an object",
				  p->name);
	rc = pim_open(p);
	while (!rc && (rc = pim_next_key(p)) == 1) {
		rc = pim_key(p, where, p->key);
		if (rc)
			break;
		t = pim_copy(p, where, p->key, 0, &rc);
		if (rc)
			break;
		if (t != PYJ_ARR || !pim_rels_ok(p->val, p->vlen)) {
			rc = store_fail(-EINVAL,
					"%s: graph_dict/%.200s is not a list "
					"of [relation, object] string pairs",
					p->name, p->key);
			break;
		}
		p->rlen = 0;
		rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, "{\"rels\":", 8);
		if (!rc)
			rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, p->val,
					 p->vlen);
		if (!rc)
			rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, "}", 1);
		if (!rc)
			rc = engine_batch_put_json_compact(
				p->b, STORE_C_GRAPH, p->key, p->rec, p->rlen);
		if (rc)
			rc = pim_engine(p, rc, STORE_C_GRAPH, p->key);
		pim_tick(p);
	}
	return rc;
}

static int pim_graph_member(struct pim *p)
{
	if (strcmp(p->top, PERSIST_GRAPH_DICT) == 0)
		return pim_graph_dict(p);
	return pim_extra(p);
}

/* --- <ns>__vector_store.json -------------------------------------------- */

static int pim_vec_push(struct pim *p, size_t n, float f)
{
	if (n == p->vec_cap) {
		size_t cap = p->vec_cap ? p->vec_cap * 2 : 1024;
		float *v = realloc(p->vec, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->vec = v;
		p->vec_cap = cap;
	}
	p->vec[n] = f;
	return 0;
}

/* One vector: [number, ...] of the file's one length, float32. */
static int pim_vector(struct pim *p)
{
	enum pyj_tok t = pyj_next(&p->in);
	size_t n = 0;
	float f;
	int rc;

	if (t == PYJ_ERROR)
		return pim_syntax(p);
	if (t != PYJ_ARR)
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s is not a list "
				  "of numbers",
				  p->name, p->key);
	while ((t = pyj_next(&p->in)) == PYJ_NUM) {
		if (pyj_parse_f32(p->in.str, p->in.slen, &f))
			return store_fail(
				-EINVAL,
				"%s: embedding_dict/%.200s: %.*s is "
				"out of the range of float32",
				p->name, p->key,
				(int)(p->in.slen > 40 ? 40 : p->in.slen),
				p->in.str);
		rc = pim_vec_push(p, n++, f);
		if (rc)
			return rc;
	}
	if (t == PYJ_ERROR)
		return pim_syntax(p);
	if (t != PYJ_ARR_END)
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s holds something "
				  "that is not a number",
				  p->name, p->key);
	if (n == 0)
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s is an empty "
				  "vector",
				  p->name, p->key);
	if (n > UINT32_MAX / sizeof(float))
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s is too long",
				  p->name, p->key);
	if (!p->dim)
		p->dim = (uint32_t)n;
	if (n != p->dim)
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s has %zu numbers, "
				  "the vectors before it %u (all vectors of "
				  "a namespace have one length)",
				  p->name, p->key, n, p->dim);
	rc = engine_batch_put_vec(p->b, p->vcoll, p->key, p->vec, p->dim);
	return rc ? pim_engine(p, rc, p->vcoll, p->key) : 0;
}

/*
 * embedding_dict on two threads.  Converting the numbers is most of the
 * work of a vector store file; this thread finds each vector's text (the
 * '[' after its key to the first ']', memchr) and checks its key, and a
 * second thread converts the vectors of one chunk while this one finds
 * the next chunk's, then this thread puts them in the batch, in order.
 * Finding is much quicker than converting, so this thread, when it
 * waits for a chunk, converts vectors of it too: the two take its
 * vectors one at a time (q->next), each into its own place in q->f.
 * The converter takes only what pyj_parse_f32_list takes (a flat list of
 * numbers that fit float32); for anything else (another value, NaN, a
 * number out of range, a ']' that was inside a string) it stops, and
 * this thread, after putting the vectors before it, rewinds its reader to
 * that vector and reads on serially (pim_vector) from there, so every
 * refusal is the one the serial reading gives, at the same place.
 * Anything this thread meets (a key refused, a syntax error after a
 * vector, a value that is not a list) first waits for the vectors before
 * it to be put or refused.
 */
#define PIM_VQ 128 /* vectors per chunk */

int persist_import_serial_vectors;

struct pim_vq {
	int state; /* PIM_VQ_FREE, _FULL (given to the converter), _DONE */
	size_t n;
	const char *span[PIM_VQ];
	size_t slen[PIM_VQ];
	struct pyj_mark mark[PIM_VQ];
	size_t koff[PIM_VQ];
	char *keys; /* NUL-terminated, back to back */
	size_t klen, kcap;
	size_t end; /* the reader's offset after the last vector */
	/* vector i goes to f + foff[i] (room for slen[i] / 2 + 1 floats) */
	float *f;
	size_t fcap;
	size_t foff[PIM_VQ], fn[PIM_VQ];
	atomic_size_t next; /* the next vector to take */
	size_t done;	    /* vectors converted or refused (under mu) */
	int busy;	    /* threads in pim_vq_work for it (under mu) */
	size_t bad; /* the first vector refused, or n (under mu, once done) */
};

enum { PIM_VQ_FREE, PIM_VQ_FULL, PIM_VQ_DONE };

struct pim_vw {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	struct pim_vq q[2];
	unsigned seq[2]; /* order the chunks were given in */
	unsigned given;
};

/*
 * Converts vectors of q until none is left to take; either thread, with
 * w->mu held (released while converting).  The first vector refused is
 * the one the serial reading stops at: vectors after it are converted
 * for nothing, which only a refusal costs.  q is done when every vector
 * is and no thread is in here for it any more (so none can take a vector
 * of the chunk q becomes next).
 */
static void pim_vq_work(struct pim_vw *w, struct pim_vq *q)
{
	size_t i, did = 0, bad = SIZE_MAX;

	q->busy++;
	pthread_mutex_unlock(&w->mu);
	while ((i = atomic_fetch_add(&q->next, 1)) < q->n) {
		if (pyj_parse_f32_list(q->span[i], q->slen[i],
				       q->f + q->foff[i], &q->fn[i]) &&
		    i < bad)
			bad = i;
		did++;
	}
	pthread_mutex_lock(&w->mu);
	if (bad < q->bad)
		q->bad = bad;
	q->done += did;
	q->busy--;
	if (q->done == q->n && !q->busy) {
		q->state = PIM_VQ_DONE;
		pthread_cond_broadcast(&w->cv);
	}
}

/* Converts whichever chunk has vectors left, the older first. */
static void *pim_vw_thread(void *arg)
{
	struct pim_vw *w = arg;
	int i, j;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		i = -1;
		for (j = 0; j < 2; j++)
			if (w->q[j].state == PIM_VQ_FULL &&
			    atomic_load(&w->q[j].next) < w->q[j].n &&
			    (i < 0 || (int)(w->seq[j] - w->seq[i]) < 0))
				i = j;
		if (i >= 0)
			pim_vq_work(w, &w->q[i]);
		else if (w->stop)
			break;
		else
			pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void pim_vq_give(struct pim_vw *w, struct pim_vq *q)
{
	size_t i, need = 0;

	for (i = 0; i < q->n; i++) {
		q->foff[i] = need;
		need += q->slen[i] / 2 + 1;
	}
	atomic_store(&q->next, 0);
	q->done = 0;
	q->bad = q->n;
	if (need > q->fcap) {
		float *f = realloc(q->f, need * sizeof(*f));

		if (!f) {
			/* the serial reading will say -ENOMEM if it must */
			q->bad = 0;
			atomic_store(&q->next, q->n);
			pthread_mutex_lock(&w->mu);
			q->state = PIM_VQ_DONE;
			pthread_mutex_unlock(&w->mu);
			return;
		}
		q->f = f;
		q->fcap = need;
	}
	pthread_mutex_lock(&w->mu);
	q->state = PIM_VQ_FULL;
	w->seq[q == &w->q[1]] = w->given++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Until q is converted, helping. */
static void pim_vq_wait(struct pim_vw *w, struct pim_vq *q)
{
	pthread_mutex_lock(&w->mu);
	if (q->state == PIM_VQ_FULL)
		pim_vq_work(w, q);
	while (q->state == PIM_VQ_FULL)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* Until q (later vectors, to be dropped) is left alone, converting none. */
static void pim_vq_cancel(struct pim_vw *w, struct pim_vq *q)
{
	size_t from;

	pthread_mutex_lock(&w->mu);
	if (q->state == PIM_VQ_FULL) {
		from = atomic_exchange(&q->next, q->n);
		if (from < q->n)
			q->done += q->n - from;
		if (q->done == q->n && !q->busy)
			q->state = PIM_VQ_DONE;
		while (q->state == PIM_VQ_FULL)
			pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

static int pim_vq_free(struct pim_vw *w, const struct pim_vq *q)
{
	int st;

	pthread_mutex_lock(&w->mu);
	st = q->state;
	pthread_mutex_unlock(&w->mu);
	return st == PIM_VQ_FREE;
}

static void pim_vq_reset(struct pim_vw *w, struct pim_vq *q)
{
	pthread_mutex_lock(&w->mu);
	q->state = PIM_VQ_FREE;
	q->n = 0;
	pthread_mutex_unlock(&w->mu);
	q->klen = 0;
}

/* The checks pim_vector makes of a vector of n numbers, and its put. */
static int pim_vec_put(struct pim *p, const char *key, const float *f, size_t n)
{
	int rc;

	if (n == 0)
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s is an empty "
				  "vector",
				  p->name, key);
	if (n > UINT32_MAX / sizeof(float))
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s is too long",
				  p->name, key);
	if (!p->dim)
		p->dim = (uint32_t)n;
	if (n != p->dim)
		return store_fail(-EINVAL,
				  "%s: embedding_dict/%.200s has %zu numbers, "
				  "the vectors before it %u (all vectors of "
				  "a namespace have one length)",
				  p->name, key, n, p->dim);
	rc = engine_batch_put_vec(p->b, p->vcoll, key, f, p->dim);
	return rc ? pim_engine(p, rc, p->vcoll, key) : 0;
}

static void pim_tick_at(struct pim *p, size_t off)
{
	if (off < p->next_tick)
		return;
	p->next_tick = off + PIM_TICK;
	if (p->progress)
		p->progress(p->parg, off, p->len);
	pim_release(p, off);
}

/*
 * Puts the vectors of a converted chunk, in order.  At a vector the
 * converter did not take, the other chunk (later vectors) is dropped and
 * the reader goes back to that vector: *back is set and the vector is
 * read serially.
 */
static int pim_vq_put(struct pim *p, struct pim_vw *w, struct pim_vq *q,
		      int *back)
{
	struct pim_vq *o = &w->q[q == &w->q[0]];
	size_t i;
	int rc;

	pim_vq_wait(w, q);
	for (i = 0; i < q->bad; i++) {
		rc = pim_vec_put(p, q->keys + q->koff[i], q->f + q->foff[i],
				 q->fn[i]);
		if (rc)
			return rc;
	}
	pim_tick_at(p, q->bad < q->n ? (size_t)(q->mark[q->bad].p - p->data)
				     : q->end);
	if (q->bad == q->n) {
		pim_vq_reset(w, q);
		return 0;
	}
	pim_vq_cancel(w, o);
	pim_vq_reset(w, o);
	pyj_in_rewind(&p->in, &q->mark[i]);
	memcpy(p->key, q->keys + q->koff[i], strlen(q->keys + q->koff[i]) + 1);
	pim_vq_reset(w, q);
	*back = 1;
	rc = pim_vector(p);
	pim_tick(p);
	return rc;
}

/* Adds the vector just found; at a full chunk, turns to the other. */
static int pim_vq_add(struct pim *p, struct pim_vw *w, int *cur,
		      const struct pyj_mark *m, const char *s, size_t len,
		      int *back)
{
	struct pim_vq *q = &w->q[*cur];
	size_t kl = strlen(p->key) + 1;
	int rc;

	rc = pim_buf_put(&q->keys, &q->klen, &q->kcap, p->key, kl);
	if (rc)
		return rc;
	q->koff[q->n] = q->klen - kl;
	q->span[q->n] = s;
	q->slen[q->n] = len;
	q->mark[q->n] = *m;
	q->n++;
	if (q->n < PIM_VQ)
		return 0;
	q->end = pyj_in_offset(&p->in);
	pim_vq_give(w, q);
	*cur ^= 1;
	q = &w->q[*cur];
	if (pim_vq_free(w, q))
		return 0;
	return pim_vq_put(p, w, q, back);
}

/* Puts every vector found so far (the older chunk first). */
static int pim_vq_flush(struct pim *p, struct pim_vw *w, int cur, int *back)
{
	struct pim_vq *q = &w->q[cur];
	int rc = 0;

	if (!pim_vq_free(w, &w->q[cur ^ 1]))
		rc = pim_vq_put(p, w, &w->q[cur ^ 1], back);
	if (rc || *back || !q->n)
		return rc;
	q->end = pyj_in_offset(&p->in);
	pim_vq_give(w, q);
	return pim_vq_put(p, w, q, back);
}

static int pim_embeddings_2(struct pim *p, struct pim_vw *w)
{
	struct pyj_mark m;
	const char *s;
	size_t len;
	int rc, r, cur = 0, back;

	for (;;) {
		back = 0;
		r = pim_next_key(p);
		if (r == 1)
			r = pim_key(p, PERSIST_EMBEDDINGS, p->key);
		else if (r == 0)
			r = 2; /* the end */
		else
			goto flush;
		if (r == 0 && pyj_take_list_text(&p->in, &m, &s, &len)) {
			rc = pim_vq_add(p, w, &cur, &m, s, len, &back);
			if (rc)
				return rc;
			continue;
		}
flush:
		rc = pim_vq_flush(p, w, cur, &back);
		if (rc)
			return rc;
		if (back)
			continue; /* r was about later text */
		if (r == 2)
			return 0;
		if (r < 0)
			return r;
		rc = pim_vector(p);
		pim_tick(p);
		if (rc)
			return rc;
	}
}

/* embedding_dict on this thread alone. */
static int pim_embeddings_1(struct pim *p)
{
	int rc;

	while ((rc = pim_next_key(p)) == 1) {
		rc = pim_key(p, PERSIST_EMBEDDINGS, p->key);
		if (!rc)
			rc = pim_vector(p);
		pim_tick(p);
		if (rc)
			break;
	}
	return rc;
}

static int pim_embeddings(struct pim *p)
{
	struct pim_vw w;
	int rc, i;

	if (pim_peek(p) != '{')
		return store_fail(-EINVAL,
				  "%s: embedding_dict is not an object",
				  p->name);
	rc = pim_open(p);
	if (rc)
		return rc;
	if (persist_import_serial_vectors)
		return pim_embeddings_1(p);
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	if (pthread_create(&w.th, NULL, pim_vw_thread, &w))
		rc = pim_embeddings_1(p); /* no second thread */
	else {
		rc = pim_embeddings_2(p, &w);
		pthread_mutex_lock(&w.mu);
		w.stop = 1;
		pthread_cond_broadcast(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(w.th, NULL);
	}
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	for (i = 0; i < 2; i++) {
		free(w.q[i].keys);
		free(w.q[i].f);
	}
	return rc;
}

/* Puts the lodefs/vec_meta record of id i: {"ref_doc_id":..,"metadata":..}. */
static int pim_vm_write(struct pim *p, size_t i)
{
	const struct pim_vm *m = &p->vm[i];
	const char *id = persist_ids_get(&p->vm_ids, i);
	int rc;

	p->rlen = 0;
	rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, "{", 1);
	if (!rc && m->ref) {
		rc = pim_buf_put(
			&p->rec, &p->rlen, &p->rcap,
			"\"" PERSIST_VM_REF "\":", strlen(PERSIST_VM_REF) + 3);
		if (!rc)
			rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, m->ref,
					 m->ref_len);
	}
	if (!rc && m->meta) {
		rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap,
				 m->ref ? ",\"" PERSIST_VM_META "\":"
					: "\"" PERSIST_VM_META "\":",
				 strlen(PERSIST_VM_META) + (m->ref ? 4 : 3));
		if (!rc)
			rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, m->meta,
					 m->meta_len);
	}
	if (!rc)
		rc = pim_buf_put(&p->rec, &p->rlen, &p->rcap, "}", 1);
	if (!rc)
		rc = engine_batch_put_json_compact(p->b, p->mcoll, id, p->rec,
						   p->rlen);
	if (rc)
		return pim_engine(p, rc, p->mcoll, id);
	p->vm[i].written = 1;
	return 0;
}

/* Keeps a copy of p->val as what the file said of id p->key. */
static int pim_vm_note(struct pim *p, int meta, size_t *idx)
{
	char *copy;
	int rc;

	rc = persist_ids_add(&p->vm_ids, p->key, strlen(p->key), idx);
	if (rc < 0)
		return rc;
	if (*idx >= p->vm_cap) {
		size_t cap = p->vm_cap ? p->vm_cap * 2 : 256;
		struct pim_vm *v = realloc(p->vm, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		memset(v + p->vm_cap, 0, (cap - p->vm_cap) * sizeof(*v));
		p->vm = v;
		p->vm_cap = cap;
	}
	copy = malloc(p->vlen ? p->vlen : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, p->val, p->vlen);
	if (meta) {
		free(p->vm[*idx].meta);
		p->vm[*idx].meta = copy;
		p->vm[*idx].meta_len = p->vlen;
	} else {
		free(p->vm[*idx].ref);
		p->vm[*idx].ref = copy;
		p->vm[*idx].ref_len = p->vlen;
	}
	return 0;
}

/*
 * text_id_to_ref_doc_id (meta 0) or metadata_dict (meta 1): any JSON
 * value per id, kept as it is.  In Python's order (ref docs first) each
 * id's record is put as its metadata is read, so the metadata is not
 * held twice; otherwise records are put at the end.
 */
static int pim_vmeta(struct pim *p, int meta)
{
	const char *where = meta ? PERSIST_METADATA : PERSIST_REF_DOCS;
	size_t idx;
	int rc;

	if (pim_peek(p) != '{')
		return store_fail(-EINVAL, "%s: %s is not an object", p->name,
				  where);
	rc = pim_open(p);
	while (!rc && (rc = pim_next_key(p)) == 1) {
		rc = pim_key(p, where, p->key);
		if (!rc)
			pim_copy(p, where, p->key, 1, &rc);
		if (!rc)
			rc = pim_vm_note(p, meta, &idx);
		if (!rc && meta && p->refs_done) {
			rc = pim_vm_write(p, idx);
			free(p->vm[idx].meta);
			p->vm[idx].meta = NULL;
		}
		pim_tick(p);
	}
	if (!rc && !meta)
		p->refs_done = 1;
	return rc;
}

static int pim_vec_member(struct pim *p)
{
	if (strcmp(p->top, PERSIST_EMBEDDINGS) == 0)
		return pim_embeddings(p);
	if (strcmp(p->top, PERSIST_REF_DOCS) == 0)
		return pim_vmeta(p, 0);
	if (strcmp(p->top, PERSIST_METADATA) == 0)
		return pim_vmeta(p, 1);
	return pim_extra(p);
}

/* The records not put yet (ids without metadata, or another order). */
static int pim_vm_finish(struct pim *p)
{
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < p->vm_ids.n; i++)
		if (!p->vm[i].written)
			rc = pim_vm_write(p, i);
	return rc;
}

static void pim_vm_free(struct pim *p)
{
	size_t i;

	for (i = 0; i < p->vm_ids.n; i++) {
		free(p->vm[i].ref);
		free(p->vm[i].meta);
	}
	free(p->vm);
	p->vm = NULL;
	p->vm_cap = 0;
	persist_ids_free(&p->vm_ids);
}

/* --- the file ----------------------------------------------------------- */

/* Every top-level member through `member`, recording the file's layout. */
static int pim_members(struct pim *p, int (*member)(struct pim *))
{
	enum pyj_tok t = pyj_next(&p->in);
	int rc;

	if (t == PYJ_ERROR)
		return pim_syntax(p);
	if (t != PYJ_OBJ)
		return store_fail(-EINVAL, "%s: the text is not a JSON object",
				  p->name);
	while ((rc = pim_next_key(p)) == 1) {
		rc = pim_key(p, "top level", p->top);
		if (rc)
			return rc;
		if (persist_keys_has(p->keys, p->top))
			return store_fail(-EINVAL,
					  "%s: the key \"%.200s\" appears "
					  "twice",
					  p->name, p->top);
		if (json_array_append_new(p->keys, json_string(p->top)))
			return -ENOMEM;
		rc = member(p);
		if (rc == -EIO)
			rc = store_fail(-EINVAL, "%s: %.200s: unexpected JSON",
					p->name, p->top);
		if (rc)
			return rc;
	}
	if (rc)
		return rc == -EIO ? pim_syntax(p) : rc;
	t = pyj_next(&p->in);
	if (t == PYJ_ERROR)
		return pim_syntax(p);
	return t == PYJ_EOF ? 0
			    : store_fail(-EINVAL, "%s: text after the object",
					 p->name);
}

/* Adds the drop of `coll` to the batch if it holds anything. */
static int pim_drop(struct pim *p, const char *coll)
{
	if (!engine_count(p->s->eng, coll))
		return 0;
	return engine_batch_drop(p->b, coll);
}

/* The batch: what the file holds now goes, then what the text says. */
static int pim_build(struct pim *p)
{
	char **colls = NULL, **c;
	json_t *rec;
	int rc = 0;

	switch (p->kind) {
	case PERSIST_DOCSTORE:
	case PERSIST_INDEX_STORE:
		p->prefix = p->kind == PERSIST_DOCSTORE
				    ? PERSIST_DOCSTORE_PREFIX
				    : PERSIST_INDEX_PREFIX;
		rc = persist_colls(p->s, p->prefix, &colls);
		for (c = colls; !rc && c && *c; c++)
			rc = pim_drop(p, *c);
		store_free_strv(colls);
		/* the vector index written now says what was deleted */
		if (!rc && p->kind == PERSIST_INDEX_STORE)
			rc = pim_drop(p, STORE_C_NODES_DEL);
		if (!rc)
			rc = pim_members(p, pim_kv_member);
		break;
	case PERSIST_GRAPH_STORE:
		rc = pim_drop(p, STORE_C_GRAPH);
		if (!rc)
			rc = pim_members(p, pim_graph_member);
		break;
	case PERSIST_VECTOR_STORE:
		rc = pim_drop(p, p->vcoll);
		if (!rc)
			rc = pim_drop(p, p->mcoll);
		if (!rc)
			rc = pim_members(p, pim_vec_member);
		if (!rc)
			rc = pim_vm_finish(p);
		break;
	case PERSIST_PROPERTY_GRAPH:
		/* kept as its text: only checked to be a JSON object */
		if (pyj_skip_value(&p->in) != PYJ_OBJ)
			return p->in.err[0] ? pim_syntax(p)
					    : store_fail(-EINVAL,
							 "%s: the text is not "
							 "a JSON object",
							 p->name);
		if (pyj_next(&p->in) != PYJ_EOF)
			return pim_syntax(p);
		rc = engine_batch_put_blob(p->b, STORE_C_PERSIST_FILES, p->file,
					   p->data, p->len);
		return rc ? pim_engine(p, rc, STORE_C_PERSIST_FILES, p->file)
			  : 0;
	}
	if (rc)
		return rc;
	rec = json_pack("{s:O,s:O}", "keys", p->keys, "extra", p->extra);
	if (!rec)
		return -ENOMEM;
	rc = store_batch_put_obj(p->b, STORE_C_PERSIST, p->file, rec);
	json_decref(rec);
	return rc;
}

int persist_import_flags(struct store *s, const char *name, const char *data,
			 size_t len, unsigned flags,
			 persist_progress_fn *progress, void *parg)
{
	struct store_hints hints = { 0 };
	struct pim *p;
	char ns[STORE_NS_MAX + 1];
	int rc;

	store_clear_error();
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	rc = persist_name(name, &p->kind, ns, sizeof(ns));
	if (rc) {
		free(p);
		return rc;
	}
	p->s = s;
	p->name = name;
	p->data = data;
	p->len = len;
	p->progress = progress;
	p->parg = parg;
	p->next_tick = PIM_TICK;
	persist_file_key(p->kind, ns, p->file, sizeof(p->file));
	if (p->kind == PERSIST_VECTOR_STORE) {
		snprintf(p->vcoll, sizeof(p->vcoll), STORE_VEC_PREFIX "%s", ns);
		store_vec_meta_coll(ns, p->mcoll, sizeof(p->mcoll));
	}
	pyj_in_init(&p->in, data ? data : "", data ? len : 0);
	p->keys = json_array();
	p->extra = json_object();
	p->b = engine_batch_new();
	if (p->kind == PERSIST_DOCSTORE)
		p->ix = pix_start(s);
	pthread_mutex_lock(&s->wlock);
	rc = p->keys && p->extra && p->b ? pim_build(p) : -ENOMEM;
	/* all read: only the batch is needed now */
	pim_release(p, len);
	pim_vm_free(p);
	if (p->ix)
		pix_finish(p->ix, rc != 0, &hints);
	if (!rc)
		rc = store_commit_hinted_with(s, p->b, &hints,
					      flags & PERSIST_UNLOGGED
						      ? engine_commit_unlogged
						      : engine_commit_consume);
	pthread_mutex_unlock(&s->wlock);
	store_hints_free(&hints);
	if (!rc && progress)
		progress(parg, len, len);
	engine_batch_free(p->b);
	json_decref(p->keys);
	json_decref(p->extra);
	pyj_in_free(&p->in);
	free(p->val);
	free(p->rec);
	free(p->chk);
	free(p->vec);
	free(p);
	return rc;
}

int persist_import(struct store *s, const char *name, const char *data,
		   size_t len, persist_progress_fn *progress, void *parg)
{
	return persist_import_flags(s, name, data, len, 0, progress, parg);
}
