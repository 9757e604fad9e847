/* test_durability.c - SIGKILL an ingesting process; nothing acknowledged is lost. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "backends/backend.h"
#include "core/store.h"

#define KILLS	 60
#define MAX_DOCS 100000

static char dir[] = "/tmp/lodefs-durability-XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	umount2(dir, MNT_DETACH); /* the full-disk test's tmpfs, if any */
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void doc_text(unsigned long i, char *buf, size_t size)
{
	snprintf(buf, size,
		 "Document %lu speaks of token%lu and of the durable river. "
		 "It repeats: token%lu.",
		 i, i, i);
}

/*
 * The child: opens the store, then ingests documents start, start+1, ...
 * one commit each (some as two-document batches, some as node puts), and
 * writes each number to the pipe only after the call returned 0.  A small
 * checkpoint interval makes kills land inside checkpoints too.
 */
static void child(int fd, unsigned long start)
{
	struct store_opts o;
	struct backend *be;
	struct store *s;
	unsigned long i;
	char id[64], text[256], id2[64], text2[256];

	store_opts_init(&o);
	o.engine.checkpoint_segments = 16;
	o.embed_dim = 64;
	if (backend_local_open(dir, &be) || store_open(be, &o, &s))
		_exit(3);
	for (i = start; i < MAX_DOCS; i += 2) {
		struct store_doc d[2] = { 0 };

		snprintf(id, sizeof(id), "d/%lu.txt", i);
		snprintf(id2, sizeof(id2), "d/%lu.txt", i + 1);
		doc_text(i, text, sizeof(text));
		doc_text(i + 1, text2, sizeof(text2));
		d[0] = (struct store_doc){ .id = id,
					   .data = text,
					   .len = strlen(text) };
		d[1] = (struct store_doc){ .id = id2,
					   .data = text2,
					   .len = strlen(text2) };
		if (store_docs_put(s, d, 2, NULL))
			_exit(4);
		if (write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(5);
	}
	_exit(0);
}

struct report {
	int problems;
};

static void count_problem(void *arg, const char *key, const char *problem)
{
	struct report *r = arg;

	if (strncmp(problem, "warning:", 8) != 0) {
		r->problems++;
		fprintf(stderr, "fsck: %s: %s\n", key, problem);
	}
}

/* After a kill: fsck is clean and every acknowledged document is there. */
static void verify(unsigned long acked_end)
{
	struct report r = { 0 };
	struct store_opts o;
	struct backend *be;
	struct store *s;
	unsigned long i;
	char id[64], want[256];

	cr_assert_eq(backend_local_open(dir, &be), 0);
	cr_assert_geq(engine_fsck(be, count_problem, &r), 0);
	cr_assert_eq(r.problems, 0, "engine fsck found damage");
	store_opts_init(&o);
	o.embed_dim = 64;
	cr_assert_eq(store_open(be, &o, &s), 0, "%s", store_last_error());
	cr_assert_eq(store_fsck(s, count_problem, &r), 0);
	for (i = 0; i < acked_end; i++) {
		void *data;
		size_t len;

		snprintf(id, sizeof(id), "d/%lu.txt", i);
		doc_text(i, want, sizeof(want));
		cr_assert_eq(store_doc_get(s, id, &data, &len), 0,
			     "acknowledged %s lost", id);
		cr_assert_eq(len, strlen(want));
		cr_assert_eq(memcmp(data, want, len), 0);
		free(data);
	}
	if (acked_end) {
		struct store_query q = { .k = 1, .alpha = -1 };
		struct store_hit *hits;
		size_t n;

		snprintf(want, sizeof(want), "token%lu", acked_end - 1);
		q.text = want;
		cr_assert_eq(store_query(s, &q, &hits, &n), 0);
		cr_assert_eq(n, 1, "last acknowledged document not indexed");
		snprintf(id, sizeof(id), "d/%lu.txt", acked_end - 1);
		cr_assert_str_eq(hits[0].ref_doc_id, id);
		store_hits_free(hits, n);
	}
	store_close(s);
	backend_close(be);
}

Test(durability, sigkill_during_ingest_loses_nothing_acknowledged,
     .init = setup, .fini = teardown, .timeout = 900)
{
	unsigned long acked_end = 0;
	unsigned seed = (unsigned)time(NULL);
	int k;

	srand(seed);
	for (k = 0; k < KILLS; k++) {
		int fds[2], status;
		unsigned long got;
		struct timespec ts;
		pid_t pid;

		cr_assert_eq(pipe(fds), 0);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			child(fds[1], acked_end);
		}
		close(fds[1]);
		/* Let it run 5-80 ms: through open, commits, checkpoints. */
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(5 + rand() % 76) * 1000000L;
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) || WEXITSTATUS(status) == 0,
			  "child failed on its own (exit %d), seed %u",
			  WEXITSTATUS(status), seed);
		while (read(fds[0], &got, sizeof(got)) == sizeof(got))
			acked_end = got + 2;
		close(fds[0]);
		verify(acked_end);
	}
	cr_log_info("%d kills, %lu documents acknowledged, seed %u", KILLS,
		    acked_end, seed);
	cr_assert_gt(acked_end, 0, "the child never acknowledged a write");
}

/*
 * A real full disk: a 1 MiB tmpfs.  Ingest until the backend says ENOSPC;
 * the failing call changes nothing, and the store reopens clean with every
 * acknowledged document.
 */
Test(durability, full_disk_fails_cleanly_and_keeps_acknowledged_writes,
     .init = setup, .fini = teardown)
{
	char cmd[256], id[64], text[8192];
	struct store_opts o;
	struct backend *be;
	struct store *s;
	unsigned long i, acked = 0;
	int rc = 0;

	snprintf(cmd, sizeof(cmd),
		 "mount -t tmpfs -o size=1m lodefs-test %s 2>/dev/null", dir);
	if (system(cmd) != 0)
		cr_skip_test("cannot mount a tmpfs here (not root?)");
	store_opts_init(&o);
	o.embed_dim = 64;
	cr_assert_eq(backend_local_open(dir, &be), 0);
	cr_assert_eq(store_open(be, &o, &s), 0);
	for (i = 0; i < 10000; i++) {
		struct store_doc d = { .id = id, .data = text };

		snprintf(id, sizeof(id), "d/%lu.txt", i);
		memset(text, 'a' + (int)(i % 26), sizeof(text));
		doc_text(i, text, 200);
		text[strlen(text)] = ' ';
		d.len = sizeof(text);
		rc = store_docs_put(s, &d, 1, NULL);
		if (rc)
			break;
		acked = i + 1;
	}
	cr_assert_eq(rc, -ENOSPC, "expected ENOSPC, got %d", rc);
	cr_assert_gt(acked, 0);
	store_close(s);
	backend_close(be);
	/* Reopen on the full disk, read-only: everything acknowledged. */
	o.engine.read_only = 1;
	cr_assert_eq(backend_local_open(dir, &be), 0);
	cr_assert_eq(store_open(be, &o, &s), 0, "%s", store_last_error());
	cr_assert_eq(engine_count(store_engine(s), "lodefs/content"), acked);
	cr_assert_eq(store_fsck(s, NULL, NULL), 0);
	store_close(s);
	backend_close(be);
}
