/* backend_int.h - file helpers shared by the backends that keep files. */
#ifndef LODEFS_BACKEND_INT_H
#define LODEFS_BACKEND_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * For backends only (local, cache), not for the rest of the program.
 * Each returns 0 or a negative errno and retries on EINTR.
 */

/*
 * Reads up to `len` bytes at `off` into `buf`; *got is how many, fewer
 * only at the end of the file.
 */
int backend_pread_all(int fd, void *buf, size_t len, uint64_t off, size_t *got);

/* Writes all `len` bytes at the file offset (-EIO if write returns 0). */
int backend_write_all(int fd, const void *data, size_t len);

/*
 * mkdir -p: creates `dir` and missing parents; with `sync`, fsyncs the
 * parent of each directory it creates.
 */
int backend_mkdirs(const char *dir, bool sync);

#endif
