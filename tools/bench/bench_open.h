/* bench_open.h - what bench_open.c and bench_open_gen.c share. */
#ifndef LODEFS_BENCH_OPEN_H
#define LODEFS_BENCH_OPEN_H

#include <stddef.h>
#include <stdint.h>

#define BO_BATCH_NODES 10000
#define BO_SEED	       0x6c6f64656673ull /* "lodefs" */
#define BO_QUERY_SEED  0x7175657279ull
/* Bumped when the generated data changes: older data is not reused. */
#define BO_GENERATOR 2

struct bo_opts {
	size_t nodes;
	uint32_t dim;
	const char *dir;
	int keep;
	int repeat;
	int digits; /* significant digits of floats in the persist JSON */
	int split;
	int python;
};

/* splitmix64: the same sequence on every machine. */
struct bo_rng {
	uint64_t s;
};

/* Prints "bench_open: " and the message to stderr and exits 1. */
void bo_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in nanoseconds (the same clock in every process). */
uint64_t bo_now_ns(void);

/* Fills v with a random vector, uniform per component, L2-normalised. */
void bo_rand_vec(struct bo_rng *r, float *v, uint32_t dim);

/* mkdir that accepts an existing directory; exits on other errors. */
void bo_mkdir(const char *path);

/*
 * Builds DIR/store, DIR/persist/{docstore,default__vector_store}.json and
 * DIR/params (generator, nodes, dim, digits, docs, text_bytes) for `o`, printing what
 * it did.  Returns 0; exits through bo_die on any failure.  Meant to run
 * in a child process: it leaves its memory to the exit.
 */
int bo_generate(const struct bo_opts *o);

#endif
