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
	char *bucket; /* required */
	char *prefix; /* "" or "a/b/" (always ends with '/' when not empty) */
	char *endpoint; /* "https://s3.eu-west-1.amazonaws.com", no trailing '/' */
	char *region; /* "us-east-1", "auto" for R2 */
	int path_style; /* 1: https://host/bucket/key, 0: https://bucket.host/key */
	char *access_key;
	char *secret_key;    /* never printed, logged or put in an error */
	char *session_token; /* optional; never printed either */
	/*
	 * How long a failing request is retried (ms). 0: 30 s.  A transfer
	 * that makes progress is never cut short (a GiB may take minutes);
	 * one that stalls for a third of this (1 to 20 s) fails and is
	 * retried.
	 */
	unsigned timeout_ms;
	/* Requests in flight at once per backend (connections). 0: 16. */
	unsigned max_conns;
	/* Objects larger than this are uploaded in parts (bytes). 0: 64 MiB. */
	size_t multipart_threshold;
	/*
	 * Size of each part but the last (bytes). 0: 16 MiB.  S3 refuses
	 * parts under 5 MiB (s3rver does not); more than 10000 parts grow it.
	 */
	size_t part_size;
	/* Keys per ListObjectsV2 page (max-keys), for tests. 0: 1000. */
	unsigned list_page;
	/*
	 * Optional, owned: where to connect instead of the URL's host, as
	 * curl's CURLOPT_CONNECT_TO takes it ("HOST:PORT:TO_HOST:TO_PORT",
	 * empty parts match anything): for endpoints whose bucket names DNS
	 * does not resolve (private links, tests).  The Host header and the
	 * signature keep the URL's host.
	 */
	char *connect_to;
};

/*
 * What the user said, before resolution; every member may be NULL/0.
 * Mirrors the mount options (-o endpoint=, region=, path_style,
 * passwd_file=, profile=, timeout=).
 */
struct s3_user_opts {
	const char *endpoint;
	const char *region;
	int path_style; /* -1: not said, 0 or 1 */
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
 * AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3), AWS_PROFILE,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE) and the files
 * ~/.aws/credentials and ~/.aws/config, into *cfg (which the caller
 * releases with s3_config_free).  Precedence: what `u` says, then for keys
 * passwd_file=, profile=, the environment, the AWS_PROFILE (or "default")
 * profile; r2:// takes its endpoint from the account id and region "auto".
 * Custom endpoints are path-style unless u->path_style says otherwise.
 * Returns 0, or a negative errno with a one-line reason for a human in
 * `err` (never a secret): -EINVAL for a malformed source, bucket, account
 * id, endpoint or region; -ENOKEY without credentials; -EACCES for a
 * passwd_file open to group or others; -ENOENT for a missing passwd_file
 * or named profile; -ENOTSUP for a profile that needs a role, SSO or a
 * credential process.
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
 * `where` is s3_config_describe()'s text.
 *
 * Differences from backend.h, all S3's own limits:
 * - keys must be valid UTF-8 (-EINVAL otherwise), and prefix + key at
 *   most 1024 bytes (-ENAMETOOLONG otherwise);
 * - an ETag is S3's: a hash of the content, so putting the same bytes
 *   again keeps it;
 * - conditions are sent (If-None-Match: *, If-Match) and a server that
 *   ignores them (s3rver, older S3-compatible servers) returns 0;
 * - list() reads every page before its first callback, and reports the
 *   keys sorted even if the server pages in another order;
 * - no map().
 * Failed requests are retried until cfg->timeout_ms: after that 429 and
 * 503 give -EAGAIN, other 5xx and truncated bodies -EIO, network errors
 * -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT or -ECONNRESET.
 */
int backend_s3_open(const struct s3_config *cfg, struct backend **out,
		    char *err, size_t errlen);

/*
 * Deletes `n` keys with DeleteObjects, 1000 per request (keys that XML
 * cannot carry, and keys the server failed to delete, one by one).
 * Returns 0 whether or not they existed, -EINVAL (nothing deleted) if a
 * key is invalid or `be` is not an S3 backend, or the first error.
 */
int backend_s3_del_many(struct backend *be, const char *const *keys, size_t n);

/* Counters of one S3 backend, for .lodefs/stats and the benchmarks. */
struct backend_s3_stats {
	unsigned long long requests; /* HTTP requests sent, retries included */
	unsigned long long retries;
	/* Calls of each method; del counts batches of del_many as one. */
	unsigned long long get, put, head, del, list, multipart_parts;
	unsigned long long bytes_up, bytes_down;
	unsigned long long connects; /* new connections: the rest reused one */
};

/* Returns -EINVAL if `be` is not an S3 backend. */
int backend_s3_get_stats(struct backend *be, struct backend_s3_stats *st);

#endif
