/* pyjson.c - JSON as Python's json.dumps writes it: buffer and strings. */
#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include "core/pyjson_int.h"

/* --- output buffer ------------------------------------------------------ */

int pyj_out_init(struct pyj_out *o, pyj_write_fn *write, void *arg)
{
	memset(o, 0, sizeof(*o));
	o->write = write;
	o->arg = arg;
	o->buf = malloc(PYJ_BUF_SIZE);
	if (!o->buf) {
		o->err = -ENOMEM;
		return -ENOMEM;
	}
	o->cap = PYJ_BUF_SIZE;
	return 0;
}

/* After an error nothing more is buffered: cap 0 sends every append to
 * pyj_room's slow path, which sees err. */
static void pyj_out_fail(struct pyj_out *o, int err)
{
	if (!o->err)
		o->err = err < 0 ? err : -EIO;
	o->len = 0;
	o->cap = 0;
}

int pyj_out_flush(struct pyj_out *o)
{
	int rc;

	if (o->err || !o->write || !o->len)
		return o->err;
	rc = o->write(o->arg, o->buf, o->len);
	if (rc) {
		pyj_out_fail(o, rc);
		return o->err;
	}
	o->len = 0;
	return 0;
}

int pyj_out_finish(struct pyj_out *o)
{
	int rc = pyj_out_flush(o);

	free(o->buf);
	o->buf = NULL;
	o->len = o->cap = 0;
	return rc;
}

/* Makes room for n more bytes: 0, or the error (then nothing is written). */
int pyj_room_slow(struct pyj_out *o, size_t n)
{
	size_t want;
	char *nb;

	if (o->err)
		return o->err;
	if (o->write) {
		if (pyj_out_flush(o))
			return o->err;
		if (o->cap >= n)
			return 0;
	}
	want = o->cap ? o->cap : PYJ_BUF_SIZE;
	while (want - o->len < n) {
		if (want > SIZE_MAX / 2) {
			pyj_out_fail(o, -ENOMEM);
			return o->err;
		}
		want *= 2;
	}
	nb = realloc(o->buf, want);
	if (!nb) {
		pyj_out_fail(o, -ENOMEM);
		return o->err;
	}
	o->buf = nb;
	o->cap = want;
	return 0;
}

void pyj_raw(struct pyj_out *o, const void *data, size_t len)
{
	const char *p = data;

	if (pyj_likely(o->cap - o->len >= len)) {
		memcpy(o->buf + o->len, p, len);
		pyj_put(o, len);
		return;
	}
	if (o->err)
		return;
	if (o->write && len >= PYJ_BUF_SIZE / 2) {
		/* Large: straight to write() after what is buffered. */
		int rc;

		if (pyj_out_flush(o))
			return;
		rc = o->write(o->arg, p, len);
		if (rc) {
			pyj_out_fail(o, rc);
			return;
		}
		o->total += len;
		return;
	}
	if (pyj_room_slow(o, len))
		return;
	memcpy(o->buf + o->len, p, len);
	pyj_put(o, len);
}

void pyj_lit(struct pyj_out *o, const char *s)
{
	pyj_raw(o, s, strlen(s));
}

/* --- strings -------------------------------------------------------------- */

/*
 * The inside of a string: `s` is UTF-8 (WTF-8 with `surrogates`, for
 * text this module decoded); bytes that are not are written \udcXX.
 */
void pyj_str_body(struct pyj_out *o, const unsigned char *s, size_t len,
		  bool surrogates)
{
	const unsigned char *p = s, *end = s + len;

	while (p < end) {
		const unsigned char *q = pyj_plain_run(p, end);
		const unsigned char *stop;
		char *w;

		if (q > p) {
			pyj_raw(o, p, (size_t)(q - p));
			p = q;
			if (p == end)
				break;
		}
		/* A run of bytes to escape: at most 12 bytes out for 4 in,
		 * 6 for 1. */
		stop = end - p > 1024 ? p + 1024 : end;
		if (pyj_room(o, 6 * (size_t)(stop - p) + 24))
			return;
		w = o->buf + o->len;
		while (p < stop && !pyj_plain(*p)) {
			uint32_t cp;
			int n;

			if (*p < 0x80) {
				w = pyj_put_cp(w, *p++);
				continue;
			}
			n = pyj_utf8_seq(p, end, surrogates, &cp);
			if (n) {
				w = pyj_put_cp(w, cp);
				p += n;
			} else {
				/* surrogateescape: U+DC80..U+DCFF */
				w = pyj_put_u(w, 0xdc00 | *p++);
			}
		}
		pyj_put(o, (size_t)(w - (o->buf + o->len)));
	}
}

void pyj_str(struct pyj_out *o, const char *s, size_t len)
{
	pyj_raw(o, "\"", 1);
	pyj_str_body(o, (const unsigned char *)s, len, false);
	pyj_raw(o, "\"", 1);
}

int pyj_str_sink(void *outer, const void *data, size_t len)
{
	struct pyj_out *o = outer;
	const char *p = data, *end = p + len;

	while (p < end) {
		const char *q = p;

		while (q < end && *q != '"' && *q != '\\')
			q++;
		pyj_raw(o, p, (size_t)(q - p));
		if (q == end)
			break;
		pyj_raw(o, *q == '"' ? "\\\"" : "\\\\", 2);
		p = q + 1;
	}
	return o->err;
}
