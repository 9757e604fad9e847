/* fs_views_io.c - listing, opening, writing and removing view entries. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "fs/fs_int.h"
#include "fs/fs_query.h"
#include "fs/fs_views_int.h"

/* --- listings ------------------------------------------------------------- */

struct fs_list_ctx {
	struct fs *fs;
	struct fs_dirlist *l;
	enum fs_kind kind;
	const char *k0;
	const char *suffix;
	json_t *seen;
};

static int fs_list_key(void *arg, const char *key, enum engine_type type,
		       const void *data, size_t len)
{
	struct fs_list_ctx *c = arg;
	char *name = fs_name_encode(key, c->suffix);
	int rc;

	if (!name)
		return -ENOMEM;
	if (strlen(name) > 255 || (c->seen && json_object_get(c->seen, key))) {
		free(name); /* cannot be a file name, or listed already */
		return 0;
	}
	if (c->seen)
		json_object_set_new(c->seen, key, json_true());
	rc = fs_dirlist_add(c->l, name,
			    c->k0 ? fs_hash_ino(c->kind, c->k0, key, NULL)
				  : fs_hash_ino(c->kind, key, NULL, NULL),
			    fs_kind_is_dir(c->kind) ? S_IFDIR : S_IFREG);
	free(name);
	return rc;
}

static int fs_list_ns(void *arg, const char *ns, size_t count, uint32_t dim)
{
	return fs_list_key(arg, ns, ENGINE_VEC, NULL, 0);
}

static int fs_list_coll(void *arg, const char *coll)
{
	if (strncmp(coll, "vector_store/", 13) == 0 ||
	    strcmp(coll, "lodefs/content") == 0)
		return 0;
	return fs_list_key(arg, coll, ENGINE_JSON, NULL, 0);
}

/* Adds the made directories of one kind (and parent key) to a listing. */
static int fs_list_made(struct fs_list_ctx *c, enum fs_kind kind,
			const char *parent)
{
	char prefix[64];
	const char *k;
	json_t *v, *copy;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), "%d\x1f", (int)kind);
	pthread_mutex_lock(&c->fs->mu);
	copy = json_copy(c->fs->made_dirs);
	pthread_mutex_unlock(&c->fs->mu);
	json_object_foreach(copy, k, v)
	{
		const char *a = k + strlen(prefix), *sep;
		char *name;

		if (strncmp(k, prefix, strlen(prefix)) != 0)
			continue;
		sep = strchr(a, '\x1f');
		if (!sep)
			continue;
		if (parent) { /* relation: "subj\x1frel" */
			if ((size_t)(sep - a) != strlen(parent) ||
			    strncmp(a, parent, strlen(parent)) != 0)
				continue;
			name = strdup(sep + 1);
		} else {
			name = strndup(a, (size_t)(sep - a));
		}
		if (!name) {
			rc = -ENOMEM;
			break;
		}
		rc = fs_list_key(c, name, ENGINE_JSON, NULL, 0);
		free(name);
		if (rc)
			break;
	}
	json_decref(copy);
	return rc;
}

static int fs_list_graph(struct fs_list_ctx *c, const char *subj,
			 const char *rel)
{
	json_t *rels, *r;
	size_t i;
	int rc = 0;

	if (fs_graph_rels(c->fs, subj, &rels))
		return 0;
	json_array_foreach(rels, i, r)
	{
		const char *rr = json_string_value(json_array_get(r, 0));
		const char *oo = json_string_value(json_array_get(r, 1));
		const char *name = rel ? oo : rr;

		if (!rr || !oo || (rel && strcmp(rr, rel) != 0) ||
		    json_object_get(c->seen, name))
			continue;
		if (rel) {
			json_object_set_new(c->seen, name, json_true());
			char *n = fs_name_encode(oo, NULL);

			rc = n ? fs_dirlist_add(
					 c->l, n,
					 fs_hash_ino(FS_K_GOBJ, subj, rel, oo),
					 S_IFREG)
			       : -ENOMEM;
			free(n);
		} else {
			rc = fs_list_key(c, rr, ENGINE_JSON, NULL, 0);
		}
		if (rc)
			break;
	}
	json_decref(rels);
	return rc;
}

int fs_view_list(struct fs *fs, struct fs_ino *dir, struct fs_dirlist *l)
{
	struct fs_list_ctx c = { .fs = fs, .l = l };
	struct engine *e = store_engine(fs->st);
	size_t i;
	int rc = 0;

	c.seen = json_object();
	if (!c.seen)
		return -ENOMEM;
	if (dir->kind == FS_K_ROOT || dir->ino == FS_INO_META ||
	    dir->ino == FS_INO_GRAPH) {
		for (i = 0; i < fs_n_tops && !rc; i++)
			if (fs_tops[i].parent == dir->ino)
				rc = fs_dirlist_add(
					l, fs_tops[i].name, fs_tops[i].ino,
					fs_kind_is_dir(fs_tops[i].kind)
						? S_IFDIR
						: S_IFREG);
	}
	if (rc)
		goto out;
	if (dir->ino == FS_INO_NODES || dir->ino == FS_INO_INDEX) {
		c.kind = dir->ino == FS_INO_NODES ? FS_K_NODE : FS_K_INDEX;
		c.suffix = FS_JSON;
		rc = engine_foreach(
			e, dir->ino == FS_INO_NODES ? FS_C_DATA : FS_C_INDEX,
			fs_list_key, &c);
	} else if (dir->ino == FS_INO_VECTORS) {
		c.kind = FS_K_VECNS;
		rc = fs_list_ns(&c, "default", 0, 0);
		if (!rc)
			rc = fs_list_ns(&c, "image", 0, 0);
		if (!rc)
			rc = store_namespaces(fs->st, fs_list_ns, &c);
		if (!rc)
			rc = fs_list_made(&c, FS_K_VECNS, NULL);
	} else if (dir->kind == FS_K_VECNS) {
		char coll[300];

		snprintf(coll, sizeof(coll), "vector_store/%s", dir->keys[0]);
		c.kind = FS_K_VEC;
		c.k0 = dir->keys[0];
		rc = engine_foreach(e, coll, fs_list_key, &c);
	} else if (dir->ino == FS_INO_KV) {
		c.kind = FS_K_KVCOLL;
		rc = engine_collections(e, fs_list_coll, &c);
		if (!rc)
			rc = fs_list_made(&c, FS_K_KVCOLL, NULL);
	} else if (dir->kind == FS_K_KVCOLL) {
		c.kind = FS_K_KV;
		c.k0 = dir->keys[0];
		c.suffix = FS_JSON;
		rc = engine_foreach(e, dir->keys[0], fs_list_key, &c);
	} else if (dir->ino == FS_INO_GRAPH) {
		c.kind = FS_K_GSUBJ;
		rc = engine_foreach(e, FS_C_GRAPH, fs_list_key, &c);
		if (!rc)
			rc = fs_list_made(&c, FS_K_GSUBJ, NULL);
	} else if (dir->kind == FS_K_GSUBJ) {
		c.kind = FS_K_GREL;
		c.k0 = dir->keys[0];
		rc = fs_list_graph(&c, dir->keys[0], NULL);
		if (!rc)
			rc = fs_list_made(&c, FS_K_GREL, dir->keys[0]);
	} else if (dir->kind == FS_K_GREL) {
		rc = fs_list_graph(&c, dir->keys[0], dir->keys[1]);
	} else if (dir->ino == FS_INO_PERSIST) {
		rc = fs_persist_list(fs, l);
	} else if (dir->ino == FS_INO_QUERY) {
		struct fs_qfile *q;

		pthread_mutex_lock(&fs->mu);
		for (q = fs->qfiles; q && !rc; q = q->next)
			rc = fs_dirlist_add(l, q->name, q->ino, S_IFREG);
		pthread_mutex_unlock(&fs->mu);
	}
out:
	json_decref(c.seen);
	return rc;
}

/* --- open, write, apply --------------------------------------------------- */

int fs_view_open(struct fs *fs, struct fs_ino *ip, int flags,
		 struct fs_handle **hp, int *direct_io)
{
	int wr = (flags & O_ACCMODE) != O_RDONLY;
	struct fs_handle *h;
	int rc = 0;

	if (fs_kind_is_dir(ip->kind))
		return -EISDIR;
	if (ip->kind == FS_K_PERSIST) {
		*direct_io = 1; /* never cut at a size of another state */
		return fs_persist_open(fs, ip, flags, hp);
	}
	if (wr && (ip->kind == FS_K_QTEXT ||
		   (ip->kind == FS_K_META && ip->ino != FS_INO_REFRESH) ||
		   ip->kind == FS_K_RELMAPQ))
		return -EACCES;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ip = ip;
	h->wr = wr;
	*direct_io = ip->kind != FS_K_QTEXT;
	if (ip->kind == FS_K_QTEXT) {
		/* the result computed at lookup, immutable: one read */
		h->keep_cache = 1;
		pthread_mutex_lock(&fs->mu);
		if (ip->res && (h->buf = malloc(ip->res_len + 1))) {
			memcpy(h->buf, ip->res, ip->res_len);
			h->len = ip->res_len;
		}
		pthread_mutex_unlock(&fs->mu);
		if (!h->buf)
			rc = fs_view_content(fs, ip, &h->buf, &h->len);
	} else if (ip->kind == FS_K_QREQ && wr) {
		if (!(flags & O_TRUNC)) {
			struct fs_qfile *q;

			pthread_mutex_lock(&fs->mu);
			q = fs_qfile_find(fs, ip->keys[0]);
			if (q && q->req && (h->buf = malloc(q->req_len + 1))) {
				memcpy(h->buf, q->req, q->req_len);
				h->len = h->cap = q->req_len;
			}
			pthread_mutex_unlock(&fs->mu);
		}
	} else if (!(wr && (flags & O_TRUNC))) {
		rc = fs_view_content(fs, ip, &h->buf, &h->len);
		h->cap = h->len;
		if (rc == -ENOENT && wr)
			rc = 0;
	}
	/*
	 * Nothing is applied until something is written: a shell's
	 * `> file` opens with O_TRUNC and closes a first descriptor before
	 * any write, and an empty entry would be refused anyway.
	 */
	if (rc) {
		free(h->buf);
		free(h);
		return rc;
	}
	pthread_mutex_lock(&fs->mu);
	ip->opens++;
	pthread_mutex_unlock(&fs->mu);
	*hp = h;
	return 0;
}

void fs_view_release(struct fs *fs, struct fs_handle *h)
{
	if (h->ph) {
		fs_persist_release(fs, h);
		return;
	}
	pthread_mutex_lock(&fs->mu);
	h->ip->opens--;
	fs_ino_forget(fs, h->ip->ino, 0);
	pthread_mutex_unlock(&fs->mu);
	free(h->buf);
	free(h);
}

int fs_view_create(struct fs *fs, struct fs_ino *dir, const char *name,
		   mode_t mode, struct fuse_entry_param *e,
		   struct fs_handle **hp)
{
	struct fs_handle *h;
	enum fs_kind kind;
	char *id = NULL;
	uint64_t ino;
	int rc;

	if (dir->ino == FS_INO_PERSIST)
		return fs_persist_create(fs, name, e, hp);
	if (dir->ino == FS_INO_QUERY) {
		struct fs_qfile *q;

		if (!fs_is_json_name(name)) {
			fs_error(fs, name,
				 "refused: a query request file's name ends "
				 "in .json");
			return -EINVAL;
		}
		if ((rc = fs_name_check(name)))
			return rc;
		q = calloc(1, sizeof(*q));
		if (!q || !(q->name = strdup(name))) {
			free(q);
			return -ENOMEM;
		}
		q->ino = fs_hash_ino(FS_K_QREQ, name, NULL, NULL);
		pthread_mutex_lock(&fs->mu);
		if (fs_qfile_find(fs, name)) {
			free(q->name);
			free(q);
			pthread_mutex_unlock(&fs->mu);
			return -EEXIST;
		}
		q->next = fs->qfiles;
		fs->qfiles = q;
		pthread_mutex_unlock(&fs->mu);
		kind = FS_K_QREQ;
		ino = q->ino;
		id = strdup(name);
	} else if (dir->ino == FS_INO_NODES || dir->ino == FS_INO_INDEX ||
		   dir->kind == FS_K_KVCOLL) {
		rc = fs_json_id(name, &id);
		if (rc == -ENOENT) {
			fs_error(fs, name, "refused: names here are <id>.json");
			return -EINVAL;
		}
		if (rc)
			return rc;
		if (dir->kind == FS_K_KVCOLL &&
		    (rc = fs_kv_writable(fs, dir->keys[0]))) {
			free(id);
			return rc;
		}
		kind = dir->ino == FS_INO_NODES	  ? FS_K_NODE
		       : dir->ino == FS_INO_INDEX ? FS_K_INDEX
						  : FS_K_KV;
		ino = kind == FS_K_KV
			      ? fs_hash_ino(kind, dir->keys[0], id, NULL)
			      : fs_hash_ino(kind, id, NULL, NULL);
	} else if (dir->kind == FS_K_VECNS) {
		rc = fs_name_decode(name, &id);
		if (rc)
			return rc;
		kind = FS_K_VEC;
		ino = fs_hash_ino(kind, dir->keys[0], id, NULL);
	} else if (dir->kind == FS_K_GREL) {
		/* touch adds the triple at once */
		rc = fs_name_decode(name, &id);
		if (rc)
			return rc;
		rc = store_graph_upsert(fs->st, dir->keys[0], dir->keys[1], id);
		if (rc) {
			fs_error(fs, name, "triple refused: %s",
				 store_last_error());
			free(id);
			return rc == -EINVAL ? rc : -EIO;
		}
		atomic_fetch_add(&fs->version, 1);
		kind = FS_K_GOBJ;
		ino = fs_hash_ino(kind, dir->keys[0], dir->keys[1], id);
	} else {
		return dir->ino == FS_INO_META || dir->kind == FS_K_QDIR ||
				       dir->kind == FS_K_RELMAP
			       ? -EACCES
			       : -EPERM;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		free(id);
		return -ENOMEM;
	}
	pthread_mutex_lock(&fs->mu);
	h->ip = fs_ino_get(fs, ino, kind,
			   kind == FS_K_VEC || kind == FS_K_KV ||
					   kind == FS_K_GOBJ
				   ? dir->keys[0]
				   : id,
			   kind == FS_K_VEC || kind == FS_K_KV
				   ? id
				   : (kind == FS_K_GOBJ ? dir->keys[1] : NULL),
			   kind == FS_K_GOBJ ? id : NULL, 1);
	if (h->ip)
		h->ip->opens++;
	pthread_mutex_unlock(&fs->mu);
	free(id);
	if (!h->ip) {
		free(h);
		return -ENOMEM;
	}
	h->wr = 1;
	h->dirty = 0;
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = h->ip->gen;
	fs_view_stat(fs, h->ip, 0, &e->attr);
	e->attr_timeout = 0;
	e->entry_timeout = kind == FS_K_QREQ ? 0 : fs->opts.entry_timeout;
	*hp = h;
	return 0;
}

/* Sets "id_" of a node JSON to the id its file name gives. */
static int fs_node_with_id(const char *buf, size_t len, const char *id,
			   char **out)
{
	json_error_t err;
	json_t *j = json_loadb(buf, len, 0, &err), *data;

	if (!j || !json_is_object(j)) {
		json_decref(j);
		return -EINVAL;
	}
	data = json_object_get(j, "__data__");
	if (!json_is_object(data))
		data = j;
	json_object_set_new(data, "id_", json_string(id));
	*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return *out ? 0 : -ENOMEM;
}

int fs_view_apply(struct fs *fs, struct fs_handle *h)
{
	struct fs_ino *ip = h->ip;
	const char *buf = h->buf ? h->buf : "";
	char *fixed = NULL, *path = NULL;
	int rc = 0;

	if (h->ph)
		return fs_persist_apply(fs, h);
	if (!h->wr)
		return 0;
	/* Any write to .lodefs/refresh (even `touch`, an empty one) */
	if (ip->ino == FS_INO_REFRESH) {
		h->wr = 0; /* once per handle */
		return fs_refresh_now(fs) ? -EIO : 0;
	}
	if (!h->dirty)
		return 0;
	/* Tried once: a refusal is reported by this close, not again. */
	h->dirty = 0;
	path = fs_view_path(ip);
	switch (ip->kind) {
	case FS_K_NODE:
		rc = fs_node_with_id(buf, h->len, ip->keys[0], &fixed);
		if (!rc)
			rc = store_node_put(fs->st, fixed, strlen(fixed));
		else if (rc == -EINVAL)
			store_node_put(fs->st, buf, h->len); /* sets reason */
		break;
	case FS_K_INDEX:
		rc = store_index_put(fs->st, ip->keys[0], buf, h->len);
		break;
	case FS_K_KV:
		rc = store_kv_put(fs->st, ip->keys[0], ip->keys[1], buf,
				  h->len);
		break;
	case FS_K_VEC:
		if (h->len % sizeof(float) || !h->len) {
			fs_error(fs, path,
				 "vector refused: %zu bytes is not a whole "
				 "number of float32",
				 h->len);
			free(path);
			return -EINVAL;
		} else {
			float *v = malloc(h->len);

			if (!v) {
				free(path);
				return -ENOMEM;
			}
			memcpy(v, buf, h->len);
			rc = store_vec_put(fs->st, ip->keys[0], ip->keys[1], v,
					   (uint32_t)(h->len / sizeof(float)));
			free(v);
		}
		break;
	case FS_K_QREQ: {
		/* Run now, so that a bad request is refused by this close. */
		uint64_t v = atomic_load(&fs->version);
		struct fs_qfile *q;
		char *copy, *res = NULL;
		size_t rlen = 0;

		rc = fs_qfile_run(fs, path, buf, h->len, &res, &rlen);
		free(path);
		if (rc) {
			fs_qfile_drop_empty(fs, ip->keys[0]);
			return rc == -ENOMEM ? rc : -EINVAL;
		}
		copy = malloc(h->len + 1);
		if (!copy) {
			free(res);
			return -ENOMEM;
		}
		memcpy(copy, buf, h->len);
		copy[h->len] = 0;
		pthread_mutex_lock(&fs->mu);
		q = fs_qfile_find(fs, ip->keys[0]);
		if (q) {
			free(q->req);
			free(q->res);
			q->req = copy;
			q->req_len = h->len;
			q->res = res;
			q->res_len = rlen;
			q->res_rc = 0;
			q->res_valid = 1;
			q->res_version = v;
			copy = res = NULL;
		}
		pthread_mutex_unlock(&fs->mu);
		free(copy);
		free(res);
		return q ? 0 : -ENOENT;
	}
	default:
		free(path);
		return 0;
	}
	free(fixed);
	if (rc) {
		fs_error(fs, path, "refused: %s", store_last_error());
		free(path);
		return rc == -EINVAL || rc == -ENOMEM || rc == -ENAMETOOLONG
			       ? rc
			       : (rc == -EPERM ? rc : -EIO);
	}
	free(path);
	atomic_fetch_add(&fs->version, 1);
	return 0;
}

int fs_view_unlink(struct fs *fs, struct fs_ino *dir, const char *name)
{
	char *id = NULL;
	int rc;

	if (dir->ino == FS_INO_PERSIST)
		return fs_persist_refuse(fs, name, "rm");
	if (dir->ino == FS_INO_QUERY) {
		struct fs_qfile **pp, *q = NULL;

		pthread_mutex_lock(&fs->mu);
		for (pp = &fs->qfiles; *pp; pp = &(*pp)->next)
			if (strcmp((*pp)->name, name) == 0) {
				q = *pp;
				*pp = q->next;
				break;
			}
		pthread_mutex_unlock(&fs->mu);
		if (!q)
			return -ENOENT;
		free(q->name);
		free(q->req);
		free(q->res);
		free(q);
		return 0;
	}
	if (dir->ino == FS_INO_NODES || dir->ino == FS_INO_INDEX ||
	    dir->kind == FS_K_KVCOLL)
		rc = fs_json_id(name, &id);
	else
		rc = fs_name_decode(name, &id);
	if (rc)
		return rc;
	if (dir->ino == FS_INO_NODES)
		rc = store_node_del(fs->st, id);
	else if (dir->ino == FS_INO_INDEX)
		rc = store_index_del(fs->st, id);
	else if (dir->kind == FS_K_KVCOLL) {
		rc = fs_kv_writable(fs, dir->keys[0]);
		if (!rc)
			rc = store_kv_del(fs->st, dir->keys[0], id);
	} else if (dir->kind == FS_K_VECNS)
		rc = store_vec_del(fs->st, dir->keys[0], id);
	else if (dir->kind == FS_K_GREL)
		rc = store_graph_delete(fs->st, dir->keys[0], dir->keys[1], id);
	else
		rc = -EPERM;
	if (rc && rc != -ENOENT && rc != -EPERM)
		fs_error(fs, id, "rm failed: %s", store_last_error());
	if (!rc)
		atomic_fetch_add(&fs->version, 1);
	/* a relation dir stays after its last object goes, as on disk */
	if (!rc && dir->kind == FS_K_GREL)
		fs_made_set(fs, FS_K_GREL, dir->keys[0], dir->keys[1], 1);
	free(id);
	return rc == -ENOENT || rc == -EPERM || rc == -EINVAL || !rc ? rc
								     : -EIO;
}

int fs_view_mkdir(struct fs *fs, struct fs_ino *dir, const char *name,
		  struct fuse_entry_param *e)
{
	enum fs_kind kind;
	char *id = NULL;
	int rc;

	if (dir->ino == FS_INO_PERSIST)
		return fs_persist_refuse(fs, name, "mkdir");
	rc = fs_name_decode(name, &id);
	if (rc)
		return rc;
	if (dir->ino == FS_INO_VECTORS) {
		char coll[300];

		kind = FS_K_VECNS;
		rc = snprintf(coll, sizeof(coll), "vector_store/%s", id) >=
				     (int)sizeof(coll)
			     ? -ENAMETOOLONG
			     : 0;
		if (!rc && fs_ns_exists(fs, id))
			rc = -EEXIST;
	} else if (dir->ino == FS_INO_KV) {
		kind = FS_K_KVCOLL;
		if (engine_count(store_engine(fs->st), id))
			rc = -EEXIST;
	} else if (dir->ino == FS_INO_GRAPH) {
		kind = FS_K_GSUBJ;
		if (fs_graph_has(fs, id, NULL, NULL))
			rc = -EEXIST;
	} else if (dir->kind == FS_K_GSUBJ) {
		kind = FS_K_GREL;
		if (fs_graph_has(fs, dir->keys[0], id, NULL))
			rc = -EEXIST;
	} else {
		rc = -EPERM;
	}
	if (!rc && (kind == FS_K_GREL ? fs_made_has(fs, kind, dir->keys[0], id)
				      : fs_made_has(fs, kind, id, NULL)))
		rc = -EEXIST;
	if (!rc)
		rc = kind == FS_K_GREL
			     ? fs_made_set(fs, kind, dir->keys[0], id, 1)
			     : fs_made_set(fs, kind, id, NULL, 1);
	if (!rc)
		rc = kind == FS_K_GREL
			     ? fs_view_ref_hash(fs, kind, dir->keys[0], id,
						NULL, e)
			     : fs_view_ref_hash(fs, kind, id, NULL, NULL, e);
	free(id);
	return rc;
}

int fs_view_rmdir(struct fs *fs, struct fs_ino *dir, const char *name)
{
	char *id = NULL, coll[300];
	int rc = fs_name_decode(name, &id), full = 0;
	enum fs_kind kind;

	if (rc)
		return rc;
	if (dir->ino == FS_INO_VECTORS) {
		kind = FS_K_VECNS;
		snprintf(coll, sizeof(coll), "vector_store/%s", id);
		full = engine_count(store_engine(fs->st), coll) > 0;
	} else if (dir->ino == FS_INO_KV) {
		kind = FS_K_KVCOLL;
		full = engine_count(store_engine(fs->st), id) > 0;
	} else if (dir->ino == FS_INO_GRAPH) {
		kind = FS_K_GSUBJ;
		full = fs_graph_has(fs, id, NULL, NULL);
		if (!full) { /* and no relation made in it */
			char *k = fs_made_key(FS_K_GREL, id, "");
			const char *mk;
			json_t *v;

			pthread_mutex_lock(&fs->mu);
			json_object_foreach(
				fs->made_dirs, mk,
				v) if (k && strncmp(mk, k, strlen(k) - 0) == 0)
				full = 1;
			pthread_mutex_unlock(&fs->mu);
			free(k);
		}
	} else if (dir->kind == FS_K_GSUBJ) {
		kind = FS_K_GREL;
		full = fs_graph_has(fs, dir->keys[0], id, NULL);
	} else {
		free(id);
		return -EPERM;
	}
	if (full)
		rc = -ENOTEMPTY;
	else if (kind == FS_K_GREL ? !fs_made_has(fs, kind, dir->keys[0], id)
				   : !fs_made_has(fs, kind, id, NULL))
		rc = -ENOENT;
	else
		rc = kind == FS_K_GREL
			     ? fs_made_set(fs, kind, dir->keys[0], id, 0)
			     : fs_made_set(fs, kind, id, NULL, 0);
	free(id);
	return rc;
}

/* --- resolving an inode number the kernel forgot (file handles) ---------- */

struct fs_resolve {
	struct fs *fs;
	uint64_t ino;
	enum fs_kind kind;
	const char *k0;
	int found;
	char *keys[3];
};

static int fs_resolve_set(struct fs_resolve *r, enum fs_kind kind,
			  const char *k0, const char *k1, const char *k2)
{
	if (fs_hash_ino(kind, k0, k1, k2) != r->ino)
		return 0;
	r->kind = kind;
	r->keys[0] = k0 ? strdup(k0) : NULL;
	r->keys[1] = k1 ? strdup(k1) : NULL;
	r->keys[2] = k2 ? strdup(k2) : NULL;
	r->found = 1;
	return 1; /* stops the walk */
}

static int fs_resolve_key(void *arg, const char *key, enum engine_type type,
			  const void *data, size_t len)
{
	struct fs_resolve *r = arg;

	return r->k0 ? fs_resolve_set(r, r->kind, r->k0, key, NULL)
		     : fs_resolve_set(r, r->kind, key, NULL, NULL);
}

static int fs_resolve_coll(void *arg, const char *coll)
{
	struct fs_resolve *r = arg;
	struct engine *e = store_engine(r->fs->st);

	if (fs_resolve_set(r, FS_K_KVCOLL, coll, NULL, NULL))
		return 1;
	if (strncmp(coll, "vector_store/", 13) == 0) {
		const char *ns = coll + 13;

		if (fs_resolve_set(r, FS_K_VECNS, ns, NULL, NULL))
			return 1;
		r->kind = FS_K_VEC;
		r->k0 = ns;
		if (engine_foreach(e, coll, fs_resolve_key, r) == 1)
			return 1;
	}
	r->kind = FS_K_KV;
	r->k0 = coll;
	return engine_foreach(e, coll, fs_resolve_key, r) == 1;
}

static int fs_resolve_graph(void *arg, const char *key, enum engine_type type,
			    const void *data, size_t len)
{
	struct fs_resolve *r = arg;
	json_error_t err;
	json_t *j = json_loadb(data, len, 0, &err), *rel;
	size_t i;
	int hit = fs_resolve_set(r, FS_K_GSUBJ, key, NULL, NULL);

	json_array_foreach(json_object_get(j, "rels"), i, rel)
	{
		const char *rr = json_string_value(json_array_get(rel, 0));
		const char *oo = json_string_value(json_array_get(rel, 1));

		if (hit || !rr || !oo)
			break;
		hit = fs_resolve_set(r, FS_K_GREL, key, rr, NULL) ||
		      fs_resolve_set(r, FS_K_GOBJ, key, rr, oo);
	}
	json_decref(j);
	return hit;
}

int fs_view_resolve(struct fs *fs, uint64_t ino, struct fuse_entry_param *e)
{
	struct engine *eng = store_engine(fs->st);
	struct fs_resolve r = { .fs = fs, .ino = ino };
	int rc, i;

	/* Every view's keys, hashed, until one matches: O(entries), and
	 * only for handles the kernel no longer holds. */
	rc = fs_persist_resolve(fs, ino, e);
	if (rc != -ESTALE)
		return rc;
	r.kind = FS_K_NODE;
	engine_foreach(eng, FS_C_DATA, fs_resolve_key, &r);
	if (!r.found) {
		r.kind = FS_K_INDEX;
		engine_foreach(eng, FS_C_INDEX, fs_resolve_key, &r);
	}
	if (!r.found)
		engine_collections(eng, fs_resolve_coll, &r);
	if (!r.found)
		engine_foreach(eng, FS_C_GRAPH, fs_resolve_graph, &r);
	if (!r.found)
		return -ESTALE;
	rc = fs_view_ref(fs, ino, r.kind, r.keys[0], r.keys[1], r.keys[2], e);
	for (i = 0; i < 3; i++)
		free(r.keys[i]);
	return rc == -ENOENT ? -ESTALE : rc;
}
