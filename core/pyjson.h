/* pyjson.h - JSON as Python's json.dumps writes it, and a fast reader. */
#ifndef LODEFS_PYJSON_H
#define LODEFS_PYJSON_H

#include <stddef.h>
#include <stdint.h>

/*
 * LlamaIndex persists its stores with json.dumps defaults: ", " and ": "
 * separators, ensure_ascii (every byte outside 0x20..0x7e escaped, non-BMP
 * characters as a surrogate pair, lowercase hex; \" \\ \n \r \t \b \f
 * short), floats as repr() (the shortest text that reads back to the same
 * double; "1.0", "1e-05", "1e+16", "NaN", "Infinity", "-Infinity"), keys in
 * the order inserted, no trailing newline.  This module writes exactly
 * that, streaming, and reads such files without building a tree.  The
 * numbers its own code does not settle when reading (more than 19
 * digits, exponents past 10^22, near a float32 rounding midpoint) go
 * through strtod/strtof, which need LC_NUMERIC "C" (lodefs never calls
 * setlocale).  Everything here is reentrant: no global state.
 */

/* --- writing ------------------------------------------------------------ */

/* Where output goes: returns 0 or a negative errno (kept, see err). */
typedef int pyj_write_fn(void *arg, const void *data, size_t len);

struct pyj_out {
	char *buf;
	size_t len, cap;
	pyj_write_fn *write;
	void *arg;
	int err; /* first error (negative errno); later calls do nothing */
	uint64_t total; /* bytes handed to write() or buffered so far */
};

/*
 * Sets up o with a buffer (256 KiB): 0 or -ENOMEM.  With write NULL
 * nothing is handed on: the buffer grows and holds the whole output
 * (o->buf, o->len) until pyj_out_finish.
 */
int pyj_out_init(struct pyj_out *o, pyj_write_fn *write, void *arg);
/* Hands the buffered bytes to write(): returns o->err. */
int pyj_out_flush(struct pyj_out *o);
/* Flushes, frees the buffer, returns o->err (0 on success). */
int pyj_out_finish(struct pyj_out *o);

/* Bytes as they are. */
void pyj_raw(struct pyj_out *o, const void *data, size_t len);
/* A NUL-terminated literal, as pyj_raw. */
void pyj_lit(struct pyj_out *o, const char *s);
/*
 * A string (UTF-8 in, `len` bytes, may hold NUL) as a quoted JSON string
 * in Python's ensure_ascii form.  Invalid UTF-8 is written as Python
 * writes a lone surrogate of surrogateescape (\udcXX per bad byte).
 */
void pyj_str(struct pyj_out *o, const char *s, size_t len);
/* repr(float(d)). */
void pyj_f64(struct pyj_out *o, double d);
/*
 * The shortest decimal that reads back (as float32) to f, closest to f
 * when several are as short, in repr()'s layout ("0.1", "1e-05", "3.0",
 * "NaN").  Used for vectors: stored as float32, written back so.
 */
void pyj_f32(struct pyj_out *o, float f);
/* The same into buf (at least PYJ_NUM_MAX bytes, NUL-terminated): length. */
#define PYJ_NUM_MAX 32
size_t pyj_fmt_f32(char *buf, float f);
size_t pyj_fmt_f64(char *buf, double d);

/*
 * One JSON value given as text (any valid JSON: compact, pretty, jansson's
 * or Python's spelling) written as json.dumps(json.loads(text)) would
 * write it: strings re-escaped, integers as given (the grammar allows no
 * leading zeros; "-0" becomes "0" as int() makes it), reals as repr() of
 * strtod's double ("1E5" -> "100000.0", "1e400" -> "Infinity"),
 * NaN/Infinity/-Infinity accepted, lone surrogate escapes kept (as
 * Python keeps them), and a key that comes twice in an object kept once,
 * with its last value, at its first place (as a dict keeps it).  One
 * streaming pass; a value with a repeated key is written again from a
 * tree.  Returns 0; -EINVAL if `json` is not one valid JSON value, nests
 * deeper than 4096 containers, or holds an integer of more than 4300
 * digits (Python 3.11 refuses to read it); -ENOMEM; or o->err if the
 * output has failed (now or before).  After -EINVAL part of the value may
 * have been written; o->err is not set.
 */
int pyj_value(struct pyj_out *o, const char *json, size_t len);

/*
 * A pyj_write_fn whose arg is another struct pyj_out: writes the bytes it
 * receives into that one as the inside of a JSON string (escaping only "
 * and \, so the bytes must be ASCII without control characters, which is
 * what a pyj_out writes).  Python's index_store holds each index struct
 * as a JSON string of JSON ("__data__"): render the inner value through a
 * pyj_out that writes here, between two pyj_raw(o, "\"", 1).
 */
int pyj_str_sink(void *outer, const void *data, size_t len);

/* --- reading ------------------------------------------------------------ */

/*
 * A pull reader over JSON text held in memory (a mapped file): one token
 * per pyj_next.  It checks the grammar as it goes (RFC 8259, plus
 * Python's NaN, Infinity and -Infinity as numbers; containers nest at most
 * 4096 deep); values can be skipped or copied in compact form without
 * being decoded.  Strings must be valid UTF-8; a \uXXXX escape of an
 * unpaired surrogate is accepted, as Python accepts it, and decoded to
 * the surrogate's 3-byte form (ED A0..BF xx, as WTF-8 holds it).  After
 * PYJ_ERROR every call returns PYJ_ERROR again.
 */
enum pyj_tok {
	PYJ_ERROR = -1, /* in->err says why and where */
	PYJ_EOF = 0,	/* after the top value and trailing whitespace */
	PYJ_OBJ,	/* { */
	PYJ_OBJ_END,	/* } */
	PYJ_ARR,	/* [ */
	PYJ_ARR_END,	/* ] */
	PYJ_KEY,	/* an object key: str/slen hold it decoded */
	PYJ_STR,	/* a string value: str/slen hold it decoded */
	PYJ_NUM,	/* a number: str/slen hold its text as written */
	PYJ_TRUE,
	PYJ_FALSE,
	PYJ_NULL,
};

struct pyj_in {
	const char *start, *p, *end;
	/*
	 * PYJ_KEY/PYJ_STR: decoded UTF-8 (may hold NUL); PYJ_NUM: text.
	 * Points into the input (no escape) or into the reader's scratch;
	 * valid until the next call.
	 */
	const char *str;
	size_t slen;
	int num_int;	 /* PYJ_NUM: 1 if an integer (no '.', 'e') */
	int num_special; /* PYJ_NUM: 1 for NaN, Infinity, -Infinity */
	char err[200];	 /* "line L column C (byte B): why", lines from 1 */
	/* the reader's own */
	const char *tok; /* where the last token starts */
	unsigned sflags; /* what the last string held (strict checks) */
	char *scratch;
	size_t scratch_cap;
	unsigned depth;
	unsigned char stack[512]; /* container kinds, to depth 4096 */
	int state;
};

void pyj_in_init(struct pyj_in *in, const char *data, size_t len);
void pyj_in_free(struct pyj_in *in); /* frees the scratch buffer */
enum pyj_tok pyj_next(struct pyj_in *in);
/* Bytes consumed so far (for progress and error positions). */
static inline size_t pyj_in_offset(const struct pyj_in *in)
{
	return (size_t)(in->p - in->start);
}

/*
 * Reads the next value (whole: an object or array with all it holds) and
 * appends its text with the whitespace between tokens removed to *buf
 * (realloc'd, *len and *cap updated; the caller frees *buf).  `strict`
 * refuses what jansson 2.14's json_loadb(text, len, 0, ...) would refuse
 * to load, so the engine can store the text without parsing it again
 * (engine_batch_put_json_compact): a value that is not an object or
 * array, NaN/Infinity, \u0000 (in keys too), an unpaired surrogate
 * escape, an integer outside int64, a real that overflows a double, and
 * a value more than 2048 levels deep (jansson counts every value, the
 * top one 1: 2048 nested arrays load, 2047 around a number is the most).
 * Returns the value's first token, or PYJ_ERROR (in->err says why; *len
 * is back to what it was).
 */
enum pyj_tok pyj_copy_value(struct pyj_in *in, int strict, char **buf,
			    size_t *len, size_t *cap);
/*
 * Skips the next value whole: returns its first token, or PYJ_ERROR.  At
 * the end of a container (or of the text) it returns that token
 * (PYJ_OBJ_END, PYJ_ARR_END, PYJ_EOF), consumed as pyj_next would.
 */
enum pyj_tok pyj_skip_value(struct pyj_in *in);
/*
 * Inside an object (just after its PYJ_OBJ or a member's value), skips
 * members up to the one named `name` (NUL-terminated): 1 with the reader
 * before that member's value, 0 if the object ends first (its PYJ_OBJ_END
 * consumed), -1 on malformed text.
 */
int pyj_member(struct pyj_in *in, const char *name);

/*
 * Where a reader stands, to come back to (pyj_in_rewind): lets a caller
 * hand a value's text to another thread and, if that thread finds it is
 * not what it expected, read it again with the reader for the exact
 * message.
 */
struct pyj_mark {
	const char *p, *tok;
	int state;
	unsigned depth; /* the stack's bits below it do not change */
};

/*
 * Right after a PYJ_KEY: if its value starts with '[' and a ']' follows,
 * sets *s and *len to the text from that '[' to the first ']' and steps
 * past it as if the reader had read an array there; 1.  The text is not
 * checked: unless the caller finds it is one flat array (e.g.
 * pyj_parse_f32_list), it must rewind to *m, since the reader may then
 * stand inside a string or a nested value.  0 (nothing consumed) for
 * anything else.
 */
int pyj_take_list_text(struct pyj_in *in, struct pyj_mark *m, const char **s,
		       size_t *len);
void pyj_in_rewind(struct pyj_in *in, const struct pyj_mark *m);

/*
 * A number's text (as PYJ_NUM gives it, NaN/Infinity too) as float32,
 * correctly rounded as strtof would: 0, or -EINVAL if it is not a number
 * in JSON's grammar or overflows float32 (a finite number that rounds to
 * infinity; one that underflows gives 0 or a subnormal).
 */
int pyj_parse_f32(const char *s, size_t len, float *out);
/*
 * The text of a list of numbers, "[n, n, ...]" (whitespace as JSON allows
 * it), as float32, each as pyj_parse_f32 gives it: 0 and *n, or -EINVAL
 * for anything else (another value inside, NaN/Infinity, a number out of
 * float32's range, more text after the ']').  out holds at least
 * len / 2 + 1 floats.
 */
int pyj_parse_f32_list(const char *s, size_t len, float *out, size_t *n);
/* The same to double (as strtod; -EINVAL if it overflows a double). */
int pyj_parse_f64(const char *s, size_t len, double *out);

#endif
