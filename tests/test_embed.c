/* test_embed.c - the embeddings server client and its use by the store. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "backends/backend.h"
#include "core/embed_remote.h"
#include "core/store.h"

/*
 * Each test starts tests/embed_server.py (LODEFS_EMBED_SERVER) on a free
 * port of 127.0.0.1 and stops it by its pid.  Its vectors are bags of
 * words: the sum of a vector is the number of words of the text.
 */
#define DIM 8

static pid_t srv_pid;
static int srv_port;
static char base[64];

static const char *server_script(void)
{
	const char *p = getenv("LODEFS_EMBED_SERVER");

	return p ? p : "tests/embed_server.py";
}

static void srv_start(void)
{
	int fd[2];
	char buf[32] = { 0 };
	ssize_t got = 0, r;

	cr_assert_eq(pipe(fd), 0);
	srv_pid = fork();
	cr_assert(srv_pid >= 0);
	if (srv_pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execl("/usr/bin/python3", "python3", server_script(), "--dim",
		      "8", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (r = read(fd[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += r;
		if (strchr(buf, '\n'))
			break;
	}
	close(fd[0]);
	srv_port = atoi(buf);
	cr_assert(srv_port > 0, "the test server did not start (%s)",
		  server_script());
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", srv_port);
}

static void srv_stop(void)
{
	if (srv_pid > 0) {
		kill(srv_pid, SIGTERM);
		waitpid(srv_pid, NULL, 0);
		srv_pid = 0;
	}
}

static void setup(void)
{
	unsetenv("LODEFS_EMBED_API_KEY");
	unsetenv("OPENAI_API_KEY");
	srv_start();
}

static void teardown(void)
{
	srv_stop();
}

struct buf {
	char *p;
	size_t len;
};

static size_t buf_write(char *d, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->len + sz * n + 1);

	if (!p)
		return 0;
	memcpy(p + b->len, d, sz * n);
	b->p = p;
	b->len += sz * n;
	b->p[b->len] = '\0';
	return sz * n;
}

/* GET (body NULL) or POST body to the server; the answer as JSON. */
static json_t *srv_call(const char *path, const char *body)
{
	char url[128];
	struct buf b = { 0 };
	CURL *c = curl_easy_init();
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	j = json_loads(b.p ? b.p : "", 0, NULL);
	free(b.p);
	cr_assert(j);
	return j;
}

static void srv_control(const char *json)
{
	json_decref(srv_call("/control", json));
}

static long srv_requests(void)
{
	json_t *s = srv_call("/stats", NULL);
	long n = (long)json_integer_value(json_object_get(s, "requests"));

	json_decref(s);
	return n;
}

static struct embed_remote *client(const char *url, int retries,
				   unsigned timeout_ms)
{
	struct embed_remote_opts o = { 0 };
	struct embed_remote *e;
	char err[256];

	o.url = url ? url : base;
	o.model = "test-model";
	o.dim = DIM;
	o.retries = retries;
	o.backoff_ms = 10;
	o.timeout_ms = timeout_ms;
	cr_assert_eq(embed_remote_new(&o, &e, err, sizeof(err)), 0, "%s", err);
	return e;
}

static float vsum(const float *v)
{
	float s = 0;
	int i;

	for (i = 0; i < DIM; i++)
		s += v[i];
	return s;
}

TestSuite(embed, .init = setup, .fini = teardown, .timeout = 60);

Test(embed, vectors_come_back_in_input_order)
{
	static const char *const t[] = { "one two three", "four", "",
					 "five six" };
	size_t lens[4];
	float out[4 * DIM];
	char err[256];
	struct embed_remote *e = client(NULL, 0, 0);
	int i;

	for (i = 0; i < 4; i++)
		lens[i] = strlen(t[i]);
	cr_assert_eq(embed_remote_run(e, t, lens, 4, out, err, sizeof(err)), 0,
		     "%s", err);
	/* the server answers in reverse order: "index" must be used */
	cr_assert_float_eq(vsum(out), 3, 1e-6);
	cr_assert_float_eq(vsum(out + DIM), 1, 1e-6);
	cr_assert_float_eq(vsum(out + 2 * DIM), 0, 1e-6);
	cr_assert_float_eq(vsum(out + 3 * DIM), 2, 1e-6);
	cr_assert_eq(srv_requests(), 1, "four short texts: one request");
	embed_remote_free(e);
}

Test(embed, the_vector_is_the_servers)
{
	const char *t = "Alpha beta alpha";
	size_t len = strlen(t);
	float out[DIM];
	char cmd[512], line[512];
	json_t *want;
	FILE *p;
	struct embed_remote *e = client(NULL, 0, 0);
	int i;

	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, NULL, 0), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s --vec '%s' %d",
		 server_script(), t, DIM);
	p = popen(cmd, "r");
	cr_assert(p && fgets(line, sizeof(line), p));
	pclose(p);
	want = json_loads(line, 0, NULL);
	cr_assert_eq(json_array_size(want), DIM);
	for (i = 0; i < DIM; i++)
		cr_assert_eq(out[i],
			     (float)json_number_value(json_array_get(want, i)));
	json_decref(want);
	json_t *s = srv_call("/stats", NULL);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(s, "models"), 0)),
			 "test-model");
	json_decref(s);
	embed_remote_free(e);
}

Test(embed, batches_respect_the_input_and_byte_caps)
{
	static const char *const t[] = { "a", "b", "c", "d", "e" };
	size_t lens[5] = { 1, 1, 1, 1, 1 };
	struct embed_remote_opts o = { 0 };
	struct embed_remote *e;
	float out[5 * DIM];
	json_t *s;

	o.url = base;
	o.dim = DIM;
	o.retries = 0;
	o.max_inputs = 2;
	cr_assert_eq(embed_remote_new(&o, &e, NULL, 0), 0);
	cr_assert_eq(embed_remote_run(e, t, lens, 5, out, NULL, 0), 0);
	s = srv_call("/stats", NULL);
	cr_assert_eq(json_integer_value(json_object_get(s, "requests")), 3);
	cr_assert_eq(json_integer_value(
			     json_array_get(json_object_get(s, "inputs"), 2)),
		     1, "2 + 2 + 1 inputs");
	json_decref(s);
	embed_remote_free(e);

	o.max_inputs = 0;
	o.max_bytes = 3;
	cr_assert_eq(embed_remote_new(&o, &e, NULL, 0), 0);
	cr_assert_eq(embed_remote_run(e, t, lens, 5, out, NULL, 0), 0);
	cr_assert_eq(srv_requests(), 3 + 2, "3 + 2 bytes");
	for (int i = 0; i < 5; i++)
		cr_assert_float_eq(vsum(out + i * DIM), 1, 1e-6);
	embed_remote_free(e);
}

Test(embed, retries_5xx_429_and_dropped_connections)
{
	const char *t = "x y";
	size_t len = 3;
	float out[DIM];
	char err[256];
	struct embed_remote *e = client(NULL, 4, 0);

	srv_control("{\"fail\": 2, \"status\": 503}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(srv_requests(), 3);
	srv_control("{\"fail\": 1, \"status\": 429, \"retry_after\": 0}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(srv_requests(), 5);
	srv_control("{\"close\": 2}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(srv_requests(), 8);
	cr_assert_float_eq(vsum(out), 2, 1e-6);
	embed_remote_free(e);
}

Test(embed, gives_up_after_the_retries_and_on_4xx)
{
	const char *t = "x";
	size_t len = 1;
	float out[DIM];
	char err[256];
	struct embed_remote *e = client(NULL, 2, 0);

	srv_control("{\"fail\": 10, \"status\": 500}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)),
		     -EIO);
	cr_assert_eq(srv_requests(), 3, "one attempt and two retries");
	cr_assert(strstr(err, "HTTP 500") && strstr(err, "3 attempts"), "%s",
		  err);
	srv_control("{\"fail\": 1, \"status\": 400}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)),
		     -EIO);
	cr_assert_eq(srv_requests(), 4, "a 400 is not retried");
	cr_assert(strstr(err, "HTTP 400"), "%s", err);
	embed_remote_free(e);
}

Test(embed, refuses_a_wrong_dimension)
{
	const char *t = "x";
	size_t len = 1;
	float out[DIM];
	char err[256];
	struct embed_remote *e = client(NULL, 2, 0);

	srv_control("{\"dim\": 4}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)),
		     -EIO);
	cr_assert(strstr(err, "4 dimensions; embed_dim is 8"), "%s", err);
	cr_assert_eq(srv_requests(), 1, "a wrong answer is not retried");
	embed_remote_free(e);
}

Test(embed, times_out)
{
	const char *t = "x";
	size_t len = 1;
	float out[DIM];
	char err[256];
	struct embed_remote *e = client(NULL, 1, 300);

	srv_control("{\"delay\": 2}");
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)),
		     -EIO);
	cr_assert(strstr(err, "imeout") || strstr(err, "timed out"), "%s", err);
	embed_remote_free(e);
}

Test(embed, a_dead_server_is_an_error_after_the_retries)
{
	const char *t = "x";
	size_t len = 1;
	float out[DIM];
	char err[256], url[64];
	struct embed_remote *e;

	snprintf(url, sizeof(url), "%s", base);
	srv_stop();
	e = client(url, 2, 0);
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, err, sizeof(err)),
		     -EIO);
	cr_assert_eq(embed_remote_requests(e), 3);
	cr_assert(strstr(err, "onnect"), "%s", err);
	embed_remote_free(e);
}

Test(embed, the_api_key_is_sent_as_bearer)
{
	const char *t = "x";
	size_t len = 1;
	float out[DIM];
	struct embed_remote *e;
	json_t *s;

	setenv("OPENAI_API_KEY", "openai-key", 1);
	setenv("LODEFS_EMBED_API_KEY", "lodefs-key", 1);
	e = client(NULL, 0, 0);
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, NULL, 0), 0);
	embed_remote_free(e);
	unsetenv("LODEFS_EMBED_API_KEY");
	e = client(NULL, 0, 0);
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, NULL, 0), 0);
	embed_remote_free(e);
	unsetenv("OPENAI_API_KEY");
	e = client(NULL, 0, 0);
	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, NULL, 0), 0);
	embed_remote_free(e);
	s = srv_call("/stats", NULL);
	json_t *auth = json_object_get(s, "auth");
	cr_assert_str_eq(json_string_value(json_array_get(auth, 0)),
			 "Bearer lodefs-key");
	cr_assert_str_eq(json_string_value(json_array_get(auth, 1)),
			 "Bearer openai-key");
	cr_assert(json_is_null(json_array_get(auth, 2)), "no key: no header");
	json_decref(s);
}

Test(embed, url_forms)
{
	static const char *const in[][2] = {
		{ "http://h:1", "http://h:1/v1/embeddings" },
		{ "http://h:1/", "http://h:1/v1/embeddings" },
		{ "http://h:1/v1", "http://h:1/v1/embeddings" },
		{ "http://h:1/v1/embeddings", "http://h:1/v1/embeddings" },
		{ "http://h:1/api/embeddings", "http://h:1/api/embeddings" },
		{ "http://h:1/openai", "http://h:1/openai/v1/embeddings" },
	};
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct embed_remote *e = client(in[i][0], 0, 0);

		cr_assert_str_eq(embed_remote_url(e), in[i][1]);
		embed_remote_free(e);
	}
	struct embed_remote_opts o = { .url = base };
	struct embed_remote *e;
	char err[128];

	cr_assert_eq(embed_remote_new(&o, &e, err, sizeof(err)), -EINVAL,
		     "no dim");
}

Test(embed, invalid_utf8_is_sent_with_replacement_characters)
{
	const char *t = "ok \xff bad";
	size_t len = strlen(t);
	float out[DIM];
	struct embed_remote *e = client(NULL, 0, 0);
	json_t *s;

	cr_assert_eq(embed_remote_run(e, &t, &len, 1, out, NULL, 0), 0);
	s = srv_call("/stats", NULL);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(s, "texts"), 0)),
			 "ok \xef\xbf\xbd bad");
	json_decref(s);
	cr_assert_float_eq(vsum(out), 2, 1e-6);
	embed_remote_free(e);
}

/* --- through the store ---------------------------------------------------- */

static struct backend *be;
static struct store *st;

static int open_store(void)
{
	struct store_opts o;

	store_opts_init(&o);
	o.embed_url = base;
	o.embed_model = "m";
	o.embed_dim = DIM;
	return store_open(be, &o, &st);
}

static void store_setup(void)
{
	setup();
	cr_assert_eq(backend_memory_open(&be), 0);
	cr_assert_eq(open_store(), 0, "%s", store_last_error());
}

static void store_teardown(void)
{
	store_close(st);
	backend_close(be);
	teardown();
}

TestSuite(embed_store, .init = store_setup, .fini = store_teardown,
	  .timeout = 60);

static void put(const char *id, const char *text, int want)
{
	struct store_doc d = { .id = id, .data = text, .len = strlen(text) };
	int r;

	cr_assert_eq(store_docs_put(st, &d, 1, &r), want, "%s",
		     store_last_error());
}

Test(embed_store, documents_get_the_servers_vectors_in_one_request)
{
	struct store_doc d[2] = {
		{ .id = "a.txt", .data = "apple pie", .len = 9 },
		{ .id = "b.txt", .data = "banana", .len = 6 },
	};
	struct store_hit *hits;
	size_t n;
	float *v;
	uint32_t dim;
	char *json;
	size_t len;
	json_t *node;
	const char *nid;

	cr_assert_eq(store_docs_put(st, d, 2, NULL), 0, "%s",
		     store_last_error());
	struct store_query q = {
		.text = "apple", .k = 1, .alpha = -1, .mode = STORE_MODE_VECTOR
	};
	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
		     store_last_error());
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].ref_doc_id, "a.txt");
	nid = hits[0].node_id;
	cr_assert_eq(store_vec_get(st, NULL, nid, &v, &dim), 0);
	cr_assert_eq(dim, DIM);
	cr_assert_float_eq(vsum(v), 2, 1e-6, "the server's bag of 2 words");
	free(v);
	cr_assert_eq(store_node_get(st, nid, &json, &len), 0);
	node = json_loads(json, 0, NULL);
	cr_assert(json_is_null(json_object_get(node, "embedding")));
	json_decref(node);
	free(json);
	store_hits_free(hits, n);
	/* both documents in one request, then the query text */
	json_t *s = srv_call("/stats", NULL);
	json_t *texts = json_object_get(s, "texts");
	cr_assert_eq(json_array_size(texts), 3);
	cr_assert_eq(json_integer_value(json_object_get(s, "requests")), 2);
	cr_assert_eq(json_integer_value(
			     json_array_get(json_object_get(s, "inputs"), 0)),
		     2);
	cr_assert_str_eq(json_string_value(json_array_get(texts, 2)), "apple");
	json_decref(s);
	/* the same bytes again: nothing to embed, no request */
	cr_assert_eq(store_docs_put(st, d, 2, NULL), 0);
	cr_assert_eq(srv_requests(), 2);
}

Test(embed_store, a_document_with_many_nodes_is_one_request)
{
	char *text = malloc(200000), *p = text;
	json_t *s;
	int i;

	for (i = 0; i < 20000; i++)
		p += sprintf(p, "w%d ", i % 977);
	put("big.txt", text, 0);
	free(text);
	s = srv_call("/stats", NULL);
	cr_assert_eq(json_integer_value(json_object_get(s, "requests")), 1);
	cr_assert_gt(json_integer_value(
			     json_array_get(json_object_get(s, "inputs"), 0)),
		     5, "the nodes went together");
	json_decref(s);
}

Test(embed_store, a_dead_server_refuses_the_write_whole)
{
	static const char n1[] = "{\"id_\": \"n1\", \"text\": \"t\"}";
	static const char n2[] = "{\"id_\": \"n2\", \"text\": \"t\", "
				 "\"embedding\": [1,0,0,0,0,0,0,0]}";
	void *data;
	size_t len;

	put("keep.txt", "kept text", 0);
	srv_stop();
	put("lost.txt", "never stored", -EIO);
	cr_assert(strstr(store_last_error(), "embeddings server"), "%s",
		  store_last_error());
	cr_assert_eq(store_doc_get(st, "lost.txt", &data, &len), -ENOENT);
	/* a new version of a stored document: the old one stays whole */
	put("keep.txt", "changed text", -EIO);
	cr_assert_eq(store_doc_get(st, "keep.txt", &data, &len), 0);
	cr_assert_eq(len, 9);
	cr_assert_eq(memcmp(data, "kept text", 9), 0);
	free(data);
	cr_assert_eq(store_node_put(st, n1, strlen(n1)), -EIO);
	cr_assert_eq(store_node_put(st, n2, strlen(n2)), 0,
		     "a node with its embedding needs no server: %s",
		     store_last_error());
	struct store_query q = { .text = "kept", .k = 1, .alpha = -1 };
	struct store_hit *hits;
	size_t n;

	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "keyword still works");
	cr_assert_eq(n, 1);
	store_hits_free(hits, n);
	q.mode = STORE_MODE_VECTOR;
	cr_assert_eq(store_query(st, &q, &hits, &n), -EIO);
}

Test(embed_store, a_failing_server_is_asked_once_per_bulk_write)
{
	struct store_doc d[3] = {
		{ .id = "1.txt", .data = "one", .len = 3 },
		{ .id = "2.txt", .data = "two", .len = 3 },
		{ .id = "3.txt", .data = "three", .len = 5 },
	};
	void *data;
	size_t len;

	srv_control("{\"fail\": 100, \"status\": 502}");
	cr_assert_eq(store_docs_put(st, d, 3, NULL), -EIO);
	cr_assert(strstr(store_last_error(), "HTTP 502"), "%s",
		  store_last_error());
	/* one request and its 4 retries, not 5 per document */
	cr_assert_eq(srv_requests(), 5);
	cr_assert_eq(store_doc_get(st, "1.txt", &data, &len), -ENOENT);
	srv_control("{\"fail\": 0}");
	cr_assert_eq(store_docs_put(st, d, 3, NULL), 0, "%s",
		     store_last_error());
	cr_assert_eq(srv_requests(), 6, "all three in one request");
}

Test(embed_store, a_namespace_of_another_dimension_is_refused_at_open)
{
	struct store_opts o;
	float v[3] = { 1, 0, 0 };

	store_close(st);
	st = NULL;
	store_opts_init(&o);
	cr_assert_eq(store_open(be, &o, &st), 0);
	cr_assert_eq(store_vec_put(st, NULL, "x", v, 3), 0);
	store_close(st);
	st = NULL;
	cr_assert_eq(open_store(), -EINVAL);
	cr_assert(strstr(store_last_error(), "3-dimensional"), "%s",
		  store_last_error());
}

/*
 * LlamaIndex's relative score fusion, worked by hand: vectors give z 1.0,
 * b 0.6, a 0.2 (min-max: 1, 0.5, 0); keyword "kiwi" gives a, then b
 * (min-max: 1, 0).  The ids sort against the order of first sight, so
 * that a tie shows which one decides.
 */
Test(embed_store, hybrid_is_relative_score_fusion)
{
	static const char *const nodes[] = {
		"{\"id_\": \"z\", \"text\": \"zzz\", "
		"\"embedding\": [1,0,0,0,0,0,0,0]}",
		"{\"id_\": \"b\", \"text\": \"kiwi\", "
		"\"embedding\": [0.6,0.8,0,0,0,0,0,0]}",
		"{\"id_\": \"a\", \"text\": \"kiwi kiwi kiwi\", "
		"\"embedding\": [0.2,0.9797959,0,0,0,0,0,0]}",
	};
	float qv[DIM] = { 1 }, neg[DIM] = { -1 };
	struct store_query q = { .text = "kiwi",
				 .embedding = qv,
				 .dim = DIM,
				 .k = 3,
				 .mode = STORE_MODE_HYBRID };
	struct store_hit *hits;
	size_t n, i;

	for (i = 0; i < 3; i++)
		cr_assert_eq(store_node_put(st, nodes[i], strlen(nodes[i])), 0,
			     "%s", store_last_error());
	/*
	 * alpha 0.5: z = 0.5, a = 0 + 0.5, b = 0.25 + 0: z and a tie; z was
	 * seen first (vector side), as Python's stable sort keeps it.
	 */
	q.alpha = 0.5;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
		     store_last_error());
	cr_assert_eq(n, 3);
	cr_assert_str_eq(hits[0].node_id, "z");
	cr_assert_str_eq(hits[1].node_id, "a");
	cr_assert_str_eq(hits[2].node_id, "b");
	cr_assert_float_eq(hits[0].score, 0.5, 1e-6);
	cr_assert_float_eq(hits[1].score, 0.5, 1e-6);
	cr_assert_float_eq(hits[2].score, 0.25, 1e-6);
	store_hits_free(hits, n);
	/* alpha 0.2: a 0.8, z 0.2, b 0.1 */
	q.alpha = 0.2f;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_str_eq(hits[0].node_id, "a");
	cr_assert_float_eq(hits[0].score, 0.8, 1e-6);
	cr_assert_str_eq(hits[1].node_id, "z");
	cr_assert_float_eq(hits[1].score, 0.2, 1e-6);
	cr_assert_float_eq(hits[2].score, 0.1, 1e-6);
	store_hits_free(hits, n);
	/* k 1: each side's lone result is 1 (positive); z seen first */
	q.k = 1;
	q.alpha = 0.5;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].node_id, "z");
	cr_assert_float_eq(hits[0].score, 0.5, 1e-6);
	store_hits_free(hits, n);
	/* a lone non-positive vector score (a: -0.2) normalises to 0 */
	q.embedding = neg;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hits[0].node_id, "a");
	cr_assert_float_eq(hits[0].score, 0.5, 1e-6, "0 + keyword 1 * 0.5");
	store_hits_free(hits, n);
}

/* --- the keyword index's word pairs (store_opts.bm25_bigram_weight) ------- */

static void bm_setup(void)
{
	cr_assert_eq(backend_memory_open(&be), 0);
}

static void bm_teardown(void)
{
	store_close(st);
	st = NULL;
	backend_close(be);
}

TestSuite(bm25_pairs, .init = bm_setup, .fini = bm_teardown, .timeout = 60);

static void open_bigrams(double w)
{
	struct store_opts o;

	store_opts_init(&o);
	if (w >= 0)
		o.bm25_bigram_weight = w;
	cr_assert_eq(store_open(be, &o, &st), 0, "%s", store_last_error());
}

/* Scores of "new york" for the documents in order and reversed. */
static void pair_scores(double *in_order, double *reversed)
{
	struct store_query q = { .text = "new york", .k = 5, .alpha = -1 };
	struct store_hit *hits;
	size_t n, i;

	*in_order = *reversed = -1;
	cr_assert_eq(store_query(st, &q, &hits, &n), 0, "%s",
		     store_last_error());
	cr_assert_eq(n, 2);
	for (i = 0; i < n; i++) {
		if (strcmp(hits[i].ref_doc_id, "inorder.txt") == 0)
			*in_order = hits[i].score;
		else
			*reversed = hits[i].score;
	}
	store_hits_free(hits, n);
}

Test(bm25_pairs, adjacent_query_words_score_higher_by_default)
{
	struct store_doc d[3] = {
		{ .id = "inorder.txt",
		  .data = "york gate new york",
		  .len = 18 },
		{ .id = "reversed.txt",
		  .data = "new gate york new",
		  .len = 17 },
		{ .id = "other.txt", .data = "boston", .len = 6 },
	};
	double a, b;
	struct store_stats ss;

	open_bigrams(-1);
	cr_assert_eq(store_docs_put(st, d, 3, NULL), 0, "%s",
		     store_last_error());
	pair_scores(&a, &b);
	cr_assert_gt(a, b, "the pair \"new york\" counts: %g vs %g", a, b);
	/* saved in a checkpoint and loaded with the same setting */
	cr_assert_eq(engine_checkpoint(store_engine(st)), 0);
	store_close(st);
	open_bigrams(-1);
	store_get_stats(st, &ss);
	cr_assert(ss.keyword_index_loaded);
	pair_scores(&a, &b);
	cr_assert_gt(a, b);
	/* opened without pairs: the saved index is rebuilt, words only */
	store_close(st);
	open_bigrams(0);
	store_get_stats(st, &ss);
	cr_assert_not(ss.keyword_index_loaded, "saved with pairs: rebuilt");
	pair_scores(&a, &b);
	cr_assert_float_eq(a, b, 1e-12, "words alone: the same bag of words");
}
