/* embed_remote.h - texts to vectors through an OpenAI-compatible server. */
#ifndef LODEFS_EMBED_REMOTE_H
#define LODEFS_EMBED_REMOTE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A client of POST /v1/embeddings as OpenAI defines it: the request is
 * {"model": M, "input": [texts]}, the answer {"data": [{"index": i,
 * "embedding": [floats]}, ...]} in any order.  The URL given is used as is
 * when it ends in "/embeddings", gets "/embeddings" appended when it ends
 * in "/v1", and "/v1/embeddings" otherwise.  The API key comes from
 * LODEFS_EMBED_API_KEY, else OPENAI_API_KEY (sent as "Authorization:
 * Bearer KEY"; none: no header).  Thread safe: each call has its own
 * connection.
 */

#define EMBED_REMOTE_TIMEOUT_MS_DEFAULT 30000
#define EMBED_REMOTE_RETRIES_DEFAULT	4
#define EMBED_REMOTE_BACKOFF_MS_DEFAULT 250
#define EMBED_REMOTE_MAX_INPUTS_DEFAULT 128
#define EMBED_REMOTE_MAX_BYTES_DEFAULT	(1u << 20)

struct embed_remote_opts {
	const char *url;   /* base URL, see above; required */
	const char *model; /* "model" of the request; NULL: "" */
	uint32_t dim;	   /* every vector must have it; required */
	/* One request, connection included; 0: the default. */
	unsigned timeout_ms;
	/*
	 * Attempts after the first on a connection error, a timeout, HTTP
	 * 429 or 5xx, each after a pause that doubles from backoff_ms (or
	 * the server's Retry-After in seconds, up to 30 s).  -1: default.
	 */
	int retries;
	unsigned backoff_ms; /* 0: the default */
	/*
	 * Bounds of one request: inputs and bytes of text; a longer list
	 * is sent as several requests.  0: the defaults.
	 */
	size_t max_inputs, max_bytes;
};

struct embed_remote;

/*
 * A client for o (the strings are copied).  -EINVAL for a missing url or
 * dim (reason in err), -ENOMEM.
 */
int embed_remote_new(const struct embed_remote_opts *o,
		     struct embed_remote **out, char *err, size_t errlen);
void embed_remote_free(struct embed_remote *e); /* accepts NULL */

/* The full URL requests go to (borrowed). */
const char *embed_remote_url(const struct embed_remote *e);
uint32_t embed_remote_dim(const struct embed_remote *e);

/*
 * Embeds n texts (texts[i] of lens[i] bytes; invalid UTF-8 is sent with
 * U+FFFD in place of each bad byte) into out[n * dim], in order, in as few
 * requests as the bounds allow.  Returns 0, or -EIO with the reason in
 * err: the server could not be reached or kept failing after the
 * retries, answered with another error status, or gave an answer that is
 * not n vectors of dim numbers.  Nothing is written to out on failure
 * that the caller may use.
 */
int embed_remote_run(struct embed_remote *e, const char *const *texts,
		     const size_t *lens, size_t n, float *out, char *err,
		     size_t errlen);

/* Requests sent so far (attempts included), for tests and statistics. */
uint64_t embed_remote_requests(const struct embed_remote *e);

#endif
