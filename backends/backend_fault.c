/* backend_fault.c - wraps a backend to fail chosen calls, for tests. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"

#define FAULT_KINDS 4 /* one per bit of BACKEND_FAULT_ALL */

struct fault_backend {
	struct backend be; /* first: the public part */
	struct backend *inner;
	char *where;
	pthread_mutex_t lock; /* guards everything below */
	unsigned long calls[FAULT_KINDS];
	unsigned ops;	    /* kinds armed to fail, 0 = none */
	unsigned long skip; /* matching calls still to let through */
	unsigned long left; /* failures still to inject, 0 = no limit */
	int err;
};

static struct fault_backend *fault_of(struct backend *be)
{
	return (struct fault_backend *)be;
}

static unsigned fault_index(unsigned op)
{
	switch (op) {
	case BACKEND_FAULT_GET:
		return 0;
	case BACKEND_FAULT_PUT:
		return 1;
	case BACKEND_FAULT_DEL:
		return 2;
	default:
		return 3;
	}
}

/*
 * Counts a call of kind `op` and decides its fate.  Returns 0 to forward
 * it to the inner backend, or the armed negative errno to fail it without
 * touching the inner backend.
 */
static int fault_enter(struct fault_backend *f, unsigned op)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	f->calls[fault_index(op)]++;
	if (f->ops & op) {
		if (f->skip) {
			f->skip--;
		} else {
			rc = f->err;
			if (f->left && --f->left == 0)
				f->ops = 0;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int fault_get(struct backend *be, const char *key, void **data,
		     size_t *len)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_GET);

	return rc ? rc : f->inner->get(f->inner, key, data, len);
}

static int fault_get_range(struct backend *be, const char *key, uint64_t off,
			   size_t len, void *buf, size_t *got)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_GET);

	return rc ? rc : f->inner->get_range(f->inner, key, off, len, buf, got);
}

static int fault_head(struct backend *be, const char *key,
		      struct backend_stat *st)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_GET);

	return rc ? rc : f->inner->head(f->inner, key, st);
}

static int fault_put(struct backend *be, const char *key, const void *data,
		     size_t len, const struct backend_cond *cond)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_PUT);

	return rc ? rc : f->inner->put(f->inner, key, data, len, cond);
}

static int fault_del(struct backend *be, const char *key)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_DEL);

	return rc ? rc : f->inner->del(f->inner, key);
}

/* A batch is one call, as it is one request on S3. */
static int fault_del_many(struct backend *be, const char *const *keys, size_t n)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_DEL);

	return rc ? rc : backend_del_many(f->inner, keys, n);
}

static int fault_list(struct backend *be, const char *prefix,
		      backend_list_fn *fn, void *arg)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_LIST);

	return rc ? rc : f->inner->list(f->inner, prefix, fn, arg);
}

static int fault_map(struct backend *be, const char *key, const void **data,
		     size_t *len, void **cookie)
{
	struct fault_backend *f = fault_of(be);
	int rc = fault_enter(f, BACKEND_FAULT_GET);

	return rc ? rc : f->inner->map(f->inner, key, data, len, cookie);
}

static void fault_unmap(struct backend *be, void *cookie)
{
	struct fault_backend *f = fault_of(be);

	f->inner->unmap(f->inner, cookie);
}

static void fault_close(struct backend *be)
{
	struct fault_backend *f = fault_of(be);

	if (!f)
		return;
	backend_close(f->inner);
	pthread_mutex_destroy(&f->lock);
	free(f->where);
	free(f);
}

/* On failure `inner` still belongs to the caller. */
int backend_fault_open(struct backend *inner, struct backend **out)
{
	struct fault_backend *f;
	const char *iw;
	size_t n;

	if (!inner || !out)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	iw = inner->where ? inner->where : "";
	n = strlen("fault:") + strlen(iw) + 1;
	f->where = malloc(n);
	if (!f->where) {
		free(f);
		return -ENOMEM;
	}
	snprintf(f->where, n, "fault:%s", iw);
	pthread_mutex_init(&f->lock, NULL);
	f->inner = inner;
	f->be.version = BACKEND_VERSION;
	f->be.name = "fault";
	f->be.where = f->where;
	f->be.get = fault_get;
	f->be.get_range = fault_get_range;
	f->be.head = fault_head;
	f->be.put = fault_put;
	f->be.del = fault_del;
	f->be.del_many = fault_del_many;
	f->be.list = fault_list;
	if (inner->map && inner->unmap) {
		f->be.map = fault_map;
		f->be.unmap = fault_unmap;
	}
	f->be.close = fault_close;
	*out = &f->be;
	return 0;
}

static bool fault_is(const struct backend *be)
{
	return be && be->get == fault_get;
}

/*
 * Beyond the header's contract: `ops` 0 disarms; nth 0 means 1; -EINVAL
 * also for unknown bits in `ops` or an `err` that is not negative.
 */
int backend_fault_set(struct backend *be, unsigned ops, unsigned long nth,
		      unsigned long count, int err)
{
	struct fault_backend *f = fault_of(be);

	if (!fault_is(be) || (ops & ~(unsigned)BACKEND_FAULT_ALL))
		return -EINVAL;
	if (ops && err >= 0)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	f->ops = ops;
	f->skip = nth ? nth - 1 : 0;
	f->left = count;
	f->err = err;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* Counts every call the wrapper saw, failed ones included; 0 if not ours. */
unsigned long backend_fault_calls(struct backend *be, unsigned ops)
{
	struct fault_backend *f = fault_of(be);
	unsigned long n = 0;
	unsigned i;

	if (!fault_is(be))
		return 0;
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < FAULT_KINDS; i++) {
		if (ops & (1u << i))
			n += f->calls[i];
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}
