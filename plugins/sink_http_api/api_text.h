/*
 * Text helpers of the http_api sink: a growable byte buffer, the FNV-1a hash behind ETags,
 * JSON serialisation with the fewest digits that round-trip, and the checks applied to path
 * and query values before they reach a lookup or a Redis key.
 */
#ifndef API_TEXT_H
#define API_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <tickflow/tickflow.h>

/* A growable buffer; after any failed append `oom` stays set and appends do nothing. */
typedef struct api_buf {
    char *p; /* owned; NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    bool oom;
} api_buf;

void api_buf_free(api_buf *b);
bool api_buf_reserve(api_buf *b, size_t more);
bool api_buf_add(api_buf *b, const void *data, size_t len);
bool api_buf_puts(api_buf *b, const char *s);
bool api_buf_printf(api_buf *b, const char *fmt, ...) TF_PRINTF(2, 3);
/* Hands the bytes to the caller (who frees them) and empties `b`; NULL after a failure. */
char *api_buf_take(api_buf *b, size_t *len);

#define API_HASH_SEED 0xcbf29ce484222325ull
/* FNV-1a 64, continued from `h` (start with API_HASH_SEED). */
uint64_t api_hash(uint64_t h, const void *data, size_t len);

/* Compact JSON of `v` with reals written with the fewest digits (15..17) that give each one
 * back exactly: 95012.35 stays "95012.35". malloc'd, or NULL when out of memory. */
char *api_json_dump(const json_t *v, size_t *len);

/* Path and query values. Symbols: 1-32 of [A-Za-z0-9_.-], compared upper case. Exchanges and
 * pairs: 1-32 of [A-Za-z0-9_.-], compared lower case (exchanges) or as given. Position ids:
 * 1-64 of [A-Za-z0-9_.-]. Each writes the normalised value into out (size >= 65). */
bool api_valid_symbol(const char *s, char *out, size_t size);
bool api_valid_exchange(const char *s, char *out, size_t size);
bool api_valid_id(const char *s, char *out, size_t size);

/* A decimal integer of 1-16 digits, no sign or spaces (epoch ms, limits). */
bool api_parse_uint(const char *s, int64_t *out);

/* A Redis stream id "<ms>-<seq>" (both parts decimal). */
bool api_parse_stream_id(const char *s, uint64_t *ms, uint64_t *seq);
/* <0, 0, >0 like strcmp, for two valid stream ids. */
int api_stream_id_cmp(const char *a, const char *b);

/* Whether an If-None-Match header value lists `etag` (weak comparison, RFC 9110 13.1.2). */
bool api_etag_matches(const char *if_none_match, const char *etag);

#endif
