/* backend_source.h - the backend a SOURCE argument names. */
#ifndef LODEFS_BACKEND_SOURCE_H
#define LODEFS_BACKEND_SOURCE_H

#include <stdint.h>

#include "backends/backend.h"
#include "backends/backend_cache.h"
#include "backends/backend_s3.h"

/* What the user said about a store, beyond its SOURCE. */
struct backend_source_opts {
	struct s3_user_opts s3;
	/*
	 * Remote stores: the cache directory.  NULL: the default,
	 * ${XDG_CACHE_HOME:-~/.cache}/lodefs/<kind>-<bucket>-<hash>;
	 * "none": no cache (every open downloads what it reads).
	 */
	const char *cache_dir;
	uint64_t cache_size; /* bytes; 0: the cache's default (1 GiB) */
	/* Local stores: 1 makes the directory if it is absent. */
	int create;
};

/* What was opened (strings malloc'd; backend_source_release frees). */
struct backend_source {
	const char *kind; /* "local", "s3" or "r2" (static) */
	char *local_dir;  /* local: absolute directory; else NULL */
	char *cache_dir;  /* remote: the cache directory, NULL if none */
	uint64_t cache_size;
	struct s3_config s3; /* remote: resolved; secrets stay inside */
	/* Borrowed views of the stack (valid while the backend is open). */
	struct backend *s3_be;	  /* the S3 backend, or NULL */
	struct backend *cache_be; /* the cache wrapper, or NULL */
};

/*
 * Opens the backend `source` names: NULL or "" is invalid; "s3://..." and
 * "r2://..." are remote stores (backend_s3_open, behind the cache unless
 * o->cache_dir is "none"); anything else is a local directory.  `o` may
 * be NULL.  Returns 0 with *out (the caller closes it with
 * backend_close) and *info filled, or a negative errno with a one-line
 * reason in `err` (never a secret).
 */
int backend_open_source(const char *source, const struct backend_source_opts *o,
			struct backend **out, struct backend_source *info,
			char *err, size_t errlen);
void backend_source_release(struct backend_source *info);

struct backend_source_stats {
	struct backend_s3_stats s3;
	int has_cache;
	struct backend_cache_stats cache;
};

/* Counters of a remote source; -EINVAL for a local one. */
int backend_source_get_stats(const struct backend_source *info,
			     struct backend_source_stats *st);

#endif
