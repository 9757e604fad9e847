/* test_store.c - the storage context: documents, nodes, vectors, graph, query. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "backends/backend.h"
#include "core/store.h"
#include "core/vec.h"
#include "core/vec_int.h"

static struct backend *be;
static struct store *st;

static void setup(void)
{
	cr_assert_eq(backend_memory_open(&be), 0);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
}

static void teardown(void)
{
	store_close(st);
	backend_close(be);
}

static void reopen(void)
{
	store_close(st);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
}

static int put_doc(const char *id, const char *text, const char *meta)
{
	struct store_doc d = { .id = id,
			       .data = text,
			       .len = strlen(text),
			       .user_meta = meta,
			       .mtime = 1700000000 };
	int r = -1, rc = store_docs_put(st, &d, 1, &r);

	return rc ? rc : r;
}

static json_t *kv(const char *coll, const char *key)
{
	char *text;
	size_t len;
	json_t *j;

	if (store_kv_get(st, coll, key, &text, &len))
		return NULL;
	j = json_loadb(text, len, 0, NULL);
	free(text);
	return j;
}

/* Total number of keys in the store: "nothing changed" checks use it. */
static uint64_t keys(void)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.engine.keys;
}

static size_t query_ids(const char *text, size_t k, char ids[][64])
{
	struct store_query q = { .text = text, .k = k, .alpha = -1 };
	struct store_hit *hits;
	size_t n, i;

	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
		     store_last_error());
	for (i = 0; i < n; i++)
		snprintf(ids[i], 64, "%s",
			 hits[i].ref_doc_id ? hits[i].ref_doc_id : "");
	store_hits_free(hits, n);
	return n;
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, put_document_is_found_by_keyword_query)
{
	char ids[4][64];

	cr_assert_eq(put_doc("fruit/apples.txt",
			     "Apples grow on trees. Farmers pick apples.",
			     NULL),
		     STORE_INDEXED);
	cr_assert_eq(put_doc("lang/rust.txt",
			     "Rust is a language with memory safety.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(query_ids("who picks the apples", 2, ids), 1);
	cr_assert_str_eq(ids[0], "fruit/apples.txt");
	cr_assert_eq(query_ids("memory safety", 2, ids), 1);
	cr_assert_str_eq(ids[0], "lang/rust.txt");
}

Test(store, document_nodes_carry_llamaindex_relationships_and_metadata)
{
	struct store_opts o;
	json_t *info, *ids, *n0, *n1, *d0, *rels, *meta;
	char text[4000];
	size_t i;

	/* Small chunks so that one document makes several nodes. */
	store_close(st);
	store_opts_init(&o);
	o.chunk_size = 40;
	o.chunk_overlap = 5;
	cr_assert_eq(store_open(be, &o, &st), 0);
	text[0] = '\0';
	for (i = 0; i < 20; i++)
		strcat(text, "The orchard keeps apple trees in neat rows. ");
	cr_assert_eq(put_doc("a.txt", text, "{\"author\": \"alice\"}"),
		     STORE_INDEXED);

	info = kv("docstore/ref_doc_info", "a.txt");
	cr_assert_not_null(info);
	ids = json_object_get(info, "node_ids");
	cr_assert_gt(json_array_size(ids), 1);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(info, "metadata"), "author")),
			 "alice");
	n0 = kv("docstore/data", json_string_value(json_array_get(ids, 0)));
	n1 = kv("docstore/data", json_string_value(json_array_get(ids, 1)));
	cr_assert(n0 && n1);
	cr_assert_str_eq(json_string_value(json_object_get(n0, "__type__")),
			 "1");
	d0 = json_object_get(n0, "__data__");
	cr_assert(json_is_null(json_object_get(d0, "embedding")));
	rels = json_object_get(d0, "relationships");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(rels, "1"), "node_id")),
			 "a.txt");
	cr_assert_null(json_object_get(rels, "2"), "first node: no PREVIOUS");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(rels, "3"), "node_id")),
			 json_string_value(json_array_get(ids, 1)));
	rels = json_object_get(json_object_get(n1, "__data__"),
			       "relationships");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(rels, "2"), "node_id")),
			 json_string_value(json_array_get(ids, 0)));
	meta = json_object_get(d0, "metadata");
	cr_assert_str_eq(json_string_value(json_object_get(meta, "file_name")),
			 "a.txt");
	cr_assert_str_eq(json_string_value(json_object_get(meta, "file_type")),
			 "text/plain");
	cr_assert_eq(json_integer_value(json_object_get(meta, "file_size")),
		     (json_int_t)strlen(text));
	cr_assert_str_eq(json_string_value(json_object_get(meta, "author")),
			 "alice");
	/* Offsets are code points into the document, as Python's. */
	cr_assert_eq(json_integer_value(json_object_get(d0, "start_char_idx")),
		     0);
	json_decref(info);
	json_decref(n0);
	json_decref(n1);
}

/* A text with every escape JSON has, quotes, slashes, DEL and non-ASCII. */
static void awkward_text(char *text, size_t cap)
{
	size_t n = 0;
	int r, c;

	for (r = 0; r < 12 && n + 200 < cap; r++) {
		for (c = 1; c < 0x20; c++) {
			text[n++] = 'w';
			text[n++] = (char)c;
		}
		n += (size_t)snprintf(
			text + n, cap - n,
			" Okapis \"quote\" back\\slash a/b del\x7f "
			"caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac %d. ",
			r);
	}
	text[n] = '\0';
}

Test(store, node_json_is_exactly_what_jansson_writes)
{
	static const char *const fields[] = {
		"id_",
		"embedding",
		"metadata",
		"excluded_embed_metadata_keys",
		"excluded_llm_metadata_keys",
		"relationships",
		"metadata_template",
		"metadata_separator",
		"text",
		"mimetype",
		"start_char_idx",
		"end_char_idx",
		"metadata_seperator",
		"text_template",
		"class_name",
	};
	static const char id[] = "odd/a \"b\" \\c\x01\xc3\xbc.txt";
	struct store_opts o;
	json_t *info, *ids, *node, *d, *rels, *v;
	const char *k;
	char text[8000];
	size_t i, f, n = 0;

	store_close(st);
	store_opts_init(&o);
	o.chunk_size = 40;
	o.chunk_overlap = 5;
	cr_assert_eq(store_open(be, &o, &st), 0);
	awkward_text(text, sizeof(text));
	cr_assert_eq(
		put_doc(id, text,
			"{\"t\\u00e9st\": \"a\\tb \\\"c\\\" \\u0001\", "
			"\"pi\": 3.25, \"n\": -7, \"l\": [1, {\"x\": null}]}"),
		STORE_INDEXED);
	info = kv("docstore/ref_doc_info", id);
	ids = json_object_get(info, "node_ids");
	cr_assert_gt(json_array_size(ids), 2);
	for (i = 0; i < json_array_size(ids); i++) {
		const char *nid = json_string_value(json_array_get(ids, i));
		char *raw, *again;
		size_t len;

		/* stored as jansson's compact dump of what it parses to */
		cr_assert_eq(store_kv_get(st, "docstore/data", nid, &raw, &len),
			     0);
		node = json_loadb(raw, len, 0, NULL);
		cr_assert_not_null(node);
		again = json_dumps(node, JSON_COMPACT | JSON_PRESERVE_ORDER);
		cr_assert_str_eq(again, raw);
		free(again);
		free(raw);
		/* with LlamaIndex's fields in LlamaIndex's order */
		d = json_object_get(node, "__data__");
		f = 0;
		json_object_foreach(d, k, v)
		{
			cr_assert_lt(f, sizeof(fields) / sizeof(fields[0]));
			cr_assert_str_eq(k, fields[f++]);
		}
		cr_assert_eq(f, sizeof(fields) / sizeof(fields[0]));
		rels = json_object_get(d, "relationships");
		cr_assert(json_equal(
			json_object_get(json_object_get(rels, "1"), "metadata"),
			json_object_get(d, "metadata")));
		cr_assert_str_eq(
			json_string_value(json_object_get(
				json_object_get(rels, "1"), "node_id")),
			id);
		n += json_string_length(json_object_get(d, "text"));
		json_decref(node);
	}
	cr_assert_geq(n, strlen(text), "the nodes cover the text");
	json_decref(info);
}

Test(store, keyword_index_made_at_commit_equals_one_made_from_the_log)
{
	static const char *const words[] = {
		"okapis", "quote", "caf\xc3\xa9", "\xe6\x9d\xb1\xe4\xba\xac",
		"slash",  "del"
	};
	struct store_query q = { .k = 50, .mode = STORE_MODE_KEYWORD };
	struct store_hit *a[6], *b;
	size_t na[6], nb, i, j;
	struct store_txn *t;
	char text[8000];
	int r;

	awkward_text(text, sizeof(text));
	cr_assert_eq(store_txn_begin(st, &t), 0);
	for (i = 0; i < 30; i++) {
		char id[32];
		struct store_doc d = { .id = id,
				       .data = text + i * 97,
				       .len = strlen(text + i * 97),
				       .mtime = 1700000000 };

		snprintf(id, sizeof(id), "k/%zu.txt", i);
		cr_assert_eq(store_txn_doc_put(t, &d, &r), 0, "%s",
			     store_last_error());
	}
	/* a failing step in the middle is rolled back with its hints */
	{
		struct store_doc bad = { .id = "k/0.txt",
					 .data = "x",
					 .len = 1 };

		cr_assert_eq(store_txn_doc_put(t, &bad, &r), -EINVAL);
	}
	cr_assert_eq(store_txn_commit(t), 0);
	for (i = 0; i < 6; i++) {
		q.text = words[i];
		cr_assert_eq(store_query(st, &q, &a[i], &na[i]), 0);
		cr_assert_gt(na[i], 0, "%s", words[i]);
	}
	reopen(); /* no checkpoint: the index is made again from the log */
	for (i = 0; i < 6; i++) {
		q.text = words[i];
		cr_assert_eq(store_query(st, &q, &b, &nb), 0);
		cr_assert_eq(nb, na[i]);
		for (j = 0; j < nb; j++) {
			cr_assert_str_eq(b[j].node_id, a[i][j].node_id);
			cr_assert_eq(b[j].score, a[i][j].score);
		}
		store_hits_free(b, nb);
		store_hits_free(a[i], na[i]);
	}
}

Test(store, every_node_gets_a_builtin_vector_and_docstore_metadata)
{
	json_t *info, *ids, *m;
	float *v;
	uint32_t dim;

	cr_assert_eq(put_doc("b.md", "Paris is the capital of France.", NULL),
		     STORE_INDEXED);
	info = kv("docstore/ref_doc_info", "b.md");
	ids = json_object_get(info, "node_ids");
	cr_assert_eq(json_array_size(ids), 1);
	cr_assert_eq(store_vec_get(st, "default",
				   json_string_value(json_array_get(ids, 0)),
				   &v, &dim),
		     0);
	cr_assert_eq(dim, VEC_EMBED_DIM_DEFAULT);
	free(v);
	m = kv("docstore/metadata", json_string_value(json_array_get(ids, 0)));
	cr_assert_str_eq(json_string_value(json_object_get(m, "ref_doc_id")),
			 "b.md");
	json_decref(m);
	m = kv("docstore/metadata", "b.md");
	cr_assert_not_null(json_object_get(m, "doc_hash"));
	json_decref(m);
	json_decref(info);
}

Test(store, same_content_again_is_unchanged_and_writes_nothing)
{
	struct engine_stats before, after;

	cr_assert_eq(put_doc("c.txt", "Same words twice.", NULL),
		     STORE_INDEXED);
	engine_get_stats(store_engine(st), &before);
	cr_assert_eq(put_doc("c.txt", "Same words twice.", NULL),
		     STORE_UNCHANGED);
	engine_get_stats(store_engine(st), &after);
	cr_assert_eq(after.commits, before.commits);
	/* New user metadata is a change. */
	cr_assert_eq(put_doc("c.txt", "Same words twice.", "{\"k\": 1}"),
		     STORE_INDEXED);
}

Test(store, binary_file_is_stored_but_not_indexed)
{
	static const char bin[] = { 'a', '\0', (char)0xff, 'b' };
	struct store_doc d = { .id = "img.bin",
			       .data = bin,
			       .len = sizeof(bin) };
	void *data;
	size_t len;
	int r;

	cr_assert_eq(store_docs_put(st, &d, 1, &r), 0);
	cr_assert_eq(r, STORE_BINARY);
	cr_assert_eq(store_doc_get(st, "img.bin", &data, &len), 0);
	cr_assert_eq(len, sizeof(bin));
	cr_assert_eq(memcmp(data, bin, len), 0);
	free(data);
	cr_assert_null(kv("docstore/ref_doc_info", "img.bin"));
}

Test(store, overwrite_replaces_old_nodes)
{
	struct store_opts o;
	json_t *info;
	char big[3000] = "", ids[4][64];
	size_t i, before;

	store_close(st);
	store_opts_init(&o);
	o.chunk_size = 30;
	o.chunk_overlap = 0;
	cr_assert_eq(store_open(be, &o, &st), 0);
	for (i = 0; i < 30; i++)
		strcat(big, "Zebras gallop across the savanna. ");
	cr_assert_eq(put_doc("z.txt", big, NULL), STORE_INDEXED);
	info = kv("docstore/ref_doc_info", "z.txt");
	before = json_array_size(json_object_get(info, "node_ids"));
	json_decref(info);
	cr_assert_gt(before, 2);
	cr_assert_eq(put_doc("z.txt", "Penguins swim.", NULL), STORE_INDEXED);
	info = kv("docstore/ref_doc_info", "z.txt");
	cr_assert_eq(json_array_size(json_object_get(info, "node_ids")), 1);
	json_decref(info);
	cr_assert_eq(engine_count(store_engine(st), "docstore/data"), 1);
	cr_assert_eq(query_ids("zebras", 5, ids), 0);
	cr_assert_eq(query_ids("penguins", 5, ids), 1);
}

Test(store, deleting_a_document_cascades)
{
	char ids[4][64];
	void *data;
	size_t len;

	cr_assert_eq(put_doc("d.txt", "Volcanoes erupt with lava.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(put_doc("e.txt", "Glaciers move slowly.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_del(st, "d.txt"), 0);
	cr_assert_eq(store_doc_get(st, "d.txt", &data, &len), -ENOENT);
	cr_assert_null(kv("docstore/ref_doc_info", "d.txt"));
	cr_assert_null(kv("docstore/metadata", "d.txt"));
	cr_assert_eq(engine_count(store_engine(st), "docstore/data"), 1);
	cr_assert_eq(engine_count(store_engine(st), "vector_store/default"), 1);
	cr_assert_eq(engine_count(store_engine(st), "docstore/metadata"), 2);
	cr_assert_eq(query_ids("lava volcanoes", 5, ids), 0);
	cr_assert_eq(store_doc_del(st, "d.txt"), -ENOENT);
}

Test(store, doc_ref_reads_in_place_and_keeps_the_version_it_was_taken_of)
{
	struct engine_ref r1, r2;

	cr_assert_eq(put_doc("r.txt", "Otters hold hands.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_get_ref(st, "r.txt", &r1), 0);
	cr_assert_eq(r1.len, 18);
	cr_assert_str_eq(r1.data, "Otters hold hands.");
	cr_assert_eq(put_doc("r.txt", "Beavers build dams.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_get_ref(st, "r.txt", &r2), 0);
	cr_assert_str_eq(r2.data, "Beavers build dams.");
	cr_assert_eq(store_doc_del(st, "r.txt"), 0);
	cr_assert_str_eq(r1.data, "Otters hold hands.");
	cr_assert_str_eq(r2.data, "Beavers build dams.");
	store_ref_release(st, &r1);
	store_ref_release(st, &r2);
	cr_assert_eq(store_doc_get_ref(st, "r.txt", &r1), -ENOENT);
	cr_assert_null(r1.data);
	store_ref_release(st, &r1); /* zeroed: nothing to do */
}

Test(store, bad_document_ids_are_refused_and_nothing_changes)
{
	static const char *bad[] = { "",    "/abs", "a/../b",  "a//b",
				     "./a", "dir/", "\xff\xfe" };
	char longid[10241];
	uint64_t n0;
	size_t i;

	cr_assert_eq(put_doc("ok.txt", "fine", NULL), STORE_INDEXED);
	n0 = keys();
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(put_doc(bad[i], "text", NULL), -EINVAL,
			     "id \"%s\" accepted", bad[i]);
		cr_assert_neq(store_last_error()[0], '\0');
	}
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	cr_assert_lt(put_doc(longid, "text", NULL), 0);
	cr_assert_eq(put_doc("ok2.txt", "text", "[1, 2]"), -EINVAL);
	cr_assert_eq(put_doc("ok3.txt", "text", "{broken"), -EINVAL);
	cr_assert_eq(keys(), n0);
}

Test(store, a_batch_with_one_bad_document_applies_nothing)
{
	struct store_doc d[2] = {
		{ .id = "good.txt", .data = "good", .len = 4 },
		{ .id = "../bad", .data = "bad", .len = 3 },
	};
	uint64_t n0 = keys();

	cr_assert_eq(store_docs_put(st, d, 2, NULL), -EINVAL);
	cr_assert_eq(keys(), n0);
	cr_assert_eq(store_doc_exists(st, "good.txt"), 0);
}

static const char node_json[] =
	"{\"id_\": \"n1\", \"embedding\": [1.0, 0.0, 0.0], "
	"\"metadata\": {\"year\": 2021}, \"relationships\": {\"1\": "
	"{\"node_id\": \"doc1\", \"node_type\": \"4\", \"metadata\": {}, "
	"\"hash\": \"h\", \"class_name\": \"RelatedNodeInfo\"}}, "
	"\"text\": \"Hello nodes\", \"class_name\": \"TextNode\"}";

Test(store, node_with_embedding_goes_to_vector_store_and_null_in_docstore)
{
	json_t *n, *info;
	float *v;
	uint32_t dim;
	char *text;
	size_t len;

	cr_assert_eq(store_node_put(st, node_json, strlen(node_json)), 0, "%s",
		     store_last_error());
	cr_assert_eq(store_vec_get(st, "default", "n1", &v, &dim), 0);
	cr_assert_eq(dim, 3);
	cr_assert_float_eq(v[0], 1.0f, 0);
	free(v);
	cr_assert_eq(store_node_get(st, "n1", &text, &len), 0);
	n = json_loadb(text, len, 0, NULL);
	free(text);
	cr_assert(json_is_null(json_object_get(n, "embedding")));
	cr_assert_str_eq(json_string_value(json_object_get(n, "text")),
			 "Hello nodes");
	json_decref(n);
	info = kv("docstore/ref_doc_info", "doc1");
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(info, "node_ids"), 0)),
			 "n1");
	json_decref(info);
}

Test(store, invalid_nodes_are_refused_and_nothing_changes)
{
	static const char *bad[] = {
		"{\"id_\": \"x\", \"text\": ",	    /* truncated */
		"[1, 2, 3]",			    /* not an object */
		"{\"text\": \"no id\"}",	    /* no id_ */
		"{\"id_\": \"\", \"text\": \"t\"}", /* empty id */
		"{\"id_\": \"x\", \"text\": 5}",    /* text not a string */
		"{\"id_\": \"x\", \"embedding\": [1, \"a\"]}",
		"{\"id_\": \"x\", \"embedding\": [1.0, 2.0]}", /* wrong dim */
		"{\"id_\": \"x\", \"metadata\": [1]}",
		"{\"id_\": \"a\\u0000b\", \"text\": \"t\"}", /* NUL in id */
		"{\"id_\": \"x\", \"relationships\": {\"1\": "
		"{\"node_id\": \"d\\u0000e\"}}}",
		"{\"id_\": \"\xff\xfe\", \"text\": \"t\"}", /* not UTF-8 */
	};
	uint64_t n0;
	size_t i;

	cr_assert_eq(store_node_put(st, node_json, strlen(node_json)), 0);
	n0 = keys();
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(store_node_put(st, bad[i], strlen(bad[i])),
			     -EINVAL, "accepted: %s", bad[i]);
		cr_assert_neq(store_last_error()[0], '\0');
	}
	cr_assert_eq(keys(), n0);
}

Test(store, deleting_a_node_updates_ref_doc_info)
{
	static const char n2[] =
		"{\"id_\": \"n2\", \"embedding\": [0.0, 1.0, 0.0], "
		"\"relationships\": {\"1\": {\"node_id\": \"doc1\"}}, "
		"\"text\": \"Second\"}";
	json_t *info;

	cr_assert_eq(store_node_put(st, node_json, strlen(node_json)), 0);
	cr_assert_eq(store_node_put(st, n2, strlen(n2)), 0);
	cr_assert_eq(store_node_del(st, "n1"), 0);
	info = kv("docstore/ref_doc_info", "doc1");
	cr_assert_eq(json_array_size(json_object_get(info, "node_ids")), 1);
	json_decref(info);
	cr_assert_eq(store_node_del(st, "n2"), 0);
	cr_assert_null(kv("docstore/ref_doc_info", "doc1"),
		       "an empty ref doc goes away");
	cr_assert_eq(engine_count(store_engine(st), "vector_store/default"), 0);
	cr_assert_eq(store_node_del(st, "n2"), -ENOENT);
}

Test(store, builtin_vectors_make_way_for_a_models_dimension_only_when_empty)
{
	char ids[4][64];

	/* Built-in 1024-dim vectors own the default namespace... */
	cr_assert_eq(put_doc("w.txt", "Walruses rest on ice.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_node_put(st, node_json, strlen(node_json)), -EINVAL);
	cr_assert_not_null(strstr(store_last_error(), "1024"));
	/* ...but the document is still found by keyword. */
	cr_assert_eq(query_ids("walruses", 2, ids), 1);
}

Test(store, vectors_of_the_wrong_dimension_are_refused)
{
	float v3[3] = { 1, 2, 3 }, v2[2] = { 1, 2 };

	cr_assert_eq(store_vec_put(st, "image", "a", v3, 3), 0);
	cr_assert_eq(store_vec_put(st, "image", "b", v2, 2), -EINVAL);
	cr_assert_eq(store_vec_put(st, "image", "c", v3, 0), -EINVAL);
	cr_assert_eq(store_vec_put(st, "bad/ns", "c", v3, 3), -EINVAL);
	cr_assert_eq(engine_count(store_engine(st), "vector_store/image"), 1);
}

/* Deterministic rows in [-1, 1) for the bulk vector tests. */
static void fill_rows(float *v, size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2 -
			       1);
	}
}

Test(store, vec_put_many_is_one_commit_and_all_or_nothing)
{
	enum { N = 300, D = 8 };
	static float rows[N * (D + 1)];
	static char names[N][16];
	const char *ids[N];
	uint64_t before;
	float *got;
	uint32_t dim;
	size_t i;

	fill_rows(rows, N * (D + 1), 3);
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "r%zu", i);
		ids[i] = names[i];
	}
	/* a stride of D + 1: the rows of an fvecs file, dims in between */
	cr_assert_eq(store_vec_put_many(st, "bulk", ids, rows + 1, D + 1, N, D,
					NULL, NULL),
		     0, "%s", store_last_error());
	cr_assert_eq(engine_count(store_engine(st), "vector_store/bulk"), N);
	cr_assert_eq(store_vec_get(st, "bulk", "r123", &got, &dim), 0);
	cr_assert_eq(dim, D);
	cr_assert_arr_eq(got, rows + 123 * (D + 1) + 1, D * sizeof(float));
	free(got);

	before = keys();
	/* another dimension than the namespace's: nothing */
	cr_assert_eq(
		store_vec_put_many(st, "bulk", ids, rows, 4, N, 4, NULL, NULL),
		-EINVAL);
	cr_assert(strstr(store_last_error(), "holds 8"), "%s",
		  store_last_error());
	/* one invalid id among good ones: nothing */
	ids[N - 1] = "";
	cr_assert_eq(
		store_vec_put_many(st, "fresh", ids, rows, D, N, D, NULL, NULL),
		-EINVAL);
	cr_assert_eq(keys(), before);
	cr_assert_eq(engine_count(store_engine(st), "vector_store/fresh"), 0);
}

Test(store, vec_search_equals_one_vector_query_per_query)
{
	enum { N = 2000, D = 16, NQ = 70 }; /* 70: two passes of 64 */
	static float rows[N * D], qs[NQ * D];
	static char names[N][16];
	const char *ids[N];
	struct vec_hit *h[NQ];
	size_t nh[NQ], i, j;

	fill_rows(rows, N * D, 5);
	fill_rows(qs, NQ * D, 6);
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "n%04zu", i);
		ids[i] = names[i];
	}
	cr_assert_eq(
		store_vec_put_many(st, NULL, ids, rows, D, N, D, NULL, NULL),
		0);
	cr_assert_eq(store_vec_search(st, NULL, qs, NQ, D, 7, h, nh), 0);
	for (i = 0; i < NQ; i++) {
		struct store_query q = { .embedding = qs + i * D,
					 .dim = D,
					 .k = 7,
					 .mode = STORE_MODE_VECTOR };
		struct store_hit *hits;
		size_t n;

		cr_assert_eq(store_query(st, &q, &hits, &n), 0);
		cr_assert_eq(n, nh[i]);
		for (j = 0; j < n; j++) {
			cr_assert_str_eq(hits[j].node_id, h[i][j].key);
			cr_assert(hits[j].score == h[i][j].score);
		}
		store_hits_free(hits, n);
		vec_hits_free(h[i], nh[i]);
	}
	cr_assert_eq(store_vec_search(st, NULL, qs, NQ, D + 1, 7, h, nh),
		     -EINVAL);
	cr_assert_eq(store_vec_search(st, "empty", qs, NQ, D, 7, h, nh), 0);
	cr_assert_eq(nh[0], 0);
}

struct qthread {
	const float *q;
	uint32_t dim;
	struct store_hit *hits;
	size_t n;
	int rc;
};

static void *qthread_run(void *arg)
{
	struct qthread *t = arg;
	struct store_query q = { .embedding = t->q,
				 .dim = t->dim,
				 .k = 5,
				 .mode = STORE_MODE_VECTOR };

	t->rc = store_query(st, &q, &t->hits, &t->n);
	return NULL;
}

/* store_query's exact scans coalesce: eight threads, one pass. */
Test(store, concurrent_vector_queries_share_one_pass)
{
	enum { N = 3000, D = 24, NT = 8 };
	static float rows[N * D], qs[NT * D];
	static char names[N][16];
	const char *ids[N];
	struct qthread t[NT];
	pthread_t th[NT];
	uint64_t p0, q0, p1, q1;
	size_t i, j;

	fill_rows(rows, N * D, 8);
	fill_rows(qs, NT * D, 9);
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "c%04zu", i);
		ids[i] = names[i];
	}
	cr_assert_eq(
		store_vec_put_many(st, NULL, ids, rows, D, N, D, NULL, NULL),
		0);
	vec_coalesce_stats(&p0, &q0);
	vec_coalesce_hold(NT);
	for (i = 0; i < NT; i++) {
		t[i] = (struct qthread){ .q = qs + i * D, .dim = D };
		cr_assert_eq(pthread_create(&th[i], NULL, qthread_run, &t[i]),
			     0);
	}
	for (i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	vec_coalesce_stats(&p1, &q1);
	cr_assert_eq(p1 - p0, 1);
	cr_assert_eq(q1 - q0, NT);
	for (i = 0; i < NT; i++) {
		struct qthread solo = { .q = qs + i * D, .dim = D };

		cr_assert_eq(t[i].rc, 0);
		qthread_run(&solo);
		cr_assert_eq(solo.rc, 0);
		cr_assert_eq(solo.n, t[i].n);
		for (j = 0; j < solo.n; j++) {
			cr_assert_str_eq(solo.hits[j].node_id,
					 t[i].hits[j].node_id);
			cr_assert(solo.hits[j].score == t[i].hits[j].score);
		}
		store_hits_free(solo.hits, solo.n);
		store_hits_free(t[i].hits, t[i].n);
	}
}

Test(store, index_structs_roundtrip_and_bad_ones_are_refused)
{
	static const char ix[] =
		"{\"__type__\": \"vector_store\", \"__data__\": \"{}\"}";
	char *text;
	size_t len;

	cr_assert_eq(store_index_put(st, "vi", ix, strlen(ix)), 0);
	cr_assert_eq(store_index_get(st, "vi", &text, &len), 0);
	cr_assert_not_null(strstr(text, "vector_store"));
	free(text);
	cr_assert_eq(store_index_put(st, "x", "{\"__data__\": 1}", 15),
		     -EINVAL);
	cr_assert_eq(store_index_put(st, "x", "{", 1), -EINVAL);
	cr_assert_eq(store_index_del(st, "vi"), 0);
	cr_assert_eq(store_index_get(st, "vi", &text, &len), -ENOENT);
}

Test(store, state_and_keyword_index_survive_reopen)
{
	char ids[4][64];

	cr_assert_eq(put_doc("r.txt", "Reindeer pull sleighs.", NULL),
		     STORE_INDEXED);
	reopen();
	cr_assert_eq(query_ids("reindeer", 3, ids), 1);
	cr_assert_str_eq(ids[0], "r.txt");
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	reopen();
	cr_assert_eq(query_ids("sleighs", 3, ids), 1);
}

Test(store, failed_backend_write_changes_nothing_and_can_be_retried)
{
	struct backend *fault;
	char ids[4][64];
	uint64_t n0;

	store_close(st);
	cr_assert_eq(backend_fault_open(be, &fault), 0);
	be = fault; /* the wrapper owns the memory backend now */
	cr_assert_eq(store_open(be, NULL, &st), 0);
	cr_assert_eq(put_doc("f.txt", "Foxes hunt at dusk.", NULL),
		     STORE_INDEXED);
	n0 = keys();
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 1, 1, -ENOSPC),
		     0);
	cr_assert_eq(put_doc("g.txt", "Geese fly south.", NULL), -ENOSPC);
	cr_assert_eq(keys(), n0);
	cr_assert_eq(query_ids("geese", 3, ids), 0);
	cr_assert_eq(put_doc("g.txt", "Geese fly south.", NULL), STORE_INDEXED);
	cr_assert_eq(query_ids("geese", 3, ids), 1);
	reopen();
	cr_assert_eq(query_ids("geese", 3, ids), 1);
}

Test(store, fsck_is_clean_after_normal_use_and_finds_broken_references)
{
	int problems = 0;

	/* The node's 3-dim vector claims the default namespace first. */
	cr_assert_eq(store_node_put(st, node_json, strlen(node_json)), 0);
	cr_assert_eq(put_doc("h.txt", "Herons wade in shallow water.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
	/* A ref_doc_info entry naming a node that does not exist. */
	cr_assert_eq(store_kv_put(st, "docstore/ref_doc_info", "ghost",
				  "{\"node_ids\": [\"nope\"]}", 22),
		     0);
	problems = store_fsck(st, NULL, NULL);
	cr_assert_eq(problems, 1);
}

/* --- query options ------------------------------------------------------ */

Test(store, query_restricted_to_a_document_and_by_metadata_filter)
{
	struct store_query q = { .text = "river", .k = 5, .alpha = -1 };
	const char *docs[] = { "r2.txt" };
	struct vec_filters *f;
	struct store_hit *hits;
	char err[128];
	size_t n;

	cr_assert_eq(put_doc("r1.txt", "The river floods.", "{\"year\": 2001}"),
		     STORE_INDEXED);
	cr_assert_eq(put_doc("r2.txt", "A river bend.", "{\"year\": 2020}"),
		     STORE_INDEXED);
	q.doc_ids = docs;
	q.n_doc_ids = 1;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].ref_doc_id, "r2.txt");
	store_hits_free(hits, n);

	q.doc_ids = NULL;
	q.n_doc_ids = 0;
	cr_assert_eq(vec_filter_new(VEC_COND_AND, &f), 0);
	cr_assert_eq(vec_filter_parse_where("year<2010", f, err, sizeof(err)),
		     0);
	q.filters = f;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].ref_doc_id, "r1.txt");
	store_hits_free(hits, n);
	vec_filter_free(f);
}

Test(store, vector_query_with_builtin_embedding_and_hybrid)
{
	struct store_query q = { .text = "apple orchard",
				 .k = 1,
				 .mode = STORE_MODE_VECTOR,
				 .alpha = -1 };
	struct store_hit *hits;
	size_t n;

	cr_assert_eq(put_doc("o.txt", "An apple orchard in spring.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(put_doc("s.txt", "Submarines dive deep.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
		     store_last_error());
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].ref_doc_id, "o.txt");
	store_hits_free(hits, n);
	q.mode = STORE_MODE_HYBRID;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].ref_doc_id, "o.txt");
	store_hits_free(hits, n);
}

Test(store, query_json_has_llamaindex_fields)
{
	struct store_query q = { .text = "kites", .k = 3, .alpha = -1 };
	struct store_hit *hits;
	json_t *j, *node;
	char *text;
	size_t n;

	cr_assert_eq(put_doc("k.txt", "Kites fly in wind.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	text = store_hits_json(&q, hits, n);
	j = json_loads(text, 0, NULL);
	cr_assert_not_null(j);
	node = json_array_get(json_object_get(j, "nodes"), 0);
	cr_assert_eq(json_integer_value(json_object_get(node, "rank")), 1);
	cr_assert(json_is_real(json_object_get(node, "score")));
	cr_assert_str_eq(json_string_value(json_object_get(node, "ref_doc_id")),
			 "k.txt");
	cr_assert_str_eq(json_string_value(json_object_get(node, "text")),
			 "Kites fly in wind.");
	cr_assert(json_is_object(json_object_get(node, "metadata")));
	cr_assert_eq(json_array_size(json_object_get(j, "ids")), 1);
	cr_assert_eq(json_array_size(json_object_get(j, "similarities")), 1);
	json_decref(j);
	free(text);
	store_hits_free(hits, n);
}

/* --- fixtures: SimpleVectorStore and SimpleGraphStore parity ------------- */

static json_t *fixture(const char *rel)
{
	const char *shared = getenv("LODEFS_SHARED");
	char path[4096];
	json_t *j;

	snprintf(path, sizeof(path), "%s/fixtures/%s",
		 shared ? shared : "../shared", rel);
	j = json_load_file(path, 0, NULL);
	if (!j)
		cr_skip_test("fixture %s not found", path);
	return j;
}

/* Loads py_persist's nodes (with their vectors) through store_node_put. */
static void load_py_persist_nodes(void)
{
	json_t *ds = fixture("py_persist/docstore.json");
	json_t *vs = fixture("py_persist/default__vector_store.json");
	json_t *data = json_object_get(ds, "docstore/data");
	json_t *emb = json_object_get(vs, "embedding_dict");
	const char *id;
	json_t *w;

	json_object_foreach(data, id, w)
	{
		json_t *node = json_deep_copy(json_object_get(w, "__data__"));
		char *text;

		json_object_set(node, "embedding", json_object_get(emb, id));
		text = json_dumps(node, 0);
		cr_assert_eq(store_node_put(st, text, strlen(text)), 0, "%s",
			     store_last_error());
		free(text);
		json_decref(node);
	}
	json_decref(ds);
	json_decref(vs);
}

Test(store, vector_queries_match_simple_vector_store_fixture)
{
	json_t *exp = fixture("py_persist.expected.json");
	json_t *queries = json_object_get(exp, "queries"), *qj;
	size_t qi, i;

	load_py_persist_nodes();
	json_array_foreach(queries, qi, qj)
	{
		json_t *qe = json_object_get(qj, "query_embedding");
		json_t *res = json_object_get(qj, "result");
		json_t *fj = json_object_get(qj, "filters");
		struct store_query q = { .mode = STORE_MODE_VECTOR,
					 .alpha = -1 };
		struct vec_filters *f = NULL;
		struct store_hit *hits;
		float qv[64];
		size_t n;

		q.k = (size_t)json_integer_value(
			json_object_get(qj, "similarity_top_k"));
		q.dim = (uint32_t)json_array_size(qe);
		for (i = 0; i < q.dim; i++)
			qv[i] = (float)json_number_value(json_array_get(qe, i));
		q.embedding = qv;
		if (json_is_object(fj)) {
			cr_assert_eq(vec_filter_from_json(fj, &f, NULL, 0), 0);
			q.filters = f;
		}
		cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
			     store_last_error());
		cr_assert_eq(n, json_array_size(res), "query %zu", qi);
		for (i = 0; i < n; i++) {
			json_t *r = json_array_get(res, i);

			cr_assert_str_eq(
				hits[i].node_id,
				json_string_value(json_object_get(r, "id")),
				"query %zu hit %zu", qi, i);
			cr_assert_float_eq(
				hits[i].score,
				json_number_value(json_object_get(r, "score")),
				1e-6);
		}
		store_hits_free(hits, n);
		vec_filter_free(f);
	}
	json_decref(exp);
}

Test(store, graph_matches_simple_graph_store_fixture)
{
	json_t *g = fixture("py_persist/graph_store.json");
	json_t *exp = fixture("py_persist.expected.json");
	json_t *gd = json_object_get(g, "graph_dict"), *rels, *want, *got;
	json_t *eg = json_object_get(exp, "graph");
	const char *subj, *farmers[] = { "Farmers" };
	size_t i;
	char *text;

	json_object_foreach(gd, subj, rels)
	{
		for (i = 0; i < json_array_size(rels); i++) {
			json_t *p = json_array_get(rels, i);

			cr_assert_eq(
				store_graph_upsert(
					st, subj,
					json_string_value(json_array_get(p, 0)),
					json_string_value(
						json_array_get(p, 1))),
				0);
		}
	}
	cr_assert_eq(store_graph_get(st, "Apples", &text), 0);
	got = json_loads(text, 0, NULL);
	free(text);
	cr_assert(json_equal(got, json_object_get(eg, "get('Apples')")));
	json_decref(got);
	cr_assert_eq(store_graph_rel_map(st, farmers, 1, 2, 30, &text), 0);
	got = json_loads(text, 0, NULL);
	free(text);
	want = json_object_get(eg, "get_rel_map(['Farmers'], depth=2)");
	cr_assert(json_equal(got, want));
	json_decref(got);
	cr_assert_eq(store_graph_rel_map(st, farmers, 1, 1, 30, &text), 0);
	got = json_loads(text, 0, NULL);
	free(text);
	want = json_object_get(eg, "get_rel_map(['Farmers'], depth=1)");
	cr_assert(json_equal(got, want));
	json_decref(got);
	json_decref(g);
	json_decref(exp);
}

Test(store, graph_upsert_is_idempotent_and_delete_removes_empty_subjects)
{
	char *text;

	cr_assert_eq(store_graph_upsert(st, "A", "knows", "B"), 0);
	cr_assert_eq(store_graph_upsert(st, "A", "knows", "B"), 0);
	cr_assert_eq(store_graph_upsert(st, "A", "likes", "C"), 0);
	cr_assert_eq(store_graph_get(st, "A", &text), 0);
	cr_assert_str_eq(text, "[[\"knows\",\"B\"],[\"likes\",\"C\"]]");
	free(text);
	cr_assert_eq(store_graph_delete(st, "A", "knows", "B"), 0);
	cr_assert_eq(store_graph_delete(st, "A", "knows", "B"), -ENOENT);
	cr_assert_eq(store_graph_delete(st, "A", "likes", "C"), 0);
	cr_assert_eq(engine_count(store_engine(st), "graph_store/data"), 0);
	cr_assert_eq(store_graph_upsert(st, "", "r", "o"), -EINVAL);
}

Test(store, rel_map_limit_cuts_in_subject_order)
{
	char *text;
	json_t *j;

	cr_assert_eq(store_graph_upsert(st, "A", "r", "B"), 0);
	cr_assert_eq(store_graph_upsert(st, "A", "r", "C"), 0);
	cr_assert_eq(store_graph_upsert(st, "B", "r", "D"), 0);
	cr_assert_eq(store_graph_rel_map(st, NULL, 0, 1, 2, &text), 0);
	j = json_loads(text, 0, NULL);
	free(text);
	/* A has 2 pairs, which use up the limit: B is cut to nothing. */
	cr_assert_eq(json_array_size(json_object_get(j, "A")), 2);
	cr_assert(json_is_array(json_object_get(j, "B")));
	cr_assert_eq(json_array_size(json_object_get(j, "B")), 0);
	json_decref(j);
}

/* --- the keyword index rides in checkpoints ----------------------------- */

static int find_ext(void *arg, const char *key, uint64_t size)
{
	size_t n = strlen(key);

	if (n > 9 && strcmp(key + n - 9, "/ext-bm25") == 0)
		snprintf(arg, 512, "%s", key);
	return 0;
}

Test(store, keyword_index_is_loaded_from_the_checkpoint_with_later_changes)
{
	struct store_stats sst;
	char ids[4][64];

	cr_assert_eq(put_doc("p.txt", "Pelicans dive for fish.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(put_doc("q.txt", "Quails nest on the ground.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	/* After the checkpoint: one more, one gone. */
	cr_assert_eq(put_doc("t.txt", "Toucans eat fruit.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_del(st, "q.txt"), 0);
	reopen();
	store_get_stats(st, &sst);
	cr_assert_eq(sst.keyword_index_loaded, 1);
	cr_assert_eq(query_ids("pelicans", 3, ids), 1);
	cr_assert_str_eq(ids[0], "p.txt");
	cr_assert_eq(query_ids("toucans", 3, ids), 1);
	cr_assert_eq(query_ids("quails", 3, ids), 0);
}

Test(store, keyword_index_is_rebuilt_when_its_checkpoint_object_is_gone)
{
	struct store_stats sst;
	char ids[4][64], key[512] = "";

	cr_assert_eq(put_doc("u.txt", "Urchins cling to rocks.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	cr_assert_eq(backend_list(be, "ckpt/", find_ext, key), 0);
	cr_assert_neq(key[0], '\0', "no ext-bm25 object in the checkpoint");
	cr_assert_eq(backend_del(be, key), 0);
	reopen();
	store_get_stats(st, &sst);
	cr_assert_eq(sst.keyword_index_loaded, 0);
	cr_assert_eq(query_ids("urchins", 3, ids), 1);
	cr_assert_str_eq(ids[0], "u.txt");
}

/* --- records, inode numbers and transactions ---------------------------- */

#define T0  1700000000 /* 2023-11-14 22:13:20 UTC */
#define DAY 86400

/* Reopens the store with small chunks, so that a document has many nodes. */
static void reopen_small(void)
{
	struct store_opts o;

	store_close(st);
	store_opts_init(&o);
	o.chunk_size = 40;
	o.chunk_overlap = 5;
	cr_assert_eq(store_open(be, &o, &st), 0, "%s", store_last_error());
}

static const char *long_text(const char *sentence)
{
	static char text[4000];
	size_t i;

	text[0] = '\0';
	for (i = 0; i < 20; i++)
		strcat(text, sentence);
	return text;
}

static int put_full(const char *id, const char *text, const char *meta,
		    unsigned mode, time_t mtime, uint64_t ino)
{
	struct store_doc d = { .id = id,
			       .data = text,
			       .len = strlen(text),
			       .user_meta = meta,
			       .mode = mode,
			       .mtime = mtime,
			       .ino = ino };
	int r = -1, rc = store_docs_put(st, &d, 1, &r);

	return rc ? rc : r;
}

/* The node ids of ref_doc_info[doc] as a JSON array (new reference). */
static json_t *node_ids(const char *doc)
{
	json_t *info = kv("docstore/ref_doc_info", doc), *ids;

	cr_assert_not_null(info, "no ref_doc_info for %s", doc);
	ids = json_incref(json_object_get(info, "node_ids"));
	json_decref(info);
	return ids;
}

/* The stored TextNode JSON of every node of `ids`, concatenated. */
static char *nodes_text(const json_t *ids)
{
	size_t i, len, total = 0;
	char *all = strdup(""), *one;

	for (i = 0; i < json_array_size(ids); i++) {
		cr_assert_eq(store_node_get(
				     st,
				     json_string_value(json_array_get(ids, i)),
				     &one, &len),
			     0);
		all = realloc(all, total + len + 1);
		memcpy(all + total, one, len + 1);
		total += len;
		free(one);
	}
	return all;
}

/* Metadata field `key` of the first node of `doc`, malloc'd. */
static char *node_meta(const char *doc, const char *key)
{
	json_t *ids = node_ids(doc), *n, *v;
	char *out;

	n = kv("docstore/data", json_string_value(json_array_get(ids, 0)));
	cr_assert_not_null(n);
	v = json_object_get(
		json_object_get(json_object_get(n, "__data__"), "metadata"),
		key);
	out = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
	json_decref(n);
	json_decref(ids);
	return out;
}

static uint64_t commits(void)
{
	struct engine_stats es;

	engine_get_stats(store_engine(st), &es);
	return es.commits;
}

/* Bytes of segments written since the last checkpoint. */
static uint64_t seg_bytes(void)
{
	struct engine_stats es;

	engine_get_stats(store_engine(st), &es);
	return es.segment_bytes;
}

/* The date string the node metadata gives t, quoted as JSON. */
static const char *day(time_t t)
{
	static char buf[32];
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "\"%Y-%m-%d\"", &tm);
	return buf;
}

static struct store_txn *txn(void)
{
	struct store_txn *t;

	cr_assert_eq(store_txn_begin(st, &t), 0);
	return t;
}

Test(store, put_records_an_ino_and_keeps_it_on_overwrite)
{
	struct store_file f, g;

	cr_assert_eq(put_doc("i.txt", "Ibexes climb cliffs.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_stat(st, "i.txt", &f), 0);
	cr_assert_geq(f.ino, STORE_INO_MIN);
	cr_assert_eq(f.mode, 0644);
	cr_assert_eq(f.mtime, T0);
	cr_assert_eq(f.ctime, T0);
	cr_assert_eq(f.size, strlen("Ibexes climb cliffs."));
	cr_assert_eq(f.indexed, 1);
	cr_assert_str_eq(f.xattrs, "{}");
	cr_assert_eq(strlen(f.hash), 32);
	cr_assert_eq(put_doc("i.txt", "Ibexes climb steep cliffs.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_stat(st, "i.txt", &g), 0);
	cr_assert_eq(g.ino, f.ino);
	store_file_release(&g);
	cr_assert_eq(put_full("i.txt", "x", NULL, 0, T0, 42), STORE_INDEXED);
	cr_assert_eq(store_doc_stat(st, "i.txt", &g), 0);
	cr_assert_eq(g.ino, 42);
	store_file_release(&f);
	store_file_release(&g);
}

Test(store, stat_of_a_missing_document_is_enoent)
{
	struct store_file f;

	cr_assert_eq(store_doc_stat(st, "nope.txt", &f), -ENOENT);
	store_file_release(&f);
}

Test(store, new_ino_is_in_range_and_unique)
{
	enum { N = 100000 };
	uint64_t *v = malloc(N * sizeof(*v));
	size_t i, j;

	for (i = 0; i < N; i++) {
		v[i] = store_new_ino("same/id");
		cr_assert_geq(v[i], STORE_INO_MIN);
		cr_assert_lt(v[i], 1ull << 63);
	}
	/* insertion sort would be slow: a shell sort is enough here */
	for (j = N / 2; j > 0; j /= 2)
		for (i = j; i < N; i++) {
			uint64_t x = v[i];
			size_t k = i;

			for (; k >= j && v[k - j] > x; k -= j)
				v[k] = v[k - j];
			v[k] = x;
		}
	for (i = 1; i < N; i++)
		cr_assert_neq(v[i], v[i - 1], "duplicate ino %llu",
			      (unsigned long long)v[i]);
	free(v);
}

struct seen {
	char ids[8][32];
	uint64_t inos[8];
	unsigned modes[8];
	size_t n;
	size_t stop_at;
};

static int seen_file(void *arg, const char *id, const struct store_file *f)
{
	struct seen *s = arg;

	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
	s->inos[s->n] = f->ino;
	s->modes[s->n] = f->mode;
	return ++s->n == s->stop_at ? 7 : 0;
}

static int seen_dir(void *arg, const char *path, const struct store_dir *d)
{
	struct seen *s = arg;

	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", path);
	s->inos[s->n] = d->ino;
	s->modes[s->n++] = d->mode;
	return 0;
}

Test(store, files_foreach_goes_in_insertion_order_and_stops)
{
	struct seen s = { 0 };

	cr_assert_eq(put_doc("c.txt", "Cats.", NULL), STORE_INDEXED);
	cr_assert_eq(put_doc("a.txt", "Ants.", NULL), STORE_INDEXED);
	cr_assert_eq(put_doc("b.txt", "Bees.", NULL), STORE_INDEXED);
	/* a new version keeps its place; delete and re-create moves it */
	cr_assert_eq(put_doc("c.txt", "Cats purr.", NULL), STORE_INDEXED);
	cr_assert_eq(store_doc_del(st, "a.txt"), 0);
	cr_assert_eq(put_doc("a.txt", "Ants.", NULL), STORE_INDEXED);
	cr_assert_eq(store_files_foreach(st, seen_file, &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.ids[0], "c.txt");
	cr_assert_str_eq(s.ids[1], "b.txt");
	cr_assert_str_eq(s.ids[2], "a.txt");
	cr_assert_geq(s.inos[0], STORE_INO_MIN);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	cr_assert_eq(store_files_foreach(st, seen_file, &s), 7);
	cr_assert_eq(s.n, 2);
}

Test(store, same_content_with_new_mode_rewrites_only_the_record)
{
	json_t *ids;
	char *before, *after;
	uint64_t c0, b0;
	struct store_file f;

	cr_assert_eq(put_full("m.txt", "Moles dig tunnels.", NULL, 0644, T0, 0),
		     STORE_INDEXED);
	ids = node_ids("m.txt");
	before = nodes_text(ids);
	c0 = commits();
	b0 = seg_bytes();
	cr_assert_eq(put_full("m.txt", "Moles dig tunnels.", NULL, 0600, T0, 0),
		     STORE_UNCHANGED);
	cr_assert_eq(commits(), c0 + 1);
	/* one small record, not the nodes, vectors and ref_doc_info */
	cr_assert_lt(seg_bytes() - b0, 600, "wrote %llu bytes",
		     (unsigned long long)(seg_bytes() - b0));
	cr_assert_eq(store_doc_stat(st, "m.txt", &f), 0);
	cr_assert_eq(f.mode, 0600);
	store_file_release(&f);
	after = nodes_text(ids);
	cr_assert_str_eq(after, before);
	free(after);
	/* a later mtime on the same day: the record only */
	cr_assert_eq(
		put_full("m.txt", "Moles dig tunnels.", NULL, 0600, T0 + 60, 0),
		STORE_UNCHANGED);
	after = nodes_text(ids);
	cr_assert_str_eq(after, before);
	free(after);
	/* another day: the nodes' last_modified_date changes */
	cr_assert_eq(put_full("m.txt", "Moles dig tunnels.", NULL, 0600,
			      T0 + 3 * DAY, 0),
		     STORE_INDEXED);
	after = nodes_text(ids);
	cr_assert_str_neq(after, before);
	free(after);
	/* and the same everything again writes nothing */
	c0 = commits();
	cr_assert_eq(put_full("m.txt", "Moles dig tunnels.", NULL, 0600,
			      T0 + 3 * DAY, 0),
		     STORE_UNCHANGED);
	cr_assert_eq(commits(), c0);
	free(before);
	json_decref(ids);
}

Test(store, txn_move_renames_doc_and_nodes)
{
	json_t *old_ids, *new_ids, *m;
	struct store_file f, g;
	struct store_txn *t;
	char ids[4][64], *v;
	void *data;
	size_t len, i;
	float *vec;
	uint32_t dim;

	reopen_small();
	cr_assert_eq(put_full("a/old.txt",
			      long_text("Narwhals have long spiral tusks. "),
			      "{\"colour\": \"grey\"}", 0600, T0, 0),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_stat(st, "a/old.txt", &f), 0);
	old_ids = node_ids("a/old.txt");
	cr_assert_gt(json_array_size(old_ids), 1);
	t = txn();
	cr_assert_eq(store_txn_doc_move(t, "a/old.txt", "b/new.md", 0), 0, "%s",
		     store_last_error());
	cr_assert_eq(store_txn_count(t), 1);
	cr_assert_eq(store_txn_commit(t), 0, "%s", store_last_error());

	cr_assert_eq(store_doc_stat(st, "a/old.txt", &g), -ENOENT);
	cr_assert_eq(store_doc_get(st, "a/old.txt", &data, &len), -ENOENT);
	cr_assert_null(kv("docstore/ref_doc_info", "a/old.txt"));
	cr_assert_null(kv("docstore/metadata", "a/old.txt"));
	cr_assert_eq(store_doc_stat(st, "b/new.md", &g), 0);
	cr_assert_eq(g.ino, f.ino);
	cr_assert_eq(g.mode, 0600);
	cr_assert_eq(g.mtime, T0);
	cr_assert_eq(g.ctime, T0);
	cr_assert_str_eq(g.hash, f.hash);
	cr_assert_str_eq(g.xattrs, "{\"colour\":\"grey\"}");
	cr_assert_eq(store_doc_get(st, "b/new.md", &data, &len), 0);
	cr_assert_str_eq(data, long_text("Narwhals have long spiral tusks. "));
	free(data);
	for (i = 0; i < json_array_size(old_ids); i++) {
		const char *id = json_string_value(json_array_get(old_ids, i));

		cr_assert_null(kv("docstore/data", id), "old node %s", id);
		cr_assert_null(kv("docstore/metadata", id));
		cr_assert_eq(store_vec_get(st, "default", id, &vec, &dim),
			     -ENOENT);
	}
	new_ids = node_ids("b/new.md");
	cr_assert_eq(json_array_size(new_ids), json_array_size(old_ids));
	cr_assert_eq(engine_count(store_engine(st), "docstore/data"),
		     json_array_size(new_ids));
	m = kv("docstore/metadata",
	       json_string_value(json_array_get(new_ids, 0)));
	cr_assert_str_eq(json_string_value(json_object_get(m, "ref_doc_id")),
			 "b/new.md");
	json_decref(m);
	v = node_meta("b/new.md", "file_path");
	cr_assert_str_eq(v, "\"b/new.md\"");
	free(v);
	v = node_meta("b/new.md", "file_name");
	cr_assert_str_eq(v, "\"new.md\"");
	free(v);
	v = node_meta("b/new.md", "colour");
	cr_assert_str_eq(v, "\"grey\"");
	free(v);
	cr_assert_eq(query_ids("narwhals spiral tusks", 1, ids), 1);
	cr_assert_str_eq(ids[0], "b/new.md");
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
	store_file_release(&f);
	store_file_release(&g);
	json_decref(old_ids);
	json_decref(new_ids);
}

Test(store, txn_move_onto_an_existing_target_replaces_it)
{
	struct store_file f, g;
	struct store_txn *t;
	char ids[4][64];
	void *data;
	size_t len;

	cr_assert_eq(put_doc("x.txt", "Axolotls regrow limbs.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(put_doc("y.txt", "Penguins huddle in winter.", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_doc_stat(st, "x.txt", &f), 0);
	t = txn();
	cr_assert_eq(store_txn_doc_move(t, "x.txt", "y.txt", 0), 0);
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_eq(store_doc_get(st, "y.txt", &data, &len), 0);
	cr_assert_str_eq(data, "Axolotls regrow limbs.");
	free(data);
	cr_assert_eq(store_doc_stat(st, "y.txt", &g), 0);
	cr_assert_eq(g.ino, f.ino);
	cr_assert_eq(store_doc_exists(st, "x.txt"), 0);
	cr_assert_eq(query_ids("penguins", 5, ids), 0);
	cr_assert_eq(query_ids("axolotls", 5, ids), 1);
	cr_assert_str_eq(ids[0], "y.txt");
	cr_assert_eq(engine_count(store_engine(st), "docstore/data"), 1);
	cr_assert_eq(engine_count(store_engine(st), "lodefs/files"), 1);
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
	store_file_release(&f);
	store_file_release(&g);
}

Test(store, txn_move_with_an_ino_sets_it_and_refuses_bad_moves)
{
	struct store_file f;
	struct store_txn *t;

	cr_assert_eq(put_doc("p.txt", "Puffins.", NULL), STORE_INDEXED);
	t = txn();
	cr_assert_eq(store_txn_doc_move(t, "missing.txt", "q.txt", 0), -ENOENT);
	cr_assert_eq(store_txn_doc_move(t, "p.txt", "p.txt", 0), -EINVAL);
	cr_assert_eq(store_txn_doc_move(t, "p.txt", "../q.txt", 0), -EINVAL);
	cr_assert_eq(store_txn_count(t), 0);
	cr_assert_eq(store_txn_doc_move(t, "p.txt", "q.txt", 77), 0);
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_eq(store_doc_stat(st, "q.txt", &f), 0);
	cr_assert_eq(f.ino, 77);
	store_file_release(&f);
}

Test(store, txn_doc_attr_chmod_keeps_nodes_and_a_date_change_remakes_them)
{
	struct store_file f;
	struct store_txn *t;
	json_t *ids, *ids2;
	char *before, *after, *v;
	uint64_t b0;

	reopen_small();
	cr_assert_eq(put_full("h.txt",
			      long_text("Hedgehogs roll into spiky balls. "),
			      NULL, 0644, T0, 0),
		     STORE_INDEXED);
	ids = node_ids("h.txt");
	cr_assert_gt(json_array_size(ids), 3);
	before = nodes_text(ids);
	b0 = seg_bytes();
	t = txn();
	cr_assert_eq(store_txn_doc_attr(t, "h.txt", 0640, T0, T0 + 5, NULL), 0,
		     "%s", store_last_error());
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_lt(seg_bytes() - b0, 600, "wrote %llu bytes",
		     (unsigned long long)(seg_bytes() - b0));
	cr_assert_eq(store_doc_stat(st, "h.txt", &f), 0);
	cr_assert_eq(f.mode, 0640);
	cr_assert_eq(f.ctime, T0 + 5);
	store_file_release(&f);
	ids2 = node_ids("h.txt");
	cr_assert(json_equal(ids, ids2));
	json_decref(ids2);
	after = nodes_text(ids);
	cr_assert_str_eq(after, before, "chmod made the nodes again");
	free(after);

	v = node_meta("h.txt", "last_modified_date");
	cr_assert_str_eq(v, day(T0));
	free(v);
	t = txn();
	cr_assert_eq(store_txn_doc_attr(t, "h.txt", 0640, T0 + 30 * DAY,
					T0 + 30 * DAY, NULL),
		     0);
	cr_assert_eq(store_txn_commit(t), 0);
	v = node_meta("h.txt", "last_modified_date");
	cr_assert_str_eq(v, day(T0 + 30 * DAY));
	free(v);
	v = node_meta("h.txt", "creation_date");
	cr_assert_str_eq(v, day(T0 + 30 * DAY));
	free(v);
	ids2 = node_ids("h.txt");
	cr_assert(json_equal(ids, ids2), "same content, same node ids");
	json_decref(ids2);
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
	free(before);
	json_decref(ids);
}

Test(store, txn_doc_attr_xattrs_update_node_metadata)
{
	struct store_file f;
	struct store_txn *t;
	json_t *info;
	char *v;

	cr_assert_eq(put_full("k.txt", "Kiwis cannot fly.", "{\"a\": 1}", 0644,
			      T0, 0),
		     STORE_INDEXED);
	t = txn();
	cr_assert_eq(store_txn_doc_attr(t, "k.txt", 0644, T0, T0,
					"{\"tag\": \"bird\"}"),
		     0);
	cr_assert_eq(store_txn_commit(t), 0);
	v = node_meta("k.txt", "tag");
	cr_assert_str_eq(v, "\"bird\"");
	free(v);
	cr_assert_null(node_meta("k.txt", "a"));
	info = kv("docstore/ref_doc_info", "k.txt");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(info, "metadata"), "tag")),
			 "bird");
	json_decref(info);
	cr_assert_eq(store_doc_stat(st, "k.txt", &f), 0);
	cr_assert_str_eq(f.xattrs, "{\"tag\":\"bird\"}");
	store_file_release(&f);
	/* bad xattrs and a missing document are refused */
	t = txn();
	cr_assert_eq(store_txn_doc_attr(t, "k.txt", 0644, T0, T0, "[1]"),
		     -EINVAL);
	cr_assert_eq(store_txn_doc_attr(t, "nope.txt", 0644, T0, T0, NULL),
		     -ENOENT);
	cr_assert_eq(store_txn_count(t), 0);
	store_txn_abort(t);
}

Test(store, txn_duplicate_id_is_einval_and_the_txn_stays_usable)
{
	struct store_doc d = { .id = "dup.txt", .data = "one", .len = 3 };
	struct store_doc e = { .id = "other.txt", .data = "two", .len = 3 };
	struct store_txn *t;
	void *data;
	size_t len;
	int r = -1;

	cr_assert_eq(put_doc("m1.txt", "Moths.", NULL), STORE_INDEXED);
	t = txn();
	cr_assert_eq(store_txn_doc_put(t, &d, &r), 0);
	cr_assert_eq(r, STORE_INDEXED);
	d.data = "uno";
	cr_assert_eq(store_txn_doc_put(t, &d, NULL), -EINVAL);
	cr_assert_neq(store_last_error()[0], '\0');
	cr_assert_eq(store_txn_doc_del(t, "dup.txt"), -EINVAL);
	cr_assert_eq(store_txn_doc_move(t, "m1.txt", "dup.txt", 0), -EINVAL);
	cr_assert_eq(store_txn_doc_move(t, "dup.txt", "m2.txt", 0), -EINVAL);
	cr_assert_eq(store_txn_count(t), 1);
	cr_assert_eq(store_txn_doc_put(t, &e, NULL), 0);
	cr_assert_eq(store_txn_doc_move(t, "m1.txt", "m2.txt", 0), 0);
	cr_assert_eq(store_txn_doc_put(t, &(struct store_doc){ .id = "m1.txt" },
				       NULL),
		     -EINVAL);
	cr_assert_eq(store_txn_count(t), 3);
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_eq(store_doc_get(st, "dup.txt", &data, &len), 0);
	cr_assert_str_eq(data, "one");
	free(data);
	cr_assert(store_doc_exists(st, "other.txt"));
	cr_assert(store_doc_exists(st, "m2.txt"));
	cr_assert_not(store_doc_exists(st, "m1.txt"));
}

Test(store, txn_failing_steps_then_commit_applies_only_the_good_steps)
{
	struct store_doc good = { .id = "g1.txt", .data = "Gnus.", .len = 5 };
	struct store_doc bad = { .id = "../b.txt", .data = "x", .len = 1 };
	struct store_doc later = { .id = "g2.txt",
				   .data = "Geckos.",
				   .len = 7 };
	struct store_dir dir = { .mode = 0755, .mtime = T0 };
	struct store_txn *t;
	char *json;
	size_t len;

	t = txn();
	cr_assert_eq(store_txn_doc_put(t, &good, NULL), 0);
	cr_assert_eq(store_txn_doc_put(t, &bad, NULL), -EINVAL);
	cr_assert_eq(store_txn_doc_del(t, "absent.txt"), -ENOENT);
	cr_assert_eq(store_txn_doc_attr(t, "g2.txt", 0, T0, T0, "{"), -EINVAL);
	cr_assert_eq(store_txn_kv_put(t, "my/coll", "k", "{bad", 4), -EINVAL);
	cr_assert_eq(store_txn_kv_put(t, "vector_store/x", "k", "{}", 2),
		     -EINVAL);
	cr_assert_eq(store_txn_kv_del(t, "my/coll", "absent"), -ENOENT);
	cr_assert_eq(store_txn_dir_put(t, "/abs", &dir), -EINVAL);
	cr_assert_eq(store_txn_dir_del(t, "never"), -ENOENT);
	/* a failed step did not claim its id */
	cr_assert_eq(store_txn_doc_put(t, &later, NULL), 0);
	cr_assert_eq(store_txn_kv_put(t, "my/coll", "k", "{\"v\": 1}", 8), 0);
	cr_assert_eq(store_txn_kv_put(t, "my/coll", "k", "{\"v\": 2}", 8),
		     -EINVAL);
	cr_assert_eq(store_txn_count(t), 3);
	cr_assert_eq(store_txn_commit(t), 0, "%s", store_last_error());
	cr_assert(store_doc_exists(st, "g1.txt"));
	cr_assert(store_doc_exists(st, "g2.txt"));
	cr_assert_eq(store_kv_get(st, "my/coll", "k", &json, &len), 0);
	cr_assert_str_eq(json, "{\"v\":1}");
	free(json);
	cr_assert_eq(engine_count(store_engine(st), "lodefs/files"), 2);
	cr_assert_eq(engine_count(store_engine(st), "lodefs/dirs"), 0);
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
	/* kv delete steps */
	t = txn();
	cr_assert_eq(store_txn_kv_del(t, "my/coll", "k"), 0);
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_eq(store_kv_get(st, "my/coll", "k", &json, &len), -ENOENT);
}

Test(store, txn_abort_applies_nothing_and_an_empty_txn_commits_nothing)
{
	struct store_doc d = { .id = "ab.txt", .data = "Abalone.", .len = 8 };
	struct store_dir dir = { 0 };
	struct store_txn *t;
	uint64_t n0, c0;

	cr_assert_eq(put_doc("keep.txt", "Kept.", NULL), STORE_INDEXED);
	n0 = keys();
	c0 = commits();
	t = txn();
	cr_assert_eq(store_txn_doc_put(t, &d, NULL), 0);
	cr_assert_eq(store_txn_doc_del(t, "keep.txt"), 0);
	cr_assert_eq(store_txn_dir_put(t, "dd", &dir), 0);
	cr_assert_eq(store_txn_kv_put(t, "my/coll", "k", "{}", 2), 0);
	cr_assert_eq(store_txn_count(t), 4);
	store_txn_abort(t);
	store_txn_abort(NULL);
	cr_assert_eq(keys(), n0);
	cr_assert_eq(commits(), c0);
	cr_assert(store_doc_exists(st, "keep.txt"));
	/* the lock was released: a plain write goes through */
	t = txn();
	cr_assert_eq(store_txn_count(t), 0);
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_eq(commits(), c0);
	cr_assert_eq(put_doc("after.txt", "After.", NULL), STORE_INDEXED);
}

Test(store, txn_dirs_put_del_and_foreach)
{
	struct store_dir d1 = { .mode = 0700, .mtime = T0, .ctime = T0 + 1 };
	struct store_dir d2 = { .mtime = T0 };
	struct store_txn *t;
	struct seen s = { 0 };
	uint64_t ino1;

	t = txn();
	cr_assert_eq(store_txn_dir_put(t, "docs/d1", &d1), 0);
	cr_assert_eq(store_txn_dir_put(t, "d2", &d2), 0);
	cr_assert_eq(store_txn_dir_put(t, "d2", &d2), -EINVAL);
	cr_assert_eq(store_txn_commit(t), 0);
	cr_assert_eq(store_dirs_foreach(st, seen_dir, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.ids[0], "docs/d1");
	cr_assert_str_eq(s.ids[1], "d2");
	cr_assert_eq(s.modes[0], 0700);
	cr_assert_eq(s.modes[1], 0755);
	cr_assert_geq(s.inos[0], STORE_INO_MIN);
	cr_assert_neq(s.inos[0], s.inos[1]);
	ino1 = s.inos[0];
	/* ino 0 keeps the recorded one */
	d1.mode = 0750;
	t = txn();
	cr_assert_eq(store_txn_dir_put(t, "docs/d1", &d1), 0);
	cr_assert_eq(store_txn_dir_del(t, "d2"), 0);
	cr_assert_eq(store_txn_dir_del(t, "nope"), -ENOENT);
	cr_assert_eq(store_txn_commit(t), 0);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(store_dirs_foreach(st, seen_dir, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.ids[0], "docs/d1");
	cr_assert_eq(s.inos[0], ino1);
	cr_assert_eq(s.modes[0], 0750);
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
}

Test(store, txn_reopen_persists_everything)
{
	struct store_doc d = { .id = "r/one.txt",
			       .data = "Ravens are clever.",
			       .len = 18,
			       .user_meta = "{\"x\": \"y\"}",
			       .mode = 0600,
			       .mtime = T0,
			       .ino = 1234 };
	struct store_doc e = { .id = "r/two.txt",
			       .data = "Robins sing.",
			       .len = 12,
			       .mtime = T0 };
	struct store_dir dir = { .mode = 0711, .mtime = T0, .ino = 99 };
	struct store_file f;
	struct store_txn *t;
	struct seen s = { 0 };
	char ids[4][64], *json;
	size_t len;

	t = txn();
	cr_assert_eq(store_txn_doc_put(t, &d, NULL), 0);
	cr_assert_eq(store_txn_doc_put(t, &e, NULL), 0);
	cr_assert_eq(store_txn_dir_put(t, "r", &dir), 0);
	cr_assert_eq(store_txn_kv_put(t, "my/coll", "k", "{\"n\": 5}", 8), 0);
	cr_assert_eq(store_txn_commit(t), 0);
	t = txn();
	cr_assert_eq(store_txn_doc_move(t, "r/two.txt", "r/three.txt", 0), 0);
	cr_assert_eq(store_txn_doc_attr(t, "r/one.txt", 0604, T0, T0, NULL), 0);
	cr_assert_eq(store_txn_commit(t), 0);
	reopen();
	cr_assert_eq(store_doc_stat(st, "r/one.txt", &f), 0);
	cr_assert_eq(f.ino, 1234);
	cr_assert_eq(f.mode, 0604);
	cr_assert_str_eq(f.xattrs, "{\"x\":\"y\"}");
	store_file_release(&f);
	cr_assert_eq(store_doc_stat(st, "r/two.txt", &f), -ENOENT);
	cr_assert_eq(store_doc_stat(st, "r/three.txt", &f), 0);
	cr_assert_geq(f.ino, STORE_INO_MIN);
	store_file_release(&f);
	cr_assert_eq(store_dirs_foreach(st, seen_dir, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.inos[0], 99);
	cr_assert_eq(s.modes[0], 0711);
	cr_assert_eq(store_kv_get(st, "my/coll", "k", &json, &len), 0);
	free(json);
	cr_assert_eq(query_ids("robins", 2, ids), 1);
	cr_assert_str_eq(ids[0], "r/three.txt");
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	reopen();
	memset(&s, 0, sizeof(s));
	cr_assert_eq(store_files_foreach(st, seen_file, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.ids[0], "r/one.txt");
	cr_assert_str_eq(s.ids[1], "r/three.txt");
	cr_assert_eq(s.inos[0], 1234);
	cr_assert_eq(store_fsck(st, NULL, NULL), 0);
}

/* --- other writers: store_refresh --------------------------------------- */

struct changes {
	char v[16][64];
	int kind[16];
	size_t n;
};

static void changes_fn(void *arg, enum store_change_kind kind, const char *key)
{
	struct changes *s = arg;

	cr_assert_lt(s->n, 16);
	snprintf(s->v[s->n], sizeof(s->v[0]), "%s", key);
	s->kind[s->n++] = (int)kind;
}

Test(store, refresh_reports_what_another_writer_changed_and_not_our_own)
{
	struct store *other;
	struct store_txn *t;
	struct store_dir d = { .mode = 0750 };
	struct changes s = { 0 };
	char ids[4][64];
	int n;

	cr_assert_eq(store_open(be, NULL, &other), 0, "%s", store_last_error());
	store_track_changes(st, 1);
	/* our own writes are not changes "under" us */
	cr_assert_eq(put_doc("mine.txt", "our own marmalade", NULL),
		     STORE_INDEXED);
	cr_assert_eq(store_refresh(st, changes_fn, &s), 0);
	cr_assert_eq(s.n, 0);

	{
		struct store_doc doc = { .id = "a/theirs.txt",
					 .data = "their quince jelly",
					 .len = 18 };
		int r;

		cr_assert_eq(store_docs_put(other, &doc, 1, &r), 0);
	}
	cr_assert_eq(store_txn_begin(other, &t), 0);
	cr_assert_eq(store_txn_dir_put(t, "empty/dir", &d), 0);
	cr_assert_eq(store_txn_commit(t), 0, "%s", store_last_error());
	/* not seen until we catch up */
	cr_assert_eq(query_ids("quince", 4, ids), 0);
	n = store_refresh(st, changes_fn, &s);
	cr_assert_gt(n, 0, "%d %s", n, store_last_error());
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.kind[0], STORE_CHANGE_DOC);
	cr_assert_str_eq(s.v[0], "a/theirs.txt");
	cr_assert_eq(s.kind[1], STORE_CHANGE_DIR);
	cr_assert_str_eq(s.v[1], "empty/dir");
	cr_assert_eq(query_ids("quince", 4, ids), 1);
	cr_assert_str_eq(ids[0], "a/theirs.txt");
	{
		struct store_dir got;

		cr_assert_eq(store_dir_stat(st, "empty/dir", &got), 0);
		cr_assert_eq(got.mode, 0750);
		cr_assert_eq(store_dir_stat(st, "no/dir", &got), -ENOENT);
	}

	/* a delete is a change too; nothing is reported twice */
	s.n = 0;
	cr_assert_eq(store_doc_del(other, "a/theirs.txt"), 0);
	cr_assert_gt(store_refresh(st, changes_fn, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.v[0], "a/theirs.txt");
	cr_assert_eq(query_ids("quince", 4, ids), 0);
	s.n = 0;
	cr_assert_eq(store_refresh(st, changes_fn, &s), 0);
	cr_assert_eq(s.n, 0);

	/* without tracking, changes are applied but not kept */
	store_track_changes(st, 0);
	cr_assert_gt(store_refresh(other, NULL, NULL), 0); /* sees mine.txt */
	cr_assert_eq(store_doc_del(other, "mine.txt"), 0);
	cr_assert_gt(store_refresh(st, changes_fn, &s), 0);
	cr_assert_eq(s.n, 0);
	store_close(other);
}

Test(store, changes_a_commit_catches_up_on_are_reported_by_the_next_refresh)
{
	struct store *other;
	struct changes s = { 0 };
	struct store_doc doc = { .id = "late.txt", .data = "x", .len = 1 };
	int r;

	cr_assert_eq(store_open(be, NULL, &other), 0, "%s", store_last_error());
	store_track_changes(st, 1);
	cr_assert_eq(store_docs_put(other, &doc, 1, &r), 0);
	/* a checkpoint catches up first: the change arrives here */
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0, "%s",
		     engine_last_error());
	cr_assert_gt(store_refresh(st, changes_fn, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.v[0], "late.txt");
	store_close(other);
}
