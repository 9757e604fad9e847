/* pyjson_value.c - any JSON text as json.dumps(json.loads(text)). */
#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include "core/pyjson_int.h"

/* --- transcoding ---------------------------------------------------------- */

/*
 * The string whose opening quote is at p written as json.dumps writes
 * json.loads's result: returns the end, or NULL if malformed.
 */
static const char *pyj_value_str(struct pyj_out *o, const char *p,
				 const char *end)
{
	const unsigned char *q = (const unsigned char *)p + 1;
	const unsigned char *e = (const unsigned char *)end;

	pyj_raw(o, "\"", 1);
	for (;;) {
		const unsigned char *r = pyj_plain_run(q, e);
		char *w;

		if (r > q)
			pyj_raw(o, q, (size_t)(r - q));
		q = r;
		if (q >= e)
			return NULL;
		if (*q == '"') {
			pyj_raw(o, "\"", 1);
			return (const char *)q + 1;
		}
		if (pyj_room(o, 16))
			return NULL;
		w = o->buf + o->len;
		if (*q == '\\') {
			uint32_t cp;
			bool lone;
			size_t k = pyj_escape((const char *)q, end, &cp, &lone);

			if (!k)
				return NULL;
			w = pyj_put_cp(w, cp);
			q += k;
		} else if (*q < 0x20) {
			return NULL;
		} else if (*q == 0x7f) {
			w = pyj_put_u(w, 0x7f);
			q++;
		} else {
			uint32_t cp;
			int k = pyj_utf8_seq(q, e, false, &cp);

			if (!k)
				return NULL;
			w = pyj_put_cp(w, cp);
			q += k;
		}
		pyj_put(o, (size_t)(w - (o->buf + o->len)));
	}
}

/*
 * Python's dict keeps one entry per key: the value last given, at the
 * place the key first came.  A streaming pass cannot write that, so it
 * watches for a key coming twice in one object (a set of 64-bit tags:
 * hash of the key and the object's number) and, if one does, the value
 * is written again from a tree (pyj_value_tree).  A tag that collides
 * only sends a value the slow way, to the same output.
 */
struct pyj_kset {
	uint64_t *tag;
	size_t *val;
	size_t mask, count;
	uint64_t tag_inl[64];
	size_t val_inl[64];
};

static void pyj_kset_init(struct pyj_kset *ks)
{
	ks->tag = ks->tag_inl;
	ks->val = ks->val_inl;
	ks->mask = 63;
	ks->count = 0;
	memset(ks->tag_inl, 0, sizeof(ks->tag_inl));
}

static void pyj_kset_free(struct pyj_kset *ks)
{
	if (ks->tag != ks->tag_inl) {
		free(ks->tag);
		free(ks->val);
	}
}

static uint64_t pyj_hash(const void *data, size_t n, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = (seed + 1) * 0x9e3779b97f4a7c15ull ^ n, w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ w) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h ? h : 1; /* 0 marks a free slot */
}

/*
 * Looks tag up: returns its slot's value if there, else adds it with
 * `val` and returns SIZE_MAX (also when out of memory: *err set).
 */
static size_t pyj_kset_put(struct pyj_kset *ks, uint64_t tag, size_t val,
			   int *err)
{
	size_t i;

	if ((ks->count + 1) * 2 > ks->mask + 1) {
		size_t ncap = (ks->mask + 1) * 2;
		uint64_t *nt = calloc(ncap, sizeof(*nt));
		size_t *nv = malloc(ncap * sizeof(*nv));

		if (!nt || !nv) {
			free(nt);
			free(nv);
			*err = -ENOMEM;
			return SIZE_MAX;
		}
		for (i = 0; i <= ks->mask; i++) {
			size_t j;

			if (!ks->tag[i])
				continue;
			for (j = ks->tag[i] & (ncap - 1); nt[j];
			     j = (j + 1) & (ncap - 1))
				;
			nt[j] = ks->tag[i];
			nv[j] = ks->val[i];
		}
		pyj_kset_free(ks);
		ks->tag = nt;
		ks->val = nv;
		ks->mask = ncap - 1;
	}
	for (i = tag & ks->mask; ks->tag[i]; i = (i + 1) & ks->mask)
		if (ks->tag[i] == tag)
			return ks->val[i];
	ks->tag[i] = tag;
	ks->val[i] = val;
	ks->count++;
	return SIZE_MAX;
}

/* A number as json.dumps(json.loads(text)) writes it: 0 or -EINVAL. */
static int pyj_value_num(struct pyj_out *o, const char *p, size_t n, int is_int)
{
	int err;
	double v;

	if (is_int) {
		if (n - (*p == '-') > PYJ_PY_INT_DIGITS)
			return -EINVAL;
		/* int("-0") is 0 */
		if (n == 2 && p[0] == '-' && p[1] == '0')
			pyj_raw(o, "0", 1);
		else
			pyj_raw(o, p, n);
		return 0;
	}
	/* float(text): one that overflows is inf ("Infinity") */
	if (pyj_parse_f64(p, n, &v)) {
		v = pyj_strtod_n(p, n, &err);
		if (err)
			return err;
	}
	pyj_f64(o, v);
	return 0;
}

/* --- the slow way: a tree ------------------------------------------------- */

/* A value in the tree; in a container, also its place (and key). */
struct pyj_tn {
	enum pyj_tok kind;
	int num_int;
	const char *num;  /* PYJ_NUM: the text, in the input */
	uint64_t id;	  /* PYJ_OBJ: its number, for its keys' tags */
	size_t off, n;	  /* PYJ_STR: decoded text, in the pool; PYJ_NUM: n */
	size_t key, klen; /* the key, in the pool */
	size_t first, last, next; /* children, siblings (SIZE_MAX: none) */
};

struct pyj_tree {
	struct pyj_tn *n;
	size_t count, cap;
	char *pool;
	size_t plen, pcap;
	uint64_t next_id;
};

static size_t pyj_tree_node(struct pyj_tree *t)
{
	if (t->count == t->cap) {
		size_t c = t->cap ? t->cap * 2 : 64;
		struct pyj_tn *nn = realloc(t->n, c * sizeof(*nn));

		if (!nn)
			return SIZE_MAX;
		t->n = nn;
		t->cap = c;
	}
	memset(&t->n[t->count], 0, sizeof(t->n[0]));
	t->n[t->count].first = t->n[t->count].last = SIZE_MAX;
	t->n[t->count].next = SIZE_MAX;
	return t->count++;
}

static size_t pyj_tree_text(struct pyj_tree *t, const char *s, size_t n)
{
	size_t off = t->plen;

	if (t->pcap - t->plen < n) {
		size_t c = t->pcap ? t->pcap : 4096;
		char *np;

		while (c - t->plen < n)
			c *= 2;
		np = realloc(t->pool, c);
		if (!np)
			return SIZE_MAX;
		t->pool = np;
		t->pcap = c;
	}
	memcpy(t->pool + off, s, n);
	t->plen += n;
	return off;
}

/* Reads the whole text into t (root: node 0): 0, -EINVAL or -ENOMEM. */
static int pyj_tree_read(struct pyj_tree *t, const char *json, size_t len,
			 struct pyj_kset *ks)
{
	struct pyj_in in;
	size_t *open = malloc((PYJ_DEPTH_MAX + 1) * sizeof(*open));
	size_t target = SIZE_MAX;
	unsigned sp = 0;
	int rc = -EINVAL, err = 0;
	enum pyj_tok tok;

	if (!open)
		return -ENOMEM;
	pyj_in_init(&in, json, len);
	while ((tok = pyj_next(&in)) > PYJ_EOF) {
		size_t parent = sp ? open[sp - 1] : SIZE_MAX, nd;

		if (tok == PYJ_OBJ_END || tok == PYJ_ARR_END) {
			sp--;
			continue;
		}
		if (tok == PYJ_KEY) {
			size_t key = pyj_tree_text(t, in.str, in.slen), old;

			if (key == SIZE_MAX)
				goto nomem;
			old = pyj_kset_put(
				ks, pyj_hash(in.str, in.slen, t->n[parent].id),
				t->count, &err);
			if (err)
				goto nomem;
			/* a tag seen before may still be another key */
			while (old != SIZE_MAX &&
			       (t->n[old].klen != in.slen ||
				memcmp(t->pool + t->n[old].key, in.str,
				       in.slen)))
				old = SIZE_MAX;
			if (old != SIZE_MAX) {
				/* the value replaces the first one's, there */
				struct pyj_tn *m = &t->n[old];

				m->first = m->last = SIZE_MAX;
				target = old;
				continue;
			}
			nd = pyj_tree_node(t);
			if (nd == SIZE_MAX)
				goto nomem;
			t->n[nd].key = key;
			t->n[nd].klen = in.slen;
			if (t->n[parent].last == SIZE_MAX)
				t->n[parent].first = nd;
			else
				t->n[t->n[parent].last].next = nd;
			t->n[parent].last = nd;
			target = nd;
			continue;
		}
		/* a value: into the member just keyed, else a new element */
		if (parent != SIZE_MAX && t->n[parent].kind == PYJ_OBJ) {
			nd = target;
		} else {
			nd = pyj_tree_node(t);
			if (nd == SIZE_MAX)
				goto nomem;
			if (parent != SIZE_MAX) {
				if (t->n[parent].last == SIZE_MAX)
					t->n[parent].first = nd;
				else
					t->n[t->n[parent].last].next = nd;
				t->n[parent].last = nd;
			}
		}
		t->n[nd].kind = tok;
		if (tok == PYJ_STR) {
			t->n[nd].off = pyj_tree_text(t, in.str, in.slen);
			t->n[nd].n = in.slen;
			if (t->n[nd].off == SIZE_MAX)
				goto nomem;
		} else if (tok == PYJ_NUM) {
			t->n[nd].num = in.str;
			t->n[nd].n = in.slen;
			t->n[nd].num_int = in.num_int;
		} else if (tok == PYJ_OBJ || tok == PYJ_ARR) {
			t->n[nd].id = t->next_id++;
			open[sp++] = nd;
		}
	}
	if (tok == PYJ_EOF)
		rc = 0;
	goto out;
nomem:
	rc = -ENOMEM;
out:
	pyj_in_free(&in);
	free(open);
	return rc;
}

/* Writes t's root as json.dumps does: 0 or -EINVAL (a number). */
static int pyj_tree_write(struct pyj_out *o, const struct pyj_tree *t)
{
	size_t *open = malloc((PYJ_DEPTH_MAX + 1) * sizeof(*open));
	size_t *cur = malloc((PYJ_DEPTH_MAX + 1) * sizeof(*cur));
	size_t v = 0;
	unsigned sp = 0;
	int rc = 0;

	if (!open || !cur) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		const struct pyj_tn *n = &t->n[v];

		switch (n->kind) {
		case PYJ_OBJ:
		case PYJ_ARR:
			pyj_raw(o, n->kind == PYJ_OBJ ? "{" : "[", 1);
			open[sp] = v;
			cur[sp++] = n->first;
			break;
		case PYJ_STR:
			pyj_raw(o, "\"", 1);
			pyj_str_body(o, (const unsigned char *)t->pool + n->off,
				     n->n, true);
			pyj_raw(o, "\"", 1);
			break;
		case PYJ_NUM:
			rc = pyj_value_num(o, n->num, n->n, n->num_int);
			if (rc)
				goto out;
			break;
		case PYJ_TRUE:
			pyj_raw(o, "true", 4);
			break;
		case PYJ_FALSE:
			pyj_raw(o, "false", 5);
			break;
		default:
			pyj_raw(o, "null", 4);
			break;
		}
		/* the next value to write, closing what is finished */
		for (;;) {
			const struct pyj_tn *c;

			if (!sp)
				goto out;
			if (cur[sp - 1] == SIZE_MAX) {
				sp--;
				pyj_raw(o,
					t->n[open[sp]].kind == PYJ_OBJ ? "}"
								       : "]",
					1);
				continue;
			}
			v = cur[sp - 1];
			c = &t->n[v];
			if (v != t->n[open[sp - 1]].first)
				pyj_raw(o, ", ", 2);
			if (t->n[open[sp - 1]].kind == PYJ_OBJ) {
				pyj_raw(o, "\"", 1);
				pyj_str_body(o,
					     (const unsigned char *)t->pool +
						     c->key,
					     c->klen, true);
				pyj_raw(o, "\": ", 3);
			}
			cur[sp - 1] = c->next;
			break;
		}
	}
out:
	free(open);
	free(cur);
	return rc;
}

static int pyj_value_tree(struct pyj_out *o, const char *json, size_t len)
{
	struct pyj_tree t = { 0 };
	struct pyj_kset ks;
	int rc;

	pyj_kset_init(&ks);
	rc = pyj_tree_read(&t, json, len, &ks);
	if (!rc)
		rc = pyj_tree_write(o, &t);
	pyj_kset_free(&ks);
	free(t.n);
	free(t.pool);
	return rc;
}

/*
 * 1 if an object of the text has a key twice (or tags collide), 0 if
 * not, -EINVAL or -ENOMEM: the reader's pass over a value too large to
 * take back from the output.
 */
static int pyj_has_dup_keys(const char *json, size_t len)
{
	struct pyj_in in;
	struct pyj_kset ks;
	uint64_t *ids = malloc((PYJ_DEPTH_MAX + 1) * sizeof(*ids));
	uint64_t next_id = 0;
	enum pyj_tok tok;
	int rc = 0, err = 0;

	if (!ids)
		return -ENOMEM;
	pyj_kset_init(&ks);
	pyj_in_init(&in, json, len);
	while ((tok = pyj_next(&in)) > PYJ_EOF) {
		if (tok == PYJ_OBJ)
			ids[in.depth] = next_id++;
		if (tok != PYJ_KEY)
			continue;
		if (pyj_kset_put(&ks, pyj_hash(in.str, in.slen, ids[in.depth]),
				 0, &err) != SIZE_MAX) {
			rc = 1;
			break;
		}
		if (err) {
			rc = err;
			break;
		}
	}
	if (tok == PYJ_ERROR)
		rc = -EINVAL;
	pyj_in_free(&in);
	pyj_kset_free(&ks);
	free(ids);
	return rc;
}

/* pyj_value_fast's answer when a key comes twice */
#define PYJ_DUP 1

/*
 * The streaming pass: 0, -EINVAL, or PYJ_DUP (with ks) when an object has
 * a key twice (what was written of the value is then to be taken back).
 */
static int pyj_value_fast(struct pyj_out *o, const char *json, size_t len,
			  struct pyj_kset *ks)
{
	const char *p = json, *end = json + len, *q;
	unsigned char stack[PYJ_DEPTH_MAX / 8];
	uint32_t ids[PYJ_DEPTH_MAX], next_id = 0;
	unsigned depth = 0;
	bool in_obj = false;
	int is_int, rc;

	/* Each pass writes one value, then what follows it up to the next
	 * value (separators, closing brackets). */
	p = pyj_skip_ws(p, end);
	for (;;) {
		if (p >= end)
			return -EINVAL;
		switch (*p) {
		case '{':
		case '[':
			if (depth >= PYJ_DEPTH_MAX)
				return -EINVAL;
			in_obj = *p == '{';
			ids[depth] = next_id++;
			if (in_obj)
				stack[depth / 8] |=
					(unsigned char)(1u << (depth % 8));
			else
				stack[depth / 8] &=
					(unsigned char)~(1u << (depth % 8));
			depth++;
			pyj_raw(o, p, 1);
			p = pyj_skip_ws(p + 1, end);
			if (p < end && *p == (in_obj ? '}' : ']')) {
				pyj_raw(o, p, 1);
				depth--;
				p++;
				goto after;
			}
			if (in_obj)
				goto key;
			continue;
		case '"':
			p = pyj_value_str(o, p, end);
			if (!p)
				return -EINVAL;
			goto after;
		case 't':
			if (end - p >= 4 && !memcmp(p, "true", 4)) {
				pyj_raw(o, p, 4);
				p += 4;
				goto after;
			}
			return -EINVAL;
		case 'f':
			if (end - p >= 5 && !memcmp(p, "false", 5)) {
				pyj_raw(o, p, 5);
				p += 5;
				goto after;
			}
			return -EINVAL;
		case 'n':
			if (end - p >= 4 && !memcmp(p, "null", 4)) {
				pyj_raw(o, p, 4);
				p += 4;
				goto after;
			}
			return -EINVAL;
		case 'N':
			if (end - p >= 3 && !memcmp(p, "NaN", 3)) {
				pyj_raw(o, p, 3);
				p += 3;
				goto after;
			}
			return -EINVAL;
		case 'I':
			if (end - p >= 8 && !memcmp(p, "Infinity", 8)) {
				pyj_raw(o, p, 8);
				p += 8;
				goto after;
			}
			return -EINVAL;
		case '-':
			if (end - p >= 9 && !memcmp(p, "-Infinity", 9)) {
				pyj_raw(o, p, 9);
				p += 9;
				goto after;
			}
			/* fall through */
		default:
			q = pyj_scan_number(p, end, &is_int);
			if (!q)
				return -EINVAL;
			rc = pyj_value_num(o, p, (size_t)(q - p), is_int);
			if (rc)
				return rc;
			p = q;
			goto after;
		}
after:
		p = pyj_skip_ws(p, end);
		if (depth == 0)
			return p == end ? 0 : -EINVAL;
		in_obj = stack[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
		if (p < end && *p == ',') {
			pyj_raw(o, ", ", 2);
			p = pyj_skip_ws(p + 1, end);
			if (in_obj)
				goto key;
			continue;
		}
		if (p < end && *p == (in_obj ? '}' : ']')) {
			pyj_raw(o, p, 1);
			depth--;
			p++;
			goto after;
		}
		return -EINVAL;
key:
		if (p >= end || *p != '"')
			return -EINVAL;
		if (ks) {
			/* the key as written (one spelling per key): whole in
			 * the buffer, which is not flushed in this pass */
			size_t at = o->len;
			int err = 0;

			p = pyj_value_str(o, p, end);
			if (!p)
				return -EINVAL;
			if (pyj_kset_put(ks,
					 pyj_hash(o->buf + at, o->len - at,
						  ids[depth - 1]),
					 0, &err) != SIZE_MAX)
				return PYJ_DUP;
			if (err)
				return err;
		} else {
			p = pyj_value_str(o, p, end);
			if (!p)
				return -EINVAL;
		}
		p = pyj_skip_ws(p, end);
		if (p >= end || *p != ':')
			return -EINVAL;
		pyj_raw(o, ": ", 2);
		p = pyj_skip_ws(p + 1, end);
	}
}

/* Values whose output surely fits this much are written in one pass. */
#define PYJ_VALUE_BUF_MAX (4u << 20)

int pyj_value(struct pyj_out *o, const char *json, size_t len)
{
	size_t len0, need = len < PYJ_VALUE_BUF_MAX / 6 ? 6 * len + 64 : 0;
	uint64_t total0;
	struct pyj_kset ks;
	int rc;

	if (o->err)
		return o->err;
	if (need && (o->write || need <= PYJ_BUF_SIZE)) {
		/*
		 * The output (6 bytes a byte at most: a raw DEL is "\u007f")
		 * fits in the buffer, made room for first (or growing, with
		 * no writer): written the fast way, and taken back if a key
		 * comes twice.
		 */
		if (pyj_room(o, need))
			return o->err;
	} else if (!o->write) {
		/* no writer: the buffer grows and nothing leaves it */
	} else {
		/* large: look for repeated keys first */
		rc = pyj_has_dup_keys(json, len);
		if (rc == 1)
			rc = pyj_value_tree(o, json, len);
		else if (!rc)
			rc = pyj_value_fast(o, json, len, NULL);
		return o->err ? o->err : rc;
	}
	len0 = o->len;
	total0 = o->total;
	pyj_kset_init(&ks);
	rc = pyj_value_fast(o, json, len, &ks);
	pyj_kset_free(&ks);
	if (rc == PYJ_DUP && !o->err) {
		o->len = len0;
		o->total = total0;
		rc = pyj_value_tree(o, json, len);
	}
	return o->err ? o->err : rc;
}
