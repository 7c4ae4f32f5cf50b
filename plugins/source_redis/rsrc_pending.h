/*
 * The subscribe mode's coalescing buffer: the latest JSON value per Redis key (the key a value
 * lives under is its identity), oldest first, optionally bounded by dropping the oldest. A value
 * that names its history entry ("history_id", premiums) is identified by key and entry instead:
 * every history entry is delivered once, in publication order, even when several arrive between
 * two ticks. Not thread-safe: the owner locks around it.
 */
#ifndef RSRC_PENDING_H
#define RSRC_PENDING_H

#include <stddef.h>

#include <jansson.h>

typedef struct rsrc_entry {
    char *key;                      /* owned: the identity: the Redis key[#history_id] */
    json_t *value;                  /* owned reference */
    struct rsrc_entry *chain;       /* next in the same hash bucket */
    struct rsrc_entry *prev, *next; /* age order: head is the least recently updated */
} rsrc_entry;

typedef struct rsrc_pending {
    rsrc_entry **buckets; /* owned; n_buckets is a power of two */
    size_t n_buckets;
    rsrc_entry *head, *tail;
    size_t count;
} rsrc_pending;

/* Sizes the hash for about `expected` keys. 0, or -1 when out of memory. */
int rsrc_pending_init(rsrc_pending *p, size_t expected);
void rsrc_pending_free(rsrc_pending *p);
/* Drops every entry; the table stays allocated. */
void rsrc_pending_clear(rsrc_pending *p);
/* Makes `value` the latest for its identity (`key`, or key#history_id) and, unless it is a
 * history entry seen before, its entry the newest; takes the reference to
 * `value` (released here on failure). A new key when `max` entries are held (max 0: no bound)
 * first drops the oldest entry. Returns the number of entries dropped (0 or 1), or -1 when out
 * of memory. */
int rsrc_pending_put(rsrc_pending *p, const char *key, json_t *value, size_t max);
/* The entry for an identity (`key`, or "key#history_id"), or NULL. */
rsrc_entry *rsrc_pending_get(const rsrc_pending *p, const char *key);
/* Exchanges the contents of two buffers (O(1)). */
void rsrc_pending_swap(rsrc_pending *a, rsrc_pending *b);

#endif
