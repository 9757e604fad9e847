/* engine_format.c - byte layouts: names, records, segments, manifests. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>
#ifdef LODEFS_XXH_DISPATCH
/* the *_dispatch functions by name, XXH3_64bits left as it is */
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#endif

#include "core/engine_int.h"

/* --- errors --------------------------------------------------------------- */

static _Thread_local char eng_errbuf[512];

int eng_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(eng_errbuf, sizeof(eng_errbuf), fmt, ap);
	va_end(ap);
	return rc;
}

void eng_clear_error(void)
{
	eng_errbuf[0] = '\0';
}

const char *engine_last_error(void)
{
	return eng_errbuf;
}

/* --- checksums ------------------------------------------------------------ */

#ifdef LODEFS_XXH_DISPATCH
static pthread_once_t eng_xxh3_once = PTHREAD_ONCE_INIT;

/*
 * The dispatcher picks its variant at its first long input, without a
 * lock: done once here, before two readers can race to it.
 */
static void eng_xxh3_init(void)
{
	static const uint8_t zeros[256];

	(void)XXH3_64bits_dispatch(zeros, sizeof(zeros));
}
#endif

uint64_t eng_xxh3(const void *p, size_t n)
{
#ifdef LODEFS_XXH_DISPATCH
	pthread_once(&eng_xxh3_once, eng_xxh3_init);
	return XXH3_64bits_dispatch(p, n);
#else
	return XXH3_64bits(p, n);
#endif
}

/* --- buffers -------------------------------------------------------------- */

int eng_buf_reserve(struct eng_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return b->err = -ENOMEM;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void eng_buf_release(struct eng_buf *b, size_t *done, size_t upto)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t from = ((uintptr_t)b->p + *done + pg - 1) & ~(pg - 1);
	uintptr_t to = ((uintptr_t)b->p + upto) & ~(pg - 1);

	if (!b->p || upto > b->len || to < from + ENG_RELEASE_STEP)
		return;
	if (madvise((void *)from, to - from, MADV_DONTNEED) == 0)
		*done = to - (uintptr_t)b->p;
}

void eng_buf_put(struct eng_buf *b, const void *data, size_t n)
{
	if (!n || eng_buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void eng_buf_u8(struct eng_buf *b, uint8_t v)
{
	eng_buf_put(b, &v, 1);
}

void eng_buf_u16(struct eng_buf *b, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	eng_buf_put(b, p, 2);
}

void eng_buf_u32(struct eng_buf *b, uint32_t v)
{
	uint8_t p[4];
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	eng_buf_put(b, p, 4);
}

void eng_buf_u64(struct eng_buf *b, uint64_t v)
{
	uint8_t p[8];

	eng_put_le64(p, v);
	eng_buf_put(b, p, 8);
}

void eng_buf_zero(struct eng_buf *b, size_t n)
{
	if (!n || eng_buf_reserve(b, n))
		return;
	memset(b->p + b->len, 0, n);
	b->len += n;
}

void eng_buf_align(struct eng_buf *b, size_t align)
{
	eng_buf_zero(b, (align - b->len % align) % align);
}

void eng_buf_free(struct eng_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

uint16_t eng_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t eng_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint64_t eng_le64(const uint8_t *p)
{
	return (uint64_t)eng_le32(p) | (uint64_t)eng_le32(p + 4) << 32;
}

void eng_put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* --- names ---------------------------------------------------------------- */

int eng_writer_valid(const char *w)
{
	size_t n = 0;

	if (!w)
		return -EINVAL;
	for (; w[n]; n++) {
		char ch = w[n];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      ch == '-'))
			return -EINVAL;
	}
	return n >= 1 && n <= ENG_WRITER_MAX ? 0 : -EINVAL;
}

int eng_ext_name_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return -EINVAL;
	for (; s[n]; n++) {
		char ch = s[n];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      ch == '_'))
			return -EINVAL;
	}
	return n >= 1 && n <= ENG_EXT_MAX ? 0 : -EINVAL;
}

int eng_name_valid(const char *s, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (!s || len == 0 || len > max)
		return -EINVAL;
	while (i < len) {
		unsigned char c = p[i];
		size_t n, k;
		uint32_t cp;

		if (c == 0)
			return -EINVAL;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return -EINVAL;
		}
		if (len - i - 1 < n)
			return -EINVAL;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return -EINVAL;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* overlong, surrogate or beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return -EINVAL;
		i += n + 1;
	}
	return 0;
}

uint64_t eng_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void eng_seg_name(char *out, const char *writer, uint64_t seq)
{
	snprintf(out, ENG_NAME_MAX, "log/%s/%016llx.seg", writer,
		 (unsigned long long)seq);
}

static int eng_hex16(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	int i;

	for (i = 0; i < 16; i++) {
		char ch = s[i];

		if (ch >= '0' && ch <= '9')
			x = x << 4 | (uint64_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			x = x << 4 | (uint64_t)(ch - 'a' + 10);
		else
			return -EINVAL;
	}
	*v = x;
	return 0;
}

int eng_seg_parse_name(const char *key, char *writer, uint64_t *seq)
{
	const char *w, *slash;
	size_t wl;

	if (strncmp(key, "log/", 4) != 0)
		return -EINVAL;
	w = key + 4;
	slash = strchr(w, '/');
	if (!slash)
		return -EINVAL;
	wl = (size_t)(slash - w);
	if (wl == 0 || wl > ENG_WRITER_MAX)
		return -EINVAL;
	memcpy(writer, w, wl);
	writer[wl] = '\0';
	if (eng_writer_valid(writer))
		return -EINVAL;
	if (strlen(slash + 1) != 20 || strcmp(slash + 17, ".seg") != 0)
		return -EINVAL;
	return eng_hex16(slash + 1, seq);
}

int eng_ckpt_parse_id(const char *id, uint64_t *hlc, char *writer)
{
	size_t n = strlen(id);

	if (n < 18 || n > ENG_CKPT_ID_MAX || id[16] != '-')
		return -EINVAL;
	if (eng_hex16(id, hlc))
		return -EINVAL;
	memcpy(writer, id + 17, n - 17 + 1);
	return eng_writer_valid(writer);
}

int eng_ckpt_parse_name(const char *key, char *id, char *obj, size_t objmax)
{
	const char *p, *slash;
	char w[ENG_WRITER_MAX + 1];
	uint64_t hlc;
	size_t n;

	if (strncmp(key, "ckpt/", 5) != 0)
		return -EINVAL;
	p = key + 5;
	slash = strchr(p, '/');
	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - p);
	if (n > ENG_CKPT_ID_MAX)
		return -EINVAL;
	memcpy(id, p, n);
	id[n] = '\0';
	if (eng_ckpt_parse_id(id, &hlc, w))
		return -EINVAL;
	n = strlen(slash + 1);
	if (n == 0 || n >= objmax || strchr(slash + 1, '/'))
		return -EINVAL;
	memcpy(obj, slash + 1, n + 1);
	return 0;
}

/* --- records -------------------------------------------------------------- */

/*
 * Record: u8 op, u8 type, u16 flags, u32 coll_len, u32 key_len, u32 0,
 * u64 val_len, coll bytes, NUL, key bytes, NUL, value bytes; with
 * ENG_RF_UPDATE then u64 creation HLC (0: this batch), u32 record index,
 * u32 writer length (0 with HLC 0), writer bytes.
 */
void eng_rec_encode(struct eng_buf *b, uint8_t op, uint8_t type,
		    const char *coll, size_t coll_len, const char *key,
		    size_t key_len, const void *val, size_t len,
		    const struct eng_cref *cref)
{
	uint16_t flags = cref ? cref->flags : 0;

	eng_buf_u8(b, op);
	eng_buf_u8(b, type);
	eng_buf_u16(b, flags);
	eng_buf_u32(b, (uint32_t)coll_len);
	eng_buf_u32(b, (uint32_t)key_len);
	eng_buf_u32(b, 0);
	eng_buf_u64(b, len);
	eng_buf_put(b, coll, coll_len);
	eng_buf_u8(b, 0);
	eng_buf_put(b, key, key_len);
	eng_buf_u8(b, 0);
	eng_buf_put(b, val, len);
	if (flags & ENG_RF_UPDATE) {
		size_t wl = cref->hlc ? strlen(cref->writer) : 0;

		eng_buf_u64(b, cref->hlc);
		eng_buf_u32(b, cref->idx);
		eng_buf_u32(b, (uint32_t)wl);
		eng_buf_put(b, cref->writer, wl);
	}
}

/* Decodes the creation reference after an update's value. */
static int eng_rec_cref(const uint8_t *p, size_t n, size_t *at,
			struct eng_rec *r, const char **why)
{
	size_t wl;

	if (n - *at < ENG_REC_CREF)
		return *why = "creation reference past the end", -EUCLEAN;
	r->chlc = eng_le64(p + *at);
	r->cidx = eng_le32(p + *at + 8);
	wl = eng_le32(p + *at + 12);
	*at += ENG_REC_CREF;
	if (wl > ENG_WRITER_MAX || wl > n - *at || (wl == 0) != (r->chlc == 0))
		return *why = "bad creation reference", -EUCLEAN;
	memcpy(r->cwriter, p + *at, wl);
	r->cwriter[wl] = '\0';
	if (wl && eng_writer_valid(r->cwriter))
		return *why = "bad writer in creation reference", -EUCLEAN;
	*at += wl;
	return 0;
}

int eng_rec_next(const uint8_t *p, size_t n, size_t *pos, struct eng_rec *r,
		 const char **why)
{
	size_t at = *pos, cl, kl;
	uint64_t vl;

	if (n - at < ENG_REC_HDR)
		return *why = "record header past the end", -EUCLEAN;
	r->op = p[at];
	r->type = p[at + 1];
	r->flags = eng_le16(p + at + 2);
	cl = eng_le32(p + at + 4);
	kl = eng_le32(p + at + 8);
	vl = eng_le64(p + at + 16);
	r->chlc = 0;
	r->cidx = 0;
	r->cwriter[0] = '\0';
	if (eng_le32(p + at + 12))
		return *why = "reserved record bytes are not zero", -EUCLEAN;
	if ((r->flags && r->op != ENG_OP_PUT) ||
	    (r->flags & ~(ENG_RF_UPDATE | ENG_RF_FIRST)) ||
	    r->flags == (ENG_RF_UPDATE | ENG_RF_FIRST))
		return *why = "bad record flags", -EUCLEAN;
	at += ENG_REC_HDR;
	if (cl > n - at || n - at - cl < 2 || kl > n - at - cl - 2 ||
	    vl > n - at - cl - kl - 2)
		return *why = "record past the end", -EUCLEAN;
	r->coll = (const char *)p + at;
	r->coll_len = cl;
	r->key = (const char *)p + at + cl + 1;
	r->key_len = kl;
	r->val = p + at + cl + kl + 2;
	r->len = (size_t)vl;
	if (p[at + cl] || p[at + cl + 1 + kl])
		return *why = "record name not terminated", -EUCLEAN;
	if (eng_name_valid(r->coll, cl, ENGINE_KEY_MAX))
		return *why = "invalid collection name", -EUCLEAN;
	switch (r->op) {
	case ENG_OP_PUT:
		if (eng_name_valid(r->key, kl, ENGINE_KEY_MAX))
			return *why = "invalid key", -EUCLEAN;
		if (r->type == ENGINE_JSON && vl == 0)
			return *why = "empty JSON value", -EUCLEAN;
		if (r->type == ENGINE_VEC && (vl == 0 || vl % 4))
			return *why = "bad vector length", -EUCLEAN;
		if (r->type != ENGINE_JSON && r->type != ENGINE_BLOB &&
		    r->type != ENGINE_VEC)
			return *why = "unknown value type", -EUCLEAN;
		if (vl > ENGINE_VALUE_MAX)
			return *why = "value too large", -EUCLEAN;
		break;
	case ENG_OP_DEL:
		if (eng_name_valid(r->key, kl, ENGINE_KEY_MAX))
			return *why = "invalid key", -EUCLEAN;
		if (r->type || vl)
			return *why = "delete with a value", -EUCLEAN;
		break;
	case ENG_OP_DROP:
		if (kl || r->type || vl)
			return *why = "drop with a key or value", -EUCLEAN;
		break;
	default:
		return *why = "unknown record op", -EUCLEAN;
	}
	at += cl + kl + 2 + (size_t)vl;
	if ((r->flags & ENG_RF_UPDATE) && eng_rec_cref(p, n, &at, r, why))
		return -EUCLEAN;
	*pos = at;
	return 0;
}

/* --- segments ------------------------------------------------------------- */

/*
 * Header (64 bytes): magic "LODEFSSG", u16 version, u8 writer length,
 * u8 0, u32 record count, u64 seq, u64 HLC, writer id NUL-padded to 32.
 */
int eng_seg_seal(struct eng_buf *seg, const struct eng_seg_hdr *h,
		 size_t recs_end)
{
	struct eng_buf hdr = { 0 };
	size_t wl = strlen(h->writer);
	char w[ENG_WRITER_MAX] = { 0 };

	if (seg->err)
		return seg->err;
	memcpy(w, h->writer, wl);
	eng_buf_put(&hdr, ENG_SEG_MAGIC, ENG_MAGIC_LEN);
	eng_buf_u16(&hdr, ENG_FORMAT_VERSION);
	eng_buf_u8(&hdr, (uint8_t)wl);
	eng_buf_u8(&hdr, 0);
	eng_buf_u32(&hdr, h->nrec);
	eng_buf_u64(&hdr, h->seq);
	eng_buf_u64(&hdr, h->hlc);
	eng_buf_put(&hdr, w, ENG_WRITER_MAX);
	if (hdr.err) {
		eng_buf_free(&hdr);
		return -ENOMEM;
	}
	memcpy(seg->p, hdr.p, ENG_SEG_HDR);
	eng_buf_free(&hdr);
	seg->len = recs_end;
	eng_buf_u64(seg, eng_xxh3(seg->p, seg->len));
	return seg->err;
}

int eng_seg_parse_hdr(const uint8_t *p, size_t n, struct eng_seg_hdr *h,
		      const char **why)
{
	size_t wl, i;

	if (n < ENG_SEG_HDR)
		return *why = "shorter than a segment header", -EBADMSG;
	if (memcmp(p, ENG_SEG_MAGIC, ENG_MAGIC_LEN) != 0)
		return *why = "bad segment magic", -EBADMSG;
	h->version = eng_le16(p + 8);
	wl = p[10];
	h->nrec = eng_le32(p + 12);
	h->seq = eng_le64(p + 16);
	h->hlc = eng_le64(p + 24);
	if (h->version != ENG_FORMAT_VERSION)
		return *why = h->version > ENG_FORMAT_VERSION
				      ? "segment format is newer than this "
					"program"
				      : "segment format is older than this "
					"program's and was never released",
		       -EPROTO;
	if (wl == 0 || wl > ENG_WRITER_MAX || p[11])
		return *why = "bad writer id in segment header", -EBADMSG;
	memcpy(h->writer, p + 32, wl);
	h->writer[wl] = '\0';
	for (i = wl; i < ENG_WRITER_MAX; i++) {
		if (p[32 + i])
			return *why = "bad writer id padding", -EBADMSG;
	}
	if (eng_writer_valid(h->writer))
		return *why = "bad writer id in segment header", -EBADMSG;
	return 0;
}

int eng_seg_verify(const uint8_t *p, size_t n, struct eng_seg_hdr *h,
		   const char **why)
{
	size_t pos = ENG_SEG_HDR, end;
	struct eng_rec r;
	uint32_t i;
	int rc;

	if (n < ENG_SEG_HDR + ENG_TRAILER)
		return *why = "shorter than an empty segment", -EBADMSG;
	end = n - ENG_TRAILER;
	if (eng_xxh3(p, end) != eng_le64(p + end))
		return *why = "checksum mismatch", -EBADMSG;
	rc = eng_seg_parse_hdr(p, n, h, why);
	if (rc)
		return rc == -EBADMSG ? -EUCLEAN : rc;
	for (i = 0; i < h->nrec; i++) {
		rc = eng_rec_next(p, end, &pos, &r, why);
		if (rc)
			return rc;
		if ((r.flags & ENG_RF_UPDATE) && !r.chlc && r.cidx >= i)
			return *why = "creation reference to a later record",
			       -EUCLEAN;
	}
	if (pos != end)
		return *why = "bytes after the last record", -EUCLEAN;
	return 0;
}

/* --- manifest ------------------------------------------------------------- */

/*
 * The manifest is one JSON object followed by "\n", then the xxh3-64 of
 * everything before it as 16 hex digits and "\n".
 */
static int eng_json_hex(json_t *o, const char *name, uint64_t *v)
{
	const char *s = json_string_value(json_object_get(o, name));

	if (!s || strlen(s) != 16)
		return -EINVAL;
	return eng_hex16(s, v);
}

static int eng_json_u64(json_t *o, const char *name, uint64_t *v)
{
	json_t *j = json_object_get(o, name);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -EINVAL;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int eng_manifest_obj(json_t *jo, struct eng_mobj *o)
{
	const char *name = json_string_value(json_object_get(jo, "name"));
	uint64_t dim;

	if (!name || strlen(name) >= sizeof(o->name) || strchr(name, '/'))
		return -EINVAL;
	strcpy(o->name, name);
	if (eng_json_u64(jo, "size", &o->size) ||
	    eng_json_hex(jo, "xxh3", &o->xxh3))
		return -EINVAL;
	if (strncmp(name, "ext-", 4) == 0) {
		o->ext = true;
		return eng_ext_name_valid(name + 4);
	}
	if (strncmp(name, "vec-", 4) != 0)
		return strcmp(name, ENG_OBJ_KEYS) == 0 ||
				       strcmp(name, ENG_OBJ_VALUES) == 0
			       ? 0
			       : -EINVAL;
	name = json_string_value(json_object_get(jo, "coll"));
	if (!name || eng_name_valid(name, strlen(name), ENGINE_KEY_MAX))
		return -EINVAL;
	if (eng_json_u64(jo, "dim", &dim) || dim == 0 || dim > UINT32_MAX / 4 ||
	    eng_json_u64(jo, "rows", &o->rows))
		return -EINVAL;
	o->dim = (uint32_t)dim;
	o->coll = strdup(name);
	return o->coll ? 0 : -ENOMEM;
}

/* Object names unique; one keys and one values object; vec colls unique. */
static int eng_manifest_objs_valid(const struct eng_manifest *m,
				   const char **why)
{
	size_t i, j, keys = 0, values = 0;

	for (i = 0; i < m->nobjs; i++) {
		const struct eng_mobj *o = &m->objs[i];

		keys += strcmp(o->name, ENG_OBJ_KEYS) == 0;
		values += strcmp(o->name, ENG_OBJ_VALUES) == 0;
		for (j = 0; j < i; j++) {
			if (strcmp(m->objs[j].name, o->name) == 0 ||
			    (o->coll && m->objs[j].coll &&
			     strcmp(m->objs[j].coll, o->coll) == 0))
				return *why = "manifest lists an object or a "
					      "vector collection twice",
				       -EUCLEAN;
		}
	}
	if (keys != 1 || values != 1)
		return *why = "manifest lacks the keys or values object",
		       -EUCLEAN;
	return 0;
}

int eng_manifest_parse(const void *p, size_t n, struct eng_manifest *m,
		       const char **why)
{
	const char *s = p;
	json_t *root, *ws, *os;
	uint64_t sum, version;
	size_t i;
	int rc = -EUCLEAN;

	memset(m, 0, sizeof(*m));
	if (n < 19 || s[n - 1] != '\n' || s[n - 18] != '\n')
		return *why = "manifest is truncated", -EUCLEAN;
	if (eng_hex16(s + n - 17, &sum) || eng_xxh3(s, n - 17) != sum)
		return *why = "manifest checksum mismatch", -EUCLEAN;
	root = json_loadb(s, n - 18, 0, NULL);
	if (!json_is_object(root)) {
		*why = "manifest is not a JSON object";
		goto out_json;
	}
	*why = "manifest fields are invalid";
	if (eng_json_u64(root, "lodefs_checkpoint", &version))
		goto out_json;
	if (version != ENG_FORMAT_VERSION) {
		*why = version > ENG_FORMAT_VERSION
			       ? "checkpoint format is newer than this program"
			       : "checkpoint format is older than this "
				 "program's and was never released";
		rc = -EPROTO;
		goto out_json;
	}
	s = json_string_value(json_object_get(root, "id"));
	if (!s || strlen(s) > ENG_CKPT_ID_MAX)
		goto out_json;
	strcpy(m->id, s);
	if (eng_json_hex(root, "hlc", &m->hlc))
		goto out_json;
	ws = json_object_get(root, "writers");
	os = json_object_get(root, "objects");
	if (!json_is_array(ws) || !json_is_array(os))
		goto out_json;
	m->nwriters = json_array_size(ws);
	m->nobjs = json_array_size(os);
	m->writers = calloc(m->nwriters + 1, sizeof(*m->writers));
	m->objs = calloc(m->nobjs + 1, sizeof(*m->objs));
	if (!m->writers || !m->objs) {
		rc = -ENOMEM;
		goto out_json;
	}
	for (i = 0; i < m->nwriters; i++) {
		json_t *w = json_array_get(ws, i);
		const char *id = json_string_value(json_array_get(w, 0));
		json_t *seq = json_array_get(w, 1);

		if (!id || eng_writer_valid(id) || !json_is_integer(seq) ||
		    json_integer_value(seq) < 0)
			goto out_json;
		strcpy(m->writers[i].id, id);
		m->writers[i].seq = (uint64_t)json_integer_value(seq);
	}
	for (i = 0; i < m->nobjs; i++) {
		int orc = eng_manifest_obj(json_array_get(os, i), &m->objs[i]);

		if (orc) {
			rc = orc == -ENOMEM ? -ENOMEM : -EUCLEAN;
			goto out_json;
		}
	}
	if (eng_manifest_objs_valid(m, why))
		goto out_json;
	json_decref(root);
	return 0;
out_json:
	json_decref(root);
	eng_manifest_free(m);
	return rc;
}

int eng_manifest_build(const struct eng_manifest *m, char **out, size_t *len)
{
	json_t *root, *ws, *os;
	char hex[17], *text, *full;
	size_t i, n;

	root = json_object();
	ws = json_array();
	os = json_array();
	if (!root || !ws || !os)
		goto out_nomem;
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)m->hlc);
	if (json_object_set_new(root, "lodefs_checkpoint",
				json_integer(ENG_FORMAT_VERSION)) ||
	    json_object_set_new(root, "id", json_string(m->id)) ||
	    json_object_set_new(root, "hlc", json_string(hex)))
		goto out_nomem;
	for (i = 0; i < m->nwriters; i++) {
		if (json_array_append_new(
			    ws, json_pack("[sI]", m->writers[i].id,
					  (json_int_t)m->writers[i].seq)))
			goto out_nomem;
	}
	for (i = 0; i < m->nobjs; i++) {
		const struct eng_mobj *o = &m->objs[i];
		json_t *jo;

		snprintf(hex, sizeof(hex), "%016llx",
			 (unsigned long long)o->xxh3);
		jo = json_pack("{sssIss}", "name", o->name, "size",
			       (json_int_t)o->size, "xxh3", hex);
		if (jo && o->coll &&
		    (json_object_set_new(jo, "coll", json_string(o->coll)) ||
		     json_object_set_new(jo, "dim", json_integer(o->dim)) ||
		     json_object_set_new(jo, "rows",
					 json_integer((json_int_t)o->rows)))) {
			json_decref(jo);
			jo = NULL;
		}
		if (json_array_append_new(os, jo))
			goto out_nomem;
	}
	json_object_set(root, "writers", ws);
	json_object_set(root, "objects", os);
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		goto out_nomem;
	n = strlen(text);
	full = malloc(n + 19);
	if (!full) {
		free(text);
		goto out_nomem;
	}
	memcpy(full, text, n);
	full[n] = '\n';
	snprintf(full + n + 1, 18, "%016llx\n",
		 (unsigned long long)eng_xxh3(full, n + 1));
	free(text);
	json_decref(root);
	json_decref(ws);
	json_decref(os);
	*out = full;
	*len = n + 18;
	return 0;
out_nomem:
	json_decref(root);
	json_decref(ws);
	json_decref(os);
	return -ENOMEM;
}

void eng_manifest_free(struct eng_manifest *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; m->objs && i < m->nobjs; i++)
		free(m->objs[i].coll);
	free(m->objs);
	free(m->writers);
	m->objs = NULL;
	m->writers = NULL;
	m->nobjs = m->nwriters = 0;
}
