/* lodefs.c - the mount command: options, the store, the FUSE session. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/backend_source.h"
#include "core/vec.h"
#include "fs/fs_int.h"

#define LODEFS_LOCK ".lodefs.lock"

struct lodefs_cli {
	char *pos[3];
	int n_pos;
	char *sync;
	unsigned chunk_size, chunk_overlap, checkpoint_segments;
	unsigned long ann_threshold; /* ULONG_MAX: not given */
	double attr_timeout, entry_timeout, refresh;
	int ro, allow_other, default_permissions, help, version;
	/* remote stores */
	char *endpoint, *region, *passwd_file, *profile, *cache_dir,
		*cache_size;
	int path_style;
	unsigned timeout;
	/* an embeddings server */
	char *embed, *embed_model;
	unsigned embed_dim, embed_timeout;
	int bm25_bigrams; /* -1: default */
};

enum {
	KEY_RO,
	KEY_ALLOW_OTHER,
	KEY_DEFAULT_PERMISSIONS,
	KEY_HELP,
	KEY_VERSION,
	KEY_PATH_STYLE,
};

#define LODEFS_OPT(t, p)                             \
	{                                            \
		t, offsetof(struct lodefs_cli, p), 1 \
	}
static const struct fuse_opt lodefs_opts[] = {
	LODEFS_OPT("sync=%s", sync),
	LODEFS_OPT("chunk_size=%u", chunk_size),
	LODEFS_OPT("chunk_overlap=%u", chunk_overlap),
	LODEFS_OPT("checkpoint_segments=%u", checkpoint_segments),
	LODEFS_OPT("ann_threshold=%lu", ann_threshold),
	LODEFS_OPT("attr_timeout=%lf", attr_timeout),
	LODEFS_OPT("entry_timeout=%lf", entry_timeout),
	LODEFS_OPT("refresh=%lf", refresh),
	LODEFS_OPT("endpoint=%s", endpoint),
	LODEFS_OPT("region=%s", region),
	LODEFS_OPT("passwd_file=%s", passwd_file),
	LODEFS_OPT("profile=%s", profile),
	LODEFS_OPT("cache_dir=%s", cache_dir),
	LODEFS_OPT("cache_size=%s", cache_size),
	LODEFS_OPT("timeout=%u", timeout),
	LODEFS_OPT("path_style=%d", path_style),
	LODEFS_OPT("embed=%s", embed),
	LODEFS_OPT("embed_model=%s", embed_model),
	LODEFS_OPT("embed_dim=%u", embed_dim),
	LODEFS_OPT("embed_timeout=%u", embed_timeout),
	LODEFS_OPT("bm25_bigrams=%d", bm25_bigrams),
	FUSE_OPT_KEY("path_style", KEY_PATH_STYLE),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

static int lodefs_opt_proc(void *data, const char *arg, int key,
			   struct fuse_args *out)
{
	struct lodefs_cli *c = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (c->n_pos >= 2) {
			fprintf(stderr, "lodefs: too many arguments: %s\n",
				arg);
			return -1;
		}
		c->pos[c->n_pos++] = strdup(arg);
		return 0;
	case KEY_RO:
		c->ro = 1;
		return 1;
	case KEY_ALLOW_OTHER:
		c->allow_other = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		c->default_permissions = 1;
		return 1;
	case KEY_HELP:
		c->help = 1;
		return 0;
	case KEY_VERSION:
		c->version = 1;
		return 0;
	case KEY_PATH_STYLE:
		c->path_style = 1;
		return 0;
	default:
		return 1;
	}
}

static void lodefs_usage(void)
{
	printf("usage: lodefs [-o OPTIONS] [SOURCE] MOUNTPOINT\n"
	       "\n"
	       "Mounts a lodefs store: documents, nodes, vectors, index "
	       "structs and triples\n"
	       "as files; search results under query/.\n"
	       "\n"
	       "SOURCE   a local store directory (made if absent); omitted: "
	       "the default,\n"
	       "         ${XDG_DATA_HOME:-~/.local/share}/lodefs/default;\n"
	       "         s3://BUCKET[/PREFIX] or "
	       "r2://ACCOUNT_ID/BUCKET[/PREFIX]"
	       " (credentials\n"
	       "         from AWS_* variables, ~/.aws, or passwd_file=)\n"
	       "\n"
	       "lodefs options (-o):\n"
	       "  sync=close|fsync       close: a file is durable when "
	       "close() returns (default)\n"
	       "                         fsync: durable at fsync(), or "
	       "within a second (bulk loads)\n"
	       "  chunk_size=N           tokens per node (default %d)\n"
	       "  chunk_overlap=N        tokens shared by neighbour nodes "
	       "(default %d)\n"
	       "  attr_timeout=S         kernel attribute cache, seconds "
	       "(default 1)\n"
	       "  entry_timeout=S        kernel name cache, seconds "
	       "(default 1)\n"
	       "  checkpoint_segments=N  checkpoint after N commits "
	       "(default 1000)\n"
	       "  ann_threshold=N        HNSW graph for vector namespaces "
	       "of N vectors or more\n"
	       "                         (default %d; 0 = always exact)\n"
	       "  refresh=S              catch up with other mounts every S "
	       "seconds\n"
	       "                         (default 5 for s3:// and r2://, 0 "
	       "= never for local)\n"
	       "  bm25_bigrams=0|1       word pairs in the keyword index "
	       "(default 1; 0: a\n"
	       "                         tenth of its memory, slightly "
	       "worse ranking)\n"
	       "  embed=URL              embeddings server (OpenAI /v1/"
	       "embeddings) for nodes and\n"
	       "                         queries without a vector; key from "
	       "LODEFS_EMBED_API_KEY\n"
	       "                         or OPENAI_API_KEY\n"
	       "  embed_model=NAME       its model; embed_dim=N  its "
	       "dimension (required with\n"
	       "                         embed=; alone: the built-in "
	       "embedding's, default %d)\n"
	       "  embed_timeout=S        one request to it (default 30)\n"
	       "S3 and R2:\n"
	       "  endpoint=URL, region=R, path_style[=0|1], profile=NAME, "
	       "passwd_file=FILE\n"
	       "  timeout=S              how long a request may retry "
	       "(default 30)\n"
	       "  cache_dir=DIR|none     local cache of the store's objects\n"
	       "  cache_size=N[KMG]      its bound (default 1G)\n"
	       "  ro, allow_other, default_permissions, and every FUSE "
	       "mount option\n"
	       "\n"
	       "  -f  foreground   -d  debug (implies -f)   -s  single "
	       "thread\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n",
	       STORE_CHUNK_SIZE_DEFAULT, STORE_CHUNK_OVERLAP_DEFAULT,
	       STORE_ANN_THRESHOLD_DEFAULT, VEC_EMBED_DIM_DEFAULT);
}

/* SOURCE, or the default store's directory (malloc'd). */
static char *lodefs_source(const char *source)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *p;

	if (source)
		return strdup(source);
	if (xdg && *xdg) {
		if (asprintf(&p, "%s/lodefs/default", xdg) < 0)
			return NULL;
	} else if (asprintf(&p, "%s/.local/share/lodefs/default",
			    home ? home : "/root") < 0) {
		return NULL;
	}
	return p;
}

/* "64M" -> bytes: 0, or -1 for nonsense (or more than 64 bits hold). */
static int lodefs_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	const char *u;
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	if (*end && (u = strchr(units, *end | 0x20))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int lodefs_lock(const char *store)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", store, LODEFS_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "lodefs: cannot open %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr,
			"lodefs: the store %s is in use by another lodefs "
			"mount or a `lode` writer\n(lock held on %s); unmount "
			"it first, or mount a different store.\n",
			store, path);
		close(fd);
		return -1;
	}
	return fd;
}

static int lodefs_open_backend(struct fs *fs, const struct lodefs_cli *c,
			       const char *source)
{
	struct backend_source_opts bo = { .create = 1 };
	char err[512];
	int rc;

	bo.s3.endpoint = c->endpoint;
	bo.s3.region = c->region;
	bo.s3.path_style = c->path_style;
	bo.s3.passwd_file = c->passwd_file;
	bo.s3.profile = c->profile;
	bo.s3.timeout_s = c->timeout;
	bo.cache_dir = c->cache_dir;
	if (c->cache_size && lodefs_size(c->cache_size, &bo.cache_size)) {
		fprintf(stderr,
			"lodefs: cache_size=%s: expected a size such as 512M "
			"or 2G\n",
			c->cache_size);
		return -EINVAL;
	}
	rc = backend_open_source(source, &bo, &fs->be, &fs->src, err,
				 sizeof(err));
	if (rc) {
		fprintf(stderr, "lodefs: %s\n", err);
		return rc;
	}
	fs->opts.backend_kind = fs->src.kind;
	fs->opts.store_path =
		fs->src.local_dir ? fs->src.local_dir : fs->be->where;
	if (fs->src.s3_be) {
		const struct s3_config *s3 = &fs->src.s3;

		fs->opts.remote = json_pack(
			"{s:s,s:s,s:s,s:s,s:b,s:I,s:s?,s:I}", "bucket",
			s3->bucket, "prefix", s3->prefix ? s3->prefix : "",
			"endpoint", s3->endpoint ? s3->endpoint : "", "region",
			s3->region ? s3->region : "", "path_style",
			s3->path_style, "timeout_ms",
			(json_int_t)s3->timeout_ms, "cache_dir",
			fs->src.cache_dir, "cache_size",
			(json_int_t)fs->src.cache_size);
	}
	return 0;
}

static int lodefs_open_store(struct fs *fs, const struct lodefs_cli *c)
{
	struct store_opts so;
	int rc;

	store_opts_init(&so);
	so.chunk_size = fs->opts.chunk_size;
	so.chunk_overlap = fs->opts.chunk_overlap;
	so.ann_threshold = fs->opts.ann_threshold;
	so.engine.checkpoint_segments = fs->opts.checkpoint_segments;
	so.engine.read_only = fs->opts.read_only;
	if (fs->opts.embed_dim)
		so.embed_dim = fs->opts.embed_dim;
	if (!fs->opts.bm25_bigrams)
		so.bm25_bigram_weight = 0;
	so.embed_url = fs->opts.embed_url;
	so.embed_model = fs->opts.embed_model;
	so.embed_timeout_ms = fs->opts.embed_timeout_ms;
	rc = store_open(fs->be, &so, &fs->st);
	if (rc == -EUCLEAN) {
		fprintf(stderr,
			"lodefs: the store %s is damaged: %s\n"
			"Run `lode fsck %s` to list every problem; nothing "
			"was changed.\n",
			fs->opts.store_path, store_last_error(),
			fs->opts.remote ? fs->opts.source
					: fs->opts.store_path);
	} else if (rc) {
		fprintf(stderr, "lodefs: cannot open the store %s: %s%s%s\n",
			fs->opts.store_path, strerror(-rc),
			*store_last_error() ? ": " : "", store_last_error());
	}
	return rc;
}

static int lodefs_check_opts(struct fs *fs, struct lodefs_cli *c)
{
	struct fs_opts *o = &fs->opts;

	o->sync = FS_SYNC_CLOSE;
	if (c->sync && strcmp(c->sync, "fsync") == 0)
		o->sync = FS_SYNC_FSYNC;
	else if (c->sync && strcmp(c->sync, "close") != 0) {
		fprintf(stderr, "lodefs: sync=%s: expected close or fsync\n",
			c->sync);
		return -EINVAL;
	}
	o->chunk_size =
		c->chunk_size ? c->chunk_size : STORE_CHUNK_SIZE_DEFAULT;
	o->chunk_overlap =
		c->chunk_overlap != UINT_MAX
			? c->chunk_overlap
			: (o->chunk_size > STORE_CHUNK_OVERLAP_DEFAULT
				   ? STORE_CHUNK_OVERLAP_DEFAULT
				   : o->chunk_size / 5);
	if (o->chunk_overlap >= o->chunk_size) {
		fprintf(stderr,
			"lodefs: chunk_overlap=%u must be less than "
			"chunk_size=%u\n",
			o->chunk_overlap, o->chunk_size);
		return -EINVAL;
	}
	if (c->path_style < -1 || c->path_style > 1) {
		fprintf(stderr, "lodefs: path_style=%d: expected 0 or 1\n",
			c->path_style);
		return -EINVAL;
	}
	if (c->refresh < 0 && c->refresh != -1) {
		fprintf(stderr, "lodefs: refresh=%g: expected seconds >= 0\n",
			c->refresh);
		return -EINVAL;
	}
	o->refresh = c->refresh; /* -1 until the kind of store is known */
	o->attr_timeout = c->attr_timeout >= 0 ? c->attr_timeout : 1.0;
	o->entry_timeout = c->entry_timeout >= 0 ? c->entry_timeout : 1.0;
	o->checkpoint_segments =
		c->checkpoint_segments ? c->checkpoint_segments : 1000;
	if (c->embed && !c->embed_dim) {
		fprintf(stderr,
			"lodefs: embed=%s needs embed_dim=N, the "
			"dimension of the model's vectors\n",
			c->embed);
		return -EINVAL;
	}
	if (c->embed_dim > VEC_EMBED_DIM_MAX) {
		fprintf(stderr, "lodefs: embed_dim=%u: at most %d\n",
			c->embed_dim, VEC_EMBED_DIM_MAX);
		return -EINVAL;
	}
	if (c->bm25_bigrams < -1 || c->bm25_bigrams > 1) {
		fprintf(stderr, "lodefs: bm25_bigrams=%d: expected 0 or 1\n",
			c->bm25_bigrams);
		return -EINVAL;
	}
	o->bm25_bigrams = c->bm25_bigrams != 0;
	o->embed_url = c->embed;
	o->embed_model = c->embed_model;
	o->embed_dim = c->embed_dim;
	o->embed_timeout_ms = c->embed_timeout * 1000u;
	o->read_only = c->ro;
	o->ann_threshold = c->ann_threshold == ULONG_MAX
				   ? STORE_ANN_THRESHOLD_DEFAULT
				   : (size_t)c->ann_threshold;
	o->allow_other = c->allow_other;
	o->default_permissions = c->default_permissions;
	return 0;
}

static void lodefs_fs_init_locks(struct fs *fs)
{
	pthread_mutex_init(&fs->mu, NULL);
	pthread_mutex_init(&fs->docs_mu, NULL);
	pthread_mutex_init(&fs->ns_mu, NULL);
	pthread_mutex_init(&fs->pend_mu, NULL);
	pthread_cond_init(&fs->pend_cv, NULL);
	pthread_cond_init(&fs->pend_done, NULL);
	pthread_mutex_init(&fs->errs.mu, NULL);
	pthread_mutex_init(&fs->refresh_mu, NULL);
	pthread_mutex_init(&fs->refresher_mu, NULL);
	pthread_cond_init(&fs->refresher_cv, NULL);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct lodefs_cli cli = { .chunk_overlap = UINT_MAX,
				  .ann_threshold = ULONG_MAX,
				  .attr_timeout = -1,
				  .entry_timeout = -1,
				  .refresh = -1,
				  .path_style = -1,
				  .bm25_bigrams = -1 };
	struct fuse_cmdline_opts fo = { 0 };
	struct fuse_loop_config lc = { 0 };
	struct fs fs = { 0 };
	char *fsname = NULL, *source = NULL;
	int lock_fd = -1, rc = 1, i, mounted = 0;

	if (fuse_opt_parse(&args, &cli, lodefs_opts, lodefs_opt_proc))
		return 2;
	if (cli.help) {
		lodefs_usage();
		return 0;
	}
	if (cli.version) {
		printf("lodefs 0.1.0 (libfuse %s)\n", fuse_pkgversion());
		return 0;
	}
	if (cli.n_pos < 1) {
		fprintf(stderr, "lodefs: no mountpoint (try lodefs --help)\n");
		return 2;
	}
	/* the last positional is the mountpoint, as fuse_parse_cmdline wants */
	fuse_opt_add_arg(&args, cli.pos[cli.n_pos - 1]);
	if (fuse_parse_cmdline(&args, &fo) || !fo.mountpoint) {
		fprintf(stderr,
			"lodefs: bad command line (try lodefs --help)\n");
		return 2;
	}
	lodefs_fs_init_locks(&fs);
	if (lodefs_check_opts(&fs, &cli))
		goto out;
	fs.opts.foreground = fo.foreground;
	fs.opts.debug = fo.debug;
	fs.opts.source = cli.n_pos == 2 ? cli.pos[0] : "(default)";
	source = lodefs_source(cli.n_pos == 2 ? cli.pos[0] : NULL);
	if (!source || lodefs_open_backend(&fs, &cli, source))
		goto out;
	/*
	 * A local store has one writer at a time (a lock); mounts of an S3
	 * or R2 prefix share it and catch up with each other.
	 */
	if (fs.src.local_dir) {
		lock_fd = lodefs_lock(fs.src.local_dir);
		if (lock_fd < 0)
			goto out;
	}
	if (fs.opts.refresh < 0)
		fs.opts.refresh = fs.src.local_dir ? 0 : 5;
	if (lodefs_open_store(&fs, &cli))
		goto out;
	store_track_changes(fs.st, 1);
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.mounted);
	if (fs_views_init(&fs) || fs_docs_load(&fs)) {
		fprintf(stderr,
			"lodefs: cannot read the store's documents: %s\n",
			store_last_error());
		goto out;
	}
	if (asprintf(&fsname, "-ofsname=%s,subtype=lodefs",
		     cli.n_pos == 2 ? cli.pos[0] : "lodefs") > 0 &&
	    !strchr(fsname + 9, '\\'))
		fuse_opt_add_arg(&args, fsname);
	fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!fs.se)
		goto out;
	if (fuse_set_signal_handlers(fs.se))
		goto out;
	if (fuse_session_mount(fs.se, fo.mountpoint)) {
		fprintf(stderr, "lodefs: cannot mount on %s\n", fo.mountpoint);
		goto out_signals;
	}
	mounted = 1;
	if (fuse_daemonize(fo.foreground))
		goto out_signals;
	if (fs_docs_flusher_start(&fs) || fs_refresher_start(&fs)) {
		fprintf(stderr, "lodefs: cannot start the flusher thread\n");
		goto out_signals;
	}
	fs.opts.max_threads =
		fo.max_idle_threads == UINT_MAX ? 10 : fo.max_idle_threads;
	if (fo.singlethread) {
		rc = fuse_session_loop(fs.se);
	} else {
		lc.clone_fd = fo.clone_fd;
		lc.max_idle_threads = fo.max_idle_threads == UINT_MAX
					      ? 10
					      : fo.max_idle_threads;
		rc = fuse_session_loop_mt(fs.se, &lc);
	}
	rc = rc < 0 ? 1 : 0;
	fs_refresher_stop(&fs);
	/* Unmounted or signalled: commit what is pending, then leave. */
	if (fs_docs_flusher_stop(&fs)) {
		fprintf(stderr,
			"lodefs: %zu documents and %zu removals could not be "
			"committed: %s\n",
			fs.n_pend, fs.dels.n, store_last_error());
		rc = 1;
	}
out_signals:
	fuse_remove_signal_handlers(fs.se);
out:
	if (fs.se) {
		if (mounted)
			fuse_session_unmount(fs.se);
		fuse_session_destroy(fs.se);
	}
	fs_inodes_free(&fs);
	fs_docs_free(&fs);
	fs_errlog_free(&fs.errs);
	json_decref(fs.made_dirs);
	while (fs.qfiles) {
		struct fs_qfile *q = fs.qfiles;

		fs.qfiles = q->next;
		free(q->name);
		free(q->req);
		free(q->res);
		free(q);
	}
	free(fs.pend);
	fs_dels_free(&fs.dels);
	for (i = 0; i < FS_QCACHE_SLOTS; i++) {
		free(fs.qcache[i].key);
		free(fs.qcache[i].res);
	}
	fs_refresher_stop(&fs);
	store_close(fs.st);
	backend_close(fs.be);
	backend_source_release(&fs.src);
	json_decref(fs.opts.remote);
	if (lock_fd >= 0)
		close(lock_fd);
	free(source);
	free(fo.mountpoint);
	free(fsname);
	free(cli.sync);
	free(cli.endpoint);
	free(cli.region);
	free(cli.passwd_file);
	free(cli.profile);
	free(cli.cache_dir);
	free(cli.cache_size);
	free(cli.embed);
	free(cli.embed_model);
	for (i = 0; i < cli.n_pos; i++)
		free(cli.pos[i]);
	fuse_opt_free_args(&args);
	return rc;
}
