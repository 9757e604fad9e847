/* engine.h - durable collections of values: log segments and checkpoints. */
#ifndef LODEFS_ENGINE_H
#define LODEFS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

/*
 * The engine is LlamaIndex's BaseKVStore made durable: named collections
 * ("docstore/data", "vector_store/default", ...) of keys, each holding one
 * value.  A value is one of:
 *
 *   ENGINE_JSON  a JSON object, kept as compact UTF-8 text
 *   ENGINE_BLOB  raw bytes (document content)
 *   ENGINE_VEC   float32[dim]; every key of one collection has the same dim
 *
 * Collection names and keys are non-empty UTF-8 strings without NUL, keys
 * at most ENGINE_KEY_MAX bytes; anything else is -EINVAL.
 *
 * Writes go in batches.  engine_commit() writes the batch as one immutable,
 * xxh3-checksummed segment object (PREFIX/log/<writer>/<seq>.seg), returns
 * only once the backend says it is durable, then applies it in memory.  On
 * any error nothing is applied.  Checkpoints compact the state into objects
 * that load fast (vectors contiguous per collection); opening loads the
 * newest checkpoint and replays later segments, ignoring a torn tail that
 * was never acknowledged.  Opening reads a checkpoint's keys, not its
 * values: a value is read when it is used, and checked then against the
 * xxh3 the checkpoint recorded for it (see engine_get).  Each open engine is one writer with its own id,
 * so no two writers ever write the same object; replay orders batches by a
 * hybrid logical clock, ties broken by writer id (last writer wins per key).
 *
 * Thread safety: any number of readers and one committer at a time; the
 * engine locks internally (a rwlock that prefers writers, so that readers
 * cannot starve commits).  Read callbacks (foreach, collections,
 * with_vecs) run under the read lock and must not call the engine at all,
 * not even to read: a second read lock in the same thread would wait
 * behind a waiting committer for ever.  Observers and extension save/load
 * run under the write lock (or during open) and must not call the engine.
 */

#define ENGINE_KEY_MAX 4096

enum engine_type {
	ENGINE_NONE = 0, /* deleted / absent */
	ENGINE_JSON = 1,
	ENGINE_BLOB = 2,
	ENGINE_VEC = 3,
};

struct engine;
struct engine_batch;

/*
 * Checkpoint extensions: state derived from the values (a keyword index,
 * a vector graph) that is costly to rebuild at every open is saved inside
 * each checkpoint and handed back at the next open.  The engine treats the
 * bytes as opaque: it stores them as object ckpt/<id>/ext-<name>, lists
 * it in the manifest with its size and xxh3, and checks both before
 * calling load.  An extension object is never needed to open the store:
 * if it is missing or damaged, open skips its load and the client
 * rebuilds from the observer calls (fsck only warns).
 */

/* Writes bytes into the extension object being saved; returns 0 or -ENOMEM. */
typedef int engine_ext_emit_fn(void *ctx, const void *data, size_t len);

struct engine_ext {
	const char *name; /* [a-z0-9_]{1,32}; object ckpt/<id>/ext-<name> */
	/*
	 * At checkpoint, under the write lock, with the state exactly as the
	 * checkpoint captures it: serialise by calling emit(ctx, ...) any
	 * number of times.  Non-zero return: the checkpoint is written
	 * without this extension (not an error).  NULL: never saved.
	 */
	int (*save)(void *arg, engine_ext_emit_fn *emit, void *ctx);
	/*
	 * At open, after the checkpoint is loaded and before any observer
	 * call: the extension's bytes (borrowed for the call; checksum
	 * already verified by the engine).  Return 0 if loaded; non-zero to
	 * ignore it.  Not called when the checkpoint has no object of this
	 * name, when it is missing or damaged, or when open had to merge
	 * several checkpoints (the bytes would not match the state).
	 */
	int (*load)(void *arg, const void *data, size_t len);
	void *arg;
};

struct engine_opts {
	/* Writer id ([0-9a-z-]{1,32}); NULL picks a fresh random one. */
	const char *writer;
	/*
	 * Take a checkpoint automatically after this many segments since the
	 * last one (0: only when engine_checkpoint() is called).
	 */
	unsigned checkpoint_segments;
	/* Open read-only: commits fail with -EROFS, nothing is written. */
	int read_only;
	/*
	 * Checkpoint extensions (names unique, else -EINVAL).  The array is
	 * copied at open; the callbacks and their arg must stay valid until
	 * engine_close.
	 */
	const struct engine_ext *exts;
	size_t n_exts;
};

/*
 * Opens (creating if empty) the store held by `be`, which stays owned by the
 * caller and must outlive the engine.  `opts` may be NULL.  Returns
 * -EINVAL for invalid opts, -EUCLEAN with a reason in engine_last_error()
 * if the store is damaged beyond a torn tail, -EPROTO if its format is
 * not this program's (newer, or the unreleased format 1).
 */
int engine_open(struct backend *be, const struct engine_opts *opts,
		struct engine **out);

/* Closes the engine (no implicit checkpoint).  Accepts NULL. */
void engine_close(struct engine *e);

/*
 * Human-readable reason for the last failed engine_open / engine_commit /
 * engine_checkpoint in this thread, or for the last read (engine_get,
 * engine_get_ref, engine_foreach, engine_with_vecs) that failed with
 * -EIO; or "" (static storage).
 */
const char *engine_last_error(void);

/* --- batches -------------------------------------------------------------- */

/* A new empty batch; NULL on out of memory.  Free with engine_batch_free. */
struct engine_batch *engine_batch_new(void);
void engine_batch_free(struct engine_batch *b); /* accepts NULL */

/*
 * Records in a batch apply in order; the batch copies every argument.  Each
 * returns 0, or -EINVAL for invalid input (see above; JSON must parse and
 * be an object, a vector needs dim >= 1, values are at most
 * ENGINE_VALUE_MAX bytes) or -ENOMEM.  A batch is all or nothing: after a
 * failed call the record is not added and engine_commit() of the batch
 * fails with the same error, saying why in engine_last_error().
 * JSON is stored with the whitespace between tokens removed; everything
 * else (key order, number spelling, escapes) is kept as given.
 */
#define ENGINE_VALUE_MAX 0xfffffffeu

int engine_batch_put_json(struct engine_batch *b, const char *coll,
			  const char *key, const char *json, size_t len);
/*
 * engine_batch_put_json for text the caller has checked already: `json`
 * must be what engine_batch_put_json accepts, one JSON object, and have no
 * whitespace between tokens (a jansson JSON_COMPACT dump has none).  It is
 * stored as given without being parsed again; the names and the length
 * are checked as there.
 */
int engine_batch_put_json_compact(struct engine_batch *b, const char *coll,
				  const char *key, const char *json,
				  size_t len);
int engine_batch_put_blob(struct engine_batch *b, const char *coll,
			  const char *key, const void *data, size_t len);
int engine_batch_put_vec(struct engine_batch *b, const char *coll,
			 const char *key, const float *v, uint32_t dim);
int engine_batch_del(struct engine_batch *b, const char *coll, const char *key);
/* Deletes every key of the collection (as of when the batch applies). */
int engine_batch_drop(struct engine_batch *b, const char *coll);

/* Number of records and payload bytes in the batch so far. */
size_t engine_batch_count(const struct engine_batch *b);
size_t engine_batch_bytes(const struct engine_batch *b);

/*
 * A point in a batch to go back to, so that a caller can add a group of
 * records all or nothing: engine_batch_rollback() drops every record added
 * after engine_batch_mark() took the mark, and forgets a failure recorded
 * after it (the batch then commits as it would have at the mark).  A mark
 * is only valid for its batch, until the batch is rolled back to an
 * earlier mark or freed.  The fields are the engine's; do not use them.
 */
struct engine_batch_mark {
	size_t len, count, bytes;
	int err, buf_err;
};

void engine_batch_mark(const struct engine_batch *b,
		       struct engine_batch_mark *m);
void engine_batch_rollback(struct engine_batch *b,
			   const struct engine_batch_mark *m);

/*
 * Validates the batch against the current state (JSON parses and is an
 * object, vector dim matches the collection, type of a key does not change
 * within a collection), writes it durably as one segment and applies it.
 * Returns 0; -EINVAL if a record is invalid (nothing written); a backend
 * error such as -EIO or -ENOSPC (nothing applied, the batch can be
 * committed again).  An empty batch commits nothing and returns 0.  The
 * batch is not freed.
 */
int engine_commit(struct engine *e, struct engine_batch *b);

/*
 * engine_commit of a batch the caller is done with: its memory is given
 * back as its records are encoded, and the segment's as they are
 * applied, so that a large batch (a persist/ import) is not in memory
 * twice or three times beside the state it becomes.  The batch is spent
 * whatever the result: it is left empty (engine_batch_count 0), to be
 * freed or filled again; on error nothing is applied.
 */
int engine_commit_consume(struct engine *e, struct engine_batch *b);

/*
 * engine_commit_consume without the segment: the batch is checked and
 * applied in memory (observers called, readers see it) but nothing is
 * written, so it is not durable until the next engine_checkpoint, which
 * writes it with the rest of the state.  A crash, or engine_close before
 * that checkpoint, loses it (and every unlogged batch before it); other
 * writers see it only in that checkpoint.  For a bulk load that ends with
 * a checkpoint anyway (`lode import`): its data is written once, not as
 * segments first and then again as the checkpoint.  Returns as
 * engine_commit_consume; engine_stats.unlogged counts these commits
 * until the checkpoint.
 */
int engine_commit_unlogged(struct engine *e, struct engine_batch *b);

/* --- reads ---------------------------------------------------------------- */

/*
 * Copies the value of coll/key.  *data is malloc'd (free() it), NUL
 * terminated after *len bytes; for ENGINE_VEC it holds dim floats and *len
 * is 4*dim.  *type may be NULL.  Returns -ENOENT if absent; -EIO if the
 * value, read from a checkpoint, does not match its checksum (damaged
 * after it was written; engine_last_error() names it; other keys still
 * read, engine_fsck lists every damaged value).
 */
int engine_get(struct engine *e, const char *coll, const char *key,
	       enum engine_type *type, void **data, size_t *len);

/*
 * A value used in place, without a copy: data points at the bytes where
 * the engine keeps them (a mapped checkpoint object, or the memory of a
 * committed or replayed batch).  They stay valid and unchanged until
 * engine_ref_release, whatever happens to the key meanwhile: an overwrite,
 * a delete, a drop, a checkpoint or a refresh leaves the ref reading the
 * value it was taken of (the engine keeps a block a ref holds instead of
 * freeing it, and checkpoint objects stay mapped for the engine's life).
 * The fields besides data, len and type are the engine's.
 */
struct engine_ref {
	const void *data; /* len bytes; JSON and BLOB: a NUL after them */
	size_t len;	  /* ENGINE_VEC: 4 * dim */
	enum engine_type type;
	void *hold;  /* the engine's: what keeps data alive, or NULL */
	void *parts; /* the engine's: chunks left to check, or NULL */
};

/*
 * Takes a ref to the value of coll/key in *ref.  A value from a
 * checkpoint is checked against its xxh3 once, now (a large one with
 * sequential readahead); reads through the ref check nothing more.
 * Vectors are copied (their rows move and change in place), other values
 * are not.  Returns 0; -ENOENT if absent; -EIO if the value fails its
 * checksum (engine_last_error() names it); -ENOMEM.  On error *ref is
 * zeroed.  Release every ref with engine_ref_release before engine_close.
 * Thread safe; holding refs does not block commits.
 */
int engine_get_ref(struct engine *e, const char *coll, const char *key,
		   struct engine_ref *ref);

/*
 * Like engine_get_ref, but a large value from a checkpoint (more than
 * 1 MiB: one xxh3 per MiB, see docs/FORMAT.md) is not read now: only its
 * table of chunk sums is checked, and the caller must pass every range
 * it is about to use through engine_ref_check first.  A reader then
 * starts serving after one chunk instead of the whole value.  Any other
 * value is checked now, as engine_get_ref does, and engine_ref_check on
 * its ref returns 0.  Same returns as engine_get_ref.
 */
int engine_get_ref_lazy(struct engine *e, const char *coll, const char *key,
			struct engine_ref *ref);

/*
 * Checks bytes [off, off + len) of a ref's value (clamped to the value):
 * each chunk they touch that no ref of this engine has checked yet is
 * checked against its sum (and remembered as intact for the engine's
 * life).  Returns 0, or -EIO with engine_last_error() naming the key, the
 * object and the chunk if one fails.  Thread safe; a zeroed ref or one
 * from engine_get_ref always passes.
 */
int engine_ref_check(struct engine *e, const struct engine_ref *ref, size_t off,
		     size_t len);

/* Releases a ref and zeroes it.  Accepts a zeroed ref (and NULL). */
void engine_ref_release(struct engine *e, struct engine_ref *ref);

/*
 * Reads keys[0..n) of coll under one read lock, without copying: fn(arg,
 * i, type, data, len) for each, in order, data valid only during the call
 * (type ENGINE_NONE, data NULL, len 0 if keys[i] is absent).  Values are
 * checked as engine_get checks them.  The lookups of the keys overlap in
 * memory, so that a few scattered values (the hits of an approximate
 * search, to rescore) cost about one memory latency, not one each.  fn
 * must not call into the engine.  Returns 0, -EIO as engine_get (no more
 * calls then), or fn's nonzero return.
 */
typedef int engine_each_fn(void *arg, size_t i, enum engine_type type,
			   const void *data, size_t len);
int engine_get_each(struct engine *e, const char *coll, const char *const *keys,
		    size_t n, engine_each_fn *fn, void *arg);

/* Returns 1 if coll/key exists, else 0. */
int engine_exists(struct engine *e, const char *coll, const char *key);

/*
 * Called for each live key of a collection in insertion order, as a
 * Python dict iterates: a key takes its place when it is created,
 * re-putting a live key keeps it, deleting and re-creating it moves it to
 * the end.  Every engine sharing the store sees the same order (see
 * docs/FORMAT.md, "Iteration order").  Pointers are borrowed, valid for
 * the call only.  A non-zero return stops and is returned by
 * engine_foreach.  Each value is checked as engine_get checks it: a
 * damaged one stops the walk with -EIO before fn sees it.
 */
typedef int engine_foreach_fn(void *arg, const char *key, enum engine_type type,
			      const void *data, size_t len);
int engine_foreach(struct engine *e, const char *coll, engine_foreach_fn *fn,
		   void *arg);

/* Number of live keys in a collection (0 if it does not exist). */
size_t engine_count(struct engine *e, const char *coll);

/*
 * Calls fn(arg, name) for each non-empty collection, in order of creation:
 * a collection takes its place when a put makes it non-empty, so one that
 * was emptied and filled again comes last.  A non-zero return stops and
 * is returned.
 */
typedef int engine_coll_fn(void *arg, const char *coll);
int engine_collections(struct engine *e, engine_coll_fn *fn, void *arg);

/*
 * A read-only view of a vector collection: `n` rows of `dim` floats, row i
 * at data + i*dim, contiguous in one block or a few (see `blocks`); keys[i]
 * is the key of row i or NULL for a dead row.  Valid only inside the
 * callback of engine_with_vecs.  Rows are not in insertion order in
 * general: after open and after each checkpoint the live rows are one
 * block in insertion order, but later puts fill dead rows or append, and
 * an overwritten vector keeps its row.  Use engine_foreach for order.
 */
struct engine_vec_block {
	const float *data;
	size_t n;
	const char *const *keys;
};

struct engine_vecs {
	uint32_t dim;
	size_t live; /* live rows over all blocks */
	size_t nblocks;
	const struct engine_vec_block *blocks;
};

typedef int engine_vecs_fn(void *arg, const struct engine_vecs *v);

/*
 * Runs fn under the read lock with a view of collection `coll` (must hold
 * vectors, else -EINVAL; -ENOENT if empty/absent).  Returns fn's result,
 * or -EIO if the vectors, read from a checkpoint, do not match its
 * checksum (checked whole the first time they are handed out).
 */
int engine_with_vecs(struct engine *e, const char *coll, engine_vecs_fn *fn,
		     void *arg);

/* Dimension of a vector collection, or 0 if it has none yet. */
uint32_t engine_vec_dim(struct engine *e, const char *coll);

/* --- observers ------------------------------------------------------------ */

/*
 * Called for every record applied to memory, in apply order: at open (for
 * every live key of the loaded checkpoint, collections and keys in
 * iteration order, with ENGINE_OBS_CHECKPOINT in flags; then for replayed
 * records), after each commit (flags 0) and for what other writers
 * wrote (engine_refresh and the catch-up of a checkpoint: flag
 * ENGINE_OBS_REMOTE).  For a delete, type is ENGINE_NONE and data NULL; a drop arrives as
 * one delete per key.  Runs under the write lock; it must not call back
 * into the engine.  Set before engine_open through engine_open_observed,
 * or later (it is then called only for new changes).
 *
 * A client whose extension loaded (struct engine_ext) already holds the
 * checkpoint's state: it should ignore ENGINE_OBS_CHECKPOINT calls for
 * what that extension covers, and apply every call with flags 0.  The
 * engine loads extensions before the first observer call.
 */
#define ENGINE_OBS_CHECKPOINT 1u
/*
 * The change was written by another writer (another mount of a shared
 * store): applied by engine_refresh, or by the catch-up that
 * engine_checkpoint and commits that checkpoint do first.  Never set at
 * open.  Lets a client tell "changed under me" from its own commits.
 */
#define ENGINE_OBS_REMOTE 2u

typedef void engine_observe_fn(void *arg, const char *coll, const char *key,
			       enum engine_type type, const void *data,
			       size_t len, unsigned flags);

int engine_open_observed(struct backend *be, const struct engine_opts *opts,
			 engine_observe_fn *fn, void *arg, struct engine **out);

/*
 * Sets (fn NULL: clears) the observer of an open engine; it is called for
 * changes applied from now on.  Waits for running readers.
 */
void engine_set_observer(struct engine *e, engine_observe_fn *fn, void *arg);

/*
 * Catches up with other writers sharing the store: merges checkpoints
 * and replays segments that appeared since open (or the last refresh),
 * calling the observer for every change applied.  Returns 0, -EUCLEAN if
 * what appeared is damaged, or a backend error.
 */
int engine_refresh(struct engine *e);

/* --- maintenance ---------------------------------------------------------- */

/*
 * Writes a checkpoint of the whole current state (after an implicit
 * engine_refresh), with an object for each extension whose save succeeds,
 * and, once it is durable, deletes the segments and older checkpoints it
 * covers.  Returns 0 or a negative errno (the store is unchanged and
 * still valid on error).
 */
int engine_checkpoint(struct engine *e);

struct engine_stats {
	char writer[33];
	uint64_t segments; /* segments not yet covered by a checkpoint */
	uint64_t segment_bytes;
	uint64_t checkpoint_bytes;
	uint64_t commits; /* commits by this engine since open */
	/* of them, unlogged ones not yet in a checkpoint (not durable) */
	uint64_t unlogged;
	uint64_t last_commit_hlc; /* 0 if none */
	uint64_t keys;		  /* live keys in all collections */
	uint64_t mem_bytes;	  /* approximate memory held */
	/*
	 * Checkpoint values mapped but read only as they are used, so not
	 * in mem_bytes (a backend that cannot map reads them into memory:
	 * then they are in mem_bytes and this is 0).
	 */
	uint64_t values_mapped;
};

void engine_get_stats(struct engine *e, struct engine_stats *st);

/*
 * Verifies every object of the store held by `be` without opening it: the
 * format file, every checkpoint object and segment (checksum, structure),
 * and that replay succeeds.  Calls report(arg, key, problem) once per
 * problem found.  Returns the number of problems (0 = clean), or a negative
 * errno if the backend failed.  Warnings (problem starting "warning:")
 * are reported but not counted: a torn tail segment, a missing or
 * damaged extension object, unknown or garbage objects.
 */
typedef void engine_report_fn(void *arg, const char *key, const char *problem);
int engine_fsck(struct backend *be, engine_report_fn *report, void *arg);

#endif
