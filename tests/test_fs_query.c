/* test_fs_query.c - query/ requests: path options, JSON, runs on a store. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "backends/backend.h"
#include "core/store.h"
#include "fs/fs_query.h"

static struct backend *be;
static struct store *st;
static char err[512];

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

TestSuite(fs_query, .init = setup, .fini = teardown);

/* A path's option segments: SEGS("k=5", "mode=hybrid") expands to (segs, n). */
#define SEGS(...)                                               \
	((const char *const[]){ __VA_ARGS__ }),                 \
		(sizeof((const char *const[]){ __VA_ARGS__ }) / \
		 sizeof(const char *))

static void put_doc(const char *id, const char *text, const char *meta)
{
	struct store_doc d = { .id = id,
			       .data = text,
			       .len = strlen(text),
			       .user_meta = meta,
			       .mtime = 1700000000 };
	int r = -1;

	cr_assert_eq(store_docs_put(st, &d, 1, &r), 0, "%s",
		     store_last_error());
	cr_assert_eq(r, STORE_INDEXED);
}

/* A node with a chosen id and text, and its vector v in namespace ns. */
static void put_node(const char *id, const char *text, const char *ns,
		     const float *v, uint32_t dim)
{
	char json[512];

	snprintf(json, sizeof(json), "{\"id_\": \"%s\", \"text\": \"%s\"}", id,
		 text);
	cr_assert_eq(store_node_put(st, json, strlen(json)), 0, "%s",
		     store_last_error());
	cr_assert_eq(store_vec_put(st, ns, id, v, dim), 0, "%s",
		     store_last_error());
}

/* The id of the only node of a short document. */
static void node_of(const char *doc, char *out, size_t size)
{
	json_t *j, *ids;
	char *text;
	size_t len;

	cr_assert_eq(
		store_kv_get(st, "docstore/ref_doc_info", doc, &text, &len), 0);
	j = json_loadb(text, len, 0, NULL);
	ids = json_object_get(j, "node_ids");
	cr_assert_eq(json_array_size(ids), 1);
	snprintf(out, size, "%s", json_string_value(json_array_get(ids, 0)));
	json_decref(j);
	free(text);
}

/* Runs r (freed here) and returns the raw output; asserts success. */
static char *run_raw(struct fs_qreq *r, size_t *len)
{
	char *out = NULL;
	int rc = fs_qreq_run(st, r, &out, len, err, sizeof(err));

	fs_qreq_free(r);
	cr_assert_eq(rc, 0, "run: %d %s", rc, err);
	cr_assert_not_null(out);
	cr_assert_eq(strlen(out), *len);
	return out;
}

static json_t *run_req(struct fs_qreq *r)
{
	size_t len;
	char *out = run_raw(r, &len);
	json_t *j;

	cr_assert_gt(len, 0);
	cr_assert_eq(out[len - 1], '\n', "result must end in a newline");
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "not JSON: %s", out);
	free(out);
	return j;
}

static json_t *run_path(const char *const *segs, size_t n, const char *text)
{
	struct fs_qreq *r;
	int rc = fs_qreq_from_path(segs, n, text, &r, err, sizeof(err));

	cr_assert_eq(rc, 0, "path: %d %s", rc, err);
	return run_req(r);
}

static json_t *run_json(const char *json)
{
	struct fs_qreq *r;
	int rc = fs_qreq_from_json(json, strlen(json), &r, err, sizeof(err));

	cr_assert_eq(rc, 0, "json: %d %s (%s)", rc, err, json);
	return run_req(r);
}

/* Copies field ("node_id" or "ref_doc_id") of every hit; returns the count. */
static size_t hit_fields(const json_t *res, const char *field, char out[][64],
			 size_t max)
{
	const json_t *nodes = json_object_get(res, "nodes");
	size_t i;

	cr_assert(json_is_array(nodes));
	cr_assert_leq(json_array_size(nodes), max);
	for (i = 0; i < json_array_size(nodes); i++) {
		const char *v = json_string_value(
			json_object_get(json_array_get(nodes, i), field));

		snprintf(out[i], 64, "%s", v ? v : "(null)");
	}
	return json_array_size(nodes);
}

static double hit_score(const json_t *res, size_t i)
{
	const json_t *h = json_array_get(json_object_get(res, "nodes"), i);

	cr_assert_not_null(h, "no hit %zu", i);
	return json_number_value(json_object_get(h, "score"));
}

static const char *res_mode(const json_t *res)
{
	return json_string_value(json_object_get(res, "mode"));
}

static int expect_path_error(const char *const *segs, size_t n,
			     const char *text)
{
	struct fs_qreq *r = (struct fs_qreq *)&r;
	int rc;

	err[0] = '\0';
	rc = fs_qreq_from_path(segs, n, text, &r, err, sizeof(err));
	cr_assert_null(r, "a failed parse leaves *out NULL");
	cr_assert_neq(err[0], '\0', "a failed parse gives a reason");
	cr_assert_null(strchr(err, '\n'), "the reason is one line: %s", err);
	return rc;
}

static int expect_json_error(const char *json)
{
	struct fs_qreq *r = (struct fs_qreq *)&r;
	int rc;

	err[0] = '\0';
	rc = fs_qreq_from_json(json, strlen(json), &r, err, sizeof(err));
	cr_assert_null(r, "a failed parse leaves *out NULL (%s)", json);
	cr_assert_neq(err[0], '\0', "no reason for %s", json);
	cr_assert_null(strchr(err, '\n'), "the reason is one line: %s", err);
	return rc;
}

static double cosine3(const float *a, const float *b)
{
	double d = 0, na = 0, nb = 0;
	int i;

	for (i = 0; i < 3; i++) {
		d += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	return d / (sqrt(na) * sqrt(nb));
}

/* Three apple documents and one about cherries, with metadata. */
static void put_orchard(void)
{
	put_doc("a.txt", "Apples grow on old trees in the orchard.",
		"{\"author\": \"alice\", \"year\": 1999}");
	put_doc("b.txt", "Apple pie needs apples and butter.",
		"{\"author\": \"bob\", \"year\": 2021}");
	put_doc("c.txt", "Green apples are sour apples.",
		"{\"author\": \"alice\", \"year\": 2022}");
	put_doc("d.txt", "Cherries are red and sweet.",
		"{\"author\": \"carol\", \"year\": 2023}");
}

/* --- fs_query_is_option --------------------------------------------------- */

Test(fs_query, is_option_only_for_lowercase_name_then_equals)
{
	cr_assert_eq(fs_query_is_option("k=5"), 1);
	cr_assert_eq(fs_query_is_option("where=year>=2020"), 1);
	cr_assert_eq(fs_query_is_option("mmr_threshold=0.3"), 1);
	cr_assert_eq(fs_query_is_option("kk="), 1, "unknown names count");
	cr_assert_eq(fs_query_is_option("2+2=4"), 0);
	cr_assert_eq(fs_query_is_option("is x = y"), 0);
	cr_assert_eq(fs_query_is_option("x =y"), 0);
	cr_assert_eq(fs_query_is_option("E=mc2"), 0);
	cr_assert_eq(fs_query_is_option("=5"), 0);
	cr_assert_eq(fs_query_is_option("how do apples grow"), 0);
	cr_assert_eq(fs_query_is_option(""), 0);
	cr_assert_eq(fs_query_is_option(NULL), 0);
}

Test(fs_query, text_with_equals_sign_is_searched_as_text)
{
	const char *text = "why apples = fruit";
	json_t *res;
	char ids[4][64];

	put_orchard();
	cr_assert_eq(fs_query_is_option(text), 0);
	res = run_path(SEGS("k=1"), text);
	cr_assert_str_eq(json_string_value(json_object_get(res, "query_str")),
			 text);
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 4), 1);
	cr_assert_neq(strcmp(ids[0], "d.txt"), 0);
	json_decref(res);
}

/* --- path options --------------------------------------------------------- */

Test(fs_query, path_keyword_query_finds_the_right_document)
{
	json_t *res;
	char ids[4][64];

	put_orchard();
	res = run_path(NULL, 0, "red cherries");
	cr_assert_str_eq(res_mode(res), "keyword");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 4), 1);
	cr_assert_str_eq(ids[0], "d.txt");
	json_decref(res);
}

Test(fs_query, path_accepts_every_option_at_once)
{
	struct fs_qreq *r;
	char *out;
	size_t len;

	put_orchard();
	cr_assert_eq(
		fs_qreq_from_path(SEGS("k=3", "mode=hybrid", "alpha=0.25",
				       "ns=default", "doc=a.txt", "doc=c.txt",
				       "where=year>=1990",
				       "where=author==alice", "format=text",
				       "mmr_threshold=0.3", "exact=1", "ef=64"),
				  "apples", &r, err, sizeof(err)),
		0, "%s", err);
	out = run_raw(r, &len);
	/* format=text took effect, and only alice's documents are left */
	cr_assert_eq(strncmp(out, "1. ", 3), 0, "%s", out);
	cr_assert_null(strstr(out, "(b.txt)"), "%s", out);
	cr_assert_null(strstr(out, "(d.txt)"), "%s", out);
	cr_assert_null(strchr(out, '{'), "%s", out);
	free(out);
}

Test(fs_query, k_option_sets_similarity_top_k)
{
	json_t *res;
	char ids[8][64];

	put_orchard();
	res = run_path(NULL, 0, "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 2,
		     "default k is 2");
	json_decref(res);
	res = run_path(SEGS("k=3"), "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 3);
	cr_assert_eq(
		json_integer_value(json_object_get(res, "similarity_top_k")),
		3);
	json_decref(res);
	res = run_path(SEGS("k=1"), "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 1);
	json_decref(res);
	res = run_path(SEGS("k=10000"), "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 3,
		     "only three documents mention apples");
	json_decref(res);
}

Test(fs_query, mode_option_selects_the_retriever)
{
	static const struct {
		const char *seg, *mode;
	} cases[] = {
		{ "mode=keyword", "keyword" },
		{ "mode=default", "keyword" },
		{ "mode=sparse", "keyword" },
		{ "mode=text_search", "keyword" },
		{ "mode=vector", "vector" },
		{ "mode=hybrid", "hybrid" },
		{ "mode=mmr", "mmr" },
	};
	size_t i;

	put_orchard();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *res = run_path(SEGS(cases[i].seg), "apples");
		char ids[4][64];

		cr_assert_str_eq(res_mode(res), cases[i].mode, "%s",
				 cases[i].seg);
		cr_assert_gt(hit_fields(res, "ref_doc_id", ids, 4), 0, "%s",
			     cases[i].seg);
		json_decref(res);
	}
}

Test(fs_query, vector_mode_finds_text_by_builtin_embedding)
{
	json_t *res;
	char ids[4][64];

	put_orchard();
	res = run_path(SEGS("mode=vector", "k=1"), "sweet red cherries");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 4), 1);
	cr_assert_str_eq(ids[0], "d.txt");
	json_decref(res);
}

/*
 * Hybrid fusion min-max normalises each side: a node the keyword side
 * ranks last (normalised 0) scores alpha times its normalised vector score,
 * so its score is 0 at alpha=0 and scales linearly with alpha.
 */
Test(fs_query, alpha_option_weights_the_vector_side_of_hybrid)
{
	double s[3];
	const char *alphas[] = { "alpha=0", "alpha=0.5", "alpha=1" };
	char ids[4][64], last[3][64];
	size_t i, n;

	put_doc("x.txt", "apple apple apple apple", NULL);
	put_doc("y.txt", "apple banana kiwi mango papaya guava lime", NULL);
	put_doc("z.txt", "cherry", NULL);
	for (i = 0; i < 3; i++) {
		json_t *res = run_path(SEGS("mode=hybrid", "k=3", alphas[i]),
				       "apple");

		n = hit_fields(res, "ref_doc_id", ids, 4);
		cr_assert_eq(n, 3, "%s", alphas[i]);
		/* y.txt: keyword side's last, so 0 there */
		for (n = 0; n < 3 && strcmp(ids[n], "y.txt"); n++)
			;
		cr_assert_lt(n, 3);
		s[i] = hit_score(res, n);
		snprintf(last[i], 64, "%s", ids[0]);
		json_decref(res);
	}
	cr_assert_float_eq(s[0], 0.0, 1e-12);
	cr_assert_gt(s[2], 0.0);
	cr_assert_float_eq(s[1], s[2] / 2, 1e-9);
}

Test(fs_query, ns_option_chooses_the_vector_namespace)
{
	static const float v[3] = { 1, 0, 0 };
	struct fs_qreq *r;
	char *out = NULL;
	size_t len;

	put_node("n1", "one", "image", v, 3);
	/* text has no 3-dim embedding: the image namespace needs a vector */
	cr_assert_eq(fs_qreq_from_path(SEGS("ns=image", "mode=vector"), "one",
				       &r, err, sizeof(err)),
		     0);
	cr_assert_eq(fs_qreq_run(st, r, &out, &len, err, sizeof(err)), -EINVAL);
	cr_assert_null(out);
	cr_assert_not_null(strstr(err, "image"), "%s", err);
	cr_assert_not_null(strstr(err, "query_embedding"), "%s", err);
	fs_qreq_free(r);
	/* the default namespace holds built-in vectors: it works there */
	json_decref(run_path(SEGS("mode=vector"), "one"));
}

Test(fs_query, doc_options_restrict_to_any_of_those_documents)
{
	json_t *res;
	char ids[8][64];
	size_t n, i;

	put_orchard();
	res = run_path(SEGS("doc=a.txt", "k=10", "doc=c.txt"), "apples");
	n = hit_fields(res, "ref_doc_id", ids, 8);
	cr_assert_eq(n, 2);
	for (i = 0; i < n; i++)
		cr_assert(strcmp(ids[i], "a.txt") == 0 ||
				  strcmp(ids[i], "c.txt") == 0,
			  "%s", ids[i]);
	json_decref(res);
	res = run_path(SEGS("doc=d.txt"), "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 0);
	json_decref(res);
}

Test(fs_query, where_options_and_together)
{
	json_t *res;
	char ids[8][64];

	put_orchard();
	res = run_path(SEGS("k=10", "where=author==alice"), "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 2);
	json_decref(res);
	res = run_path(SEGS("where=author==alice", "k=10", "where=year>=2000"),
		       "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 1);
	cr_assert_str_eq(ids[0], "c.txt");
	json_decref(res);
	res = run_path(SEGS("where=year~lt~2000", "where=author~in~bob,carol"),
		       "apples");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 0);
	json_decref(res);
}

Test(fs_query, format_text_is_one_block_per_hit)
{
	static const float vb[3] = { 0.6f, 0.8f, 0 }, va[3] = { 1, 0, 0 };
	struct fs_qreq *r;
	char node[64], want[256], *out;
	const char *j;
	size_t len;

	put_doc("k.txt", "Kites fly in wind.", NULL);
	node_of("k.txt", node, sizeof(node));
	cr_assert_eq(fs_qreq_from_path(SEGS("format=text"), "kites", &r, err,
				       sizeof(err)),
		     0);
	out = run_raw(r, &len);
	snprintf(want, sizeof(want),
		 "1. %.4f %s (k.txt)\nKites fly in wind.\n\n", atof(out + 3),
		 node);
	cr_assert_str_eq(out, want);
	cr_assert_gt(atof(out + 3), 0);
	free(out);

	/* nodes without a ref doc have no "(...)"; scores have 4 decimals */
	put_node("a", "alpha", "t", va, 3);
	put_node("b", "bravo", "t", vb, 3);
	j = "{\"query_embedding\": [1, 1, 0], \"ns\": \"t\", \"format\": "
	    "\"text\", \"similarity_top_k\": 5}";
	cr_assert_eq(fs_qreq_from_json(j, strlen(j), &r, err, sizeof(err)), 0,
		     "%s", err);
	out = run_raw(r, &len);
	cr_assert_str_eq(out, "1. 0.9899 b\nbravo\n\n2. 0.7071 a\nalpha\n\n");
	free(out);

	/* no hits: empty output */
	cr_assert_eq(fs_qreq_from_path(SEGS("format=text"), "zeppelins", &r,
				       err, sizeof(err)),
		     0);
	out = run_raw(r, &len);
	cr_assert_eq(len, 0);
	free(out);
}

Test(fs_query, mmr_threshold_option_one_is_plain_relevance)
{
	json_t *vec, *mmr;
	char vi[4][64], mi[4][64];
	size_t n, i;

	put_orchard();
	vec = run_path(SEGS("mode=vector", "k=3"), "green apples");
	mmr = run_path(SEGS("mode=mmr", "k=3", "mmr_threshold=1"),
		       "green apples");
	n = hit_fields(vec, "node_id", vi, 4);
	cr_assert_eq(hit_fields(mmr, "node_id", mi, 4), n);
	cr_assert_eq(n, 3);
	for (i = 0; i < n; i++) {
		cr_assert_str_eq(vi[i], mi[i]);
		cr_assert_float_eq(hit_score(vec, i), hit_score(mmr, i), 1e-6);
	}
	json_decref(vec);
	json_decref(mmr);
	/* the default lambda halves the first pick's score */
	mmr = run_path(SEGS("mode=mmr", "k=3"), "green apples");
	vec = run_path(SEGS("mode=vector", "k=1"), "green apples");
	cr_assert_float_eq(hit_score(mmr, 0), hit_score(vec, 0) / 2, 1e-6);
	json_decref(vec);
	json_decref(mmr);
}

Test(fs_query, exact_and_ef_are_accepted_and_change_nothing)
{
	json_t *a, *b;
	char *sa, *sb;

	put_orchard();
	a = run_path(SEGS("k=3"), "apples");
	b = run_path(SEGS("exact=0", "k=3", "ef=16"), "apples");
	sa = json_dumps(a, JSON_SORT_KEYS);
	sb = json_dumps(b, JSON_SORT_KEYS);
	cr_assert_str_eq(sa, sb);
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
	json_decref(run_path(SEGS("exact=1", "ef=2147483647"), "apples"));
	cr_assert_eq(expect_path_error(SEGS("ef=2147483648"), "apples"),
		     -EINVAL);
}

static uint64_t ann_searches(void)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.ann.searches;
}

Test(fs_query, exact_reaches_the_store)
{
	struct store_opts o;
	uint64_t n0;

	/* a graph from 3 vectors on, so that the orchard gets one */
	store_close(st);
	store_opts_init(&o);
	o.ann_threshold = 3;
	cr_assert_eq(store_open(be, &o, &st), 0, "%s", store_last_error());
	put_orchard();
	store_wait_index(st);
	n0 = ann_searches();
	json_decref(run_path(SEGS("mode=vector", "k=2", "ef=8"), "apples"));
	cr_assert_eq(ann_searches(), n0 + 1);
	json_decref(run_path(SEGS("mode=vector", "exact=1"), "apples"));
	cr_assert_eq(ann_searches(), n0 + 1);
	json_decref(run_json("{\"query_str\": \"apples\", \"mode\": "
			     "\"vector\", \"exact\": true}"));
	cr_assert_eq(ann_searches(), n0 + 1);
	json_decref(run_json("{\"query_str\": \"apples\", \"mode\": "
			     "\"vector\", \"exact\": false, \"ef\": 4}"));
	cr_assert_eq(ann_searches(), n0 + 2);
}

Test(fs_query, unknown_option_is_enoent_with_reason)
{
	cr_assert_eq(expect_path_error(SEGS("k=2", "kk=5"), "apples"), -ENOENT);
	cr_assert_not_null(strstr(err, "unknown query option 'kk'"), "%s", err);
	cr_assert_not_null(strstr(err, "known: k, mode, alpha, ns, doc, where, "
				       "format, mmr_threshold, exact, ef"),
			   "%s", err);
	cr_assert_eq(expect_path_error(SEGS("similarity_top_k=5"), NULL),
		     -ENOENT);
	cr_assert_not_null(strstr(err, "'similarity_top_k'"), "%s", err);
}

Test(fs_query, bad_option_values_are_einval_with_reason)
{
	static const struct {
		const char *seg, *needle;
	} cases[] = {
		{ "k=0", "k=0" },
		{ "k=10001", "1 to 10000" },
		{ "k=abc", "k=abc" },
		{ "k=-1", "k=-1" },
		{ "k=+5", "k=+5" },
		{ "k=1.5", "k=1.5" },
		{ "k= 5", "k= 5" },
		{ "k=", "k=" },
		{ "k=99999999999999999999999", "k=9999" },
		{ "mode=fast", "unknown mode 'fast'" },
		{ "mode=svm", "not implement" },
		{ "mode=Vector", "unknown mode" },
		{ "alpha=2", "alpha=2" },
		{ "alpha=-0.1", "alpha=-0.1" },
		{ "alpha=nan", "alpha=nan" },
		{ "alpha=inf", "alpha" },
		{ "alpha=0x1p-1", "alpha" },
		{ "alpha=", "alpha" },
		{ "alpha=0.5.5", "alpha" },
		{ "ns=", "ns must be" },
		{ "doc=", "doc= needs" },
		{ "where=year", "where" },
		{ "where=", "where" },
		{ "where=year~between~1", "where" },
		{ "format=xml", "format must be json or text" },
		{ "format=", "format" },
		{ "mmr_threshold=1.5", "mmr_threshold" },
		{ "mmr_threshold=-1", "mmr_threshold" },
		{ "exact=yes", "exact must be 0 or 1" },
		{ "exact=2", "exact" },
		{ "ef=0", "ef must be a positive integer" },
		{ "ef=-3", "ef" },
		{ "ef=x", "ef" },
	};
	char ns[260];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(expect_path_error(SEGS(cases[i].seg), "apples"),
			     -EINVAL, "%s: %s", cases[i].seg, err);
		cr_assert_not_null(strstr(err, cases[i].needle),
				   "%s: reason '%s'", cases[i].seg, err);
	}
	memset(ns, 'n', sizeof(ns));
	memcpy(ns, "ns=", 3);
	ns[3 + 201] = '\0';
	cr_assert_eq(expect_path_error(SEGS(ns), "apples"), -EINVAL);
	ns[3 + 200] = '\0';
	json_decref(run_path(SEGS(ns), "apples"));
	cr_assert_eq(expect_path_error(SEGS("ns=\xff\xfe"), "apples"), -EINVAL);
}

Test(fs_query, repeating_a_single_valued_option_is_einval)
{
	cr_assert_eq(expect_path_error(SEGS("k=1", "k=2"), "apples"), -EINVAL);
	cr_assert_not_null(strstr(err, "'k' given twice"), "%s", err);
	cr_assert_eq(
		expect_path_error(SEGS("mode=vector", "mode=vector"), NULL),
		-EINVAL);
}

Test(fs_query, options_only_parse_for_a_directory)
{
	struct fs_qreq *r = NULL;
	char *out = NULL;
	size_t len;

	cr_assert_eq(fs_qreq_from_path(
			     SEGS("k=5", "mode=hybrid", "where=year>=2000"),
			     NULL, &r, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_not_null(r);
	/* there is nothing to search for yet: running says so */
	cr_assert_eq(fs_qreq_run(st, r, &out, &len, err, sizeof(err)), -EINVAL);
	cr_assert_null(out);
	cr_assert_not_null(strstr(err, "query text"), "%s", err);
	fs_qreq_free(r);
	cr_assert_eq(fs_qreq_from_path(NULL, 0, NULL, &r, err, sizeof(err)), 0);
	cr_assert_not_null(r);
	fs_qreq_free(r);
	/* a bad option in a directory name is refused all the same */
	cr_assert_eq(expect_path_error(SEGS("k=5", "kk=1"), NULL), -ENOENT);
}

Test(fs_query, non_option_segment_and_empty_text_are_einval)
{
	cr_assert_eq(expect_path_error(SEGS("k=5", "apples"), "pears"),
		     -EINVAL);
	cr_assert_not_null(strstr(err, "'apples' is not a query option"), "%s",
			   err);
	cr_assert_eq(expect_path_error(SEGS("k=5"), ""), -EINVAL);
	cr_assert_not_null(strstr(err, "empty query text"), "%s", err);
}

Test(fs_query, free_accepts_null)
{
	struct fs_qreq *r = NULL;

	fs_qreq_free(NULL);
	cr_assert_eq(fs_qreq_from_path(SEGS("doc=a", "where=x==1"), "t", &r,
				       err, sizeof(err)),
		     0);
	cr_assert_not_null(r);
	fs_qreq_free(r);
}

/* --- JSON requests --------------------------------------------------------- */

Test(fs_query, json_accepts_every_field)
{
	static const float v[3] = { 1, 0, 0 };
	const char *j;
	char ids[4][64];
	json_t *res;

	put_node("a", "alpha apples", "t", v, 3);
	put_node("b", "bravo apples", "t", v, 3);
	put_node("c", "charlie apples", "t", v, 3);
	j = "{\"query_str\": \"apples\", \"query_embedding\": [1, 0.5, 0],"
	    " \"similarity_top_k\": 3, \"node_ids\": [\"a\", \"b\"],"
	    " \"doc_ids\": [], \"filters\": {\"filters\": [], "
	    "\"condition\": \"and\"}, \"mode\": \"vector\", \"alpha\": 0.3,"
	    " \"mmr_threshold\": 0.7, \"exact\": true, \"ef\": 40,"
	    " \"ns\": \"t\", \"format\": \"json\"}";
	res = run_json(j);
	cr_assert_str_eq(res_mode(res), "vector");
	cr_assert_eq(hit_fields(res, "node_id", ids, 4), 2);
	/* equal scores: the larger id first, as SimpleVectorStore */
	cr_assert_str_eq(ids[0], "b");
	cr_assert_str_eq(ids[1], "a");
	cr_assert_float_eq(hit_score(res, 0), 1 / sqrt(1.25), 1e-6);
	json_decref(res);
}

Test(fs_query, json_llamaindex_null_fields_mean_not_set)
{
	const char *j;
	char ids[4][64];
	json_t *res;

	put_orchard();
	/* dataclasses.asdict(VectorStoreQuery(query_str=..., ...)) */
	j = "{\"query_embedding\": null, \"similarity_top_k\": 1,"
	    " \"doc_ids\": null, \"node_ids\": null, \"query_str\": "
	    "\"cherries\", \"output_fields\": null, \"embedding_field\": "
	    "null, \"mode\": \"default\", \"alpha\": null, \"filters\": null,"
	    " \"mmr_threshold\": null, \"sparse_top_k\": null,"
	    " \"hybrid_top_k\": null, \"exact\": null, \"ef\": null,"
	    " \"ns\": null, \"format\": null}";
	res = run_json(j);
	cr_assert_str_eq(res_mode(res), "keyword",
			 "default without an embedding is BM25");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 4), 1);
	cr_assert_str_eq(ids[0], "d.txt");
	json_decref(res);
}

Test(fs_query, json_unused_llamaindex_fields_with_values_are_einval)
{
	static const char *const cases[] = {
		"{\"query_str\": \"a\", \"sparse_top_k\": 5}",
		"{\"query_str\": \"a\", \"hybrid_top_k\": 5}",
		"{\"query_str\": \"a\", \"output_fields\": [\"text\"]}",
		"{\"query_str\": \"a\", \"embedding_field\": \"emb\"}",
	};
	static const char *const names[] = { "sparse_top_k", "hybrid_top_k",
					     "output_fields",
					     "embedding_field" };
	size_t i;

	for (i = 0; i < 4; i++) {
		cr_assert_eq(expect_json_error(cases[i]), -EINVAL, "%s",
			     cases[i]);
		cr_assert_not_null(strstr(err, names[i]), "%s", err);
		cr_assert_not_null(strstr(err, "does not support"), "%s", err);
	}
}

Test(fs_query, json_unknown_field_is_einval_with_reason)
{
	cr_assert_eq(expect_json_error("{\"query_str\": \"a\", "
				       "\"similarity_topk\": 5}"),
		     -EINVAL);
	cr_assert_not_null(strstr(err, "unknown field 'similarity_topk'"), "%s",
			   err);
	cr_assert_eq(expect_json_error("{\"query_str\": \"a\", \"k\": null}"),
		     -EINVAL, "unknown fields are refused even when null");
}

Test(fs_query, json_wrong_types_are_einval)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{\"query_str\": 5}", "query_str must be a string" },
		{ "{\"query_embedding\": \"1,2\"}", "query_embedding must be" },
		{ "{\"query_embedding\": [1, \"2\"]}", "query_embedding[1]" },
		{ "{\"query_embedding\": [1, null]}", "query_embedding[1]" },
		{ "{\"query_embedding\": []}", "query_embedding is empty" },
		{ "{\"query_embedding\": [1e39]}", "float32" },
		{ "{\"query_str\": \"a\", \"similarity_top_k\": \"5\"}",
		  "similarity_top_k must be an integer" },
		{ "{\"query_str\": \"a\", \"similarity_top_k\": 5.0}",
		  "similarity_top_k must be an integer" },
		{ "{\"query_str\": \"a\", \"similarity_top_k\": 0}",
		  "similarity_top_k must be from 1" },
		{ "{\"query_str\": \"a\", \"similarity_top_k\": -2}",
		  "similarity_top_k" },
		{ "{\"query_str\": \"a\", \"node_ids\": \"n1\"}",
		  "node_ids must be an array" },
		{ "{\"query_str\": \"a\", \"node_ids\": [1]}", "node_ids[0]" },
		{ "{\"query_str\": \"a\", \"doc_ids\": [\"x\", null]}",
		  "doc_ids[1]" },
		{ "{\"query_str\": \"a\", \"filters\": []}",
		  "filters must be" },
		{ "{\"query_str\": \"a\", \"filters\": {\"filters\": "
		  "[{\"key\": \"x\", \"value\": 1, \"operator\": \"~~\"}]}}",
		  "operator" },
		{ "{\"query_str\": \"a\", \"filters\": {\"filters\": [], "
		  "\"condition\": \"xor\"}}",
		  "filters.condition" },
		{ "{\"query_str\": \"a\", \"mode\": 1}", "mode must be" },
		{ "{\"query_str\": \"a\", \"mode\": \"fast\"}",
		  "unknown mode 'fast'" },
		{ "{\"query_str\": \"a\", \"mode\": \"svm\"}", "svm" },
		{ "{\"query_str\": \"a\", \"alpha\": \"0.5\"}",
		  "alpha must be a number" },
		{ "{\"query_str\": \"a\", \"alpha\": 1.5}",
		  "alpha must be from" },
		{ "{\"query_str\": \"a\", \"mmr_threshold\": -0.5}",
		  "mmr_threshold" },
		{ "{\"query_str\": \"a\", \"exact\": \"yes\"}",
		  "exact must be" },
		{ "{\"query_str\": \"a\", \"exact\": 2}", "exact must be" },
		{ "{\"query_str\": \"a\", \"ef\": 0}", "ef must be from 1" },
		{ "{\"query_str\": \"a\", \"ef\": 1.5}",
		  "ef must be an integer" },
		{ "{\"query_str\": \"a\", \"ns\": 3}", "ns must be a string" },
		{ "{\"query_str\": \"a\", \"ns\": \"a/b\"}", "ns must be 1-" },
		{ "{\"query_str\": \"a\", \"ns\": \"\"}", "ns must be 1-" },
		{ "{\"query_str\": \"a\", \"format\": \"csv\"}",
		  "format must be json or text" },
		{ "{\"query_str\": \"a\", \"format\": true}",
		  "format must be" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(expect_json_error(cases[i].json), -EINVAL, "%s",
			     cases[i].json);
		cr_assert_not_null(strstr(err, cases[i].needle),
				   "%s: reason '%s'", cases[i].json, err);
	}
}

Test(fs_query, json_malformed_is_einval)
{
	static const char *const cases[] = {
		"",
		"{",
		"{\"query_str\": \"a\",}",
		"{\"query_str\": \"a\"} trailing",
		"[\"query_str\"]",
		"\"apples\"",
		"{\"query_str\": \"a\", \"query_str\": \"b\"}",
		"{\"query_str\": \"a\\u0000b\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(expect_json_error(cases[i]), -EINVAL, "%s",
			     cases[i]);
	cr_assert_eq(expect_json_error("{"), -EINVAL);
	cr_assert_not_null(strstr(err, "line 1"), "%s", err);
}

Test(fs_query, json_huge_k_is_einval)
{
	const char *ok = "{\"query_str\": \"a\", \"similarity_top_k\": 10000}";
	struct fs_qreq *r;

	cr_assert_eq(expect_json_error("{\"query_str\": \"a\", "
				       "\"similarity_top_k\": 10001}"),
		     -EINVAL);
	cr_assert_not_null(strstr(err, "10000"), "%s", err);
	cr_assert_eq(expect_json_error("{\"query_str\": \"a\", "
				       "\"similarity_top_k\": 1e30}"),
		     -EINVAL);
	cr_assert_eq(expect_json_error("{\"query_str\": \"a\", "
				       "\"similarity_top_k\": "
				       "99999999999999999999999}"),
		     -EINVAL);
	cr_assert_eq(expect_json_error("{\"query_str\": \"a\", "
				       "\"similarity_top_k\": "
				       "9223372036854775807}"),
		     -EINVAL);
	cr_assert_eq(fs_qreq_from_json(ok, strlen(ok), &r, err, sizeof(err)), 0,
		     "%s", err);
	fs_qreq_free(r);
}

Test(fs_query, json_needs_query_str_or_query_embedding)
{
	cr_assert_eq(expect_json_error("{}"), -EINVAL);
	cr_assert_not_null(strstr(err, "query_str or query_embedding"), "%s",
			   err);
	cr_assert_eq(expect_json_error("{\"query_str\": null, "
				       "\"similarity_top_k\": 3}"),
		     -EINVAL);
}

Test(fs_query, json_length_is_honoured)
{
	const char *j = "{\"query_str\": \"cherries\"}garbage";
	struct fs_qreq *r;
	char ids[4][64];
	json_t *res;

	put_orchard();
	cr_assert_eq(fs_qreq_from_json(j, strlen(j) - 7, &r, err, sizeof(err)),
		     0, "%s", err);
	res = run_req(r);
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 4), 1);
	cr_assert_str_eq(ids[0], "d.txt");
	json_decref(res);
}

Test(fs_query, json_mode_names_follow_llamaindex)
{
	static const struct {
		const char *mode, *want;
	} cases[] = {
		{ "default", "keyword" },
		{ "sparse", "keyword" },
		{ "text_search", "keyword" },
		{ "keyword", "keyword" },
		{ "vector", "vector" },
		{ "hybrid", "hybrid" },
		{ "mmr", "mmr" },
	};
	char j[128];
	size_t i;

	put_orchard();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *res;

		snprintf(j, sizeof(j),
			 "{\"query_str\": \"apples\", \"mode\": \"%s\"}",
			 cases[i].mode);
		res = run_json(j);
		cr_assert_str_eq(res_mode(res), cases[i].want, "%s",
				 cases[i].mode);
		json_decref(res);
	}
}

Test(fs_query, json_nested_and_or_filters_select_nodes)
{
	const char *j;
	char ids[8][64];
	json_t *res;
	size_t n, i;
	int seen_a = 0, seen_b = 0;

	put_orchard();
	/* alice before 2000, or bob from 2020 on: a.txt and b.txt */
	j = "{\"query_str\": \"apples\", \"similarity_top_k\": 10,"
	    " \"filters\": {\"condition\": \"or\", \"filters\": ["
	    "  {\"filters\": [{\"key\": \"author\", \"value\": \"alice\"},"
	    "                 {\"key\": \"year\", \"value\": 2000,"
	    "                  \"operator\": \"<\"}],"
	    "   \"condition\": \"and\"},"
	    "  {\"filters\": [{\"key\": \"author\", \"value\": \"bob\","
	    "                  \"operator\": \"==\"},"
	    "                 {\"key\": \"year\", \"value\": 2020,"
	    "                  \"operator\": \">=\"}],"
	    "   \"condition\": \"and\"}]}}";
	res = run_json(j);
	n = hit_fields(res, "ref_doc_id", ids, 8);
	cr_assert_eq(n, 2);
	for (i = 0; i < n; i++) {
		seen_a += strcmp(ids[i], "a.txt") == 0;
		seen_b += strcmp(ids[i], "b.txt") == 0;
	}
	cr_assert(seen_a == 1 && seen_b == 1);
	json_decref(res);

	/* a plain and-list excludes */
	j = "{\"query_str\": \"apples\", \"similarity_top_k\": 10,"
	    " \"filters\": {\"filters\": [{\"key\": \"author\", \"value\":"
	    " [\"bob\", \"carol\"], \"operator\": \"nin\"}]}}";
	res = run_json(j);
	n = hit_fields(res, "ref_doc_id", ids, 8);
	cr_assert_eq(n, 2);
	for (i = 0; i < n; i++)
		cr_assert(strcmp(ids[i], "b.txt") != 0);
	json_decref(res);
}

Test(fs_query, json_doc_ids_restrict)
{
	const char *j;
	char ids[8][64];
	json_t *res;

	put_orchard();
	j = "{\"query_str\": \"apples\", \"similarity_top_k\": 10,"
	    " \"doc_ids\": [\"b.txt\", \"d.txt\"]}";
	res = run_json(j);
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 1);
	cr_assert_str_eq(ids[0], "b.txt");
	json_decref(res);
	/* [] restricts to nothing, as SimpleVectorStore's `is not None` */
	res = run_json("{\"query_str\": \"apples\", \"doc_ids\": []}");
	cr_assert_eq(hit_fields(res, "ref_doc_id", ids, 8), 0);
	json_decref(res);
}

Test(fs_query, json_node_ids_restrict)
{
	char node[64], j[256], ids[8][64];
	json_t *res;

	put_orchard();
	node_of("c.txt", node, sizeof(node));
	snprintf(j, sizeof(j),
		 "{\"query_str\": \"apples\", \"similarity_top_k\": 10,"
		 " \"node_ids\": [\"%s\", \"no-such-node\"]}",
		 node);
	res = run_json(j);
	cr_assert_eq(hit_fields(res, "node_id", ids, 8), 1);
	cr_assert_str_eq(ids[0], node);
	json_decref(res);
	res = run_json("{\"query_str\": \"apples\", \"node_ids\": []}");
	cr_assert_eq(hit_fields(res, "node_id", ids, 8), 0);
	json_decref(res);
}

/* --- vector, hybrid and MMR runs ----------------------------------------- */

static const float va[3] = { 1, 0, 0 }, vb[3] = { 0.6f, 0.8f, 0 },
		   vc[3] = { 0.6f, 0.8f, 0 }, vd[3] = { 0, 0, 1 };

static void put_abcd(void)
{
	put_node("a", "apple pie", "t", va, 3);
	put_node("b", "apple", "t", vb, 3);
	put_node("c", "banana", "t", vc, 3);
	put_node("d", "cherry", "t", vd, 3);
}

Test(fs_query, vector_query_orders_by_cosine_with_ties_to_larger_id)
{
	static const float q[3] = { 1, 1, 0 };
	static const char *const want[] = { "c", "b", "a", "d" };
	const float *vs[] = { vc, vb, va, vd };
	char ids[8][64];
	json_t *res;
	size_t i;

	put_abcd();
	res = run_json("{\"query_embedding\": [1, 1, 0], \"ns\": \"t\","
		       " \"similarity_top_k\": 10, \"mode\": \"default\"}");
	cr_assert_str_eq(res_mode(res), "vector",
			 "default with an embedding is vector search");
	cr_assert_eq(hit_fields(res, "node_id", ids, 8), 4);
	for (i = 0; i < 4; i++) {
		cr_assert_str_eq(ids[i], want[i], "rank %zu", i + 1);
		cr_assert_float_eq(hit_score(res, i), cosine3(q, vs[i]), 1e-6,
				   "rank %zu", i + 1);
	}
	json_decref(res);
	/* k cuts the tie: the larger id survives */
	res = run_json("{\"query_embedding\": [1, 1, 0], \"ns\": \"t\","
		       " \"similarity_top_k\": 1}");
	cr_assert_eq(hit_fields(res, "node_id", ids, 8), 1);
	cr_assert_str_eq(ids[0], "c");
	json_decref(res);
}

Test(fs_query, vector_query_with_wrong_dimension_fails_with_reason)
{
	const char *j = "{\"query_embedding\": [1, 0], \"ns\": \"t\"}";
	struct fs_qreq *r;
	char *out = NULL;
	size_t len;

	put_abcd();
	cr_assert_eq(fs_qreq_from_json(j, strlen(j), &r, err, sizeof(err)), 0);
	cr_assert_eq(fs_qreq_run(st, r, &out, &len, err, sizeof(err)), -EINVAL);
	cr_assert_null(out);
	cr_assert_not_null(strstr(err, "2 dimensions"), "%s", err);
	fs_qreq_free(r);
}

/*
 * Relative score fusion by hand, k=4 on nodes a..d restricted by node_ids.
 * vector side (query [1,1,0]): b = c = 0.98995, a = 0.70711, d = 0
 *   normalised: b = c = 1, a = 0.70711 / 0.98995, d = 0
 * keyword side ("apple"): a and b, b first (shorter node)
 *   normalised: b = 1, a = 0
 * alpha 0.5: b = 1, c = 0.5, a = 0.35714, d = 0
 */
Test(fs_query, hybrid_fuses_normalised_vector_and_keyword_scores)
{
	static const char *const want[] = { "b", "c", "a", "d" };
	double exp[4];
	char ids[8][64];
	json_t *res;
	size_t i;

	put_abcd();
	exp[0] = 1.0;
	exp[1] = 0.5;
	exp[2] = 0.5 * (M_SQRT1_2 / (1.4 / M_SQRT2));
	exp[3] = 0;
	res = run_json("{\"query_str\": \"apple\", \"query_embedding\": "
		       "[1, 1, 0], \"ns\": \"t\", \"mode\": \"hybrid\","
		       " \"alpha\": 0.5, \"similarity_top_k\": 4,"
		       " \"node_ids\": [\"a\", \"b\", \"c\", \"d\"]}");
	cr_assert_str_eq(res_mode(res), "hybrid");
	cr_assert_eq(hit_fields(res, "node_id", ids, 8), 4);
	for (i = 0; i < 4; i++) {
		cr_assert_str_eq(ids[i], want[i], "rank %zu", i + 1);
		cr_assert_float_eq(hit_score(res, i), exp[i], 1e-6, "rank %zu",
				   i + 1);
	}
	json_decref(res);
}

/*
 * q = x.  a and a2 are near duplicates close to q; b is less relevant but
 * points elsewhere.  Plain top-2 is a, a2.  MMR (lambda 0.5) picks a, then
 * b: 0.5 sim(q,b) - 0.5 sim(b,a) beats 0.5 sim(q,a2) - 0.5 sim(a2,a).
 */
static const float ma[3] = { 0.9f, 0.1f, 0 }, ma2[3] = { 0.9f, 0.12f, 0 },
		   mb[3] = { 0.8f, 0, 0.6f }, mq[3] = { 1, 0, 0 };

static void put_mmr_rows(void)
{
	put_node("a", "first", "m", ma, 3);
	put_node("a2", "first again", "m", ma2, 3);
	put_node("b", "second", "m", mb, 3);
}

Test(fs_query, mmr_picks_a_diverse_second_result)
{
	char ids[4][64];
	json_t *res;
	double s1, s2;

	put_mmr_rows();
	res = run_json("{\"query_embedding\": [1, 0, 0], \"ns\": \"m\","
		       " \"similarity_top_k\": 2, \"mode\": \"vector\"}");
	cr_assert_eq(hit_fields(res, "node_id", ids, 4), 2);
	cr_assert_str_eq(ids[0], "a");
	cr_assert_str_eq(ids[1], "a2");
	json_decref(res);

	res = run_json("{\"query_embedding\": [1, 0, 0], \"ns\": \"m\","
		       " \"similarity_top_k\": 2, \"mode\": \"mmr\"}");
	cr_assert_str_eq(res_mode(res), "mmr");
	cr_assert_eq(hit_fields(res, "node_id", ids, 4), 2);
	cr_assert_str_eq(ids[0], "a");
	cr_assert_str_eq(ids[1], "b");
	/* scores are the MMR scores, as get_top_k_mmr_embeddings reports */
	s1 = 0.5 * cosine3(mq, ma);
	s2 = 0.5 * cosine3(mq, mb) - 0.5 * cosine3(mb, ma);
	cr_assert_float_eq(hit_score(res, 0), s1, 1e-6);
	cr_assert_float_eq(hit_score(res, 1), s2, 1e-6);
	cr_assert_gt(s2, 0.5 * cosine3(mq, ma2) - 0.5 * cosine3(ma2, ma));
	json_decref(res);

	/* lambda 1 ignores novelty: plain relevance order again */
	res = run_json("{\"query_embedding\": [1, 0, 0], \"ns\": \"m\","
		       " \"similarity_top_k\": 2, \"mode\": \"mmr\","
		       " \"mmr_threshold\": 1}");
	cr_assert_eq(hit_fields(res, "node_id", ids, 4), 2);
	cr_assert_str_eq(ids[1], "a2");
	json_decref(res);
}

Test(fs_query, mmr_threshold_zero_is_a_real_lambda)
{
	char ids[4][64];
	json_t *res;

	put_mmr_rows();
	/* lambda 0: relevance counts for nothing, every first score is 0 */
	res = run_json("{\"query_embedding\": [1, 0, 0], \"ns\": \"m\","
		       " \"similarity_top_k\": 3, \"mode\": \"mmr\","
		       " \"mmr_threshold\": 0}");
	cr_assert_eq(hit_fields(res, "node_id", ids, 4), 3);
	cr_assert_float_eq(hit_score(res, 0), 0.0, 1e-12);
	cr_assert_float_eq(hit_score(res, 1), -cosine3(mb, ma), 1e-6);
	cr_assert_str_eq(ids[0], "a", "ties go to the smaller id");
	cr_assert_str_eq(ids[1], "b");
	json_decref(res);
	/* unset is 0.5, not 0 */
	res = run_json("{\"query_embedding\": [1, 0, 0], \"ns\": \"m\","
		       " \"similarity_top_k\": 1, \"mode\": \"mmr\","
		       " \"mmr_threshold\": null}");
	cr_assert_float_eq(hit_score(res, 0), 0.5 * cosine3(mq, ma), 1e-6);
	json_decref(res);
}

Test(fs_query, mmr_respects_restrictions)
{
	char ids[4][64];
	json_t *res;

	put_mmr_rows();
	res = run_json("{\"query_embedding\": [1, 0, 0], \"ns\": \"m\","
		       " \"similarity_top_k\": 3, \"mode\": \"mmr\","
		       " \"node_ids\": [\"a2\", \"b\"]}");
	cr_assert_eq(hit_fields(res, "node_id", ids, 4), 2);
	cr_assert_str_eq(ids[0], "a2");
	cr_assert_str_eq(ids[1], "b");
	json_decref(res);
}

/* --- the result document --------------------------------------------------- */

Test(fs_query, result_json_has_llamaindex_fields)
{
	json_t *res, *node, *meta;
	char want[64];

	put_doc("k.txt", "Kites fly in wind.", "{\"author\": \"kim\"}");
	node_of("k.txt", want, sizeof(want));
	res = run_path(SEGS("k=3"), "kites");
	cr_assert_str_eq(json_string_value(json_object_get(res, "query_str")),
			 "kites");
	node = json_array_get(json_object_get(res, "nodes"), 0);
	cr_assert_not_null(node);
	cr_assert_eq(json_integer_value(json_object_get(node, "rank")), 1);
	cr_assert(json_is_number(json_object_get(node, "score")));
	cr_assert_gt(json_number_value(json_object_get(node, "score")), 0);
	cr_assert_str_eq(json_string_value(json_object_get(node, "node_id")),
			 want);
	cr_assert_str_eq(json_string_value(json_object_get(node, "ref_doc_id")),
			 "k.txt");
	cr_assert_str_eq(json_string_value(json_object_get(node, "text")),
			 "Kites fly in wind.");
	meta = json_object_get(node, "metadata");
	cr_assert(json_is_object(meta));
	cr_assert_str_eq(json_string_value(json_object_get(meta, "author")),
			 "kim");
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(res, "ids"), 0)),
			 want);
	cr_assert_eq(json_array_size(json_object_get(res, "similarities")), 1);
	json_decref(res);
}
