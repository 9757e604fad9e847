/* s3_xml.c - strings, URI encoding and the little XML the S3 API speaks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/s3_int.h"

static int s3_str_grow(struct s3_str *s, size_t more)
{
	size_t cap;
	char *p;

	if (s->oom)
		return -ENOMEM;
	if (more < s->cap - s->len)
		return 0;
	if (more > SIZE_MAX / 2 - s->len) {
		s->oom = 1;
		return -ENOMEM;
	}
	cap = s->cap ? s->cap : 64;
	while (cap - s->len <= more)
		cap *= 2;
	p = realloc(s->p, cap);
	if (!p) {
		s->oom = 1;
		return -ENOMEM;
	}
	s->p = p;
	s->cap = cap;
	return 0;
}

void s3_str_add(struct s3_str *s, const void *data, size_t len)
{
	if (s3_str_grow(s, len))
		return;
	if (len)
		memcpy(s->p + s->len, data, len);
	s->len += len;
	s->p[s->len] = '\0';
}

void s3_str_adds(struct s3_str *s, const char *str)
{
	s3_str_add(s, str, strlen(str));
}

void s3_str_addu(struct s3_str *s, unsigned long long v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", v);

	s3_str_add(s, num, (size_t)n);
}

static int s3_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

void s3_str_add_uri(struct s3_str *s, const char *data, size_t len,
		    int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	if (s3_str_grow(s, len * 3))
		return;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (s3_unreserved(c) || (keep_slash && c == '/')) {
			s->p[s->len++] = (char)c;
		} else {
			s->p[s->len++] = '%';
			s->p[s->len++] = hex[c >> 4];
			s->p[s->len++] = hex[c & 15];
		}
	}
	s->p[s->len] = '\0';
}

void s3_str_add_xml(struct s3_str *s, const char *str)
{
	for (; *str; str++) {
		switch (*str) {
		case '&':
			s3_str_adds(s, "&amp;");
			break;
		case '<':
			s3_str_adds(s, "&lt;");
			break;
		case '>':
			s3_str_adds(s, "&gt;");
			break;
		case '"':
			s3_str_adds(s, "&quot;");
			break;
		case '\'':
			s3_str_adds(s, "&apos;");
			break;
		case '\t':
			s3_str_adds(s, "&#9;");
			break;
		case '\n':
			s3_str_adds(s, "&#10;");
			break;
		case '\r':
			s3_str_adds(s, "&#13;");
			break;
		default:
			s3_str_add(s, str, 1);
		}
	}
}

int s3_str_done(struct s3_str *s)
{
	if (s->oom) {
		s3_str_free(s);
		return -ENOMEM;
	}
	if (!s->p)
		s3_str_add(s, "", 0);
	return s->oom ? -ENOMEM : 0;
}

void s3_str_free(struct s3_str *s)
{
	free(s->p);
	memset(s, 0, sizeof(*s));
}

const char *s3_xml_find(const char *p, const char *end, const char *tag,
			const char **val, size_t *len)
{
	size_t tlen = strlen(tag);

	while (p && p < end) {
		const char *open = memchr(p, '<', (size_t)(end - p)), *q;

		if (!open || (size_t)(end - open) < tlen + 2)
			return NULL;
		q = open + 1 + tlen;
		if (memcmp(open + 1, tag, tlen) != 0 ||
		    (*q != '>' && *q != ' ' && *q != '/')) {
			p = open + 1;
			continue;
		}
		q = memchr(q, '>', (size_t)(end - q));
		if (!q)
			return NULL;
		if (q[-1] == '/') { /* <tag/> */
			*val = q;
			*len = 0;
			return q + 1;
		}
		*val = ++q;
		for (; q < end; q++) {
			if (*q == '<' && (size_t)(end - q) >= tlen + 3 &&
			    q[1] == '/' && memcmp(q + 2, tag, tlen) == 0 &&
			    q[2 + tlen] == '>') {
				*len = (size_t)(q - *val);
				return q + 3 + tlen;
			}
		}
		return NULL;
	}
	return NULL;
}

static int s3_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends code point `cp` as UTF-8; -EBADMSG for NUL, surrogates, > 10FFFF */
static int s3_put_utf8(struct s3_str *s, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -EBADMSG;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 63));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
		u[2] = (unsigned char)(0x80 | (cp & 63));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
		u[3] = (unsigned char)(0x80 | (cp & 63));
		n = 4;
	}
	s3_str_add(s, u, n);
	return 0;
}

/* Decodes one entity at raw[0] == '&'; returns its length or -EBADMSG. */
static long s3_xml_entity(struct s3_str *s, const char *raw, size_t len)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "amp;", '&' },
		      { "lt;", '<' },
		      { "gt;", '>' },
		      { "quot;", '"' },
		      { "apos;", '\'' } };
	const char *semi = memchr(raw, ';', len < 12 ? len : 12);
	unsigned long cp = 0;
	size_t i, n;

	if (!semi)
		return -EBADMSG;
	n = (size_t)(semi - raw) + 1;
	if (raw[1] != '#') {
		for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
			if (strlen(named[i].name) == n - 1 &&
			    memcmp(raw + 1, named[i].name, n - 1) == 0) {
				s3_str_add(s, &named[i].c, 1);
				return (long)n;
			}
		}
		return -EBADMSG;
	}
	if (raw[2] == 'x' || raw[2] == 'X') {
		if (n < 5)
			return -EBADMSG;
		for (i = 3; i < n - 1; i++) {
			int v = s3_hexval(raw[i]);

			if (v < 0)
				return -EBADMSG;
			cp = cp * 16 + (unsigned long)v;
		}
	} else {
		if (n < 4)
			return -EBADMSG;
		for (i = 2; i < n - 1; i++) {
			if (raw[i] < '0' || raw[i] > '9')
				return -EBADMSG;
			cp = cp * 10 + (unsigned long)(raw[i] - '0');
		}
	}
	return s3_put_utf8(s, cp) ? -EBADMSG : (long)n;
}

int s3_xml_text(const char *raw, size_t len, int url, char **out,
		size_t *outlen)
{
	struct s3_str a = { 0 }, b = { 0 };
	size_t i;
	int rc = 0;

	for (i = 0; i < len && !rc;) {
		if (raw[i] == '&') {
			long n = s3_xml_entity(&a, raw + i, len - i);

			if (n < 0)
				rc = -EBADMSG;
			else
				i += (size_t)n;
		} else {
			s3_str_add(&a, raw + i++, 1);
		}
	}
	if (!rc)
		rc = s3_str_done(&a);
	if (rc)
		goto out_free;
	if (url) {
		for (i = 0; i < a.len && !rc; i++) {
			char c = a.p[i];

			if (c == '+') {
				c = ' ';
			} else if (c == '%') {
				int hi = i + 2 < a.len ? s3_hexval(a.p[i + 1])
						       : -1;
				int lo = hi >= 0 ? s3_hexval(a.p[i + 2]) : -1;

				if (lo < 0 || (hi == 0 && lo == 0)) {
					rc = -EBADMSG;
					break;
				}
				c = (char)(hi * 16 + lo);
				i += 2;
			}
			s3_str_add(&b, &c, 1);
		}
		if (!rc)
			rc = s3_str_done(&b);
		if (rc)
			goto out_free;
		s3_str_free(&a);
		a = b;
		b = (struct s3_str){ 0 };
	}
	if (memchr(a.p, '\0', a.len)) {
		rc = -EBADMSG;
		goto out_free;
	}
	*out = a.p;
	*outlen = a.len;
	return 0;
out_free:
	s3_str_free(&a);
	s3_str_free(&b);
	return rc;
}

int s3_xml_copy(const char *p, const char *end, const char *tag, char *buf,
		size_t cap)
{
	const char *val;
	size_t len;
	char *text;
	int rc;

	if (!s3_xml_find(p, end, tag, &val, &len))
		return -ENOENT;
	rc = s3_xml_text(val, len, 0, &text, &len);
	if (rc)
		return rc;
	if (len >= cap) {
		free(text);
		return -ENAMETOOLONG;
	}
	memcpy(buf, text, len + 1);
	free(text);
	return 0;
}
