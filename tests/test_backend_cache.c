/* test_backend_cache.c - the local cache: hits, checks, bound, sharing. */
/*
 * The contract (test_backend_contract.c -DCONTRACT_CACHE) covers the
 * object semantics; this file covers what the cache adds.  The inner
 * backend is a fault wrapper, whose call counters prove when the cache
 * did not ask it, over a local store (so that a second cache can be opened
 * over the same objects) or over memory.  Each test runs in its own
 * process with a fresh directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "backends/backend.h"
#include "backends/backend_cache.h"

#define OBJ   10000 /* bytes of the usual test object */
#define SLACK 1100  /* a cache file's bytes beyond its object, at most */

static char test_root[PATH_MAX / 4];
static char store_dir[PATH_MAX / 2];
static char cache_dir[PATH_MAX / 2];

static int cache_rm_one(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void cache_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(test_root, sizeof(test_root), "%s/lodefs-cache-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(test_root), "mkdtemp: %s", strerror(errno));
	snprintf(store_dir, sizeof(store_dir), "%s/store", test_root);
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", test_root);
}

static void cache_teardown(void)
{
	nftw(test_root, cache_rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

TestSuite(backend_cache, .init = cache_setup, .fini = cache_teardown);

/* A cache of at most `max` bytes over a fault wrapper (*fault) over the store. */
static struct backend *cache_open(uint64_t max, struct backend **fault)
{
	struct backend *local, *be;
	int rc;

	rc = backend_local_open_flags(store_dir, BACKEND_LOCAL_NO_FSYNC,
				      &local);
	cr_assert_eq(rc, 0, "open the store: %s", strerror(-rc));
	cr_assert_eq(backend_fault_open(local, fault), 0);
	rc = backend_cache_open(*fault, cache_dir, max, &be);
	cr_assert_eq(rc, 0, "open the cache: %s", strerror(-rc));
	return be;
}

/* The same over a memory backend: nothing survives closing it. */
static struct backend *cache_open_memory(uint64_t max, struct backend **fault)
{
	struct backend *mem, *be;

	cr_assert_eq(backend_memory_open(&mem), 0);
	cr_assert_eq(backend_fault_open(mem, fault), 0);
	cr_assert_eq(backend_cache_open(*fault, cache_dir, max, &be), 0);
	return be;
}

/* Puts straight into the store, so that the cache has not seen it. */
static void store_put(const char *key, const void *data, size_t len)
{
	struct backend *local;

	cr_assert_eq(backend_local_open_flags(store_dir, BACKEND_LOCAL_NO_FSYNC,
					      &local),
		     0);
	cr_assert_eq(backend_put(local, key, data, len, NULL), 0);
	backend_close(local);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * (seed + 1);
	size_t i;

	for (i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (unsigned char)s;
	}
}

static void put(struct backend *be, const char *key, const void *data,
		size_t len)
{
	int rc = backend_put(be, key, data, len, NULL);

	cr_assert_eq(rc, 0, "put %s: %s", key, strerror(-rc));
}

static void expect_get(struct backend *be, const char *key, const void *data,
		       size_t len)
{
	void *got = NULL;
	size_t n = 0;
	int rc = backend_get(be, key, &got, &n);

	cr_assert_eq(rc, 0, "get %s: %s", key, strerror(-rc));
	cr_assert_eq(n, len, "get %s: %zu bytes, want %zu", key, n, len);
	cr_assert_eq(memcmp(got, data, len), 0, "get %s: content", key);
	cr_assert_eq(((char *)got)[len], '\0');
	free(got);
}

static void expect_map(struct backend *be, const char *key, const void *data,
		       size_t len)
{
	const void *p = NULL;
	void *cookie = NULL;
	size_t n = 0;
	int rc = backend_map(be, key, &p, &n, &cookie);

	cr_assert_eq(rc, 0, "map %s: %s", key, strerror(-rc));
	cr_assert_eq(n, len);
	cr_assert_eq(memcmp(p, data, len), 0, "map %s: content", key);
	backend_unmap(be, cookie);
}

static void expect_range(struct backend *be, const char *key,
			 const unsigned char *data, size_t len, uint64_t off)
{
	unsigned char buf[100];
	size_t got = 0, want = off >= len		 ? 0
			       : len - off < sizeof(buf) ? len - off
							 : sizeof(buf);
	int rc = backend_get_range(be, key, off, sizeof(buf), buf, &got);

	cr_assert_eq(rc, 0, "range %s: %s", key, strerror(-rc));
	cr_assert_eq(got, want);
	cr_assert_eq(memcmp(buf, data + off, got), 0);
}

static struct backend_cache_stats stats(struct backend *be)
{
	struct backend_cache_stats st;

	cr_assert_eq(backend_cache_get_stats(be, &st), 0);
	return st;
}

static unsigned long inner_gets(struct backend *fault)
{
	return backend_fault_calls(fault, BACKEND_FAULT_GET);
}

/* The cache file of `key`: xx/<XXH3-128 in hex>, see backend_cache.c. */
static void cache_path(const char *key, char *path, size_t cap)
{
	XXH128_canonical_t c;
	char hex[33];
	size_t i;

	XXH128_canonicalFromHash(&c, XXH3_128bits(key, strlen(key)));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
	snprintf(path, cap, "%s/%.2s/%s", cache_dir, hex, hex);
}

static bool cached(const char *key)
{
	char path[PATH_MAX];
	struct stat st;

	cache_path(key, path, sizeof(path));
	return stat(path, &st) == 0;
}

/* Files (and their bytes) in the cache's subdirectories or in tmp/. */
static size_t dir_files(const char *sub_or_null, uint64_t *bytes)
{
	char path[PATH_MAX];
	struct dirent *d, *f;
	size_t n = 0;
	DIR *top, *dh;

	*bytes = 0;
	top = opendir(cache_dir);
	cr_assert_not_null(top);
	while ((d = readdir(top))) {
		if (d->d_name[0] == '.' ||
		    strcmp(d->d_name, "CACHEDIR.TAG") == 0)
			continue;
		if (sub_or_null ? strcmp(d->d_name, sub_or_null) != 0
				: strcmp(d->d_name, "tmp") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cache_dir, d->d_name);
		dh = opendir(path);
		cr_assert_not_null(dh, "%s is not a directory", path);
		while ((f = readdir(dh))) {
			char file[PATH_MAX + 256];
			struct stat st;

			if (f->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, f->d_name);
			cr_assert_eq(stat(file, &st), 0);
			*bytes += (uint64_t)st.st_size;
			n++;
		}
		closedir(dh);
	}
	closedir(top);
	return n;
}

static size_t cache_files(uint64_t *bytes)
{
	return dir_files(NULL, bytes);
}

static size_t tmp_files(void)
{
	uint64_t bytes;

	return dir_files("tmp", &bytes);
}

/* ---- hits survive a restart ---- */

Test(backend_cache, reopen_serves_cached_objects_without_asking_inner)
{
	unsigned char data[4][OBJ];
	struct backend *fault, *be;
	uint64_t bytes;
	char key[32];
	int i;

	for (i = 0; i < 4; i++)
		fill(data[i], OBJ, (unsigned)i);
	be = cache_open(0, &fault);
	put(be, "ckpt/1/values", data[0], OBJ);	 /* cached by put */
	store_put("ckpt/1/vec-0", data[1], OBJ); /* cached by get */
	store_put("log/w/1.seg", data[2], OBJ);	 /* cached by map */
	store_put("log/w/2.seg", data[3], OBJ);	 /* by get_range */
	expect_get(be, "ckpt/1/vec-0", data[1], OBJ);
	expect_map(be, "log/w/1.seg", data[2], OBJ);
	expect_range(be, "log/w/2.seg", data[3], OBJ, 5);
	cr_assert_eq(stats(be).misses, 3);
	cr_assert_eq(inner_gets(fault), 3);
	backend_close(be);

	be = cache_open(0, &fault);
	cr_assert_eq(cache_files(&bytes), 4);
	cr_assert_eq(stats(be).bytes, bytes, "open counts the files it finds");
	for (i = 0; i < 3; i++) {
		expect_get(be, "ckpt/1/values", data[0], OBJ);
		expect_map(be, "ckpt/1/values", data[0], OBJ);
		expect_range(be, "ckpt/1/values", data[0], OBJ, OBJ - 10);
		expect_get(be, "ckpt/1/vec-0", data[1], OBJ);
		expect_map(be, "log/w/1.seg", data[2], OBJ);
		expect_get(be, "log/w/2.seg", data[3], OBJ);
		expect_range(be, "log/w/2.seg", data[3], OBJ, OBJ);
	}
	cr_assert_eq(inner_gets(fault), 0, "a cached object was fetched");
	cr_assert_eq(stats(be).hits, 21);
	cr_assert_eq(stats(be).misses, 0);
	cr_assert_eq(stats(be).corrupt, 0);
	/* head and list still ask inner: that is how new objects are seen. */
	for (i = 0; i < 3; i++) {
		struct backend_stat st;

		snprintf(key, sizeof(key), "log/w/%d.seg", i + 1);
		cr_assert_eq(backend_head(be, key, &st), i < 2 ? 0 : -ENOENT);
	}
	cr_assert_eq(inner_gets(fault), 3);
	backend_close(be);
}

/* ---- damaged files are found and fetched again ---- */

/* Damages the cache file of `key` with `how`, then checks a fresh cache. */
static void damage_and_check(void (*how)(const char *path),
			     int (*read)(struct backend *be, const char *key,
					 const unsigned char *want))
{
	unsigned char a[OBJ], b[OBJ];
	struct backend *fault, *be;
	char path[PATH_MAX];

	fill(a, OBJ, 1);
	fill(b, OBJ, 2);
	be = cache_open(0, &fault);
	put(be, "a", a, OBJ);
	put(be, "b", b, OBJ);
	backend_close(be);
	cache_path("a", path, sizeof(path));
	how(path);

	be = cache_open(0, &fault);
	cr_assert_eq(read(be, "a", a), 0);
	cr_assert_eq(stats(be).corrupt, 1, "the damage went unnoticed");
	cr_assert_eq(inner_gets(fault), 1, "not fetched again");
	cr_assert_eq(read(be, "a", a), 0);
	cr_assert_eq(inner_gets(fault), 1, "the fetched copy was not cached");
	backend_close(be);

	be = cache_open(0, &fault);
	expect_get(be, "a", a, OBJ);
	expect_get(be, "b", b, OBJ);
	cr_assert_eq(stats(be).corrupt, 0, "the cache file was not replaced");
	cr_assert_eq(inner_gets(fault), 0);
	backend_close(be);
}

static void flip_byte(const char *path)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &c, 1, OBJ / 2), 1);
	c ^= 0x10;
	cr_assert_eq(pwrite(fd, &c, 1, OBJ / 2), 1);
	close(fd);
}

static void truncate_half(const char *path)
{
	cr_assert_eq(truncate(path, OBJ / 2), 0);
}

static void zero_fill(const char *path)
{
	/* What a crash can leave of an unsynced file: its size, zeros. */
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(truncate(path, 0), 0);
	cr_assert_eq(truncate(path, st.st_size), 0);
}

static void other_key(const char *path)
{
	char other[PATH_MAX];

	cache_path("b", other, sizeof(other));
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(link(other, path), 0);
}

static int read_get(struct backend *be, const char *key,
		    const unsigned char *want)
{
	expect_get(be, key, want, OBJ);
	return 0;
}

static int read_map(struct backend *be, const char *key,
		    const unsigned char *want)
{
	expect_map(be, key, want, OBJ);
	return 0;
}

static int read_range(struct backend *be, const char *key,
		      const unsigned char *want)
{
	expect_range(be, key, want, OBJ, OBJ / 2 - 50);
	return 0;
}

Test(backend_cache, flipped_byte_is_detected_by_get)
{
	damage_and_check(flip_byte, read_get);
}

Test(backend_cache, flipped_byte_is_detected_by_map)
{
	damage_and_check(flip_byte, read_map);
}

Test(backend_cache, flipped_byte_is_detected_by_get_range)
{
	damage_and_check(flip_byte, read_range);
}

Test(backend_cache, truncated_file_is_detected)
{
	damage_and_check(truncate_half, read_get);
	damage_and_check(truncate_half, read_map);
}

Test(backend_cache, zero_filled_file_is_detected)
{
	damage_and_check(zero_fill, read_map);
}

Test(backend_cache, another_keys_file_is_detected)
{
	damage_and_check(other_key, read_get);
	damage_and_check(other_key, read_range);
}

Test(backend_cache, replaced_file_is_checked_again_after_first_use)
{
	unsigned char a[OBJ], b[OBJ];
	struct backend *fault, *be;
	char path[PATH_MAX], other[PATH_MAX], tmp[PATH_MAX + 8];

	fill(a, OBJ, 1);
	fill(b, OBJ, 2);
	be = cache_open(0, &fault);
	put(be, "a", a, OBJ);
	put(be, "b", b, OBJ);
	expect_map(be, "a", a, OBJ); /* trusted from now on */
	cache_path("a", path, sizeof(path));
	cache_path("b", other, sizeof(other));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	cr_assert_eq(link(other, tmp), 0);
	cr_assert_eq(rename(tmp, path), 0);
	expect_get(be, "a", a, OBJ);
	cr_assert_eq(stats(be).corrupt, 1, "a new inode was trusted");
	backend_close(be);
}

Test(backend_cache, leftovers_of_a_crash_are_removed_at_open)
{
	struct timespec old[2] = { { .tv_sec = time(NULL) - 7200 },
				   { .tv_sec = time(NULL) - 7200 } };
	char path[PATH_MAX + 16];
	struct backend *fault, *be;
	uint64_t bytes;
	int fd;

	be = cache_open(0, &fault);
	put(be, "k", "v", 1);
	backend_close(be);
	snprintf(path, sizeof(path), "%s/tmp/dead", cache_dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(futimens(fd, old), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/tmp/in-flight", cache_dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	cache_path("k", path, sizeof(path));
	cr_assert_eq(truncate(path, 0), 0); /* no room for a footer */

	be = cache_open(0, &fault);
	cr_assert_eq(tmp_files(), 1,
		     "stale temporary file kept, or young one "
		     "removed");
	cr_assert_eq(cache_files(&bytes), 0, "empty cache file kept");
	cr_assert_eq(stats(be).bytes, 0);
	expect_get(be, "k", "v", 1);
	backend_close(be);
}

/* ---- the bound ---- */

Test(backend_cache, total_stays_under_bound_by_evicting_lru)
{
	const uint64_t max = 3 * (OBJ + SLACK);
	unsigned char data[20][OBJ];
	struct backend *fault, *be;
	uint64_t bytes;
	char key[16];
	int i;

	be = cache_open(max, &fault);
	for (i = 0; i < 20; i++) {
		fill(data[i], OBJ, (unsigned)i);
		snprintf(key, sizeof(key), "k%02d", i);
		if (i % 2)
			put(be, key, data[i], OBJ);
		else
			store_put(key, data[i], OBJ);
		expect_get(be, key, data[i], OBJ);
		cache_files(&bytes);
		cr_assert_leq(bytes, max, "%llu bytes cached, bound %llu",
			      (unsigned long long)bytes,
			      (unsigned long long)max);
		cr_assert_eq(stats(be).bytes, bytes);
		/* k00 is used all along: it must never be the one evicted. */
		expect_get(be, "k00", data[0], OBJ);
	}
	cr_assert_eq(cache_files(&bytes), 3);
	cr_assert(cached("k00"));
	cr_assert(cached("k19") && cached("k18"));
	cr_assert_eq(stats(be).evictions, 17);
	backend_close(be);
}

Test(backend_cache, object_larger_than_bound_is_cached_until_the_next)
{
	unsigned char big[3 * OBJ], small[OBJ];
	struct backend *fault, *be;
	uint64_t bytes;

	fill(big, sizeof(big), 1);
	fill(small, sizeof(small), 2);
	be = cache_open(OBJ, &fault);
	store_put("big", big, sizeof(big));
	expect_get(be, "big", big, sizeof(big));
	cr_assert(cached("big"), "the object just fetched was evicted");
	cr_assert_leq(cache_files(&bytes), 1);
	put(be, "small", small, 1000);
	cr_assert(!cached("big"));
	cr_assert(cached("small"));
	backend_close(be);
}

Test(backend_cache, open_evicts_least_recently_written_over_a_lower_bound)
{
	static const int age[] = { 3, 2, 0, 4, 1 }; /* k2 and k4 newest */
	struct backend *fault, *be;
	unsigned char data[OBJ];
	char key[8], path[PATH_MAX];
	int i;

	fill(data, OBJ, 0);
	be = cache_open(0, &fault);
	for (i = 0; i < 5; i++) {
		struct timespec t[2];

		snprintf(key, sizeof(key), "k%d", i);
		put(be, key, data, OBJ);
		t[0].tv_sec = t[1].tv_sec = time(NULL) - 1000 * age[i];
		t[0].tv_nsec = t[1].tv_nsec = 0;
		cache_path(key, path, sizeof(path));
		cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
	}
	backend_close(be);
	be = cache_open(2 * (OBJ + SLACK), &fault);
	cr_assert_eq(stats(be).evictions, 3);
	cr_assert(cached("k2") && cached("k4"));
	cr_assert(!cached("k0") && !cached("k1") && !cached("k3"));
	backend_close(be);
}

/* ---- mappings ---- */

Test(backend_cache, mapping_stays_valid_after_its_file_is_removed)
{
	unsigned char data[OBJ], other[OBJ];
	struct backend *fault, *be;
	char path[PATH_MAX];
	const void *p;
	void *cookie;
	size_t len;

	fill(data, OBJ, 1);
	fill(other, OBJ, 2);
	be = cache_open(0, &fault);
	store_put("k", data, OBJ);
	cr_assert_eq(backend_map(be, "k", &p, &len, &cookie), 0);
	cr_assert_eq(len, OBJ);
	cr_assert_eq(memcmp(p, data, OBJ), 0);
	cache_path("k", path, sizeof(path));
	cr_assert_eq(unlink(path), 0, "map did not leave a cache file");
	cr_assert_eq(memcmp(p, data, OBJ), 0);
	expect_get(be, "k", data, OBJ);
	cr_assert_eq(inner_gets(fault), 2, "a removed file was not refetched");
	put(be, "k", other, OBJ);
	cr_assert_eq(backend_del(be, "k"), 0);
	cr_assert_eq(memcmp(p, data, OBJ), 0);
	backend_unmap(be, cookie);
	backend_close(be);
}

Test(backend_cache, mapped_files_are_not_evicted_until_unmapped)
{
	unsigned char data[OBJ];
	struct backend *fault, *be;
	const void *p;
	void *cookie;
	size_t len;
	char key[16];
	int i;

	fill(data, OBJ, 1);
	be = cache_open(2 * (OBJ + SLACK), &fault);
	store_put("mapped", data, OBJ);
	cr_assert_eq(backend_map(be, "mapped", &p, &len, &cookie), 0);
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		put(be, key, data, OBJ);
		cr_assert(cached("mapped"), "a mapped file was evicted");
	}
	cr_assert(cached("k9") && cached("k8"), "the bound counted a mapping");
	cr_assert_eq(memcmp(p, data, OBJ), 0);
	backend_unmap(be, cookie);
	cr_assert(!cached("mapped"), "unmap leaves the cache over its bound");
	backend_close(be);
}

/* ---- failures leave nothing behind ---- */

Test(backend_cache, failed_fetch_returns_error_and_caches_nothing)
{
	struct backend *fault, *be;
	unsigned char buf[16];
	const void *p = NULL;
	void *data = NULL, *cookie = NULL;
	uint64_t bytes;
	size_t len, got;

	be = cache_open(0, &fault);
	store_put("k", "value", 5);
	cr_assert_eq(backend_fault_set(fault, BACKEND_FAULT_GET, 1, 0, -EIO),
		     0);
	cr_assert_eq(backend_get(be, "k", &data, &len), -EIO);
	cr_assert_null(data);
	cr_assert_eq(backend_map(be, "k", &p, &len, &cookie), -EIO);
	cr_assert_eq(backend_get_range(be, "k", 0, 4, buf, &got), -EIO);
	cr_assert_eq(cache_files(&bytes), 0);
	cr_assert_eq(tmp_files(), 0);
	cr_assert_eq(backend_fault_set(fault, 0, 0, 0, 0), 0);
	expect_get(be, "k", "value", 5);
	cr_assert_eq(backend_get(be, "nope", &data, &len), -ENOENT);
	cr_assert_eq(cache_files(&bytes), 1);
	backend_close(be);
}

Test(backend_cache, failed_put_leaves_no_cache_file)
{
	struct backend *fault, *be;
	uint64_t bytes;

	be = cache_open(0, &fault);
	put(be, "old", "first", 5);
	cr_assert(cached("old"));
	cr_assert_eq(backend_fault_set(fault, BACKEND_FAULT_PUT, 1, 0, -EIO),
		     0);
	cr_assert_eq(backend_put(be, "new", "v", 1, NULL), -EIO);
	cr_assert_eq(backend_put(be, "old", "second", 6, NULL), -EIO);
	cr_assert(!cached("new"));
	cr_assert(!cached("old"), "a put that may have happened kept the copy");
	cr_assert_eq(tmp_files(), 0);
	cr_assert_eq(cache_files(&bytes), 0);
	cr_assert_eq(stats(be).bytes, 0);
	expect_get(be, "old", "first", 5);
	backend_close(be);
}

Test(backend_cache, unwritable_cache_still_serves_reads)
{
	struct rlimit rl = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };
	unsigned char data[OBJ];
	struct backend *fault, *be;
	uint64_t bytes;

	fill(data, OBJ, 3);
	be = cache_open_memory(0, &fault);
	/* Writes past 4 KiB fail with EFBIG (this process only). */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	put(be, "k", data, OBJ);
	expect_get(be, "k", data, OBJ);
	expect_map(be, "k", data, OBJ);
	expect_range(be, "k", data, OBJ, 99);
	cr_assert_eq(stats(be).errors, 4);
	cr_assert_eq(cache_files(&bytes), 0);
	cr_assert_eq(tmp_files(), 0);
	put(be, "small", "fits", 4);
	expect_map(be, "small", "fits", 4);
	cr_assert(cached("small"));
	backend_close(be);
}

Test(backend_cache, del_removes_the_cached_copy)
{
	struct backend *fault, *be;
	const void *p;
	void *data, *cookie;
	size_t len;

	be = cache_open(0, &fault);
	put(be, "k", "value", 5);
	expect_get(be, "k", "value", 5);
	cr_assert_eq(backend_del(be, "k"), 0);
	cr_assert(!cached("k"));
	cr_assert_eq(backend_get(be, "k", &data, &len), -ENOENT);
	cr_assert_eq(backend_map(be, "k", &p, &len, &cookie), -ENOENT);
	put(be, "j", "value", 5);
	cr_assert_eq(backend_fault_set(fault, BACKEND_FAULT_DEL, 1, 1, -EIO),
		     0);
	cr_assert_eq(backend_del(be, "j"), -EIO);
	expect_get(be, "j", "value", 5);
	backend_close(be);
}

/* ---- threads and processes ---- */

enum { THREADS = 8, ROUNDS = 300, SHARED = 4 };

struct worker {
	pthread_t tid;
	struct backend *be;
	pthread_barrier_t *start;
	int id;
	int rc;
	const char *why;
};

static unsigned char shared_data[SHARED][OBJ];

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t r = (uint64_t)w->id * 7919 + 1;
	int i;

	pthread_barrier_wait(w->start);
	for (i = 0; i < ROUNDS && !w->rc; i++) {
		unsigned s = (unsigned)(r % SHARED), op = (unsigned)(r / 7 % 5);
		unsigned char own[64];
		char key[32];
		const void *p;
		void *data, *cookie;
		size_t len;

		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		snprintf(key, sizeof(key), "shared/%u", s);
		switch (op) {
		case 0:
			w->rc = backend_get(w->be, key, &data, &len);
			w->why = "get";
			if (!w->rc &&
			    (len != OBJ || memcmp(data, shared_data[s], OBJ)))
				w->rc = -EBADMSG;
			if (!w->rc)
				free(data);
			break;
		case 1:
			w->rc = backend_map(w->be, key, &p, &len, &cookie);
			w->why = "map";
			if (!w->rc) {
				if (len != OBJ ||
				    memcmp(p, shared_data[s], OBJ))
					w->rc = -EBADMSG;
				backend_unmap(w->be, cookie);
			}
			break;
		case 2:
			/* Write-once keys: the same bytes again. */
			w->rc = backend_put(w->be, key, shared_data[s], OBJ,
					    NULL);
			w->why = "put shared";
			break;
		default:
			snprintf(key, sizeof(key), "own/%d/%d", w->id, i);
			fill(own, sizeof(own), (unsigned)(w->id * ROUNDS + i));
			w->rc = backend_put(w->be, key, own, sizeof(own), NULL);
			w->why = "put own";
			if (w->rc)
				break;
			w->rc = backend_get(w->be, key, &data, &len);
			w->why = "get own";
			if (!w->rc &&
			    (len != sizeof(own) || memcmp(data, own, len)))
				w->rc = -EBADMSG;
			if (!w->rc)
				free(data);
			break;
		}
	}
	return NULL;
}

static void run_workers(struct backend **bes, size_t nbes)
{
	struct worker ws[THREADS];
	pthread_barrier_t start;
	int i;

	pthread_barrier_init(&start, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		ws[i] = (struct worker){ .be = bes[(size_t)i % nbes],
					 .start = &start,
					 .id = i,
					 .why = "" };
		cr_assert_eq(
			pthread_create(&ws[i].tid, NULL, worker_run, &ws[i]),
			0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(ws[i].tid, NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < THREADS; i++)
		cr_assert_eq(ws[i].rc, 0, "thread %d: %s: %s", i, ws[i].why,
			     strerror(-ws[i].rc));
}

/*
 * Gets every shared key once the threads are done: overlapping puts of a
 * key leave it uncached, on purpose.
 */
static void cache_shared(struct backend *be)
{
	char key[32];
	int i;

	for (i = 0; i < SHARED; i++) {
		snprintf(key, sizeof(key), "shared/%d", i);
		expect_get(be, key, shared_data[i], OBJ);
	}
}

/* A fresh cache over the store serves every object right, from its files. */
static void verify_all(void)
{
	struct backend *fault, *be;
	unsigned long absent = 0;
	unsigned char own[64];
	char key[32];
	int i, j;

	be = cache_open(0, &fault);
	for (i = 0; i < SHARED; i++) {
		snprintf(key, sizeof(key), "shared/%d", i);
		expect_get(be, key, shared_data[i], OBJ);
		expect_map(be, key, shared_data[i], OBJ);
	}
	for (i = 0; i < THREADS; i++) {
		for (j = 0; j < ROUNDS; j++) {
			void *data;
			size_t len;

			snprintf(key, sizeof(key), "own/%d/%d", i, j);
			if (backend_get(be, key, &data, &len) == -ENOENT) {
				absent++; /* not every round puts */
				continue;
			}
			fill(own, sizeof(own), (unsigned)(i * ROUNDS + j));
			cr_assert_eq(len, sizeof(own));
			cr_assert_eq(memcmp(data, own, len), 0);
			free(data);
		}
	}
	cr_assert_lt(absent, THREADS * ROUNDS * 4 / 5, "few own puts");
	cr_assert_eq(stats(be).corrupt, 0);
	cr_assert_eq(inner_gets(fault), absent, "a file was missing");
	backend_close(be);
}

Test(backend_cache, eight_threads_get_map_and_put_at_once, .timeout = 120)
{
	struct backend *fault, *be;
	char key[32];
	int i;

	be = cache_open(0, &fault);
	for (i = 0; i < SHARED; i++) {
		fill(shared_data[i], OBJ, (unsigned)(100 + i));
		snprintf(key, sizeof(key), "shared/%d", i);
		store_put(key, shared_data[i], OBJ);
	}
	run_workers(&be, 1);
	cr_assert_eq(tmp_files(), 0);
	cache_shared(be);
	backend_close(be);
	verify_all();
}

/*
 * A backend in front of memory whose armed get, once it has read the
 * object, waits until the test opens the gate: it holds a fetch in
 * flight while the test does something else.
 */
struct gate {
	struct backend be; /* first: the public part */
	struct backend *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool armed, entered, open;
	unsigned gets;
};

static struct gate *gate_of(struct backend *be)
{
	return (struct gate *)be;
}

static int gate_get(struct backend *be, const char *key, void **data,
		    size_t *len)
{
	struct gate *g = gate_of(be);
	int rc = backend_get(g->inner, key, data, len);

	pthread_mutex_lock(&g->lock);
	g->gets++;
	if (g->armed) {
		g->armed = false;
		g->entered = true;
		pthread_cond_broadcast(&g->cond);
		while (!g->open)
			pthread_cond_wait(&g->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

static int gate_get_range(struct backend *be, const char *key, uint64_t off,
			  size_t len, void *buf, size_t *got)
{
	return backend_get_range(gate_of(be)->inner, key, off, len, buf, got);
}

static int gate_head(struct backend *be, const char *key,
		     struct backend_stat *st)
{
	return backend_head(gate_of(be)->inner, key, st);
}

static int gate_put(struct backend *be, const char *key, const void *data,
		    size_t len, const struct backend_cond *cond)
{
	return backend_put(gate_of(be)->inner, key, data, len, cond);
}

static int gate_del(struct backend *be, const char *key)
{
	return backend_del(gate_of(be)->inner, key);
}

static int gate_list(struct backend *be, const char *prefix,
		     backend_list_fn *fn, void *arg)
{
	return backend_list(gate_of(be)->inner, prefix, fn, arg);
}

static void gate_close(struct backend *be)
{
	struct gate *g = gate_of(be);

	backend_close(g->inner);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* A cache over a gate (*gp) over memory. */
static struct backend *cache_open_gate(struct gate **gp)
{
	struct gate *g = calloc(1, sizeof(*g));
	struct backend *be;

	cr_assert_not_null(g);
	cr_assert_eq(backend_memory_open(&g->inner), 0);
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->be = (struct backend){ .version = BACKEND_VERSION,
				  .name = "gate",
				  .where = "gate",
				  .get = gate_get,
				  .get_range = gate_get_range,
				  .head = gate_head,
				  .put = gate_put,
				  .del = gate_del,
				  .list = gate_list,
				  .close = gate_close };
	cr_assert_eq(backend_cache_open(&g->be, cache_dir, 0, &be), 0);
	*gp = g;
	return be;
}

static void gate_wait_entered(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->entered)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

struct reader {
	pthread_t tid;
	struct backend *be;
	const char *key;
	const unsigned char *want; /* NULL: any bytes will do */
	size_t len;
	bool map;
	int rc;
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	const void *p;
	void *data = NULL, *cookie;
	size_t len;

	if (r->map)
		r->rc = backend_map(r->be, r->key, &p, &len, &cookie);
	else
		r->rc = backend_get(r->be, r->key, &data, &len);
	if (r->rc)
		return NULL;
	if (r->want &&
	    (len != r->len || memcmp(r->map ? p : data, r->want, len)))
		r->rc = -EBADMSG;
	if (r->map)
		backend_unmap(r->be, cookie);
	free(data);
	return NULL;
}

static void reader_start(struct reader *r)
{
	cr_assert_eq(pthread_create(&r->tid, NULL, reader_run, r), 0);
}

Test(backend_cache, one_fetch_serves_threads_that_miss_together)
{
	static unsigned char big[4 * OBJ];
	struct reader rs[THREADS];
	struct backend *be;
	struct gate *g;
	int i;

	fill(big, sizeof(big), 9);
	be = cache_open_gate(&g);
	cr_assert_eq(backend_put(g->inner, "big", big, sizeof(big), NULL), 0);
	g->armed = true;
	for (i = 0; i < THREADS; i++) {
		rs[i] = (struct reader){ .be = be,
					 .key = "big",
					 .want = big,
					 .len = sizeof(big),
					 .map = i % 2 };
		reader_start(&rs[i]);
		if (i == 0)
			gate_wait_entered(g);
	}
	/* No sleep is needed to pass: it only gives a wrong cache time to fail. */
	usleep(100000);
	gate_open(g);
	for (i = 0; i < THREADS; i++) {
		pthread_join(rs[i].tid, NULL);
		cr_assert_eq(rs[i].rc, 0, "reader %d: %s", i,
			     strerror(-rs[i].rc));
	}
	cr_assert_eq(g->gets, 1, "%u fetches of one object", g->gets);
	cr_assert_eq(stats(be).misses, 1);
	cr_assert_eq(stats(be).hits, THREADS - 1);
	backend_close(be);
}

Test(backend_cache, fetch_that_overlaps_a_put_does_not_cache_old_bytes)
{
	struct reader r = { .key = "k",
			    .want = (const unsigned char *)"old",
			    .len = 3 };
	struct backend *be;
	struct gate *g;

	be = cache_open_gate(&g);
	r.be = be;
	cr_assert_eq(backend_put(g->inner, "k", "old", 3, NULL), 0);
	g->armed = true;
	reader_start(&r); /* fetches "old", then waits at the gate */
	gate_wait_entered(g);
	put(be, "k", "new", 3);
	gate_open(g);
	pthread_join(r.tid, NULL);
	cr_assert_eq(r.rc, 0, "get: %s", strerror(-r.rc));
	expect_get(be, "k", "new", 3);
	expect_map(be, "k", "new", 3);
	backend_close(be);
}

Test(backend_cache, two_caches_share_one_directory, .timeout = 120)
{
	struct backend *fa, *fb, *a, *b, *both[2];
	unsigned char data[OBJ];
	const void *p;
	void *cookie, *got;
	size_t len;
	char key[32];
	int i;

	fill(data, OBJ, 5);
	a = cache_open(0, &fa);
	b = cache_open(0, &fb);
	put(a, "k", data, OBJ);
	expect_get(b, "k", data, OBJ);
	expect_map(b, "k", data, OBJ);
	cr_assert_eq(inner_gets(fb), 0, "b did not use a's file");
	cr_assert_eq(backend_map(a, "k", &p, &len, &cookie), 0);
	cr_assert_eq(backend_del(b, "k"), 0);
	cr_assert_eq(memcmp(p, data, OBJ), 0, "a's mapping broke");
	cr_assert_eq(backend_get(a, "k", &got, &len), -ENOENT);
	backend_unmap(a, cookie);

	for (i = 0; i < SHARED; i++) {
		fill(shared_data[i], OBJ, (unsigned)(200 + i));
		snprintf(key, sizeof(key), "shared/%d", i);
		store_put(key, shared_data[i], OBJ);
	}
	both[0] = a;
	both[1] = b;
	run_workers(both, 2);
	cache_shared(a);
	backend_close(a);
	backend_close(b);
	verify_all();
}

Test(backend_cache, cache_evicted_by_another_process_is_fetched_again)
{
	unsigned char data[OBJ];
	struct backend *fa, *fb, *a, *b;
	const void *p;
	void *cookie;
	size_t len;
	char key[16];
	int i;

	fill(data, OBJ, 6);
	a = cache_open(0, &fa);
	put(a, "k", data, OBJ);
	cr_assert_eq(backend_map(a, "k", &p, &len, &cookie), 0);
	b = cache_open(OBJ + SLACK, &fb); /* knows k's file from its scan */
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "other%d", i);
		put(b, key, data, OBJ / 2);
	}
	cr_assert(!cached("k"), "b kept a's file over its bound");
	cr_assert_eq(memcmp(p, data, OBJ), 0, "a's mapping broke");
	expect_get(a, "k", data, OBJ);
	cr_assert_eq(inner_gets(fa), 1);
	cr_assert_eq(stats(a).corrupt, 0);
	backend_unmap(a, cookie);
	backend_close(b);
	backend_close(a);
}

/* ---- the constructor ---- */

Test(backend_cache, open_checks_arguments_and_names_itself)
{
	struct backend *mem, *be = NULL;
	struct backend_cache_stats st;

	cr_assert_eq(backend_memory_open(&mem), 0);
	/* On failure the inner backend is closed: ASan reports a leak if not. */
	cr_assert_eq(backend_cache_open(mem, "", 0, &be), -EINVAL);
	cr_assert_null(be);
	cr_assert_eq(backend_memory_open(&mem), 0);
	cr_assert_eq(backend_cache_get_stats(mem, &st), -EINVAL);
	cr_assert_eq(backend_cache_open(mem, cache_dir, 0, &be), 0);
	cr_assert_str_eq(be->name, "cache");
	cr_assert_not_null(strstr(be->where, "(cache "));
	cr_assert_not_null(be->map);
	backend_close(be);
}
