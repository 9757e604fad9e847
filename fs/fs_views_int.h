/* fs_views_int.h - what fs_views.c and fs_views_io.c share. */
#ifndef LODEFS_FS_VIEWS_INT_H
#define LODEFS_FS_VIEWS_INT_H

#include "fs/fs_int.h"
#include "fs/fs_query.h"

#define FS_C_DATA  "docstore/data"
#define FS_C_INDEX "index_store/data"
#define FS_C_GRAPH "graph_store/data"
#define FS_RELMAP  ".rel_map"
#define FS_JSON	   ".json"

/* The fixed entries of the tree's top (root, the views, .lodefs files). */
struct fs_top {
	const char *name;
	uint64_t ino;
	enum fs_kind kind;
	uint64_t parent;
};
extern const struct fs_top fs_tops[];
extern const size_t fs_n_tops;

/* Made directories (mkdir in vectors/, kv/, graph/): in memory only. */
char *fs_made_key(enum fs_kind kind, const char *a, const char *b);
int fs_made_has(struct fs *fs, enum fs_kind kind, const char *a, const char *b);
int fs_made_set(struct fs *fs, enum fs_kind kind, const char *a, const char *b,
		int on);

/* 1 if the vector namespace exists (or is default/image, or was made). */
int fs_ns_exists(struct fs *fs, const char *ns);
/* [[rel, obj], ...] of subj as a new JSON reference. */
int fs_graph_rels(struct fs *fs, const char *subj, json_t **rels);
/* 1 if subj has a relation rel (and object obj, when given). */
int fs_graph_has(struct fs *fs, const char *subj, const char *rel,
		 const char *obj);
/* 0, or -EPERM (with an error line) for collections written elsewhere. */
int fs_kv_writable(struct fs *fs, const char *coll);
/* "a/b", or b alone when a is empty; malloc'd. */
char *fs_optjoin(const char *a, const char *b);
/* The JSON request file `name`; caller holds fs->mu. */
struct fs_qfile *fs_qfile_find(struct fs *fs, const char *name);
int fs_is_json_name(const char *name);
int fs_kind_is_dir(enum fs_kind k);
void fs_view_stat(struct fs *fs, struct fs_ino *ip, size_t size,
		  struct stat *st);
/* Takes a kernel reference on (kind, keys) as inode `ino`, fills e. */
int fs_view_ref(struct fs *fs, uint64_t ino, enum fs_kind kind, const char *k0,
		const char *k1, const char *k2, struct fuse_entry_param *e);
/* The same with the hash inode number of (kind, keys). */
int fs_view_ref_hash(struct fs *fs, enum fs_kind kind, const char *k0,
		     const char *k1, const char *k2,
		     struct fuse_entry_param *e);
/* The id of a "<encoded id>.json" name, malloc'd; -ENOENT otherwise. */
int fs_json_id(const char *name, char **id);

/* Where ip is, as a path below the mount ("nodes/x.json"); malloc'd. */
char *fs_view_path(const struct fs_ino *ip);
/* -EINVAL with a reason if r names a vector namespace that does not exist. */
int fs_query_check_ns(struct fs *fs, const struct fs_qreq *r, char *err,
		      size_t errlen);
/* Forgets the request file `name` if it never held a valid request. */
void fs_qfile_drop_empty(struct fs *fs, const char *name);
/* Runs request text `req` of file `name`: result malloc'd; logs failures. */
int fs_qfile_run(struct fs *fs, const char *name, const char *req, size_t rl,
		 char **out, size_t *len);
/* Loads the made directories recorded in the store (lodefs/made). */
int fs_made_load(struct fs *fs);

#endif
