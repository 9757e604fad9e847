/* test_backend_contract.c - the semantics every backend must meet. */
/*
 * Compiled once per backend: -DCONTRACT_MEMORY, -DCONTRACT_LOCAL (a fresh
 * mkdtemp directory per test), -DCONTRACT_FAULT (the fault wrapper over
 * the memory backend, nothing armed), -DCONTRACT_CACHE (the cache over
 * the fault wrapper over the memory backend, a fresh cache directory per
 * test) or -DCONTRACT_S3 (a fresh prefix per test in the bucket of the
 * s3rver that tests/s3/run_with_s3rver.sh started).  The fixture lives in
 * file statics because Criterion's init and fini take no argument; each
 * test runs in its own process.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "backends/backend.h"
#include "backends/backend_cache.h"
#ifdef CONTRACT_S3
#include <time.h>

#include "backends/backend_s3.h"
#endif

#if !defined(CONTRACT_MEMORY) && !defined(CONTRACT_LOCAL) &&    \
	!defined(CONTRACT_FAULT) && !defined(CONTRACT_CACHE) && \
	!defined(CONTRACT_S3)
#error "define CONTRACT_MEMORY, _LOCAL, _FAULT, _CACHE or _S3"
#endif

#if defined(CONTRACT_LOCAL) || defined(CONTRACT_CACHE)
#define CONTRACT_DIR 1 /* a fresh directory per test */
#endif

#define CONTRACT_THREADS 8

static struct backend *be;

#ifdef CONTRACT_DIR
/* Short enough that any path built under them fits in PATH_MAX. */
static char contract_dir[PATH_MAX / 4];
#endif
#ifdef CONTRACT_LOCAL
static char contract_mnt[PATH_MAX / 2]; /* a tmpfs mounted by a test, or "" */
static bool contract_dropped_root;	/* a test ran as nobody */
#endif

#ifdef CONTRACT_S3
static char contract_prefix[64]; /* "contract-PID-NANOS/", fresh per test */

/*
 * Through tests/s3/faultproxy.py, which checks each request's signature
 * as AWS would (s3rver checks only the access key).
 */
static int contract_s3_open(struct backend **out)
{
	const char *ep = getenv("LODEFS_S3_PROXY");
	const char *bucket = getenv("LODEFS_S3_BUCKET");
	struct s3_user_opts u = { .endpoint = ep, .path_style = -1 };
	struct s3_config cfg;
	char source[256], err[512];
	int rc;

	cr_assert(ep && bucket, "LODEFS_S3_PROXY and LODEFS_S3_BUCKET unset: "
				"run through tests/s3/run_with_s3rver.sh");
	snprintf(source, sizeof(source), "s3://%s/%s", bucket, contract_prefix);
	rc = s3_config_resolve(source, &u, &cfg, err, sizeof(err));
	cr_assert_eq(rc, 0, "s3_config_resolve: %s", err);
	rc = backend_s3_open(&cfg, out, err, sizeof(err));
	s3_config_free(&cfg);
	cr_assert_eq(rc, 0, "backend_s3_open: %s", err);
	return rc;
}
#endif

/*
 * The longest key the backend takes: S3 limits the whole key, and each
 * test's keys live under a prefix.
 */
static size_t contract_key_max(void)
{
#ifdef CONTRACT_S3
	return BACKEND_KEY_MAX - strlen(contract_prefix);
#else
	return BACKEND_KEY_MAX;
#endif
}

/* Opens a backend of the kind under test; `local_flags` only for local. */
static int contract_open(unsigned local_flags, struct backend **out)
{
#if defined(CONTRACT_MEMORY)
	return backend_memory_open(out);
#elif defined(CONTRACT_LOCAL)
	return backend_local_open_flags(contract_dir, local_flags, out);
#elif defined(CONTRACT_S3)
	return contract_s3_open(out);
#else
	struct backend *inner, *fault;
	int rc = backend_memory_open(&inner);

	if (rc)
		return rc;
	rc = backend_fault_open(inner, &fault);
	if (rc) {
		backend_close(inner);
		return rc;
	}
#ifdef CONTRACT_CACHE
	return backend_cache_open(fault, contract_dir, 0, out);
#else
	*out = fault;
	return 0;
#endif
#endif
}

#ifdef CONTRACT_DIR
static int contract_rm_one(const char *path, const struct stat *st, int flag,
			   struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void contract_rmrf(const char *path)
{
	nftw(path, contract_rm_one, 64, FTW_DEPTH | FTW_PHYS);
}
#endif

static void contract_setup(void)
{
#ifdef CONTRACT_S3
	struct timespec ts;
#endif
#ifdef CONTRACT_DIR
	const char *tmp = getenv("TMPDIR");

	snprintf(contract_dir, sizeof(contract_dir),
		 "%s/lodefs-contract-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(contract_dir), "mkdtemp: %s",
			   strerror(errno));
#endif
#ifdef CONTRACT_LOCAL
	contract_mnt[0] = '\0';
	contract_dropped_root = false;
#endif
#ifdef CONTRACT_S3
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(contract_prefix, sizeof(contract_prefix),
		 "contract-%d-%lld%09ld/", (int)getpid(), (long long)ts.tv_sec,
		 ts.tv_nsec);
#endif
	cr_assert_eq(contract_open(0, &be), 0, "open the backend");
}

static void contract_teardown(void)
{
	backend_close(be);
	be = NULL;
#ifdef CONTRACT_LOCAL
	if (contract_dropped_root && seteuid(0) < 0)
		perror("seteuid back to root");
	chmod(contract_dir, 0700);
	if (contract_mnt[0])
		umount2(contract_mnt, MNT_DETACH);
#endif
#ifdef CONTRACT_DIR
	contract_rmrf(contract_dir);
#endif
}

TestSuite(backend, .init = contract_setup, .fini = contract_teardown);

/* Reopens the backend without fsync where that matters: for bulk tests. */
static void contract_reopen_fast(void)
{
#ifdef CONTRACT_LOCAL
	backend_close(be);
	be = NULL;
	cr_assert_eq(contract_open(BACKEND_LOCAL_NO_FSYNC, &be), 0);
#endif
}

static void contract_put(const char *key, const void *data, size_t len)
{
	int rc = backend_put(be, key, data, len, NULL);

	cr_assert_eq(rc, 0, "put \"%s\": %s", key, strerror(-rc));
}

static void contract_put_str(const char *key, const char *s)
{
	contract_put(key, s, strlen(s));
}

/* Asserts that `key` holds exactly `len` bytes `data`, NUL-terminated. */
static void contract_expect(const char *key, const void *data, size_t len)
{
	struct backend_stat st;
	void *got = NULL;
	size_t n = 0;
	int rc;

	rc = backend_get(be, key, &got, &n);
	cr_assert_eq(rc, 0, "get \"%s\": %s", key, strerror(-rc));
	cr_assert_not_null(got);
	cr_assert_eq(n, len, "get \"%s\": %zu bytes, want %zu", key, n, len);
	cr_assert_eq(memcmp(got, data, len), 0, "get \"%s\": content", key);
	cr_assert_eq(((char *)got)[len], '\0', "get \"%s\": no NUL", key);
	free(got);
	rc = backend_head(be, key, &st);
	cr_assert_eq(rc, 0, "head \"%s\": %s", key, strerror(-rc));
	cr_assert_eq(st.size, len);
}

static void contract_expect_str(const char *key, const char *s)
{
	contract_expect(key, s, strlen(s));
}

static void contract_expect_missing(const char *key)
{
	struct backend_stat st;
	char buf[8];
	void *got = NULL;
	size_t n = 0;

	cr_assert_eq(backend_get(be, key, &got, &n), -ENOENT,
		     "get \"%s\" should be -ENOENT", key);
	cr_assert_eq(backend_head(be, key, &st), -ENOENT);
	cr_assert_eq(backend_get_range(be, key, 0, sizeof(buf), buf, &n),
		     -ENOENT);
}

/* Keys (and sizes) that list() reported, in the order it reported them. */
struct contract_keys {
	char **keys;
	uint64_t *sizes;
	size_t n, cap;
};

static int contract_collect(void *arg, const char *key, uint64_t size)
{
	struct contract_keys *ks = arg;

	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 64;
		ks->keys = realloc(ks->keys, ks->cap * sizeof(*ks->keys));
		ks->sizes = realloc(ks->sizes, ks->cap * sizeof(*ks->sizes));
		if (!ks->keys || !ks->sizes)
			return -ENOMEM;
	}
	ks->keys[ks->n] = strdup(key);
	ks->sizes[ks->n++] = size;
	return 0;
}

static void contract_keys_free(struct contract_keys *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		free(ks->keys[i]);
	free(ks->keys);
	free(ks->sizes);
	memset(ks, 0, sizeof(*ks));
}

static void contract_list(const char *prefix, struct contract_keys *ks)
{
	int rc;

	memset(ks, 0, sizeof(*ks));
	rc = backend_list(be, prefix, contract_collect, ks);
	cr_assert_eq(rc, 0, "list \"%s\": %s", prefix, strerror(-rc));
}

static int contract_strcmp(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: memcmp order for C strings. */
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Asserts that list(prefix) reports exactly the keys of `all` (sorted,
 * `n` of them) that start with `prefix`, in order, each once, with its
 * size being its own length (the tests store each key as its value).
 */
static void contract_check_list(const char *prefix, char *const *all, size_t n)
{
	struct contract_keys ks;
	size_t plen = strlen(prefix), i, j = 0;

	contract_list(prefix, &ks);
	for (i = 0; i < n; i++) {
		if (strncmp(all[i], prefix, plen) != 0)
			continue;
		cr_assert_lt(j, ks.n, "list \"%s\" misses \"%s\"", prefix,
			     all[i]);
		cr_assert_str_eq(ks.keys[j], all[i],
				 "list \"%s\" entry %zu: \"%s\", want \"%s\"",
				 prefix, j, ks.keys[j], all[i]);
		cr_assert_eq(ks.sizes[j], strlen(all[i]));
		j++;
	}
	cr_assert_eq(ks.n, j, "list \"%s\": %zu keys, want %zu", prefix, ks.n,
		     j);
	contract_keys_free(&ks);
}

static uint64_t contract_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void contract_fill(unsigned char *buf, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			contract_rand(&seed);
		buf[i] = (unsigned char)(seed >> (8 * (i % 8)));
	}
}

/* ---- basic reads and writes ---- */

Test(backend, get_missing_key_returns_enoent)
{
	void *data = NULL;
	size_t len = 0;

	cr_assert_eq(backend_get(be, "nope", &data, &len), -ENOENT);
	cr_assert_null(data, "get must not hand out a buffer on error");
}

Test(backend, head_and_get_range_of_missing_key_return_enoent)
{
	contract_put_str("present", "x");
	contract_expect_missing("absent");
	contract_expect_missing("present/child");
	contract_expect_missing("presen");
}

Test(backend, put_get_roundtrip)
{
	static const char text[] = "hello, world";

	contract_put_str("greeting", text);
	contract_expect_str("greeting", text);
	contract_put("bin", "a\0b\0c", 5);
	contract_expect("bin", "a\0b\0c", 5);
}

Test(backend, empty_value_roundtrip)
{
	struct backend_stat st;
	struct contract_keys ks;
	void *data = NULL;
	size_t len = 99;

	contract_put("empty", "", 0);
	cr_assert_eq(backend_get(be, "empty", &data, &len), 0);
	cr_assert_not_null(data, "an empty object still gets a buffer");
	cr_assert_eq(len, 0);
	cr_assert_eq(((char *)data)[0], '\0');
	free(data);
	cr_assert_eq(backend_head(be, "empty", &st), 0);
	cr_assert_eq(st.size, 0);
	cr_assert_eq(backend_get_range(be, "empty", 0, 4, &st, &len), 0);
	cr_assert_eq(len, 0);
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1);
	cr_assert_str_eq(ks.keys[0], "empty");
	cr_assert_eq(ks.sizes[0], 0);
	contract_keys_free(&ks);
}

Test(backend, value_of_100_mb_roundtrip)
{
	const size_t size = 100u << 20;
	const uint64_t offs[] = { 0, size / 2 + 12345, size - 100, size,
				  size + 1000 };
	const size_t want[] = { 4096, 4096, 100, 0, 0 };
	unsigned char *src = malloc(size), buf[4096];
	void *data = NULL;
	size_t len = 0, got, i;

	cr_assert_not_null(src);
	contract_fill(src, size, 0x9e3779b97f4a7c15ULL);
	contract_put("big/object", src, size);
	cr_assert_eq(backend_get(be, "big/object", &data, &len), 0);
	cr_assert_eq(len, size);
	cr_assert_eq(memcmp(data, src, size), 0, "100 MiB content differs");
	cr_assert_eq(((char *)data)[size], '\0');
	free(data);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memset(buf, 0xa5, sizeof(buf));
		cr_assert_eq(backend_get_range(be, "big/object", offs[i],
					       sizeof(buf), buf, &got),
			     0);
		cr_assert_eq(got, want[i], "range at %llu: got %zu",
			     (unsigned long long)offs[i], got);
		if (got)
			cr_assert_eq(memcmp(buf, src + offs[i], got), 0,
				     "range at %llu differs",
				     (unsigned long long)offs[i]);
	}
	free(src);
}

Test(backend, get_range_reads_within_and_stops_at_end)
{
	char buf[16];
	size_t got = 99;

	contract_put_str("r", "0123456789");
	cr_assert_eq(backend_get_range(be, "r", 2, 3, buf, &got), 0);
	cr_assert_eq(got, 3);
	cr_assert_eq(memcmp(buf, "234", 3), 0);
	cr_assert_eq(backend_get_range(be, "r", 7, sizeof(buf), buf, &got), 0);
	cr_assert_eq(got, 3);
	cr_assert_eq(memcmp(buf, "789", 3), 0);
	cr_assert_eq(backend_get_range(be, "r", 10, 4, buf, &got), 0);
	cr_assert_eq(got, 0);
	cr_assert_eq(backend_get_range(be, "r", UINT64_MAX, 4, buf, &got), 0);
	cr_assert_eq(got, 0);
	cr_assert_eq(backend_get_range(be, "r", 0, 0, buf, &got), 0);
	cr_assert_eq(got, 0);
}

Test(backend, overwrite_replaces)
{
	contract_put_str("k", "first, the longer value");
	contract_put_str("k", "second");
	contract_expect_str("k", "second");
	contract_put_str("k", "");
	contract_expect_str("k", "");
}

Test(backend, del_then_get_enoent)
{
	contract_put_str("a/1", "one");
	contract_put_str("a/2", "two");
	contract_put_str("a", "top");
	cr_assert_eq(backend_del(be, "a/1"), 0);
	contract_expect_missing("a/1");
	contract_expect_str("a/2", "two");
	contract_expect_str("a", "top");
	cr_assert_eq(backend_del(be, "a"), 0);
	contract_expect_missing("a");
	contract_expect_str("a/2", "two");
	contract_put_str("a/1", "again");
	contract_expect_str("a/1", "again");
}

Test(backend, del_missing_returns_zero)
{
	cr_assert_eq(backend_del(be, "never/was"), 0);
	contract_put_str("k", "v");
	cr_assert_eq(backend_del(be, "k"), 0);
	cr_assert_eq(backend_del(be, "k"), 0);
	cr_assert_eq(backend_del(be, "k/under/an/object"), 0);
}

/* ---- listing ---- */

#ifdef CONTRACT_S3
/*
 * One page of s3rver's.  s3rver pages in the order it walks its
 * directories, which differs from key order for these mixed shapes
 * ("log/1" before "log!2"), so paging past 1000 keys loses keys there
 * (AWS pages in key order); test_s3.c tests paging with keys s3rver
 * orders right.
 */
#define LIST_KEYS 1000
#else
#define LIST_KEYS 100000
#endif

static const char *const list_groups[] = {
	"log/",
	"log!",
	"log",
	"log/a/",
	"ckpt/%/",
	".hidden/",
	"na\xc3\xafve/\xe6\x97\xa5/",
	"z\x01/",
};

struct contract_counter {
	unsigned calls, stop_at;
};

static int contract_stop(void *arg, const char *key, uint64_t size)
{
	struct contract_counter *c = arg;

	return ++c->calls == c->stop_at ? 42 : 0;
}

Test(backend, list_is_sorted_and_prefix_filtered, .timeout = 300)
{
	static const char *const prefixes[] = {
		"",
		"log",
		"log/",
		"log/a",
		"log/a/",
		"log/1",
		"log!9",
		"ckpt/%/",
		".hid",
		"na\xc3\xaf",
		"na\xc3\xafve/\xe6\x97\xa5/12",
		"z",
		"nomatch",
		"log/a/99999",
		"log/a/99999/",
	};
	const size_t ngroups = sizeof(list_groups) / sizeof(list_groups[0]);
	struct contract_counter counter = { 0, 10 };
	char **keys = malloc(LIST_KEYS * sizeof(*keys));
	uint64_t seed = 42;
	size_t i;

	cr_assert_not_null(keys);
	contract_reopen_fast();
	for (i = 0; i < LIST_KEYS; i++) {
		char k[64];

		snprintf(k, sizeof(k), "%s%zu", list_groups[i % ngroups], i);
		keys[i] = strdup(k);
	}
	for (i = LIST_KEYS - 1; i > 0; i--) {
		size_t j = (size_t)(contract_rand(&seed) % (i + 1));
		char *t = keys[i];

		keys[i] = keys[j];
		keys[j] = t;
	}
	for (i = 0; i < LIST_KEYS; i++)
		contract_put_str(keys[i], keys[i]);
	qsort(keys, LIST_KEYS, sizeof(*keys), contract_strcmp);
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		contract_check_list(prefixes[i], keys, LIST_KEYS);
	cr_assert_eq(backend_list(be, "", contract_stop, &counter), 42,
		     "list returns what the callback stopped it with");
	cr_assert_eq(counter.calls, 10, "list went on after a stop");
	for (i = 0; i < LIST_KEYS; i++)
		free(keys[i]);
	free(keys);
}

Test(backend, list_stops_when_callback_returns_nonzero)
{
	struct contract_counter counter = { 0, 2 };

	contract_put_str("a", "1");
	contract_put_str("b/c", "2");
	contract_put_str("d", "3");
	cr_assert_eq(backend_list(be, "", contract_stop, &counter), 42);
	cr_assert_eq(counter.calls, 2);
	counter = (struct contract_counter){ 0, 1 };
	cr_assert_eq(backend_list(be, "b/", contract_stop, &counter), 42);
	cr_assert_eq(counter.calls, 1);
}

Test(backend, list_of_empty_backend_reports_nothing)
{
	struct contract_counter counter = { 0, 0 };

	cr_assert_eq(backend_list(be, "", contract_stop, &counter), 0);
	cr_assert_eq(backend_list(be, "x/", contract_stop, &counter), 0);
	cr_assert_eq(counter.calls, 0);
}

static int contract_del_listed(void *arg, const char *key, uint64_t size)
{
	struct backend *b = arg;
	void *data;
	size_t len;
	int rc = backend_get(b, key, &data, &len);

	if (rc)
		return rc;
	free(data);
	return backend_del(b, key);
}

Test(backend, list_callback_may_call_back_into_backend)
{
	struct contract_keys ks;

	contract_put_str("x/1", "a");
	contract_put_str("x/2", "b");
	contract_put_str("x/3/4", "c");
	contract_put_str("y", "d");
	cr_assert_eq(backend_list(be, "x", contract_del_listed, be), 0);
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1);
	cr_assert_str_eq(ks.keys[0], "y");
	contract_keys_free(&ks);
}

/* ---- key names ---- */

static const char *const odd_keys[] = {
	"with space",
	"100%",
	"a%2Fb",
	"%2F",
	"%",
	"%%",
	"%00",
	"x%00y",
	"na\xc3\xafve/\xe6\x97\xa5\xe6\x9c\xac.txt",
	".hidden",
	"dir/.hidden",
	".",
	"..",
	"./x",
	"../x",
	"a/./b",
	"a/../b",
	".tmp",
	".tmp/x",
	"a",
	"a/b",
	"a//b",
	"a/b/",
	"/leading",
	"trailing/",
	"/",
	"//",
	"tab\there",
	"del\x7f",
	"\x01\x1f",
	"a%",
	"a%/b",
	"end%/x",
	"~",
	"back\\slash",
	"q?*<>|:\"",
	"-dash",
	"\xff\xfe",
};

#ifdef CONTRACT_S3
/*
 * s3rver stores an object as a file whose path is path.join() of the key's
 * segments, which folds empty, "." and ".." directory segments ("a//b" and
 * "a/./b" become "a/b"); S3 keeps them.  The backend sends such keys as
 * they are (test_s3.c checks the signatures of those requests).
 */
static bool contract_server_stores(const char *key)
{
	const char *seg = key, *slash;

	while ((slash = strchr(seg, '/'))) {
		size_t n = (size_t)(slash - seg);

		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		seg = slash + 1;
	}
	return true;
}
#endif

#ifdef CONTRACT_S3
/* s3rver's file for an object's metadata is its name + 22 bytes. */
#define CONTRACT_LEAF_MAX (255 - 22)
#else
#define CONTRACT_LEAF_MAX 255
#endif

Test(backend, odd_names_roundtrip)
{
	size_t n = 0;
	char *all[sizeof(odd_keys) / sizeof(odd_keys[0]) + 2];
	char long_leaf[5 + CONTRACT_LEAF_MAX + 1];
	size_t i;

	memcpy(long_leaf, "long/", 5);
	memset(long_leaf + 5, 'n', CONTRACT_LEAF_MAX);
	long_leaf[5 + CONTRACT_LEAF_MAX] = '\0';
	for (i = 0; i < sizeof(odd_keys) / sizeof(odd_keys[0]); i++) {
#ifdef CONTRACT_S3
		/* S3 keys are UTF-8: the backend refuses other bytes. */
		if (!strcmp(odd_keys[i], "\xff\xfe")) {
			cr_assert_eq(backend_put(be, odd_keys[i], "v", 1, NULL),
				     -EINVAL);
			continue;
		}
		if (!contract_server_stores(odd_keys[i]))
			continue;
#endif
		contract_put_str(odd_keys[i], odd_keys[i]);
		all[n++] = (char *)odd_keys[i];
	}
	contract_put_str(long_leaf, long_leaf);
	all[n] = long_leaf;
	for (i = 0; i < n; i++)
		contract_expect_str(all[i], all[i]);
	contract_expect_str(long_leaf, long_leaf);
	qsort(all, n + 1, sizeof(*all), contract_strcmp);
	contract_check_list("", all, n + 1);
	contract_check_list("a", all, n + 1);
	contract_check_list("a/", all, n + 1);
	contract_check_list(".", all, n + 1);
	contract_check_list("%", all, n + 1);
	contract_check_list("/", all, n + 1);
	contract_check_list("//", all, n + 1);
}

Test(backend, object_and_directory_of_same_name_coexist)
{
	contract_put_str("a", "file");
	contract_put_str("a/b", "nested");
	contract_put_str("a/b/c", "deeper");
	contract_expect_str("a", "file");
	contract_expect_str("a/b", "nested");
	contract_expect_str("a/b/c", "deeper");
	cr_assert_eq(backend_del(be, "a/b"), 0);
	contract_expect_str("a", "file");
	contract_expect_str("a/b/c", "deeper");
	contract_expect_missing("a/b");
	cr_assert_eq(backend_del(be, "a/b/c"), 0);
	contract_expect_str("a", "file");
	contract_put_str("a/b/c", "back");
	cr_assert_eq(backend_del(be, "a"), 0);
	contract_expect_str("a/b/c", "back");
	contract_expect_missing("a");
}

Test(backend, key_of_max_length_roundtrip)
{
	char key[BACKEND_KEY_MAX + 1];
	struct contract_keys ks;
	size_t i, max = contract_key_max();

	for (i = 0; i < BACKEND_KEY_MAX; i++)
		key[i] = i % 101 == 100 ? '/' : (char)('a' + i % 26);
	key[BACKEND_KEY_MAX] = '\0';
	if (max < BACKEND_KEY_MAX) {
		cr_assert_eq(backend_put(be, key, "v", 1, NULL), -ENAMETOOLONG,
			     "a key over S3's limit once prefixed");
		key[max] = '\0';
	}
	contract_put_str(key, "max");
	contract_expect_str(key, "max");
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1);
	cr_assert_str_eq(ks.keys[0], key);
	contract_keys_free(&ks);
}

Test(backend, invalid_keys_return_einval)
{
	char longkey[BACKEND_KEY_MAX + 2];
	const char *bad[] = { "", longkey, NULL };
	struct backend_stat st;
	size_t i, n;
	void *data;
	char buf[4];

	memset(longkey, 'k', BACKEND_KEY_MAX + 1);
	longkey[BACKEND_KEY_MAX + 1] = '\0';
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(backend_put(be, bad[i], "v", 1, NULL), -EINVAL);
		cr_assert_eq(backend_get(be, bad[i], &data, &n), -EINVAL);
		cr_assert_eq(backend_get_range(be, bad[i], 0, 4, buf, &n),
			     -EINVAL);
		cr_assert_eq(backend_head(be, bad[i], &st), -EINVAL);
		cr_assert_eq(backend_del(be, bad[i]), -EINVAL);
	}
	for (i = 100; i < BACKEND_KEY_MAX; i += 101)
		longkey[i] = '/'; /* components that fit a file name */
	longkey[contract_key_max()] = '\0';
	contract_put_str(longkey, "fits");
	contract_expect_str(longkey, "fits");
}

/*
 * A component whose encoding exceeds a file name: the local backend
 * refuses it with -ENAMETOOLONG (documented in backend.h), the others
 * store it.
 */
Test(backend, long_components_are_stored_or_refused_with_enametoolong)
{
	char leaf[300], dir[300];
	struct contract_keys ks;
	int want;

#ifdef CONTRACT_LOCAL
	want = -ENAMETOOLONG;
#else
	want = 0;
#endif
	memset(leaf, '%', 200); /* 600 bytes once percent-encoded */
	leaf[200] = '\0';
	memset(dir, 'd', 255); /* 255 bytes, plus the directory marker */
	strcpy(dir + 255, "/x");
	cr_assert_eq(backend_put(be, leaf, "v", 1, NULL), want);
	cr_assert_eq(backend_put(be, dir, "v", 1, NULL), want);
	if (want) {
		contract_expect_missing(leaf);
		contract_expect_missing(dir);
		cr_assert_eq(backend_del(be, leaf), 0);
		contract_list("", &ks);
		cr_assert_eq(ks.n, 0);
		contract_keys_free(&ks);
	} else {
		contract_expect_str(leaf, "v");
		contract_expect_str(dir, "v");
	}
	dir[254] = '\0'; /* a 254-byte directory name fits everywhere */
	strcat(dir, "/x");
	contract_put_str(dir, "fits");
	contract_expect_str(dir, "fits");
}

/* ---- conditional puts ---- */

static const struct backend_cond cond_absent = { BACKEND_COND_ABSENT, NULL };

/*
 * backend.h lets a backend whose server ignores conditions return 0, and
 * s3rver ignores If-None-Match and If-Match.  Skips the test when the
 * server ignores conditions of this kind, after checking that such a put
 * still stores its value; other backends always honour them.
 */
static void contract_need_conditions(enum backend_cond_kind kind)
{
#ifdef CONTRACT_S3
	struct backend_cond cond = { kind, NULL };
	struct backend_stat st;
	int rc;

	contract_put_str("cond-probe", "1");
	cr_assert_eq(backend_head(be, "cond-probe", &st), 0);
	contract_put_str("cond-probe", "2");
	cond.etag = st.etag; /* stale now */
	rc = backend_put(be, "cond-probe", "3", 1, &cond);
	cr_assert(rc == 0 || rc == -EEXIST, "conditional put: %s",
		  strerror(-rc));
	contract_expect_str("cond-probe", rc ? "2" : "3");
	cr_assert_eq(backend_del(be, "cond-probe"), 0);
	if (rc == 0)
		cr_skip_test("the server ignores %s (backend.h allows that)",
			     kind == BACKEND_COND_ABSENT ? "If-None-Match"
							 : "If-Match");
#endif
}

Test(backend, cond_absent_refuses_existing)
{
	contract_need_conditions(BACKEND_COND_ABSENT);
	cr_assert_eq(backend_put(be, "new", "v1", 2, &cond_absent), 0);
	contract_expect_str("new", "v1");
	cr_assert_eq(backend_put(be, "new", "v2", 2, &cond_absent), -EEXIST);
	contract_expect_str("new", "v1");
	cr_assert_eq(backend_del(be, "new"), 0);
	cr_assert_eq(backend_put(be, "new", "v3", 2, &cond_absent), 0);
	contract_expect_str("new", "v3");
	cr_assert_eq(backend_put(be, "deep/er/key", "d", 1, &cond_absent), 0);
	contract_expect_str("deep/er/key", "d");
}

Test(backend, cond_etag_matches_and_mismatches)
{
	struct backend_cond cond = { BACKEND_COND_ETAG, NULL };
	struct backend_stat st1, st2, st3;

	contract_need_conditions(BACKEND_COND_ETAG);
	contract_put_str("k", "v1");
	cr_assert_eq(backend_head(be, "k", &st1), 0);
	cond.etag = st1.etag;
	cr_assert_eq(backend_put(be, "k", "v2", 2, &cond), 0);
	contract_expect_str("k", "v2");
	cr_assert_eq(backend_head(be, "k", &st2), 0);
	cr_assert_str_neq(st1.etag, st2.etag);
	cr_assert_eq(backend_put(be, "k", "v3", 2, &cond), -EEXIST,
		     "a stale ETag must not match");
	contract_expect_str("k", "v2");
	cr_assert_eq(backend_head(be, "k", &st3), 0);
	cr_assert_str_eq(st2.etag, st3.etag, "ETag changed without a put");
	cr_assert_eq(backend_put(be, "missing", "v", 1, &cond), -EEXIST);
	contract_expect_missing("missing");
	cond.etag = st2.etag;
	cr_assert_eq(backend_del(be, "k"), 0);
	cr_assert_eq(backend_put(be, "k", "v4", 2, &cond), -EEXIST);
	contract_expect_missing("k");
}

Test(backend, etag_changes_whenever_object_is_replaced)
{
	enum { ROUNDS = 100 };
	static char etags[ROUNDS][BACKEND_ETAG_MAX];
	struct backend_stat st;
	int i, j;

	for (i = 0; i < ROUNDS; i++) {
#ifdef CONTRACT_S3
		/* S3's ETag is a hash of the content (backend_s3.h). */
		char value[32];

		snprintf(value, sizeof(value), "identical-%d", i);
#else
		/* Same bytes every time: only the replacement differs. */
		const char *value = "identical";
#endif
		contract_put_str("same", value);
		if (i % 10 == 9)
			cr_assert_eq(backend_del(be, "same"), 0);
		if (i % 10 == 9)
			contract_put_str("same", value);
		cr_assert_eq(backend_head(be, "same", &st), 0);
		memcpy(etags[i], st.etag, BACKEND_ETAG_MAX);
		for (j = 0; j < i; j++)
			cr_assert_str_neq(etags[i], etags[j],
					  "round %d reused the ETag of %d", i,
					  j);
	}
}

/* ---- threads ---- */

struct contract_thread {
	pthread_t tid;
	pthread_barrier_t *start;
	int id;
	int rc;		 /* first unexpected result, 0 if none */
	unsigned wins;	 /* conditional puts that succeeded */
	const char *why; /* what failed */
};

static void *contract_put_many(void *arg)
{
	struct contract_thread *t = arg;
	int j;

	pthread_barrier_wait(t->start);
	for (j = 0; j < 100 && !t->rc; j++) {
		char key[32], val[32];

		snprintf(key, sizeof(key), "t%d/k%d", t->id, j);
		snprintf(val, sizeof(val), "v%d-%d", t->id, j);
		t->rc = backend_put(be, key, val, strlen(val), NULL);
	}
	return NULL;
}

static void contract_run_threads(struct contract_thread *ts,
				 void *(*fn)(void *))
{
	pthread_barrier_t start;
	int i;

	pthread_barrier_init(&start, NULL, CONTRACT_THREADS);
	for (i = 0; i < CONTRACT_THREADS; i++) {
		ts[i].start = &start;
		ts[i].id = i;
		ts[i].rc = 0;
		ts[i].wins = 0;
		ts[i].why = "";
		cr_assert_eq(pthread_create(&ts[i].tid, NULL, fn, &ts[i]), 0);
	}
	for (i = 0; i < CONTRACT_THREADS; i++)
		pthread_join(ts[i].tid, NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < CONTRACT_THREADS; i++)
		cr_assert_eq(ts[i].rc, 0, "thread %d: %s: %s", i, ts[i].why,
			     strerror(-ts[i].rc));
}

Test(backend, concurrent_puts_to_distinct_keys_all_present)
{
	struct contract_thread ts[CONTRACT_THREADS];
	struct contract_keys ks;
	int i, j;

	contract_run_threads(ts, contract_put_many);
	for (i = 0; i < CONTRACT_THREADS; i++) {
		for (j = 0; j < 100; j++) {
			char key[32], val[32];

			snprintf(key, sizeof(key), "t%d/k%d", i, j);
			snprintf(val, sizeof(val), "v%d-%d", i, j);
			contract_expect_str(key, val);
		}
	}
	contract_list("", &ks);
	cr_assert_eq(ks.n, CONTRACT_THREADS * 100);
	contract_keys_free(&ks);
}

enum { ABSENT_ROUNDS = 20 };

static void *contract_race_absent(void *arg)
{
	struct contract_thread *t = arg;
	int round, rc;

	pthread_barrier_wait(t->start);
	for (round = 0; round < ABSENT_ROUNDS && !t->rc; round++) {
		char key[32], val[16];

		snprintf(key, sizeof(key), "race/%d", round);
		snprintf(val, sizeof(val), "%d", t->id);
		rc = backend_put(be, key, val, strlen(val), &cond_absent);
		if (rc == 0)
			t->wins |= 1u << round;
		else if (rc != -EEXIST)
			t->rc = rc, t->why = "put absent";
	}
	return NULL;
}

Test(backend, cond_absent_lets_exactly_one_of_8_threads_win)
{
	struct contract_thread ts[CONTRACT_THREADS];
	int round, i;

	contract_need_conditions(BACKEND_COND_ABSENT);
	contract_run_threads(ts, contract_race_absent);
	for (round = 0; round < ABSENT_ROUNDS; round++) {
		char key[32], val[16];
		int winners = 0, winner = -1;

		for (i = 0; i < CONTRACT_THREADS; i++) {
			if (ts[i].wins & (1u << round)) {
				winners++;
				winner = i;
			}
		}
		cr_assert_eq(winners, 1, "round %d had %d winners", round,
			     winners);
		snprintf(key, sizeof(key), "race/%d", round);
		snprintf(val, sizeof(val), "%d", winner);
		contract_expect_str(key, val);
	}
}

/* One compare-and-swap increment of the number stored at `key`. */
static int contract_cas_increment(struct backend *b, const char *key)
{
	for (;;) {
		struct backend_cond cond = { BACKEND_COND_ETAG, NULL };
		struct backend_stat st;
		char val[32];
		void *data;
		size_t len;
		long n;
		int rc;

		rc = backend_head(b, key, &st);
		if (rc)
			return rc;
		rc = backend_get(b, key, &data, &len);
		if (rc)
			return rc;
		n = strtol(data, NULL, 10);
		free(data);
		snprintf(val, sizeof(val), "%ld", n + 1);
		cond.etag = st.etag;
		rc = backend_put(b, key, val, strlen(val), &cond);
		if (rc != -EEXIST)
			return rc;
	}
}

enum { CAS_ROUNDS = 25 };

static void *contract_cas_thread(void *arg)
{
	struct contract_thread *t = arg;
	int i;

	pthread_barrier_wait(t->start);
	for (i = 0; i < CAS_ROUNDS && !t->rc; i++) {
		t->rc = contract_cas_increment(be, "counter");
		t->why = "increment";
	}
	return NULL;
}

Test(backend, cond_etag_increments_from_8_threads_lose_nothing)
{
	struct contract_thread ts[CONTRACT_THREADS];
	char want[16];

	contract_need_conditions(BACKEND_COND_ETAG);
	contract_put_str("counter", "0");
	contract_run_threads(ts, contract_cas_thread);
	snprintf(want, sizeof(want), "%d", CONTRACT_THREADS * CAS_ROUNDS);
	contract_expect_str("counter", want);
}

enum { MIX_ROUNDS = 100, MIX_A = 100000, MIX_B = 300000 };

struct contract_mix {
	struct backend *b;
	atomic_int done;
	atomic_int rc;
	atomic_uint reads;
};

static void *contract_mix_reader(void *arg)
{
	struct contract_mix *m = arg;

	while (!atomic_load(&m->done) && !atomic_load(&m->rc)) {
		unsigned char *data;
		size_t len, i, want;
		void *p;
		int rc = backend_get(m->b, "mix", &p, &len);

		if (rc) {
			atomic_store(&m->rc, rc);
			break;
		}
		data = p;
		want = data[0] == 'a' ? MIX_A : MIX_B;
		for (i = 0; i < len && data[i] == data[0]; i++)
			;
		if (len != want || i != len)
			atomic_store(&m->rc, -EBADMSG);
		free(p);
		atomic_fetch_add(&m->reads, 1);
	}
	return NULL;
}

Test(backend, readers_see_old_or_new_value_never_a_mix)
{
	struct contract_mix m = { .b = be };
	char *a = malloc(MIX_A), *b = malloc(MIX_B);
	pthread_t reader;
	int i, rc = 0;

#ifdef CONTRACT_S3
	/* A property of the server: S3 PUTs are atomic, s3rver's are not. */
	free(a);
	free(b);
	cr_skip_test("s3rver writes an object in place while readers read it");
#endif
	cr_assert(a && b);
	memset(a, 'a', MIX_A);
	memset(b, 'b', MIX_B);
	contract_put("mix", a, MIX_A);
	cr_assert_eq(pthread_create(&reader, NULL, contract_mix_reader, &m), 0);
	/* Keep replacing until the reader has had MIX_ROUNDS looks. */
	for (i = 0; !rc && !atomic_load(&m.rc) && i < 1000000 &&
		    (i < MIX_ROUNDS || atomic_load(&m.reads) < MIX_ROUNDS);
	     i++)
		rc = backend_put(be, "mix", i % 2 ? a : b,
				 i % 2 ? MIX_A : MIX_B, NULL);
	atomic_store(&m.done, 1);
	pthread_join(reader, NULL);
	cr_assert_eq(rc, 0, "put: %s", strerror(-rc));
	cr_assert_eq(atomic_load(&m.rc), 0, "reader saw %s",
		     atomic_load(&m.rc) == -EBADMSG ? "a torn value"
						    : strerror(-m.rc));
	cr_assert_geq(atomic_load(&m.reads), MIX_ROUNDS);
	free(a);
	free(b);
}

/* ---- map ---- */

Test(backend, map_matches_get_or_is_unsupported)
{
	unsigned char src[10000];
	const void *data = NULL;
	size_t len = 1;
	void *cookie = NULL;

	contract_fill(src, sizeof(src), 7);
	contract_put("m", src, sizeof(src));
	contract_put("e", "", 0);
	if (!be->map) {
		cr_assert_eq(backend_map(be, "m", &data, &len, &cookie),
			     -ENOTSUP);
		return;
	}
	cr_assert_eq(backend_map(be, "m", &data, &len, &cookie), 0);
	cr_assert_eq(len, sizeof(src));
	cr_assert_eq(memcmp(data, src, len), 0);
	backend_unmap(be, cookie);
	data = NULL;
	cr_assert_eq(backend_map(be, "e", &data, &len, &cookie), 0);
	cr_assert_not_null(data, "an empty object maps to a valid pointer");
	cr_assert_eq(len, 0);
	backend_unmap(be, cookie);
	cr_assert_eq(backend_map(be, "none", &data, &len, &cookie), -ENOENT);
}

Test(backend, mapping_outlives_overwrite_and_delete)
{
	unsigned char src[8192], other[8192];
	const void *data;
	size_t len;
	void *cookie;

	if (!be->map)
		return; /* covered by map_matches_get_or_is_unsupported */
	contract_fill(src, sizeof(src), 1);
	contract_fill(other, sizeof(other), 2);
	contract_put("m", src, sizeof(src));
	cr_assert_eq(backend_map(be, "m", &data, &len, &cookie), 0);
	contract_put("m", other, sizeof(other));
	cr_assert_eq(memcmp(data, src, sizeof(src)), 0,
		     "overwrite changed a live mapping");
	cr_assert_eq(backend_del(be, "m"), 0);
	cr_assert_eq(memcmp(data, src, sizeof(src)), 0);
	backend_unmap(be, cookie);
}

/* ---- local backend only ---- */
#ifdef CONTRACT_LOCAL

static void contract_path(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", contract_dir, rel);
}

/* Entries of `dir` other than "." and ".." whose name starts with `pfx`. */
static int contract_count_entries(const char *dir, const char *pfx)
{
	struct dirent *d;
	DIR *dh = opendir(dir);
	int n = 0;

	cr_assert_not_null(dh, "opendir %s: %s", dir, strerror(errno));
	while ((d = readdir(dh))) {
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..") &&
		    strncmp(d->d_name, pfx, strlen(pfx)) == 0)
			n++;
	}
	closedir(dh);
	return n;
}

static void contract_touch(const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	contract_path(path, sizeof(path), rel);
	f = fopen(path, "w");
	cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
}

Test(backend, data_survives_close_and_reopen)
{
	size_t i, n = sizeof(odd_keys) / sizeof(odd_keys[0]);
	char *all[sizeof(odd_keys) / sizeof(odd_keys[0])];

	for (i = 0; i < n; i++) {
		contract_put_str(odd_keys[i], odd_keys[i]);
		all[i] = (char *)odd_keys[i];
	}
	backend_close(be);
	be = NULL;
	cr_assert_eq(backend_local_open(contract_dir, &be), 0);
	for (i = 0; i < n; i++)
		contract_expect_str(odd_keys[i], odd_keys[i]);
	qsort(all, n, sizeof(*all), contract_strcmp);
	contract_check_list("", all, n);
}

Test(backend, leftover_tmp_files_are_removed_at_open_and_never_listed)
{
	char tmp[PATH_MAX];
	struct contract_keys ks;

	contract_put_str("keep", "keep");
	contract_touch(".tmp/put-1-2-3", "half a value");
	contract_touch(".tmp/put-99", "");
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1, "a temporary file was listed");
	contract_keys_free(&ks);
	backend_close(be);
	be = NULL;
	cr_assert_eq(backend_local_open(contract_dir, &be), 0);
	contract_path(tmp, sizeof(tmp), ".tmp");
	cr_assert_eq(contract_count_entries(tmp, "put-"), 0,
		     "leftover temporary files survived open");
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1);
	cr_assert_str_eq(ks.keys[0], "keep");
	contract_keys_free(&ks);
	contract_expect_str("keep", "keep");
}

Test(backend, tmp_files_are_kept_while_another_instance_is_open)
{
	struct backend *second;
	char tmp[PATH_MAX];

	contract_path(tmp, sizeof(tmp), ".tmp");
	contract_touch(".tmp/put-in-flight", "maybe another put");
	cr_assert_eq(backend_local_open(contract_dir, &second), 0);
	cr_assert_eq(contract_count_entries(tmp, "put-"), 1,
		     "open removed a file another instance may be writing");
	backend_close(second);
	backend_close(be);
	be = NULL;
	cr_assert_eq(backend_local_open(contract_dir, &be), 0);
	cr_assert_eq(contract_count_entries(tmp, "put-"), 0);
}

Test(backend, puts_leave_no_temporary_files)
{
	char tmp[PATH_MAX];

	contract_put_str("a", "1");
	contract_put_str("a", "2");
	cr_assert_eq(backend_put(be, "a", "3", 1, &cond_absent), -EEXIST);
	contract_path(tmp, sizeof(tmp), ".tmp");
	cr_assert_eq(contract_count_entries(tmp, "put-"), 0);
}

Test(backend, foreign_files_are_ignored)
{
	char path[PATH_MAX];
	struct contract_keys ks;

	contract_put_str("real", "r");
	contract_touch("%41", "not the canonical name of A");
	contract_touch("x%2Fy", "a slash inside a name");
	contract_touch("bad%zz", "no such escape");
	contract_touch(".DS_Store", "hidden");
	contract_touch("file%", "a directory name on a file");
	contract_path(path, sizeof(path), "obj");
	cr_assert_eq(mkdir(path, 0755), 0);
	contract_touch("obj/f", "an object name on a directory");
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1, "listed %zu keys", ks.n);
	cr_assert_str_eq(ks.keys[0], "real");
	contract_keys_free(&ks);
	contract_expect_missing("obj");
	contract_expect_missing("A");
	contract_put_str("A", "a");
	contract_expect_str("A", "a");
}

Test(backend, deleting_last_keys_removes_empty_directories)
{
	contract_put_str("a/b/c/d", "deep");
	contract_put_str("a/x", "shallow");
	cr_assert_eq(backend_del(be, "a/b/c/d"), 0);
	contract_expect_str("a/x", "shallow");
	cr_assert_eq(backend_del(be, "a/x"), 0);
	cr_assert_eq(contract_count_entries(contract_dir, ""), 1,
		     "empty directories were left behind");
	cr_assert_eq(contract_count_entries(contract_dir, ".tmp"), 1);
}

Test(backend, open_creates_parents_and_where_is_absolute)
{
	char want[PATH_MAX], *real;
	struct backend *b;
	struct stat st;

	cr_assert_eq(chdir(contract_dir), 0);
	cr_assert_eq(backend_local_open("sub/dir/root", &b), 0);
	real = realpath(contract_dir, NULL);
	snprintf(want, sizeof(want), "%s/sub/dir/root", real);
	free(real);
	cr_assert_str_eq(b->where, want);
	cr_assert_str_eq(b->name, "local");
	cr_assert_eq(stat(want, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	backend_close(b);
}

Test(backend, open_rejects_unknown_flags_and_files)
{
	struct backend *b = NULL;

	cr_assert_eq(backend_local_open_flags(contract_dir, 2, &b), -EINVAL);
	contract_touch("plain", "x");
	{
		char path[PATH_MAX];

		contract_path(path, sizeof(path), "plain");
		cr_assert_eq(backend_local_open(path, &b), -ENOTDIR);
	}
	cr_assert_null(b);
}

Test(backend, put_in_read_only_directory_returns_eacces)
{
	char tmp[PATH_MAX];
	struct contract_keys ks;

	contract_put_str("x", "old");
	contract_put_str("d/y", "old");
	/* Only the object directories refuse: temporary files still work. */
	contract_path(tmp, sizeof(tmp), ".tmp");
	cr_assert_eq(chmod(tmp, 0777), 0);
	cr_assert_eq(chmod(contract_dir, 0555), 0);
	if (geteuid() == 0) {
		/* root ignores permissions: become nobody in this process. */
		if (seteuid(65534) < 0)
			cr_skip_test("cannot drop root: %s", strerror(errno));
		contract_dropped_root = true;
	}
	cr_assert_eq(backend_put(be, "x", "new", 3, NULL), -EACCES);
	cr_assert_eq(backend_put(be, "top", "new", 3, NULL), -EACCES);
	cr_assert_eq(backend_put(be, "d/y", "new", 3, NULL), -EACCES);
	cr_assert_eq(backend_put(be, "new/dir", "new", 3, NULL), -EACCES);
	cr_assert_eq(backend_del(be, "x"), -EACCES);
	contract_expect_str("x", "old");
	contract_expect_str("d/y", "old");
	contract_expect_missing("top");
	cr_assert_eq(contract_count_entries(tmp, "put-"), 0,
		     "a failed put left its temporary file");
	contract_list("", &ks);
	cr_assert_eq(ks.n, 2);
	contract_keys_free(&ks);
}

Test(backend, put_larger_than_free_space_returns_enospc_and_keeps_old_value)
{
	const size_t small = 200 << 10, large = 2 << 20;
	unsigned char *buf = malloc(large);
	char tmp[PATH_MAX];
	struct contract_keys ks;
	int rc;

	cr_assert_not_null(buf);
	backend_close(be);
	be = NULL;
	contract_path(contract_mnt, sizeof(contract_mnt), "small");
	cr_assert_eq(mkdir(contract_mnt, 0700), 0);
	if (mount("tmpfs", contract_mnt, "tmpfs", 0, "size=1m") < 0) {
		int err = errno;

		contract_mnt[0] = '\0';
		cr_skip_test("cannot mount a tmpfs: %s", strerror(err));
	}
	cr_assert_eq(backend_local_open(contract_mnt, &be), 0);
	contract_fill(buf, large, 3);
	contract_put("k", buf, small);
	rc = backend_put(be, "k", buf + 1, large, NULL);
	cr_assert_eq(rc, -ENOSPC, "put: %s", strerror(-rc));
	rc = backend_put(be, "other/k", buf, large, &cond_absent);
	cr_assert_eq(rc, -ENOSPC, "put: %s", strerror(-rc));
	contract_expect("k", buf, small);
	contract_expect_missing("other/k");
	snprintf(tmp, sizeof(tmp), "%s/.tmp", contract_mnt);
	cr_assert_eq(contract_count_entries(tmp, "put-"), 0,
		     "a failed put left its temporary file");
	contract_list("", &ks);
	cr_assert_eq(ks.n, 1);
	contract_keys_free(&ks);
	contract_put("k2", buf, small); /* the space came back */
	free(buf);
}

enum { PROCS = 4, PROC_ROUNDS = 25 };

/* Runs `fn` in PROCS child processes, each with its own backend. */
static void contract_run_procs(int (*fn)(struct backend *b, int id), int *codes)
{
	pid_t pids[PROCS];
	int i, status;

	for (i = 0; i < PROCS; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0, "fork: %s", strerror(errno));
		if (pids[i] == 0) {
			struct backend *b;
			int code = 255;

			if (backend_local_open(contract_dir, &b) == 0) {
				code = fn(b, i);
				backend_close(b);
			}
			_exit(code);
		}
	}
	for (i = 0; i < PROCS; i++) {
		cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
		cr_assert(WIFEXITED(status), "child %d crashed", i);
		codes[i] = WEXITSTATUS(status);
	}
}

/* Exits with the number of keys this process won, 255 on an error. */
static int contract_proc_absent(struct backend *b, int id)
{
	int round, wins = 0;

	for (round = 0; round < PROC_ROUNDS; round++) {
		char key[32], val[16];
		int rc;

		snprintf(key, sizeof(key), "race/%d", round);
		snprintf(val, sizeof(val), "%d", id);
		rc = backend_put(b, key, val, strlen(val), &cond_absent);
		if (rc == 0)
			wins++;
		else if (rc != -EEXIST)
			return 255;
	}
	return wins;
}

Test(backend, cond_absent_is_atomic_across_processes)
{
	int codes[PROCS], i, total = 0;

	contract_run_procs(contract_proc_absent, codes);
	for (i = 0; i < PROCS; i++) {
		cr_assert_neq(codes[i], 255, "child %d failed", i);
		total += codes[i];
	}
	cr_assert_eq(total, PROC_ROUNDS, "%d wins for %d keys", total,
		     PROC_ROUNDS);
}

static int contract_proc_cas(struct backend *b, int id)
{
	int i;

	for (i = 0; i < PROC_ROUNDS; i++) {
		if (contract_cas_increment(b, "counter"))
			return 1;
	}
	return 0;
}

Test(backend, cond_etag_is_atomic_across_processes)
{
	int codes[PROCS], i;
	char want[16];

	contract_put_str("counter", "0");
	contract_run_procs(contract_proc_cas, codes);
	for (i = 0; i < PROCS; i++)
		cr_assert_eq(codes[i], 0, "child %d failed", i);
	snprintf(want, sizeof(want), "%d", PROCS * PROC_ROUNDS);
	contract_expect_str("counter", want);
}

#endif /* CONTRACT_LOCAL */

/* ---- fault backend only ---- */
#ifdef CONTRACT_FAULT

Test(backend, nth_put_fails_with_given_errno_and_writes_nothing)
{
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 3, 1, -EIO), 0);
	contract_put_str("p1", "1");
	contract_put_str("p2", "2");
	cr_assert_eq(backend_put(be, "p3", "3", 1, NULL), -EIO);
	contract_expect_missing("p3");
	contract_put_str("p4", "4");
	contract_put_str("p1", "x");
	contract_expect_str("p1", "x");
}

Test(backend, failed_overwrite_keeps_old_value)
{
	contract_put_str("k", "old");
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 1, 1, -ENOSPC),
		     0);
	cr_assert_eq(backend_put(be, "k", "new", 3, NULL), -ENOSPC);
	contract_expect_str("k", "old");
}

Test(backend, count_fails_that_many_calls_then_recovers)
{
	void *data;
	size_t len;

	contract_put_str("k", "v");
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_GET, 2, 3, -EAGAIN),
		     0);
	cr_assert_eq(backend_get(be, "k", &data, &len), 0);
	free(data);
	cr_assert_eq(backend_get(be, "k", &data, &len), -EAGAIN);
	cr_assert_eq(backend_get(be, "k", &data, &len), -EAGAIN);
	cr_assert_eq(backend_get(be, "k", &data, &len), -EAGAIN);
	cr_assert_eq(backend_get(be, "k", &data, &len), 0);
	free(data);
}

Test(backend, count_zero_fails_every_call_from_nth_on)
{
	int i;

	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_DEL, 2, 0, -EIO), 0);
	contract_put_str("k", "v");
	cr_assert_eq(backend_del(be, "gone"), 0);
	for (i = 0; i < 50; i++)
		cr_assert_eq(backend_del(be, "k"), -EIO);
	contract_expect_str("k", "v");
	cr_assert_eq(backend_fault_set(be, 0, 0, 0, 0), 0, "disarm");
	cr_assert_eq(backend_del(be, "k"), 0);
	contract_expect_missing("k");
}

Test(backend, faults_hit_only_the_armed_kinds)
{
	struct backend_stat st;
	struct contract_counter counter = { 0, 0 };
	char buf[4];
	void *data;
	size_t len;

	contract_put_str("k", "v");
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_GET, 1, 0, -EIO), 0);
	cr_assert_eq(backend_get(be, "k", &data, &len), -EIO);
	cr_assert_eq(backend_get_range(be, "k", 0, 1, buf, &len), -EIO);
	cr_assert_eq(backend_head(be, "k", &st), -EIO);
	contract_put_str("k2", "v2");
	cr_assert_eq(backend_list(be, "", contract_stop, &counter), 0);
	cr_assert_eq(counter.calls, 2);
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_LIST, 1, 1, -EPERM),
		     0);
	counter.calls = 0;
	cr_assert_eq(backend_list(be, "", contract_stop, &counter), -EPERM);
	cr_assert_eq(counter.calls, 0, "a failed list called back");
	cr_assert_eq(backend_get(be, "k", &data, &len), 0, "re-arm replaces");
	free(data);
}

Test(backend, calls_are_counted_by_kind)
{
	struct contract_counter counter = { 0, 0 };
	struct backend_stat st;
	char buf[4];
	void *data;
	size_t len;

	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_ALL), 0);
	contract_put_str("k", "v");
	contract_put_str("j", "v");
	cr_assert_eq(backend_get(be, "k", &data, &len), 0);
	free(data);
	cr_assert_eq(backend_get_range(be, "k", 0, 1, buf, &len), 0);
	cr_assert_eq(backend_head(be, "nope", &st), -ENOENT);
	cr_assert_eq(backend_del(be, "j"), 0);
	cr_assert_eq(backend_list(be, "", contract_stop, &counter), 0);
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 1, 1, -EIO), 0);
	cr_assert_eq(backend_put(be, "x", "v", 1, NULL), -EIO);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_PUT), 3,
		     "failed calls count too");
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_GET), 3);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_DEL), 1);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_LIST), 1);
	cr_assert_eq(
		backend_fault_calls(be, BACKEND_FAULT_GET | BACKEND_FAULT_PUT),
		6);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_ALL), 8);
}

Test(backend, fault_set_on_other_backend_returns_einval)
{
	struct backend *mem;

	cr_assert_eq(backend_memory_open(&mem), 0);
	cr_assert_eq(backend_fault_set(mem, BACKEND_FAULT_PUT, 1, 1, -EIO),
		     -EINVAL);
	cr_assert_eq(backend_fault_calls(mem, BACKEND_FAULT_ALL), 0);
	backend_close(mem);
	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 1, 1, 0), -EINVAL,
		     "an error must be a negative errno");
	cr_assert_eq(backend_fault_set(be, 0x10, 1, 1, -EIO), -EINVAL);
	cr_assert_str_eq(be->name, "fault");
	cr_assert_null(be->map, "memory cannot map, so neither can fault");
}

static void *contract_put_until_failure(void *arg)
{
	struct contract_thread *t = arg;
	int j, rc;

	pthread_barrier_wait(t->start);
	for (j = 0; j < 50; j++) {
		char key[32];

		snprintf(key, sizeof(key), "t%d/%d", t->id, j);
		rc = backend_put(be, key, "v", 1, NULL);
		if (rc == 0)
			t->wins++;
		else if (rc != -EIO)
			t->rc = rc, t->why = "put";
	}
	return NULL;
}

Test(backend, faults_are_counted_exactly_under_threads)
{
	struct contract_thread ts[CONTRACT_THREADS];
	struct contract_keys ks;
	unsigned wins = 0;
	int i;

	cr_assert_eq(backend_fault_set(be, BACKEND_FAULT_PUT, 101, 0, -EIO), 0);
	contract_run_threads(ts, contract_put_until_failure);
	for (i = 0; i < CONTRACT_THREADS; i++)
		wins += ts[i].wins;
	cr_assert_eq(wins, 100);
	cr_assert_eq(backend_fault_calls(be, BACKEND_FAULT_PUT),
		     CONTRACT_THREADS * 50);
	contract_list("", &ks);
	cr_assert_eq(ks.n, 100, "failed puts wrote something");
	contract_keys_free(&ks);
}

#endif /* CONTRACT_FAULT */
