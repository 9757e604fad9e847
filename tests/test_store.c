/* test_store.c - the storage context: documents, nodes, vectors, graph, query. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "backends/backend.h"
#include "core/store.h"
#include "core/vec.h"

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
