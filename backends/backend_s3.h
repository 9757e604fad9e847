/* backend_s3.h - S3 and R2 stores: where they are, who we are, the backend. */
#ifndef LODEFS_BACKEND_S3_H
#define LODEFS_BACKEND_S3_H

#include <stddef.h>

#include "backends/backend.h"

/*
 * Everything needed to talk to one bucket and prefix.  Strings are owned by
 * the struct (s3_config_free releases them); NULL means "not set".
 */
struct s3_config {
	char *bucket;	/* required */
	char *prefix;	/* "" or "a/b/" (always ends with '/' when not empty) */
	char *endpoint; /* "https://s3.eu-west-1.amazonaws.com", no trailing '/' */
	char *region;	/* "us-east-1", "auto" for R2 */
	int path_style; /* 1: https://host/bucket/key, 0: https://bucket.host/key */
	char *access_key;
	char *secret_key;    /* never printed, logged or put in an error */
	char *session_token; /* optional; never printed either */
	/* Total time a request may take, retries included (ms). 0: default. */
	unsigned timeout_ms;
	/* Requests in flight at once per backend (connections). 0: default. */
	unsigned max_conns;
	/* Objects larger than this are uploaded in parts (bytes). 0: default. */
	size_t multipart_threshold;
};

/*
 * What the user said, before resolution; every member may be NULL/0.
 * Mirrors the mount options (-o endpoint=, region=, path_style,
 * passwd_file=, profile=, timeout=).
 */
struct s3_user_opts {
	const char *endpoint;
	const char *region;
	int path_style;	     /* -1: not said, 0 or 1 */
	const char *passwd_file;
	const char *profile; /* overrides AWS_PROFILE */
	unsigned timeout_s;  /* 0: not said */
};

/*
 * Returns 1 if `source` names an S3 or R2 store (starts with "s3://" or
 * "r2://"), else 0.
 */
int s3_is_source(const char *source);

/*
 * Resolves `source` ("s3://BUCKET[/PREFIX]" or
 * "r2://ACCOUNT_ID/BUCKET[/PREFIX]") and `u` (may be NULL) against the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 * AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, AWS_PROFILE,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE) and the files
 * ~/.aws/credentials and ~/.aws/config, into *cfg.  Returns 0, or a
 * negative errno with a one-line reason for a human in `err` (never a
 * secret).
 */
int s3_config_resolve(const char *source, const struct s3_user_opts *u,
		      struct s3_config *cfg, char *err, size_t errlen);

void s3_config_free(struct s3_config *cfg); /* accepts a zeroed struct */

/*
 * "s3://bucket/prefix at https://endpoint (region r)": for logs,
 * .lodefs/config and messages.  Never contains a secret.  Returns the
 * length written (snprintf rules).
 */
int s3_config_describe(const struct s3_config *cfg, char *buf, size_t len);

/*
 * Opens the backend for cfg (copied; cfg may be freed afterwards) and
 * checks, with one request, that the bucket exists and the credentials
 * are accepted.  Returns 0, or a negative errno with a one-line reason in
 * `err` (-EACCES: key or signature refused; -ENOENT: no such bucket;
 * -EHOSTUNREACH / -ETIMEDOUT / -ECONNREFUSED: cannot reach the endpoint).
 */
int backend_s3_open(const struct s3_config *cfg, struct backend **out,
		    char *err, size_t errlen);

/* Counters of one S3 backend, for .lodefs/stats and the benchmarks. */
struct backend_s3_stats {
	unsigned long long requests; /* HTTP requests sent, retries included */
	unsigned long long retries;
	unsigned long long get, put, head, del, list, multipart_parts;
	unsigned long long bytes_up, bytes_down;
};

/* Returns -EINVAL if `be` is not an S3 backend. */
int backend_s3_get_stats(struct backend *be, struct backend_s3_stats *st);

#endif
