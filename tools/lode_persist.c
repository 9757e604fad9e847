/* lode_persist.c - `lode import` and `lode export`: LlamaIndex persist
 * directories in and out of a store that is not mounted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/persist.h"
#include "core/pyjson.h"
#include "tools/lode.h"

/* --- import, export: LlamaIndex persist directories --------------------- */

double lode_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lode_bar_start(struct lode_bar *b, int on, const char *name, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	b->on = on;
	b->name = name;
	b->size = size;
	b->start = lode_now();
}

void lode_bar_draw(struct lode_bar *b, int final)
{
	double now, mb, el;

	if (!b->on)
		return;
	now = lode_now();
	if (!final && b->drawn && now - b->last < 0.1)
		return;
	b->last = now;
	b->drawn = 1;
	if (final)
		b->frac = 1;
	mb = (b->size ? b->frac * (double)b->size : (double)b->bytes) / 1e6;
	el = now - b->start;
	fprintf(stderr, "\r%-28s %3d%% %9.1f MB %8.1f MB/s%s", b->name,
		(int)(b->frac * 100), mb, el > 0 ? mb / el : 0.0,
		final ? "\n" : "");
}

void lode_bar_progress(void *arg, uint64_t done, uint64_t total)
{
	struct lode_bar *b = arg;

	b->frac = total ? (double)done / (double)total : 0;
	if (b->frac > 1)
		b->frac = 1;
	lode_bar_draw(b, 0);
}

/* What the kernel can give without swapping (MemAvailable): bytes, or 0. */
static uint64_t lode_mem_available(void)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* Whether `bytes` read ahead at once would sit easily in the page cache. */
static int lode_fits(uint64_t bytes)
{
	uint64_t avail = lode_mem_available();

	return avail && bytes <= avail / 2;
}

/*
 * Export reads every value of the store, and the engine maps a
 * checkpoint for random access, so a cold store came in a page fault at
 * a time: 64,000 major faults, more than half of the export of 100,000
 * nodes.  For a local store that fits easily in memory, a thread maps
 * every file of it with MAP_POPULATE (big sequential reads) while the
 * store opens, and the mappings stay until the export ends; the
 * engine's faults then find the pages in memory.  Neither
 * POSIX_FADV_WILLNEED (Linux reads ahead only the first few hundred KiB
 * of a file for it) nor reading the files through would do: on a machine
 * that reclaims idle memory (DAMON's pageout here), pages read but not
 * mapped were often gone again a second later.
 */
struct lode_prefetch {
	pthread_t thread;
	int started;
	char *path;
	struct lode_map {
		void *addr;
		size_t len;
	} * maps;
	size_t n, cap;
};

/*
 * Below directory dirfd (closed here): adds up the sizes of the regular
 * files into *total, or, with p, maps each of them into p->maps.
 */
static void lode_walk_map(int dirfd, struct lode_prefetch *p, uint64_t *total,
			  int depth)
{
	struct dirent *de;
	struct stat st;
	void *addr;
	DIR *d;
	int fd;

	d = depth < 8 ? fdopendir(dirfd) : NULL;
	if (!d) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd, de->d_name,
				    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0)
				lode_walk_map(fd, p, total, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !st.st_size)
			continue;
		if (!p) {
			*total += (uint64_t)st.st_size;
			continue;
		}
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 16;
			struct lode_map *m = realloc(p->maps, cap * sizeof(*m));

			if (!m)
				break;
			p->maps = m;
			p->cap = cap;
		}
		fd = openat(dirfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		addr = mmap(NULL, (size_t)st.st_size, PROT_READ,
			    MAP_SHARED | MAP_POPULATE, fd, 0);
		close(fd);
		if (addr != MAP_FAILED)
			p->maps[p->n++] =
				(struct lode_map){ addr, (size_t)st.st_size };
	}
	closedir(d);
}

static void *lode_prefetch_run(void *arg)
{
	struct lode_prefetch *p = arg;
	int fd = open(p->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		lode_walk_map(fd, p, NULL, 0);
	return NULL;
}

/* Starts mapping the local store at `path` if it fits; quietly not else. */
static void lode_prefetch_start(struct lode_prefetch *p, const char *path)
{
	uint64_t total = 0;
	int fd;

	memset(p, 0, sizeof(*p));
	if (strstr(path, "://"))
		return; /* s3:// or r2:// */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	lode_walk_map(fd, NULL, &total, 0);
	if (!lode_fits(total))
		return;
	p->path = strdup(path);
	p->started = p->path &&
		     !pthread_create(&p->thread, NULL, lode_prefetch_run, p);
}

/* Waits until every file is mapped (the second call does nothing). */
static void lode_prefetch_wait(struct lode_prefetch *p)
{
	if (p->started)
		pthread_join(p->thread, NULL);
	p->started = 0;
}

/* Waits, then unmaps everything. */
static void lode_prefetch_end(struct lode_prefetch *p)
{
	size_t i;

	lode_prefetch_wait(p);
	for (i = 0; i < p->n; i++)
		munmap(p->maps[i].addr, p->maps[i].len);
	free(p->maps);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

static const char lode_import_help[] =
	"usage: lode import STORE PERSIST_DIR [options]\n"
	"\n"
	"Reads a directory that Python LlamaIndex's StorageContext.persist()\n"
	"wrote: docstore.json, index_store.json, graph_store.json,\n"
	"property_graph_store.json and every <namespace>__vector_store.json\n"
	"(a lone vector_store.json, the layout before namespaces, is the\n"
	"default namespace).  What each file holds replaces what the store\n"
	"held for it; files absent from the directory leave their part of the\n"
	"store as it is, and other files are skipped (listed on stderr).\n"
	"\n"
	"Nothing is imported if a file is not valid JSON.  Each file is one\n"
	"atomic commit: the largest first (a malformed one is refused whole),\n"
	"then the others in the order above, every one of them checked to be\n"
	"JSON before the first commit.  A file refused at its turn (not the\n"
	"shape of its kind) stops the import with exit status 1, and the\n"
	"files imported before it stay imported (they are named).  The\n"
	"store is written once, at the end, as a checkpoint (what `lode\n"
	"compact` makes: the next open is one read); an import interrupted\n"
	"before that leaves the store as it was.  A local store must not be\n"
	"mounted.\n"
	"\n"
	"  -q, --quiet          no progress, no summary\n"
	"  -h, --help           this text\n"
	"\n"
	"Exit status 0: every persist file imported; 1: a file refused or an\n"
	"error (the reason is printed); 2: usage.\n";

/* One persist file of the directory being imported. */
struct lode_pfile {
	char *path;		 /* PERSIST_DIR/file */
	const char *file;	 /* its name in the directory (in path) */
	char name[NAME_MAX + 1]; /* the name it is imported as */
	enum persist_kind kind;
	const char *data; /* mapped, or "" for an empty file */
	size_t len;
};

static int lode_pfile_cmp(const void *a, const void *b)
{
	const struct lode_pfile *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	/* default first among the vector stores, as persist_list lists */
	if (x->kind == PERSIST_VECTOR_STORE) {
		int xd = !strcmp(x->name, "default__vector_store.json");
		int yd = !strcmp(y->name, "default__vector_store.json");

		if (xd != yd)
			return yd - xd;
	}
	return strcmp(x->name, y->name);
}

/*
 * Finds the persist files of `dir`: 0 with *out (sorted: docstore,
 * index_store, graph_store, property_graph_store, vector stores) and *n;
 * 1 after printing why the directory cannot be imported.
 */
static int lode_import_scan(const char *dir, struct lode_pfile **out, size_t *n)
{
	struct lode_pfile *files = NULL, *f;
	size_t count = 0, cap = 0, i, j;
	struct dirent *de;
	char ns[NAME_MAX + 1];
	enum persist_kind kind;
	struct stat st;
	int rc, bad = 0;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		lode_err("%s: %s", dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = persist_name(de->d_name, &kind, ns, sizeof(ns));
		if (rc == -ENOENT) {
			lode_err("skipped %s: not a persist file", de->d_name);
			continue;
		}
		if (rc) {
			lode_err("%s/%s: not a valid vector store namespace",
				 dir, de->d_name);
			bad = 1;
			continue;
		}
		if (count == cap) {
			struct lode_pfile *nf;

			cap = cap ? 2 * cap : 8;
			nf = realloc(files, cap * sizeof(*files));
			if (!nf) {
				lode_err("out of memory");
				bad = 1;
				break;
			}
			files = nf;
		}
		f = &files[count];
		memset(f, 0, sizeof(*f));
		if (asprintf(&f->path, "%s/%s", dir, de->d_name) < 0) {
			f->path = NULL;
			lode_err("out of memory");
			bad = 1;
			break;
		}
		count++;
		f->file = f->path + strlen(dir) + 1;
		f->kind = kind;
		/* vector_store.json goes in as default__vector_store.json */
		if (kind == PERSIST_VECTOR_STORE)
			snprintf(f->name, sizeof(f->name),
				 "%.*s__vector_store.json",
				 (int)(sizeof(f->name) - 21), ns);
		else
			snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		if (stat(f->path, &st)) {
			lode_err("%s: %s", f->path, strerror(errno));
			bad = 1;
		} else if (!S_ISREG(st.st_mode)) {
			lode_err("%s: not a regular file", f->path);
			bad = 1;
		}
	}
	closedir(d);
	if (count)
		qsort(files, count, sizeof(*files), lode_pfile_cmp);
	/*
	 * Both vector_store.json and default__vector_store.json: the
	 * namespaced one is the newer layout, so it wins.
	 */
	for (i = j = 0; i < count; i++) {
		if (j && !strcmp(files[j - 1].name, files[i].name)) {
			struct lode_pfile *keep = &files[j - 1];

			if (!strcmp(keep->file, "vector_store.json")) {
				struct lode_pfile t = *keep;

				*keep = files[i];
				files[i] = t;
			}
			lode_err("skipped %s: %s is imported instead",
				 files[i].file, keep->file);
			free(files[i].path);
			continue;
		}
		files[j++] = files[i];
	}
	count = j;
	if (!bad && !count) {
		lode_err(
			"%s: no persist file (docstore.json, index_store.json, "
			"...) to import",
			dir);
		bad = 1;
	}
	if (bad) {
		for (i = 0; i < count; i++)
			free(files[i].path);
		free(files);
		return 1;
	}
	*out = files;
	*n = count;
	return 0;
}

/* Maps f->path read-only for one sequential pass: 0, or -errno. */
static int lode_pfile_map(struct lode_pfile *f)
{
	struct stat st;
	void *p;
	int fd, e;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		e = -errno;
		close(fd);
		return e;
	}
	if (!st.st_size) {
		/* mmap refuses length 0; the text is then "" (not JSON) */
		f->data = "";
		close(fd);
		return 0;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	e = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (e)
		return e;
	madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
	f->data = p;
	f->len = (size_t)st.st_size;
	return 0;
}

static void lode_pfiles_free(struct lode_pfile *files, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (files[i].len)
			munmap((void *)files[i].data, files[i].len);
		free(files[i].path);
	}
	free(files);
}

#define LODE_CHECK_STEP (64u << 20)

/*
 * Whether f holds one valid JSON value (the grammar only; its shape is
 * the core's to judge): 0, or -EINVAL after printing where it is not.
 * Token by token, so that the pages read are unmapped behind the reader
 * (they stay in the page cache for the import, but the process does not
 * hold the whole file) and the bar moves.
 */
static int lode_pfile_check(const struct lode_pfile *f, struct lode_bar *bar,
			    uint64_t base, uint64_t total)
{
	struct pyj_in in;
	enum pyj_tok t;
	size_t off, next = LODE_CHECK_STEP, dropped = 0;
	long pg = sysconf(_SC_PAGESIZE);
	int rc = 0, empty;

	pyj_in_init(&in, f->data, f->len);
	t = pyj_next(&in);
	empty = t == PYJ_EOF;
	while (t > PYJ_EOF) {
		off = pyj_in_offset(&in);
		if (off >= next) {
			size_t to = off & ~((size_t)pg - 1);

			next = off + LODE_CHECK_STEP;
			madvise((char *)f->data + dropped, to - dropped,
				MADV_DONTNEED);
			dropped = to;
			lode_bar_progress(bar, base + off, total);
		}
		t = pyj_next(&in);
	}
	if (t != PYJ_EOF || empty) {
		lode_err("%s: not valid JSON: %s", f->path,
			 in.err[0] ? in.err : "no value");
		rc = -EINVAL;
	}
	if (f->len)
		madvise((void *)f->data, f->len, MADV_DONTNEED);
	pyj_in_free(&in);
	return rc;
}

/*
 * The grammar check of files[1..n), on a thread of its own while the
 * first file is imported (see lode_cmd_import).
 */
struct lode_check {
	pthread_t thread;
	const struct lode_pfile *files;
	size_t n;
	int rc, started;
};

static void *lode_check_run(void *arg)
{
	struct lode_check *k = arg;
	struct lode_bar off;
	size_t i;

	lode_bar_start(&off, 0, "", 0);
	for (i = 1; i < k->n && !k->rc; i++)
		k->rc = lode_pfile_check(&k->files[i], &off, 0, 0);
	return NULL;
}

int lode_cmd_import(int argc, char **argv)
{
	struct lode_pfile *files = NULL;
	struct lode_check check = { 0 };
	struct lode_bar bar;
	struct lode_ctx c;
	size_t n = 0, i, big, done = 0;
	uint64_t bytes = 0, checked = 0;
	int opt, quiet = 0, progress, rc = 0, ret = LODE_FAIL;
	double t0 = lode_now(), t1;

	if ((opt = lode_args_quiet(argc, argv, lode_import_help, &quiet)) >= 0)
		return opt;
	if (lode_import_scan(argv[optind + 1], &files, &n))
		return LODE_FAIL;
	/* The lock first: a mounted store is refused before any work. */
	if (lode_open(&c, argv[optind], 1, NULL)) {
		lode_pfiles_free(files, n);
		return LODE_FAIL;
	}
	for (i = 0; i < n && !rc; i++) {
		rc = lode_pfile_map(&files[i]);
		if (rc)
			lode_err("%s: %s", files[i].path, strerror(-rc));
	}
	/*
	 * The largest file goes first: persist_import refuses a malformed
	 * file whole, so it needs no check of its own (the check costs about
	 * a quarter of the import's CPU time when it covers every file).
	 * The files are independent of each other (each replaces its own
	 * collections), so the order changes nothing in the end.
	 */
	for (i = 1, big = 0; i < n; i++)
		if (files[i].len > files[big].len)
			big = i;
	if (big) {
		struct lode_pfile t = files[big];

		memmove(&files[1], &files[0], big * sizeof(*files));
		files[0] = t;
	}
	/*
	 * persist_import commits each file on its own and the API offers no
	 * commit spanning several files, so one commit per directory is not
	 * possible.  Checking the grammar of every file but the first before
	 * importing any makes the common refusal (a malformed file) leave
	 * the store untouched.
	 */
	progress = !quiet && isatty(STDERR_FILENO);
	for (i = 1; i < n; i++)
		bytes += files[i].len;
	/*
	 * Without a progress bar the check runs on a thread while the first
	 * file is imported: that import leaves a core idle part of the time
	 * (putting its batch, the commit), and checking first was 0.3-0.5 s
	 * of 100,000 nodes on one core.  The first file's commit changes
	 * nothing on disk (no log segments, and no checkpoint is written if
	 * the check fails), and the check is waited for before anything
	 * else, so the outcome and the messages are those of checking first.
	 * With a bar, the check draws its own line first, as before.
	 */
	check.files = files;
	check.n = n;
	if (!progress && n > 1 &&
	    !pthread_create(&check.thread, NULL, lode_check_run, &check)) {
		check.started = 1;
		lode_bar_start(&bar, 0, "", 0);
	} else {
		lode_bar_start(&bar, progress && bytes, "(checking JSON)",
			       bytes);
		for (i = 1; i < n && !rc; i++) {
			rc = lode_pfile_check(&files[i], &bar, checked, bytes);
			checked += files[i].len;
		}
	}
	if (rc) {
		if (bar.drawn)
			fputc('\n', stderr);
		lode_err("nothing was imported");
		goto out;
	}
	if (bar.on)
		lode_bar_draw(&bar, 1);
	bytes = 0;
	for (i = 0; i < n; i++) {
		lode_bar_start(&bar, progress, files[i].file, files[i].len);
		rc = persist_import_flags(c.store, files[i].name, files[i].data,
					  files[i].len, PERSIST_UNLOGGED,
					  lode_bar_progress, &bar);
		if (i == 0 && check.started) {
			pthread_join(check.thread, NULL);
			check.started = 0;
			if (check.rc) {
				/* what the check found comes first */
				lode_err("nothing was imported");
				goto out;
			}
		}
		if (rc) {
			if (bar.drawn)
				fputc('\n', stderr);
			break;
		}
		lode_bar_draw(&bar, 1);
		bytes += files[i].len;
		done++;
	}
	if (rc) {
		const char *why = lode_why(rc);
		size_t nl = strlen(files[i].name);

		/* the core names the file too: once is enough */
		if (!strncmp(why, files[i].name, nl) &&
		    !strncmp(why + nl, ": ", 2))
			why += nl + 2;
		lode_err("%s: %s", files[i].path, why);
	}
	/*
	 * The files are imported without log segments: the checkpoint
	 * writes them, once, with the rest of the store, keyword index
	 * included, and the next open (a mount, an export) reads it instead
	 * of replaying segments and indexing every node again.  Until it is
	 * written nothing is on disk: its failure leaves the store as it
	 * was.
	 */
	if (done) {
		int crc;

		if (progress)
			fprintf(stderr, "(checkpoint)  writing...");
		t1 = lode_now();
		crc = engine_checkpoint(store_engine(c.store));
		if (progress)
			fprintf(stderr, "\r(checkpoint)  %s in %.1f s\n",
				crc ? "failed" : "written", lode_now() - t1);
		if (crc) {
			lode_err("writing the store failed (%s)",
				 lode_why(crc));
			lode_err("nothing was imported");
			goto out;
		}
	}
	if (rc) {
		if (done) {
			fprintf(stderr,
				"%s: imported before it, and kept:", lode_prog);
			for (i = 0; i < done; i++)
				fprintf(stderr, " %s", files[i].file);
			fputc('\n', stderr);
		} else {
			lode_err("nothing was imported");
		}
		goto out;
	}
	if (!quiet)
		printf("%zu file%s imported (%.1f MB) in %.2f s\n", done,
		       done == 1 ? "" : "s", (double)bytes / 1e6,
		       lode_now() - t0);
	ret = LODE_OK;
out:
	lode_close(&c);
	lode_pfiles_free(files, n);
	return ret;
}

static const char lode_export_help[] =
	"usage: lode export STORE DIR [options]\n"
	"\n"
	"Writes the store as Python LlamaIndex persists it, into DIR (made if\n"
	"absent): docstore.json, index_store.json, graph_store.json,\n"
	"property_graph_store.json (when the store has one) and\n"
	"<namespace>__vector_store.json for default, image and every other\n"
	"namespace, byte for byte as json.dumps writes them (vectors, kept as\n"
	"float32, as the shortest decimal that reads back to the same\n"
	"float32).  StorageContext.from_defaults(persist_dir=DIR) loads it.\n"
	"\n"
	"Every file is written to a temporary file in DIR and flushed to\n"
	"disk; only when all are written are they renamed over their names,\n"
	"then DIR is flushed.  On an error no file of DIR is changed and no\n"
	"temporary file is left.  Other files in DIR are left alone.  The\n"
	"store is only read: it may be mounted.\n"
	"\n"
	"  -q, --quiet          no progress, no summary\n"
	"  -h, --help           this text\n"
	"\n"
	"Exit status 0: written; 1: an error (the reason is printed);\n"
	"2: usage.\n";

struct lode_names {
	char **v;
	size_t n, cap;
};

static int lode_names_add(void *arg, const char *name)
{
	struct lode_names *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* Makes `dir` and its missing parents: 0 or -errno. */
static int lode_mkdirs(const char *dir)
{
	char *p = strdup(dir), *s, c;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p, 0777) && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

struct lode_fdout {
	int fd;
	int err; /* what write() failed with (to tell it from the store's) */
	struct lode_bar *bar;
};

static int lode_fdout_write(void *arg, const void *data, size_t len)
{
	struct lode_fdout *o = arg;
	const char *p = data;

	while (len) {
		ssize_t w = write(o->fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->err = w < 0 ? -errno : -EIO;
			return o->err;
		}
		p += w;
		len -= (size_t)w;
		o->bar->bytes += (uint64_t)w;
	}
	lode_bar_draw(o->bar, 0);
	return 0;
}

/*
 * Writes file `name` of the store into a new temporary file in `dir`,
 * flushed to disk: 0 with *tmp (malloc'd) and *size, or 1 after printing
 * why (no temporary file left then).
 */
static int lode_export_one(struct store *s, const char *dir, const char *name,
			   mode_t mode, int progress, char **tmp,
			   uint64_t *size)
{
	struct lode_bar bar;
	struct lode_fdout o;
	char *path;
	int rc, store_err = 0;

	if (asprintf(&path, "%s/.%s.lode-XXXXXX", dir, name) < 0) {
		lode_err("out of memory");
		return 1;
	}
	o.err = 0;
	o.fd = mkostemp(path, O_CLOEXEC);
	if (o.fd < 0) {
		lode_err("%s: %s", dir, strerror(errno));
		free(path);
		return 1;
	}
	/* mkostemp makes 0600; Python's open() gives 0666 less the umask */
	rc = fchmod(o.fd, mode) ? -errno : 0;
	o.bar = &bar;
	lode_bar_start(&bar, progress, name, 0);
	if (!rc) {
		rc = persist_export(s, name, lode_fdout_write, &o,
				    lode_bar_progress, &bar);
		store_err = rc && rc != o.err;
	}
	if (!rc && fsync(o.fd))
		rc = -errno;
	if (close(o.fd) && !rc)
		rc = -errno;
	if (rc) {
		if (bar.drawn)
			fputc('\n', stderr);
		/* the store's words for its own errors, errno's for the file's */
		lode_err("%s/%s: %s", dir, name,
			 store_err ? lode_why(rc) : strerror(-rc));
		unlink(path);
		free(path);
		return 1;
	}
	lode_bar_draw(&bar, 1);
	*tmp = path;
	*size = bar.bytes;
	return 0;
}

int lode_cmd_export(int argc, char **argv)
{
	struct lode_names names = { 0 };
	struct lode_prefetch pf;
	char **tmps = NULL;
	struct lode_ctx c;
	const char *dir;
	size_t i, renamed = 0;
	uint64_t bytes = 0, size;
	int opt, quiet = 0, progress, dfd = -1, rc, ret = LODE_FAIL;
	double t0 = lode_now();
	mode_t mask;

	if ((opt = lode_args_quiet(argc, argv, lode_export_help, &quiet)) >= 0)
		return opt;
	dir = argv[optind + 1];
	mask = umask(0);
	umask(mask);
	lode_prefetch_start(&pf, argv[optind]);
	rc = lode_open(&c, argv[optind], 0, NULL);
	/*
	 * The store opened while the thread mapped; the export starts when
	 * it is done (racing it, the export's faults overtook the reading
	 * and went page by page again).
	 */
	lode_prefetch_wait(&pf);
	if (rc) {
		lode_prefetch_end(&pf);
		return LODE_FAIL;
	}
	rc = persist_list(c.store, lode_names_add, &names);
	if (rc) {
		lode_err("%s: %s", argv[optind], lode_why(rc));
		goto out;
	}
	tmps = calloc(names.n ? names.n : 1, sizeof(*tmps));
	if (!tmps) {
		lode_err("out of memory");
		goto out;
	}
	rc = lode_mkdirs(dir);
	if (!rc) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = dfd < 0 ? -errno : 0;
	}
	if (rc) {
		lode_err("%s: %s", dir, strerror(-rc));
		goto out;
	}
	progress = !quiet && isatty(STDERR_FILENO);
	for (i = 0; i < names.n; i++) {
		if (lode_export_one(c.store, dir, names.v[i], 0666 & ~mask,
				    progress, &tmps[i], &size))
			goto out;
		bytes += size;
	}
	/*
	 * All written and flushed: only now replace the files, so that an
	 * error above leaves DIR as it was.
	 */
	for (renamed = 0; renamed < names.n; renamed++) {
		char *to;

		if (asprintf(&to, "%s/%s", dir, names.v[renamed]) < 0) {
			lode_err("out of memory");
			break;
		}
		rc = rename(tmps[renamed], to) ? -errno : 0;
		if (rc)
			lode_err("%s: %s", to, strerror(-rc));
		free(to);
		if (rc)
			break;
		free(tmps[renamed]);
		tmps[renamed] = NULL;
	}
	if (renamed < names.n) {
		if (renamed) {
			fprintf(stderr, "%s: already replaced:", lode_prog);
			for (i = 0; i < renamed; i++)
				fprintf(stderr, " %s", names.v[i]);
			fputc('\n', stderr);
		}
		goto out;
	}
	if (fsync(dfd)) {
		lode_err("%s: %s", dir, strerror(errno));
		goto out;
	}
	if (!quiet)
		printf("%zu file%s exported (%.1f MB) in %.2f s\n", names.n,
		       names.n == 1 ? "" : "s", (double)bytes / 1e6,
		       lode_now() - t0);
	ret = LODE_OK;
out:
	for (i = 0; tmps && i < names.n; i++) {
		if (tmps[i])
			unlink(tmps[i]);
		free(tmps[i]);
	}
	free(tmps);
	for (i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	if (dfd >= 0)
		close(dfd);
	lode_close(&c);
	lode_prefetch_end(&pf);
	return ret;
}

/* --- main --------------------------------------------------------------- */
