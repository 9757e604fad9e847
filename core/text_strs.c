/* text_strs.c - interned short strings: the term dictionary's hash set. */
#include "core/text_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TEXT_SLOT_ENTRY(v) ((uint32_t)(v))
#define TEXT_SLOT_TAG(v)   ((v)&0xffffffff00000000ull)

/* A key's home slot comes from its tag: growing needs no key rehashed. */
static uint32_t text_strs_home(const struct text_strs *s, uint64_t h)
{
	return (uint32_t)(h >> 32) & (s->nslots - 1);
}

const char *text_strs_key(const struct text_strs *s, uint32_t i, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s->pool + s->off[i];

	*len = p[0];
	return (const char *)p + 1;
}

/* The slot holding key (of hash h), or the empty slot where it would go. */
static uint32_t text_strs_slot(const struct text_strs *s, const char *key,
			       size_t len, uint64_t h)
{
	uint32_t mask = s->nslots - 1, i = text_strs_home(s, h);
	uint64_t tag = TEXT_SLOT_TAG(h), v;
	const char *k;
	size_t l;

	for (;; i = (i + 1) & mask) {
		v = s->slots[i];
		if (!v)
			return i;
		if (TEXT_SLOT_TAG(v) != tag)
			continue;
		k = text_strs_key(s, TEXT_SLOT_ENTRY(v) - 1, &l);
		if (l == len && memcmp(k, key, len) == 0)
			return i;
	}
}

uint32_t text_strs_find(const struct text_strs *s, const char *key, size_t len)
{
	uint64_t h = XXH3_64bits(key, len);

	if (!s->nslots)
		return UINT32_MAX;
	return TEXT_SLOT_ENTRY(s->slots[text_strs_slot(s, key, len, h)]) - 1;
}

static int text_strs_rehash(struct text_strs *s, uint32_t nslots)
{
	uint64_t *old = s->slots, v;
	uint32_t i, j, n = s->nslots;

	s->slots = calloc(nslots, sizeof(*s->slots));
	if (!s->slots) {
		s->slots = old;
		return -ENOMEM;
	}
	s->nslots = nslots;
	for (i = 0; i < n; i++) {
		v = old[i];
		if (!v)
			continue;
		for (j = text_strs_home(s, v); s->slots[j];
		     j = (j + 1) & (nslots - 1))
			;
		s->slots[j] = v;
	}
	free(old);
	return 0;
}

uint64_t text_strs_hash(const char *key, size_t len)
{
	return XXH3_64bits(key, len);
}

int text_strs_intern(struct text_strs *s, const char *key, size_t len,
		     uint32_t *out, int *added)
{
	return text_strs_intern_hash(s, key, len, XXH3_64bits(key, len), out,
				     added);
}

int text_strs_intern_hash(struct text_strs *s, const char *key, size_t len,
			  uint64_t h, uint32_t *out, int *added)
{
	uint32_t slot, e;
	int rc;

	*added = 0;
	if ((uint64_t)(s->n + 1) * 2 > s->nslots) {
		if (s->nslots >= (1u << 31))
			return -ENOMEM;
		rc = text_strs_rehash(s, s->nslots ? 2 * s->nslots : 64);
		if (rc)
			return rc;
	}
	slot = text_strs_slot(s, key, len, h);
	e = TEXT_SLOT_ENTRY(s->slots[slot]);
	if (e) {
		*out = e - 1;
		return 0;
	}
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? 2 * s->cap : 64;
		uint32_t *off = realloc(s->off, cap * sizeof(*off));

		if (!off)
			return -ENOMEM;
		s->off = off;
		s->cap = cap;
	}
	if (s->pool_len + len + 1 > s->pool_cap) {
		size_t cap = s->pool_cap ? 2 * s->pool_cap : 1024;
		char *pool;

		while (cap < s->pool_len + len + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		pool = realloc(s->pool, cap);
		if (!pool)
			return -ENOMEM;
		s->pool = pool;
		s->pool_cap = cap;
	}
	s->off[s->n] = (uint32_t)s->pool_len;
	s->pool[s->pool_len] = (char)len;
	memcpy(s->pool + s->pool_len + 1, key, len);
	s->pool_len += len + 1;
	s->slots[slot] = TEXT_SLOT_TAG(h) | (s->n + 1);
	*out = s->n++;
	*added = 1;
	return 0;
}

/* Keys hashed ahead of their insertion, their slots being prefetched. */
#define TEXT_STRS_AHEAD 16

/* Puts entry i, of hash h, in the table; -EINVAL if its key is there. */
static int text_strs_load_key(struct text_strs *s, uint32_t i, uint64_t h)
{
	size_t l;
	const char *k = text_strs_key(s, i, &l);
	uint32_t slot = text_strs_slot(s, k, l, h);

	if (s->slots[slot])
		return -EINVAL;
	s->slots[slot] = TEXT_SLOT_TAG(h) | (i + 1);
	return 0;
}

int text_strs_load(struct text_strs *s, const char *pool, size_t len,
		   uint32_t n)
{
	const unsigned char *p = (const unsigned char *)pool;
	uint64_t h, ring[TEXT_STRS_AHEAD];
	uint32_t i, nslots = 64;
	size_t at = 0, l;
	int rc = -ENOMEM;

	/* Each key takes two bytes at least: n is bounded before allocating. */
	if (len > UINT32_MAX || n > len / 2 || n >= (1u << 30))
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	if (!n) /* as a new set: nothing allocated */
		return len ? -EINVAL : 0;
	while (nslots < 2 * (uint64_t)n)
		nslots *= 2;
	s->pool = malloc(len);
	s->off = malloc(n * sizeof(*s->off));
	s->slots = calloc(nslots, sizeof(*s->slots));
	if (!s->pool || !s->off || !s->slots)
		goto out_free;
	memcpy(s->pool, pool, len);
	s->pool_len = s->pool_cap = len;
	s->n = s->cap = n;
	s->nslots = nslots;
	rc = -EINVAL;
	for (i = 0; i < n; i++) {
		if (at >= len || p[at] == 0 || p[at] > len - at - 1)
			goto out_free;
		s->off[i] = (uint32_t)at;
		at += 1 + (size_t)p[at];
	}
	if (at != len)
		goto out_free;
	/*
	 * The table is far bigger than the caches when there are many keys
	 * (bigrams): insert each TEXT_STRS_AHEAD keys after fetching its slot.
	 */
	for (i = 0; i < n; i++) {
		const char *k = text_strs_key(s, i, &l);

		h = XXH3_64bits(k, l);
		__builtin_prefetch(&s->slots[text_strs_home(s, h)]);
		if (i >= TEXT_STRS_AHEAD &&
		    text_strs_load_key(s, i - TEXT_STRS_AHEAD,
				       ring[i % TEXT_STRS_AHEAD]))
			goto out_free; /* a key twice */
		ring[i % TEXT_STRS_AHEAD] = h;
	}
	for (i = n > TEXT_STRS_AHEAD ? n - TEXT_STRS_AHEAD : 0; i < n; i++)
		if (text_strs_load_key(s, i, ring[i % TEXT_STRS_AHEAD]))
			goto out_free;
	return 0;
out_free:
	text_strs_free(s);
	memset(s, 0, sizeof(*s));
	return rc;
}

void text_strs_free(struct text_strs *s)
{
	free(s->pool);
	free(s->off);
	free(s->slots);
}
