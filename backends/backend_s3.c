/* backend_s3.c - the object interface over S3's REST API (and R2's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/md5.h"
#include "backends/s3_int.h"

/*
 * Requests are built here and sent by s3_http.c.  Queries are written in
 * SigV4's canonical form (names sorted, values encoded, "name=" for an
 * empty value) because curl signs the query as it is given (7.88 does
 * not sort it).
 */

static void s3_close(struct backend *be);

static struct s3_backend *s3_of(struct backend *be)
{
	return (struct s3_backend *)be;
}

static int s3_is_mine(struct backend *be)
{
	return be && be->close == s3_close;
}

/* backend.h's rules, plus S3's: UTF-8, prefix + key within 1024 bytes. */
static int s3_key_check(struct s3_backend *s, const char *key)
{
	size_t n;

	if (backend_key_check(key))
		return -EINVAL;
	n = strlen(key);
	if (!s3_utf8_valid(key, n))
		return -EINVAL;
	if (n + strlen(s->cfg.prefix) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int s3_get(struct backend *be, const char *key, void **data, size_t *len)
{
	struct s3_backend *s = s3_of(be);
	struct s3_req req = { .method = "GET", .key = key, .want_body = 1 };
	struct s3_resp resp;
	int rc = s3_key_check(s, key);

	if (rc)
		return rc;
	atomic_fetch_add(&s->stats.get, 1);
	rc = s3_request(s, &req, &resp);
	if (!rc && !resp.body) {
		resp.body = malloc(1); /* an empty object */
		if (resp.body)
			resp.body[0] = '\0';
		else
			rc = -ENOMEM;
	}
	if (rc) {
		s3_resp_free(&resp);
		return rc;
	}
	*data = resp.body;
	*len = resp.len;
	return 0;
}

static int s3_head(struct backend *be, const char *key, struct backend_stat *st)
{
	struct s3_backend *s = s3_of(be);
	struct s3_req req = { .method = "HEAD", .key = key };
	struct s3_resp resp;
	int rc = s3_key_check(s, key);

	if (rc)
		return rc;
	atomic_fetch_add(&s->stats.head, 1);
	rc = s3_request(s, &req, &resp);
	if (!rc && !resp.has_length)
		rc = -EBADMSG;
	if (!rc) {
		st->size = resp.length;
		memcpy(st->etag, resp.etag, sizeof(st->etag));
	}
	s3_resp_free(&resp);
	return rc;
}

static int s3_get_range(struct backend *be, const char *key, uint64_t off,
			size_t len, void *buf, size_t *got)
{
	struct s3_backend *s = s3_of(be);
	struct s3_req req = { .method = "GET", .key = key };
	struct backend_stat st;
	struct s3_resp resp;
	uint64_t last;
	char range[64];
	int rc = s3_key_check(s, key);

	if (rc)
		return rc;
	/* Nothing to read: only whether the key exists matters. */
	if (len == 0 || off > INT64_MAX) {
		rc = s3_head(be, key, &st);
		if (!rc)
			*got = 0;
		return rc;
	}
	last = len - 1 > INT64_MAX - off ? INT64_MAX : off + (len - 1);
	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)last);
	req.headers[0] = range;
	req.buf = buf;
	req.cap = len;
	req.range_off = off;
	atomic_fetch_add(&s->stats.get, 1);
	rc = s3_request(s, &req, &resp);
	if (rc == -ERANGE) { /* 416: the range starts past the end */
		rc = 0;
		resp.got = 0;
	}
	if (!rc)
		*got = resp.got;
	s3_resp_free(&resp);
	return rc;
}

/* ---- put ---- */

/* The condition's header in buf, or NULL; -EEXIST if it cannot hold. */
static int s3_cond_header(const struct backend_cond *cond, char *buf,
			  size_t cap, const char **out)
{
	*out = NULL;
	if (!cond || cond->kind == BACKEND_COND_NONE)
		return 0;
	if (cond->kind == BACKEND_COND_ABSENT) {
		*out = "If-None-Match: *";
		return 0;
	}
	if (cond->kind != BACKEND_COND_ETAG)
		return -EINVAL;
	if (!cond->etag || !cond->etag[0] || strpbrk(cond->etag, "\"\r\n"))
		return -EEXIST;
	snprintf(buf, cap, "If-Match: \"%s\"", cond->etag);
	*out = buf;
	return 0;
}

/* If-Match on a missing object is a condition that does not hold. */
static int s3_cond_result(const struct backend_cond *cond, int rc)
{
	if (rc == -ENOENT && cond && cond->kind == BACKEND_COND_ETAG)
		return -EEXIST;
	return rc;
}

struct s3_mpu {
	struct s3_backend *s;
	const char *key;
	const char *data;
	size_t len, part;
	unsigned nparts;
	char *upload_id; /* URI-encoded */
	char (*etags)[BACKEND_ETAG_MAX];
	atomic_uint next; /* the next part to send, from 0 */
	atomic_int rc;	  /* the first failure */
};

static void *s3_mpu_worker(void *arg)
{
	struct s3_mpu *m = arg;
	unsigned i;

	while (!atomic_load(&m->rc) &&
	       (i = atomic_fetch_add(&m->next, 1)) < m->nparts) {
		size_t off = (size_t)i * m->part;
		struct s3_req req = { .method = "PUT", .key = m->key };
		struct s3_str q = { 0 };
		struct s3_resp resp;
		int rc;

		s3_str_adds(&q, "partNumber=");
		s3_str_addu(&q, i + 1ULL);
		s3_str_adds(&q, "&uploadId=");
		s3_str_adds(&q, m->upload_id);
		rc = s3_str_done(&q);
		if (!rc) {
			req.query = q.p;
			req.body = m->data + off;
			req.body_len =
				m->len - off < m->part ? m->len - off : m->part;
			rc = s3_request(m->s, &req, &resp);
			atomic_fetch_add(&m->s->stats.multipart_parts, 1);
			if (!rc && !resp.etag[0])
				rc = -EBADMSG;
			if (!rc)
				memcpy(m->etags[i], resp.etag,
				       sizeof(m->etags[i]));
			s3_resp_free(&resp);
		}
		s3_str_free(&q);
		if (rc) {
			int zero = 0;

			atomic_compare_exchange_strong(&m->rc, &zero, rc);
		}
	}
	return NULL;
}

/* Sends every part, on up to S3_PART_WORKERS threads (this one too). */
static int s3_mpu_send_parts(struct s3_mpu *m)
{
	pthread_t tids[S3_PART_WORKERS];
	unsigned want =
		m->nparts < S3_PART_WORKERS ? m->nparts : S3_PART_WORKERS;
	unsigned i, started = 0;

	if (want > m->s->cfg.max_conns)
		want = m->s->cfg.max_conns;
	for (i = 1; i < want; i++) {
		if (pthread_create(&tids[started], NULL, s3_mpu_worker, m))
			break;
		started++;
	}
	s3_mpu_worker(m);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return atomic_load(&m->rc);
}

static int s3_mpu_start(struct s3_mpu *m)
{
	struct s3_req req = { .method = "POST",
			      .key = m->key,
			      .query = "uploads=",
			      .want_body = 1 };
	struct s3_str id = { 0 };
	struct s3_resp resp;
	char upload[1024];
	int rc = s3_request(m->s, &req, &resp);

	if (!rc)
		rc = resp.body ? s3_xml_copy(resp.body, resp.body + resp.len,
					     "UploadId", upload, sizeof(upload))
			       : -EBADMSG;
	if (rc == -ENOENT || (!rc && !upload[0]))
		rc = -EBADMSG; /* 2xx without an upload id */
	s3_resp_free(&resp);
	if (rc)
		return rc;
	s3_str_add_uri(&id, upload, strlen(upload), 0);
	rc = s3_str_done(&id);
	m->upload_id = id.p;
	return rc;
}

static void s3_mpu_abort(struct s3_mpu *m)
{
	struct s3_str q = { 0 };
	struct s3_req req = { .method = "DELETE", .key = m->key };
	struct s3_resp resp;

	s3_str_adds(&q, "uploadId=");
	s3_str_adds(&q, m->upload_id);
	if (s3_str_done(&q))
		return; /* the bucket's lifecycle rules must clean it up */
	req.query = q.p;
	s3_request(m->s, &req, &resp);
	s3_resp_free(&resp);
	s3_str_free(&q);
}

static int s3_mpu_complete(struct s3_mpu *m, const char *cond_header)
{
	struct s3_req req = { .method = "POST",
			      .key = m->key,
			      .headers = { "Content-Type: application/xml",
					   cond_header },
			      .want_body = 1,
			      .error_in_200 = 1 };
	struct s3_str q = { 0 }, xml = { 0 };
	struct s3_resp resp = { 0 };
	struct backend_stat st;
	unsigned i;
	int rc;

	s3_str_adds(&q, "uploadId=");
	s3_str_adds(&q, m->upload_id);
	s3_str_adds(&xml, "<CompleteMultipartUpload>");
	for (i = 0; i < m->nparts; i++) {
		s3_str_adds(&xml, "<Part><PartNumber>");
		s3_str_addu(&xml, i + 1ULL);
		s3_str_adds(&xml, "</PartNumber><ETag>\"");
		s3_str_add_xml(&xml, m->etags[i]);
		s3_str_adds(&xml, "\"</ETag></Part>");
	}
	s3_str_adds(&xml, "</CompleteMultipartUpload>");
	rc = s3_str_done(&q);
	if (!rc)
		rc = s3_str_done(&xml);
	if (!rc) {
		req.query = q.p;
		req.body = xml.p;
		req.body_len = xml.len;
		rc = s3_request(m->s, &req, &resp);
	}
	/*
	 * A retry after a try that did complete finds no upload: the
	 * object is there if it has our size.
	 */
	if (rc == -ENOENT && resp.tries > 1 &&
	    strcmp(resp.code, "NoSuchUpload") == 0 &&
	    s3_head(&m->s->be, m->key, &st) == 0 && st.size == m->len)
		rc = 0;
	s3_resp_free(&resp);
	s3_str_free(&q);
	s3_str_free(&xml);
	return rc;
}

static int s3_put_multipart(struct s3_backend *s, const char *key,
			    const void *data, size_t len,
			    const char *cond_header)
{
	struct s3_mpu m = { .s = s, .key = key, .data = data, .len = len };
	int rc;

	m.part = s->cfg.part_size;
	if ((len + m.part - 1) / m.part > S3_PARTS_MAX) {
		/* S3 takes 10000 parts at most: larger parts, whole MiBs. */
		m.part = (len + S3_PARTS_MAX - 1) / S3_PARTS_MAX;
		m.part = (m.part + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
	}
	m.nparts = (unsigned)((len + m.part - 1) / m.part);
	m.etags = calloc(m.nparts, sizeof(*m.etags));
	if (!m.etags)
		return -ENOMEM;
	atomic_init(&m.next, 0);
	atomic_init(&m.rc, 0);
	rc = s3_mpu_start(&m);
	if (rc)
		goto out_free;
	rc = s3_mpu_send_parts(&m);
	if (!rc)
		rc = s3_mpu_complete(&m, cond_header);
	if (rc)
		s3_mpu_abort(&m);
out_free:
	free(m.upload_id);
	free(m.etags);
	return rc;
}

static int s3_put(struct backend *be, const char *key, const void *data,
		  size_t len, const struct backend_cond *cond)
{
	struct s3_backend *s = s3_of(be);
	struct s3_req req = { .method = "PUT", .key = key };
	struct s3_resp resp;
	char ifmatch[BACKEND_ETAG_MAX + 16];
	const char *cond_header;
	int rc = s3_key_check(s, key);

	if (rc)
		return rc;
	rc = s3_cond_header(cond, ifmatch, sizeof(ifmatch), &cond_header);
	if (rc)
		return rc;
	atomic_fetch_add(&s->stats.put, 1);
	if (len > s->cfg.multipart_threshold)
		return s3_cond_result(
			cond, s3_put_multipart(s, key, data, len, cond_header));
	req.body = len ? data : "";
	req.body_len = len;
	req.headers[0] = cond_header;
	rc = s3_request(s, &req, &resp);
	s3_resp_free(&resp);
	return s3_cond_result(cond, rc);
}

static int s3_del(struct backend *be, const char *key)
{
	struct s3_backend *s = s3_of(be);
	struct s3_req req = { .method = "DELETE", .key = key };
	struct s3_resp resp;
	int rc = s3_key_check(s, key);

	if (rc)
		return rc;
	atomic_fetch_add(&s->stats.del, 1);
	rc = s3_request(s, &req, &resp);
	s3_resp_free(&resp);
	return rc;
}

/* ---- list ---- */

struct s3_listed {
	char *key; /* without cfg.prefix */
	uint64_t size;
};

struct s3_listing {
	struct s3_listed *v;
	size_t n, cap;
};

static void s3_listing_free(struct s3_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
}

static int s3_listed_cmp(const void *a, const void *b)
{
	const struct s3_listed *x = a, *y = b;

	return strcmp(x->key, y->key); /* as unsigned char: byte order */
}

/* Adds one <Contents> of a page; keys must start with `full`. */
static int s3_list_add(struct s3_listing *l, const char *c, size_t clen,
		       int url, const char *full, size_t plen)
{
	const char *val, *end = c + clen;
	size_t vlen, klen;
	uint64_t size = 0;
	char *key;
	int rc;

	if (!s3_xml_find(c, end, "Key", &val, &vlen))
		return -EBADMSG;
	rc = s3_xml_text(val, vlen, url, &key, &klen);
	if (rc)
		return rc;
	if (klen < strlen(full) || memcmp(key, full, strlen(full)) != 0) {
		free(key);
		return -EBADMSG;
	}
	if (klen == plen) { /* "prefix/" itself: a console's folder marker */
		free(key);
		return 0;
	}
	if (!s3_xml_find(c, end, "Size", &val, &vlen) || !vlen || vlen > 19 ||
	    strspn(val, "0123456789") < vlen) {
		free(key);
		return -EBADMSG;
	}
	for (size_t i = 0; i < vlen; i++)
		size = size * 10 + (uint64_t)(val[i] - '0');
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct s3_listed *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			free(key);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	memmove(key, key + plen, klen - plen + 1);
	l->v[l->n].key = key;
	l->v[l->n++].size = size;
	return 0;
}

/* One ListObjectsV2 page; *token becomes the next page's, or NULL. */
static int s3_list_page(struct s3_backend *s, const char *full, char **token,
			struct s3_listing *l)
{
	struct s3_req req = { .method = "GET", .want_body = 1 };
	struct s3_str q = { 0 };
	struct s3_resp resp;
	const char *p, *end, *val;
	size_t vlen, plen = strlen(s->cfg.prefix);
	int rc, url;

	if (*token) {
		s3_str_adds(&q, "continuation-token=");
		s3_str_add_uri(&q, *token, strlen(*token), 0);
		s3_str_adds(&q, "&");
	}
	s3_str_adds(&q, "encoding-type=url&list-type=2&max-keys=");
	s3_str_addu(&q, s->cfg.list_page);
	s3_str_adds(&q, "&prefix=");
	s3_str_add_uri(&q, full, strlen(full), 0);
	rc = s3_str_done(&q);
	if (rc)
		return rc;
	req.query = q.p;
	rc = s3_request(s, &req, &resp);
	s3_str_free(&q);
	free(*token);
	*token = NULL;
	if (rc)
		goto out_free;
	rc = -EBADMSG;
	if (!resp.body)
		goto out_free;
	end = resp.body + resp.len;
	/* Servers that ignore encoding-type=url (s3rver) send plain keys. */
	url = s3_xml_find(resp.body, end, "EncodingType", &val, &vlen) &&
	      vlen == 3 && memcmp(val, "url", 3) == 0;
	for (p = resp.body;
	     (p = s3_xml_find(p, end, "Contents", &val, &vlen));) {
		rc = s3_list_add(l, val, vlen, url, full, plen);
		if (rc)
			goto out_free;
	}
	rc = 0;
	if (s3_xml_find(resp.body, end, "IsTruncated", &val, &vlen) &&
	    vlen == 4 && memcmp(val, "true", 4) == 0) {
		if (!s3_xml_find(resp.body, end, "NextContinuationToken", &val,
				 &vlen) ||
		    !vlen)
			rc = -EBADMSG;
		else
			rc = s3_xml_text(val, vlen, 0, token, &vlen);
	}
out_free:
	s3_resp_free(&resp);
	return rc;
}

static int s3_list(struct backend *be, const char *prefix, backend_list_fn *fn,
		   void *arg)
{
	struct s3_backend *s = s3_of(be);
	struct s3_listing l = { 0 };
	struct s3_str full = { 0 };
	char *token = NULL, *last = NULL;
	size_t i;
	int rc;

	s3_str_adds(&full, s->cfg.prefix);
	s3_str_adds(&full, prefix);
	rc = s3_str_done(&full);
	if (rc)
		return rc;
	if (full.len > S3_KEY_MAX || !s3_utf8_valid(full.p, full.len))
		goto out_free; /* no key can start with it */
	atomic_fetch_add(&s->stats.list, 1);
	do {
		free(last);
		last = token ? strdup(token) : NULL;
		if (token && !last) {
			rc = -ENOMEM;
			break;
		}
		rc = s3_list_page(s, full.p, &token, &l);
		/* A server handing back the same token would loop forever. */
		if (!rc && token && last && strcmp(token, last) == 0)
			rc = -EBADMSG;
	} while (!rc && token);
	if (rc)
		goto out_free;
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), s3_listed_cmp);
	for (i = 0; i < l.n && !rc; i++) {
		if (i && strcmp(l.v[i].key, l.v[i - 1].key) == 0)
			continue; /* a server that paged badly */
		rc = fn(arg, l.v[i].key, l.v[i].size);
	}
out_free:
	free(token);
	free(last);
	s3_listing_free(&l);
	s3_str_free(&full);
	return rc;
}

/* ---- batch delete ---- */

/* XML 1.0 cannot carry control characters other than \t \n \r. */
static int s3_xml_safe(const char *key)
{
	for (; *key; key++) {
		unsigned char c = (unsigned char)*key;

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return 0;
	}
	return 1;
}

/*
 * DeleteObjects for keys[0..n) (XML-safe ones; the others one by one).
 * Keys the server reports as failed are deleted one by one, with the
 * retries that gives them.
 */
static int s3_del_batch(struct s3_backend *s, const char *const *keys, size_t n)
{
	struct s3_req req = { .method = "POST", .query = "delete=" };
	struct s3_str xml = { 0 };
	struct s3_resp resp = { 0 };
	char md5[MD5_BASE64_LEN + 1], md5_header[64];
	const char *p, *end, *val;
	size_t i, vlen, plen = strlen(s->cfg.prefix), sent = 0;
	int rc = 0;

	s3_str_adds(&xml, "<Delete><Quiet>true</Quiet>");
	for (i = 0; i < n && !rc; i++) {
		if (!s3_xml_safe(keys[i])) {
			rc = s3_del(&s->be, keys[i]);
			continue;
		}
		s3_str_adds(&xml, "<Object><Key>");
		s3_str_add_xml(&xml, s->cfg.prefix);
		s3_str_add_xml(&xml, keys[i]);
		s3_str_adds(&xml, "</Key></Object>");
		sent++;
	}
	s3_str_adds(&xml, "</Delete>");
	if (!rc)
		rc = s3_str_done(&xml);
	if (rc || !sent)
		goto out_free;
	md5_base64(xml.p, xml.len, md5);
	snprintf(md5_header, sizeof(md5_header), "Content-MD5: %s", md5);
	req.headers[0] = md5_header;
	req.headers[1] = "Content-Type: application/xml";
	req.body = xml.p;
	req.body_len = xml.len;
	req.want_body = 1;
	atomic_fetch_add(&s->stats.del, 1);
	rc = s3_request(s, &req, &resp);
	if (rc || !resp.body)
		goto out_free;
	end = resp.body + resp.len;
	for (p = resp.body;
	     !rc && (p = s3_xml_find(p, end, "Error", &val, &vlen));) {
		const char *k;
		size_t klen;
		char *key;

		if (!s3_xml_find(val, val + vlen, "Key", &k, &klen)) {
			rc = -EBADMSG;
			break;
		}
		rc = s3_xml_text(k, klen, 0, &key, &klen);
		if (rc)
			break;
		if (klen > plen && memcmp(key, s->cfg.prefix, plen) == 0)
			rc = s3_del(&s->be, key + plen);
		else
			rc = -EBADMSG;
		free(key);
	}
out_free:
	s3_resp_free(&resp);
	s3_str_free(&xml);
	return rc;
}

int backend_s3_del_many(struct backend *be, const char *const *keys, size_t n)
{
	struct s3_backend *s;
	size_t i;
	int rc = 0;

	if (!s3_is_mine(be))
		return -EINVAL;
	s = s3_of(be);
	for (i = 0; i < n; i++) {
		rc = s3_key_check(s, keys[i]);
		if (rc)
			return rc;
	}
	for (i = 0; i < n && !rc; i += S3_DELETE_BATCH)
		rc = s3_del_batch(s, keys + i,
				  n - i < S3_DELETE_BATCH ? n - i
							  : S3_DELETE_BATCH);
	return rc;
}

/* ---- open and close ---- */

int backend_s3_get_stats(struct backend *be, struct backend_s3_stats *st)
{
	struct s3_stats_atomic *a;

	if (!s3_is_mine(be))
		return -EINVAL;
	a = &s3_of(be)->stats;
	st->requests = atomic_load(&a->requests);
	st->retries = atomic_load(&a->retries);
	st->get = atomic_load(&a->get);
	st->put = atomic_load(&a->put);
	st->head = atomic_load(&a->head);
	st->del = atomic_load(&a->del);
	st->list = atomic_load(&a->list);
	st->multipart_parts = atomic_load(&a->multipart_parts);
	st->bytes_up = atomic_load(&a->bytes_up);
	st->bytes_down = atomic_load(&a->bytes_down);
	st->connects = atomic_load(&a->connects);
	return 0;
}

static void s3_close(struct backend *be)
{
	struct s3_backend *s = s3_of(be);

	if (!s)
		return;
	s3_http_fini(s);
	free(s->where);
	free(s->base);
	s3_config_free(&s->cfg);
	free(s);
}

/* "scheme://host" + "/bucket", or "scheme://bucket.host". */
static char *s3_base_url(const struct s3_config *cfg)
{
	const char *host = strstr(cfg->endpoint, "://");
	struct s3_str b = { 0 };

	if (cfg->path_style || !host) {
		s3_str_adds(&b, cfg->endpoint);
		s3_str_adds(&b, "/");
		s3_str_add_uri(&b, cfg->bucket, strlen(cfg->bucket), 0);
	} else {
		s3_str_add(&b, cfg->endpoint,
			   (size_t)(host + 3 - cfg->endpoint));
		s3_str_adds(&b, cfg->bucket);
		s3_str_adds(&b, ".");
		s3_str_adds(&b, host + 3);
	}
	return s3_str_done(&b) ? NULL : b.p;
}

/* Turns the probe's failure into one line for the person mounting. */
static void s3_open_message(const struct s3_backend *s, int rc,
			    const struct s3_resp *r, char *err, size_t errlen)
{
	const char *b = s->cfg.bucket, *ep = s->cfg.endpoint, *code = r->code;

	switch (rc) {
	case -EACCES:
		if (strcmp(code, "InvalidAccessKeyId") == 0)
			snprintf(err, errlen,
				 "s3://%s: access key refused by the server "
				 "(InvalidAccessKeyId)",
				 b);
		else if (strcmp(code, "SignatureDoesNotMatch") == 0)
			snprintf(err, errlen,
				 "s3://%s: secret key refused by the server "
				 "(SignatureDoesNotMatch)",
				 b);
		else if (strcmp(code, "RequestTimeTooSkewed") == 0)
			snprintf(err, errlen,
				 "s3://%s: the server refused this machine's "
				 "clock (RequestTimeTooSkewed)",
				 b);
		else
			snprintf(err, errlen,
				 "s3://%s: access denied by the server (%s)", b,
				 code[0] ? code : "HTTP 403");
		return;
	case -ENOENT:
		snprintf(err, errlen, "s3://%s: no such bucket at %s", b, ep);
		return;
	case -ECONNREFUSED:
		snprintf(err, errlen, "cannot reach %s: connection refused",
			 ep);
		return;
	case -EHOSTUNREACH:
		snprintf(err, errlen,
			 "cannot reach %s: host unknown or unreachable", ep);
		return;
	case -ETIMEDOUT:
		snprintf(err, errlen, "cannot reach %s: timed out", ep);
		return;
	case -ECONNRESET:
		snprintf(err, errlen, "cannot reach %s: connection reset", ep);
		return;
	case -EPROTO:
		snprintf(err, errlen,
			 "cannot reach %s: TLS handshake or certificate "
			 "refused",
			 ep);
		return;
	}
	if (r->region[0] && strcmp(r->region, s->cfg.region) != 0)
		snprintf(err, errlen,
			 "s3://%s: the bucket is in region %s, not %s: use "
			 "-o region=%s",
			 b, r->region, s->cfg.region, r->region);
	else if (r->status)
		snprintf(err, errlen, "s3://%s at %s: %s (HTTP %ld%s%s)", b, ep,
			 strerror(-rc), r->status, code[0] ? ", " : "", code);
	else
		snprintf(err, errlen, "s3://%s at %s: %s", b, ep,
			 strerror(-rc));
}

/* Lists at most one key under the prefix: bucket, keys and clock work. */
static int s3_probe(struct s3_backend *s, char *err, size_t errlen)
{
	struct s3_req req = { .method = "GET", .want_body = 1 };
	struct s3_str q = { 0 };
	struct s3_resp resp;
	int rc;

	s3_str_adds(&q, "encoding-type=url&list-type=2&max-keys=1&prefix=");
	s3_str_add_uri(&q, s->cfg.prefix, strlen(s->cfg.prefix), 0);
	rc = s3_str_done(&q);
	if (rc)
		return rc;
	req.query = q.p;
	rc = s3_request(s, &req, &resp);
	if (rc)
		s3_open_message(s, rc, &resp, err, errlen);
	s3_resp_free(&resp);
	s3_str_free(&q);
	return rc;
}

static int s3_config_check(const struct s3_config *cfg, char *err,
			   size_t errlen)
{
	if (!cfg->bucket || !cfg->endpoint || !cfg->region) {
		snprintf(err, errlen, "S3: bucket, endpoint and region needed");
		return -EINVAL;
	}
	if (!cfg->access_key || !cfg->secret_key) {
		snprintf(err, errlen, "s3://%s: no credentials", cfg->bucket);
		return -ENOKEY;
	}
	if (cfg->prefix && (strlen(cfg->prefix) >= S3_KEY_MAX ||
			    !s3_utf8_valid(cfg->prefix, strlen(cfg->prefix)))) {
		snprintf(err, errlen, "s3://%s: prefix too long or not UTF-8",
			 cfg->bucket);
		return -EINVAL;
	}
	return 0;
}

static void s3_defaults(struct s3_config *c)
{
	if (!c->timeout_ms)
		c->timeout_ms = S3_DEFAULT_TIMEOUT;
	if (!c->max_conns)
		c->max_conns = S3_DEFAULT_CONNS;
	if (!c->multipart_threshold)
		c->multipart_threshold = S3_DEFAULT_MULTIPART;
	if (!c->part_size)
		c->part_size = S3_DEFAULT_PART;
	if (!c->list_page || c->list_page > S3_DEFAULT_PAGE)
		c->list_page = S3_DEFAULT_PAGE;
}

int backend_s3_open(const struct s3_config *cfg, struct backend **out,
		    char *err, size_t errlen)
{
	char dummy[1], where[2048];
	struct s3_backend *s;
	int rc;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	rc = s3_config_check(cfg, err, errlen);
	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = s3_config_copy(&s->cfg, cfg);
	if (rc) {
		free(s);
		return rc;
	}
	s3_defaults(&s->cfg);
	/* Stalls are caught after a third of the budget (1 to 20 s). */
	s->stall_s = (long)(s->cfg.timeout_ms / 3000);
	s->stall_s = s->stall_s < 1 ? 1 : s->stall_s > 20 ? 20 : s->stall_s;
	s->be.version = BACKEND_VERSION;
	s->be.name = "s3";
	s->be.get = s3_get;
	s->be.get_range = s3_get_range;
	s->be.head = s3_head;
	s->be.put = s3_put;
	s->be.del = s3_del;
	s->be.del_many = backend_s3_del_many;
	s->be.list = s3_list;
	s->be.close = s3_close;
	s3_config_describe(&s->cfg, where, sizeof(where));
	s->where = strdup(where);
	s->be.where = s->where;
	s->base = s3_base_url(&s->cfg);
	rc = s3_http_init(s);
	if (!rc && (!s->where || !s->base))
		rc = -ENOMEM;
	if (rc) {
		snprintf(err, errlen, "s3://%s: cannot set up HTTP: %s",
			 s->cfg.bucket, strerror(-rc));
		goto out_close;
	}
	rc = s3_probe(s, err, errlen);
	if (rc)
		goto out_close;
	*out = &s->be;
	return 0;
out_close:
	s3_close(&s->be);
	return rc;
}
