/*
 * `binance_futures` source: Binance USDⓈ-M perpetual tickers from three public REST endpoints
 * (bookTicker: bid/ask, premiumIndex: mark/index/funding, ticker/price: last), one request per
 * endpoint per tick whatever the number of symbols. Layouts and limits: NOTES.md section 2a.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tickflow/plausible.h>
#include <tickflow/tickflow.h>

#define BF_ASSET_MAX       24 /* base or quote asset buffer, NUL included */
#define BF_SYMBOL_MAX      (2 * BF_ASSET_MAX)
#define BF_FUTURE_SLACK_MS 5000 /* a payload clock may run ahead of ours by this much */
#define BF_URL_MAX         512
#define BF_CTX_MAX         192
#define BF_ERR_MAX         256
#define BF_HOST_MAX        256

enum bf_endpoint { BF_BOOK, BF_PREMIUM, BF_PRICE, BF_N_ENDPOINTS };

static const char *const bf_paths[BF_N_ENDPOINTS] = {
    "/fapi/v1/ticker/bookTicker",
    "/fapi/v1/premiumIndex",
    "/fapi/v1/ticker/price",
};

typedef struct binance_futures {
    const tf_host *host;  /* borrowed, outlives the instance */
    tf_instance *self;    /* borrowed */
    char *base_url;       /* owned, without trailing '/' */
    const char *exchange; /* borrowed from options */
    char quote[BF_ASSET_MAX];
    char (*bases)[BF_ASSET_MAX]; /* owned, upper case; empty when `every` */
    size_t n_bases;
    bool every; /* symbols: "*" = every perpetual with this quote */
    int64_t timeout_ms;
    int64_t max_age_ms;
    tf_metric *used_weight;       /* tickflow_binance_used_weight{host} */
    char host_label[BF_HOST_MAX]; /* label value: host[:port] of base_url */
    int64_t retry_until_ms;       /* wall clock end of the last Retry-After received; 0 = none */
    long retry_status;            /* the status (429/418) that set it */
    long long retry_s;            /* that Retry-After, in seconds */
    tf_plaus guard;               /* owned: sane ranges and jumps of every price field */
} binance_futures;

/* The three replies of one tick, each indexed by contract symbol (values borrowed from the
 * parsed bodies, which the index holds references to). */
typedef struct bf_replies {
    json_t *index[BF_N_ENDPOINTS];
    int64_t received_ms[BF_N_ENDPOINTS];
} bf_replies;

typedef struct bf_quote {
    double bid;
    double ask;
    double last;
    double mark;
    double index;
    double funding;
    int64_t next_funding_ts;
    int64_t ts_exchange; /* newest `time` of the three */
    int64_t ts_received;
} bf_quote;

static const tf_option_def options[] = {
    {"base_url", TF_OPT_STRING, "https://fapi.binance.com", 0,
     "Root of the USDⓈ-M futures REST API (http:// or https://), e.g. the fake exchange in tests",
     0, NULL},
    {"exchange", TF_OPT_STRING, "binance", 0, "Value of the records' `exchange` field", 0, NULL},
    {"symbols", TF_OPT_LIST, "[BTC]", 0,
     "Base assets (BTC, ETH, ...) whose <base><quote> perpetual is read; \"*\" = every "
     "perpetual with that quote. One symbol uses ?symbol=, more use the bulk forms (one request "
     "per endpoint)",
     TF_OPT_STRING, NULL},
    {"quote", TF_OPT_STRING, "USDT", 0, "Quote (margin) asset of the perpetuals", 0, NULL},
    {"timeout", TF_OPT_DURATION, "5s", 0, "Time limit of each HTTP request", 0, NULL},
    {"max_age", TF_OPT_DURATION, "30s", 0,
     "Reject a payload whose exchange timestamp is older than this when it arrives", 0, NULL},
    /* USDT prices. BTC traded 15k-125k USDT in 2021-2025, ETH 900-4,900, XRP 0.3-3.6, SOL
     * 8-290; each range leaves a factor of ~5 or more each way. Another perpetual is only kept
     * between 1e-8 and 1e7 USDT. */
    {"price_min", TF_OPT_DOUBLE, "1e-8", 0, TF_PLAUS_DOC_MIN, 0, NULL},
    {"price_max", TF_OPT_DOUBLE, "1e7", 0, TF_PLAUS_DOC_MAX, 0, NULL},
    {"price_bounds", TF_OPT_MAP,
     "{BTC: [1e4, 1e6], ETH: [200, 5e4], XRP: [0.05, 50], SOL: [2, 5000], USDT: [0.5, 2]}", 0,
     TF_PLAUS_DOC_BOUNDS, TF_OPT_LIST, NULL},
    {"max_jump", TF_OPT_DOUBLE, "0.2", 0, TF_PLAUS_DOC_JUMP, 0, NULL},
    {"jump_tolerance", TF_OPT_DOUBLE, "0.02", 0, TF_PLAUS_DOC_TOLERANCE, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- options ---- */

static int init_base_url(binance_futures *f, const char *url)
{
    const tf_host *h = f->host;
    int rc = h->base_url(f->self, "base_url", url, BF_URL_MAX - 64, &f->base_url);
    if (rc != TF_OK)
        return rc;
    const char *host = strstr(f->base_url, "://") + 3;
    size_t host_len = strcspn(host, "/?#");
    if (host_len >= sizeof f->host_label) {
        h->log(f->self, TF_LOG_ERROR, "base_url: expected at most %d characters, found %zu",
               BF_URL_MAX - 64, strlen(f->base_url));
        return TF_EINVAL;
    }
    memcpy(f->host_label, host, host_len);
    f->host_label[host_len] = '\0';
    return TF_OK;
}

/* An asset code as Binance writes it ("BTC", "1000PEPE"); copied upper case into out. */
static bool asset_code(const char *s, char out[BF_ASSET_MAX])
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len >= BF_ASSET_MAX)
        return false;
    for (size_t k = 0; k < len; k++) {
        if (!isalnum((unsigned char)s[k]))
            return false;
        out[k] = (char)toupper((unsigned char)s[k]);
    }
    out[len] = '\0';
    return true;
}

static int init_base(binance_futures *f, size_t i, const json_t *item)
{
    const tf_host *h = f->host;
    const char *s = json_string_value(item);
    if (!asset_code(s, f->bases[i])) {
        h->log(f->self, TF_LOG_ERROR,
               "symbols[%zu]: expected a base asset of 1 to %d letters or digits (e.g. BTC), found "
               "\"%s\"",
               i, BF_ASSET_MAX - 1, s ? s : f->host->json_type_name(item));
        return TF_EINVAL;
    }
    for (size_t k = 0; k < i; k++) {
        if (strcmp(f->bases[k], f->bases[i]) == 0) {
            h->log(f->self, TF_LOG_ERROR,
                   "symbols[%zu]: expected each asset once, found %s again (first at "
                   "symbols[%zu])",
                   i, f->bases[i], k);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int init_symbols(binance_futures *f, const json_t *list)
{
    size_t n = json_array_size(list);
    if (n == 0) {
        f->host->log(f->self, TF_LOG_ERROR,
                     "symbols: expected at least one base asset (or \"*\"), found an empty list");
        return TF_EINVAL;
    }
    const char *first = json_string_value(json_array_get(list, 0));
    if (n == 1 && first && strcmp(first, "*") == 0) {
        f->every = true;
        return TF_OK;
    }
    f->bases = calloc(n, sizeof *f->bases);
    if (!f->bases)
        return TF_ENOMEM;
    f->n_bases = n;
    for (size_t i = 0; i < n; i++) {
        const char *item = json_string_value(json_array_get(list, i));
        if (item && strcmp(item, "*") == 0) {
            f->host->log(f->self, TF_LOG_ERROR,
                         "symbols[%zu]: expected \"*\" (every perpetual) as the only item, found "
                         "it with %zu other items",
                         i, n - 1);
            return TF_EINVAL;
        }
        int rc = init_base(f, i, json_array_get(list, i));
        if (rc != TF_OK)
            return rc;
    }
    return TF_OK;
}

static int init_scalars(binance_futures *f, const tf_options *opts)
{
    const tf_host *h = f->host;
    const char *quote = h->opt_string(opts, "quote");
    if (!asset_code(quote, f->quote)) {
        h->log(f->self, TF_LOG_ERROR,
               "quote: expected an asset of 1 to %d letters or digits such as USDT, found \"%s\"",
               BF_ASSET_MAX - 1, quote ? quote : "");
        return TF_EINVAL;
    }
    if (!f->exchange || !f->exchange[0]) {
        h->log(f->self, TF_LOG_ERROR, "exchange: expected a name such as \"binance\", found \"\"");
        return TF_EINVAL;
    }
    int rc = h->opt_positive_duration(f->self, opts, "timeout", &f->timeout_ms);
    if (rc == TF_OK)
        rc = h->opt_positive_duration(f->self, opts, "max_age", &f->max_age_ms);
    return rc;
}

static void bf_destroy(void *instance)
{
    binance_futures *f = instance;
    if (!f)
        return;
    free(f->base_url);
    free(f->bases);
    tf_plaus_free(&f->guard);
    free(f);
}

static int bf_init(const tf_host *host, tf_instance *self, const tf_options *opts, void **instance)
{
    static const char *const labels[] = {"host", NULL};
    binance_futures *f = calloc(1, sizeof *f);
    if (!f)
        return TF_ENOMEM;
    f->host = host;
    f->self = self;
    f->exchange = host->opt_string(opts, "exchange");
    int rc = init_base_url(f, host->opt_string(opts, "base_url"));
    if (rc == TF_OK)
        rc = init_symbols(f, host->opt_json(opts, "symbols"));
    if (rc == TF_OK)
        rc = init_scalars(f, opts);
    if (rc == TF_OK) {
        tf_plaus_config cfg = tf_plaus_config_from(host, opts, f->exchange);
        rc = tf_plaus_init(&f->guard, host, self, &cfg);
    }
    if (rc != TF_OK)
        goto fail;
    /* Binance sends the IP's request weight used this minute (limit 2400) on every reply. */
    f->used_weight = host->metric_register(
        self, TF_METRIC_GAUGE, "tickflow_binance_used_weight",
        "Request weight used this minute by this IP, from Binance's X-MBX-USED-WEIGHT-1M header",
        labels, NULL, 0);
    *instance = f;
    return TF_OK;
fail:
    bf_destroy(f);
    return rc;
}

/* ---- HTTP replies ---- */

static void export_weight(binance_futures *f, const tf_http_response *r)
{
    const char *v = f->host->http_header(r, "X-MBX-USED-WEIGHT-1M");
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 15)
        return;
    /* NULL-terminated although the SDK asks for one value per label: the host's copy loop
     * (tf_instance.c with_pipeline) reads until NULL. */
    const char *labels[] = {f->host_label, NULL};
    f->host->metric_set(f->used_weight, f->self, labels, strtod(v, NULL));
}

/* Binance's error body {"code": -1121, "msg": "..."}; false when the body is something else. */
static bool venue_error(const json_t *root, long long *code, const char **msg)
{
    const json_t *c = json_object_get(root, "code");
    const json_t *m = json_object_get(root, "msg");
    if (!json_is_integer(c) || !json_is_string(m))
        return false;
    *code = (long long)json_integer_value(c);
    *msg = json_string_value(m);
    return true;
}

/* 429 (limit hit) and 418 (IP banned after ignored 429s): the core now refuses requests to the
 * host until Retry-After has passed; remember until when, for the next ticks' messages. */
static int rate_limited(binance_futures *f, const tf_fetch *ft)
{
    const tf_host *h = f->host;
    const char *ctx = ft->context;
    long status = ft->status;
    const char *retry = h->http_header(ft->response, "Retry-After");
    long long code = 0;
    const char *msg = "no Binance error body";
    venue_error(ft->root, &code, &msg);
    if (retry && *retry && strspn(retry, "0123456789") == strlen(retry) && strlen(retry) < 10) {
        f->retry_s = strtoll(retry, NULL, 10);
        f->retry_until_ms = ft->received_ms + f->retry_s * 1000;
        f->retry_status = status;
    }
    h->report_error(f->self, TF_ERATELIMIT,
                    "%s: rate limited: HTTP %ld (code %lld: %s), %s%s%s; no request to %s until "
                    "then",
                    ctx, status, code, msg,
                    retry ? "Retry-After " : "no Retry-After (default backoff)", retry ? retry : "",
                    retry ? " s" : "", f->host_label);
    return TF_ERATELIMIT;
}

/* A non-2xx reply other than 429/418. A {"code","msg"} body on a 4xx is the API refusing the
 * call (e.g. 400 -1121 Invalid symbol); 5xx and bodies that are not Binance's stay HTTP errors. */
static int http_error(binance_futures *f, const tf_fetch *ft)
{
    long long code = 0;
    const char *msg = NULL;
    if (!venue_error(ft->root, &code, &msg))
        return f->host->fetch_http_error(f->self, ft, "200");
    int rc = ft->status < 500 ? TF_EAPI : TF_EHTTP;
    f->host->report_error(f->self, rc,
                          "%s: expected HTTP 200, found HTTP %ld with Binance error %lld (%s)",
                          ft->context, ft->status, code, msg);
    return rc;
}

/* The core's own messages name "this host"; these name it and the Retry-After in force. The
 * other failures without a response are reported by fetch_json. */
static void report_limits(binance_futures *f, const char *ctx, int rc, int64_t now)
{
    const tf_host *h = f->host;
    if (rc == TF_ECIRCUIT)
        h->report_error(f->self, rc,
                        "%s: no request made: the circuit breaker for %s is open after repeated "
                        "failures",
                        ctx, f->host_label);
    else if (f->retry_until_ms > now)
        h->report_error(f->self, rc,
                        "%s: no request made: rate limited: Retry-After %lld s of an HTTP %ld "
                        "from %s, in force until %lld (epoch ms)",
                        ctx, f->retry_s, f->retry_status, f->host_label,
                        (long long)f->retry_until_ms);
    else
        h->report_error(f->self, rc,
                        "%s: no request made: rate limited (a Retry-After from %s is in "
                        "force, or no rate-limit token before the timeout)",
                        ctx, f->host_label);
}

/* Indexes a reply (one object, or an array of them) by its "symbol" members. New reference. */
static int index_reply(binance_futures *f, const char *ctx, json_t *root, json_t **out)
{
    const tf_host *h = f->host;
    long long code = 0;
    const char *msg = NULL;
    if (venue_error(root, &code, &msg) && !json_object_get(root, "symbol")) {
        h->report_error(f->self, TF_EAPI, "%s: expected tickers, found Binance error %lld (%s)",
                        ctx, code, msg);
        return TF_EAPI;
    }
    if (!json_is_object(root) && !json_is_array(root)) {
        h->report_error(f->self, TF_EPARSE, "%s: expected an object or an array, found %s", ctx,
                        f->host->json_type_name(root));
        return TF_EPARSE;
    }
    json_t *idx = json_object();
    if (!idx)
        return TF_ENOMEM;
    size_t n = json_is_array(root) ? json_array_size(root) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_is_array(root) ? json_array_get(root, i) : root;
        const char *symbol = json_string_value(json_object_get(item, "symbol"));
        if (symbol && json_object_set(idx, symbol, item) != 0) {
            json_decref(idx);
            return TF_ENOMEM;
        }
    }
    *out = idx;
    return TF_OK;
}

/* Non-2xx bodies are parsed only to quote Binance's code and message. */
static int reply_error(binance_futures *f, const tf_fetch *ft)
{
    return ft->status == 429 || ft->status == 418 ? rate_limited(f, ft) : http_error(f, ft);
}

/* `bases` (n_bases of them; none when `every`) are the tick's assets: one uses ?symbol=. */
static int fetch(binance_futures *f, enum bf_endpoint ep, char (*bases)[BF_ASSET_MAX],
                 size_t n_bases, bf_replies *out)
{
    const tf_host *h = f->host;
    char ctx[BF_CTX_MAX];
    char url[BF_URL_MAX];
    snprintf(ctx, sizeof ctx, "%s %s", f->exchange, bf_paths[ep]);
    int n = n_bases == 1 ? snprintf(url, sizeof url, "%s%s?symbol=%s%s", f->base_url, bf_paths[ep],
                                    bases[0], f->quote)
                         : snprintf(url, sizeof url, "%s%s", f->base_url, bf_paths[ep]);
    if (n < 0 || (size_t)n >= sizeof url) {
        h->report_error(f->self, TF_EINVAL, "%s: URL longer than %d characters", ctx, BF_URL_MAX);
        return TF_EINVAL;
    }
    tf_fetch ft = {.struct_size = sizeof ft, .context = ctx, .flags = TF_FETCH_OWN_LIMITS};
    int rc = h->fetch_json(f->self,
                           &(tf_http_request){.struct_size = sizeof(tf_http_request),
                                              .url = url,
                                              .timeout_ms = f->timeout_ms},
                           &ft);
    out->received_ms[ep] = ft.received_ms;
    if (ft.status == 0 && (rc == TF_ERATELIMIT || rc == TF_ECIRCUIT))
        report_limits(f, ctx, rc, ft.received_ms);
    if (ft.response)
        export_weight(f, ft.response);
    if (rc == TF_OK)
        rc = index_reply(f, ctx, ft.root, &out->index[ep]);
    else if (ft.status != 0 && (ft.status < 200 || ft.status > 299))
        rc = reply_error(f, &ft);
    json_decref(ft.root);
    h->http_free(ft.response);
    return rc;
}

/* ---- values ---- */

static int get_number(binance_futures *f, const char *ctx, const json_t *obj, const char *key,
                      unsigned flags, double *out)
{
    char err[BF_ERR_MAX];
    int rc = f->host->json_number(json_object_get(obj, key), flags, out, err, sizeof err);
    if (rc != TF_OK)
        f->host->report_error(f->self, rc, "%s: %s: %s", ctx, key, err);
    return rc;
}

/* An epoch-ms `time` within max_age before receipt and at most BF_FUTURE_SLACK_MS after it;
 * the newest one becomes ts_exchange. */
static int get_time(binance_futures *f, const char *ctx, const json_t *obj, int64_t received,
                    bf_quote *q)
{
    const tf_host *h = f->host;
    char err[BF_ERR_MAX];
    int64_t ts = 0;
    int rc = h->json_int64(json_object_get(obj, "time"), TF_NUM_POSITIVE, &ts, err, sizeof err);
    if (rc != TF_OK) {
        h->report_error(f->self, rc, "%s: time: %s", ctx, err);
        return rc;
    }
    if (ts < received - f->max_age_ms) {
        h->report_error(f->self, TF_EVALUE,
                        "%s: time: stale: expected at most %lld ms before receipt (max_age), "
                        "found %lld ms (%lld)",
                        ctx, (long long)f->max_age_ms, (long long)(received - ts), (long long)ts);
        return TF_EVALUE;
    }
    if (ts > received + BF_FUTURE_SLACK_MS) {
        h->report_error(f->self, TF_EVALUE,
                        "%s: time: expected at most %d ms in the future, found %lld ms (%lld)", ctx,
                        BF_FUTURE_SLACK_MS, (long long)(ts - received), (long long)ts);
        return TF_EVALUE;
    }
    if (ts > q->ts_exchange)
        q->ts_exchange = ts;
    return TF_OK;
}

/* The item for `symbol` in one endpoint's reply; reported when absent. */
static const json_t *item_of(binance_futures *f, const bf_replies *rep, enum bf_endpoint ep,
                             const char *symbol, const char *base, char *ctx, size_t ctx_size)
{
    snprintf(ctx, ctx_size, "%s %s %s", f->exchange, bf_paths[ep], base);
    const json_t *item = json_object_get(rep->index[ep], symbol);
    if (!item)
        f->host->report_error(f->self, TF_ENOTFOUND, "%s: expected %s in the response, found none",
                              ctx, symbol);
    return item;
}

static int parse_book(binance_futures *f, const bf_replies *rep, const char *symbol,
                      const char *base, bf_quote *q)
{
    char ctx[BF_CTX_MAX];
    const json_t *it = item_of(f, rep, BF_BOOK, symbol, base, ctx, sizeof ctx);
    if (!it)
        return TF_ENOTFOUND;
    /* lastUpdateId (some versions send it) can exceed 2^53: it is never read. */
    int rc = get_number(f, ctx, it, "bidPrice", TF_NUM_POSITIVE, &q->bid);
    rc = rc ? rc : get_number(f, ctx, it, "askPrice", TF_NUM_POSITIVE, &q->ask);
    rc = rc ? rc : get_time(f, ctx, it, rep->received_ms[BF_BOOK], q);
    if (rc == TF_OK && q->bid > q->ask) {
        f->host->report_error(f->self, TF_EVALUE,
                              "%s: crossed book: expected bidPrice <= askPrice, found %.15g > "
                              "%.15g",
                              ctx, q->bid, q->ask);
        rc = TF_EVALUE;
    }
    return rc;
}

static int parse_premium(binance_futures *f, const bf_replies *rep, const char *symbol,
                         const char *base, bf_quote *q)
{
    const tf_host *h = f->host;
    char ctx[BF_CTX_MAX];
    char err[BF_ERR_MAX];
    const json_t *it = item_of(f, rep, BF_PREMIUM, symbol, base, ctx, sizeof ctx);
    if (!it)
        return TF_ENOTFOUND;
    int rc = get_number(f, ctx, it, "markPrice", TF_NUM_POSITIVE, &q->mark);
    rc = rc ? rc : get_number(f, ctx, it, "indexPrice", TF_NUM_POSITIVE, &q->index);
    /* Funding may be zero or negative; "" (what a delivery contract sends) is still refused. */
    rc = rc ? rc : get_number(f, ctx, it, "lastFundingRate", 0, &q->funding);
    if (rc == TF_OK) {
        rc = h->json_int64(json_object_get(it, "nextFundingTime"), TF_NUM_POSITIVE,
                           &q->next_funding_ts, err, sizeof err);
        if (rc != TF_OK)
            h->report_error(f->self, rc, "%s: nextFundingTime: %s", ctx, err);
    }
    return rc ? rc : get_time(f, ctx, it, rep->received_ms[BF_PREMIUM], q);
}

static int parse_price(binance_futures *f, const bf_replies *rep, const char *symbol,
                       const char *base, bf_quote *q)
{
    char ctx[BF_CTX_MAX];
    const json_t *it = item_of(f, rep, BF_PRICE, symbol, base, ctx, sizeof ctx);
    if (!it)
        return TF_ENOTFOUND;
    int rc = get_number(f, ctx, it, "price", TF_NUM_POSITIVE, &q->last);
    return rc ? rc : get_time(f, ctx, it, rep->received_ms[BF_PRICE], q);
}

/* ---- records ---- */

/* Every price field goes through the guard, even after one failed, so each keeps its own
 * last value and held jump. TF_OK, TF_EVALUE (rejected: counted and logged by the guard) or
 * TF_ENOMEM. */
static int plausible(binance_futures *f, const char *base, const bf_quote *q)
{
    const struct {
        const char *name;
        double v;
    } fields[] = {{"last", q->last},
                  {"bid", q->bid},
                  {"ask", q->ask},
                  {"mark_price", q->mark},
                  {"index_price", q->index}};
    int rc = TF_OK;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int one = tf_plaus_check(&f->guard, base, fields[i].name, fields[i].v);
        rc = rc ? rc : one;
    }
    return rc;
}

/* A quote the guard rejects is skipped, not failed: it is counted in its own metric and the
 * tick goes on (TF_OK without a record). */
static int emit(binance_futures *f, tf_batch *out, const char *base, const bf_quote *q)
{
    const tf_host *h = f->host;
    int checked = plausible(f, base, q);
    if (checked != TF_OK)
        return checked == TF_EVALUE ? TF_OK : checked;
    tf_record *r = h->record_new(out, "ticker");
    if (!r)
        return TF_ENOMEM;
    int rc = h->record_set_string(r, "exchange", f->exchange);
    rc = rc ? rc : h->record_set_string(r, "market", "perp");
    rc = rc ? rc : h->record_set_string(r, "symbol", base);
    rc = rc ? rc : h->record_set_string(r, "quote", f->quote);
    rc = rc ? rc : h->record_set_double(r, "last", q->last);
    rc = rc ? rc : h->record_set_double(r, "bid", q->bid);
    rc = rc ? rc : h->record_set_double(r, "ask", q->ask);
    rc = rc ? rc : h->record_set_double(r, "mark_price", q->mark);
    rc = rc ? rc : h->record_set_double(r, "index_price", q->index);
    rc = rc ? rc : h->record_set_double(r, "funding_rate", q->funding);
    rc = rc ? rc : h->record_set_ts(r, "next_funding_ts", q->next_funding_ts);
    rc = rc ? rc : h->record_set_ts(r, "ts_exchange", q->ts_exchange);
    rc = rc ? rc : h->record_set_ts(r, "ts_received", q->ts_received);
    if (rc != TF_OK) /* never leave a half record behind */
        h->batch_remove(out, h->batch_count(out) - 1);
    return rc;
}

/* One contract: all three parts must be present and valid. */
static int collect_symbol(binance_futures *f, const bf_replies *rep, const char *base,
                          tf_batch *out)
{
    char symbol[BF_SYMBOL_MAX];
    snprintf(symbol, sizeof symbol, "%s%s", base, f->quote);
    bf_quote q = {.ts_received = rep->received_ms[BF_PRICE]};
    int rc = parse_book(f, rep, symbol, base, &q);
    rc = rc ? rc : parse_premium(f, rep, symbol, base, &q);
    rc = rc ? rc : parse_price(f, rep, symbol, base, &q);
    return rc ? rc : emit(f, out, base, &q);
}

/* The base asset of a perpetual with our quote: symbol == base + quote exactly, so a dated
 * quarterly (BTCUSDT_261225) or another margin asset (ETHUSDC) never matches. */
static bool perp_base(const binance_futures *f, const char *symbol, char base[BF_ASSET_MAX])
{
    size_t len = strlen(symbol);
    size_t qlen = strlen(f->quote);
    if (len <= qlen || len - qlen >= BF_ASSET_MAX || strcmp(symbol + len - qlen, f->quote) != 0)
        return false;
    memcpy(base, symbol, len - qlen);
    base[len - qlen] = '\0';
    for (size_t i = 0; base[i]; i++) {
        if (!isupper((unsigned char)base[i]) && !isdigit((unsigned char)base[i]))
            return false;
    }
    return true;
}

static int collect_symbols(binance_futures *f, const bf_replies *rep, char (*bases)[BF_ASSET_MAX],
                           size_t n_bases, tf_batch *out)
{
    size_t emitted = 0;
    int last_error = TF_OK;
    if (f->every) {
        const char *symbol;
        const json_t *item;
        json_object_foreach(rep->index[BF_BOOK], symbol, item)
        {
            char base[BF_ASSET_MAX];
            if (!perp_base(f, symbol, base))
                continue;
            int rc = collect_symbol(f, rep, base, out);
            emitted += rc == TF_OK;
            last_error = rc == TF_OK ? last_error : rc;
        }
        if (emitted == 0 && last_error == TF_OK) {
            last_error = TF_ENOTFOUND;
            f->host->report_error(f->self, TF_ENOTFOUND,
                                  "%s %s: expected at least one %s perpetual, found none",
                                  f->exchange, bf_paths[BF_BOOK], f->quote);
        }
    } else {
        for (size_t i = 0; i < n_bases; i++) {
            int rc = collect_symbol(f, rep, bases[i], out);
            emitted += rc == TF_OK;
            last_error = rc == TF_OK ? last_error : rc;
        }
    }
    return emitted > 0 ? TF_OK : last_error;
}

/* Appends `s` as an asset code unless it is not one or already listed. */
static void add_base(char (*list)[BF_ASSET_MAX], size_t *n, const char *s)
{
    char base[BF_ASSET_MAX];
    if (!asset_code(s, base))
        return;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i], base) == 0)
            return;
    }
    memcpy(list[(*n)++], base, strlen(base) + 1);
}

/* The configured bases plus the pipeline's symbol interest (bases with an open position, set
 * by the positions transform), each once. malloc'd (caller frees); NULL without memory. */
static char (*tick_bases(binance_futures *f, size_t *n))[BF_ASSET_MAX]
{
    json_t *interest = TF_HOST_HAS(f->host, interest_get) ? f->host->interest_get(f->self) : NULL;
    char(*list)[BF_ASSET_MAX] = calloc(f->n_bases + json_array_size(interest) + 1, sizeof *list);
    *n = 0;
    for (size_t i = 0; list && i < f->n_bases; i++)
        add_base(list, n, f->bases[i]);
    size_t i;
    json_t *v;
    json_array_foreach(interest, i, v)
    {
        if (list)
            add_base(list, n, json_string_value(v));
    }
    json_decref(interest);
    return list;
}

static int bf_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    binance_futures *f = instance;
    (void)tick;
    bf_replies rep = {0};
    size_t n_bases = 0;
    char(*bases)[BF_ASSET_MAX] = f->every ? NULL : tick_bases(f, &n_bases);
    if (!f->every && !bases)
        return TF_ENOMEM;
    int rc = TF_OK;
    /* A failed endpoint ends the tick: a record needs all three, and after a 429 the core
     * would refuse the remaining requests anyway. */
    for (int ep = 0; ep < BF_N_ENDPOINTS && rc == TF_OK; ep++)
        rc = fetch(f, (enum bf_endpoint)ep, bases, n_bases, &rep);
    if (rc == TF_OK)
        rc = collect_symbols(f, &rep, bases, n_bases, out);
    for (int ep = 0; ep < BF_N_ENDPOINTS; ep++)
        json_decref(rep.index[ep]);
    free(bases);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "binance_futures",
    .kind = TF_KIND_SOURCE,
    .description = "Binance USDⓈ-M perpetual tickers (bid/ask, last, mark, index, funding)",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = bf_init,
    .destroy = bf_destroy,
    .collect = bf_collect,
};
