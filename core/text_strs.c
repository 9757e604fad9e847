/* text_strs.c - interned short strings: the term dictionary's hash set. */
#include "core/text_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TEXT_SLOT_ENTRY(v) ((uint32_t)(v))

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
	uint32_t mask = s->nslots - 1, i = (uint32_t)h & mask;
	uint64_t tag = h & 0xffffffff00000000ull, v;
	const char *k;
	size_t l;

	for (;; i = (i + 1) & mask) {
		v = s->slots[i];
		if (!v)
			return i;
		if ((v & 0xffffffff00000000ull) != tag)
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
	uint64_t *old = s->slots, h;
	uint32_t i;
	size_t l;
	const char *k;

	s->slots = calloc(nslots, sizeof(*s->slots));
	if (!s->slots) {
		s->slots = old;
		return -ENOMEM;
	}
	s->nslots = nslots;
	for (i = 0; i < s->n; i++) {
		k = text_strs_key(s, i, &l);
		h = XXH3_64bits(k, l);
		s->slots[text_strs_slot(s, k, l, h)] =
			(h & 0xffffffff00000000ull) | (i + 1);
	}
	free(old);
	return 0;
}

int text_strs_intern(struct text_strs *s, const char *key, size_t len,
		     uint32_t *out, int *added)
{
	uint64_t h = XXH3_64bits(key, len);
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
	s->slots[slot] = (h & 0xffffffff00000000ull) | (s->n + 1);
	*out = s->n++;
	*added = 1;
	return 0;
}

void text_strs_free(struct text_strs *s)
{
	free(s->pool);
	free(s->off);
	free(s->slots);
}
