/* store_files.c - file and directory records: inode numbers, stat, listing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/store_int.h"

/*
 * The salt tells apart processes that make an inode number for the same
 * id in the same nanosecond; the counter, calls within one process.
 */
static pthread_once_t store_salt_once = PTHREAD_ONCE_INIT;
static uint64_t store_salt;
static atomic_uint_fast64_t store_ino_calls;

static void store_salt_init(void)
{
	struct timespec ts;
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == sizeof(v)) {
		store_salt = v;
		return;
	}
	/* no entropy yet (early boot): the next best thing */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	store_salt = XXH3_64bits_withSeed(&v, sizeof(v), (uint64_t)getpid());
}

uint64_t store_new_ino(const char *id)
{
	struct timespec ts;
	XXH3_state_t st;
	uint64_t w[3];

	pthread_once(&store_salt_once, store_salt_init);
	clock_gettime(CLOCK_REALTIME, &ts);
	w[0] = store_salt;
	w[1] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	w[2] = atomic_fetch_add(&store_ino_calls, 1);
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, w, sizeof(w));
	if (id)
		XXH3_64bits_update(&st, id, strlen(id));
	return STORE_INO_MIN | (XXH3_64bits_digest(&st) & (STORE_INO_MIN - 1));
}

int store_file_parse(const json_t *rec, struct store_file *f)
{
	const json_t *x = json_object_get(rec, "xattrs");
	const char *hash = json_string_value(json_object_get(rec, "hash"));

	memset(f, 0, sizeof(*f));
	f->mode = (unsigned)json_integer_value(json_object_get(rec, "mode"));
	f->mtime = (time_t)json_integer_value(json_object_get(rec, "mtime"));
	f->ctime = (time_t)json_integer_value(json_object_get(rec, "ctime"));
	f->size = store_u64(json_object_get(rec, "size"));
	f->ino = store_u64(json_object_get(rec, "ino"));
	f->indexed = json_is_true(json_object_get(rec, "indexed"));
	if (hash)
		snprintf(f->hash, sizeof(f->hash), "%s", hash);
	f->xattrs = json_is_object(x) ? store_dump(x) : strdup("{}");
	return f->xattrs ? 0 : -ENOMEM;
}

void store_file_release(struct store_file *f)
{
	if (!f)
		return;
	free(f->xattrs);
	f->xattrs = NULL;
}

int store_doc_stat(struct store *s, const char *id, struct store_file *f)
{
	json_t *rec;
	int rc;

	memset(f, 0, sizeof(*f));
	store_clear_error();
	if (!id)
		return -ENOENT;
	rc = store_get_object(s, STORE_C_FILES, id, &rec);
	if (rc)
		return rc;
	rc = store_file_parse(rec, f);
	json_decref(rec);
	return rc;
}

/*
 * Records are copied out of the engine first (as text, which is several
 * times smaller than parsed) and handed to the callback after: a callback
 * that reads the store would otherwise take the engine's read lock twice
 * (see engine_foreach).
 */
struct store_rec {
	char *key; /* the key, NUL, then the record's JSON text */
	size_t len;
};

struct store_recs {
	struct store_rec *v;
	size_t n, cap;
};

static int store_recs_add(void *arg, const char *key, enum engine_type type,
			  const void *data, size_t len)
{
	struct store_recs *r = arg;
	size_t kl = strlen(key);
	char *p;

	if (type != ENGINE_JSON)
		return 0; /* not a record: fsck's business */
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct store_rec *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	p = malloc(kl + 1 + len);
	if (!p)
		return -ENOMEM;
	memcpy(p, key, kl + 1);
	memcpy(p + kl + 1, data, len);
	r->v[r->n].key = p;
	r->v[r->n++].len = len;
	return 0;
}

/* Parses record i of r into a new reference in *out. */
static int store_recs_get(const struct store_recs *r, size_t i, json_t **out)
{
	const char *key = r->v[i].key;

	return store_parse_object(key, key + strlen(key) + 1, r->v[i].len, out);
}

static void store_recs_free(struct store_recs *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].key);
	free(r->v);
}

int store_files_foreach(struct store *s, store_file_fn *fn, void *arg)
{
	struct store_recs r = { 0 };
	struct store_file f;
	json_t *j;
	size_t i;
	int rc;

	store_clear_error();
	rc = engine_foreach(s->eng, STORE_C_FILES, store_recs_add, &r);
	for (i = 0; !rc && i < r.n; i++) {
		rc = store_recs_get(&r, i, &j);
		if (rc)
			break;
		rc = store_file_parse(j, &f);
		json_decref(j);
		if (!rc)
			rc = fn(arg, r.v[i].key, &f);
		store_file_release(&f);
	}
	store_recs_free(&r);
	return rc;
}

static void store_dir_parse(const json_t *j, struct store_dir *d)
{
	d->mode = (unsigned)json_integer_value(json_object_get(j, "mode"));
	d->mtime = (time_t)json_integer_value(json_object_get(j, "mtime"));
	d->ctime = (time_t)json_integer_value(json_object_get(j, "ctime"));
	d->ino = store_u64(json_object_get(j, "ino"));
}

int store_dir_stat(struct store *s, const char *path, struct store_dir *d)
{
	json_t *rec;
	int rc;

	memset(d, 0, sizeof(*d));
	store_clear_error();
	if (!path)
		return -ENOENT;
	rc = store_get_object(s, STORE_C_DIRS, path, &rec);
	if (rc)
		return rc;
	store_dir_parse(rec, d);
	json_decref(rec);
	return 0;
}

int store_dirs_foreach(struct store *s, store_dir_fn *fn, void *arg)
{
	struct store_recs r = { 0 };
	struct store_dir d;
	json_t *j;
	size_t i;
	int rc;

	store_clear_error();
	rc = engine_foreach(s->eng, STORE_C_DIRS, store_recs_add, &r);
	for (i = 0; !rc && i < r.n; i++) {
		rc = store_recs_get(&r, i, &j);
		if (rc)
			break;
		store_dir_parse(j, &d);
		json_decref(j);
		rc = fn(arg, r.v[i].key, &d);
	}
	store_recs_free(&r);
	return rc;
}
