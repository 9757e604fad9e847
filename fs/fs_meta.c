/* fs_meta.c - .lodefs/: stats, effective configuration and recent errors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/vec.h"
#include "fs/fs_int.h"

void fs_error(struct fs *fs, const char *path, const char *fmt, ...)
{
	struct fs_errlog *l = &fs->errs;
	char reason[512], stamp[32], *line;
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* one line each, whatever the reason contains */
	for (i = 0; reason[i]; i++)
		if (reason[i] == '\n' || reason[i] == '\r')
			reason[i] = ' ';
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (asprintf(&line, "%s %s %s\n", stamp, path && *path ? path : "-",
		     reason) < 0)
		return;
	pthread_mutex_lock(&l->mu);
	if (l->n == FS_ERRORS_MAX) {
		free(l->lines[l->head]);
		l->lines[l->head] = line;
		l->head = (l->head + 1) % FS_ERRORS_MAX;
	} else {
		l->lines[(l->head + l->n) % FS_ERRORS_MAX] = line;
		l->n++;
	}
	l->total++;
	pthread_mutex_unlock(&l->mu);
	if (fs->opts.foreground)
		fprintf(stderr, "lodefs: %s", line);
}

void fs_errlog_free(struct fs_errlog *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->lines[(l->head + i) % FS_ERRORS_MAX]);
	l->n = 0;
}

static int fs_meta_errors(struct fs *fs, char **out, size_t *len)
{
	struct fs_errlog *l = &fs->errs;
	size_t n = 0, i;
	char *buf, *p;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->n; i++)
		n += strlen(l->lines[(l->head + i) % FS_ERRORS_MAX]);
	buf = malloc(n + 1);
	if (buf) {
		p = buf;
		for (i = 0; i < l->n; i++) {
			const char *s = l->lines[(l->head + i) % FS_ERRORS_MAX];
			size_t sl = strlen(s);

			memcpy(p, s, sl);
			p += sl;
		}
		*p = 0;
	}
	pthread_mutex_unlock(&l->mu);
	if (!buf)
		return -ENOMEM;
	*out = buf;
	*len = n;
	return 0;
}

static const char *const fs_op_names[FS_OP_MAX] = {
	"lookup", "getattr", "setattr", "open",	  "read",   "write",
	"flush",  "release", "fsync",	"create", "unlink", "mkdir",
	"rmdir",  "rename",  "readdir", "xattr",  "forget", "other",
};

static int fs_meta_ns(void *arg, const char *ns, size_t count, uint32_t dim)
{
	json_object_set_new(arg, ns,
			    json_pack("{s:I,s:i}", "vectors", (json_int_t)count,
				      "dim", (int)dim));
	return 0;
}

static json_t *fs_meta_refresh(struct fs *fs)
{
	return json_pack(
		"{s:f,s:I,s:I,s:I,s:I}", "interval_s", fs->opts.refresh,
		"refreshes", (json_int_t)atomic_load(&fs->refreshes), "changes",
		(json_int_t)atomic_load(&fs->refresh_changes), "errors",
		(json_int_t)atomic_load(&fs->refresh_errors), "last_unix_ms",
		(json_int_t)(atomic_load(&fs->last_refresh_ns) / 1000000));
}

static json_t *fs_meta_backend(struct fs *fs, const struct store_stats *st)
{
	json_t *b = json_pack("{s:s,s:s,s:s}", "kind", fs->opts.backend_kind,
			      "where", fs->be->where ? fs->be->where : "",
			      "writer", st->engine.writer);
	struct backend_source_stats bs;

	if (!backend_source_get_stats(&fs->src, &bs)) {
		json_object_set_new(
			b, "requests",
			json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
				  "total", (json_int_t)bs.s3.requests,
				  "retries", (json_int_t)bs.s3.retries, "get",
				  (json_int_t)bs.s3.get, "put",
				  (json_int_t)bs.s3.put, "head",
				  (json_int_t)bs.s3.head, "delete",
				  (json_int_t)bs.s3.del, "list",
				  (json_int_t)bs.s3.list, "bytes_up",
				  (json_int_t)bs.s3.bytes_up, "bytes_down",
				  (json_int_t)bs.s3.bytes_down));
		if (bs.has_cache)
			json_object_set_new(
				b, "cache",
				json_pack("{s:I,s:I,s:I,s:I,s:I}", "hits",
					  (json_int_t)bs.cache.hits, "misses",
					  (json_int_t)bs.cache.misses,
					  "evictions",
					  (json_int_t)bs.cache.evictions,
					  "corrupt",
					  (json_int_t)bs.cache.corrupt, "bytes",
					  (json_int_t)bs.cache.bytes));
	}
	return b;
}

static json_t *fs_meta_stats(struct fs *fs)
{
	struct store_stats st;
	json_t *o, *ops = json_object(), *nss = json_object();
	size_t pending, pbytes, removals;
	int i;

	store_get_stats(fs->st, &st);
	store_namespaces(fs->st, fs_meta_ns, nss);
	for (i = 0; i < FS_OP_MAX; i++)
		json_object_set_new(
			ops, fs_op_names[i],
			json_integer((json_int_t)atomic_load(&fs->ops[i])));
	pthread_mutex_lock(&fs->pend_mu);
	pending = fs->n_pend;
	pbytes = fs->pend_bytes;
	removals = fs->dels.n;
	pthread_mutex_unlock(&fs->pend_mu);
	o = json_pack("{s:I,s:I,s:o,s:I,s:I}", "documents",
		      (json_int_t)st.documents, "nodes", (json_int_t)st.nodes,
		      "vectors", nss, "triples", (json_int_t)st.triples,
		      "indexes", (json_int_t)st.indexes);
	json_object_set_new(
		o, "bytes",
		json_pack("{s:I,s:I,s:I,s:I}", "segments",
			  (json_int_t)st.engine.segment_bytes, "checkpoint",
			  (json_int_t)st.engine.checkpoint_bytes, "memory",
			  (json_int_t)st.engine.mem_bytes, "mapped",
			  (json_int_t)st.engine.values_mapped));
	json_object_set_new(o, "backend", fs_meta_backend(fs, &st));
	json_object_set_new(o, "refresh", fs_meta_refresh(fs));
	json_object_set_new(
		o, "writes",
		json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "commits",
			  (json_int_t)atomic_load(&fs->commits), "errors",
			  (json_int_t)atomic_load(&fs->commit_errors),
			  "pending_documents", (json_int_t)pending,
			  "pending_bytes", (json_int_t)pbytes,
			  "pending_removals", (json_int_t)removals,
			  "last_commit_unix_ms",
			  (json_int_t)(atomic_load(&fs->last_commit_ns) /
				       1000000),
			  "segments", (json_int_t)st.engine.segments));
	json_object_set_new(
		o, "queries",
		json_pack("{s:I,s:I}", "served",
			  (json_int_t)atomic_load(&fs->queries), "cache_hits",
			  (json_int_t)atomic_load(&fs->query_cache_hits)));
	json_object_set_new(
		o, "cache",
		json_pack("{s:I,s:b}", "inodes", (json_int_t)fs->itab_n,
			  "keyword_index_loaded", st.keyword_index_loaded));
	json_object_set_new(
		o, "ann",
		json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "graphs",
			  (json_int_t)st.ann.graphs, "nodes",
			  (json_int_t)st.ann.nodes, "deleted",
			  (json_int_t)st.ann.deleted, "pending",
			  (json_int_t)st.ann.pending, "loaded",
			  (json_int_t)st.ann.loaded, "built",
			  (json_int_t)st.ann.built, "discarded",
			  (json_int_t)st.ann.discarded, "searches",
			  (json_int_t)st.ann.searches, "saves",
			  (json_int_t)st.ann.saves, "save_failures",
			  (json_int_t)st.ann.save_failures));
	json_object_set_new(o, "persist", fs_persist_stats(fs));
	json_object_set_new(o, "requests", ops);
	json_object_set_new(o, "errors",
			    json_integer((json_int_t)fs->errs.total));
	return o;
}

static json_t *fs_meta_config(struct fs *fs)
{
	const struct fs_opts *o = &fs->opts;

	json_t *j = json_pack(
		"{s:s,s:s,s:s,s:s,s:i,s:i,s:f,s:f,s:b,s:b,s:b,s:i,s:i,s:f}",
		"source", o->source, "backend", o->backend_kind, "store",
		fs->be->where ? fs->be->where : "", "sync",
		o->sync == FS_SYNC_FSYNC ? "fsync" : "close", "chunk_size",
		(int)o->chunk_size, "chunk_overlap", (int)o->chunk_overlap,
		"attr_timeout", o->attr_timeout, "entry_timeout",
		o->entry_timeout, "allow_other", o->allow_other,
		"default_permissions", o->default_permissions, "ro",
		o->read_only, "max_threads", (int)o->max_threads,
		"checkpoint_segments", (int)o->checkpoint_segments, "refresh",
		o->refresh);

	if (j)
		json_object_set_new(j, "ann_threshold",
				    json_integer((json_int_t)o->ann_threshold));
	if (j && o->remote)
		json_object_update(j, o->remote);
	if (j)
		json_object_set_new(j, "bm25_bigrams",
				    json_boolean(o->bm25_bigrams));
	/* where vectors come from; the API key is never shown */
	if (j && o->embed_url)
		json_object_set_new(
			j, "embed",
			json_pack("{s:s,s:s,s:i,s:i}", "url", o->embed_url,
				  "model", o->embed_model ? o->embed_model : "",
				  "dim", (int)o->embed_dim, "timeout_ms",
				  (int)(o->embed_timeout_ms
						? o->embed_timeout_ms
						: 30000)));
	else if (j)
		json_object_set_new(
			j, "embed",
			json_pack("{s:s,s:i}", "builtin", "hashed", "dim",
				  (int)(o->embed_dim ? o->embed_dim
						     : VEC_EMBED_DIM_DEFAULT)));
	return j;
}

int fs_meta_content(struct fs *fs, uint64_t ino, char **out, size_t *len)
{
	json_t *j;
	char *s;

	if (ino == FS_INO_ERRORS)
		return fs_meta_errors(fs, out, len);
	j = ino == FS_INO_STATS	    ? fs_meta_stats(fs)
	    : ino == FS_INO_REFRESH ? fs_meta_refresh(fs)
				    : fs_meta_config(fs);
	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	*len = strlen(s);
	/* a trailing newline, as a text file has */
	s = realloc(s, *len + 2);
	if (!s)
		return -ENOMEM;
	s[(*len)++] = '\n';
	s[*len] = 0;
	*out = s;
	return 0;
}
