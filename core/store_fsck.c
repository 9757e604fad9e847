/* store_fsck.c - cross-reference checks over an open store. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/store_int.h"

/*
 * Everything is gathered with engine_foreach first (callbacks must not call
 * back into the engine) and compared afterwards.
 */
struct store_fsck {
	struct strset *nodes;	/* docstore/data keys */
	struct strset *meta;	/* docstore/metadata keys */
	struct strset *listed;	/* "ref\x1fnode" pairs of ref_doc_info */
	struct strset *content; /* "id\x1fhash" of lodefs/content */
	json_t *sources;	/* [[node, ref|null], ...] */
	json_t *files;		/* [[id, hash], ...] of lodefs/files */
	json_t *refs;		/* [[ref, node], ...] of ref_doc_info */
	engine_report_fn *report;
	void *arg;
	int problems;
	int rc;
};

static void store_fsck_problem(struct store_fsck *f, const char *key,
			       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void store_fsck_problem(struct store_fsck *f, const char *key,
			       const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->report)
		f->report(f->arg, key, msg);
	if (strncmp(msg, "warning:", 8) != 0)
		f->problems++;
}

/*
 * One string for a pair of ids, joined by 0x1f.  Ids holding 0x1f could
 * make two pairs collide; that can only hide a problem, never invent one.
 */
static char *store_pair_key(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (p) {
		memcpy(p, a, la);
		p[la] = '\x1f';
		memcpy(p + la + 1, b, lb + 1);
	}
	return p;
}

static int store_pair_add(struct strset *set, const char *a, const char *b)
{
	char *p = store_pair_key(a, b);
	int rc = p ? strset_add(set, p) : -ENOMEM;

	free(p);
	return rc;
}

static int store_pair_has(const struct strset *set, const char *a,
			  const char *b)
{
	char *p = store_pair_key(a, b);
	int has = p && strset_has(set, p);

	free(p);
	return has;
}

static int store_fsck_data(void *arg, const char *key, enum engine_type type,
			   const void *data, size_t len)
{
	struct store_fsck *f = arg;
	json_t *w = json_loadb(data, len, 0, NULL), *d, *src;
	const char *ref;

	d = json_object_get(w, "__data__");
	if (!json_is_object(d)) {
		store_fsck_problem(f, key, "node %s has no \"__data__\" object",
				   key);
	} else {
		src = json_object_get(json_object_get(d, "relationships"),
				      STORE_REL_SOURCE);
		ref = json_string_value(json_object_get(src, "node_id"));
		json_array_append_new(f->sources,
				      json_pack("[s,s*]", key, ref));
	}
	json_decref(w);
	return strset_add(f->nodes, key);
}

static int store_fsck_meta(void *arg, const char *key, enum engine_type type,
			   const void *data, size_t len)
{
	struct store_fsck *f = arg;

	return strset_add(f->meta, key);
}

static int store_fsck_refs(void *arg, const char *key, enum engine_type type,
			   const void *data, size_t len)
{
	struct store_fsck *f = arg;
	json_t *info = json_loadb(data, len, 0, NULL);
	json_t *ids = json_object_get(info, "node_ids");
	size_t i;
	int rc = 0;

	if (!json_is_array(ids))
		store_fsck_problem(f, key, "ref_doc_info %s has no node_ids",
				   key);
	for (i = 0; i < json_array_size(ids) && !rc; i++) {
		const char *id = json_string_value(json_array_get(ids, i));

		if (!id)
			continue;
		rc = store_pair_add(f->listed, key, id);
		json_array_append_new(f->refs, json_pack("[s,s]", key, id));
	}
	json_decref(info);
	return rc;
}

static int store_fsck_content(void *arg, const char *key, enum engine_type type,
			      const void *data, size_t len)
{
	struct store_fsck *f = arg;
	XXH128_hash_t h = XXH3_128bits(data, len);
	char hex[33];

	snprintf(hex, sizeof(hex), "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
	return store_pair_add(f->content, key, hex);
}

static int store_fsck_files(void *arg, const char *key, enum engine_type type,
			    const void *data, size_t len)
{
	struct store_fsck *f = arg;
	json_t *j = json_loadb(data, len, 0, NULL);
	const char *hash = json_string_value(json_object_get(j, "hash"));

	json_array_append_new(f->files, json_pack("[s,s*]", key, hash));
	json_decref(j);
	return 0;
}

struct store_fsck_vec {
	struct store_fsck *f;
	const char *ns;
};

static int store_fsck_vecs(void *arg, const char *key, enum engine_type type,
			   const void *data, size_t len)
{
	struct store_fsck_vec *v = arg;

	if (!strset_has(v->f->nodes, key))
		store_fsck_problem(v->f, key,
				   "warning: vector %s in namespace %s has no "
				   "node",
				   key, v->ns);
	return 0;
}

static void store_fsck_compare(struct store_fsck *f)
{
	size_t i;

	for (i = 0; i < json_array_size(f->refs); i++) {
		json_t *p = json_array_get(f->refs, i);
		const char *ref = json_string_value(json_array_get(p, 0));
		const char *id = json_string_value(json_array_get(p, 1));

		if (!strset_has(f->nodes, id))
			store_fsck_problem(f, ref,
					   "ref_doc_info %s lists node %s, "
					   "which does not exist",
					   ref, id);
	}
	for (i = 0; i < json_array_size(f->sources); i++) {
		json_t *p = json_array_get(f->sources, i);
		const char *id = json_string_value(json_array_get(p, 0));
		const char *ref = json_string_value(json_array_get(p, 1));

		if (!strset_has(f->meta, id))
			store_fsck_problem(
				f, id, "node %s has no docstore/metadata", id);
		if (ref && !store_pair_has(f->listed, ref, id))
			store_fsck_problem(f, id,
					   "node %s is not listed in the "
					   "ref_doc_info of its source %s",
					   id, ref);
	}
	for (i = 0; i < json_array_size(f->files); i++) {
		json_t *p = json_array_get(f->files, i);
		const char *id = json_string_value(json_array_get(p, 0));
		const char *hash = json_string_value(json_array_get(p, 1));

		if (!hash || !store_pair_has(f->content, id, hash))
			store_fsck_problem(f, id,
					   "document %s: content missing or "
					   "not matching its hash",
					   id);
	}
}

int store_fsck(struct store *s, engine_report_fn *report, void *arg)
{
	struct store_fsck f = { 0 };
	char **nss = NULL, **p;
	int rc;

	f.report = report;
	f.arg = arg;
	f.nodes = strset_new();
	f.meta = strset_new();
	f.listed = strset_new();
	f.content = strset_new();
	f.sources = json_array();
	f.files = json_array();
	f.refs = json_array();
	if (!f.nodes || !f.meta || !f.listed || !f.content || !f.sources ||
	    !f.files || !f.refs) {
		rc = -ENOMEM;
		goto out;
	}
	rc = engine_foreach(s->eng, STORE_C_DATA, store_fsck_data, &f);
	if (!rc)
		rc = engine_foreach(s->eng, STORE_C_META, store_fsck_meta, &f);
	if (!rc)
		rc = engine_foreach(s->eng, STORE_C_REFS, store_fsck_refs, &f);
	if (!rc)
		rc = engine_foreach(s->eng, STORE_C_CONTENT, store_fsck_content,
				    &f);
	if (!rc)
		rc = engine_foreach(s->eng, STORE_C_FILES, store_fsck_files,
				    &f);
	/* lodefs/dirs refers to nothing: its records need no checks here */
	if (!rc)
		rc = store_list_namespaces(s, &nss);
	for (p = nss; !rc && p && *p; p++) {
		struct store_fsck_vec v = { &f, *p };
		char coll[STORE_NS_MAX + 32];

		snprintf(coll, sizeof(coll), STORE_VEC_PREFIX "%s", *p);
		rc = engine_foreach(s->eng, coll, store_fsck_vecs, &v);
	}
	if (!rc)
		store_fsck_compare(&f);
out:
	store_free_strv(nss);
	strset_free(f.nodes);
	strset_free(f.meta);
	strset_free(f.listed);
	strset_free(f.content);
	json_decref(f.sources);
	json_decref(f.files);
	json_decref(f.refs);
	return rc ? rc : f.problems;
}
