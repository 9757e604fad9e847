/* test_engine.c - the durable key-value engine: behaviours and recovery. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "backends/backend.h"
#include "core/engine.h"

#define C_DATA "docstore/data"
#define C_VEC  "vector_store/default"

/* --- helpers -------------------------------------------------------------- */

static struct backend *mem(void)
{
	struct backend *be;

	cr_assert_eq(backend_memory_open(&be), 0);
	return be;
}

static struct engine *eopen(struct backend *be, const char *writer)
{
	struct engine_opts o = { .writer = writer };
	struct engine *e;
	int rc = engine_open(be, &o, &e);

	cr_assert_eq(rc, 0, "engine_open: %d %s", rc, engine_last_error());
	return e;
}

static int put_json(struct engine *e, const char *coll, const char *key,
		    const char *json)
{
	struct engine_batch *b = engine_batch_new();
	int rc = engine_batch_put_json(b, coll, key, json, strlen(json));

	rc = engine_commit(e, b);
	engine_batch_free(b);
	return rc;
}

static int put_blob(struct engine *e, const char *coll, const char *key,
		    const void *data, size_t len)
{
	struct engine_batch *b = engine_batch_new();
	int rc;

	engine_batch_put_blob(b, coll, key, data, len);
	rc = engine_commit(e, b);
	engine_batch_free(b);
	return rc;
}

static int put_vec(struct engine *e, const char *coll, const char *key,
		   const float *v, uint32_t dim)
{
	struct engine_batch *b = engine_batch_new();
	int rc;

	engine_batch_put_vec(b, coll, key, v, dim);
	rc = engine_commit(e, b);
	engine_batch_free(b);
	return rc;
}

static int del(struct engine *e, const char *coll, const char *key)
{
	struct engine_batch *b = engine_batch_new();
	int rc;

	engine_batch_del(b, coll, key);
	rc = engine_commit(e, b);
	engine_batch_free(b);
	return rc;
}

static int drop(struct engine *e, const char *coll)
{
	struct engine_batch *b = engine_batch_new();
	int rc;

	engine_batch_drop(b, coll);
	rc = engine_commit(e, b);
	engine_batch_free(b);
	return rc;
}

/* Value as a malloc'd string, or NULL if absent. */
static char *get(struct engine *e, const char *coll, const char *key)
{
	void *data;
	size_t len;

	if (engine_get(e, coll, key, NULL, &data, &len))
		return NULL;
	return data;
}

static void assert_value(struct engine *e, const char *coll, const char *key,
			 const char *want)
{
	char *v = get(e, coll, key);

	if (!want) {
		cr_assert_null(v, "%s/%s should be absent, is %s", coll, key,
			       v);
		return;
	}
	cr_assert_not_null(v, "%s/%s missing", coll, key);
	cr_assert_str_eq(v, want);
	free(v);
}

struct keys {
	char **v;
	size_t n;
};

static int keys_fn(void *arg, const char *key, uint64_t size)
{
	struct keys *k = arg;

	k->v = realloc(k->v, (k->n + 1) * sizeof(*k->v));
	k->v[k->n++] = strdup(key);
	return 0;
}

static struct keys list(struct backend *be, const char *prefix)
{
	struct keys k = { 0 };

	cr_assert_eq(backend_list(be, prefix, keys_fn, &k), 0);
	return k;
}

static void keys_free(struct keys *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

static size_t count_objects(struct backend *be, const char *prefix)
{
	struct keys k = list(be, prefix);
	size_t n = k.n;

	keys_free(&k);
	return n;
}

/* Rewrites an object through `fn` (truncate, flip a byte). */
static void mangle(struct backend *be, const char *key, size_t keep,
		   long flip_at)
{
	void *data;
	size_t len;

	cr_assert_eq(backend_get(be, key, &data, &len), 0);
	if (flip_at >= 0) {
		cr_assert_lt((size_t)flip_at, len);
		((unsigned char *)data)[flip_at] ^= 0x5a;
	}
	if (keep < len)
		len = keep;
	cr_assert_eq(backend_put(be, key, data, len, NULL), 0);
	free(data);
}

static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

struct reports {
	int problems;
	int warnings;
	char text[4096];
};

static void report_fn(void *arg, const char *key, const char *problem)
{
	struct reports *r = arg;
	size_t n = strlen(r->text);

	if (strncmp(problem, "warning:", 8) == 0)
		r->warnings++;
	else
		r->problems++;
	snprintf(r->text + n, sizeof(r->text) - n, "%s: %s\n", key, problem);
}

/* --- basic values --------------------------------------------------------- */

Test(engine, json_roundtrip_is_compact_and_keeps_order_and_numbers)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	enum engine_type t;
	void *data;
	size_t len;

	cr_assert_eq(put_json(e, C_DATA, "n1",
			      "{ \"z\" : 0.1,\n \"a\": [1, 2e3],\t\"s\": "
			      "\"keep  this \\\" space\" }"),
		     0);
	cr_assert_eq(engine_get(e, C_DATA, "n1", &t, &data, &len), 0);
	cr_assert_eq(t, ENGINE_JSON);
	cr_assert_str_eq(data,
			 "{\"z\":0.1,\"a\":[1,2e3],\"s\":\"keep  this \\\" "
			 "space\"}");
	cr_assert_eq(len, strlen(data));
	free(data);
	engine_close(e);
	backend_close(be);
}

Test(engine, blob_roundtrip_keeps_binary_bytes)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char bin[] = { 'a', 0, (char)0xff, 'b', 0 };
	enum engine_type t;
	void *data;
	size_t len;

	cr_assert_eq(put_blob(e, "content", "d1", bin, sizeof(bin)), 0);
	cr_assert_eq(put_blob(e, "content", "empty", NULL, 0), 0);
	cr_assert_eq(engine_get(e, "content", "d1", &t, &data, &len), 0);
	cr_assert_eq(t, ENGINE_BLOB);
	cr_assert_eq(len, sizeof(bin));
	cr_assert_arr_eq(data, bin, sizeof(bin));
	cr_assert_eq(((char *)data)[len], 0);
	free(data);
	cr_assert_eq(engine_get(e, "content", "empty", &t, &data, &len), 0);
	cr_assert_eq(len, 0);
	free(data);
	engine_close(e);
	backend_close(be);
}

Test(engine, vec_roundtrip_and_dim)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[3] = { 1.5f, -2.0f, 3.25f };
	enum engine_type t;
	void *data;
	size_t len;

	cr_assert_eq(engine_vec_dim(e, C_VEC), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n1", v, 3), 0);
	cr_assert_eq(engine_vec_dim(e, C_VEC), 3);
	cr_assert_eq(engine_get(e, C_VEC, "n1", &t, &data, &len), 0);
	cr_assert_eq(t, ENGINE_VEC);
	cr_assert_eq(len, sizeof(v));
	cr_assert_arr_eq(data, v, sizeof(v));
	free(data);
	engine_close(e);
	backend_close(be);
}

Test(engine, get_missing_returns_enoent)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	void *data = NULL;
	size_t len;

	cr_assert_eq(engine_get(e, C_DATA, "nope", NULL, &data, &len), -ENOENT);
	cr_assert_eq(put_json(e, C_DATA, "yes", "{}"), 0);
	cr_assert_eq(engine_get(e, C_DATA, "nope", NULL, &data, &len), -ENOENT);
	cr_assert_eq(engine_get(e, "other", "yes", NULL, &data, &len), -ENOENT);
	cr_assert_null(data);
	cr_assert_eq(engine_exists(e, C_DATA, "nope"), 0);
	cr_assert_eq(engine_exists(e, C_DATA, "yes"), 1);
	engine_close(e);
	backend_close(be);
}

Test(engine, delete_removes_each_type)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[2] = { 1, 2 };

	cr_assert_eq(put_json(e, "c", "j", "{\"a\":1}"), 0);
	cr_assert_eq(put_blob(e, "c", "b", "xyz", 3), 0);
	cr_assert_eq(put_vec(e, "c", "v", v, 2), 0);
	cr_assert_eq(engine_count(e, "c"), 3);
	cr_assert_eq(del(e, "c", "j"), 0);
	cr_assert_eq(del(e, "c", "b"), 0);
	cr_assert_eq(del(e, "c", "v"), 0);
	cr_assert_eq(engine_count(e, "c"), 0);
	assert_value(e, "c", "j", NULL);
	assert_value(e, "c", "b", NULL);
	assert_value(e, "c", "v", NULL);
	cr_assert_eq(engine_vec_dim(e, "c"), 0);
	/* a deleted key may come back with another type */
	cr_assert_eq(put_blob(e, "c", "j", "now a blob", 10), 0);
	assert_value(e, "c", "j", "now a blob");
	engine_close(e);
	backend_close(be);
}

Test(engine, drop_removes_every_key_of_the_collection_only)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[2] = { 1, 2 };
	struct engine_batch *b;

	cr_assert_eq(put_json(e, "a", "1", "{}"), 0);
	cr_assert_eq(put_blob(e, "a", "2", "x", 1), 0);
	cr_assert_eq(put_vec(e, "a", "3", v, 2), 0);
	cr_assert_eq(put_json(e, "b", "1", "{}"), 0);
	cr_assert_eq(drop(e, "a"), 0);
	cr_assert_eq(engine_count(e, "a"), 0);
	cr_assert_eq(engine_count(e, "b"), 1);
	assert_value(e, "a", "2", NULL);
	/* drop then put in one batch: the put survives, any dim is fine */
	b = engine_batch_new();
	engine_batch_put_json(b, "a", "old", "{}", 2);
	engine_batch_drop(b, "a");
	engine_batch_put_vec(b, "a", "new", v, 1);
	cr_assert_eq(engine_commit(e, b), 0);
	engine_batch_free(b);
	cr_assert_eq(engine_count(e, "a"), 1);
	cr_assert_eq(engine_vec_dim(e, "a"), 1);
	assert_value(e, "a", "old", NULL);
	engine_close(e);
	backend_close(be);
}

/* --- invalid input -------------------------------------------------------- */

/* Asserts the batch is refused with -EINVAL and nothing was written. */
static void assert_refused(struct backend *be, struct engine *e,
			   struct engine_batch *b)
{
	size_t before = count_objects(be, "log/");

	cr_assert_eq(engine_commit(e, b), -EINVAL);
	cr_assert_neq(engine_last_error()[0], '\0');
	cr_assert_eq(count_objects(be, "log/"), before);
	engine_batch_free(b);
}

Test(engine, malformed_json_rejected_and_nothing_changes)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_batch *b = engine_batch_new();

	cr_assert_eq(put_json(e, C_DATA, "keep", "{\"v\":1}"), 0);
	engine_batch_put_json(b, C_DATA, "keep", "{\"v\":2}", 7);
	cr_assert_eq(engine_batch_put_json(b, C_DATA, "bad", "{\"v\":", 5),
		     -EINVAL);
	assert_refused(be, e, b);
	assert_value(e, C_DATA, "keep", "{\"v\":1}");
	assert_value(e, C_DATA, "bad", NULL);
	engine_close(e);
	backend_close(be);
}

Test(engine, json_array_rejected)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_batch *b = engine_batch_new();

	cr_assert_eq(engine_batch_put_json(b, C_DATA, "arr", "[1,2]", 5),
		     -EINVAL);
	assert_refused(be, e, b);
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_json(b, C_DATA, "num", "42", 2), -EINVAL);
	assert_refused(be, e, b);
	cr_assert_eq(engine_count(e, C_DATA), 0);
	engine_close(e);
	backend_close(be);
}

Test(engine, wrong_vec_dim_rejected)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[4] = { 1, 2, 3, 4 };
	struct engine_batch *b;

	cr_assert_eq(put_vec(e, C_VEC, "a", v, 3), 0);
	b = engine_batch_new();
	engine_batch_put_vec(b, C_VEC, "b", v, 4);
	assert_refused(be, e, b);
	/* within one batch, against a fresh collection */
	b = engine_batch_new();
	engine_batch_put_vec(b, "fresh", "x", v, 2);
	engine_batch_put_vec(b, "fresh", "y", v, 3);
	assert_refused(be, e, b);
	cr_assert_eq(engine_count(e, C_VEC), 1);
	cr_assert_eq(engine_vec_dim(e, C_VEC), 3);
	cr_assert_eq(engine_count(e, "fresh"), 0);
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_vec(b, C_VEC, "z", v, 0), -EINVAL);
	assert_refused(be, e, b);
	engine_close(e);
	backend_close(be);
}

Test(engine, type_change_rejected)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[1] = { 1 };
	struct engine_batch *b;

	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	b = engine_batch_new();
	engine_batch_put_blob(b, "c", "k", "x", 1);
	assert_refused(be, e, b);
	b = engine_batch_new();
	engine_batch_put_vec(b, "c", "k", v, 1);
	assert_refused(be, e, b);
	/* inside one batch too */
	b = engine_batch_new();
	engine_batch_put_blob(b, "c", "n", "x", 1);
	engine_batch_put_json(b, "c", "n", "{}", 2);
	assert_refused(be, e, b);
	assert_value(e, "c", "k", "{}");
	/* but delete first, then another type, is fine */
	b = engine_batch_new();
	engine_batch_del(b, "c", "k");
	engine_batch_put_blob(b, "c", "k", "x", 1);
	cr_assert_eq(engine_commit(e, b), 0);
	engine_batch_free(b);
	assert_value(e, "c", "k", "x");
	engine_close(e);
	backend_close(be);
}

Test(engine, empty_names_rejected)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_batch *b;

	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_json(b, C_DATA, "", "{}", 2), -EINVAL);
	assert_refused(be, e, b);
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_json(b, "", "k", "{}", 2), -EINVAL);
	assert_refused(be, e, b);
	b = engine_batch_new();
	cr_assert_eq(engine_batch_del(b, C_DATA, NULL), -EINVAL);
	assert_refused(be, e, b);
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_blob(b, "c", "\xff\xfe", "x", 1),
		     -EINVAL);
	assert_refused(be, e, b);
	cr_assert_eq(engine_count(e, C_DATA), 0);
	engine_close(e);
	backend_close(be);
}

Test(engine, key_over_limit_rejected_slash_and_limit_accepted)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	char *big = malloc(10241);
	struct engine_batch *b;

	memset(big, 'k', 10240);
	big[10240] = '\0';
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_blob(b, "c", big, "x", 1), -EINVAL);
	assert_refused(be, e, b);
	big[ENGINE_KEY_MAX + 1 - 1 + 1] = '\0'; /* 4097 bytes */
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_blob(b, "c", big, "x", 1), -EINVAL);
	assert_refused(be, e, b);
	big[ENGINE_KEY_MAX] = '\0';
	cr_assert_eq(put_blob(e, "c", big, "max", 3), 0);
	assert_value(e, "c", big, "max");
	cr_assert_eq(put_json(e, "c", "dir/sub/file.txt", "{}"), 0);
	assert_value(e, "c", "dir/sub/file.txt", "{}");
	free(big);
	engine_close(e);
	backend_close(be);
}

Test(engine, empty_batch_commits_nothing)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_batch *b = engine_batch_new();

	cr_assert_eq(engine_commit(e, b), 0);
	cr_assert_eq(count_objects(be, "log/"), 0);
	engine_batch_free(b);
	engine_close(e);
	backend_close(be);
}

/* --- durability ----------------------------------------------------------- */

static void fill_some(struct engine *e)
{
	float v[2] = { 0.5f, 1.5f };

	cr_assert_eq(put_json(e, C_DATA, "n1", "{\"t\":\"one\"}"), 0);
	cr_assert_eq(put_json(e, C_DATA, "n2", "{\"t\":\"two\"}"), 0);
	cr_assert_eq(put_blob(e, "content", "d1", "hello", 5), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n1", v, 2), 0);
	cr_assert_eq(del(e, C_DATA, "n2"), 0);
	cr_assert_eq(put_json(e, C_DATA, "n1", "{\"t\":\"uno\"}"), 0);
}

/* Checks fill_some's state; `extra` keys were added to C_DATA since. */
static void check_some_plus(struct engine *e, size_t extra)
{
	float v[2] = { 0.5f, 1.5f };
	void *data;
	size_t len;

	assert_value(e, C_DATA, "n1", "{\"t\":\"uno\"}");
	assert_value(e, C_DATA, "n2", NULL);
	assert_value(e, "content", "d1", "hello");
	cr_assert_eq(engine_get(e, C_VEC, "n1", NULL, &data, &len), 0);
	cr_assert_eq(len, sizeof(v));
	cr_assert_arr_eq(data, v, sizeof(v));
	free(data);
	cr_assert_eq(engine_count(e, C_DATA), 1 + extra);
	cr_assert_eq(engine_vec_dim(e, C_VEC), 2);
}

static void check_some(struct engine *e)
{
	check_some_plus(e, 0);
}

Test(engine, reopen_restores_state)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");

	fill_some(e);
	engine_close(e);
	e = eopen(be, "w");
	check_some(e);
	engine_close(e);
	backend_close(be);
}

Test(engine, checkpoint_reopen_equals_state_and_deletes_covered_segments)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_stats st;

	fill_some(e);
	cr_assert_eq(count_objects(be, "log/"), 6);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	cr_assert_eq(count_objects(be, "log/"), 0);
	cr_assert_geq(count_objects(be, "ckpt/"), 3); /* kv, vec, manifest */
	engine_get_stats(e, &st);
	cr_assert_eq(st.segments, 0);
	cr_assert_gt(st.checkpoint_bytes, 0);
	check_some(e);
	engine_close(e);
	e = eopen(be, "w");
	check_some(e);
	/* a second checkpoint replaces the first */
	cr_assert_eq(put_json(e, C_DATA, "n3", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(count_objects(be, "ckpt/"), 3);
	engine_close(e);
	e = eopen(be, "w");
	check_some_plus(e, 1);
	assert_value(e, C_DATA, "n3", "{}");
	engine_close(e);
	backend_close(be);
}

Test(engine, replays_segments_after_checkpoint)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[2] = { 9, 8 };

	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_json(e, C_DATA, "n1", "{\"t\":\"after\"}"), 0);
	cr_assert_eq(del(e, "content", "d1"), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n2", v, 2), 0);
	cr_assert_eq(put_json(e, C_DATA, "n2", "{}"), 0);
	engine_close(e);
	e = eopen(be, "w");
	assert_value(e, C_DATA, "n1", "{\"t\":\"after\"}");
	assert_value(e, C_DATA, "n2", "{}");
	assert_value(e, "content", "d1", NULL);
	cr_assert_eq(engine_count(e, C_VEC), 2);
	engine_close(e);
	backend_close(be);
}

Test(engine, deleted_key_stays_deleted_after_checkpoint)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");

	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(del(e, "c", "k"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "w");
	assert_value(e, "c", "k", NULL);
	cr_assert_eq(engine_count(e, "c"), 0);
	engine_close(e);
	backend_close(be);
}

Test(engine, writer_seq_continues_when_id_is_reused)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct keys k;

	cr_assert_eq(put_json(e, "c", "a", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "b", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "w");
	cr_assert_eq(put_json(e, "c", "c", "{}"), 0);
	k = list(be, "log/");
	cr_assert_eq(k.n, 1);
	cr_assert_str_eq(k.v[0], "log/w/0000000000000003.seg");
	keys_free(&k);
	engine_close(e);
	backend_close(be);
}

static char *last_segment(struct backend *be)
{
	struct keys k = list(be, "log/");
	char *s;

	cr_assert_gt(k.n, 0);
	s = strdup(k.v[k.n - 1]);
	keys_free(&k);
	return s;
}

Test(engine, torn_tail_is_ignored_and_acknowledged_state_intact)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	char *tail;

	fill_some(e);
	cr_assert_eq(put_json(e, C_DATA, "n1", "{\"t\":\"torn\"}"), 0);
	engine_close(e);
	tail = last_segment(be);
	mangle(be, tail, 40, -1); /* cut inside the header */
	e = eopen(be, "w");
	check_some(e);
	cr_assert_eq(count_objects(be, tail), 0, "torn tail not removed");
	/* new commits do not reuse the torn seq */
	cr_assert_eq(put_json(e, C_DATA, "n9", "{}"), 0);
	engine_close(e);
	e = eopen(be, "w");
	assert_value(e, C_DATA, "n9", "{}");
	engine_close(e);
	free(tail);

	/* torn inside the records this time */
	e = eopen(be, "w");
	cr_assert_eq(put_json(e, C_DATA, "n1", "{\"t\":\"torn again\"}"), 0);
	engine_close(e);
	tail = last_segment(be);
	mangle(be, tail, 70, -1);
	e = eopen(be, "w");
	check_some_plus(e, 1); /* n9 */
	engine_close(e);
	free(tail);
	backend_close(be);
}

Test(engine, corrupt_middle_segment_is_euclean_and_fsck_reports_it)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct reports r = { 0 };
	struct keys k;
	struct engine_opts o = { .writer = "w" };

	fill_some(e);
	engine_close(e);
	k = list(be, "log/");
	mangle(be, k.v[2], SIZE_MAX, 70);
	cr_assert_eq(engine_open(be, &o, &e), -EUCLEAN);
	cr_assert_null(e);
	cr_assert_not_null(strstr(engine_last_error(), k.v[2]), "%s",
			   engine_last_error());
	cr_assert_eq(engine_fsck(be, report_fn, &r), 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, k.v[2]));
	keys_free(&k);
	backend_close(be);
}

Test(engine, fsck_clean_store_reports_nothing_and_torn_tail_is_a_warning)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct reports r = { 0 };
	char *tail;

	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_json(e, C_DATA, "x", "{}"), 0);
	cr_assert_eq(put_json(e, C_DATA, "y", "{}"), 0);
	engine_close(e);
	cr_assert_eq(engine_fsck(be, report_fn, &r), 0, "%s", r.text);
	cr_assert_eq(r.warnings, 0, "%s", r.text);
	tail = last_segment(be);
	mangle(be, tail, SIZE_MAX, 80);
	cr_assert_eq(engine_fsck(be, report_fn, &r), 0, "%s", r.text);
	cr_assert_eq(r.warnings, 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, "torn"));
	free(tail);
	backend_close(be);
}

static char *find_object(struct backend *be, const char *prefix,
			 const char *suffix)
{
	struct keys k = list(be, prefix);
	char *found = NULL;
	size_t i, sl = strlen(suffix);

	for (i = 0; i < k.n && !found; i++) {
		size_t n = strlen(k.v[i]);

		if (n >= sl && strcmp(k.v[i] + n - sl, suffix) == 0)
			found = strdup(k.v[i]);
	}
	keys_free(&k);
	cr_assert_not_null(found, "no %s*%s", prefix, suffix);
	return found;
}

Test(engine, corrupt_checkpoint_object_is_reported_by_fsck)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct reports r = { 0 };
	struct engine_opts o = { .writer = "w" };
	char *kv, *vec;

	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	kv = find_object(be, "ckpt/", "/kv");
	vec = find_object(be, "ckpt/", "/vec-0");
	mangle(be, kv, SIZE_MAX, 20);
	mangle(be, vec, SIZE_MAX, 70);
	cr_assert_eq(engine_fsck(be, report_fn, &r), 2, "%s", r.text);
	cr_assert_not_null(strstr(r.text, kv));
	cr_assert_not_null(strstr(r.text, vec));
	cr_assert_eq(engine_open(be, &o, &e), -EUCLEAN);
	free(kv);
	free(vec);
	backend_close(be);
}

Test(engine, damaged_manifest_is_euclean_not_silently_ignored)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_opts o = { .writer = "w" };
	struct reports r = { 0 };
	char *man;

	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	man = find_object(be, "ckpt/", "/manifest");
	mangle(be, man, SIZE_MAX, 5);
	cr_assert_eq(engine_open(be, &o, &e), -EUCLEAN);
	cr_assert_not_null(strstr(engine_last_error(), man), "%s",
			   engine_last_error());
	cr_assert_eq(engine_fsck(be, report_fn, &r), 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, man));
	free(man);
	backend_close(be);
}

Test(engine, checkpoint_without_manifest_is_ignored_and_cleaned)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *fake = "ckpt/ffffffffffffffff-w/kv";
	char *kv;
	void *d;
	size_t n;

	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_json(e, C_DATA, "late", "{}"), 0);
	engine_close(e);
	/* a newer checkpoint that crashed before its manifest was written */
	kv = find_object(be, "ckpt/", "/kv");
	cr_assert_eq(backend_get(be, kv, &d, &n), 0);
	cr_assert_eq(backend_put(be, fake, d, n, NULL), 0);
	free(d);
	free(kv);
	e = eopen(be, "w");
	check_some_plus(e, 1);
	assert_value(e, C_DATA, "late", "{}");
	cr_assert_eq(count_objects(be, "ckpt/ffffffffffffffff-w/"), 0,
		     "abandoned checkpoint of this writer not cleaned");
	engine_close(e);
	backend_close(be);
}

Test(engine, failed_put_returns_eio_state_unchanged_retry_succeeds)
{
	struct backend *inner = mem(), *be;
	struct engine *e;
	struct engine_batch *b;

	cr_assert_eq(backend_fault_open(inner, &be), 0);
	e = eopen(be, "w");
	cr_assert_eq(put_json(e, C_DATA, "k", "{\"v\":1}"), 0);
	b = engine_batch_new();
	engine_batch_put_json(b, C_DATA, "k", "{\"v\":2}", 7);
	engine_batch_put_json(b, C_DATA, "k2", "{}", 2);
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 1, 1, -EIO), 0);
	cr_assert_eq(engine_commit(e, b), -EIO);
	assert_value(e, C_DATA, "k", "{\"v\":1}");
	assert_value(e, C_DATA, "k2", NULL);
	cr_assert_eq(engine_commit(e, b), 0, "%s", engine_last_error());
	assert_value(e, C_DATA, "k", "{\"v\":2}");
	engine_batch_free(b);
	engine_close(e);
	/* the gap left by the failed seq is not damage */
	e = eopen(be, "w");
	assert_value(e, C_DATA, "k", "{\"v\":2}");
	assert_value(e, C_DATA, "k2", "{}");
	/* a failed checkpoint leaves the store valid */
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 2, 1, -ENOSPC),
		     0);
	cr_assert_eq(engine_checkpoint(e), -ENOSPC);
	engine_close(e);
	e = eopen(be, "w");
	assert_value(e, C_DATA, "k", "{\"v\":2}");
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	backend_close(be);
}

Test(engine, two_writers_converge_last_writer_wins)
{
	struct backend *be = mem();
	struct engine *a = eopen(be, "a"), *b = eopen(be, "b"), *c, *a2;

	cr_assert_eq(put_json(a, "c", "k", "{\"by\":\"a1\"}"), 0);
	pause_ms(3);
	cr_assert_eq(put_json(b, "c", "k", "{\"by\":\"b1\"}"), 0);
	cr_assert_eq(put_json(b, "c", "gone", "{}"), 0);
	pause_ms(3);
	cr_assert_eq(put_json(a, "c", "j", "{\"by\":\"a2\"}"), 0);
	cr_assert_eq(del(a, "c", "gone"), 0);
	pause_ms(3);
	cr_assert_eq(put_json(b, "c", "j", "{\"by\":\"b2\"}"), 0);
	pause_ms(3);
	cr_assert_eq(put_json(a, "c", "k", "{\"by\":\"a3\"}"), 0);

	c = eopen(be, "c");
	assert_value(c, "c", "k", "{\"by\":\"a3\"}");
	assert_value(c, "c", "j", "{\"by\":\"b2\"}");
	assert_value(c, "c", "gone", NULL);
	engine_close(c);

	/* a refresh brings b to the same state */
	cr_assert_eq(engine_refresh(b), 0, "%s", engine_last_error());
	assert_value(b, "c", "k", "{\"by\":\"a3\"}");
	assert_value(b, "c", "j", "{\"by\":\"b2\"}");
	assert_value(b, "c", "gone", NULL);

	/* checkpoints by either side keep the other's segments */
	cr_assert_eq(engine_checkpoint(b), 0);
	cr_assert_eq(put_json(a, "c", "z", "{}"), 0);
	engine_close(a);
	engine_close(b);
	a2 = eopen(be, "a");
	assert_value(a2, "c", "k", "{\"by\":\"a3\"}");
	assert_value(a2, "c", "j", "{\"by\":\"b2\"}");
	assert_value(a2, "c", "z", "{}");
	engine_close(a2);
	backend_close(be);
}

Test(engine, late_older_segment_loses_to_newer_checkpointed_write)
{
	struct backend *side = mem(), *be = mem();
	struct engine *a = eopen(side, "a"), *b, *c;
	struct keys k;
	size_t i;

	/* writer a commits first but its segments arrive late */
	cr_assert_eq(put_json(a, "c", "k", "{\"by\":\"a\"}"), 0);
	cr_assert_eq(put_json(a, "c", "gone", "{\"by\":\"a\"}"), 0);
	cr_assert_eq(put_json(a, "c", "only-a", "{}"), 0);
	engine_close(a);
	pause_ms(3);
	b = eopen(be, "b");
	cr_assert_eq(put_json(b, "c", "k", "{\"by\":\"b\"}"), 0);
	cr_assert_eq(del(b, "c", "gone"), 0);
	cr_assert_eq(engine_checkpoint(b), 0);
	engine_close(b);
	k = list(side, "log/");
	for (i = 0; i < k.n; i++) {
		void *d;
		size_t n;

		cr_assert_eq(backend_get(side, k.v[i], &d, &n), 0);
		cr_assert_eq(backend_put(be, k.v[i], d, n, NULL), 0);
		free(d);
	}
	keys_free(&k);
	c = eopen(be, "c");
	assert_value(c, "c", "k", "{\"by\":\"b\"}");
	assert_value(c, "c", "gone", NULL);
	assert_value(c, "c", "only-a", "{}");
	engine_close(c);
	backend_close(side);
	backend_close(be);
}

static void copy_all(struct backend *from, struct backend *to)
{
	struct keys k = list(from, "");
	size_t i;

	for (i = 0; i < k.n; i++) {
		void *d;
		size_t n;

		cr_assert_eq(backend_get(from, k.v[i], &d, &n), 0);
		cr_assert_eq(backend_put(to, k.v[i], d, n, NULL), 0);
		free(d);
	}
	keys_free(&k);
}

Test(engine, concurrent_checkpoints_of_two_writers_are_merged)
{
	struct backend *sa = mem(), *sb = mem(), *be = mem();
	struct engine *a = eopen(sa, "a"), *b, *c;
	struct reports r = { 0 };

	/* each checkpoints without having seen the other's work */
	cr_assert_eq(put_json(a, "c", "k", "{\"by\":\"a\"}"), 0);
	cr_assert_eq(put_json(a, "c", "shared", "{\"by\":\"a\"}"), 0);
	cr_assert_eq(engine_checkpoint(a), 0);
	engine_close(a);
	pause_ms(3);
	b = eopen(sb, "b");
	cr_assert_eq(put_json(b, "c", "j", "{\"by\":\"b\"}"), 0);
	cr_assert_eq(put_json(b, "c", "shared", "{\"by\":\"b\"}"), 0);
	cr_assert_eq(engine_checkpoint(b), 0);
	engine_close(b);
	copy_all(sa, be);
	copy_all(sb, be);
	cr_assert_eq(count_objects(be, "log/"), 0);

	c = eopen(be, "c");
	assert_value(c, "c", "k", "{\"by\":\"a\"}");
	assert_value(c, "c", "j", "{\"by\":\"b\"}");
	assert_value(c, "c", "shared", "{\"by\":\"b\"}");
	cr_assert_eq(engine_fsck(be, report_fn, &r), 0, "%s", r.text);
	/* a checkpoint covering both makes the two redundant */
	cr_assert_eq(engine_checkpoint(c), 0);
	cr_assert_eq(count_objects(be, "ckpt/"), 2); /* kv + manifest */
	engine_close(c);
	c = eopen(be, "c");
	assert_value(c, "c", "k", "{\"by\":\"a\"}");
	assert_value(c, "c", "shared", "{\"by\":\"b\"}");
	engine_close(c);
	backend_close(sa);
	backend_close(sb);
	backend_close(be);
}

/* --- observers ------------------------------------------------------------ */

struct seen {
	char log[8192];
	int n;
};

static void observe_fn(void *arg, const char *coll, const char *key,
		       enum engine_type type, const void *data, size_t len)
{
	struct seen *s = arg;
	size_t n = strlen(s->log);

	if (type == ENGINE_NONE)
		cr_assert_null(data);
	if (type == ENGINE_JSON)
		snprintf(s->log + n, sizeof(s->log) - n, "put %s %s %.*s\n",
			 coll, key, (int)len, (const char *)data);
	else
		snprintf(s->log + n, sizeof(s->log) - n, "%s %s %s %zu\n",
			 type == ENGINE_NONE ? "del" : "put", coll, key, len);
	s->n++;
}

Test(engine, observer_sees_exactly_the_applied_changes)
{
	struct backend *be = mem();
	struct engine_opts o = { .writer = "w" };
	struct seen s = { 0 };
	struct engine *e;
	struct engine_batch *b;
	float v[2] = { 1, 2 };

	cr_assert_eq(engine_open_observed(be, &o, observe_fn, &s, &e), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(put_json(e, "c", "a", "{\"x\":1}"), 0);
	cr_assert_eq(del(e, "c", "missing"), 0); /* not reported */
	b = engine_batch_new();
	engine_batch_put_json(b, "c", "b", "{}", 2);
	engine_batch_put_vec(b, "v", "a", v, 2);
	engine_batch_del(b, "c", "a");
	engine_batch_del(b, "c", "a"); /* already gone: not reported */
	cr_assert_eq(engine_commit(e, b), 0);
	engine_batch_free(b);
	cr_assert_str_eq(s.log, "put c a {\"x\":1}\n"
				"put c b {}\n"
				"put v a 8\n"
				"del c a 0\n");
	s.log[0] = '\0';
	s.n = 0;
	cr_assert_eq(put_json(e, "c", "z", "{}"), 0);
	cr_assert_eq(drop(e, "c"), 0);
	cr_assert_eq(s.n, 3, "%s", s.log); /* put z, then del b and del z */
	cr_assert_not_null(strstr(s.log, "del c b 0\n"));
	cr_assert_not_null(strstr(s.log, "del c z 0\n"));
	cr_assert_eq(drop(e, "c"), 0); /* empty: nothing reported */
	cr_assert_eq(s.n, 3);
	/* failed commits report nothing */
	b = engine_batch_new();
	engine_batch_put_json(b, "c", "q", "[", 1);
	cr_assert_eq(engine_commit(e, b), -EINVAL);
	engine_batch_free(b);
	cr_assert_eq(s.n, 3);
	cr_assert_eq(put_json(e, "c", "kept", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_json(e, "c", "after", "{}"), 0);
	cr_assert_eq(del(e, "c", "kept"), 0);
	engine_close(e);

	/* at open: the checkpoint's live keys, then the replayed records */
	s.log[0] = '\0';
	s.n = 0;
	cr_assert_eq(engine_open_observed(be, &o, observe_fn, &s, &e), 0);
	cr_assert_eq(s.n, 4, "%s", s.log);
	cr_assert_str_eq(s.log, "put c kept {}\n"
				"put v a 8\n"
				"put c after {}\n"
				"del c kept 0\n");
	/* set later: only new changes */
	engine_set_observer(e, NULL, NULL);
	cr_assert_eq(put_json(e, "c", "quiet", "{}"), 0);
	cr_assert_eq(s.n, 4);
	engine_close(e);
	backend_close(be);
}

Test(engine, refresh_reports_other_writers_changes_to_the_observer)
{
	struct backend *be = mem();
	struct engine_opts o = { .writer = "r" };
	struct engine *w = eopen(be, "w"), *r;
	struct seen s = { 0 };

	cr_assert_eq(put_json(w, "c", "old", "{}"), 0);
	cr_assert_eq(engine_open_observed(be, &o, observe_fn, &s, &r), 0);
	cr_assert_str_eq(s.log, "put c old {}\n");
	s.log[0] = '\0';
	cr_assert_eq(put_json(w, "c", "new", "{}"), 0);
	cr_assert_eq(del(w, "c", "old"), 0);
	cr_assert_eq(engine_refresh(r), 0);
	cr_assert_str_eq(s.log, "put c new {}\ndel c old 0\n");
	/* a checkpoint by the other writer brings nothing new */
	cr_assert_eq(engine_checkpoint(w), 0);
	s.log[0] = '\0';
	cr_assert_eq(engine_refresh(r), 0);
	cr_assert_str_eq(s.log, "");
	assert_value(r, "c", "new", "{}");
	engine_close(r);
	engine_close(w);
	backend_close(be);
}

/* --- vectors -------------------------------------------------------------- */

struct vcheck {
	size_t rows;
	size_t live;
	char keys[64][16];
	float first[64];
	uint32_t dim;
	size_t blocks;
};

static int vcheck_fn(void *arg, const struct engine_vecs *v)
{
	struct vcheck *c = arg;
	size_t b, i;

	c->dim = v->dim;
	c->live = v->live;
	c->blocks = v->nblocks;
	for (b = 0; b < v->nblocks; b++) {
		for (i = 0; i < v->blocks[b].n; i++) {
			const char *k = v->blocks[b].keys[i];

			if (!k)
				continue;
			cr_assert_lt(c->rows, 64);
			snprintf(c->keys[c->rows], 16, "%s", k);
			c->first[c->rows++] = v->blocks[b].data[i * v->dim];
		}
	}
	return 7;
}

static float vcheck_value(const struct vcheck *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->rows; i++) {
		if (strcmp(c->keys[i], key) == 0)
			return c->first[i];
	}
	cr_assert_fail("no row for %s", key);
	return 0;
}

Test(engine, with_vecs_gives_rows_with_their_keys)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct vcheck c = { 0 };
	float v[3];
	char key[16];
	int i;

	for (i = 0; i < 10; i++) {
		v[0] = (float)i;
		v[1] = v[2] = -1;
		snprintf(key, sizeof(key), "n%d", i);
		cr_assert_eq(put_vec(e, C_VEC, key, v, 3), 0);
	}
	cr_assert_eq(del(e, C_VEC, "n3"), 0);
	cr_assert_eq(del(e, C_VEC, "n7"), 0);
	v[0] = 100;
	cr_assert_eq(put_vec(e, C_VEC, "n5", v, 3), 0);
	cr_assert_eq(engine_with_vecs(e, C_VEC, vcheck_fn, &c), 7);
	cr_assert_eq(c.dim, 3);
	cr_assert_eq(c.live, 8);
	cr_assert_eq(c.rows, 8);
	cr_assert_float_eq(vcheck_value(&c, "n5"), 100, 0);
	cr_assert_float_eq(vcheck_value(&c, "n9"), 9, 0);

	cr_assert_eq(engine_checkpoint(e), 0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(engine_with_vecs(e, C_VEC, vcheck_fn, &c), 7);
	cr_assert_eq(c.blocks, 1, "a checkpoint compacts to one block");
	cr_assert_eq(c.rows, 8);
	cr_assert_float_eq(vcheck_value(&c, "n5"), 100, 0);
	cr_assert_float_eq(vcheck_value(&c, "n9"), 9, 0);
	engine_close(e);
	e = eopen(be, "w");
	memset(&c, 0, sizeof(c));
	cr_assert_eq(engine_with_vecs(e, C_VEC, vcheck_fn, &c), 7);
	cr_assert_eq(c.blocks, 1, "a checkpoint loads as one block");
	cr_assert_eq(c.rows, 8);
	cr_assert_float_eq(vcheck_value(&c, "n5"), 100, 0);
	cr_assert_float_eq(vcheck_value(&c, "n0"), 0, 0);
	/* change rows of the mapped block, delete one, add one */
	v[0] = 55;
	cr_assert_eq(put_vec(e, C_VEC, "n5", v, 3), 0);
	cr_assert_eq(del(e, C_VEC, "n0"), 0);
	v[0] = 42;
	cr_assert_eq(put_vec(e, C_VEC, "new", v, 3), 0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(engine_with_vecs(e, C_VEC, vcheck_fn, &c), 7);
	cr_assert_eq(c.live, 8);
	cr_assert_eq(c.rows, 8);
	cr_assert_float_eq(vcheck_value(&c, "n5"), 55, 0);
	cr_assert_float_eq(vcheck_value(&c, "new"), 42, 0);
	/* compacting the loaded block plus new rows, twice */
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n9", v, 3), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(engine_with_vecs(e, C_VEC, vcheck_fn, &c), 7);
	cr_assert_eq(c.blocks, 1);
	cr_assert_eq(c.rows, 8);
	cr_assert_float_eq(vcheck_value(&c, "n9"), 42, 0);
	cr_assert_float_eq(vcheck_value(&c, "n5"), 55, 0);
	/* n0 was deleted from the loaded block: its tombstone still works */
	cr_assert_eq(engine_exists(e, C_VEC, "n0"), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n0", v, 3), 0);
	cr_assert_eq(engine_exists(e, C_VEC, "n0"), 1);
	cr_assert_eq(engine_with_vecs(e, "nothing", vcheck_fn, &c), -ENOENT);
	cr_assert_eq(put_json(e, "docs", "d", "{}"), 0);
	cr_assert_eq(engine_with_vecs(e, "docs", vcheck_fn, &c), -EINVAL);
	engine_close(e);
	backend_close(be);
}

/* --- iteration ------------------------------------------------------------ */

struct order {
	char keys[16][16];
	int n;
	int stop; /* return 99 after this many (0: never) */
};

static int order_fn(void *arg, const char *key, enum engine_type type,
		    const void *data, size_t len)
{
	struct order *o = arg;

	snprintf(o->keys[o->n++], 16, "%s", key);
	return o->n == o->stop ? 99 : 0;
}

Test(engine, foreach_yields_keys_in_memcmp_order)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *in[] = { "b", "\xc3\xa9t\xc3\xa9", "a", "Z", "ab", "a0" };
	const char *want[] = { "Z", "a", "a0", "ab", "b" };
	struct order o = { 0 };
	size_t i;

	for (i = 0; i < 6; i++)
		cr_assert_eq(put_json(e, "c", in[i], "{}"), 0);
	cr_assert_eq(del(e, "c", "a0"), 0);
	cr_assert_eq(engine_foreach(e, "c", order_fn, &o), 0);
	cr_assert_eq(o.n, 5);
	cr_assert_str_eq(o.keys[0], "Z");
	cr_assert_str_eq(o.keys[4], "\xc3\xa9t\xc3\xa9");
	cr_assert_eq(put_json(e, "c", "a0", "{}"), 0);
	memset(&o, 0, sizeof(o));
	o.stop = 5;
	cr_assert_eq(engine_foreach(e, "c", order_fn, &o), 99);
	cr_assert_eq(o.n, 5);
	for (i = 0; i < 5; i++)
		cr_assert_str_eq(o.keys[i], want[i]);
	engine_close(e);
	backend_close(be);
}

static int coll_fn(void *arg, const char *coll)
{
	struct order *o = arg;

	snprintf(o->keys[o->n++], 16, "%s", coll);
	return 0;
}

Test(engine, collections_lists_non_empty_in_name_order)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct order o = { 0 };

	cr_assert_eq(put_json(e, "zeta", "k", "{}"), 0);
	cr_assert_eq(put_json(e, "alpha", "k", "{}"), 0);
	cr_assert_eq(put_json(e, "mid", "k", "{}"), 0);
	cr_assert_eq(del(e, "mid", "k"), 0);
	cr_assert_eq(engine_collections(e, coll_fn, &o), 0);
	cr_assert_eq(o.n, 2);
	cr_assert_str_eq(o.keys[0], "alpha");
	cr_assert_str_eq(o.keys[1], "zeta");
	engine_close(e);
	backend_close(be);
}

/* --- store-level behaviour ------------------------------------------------ */

Test(engine, read_only_refuses_writes_and_writes_nothing)
{
	struct backend *be = mem();
	struct engine_opts o = { .read_only = 1 };
	struct engine *e;

	cr_assert_eq(engine_open(be, &o, &e), 0);
	cr_assert_eq(count_objects(be, ""), 0);
	cr_assert_eq(put_json(e, "c", "k", "{}"), -EROFS);
	cr_assert_eq(engine_checkpoint(e), -EROFS);
	engine_close(e);
	backend_close(be);
}

Test(engine, newer_format_is_eproto_and_missing_format_is_euclean)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char newer[] = "{\"lodefs\":\"store\",\"format\":99}\n";

	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	engine_close(e);
	cr_assert_eq(backend_put(be, "lodefs.format", newer, sizeof(newer) - 1,
				 NULL),
		     0);
	cr_assert_eq(engine_open(be, NULL, &e), -EPROTO);
	cr_assert_eq(backend_del(be, "lodefs.format"), 0);
	cr_assert_eq(engine_open(be, NULL, &e), -EUCLEAN);
	backend_close(be);
}

Test(engine, invalid_writer_id_rejected)
{
	struct backend *be = mem();
	struct engine_opts o = { .writer = "Has Space" };
	struct engine *e;

	cr_assert_eq(engine_open(be, &o, &e), -EINVAL);
	o.writer = "0123456789abcdef0123456789abcdef0";
	cr_assert_eq(engine_open(be, &o, &e), -EINVAL);
	backend_close(be);
}

Test(engine, automatic_checkpoint_after_n_segments)
{
	struct backend *be = mem();
	struct engine_opts o = { .writer = "w", .checkpoint_segments = 3 };
	struct engine *e;
	struct engine_stats st;

	cr_assert_eq(engine_open(be, &o, &e), 0);
	cr_assert_eq(put_json(e, "c", "1", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "2", "{}"), 0);
	cr_assert_eq(count_objects(be, "ckpt/"), 0);
	cr_assert_eq(put_json(e, "c", "3", "{}"), 0);
	cr_assert_gt(count_objects(be, "ckpt/"), 0);
	cr_assert_eq(count_objects(be, "log/"), 0);
	engine_get_stats(e, &st);
	cr_assert_str_eq(st.writer, "w");
	cr_assert_eq(st.commits, 3);
	cr_assert_eq(st.keys, 3);
	cr_assert_gt(st.last_commit_hlc, 0);
	cr_assert_gt(st.mem_bytes, 0);
	engine_close(e);
	backend_close(be);
}

static char local_dir[] = "/tmp/lodefs-engine-XXXXXX";

/* Runs even when an assertion ends the test early. */
static void local_dir_remove(void)
{
	char cmd[128];

	if (strchr(local_dir, 'X'))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", local_dir);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", local_dir);
}

Test(engine, local_backend_open_maps_checkpoint, .fini = local_dir_remove)
{
	float v[2] = { 3, 4 };
	struct backend *be;
	struct engine *e;

	cr_assert_not_null(mkdtemp(local_dir));
	cr_assert_eq(backend_local_open(local_dir, &be), 0);
	e = eopen(be, "w");
	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_json(e, C_DATA, "n4", "{}"), 0);
	engine_close(e);
	e = eopen(be, "w");
	check_some_plus(e, 1);
	assert_value(e, C_DATA, "n4", "{}");
	/* vectors of the mapped checkpoint move into the next one */
	cr_assert_eq(put_vec(e, C_VEC, "n2", v, 2), 0);
	cr_assert_eq(del(e, C_VEC, "n1"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n1", v, 2), 0);
	cr_assert_eq(engine_count(e, C_VEC), 2);
	engine_close(e);
	e = eopen(be, "w");
	cr_assert_eq(engine_count(e, C_VEC), 2);
	assert_value(e, C_DATA, "n4", "{}");
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	backend_close(be);
}

/* --- threads -------------------------------------------------------------- */

struct pair {
	char a[32];
	char b[32];
	int got;
};

static int pair_fn(void *arg, const char *key, enum engine_type type,
		   const void *data, size_t len)
{
	struct pair *p = arg;

	snprintf(strcmp(key, "a") == 0 ? p->a : p->b, 32, "%.*s", (int)len,
		 (const char *)data);
	p->got++;
	return 0;
}

struct reader {
	struct engine *e;
	_Atomic int *stop;
	int torn;
	int reads;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!*r->stop) {
		struct pair p = { 0 };

		engine_foreach(r->e, "c", pair_fn, &p);
		if (p.got == 2 && strcmp(p.a, p.b) != 0)
			r->torn++;
		r->reads++;
	}
	return NULL;
}

Test(engine, readers_never_see_half_a_batch)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct reader r[3];
	pthread_t t[3];
	_Atomic int stop = 0;
	char json[32];
	int i;

	for (i = 0; i < 3; i++) {
		r[i] = (struct reader){ .e = e, .stop = &stop };
		cr_assert_eq(pthread_create(&t[i], NULL, reader_main, &r[i]),
			     0);
	}
	for (i = 0; i < 300; i++) {
		struct engine_batch *b = engine_batch_new();

		snprintf(json, sizeof(json), "{\"v\":%d}", i);
		engine_batch_put_json(b, "c", "a", json, strlen(json));
		engine_batch_put_json(b, "c", "b", json, strlen(json));
		cr_assert_eq(engine_commit(e, b), 0);
		engine_batch_free(b);
		if (i % 100 == 99)
			cr_assert_eq(engine_checkpoint(e), 0);
	}
	stop = 1;
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].torn, 0);
	}
	engine_close(e);
	backend_close(be);
}

/* --- scale ---------------------------------------------------------------- */

Test(engine, hundred_thousand_keys_commit_checkpoint_reopen, .timeout = 300)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_batch *b = engine_batch_new();
	struct engine_stats st;
	char key[32], json[64];
	float v[8];
	void *data;
	size_t len;
	int i;

	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "node-%06d", i);
		snprintf(json, sizeof(json), "{\"i\":%d}", i);
		cr_assert_eq(engine_batch_put_json(b, C_DATA, key, json,
						   strlen(json)),
			     0);
		v[0] = (float)i;
		cr_assert_eq(engine_batch_put_vec(b, C_VEC, key, v, 8), 0);
	}
	cr_assert_eq(engine_commit(e, b), 0, "%s", engine_last_error());
	engine_batch_free(b);
	cr_assert_eq(engine_count(e, C_DATA), 100000);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_get_stats(e, &st);
	cr_assert_gt(st.mem_bytes, 100000 * (8 * sizeof(float) + 8));
	cr_assert_lt(st.mem_bytes, 200u << 20, "%llu",
		     (unsigned long long)st.mem_bytes);
	engine_close(e);
	e = eopen(be, "w");
	cr_assert_eq(engine_count(e, C_DATA), 100000);
	cr_assert_eq(engine_count(e, C_VEC), 100000);
	engine_get_stats(e, &st);
	cr_assert_eq(st.keys, 200000);
	cr_assert_lt(st.mem_bytes, 200u << 20, "%llu",
		     (unsigned long long)st.mem_bytes);
	assert_value(e, C_DATA, "node-054321", "{\"i\":54321}");
	cr_assert_eq(engine_get(e, C_VEC, "node-099999", NULL, &data, &len), 0);
	cr_assert_float_eq(((float *)data)[0], 99999, 0);
	free(data);
	engine_close(e);
	backend_close(be);
}
