/* engine_batch.c - batches: building, checking at commit, applying records. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "core/engine_int.h"

struct engine_batch *engine_batch_new(void)
{
	return calloc(1, sizeof(struct engine_batch));
}

void engine_batch_free(struct engine_batch *b)
{
	if (!b)
		return;
	eng_buf_free(&b->recs);
	free(b);
}

size_t engine_batch_count(const struct engine_batch *b)
{
	return b ? b->count : 0;
}

size_t engine_batch_bytes(const struct engine_batch *b)
{
	return b ? b->bytes : 0;
}

void engine_batch_mark(const struct engine_batch *b,
		       struct engine_batch_mark *m)
{
	m->len = b->recs.len;
	m->count = b->count;
	m->bytes = b->bytes;
	m->err = b->err;
	m->buf_err = b->recs.err;
}

void engine_batch_rollback(struct engine_batch *b,
			   const struct engine_batch_mark *m)
{
	/* a failed append may have left part of a record: cut it too */
	b->recs.len = m->len;
	b->recs.err = m->buf_err;
	b->count = m->count;
	b->bytes = m->bytes;
	if (!m->err)
		b->why[0] = '\0';
	b->err = m->err;
}

/* Remembers the first failure: committing the batch then fails with it. */
static int eng_batch_poison(struct engine_batch *b, int rc, const char *coll,
			    const char *key, const char *why)
{
	if (!b->err) {
		b->err = rc;
		snprintf(b->why, sizeof(b->why), "%.100s/%.200s: %.190s",
			 coll ? coll : "(null)", key ? key : "(null)", why);
	}
	return rc;
}

static int eng_batch_names(struct engine_batch *b, const char *coll,
			   const char *key, bool need_key)
{
	if (!coll || eng_name_valid(coll, strlen(coll), ENGINE_KEY_MAX))
		return eng_batch_poison(b, -EINVAL, coll, key,
					"invalid collection name");
	if (!need_key)
		return 0;
	if (!key || eng_name_valid(key, strnlen(key, ENGINE_KEY_MAX + 1),
				   ENGINE_KEY_MAX))
		return eng_batch_poison(
			b, -EINVAL, coll, key,
			key && strlen(key) > ENGINE_KEY_MAX
				? "key longer than ENGINE_KEY_MAX"
				: "invalid key");
	return 0;
}

static int eng_batch_add(struct engine_batch *b, uint8_t op, uint8_t type,
			 const char *coll, const char *key, const void *val,
			 size_t len)
{
	size_t kl = key ? strlen(key) : 0;

	eng_rec_encode(&b->recs, op, type, coll, strlen(coll), key ? key : "",
		       kl, val, len, NULL);
	if (b->recs.err)
		return eng_batch_poison(b, -ENOMEM, coll, key, "out of memory");
	b->count++;
	b->bytes += len;
	return 0;
}

/*
 * Copies JSON text without the whitespace between tokens.  Unlike a
 * parse-and-dump round trip this keeps numbers, escapes and key order
 * exactly as the user wrote them.  The text has already been validated.
 */
static size_t eng_json_minify(const char *in, size_t len, char *out)
{
	size_t i, n = 0;
	bool str = false, esc = false;

	for (i = 0; i < len; i++) {
		char ch = in[i];

		if (str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				str = false;
		} else if (ch == ' ' || ch == '\t' || ch == '\n' ||
			   ch == '\r') {
			continue;
		} else if (ch == '"') {
			str = true;
		}
		out[n++] = ch;
	}
	return n;
}

int engine_batch_put_json(struct engine_batch *b, const char *coll,
			  const char *key, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *root;
	char *compact;
	size_t n;
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	if (!json || len == 0)
		return eng_batch_poison(b, -EINVAL, coll, key, "empty JSON");
	if (len > ENGINE_VALUE_MAX)
		return eng_batch_poison(b, -EINVAL, coll, key,
					"value too large");
	root = json_loadb(json, len, 0, &jerr);
	if (!root) {
		char why[200];

		snprintf(why, sizeof(why), "invalid JSON at line %d: %s",
			 jerr.line, jerr.text);
		return eng_batch_poison(b, -EINVAL, coll, key, why);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return eng_batch_poison(b, -EINVAL, coll, key,
					"JSON value is not an object");
	}
	json_decref(root);
	compact = malloc(len);
	if (!compact)
		return eng_batch_poison(b, -ENOMEM, coll, key, "out of memory");
	n = eng_json_minify(json, len, compact);
	rc = eng_batch_add(b, ENG_OP_PUT, ENGINE_JSON, coll, key, compact, n);
	free(compact);
	return rc;
}

/*
 * A put of a value that needs no copy of its own: the names, then `bad`
 * (why the value is refused, or NULL), then its size.
 */
static int eng_batch_put(struct engine_batch *b, uint8_t type, const char *coll,
			 const char *key, const void *val, size_t len,
			 const char *bad)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	if (bad)
		return eng_batch_poison(b, -EINVAL, coll, key, bad);
	if (len > ENGINE_VALUE_MAX)
		return eng_batch_poison(b, -EINVAL, coll, key,
					"value too large");
	return eng_batch_add(b, ENG_OP_PUT, type, coll, key, val, len);
}

int engine_batch_put_json_compact(struct engine_batch *b, const char *coll,
				  const char *key, const char *json, size_t len)
{
	int object = json && len >= 2 && json[0] == '{' && json[len - 1] == '}';

	return eng_batch_put(b, ENGINE_JSON, coll, key, json, len,
			     object ? NULL : "JSON value is not an object");
}

int engine_batch_put_blob(struct engine_batch *b, const char *coll,
			  const char *key, const void *data, size_t len)
{
	return eng_batch_put(b, ENGINE_BLOB, coll, key, data, len,
			     len && !data ? "NULL data" : NULL);
}

int engine_batch_put_vec(struct engine_batch *b, const char *coll,
			 const char *key, const float *v, uint32_t dim)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	if (!v || dim == 0 || dim > ENGINE_VALUE_MAX / sizeof(float))
		return eng_batch_poison(b, -EINVAL, coll, key,
					"vector without data or dimension");
	return eng_batch_add(b, ENG_OP_PUT, ENGINE_VEC, coll, key, v,
			     (size_t)dim * sizeof(float));
}

int engine_batch_del(struct engine_batch *b, const char *coll, const char *key)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	return eng_batch_add(b, ENG_OP_DEL, ENGINE_NONE, coll, key, NULL, 0);
}

int engine_batch_drop(struct engine_batch *b, const char *coll)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, NULL, false);
	if (rc)
		return rc;
	return eng_batch_add(b, ENG_OP_DROP, ENGINE_NONE, coll, NULL, NULL, 0);
}

/* --- preparing a commit -------------------------------------------------- */

/*
 * Preparing a commit simulates the batch over the current state: what
 * type each touched key has after the records before it and where it was
 * created, how many live keys and vectors (of which dim) each touched
 * collection holds.  That checks the batch, and the records are written
 * again with what this writer saw (ENG_RF_*, creation references), so
 * that every engine replaying them puts keys and collections in the
 * order this one does.
 */
struct eng_vcoll {
	const char *name;
	struct eng_coll *c; /* NULL if it does not exist yet */
	uint32_t gen;	    /* bumped by a drop: older key states lapse */
	bool dropped;
	size_t live;
	size_t vec_live;
	uint32_t dim;
};

struct eng_vkey {
	/*
	 * Where the key is in the output, plus 1 (0: an empty slot): the
	 * batch's own bytes may be given back while it is prepared.
	 */
	size_t key_at;
	uint32_t coll;
	uint32_t gen;
	uint8_t type;
	struct eng_cstamp created; /* live keys; hlc 0: in this batch */
};

struct eng_validate {
	struct engine *e;
	const struct eng_buf *out;
	struct eng_vcoll *colls;
	size_t ncolls;
	size_t colls_cap;
	size_t last; /* the collection found last: batches repeat it */
	struct eng_vkey *keys;
	size_t cap;
};

static int eng_vcoll_get(struct eng_validate *v, const char *name,
			 uint32_t *idx)
{
	struct eng_vcoll *vc;
	size_t i;

	if (v->ncolls && strcmp(v->colls[v->last].name, name) == 0) {
		*idx = (uint32_t)v->last;
		return 0;
	}
	for (i = 0; i < v->ncolls; i++) {
		if (strcmp(v->colls[i].name, name) == 0) {
			*idx = (uint32_t)(v->last = i);
			return 0;
		}
	}
	if (v->ncolls == v->colls_cap) {
		size_t cap = v->colls_cap ? v->colls_cap * 2 : 8;
		void *p = realloc(v->colls, cap * sizeof(*v->colls));

		if (!p)
			return -ENOMEM;
		v->colls = p;
		v->colls_cap = cap;
	}
	vc = &v->colls[v->ncolls];
	memset(vc, 0, sizeof(*vc));
	vc->name = strdup(name); /* the batch's copy may go (spend) */
	if (!vc->name)
		return -ENOMEM;
	vc->c = eng_coll_find(v->e, name);
	if (vc->c) {
		vc->live = vc->c->live;
		vc->vec_live = vc->c->vec_live;
		vc->dim = vc->c->vec_live ? vc->c->dim : 0;
	}
	*idx = (uint32_t)(v->last = v->ncolls++);
	return 0;
}

static struct eng_vkey *eng_vkey_slot(struct eng_validate *v, uint32_t coll,
				      const char *key)
{
	size_t mask = v->cap - 1;
	size_t i =
		(XXH3_64bits(key, strlen(key)) ^ (coll * 0x9e3779b97f4a7c15u)) &
		mask;

	for (;; i = (i + 1) & mask) {
		struct eng_vkey *k = &v->keys[i];

		if (!k->key_at ||
		    (k->coll == coll &&
		     strcmp((const char *)v->out->p + k->key_at - 1, key) == 0))
			return k;
	}
}

/* Checks record i and appends it to out with what this writer saw. */
static int eng_prepare_rec(struct eng_validate *v, const struct eng_rec *r,
			   uint32_t i, struct eng_buf *out)
{
	struct eng_cref cref = { 0 };
	struct eng_cstamp born = { 0 };
	struct eng_vcoll *vc;
	struct eng_vkey *k;
	uint32_t ci, dim;
	uint8_t cur;
	int rc;

	rc = eng_vcoll_get(v, r->coll, &ci);
	if (rc)
		return eng_fail(rc, "out of memory");
	vc = &v->colls[ci];
	if (r->op == ENG_OP_DROP) {
		vc->gen++;
		vc->dropped = true;
		vc->live = 0;
		vc->vec_live = 0;
		goto out_encode;
	}
	k = eng_vkey_slot(v, ci, r->key);
	if (k->key_at && k->gen == vc->gen) {
		cur = k->type;
		born = k->created;
	} else if (vc->dropped) {
		cur = ENGINE_NONE;
	} else {
		const struct eng_ent *s = eng_ent_find(vc->c, r->key);

		cur = s ? s->type : ENGINE_NONE;
		if (cur != ENGINE_NONE)
			born = s->created;
	}
	if (r->op == ENG_OP_PUT && cur != ENGINE_NONE && cur != r->type)
		return eng_fail(-EINVAL,
				"%s/%.200s: a key cannot change type (delete "
				"it first)",
				r->coll, r->key);
	if (r->op == ENG_OP_PUT && r->type == ENGINE_VEC) {
		dim = (uint32_t)(r->len / sizeof(float));
		if (vc->vec_live && dim != vc->dim &&
		    !(cur == ENGINE_VEC && vc->vec_live == 1))
			return eng_fail(-EINVAL,
					"%s/%.200s: vector has %u dimensions, "
					"the collection %u",
					r->coll, r->key, dim, vc->dim);
		if (cur != ENGINE_VEC)
			vc->vec_live++;
		vc->dim = dim;
	} else if (r->op == ENG_OP_DEL && cur == ENGINE_VEC) {
		vc->vec_live--;
	}
	if (r->op == ENG_OP_PUT && cur != ENGINE_NONE) {
		/* an update: the key keeps the place it has */
		cref.flags = ENG_RF_UPDATE;
		cref.hlc = born.hlc;
		cref.idx = born.idx;
		cref.writer = born.hlc ? v->e->writers[born.writer].id : "";
	} else if (r->op == ENG_OP_PUT) {
		/* a creation: the key's place is this record */
		cref.flags = vc->live++ ? 0 : ENG_RF_FIRST;
		born.hlc = 0;
		born.idx = i;
	} else if (cur != ENGINE_NONE) {
		vc->live--;
	}
	k->key_at = out->len + ENG_REC_HDR + r->coll_len + 1 + 1;
	k->coll = ci;
	k->gen = vc->gen;
	k->type = r->op == ENG_OP_PUT ? r->type : ENGINE_NONE;
	k->created = born;
out_encode:
	eng_rec_encode(out, r->op, r->type, r->coll, r->coll_len, r->key,
		       r->key_len, r->val, r->len, &cref);
	return out->err ? eng_fail(-ENOMEM, "out of memory") : 0;
}

int eng_prepare(struct engine *e, struct engine_batch *b, bool spend,
		struct eng_buf *out)
{
	struct eng_validate v = { .e = e, .out = out };
	size_t pos = 0, i, done = 0;
	const char *why;
	struct eng_rec r;
	int rc = 0;

	v.cap = 16;
	while (v.cap / 2 < b->count)
		v.cap *= 2;
	v.keys = calloc(v.cap, sizeof(*v.keys));
	if (!v.keys ||
	    eng_buf_reserve(out, b->recs.len + b->count * 24 + ENG_TRAILER)) {
		free(v.keys);
		return eng_fail(-ENOMEM, "out of memory");
	}
	for (i = 0; i < b->count && !rc; i++) {
		rc = eng_rec_next(b->recs.p, b->recs.len, &pos, &r, &why);
		if (rc)
			rc = eng_fail(-EINVAL, "bad record in batch: %s", why);
		else
			rc = eng_prepare_rec(&v, &r, (uint32_t)i, out);
		/* what was read is in `out` now (v.keys point there) */
		if (spend && pos - done >= ENG_RELEASE_STEP)
			eng_buf_release(&b->recs, &done, pos);
	}
	free(v.keys);
	for (i = 0; i < v.ncolls; i++)
		free((char *)v.colls[i].name);
	free(v.colls);
	return rc;
}

/* --- applying records ----------------------------------------------------- */

/* Resolves a put record's creation stamp (batch hlc, writer w, index i). */
static int eng_rec_created(struct engine *e, const struct eng_rec *r,
			   uint64_t hlc, uint32_t w, uint32_t i,
			   struct eng_cstamp *cs)
{
	cs->hlc = hlc;
	cs->writer = w;
	cs->idx = i;
	if (!(r->flags & ENG_RF_UPDATE))
		return 0;
	cs->idx = r->cidx;
	if (!r->chlc)
		return 0; /* created earlier in this batch */
	cs->hlc = r->chlc;
	cs->writer = eng_writer_get(e, r->cwriter);
	return cs->writer == ENG_NO_WRITER ? -ENOMEM : 0;
}

static int eng_recs_apply_buf(struct engine *e, const uint8_t *p, size_t end,
			      size_t pos, uint32_t nrec, uint64_t hlc,
			      uint32_t w, unsigned flags, struct eng_buf *spend)
{
	struct eng_cstamp cs;
	const char *why;
	struct eng_rec r;
	size_t done = pos;
	uint32_t i;
	int rc = 0;

	for (i = 0; i < nrec && rc >= 0; i++) {
		struct eng_coll *c;

		if (spend && pos - done >= ENG_RELEASE_STEP)
			eng_buf_release(spend, &done, pos);
		if (eng_rec_next(p, end, &pos, &r, &why)) {
			rc = -EUCLEAN; /* verified before: cannot happen */
			break;
		}
		c = eng_coll_get(e, r.coll);
		if (!c) {
			rc = -ENOMEM;
			break;
		}
		if (r.op == ENG_OP_PUT) {
			rc = eng_rec_created(e, &r, hlc, w, i, &cs);
			if (rc)
				break;
			if (r.flags & ENG_RF_FIRST)
				eng_coll_first(e, c, &cs);
			rc = eng_apply_put(e, c, r.key, r.type, r.val, r.len,
					   hlc, w, &cs, flags, 0);
		} else if (r.op == ENG_OP_DEL) {
			rc = eng_apply_del(e, c, r.key, hlc, w, flags);
		} else {
			rc = eng_apply_drop(e, c, hlc, w, flags);
		}
	}
	/* what was applied becomes visible in order, even after a failure */
	eng_settle(e);
	return rc < 0 ? rc : 0;
}

int eng_recs_apply(struct engine *e, const uint8_t *p, size_t end, size_t pos,
		   uint32_t nrec, uint64_t hlc, uint32_t w, unsigned flags)
{
	return eng_recs_apply_buf(e, p, end, pos, nrec, hlc, w, flags, NULL);
}

int eng_recs_apply_spend(struct engine *e, struct eng_buf *seg, size_t end,
			 size_t pos, uint32_t nrec, uint64_t hlc, uint32_t w,
			 unsigned flags)
{
	return eng_recs_apply_buf(e, seg->p, end, pos, nrec, hlc, w, flags,
				  seg);
}
