/* persist_vec.c - <ns>__vector_store.json generated from the store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/persist_int.h"

/*
 * SimpleVectorStoreData, member by member: embedding_dict from
 * vector_store/<ns> in its order; text_id_to_ref_doc_id and metadata_dict
 * in the same order, each id's entry from its lodefs/vec_meta/<ns> record
 * (the member the file had for it, if any), or, for an id without one
 * (its vector came through docs/ or nodes/), derived from its node as
 * SimpleVectorStore.add derives it; then the records of ids without a
 * vector, in their own order.
 */
struct pv {
	struct persist_out *x;
	char vcoll[STORE_NS_MAX + 32];
	char mcoll[STORE_NS_MAX + 32];
	struct persist_ids ids; /* the vector ids, in order */
	const char *field;	/* PERSIST_VM_REF or PERSIST_VM_META */
	int meta;		/* field is PERSIST_VM_META */
	int first;
};

static int pv_vec_entry(void *arg, const char *key, enum engine_type type,
			const void *data, size_t len)
{
	struct pv *v = arg;
	struct pyj_out *o = &v->x->o;
	const float *f = data;
	size_t i, n = len / sizeof(float);

	if (type != ENGINE_VEC)
		return 0;
	persist_out_key(v->x, &v->first, key, strlen(key));
	pyj_raw(o, "[", 1);
	for (i = 0; i < n; i++) {
		if (i)
			pyj_raw(o, ", ", 2);
		pyj_f32(o, f[i]);
	}
	pyj_raw(o, "]", 1);
	persist_out_tick(v->x);
	return o->err;
}

/* Python's class name for a docstore "__type__" (ObjectType). */
static const char *pv_class_of(const char *type)
{
	static const struct {
		const char *type, *name;
	} map[] = {
		{ "1", "TextNode" },	  { "2", "ImageNode" },
		{ "3", "IndexNode" },	  { "4", "Document" },
		{ "5", "ImageDocument" },
	};
	size_t i;

	for (i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(type, map[i].type) == 0)
			return map[i].name;
	return "TextNode";
}

/*
 * What SimpleVectorStore.add writes for node `id`: its ref doc id
 * (node.ref_doc_id or "None"), or node_to_metadata_dict(node,
 * remove_text=True, flat_metadata=False) without "_node_content": the
 * node's metadata with "_node_type", "document_id", "doc_id" and
 * "ref_doc_id" set (in place when the metadata has them, else at the
 * end).  A vector without a node is taken as an empty TextNode.
 */
static int pv_derive(struct pv *v, const char *id)
{
	static const char *const set[] = { "_node_type", "document_id",
					   "doc_id", "ref_doc_id" };
	struct persist_out *x = v->x;
	struct engine_ref ref;
	const char *doc, *val[4], *k;
	json_t *w = NULL, *d, *src, *md, *mv;
	int seen[4] = { 0 }, first = 1, rc;
	size_t j;

	rc = engine_get_ref(x->s->eng, STORE_C_DATA, id, &ref);
	if (!rc) {
		w = json_loadb(ref.data, ref.len, 0, NULL);
		engine_ref_release(x->s->eng, &ref);
	} else if (rc != -ENOENT) {
		return rc;
	}
	rc = 0;
	d = json_object_get(w, "__data__");
	src = json_object_get(json_object_get(d, "relationships"),
			      STORE_REL_SOURCE);
	doc = json_string_value(json_object_get(src, "node_id"));
	if (!doc || !*doc)
		doc = "None";
	if (!v->meta) {
		pyj_str(&x->o, doc, strlen(doc));
		json_decref(w);
		return x->o.err;
	}
	val[0] = json_string_value(json_object_get(d, "class_name"));
	if (!val[0])
		val[0] = pv_class_of(
			json_string_value(json_object_get(w, "__type__")));
	val[1] = val[2] = val[3] = doc;
	md = json_object_get(d, "metadata");
	pyj_raw(&x->o, "{", 1);
	json_object_foreach(md, k, mv)
	{
		if (strcmp(k, "_node_content") == 0)
			continue;
		persist_out_key(x, &first, k, strlen(k));
		for (j = 0; j < 4 && strcmp(k, set[j]) != 0; j++)
			;
		if (j < 4) {
			seen[j] = 1;
			pyj_str(&x->o, val[j], strlen(val[j]));
		} else if ((rc = persist_out_json(x, id, mv))) {
			break;
		}
	}
	for (j = 0; !rc && j < 4; j++) {
		if (seen[j])
			continue;
		persist_out_key(x, &first, set[j], strlen(set[j]));
		pyj_str(&x->o, val[j], strlen(val[j]));
	}
	pyj_raw(&x->o, "}", 1);
	json_decref(w);
	return rc ? rc : x->o.err;
}

/* The entry of `key` from its vec_meta record `data`, if it has one. */
static int pv_record(struct pv *v, const char *key, const void *data,
		     size_t len)
{
	struct persist_out *x = v->x;
	int rc = persist_out_field(x, data, len, v->field);

	if (rc < 0)
		return store_fail(-EIO, "%s/%.200s is damaged", v->mcoll, key);
	if (rc == 0)
		return 0;
	persist_out_key(x, &v->first, key, strlen(key));
	return persist_out_value(x, v->mcoll, key, x->buf, x->blen);
}

/* A record of an id without a vector (the file had it so). */
static int pv_left_entry(void *arg, const char *key, enum engine_type type,
			 const void *data, size_t len)
{
	struct pv *v = arg;

	if (type != ENGINE_JSON ||
	    persist_ids_find(&v->ids, key, strlen(key)) >= 0)
		return 0;
	return pv_record(v, key, data, len);
}

/* text_id_to_ref_doc_id, or with meta set metadata_dict. */
static int pv_dict(struct pv *v, int meta)
{
	struct persist_out *x = v->x;
	struct engine_ref ref;
	size_t i;
	int rc = 0;

	v->meta = meta;
	v->field = meta ? PERSIST_VM_META : PERSIST_VM_REF;
	v->first = 1;
	pyj_raw(&x->o, "{", 1);
	for (i = 0; !rc && i < v->ids.n; i++) {
		const char *id = persist_ids_get(&v->ids, i);

		rc = engine_get_ref(x->s->eng, v->mcoll, id, &ref);
		if (!rc) {
			rc = pv_record(v, id, ref.data, ref.len);
			engine_ref_release(x->s->eng, &ref);
		} else if (rc == -ENOENT) {
			persist_out_key(x, &v->first, id, strlen(id));
			rc = pv_derive(v, id);
		}
		persist_out_tick(x);
	}
	if (!rc)
		rc = engine_foreach(x->s->eng, v->mcoll, pv_left_entry, v);
	pyj_raw(&x->o, "}", 1);
	return rc ? rc : x->o.err;
}

/* 1 if some vector has no vec_meta record (its entries are derived). */
static int pv_any_derived(const struct pv *v)
{
	size_t i;

	for (i = 0; i < v->ids.n; i++)
		if (!engine_exists(v->x->s->eng, v->mcoll,
				   persist_ids_get(&v->ids, i)))
			return 1;
	return 0;
}

int persist_export_vectors(struct persist_out *x, const char *ns)
{
	static const char *const std[] = { PERSIST_EMBEDDINGS, PERSIST_REF_DOCS,
					   PERSIST_METADATA };
	struct pv v = { .x = x };
	char file[PERSIST_NAME_MAX];
	json_t *keys = NULL, *extra = NULL;
	size_t i;
	int rc, first = 1;

	snprintf(v.vcoll, sizeof(v.vcoll), STORE_VEC_PREFIX "%s", ns);
	store_vec_meta_coll(ns, v.mcoll, sizeof(v.mcoll));
	persist_file_key(PERSIST_VECTOR_STORE, ns, file, sizeof(file));
	rc = persist_rec_get(x->s, file, &keys, &extra);
	if (!rc)
		rc = persist_ids_of(x->s, v.vcoll, &v.ids);
	if (rc)
		goto out;
	if (!keys) {
		keys = json_pack("[s,s,s]", std[0], std[1], std[2]);
		extra = json_object();
		rc = keys && extra ? 0 : -ENOMEM;
	} else if (v.ids.n) {
		/*
		 * A file that lacked a member (older layouts) keeps lacking
		 * it, unless vectors added since need it.
		 */
		int derived = pv_any_derived(&v);

		for (i = 0; !rc && i < 3; i++)
			if (i == 0 || derived)
				rc = persist_keys_append(keys, std[i]);
	}
	if (rc)
		goto out;
	x->total = 3 * (uint64_t)v.ids.n;
	pyj_raw(&x->o, "{", 1);
	for (i = 0; !rc && i < json_array_size(keys); i++) {
		const char *k = json_string_value(json_array_get(keys, i));
		json_t *val = json_object_get(extra, k);
		int which;

		for (which = 0; k && which < 3 && strcmp(k, std[which]);
		     which++)
			;
		if (!k || (!val && which == 3))
			continue;
		persist_out_key(x, &first, k, strlen(k));
		if (val) {
			rc = persist_out_json(x, k, val);
		} else if (which == 0) {
			v.first = 1;
			pyj_raw(&x->o, "{", 1);
			rc = engine_foreach(x->s->eng, v.vcoll, pv_vec_entry,
					    &v);
			pyj_raw(&x->o, "}", 1);
		} else {
			rc = pv_dict(&v, which == 2);
		}
	}
	pyj_raw(&x->o, "}", 1);
	if (!rc)
		rc = x->o.err;
out:
	json_decref(keys);
	json_decref(extra);
	persist_ids_free(&v.ids);
	return rc;
}
