/*
 * Tests of the `bithumb` source: every Bithumb v1 fixture to exact record values (single coin,
 * a few coins, ALL_KRW), every broken and error fixture to its error class with no record and
 * recovery on the next tick, option checks, and live HTTP against tickflow-fake-exchange
 * (fixed prices, every fault mode of bithumb.ticker and bithumb.orderbook, keep-alive).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tf_config.h"
#include "tf_fake.h"
#include "tf_fixture_server.h"
#include "tf_http.h"
#include "tf_instance.h"
#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define PLUGIN "bithumb"

static tft_server *srv;

/* ---- helpers ---- */

static double errors_of(const char *cls)
{
    return tfh_errors("harness", PLUGIN, cls);
}

/* A harness on the fixture server; `extra` adds options ("symbols: [BTC]"). Fixture timestamps
 * are from 2026-11-23, hence the large max_age unless `extra` sets its own. */
static tfh *open_fixture(const char *extra)
{
    char with[1024];
    bool own_age = extra && strstr(extra, "max_age");
    snprintf(with, sizeof with, "{base_url: '%s'%s%s%s}", tft_server_url(srv),
             own_age ? "" : ", max_age: 100000h", extra ? ", " : "", extra ? extra : "");
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    return h;
}

static char *fixture_headers(const char *name)
{
    return tft_fixture_headers(name);
}

static void route_json(const char *path, int status, json_t *body)
{
    tft_server_route_json(srv, path, status, NULL, body);
}

static json_t *load_fixture(const char *name)
{
    return tft_fixture_json(name);
}

static void set_ms_string(json_t *obj, const char *key, long long ms)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", ms);
    json_object_set_new(obj, key, json_string(buf));
}

static void route_good_btc(void)
{
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/BTC_KRW", 200, NULL,
                                            "bithumb_v1_ticker_btc_krw.json"));
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/orderbook/BTC_KRW", 200, NULL,
                                            "bithumb_v1_orderbook_btc_krw.json"));
}

static int tick(tfh *h, size_t *count)
{
    return tfh_collect_count(h, count);
}

static const char *ALL_BOOK =
    "{\"status\":\"0000\",\"data\":{\"timestamp\":\"1795428930188\",\"payment_currency\":\"KRW\","
    "\"BTC\":{\"order_currency\":\"BTC\",\"bids\":[{\"price\":\"136849000\",\"quantity\":\"0.02\"},"
    "{\"price\":\"136848000\",\"quantity\":\"0.3\"}],\"asks\":[{\"price\":\"136850000\","
    "\"quantity\":\"0.14\"},{\"price\":\"136852000\",\"quantity\":\"0.01\"}]},"
    "\"ETH\":{\"order_currency\":\"ETH\",\"bids\":[{\"price\":\"4967000\",\"quantity\":\"1\"}],"
    "\"asks\":[{\"price\":\"4968000\",\"quantity\":\"2\"}]},"
    "\"USDT\":{\"order_currency\":\"USDT\",\"bids\":[{\"price\":\"1438\",\"quantity\":\"10\"}],"
    "\"asks\":[{\"price\":\"1439\",\"quantity\":\"20\"}]},"
    "\"XRP\":{\"order_currency\":\"XRP\",\"bids\":[{\"price\":\"3497\",\"quantity\":\"10\"}],"
    "\"asks\":[{\"price\":\"3498\",\"quantity\":\"20\"}]}}}";

static void route_all_krw(void)
{
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/ALL_KRW", 200, NULL,
                                            "bithumb_v1_ticker_all_krw.json"));
    tft_server_route(srv, "/public/orderbook/ALL_KRW", 200, NULL, ALL_BOOK, strlen(ALL_BOOK));
}

/* ---- symbol interest: symbols other stages (the positions transform) ask sources to fetch ---- */

/* ---- fixtures: exact values ---- */

static void test_single_btc_exact(void)
{
    route_good_btc();
    tfh *h = open_fixture("symbols: [BTC]");
    int ticker_before = tft_server_hits(srv, "/public/ticker/BTC_KRW");
    int book_before = tft_server_hits(srv, "/public/orderbook/BTC_KRW");
    tf_batch *b = tf_batch_create();
    int64_t before = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    int64_t after = tf_now_ms();
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "exchange"), "bithumb");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "market"), "spot");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "quote"), "KRW");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 136849000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "volume_24h"), 901.18870315);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), 1795428930123LL);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts_exchange"), TF_FIELD_TS);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts_received"), TF_FIELD_TS);
    CU_ASSERT_TRUE(tfh_int(r, "ts_received") >= before && tfh_int(r, "ts_received") <= after);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/BTC_KRW"), ticker_before + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/orderbook/BTC_KRW"), book_before + 1);
    char url[256];
    tft_server_last_request(srv, url, sizeof url, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(url, "/public/orderbook/BTC_KRW?count=1");
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_book_false(void)
{
    route_good_btc();
    tfh *h = open_fixture("book: false, exchange: bithumb_kr");
    int book_before = tft_server_hits(srv, "/public/orderbook/BTC_KRW");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    tf_record *r = tfh_find(b, "ticker", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "exchange"), "bithumb_kr");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 136850000.0);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "bid"), TF_FIELD_NONE);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ask"), TF_FIELD_NONE);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/orderbook/BTC_KRW"), book_before);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* Two coins: one request per coin and endpoint, never ALL_KRW. */
static void test_two_symbols_single_requests(void)
{
    route_good_btc();
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/USDT_KRW", 200, NULL,
                                            "bithumb_v1_ticker_usdt_krw.json"));
    json_t *book = load_fixture("bithumb_v1_orderbook_btc_krw.json");
    json_t *data = json_object_get(book, "data");
    json_object_set_new(data, "order_currency", json_string("USDT"));
    json_object_set_new(data, "bids", json_pack("[{s:s,s:s}]", "price", "1438", "quantity", "5"));
    json_object_set_new(data, "asks", json_pack("[{s:s,s:s}]", "price", "1439", "quantity", "5"));
    route_json("/public/orderbook/USDT_KRW", 200, book);
    route_all_krw();
    int all_before = tft_server_hits(srv, "/public/ticker/ALL_KRW");
    int usdt_before = tft_server_hits(srv, "/public/ticker/USDT_KRW");
    tfh *h = open_fixture("symbols: [btc, USDT]");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    tf_record *u = tfh_find(b, "ticker", "symbol", "USDT");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(tfh_double(u, "last"), 1439.0);
    CU_ASSERT_EQUAL(tfh_double(u, "bid"), 1438.0);
    CU_ASSERT_EQUAL(tfh_double(u, "ask"), 1439.0);
    CU_ASSERT_EQUAL(tfh_double(u, "volume_24h"), 40112937.019284);
    CU_ASSERT_EQUAL(tfh_int(u, "ts_exchange"), 1795428930207LL);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(b, "ticker", "symbol", "BTC"));
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/USDT_KRW"), usdt_before + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/ALL_KRW"), all_before);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void assert_all_krw_records(const tf_batch *b)
{
    tf_record *btc = tfh_find(b, "ticker", "symbol", "BTC");
    tf_record *eth = tfh_find(b, "ticker", "symbol", "ETH");
    tf_record *usdt = tfh_find(b, "ticker", "symbol", "USDT");
    tf_record *xrp = tfh_find(b, "ticker", "symbol", "XRP");
    CU_ASSERT_PTR_NOT_NULL_FATAL(btc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(eth);
    CU_ASSERT_PTR_NOT_NULL_FATAL(usdt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xrp);
    CU_ASSERT_EQUAL(tfh_double(btc, "last"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(btc, "bid"), 136849000.0);
    CU_ASSERT_EQUAL(tfh_double(btc, "ask"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(btc, "volume_24h"), 901.18870315);
    CU_ASSERT_EQUAL(tfh_double(eth, "last"), 4968000.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "bid"), 4967000.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "ask"), 4968000.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "volume_24h"), 13877.02261754);
    CU_ASSERT_EQUAL(tfh_double(usdt, "last"), 1439.0);
    CU_ASSERT_EQUAL(tfh_double(xrp, "last"), 3498.0);
    CU_ASSERT_EQUAL(tfh_double(xrp, "volume_24h"), 21557004.13940022);
    CU_ASSERT_STRING_EQUAL(tfh_string(xrp, "quote"), "KRW");
    CU_ASSERT_STRING_EQUAL(tfh_string(xrp, "market"), "spot");
    for (size_t i = 0; i < tf_batch_count(b); i++)
        CU_ASSERT_EQUAL(tfh_int(tf_batch_at(b, i), "ts_exchange"), 1795428930411LL);
}

/* Four coins: one ALL_KRW request per endpoint instead of four each. */
static void test_all_krw_list(void)
{
    route_all_krw();
    int t0 = tft_server_hits(srv, "/public/ticker/ALL_KRW");
    int k0 = tft_server_hits(srv, "/public/orderbook/ALL_KRW");
    int btc0 = tft_server_hits(srv, "/public/ticker/BTC_KRW");
    tfh *h = open_fixture("symbols: [BTC, ETH, USDT, XRP]");
    tf_batch *b = tf_batch_create();
    double not_found = errors_of("not_found");
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 4);
    assert_all_krw_records(b);
    CU_ASSERT_EQUAL(errors_of("not_found"), not_found);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/ALL_KRW"), t0 + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/orderbook/ALL_KRW"), k0 + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/BTC_KRW"), btc0);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* "*": every active KRW market, the sibling "date" key and an inactive coin ([]) skipped. */
static void test_every_market_skips_inactive(void)
{
    json_t *all = load_fixture("bithumb_v1_ticker_all_krw.json");
    json_object_set_new(json_object_get(all, "data"), "LUNA", json_array());
    route_json("/public/ticker/ALL_KRW", 200, all);
    tft_server_route(srv, "/public/orderbook/ALL_KRW", 200, NULL, ALL_BOOK, strlen(ALL_BOOK));
    tfh *h = open_fixture("symbols: '*'");
    tf_batch *b = tf_batch_create();
    double nf = errors_of("not_found");
    double parse = errors_of("parse");
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 4);
    assert_all_krw_records(b);
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "LUNA"));
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "date"));
    CU_ASSERT_EQUAL(errors_of("not_found"), nf);
    CU_ASSERT_EQUAL(errors_of("parse"), parse);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* A requested coin absent from ALL_KRW is an error for that coin only. */
static void test_all_krw_missing_symbol(void)
{
    route_all_krw();
    tfh *h = open_fixture("symbols: [BTC, ETH, SOL, XRP]");
    tf_batch *b = tf_batch_create();
    double nf = errors_of("not_found");
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 3);
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "SOL"));
    CU_ASSERT_PTR_NOT_NULL(tfh_find(b, "ticker", "symbol", "XRP"));
    CU_ASSERT_EQUAL(errors_of("not_found"), nf + 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* ---- fixtures: failures ---- */

typedef struct bad_case {
    const char *path; /* the route that gets the bad answer */
    int status;
    const char *headers_fixture; /* *.headers.txt, or NULL */
    const char *headers;         /* literal headers, or NULL */
    const char *fixture;
    int want;
} bad_case;

static void check_bad_then_recover(tfh *h, const bad_case *c)
{
    route_good_btc();
    char *headers = c->headers_fixture ? fixture_headers(c->headers_fixture) : NULL;
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, c->path, c->status, headers ? headers : c->headers,
                                            c->fixture));
    free(headers);
    const char *cls = tf_status_name(c->want);
    double before = errors_of(cls);
    size_t n = 99;
    int rc = tick(h, &n);
    if (rc != c->want)
        fprintf(stderr, "%s on %s: expected %s, found %s\n", c->fixture, c->path, cls,
                tf_status_name(rc));
    CU_ASSERT_EQUAL(rc, c->want);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(errors_of(cls), before + 1);
    route_good_btc();
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 1);
}

static void test_bad_fixtures(void)
{
    static const bad_case cases[] = {
        {"/public/ticker/BTC_KRW", 200, "bithumb_v1_error_invalid_param.headers.txt", NULL,
         "bithumb_v1_error_invalid_param.json", TF_EAPI},
        {"/public/ticker/BTC_KRW", 200, NULL, NULL, "bithumb_v1_error_5600_try_again.json",
         TF_EAPI},
        {"/public/ticker/BTC_KRW", 200, NULL, NULL, "bad_bithumb_ticker_wrong_types.json",
         TF_EVALUE},
        {"/public/ticker/BTC_KRW", 200, NULL, NULL, "bad_empty_body.json", TF_EPARSE},
        {"/public/ticker/BTC_KRW", 502, NULL, "Content-Type: text/html; charset=UTF-8",
         "bad_html_cloudflare_502.html", TF_EHTTP},
        {"/public/ticker/BTC_KRW", 200, NULL, NULL, "bad_truncated_premium_index.json", TF_EPARSE},
        {"/public/orderbook/BTC_KRW", 200, "bithumb_v1_error_invalid_param.headers.txt", NULL,
         "bithumb_v1_error_invalid_param.json", TF_EAPI},
        {"/public/orderbook/BTC_KRW", 200, NULL, NULL, "bad_empty_body.json", TF_EPARSE},
        {"/public/orderbook/BTC_KRW", 502, NULL, "Content-Type: text/html; charset=UTF-8",
         "bad_html_cloudflare_502.html", TF_EHTTP},
        {"/public/orderbook/BTC_KRW", 200, NULL, NULL, "bad_truncated_premium_index.json",
         TF_EPARSE},
        /* A ticker body where a book is expected: no bids/asks. */
        {"/public/orderbook/BTC_KRW", 200, NULL, NULL, "bithumb_v1_ticker_btc_krw.json", TF_EVALUE},
    };
    tfh *h = open_fixture(NULL);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++)
        check_bad_then_recover(h, &cases[i]);
    tfh_close(h);
}

/* ---- plausibility ---- */

static double rejected(const char *symbol, const char *reason)
{
    static const char *const labels[] = {"pipeline", "exchange", "symbol", "reason", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_source_rejected_total", "x",
                                       labels, NULL, 0);
    const char *values[] = {"harness", PLUGIN, symbol, reason};
    return m ? tf_metric_value(m, values) : -1;
}

/* Routes the BTC ticker fixture with closing_price replaced by `price` (as Bithumb writes it:
 * a string). */
static void route_btc_price(const char *price)
{
    json_t *t = load_fixture("bithumb_v1_ticker_btc_krw.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    json_object_set_new(json_object_get(t, "data"), "closing_price", json_string(price));
    route_json("/public/ticker/BTC_KRW", 200, t);
}

/* One tick: TF_OK (a rejection is not a failed tick) and the BTC last emitted, or NAN. */
static double tick_last(tfh *h)
{
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    double last = r ? tfh_double(r, "last") : NAN;
    tf_batch_destroy(b);
    return last;
}

/* Finite but absurd prices (the mutating proxy's exponent extremes, a price x10 above the BTC
 * range) are never emitted, and each is counted with reason "range". */
static void test_plausible_range(void)
{
    route_good_btc();
    tfh *h = open_fixture(NULL);
    /* "1e-308" is refused by the strict parser already (underflow). */
    const char *absurd[] = {"1e+308", "0.5", "1368500000000", "1.3685e9"};
    for (size_t i = 0; i < TF_ARRAY_LEN(absurd); i++) {
        double before = rejected("BTC", "range");
        route_btc_price(absurd[i]);
        double last = tick_last(h);
        if (!isnan(last))
            fprintf(stderr, "FAILED: closing_price %s emitted as %.17g\n", absurd[i], last);
        CU_ASSERT_TRUE(isnan(last));
        CU_ASSERT_EQUAL(rejected("BTC", "range"), before + 1);
    }
    route_good_btc();
    CU_ASSERT_EQUAL(tick_last(h), 136850000.0);
    tfh_close(h);
    /* A venue's own bounds replace the defaults; a bad pair is refused with its key. */
    h = open_fixture("price_bounds: {BTC: [1e6, 1e8]}");
    CU_ASSERT_TRUE(isnan(tick_last(h)));
    tfh_close(h);
    char msg[2048];
    CU_ASSERT_PTR_NULL(tfh_open("source", PLUGIN, "{price_bounds: {BTC: [1e9, 1e8]}}", NULL));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{max_jump: big}", msg, sizeof msg));
    CU_ASSERT_PTR_NULL(tfh_open("source", PLUGIN, "{price_min: 10, price_max: 1}", NULL));
}

/* A jump larger than max_jump (20 %) is held back until the next update confirms it: x3 is
 * rejected, a return to the old price is accepted (the jump was a glitch), x3 twice in a row
 * is a real move and the second one is published. */
static void test_plausible_jump(void)
{
    route_good_btc();
    tfh *h = open_fixture(NULL);
    CU_ASSERT_EQUAL(tick_last(h), 136850000.0);
    double jumps = rejected("BTC", "jump");
    route_btc_price("410550000");
    CU_ASSERT_TRUE(isnan(tick_last(h)));
    CU_ASSERT_EQUAL(rejected("BTC", "jump"), jumps + 1);
    route_btc_price("136851000");
    CU_ASSERT_EQUAL(tick_last(h), 136851000.0);
    route_btc_price("410550000");
    CU_ASSERT_TRUE(isnan(tick_last(h)));
    route_btc_price("411000000"); /* within jump_tolerance (2 %) of the held jump */
    CU_ASSERT_EQUAL(tick_last(h), 411000000.0);
    CU_ASSERT_EQUAL(rejected("BTC", "jump"), jumps + 2);
    tfh_close(h);
    /* max_jump: 0 turns the jump check off (the range still applies). */
    route_good_btc();
    h = open_fixture("max_jump: 0");
    CU_ASSERT_EQUAL(tick_last(h), 136850000.0);
    route_btc_price("410550000");
    CU_ASSERT_EQUAL(tick_last(h), 410550000.0);
    tfh_close(h);
    route_good_btc();
}

/* The same failures through ALL_KRW fail the whole tick (no coin is published). */
static void test_all_krw_errors(void)
{
    tfh *h = open_fixture("symbols: '*'");
    size_t n = 99;
    route_all_krw();
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/ALL_KRW", 200, NULL,
                                            "bithumb_v1_error_5600_try_again.json"));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EAPI);
    CU_ASSERT_EQUAL(n, 0);
    route_all_krw();
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/orderbook/ALL_KRW", 200, NULL,
                                            "bad_truncated_premium_index.json"));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EPARSE);
    CU_ASSERT_EQUAL(n, 0);
    route_all_krw();
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 4);
    tfh_close(h);
}

static void route_fresh_btc(long long date_ms, const char *bid, const char *ask)
{
    json_t *t = load_fixture("bithumb_v1_ticker_btc_krw.json");
    set_ms_string(json_object_get(t, "data"), "date", date_ms);
    route_json("/public/ticker/BTC_KRW", 200, t);
    json_t *k = load_fixture("bithumb_v1_orderbook_btc_krw.json");
    json_t *data = json_object_get(k, "data");
    set_ms_string(data, "timestamp", date_ms);
    json_object_set_new(json_array_get(json_object_get(data, "bids"), 2), "price",
                        json_string(bid));
    json_object_set_new(json_array_get(json_object_get(data, "asks"), 3), "price",
                        json_string(ask));
    route_json("/public/orderbook/BTC_KRW", 200, k);
}

/* max_age (default 30 s) and the 5 s future bound, then a crossed book. */
static void test_stale_future_crossed(void)
{
    tfh *h = tfh_open("source", PLUGIN, NULL, NULL); /* default base_url: never reached */
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);
    char with[256];
    snprintf(with, sizeof with, "{base_url: '%s/'}", tft_server_url(srv));
    h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    size_t n = 99;
    double value = errors_of("value");
    route_good_btc(); /* 2026-11-23: more than 30 s old */
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    route_fresh_btc(tf_now_ms() + 60000, "136845000", "136860000");
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    route_fresh_btc(tf_now_ms(), "136851000", "136860000"); /* bid above the best ask */
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(errors_of("value"), value + 3);
    route_fresh_btc(tf_now_ms() - 1000, "136845000", "136860000");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    tf_record *r = tfh_find(b, "ticker", NULL, NULL);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 136849000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 136850000.0);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_options(void)
{
    char msg[2048];
    char with[512];
    const char *bad_init[] = {
        "{base_url: 'ftp://api.bithumb.com'}",
        "{base_url: 'http://'}",
        "{symbols: ['BTC-KRW']}",
        "{symbols: []}",
        "{symbols: [BTC, btc]}",
        "{symbols: ['*', BTC]}",
        "{timeout: 0ms}",
        "{exchange: ''}",
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(bad_init); i++) {
        tfh *h = tfh_open("source", PLUGIN, bad_init[i], NULL);
        if (h)
            fprintf(stderr, "expected init to refuse %s\n", bad_init[i]);
        CU_ASSERT_PTR_NULL(h);
        tfh_close(h);
    }
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{timeout: soon}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "timeout"));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{book: maybe}", msg, sizeof msg));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{symbol: BTC}", msg, sizeof msg));
    snprintf(with, sizeof with, "{base_url: '%s', symbols: BTC}", tft_server_url(srv));
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);
}

/* ---- live: tickflow-fake-exchange ---- */

static tft_fake *fake;

static int suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srv = tft_server_start();
    if (!srv)
        return 1;
    fake = tft_fake_start(NULL);
    if (!fake)
        return 1;
    fake->strict = true;
    return 0;
}

static int suite_cleanup(void)
{
    tft_fake_stop(fake);
    tft_server_stop(srv);
    curl_global_cleanup();
    return 0;
}

static tfh *open_live(const char *extra)
{
    char with[512];
    snprintf(with, sizeof with, "{base_url: '%s'%s%s}", fake->base, extra ? ", " : "",
             extra ? extra : "");
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    return h;
}

static void test_live_fixed_price(void)
{
    tft_fake_post(fake, "/admin/price",
                  "{\"symbol\":\"BTC\",\"usdt\":95012.35,\"krw\":136850000,"
                  "\"krw_bid\":136849000,\"krw_ask\":136850000}");
    tft_fake_post(fake, "/admin/price",
                  "{\"symbol\":\"ETH\",\"usdt\":3500,\"krw\":4968000,"
                  "\"krw_bid\":4967000,\"krw_ask\":4969000}");
    tfh *h = open_live("symbols: [BTC, ETH]");
    tf_batch *b = tf_batch_create();
    int64_t before = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 136849000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 136850000.0);
    CU_ASSERT_TRUE(tfh_double(r, "volume_24h") > 0);
    CU_ASSERT_TRUE(llabs(tfh_int(r, "ts_exchange") - before) < 5000);
    tf_record *e = tfh_find(b, "ticker", "symbol", "ETH");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(tfh_double(e, "last"), 4968000.0);
    CU_ASSERT_EQUAL(tfh_double(e, "bid"), 4967000.0);
    CU_ASSERT_EQUAL(tfh_double(e, "ask"), 4969000.0);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* "*" against the fake exchange: every coin it lists, one request per endpoint. */
static void test_live_every_market(void)
{
    tft_fake_post(fake, "/admin/price",
                  "{\"symbol\":\"BTC\",\"usdt\":95012.35,\"krw\":136850000,"
                  "\"krw_bid\":136849000,\"krw_ask\":136850000}");
    tfh *h = open_live("symbols: '*'");
    long long t0 = tft_fake_stat(fake, "bithumb.ticker", "requests");
    long long k0 = tft_fake_stat(fake, "bithumb.orderbook", "requests");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 7); /* BTC ETH XRP SOL DOGE ADA USDT */
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 136849000.0);
    for (size_t i = 0; i < tf_batch_count(b); i++) {
        tf_record *x = tf_batch_at(b, i);
        CU_ASSERT_TRUE(tfh_double(x, "bid") <= tfh_double(x, "ask"));
        CU_ASSERT_TRUE(tfh_double(x, "last") > 0);
    }
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "bithumb.ticker", "requests"), t0 + 1);
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "bithumb.orderbook", "requests"), k0 + 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

typedef struct fault_case {
    const char *mode;
    int want;
} fault_case;

static const fault_case fault_cases[] = {
    {"500", TF_EHTTP},      {"503", TF_EHTTP},          {"429", TF_ERATELIMIT},
    {"418", TF_ERATELIMIT}, {"delay", TF_ETIMEOUT},     {"truncate", TF_EPARSE},
    {"html", TF_EHTTP},     {"wrong_types", TF_EVALUE}, {"error_object", TF_EAPI},
    {"empty", TF_EPARSE},   {"zero", TF_EVALUE},
};

static void check_fault(tfh *h, const char *endpoint, const fault_case *c)
{
    tfh_check_live_fault(h, fake, PLUGIN, endpoint, c->mode, c->want, 1);
}

static void test_live_faults(void)
{
    const char *endpoints[] = {"bithumb.ticker", "bithumb.orderbook"};
    tfh *h = open_live("timeout: 500ms");
    size_t n = 0;
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    for (size_t e = 0; e < TF_ARRAY_LEN(endpoints); e++)
        for (size_t i = 0; i < TF_ARRAY_LEN(fault_cases); i++)
            check_fault(h, endpoints[e], &fault_cases[i]);
    tft_fake_post(fake, "/admin/fault", "{\"endpoint\":\"*\",\"mode\":\"none\"}");
    tfh_close(h);
}

/* Twenty ticks reuse one kept-alive connection. */
static void test_live_keep_alive(void)
{
    tfh *h = open_live("book: false");
    tft_fake_post(fake, "/admin/reset", "{}");
    for (int i = 0; i < 20; i++) {
        size_t n = 0;
        CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
        CU_ASSERT_EQUAL(n, 1);
    }
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "bithumb.ticker", "requests"), 20);
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "bithumb.ticker", "connections"), 1);
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "bithumb.orderbook", "requests"), 0);
    tfh_close(h);
}

/* Coins with an open position (the pipeline's interest) are fetched with the configured ones,
 * once each, and switch to ALL_KRW past three coins; clearing the interest stops them. */
static void test_interest_symbols_fetched(void)
{
    route_good_btc();
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/USDT_KRW", 200, NULL,
                                            "bithumb_v1_ticker_usdt_krw.json"));
    json_t *book = load_fixture("bithumb_v1_orderbook_btc_krw.json");
    json_t *data = json_object_get(book, "data");
    json_object_set_new(data, "order_currency", json_string("USDT"));
    json_object_set_new(data, "bids", json_pack("[{s:s,s:s}]", "price", "1438", "quantity", "5"));
    json_object_set_new(data, "asks", json_pack("[{s:s,s:s}]", "price", "1439", "quantity", "5"));
    route_json("/public/orderbook/USDT_KRW", 200, book);
    route_all_krw();
    char with[512];
    snprintf(with, sizeof with, "{base_url: '%s', max_age: 100000h, symbols: [BTC]}",
             tft_server_url(srv));
    tfh *r = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    /* Lower case is normalised, a configured coin is not fetched twice, junk is ignored. */
    const char *want[] = {"usdt", "BTC", "B-TC"};
    tfh_set_interest(r, want, 3);
    int usdt0 = tft_server_hits(srv, "/public/ticker/USDT_KRW");
    int btc0 = tft_server_hits(srv, "/public/ticker/BTC_KRW");
    int all0 = tft_server_hits(srv, "/public/ticker/ALL_KRW");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(r, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    tf_record *u = tfh_find(b, "ticker", "symbol", "USDT");
    CU_ASSERT_PTR_NOT_NULL(u);
    CU_ASSERT_EQUAL(tfh_double(u, "last"), 1439.0);
    CU_ASSERT_EQUAL(tfh_double(u, "bid"), 1438.0);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(b, "ticker", "symbol", "BTC"));
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/USDT_KRW"), usdt0 + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/BTC_KRW"), btc0 + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/ALL_KRW"), all0);

    /* Four coins in all: one ALL_KRW request per endpoint. */
    const char *more[] = {"ETH", "USDT", "XRP"};
    tfh_set_interest(r, more, 3);
    tf_batch_clear(b);
    CU_ASSERT_EQUAL(tfh_collect(r, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 4);
    assert_all_krw_records(b);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/ALL_KRW"), all0 + 1);

    /* No interest left: the configured coin only. */
    tfh_set_interest(r, NULL, 0);
    tf_batch_clear(b);
    CU_ASSERT_EQUAL(tfh_collect(r, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(b, "ticker", "symbol", "BTC"));
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/public/ticker/USDT_KRW"), usdt0 + 1);
    tf_batch_destroy(b);
    tfh_close(r);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"single coin: exact values", test_single_btc_exact},
        {"book: false", test_book_false},
        {"two coins: one request per coin", test_two_symbols_single_requests},
        {"four coins: ALL_KRW", test_all_krw_list},
        {"\"*\": every market, inactive skipped", test_every_market_skips_inactive},
        {"ALL_KRW: missing coin", test_all_krw_missing_symbol},
        {"bad and error fixtures", test_bad_fixtures},
        {"ALL_KRW errors", test_all_krw_errors},
        {"plausibility: out-of-range prices rejected", test_plausible_range},
        {"plausibility: jumps held until confirmed", test_plausible_jump},
        {"stale, future, crossed", test_stale_future_crossed},
        {"options", test_options},
        {"live: fixed price", test_live_fixed_price},
        {"live: every market", test_live_every_market},
        {"live: every fault mode", test_live_faults},
        {"live: keep-alive", test_live_keep_alive},
        {"interest: symbols of open positions fetched", test_interest_symbols_fetched},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("source_bithumb", tests, suite_init, suite_cleanup);
}
