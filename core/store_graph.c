/* store_graph.c - SimpleGraphStore on the engine: triples per subject. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_int.h"

/*
 * graph_store/data holds one key per subject, {"rels": [[rel, obj], ...]}
 * in insertion order, which is SimpleGraphStore's graph_dict entry.
 */

static int store_graph_check(const char *subj, const char *rel, const char *obj)
{
	int rc = store_check_id("subject", subj);

	if (!rc)
		rc = store_check_id("relation", rel);
	if (!rc)
		rc = store_check_id("object", obj);
	return rc;
}

/* The [rel, obj] pairs of `subj` (a new reference; empty if none). */
static int store_graph_rels(struct store *s, const char *subj, json_t **out)
{
	json_t *v, *rels;
	int rc;

	rc = store_get_object(s, STORE_C_GRAPH, subj, &v);
	if (rc == -ENOENT) {
		*out = json_array();
		return *out ? 0 : -ENOMEM;
	}
	if (rc)
		return rc;
	rels = json_object_get(v, "rels");
	*out = json_is_array(rels) ? json_incref(rels) : json_array();
	json_decref(v);
	return 0;
}

static ssize_t store_graph_find(const json_t *rels, const char *rel,
				const char *obj)
{
	size_t i;

	for (i = 0; i < json_array_size(rels); i++) {
		json_t *p = json_array_get(rels, i);
		const char *r = json_string_value(json_array_get(p, 0));
		const char *o = json_string_value(json_array_get(p, 1));

		if (r && o && strcmp(r, rel) == 0 && strcmp(o, obj) == 0)
			return (ssize_t)i;
	}
	return -1;
}

/* Writes subj's pairs back (deleting the subject when none are left). */
static int store_graph_save(struct store *s, const char *subj, json_t *rels)
{
	struct engine_batch *b = engine_batch_new();
	json_t *v;
	int rc;

	if (!b)
		return -ENOMEM;
	if (json_array_size(rels) == 0) {
		rc = engine_batch_del(b, STORE_C_GRAPH, subj);
	} else {
		v = json_pack("{s:O}", "rels", rels);
		rc = v ? store_batch_put_obj(b, STORE_C_GRAPH, subj, v)
		       : -ENOMEM;
		json_decref(v);
	}
	if (!rc)
		rc = engine_commit(s->eng, b);
	engine_batch_free(b);
	return rc;
}

int store_graph_upsert(struct store *s, const char *subj, const char *rel,
		       const char *obj)
{
	json_t *rels = NULL;
	int rc;

	store_clear_error();
	rc = store_graph_check(subj, rel, obj);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->wlock);
	rc = store_graph_rels(s, subj, &rels);
	if (!rc && store_graph_find(rels, rel, obj) < 0) {
		json_array_append_new(rels, json_pack("[s,s]", rel, obj));
		rc = store_graph_save(s, subj, rels);
	}
	pthread_mutex_unlock(&s->wlock);
	json_decref(rels);
	return rc;
}

int store_graph_delete(struct store *s, const char *subj, const char *rel,
		       const char *obj)
{
	json_t *rels = NULL;
	ssize_t i;
	int rc;

	store_clear_error();
	rc = store_graph_check(subj, rel, obj);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->wlock);
	rc = store_graph_rels(s, subj, &rels);
	if (!rc) {
		i = store_graph_find(rels, rel, obj);
		if (i < 0)
			rc = -ENOENT;
		else if (json_array_remove(rels, (size_t)i))
			rc = -ENOMEM;
		else
			rc = store_graph_save(s, subj, rels);
	}
	pthread_mutex_unlock(&s->wlock);
	json_decref(rels);
	return rc;
}

int store_graph_get(struct store *s, const char *subj, char **json)
{
	json_t *rels;
	int rc;

	rc = store_graph_rels(s, subj, &rels);
	if (rc)
		return rc;
	*json = store_dump(rels);
	json_decref(rels);
	return *json ? 0 : -ENOMEM;
}

/*
 * SimpleGraphStore._get_rel_map: depth-first, [subj, rel, obj] then the
 * object's own map one level down; `limit` bounds the pairs taken per
 * subject at the top call only (the recursion uses the default 30).
 */
static int store_graph_walk(struct store *s, const char *subj, int depth,
			    int limit, json_t *out)
{
	json_t *rels;
	size_t i;
	int rc, count = 0;

	if (depth <= 0)
		return 0;
	rc = store_graph_rels(s, subj, &rels);
	if (rc)
		return rc;
	for (i = 0; i < json_array_size(rels) && !rc; i++) {
		json_t *p = json_array_get(rels, i);
		const char *rel = json_string_value(json_array_get(p, 0));
		const char *obj = json_string_value(json_array_get(p, 1));

		if (count >= limit)
			break;
		if (!rel || !obj)
			continue;
		json_array_append_new(out,
				      json_pack("[s,s,s]", subj, rel, obj));
		rc = store_graph_walk(s, obj, depth - 1, 30, out);
		count++;
	}
	json_decref(rels);
	return rc;
}

static int store_graph_collect(void *arg, const char *key,
			       enum engine_type type, const void *data,
			       size_t len)
{
	return json_array_append_new(arg, json_string(key)) ? -ENOMEM : 0;
}

int store_graph_rel_map(struct store *s, const char *const *subjs, size_t n,
			int depth, int limit, char **json)
{
	json_t *all = NULL, *ret = json_object();
	size_t i;
	int rc = 0, count = 0;

	if (!ret)
		return -ENOMEM;
	if (!subjs || n == 0) {
		all = json_array();
		rc = engine_foreach(s->eng, STORE_C_GRAPH, store_graph_collect,
				    all);
		n = json_array_size(all);
	}
	for (i = 0; i < n && !rc; i++) {
		const char *subj =
			all ? json_string_value(json_array_get(all, i))
			    : subjs[i];
		json_t *rm = json_array();
		size_t have;

		rc = store_graph_walk(s, subj, depth, limit, rm);
		have = json_array_size(rm);
		/* Then the whole map is cut to `limit` in subject order. */
		if (!rc && count + (int)have > limit) {
			while (json_array_size(rm) > (size_t)(limit - count))
				json_array_remove(rm, json_array_size(rm) - 1);
			json_object_set_new(ret, subj, rm);
			break;
		}
		count += (int)have;
		json_object_set_new(ret, subj, rm);
	}
	if (!rc) {
		*json = store_dump(ret);
		if (!*json)
			rc = -ENOMEM;
	}
	json_decref(all);
	json_decref(ret);
	return rc;
}
