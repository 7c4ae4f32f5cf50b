/*
 * `bithumb` source: KRW spot tickers from Bithumb's public REST v1 (api.bithumb.com/public/...):
 * last trade and 24 h volume from /public/ticker, best bid/ask from /public/orderbook, for one
 * coin, a few (one request per coin) or many (one ALL_KRW request per endpoint).
 * Layouts and quirks: tests/fixtures/exchanges/NOTES.md section 1a.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tickflow/plausible.h>
#include <tickflow/tickflow.h>

#define BT_SYMBOL_MAX 16 /* coin code buffer, NUL included */
#define BT_SINGLE_MAX 3  /* more coins than this: ALL_KRW (one request instead of N) */
#define BT_URL_MAX    512
#define BT_CTX_MAX    160
#define BT_ERR_MAX    256
#define BT_PATH_MAX   64
#define BT_ALL        "ALL"
#define BT_BOOK_QUERY "?count=1" /* only the top level is used; 1 is valid for ALL too */

typedef struct bithumb {
    const tf_host *host;            /* borrowed, outlives the instance */
    tf_instance *self;              /* borrowed */
    char *base_url;                 /* owned, without trailing '/' */
    const char *exchange;           /* borrowed from options */
    char (*symbols)[BT_SYMBOL_MAX]; /* owned, upper case; empty when `every` */
    size_t n_symbols;
    bool every; /* symbols: "*" */
    bool book;
    int64_t timeout_ms;
    int64_t max_age_ms;
    tf_plaus guard; /* owned: sane ranges and jumps of every price field */
} bithumb;

/* One Bithumb reply: `root` is owned, `data` is borrowed from it. */
typedef struct bt_reply {
    json_t *root;
    json_t *data;
    int64_t received_ms;
} bt_reply;

/* Everything one record needs, gathered before the record is created. */
typedef struct bt_quote {
    double last;
    double volume;
    bool has_volume;
    double bid;
    double ask;
    int64_t ts_exchange;
    int64_t ts_received;
} bt_quote;

static const tf_option_def options[] = {
    {"base_url", TF_OPT_STRING, "https://api.bithumb.com", 0,
     "Root of Bithumb's public REST v1 (http:// or https://), e.g. the fake exchange in tests", 0,
     NULL},
    {"exchange", TF_OPT_STRING, "bithumb", 0, "Value of the records' `exchange` field", 0, NULL},
    {"symbols", TF_OPT_LIST, "[BTC]", 0,
     "Coins quoted in KRW (BTC, ETH, ...); \"*\" = every KRW market. More than 3 coins are "
     "fetched with the ALL_KRW endpoints (one request per endpoint instead of one per coin)",
     TF_OPT_STRING, NULL},
    {"timeout", TF_OPT_DURATION, "5s", 0, "Time limit of each HTTP request", 0, NULL},
    {"book", TF_OPT_BOOL, "true", 0,
     "Also fetch the order book for the best bid/ask (false: records carry no bid/ask and the "
     "tick makes half the requests)",
     0, NULL},
    {"max_age", TF_OPT_DURATION, "30s", 0,
     "Reject a payload whose exchange timestamp is older than this when it arrives", 0, NULL},
    /* KRW prices. BTC traded 30M-160M KRW in 2021-2025, ETH 1.3M-7M, XRP 300-4,500, SOL
     * 10k-400k; USDT follows USD/KRW (1,100-1,500) plus the kimchi premium (-5 % to +50 %).
     * Each range leaves a factor of ~5 of room each way: a sanity check, not a forecast. A coin
     * not listed is only kept between 0.001 KRW and 10 billion KRW. */
    {"price_min", TF_OPT_DOUBLE, "0.001", 0, TF_PLAUS_DOC_MIN, 0, NULL},
    {"price_max", TF_OPT_DOUBLE, "1e10", 0, TF_PLAUS_DOC_MAX, 0, NULL},
    {"price_bounds", TF_OPT_MAP,
     "{BTC: [2e7, 1e9], ETH: [3e5, 3e7], XRP: [50, 5e4], SOL: [3e3, 3e6], USDT: [800, 3000]}", 0,
     TF_PLAUS_DOC_BOUNDS, TF_OPT_LIST, NULL},
    /* The largest 1-minute BTC moves on record are a few percent; 20 % within one 1 s tick is
     * a broken payload until the next one says the same. */
    {"max_jump", TF_OPT_DOUBLE, "0.2", 0, TF_PLAUS_DOC_JUMP, 0, NULL},
    {"jump_tolerance", TF_OPT_DOUBLE, "0.02", 0, TF_PLAUS_DOC_TOLERANCE, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- options ---- */

static int init_base_url(bithumb *b, const char *url)
{
    return b->host->base_url(b->self, "base_url", url, BT_URL_MAX - BT_PATH_MAX - 16, &b->base_url);
}

/* A coin code as Bithumb writes it: letters and digits ("BTC", "1INCH"); stored upper case. */
static int init_symbol(bithumb *b, size_t i, const json_t *item)
{
    const tf_host *h = b->host;
    const char *s = json_string_value(item);
    size_t len = s ? strlen(s) : 0;
    bool ok = len > 0 && len < BT_SYMBOL_MAX;
    for (size_t k = 0; ok && k < len; k++)
        ok = isalnum((unsigned char)s[k]) != 0;
    if (!ok) {
        h->log(b->self, TF_LOG_ERROR,
               "symbols[%zu]: expected a coin code of 1 to %d letters or digits (e.g. BTC), found "
               "\"%s\"",
               i, BT_SYMBOL_MAX - 1, s ? s : b->host->json_type_name(item));
        return TF_EINVAL;
    }
    for (size_t k = 0; k <= len; k++)
        b->symbols[i][k] = (char)toupper((unsigned char)s[k]);
    for (size_t k = 0; k < i; k++) {
        if (strcmp(b->symbols[k], b->symbols[i]) == 0) {
            h->log(b->self, TF_LOG_ERROR,
                   "symbols[%zu]: expected each coin once, found %s again (first at symbols[%zu])",
                   i, b->symbols[i], k);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int init_symbols(bithumb *b, const json_t *list)
{
    size_t n = json_array_size(list);
    if (n == 0) {
        b->host->log(b->self, TF_LOG_ERROR,
                     "symbols: expected at least one coin (or \"*\"), found an empty list");
        return TF_EINVAL;
    }
    if (n == 1 && json_is_string(json_array_get(list, 0)) &&
        strcmp(json_string_value(json_array_get(list, 0)), "*") == 0) {
        b->every = true;
        return TF_OK;
    }
    b->symbols = calloc(n, sizeof *b->symbols);
    if (!b->symbols)
        return TF_ENOMEM;
    b->n_symbols = n;
    for (size_t i = 0; i < n; i++) {
        const char *item = json_string_value(json_array_get(list, i));
        if (item && strcmp(item, "*") == 0) {
            b->host->log(b->self, TF_LOG_ERROR,
                         "symbols[%zu]: expected \"*\" (every KRW market) as the only item, "
                         "found it with %zu other items",
                         i, n - 1);
            return TF_EINVAL;
        }
        int rc = init_symbol(b, i, json_array_get(list, i));
        if (rc != TF_OK)
            return rc;
    }
    return TF_OK;
}

static void bithumb_destroy(void *instance)
{
    bithumb *b = instance;
    if (!b)
        return;
    free(b->base_url);
    free(b->symbols);
    tf_plaus_free(&b->guard);
    free(b);
}

static int bithumb_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                        void **instance)
{
    bithumb *b = calloc(1, sizeof *b);
    if (!b)
        return TF_ENOMEM;
    b->host = host;
    b->self = self;
    b->exchange = host->opt_string(opts, "exchange");
    b->book = host->opt_bool(opts, "book");
    int rc = init_base_url(b, host->opt_string(opts, "base_url"));
    if (rc == TF_OK)
        rc = init_symbols(b, host->opt_json(opts, "symbols"));
    if (rc == TF_OK)
        rc = host->opt_positive_duration(self, opts, "timeout", &b->timeout_ms);
    if (rc == TF_OK)
        rc = host->opt_positive_duration(self, opts, "max_age", &b->max_age_ms);
    if (rc == TF_OK && (!b->exchange || !b->exchange[0])) {
        host->log(self, TF_LOG_ERROR, "exchange: expected a name such as \"bithumb\", found \"\"");
        rc = TF_EINVAL;
    }
    if (rc == TF_OK) {
        tf_plaus_config cfg = tf_plaus_config_from(host, opts, b->exchange);
        rc = tf_plaus_init(&b->guard, host, self, &cfg);
    }
    if (rc != TF_OK)
        goto fail;
    *instance = b;
    return TF_OK;
fail:
    bithumb_destroy(b);
    return rc;
}

/* ---- HTTP replies ---- */

static const char *status_field(const json_t *root, const char *key)
{
    const char *s = json_string_value(json_object_get(root, key));
    return s ? s : "?";
}

/* A non-2xx reply. Bithumb's own {"status","message"} body is quoted when there is one. */
static int reply_http_error(bithumb *b, const tf_fetch *f)
{
    bool limited = f->status == 429 || f->status == 418;
    bool venue = json_is_object(f->root) && json_is_string(json_object_get(f->root, "status"));
    if (limited || !venue)
        return b->host->fetch_http_error(b->self, f, "200");
    /* 4xx with Bithumb's envelope is the API refusing the call; 5xx stays an HTTP error. */
    int rc = f->status < 500 ? TF_EAPI : TF_EHTTP;
    b->host->report_error(
        b->self, rc, "%s: expected HTTP 200, found HTTP %ld with Bithumb error %s (%s)", f->context,
        f->status, status_field(f->root, "status"), status_field(f->root, "message"));
    return rc;
}

/* A 2xx reply's JSON: an object whose "status" is "0000" (errors also come with HTTP 200, so
 * the status field is the only verdict: NOTES.md 1a) and whose "data" is an object. */
static int reply_check(bithumb *b, const char *ctx, bt_reply *out)
{
    const tf_host *h = b->host;
    const json_t *status = json_object_get(out->root, "status");
    if (!json_is_string(status)) {
        h->report_error(b->self, TF_EPARSE,
                        "%s: status: expected a string such as \"0000\", found %s", ctx,
                        h->json_type_name(status));
        return TF_EPARSE;
    }
    if (strcmp(json_string_value(status), "0000") != 0) {
        h->report_error(b->self, TF_EAPI,
                        "%s: expected status \"0000\", found Bithumb error %s (%s)", ctx,
                        json_string_value(status), status_field(out->root, "message"));
        return TF_EAPI;
    }
    out->data = json_object_get(out->root, "data");
    if (!json_is_object(out->data)) {
        h->report_error(b->self, TF_EPARSE, "%s: data: expected an object, found %s", ctx,
                        h->json_type_name(out->data));
        return TF_EPARSE;
    }
    return TF_OK;
}

/* GETs base_url + path + query and checks the envelope. On failure the error is reported and
 * returned; out->root may still be set and is the caller's to free. */
static int bt_fetch(bithumb *b, const char *path, const char *query, bt_reply *out)
{
    const tf_host *h = b->host;
    char url[BT_URL_MAX];
    char ctx[BT_CTX_MAX];
    snprintf(ctx, sizeof ctx, "%s %s", b->exchange, path);
    int n = snprintf(url, sizeof url, "%s%s%s", b->base_url, path, query);
    if (n < 0 || (size_t)n >= sizeof url) {
        h->report_error(b->self, TF_EINVAL, "%s: URL longer than %d characters", ctx, BT_URL_MAX);
        return TF_EINVAL;
    }
    tf_fetch f = {.struct_size = sizeof f, .context = ctx, .expected = "a JSON object"};
    int rc = h->fetch_json(b->self,
                           &(tf_http_request){.struct_size = sizeof(tf_http_request),
                                              .url = url,
                                              .timeout_ms = b->timeout_ms},
                           &f);
    out->received_ms = f.received_ms;
    if (rc == TF_OK) {
        out->root = f.root;
        rc = reply_check(b, ctx, out);
    } else {
        if (f.status != 0 && (f.status < 200 || f.status > 299))
            rc = reply_http_error(b, &f);
        json_decref(f.root);
    }
    h->http_free(f.response);
    return rc;
}

/* ---- values ---- */

/* A strict number at `key` of `obj`; reported as "<ctx>: <key>: <reason>". */
static int get_number(bithumb *b, const char *ctx, const json_t *obj, const char *key,
                      unsigned flags, double *out)
{
    char err[BT_ERR_MAX];
    int rc = b->host->json_number(json_object_get(obj, key), flags, out, err, sizeof err);
    if (rc != TF_OK)
        b->host->report_error(b->self, rc, "%s: %s: %s", ctx, key, err);
    return rc;
}

/* An epoch-ms timestamp that must be within max_age before `received` and at most
 * 5 s after it (host check_fresh). Bithumb's other times are KST wall clock and are not used. */
static int get_timestamp(bithumb *b, const char *ctx, const json_t *obj, const char *key,
                         int64_t received, int64_t *out)
{
    const tf_host *h = b->host;
    char err[BT_ERR_MAX];
    int64_t ts = 0;
    int rc = h->json_int64(json_object_get(obj, key), TF_NUM_POSITIVE, &ts, err, sizeof err);
    if (rc != TF_OK) {
        h->report_error(b->self, rc, "%s: %s: %s", ctx, key, err);
        return rc;
    }
    rc = h->check_fresh(b->self, ctx, key, ts, received, b->max_age_ms);
    if (rc == TF_OK)
        *out = ts;
    return rc;
}

/* One coin's ticker object: last trade (closing_price) and rolling 24 h volume. */
static int parse_ticker(bithumb *b, const char *ctx, const json_t *t, bt_quote *q)
{
    if (!json_is_object(t)) {
        b->host->report_error(b->self, TF_EPARSE, "%s: expected a ticker object, found %s", ctx,
                              b->host->json_type_name(t));
        return TF_EPARSE;
    }
    int rc = get_number(b, ctx, t, "closing_price", TF_NUM_POSITIVE, &q->last);
    if (rc != TF_OK)
        return rc;
    q->has_volume = json_object_get(t, "units_traded_24H") != NULL;
    if (q->has_volume)
        rc = get_number(b, ctx, t, "units_traded_24H", TF_NUM_NONNEGATIVE, &q->volume);
    return rc;
}

/* The best price of one book side: the highest bid or the lowest ask over every level given
 * (each level must parse, so one garbled level fails the whole book). */
static int best_price(bithumb *b, const char *ctx, const json_t *book, const char *side,
                      bool highest, double *out)
{
    const tf_host *h = b->host;
    const json_t *levels = json_object_get(book, side);
    if (!json_is_array(levels) || json_array_size(levels) == 0) {
        h->report_error(b->self, TF_EVALUE, "%s: %s: expected a non-empty array, found %s", ctx,
                        side,
                        json_is_array(levels) ? "an empty array" : b->host->json_type_name(levels));
        return TF_EVALUE;
    }
    size_t i;
    const json_t *level;
    json_array_foreach(levels, i, level)
    {
        char err[BT_ERR_MAX];
        double price = 0;
        int rc = h->json_number(json_object_get(level, "price"), TF_NUM_POSITIVE, &price, err,
                                sizeof err);
        if (rc != TF_OK) {
            h->report_error(b->self, rc, "%s: %s[%zu].price: %s", ctx, side, i, err);
            return rc;
        }
        if (i == 0 || (highest ? price > *out : price < *out))
            *out = price;
    }
    return TF_OK;
}

/* One coin's book object {order_currency?, bids, asks}: best bid and ask, not crossed. */
static int parse_book(bithumb *b, const char *ctx, const char *sym, const json_t *book, bt_quote *q)
{
    const tf_host *h = b->host;
    if (!json_is_object(book)) {
        h->report_error(b->self, TF_ENOTFOUND, "%s: expected an order book for %s, found %s", ctx,
                        sym, b->host->json_type_name(book));
        return TF_ENOTFOUND;
    }
    const char *coin = json_string_value(json_object_get(book, "order_currency"));
    if (coin && strcasecmp(coin, sym) != 0) {
        h->report_error(b->self, TF_EVALUE, "%s: order_currency: expected \"%s\", found \"%s\"",
                        ctx, sym, coin);
        return TF_EVALUE;
    }
    int rc = best_price(b, ctx, book, "bids", true, &q->bid);
    if (rc == TF_OK)
        rc = best_price(b, ctx, book, "asks", false, &q->ask);
    if (rc == TF_OK && q->bid > q->ask) {
        h->report_error(b->self, TF_EVALUE,
                        "%s: crossed book: expected best bid <= best ask, found bid %.15g > ask "
                        "%.15g",
                        ctx, q->bid, q->ask);
        rc = TF_EVALUE;
    }
    return rc;
}

/* ---- records ---- */

/* Every price field goes through the guard, even after one failed, so each keeps its own
 * last value and held jump. TF_OK, TF_EVALUE (rejected: counted and logged by the guard) or
 * TF_ENOMEM. */
static int plausible(bithumb *b, const char *sym, const bt_quote *q)
{
    int rc = tf_plaus_check(&b->guard, sym, "last", q->last);
    if (b->book) {
        int bid = tf_plaus_check(&b->guard, sym, "bid", q->bid);
        int ask = tf_plaus_check(&b->guard, sym, "ask", q->ask);
        rc = rc ? rc : bid ? bid : ask;
    }
    return rc;
}

/* A quote the guard rejects is skipped, not failed: it is counted in its own metric and the
 * tick goes on (TF_OK without a record). */
static int emit(bithumb *b, tf_batch *out, const char *sym, const bt_quote *q)
{
    const tf_host *h = b->host;
    int checked = plausible(b, sym, q);
    if (checked != TF_OK)
        return checked == TF_EVALUE ? TF_OK : checked;
    tf_record *r = h->record_new(out, "ticker");
    if (!r)
        return TF_ENOMEM;
    int rc = h->record_set_string(r, "exchange", b->exchange);
    rc = rc ? rc : h->record_set_string(r, "market", "spot");
    rc = rc ? rc : h->record_set_string(r, "symbol", sym);
    rc = rc ? rc : h->record_set_string(r, "quote", "KRW");
    rc = rc ? rc : h->record_set_double(r, "last", q->last);
    if (b->book) {
        rc = rc ? rc : h->record_set_double(r, "bid", q->bid);
        rc = rc ? rc : h->record_set_double(r, "ask", q->ask);
    }
    if (q->has_volume)
        rc = rc ? rc : h->record_set_double(r, "volume_24h", q->volume);
    rc = rc ? rc : h->record_set_ts(r, "ts_exchange", q->ts_exchange);
    rc = rc ? rc : h->record_set_ts(r, "ts_received", q->ts_received);
    if (rc != TF_OK) /* never leave a half record behind */
        h->batch_remove(out, h->batch_count(out) - 1);
    return rc;
}

/* Outcome of a tick over several coins: TF_OK when a record was emitted or nothing failed,
 * otherwise the last error (already reported). */
typedef struct bt_tally {
    size_t emitted;
    int last_error;
} bt_tally;

static void tally(bt_tally *t, int rc)
{
    if (rc == TF_OK)
        t->emitted++;
    else
        t->last_error = rc;
}

static int tally_result(const bt_tally *t)
{
    return t->emitted > 0 || t->last_error == TF_OK ? TF_OK : t->last_error;
}

/* ---- one coin per request: /public/ticker/{SYM}_KRW and /public/orderbook/{SYM}_KRW ---- */

static int collect_one(bithumb *b, const char *sym, tf_batch *out)
{
    bt_reply t = {0};
    bt_reply k = {0};
    bt_quote q = {0};
    char path[BT_PATH_MAX];
    char ctx[BT_CTX_MAX];
    snprintf(path, sizeof path, "/public/ticker/%s_KRW", sym);
    snprintf(ctx, sizeof ctx, "%s %s %s", b->exchange, path, sym);
    int rc = bt_fetch(b, path, "", &t);
    if (rc == TF_OK)
        rc = parse_ticker(b, ctx, t.data, &q);
    if (rc == TF_OK)
        rc = get_timestamp(b, ctx, t.data, "date", t.received_ms, &q.ts_exchange);
    q.ts_received = t.received_ms;
    if (rc != TF_OK || !b->book)
        goto out;
    snprintf(path, sizeof path, "/public/orderbook/%s_KRW", sym);
    snprintf(ctx, sizeof ctx, "%s %s %s", b->exchange, path, sym);
    rc = bt_fetch(b, path, BT_BOOK_QUERY, &k);
    int64_t book_ts = 0;
    if (rc == TF_OK)
        rc = get_timestamp(b, ctx, k.data, "timestamp", k.received_ms, &book_ts);
    if (rc == TF_OK)
        rc = parse_book(b, ctx, sym, k.data, &q);
out:
    if (rc == TF_OK)
        rc = emit(b, out, sym, &q);
    json_decref(t.root);
    json_decref(k.root);
    return rc;
}

/* ---- every coin in one request: /public/ticker/ALL_KRW and /public/orderbook/ALL_KRW ---- */

/* The two ALL_KRW replies of one tick. */
typedef struct bt_all {
    bt_reply ticker;
    bt_reply book;
    int64_t ts_exchange; /* data.date of the ticker reply */
} bt_all;

static int collect_coin(bithumb *b, const bt_all *all, const char *sym, tf_batch *out)
{
    const tf_host *h = b->host;
    char ctx[BT_CTX_MAX];
    snprintf(ctx, sizeof ctx, "%s /public/ticker/ALL_KRW %s", b->exchange, sym);
    const json_t *t = json_object_get(all->ticker.data, sym);
    if (!json_is_object(t)) {
        /* Absent, or listed as [] (an inactive coin): nothing to publish for it. */
        h->report_error(b->self, TF_ENOTFOUND, "%s: expected a ticker for %s, found %s", ctx, sym,
                        b->host->json_type_name(t));
        return TF_ENOTFOUND;
    }
    bt_quote q = {.ts_exchange = all->ts_exchange, .ts_received = all->ticker.received_ms};
    int rc = parse_ticker(b, ctx, t, &q);
    if (rc == TF_OK && b->book) {
        snprintf(ctx, sizeof ctx, "%s /public/orderbook/ALL_KRW %s", b->exchange, sym);
        rc = parse_book(b, ctx, sym, json_object_get(all->book.data, sym), &q);
    }
    if (rc == TF_OK)
        rc = emit(b, out, sym, &q);
    return rc;
}

static int fetch_all(bithumb *b, bt_all *all)
{
    char ctx[BT_CTX_MAX];
    snprintf(ctx, sizeof ctx, "%s /public/ticker/ALL_KRW", b->exchange);
    int rc = bt_fetch(b, "/public/ticker/ALL_KRW", "", &all->ticker);
    if (rc == TF_OK)
        rc = get_timestamp(b, ctx, all->ticker.data, "date", all->ticker.received_ms,
                           &all->ts_exchange);
    if (rc != TF_OK || !b->book)
        return rc;
    snprintf(ctx, sizeof ctx, "%s /public/orderbook/ALL_KRW", b->exchange);
    rc = bt_fetch(b, "/public/orderbook/ALL_KRW", BT_BOOK_QUERY, &all->book);
    int64_t book_ts = 0;
    if (rc == TF_OK)
        rc = get_timestamp(b, ctx, all->book.data, "timestamp", all->book.received_ms, &book_ts);
    return rc;
}

/* `symbols` (n of them) are the coins wanted when not `every`. */
static int collect_all(bithumb *b, char (*symbols)[BT_SYMBOL_MAX], size_t n, tf_batch *out)
{
    bt_all all = {0};
    bt_tally t = {0};
    int rc = fetch_all(b, &all);
    if (rc != TF_OK)
        goto out;
    if (b->every) {
        /* data holds the coins plus a sibling "date" string; inactive coins are [] (skipped). */
        const char *key;
        const json_t *v;
        json_object_foreach(all.ticker.data, key, v)
        {
            if (json_is_object(v) && strlen(key) < BT_SYMBOL_MAX)
                tally(&t, collect_coin(b, &all, key, out));
        }
        if (t.emitted == 0 && t.last_error == TF_OK) {
            t.last_error = TF_ENOTFOUND;
            b->host->report_error(b->self, TF_ENOTFOUND,
                                  "%s /public/ticker/ALL_KRW: expected at least one active KRW "
                                  "market in data, found none",
                                  b->exchange);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            tally(&t, collect_coin(b, &all, symbols[i], out));
    }
    rc = tally_result(&t);
out:
    json_decref(all.ticker.root);
    json_decref(all.book.root);
    return rc;
}

/* ---- the coins of one tick ---- */

/* Appends `s` upper-cased unless it is not a coin code or already listed. */
static void add_coin(char (*list)[BT_SYMBOL_MAX], size_t *n, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len >= BT_SYMBOL_MAX)
        return;
    char coin[BT_SYMBOL_MAX];
    for (size_t k = 0; k <= len; k++) {
        if (k < len && !isalnum((unsigned char)s[k]))
            return;
        coin[k] = (char)toupper((unsigned char)s[k]);
    }
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i], coin) == 0)
            return;
    }
    memcpy(list[(*n)++], coin, len + 1);
}

/* The configured coins plus the pipeline's symbol interest (coins with an open position,
 * set by the positions transform), each once. malloc'd (caller frees); NULL without memory. */
static char (*tick_coins(bithumb *b, size_t *n))[BT_SYMBOL_MAX]
{
    json_t *interest = TF_HOST_HAS(b->host, interest_get) ? b->host->interest_get(b->self) : NULL;
    char(*list)[BT_SYMBOL_MAX] = calloc(b->n_symbols + json_array_size(interest), sizeof *list);
    *n = 0;
    for (size_t i = 0; list && i < b->n_symbols; i++)
        add_coin(list, n, b->symbols[i]);
    size_t i;
    json_t *v;
    json_array_foreach(interest, i, v)
    {
        if (list)
            add_coin(list, n, json_string_value(v));
    }
    json_decref(interest);
    return list;
}

static int bithumb_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    bithumb *b = instance;
    (void)tick;
    if (b->every)
        return collect_all(b, NULL, 0, out);
    size_t n = 0;
    char(*coins)[BT_SYMBOL_MAX] = tick_coins(b, &n);
    if (!coins)
        return TF_ENOMEM;
    int rc;
    if (n > BT_SINGLE_MAX) {
        rc = collect_all(b, coins, n, out);
    } else {
        bt_tally t = {0};
        for (size_t i = 0; i < n; i++)
            tally(&t, collect_one(b, coins[i], out));
        rc = tally_result(&t);
    }
    free(coins);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "bithumb",
    .kind = TF_KIND_SOURCE,
    .description = "Bithumb KRW spot tickers (last, best bid/ask, 24 h volume) from public REST v1",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = bithumb_init,
    .destroy = bithumb_destroy,
    .collect = bithumb_collect,
};
