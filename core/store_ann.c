/* store_ann.c - HNSW graphs of large vector namespaces (see store_ann.h). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/store_ann.h"
#include "core/vec_hnsw.h"
#include "core/vec_int.h"

#define ANN_PREFIX	"vector_store/"
#define ANN_MAGIC	"LANN\0\0\0\1"
#define ANN_MAGIC_LEN	8
#define ANN_SEED	0x6c6f6465686e7377ULL
#define ANN_REBUILD_MIN 64 /* deleted nodes before a rebuild is considered */
/* Queued rows without a copy a query may read from the engine. */
#define ANN_NOVEC_MAX 4096

/* --- key -> node (>= 0) or queued row -(i + 1) ----------------------------- */

struct ann_ent {
	struct ann_ent *next;
	int64_t val;
	char key[];
};

struct ann_map {
	struct ann_ent **b;
	size_t nb, n;
};

static size_t ann_hash(const char *key)
{
	return (size_t)XXH3_64bits(key, strlen(key));
}

static struct ann_ent **ann_slot(const struct ann_map *m, const char *key)
{
	struct ann_ent **p;

	if (!m->nb)
		return NULL;
	for (p = &m->b[ann_hash(key) & (m->nb - 1)]; *p; p = &(*p)->next)
		if (strcmp((*p)->key, key) == 0)
			return p;
	return p;
}

static int ann_map_get(const struct ann_map *m, const char *key, int64_t *val)
{
	struct ann_ent **p = ann_slot(m, key);

	if (!p || !*p)
		return 0;
	*val = (*p)->val;
	return 1;
}

static int ann_map_put(struct ann_map *m, const char *key, int64_t val)
{
	struct ann_ent **p, *e;
	size_t kl;

	if (m->n + 1 > m->nb) {
		size_t nb = m->nb ? m->nb * 2 : 1024, i;
		struct ann_ent **b = calloc(nb, sizeof(*b));

		if (!b)
			return -ENOMEM;
		for (i = 0; i < m->nb; i++)
			while ((e = m->b[i])) {
				m->b[i] = e->next;
				e->next = b[ann_hash(e->key) & (nb - 1)];
				b[ann_hash(e->key) & (nb - 1)] = e;
			}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	p = ann_slot(m, key);
	if (*p) {
		(*p)->val = val;
		return 0;
	}
	kl = strlen(key) + 1;
	e = malloc(sizeof(*e) + kl);
	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->val = val;
	memcpy(e->key, key, kl);
	*p = e;
	m->n++;
	return 0;
}

static void ann_map_del(struct ann_map *m, const char *key)
{
	struct ann_ent **p = ann_slot(m, key), *e;

	if (!p || !*p)
		return;
	e = *p;
	*p = e->next;
	free(e);
	m->n--;
}

static void ann_map_free(struct ann_map *m)
{
	struct ann_ent *e;
	size_t i;

	for (i = 0; i < m->nb; i++)
		while ((e = m->b[i])) {
			m->b[i] = e->next;
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* --- namespaces ------------------------------------------------------------ */

struct ann_pend {
	char *key;
	float *vec;
	int dead; /* superseded or deleted (or linked) */
	int busy; /* the builder is linking it: it frees it */
};

struct ann_ns {
	struct ann_ns *next;
	char *coll;
	struct hnsw *g; /* NULL: counted only */
	int loaded;	/* g came from the checkpoint, rows being bound */
	int bad;	/* a loaded g that does not match */
	int check;	/* the builder should compare the count to threshold */
	struct ann_map map;
	struct ann_pend *pend;
	size_t npend, cap_pend, head, pend_live;
	size_t pend_novec; /* live queued rows without a copy (a fill) */
};

struct store_ann {
	pthread_rwlock_t lock;
	pthread_mutex_t mu; /* the queues, gen, idle, stop */
	pthread_cond_t cv;
	pthread_cond_t idle_cv;
	uint64_t gen; /* bumped for new work */
	int idle, stop, thread_on, started;
	int no_build; /* store_ann_no_build: no builder thread */
	pthread_t thread;
	struct engine *eng;
	size_t threshold;
	struct ann_ns *ns;
	uint64_t loaded, built, discarded;
	atomic_uint_fast64_t searches;
	/*
	 * Rows linked since the graphs were last saved in a checkpoint, and
	 * the checkpoints the builder asked for (ann_should_save).
	 */
	atomic_uint_fast64_t unsaved;
	uint64_t saves, save_failures; /* mu */
};

static struct ann_ns *ann_find(struct store_ann *a, const char *coll)
{
	struct ann_ns *ns;

	for (ns = a->ns; ns; ns = ns->next)
		if (strcmp(ns->coll, coll) == 0)
			return ns;
	return NULL;
}

static struct ann_ns *ann_add_ns(struct store_ann *a, const char *coll)
{
	struct ann_ns *ns = calloc(1, sizeof(*ns));

	if (!ns)
		return NULL;
	ns->coll = strdup(coll);
	if (!ns->coll) {
		free(ns);
		return NULL;
	}
	ns->next = a->ns;
	a->ns = ns;
	return ns;
}

/* Drops the graph and queue of ns (exclusive lock held). */
static void ann_ns_clear(struct ann_ns *ns)
{
	size_t i;

	for (i = 0; i < ns->npend; i++) {
		free(ns->pend[i].key);
		free(ns->pend[i].vec);
	}
	free(ns->pend);
	ns->pend = NULL;
	ns->npend = ns->cap_pend = ns->head = ns->pend_live = 0;
	ns->pend_novec = 0;
	ann_map_free(&ns->map);
	hnsw_free(ns->g);
	ns->g = NULL;
	ns->loaded = ns->bad = 0;
}

/* New work for the builder (mu held). */
static void ann_kick(struct store_ann *a)
{
	a->gen++;
	a->idle = 0;
	pthread_cond_signal(&a->cv);
}

static int ann_finite(const float *v, uint32_t dim)
{
	uint32_t i;

	for (i = 0; i < dim; i++)
		if (!isfinite(v[i]))
			return 0;
	return 1;
}

/*
 * The row of `key` is now vec (NULL: deleted).  Exclusive lock held.  A
 * row with NaN or Inf is dropped, as the exact scan skips it.
 */
static int ann_apply(struct store_ann *a, struct ann_ns *ns, const char *key,
		     const float *vec, int key_only)
{
	uint32_t dim = hnsw_dim(ns->g);
	struct ann_pend *p;
	int64_t v;

	if (ann_map_get(&ns->map, key, &v)) {
		if (v >= 0) {
			size_t del;

			hnsw_set_state(ns->g, (uint32_t)v, HNSW_DELETED);
			del = hnsw_deleted(ns->g);
			if (del >= ANN_REBUILD_MIN &&
			    del * 2 > hnsw_size(ns->g)) {
				/* time to rebuild: wake the builder */
				pthread_mutex_lock(&a->mu);
				ann_kick(a);
				pthread_mutex_unlock(&a->mu);
			}
		} else {
			p = &ns->pend[-v - 1];
			p->dead = 1;
			ns->pend_live--;
			ns->pend_novec -= !p->vec;
			if (!p->busy) {
				free(p->vec);
				p->vec = NULL;
			}
		}
		ann_map_del(&ns->map, key);
	}
	if (!vec || (!key_only && !ann_finite(vec, dim)))
		return 0;
	if (ns->npend == ns->cap_pend) {
		size_t cap = ns->cap_pend ? ns->cap_pend * 2 : 256;

		p = realloc(ns->pend, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		ns->pend = p;
		ns->cap_pend = cap;
	}
	p = &ns->pend[ns->npend];
	memset(p, 0, sizeof(*p));
	p->key = strdup(key);
	/*
	 * A fill queues keys only (the builder reads each row from the
	 * engine when it links it): no copy of a whole namespace.
	 */
	p->vec = key_only ? NULL : malloc(dim * sizeof(float));
	if (!p->key || (!key_only && !p->vec) ||
	    ann_map_put(&ns->map, key, -(int64_t)ns->npend - 1)) {
		free(p->key);
		free(p->vec);
		return -ENOMEM;
	}
	if (!key_only)
		memcpy(p->vec, vec, dim * sizeof(float));
	ns->npend++;
	ns->pend_live++;
	ns->pend_novec += key_only;
	pthread_mutex_lock(&a->mu);
	ann_kick(a);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static int ann_is_vec_coll(const char *coll)
{
	return strncmp(coll, ANN_PREFIX, sizeof(ANN_PREFIX) - 1) == 0;
}

void store_ann_observe(struct store_ann *a, const char *coll, const char *key,
		       enum engine_type type, const void *data, size_t len,
		       unsigned flags)
{
	struct ann_ns *ns;
	int64_t v;

	if (!a || !a->threshold || !ann_is_vec_coll(coll))
		return;
	if (type != ENGINE_VEC && type != ENGINE_NONE)
		return;
	pthread_rwlock_wrlock(&a->lock);
	ns = ann_find(a, coll);
	if (!ns && type == ENGINE_VEC)
		ns = ann_add_ns(a, coll);
	if (!ns || ns->bad)
		goto out;
	if (!ns->g) {
		if (type == ENGINE_VEC && !ns->check) {
			ns->check = 1;
			pthread_mutex_lock(&a->mu);
			ann_kick(a);
			pthread_mutex_unlock(&a->mu);
		}
		goto out;
	}
	if (type == ENGINE_VEC && len != hnsw_dim(ns->g) * sizeof(float)) {
		/* another dimension: the graph cannot hold it */
		ns->bad = 1;
		goto out;
	}
	if ((flags & ENGINE_OBS_CHECKPOINT) && ns->loaded &&
	    type == ENGINE_VEC && ann_map_get(&ns->map, key, &v) && v >= 0) {
		if (hnsw_bind(ns->g, (uint32_t)v, data))
			ns->bad = 1;
		goto out;
	}
	/*
	 * A row of the checkpoint that its graph lacks (one saved while a
	 * build was under way) is queued by key, as a fill does: the engine
	 * keeps the row, and a copy of each would cost the vectors' size
	 * again (1.5 GB at 1M x 384).
	 */
	if (ann_apply(a, ns, key, type == ENGINE_VEC ? data : NULL,
		      (flags & ENGINE_OBS_CHECKPOINT) != 0))
		ns->bad = 1; /* out of memory: rebuilt later from the engine */
out:
	if (ns && ns->bad && a->started) {
		pthread_mutex_lock(&a->mu);
		ann_kick(a);
		pthread_mutex_unlock(&a->mu);
	}
	pthread_rwlock_unlock(&a->lock);
}

/* --- builder ----------------------------------------------------------------- */

struct ann_fill {
	struct store_ann *a;
	const char *coll;
};

/* Under the engine's read lock: make the graph and queue every row. */
static int ann_fill(void *arg, const struct engine_vecs *v)
{
	struct ann_fill *f = arg;
	struct hnsw_params p = { .dim = v->dim,
				 .m = HNSW_M_DEFAULT,
				 .ef_construction = HNSW_EFC_DEFAULT,
				 .seed = ANN_SEED };
	struct ann_ns *ns;
	size_t b, i;
	int rc = 0;

	pthread_rwlock_wrlock(&f->a->lock);
	ns = ann_find(f->a, f->coll);
	if (!ns)
		ns = ann_add_ns(f->a, f->coll);
	if (!ns) {
		rc = -ENOMEM;
		goto out;
	}
	if (ns->g && !ns->bad)
		goto out;
	ann_ns_clear(ns);
	ns->check = 0;
	rc = hnsw_new(&p, &ns->g);
	if (rc)
		goto out;
	f->a->built++;
	for (b = 0; b < v->nblocks && !rc; b++) {
		const struct engine_vec_block *blk = &v->blocks[b];

		for (i = 0; blk->keys && i < blk->n && !rc; i++)
			if (blk->keys[i])
				rc = ann_apply(f->a, ns, blk->keys[i],
					       blk->data + i * (size_t)v->dim,
					       1);
	}
	if (rc)
		ann_ns_clear(ns);
out:
	pthread_rwlock_unlock(&f->a->lock);
	return rc;
}

/* Links the next queued row of ns (shared lock held); 1 if one was. */
/* A row the builder read from the engine for a key-only queue entry. */
struct ann_row {
	char *coll, *key; /* NULL: none */
	float *row;	  /* NULL: the key has no row (deleted meanwhile) */
	size_t len;
};

static void ann_row_clear(struct ann_row *r)
{
	free(r->coll);
	free(r->key);
	free(r->row);
	memset(r, 0, sizeof(*r));
}

/*
 * Links the next queued row of ns (shared lock held).  Returns 1 if one
 * was linked or dropped, 0 if the queue is empty, 2 if the next one has
 * no copy and r does not hold its row: then r->coll and r->key name it,
 * for the caller to read without the lock (the engine's lock comes
 * first).
 */
static int ann_link_one(struct store_ann *a, struct ann_ns *ns,
			struct ann_row *r)
{
	struct ann_pend *p;
	const float *vec;
	uint32_t id, dim = hnsw_dim(ns->g);
	size_t i;
	int rc;

	pthread_mutex_lock(&a->mu);
	while (ns->head < ns->npend && ns->pend[ns->head].dead) {
		free(ns->pend[ns->head].key);
		ns->pend[ns->head].key = NULL;
		ns->head++;
	}
	if (ns->head == ns->npend) {
		ns->head = ns->npend = 0;
		pthread_mutex_unlock(&a->mu);
		return 0;
	}
	i = ns->head;
	p = &ns->pend[i];
	vec = p->vec;
	if (!vec && !(r->key && strcmp(r->key, p->key) == 0 &&
		      strcmp(r->coll, ns->coll) == 0)) {
		ann_row_clear(r);
		r->key = strdup(p->key);
		r->coll = strdup(ns->coll);
		pthread_mutex_unlock(&a->mu);
		return r->key && r->coll ? 2 : 0;
	}
	if (!vec) {
		/* not dead, so the engine still holds the row read */
		if (!r->row || r->len != dim * sizeof(float) ||
		    !ann_finite(r->row, dim)) {
			p->dead = 1;
			ns->pend_live--;
			ns->pend_novec--;
			ann_map_del(&ns->map, p->key);
			pthread_mutex_unlock(&a->mu);
			ann_row_clear(r);
			return 1;
		}
		vec = r->row;
	}
	p->busy = 1;
	pthread_mutex_unlock(&a->mu);

	/* the observer waits for the exclusive lock: p stays put */
	rc = hnsw_add(ns->g, vec, p->key, HNSW_HIDDEN, &id);

	pthread_mutex_lock(&a->mu);
	if (!rc && !p->dead) {
		if (ann_map_put(&ns->map, p->key, id) == 0) {
			hnsw_set_state(ns->g, id, HNSW_LIVE);
			atomic_fetch_add(&a->unsaved, 1);
			p->dead = 1;
			ns->pend_live--;
			ns->pend_novec -= !p->vec;
		} else {
			hnsw_set_state(ns->g, id, HNSW_DELETED);
		}
	} else if (!rc) {
		hnsw_set_state(ns->g, id, HNSW_DELETED);
	}
	if (p->dead) {
		free(p->vec);
		free(p->key);
		p->vec = NULL;
		p->key = NULL;
		ns->head = i + 1;
	}
	p->busy = 0;
	pthread_mutex_unlock(&a->mu);
	if (vec == r->row)
		ann_row_clear(r);
	return rc ? 0 : 1;
}

enum ann_job { ANN_NONE, ANN_FILL, ANN_DROP };

/*
 * Whether the builder, idle, should have the graphs saved: they hold at
 * least `threshold` rows linked since the last save, and those are at
 * least half of their live nodes.  A graph built in the background is
 * otherwise saved only by the next checkpoint, which a mount writes after
 * checkpoint_segments commits and a store that is only read never
 * writes: each open would build it again (20 minutes and more at
 * 1,000,000 x 384).  Growth by less than half waits for the next
 * checkpoint, as every other change does: a checkpoint rewrites the
 * whole store.
 */
static int ann_should_save(struct store_ann *a)
{
	uint64_t unsaved = atomic_load(&a->unsaved), live = 0;
	struct ann_ns *ns;

	if (!a->eng || unsaved < a->threshold)
		return 0;
	pthread_rwlock_rdlock(&a->lock);
	for (ns = a->ns; ns; ns = ns->next)
		if (ns->g && !ns->bad && !ns->loaded)
			live += hnsw_size(ns->g) - hnsw_deleted(ns->g);
	pthread_rwlock_unlock(&a->lock);
	return unsaved * 2 >= live;
}

/* Finds a job other than linking (shared lock held); copies coll. */
static enum ann_job ann_next_job(struct store_ann *a, char **coll)
{
	struct ann_ns *ns;

	for (ns = a->ns; ns; ns = ns->next) {
		size_t size, del;

		if (ns->bad) {
			*coll = strdup(ns->coll);
			return *coll ? ANN_DROP : ANN_NONE;
		}
		if (!ns->g && ns->check) {
			*coll = strdup(ns->coll);
			return *coll ? ANN_FILL : ANN_NONE;
		}
		if (!ns->g)
			continue;
		size = hnsw_size(ns->g);
		del = hnsw_deleted(ns->g);
		/* not while rows are queued: a young graph is mostly queue */
		if (del >= ANN_REBUILD_MIN && del * 2 > size &&
		    ns->pend_live == 0) {
			*coll = strdup(ns->coll);
			return *coll ? ANN_DROP : ANN_NONE;
		}
	}
	return ANN_NONE;
}

static void *ann_builder(void *arg)
{
	struct store_ann *a = arg;
	struct ann_row row = { 0 };

	for (;;) {
		enum ann_job job;
		struct ann_ns *ns;
		char *coll = NULL;
		uint64_t gen;
		int linked = 0;

		pthread_mutex_lock(&a->mu);
		gen = a->gen;
		if (a->stop) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		pthread_mutex_unlock(&a->mu);

		pthread_rwlock_rdlock(&a->lock);
		job = ann_next_job(a, &coll);
		if (job == ANN_NONE)
			for (ns = a->ns; ns && !linked; ns = ns->next)
				if (ns->g && !ns->bad && !ns->loaded)
					linked = ann_link_one(a, ns, &row);
		pthread_rwlock_unlock(&a->lock);
		if (linked == 2) {
			enum engine_type type;
			void *data = NULL;
			size_t len = 0;

			/* no ann lock held: the engine's lock comes first */
			if (engine_get(a->eng, row.coll, row.key, &type, &data,
				       &len) == 0 &&
			    type == ENGINE_VEC) {
				row.row = data;
				row.len = len;
			} else {
				free(data);
			}
			continue;
		}

		if (job == ANN_DROP) {
			pthread_rwlock_wrlock(&a->lock);
			ns = ann_find(a, coll);
			if (ns) {
				ann_ns_clear(ns);
				ns->check = 1;
			}
			pthread_rwlock_unlock(&a->lock);
		} else if (job == ANN_FILL) {
			struct ann_fill f = { a, coll };
			int rc = 0;

			if (engine_count(a->eng, coll) >= a->threshold)
				rc = engine_with_vecs(a->eng, coll, ann_fill,
						      &f);
			pthread_rwlock_wrlock(&a->lock);
			ns = ann_find(a, coll);
			if (ns && !ns->g)
				ns->check = 0;
			(void)rc; /* on failure the next put asks again */
			pthread_rwlock_unlock(&a->lock);
		}
		free(coll);
		if (job != ANN_NONE || linked)
			continue;
		if (ann_should_save(a)) {
			/*
			 * No ann lock held: the checkpoint takes the engine's
			 * locks, then saves the graphs (store_ann_ext_save).
			 * A failure (a read-only store, a backend error) is
			 * counted, not retried until as many rows are linked
			 * again; the graphs are then saved by the next
			 * checkpoint anyone writes.
			 */
			int rc = engine_checkpoint(a->eng);

			atomic_store(&a->unsaved, 0);
			pthread_mutex_lock(&a->mu);
			if (rc)
				a->save_failures++;
			else
				a->saves++;
			pthread_mutex_unlock(&a->mu);
			continue;
		}

		pthread_mutex_lock(&a->mu);
		while (!a->stop && a->gen == gen) {
			a->idle = 1;
			pthread_cond_broadcast(&a->idle_cv);
			pthread_cond_wait(&a->cv, &a->mu);
		}
		pthread_mutex_unlock(&a->mu);
	}
	ann_row_clear(&row);
	return NULL;
}

/* --- lifetime ---------------------------------------------------------------- */

int store_ann_new(size_t threshold, struct store_ann **out)
{
	pthread_rwlockattr_t attr;
	struct store_ann *a;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->threshold = threshold;
	pthread_rwlockattr_init(&attr);
	/* a stream of queries must not hold commits back */
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_cond_init(&a->idle_cv, NULL);
	a->idle = 1;
	*out = a;
	return 0;
}

int store_ann_start(struct store_ann *a, struct engine *eng)
{
	struct ann_ns *ns;
	int rc = 0;

	pthread_rwlock_wrlock(&a->lock);
	for (ns = a->ns; ns; ns = ns->next) {
		if (!ns->loaded)
			continue;
		if (ns->bad || hnsw_bound(ns->g)) {
			/* not the checkpoint's vectors: never search it */
			ann_ns_clear(ns);
			ns->check = 1;
			a->discarded++;
			continue;
		}
		ns->loaded = 0;
		a->loaded++;
	}
	a->eng = eng;
	a->started = 1;
	pthread_rwlock_unlock(&a->lock);
	if (eng && a->threshold && !a->no_build) {
		pthread_mutex_lock(&a->mu);
		ann_kick(a);
		pthread_mutex_unlock(&a->mu);
		rc = -pthread_create(&a->thread, NULL, ann_builder, a);
		a->thread_on = rc == 0;
	}
	if (!a->thread_on)
		a->idle = 1;
	return rc;
}

void store_ann_no_build(struct store_ann *a)
{
	a->no_build = 1;
}

void store_ann_free(struct store_ann *a)
{
	struct ann_ns *ns;

	if (!a)
		return;
	if (a->thread_on) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	while ((ns = a->ns)) {
		a->ns = ns->next;
		ann_ns_clear(ns);
		free(ns->coll);
		free(ns);
	}
	pthread_cond_destroy(&a->idle_cv);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

void store_ann_wait(struct store_ann *a)
{
	if (!a || !a->thread_on)
		return;
	pthread_mutex_lock(&a->mu);
	while (!a->idle && !a->stop)
		pthread_cond_wait(&a->idle_cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

void store_ann_get_stats(struct store_ann *a, struct store_ann_stats *st)
{
	struct ann_ns *ns;

	memset(st, 0, sizeof(*st));
	if (!a)
		return;
	pthread_rwlock_rdlock(&a->lock);
	for (ns = a->ns; ns; ns = ns->next) {
		if (!ns->g)
			continue;
		st->graphs++;
		st->nodes += hnsw_size(ns->g);
		st->deleted += hnsw_deleted(ns->g);
		pthread_mutex_lock(&a->mu);
		st->pending += ns->pend_live;
		st->pending_copies += ns->pend_live - ns->pend_novec;
		pthread_mutex_unlock(&a->mu);
	}
	st->loaded = a->loaded;
	st->built = a->built;
	st->discarded = a->discarded;
	st->searches = atomic_load(&a->searches);
	pthread_mutex_lock(&a->mu);
	st->saves = a->saves;
	st->save_failures = a->save_failures;
	pthread_mutex_unlock(&a->mu);
	pthread_rwlock_unlock(&a->lock);
}

/* --- checkpoint extension ------------------------------------------------- */

struct ann_count {
	uint64_t n;
};

static int ann_count_emit(void *ctx, const void *data, size_t len)
{
	((struct ann_count *)ctx)->n += len;
	return 0;
}

int store_ann_ext_save(void *arg, engine_ext_emit_fn *emit, void *ctx)
{
	struct store_ann *a = arg;
	struct ann_ns *ns;
	uint32_t count = 0;
	int rc;

	/* exclusive: no row is being linked, the graphs are still */
	pthread_rwlock_wrlock(&a->lock);
	for (ns = a->ns; ns; ns = ns->next)
		count += ns->g && !ns->bad && !ns->loaded;
	rc = emit(ctx, ANN_MAGIC, ANN_MAGIC_LEN);
	if (!rc)
		rc = emit(ctx, &count, sizeof(count));
	for (ns = a->ns; ns && !rc; ns = ns->next) {
		struct ann_count c = { 0 };
		uint32_t nl = (uint32_t)strlen(ns->coll);

		if (!ns->g || ns->bad || ns->loaded)
			continue;
		rc = hnsw_save(ns->g, ann_count_emit, &c);
		if (!rc)
			rc = emit(ctx, &nl, sizeof(nl));
		if (!rc)
			rc = emit(ctx, ns->coll, nl);
		if (!rc)
			rc = emit(ctx, &c.n, sizeof(c.n));
		if (!rc)
			rc = hnsw_save(ns->g, emit, ctx);
	}
	pthread_rwlock_unlock(&a->lock);
	return rc;
}

/* Indexes the live nodes of a loaded graph by key. */
static int ann_map_graph(struct ann_ns *ns)
{
	size_t n = hnsw_size(ns->g), id;
	int rc = 0;

	for (id = 0; id < n && !rc; id++)
		if (hnsw_state(ns->g, (uint32_t)id) == HNSW_LIVE) {
			int64_t old;

			/* two live nodes of one key: not a graph we wrote */
			if (ann_map_get(&ns->map, hnsw_key(ns->g, (uint32_t)id),
					&old))
				return -EINVAL;
			rc = ann_map_put(&ns->map,
					 hnsw_key(ns->g, (uint32_t)id),
					 (int64_t)id);
		}
	return rc;
}

int store_ann_ext_load(void *arg, const void *data, size_t len)
{
	struct store_ann *a = arg;
	const unsigned char *p = data, *end = p + len;
	uint32_t count, i;
	int rc = 0;

	if (!a->threshold)
		return -EINVAL; /* graphs are off: rebuilt if turned on */
	if (len < ANN_MAGIC_LEN + 4 || memcmp(p, ANN_MAGIC, ANN_MAGIC_LEN))
		return -EINVAL;
	memcpy(&count, p + ANN_MAGIC_LEN, 4);
	p += ANN_MAGIC_LEN + 4;
	pthread_rwlock_wrlock(&a->lock);
	for (i = 0; i < count && !rc; i++) {
		struct ann_ns *ns;
		uint32_t nl;
		uint64_t gl;
		size_t used;
		char *coll;

		rc = -EINVAL;
		if ((size_t)(end - p) < 4)
			break;
		memcpy(&nl, p, 4);
		p += 4;
		if (nl == 0 || nl > 4096 || (size_t)(end - p) < nl + 8)
			break;
		coll = strndup((const char *)p, nl);
		p += nl;
		memcpy(&gl, p, 8);
		p += 8;
		if (!coll || gl > (uint64_t)(end - p) || ann_find(a, coll) ||
		    strlen(coll) != nl || !ann_is_vec_coll(coll)) {
			free(coll);
			break;
		}
		ns = ann_add_ns(a, coll);
		free(coll);
		if (!ns) {
			rc = -ENOMEM;
			break;
		}
		rc = hnsw_load(p, (size_t)gl, &ns->g, &used);
		if (!rc && used != gl)
			rc = -EINVAL;
		if (!rc)
			rc = ann_map_graph(ns);
		ns->loaded = 1;
		p += gl;
	}
	if (!rc && p != end)
		rc = -EINVAL;
	if (rc) {
		struct ann_ns *ns;

		while ((ns = a->ns)) {
			a->ns = ns->next;
			ann_ns_clear(ns);
			free(ns->coll);
			free(ns);
		}
	}
	pthread_rwlock_unlock(&a->lock);
	return rc;
}

/* --- search -------------------------------------------------------------------- */

struct ann_cand {
	char *key;
	double score;
};

/* LlamaIndex's order: score descending, then key descending. */
static int ann_cand_cmp(const void *pa, const void *pb)
{
	const struct ann_cand *a = pa, *b = pb;

	if (a->score != b->score)
		return a->score < b->score ? 1 : -1;
	return -strcmp(a->key, b->key);
}

struct ann_allow {
	const struct hnsw *g;
	store_ann_allow_fn *allow;
	void *arg;
};

static int ann_allow_id(void *arg, uint32_t id)
{
	struct ann_allow *aa = arg;

	return aa->allow(aa->arg, hnsw_key(aa->g, id)) > 0;
}

static int ann_cand_add(struct ann_cand **v, size_t *n, size_t *cap,
			const char *key, double score)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct ann_cand *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[*n].key = strdup(key);
	if (!(*v)[*n].key)
		return -ENOMEM;
	(*v)[*n].score = score == 0 ? 0.0 : score;
	(*n)++;
	return 0;
}

/*
 * The exact double cosine of a hit from the engine's own row, read in
 * place (engine_get_each: the hits' lookups overlap), so that scores
 * equal the exact scan's; NaN for a row deleted since the search (or no
 * longer of this size).
 */
struct ann_rescore {
	const float *query;
	double qq;
	uint32_t dim;
	struct ann_cand *c;
};

static int ann_rescore_fn(void *arg, size_t i, enum engine_type type,
			  const void *data, size_t len)
{
	struct ann_rescore *r = arg;
	double s = NAN;

	if (type == ENGINE_VEC && len == r->dim * sizeof(float))
		s = vec_score_double(r->query, r->qq, data, r->dim);
	r->c[i].score = s == 0 ? 0.0 : s; /* not -0.0 */
	return 0;
}

int store_ann_search(struct store_ann *a, const char *coll, const float *query,
		     uint32_t dim, size_t k, unsigned ef,
		     store_ann_allow_fn *allow, void *arg, size_t allowed,
		     struct vec_hit **hits, size_t *n)
{
	struct ann_allow aa = { .allow = allow, .arg = arg };
	struct ann_cand *c = NULL, *nov = NULL;
	struct hnsw_hit *gh = NULL;
	struct ann_ns *ns;
	size_t nc = 0, cap = 0, live, breadth, ng = 0, i, j, out, nq = 0;
	size_t nnov = 0, capnov = 0;
	double qq = 0;
	int rc = 0;

	*hits = NULL;
	*n = 0;
	if (!a || !a->threshold || !a->eng || k == 0)
		return -ENOENT;
	pthread_rwlock_rdlock(&a->lock);
	ns = ann_find(a, coll);
	if (!ns || !ns->g || ns->bad || ns->loaded || hnsw_dim(ns->g) != dim) {
		rc = -ENOENT;
		goto out;
	}
	live = hnsw_size(ns->g) - hnsw_deleted(ns->g);
	/* vec_cosine's value, the query's norm taken once */
	qq = vec_dot_double(query, query, dim);
	pthread_mutex_lock(&a->mu);
	/* mostly unlinked yet (a build under way): the exact scan is faster */
	if (ns->pend_live > live || ns->pend_novec > ANN_NOVEC_MAX ||
	    (allowed != SIZE_MAX &&
	     allowed < (live + ns->pend_live) * STORE_ANN_SELECTIVE)) {
		pthread_mutex_unlock(&a->mu);
		rc = -ENOENT;
		goto out;
	}
	/*
	 * The queue first, then the graph: a row the builder links meanwhile
	 * leaves the queue and turns live at once (under mu), so it is seen
	 * in one or the other.
	 */
	for (i = ns->head; i < ns->npend && !rc; i++) {
		const struct ann_pend *p = &ns->pend[i];
		double s;

		if (p->dead)
			continue;
		if (allow) {
			int r = allow(arg, p->key);

			if (r < 0) {
				rc = r;
				break;
			}
			if (r == 0)
				continue;
		}
		if (!p->vec) {
			/* a filled row: read below, from the engine */
			rc = ann_cand_add(&nov, &nnov, &capnov, p->key, 0);
			continue;
		}
		s = vec_score_double(query, qq, p->vec, dim);
		if (!isnan(s))
			rc = ann_cand_add(&c, &nc, &cap, p->key, s);
	}
	pthread_mutex_unlock(&a->mu);
	if (rc)
		goto out;

	breadth = ef ? ef : HNSW_EF_DEFAULT;
	if (allowed != SIZE_MAX && allowed)
		/* expect allowed/live of what the search meets to pass */
		breadth = (size_t)fmin((double)breadth * live / allowed,
				       (double)live);
	if (breadth < k)
		breadth = k;
	gh = malloc(k * sizeof(*gh));
	if (!gh) {
		rc = -ENOMEM;
		goto out;
	}
	aa.g = ns->g;
	for (;;) {
		rc = hnsw_search(
			ns->g, query, k,
			(unsigned)(breadth > UINT32_MAX ? UINT32_MAX : breadth),
			allow ? ann_allow_id : NULL, &aa, gh, &ng);
		if (rc || ng >= k || !allow)
			break;
		if (breadth >= live) {
			/* the filter lets too little through: be exact */
			rc = -ENOENT;
			break;
		}
		breadth *= 4;
	}
	/* keys now, rows below: the graph keeps half floats only */
	nq = nc;
	for (i = 0; i < nnov && !rc; i++)
		rc = ann_cand_add(&c, &nc, &cap, nov[i].key, 0);
	for (i = 0; i < ng && !rc; i++)
		rc = ann_cand_add(&c, &nc, &cap, hnsw_key(ns->g, gh[i].id), 0);
out:
	pthread_rwlock_unlock(&a->lock);
	free(gh);
	for (i = 0; i < nnov; i++)
		free(nov[i].key);
	free(nov);
	/*
	 * The exact double cosine from the engine's own row, so that scores
	 * equal the exact scan's; a row deleted since the search is dropped.
	 */
	if (!rc && nc > nq) {
		struct ann_rescore rs = {
			.query = query, .qq = qq, .dim = dim, .c = c + nq
		};
		const char **keys = malloc((nc - nq) * sizeof(*keys));

		for (i = nq; keys && i < nc; i++)
			keys[i - nq] = c[i].key;
		rc = keys ? engine_get_each(a->eng, coll, keys, nc - nq,
					    ann_rescore_fn, &rs)
			  : -ENOMEM;
		free(keys);
	}
	/* drop the NaN scores (rows gone or not finite) */
	for (i = nq, j = nq; i < nc && !rc; i++) {
		if (isnan(c[i].score)) {
			free(c[i].key);
			continue;
		}
		c[j++] = c[i];
	}
	if (!rc)
		nc = j;
	if (!rc && nc) {
		qsort(c, nc, sizeof(*c), ann_cand_cmp);
		*hits = calloc(k < nc ? k : nc, sizeof(**hits));
		if (!*hits)
			rc = -ENOMEM;
	}
	out = 0;
	for (i = 0; i < nc; i++) {
		int dup = 0;

		/* a row seen in the queue and, just linked, in the graph */
		for (j = 0; j < out && !dup; j++)
			dup = strcmp((*hits)[j].key, c[i].key) == 0;
		if (rc || dup || out == k) {
			free(c[i].key);
			continue;
		}
		(*hits)[out].key = c[i].key;
		(*hits)[out++].score = c[i].score;
	}
	free(c);
	if (rc) {
		vec_hits_free(*hits, out);
		*hits = NULL;
		return rc;
	}
	*n = out;
	atomic_fetch_add(&a->searches, 1);
	return 0;
}
