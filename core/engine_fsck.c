/* engine_fsck.c - verifying every object of a store without trusting it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/engine_int.h"

struct fsck_obj {
	char *key;
	uint64_t size;
};

struct fsck {
	struct backend *be;
	engine_report_fn *report;
	void *arg;
	int problems;
	struct fsck_obj *objs;
	size_t nobjs;
	size_t cap;
	/* highest seq per writer covered by a valid checkpoint */
	struct eng_mwriter *covered;
	size_t ncovered;
	int err;
};

static void fsck_say(struct fsck *f, bool warning, const char *key,
		     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fsck_say(struct fsck *f, bool warning, const char *key,
		     const char *fmt, ...)
{
	char msg[600];
	int n = 0;
	va_list ap;

	if (warning)
		n = snprintf(msg, sizeof(msg), "warning: ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (!warning)
		f->problems++;
	if (f->report)
		f->report(f->arg, key, msg);
}

static int fsck_list_fn(void *arg, const char *key, uint64_t size)
{
	struct fsck *f = arg;

	if (f->nobjs == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		void *p = realloc(f->objs, cap * sizeof(*f->objs));

		if (!p)
			return f->err = -ENOMEM;
		f->objs = p;
		f->cap = cap;
	}
	f->objs[f->nobjs].key = strdup(key);
	if (!f->objs[f->nobjs].key)
		return f->err = -ENOMEM;
	f->objs[f->nobjs++].size = size;
	return 0;
}

static uint64_t fsck_covered(const struct fsck *f, const char *writer)
{
	size_t i;

	for (i = 0; i < f->ncovered; i++) {
		if (strcmp(f->covered[i].id, writer) == 0)
			return f->covered[i].seq;
	}
	return 0;
}

static int fsck_cover(struct fsck *f, const struct eng_manifest *m)
{
	size_t i, j;

	for (i = 0; i < m->nwriters; i++) {
		for (j = 0; j < f->ncovered; j++) {
			if (strcmp(f->covered[j].id, m->writers[i].id) == 0)
				break;
		}
		if (j == f->ncovered) {
			void *p = realloc(f->covered,
					  (j + 1) * sizeof(*f->covered));

			if (!p)
				return -ENOMEM;
			f->covered = p;
			f->covered[j] = m->writers[i];
			f->ncovered++;
		} else if (m->writers[i].seq > f->covered[j].seq) {
			f->covered[j].seq = m->writers[i].seq;
		}
	}
	return 0;
}

static int fsck_format(struct fsck *f)
{
	void *p;
	size_t n;
	json_t *root, *v;
	const char *kind;
	int rc;

	rc = backend_get(f->be, ENG_FORMAT_KEY, &p, &n);
	if (rc == -ENOENT) {
		if (f->nobjs)
			fsck_say(f, false, ENG_FORMAT_KEY,
				 "missing, but the store holds objects");
		return 0;
	}
	if (rc)
		return rc;
	root = json_loadb(p, n, 0, NULL);
	v = json_object_get(root, "format");
	kind = json_string_value(json_object_get(root, "lodefs"));
	if (!kind || strcmp(kind, "store") != 0 || !json_is_integer(v) ||
	    json_integer_value(v) < 1)
		fsck_say(f, false, ENG_FORMAT_KEY, "not a lodefs format file");
	else if (json_integer_value(v) > ENG_FORMAT_VERSION)
		fsck_say(f, false, ENG_FORMAT_KEY,
			 "format %lld is newer than this program (%d)",
			 (long long)json_integer_value(v), ENG_FORMAT_VERSION);
	json_decref(root);
	free(p);
	return 0;
}

/* Checks an extension object: any damage is only a warning. */
static int fsck_ext_obj(struct fsck *f, const char *key,
			const struct eng_mobj *o)
{
	/* an extension can always be rebuilt: its damage is no problem */
	const char *ext = " (an extension: open rebuilds it)";
	void *p;
	size_t n;
	int rc;

	rc = backend_get(f->be, key, &p, &n);
	if (rc == -ENOENT) {
		fsck_say(f, true, key, "listed in the manifest but missing%s",
			 ext);
		return 0;
	}
	if (rc)
		return rc;
	if (n != o->size)
		fsck_say(f, true, key, "size %zu, manifest says %llu%s", n,
			 (unsigned long long)o->size, ext);
	else if (eng_xxh3(p, n) != o->xxh3)
		fsck_say(f, true, key, "checksum mismatch%s", ext);
	free(p);
	return 0;
}

/* What fsck learns about each object of one checkpoint. */
struct fsck_cobj {
	struct eng_loaded l;
	char key[ENG_NAME_MAX];
	bool sum_bad;	 /* whole-object xxh3 mismatch (values, vec) */
	size_t nbad;	 /* values in it that fail their own xxh3 */
	char names[200]; /* the first of them */
};

struct fsck_bad {
	struct fsck_cobj *objs;
};

static void fsck_bad_value(void *arg, size_t obj, const char *coll,
			   const char *key)
{
	struct fsck_cobj *o = &((struct fsck_bad *)arg)->objs[obj];
	size_t n = strlen(o->names);

	if (o->nbad++ < 3 && n < sizeof(o->names) - 1)
		snprintf(o->names + n, sizeof(o->names) - n, "%s%s/%s",
			 n ? ", " : "", coll, key);
}

/*
 * Reads object o (mapped if the backend can) and checks its size, its
 * header and, for the keys object, its checksum and structure.  Leaves
 * c->l.data NULL unless the object can be used to check values.
 */
static int fsck_ckpt_obj(struct fsck *f, const struct eng_manifest *m,
			 const struct eng_mobj *o, struct fsck_cobj *c)
{
	const char *why = NULL;
	int rc;

	snprintf(c->key, sizeof(c->key), "ckpt/%s/%s", m->id, o->name);
	if (o->ext)
		return fsck_ext_obj(f, c->key, o);
	rc = eng_obj_load(f->be, c->key, &c->l.data, &c->l.len, &c->l.cookie);
	if (rc == -ENOENT) {
		fsck_say(f, false, c->key,
			 "listed in the manifest but missing");
		c->l.data = NULL;
		return 0;
	}
	if (rc) {
		c->l.data = NULL;
		return rc;
	}
	if (c->l.len != o->size) {
		fsck_say(f, false, c->key, "size %zu, manifest says %llu",
			 c->l.len, (unsigned long long)o->size);
		goto out_release;
	}
	if (o->coll)
		rc = eng_vec_check(c->l.data, c->l.len, o, &why);
	else if (strcmp(o->name, ENG_OBJ_VALUES) == 0)
		rc = eng_vals_check(c->l.data, c->l.len, &why);
	c->sum_bad = eng_xxh3(c->l.data, c->l.len) != o->xxh3;
	if (rc) {
		fsck_say(f, false, c->key, "%s", why);
		goto out_release;
	}
	if (strcmp(o->name, ENG_OBJ_KEYS) != 0)
		return 0; /* a bad checksum is reported with the values */
	if (c->sum_bad) {
		fsck_say(f, false, c->key, "checksum mismatch");
		goto out_release;
	}
	rc = eng_keys_check(c->l.data, c->l.len, m, &why);
	if (rc) {
		fsck_say(f, false, c->key, "%s", why);
		goto out_release;
	}
	return 0;
out_release:
	eng_obj_release(f->be, c->l.data, c->l.cookie);
	c->l.data = NULL;
	return 0;
}

/* Reports a values or vec object whose values do not all check out. */
static void fsck_values_say(struct fsck *f, const struct fsck_cobj *c,
			    bool keys_ok)
{
	const char *more = c->nbad > 3 ? ", ..." : "";

	if (c->sum_bad && c->nbad)
		fsck_say(f, false, c->key,
			 "checksum mismatch: %zu damaged value%s (%s%s)",
			 c->nbad, c->nbad == 1 ? "" : "s", c->names, more);
	else if (c->sum_bad)
		fsck_say(f, false, c->key, "checksum mismatch%s",
			 keys_ok ? " (every value checks out: the damage is "
				   "outside them)"
				 : "");
	else if (c->nbad)
		fsck_say(f, false, c->key,
			 "%zu value%s do not match the checksum in the keys "
			 "object (%s%s)",
			 c->nbad, c->nbad == 1 ? "" : "s", c->names, more);
}

/*
 * Checks every object of checkpoint m: sizes, headers, checksums, the
 * keys object's structure, and each value against its own xxh3 (so that
 * a damaged values object names the keys it affects).
 */
static int fsck_ckpt_objs(struct fsck *f, const struct eng_manifest *m)
{
	struct fsck_cobj *objs = calloc(m->nobjs + 1, sizeof(*objs));
	struct fsck_bad bad = { .objs = objs };
	size_t i, ki = SIZE_MAX;
	int rc = 0;

	if (!objs)
		return -ENOMEM;
	for (i = 0; i < m->nobjs && !rc; i++) {
		rc = fsck_ckpt_obj(f, m, &m->objs[i], &objs[i]);
		if (strcmp(m->objs[i].name, ENG_OBJ_KEYS) == 0)
			ki = i;
	}
	if (rc)
		goto out_release;
	if (ki != SIZE_MAX && objs[ki].l.data) {
		struct eng_loaded *ls = calloc(m->nobjs + 1, sizeof(*ls));

		if (!ls) {
			rc = -ENOMEM;
			goto out_release;
		}
		for (i = 0; i < m->nobjs; i++)
			ls[i] = objs[i].l;
		eng_values_verify(m, ls, ki, fsck_bad_value, &bad);
		free(ls);
	}
	for (i = 0; i < m->nobjs; i++) {
		if (i != ki && !m->objs[i].ext && objs[i].l.data)
			fsck_values_say(f, &objs[i],
					ki != SIZE_MAX && objs[ki].l.data);
	}
out_release:
	for (i = 0; i < m->nobjs; i++) {
		if (objs[i].l.data)
			eng_obj_release(f->be, objs[i].l.data,
					objs[i].l.cookie);
	}
	free(objs);
	return rc;
}

/* Checks checkpoint objects [from, to) of f->objs, all of one id. */
static int fsck_ckpt(struct fsck *f, const char *id, size_t from, size_t to)
{
	struct eng_manifest m;
	char key[ENG_NAME_MAX], obj[64], oid[ENG_CKPT_ID_MAX + 1];
	const char *why;
	size_t i, j, n;
	void *p;
	int rc;

	snprintf(key, sizeof(key), "ckpt/%s/manifest", id);
	rc = backend_get(f->be, key, &p, &n);
	if (rc == -ENOENT) {
		fsck_say(f, true, key,
			 "checkpoint without a manifest (unfinished; it "
			 "is ignored and will be removed)");
		return 0;
	}
	if (rc)
		return rc;
	rc = eng_manifest_parse(p, n, &m, &why);
	free(p);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		fsck_say(f, false, key, "%s", why);
		return 0;
	}
	if (strcmp(m.id, id) != 0)
		fsck_say(f, false, key, "manifest names checkpoint %s", m.id);
	rc = fsck_ckpt_objs(f, &m);
	if (rc)
		goto out_free;
	for (i = from; i < to; i++) {
		eng_ckpt_parse_name(f->objs[i].key, oid, obj, sizeof(obj));
		for (j = 0; j < m.nobjs; j++) {
			if (strcmp(m.objs[j].name, obj) == 0)
				break;
		}
		if (j == m.nobjs && strcmp(obj, "manifest") != 0)
			fsck_say(f, true, f->objs[i].key,
				 "not listed in the manifest");
	}
	rc = fsck_cover(f, &m);
out_free:
	eng_manifest_free(&m);
	return rc;
}

static int fsck_ckpts(struct fsck *f)
{
	char id[ENG_CKPT_ID_MAX + 1], next[ENG_CKPT_ID_MAX + 1], obj[64];
	size_t i, j;
	int rc;

	for (i = 0; i < f->nobjs; i = j) {
		if (strncmp(f->objs[i].key, "ckpt/", 5) != 0) {
			j = i + 1;
			continue;
		}
		if (eng_ckpt_parse_name(f->objs[i].key, id, obj, sizeof(obj))) {
			fsck_say(f, true, f->objs[i].key,
				 "unexpected object under ckpt/");
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < f->nobjs; j++) {
			if (eng_ckpt_parse_name(f->objs[j].key, next, obj,
						sizeof(obj)) ||
			    strcmp(next, id) != 0)
				break;
		}
		rc = fsck_ckpt(f, id, i, j);
		if (rc)
			return rc;
	}
	return 0;
}

static int fsck_segs(struct fsck *f)
{
	char w[ENG_WRITER_MAX + 1], nw[ENG_WRITER_MAX + 1];
	size_t i;
	int rc;

	for (i = 0; i < f->nobjs; i++) {
		const char *key = f->objs[i].key, *why;
		struct eng_seg_hdr h;
		uint64_t seq, nseq;
		bool last, covered;
		void *p;
		size_t n;

		if (strncmp(key, "log/", 4) != 0)
			continue;
		if (eng_seg_parse_name(key, w, &seq)) {
			fsck_say(f, true, key, "unexpected object under log/");
			continue;
		}
		last = i + 1 == f->nobjs ||
		       eng_seg_parse_name(f->objs[i + 1].key, nw, &nseq) ||
		       strcmp(nw, w) != 0;
		covered = seq <= fsck_covered(f, w);
		rc = backend_get(f->be, key, &p, &n);
		if (rc == -ENOENT)
			continue;
		if (rc)
			return rc;
		rc = eng_seg_verify(p, n, &h, &why);
		free(p);
		if (rc == 0 && (strcmp(h.writer, w) != 0 || h.seq != seq))
			rc = -EUCLEAN, why = "header names another writer/seq";
		if (rc == 0)
			continue;
		if (covered)
			fsck_say(f, true, key,
				 "%s, but covered by a checkpoint (garbage)",
				 why);
		else if (rc == -EBADMSG && last)
			fsck_say(f, true, key,
				 "torn tail segment (%s): never acknowledged, "
				 "ignored",
				 why);
		else
			fsck_say(f, false, key, "%s", why);
	}
	return 0;
}

int engine_fsck(struct backend *be, engine_report_fn *report, void *arg)
{
	struct fsck f = { .be = be, .report = report, .arg = arg };
	struct engine_opts opts = { .read_only = 1, .writer = "fsck" };
	struct engine *e;
	size_t i;
	int rc;

	if (!be)
		return -EINVAL;
	rc = backend_list(be, "", fsck_list_fn, &f);
	if (!rc)
		rc = f.err;
	if (rc)
		goto out_free;
	for (i = 0; i < f.nobjs; i++) {
		const char *k = f.objs[i].key;

		if (strcmp(k, ENG_FORMAT_KEY) != 0 && strncmp(k, "log/", 4) &&
		    strncmp(k, "ckpt/", 5))
			fsck_say(&f, true, k, "not an object of lodefs");
	}
	rc = fsck_format(&f);
	if (!rc)
		rc = fsck_ckpts(&f);
	if (!rc)
		rc = fsck_segs(&f);
	if (rc)
		goto out_free;
	/* Everything checks out one by one: does it replay as a whole? */
	if (f.problems == 0) {
		rc = engine_open(be, &opts, &e);
		if (rc == -ENOMEM)
			goto out_free;
		if (rc) {
			fsck_say(&f, false, "", "replay fails: %s",
				 engine_last_error());
		} else if (e->conflicts) {
			fsck_say(&f, true, "",
				 "%llu replayed vectors were skipped: their "
				 "dimension clashed with the collection's",
				 (unsigned long long)e->conflicts);
		}
		engine_close(e);
	}
	rc = f.problems;
out_free:
	for (i = 0; i < f.nobjs; i++)
		free(f.objs[i].key);
	free(f.objs);
	free(f.covered);
	return rc;
}
