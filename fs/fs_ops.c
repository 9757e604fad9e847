/* fs_ops.c - the FUSE low-level operations: each picks docs/ or a view. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "fs/fs_int.h"

static void fs_count(struct fs *fs, enum fs_op op)
{
	atomic_fetch_add_explicit(&fs->ops[op], 1, memory_order_relaxed);
}

static int fs_is_doc(const struct fs_ino *ip)
{
	return ip->kind == FS_K_DOCDIR || ip->kind == FS_K_DOC;
}

/* The inode of a request, or NULL (the reply is then sent). */
static struct fs_ino *fs_req_ino(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;

	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_find(fs, ino);
	pthread_mutex_unlock(&fs->mu);
	if (!ip)
		fuse_reply_err(req, ESTALE);
	return ip;
}

static int fs_refuse_ro(struct fs *fs)
{
	return fs->opts.read_only ? -EROFS : 0;
}

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	/* The kernel's write-back cache would hold writes past close(). */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
}

/* Entry of inode `ino` itself: known, a document, or a view entry. */
static int fs_lookup_self(struct fs *fs, uint64_t ino,
			  struct fuse_entry_param *e)
{
	struct fs_ino *ip;
	int doc, known;

	pthread_mutex_lock(&fs->mu);
	ip = fs_ino_find(fs, ino);
	known = ip != NULL;
	doc = ip ? fs_is_doc(ip) : fs_dent_by_ino(fs, ino) != NULL;
	pthread_mutex_unlock(&fs->mu);
	if (doc)
		return fs_docs_entry(fs, ino, e);
	if (known)
		return fs_view_entry(fs, ino, e);
	return fs_view_resolve(fs, ino, e);
}

/* Parent of a directory inode; caller holds fs->mu. */
static uint64_t fs_parent_of(struct fs *fs, struct fs_ino *dir)
{
	struct fs_dent *d;

	if (!fs_is_doc(dir) || dir->ino == FS_INO_DOCS)
		return fs_view_parent(fs, dir);
	d = fs_dent_by_ino(fs, dir->ino);
	return d && d->parent ? d->parent->ino : FS_INO_DOCS;
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct fs_ino *dir;
	int rc;

	fs_count(fs, FS_OP_LOOKUP);
	if (strcmp(name, ".") == 0) {
		/* A file handle's inode, possibly forgotten by the kernel. */
		rc = fs_lookup_self(fs, parent, &e);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_entry(req, &e);
		return;
	}
	if (!(dir = fs_req_ino(req, parent)))
		return;
	if (strcmp(name, "..") == 0) {
		uint64_t ino;

		pthread_mutex_lock(&fs->mu);
		ino = fs_parent_of(fs, dir);
		pthread_mutex_unlock(&fs->mu);
		rc = fs_lookup_self(fs, ino, &e);
	} else if (fs_is_doc(dir)) {
		rc = fs_docs_lookup(fs, dir, name, &e);
	} else {
		rc = fs_view_lookup(fs, dir, name, &e);
	}
	if (rc == -ENOENT) { /* negative entry, cached like a positive one */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_is_doc(dir) ? fs->opts.entry_timeout : 0;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	struct fs *fs = fs_of(req);

	fs_count(fs, FS_OP_FORGET);
	pthread_mutex_lock(&fs->mu);
	fs_ino_forget(fs, ino, n);
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *v)
{
	struct fs *fs = fs_of(req);
	size_t i;

	fs_count(fs, FS_OP_FORGET);
	pthread_mutex_lock(&fs->mu);
	for (i = 0; i < count; i++)
		fs_ino_forget(fs, v[i].ino, v[i].nlookup);
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_none(req);
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;
	struct stat st;
	int rc;

	fs_count(fs, FS_OP_GETATTR);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	/* with a file handle (the kernel refreshing an open file's size):
	 * the state that handle reads */
	if (ip->kind == FS_K_PERSIST)
		rc = fs_persist_getattr(
			fs, ip,
			fi && fi->fh ? (struct fs_handle *)(uintptr_t)fi->fh
				     : NULL,
			&st);
	else
		rc = fs_is_doc(ip) ? fs_docs_getattr(fs, ip, &st)
				   : fs_view_getattr(fs, ip, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st,
				ip->kind == FS_K_DOC ||
						ip->kind == FS_K_DOCDIR ||
						ip->kind == FS_K_ROOT ||
						ip->kind == FS_K_TOP
					? fs->opts.attr_timeout
					: 0);
}

static void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;
	struct stat st;
	int rc;

	fs_count(fs, FS_OP_SETATTR);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	if ((rc = fs_refuse_ro(fs))) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fs_is_doc(ip) && ip->ino != FS_INO_DOCS) {
		rc = fs_docs_setattr(fs, ip, attr, to_set, &st);
	} else if (ip->kind == FS_K_PERSIST && (to_set & FUSE_SET_ATTR_SIZE)) {
		/* only through an open file: it is imported whole at close */
		struct fs_handle *h =
			fi && fi->fh ? (struct fs_handle *)(uintptr_t)fi->fh
				     : NULL;

		rc = h ? fs_persist_truncate(fs, h, attr->st_size)
		       : fs_persist_refuse(fs, ip->keys[0], "truncate by name");
		if (!rc)
			rc = fs_persist_getattr(fs, ip, h, &st);
	} else if ((to_set & FUSE_SET_ATTR_SIZE) && fi && fi->fh &&
		   !fs_is_doc(ip)) {
		/* truncating a virtual file open for writing */
		struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

		if ((size_t)attr->st_size <= h->len) {
			h->len = (size_t)attr->st_size;
			h->dirty = 1;
		}
		rc = fs_view_getattr(fs, ip, &st);
		st.st_size = (off_t)h->len;
	} else {
		/* chmod/utimens/truncate(0) of views: accepted, no effect */
		rc = fs_is_doc(ip) ? fs_docs_getattr(fs, ip, &st)
				   : fs_view_getattr(fs, ip, &st);
		if (rc == -ENOENT && (to_set & FUSE_SET_ATTR_SIZE))
			rc = 0;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st,
				fs_is_doc(ip) ? fs->opts.attr_timeout : 0);
}

static void fs_reply_open(fuse_req_t req, struct fs_handle *h,
			  struct fuse_file_info *fi, int direct_io)
{
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = direct_io;
	fi->keep_cache = h->keep_cache;
	fi->noflush = !h->wr;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* interrupted: the kernel will not release it */
		struct fs *fs = fs_of(req);

		if (fs_is_doc(h->ip))
			fs_docs_release(fs, h);
		else
			fs_view_release(fs, h);
	}
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_handle *h = NULL;
	struct fs_ino *ip;
	int rc, direct = 0;

	fs_count(fs, FS_OP_OPEN);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (rc = fs_refuse_ro(fs))) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fs_is_doc(ip))
		rc = ip->kind == FS_K_DOCDIR
			     ? -EISDIR
			     : fs_docs_open(fs, ip, fi->flags, &h);
	else
		rc = fs_view_open(fs, ip, fi->flags, &h, &direct);
	/*
	 * A document changes only through this kernel (writes, truncation
	 * and O_TRUNC go through its page cache; a rename onto it brings
	 * another inode), so its cached pages stay valid across opens.
	 */
	if (!rc && ip->kind == FS_K_DOC)
		h->keep_cache = 1;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fs_reply_open(req, h, fi, direct);
}

static void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct fs_handle *h = NULL;
	struct fs_ino *dir;
	int rc;

	fs_count(fs, FS_OP_CREATE);
	if (!(dir = fs_req_ino(req, parent)))
		return;
	if ((rc = fs_refuse_ro(fs))) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fs_is_doc(dir))
		rc = fs_docs_create(fs, dir, name, mode, &e, &h);
	else
		rc = fs_view_create(fs, dir, name, mode, &e, &h);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = !fs_is_doc(dir);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		if (fs_is_doc(dir))
			fs_docs_release(fs, h);
		else
			fs_view_release(fs, h);
	}
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	fs_count(fs, FS_OP_READ);
	if (fs_is_doc(h->ip)) {
		fs_docs_read(fs, req, h, size, off);
		return;
	}
	if (h->ph) {
		fs_persist_read(fs, req, h, size, off);
		return;
	}
	if ((size_t)off >= h->len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		/*
		 * A copy: once the kernel has the reply, a RELEASE on another
		 * thread may free h while writev() is still returning here.
		 */
		size_t n = size < h->len - (size_t)off ? size
						       : h->len - (size_t)off;
		char *copy = malloc(n);

		if (!copy) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memcpy(copy, h->buf + off, n);
		fuse_reply_buf(req, copy, n);
		free(copy);
	}
}

static void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	ssize_t n;

	fs_count(fs, FS_OP_WRITE);
	if (fs_is_doc(h->ip)) {
		n = fs_docs_write(fs, h, buf, size, off);
	} else if (h->ph) {
		n = fs_persist_write(fs, h, buf, size, off);
	} else if (h->ip->kind == FS_K_GOBJ) {
		n = -EINVAL; /* a triple has no content */
		fs_error(fs, h->ip->keys[2],
			 "refused: a triple is an empty file");
	} else {
		size_t end = (size_t)off + size;

		n = (ssize_t)size;
		if (end > (64u << 20) * 16) {
			n = -EFBIG;
		} else if (end > h->cap) {
			size_t cap = h->cap ? h->cap : 4096;
			char *b;

			while (cap < end)
				cap *= 2;
			b = realloc(h->buf, cap);
			if (!b)
				n = -ENOMEM;
			else {
				h->buf = b;
				h->cap = cap;
			}
		}
		if (n > 0) {
			if ((size_t)off > h->len)
				memset(h->buf + h->len, 0,
				       (size_t)off - h->len);
			memcpy(h->buf + off, buf, size);
			if (end > h->len)
				h->len = end;
			h->dirty = 1;
		}
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* flush and fsync: a document commits (or queues); a view file applies. */
static void fs_commit_op(fuse_req_t req, struct fuse_file_info *fi,
			 enum fs_op op,
			 int (*docs)(struct fs *, struct fs_handle *))
{
	struct fs *fs = fs_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	int rc;

	fs_count(fs, op);
	rc = fs_is_doc(h->ip) ? docs(fs, h) : fs_view_apply(fs, h);
	fuse_reply_err(req, -rc);
}

static void fs_op_flush(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	fs_commit_op(req, fi, FS_OP_FLUSH, fs_docs_flush);
}

static void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	fs_commit_op(req, fi, FS_OP_FSYNC, fs_docs_fsync);
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	fs_count(fs, FS_OP_RELEASE);
	if (fs_is_doc(h->ip)) {
		fs_docs_release(fs, h);
	} else {
		fs_view_apply(fs, h); /* normally done at flush already */
		fs_view_release(fs, h);
	}
	fuse_reply_err(req, 0);
}

typedef int fs_remove_fn(struct fs *fs, struct fs_ino *dir, const char *name);

/* unlink and rmdir: in docs/ or in a view. */
static void fs_remove(fuse_req_t req, fuse_ino_t parent, const char *name,
		      enum fs_op op, fs_remove_fn *docs, fs_remove_fn *view)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *dir;
	int rc;

	fs_count(fs, op);
	if (!(dir = fs_req_ino(req, parent)))
		return;
	if (!(rc = fs_refuse_ro(fs)))
		rc = fs_is_doc(dir) ? docs(fs, dir, name) : view(fs, dir, name);
	fuse_reply_err(req, -rc);
}

static void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_remove(req, parent, name, FS_OP_UNLINK, fs_docs_unlink,
		  fs_view_unlink);
}

static void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct fs_ino *dir;
	int rc;

	fs_count(fs, FS_OP_MKDIR);
	if (!(dir = fs_req_ino(req, parent)))
		return;
	if (!(rc = fs_refuse_ro(fs)))
		rc = fs_is_doc(dir) ? fs_docs_mkdir(fs, dir, name, mode, &e)
				    : fs_view_mkdir(fs, dir, name, &e);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_remove(req, parent, name, FS_OP_RMDIR, fs_docs_rmdir, fs_view_rmdir);
}

static void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *dir, *ndir;
	int rc;

	fs_count(fs, FS_OP_RENAME);
	if (!(dir = fs_req_ino(req, parent)) ||
	    !(ndir = fs_req_ino(req, newparent)))
		return;
	if ((rc = fs_refuse_ro(fs)))
		;
	else if (fs_is_doc(dir) && fs_is_doc(ndir))
		rc = fs_docs_rename(fs, dir, name, ndir, newname, flags);
	else
		rc = -EXDEV; /* mv copies and removes: ids live in content */
	fuse_reply_err(req, -rc);
}

static void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	fs_count(fs_of(req), FS_OP_OTHER);
	fuse_reply_err(req, EPERM);
}

static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_dirlist *l;
	struct fs_ino *ip;
	int rc;

	fs_count(fs, FS_OP_OTHER);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	l = calloc(1, sizeof(*l));
	if (!l) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* A snapshot: entries added or removed meanwhile do not shift it. */
	rc = fs_is_doc(ip) ? fs_docs_list(fs, ip, l) : fs_view_list(fs, ip, l);
	if (rc) {
		fs_dirlist_free(l);
		free(l);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)l;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		fs_dirlist_free(l);
		free(l);
	}
}

/*
 * One readdir reply.  With plus, documents and directories of docs/ come
 * with their attributes and a kernel reference (so `ls -l` of a large
 * folder costs no lookup per entry); entries of the other views come with
 * node id 0, which tells the kernel to look them up if it needs them.
 */
static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct fs *fs = fs_of(req);
	struct fs_dirlist *l = (struct fs_dirlist *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, i;

	fs_count(fs, FS_OP_READDIR);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* offsets: 0 ".", 1 "..", 2 + i entry i */
	for (i = (size_t)off; i < l->n + 2; i++) {
		struct fuse_entry_param e = { 0 };
		const char *name;
		size_t n;

		if (i < 2) {
			name = i ? ".." : ".";
			e.attr.st_ino = ino;
			e.attr.st_mode = S_IFDIR;
		} else {
			name = l->e[i - 2].name;
			e.attr.st_ino = l->e[i - 2].ino;
			e.attr.st_mode = l->e[i - 2].type;
		}
		if (!plus) {
			n = fuse_add_direntry(req, buf + used, size - used,
					      name, &e.attr, (off_t)(i + 1));
			if (n > size - used)
				break;
			used += n;
			continue;
		}
		/* the size first: a reference is taken only for what fits */
		n = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (n > size - used)
			break;
		if (i >= 2 && fs_docs_entry_plus(fs, l->e[i - 2].ino, &e))
			e.ino = 0;
		fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
				       (off_t)(i + 1));
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	fs_readdir(req, ino, size, off, fi, 0);
}

static void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	fs_readdir(req, ino, size, off, fi, 1);
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	struct fs_dirlist *l = (struct fs_dirlist *)(uintptr_t)fi->fh;

	fs_dirlist_free(l);
	free(l);
	fuse_reply_err(req, 0);
}

/* A docs/ directory: the removals in it (and all others) made durable. */
static void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;

	fs_count(fs, FS_OP_FSYNC);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	fuse_reply_err(req, fs_is_doc(ip) ? -fs_docs_fsyncdir(fs) : 0);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv;

	fs_count(fs, FS_OP_OTHER);
	memset(&sv, 0, sizeof(sv));
	if (fs->src.local_dir) {
		if (statvfs(fs->src.local_dir, &sv))
			memset(&sv, 0, sizeof(sv));
	} else {
		/* a bucket has no size: say "plenty", as s3fs does */
		sv.f_bsize = sv.f_frsize = 4096;
		sv.f_blocks = sv.f_bfree = sv.f_bavail = 1ull << 38;
		sv.f_files = sv.f_ffree = sv.f_favail = 1ull << 32;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;
	int rc;

	fs_count(fs, FS_OP_XATTR);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	if (!(rc = fs_refuse_ro(fs)))
		rc = fs_docs_setxattr(fs, ip, name, value, size, flags);
	fuse_reply_err(req, -rc);
}

static void fs_reply_xattr(fuse_req_t req, int rc, char *val, size_t len,
			   size_t size)
{
	if (rc)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
	free(val);
}

static void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   size_t size)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;
	char *val = NULL;
	size_t len = 0;
	int rc;

	fs_count(fs, FS_OP_XATTR);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	rc = fs_docs_getxattr(fs, ip, name, &val, &len);
	fs_reply_xattr(req, rc, val, len, size);
}

static void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;
	char *val = NULL;
	size_t len = 0;
	int rc;

	fs_count(fs, FS_OP_XATTR);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	rc = fs_docs_listxattr(fs, ip, &val, &len);
	fs_reply_xattr(req, rc, val, len, size);
}

static void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fs_ino *ip;
	int rc;

	fs_count(fs, FS_OP_XATTR);
	if (!(ip = fs_req_ino(req, ino)))
		return;
	if (!(rc = fs_refuse_ro(fs)))
		rc = fs_docs_removexattr(fs, ip, name);
	fuse_reply_err(req, -rc);
}

static void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	fs_count(fs_of(req), FS_OP_OTHER);
	fuse_reply_err(req, S_ISREG(mode) ? ENOSYS : EPERM);
}

static void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	struct fs *fs = fs_of(req);

	fs_count(fs, FS_OP_OTHER);
	fs_error(fs, name, "refused: symbolic links are not documents");
	fuse_reply_err(req, EPERM);
}

/* After the last request: what the views keep between requests goes. */
static void fs_op_destroy(void *userdata)
{
	fs_persist_free(userdata);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_op_init,
	.destroy = fs_op_destroy,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.symlink = fs_op_symlink,
	.rename = fs_op_rename,
	.link = fs_op_link,
	.open = fs_op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.fsyncdir = fs_op_fsyncdir,
	.statfs = fs_op_statfs,
	.setxattr = fs_op_setxattr,
	.getxattr = fs_op_getxattr,
	.listxattr = fs_op_listxattr,
	.removexattr = fs_op_removexattr,
	.create = fs_op_create,
};
