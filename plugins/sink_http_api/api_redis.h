/*
 * Redis access of the http_api sink: a small pool of tf_redis connections (one per request
 * thread at a time; a tf_redis is never shared), the reachability probe behind /readyz (a PING
 * at most once per second), and reading premium history streams (XRANGE / XREVRANGE on several
 * streams in one pipelined round trip, merged by stream id).
 */
#ifndef API_REDIS_H
#define API_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tickflow/tickflow.h>

typedef struct api_redis api_redis;

/* `host` and `self` are borrowed. Connections are opened on demand, at most `max_conns`.
 * NULL only when out of memory. */
api_redis *api_redis_create(const tf_host *host, tf_instance *self, size_t max_conns);
void api_redis_destroy(api_redis *p);
/* False when the runtime has no redis: section (history and positions are then 503). */
bool api_redis_configured(const api_redis *p);

/* A connection for this thread's exclusive use until api_redis_give (NULL: not configured or
 * no connection free within a second). `ok` tells whether the last command worked. */
tf_redis *api_redis_take(api_redis *p);
void api_redis_give(api_redis *p, tf_redis *r, bool ok);

/* Redis answered recently: the last command's outcome, refreshed by a PING when it is older than
 * a second. True when Redis is not configured (nothing to reach). */
bool api_redis_reachable(api_redis *p);

/* One stream entry. */
typedef struct api_entry {
    char id[48]; /* stream id */
    json_t *obj; /* owned: the entry's `json` field, parsed */
} api_entry;

void api_entries_free(api_entry *e, size_t n);

/* Entries of `keys` between start and end (XRANGE syntax: "-", "+", "<ms>", "(<id>"), merged
 * in ascending id order. reverse: the newest `count` (XREVRANGE), else the oldest `count`.
 * Entries whose `json` field is missing or not JSON are skipped. TF_OK, TF_EREDIS or
 * TF_ENOMEM; *out is malloc'd (api_entries_free). */
int api_redis_ranges(api_redis *p, const char *const *keys, size_t n_keys, const char *start,
                     const char *end, bool reverse, size_t count, api_entry **out, size_t *n_out);

/* What api_redis_replay found besides the entries. */
typedef struct api_replay {
    size_t streams;    /* history streams found */
    bool trimmed;      /* a stream was trimmed past `after`: entries after it may be lost */
    bool truncated;    /* more than `max` entries follow `after`: the oldest were left out */
    char first_id[48]; /* the oldest entry kept, when one is */
} api_replay;

/* Every entry after `after` (a stream id) in the premium history streams under `prefix`
 * (found with SCAN, so streams of pairs this replica has not seen yet count too), merged in
 * ascending id order; at most the newest `max` of them. One connection, one SCAN walk and one
 * pipelined round trip (XREVRANGE + XINFO STREAM per stream). TF_OK, TF_EREDIS or TF_ENOMEM;
 * *out is malloc'd (api_entries_free). */
int api_redis_replay(api_redis *p, const char *prefix, const char *after, size_t max,
                     api_entry **out, size_t *n_out, api_replay *info);

#endif
