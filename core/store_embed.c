/* store_embed.c - vectors from an embeddings server for ingest and queries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/embed_remote.h"
#include "core/store_int.h"
#include "core/text.h"

/*
 * Vectors embedded ahead of a write (store_embed_prepare), for the thread
 * that asked: chunk texts by xxh3-128 and length, sorted for bsearch.  A
 * chunk of the same bytes gets the same vector from the same model, so a
 * hit is as good as asking again.
 */
struct store_pre_vec {
	XXH128_hash_t h;
	size_t len;
	size_t row;
};

struct store_embed_pre {
	const struct store *s;
	struct store_pre_vec *v;
	size_t n;
	float *rows; /* n * embed_dim */
	int rc;	     /* the preparation failed: every write gets this */
	char err[512];
};

static _Thread_local struct store_embed_pre *store_pre_cur;

int store_embed_open(struct store *s)
{
	struct embed_remote_opts eo = { 0 };
	char err[256];
	uint32_t have;
	int rc;

	if (!s->opts.embed_url)
		return 0;
	have = engine_vec_dim(s->eng, STORE_VEC_PREFIX STORE_NS_DEFAULT);
	if (have && have != s->opts.embed_dim)
		return store_fail(-EINVAL,
				  "namespace default holds %u-dimensional "
				  "vectors; embed_dim is %u",
				  have, s->opts.embed_dim);
	eo.url = s->opts.embed_url;
	eo.model = s->opts.embed_model;
	eo.dim = s->opts.embed_dim;
	eo.timeout_ms = s->opts.embed_timeout_ms;
	eo.retries = -1;
	rc = embed_remote_new(&eo, &s->embed, err, sizeof(err));
	if (rc)
		return store_fail(rc, "%s", err);
	return 0;
}

int store_embed_texts(struct store *s, const char *const *texts,
		      const size_t *lens, size_t n, float *out)
{
	char err[512];
	int rc;

	rc = embed_remote_run(s->embed, texts, lens, n, out, err, sizeof(err));
	if (rc)
		return store_fail(rc, "%s", err);
	return 0;
}

static int store_pre_cmp(const void *a, const void *b)
{
	const struct store_pre_vec *x = a, *y = b;

	if (x->h.high64 != y->h.high64)
		return x->h.high64 < y->h.high64 ? -1 : 1;
	if (x->h.low64 != y->h.low64)
		return x->h.low64 < y->h.low64 ? -1 : 1;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* The prepared vector of this chunk text, or NULL. */
static const float *store_pre_find(const struct store_embed_pre *p,
				   const char *text, size_t len)
{
	struct store_pre_vec key = { XXH3_128bits(text, len), len, 0 };
	const struct store_pre_vec *hit;

	if (!p->n)
		return NULL;
	hit = bsearch(&key, p->v, p->n, sizeof(*p->v), store_pre_cmp);
	return hit ? p->rows + hit->row * (size_t)p->s->opts.embed_dim : NULL;
}

/* Is the stored content of `id` these very bytes (nothing to embed)? */
static int store_pre_unchanged(struct store *s, const struct store_doc *d)
{
	json_t *old = NULL;
	XXH128_hash_t h;
	char hash[33];
	int same;

	if (!engine_exists(s->eng, STORE_C_FILES, d->id) ||
	    store_get_object(s, STORE_C_FILES, d->id, &old)) {
		store_clear_error();
		return 0;
	}
	h = XXH3_128bits(d->data, d->len);
	snprintf(hash, sizeof(hash), "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
	same = strcmp(store_str(json_object_get(old, "hash")), hash) == 0;
	json_decref(old);
	return same;
}

void store_embed_release(struct store *s)
{
	struct store_embed_pre *p = store_pre_cur;

	(void)s;
	store_pre_cur = NULL;
	if (!p)
		return;
	free(p->v);
	free(p->rows);
	free(p);
}

int store_embed_prepare(struct store *s, const struct store_doc *docs, size_t n)
{
	struct store_embed_pre *p;
	const char **texts = NULL;
	size_t *lens = NULL, m = 0, cap = 0, i, j, k;
	int rc = 0;

	store_embed_release(s);
	if (!s->embed || !n)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->s = s;
	for (i = 0; i < n && !rc; i++) {
		struct text_chunk *chunks = NULL;
		size_t nc = 0;

		if (!text_is_utf8(docs[i].data, docs[i].len) ||
		    store_pre_unchanged(s, &docs[i]))
			continue;
		rc = text_split(docs[i].data, docs[i].len, s->opts.chunk_size,
				s->opts.chunk_overlap, &chunks, &nc);
		for (j = 0; j < nc && !rc; j++) {
			if (m == cap) {
				size_t c = cap ? 2 * cap : 64;
				const char **t = realloc(texts, c * sizeof(*t));
				size_t *l = t ? realloc(lens, c * sizeof(*l))
					      : NULL;

				if (t)
					texts = t;
				if (!t || !l) {
					rc = -ENOMEM;
					break;
				}
				lens = l;
				cap = c;
			}
			texts[m] = (const char *)docs[i].data + chunks[j].start;
			lens[m++] = chunks[j].end - chunks[j].start;
		}
		text_chunks_free(chunks, nc);
	}
	if (!rc && m) {
		p->v = calloc(m, sizeof(*p->v));
		p->rows = malloc(m * (size_t)s->opts.embed_dim *
				 sizeof(*p->rows));
		rc = p->v && p->rows ? 0 : -ENOMEM;
	}
	if (!rc && m) {
		/* the whole set in as few requests as the bounds allow */
		rc = embed_remote_run(s->embed, texts, lens, m, p->rows, p->err,
				      sizeof(p->err));
		p->rc = rc;
	}
	if (rc && rc != -EIO) {
		free(texts);
		free(lens);
		store_pre_cur = p;
		store_embed_release(s);
		return rc;
	}
	for (i = 0, k = 0; !p->rc && i < m; i++) {
		p->v[k].h = XXH3_128bits(texts[i], lens[i]);
		p->v[k].len = lens[i];
		p->v[k++].row = i;
	}
	p->n = k;
	if (p->n)
		qsort(p->v, p->n, sizeof(*p->v), store_pre_cmp);
	free(texts);
	free(lens);
	store_pre_cur = p;
	return p->rc ? store_fail(p->rc, "%s", p->err) : 0;
}

int store_ingest_remote_vecs(struct store *s, const struct store_doc *d,
			     const struct text_chunk *chunks, size_t n,
			     float **out)
{
	const struct store_embed_pre *p =
		store_pre_cur && store_pre_cur->s == s ? store_pre_cur : NULL;
	uint32_t dim = s->opts.embed_dim;
	const char **texts = calloc(n ? n : 1, sizeof(*texts));
	size_t *lens = calloc(n ? n : 1, sizeof(*lens)), *at = NULL;
	float *v = malloc((n ? n : 1) * (size_t)dim * sizeof(*v)), *miss;
	size_t i, m = 0;
	int rc = -ENOMEM;

	*out = NULL;
	at = calloc(n ? n : 1, sizeof(*at));
	if (!texts || !lens || !v || !at)
		goto out;
	if (p && p->rc) {
		/* the server already failed for this write: fail it fast */
		rc = store_fail(p->rc, "%s", p->err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *t = (const char *)d->data + chunks[i].start;
		size_t len = chunks[i].end - chunks[i].start;
		const float *hit = p ? store_pre_find(p, t, len) : NULL;

		if (hit) {
			memcpy(v + i * (size_t)dim, hit, dim * sizeof(*v));
			continue;
		}
		texts[m] = t;
		lens[m] = len;
		at[m++] = i;
	}
	rc = 0;
	if (m) {
		miss = malloc(m * (size_t)dim * sizeof(*miss));
		rc = miss ? store_embed_texts(s, texts, lens, m, miss)
			  : -ENOMEM;
		for (i = 0; !rc && i < m; i++)
			memcpy(v + at[i] * (size_t)dim, miss + i * (size_t)dim,
			       dim * sizeof(*v));
		free(miss);
	}
	if (!rc) {
		*out = v;
		v = NULL;
	}
out:
	free(texts);
	free(lens);
	free(at);
	free(v);
	return rc;
}
