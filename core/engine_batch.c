/* engine_batch.c - building batches: argument checks, JSON validation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/engine_int.h"

struct engine_batch *engine_batch_new(void)
{
	return calloc(1, sizeof(struct engine_batch));
}

void engine_batch_free(struct engine_batch *b)
{
	if (!b)
		return;
	eng_buf_free(&b->recs);
	free(b);
}

size_t engine_batch_count(const struct engine_batch *b)
{
	return b ? b->count : 0;
}

size_t engine_batch_bytes(const struct engine_batch *b)
{
	return b ? b->bytes : 0;
}

/* Remembers the first failure: committing the batch then fails with it. */
static int eng_batch_poison(struct engine_batch *b, int rc, const char *coll,
			    const char *key, const char *why)
{
	if (!b->err) {
		b->err = rc;
		snprintf(b->why, sizeof(b->why), "%.100s/%.200s: %.190s",
			 coll ? coll : "(null)", key ? key : "(null)", why);
	}
	return rc;
}

static int eng_batch_names(struct engine_batch *b, const char *coll,
			   const char *key, bool need_key)
{
	if (!coll || eng_name_valid(coll, strlen(coll), ENGINE_KEY_MAX))
		return eng_batch_poison(b, -EINVAL, coll, key,
					"invalid collection name");
	if (!need_key)
		return 0;
	if (!key || eng_name_valid(key, strnlen(key, ENGINE_KEY_MAX + 1),
				   ENGINE_KEY_MAX))
		return eng_batch_poison(
			b, -EINVAL, coll, key,
			key && strlen(key) > ENGINE_KEY_MAX
				? "key longer than ENGINE_KEY_MAX"
				: "invalid key");
	return 0;
}

static int eng_batch_add(struct engine_batch *b, uint8_t op, uint8_t type,
			 const char *coll, const char *key, const void *val,
			 size_t len)
{
	size_t kl = key ? strlen(key) : 0;

	eng_rec_encode(&b->recs, op, type, coll, strlen(coll), key ? key : "",
		       kl, val, len);
	if (b->recs.err)
		return eng_batch_poison(b, -ENOMEM, coll, key, "out of memory");
	b->count++;
	b->bytes += len;
	return 0;
}

/*
 * Copies JSON text without the whitespace between tokens.  Unlike a
 * parse-and-dump round trip this keeps numbers, escapes and key order
 * exactly as the user wrote them.  The text has already been validated.
 */
static size_t eng_json_minify(const char *in, size_t len, char *out)
{
	size_t i, n = 0;
	bool str = false, esc = false;

	for (i = 0; i < len; i++) {
		char ch = in[i];

		if (str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				str = false;
		} else if (ch == ' ' || ch == '\t' || ch == '\n' ||
			   ch == '\r') {
			continue;
		} else if (ch == '"') {
			str = true;
		}
		out[n++] = ch;
	}
	return n;
}

int engine_batch_put_json(struct engine_batch *b, const char *coll,
			  const char *key, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *root;
	char *compact;
	size_t n;
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	if (!json || len == 0)
		return eng_batch_poison(b, -EINVAL, coll, key, "empty JSON");
	if (len > ENGINE_VALUE_MAX)
		return eng_batch_poison(b, -EINVAL, coll, key,
					"value too large");
	root = json_loadb(json, len, 0, &jerr);
	if (!root) {
		char why[200];

		snprintf(why, sizeof(why), "invalid JSON at line %d: %s",
			 jerr.line, jerr.text);
		return eng_batch_poison(b, -EINVAL, coll, key, why);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return eng_batch_poison(b, -EINVAL, coll, key,
					"JSON value is not an object");
	}
	json_decref(root);
	compact = malloc(len);
	if (!compact)
		return eng_batch_poison(b, -ENOMEM, coll, key, "out of memory");
	n = eng_json_minify(json, len, compact);
	rc = eng_batch_add(b, ENG_OP_PUT, ENGINE_JSON, coll, key, compact, n);
	free(compact);
	return rc;
}

int engine_batch_put_blob(struct engine_batch *b, const char *coll,
			  const char *key, const void *data, size_t len)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	if (len && !data)
		return eng_batch_poison(b, -EINVAL, coll, key, "NULL data");
	if (len > ENGINE_VALUE_MAX)
		return eng_batch_poison(b, -EINVAL, coll, key,
					"value too large");
	return eng_batch_add(b, ENG_OP_PUT, ENGINE_BLOB, coll, key, data, len);
}

int engine_batch_put_vec(struct engine_batch *b, const char *coll,
			 const char *key, const float *v, uint32_t dim)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	if (!v || dim == 0 || dim > ENGINE_VALUE_MAX / sizeof(float))
		return eng_batch_poison(b, -EINVAL, coll, key,
					"vector without data or dimension");
	return eng_batch_add(b, ENG_OP_PUT, ENGINE_VEC, coll, key, v,
			     (size_t)dim * sizeof(float));
}

int engine_batch_del(struct engine_batch *b, const char *coll, const char *key)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, key, true);
	if (rc)
		return rc;
	return eng_batch_add(b, ENG_OP_DEL, ENGINE_NONE, coll, key, NULL, 0);
}

int engine_batch_drop(struct engine_batch *b, const char *coll)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = eng_batch_names(b, coll, NULL, false);
	if (rc)
		return rc;
	return eng_batch_add(b, ENG_OP_DROP, ENGINE_NONE, coll, NULL, NULL, 0);
}
