/*
 * Tests of the `binance_futures` source: the fapi fixtures to exact record values (one symbol
 * with ?symbol=, several and "*" with one bulk request per endpoint, quarterly and non-USDT
 * contracts dropped), every broken/error fixture to its error class with no record, 429/418
 * with Retry-After, the used-weight gauge, option checks, and live HTTP against
 * tickflow-fake-exchange (fixed prices, every fault mode of the three endpoints, Retry-After
 * honoured without a request).
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

#define PLUGIN "binance_futures"
#define BOOK   "/fapi/v1/ticker/bookTicker"
#define PREM   "/fapi/v1/premiumIndex"
#define PRICE  "/fapi/v1/ticker/price"
#define HTML   "Content-Type: text/html; charset=UTF-8"

static tft_server *srv;

/* ---- helpers ---- */

static double errors_of(const char *cls)
{
    return tfh_errors("harness", PLUGIN, cls);
}

static double used_weight(const char *host)
{
    static const char *const labels[] = {"pipeline", "host", NULL};
    tf_metric *m = tf_metrics_register(
        TF_METRIC_GAUGE, "tickflow_binance_used_weight",
        "Request weight used this minute by this IP, from Binance's X-MBX-USED-WEIGHT-1M header",
        labels, NULL, 0);
    const char *values[] = {"harness", host};
    return m ? tf_metric_value(m, values) : -1;
}

/* host:port of a base URL, for the gauge's label. */
static const char *host_of(const char *url)
{
    return strstr(url, "://") + 3;
}

/* A harness on the fixture server. Fixture timestamps are from 2026-11-23, hence the large
 * max_age unless `extra` sets its own. */
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

static json_t *load_fixture(const char *name)
{
    return tft_fixture_json(name);
}

static void route_json(const char *path, int status, const char *headers, json_t *body)
{
    tft_server_route_json(srv, path, status, headers, body);
}

static void route_single(void)
{
    char *headers = fixture_headers("binance_fapi_book_ticker_btcusdt.headers.txt");
    CU_ASSERT_TRUE(
        tft_server_route_fixture(srv, BOOK, 200, headers, "binance_fapi_book_ticker_btcusdt.json"));
    free(headers);
    CU_ASSERT_TRUE(
        tft_server_route_fixture(srv, PREM, 200, NULL, "binance_fapi_premium_index_btcusdt.json"));
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, PRICE, 200, NULL,
                                            "binance_fapi_ticker_price_v1_btcusdt.json"));
}

/* Bulk bodies: the BTCUSDT fixtures plus ETHUSDT, the quarterly BTCUSDT_261225 and the
 * USDC-margined ETHUSDC that a bulk reply also carries; `skip_eth_premium` leaves ETHUSDT out of
 * premiumIndex. Book entries carry a lastUpdateId above 2^53. */
static void route_bulk(bool skip_eth_premium)
{
    json_t *book = json_array();
    json_t *btc = load_fixture("binance_fapi_book_ticker_btcusdt.json");
    json_object_set_new(btc, "lastUpdateId", json_integer(9214558827361234567LL));
    json_array_append_new(book, btc);
    json_array_append_new(book,
                          json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "symbol", "ETHUSDT",
                                    "bidPrice", "3500.10", "bidQty", "12.5", "askPrice", "3500.20",
                                    "askQty", "3.1", "time", (json_int_t)1795428930150LL,
                                    "lastUpdateId", (json_int_t)9214558827361234568LL));
    json_array_append_new(book,
                          json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "symbol", "BTCUSDT_261225",
                                    "bidPrice", "95600.0", "bidQty", "1", "askPrice", "95600.1",
                                    "askQty", "1", "time", (json_int_t)1795428930101LL));
    json_array_append_new(book,
                          json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "symbol", "ETHUSDC", "bidPrice",
                                    "3499.00", "bidQty", "1", "askPrice", "3499.10", "askQty", "1",
                                    "time", (json_int_t)1795428930101LL));
    route_json(BOOK, 200, "X-MBX-USED-WEIGHT-1M: 5", book);

    json_t *prem = json_array();
    json_array_append_new(prem, load_fixture("binance_fapi_premium_index_btcusdt.json"));
    if (!skip_eth_premium)
        json_array_append_new(
            prem, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "symbol", "ETHUSDT", "markPrice",
                            "3500.25000000", "indexPrice", "3501.00000000", "estimatedSettlePrice",
                            "3500.50000000", "lastFundingRate", "-0.00002500", "interestRate",
                            "0.00010000", "nextFundingTime", (json_int_t)1795449600000LL, "time",
                            (json_int_t)1795428930000LL));
    json_array_append_new(
        prem, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "symbol", "BTCUSDT_261225",
                        "markPrice", "95600.0", "indexPrice", "95040.2", "estimatedSettlePrice",
                        "95031.5", "lastFundingRate", "", "interestRate", "", "nextFundingTime",
                        (json_int_t)0, "time", (json_int_t)1795428930000LL));
    route_json(PREM, 200, "X-MBX-USED-WEIGHT-1M: 15", prem);

    json_t *price = json_array();
    json_array_append_new(price, load_fixture("binance_fapi_ticker_price_v1_btcusdt.json"));
    json_array_append_new(price, json_pack("{s:s,s:s,s:I}", "symbol", "ETHUSDT", "price", "3500.15",
                                           "time", (json_int_t)1795428930200LL));
    json_array_append_new(price, json_pack("{s:s,s:s,s:I}", "symbol", "ETHUSDC", "price", "3499.05",
                                           "time", (json_int_t)1795428930200LL));
    route_json(PRICE, 200, "X-MBX-USED-WEIGHT-1M: 17", price);
}

static int tick(tfh *h, size_t *count)
{
    return tfh_collect_count(h, count);
}

typedef struct hits {
    int book, prem, price;
} hits;

static hits hits_now(void)
{
    return (hits){tft_server_hits(srv, BOOK), tft_server_hits(srv, PREM),
                  tft_server_hits(srv, PRICE)};
}

/* ---- symbol interest: symbols other stages (the positions transform) ask sources to fetch ---- */

/* ---- fixtures: exact values ---- */

static void assert_btc_fixture(const tf_record *r)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "exchange"), "binance");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "market"), "perp");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "symbol"), "BTC");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "quote"), "USDT");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 95012.30);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 95012.30);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 95012.40);
    CU_ASSERT_EQUAL(tfh_double(r, "mark_price"), 95015.87654321);
    CU_ASSERT_EQUAL(tfh_double(r, "index_price"), 95040.21073913);
    CU_ASSERT_EQUAL(tfh_double(r, "funding_rate"), 0.00007412);
    CU_ASSERT_EQUAL(tfh_int(r, "next_funding_ts"), 1795449600000LL);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "next_funding_ts"), TF_FIELD_TS);
    /* The newest of bookTicker 1795428930101, premiumIndex ...000 and price ...097. */
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), 1795428930101LL);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts_received"), TF_FIELD_TS);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "volume_24h"), TF_FIELD_NONE);
}

static void test_single_symbol_exact(void)
{
    route_single();
    tfh *h = open_fixture("symbols: [BTC]");
    hits before = hits_now();
    tf_batch *b = tf_batch_create();
    int64_t t0 = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    int64_t t1 = tf_now_ms();
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    tf_record *r = tfh_find(b, "ticker", NULL, NULL);
    assert_btc_fixture(r);
    CU_ASSERT_TRUE(tfh_int(r, "ts_received") >= t0 && tfh_int(r, "ts_received") <= t1);
    hits after = hits_now();
    CU_ASSERT_EQUAL(after.book, before.book + 1);
    CU_ASSERT_EQUAL(after.prem, before.prem + 1);
    CU_ASSERT_EQUAL(after.price, before.price + 1);
    char url[256];
    tft_server_last_request(srv, url, sizeof url, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(url, PRICE "?symbol=BTCUSDT");
    CU_ASSERT_EQUAL(used_weight(host_of(tft_server_url(srv))), 37);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void assert_eth_bulk(const tf_record *e)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(tfh_double(e, "last"), 3500.15);
    CU_ASSERT_EQUAL(tfh_double(e, "bid"), 3500.10);
    CU_ASSERT_EQUAL(tfh_double(e, "ask"), 3500.20);
    CU_ASSERT_EQUAL(tfh_double(e, "mark_price"), 3500.25);
    CU_ASSERT_EQUAL(tfh_double(e, "index_price"), 3501.0);
    CU_ASSERT_EQUAL(tfh_double(e, "funding_rate"), -0.000025);
    CU_ASSERT_EQUAL(tfh_int(e, "ts_exchange"), 1795428930200LL);
}

/* Two symbols: one bulk request per endpoint (no ?symbol=), exact values for both. */
static void test_bulk_list(void)
{
    route_bulk(false);
    tfh *h = open_fixture("symbols: [btc, ETH]");
    hits before = hits_now();
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    assert_btc_fixture(tfh_find(b, "ticker", "symbol", "BTC"));
    assert_eth_bulk(tfh_find(b, "ticker", "symbol", "ETH"));
    hits after = hits_now();
    CU_ASSERT_EQUAL(after.book, before.book + 1);
    CU_ASSERT_EQUAL(after.prem, before.prem + 1);
    CU_ASSERT_EQUAL(after.price, before.price + 1);
    char url[256];
    tft_server_last_request(srv, url, sizeof url, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(url, PRICE);
    CU_ASSERT_EQUAL(used_weight(host_of(tft_server_url(srv))), 17);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* "*": every USDT perpetual; the quarterly and the USDC contract are dropped silently. */
static void test_every_perp_filter(void)
{
    route_bulk(false);
    tfh *h = open_fixture("symbols: '*'");
    hits before = hits_now();
    double nf = errors_of("not_found");
    double value = errors_of("value");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    assert_btc_fixture(tfh_find(b, "ticker", "symbol", "BTC"));
    assert_eth_bulk(tfh_find(b, "ticker", "symbol", "ETH"));
    for (size_t i = 0; i < tf_batch_count(b); i++)
        CU_ASSERT_STRING_EQUAL(tfh_string(tf_batch_at(b, i), "quote"), "USDT");
    CU_ASSERT_EQUAL(errors_of("not_found"), nf);
    CU_ASSERT_EQUAL(errors_of("value"), value);
    hits after = hits_now();
    CU_ASSERT_EQUAL(after.book, before.book + 1);
    CU_ASSERT_EQUAL(after.prem, before.prem + 1);
    CU_ASSERT_EQUAL(after.price, before.price + 1);
    tf_batch_destroy(b);
    tfh_close(h);

    /* quote: USDC keeps only ETHUSDC, which lacks a premiumIndex entry here: reported. */
    h = open_fixture("symbols: '*', quote: usdc, exchange: binance_usdm");
    b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_ENOTFOUND);
    CU_ASSERT_EQUAL(tf_batch_count(b), 0);
    CU_ASSERT_EQUAL(errors_of("not_found"), nf + 1);
    tf_batch_destroy(b);
    tfh_close(h);

    /* No perpetual with that quote at all: an error, not a silent empty tick. */
    h = open_fixture("symbols: '*', quote: BUSD");
    b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_ENOTFOUND);
    CU_ASSERT_EQUAL(tf_batch_count(b), 0);
    CU_ASSERT_EQUAL(errors_of("not_found"), nf + 2);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* A symbol must have all three parts; the others are still emitted. */
static void test_bulk_missing_part(void)
{
    route_bulk(true);
    tfh *h = open_fixture("symbols: [BTC, ETH]");
    double nf = errors_of("not_found");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(b, "ticker", "symbol", "BTC"));
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "ETH"));
    CU_ASSERT_EQUAL(errors_of("not_found"), nf + 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* ---- fixtures: failures ---- */

typedef struct bad_case {
    const char *path;
    int status;
    const char *headers;
    const char *fixture;
    int want;
} bad_case;

static void check_bad_then_recover(tfh *h, const bad_case *c)
{
    route_single();
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, c->path, c->status, c->headers, c->fixture));
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
    route_single();
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 1);
}

static void test_bad_fixtures(void)
{
    static const bad_case cases[] = {
        {BOOK, 400, NULL, "binance_fapi_error_invalid_symbol.json", TF_EAPI},
        {PREM, 400, NULL, "binance_fapi_error_invalid_symbol.json", TF_EAPI},
        {PRICE, 400, NULL, "binance_fapi_error_invalid_symbol.json", TF_EAPI},
        {PREM, 200, NULL, "bad_truncated_premium_index.json", TF_EPARSE},
        {BOOK, 200, NULL, "bad_binance_book_ticker_non_numeric.json", TF_EVALUE},
        {BOOK, 200, NULL, "bad_empty_body.json", TF_EPARSE},
        {PRICE, 200, NULL, "bad_empty_body.json", TF_EPARSE},
        {BOOK, 502, HTML, "bad_html_cloudflare_502.html", TF_EHTTP},
        {PRICE, 502, HTML, "bad_html_cloudflare_502.html", TF_EHTTP},
        /* The wrong endpoint's body: no bidPrice. */
        {BOOK, 200, NULL, "binance_fapi_ticker_price_v1_btcusdt.json", TF_EVALUE},
        /* The error object with HTTP 200 is still an error. */
        {PRICE, 200, NULL, "binance_fapi_error_invalid_symbol.json", TF_EAPI},
    };
    tfh *h = open_fixture(NULL);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++)
        check_bad_then_recover(h, &cases[i]);
    tfh_close(h);
}

/* 429 and 418 with their headers: TF_ERATELIMIT, the weight gauge from the error reply, and
 * the next tick sends nothing while Retry-After (30 s, 600 s) is in force. */
static void check_rate_limited(int status, const char *fixture, const char *headers_fixture,
                               double weight)
{
    route_single();
    char *headers = fixture_headers(headers_fixture);
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, BOOK, status, headers, fixture));
    free(headers);
    tfh *h = open_fixture(NULL); /* its own HTTP client: the block does not leak into others */
    double before = errors_of("rate_limited");
    size_t n = 99;
    CU_ASSERT_EQUAL(tick(h, &n), TF_ERATELIMIT);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(errors_of("rate_limited"), before + 1);
    if (weight > 0)
        CU_ASSERT_EQUAL(used_weight(host_of(tft_server_url(srv))), weight);
    route_single();
    int total = tft_server_total_hits(srv);
    CU_ASSERT_EQUAL(tick(h, &n), TF_ERATELIMIT);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(tft_server_total_hits(srv), total);
    CU_ASSERT_EQUAL(errors_of("rate_limited"), before + 2);
    tfh_close(h);
}

static void test_rate_limit_fixtures(void)
{
    check_rate_limited(429, "binance_fapi_error_429_too_many_requests.json",
                       "binance_fapi_error_429_too_many_requests.headers.txt", 2401);
    check_rate_limited(418, "binance_fapi_error_418_ip_banned.json",
                       "binance_fapi_error_418_ip_banned.headers.txt", 0);
}

static json_t *fresh(const char *fixture, long long time_ms)
{
    json_t *j = load_fixture(fixture);
    json_object_set_new(j, "time", json_integer(time_ms));
    return j;
}

static void route_fresh(long long book_ms, long long prem_ms, long long price_ms, const char *bid)
{
    json_t *book = fresh("binance_fapi_book_ticker_btcusdt.json", book_ms);
    json_object_set_new(book, "bidPrice", json_string(bid));
    route_json(BOOK, 200, NULL, book);
    route_json(PREM, 200, NULL, fresh("binance_fapi_premium_index_btcusdt.json", prem_ms));
    route_json(PRICE, 200, NULL, fresh("binance_fapi_ticker_price_v1_btcusdt.json", price_ms));
}

/* Default max_age (30 s) for each endpoint's `time`, the 5 s future bound, a crossed book. */
static void test_stale_future_crossed(void)
{
    char with[256];
    snprintf(with, sizeof with, "{base_url: '%s'}", tft_server_url(srv));
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    long long now = tf_now_ms();
    double value = errors_of("value");
    size_t n = 99;
    route_fresh(now, now, now - 60000, "95012.30"); /* stale price */
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    route_fresh(now, now - 40000, now, "95012.30"); /* stale premiumIndex */
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    route_fresh(now + 60000, now, now, "95012.30"); /* book from the future */
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    route_fresh(now, now, now, "95012.50"); /* bid above ask 95012.40 */
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(errors_of("value"), value + 4);
    now = tf_now_ms();
    route_fresh(now - 20, now - 10, now - 30, "95012.40"); /* bid == ask is allowed */
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    tf_record *r = tfh_find(b, "ticker", NULL, NULL);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), now - 10);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 95012.40);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_options(void)
{
    char msg[2048];
    const char *bad_init[] = {
        "{base_url: 'fapi.binance.com'}",
        "{symbols: ['BTC/USDT']}",
        "{symbols: []}",
        "{symbols: [ETH, eth]}",
        "{symbols: ['*', BTC]}",
        "{quote: 'US-DT'}",
        "{max_age: 0ms}",
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(bad_init); i++) {
        tfh *h = tfh_open("source", PLUGIN, bad_init[i], NULL);
        if (h)
            fprintf(stderr, "expected init to refuse %s\n", bad_init[i]);
        CU_ASSERT_PTR_NULL(h);
        tfh_close(h);
    }
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{timeout: later}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "timeout"));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{interval: 1s}", msg, sizeof msg));
    tfh *h = tfh_open("source", PLUGIN, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);
}

/* ---- live: tickflow-fake-exchange ---- */

static tft_fake *fake;

/* Market requests the fake exchange received on the three Binance endpoints. */
static long long binance_requests(void)
{
    static const char *const ids[] = {"binance.book_ticker", "binance.premium_index",
                                      "binance.ticker_price"};
    json_t *s = tft_fake_admin(fake, "/admin/stats", NULL);
    long long n = 0;
    for (size_t i = 0; i < TF_ARRAY_LEN(ids); i++) {
        json_t *ep = json_object_get(json_object_get(s, "endpoints"), ids[i]);
        n += (long long)json_integer_value(json_object_get(ep, "requests"));
    }
    json_decref(s);
    return n;
}

static long long endpoint_requests(const char *id)
{
    json_t *s = tft_fake_admin(fake, "/admin/stats", NULL);
    json_t *ep = json_object_get(json_object_get(s, "endpoints"), id);
    long long n = (long long)json_integer_value(json_object_get(ep, "requests"));
    json_decref(s);
    return n;
}

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
                  "{\"symbol\":\"BTC\",\"usdt\":95012.35,\"bid\":95012.3,"
                  "\"ask\":95012.4,\"mark\":95015.87654321}");
    tfh *h = open_live(NULL);
    tf_batch *b = tf_batch_create();
    int64_t before = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 95012.35);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 95012.3);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 95012.4);
    CU_ASSERT_EQUAL(tfh_double(r, "mark_price"), 95015.87654321);
    CU_ASSERT_EQUAL(tfh_double(r, "funding_rate"), 0.0001);
    CU_ASSERT_TRUE(fabs(tfh_double(r, "index_price") / 95012.35 - 1.00026) < 1e-7);
    int64_t next = tfh_int(r, "next_funding_ts");
    CU_ASSERT_TRUE(next > before && next % 28800000LL == 0);
    CU_ASSERT_TRUE(llabs(tfh_int(r, "ts_exchange") - before) < 5000);
    CU_ASSERT_TRUE(used_weight(host_of(fake->base)) > 0);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* "*" live: the six USDT perps the fake lists, one request per endpoint, quarterly and USDC
 * contracts (which the fake's bulk replies include) dropped. */
static void test_live_every_perp(void)
{
    tfh *h = open_live("symbols: '*'");
    long long b0 = endpoint_requests("binance.book_ticker");
    long long p0 = endpoint_requests("binance.premium_index");
    long long t0 = endpoint_requests("binance.ticker_price");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 6);
    const char *want[] = {"BTC", "ETH", "XRP", "SOL", "DOGE", "ADA"};
    for (size_t i = 0; i < TF_ARRAY_LEN(want); i++)
        CU_ASSERT_PTR_NOT_NULL(tfh_find(b, "ticker", "symbol", want[i]));
    CU_ASSERT_EQUAL(endpoint_requests("binance.book_ticker"), b0 + 1);
    CU_ASSERT_EQUAL(endpoint_requests("binance.premium_index"), p0 + 1);
    CU_ASSERT_EQUAL(endpoint_requests("binance.ticker_price"), t0 + 1);
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
    const char *endpoints[] = {"binance.book_ticker", "binance.premium_index",
                               "binance.ticker_price"};
    tfh *h = open_live("timeout: 500ms");
    size_t n = 0;
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    for (size_t e = 0; e < TF_ARRAY_LEN(endpoints); e++)
        for (size_t i = 0; i < TF_ARRAY_LEN(fault_cases); i++)
            check_fault(h, endpoints[e], &fault_cases[i]);
    tft_fake_post(fake, "/admin/fault", "{\"endpoint\":\"*\",\"mode\":\"none\"}");
    tfh_close(h);
}

typedef struct retry_arg {
    tfh *h;
    long long requests_before;
    int ticks;
} retry_arg;

/* True once a tick reaches the fake exchange again. */
static bool request_made(void *arg)
{
    retry_arg *a = arg;
    size_t n = 0;
    tick(a->h, &n);
    a->ticks++;
    return binance_requests() > a->requests_before;
}

/* 429 + Retry-After: 1: the next tick sends nothing; a tick about a second later does. */
static void test_live_retry_after(void)
{
    tfh *h = open_live(NULL);
    size_t n = 0;
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    tft_fake_post(fake, "/admin/fault",
                  "{\"endpoint\":\"binance.book_ticker\",\"mode\":\"429\","
                  "\"retry_after\":1,\"count\":1}");
    long long t429 = tft_mono_ms();
    CU_ASSERT_EQUAL(tick(h, &n), TF_ERATELIMIT);
    long long after_429 = binance_requests();
    CU_ASSERT_EQUAL(tick(h, &n), TF_ERATELIMIT);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(binance_requests(), after_429);
    retry_arg a = {.h = h, .requests_before = after_429};
    CU_ASSERT_TRUE(tft_wait_until(request_made, &a, 5000));
    long long waited = tft_mono_ms() - t429;
    CU_ASSERT_TRUE(waited >= 900); /* Retry-After 1 s, less a margin for clock granularity */
    CU_ASSERT_TRUE(a.ticks > 1);
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 1);
    tfh_close(h);
}

/* A base with an open position (the pipeline's interest) is read with the configured one, in
 * the bulk form; clearing the interest goes back to ?symbol=. */
static void test_interest_symbols_fetched(void)
{
    route_bulk(false);
    char with[512];
    snprintf(with, sizeof with, "{base_url: '%s', max_age: 100000h, symbols: [BTC]}",
             tft_server_url(srv));
    tfh *r = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    const char *want[] = {"eth", "BTC", "not/a/base"};
    tfh_set_interest(r, want, 3);
    hits before = hits_now();
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(r, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    assert_btc_fixture(tfh_find(b, "ticker", "symbol", "BTC"));
    assert_eth_bulk(tfh_find(b, "ticker", "symbol", "ETH"));
    hits after = hits_now();
    CU_ASSERT_EQUAL(after.price, before.price + 1);
    char url[256];
    tft_server_last_request(srv, url, sizeof url, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(url, PRICE);

    tfh_set_interest(r, NULL, 0);
    route_single();
    tf_batch_clear(b);
    CU_ASSERT_EQUAL(tfh_collect(r, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    assert_btc_fixture(tfh_find(b, "ticker", "symbol", "BTC"));
    tft_server_last_request(srv, url, sizeof url, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(url, PRICE "?symbol=BTCUSDT");
    tf_batch_destroy(b);
    tfh_close(r);
}

/* ---- plausibility ---- */

static double rejected(const char *symbol, const char *reason)
{
    static const char *const labels[] = {"pipeline", "exchange", "symbol", "reason", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_source_rejected_total", "x",
                                       labels, NULL, 0);
    const char *values[] = {"harness", "binance", symbol, reason};
    return m ? tf_metric_value(m, values) : -1;
}

/* Routes the premiumIndex fixture with markPrice replaced by `mark` (a string, as Binance
 * writes it). */
static void route_mark(const char *mark)
{
    json_t *p = load_fixture("binance_fapi_premium_index_btcusdt.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_object_set_new(p, "markPrice", json_string(mark));
    route_json(PREM, 200, NULL, p);
}

static size_t tick_count(tfh *h)
{
    size_t n = 0;
    CU_ASSERT_EQUAL(tfh_collect_count(h, &n), TF_OK);
    return n;
}

/* Every price field is guarded, not only last: an absurd mark price (1e+308, x10 above the
 * BTC range) keeps the whole record back and is counted; a x1.5 mark is a jump, held until a
 * second update confirms it. */
static void test_plausible(void)
{
    route_single();
    tfh *h = open_fixture(NULL);
    CU_ASSERT_EQUAL(tick_count(h), 1);
    const char *absurd[] = {"1e+308", "9501587.654", "0.00001"};
    for (size_t i = 0; i < TF_ARRAY_LEN(absurd); i++) {
        double before = rejected("BTC", "range");
        route_mark(absurd[i]);
        CU_ASSERT_EQUAL(tick_count(h), 0);
        CU_ASSERT_EQUAL(rejected("BTC", "range"), before + 1);
    }
    double jumps = rejected("BTC", "jump");
    route_mark("142523.8");
    CU_ASSERT_EQUAL(tick_count(h), 0);
    CU_ASSERT_EQUAL(rejected("BTC", "jump"), jumps + 1);
    CU_ASSERT_EQUAL(tick_count(h), 1); /* the same x1.5 again: confirmed */
    route_single();
    CU_ASSERT_EQUAL(tick_count(h), 0); /* and back is a jump of its own */
    CU_ASSERT_EQUAL(tick_count(h), 1);
    tfh_close(h);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"one symbol: exact values, ?symbol=", test_single_symbol_exact},
        {"two symbols: bulk, exact values", test_bulk_list},
        {"\"*\": perpetuals only", test_every_perp_filter},
        {"bulk: a missing part", test_bulk_missing_part},
        {"bad and error fixtures", test_bad_fixtures},
        {"429/418 fixtures: Retry-After", test_rate_limit_fixtures},
        {"stale, future, crossed", test_stale_future_crossed},
        {"options", test_options},
        {"plausibility: range and jumps of every price", test_plausible},
        {"live: fixed price", test_live_fixed_price},
        {"live: every perpetual", test_live_every_perp},
        {"live: every fault mode", test_live_faults},
        {"live: Retry-After honoured", test_live_retry_after},
        {"interest: symbols of open positions fetched", test_interest_symbols_fetched},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("source_binance_futures", tests, suite_init, suite_cleanup);
}
