/* s3_http.c - one S3 request over pooled curl handles, with retries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/s3_int.h"
#include "backends/sha256.h"

/*
 * Each pooled easy handle keeps its own connection alive between
 * requests; the share lets handles reuse each other's DNS answers, TLS
 * sessions and idle connections.  A request takes a handle for one try
 * and gives it back before sleeping, so threads never wait on each other
 * while backing off, and a request never holds two handles (no deadlock
 * when multipart uploads run their parts on other threads).
 */

#define S3_BACKOFF_BASE_MS 50
#define S3_BACKOFF_CAP_MS  2000
/* A retry is not worth starting with less than this left of the budget. */
#define S3_RETRY_LAST_MS  50
#define S3_ERR_BODY_MAX	  (64u << 10)
#define S3_CONNECT_MAX_MS 10000L

/* The SHA-256 of nothing: the payload hash of GET, HEAD and DELETE. */
static const char s3_empty_sha256[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s3_curl_init_rc;

static void s3_curl_global_init(void)
{
	s3_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_errno(CURLcode cc, int os_errno, long status, const char *code)
{
	code = code ? code : "";
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
			return -EHOSTUNREACH;
		if (os_errno == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTONOSUPPORT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return -EPROTO;
	default: /* truncated bodies (PARTIAL_FILE) and the rest */
		return -EIO;
	}
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 301:
	case 307:
		return -EINVAL; /* another region or endpoint: see resp.region */
	case 400:
		if (strcmp(code, "KeyTooLongError") == 0)
			return -ENAMETOOLONG;
		if (strcmp(code, "EntityTooLarge") == 0)
			return -EFBIG;
		if (strcmp(code, "RequestTimeout") == 0)
			return -ETIMEDOUT;
		if (strcmp(code, "ExpiredToken") == 0 ||
		    strcmp(code, "InvalidToken") == 0)
			return -EACCES;
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT; /* NoSuchKey, NoSuchBucket, NoSuchUpload */
	case 405:
	case 501:
		return -ENOTSUP;
	case 408:
		return -ETIMEDOUT;
	case 409:
		return strcmp(code, "ConditionalRequestConflict") == 0 ? -EAGAIN
								       : -EBUSY;
	case 411:
		return -EINVAL;
	case 412:
		return -EEXIST;
	case 413:
		return -EFBIG;
	case 416:
		return -ERANGE;
	case 429:
	case 503:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

int s3_retryable(CURLcode cc, long status, const char *code)
{
	code = code ? code : "";
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
	if (status >= 500)
		return status != 501;
	return status == 429 || status == 408 ||
	       (status == 400 && strcmp(code, "RequestTimeout") == 0) ||
	       (status == 409 &&
		strcmp(code, "ConditionalRequestConflict") == 0);
}

static uint64_t s3_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s3_sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static uint64_t s3_backoff_ms(struct s3_backend *s, unsigned attempt)
{
	uint64_t z = atomic_fetch_add(&s->rng, 0x9e3779b97f4a7c15ULL);
	uint64_t cap = (uint64_t)S3_BACKOFF_BASE_MS
		       << (attempt < 6 ? attempt : 6);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	if (cap > S3_BACKOFF_CAP_MS)
		cap = S3_BACKOFF_CAP_MS;
	return z % (cap + 1);
}

/* ---- the pool ---- */

static struct s3_conn *s3_conn_get(struct s3_backend *s)
{
	struct s3_conn *c = NULL;

	pthread_mutex_lock(&s->pool_lock);
	while (!s->idle && s->nconns == s->cfg.max_conns)
		pthread_cond_wait(&s->pool_cond, &s->pool_lock);
	if (s->idle) {
		c = s->idle;
		s->idle = c->next;
	} else {
		c = &s->conns[s->nconns];
		c->h = curl_easy_init();
		if (c->h)
			s->nconns++;
		else
			c = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	return c;
}

static void s3_conn_put(struct s3_backend *s, struct s3_conn *c)
{
	pthread_mutex_lock(&s->pool_lock);
	c->next = s->idle;
	s->idle = c;
	pthread_cond_signal(&s->pool_cond);
	pthread_mutex_unlock(&s->pool_lock);
}

static void s3_share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
			  void *arg)
{
	struct s3_backend *s = arg;

	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&s->share_locks[data]);
}

static void s3_share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct s3_backend *s = arg;

	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&s->share_locks[data]);
}

int s3_http_init(struct s3_backend *s)
{
	struct s3_str sig = { 0 }, tok = { 0 };
	int i;

	/* First what cannot fail: s3_http_fini undoes it in any case. */
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->share_locks[i], NULL);
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_cond_init(&s->pool_cond, NULL);
	pthread_once(&s3_curl_once, s3_curl_global_init);
	if (s3_curl_init_rc != CURLE_OK)
		return -EIO;
	atomic_init(&s->rng, (unsigned long long)time(NULL) ^
				     (unsigned long long)(uintptr_t)s);
	s->conns = calloc(s->cfg.max_conns, sizeof(*s->conns));
	s->share = curl_share_init();
	if (!s->conns || !s->share)
		return -ENOMEM;
	if (curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, s3_share_lock) ||
	    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC,
			      s3_share_unlock) ||
	    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s) ||
	    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(s->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_SSL_SESSION) ||
	    curl_share_setopt(s->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_CONNECT))
		return -EIO;
	if (s->cfg.connect_to) {
		s->connect_to = curl_slist_append(NULL, s->cfg.connect_to);
		if (!s->connect_to)
			return -ENOMEM;
	}
	s3_str_adds(&sig, "aws:amz:");
	s3_str_adds(&sig, s->cfg.region);
	s3_str_adds(&sig, ":s3");
	if (s3_str_done(&sig))
		return -ENOMEM;
	s->sigv4 = sig.p;
	if (s->cfg.session_token) {
		s3_str_adds(&tok, "x-amz-security-token: ");
		s3_str_adds(&tok, s->cfg.session_token);
		if (s3_str_done(&tok))
			return -ENOMEM;
		s->token_header = tok.p;
	}
	return 0;
}

void s3_http_fini(struct s3_backend *s)
{
	unsigned i;
	int j;

	/* Easy handles first: they hold connections the share owns. */
	for (i = 0; i < s->nconns; i++)
		curl_easy_cleanup(s->conns[i].h);
	free(s->conns);
	if (s->share)
		curl_share_cleanup(s->share);
	for (j = 0; j < CURL_LOCK_DATA_LAST; j++)
		pthread_mutex_destroy(&s->share_locks[j]);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_cond_destroy(&s->pool_cond);
	free(s->sigv4);
	curl_slist_free_all(s->connect_to);
	if (s->token_header) {
		explicit_bzero(s->token_header, strlen(s->token_header));
		free(s->token_header);
	}
}

/* ---- one try ---- */

struct s3_xfer {
	const struct s3_req *req;
	struct s3_resp *resp;
	const char *up; /* the body being sent */
	size_t up_len, up_pos;
	size_t body_cap; /* allocated bytes of resp->body */
};

static int s3_body_reserve(struct s3_xfer *x, size_t more)
{
	struct s3_resp *r = x->resp;
	size_t cap = x->body_cap ? x->body_cap : 256;
	char *p;

	if (more < x->body_cap - r->len)
		return 0;
	if (more >= SIZE_MAX / 2 - r->len)
		return -ENOMEM;
	while (cap - r->len <= more)
		cap *= 2;
	p = realloc(r->body, cap);
	if (!p)
		return -ENOMEM;
	r->body = p;
	r->body[r->len] = '\0';
	x->body_cap = cap;
	return 0;
}

static int s3_body_add(struct s3_xfer *x, const char *p, size_t n)
{
	if (s3_body_reserve(x, n))
		return -ENOMEM;
	memcpy(x->resp->body + x->resp->len, p, n);
	x->resp->len += n;
	x->resp->body[x->resp->len] = '\0';
	return 0;
}

static int s3_is_2xx(long status)
{
	return status >= 200 && status < 300;
}

/* Parses "NAME: value" (value trimmed) when the name matches. */
static int s3_header_is(const char *p, size_t len, const char *name,
			const char **val, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || p[n] != ':' || strncasecmp(p, name, n) != 0)
		return 0;
	p += n + 1;
	len -= n + 1;
	while (len && (*p == ' ' || *p == '\t'))
		p++, len--;
	while (len &&
	       (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
		len--;
	*val = p;
	*vlen = len;
	return 1;
}

static int s3_parse_u64(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len || len > 19)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

static size_t s3_on_header(char *p, size_t size, size_t n, void *arg)
{
	struct s3_xfer *x = arg;
	struct s3_resp *r = x->resp;
	const struct s3_req *req = x->req;
	size_t len = size * n, vlen;
	const char *v;

	if (len > 5 && memcmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);

		/* A new header block (after 100 Continue): forget the last. */
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->has_length = r->has_total = 0;
		r->etag[0] = r->region[0] = '\0';
		return len;
	}
	if (len <= 2) { /* the blank line: headers are complete */
		if (r->status < 200)
			return len;
		/* Past the end of the object: nothing to read, stop now. */
		if (req->buf && r->status == 206 && r->has_total &&
		    req->range_off >= r->total) {
			r->done = 1;
			return 0;
		}
		if (req->want_body && s3_is_2xx(r->status) && r->has_length &&
		    r->length < SIZE_MAX / 2 &&
		    s3_body_reserve(x, (size_t)r->length)) {
			r->oom = 1;
			return 0;
		}
		return len;
	}
	if (s3_header_is(p, len, "Content-Length", &v, &vlen)) {
		r->has_length = s3_parse_u64(v, vlen, &r->length) == 0;
	} else if (s3_header_is(p, len, "ETag", &v, &vlen)) {
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
			v++, vlen -= 2;
		if (vlen < sizeof(r->etag)) {
			memcpy(r->etag, v, vlen);
			r->etag[vlen] = '\0';
		}
	} else if (s3_header_is(p, len, "Content-Range", &v, &vlen)) {
		const char *slash = memchr(v, '/', vlen);

		r->has_total =
			slash &&
			s3_parse_u64(slash + 1, vlen - (size_t)(slash + 1 - v),
				     &r->total) == 0;
	} else if (s3_header_is(p, len, "x-amz-bucket-region", &v, &vlen)) {
		if (vlen < sizeof(r->region)) {
			memcpy(r->region, v, vlen);
			r->region[vlen] = '\0';
		}
	}
	return len;
}

/*
 * Copies a body chunk into req->buf: a 206 is the range, a 200 the whole
 * object (a server that ignored Range).  Returns 0 to stop the transfer.
 */
static int s3_body_to_buf(struct s3_xfer *x, const char *p, size_t len)
{
	struct s3_resp *r = x->resp;
	const struct s3_req *req = x->req;
	uint64_t pos = r->received - len; /* of p[0] in what was sent */
	size_t n;

	if (r->status == 200) {
		if (pos + len <= req->range_off)
			return 1;
		if (req->range_off > pos) {
			p += req->range_off - pos;
			len -= (size_t)(req->range_off - pos);
		}
	}
	n = req->cap - r->got < len ? req->cap - r->got : len;
	memcpy((char *)req->buf + r->got, p, n);
	r->got += n;
	/* A whole object when we wanted part of it: stop once we have it. */
	if (r->status == 200 && r->got == req->cap &&
	    (!r->has_length || r->received < r->length)) {
		r->done = 1;
		return 0;
	}
	return 1;
}

static size_t s3_on_body(char *p, size_t size, size_t n, void *arg)
{
	struct s3_xfer *x = arg;
	struct s3_resp *r = x->resp;
	size_t len = size * n;

	r->received += len;
	if (!s3_is_2xx(r->status)) {
		/* An error's XML: keep enough of it to read the code. */
		if (r->len < S3_ERR_BODY_MAX &&
		    s3_body_add(x, p,
				S3_ERR_BODY_MAX - r->len < len
					? S3_ERR_BODY_MAX - r->len
					: len)) {
			r->oom = 1;
			return 0;
		}
		return len;
	}
	if (x->req->buf)
		return s3_body_to_buf(x, p, len) ? len : 0;
	if (x->req->want_body && s3_body_add(x, p, len)) {
		r->oom = 1;
		return 0;
	}
	return len;
}

static size_t s3_on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct s3_xfer *x = arg;
	size_t len = size * n;

	if (len > x->up_len - x->up_pos)
		len = x->up_len - x->up_pos;
	if (!len)
		return 0;
	memcpy(buf, x->up + x->up_pos, len);
	x->up_pos += len;
	return len;
}

/* curl rewinds the body when it must send it again on a new connection. */
static int s3_on_seek(void *arg, curl_off_t off, int origin)
{
	struct s3_xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->up_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->up_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* The request's URL: base, the encoded key or the bucket, the query. */
static char *s3_url(struct s3_backend *s, const struct s3_req *req)
{
	struct s3_str u = { 0 };

	s3_str_adds(&u, s->base);
	if (req->key) {
		s3_str_adds(&u, "/");
		s3_str_add_uri(&u, s->cfg.prefix, strlen(s->cfg.prefix), 1);
		s3_str_add_uri(&u, req->key, strlen(req->key), 1);
	} else if (!s->cfg.path_style) {
		s3_str_adds(&u, "/");
	}
	if (req->query) {
		s3_str_adds(&u, "?");
		s3_str_adds(&u, req->query);
	}
	return s3_str_done(&u) ? NULL : u.p;
}

static struct curl_slist *s3_headers(struct s3_backend *s,
				     const struct s3_req *req,
				     const char *payload_sha256)
{
	struct curl_slist *h = NULL, *t;
	char sha[100];
	size_t i;

	/*
	 * curl signs every header given here, even "Name:" (which it does not
	 * send): so only headers that are sent, and no "Expect:".
	 */
	snprintf(sha, sizeof(sha), "x-amz-content-sha256: %s", payload_sha256);
	h = curl_slist_append(h, sha);
	t = h;
	if (t && s->token_header)
		t = curl_slist_append(t, s->token_header);
	for (i = 0; t && i < sizeof(req->headers) / sizeof(req->headers[0]) &&
		    req->headers[i];
	     i++)
		t = curl_slist_append(t, req->headers[i]);
	if (!t) {
		curl_slist_free_all(h);
		return NULL;
	}
	return t;
}

static CURLcode s3_setup(struct s3_backend *s, CURL *h,
			 const struct s3_req *req, struct s3_xfer *x,
			 const char *url, struct curl_slist *headers,
			 uint64_t left_ms)
{
	long connect_ms = left_ms < 1000		? 1000
			  : left_ms > S3_CONNECT_MAX_MS ? S3_CONNECT_MAX_MS
							: (long)left_ms;
	CURLcode cc;

	curl_easy_reset(h);
	cc = curl_easy_setopt(h, CURLOPT_URL, url);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_USERNAME, s->cfg.access_key);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_PASSWORD, s->cfg.secret_key);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_USERAGENT, "lodefs");
	if (cc)
		return cc;
	curl_easy_setopt(h, CURLOPT_SHARE, s->share);
	/* Keys may hold "." and ".." segments: send them as they are. */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	/* No total limit (a GiB may take minutes), but no stalls either. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->stall_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (s->connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, s->connect_to);
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0 ||
		   strcmp(req->method, "POST") == 0) {
		if (req->method[1] == 'U') {
			curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)req->body_len);
		} else {
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)req->body_len);
		}
		curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, s3_on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
	} else if (strcmp(req->method, "GET") != 0) {
		cc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return cc;
}

void s3_resp_free(struct s3_resp *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

/*
 * Reads the S3 error code of an answer: from the error's XML, or, for a
 * 200 that may carry an <Error> (CompleteMultipartUpload), from that.
 */
static void s3_read_code(const struct s3_req *req, struct s3_resp *r)
{
	const char *end = r->body + r->len, *val;
	size_t len;

	if (!r->body)
		return;
	if (s3_is_2xx(r->status)) {
		if (!req->error_in_200 ||
		    !s3_xml_find(r->body, end, "Error", &val, &len))
			return;
		/* S3 sent 200 and then failed: the request did not happen. */
		r->status = 500;
		if (s3_xml_copy(val, val + len, "Code", r->code,
				sizeof(r->code)))
			snprintf(r->code, sizeof(r->code), "InternalError");
		return;
	}
	if (s3_xml_copy(r->body, end, "Code", r->code, sizeof(r->code)))
		r->code[0] = '\0';
}

/* One try on one pooled handle.  Returns the transfer's CURLcode. */
static CURLcode s3_try(struct s3_backend *s, const struct s3_req *req,
		       struct s3_resp *resp, const char *url,
		       struct curl_slist *headers, uint64_t left_ms,
		       int *os_errno)
{
	struct s3_xfer x = { req, resp, req->body, req->body_len, 0, 0 };
	struct s3_conn *c = s3_conn_get(s);
	curl_off_t up = 0, down = 0;
	long os_err = 0, connects = 0;
	CURLcode cc;

	if (!c)
		return CURLE_OUT_OF_MEMORY;
	cc = s3_setup(s, c->h, req, &x, url, headers, left_ms);
	if (!cc)
		cc = curl_easy_perform(c->h);
	curl_easy_getinfo(c->h, CURLINFO_OS_ERRNO, &os_err);
	curl_easy_getinfo(c->h, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(c->h, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &connects);
	s3_conn_put(s, c);
	atomic_fetch_add(&s->stats.requests, 1);
	atomic_fetch_add(&s->stats.bytes_up, (unsigned long long)up);
	atomic_fetch_add(&s->stats.bytes_down, (unsigned long long)down);
	atomic_fetch_add(&s->stats.connects, (unsigned long long)connects);
	*os_errno = (int)os_err;
	if (resp->done)
		return CURLE_OK; /* we stopped it: we had what we wanted */
	if (resp->oom)
		return CURLE_OUT_OF_MEMORY;
	/* A body shorter than its Content-Length is a broken transfer. */
	if (!cc && s3_is_2xx(resp->status) && resp->has_length &&
	    strcmp(req->method, "HEAD") != 0 && resp->received != resp->length)
		cc = CURLE_PARTIAL_FILE;
	if (!cc)
		s3_read_code(req, resp);
	return cc;
}

int s3_request(struct s3_backend *s, const struct s3_req *req,
	       struct s3_resp *resp)
{
	char sha[SHA256_HEX_LEN + 1];
	uint64_t start = s3_now_ms(), now;
	struct curl_slist *headers = NULL;
	char *url = s3_url(s, req);
	unsigned attempt = 0;
	int rc = -ENOMEM;

	memset(resp, 0, sizeof(*resp));
	if (req->body)
		sha256_hex(req->body, req->body_len, sha);
	headers = url ? s3_headers(s, req, req->body ? sha : s3_empty_sha256)
		      : NULL;
	if (!headers)
		goto out_free;
	for (attempt = 0;; attempt++) {
		uint64_t delay;
		int os_errno = 0;
		CURLcode cc;

		s3_resp_free(resp);
		now = s3_now_ms();
		cc = s3_try(s, req, resp, url, headers,
			    start + s->cfg.timeout_ms > now
				    ? start + s->cfg.timeout_ms - now
				    : 0,
			    &os_errno);
		rc = s3_errno(cc, os_errno, resp->status, resp->code);
		if (!rc || !s3_retryable(cc, resp->status, resp->code))
			break;
		delay = s3_backoff_ms(s, attempt);
		now = s3_now_ms();
		if (now + delay >= start + s->cfg.timeout_ms) {
			/*
			 * A draw that does not fit what is left of the budget:
			 * wait half of what is left instead and try again, so
			 * that one long draw early does not give up most of
			 * the budget; stop when too little is left for a try.
			 */
			uint64_t left =
				start + s->cfg.timeout_ms > now
					? start + s->cfg.timeout_ms - now
					: 0;

			if (left < 2 * S3_RETRY_LAST_MS)
				break;
			delay = left / 2;
		}
		atomic_fetch_add(&s->stats.retries, 1);
		s3_sleep_ms(delay);
	}
	resp->tries = attempt + 1;
out_free:
	curl_slist_free_all(headers);
	free(url);
	return rc;
}
