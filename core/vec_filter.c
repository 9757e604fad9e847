/* vec_filter.c - LlamaIndex MetadataFilters: parsing and evaluation. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vec.h"
#include "core/vec_int.h"

/* Nesting deeper than this is refused (the evaluator recurses). */
#define VEC_FILTER_DEPTH_MAX 32

struct vec_filter_item {
	struct vec_filters *group; /* a nested group, or NULL for a filter */
	char *key;
	enum vec_filter_op op;
	json_t *value; /* owned; JSON null stands for None */
};

struct vec_filters {
	enum vec_filter_cond cond;
	size_t n, cap;
	struct vec_filter_item *items;
};

static const char *const vec_op_names[] = {
	[VEC_OP_EQ] = "==",
	[VEC_OP_NE] = "!=",
	[VEC_OP_GT] = ">",
	[VEC_OP_GTE] = ">=",
	[VEC_OP_LT] = "<",
	[VEC_OP_LTE] = "<=",
	[VEC_OP_IN] = "in",
	[VEC_OP_NIN] = "nin",
	[VEC_OP_CONTAINS] = "contains",
	[VEC_OP_TEXT_MATCH] = "text_match",
	[VEC_OP_TEXT_MATCH_INSENSITIVE] = "text_match_insensitive",
	[VEC_OP_ANY] = "any",
	[VEC_OP_ALL] = "all",
	[VEC_OP_IS_EMPTY] = "is_empty",
};

#define VEC_NOPS (sizeof(vec_op_names) / sizeof(vec_op_names[0]))

const char *vec_filter_op_name(enum vec_filter_op op)
{
	return (size_t)op < VEC_NOPS ? vec_op_names[op] : "?";
}

static int vec_op_lookup(const char *s, size_t n, enum vec_filter_op *op)
{
	/* shell-friendly spellings for the where= form */
	static const struct {
		const char *name;
		enum vec_filter_op op;
	} alias[] = {
		{ "eq", VEC_OP_EQ }, { "ne", VEC_OP_NE },
		{ "gt", VEC_OP_GT }, { "gte", VEC_OP_GTE },
		{ "lt", VEC_OP_LT }, { "lte", VEC_OP_LTE },
	};
	size_t i;

	for (i = 0; i < VEC_NOPS; i++) {
		if (strlen(vec_op_names[i]) == n &&
		    !memcmp(vec_op_names[i], s, n)) {
			*op = (enum vec_filter_op)i;
			return 0;
		}
	}
	for (i = 0; i < sizeof(alias) / sizeof(alias[0]); i++) {
		if (strlen(alias[i].name) == n &&
		    !memcmp(alias[i].name, s, n)) {
			*op = alias[i].op;
			return 0;
		}
	}
	return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static int
vec_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* --- building ------------------------------------------------------------ */

int vec_filter_new(enum vec_filter_cond cond, struct vec_filters **out)
{
	struct vec_filters *f;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (cond != VEC_COND_AND && cond != VEC_COND_OR && cond != VEC_COND_NOT)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->cond = cond;
	*out = f;
	return 0;
}

void vec_filter_free(struct vec_filters *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->n; i++) {
		vec_filter_free(f->items[i].group);
		free(f->items[i].key);
		json_decref(f->items[i].value);
	}
	free(f->items);
	free(f);
}

size_t vec_filter_count(const struct vec_filters *f)
{
	return f ? f->n : 0;
}

/* Appends *it (whose owned members move into f); -ENOMEM leaves it alone. */
static int vec_push(struct vec_filters *f, const struct vec_filter_item *it)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 4;
		struct vec_filter_item *items;

		items = realloc(f->items, cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		f->items = items;
		f->cap = cap;
	}
	f->items[f->n++] = *it;
	return 0;
}

/* A valid filter value: scalar, or a list of scalars other than null. */
static int vec_value_ok(const json_t *v)
{
	size_t i;
	json_t *e;

	if (!v || json_is_null(v) || json_is_string(v) || json_is_number(v) ||
	    json_is_boolean(v))
		return 1;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e) && !json_is_number(e) &&
		    !json_is_boolean(e))
			return 0;
	}
	return 1;
}

int vec_filter_add(struct vec_filters *f, const char *key,
		   enum vec_filter_op op, const json_t *value)
{
	struct vec_filter_item it = { .op = op };

	if (!f || !key || (size_t)op >= VEC_NOPS || !vec_value_ok(value))
		return -EINVAL;
	it.key = strdup(key);
	/* json_deep_copy takes a non-const pointer but does not modify it */
	it.value = value ? json_deep_copy((json_t *)value) : json_null();
	if (!it.key || !it.value || vec_push(f, &it)) {
		free(it.key);
		json_decref(it.value);
		return -ENOMEM;
	}
	return 0;
}

int vec_filter_add_group(struct vec_filters *f, struct vec_filters *child)
{
	struct vec_filter_item it = { .group = child };

	if (!f || !child || f == child)
		return -EINVAL;
	return vec_push(f, &it);
}

/* --- JSON form ----------------------------------------------------------- */

static int vec_parse_group(const json_t *obj, const char *path, int depth,
			   struct vec_filters **out, char *err, size_t errlen);

static int vec_parse_leaf(const json_t *obj, const char *path,
			  struct vec_filters *f, char *err, size_t errlen)
{
	const json_t *key = json_object_get(obj, "key");
	const json_t *op = json_object_get(obj, "operator");
	const json_t *value = json_object_get(obj, "value");
	enum vec_filter_op o = VEC_OP_EQ; /* ExactMatchFilter: no operator */
	int rc;

	if (!json_is_string(key))
		return vec_err(err, errlen, "%s.key: expected a string", path);
	if (op) {
		if (!json_is_string(op) ||
		    vec_op_lookup(json_string_value(op), json_string_length(op),
				  &o))
			goto bad_op;
		/* eq, gte, ... are where= spellings, not LlamaIndex ones */
		if (strcmp(vec_op_names[o], json_string_value(op)))
			goto bad_op;
	}
	if (!vec_value_ok(value))
		return vec_err(err, errlen,
			       "%s.value: expected a string, number, boolean, "
			       "null or a list of strings/numbers/booleans",
			       path);
	rc = vec_filter_add(f, json_string_value(key), o, value);
	if (rc == -EINVAL)
		return vec_err(err, errlen, "%s: invalid filter", path);
	return rc;
bad_op:
	return vec_err(err, errlen,
		       "%s.operator: expected one of ==, !=, >, >=, <, <=, "
		       "in, nin, contains, text_match, "
		       "text_match_insensitive, any, all, is_empty",
		       path);
}

static int vec_parse_cond(const json_t *c, size_t nfilters,
			  enum vec_filter_cond *cond)
{
	const char *s;

	*cond = VEC_COND_AND;
	if (!c)
		return 0;
	/* Python raises on a None condition only once there is a filter */
	if (json_is_null(c))
		return nfilters ? -EINVAL : 0;
	if (!json_is_string(c))
		return -EINVAL;
	s = json_string_value(c);
	if (!strcmp(s, "and"))
		*cond = VEC_COND_AND;
	else if (!strcmp(s, "or"))
		*cond = VEC_COND_OR;
	else if (!strcmp(s, "not"))
		*cond = VEC_COND_NOT;
	else
		return -EINVAL;
	return 0;
}

static int vec_parse_item(const json_t *e, const char *path, int depth,
			  struct vec_filters *f, char *err, size_t errlen)
{
	struct vec_filters *child;
	int rc;

	if (!json_is_object(e))
		return vec_err(err, errlen, "%s: expected an object", path);
	if (json_object_get(e, "key"))
		return vec_parse_leaf(e, path, f, err, errlen);
	if (!json_object_get(e, "filters"))
		return vec_err(err, errlen,
			       "%s: neither a filter (\"key\") nor a group "
			       "(\"filters\")",
			       path);
	rc = vec_parse_group(e, path, depth + 1, &child, err, errlen);
	if (rc)
		return rc;
	rc = vec_filter_add_group(f, child);
	if (rc)
		vec_filter_free(child);
	return rc;
}

static int vec_parse_group(const json_t *obj, const char *path, int depth,
			   struct vec_filters **out, char *err, size_t errlen)
{
	const json_t *list, *e;
	enum vec_filter_cond cond;
	struct vec_filters *f;
	char sub[256];
	size_t i;
	int rc;

	*out = NULL;
	if (depth > VEC_FILTER_DEPTH_MAX)
		return vec_err(err, errlen,
			       "filters: groups nested too deeply (over %d)",
			       VEC_FILTER_DEPTH_MAX);
	if (!json_is_object(obj))
		return vec_err(err, errlen, "%s: expected an object", path);
	list = json_object_get(obj, "filters");
	if (!list)
		return vec_err(err, errlen, "%s: missing \"filters\"", path);
	if (!json_is_array(list))
		return vec_err(err, errlen, "%s.filters: expected a list",
			       path);
	if (vec_parse_cond(json_object_get(obj, "condition"),
			   json_array_size(list), &cond))
		return vec_err(err, errlen,
			       "%s.condition: expected \"and\", \"or\" or "
			       "\"not\"",
			       path);
	rc = vec_filter_new(cond, &f);
	if (rc)
		return rc;
	json_array_foreach(list, i, e)
	{
		snprintf(sub, sizeof(sub), "%s.filters[%zu]", path, i);
		rc = vec_parse_item(e, sub, depth, f, err, errlen);
		if (rc) {
			vec_filter_free(f);
			return rc;
		}
	}
	*out = f;
	return 0;
}

int vec_filter_from_json(const json_t *obj, struct vec_filters **out, char *err,
			 size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	return vec_parse_group(obj, "filters", 0, out, err, errlen);
}

int vec_filter_parse(const char *json, size_t len, struct vec_filters **out,
		     char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!json)
		return vec_err(err, errlen, "no filter JSON");
	root = json_loadb(json, len, 0, &jerr);
	if (!root)
		return vec_err(err, errlen,
			       "filters: invalid JSON at %d:%d: %s", jerr.line,
			       jerr.column, jerr.text);
	rc = vec_parse_group(root, "filters", 0, out, err, errlen);
	json_decref(root);
	return rc;
}

/* --- where= form --------------------------------------------------------- */

static int vec_is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void vec_trim(const char **s, size_t *n)
{
	while (*n && vec_is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && vec_is_space((*s)[*n - 1]))
		(*n)--;
}

/* JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int vec_is_number(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0') {
		i++;
	} else {
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	return i == n;
}

/* One value of the where= form; *out is a new reference. */
static int vec_where_scalar(const char *s, size_t n, json_t **out, char *err,
			    size_t errlen)
{
	json_error_t jerr;

	*out = NULL;
	if (n == 0)
		return vec_err(err, errlen,
			       "where: empty value (write \"\" for the empty "
			       "string)");
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
		*out = json_stringn(s + 1, n - 2);
	else if (n == 4 && !memcmp(s, "true", 4))
		*out = json_true();
	else if (n == 5 && !memcmp(s, "false", 5))
		*out = json_false();
	else if (n == 4 && !memcmp(s, "null", 4))
		*out = json_null();
	else if (vec_is_number(s, n)) {
		/* jansson, not strtod: no dependence on LC_NUMERIC */
		*out = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
		if (!*out)
			return vec_err(err, errlen,
				       "where: number out of range: %.*s",
				       (int)n, s);
	} else
		*out = json_stringn(s, n);
	if (!*out)
		return vec_err(err, errlen, "where: value is not UTF-8");
	return 0;
}

/* Comma-separated values, "..." protecting commas; *out a new array. */
static int vec_where_list(const char *s, size_t n, json_t **out, char *err,
			  size_t errlen)
{
	json_t *list = json_array(), *e;
	size_t i = 0;
	int rc;

	*out = NULL;
	if (!list)
		return -ENOMEM;
	for (;;) {
		const char *tok;
		size_t tn;

		while (i < n && vec_is_space(s[i]))
			i++;
		tok = s + i;
		if (i < n && s[i] == '"') {
			const char *q = memchr(s + i + 1, '"', n - i - 1);

			if (!q) {
				rc = vec_err(err, errlen,
					     "where: unterminated quote");
				goto fail;
			}
			tn = (size_t)(q - tok) + 1;
			i += tn;
			while (i < n && vec_is_space(s[i]))
				i++;
			if (i < n && s[i] != ',') {
				rc = vec_err(err, errlen,
					     "where: expected ',' after a "
					     "quoted value");
				goto fail;
			}
		} else {
			const char *c = memchr(tok, ',', n - i);

			tn = c ? (size_t)(c - tok) : n - i;
			i += tn;
			vec_trim(&tok, &tn);
		}
		rc = vec_where_scalar(tok, tn, &e, err, errlen);
		if (rc)
			goto fail;
		if (json_array_append_new(list, e)) {
			rc = -ENOMEM;
			goto fail;
		}
		if (i >= n)
			break;
		i++; /* the comma */
	}
	*out = list;
	return 0;
fail:
	json_decref(list);
	return rc;
}

int vec_filter_parse_where(const char *expr, struct vec_filters *f, char *err,
			   size_t errlen)
{
	const char *p, *key, *val = NULL;
	size_t keyn, valn = 0;
	enum vec_filter_op op;
	json_t *value = NULL;
	char *k;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!expr || !f)
		return vec_err(err, errlen, "where: no expression");
	p = strpbrk(expr, "=!<>~");
	if (!p)
		return vec_err(err, errlen,
			       "where: no operator in \"%s\" (e.g. year>=2020, "
			       "tags~any~a,b)",
			       expr);
	key = expr;
	keyn = (size_t)(p - expr);
	vec_trim(&key, &keyn);
	if (keyn == 0)
		return vec_err(err, errlen, "where: empty key in \"%s\"", expr);

	if (*p == '~') {
		const char *name = p + 1, *sep = strchr(name, '~');
		size_t namen = sep ? (size_t)(sep - name) : strlen(name);

		vec_trim(&name, &namen);
		if (vec_op_lookup(name, namen, &op))
			return vec_err(err, errlen,
				       "where: unknown operator \"%.*s\"",
				       (int)namen, name);
		if (sep) {
			val = sep + 1;
			valn = strlen(val);
		}
	} else {
		size_t opn = p[1] == '=' ? 2 : 1;

		if (p[0] == '=')
			op = VEC_OP_EQ; /* "=" or "==" */
		else if (p[0] == '!' && opn == 2)
			op = VEC_OP_NE;
		else if (p[0] == '>')
			op = opn == 2 ? VEC_OP_GTE : VEC_OP_GT;
		else if (p[0] == '<')
			op = opn == 2 ? VEC_OP_LTE : VEC_OP_LT;
		else
			return vec_err(err, errlen,
				       "where: '!' must be followed by '='");
		val = p + opn;
		valn = strlen(val);
	}
	if (val)
		vec_trim(&val, &valn);

	if (op == VEC_OP_IS_EMPTY) {
		if (valn)
			return vec_err(err, errlen,
				       "where: is_empty takes no value");
	} else if (!val) {
		return vec_err(
			err, errlen, "where: %s needs a value (%.*s~%s~V)",
			vec_op_names[op], (int)keyn, key, vec_op_names[op]);
	} else if (op == VEC_OP_IN || op == VEC_OP_NIN || op == VEC_OP_ANY ||
		   op == VEC_OP_ALL) {
		rc = vec_where_list(val, valn, &value, err, errlen);
		if (rc)
			return rc;
	} else {
		rc = vec_where_scalar(val, valn, &value, err, errlen);
		if (rc)
			return rc;
	}

	k = strndup(key, keyn);
	if (!k) {
		json_decref(value);
		return -ENOMEM;
	}
	rc = vec_filter_add(f, k, op, value);
	free(k);
	json_decref(value);
	if (rc == -EINVAL)
		return vec_err(err, errlen, "where: invalid filter");
	return rc;
}

/* --- evaluation: Python semantics ---------------------------------------- */

/* Tri-state results: a Python exception is VEC_PY_ERR. */
#define VEC_PY_ERR  (-1)
#define VEC_CMP_ERR 2 /* vec_py_cmp: the pair is not ordered in Python */

/* bool is a subclass of int in Python: True == 1, False < 0.5 */
static int vec_py_isnum(const json_t *j)
{
	return json_is_integer(j) || json_is_real(j) || json_is_boolean(j);
}

static long long vec_py_int(const json_t *j)
{
	if (json_is_integer(j))
		return (long long)json_integer_value(j);
	return json_is_true(j) ? 1 : 0;
}

/* Exact comparison of an integer with a double, as Python does it. */
static int vec_cmp_int_real(long long i, double d)
{
	double t;
	long long ti;

	if (d < -0x1p63)
		return 1;
	if (d >= 0x1p63)
		return -1;
	t = trunc(d);
	ti = (long long)t;
	if (i != ti)
		return i < ti ? -1 : 1;
	return d > t ? -1 : (d < t ? 1 : 0);
}

static int vec_py_numcmp(const json_t *a, const json_t *b)
{
	if (json_is_real(a) && json_is_real(b)) {
		double x = json_real_value(a), y = json_real_value(b);

		return (x > y) - (x < y);
	}
	if (json_is_real(a))
		return -vec_cmp_int_real(vec_py_int(b), json_real_value(a));
	if (json_is_real(b))
		return vec_cmp_int_real(vec_py_int(a), json_real_value(b));
	return (vec_py_int(a) > vec_py_int(b)) -
	       (vec_py_int(a) < vec_py_int(b));
}

static int vec_bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c < 0 ? -1 : 1;
	return (an > bn) - (an < bn);
}

/* a == b */
static int vec_py_eq(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *x;
	size_t i;

	if (vec_py_isnum(a) && vec_py_isnum(b))
		return vec_py_numcmp(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b),
			       json_string_length(a));
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (i = 0; i < json_array_size(a); i++)
			if (!vec_py_eq(json_array_get(a, i),
				       json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		/* json_object_foreach wants a non-const object; read only */
		json_object_foreach((json_t *)a, key, x)
		{
			const json_t *y = json_object_get(b, key);

			if (!y || !vec_py_eq(x, y))
				return 0;
		}
		return 1;
	case JSON_NULL:
		return 1;
	default:
		return 0;
	}
}

/* -1, 0, 1 for a < b, a == b, a > b, or VEC_CMP_ERR (TypeError). */
static int vec_py_cmp(const json_t *a, const json_t *b)
{
	size_t i, an, bn;

	if (vec_py_isnum(a) && vec_py_isnum(b))
		return vec_py_numcmp(a, b);
	if (json_is_string(a) && json_is_string(b))
		return vec_bytes_cmp(
			json_string_value(a), json_string_length(a),
			json_string_value(b), json_string_length(b));
	if (json_is_array(a) && json_is_array(b)) {
		/* the first unequal pair decides, else the shorter list */
		an = json_array_size(a);
		bn = json_array_size(b);
		for (i = 0; i < an && i < bn; i++) {
			const json_t *x = json_array_get(a, i);
			const json_t *y = json_array_get(b, i);

			if (!vec_py_eq(x, y))
				return vec_py_cmp(x, y);
		}
		return (an > bn) - (an < bn);
	}
	return VEC_CMP_ERR;
}

/* Python's `needle in haystack` for strings: "" is in everything. */
static int vec_has_sub(const char *hay, size_t hn, const char *needle,
		       size_t nn)
{
	if (nn == 0)
		return 1;
	if (!hay || !needle || nn > hn)
		return 0;
	return memmem(hay, hn, needle, nn) != NULL;
}

/* The string s[0..n) in container. */
static int vec_py_in_str(const json_t *container, const char *s, size_t n)
{
	size_t i;

	switch (json_typeof(container)) {
	case JSON_ARRAY:
		for (i = 0; i < json_array_size(container); i++) {
			const json_t *e = json_array_get(container, i);

			if (json_is_string(e) && json_string_length(e) == n &&
			    !memcmp(json_string_value(e), s, n))
				return 1;
		}
		return 0;
	case JSON_STRING:
		return vec_has_sub(json_string_value(container),
				   json_string_length(container), s, n);
	case JSON_OBJECT:
		return json_object_getn(container, s, n) != NULL;
	default:
		return VEC_PY_ERR; /* 'int' is not iterable */
	}
}

/* x in container */
static int vec_py_in(const json_t *container, const json_t *x)
{
	size_t i;

	if (json_is_string(x))
		return vec_py_in_str(container, json_string_value(x),
				     json_string_length(x));
	switch (json_typeof(container)) {
	case JSON_ARRAY:
		for (i = 0; i < json_array_size(container); i++)
			if (vec_py_eq(json_array_get(container, i), x))
				return 1;
		return 0;
	case JSON_OBJECT:
		/* keys are strings; a list or dict is unhashable */
		return json_is_array(x) || json_is_object(x) ? VEC_PY_ERR : 0;
	default:
		/* 'in <string>' requires a string; numbers do not iterate */
		return VEC_PY_ERR;
	}
}

/* any()/all() of (e in mv for e in v), short-circuiting as Python does. */
static int vec_py_any_all(const json_t *mv, const json_t *v, int all)
{
	const unsigned char *s;
	const char *key;
	json_t *e;
	size_t i, n, step;
	uint32_t cp;
	int r;

	switch (json_typeof(v)) {
	case JSON_ARRAY:
		json_array_foreach(v, i, e)
		{
			r = vec_py_in(mv, e);
			if (r < 0 || r != all)
				return r;
		}
		return all;
	case JSON_STRING:
		/* a string iterates over its characters */
		s = (const unsigned char *)json_string_value(v);
		n = json_string_length(v);
		for (i = 0; i < n; i += step) {
			step = vec_utf8_next(s, n, i, &cp);
			r = vec_py_in_str(mv, (const char *)s + i, step);
			if (r < 0 || r != all)
				return r;
		}
		return all;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, e)
		{
			r = vec_py_in_str(mv, key, strlen(key));
			if (r < 0 || r != all)
				return r;
		}
		return all;
	default:
		return VEC_PY_ERR;
	}
}

/* value.lower() in metadata_value.lower() */
static int vec_py_in_lower(const json_t *mv, const json_t *v)
{
	const char *ms = json_string_value(mv), *vs = json_string_value(v);
	size_t mn = json_string_length(mv), vn = json_string_length(v);
	size_t need = 2 * (mn + vn) + 1, ml, vl;
	char sbuf[512], *buf;
	int r;

	if (!ms || !vs)
		return VEC_PY_ERR;
	buf = need <= sizeof(sbuf) ? sbuf : malloc(need);
	if (!buf)
		return VEC_PY_ERR;
	ml = vec_utf8_lower(ms, mn, buf);
	vl = vec_utf8_lower(vs, vn, buf + ml);
	r = vec_has_sub(buf, ml, buf + ml, vl);
	if (buf != sbuf)
		free(buf);
	return r;
}

/*
 * One filter against metadata.get(key), as _process_filter_match and the
 * IS_EMPTY branch of build_metadata_filter_fn do it.
 */
static int vec_leaf_eval(const struct vec_filter_item *it, const json_t *md)
{
	const json_t *mv = md ? json_object_get(md, it->key) : NULL;
	const json_t *v = it->value;
	int r;

	if (mv && json_is_null(mv))
		mv = NULL; /* metadata.get() cannot tell null from missing */

	/* value is None or value == "" or value == [] */
	if (it->op == VEC_OP_IS_EMPTY)
		return !mv ||
		       (json_is_string(mv) && json_string_length(mv) == 0) ||
		       (json_is_array(mv) && json_array_size(mv) == 0);

	/* None: "not equal" and "not in" hold, nothing else does */
	if (!mv)
		return it->op == VEC_OP_NE || it->op == VEC_OP_NIN;

	switch (it->op) {
	case VEC_OP_EQ:
		return vec_py_eq(mv, v);
	case VEC_OP_NE:
		return !vec_py_eq(mv, v);
	case VEC_OP_GT:
	case VEC_OP_GTE:
	case VEC_OP_LT:
	case VEC_OP_LTE:
		r = vec_py_cmp(mv, v);
		if (r == VEC_CMP_ERR)
			return VEC_PY_ERR;
		if (it->op == VEC_OP_GT)
			return r > 0;
		if (it->op == VEC_OP_GTE)
			return r >= 0;
		if (it->op == VEC_OP_LT)
			return r < 0;
		return r <= 0;
	case VEC_OP_IN:
		return vec_py_in(v, mv);
	case VEC_OP_NIN:
		r = vec_py_in(v, mv);
		return r < 0 ? r : !r;
	case VEC_OP_CONTAINS:
		return vec_py_in(mv, v);
	case VEC_OP_TEXT_MATCH:
		if (!json_is_string(mv) || !json_is_string(v))
			return VEC_PY_ERR;
		return vec_py_in_str(mv, json_string_value(v),
				     json_string_length(v));
	case VEC_OP_TEXT_MATCH_INSENSITIVE:
		if (!json_is_string(mv) || !json_is_string(v))
			return VEC_PY_ERR;
		return vec_py_in_lower(mv, v);
	case VEC_OP_ANY:
		return vec_py_any_all(mv, v, 0);
	case VEC_OP_ALL:
		return vec_py_any_all(mv, v, 1);
	default:
		return VEC_PY_ERR;
	}
}

/*
 * Python builds the whole list of filter results before all()/any(), so
 * an exception in any filter fails the node whatever the others say.
 */
static int vec_group_eval(const struct vec_filters *f, const json_t *md)
{
	int any = 0, all = 1, r;
	size_t i;

	if (f->n == 0)
		return 1; /* no filters: every node passes */
	for (i = 0; i < f->n; i++) {
		const struct vec_filter_item *it = &f->items[i];

		r = it->group ? vec_group_eval(it->group, md)
			      : vec_leaf_eval(it, md);
		if (r < 0)
			return r;
		any |= r;
		all &= r;
	}
	switch (f->cond) {
	case VEC_COND_AND:
		return all;
	case VEC_COND_OR:
		return any;
	default:
		return !any; /* not: none of the filters matches */
	}
}

int vec_filter_match(const struct vec_filters *f, const json_t *metadata)
{
	if (!f)
		return 1;
	if (metadata && !json_is_object(metadata))
		metadata = NULL;
	return vec_group_eval(f, metadata) == 1;
}
