/*
 * Per-client-IP request rate limit of the http_api sink: a token bucket per address in a
 * bounded hash table; the least recently seen address is evicted when it is full.
 */
#ifndef API_RATELIMIT_H
#define API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_RATELIMIT_KEY_MAX 16 /* an IPv6 address */

typedef struct api_ratelimit api_ratelimit;

/* `rate` tokens a second up to `burst`, for at most `max_clients` addresses at a time. */
api_ratelimit *api_ratelimit_create(double rate, double burst, size_t max_clients);
/* Takes one token for the client `key` (at most API_RATELIMIT_KEY_MAX bytes) at monotonic
 * `now_ms`. False when the bucket is empty; *retry_after_s is then the whole seconds until a
 * token (at least 1). Thread-safe. */
bool api_ratelimit_take(api_ratelimit *rl, const void *key, size_t keylen, int64_t now_ms,
                        unsigned *retry_after_s);
void api_ratelimit_destroy(api_ratelimit *rl);

#endif
