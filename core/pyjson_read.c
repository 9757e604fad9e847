/* pyjson_read.c - a pull reader of JSON text, and compact copies. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>

#include "core/pyjson_int.h"

/* --- reader --------------------------------------------------------------- */

enum {
	PYJ_ST_START,	  /* the top value */
	PYJ_ST_OBJ_FIRST, /* after '{': a key or '}' */
	PYJ_ST_OBJ_KEY,	  /* after ',' in an object: a key */
	PYJ_ST_OBJ_VAL,	  /* after a key: ':' and a value */
	PYJ_ST_ARR_FIRST, /* after '[': a value or ']' */
	PYJ_ST_ARR_VAL,	  /* after ',' in an array: a value */
	PYJ_ST_AFTER,	  /* after a value: ',' or the container's end */
	PYJ_ST_DONE,	  /* PYJ_EOF given */
	PYJ_ST_ERROR,
};

/* str flags: what a decoded string held, for pyj_copy_value's strict. */
#define PYJ_SF_NUL	 1 /* \u0000 */
#define PYJ_SF_SURROGATE 2 /* an unpaired surrogate escape */

void pyj_in_init(struct pyj_in *in, const char *data, size_t len)
{
	memset(in, 0, sizeof(*in));
	in->start = in->p = in->tok = data;
	in->end = data + len;
	in->state = PYJ_ST_START;
}

void pyj_in_free(struct pyj_in *in)
{
	free(in->scratch);
	in->scratch = NULL;
	in->scratch_cap = 0;
}

/* Sets in->err ("line L column C (byte B): why") for position `at`. */
static enum pyj_tok pyj_in_fail(struct pyj_in *in, const char *at,
				const char *fmt, ...)
{
	size_t line = 1, col = 1, off = (size_t)(at - in->start);
	const char *q, *nl = NULL;
	char why[140];
	va_list ap;

	for (q = in->start; q < at; q++) {
		if (*q == '\n') {
			line++;
			nl = q;
		}
	}
	col = (size_t)(at - (nl ? nl + 1 : in->start)) + 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(in->err, sizeof(in->err), "line %zu column %zu (byte %zu): %s",
		 line, col, off, why);
	in->p = at;
	in->state = PYJ_ST_ERROR;
	return PYJ_ERROR;
}

static int pyj_scratch_room(struct pyj_in *in, size_t need)
{
	size_t cap;
	char *n;

	if (in->scratch_cap >= need)
		return 0;
	cap = in->scratch_cap ? in->scratch_cap : 256;
	while (cap < need)
		cap *= 2;
	n = realloc(in->scratch, cap);
	if (!n)
		return -ENOMEM;
	in->scratch = n;
	in->scratch_cap = cap;
	return 0;
}

static char *pyj_put_utf8(char *w, uint32_t cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | (cp >> 6));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | (cp >> 12));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | (cp >> 18));
		*w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/*
 * The string whose opening quote is at p: in->str/slen get its decoded
 * bytes (in the input itself when it has no escape, else in scratch) and
 * in->flags what it held.  Returns the end (after the closing quote) or
 * NULL after pyj_in_fail.
 */
static const char *pyj_read_string(struct pyj_in *in, const char *p)
{
	const char *s = p + 1, *end = in->end, *q = s;
	char *w = NULL;
	size_t wl = 0;

	in->sflags = 0;
	for (;;) {
		unsigned char c;

		q = pyj_str_run(q, end);
		if (q >= end) {
			pyj_in_fail(in, p, "unterminated string");
			return NULL;
		}
		c = (unsigned char)*q;
		if (c == '"') {
			if (w) {
				if (pyj_scratch_room(in,
						     wl + (size_t)(q - s))) {
					pyj_in_fail(in, q, "out of memory");
					return NULL;
				}
				w = in->scratch;
				memcpy(w + wl, s, (size_t)(q - s));
				wl += (size_t)(q - s);
				in->str = in->scratch;
				in->slen = wl;
			} else {
				in->str = p + 1;
				in->slen = (size_t)(q - (p + 1));
			}
			return q + 1;
		}
		if (c < 0x20) {
			pyj_in_fail(in, q, "control character 0x%02x in string",
				    c);
			return NULL;
		}
		if (c >= 0x80) {
			uint32_t cp;
			int n = pyj_utf8_seq((const unsigned char *)q,
					     (const unsigned char *)end, false,
					     &cp);

			if (!n) {
				pyj_in_fail(in, q, "invalid UTF-8 in string");
				return NULL;
			}
			q += n;
			continue;
		}
		/* a backslash: decode from here on into scratch */
		{
			uint32_t cp;
			bool lone;
			size_t n = pyj_escape(q, end, &cp, &lone);
			size_t need;

			if (!n) {
				pyj_in_fail(in, q, "invalid escape");
				return NULL;
			}
			/* the raw text since the last escape, and at most 4
			 * bytes for this one */
			need = wl + (size_t)(q - s) + 4;
			if (pyj_scratch_room(in, need)) {
				pyj_in_fail(in, q, "out of memory");
				return NULL;
			}
			w = in->scratch;
			memcpy(w + wl, s, (size_t)(q - s));
			wl += (size_t)(q - s);
			if (cp == 0)
				in->sflags |= PYJ_SF_NUL;
			if (lone)
				in->sflags |= PYJ_SF_SURROGATE;
			wl = (size_t)(pyj_put_utf8(w + wl, cp) - w);
			q += n;
			s = q;
		}
	}
}

static enum pyj_tok pyj_read_value(struct pyj_in *in, const char *p)
{
	const char *end = in->end;
	const char *q;
	int is_int;

	in->tok = p;
	in->num_int = in->num_special = 0;
	switch (*p) {
	case '{':
	case '[':
		if (in->depth >= PYJ_DEPTH_MAX)
			return pyj_in_fail(in, p, "nesting deeper than %d",
					   PYJ_DEPTH_MAX);
		if (*p == '{')
			in->stack[in->depth / 8] |=
				(unsigned char)(1u << (in->depth % 8));
		else
			in->stack[in->depth / 8] &=
				(unsigned char)~(1u << (in->depth % 8));
		in->depth++;
		in->p = p + 1;
		in->state = *p == '{' ? PYJ_ST_OBJ_FIRST : PYJ_ST_ARR_FIRST;
		return *p == '{' ? PYJ_OBJ : PYJ_ARR;
	case '"':
		q = pyj_read_string(in, p);
		if (!q)
			return PYJ_ERROR;
		in->p = q;
		in->state = PYJ_ST_AFTER;
		return PYJ_STR;
	case 't':
		if (end - p >= 4 && !memcmp(p, "true", 4)) {
			in->p = p + 4;
			in->state = PYJ_ST_AFTER;
			return PYJ_TRUE;
		}
		break;
	case 'f':
		if (end - p >= 5 && !memcmp(p, "false", 5)) {
			in->p = p + 5;
			in->state = PYJ_ST_AFTER;
			return PYJ_FALSE;
		}
		break;
	case 'n':
		if (end - p >= 4 && !memcmp(p, "null", 4)) {
			in->p = p + 4;
			in->state = PYJ_ST_AFTER;
			return PYJ_NULL;
		}
		break;
	case 'N':
		if (end - p >= 3 && !memcmp(p, "NaN", 3)) {
			q = p + 3;
			goto special;
		}
		break;
	case 'I':
		if (end - p >= 8 && !memcmp(p, "Infinity", 8)) {
			q = p + 8;
			goto special;
		}
		break;
	case '-':
		if (end - p >= 9 && !memcmp(p, "-Infinity", 9)) {
			q = p + 9;
			goto special;
		}
		/* fall through */
	default:
		q = pyj_scan_number(p, end, &is_int);
		if (!q)
			break;
		in->str = p;
		in->slen = (size_t)(q - p);
		in->num_int = is_int;
		in->p = q;
		in->state = PYJ_ST_AFTER;
		return PYJ_NUM;
	}
	return pyj_in_fail(in, p, "expecting value");
special:
	in->str = p;
	in->slen = (size_t)(q - p);
	in->num_special = 1;
	in->p = q;
	in->state = PYJ_ST_AFTER;
	return PYJ_NUM;
}

static inline bool pyj_in_obj(const struct pyj_in *in)
{
	unsigned d = in->depth - 1;

	return in->stack[d / 8] & (1u << (d % 8));
}

int pyj_take_list_text(struct pyj_in *in, struct pyj_mark *m, const char **s,
		       size_t *len)
{
	const char *p, *q, *end = in->end;

	if (in->state != PYJ_ST_OBJ_VAL || in->depth >= PYJ_DEPTH_MAX)
		return 0;
	p = pyj_skip_ws(in->p, end);
	if (p >= end || *p != ':')
		return 0;
	p = pyj_skip_ws(p + 1, end);
	if (p >= end || *p != '[')
		return 0;
	q = memchr(p, ']', (size_t)(end - p));
	if (!q)
		return 0;
	m->p = in->p;
	m->tok = in->tok;
	m->state = in->state;
	m->depth = in->depth;
	*s = p;
	*len = (size_t)(q + 1 - p);
	in->tok = p;
	in->p = q + 1;
	in->state = PYJ_ST_AFTER;
	return 1;
}

void pyj_in_rewind(struct pyj_in *in, const struct pyj_mark *m)
{
	in->p = m->p;
	in->tok = m->tok;
	in->state = m->state;
	in->depth = m->depth;
}

enum pyj_tok pyj_next(struct pyj_in *in)
{
	const char *p, *end = in->end;
	const char *q;

	if (in->state == PYJ_ST_ERROR)
		return PYJ_ERROR;
	if (in->state == PYJ_ST_DONE)
		return PYJ_EOF;
	p = pyj_skip_ws(in->p, end);
	switch (in->state) {
	case PYJ_ST_START:
		if (p >= end)
			return pyj_in_fail(in, p, "expecting value");
		return pyj_read_value(in, p);
	case PYJ_ST_AFTER:
		if (in->depth == 0) {
			if (p < end)
				return pyj_in_fail(in, p, "extra data");
			in->p = p;
			in->tok = p;
			in->state = PYJ_ST_DONE;
			return PYJ_EOF;
		}
		if (p < end && *p == ',') {
			p = pyj_skip_ws(p + 1, end);
			if (pyj_in_obj(in))
				goto key;
			goto value;
		}
		if (pyj_in_obj(in)) {
			if (p < end && *p == '}')
				goto close;
			return pyj_in_fail(in, p,
					   "expecting ',' or '}' in object");
		}
		if (p < end && *p == ']')
			goto close;
		return pyj_in_fail(in, p, "expecting ',' or ']' in array");
	case PYJ_ST_OBJ_FIRST:
		if (p < end && *p == '}')
			goto close;
		goto key;
	case PYJ_ST_OBJ_KEY:
		goto key;
	case PYJ_ST_OBJ_VAL:
		if (p >= end || *p != ':')
			return pyj_in_fail(in, p, "expecting ':' after key");
		p = pyj_skip_ws(p + 1, end);
		goto value;
	case PYJ_ST_ARR_FIRST:
		if (p < end && *p == ']')
			goto close;
		goto value;
	case PYJ_ST_ARR_VAL:
		goto value;
	}
	return pyj_in_fail(in, p, "bad reader state");
value:
	if (p >= end)
		return pyj_in_fail(in, p, "expecting value");
	return pyj_read_value(in, p);
key:
	if (p >= end || *p != '"')
		return pyj_in_fail(in, p,
				   "expecting property name in double quotes");
	in->tok = p;
	q = pyj_read_string(in, p);
	if (!q)
		return PYJ_ERROR;
	in->p = q;
	in->state = PYJ_ST_OBJ_VAL;
	return PYJ_KEY;
close:
	in->tok = p;
	in->p = p + 1;
	in->depth--;
	in->state = PYJ_ST_AFTER;
	return *p == '}' ? PYJ_OBJ_END : PYJ_ARR_END;
}

enum pyj_tok pyj_skip_value(struct pyj_in *in)
{
	enum pyj_tok first = pyj_next(in), t;
	unsigned base = in->depth;

	if (first != PYJ_OBJ && first != PYJ_ARR)
		return first;
	/* base is the depth inside the container just opened */
	while (in->depth >= base) {
		t = pyj_next(in);
		if (t == PYJ_ERROR)
			return PYJ_ERROR;
		if (t == PYJ_EOF)
			return pyj_in_fail(in, in->p, "unexpected end");
	}
	return first;
}

int pyj_member(struct pyj_in *in, const char *name)
{
	size_t n = strlen(name);
	enum pyj_tok t;

	while ((t = pyj_next(in)) == PYJ_KEY) {
		if (in->slen == n && memcmp(in->str, name, n) == 0)
			return 1;
		if (pyj_skip_value(in) == PYJ_ERROR)
			return -1;
	}
	return t == PYJ_OBJ_END ? 0 : -1;
}

/* Appends n bytes to the caller's buffer. */
static int pyj_buf_add(char **buf, size_t *len, size_t *cap, const char *s,
		       size_t n)
{
	if (*cap - *len < n) {
		size_t c = *cap ? *cap : 256;
		char *nb;

		while (c - *len < n) {
			if (c > SIZE_MAX / 2)
				return -ENOMEM;
			c *= 2;
		}
		nb = realloc(*buf, c);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	return 0;
}

/* 1 if the integer text fits jansson's json_int_t (long long). */
static int pyj_int_fits_i64(const char *s, size_t len)
{
	static const char max[] = "9223372036854775807";
	bool neg = len && s[0] == '-';
	size_t n;
	int c;

	if (neg) {
		s++;
		len--;
	}
	n = len;
	if (n != 19)
		return n < 19;
	c = memcmp(s, max, 19);
	if (c < 0)
		return 1;
	if (c == 0)
		return 1;
	/* -9223372036854775808 */
	return neg && !memcmp(s, "9223372036854775808", 19);
}

enum pyj_tok pyj_copy_value(struct pyj_in *in, int strict, char **buf,
			    size_t *len, size_t *cap)
{
	enum pyj_tok first = PYJ_ERROR, t;
	unsigned base = in->depth;
	bool need_comma = false;
	size_t len0 = *len;

	do {
		const char *tok;
		size_t n;
		int rc = 0;

		t = pyj_next(in);
		if (t == PYJ_ERROR)
			goto fail;
		if (t == PYJ_EOF) {
			pyj_in_fail(in, in->p, "expecting value");
			goto fail;
		}
		if (first == PYJ_ERROR) {
			first = t;
			if (t == PYJ_OBJ_END || t == PYJ_ARR_END ||
			    t == PYJ_KEY) {
				pyj_in_fail(in, in->tok, "expecting value");
				goto fail;
			}
			if (strict && t != PYJ_OBJ && t != PYJ_ARR) {
				pyj_in_fail(in, in->tok,
					    "not an object or array (jansson "
					    "loads only those)");
				goto fail;
			}
		}
		tok = in->tok;
		n = (size_t)(in->p - tok);
		if (strict) {
			/* jansson counts every value's depth, the top's 1 */
			unsigned vdepth = in->depth - base;

			if ((t == PYJ_OBJ || t == PYJ_ARR) &&
			    vdepth > PYJ_JANSSON_DEPTH) {
				pyj_in_fail(in, tok,
					    "nesting deeper than %d (jansson's "
					    "limit)",
					    PYJ_JANSSON_DEPTH);
				goto fail;
			}
			if ((t == PYJ_STR || t == PYJ_NUM || t == PYJ_TRUE ||
			     t == PYJ_FALSE || t == PYJ_NULL) &&
			    vdepth + 1 > PYJ_JANSSON_DEPTH) {
				pyj_in_fail(in, tok,
					    "nesting deeper than %d (jansson's "
					    "limit)",
					    PYJ_JANSSON_DEPTH);
				goto fail;
			}
			if ((t == PYJ_STR || t == PYJ_KEY) && in->sflags) {
				pyj_in_fail(
					in, tok,
					in->sflags & PYJ_SF_NUL
						? "\\u0000 in a string "
						  "(jansson refuses it)"
						: "unpaired surrogate escape "
						  "(jansson refuses it)");
				goto fail;
			}
			if (t == PYJ_NUM) {
				if (in->num_special) {
					pyj_in_fail(in, tok,
						    "NaN or Infinity (jansson "
						    "refuses them)");
					goto fail;
				}
				if (in->num_int && !pyj_int_fits_i64(tok, n)) {
					pyj_in_fail(in, tok,
						    "integer outside int64 "
						    "(jansson refuses it)");
					goto fail;
				}
				if (!in->num_int) {
					double v;

					if (pyj_parse_f64(tok, n, &v)) {
						pyj_in_fail(
							in, tok,
							"real number "
							"overflows a double");
						goto fail;
					}
				}
			}
		}
		if (need_comma && t != PYJ_OBJ_END && t != PYJ_ARR_END)
			rc = pyj_buf_add(buf, len, cap, ",", 1);
		if (!rc)
			rc = pyj_buf_add(buf, len, cap, tok, n);
		if (!rc && t == PYJ_KEY)
			rc = pyj_buf_add(buf, len, cap, ":", 1);
		if (rc) {
			pyj_in_fail(in, tok, "out of memory");
			goto fail;
		}
		need_comma = t != PYJ_OBJ && t != PYJ_ARR && t != PYJ_KEY;
	} while (in->depth > base);
	return first;
fail:
	*len = len0;
	return PYJ_ERROR;
}
