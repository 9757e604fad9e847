/* backend_memory.c - a backend in process memory, for tests and tools. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "backends/backend.h"

struct memory_obj {
	char *key;
	void *data;
	size_t len;
	uint64_t version; /* bumped on every put: the ETag */
};

struct memory_backend {
	struct backend be; /* first: the public part */
	pthread_mutex_t lock;
	struct memory_obj *slots; /* open addressing, key NULL = empty */
	size_t cap;		  /* power of two */
	size_t count;
	size_t tombs; /* slots whose key is the tombstone */
	uint64_t next_version;
};

static char memory_tomb[1];

static struct memory_backend *memory_of(struct backend *be)
{
	return (struct memory_backend *)be;
}

static size_t memory_hash(const char *key)
{
	return (size_t)XXH3_64bits(key, strlen(key));
}

/* Returns the slot holding `key`, or NULL. */
static struct memory_obj *memory_find(struct memory_backend *m, const char *key)
{
	size_t mask = m->cap - 1, i;

	if (!m->cap)
		return NULL;
	for (i = memory_hash(key) & mask;; i = (i + 1) & mask) {
		struct memory_obj *o = &m->slots[i];

		if (!o->key)
			return NULL;
		if (o->key != memory_tomb && strcmp(o->key, key) == 0)
			return o;
	}
}

/*
 * Rehashes into a table with room for twice the live keys, dropping
 * tombstones: steady put/del churn stays bounded by the live count.
 */
static int memory_grow(struct memory_backend *m)
{
	size_t ncap = 64, i;

	while (ncap < (m->count + 1) * 2)
		ncap *= 2;
	struct memory_obj *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (i = 0; i < m->cap; i++) {
		struct memory_obj *o = &m->slots[i];
		size_t j;

		if (!o->key || o->key == memory_tomb)
			continue;
		for (j = memory_hash(o->key) & (ncap - 1); ns[j].key;
		     j = (j + 1) & (ncap - 1))
			;
		ns[j] = *o;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	m->tombs = 0;
	return 0;
}

static void memory_etag(const struct memory_obj *o, char *etag)
{
	snprintf(etag, BACKEND_ETAG_MAX, "\"m%llu\"",
		 (unsigned long long)o->version);
}

static int memory_get(struct backend *be, const char *key, void **data,
		      size_t *len)
{
	struct memory_backend *m = memory_of(be);
	struct memory_obj *o;
	char *copy;
	int rc = 0;

	if (backend_key_check(key))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	o = memory_find(m, key);
	if (!o) {
		rc = -ENOENT;
		goto out_unlock;
	}
	copy = malloc(o->len + 1);
	if (!copy) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	memcpy(copy, o->data, o->len);
	copy[o->len] = '\0';
	*data = copy;
	*len = o->len;
out_unlock:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int memory_get_range(struct backend *be, const char *key, uint64_t off,
			    size_t len, void *buf, size_t *got)
{
	struct memory_backend *m = memory_of(be);
	struct memory_obj *o;
	int rc = 0;

	if (backend_key_check(key))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	o = memory_find(m, key);
	if (!o) {
		rc = -ENOENT;
	} else if (off >= o->len) {
		*got = 0;
	} else {
		size_t n = o->len - off < len ? o->len - off : len;

		memcpy(buf, (char *)o->data + off, n);
		*got = n;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int memory_head(struct backend *be, const char *key,
		       struct backend_stat *st)
{
	struct memory_backend *m = memory_of(be);
	struct memory_obj *o;
	int rc = 0;

	if (backend_key_check(key))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	o = memory_find(m, key);
	if (!o) {
		rc = -ENOENT;
	} else {
		st->size = o->len;
		memory_etag(o, st->etag);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int memory_put(struct backend *be, const char *key, const void *data,
		      size_t len, const struct backend_cond *cond)
{
	struct memory_backend *m = memory_of(be);
	struct memory_obj *o;
	void *copy;
	int rc = 0;

	if (backend_key_check(key))
		return -EINVAL;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	pthread_mutex_lock(&m->lock);
	o = memory_find(m, key);
	if (cond && cond->kind == BACKEND_COND_ABSENT && o) {
		rc = -EEXIST;
		goto out_free;
	}
	if (cond && cond->kind == BACKEND_COND_ETAG) {
		char etag[BACKEND_ETAG_MAX];

		if (!o) {
			rc = -EEXIST;
			goto out_free;
		}
		memory_etag(o, etag);
		if (!cond->etag || strcmp(etag, cond->etag) != 0) {
			rc = -EEXIST;
			goto out_free;
		}
	}
	if (!o) {
		size_t i, mask;
		char *kcopy;

		if ((m->count + m->tombs + 1) * 4 > m->cap * 3) {
			rc = memory_grow(m);
			if (rc)
				goto out_free;
		}
		kcopy = strdup(key);
		if (!kcopy) {
			rc = -ENOMEM;
			goto out_free;
		}
		mask = m->cap - 1;
		for (i = memory_hash(key) & mask;
		     m->slots[i].key && m->slots[i].key != memory_tomb;
		     i = (i + 1) & mask)
			;
		if (m->slots[i].key == memory_tomb)
			m->tombs--;
		o = &m->slots[i];
		o->key = kcopy;
		o->data = NULL;
		m->count++;
	}
	free(o->data);
	o->data = copy;
	o->len = len;
	o->version = ++m->next_version;
	pthread_mutex_unlock(&m->lock);
	return 0;
out_free:
	pthread_mutex_unlock(&m->lock);
	free(copy);
	return rc;
}

static int memory_del(struct backend *be, const char *key)
{
	struct memory_backend *m = memory_of(be);
	struct memory_obj *o;

	if (backend_key_check(key))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	o = memory_find(m, key);
	if (o) {
		free(o->key);
		free(o->data);
		o->key = memory_tomb;
		o->data = NULL;
		m->count--;
		m->tombs++;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

struct memory_listed {
	char *key;
	uint64_t size;
};

static int memory_listed_cmp(const void *a, const void *b)
{
	const struct memory_listed *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static int memory_list(struct backend *be, const char *prefix,
		       backend_list_fn *fn, void *arg)
{
	struct memory_backend *m = memory_of(be);
	struct memory_listed *keys = NULL;
	size_t n = 0, i, plen = strlen(prefix);
	int rc = 0;

	/* Snapshot the matching keys so `fn` may call back into us. */
	pthread_mutex_lock(&m->lock);
	keys = malloc((m->count ? m->count : 1) * sizeof(*keys));
	if (!keys) {
		pthread_mutex_unlock(&m->lock);
		return -ENOMEM;
	}
	for (i = 0; i < m->cap; i++) {
		struct memory_obj *o = &m->slots[i];

		if (!o->key || o->key == memory_tomb ||
		    strncmp(o->key, prefix, plen) != 0)
			continue;
		keys[n].key = strdup(o->key);
		if (!keys[n].key) {
			rc = -ENOMEM;
			break;
		}
		keys[n++].size = o->len;
	}
	pthread_mutex_unlock(&m->lock);
	if (!rc) {
		/* strcmp orders by unsigned char, the same as memcmp. */
		qsort(keys, n, sizeof(*keys), memory_listed_cmp);
		for (i = 0; i < n && !rc; i++)
			rc = fn(arg, keys[i].key, keys[i].size);
	}
	for (i = 0; i < n; i++)
		free(keys[i].key);
	free(keys);
	return rc;
}

static void memory_close(struct backend *be)
{
	struct memory_backend *m = memory_of(be);
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->cap; i++) {
		if (m->slots[i].key && m->slots[i].key != memory_tomb) {
			free(m->slots[i].key);
			free(m->slots[i].data);
		}
	}
	free(m->slots);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int backend_memory_open(struct backend **out)
{
	struct memory_backend *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->be.version = BACKEND_VERSION;
	m->be.name = "memory";
	m->be.where = "memory";
	m->be.get = memory_get;
	m->be.get_range = memory_get_range;
	m->be.head = memory_head;
	m->be.put = memory_put;
	m->be.del = memory_del;
	m->be.list = memory_list;
	m->be.close = memory_close;
	*out = &m->be;
	return 0;
}
