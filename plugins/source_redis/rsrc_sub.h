/*
 * The subscribe mode's reader: a thread that holds its own Redis connection SUBSCRIBEd to the
 * redis sink's <prefix>:events:<kind> channels and keeps the latest value of each key in a
 * bounded rsrc_pending buffer for the pipeline thread to take on each tick. Also owns the
 * table of kinds the sink keys (docs/redis.md), which names a value's key.
 */
#ifndef RSRC_SUB_H
#define RSRC_SUB_H

#include <stdbool.h>
#include <stddef.h>

#include <tickflow/tickflow.h>

#include "rsrc_pending.h"

#define RSRC_KEY_FIELDS_MAX 3

/* A record kind the redis sink keys: <prefix>:<segment>:<fields...>[:<suffix>]. */
typedef struct rsrc_kind {
    const char *kind;
    const char *segment;
    const char *fields[RSRC_KEY_FIELDS_MAX + 1]; /* NULL-terminated */
    const char *suffix;                          /* NULL: none */
    const char *pattern;                         /* SCAN MATCH below the prefix for a resync */
} rsrc_kind;

/* For messages: the kinds the table knows, comma-separated. */
#define RSRC_KIND_NAMES "ticker, premium, fx, position_live"

/* NULL when the redis sink has no key schema for `kind`. */
const rsrc_kind *rsrc_kind_find(const char *kind);
/* The key a value of kind `k` lives under (malloc'd), or NULL with the reason in err (a key
 * field missing or not a string/integer; also NULL when out of memory). */
char *rsrc_kind_key(const rsrc_kind *k, const char *prefix, const json_t *value, char *err,
                    size_t err_size);

typedef struct rsrc_sub rsrc_sub;

typedef struct rsrc_sub_config {
    const tf_host *host;
    tf_instance *self;
    const char *prefix;            /* copied */
    const rsrc_kind *const *kinds; /* the kinds to follow; the table entries are static */
    size_t n_kinds;
    size_t max_pending;      /* most keys held between two takes */
    tf_metric *m_messages;   /* counter {kind}: messages received */
    tf_metric *m_dropped;    /* counter: keys dropped because max_pending was reached */
    tf_metric *m_subscribed; /* gauge: 1 while subscribed */
} rsrc_sub_config;

/* Opens the connection and starts the thread, which subscribes (and resubscribes after every
 * reconnect) by itself. NULL when out of memory or the thread cannot start (logged). */
rsrc_sub *rsrc_sub_start(const rsrc_sub_config *cfg);
/* Stops the thread (within its read timeout), joins it and frees everything. */
void rsrc_sub_stop(rsrc_sub *u);
/* Hands the values received since the last call to the caller: `into` must be empty and
 * receives them (its own storage goes back to the reader). Returns true when a subscription
 * was established since the last call: what was published before it was missed, so the caller
 * reads the keys again. */
bool rsrc_sub_take(rsrc_sub *u, rsrc_pending *into);

#endif
