/* store_docs.c - documents and nodes: ingest, cascade deletes, the index. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/store_int.h"
#include "core/vec.h"

/* Metadata keys LlamaIndex's SimpleDirectoryReader hides from LLM/embed. */
#define STORE_EXCLUDED_JSON                                             \
	"[\"file_name\",\"file_type\",\"file_size\",\"creation_date\"," \
	"\"last_modified_date\",\"last_accessed_date\"]"

static void store_hex128(const void *data, size_t len, char out[33])
{
	XXH128_hash_t h = XXH3_128bits(data, len);

	snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
}

/* Node ids are UUID-shaped and derived from (doc id, chunk number). */
static void store_node_uuid(const char *doc_id, size_t chunk, char out[37])
{
	XXH3_state_t st;
	XXH128_hash_t h;
	unsigned char b[16];
	uint64_t c = chunk;
	int i;

	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, doc_id, strlen(doc_id) + 1);
	XXH3_128bits_update(&st, &c, sizeof(c));
	h = XXH3_128bits_digest(&st);
	for (i = 0; i < 8; i++) {
		b[i] = (unsigned char)(h.high64 >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(h.low64 >> (56 - 8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x80); /* version 8: custom */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

/*
 * Hash of a node's text and metadata (m, the metadata's store_dump, or
 * NULL), as LlamaIndex's doc_hash role.
 */
static void store_text_hash(const char *text, size_t len, const char *m,
			    size_t mlen, char out[33])
{
	XXH3_state_t st;
	XXH128_hash_t h;

	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, text, len);
	if (m)
		XXH3_128bits_update(&st, m, mlen);
	h = XXH3_128bits_digest(&st);
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
}

static void store_node_hash(const char *text, size_t len, const json_t *meta,
			    char out[33])
{
	char *m = store_dump(meta);

	store_text_hash(text, len, m, m ? strlen(m) : 0, out);
	free(m);
}

/* What Python's mimetypes.guess_type says for common text types. */
static const char *store_mimetype(const char *name)
{
	static const struct {
		const char *ext, *type;
	} map[] = {
		{ ".txt", "text/plain" },
		{ ".md", "text/markdown" },
		{ ".markdown", "text/markdown" },
		{ ".html", "text/html" },
		{ ".htm", "text/html" },
		{ ".csv", "text/csv" },
		{ ".json", "application/json" },
		{ ".xml", "application/xml" },
		{ ".py", "text/x-python" },
		{ ".c", "text/x-csrc" },
		{ ".h", "text/x-chdr" },
		{ ".pdf", "application/pdf" },
		{ ".rst", "text/x-rst" },
		{ ".tex", "text/x-tex" },
		{ ".yaml", "application/yaml" },
		{ ".yml", "application/yaml" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	if (!dot)
		return NULL;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(dot, map[i].ext) == 0)
			return map[i].type;
	return NULL;
}

static json_t *store_date(time_t t)
{
	char buf[32];
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(buf, sizeof(buf), "%Y-%m-%d", &tm))
		return json_null();
	return json_string(buf);
}

/* SimpleDirectoryReader-like metadata plus the user's, user keys last. */
static json_t *store_doc_metadata(const struct store_doc *d, json_t *user)
{
	const char *base = strrchr(d->id, '/');
	const char *type = store_mimetype(d->id);
	json_t *m = json_object();
	const char *k;
	json_t *v;

	if (!m)
		return NULL;
	json_object_set_new(m, "file_path", json_string(d->id));
	json_object_set_new(m, "file_name",
			    json_string(base ? base + 1 : d->id));
	json_object_set_new(m, "file_type",
			    type ? json_string(type) : json_null());
	json_object_set_new(m, "file_size", json_integer((json_int_t)d->len));
	json_object_set_new(m, "creation_date",
			    store_date(d->ctime ? d->ctime : d->mtime));
	json_object_set_new(m, "last_modified_date", store_date(d->mtime));
	if (user)
		json_object_foreach(user, k, v) json_object_set(m, k, v);
	return m;
}

/*
 * Node JSON is written as text, not built as a jansson tree and dumped:
 * each node repeats its document's metadata two to four times.  The text
 * is exactly what store_dump of that tree writes (compact, keys in
 * insertion order, strings escaped as jansson escapes them).
 */
struct store_sbuf {
	char *p;
	size_t len, cap;
	int err; /* an allocation failed: the text is incomplete */
};

static void store_sb_put(struct store_sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void store_sb_str(struct store_sbuf *b, const char *s)
{
	store_sb_put(b, s, strlen(s));
}

/* s[0..n), valid UTF-8, as a JSON string escaped as jansson's dump does. */
static void store_sb_json_str(struct store_sbuf *b, const char *s, size_t n)
{
	static const char named[] = "\"\\\b\f\n\r\t", as[] = "\"\\bfnrt";
	const char *e;
	size_t i = 0, run;
	char esc[8];

	store_sb_put(b, "\"", 1);
	while (i < n) {
		for (run = i; run < n; run++) {
			unsigned char c = (unsigned char)s[run];

			if (c < 0x20 || c == '"' || c == '\\')
				break;
		}
		store_sb_put(b, s + i, run - i);
		if (run == n)
			break;
		e = memchr(named, s[run], sizeof(named) - 1);
		if (e)
			snprintf(esc, sizeof(esc), "\\%c", as[e - named]);
		else
			snprintf(esc, sizeof(esc), "\\u%04X",
				 (unsigned)(unsigned char)s[run]);
		store_sb_str(b, esc);
		i = run + 1;
	}
	store_sb_put(b, "\"", 1);
}

static void store_sb_int(struct store_sbuf *b, json_int_t v)
{
	char num[32];

	store_sb_put(
		b, num,
		(size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, v));
}

/* What each node of one document repeats. */
struct store_node_doc {
	const char *meta; /* store_dump of the metadata */
	size_t meta_len;
	struct store_sbuf id; /* the document id as a JSON string */
	const char *hash;     /* the document's doc_hash */
};

/* A RelatedNodeInfo; id is a JSON string (quoted and escaped). */
static void store_sb_related(struct store_sbuf *b, const char *id,
			     size_t id_len, const char *type,
			     const struct store_node_doc *nd, const char *hash)
{
	store_sb_str(b, "{\"node_id\":");
	store_sb_put(b, id, id_len);
	store_sb_str(b, ",\"node_type\":\"");
	store_sb_str(b, type);
	store_sb_str(b, "\",\"metadata\":");
	store_sb_put(b, nd->meta, nd->meta_len);
	store_sb_str(b, ",\"hash\":\"");
	store_sb_str(b, hash);
	store_sb_str(b, "\",\"class_name\":\"RelatedNodeInfo\"}");
}

/* A neighbour node of the same document (ids are plain UUIDs). */
static void store_sb_neighbour(struct store_sbuf *b, const char *rel,
			       const struct store_node_doc *nd, const char *id,
			       const char *hash)
{
	char quoted[40];

	store_sb_str(b, ",\"");
	store_sb_str(b, rel);
	store_sb_str(b, "\":");
	snprintf(quoted, sizeof(quoted), "\"%s\"", id);
	store_sb_related(b, quoted, strlen(quoted), STORE_TYPE_TEXT, nd, hash);
}

/*
 * Node i of n (ids and hashes: all the document's) as docstore/data holds
 * it: {"__data__": TextNode in the field order llama-index-core 0.12
 * writes, "__type__": "1"}.  A text that is not UTF-8 (a chunk cut inside
 * a character) is left out, as json_stringn refuses it.
 */
static void store_sb_node(struct store_sbuf *b, const struct store_node_doc *nd,
			  char (*ids)[37], char (*hashes)[33], size_t i,
			  size_t n, const struct text_chunk *c,
			  const char *text, int utf8)
{
	store_sb_str(b, "{\"__data__\":{\"id_\":\"");
	store_sb_str(b, ids[i]);
	store_sb_str(b, "\",\"embedding\":null,\"metadata\":");
	store_sb_put(b, nd->meta, nd->meta_len);
	store_sb_str(b, ",\"excluded_embed_metadata_keys\":" STORE_EXCLUDED_JSON
			",\"excluded_llm_metadata_keys\":" STORE_EXCLUDED_JSON
			",\"relationships\":{\"" STORE_REL_SOURCE "\":");
	store_sb_related(b, nd->id.p, nd->id.len, STORE_TYPE_DOCUMENT, nd,
			 nd->hash);
	if (i > 0)
		store_sb_neighbour(b, STORE_REL_PREVIOUS, nd, ids[i - 1],
				   hashes[i - 1]);
	if (i + 1 < n)
		store_sb_neighbour(b, STORE_REL_NEXT, nd, ids[i + 1],
				   hashes[i + 1]);
	store_sb_str(b, "},\"metadata_template\":\"{key}: {value}\","
			"\"metadata_separator\":\"\\n\",");
	if (utf8) {
		store_sb_str(b, "\"text\":");
		store_sb_json_str(b, text, c->end - c->start);
		store_sb_str(b, ",");
	}
	store_sb_str(b, "\"mimetype\":\"text/plain\",\"start_char_idx\":");
	store_sb_int(b, (json_int_t)c->start_char);
	store_sb_str(b, ",\"end_char_idx\":");
	store_sb_int(b, (json_int_t)c->end_char);
	store_sb_str(
		b,
		",\"metadata_seperator\":\"\\n\",\"text_template\":"
		"\"{metadata_str}\\n\\n{content}\","
		"\"class_name\":\"TextNode\"},\"__type__\":\"" STORE_TYPE_TEXT
		"\"}");
}

static json_t *store_wrap(json_t *data, const char *type)
{
	json_t *w = json_object();

	json_object_set_new(w, "__data__", data);
	json_object_set_new(w, "__type__", json_string(type));
	return w;
}

/* The vector the built-in embedding gives `text`, if the default ns fits. */
static int store_batch_builtin_vec(struct store *s, struct engine_batch *b,
				   const char *id, const char *text, size_t len)
{
	uint32_t dim = s->opts.embed_dim, have;
	float *v;
	int rc;

	if (!dim)
		return 0;
	have = engine_vec_dim(s->eng, STORE_VEC_PREFIX STORE_NS_DEFAULT);
	if (have && have != dim)
		return 0; /* the namespace holds a model's vectors */
	v = malloc(dim * sizeof(*v));
	if (!v)
		return -ENOMEM;
	vec_embed_hash(text, len, dim, v);
	rc = engine_batch_put_vec(b, STORE_VEC_PREFIX STORE_NS_DEFAULT, id, v,
				  dim);
	free(v);
	return rc;
}

int store_batch_del_node(struct engine_batch *b, char *const *nss,
			 const char *id)
{
	char coll[STORE_NS_MAX + 32];
	int rc;

	rc = engine_batch_del(b, STORE_C_DATA, id);
	if (!rc)
		rc = engine_batch_del(b, STORE_C_META, id);
	if (!rc)
		rc = engine_batch_put_json_compact(b, STORE_C_NODES_DEL, id,
						   "{}", 2);
	for (; !rc && nss && *nss; nss++) {
		snprintf(coll, sizeof(coll), STORE_VEC_PREFIX "%s", *nss);
		rc = engine_batch_del(b, coll, id);
		store_vec_meta_coll(*nss, coll, sizeof(coll));
		if (!rc)
			rc = engine_batch_del(b, coll, id);
	}
	return rc;
}

/* Deletes the nodes listed in ref_doc_info[doc_id], and that entry. */
static int store_batch_del_ref_doc(struct store *s, struct engine_batch *b,
				   char *const *nss, const char *doc_id)
{
	json_t *info, *ids;
	size_t i;
	int rc;

	rc = store_get_object(s, STORE_C_REFS, doc_id, &info);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	ids = json_object_get(info, "node_ids");
	for (i = 0; !rc && i < json_array_size(ids); i++) {
		const char *nid = json_string_value(json_array_get(ids, i));

		if (nid)
			rc = store_batch_del_node(b, nss, nid);
	}
	json_decref(info);
	if (!rc)
		rc = engine_batch_del(b, STORE_C_REFS, doc_id);
	if (!rc)
		rc = engine_batch_del(b, STORE_C_META, doc_id);
	return rc;
}

int store_check_path(const char *what, const char *id)
{
	const char *p = id;
	int rc = store_check_id(what, id);

	if (rc)
		return rc;
	if (*id == '/')
		return store_fail(-EINVAL, "%s %s is absolute", what, id);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return store_fail(-EINVAL,
					  "%s %s has an empty, . or .. part",
					  what, id);
		if (n > 255)
			return store_fail(-ENAMETOOLONG,
					  "%s %s has a part longer than 255 "
					  "bytes",
					  what, id);
		p += n;
		if (*p == '/')
			p++;
	}
	if (id[strlen(id) - 1] == '/')
		return store_fail(-EINVAL, "%s %s ends in /", what, id);
	return 0;
}

/* Splits text into nodes and adds them, their vectors and ref info to b. */
static int store_batch_ingest(struct store *s, struct engine_batch *b,
			      struct store_hints *hints,
			      const struct store_doc *d, const json_t *meta,
			      struct store_node_doc *nd)
{
	struct text_chunk *chunks = NULL;
	char(*ids)[37] = NULL, (*hashes)[33] = NULL;
	struct store_sbuf node = { 0 }, nm = { 0 };
	json_t *node_ids = json_array(), *info = NULL, *dmeta = NULL;
	float *vecs = NULL;
	size_t n = 0, i;
	int rc;

	rc = text_split(d->data, d->len, s->opts.chunk_size,
			s->opts.chunk_overlap, &chunks, &n);
	if (rc)
		goto out;
	ids = calloc(n ? n : 1, sizeof(*ids));
	hashes = calloc(n ? n : 1, sizeof(*hashes));
	if (!ids || !hashes || !node_ids) {
		rc = -ENOMEM;
		goto out;
	}
	if (s->embed && n) {
		/* every node of the document in as few requests as possible */
		rc = store_ingest_remote_vecs(s, d, chunks, n, &vecs);
		if (rc)
			goto out;
	}
	for (i = 0; i < n; i++) {
		store_node_uuid(d->id, i, ids[i]);
		store_text_hash((const char *)d->data + chunks[i].start,
				chunks[i].end - chunks[i].start, nd->meta,
				nd->meta_len, hashes[i]);
	}
	for (i = 0; i < n && !rc; i++) {
		const char *text = (const char *)d->data + chunks[i].start;
		size_t len = chunks[i].end - chunks[i].start;
		int utf8 = text_is_utf8(text, len);

		node.len = 0;
		store_sb_node(&node, nd, ids, hashes, i, n, &chunks[i], text,
			      utf8);
		nm.len = 0;
		store_sb_str(&nm, "{\"doc_hash\":\"");
		store_sb_str(&nm, hashes[i]);
		store_sb_str(&nm, "\",\"ref_doc_id\":");
		store_sb_put(&nm, nd->id.p, nd->id.len);
		store_sb_str(&nm, "}");
		if (node.err || nm.err) {
			rc = -ENOMEM;
			break;
		}
		rc = store_batch_put_dump(b, STORE_C_DATA, ids[i], node.p,
					  node.len);
		if (!rc && hints && utf8)
			rc = store_hints_add(hints, ids[i], node.p, node.len,
					     text, len);
		if (!rc)
			rc = store_batch_put_dump(b, STORE_C_META, ids[i], nm.p,
						  nm.len);
		if (!rc && vecs)
			rc = engine_batch_put_vec(
				b, STORE_VEC_PREFIX STORE_NS_DEFAULT, ids[i],
				vecs + i * (size_t)s->opts.embed_dim,
				s->opts.embed_dim);
		else if (!rc)
			rc = store_batch_builtin_vec(s, b, ids[i], text, len);
		json_array_append_new(node_ids, json_string(ids[i]));
	}
	if (rc)
		goto out;
	info = json_pack("{s:O,s:O}", "node_ids", node_ids, "metadata", meta);
	dmeta = json_pack("{s:s}", "doc_hash", nd->hash);
	if (!info || !dmeta) {
		rc = -ENOMEM;
		goto out;
	}
	rc = store_batch_put_obj(b, STORE_C_REFS, d->id, info);
	if (!rc)
		rc = store_batch_put_obj(b, STORE_C_META, d->id, dmeta);
out:
	json_decref(info);
	json_decref(dmeta);
	json_decref(node_ids);
	free(node.p);
	free(nm.p);
	free(ids);
	free(hashes);
	free(vecs);
	text_chunks_free(chunks, n);
	return rc;
}

/* Ingests d with its metadata: the doc_hash, then the nodes. */
static int store_batch_ingest_doc(struct store *s, struct engine_batch *b,
				  struct store_hints *hints,
				  const struct store_doc *d, const json_t *meta)
{
	struct store_node_doc nd = { 0 };
	char *m = store_dump(meta), doc_hash[33];
	int rc = -ENOMEM;

	if (m) {
		nd.meta = m;
		nd.meta_len = strlen(m);
		nd.hash = doc_hash;
		store_sb_json_str(&nd.id, d->id, strlen(d->id));
		store_text_hash(d->data, d->len, m, nd.meta_len, doc_hash);
		if (!nd.id.err)
			rc = store_batch_ingest(s, b, hints, d, meta, &nd);
	}
	free(nd.id.p);
	free(m);
	return rc;
}

/* The lodefs/files record of a document version (`d` has its defaults). */
static json_t *store_file_record(const struct store_doc *d, const char *hash,
				 int text, const json_t *user)
{
	return json_pack("{s:i,s:I,s:I,s:I,s:s,s:b,s:o,s:I}", "mode",
			 (int)d->mode, "mtime", (json_int_t)d->mtime, "ctime",
			 (json_int_t)d->ctime, "size", (json_int_t)d->len,
			 "hash", hash, "indexed", text, "xattrs",
			 user ? json_deep_copy(user) : json_object(), "ino",
			 (json_int_t)d->ino);
}

/* Is the stored content of `id` the one the record `old` hashes so? */
static int store_same_content(struct store *s, const json_t *old,
			      const char *id, const char *hash)
{
	return old &&
	       strcmp(store_str(json_object_get(old, "hash")), hash) == 0 &&
	       engine_exists(s->eng, STORE_C_CONTENT, id);
}

static int store_same_user(const json_t *old, const json_t *user)
{
	const json_t *x = json_object_get(old, "xattrs");

	return user ? json_equal(x, user) : json_object_size(x) == 0;
}

/* Do the nodes of `id` carry `meta` (ref_doc_info holds what they do)? */
static int store_nodes_current(struct store *s, const char *id,
			       const json_t *meta)
{
	json_t *info;
	int same;

	if (!engine_exists(s->eng, STORE_C_REFS, id) ||
	    store_get_object(s, STORE_C_REFS, id, &info))
		return 0;
	same = json_equal(json_object_get(info, "metadata"), meta);
	json_decref(info);
	return same;
}

/* The record of `id` in lodefs/files, or NULL if none or damaged. */
static json_t *store_old_record(struct store *s, const char *id)
{
	json_t *old;

	if (!engine_exists(s->eng, STORE_C_FILES, id) ||
	    store_get_object(s, STORE_C_FILES, id, &old)) {
		store_clear_error(); /* a damaged record is overwritten */
		return NULL;
	}
	return old;
}

/*
 * Same content and user metadata is STORE_UNCHANGED: only the record is
 * written if the mode, times or inode number differ, and the nodes are
 * made again only if their metadata (the dates) would differ, which makes
 * it STORE_INDEXED.
 */
int store_batch_doc_json(struct store *s, struct engine_batch *b,
			 struct store_hints *hints, char *const *nss,
			 const struct store_doc *d, json_t *user, int *result)
{
	struct store_doc v = *d; /* d with its defaults resolved */
	json_t *old = NULL, *meta = NULL, *file = NULL;
	char hash[33];
	int text, same, rc;

	rc = store_check_path("document id", d->id);
	if (rc)
		return rc;
	v.user_meta = NULL;
	if (!v.mode)
		v.mode = 0644;
	if (!v.mtime)
		v.mtime = time(NULL);
	if (!v.ctime)
		v.ctime = v.mtime;
	old = store_old_record(s, d->id);
	if (!v.ino)
		v.ino = store_u64(json_object_get(old, "ino"));
	if (!v.ino)
		v.ino = store_new_ino(d->id);
	store_hex128(d->data, d->len, hash);
	text = text_is_utf8(d->data, d->len);
	meta = store_doc_metadata(&v, user);
	file = store_file_record(&v, hash, text, user);
	if (!meta || !file) {
		rc = -ENOMEM;
		goto out;
	}
	same = store_same_content(s, old, d->id, hash);
	if (!same) {
		rc = store_batch_del_ref_doc(s, b, nss, d->id);
		if (!rc)
			rc = engine_batch_put_blob(b, STORE_C_CONTENT, d->id,
						   d->data, d->len);
		*result = text ? STORE_INDEXED : STORE_BINARY;
	} else if (store_same_user(old, user)) {
		*result = STORE_UNCHANGED;
	} else {
		*result = text ? STORE_INDEXED : STORE_BINARY;
	}
	if (same && json_equal(old, file))
		goto out; /* the same everything: nothing to write */
	if (!rc)
		rc = store_batch_put_obj(b, STORE_C_FILES, d->id, file);
	if (rc || !text || (same && store_nodes_current(s, d->id, meta)))
		goto out;
	if (same)
		rc = store_batch_del_ref_doc(s, b, nss, d->id);
	if (!rc)
		rc = store_batch_ingest_doc(s, b, hints, &v, meta);
	*result = STORE_INDEXED;
out:
	json_decref(old);
	json_decref(meta);
	json_decref(file);
	return rc;
}

int store_batch_doc(struct store *s, struct engine_batch *b,
		    struct store_hints *hints, char *const *nss,
		    const struct store_doc *d, int *result)
{
	json_t *user = NULL;
	int rc;

	if (d->user_meta) {
		rc = store_parse_object("metadata", d->user_meta,
					strlen(d->user_meta), &user);
		if (rc)
			return rc;
	}
	rc = store_batch_doc_json(s, b, hints, nss, d, user, result);
	json_decref(user);
	return rc;
}

int store_batch_doc_del(struct store *s, struct engine_batch *b,
			char *const *nss, const char *id)
{
	int rc;

	rc = store_batch_del_ref_doc(s, b, nss, id);
	if (!rc)
		rc = engine_batch_del(b, STORE_C_CONTENT, id);
	if (!rc)
		rc = engine_batch_del(b, STORE_C_FILES, id);
	return rc;
}

int store_docs_put(struct store *s, const struct store_doc *docs, size_t n,
		   int *results)
{
	struct store_hints hints = { 0 };
	struct engine_batch *b = NULL;
	char **nss = NULL;
	size_t i, j;
	int rc, r;

	store_clear_error();
	/* embeddings server: every document in one go, outside the lock */
	if (s->embed && store_embed_prepare(s, docs, n) == -ENOMEM) {
		store_embed_release(s);
		return -ENOMEM;
	}
	pthread_mutex_lock(&s->wlock);
	rc = store_list_namespaces(s, &nss);
	if (rc)
		goto out;
	b = engine_batch_new();
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && !rc; i++) {
		/* A later entry with the same id wins: skip this one. */
		for (j = i + 1; j < n; j++)
			if (strcmp(docs[i].id, docs[j].id) == 0)
				break;
		if (j < n)
			continue;
		r = STORE_UNCHANGED;
		rc = store_batch_doc(s, b, &hints, nss, &docs[i], &r);
		if (results)
			results[i] = r;
	}
	if (!rc)
		rc = store_commit_hinted(s, b, &hints);
	if (!rc && results)
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				if (strcmp(docs[i].id, docs[j].id) == 0)
					results[i] = results[j];
out:
	engine_batch_free(b);
	store_hints_free(&hints);
	store_free_strv(nss);
	pthread_mutex_unlock(&s->wlock);
	store_embed_release(s);
	return rc;
}

int store_doc_get(struct store *s, const char *id, void **data, size_t *len)
{
	return engine_get(s->eng, STORE_C_CONTENT, id, NULL, data, len);
}

int store_doc_get_ref(struct store *s, const char *id, struct engine_ref *ref)
{
	store_clear_error();
	return engine_get_ref_lazy(s->eng, STORE_C_CONTENT, id, ref);
}

int store_ref_check(struct store *s, const struct engine_ref *ref, size_t off,
		    size_t len)
{
	store_clear_error();
	return engine_ref_check(s ? s->eng : NULL, ref, off, len);
}

void store_ref_release(struct store *s, struct engine_ref *ref)
{
	engine_ref_release(s ? s->eng : NULL, ref);
}

int store_doc_exists(struct store *s, const char *id)
{
	return engine_exists(s->eng, STORE_C_CONTENT, id) ||
	       engine_exists(s->eng, STORE_C_REFS, id);
}

int store_doc_del(struct store *s, const char *id)
{
	struct engine_batch *b = NULL;
	char **nss = NULL;
	int rc;

	store_clear_error();
	pthread_mutex_lock(&s->wlock);
	if (!store_doc_exists(s, id)) {
		rc = -ENOENT;
		goto out;
	}
	rc = store_list_namespaces(s, &nss);
	if (rc)
		goto out;
	b = engine_batch_new();
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	rc = store_batch_doc_del(s, b, nss, id);
	if (!rc)
		rc = engine_commit(s->eng, b);
out:
	engine_batch_free(b);
	store_free_strv(nss);
	pthread_mutex_unlock(&s->wlock);
	return rc;
}

/* --- nodes -------------------------------------------------------------- */

static const char *store_source_of(const json_t *node)
{
	json_t *rels = json_object_get(node, "relationships");
	json_t *src = json_object_get(rels, STORE_REL_SOURCE);

	return json_string_value(json_object_get(src, "node_id"));
}

/* Removes node `id` from ref_doc_info[ref] in batch b (if listed). */
static int store_batch_unref(struct store *s, struct engine_batch *b,
			     const char *ref, const char *id)
{
	json_t *info, *ids;
	size_t i;
	int rc;

	rc = store_get_object(s, STORE_C_REFS, ref, &info);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	ids = json_object_get(info, "node_ids");
	for (i = 0; i < json_array_size(ids); i++)
		if (strcmp(store_str(json_array_get(ids, i)), id) == 0)
			json_array_remove(ids, i--);
	if (json_array_size(ids) == 0 &&
	    !engine_exists(s->eng, STORE_C_CONTENT, ref)) {
		rc = engine_batch_del(b, STORE_C_REFS, ref);
		if (!rc)
			rc = engine_batch_del(b, STORE_C_META, ref);
	} else {
		rc = store_batch_put_obj(b, STORE_C_REFS, ref, info);
	}
	json_decref(info);
	return rc;
}

/* Adds node `id` to ref_doc_info[ref] in batch b, creating it if needed. */
static int store_batch_ref(struct store *s, struct engine_batch *b,
			   const char *ref, const char *id, const json_t *meta)
{
	json_t *info, *ids;
	size_t i;
	int rc;

	rc = store_get_object(s, STORE_C_REFS, ref, &info);
	if (rc == -ENOENT) {
		info = json_pack("{s:[],s:O}", "node_ids", "metadata",
				 meta ? meta : json_object());
		rc = info ? 0 : -ENOMEM;
	}
	if (rc)
		return rc;
	ids = json_object_get(info, "node_ids");
	if (!json_is_array(ids)) {
		ids = json_array();
		json_object_set_new(info, "node_ids", ids);
	}
	for (i = 0; i < json_array_size(ids); i++)
		if (strcmp(store_str(json_array_get(ids, i)), id) == 0)
			break;
	if (i == json_array_size(ids))
		json_array_append_new(ids, json_string(id));
	rc = store_batch_put_obj(b, STORE_C_REFS, ref, info);
	json_decref(info);
	return rc;
}

/* Parses a node's embedding array into *v (malloc'd) and *dim. */
static int store_parse_embedding(const json_t *emb, float **v, uint32_t *dim)
{
	size_t i, n = json_array_size(emb);

	*v = NULL;
	*dim = 0;
	if (json_is_null(emb) || !emb)
		return 0;
	if (!json_is_array(emb) || n == 0)
		return store_fail(-EINVAL,
				  "node \"embedding\" must be null or a "
				  "non-empty array of numbers");
	*v = malloc(n * sizeof(**v));
	if (!*v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_t *x = json_array_get(emb, i);

		if (!json_is_number(x)) {
			free(*v);
			*v = NULL;
			return store_fail(-EINVAL,
					  "node \"embedding\"[%zu] is not a "
					  "number",
					  i);
		}
		(*v)[i] = (float)json_number_value(x);
	}
	*dim = (uint32_t)n;
	return 0;
}

int store_node_put(struct store *s, const char *json, size_t len)
{
	json_t *root, *node, *meta, *old = NULL, *wrapped = NULL, *nm = NULL;
	const char *id, *ref, *old_ref = NULL, *type = STORE_TYPE_TEXT;
	const char *text;
	struct engine_batch *b = NULL;
	float *v = NULL;
	uint32_t dim = 0, have;
	char hash[33];
	int rc;

	store_clear_error();
	rc = store_parse_object("node", json, len, &root);
	if (rc)
		return rc;
	node = root;
	if (json_is_object(json_object_get(root, "__data__"))) {
		node = json_object_get(root, "__data__");
		if (json_is_string(json_object_get(root, "__type__")))
			type = json_string_value(
				json_object_get(root, "__type__"));
	}
	id = json_string_value(json_object_get(node, "id_"));
	if (!id) {
		rc = store_fail(-EINVAL, "node has no string \"id_\"");
		goto out;
	}
	if (strlen(id) != json_string_length(json_object_get(node, "id_"))) {
		rc = store_fail(-EINVAL, "node \"id_\" contains a NUL byte");
		goto out;
	}
	rc = store_check_id("node", id);
	if (rc)
		goto out;
	if (json_object_get(node, "text") &&
	    !json_is_string(json_object_get(node, "text"))) {
		rc = store_fail(-EINVAL, "node \"text\" is not a string");
		goto out;
	}
	meta = json_object_get(node, "metadata");
	if (meta && !json_is_object(meta) && !json_is_null(meta)) {
		rc = store_fail(-EINVAL, "node \"metadata\" is not an object");
		goto out;
	}
	rc = store_parse_embedding(json_object_get(node, "embedding"), &v,
				   &dim);
	if (rc)
		goto out;
	have = engine_vec_dim(s->eng, STORE_VEC_PREFIX STORE_NS_DEFAULT);
	if (v && have && have != dim) {
		rc = store_fail(-EINVAL,
				"node embedding has %u dimensions; namespace "
				"default holds %u",
				dim, have);
		goto out;
	}
	/* Vectors live in the vector store; the docstore keeps null. */
	json_object_set_new(node, "embedding", json_null());
	ref = store_source_of(node);
	if (ref &&
	    strlen(ref) !=
		    json_string_length(json_object_get(
			    json_object_get(
				    json_object_get(node, "relationships"),
				    STORE_REL_SOURCE),
			    "node_id"))) {
		rc = store_fail(-EINVAL, "source node_id contains a NUL byte");
		goto out;
	}
	if (ref) {
		rc = store_check_id("ref doc", ref);
		if (rc)
			goto out;
	}
	text = json_string_value(json_object_get(node, "text"));
	if (!text)
		text = "";
	store_node_hash(text, strlen(text), meta ? meta : json_null(), hash);
	if (!v && s->embed) {
		/* before the lock: other writers need not wait for the server */
		size_t tl = strlen(text);

		dim = s->opts.embed_dim;
		v = malloc(dim * sizeof(*v));
		rc = v ? store_embed_texts(s, &text, &tl, 1, v) : -ENOMEM;
		if (rc)
			goto out;
	}

	pthread_mutex_lock(&s->wlock);
	b = engine_batch_new();
	if (!b) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	if (store_get_object(s, STORE_C_DATA, id, &old) == 0)
		old_ref = store_source_of(json_object_get(old, "__data__"));
	if (old_ref && (!ref || strcmp(old_ref, ref) != 0))
		rc = store_batch_unref(s, b, old_ref, id);
	wrapped = store_wrap(json_incref(node), type);
	if (!rc)
		rc = store_batch_put_obj(b, STORE_C_DATA, id, wrapped);
	nm = ref ? json_pack("{s:s,s:s}", "doc_hash", hash, "ref_doc_id", ref)
		 : json_pack("{s:s}", "doc_hash", hash);
	if (!rc)
		rc = store_batch_put_obj(b, STORE_C_META, id, nm);
	if (!rc && ref)
		rc = store_batch_ref(s, b, ref, id, meta);
	if (!rc && v)
		rc = engine_batch_put_vec(b, STORE_VEC_PREFIX STORE_NS_DEFAULT,
					  id, v, dim);
	else if (!rc)
		rc = store_batch_builtin_vec(s, b, id, text, strlen(text));
	if (!rc)
		rc = engine_commit(s->eng, b);
out_unlock:
	pthread_mutex_unlock(&s->wlock);
out:
	engine_batch_free(b);
	json_decref(old);
	json_decref(wrapped);
	json_decref(nm);
	json_decref(root);
	free(v);
	return rc;
}

int store_node_get(struct store *s, const char *id, char **json, size_t *len)
{
	json_t *w, *d;
	char *text;
	int rc;

	rc = store_get_object(s, STORE_C_DATA, id, &w);
	if (rc)
		return rc;
	d = json_object_get(w, "__data__");
	text = d ? store_dump(d) : NULL;
	json_decref(w);
	if (!text)
		return d ? -ENOMEM
			 : store_fail(-EINVAL, "node %s is damaged", id);
	*json = text;
	*len = strlen(text);
	return 0;
}

int store_node_del(struct store *s, const char *id)
{
	struct engine_batch *b = NULL;
	char **nss = NULL;
	json_t *old = NULL;
	const char *ref;
	int rc;

	store_clear_error();
	pthread_mutex_lock(&s->wlock);
	rc = store_get_object(s, STORE_C_DATA, id, &old);
	if (rc)
		goto out;
	rc = store_list_namespaces(s, &nss);
	if (rc)
		goto out;
	b = engine_batch_new();
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	rc = store_batch_del_node(b, nss, id);
	ref = store_source_of(json_object_get(old, "__data__"));
	if (!rc && ref)
		rc = store_batch_unref(s, b, ref, id);
	if (!rc)
		rc = engine_commit(s->eng, b);
out:
	engine_batch_free(b);
	store_free_strv(nss);
	json_decref(old);
	pthread_mutex_unlock(&s->wlock);
	return rc;
}
