/* fs_inode.c - the inode table the kernel sees, and file name encoding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/text.h"
#include "fs/fs_int.h"

uint64_t fs_hash_ino(enum fs_kind kind, const char *k0, const char *k1,
		     const char *k2)
{
	XXH3_state_t st;
	unsigned char kb = (unsigned char)kind;
	const char *k[3] = { k0, k1, k2 };
	uint64_t h;
	int i;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &kb, 1);
	for (i = 0; i < 3; i++)
		if (k[i])
			XXH3_64bits_update(&st, k[i], strlen(k[i]) + 1);
	h = XXH3_64bits_digest(&st);
	/* bit 63 set: never a fixed number nor one the store records */
	return h | (1ull << 63);
}

static size_t fs_itab_slot(const struct fs *fs, uint64_t ino)
{
	return (size_t)(XXH3_64bits(&ino, sizeof(ino)) & (fs->itab_cap - 1));
}

struct fs_ino *fs_ino_find(struct fs *fs, uint64_t ino)
{
	struct fs_ino *p;

	if (!fs->itab_cap)
		return NULL;
	for (p = fs->itab[fs_itab_slot(fs, ino)]; p; p = p->next)
		if (p->ino == ino)
			return p;
	return NULL;
}

static int fs_itab_grow(struct fs *fs)
{
	size_t cap = fs->itab_cap ? fs->itab_cap * 2 : 1024, i,
	       old = fs->itab_cap;
	struct fs_ino **tab = calloc(cap, sizeof(*tab)), **otab = fs->itab;

	if (!tab)
		return -ENOMEM;
	fs->itab = tab;
	fs->itab_cap = cap;
	for (i = 0; i < old; i++) {
		struct fs_ino *p = otab[i], *n;

		for (; p; p = n) {
			size_t s = fs_itab_slot(fs, p->ino);

			n = p->next;
			p->next = tab[s];
			tab[s] = p;
		}
	}
	free(otab);
	return 0;
}

int fs_ino_set_key(struct fs_ino *ip, int i, const char *v)
{
	char *d = v ? strdup(v) : NULL;

	if (v && !d)
		return -ENOMEM;
	free(ip->keys[i]);
	ip->keys[i] = d;
	return 0;
}

struct fs_ino *fs_ino_get(struct fs *fs, uint64_t ino, enum fs_kind kind,
			  const char *k0, const char *k1, const char *k2,
			  int lookup)
{
	struct fs_ino *p = fs_ino_find(fs, ino);
	const char *k[3] = { k0, k1, k2 };
	size_t s;
	int i;

	if (p) {
		/* The same number for another entry: a document renamed, or
		 * an entry replaced.  Follow what the caller resolved. */
		p->kind = kind;
		for (i = 0; i < 3; i++)
			if ((k[i] == NULL) != (p->keys[i] == NULL) ||
			    (k[i] && strcmp(k[i], p->keys[i])))
				if (fs_ino_set_key(p, i, k[i]))
					return NULL;
		p->unlinked = 0;
		if (lookup)
			p->nlookup++;
		return p;
	}
	if (fs->itab_n + 1 > fs->itab_cap / 2 * 1 + fs->itab_cap / 4 &&
	    fs_itab_grow(fs))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ino = ino;
	p->gen = 1;
	p->kind = kind;
	for (i = 0; i < 3; i++)
		if (k[i] && !(p->keys[i] = strdup(k[i])))
			goto fail;
	p->nlookup = lookup ? 1 : 0;
	s = fs_itab_slot(fs, ino);
	p->next = fs->itab[s];
	fs->itab[s] = p;
	fs->itab_n++;
	return p;
fail:
	for (i = 0; i < 3; i++)
		free(p->keys[i]);
	free(p);
	return NULL;
}

static void fs_ino_free(struct fs_ino *p)
{
	int i;

	for (i = 0; i < 3; i++)
		free(p->keys[i]);
	free(p->res);
	free(p);
}

void fs_ino_forget(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct fs_ino **pp, *p;

	if (ino <= FS_INO_FIXED_MAX || !fs->itab_cap)
		return;
	for (pp = &fs->itab[fs_itab_slot(fs, ino)]; (p = *pp); pp = &p->next) {
		if (p->ino != ino)
			continue;
		p->nlookup = p->nlookup > n ? p->nlookup - n : 0;
		/* Kept while open or while its content waits to be committed */
		if (p->nlookup || p->opens || p->file)
			return;
		*pp = p->next;
		fs->itab_n--;
		fs_ino_free(p);
		return;
	}
}

void fs_inodes_free(struct fs *fs)
{
	size_t i;

	for (i = 0; i < fs->itab_cap; i++) {
		struct fs_ino *p = fs->itab[i], *n;

		for (; p; p = n) {
			n = p->next;
			if (p->file)
				fs_file_free(fs, p->file);
			fs_ino_free(p);
		}
	}
	free(fs->itab);
	fs->itab = NULL;
	fs->itab_cap = fs->itab_n = 0;
}

void *fs_reserve(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t c = *cap ? *cap : first;
	void *nv;

	if (need <= *cap)
		return v;
	while (c < need)
		c *= 2;
	nv = realloc(v, c * elem);
	if (nv)
		*cap = c;
	return nv;
}

/* --- names ---------------------------------------------------------------- */

int fs_name_check(const char *name)
{
	size_t n = strlen(name);

	if (n > 255)
		return -ENAMETOOLONG;
	if (!n || !text_is_utf8(name, n))
		return -EINVAL;
	return 0;
}

static int fs_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fs_name_decode(const char *name, char **id)
{
	size_t n = strlen(name), i, j = 0;
	char *o;
	int rc = fs_name_check(name);

	if (rc)
		return rc;
	o = malloc(n + 1);
	if (!o)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (name[i] == '%') {
			int h = i + 2 < n + 1 ? fs_hexval(name[i + 1]) : -1;
			int l = h >= 0 ? fs_hexval(name[i + 2]) : -1;

			if (h < 0 || l < 0 || (h == 0 && l == 0)) {
				free(o);
				return -EINVAL;
			}
			o[j++] = (char)(h * 16 + l);
			i += 2;
		} else {
			o[j++] = name[i];
		}
	}
	o[j] = 0;
	if (!text_is_utf8(o, j) || j == 0) {
		free(o);
		return -EINVAL;
	}
	*id = o;
	return 0;
}

char *fs_name_encode(const char *id, const char *suffix)
{
	size_t n = strlen(id), sl = suffix ? strlen(suffix) : 0, i, j = 0;
	char *o = malloc(n * 3 + sl + 1);

	if (!o)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c == '/' || c == '%' || (i == 0 && c == '.')) {
			static const char hex[] = "0123456789ABCDEF";

			o[j++] = '%';
			o[j++] = hex[c >> 4];
			o[j++] = hex[c & 15];
		} else {
			o[j++] = (char)c;
		}
	}
	if (sl)
		memcpy(o + j, suffix, sl);
	o[j + sl] = 0;
	return o;
}
