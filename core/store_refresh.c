/* store_refresh.c - what other writers of a shared store changed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_int.h"

void store_track_changes(struct store *s, int on)
{
	pthread_mutex_lock(&s->chg_mu);
	s->chg_track = on != 0;
	pthread_mutex_unlock(&s->chg_mu);
}

/*
 * Runs under the engine's write lock (from the observer): only notes the
 * change.  Out of memory drops the note, which a later full rescan would
 * catch; we count that as a change so the caller still refreshes caches.
 */
void store_note_change(struct store *s, const char *coll, const char *key,
		       unsigned flags)
{
	struct store_change *c;
	int kind;

	(void)flags;
	if (strcmp(coll, STORE_C_FILES) == 0)
		kind = STORE_CHANGE_DOC;
	else if (strcmp(coll, STORE_C_DIRS) == 0)
		kind = STORE_CHANGE_DIR;
	else
		kind = 0;
	pthread_mutex_lock(&s->chg_mu);
	s->chg_remote++;
	if (!kind || !s->chg_track)
		goto out;
	if (s->n_chg == s->cap_chg) {
		size_t cap = s->cap_chg ? 2 * s->cap_chg : 64;

		c = realloc(s->chg, cap * sizeof(*c));
		if (!c)
			goto out;
		s->chg = c;
		s->cap_chg = cap;
	}
	c = &s->chg[s->n_chg];
	c->key = strdup(key);
	if (!c->key)
		goto out;
	c->kind = kind;
	s->n_chg++;
out:
	pthread_mutex_unlock(&s->chg_mu);
}

static void store_changes_release(struct store_change *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].key);
	free(v);
}

void store_changes_free(struct store *s)
{
	store_changes_release(s->chg, s->n_chg);
	s->chg = NULL;
	s->n_chg = s->cap_chg = 0;
}

int store_refresh(struct store *s, store_change_fn *fn, void *arg)
{
	struct store_change *v;
	size_t i, n;
	uint64_t remote;
	int rc;

	store_clear_error();
	rc = engine_refresh(s->eng);
	if (rc)
		store_fail(rc, "catching up with other writers: %s",
			   engine_last_error());
	pthread_mutex_lock(&s->chg_mu);
	v = s->chg;
	n = s->n_chg;
	remote = s->chg_remote;
	s->chg = NULL;
	s->n_chg = s->cap_chg = 0;
	s->chg_remote = 0;
	pthread_mutex_unlock(&s->chg_mu);
	for (i = 0; fn && i < n; i++)
		fn(arg, (enum store_change_kind)v[i].kind, v[i].key);
	store_changes_release(v, n);
	if (rc)
		return rc;
	return remote > INT32_MAX ? INT32_MAX : (int)remote;
}
