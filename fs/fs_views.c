/* fs_views.c - nodes/, vectors/, index/, kv/, graph/, query/ and .lodefs/. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/text.h"
#include "fs/fs_int.h"
#include "fs/fs_query.h"
#include "fs/fs_views_int.h"

const struct fs_top fs_tops[] = {
	{ "docs", FS_INO_DOCS, FS_K_DOCDIR, FS_INO_ROOT },
	{ "nodes", FS_INO_NODES, FS_K_TOP, FS_INO_ROOT },
	{ "vectors", FS_INO_VECTORS, FS_K_TOP, FS_INO_ROOT },
	{ "index", FS_INO_INDEX, FS_K_TOP, FS_INO_ROOT },
	{ "kv", FS_INO_KV, FS_K_TOP, FS_INO_ROOT },
	{ "graph", FS_INO_GRAPH, FS_K_TOP, FS_INO_ROOT },
	{ "query", FS_INO_QUERY, FS_K_QDIR, FS_INO_ROOT },
	{ "persist", FS_INO_PERSIST, FS_K_TOP, FS_INO_ROOT },
	{ ".lodefs", FS_INO_META, FS_K_TOP, FS_INO_ROOT },
	{ "stats", FS_INO_STATS, FS_K_META, FS_INO_META },
	{ "config", FS_INO_CONFIG, FS_K_META, FS_INO_META },
	{ "errors", FS_INO_ERRORS, FS_K_META, FS_INO_META },
	{ "refresh", FS_INO_REFRESH, FS_K_META, FS_INO_META },
	{ FS_RELMAP, FS_INO_RELMAP, FS_K_RELMAP, FS_INO_GRAPH },
};
const size_t fs_n_tops = sizeof(fs_tops) / sizeof(*fs_tops);

int fs_views_init(struct fs *fs)
{
	size_t i;

	if (!fs_ino_get(fs, FS_INO_ROOT, FS_K_ROOT, NULL, NULL, NULL, 1))
		return -ENOMEM;
	for (i = 0; i < fs_n_tops; i++) {
		const char *k0 = NULL;

		if (fs_tops[i].kind == FS_K_DOCDIR ||
		    fs_tops[i].kind == FS_K_QDIR ||
		    fs_tops[i].kind == FS_K_RELMAP)
			k0 = "";
		if (!fs_ino_get(fs, fs_tops[i].ino, fs_tops[i].kind, k0, NULL,
				NULL, 1))
			return -ENOMEM;
	}
	fs->made_dirs = json_object();
	if (!fs->made_dirs || fs_persist_init(fs))
		return -ENOMEM;
	return fs_made_load(fs);
}

int fs_dirlist_add(struct fs_dirlist *l, const char *name, uint64_t ino,
		   mode_t type)
{
	struct fs_dirent *e =
		fs_reserve(l->e, &l->cap, l->n + 1, sizeof(*e), 64);

	if (!e)
		return -ENOMEM;
	l->e = e;
	l->e[l->n].name = strdup(name);
	if (!l->e[l->n].name)
		return -ENOMEM;
	l->e[l->n].ino = ino;
	l->e[l->n].type = type;
	l->n++;
	return 0;
}

void fs_dirlist_free(struct fs_dirlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
}

/* --- made directories: exist before anything is in them ------------------ */

char *fs_made_key(enum fs_kind kind, const char *a, const char *b)
{
	char *k;

	if (asprintf(&k, "%d\x1f%s\x1f%s", (int)kind, a, b ? b : "") < 0)
		return NULL;
	return k;
}

int fs_made_has(struct fs *fs, enum fs_kind kind, const char *a, const char *b)
{
	char *k = fs_made_key(kind, a, b);
	int has;

	if (!k)
		return 0;
	pthread_mutex_lock(&fs->mu);
	has = json_object_get(fs->made_dirs, k) != NULL;
	pthread_mutex_unlock(&fs->mu);
	free(k);
	return has;
}

#define FS_C_MADE "lodefs/made"

static int fs_made_load_one(void *arg, const char *key, enum engine_type type,
			    const void *data, size_t len)
{
	struct fs *fs = arg;

	return json_object_set_new(fs->made_dirs, key, json_true()) ? -ENOMEM
								    : 0;
}

int fs_made_load(struct fs *fs)
{
	return engine_foreach(store_engine(fs->st), FS_C_MADE, fs_made_load_one,
			      fs);
}

int fs_made_set(struct fs *fs, enum fs_kind kind, const char *a, const char *b,
		int on)
{
	char *k = fs_made_key(kind, a, b);
	int rc;

	if (!k)
		return -ENOMEM;
	/* recorded, so that an empty namespace outlives a remount */
	rc = on ? store_kv_put(fs->st, FS_C_MADE, k, "{}", 2)
		: store_kv_del(fs->st, FS_C_MADE, k);
	if (rc && !(rc == -ENOENT && !on)) {
		fs_error(fs, a, "mkdir/rmdir not recorded: %s",
			 store_last_error());
		free(k);
		return rc == -EINVAL ? rc : -EIO;
	}
	pthread_mutex_lock(&fs->mu);
	if (on)
		json_object_set_new(fs->made_dirs, k, json_true());
	else
		json_object_del(fs->made_dirs, k);
	pthread_mutex_unlock(&fs->mu);
	free(k);
	return 0;
}

/* --- what exists ---------------------------------------------------------- */

int fs_ns_exists(struct fs *fs, const char *ns)
{
	char coll[256];

	if (strcmp(ns, "default") == 0 || strcmp(ns, "image") == 0)
		return 1;
	snprintf(coll, sizeof(coll), "vector_store/%s", ns);
	return engine_count(store_engine(fs->st), coll) > 0 ||
	       fs_made_has(fs, FS_K_VECNS, ns, NULL);
}

int fs_graph_rels(struct fs *fs, const char *subj, json_t **rels)
{
	json_error_t err;
	char *text;
	int rc = store_graph_get(fs->st, subj, &text);

	if (rc)
		return rc;
	*rels = json_loads(text, 0, &err);
	free(text);
	return *rels ? 0 : -EIO;
}

/* 1 if subj has a relation rel (and object obj, when given). */
int fs_graph_has(struct fs *fs, const char *subj, const char *rel,
		 const char *obj)
{
	json_t *rels, *r;
	size_t i;
	int has = 0;

	if (fs_graph_rels(fs, subj, &rels))
		return 0;
	json_array_foreach(rels, i, r)
	{
		const char *rr = json_string_value(json_array_get(r, 0));
		const char *oo = json_string_value(json_array_get(r, 1));

		if (!rel || (rr && strcmp(rr, rel) == 0 &&
			     (!obj || (oo && strcmp(oo, obj) == 0)))) {
			has = 1;
			break;
		}
	}
	json_decref(rels);
	return has;
}

int fs_kv_writable(struct fs *fs, const char *coll)
{
	if (strncmp(coll, "lodefs/", 7) == 0 ||
	    strncmp(coll, "vector_store/", 13) == 0) {
		fs_error(fs, coll,
			 "refused: collection %s is written through %s", coll,
			 coll[0] == 'l' ? "docs/" : "vectors/");
		return -EPERM;
	}
	return 0;
}

/* "a/b" joined, or b alone when a is empty; malloc'd. */
char *fs_optjoin(const char *a, const char *b)
{
	char *p;

	if (!a || !*a)
		return strdup(b);
	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

/* Splits an option path into decoded segments (malloc'd vector). */
static int fs_optsplit(const char *path, char ***segs, size_t *n)
{
	char *copy = strdup(path), *save = NULL, *tok;
	char **v = NULL;
	size_t m = 0;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		char **nv = realloc(v, (m + 1) * sizeof(*v)), *d;

		if (!nv) {
			rc = -ENOMEM;
			break;
		}
		v = nv;
		if (fs_name_decode(tok, &d))
			d = strdup(tok);
		if (!d) {
			rc = -ENOMEM;
			break;
		}
		v[m++] = d;
	}
	free(copy);
	*segs = v;
	*n = m;
	return rc;
}

static void fs_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Parses the request of a query path (text NULL: a directory). */
static int fs_query_parse(struct fs *fs, const char *optpath, const char *text,
			  struct fs_qreq **r)
{
	char **segs = NULL, err[512] = "";
	size_t n = 0;
	int rc = fs_optsplit(optpath, &segs, &n);

	if (!rc)
		rc = fs_qreq_from_path((const char *const *)segs, n, text, r,
				       err, sizeof(err));
	if (rc && rc != -ENOMEM) {
		char *p = fs_optjoin(optpath, text ? text : "");

		fs_error(fs, p ? p : optpath, "query refused: %s", err);
		free(p);
	}
	fs_strv_free(segs, n);
	return rc;
}

int fs_query_check_ns(struct fs *fs, const struct fs_qreq *r, char *err,
		      size_t errlen)
{
	const char *ns = fs_qreq_ns(r);

	if (!ns || fs_ns_exists(fs, ns))
		return 0;
	snprintf(err, errlen, "unknown vector namespace '%s'", ns);
	return -EINVAL;
}

void fs_qfile_drop_empty(struct fs *fs, const char *name)
{
	struct fs_qfile **pp, *q = NULL;

	pthread_mutex_lock(&fs->mu);
	for (pp = &fs->qfiles; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			if (!(*pp)->req) {
				q = *pp;
				*pp = q->next;
			}
			break;
		}
	pthread_mutex_unlock(&fs->mu);
	if (q) {
		free(q->name);
		free(q);
	}
}

char *fs_view_path(const struct fs_ino *ip)
{
	char *a = ip->keys[0] ? fs_name_encode(ip->keys[0], NULL) : NULL;
	char *b = ip->keys[1] ? fs_name_encode(ip->keys[1], NULL) : NULL;
	char *c = ip->keys[2] ? fs_name_encode(ip->keys[2], NULL) : NULL;
	char *p = NULL;
	int n = -1;

	switch (ip->kind) {
	case FS_K_NODE:
		n = asprintf(&p, "nodes/%s.json", a);
		break;
	case FS_K_INDEX:
		n = asprintf(&p, "index/%s.json", a);
		break;
	case FS_K_KV:
		n = asprintf(&p, "kv/%s/%s.json", a, b);
		break;
	case FS_K_VEC:
		n = asprintf(&p, "vectors/%s/%s", a, b);
		break;
	case FS_K_GOBJ:
		n = asprintf(&p, "graph/%s/%s/%s", a, b, c);
		break;
	case FS_K_QREQ:
		n = asprintf(&p, "query/%s", ip->keys[0]);
		break;
	case FS_K_PERSIST:
		n = asprintf(&p, "persist/%s", ip->keys[0]);
		break;
	default:
		n = asprintf(&p, "%s", ip->keys[0] ? ip->keys[0] : "");
		break;
	}
	free(a);
	free(b);
	free(c);
	return n < 0 ? NULL : p;
}

/*
 * Runs the query of path opt/text, or takes its result from the cache when
 * the store has not changed since: *res malloc'd.
 */
static int fs_query_result(struct fs *fs, const char *opt, const char *text,
			   char **res, size_t *len)
{
	uint64_t v = atomic_load(&fs->version);
	size_t slot = (size_t)(fs_hash_ino(FS_K_QTEXT, opt, text, NULL) %
			       FS_QCACHE_SLOTS);
	struct fs_qcache *c = &fs->qcache[slot];
	struct fs_qreq *r = NULL;
	char err[512] = "", *key, *out = NULL;
	size_t klen = strlen(opt) + 1 + strlen(text) + 1;
	int rc;

	key = malloc(klen);
	if (!key)
		return -ENOMEM;
	snprintf(key, klen, "%s/%s", opt, text);
	pthread_mutex_lock(&fs->mu);
	if (c->key && c->version == v && strcmp(c->key, key) == 0) {
		*res = malloc(c->len + 1);
		if (*res) {
			memcpy(*res, c->res, c->len);
			*len = c->len;
		}
		pthread_mutex_unlock(&fs->mu);
		free(key);
		atomic_fetch_add(&fs->query_cache_hits, 1);
		return *res ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&fs->mu);
	rc = fs_query_parse(fs, opt, text, &r);
	if (!rc && (rc = fs_query_check_ns(fs, r, err, sizeof(err))))
		fs_error(fs, text, "query refused: %s", err);
	else if (!rc) {
		rc = fs_qreq_run(fs->st, r, &out, len, err, sizeof(err));
		if (rc && rc != -ENOMEM)
			fs_error(fs, text, "query failed: %s", err);
	}
	fs_qreq_free(r);
	if (rc) {
		free(key);
		return rc;
	}
	atomic_fetch_add(&fs->queries, 1);
	*res = out;
	pthread_mutex_lock(&fs->mu);
	free(c->key);
	free(c->res);
	c->key = key;
	c->res = malloc(*len + 1);
	c->len = *len;
	c->version = v;
	if (c->res)
		memcpy(c->res, out, *len);
	else {
		free(c->key);
		c->key = NULL;
	}
	pthread_mutex_unlock(&fs->mu);
	return 0;
}

/*
 * Looks up query/[opt/]text.  Each distinct result is its own inode, whose
 * number hashes the path and the result's bytes: an inode's content and
 * size never change, so concurrent readers cannot mix the size of one
 * run with the bytes of another, and the page cache may keep them.  A
 * changed result is a new inode (the kernel looks the name up again).
 */
static int fs_query_lookup(struct fs *fs, const char *opt, const char *text,
			   struct fuse_entry_param *e)
{
	struct fs_ino *ip;
	char *res = NULL, hash[17];
	size_t len = 0;
	uint64_t ino;
	int rc = fs_query_result(fs, opt, text, &res, &len);

	if (rc)
		return rc;
	snprintf(hash, sizeof(hash), "%016llx",
		 (unsigned long long)XXH3_64bits(res, len));
	ino = fs_hash_ino(FS_K_QTEXT, opt, text, hash);
	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_get(fs, ino, FS_K_QTEXT, opt, text, hash, 1);
	if (ip && !ip->res) {
		ip->res = res;
		ip->res_len = len;
		clock_gettime(CLOCK_REALTIME, &ip->res_time);
		res = NULL;
	}
	if (ip) {
		memset(e, 0, sizeof(*e));
		e->ino = ino;
		e->generation = ip->gen;
		fs_view_stat(fs, ip, ip->res_len, &e->attr);
		e->attr_timeout = fs->opts.attr_timeout;
		e->entry_timeout = 0;
	}
	pthread_mutex_unlock(&fs->mu);
	free(res);
	return ip ? 0 : -ENOMEM;
}

struct fs_qfile *fs_qfile_find(struct fs *fs, const char *name)
{
	struct fs_qfile *q;

	for (q = fs->qfiles; q; q = q->next)
		if (strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

int fs_is_json_name(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, FS_JSON) == 0;
}

/* Result of a JSON request file; malloc'd. */
/* Runs a JSON request: *out malloc'd.  Logs a failure. */
int fs_qfile_run(struct fs *fs, const char *name, const char *req, size_t rl,
		 char **out, size_t *len)
{
	struct fs_qreq *r = NULL;
	char err[512] = "";
	int rc;

	rc = fs_qreq_from_json(req, rl, &r, err, sizeof(err));
	if (!rc)
		rc = fs_query_check_ns(fs, r, err, sizeof(err));
	if (!rc)
		rc = fs_qreq_run(fs->st, r, out, len, err, sizeof(err));
	if (rc && rc != -ENOMEM)
		fs_error(fs, name, "query refused: %s", err);
	if (!rc)
		atomic_fetch_add(&fs->queries, 1);
	fs_qreq_free(r);
	return rc;
}

/* Copies q's cached result into *out; caller holds fs->mu. */
static int fs_qfile_cached(struct fs_qfile *q, char **out, size_t *len)
{
	if (q->res_rc)
		return q->res_rc;
	*out = malloc(q->res_len + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, q->res, q->res_len);
	*len = q->res_len;
	return 0;
}

/*
 * Result of a JSON request file, malloc'd: computed once per state of the
 * store (lookup, getattr and open would each ask otherwise).
 */
static int fs_qfile_result(struct fs *fs, const char *name, char **out,
			   size_t *len)
{
	uint64_t v = atomic_load(&fs->version);
	struct fs_qfile *q;
	char *req = NULL;
	size_t rl = 0;
	int rc;

	pthread_mutex_lock(&fs->mu);
	q = fs_qfile_find(fs, name);
	if (q && q->res_valid && q->res_version == v) {
		rc = fs_qfile_cached(q, out, len);
		pthread_mutex_unlock(&fs->mu);
		atomic_fetch_add(&fs->query_cache_hits, 1);
		return rc;
	}
	if (q && q->req && (req = malloc(q->req_len + 1))) {
		memcpy(req, q->req, q->req_len);
		rl = q->req_len;
	}
	pthread_mutex_unlock(&fs->mu);
	if (!q)
		return -ENOENT;
	if (!req) {
		*out = strdup("");
		*len = 0;
		return *out ? 0 : -ENOMEM;
	}
	rc = fs_qfile_run(fs, name, req, rl, out, len);
	pthread_mutex_lock(&fs->mu);
	q = fs_qfile_find(fs, name);
	if (q && q->req && q->req_len == rl && !memcmp(q->req, req, rl) &&
	    rc != -ENOMEM) {
		free(q->res);
		q->res = NULL;
		q->res_len = 0;
		if (!rc && (q->res = malloc(*len + 1))) {
			memcpy(q->res, *out, *len);
			q->res_len = *len;
		}
		q->res_rc = rc;
		q->res_valid = rc || q->res;
		q->res_version = v;
	}
	pthread_mutex_unlock(&fs->mu);
	free(req);
	return rc;
}

/* --- entries -------------------------------------------------------------- */

int fs_kind_is_dir(enum fs_kind k)
{
	switch (k) {
	case FS_K_ROOT:
	case FS_K_TOP:
	case FS_K_DOCDIR:
	case FS_K_VECNS:
	case FS_K_KVCOLL:
	case FS_K_GSUBJ:
	case FS_K_GREL:
	case FS_K_RELMAP:
	case FS_K_QDIR:
		return 1;
	default:
		return 0;
	}
}

/* Content of a virtual file (not a document). */
int fs_view_content(struct fs *fs, struct fs_ino *ip, char **out, size_t *len)
{
	enum engine_type type;
	void *data = NULL;
	float *v = NULL;
	uint32_t dim = 0;
	int rc;

	*out = NULL;
	*len = 0;
	switch (ip->kind) {
	case FS_K_NODE:
		return store_node_get(fs->st, ip->keys[0], out, len);
	case FS_K_INDEX:
		return store_index_get(fs->st, ip->keys[0], out, len);
	case FS_K_KV:
		rc = engine_get(store_engine(fs->st), ip->keys[0], ip->keys[1],
				&type, &data, len);
		if (!rc && type != ENGINE_JSON) {
			free(data);
			return -ENOENT;
		}
		*out = data;
		return rc;
	case FS_K_VEC:
		rc = store_vec_get(fs->st, ip->keys[0], ip->keys[1], &v, &dim);
		*out = (char *)v;
		*len = (size_t)dim * sizeof(float);
		return rc;
	case FS_K_GOBJ:
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	case FS_K_RELMAPQ: {
		char **segs = NULL;
		size_t n = 0, i;
		int depth = 2, limit = 30;
		const char *subj = ip->keys[1];

		rc = fs_optsplit(ip->keys[0], &segs, &n);
		for (i = 0; i < n && !rc; i++) {
			if (sscanf(segs[i], "depth=%d", &depth) == 1 ||
			    sscanf(segs[i], "limit=%d", &limit) == 1)
				continue;
			rc = -ENOENT;
		}
		fs_strv_free(segs, n);
		if (!rc)
			rc = store_graph_rel_map(fs->st, &subj, 1, depth, limit,
						 out);
		if (!rc)
			*len = strlen(*out);
		return rc;
	}
	case FS_K_QTEXT:
		pthread_mutex_lock(&fs->mu);
		if (ip->res && (*out = malloc(ip->res_len + 1))) {
			memcpy(*out, ip->res, ip->res_len);
			*len = ip->res_len;
		}
		pthread_mutex_unlock(&fs->mu);
		if (*out)
			return 0;
		/* an inode met again through a file handle: run it again */
		return fs_query_result(fs, ip->keys[0], ip->keys[1], out, len);
	case FS_K_QREQ:
		return fs_qfile_result(fs, ip->keys[0], out, len);
	case FS_K_META:
		return fs_meta_content(fs, ip->ino, out, len);
	default:
		return -EISDIR;
	}
}

void fs_view_stat(struct fs *fs, struct fs_ino *ip, size_t size,
		  struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ip->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 65536;
	st->st_mtim = st->st_ctim = st->st_atim = fs->mounted;
	if (fs_kind_is_dir(ip->kind)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		st->st_size = 4096;
		return;
	}
	st->st_mode =
		S_IFREG | ((ip->kind == FS_K_QTEXT || ip->kind == FS_K_META ||
			    ip->kind == FS_K_RELMAPQ) &&
					   ip->ino != FS_INO_REFRESH
				   ? 0444
				   : 0644);
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (st->st_size + 511) / 512;
	if (ip->kind == FS_K_QTEXT) /* a changed result is a changed file */
		st->st_mtim = st->st_ctim = ip->res_time;
}

int fs_view_getattr(struct fs *fs, struct fs_ino *ip, struct stat *st)
{
	char *c = NULL;
	size_t len = 0;
	int rc = 0;

	if (ip->kind == FS_K_PERSIST)
		return fs_persist_getattr(fs, ip, NULL, st);
	if (!fs_kind_is_dir(ip->kind)) {
		rc = fs_view_content(fs, ip, &c, &len);
		free(c);
		/* made by create and not written yet: empty, not missing */
		if (rc == -ENOENT && ip->opens)
			rc = 0;
		if (rc)
			return rc;
	}
	fs_view_stat(fs, ip, len, st);
	return 0;
}

static double fs_attr_timeout(struct fs *fs, enum fs_kind k)
{
	switch (k) {
	case FS_K_QTEXT: /* read right after a fresh lookup: no getattr */
		return 1.0;
	case FS_K_ROOT:
	case FS_K_TOP:
	case FS_K_QDIR:
	case FS_K_RELMAP:
		return fs->opts.attr_timeout;
	default: /* sizes change with the store: always ask */
		return 0;
	}
}

/* Takes a reference on (kind, keys) and fills e. */
int fs_view_ref(struct fs *fs, uint64_t ino, enum fs_kind kind, const char *k0,
		const char *k1, const char *k2, struct fuse_entry_param *e)
{
	struct fs_ino *ip;
	int rc;

	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_get(fs, ino, kind, k0, k1, k2, 1);
	pthread_mutex_unlock(&fs->mu);
	if (!ip)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = ip->gen;
	rc = fs_view_getattr(fs, ip, &e->attr);
	if (rc) {
		pthread_mutex_lock(&fs->mu);
		fs_ino_forget(fs, ino, 1);
		pthread_mutex_unlock(&fs->mu);
		return rc;
	}
	e->attr_timeout = fs_attr_timeout(fs, kind);
	e->entry_timeout = (kind == FS_K_QTEXT || kind == FS_K_QREQ ||
			    kind == FS_K_RELMAPQ || kind == FS_K_PERSIST)
				   ? 0
				   : fs->opts.entry_timeout;
	return 0;
}

int fs_view_ref_hash(struct fs *fs, enum fs_kind kind, const char *k0,
		     const char *k1, const char *k2, struct fuse_entry_param *e)
{
	return fs_view_ref(fs, fs_hash_ino(kind, k0, k1, k2), kind, k0, k1, k2,
			   e);
}

/* id of a "<encoded id>.json" name, malloc'd; -ENOENT for other names. */
int fs_json_id(const char *name, char **id)
{
	size_t n = strlen(name);
	char *base;
	int rc;

	if (!fs_is_json_name(name))
		return -ENOENT;
	base = strndup(name, n - 5);
	if (!base)
		return -ENOMEM;
	rc = fs_name_decode(base, id);
	free(base);
	return rc;
}

int fs_view_lookup(struct fs *fs, struct fs_ino *dir, const char *name,
		   struct fuse_entry_param *e)
{
	char *id = NULL;
	size_t i;
	int rc;

	if (strlen(name) > 255) {
		fs_error(fs, name, "refused: a name holds at most 255 bytes");
		return -ENAMETOOLONG;
	}
	switch (dir->kind) {
	case FS_K_ROOT:
	case FS_K_TOP:
		for (i = 0; i < fs_n_tops; i++)
			if (fs_tops[i].parent == dir->ino &&
			    strcmp(fs_tops[i].name, name) == 0)
				return fs_view_ref(
					fs, fs_tops[i].ino, fs_tops[i].kind,
					fs_tops[i].kind == FS_K_TOP ||
							fs_tops[i].kind ==
								FS_K_META
						? NULL
						: "",
					NULL, NULL, e);
		if (dir->kind == FS_K_ROOT || dir->ino == FS_INO_META)
			return -ENOENT;
		if (dir->ino == FS_INO_PERSIST)
			return fs_persist_lookup(fs, name, e);
		break;
	default:
		break;
	}
	if (dir->ino == FS_INO_NODES || dir->ino == FS_INO_INDEX) {
		int node = dir->ino == FS_INO_NODES;

		rc = fs_json_id(name, &id);
		if (rc)
			return rc;
		if (!engine_exists(store_engine(fs->st),
				   node ? FS_C_DATA : FS_C_INDEX, id))
			rc = -ENOENT;
		else
			rc = fs_view_ref_hash(fs, node ? FS_K_NODE : FS_K_INDEX,
					      id, NULL, NULL, e);
		free(id);
		return rc;
	}
	if (dir->ino == FS_INO_VECTORS || dir->ino == FS_INO_KV ||
	    dir->ino == FS_INO_GRAPH || dir->kind == FS_K_VECNS ||
	    dir->kind == FS_K_KVCOLL || dir->kind == FS_K_GSUBJ ||
	    dir->kind == FS_K_GREL) {
		int is_kv = dir->kind == FS_K_KVCOLL;

		rc = is_kv ? fs_json_id(name, &id) : fs_name_decode(name, &id);
		if (rc)
			return rc;
		if (dir->ino == FS_INO_VECTORS)
			rc = fs_ns_exists(fs, id)
				     ? fs_view_ref_hash(fs, FS_K_VECNS, id,
							NULL, NULL, e)
				     : -ENOENT;
		else if (dir->ino == FS_INO_KV)
			rc = engine_count(store_engine(fs->st), id) ||
					     fs_made_has(fs, FS_K_KVCOLL, id,
							 NULL)
				     ? fs_view_ref_hash(fs, FS_K_KVCOLL, id,
							NULL, NULL, e)
				     : -ENOENT;
		else if (dir->ino == FS_INO_GRAPH)
			rc = fs_graph_has(fs, id, NULL, NULL) ||
					     fs_made_has(fs, FS_K_GSUBJ, id,
							 NULL)
				     ? fs_view_ref_hash(fs, FS_K_GSUBJ, id,
							NULL, NULL, e)
				     : -ENOENT;
		else if (dir->kind == FS_K_VECNS)
			rc = fs_view_ref_hash(fs, FS_K_VEC, dir->keys[0], id,
					      NULL, e);
		else if (is_kv)
			rc = engine_exists(store_engine(fs->st), dir->keys[0],
					   id)
				     ? fs_view_ref_hash(fs, FS_K_KV,
							dir->keys[0], id, NULL,
							e)
				     : -ENOENT;
		else if (dir->kind == FS_K_GSUBJ)
			rc = fs_graph_has(fs, dir->keys[0], id, NULL) ||
					     fs_made_has(fs, FS_K_GREL,
							 dir->keys[0], id)
				     ? fs_view_ref_hash(fs, FS_K_GREL,
							dir->keys[0], id, NULL,
							e)
				     : -ENOENT;
		else
			rc = fs_graph_has(fs, dir->keys[0], dir->keys[1], id)
				     ? fs_view_ref_hash(fs, FS_K_GOBJ,
							dir->keys[0],
							dir->keys[1], id, e)
				     : -ENOENT;
		free(id);
		return rc;
	}
	if (dir->kind == FS_K_QDIR || dir->kind == FS_K_RELMAP) {
		int q = dir->kind == FS_K_QDIR;
		struct fs_qreq *r = NULL;
		char *opt;

		if (q && dir->ino == FS_INO_QUERY && fs_is_json_name(name)) {
			struct fs_qfile *qf;
			uint64_t ino = 0;

			pthread_mutex_lock(&fs->mu);
			qf = fs_qfile_find(fs, name);
			if (qf)
				ino = qf->ino;
			pthread_mutex_unlock(&fs->mu);
			if (!qf)
				return -ENOENT;
			return fs_view_ref(fs, ino, FS_K_QREQ, name, NULL, NULL,
					   e);
		}
		if (fs_query_is_option(name)) {
			opt = fs_optjoin(dir->keys[0], name);
			if (!opt)
				return -ENOMEM;
			if (q) {
				rc = fs_query_parse(fs, opt, NULL, &r);
				fs_qreq_free(r);
			} else {
				int v;

				rc = sscanf(name, "depth=%d", &v) == 1 ||
						     sscanf(name, "limit=%d",
							    &v) == 1
					     ? 0
					     : -ENOENT;
				if (rc)
					fs_error(fs, name,
						 "unknown rel_map option "
						 "(known: depth, limit)");
			}
			if (!rc)
				rc = fs_view_ref_hash(fs, dir->kind, opt, NULL,
						      NULL, e);
			free(opt);
			return rc;
		}
		if (!q) {
			rc = fs_name_decode(name, &id);
			if (rc)
				return rc;
			rc = fs_view_ref_hash(fs, FS_K_RELMAPQ, dir->keys[0],
					      id, NULL, e);
			free(id);
			return rc;
		}
		if (!text_is_utf8(name, strlen(name)))
			return -EINVAL;
		return fs_query_lookup(fs, dir->keys[0], name, e);
	}
	return -ENOENT;
}

uint64_t fs_view_parent(struct fs *fs, struct fs_ino *ip)
{
	size_t i;

	for (i = 0; i < fs_n_tops; i++)
		if (fs_tops[i].ino == ip->ino)
			return fs_tops[i].parent;
	switch (ip->kind) {
	case FS_K_NODE:
		return FS_INO_NODES;
	case FS_K_INDEX:
		return FS_INO_INDEX;
	case FS_K_VECNS:
		return FS_INO_VECTORS;
	case FS_K_VEC:
		return fs_hash_ino(FS_K_VECNS, ip->keys[0], NULL, NULL);
	case FS_K_KVCOLL:
		return FS_INO_KV;
	case FS_K_KV:
		return fs_hash_ino(FS_K_KVCOLL, ip->keys[0], NULL, NULL);
	case FS_K_GSUBJ:
		return FS_INO_GRAPH;
	case FS_K_GREL:
		return fs_hash_ino(FS_K_GSUBJ, ip->keys[0], NULL, NULL);
	case FS_K_GOBJ:
		return fs_hash_ino(FS_K_GREL, ip->keys[0], ip->keys[1], NULL);
	case FS_K_QREQ:
		return FS_INO_QUERY;
	case FS_K_PERSIST:
		return FS_INO_PERSIST;
	case FS_K_QDIR:
	case FS_K_QTEXT:
	case FS_K_RELMAP:
	case FS_K_RELMAPQ: {
		enum fs_kind dk =
			ip->kind == FS_K_RELMAP || ip->kind == FS_K_RELMAPQ
				? FS_K_RELMAP
				: FS_K_QDIR;
		const char *p = ip->keys[0];
		const char *slash = strrchr(p, '/');
		char *up;
		uint64_t r;

		if (ip->kind == FS_K_QTEXT || ip->kind == FS_K_RELMAPQ) {
			if (!*p)
				return dk == FS_K_QDIR ? FS_INO_QUERY
						       : FS_INO_RELMAP;
			return fs_hash_ino(dk, p, NULL, NULL);
		}
		if (!slash)
			return dk == FS_K_QDIR ? FS_INO_QUERY : FS_INO_RELMAP;
		up = strndup(p, (size_t)(slash - p));
		r = up ? fs_hash_ino(dk, up, NULL, NULL) : FS_INO_ROOT;
		free(up);
		return r;
	}
	default:
		return FS_INO_ROOT;
	}
}

int fs_view_entry(struct fs *fs, uint64_t ino, struct fuse_entry_param *e)
{
	struct fs_ino *ip;
	enum fs_kind kind;
	char *k[3] = { NULL, NULL, NULL };
	int rc = 0, i;

	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_find(fs, ino);
	if (ip) {
		kind = ip->kind;
		for (i = 0; i < 3; i++)
			if (ip->keys[i] && !(k[i] = strdup(ip->keys[i])))
				rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fs->mu);
	if (!ip)
		return -ESTALE;
	if (!rc)
		rc = fs_view_ref(fs, ino, kind, k[0], k[1], k[2], e);
	for (i = 0; i < 3; i++)
		free(k[i]);
	return rc;
}
