/* embed_remote.c - texts to vectors through an OpenAI-compatible server. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/embed_remote.h"

/* An answer larger than this is not an embeddings answer: stop reading. */
#define EMBED_BODY_MAX	      (512u << 20)
#define EMBED_RETRY_AFTER_MAX 30

struct embed_remote {
	char *url, *model;
	char *auth; /* "Authorization: Bearer KEY", or NULL */
	uint32_t dim;
	unsigned timeout_ms, backoff_ms;
	unsigned retries;
	size_t max_inputs, max_bytes;
	atomic_uint_fast64_t requests;
};

static void embed_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void embed_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static pthread_once_t embed_curl_once = PTHREAD_ONCE_INIT;
static CURLcode embed_curl_rc;

static void embed_curl_init(void)
{
	/* Reference counted by libcurl: other users may have done it too. */
	embed_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int embed_ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The endpoint for the base URL u (see embed_remote.h), malloc'd. */
static char *embed_endpoint(const char *u)
{
	size_t n = strlen(u);
	const char *add;
	char *url;

	while (n > 0 && u[n - 1] == '/')
		n--;
	if (embed_ends_with(u, n, "/embeddings"))
		add = "";
	else if (embed_ends_with(u, n, "/v1"))
		add = "/embeddings";
	else
		add = "/v1/embeddings";
	url = malloc(n + strlen(add) + 1);
	if (url) {
		memcpy(url, u, n);
		strcpy(url + n, add);
	}
	return url;
}

int embed_remote_new(const struct embed_remote_opts *o,
		     struct embed_remote **out, char *err, size_t errlen)
{
	struct embed_remote *e;
	const char *key;

	*out = NULL;
	if (!o->url || !*o->url) {
		embed_err(err, errlen, "no embeddings server URL");
		return -EINVAL;
	}
	if (!o->dim) {
		embed_err(err, errlen,
			  "the embeddings server needs embed_dim (the "
			  "model's dimension)");
		return -EINVAL;
	}
	pthread_once(&embed_curl_once, embed_curl_init);
	if (embed_curl_rc != CURLE_OK) {
		embed_err(err, errlen, "libcurl: %s",
			  curl_easy_strerror(embed_curl_rc));
		return -EIO;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->url = embed_endpoint(o->url);
	e->model = strdup(o->model ? o->model : "");
	key = getenv("LODEFS_EMBED_API_KEY");
	if (!key || !*key)
		key = getenv("OPENAI_API_KEY");
	if (key && *key &&
	    asprintf(&e->auth, "Authorization: Bearer %s", key) < 0)
		e->auth = NULL, key = NULL;
	if (!e->url || !e->model || (key && *key && !e->auth)) {
		embed_remote_free(e);
		return -ENOMEM;
	}
	e->dim = o->dim;
	e->timeout_ms =
		o->timeout_ms ? o->timeout_ms : EMBED_REMOTE_TIMEOUT_MS_DEFAULT;
	e->retries = o->retries >= 0 ? (unsigned)o->retries
				     : EMBED_REMOTE_RETRIES_DEFAULT;
	e->backoff_ms =
		o->backoff_ms ? o->backoff_ms : EMBED_REMOTE_BACKOFF_MS_DEFAULT;
	e->max_inputs =
		o->max_inputs ? o->max_inputs : EMBED_REMOTE_MAX_INPUTS_DEFAULT;
	e->max_bytes =
		o->max_bytes ? o->max_bytes : EMBED_REMOTE_MAX_BYTES_DEFAULT;
	*out = e;
	return 0;
}

void embed_remote_free(struct embed_remote *e)
{
	if (!e)
		return;
	free(e->url);
	free(e->model);
	if (e->auth) /* the key should not linger in freed memory */
		memset(e->auth, 0, strlen(e->auth));
	free(e->auth);
	free(e);
}

const char *embed_remote_url(const struct embed_remote *e)
{
	return e->url;
}

uint32_t embed_remote_dim(const struct embed_remote *e)
{
	return e->dim;
}

uint64_t embed_remote_requests(const struct embed_remote *e)
{
	return atomic_load(&((struct embed_remote *)e)->requests);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t embed_utf8_len(const unsigned char *s, size_t n)
{
	size_t k, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, c = s[0] & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and beyond U+10FFFF */
	if ((k == 3 && c < 0x800) || (k == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return k;
}

/* A JSON string of the text, each invalid byte replaced by U+FFFD. */
static json_t *embed_json_text(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	json_t *j = json_stringn(text, len);
	size_t i = 0, m = 0;
	char *fix;

	if (j || !len)
		return j ? j : json_string("");
	fix = malloc(3 * len + 1);
	if (!fix)
		return NULL;
	while (i < len) {
		size_t k = embed_utf8_len(s + i, len - i);

		if (k && s[i]) {
			memcpy(fix + m, s + i, k);
			m += k;
			i += k;
		} else {
			/* a NUL goes too: it is no text a model should see */
			memcpy(fix + m, "\xef\xbf\xbd", 3);
			m += 3;
			i++;
		}
	}
	j = json_stringn(fix, m);
	free(fix);
	return j;
}

struct embed_body {
	char *p;
	size_t len, cap;
	int too_big;
	long retry_after; /* seconds, -1: none */
};

static size_t embed_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct embed_body *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > EMBED_BODY_MAX) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static size_t embed_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct embed_body *b = arg;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0) {
		const char *p = data + sizeof(name) - 1;

		while (p < data + n && (*p == ' ' || *p == '\t'))
			p++;
		if (p < data + n && isdigit((unsigned char)*p)) {
			long v = 0;

			while (p < data + n && isdigit((unsigned char)*p) &&
			       v < EMBED_RETRY_AFTER_MAX)
				v = v * 10 + (*p++ - '0');
			b->retry_after = v < EMBED_RETRY_AFTER_MAX
						 ? v
						 : EMBED_RETRY_AFTER_MAX;
		}
	}
	return n;
}

static void embed_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Is this transfer failure worth another attempt? */
static int embed_transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

/*
 * Reads the answer's n vectors into out.  Returns 0 or -EIO with a
 * reason.
 */
static int embed_parse(const struct embed_remote *e, const char *body,
		       size_t len, size_t n, float *out, char *err,
		       size_t errlen)
{
	json_error_t jerr;
	json_t *root, *data;
	unsigned char *seen = NULL;
	size_t i, j;
	int rc = -EIO;

	root = json_loadb(body, len, 0, &jerr);
	if (!root) {
		embed_err(err, errlen,
			  "embeddings server %s: the answer is not JSON "
			  "(line %d: %s)",
			  e->url, jerr.line, jerr.text);
		return -EIO;
	}
	data = json_object_get(root, "data");
	if (!json_is_array(data) || json_array_size(data) != n) {
		embed_err(err, errlen,
			  "embeddings server %s: expected \"data\" with %zu "
			  "embeddings, got %zu",
			  e->url, n,
			  json_is_array(data) ? json_array_size(data) : 0);
		goto out;
	}
	seen = calloc(n ? n : 1, 1);
	if (!seen) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_t *item = json_array_get(data, i);
		json_t *idx = json_object_get(item, "index");
		json_t *emb = json_object_get(item, "embedding");
		json_int_t at = json_is_integer(idx) ? json_integer_value(idx)
						     : (json_int_t)i;
		float *row;

		/* "index" orders the answer; without it, the list does */
		if (at < 0 || (size_t)at >= n || seen[at]) {
			embed_err(err, errlen,
				  "embeddings server %s: data[%zu] has a "
				  "wrong or repeated index",
				  e->url, i);
			goto out;
		}
		seen[at] = 1;
		if (!json_is_array(emb)) {
			embed_err(err, errlen,
				  "embeddings server %s: data[%zu] has no "
				  "\"embedding\" list (base64 is not "
				  "supported)",
				  e->url, i);
			goto out;
		}
		if (json_array_size(emb) != e->dim) {
			embed_err(err, errlen,
				  "embeddings server %s: the model gives "
				  "%zu dimensions; embed_dim is %u",
				  e->url, json_array_size(emb), e->dim);
			goto out;
		}
		row = out + (size_t)at * e->dim;
		for (j = 0; j < e->dim; j++) {
			json_t *x = json_array_get(emb, j);
			double d = json_number_value(x);

			if (!json_is_number(x) || !isfinite(d) ||
			    fabs(d) > 3.4e38) {
				embed_err(err, errlen,
					  "embeddings server %s: data[%zu]"
					  ".embedding[%zu] is not a float32",
					  e->url, i, j);
				goto out;
			}
			row[j] = (float)d;
		}
	}
	rc = 0;
out:
	free(seen);
	json_decref(root);
	return rc;
}

/* One request for texts [0, n), with the retries. */
static int embed_request(struct embed_remote *e, const char *const *texts,
			 const size_t *lens, size_t n, float *out, char *err,
			 size_t errlen)
{
	struct curl_slist *hdr = NULL, *h;
	struct embed_body body = { 0 };
	json_t *req, *input;
	char *payload = NULL;
	CURL *c = NULL;
	unsigned attempt, pause = e->backoff_ms;
	size_t i;
	int rc = -ENOMEM;

	req = json_object();
	input = json_array();
	if (!req || !input)
		goto out;
	for (i = 0; i < n; i++)
		if (json_array_append_new(input,
					  embed_json_text(texts[i], lens[i])))
			goto out;
	if (json_object_set_new(req, "model", json_string(e->model)) ||
	    json_object_set(req, "input", input))
		goto out;
	payload = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	c = curl_easy_init();
	if (!payload || !c)
		goto out;
	h = curl_slist_append(hdr, "Content-Type: application/json");
	if (h)
		hdr = h;
	h = h ? curl_slist_append(hdr, "Expect:") : NULL;
	if (h)
		hdr = h;
	if (h && e->auth) {
		h = curl_slist_append(hdr, e->auth);
		if (h)
			hdr = h;
	}
	if (!h)
		goto out;
	curl_easy_setopt(c, CURLOPT_URL, e->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(payload));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(e->timeout_ms < 10000 ? e->timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, embed_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, embed_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &body);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	for (attempt = 0;; attempt++) {
		CURLcode cc;
		long status = 0;
		int again;

		body.len = 0;
		body.too_big = 0;
		body.retry_after = -1;
		atomic_fetch_add(&e->requests, 1);
		cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = embed_parse(e, body.p ? body.p : "", body.len, n,
					 out, err, errlen);
			break;
		}
		again = cc == CURLE_OK ? status == 429 || status >= 500
				       : embed_transient(cc);
		if (cc != CURLE_OK)
			embed_err(err, errlen, "embeddings server %s: %s%s",
				  e->url, curl_easy_strerror(cc),
				  body.too_big ? " (answer too large)" : "");
		else
			embed_err(err, errlen,
				  "embeddings server %s: HTTP %ld: %.200s",
				  e->url, status, body.p ? body.p : "");
		if (!again || attempt >= e->retries) {
			if (again && attempt > 0) {
				size_t l = err ? strlen(err) : 0;

				if (l < errlen)
					embed_err(err + l, errlen - l,
						  " (after %u attempts)",
						  attempt + 1);
			}
			rc = -EIO;
			break;
		}
		if (body.retry_after >= 0)
			embed_sleep_ms((unsigned)body.retry_after * 1000u);
		else
			embed_sleep_ms(pause);
		if (pause < 8000)
			pause *= 2;
	}
out:
	if (rc == -ENOMEM)
		embed_err(err, errlen, "out of memory");
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	free(payload);
	free(body.p);
	json_decref(input);
	json_decref(req);
	return rc;
}

int embed_remote_run(struct embed_remote *e, const char *const *texts,
		     const size_t *lens, size_t n, float *out, char *err,
		     size_t errlen)
{
	size_t i = 0;
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	while (i < n && !rc) {
		size_t j = i, bytes = 0;

		/* at least one text per request, however long it is */
		do
			bytes += lens[j++];
		while (j < n && j - i < e->max_inputs &&
		       bytes + lens[j] <= e->max_bytes);
		rc = embed_request(e, texts + i, lens + i, j - i,
				   out + i * (size_t)e->dim, err, errlen);
		i = j;
	}
	return rc;
}
