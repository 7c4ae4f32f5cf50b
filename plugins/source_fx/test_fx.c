/*
 * The `fx` source through the real host: every provider's fixture (exact rates), every error
 * fixture (error class, no record, next tick recovers), failover and return to the first
 * provider (log once, counter, gauge), option validation, and the live fake exchange with every
 * fault mode on dunamu.forex.
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_fake.h"
#include "tf_fixture_server.h"
#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define KST_MS (9LL * 3600 * 1000)
#define DAY_MS (24LL * 3600 * 1000)

static tft_server *g_srv;
static char *g_dir;

/* ---- helpers: ticks, metrics, captured stderr ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct tick_result {
    int rc;
    size_t n;
    double rate;
    char provider[32];
    char pair[16];
    int64_t ts_provider;
    int64_t ts_received;
} tick_result;

static tick_result tick(tfh *h)
{
    tick_result t = {.rate = NAN};
    tf_batch *b = tf_batch_create();
    t.rc = tfh_collect(h, b);
    t.n = tf_batch_count(b);
    tf_record *r = tfh_find(b, "fx", NULL, NULL);
    if (r) {
        t.rate = tfh_double(r, "rate");
        snprintf(t.provider, sizeof t.provider, "%s",
                 tfh_string(r, "provider") ? tfh_string(r, "provider") : "");
        snprintf(t.pair, sizeof t.pair, "%s", tfh_string(r, "pair") ? tfh_string(r, "pair") : "");
        t.ts_provider = tfh_int(r, "ts_provider");
        t.ts_received = tfh_int(r, "ts_received");
    }
    tf_batch_destroy(b);
    return t;
}

static double errors_of(int status)
{
    return tfh_errors("harness", "fx", tf_status_name(status));
}

static double failovers(void)
{
    static const char *const labels[] = {"pipeline", NULL};
    tf_metric *m =
        tf_metrics_register(TF_METRIC_COUNTER, "tickflow_fx_failovers_total", "x", labels, NULL, 0);
    const char *values[] = {"harness"};
    return m ? tf_metric_value(m, values) : -1;
}

static double active_gauge(const char *provider)
{
    static const char *const labels[] = {"pipeline", "provider", NULL};
    tf_metric *m =
        tf_metrics_register(TF_METRIC_GAUGE, "tickflow_fx_provider_active", "x", labels, NULL, 0);
    const char *values[] = {"harness", provider};
    return m ? tf_metric_value(m, values) : -1;
}

/* stderr (where tf_log writes each line with one write(2)) goes to a file while captured. */
static int g_saved_stderr = -1;
static char g_capture[1024];

static void capture_start(void)
{
    snprintf(g_capture, sizeof g_capture, "%s/stderr.log", g_dir);
    fflush(stderr);
    g_saved_stderr = dup(2);
    int fd = open(g_capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0 && g_saved_stderr >= 0);
    dup2(fd, 2);
    close(fd);
}

/* Restores stderr and replays what was captured there, so ctest logs keep it. */
static void capture_stop(void)
{
    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    g_saved_stderr = -1;
    char *text = tft_read_file(g_capture, NULL);
    if (text)
        fputs(text, stderr);
    free(text);
}

static int captured(const char *needle)
{
    return tft_file_count(g_capture, needle);
}

/* Polls ticks until one comes from `provider` (after a Retry-After block). */
typedef struct live_wait {
    tfh *h;
    const char *provider;
    tick_result last;
} live_wait;

static bool ticks_from(void *arg)
{
    live_wait *w = arg;
    w->last = tick(w->h);
    return w->last.rc == TF_OK && strcmp(w->last.provider, w->provider) == 0;
}

/* tfh_open with a printf-formatted `with`. */
static tfh *open_fx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static tfh *open_fx(const char *fmt, ...)
{
    char with[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(with, sizeof with, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof with)
        return NULL;
    return tfh_open("source", "fx", with, NULL);
}

/* ---- the providers and their fixtures ---- */

typedef struct prov {
    const char *name;
    const char *path; /* route on the fixture server */
    const char *good; /* fixture */
    double rate;      /* exact rate the fixture holds */
    int64_t ts;       /* exact ts_provider (0: computed, koreaexim) */
    bool key;         /* needs api_key */
} prov;

static const prov PROVS[] = {
    {"dunamu", "/v1/forex/recent", "dunamu_forex_krwusd.json", 1402.50, 1795428893000LL, false},
    {"er_api", "/v6/latest/USD", "er_api_latest_usd.json", 1401.87, 1795392002000LL, false},
    {"exchangerate_host", "/live", "exchangerate_host_live_usd_krw.json", 1402.084041,
     1795428904000LL, true},
    {"koreaexim", "/site/program/financial/exchangeJSON", "koreaexim_exchange_ap01.json", 1399.5, 0,
     true},
    {"bithumb_usdt", "/public/ticker/USDT_KRW", "bithumb_v1_ticker_usdt_krw.json", 1439,
     1795428930207LL, false},
};

static const prov *prov_of(const char *name)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(PROVS); i++) {
        if (strcmp(PROVS[i].name, name) == 0)
            return &PROVS[i];
    }
    return NULL;
}

/* One provider pointing at the fixture server; the fixtures are from 2026-11-23, so max_age
 * is large unless `max_age` says otherwise. */
static tfh *open_one(const prov *p, const char *max_age)
{
    return open_fx("{providers: [{name: %s, base_url: '%s'%s}], max_age: %s}", p->name,
                   tft_server_url(g_srv), p->key ? ", api_key: '${FX_TEST_KEY}'" : "",
                   max_age ? max_age : "100000h");
}

static void route_good(const prov *p)
{
    CU_ASSERT_FATAL(tft_server_route_fixture(g_srv, p->path, 200, NULL, p->good));
}

static void route_body(const char *path, int status, const char *body)
{
    tft_server_route(g_srv, path, status, NULL, body, strlen(body));
}

/* ---- fixture parsing: exact values ---- */

static void check_good_tick(const prov *p, tfh *h)
{
    int64_t before = now_ms();
    tick_result t = tick(h);
    int64_t after = now_ms();
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_EQUAL(t.rate, p->rate); /* exact: the value as written in the fixture */
    CU_ASSERT_STRING_EQUAL(t.provider, p->name);
    CU_ASSERT_STRING_EQUAL(t.pair, "USDKRW");
    CU_ASSERT(t.ts_received >= before && t.ts_received <= after);
    if (p->ts) {
        CU_ASSERT_EQUAL(t.ts_provider, p->ts);
    } else {
        /* koreaexim: 11:00 KST of today (KST), or the request time if that is still ahead. */
        int64_t day = (t.ts_received + KST_MS) / DAY_MS * DAY_MS - KST_MS;
        int64_t eleven = day + 11LL * 3600 * 1000;
        if (eleven <= before) {
            CU_ASSERT_EQUAL(t.ts_provider, eleven);
        } else {
            CU_ASSERT(t.ts_provider <= t.ts_received && t.ts_provider >= before);
        }
    }
}

static void test_fixture_rates(void)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(PROVS); i++) {
        const prov *p = &PROVS[i];
        route_good(p);
        tfh *h = open_one(p, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        check_good_tick(p, h);
        tfh_close(h);
    }
}

static void last_url(char *url, size_t size)
{
    char ignored[8];
    tft_server_last_request(g_srv, url, size, "Accept", ignored, sizeof ignored);
}

/* The exact requests (keys percent-encoded on the wire), searchdate = today in KST. */
static void test_request_urls(void)
{
    char url[1024];
    char expect[1024];
    for (size_t i = 0; i < TF_ARRAY_LEN(PROVS); i++)
        route_good(&PROVS[i]);

    tfh *h = open_one(prov_of("dunamu"), NULL);
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    last_url(url, sizeof url);
    CU_ASSERT_STRING_EQUAL(url, "/v1/forex/recent?codes=FRX.KRWUSD");
    tfh_close(h);

    h = open_one(prov_of("er_api"), NULL);
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    last_url(url, sizeof url);
    CU_ASSERT_STRING_EQUAL(url, "/v6/latest/USD");
    tfh_close(h);

    h = open_one(prov_of("exchangerate_host"), NULL);
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    last_url(url, sizeof url);
    /* The server shows the query decoded: the key arrives intact only if it was encoded. */
    CU_ASSERT_STRING_EQUAL(url, "/live?access_key=k3y/+=&source=USD&currencies=KRW");
    tfh_close(h);

    h = open_one(prov_of("koreaexim"), NULL);
    time_t kst = (time_t)(time(NULL) + 9 * 3600);
    struct tm tm;
    gmtime_r(&kst, &tm);
    char date[16];
    strftime(date, sizeof date, "%Y%m%d", &tm);
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    last_url(url, sizeof url);
    snprintf(expect, sizeof expect,
             "/site/program/financial/exchangeJSON?authkey=k3y/+=&searchdate=%s&data=AP01", date);
    CU_ASSERT_STRING_EQUAL(url, expect);
    tfh_close(h);

    h = open_one(prov_of("bithumb_usdt"), NULL);
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    last_url(url, sizeof url);
    CU_ASSERT_STRING_EQUAL(url, "/public/ticker/USDT_KRW");
    tfh_close(h);
}

/* ---- error fixtures: class, no record, recovery on the next tick ---- */

typedef struct bad_case {
    const char *provider; /* NULL: every provider */
    const char *fixture;
    int status;
    const char *headers;
    int expect;
} bad_case;

static const bad_case BAD[] = {
    {"er_api", "er_api_error_unsupported_code.json", 404, NULL, TF_EAPI},
    {"exchangerate_host", "exchangerate_host_error_missing_access_key.json", 200, NULL, TF_EAPI},
    {"koreaexim", "koreaexim_error_auth.json", 200, NULL, TF_EAPI},
    {"koreaexim", "koreaexim_empty_non_business_day.json", 200, NULL, TF_ENOTFOUND},
    {"dunamu", "bad_dunamu_object_not_array.json", 200, NULL, TF_EPARSE},
    {NULL, "bad_empty_body.json", 200, NULL, TF_EPARSE},
    {NULL, "bad_truncated_premium_index.json", 200, NULL, TF_EPARSE},
    {NULL, "bad_html_cloudflare_502.html", 502, "Content-Type: text/html; charset=UTF-8\n",
     TF_EHTTP},
    {NULL, "binance_fapi_error_429_too_many_requests.json", 429, NULL, TF_ERATELIMIT},
    {"bithumb_usdt", "bithumb_v1_error_5600_try_again.json", 200, NULL, TF_EAPI},
    {"bithumb_usdt", "bithumb_v1_error_invalid_param.json", 200, NULL, TF_EAPI},
    {"dunamu", "bad_upbit_ticker_empty_array.json", 200, NULL, TF_ENOTFOUND},
    {"bithumb_usdt", "bad_bithumb_ticker_wrong_types.json", 200, NULL, TF_EVALUE},
};

static void run_bad(const prov *p, const bad_case *c)
{
    CU_ASSERT_FATAL(tft_server_route_fixture(g_srv, p->path, c->status, c->headers, c->fixture));
    tfh *h = open_one(p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    double before = errors_of(c->expect);
    tick_result t = tick(h);
    if (t.rc != c->expect || t.n != 0)
        fprintf(stderr, "FAILED: %s with %s: rc %d (%s), %zu records\n", p->name, c->fixture, t.rc,
                tf_status_name(t.rc), t.n);
    CU_ASSERT_EQUAL(t.rc, c->expect);
    CU_ASSERT_EQUAL(t.n, 0);
    CU_ASSERT_EQUAL(errors_of(c->expect) - before, 1);
    /* A 429 blocks the host for the breaker's base period: poll until it is over. */
    route_good(p);
    if (c->expect == TF_ERATELIMIT) {
        live_wait w = {h, p->name, {0}};
        CU_ASSERT(tft_wait_until(ticks_from, &w, 10000));
        t = w.last;
    } else {
        t = tick(h);
    }
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_EQUAL(t.rate, p->rate);
    tfh_close(h);
}

static void test_error_fixtures(void)
{
    for (size_t i = 0; i < TF_ARRAY_LEN(BAD); i++) {
        for (size_t j = 0; j < TF_ARRAY_LEN(PROVS); j++) {
            if (!BAD[i].provider || strcmp(BAD[i].provider, PROVS[j].name) == 0)
                run_bad(&PROVS[j], &BAD[i]);
        }
    }
}

/* Values that parse but must never become a rate. */
static void test_bad_values(void)
{
    const prov *d = prov_of("dunamu");
    static const struct {
        const char *body;
        int expect;
    } cases[] = {
        {"[{\"code\":\"FRX.KRWUSD\",\"basePrice\":50.0,\"currencyUnit\":1,\"timestamp\":"
         "1795428893000}]",
         TF_EVALUE}, /* below the sanity range */
        {"[{\"code\":\"FRX.KRWUSD\",\"basePrice\":20000.0,\"currencyUnit\":1,\"timestamp\":"
         "1795428893000}]",
         TF_EVALUE}, /* above it */
        {"[{\"code\":\"FRX.KRWUSD\",\"basePrice\":0,\"currencyUnit\":1,\"timestamp\":"
         "1795428893000}]",
         TF_EVALUE},
        {"[{\"code\":\"FRX.KRWUSD\",\"basePrice\":\"NaN\",\"currencyUnit\":1,\"timestamp\":"
         "1795428893000}]",
         TF_EVALUE},
        {"[{\"code\":\"FRX.KRWUSD\",\"basePrice\":1402.5,\"timestamp\":1795428893000}]",
         TF_EPARSE}, /* no currencyUnit */
        {"[{\"code\":\"FRX.KRWJPY\",\"basePrice\":912.17,\"currencyUnit\":100,\"timestamp\":"
         "1795428893000}]",
         TF_ENOTFOUND},
        /* currencyUnit divides: 140250 per 100 USD is 1402.5 */
        {"[{\"code\":\"FRX.KRWUSD\",\"basePrice\":140250,\"currencyUnit\":100,\"timestamp\":"
         "1795428893000}]",
         TF_OK},
    };
    tfh *h = open_one(d, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        route_body(d->path, 200, cases[i].body);
        tick_result t = tick(h);
        CU_ASSERT_EQUAL(t.rc, cases[i].expect);
        CU_ASSERT_EQUAL(t.n, cases[i].expect == TF_OK ? 1 : 0);
        if (cases[i].expect == TF_OK)
            CU_ASSERT_EQUAL(t.rate, 1402.5);
    }
    tfh_close(h);

    /* Korea Exim: commas are dropped only as thousands separators. */
    const prov *k = prov_of("koreaexim");
    static const struct {
        const char *deal;
        int expect;
        double rate;
    } kcases[] = {
        {"\"1,399.5\"", TF_OK, 1399.5},
        {"\"1399.5\"", TF_OK, 1399.5},
        {"1399.5", TF_EVALUE, 0},
        /* Korea Exim writes strings */ {"\"1,39.5\"", TF_EVALUE, 0},
        {"\"1399,5\"", TF_EVALUE, 0},
        {"\"1,399.5,0\"", TF_EVALUE, 0},
        {"\",399.5\"", TF_EVALUE, 0},
        {"\"\"", TF_EVALUE, 0},
        {"null", TF_EVALUE, 0},
        {"\"1,399.5x\"", TF_EVALUE, 0},
    };
    h = open_one(k, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    for (size_t i = 0; i < TF_ARRAY_LEN(kcases); i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "[{\"result\":1,\"cur_unit\":\"EUR\",\"deal_bas_r\":\"1,618.36\"},"
                 "{\"result\":1,\"cur_unit\":\"USD\",\"deal_bas_r\":%s}]",
                 kcases[i].deal);
        route_body(k->path, 200, body);
        tick_result t = tick(h);
        if (t.rc != kcases[i].expect)
            fprintf(stderr, "FAILED: deal_bas_r %s: rc %d\n", kcases[i].deal, t.rc);
        CU_ASSERT_EQUAL(t.rc, kcases[i].expect);
        if (kcases[i].expect == TF_OK)
            CU_ASSERT_EQUAL(t.rate, kcases[i].rate);
    }
    tfh_close(h);
}

/* ---- freshness ---- */

static void route_fresh_dunamu(int64_t ts_ms, double rate)
{
    char body[256];
    snprintf(body, sizeof body,
             "[{\"code\":\"FRX.KRWUSD\",\"basePrice\":%.2f,\"currencyUnit\":1,\"timestamp\":%lld}]",
             rate, (long long)ts_ms);
    route_body("/v1/forex/recent", 200, body);
}

static void route_fresh_er_api(int64_t ts_s, double rate)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"result\":\"success\",\"time_last_update_unix\":%lld,\"base_code\":\"USD\","
             "\"rates\":{\"USD\":1,\"KRW\":%.2f}}",
             (long long)ts_s, rate);
    route_body("/v6/latest/USD", 200, body);
}

static void test_freshness(void)
{
    const char *url = tft_server_url(g_srv);
    /* Default max_age 1h for dunamu: the fixture (a day old) is stale. */
    route_good(prov_of("dunamu"));
    tfh *h = open_fx("{providers: [{name: dunamu, base_url: '%s'}]}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tick_result t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_EVALUE);
    CU_ASSERT_EQUAL(t.n, 0);
    route_fresh_dunamu(now_ms() - 59 * 60 * 1000, 1402.5); /* 59 min: fresh enough */
    t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    route_fresh_dunamu(now_ms() - 61 * 60 * 1000, 1402.5);
    CU_ASSERT_EQUAL(tick(h).rc, TF_EVALUE);
    route_fresh_dunamu(now_ms() + 60 * 1000, 1402.5); /* a minute in the future */
    CU_ASSERT_EQUAL(tick(h).rc, TF_EVALUE);
    route_fresh_dunamu(now_ms() + 2000, 1402.5); /* small clock skew is fine */
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    tfh_close(h);

    /* er_api is daily: 20 h old is fine by its own default (26h) ... */
    int64_t old20h = now_ms() / 1000 - 20 * 3600;
    route_fresh_er_api(old20h, 1401.87);
    h = open_fx("{providers: [{name: er_api, base_url: '%s'}]}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_EQUAL(t.ts_provider, old20h * 1000);
    tfh_close(h);
    route_fresh_er_api(now_ms() / 1000 - 27 * 3600, 1401.87); /* ... 27 h is not */
    h = open_fx("{providers: [{name: er_api, base_url: '%s'}]}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(tick(h).rc, TF_EVALUE);
    tfh_close(h);
    /* ... the item's max_age overrides it ... */
    route_fresh_er_api(old20h, 1401.87);
    h = open_fx("{providers: [{name: er_api, base_url: '%s', max_age: 10h}]}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(tick(h).rc, TF_EVALUE);
    tfh_close(h);
    /* ... and so does a max_age written for the whole source. */
    h = open_fx("{providers: [{name: er_api, base_url: '%s'}], max_age: 2h}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(tick(h).rc, TF_EVALUE);
    tfh_close(h);
    h = open_fx("{providers: [{name: er_api, base_url: '%s', max_age: 21h}], max_age: 2h}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(tick(h).rc, TF_OK);
    tfh_close(h);
}

/* ---- failover on the fixture server ---- */

/* ---- plausibility ---- */

static double rejected(const char *reason)
{
    static const char *const labels[] = {"pipeline", "exchange", "symbol", "reason", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_source_rejected_total", "x",
                                       labels, NULL, 0);
    const char *values[] = {"harness", "fx", "USDKRW", reason};
    return m ? tf_metric_value(m, values) : -1;
}

/* A rate outside rate_min..rate_max (500..3000 KRW per USD by default) is refused and counted;
 * a move of more than max_jump (10 %) is refused from one provider and accepted when the next
 * provider agrees with it (or, with one provider, when the next tick does); a provider that
 * agrees with the last accepted rate instead wins the failover. */
static void test_plausible(void)
{
    const char *url = tft_server_url(g_srv);
    int64_t now = now_ms();
    tfh *one = open_fx("{providers: [{name: dunamu, base_url: '%s'}]}", url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    const double absurd[] = {4000.0, 14025.0, 140.25};
    for (size_t i = 0; i < TF_ARRAY_LEN(absurd); i++) {
        double before = rejected("range");
        route_fresh_dunamu(now, absurd[i]);
        tick_result t = tick(one);
        CU_ASSERT_EQUAL(t.rc, TF_EVALUE);
        CU_ASSERT_EQUAL(t.n, 0);
        CU_ASSERT_EQUAL(rejected("range"), before + 1);
    }
    route_fresh_dunamu(now, 1402.5);
    CU_ASSERT_EQUAL(tick(one).rate, 1402.5);
    double jumps = rejected("jump");
    route_fresh_dunamu(now, 1600.0);
    tick_result t = tick(one);
    CU_ASSERT_EQUAL(t.n, 0);
    CU_ASSERT_EQUAL(rejected("jump"), jumps + 1);
    CU_ASSERT_EQUAL(tick(one).rate, 1600.0); /* the next tick confirms it */
    tfh_close(one);

    tfh *two = open_fx("{providers: [{name: dunamu, base_url: '%s'}, {name: er_api, base_url: "
                       "'%s'}]}",
                       url, url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(two);
    route_fresh_dunamu(now, 1402.5);
    route_fresh_er_api(now / 1000, 1401.87);
    CU_ASSERT_EQUAL(tick(two).rate, 1402.5);
    route_fresh_dunamu(now, 1600.0); /* dunamu jumps alone: er_api's agreeing rate wins */
    t = tick(two);
    CU_ASSERT_STRING_EQUAL(t.provider, "er_api");
    CU_ASSERT_EQUAL(t.rate, 1401.87);
    route_fresh_er_api(now / 1000, 1601.0); /* both moved: er_api confirms dunamu's jump */
    t = tick(two);
    CU_ASSERT_STRING_EQUAL(t.provider, "er_api");
    CU_ASSERT_EQUAL(t.rate, 1601.0);
    tfh_close(two);
    char msg[1024];
    CU_ASSERT_TRUE(tfh_rejects("source", "fx", "{rate_min: low}", msg, sizeof msg));
    CU_ASSERT_PTR_NULL(tfh_open("source", "fx", "{rate_min: 3000, rate_max: 500}", NULL));
}

static void test_failover_and_return(void)
{
    const char *url = tft_server_url(g_srv);
    route_good(prov_of("dunamu"));
    route_good(prov_of("er_api"));
    capture_start();
    tfh *h = open_fx("{providers: [{name: dunamu, base_url: '%s'}, {name: er_api, base_url: "
                     "'%s'}], max_age: 100000h}",
                     url, url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    double f0 = failovers();
    double http_errors = errors_of(TF_EHTTP);

    tick_result t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_STRING_EQUAL(t.provider, "dunamu");
    CU_ASSERT_EQUAL(t.rate, 1402.50);
    CU_ASSERT_EQUAL(active_gauge("dunamu"), 1);
    CU_ASSERT_EQUAL(active_gauge("er_api"), 0);

    route_body("/v1/forex/recent", 500, "{\"status\":500,\"error\":\"Internal Server Error\"}");
    for (int i = 0; i < 4; i++) {
        t = tick(h);
        CU_ASSERT_EQUAL(t.rc, TF_OK);
        CU_ASSERT_EQUAL(t.n, 1);
        CU_ASSERT_STRING_EQUAL(t.provider, "er_api");
        CU_ASSERT_EQUAL(t.rate, 1401.87);
        CU_ASSERT_EQUAL(t.ts_provider, 1795392002000LL);
    }
    CU_ASSERT_EQUAL(failovers() - f0, 1);                  /* one change, four ticks */
    CU_ASSERT_EQUAL(errors_of(TF_EHTTP) - http_errors, 4); /* each failure counted */
    CU_ASSERT_EQUAL(active_gauge("dunamu"), 0);
    CU_ASSERT_EQUAL(active_gauge("er_api"), 1);

    route_good(prov_of("dunamu"));
    for (int i = 0; i < 2; i++) {
        t = tick(h);
        CU_ASSERT_EQUAL(t.rc, TF_OK);
        CU_ASSERT_STRING_EQUAL(t.provider, "dunamu");
    }
    CU_ASSERT_EQUAL(active_gauge("dunamu"), 1);
    CU_ASSERT_EQUAL(active_gauge("er_api"), 0);
    CU_ASSERT_EQUAL(failovers() - f0, 1);
    tfh_close(h);
    capture_stop();
    CU_ASSERT_EQUAL(captured("fx: using er_api (dunamu failed: HTTP 500)"), 1);
    CU_ASSERT_EQUAL(captured("fx: using dunamu again"), 1);
}

/* A stale first provider fails over like a broken one; three providers, the third wins. */
static void test_failover_stale_and_all_failed(void)
{
    const char *url = tft_server_url(g_srv);
    route_good(prov_of("dunamu")); /* a day old: stale under the default 1h */
    route_body("/v6/latest/USD", 503, "{\"status\":503}");
    char bithumb[256];
    snprintf(bithumb, sizeof bithumb,
             "{\"status\":\"0000\",\"data\":{\"closing_price\":\"1439\",\"date\":\"%lld\"}}",
             (long long)now_ms());
    route_body("/public/ticker/USDT_KRW", 200, bithumb);
    capture_start();
    tfh *h = open_fx("{providers: [{name: dunamu, base_url: '%s'}, {name: er_api, base_url: "
                     "'%s'}, {name: bithumb_usdt, base_url: '%s'}]}",
                     url, url, url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    double f0 = failovers();
    tick_result t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_STRING_EQUAL(t.provider, "bithumb_usdt");
    CU_ASSERT_EQUAL(t.rate, 1439);
    CU_ASSERT_EQUAL(active_gauge("bithumb_usdt"), 1);
    CU_ASSERT_EQUAL(failovers() - f0, 1);

    /* Every provider failing: the last one's class, no record, logged once. */
    route_body("/public/ticker/USDT_KRW", 200, "{\"status\":\"5600\",\"message\":\"busy\"}");
    for (int i = 0; i < 3; i++) {
        t = tick(h);
        CU_ASSERT_EQUAL(t.rc, TF_EAPI);
        CU_ASSERT_EQUAL(t.n, 0);
    }
    CU_ASSERT_EQUAL(active_gauge("bithumb_usdt"), 0);
    CU_ASSERT_EQUAL(active_gauge("dunamu"), 0);

    /* The second provider comes back: a new failover, logged and counted again. */
    route_fresh_er_api(now_ms() / 1000, 1401.87);
    t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_STRING_EQUAL(t.provider, "er_api");
    CU_ASSERT_EQUAL(failovers() - f0, 2);
    /* Then the first. */
    route_fresh_dunamu(now_ms(), 1402.5);
    t = tick(h);
    CU_ASSERT_STRING_EQUAL(t.provider, "dunamu");
    tfh_close(h);
    capture_stop();
    CU_ASSERT_EQUAL(captured("fx: using bithumb_usdt (dunamu failed: stale"), 1);
    CU_ASSERT_EQUAL(captured("er_api failed: HTTP 503"), 2); /* in the WARN and the ERROR */
    CU_ASSERT_EQUAL(captured("fx: no provider gave a usable rate"), 1);
    CU_ASSERT_EQUAL(captured("fx: using er_api (dunamu failed: stale"), 1);
    CU_ASSERT_EQUAL(captured("fx: using dunamu again"), 1);
}

/* ---- options ---- */

static void test_options(void)
{
    char msg[4096];
    /* A literal secret is refused by the loader; ${VAR} works. */
    CU_ASSERT_TRUE(tfh_rejects("source", "fx",
                               "{providers: [{name: exchangerate_host, api_key: abc123secret}]}",
                               msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "api_key"));
    fprintf(stderr, "literal api_key rejected with: %s", msg);
    tfh *h = open_fx("{providers: [{name: exchangerate_host, api_key: '${FX_TEST_KEY}'}]}");
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);

    /* Wrong types are the loader's. */
    CU_ASSERT_TRUE(tfh_rejects("source", "fx", "{timeout: soon}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "timeout"));
    CU_ASSERT_TRUE(
        tfh_rejects("source", "fx", "{providers: [{base_url: 'http://x'}]}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "name"));
    CU_ASSERT_TRUE(
        tfh_rejects("source", "fx", "{providers: [{name: dunamu, color: red}]}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "color"));

    /* An empty list: refused by the loader or by init, either way no instance. */
    capture_start();
    h = open_fx("{providers: []}");
    capture_stop();
    CU_ASSERT_PTR_NULL(h);
    tfh_close(h);

    /* Defaults and the shorthand open without any request. */
    h = tfh_open("source", "fx", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);
    h = open_fx("{providers: [dunamu, er_api, bithumb_usdt], timeout: 2s}");
    CU_ASSERT_PTR_NOT_NULL(h);
    tfh_close(h);

    /* Semantic checks in init, each naming what was expected and found. */
    static const struct {
        const char *with;
        const char *needle;
    } bad[] = {
        {"{providers: [{name: exchangerate_host}]}", "exchangerate_host): expected an api_key"},
        {"{providers: [dunamu, koreaexim]}", "providers[1] (koreaexim): expected an api_key"},
        {"{providers: [dunamu, yahoo]}", "providers[1].name: expected one of dunamu, er_api"},
        {"{providers: [dunamu, dunamu]}", "expected each provider once, found dunamu again"},
        {"{providers: [{name: dunamu, base_url: 'ftp://x'}]}", "found \"ftp://x\""},
        {"{pair: EURKRW}", "pair: expected \"USDKRW\""},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        capture_start();
        h = open_fx("%s", bad[i].with);
        capture_stop();
        CU_ASSERT_PTR_NULL(h);
        tfh_close(h);
        if (captured(bad[i].needle) != 1)
            fprintf(stderr, "FAILED: %s: no \"%s\" in the log\n", bad[i].with, bad[i].needle);
        CU_ASSERT_EQUAL(captured(bad[i].needle), 1);
    }
}

/* ---- the live fake exchange ---- */

/* Every fault mode on dunamu.forex: failover to er_api, error class counted, and dunamu again
 * on the tick after the fault is cleared. Dunamu and er_api are separate fake processes (two
 * hosts, as in production), so a 429 on one host does not block the other. */
static void test_live_fault_modes(void)
{
    tft_fake *a = NULL;
    tft_fake *b = NULL;
    a = tft_fake_start(NULL);
    CU_ASSERT_FATAL(a != NULL);
    b = tft_fake_start(NULL);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(tft_fake_send(a, "/admin/price", "{\"usdkrw\":1402.5}"), 200);
    CU_ASSERT_EQUAL(tft_fake_send(b, "/admin/price", "{\"usdkrw\":1401.5}"), 200);
    capture_start();
    tfh *h = open_fx("{providers: [{name: dunamu, base_url: '%s'}, {name: er_api, base_url: "
                     "'%s'}], timeout: 1s}",
                     a->base, b->base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tick_result t = tick(h);
    CU_ASSERT_EQUAL(t.rc, TF_OK);
    CU_ASSERT_STRING_EQUAL(t.provider, "dunamu");
    CU_ASSERT_EQUAL(t.rate, 1402.5);
    static const struct {
        const char *mode;
        int expect;
    } modes[] = {
        {"500", TF_EHTTP},      {"503", TF_EHTTP},          {"429", TF_ERATELIMIT},
        {"418", TF_ERATELIMIT}, {"delay", TF_ETIMEOUT},     {"truncate", TF_EPARSE},
        {"html", TF_EHTTP},     {"wrong_types", TF_EVALUE}, {"error_object", TF_ENOTFOUND},
        {"empty", TF_EPARSE},   {"zero", TF_EVALUE},
    };
    double f0 = failovers();
    for (size_t i = 0; i < TF_ARRAY_LEN(modes); i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"endpoint\":\"dunamu.forex\",\"mode\":\"%s\",\"retry_after\":1,"
                 "\"delay_ms\":3000,\"count\":0}",
                 modes[i].mode);
        CU_ASSERT_EQUAL(tft_fake_send(a, "/admin/fault", body), 200);
        double errs = errors_of(modes[i].expect);
        for (int k = 0; k < 2; k++) {
            t = tick(h);
            CU_ASSERT_EQUAL(t.rc, TF_OK);
            CU_ASSERT_STRING_EQUAL(t.provider, "er_api");
            CU_ASSERT_EQUAL(t.rate, 1401.5);
        }
        if (errors_of(modes[i].expect) - errs < 1)
            fprintf(stderr, "FAILED: mode %s: no %s error counted\n", modes[i].mode,
                    tf_status_name(modes[i].expect));
        CU_ASSERT(errors_of(modes[i].expect) - errs >= 1);
        CU_ASSERT_EQUAL(failovers() - f0, (double)(i + 1));
        CU_ASSERT_EQUAL(tft_fake_send(a, "/admin/fault", "{\"endpoint\":\"*\",\"mode\":\"none\"}"),
                        200);
        if (modes[i].expect == TF_ERATELIMIT) {
            /* The host stays blocked for its Retry-After (1 s): poll until it is over. */
            live_wait w = {h, "dunamu", {0}};
            CU_ASSERT(tft_wait_until(ticks_from, &w, 10000));
            t = w.last;
        } else {
            t = tick(h);
        }
        if (strcmp(t.provider, "dunamu") != 0)
            fprintf(stderr, "FAILED: mode %s: after clearing, provider %s rc %d\n", modes[i].mode,
                    t.provider, t.rc);
        CU_ASSERT_EQUAL(t.rc, TF_OK);
        CU_ASSERT_STRING_EQUAL(t.provider, "dunamu");
        CU_ASSERT_EQUAL(t.rate, 1402.5);
    }
    tfh_close(h);
    capture_stop();
    int n = (int)TF_ARRAY_LEN(modes);
    CU_ASSERT_EQUAL(captured("fx: using er_api (dunamu failed:"), n);
    CU_ASSERT_EQUAL(captured("fx: using dunamu again"), n);
    tft_fake_stop(a);
    tft_fake_stop(b);
}

/* Each provider against the fake exchange, with an exact FX set through the admin API. */
static void test_live_each_provider(void)
{
    tft_fake *a = NULL;
    a = tft_fake_start(NULL);
    CU_ASSERT_FATAL(a != NULL);
    CU_ASSERT_EQUAL(tft_fake_send(a, "/admin/price", "{\"usdkrw\":1402.5}"), 200);
    time_t kst = (time_t)(time(NULL) + 9 * 3600);
    struct tm tm;
    gmtime_r(&kst, &tm);
    bool weekend = tm.tm_wday == 0 || tm.tm_wday == 6;
    static const char *const names[] = {"dunamu", "er_api", "exchangerate_host", "koreaexim",
                                        "bithumb_usdt"};
    for (size_t i = 0; i < TF_ARRAY_LEN(names); i++) {
        const prov *p = prov_of(names[i]);
        tfh *h = open_fx("{providers: [{name: %s, base_url: '%s'%s}]}", p->name, a->base,
                         p->key ? ", api_key: '${FX_TEST_KEY}'" : "");
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        tick_result t = tick(h);
        if (strcmp(p->name, "koreaexim") == 0 && weekend) {
            CU_ASSERT_EQUAL(t.rc, TF_ENOTFOUND); /* no fixing on Saturday/Sunday */
        } else if (strcmp(p->name, "bithumb_usdt") == 0) {
            /* USDT trades at the tether premium (1.5-3.5 % in the fake). */
            CU_ASSERT_EQUAL(t.rc, TF_OK);
            CU_ASSERT(t.rate > 1402.5 * 1.01 && t.rate < 1402.5 * 1.04);
        } else {
            if (t.rc != TF_OK)
                fprintf(stderr, "FAILED: live %s: rc %d\n", p->name, t.rc);
            CU_ASSERT_EQUAL(t.rc, TF_OK);
            CU_ASSERT_EQUAL(t.rate, 1402.5);
            CU_ASSERT_STRING_EQUAL(t.provider, p->name);
        }
        tfh_close(h);
    }
    tft_fake_stop(a);
}

static int suite_init(void)
{
    setenv("FX_TEST_KEY", "k3y/+=", 1);
    g_dir = tft_mkdtemp();
    g_srv = tft_server_start();
    return g_dir && g_srv ? 0 : -1;
}

static int suite_cleanup(void)
{
    tft_server_stop(g_srv);
    tft_rmdir(g_dir);
    free(g_dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"plausibility: range and jumps, confirmed by the next provider", test_plausible},
        {"fixture rates (each provider, exact)", test_fixture_rates},
        {"request URLs", test_request_urls},
        {"error fixtures: class, no record, recovery", test_error_fixtures},
        {"bad values never become a rate", test_bad_values},
        {"freshness and max_age precedence", test_freshness},
        {"failover to the second and back", test_failover_and_return},
        {"stale first provider, all failed", test_failover_stale_and_all_failed},
        {"options", test_options},
        {"live fake exchange: every fault mode", test_live_fault_modes},
        {"live fake exchange: each provider", test_live_each_provider},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("source_fx", tests, suite_init, suite_cleanup);
}
