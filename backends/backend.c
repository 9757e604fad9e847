/* backend.c - dispatch wrappers shared by every backend. */
#include <errno.h>
#include <string.h>

#include "backends/backend.h"

int backend_get(struct backend *be, const char *key, void **data, size_t *len)
{
	return be->get(be, key, data, len);
}

int backend_get_range(struct backend *be, const char *key, uint64_t off,
		      size_t len, void *buf, size_t *got)
{
	return be->get_range(be, key, off, len, buf, got);
}

int backend_head(struct backend *be, const char *key, struct backend_stat *st)
{
	return be->head(be, key, st);
}

int backend_put(struct backend *be, const char *key, const void *data,
		size_t len, const struct backend_cond *cond)
{
	return be->put(be, key, data, len, cond);
}

int backend_del(struct backend *be, const char *key)
{
	return be->del(be, key);
}

int backend_del_many(struct backend *be, const char *const *keys, size_t n)
{
	size_t i;
	int rc = 0, r;

	if (be->version >= 2 && be->del_many)
		return be->del_many(be, keys, n);
	for (i = 0; i < n; i++) {
		r = be->del(be, keys[i]);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

int backend_list(struct backend *be, const char *prefix, backend_list_fn *fn,
		 void *arg)
{
	return be->list(be, prefix ? prefix : "", fn, arg);
}

int backend_map(struct backend *be, const char *key, const void **data,
		size_t *len, void **cookie)
{
	if (!be->map)
		return -ENOTSUP;
	return be->map(be, key, data, len, cookie);
}

void backend_unmap(struct backend *be, void *cookie)
{
	if (be->unmap && cookie)
		be->unmap(be, cookie);
}

void backend_close(struct backend *be)
{
	if (be)
		be->close(be);
}

int backend_key_check(const char *key)
{
	size_t n;

	if (!key)
		return -EINVAL;
	n = strlen(key);
	if (n == 0 || n > BACKEND_KEY_MAX)
		return -EINVAL;
	return 0;
}
