/* test_persist.c - persist/: LlamaIndex persist files, both ways. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "backends/backend.h"
#include "core/persist.h"
#include "core/store.h"
#include "core/text.h"
#include "core/vec.h"

static struct backend *be;
static struct store *st;
static char tmpdir[64]; /* a local store, when a test uses one */

static void setup(void)
{
	cr_assert_eq(backend_memory_open(&be), 0);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
}

static void teardown(void)
{
	store_close(st);
	backend_close(be);
	if (tmpdir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		cr_assert_eq(system(cmd), 0);
		tmpdir[0] = '\0';
	}
}

/* Swaps the memory store for a fresh local one (reopened by reopen()). */
static void use_local(void)
{
	store_close(st);
	backend_close(be);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-persist-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	cr_assert_eq(backend_local_open(tmpdir, &be), 0);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
}

static void reopen(void)
{
	store_close(st);
	cr_assert_eq(store_open(be, NULL, &st), 0, "%s", store_last_error());
}

/* --- helpers -------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	size_t fail_at; /* write() fails once len would pass it (0: never) */
	int calls;
};

static int buf_write(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;

	b->calls++;
	if (b->fail_at && b->len + len > b->fail_at)
		return -EIO;
	if (b->cap - b->len < len + 1) {
		size_t c = b->cap ? b->cap : 256;

		while (c - b->len < len + 1)
			c *= 2;
		b->p = realloc(b->p, c);
		cr_assert_not_null(b->p);
		b->cap = c;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

/* The export of `name` (NUL-terminated, malloc'd); asserts success. */
static char *export(const char *name)
{
	struct buf b = { 0 };
	int rc = persist_export(st, name, buf_write, &b, NULL, NULL);

	cr_assert_eq(rc, 0, "export %s: %d %s", name, rc, store_last_error());
	if (!b.p)
		b.p = strdup("");
	return b.p;
}

static json_t *export_json(const char *name)
{
	char *text = export(name);
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &err);

	cr_assert_not_null(j, "%s does not load: %s", name, err.text);
	free(text);
	return j;
}

static int import_text(const char *name, const char *text)
{
	return persist_import(st, name, text, strlen(text), NULL, NULL);
}

static void import_ok(const char *name, const char *text)
{
	int rc = import_text(name, text);

	cr_assert_eq(rc, 0, "import %s: %d %s", name, rc, store_last_error());
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return p;
}

/* LODEFS_SHARED/fixtures/<rel>, or the test is skipped. */
static void fixture(const char *rel, char *out, size_t size)
{
	const char *shared = getenv("LODEFS_SHARED");

	if (!shared || !*shared)
		cr_skip_test("LODEFS_SHARED is not set");
	snprintf(out, size, "%s/fixtures/%s", shared, rel);
}

static void import_path(const char *name, const char *path)
{
	size_t len;
	char *text = slurp(path, &len);
	int rc = persist_import(st, name, text, len, NULL, NULL);

	cr_assert_eq(rc, 0, "import %s: %d %s", path, rc, store_last_error());
	free(text);
}

/* Python's StorageContext.persist order, and `cp *` (alphabetical). */
static const char *const py_order[] = { "docstore.json",
					"index_store.json",
					"graph_store.json",
					"default__vector_store.json",
					"image__vector_store.json",
					NULL };
static const char *const abc_order[] = {
	"default__vector_store.json", "docstore.json",	  "graph_store.json",
	"image__vector_store.json",   "index_store.json", NULL
};

static int exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static void import_dir(const char *dir, const char *const *order)
{
	char path[1024];
	size_t i;

	for (i = 0; order[i]; i++) {
		int n = snprintf(path, sizeof(path), "%s/%s", dir, order[i]);

		cr_assert(n > 0 && (size_t)n < sizeof(path));
		if (exists(path))
			import_path(order[i], path);
	}
}

/* Every file of dir exported again is the same bytes. */
static void check_dir_identical(const char *dir)
{
	char path[1024];
	size_t i, len;

	for (i = 0; py_order[i]; i++) {
		char *want, *got;

		snprintf(path, sizeof(path), "%s/%s", dir, py_order[i]);
		if (!exists(path))
			continue;
		want = slurp(path, &len);
		got = export(py_order[i]);
		cr_assert_str_eq(got, want, "%s differs", path);
		free(want);
		free(got);
	}
}

static void round_trip(const char *rel)
{
	char dir[1024];

	fixture(rel, dir, sizeof(dir));
	import_dir(dir, py_order);
	check_dir_identical(dir);
	/* a second store, files copied in alphabetical order */
	store_close(st);
	backend_close(be);
	cr_assert_eq(backend_memory_open(&be), 0);
	cr_assert_eq(store_open(be, NULL, &st), 0);
	import_dir(dir, abc_order);
	check_dir_identical(dir);
}

/* Every file the directory shows, exported, concatenated. */
struct snap {
	char *p;
	size_t len;
};

static int snap_one(void *arg, const char *name)
{
	struct buf *b = arg;
	char *text = export(name);

	buf_write(b, name, strlen(name));
	buf_write(b, "\n", 1);
	buf_write(b, text, strlen(text));
	buf_write(b, "\n", 1);
	free(text);
	return 0;
}

static char *snapshot(void)
{
	struct buf b = { 0 };

	cr_assert_eq(persist_list(st, snap_one, &b), 0);
	return b.p;
}

static const char py_vec[] =
	"{\"embedding_dict\": {\"a\": [1.0, 0.0], \"b\": [0.0, 1.0]}, "
	"\"text_id_to_ref_doc_id\": {\"a\": \"d1\", \"b\": \"d2\"}, "
	"\"metadata_dict\": {\"a\": {\"k\": 1, \"_node_type\": "
	"\"TextNode\", \"document_id\": \"d1\", \"doc_id\": \"d1\", "
	"\"ref_doc_id\": \"d1\"}, \"b\": {\"k\": 2, \"_node_type\": "
	"\"TextNode\", \"document_id\": \"d2\", \"doc_id\": \"d2\", "
	"\"ref_doc_id\": \"d2\"}}}";

TestSuite(persist, .init = setup, .fini = teardown);

/* --- names ---------------------------------------------------------------- */

Test(persist, names_are_recognised)
{
	enum persist_kind k;
	char ns[256];

	cr_assert_eq(persist_name("docstore.json", &k, ns, sizeof(ns)), 0);
	cr_assert_eq(k, PERSIST_DOCSTORE);
	cr_assert_eq(persist_name("index_store.json", &k, ns, sizeof(ns)), 0);
	cr_assert_eq(k, PERSIST_INDEX_STORE);
	cr_assert_eq(persist_name("graph_store.json", &k, ns, sizeof(ns)), 0);
	cr_assert_eq(k, PERSIST_GRAPH_STORE);
	cr_assert_eq(
		persist_name("property_graph_store.json", &k, ns, sizeof(ns)),
		0);
	cr_assert_eq(k, PERSIST_PROPERTY_GRAPH);
	cr_assert_eq(
		persist_name("image__vector_store.json", &k, ns, sizeof(ns)),
		0);
	cr_assert_eq(k, PERSIST_VECTOR_STORE);
	cr_assert_str_eq(ns, "image");
	cr_assert_eq(
		persist_name("a__b__vector_store.json", &k, ns, sizeof(ns)), 0);
	cr_assert_str_eq(ns, "a__b");
	cr_assert_eq(persist_name("vector_store.json", &k, ns, sizeof(ns)), 0);
	cr_assert_eq(k, PERSIST_VECTOR_STORE);
	cr_assert_str_eq(ns, "default");
	cr_assert_eq(persist_name("other.json", &k, ns, sizeof(ns)), -ENOENT);
	cr_assert_eq(persist_name("docstore.json.swp", &k, ns, sizeof(ns)),
		     -ENOENT);
	cr_assert_eq(persist_name("__vector_store.json", &k, ns, sizeof(ns)),
		     -EINVAL);
	cr_assert_eq(
		persist_name("\xff__vector_store.json", &k, ns, sizeof(ns)),
		-EINVAL);
}

static int list_names(void *arg, const char *name)
{
	struct buf *b = arg;

	buf_write(b, name, strlen(name));
	buf_write(b, " ", 1);
	return 0;
}

static int list_stop(void *arg, const char *name)
{
	(*(int *)arg)++;
	return 7;
}

Test(persist, listing_shows_every_file_in_order)
{
	struct buf b = { 0 };
	float v[2] = { 1, 2 };
	int n = 0;

	cr_assert_eq(persist_list(st, list_names, &b), 0);
	cr_assert_str_eq(b.p, "docstore.json index_store.json "
			      "graph_store.json default__vector_store.json "
			      "image__vector_store.json ");
	free(b.p);
	memset(&b, 0, sizeof(b));
	cr_assert_eq(store_vec_put(st, "zeta", "x", v, 2), 0);
	import_ok("empty__vector_store.json",
		  "{\"embedding_dict\": {}, \"text_id_to_ref_doc_id\": {}, "
		  "\"metadata_dict\": {}}");
	import_ok("property_graph_store.json", "{\"nodes\": {}}");
	cr_assert_eq(persist_list(st, list_names, &b), 0);
	cr_assert_str_eq(b.p, "docstore.json index_store.json "
			      "graph_store.json property_graph_store.json "
			      "default__vector_store.json "
			      "image__vector_store.json "
			      "zeta__vector_store.json "
			      "empty__vector_store.json ");
	free(b.p);
	cr_assert_eq(persist_list(st, list_stop, &n), 7);
	cr_assert_eq(n, 1);
}

Test(persist, an_empty_store_exports_what_python_writes_for_one)
{
	char *t;

	t = export("docstore.json");
	cr_assert_str_eq(t, "{}");
	free(t);
	t = export("index_store.json");
	cr_assert_str_eq(t, "{}");
	free(t);
	t = export("graph_store.json");
	cr_assert_str_eq(t, "{\"graph_dict\": {}}");
	free(t);
	t = export("default__vector_store.json");
	cr_assert_str_eq(t, "{\"embedding_dict\": {}, "
			    "\"text_id_to_ref_doc_id\": {}, "
			    "\"metadata_dict\": {}}");
	free(t);
	t = export("image__vector_store.json");
	cr_assert_str_eq(t, "{\"embedding_dict\": {}, "
			    "\"text_id_to_ref_doc_id\": {}, "
			    "\"metadata_dict\": {}}");
	free(t);
}

Test(persist, files_not_shown_are_enoent)
{
	struct buf b = { 0 };

	cr_assert_eq(persist_export(st, "nope.json", buf_write, &b, NULL, NULL),
		     -ENOENT);
	cr_assert_eq(persist_export(st, "property_graph_store.json", buf_write,
				    &b, NULL, NULL),
		     -ENOENT);
	cr_assert_eq(persist_export(st, "other__vector_store.json", buf_write,
				    &b, NULL, NULL),
		     -ENOENT);
	cr_assert_eq(persist_export(st, "vector_store.json", buf_write, &b,
				    NULL, NULL),
		     -ENOENT);
	cr_assert_eq(persist_import(st, "nope.json", "{}", 2, NULL, NULL),
		     -ENOENT);
	cr_assert_eq(b.len, 0);
}

/* --- round trips of the fixtures ------------------------------------------ */

Test(persist, py_persist_round_trips_byte_for_byte)
{
	round_trip("py_persist");
}

Test(persist, py_persist_single_round_trips_byte_for_byte)
{
	round_trip("py_persist_single");
}

Test(persist, py_persist_v0_10_round_trips_byte_for_byte)
{
	round_trip("py_persist_v0_10");
}

Test(persist, realworld_round_trips_byte_for_byte)
{
	round_trip("realworld/23Mariya__QA-with-Documents");
}

Test(persist, a_round_trip_survives_checkpoint_and_replay)
{
	char dir[1024];

	fixture("py_persist", dir, sizeof(dir));
	use_local();
	import_dir(dir, py_order);
	reopen(); /* replay of the segments */
	check_dir_identical(dir);
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	reopen(); /* from the checkpoint */
	check_dir_identical(dir);
}

static void upstream_one(const char *rel)
{
	char path[1024], name[256];
	const char *slash;
	json_t *want, *got;
	json_error_t err;

	fixture(rel, path, sizeof(path));
	slash = strrchr(path, '/');
	snprintf(name, sizeof(name), "%s", slash + 1);
	import_path(name, path);
	want = json_load_file(path, JSON_DECODE_ANY, &err);
	cr_assert_not_null(want, "%s: %s", path, err.text);
	got = export_json(name);
	cr_assert(json_equal(want, got), "%s is not the same JSON", rel);
	json_decref(want);
	json_decref(got);
}

Test(persist, upstream_files_import_without_loss)
{
	static const char *const files[] = {
		"docs/examples/index_structs/knowledge_graph/storage/"
		"graph_store.json",
		"docs/examples/pipeline/storage/image__vector_store.json",
		"docs/examples/pipeline/storage/index_store.json",
		"docs/examples/vector_stores/storage/index_store.json",
		"llama-index-core/storage/docstore.json",
		"llama-index-core/storage/index_store.json",
		"storage/docstore.json",
		"storage/graph_store.json",
		"storage/index_store.json",
	};
	char rel[512];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(rel, sizeof(rel), "upstream/run-llama__llama_index/%s",
			 files[i]);
		upstream_one(rel);
	}
}

Test(persist, the_legacy_vector_store_json_imports_into_default)
{
	static const char legacy[] =
		"{\"embedding_dict\": {\"n1\": [0.5, 0.25]}, "
		"\"text_id_to_ref_doc_id\": {\"n1\": \"doc\"}}";
	char *t;

	import_ok("vector_store.json", legacy);
	t = export("default__vector_store.json");
	/* a file without metadata_dict (before 0.7) keeps lacking it */
	cr_assert_str_eq(t, legacy);
	free(t);
}

/* --- the views share one state -------------------------------------------- */

Test(persist, imported_nodes_are_in_every_view)
{
	char dir[1024], *json, **ids;
	struct store_query q = { .text = "Eiffel",
				 .k = 3,
				 .alpha = -1,
				 .mode = STORE_MODE_KEYWORD };
	struct store_hit *hits;
	struct store_stats stats;
	float *v;
	uint32_t dim;
	size_t len, n;

	(void)ids;
	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	cr_assert_eq(store_node_get(st, "369de6e8-eebf-542a-917b-94e562b6532b",
				    &json, &len),
		     0);
	cr_assert(strstr(json, "Eiffel Tower"));
	free(json);
	cr_assert_eq(store_vec_get(st, "default",
				   "369de6e8-eebf-542a-917b-94e562b6532b", &v,
				   &dim),
		     0);
	cr_assert_eq(dim, 8);
	cr_assert_float_eq(v[4], 0.57735f, 1e-7);
	free(v);
	cr_assert_eq(store_index_get(st, "kg_index", &json, &len), 0);
	free(json);
	cr_assert_eq(store_graph_get(st, "Apples", &json), 0);
	cr_assert_str_eq(
		json, "[[\"grow on\",\"trees\"],[\"used in\",\"apple pie\"]]");
	free(json);
	cr_assert_eq(store_kv_get(st, "docstore/ref_doc_info",
				  "3e4b76eb-8738-5915-9172-ba6c77ea33e1", &json,
				  &len),
		     0);
	free(json);
	/* the keyword index saw the nodes */
	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
		     store_last_error());
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].node_id,
			 "369de6e8-eebf-542a-917b-94e562b6532b");
	cr_assert_str_eq(hits[0].ref_doc_id,
			 "3e4b76eb-8738-5915-9172-ba6c77ea33e1");
	store_hits_free(hits, n);
	store_get_stats(st, &stats);
	cr_assert_eq(stats.nodes, 5);
	cr_assert_eq(stats.documents, 3);
	cr_assert_eq(stats.triples, 6);
	cr_assert_eq(stats.indexes, 2);
}

/*
 * The keyword index the store keeps is the one json_loadb's reading of
 * every node's ["__data__"]["text"] gives (as the observer once read it):
 * after a checkpoint, the saved index (object ext-bm25) is byte for byte
 * that of an index built here, in the same order, from jansson's reading
 * of what docstore/data holds.
 */
struct ref_index {
	struct text_index *idx;
	size_t n, texts;
};

static int ref_index_node(void *arg, const char *key, enum engine_type type,
			  const void *data, size_t len)
{
	struct ref_index *r = arg;
	json_t *w, *text;

	cr_assert_eq(type, ENGINE_JSON);
	w = json_loadb(data, len, 0, NULL);
	cr_assert_not_null(w, "%s does not load", key);
	text = json_object_get(json_object_get(w, "__data__"), "text");
	if (json_is_string(text)) {
		cr_assert_eq(text_index_put(r->idx, key,
					    json_string_value(text),
					    json_string_length(text)),
			     0);
		r->texts++;
	}
	json_decref(w);
	r->n++;
	return 0;
}

static int ckpt_ext_find(void *arg, const char *key, uint64_t size)
{
	char *out = arg;
	size_t n = strlen(key);

	(void)size;
	if (n > 9 && strcmp(key + n - 9, "/ext-bm25") == 0)
		snprintf(out, 256, "%s", key);
	return 0;
}

/* Returns the number of nodes with a text. */
static size_t check_index_as_jansson_reads(void)
{
	struct ref_index r = { 0 };
	struct buf want = { 0 };
	char key[256] = "";
	void *got;
	size_t got_len;

	cr_assert_eq(engine_checkpoint(store_engine(st)), 0, "%s",
		     engine_last_error());
	cr_assert_eq(backend_list(be, "ckpt/", ckpt_ext_find, key), 0);
	cr_assert(key[0], "no ext-bm25 in the checkpoint");
	cr_assert_eq(backend_get(be, key, &got, &got_len), 0);
	/* the store's own settings (bigrams are on by default) */
	cr_assert_eq(text_index_new_opts(
			     &(struct text_index_opts){
				     .k1 = TEXT_BM25_K1,
				     .b = TEXT_BM25_B,
				     .bigram_weight = TEXT_BM25_BIGRAM_WEIGHT },
			     &r.idx),
		     0);
	cr_assert_eq(engine_foreach(store_engine(st), "docstore/data",
				    ref_index_node, &r),
		     0);
	cr_assert_eq(text_index_save(r.idx, buf_write, &want), 0);
	cr_assert_eq(got_len, want.len, "%zu nodes: %zu bytes, want %zu", r.n,
		     got_len, want.len);
	cr_assert_eq(memcmp(got, want.p, want.len), 0);
	text_index_free(r.idx);
	free(want.p);
	free(got);
	return r.texts;
}

Test(persist, imported_nodes_are_indexed_as_jansson_reads_their_text)
{
	/* what jansson keeps: the last of a key that comes twice */
	static const char docstore[] =
		"{\"docstore/data\": {"
		"\"plain\": {\"__data__\": {\"id_\": \"plain\", \"text\": "
		"\"alpha beta gamma\"}, \"__type__\": \"1\"}, "
		"\"escaped\": {\"__data__\": {\"text\": \"caf\\u00e9 "
		"na\\u00efve \\ud83d\\ude00 line\\nbreak \\\"quoted\\\" "
		"tab\\tend \\\\ slash\\/\"}, \"__type__\": \"1\"}, "
		"\"text-twice\": {\"__data__\": {\"text\": \"first words\", "
		"\"id_\": \"x\", \"text\": \"second words\"}}, "
		"\"data-twice\": {\"__data__\": {\"text\": \"old data\"}, "
		"\"__type__\": \"1\", \"__data__\": {\"text\": \"newer "
		"data\"}}, "
		"\"data-then-none\": {\"__data__\": {\"text\": \"hidden "
		"words\"}, \"__data__\": {\"id_\": \"y\"}}, "
		"\"data-then-scalar\": {\"__data__\": {\"text\": \"hidden "
		"words\"}, \"__data__\": 5}, "
		"\"scalar-then-data\": {\"__data__\": [\"text\"], "
		"\"__data__\": {\"text\": \"visible words\"}}, "
		"\"text-not-string\": {\"__data__\": {\"text\": [\"not\", "
		"\"a\", \"string\"]}}, "
		"\"text-then-null\": {\"__data__\": {\"text\": \"hidden "
		"words\", \"text\": null}}, "
		"\"null-then-text\": {\"__data__\": {\"text\": {\"text\": "
		"\"deep\"}, \"text\": \"shallow words\"}}, "
		"\"deeper\": {\"__data__\": {\"metadata\": {\"text\": \"deep "
		"words\", \"__data__\": {\"text\": \"deeper\"}}, \"text\": "
		"\"top words\"}}, "
		"\"top-level-text\": {\"text\": \"toplevel words\", "
		"\"__data__\": {\"id_\": \"z\"}}, "
		"\"empty-text\": {\"__data__\": {\"text\": \"\"}}, "
		"\"no-data\": {}, "
		"\"pretty\":   {  \"__data__\" :\n {\"text\"\t:  \"spaced "
		"out words\"  } , \"__type__\" : \"1\" }"
		"}}";
	static const char head[] =
		"{\"docstore/data\": {\"long\": {\"__data__\": {\"text\": \"";
	static const char word[] = "w\\u00f6rd\\n ";
	size_t i;
	struct buf big = { 0 };

	import_ok("docstore.json", docstore);
	/* plain escaped text-twice data-twice scalar-then-data
	 * null-then-text deeper empty-text pretty */
	cr_assert_eq(check_index_as_jansson_reads(), 9);

	/*
	 * A long text, escapes throughout, grows the observer's buffers (in
	 * a fresh store: a dropped node's terms stay in the dictionary).
	 */
	store_close(st);
	backend_close(be);
	setup();
	buf_write(&big, head, strlen(head));
	for (i = 0; i < 3000; i++)
		buf_write(&big, word, strlen(word));
	buf_write(&big, "\"}}}}", 5);
	cr_assert_eq(
		persist_import(st, "docstore.json", big.p, big.len, NULL, NULL),
		0, "%s", store_last_error());
	cr_assert_eq(check_index_as_jansson_reads(), 1);
	free(big.p);
}

/*
 * Node i of version v of kw_docstore: a pseudo-random text over a small
 * vocabulary (so terms and word pairs recur), with some nodes that have
 * no text, an empty one and stopwords only.
 */
static void kw_node(struct buf *b, int v, int i)
{
	static const char *const words[] = {
		"river",       "stone", "bridge", "running", "runs",
		"the",	       "of",	"light",  "tower",   "paris",
		"apple",       "trees", "grow",	  "on",	     "caf\\u00e9",
		"na\\u00efve", "2024",	"x86",	  "shadow",  "market",
	};
	unsigned r = (unsigned)(i * 2654435761u) ^ (unsigned)(v * 40503u);
	char node[4096];
	size_t len = 0, nw, j;

	len += (size_t)snprintf(node + len, sizeof(node) - len,
				"\"n%d\": {\"__data__\": {\"id_\": \"n%d\"", i,
				i);
	if ((i + v) % 17 == 3) {
		len += (size_t)snprintf(node + len, sizeof(node) - len,
					"}, \"__type__\": \"1\"}");
	} else {
		len += (size_t)snprintf(node + len, sizeof(node) - len,
					", \"text\": \"");
		nw = (i + v) % 29 == 5 ? 0 : 1 + r % 60;
		if ((i + v) % 31 == 7)
			len += (size_t)snprintf(node + len, sizeof(node) - len,
						"the of on ");
		for (j = 0; j < nw; j++) {
			r = r * 1103515245u + 12345u;
			len += (size_t)snprintf(
				node + len, sizeof(node) - len, "%s ",
				words[(r >> 16) %
				      (sizeof(words) / sizeof(*words))]);
		}
		len += (size_t)snprintf(node + len, sizeof(node) - len,
					"\"}, \"__type__\": \"1\"}");
	}
	buf_write(b, node, len);
}

/* docstore.json of nodes [from, to) of version v, the JSON of each too. */
static char *kw_docstore(int v, int from, int to)
{
	struct buf b = { 0 };
	int i;

	buf_write(&b, "{\"docstore/data\": {", 19);
	for (i = from; i < to; i++) {
		if (i > from)
			buf_write(&b, ", ", 2);
		kw_node(&b, v, i);
	}
	buf_write(&b, "}}", 3);
	return b.p;
}

/* store_node_put of each node of kw_docstore(v, from, to). */
static void kw_put_each(struct store *s, int v, int from, int to)
{
	struct buf b = { 0 };
	char *colon;
	int i;

	for (i = from; i < to; i++) {
		b.len = 0;
		kw_node(&b, v, i);
		colon = strchr(b.p, ':');
		cr_assert_eq(store_node_put(s, colon + 2,
					    b.len - (size_t)(colon + 2 - b.p)),
			     0, "n%d: %s", i, store_last_error());
	}
	free(b.p);
}

/* The same keyword hits, in the same order, with the same scores. */
static void kw_same_hits(struct store *a, struct store *b)
{
	static const char *const queries[] = {
		"river",
		"stone bridge",
		"running",
		"runs river",
		"caf\u00e9",
		"na\u00efve light",
		"2024",
		"x86 market",
		"the",
		"tower paris",
		"apple trees grow",
		"shadow market river stone",
		"grow on trees",
	};
	struct store_hit *ha, *hb;
	size_t na, nb, i, j;

	for (i = 0; i < sizeof(queries) / sizeof(*queries); i++) {
		struct store_query q = { .text = queries[i],
					 .k = 50,
					 .alpha = -1,
					 .mode = STORE_MODE_KEYWORD };

		cr_assert_eq(store_query(a, &q, &ha, &na), 0, "%s",
			     store_last_error());
		cr_assert_eq(store_query(b, &q, &hb, &nb), 0, "%s",
			     store_last_error());
		cr_assert_eq(na, nb, "%s", queries[i]);
		for (j = 0; j < na; j++) {
			cr_assert_str_eq(ha[j].node_id, hb[j].node_id, "%s",
					 queries[i]);
			cr_assert_eq(ha[j].score, hb[j].score, "%s",
				     queries[i]);
		}
		store_hits_free(ha, na);
		store_hits_free(hb, nb);
	}
}

/*
 * An import builds its keyword index on another thread while the batch
 * is applied: the answers are those of the same nodes written one by
 * one, for a first import (more nodes than a block of the queue) and for
 * one that replaces it (removals queued before the puts).
 */
Test(persist, imported_keyword_index_answers_as_nodes_written_one_by_one)
{
	struct backend *be2;
	struct store *one;
	char *text;

	cr_assert_eq(backend_memory_open(&be2), 0);
	cr_assert_eq(store_open(be2, NULL, &one), 0);
	text = kw_docstore(0, 0, 700);
	import_ok("docstore.json", text);
	free(text);
	kw_put_each(one, 0, 0, 700);
	kw_same_hits(st, one);
	/* 700 nodes, 659 with a text (n3, n20, ... have none) */
	cr_assert_eq(check_index_as_jansson_reads(), 659);
	/* a second import: nodes gone, changed, new */
	text = kw_docstore(1, 300, 1000);
	import_ok("docstore.json", text);
	free(text);
	kw_put_each(one, 1, 300, 1000);
	for (int i = 0; i < 300; i++) {
		char id[16];

		snprintf(id, sizeof(id), "n%d", i);
		cr_assert_eq(store_node_del(one, id), 0);
	}
	kw_same_hits(st, one);
	store_close(one);
	backend_close(be2);
}

Test(persist, fixtures_are_indexed_as_jansson_reads_their_text)
{
	static const char *const dirs[] = {
		"py_persist", "py_persist_single", "py_persist_v0_10",
		"realworld/23Mariya__QA-with-Documents", NULL
	};
	char dir[1024];
	size_t i;

	for (i = 0; dirs[i]; i++) {
		fixture(dirs[i], dir, sizeof(dir));
		if (i) {
			/* a fresh store: a dropped node leaves its terms */
			store_close(st);
			backend_close(be);
			setup();
		}
		import_dir(dir, py_order);
		cr_assert_gt(check_index_as_jansson_reads(), 0, "%s", dirs[i]);
	}
}

Test(persist, store_version_counts_applied_records)
{
	uint64_t v0 = store_version(st), v1;
	float v[2] = { 1, 0 };

	cr_assert_eq(store_vec_put(st, "default", "x", v, 2), 0);
	v1 = store_version(st);
	cr_assert_gt(v1, v0);
	import_ok("default__vector_store.json", py_vec);
	cr_assert_gt(store_version(st), v1);
}

/* --- refusals --------------------------------------------------------------
 */

static void refused(const char *name, const char *text, const char *why)
{
	char *before = snapshot(), *after;
	uint64_t v0 = store_version(st);
	int rc = persist_import(st, name, text, strlen(text), NULL, NULL);

	cr_assert_eq(rc, -EINVAL, "%s accepted: %s", name, text);
	cr_assert(strstr(store_last_error(), why), "%s: reason \"%s\"", text,
		  store_last_error());
	cr_assert_eq(store_version(st), v0);
	after = snapshot();
	cr_assert_str_eq(after, before);
	free(before);
	free(after);
}

Test(persist, invalid_json_is_refused_and_changes_nothing)
{
	char dir[1024];

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	refused("docstore.json", "", "docstore.json");
	refused("docstore.json", "{\"docstore/data\": {", "docstore.json");
	refused("docstore.json", "{} {}", "docstore.json");
	refused("index_store.json", "{\"index_store/data\": {\"a\": {]}}",
		"index_store.json");
	refused("graph_store.json",
		"{\"graph_dict\": {\"a\": [[\"x\" \"y\"]]}}",
		"graph_store.json");
	refused("default__vector_store.json", "{\"embedding_dict\": [}",
		"default__vector_store.json");
	refused("property_graph_store.json", "{\"a\": tru}",
		"property_graph_store.json");
}

Test(persist, wrong_shapes_are_refused_at_each_level)
{
	char dir[1024];

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	refused("docstore.json", "[]", "not a JSON object");
	refused("docstore.json", "{\"docstore/data\": {\"n\": 5}}", "n");
	refused("docstore.json", "{\"docstore/data\": {\"n\": [1]}}",
		"not a JSON object");
	refused("docstore.json", "{\"x\": 1, \"x\": 2}", "twice");
	refused("index_store.json", "{\"index_store/data\": {\"i\": \"s\"}}",
		"index_store/data/i");
	refused("graph_store.json", "{\"graph_dict\": []}",
		"graph_dict is not an object");
	refused("graph_store.json", "{\"graph_dict\": {\"s\": [\"r\", \"o\"]}}",
		"graph_dict/s");
	refused("graph_store.json",
		"{\"graph_dict\": {\"s\": [[\"r\", \"o\", \"x\"]]}}",
		"graph_dict/s");
	refused("graph_store.json", "{\"graph_dict\": {\"s\": [[\"r\", 1]]}}",
		"graph_dict/s");
	refused("default__vector_store.json", "{\"embedding_dict\": []}",
		"embedding_dict is not an object");
	refused("default__vector_store.json",
		"{\"embedding_dict\": {\"a\": {}}}", "embedding_dict/a");
	refused("default__vector_store.json",
		"{\"embedding_dict\": {\"a\": [1, \"x\"]}}",
		"embedding_dict/a");
	refused("default__vector_store.json",
		"{\"embedding_dict\": {\"a\": []}}", "empty vector");
	refused("default__vector_store.json",
		"{\"embedding_dict\": {\"a\": [1e39]}}", "float32");
	refused("default__vector_store.json", "{\"text_id_to_ref_doc_id\": []}",
		"text_id_to_ref_doc_id is not an object");
	refused("default__vector_store.json", "{\"metadata_dict\": 3}",
		"metadata_dict is not an object");
	refused("property_graph_store.json", "[]", "not a JSON object");
}

Test(persist, vectors_of_differing_lengths_are_refused)
{
	import_ok("default__vector_store.json", py_vec);
	refused("default__vector_store.json",
		"{\"embedding_dict\": {\"a\": [1, 2], \"b\": [1, 2, 3]}}",
		"embedding_dict/b has 3 numbers");
}

Test(persist, values_jansson_cannot_hold_are_refused_naming_the_key)
{
	import_ok("default__vector_store.json", py_vec);
	refused("docstore.json",
		"{\"docstore/data\": {\"nan-node\": {\"x\": NaN}}}",
		"nan-node");
	refused("docstore.json",
		"{\"docstore/data\": {\"nul-node\": {\"x\": \"a\\u0000b\"}}}",
		"nul-node");
	refused("index_store.json",
		"{\"index_store/data\": {\"big\": {\"x\": "
		"99999999999999999999}}}",
		"big");
	refused("docstore.json", "{\"other\": Infinity}", "other");
	refused("default__vector_store.json",
		"{\"text_id_to_ref_doc_id\": {\"a\": \"x\\u0000\"}}", "a");
	refused("default__vector_store.json",
		"{\"metadata_dict\": {\"m-id\": {\"k\": NaN}}}", "m-id");
}

Test(persist, empty_and_too_long_keys_are_refused)
{
	size_t n = 5000, i;
	char *text = malloc(n + 200);

	import_ok("default__vector_store.json", py_vec);
	refused("docstore.json", "{\"docstore/data\": {\"\": {}}}",
		"empty key");
	refused("docstore.json", "{\"\": {}}", "empty key");
	refused("default__vector_store.json",
		"{\"embedding_dict\": {\"\": [1, 2]}}", "empty key");
	refused("graph_store.json", "{\"graph_dict\": {\"\": []}}",
		"empty key");
	strcpy(text, "{\"docstore/data\": {\"");
	for (i = 0; i < n; i++)
		strcat(text, "k");
	strcat(text, "\": {}}}");
	refused("docstore.json", text, "5000 bytes");
	strcpy(text, "{\"embedding_dict\": {\"");
	for (i = 0; i < n; i++)
		strcat(text, "v");
	strcat(text, "\": [1, 2]}}");
	refused("default__vector_store.json", text, "5000 bytes");
	refused("docstore.json", "{\"docstore/data\": {\"a\\u0000b\": {}}}",
		"NUL");
	refused("docstore.json", "{\"docstore/data\": {\"\\ud800\": {}}}",
		"UTF-8");
	free(text);
}

/* --- what is kept ------------------------------------------------------------
 */

Test(persist, unknown_members_collections_and_namespaces_are_kept)
{
	static const char doc[] =
		"{\"note\": [1, 2.5, \"x\\u00e9\"], \"docstore/data\": {}, "
		"\"docstore/mine\": {\"k\": {\"v\": 1}}, \"docstore/odd\": 7, "
		"\"docstore/metadata\": {\"k\": {\"doc_hash\": \"h\"}}}";
	static const char idx[] =
		"{\"index_store/data\": {\"s\": {\"__type__\": \"list\", "
		"\"__data__\": \"{\\\"index_id\\\": \\\"s\\\"}\"}}, "
		"\"index_store/other\": {\"o\": {}}, \"v\": null}";
	static const char graph[] = "{\"graph_dict\": {\"a\": [[\"r\", "
				    "\"b\"]]}, \"extra\": {\"deep\": [true]}}";
	static const char vec[] =
		"{\"embedding_dict\": {\"q\": [0.5, NaN, Infinity, "
		"-Infinity]}, \"text_id_to_ref_doc_id\": {\"q\": \"None\"}, "
		"\"metadata_dict\": {\"q\": {}}, \"future\": {\"x\": 1}}";
	static const char pg[] = "{\"nodes\": {\"a\": {\"label\": \"x\"}}, "
				 "\"relations\": {}, \"triplets\": []}";
	char *t;

	import_ok("docstore.json", doc);
	import_ok("index_store.json", idx);
	import_ok("graph_store.json", graph);
	import_ok("odd__vector_store.json", vec);
	import_ok("property_graph_store.json", pg);
	t = export("docstore.json");
	cr_assert_str_eq(t, doc);
	free(t);
	t = export("index_store.json");
	cr_assert_str_eq(t, idx);
	free(t);
	t = export("graph_store.json");
	cr_assert_str_eq(t, graph);
	free(t);
	t = export("odd__vector_store.json");
	cr_assert_str_eq(t, vec);
	free(t);
	t = export("property_graph_store.json");
	cr_assert_str_eq(t, pg);
	free(t);
	reopen();
	t = export("odd__vector_store.json");
	cr_assert_str_eq(t, vec);
	free(t);
}

Test(persist, pretty_printed_text_is_written_back_as_python_writes_it)
{
	char *t;

	import_ok("graph_store.json",
		  "{\n  \"graph_dict\": {\n    \"a\": [[\"r\", \"\\u00e9\"]]\n"
		  "  }\n}\n");
	import_ok("property_graph_store.json", "{ \"x\" : [ 1.50 , 1E2 ] }");
	t = export("graph_store.json");
	cr_assert_str_eq(t,
			 "{\"graph_dict\": {\"a\": [[\"r\", \"\\u00e9\"]]}}");
	free(t);
	t = export("property_graph_store.json");
	cr_assert_str_eq(t, "{\"x\": [1.5, 100.0]}");
	free(t);
}

Test(persist, replacing_a_vector_store_replaces_its_namespace_and_dim)
{
	char *t;
	uint32_t dim;
	float *v;

	import_ok("default__vector_store.json", py_vec);
	import_ok("default__vector_store.json",
		  "{\"embedding_dict\": {\"c\": [1.0, 2.0, 3.0]}, "
		  "\"text_id_to_ref_doc_id\": {\"c\": \"None\"}, "
		  "\"metadata_dict\": {\"c\": {}}}");
	cr_assert_eq(store_vec_get(st, "default", "a", &v, &dim), -ENOENT);
	cr_assert_eq(store_vec_get(st, "default", "c", &v, &dim), 0);
	cr_assert_eq(dim, 3);
	free(v);
	t = export("default__vector_store.json");
	cr_assert_str_eq(t, "{\"embedding_dict\": {\"c\": [1.0, 2.0, 3.0]}, "
			    "\"text_id_to_ref_doc_id\": {\"c\": \"None\"}, "
			    "\"metadata_dict\": {\"c\": {}}}");
	free(t);
	/* the other namespaces are untouched */
	t = export("image__vector_store.json");
	cr_assert_str_eq(t, "{\"embedding_dict\": {}, "
			    "\"text_id_to_ref_doc_id\": {}, "
			    "\"metadata_dict\": {}}");
	free(t);
}

Test(persist, metadata_before_ref_docs_and_ids_without_vectors_are_kept)
{
	static const char vec[] =
		"{\"metadata_dict\": {\"b\": {\"m\": 2}, \"z\": {}}, "
		"\"embedding_dict\": {\"a\": [1.0], \"b\": [2.0]}, "
		"\"text_id_to_ref_doc_id\": {\"a\": \"d\", \"b\": \"d\", "
		"\"y\": \"e\"}}";
	json_t *want = json_loads(vec, 0, NULL), *got;

	import_ok("default__vector_store.json", vec);
	got = export_json("default__vector_store.json");
	cr_assert(json_equal(want, got), "%s", json_dumps(got, 0));
	json_decref(want);
	json_decref(got);
}

/* --- writes ------------------------------------------------------------------
 */

Test(persist, a_failing_write_aborts_the_export)
{
	char dir[1024];
	struct buf b = { .fail_at = 3000 };

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	cr_assert_eq(
		persist_export(st, "docstore.json", buf_write, &b, NULL, NULL),
		-EIO);
	cr_assert_leq(b.len, 3000);
	free(b.p);
}

static void count_progress(void *arg, uint64_t done, uint64_t total)
{
	uint64_t *last = arg;

	cr_assert_leq(done, total);
	*last = done;
}

Test(persist, progress_ends_at_the_total)
{
	struct buf b = { 0 };
	uint64_t last = 0;

	cr_assert_eq(persist_import(st, "default__vector_store.json", py_vec,
				    strlen(py_vec), count_progress, &last),
		     0);
	cr_assert_eq(last, strlen(py_vec));
	last = 0;
	cr_assert_eq(persist_export(st, "default__vector_store.json", buf_write,
				    &b, count_progress, &last),
		     0);
	cr_assert_eq(last, 6);
	free(b.p);
}

/* --- what docs/ and nodes/ add, as LlamaIndex loads it ------------------------
 */

static json_t *jget(json_t *j, const char *path)
{
	char buf[512], *save = NULL, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part && j;
	     part = strtok_r(NULL, ".", &save))
		j = json_object_get(j, part);
	return j;
}

/* The IndexDict of index_store/data/<id>, its __data__ parsed. */
static json_t *index_dict(json_t *idx, const char *id)
{
	json_t *s =
		json_object_get(json_object_get(idx, "index_store/data"), id);
	const char *text = json_string_value(json_object_get(s, "__data__"));
	json_t *d;

	cr_assert_not_null(text, "no struct %s", id);
	cr_assert_str_eq(json_string_value(json_object_get(s, "__type__")),
			 "vector_store");
	d = json_loads(text, 0, NULL);
	cr_assert_not_null(d);
	return d;
}

static void check_key_order(json_t *obj, const char *const *want)
{
	void *it = json_object_iter(obj);
	size_t i = 0;

	for (; want[i]; i++, it = json_object_iter_next(obj, it)) {
		cr_assert_not_null(it, "missing %s", want[i]);
		cr_assert_str_eq(json_object_iter_key(it), want[i]);
	}
	cr_assert_null(it, "more keys than expected");
}

/* Every rule of point 4 over the exported files of the store. */
static void check_llamaindex_view(size_t want_nodes)
{
	static const char *const ds_order[] = { "docstore/metadata",
						"docstore/data",
						"docstore/ref_doc_info", NULL };
	static const char *const dict_order[] = {
		"index_id",    "summary",	  "nodes_dict",
		"doc_id_dict", "embeddings_dict", NULL
	};
	json_t *ds = export_json("docstore.json");
	json_t *idx = export_json("index_store.json");
	json_t *vs = export_json("default__vector_store.json");
	json_t *data = json_object_get(ds, "docstore/data");
	json_t *meta = json_object_get(ds, "docstore/metadata");
	json_t *refs = json_object_get(ds, "docstore/ref_doc_info");
	json_t *emb = json_object_get(vs, "embedding_dict");
	json_t *tir = json_object_get(vs, "text_id_to_ref_doc_id");
	json_t *md = json_object_get(vs, "metadata_dict");
	json_t *vi = index_dict(idx, "vector_index"), *nodes, *v;
	const char *id;
	size_t n = 0;

	check_key_order(ds, ds_order);
	check_key_order(vi, dict_order);
	nodes = json_object_get(vi, "nodes_dict");
	cr_assert_eq(json_object_size(emb), want_nodes);
	cr_assert_eq(json_object_size(nodes), want_nodes);
	json_object_foreach(emb, id, v)
	{
		json_t *node = json_object_get(data, id);
		json_t *d = json_object_get(node, "__data__");
		json_t *m = json_object_get(md, id), *mv;
		const char *ref =
			json_string_value(jget(d, "relationships.1.node_id"));
		json_t *ids;
		const char *k;
		size_t i;
		int listed = 0;

		n++;
		cr_assert_not_null(d, "vector %s has no node", id);
		cr_assert_str_eq(
			json_string_value(json_object_get(node, "__type__")),
			"1");
		cr_assert_str_eq(json_string_value(jget(d, "class_name")),
				 "TextNode");
		cr_assert_str_eq(json_string_value(jget(d, "id_")), id);
		cr_assert(json_is_string(jget(d, "text")));
		cr_assert(json_is_null(json_object_get(d, "embedding")),
			  "node %s keeps its embedding", id);
		cr_assert_not_null(ref, "node %s has no SOURCE", id);
		cr_assert_str_eq(
			json_string_value(jget(d, "relationships.1.node_type")),
			"4");
		cr_assert_str_eq(json_string_value(json_object_get(nodes, id)),
				 id);
		cr_assert_str_eq(json_string_value(json_object_get(tir, id)),
				 ref);
		cr_assert_str_eq(
			json_string_value(json_object_get(
				json_object_get(meta, id), "ref_doc_id")),
			ref);
		cr_assert(json_is_string(json_object_get(
			json_object_get(meta, id), "doc_hash")));
		cr_assert(json_is_string(json_object_get(
			json_object_get(meta, ref), "doc_hash")));
		ids = json_object_get(json_object_get(refs, ref), "node_ids");
		for (i = 0; i < json_array_size(ids); i++)
			if (strcmp(json_string_value(json_array_get(ids, i)),
				   id) == 0)
				listed = 1;
		cr_assert(listed, "ref_doc_info of %s does not list %s", ref,
			  id);
		/* node_to_metadata_dict(remove_text) minus _node_content */
		cr_assert_not_null(m);
		json_object_foreach(json_object_get(d, "metadata"), k, mv)
			cr_assert(json_equal(json_object_get(m, k), mv),
				  "metadata_dict[%s][%s]", id, k);
		cr_assert_eq(json_object_size(m),
			     json_object_size(json_object_get(d, "metadata")) +
				     4);
		cr_assert_str_eq(
			json_string_value(json_object_get(m, "_node_type")),
			"TextNode");
		cr_assert_str_eq(
			json_string_value(json_object_get(m, "document_id")),
			ref);
		cr_assert_str_eq(
			json_string_value(json_object_get(m, "doc_id")), ref);
		cr_assert_str_eq(
			json_string_value(json_object_get(m, "ref_doc_id")),
			ref);
		cr_assert_null(json_object_get(m, "_node_content"));
	}
	cr_assert_eq(n, want_nodes);
	json_decref(vi);
	json_decref(ds);
	json_decref(idx);
	json_decref(vs);
}

static void put_doc(const char *id, const char *text)
{
	struct store_doc d = {
		.id = id, .data = text, .len = strlen(text), .mtime = 1700000000
	};
	int r = -1;

	cr_assert_eq(store_docs_put(st, &d, 1, &r), 0, "%s",
		     store_last_error());
	cr_assert_eq(r, STORE_INDEXED);
}

Test(persist, documents_from_docs_export_as_llamaindex_loads_them)
{
	store_close(st);
	{
		struct store_opts o;

		store_opts_init(&o);
		o.embed_dim = 16;
		o.chunk_size = 16;
		o.chunk_overlap = 2;
		cr_assert_eq(store_open(be, &o, &st), 0);
	}
	put_doc("a.txt", "Apples grow on trees. Farmers pick apples in "
			 "autumn and press them into cider. Apple pie is a "
			 "classic dessert made with sliced apples and "
			 "cinnamon, baked until golden.");
	put_doc("sub/b.md", "Rust is a systems programming language.");
	check_llamaindex_view(engine_count(store_engine(st), "docstore/data"));
	cr_assert_gt(engine_count(store_engine(st), "docstore/data"), 2);
	/* the exported files import again to the same files */
	{
		char *before = snapshot(), *after;
		const char *const names[] = { "docstore.json",
					      "index_store.json",
					      "default__vector_store.json",
					      NULL };
		char *texts[3];
		size_t i;

		for (i = 0; names[i]; i++)
			texts[i] = export(names[i]);
		for (i = 0; names[i]; i++) {
			import_ok(names[i], texts[i]);
			free(texts[i]);
		}
		after = snapshot();
		cr_assert_str_eq(after, before);
		free(before);
		free(after);
	}
	/* deleting a document takes its nodes out of every file */
	cr_assert_eq(store_doc_del(st, "a.txt"), 0);
	check_llamaindex_view(1);
}

static const char *const apples[] = { "77c82a1b-844b-5d89-83c6-f47ffc185de7",
				      "90c7c20f-cdfe-5606-99c0-318a512af11a" };
#define APPLES_DOC "bc6c1e0a-1a9d-52a7-bf08-3e4b7e845d47"

/* `text` without every `"id": ...` entry of the ids given (Python's del). */
static char *without_entries(const char *text, const char *id, const char *open,
			     const char *close)
{
	char key[128], *out = strdup(text), *p;

	snprintf(key, sizeof(key), "\"%s\": ", id);
	while ((p = strstr(out, key))) {
		char *end = p + strlen(key);
		int depth = 0;

		/* the value: a string, or a bracketed value */
		if (*end == '"') {
			end = strchr(end + 1, '"') + 1;
		} else {
			do {
				if (strchr(open, *end))
					depth++;
				else if (strchr(close, *end))
					depth--;
				end++;
			} while (depth);
		}
		if (strncmp(end, ", ", 2) == 0)
			end += 2;
		else if (p[-2] == ',')
			p -= 2;
		memmove(p, end, strlen(end) + 1);
	}
	return out;
}

Test(persist, deleting_a_document_removes_its_nodes_from_every_file)
{
	char dir[1024], path[1100], *want, *got, *tmp;
	size_t i;

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	cr_assert_eq(store_doc_del(st, APPLES_DOC), 0, "%s",
		     store_last_error());
	/* the vector store: as SimpleVectorStore.delete(ref_doc_id) leaves it */
	snprintf(path, sizeof(path), "%s/default__vector_store.json", dir);
	want = slurp(path, NULL);
	for (i = 0; i < 2; i++) {
		tmp = without_entries(want, apples[i], "[{", "]}");
		free(want);
		want = tmp;
	}
	got = export("default__vector_store.json");
	cr_assert_str_eq(got, want);
	free(got);
	free(want);
	/* the vector index: IndexDict.delete of each node */
	snprintf(path, sizeof(path), "%s/index_store.json", dir);
	{
		json_t *idx = export_json("index_store.json");
		json_t *vi = index_dict(idx, "vector_index");
		json_t *orig = json_load_file(path, 0, NULL);
		json_t *kg = jget(orig, "index_store/data");

		cr_assert_eq(
			json_object_size(json_object_get(vi, "nodes_dict")), 3);
		for (i = 0; i < 2; i++)
			cr_assert_null(json_object_get(
				json_object_get(vi, "nodes_dict"), apples[i]));
		/* the kg struct is untouched */
		cr_assert(json_equal(
			json_object_get(kg, "kg_index"),
			json_object_get(
				json_object_get(idx, "index_store/data"),
				"kg_index")));
		json_decref(vi);
		json_decref(idx);
		json_decref(orig);
	}
	/* the docstore: no node, no metadata, no ref_doc_info */
	{
		json_t *ds = export_json("docstore.json");

		for (i = 0; i < 2; i++) {
			cr_assert_null(
				jget(json_object_get(ds, "docstore/data"),
				     apples[i]));
			cr_assert_null(json_object_get(
				json_object_get(ds, "docstore/metadata"),
				apples[i]));
		}
		cr_assert_null(json_object_get(
			json_object_get(ds, "docstore/ref_doc_info"),
			APPLES_DOC));
		cr_assert_eq(
			json_object_size(json_object_get(ds, "docstore/data")),
			3);
		json_decref(ds);
	}
	/* and it stays so after a replay */
	reopen();
	{
		json_t *idx = export_json("index_store.json");
		json_t *vi = index_dict(idx, "vector_index");

		cr_assert_eq(
			json_object_size(json_object_get(vi, "nodes_dict")), 3);
		json_decref(vi);
		json_decref(idx);
	}
}

Test(persist, a_node_put_joins_the_vector_index_of_the_imported_files)
{
	static const char node[] =
		"{\"id_\": \"new-node\", \"embedding\": [1, 0, 0, 0, 0, 0, 0, "
		"0], \"metadata\": {\"year\": 2024, \"doc_id\": \"x\"}, "
		"\"relationships\": {\"1\": {\"node_id\": \"" APPLES_DOC
		"\", \"node_type\": \"4\", \"metadata\": {}}}, "
		"\"text\": \"Cider is pressed from apples.\", \"class_name\": "
		"\"TextNode\"}";
	char dir[1024], path[1100], *orig, *got;
	json_t *idx, *vi, *vs, *m;
	const char *last = NULL, *k;
	json_t *v;

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	cr_assert_eq(store_node_put(st, node, strlen(node)), 0, "%s",
		     store_last_error());
	idx = export_json("index_store.json");
	vi = index_dict(idx, "vector_index");
	cr_assert_eq(json_object_size(json_object_get(vi, "nodes_dict")), 6);
	json_object_foreach(json_object_get(vi, "nodes_dict"), k, v) last = k;
	cr_assert_str_eq(last, "new-node");
	json_decref(vi);
	json_decref(idx);
	vs = export_json("default__vector_store.json");
	cr_assert_str_eq(json_string_value(jget(vs, "text_id_to_ref_doc_id."
						    "new-node")),
			 APPLES_DOC);
	m = jget(vs, "metadata_dict.new-node");
	cr_assert_not_null(m);
	/* doc_id was the node's own: overwritten in place, as Python does */
	{
		static const char *const order[] = {
			"year",	       "doc_id",     "_node_type",
			"document_id", "ref_doc_id", NULL
		};

		check_key_order(m, order);
		cr_assert_str_eq(
			json_string_value(json_object_get(m, "doc_id")),
			APPLES_DOC);
	}
	json_decref(vs);
	/* removing it gives the imported index_store.json back exactly */
	cr_assert_eq(store_node_del(st, "new-node"), 0);
	snprintf(path, sizeof(path), "%s/index_store.json", dir);
	orig = slurp(path, NULL);
	got = export("index_store.json");
	cr_assert_str_eq(got, orig);
	free(got);
	free(orig);
}

Test(persist, vectors_without_an_index_struct_show_a_vector_index)
{
	static const char node[] = "{\"id_\": \"n1\", \"embedding\": [0.5, "
				   "0.25], \"text\": \"hello\"}";
	char *t;

	cr_assert_eq(store_node_put(st, node, strlen(node)), 0);
	t = export("index_store.json");
	cr_assert_str_eq(
		t,
		"{\"index_store/data\": {\"vector_index\": {\"__type__\": "
		"\"vector_store\", \"__data__\": \"{\\\"index_id\\\": "
		"\\\"vector_index\\\", \\\"summary\\\": null, "
		"\\\"nodes_dict\\\": {\\\"n1\\\": \\\"n1\\\"}, "
		"\\\"doc_id_dict\\\": {}, \\\"embeddings_dict\\\": {}}\"}}}");
	free(t);
	t = export("default__vector_store.json");
	cr_assert_str_eq(t,
			 "{\"embedding_dict\": {\"n1\": [0.5, 0.25]}, "
			 "\"text_id_to_ref_doc_id\": {\"n1\": \"None\"}, "
			 "\"metadata_dict\": {\"n1\": {\"_node_type\": "
			 "\"TextNode\", \"document_id\": \"None\", "
			 "\"doc_id\": \"None\", \"ref_doc_id\": \"None\"}}}");
	free(t);
	t = export("docstore.json");
	cr_assert(strstr(t, "\"embedding\": null"), "%s", t);
	free(t);
}

/* --- query parity with SimpleVectorStore ----------------------------------
 */

static void query_parity(const char *rel)
{
	char dir[1024], path[1100];
	json_t *exp, *queries, *q;
	json_error_t err;
	size_t i, j;

	fixture(rel, dir, sizeof(dir));
	import_dir(dir, py_order);
	snprintf(path, sizeof(path), "%s.expected.json", dir);
	exp = json_load_file(path, 0, &err);
	cr_assert_not_null(exp, "%s: %s", path, err.text);
	queries = json_object_get(exp, "queries");
	cr_assert_gt(json_array_size(queries), 0);
	json_array_foreach(queries, i, q)
	{
		json_t *emb = json_object_get(q, "query_embedding");
		json_t *res = json_object_get(q, "result");
		json_t *filters = json_object_get(q, "filters");
		struct store_query sq = { .alpha = -1,
					  .mode = STORE_MODE_VECTOR };
		struct vec_filters *f = NULL;
		struct store_hit *hits;
		float qv[64];
		char ferr[256];
		size_t n;

		sq.text = json_string_value(json_object_get(q, "query_str"));
		sq.k = (size_t)json_integer_value(
			json_object_get(q, "similarity_top_k"));
		for (j = 0; j < json_array_size(emb); j++)
			qv[j] = (float)json_number_value(
				json_array_get(emb, j));
		sq.embedding = qv;
		sq.dim = (uint32_t)json_array_size(emb);
		if (json_is_object(filters)) {
			cr_assert_eq(vec_filter_from_json(filters, &f, ferr,
							  sizeof(ferr)),
				     0, "%s", ferr);
			sq.filters = f;
		}
		cr_assert_eq(store_query(st, &sq, &hits, &n), 0, "%s",
			     store_last_error());
		cr_assert_eq(n, json_array_size(res), "%s query %zu: %zu hits",
			     rel, i, n);
		for (j = 0; j < n; j++) {
			json_t *r = json_array_get(res, j);

			cr_assert_str_eq(
				hits[j].node_id,
				json_string_value(json_object_get(r, "id")),
				"%s query %zu rank %zu", rel, i, j);
			cr_assert_float_eq(
				hits[j].score,
				json_number_value(json_object_get(r, "score")),
				1e-6, "%s query %zu rank %zu", rel, i, j);
		}
		store_hits_free(hits, n);
		vec_filter_free(f);
	}
	json_decref(exp);
}

Test(persist, queries_answer_as_simple_vector_store_on_py_persist)
{
	query_parity("py_persist");
}

Test(persist, queries_answer_as_simple_vector_store_on_py_persist_single)
{
	query_parity("py_persist_single");
}

Test(persist, queries_answer_as_simple_vector_store_on_py_persist_v0_10)
{
	query_parity("py_persist_v0_10");
}

Test(persist, the_graph_answers_as_simple_graph_store)
{
	char dir[1024], path[1100], *got;
	json_t *exp, *g, *j;
	const char *farmers[] = { "Farmers" };

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	snprintf(path, sizeof(path), "%s.expected.json", dir);
	exp = json_load_file(path, 0, NULL);
	cr_assert_not_null(exp);
	g = json_object_get(exp, "graph");
	cr_assert_eq(store_graph_get(st, "Apples", &got), 0);
	j = json_loads(got, 0, NULL);
	cr_assert(json_equal(j, json_object_get(g, "get('Apples')")));
	json_decref(j);
	free(got);
	cr_assert_eq(store_graph_rel_map(st, farmers, 1, 2, 30, &got), 0);
	j = json_loads(got, 0, NULL);
	cr_assert(json_equal(
		j, json_object_get(g, "get_rel_map(['Farmers'], depth=2)")));
	json_decref(j);
	free(got);
	cr_assert_eq(store_graph_rel_map(st, farmers, 1, 1, 30, &got), 0);
	j = json_loads(got, 0, NULL);
	cr_assert(json_equal(
		j, json_object_get(g, "get_rel_map(['Farmers'], depth=1)")));
	json_decref(j);
	free(got);
	json_decref(exp);
}

/* --- large files ----------------------------------------------------------- */

/*
 * A text past the sizes where the import gives back the pages it has read
 * and the commit gives back the batch and the segment as it goes
 * (engine_commit_consume): ~70 MB of JSON, 24 MB of vectors, with an id
 * that comes twice far apart (Python keeps the last value in the first
 * place).  Everything must land exactly.
 */
/* Component d of vector k in the large file (`last`: the second id 0). */
static float big_value(size_t k, size_t d, int last)
{
	return (float)((double)((k * 7 + d * 13) % 1000) /
		       (last ? 1000.0 : 997.0));
}

Test(persist, a_large_file_imports_exactly, .timeout = 300)
{
	const size_t n = 16000, dim = 384;
	struct buf b = { 0 }, out = { 0 };
	char id[32], num[48];
	size_t i, d;
	float *v;
	uint32_t vd;
	json_t *j;
	int rc;

	buf_write(&b, "{\"embedding_dict\": {", 20);
	for (i = 0; i <= n; i++) {
		/* the last one is id 0 again */
		size_t k = i == n ? 0 : i;

		snprintf(id, sizeof(id), "%s\"id-%06zu\": [", i ? ", " : "", k);
		buf_write(&b, id, strlen(id));
		for (d = 0; d < dim; d++) {
			int len = snprintf(num, sizeof(num), "%s%.9g",
					   d ? ", " : "",
					   (double)big_value(k, d, i == n));
			buf_write(&b, num, (size_t)len);
		}
		buf_write(&b, "]", 1);
	}
	buf_write(&b,
		  "}, \"text_id_to_ref_doc_id\": {}, \"metadata_dict\": {}}",
		  strlen("}, \"text_id_to_ref_doc_id\": {}, \"metadata_dict\": "
			 "{}}"));
	cr_assert_gt(b.len, 64u << 20);
	import_ok("big__vector_store.json", b.p);
	cr_assert_eq(engine_count(store_engine(st), "vector_store/big"), n);
	for (i = 0; i < n; i += 997) {
		snprintf(id, sizeof(id), "id-%06zu", i);
		cr_assert_eq(store_vec_get(st, "big", id, &v, &vd), 0, "%s",
			     id);
		cr_assert_eq(vd, dim);
		for (d = 0; d < dim; d++)
			cr_assert_eq(v[d], big_value(i, d, i == 0),
				     "%s[%zu] %.9g %.9g", id, d, (double)v[d],
				     (double)big_value(i, d, i == 0));
		free(v);
	}
	/* id-000000 kept its first place */
	rc = persist_export(st, "big__vector_store.json", buf_write, &out, NULL,
			    NULL);
	cr_assert_eq(rc, 0, "%d %s", rc, store_last_error());
	cr_assert_eq(strncmp(out.p,
			     "{\"embedding_dict\": {\"id-000000\": [0.0, ", 39),
		     0);
	j = json_loadb(out.p, out.len, 0, NULL);
	cr_assert_not_null(j);
	cr_assert_eq(json_object_size(json_object_get(j, "embedding_dict")), n);
	json_decref(j);
	free(out.p);
	free(b.p);
}

Test(persist, engine_commit_consume_spends_the_batch)
{
	struct engine *e = store_engine(st);
	struct engine_batch *b = engine_batch_new();
	float v[2] = { 1, 2 };
	void *data;
	size_t len;

	cr_assert_eq(engine_batch_put_json(b, "c/x", "k", "{\"a\": 1}", 8), 0);
	cr_assert_eq(engine_batch_put_vec(b, "c/v", "k", v, 2), 0);
	cr_assert_eq(engine_batch_put_json(b, "c/x", "k", "{\"a\": 2}", 8), 0);
	cr_assert_eq(engine_commit_consume(e, b), 0);
	cr_assert_eq(engine_batch_count(b), 0);
	cr_assert_eq(engine_get(e, "c/x", "k", NULL, &data, &len), 0);
	cr_assert_str_eq(data, "{\"a\":2}");
	free(data);
	/* a refused batch is spent too, and nothing is applied */
	cr_assert_eq(engine_batch_put_vec(b, "c/v", "j", v, 1), 0);
	cr_assert_eq(engine_batch_put_json(b, "c/x", "j", "{}", 2), 0);
	cr_assert_eq(engine_commit_consume(e, b), -EINVAL);
	cr_assert_eq(engine_batch_count(b), 0);
	cr_assert_eq(engine_exists(e, "c/x", "j"), 0);
	/* and can be filled again */
	cr_assert_eq(engine_batch_put_json(b, "c/x", "j", "{}", 2), 0);
	cr_assert_eq(engine_commit_consume(e, b), 0);
	cr_assert_eq(engine_exists(e, "c/x", "j"), 1);
	engine_batch_free(b);
}

Test(persist, a_vector_without_a_node_is_listed_as_simple_vector_store_would)
{
	float v[2] = { 0.25f, -1 };
	char *t;

	cr_assert_eq(store_vec_put(st, "default", "raw", v, 2), 0);
	t = export("default__vector_store.json");
	cr_assert_str_eq(t,
			 "{\"embedding_dict\": {\"raw\": [0.25, -1.0]}, "
			 "\"text_id_to_ref_doc_id\": {\"raw\": \"None\"}, "
			 "\"metadata_dict\": {\"raw\": {\"_node_type\": "
			 "\"TextNode\", \"document_id\": \"None\", "
			 "\"doc_id\": \"None\", \"ref_doc_id\": \"None\"}}}");
	free(t);
	/* not a node: the vector index does not list it */
	t = export("index_store.json");
	cr_assert_str_eq(t, "{}");
	free(t);
	/* store_vec_del takes what persist/ kept of it too */
	import_ok("default__vector_store.json", py_vec);
	cr_assert_eq(store_vec_del(st, "default", "a"), 0);
	t = export("default__vector_store.json");
	cr_assert_null(strstr(t, "\"a\""), "%s", t);
	free(t);
}

static void fsck_report(void *arg, const char *key, const char *problem)
{
	cr_log_error("fsck: %s: %s", key, problem);
	(void)arg;
}

Test(persist, imported_files_pass_fsck_and_a_new_docstore_replaces_the_old)
{
	char dir[1024];
	struct store_query q = { .text = "Eiffel",
				 .k = 3,
				 .alpha = -1,
				 .mode = STORE_MODE_KEYWORD };
	struct store_hit *hits;
	size_t n;

	fixture("py_persist", dir, sizeof(dir));
	import_dir(dir, py_order);
	cr_assert_eq(store_fsck(st, fsck_report, NULL), 0);
	cr_assert_eq(store_doc_del(st, APPLES_DOC), 0);
	cr_assert_eq(store_fsck(st, fsck_report, NULL), 0);
	/* a docstore without the Paris node: the keyword index forgets it */
	import_ok("docstore.json", "{\"docstore/data\": {\"n\": {\"__data__\": "
				   "{\"id_\": \"n\", \"text\": \"Lyon\"}, "
				   "\"__type__\": \"1\"}}}");
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 0);
	store_hits_free(hits, n);
	q.text = "Lyon";
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].node_id, "n");
	store_hits_free(hits, n);
}

/* --- embedding_dict converted on a second thread ------------------------- */

/*
 * A vector store of n vectors of 3 numbers, the one at `at` replaced by
 * the text `odd` (its key too if odd starts with '"'), `tail` after the
 * dict.  Awkward but valid vectors are spread through it: NaN and
 * Infinity (which the converter leaves to the serial reading), odd
 * whitespace, -0.0, an underflow, integers, a key given twice.
 */
static char *vec_text(size_t n, size_t at, const char *odd, const char *tail)
{
	struct buf b = { 0 };
	char t[128];
	size_t i;

	buf_write(&b, "{\"embedding_dict\": {", 20);
	for (i = 0; i < n; i++) {
		if (i)
			buf_write(&b, ", ", 2);
		if (odd && i == at && odd[0] == '"') {
			buf_write(&b, odd, strlen(odd));
			continue;
		}
		snprintf(t, sizeof(t), "\"v%zu\": ", i % 7 == 6 ? i - 1 : i);
		buf_write(&b, t, strlen(t));
		if (odd && i == at)
			snprintf(t, sizeof(t), "%s", odd);
		else if (i % 50 == 17)
			snprintf(t, sizeof(t), "[NaN, %zu, -Infinity]", i);
		else if (i % 50 == 23)
			snprintf(t, sizeof(t), "[ -0.0 ,\n\t1e-60,%zu ]", i);
		else
			snprintf(t, sizeof(t), "[0.%zu, -%zu.5e-3, %zu]", i,
				 i * 7, i % 3);
		buf_write(&b, t, strlen(t));
	}
	buf_write(&b, "}", 1);
	buf_write(&b, tail, strlen(tail));
	return b.p;
}

Test(persist, vectors_converted_on_two_threads_are_the_serial_ones)
{
	const char *tail = ", \"text_id_to_ref_doc_id\": {}, "
			   "\"metadata_dict\": {}}";
	static const size_t ns[] = { 0, 1, 127, 128, 129, 300, 1000 };
	char name[64], coll[64];
	size_t k;

	for (k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		char *text = vec_text(ns[k], 0, NULL, tail);
		char *a, *b;

		persist_import_serial_vectors = 1;
		snprintf(name, sizeof(name), "s%zu__vector_store.json", k);
		import_ok(name, text);
		a = export(name);
		persist_import_serial_vectors = 0;
		snprintf(name, sizeof(name), "p%zu__vector_store.json", k);
		import_ok(name, text);
		b = export(name);
		cr_assert_str_eq(a, b, "%zu vectors", ns[k]);
		snprintf(coll, sizeof(coll), "vector_store/p%zu", k);
		cr_assert_eq(engine_count(store_engine(st), coll),
			     ns[k] - ns[k] / 7, "%zu vectors", ns[k]);
		free(a);
		free(b);
		free(text);
	}
}

Test(persist, vectors_refused_on_two_threads_as_serially)
{
	static const char *const odd[] = {
		"[1, \"x\", 2]",
		"[1e39, 1, 1]",
		"[NaN, 1e39, 1]",
		"[]",
		"[1, 2]",
		"[1, 2, 3, 4]",
		"{}",
		"\"s\"",
		"[1, [2], 3]",
		"[\"]\", 1, 2]",
		"[\"]\"]]]",
		"[1, 2, 3]]",
		"[1,, 2, 3]",
		"[1, 2, 3,]",
		"[1 2, 3]",
		"[01, 2, 3]",
		"[1, 2, 3] \"x\"",
		"[1, 2, 3] : 1",
		"\"\": [1, 2, 3]",
		"\"k\" [1, 2, 3]",
		"\"k\": [1, 2, 3",
		"\"k\": [1, 2, 3}",
		"\"k\": [1, 2, 3], }",
	};
	static const size_t at[] = { 0,	  1,   126, 127, 128,
				     129, 255, 256, 257, 299 };
	const char *tail = ", \"text_id_to_ref_doc_id\": {}, "
			   "\"metadata_dict\": {}}";
	char want[1024];
	size_t i, j;
	int rc1, rc2;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		for (j = 0; j < sizeof(at) / sizeof(at[0]); j++) {
			/* a later refusal too: the first must win */
			char *text = vec_text(300, at[j], odd[i],
					      at[j] < 200 ? "" : tail);

			persist_import_serial_vectors = 1;
			rc1 = import_text("r__vector_store.json", text);
			snprintf(want, sizeof(want), "%s", store_last_error());
			persist_import_serial_vectors = 0;
			rc2 = import_text("r__vector_store.json", text);
			cr_assert_lt(rc1, 0, "%s at %zu", odd[i], at[j]);
			cr_assert_eq(rc1, rc2, "%s at %zu", odd[i], at[j]);
			cr_assert_str_eq(want, store_last_error(), "%s at %zu",
					 odd[i], at[j]);
			cr_assert_eq(engine_count(store_engine(st),
						  "vector_store/r"),
				     0);
			free(text);
		}
	}
}
