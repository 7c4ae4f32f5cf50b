/* tf_fx_render: response bodies for every mimicked endpoint, built with jansson in fixture key
 * order. Derived figures (24 h high/low, volumes, quantities) are plausible decoration computed
 * from the snapshot; the prices that clients use come straight from it. */
#include "tf_fx_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_fx_util.h"

#define TF_FX_KST_OFFSET     (9 * 3600)
#define TF_FX_FUNDING_PERIOD 28800000LL /* Binance/Bybit funding every 8 h from 00:00 UTC */
#define TF_FX_BOOK_DEFAULT   30         /* Bithumb ?count= default and maximum */
#define TF_FX_TOKEN_MAX      64

void tf_fx_reply_clear(struct tf_fx_reply *r)
{
    json_decref(r->json);
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

/* Takes ownership of j; a NULL j is an allocation failure already. */
static int tf_fx_reply_set(struct tf_fx_reply *out, enum tf_fx_ep ep, unsigned status, json_t *j,
                           int ok_layout)
{
    if (j == NULL) {
        return -1;
    }
    out->status = status;
    out->json = j;
    out->content_type = tf_fx_ep_content_type(ep);
    out->ok_layout = ok_layout;
    return 0;
}

/* Parses text (a constant error body in a fixture's layout) into the reply. */
static int tf_fx_reply_const(struct tf_fx_reply *out, enum tf_fx_ep ep, unsigned status,
                             const char *text)
{
    return tf_fx_reply_set(out, ep, status, json_loads(text, 0, NULL), 0);
}

static double tf_fx_rt(double v, double tick, int dp)
{
    return tf_fx_round_dp(round(v / tick) * tick, dp);
}

/* Deterministic per (step, symbol, salt) jitter in [0.05, 1.05): book sizes and volumes move
 * with the market but are reproducible for a seed. SplitMix64 finaliser. */
static double tf_fx_jitter(const struct tf_fx_snapshot *s, int sym, int salt)
{
    uint64_t x = (uint64_t)s->step * 0x9E3779B97F4A7C15ULL;
    x ^= (uint64_t)(sym * 131 + salt) << 32;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return 0.05 + (double)(x % 10000) / 10000.0;
}

static double tf_fx_qty(const struct tf_fx_snapshot *s, int sym, int salt)
{
    const struct tf_fx_symbol_info *info = tf_fx_symbol(sym);
    return tf_fx_round_dp(info->qty_scale * tf_fx_jitter(s, sym, salt), info->qty_dp);
}

/* Copies the next comma-separated token of *cursor into tok; 0 when the list is exhausted. */
static int tf_fx_list_next(const char **cursor, char *tok, size_t n)
{
    const char *p = *cursor;
    if (p == NULL || *p == '\0') {
        return 0;
    }
    size_t len = strcspn(p, ",");
    size_t copy = len < n - 1 ? len : n - 1;
    memcpy(tok, p, copy);
    tok[copy] = '\0';
    *cursor = p[len] == ',' ? p + len + 1 : p + len;
    return 1;
}

static int tf_fx_is_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* ---- KRW side: daily figures shared by Bithumb and Upbit ---- */

struct tf_fx_krw_day {
    double open, prev_close, high, low;
    double units, units_24h, value, value_24h;
};

static void tf_fx_krw_day(const struct tf_fx_snapshot *s, int sym, struct tf_fx_krw_day *d)
{
    const struct tf_fx_quote *q = &s->q[sym];
    const struct tf_fx_symbol_info *info = tf_fx_symbol(sym);
    d->open = tf_fx_rt(q->krw * 0.9931, q->krw_tick, q->krw_dp);
    d->prev_close = tf_fx_rt(q->krw * 0.9929, q->krw_tick, q->krw_dp);
    d->high = fmax(tf_fx_rt(q->krw * 1.0040, q->krw_tick, q->krw_dp), q->krw);
    d->low = fmin(tf_fx_rt(q->krw * 0.9874, q->krw_tick, q->krw_dp), q->krw);
    d->units_24h = tf_fx_round_dp(info->volume * (0.9 + 0.2 * tf_fx_jitter(s, sym, 1)), 8);
    d->units = tf_fx_round_dp(d->units_24h * 0.458, 8);
    d->value = tf_fx_round_dp(d->units * q->krw * 0.998, 4);
    d->value_24h = tf_fx_round_dp(d->units_24h * q->krw * 0.997, 4);
}

/* ---- Bithumb v1 ---- */

static int tf_fx_bithumb_invalid(struct tf_fx_reply *out, enum tf_fx_ep ep)
{
    /* Bithumb v1 reports errors with HTTP 200 (fixtures README, note on Bithumb v1). */
    return tf_fx_reply_const(out, ep, 200,
                             "{\"status\":\"5500\",\"message\":\"Invalid Parameter\"}");
}

/* "BTC_KRW" -> sym, "ALL_KRW" -> *all; a bare "BTC" means KRW as on the real API. */
static int tf_fx_bithumb_pair(const char *tail, int *sym, int *all)
{
    char coin[TF_FX_TOKEN_MAX];
    if (tail == NULL) {
        return -1;
    }
    size_t len = strcspn(tail, "_");
    if (len == 0 || len >= sizeof(coin)) {
        return -1;
    }
    memcpy(coin, tail, len);
    coin[len] = '\0';
    if (tail[len] == '_' && !tf_fx_streq_ci(tail + len + 1, "KRW")) {
        return -1;
    }
    *all = tf_fx_streq_ci(coin, "ALL");
    *sym = *all ? -1 : tf_fx_symbol_find(coin);
    return (*all || *sym >= 0) ? 0 : -1;
}

static json_t *tf_fx_bithumb_ticker_obj(const struct tf_fx_snapshot *s, int sym, int with_date)
{
    const struct tf_fx_quote *q = &s->q[sym];
    struct tf_fx_krw_day d;
    tf_fx_krw_day(s, sym, &d);
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    double fluct = tf_fx_round_dp(q->krw - d.prev_close, q->krw_dp + 2);
    char rate[32];
    int len = snprintf(rate, sizeof(rate), "%.2f", fluct / d.prev_close * 100.0);
    int rc = (len < 0 || (size_t)len >= sizeof(rate)) ? -1 : 0;
    rc |= tf_fx_put_px(o, "opening_price", d.open, q->krw_dp);
    rc |= tf_fx_put_px(o, "closing_price", q->krw, q->krw_dp);
    rc |= tf_fx_put_px(o, "min_price", d.low, q->krw_dp);
    rc |= tf_fx_put_px(o, "max_price", d.high, q->krw_dp);
    rc |= tf_fx_put_px(o, "units_traded", d.units, 8);
    rc |= tf_fx_put_px(o, "acc_trade_value", d.value, 4);
    rc |= tf_fx_put_px(o, "prev_closing_price", d.prev_close, q->krw_dp);
    rc |= tf_fx_put_px(o, "units_traded_24H", d.units_24h, 8);
    rc |= tf_fx_put_px(o, "acc_trade_value_24H", d.value_24h, 4);
    rc |= tf_fx_put_px(o, "fluctate_24H", fluct, q->krw_dp);
    rc |= tf_fx_put_str(o, "fluctate_rate_24H", rate);
    if (with_date) {
        rc |= tf_fx_put_ms_str(o, "date", s->now_ms);
    }
    if (rc != 0) {
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ALL_KRW: a map coin -> ticker with "date" as a sibling of the coins (NOTES.md 1a). */
static json_t *tf_fx_bithumb_ticker_all(const struct tf_fx_snapshot *s)
{
    json_t *data = json_object();
    if (data == NULL) {
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < TF_FX_NSYM; i++) {
        rc |= tf_fx_put(data, tf_fx_symbol(i)->name, tf_fx_bithumb_ticker_obj(s, i, 0));
    }
    rc |= tf_fx_put_ms_str(data, "date", s->now_ms);
    if (rc != 0) {
        goto fail;
    }
    return data;
fail:
    json_decref(data);
    return NULL;
}

static json_t *tf_fx_bithumb_envelope(json_t *data)
{
    if (data == NULL) {
        return NULL;
    }
    json_t *root = json_object();
    if (root == NULL) {
        json_decref(data);
        return NULL;
    }
    int rc = tf_fx_put_str(root, "status", "0000");
    rc |= tf_fx_put(root, "data", data);
    if (rc != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int tf_fx_render_bithumb_ticker(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                                       struct tf_fx_reply *out)
{
    enum tf_fx_ep ep = TF_FX_EP_BITHUMB_TICKER;
    int sym = -1;
    int all = 0;
    if (tf_fx_bithumb_pair(a->tail, &sym, &all) != 0) {
        return tf_fx_bithumb_invalid(out, ep);
    }
    json_t *data = all ? tf_fx_bithumb_ticker_all(s) : tf_fx_bithumb_ticker_obj(s, sym, 1);
    return tf_fx_reply_set(out, ep, 200, tf_fx_bithumb_envelope(data), 1);
}

static json_t *tf_fx_book_level(double price, int price_dp, double qty)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_px(o, "price", price, price_dp);
    rc |= tf_fx_put_px(o, "quantity", qty, 4);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Level 0 is the snapshot's best bid/ask exactly; deeper levels step one tick outwards. */
static json_t *tf_fx_book_side(const struct tf_fx_snapshot *s, int sym, int bids, int count)
{
    const struct tf_fx_quote *q = &s->q[sym];
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < count; i++) {
        double top = bids ? q->krw_bid : q->krw_ask;
        double step = (bids ? -1.0 : 1.0) * q->krw_tick * i;
        double price = i == 0 ? top : tf_fx_round_dp(top + step, 10);
        if (price <= 0.0) {
            break;
        }
        double qty = tf_fx_round_dp(tf_fx_qty(s, sym, 10 + i * 2 + bids) / 7.0 + 0.0001, 4);
        rc |= json_array_append_new(arr, tf_fx_book_level(price, q->krw_dp, qty));
    }
    if (rc != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int tf_fx_book_count(const char *text, int *count)
{
    if (text == NULL) {
        *count = TF_FX_BOOK_DEFAULT;
        return 0;
    }
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || v > TF_FX_BOOK_DEFAULT) {
        return -1;
    }
    *count = (int)v;
    return 0;
}

static int tf_fx_put_book_sides(json_t *o, const struct tf_fx_snapshot *s, int sym, int count)
{
    int rc = tf_fx_put(o, "bids", tf_fx_book_side(s, sym, 1, count));
    rc |= tf_fx_put(o, "asks", tf_fx_book_side(s, sym, 0, count));
    return rc;
}

static json_t *tf_fx_bithumb_book_data(const struct tf_fx_snapshot *s, int sym, int count)
{
    json_t *data = json_object();
    if (data == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_ms_str(data, "timestamp", s->now_ms);
    rc |= tf_fx_put_str(data, "payment_currency", "KRW");
    if (sym >= 0) {
        rc |= tf_fx_put_str(data, "order_currency", tf_fx_symbol(sym)->name);
        rc |= tf_fx_put_book_sides(data, s, sym, count);
    }
    for (int i = 0; sym < 0 && i < TF_FX_NSYM; i++) {
        json_t *coin = json_object();
        rc |= tf_fx_put(data, tf_fx_symbol(i)->name, coin);
        if (coin != NULL) {
            rc |= tf_fx_put_str(coin, "order_currency", tf_fx_symbol(i)->name);
            rc |= tf_fx_put_book_sides(coin, s, i, count);
        }
    }
    if (rc != 0) {
        json_decref(data);
        return NULL;
    }
    return data;
}

static int tf_fx_render_bithumb_orderbook(const struct tf_fx_snapshot *s,
                                          const struct tf_fx_args *a, struct tf_fx_reply *out)
{
    enum tf_fx_ep ep = TF_FX_EP_BITHUMB_ORDERBOOK;
    int sym = -1;
    int all = 0;
    int count = 0;
    if (tf_fx_bithumb_pair(a->tail, &sym, &all) != 0 || tf_fx_book_count(a->count, &count) != 0) {
        return tf_fx_bithumb_invalid(out, ep);
    }
    json_t *data = tf_fx_bithumb_book_data(s, all ? -1 : sym, count);
    return tf_fx_reply_set(out, ep, 200, tf_fx_bithumb_envelope(data), 1);
}

/* ---- Binance USD-M futures ---- */

enum tf_fx_bn_kind { TF_FX_BN_PERP, TF_FX_BN_QUARTER, TF_FX_BN_USDC };

/* The bulk lists carry a dated quarterly and a USDC-margined perp on purpose: clients must
 * filter to the USDT perpetuals they asked for. */
static const struct {
    const char *name;
    int sym;
    enum tf_fx_bn_kind kind;
    double factor; /* price relative to the USDT perp */
} tf_fx_bn[] = {
    {"BTCUSDT", TF_FX_BTC, TF_FX_BN_PERP, 1.0},
    {"ETHUSDT", TF_FX_ETH, TF_FX_BN_PERP, 1.0},
    {"XRPUSDT", TF_FX_XRP, TF_FX_BN_PERP, 1.0},
    {"SOLUSDT", TF_FX_SOL, TF_FX_BN_PERP, 1.0},
    {"DOGEUSDT", TF_FX_DOGE, TF_FX_BN_PERP, 1.0},
    {"ADAUSDT", TF_FX_ADA, TF_FX_BN_PERP, 1.0},
    {"BTCUSDT_261225", TF_FX_BTC, TF_FX_BN_QUARTER, 1.0062},
    {"ETHUSDC", TF_FX_ETH, TF_FX_BN_USDC, 0.9998},
};

#define TF_FX_BN_COUNT (sizeof(tf_fx_bn) / sizeof(tf_fx_bn[0]))

static int tf_fx_bn_find(const char *name)
{
    for (size_t i = 0; i < TF_FX_BN_COUNT; i++) {
        if (strcmp(name, tf_fx_bn[i].name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Global top of book for contract i; the USDT perps serve the snapshot values untouched. */
static void tf_fx_bn_prices(const struct tf_fx_snapshot *s, size_t i, double *last, double *bid,
                            double *ask)
{
    const struct tf_fx_quote *q = &s->q[tf_fx_bn[i].sym];
    const struct tf_fx_symbol_info *info = tf_fx_symbol(tf_fx_bn[i].sym);
    if (tf_fx_bn[i].factor == 1.0) {
        *last = q->usdt;
        *bid = q->bid;
        *ask = q->ask;
        return;
    }
    *last = tf_fx_rt(q->usdt * tf_fx_bn[i].factor, info->usdt_tick, info->usdt_dp);
    *bid = tf_fx_round_dp(*last - info->usdt_tick, 10);
    *ask = tf_fx_round_dp(*last + info->usdt_tick, 10);
}

static int64_t tf_fx_next_funding(int64_t now_ms)
{
    return (now_ms / TF_FX_FUNDING_PERIOD + 1) * TF_FX_FUNDING_PERIOD;
}

static json_t *tf_fx_bn_book_ticker(const struct tf_fx_snapshot *s, size_t i)
{
    const struct tf_fx_symbol_info *info = tf_fx_symbol(tf_fx_bn[i].sym);
    double last = 0.0;
    double bid = 0.0;
    double ask = 0.0;
    tf_fx_bn_prices(s, i, &last, &bid, &ask);
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_str(o, "symbol", tf_fx_bn[i].name);
    rc |= tf_fx_put_px(o, "bidPrice", bid, info->usdt_dp);
    rc |= tf_fx_put_px(o, "bidQty", tf_fx_qty(s, tf_fx_bn[i].sym, 20 + (int)i), info->qty_dp);
    rc |= tf_fx_put_px(o, "askPrice", ask, info->usdt_dp);
    rc |= tf_fx_put_px(o, "askQty", tf_fx_qty(s, tf_fx_bn[i].sym, 40 + (int)i), info->qty_dp);
    rc |= tf_fx_put_int(o, "time", s->now_ms);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *tf_fx_bn_premium_index(const struct tf_fx_snapshot *s, size_t i)
{
    const struct tf_fx_quote *q = &s->q[tf_fx_bn[i].sym];
    double f = tf_fx_bn[i].factor;
    double mark = f == 1.0 ? q->mark : tf_fx_round_dp(q->mark * f, 8);
    double index = q->index;
    double settle = tf_fx_round_dp(index - (index - mark) * 0.35, 8);
    /* Delivery contracts have no funding: Binance sends "" and 0 there. */
    int perp = tf_fx_bn[i].kind != TF_FX_BN_QUARTER;
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_str(o, "symbol", tf_fx_bn[i].name);
    rc |= tf_fx_put_px(o, "markPrice", mark, 8);
    rc |= tf_fx_put_px(o, "indexPrice", index, 8);
    rc |= tf_fx_put_px(o, "estimatedSettlePrice", settle, 8);
    if (perp) {
        rc |= tf_fx_put_px(o, "lastFundingRate", s->funding, 8);
        rc |= tf_fx_put_px(o, "interestRate", 0.0001, 8);
    } else {
        rc |= tf_fx_put_str(o, "lastFundingRate", "");
        rc |= tf_fx_put_str(o, "interestRate", "");
    }
    rc |= tf_fx_put_int(o, "nextFundingTime", perp ? tf_fx_next_funding(s->now_ms) : 0);
    rc |= tf_fx_put_int(o, "time", s->now_ms);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *tf_fx_bn_ticker_price(const struct tf_fx_snapshot *s, size_t i)
{
    const struct tf_fx_symbol_info *info = tf_fx_symbol(tf_fx_bn[i].sym);
    double last = 0.0;
    double bid = 0.0;
    double ask = 0.0;
    tf_fx_bn_prices(s, i, &last, &bid, &ask);
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_str(o, "symbol", tf_fx_bn[i].name);
    rc |= tf_fx_put_px(o, "price", last, info->usdt_dp);
    rc |= tf_fx_put_int(o, "time", s->now_ms);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

typedef json_t *(*tf_fx_bn_row_fn)(const struct tf_fx_snapshot *s, size_t i);

static int tf_fx_binance_invalid(struct tf_fx_reply *out, enum tf_fx_ep ep)
{
    return tf_fx_reply_const(out, ep, 400, "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}");
}

/* ?symbol= gives one object, no symbol gives an array of every contract. */
static int tf_fx_render_binance(enum tf_fx_ep ep, const struct tf_fx_snapshot *s,
                                const struct tf_fx_args *a, tf_fx_bn_row_fn row,
                                struct tf_fx_reply *out)
{
    if (a->symbol != NULL) {
        int i = tf_fx_bn_find(a->symbol);
        if (i < 0) {
            return tf_fx_binance_invalid(out, ep);
        }
        return tf_fx_reply_set(out, ep, 200, row(s, (size_t)i), 1);
    }
    json_t *arr = json_array();
    if (arr == NULL) {
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < TF_FX_BN_COUNT; i++) {
        rc |= json_array_append_new(arr, row(s, i));
    }
    if (rc != 0) {
        json_decref(arr);
        return -1;
    }
    return tf_fx_reply_set(out, ep, 200, arr, 1);
}

/* ---- FX: Dunamu, open.er-api, exchangerate.host, Korea Eximbank ---- */

/* A rate a test fixed is served exactly; a walking one is rounded as the source publishes. */
static double tf_fx_usdkrw_dp(const struct tf_fx_snapshot *s, int dp)
{
    return s->usdkrw_frozen ? s->usdkrw : tf_fx_round_dp(s->usdkrw, dp);
}

static json_t *tf_fx_dunamu_row(const struct tf_fx_snapshot *s)
{
    double base = tf_fx_usdkrw_dp(s, 2);
    double prev = tf_fx_round_dp(base * 0.99722, 2);
    double chg = tf_fx_round_dp(base - prev, 2);
    double rate = tf_fx_round_dp(fabs(chg) / prev, 10);
    char date[16];
    char time_s[16];
    char iso[40];
    int rc = tf_fx_fmt_date_dash(date, sizeof(date), s->now_ms, TF_FX_KST_OFFSET);
    rc |= tf_fx_fmt_time_colon(time_s, sizeof(time_s), s->now_ms, TF_FX_KST_OFFSET);
    rc |= tf_fx_fmt_iso_utc(iso, sizeof(iso), s->now_ms);
    json_t *o = json_object();
    if (o == NULL || rc != 0) {
        goto fail;
    }
    rc |= tf_fx_put_str(o, "code", "FRX.KRWUSD");
    rc |= tf_fx_put_str(o, "currencyCode", "USD");
    rc |= tf_fx_put_str(o, "currencyName", "달러");
    rc |= tf_fx_put_str(o, "country", "미국");
    rc |= tf_fx_put_str(o, "name", "미국 (USD/KRW)");
    rc |= tf_fx_put_str(o, "date", date);
    rc |= tf_fx_put_str(o, "time", time_s);
    rc |= tf_fx_put_int(o, "recurrenceCount", (s->now_ms / 60000) % 600 + 1);
    /* Dunamu prices are always reals in the real feed (1402.50), even when integral. */
    rc |= tf_fx_put_real(o, "basePrice", base);
    rc |= tf_fx_put_real(o, "openingPrice", tf_fx_round_dp(prev * 0.9997, 2));
    rc |= tf_fx_put_real(o, "highPrice", fmax(tf_fx_round_dp(base * 1.0013, 2), base));
    rc |= tf_fx_put_real(o, "lowPrice", fmin(tf_fx_round_dp(prev * 0.9991, 2), base));
    rc |= tf_fx_put_str(o, "change", chg > 0 ? "RISE" : (chg < 0 ? "FALL" : "EVEN"));
    rc |= tf_fx_put_real(o, "changePrice", fabs(chg));
    rc |= tf_fx_put_real(o, "cashBuyingPrice", tf_fx_round_dp(base * 1.0175, 2));
    rc |= tf_fx_put_real(o, "cashSellingPrice", tf_fx_round_dp(base * 0.9825, 2));
    rc |= tf_fx_put_real(o, "ttBuyingPrice", tf_fx_round_dp(base * 0.9902, 2));
    rc |= tf_fx_put_real(o, "ttSellingPrice", tf_fx_round_dp(base * 1.0098, 2));
    rc |= tf_fx_put(o, "tcBuyingPrice", json_null());
    rc |= tf_fx_put(o, "fcSellingPrice", json_null());
    rc |= tf_fx_put_real(o, "exchangeCommission", 6.8832);
    rc |= tf_fx_put_real(o, "usDollarRate", 1.0);
    rc |= tf_fx_put_real(o, "high52wPrice", fmax(1487.6, base));
    rc |= tf_fx_put_str(o, "high52wDate", "2026-04-09");
    rc |= tf_fx_put_real(o, "low52wPrice", fmin(1351.2, base));
    rc |= tf_fx_put_str(o, "low52wDate", "2026-07-01");
    rc |= tf_fx_put_int(o, "currencyUnit", 1);
    rc |= tf_fx_put_str(o, "provider", "하나은행");
    rc |= tf_fx_put_int(o, "timestamp", s->now_ms);
    rc |= tf_fx_put_int(o, "id", 79);
    rc |= tf_fx_put_str(o, "modifiedAt", iso);
    rc |= tf_fx_put_str(o, "createdAt", "2016-10-21T06:13:34.000+00:00");
    rc |= tf_fx_put_real(o, "signedChangePrice", chg);
    rc |= tf_fx_put_real(o, "signedChangeRate", chg < 0 ? -rate : rate);
    rc |= tf_fx_put_real(o, "changeRate", rate);
    if (rc != 0) {
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* Unknown codes are left out rather than rejected, as the CDN endpoint does. */
static int tf_fx_render_dunamu(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                               struct tf_fx_reply *out)
{
    json_t *arr = json_array();
    if (arr == NULL) {
        return -1;
    }
    const char *cursor = a->codes;
    char tok[TF_FX_TOKEN_MAX];
    int rc = 0;
    while (tf_fx_list_next(&cursor, tok, sizeof(tok))) {
        if (strcmp(tok, "FRX.KRWUSD") == 0) {
            rc |= json_array_append_new(arr, tf_fx_dunamu_row(s));
        }
    }
    if (rc != 0) {
        json_decref(arr);
        return -1;
    }
    return tf_fx_reply_set(out, TF_FX_EP_DUNAMU_FOREX, 200, arr, json_array_size(arr) > 0);
}

/* USD cross rates from the er-api fixture; KRW (rate 0 here) comes from the model. */
static const struct {
    const char *code;
    double rate;
} tf_fx_rates[] = {
    {"USD", 1},      {"AED", 3.6725}, {"AUD", 1.5214}, {"CAD", 1.3988},
    {"CHF", 0.8012}, {"CNY", 7.1403}, {"EUR", 0.8665}, {"GBP", 0.7587},
    {"HKD", 7.7764}, {"INR", 88.412}, {"JPY", 153.87}, {"KRW", 0},
    {"SGD", 1.3041}, {"THB", 32.518}, {"TWD", 30.663}, {"VND", 26304.12},
};

#define TF_FX_RATES_COUNT (sizeof(tf_fx_rates) / sizeof(tf_fx_rates[0]))

static int tf_fx_rate_find(const char *code)
{
    for (size_t i = 0; i < TF_FX_RATES_COUNT; i++) {
        if (strcmp(code, tf_fx_rates[i].code) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static double tf_fx_rate_value(const struct tf_fx_snapshot *s, size_t i, int krw_dp)
{
    return tf_fx_rates[i].rate == 0 ? tf_fx_usdkrw_dp(s, krw_dp) : tf_fx_rates[i].rate;
}

static int tf_fx_render_er_api(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                               struct tf_fx_reply *out)
{
    enum tf_fx_ep ep = TF_FX_EP_ER_API_LATEST;
    if (!tf_fx_streq_ci(a->tail, "USD")) {
        return tf_fx_render_venue_error(ep, s->now_ms, out);
    }
    int64_t last = s->now_ms / 1000;
    char last_utc[48];
    char next_utc[48];
    int rc = tf_fx_fmt_rfc2822(last_utc, sizeof(last_utc), last * 1000);
    rc |= tf_fx_fmt_rfc2822(next_utc, sizeof(next_utc), (last + 86400) * 1000);
    json_t *o = json_object();
    json_t *rates = json_object();
    if (o == NULL || rates == NULL || rc != 0) {
        goto fail;
    }
    for (size_t i = 0; i < TF_FX_RATES_COUNT; i++) {
        double v = tf_fx_rate_value(s, i, 2);
        /* "USD": 1 is an integer in the real reply, every other rate a real. */
        json_t *num = i == 0 ? json_integer(1) : json_real(v);
        rc |= tf_fx_put(rates, tf_fx_rates[i].code, num);
    }
    rc |= tf_fx_put_str(o, "result", "success");
    rc |= tf_fx_put_str(o, "provider", "https://www.exchangerate-api.com");
    rc |= tf_fx_put_str(o, "documentation", "https://www.exchangerate-api.com/docs/free");
    rc |= tf_fx_put_str(o, "terms_of_use", "https://www.exchangerate-api.com/terms");
    rc |= tf_fx_put_int(o, "time_last_update_unix", last);
    rc |= tf_fx_put_str(o, "time_last_update_utc", last_utc);
    rc |= tf_fx_put_int(o, "time_next_update_unix", last + 86400);
    rc |= tf_fx_put_str(o, "time_next_update_utc", next_utc);
    rc |= tf_fx_put_int(o, "time_eol_unix", 0);
    rc |= tf_fx_put_str(o, "base_code", "USD");
    rc |= tf_fx_put(o, "rates", rates);
    rates = NULL; /* owned by o now, even if the put failed */
    if (rc != 0) {
        goto fail;
    }
    return tf_fx_reply_set(out, ep, 200, o, 1);
fail:
    json_decref(rates);
    json_decref(o);
    return -1;
}

static int tf_fx_xhost_error(struct tf_fx_reply *out, int code)
{
    enum tf_fx_ep ep = TF_FX_EP_EXCHANGERATE_HOST_LIVE;
    /* HTTP 200 with success:false is the APILayer envelope (fixture, MEM). */
    switch (code) {
    case 201:
        return tf_fx_reply_const(out, ep, 200,
                                 "{\"success\":false,\"error\":{\"code\":201,\"type\":\"invalid_"
                                 "source_currency\",\"info\":\"You have supplied an invalid Source "
                                 "Currency. [Example: source=EUR]\"}}");
    case 202:
        return tf_fx_reply_const(out, ep, 200,
                                 "{\"success\":false,\"error\":{\"code\":202,\"type\":\"invalid_"
                                 "currency_codes\",\"info\":\"You have provided one or more "
                                 "invalid Currency Codes. [Required format: "
                                 "currencies=EUR,USD,GBP,...]\"}}");
    default:
        return tf_fx_render_venue_error(ep, 0, out);
    }
}

static int tf_fx_xhost_quotes(const struct tf_fx_snapshot *s, const char *currencies,
                              json_t *quotes, int *bad_code)
{
    char tok[TF_FX_TOKEN_MAX];
    char key[TF_FX_TOKEN_MAX + 4];
    int rc = 0;
    const char *cursor = tf_fx_is_empty(currencies) ? "KRW,EUR,JPY,GBP,CNY" : currencies;
    while (tf_fx_list_next(&cursor, tok, sizeof(tok))) {
        int i = tf_fx_rate_find(tok);
        if (i < 0) {
            *bad_code = 1;
            return 0;
        }
        int len = snprintf(key, sizeof(key), "USD%s", tok);
        if (len < 0 || (size_t)len >= sizeof(key)) {
            return -1;
        }
        rc |= tf_fx_put_real(quotes, key, tf_fx_rate_value(s, (size_t)i, 6));
    }
    return rc;
}

static int tf_fx_render_xhost(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                              struct tf_fx_reply *out)
{
    if (tf_fx_is_empty(a->access_key)) {
        return tf_fx_xhost_error(out, 101);
    }
    if (a->source != NULL && strcmp(a->source, "USD") != 0) {
        return tf_fx_xhost_error(out, 201);
    }
    json_t *o = json_object();
    json_t *quotes = json_object();
    int bad_code = 0;
    if (o == NULL || quotes == NULL) {
        goto fail;
    }
    if (tf_fx_xhost_quotes(s, a->currencies, quotes, &bad_code) != 0) {
        goto fail;
    }
    if (bad_code) {
        json_decref(quotes);
        json_decref(o);
        return tf_fx_xhost_error(out, 202);
    }
    int rc = tf_fx_put(o, "success", json_true());
    rc |= tf_fx_put_str(o, "terms", "https://exchangerate.host/terms");
    rc |= tf_fx_put_str(o, "privacy", "https://exchangerate.host/privacy");
    rc |= tf_fx_put_int(o, "timestamp", s->now_ms / 1000);
    rc |= tf_fx_put_str(o, "source", "USD");
    rc |= tf_fx_put(o, "quotes", quotes);
    quotes = NULL;
    if (rc != 0) {
        goto fail;
    }
    return tf_fx_reply_set(out, TF_FX_EP_EXCHANGERATE_HOST_LIVE, 200, o, 1);
fail:
    json_decref(quotes);
    json_decref(o);
    return -1;
}

static int tf_fx_koreaexim_error(struct tf_fx_reply *out, int result)
{
    char body[512];
    int len = snprintf(body, sizeof(body),
                       "[{\"result\":%d,\"cur_unit\":null,\"ttb\":null,\"tts\":null,"
                       "\"deal_bas_r\":null,\"bkpr\":null,\"yy_efee_r\":null,"
                       "\"ten_dd_efee_r\":null,\"kftc_bkpr\":null,\"kftc_deal_bas_r\":null,"
                       "\"cur_nm\":null}]",
                       result);
    if (len < 0 || (size_t)len >= sizeof(body)) {
        return -1;
    }
    return tf_fx_reply_const(out, TF_FX_EP_KOREAEXIM_EXCHANGE, 200, body);
}

static int tf_fx_put_commas(json_t *o, const char *key, double v, int max_dp)
{
    char buf[64];
    if (tf_fx_fmt_commas(buf, sizeof(buf), v, max_dp) != 0) {
        return -1;
    }
    return tf_fx_put_str(o, key, buf);
}

static json_t *tf_fx_koreaexim_row(const char *unit, const char *name, double deal)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_int(o, "result", 1);
    rc |= tf_fx_put_str(o, "cur_unit", unit);
    rc |= tf_fx_put_commas(o, "ttb", tf_fx_round_dp(deal * 0.99, 2), 2);
    rc |= tf_fx_put_commas(o, "tts", tf_fx_round_dp(deal * 1.01, 2), 2);
    rc |= tf_fx_put_commas(o, "deal_bas_r", deal, 6);
    rc |= tf_fx_put_commas(o, "bkpr", floor(deal), 0);
    rc |= tf_fx_put_str(o, "yy_efee_r", "0");
    rc |= tf_fx_put_str(o, "ten_dd_efee_r", "0");
    rc |= tf_fx_put_commas(o, "kftc_bkpr", floor(deal), 0);
    rc |= tf_fx_put_commas(o, "kftc_deal_bas_r", deal, 6);
    rc |= tf_fx_put_str(o, "cur_nm", name);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int tf_fx_render_koreaexim(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                                  struct tf_fx_reply *out)
{
    /* result codes (NOTES.md 3): 2 bad data code, 3 bad auth key; all with HTTP 200. */
    if (tf_fx_is_empty(a->authkey) || strcmp(a->authkey, "bad") == 0) {
        return tf_fx_koreaexim_error(out, 3);
    }
    if (a->data == NULL || strcmp(a->data, "AP01") != 0) {
        return tf_fx_koreaexim_error(out, 2);
    }
    json_t *arr = json_array();
    if (arr == NULL) {
        return -1;
    }
    int wday = tf_fx_weekday(a->searchdate);
    if (wday == 0 || wday == 6) {
        /* No fixing on weekends: an empty array, like koreaexim_empty_non_business_day. */
        return tf_fx_reply_set(out, TF_FX_EP_KOREAEXIM_EXCHANGE, 200, arr, 0);
    }
    double usd = tf_fx_usdkrw_dp(s, 2);
    int rc = json_array_append_new(
        arr, tf_fx_koreaexim_row("CNH", "위안화", tf_fx_round_dp(usd / 7.1403, 2)));
    rc |= json_array_append_new(
        arr, tf_fx_koreaexim_row("EUR", "유로", tf_fx_round_dp(usd / 0.8665, 2)));
    rc |= json_array_append_new(
        arr, tf_fx_koreaexim_row("JPY(100)", "일본 옌", tf_fx_round_dp(usd / 153.87 * 100, 2)));
    rc |= json_array_append_new(arr, tf_fx_koreaexim_row("USD", "미국 달러", usd));
    if (rc != 0) {
        json_decref(arr);
        return -1;
    }
    return tf_fx_reply_set(out, TF_FX_EP_KOREAEXIM_EXCHANGE, 200, arr, 1);
}

/* ---- Upbit ---- */

static json_t *tf_fx_upbit_row(const struct tf_fx_snapshot *s, int sym)
{
    const struct tf_fx_quote *q = &s->q[sym];
    const struct tf_fx_symbol_info *info = tf_fx_symbol(sym);
    struct tf_fx_krw_day d;
    tf_fx_krw_day(s, sym, &d);
    /* Upbit's prev_closing_price is the UTC-midnight price, which is also today's open. */
    double prev = d.open;
    double chg = tf_fx_round_dp(q->krw - prev, q->krw_dp + 2);
    double rate = tf_fx_round_dp(fabs(chg) / prev, 10);
    char market[32];
    char date_utc[16];
    char time_utc[16];
    char date_kst[16];
    char time_kst[16];
    int len = snprintf(market, sizeof(market), "KRW-%s", info->name);
    int rc = (len < 0 || (size_t)len >= sizeof(market)) ? -1 : 0;
    rc |= tf_fx_fmt_yyyymmdd(date_utc, sizeof(date_utc), s->now_ms, 0);
    rc |= tf_fx_fmt_hhmmss(time_utc, sizeof(time_utc), s->now_ms, 0);
    rc |= tf_fx_fmt_yyyymmdd(date_kst, sizeof(date_kst), s->now_ms, TF_FX_KST_OFFSET);
    rc |= tf_fx_fmt_hhmmss(time_kst, sizeof(time_kst), s->now_ms, TF_FX_KST_OFFSET);
    json_t *o = json_object();
    if (o == NULL || rc != 0) {
        goto fail;
    }
    rc |= tf_fx_put_str(o, "market", market);
    rc |= tf_fx_put_str(o, "trade_date", date_utc);
    rc |= tf_fx_put_str(o, "trade_time", time_utc);
    rc |= tf_fx_put_str(o, "trade_date_kst", date_kst);
    rc |= tf_fx_put_str(o, "trade_time_kst", time_kst);
    rc |= tf_fx_put_int(o, "trade_timestamp", s->now_ms);
    rc |= tf_fx_put_num(o, "opening_price", d.open);
    rc |= tf_fx_put_num(o, "high_price", d.high);
    rc |= tf_fx_put_num(o, "low_price", d.low);
    rc |= tf_fx_put_num(o, "trade_price", q->krw);
    rc |= tf_fx_put_num(o, "prev_closing_price", prev);
    rc |= tf_fx_put_str(o, "change", chg > 0 ? "RISE" : (chg < 0 ? "FALL" : "EVEN"));
    rc |= tf_fx_put_num(o, "change_price", fabs(chg));
    rc |= tf_fx_put_num(o, "change_rate", rate);
    rc |= tf_fx_put_num(o, "signed_change_price", chg);
    rc |= tf_fx_put_num(o, "signed_change_rate", chg < 0 ? -rate : rate);
    rc |= tf_fx_put_num(o, "trade_volume", tf_fx_round_dp(tf_fx_qty(s, sym, 60) / 900.0, 8));
    rc |= tf_fx_put_num(o, "acc_trade_price", d.value);
    rc |= tf_fx_put_num(o, "acc_trade_price_24h", d.value_24h);
    rc |= tf_fx_put_num(o, "acc_trade_volume", d.units);
    rc |= tf_fx_put_num(o, "acc_trade_volume_24h", d.units_24h);
    rc |=
        tf_fx_put_num(o, "highest_52_week_price", tf_fx_rt(q->krw * 1.314, q->krw_tick, q->krw_dp));
    rc |= tf_fx_put_str(o, "highest_52_week_date", "2025-12-09");
    rc |=
        tf_fx_put_num(o, "lowest_52_week_price", tf_fx_rt(q->krw * 0.7178, q->krw_tick, q->krw_dp));
    rc |= tf_fx_put_str(o, "lowest_52_week_date", "2026-04-02");
    rc |= tf_fx_put_int(o, "timestamp", s->now_ms);
    if (rc != 0) {
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static int tf_fx_upbit_market(const char *tok)
{
    if (strncasecmp(tok, "KRW-", 4) != 0) {
        return -1;
    }
    return tf_fx_symbol_find(tok + 4);
}

static int tf_fx_render_upbit(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                              struct tf_fx_reply *out)
{
    enum tf_fx_ep ep = TF_FX_EP_UPBIT_TICKER;
    if (tf_fx_is_empty(a->markets)) {
        return tf_fx_reply_const(
            out, ep, 400,
            "{\"error\":{\"name\":\"validation_error\",\"message\":\"markets is missing\"}}");
    }
    json_t *arr = json_array();
    if (arr == NULL) {
        return -1;
    }
    const char *cursor = a->markets;
    char tok[TF_FX_TOKEN_MAX];
    int rc = 0;
    while (tf_fx_list_next(&cursor, tok, sizeof(tok))) {
        int sym = tf_fx_upbit_market(tok);
        if (sym < 0) {
            /* One unknown market fails the whole call (UP-DOC, upbit_error_code_not_found). */
            json_decref(arr);
            return tf_fx_render_venue_error(ep, s->now_ms, out);
        }
        rc |= json_array_append_new(arr, tf_fx_upbit_row(s, sym));
    }
    if (rc != 0) {
        json_decref(arr);
        return -1;
    }
    return tf_fx_reply_set(out, ep, 200, arr, 1);
}

/* ---- OKX ---- */

struct tf_fx_global_day {
    double open, high, low, prev1h, sod0, sod8;
};

static void tf_fx_global_day(const struct tf_fx_quote *q, int sym, struct tf_fx_global_day *d)
{
    const struct tf_fx_symbol_info *info = tf_fx_symbol(sym);
    double t = info->usdt_tick;
    int dp = info->usdt_dp;
    d->open = tf_fx_rt(q->usdt * 0.9903, t, dp);
    d->high = fmax(tf_fx_rt(q->usdt * 1.0053, t, dp), q->usdt);
    d->low = fmin(tf_fx_rt(q->usdt * 0.9878, t, dp), q->usdt);
    d->prev1h = tf_fx_rt(q->usdt * 0.9997, t, dp);
    d->sod0 = tf_fx_rt(q->usdt * 0.9951, t, dp);
    d->sod8 = tf_fx_rt(q->usdt * 0.9968, t, dp);
}

static json_t *tf_fx_okx_row(const struct tf_fx_snapshot *s, int sym, int swap)
{
    const struct tf_fx_quote *q = &s->q[sym];
    const struct tf_fx_symbol_info *info = tf_fx_symbol(sym);
    struct tf_fx_global_day d;
    tf_fx_global_day(q, sym, &d);
    char inst[32];
    int len = snprintf(inst, sizeof(inst), "%s-USDT%s", info->name, swap ? "-SWAP" : "");
    json_t *o = json_object();
    if (o == NULL || len < 0 || (size_t)len >= sizeof(inst)) {
        goto fail;
    }
    double vol = tf_fx_round_dp(info->volume * (0.9 + 0.2 * tf_fx_jitter(s, sym, 70)), 5);
    /* OKX prints prices without trailing zeros ("95480"), hence min_dp 0. */
    int rc = tf_fx_put_str(o, "instType", swap ? "SWAP" : "SPOT");
    rc |= tf_fx_put_str(o, "instId", inst);
    rc |= tf_fx_put_px(o, "last", q->usdt, 0);
    rc |= tf_fx_put_px(o, "lastSz", tf_fx_round_dp(tf_fx_qty(s, sym, 71) / 1000.0, 5), 0);
    rc |= tf_fx_put_px(o, "askPx", q->ask, 0);
    rc |= tf_fx_put_px(o, "askSz", tf_fx_qty(s, sym, 72), 0);
    rc |= tf_fx_put_px(o, "bidPx", q->bid, 0);
    rc |= tf_fx_put_px(o, "bidSz", tf_fx_qty(s, sym, 73), 0);
    rc |= tf_fx_put_px(o, "open24h", d.open, 0);
    rc |= tf_fx_put_px(o, "high24h", d.high, 0);
    rc |= tf_fx_put_px(o, "low24h", d.low, 0);
    rc |= tf_fx_put_px(o, "volCcy24h", tf_fx_round_dp(vol * q->usdt, 5), 0);
    rc |= tf_fx_put_px(o, "vol24h", vol, 0);
    rc |= tf_fx_put_ms_str(o, "ts", s->now_ms);
    rc |= tf_fx_put_px(o, "sodUtc0", d.sod0, 0);
    rc |= tf_fx_put_px(o, "sodUtc8", d.sod8, 0);
    if (rc != 0) {
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *tf_fx_okx_envelope(json_t *data)
{
    if (data == NULL) {
        return NULL;
    }
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(data);
        return NULL;
    }
    int rc = tf_fx_put_str(o, "code", "0");
    rc |= tf_fx_put_str(o, "msg", "");
    rc |= tf_fx_put(o, "data", data);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int tf_fx_okx_error(struct tf_fx_reply *out, enum tf_fx_ep ep, const char *code,
                           const char *msg)
{
    json_t *o = json_object();
    if (o == NULL) {
        return -1;
    }
    int rc = tf_fx_put_str(o, "code", code);
    rc |= tf_fx_put_str(o, "msg", msg);
    rc |= tf_fx_put(o, "data", json_array());
    if (rc != 0) {
        json_decref(o);
        return -1;
    }
    return tf_fx_reply_set(out, ep, 200, o, 0);
}

/* "BTC-USDT" (spot) or "BTC-USDT-SWAP" (perp); -1 otherwise. */
static int tf_fx_okx_inst(const char *inst, int *swap)
{
    char want[32];
    for (int i = 0; i < TF_FX_USDT; i++) {
        for (int sw = 0; sw < 2; sw++) {
            int len =
                snprintf(want, sizeof(want), "%s-USDT%s", tf_fx_symbol(i)->name, sw ? "-SWAP" : "");
            if (len > 0 && (size_t)len < sizeof(want) && strcmp(inst, want) == 0) {
                *swap = sw;
                return i;
            }
        }
    }
    return -1;
}

static int tf_fx_render_okx_ticker(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                                   struct tf_fx_reply *out)
{
    enum tf_fx_ep ep = TF_FX_EP_OKX_TICKER;
    if (tf_fx_is_empty(a->inst_id)) {
        return tf_fx_okx_error(out, ep, "50014", "Parameter instId can not be empty.");
    }
    int swap = 0;
    int sym = tf_fx_okx_inst(a->inst_id, &swap);
    if (sym < 0) {
        return tf_fx_render_venue_error(ep, s->now_ms, out);
    }
    json_t *data = json_array();
    if (data != NULL && json_array_append_new(data, tf_fx_okx_row(s, sym, swap)) != 0) {
        json_decref(data);
        data = NULL;
    }
    return tf_fx_reply_set(out, ep, 200, tf_fx_okx_envelope(data), 1);
}

static int tf_fx_render_okx_tickers(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                                    struct tf_fx_reply *out)
{
    enum tf_fx_ep ep = TF_FX_EP_OKX_TICKERS;
    if (tf_fx_is_empty(a->inst_type)) {
        return tf_fx_okx_error(out, ep, "50014", "Parameter instType can not be empty.");
    }
    int swap = strcmp(a->inst_type, "SWAP") == 0;
    if (!swap && strcmp(a->inst_type, "SPOT") != 0) {
        return tf_fx_okx_error(out, ep, "51000", "Parameter instType error");
    }
    json_t *data = json_array();
    if (data == NULL) {
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < TF_FX_USDT; i++) {
        rc |= json_array_append_new(data, tf_fx_okx_row(s, i, swap));
    }
    if (rc != 0) {
        json_decref(data);
        return -1;
    }
    return tf_fx_reply_set(out, ep, 200, tf_fx_okx_envelope(data), 1);
}

/* ---- Bybit ---- */

static json_t *tf_fx_bybit_row(const struct tf_fx_snapshot *s, int sym)
{
    const struct tf_fx_quote *q = &s->q[sym];
    const struct tf_fx_symbol_info *info = tf_fx_symbol(sym);
    struct tf_fx_global_day d;
    tf_fx_global_day(q, sym, &d);
    int dp = info->usdt_dp;
    char symbol[32];
    char next_funding[32];
    int len = snprintf(symbol, sizeof(symbol), "%sUSDT", info->name);
    int len2 = snprintf(next_funding, sizeof(next_funding), "%lld",
                        (long long)tf_fx_next_funding(s->now_ms));
    json_t *o = json_object();
    if (o == NULL || len < 0 || (size_t)len >= sizeof(symbol) || len2 < 0 ||
        (size_t)len2 >= sizeof(next_funding)) {
        goto fail;
    }
    double oi = tf_fx_round_dp(info->volume * 0.627 * (0.95 + 0.1 * tf_fx_jitter(s, sym, 80)), 3);
    double vol = tf_fx_round_dp(info->volume * (0.9 + 0.2 * tf_fx_jitter(s, sym, 81)), 3);
    double pcnt = tf_fx_round_dp((q->usdt - d.open) / d.open, 6);
    int rc = tf_fx_put_str(o, "symbol", symbol);
    rc |= tf_fx_put_px(o, "lastPrice", q->usdt, dp);
    rc |= tf_fx_put_px(o, "indexPrice", tf_fx_round_dp(q->index, dp), dp);
    rc |= tf_fx_put_px(o, "markPrice", tf_fx_round_dp(q->mark, dp), dp);
    rc |= tf_fx_put_px(o, "prevPrice24h", d.open, dp);
    rc |= tf_fx_put_px(o, "price24hPcnt", pcnt, 6);
    rc |= tf_fx_put_px(o, "highPrice24h", d.high, dp);
    rc |= tf_fx_put_px(o, "lowPrice24h", d.low, dp);
    rc |= tf_fx_put_px(o, "prevPrice1h", d.prev1h, dp);
    rc |= tf_fx_put_px(o, "openInterest", oi, 3);
    rc |= tf_fx_put_px(o, "openInterestValue", tf_fx_round_dp(oi * q->usdt, 2), 2);
    rc |= tf_fx_put_px(o, "turnover24h", tf_fx_round_dp(vol * q->usdt, 4), 4);
    rc |= tf_fx_put_px(o, "volume24h", vol, 3);
    rc |= tf_fx_put_px(o, "fundingRate", s->funding, 0);
    rc |= tf_fx_put_str(o, "nextFundingTime", next_funding);
    rc |= tf_fx_put_str(o, "predictedDeliveryPrice", "");
    rc |= tf_fx_put_str(o, "basisRate", "");
    rc |= tf_fx_put_str(o, "deliveryFeeRate", "");
    rc |= tf_fx_put_str(o, "deliveryTime", "0");
    rc |= tf_fx_put_px(o, "ask1Size", tf_fx_qty(s, sym, 82), info->qty_dp);
    rc |= tf_fx_put_px(o, "bid1Price", q->bid, dp);
    rc |= tf_fx_put_px(o, "ask1Price", q->ask, dp);
    rc |= tf_fx_put_px(o, "bid1Size", tf_fx_qty(s, sym, 83), info->qty_dp);
    if (rc != 0) {
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static int tf_fx_bybit_error(struct tf_fx_reply *out, int64_t now_ms, int ret_code, const char *msg)
{
    json_t *o = json_object();
    if (o == NULL) {
        return -1;
    }
    int rc = tf_fx_put_int(o, "retCode", ret_code);
    rc |= tf_fx_put_str(o, "retMsg", msg);
    rc |= tf_fx_put(o, "result", json_object());
    rc |= tf_fx_put(o, "retExtInfo", json_object());
    rc |= tf_fx_put_int(o, "time", now_ms);
    if (rc != 0) {
        json_decref(o);
        return -1;
    }
    return tf_fx_reply_set(out, TF_FX_EP_BYBIT_TICKERS, 200, o, 0);
}

static int tf_fx_bybit_find(const char *symbol)
{
    char want[32];
    for (int i = 0; i < TF_FX_USDT; i++) {
        int len = snprintf(want, sizeof(want), "%sUSDT", tf_fx_symbol(i)->name);
        if (len > 0 && (size_t)len < sizeof(want) && strcmp(symbol, want) == 0) {
            return i;
        }
    }
    return -1;
}

static json_t *tf_fx_bybit_list(const struct tf_fx_snapshot *s, int only)
{
    json_t *list = json_array();
    if (list == NULL) {
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < TF_FX_USDT; i++) {
        if (only < 0 || only == i) {
            rc |= json_array_append_new(list, tf_fx_bybit_row(s, i));
        }
    }
    if (rc != 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

static int tf_fx_render_bybit(const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                              struct tf_fx_reply *out)
{
    if (a->category == NULL || strcmp(a->category, "linear") != 0) {
        return tf_fx_bybit_error(out, s->now_ms, 10001, "params error: Illegal category");
    }
    int only = -1;
    if (a->symbol != NULL) {
        only = tf_fx_bybit_find(a->symbol);
        if (only < 0) {
            return tf_fx_render_venue_error(TF_FX_EP_BYBIT_TICKERS, s->now_ms, out);
        }
    }
    json_t *o = json_object();
    json_t *result = json_object();
    if (o == NULL || result == NULL) {
        goto fail;
    }
    int rc = tf_fx_put_str(result, "category", "linear");
    rc |= tf_fx_put(result, "list", tf_fx_bybit_list(s, only));
    rc |= tf_fx_put_int(o, "retCode", 0);
    rc |= tf_fx_put_str(o, "retMsg", "OK");
    rc |= tf_fx_put(o, "result", result);
    result = NULL;
    rc |= tf_fx_put(o, "retExtInfo", json_object());
    rc |= tf_fx_put_int(o, "time", s->now_ms);
    if (rc != 0) {
        goto fail;
    }
    return tf_fx_reply_set(out, TF_FX_EP_BYBIT_TICKERS, 200, o, 1);
fail:
    json_decref(result);
    json_decref(o);
    return -1;
}

/* ---- dispatch and error bodies ---- */

int tf_fx_render(enum tf_fx_ep ep, const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                 struct tf_fx_reply *out)
{
    memset(out, 0, sizeof(*out));
    switch (ep) {
    case TF_FX_EP_BITHUMB_TICKER:
        return tf_fx_render_bithumb_ticker(s, a, out);
    case TF_FX_EP_BITHUMB_ORDERBOOK:
        return tf_fx_render_bithumb_orderbook(s, a, out);
    case TF_FX_EP_BINANCE_BOOK_TICKER:
        return tf_fx_render_binance(ep, s, a, tf_fx_bn_book_ticker, out);
    case TF_FX_EP_BINANCE_PREMIUM_INDEX:
        return tf_fx_render_binance(ep, s, a, tf_fx_bn_premium_index, out);
    case TF_FX_EP_BINANCE_TICKER_PRICE:
        return tf_fx_render_binance(ep, s, a, tf_fx_bn_ticker_price, out);
    case TF_FX_EP_DUNAMU_FOREX:
        return tf_fx_render_dunamu(s, a, out);
    case TF_FX_EP_ER_API_LATEST:
        return tf_fx_render_er_api(s, a, out);
    case TF_FX_EP_EXCHANGERATE_HOST_LIVE:
        return tf_fx_render_xhost(s, a, out);
    case TF_FX_EP_KOREAEXIM_EXCHANGE:
        return tf_fx_render_koreaexim(s, a, out);
    case TF_FX_EP_UPBIT_TICKER:
        return tf_fx_render_upbit(s, a, out);
    case TF_FX_EP_OKX_TICKER:
        return tf_fx_render_okx_ticker(s, a, out);
    case TF_FX_EP_OKX_TICKERS:
        return tf_fx_render_okx_tickers(s, a, out);
    case TF_FX_EP_BYBIT_TICKERS:
        return tf_fx_render_bybit(s, a, out);
    default:
        return -1;
    }
}

int tf_fx_render_venue_error(enum tf_fx_ep ep, int64_t now_ms, struct tf_fx_reply *out)
{
    memset(out, 0, sizeof(*out));
    switch (tf_fx_ep_venue(ep)) {
    case TF_FX_VENUE_BITHUMB:
        return tf_fx_reply_const(out, ep, 200,
                                 "{\"status\":\"5600\",\"message\":\"Please try again\"}");
    case TF_FX_VENUE_BINANCE:
        return tf_fx_binance_invalid(out, ep);
    case TF_FX_VENUE_UPBIT:
        return tf_fx_reply_const(out, ep, 404,
                                 "{\"error\":{\"name\":404,\"message\":\"Code not found\"}}");
    case TF_FX_VENUE_OKX:
        return tf_fx_okx_error(out, ep, "51001", "Instrument ID doesn't exist.");
    case TF_FX_VENUE_BYBIT:
        return tf_fx_bybit_error(out, now_ms, 10001, "Not supported symbols");
    case TF_FX_VENUE_DUNAMU:
        /* The CDN endpoint answers a code it does not know with an empty array. */
        return tf_fx_reply_const(out, ep, 200, "[]");
    case TF_FX_VENUE_ER_API:
        return tf_fx_reply_const(out, ep, 404,
                                 "{\"result\":\"error\",\"error-type\":\"unsupported-code\"}");
    case TF_FX_VENUE_EXCHANGERATE_HOST:
        return tf_fx_reply_const(
            out, ep, 200,
            "{\"success\":false,\"error\":{\"code\":101,\"type\":\"missing_access_key\",\"info\":"
            "\"You have not supplied an API Access Key. [Required format: "
            "access_key=YOUR_ACCESS_KEY]\"}}");
    case TF_FX_VENUE_KOREAEXIM:
        return tf_fx_koreaexim_error(out, 3);
    }
    return -1;
}

static int tf_fx_generic_error(struct tf_fx_reply *out, enum tf_fx_ep ep, unsigned status)
{
    json_t *o = json_object();
    if (o == NULL) {
        return -1;
    }
    int rc = tf_fx_put_int(o, "status", status);
    rc |=
        tf_fx_put_str(o, "error", status == 503 ? "Service Unavailable" : "Internal Server Error");
    if (rc != 0) {
        json_decref(o);
        return -1;
    }
    return tf_fx_reply_set(out, ep, status, o, 0);
}

int tf_fx_render_server_error(enum tf_fx_ep ep, unsigned status, int64_t now_ms,
                              struct tf_fx_reply *out)
{
    memset(out, 0, sizeof(*out));
    int busy = status == 503;
    switch (tf_fx_ep_venue(ep)) {
    case TF_FX_VENUE_BITHUMB:
        return tf_fx_reply_const(out, ep, status,
                                 busy ? "{\"status\":\"5600\",\"message\":\"Too many connections\"}"
                                      : "{\"status\":\"5900\",\"message\":\"Unknown Error\"}");
    case TF_FX_VENUE_BINANCE:
        /* Binance's 5xx texts (NOTES.md 2a): 503 "Service Unavailable.", 500 internal. */
        return tf_fx_reply_const(
            out, ep, status,
            busy ? "{\"code\":-1008,\"msg\":\"Service Unavailable.\"}"
                 : "{\"code\":-1001,\"msg\":\"Internal error; unable to process your request. "
                   "Please try again.\"}");
    case TF_FX_VENUE_UPBIT:
        return tf_fx_reply_const(
            out, ep, status,
            busy ? "{\"error\":{\"name\":\"server_error\",\"message\":\"Service Unavailable\"}}"
                 : "{\"error\":{\"name\":\"server_error\",\"message\":\"Internal Server Error\"}}");
    case TF_FX_VENUE_OKX:
        if (tf_fx_okx_error(out, ep, busy ? "50001" : "50026",
                            busy ? "Service temporarily unavailable. Please try again later."
                                 : "System error. Try again later.") != 0) {
            return -1;
        }
        out->status = status;
        return 0;
    case TF_FX_VENUE_BYBIT:
        if (tf_fx_bybit_error(out, now_ms, 10016, busy ? "Service unavailable" : "Server error.") !=
            0) {
            return -1;
        }
        out->status = status;
        return 0;
    default:
        return tf_fx_generic_error(out, ep, status);
    }
}
