/* lode.h - what the `lode` subcommands share (tools/lode*.c). */
#ifndef LODEFS_LODE_H
#define LODEFS_LODE_H

#include "backends/backend.h"
#include "backends/backend_source.h"
#include "core/store.h"

enum lode_exit {
	LODE_OK = 0,
	LODE_FAIL = 1,	/* the operation failed, or fsck found damage */
	LODE_USAGE = 2, /* bad command line */
};

/* What every subcommand opens: the backend, the store and the lock. */
struct lode_ctx {
	const char *path;
	struct backend *be;
	struct backend_source src;
	struct store *store;
	int lock_fd;
};

/* "lode COMMAND", for messages. */
extern const char *lode_prog;

/* A message on stderr, after "lode COMMAND: ". */
void lode_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The reason for a failed store call: the store's words, else errno's. */
const char *lode_why(int rc);
/*
 * Opens the backend of STORE (a directory, s3://... or r2://...); a local
 * one is made only when `create` is set.
 */
int lode_open_backend(struct lode_ctx *c, const char *path, int create);
void lode_close_backend(struct lode_ctx *c);
/*
 * Opens STORE.  Writers of a local store take an exclusive lock so that
 * two writing processes never share it by accident (mounts of an S3 or R2
 * prefix share it on purpose: each is a writer of its own); readers open
 * it read-only and take no lock.
 */
int lode_open(struct lode_ctx *c, const char *path, int write,
	      const struct store_opts *opts);
void lode_close(struct lode_ctx *c);
/* A decimal at most max; 0 or -EINVAL. */
int lode_parse_uint(const char *s, unsigned long max, unsigned long *out);

/*
 * Options of a command that takes -q/--quiet, -h/--help and two operands
 * (argv[optind], argv[optind + 1] afterwards): -1 to go on, else the exit
 * code (help printed).
 */
int lode_args_quiet(int argc, char **argv, const char *help, int *quiet);

/*
 * A progress line on stderr, drawn only when stderr is a terminal: file
 * name, percent, MB and MB/s, redrawn in place at most ten times a second
 * and ended with a newline when the file is done (tools/lode_persist.c).
 */
struct lode_bar {
	int on;
	const char *name;
	uint64_t size;	/* import: the file's bytes (MB = frac * size) */
	uint64_t bytes; /* export: bytes written so far */
	double frac;	/* 0..1, from the core's progress calls */
	double start, last;
	int drawn;
};

/* Seconds on the monotonic clock. */
double lode_now(void);
void lode_bar_start(struct lode_bar *b, int on, const char *name,
		    uint64_t size);
/* Redraws (at most ten times a second unless final, which ends the line). */
void lode_bar_draw(struct lode_bar *b, int final);
/* A progress callback (persist_progress_fn, store_progress_fn): arg a bar. */
void lode_bar_progress(void *arg, uint64_t done, uint64_t total);

/* The subcommands in tools/lode_persist.c. */
int lode_cmd_import(int argc, char **argv);
int lode_cmd_export(int argc, char **argv);

/* The subcommands in tools/lode_vectors.c. */
int lode_cmd_import_vectors(int argc, char **argv);
int lode_cmd_search(int argc, char **argv);

#endif /* LODEFS_LODE_H */
