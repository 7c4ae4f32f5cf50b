/*
 * `binance_positions` source: the account's USDⓈ-M futures positions from the signed endpoint
 * GET /fapi/v2/positionRisk (HMAC-SHA256, Binance's "SIGNED Endpoint security"), one request
 * per tick, one `exchange_position` record per contract. Optionally reconciles them with the
 * tickflow positions store (docs/positions.md): an open position whose contract is flat here
 * is reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tickflow/tickflow.h>

#include "sign.h"

#define BP_PATH       "/fapi/v2/positionRisk"
#define BP_URL_MAX    768
#define BP_QUERY_MAX  128
#define BP_KEY_MAX    256 /* Binance keys and secrets are 64 characters */
#define BP_HEADER_MAX (BP_KEY_MAX + 32)
#define BP_ASSET_MAX  24
#define BP_CTX_MAX    192
#define BP_ERR_MAX    256

/* The quote (margin) assets a USDⓈ-M contract symbol ends with, longest first. */
static const char *const bp_quotes[] = {"FDUSD", "USDT", "USDC", "BUSD"};

typedef struct binance_positions {
    const tf_host *host;    /* borrowed, outlives the instance */
    tf_instance *self;      /* borrowed */
    char *base_url;         /* owned, without trailing '/' */
    const char *exchange;   /* borrowed from options */
    const char *key_name;   /* borrowed from options */
    const char *opt_key;    /* borrowed secret option; NULL when unset */
    const char *opt_secret; /* borrowed secret option; NULL when unset */
    int64_t recv_window_ms;
    int64_t timeout_ms;
    tf_redis *redis;  /* owned; only with `reconcile` */
    json_t *reported; /* owned: ids already reported as open-but-flat -> true */
} binance_positions;

/* One contract of the reply, parsed before any record is made. */
typedef struct bp_position {
    char symbol[BP_ASSET_MAX];
    char quote[BP_ASSET_MAX];
    double amt;
    double entry;
    double mark;
    double pnl;
} bp_position;

static const tf_option_def options[] = {
    {"base_url", TF_OPT_STRING, "https://fapi.binance.com", 0,
     "Root of the USDⓈ-M futures REST API (http:// or https://), e.g. the fake exchange in tests",
     0, NULL},
    {"exchange", TF_OPT_STRING, "binance", 0, "Value of the records' `exchange` field", 0, NULL},
    {"key_name", TF_OPT_STRING, "main", 0,
     "Name of the Binance key pair in the encrypted key store (docs/security.md)", 0, NULL},
    {"api_key", TF_OPT_SECRET, NULL, 0,
     "API key from ${VAR} or ${file:/path}, used when the key store has no such entry (e.g. a "
     "Kubernetes secret mounted as a file); requires api_secret",
     0, NULL},
    {"api_secret", TF_OPT_SECRET, NULL, 0, "API secret matching api_key", 0, NULL},
    {"recv_window", TF_OPT_DURATION, "5s", 0,
     "Binance recvWindow: how long after its timestamp the request is still accepted (max 60s)", 0,
     NULL},
    {"timeout", TF_OPT_DURATION, "5s", 0, "Time limit of each HTTP request", 0, NULL},
    {"reconcile", TF_OPT_BOOL, "false", 0,
     "Also compare with the positions store (needs a redis: section): every open position whose "
     "global_exchange is this exchange and whose contract is flat here gives a `reconcile` "
     "record and an error",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- instance ---- */

static void bp_destroy(void *instance)
{
    binance_positions *p = instance;
    if (!p)
        return;
    if (p->redis)
        p->host->redis_close(p->redis);
    json_decref(p->reported);
    free(p->base_url);
    free(p);
}

static int init_keys(binance_positions *p, const tf_options *opts)
{
    const tf_host *h = p->host;
    if (sign_key_options(h, p->self, opts, &p->opt_key, &p->opt_secret) != TF_OK)
        return TF_EINVAL;
    if (!p->key_name || !p->key_name[0]) {
        h->log(p->self, TF_LOG_ERROR, "key_name: expected a key store entry name, found \"\"");
        return TF_EINVAL;
    }
    return TF_OK;
}

static int init_reconcile(binance_positions *p, const tf_options *opts)
{
    const tf_host *h = p->host;
    if (!h->opt_bool(opts, "reconcile"))
        return TF_OK;
    if (!TF_HOST_HAS(h, position_list)) {
        h->log(p->self, TF_LOG_ERROR,
               "reconcile: expected a runtime with the positions store, found an older host");
        return TF_EINVAL;
    }
    p->redis = h->redis_open(p->self);
    if (!p->redis) {
        h->log(p->self, TF_LOG_ERROR,
               "reconcile: expected a redis: section in the runtime settings (the positions "
               "store), found none");
        return TF_EINVAL;
    }
    p->reported = json_object();
    return p->reported ? TF_OK : TF_ENOMEM;
}

static int bp_init(const tf_host *host, tf_instance *self, const tf_options *opts, void **instance)
{
    binance_positions *p = calloc(1, sizeof *p);
    if (!p)
        return TF_ENOMEM;
    p->host = host;
    p->self = self;
    p->exchange = host->opt_string(opts, "exchange");
    p->key_name = host->opt_string(opts, "key_name");
    int rc = host->base_url(self, "base_url", host->opt_string(opts, "base_url"), BP_URL_MAX - 256,
                            &p->base_url);
    if (rc == TF_OK && (!p->exchange || !p->exchange[0])) {
        host->log(self, TF_LOG_ERROR, "exchange: expected a name such as \"binance\", found \"\"");
        rc = TF_EINVAL;
    }
    rc = rc ? rc : init_keys(p, opts);
    rc = rc ? rc : host->opt_positive_duration(self, opts, "timeout", &p->timeout_ms);
    rc = rc ? rc : host->opt_positive_duration(self, opts, "recv_window", &p->recv_window_ms);
    if (rc == TF_OK && p->recv_window_ms > 60000) {
        /* Binance refuses a recvWindow above 60000 ms (-1131). */
        host->log(self, TF_LOG_ERROR, "recv_window: expected at most 60s, found %lld ms",
                  (long long)p->recv_window_ms);
        rc = TF_EINVAL;
    }
    rc = rc ? rc : init_reconcile(p, opts);
    if (rc != TF_OK) {
        bp_destroy(p);
        return rc;
    }
    *instance = p;
    return TF_OK;
}

/* ---- keys ---- */

/* The key pair for this tick (sign.c: the key store, else the secret options). */
static int load_keys(binance_positions *p, const char *ctx, char *key, char *secret)
{
    return sign_load_keys(p->host, p->self, ctx, "binance", p->key_name, p->opt_key, p->opt_secret,
                          key, secret, BP_KEY_MAX);
}

/* ---- request ---- */

/* Binance's error body {"code": -1022, "msg": "..."}; false when the body is something else. */
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

/* A non-2xx reply. -1022 (bad signature), -2015 (bad key, IP or permission) and -1021
 * (timestamp outside recvWindow) come as 4xx with Binance's error body: TF_EAPI. */
static int reply_error(binance_positions *p, const tf_fetch *ft)
{
    long long code = 0;
    const char *msg = NULL;
    if (ft->status == 429 || ft->status == 418 || !venue_error(ft->root, &code, &msg))
        return p->host->fetch_http_error(p->self, ft, "200");
    int rc = ft->status < 500 ? TF_EAPI : TF_EHTTP;
    p->host->report_error(p->self, rc,
                          "%s: expected HTTP 200, found HTTP %ld with Binance error %lld (%s)",
                          ft->context, ft->status, code, msg);
    return rc;
}

/* Signs timestamp + recvWindow with the secret; the query, signature and header are built in
 * the caller's buffers. */
static int build_request(binance_positions *p, const char *ctx, int64_t now, const char *key,
                         const char *secret, char *url, char *header)
{
    char query[BP_QUERY_MAX];
    char sig[TF_SIGN_SHA256_HEX];
    int q = snprintf(query, sizeof query, "timestamp=%lld&recvWindow=%lld", (long long)now,
                     (long long)p->recv_window_ms);
    if (q < 0 || (size_t)q >= sizeof query ||
        sign_hmac_sha256_hex(secret, query, (size_t)q, sig, sizeof sig) != 0) {
        p->host->report_error(p->self, TF_ERR, "%s: could not sign the request (OpenSSL HMAC)",
                              ctx);
        return TF_ERR;
    }
    int u = snprintf(url, BP_URL_MAX, "%s%s?%s&signature=%s", p->base_url, BP_PATH, query, sig);
    int hd = snprintf(header, BP_HEADER_MAX, "X-MBX-APIKEY: %s", key);
    if (u < 0 || u >= BP_URL_MAX || hd < 0 || hd >= BP_HEADER_MAX) {
        p->host->report_error(p->self, TF_EINVAL, "%s: URL or header too long", ctx);
        return TF_EINVAL;
    }
    return TF_OK;
}

/* GETs the signed positionRisk; TF_OK and *root (new reference, an array) or a reported error.
 * The key pair and the header holding the key never outlive this call. */
static int fetch_positions(binance_positions *p, const char *ctx, json_t **root, int64_t *received)
{
    const tf_host *h = p->host;
    char key[BP_KEY_MAX];
    char secret[BP_KEY_MAX];
    char header[BP_HEADER_MAX];
    char url[BP_URL_MAX];
    tf_fetch ft = {.struct_size = sizeof ft, .context = ctx};
    int rc = load_keys(p, ctx, key, secret);
    rc = rc ? rc : build_request(p, ctx, h->now_ms(), key, secret, url, header);
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(key, sizeof key);
    if (rc != TF_OK)
        goto out;
    const char *const headers[] = {header, NULL};
    rc = h->fetch_json(p->self,
                       &(tf_http_request){.struct_size = sizeof(tf_http_request),
                                          .url = url,
                                          .headers = headers,
                                          .timeout_ms = p->timeout_ms},
                       &ft);
    *received = ft.received_ms;
    if (rc != TF_OK && ft.status != 0 && (ft.status < 200 || ft.status > 299))
        rc = reply_error(p, &ft);
    if (rc == TF_OK && !json_is_array(ft.root)) {
        long long code = 0;
        const char *msg = NULL;
        rc = venue_error(ft.root, &code, &msg) ? TF_EAPI : TF_EPARSE;
        if (rc == TF_EAPI)
            h->report_error(p->self, rc, "%s: expected positions, found Binance error %lld (%s)",
                            ctx, code, msg);
        else
            h->report_error(p->self, rc, "%s: expected an array of positions, found %s", ctx,
                            h->json_type_name(ft.root));
    }
    if (rc == TF_OK) {
        *root = ft.root;
        ft.root = NULL;
    }
out:
    explicit_bzero(header, sizeof header);
    json_decref(ft.root);
    h->http_free(ft.response);
    return rc;
}

/* ---- values ---- */

/* "BTCUSDT" -> BTC / USDT; false for a symbol without a known quote (or a dated contract). */
static bool split_symbol(const char *symbol, char *base, char *quote)
{
    size_t len = strlen(symbol);
    for (size_t i = 0; i < sizeof bp_quotes / sizeof bp_quotes[0]; i++) {
        size_t ql = strlen(bp_quotes[i]);
        if (len <= ql || len - ql >= BP_ASSET_MAX || strcmp(symbol + len - ql, bp_quotes[i]) != 0)
            continue;
        memcpy(base, symbol, len - ql);
        base[len - ql] = '\0';
        memcpy(quote, bp_quotes[i], ql + 1);
        return true;
    }
    return false;
}

static int get_number(binance_positions *p, const char *ctx, const json_t *it, const char *key,
                      unsigned flags, double *out)
{
    char err[BP_ERR_MAX];
    int rc = p->host->json_number(json_object_get(it, key), flags, out, err, sizeof err);
    if (rc != TF_OK)
        p->host->report_error(p->self, rc, "%s: %s: %s", ctx, key, err);
    return rc;
}

static int parse_position(binance_positions *p, const json_t *it, size_t i, bp_position *pos)
{
    const tf_host *h = p->host;
    char ctx[BP_CTX_MAX];
    const char *symbol = json_string_value(json_object_get(it, "symbol"));
    if (!symbol || !split_symbol(symbol, pos->symbol, pos->quote)) {
        snprintf(ctx, sizeof ctx, "%s %s [%zu]", p->exchange, BP_PATH, i);
        h->report_error(
            p->self, TF_EVALUE, "%s: symbol: expected <base>USDT/USDC/BUSD/FDUSD, found %s%s%s",
            ctx, symbol ? "\"" : "", symbol ? symbol : h->json_type_name(it), symbol ? "\"" : "");
        return TF_EVALUE;
    }
    snprintf(ctx, sizeof ctx, "%s %s %s", p->exchange, BP_PATH, symbol);
    int rc = get_number(p, ctx, it, "positionAmt", 0, &pos->amt);
    /* A flat contract has entryPrice "0.0"; the mark price is always quoted. */
    rc = rc ? rc : get_number(p, ctx, it, "entryPrice", TF_NUM_NONNEGATIVE, &pos->entry);
    rc = rc ? rc : get_number(p, ctx, it, "markPrice", TF_NUM_POSITIVE, &pos->mark);
    rc = rc ? rc : get_number(p, ctx, it, "unRealizedProfit", 0, &pos->pnl);
    if (rc == TF_OK && pos->amt != 0.0 && pos->entry == 0.0) {
        h->report_error(p->self, TF_EVALUE,
                        "%s: entryPrice: expected > 0 for a position of %.15g, found 0", ctx,
                        pos->amt);
        rc = TF_EVALUE;
    }
    return rc;
}

/* ---- records ---- */

static int emit_position(binance_positions *p, tf_batch *out, const bp_position *pos, int64_t ts)
{
    const tf_host *h = p->host;
    const char *side = pos->amt > 0 ? "long" : pos->amt < 0 ? "short" : "flat";
    tf_record *r = h->record_new(out, "exchange_position");
    if (!r)
        return TF_ENOMEM;
    int rc = h->record_set_string(r, "exchange", p->exchange);
    rc = rc ? rc : h->record_set_string(r, "symbol", pos->symbol);
    rc = rc ? rc : h->record_set_string(r, "quote", pos->quote);
    rc = rc ? rc : h->record_set_double(r, "position_amt", pos->amt);
    rc = rc ? rc : h->record_set_double(r, "entry_price", pos->entry);
    rc = rc ? rc : h->record_set_double(r, "mark_price", pos->mark);
    rc = rc ? rc : h->record_set_double(r, "unrealized_pnl", pos->pnl);
    rc = rc ? rc : h->record_set_string(r, "side", side);
    rc = rc ? rc : h->record_set_ts(r, "ts", ts);
    if (rc != TF_OK) /* never leave a half record behind */
        h->batch_remove(out, h->batch_count(out) - 1);
    return rc;
}

/* Marks a base asset as held (non-zero) in `held`. */
static int collect_positions(binance_positions *p, const json_t *root, int64_t ts, json_t *held,
                             tf_batch *out)
{
    size_t i;
    const json_t *it;
    int last_error = TF_OK;
    json_array_foreach(root, i, it)
    {
        bp_position pos = {0};
        int rc = parse_position(p, it, i, &pos);
        rc = rc ? rc : emit_position(p, out, &pos, ts);
        if (rc == TF_OK && pos.amt != 0.0 && json_object_set_new(held, pos.symbol, json_true()))
            rc = TF_ENOMEM;
        last_error = rc ? rc : last_error;
    }
    return last_error;
}

/* ---- reconciliation ---- */

static int emit_reconcile(binance_positions *p, tf_batch *out, const char *id, const char *symbol)
{
    const tf_host *h = p->host;
    tf_record *r = h->record_new(out, "reconcile");
    if (!r)
        return TF_ENOMEM;
    int rc = h->record_set_string(r, "id", id);
    rc = rc ? rc : h->record_set_string(r, "exchange", p->exchange);
    rc = rc ? rc : h->record_set_string(r, "symbol", symbol);
    rc = rc ? rc : h->record_set_string(r, "issue", "open_in_store_flat_on_exchange");
    if (rc != TF_OK)
        h->batch_remove(out, h->batch_count(out) - 1);
    return rc;
}

/* Every open position of this exchange whose base has no position here. The error is reported
 * once per id (until the mismatch goes away); the record comes on every tick it holds. */
static int reconcile(binance_positions *p, const json_t *held, tf_batch *out)
{
    const tf_host *h = p->host;
    json_t *list = NULL;
    int rc = h->position_list(p->self, p->redis, false, &list);
    if (rc != TF_OK) {
        h->report_error(p->self, rc,
                        "%s reconcile: expected the open positions from the store, found error %d",
                        p->exchange, rc);
        return rc;
    }
    json_t *seen = json_object();
    if (!seen) {
        json_decref(list);
        return TF_ENOMEM;
    }
    size_t i;
    json_t *pos;
    json_array_foreach(list, i, pos)
    {
        const char *id = json_string_value(json_object_get(pos, "id"));
        const char *symbol = json_string_value(json_object_get(pos, "symbol"));
        const char *global = json_string_value(json_object_get(pos, "global_exchange"));
        if (!id || !symbol || !global || strcmp(global, p->exchange) != 0 ||
            json_object_get(held, symbol))
            continue;
        int erc = emit_reconcile(p, out, id, symbol);
        rc = erc ? erc : rc;
        if (json_object_set_new(seen, id, json_true()) != 0 || json_object_get(p->reported, id))
            continue;
        /* Counted here, once; the tick itself succeeds (its records are valid). */
        h->report_error(p->self, TF_EVALUE,
                        "%s reconcile: position %s: expected a %s position on %s, found the "
                        "contract flat (open_in_store_flat_on_exchange)",
                        p->exchange, id, symbol, p->exchange);
    }
    /* Ids no longer mismatched are forgotten, so a recurrence is reported again. */
    json_decref(p->reported);
    p->reported = seen;
    json_decref(list);
    return rc;
}

static int bp_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    binance_positions *p = instance;
    (void)tick;
    char ctx[BP_CTX_MAX];
    snprintf(ctx, sizeof ctx, "%s %s", p->exchange, BP_PATH);
    json_t *root = NULL;
    int64_t received = 0;
    int rc = fetch_positions(p, ctx, &root, &received);
    if (rc != TF_OK)
        return rc;
    json_t *held = json_object();
    if (!held) {
        json_decref(root);
        return TF_ENOMEM;
    }
    size_t before = p->host->batch_count(out);
    rc = collect_positions(p, root, received, held, out);
    /* Reconciling against a reply with a bad item could call a held contract flat. */
    if (rc == TF_OK && p->redis)
        rc = reconcile(p, held, out);
    /* Bad items were reported one by one; the tick is good when it produced records. */
    if (rc != TF_OK && rc != TF_ENOMEM && p->host->batch_count(out) > before)
        rc = TF_OK;
    json_decref(held);
    json_decref(root);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "binance_positions",
    .kind = TF_KIND_SOURCE,
    .description = "Binance USDⓈ-M futures account positions (signed positionRisk), with an "
                   "optional check against the positions store",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = bp_init,
    .destroy = bp_destroy,
    .collect = bp_collect,
};
