/* engine_int.h - internals shared by the engine's source files only. */
#ifndef LODEFS_ENGINE_INT_H
#define LODEFS_ENGINE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

/*
 * Checkpoints are used in place (vectors straight out of the mapped object),
 * so the on-disk byte order must be the host's.
 */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lodefs uses checkpoints in place and needs a little-endian host"
#endif

#define ENG_FORMAT_VERSION 4
#define ENG_WRITER_MAX	   32
#define ENG_FORMAT_KEY	   "lodefs.format"
#define ENG_SEG_MAGIC	   "LODEFSSG"
#define ENG_KEYS_MAGIC	   "LODEFSKV"
#define ENG_VALS_MAGIC	   "LODEFSVL"
#define ENG_VEC_MAGIC	   "LODEFSVC"
#define ENG_MAGIC_LEN	   8
#define ENG_SEG_HDR	   64
#define ENG_REC_HDR	   24
#define ENG_TRAILER	   8
#define ENG_NO_WRITER	   UINT32_MAX
/*
 * Checkpoint objects besides vec-<n> and ext-<name>: the keys object (the
 * key index: keys, stamps, where each value is and its xxh3; named "kv"
 * as before the values moved out) and the values object.  Layouts: see
 * engine_load.c and docs/FORMAT.md.
 */
#define ENG_OBJ_KEYS   "kv"
#define ENG_OBJ_VALUES "values"
#define ENG_KEYS_HDR   16
#define ENG_KEYS_COLL  48
#define ENG_KEYS_ENT   56
#define ENG_KEYS_AT    24 /* in an entry: u64 value offset (VEC: row) */
#define ENG_KEYS_SUM   32 /* in an entry: u64 xxh3 of the value */
#define ENG_VALS_HDR   16
/*
 * A JSON or BLOB value of more than ENG_CHUNK bytes in a values object is
 * followed (after its NUL) by one u64 xxh3 per ENG_CHUNK bytes of it (the
 * last chunk shorter), and its keys entry's sum is the xxh3 of that table
 * instead of the value's: a reader checks the chunks it uses, as it uses
 * them, instead of the whole value before its first byte.  1 MiB: the
 * first READ of a 512 MiB value waits for 1 MiB instead of 512 (see
 * tools/bench/README.md for the sizes measured); the table is 8 bytes per
 * MiB.
 */
#define ENG_CHUNK   (1u << 20)
#define ENG_VEC_HDR 40
/* creation reference after a put record's value: u64, u32, u32, writer */
#define ENG_REC_CREF 16
#define ENG_PAD8(x)  (((x) + 7) & ~(size_t)7)
/* ckpt id: 16 hex digits of HLC, '-', writer id */
#define ENG_CKPT_ID_MAX (16 + 1 + ENG_WRITER_MAX)
/* Longest object name the engine builds (log/<w>/<seq>.seg, ckpt/...). */
#define ENG_NAME_MAX 128
/* Extension names: [a-z0-9_]{1,32}, object ckpt/<id>/ext-<name>. */
#define ENG_EXT_MAX 32

/*
 * Tombstones (deleted keys with their stamp) are carried in checkpoints for
 * this long, so that a segment from a writer whose clock lags by less than
 * this still loses to a newer delete.  Checkpoints without a manifest left
 * by another writer are removed only once this old (it may be writing it).
 */
#define ENG_TOMB_GRACE_MS (24ULL * 3600 * 1000)
#define ENG_CKPT_GRACE_MS (3600ULL * 1000)

/* Above this many bytes of segments to replay, read headers first. */
#define ENG_REPLAY_PRELOAD_MAX (64u << 20)

/* Owned vector blocks grow by doubling up to this many rows, then chain. */
#define ENG_VBLOCK_MAX_ROWS (1u << 16)

enum eng_op {
	ENG_OP_PUT = 1,
	ENG_OP_DEL = 2,
	ENG_OP_DROP = 3,
};

/*
 * Flags of a put record (u16 at offset 2), set by the committing writer
 * from what it saw.  UPDATE: the key was live, and the creation stamp it
 * had follows the value, so the key keeps its place.  FIRST: the
 * collection was empty, so this put places the collection among the
 * others.  Without UPDATE the put creates the key: its creation stamp is
 * the record's own (batch HLC, writer, record index).
 */
#define ENG_RF_UPDATE 1u
#define ENG_RF_FIRST  2u

/* --- errors --------------------------------------------------------------- */

/* Sets this thread's engine_last_error() text and returns rc. */
int eng_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void eng_clear_error(void);

/* --- checksums ------------------------------------------------------------ */

/*
 * The format's xxh3: XXH3_64bits with seed 0, of segments, checkpoint
 * objects and values.  Where libxxhash has its x86 dispatcher (Debian's
 * does), the AVX2 or AVX-512 variant is picked at run time: the same sums
 * at 2.5x the speed of the library's default SSE2 code here (14.5 against
 * 5.9 GB/s), which a value read from a checkpoint pays before its first
 * byte is handed out.
 */
uint64_t eng_xxh3(const void *p, size_t n);

/* Chunks of a value of len bytes in a checkpoint: 0 if it has no table. */
static inline size_t eng_nchunks(size_t len)
{
	return len > ENG_CHUNK ? (len - 1) / ENG_CHUNK + 1 : 0;
}

/* Writes the chunk sums of data[0, len) (eng_nchunks(len) > 0) to out. */
void eng_chunk_sums(const void *data, size_t len, uint8_t *out);

/*
 * True if a JSON/BLOB value of a values object (v, len bytes, then its
 * NUL and, when chunked, its table) matches `sum`, its keys entry's.
 */
bool eng_val_intact(const uint8_t *v, size_t len, uint64_t sum);

/* --- growable byte buffer ------------------------------------------------- */

struct eng_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	int err; /* sticky: -ENOMEM once any append failed */
};

/* Makes room for n more bytes; returns 0 or -ENOMEM (also sticky). */
int eng_buf_reserve(struct eng_buf *b, size_t n);
/*
 * Gives the whole pages of b's bytes [*done, upto) back to the kernel
 * (anonymous memory: they read as zeros afterwards), for a large buffer
 * walked once from front to back whose bytes before upto will not be
 * read again; *done is where the last call stopped.  Only pages strictly
 * inside the buffer go, so what the allocator keeps around the block is
 * untouched, and free() works as ever.  Does nothing for less than
 * ENG_RELEASE_STEP bytes.
 */
#define ENG_RELEASE_STEP (8u << 20)
void eng_buf_release(struct eng_buf *b, size_t *done, size_t upto);
void eng_buf_put(struct eng_buf *b, const void *data, size_t n);
void eng_buf_u8(struct eng_buf *b, uint8_t v);
void eng_buf_u16(struct eng_buf *b, uint16_t v);
void eng_buf_u32(struct eng_buf *b, uint32_t v);
void eng_buf_u64(struct eng_buf *b, uint64_t v);
void eng_buf_zero(struct eng_buf *b, size_t n);
void eng_buf_align(struct eng_buf *b, size_t align);
void eng_buf_free(struct eng_buf *b);

uint16_t eng_le16(const uint8_t *p);
uint32_t eng_le32(const uint8_t *p);
uint64_t eng_le64(const uint8_t *p);
void eng_put_le64(uint8_t *p, uint64_t v);

/* --- batches -------------------------------------------------------------- */

/* A batch is its records already encoded as they go into the segment. */
struct engine_batch {
	struct eng_buf recs;
	size_t count;
	size_t bytes;
	int err; /* first failed engine_batch_* call: commit fails */
	char why[512];
};

/*
 * Checks the batch against the engine's state and encodes its records for
 * the segment into out, with what this writer saw (ENG_RF_*, creation
 * references).  With `spend` the pages of the batch's records already
 * encoded are given back as it goes (eng_buf_release): the batch is
 * garbage afterwards.  Returns 0, -EINVAL or -ENOMEM with
 * engine_last_error() set.  Caller holds commit_lock.
 */
int eng_prepare(struct engine *e, struct engine_batch *b, bool spend,
		struct eng_buf *out);
/*
 * Applies `nrec` verified records at [p + pos, p + end) of the batch
 * stamped (hlc, w) (a commit's or a replayed segment's), then eng_settle.
 * Returns 0 or -ENOMEM.  Caller holds the write lock (or is opening).
 */
int eng_recs_apply(struct engine *e, const uint8_t *p, size_t end, size_t pos,
		   uint32_t nrec, uint64_t hlc, uint32_t w, unsigned flags);
/*
 * eng_recs_apply of the records in buffer `seg`, giving back the pages of
 * the records applied as it goes (eng_buf_release): seg is garbage
 * afterwards.
 */
int eng_recs_apply_spend(struct engine *e, struct eng_buf *seg, size_t end,
			 size_t pos, uint32_t nrec, uint64_t hlc, uint32_t w,
			 unsigned flags);

/* --- names and validation ------------------------------------------------- */

int eng_writer_valid(const char *w);
/* 0 if s is non-empty valid UTF-8 of at most max bytes without NUL. */
int eng_name_valid(const char *s, size_t len, size_t max);
uint64_t eng_now_ms(void);
void eng_seg_name(char *out, const char *writer, uint64_t seq);
/* Parses log/<writer>/<16 hex>.seg; returns 0 or -EINVAL. */
int eng_seg_parse_name(const char *key, char *writer, uint64_t *seq);
/* Parses ckpt/<id>/<object>; id and object are copied out. */
int eng_ckpt_parse_name(const char *key, char *id, char *obj, size_t objmax);
/* Splits a ckpt id into its HLC and writer. */
int eng_ckpt_parse_id(const char *id, uint64_t *hlc, char *writer);

/* --- records and segments ------------------------------------------------- */

struct eng_rec {
	uint8_t op;
	uint8_t type;
	uint16_t flags;	  /* ENG_RF_* (puts only) */
	const char *coll; /* NUL-terminated in the buffer */
	size_t coll_len;
	const char *key; /* NUL-terminated in the buffer; "" for a drop */
	size_t key_len;
	const uint8_t *val;
	size_t len;
	/* ENG_RF_UPDATE: the key's creation stamp (chlc 0: this batch) */
	uint64_t chlc;
	uint32_t cidx;
	char cwriter[ENG_WRITER_MAX + 1];
};

/*
 * Decodes the record at *pos of [p, p + n), checking its structure, and
 * advances *pos.  Returns 0, or -EUCLEAN with *why set.
 */
int eng_rec_next(const uint8_t *p, size_t n, size_t *pos, struct eng_rec *r,
		 const char **why);

/* A put's creation reference as encoded (writer "" when hlc is 0). */
struct eng_cref {
	uint16_t flags; /* ENG_RF_* */
	uint64_t hlc;
	uint32_t idx;
	const char *writer;
};

/* Appends one encoded record to b; cref NULL: flags 0. */
void eng_rec_encode(struct eng_buf *b, uint8_t op, uint8_t type,
		    const char *coll, size_t coll_len, const char *key,
		    size_t key_len, const void *val, size_t len,
		    const struct eng_cref *cref);

struct eng_seg_hdr {
	uint16_t version;
	char writer[ENG_WRITER_MAX + 1];
	uint32_t nrec;
	uint64_t seq;
	uint64_t hlc;
};

/*
 * Makes a whole segment object of `seg`, whose first ENG_SEG_HDR bytes
 * were reserved for the header and whose records end at recs_end: writes
 * the header there and appends the checksum.  It sets seg->len to
 * recs_end first, so a segment can be sealed again (another seq, HLC).
 * Returns -ENOMEM or 0.
 */
int eng_seg_seal(struct eng_buf *seg, const struct eng_seg_hdr *h,
		 size_t recs_end);
/* Parses the fixed header only (first ENG_SEG_HDR bytes). */
int eng_seg_parse_hdr(const uint8_t *p, size_t n, struct eng_seg_hdr *h,
		      const char **why);
/*
 * Verifies a whole segment.  Returns 0; -EBADMSG if it is short or its
 * checksum does not match (torn or damaged); -EPROTO for a newer format;
 * -EUCLEAN if the checksum holds but the structure does not.
 */
int eng_seg_verify(const uint8_t *p, size_t n, struct eng_seg_hdr *h,
		   const char **why);

/* --- checkpoint manifest -------------------------------------------------- */

struct eng_mwriter {
	char id[ENG_WRITER_MAX + 1];
	uint64_t seq; /* highest seq of this writer the checkpoint covers */
};

struct eng_mobj {
	char name[48]; /* "keys", "values", "vec-<n>", "ext-<name>" */
	bool ext;      /* an extension object: never needed to open */
	char *coll;    /* vec objects: the collection */
	uint32_t dim;  /* vec objects */
	uint64_t rows; /* vec objects */
	uint64_t size;
	uint64_t xxh3;
};

struct eng_manifest {
	char id[ENG_CKPT_ID_MAX + 1];
	uint64_t hlc;
	struct eng_mwriter *writers;
	size_t nwriters;
	struct eng_mobj *objs;
	size_t nobjs;
};

int eng_manifest_parse(const void *p, size_t n, struct eng_manifest *m,
		       const char **why);
/* Returns malloc'd text (free()) in *out of *len bytes, or -ENOMEM. */
int eng_manifest_build(const struct eng_manifest *m, char **out, size_t *len);
void eng_manifest_free(struct eng_manifest *m);

/* --- in-memory state ------------------------------------------------------ */

/* eng_ent.own */
#define ENG_OWN 1 /* key (and the value after it) is one malloc'd block */
/*
 * The key is the key of an entry of a checkpoint's keys object, and the
 * value (or row) is the one that entry describes: the entry's header, with
 * the value's xxh3, sits ENG_KEYS_ENT bytes before the key.  Reads check
 * the value against it (values are not read at open).
 */
#define ENG_CKV 2

/*
 * Where a key (or a collection) sits in iteration order: the batch that
 * created it and the record's index in that batch.  A writer's HLCs rise
 * strictly with its seq, so (HLC, writer) names one batch and seq is
 * never needed to break a tie.  hlc 0: none.
 */
struct eng_cstamp {
	uint64_t hlc;
	uint32_t writer; /* index in the engine's writers */
	uint32_t idx;
};

/* One entry of a collection (key NULL: a hole left by a moved entry). */
struct eng_ent {
	const char *key;
	const char *val; /* JSON/BLOB: bytes, NUL after len; else NULL */
	uint64_t hlc;	 /* stamp: batch HLC ... */
	uint32_t writer; /* ... and writer index that last wrote the key */
	uint32_t len;	 /* JSON/BLOB: bytes; VEC: global row */
	struct eng_cstamp created; /* live entries: their place in order */
	uint32_t hash;
	uint8_t type; /* ENGINE_NONE: tombstone */
	uint8_t own;  /* ENG_OWN, ENG_CKV */
};

struct eng_vblock {
	float *data;	   /* read-only when !owned (mapped checkpoint) */
	const char **keys; /* key of each row, NULL for a dead row */
	size_t n;	   /* rows in use (live or dead) */
	size_t cap;
	size_t start; /* global index of row 0 */
	bool owned;
	/*
	 * A block used in place from a checkpoint's vec object is checked
	 * against the object's xxh3 when engine_with_vecs first hands it out
	 * (not at open): 0 not yet, 1 intact, -1 damaged.  Readers set it
	 * under the read lock, hence atomic.  Other blocks start at 1.
	 */
	_Atomic int verified;
	const uint8_t *obj; /* the whole vec object, obj_len bytes */
	size_t obj_len;
	uint64_t obj_xxh3;
};

/*
 * A collection is an insertion-ordered hash table, as Python's dict: the
 * entries sit in a dense array with live ones in creation order (holes and
 * tombstones anywhere), and an open-addressing index maps keys to them.
 */
struct eng_coll {
	char *name;
	struct eng_ent *ents;
	size_t nents;	 /* entries in use, holes included */
	size_t ents_cap; /* the index always has room for this many */
	uint32_t *index; /* 1 + position in ents; 0: empty slot */
	size_t cap;	 /* index slots: a power of two, or 0 */
	size_t used;	 /* entries that are not holes: live + tombstones */
	size_t live;
	struct eng_cstamp cmax;	 /* greatest creation stamp placed last */
	bool unsorted;		 /* a live entry sits after a younger one */
	struct eng_cstamp first; /* latest FIRST put: the place of the coll */
	uint64_t drop_hlc;	 /* newest drop applied (0: none) */
	uint32_t drop_writer;
	uint32_t dim; /* valid while vec_live > 0 */
	size_t vec_live;
	struct eng_vblock *vb;
	size_t nvb;
	uint32_t *free_rows; /* dead rows of owned blocks, for reuse */
	size_t nfree;
	size_t free_cap;
};

struct eng_writer {
	char id[ENG_WRITER_MAX + 1];
	uint64_t seen; /* highest seq applied, covered or skipped as torn */
};

/* A checkpoint object kept for the engine's life: values point into it. */
struct eng_map {
	const uint8_t *data;
	size_t len;
	void *cookie; /* backend_map cookie; NULL when data is malloc'd */
	/*
	 * A mapped values object: its pages are read only when a value is,
	 * so it is not counted in mem_bytes.
	 */
	bool lazy;
	char name[ENG_NAME_MAX]; /* the object's key, for error messages */
};

struct engine {
	struct backend *be;
	uint32_t self; /* our index in writers */
	/* our id; writers may grow (realloc) under commit_lock alone */
	char self_id[ENG_WRITER_MAX + 1];
	bool read_only;
	unsigned ckpt_every;
	int broken; /* memory no longer matches the store: commits refused */

	pthread_rwlock_t lock;	     /* state: readers vs apply */
	pthread_mutex_t commit_lock; /* one committer / checkpointer */

	/*
	 * Blocks that engine_ref holders use (engine_ref.c).  pin_mu is
	 * taken inside the state lock (pinning, under the read lock;
	 * eng_pin_orphan, under the write lock) or alone (release).
	 */
	pthread_mutex_t pin_mu;
	struct eng_pin *pins;
	_Atomic size_t npins;

	/*
	 * Large checkpoint values that lazy refs read (engine_ref.c): which
	 * of their chunks have been checked, kept for the engine's life as
	 * the mappings are.  lazy_mu guards the list, not the bits.
	 */
	pthread_mutex_t lazy_mu;
	struct eng_lazy *lazies;

	struct eng_coll **colls;  /* sorted by name */
	struct eng_coll **corder; /* the same, in iteration order */
	size_t ncolls;
	size_t colls_cap;
	bool corder_dirty; /* corder needs sorting (eng_settle) */

	struct eng_writer *writers;
	size_t nwriters;
	size_t writers_cap;

	struct eng_map *maps;
	size_t nmaps;
	size_t maps_cap;

	char (*ckpts)[ENG_CKPT_ID_MAX + 1]; /* ids loaded or written */
	size_t nckpts;
	size_t ckpts_cap;

	uint64_t hlc; /* greatest HLC seen or issued */
	uint64_t next_seq;
	uint64_t heap;	    /* bytes of owned keys, values, rows */
	uint64_t conflicts; /* replayed records skipped: vector dim clash */

	engine_observe_fn *obs;
	void *obs_arg;

	struct eng_ext *exts; /* copied from engine_opts */
	size_t n_exts;

	uint64_t segments; /* known segments not covered by a checkpoint */
	uint64_t segment_bytes;
	uint64_t checkpoint_bytes;
	uint64_t commits;
	uint64_t unlogged; /* commits without a segment since the checkpoint */
	uint64_t last_commit_hlc;
};

struct eng_ext {
	char name[ENG_EXT_MAX + 1];
	struct engine_ext ext; /* ext.name points at name above */
};

/*
 * A block kept alive for engine_ref holders: an owned key+value block
 * (ENG_OWN) that a ref points into, or a vector copied for a ref.  refs
 * counts the refs; `orphan`: the engine no longer uses the block (the key
 * was overwritten, deleted, ...), so the last release frees it.
 */
struct eng_pin {
	const void *block;
	size_t refs;
	bool orphan;
	struct eng_pin *prev, *next;
};

/*
 * Called where the engine frees an owned block: if a ref holds it, marks
 * it orphaned and returns true (the caller must not free it); else false.
 * Caller holds the write lock (or is opening or closing).
 */
bool eng_pin_orphan(struct engine *e, const void *block);
/* Frees every pin and orphaned block (engine_close). */
void eng_pins_free(struct engine *e);
/* Frees the chunk state of lazy refs (engine_close). */
void eng_lazies_free(struct engine *e);

/* The live entry of coll/key (and its collection in *cp), or NULL. */
const struct eng_ent *eng_live(const struct engine *e, const char *coll,
			       const char *key, const struct eng_coll **cp);

/*
 * The live entry of coll/key in *sp and its value, checked (see
 * eng_value_read).  Returns 0, -ENOENT or -EIO.  Caller holds the read
 * lock.
 */
int eng_live_value(const struct engine *e, const char *coll, const char *key,
		   const struct eng_ent **sp, const void **data, size_t *len);

/* Flags for the apply functions. */
/*
 * ENG_STABLE: the key is an entry's in a loaded keys object and the value
 * the one it describes (both live as long as the engine: no copy; the
 * entry gets ENG_CKV).
 */
#define ENG_STABLE     1u
#define ENG_OBSERVE    2u  /* report the change to the observer */
#define ENG_ADOPT      4u  /* VEC: `row` already holds the data (loading) */
#define ENG_OBS_CKPT   8u  /* observer flag ENGINE_OBS_CHECKPOINT */
#define ENG_OBS_REMOTE 16u /* observer flag ENGINE_OBS_REMOTE */

uint64_t eng_hlc_next(struct engine *e);
void eng_hlc_see(struct engine *e, uint64_t hlc);

/* Writer index by id, added if new; ENG_NO_WRITER on out of memory. */
uint32_t eng_writer_get(struct engine *e, const char *id);
/* Orders two stamps: (hlc, writer id). */
int eng_stamp_cmp(const struct engine *e, uint64_t h1, uint32_t w1, uint64_t h2,
		  uint32_t w2);
/* Orders two creation stamps: (hlc, writer id, idx). */
int eng_cstamp_cmp(const struct engine *e, const struct eng_cstamp *a,
		   const struct eng_cstamp *b);

struct eng_coll *eng_coll_find(const struct engine *e, const char *name);
struct eng_coll *eng_coll_get(struct engine *e, const char *name);
struct eng_ent *eng_ent_find(const struct eng_coll *c, const char *key);
/*
 * eng_ent_find for keys[0..n) at once (n at most ENG_FIND_MANY), the
 * memory of each step asked for ahead of the next (index slots, then
 * entries, then their keys and vector rows), so that the misses of
 * different keys overlap instead of following one another.
 */
#define ENG_FIND_MANY 64
void eng_ent_find_many(const struct eng_coll *c, const char *const *keys,
		       size_t n, struct eng_ent **out);
/* Makes room for n more entries; entry pointers are then invalid. */
int eng_coll_reserve(struct engine *e, struct eng_coll *c, size_t n);
/*
 * Restores iteration order after applying: sorts collections whose
 * entries arrived out of creation order (late segments, merged
 * checkpoints) and the collection order.  Caller holds the write lock.
 */
void eng_settle(struct engine *e);
const float *eng_vec_row(const struct eng_coll *c, size_t row);
void eng_colls_free(struct engine *e);

/*
 * Apply one record with stamp (hlc, w) if it is not older than the key's
 * stamp and the collection's last drop.  Return 1 if applied, 0 if
 * skipped as stale (or, for a vector, because its dim clashes), or -ENOMEM.
 * A put carries the key's creation stamp `cs`: the key moves to its place
 * in order when that differs from what it had.  For ENG_ADOPT, `row` is
 * the global row already holding the vector; when the record is skipped
 * the row is left dead.
 */
int eng_apply_put(struct engine *e, struct eng_coll *c, const char *key,
		  enum engine_type type, const void *val, size_t len,
		  uint64_t hlc, uint32_t w, const struct eng_cstamp *cs,
		  unsigned flags, size_t row);
int eng_apply_del(struct engine *e, struct eng_coll *c, const char *key,
		  uint64_t hlc, uint32_t w, unsigned flags);
int eng_apply_drop(struct engine *e, struct eng_coll *c, uint64_t hlc,
		   uint32_t w, unsigned flags);
/* A FIRST put stamped cs: the collection takes the latest such place. */
void eng_coll_first(struct engine *e, struct eng_coll *c,
		    const struct eng_cstamp *cs);
/* Forgets tombstones stamped before `hlc` (after a checkpoint). */
void eng_purge_tombs(struct engine *e, uint64_t hlc);

/*
 * Installs a read-only block of `rows` vectors (from the checkpoint vec
 * object `obj` of obj_len bytes and xxh3 `sum`, checked lazily) as the
 * collection's first block; the caller then adopts rows with ENG_ADOPT.
 * Only valid while the collection holds no vector block.
 */
int eng_vec_install(struct engine *e, struct eng_coll *c, const float *data,
		    size_t rows, uint32_t dim, const uint8_t *obj,
		    size_t obj_len, uint64_t sum);

/*
 * Replaces a collection's vector blocks by the vec object `buf` just built
 * from them (live vector entries in creation order, as eng_vec_build
 * writes them): rows are then used in place; the caller keeps buf alive
 * with eng_map_keep.  Mapped blocks that nothing uses any more are
 * released (the caller holds the write lock: no reader is using them).
 */
int eng_vec_compact(struct engine *e, struct eng_coll *c, const uint8_t *buf,
		    size_t len);

/*
 * The value of a live entry (a row for vectors) in *data and *len.  A
 * value from a checkpoint (ENG_CKV) is first checked against the xxh3 its
 * keys entry records.  Returns 0, or -EIO with engine_last_error() set if
 * it does not match (the bytes were damaged after they were written).
 */
int eng_value_read(const struct engine *e, const struct eng_coll *c,
		   const struct eng_ent *s, const void **data, size_t *len);
/* Key of the kept object that contains p, or "a checkpoint object". */
const char *eng_map_name(const struct engine *e, const void *p);
/*
 * Checks a value in a kept object against its keys entry's `sum`: a VEC
 * row's xxh3, or eng_val_intact for JSON/BLOB.  Values objects are mapped
 * MADV_RANDOM, so that a 2 KB value costs a page read and not megabytes;
 * a large value would then be read a page per fault (35 MiB/s here for
 * 512 MiB).  One of at least ENG_READ_AHEAD_MIN bytes in a mapped values
 * object is read with MADV_SEQUENTIAL advice instead.
 */
#define ENG_READ_AHEAD_MIN (256u << 10)
bool eng_value_ok(const struct engine *e, const void *data, size_t len,
		  bool vec, uint64_t sum);
/* True if [p, p + len) lies in a kept mapped values object. */
bool eng_map_lazy(const struct engine *e, const uint8_t *p, size_t len);
/* Advice for the pages of [p, p + len); errors ignored (it is advice). */
void eng_advise_range(const void *p, size_t len, int advice);

/*
 * Calls the observer with every live key (after loading checkpoints), in
 * iteration order, flagged ENGINE_OBS_CHECKPOINT.
 */
void eng_observe_all(struct engine *e);

/* --- loading and replay (engine_load.c) ----------------------------------- */

/*
 * Remembers a mapped/read checkpoint object, named `name` (its key), for
 * the engine's life; `lazy`: a mapped values object (see struct eng_map).
 */
int eng_map_keep(struct engine *e, const uint8_t *data, size_t len,
		 void *cookie, const char *name, bool lazy);
/* Releases the kept object that contains p (a vector block). */
void eng_map_drop(struct engine *e, const void *p);
/* Reads or maps a whole object; *cookie NULL means free(*data). */
int eng_obj_load(struct backend *be, const char *key, const uint8_t **data,
		 size_t *len, void **cookie);
void eng_obj_release(struct backend *be, const uint8_t *data, void *cookie);

/*
 * Brings the engine up to date with the store: merges checkpoints it has
 * not covered and replays new segments.  `opening`: the engine is fresh
 * (observer sees the checkpoint's live keys, then replayed records).
 * Caller holds commit_lock (or is opening).
 */
int eng_sync(struct engine *e, bool opening);
/* Removes every object of a checkpoint, manifest first. */
int eng_ckpt_delete(struct engine *e, const char *id);
bool eng_ckpt_known(const struct engine *e, const char *id);
int eng_ckpt_remember(struct engine *e, const char *id);

/* A checkpoint object as read (data NULL: not at hand). */
struct eng_loaded {
	const uint8_t *data;
	size_t len;
	void *cookie; /* eng_obj_load's */
};

/*
 * Checks a keys object's structure against manifest m: names, stamps,
 * values inside the values object the manifest lists, vector rows
 * matching its vec objects.  Reads no value.  Returns 0 or -EUCLEAN
 * (-EPROTO for another format version) with *why set.
 */
int eng_keys_check(const uint8_t *p, size_t n, const struct eng_manifest *m,
		   const char **why);
/* Checks the header of a values / vec object (manifest entry o). */
int eng_vals_check(const uint8_t *p, size_t n, const char **why);
int eng_vec_check(const uint8_t *p, size_t n, const struct eng_mobj *o,
		  const char **why);

/*
 * Checks every value of a checkpoint (whose keys object, objs[ki], has
 * passed eng_keys_check) against the xxh3 its keys entry records, in the
 * objects of objs (manifest order) that are at hand.  Calls bad(arg,
 * object index, collection, key) for each that does not match.  Returns
 * the number of bad values.
 */
typedef void eng_bad_value_fn(void *arg, size_t obj, const char *coll,
			      const char *key);
size_t eng_values_verify(const struct eng_manifest *m,
			 const struct eng_loaded *objs, size_t ki,
			 eng_bad_value_fn *bad, void *arg);

/* 0 if s is a valid extension name ([a-z0-9_]{1,32}). */
int eng_ext_name_valid(const char *s);

/* --- checkpoints (engine_ckpt.c) ------------------------------------------ */

/* Writes a checkpoint; caller holds commit_lock. */
int eng_checkpoint_locked(struct engine *e);

#endif
