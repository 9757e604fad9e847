/* test_engine.c - the durable key-value engine: behaviours and recovery. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <xxhash.h>

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

struct each_seen {
	size_t calls, stop_at;
	enum engine_type type[80];
	float first[80];
	size_t len[80];
};

static int each_fn(void *arg, size_t i, enum engine_type type, const void *data,
		   size_t len)
{
	struct each_seen *s = arg;

	cr_assert_lt(i, 80);
	cr_assert_eq(i, s->calls, "keys out of order");
	s->calls++;
	s->type[i] = type;
	s->len[i] = len;
	if (type == ENGINE_NONE)
		cr_assert_null(data);
	else
		memcpy(&s->first[i], data, sizeof(float));
	return i + 1 == s->stop_at ? 7 : 0;
}

/*
 * engine_get_each: values in place, in order, absent and deleted keys
 * said so, more keys than one batch of lookups, from a checkpoint too.
 */
Test(engine, get_each_reads_in_place_in_order)
{
	static struct each_seen s;
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float a[3] = { 1.5f, -2.0f, 3.25f }, b[3] = { -7.0f, 0, 1 };
	const char *keys[80];
	char names[80][8];
	size_t i, round;

	for (i = 0; i < 80; i++) {
		snprintf(names[i], sizeof(names[i]), "k%zu", i);
		keys[i] = names[i];
		a[0] = (float)i;
		/* every third key never written, every fifth deleted */
		if (i % 3 == 0)
			continue;
		cr_assert_eq(put_vec(e, C_VEC, names[i], a, 3), 0);
		if (i % 5 == 0)
			cr_assert_eq(del(e, C_VEC, names[i]), 0);
	}
	cr_assert_eq(put_json(e, C_DATA, "j", "{\"x\": 1}"), 0);
	for (round = 0; round < 2; round++) {
		memset(&s, 0, sizeof(s));
		cr_assert_eq(engine_get_each(e, C_VEC, keys, 80, each_fn, &s),
			     0);
		cr_assert_eq(s.calls, 80);
		for (i = 0; i < 80; i++) {
			if (i % 3 == 0 || i % 5 == 0) {
				cr_assert_eq(s.type[i], ENGINE_NONE, "k%zu", i);
				cr_assert_eq(s.len[i], 0);
				continue;
			}
			cr_assert_eq(s.type[i], ENGINE_VEC, "k%zu", i);
			cr_assert_eq(s.len[i], sizeof(a));
			cr_assert(s.first[i] == (float)i, "k%zu", i);
		}
		/* the same from the checkpoint's rows */
		cr_assert_eq(engine_checkpoint(e), 0);
		engine_close(e);
		e = eopen(be, "w");
	}
	/* fn's nonzero return stops the reads and is returned */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	cr_assert_eq(engine_get_each(e, C_VEC, keys, 80, each_fn, &s), 7);
	cr_assert_eq(s.calls, 2);
	/* another type, another collection, an unknown collection */
	memset(&s, 0, sizeof(s));
	keys[0] = "j";
	cr_assert_eq(engine_get_each(e, C_DATA, keys, 1, each_fn, &s), 0);
	cr_assert_eq(s.type[0], ENGINE_JSON);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(engine_get_each(e, "nope", keys, 2, each_fn, &s), 0);
	cr_assert_eq(s.calls, 2);
	cr_assert_eq(s.type[1], ENGINE_NONE);
	(void)b;
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

Test(engine, batch_rollback_drops_records_and_failure_after_the_mark)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_batch *b = engine_batch_new();
	struct engine_batch_mark m;

	cr_assert_eq(engine_batch_put_json(b, C_DATA, "keep", "{\"v\":1}", 7),
		     0);
	engine_batch_mark(b, &m);
	cr_assert_eq(engine_batch_put_blob(b, "content", "gone", "xy", 2), 0);
	cr_assert_eq(engine_batch_put_json(b, C_DATA, "bad", "{\"v\":", 5),
		     -EINVAL);
	cr_assert_eq(engine_batch_count(b), 2);
	engine_batch_rollback(b, &m);
	cr_assert_eq(engine_batch_count(b), 1);
	cr_assert_eq(engine_batch_bytes(b), 7);
	/* the batch goes on from the mark and commits without the failure */
	cr_assert_eq(engine_batch_del(b, C_DATA, "other"), 0);
	cr_assert_eq(engine_commit(e, b), 0, "%s", engine_last_error());
	assert_value(e, C_DATA, "keep", "{\"v\":1}");
	assert_value(e, "content", "gone", NULL);
	assert_value(e, C_DATA, "bad", NULL);
	engine_batch_free(b);
	/* a failure before the mark survives the rollback */
	b = engine_batch_new();
	cr_assert_eq(engine_batch_put_json(b, C_DATA, "bad", "[1]", 3),
		     -EINVAL);
	engine_batch_mark(b, &m);
	cr_assert_eq(engine_batch_put_json(b, C_DATA, "x", "{}", 2), 0);
	engine_batch_rollback(b, &m);
	assert_refused(be, e, b);
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
	/* keys, values, vec-0, manifest */
	cr_assert_eq(count_objects(be, "ckpt/"), 4);
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
	cr_assert_eq(count_objects(be, "ckpt/"), 4);
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
	/* keys, values, manifest */
	cr_assert_eq(count_objects(be, "ckpt/"), 3);
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
		       enum engine_type type, const void *data, size_t len,
		       unsigned flags)
{
	struct seen *s = arg;
	size_t n = strlen(s->log);

	if (type == ENGINE_NONE)
		cr_assert_null(data);
	cr_assert_eq(flags & ~(ENGINE_OBS_CHECKPOINT | ENGINE_OBS_REMOTE), 0);
	/* calls for the loaded checkpoint are marked "ckpt:" */
	if (flags & ENGINE_OBS_CHECKPOINT)
		n += (size_t)snprintf(s->log + n, sizeof(s->log) - n, "ckpt:");
	/* changes other writers made, after open, are marked "remote:" */
	if (flags & ENGINE_OBS_REMOTE)
		n += (size_t)snprintf(s->log + n, sizeof(s->log) - n,
				      "remote:");
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

	/*
	 * At open: the checkpoint's live keys, flagged, in iteration order
	 * (c was emptied and filled again after v was created, so v comes
	 * first); then the replayed records, not flagged.
	 */
	s.log[0] = '\0';
	s.n = 0;
	cr_assert_eq(engine_open_observed(be, &o, observe_fn, &s, &e), 0);
	cr_assert_eq(s.n, 4, "%s", s.log);
	cr_assert_str_eq(s.log, "ckpt:put v a 8\n"
				"ckpt:put c kept {}\n"
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
	cr_assert_str_eq(s.log, "remote:put c new {}\nremote:del c old 0\n");
	/* a checkpoint by the other writer brings nothing new */
	cr_assert_eq(engine_checkpoint(w), 0);
	s.log[0] = '\0';
	cr_assert_eq(engine_refresh(r), 0);
	cr_assert_str_eq(s.log, "");
	assert_value(r, "c", "new", "{}");
	/* our own commit is not remote; what our checkpoint catches up on is */
	cr_assert_eq(put_json(r, "c", "ours", "{}"), 0);
	cr_assert_eq(put_json(w, "c", "theirs", "{}"), 0);
	cr_assert_eq(engine_checkpoint(r), 0);
	cr_assert_str_eq(s.log, "put c ours {}\nremote:put c theirs {}\n");
	engine_close(r);
	engine_close(w);
	backend_close(be);
}

/* --- checkpoint extensions ------------------------------------------------ */

struct ext_log {
	char log[4096];	   /* loads and observer calls, in call order */
	const char *bytes; /* what save emits, in two pieces */
	int save_rc;	   /* what save returns */
	int saves;
	int loads;
};

static int ext_save(void *arg, engine_ext_emit_fn *emit, void *ctx)
{
	struct ext_log *x = arg;
	size_t n = strlen(x->bytes);

	x->saves++;
	if (x->save_rc)
		return x->save_rc;
	cr_assert_eq(emit(ctx, x->bytes, n / 2), 0);
	cr_assert_eq(emit(ctx, x->bytes + n / 2, n - n / 2), 0);
	return 0;
}

static int ext_load(void *arg, const void *data, size_t len)
{
	struct ext_log *x = arg;
	size_t n = strlen(x->log);

	x->loads++;
	snprintf(x->log + n, sizeof(x->log) - n, "load %.*s\n", (int)len,
		 (const char *)data);
	return 0;
}

static void ext_observe(void *arg, const char *coll, const char *key,
			enum engine_type type, const void *data, size_t len,
			unsigned flags)
{
	struct ext_log *x = arg;
	size_t n = strlen(x->log);

	snprintf(x->log + n, sizeof(x->log) - n, "%s%s %s\n",
		 flags & ENGINE_OBS_CHECKPOINT ? "ckpt:" : "",
		 type == ENGINE_NONE ? "del" : "put", key);
}

/* Opens writer w with one extension `name` logging into x. */
static struct engine *xopen(struct backend *be, const char *w, const char *name,
			    struct ext_log *x)
{
	struct engine_ext ext = {
		.name = name, .save = ext_save, .load = ext_load, .arg = x
	};
	struct engine_opts o = { .writer = w, .exts = &ext, .n_exts = 1 };
	struct engine *e;
	int rc = engine_open_observed(be, &o, ext_observe, x, &e);

	cr_assert_eq(rc, 0, "engine_open: %d %s", rc, engine_last_error());
	return e;
}

static bool has_object(struct backend *be, const char *prefix, const char *part)
{
	struct keys k = list(be, prefix);
	bool found = false;
	size_t i;

	for (i = 0; i < k.n; i++)
		found = found || strstr(k.v[i], part);
	keys_free(&k);
	return found;
}

Test(engine, extension_saved_at_checkpoint_is_loaded_at_reopen_first)
{
	struct backend *be = mem();
	struct ext_log x = { .bytes = "index-bytes" };
	struct reports r = { 0 };
	struct engine *e, *v;
	char *obj;
	void *d;
	size_t n;

	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(x.loads, 0); /* a new store has nothing to load */
	cr_assert_eq(put_json(e, "c", "k1", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "k2", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(x.saves, 1);
	cr_assert_eq(put_json(e, "c", "k3", "{}"), 0);
	cr_assert_str_eq(x.log, "put k1\nput k2\nput k3\n");
	engine_close(e);
	obj = find_object(be, "ckpt/", "/ext-bm25");
	cr_assert_eq(backend_get(be, obj, &d, &n), 0);
	cr_assert_eq(n, 11);
	cr_assert_arr_eq(d, "index-bytes", 11);
	free(d);
	free(obj);

	/* load first, then the checkpoint's keys (flagged), then replay */
	x.log[0] = '\0';
	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(x.loads, 1);
	cr_assert_str_eq(x.log, "load index-bytes\n"
				"ckpt:put k1\n"
				"ckpt:put k2\n"
				"put k3\n");
	/* commits and refreshes are not flagged */
	x.log[0] = '\0';
	v = eopen(be, "v");
	cr_assert_eq(put_json(v, "c", "k4", "{}"), 0);
	engine_close(v);
	cr_assert_eq(engine_refresh(e), 0);
	cr_assert_eq(del(e, "c", "k1"), 0);
	cr_assert_str_eq(x.log, "put k4\ndel k1\n");
	engine_close(e);
	cr_assert_eq(engine_fsck(be, report_fn, &r), 0, "%s", r.text);
	cr_assert_eq(r.warnings, 0, "%s", r.text);
	backend_close(be);
}

Test(engine, extension_whose_save_fails_is_left_out_of_the_checkpoint)
{
	struct backend *be = mem();
	struct ext_log x = { .bytes = "never", .save_rc = -1 };
	struct engine_ext nosave = { .name = "nosave",
				     .load = ext_load,
				     .arg = &x };
	struct engine_opts o = { .writer = "w", .exts = &nosave, .n_exts = 1 };
	struct engine *e;

	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(x.saves, 1);
	cr_assert(has_object(be, "ckpt/", "/manifest"));
	cr_assert_not(has_object(be, "ckpt/", "/ext-"));
	engine_close(e);
	x.log[0] = '\0';
	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(x.loads, 0);
	cr_assert_str_eq(x.log, "ckpt:put k\n");
	engine_close(e);
	/* an extension without save is never written either */
	cr_assert_eq(engine_open(be, &o, &e), 0);
	cr_assert_eq(put_json(e, "c", "k2", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_not(has_object(be, "ckpt/", "/ext-"));
	engine_close(e);
	cr_assert_eq(x.loads, 0);
	backend_close(be);
}

Test(engine, damaged_or_missing_extension_is_skipped_and_fsck_warns)
{
	struct backend *be = mem();
	struct ext_log x = { .bytes = "index-bytes" };
	struct reports r = { 0 };
	struct engine *e;
	char *obj;

	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	obj = find_object(be, "ckpt/", "/ext-bm25");
	mangle(be, obj, SIZE_MAX, 3);
	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(x.loads, 0);
	assert_value(e, "c", "k", "{}");
	engine_close(e);
	cr_assert_eq(engine_fsck(be, report_fn, &r), 0, "%s", r.text);
	cr_assert_eq(r.warnings, 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, obj), "%s", r.text);
	/* and gone altogether */
	cr_assert_eq(backend_del(be, obj), 0);
	e = xopen(be, "w", "bm25", &x);
	cr_assert_eq(x.loads, 0);
	assert_value(e, "c", "k", "{}");
	engine_close(e);
	memset(&r, 0, sizeof(r));
	cr_assert_eq(engine_fsck(be, report_fn, &r), 0, "%s", r.text);
	cr_assert_eq(r.warnings, 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, "missing"), "%s", r.text);
	free(obj);
	backend_close(be);
}

Test(engine, extension_is_loaded_only_under_its_own_name)
{
	struct backend *be = mem();
	struct ext_log x = { .bytes = "aaa-bytes" };
	struct engine *e;

	e = xopen(be, "w", "aaa", &x);
	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = xopen(be, "w", "bbb", &x);
	cr_assert_eq(x.loads, 0);
	engine_close(e);
	e = eopen(be, "w"); /* no extensions at all: fine */
	engine_close(e);
	e = xopen(be, "w", "aaa", &x);
	cr_assert_eq(x.loads, 1);
	engine_close(e);
	backend_close(be);
}

Test(engine, extension_is_not_loaded_when_checkpoints_are_merged)
{
	struct backend *sa = mem(), *sb = mem(), *be = mem();
	struct ext_log x = { .bytes = "index-bytes" };
	struct engine *e;

	/* two checkpoints written without seeing each other */
	e = xopen(sa, "a", "bm25", &x);
	cr_assert_eq(put_json(e, "c", "ka", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	pause_ms(3);
	e = xopen(sb, "b", "bm25", &x);
	cr_assert_eq(put_json(e, "c", "kb", "{}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	copy_all(sa, be);
	copy_all(sb, be);
	x.log[0] = '\0';
	e = xopen(be, "c", "bm25", &x);
	cr_assert_eq(x.loads, 0);
	cr_assert_str_eq(x.log, "ckpt:put ka\nckpt:put kb\n");
	engine_close(e);
	backend_close(sa);
	backend_close(sb);
	backend_close(be);
}

Test(engine, invalid_extensions_rejected)
{
	struct backend *be = mem();
	const char *bad[] = { "Bad", "", "has-dash",
			      "0123456789abcdef0123456789abcdef0" };
	struct engine_ext x[2] = { { .name = "ok_1" }, { .name = "ok_1" } };
	struct engine_opts o = { .writer = "w", .exts = x, .n_exts = 2 };
	struct engine *e;
	size_t i;

	cr_assert_eq(engine_open(be, &o, &e), -EINVAL); /* twice */
	o.n_exts = 1;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		x[0].name = bad[i];
		cr_assert_eq(engine_open(be, &o, &e), -EINVAL, "%s", bad[i]);
	}
	x[0].name = NULL;
	cr_assert_eq(engine_open(be, &o, &e), -EINVAL);
	o.exts = NULL;
	cr_assert_eq(engine_open(be, &o, &e), -EINVAL);
	x[0].name = "0123456789abcdef0123456789abcde_";
	o.exts = x;
	cr_assert_eq(engine_open(be, &o, &e), 0);
	engine_close(e);
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

/* Asserts that foreach yields exactly the keys of want, in that order. */
static void assert_order(struct engine *e, const char *coll,
			 const char *const *want, int n)
{
	struct order o = { 0 };
	int i;

	cr_assert_eq(engine_foreach(e, coll, order_fn, &o), 0);
	cr_assert_eq(o.n, n, "%d keys, want %d", o.n, n);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(o.keys[i], want[i], "key %d", i);
}

Test(engine, foreach_yields_keys_in_insertion_order_not_sorted)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *want[] = { "b", "a", "c", "\xc3\xa9t\xc3\xa9", "Z", "a0" };
	struct engine_batch *b = engine_batch_new();
	struct order o = { 0 };
	int i;

	cr_assert_eq(put_json(e, "c", "b", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "a", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "c", "{}"), 0);
	/* within one batch, records keep their order too */
	for (i = 3; i < 6; i++)
		engine_batch_put_json(b, "c", want[i], "{}", 2);
	cr_assert_eq(engine_commit(e, b), 0);
	engine_batch_free(b);
	assert_order(e, "c", want, 6);
	/* a non-zero return stops early */
	o.stop = 2;
	cr_assert_eq(engine_foreach(e, "c", order_fn, &o), 99);
	cr_assert_eq(o.n, 2);
	cr_assert_str_eq(o.keys[1], "a");
	engine_close(e);
	backend_close(be);
}

Test(engine, reput_keeps_place_and_delete_then_put_moves_to_the_end)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *w1[] = { "a", "b", "c" };
	const char *w2[] = { "a", "c", "b" };
	const char *w3[] = { "c", "b", "x", "a", "y" };
	const char *w4[] = { "z" };
	struct engine_batch *b;

	cr_assert_eq(put_json(e, "c", "a", "{\"v\":1}"), 0);
	cr_assert_eq(put_json(e, "c", "b", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "c", "{}"), 0);
	cr_assert_eq(put_json(e, "c", "a", "{\"v\":2}"), 0);
	assert_order(e, "c", w1, 3);
	cr_assert_eq(del(e, "c", "b"), 0);
	cr_assert_eq(put_json(e, "c", "b", "{}"), 0);
	assert_order(e, "c", w2, 3);
	/* inside one batch: x re-put keeps its place, a deleted and put moves */
	b = engine_batch_new();
	engine_batch_put_json(b, "c", "x", "{}", 2);
	engine_batch_put_json(b, "c", "a", "{\"v\":3}", 7);
	engine_batch_del(b, "c", "a");
	engine_batch_put_json(b, "c", "x", "{\"v\":4}", 7);
	engine_batch_put_json(b, "c", "a", "{\"v\":5}", 7);
	engine_batch_put_json(b, "c", "y", "{}", 2);
	cr_assert_eq(engine_commit(e, b), 0);
	engine_batch_free(b);
	assert_order(e, "c", w3, 5);
	assert_value(e, "c", "x", "{\"v\":4}");
	/* a drop forgets every place */
	b = engine_batch_new();
	engine_batch_drop(b, "c");
	engine_batch_put_json(b, "c", "z", "{}", 2);
	cr_assert_eq(engine_commit(e, b), 0);
	engine_batch_free(b);
	assert_order(e, "c", w4, 1);
	engine_close(e);
	backend_close(be);
}

Test(engine, order_survives_checkpoint_reopen_and_replay)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *w1[] = { "j2", "v1", "b1", "j1", "v2" };
	const char *w2[] = { "j2", "b1", "v2", "j3", "v1", "j1" };
	const char *v1[] = { "n3", "n1", "n2" };
	const char *v2[] = { "n1", "n2", "n4", "n3" };
	float v[2] = { 1, 2 };
	int i;

	/* one collection holding all three types, created interleaved */
	cr_assert_eq(put_json(e, "c", "j2", "{}"), 0);
	cr_assert_eq(put_vec(e, "c", "v1", v, 2), 0);
	cr_assert_eq(put_blob(e, "c", "b1", "x", 1), 0);
	cr_assert_eq(put_json(e, "c", "j1", "{}"), 0);
	cr_assert_eq(put_vec(e, "c", "v2", v, 2), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n3", v, 2), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n1", v, 2), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n2", v, 2), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	assert_order(e, "c", w1, 5);
	assert_order(e, C_VEC, v1, 3);
	engine_close(e);
	e = eopen(be, "w");
	assert_order(e, "c", w1, 5);
	assert_order(e, C_VEC, v1, 3);
	/* changes after the checkpoint come back from the log */
	cr_assert_eq(put_json(e, "c", "j2", "{\"v\":2}"), 0);
	cr_assert_eq(del(e, "c", "v1"), 0);
	cr_assert_eq(put_json(e, "c", "j3", "{}"), 0);
	cr_assert_eq(put_vec(e, "c", "v1", v, 2), 0);
	cr_assert_eq(del(e, "c", "j1"), 0);
	cr_assert_eq(put_json(e, "c", "j1", "{}"), 0);
	cr_assert_eq(del(e, C_VEC, "n3"), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n4", v, 2), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n3", v, 2), 0);
	cr_assert_eq(put_vec(e, C_VEC, "n1", v, 2), 0);
	assert_order(e, "c", w2, 6);
	assert_order(e, C_VEC, v2, 4);
	engine_close(e);
	for (i = 0; i < 2; i++) {
		e = eopen(be, "w");
		assert_order(e, "c", w2, 6);
		assert_order(e, C_VEC, v2, 4);
		cr_assert_eq(engine_checkpoint(e), 0); /* the second round */
		assert_order(e, "c", w2, 6);
		engine_close(e);
	}
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	backend_close(be);
}

static int coll_fn(void *arg, const char *coll)
{
	struct order *o = arg;

	snprintf(o->keys[o->n++], 16, "%s", coll);
	return 0;
}

static void assert_colls(struct engine *e, const char *const *want, int n)
{
	struct order o = { 0 };
	int i;

	cr_assert_eq(engine_collections(e, coll_fn, &o), 0);
	cr_assert_eq(o.n, n, "%d collections, want %d", o.n, n);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(o.keys[i], want[i], "collection %d", i);
}

Test(engine, collections_come_in_creation_order)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *w1[] = { "zeta", "alpha", "mid" };
	const char *w2[] = { "zeta", "alpha" };
	const char *w3[] = { "alpha", "zeta", "mid" };
	float v[1] = { 1 };

	cr_assert_eq(put_json(e, "zeta", "k", "{}"), 0);
	cr_assert_eq(put_json(e, "alpha", "k", "{}"), 0);
	cr_assert_eq(put_json(e, "alpha", "k2", "{}"), 0);
	cr_assert_eq(put_vec(e, "mid", "k", v, 1), 0);
	assert_colls(e, w1, 3);
	/* emptied: not listed */
	cr_assert_eq(del(e, "mid", "k"), 0);
	assert_colls(e, w2, 2);
	/* its first key gone, alpha keeps its place */
	cr_assert_eq(del(e, "alpha", "k"), 0);
	assert_colls(e, w2, 2);
	/* emptied and filled again: placed anew, at the end */
	cr_assert_eq(del(e, "zeta", "k"), 0);
	cr_assert_eq(put_json(e, "zeta", "k", "{}"), 0);
	cr_assert_eq(put_vec(e, "mid", "k", v, 1), 0);
	assert_colls(e, w3, 3);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "w");
	assert_colls(e, w3, 3);
	engine_close(e);
	backend_close(be);
}

/* Copies the format file and the segments of writer `w` between stores. */
static void copy_segs(struct backend *from, struct backend *to, const char *w)
{
	char prefix[64];
	struct keys k;
	size_t i;

	snprintf(prefix, sizeof(prefix), "log/%s/", w);
	k = list(from, prefix);
	k.v = realloc(k.v, (k.n + 1) * sizeof(*k.v));
	k.v[k.n++] = strdup("lodefs.format");
	for (i = 0; i < k.n; i++) {
		void *d;
		size_t n;

		cr_assert_eq(backend_get(from, k.v[i], &d, &n), 0);
		cr_assert_eq(backend_put(to, k.v[i], d, n, NULL), 0);
		free(d);
	}
	keys_free(&k);
}

Test(engine, two_writers_converge_to_one_order_in_any_arrival_order)
{
	struct backend *be = mem(), *x = mem(), *y = mem(), *z = mem();
	struct engine *a = eopen(be, "a"), *b = eopen(be, "b"), *r;
	const char *want[] = { "a1", "shared", "d", "b1", "a2", "b2", "k" };
	const char *colls[] = { "c", "ca", "cb" };
	struct engine_batch *t;

	/* a creates keys; b sees them, then both work without refreshing */
	t = engine_batch_new();
	engine_batch_put_json(t, "c", "a1", "{}", 2);
	engine_batch_put_json(t, "c", "shared", "{\"by\":\"a\"}", 10);
	engine_batch_put_json(t, "c", "d", "{}", 2);
	cr_assert_eq(engine_commit(a, t), 0);
	engine_batch_free(t);
	pause_ms(3);
	cr_assert_eq(engine_refresh(b), 0);
	t = engine_batch_new();
	engine_batch_put_json(t, "c", "shared", "{\"by\":\"b\"}", 10);
	engine_batch_put_json(t, "c", "b1", "{}", 2);
	cr_assert_eq(engine_commit(b, t), 0);
	engine_batch_free(t);
	pause_ms(3);
	/* a deletes d while b, not knowing, updates it later */
	t = engine_batch_new();
	engine_batch_del(t, "c", "d");
	engine_batch_put_json(t, "c", "a2", "{}", 2);
	engine_batch_put_json(t, "c", "shared", "{\"by\":\"a2\"}", 11);
	cr_assert_eq(engine_commit(a, t), 0);
	engine_batch_free(t);
	cr_assert_eq(put_json(a, "ca", "k", "{}"), 0);
	pause_ms(3);
	t = engine_batch_new();
	engine_batch_put_json(t, "c", "d", "{\"by\":\"b\"}", 10);
	engine_batch_put_json(t, "c", "b2", "{}", 2);
	cr_assert_eq(engine_commit(b, t), 0);
	engine_batch_free(t);
	cr_assert_eq(put_json(b, "cb", "k", "{}"), 0);
	pause_ms(3);
	/* both create k without seeing each other: the later one wins */
	cr_assert_eq(put_json(a, "c", "k", "{\"by\":\"a\"}"), 0);
	pause_ms(3);
	cr_assert_eq(put_json(b, "c", "k", "{\"by\":\"b\"}"), 0);

	/* everything present: plain replay in HLC order */
	r = eopen(be, "r");
	assert_order(r, "c", want, 7);
	assert_colls(r, colls, 3);
	assert_value(r, "c", "d", "{\"by\":\"b\"}");
	assert_value(r, "c", "shared", "{\"by\":\"a2\"}");
	engine_close(r);

	/* b's segments first, a's arrive late and are merged by a refresh */
	copy_segs(be, x, "b");
	r = eopen(x, "r");
	copy_segs(be, x, "a");
	cr_assert_eq(engine_refresh(r), 0);
	assert_order(r, "c", want, 7);
	assert_colls(r, colls, 3);
	engine_close(r);

	/* the other way round */
	copy_segs(be, y, "a");
	r = eopen(y, "r");
	copy_segs(be, y, "b");
	cr_assert_eq(engine_refresh(r), 0);
	assert_order(r, "c", want, 7);
	assert_colls(r, colls, 3);
	engine_close(r);

	/* b's work checkpointed before a's segments arrive, then reopened */
	copy_segs(be, z, "b");
	r = eopen(z, "r");
	cr_assert_eq(engine_checkpoint(r), 0);
	engine_close(r);
	copy_segs(be, z, "a");
	r = eopen(z, "r");
	assert_order(r, "c", want, 7);
	assert_colls(r, colls, 3);
	cr_assert_eq(engine_checkpoint(r), 0);
	engine_close(r);
	r = eopen(z, "r");
	assert_order(r, "c", want, 7);
	engine_close(r);

	/* and the writers themselves, once refreshed */
	cr_assert_eq(engine_refresh(a), 0);
	cr_assert_eq(engine_refresh(b), 0);
	assert_order(a, "c", want, 7);
	assert_order(b, "c", want, 7);
	assert_colls(a, colls, 3);
	engine_close(a);
	engine_close(b);
	backend_close(x);
	backend_close(y);
	backend_close(z);
	backend_close(be);
}

/* A model of one collection: live keys in insertion order, and values. */
struct model {
	int keys[400];
	int vals[400];
	int n;
};

static int model_find(const struct model *m, int k)
{
	int i;

	for (i = 0; i < m->n; i++) {
		if (m->keys[i] == k)
			return i;
	}
	return -1;
}

static void model_del(struct model *m, int k)
{
	int i = model_find(m, k);

	if (i < 0)
		return;
	memmove(&m->keys[i], &m->keys[i + 1], (m->n - i - 1) * sizeof(int));
	memmove(&m->vals[i], &m->vals[i + 1], (m->n - i - 1) * sizeof(int));
	m->n--;
}

struct model_walk {
	const struct model *m;
	int i;
};

static int model_walk_fn(void *arg, const char *key, enum engine_type type,
			 const void *data, size_t len)
{
	struct model_walk *w = arg;
	char want[32];

	cr_assert_lt(w->i, w->m->n, "extra key %s", key);
	snprintf(want, sizeof(want), "k%d", w->m->keys[w->i]);
	cr_assert_str_eq(key, want, "position %d", w->i);
	snprintf(want, sizeof(want), "{\"v\":%d}", w->m->vals[w->i]);
	cr_assert_eq(len, strlen(want));
	cr_assert_arr_eq(data, want, len);
	w->i++;
	return 0;
}

static void model_check(struct engine *e, const char *coll,
			const struct model *m)
{
	struct model_walk w = { .m = m };

	cr_assert_eq(engine_foreach(e, coll, model_walk_fn, &w), 0);
	cr_assert_eq(w.i, m->n);
	cr_assert_eq(engine_count(e, coll), (size_t)m->n);
}

Test(engine, random_puts_deletes_and_drops_keep_dict_order)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	static struct model m[2];
	const char *colls[2] = { "c0", "c1" };
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	char key[16], json[32];
	int round, i, v = 0;

	memset(m, 0, sizeof(m));
	for (round = 0; round < 400; round++) {
		struct engine_batch *b = engine_batch_new();
		int nrec = 1 + (int)((rng >> 7) % 40);

		for (i = 0; i < nrec; i++) {
			int c, k, op, at;

			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			c = (int)(rng % 2);
			k = (int)((rng >> 8) % 300);
			op = (int)((rng >> 20) % 100);
			snprintf(key, sizeof(key), "k%d", k);
			if (op < 1) {
				engine_batch_drop(b, colls[c]);
				m[c].n = 0;
			} else if (op < 30) {
				engine_batch_del(b, colls[c], key);
				model_del(&m[c], k);
			} else {
				snprintf(json, sizeof(json), "{\"v\":%d}", ++v);
				engine_batch_put_json(b, colls[c], key, json,
						      strlen(json));
				at = model_find(&m[c], k);
				if (at < 0) {
					at = m[c].n++;
					m[c].keys[at] = k;
				}
				m[c].vals[at] = v;
			}
		}
		cr_assert_eq(engine_commit(e, b), 0, "%s", engine_last_error());
		engine_batch_free(b);
		model_check(e, colls[0], &m[0]);
		model_check(e, colls[1], &m[1]);
		if (round % 50 == 17)
			cr_assert_eq(engine_checkpoint(e), 0);
		if (round % 50 == 33) {
			engine_close(e);
			e = eopen(be, "w");
			model_check(e, colls[0], &m[0]);
			model_check(e, colls[1], &m[1]);
		}
	}
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	backend_close(be);
}

/* Appends "coll:key=value;" for every collection and key to a string. */
struct dump {
	struct engine *e;
	char *s;
	size_t n;
	const char *coll;
};

static void dump_add(struct dump *d, const char *a, const char *b, int blen)
{
	size_t add = strlen(a) + (size_t)blen + 8;

	d->s = realloc(d->s, d->n + add + 1);
	d->n += (size_t)snprintf(d->s + d->n, add + 1, "%s=%.*s;", a, blen, b);
}

static int dump_key_fn(void *arg, const char *key, enum engine_type type,
		       const void *data, size_t len)
{
	dump_add(arg, key, data, (int)len);
	return 0;
}

static int dump_coll_fn(void *arg, const char *coll)
{
	struct dump *d = arg;

	dump_add(d, "coll", coll, (int)strlen(coll));
	return engine_foreach(d->e, coll, dump_key_fn, d);
}

static char *dump(struct engine *e)
{
	struct dump d = { .e = e };

	dump_add(&d, "", "", 0);
	cr_assert_eq(engine_collections(e, dump_coll_fn, &d), 0);
	return d.s;
}

/* One random batch of writer e over collections c0..c2, keys k0..k39. */
static void random_batch(struct engine *e, uint64_t *rng, int *v)
{
	struct engine_batch *b = engine_batch_new();
	char coll[8], key[8], json[32];
	int i, n = 1 + (int)(*rng % 6);

	for (i = 0; i < n; i++) {
		int op;

		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		snprintf(coll, sizeof(coll), "c%d", (int)(*rng % 3));
		snprintf(key, sizeof(key), "k%d", (int)((*rng >> 8) % 40));
		op = (int)((*rng >> 20) % 100);
		if (op < 2)
			engine_batch_drop(b, coll);
		else if (op < 30)
			engine_batch_del(b, coll, key);
		else {
			snprintf(json, sizeof(json), "{\"v\":%d}", ++*v);
			engine_batch_put_json(b, coll, key, json, strlen(json));
		}
	}
	cr_assert_eq(engine_commit(e, b), 0, "%s", engine_last_error());
	engine_batch_free(b);
}

Test(engine, random_work_of_two_writers_converges_in_any_arrival_order)
{
	struct backend *be = mem(), *x = mem();
	struct engine *w[2], *r;
	uint64_t rng[2] = { 0x1234567887654321ull, 0x0fedcba987654321ull };
	char *want, *got;
	int i, v = 0;

	w[0] = eopen(be, "a");
	w[1] = eopen(be, "b");
	for (i = 0; i < 300; i++) {
		int k = (int)(rng[0] >> 3) & 1;

		random_batch(w[k], &rng[k], &v);
		/* now and then a writer catches up with the other */
		if (rng[k] % 11 == 0)
			cr_assert_eq(engine_refresh(w[k]), 0);
		if (rng[k] % 97 == 0)
			cr_assert_eq(engine_checkpoint(w[k]), 0);
	}
	cr_assert_eq(engine_refresh(w[0]), 0);
	cr_assert_eq(engine_refresh(w[1]), 0);
	want = dump(w[0]);
	got = dump(w[1]);
	cr_assert_str_eq(got, want);
	free(got);
	r = eopen(be, "r");
	got = dump(r);
	cr_assert_str_eq(got, want);
	free(got);
	engine_close(r);
	engine_close(w[0]);
	engine_close(w[1]);

	/*
	 * Fed to x in another order: b's segments left uncollected first,
	 * checkpointed there, then everything else arrives late.
	 */
	copy_segs(be, x, "b");
	r = eopen(x, "r");
	cr_assert_eq(engine_checkpoint(r), 0);
	copy_all(be, x);
	cr_assert_eq(engine_refresh(r), 0);
	got = dump(r);
	cr_assert_str_eq(got, want);
	free(got);
	engine_close(r);
	r = eopen(x, "r");
	got = dump(r);
	cr_assert_str_eq(got, want);
	free(got);
	engine_close(r);
	free(want);
	backend_close(x);
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
	const char older[] = "{\"lodefs\":\"store\",\"format\":1}\n";
	const char older2[] = "{\"lodefs\":\"store\",\"format\":2}\n";
	const char older3[] = "{\"lodefs\":\"store\",\"format\":3}\n";

	cr_assert_eq(put_json(e, "c", "k", "{}"), 0);
	engine_close(e);
	cr_assert_eq(backend_put(be, "lodefs.format", newer, sizeof(newer) - 1,
				 NULL),
		     0);
	cr_assert_eq(engine_open(be, NULL, &e), -EPROTO);
	/* format 1 was never released: refused, not misread */
	cr_assert_eq(backend_put(be, "lodefs.format", older, sizeof(older) - 1,
				 NULL),
		     0);
	cr_assert_eq(engine_open(be, NULL, &e), -EPROTO);
	cr_assert_not_null(strstr(engine_last_error(), "never released"));
	/* nor format 2, whose checkpoints held values in the key index */
	cr_assert_eq(backend_put(be, "lodefs.format", older2,
				 sizeof(older2) - 1, NULL),
		     0);
	cr_assert_eq(engine_open(be, NULL, &e), -EPROTO);
	cr_assert_not_null(strstr(engine_last_error(), "never released"));
	/* nor format 3, whose large values had one checksum each */
	cr_assert_eq(backend_put(be, "lodefs.format", older3,
				 sizeof(older3) - 1, NULL),
		     0);
	cr_assert_eq(engine_open(be, NULL, &e), -EPROTO);
	cr_assert_not_null(strstr(engine_last_error(), "never released"));
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

/* --- values are read when used, not at open ------------------------------- */

/*
 * A backend over the memory backend that maps every object into pages of
 * its own and, while `guard` is set, maps values objects with no access:
 * reading any byte of one crashes the test.  Counts reads of values
 * objects.
 */
struct gmap {
	void *addr;
	size_t size; /* whole pages */
	bool values;
	struct gmap *next;
};

struct gbackend {
	struct backend be;
	struct backend *inner;
	bool guard;
	unsigned long values_reads; /* get and get_range of values objects */
	unsigned long values_maps;
	struct gmap *maps;
};

static struct gbackend *gb_of(struct backend *be)
{
	return (struct gbackend *)be;
}

static bool is_values(const char *key)
{
	size_t n = strlen(key);

	return n >= 7 && strcmp(key + n - 7, "/values") == 0;
}

static int gb_get(struct backend *be, const char *key, void **data, size_t *len)
{
	gb_of(be)->values_reads += is_values(key);
	return backend_get(gb_of(be)->inner, key, data, len);
}

static int gb_get_range(struct backend *be, const char *key, uint64_t off,
			size_t len, void *buf, size_t *got)
{
	gb_of(be)->values_reads += is_values(key);
	return backend_get_range(gb_of(be)->inner, key, off, len, buf, got);
}

static int gb_head(struct backend *be, const char *key, struct backend_stat *st)
{
	return backend_head(gb_of(be)->inner, key, st);
}

static int gb_put(struct backend *be, const char *key, const void *data,
		  size_t len, const struct backend_cond *cond)
{
	return backend_put(gb_of(be)->inner, key, data, len, cond);
}

static int gb_del(struct backend *be, const char *key)
{
	return backend_del(gb_of(be)->inner, key);
}

static int gb_list(struct backend *be, const char *prefix, backend_list_fn *fn,
		   void *arg)
{
	return backend_list(gb_of(be)->inner, prefix, fn, arg);
}

static int gb_map(struct backend *be, const char *key, const void **data,
		  size_t *len, void **cookie)
{
	struct gbackend *g = gb_of(be);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct gmap *m;
	void *p;
	int rc;

	rc = backend_get(g->inner, key, &p, len);
	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	cr_assert_not_null(m);
	m->values = is_values(key);
	m->size = (*len + page) / page * page;
	m->addr = mmap(NULL, m->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m->addr, MAP_FAILED);
	memcpy(m->addr, p, *len);
	free(p);
	cr_assert_eq(mprotect(m->addr, m->size,
			      g->guard && m->values ? PROT_NONE : PROT_READ),
		     0);
	g->values_maps += m->values;
	m->next = g->maps;
	g->maps = m;
	*data = m->addr;
	*cookie = m;
	return 0;
}

static void gb_unmap(struct backend *be, void *cookie)
{
	struct gbackend *g = gb_of(be);
	struct gmap **pp, *m = cookie;

	for (pp = &g->maps; *pp != m; pp = &(*pp)->next)
		;
	*pp = m->next;
	munmap(m->addr, m->size);
	free(m);
}

static void gb_close(struct backend *be)
{
	backend_close(gb_of(be)->inner);
	free(be);
}

static struct gbackend *gb_open(void)
{
	struct gbackend *g = calloc(1, sizeof(*g));

	cr_assert_not_null(g);
	g->inner = mem();
	g->be = (struct backend){ .version = BACKEND_VERSION,
				  .name = "guard",
				  .get = gb_get,
				  .get_range = gb_get_range,
				  .head = gb_head,
				  .put = gb_put,
				  .del = gb_del,
				  .list = gb_list,
				  .map = gb_map,
				  .unmap = gb_unmap,
				  .close = gb_close,
				  .where = "memory, guarded" };
	return g;
}

/* Lets values objects mapped while guarded be read from now on. */
static void gb_unguard(struct gbackend *g)
{
	struct gmap *m;

	g->guard = false;
	for (m = g->maps; m; m = m->next)
		cr_assert_eq(mprotect(m->addr, m->size, PROT_READ), 0);
}

/* Size of the one object whose key ends with suffix. */
static size_t object_size(struct backend *be, const char *suffix)
{
	char *key = find_object(be, "ckpt/", suffix);
	void *p;
	size_t n;

	cr_assert_eq(backend_get(be, key, &p, &n), 0);
	free(p);
	free(key);
	return n;
}

Test(engine, open_reads_no_byte_of_the_values_object)
{
	struct gbackend *g = gb_open();
	struct engine *e = eopen(&g->be, "w");
	struct engine_stats st;

	fill_some(e);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	engine_close(e);
	g->guard = true;
	g->values_reads = 0;
	/* a byte of the values object read here would crash the test */
	e = eopen(&g->be, "w");
	cr_assert_eq(g->values_reads, 0);
	cr_assert_eq(g->values_maps, 1);
	cr_assert_eq(engine_count(e, C_DATA), 1);
	cr_assert(engine_exists(e, "content", "d1"));
	cr_assert_eq(engine_vec_dim(e, C_VEC), 2);
	engine_get_stats(e, &st);
	cr_assert_eq(st.values_mapped, object_size(&g->be, "/values"));
	gb_unguard(g);
	check_some(e);
	engine_close(e);
	cr_assert_eq(engine_fsck(&g->be, NULL, NULL), 0);
	backend_close(&g->be);
}

/* Offset of `text` in object `key` (the first occurrence). */
static size_t offset_of(struct backend *be, const char *key, const void *text,
			size_t len)
{
	unsigned char *p;
	size_t n, i;

	cr_assert_eq(backend_get(be, key, (void **)&p, &n), 0);
	for (i = 0; i + len <= n && memcmp(p + i, text, len) != 0; i++)
		;
	free(p);
	cr_assert_leq(i + len, n, "%s does not hold the value", key);
	return i;
}

static int count_fn(void *arg, const char *key, enum engine_type type,
		    const void *data, size_t len)
{
	(*(int *)arg)++;
	return 0;
}

Test(engine, damaged_value_fails_its_read_not_the_open_and_fsck_names_it)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *uno = "{\"t\":\"uno\"}";
	struct reports r = { 0 };
	char *vals;
	void *data;
	size_t len, nobj;
	int n = 0;

	fill_some(e);
	cr_assert_eq(put_json(e, C_DATA, "n3", "{\"t\":\"tres\"}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	vals = find_object(be, "ckpt/", "/values");
	mangle(be, vals, SIZE_MAX,
	       (long)offset_of(be, vals, uno, strlen(uno)) + 6);

	/* open reads no value, so it does not notice */
	e = eopen(be, "w");
	cr_assert_eq(engine_get(e, C_DATA, "n1", NULL, &data, &len), -EIO);
	cr_assert_not_null(strstr(engine_last_error(), "docstore/data/n1"),
			   "%s", engine_last_error());
	cr_assert_not_null(strstr(engine_last_error(), vals), "%s",
			   engine_last_error());
	cr_assert_not_null(strstr(engine_last_error(), "checksum"));
	/* everything else reads */
	cr_assert(engine_exists(e, C_DATA, "n1"));
	assert_value(e, C_DATA, "n3", "{\"t\":\"tres\"}");
	assert_value(e, "content", "d1", "hello");
	cr_assert_eq(engine_get(e, C_VEC, "n1", NULL, &data, &len), 0);
	free(data);
	/* a walk stops at the damaged value, before handing it out */
	cr_assert_eq(engine_foreach(e, C_DATA, count_fn, &n), -EIO);
	cr_assert_eq(n, 0);
	/* a checkpoint does not copy the damage as if it were valid */
	nobj = count_objects(be, "ckpt/");
	cr_assert_eq(engine_checkpoint(e), -EIO);
	cr_assert_not_null(strstr(engine_last_error(), "docstore/data/n1"));
	cr_assert_eq(count_objects(be, "ckpt/"), nobj);

	cr_assert_eq(engine_fsck(be, report_fn, &r), 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, vals), "%s", r.text);
	cr_assert_not_null(strstr(r.text, "1 damaged value (docstore/data/n1)"),
			   "%s", r.text);

	/* writing the key again repairs the store */
	cr_assert_eq(put_json(e, C_DATA, "n1", uno), 0);
	assert_value(e, C_DATA, "n1", uno);
	cr_assert_eq(engine_foreach(e, C_DATA, count_fn, &n), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	e = eopen(be, "w");
	check_some_plus(e, 1);
	engine_close(e);
	free(vals);
	backend_close(be);
}

static int vsum_fn(void *arg, const struct engine_vecs *v)
{
	*(size_t *)arg = v->live;
	return 0;
}

Test(engine, damaged_vector_fails_get_and_with_vecs_not_the_open)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[3][2] = { { 1, 2 }, { 3, 4 }, { 5, 6 } };
	const char *keys[3] = { "a", "b", "c" };
	struct reports r = { 0 };
	size_t live = 0, len;
	char *vec;
	void *data;
	int i;

	for (i = 0; i < 3; i++)
		cr_assert_eq(put_vec(e, C_VEC, keys[i], v[i], 2), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	vec = find_object(be, "ckpt/", "/vec-0");
	mangle(be, vec, SIZE_MAX,
	       (long)offset_of(be, vec, v[1], sizeof(v[1])) + 1);

	e = eopen(be, "w");
	cr_assert_eq(engine_count(e, C_VEC), 3);
	cr_assert_eq(engine_get(e, C_VEC, "a", NULL, &data, &len), 0);
	cr_assert_arr_eq(data, v[0], sizeof(v[0]));
	free(data);
	cr_assert_eq(engine_get(e, C_VEC, "b", NULL, &data, &len), -EIO);
	cr_assert_not_null(strstr(engine_last_error(), "/b"), "%s",
			   engine_last_error());
	/* a scan gets the block whole: it is checked whole, and refused */
	cr_assert_eq(engine_with_vecs(e, C_VEC, vsum_fn, &live), -EIO);
	cr_assert_eq(live, 0);
	cr_assert_not_null(strstr(engine_last_error(), vec), "%s",
			   engine_last_error());
	cr_assert_eq(engine_fsck(be, report_fn, &r), 1, "%s", r.text);
	cr_assert_not_null(strstr(r.text, "vector_store/default/b"), "%s",
			   r.text);
	/* writing the vector again repairs the store */
	cr_assert_eq(put_vec(e, C_VEC, "b", v[1], 2), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	cr_assert_eq(engine_with_vecs(e, C_VEC, vsum_fn, &live), 0);
	cr_assert_eq(live, 3);
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	free(vec);
	backend_close(be);
}

/* Writes JSON, BLOB (binary, empty) and vectors; checkpoint; one more. */
static void fill_types(struct engine *e)
{
	const unsigned char bin[6] = { 0, 1, 0xff, 0, '{', 0 };
	float v[3] = { 1.5f, -2, 1e-3f };
	char key[16], json[128];
	int i;

	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		snprintf(json, sizeof(json), "{\"i\": %d, \"s\": \"%*s\"}", i,
			 i, "");
		cr_assert_eq(put_json(e, C_DATA, key, json), 0);
		v[0] = (float)i;
		cr_assert_eq(put_vec(e, C_VEC, key, v, 3), 0);
	}
	cr_assert_eq(put_blob(e, "content", "bin", bin, sizeof(bin)), 0);
	cr_assert_eq(put_blob(e, "content", "empty", "", 0), 0);
	cr_assert_eq(del(e, C_DATA, "k07"), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	cr_assert_eq(put_json(e, C_DATA, "late", "{}"), 0);
}

static int types_fn(void *arg, const char *key, enum engine_type type,
		    const void *data, size_t len)
{
	char want[128];
	int i = atoi(key + 1);

	if (strcmp(key, "late") == 0)
		return len == 2 && memcmp(data, "{}", 2) == 0 ? 0 : 1;
	snprintf(want, sizeof(want), "{\"i\":%d,\"s\":\"%*s\"}", i, i, "");
	cr_assert_eq(type, ENGINE_JSON);
	cr_assert_eq(len, strlen(want), "%s", key);
	cr_assert_arr_eq(data, want, len);
	(*(int *)arg)++;
	return 0;
}

static void check_types(struct engine *e)
{
	const unsigned char bin[6] = { 0, 1, 0xff, 0, '{', 0 };
	enum engine_type type;
	size_t len, live = 0;
	void *data;
	int n = 0;

	cr_assert_eq(engine_foreach(e, C_DATA, types_fn, &n), 0);
	cr_assert_eq(n, 49);
	cr_assert_eq(engine_get(e, "content", "bin", &type, &data, &len), 0);
	cr_assert_eq(type, ENGINE_BLOB);
	cr_assert_eq(len, sizeof(bin));
	cr_assert_arr_eq(data, bin, sizeof(bin));
	cr_assert_eq(((char *)data)[len], 0);
	free(data);
	cr_assert_eq(engine_get(e, "content", "empty", &type, &data, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(((char *)data)[0], 0);
	free(data);
	cr_assert_eq(engine_get(e, C_VEC, "k42", &type, &data, &len), 0);
	cr_assert_eq(type, ENGINE_VEC);
	cr_assert_eq(len, 3 * sizeof(float));
	cr_assert_float_eq(((float *)data)[0], 42, 0);
	cr_assert_float_eq(((float *)data)[2], 1e-3f, 0);
	free(data);
	cr_assert_eq(engine_with_vecs(e, C_VEC, vsum_fn, &live), 0);
	cr_assert_eq(live, 50);
	assert_value(e, C_DATA, "k07", NULL);
	assert_value(e, C_DATA, "late", "{}");
}

/* The same reads on a backend that maps (values in place) and on one that
 * cannot (values read whole at open). */
Test(engine, values_read_back_after_reopen_mapped_or_copied)
{
	struct gbackend *g = gb_open();
	struct backend *be = mem();
	struct engine_stats st;
	struct engine *e;

	e = eopen(&g->be, "w");
	fill_types(e);
	engine_close(e);
	e = eopen(&g->be, "w");
	check_types(e);
	engine_get_stats(e, &st);
	cr_assert_gt(st.values_mapped, 0);
	engine_close(e);

	e = eopen(be, "w");
	fill_types(e);
	engine_close(e);
	e = eopen(be, "w");
	check_types(e);
	engine_get_stats(e, &st);
	cr_assert_eq(st.values_mapped, 0); /* read into memory */
	cr_assert_gt(st.mem_bytes, object_size(be, "/values"));
	/* and the checkpoint written from them reads back the same */
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "w");
	check_types(e);
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	backend_close(be);
	backend_close(&g->be);
}

struct vreader {
	struct engine *e;
	_Atomic int *stop;
	int errors;
	long reads;
};

static int vscan_fn(void *arg, const struct engine_vecs *v)
{
	size_t b, i, n = 0;

	for (b = 0; b < v->nblocks; b++) {
		for (i = 0; i < v->blocks[b].n; i++) {
			const char *k = v->blocks[b].keys[i];

			/* a row's value names its key: k<row> has v[0]=row */
			if (k && v->blocks[b].data[i * v->dim] != atoi(k + 1))
				return 1;
			n += k != NULL;
		}
	}
	return n == v->live ? 0 : 1;
}

static void *vreader_main(void *arg)
{
	struct vreader *r = arg;

	while (!*r->stop) {
		void *d;
		size_t len;

		if (engine_get(r->e, C_DATA, "k000", NULL, &d, &len) == 0)
			free(d);
		else
			r->errors++;
		if (engine_get(r->e, C_VEC, "k001", NULL, &d, &len) == 0) {
			r->errors += ((float *)d)[0] != 1;
			free(d);
		} else {
			r->errors++;
		}
		r->errors += engine_with_vecs(r->e, C_VEC, vscan_fn, NULL) != 0;
		r->reads++;
		/* glibc's rwlock prefers readers: let the writer in */
		pause_ms(1);
	}
	return NULL;
}

/* Puts JSON and a vector (v[0] = number in the key) for keys [from, to). */
static void put_rows(struct engine *e, int from, int to, int gen)
{
	struct engine_batch *b = engine_batch_new();
	float v[8] = { 0 };
	char key[16], json[64];
	int i;

	for (i = from; i < to; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		snprintf(json, sizeof(json), "{\"gen\":%d}", gen);
		v[0] = (float)i;
		v[1] = (float)gen;
		engine_batch_put_json(b, C_DATA, key, json, strlen(json));
		engine_batch_put_vec(b, C_VEC, key, v, 8);
	}
	cr_assert_eq(engine_commit(e, b), 0, "%s", engine_last_error());
	engine_batch_free(b);
}

Test(engine, reads_stay_valid_while_checkpoints_replace_mapped_objects,
     .fini = local_dir_remove)
{
	_Atomic int stop = 0;
	struct vreader r[3];
	struct backend *be;
	struct engine *e;
	pthread_t t[3];
	int i;

	cr_assert_not_null(mkdtemp(local_dir));
	cr_assert_eq(backend_local_open(local_dir, &be), 0);
	e = eopen(be, "w");
	put_rows(e, 0, 200, 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	/* now every value and vector is used in place from mapped objects */
	e = eopen(be, "w");
	for (i = 0; i < 3; i++) {
		r[i] = (struct vreader){ .e = e, .stop = &stop };
		cr_assert_eq(pthread_create(&t[i], NULL, vreader_main, &r[i]),
			     0);
	}
	for (i = 1; i <= 20; i++) {
		put_rows(e, 10 * (i % 5), 10 * (i % 5) + 10, i);
		if (i % 2 == 0)
			put_rows(e, 200 + i, 201 + i, i); /* grows the block */
		/* each releases the previous vector mapping */
		cr_assert_eq(engine_checkpoint(e), 0, "%s",
			     engine_last_error());
	}
	stop = 1;
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].errors, 0);
		cr_assert_gt(r[i].reads, 0);
	}
	engine_close(e);
	e = eopen(be, "w");
	cr_assert_eq(engine_count(e, C_VEC), 210);
	cr_assert_eq(engine_with_vecs(e, C_VEC, vscan_fn, NULL), 0);
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	backend_close(be);
}

/* --- refs: values used in place ------------------------------------------- */

static void assert_ref(const struct engine_ref *r, const char *want)
{
	cr_assert_not_null(r->data);
	cr_assert_eq(r->len, strlen(want), "ref holds %zu bytes, not %zu",
		     r->len, strlen(want));
	cr_assert_arr_eq(r->data, want, r->len);
	cr_assert_eq(((const char *)r->data)[r->len], '\0');
}

Test(engine, ref_keeps_its_bytes_across_overwrite_delete_and_checkpoint)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct engine_ref r1, r2, r3;

	cr_assert_eq(put_blob(e, "content", "d", "first", 5), 0);
	cr_assert_eq(engine_get_ref(e, "content", "d", &r1), 0);
	cr_assert_eq(r1.type, ENGINE_BLOB);
	assert_ref(&r1, "first");
	/* two refs to one value share its bytes */
	cr_assert_eq(engine_get_ref(e, "content", "d", &r2), 0);
	cr_assert_eq(r2.data, r1.data);
	cr_assert_eq(put_blob(e, "content", "d", "second", 6), 0);
	assert_value(e, "content", "d", "second");
	assert_ref(&r1, "first");
	engine_ref_release(e, &r2);
	cr_assert_null(r2.data);
	cr_assert_null(r2.hold);
	assert_ref(&r1, "first"); /* the other ref still holds them */

	cr_assert_eq(engine_get_ref(e, "content", "d", &r2), 0);
	assert_ref(&r2, "second");
	cr_assert_eq(del(e, "content", "d"), 0);
	cr_assert_eq(engine_get_ref(e, "content", "d", &r3), -ENOENT);
	cr_assert_null(r3.data);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	assert_ref(&r1, "first");
	assert_ref(&r2, "second");
	cr_assert_eq(put_blob(e, "content", "d", "third", 5), 0);
	cr_assert_eq(drop(e, "content"), 0);
	assert_ref(&r2, "second");
	engine_ref_release(e, &r1);
	engine_ref_release(e, &r2);
	engine_ref_release(e, &r2); /* zeroed: nothing to do */
	engine_ref_release(e, NULL);
	engine_close(e);
	backend_close(be);
}

Test(engine, ref_into_a_checkpoint_outlives_refresh_merge_and_checkpoints)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "a"), *o;
	struct engine_ref r, rj;

	cr_assert_eq(put_blob(e, "content", "d", "from the checkpoint", 19), 0);
	cr_assert_eq(put_json(e, C_DATA, "n", "{\"t\":1}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "a");
	/* used in place from the loaded checkpoint */
	cr_assert_eq(engine_get_ref(e, "content", "d", &r), 0);
	assert_ref(&r, "from the checkpoint");
	cr_assert_eq(engine_get_ref(e, C_DATA, "n", &rj), 0);
	cr_assert_eq(rj.type, ENGINE_JSON);
	assert_ref(&rj, "{\"t\":1}");

	/* another writer replaces both and checkpoints; a refresh merges it */
	o = eopen(be, "b");
	cr_assert_eq(put_blob(o, "content", "d", "theirs", 6), 0);
	cr_assert_eq(del(o, C_DATA, "n"), 0);
	cr_assert_eq(engine_checkpoint(o), 0, "%s", engine_last_error());
	engine_close(o);
	cr_assert_eq(engine_refresh(e), 0, "%s", engine_last_error());
	assert_value(e, "content", "d", "theirs");
	assert_value(e, C_DATA, "n", NULL);
	assert_ref(&r, "from the checkpoint");
	assert_ref(&rj, "{\"t\":1}");
	cr_assert_eq(put_blob(e, "content", "d", "ours", 4), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	assert_ref(&r, "from the checkpoint");
	engine_ref_release(e, &r);
	engine_ref_release(e, &rj);
	engine_close(e);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);
	backend_close(be);
}

Test(engine, ref_to_a_vector_is_a_copy_that_outlives_changes)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float a[2] = { 1, 2 }, b[2] = { 3, 4 };
	struct engine_ref r;

	cr_assert_eq(put_vec(e, C_VEC, "v", a, 2), 0);
	cr_assert_eq(engine_get_ref(e, C_VEC, "v", &r), 0);
	cr_assert_eq(r.type, ENGINE_VEC);
	cr_assert_eq(r.len, sizeof(a));
	/* overwritten in place in its row, then the rows move */
	cr_assert_eq(put_vec(e, C_VEC, "v", b, 2), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	cr_assert_eq(del(e, C_VEC, "v"), 0);
	cr_assert_arr_eq(r.data, a, sizeof(a));
	engine_ref_release(e, &r);
	engine_close(e);
	backend_close(be);
}

Test(engine, ref_to_a_damaged_value_fails_with_eio)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	const char *uno = "{\"t\":\"uno\"}";
	struct engine_ref r;
	char *vals;

	fill_some(e);
	cr_assert_eq(put_json(e, C_DATA, "n3", "{\"t\":\"tres\"}"), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	vals = find_object(be, "ckpt/", "/values");
	mangle(be, vals, SIZE_MAX,
	       (long)offset_of(be, vals, uno, strlen(uno)) + 6);

	e = eopen(be, "w");
	memset(&r, 0xa5, sizeof(r));
	cr_assert_eq(engine_get_ref(e, C_DATA, "n1", &r), -EIO);
	cr_assert_null(r.data);
	cr_assert_null(r.hold);
	cr_assert_not_null(strstr(engine_last_error(), "docstore/data/n1"),
			   "%s", engine_last_error());
	cr_assert_not_null(strstr(engine_last_error(), "checksum"));
	/* every other value still reads in place */
	cr_assert_eq(engine_get_ref(e, C_DATA, "n3", &r), 0);
	assert_ref(&r, "{\"t\":\"tres\"}");
	engine_ref_release(e, &r);
	/* writing the key again repairs it */
	cr_assert_eq(put_json(e, C_DATA, "n1", uno), 0);
	cr_assert_eq(engine_get_ref(e, C_DATA, "n1", &r), 0);
	assert_ref(&r, uno);
	engine_ref_release(e, &r);
	engine_close(e);
	free(vals);
	backend_close(be);
}

/* n pseudo-random bytes (xorshift), the same for the same seed. */
static unsigned char *random_bytes(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n + 1);
	size_t i;

	cr_assert_not_null(p);
	for (i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		p[i] = (unsigned char)seed;
	}
	p[n] = 0;
	return p;
}

/*
 * A large value of a mapped checkpoint is checked in chunks as it is read
 * ahead: the whole of it counts, damage in its last chunk included.
 */
Test(engine, large_mapped_value_reads_in_place_and_damage_fails_its_ref,
     .fini = local_dir_remove)
{
	const size_t n = (3u << 20) + 12345;
	unsigned char *big = random_bytes(n, 42);
	struct engine_ref r;
	struct backend *be;
	struct engine *e;
	char *vals;
	void *data;
	size_t len, at;

	cr_assert_not_null(mkdtemp(local_dir));
	cr_assert_eq(backend_local_open(local_dir, &be), 0);
	e = eopen(be, "w");
	cr_assert_eq(put_blob(e, "content", "big", big, n), 0);
	cr_assert_eq(put_blob(e, "content", "small", "tiny", 4), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);

	e = eopen(be, "w");
	cr_assert_eq(engine_get_ref(e, "content", "big", &r), 0, "%s",
		     engine_last_error());
	cr_assert_eq(r.len, n);
	cr_assert_eq(memcmp(r.data, big, n), 0);
	cr_assert_eq(((const char *)r.data)[n], 0);
	engine_ref_release(e, &r);
	cr_assert_eq(engine_get(e, "content", "big", NULL, &data, &len), 0);
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(data, big, n), 0);
	free(data);
	engine_close(e);

	vals = find_object(be, "ckpt/", "/values");
	at = offset_of(be, vals, big, 64);
	mangle(be, vals, SIZE_MAX, (long)(at + n - 7));
	e = eopen(be, "w");
	cr_assert_eq(engine_get_ref(e, "content", "big", &r), -EIO);
	cr_assert_null(r.data);
	cr_assert_not_null(strstr(engine_last_error(), "content/big"), "%s",
			   engine_last_error());
	cr_assert_eq(engine_get(e, "content", "big", NULL, &data, &len), -EIO);
	cr_assert_eq(engine_get_ref(e, "content", "small", &r), 0);
	assert_ref(&r, "tiny");
	engine_ref_release(e, &r);
	engine_close(e);
	free(vals);
	free(big);
	backend_close(be);
}

#define MIB ((size_t)1 << 20)

/*
 * A value of more than 1 MiB in a checkpoint carries one XXH3_64bits per
 * MiB after its NUL, and its key index entry records the sum of that
 * table: the layout other programs can check.  Returns the value's
 * offset in the values object.
 */
static size_t assert_chunk_sums(struct backend *be, const unsigned char *v,
				size_t n)
{
	char *vals = find_object(be, "ckpt/", "/values");
	char *kv = find_object(be, "ckpt/", "/kv");
	size_t at = offset_of(be, vals, v, 64), i, nch = (n + MIB - 1) / MIB;
	unsigned char *p;
	uint64_t sum;
	size_t len;

	cr_assert_eq(backend_get(be, vals, (void **)&p, &len), 0);
	cr_assert_geq(len, at + n + 1 + 8 * nch);
	cr_assert_eq(p[at + n], 0);
	for (i = 0; i < nch; i++) {
		size_t cl = n - i * MIB < MIB ? n - i * MIB : MIB;
		uint64_t want = XXH3_64bits(v + i * MIB, cl), got;

		memcpy(&got, p + at + n + 1 + 8 * i, 8);
		cr_assert_eq(got, want, "chunk %zu", i);
	}
	sum = XXH3_64bits(p + at + n + 1, 8 * nch);
	free(p);
	/* the key index holds the table's sum (not the value's) */
	offset_of(be, kv, &sum, 8);
	free(kv);
	free(vals);
	return at;
}

/*
 * A lazy ref to a large checkpoint value reads nothing but its chunk sums
 * when taken; each range is checked as it is asked for.  One damaged byte
 * fails the reads of its chunk (every time) and no other, of this value
 * or any other; whole-value reads, checkpoints and fsck still see it.
 */
Test(engine, lazy_ref_checks_the_chunks_it_reads_and_damage_fails_one_chunk,
     .fini = local_dir_remove)
{
	const size_t n = 5 * MIB + 777, n2 = 3 * MIB + 5;
	unsigned char *big = random_bytes(n, 11), *big2 = random_bytes(n2, 12);
	struct reports rep = { 0 };
	struct engine_ref r, r2;
	struct backend *be;
	struct engine *e;
	void *data;
	size_t len, at;

	cr_assert_not_null(mkdtemp(local_dir));
	cr_assert_eq(backend_local_open(local_dir, &be), 0);
	e = eopen(be, "w");
	cr_assert_eq(put_blob(e, "content", "big", big, n), 0);
	cr_assert_eq(put_blob(e, "content", "big2", big2, n2), 0);
	cr_assert_eq(put_blob(e, "content", "small", "tiny", 4), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	at = assert_chunk_sums(be, big, n);
	{
		char *vals = find_object(be, "ckpt/", "/values");

		/* one byte of chunk 2 (bytes 2-3 MiB) */
		mangle(be, vals, SIZE_MAX, (long)(at + 2 * MIB + 100));
		free(vals);
	}

	e = eopen(be, "w");
	cr_assert_eq(engine_get_ref_lazy(e, "content", "big", &r), 0, "%s",
		     engine_last_error());
	cr_assert_eq(r.len, n);
	cr_assert_not_null(r.parts);
	cr_assert_eq(engine_ref_check(e, &r, 0, 2 * MIB), 0, "%s",
		     engine_last_error());
	cr_assert_eq(memcmp(r.data, big, 2 * MIB), 0);
	cr_assert_eq(engine_ref_check(e, &r, 2 * MIB + 5, 10), -EIO);
	cr_assert_not_null(strstr(engine_last_error(), "content/big"), "%s",
			   engine_last_error());
	cr_assert_not_null(strstr(engine_last_error(), "/values"), "%s",
			   engine_last_error());
	cr_assert_not_null(strstr(engine_last_error(), "2097152-3145727"), "%s",
			   engine_last_error());
	/* a failed chunk is not remembered as checked */
	cr_assert_eq(engine_ref_check(e, &r, 3 * MIB - 1, 1), -EIO);
	/* a range that only touches the chunk's neighbours reads */
	cr_assert_eq(engine_ref_check(e, &r, MIB, MIB), 0);
	cr_assert_eq(engine_ref_check(e, &r, 3 * MIB, SIZE_MAX), 0);
	cr_assert_eq(memcmp((const char *)r.data + 3 * MIB, big + 3 * MIB,
			    n - 3 * MIB),
		     0);
	/* past the end: nothing to check */
	cr_assert_eq(engine_ref_check(e, &r, n, 100), 0);
	/* the other large value and the small one are untouched */
	cr_assert_eq(engine_get_ref_lazy(e, "content", "big2", &r2), 0);
	cr_assert_eq(engine_ref_check(e, &r2, 0, n2), 0, "%s",
		     engine_last_error());
	cr_assert_eq(memcmp(r2.data, big2, n2), 0);
	engine_ref_release(e, &r2);
	cr_assert_eq(engine_get_ref_lazy(e, "content", "small", &r2), 0);
	cr_assert_null(r2.parts);
	cr_assert_eq(engine_ref_check(e, &r2, 0, 4), 0);
	assert_ref(&r2, "tiny");
	engine_ref_release(e, &r2);
	/* whole-value reads check every chunk */
	cr_assert_eq(engine_get(e, "content", "big", NULL, &data, &len), -EIO);
	cr_assert_eq(engine_get_ref(e, "content", "big", &r2), -EIO);
	cr_assert_eq(engine_checkpoint(e), -EIO);
	cr_assert_not_null(strstr(engine_last_error(), "content/big"));
	engine_ref_release(e, &r);
	engine_close(e);

	cr_assert_eq(engine_fsck(be, report_fn, &rep), 1, "%s", rep.text);
	cr_assert_not_null(strstr(rep.text, "1 damaged value (content/big)"),
			   "%s", rep.text);
	free(big);
	free(big2);
	backend_close(be);
}

/* Damaged chunk sums fail the lazy ref itself (and fsck names the key). */
Test(engine, lazy_ref_with_damaged_chunk_sums_fails, .fini = local_dir_remove)
{
	const size_t n = 2 * MIB + 1;
	unsigned char *big = random_bytes(n, 13);
	struct reports rep = { 0 };
	struct engine_ref r;
	struct backend *be;
	struct engine *e;
	char *vals;
	size_t at;

	cr_assert_not_null(mkdtemp(local_dir));
	cr_assert_eq(backend_local_open(local_dir, &be), 0);
	e = eopen(be, "w");
	cr_assert_eq(put_blob(e, "content", "big", big, n), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	at = assert_chunk_sums(be, big, n);
	vals = find_object(be, "ckpt/", "/values");
	mangle(be, vals, SIZE_MAX, (long)(at + n + 1 + 8 + 3)); /* chunk 1's */
	e = eopen(be, "w");
	memset(&r, 0xa5, sizeof(r));
	cr_assert_eq(engine_get_ref_lazy(e, "content", "big", &r), -EIO);
	cr_assert_null(r.data);
	cr_assert_null(r.parts);
	cr_assert_not_null(strstr(engine_last_error(), "content/big"), "%s",
			   engine_last_error());
	engine_close(e);
	cr_assert_eq(engine_fsck(be, report_fn, &rep), 1, "%s", rep.text);
	cr_assert_not_null(strstr(rep.text, "1 damaged value (content/big)"),
			   "%s", rep.text);
	free(vals);
	free(big);
	backend_close(be);
}

struct chunk_checker {
	struct engine *e;
	const struct engine_ref *r;
	int rc;
};

static void *chunk_check_all(void *arg)
{
	struct chunk_checker *c = arg;
	size_t off;

	/* 128 KiB at a time, as FUSE READs come */
	for (off = 0; off < c->r->len && !c->rc; off += 128u << 10)
		c->rc = engine_ref_check(c->e, c->r, off, 128u << 10);
	return NULL;
}

/*
 * A checkpoint copies a large value's chunk sums with it (checked, not
 * recomputed from bytes it would trust); readers on several threads
 * check one value's chunks at once.  Here on a backend that does not map
 * (the values object read whole).
 */
Test(engine, chunk_sums_survive_a_checkpoint_and_threads_check_at_once)
{
	const size_t n = 4 * MIB + 3;
	unsigned char *big = random_bytes(n, 14);
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	struct chunk_checker c[4];
	pthread_t t[4];
	struct engine_ref r;
	int i;

	cr_assert_eq(put_blob(e, "content", "big", big, n), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "w");
	cr_assert_eq(put_blob(e, "content", "small", "tiny", 4), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	engine_close(e);
	cr_assert_eq(count_objects(be, "ckpt/") > 0, 1);
	assert_chunk_sums(be, big, n);
	cr_assert_eq(engine_fsck(be, NULL, NULL), 0);

	e = eopen(be, "w");
	cr_assert_eq(engine_get_ref_lazy(e, "content", "big", &r), 0, "%s",
		     engine_last_error());
	for (i = 0; i < 4; i++) {
		c[i] = (struct chunk_checker){ .e = e, .r = &r };
		cr_assert_eq(
			pthread_create(&t[i], NULL, chunk_check_all, &c[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(c[i].rc, 0, "%s", engine_last_error());
	}
	cr_assert_eq(memcmp(r.data, big, n), 0);
	engine_ref_release(e, &r);
	engine_close(e);
	free(big);
	backend_close(be);
}

/* The object's sum as XXH3_64bits computes it, and as `sum` records it. */
static void assert_plain_xxh3(struct backend *be, const char *key, uint64_t sum)
{
	void *data;
	size_t len;

	cr_assert_eq(backend_get(be, key, &data, &len), 0, "%s", key);
	cr_assert_eq(XXH3_64bits(data, len), sum, "%s", key);
	free(data);
}

/*
 * The format's xxh3 is XXH3_64bits with seed 0, whichever code computes
 * it (the engine uses libxxhash's AVX2 or AVX-512 variant where it can):
 * a segment's trailer, every checkpoint object's sum in the manifest and
 * the manifest's own are exactly the sums of the plain function, so
 * stores move between builds and machines.  Long inputs (above 240 bytes)
 * are the ones the vector code hashes.
 */
Test(engine, checksums_are_plain_xxh3)
{
	const size_t n = (1u << 20) + 4321;
	unsigned char *big = random_bytes(n, 7);
	struct backend *be = mem();
	struct engine *e = eopen(be, "w");
	float v[300];
	struct engine_ref r;
	struct keys k;
	json_t *root, *o;
	json_error_t jerr;
	char *man, *nl, key[256];
	void *data;
	size_t len, i, idlen;

	for (i = 0; i < 300; i++)
		v[i] = (float)i / 7;
	cr_assert_eq(put_blob(e, "content", "big", big, n), 0);
	cr_assert_eq(put_vec(e, C_VEC, "v", v, 300), 0);
	k = list(be, "log/");
	cr_assert_eq(k.n, 2);
	for (i = 0; i < k.n; i++) {
		const unsigned char *p;
		uint64_t t = 0;
		int b;

		cr_assert_eq(backend_get(be, k.v[i], &data, &len), 0);
		cr_assert_gt(len, 8);
		p = data;
		for (b = 7; b >= 0; b--)
			t = t << 8 | p[len - 8 + (size_t)b];
		cr_assert_eq(XXH3_64bits(p, len - 8), t, "%s", k.v[i]);
		free(data);
	}
	keys_free(&k);

	cr_assert_eq(engine_checkpoint(e), 0);
	man = find_object(be, "ckpt/", "/manifest");
	cr_assert_eq(backend_get(be, man, &data, &len), 0);
	nl = memchr(data, '\n', len);
	cr_assert_not_null(nl);
	cr_assert_eq(len, (size_t)(nl - (char *)data) + 18);
	cr_assert_eq(XXH3_64bits(data, (size_t)(nl - (char *)data) + 1),
		     strtoull(nl + 1, NULL, 16));
	root = json_loadb(data, (size_t)(nl - (char *)data), 0, &jerr);
	cr_assert_not_null(root, "%s", jerr.text);
	idlen = strlen(man) - strlen("manifest");
	cr_assert_geq(json_array_size(json_object_get(root, "objects")), 2);
	json_array_foreach(json_object_get(root, "objects"), i, o)
	{
		snprintf(key, sizeof(key), "%.*s%s", (int)idlen, man,
			 json_string_value(json_object_get(o, "name")));
		assert_plain_xxh3(
			be, key,
			strtoull(json_string_value(json_object_get(o, "xxh3")),
				 NULL, 16));
	}
	json_decref(root);
	free(data);
	free(man);
	engine_close(e);

	/* and the engine, its own sums checked, reads it all back */
	e = eopen(be, "w");
	cr_assert_eq(engine_get_ref(e, "content", "big", &r), 0, "%s",
		     engine_last_error());
	cr_assert_eq(r.len, n);
	cr_assert_eq(memcmp(r.data, big, n), 0);
	engine_ref_release(e, &r);
	cr_assert_eq(engine_get_ref(e, C_VEC, "v", &r), 0, "%s",
		     engine_last_error());
	cr_assert_eq(memcmp(r.data, v, sizeof(v)), 0);
	engine_ref_release(e, &r);
	engine_close(e);
	free(big);
	backend_close(be);
}

struct refreader {
	struct engine *e;
	_Atomic int *stop;
	long refs, errors;
};

/*
 * Takes refs to content/k, which the writer keeps replacing with values
 * of 1000 + f bytes all equal to f, and checks them a while later.
 */
static void *refreader_main(void *arg)
{
	struct refreader *r = arg;

	while (!*r->stop) {
		struct engine_ref ref;
		const unsigned char *p;
		size_t i;
		int rc = engine_get_ref(r->e, "content", "k", &ref);

		if (rc == -ENOENT)
			continue;
		if (rc) {
			r->errors++;
			continue;
		}
		sched_yield(); /* let the writer replace it meanwhile */
		p = ref.data;
		if (ref.len != 1000u + p[0])
			r->errors++;
		for (i = 0; i < ref.len; i++) {
			if (p[i] != p[0]) {
				r->errors++;
				break;
			}
		}
		engine_ref_release(r->e, &ref);
		r->refs++;
	}
	return NULL;
}

Test(engine, refs_stay_intact_while_a_writer_replaces_deletes_checkpoints,
     .fini = local_dir_remove)
{
	_Atomic int stop = 0;
	struct refreader r[3];
	unsigned char buf[1256];
	struct backend *be;
	struct engine *e;
	pthread_t t[3];
	int i;

	cr_assert_not_null(mkdtemp(local_dir));
	cr_assert_eq(backend_local_open(local_dir, &be), 0);
	e = eopen(be, "w");
	memset(buf, 1, sizeof(buf));
	cr_assert_eq(put_blob(e, "content", "k", buf, 1001), 0);
	cr_assert_eq(engine_checkpoint(e), 0);
	engine_close(e);
	e = eopen(be, "w"); /* content/k starts in the mapped checkpoint */
	for (i = 0; i < 3; i++) {
		r[i] = (struct refreader){ .e = e, .stop = &stop };
		cr_assert_eq(pthread_create(&t[i], NULL, refreader_main, &r[i]),
			     0);
	}
	for (i = 2; i < 200; i++) {
		unsigned char f = (unsigned char)(i % 250 + 1);

		if (i % 7 == 0) {
			cr_assert_eq(del(e, "content", "k"), 0);
			continue;
		}
		memset(buf, f, sizeof(buf));
		cr_assert_eq(put_blob(e, "content", "k", buf, 1000u + f), 0);
		if (i % 40 == 0)
			cr_assert_eq(engine_checkpoint(e), 0, "%s",
				     engine_last_error());
	}
	stop = 1;
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].errors, 0);
		cr_assert_gt(r[i].refs, 0);
	}
	engine_close(e);
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

/* --- the state lock prefers writers --------------------------------------- */

struct wpref {
	struct engine *e;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int reader_in, release;
	pid_t committer_tid, late_tid;
	char seen[16];
};

/* Is thread `tid` of this process asleep (blocked on a futex here)? */
static int wpref_blocked(pid_t tid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Holds the read lock (inside foreach) until told to let go. */
static int wpref_hold(void *arg, const char *key, enum engine_type type,
		      const void *data, size_t len)
{
	struct wpref *w = arg;

	pthread_mutex_lock(&w->m);
	w->reader_in = 1;
	pthread_cond_broadcast(&w->cv);
	while (!w->release)
		pthread_cond_wait(&w->cv, &w->m);
	pthread_mutex_unlock(&w->m);
	return 1; /* one key is enough */
}

static void *wpref_reader(void *arg)
{
	struct wpref *w = arg;

	engine_foreach(w->e, "c", wpref_hold, w);
	return NULL;
}

static void *wpref_committer(void *arg)
{
	struct wpref *w = arg;

	__atomic_store_n(&w->committer_tid, gettid(), __ATOMIC_SEQ_CST);
	cr_assert_eq(put_json(w->e, "c", "k", "{\"v\":\"new\"}"), 0);
	return NULL;
}

static void *wpref_late(void *arg)
{
	struct wpref *w = arg;
	void *data;
	size_t len;

	__atomic_store_n(&w->late_tid, gettid(), __ATOMIC_SEQ_CST);
	if (engine_get(w->e, "c", "k", NULL, &data, &len) == 0) {
		snprintf(w->seen, sizeof(w->seen), "%.*s", (int)len,
			 (char *)data);
		free(data);
	}
	return NULL;
}

static void wpref_wait_blocked(pid_t *tid)
{
	/* Bounded: 10 s, then the assertions below say what went wrong. */
	for (int i = 0; i < 10000; i++) {
		pid_t t = __atomic_load_n(tid, __ATOMIC_SEQ_CST);

		if (t && wpref_blocked(t))
			return;
		usleep(1000);
	}
}

/*
 * A reader holds the lock; a committer queues for it; then a second reader
 * comes.  With writers preferred the second reader waits behind the
 * commit and sees its value; readers-first would let it in at once with
 * the old value, and a steady stream of readers could starve commits.
 */
Test(engine, waiting_commit_goes_before_later_readers)
{
	struct backend *be = mem();
	struct wpref w = { .m = PTHREAD_MUTEX_INITIALIZER,
			   .cv = PTHREAD_COND_INITIALIZER };
	pthread_t r, c, l;

	w.e = eopen(be, "w1");
	cr_assert_eq(put_json(w.e, "c", "k", "{\"v\":\"old\"}"), 0);
	pthread_create(&r, NULL, wpref_reader, &w);
	pthread_mutex_lock(&w.m);
	while (!w.reader_in)
		pthread_cond_wait(&w.cv, &w.m);
	pthread_mutex_unlock(&w.m);
	pthread_create(&c, NULL, wpref_committer, &w);
	wpref_wait_blocked(&w.committer_tid);
	pthread_create(&l, NULL, wpref_late, &w);
	/* The late reader either blocks (right) or finishes at once (wrong). */
	for (int i = 0; i < 10000 && !w.seen[0]; i++) {
		pid_t t = __atomic_load_n(&w.late_tid, __ATOMIC_SEQ_CST);

		if (t && wpref_blocked(t))
			break;
		usleep(1000);
	}
	pthread_mutex_lock(&w.m);
	w.release = 1;
	pthread_cond_broadcast(&w.cv);
	pthread_mutex_unlock(&w.m);
	pthread_join(r, NULL);
	pthread_join(c, NULL);
	pthread_join(l, NULL);
	cr_assert_str_eq(w.seen, "{\"v\":\"new\"}",
			 "a later reader overtook a waiting commit: %s",
			 w.seen);
	engine_close(w.e);
	backend_close(be);
}

Test(engine, checkpoint_deletes_covered_segments_in_one_batch)
{
	struct backend *inner = mem(), *be;
	struct engine *e;
	size_t i;
	char k[16];

	cr_assert_eq(backend_fault_open(inner, &be), 0);
	e = eopen(be, "w");
	for (i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "k%zu", i);
		cr_assert_eq(put_json(e, C_DATA, k, "{}"), 0);
	}
	cr_assert_geq(count_objects(be, "log/"), 40);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_DEL), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	/* 40 segments gone, in one batch (one DeleteObjects on S3) */
	cr_assert_eq(count_objects(be, "log/"), 0);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_DEL), 1);
	engine_close(e);
	e = eopen(be, "w");
	assert_value(e, C_DATA, "k39", "{}");
	engine_close(e);
	backend_close(be);
}

/* --- unlogged commits ----------------------------------------------------- */

static int unlogged_put(struct engine *e, const char *key, const char *json,
			const float *v)
{
	struct engine_batch *b = engine_batch_new();
	int rc;

	engine_batch_put_json(b, C_DATA, key, json, strlen(json));
	if (v)
		engine_batch_put_vec(b, C_VEC, key, v, 3);
	rc = engine_commit_unlogged(e, b);
	cr_assert_eq(engine_batch_count(b), 0, "the batch is spent");
	engine_batch_free(b);
	return rc;
}

Test(engine, unlogged_commits_are_written_only_by_the_checkpoint)
{
	struct backend *be = mem();
	struct engine *e = eopen(be, "w1");
	struct engine_stats st;
	const float v[3] = { 1, 2, 3 };
	struct engine_batch *b;
	size_t segs;
	char *got;

	cr_assert_eq(put_json(e, C_DATA, "logged", "{\"a\":1}"), 0);
	segs = count_objects(be, "log/");
	cr_assert_eq(segs, 1);
	cr_assert_eq(unlogged_put(e, "u1", "{\"b\": 2}", v), 0);
	cr_assert_eq(unlogged_put(e, "u2", "{\"c\":3}", NULL), 0);
	/* in memory at once, on disk not at all */
	assert_value(e, C_DATA, "u1", "{\"b\":2}");
	cr_assert_eq(engine_vec_dim(e, C_VEC), 3);
	cr_assert_eq(count_objects(be, "log/"), segs);
	cr_assert_eq(count_objects(be, "ckpt/"), 0);
	engine_get_stats(e, &st);
	cr_assert_eq(st.unlogged, 2);
	cr_assert_eq(st.commits, 3);
	cr_assert_eq(st.segments, 1);
	/* an invalid batch is refused as a logged one is: nothing applied */
	b = engine_batch_new();
	engine_batch_put_vec(b, C_VEC, "bad", v, 2);
	cr_assert_eq(engine_commit_unlogged(e, b), -EINVAL);
	engine_batch_free(b);
	assert_value(e, C_VEC, "bad", NULL);
	/* closed before a checkpoint: lost; the logged commit stays */
	engine_close(e);
	e = eopen(be, "w1");
	assert_value(e, C_DATA, "logged", "{\"a\":1}");
	assert_value(e, C_DATA, "u1", NULL);
	cr_assert_eq(engine_count(e, C_VEC), 0);
	/* with the checkpoint: durable, and the next logged seq is not lost */
	cr_assert_eq(unlogged_put(e, "u1", "{\"b\":2}", v), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	engine_get_stats(e, &st);
	cr_assert_eq(st.unlogged, 0);
	cr_assert_eq(put_json(e, C_DATA, "after", "{\"d\":4}"), 0);
	engine_close(e);
	e = eopen(be, "w2");
	assert_value(e, C_DATA, "logged", "{\"a\":1}");
	assert_value(e, C_DATA, "u1", "{\"b\":2}");
	assert_value(e, C_DATA, "after", "{\"d\":4}");
	got = NULL;
	cr_assert_eq(engine_get(e, C_VEC, "u1", NULL, (void **)&got, &segs), 0);
	cr_assert_eq(segs, 3 * sizeof(float));
	cr_assert_eq(((float *)got)[2], 3.0f);
	free(got);
	engine_close(e);
	backend_close(be);

	/* a store written by unlogged commits and a checkpoint alone */
	be = mem();
	e = eopen(be, "w1");
	cr_assert_eq(unlogged_put(e, "only", "{\"e\":5}", v), 0);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	cr_assert_eq(count_objects(be, "log/"), 0);
	engine_close(e);
	e = eopen(be, "w1");
	assert_value(e, C_DATA, "only", "{\"e\":5}");
	cr_assert_eq(engine_count(e, C_VEC), 1);
	/* the next commit of the same writer does not reuse the seq */
	cr_assert_eq(put_json(e, C_DATA, "next", "{\"f\":6}"), 0);
	engine_close(e);
	e = eopen(be, "w3");
	assert_value(e, C_DATA, "only", "{\"e\":5}");
	assert_value(e, C_DATA, "next", "{\"f\":6}");
	engine_close(e);
	backend_close(be);
}

Test(engine, unlogged_commits_reach_the_observer_like_logged_ones)
{
	struct backend *be = mem();
	struct engine_opts o = { .writer = "w1" };
	struct seen s = { 0 };
	struct engine *e;

	cr_assert_eq(engine_open_observed(be, &o, observe_fn, &s, &e), 0);
	cr_assert_eq(unlogged_put(e, "k", "{\"x\":1}", NULL), 0);
	cr_assert_str_eq(s.log, "put docstore/data k {\"x\":1}\n");
	engine_close(e);
	backend_close(be);
}

/*
 * The values object is written by a second thread while the vector
 * objects are built and written: a failure of any one write, that one's
 * included, fails the checkpoint with its errno and leaves no object of
 * it behind, and the store as it was.
 */
Test(engine, checkpoint_fails_whichever_object_write_fails)
{
	const float v[3] = { 1, 2, 3 };
	struct backend *inner = mem(), *be;
	struct engine *e;
	unsigned long n, puts;

	cr_assert_eq(backend_fault_open(inner, &be), 0);
	e = eopen(be, "w");
	cr_assert_eq(put_json(e, C_DATA, "k", "{\"v\":1}"), 0);
	cr_assert_eq(put_vec(e, C_VEC, "a", v, 3), 0);
	cr_assert_eq(put_vec(e, "vector_store/other", "b", v, 3), 0);
	puts = backend_fault_calls(be, BACKEND_FAULT_PUT);
	cr_assert_eq(engine_checkpoint(e), 0, "%s", engine_last_error());
	/* keys, values, two vector objects, the manifest */
	puts = backend_fault_calls(be, BACKEND_FAULT_PUT) - puts;
	cr_assert_geq(puts, 5);
	for (n = 1; n <= puts; n++) {
		cr_assert_eq(put_json(e, C_DATA, "k", "{\"v\":2}"), 0);
		cr_assert_eq(
			backend_fault_set(be, BACKEND_FAULT_PUT, n, 1, -ENOSPC),
			0);
		cr_assert_eq(engine_checkpoint(e), -ENOSPC, "put %lu", n);
		cr_assert_not_null(strstr(engine_last_error(), "cannot write"),
				   "%s", engine_last_error());
		engine_close(e);
		e = eopen(be, "w");
		assert_value(e, C_DATA, "k", "{\"v\":2}");
		cr_assert_eq(engine_checkpoint(e), 0, "%s",
			     engine_last_error());
		cr_assert_eq(put_json(e, C_DATA, "k", "{\"v\":1}"), 0);
	}
	engine_close(e);
	backend_close(be);
}
