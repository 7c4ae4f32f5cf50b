/*
 * `positions` transform: live PnL of the open arbitrage positions (docs/positions.md). Owns a
 * copy of the open positions, reloaded from Redis every `refresh` (SMEMBERS of the open set,
 * then one pipelined HGETALL per position), and appends one `position_live` record per open
 * position whose `premium` record is in the tick's batch. It also asks the pipeline's sources
 * to fetch the symbols of open positions (host->interest_set).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <tickflow/tickflow.h>

#define PT_KEY_MAX   512
#define PT_ID_MAX    24
#define PT_NAME_MAX  64
#define PT_LONG_KRW  1 /* long_krw_short_global: bought KRW spot, sold the global perp */
#define PT_SHORT_KRW 2 /* short_krw_long_global */

/* What the PnL of one open position needs from its hash. */
typedef struct pt_position {
    char id[PT_ID_MAX];
    char symbol[PT_NAME_MAX];
    char krw_exchange[PT_NAME_MAX];
    char global_exchange[PT_NAME_MAX];
    int direction; /* PT_LONG_KRW or PT_SHORT_KRW */
    double size;
    double entry_premium_pct;
    double entry_krw_price;
    double entry_global_price;
} pt_position;

/* A premium record's executable prices (all > 0). */
typedef struct pt_book {
    double krw_bid, krw_ask, global_bid, global_ask, usdkrw;
    bool stale;
    int64_t ts;
} pt_book;

typedef struct positions {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    tf_redis *redis;     /* owned */
    char prefix[PT_KEY_MAX / 2];
    char open_key[PT_KEY_MAX]; /* <prefix>:positions:open */
    int64_t refresh_ms;
    int64_t next_refresh; /* monotonic ms; 0 = at the next tick */
    pt_position *list;    /* owned: the open positions of the last successful refresh */
    size_t n;
    tf_metric *m_open;
} positions;

static const tf_option_def options[] = {
    {"prefix", TF_OPT_STRING, NULL, 0,
     "Key prefix of the positions (default: the runtime's redis.prefix)", 0, NULL},
    {"refresh", TF_OPT_DURATION, "1s", 0,
     "How often the open positions are reloaded from Redis (one SMEMBERS and one pipelined "
     "round of HGETALL)",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- arithmetic (the same formulas as core/tf_positions.c; docs/positions.md) ---- */

static bool positive(double v)
{
    return isfinite(v) && v > 0;
}

static double premium_pct(double krw, double global, double usdkrw)
{
    return (krw / (global * usdkrw) - 1.0) * 100.0;
}

typedef struct pt_live {
    double current_premium_pct;
    double pnl_pct_points;
    double pnl_krw;
} pt_live;

/* The position closed now: long KRW exits at krw_bid / global_ask, short KRW at krw_ask /
 * global_bid. false when a result is not finite. */
static bool live_pnl(const pt_position *p, const pt_book *b, pt_live *out)
{
    bool lng = p->direction == PT_LONG_KRW;
    double krw = lng ? b->krw_bid : b->krw_ask;
    double global = lng ? b->global_ask : b->global_bid;
    double krw_leg = p->size * (krw - p->entry_krw_price);
    double global_leg = p->size * (p->entry_global_price - global) * b->usdkrw;
    out->current_premium_pct = premium_pct(krw, global, b->usdkrw);
    out->pnl_pct_points = out->current_premium_pct - p->entry_premium_pct;
    out->pnl_krw = krw_leg + global_leg;
    if (!lng) {
        out->pnl_pct_points = -out->pnl_pct_points;
        out->pnl_krw = -out->pnl_krw;
    }
    return isfinite(out->current_premium_pct) && isfinite(out->pnl_pct_points) &&
           isfinite(out->pnl_krw);
}

/* ---- reading a position hash ---- */

static const char *hash_get(const redisReply *h, const char *field)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i];
        const redisReply *v = h->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, field) == 0)
            return v->str;
    }
    return NULL;
}

/* Decimal text as the store writes it; no spaces, hex, inf or nan. */
static bool parse_double(const char *s, double *out)
{
    if (!s || !*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return false;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Reads one field into the position, reporting the first problem. */
typedef struct pt_reader {
    positions *s;
    const redisReply *h;
    const char *key;
    bool ok;
} pt_reader;

static void bad_field(pt_reader *r, const char *field, const char *expected, const char *found)
{
    if (!r->ok)
        return;
    r->ok = false;
    r->s->host->report_error(
        r->s->self, TF_EVALUE, "%s: field %s: expected %s, found %s%s%s; position skipped", r->key,
        field, expected, found ? "'" : "nothing", found ? found : "", found ? "'" : "");
}

static double read_number(pt_reader *r, const char *field, bool must_be_positive)
{
    const char *v = hash_get(r->h, field);
    double d = 0;
    if (!parse_double(v, &d) || (must_be_positive && d <= 0)) {
        bad_field(r, field, must_be_positive ? "a number > 0" : "a number", v);
        return 0;
    }
    return d;
}

static void read_name(pt_reader *r, const char *field, char *out, size_t size)
{
    const char *v = hash_get(r->h, field);
    if (!v || !*v || strlen(v) >= size) {
        bad_field(r, field, "a non-empty name", v);
        return;
    }
    memcpy(out, v, strlen(v) + 1);
}

static int read_direction(pt_reader *r)
{
    const char *v = hash_get(r->h, "direction");
    if (v && strcmp(v, "long_krw_short_global") == 0)
        return PT_LONG_KRW;
    if (v && strcmp(v, "short_krw_long_global") == 0)
        return PT_SHORT_KRW;
    bad_field(r, "direction", "long_krw_short_global or short_krw_long_global", v);
    return 0;
}

/* true when the hash is an open position, read into *p. A missing or closed hash (closed
 * between SMEMBERS and HGETALL) is skipped quietly; a malformed one is reported. */
static bool read_position(positions *s, const redisReply *h, const char *key, const char *id,
                          pt_position *p)
{
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return false;
    const char *status = hash_get(h, "status");
    if (!status || strcmp(status, "open") != 0)
        return false;
    pt_reader r = {s, h, key, true};
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    read_name(&r, "symbol", p->symbol, sizeof p->symbol);
    read_name(&r, "krw_exchange", p->krw_exchange, sizeof p->krw_exchange);
    read_name(&r, "global_exchange", p->global_exchange, sizeof p->global_exchange);
    p->direction = read_direction(&r);
    p->size = read_number(&r, "size", true);
    p->entry_premium_pct = read_number(&r, "entry_premium_pct", false);
    p->entry_krw_price = read_number(&r, "entry_krw_price", true);
    p->entry_global_price = read_number(&r, "entry_global_price", true);
    return r.ok;
}

/* ---- refresh ---- */

static bool valid_id(const char *id, size_t len)
{
    return len > 4 && len < PT_ID_MAX && strncmp(id, "pos-", 4) == 0 &&
           strspn(id + 4, "0123456789") == len - 4;
}

static int redis_error(positions *s, const char *what, const redisReply *reply)
{
    const tf_host *h = s->host;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        h->report_error(s->self, TF_EREDIS,
                        "%s: Redis answered an error: %s; keeping the %zu "
                        "positions loaded before",
                        what, reply->str, s->n);
    else
        h->report_error(s->self, TF_EREDIS,
                        "%s: expected a reply, found Redis unreachable or a failed connection; "
                        "keeping the %zu positions loaded before",
                        what, s->n);
    return TF_EREDIS;
}

static void position_key(const positions *s, const char *id, char *key, size_t size)
{
    snprintf(key, size, "%s:position:%s", s->prefix, id);
}

/* Appends one HGETALL per valid id of `members`; returns how many, or -1 when Redis failed
 * (which also discards what was queued). */
static long queue_hashes(positions *s, const redisReply *members)
{
    long queued = 0;
    for (size_t i = 0; i < members->elements; i++) {
        const redisReply *m = members->element[i];
        if (m->type != REDIS_REPLY_STRING || !valid_id(m->str, m->len))
            continue;
        char key[PT_KEY_MAX];
        position_key(s, m->str, key, sizeof key);
        const char *argv[] = {"HGETALL", key};
        if (s->host->redis_append(s->redis, 2, argv, NULL) != TF_OK)
            return -1;
        queued++;
    }
    return queued;
}

/* Reads the queued replies in the order of `members`. Every reply is read even after a failure,
 * so none is left behind for the next command. */
static int read_hashes(positions *s, const redisReply *members, long queued, pt_position *out,
                       size_t *n)
{
    const tf_host *h = s->host;
    int rc = TF_OK;
    size_t next = 0;
    *n = 0;
    for (long q = 0; q < queued; q++, next++) {
        while (members->element[next]->type != REDIS_REPLY_STRING ||
               !valid_id(members->element[next]->str, members->element[next]->len))
            next++;
        const char *id = members->element[next]->str;
        char key[PT_KEY_MAX];
        position_key(s, id, key, sizeof key);
        redisReply *reply = h->redis_get_reply(s->redis);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            if (rc == TF_OK)
                rc = redis_error(s, key, reply);
        } else if (rc == TF_OK && read_position(s, reply, key, id, &out[*n])) {
            (*n)++;
        }
        if (reply)
            h->redis_reply_free(reply);
    }
    return rc;
}

/* The distinct symbols of the open positions become this stage's interest. */
static void publish_interest(positions *s)
{
    const char **symbols = s->n ? calloc(s->n, sizeof *symbols) : NULL;
    size_t k = 0;
    for (size_t i = 0; symbols && i < s->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(symbols[j], s->list[i].symbol) == 0;
        if (!seen)
            symbols[k++] = s->list[i].symbol;
    }
    if (s->n && !symbols)
        return; /* out of memory: keep the previous interest rather than clear it */
    s->host->interest_set(s->self, symbols, k);
    free(symbols);
}

static int refresh(positions *s)
{
    const tf_host *h = s->host;
    const char *argv[] = {"SMEMBERS", s->open_key};
    redisReply *members = h->redis_command(s->redis, 2, argv, NULL);
    pt_position *list = NULL;
    int rc = TF_OK;
    if (!members || members->type != REDIS_REPLY_ARRAY) {
        rc = redis_error(s, s->open_key, members);
        goto out;
    }
    long queued = queue_hashes(s, members);
    if (queued < 0) {
        rc = redis_error(s, s->open_key, NULL);
        goto out;
    }
    list = queued ? calloc((size_t)queued, sizeof *list) : NULL;
    if (queued && !list) {
        /* Drain the replies so the connection stays usable. */
        for (long q = 0; q < queued; q++)
            h->redis_reply_free(h->redis_get_reply(s->redis));
        rc = TF_ENOMEM;
        goto out;
    }
    size_t n = 0;
    rc = read_hashes(s, members, queued, list, &n);
    if (rc != TF_OK)
        goto out;
    free(s->list);
    s->list = list;
    s->n = n;
    list = NULL;
    publish_interest(s);
    h->metric_set(s->m_open, s->self, NULL, (double)s->n);
out:
    free(list);
    if (members)
        h->redis_reply_free(members);
    return rc;
}

/* ---- one tick ---- */

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The executable prices of a premium record; false when one is missing or not > 0. */
static bool read_book(const tf_host *h, const tf_record *r, pt_book *b)
{
    const char *names[] = {"krw_bid", "krw_ask", "global_bid", "global_ask", "usdkrw"};
    double *slots[] = {&b->krw_bid, &b->krw_ask, &b->global_bid, &b->global_ask, &b->usdkrw};
    for (size_t i = 0; i < 5; i++) {
        if (h->record_get_double(r, names[i], slots[i]) != TF_OK || !positive(*slots[i]))
            return false;
    }
    /* A suspect premium (outside the premium transform's band) prices nothing: the position
     * keeps its last live value, which turns stale with age, rather than an absurd PnL. */
    bool suspect = false;
    h->record_get_bool(r, "suspect", &suspect);
    if (suspect)
        return false;
    /* A premium without a freshness verdict is not presented as fresh. */
    b->stale = true;
    h->record_get_bool(r, "stale", &b->stale);
    if (h->record_get_int(r, "ts", &b->ts) != TF_OK)
        b->ts = h->now_ms();
    return true;
}

/* The premium of p's symbol and exchange pair among the first n records. */
static bool find_book(positions *s, const tf_batch *batch, size_t n, const pt_position *p,
                      pt_book *b)
{
    const tf_host *h = s->host;
    for (size_t i = 0; i < n; i++) {
        const tf_record *r = h->batch_at(batch, i);
        if (strcmp(h->record_kind(r), "premium") != 0 ||
            !same(h->record_get_string(r, "symbol"), p->symbol) ||
            !same(h->record_get_string(r, "krw_exchange"), p->krw_exchange) ||
            !same(h->record_get_string(r, "global_exchange"), p->global_exchange))
            continue;
        if (read_book(h, r, b))
            return true;
    }
    return false;
}

static int fill_live(const tf_host *h, tf_record *r, const pt_position *p, const pt_book *b,
                     const pt_live *l)
{
    int rc = h->record_set_string(r, "id", p->id);
    rc = rc ? rc : h->record_set_string(r, "symbol", p->symbol);
    rc = rc ? rc : h->record_set_string(r, "krw_exchange", p->krw_exchange);
    rc = rc ? rc : h->record_set_string(r, "global_exchange", p->global_exchange);
    rc = rc ? rc
            : h->record_set_string(r, "direction",
                                   p->direction == PT_LONG_KRW ? "long_krw_short_global"
                                                               : "short_krw_long_global");
    rc = rc ? rc : h->record_set_double(r, "size", p->size);
    rc = rc ? rc : h->record_set_double(r, "entry_premium_pct", p->entry_premium_pct);
    rc = rc ? rc : h->record_set_double(r, "current_premium_pct", l->current_premium_pct);
    rc = rc ? rc : h->record_set_double(r, "pnl_pct_points", l->pnl_pct_points);
    rc = rc ? rc : h->record_set_double(r, "pnl_krw", l->pnl_krw);
    rc = rc ? rc : h->record_set_bool(r, "stale", b->stale);
    rc = rc ? rc : h->record_set_ts(r, "ts", b->ts);
    return rc;
}

static int emit_live(positions *s, tf_batch *batch, const pt_position *p, const pt_book *b)
{
    const tf_host *h = s->host;
    pt_live l;
    if (!live_pnl(p, b, &l)) {
        h->report_error(s->self, TF_EVALUE,
                        "position %s: expected a finite PnL, found none for krw %.17g/%.17g, "
                        "global %.17g/%.17g, usdkrw %.17g",
                        p->id, b->krw_bid, b->krw_ask, b->global_bid, b->global_ask, b->usdkrw);
        return TF_OK;
    }
    tf_record *r = h->record_new(batch, "position_live");
    if (!r)
        return TF_ENOMEM;
    int rc = fill_live(h, r, p, b, &l);
    if (rc != TF_OK) /* never leave a half record behind */
        h->batch_remove(batch, h->batch_count(batch) - 1);
    return rc;
}

static int positions_process(void *instance, const tf_tick *tick, tf_batch *batch)
{
    (void)tick;
    positions *s = instance;
    const tf_host *h = s->host;
    int status = TF_OK;
    int64_t now = h->monotonic_ms();
    if (s->next_refresh == 0 || now >= s->next_refresh) {
        /* On failure the previous list stays: positions only change through this Redis. */
        status = refresh(s);
        s->next_refresh = now + s->refresh_ms;
    }
    /* Only the records that came in: the live records appended below are not inputs. */
    size_t n = h->batch_count(batch);
    for (size_t i = 0; i < s->n; i++) {
        pt_book b;
        if (!find_book(s, batch, n, &s->list[i], &b))
            continue; /* no premium this tick: no number rather than an old one */
        int rc = emit_live(s, batch, &s->list[i], &b);
        if (rc != TF_OK)
            return rc;
    }
    return status;
}

/* ---- init / destroy ---- */

static void positions_destroy(void *instance)
{
    positions *s = instance;
    if (!s)
        return;
    if (s->redis)
        s->host->redis_close(s->redis);
    free(s->list);
    free(s);
}

static int init_prefix(positions *s, const tf_options *opts)
{
    const tf_host *h = s->host;
    const char *prefix = h->opt_string(opts, "prefix");
    if (!prefix)
        prefix = h->redis_prefix(s->self);
    bool ok = prefix && prefix[0] && strlen(prefix) < sizeof s->prefix;
    for (size_t i = 0; ok && prefix[i]; i++)
        ok = !isspace((unsigned char)prefix[i]);
    if (!ok) {
        h->log(s->self, TF_LOG_ERROR,
               "prefix: expected a non-empty key prefix of at most %zu characters without "
               "whitespace, found '%s'",
               sizeof s->prefix - 1, prefix ? prefix : "");
        return TF_EINVAL;
    }
    snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    snprintf(s->open_key, sizeof s->open_key, "%s:positions:open", prefix);
    return TF_OK;
}

static int positions_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                          void **instance)
{
    if (!TF_HOST_HAS(host, interest_get)) {
        host->log(self, TF_LOG_ERROR,
                  "expected a host with Redis and symbol-interest services, found an older "
                  "tickflow (ABI %u.%u)",
                  host->abi_major, host->abi_minor);
        return TF_EINVAL;
    }
    positions *s = calloc(1, sizeof *s);
    if (!s)
        return TF_ENOMEM;
    s->host = host;
    s->self = self;
    int rc = init_prefix(s, opts);
    if (rc != TF_OK)
        goto fail;
    s->refresh_ms = host->opt_duration_ms(opts, "refresh");
    if (s->refresh_ms <= 0) {
        host->log(self, TF_LOG_ERROR,
                  "refresh: expected a duration > 0 such as 1s, found %" PRId64 " ms",
                  s->refresh_ms);
        rc = TF_EINVAL;
        goto fail;
    }
    s->redis = host->redis_open(self);
    if (!s->redis) {
        host->log(self, TF_LOG_ERROR,
                  "the positions transform needs Redis: expected a top-level redis: section "
                  "(url, prefix), found none");
        rc = TF_EINVAL;
        goto fail;
    }
    s->m_open =
        host->metric_register(self, TF_METRIC_GAUGE, "tickflow_positions_open",
                              "Open positions at the last successful refresh.", NULL, NULL, 0);
    *instance = s;
    return TF_OK;
fail:
    positions_destroy(s);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "positions",
    .kind = TF_KIND_TRANSFORM,
    .description = "Live PnL of open arbitrage positions (position_live records) from the "
                   "tick's premiums",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = positions_init,
    .destroy = positions_destroy,
    .process = positions_process,
};
