/* store_txn.c - transactions: document, directory and kv steps, one batch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/store_int.h"

struct store_txn {
	struct store *s;
	struct engine_batch *b;
	char **nss; /* vector namespaces, listed at the first document step */
	/* What the steps so far touched: each at most once. */
	struct strset *docs;
	struct strset *dirs;
	struct strset *kvs;	  /* "coll\x1fkey" */
	struct store_hints hints; /* for the observer, at commit */
	size_t steps;
};

/* Where a step began: the batch and the hints are cut back to it. */
struct store_txn_mark {
	struct engine_batch_mark b;
	size_t hints;
};

static void store_txn_begin_step(const struct store_txn *t,
				 struct store_txn_mark *m)
{
	engine_batch_mark(t->b, &m->b);
	m->hints = t->hints.n;
}

int store_txn_begin(struct store *s, struct store_txn **out)
{
	struct store_txn *t;

	store_clear_error();
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->s = s;
	t->b = engine_batch_new();
	t->docs = strset_new();
	t->dirs = strset_new();
	t->kvs = strset_new();
	if (!t->b || !t->docs || !t->dirs || !t->kvs) {
		engine_batch_free(t->b);
		strset_free(t->docs);
		strset_free(t->dirs);
		strset_free(t->kvs);
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_lock(&s->wlock);
	*out = t;
	return 0;
}

/* Frees t and lets other writers go on. */
static void store_txn_free(struct store_txn *t)
{
	pthread_mutex_unlock(&t->s->wlock);
	engine_batch_free(t->b);
	store_free_strv(t->nss);
	strset_free(t->docs);
	strset_free(t->dirs);
	strset_free(t->kvs);
	store_hints_free(&t->hints);
	free(t);
}

void store_txn_abort(struct store_txn *t)
{
	if (t)
		store_txn_free(t);
}

int store_txn_commit(struct store_txn *t)
{
	int rc = 0;

	store_clear_error();
	if (t->steps)
		rc = store_commit_hinted(t->s, t->b, &t->hints);
	store_txn_free(t);
	return rc;
}

size_t store_txn_count(const struct store_txn *t)
{
	return t->steps;
}

/* -EINVAL if an earlier step of t already touched `id` of `set`. */
static int store_txn_check_new(const struct strset *set, const char *what,
			       const char *id)
{
	if (strset_has(set, id))
		return store_fail(-EINVAL,
				  "%s %s is already changed by this "
				  "transaction",
				  what, id);
	return 0;
}

/* Lists the vector namespaces a document step deletes nodes from. */
static int store_txn_nss(struct store_txn *t)
{
	if (t->nss)
		return 0;
	return store_list_namespaces(t->s, &t->nss);
}

/*
 * Ends a step begun at mark m: a failed one is taken out of the batch
 * again, so that the transaction goes on as if it had not been tried.
 */
static int store_txn_end(struct store_txn *t, const struct store_txn_mark *m,
			 int rc)
{
	if (rc) {
		engine_batch_rollback(t->b, &m->b);
		store_hints_cut(&t->hints, m->hints);
	} else {
		t->steps++;
	}
	return rc;
}

int store_txn_doc_put(struct store_txn *t, const struct store_doc *d,
		      int *result)
{
	struct store_txn_mark m;
	int r = STORE_UNCHANGED, rc;

	store_clear_error();
	rc = store_check_path("document id", d->id);
	if (!rc)
		rc = store_txn_check_new(t->docs, "document", d->id);
	if (!rc)
		rc = store_txn_nss(t);
	if (rc)
		return rc;
	store_txn_begin_step(t, &m);
	rc = store_batch_doc(t->s, t->b, &t->hints, t->nss, d, &r);
	if (!rc)
		rc = strset_add(t->docs, d->id);
	rc = store_txn_end(t, &m, rc);
	if (!rc && result)
		*result = r;
	return rc;
}

int store_txn_doc_del(struct store_txn *t, const char *id)
{
	struct store_txn_mark m;
	int rc;

	store_clear_error();
	rc = store_check_id("document", id);
	if (!rc)
		rc = store_txn_check_new(t->docs, "document", id);
	if (!rc && !store_doc_exists(t->s, id))
		rc = store_fail(-ENOENT, "no document %s", id);
	if (!rc)
		rc = store_txn_nss(t);
	if (rc)
		return rc;
	store_txn_begin_step(t, &m);
	rc = store_batch_doc_del(t->s, t->b, t->nss, id);
	if (!rc)
		rc = strset_add(t->docs, id);
	return store_txn_end(t, &m, rc);
}

/*
 * A document's content and record as committed: *data malloc'd, *rec a
 * new reference (an empty object if the document has no record).
 */
static int store_txn_read_doc(struct store *s, const char *id, void **data,
			      size_t *len, json_t **rec)
{
	int rc;

	rc = engine_get(s->eng, STORE_C_CONTENT, id, NULL, data, len);
	if (rc == -ENOENT)
		return store_fail(-ENOENT, "no document %s", id);
	if (rc)
		return rc;
	rc = store_get_object(s, STORE_C_FILES, id, rec);
	if (rc == -ENOENT) {
		*rec = json_object();
		rc = *rec ? 0 : -ENOMEM;
	}
	if (rc) {
		free(*data);
		*data = NULL;
	}
	return rc;
}

/* The user metadata of a record: a borrowed object, or NULL if none. */
static json_t *store_txn_xattrs(const json_t *rec)
{
	json_t *x = json_object_get(rec, "xattrs");

	return json_is_object(x) ? x : NULL;
}

/* A store_doc with the content `data` and what the record `rec` says. */
static void store_txn_doc_from(struct store_doc *d, const char *id,
			       const void *data, size_t len, const json_t *rec)
{
	memset(d, 0, sizeof(*d));
	d->id = id;
	d->data = data;
	d->len = len;
	d->mode = (unsigned)json_integer_value(json_object_get(rec, "mode"));
	d->mtime = (time_t)json_integer_value(json_object_get(rec, "mtime"));
	d->ctime = (time_t)json_integer_value(json_object_get(rec, "ctime"));
	d->ino = store_u64(json_object_get(rec, "ino"));
}

int store_txn_doc_move(struct store_txn *t, const char *from, const char *to,
		       uint64_t ino)
{
	struct store_txn_mark m;
	struct store_doc d;
	json_t *rec = NULL;
	void *data = NULL;
	size_t len = 0;
	int r, rc;

	store_clear_error();
	rc = store_check_id("document", from);
	if (!rc)
		rc = store_check_path("document id", to);
	if (!rc && strcmp(from, to) == 0)
		rc = store_fail(-EINVAL, "moving %s onto itself", from);
	if (!rc)
		rc = store_txn_check_new(t->docs, "document", from);
	if (!rc)
		rc = store_txn_check_new(t->docs, "document", to);
	if (!rc)
		rc = store_txn_read_doc(t->s, from, &data, &len, &rec);
	if (!rc)
		rc = store_txn_nss(t);
	if (rc)
		goto out;
	store_txn_doc_from(&d, to, data, len, rec);
	/* the moved file keeps its identity, never the one it replaces */
	if (ino)
		d.ino = ino;
	if (!d.ino)
		d.ino = store_new_ino(to);
	store_txn_begin_step(t, &m);
	rc = store_batch_doc_del(t->s, t->b, t->nss, from);
	if (!rc)
		rc = store_batch_doc_json(t->s, t->b, &t->hints, t->nss, &d,
					  store_txn_xattrs(rec), &r);
	if (!rc)
		rc = strset_add(t->docs, from);
	if (!rc)
		rc = strset_add(t->docs, to);
	rc = store_txn_end(t, &m, rc);
out:
	json_decref(rec);
	free(data);
	return rc;
}

int store_txn_doc_attr(struct store_txn *t, const char *id, unsigned mode,
		       time_t mtime, time_t ctime, const char *xattrs)
{
	struct store_txn_mark m;
	json_t *rec = NULL, *user = NULL;
	struct store_doc d;
	void *data = NULL;
	size_t len = 0;
	int r, rc;

	store_clear_error();
	rc = store_check_path("document id", id);
	if (!rc)
		rc = store_txn_check_new(t->docs, "document", id);
	if (!rc && xattrs)
		rc = store_parse_object("xattrs", xattrs, strlen(xattrs),
					&user);
	if (!rc)
		rc = store_txn_read_doc(t->s, id, &data, &len, &rec);
	if (!rc)
		rc = store_txn_nss(t);
	if (rc)
		goto out;
	store_txn_doc_from(&d, id, data, len, rec);
	d.mode = mode;
	d.mtime = mtime;
	d.ctime = ctime;
	store_txn_begin_step(t, &m);
	/* the content is the same: only the record and maybe the nodes */
	rc = store_batch_doc_json(t->s, t->b, &t->hints, t->nss, &d,
				  user ? user : store_txn_xattrs(rec), &r);
	if (!rc)
		rc = strset_add(t->docs, id);
	rc = store_txn_end(t, &m, rc);
out:
	json_decref(user);
	json_decref(rec);
	free(data);
	return rc;
}

int store_txn_dir_put(struct store_txn *t, const char *path,
		      const struct store_dir *d)
{
	struct store_txn_mark m;
	json_t *old = NULL, *rec = NULL;
	time_t mtime = d->mtime ? d->mtime : time(NULL);
	uint64_t ino = d->ino;
	int rc;

	store_clear_error();
	rc = store_check_path("directory", path);
	if (!rc)
		rc = store_txn_check_new(t->dirs, "directory", path);
	if (rc)
		return rc;
	if (engine_exists(t->s->eng, STORE_C_DIRS, path) &&
	    store_get_object(t->s, STORE_C_DIRS, path, &old))
		store_clear_error(); /* a damaged record is overwritten */
	if (!ino)
		ino = store_u64(json_object_get(old, "ino"));
	if (!ino)
		ino = store_new_ino(path);
	rec = json_pack("{s:i,s:I,s:I,s:I}", "mode",
			(int)(d->mode ? d->mode : 0755), "mtime",
			(json_int_t)mtime, "ctime",
			(json_int_t)(d->ctime ? d->ctime : mtime), "ino",
			(json_int_t)ino);
	if (!rec) {
		rc = -ENOMEM;
		goto out;
	}
	store_txn_begin_step(t, &m);
	if (!json_equal(old, rec))
		rc = store_batch_put_obj(t->b, STORE_C_DIRS, path, rec);
	if (!rc)
		rc = strset_add(t->dirs, path);
	rc = store_txn_end(t, &m, rc);
out:
	json_decref(old);
	json_decref(rec);
	return rc;
}

int store_txn_dir_del(struct store_txn *t, const char *path)
{
	struct store_txn_mark m;
	int rc;

	store_clear_error();
	rc = store_check_id("directory", path);
	if (!rc)
		rc = store_txn_check_new(t->dirs, "directory", path);
	if (!rc && !engine_exists(t->s->eng, STORE_C_DIRS, path))
		rc = store_fail(-ENOENT, "no directory %s recorded", path);
	if (rc)
		return rc;
	store_txn_begin_step(t, &m);
	rc = engine_batch_del(t->b, STORE_C_DIRS, path);
	if (!rc)
		rc = strset_add(t->dirs, path);
	return store_txn_end(t, &m, rc);
}

/* The strset key of a kv step: "coll\x1fkey", malloc'd. */
static char *store_txn_kv_key(const char *coll, const char *key)
{
	size_t lc = strlen(coll), lk = strlen(key);
	char *p = malloc(lc + lk + 2);

	if (p) {
		memcpy(p, coll, lc);
		p[lc] = '\x1f';
		memcpy(p + lc + 1, key, lk + 1);
	}
	return p;
}

/*
 * A kv step: a put of `j` (a new reference, stolen) or, j NULL, a delete
 * of coll/key.
 */
static int store_txn_kv(struct store_txn *t, const char *coll, const char *key,
			json_t *j)
{
	struct store_txn_mark m;
	char *k = store_txn_kv_key(coll, key);
	int rc = k ? 0 : -ENOMEM;

	if (!rc && strset_has(t->kvs, k))
		rc = store_fail(-EINVAL,
				"%s/%s is already changed by this "
				"transaction",
				coll, key);
	if (!rc && !j && !engine_exists(t->s->eng, coll, key))
		rc = store_fail(-ENOENT, "no %s/%s", coll, key);
	if (rc)
		goto out;
	store_txn_begin_step(t, &m);
	rc = j ? store_batch_put_obj(t->b, coll, key, j)
	       : engine_batch_del(t->b, coll, key);
	if (!rc)
		rc = strset_add(t->kvs, k);
	rc = store_txn_end(t, &m, rc);
out:
	json_decref(j);
	free(k);
	return rc;
}

int store_txn_kv_put(struct store_txn *t, const char *coll, const char *key,
		     const char *json, size_t len)
{
	json_t *j;
	int rc;

	store_clear_error();
	rc = store_kv_check(coll, key);
	if (!rc)
		rc = store_parse_object(key, json, len, &j);
	if (rc)
		return rc;
	return store_txn_kv(t, coll, key, j);
}

int store_txn_kv_del(struct store_txn *t, const char *coll, const char *key)
{
	int rc;

	store_clear_error();
	rc = store_kv_check(coll, key);
	if (rc)
		return rc;
	return store_txn_kv(t, coll, key, NULL);
}
