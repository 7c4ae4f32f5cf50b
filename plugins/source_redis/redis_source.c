/*
 * `redis` source: reads back what the redis sink cached (docs/redis.md) and emits each value
 * as a record of its own "kind". Owns the key list (one MGET per tick), the pattern scan
 * (SCAN MATCH, then MGET in chunks) and the decoding of the sink's JSON into record fields.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <tickflow/tickflow.h>

#define RSRC_SCAN_COUNT "1000" /* keys Redis examines per SCAN call: bounds each call's cost */
#define RSRC_MGET_CHUNK 500    /* keys per MGET in pattern mode: bounds each reply's size */
#define RSRC_MSG_MAX    1024

typedef struct redis_source redis_source;

/* How a tick obtains values. Only polling exists; a subscribe mode (the API role, a later
 * issue) would add a reader that drains the sink's <prefix>:events:<kind> messages and hands
 * each one to emit_value(), like poll_read does. */
typedef int (*read_fn)(redis_source *s, tf_batch *out);

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
    str_list keys;     /* full key names (prefix + option keys) */
    str_list patterns; /* full MATCH patterns, the prefix's glob characters escaped */
    const char *kind;  /* borrowed from the options; NULL: every kind */
    str_list found;    /* scratch: the keys a tick's scan found */
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

/* One cached value -> one record (unless filtered out by `kind`). A value that is not the
 * sink's JSON is reported (TF_EPARSE) and skipped. Returns TF_ENOMEM only. */
static int emit_value(redis_source *s, const char *key, const char *text, size_t len, tf_batch *out)
{
    const tf_host *h = s->host;
    char err[256];
    json_t *root = h->json_parse(text, len, err, sizeof err);
    int rc = TF_OK;
    if (!root) {
        h->report_error(s->self, TF_EPARSE,
                        "Redis key %s: expected the redis sink's JSON, found invalid JSON (%s); "
                        "key skipped",
                        key, err);
        goto out;
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
        goto out;
    }
    if (s->kind && strcmp(s->kind, json_string_value(kind)) != 0)
        goto out;
    tf_record *r = h->record_new(out, json_string_value(kind));
    if (!r) {
        rc = TF_ENOMEM;
        goto out;
    }
    const char *name;
    const json_t *v;
    json_object_foreach(root, name, v)
    {
        if (!skipped_field(name) && set_field(h, r, name, v) != TF_OK) {
            h->batch_remove(out, h->batch_count(out) - 1);
            rc = TF_ENOMEM;
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
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

/* MGET of keys[0..n): emits every value; nil values' keys are appended to `missing` (may be
 * NULL: nil is then silently skipped). TF_OK, TF_EREDIS or TF_ENOMEM. */
static int mget(redis_source *s, char *const *keys, size_t n, str_list *missing, tf_batch *out)
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
            rc = emit_value(s, keys[i], e->str, e->len, out);
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

static int read_patterns(redis_source *s, tf_batch *out)
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
        int rc = mget(s, s->found.items + i, n, NULL, out);
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
    int rc = mget(s, s->keys.items, s->keys.n, &missing, out);
    if (rc == TF_OK && missing.n > 0)
        report_missing(s, &missing);
    list_free(&missing);
    return rc;
}

static int poll_read(redis_source *s, tf_batch *out)
{
    int rc = TF_OK;
    if (s->keys.n > 0)
        rc = read_keys(s, out);
    if (rc == TF_OK && s->patterns.n > 0)
        rc = read_patterns(s, out);
    return rc;
}

/* ---- life cycle ---- */

static void source_destroy(void *instance)
{
    redis_source *s = instance;
    if (!s)
        return;
    if (s->redis)
        s->host->redis_close(s->redis);
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
    int rc = read_list(s, opts, "keys", prefix, false, &s->keys);
    if (rc == TF_OK)
        rc = read_list(s, opts, "patterns", prefix, true, &s->patterns);
    if (rc != TF_OK)
        return rc;
    if (s->keys.n == 0 && s->patterns.n == 0) {
        h->log(s->self, TF_LOG_ERROR,
               "options keys and patterns: expected at least one key (keys: [fx:USDKRW]) or "
               "pattern (patterns: ['premium:*']), found neither");
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
    s->redis = host->redis_open(self);
    if (!s->redis) {
        /* The host logged that no redis: section is configured. */
        rc = TF_EINVAL;
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
    const tf_host *h = s->host;
    size_t before = h->batch_count(out);
    int rc = s->read(s, out);
    /* A tick Redis failed half-way emits nothing rather than an arbitrary part of the cache. */
    if (rc != TF_OK) {
        while (h->batch_count(out) > before)
            h->batch_remove(out, h->batch_count(out) - 1);
    }
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "redis",
    .kind = TF_KIND_SOURCE,
    .description = "Reads records the redis sink cached (listed keys with MGET, glob patterns "
                   "with SCAN) and emits them with their own kind",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = source_init,
    .destroy = source_destroy,
    .collect = source_collect,
};
