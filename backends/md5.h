/* md5.h - MD5 (RFC 1321), for the Content-MD5 header S3 wants on some requests. */
#ifndef LODEFS_MD5_H
#define LODEFS_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_LEN	       16
#define MD5_BASE64_LEN 24

struct md5 {
	uint32_t h[4];
	uint64_t bytes;
	unsigned char buf[64];
	size_t fill;
};

void md5_init(struct md5 *c);
void md5_update(struct md5 *c, const void *data, size_t len);
/* Writes the 16-byte digest to `out`; `c` must be initialised again. */
void md5_final(struct md5 *c, unsigned char out[MD5_LEN]);

/* One-shot digest of `len` bytes in base64 (24 characters and a NUL). */
void md5_base64(const void *data, size_t len, char out[MD5_BASE64_LEN + 1]);

#endif
