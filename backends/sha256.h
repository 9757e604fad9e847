/* sha256.h - SHA-256 (FIPS 180-4), for S3 payload hashes. */
#ifndef LODEFS_SHA256_H
#define LODEFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN     32
#define SHA256_HEX_LEN 64

struct sha256 {
	uint32_t h[8];
	uint64_t bytes; /* message length so far */
	unsigned char buf[64];
	size_t fill; /* bytes in buf */
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
/* Writes the 32-byte digest to `out`; `c` must be initialised again. */
void sha256_final(struct sha256 *c, unsigned char out[SHA256_LEN]);

/* One-shot digest of `len` bytes as 64 lower-case hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
