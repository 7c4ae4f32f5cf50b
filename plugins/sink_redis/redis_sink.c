/*
 * `redis` sink: the Redis cache schema (docs/redis.md). Every record of a tick goes to Redis in
 * ONE round trip: a Lua script that checks the lease's fencing token, then SETs the latest
 * value of each key with its TTL, appends premiums to their capped history stream and PUBLISHes
 * one event per record. Owns the key schema, the argument builder and the sink's metrics.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <tickflow/tickflow.h>

#define RS_SCHEMA_VERSION 1  /* the "v" of every value; bump when a value's layout changes */
#define RS_COMPONENTS_MAX 3  /* key components taken from record fields */
#define RS_NUM_MAX        32 /* a decimal int64 with its sign and NUL */

/*
 * KEYS: the fence key first when ARGV[1] is not empty, then the history clock key when ARGV[3]
 * is not empty, then one key per X or S op, in order.
 * ARGV: [1] the writer's fencing token ('' = no lease: write unconditionally), [2] the history
 * streams' MAXLEN, [3] '1' when the clock key is given, then 4 per record: ops, ttl ms, event
 * channel, json. Ops is a string of X (XADD key MAXLEN ~ n <id> json json), S (SET key json PX
 * ttl) and P (PUBLISH channel json). After an X, the S and P of the same record store and
 * publish the json with "history_id" (the entry's id) added, so a reader of the latest value or
 * of the event can resume from the history streams with that id (SSE Last-Event-ID).
 *
 * History ids are "<ms>-<n>": one clock for every history stream under the prefix. A script
 * takes ms = max(Redis TIME, the clock key + 1) and numbers its entries n = 0, 1, ... in the
 * order it writes them, so ids are unique across streams and grow in publication order: "every
 * entry after id L, in any stream" is exactly what a reader who saw L has not seen. Should a
 * stream already hold that id or a larger one (the clock key lost, a writer that used '*'), the
 * XADD is refused and the script moves ms past that stream's last id and numbers on from 0:
 * still unique, still growing, and no extra command on the usual path.
 *
 * Returns the number of ops run, or {'fenced', current token} having written nothing: the fence
 * key holds another holder's token, so this writer's lease is stale. Redis runs a script
 * atomically, so no other client can move the fence or the clock between the check and the
 * writes.
 */
static const char write_script[] =
    "local k = 1\n"
    "if ARGV[1] ~= '' then\n"
    "  local cur = redis.call('GET', KEYS[1])\n"
    "  if cur ~= ARGV[1] then return {'fenced', cur or ''} end\n"
    "  k = 2\n"
    "end\n"
    "local clock, ms, seq = nil, nil, 0\n"
    "if ARGV[3] ~= '' then\n"
    "  clock = KEYS[k]\n"
    "  k = k + 1\n"
    "end\n"
    "local function start_clock()\n"
    "  local t = redis.call('TIME')\n"
    "  ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  local last = tonumber(redis.call('GET', clock) or '0') or 0\n"
    "  if ms <= last then ms = last + 1 end\n"
    "end\n"
    "local function xadd(key, json)\n"
    "  if not ms then start_clock() end\n"
    "  local id = string.format('%.0f-%d', ms, seq)\n"
    "  local r = redis.pcall('XADD', key, 'MAXLEN', '~', ARGV[2], id, 'json', json)\n"
    "  if type(r) == 'table' and r.err then\n"
    "    local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]\n"
    "    if not top then error(r.err) end\n"
    "    ms, seq = tonumber(string.match(top[1], '^(%d+)-')) + 1, 0\n"
    "    id = string.format('%.0f-%d', ms, seq)\n"
    "    r = redis.call('XADD', key, 'MAXLEN', '~', ARGV[2], id, 'json', json)\n"
    "  end\n"
    "  seq = seq + 1\n"
    "  return r\n"
    "end\n"
    "local n = 0\n"
    "for i = 4, #ARGV, 4 do\n"
    "  local ops, json = ARGV[i], ARGV[i + 3]\n"
    "  for j = 1, #ops do\n"
    "    local op = string.sub(ops, j, j)\n"
    "    if op == 'X' then\n"
    "      local hid = xadd(KEYS[k], json)\n"
    "      json = string.sub(json, 1, -2) .. ',\"history_id\":\"' .. hid .. '\"}'\n"
    "      k = k + 1\n"
    "    elseif op == 'S' then\n"
    "      redis.call('SET', KEYS[k], json, 'PX', ARGV[i + 1])\n"
    "      k = k + 1\n"
    "    else\n"
    "      redis.call('PUBLISH', ARGV[i + 2], json)\n"
    "    end\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "if ms then redis.call('SET', clock, string.format('%.0f', ms)) end\n"
    "return n\n";

/* The record kinds the sink knows how to key (docs/redis.md, "Keys"). */
typedef enum rs_kind { RS_TICKER, RS_PREMIUM, RS_FX, RS_POSITION_LIVE, RS_KIND_COUNT } rs_kind;

typedef struct rs_schema {
    const char *kind;
    const char *segment;                       /* key segment after the prefix */
    const char *fields[RS_COMPONENTS_MAX + 1]; /* fields that name the key, NULL-terminated */
    const char *suffix;                        /* last key segment, or NULL */
    bool history;                              /* also appended to <p>:history:<segment>:... */
} rs_schema;

static const rs_schema schemas[RS_KIND_COUNT] = {
    [RS_TICKER] = {"ticker", "ticker", {"exchange", "symbol", NULL}, NULL, false},
    [RS_PREMIUM] =
        {"premium", "premium", {"krw_exchange", "global_exchange", "symbol", NULL}, NULL, true},
    [RS_FX] = {"fx", "fx", {"pair", NULL}, NULL, false},
    [RS_POSITION_LIVE] = {"position_live", "position", {"id", NULL}, "live", false},
};

/* A string stored in the argument arena, by offset (the arena moves when it grows). */
typedef struct rs_span {
    size_t off;
    size_t len;
} rs_span;

/* The KEYS and ARGV of one script call. Kept between ticks so a steady stream of ticks of the
 * same size allocates nothing. */
typedef struct rs_args {
    char *bytes; /* owned arena */
    size_t used, cap;
    rs_span *keys; /* owned */
    size_t n_keys, cap_keys;
    rs_span *args; /* owned */
    size_t n_args, cap_args;
    const char **argv; /* owned array; the strings point into `bytes` */
    size_t cap_argv;
    size_t *lens; /* owned */
    size_t cap_lens;
} rs_args;

typedef struct redis_sink {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    tf_redis *redis;     /* owned */
    char *prefix;        /* owned */
    bool enabled[RS_KIND_COUNT];
    char ttl[RS_KIND_COUNT][RS_NUM_MAX]; /* TTL in ms, as the decimal text ARGV carries */
    char history_max[RS_NUM_MAX];        /* "0": no history stream */
    bool rewrite_cached; /* also write what a redis source of the pipeline read back */
    rs_args a;
    tf_metric *m_writes;   /* {kind} */
    tf_metric *m_skipped;  /* {kind, reason} */
    tf_metric *m_batches;  /* {result} */
    tf_metric *m_rejected; /* fenced rejections */
} redis_sink;

static const tf_option_def options[] = {
    {"prefix", TF_OPT_STRING, NULL, 0,
     "Key prefix of every key and channel (default: the runtime's redis.prefix)", 0, NULL},
    {"kinds", TF_OPT_LIST, "[ticker, premium, fx, position_live]", 0,
     "Record kinds to write (any of ticker, premium, fx, position_live); other kinds are "
     "skipped and counted in tickflow_redis_sink_skipped_total",
     TF_OPT_STRING, NULL},
    {"ticker_ttl", TF_OPT_DURATION, "5s", 0,
     "Expiry of <prefix>:ticker:<exchange>:<symbol> (the latest ticker)", 0, NULL},
    {"premium_ttl", TF_OPT_DURATION, "5s", 0,
     "Expiry of <prefix>:premium:<krw_exchange>:<global_exchange>:<symbol>", 0, NULL},
    {"fx_ttl", TF_OPT_DURATION, "15m", 0, "Expiry of <prefix>:fx:<pair>", 0, NULL},
    {"position_ttl", TF_OPT_DURATION, "5s", 0, "Expiry of <prefix>:position:<id>:live", 0, NULL},
    {"history_max", TF_OPT_INT, "86400", 0,
     "Approximate length cap (XADD MAXLEN ~) of each premium history stream; 0 = no history", 0,
     NULL},
    {"rewrite_cached", TF_OPT_BOOL, "false", 0,
     "Also write the records a redis source of this pipeline read back from the cache (the FX "
     "rate a 1 s pipeline reads); by default they are skipped (counted in "
     "tickflow_redis_sink_skipped_total{reason=\"cached\"}), so their key expires when their own "
     "writer stops and their event is published once per real update",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- argument arena ---- */

/* Room for `need` items of `item` bytes in buf (capacity *cap items, doubled as needed).
 * Returns the buffer, possibly moved, or NULL (buf still valid) when out of memory. */
static void *grow(void *buf, size_t *cap, size_t need, size_t item)
{
    if (buf && need <= *cap)
        return buf;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(buf, n * item);
    if (q)
        *cap = n;
    return q;
}

static bool reserve_bytes(rs_args *a, size_t more)
{
    char *q = grow(a->bytes, &a->cap, a->used + more, 1);
    if (q)
        a->bytes = q;
    return q != NULL;
}

static void args_reset(rs_args *a)
{
    a->used = 0;
    a->n_keys = 0;
    a->n_args = 0;
}

static void args_free(rs_args *a)
{
    free(a->bytes);
    free(a->keys);
    free(a->args);
    free(a->argv);
    free(a->lens);
}

static bool push_span(rs_span **v, size_t *n, size_t *cap, rs_span s)
{
    rs_span *q = grow(*v, cap, *n + 1, sizeof **v);
    if (!q)
        return false;
    *v = q;
    q[(*n)++] = s;
    return true;
}

/* Appends the parts joined by ':' to the arena; *out locates them. */
static bool arena_join(rs_args *a, const char *const *parts, size_t n, rs_span *out)
{
    size_t need = n;
    for (size_t i = 0; i < n; i++)
        need += strlen(parts[i]);
    if (!reserve_bytes(a, need))
        return false;
    out->off = a->used;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        if (i > 0)
            a->bytes[a->used++] = ':';
        memcpy(a->bytes + a->used, parts[i], len);
        a->used += len;
    }
    out->len = a->used - out->off;
    return true;
}

static bool push_key(rs_args *a, const char *const *parts, size_t n)
{
    rs_span s;
    return arena_join(a, parts, n, &s) && push_span(&a->keys, &a->n_keys, &a->cap_keys, s);
}

static bool push_arg(rs_args *a, const char *text)
{
    rs_span s;
    return arena_join(a, &text, 1, &s) && push_span(&a->args, &a->n_args, &a->cap_args, s);
}

/* Serialises straight into the arena: no intermediate string per record. */
static bool push_json_arg(rs_args *a, const json_t *obj, size_t flags)
{
    size_t room = a->cap - a->used;
    size_t n = json_dumpb(obj, a->bytes ? a->bytes + a->used : NULL, room, flags);
    if (n == 0)
        return false;
    if (n > room) {
        if (!reserve_bytes(a, n))
            return false;
        n = json_dumpb(obj, a->bytes + a->used, a->cap - a->used, flags);
        if (n == 0 || n > a->cap - a->used)
            return false;
    }
    rs_span s = {a->used, n};
    a->used += n;
    return push_span(&a->args, &a->n_args, &a->cap_args, s);
}

/* Resolves the spans into the argv/lens arrays redis_eval takes: KEYS, then ARGV. */
static bool args_finish(rs_args *a)
{
    size_t n = a->n_keys + a->n_args;
    const char **argv = grow(a->argv, &a->cap_argv, n, sizeof *a->argv);
    if (argv)
        a->argv = argv;
    size_t *lens = grow(a->lens, &a->cap_lens, n, sizeof *a->lens);
    if (lens)
        a->lens = lens;
    if (!argv || !lens)
        return false;
    for (size_t i = 0; i < n; i++) {
        const rs_span *s = i < a->n_keys ? &a->keys[i] : &a->args[i - a->n_keys];
        a->argv[i] = a->bytes + s->off;
        a->lens[i] = s->len;
    }
    return true;
}

/* ---- records ---- */

/* A key component must not be able to change the key's shape: no ':' (the separator), no
 * whitespace or control characters (they break the key in logs and in redis-cli), not empty. */
static bool safe_component(const char *s)
{
    if (!s || !s[0])
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ':' || isspace(*p) || iscntrl(*p))
            return false;
    }
    return true;
}

static const char *type_name(tf_field_type t)
{
    switch (t) {
    case TF_FIELD_NONE:
        return "no such field";
    case TF_FIELD_DOUBLE:
        return "a double";
    case TF_FIELD_BOOL:
        return "a bool";
    default:
        return "a value";
    }
}

/* The text of key component `field` (a string, or an integer written in decimal into buf).
 * NULL after reporting a TF_EVALUE naming the record. */
static const char *component(redis_sink *s, const tf_record *r, size_t index, const char *field,
                             char *buf, size_t size)
{
    const tf_host *h = s->host;
    tf_field_type t = h->record_field_type(r, field);
    const char *v = NULL;
    if (t == TF_FIELD_STRING) {
        v = h->record_get_string(r, field);
    } else if (t == TF_FIELD_INT || t == TF_FIELD_TS) {
        int64_t i = 0;
        h->record_get_int(r, field, &i);
        snprintf(buf, size, "%" PRId64, i);
        v = buf;
    }
    if (t != TF_FIELD_STRING && t != TF_FIELD_INT && t != TF_FIELD_TS) {
        h->report_error(s->self, TF_EVALUE,
                        "%s record #%zu: field %s: expected a string naming the Redis key, "
                        "found %s; record skipped",
                        h->record_kind(r), index, field, type_name(t));
        return NULL;
    }
    if (!safe_component(v)) {
        h->report_error(s->self, TF_EVALUE,
                        "%s record #%zu: field %s: expected a non-empty key component without "
                        "':', whitespace or control characters, found '%s'; record skipped",
                        h->record_kind(r), index, field, v);
        return NULL;
    }
    return v;
}

/* The fewest significant digits (15..17) that give every real of the object back exactly:
 * 95012.35 stays "95012.35" instead of "95012.350000000006", and nothing is lost. */
static int real_precision(const json_t *obj)
{
    int precision = 15;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        if (!json_is_real(v))
            continue;
        double d = json_real_value(v);
        char text[40];
        while (precision < 17) {
            snprintf(text, sizeof text, "%.*g", precision, d);
            if (strtod(text, NULL) == d)
                break;
            precision++;
        }
    }
    (void)name;
    return precision;
}

/* The value stored and published for a record: its JSON plus the schema version. */
static bool push_value(redis_sink *s, const tf_record *r)
{
    json_t *obj = s->host->record_to_json(r);
    if (!obj)
        return false;
    /* history_id is this sink's to assign (the script adds it); one read back from the cache
     * must not travel into a second entry. */
    json_object_del(obj, "history_id");
    bool ok = json_object_set_new(obj, "v", json_integer(RS_SCHEMA_VERSION)) == 0 &&
              push_json_arg(&s->a, obj, JSON_COMPACT | JSON_REAL_PRECISION(real_precision(obj)));
    json_decref(obj);
    return ok;
}

/* Adds one record's keys and arguments. TF_OK, TF_EVALUE (reported, nothing added) or
 * TF_ENOMEM. */
static int add_record(redis_sink *s, rs_kind kind, const tf_record *r, size_t index)
{
    const rs_schema *sc = &schemas[kind];
    char bufs[RS_COMPONENTS_MAX][RS_NUM_MAX];
    /* latest: prefix, segment, components..., suffix; history: prefix, "history", segment,
     * components... */
    const char *latest[RS_COMPONENTS_MAX + 3] = {s->prefix, sc->segment};
    const char *history[RS_COMPONENTS_MAX + 3] = {s->prefix, "history", sc->segment};
    size_t n = 0;
    for (; sc->fields[n]; n++) {
        const char *c = component(s, r, index, sc->fields[n], bufs[n], sizeof bufs[n]);
        if (!c)
            return TF_EVALUE;
        latest[2 + n] = c;
        history[3 + n] = c;
    }
    size_t n_latest = 2 + n;
    if (sc->suffix)
        latest[n_latest++] = sc->suffix;
    bool with_history = sc->history && strcmp(s->history_max, "0") != 0;
    const char *channel[] = {s->prefix, "events", sc->kind};
    rs_args *a = &s->a;
    rs_span ch;
    /* The history entry first: its id goes into the value stored and published after it. */
    bool ok = (!with_history || push_key(a, history, 3 + n)) && push_key(a, latest, n_latest) &&
              push_arg(a, with_history ? "XSP" : "SP") && push_arg(a, s->ttl[kind]) &&
              arena_join(a, channel, 3, &ch) && push_span(&a->args, &a->n_args, &a->cap_args, ch) &&
              push_value(s, r);
    return ok ? TF_OK : TF_ENOMEM;
}

static int kind_of(const char *kind)
{
    for (int k = 0; k < RS_KIND_COUNT; k++) {
        if (strcmp(schemas[k].kind, kind) == 0)
            return k;
    }
    return -1;
}

/* ---- life cycle ---- */

static void sink_destroy(void *instance)
{
    redis_sink *s = instance;
    if (!s)
        return;
    if (s->redis)
        s->host->redis_close(s->redis);
    free(s->prefix);
    args_free(&s->a);
    free(s);
}

static int read_kinds(redis_sink *s, const tf_options *opts)
{
    const json_t *kinds = s->host->opt_json(opts, "kinds");
    size_t i;
    const json_t *k;
    json_array_foreach(kinds, i, k)
    {
        int kind = json_is_string(k) ? kind_of(json_string_value(k)) : -1;
        if (kind < 0) {
            s->host->log(s->self, TF_LOG_ERROR,
                         "option kinds[%zu]: expected one of ticker, premium, fx, position_live "
                         "(the kinds with a key schema, see docs/redis.md), found '%s'",
                         i, json_is_string(k) ? json_string_value(k) : "a non-string");
            return TF_EINVAL;
        }
        s->enabled[kind] = true;
    }
    return TF_OK;
}

static int read_ttl(redis_sink *s, const tf_options *opts, const char *name, rs_kind kind)
{
    int64_t ms = s->host->opt_duration_ms(opts, name);
    if (ms <= 0) {
        s->host->log(s->self, TF_LOG_ERROR,
                     "option %s: expected a positive duration (e.g. 5s), found %" PRId64 " ms",
                     name, ms);
        return TF_EINVAL;
    }
    snprintf(s->ttl[kind], sizeof s->ttl[kind], "%" PRId64, ms);
    return TF_OK;
}

static int read_options(redis_sink *s, const tf_options *opts)
{
    const tf_host *h = s->host;
    const char *prefix = h->opt_string(opts, "prefix");
    if (!prefix)
        prefix = h->redis_prefix(s->self);
    if (!prefix || !prefix[0] || strpbrk(prefix, " \t\r\n")) {
        h->log(s->self, TF_LOG_ERROR,
               "option prefix: expected a non-empty key prefix without whitespace, found '%s'",
               prefix ? prefix : "");
        return TF_EINVAL;
    }
    s->prefix = strdup(prefix);
    if (!s->prefix)
        return TF_ENOMEM;
    int64_t history_max = h->opt_int(opts, "history_max");
    if (history_max < 0) {
        h->log(s->self, TF_LOG_ERROR,
               "option history_max: expected 0 (no history) or a positive entry count, found "
               "%" PRId64,
               history_max);
        return TF_EINVAL;
    }
    snprintf(s->history_max, sizeof s->history_max, "%" PRId64, history_max);
    s->rewrite_cached = h->opt_bool(opts, "rewrite_cached");
    int rc = read_kinds(s, opts);
    if (rc == TF_OK)
        rc = read_ttl(s, opts, "ticker_ttl", RS_TICKER);
    if (rc == TF_OK)
        rc = read_ttl(s, opts, "premium_ttl", RS_PREMIUM);
    if (rc == TF_OK)
        rc = read_ttl(s, opts, "fx_ttl", RS_FX);
    if (rc == TF_OK)
        rc = read_ttl(s, opts, "position_ttl", RS_POSITION_LIVE);
    return rc;
}

static int register_metrics(redis_sink *s)
{
    const tf_host *h = s->host;
    static const char *const kind_label[] = {"kind", NULL};
    static const char *const skip_labels[] = {"kind", "reason", NULL};
    static const char *const result_label[] = {"result", NULL};
    s->m_writes = h->metric_register(s->self, TF_METRIC_COUNTER, "tickflow_redis_sink_writes_total",
                                     "Records written to Redis by the redis sink, by kind",
                                     kind_label, NULL, 0);
    s->m_skipped =
        h->metric_register(s->self, TF_METRIC_COUNTER, "tickflow_redis_sink_skipped_total",
                           "Records the redis sink did not write, by kind and reason: "
                           "kind (not in its kinds option), cached (read back from "
                           "the cache by a redis source of the pipeline)",
                           skip_labels, NULL, 0);
    s->m_batches =
        h->metric_register(s->self, TF_METRIC_COUNTER, "tickflow_redis_sink_batches_total",
                           "Ticks the redis sink sent to Redis, by result (ok, failed, fenced)",
                           result_label, NULL, 0);
    s->m_rejected = h->metric_register(
        s->self, TF_METRIC_COUNTER, "tickflow_redis_fenced_rejections_total",
        "Ticks whose writes Redis refused because their fencing token was no longer current", NULL,
        NULL, 0);
    if (!s->m_writes || !s->m_skipped || !s->m_batches || !s->m_rejected) {
        h->log(s->self, TF_LOG_ERROR, "could not register the redis sink metrics");
        return TF_ERR;
    }
    static const char *const results[] = {"ok", "failed", "fenced"};
    for (size_t i = 0; i < sizeof results / sizeof *results; i++)
        h->metric_add(s->m_batches, s->self, &results[i], 0.0);
    h->metric_add(s->m_rejected, s->self, NULL, 0.0);
    return TF_OK;
}

static int sink_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                     void **instance)
{
    redis_sink *s = calloc(1, sizeof *s);
    if (!s)
        return TF_ENOMEM;
    s->host = host;
    s->self = self;
    int rc = read_options(s, opts);
    if (rc != TF_OK)
        goto fail;
    rc = register_metrics(s);
    if (rc != TF_OK)
        goto fail;
    /* Does not connect: the first tick does, and a Redis that is down at start-up is only a
     * failed tick, retried with backoff, like a Redis that goes down later. */
    s->redis = host->redis_open(self);
    if (!s->redis) {
        /* The host logged that no redis: section is configured. */
        rc = TF_EINVAL;
        goto fail;
    }
    *instance = s;
    return TF_OK;
fail:
    sink_destroy(s);
    return rc;
}

/* ---- one tick ---- */

/* A record a `redis` source of this pipeline read back from the cache. Writing it again would
 * renew its TTL and publish its event on every tick, so the key would never expire after its
 * real writer (the FX pipeline) stopped. A host older than ABI 1.2 cannot tell: everything is
 * written, as before. */
static bool read_from_cache(const redis_sink *s, const tf_record *r)
{
    const tf_host *h = s->host;
    if (!TF_HOST_HAS(h, record_origin))
        return false;
    tf_plugin_kind kind;
    const char *plugin = NULL;
    return h->record_origin(r, &kind, &plugin) == TF_OK && kind == TF_KIND_SOURCE && plugin &&
           strcmp(plugin, "redis") == 0;
}

/* Why the record is not written ("kind", "cached"), or NULL when it is. */
static const char *skip_reason(const redis_sink *s, const tf_record *r, int kind)
{
    if (kind < 0 || !s->enabled[kind])
        return "kind";
    if (!s->rewrite_cached && read_from_cache(s, r))
        return "cached";
    return NULL;
}

/* Fills the arguments from the batch. Counts records per written kind in `written`. */
static int build_args(redis_sink *s, const tf_tick *tick, const tf_batch *batch,
                      size_t written[RS_KIND_COUNT], size_t *records)
{
    const tf_host *h = s->host;
    rs_args *a = &s->a;
    args_reset(a);
    char token[RS_NUM_MAX] = "";
    if (tick->fence_key) {
        snprintf(token, sizeof token, "%" PRIu64, tick->fence);
        if (!push_key(a, &tick->fence_key, 1))
            return TF_ENOMEM;
    }
    const char *clock[] = {s->prefix, "history", "clock"};
    bool with_clock = s->enabled[RS_PREMIUM] && strcmp(s->history_max, "0") != 0;
    if (with_clock && !push_key(a, clock, 3))
        return TF_ENOMEM;
    if (!push_arg(a, token) || !push_arg(a, s->history_max) || !push_arg(a, with_clock ? "1" : ""))
        return TF_ENOMEM;
    *records = 0;
    for (size_t i = 0; i < h->batch_count(batch); i++) {
        const tf_record *r = h->batch_at(batch, i);
        const char *kind_name = h->record_kind(r);
        int kind = kind_of(kind_name);
        const char *reason = skip_reason(s, r, kind);
        if (reason) {
            const char *labels[] = {kind_name, reason};
            h->metric_add(s->m_skipped, s->self, labels, 1.0);
            continue;
        }
        int rc = add_record(s, (rs_kind)kind, r, i);
        if (rc == TF_ENOMEM)
            return rc;
        if (rc == TF_OK) {
            written[kind]++;
            (*records)++;
        }
    }
    return args_finish(a) ? TF_OK : TF_ENOMEM;
}

static void count_batch(redis_sink *s, const char *result)
{
    s->host->metric_add(s->m_batches, s->self, &result, 1.0);
}

/* Reads the script's answer: TF_OK, TF_EFENCED or TF_EREDIS (each reported). */
static int check_reply(redis_sink *s, const tf_tick *tick, const redisReply *reply, size_t records)
{
    const tf_host *h = s->host;
    if (!reply) {
        count_batch(s, "failed");
        h->report_error(s->self, TF_EREDIS,
                        "cannot write %zu records: Redis is unreachable (the connection is "
                        "retried with backoff)",
                        records);
        return TF_EREDIS;
    }
    if (reply->type == REDIS_REPLY_INTEGER)
        return TF_OK;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "fenced") == 0) {
        const redisReply *cur = reply->element[1];
        count_batch(s, "fenced");
        h->metric_add(s->m_rejected, s->self, NULL, 1.0);
        h->report_error(s->self, TF_EFENCED,
                        "write of %zu records refused: fencing token %" PRIu64
                        " is not the current one (%s holds '%s'): a newer lease holder writes "
                        "this pipeline; nothing was written",
                        records, tick->fence, tick->fence_key,
                        cur->type == REDIS_REPLY_STRING ? cur->str : "");
        return TF_EFENCED;
    }
    count_batch(s, "failed");
    h->report_error(s->self, TF_EREDIS, "Redis refused the write of %zu records: %s", records,
                    reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str
                                                                   : "unexpected reply type");
    return TF_EREDIS;
}

static int sink_write(void *instance, const tf_tick *tick, const tf_batch *batch)
{
    redis_sink *s = instance;
    const tf_host *h = s->host;
    size_t written[RS_KIND_COUNT] = {0};
    size_t records = 0;
    int rc = build_args(s, tick, batch, written, &records);
    if (rc != TF_OK || records == 0)
        return rc;
    size_t numkeys = s->a.n_keys;
    size_t argc = s->a.n_keys + s->a.n_args;
    redisReply *reply =
        h->redis_eval(s->redis, write_script, (int)numkeys, (int)argc, s->a.argv, s->a.lens);
    rc = check_reply(s, tick, reply, records);
    if (reply)
        h->redis_reply_free(reply);
    if (rc != TF_OK)
        return rc;
    count_batch(s, "ok");
    for (int k = 0; k < RS_KIND_COUNT; k++) {
        if (written[k])
            h->metric_add(s->m_writes, s->self, &schemas[k].kind, (double)written[k]);
    }
    return TF_OK;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "redis",
    .kind = TF_KIND_SINK,
    .description = "Caches tickers, premiums, FX and live positions in Redis (TTL'd latest "
                   "values, capped premium history, events), fenced by the pipeline's lease",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = sink_init,
    .destroy = sink_destroy,
    .write = sink_write,
};
