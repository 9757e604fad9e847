/* backend.h - the object interface every storage backend implements. */
#ifndef LODEFS_BACKEND_H
#define LODEFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/*
 * A backend stores immutable-ish objects under string keys, like S3.  Keys
 * are non-empty byte strings without NUL, at most BACKEND_KEY_MAX bytes;
 * '/' separates levels only by convention (listing is by plain prefix).
 * Values are arbitrary bytes, from empty up to whatever memory allows.
 *
 * Every method returns 0 on success or a negative errno.  Methods may be
 * called from several threads at once; each backend does its own locking.
 * Methods never print.
 *
 * The struct is versioned like sqlite3_vfs: callers check `version` before
 * using a member added in a later version.  Optional members may be NULL;
 * the backend_*() wrappers below turn a NULL member into -ENOTSUP.
 */
#define BACKEND_VERSION	 2
#define BACKEND_KEY_MAX	 1024
#define BACKEND_ETAG_MAX 80

enum backend_cond_kind {
	BACKEND_COND_NONE = 0, /* unconditional overwrite */
	BACKEND_COND_ABSENT,   /* only if no object has this key */
	BACKEND_COND_ETAG,     /* only if the object's ETag is still `etag` */
};

struct backend_cond {
	enum backend_cond_kind kind;
	const char *etag; /* for BACKEND_COND_ETAG */
};

struct backend_stat {
	uint64_t size;
	char etag[BACKEND_ETAG_MAX]; /* opaque, NUL-terminated */
};

struct backend;

/*
 * Called once per key by list(), in ascending byte order (memcmp) of the
 * key.  `key` is borrowed for the call.  A non-zero return stops the
 * listing, and list() returns that value.
 */
typedef int backend_list_fn(void *arg, const char *key, uint64_t size);

/*
 * Reads the whole object.  On success *data is a malloc'd buffer of *len
 * bytes (plus one NUL byte after them, not counted, so text can be used as
 * a C string) that the caller frees with free().  Returns -ENOENT if the
 * key does not exist.
 */
typedef int backend_get_fn(struct backend *be, const char *key, void **data,
			   size_t *len);

/*
 * Reads up to `len` bytes at offset `off` into `buf`; *got is the number
 * read, less than `len` only at the end of the object (0 at or past it).
 * Returns -ENOENT if the key does not exist.
 */
typedef int backend_get_range_fn(struct backend *be, const char *key,
				 uint64_t off, size_t len, void *buf,
				 size_t *got);

/* Size and ETag of an object.  Returns -ENOENT if it does not exist. */
typedef int backend_head_fn(struct backend *be, const char *key,
			    struct backend_stat *st);

/*
 * Stores `len` bytes under `key`, atomically: a reader sees the old object
 * or the new one, never part of one.  When put() returns 0 the object is
 * durable (local: fsync'd file and directory; S3: the PUT succeeded).
 * `cond` may be NULL (unconditional).  Returns -EEXIST when the condition
 * does not hold (the object exists, or its ETag changed); a backend whose
 * server ignores conditions may return 0 anyway, so callers use conditions
 * only as an extra guard.  -EINVAL for an invalid key.
 */
typedef int backend_put_fn(struct backend *be, const char *key,
			   const void *data, size_t len,
			   const struct backend_cond *cond);

/* Deletes an object.  Returns 0 whether or not it existed (as S3 does). */
typedef int backend_del_fn(struct backend *be, const char *key);

/* Lists every key that starts with `prefix` ("" lists all); see above. */
typedef int backend_list_fn_op(struct backend *be, const char *prefix,
			       backend_list_fn *fn, void *arg);

/*
 * Optional: maps the whole object read-only.  *data stays valid until
 * unmap(*cookie).  Backends that cannot map leave this NULL; callers then
 * fall back to get().  Returns -ENOENT if the key does not exist.
 */
typedef int backend_map_fn(struct backend *be, const char *key,
			   const void **data, size_t *len, void **cookie);
typedef void backend_unmap_fn(struct backend *be, void *cookie);

/* Releases the backend and everything it owns.  Accepts NULL. */
typedef void backend_close_fn(struct backend *be);

/*
 * Optional (version 2): deletes `n` keys, in as few requests as the
 * backend can (S3: DeleteObjects, 1000 keys per request).  Returns 0
 * whether or not they existed, or the first error (some keys may be
 * deleted then).  backend_del_many() loops over del() without it.
 */
typedef int backend_del_many_fn(struct backend *be, const char *const *keys,
				size_t n);

struct backend {
	int version;	  /* BACKEND_VERSION the backend was built for */
	const char *name; /* "memory", "local", "fault", "s3" */
	backend_get_fn *get;
	backend_get_range_fn *get_range;
	backend_head_fn *head;
	backend_put_fn *put;
	backend_del_fn *del;
	backend_list_fn_op *list;
	backend_map_fn *map;	 /* optional */
	backend_unmap_fn *unmap; /* optional, set with map */
	backend_close_fn *close;
	/*
	 * A short description for humans (a path, a URL without secrets),
	 * owned by the backend.
	 */
	const char *where;
	/* version 2 */
	backend_del_many_fn *del_many; /* optional */
};

/* Thin wrappers that check for optional members; same contracts as above. */
int backend_get(struct backend *be, const char *key, void **data, size_t *len);
int backend_get_range(struct backend *be, const char *key, uint64_t off,
		      size_t len, void *buf, size_t *got);
int backend_head(struct backend *be, const char *key, struct backend_stat *st);
int backend_put(struct backend *be, const char *key, const void *data,
		size_t len, const struct backend_cond *cond);
int backend_del(struct backend *be, const char *key);
int backend_del_many(struct backend *be, const char *const *keys, size_t n);
int backend_list(struct backend *be, const char *prefix, backend_list_fn *fn,
		 void *arg);
int backend_map(struct backend *be, const char *key, const void **data,
		size_t *len, void **cookie);
void backend_unmap(struct backend *be, void *cookie);
void backend_close(struct backend *be);

/* Returns 0 if `key` is a valid backend key, else -EINVAL. */
int backend_key_check(const char *key);

/*
 * Constructors.  Each returns 0 and a backend in *out that the caller
 * releases with backend_close(), or a negative errno.
 */

/* A backend in process memory, for tests. */
int backend_memory_open(struct backend **out);

/*
 * A directory on local disk, created if absent.  Puts are atomic and
 * durable: temporary file, fsync, rename, fsync of the directory.
 */
int backend_local_open(const char *dir, struct backend **out);

/*
 * Options for backend_local_open_flags().  BACKEND_LOCAL_NO_FSYNC skips
 * every fsync: puts stay atomic (rename) but are not durable across a
 * crash.  For tests and benchmarks only.
 */
#define BACKEND_LOCAL_NO_FSYNC 1

/*
 * backend_local_open() with `flags` (0 = the same as backend_local_open).
 * Returns -EINVAL for an unknown flag.  Each key component is one file or
 * directory name on disk; a put whose component encodes to more than 255
 * bytes (254 for a directory) returns -ENAMETOOLONG, and such a key reads
 * as absent.  `where` is the absolute path of `dir`.
 */
int backend_local_open_flags(const char *dir, unsigned flags,
			     struct backend **out);

/*
 * Wraps `inner` (and takes ownership of it: closing the wrapper closes it)
 * to inject faults for tests: see backend_fault_* below.
 */
int backend_fault_open(struct backend *inner, struct backend **out);

enum backend_fault_op {
	BACKEND_FAULT_GET = 1 << 0, /* get, get_range, head, map */
	BACKEND_FAULT_PUT = 1 << 1,
	BACKEND_FAULT_DEL = 1 << 2, /* del, and del_many (one call a batch) */
	BACKEND_FAULT_LIST = 1 << 3,
	BACKEND_FAULT_ALL = 0xf,
};

/*
 * Makes the fault backend `be` fail calls of the kinds in `ops`: the
 * `nth` such call from now (1 = the next one) and, if `count` > 1, the
 * count-1 after it, with `err` (a negative errno).  count 0 means every
 * call from the nth on.  A failed put writes nothing.  Returns -EINVAL if
 * `be` is not a fault backend.
 */
int backend_fault_set(struct backend *be, unsigned ops, unsigned long nth,
		      unsigned long count, int err);

/* Number of calls of the kinds in `ops` that the fault backend has seen. */
unsigned long backend_fault_calls(struct backend *be, unsigned ops);

#endif
