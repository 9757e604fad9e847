/* persist.c - persist files generated from the store (export). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/persist_int.h"

/* --- names -------------------------------------------------------------- */

int persist_name(const char *name, enum persist_kind *kind, char *ns,
		 size_t size)
{
	static const struct {
		const char *name;
		enum persist_kind kind;
	} fixed[] = {
		{ PERSIST_F_DOCSTORE, PERSIST_DOCSTORE },
		{ PERSIST_F_INDEX, PERSIST_INDEX_STORE },
		{ PERSIST_F_GRAPH, PERSIST_GRAPH_STORE },
		{ PERSIST_F_PGRAPH, PERSIST_PROPERTY_GRAPH },
	};
	size_t n, sl = strlen(PERSIST_VEC_SUFFIX), i;

	if (!name)
		return -ENOENT;
	if (ns && size)
		ns[0] = '\0';
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(name, fixed[i].name) == 0) {
			*kind = fixed[i].kind;
			return 0;
		}
	}
	if (strcmp(name, PERSIST_VEC_LEGACY) == 0) {
		*kind = PERSIST_VECTOR_STORE;
		n = strlen(STORE_NS_DEFAULT);
		if (!ns || size <= n)
			return -EINVAL;
		memcpy(ns, STORE_NS_DEFAULT, n + 1);
		return 0;
	}
	n = strlen(name);
	if (n < sl || strcmp(name + n - sl, PERSIST_VEC_SUFFIX) != 0)
		return -ENOENT;
	n -= sl;
	if (n == 0 || n > STORE_NS_MAX || memchr(name, '/', n) ||
	    !text_is_utf8(name, n))
		return store_fail(-EINVAL,
				  "%s: a vector namespace is 1-%d bytes of "
				  "UTF-8 without '/'",
				  name, STORE_NS_MAX);
	if (!ns || size <= n)
		return -EINVAL;
	*kind = PERSIST_VECTOR_STORE;
	memcpy(ns, name, n);
	ns[n] = '\0';
	return 0;
}

void persist_file_key(enum persist_kind kind, const char *ns, char *buf,
		      size_t size)
{
	switch (kind) {
	case PERSIST_DOCSTORE:
		snprintf(buf, size, "%s", PERSIST_F_DOCSTORE);
		break;
	case PERSIST_INDEX_STORE:
		snprintf(buf, size, "%s", PERSIST_F_INDEX);
		break;
	case PERSIST_GRAPH_STORE:
		snprintf(buf, size, "%s", PERSIST_F_GRAPH);
		break;
	case PERSIST_PROPERTY_GRAPH:
		snprintf(buf, size, "%s", PERSIST_F_PGRAPH);
		break;
	case PERSIST_VECTOR_STORE:
		snprintf(buf, size, "%s" PERSIST_VEC_SUFFIX, ns);
		break;
	}
}

int persist_rec_get(struct store *s, const char *key, json_t **keys,
		    json_t **extra)
{
	json_t *rec, *k, *x;
	int rc;

	*keys = NULL;
	*extra = NULL;
	rc = store_get_object(s, STORE_C_PERSIST, key, &rec);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return store_fail(-EIO, "%s/%s is damaged", STORE_C_PERSIST,
				  key);
	k = json_object_get(rec, "keys");
	x = json_object_get(rec, "extra");
	if (json_is_array(k))
		*keys = json_incref(k);
	*extra = json_is_object(x) ? json_incref(x) : json_object();
	if (!*keys)
		*keys = json_array();
	json_decref(rec);
	if (!*keys || !*extra) {
		json_decref(*keys);
		json_decref(*extra);
		*keys = *extra = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* --- ordered id sets ---------------------------------------------------- */

static size_t persist_ids_slot(const struct persist_ids *ids, const char *id,
			       size_t len)
{
	size_t mask = ids->scap - 1;
	size_t i = (size_t)XXH3_64bits(id, len) & mask;

	for (;; i = (i + 1) & mask) {
		size_t v = ids->slots[i];
		const char *k;

		if (!v)
			return i;
		k = ids->arena + ids->off[v - 1];
		if (strncmp(k, id, len) == 0 && k[len] == '\0')
			return i;
	}
}

static int persist_ids_grow(struct persist_ids *ids)
{
	size_t cap = ids->scap ? ids->scap * 2 : 64, i;
	size_t *slots = calloc(cap, sizeof(*slots));
	size_t *old = ids->slots, ocap = ids->scap;

	if (!slots)
		return -ENOMEM;
	ids->slots = slots;
	ids->scap = cap;
	for (i = 0; i < ocap; i++) {
		if (old[i]) {
			const char *k = ids->arena + ids->off[old[i] - 1];

			slots[persist_ids_slot(ids, k, strlen(k))] = old[i];
		}
	}
	free(old);
	return 0;
}

int persist_ids_add(struct persist_ids *ids, const char *id, size_t len,
		    size_t *idx)
{
	size_t slot;

	if ((ids->n + 1) * 2 > ids->scap && persist_ids_grow(ids))
		return -ENOMEM;
	slot = persist_ids_slot(ids, id, len);
	if (ids->slots[slot]) {
		if (idx)
			*idx = ids->slots[slot] - 1;
		return 0;
	}
	if (ids->alen + len + 1 > ids->acap) {
		size_t cap = ids->acap ? ids->acap : 4096;
		char *a;

		while (cap < ids->alen + len + 1)
			cap *= 2;
		a = realloc(ids->arena, cap);
		if (!a)
			return -ENOMEM;
		ids->arena = a;
		ids->acap = cap;
	}
	if (ids->n == ids->ocap) {
		size_t cap = ids->ocap ? ids->ocap * 2 : 64;
		size_t *o = realloc(ids->off, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		ids->off = o;
		ids->ocap = cap;
	}
	memcpy(ids->arena + ids->alen, id, len);
	ids->arena[ids->alen + len] = '\0';
	ids->off[ids->n] = ids->alen;
	ids->alen += len + 1;
	ids->slots[slot] = ++ids->n;
	if (idx)
		*idx = ids->n - 1;
	return 1;
}

ssize_t persist_ids_find(const struct persist_ids *ids, const char *id,
			 size_t len)
{
	size_t v;

	if (!ids->scap)
		return -1;
	v = ids->slots[persist_ids_slot(ids, id, len)];
	return v ? (ssize_t)(v - 1) : -1;
}

void persist_ids_free(struct persist_ids *ids)
{
	free(ids->arena);
	free(ids->off);
	free(ids->slots);
	memset(ids, 0, sizeof(*ids));
}

static int persist_ids_key(void *arg, const char *key, enum engine_type type,
			   const void *data, size_t len)
{
	int rc = persist_ids_add(arg, key, strlen(key), NULL);

	(void)type;
	(void)data;
	(void)len;
	return rc < 0 ? rc : 0;
}

int persist_ids_of(struct store *s, const char *coll, struct persist_ids *ids)
{
	return engine_foreach(s->eng, coll, persist_ids_key, ids);
}

struct persist_collect {
	const char *prefix;
	char **v;
	size_t n, cap;
};

static int persist_collect_coll(void *arg, const char *coll)
{
	struct persist_collect *c = arg;

	if (strncmp(coll, c->prefix, strlen(c->prefix)) != 0)
		return 0;
	if (c->n + 2 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		char **v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n] = strdup(coll);
	if (!c->v[c->n])
		return -ENOMEM;
	c->v[++c->n] = NULL;
	return 0;
}

int persist_colls(struct store *s, const char *prefix, char ***out)
{
	struct persist_collect c = { .prefix = prefix };
	int rc;

	rc = engine_collections(s->eng, persist_collect_coll, &c);
	if (!rc && !c.v) {
		c.v = calloc(1, sizeof(*c.v));
		if (!c.v)
			rc = -ENOMEM;
	}
	if (rc) {
		if (c.v) {
			c.v[c.n] = NULL;
			store_free_strv(c.v);
		}
		return rc;
	}
	*out = c.v;
	return 0;
}

/* --- listing ------------------------------------------------------------ */

struct persist_lister {
	persist_name_fn *fn;
	void *arg;
	struct persist_ids seen;
};

static int persist_list_one(struct persist_lister *l, const char *name)
{
	int rc = persist_ids_add(&l->seen, name, strlen(name), NULL);

	if (rc <= 0)
		return rc;
	return l->fn(l->arg, name);
}

static int persist_list_ns(struct persist_lister *l, const char *ns)
{
	char name[PERSIST_NAME_MAX];

	persist_file_key(PERSIST_VECTOR_STORE, ns, name, sizeof(name));
	return persist_list_one(l, name);
}

int persist_list(struct store *s, persist_name_fn *fn, void *arg)
{
	struct persist_lister l = { .fn = fn, .arg = arg };
	struct persist_ids recs = { 0 };
	size_t sl = strlen(PERSIST_VEC_SUFFIX), i;
	char **nss = NULL, **p;
	int rc;

	store_clear_error();
	rc = persist_list_one(&l, PERSIST_F_DOCSTORE);
	if (!rc)
		rc = persist_list_one(&l, PERSIST_F_INDEX);
	if (!rc)
		rc = persist_list_one(&l, PERSIST_F_GRAPH);
	if (!rc &&
	    engine_exists(s->eng, STORE_C_PERSIST_FILES, PERSIST_F_PGRAPH))
		rc = persist_list_one(&l, PERSIST_F_PGRAPH);
	if (!rc)
		rc = persist_list_ns(&l, STORE_NS_DEFAULT);
	if (!rc)
		rc = persist_list_ns(&l, "image");
	if (!rc)
		rc = store_list_namespaces(s, &nss);
	for (p = nss; !rc && p && *p; p++)
		rc = persist_list_ns(&l, *p);
	/* namespaces written without vectors, from their records */
	if (!rc)
		rc = persist_ids_of(s, STORE_C_PERSIST, &recs);
	for (i = 0; !rc && i < recs.n; i++) {
		const char *k = persist_ids_get(&recs, i);
		size_t n = strlen(k);

		if (n > sl && strcmp(k + n - sl, PERSIST_VEC_SUFFIX) == 0)
			rc = persist_list_one(&l, k);
	}
	store_free_strv(nss);
	persist_ids_free(&recs);
	persist_ids_free(&l.seen);
	return rc;
}

/* --- export: common ----------------------------------------------------- */

void persist_out_tick(struct persist_out *x)
{
	x->done++;
	if (x->progress && (x->done & 4095) == 0)
		x->progress(x->parg, x->done, x->total);
}

/* `"key": ` after a ", " unless it is the first member of its object. */
void persist_out_key(struct persist_out *x, int *first, const char *key,
		     size_t len)
{
	if (!*first)
		pyj_lit(&x->o, ", ");
	*first = 0;
	pyj_str(&x->o, key, len);
	pyj_lit(&x->o, ": ");
}

/* A stored value (any JSON text) as Python writes it. */
int persist_out_value(struct persist_out *x, const char *what, const char *key,
		      const void *json, size_t len)
{
	if (pyj_value(&x->o, json, len))
		return store_fail(-EIO,
				  "%s/%.200s: the stored value is not "
				  "valid JSON",
				  what, key);
	return x->o.err;
}

/* A jansson value (a record's "extra" member) as Python writes it. */
int persist_out_json(struct persist_out *x, const char *key, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER |
					   JSON_ENCODE_ANY);
	int rc;

	if (!text)
		return -ENOMEM;
	rc = persist_out_value(x, STORE_C_PERSIST, key, text, strlen(text));
	free(text);
	return rc;
}

/*
 * Copies member `field` of the JSON object text `json` into x->buf (its
 * text without whitespace): 1, 0 if there is no such member, -EIO if the
 * text is not an object.
 */
int persist_out_field(struct persist_out *x, const void *json, size_t len,
		      const char *field)
{
	struct pyj_in in;
	enum pyj_tok t;
	int rc = -EIO;

	pyj_in_init(&in, json, len);
	if (pyj_next(&in) != PYJ_OBJ)
		goto out;
	for (;;) {
		t = pyj_next(&in);
		if (t == PYJ_OBJ_END) {
			rc = 0;
			break;
		}
		if (t != PYJ_KEY)
			break;
		if (in.slen == strlen(field) &&
		    memcmp(in.str, field, in.slen) == 0) {
			x->blen = 0;
			if (pyj_copy_value(&in, 0, &x->buf, &x->blen,
					   &x->bcap) == PYJ_ERROR)
				break;
			rc = 1;
			break;
		}
		if (pyj_skip_value(&in) == PYJ_ERROR)
			break;
	}
out:
	pyj_in_free(&in);
	return rc;
}

/* --- export: docstore.json and index_store.json ------------------------- */

/*
 * The vector index of index_store.json as LlamaIndex would have it now
 * (core/persist.h): the first "vector_store" struct with the nodes added
 * since, without those deleted since; or one made up when there is none.
 */
struct px_vindex {
	char *key;		   /* the first vector_store struct, or NULL */
	struct persist_ids stored; /* its nodes_dict keys */
	struct persist_ids gone;   /* of those, deleted since */
	struct persist_ids added;  /* nodes with a default vector, not listed */
	int changed;		   /* key's struct is written merged */
	int synth;		   /* a "vector_index" struct is shown */
};

#define PX_SYNTH_KEY "vector_index"

static void px_vindex_free(struct px_vindex *vi)
{
	free(vi->key);
	persist_ids_free(&vi->stored);
	persist_ids_free(&vi->gone);
	persist_ids_free(&vi->added);
}

/* 1 if the index struct text `json` has "__type__": "vector_store". */
static int px_is_vector_struct(const void *json, size_t len)
{
	static const char want[] = "vector_store";
	struct pyj_in in;
	int yes;

	pyj_in_init(&in, json, len);
	yes = pyj_next(&in) == PYJ_OBJ && pyj_member(&in, "__type__") == 1 &&
	      pyj_next(&in) == PYJ_STR && in.slen == sizeof(want) - 1 &&
	      memcmp(in.str, want, in.slen) == 0;
	pyj_in_free(&in);
	return yes;
}

static int px_find_vector_struct(void *arg, const char *key,
				 enum engine_type type, const void *data,
				 size_t len)
{
	char **out = arg;

	if (type != ENGINE_JSON || !px_is_vector_struct(data, len))
		return 0;
	*out = strdup(key);
	return *out ? 1 : -ENOMEM;
}

/*
 * The "__data__" string of an index struct, decoded, malloc'd into *out
 * (*len bytes): 0, or -EINVAL if there is none or it is not a string.
 */
static int px_struct_data(const void *json, size_t len, char **out,
			  size_t *olen)
{
	struct pyj_in in;
	int rc = -EINVAL;

	*out = NULL;
	pyj_in_init(&in, json, len);
	if (pyj_next(&in) == PYJ_OBJ && pyj_member(&in, "__data__") == 1 &&
	    pyj_next(&in) == PYJ_STR) {
		*out = malloc(in.slen + 1);
		if (*out) {
			memcpy(*out, in.str, in.slen);
			(*out)[in.slen] = '\0';
			*olen = in.slen;
			rc = 0;
		} else {
			rc = -ENOMEM;
		}
	}
	pyj_in_free(&in);
	return rc;
}

/* The keys of the "nodes_dict" object of IndexDict JSON text into ids. */
static int px_nodes_dict_keys(const char *json, size_t len,
			      struct persist_ids *ids)
{
	struct pyj_in in;
	enum pyj_tok t;
	int rc = -EINVAL, m = -1;

	pyj_in_init(&in, json, len);
	if (pyj_next(&in) == PYJ_OBJ)
		m = pyj_member(&in, "nodes_dict");
	if (m == 0) {
		rc = 0; /* no nodes_dict: nothing listed */
	} else if (m == 1 && pyj_next(&in) == PYJ_OBJ) {
		while ((t = pyj_next(&in)) == PYJ_KEY) {
			rc = persist_ids_add(ids, in.str, in.slen, NULL);
			if (rc < 0 || pyj_skip_value(&in) == PYJ_ERROR)
				break;
		}
		rc = t == PYJ_OBJ_END ? 0 : rc < 0 ? rc : -EINVAL;
	}
	pyj_in_free(&in);
	return rc;
}

static int px_vindex_prepare(struct persist_out *x, struct px_vindex *vi)
{
	struct engine *e = x->s->eng;
	struct persist_ids vecs = { 0 };
	char *inner = NULL;
	void *data = NULL;
	size_t len, ilen, i;
	int rc;

	rc = engine_foreach(e, STORE_C_INDEX, px_find_vector_struct, &vi->key);
	if (rc < 0)
		return rc;
	if (vi->key) {
		rc = engine_get(e, STORE_C_INDEX, vi->key, NULL, &data, &len);
		if (!rc)
			rc = px_struct_data(data, len, &inner, &ilen);
		if (!rc)
			rc = px_nodes_dict_keys(inner, ilen, &vi->stored);
		free(data);
		free(inner);
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			/* not IndexDict JSON: shown as it is, never merged */
			free(vi->key);
			vi->key = NULL;
			return 0;
		}
	} else if (engine_exists(e, STORE_C_INDEX, PX_SYNTH_KEY)) {
		return 0; /* the name is taken by a struct of another type */
	}
	if (engine_count(e, STORE_C_NODES_DEL)) {
		for (i = 0; i < vi->stored.n; i++) {
			const char *id = persist_ids_get(&vi->stored, i);

			if (!engine_exists(e, STORE_C_NODES_DEL, id) ||
			    engine_exists(e, STORE_C_DATA, id))
				continue;
			rc = persist_ids_add(&vi->gone, id, strlen(id), NULL);
			if (rc < 0)
				return rc;
		}
	}
	rc = persist_ids_of(x->s, STORE_VEC_PREFIX STORE_NS_DEFAULT, &vecs);
	for (i = 0; !rc && i < vecs.n; i++) {
		const char *id = persist_ids_get(&vecs, i);
		size_t n = strlen(id);

		if (persist_ids_find(&vi->stored, id, n) >= 0 ||
		    !engine_exists(e, STORE_C_DATA, id))
			continue;
		rc = persist_ids_add(&vi->added, id, n, NULL);
		rc = rc < 0 ? rc : 0;
	}
	persist_ids_free(&vecs);
	if (rc)
		return rc;
	vi->changed = vi->key && (vi->gone.n || vi->added.n);
	vi->synth = !vi->key && vi->added.n;
	return 0;
}

/* The nodes added since, `"id": "id"` each, inside nodes_dict. */
static void px_vindex_added(struct pyj_out *o, const struct px_vindex *vi,
			    int first)
{
	size_t i;

	for (i = 0; i < vi->added.n; i++) {
		const char *id = persist_ids_get(&vi->added, i);
		size_t n = strlen(id);

		if (!first)
			pyj_lit(o, ", ");
		first = 0;
		pyj_str(o, id, n);
		pyj_lit(o, ": ");
		pyj_str(o, id, n);
	}
}

/*
 * The IndexDict JSON text `json` written into o as json.dumps writes it,
 * its nodes_dict merged.  Keys and values other than nodes_dict's are
 * kept as they are (in Python's spelling).
 */
static int px_vindex_inner(struct persist_out *x, struct pyj_out *o,
			   const struct px_vindex *vi, const char *json,
			   size_t len)
{
	char *key = NULL, *val = NULL;
	size_t kcap = 0, vlen, vcap = 0;
	int first = 1, seen = 0, nfirst, rc = -EIO;
	struct pyj_in in;
	enum pyj_tok t;

	pyj_in_init(&in, json, len);
	if (pyj_next(&in) != PYJ_OBJ)
		goto out;
	pyj_lit(o, "{");
	while ((t = pyj_next(&in)) == PYJ_KEY) {
		int nodes =
			in.slen == 10 && memcmp(in.str, "nodes_dict", 10) == 0;

		if (!first)
			pyj_lit(o, ", ");
		first = 0;
		pyj_str(o, in.str, in.slen);
		pyj_lit(o, ": ");
		if (!nodes) {
			vlen = 0;
			if (pyj_copy_value(&in, 0, &val, &vlen, &vcap) ==
				    PYJ_ERROR ||
			    pyj_value(o, val, vlen))
				goto out;
			continue;
		}
		if (pyj_next(&in) != PYJ_OBJ)
			goto out;
		seen = 1;
		nfirst = 1;
		pyj_lit(o, "{");
		while ((t = pyj_next(&in)) == PYJ_KEY) {
			size_t klen = in.slen;
			int skip;

			if (klen + 1 > kcap) {
				char *k = realloc(key, klen + 1);

				if (!k) {
					rc = -ENOMEM;
					goto out;
				}
				key = k;
				kcap = klen + 1;
			}
			memcpy(key, in.str, klen);
			skip = persist_ids_find(&vi->gone, key, klen) >= 0 &&
			       !memchr(key, 0, klen);
			vlen = 0;
			if (pyj_copy_value(&in, 0, &val, &vlen, &vcap) ==
			    PYJ_ERROR)
				goto out;
			if (skip)
				continue;
			if (!nfirst)
				pyj_lit(o, ", ");
			nfirst = 0;
			pyj_str(o, key, klen);
			pyj_lit(o, ": ");
			if (pyj_value(o, val, vlen))
				goto out;
		}
		if (t != PYJ_OBJ_END)
			goto out;
		px_vindex_added(o, vi, nfirst);
		pyj_lit(o, "}");
	}
	if (t != PYJ_OBJ_END)
		goto out;
	if (!seen) {
		pyj_lit(o, first ? "\"nodes_dict\": {" : ", \"nodes_dict\": {");
		px_vindex_added(o, vi, 1);
		pyj_lit(o, "}");
	}
	pyj_lit(o, "}");
	rc = 0;
out:
	pyj_in_free(&in);
	free(key);
	free(val);
	if (rc == -EIO)
		store_fail(rc, "%s/%s: the stored index struct is damaged",
			   STORE_C_INDEX, vi->key ? vi->key : PX_SYNTH_KEY);
	return rc;
}

/* Opens the JSON string of "__data__": inner output goes through it. */
static int px_inner_begin(struct persist_out *x, struct pyj_out *inner)
{
	pyj_raw(&x->o, "\"", 1);
	return pyj_out_init(inner, pyj_str_sink, &x->o);
}

static int px_inner_end(struct persist_out *x, struct pyj_out *inner, int rc)
{
	int frc;

	if (rc)
		inner->err = rc; /* drop what is buffered */
	frc = pyj_out_finish(inner);
	pyj_raw(&x->o, "\"", 1);
	if (!rc)
		rc = frc;
	return rc ? rc : x->o.err;
}

/* The first vector_store struct, `json` as stored, written merged. */
static int px_vindex_write(struct persist_out *x, const struct px_vindex *vi,
			   const void *json, size_t len)
{
	struct pyj_out inner;
	struct pyj_in in;
	enum pyj_tok t;
	int first = 1, rc = -EIO;

	if (!vi->changed)
		return persist_out_value(x, STORE_C_INDEX, vi->key, json, len);
	pyj_in_init(&in, json, len);
	if (pyj_next(&in) != PYJ_OBJ)
		goto out;
	pyj_lit(&x->o, "{");
	while ((t = pyj_next(&in)) == PYJ_KEY) {
		persist_out_key(x, &first, in.str, in.slen);
		if (in.slen == 8 && memcmp(in.str, "__data__", 8) == 0) {
			if (pyj_next(&in) != PYJ_STR)
				goto out;
			rc = px_inner_begin(x, &inner);
			if (rc)
				goto out;
			rc = px_inner_end(x, &inner,
					  px_vindex_inner(x, &inner, vi, in.str,
							  in.slen));
			if (rc)
				goto out;
			rc = -EIO;
			continue;
		}
		x->blen = 0;
		if (pyj_copy_value(&in, 0, &x->buf, &x->blen, &x->bcap) ==
			    PYJ_ERROR ||
		    pyj_value(&x->o, x->buf, x->blen))
			goto out;
	}
	if (t != PYJ_OBJ_END)
		goto out;
	pyj_lit(&x->o, "}");
	rc = x->o.err;
out:
	pyj_in_free(&in);
	if (rc == -EIO)
		store_fail(rc, "%s/%s: the stored index struct is damaged",
			   STORE_C_INDEX, vi->key);
	return rc;
}

/* The struct LlamaIndex's VectorStoreIndex would have made. */
static int px_vindex_synth(struct persist_out *x, const struct px_vindex *vi)
{
	struct pyj_out inner;
	int rc;

	pyj_lit(&x->o, "{\"__type__\": \"vector_store\", \"__data__\": ");
	rc = px_inner_begin(x, &inner);
	if (rc)
		return rc;
	pyj_lit(&inner, "{\"index_id\": \"" PX_SYNTH_KEY
			"\", \"summary\": null, \"nodes_dict\": {");
	px_vindex_added(&inner, vi, 1);
	pyj_lit(&inner, "}, \"doc_id_dict\": {}, \"embeddings_dict\": {}}");
	rc = px_inner_end(x, &inner, 0);
	pyj_lit(&x->o, "}");
	return rc ? rc : x->o.err;
}

struct px_coll {
	struct persist_out *x;
	const char *coll;
	const struct px_vindex *vi; /* index_store/data only */
	int first;
};

static int px_coll_entry(void *arg, const char *key, enum engine_type type,
			 const void *data, size_t len)
{
	struct px_coll *c = arg;
	int rc;

	if (type != ENGINE_JSON)
		return 0; /* not something LlamaIndex can hold */
	persist_out_key(c->x, &c->first, key, strlen(key));
	if (c->vi && c->vi->key && strcmp(key, c->vi->key) == 0)
		rc = px_vindex_write(c->x, c->vi, data, len);
	else
		rc = persist_out_value(c->x, c->coll, key, data, len);
	persist_out_tick(c->x);
	return rc;
}

/* A collection as one JSON object, in the engine's (insertion) order. */
static int px_coll(struct persist_out *x, const char *coll,
		   const struct px_vindex *vi)
{
	struct px_coll c = { .x = x, .coll = coll, .vi = vi, .first = 1 };
	int rc;

	pyj_lit(&x->o, "{");
	rc = engine_foreach(x->s->eng, coll, px_coll_entry, &c);
	if (!rc && vi && vi->synth) {
		persist_out_key(x, &c.first, PX_SYNTH_KEY,
				strlen(PX_SYNTH_KEY));
		rc = px_vindex_synth(x, vi);
	}
	pyj_lit(&x->o, "}");
	return rc ? rc : x->o.err;
}

int persist_keys_has(const json_t *keys, const char *k)
{
	size_t i;

	for (i = 0; i < json_array_size(keys); i++)
		if (strcmp(json_string_value(json_array_get(keys, i)), k) == 0)
			return 1;
	return 0;
}

int persist_keys_append(json_t *keys, const char *k)
{
	if (persist_keys_has(keys, k))
		return 0;
	return json_array_append_new(keys, json_string(k)) ? -ENOMEM : 0;
}

/*
 * docstore.json or index_store.json: the file's top-level keys in its
 * order (the record's), then the collections it did not have: those
 * LlamaIndex makes, in the order a fresh store makes them, then the
 * others in the engine's order.
 */
static int px_kv_file(struct persist_out *x, const char *file,
		      const char *prefix, const char *const *known,
		      const struct px_vindex *vi)
{
	json_t *keys = NULL, *extra = NULL;
	char **colls = NULL, **p;
	size_t i, plen = strlen(prefix);
	int rc, first = 1;

	rc = persist_rec_get(x->s, file, &keys, &extra);
	if (!rc && !keys) {
		keys = json_array();
		extra = json_object();
		rc = keys && extra ? 0 : -ENOMEM;
	}
	if (!rc)
		rc = persist_colls(x->s, prefix, &colls);
	for (i = 0; !rc && known[i]; i++) {
		int show = engine_count(x->s->eng, known[i]) > 0 ||
			   (vi && vi->synth &&
			    strcmp(known[i], STORE_C_INDEX) == 0);

		if (show)
			rc = persist_keys_append(keys, known[i]);
	}
	for (p = colls; !rc && p && *p; p++)
		rc = persist_keys_append(keys, *p);
	for (p = colls; p && *p; p++)
		x->total += engine_count(x->s->eng, *p);
	if (rc)
		goto out;
	pyj_lit(&x->o, "{");
	for (i = 0; !rc && i < json_array_size(keys); i++) {
		const char *k = json_string_value(json_array_get(keys, i));
		json_t *v = json_object_get(extra, k);

		if (!k || (!v && strncmp(k, prefix, plen) != 0))
			continue;
		persist_out_key(x, &first, k, strlen(k));
		if (v)
			rc = persist_out_json(x, k, v);
		else
			rc = px_coll(x, k,
				     strcmp(k, STORE_C_INDEX) == 0 ? vi : NULL);
	}
	pyj_lit(&x->o, "}");
	if (!rc)
		rc = x->o.err;
out:
	json_decref(keys);
	json_decref(extra);
	store_free_strv(colls);
	return rc;
}

static int px_docstore(struct persist_out *x)
{
	static const char *const known[] = { STORE_C_META, STORE_C_DATA,
					     STORE_C_REFS, NULL };

	return px_kv_file(x, PERSIST_F_DOCSTORE, PERSIST_DOCSTORE_PREFIX, known,
			  NULL);
}

static int px_index_store(struct persist_out *x)
{
	static const char *const known[] = { STORE_C_INDEX, NULL };
	struct px_vindex vi = { 0 };
	int rc;

	rc = px_vindex_prepare(x, &vi);
	if (!rc)
		rc = px_kv_file(x, PERSIST_F_INDEX, PERSIST_INDEX_PREFIX, known,
				&vi);
	px_vindex_free(&vi);
	return rc;
}

/* --- export: graph_store.json and property_graph_store.json ------------- */

static int px_graph_entry(void *arg, const char *key, enum engine_type type,
			  const void *data, size_t len)
{
	struct px_coll *c = arg;
	struct persist_out *x = c->x;
	int rc;

	if (type != ENGINE_JSON)
		return 0;
	persist_out_key(x, &c->first, key, strlen(key));
	rc = persist_out_field(x, data, len, "rels");
	if (rc < 0)
		return store_fail(-EIO, "%s/%.200s is damaged", STORE_C_GRAPH,
				  key);
	if (rc == 0)
		pyj_lit(&x->o, "[]");
	else
		rc = persist_out_value(x, STORE_C_GRAPH, key, x->buf, x->blen);
	persist_out_tick(x);
	return rc < 0 ? rc : x->o.err;
}

/* {"graph_dict": {subject: [[rel, obj], ...]}}, as SimpleGraphStore. */
static int px_graph(struct persist_out *x)
{
	struct px_coll c = { .x = x, .coll = STORE_C_GRAPH, .first = 1 };
	json_t *keys = NULL, *extra = NULL;
	size_t i;
	int rc, first = 1;

	rc = persist_rec_get(x->s, PERSIST_F_GRAPH, &keys, &extra);
	if (rc)
		return rc;
	if (!keys) {
		keys = json_pack("[s]", PERSIST_GRAPH_DICT);
		extra = json_object();
	} else if (engine_count(x->s->eng, STORE_C_GRAPH)) {
		rc = persist_keys_append(keys, PERSIST_GRAPH_DICT);
	}
	if (!keys || !extra)
		rc = -ENOMEM;
	x->total = engine_count(x->s->eng, STORE_C_GRAPH);
	if (!rc)
		pyj_lit(&x->o, "{");
	for (i = 0; !rc && i < json_array_size(keys); i++) {
		const char *k = json_string_value(json_array_get(keys, i));
		json_t *v = json_object_get(extra, k);

		if (!k || (!v && strcmp(k, PERSIST_GRAPH_DICT) != 0))
			continue;
		persist_out_key(x, &first, k, strlen(k));
		if (v) {
			rc = persist_out_json(x, k, v);
			continue;
		}
		pyj_lit(&x->o, "{");
		rc = engine_foreach(x->s->eng, STORE_C_GRAPH, px_graph_entry,
				    &c);
		pyj_lit(&x->o, "}");
	}
	if (!rc)
		pyj_lit(&x->o, "}");
	json_decref(keys);
	json_decref(extra);
	return rc ? rc : x->o.err;
}

/* Kept as its text (lodefs/persist_files), written in Python's spelling. */
static int px_property_graph(struct persist_out *x)
{
	struct engine_ref ref;
	int rc;

	rc = engine_get_ref(x->s->eng, STORE_C_PERSIST_FILES, PERSIST_F_PGRAPH,
			    &ref);
	if (rc)
		return rc;
	rc = persist_out_value(x, STORE_C_PERSIST_FILES, PERSIST_F_PGRAPH,
			       ref.data, ref.len);
	engine_ref_release(x->s->eng, &ref);
	return rc;
}

/* --- export ------------------------------------------------------------- */

/* Does the directory show file `name` (of kind, ns) now? */
static int px_shown(struct store *s, enum persist_kind kind, const char *ns,
		    const char *name)
{
	char coll[STORE_NS_MAX + 32];

	switch (kind) {
	case PERSIST_PROPERTY_GRAPH:
		return engine_exists(s->eng, STORE_C_PERSIST_FILES, name);
	case PERSIST_VECTOR_STORE:
		if (strcmp(name, PERSIST_VEC_LEGACY) == 0)
			return 0; /* read as default__vector_store.json */
		if (strcmp(ns, STORE_NS_DEFAULT) == 0 ||
		    strcmp(ns, "image") == 0 ||
		    engine_exists(s->eng, STORE_C_PERSIST, name))
			return 1;
		snprintf(coll, sizeof(coll), STORE_VEC_PREFIX "%s", ns);
		return engine_count(s->eng, coll) > 0;
	default:
		return 1;
	}
}

int persist_export(struct store *s, const char *name, pyj_write_fn *write,
		   void *arg, persist_progress_fn *progress, void *parg)
{
	struct persist_out x = { .s = s, .progress = progress, .parg = parg };
	char ns[STORE_NS_MAX + 1];
	enum persist_kind kind;
	int rc, frc;

	store_clear_error();
	rc = persist_name(name, &kind, ns, sizeof(ns));
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	/* one consistent state: local writers wait */
	pthread_mutex_lock(&s->wlock);
	if (!px_shown(s, kind, ns, name)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	rc = pyj_out_init(&x.o, write, arg);
	if (rc)
		goto out_unlock;
	switch (kind) {
	case PERSIST_DOCSTORE:
		rc = px_docstore(&x);
		break;
	case PERSIST_INDEX_STORE:
		rc = px_index_store(&x);
		break;
	case PERSIST_GRAPH_STORE:
		rc = px_graph(&x);
		break;
	case PERSIST_PROPERTY_GRAPH:
		rc = px_property_graph(&x);
		break;
	case PERSIST_VECTOR_STORE:
		rc = persist_export_vectors(&x, ns);
		break;
	}
	if (rc && !x.o.err)
		x.o.err = rc; /* nothing more is handed to write() */
	frc = pyj_out_finish(&x.o);
	if (!rc)
		rc = frc;
	if (!rc && progress)
		progress(parg, x.total, x.total);
out_unlock:
	pthread_mutex_unlock(&s->wlock);
	free(x.buf);
	return rc;
}
