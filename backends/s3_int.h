/* s3_int.h - internals of the S3 backend, for its own files and its tests. */
#ifndef LODEFS_S3_INT_H
#define LODEFS_S3_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "backends/backend.h"
#include "backends/backend_s3.h"

/* S3 limits: a whole key (prefix included), keys per DeleteObjects. */
#define S3_KEY_MAX	     1024
#define S3_DELETE_BATCH	     1000
#define S3_PARTS_MAX	     10000
#define S3_PART_MIN	     (5u << 20)
#define S3_DEFAULT_TIMEOUT   30000u
#define S3_DEFAULT_CONNS     16u
#define S3_DEFAULT_MULTIPART ((size_t)64 << 20)
#define S3_DEFAULT_PART	     ((size_t)16 << 20)
#define S3_DEFAULT_PAGE	     1000u
/* Uploads of one multipart object in flight at once. */
#define S3_PART_WORKERS 4u

/* ---- growable strings (s3_xml.c) ---- */

/* A NUL-terminated growable string; `oom` sticks once an append failed. */
struct s3_str {
	char *p;
	size_t len, cap;
	int oom;
};

void s3_str_add(struct s3_str *s, const void *data, size_t len);
void s3_str_adds(struct s3_str *s, const char *str);
void s3_str_addu(struct s3_str *s, unsigned long long v);
/*
 * Appends `len` bytes URI-encoded as SigV4 wants: every byte but A-Z a-z
 * 0-9 - _ . ~ (and '/' when keep_slash) as %XX in upper-case hex.
 */
void s3_str_add_uri(struct s3_str *s, const char *data, size_t len,
		    int keep_slash);
/* Appends `str` as XML text: & < > " ' and \t \n \r as references. */
void s3_str_add_xml(struct s3_str *s, const char *str);
/* Returns 0 and hands the buffer to the caller, or -ENOMEM (and frees). */
int s3_str_done(struct s3_str *s);
void s3_str_free(struct s3_str *s);

/* ---- reading S3's XML answers (s3_xml.c) ---- */

/*
 * Finds the first element <tag>...</tag> (or <tag/>) in [p, end) and sets
 * *val and *len to its raw content (entities still escaped).  Returns the
 * position after the element, or NULL when there is none.  Enough for
 * S3's answers: no CDATA, no comments, no nesting of an element in itself.
 */
const char *s3_xml_find(const char *p, const char *end, const char *tag,
			const char **val, size_t *len);

/*
 * Decodes raw XML text: the five named entities and &#N; / &#xH; (as
 * UTF-8); with `url`, then %XX escapes and '+' for a space (ListObjectsV2
 * with encoding-type=url).  Returns 0 and a malloc'd, NUL-terminated
 * string of *outlen bytes in *out, -EBADMSG for a malformed escape or a
 * NUL, or -ENOMEM.
 */
int s3_xml_text(const char *raw, size_t len, int url, char **out,
		size_t *outlen);

/* Copies the decoded text of the first <tag> into buf; 0 or -errno. */
int s3_xml_copy(const char *p, const char *end, const char *tag, char *buf,
		size_t cap);

/* ---- configuration (s3_config.c) ---- */

/* Deep copy of `src` into a zeroed `dst`; 0 or -ENOMEM. */
int s3_config_copy(struct s3_config *dst, const struct s3_config *src);

/* Returns 1 if `s` is valid UTF-8 (no overlongs, no surrogates), else 0. */
int s3_utf8_valid(const char *s, size_t len);

/* ---- requests (s3_http.c) ---- */

struct s3_conn {
	CURL *h;
	struct s3_conn *next; /* in the free list */
};

struct s3_stats_atomic {
	atomic_ullong requests, retries;
	atomic_ullong get, put, head, del, list, multipart_parts;
	atomic_ullong bytes_up, bytes_down, connects;
};

struct s3_backend {
	struct backend be; /* first: the public part */
	struct s3_config cfg;
	char *where;
	char *base;  /* URL up to the bucket: ".../bucket" or "bucket.host" */
	char *sigv4; /* "aws:amz:REGION:s3" for CURLOPT_AWS_SIGV4 */
	char *token_header;	       /* "x-amz-security-token: ..." or NULL */
	struct curl_slist *connect_to; /* cfg.connect_to for curl, or NULL */
	long stall_s;  /* a transfer without progress this long fails */
	CURLSH *share; /* DNS, connections and TLS sessions */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct s3_conn *conns; /* cfg.max_conns slots, created on demand */
	unsigned nconns;       /* slots created */
	struct s3_conn *idle;
	struct s3_stats_atomic stats;
	atomic_ullong rng; /* jitter: a counter mixed by splitmix64 */
};

/* One request: what to send and where its answer goes. */
struct s3_req {
	const char *method; /* "GET", "PUT", "HEAD", "DELETE", "POST" */
	const char *key; /* backend key (cfg.prefix is added); NULL: bucket */
	const char
		*query;	  /* canonical query string (sorted, encoded) or NULL */
	const void *body; /* PUT and POST */
	size_t body_len;
	const char *headers[4]; /* extra "Name: value" lines, NULL-ended */
	/* Range GETs: the answer's body goes to buf (at most cap bytes). */
	void *buf;
	size_t cap;
	uint64_t range_off; /* the range's first byte (a 200 answer skips it) */
	int want_body;	    /* collect a 2xx body into resp.body */
	int error_in_200; /* a 200 may carry <Error> (CompleteMultipartUpload) */
};

struct s3_resp {
	long status;
	char code[64];		     /* S3 error code, "" if none */
	char etag[BACKEND_ETAG_MAX]; /* without the quotes */
	char region[64];	     /* x-amz-bucket-region, if sent */
	int has_length, has_total;
	uint64_t length; /* Content-Length */
	uint64_t total;	 /* size of the object, from Content-Range */
	char *body; /* malloc'd, NUL-terminated; 2xx (want_body) or error */
	size_t len;
	size_t got;	   /* bytes written to req.buf */
	uint64_t received; /* body bytes received */
	int done;	   /* we stopped the transfer: we had what we wanted */
	int oom;
	unsigned tries; /* of the request, set when s3_request returns */
};

/*
 * Sends `req`, retrying (exponential backoff, full jitter) on 5xx, 429,
 * 408, S3's RequestTimeout, timeouts, resets, refused connections and
 * truncated bodies until cfg.timeout_ms have passed since the first try.
 * Returns 0 for a 2xx answer, else the errno of the last try (see
 * s3_errno); *resp describes the last try either way and the caller frees
 * it with s3_resp_free().
 */
int s3_request(struct s3_backend *s, const struct s3_req *req,
	       struct s3_resp *resp);
void s3_resp_free(struct s3_resp *resp);

/*
 * The one place where an S3 answer becomes an errno: `cc` the transfer's
 * result, `os_errno` the socket error behind it, `status` and `code` the
 * HTTP status and S3 error code.  Returns 0 for a 2xx answer.
 */
int s3_errno(CURLcode cc, int os_errno, long status, const char *code);

/* Returns 1 if a try that ended so is worth another, else 0. */
int s3_retryable(CURLcode cc, long status, const char *code);

/* Sets up the pool and the share; 0 or -errno. */
int s3_http_init(struct s3_backend *s);
void s3_http_fini(struct s3_backend *s);

#endif
