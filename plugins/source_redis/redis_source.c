/*
 * `redis` source: reads back what the redis sink cached (docs/redis.md) and emits each value
 * as a record of its own "kind". Owns the key list (one MGET per tick), the pattern scan
 * (SCAN MATCH, then MGET in chunks), the decoding of the sink's JSON into record fields, and
 * the subscribe mode's tick: the events rsrc_sub gathered, plus a resync from the keys when due.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <tickflow/tickflow.h>

#include "rsrc_pending.h"
#include "rsrc_sub.h"

#define RSRC_SCAN_COUNT "1000" /* keys Redis examines per SCAN call: bounds each call's cost */
#define RSRC_MGET_CHUNK 500    /* keys per MGET in pattern mode: bounds each reply's size */
#define RSRC_MSG_MAX    1024
#define RSRC_KINDS_MAX  8 /* subscribe: entries in the kind table, with room to grow */

typedef struct redis_source redis_source;

/* How a tick obtains values: poll_read (keys, patterns) or subscribe_read (events). */
typedef int (*read_fn)(redis_source *s, tf_batch *out);

/* What to do with one value read from Redis (emit it, or keep it for later); `ctx` is the
 * caller's. Returns TF_ENOMEM only. */
typedef int (*value_fn)(redis_source *s, const char *key, const char *text, size_t len, void *ctx);

/* A growable list of owned strings. */
typedef struct str_list {
    char **items;
    size_t n, cap;
} str_list;

struct redis_source {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    tf_redis *redis;     /* owned */
    read_fn read;
    str_list keys;      /* full key names (prefix + option keys) */
    str_list patterns;  /* full MATCH patterns, the prefix's glob characters escaped */
    const char *kind;   /* borrowed from the options; NULL: every kind */
    str_list found;     /* scratch: the keys a tick's scan found */
    const char *prefix; /* borrowed from the options or the host */

    /* subscribe mode (sub != NULL); `patterns` then holds the subscribed kinds' keys */
    rsrc_sub *sub;                              /* owned */
    const rsrc_kind *sub_kinds[RSRC_KINDS_MAX]; /* static table entries */
    size_t n_sub_kinds;
    size_t max_pending;
    rsrc_pending taken;   /* scratch: one tick's values, events and resync merged */
    int64_t resync_ms;    /* 0: only at start and after a reconnect */
    int64_t next_resync;  /* monotonic ms */
    bool resync_due;      /* set at start, after a resubscription, and while a resync fails */
    tf_metric *m_resyncs; /* counter */
};

static const tf_option_def options[] = {
    {"prefix", TF_OPT_STRING, NULL, 0,
     "Key prefix the sink wrote under (default: the runtime's redis.prefix)", 0, NULL},
    {"keys", TF_OPT_LIST, "[]", 0,
     "Keys below the prefix to read every tick with one MGET, e.g. [fx:USDKRW]; a missing key "
     "is reported (not_found)",
     TF_OPT_STRING, NULL},
    {"patterns", TF_OPT_LIST, "[]", 0,
     "Glob patterns below the prefix, e.g. ['premium:*']: every matching key is read (SCAN, "
     "then MGET); keys that vanish meanwhile are skipped",
     TF_OPT_STRING, NULL},
    {"kind", TF_OPT_STRING, NULL, 0, "Only emit records of this kind", 0, NULL},
    {"subscribe", TF_OPT_LIST, "[]", 0,
     "Subscribe mode (the API role), instead of keys/patterns/kind: record kinds to follow "
     "through the redis sink's events <prefix>:events:<kind>, any of " RSRC_KIND_NAMES
     "; each tick emits the latest value of every key updated since the previous one",
     TF_OPT_STRING, NULL},
    {"resync", TF_OPT_DURATION, "5s", 0,
     "Subscribe mode: how often every key of the subscribed kinds is read again (SCAN, then "
     "MGET), besides at start and after every reconnect; 0 = only then",
     0, NULL},
    {"max_pending", TF_OPT_INT, "100000", 0,
     "Subscribe mode: most distinct keys held between two ticks; beyond it the least recently "
     "updated is dropped (tickflow_redis_source_dropped_total)",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- string lists ---- */

/* Takes ownership of `item` (freed here on failure). */
static bool list_push(str_list *l, char *item)
{
    if (!item)
        return false;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **q = realloc(l->items, cap * sizeof *q);
        if (!q) {
            free(item);
            return false;
        }
        l->items = q;
        l->cap = cap;
    }
    l->items[l->n++] = item;
    return true;
}

static void list_clear(str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    l->n = 0;
}

static void list_free(str_list *l)
{
    list_clear(l);
    free(l->items);
    l->items = NULL;
    l->cap = 0;
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* SCAN may return a key twice (the keyspace was rehashed between calls): sort and drop
 * repeats, which also makes the records' order stable from tick to tick. */
static void list_sort_unique(str_list *l)
{
    if (l->n < 2)
        return;
    qsort(l->items, l->n, sizeof *l->items, compare_str);
    size_t out = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->items[i], l->items[out - 1]) == 0)
            free(l->items[i]);
        else
            l->items[out++] = l->items[i];
    }
    l->n = out;
}

static char *join_prefix(const char *prefix, const char *suffix, bool escape_prefix)
{
    size_t plen = strlen(prefix), slen = strlen(suffix);
    char *s = malloc(2 * plen + slen + 2);
    if (!s)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < plen; i++) {
        /* In a MATCH pattern the prefix is literal text, not a glob. */
        if (escape_prefix && strchr("*?[]\\", prefix[i]))
            s[n++] = '\\';
        s[n++] = prefix[i];
    }
    s[n++] = ':';
    memcpy(s + n, suffix, slen + 1);
    return s;
}

/* ---- decoding ---- */

static bool skipped_field(const char *name)
{
    return strcmp(name, "v") == 0 || strcmp(name, "kind") == 0;
}

/* Copies one JSON scalar into the record; nested values and null are not fields. */
static int set_field(const tf_host *h, tf_record *r, const char *name, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return h->record_set_string(r, name, json_string_value(v));
    case JSON_INTEGER:
        return h->record_set_int(r, name, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return h->record_set_double(r, name, json_real_value(v));
    case JSON_TRUE:
    case JSON_FALSE:
        return h->record_set_bool(r, name, json_is_true(v));
    default:
        return TF_OK;
    }
}

/* A cached value as JSON, or NULL after reporting (TF_EPARSE) that it is not the sink's. */
static json_t *parse_value(redis_source *s, const char *key, const char *text, size_t len)
{
    const tf_host *h = s->host;
    char err[256];
    json_t *root = h->json_parse(text, len, err, sizeof err);
    if (!root) {
        h->report_error(s->self, TF_EPARSE,
                        "Redis key %s: expected the redis sink's JSON, found invalid JSON (%s); "
                        "key skipped",
                        key, err);
        return NULL;
    }
    const json_t *kind = json_object_get(root, "kind");
    if (!json_is_string(kind) || json_string_length(kind) == 0) {
        h->report_error(s->self, TF_EPARSE,
                        "Redis key %s: expected a JSON object with a non-empty string \"kind\", "
                        "found %s; key skipped",
                        key,
                        !json_is_object(root) ? "another JSON type"
                        : kind                ? "a \"kind\" that is not a non-empty string"
                                              : "no \"kind\"");
        json_decref(root);
        return NULL;
    }
    return root;
}

/* One record of the value's kind from a value parse_value accepted. TF_OK or TF_ENOMEM. */
static int emit_json(redis_source *s, const json_t *root, tf_batch *out)
{
    const tf_host *h = s->host;
    tf_record *r = h->record_new(out, json_string_value(json_object_get(root, "kind")));
    if (!r)
        return TF_ENOMEM;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)root, name, v)
    {
        if (!skipped_field(name) && set_field(h, r, name, v) != TF_OK) {
            h->batch_remove(out, h->batch_count(out) - 1);
            return TF_ENOMEM;
        }
    }
    return TF_OK;
}

/* value_fn: one cached value -> one record in the batch `ctx` (unless filtered out by
 * `kind`). A value that is not the sink's JSON is reported and skipped. */
static int emit_value(redis_source *s, const char *key, const char *text, size_t len, void *ctx)
{
    json_t *root = parse_value(s, key, text, len);
    if (!root)
        return TF_OK;
    int rc = TF_OK;
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (!s->kind || strcmp(s->kind, kind) == 0)
        rc = emit_json(s, root, ctx);
    json_decref(root);
    return rc;
}

/* value_fn: keeps the value as the latest of its key in the rsrc_pending `ctx`. */
static int keep_value(redis_source *s, const char *key, const char *text, size_t len, void *ctx)
{
    json_t *root = parse_value(s, key, text, len);
    if (!root)
        return TF_OK;
    return rsrc_pending_put(ctx, key, root, 0) < 0 ? TF_ENOMEM : TF_OK;
}

/* ---- Redis calls ---- */

/* A reply that is not what was asked for is a Redis failure for this tick. Frees `reply`
 * and reports when it is not of `type`; returns whether it is. */
static bool reply_ok(redis_source *s, redisReply *reply, int type, const char *what)
{
    const tf_host *h = s->host;
    if (!reply) {
        h->report_error(s->self, TF_EREDIS,
                        "%s failed: Redis is unreachable (the connection is retried with "
                        "backoff)",
                        what);
        return false;
    }
    if (reply->type == type)
        return true;
    h->report_error(s->self, TF_EREDIS, "%s failed: %s", what,
                    reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str
                                                                   : "unexpected reply type");
    h->redis_reply_free(reply);
    return false;
}

/* MGET of keys[0..n): hands every value to fn(ctx); nil values' keys are appended to
 * `missing` (may be NULL: nil is then silently skipped). TF_OK, TF_EREDIS or TF_ENOMEM. */
static int mget(redis_source *s, char *const *keys, size_t n, str_list *missing, value_fn fn,
                void *ctx)
{
    const tf_host *h = s->host;
    const char **argv = malloc((n + 1) * sizeof *argv);
    if (!argv)
        return TF_ENOMEM;
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = keys[i];
    redisReply *reply = h->redis_command(s->redis, (int)(n + 1), argv, NULL);
    free(argv);
    if (!reply_ok(s, reply, REDIS_REPLY_ARRAY, "MGET"))
        return TF_EREDIS;
    int rc = TF_OK;
    for (size_t i = 0; i < reply->elements && i < n && rc == TF_OK; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING)
            rc = fn(s, keys[i], e->str, e->len, ctx);
        else if (missing && !list_push(missing, strdup(keys[i])))
            rc = TF_ENOMEM;
    }
    h->redis_reply_free(reply);
    return rc;
}

/* One SCAN call: appends the keys of the page to s->found and sets *cursor (0: done). */
static int scan_page(redis_source *s, const char *pattern, char *cursor, size_t cursor_size)
{
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", RSRC_SCAN_COUNT};
    redisReply *reply = s->host->redis_command(s->redis, 6, argv, NULL);
    if (!reply_ok(s, reply, REDIS_REPLY_ARRAY, "SCAN"))
        return TF_EREDIS;
    int rc = TF_OK;
    if (reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        s->host->report_error(s->self, TF_EREDIS,
                              "SCAN failed: expected [cursor, keys], found another reply shape");
        rc = TF_EREDIS;
        goto out;
    }
    snprintf(cursor, cursor_size, "%s", reply->element[0]->str);
    const redisReply *page = reply->element[1];
    for (size_t i = 0; i < page->elements && rc == TF_OK; i++) {
        const redisReply *k = page->element[i];
        if (k->type == REDIS_REPLY_STRING && !list_push(&s->found, strdup(k->str)))
            rc = TF_ENOMEM;
    }
out:
    s->host->redis_reply_free(reply);
    return rc;
}

static int read_patterns(redis_source *s, value_fn fn, void *ctx)
{
    list_clear(&s->found);
    for (size_t p = 0; p < s->patterns.n; p++) {
        char cursor[32] = "0";
        do {
            int rc = scan_page(s, s->patterns.items[p], cursor, sizeof cursor);
            if (rc != TF_OK)
                return rc;
        } while (strcmp(cursor, "0") != 0);
    }
    list_sort_unique(&s->found);
    for (size_t i = 0; i < s->found.n; i += RSRC_MGET_CHUNK) {
        size_t n = s->found.n - i < RSRC_MGET_CHUNK ? s->found.n - i : RSRC_MGET_CHUNK;
        int rc = mget(s, s->found.items + i, n, NULL, fn, ctx);
        if (rc != TF_OK)
            return rc;
    }
    return TF_OK;
}

/* One message for all of a tick's missing keys: while the same keys stay missing the message
 * repeats word for word, so the host logs it once (and counts every tick). */
static void report_missing(redis_source *s, const str_list *missing)
{
    char msg[RSRC_MSG_MAX];
    size_t used = 0;
    for (size_t i = 0; i < missing->n && used < sizeof msg; i++) {
        int n = snprintf(msg + used, sizeof msg - used, "%s%s", i ? ", " : "", missing->items[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    s->host->report_error(s->self, TF_ENOTFOUND,
                          "Redis key%s not found (expected a string value written by the redis "
                          "sink; has its pipeline run yet?): %s",
                          missing->n == 1 ? "" : "s", msg);
}

static int read_keys(redis_source *s, tf_batch *out)
{
    str_list missing = {0};
    int rc = mget(s, s->keys.items, s->keys.n, &missing, emit_value, out);
    if (rc == TF_OK && missing.n > 0)
        report_missing(s, &missing);
    list_free(&missing);
    return rc;
}

static int poll_read(redis_source *s, tf_batch *out)
{
    const tf_host *h = s->host;
    size_t before = h->batch_count(out);
    int rc = TF_OK;
    if (s->keys.n > 0)
        rc = read_keys(s, out);
    if (rc == TF_OK && s->patterns.n > 0)
        rc = read_patterns(s, emit_value, out);
    /* A tick Redis failed half-way emits nothing rather than an arbitrary part of the cache. */
    if (rc != TF_OK) {
        while (h->batch_count(out) > before)
            h->batch_remove(out, h->batch_count(out) - 1);
    }
    return rc;
}

/* ---- subscribe mode ---- */

/* Reads every key of the subscribed kinds into s->taken, where each value replaces an event
 * of the same key: the key was read after that event was received, so it is at least as new.
 * A failed resync stays due and is tried again on the next tick. */
static int resync(redis_source *s)
{
    int rc = read_patterns(s, keep_value, &s->taken);
    if (rc != TF_OK)
        return rc;
    s->resync_due = false;
    s->next_resync = s->host->monotonic_ms() + s->resync_ms;
    s->host->metric_add(s->m_resyncs, s->self, NULL, 1.0);
    return TF_OK;
}

/* The events received since the previous tick (the latest per key), merged with a resync when
 * one is due. When Redis fails during the resync, the events are still emitted and the tick
 * returns TF_EREDIS. */
static int subscribe_read(redis_source *s, tf_batch *out)
{
    if (rsrc_sub_take(s->sub, &s->taken))
        s->resync_due = true;
    if (s->resync_ms > 0 && s->host->monotonic_ms() >= s->next_resync)
        s->resync_due = true;
    int rc = s->resync_due ? resync(s) : TF_OK;
    for (const rsrc_entry *e = s->taken.head; e; e = e->next) {
        if (emit_json(s, e->value, out) != TF_OK) {
            rc = TF_ENOMEM;
            break;
        }
    }
    rsrc_pending_clear(&s->taken);
    return rc;
}

/* ---- life cycle ---- */

static void source_destroy(void *instance)
{
    redis_source *s = instance;
    if (!s)
        return;
    rsrc_sub_stop(s->sub);
    if (s->redis)
        s->host->redis_close(s->redis);
    rsrc_pending_free(&s->taken);
    list_free(&s->keys);
    list_free(&s->patterns);
    list_free(&s->found);
    free(s);
}

static bool has_space(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (isspace(*p) || iscntrl(*p))
            return true;
    }
    return false;
}

/* Reads a list option of key suffixes or patterns into full names below the prefix. */
static int read_list(redis_source *s, const tf_options *opts, const char *name, const char *prefix,
                     bool pattern, str_list *l)
{
    const json_t *items = s->host->opt_json(opts, name);
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item)
    {
        const char *text = json_string_value(item);
        if (!text || !text[0] || has_space(text)) {
            s->host->log(s->self, TF_LOG_ERROR,
                         "option %s[%zu]: expected a non-empty key %s below the prefix without "
                         "whitespace (e.g. %s), found '%s'",
                         name, i, pattern ? "pattern" : "name",
                         pattern ? "'premium:*'" : "fx:USDKRW", text ? text : "");
            return TF_EINVAL;
        }
        if (!list_push(l, join_prefix(prefix, text, pattern)))
            return TF_ENOMEM;
    }
    return TF_OK;
}

/* Subscribe mode: the kinds to follow, and the resync patterns of their keys. */
static int read_subscribe(redis_source *s, const tf_options *opts, const char *prefix)
{
    const tf_host *h = s->host;
    size_t i;
    const json_t *item;
    json_array_foreach(h->opt_json(opts, "subscribe"), i, item)
    {
        const char *name = json_string_value(item);
        const rsrc_kind *k = name ? rsrc_kind_find(name) : NULL;
        if (!k) {
            h->log(s->self, TF_LOG_ERROR,
                   "option subscribe[%zu]: expected a kind the redis sink keys (one of "
                   "%s), found '%s'",
                   i, RSRC_KIND_NAMES, name ? name : "");
            return TF_EINVAL;
        }
        for (size_t j = 0; j < s->n_sub_kinds; j++) {
            if (s->sub_kinds[j] == k) {
                h->log(s->self, TF_LOG_ERROR,
                       "option subscribe[%zu]: expected each kind once, found '%s' again", i, name);
                return TF_EINVAL;
            }
        }
        if (s->n_sub_kinds == RSRC_KINDS_MAX)
            return TF_EINVAL; /* unreachable: the table holds fewer kinds, each listed once */
        s->sub_kinds[s->n_sub_kinds++] = k;
        if (!list_push(&s->patterns, join_prefix(prefix, k->pattern, true)))
            return TF_ENOMEM;
    }
    s->resync_ms = h->opt_duration_ms(opts, "resync");
    int64_t max = h->opt_int(opts, "max_pending");
    if (max < 1) {
        h->log(s->self, TF_LOG_ERROR,
               "option max_pending: expected a number of keys of at least 1, found %" PRId64, max);
        return TF_EINVAL;
    }
    s->max_pending = (size_t)max;
    return TF_OK;
}

/* The two ways of reading exclude each other: say which options clash. */
static int check_mode(redis_source *s, const tf_options *opts)
{
    const tf_host *h = s->host;
    bool subscribe = json_array_size(h->opt_json(opts, "subscribe")) > 0;
    bool polled = json_array_size(h->opt_json(opts, "keys")) > 0 ||
                  json_array_size(h->opt_json(opts, "patterns")) > 0 || h->opt_string(opts, "kind");
    if (subscribe && polled) {
        h->log(s->self, TF_LOG_ERROR,
               "option subscribe: expected either subscribe (which reads the keys of its kinds "
               "by itself) or keys/patterns/kind, found both; drop keys, patterns and kind, or "
               "subscribe");
        return TF_EINVAL;
    }
    static const char *const subscribe_only[] = {"resync", "max_pending"};
    for (size_t i = 0; !subscribe && i < 2; i++) {
        if (h->opt_is_set(opts, subscribe_only[i])) {
            h->log(s->self, TF_LOG_ERROR,
                   "option %s: expected only with subscribe: [kinds...] (the subscribe mode), "
                   "found it with keys/patterns",
                   subscribe_only[i]);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int read_options(redis_source *s, const tf_options *opts)
{
    const tf_host *h = s->host;
    const char *prefix = h->opt_string(opts, "prefix");
    if (!prefix)
        prefix = h->redis_prefix(s->self);
    if (!prefix || !prefix[0] || has_space(prefix)) {
        h->log(s->self, TF_LOG_ERROR,
               "option prefix: expected a non-empty key prefix without whitespace, found '%s'",
               prefix ? prefix : "");
        return TF_EINVAL;
    }
    s->prefix = prefix;
    int rc = check_mode(s, opts);
    if (rc != TF_OK)
        return rc;
    if (json_array_size(h->opt_json(opts, "subscribe")) > 0)
        return read_subscribe(s, opts, prefix);
    rc = read_list(s, opts, "keys", prefix, false, &s->keys);
    if (rc == TF_OK)
        rc = read_list(s, opts, "patterns", prefix, true, &s->patterns);
    if (rc != TF_OK)
        return rc;
    if (s->keys.n == 0 && s->patterns.n == 0) {
        h->log(s->self, TF_LOG_ERROR,
               "options keys, patterns and subscribe: expected at least one key (keys: "
               "[fx:USDKRW]), pattern (patterns: ['premium:*']) or kind (subscribe: [premium]), "
               "found none");
        return TF_EINVAL;
    }
    s->kind = h->opt_string(opts, "kind");
    if (s->kind && !s->kind[0]) {
        h->log(s->self, TF_LOG_ERROR,
               "option kind: expected a record kind (e.g. fx), found an empty string");
        return TF_EINVAL;
    }
    return TF_OK;
}

/* Subscribe mode: metrics, the tick's scratch buffer and the reader thread. */
static int start_subscribe(redis_source *s)
{
    const tf_host *h = s->host;
    static const char *const kind_label[] = {"kind", NULL};
    tf_metric *messages =
        h->metric_register(s->self, TF_METRIC_COUNTER, "tickflow_redis_source_messages_total",
                           "Events the redis source received on its subscribed channels, by kind",
                           kind_label, NULL, 0);
    tf_metric *dropped = h->metric_register(
        s->self, TF_METRIC_COUNTER, "tickflow_redis_source_dropped_total",
        "Keys whose latest event the redis source dropped because max_pending keys were "
        "waiting for the next tick",
        NULL, NULL, 0);
    tf_metric *subscribed =
        h->metric_register(s->self, TF_METRIC_GAUGE, "tickflow_redis_source_subscribed",
                           "1 while the redis source's subscription is established", NULL, NULL, 0);
    s->m_resyncs = h->metric_register(
        s->self, TF_METRIC_COUNTER, "tickflow_redis_source_resyncs_total",
        "Times the redis source read every key of its subscribed kinds again", NULL, NULL, 0);
    for (size_t i = 0; i < s->n_sub_kinds; i++)
        h->metric_add(messages, s->self, &s->sub_kinds[i]->kind, 0.0);
    h->metric_add(dropped, s->self, NULL, 0.0);
    h->metric_add(s->m_resyncs, s->self, NULL, 0.0);
    if (rsrc_pending_init(&s->taken, s->max_pending) != 0)
        return TF_ENOMEM;
    rsrc_sub_config cfg = {
        .host = h,
        .self = s->self,
        .prefix = s->prefix,
        .kinds = s->sub_kinds,
        .n_kinds = s->n_sub_kinds,
        .max_pending = s->max_pending,
        .m_messages = messages,
        .m_dropped = dropped,
        .m_subscribed = subscribed,
    };
    s->sub = rsrc_sub_start(&cfg);
    if (!s->sub)
        return TF_ENOMEM;
    s->read = subscribe_read;
    s->resync_due = true; /* the first tick fills the consumer with every current value */
    return TF_OK;
}

static int source_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                       void **instance)
{
    redis_source *s = calloc(1, sizeof *s);
    if (!s)
        return TF_ENOMEM;
    s->host = host;
    s->self = self;
    s->read = poll_read;
    int rc = read_options(s, opts);
    if (rc != TF_OK)
        goto fail;
    if (s->n_sub_kinds > 0 && !TF_HOST_HAS(host, redis_read_reply)) {
        host->log(self, TF_LOG_ERROR,
                  "option subscribe: expected a tickflow whose plugin host can read Redis "
                  "Pub/Sub messages (redis_read_reply), found an older one");
        rc = TF_EINVAL;
        goto fail;
    }
    s->redis = host->redis_open(self);
    if (!s->redis) {
        /* The host logged that no redis: section is configured. */
        rc = TF_EINVAL;
        goto fail;
    }
    if (s->n_sub_kinds > 0) {
        rc = start_subscribe(s);
        if (rc != TF_OK)
            goto fail;
    }
    *instance = s;
    return TF_OK;
fail:
    source_destroy(s);
    return rc;
}

static int source_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    (void)tick;
    redis_source *s = instance;
    return s->read(s, out);
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "redis",
    .kind = TF_KIND_SOURCE,
    .description = "Reads records the redis sink cached (listed keys with MGET, glob patterns "
                   "with SCAN, or its events with SUBSCRIBE) and emits them with their own kind",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = source_init,
    .destroy = source_destroy,
    .collect = source_collect,
};
