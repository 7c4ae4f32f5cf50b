/*
 * The `premium` transform through the real host: exact premiums from the shared fixture numbers
 * (computed inline here and checked against tests/fixtures/exchanges/README.md), staleness at
 * each bound, missing inputs, every exchange pair and the `pairs`/`symbols` filters, the price
 * bases, inputs remembered and forgotten across ticks, and bad values that never become a
 * premium.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define PLUGIN "premium"
#define MIN_MS (60LL * 1000)

/* Fixture numbers (tests/fixtures/exchanges/README.md, "Expected premiums"). */
#define BITHUMB_LAST 136850000.0    /* bithumb_v1_ticker_btc_krw.json closing_price */
#define BITHUMB_BID  136849000.0    /* bithumb_v1_orderbook_btc_krw.json best bid */
#define BITHUMB_ASK  136850000.0    /* best ask */
#define BITHUMB_USDT 1439.0         /* bithumb_v1_ticker_usdt_krw.json closing_price */
#define UPBIT_LAST   136820000.0    /* upbit_ticker_krw_btc.json trade_price */
#define UPBIT_USDT   1438.0         /* upbit_ticker_krw_usdt.json trade_price */
#define BINANCE_BID  95012.30       /* binance_fapi_book_ticker_btcusdt.json bidPrice */
#define BINANCE_ASK  95012.40       /* askPrice */
#define BINANCE_MARK 95015.87654321 /* binance_fapi_premium_index_btcusdt.json markPrice */
#define BINANCE_LAST 95020.10       /* not in a fixture: only for the `last` basis */
#define DUNAMU       1402.50        /* dunamu_forex_krwusd.json basePrice */
#define ER_API       1401.87        /* er_api_latest_usd.json rates.KRW */
#define KOREAEXIM    1399.5         /* koreaexim_exchange_ap01.json deal_bas_r */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- building inputs ---- */

/* A ticker to add; prices of 0 are left out of the record. */
typedef struct tk {
    const char *exchange;
    const char *symbol;
    const char *quote;
    double last, bid, ask, mark;
    int64_t ts;
} tk;

static void add_ticker(tf_batch *b, tk t)
{
    tf_record *r = tf_record_new(b, "ticker");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    bool krw = strcmp(t.quote, "KRW") == 0;
    CU_ASSERT_EQUAL(tf_record_set_string(r, "exchange", t.exchange), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "market", krw ? "spot" : "perp"), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "symbol", t.symbol), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "quote", t.quote), TF_OK);
    if (t.last != 0)
        CU_ASSERT_EQUAL(tf_record_set_double(r, "last", t.last), TF_OK);
    if (t.bid != 0)
        CU_ASSERT_EQUAL(tf_record_set_double(r, "bid", t.bid), TF_OK);
    if (t.ask != 0)
        CU_ASSERT_EQUAL(tf_record_set_double(r, "ask", t.ask), TF_OK);
    if (t.mark != 0)
        CU_ASSERT_EQUAL(tf_record_set_double(r, "mark_price", t.mark), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_ts(r, "ts_exchange", t.ts), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_ts(r, "ts_received", now_ms()), TF_OK);
}

/* An fx record as the redis source re-emits it: timestamps as INT, not TS. */
static tf_record *add_fx(tf_batch *b, double rate, const char *provider, int64_t ts_provider)
{
    tf_record *r = tf_record_new(b, "fx");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "pair", "USDKRW"), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_double(r, "rate", rate), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "provider", provider), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_int(r, "ts_provider", ts_provider), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_int(r, "ts_received", now_ms()), TF_OK);
    return r;
}

static tk bithumb_btc(int64_t ts)
{
    return (tk){"bithumb", "BTC", "KRW", BITHUMB_LAST, BITHUMB_BID, BITHUMB_ASK, 0, ts};
}

static tk binance_btc(int64_t ts)
{
    return (tk){"binance", "BTC", "USDT", BINANCE_LAST, BINANCE_BID, BINANCE_ASK, BINANCE_MARK, ts};
}

/* ---- reading outputs ---- */

static size_t count_kind(const tf_batch *b, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < tf_batch_count(b); i++)
        n += strcmp(tf_record_kind(tf_batch_at(b, i)), kind) == 0;
    return n;
}

/* Every number a premium carries is finite and non-zero: an absent input is an absent field. */
static void assert_clean(const tf_record *r)
{
    for (size_t i = 0; i < tf_record_field_count(r); i++) {
        const char *name = NULL;
        tf_field_type t = tf_record_field_at(r, i, &name);
        if (t != TF_FIELD_DOUBLE)
            continue;
        double v = NAN;
        CU_ASSERT_EQUAL(tf_record_get_double(r, name, &v), TF_OK);
        if (!isfinite(v) || v == 0)
            fprintf(stderr, "FAILED: premium field %s = %g\n", name, v);
        CU_ASSERT(isfinite(v) && v != 0);
    }
}

static tf_record *find_premium(const tf_batch *b, const char *symbol, const char *krw,
                               const char *global)
{
    for (size_t i = 0; i < tf_batch_count(b); i++) {
        tf_record *r = tf_batch_at(b, i);
        if (strcmp(tf_record_kind(r), "premium") != 0)
            continue;
        const char *s = tfh_string(r, "symbol");
        const char *k = tfh_string(r, "krw_exchange");
        const char *g = tfh_string(r, "global_exchange");
        if (s && k && g && strcmp(s, symbol) == 0 && strcmp(k, krw) == 0 &&
            strcmp(g, global) == 0) {
            assert_clean(r);
            return r;
        }
    }
    return NULL;
}

static bool has_field(const tf_record *r, const char *name)
{
    return tf_record_field_type(r, name) != TF_FIELD_NONE;
}

static bool stale_of(const tf_record *r)
{
    bool v = false;
    CU_ASSERT_EQUAL(tf_record_get_bool(r, "stale", &v), TF_OK);
    return v;
}

/* |got - want| <= 1e-9 * |want|, printing both on failure. */
static void assert_rel(double got, double want, const char *what)
{
    bool ok = isfinite(got) && fabs(got - want) <= 1e-9 * fabs(want);
    if (!ok)
        fprintf(stderr, "FAILED: %s: got %.15g, want %.15g\n", what, got, want);
    CU_ASSERT(ok);
}

/* The README rounds to three decimals. */
static void assert_readme(double got, double readme, const char *what)
{
    bool ok = fabs(got - readme) <= 0.001;
    if (!ok)
        fprintf(stderr, "FAILED: %s: got %.6f, README says %.3f\n", what, got, readme);
    CU_ASSERT(ok);
}

static double gauge(const char *name, const char *symbol, const char *krw, const char *global)
{
    static const char *const labels[] = {"pipeline", "symbol", "krw_exchange", "global_exchange",
                                         NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_GAUGE, name, "x", labels, NULL, 0);
    const char *values[] = {"harness", symbol, krw, global};
    return m ? tf_metric_value(m, values) : NAN;
}

static double errors_of(int status)
{
    static const char *const labels[] = {"pipeline", "plugin", "class", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_plugin_errors_total",
                                       "Plugin errors by class.", labels, NULL, 0);
    const char *values[] = {"harness", PLUGIN, tf_status_name(status)};
    return m ? tf_metric_value(m, values) : -1;
}

static tfh *open_premium(const char *with)
{
    tfh *h = tfh_open("transform", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    return h;
}

/* Runs one tick over `b` and checks that the inputs are still there, in front. */
static void run(tfh *h, tf_batch *b)
{
    size_t inputs = tf_batch_count(b);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT(tf_batch_count(b) >= inputs);
    for (size_t i = 0; i < inputs; i++)
        CU_ASSERT_STRING_NOT_EQUAL(tf_record_kind(tf_batch_at(b, i)), "premium");
}

/* ---- tests ---- */

static void test_fixture_mid(void)
{
    tfh *h = open_premium("{price: mid}");
    int64_t now = now_ms();
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now - 200));
    add_ticker(b, binance_btc(now - 100));
    add_ticker(b, (tk){"bithumb", "USDT", "KRW", BITHUMB_USDT, 0, 0, 0, now - 300});
    add_fx(b, DUNAMU, "dunamu", now - MIN_MS);
    run(h, b);
    CU_ASSERT_EQUAL(tf_batch_count(b), 5); /* 4 inputs + 1 premium (USDT has no global) */
    CU_ASSERT_EQUAL(count_kind(b, "ticker"), 3);
    CU_ASSERT_EQUAL(count_kind(b, "fx"), 1);
    tf_record *r = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);

    double mid = (95012.30 + 95012.40) / 2;
    double pct = (136850000.0 / (mid * 1402.50) - 1) * 100;
    assert_rel(tfh_double(r, "premium_pct"), pct, "premium_pct (mid)");
    assert_readme(tfh_double(r, "premium_pct"), 2.698, "premium_pct (mid)");
    double exit_pct = (136849000.0 / (95012.40 * 1402.50) - 1) * 100;
    assert_rel(tfh_double(r, "exit_premium_pct"), exit_pct, "exit_premium_pct");
    assert_readme(tfh_double(r, "exit_premium_pct"), 2.697, "exit_premium_pct");
    double entry_pct = (136850000.0 / (95012.30 * 1402.50) - 1) * 100;
    assert_rel(tfh_double(r, "entry_premium_pct"), entry_pct, "entry_premium_pct");
    double usdt_pct = (136850000.0 / (mid * 1439.0) - 1) * 100;
    assert_rel(tfh_double(r, "premium_usdt_pct"), usdt_pct, "premium_usdt_pct");
    CU_ASSERT_EQUAL(tfh_double(r, "usdt_krw"), 1439.0);

    CU_ASSERT_STRING_EQUAL(tfh_string(r, "basis"), "mid");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "global_quote"), "USDT");
    CU_ASSERT_EQUAL(tfh_double(r, "krw_price"), 136850000.0);
    assert_rel(tfh_double(r, "global_price"), 95012.35, "global_price");
    CU_ASSERT_EQUAL(tfh_double(r, "usdkrw"), 1402.50);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "fx_provider"), "dunamu");
    CU_ASSERT_EQUAL(tfh_double(r, "krw_bid"), 136849000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "krw_ask"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "global_bid"), 95012.30);
    CU_ASSERT_EQUAL(tfh_double(r, "global_ask"), 95012.40);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts"), TF_FIELD_TS);
    CU_ASSERT_EQUAL(tfh_int(r, "ts"), now - 100); /* the newer ticker */
    CU_ASSERT_EQUAL(tfh_int(r, "skew_ms"), 100);
    int64_t age = tfh_int(r, "age_ms"); /* the older ticker: now - 200 */
    CU_ASSERT(age >= 200 && age < 200 + 2000);
    int64_t fx_age = tfh_int(r, "fx_age_ms");
    CU_ASSERT(fx_age >= MIN_MS && fx_age < MIN_MS + 2000);
    CU_ASSERT_FALSE(stale_of(r));
    CU_ASSERT_FALSE(has_field(r, "stale_reason"));

    assert_rel(gauge("tickflow_premium_pct", "BTC", "bithumb", "binance"), pct, "gauge pct");
    CU_ASSERT_EQUAL(gauge("tickflow_premium_stale", "BTC", "bithumb", "binance"), 0);
    CU_ASSERT_DOUBLE_EQUAL(gauge("tickflow_premium_age_seconds", "BTC", "bithumb", "binance"),
                           (double)age / 1000.0, 1e-9);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* One tick with the Bithumb and Binance fixtures under `with`; returns the premium_pct. */
static double basis_premium(const char *with, const char *basis, double *global_price)
{
    tfh *h = open_premium(with);
    int64_t now = now_ms();
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now));
    add_ticker(b, binance_btc(now));
    add_fx(b, DUNAMU, "dunamu", now - MIN_MS);
    run(h, b);
    tf_record *r = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL(r);
    double pct = tfh_double(r, "premium_pct");
    *global_price = tfh_double(r, "global_price");
    CU_ASSERT(r && strcmp(tfh_string(r, "basis"), basis) == 0);
    tf_batch_destroy(b);
    tfh_close(h);
    return pct;
}

static void test_bases(void)
{
    double gp = 0;
    double pct = basis_premium("{price: mark}", "mark", &gp);
    assert_rel(pct, (136850000.0 / (95015.87654321 * 1402.50) - 1) * 100, "premium_pct (mark)");
    assert_readme(pct, 2.694, "premium_pct (mark)");
    CU_ASSERT_EQUAL(gp, 95015.87654321);

    pct = basis_premium(NULL, "last", &gp); /* the default */
    assert_rel(pct, (136850000.0 / (95020.10 * 1402.50) - 1) * 100, "premium_pct (last)");
    CU_ASSERT_EQUAL(gp, 95020.10);

    /* A global ticker without what the basis needs (a spot venue has no mark price, a trade
     * feed no book) gives no premium. */
    static const char *const withs[] = {"{price: mark}", "{price: mid}"};
    for (size_t i = 0; i < TF_ARRAY_LEN(withs); i++) {
        tfh *h = open_premium(withs[i]);
        int64_t now = now_ms();
        tf_batch *b = tf_batch_create();
        add_ticker(b, bithumb_btc(now));
        add_ticker(b, (tk){"binance", "BTC", "USDT", BINANCE_LAST, 0, BINANCE_ASK, 0, now});
        add_fx(b, DUNAMU, "dunamu", now);
        run(h, b);
        CU_ASSERT_EQUAL(count_kind(b, "premium"), 0);
        tf_batch_destroy(b);
        tfh_close(h);
    }
}

/* Every row of the README table that this transform computes. */
static void test_readme_table(void)
{
    double mid = (95012.30 + 95012.40) / 2;
    tfh *h = open_premium("{price: mid}");
    int64_t now = now_ms();
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now));
    add_ticker(b, (tk){"upbit", "BTC", "KRW", UPBIT_LAST, 0, 0, 0, now});
    add_ticker(b, (tk){"upbit", "USDT", "KRW", UPBIT_USDT, 0, 0, 0, now});
    add_ticker(b, binance_btc(now));
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    tf_record *up = find_premium(b, "BTC", "upbit", "binance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(up);
    assert_rel(tfh_double(up, "premium_pct"), (136820000.0 / (mid * 1402.50) - 1) * 100, "upbit");
    assert_readme(tfh_double(up, "premium_pct"), 2.675, "upbit");
    assert_rel(tfh_double(up, "premium_usdt_pct"), (136820000.0 / (mid * 1438.0) - 1) * 100,
               "upbit usdt basis");
    assert_readme(tfh_double(up, "premium_usdt_pct"), 0.141, "upbit usdt basis");
    /* Upbit's USDT/KRW is Upbit's only: Bithumb has none, so no USDT-basis fields there. */
    tf_record *bt = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bt);
    CU_ASSERT_FALSE(has_field(bt, "usdt_krw"));
    CU_ASSERT_FALSE(has_field(bt, "premium_usdt_pct"));
    /* Upbit has no book in this feed: no executable premiums, no zero bid. */
    CU_ASSERT_FALSE(has_field(up, "entry_premium_pct"));
    CU_ASSERT_FALSE(has_field(up, "krw_bid"));
    tf_batch_destroy(b);

    /* Other FX providers: the same tickers remembered, a new rate each tick. */
    static const struct {
        double rate;
        const char *provider;
        double readme;
    } fx[] = {{ER_API, "er_api", 2.744}, {KOREAEXIM, "koreaexim", 2.918}};
    for (size_t i = 0; i < TF_ARRAY_LEN(fx); i++) {
        b = tf_batch_create();
        add_fx(b, fx[i].rate, fx[i].provider, now_ms());
        run(h, b);
        tf_record *r = find_premium(b, "BTC", "bithumb", "binance");
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        assert_rel(tfh_double(r, "premium_pct"), (136850000.0 / (mid * fx[i].rate) - 1) * 100,
                   fx[i].provider);
        assert_readme(tfh_double(r, "premium_pct"), fx[i].readme, fx[i].provider);
        CU_ASSERT_STRING_EQUAL(tfh_string(r, "fx_provider"), fx[i].provider);
        tf_batch_destroy(b);
    }
    tfh_close(h);

    /* Tether premium: Upbit's USDT/KRW against 1 USD. */
    h = open_premium(NULL);
    b = tf_batch_create();
    now = now_ms();
    add_ticker(b, (tk){"upbit", "USDT", "KRW", UPBIT_USDT, 0, 0, 0, now});
    add_ticker(b, (tk){"usd", "USDT", "USD", 1.0, 0, 0, 0, now});
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    tf_record *r = find_premium(b, "USDT", "upbit", "usd");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    assert_rel(tfh_double(r, "premium_pct"), (1438.0 / (1.0 * 1402.50) - 1) * 100, "tether");
    assert_readme(tfh_double(r, "premium_pct"), 2.531, "tether");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "global_quote"), "USD");
    CU_ASSERT_FALSE(has_field(r, "premium_usdt_pct")); /* USDT against itself: always 0 */
    tf_batch_destroy(b);
    tfh_close(h);
}

typedef struct outcome {
    bool found;
    bool stale;
    char reason[64];
    double gauge_stale;
} outcome;

/* One tick with tickers at krw_ts / global_ts and FX at fx_ts. */
static outcome one_tick(tfh *h, int64_t krw_ts, int64_t global_ts, int64_t fx_ts)
{
    outcome o = {0};
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(krw_ts));
    add_ticker(b, binance_btc(global_ts));
    add_fx(b, DUNAMU, "dunamu", fx_ts);
    run(h, b);
    tf_record *r = find_premium(b, "BTC", "bithumb", "binance");
    if (r) {
        o.found = true;
        o.stale = stale_of(r);
        const char *reason = tfh_string(r, "stale_reason");
        snprintf(o.reason, sizeof o.reason, "%s", reason ? reason : "");
        CU_ASSERT_EQUAL(has_field(r, "stale_reason"), o.stale);
    }
    o.gauge_stale = gauge("tickflow_premium_stale", "BTC", "bithumb", "binance");
    tf_batch_destroy(b);
    return o;
}

static void expect(outcome o, bool stale, const char *reason, const char *what)
{
    CU_ASSERT_TRUE(o.found);
    CU_ASSERT_EQUAL(o.stale, stale);
    CU_ASSERT_STRING_EQUAL(o.reason, reason);
    CU_ASSERT_EQUAL(o.gauge_stale, stale ? 1.0 : 0.0);
    if (o.stale != stale || strcmp(o.reason, reason) != 0)
        fprintf(stderr, "FAILED: %s: stale %d reason '%s'\n", what, o.stale, o.reason);
}

static void test_stale_bounds(void)
{
    tfh *h = open_premium(NULL); /* max_ticker_age 3s, max_skew 1s, max_fx_age 15m */
    /* Ticker age: a 400 ms margin either side of 3 s for the time between here and the
     * plugin's clock reading. */
    int64_t now = now_ms();
    expect(one_tick(h, now - 2600, now - 2600, now), false, "", "age just under");
    now = now_ms();
    expect(one_tick(h, now - 3400, now - 3400, now), true, "ticker_age", "age just over");
    now = now_ms();
    expect(one_tick(h, now - 100, now - 3400, now), true, "ticker_age,skew", "global old");
    /* Skew does not depend on the clock: exactly at the bound is fresh, 1 ms over is not. */
    now = now_ms();
    expect(one_tick(h, now - 100, now - 1100, now), false, "", "skew at bound");
    expect(one_tick(h, now - 100, now - 1101, now), true, "skew", "skew over");
    expect(one_tick(h, now - 1101, now - 100, now), true, "skew", "skew over, krw older");
    /* FX age: 1 s margin either side of 15 min. */
    now = now_ms();
    expect(one_tick(h, now, now, now - 15 * MIN_MS + 1000), false, "", "fx just under");
    expect(one_tick(h, now, now, now - 15 * MIN_MS - 1000), true, "fx_age", "fx just over");
    now = now_ms();
    expect(one_tick(h, now - 3400, now - 5000, now - 16 * MIN_MS), true, "ticker_age,skew,fx_age",
           "all three");
    /* And back to fresh. */
    now = now_ms();
    expect(one_tick(h, now, now, now), false, "", "fresh again");
    tfh_close(h);

    /* The bounds are options. */
    h = open_premium("{max_ticker_age: 10s, max_skew: 200ms, max_fx_age: 1h}");
    now = now_ms();
    expect(one_tick(h, now - 8000, now - 8000, now - 59 * MIN_MS), false, "", "wider bounds");
    expect(one_tick(h, now, now - 201, now), true, "skew", "max_skew 200ms");
    now = now_ms();
    expect(one_tick(h, now - 11000, now - 11000, now - 61 * MIN_MS), true, "ticker_age,fx_age",
           "past wider bounds");
    tfh_close(h);
}

static void test_missing_inputs(void)
{
    tfh *h = open_premium(NULL);
    int64_t now = now_ms();
    /* No FX ever: no premium. */
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now));
    add_ticker(b, binance_btc(now));
    add_ticker(b, (tk){"okx", "BTC", "BTC", 1.0, 0, 0, 0, now}); /* a quote we ignore */
    run(h, b);
    CU_ASSERT_EQUAL(tf_batch_count(b), 3);
    tf_batch_destroy(b);
    /* The FX alone completes the join with the remembered tickers. */
    b = tf_batch_create();
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 1);
    CU_ASSERT_PTR_NOT_NULL(find_premium(b, "BTC", "bithumb", "binance"));
    tf_batch_destroy(b);
    tfh_close(h);

    /* No global ticker for the symbol: nothing until one arrives. */
    h = open_premium(NULL);
    b = tf_batch_create();
    add_ticker(b, bithumb_btc(now));
    add_ticker(b, (tk){"binance", "ETH", "USDT", 3100.5, 0, 0, 0, now});
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 0);
    tf_batch_destroy(b);
    b = tf_batch_create();
    add_ticker(b, binance_btc(now));
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 1);
    tf_batch_destroy(b);
    tfh_close(h);

    /* No KRW ticker: nothing either. */
    h = open_premium(NULL);
    b = tf_batch_create();
    add_ticker(b, binance_btc(now));
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 0);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* Bithumb and Upbit against Binance, OKX and Bybit for BTC; ETH on Bithumb and Binance. */
static tf_batch *many_exchanges(int64_t now)
{
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now));
    add_ticker(b, (tk){"upbit", "BTC", "KRW", UPBIT_LAST, 0, 0, 0, now});
    add_ticker(b, (tk){"bithumb", "ETH", "KRW", 4480000.0, 0, 0, 0, now});
    add_ticker(b, binance_btc(now));
    add_ticker(b, (tk){"okx", "BTC", "USDT", 95008.0, 0, 0, 0, now});
    add_ticker(b, (tk){"bybit", "BTC", "USDT", 95011.5, 0, 0, 0, now});
    add_ticker(b, (tk){"binance", "ETH", "USDT", 3100.5, 0, 0, 0, now});
    add_fx(b, DUNAMU, "dunamu", now);
    return b;
}

static void check_pair(const tf_batch *b, const char *symbol, const char *krw, double krw_last,
                       const char *global, double global_last)
{
    tf_record *r = find_premium(b, symbol, krw, global);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char what[96];
    snprintf(what, sizeof what, "%s %s/%s", symbol, krw, global);
    assert_rel(tfh_double(r, "premium_pct"), (krw_last / (global_last * 1402.50) - 1) * 100, what);
    CU_ASSERT_FALSE(stale_of(r));
}

static void test_every_pair_and_filters(void)
{
    tfh *h = open_premium(NULL);
    tf_batch *b = many_exchanges(now_ms());
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 7); /* 2 x 3 for BTC + 1 for ETH */
    check_pair(b, "BTC", "bithumb", 136850000.0, "binance", 95020.10);
    check_pair(b, "BTC", "bithumb", 136850000.0, "okx", 95008.0);
    check_pair(b, "BTC", "bithumb", 136850000.0, "bybit", 95011.5);
    check_pair(b, "BTC", "upbit", 136820000.0, "binance", 95020.10);
    check_pair(b, "BTC", "upbit", 136820000.0, "okx", 95008.0);
    check_pair(b, "BTC", "upbit", 136820000.0, "bybit", 95011.5);
    check_pair(b, "ETH", "bithumb", 4480000.0, "binance", 3100.5);
    assert_rel(gauge("tickflow_premium_pct", "BTC", "upbit", "okx"),
               (136820000.0 / (95008.0 * 1402.50) - 1) * 100, "gauge upbit/okx");
    tf_batch_destroy(b);
    tfh_close(h);

    h = open_premium("{pairs: [{krw: bithumb, global: binance}, {krw: upbit, global: okx}]}");
    b = many_exchanges(now_ms());
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 3);
    check_pair(b, "BTC", "bithumb", 136850000.0, "binance", 95020.10);
    check_pair(b, "ETH", "bithumb", 4480000.0, "binance", 3100.5);
    check_pair(b, "BTC", "upbit", 136820000.0, "okx", 95008.0);
    tf_batch_destroy(b);
    tfh_close(h);

    h = open_premium("{symbols: [eth]}");
    b = many_exchanges(now_ms());
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 1);
    check_pair(b, "ETH", "bithumb", 4480000.0, "binance", 3100.5);
    tf_batch_destroy(b);
    tfh_close(h);

    h = open_premium("{symbols: BTC, pairs: [{krw: upbit, global: bybit}]}");
    b = many_exchanges(now_ms());
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 1);
    check_pair(b, "BTC", "upbit", 136820000.0, "bybit", 95011.5);
    tf_batch_destroy(b);
    tfh_close(h);
}

typedef struct poll_ctx {
    tfh *h;
    size_t premiums;
    bool stale;
    char reason[64];
} poll_ctx;

/* One tick with only a fresh global ticker and FX: the KRW side comes from memory. */
static bool tick_without_krw(void *arg)
{
    poll_ctx *c = arg;
    int64_t now = now_ms();
    tf_batch *b = tf_batch_create();
    add_ticker(b, binance_btc(now));
    add_fx(b, DUNAMU, "dunamu", now);
    run(c->h, b);
    c->premiums = count_kind(b, "premium");
    tf_record *r = find_premium(b, "BTC", "bithumb", "binance");
    c->stale = r && stale_of(r);
    const char *reason = r ? tfh_string(r, "stale_reason") : NULL;
    snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "");
    tf_batch_destroy(b);
    return false;
}

static bool became_stale(void *arg)
{
    poll_ctx *c = arg;
    tick_without_krw(c);
    return c->premiums == 1 && c->stale;
}

static bool disappeared(void *arg)
{
    poll_ctx *c = arg;
    tick_without_krw(c);
    return c->premiums == 0;
}

/* One tick with both tickers fresh and no FX. */
static bool tick_without_fx(void *arg)
{
    poll_ctx *c = arg;
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now_ms()));
    add_ticker(b, binance_btc(now_ms()));
    run(c->h, b);
    c->premiums = count_kind(b, "premium");
    tf_batch_destroy(b);
    return false;
}

static bool no_fx_left(void *arg)
{
    poll_ctx *c = arg;
    tick_without_fx(c);
    return c->premiums == 0;
}

static void test_memory_across_ticks(void)
{
    tfh *h = open_premium("{max_skew: 1h}"); /* only the age matters here */
    int64_t now = now_ms();
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now - 2000));
    add_ticker(b, binance_btc(now));
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 1);
    tf_batch_destroy(b);

    poll_ctx c = {.h = h};
    long long t0 = tft_mono_ms();
    tick_without_krw(&c);
    CU_ASSERT_EQUAL(c.premiums, 1); /* remembered */
    CU_ASSERT_FALSE(c.stale);       /* ~2 s old, bound 3 s */
    CU_ASSERT_TRUE(tft_wait_until(became_stale, &c, 10000));
    CU_ASSERT_STRING_EQUAL(c.reason, "ticker_age");
    /* It aged past 3 s: about 1 s after the first tick, never much sooner. */
    CU_ASSERT(tft_mono_ms() - t0 >= 700);
    tfh_close(h);

    /* forget_after: the KRW ticker stops arriving (delisted) and the pair stops. */
    h = open_premium("{max_skew: 1h, max_ticker_age: 1h, forget_after: 800ms}");
    b = tf_batch_create();
    add_ticker(b, (tk){"bithumb", "BTC", "KRW", BITHUMB_LAST, 0, 0, 0, now_ms()});
    add_ticker(b, binance_btc(now_ms()));
    add_fx(b, DUNAMU, "dunamu", now_ms());
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 1);
    tf_batch_destroy(b);
    CU_ASSERT_EQUAL(gauge("tickflow_premium_stale", "BTC", "bithumb", "binance"), 0);
    c = (poll_ctx){.h = h};
    t0 = tft_mono_ms();
    tick_without_krw(&c);
    CU_ASSERT_EQUAL(c.premiums, 1);
    CU_ASSERT_TRUE(tft_wait_until(disappeared, &c, 10000));
    CU_ASSERT(tft_mono_ms() - t0 >= 500);
    /* The gone pair's gauges say so. */
    CU_ASSERT_EQUAL(gauge("tickflow_premium_stale", "BTC", "bithumb", "binance"), 1);

    /* The FX is forgotten the same way once it stops arriving. */
    c = (poll_ctx){.h = h};
    t0 = tft_mono_ms();
    tick_without_fx(&c);
    CU_ASSERT_EQUAL(c.premiums, 1); /* the FX of the last tick above is remembered */
    CU_ASSERT_TRUE(tft_wait_until(no_fx_left, &c, 10000));
    CU_ASSERT(tft_mono_ms() - t0 >= 500);
    tfh_close(h);
}

/* A tick with a KRW ticker and a global ticker as given, and fresh FX; returns the number of
 * premiums. */
static size_t tick_with(tk krw, tk global)
{
    tfh *h = open_premium(NULL);
    tf_batch *b = tf_batch_create();
    add_ticker(b, krw);
    add_ticker(b, global);
    add_fx(b, DUNAMU, "dunamu", now_ms());
    run(h, b);
    size_t n = count_kind(b, "premium");
    CU_ASSERT_EQUAL(tf_batch_count(b), 3 + n); /* inputs are never dropped */
    if (n)
        CU_ASSERT_PTR_NOT_NULL(find_premium(b, krw.symbol, krw.exchange, global.exchange));
    tf_batch_destroy(b);
    tfh_close(h);
    return n;
}

static void test_absent_and_bad_values(void)
{
    int64_t now = now_ms();
    /* No book on the global side: entry/exit and global_bid/ask absent, not zero. */
    tfh *h = open_premium(NULL);
    tf_batch *b = tf_batch_create();
    add_ticker(b, bithumb_btc(now));
    add_ticker(b, (tk){"binance", "BTC", "USDT", BINANCE_LAST, 0, 0, 0, now});
    add_fx(b, DUNAMU, "dunamu", now);
    run(h, b);
    tf_record *r = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_FALSE(has_field(r, "entry_premium_pct"));
    CU_ASSERT_FALSE(has_field(r, "exit_premium_pct"));
    CU_ASSERT_FALSE(has_field(r, "global_bid"));
    CU_ASSERT_FALSE(has_field(r, "global_ask"));
    CU_ASSERT_EQUAL(tfh_double(r, "krw_bid"), BITHUMB_BID);
    tf_batch_destroy(b);
    /* A KRW bid without an ask: still no executable premiums. */
    b = tf_batch_create();
    add_ticker(b, (tk){"bithumb", "BTC", "KRW", BITHUMB_LAST, BITHUMB_BID, 0, 0, now});
    add_ticker(b, binance_btc(now));
    run(h, b);
    r = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_FALSE(has_field(r, "entry_premium_pct"));
    CU_ASSERT_FALSE(has_field(r, "krw_ask"));
    CU_ASSERT_EQUAL(tfh_double(r, "global_ask"), BINANCE_ASK);
    tf_batch_destroy(b);
    tfh_close(h);

    /* Zero, negative, crossed and overflowing inputs: an error each, never a premium. */
    double before = errors_of(TF_EVALUE);
    tk k = bithumb_btc(now);
    tk g = binance_btc(now);
    tf_batch *z = tf_batch_create(); /* a NaN cannot even be stored in a record */
    CU_ASSERT_EQUAL(tf_record_set_double(tf_record_new(z, "ticker"), "last", NAN), TF_EVALUE);
    tf_batch_destroy(z);
    tk neg_bid = g;
    neg_bid.bid = -1;
    tk crossed = g;
    crossed.bid = 95013.0;
    crossed.ask = 95012.0;
    tk tiny = g;
    tiny.last = 1e-300;
    tk huge = k;
    huge.last = 1e300;
    CU_ASSERT_EQUAL(tick_with(k, neg_bid), 0);
    CU_ASSERT_EQUAL(tick_with(k, crossed), 0);
    CU_ASSERT_EQUAL(tick_with(huge, tiny), 0); /* 1e300 / (1e-300 * 1402.5) is inf */
    CU_ASSERT_EQUAL(errors_of(TF_EVALUE) - before, 3);

    /* Zero last, a string "NaN" last, a missing last, a missing exchange: reported, skipped. */
    static const char *const cases[] = {"zero", "string", "absent", "no_exchange"};
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        before = errors_of(TF_EVALUE);
        h = open_premium(NULL);
        b = tf_batch_create();
        add_ticker(b, k);
        tf_record *bad = tf_record_new(b, "ticker");
        if (strcmp(cases[i], "no_exchange") != 0)
            tf_record_set_string(bad, "exchange", "binance");
        tf_record_set_string(bad, "symbol", "BTC");
        tf_record_set_string(bad, "quote", "USDT");
        if (strcmp(cases[i], "zero") == 0)
            tf_record_set_double(bad, "last", 0.0);
        else if (strcmp(cases[i], "string") == 0)
            tf_record_set_string(bad, "last", "NaN");
        tf_record_set_ts(bad, "ts_exchange", now);
        add_fx(b, DUNAMU, "dunamu", now);
        run(h, b);
        CU_ASSERT_EQUAL(count_kind(b, "premium"), 0);
        CU_ASSERT_EQUAL(tf_batch_count(b), 3);
        CU_ASSERT_EQUAL(errors_of(TF_EVALUE) - before, 1);
        tf_batch_destroy(b);
        tfh_close(h);
    }

    /* Bad FX records: zero rate, no ts_provider. Good ones: TS or integral double stamps. */
    h = open_premium(NULL);
    before = errors_of(TF_EVALUE);
    b = tf_batch_create();
    add_ticker(b, k);
    add_ticker(b, g);
    tf_record *fx = add_fx(b, DUNAMU, "dunamu", now);
    CU_ASSERT_EQUAL(tf_record_set_double(fx, "rate", 0.0), TF_OK);
    tf_record *nots = tf_record_new(b, "fx");
    tf_record_set_string(nots, "pair", "USDKRW");
    tf_record_set_double(nots, "rate", DUNAMU);
    tf_record *other = tf_record_new(b, "fx"); /* another pair: ignored, not an error */
    tf_record_set_string(other, "pair", "USDJPY");
    tf_record_set_double(other, "rate", 155.2);
    run(h, b);
    CU_ASSERT_EQUAL(count_kind(b, "premium"), 0);
    CU_ASSERT_EQUAL(errors_of(TF_EVALUE) - before, 2);
    tf_batch_destroy(b);
    b = tf_batch_create();
    fx = add_fx(b, DUNAMU, "dunamu", 0);
    CU_ASSERT_EQUAL(tf_record_set_ts(fx, "ts_provider", now - 1000), TF_OK);
    run(h, b);
    r = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT(r && tfh_int(r, "fx_age_ms") >= 1000);
    tf_batch_destroy(b);
    b = tf_batch_create();
    fx = add_fx(b, ER_API, "er_api", 0);
    CU_ASSERT_EQUAL(tf_record_set_double(fx, "ts_provider", (double)(now - 2000)), TF_OK);
    run(h, b);
    r = find_premium(b, "BTC", "bithumb", "binance");
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT(r && tfh_int(r, "fx_age_ms") >= 2000);
    CU_ASSERT(r && tfh_double(r, "usdkrw") == ER_API);
    tf_batch_destroy(b);
    tfh_close(h);
}

static double suspect_total(const char *symbol, const char *krw, const char *global)
{
    static const char *const labels[] = {"pipeline", "symbol", "krw_exchange", "global_exchange",
                                         NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_premium_suspect_total", "x",
                                       labels, NULL, 0);
    const char *values[] = {"harness", symbol, krw, global};
    return m ? tf_metric_value(m, values) : NAN;
}

static bool suspect_of(const tf_record *r)
{
    bool v = true;
    CU_ASSERT_EQUAL(tf_record_get_bool(r, "suspect", &v), TF_OK);
    return v;
}

/* One tick with the KRW side's last, bid and ask all at `krw`; returns its premium record. */
static tf_record *tick_krw(tfh *h, tf_batch *b, const char *symbol, double krw)
{
    int64_t now = now_ms();
    add_ticker(b, (tk){"bithumb", symbol, "KRW", krw, krw, krw, 0, now - 100});
    add_ticker(b, (tk){"binance", symbol, "USDT", BINANCE_LAST, BINANCE_BID, BINANCE_ASK,
                       BINANCE_MARK, now - 100});
    add_fx(b, DUNAMU, "dunamu", now - MIN_MS);
    run(h, b);
    return find_premium(b, symbol, "bithumb", "binance");
}

/* The band: a premium outside premium_min..premium_max (default -20..+60 %) is published with
 * suspect: true and its reasons, counted, and kept out of tickflow_premium_pct; one inside
 * carries suspect: false. Stale and suspect are separate flags. */
static void test_suspect_band(void)
{
    tfh *h = open_premium("{price: mid}");
    tf_batch *b = tf_batch_create();
    tf_record *r = tick_krw(h, b, "SUS", BITHUMB_LAST);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_FALSE(suspect_of(r));
    CU_ASSERT_FALSE(has_field(r, "suspect_reason"));
    double fine = tfh_double(r, "premium_pct");
    tf_batch_destroy(b);

    /* A KRW price x10 (the mutating proxy's jump): about +927 %. */
    b = tf_batch_create();
    r = tick_krw(h, b, "SUS", BITHUMB_LAST * 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(suspect_of(r));
    CU_ASSERT_FALSE(stale_of(r));
    CU_ASSERT(tfh_double(r, "premium_pct") > 900);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tfh_string(r, "suspect_reason"));
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "suspect_reason"),
                           "premium_pct,entry_premium_pct,exit_premium_pct");
    CU_ASSERT_EQUAL(suspect_total("SUS", "bithumb", "binance"), 1);
    CU_ASSERT_EQUAL(gauge("tickflow_premium_suspect", "SUS", "bithumb", "binance"), 1);
    assert_rel(gauge("tickflow_premium_pct", "SUS", "bithumb", "binance"), fine,
               "gauge keeps the last plausible premium");
    tf_batch_destroy(b);

    /* 1e+308 KRW: finite, absurd, suspect (not dropped, not NaN). */
    b = tf_batch_create();
    r = tick_krw(h, b, "SUS", 1e308);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(suspect_of(r));
    CU_ASSERT_EQUAL(suspect_total("SUS", "bithumb", "binance"), 2);
    tf_batch_destroy(b);

    /* Back inside: not suspect, the gauge follows again. */
    b = tf_batch_create();
    r = tick_krw(h, b, "SUS", BITHUMB_LAST);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_FALSE(suspect_of(r));
    CU_ASSERT_EQUAL(gauge("tickflow_premium_suspect", "SUS", "bithumb", "binance"), 0);
    tf_batch_destroy(b);
    tfh_close(h);

    /* At each bound of a narrow band: -5 % and +5 % are inside, beyond is suspect. */
    h = open_premium("{price: mid, premium_min: -5, premium_max: 5}");
    double mid = (BINANCE_BID + BINANCE_ASK) / 2;
    const struct {
        double pct;
        bool suspect;
    } cases[] = {{4.99, false}, {5.01, true}, {-4.99, false}, {-5.01, true}, {-90, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b = tf_batch_create();
        /* The global side's bid/ask make entry/exit differ from premium_pct by ~1e-4 %. */
        r = tick_krw(h, b, "EDGE", mid * DUNAMU * (1 + cases[i].pct / 100));
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        if (suspect_of(r) != cases[i].suspect)
            fprintf(stderr, "FAILED: premium %.2f %%: suspect %d\n", cases[i].pct,
                    cases[i].suspect);
        CU_ASSERT_EQUAL(suspect_of(r), cases[i].suspect);
        tf_batch_destroy(b);
    }
    tfh_close(h);
}

static void test_options(void)
{
    char msg[2048];
    CU_ASSERT_TRUE(tfh_rejects("transform", PLUGIN, "{pairs: [{krw: bithumb}]}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "global"));
    CU_ASSERT_TRUE(tfh_rejects("transform", PLUGIN, "{max_skew: soon}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "max_skew"));
    CU_ASSERT_TRUE(tfh_rejects("transform", PLUGIN, "{basis: mid}", msg, sizeof msg));
    /* Semantic checks happen in init. */
    CU_ASSERT_PTR_NULL(tfh_open("transform", PLUGIN, "{price: bid}", NULL));
    CU_ASSERT_PTR_NULL(tfh_open("transform", PLUGIN, "{max_skew: 0ms}", NULL));
    CU_ASSERT_PTR_NULL(tfh_open("transform", PLUGIN, "{symbols: ['']}", NULL));
    CU_ASSERT_PTR_NULL(tfh_open("transform", PLUGIN, "{pairs: [{krw: '', global: x}]}", NULL));
    CU_ASSERT_PTR_NULL(tfh_open("transform", PLUGIN, "{premium_min: 60, premium_max: -20}", NULL));
    tfh *h = tfh_open("transform", PLUGIN,
                      "{pairs: [{krw: bithumb, global: binance}], price: mark, "
                      "max_ticker_age: 5s, max_skew: 2s, max_fx_age: 1h, forget_after: 2m, "
                      "symbols: [BTC, ETH]}",
                      NULL);
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"fixture numbers, mid basis (README table)", test_fixture_mid},
        {"mark and last bases", test_bases},
        {"README expected premiums", test_readme_table},
        {"stale flags at each bound", test_stale_bounds},
        {"missing FX / global / KRW: no premium", test_missing_inputs},
        {"every pair, pairs and symbols filters", test_every_pair_and_filters},
        {"inputs remembered and forgotten across ticks", test_memory_across_ticks},
        {"absent and bad values never become zero or NaN", test_absent_and_bad_values},
        {"premiums outside the band are suspect", test_suspect_band},
        {"options", test_options},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("transform_premium", tests, NULL, NULL);
}
