/* fs_int.h - what the fs_*.c files share: the mount's state and its inodes. */
#ifndef LODEFS_FS_INT_H
#define LODEFS_FS_INT_H

#define FUSE_USE_VERSION 34

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "backends/backend_source.h"
#include "core/store.h"

/* Fixed inode numbers of the tree's top. */
enum {
	FS_INO_ROOT = 1,
	FS_INO_DOCS,
	FS_INO_NODES,
	FS_INO_VECTORS,
	FS_INO_INDEX,
	FS_INO_KV,
	FS_INO_GRAPH,
	FS_INO_QUERY,
	FS_INO_META,
	FS_INO_STATS,
	FS_INO_CONFIG,
	FS_INO_ERRORS,
	FS_INO_RELMAP,
	FS_INO_REFRESH,
	FS_INO_PERSIST,
	FS_INO_FIXED_MAX = 255,
};

/* What an inode is.  keys[] holds its decoded ids (see fs_ino). */
enum fs_kind {
	FS_K_ROOT,
	FS_K_TOP,     /* a fixed directory: docs, nodes, ..., .lodefs */
	FS_K_DOCDIR,  /* keys: path below docs/ ("" for docs/ itself) */
	FS_K_DOC,     /* keys: path below docs/ */
	FS_K_NODE,    /* keys: node id */
	FS_K_VECNS,   /* keys: namespace */
	FS_K_VEC,     /* keys: namespace, node id */
	FS_K_INDEX,   /* keys: index id */
	FS_K_KVCOLL,  /* keys: collection */
	FS_K_KV,      /* keys: collection, key */
	FS_K_GSUBJ,   /* keys: subject */
	FS_K_GREL,    /* keys: subject, relation */
	FS_K_GOBJ,    /* keys: subject, relation, object */
	FS_K_RELMAP,  /* keys: option path ("depth=2/limit=5" or "") */
	FS_K_RELMAPQ, /* keys: option path, subject */
	FS_K_QDIR,    /* keys: option path ("k=5/mode=hybrid") */
	FS_K_QTEXT,   /* keys: option path, text */
	FS_K_QREQ,    /* keys: file name (a JSON request) */
	FS_K_META,    /* a file of .lodefs/ (stats, config, errors) */
	FS_K_PERSIST, /* keys: file name in persist/ */
};

enum fs_sync {
	FS_SYNC_CLOSE = 0, /* durable when close() returns */
	FS_SYNC_FSYNC,	   /* durable at fsync() or within a second */
};

/* sync=fsync: a background commit as soon as this much is waiting */
#define FS_PEND_BYTES_MAX (32u << 20)
#define FS_PEND_DOCS_MAX  4096

struct fs_opts {
	const char *source; /* as given, for .lodefs/config */
	const char
		*store_path; /* local store directory, or the remote's where */
	const char *backend_kind; /* "local", "s3", "r2" */
	json_t *remote; /* remote stores: bucket, endpoint... for config */
	enum fs_sync sync;
	unsigned chunk_size, chunk_overlap;
	double attr_timeout, entry_timeout;
	int allow_other, default_permissions, read_only, foreground, debug;
	unsigned max_threads;
	unsigned checkpoint_segments;
	/* Vector namespaces this large get an HNSW graph (0: never). */
	size_t ann_threshold;
	/* Seconds between catching up with other writers; 0: never. */
	double refresh;
	/*
	 * The embeddings server (-o embed=...; NULL: built-in), its model,
	 * the vectors' dimension (0: the default) and request timeout.
	 */
	const char *embed_url, *embed_model;
	unsigned embed_dim, embed_timeout_ms;
	int bm25_bigrams; /* word pairs in the keyword index (default 1) */
};

/*
 * The open content of a document (shared by every open handle of it).
 * Loaded, buf is either the stored bytes used in place (ref.data set:
 * read-only, cap 0, pinned until the file is freed, so readers keep the
 * version they opened) or, once something changes it, a private copy
 * (ref zeroed; fs_file_reserve makes the copy).
 */
struct fs_file {
	pthread_mutex_t mu;
	char *buf;
	size_t len, cap;
	struct engine_ref ref; /* while buf is the stored bytes */
	int loaded;	       /* buf holds the document's content */
	int dirty;	       /* changed since the last commit or queueing */
	int pending;	       /* queued for the next commit round (pend_mu) */
	int inflight; /* taken by a commit round that has not ended (pend_mu) */
	int error;    /* last commit failed: the next flush/fsync reports it */
	json_t *xattrs;	  /* user metadata, NULL until loaded */
	unsigned opens;	  /* open handles */
	uint64_t version; /* bumped by every change to buf */
};

/*
 * One inode the kernel knows.  ino is the FUSE node id and st_ino: fixed
 * for the top, the store's recorded number for documents and explicit
 * directories (stable across renames and remounts, never reused), and a
 * 63-bit hash of kind and keys for everything else (stable, the same for
 * the same entry).  nlookup counts the kernel's references.
 */
struct fs_ino {
	uint64_t ino;
	uint64_t gen;
	enum fs_kind kind;
	char *keys[3];
	uint64_t nlookup;
	unsigned opens;
	int unlinked;
	struct fs_file *file; /* documents being read or written */
	/* query text results: computed at lookup, served at open */
	char *res;
	size_t res_len;
	struct timespec res_time;
	struct fs_ino *next; /* hash chain */
};

/* A document or directory of docs/ as the tree in memory knows it. */
struct fs_dent {
	char *path; /* below docs/; "" is docs/ itself */
	uint64_t ino;
	unsigned mode; /* with S_IFDIR or S_IFREG */
	uint64_t size;
	struct timespec mtime, ctime;
	int recorded; /* directory: has a lodefs/dirs record */
	struct fs_dent *parent;
	struct fs_dent **kids;
	size_t n_kids, cap_kids;
	struct fs_dent *next_path, *next_ino; /* hash chains */
};

/* Paths of removed documents whose deletion waits for a commit. */
struct fs_dels {
	char **v; /* malloc'd, in the order removed */
	size_t n, cap;
	uint32_t *index; /* v index + 1 by path hash, 0 empty */
	size_t icap;
};

/* Recent refusals and failures, for .lodefs/errors. */
#define FS_ERRORS_MAX 1000
struct fs_errlog {
	pthread_mutex_t mu;
	char *lines[FS_ERRORS_MAX];
	size_t head, n;
	uint64_t total;
};

/* A JSON request file of query/. */
struct fs_qfile {
	char *name;
	char *req; /* the request as written */
	size_t req_len;
	/* its result (or error) when the store was at res_version */
	char *res;
	size_t res_len;
	int res_rc, res_valid;
	uint64_t res_version;
	uint64_t ino;
	struct fs_qfile *next;
};

/* The last result of a query path per slot, valid while version holds. */
#define FS_QCACHE_SLOTS 256
struct fs_qcache {
	char *key; /* "opt/text" */
	uint64_t version;
	char *res;
	size_t len;
};

/* Requests counted per FUSE opcode, for .lodefs/stats. */
enum fs_op {
	FS_OP_LOOKUP,
	FS_OP_GETATTR,
	FS_OP_SETATTR,
	FS_OP_OPEN,
	FS_OP_READ,
	FS_OP_WRITE,
	FS_OP_FLUSH,
	FS_OP_RELEASE,
	FS_OP_FSYNC,
	FS_OP_CREATE,
	FS_OP_UNLINK,
	FS_OP_MKDIR,
	FS_OP_RMDIR,
	FS_OP_RENAME,
	FS_OP_READDIR,
	FS_OP_XATTR,
	FS_OP_FORGET,
	FS_OP_OTHER,
	FS_OP_MAX,
};

struct fs {
	struct fs_opts opts;
	struct backend *be;
	struct backend_source src;
	struct store *st;
	struct fuse_session *se;
	uid_t uid;
	gid_t gid;
	struct timespec mounted;

	/* Inode table and docs tree, short critical sections only. */
	pthread_mutex_t mu;
	struct fs_ino **itab;
	size_t itab_cap, itab_n;
	struct fs_dent **ptab, **ntab; /* docs by path, by ino */
	size_t dtab_cap, dtab_n;
	struct fs_dent *docs_root;
	struct fs_qfile *qfiles;
	struct fs_qcache qcache[FS_QCACHE_SLOTS];
	/* In-memory directories not yet holding anything (mkdir). */
	json_t *made_dirs; /* {"vectors": [ns...], "kv": [...], "graph": ...} */

	/* Serialises changes to docs/'s namespace with their commits. */
	pthread_mutex_t docs_mu;
	/*
	 * Serialises changes to the namespace with each other: taken after
	 * docs_mu by unlink, mkdir, rmdir and rename, and alone by create,
	 * which so goes on while a commit round runs (rounds hold docs_mu).
	 */
	pthread_mutex_t ns_mu;

	/* sync=fsync: documents waiting for the background commit. */
	pthread_mutex_t pend_mu;
	pthread_cond_t pend_cv, pend_done;
	struct fs_ino **pend;
	size_t n_pend, cap_pend;
	size_t pend_bytes;
	uint64_t pend_gen, pend_committed; /* commit rounds asked, done */
	int pend_err; /* errno of the last failed round, 0 if it worked */
	struct fs_dels dels; /* sync=fsync: removals for the next round */
	struct fs_dels *dels_taken; /* taken by a transaction not ended */
	pthread_t flusher;
	int flusher_running, stopping;

	/* Bumped after every change this mount commits: caches key on it. */
	atomic_uint_fast64_t version;
	atomic_uint_fast64_t ops[FS_OP_MAX];
	atomic_uint_fast64_t queries, query_cache_hits, commits, commit_errors;
	atomic_uint_fast64_t last_commit_ns;
	struct fs_errlog errs;

	/* Other writers (fs_refresh.c): one refresh at a time. */
	pthread_mutex_t refresh_mu;
	int refresh_failing; /* the last refresh failed (refresh_mu) */
	pthread_mutex_t refresher_mu;
	pthread_cond_t refresher_cv;
	pthread_t refresher;
	int refresher_running, refresher_stop;
	atomic_uint_fast64_t refreshes, refresh_changes, refresh_errors;
	atomic_uint_fast64_t last_refresh_ns;

	struct fs_persist *persist; /* persist/ (fs_persist.c) */
};

/* The fs of a request (set as the session's userdata). */
static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* An open file (fi->fh). */
struct fs_handle {
	struct fs_ino *ip;
	int wr;		/* opened for writing */
	int dirty;	/* virtual file: written since open */
	int keep_cache; /* content never changes: the page cache may keep it */
	char *buf;	/* virtual file: snapshot to read, or bytes written */
	size_t len, cap;
	struct fs_phandle *ph; /* a file of persist/ (fs_persist.c) */
};

/* A directory listing snapshot (fi->fh of a directory). */
struct fs_dirent {
	char *name;
	uint64_t ino;
	mode_t type; /* S_IFDIR or S_IFREG */
};
struct fs_dirlist {
	struct fs_dirent *e;
	size_t n, cap;
};
/* Appends an entry (copies name); 0 or -ENOMEM. */
int fs_dirlist_add(struct fs_dirlist *l, const char *name, uint64_t ino,
		   mode_t type);
void fs_dirlist_free(struct fs_dirlist *l);

/* --- fs_main.c / lodefs.c --------------------------------------------- */

extern const struct fuse_lowlevel_ops fs_ops;

/* --- fs_inode.c ------------------------------------------------------- */

/* Hash inode number of a non-document entry: bit 63 set. */
uint64_t fs_hash_ino(enum fs_kind kind, const char *k0, const char *k1,
		     const char *k2);
/* The inode `ino` or NULL; caller holds fs->mu. */
struct fs_ino *fs_ino_find(struct fs *fs, uint64_t ino);
/*
 * Finds or adds the inode for (kind, keys) with number `ino`, taking one
 * kernel reference when `lookup` is set.  Caller holds fs->mu.  NULL on
 * out of memory.
 */
struct fs_ino *fs_ino_get(struct fs *fs, uint64_t ino, enum fs_kind kind,
			  const char *k0, const char *k1, const char *k2,
			  int lookup);
/* Drops n kernel references; frees the inode when none is left. */
void fs_ino_forget(struct fs *fs, uint64_t ino, uint64_t n);
/* Frees every inode (at unmount). */
void fs_inodes_free(struct fs *fs);
/* Replaces key i of an inode (rename); caller holds fs->mu. */
int fs_ino_set_key(struct fs_ino *ip, int i, const char *v);

/* --- fs_docs.c: docs/ ------------------------------------------------- */

int fs_docs_load(struct fs *fs);
void fs_docs_free(struct fs *fs);
/* The dentry of a path or NULL; caller holds fs->mu. */
struct fs_dent *fs_dent_find(struct fs *fs, const char *path);
struct fs_dent *fs_dent_by_ino(struct fs *fs, uint64_t ino);
void fs_dent_stat(struct fs *fs, const struct fs_dent *d, struct stat *st);
/*
 * Changing the tree (caller holds fs->mu; docs_mu for anything the store
 * must agree with).  fs_dent_add makes missing parents as implicit
 * directories and returns NULL on out of memory (or a parent that is a
 * file); fs_dent_dir finds or makes a directory; fs_dent_move moves d and
 * everything below it to newpath under ndir; fs_dent_remove frees d (it
 * must have no children); fs_dent_renumber gives d another number.
 */
struct fs_dent *fs_dent_add(struct fs *fs, const char *path, uint64_t ino,
			    unsigned mode, struct timespec mtime,
			    struct timespec ctime);
struct fs_dent *fs_dent_dir(struct fs *fs, const char *path);
int fs_dent_move(struct fs *fs, struct fs_dent *d, struct fs_dent *ndir,
		 const char *newpath);
void fs_dent_remove(struct fs *fs, struct fs_dent *d);
void fs_dent_renumber(struct fs *fs, struct fs_dent *d, uint64_t ino);

/* Operations on docs/; each returns 0 or a negative errno. */
int fs_docs_lookup(struct fs *fs, struct fs_ino *dir, const char *name,
		   struct fuse_entry_param *e);
/* Entry of the dentry with inode `ino` (for "." and ".." and handles). */
int fs_docs_entry(struct fs *fs, uint64_t ino, struct fuse_entry_param *e);
/*
 * Entry of docs/ inode `ino` for readdirplus, with a kernel reference;
 * -ENOENT if it is not a document or directory of docs/ (any more).
 */
int fs_docs_entry_plus(struct fs *fs, uint64_t ino, struct fuse_entry_param *e);
int fs_docs_getattr(struct fs *fs, struct fs_ino *ip, struct stat *st);
int fs_docs_list(struct fs *fs, struct fs_ino *dir, struct fs_dirlist *l);
int fs_docs_create(struct fs *fs, struct fs_ino *dir, const char *name,
		   mode_t mode, struct fuse_entry_param *e,
		   struct fs_handle **h);
int fs_docs_open(struct fs *fs, struct fs_ino *ip, int flags,
		 struct fs_handle **h);
void fs_docs_read(struct fs *fs, fuse_req_t req, struct fs_handle *h,
		  size_t size, off_t off);
ssize_t fs_docs_write(struct fs *fs, struct fs_handle *h, const char *buf,
		      size_t size, off_t off);
int fs_docs_flush(struct fs *fs, struct fs_handle *h);
int fs_docs_fsync(struct fs *fs, struct fs_handle *h);
void fs_docs_release(struct fs *fs, struct fs_handle *h);
int fs_docs_setattr(struct fs *fs, struct fs_ino *ip, const struct stat *a,
		    int to_set, struct stat *out);
int fs_docs_mkdir(struct fs *fs, struct fs_ino *dir, const char *name,
		  mode_t mode, struct fuse_entry_param *e);
int fs_docs_unlink(struct fs *fs, struct fs_ino *dir, const char *name);
int fs_docs_rmdir(struct fs *fs, struct fs_ino *dir, const char *name);
int fs_docs_rename(struct fs *fs, struct fs_ino *dir, const char *name,
		   struct fs_ino *ndir, const char *nname, unsigned flags);
int fs_docs_setxattr(struct fs *fs, struct fs_ino *ip, const char *name,
		     const char *value, size_t size, int flags);
/* Value into *out (malloc'd); -ENODATA if absent. */
int fs_docs_getxattr(struct fs *fs, struct fs_ino *ip, const char *name,
		     char **out, size_t *len);
/* NUL-separated names into *out (malloc'd). */
int fs_docs_listxattr(struct fs *fs, struct fs_ino *ip, char **out,
		      size_t *len);
int fs_docs_removexattr(struct fs *fs, struct fs_ino *ip, const char *name);

/* Shared by fs_docs.c (the tree) and fs_docs_io.c (contents). */
/* Frees ip's file if nothing needs it any more; caller holds fs->mu. */
void fs_file_maybe_free(struct fs *fs, struct fs_ino *ip);
/* Frees a file and its content (releasing the stored bytes it uses). */
void fs_file_free(struct fs *fs, struct fs_file *f);
/*
 * Pins ip's file, if it has one, against a concurrent RELEASE (FUSE sends
 * RELEASE asynchronously, so it may run beside the next request on the
 * same inode); fs_file_unpin drops the pin and frees what is unneeded.
 */
struct fs_file *fs_file_pin(struct fs *fs, struct fs_ino *ip);
void fs_file_unpin(struct fs *fs, struct fs_ino *ip, struct fs_file *f);
/* Gives ip an open file (made if needed); caller holds fs->mu. */
struct fs_file *fs_file_open(struct fs_ino *ip);
struct fs_handle *fs_handle_new(struct fs_ino *ip, int wr);
/* A directory's entries changed: its mtime and ctime move (fs->mu held). */
void fs_dent_dir_changed(struct fs_dent *dir);
/* Counts a commit (rc 0) or a failed one, and moves fs->version. */
void fs_docs_committed(struct fs *fs, int rc);
/* Commits one document now; caller holds docs_mu. */
int fs_docs_commit_one(struct fs *fs, struct fs_ino *ip);
/* Commits a change of mode/times (and xattrs) of a stored document. */
int fs_docs_commit_attr(struct fs *fs, struct fs_dent *d, const char *xattrs);
/* 1 if ip's document has changes that the next flush commits anyway. */
int fs_docs_open_dirty(struct fs *fs, struct fs_ino *ip);
/* Adds the lodefs/dirs record of d to t. */
int fs_docs_dir_record(struct store_txn *t, const struct fs_dent *d);
/*
 * Loads the content of an open document that is about to be removed or
 * replaced, so that its open readers still read it (readers load lazily).
 */
void fs_docs_keep_content(struct fs *fs, uint64_t ino);
/* Drops a document from the commit queue (it is being removed). */
void fs_docs_unqueue(struct fs *fs, struct fs_ino *ip);

int fs_docs_flusher_start(struct fs *fs);
/* Stops the flusher and commits what is pending; 0 or -errno. */
int fs_docs_flusher_stop(struct fs *fs);
/* fsync of a docs/ directory: every removal so far made durable. */
int fs_docs_fsyncdir(struct fs *fs);

/* --- fs_docs_dels.c: removals waiting for a commit (sync=fsync) ------- */

/* Queues the deletion of stored document `path`: 0 or -ENOMEM. */
int fs_dels_queue(struct fs *fs, const char *path);
/* 1 if the deletion of `path` is queued or being committed. */
int fs_dels_has(struct fs *fs, const char *path);
/* How many deletions are queued. */
size_t fs_dels_count(struct fs *fs);
/*
 * Moves the queue into *out, leaving it empty, until fs_dels_done; caller
 * holds docs_mu and pend_mu.
 */
void fs_dels_take_locked(struct fs *fs, struct fs_dels *out);
/*
 * Adds the deletions of d to t; one the store refuses is left out (with
 * a line in .lodefs/errors).  0, or -ENOMEM (t is then unusable).
 */
int fs_dels_txn_add(struct fs *fs, struct store_txn *t, struct fs_dels *d);
/*
 * Ends deletions taken from the queue: rc 0 (committed) frees them, else
 * they are queued again.  *d is empty after.
 */
void fs_dels_done(struct fs *fs, struct fs_dels *d, int rc);
/* Frees a queue (at unmount). */
void fs_dels_free(struct fs_dels *d);
/*
 * Begins a transaction of docs/ that carries every queued deletion (a
 * change committed now must not reach the store before the removals
 * made before it).  Caller holds docs_mu.  0 or -errno; *t and *d then
 * belong to fs_docs_txn_end.
 */
int fs_docs_txn_begin(struct fs *fs, struct store_txn **t, struct fs_dels *d);
/*
 * Commits t (rc 0) or aborts it (rc < 0, returned as it is): returns the
 * result; the carried deletions are done, or queued again if t failed.
 */
int fs_docs_txn_end(struct fs *fs, struct store_txn *t, struct fs_dels *d,
		    int rc);
/* Commits the queued deletions now (a path is about to be reused). */
int fs_dels_flush(struct fs *fs);

/* --- fs_views.c: everything but docs/ --------------------------------- */

/* Prepares the fixed inodes of the tree's top. */
int fs_views_init(struct fs *fs);
int fs_view_lookup(struct fs *fs, struct fs_ino *dir, const char *name,
		   struct fuse_entry_param *e);
/* Entry of a known inode (for "." / ".." lookups): -ESTALE if unknown. */
int fs_view_entry(struct fs *fs, uint64_t ino, struct fuse_entry_param *e);
/* Entry of a view inode the kernel forgot: found by its number. */
int fs_view_resolve(struct fs *fs, uint64_t ino, struct fuse_entry_param *e);
/* Parent inode number of ip. */
uint64_t fs_view_parent(struct fs *fs, struct fs_ino *ip);
int fs_view_getattr(struct fs *fs, struct fs_ino *ip, struct stat *st);
int fs_view_list(struct fs *fs, struct fs_ino *dir, struct fs_dirlist *l);
/* The bytes a read of ip returns, malloc'd. */
int fs_view_content(struct fs *fs, struct fs_ino *ip, char **out, size_t *len);
/* Opens a virtual file: *direct_io set unless the page cache may keep it. */
int fs_view_open(struct fs *fs, struct fs_ino *ip, int flags,
		 struct fs_handle **h, int *direct_io);
int fs_view_create(struct fs *fs, struct fs_ino *dir, const char *name,
		   mode_t mode, struct fuse_entry_param *e,
		   struct fs_handle **h);
/* Applies what was written to a virtual file (at flush). */
int fs_view_apply(struct fs *fs, struct fs_handle *h);
int fs_view_unlink(struct fs *fs, struct fs_ino *dir, const char *name);
int fs_view_mkdir(struct fs *fs, struct fs_ino *dir, const char *name,
		  struct fuse_entry_param *e);
int fs_view_rmdir(struct fs *fs, struct fs_ino *dir, const char *name);
void fs_view_release(struct fs *fs, struct fs_handle *h);

/* --- fs_refresh.c: other mounts of the store ----------------------------- */

/*
 * Catches up with other writers now and brings docs/ and the kernel's
 * caches in line; 0 or a negative errno (one .lodefs/errors line per
 * outage).
 */
int fs_refresh_now(struct fs *fs);
/* The thread that does it every opts.refresh seconds (none if 0). */
int fs_refresher_start(struct fs *fs);
void fs_refresher_stop(struct fs *fs);

/* --- fs_persist.c: persist/ -------------------------------------------- */

/* Sets up fs->persist (fs_views_init); fs_persist_free at unmount. */
int fs_persist_init(struct fs *fs);
void fs_persist_free(struct fs *fs);
/* Entry of persist/<name> if the directory shows it; never cached. */
int fs_persist_lookup(struct fs *fs, const char *name,
		      struct fuse_entry_param *e);
/* Entry of a persist file by inode number; -ESTALE if none has it. */
int fs_persist_resolve(struct fs *fs, uint64_t ino, struct fuse_entry_param *e);
int fs_persist_list(struct fs *fs, struct fs_dirlist *l);
/*
 * Attributes: with a handle (a getattr that carries one), of what it
 * reads or wrote; without, of the file generated from the store as it is
 * now (its exact size).
 */
int fs_persist_getattr(struct fs *fs, struct fs_ino *ip, struct fs_handle *h,
		       struct stat *st);
int fs_persist_open(struct fs *fs, struct fs_ino *ip, int flags,
		    struct fs_handle **h);
/* -EINVAL (with an error line) for a name persist_name refuses. */
int fs_persist_create(struct fs *fs, const char *name,
		      struct fuse_entry_param *e, struct fs_handle **h);
void fs_persist_read(struct fs *fs, fuse_req_t req, struct fs_handle *h,
		     size_t size, off_t off);
ssize_t fs_persist_write(struct fs *fs, struct fs_handle *h, const char *buf,
			 size_t size, off_t off);
int fs_persist_truncate(struct fs *fs, struct fs_handle *h, off_t size);
/* Imports what was written since the last import (flush, fsync). */
int fs_persist_apply(struct fs *fs, struct fs_handle *h);
void fs_persist_release(struct fs *fs, struct fs_handle *h);
/* -EPERM with an error line: `what` (rm, mkdir) is not for persist/. */
int fs_persist_refuse(struct fs *fs, const char *name, const char *what);
/* The "persist" object of .lodefs/stats (a new reference). */
json_t *fs_persist_stats(struct fs *fs);

/* --- fs_meta.c: .lodefs/ ---------------------------------------------- */

/* Adds a line "time path reason" to .lodefs/errors (and stderr with -d). */
void fs_error(struct fs *fs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fs_errlog_free(struct fs_errlog *l);
/* Content of .lodefs/<name>: malloc'd text. */
int fs_meta_content(struct fs *fs, uint64_t ino, char **out, size_t *len);

/*
 * Grows array v (elements of `elem` bytes, capacity *cap) to hold `need`,
 * doubling from `first`: returns the array, perhaps moved, or NULL on out
 * of memory (v is then unchanged and still the caller's).
 */
void *fs_reserve(void *v, size_t *cap, size_t need, size_t elem, size_t first);

/* --- names ------------------------------------------------------------ */

/*
 * Decodes a file name of an id view (%XX escapes) into a malloc'd id.
 * -EINVAL for a bad escape or invalid UTF-8, -ENAMETOOLONG past 255 bytes.
 */
int fs_name_decode(const char *name, char **id);
/* Encodes an id as a file name (%2F, %25, leading %2E), malloc'd. */
char *fs_name_encode(const char *id, const char *suffix);
/* Checks a docs/ name: 0, -EINVAL (not UTF-8, has NUL), -ENAMETOOLONG. */
int fs_name_check(const char *name);

static inline uint64_t fs_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

#endif
