/* fs_docs_xattr.c - docs/ extended attributes: user.* is document metadata. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "core/text.h"
#include "fs/fs_int.h"

#define FS_XATTR_PREFIX	   "user."
#define FS_XATTR_VALUE_MAX 65536

/* --- extended attributes: user.* is document metadata ---------------------- */

/* Loads ip's user metadata (a new reference) from its file or record. */
static json_t *fs_docs_xattrs(struct fs *fs, struct fs_ino *ip)
{
	struct store_file sf = { 0 };
	json_error_t err;
	json_t *x = NULL;
	struct fs_file *f = fs_file_pin(fs, ip);

	if (f) {
		pthread_mutex_lock(&f->mu);
		if (f->xattrs)
			x = json_deep_copy(f->xattrs);
		pthread_mutex_unlock(&f->mu);
	}
	fs_file_unpin(fs, ip, f);
	if (x)
		return x;
	if (store_doc_stat(fs->st, ip->keys[0], &sf) == 0 && sf.xattrs)
		x = json_loads(sf.xattrs, 0, &err);
	store_file_release(&sf);
	return x ? x : json_object();
}

/* An xattr value as metadata: a number when it reads back the same. */
static json_t *fs_xattr_value(const char *v, size_t n)
{
	json_error_t err;
	json_t *j;
	char *s;

	if (n && n < 32 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) {
		j = json_loadb(v, n, JSON_DECODE_ANY, &err);
		if (j && json_is_number(j)) {
			s = json_dumps(j, JSON_ENCODE_ANY);
			if (s && strlen(s) == n && memcmp(s, v, n) == 0) {
				free(s);
				return j;
			}
			free(s);
		}
		json_decref(j);
	}
	return json_stringn(v, n);
}

static int fs_docs_xattr_store(struct fs *fs, struct fs_ino *ip, json_t *x)
{
	struct fs_dent *d, copy;
	struct fs_file *f;
	char *text;
	int rc;

	if (ip->kind != FS_K_DOC)
		return -ENOTSUP;
	f = fs_file_pin(fs, ip); /* a RELEASE may run meanwhile */
	if (f && fs_docs_open_dirty(fs, ip)) {
		/* committed with the content at the next flush */
		pthread_mutex_lock(&f->mu);
		json_decref(f->xattrs);
		f->xattrs = json_incref(x);
		f->dirty = 1;
		f->version++;
		pthread_mutex_unlock(&f->mu);
		fs_file_unpin(fs, ip, f);
		return 0;
	}
	text = json_dumps(x, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text) {
		fs_file_unpin(fs, ip, f);
		return -ENOMEM;
	}
	pthread_mutex_lock(&fs->docs_mu);
	pthread_mutex_lock(&fs->mu);
	d = fs_dent_by_ino(fs, ip->ino);
	if (d) {
		clock_gettime(CLOCK_REALTIME, &d->ctime);
		copy = *d;
		copy.path = strdup(d->path);
	}
	pthread_mutex_unlock(&fs->mu);
	if (!d)
		rc = -ENOENT;
	else if (!copy.path)
		rc = -ENOMEM;
	else
		rc = fs_docs_commit_attr(fs, &copy, text);
	if (!rc && f) {
		pthread_mutex_lock(&f->mu);
		json_decref(f->xattrs);
		f->xattrs = json_incref(x);
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_unlock(&fs->docs_mu);
	fs_file_unpin(fs, ip, f);
	if (rc && d)
		fs_error(fs, ip->keys[0], "metadata not changed: %s",
			 store_last_error());
	if (d)
		free(copy.path);
	free(text);
	return rc == -ENOENT || rc == -ENOMEM || rc == -EINVAL || !rc ? rc
								      : -EIO;
}

static int fs_xattr_name(struct fs *fs, struct fs_ino *ip, const char *name)
{
	size_t pl = strlen(FS_XATTR_PREFIX);

	if (strncmp(name, FS_XATTR_PREFIX, pl) != 0)
		return -ENOTSUP;
	if (!name[pl] || !text_is_utf8(name + pl, strlen(name + pl)))
		return -EINVAL;
	return ip->kind == FS_K_DOC ? 0 : -ENOTSUP;
}

int fs_docs_setxattr(struct fs *fs, struct fs_ino *ip, const char *name,
		     const char *value, size_t size, int flags)
{
	json_t *x, *v;
	const char *key = name + strlen(FS_XATTR_PREFIX);
	int rc = fs_xattr_name(fs, ip, name);

	if (rc)
		return rc;
	if (size > FS_XATTR_VALUE_MAX)
		return -E2BIG;
	if (!text_is_utf8(value, size)) {
		fs_error(fs, ip->keys[0],
			 "refused %s: metadata values must be UTF-8 text",
			 name);
		return -EINVAL;
	}
	x = fs_docs_xattrs(fs, ip);
	if ((flags & XATTR_CREATE) && json_object_get(x, key))
		rc = -EEXIST;
	else if ((flags & XATTR_REPLACE) && !json_object_get(x, key))
		rc = -ENODATA;
	if (!rc) {
		v = fs_xattr_value(value, size);
		json_object_set_new(x, key, v);
		rc = fs_docs_xattr_store(fs, ip, x);
	}
	json_decref(x);
	return rc;
}

int fs_docs_getxattr(struct fs *fs, struct fs_ino *ip, const char *name,
		     char **out, size_t *len)
{
	json_t *x, *v;
	int rc = fs_xattr_name(fs, ip, name);

	if (rc)
		return rc == -ENOTSUP ? -ENODATA : rc;
	x = fs_docs_xattrs(fs, ip);
	v = json_object_get(x, name + strlen(FS_XATTR_PREFIX));
	if (!v) {
		rc = -ENODATA;
	} else if (json_is_string(v)) {
		*len = json_string_length(v);
		*out = malloc(*len + 1);
		if (*out)
			memcpy(*out, json_string_value(v), *len + 1);
		else
			rc = -ENOMEM;
	} else {
		*out = json_dumps(v, JSON_ENCODE_ANY);
		*len = *out ? strlen(*out) : 0;
		if (!*out)
			rc = -ENOMEM;
	}
	json_decref(x);
	return rc;
}

int fs_docs_listxattr(struct fs *fs, struct fs_ino *ip, char **out, size_t *len)
{
	json_t *x, *v;
	const char *k;
	size_t n = 0, pl = strlen(FS_XATTR_PREFIX);
	char *buf, *p;

	*out = NULL;
	*len = 0;
	if (ip->kind != FS_K_DOC)
		return 0;
	x = fs_docs_xattrs(fs, ip);
	json_object_foreach(x, k, v) n += pl + strlen(k) + 1;
	buf = malloc(n + 1);
	if (!buf) {
		json_decref(x);
		return -ENOMEM;
	}
	p = buf;
	json_object_foreach(x, k, v)
	{
		p += sprintf(p, "%s%s", FS_XATTR_PREFIX, k) + 1;
	}
	json_decref(x);
	*out = buf;
	*len = n;
	return 0;
}

int fs_docs_removexattr(struct fs *fs, struct fs_ino *ip, const char *name)
{
	json_t *x;
	int rc = fs_xattr_name(fs, ip, name);

	if (rc)
		return rc == -ENOTSUP ? -ENODATA : rc;
	x = fs_docs_xattrs(fs, ip);
	if (json_object_del(x, name + strlen(FS_XATTR_PREFIX)))
		rc = -ENODATA;
	else
		rc = fs_docs_xattr_store(fs, ip, x);
	json_decref(x);
	return rc;
}
