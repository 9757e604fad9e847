/* backend_source.c - from a SOURCE argument to a backend. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "backends/backend_int.h"
#include "backends/backend_source.h"

static int source_local(const char *dir, const struct backend_source_opts *o,
			struct backend **out, struct backend_source *info,
			char *err, size_t errlen)
{
	struct stat st;
	int rc;

	info->kind = "local";
	if (o && o->create) {
		rc = backend_mkdirs(dir, false);
		if (rc) {
			snprintf(err, errlen,
				 "cannot make the store directory %s: %s", dir,
				 strerror(-rc));
			return rc;
		}
	} else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: no store here", dir);
		return -ENOENT;
	}
	info->local_dir = realpath(dir, NULL);
	if (!info->local_dir) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return rc;
	}
	rc = backend_local_open(info->local_dir, out);
	if (rc)
		snprintf(err, errlen, "cannot open the store %s: %s",
			 info->local_dir, strerror(-rc));
	return rc;
}

/* ${XDG_CACHE_HOME:-~/.cache}/lodefs/<kind>-<bucket>-<hash of where> */
static char *source_cache_default(const struct backend_source *info)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char where[2048], *dir = NULL;
	int n;

	n = snprintf(where, sizeof(where), "%s\n%s\n%s",
		     info->s3.endpoint ? info->s3.endpoint : "",
		     info->s3.bucket, info->s3.prefix ? info->s3.prefix : "");
	if (n < 0 || (size_t)n >= sizeof(where))
		return NULL;
	if (xdg && *xdg)
		n = asprintf(&dir, "%s/lodefs/%s-%s-%016llx", xdg, info->kind,
			     info->s3.bucket,
			     (unsigned long long)XXH3_64bits(where, (size_t)n));
	else
		n = asprintf(&dir, "%s/.cache/lodefs/%s-%s-%016llx",
			     home && *home ? home : "/root", info->kind,
			     info->s3.bucket,
			     (unsigned long long)XXH3_64bits(where, (size_t)n));
	return n < 0 ? NULL : dir;
}

static int source_remote(const char *source,
			 const struct backend_source_opts *o,
			 struct backend **out, struct backend_source *info,
			 char *err, size_t errlen)
{
	struct backend *s3 = NULL;
	int rc;

	info->kind = strncmp(source, "r2://", 5) == 0 ? "r2" : "s3";
	rc = s3_config_resolve(source, o ? &o->s3 : NULL, &info->s3, err,
			       errlen);
	if (rc)
		return rc;
	rc = backend_s3_open(&info->s3, &s3, err, errlen);
	if (rc)
		return rc;
	info->s3_be = s3;
	if (o && o->cache_dir && strcmp(o->cache_dir, "none") == 0) {
		*out = s3;
		return 0;
	}
	info->cache_dir = o && o->cache_dir ? strdup(o->cache_dir)
					    : source_cache_default(info);
	info->cache_size = o ? o->cache_size : 0;
	if (!info->cache_dir) {
		backend_close(s3);
		info->s3_be = NULL;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = backend_mkdirs(info->cache_dir, false);
	if (!rc)
		rc = backend_cache_open(s3, info->cache_dir, info->cache_size,
					out); /* closes s3 on failure */
	else
		backend_close(s3);
	if (rc) {
		info->s3_be = NULL;
		snprintf(err, errlen, "cannot use the cache directory %s: %s",
			 info->cache_dir, strerror(-rc));
		return rc;
	}
	info->cache_be = *out;
	return 0;
}

int backend_open_source(const char *source, const struct backend_source_opts *o,
			struct backend **out, struct backend_source *info,
			char *err, size_t errlen)
{
	int rc;

	memset(info, 0, sizeof(*info));
	*out = NULL;
	if (errlen)
		*err = '\0';
	if (!source || !*source) {
		snprintf(err, errlen, "no store given");
		return -EINVAL;
	}
	if (s3_is_source(source))
		rc = source_remote(source, o, out, info, err, errlen);
	else if (strstr(source, "://")) {
		snprintf(err, errlen,
			 "%.*s: unknown kind of store (expected a directory, "
			 "s3://BUCKET[/PREFIX] or r2://ACCOUNT_ID/BUCKET"
			 "[/PREFIX])",
			 (int)(strstr(source, "://") - source + 3), source);
		rc = -EINVAL;
	} else
		rc = source_local(source, o, out, info, err, errlen);
	if (rc)
		backend_source_release(info);
	return rc;
}

void backend_source_release(struct backend_source *info)
{
	free(info->local_dir);
	free(info->cache_dir);
	s3_config_free(&info->s3);
	memset(info, 0, sizeof(*info));
}

int backend_source_get_stats(const struct backend_source *info,
			     struct backend_source_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!info->s3_be)
		return -EINVAL;
	backend_s3_get_stats(info->s3_be, &st->s3);
	if (info->cache_be)
		st->has_cache = backend_cache_get_stats(info->cache_be,
							&st->cache) == 0;
	return 0;
}
