/*
 * Tests of the `http_json` source. The shipped pipelines/examples/{upbit,okx,bybit}.yaml are
 * loaded through the real config loader (their URL host redirected by UPBIT_URL/OKX_URL/
 * BYBIT_URL) and their options drive every exchange test: each fixture to exact record values,
 * each error fixture to its class with no record and recovery, and live HTTP against
 * tickflow-fake-exchange (fixed prices, every fault mode, keep-alive). Also: the same fields as
 * the native `bithumb` source for the same fixture, bulk replies ("*", objects of items), and
 * option validation with its messages.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_config.h"
#include "tf_fake.h"
#include "tf_fixture_server.h"
#include "tf_http.h"
#include "tf_instance.h"
#include "tf_metrics.h"
#include "tf_options.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define PLUGIN     "http_json"
#define LONG_AGE   "360000000000" /* 100000 h in ms: the fixtures are from 2026-11-23 */
#define UPBIT_PATH "/v1/ticker?markets=KRW-BTC,KRW-USDT"
#define OKX_PATH   "/api/v5/market/ticker?instId=BTC-USDT"
#define BYBIT_PATH "/v5/market/tickers?category=linear&symbol=BTCUSDT"

static tft_server *srv;
static char *tmp_dir;

/* ---- helpers ---- */

static double errors_of(const char *pipeline, const char *cls)
{
    return tfh_errors(pipeline, PLUGIN, cls);
}

/* Everything written to stderr (the log) between capture_start and capture_end. */
typedef struct capture {
    int saved;
    char path[600];
} capture;

static void capture_start(capture *c)
{
    snprintf(c->path, sizeof c->path, "%s/stderr.txt", tmp_dir);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    c->saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* malloc'd text of the capture; the real stderr is restored. */
static char *capture_end(capture *c)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    char *text = tft_read_file(c->path, NULL);
    return text ? text : strdup("");
}

static char *fixture_headers(const char *name)
{
    return tft_fixture_headers(name);
}

static json_t *load_fixture(const char *name)
{
    return tft_fixture_json(name);
}

static void route_json(const char *path, int status, json_t *body)
{
    tft_server_route_json(srv, path, status, NULL, body);
}

static void route_text(const char *path, const char *body)
{
    tft_server_route(srv, path, 200, NULL, body, strlen(body));
}

static int tick(tfh *h, size_t *count)
{
    return tfh_collect_count(h, count);
}

/* A harness with `with` written as YAML flow text. */
static tfh *open_with(const char *with)
{
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    return h;
}

/* ---- the shipped examples ---- */

typedef struct example_file {
    const char *file; /* under pipelines/examples/ */
    const char *env;  /* variable that replaces the exchange's host */
} example_file;

static const example_file UPBIT = {"upbit.yaml", "UPBIT_URL"};
static const example_file OKX = {"okx.yaml", "OKX_URL"};
static const example_file BYBIT = {"bybit.yaml", "BYBIT_URL"};

/* The example file through the real loader, with its host variable set to `base`. */
static tf_config *load_example(const example_file *ex, const char *base, tf_registry **reg)
{
    CU_ASSERT_EQUAL_FATAL(setenv(ex->env, base, 1), 0);
    tf_diag *diag = tf_diag_create();
    *reg = tf_registry_create();
    const char *dirs[] = {tft_plugin_dir()};
    tf_registry_load_default(*reg, dirs, 1, diag);
    tf_diag_destroy(diag);
    char rel[128];
    snprintf(rel, sizeof rel, "pipelines/examples/%s", ex->file);
    char path[1024];
    snprintf(path, sizeof path, "%s", tft_source_path(rel));
    const char *paths[] = {path};
    tf_config *cfg = NULL;
    diag = tf_diag_create();
    int rc = tf_config_load(paths, 1, *reg, diag, &cfg);
    if (rc != TF_OK)
        tf_diag_print(diag, stderr);
    tf_diag_destroy(diag);
    CU_ASSERT_EQUAL_FATAL(rc, TF_OK);
    CU_ASSERT_EQUAL_FATAL(cfg->n_pipelines, 1);
    CU_ASSERT_EQUAL_FATAL(cfg->pipelines[0].n_sources, 1);
    CU_ASSERT_STRING_EQUAL_FATAL(cfg->pipelines[0].sources[0].plugin->desc->name, PLUGIN);
    return cfg;
}

static void drop_nulls(json_t *obj)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v)
    {
        if (json_is_null(v))
            json_object_del(obj, key);
        else if (json_is_object(v))
            drop_nulls(v);
    }
}

/* A harness whose options are exactly the example's `with:` (as validated by the loader),
 * with `overrides` (a JSON object, e.g. a larger max_age for old fixtures) on top. */
static tfh *open_example(const example_file *ex, const char *base, const char *overrides)
{
    tf_registry *reg = NULL;
    tf_config *cfg = load_example(ex, base, &reg);
    json_t *with = tf_options_dump(cfg->pipelines[0].sources[0].options);
    tf_config_destroy(cfg);
    tf_registry_destroy(reg);
    drop_nulls(with);
    json_t *extra = json_loads(overrides ? overrides : "{}", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(extra);
    json_object_update(with, extra);
    json_decref(extra);
    char *text = json_dumps(with, JSON_COMPACT);
    json_decref(with);
    tfh *h = tfh_open("source", PLUGIN, text, NULL);
    if (!h)
        fprintf(stderr, "options: %s\n", text);
    free(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    return h;
}

/* Fixture tests: the example's options on the fixture server, old timestamps accepted. */
static tfh *open_fixture_example(const example_file *ex)
{
    return open_example(ex, tft_server_url(srv), "{\"max_age\": " LONG_AGE "}");
}

/* An example file as the runtime runs it: its instance from the loaded configuration, unchanged. */
typedef struct example_run {
    tf_registry *reg;
    tf_config *cfg;
    tf_http *http;
    tf_interest *interest;
    tf_instance *inst;
    atomic_bool stop;
    uint64_t seq;
} example_run;

static example_run *example_start(const example_file *ex, const char *base)
{
    example_run *e = calloc(1, sizeof *e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    atomic_init(&e->stop, false);
    e->cfg = load_example(ex, base, &e->reg);
    e->http = tf_http_create(&e->cfg->http);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->http);
    e->interest = tf_interest_create();
    e->inst = tf_instance_create(&e->cfg->pipelines[0].sources[0], "example", e->http,
                                 &e->cfg->redis, e->interest, &e->stop);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->inst);
    return e;
}

static int example_collect(example_run *e, tf_batch *out)
{
    tf_tick t = {.struct_size = sizeof(tf_tick),
                 .pipeline = "example",
                 .seq = ++e->seq,
                 .scheduled_ms = tf_now_ms(),
                 .deadline_ms = tf_mono_ms() + 1000,
                 .key_prefix = "tf"};
    return tf_instance_collect(e->inst, &t, out);
}

static void example_stop(example_run *e)
{
    tf_instance_destroy(e->inst);
    tf_interest_destroy(e->interest);
    tf_http_destroy(e->http);
    tf_config_destroy(e->cfg);
    tf_registry_destroy(e->reg);
    free(e);
}

/* ---- fixtures through the examples: exact values ---- */

static void assert_upbit_btc(const tf_record *r)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "exchange"), "upbit");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "market"), "spot");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "quote"), "KRW");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 136820000.0);
    CU_ASSERT_EQUAL(tfh_double(r, "volume_24h"), 1564.90301877);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), 1795428929104LL);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts_exchange"), TF_FIELD_TS);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "bid"), TF_FIELD_NONE);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ask"), TF_FIELD_NONE);
}

static void assert_upbit_usdt(const tf_record *r)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "quote"), "KRW");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 1438.0);
    CU_ASSERT_EQUAL(tfh_double(r, "volume_24h"), 93224871.60318722);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), 1795428929811LL);
}

/* upbit_ticker_krw_btc.json byte for byte, with its headers: BTC exact; USDT, also asked for
 * in the same request, is missing from that reply (one not_found, the tick still succeeds). */
static void test_upbit_btc_fixture(void)
{
    char *headers = fixture_headers("upbit_ticker_krw_btc.headers.txt");
    CU_ASSERT_TRUE(
        tft_server_route_fixture(srv, UPBIT_PATH, 200, headers, "upbit_ticker_krw_btc.json"));
    free(headers);
    tfh *h = open_fixture_example(&UPBIT);
    int hits = tft_server_hits(srv, "/v1/ticker");
    double nf = errors_of("harness", "not_found");
    tf_batch *b = tf_batch_create();
    int64_t before = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    int64_t after = tf_now_ms();
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    assert_upbit_btc(r);
    CU_ASSERT_TRUE(tfh_int(r, "ts_received") >= before && tfh_int(r, "ts_received") <= after);
    CU_ASSERT_EQUAL(errors_of("harness", "not_found"), nf + 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/v1/ticker"), hits + 1);
    char url[256];
    char origin[64];
    tft_server_last_request(srv, url, sizeof url, "Origin", origin, sizeof origin);
    CU_ASSERT_STRING_EQUAL(url, UPBIT_PATH);
    CU_ASSERT_STRING_EQUAL(origin, ""); /* Upbit throttles requests with an Origin header */
    tf_batch_destroy(b);
    tfh_close(h);
}

static double rejected(const char *symbol, const char *reason)
{
    static const char *const labels[] = {"pipeline", "exchange", "symbol", "reason", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_source_rejected_total", "x",
                                       labels, NULL, 0);
    const char *values[] = {"harness", "upbit", symbol, reason};
    return m ? tf_metric_value(m, values) : -1;
}

/* The Upbit example's price_bounds: a trade_price of 1e+308 or x10 is refused and counted;
 * the fixture's own price is emitted. A jump of x2 is held until the next reply confirms it. */
static void test_upbit_plausible(void)
{
    tfh *h = open_fixture_example(&UPBIT);
    const double prices[] = {1e308, 1368200000.0, 136820000.0};
    const char *reasons[] = {"range", "range", NULL};
    for (size_t i = 0; i < TF_ARRAY_LEN(prices); i++) {
        json_t *body = load_fixture("upbit_ticker_krw_btc.json");
        json_object_set_new(json_array_get(body, 0), "trade_price", json_real(prices[i]));
        route_json(UPBIT_PATH, 200, body);
        double before = reasons[i] ? rejected("BTC", reasons[i]) : 0;
        tf_batch *b = tf_batch_create();
        CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
        tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
        if (reasons[i]) {
            CU_ASSERT_PTR_NULL(r);
            CU_ASSERT_EQUAL(rejected("BTC", reasons[i]), before + 1);
        } else {
            CU_ASSERT_EQUAL(tfh_double(r, "last"), prices[i]);
        }
        tf_batch_destroy(b);
    }
    json_t *body = load_fixture("upbit_ticker_krw_btc.json");
    json_object_set_new(json_array_get(body, 0), "trade_price", json_real(273640000.0));
    route_json(UPBIT_PATH, 200, body);
    double jumps = rejected("BTC", "jump");
    size_t n = 1;
    CU_ASSERT_EQUAL(tfh_collect_count(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(rejected("BTC", "jump"), jumps + 1);
    CU_ASSERT_EQUAL(tfh_collect_count(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 1);
    tfh_close(h);
}

static void test_upbit_usdt_fixture(void)
{
    CU_ASSERT_TRUE(
        tft_server_route_fixture(srv, UPBIT_PATH, 200, NULL, "upbit_ticker_krw_usdt.json"));
    tfh *h = open_fixture_example(&UPBIT);
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    assert_upbit_usdt(tfh_find(b, "ticker", "symbol", "USDT"));
    tf_batch_destroy(b);
    tfh_close(h);
}

/* Both markets in one reply, as Upbit answers markets=KRW-BTC,KRW-USDT. */
static json_t *upbit_both(void)
{
    json_t *both = load_fixture("upbit_ticker_krw_btc.json");
    json_t *usdt = load_fixture("upbit_ticker_krw_usdt.json");
    json_array_extend(both, usdt);
    json_decref(usdt);
    return both;
}

static void test_upbit_both_fixtures(void)
{
    route_json(UPBIT_PATH, 200, upbit_both());
    tfh *h = open_fixture_example(&UPBIT);
    double nf = errors_of("harness", "not_found");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    assert_upbit_btc(tfh_find(b, "ticker", "symbol", "BTC"));
    assert_upbit_usdt(tfh_find(b, "ticker", "symbol", "USDT"));
    CU_ASSERT_EQUAL(errors_of("harness", "not_found"), nf);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_okx_fixture(void)
{
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, OKX_PATH, 200, NULL, "okx_ticker_btc_usdt.json"));
    tfh *h = open_fixture_example(&OKX);
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "exchange"), "okx");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "market"), "spot");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "quote"), "USDT");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 95010.1);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 95010.1);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 95010.2);
    CU_ASSERT_EQUAL(tfh_double(r, "volume_24h"), 8609.42131);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), 1795428930120LL);
    CU_ASSERT_EQUAL(tf_record_field_count(r), 10);
    char url[256];
    tft_server_last_request(srv, url, sizeof url, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(url, OKX_PATH);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_bybit_fixture(void)
{
    CU_ASSERT_TRUE(
        tft_server_route_fixture(srv, BYBIT_PATH, 200, NULL, "bybit_tickers_linear_btcusdt.json"));
    tfh *h = open_fixture_example(&BYBIT);
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 1);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "exchange"), "bybit");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "market"), "perp");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "quote"), "USDT");
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 95011.70);
    CU_ASSERT_EQUAL(tfh_double(r, "bid"), 95011.60);
    CU_ASSERT_EQUAL(tfh_double(r, "ask"), 95011.70);
    CU_ASSERT_EQUAL(tfh_double(r, "volume_24h"), 98410.224);
    CU_ASSERT_EQUAL(tfh_double(r, "mark_price"), 95014.20);
    CU_ASSERT_EQUAL(tfh_double(r, "index_price"), 95039.87);
    CU_ASSERT_EQUAL(tfh_double(r, "funding_rate"), 0.0001);
    CU_ASSERT_EQUAL(tfh_int(r, "next_funding_ts"), 1795449600000LL);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "next_funding_ts"), TF_FIELD_TS);
    /* the envelope's "time" (^/time), not a field of the item */
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), 1795428930155LL);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* The shipped example, unchanged (max_age 30s), rejects the day-old fixture as stale. */
static void test_example_max_age_applies(void)
{
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, OKX_PATH, 200, NULL, "okx_ticker_btc_usdt.json"));
    example_run *e = example_start(&OKX, tft_server_url(srv));
    double before = errors_of("example", "value");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(example_collect(e, b), TF_EVALUE);
    CU_ASSERT_EQUAL(tf_batch_count(b), 0);
    CU_ASSERT_EQUAL(errors_of("example", "value"), before + 1);
    tf_batch_destroy(b);
    example_stop(e);
}

/* ---- the same record as the native bithumb source ---- */

static void assert_same_record(const tf_record *native, const tf_record *mine, int64_t t0,
                               int64_t t1)
{
    CU_ASSERT_EQUAL(tf_record_field_count(mine), tf_record_field_count(native));
    CU_ASSERT_STRING_EQUAL(tf_record_kind(mine), tf_record_kind(native));
    for (size_t i = 0; i < tf_record_field_count(native); i++) {
        const char *name = NULL;
        const char *mine_name = NULL;
        tf_field_type type = tf_record_field_at(native, i, &name);
        CU_ASSERT_EQUAL(tf_record_field_at(mine, i, &mine_name), type);
        CU_ASSERT_STRING_EQUAL(mine_name ? mine_name : "", name);
        if (type == TF_FIELD_STRING) {
            CU_ASSERT_STRING_EQUAL(tfh_string(mine, name), tfh_string(native, name));
        } else if (type == TF_FIELD_DOUBLE) {
            CU_ASSERT_EQUAL(tfh_double(mine, name), tfh_double(native, name));
        } else if (strcmp(name, "ts_received") == 0) {
            CU_ASSERT_TRUE(tfh_int(mine, name) >= t0 && tfh_int(mine, name) <= t1);
        } else {
            CU_ASSERT_EQUAL(tfh_int(mine, name), tfh_int(native, name));
        }
    }
}

static void test_same_as_native_bithumb(void)
{
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/BTC_KRW", 200, NULL,
                                            "bithumb_v1_ticker_btc_krw.json"));
    char with[1024];
    snprintf(with, sizeof with, "{base_url: '%s', symbols: [BTC], book: false, max_age: 100000h}",
             tft_server_url(srv));
    tfh *native = tfh_open("source", "bithumb", with, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(native);
    snprintf(with, sizeof with,
             "{url: '%s/public/ticker/{symbol}', exchange: bithumb, quote: KRW, symbols: [BTC], "
             "symbol_format: '{symbol}_KRW', ok: '/status == \"0000\"', error_message: /message, "
             "item: /data, fields: {last: /closing_price, volume: /units_traded_24H, ts: /date}, "
             "max_age: 100000h}",
             tft_server_url(srv));
    tfh *mine = open_with(with);
    tf_batch *a = tf_batch_create();
    tf_batch *b = tf_batch_create();
    int64_t t0 = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(native, a), TF_OK);
    CU_ASSERT_EQUAL(tfh_collect(mine, b), TF_OK);
    int64_t t1 = tf_now_ms();
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(a), 1);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(b), 1);
    assert_same_record(tf_batch_at(a, 0), tf_batch_at(b, 0), t0, t1);
    CU_ASSERT_EQUAL(tfh_double(tf_batch_at(b, 0), "last"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_int(tf_batch_at(b, 0), "ts_exchange"), 1795428930123LL);

    /* Bithumb's HTTP-200 error: the native source and the mapping agree on the class. */
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, "/public/ticker/BTC_KRW", 200, NULL,
                                            "bithumb_v1_error_invalid_param.json"));
    size_t n = 99;
    CU_ASSERT_EQUAL(tick(native, &n), TF_EAPI);
    CU_ASSERT_EQUAL(tick(mine, &n), TF_EAPI);
    CU_ASSERT_EQUAL(n, 0);
    tf_batch_destroy(a);
    tf_batch_destroy(b);
    tfh_close(native);
    tfh_close(mine);
}

/* ---- error fixtures: class, no record, recovery ---- */

typedef struct bad_case {
    const char *path;
    int status;
    const char *headers;
    const char *fixture;
    int want;
    const char *message; /* expected in the log line, or NULL */
} bad_case;

static void check_bad_then_recover(tfh *h, const bad_case *c, const char *good_path,
                                   const char *good_fixture, size_t good_records)
{
    CU_ASSERT_TRUE(tft_server_route_fixture(srv, c->path, c->status, c->headers, c->fixture));
    const char *cls = tf_status_name(c->want);
    double before = errors_of("harness", cls);
    size_t n = 99;
    capture cap;
    capture_start(&cap);
    int rc = tick(h, &n);
    char *log = capture_end(&cap);
    if (rc != c->want)
        fprintf(stderr, "%s on %s: expected %s, found %s\n%s", c->fixture, c->path, cls,
                tf_status_name(rc), log);
    CU_ASSERT_EQUAL(rc, c->want);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_TRUE(errors_of("harness", cls) >= before + 1);
    if (c->message && !strstr(log, c->message)) {
        fprintf(stderr, "expected \"%s\" in the log, found:\n%s", c->message, log);
        CU_FAIL("message not logged");
    }
    free(log);
    if (good_fixture) {
        CU_ASSERT_TRUE(tft_server_route_fixture(srv, good_path, 200, NULL, good_fixture));
    } else {
        route_json(good_path, 200, upbit_both());
    }
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, good_records);
}

#define HTML "Content-Type: text/html; charset=UTF-8"

static void test_upbit_errors(void)
{
    static const bad_case cases[] = {
        {UPBIT_PATH, 404, NULL, "upbit_error_code_not_found.json", TF_EAPI,
         "expected HTTP 2xx, found HTTP 404: Code not found"},
        {UPBIT_PATH, 200, NULL, "bad_upbit_ticker_empty_array.json", TF_ENOTFOUND,
         "expected at least one item, found an empty array"},
        {UPBIT_PATH, 200, NULL, "bad_empty_body.json", TF_EPARSE, "found an empty body"},
        {UPBIT_PATH, 502, HTML, "bad_html_cloudflare_502.html", TF_EHTTP,
         "title \"api.bithumb.com | 502: Bad gateway\""},
        {UPBIT_PATH, 200, NULL, "bad_truncated_premium_index.json", TF_EPARSE, "invalid JSON"},
        {UPBIT_PATH, 200, NULL, "okx_ticker_btc_usdt.json", TF_ENOTFOUND, "expected an item"},
    };
    tfh *h = open_fixture_example(&UPBIT);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++)
        check_bad_then_recover(h, &cases[i], UPBIT_PATH, NULL, 2);
    tfh_close(h);
}

static void test_okx_errors(void)
{
    static const bad_case cases[] = {
        {OKX_PATH, 200, NULL, "okx_error_instrument_not_exist.json", TF_EAPI,
         "okx /api/v5/market/ticker: expected /code == \"0\" (ok), found \"51001\": Instrument "
         "ID doesn't exist."},
        {OKX_PATH, 200, NULL, "bad_empty_body.json", TF_EPARSE, NULL},
        {OKX_PATH, 502, HTML, "bad_html_cloudflare_502.html", TF_EHTTP, "HTTP 502"},
        {OKX_PATH, 200, NULL, "bybit_tickers_linear_btcusdt.json", TF_EPARSE,
         "found no /code in the reply"},
        {OKX_PATH, 200, NULL, "upbit_ticker_krw_btc.json", TF_EPARSE, NULL},
    };
    tfh *h = open_fixture_example(&OKX);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++)
        check_bad_then_recover(h, &cases[i], OKX_PATH, "okx_ticker_btc_usdt.json", 1);
    tfh_close(h);
}

static void test_bybit_errors(void)
{
    static const bad_case cases[] = {
        {BYBIT_PATH, 200, NULL, "bybit_error_not_supported_symbols.json", TF_EAPI,
         "expected /retCode == 0 (ok), found 10001: Not supported symbols"},
        {BYBIT_PATH, 200, NULL, "bad_empty_body.json", TF_EPARSE, NULL},
        {BYBIT_PATH, 502, HTML, "bad_html_cloudflare_502.html", TF_EHTTP, NULL},
        {BYBIT_PATH, 200, NULL, "okx_ticker_btc_usdt.json", TF_EPARSE, NULL},
    };
    tfh *h = open_fixture_example(&BYBIT);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++)
        check_bad_then_recover(h, &cases[i], BYBIT_PATH, "bybit_tickers_linear_btcusdt.json", 1);
    tfh_close(h);
}

/* Per-item problems: the item is refused with TF_EVALUE, nothing half-emitted. */
static void test_bad_values(void)
{
    tfh *h = open_fixture_example(&OKX);
    size_t n = 99;
    json_t *okx = load_fixture("okx_ticker_btc_usdt.json");
    json_t *item = json_array_get(json_object_get(okx, "data"), 0);
    json_object_set_new(item, "bidPx", json_string("95010.3")); /* above askPx 95010.2 */
    route_json(OKX_PATH, 200, json_deep_copy(okx));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    json_object_set_new(item, "bidPx", json_string("95010.1"));
    json_object_set_new(item, "instId", json_string("ETH-USDT")); /* not what was asked */
    route_json(OKX_PATH, 200, json_deep_copy(okx));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    json_object_set_new(item, "instId", json_string("BTC-USDT"));
    json_object_set_new(item, "last", json_string("0"));
    route_json(OKX_PATH, 200, json_deep_copy(okx));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    CU_ASSERT_EQUAL(n, 0);
    json_object_set_new(item, "last", json_string("95010.1"));
    json_object_del(item, "vol24h"); /* a mapped field that is missing */
    route_json(OKX_PATH, 200, json_deep_copy(okx));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EPARSE);
    CU_ASSERT_EQUAL(n, 0);
    json_decref(okx);
    tfh_close(h);

    /* A timestamp 10 s in the future of receipt. */
    h = open_example(&OKX, tft_server_url(srv), NULL);
    okx = load_fixture("okx_ticker_btc_usdt.json");
    item = json_array_get(json_object_get(okx, "data"), 0);
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(tf_now_ms() + 10000));
    json_object_set_new(item, "ts", json_string(ts));
    route_json(OKX_PATH, 200, json_deep_copy(okx));
    CU_ASSERT_EQUAL(tick(h, &n), TF_EVALUE);
    snprintf(ts, sizeof ts, "%lld", (long long)(tf_now_ms() - 1000));
    json_object_set_new(item, "ts", json_string(ts));
    route_json(OKX_PATH, 200, okx);
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 1);
    tfh_close(h);
}

/* ---- bulk replies and other mappings ---- */

/* "*" over Bithumb's ALL_KRW: an object of items keyed by coin, the sibling "date" string and
 * an inactive coin ([]) skipped, the timestamp read from the root (^/data/date). */
static void test_every_object_of_items(void)
{
    json_t *all = load_fixture("bithumb_v1_ticker_all_krw.json");
    json_object_set_new(json_object_get(all, "data"), "LUNA", json_array());
    route_json("/public/ticker/ALL_KRW", 200, all);
    char with[1024];
    snprintf(with, sizeof with,
             "{url: '%s/public/ticker/ALL_KRW', exchange: bithumb, quote: KRW, symbols: '*', "
             "ok: '/status == \"0000\"', items: /data, fields: {last: /closing_price, volume: "
             "/units_traded_24H, ts: ^/data/date}, max_age: 100000h}",
             tft_server_url(srv));
    tfh *h = open_with(with);
    double parse = errors_of("harness", "parse");
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 4);
    CU_ASSERT_EQUAL(errors_of("harness", "parse"), parse);
    tf_record *eth = tfh_find(b, "ticker", "symbol", "ETH");
    CU_ASSERT_EQUAL(tfh_double(tfh_find(b, "ticker", "symbol", "BTC"), "last"), 136850000.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "last"), 4968000.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "volume_24h"), 13877.02261754);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(b, "ticker", "symbol", "USDT"), "last"), 1439.0);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(b, "ticker", "symbol", "XRP"), "volume_24h"),
                    21557004.13940022);
    for (size_t i = 0; i < tf_batch_count(b); i++)
        CU_ASSERT_EQUAL(tfh_int(tf_batch_at(b, i), "ts_exchange"), 1795428930411LL);
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "LUNA"));
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "DATE"));
    tf_batch_destroy(b);
    tfh_close(h);
}

/* "*" over an array: only items whose venue symbol has the prefix become records. */
static void test_every_array_strips_prefix(void)
{
    json_t *both = upbit_both();
    json_t *other = json_deep_copy(json_array_get(both, 0));
    json_object_set_new(other, "market", json_string("BTC-ETH")); /* a BTC-quoted market */
    json_array_append_new(both, other);
    route_json("/v1/ticker?markets=ALL", 200, both);
    char with[1024];
    snprintf(with, sizeof with,
             "{url: '%s/v1/ticker?markets=ALL', exchange: upbit, quote: KRW, symbols: '*', "
             "symbol_field: /market, symbol_strip_prefix: KRW-, items: '', fields: {last: "
             "/trade_price, ts: /timestamp}, max_age: 100000h}",
             tft_server_url(srv));
    tfh *h = open_with(with);
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 2);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(b, "ticker", "symbol", "BTC"), "last"), 136820000.0);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(b, "ticker", "symbol", "USDT"), "last"), 1438.0);
    CU_ASSERT_PTR_NULL(tfh_find(b, "ticker", "symbol", "ETH"));
    tf_batch_destroy(b);
    tfh_close(h);
}

/* Lower-case venue symbols in the path, extra headers, epoch seconds, an `exists` condition. */
static void test_lower_case_headers_seconds(void)
{
    char body[256];
    double now_s = (double)(tf_now_ms() - 2000) / 1000.0;
    snprintf(body, sizeof body, "{\"result\":{\"price\":\"101.5\",\"at\":%.3f}}", now_s);
    route_text("/v2/btc_krw/ticker", body);
    char with[1024];
    snprintf(with, sizeof with,
             "{url: '%s/v2/{symbol}/ticker', exchange: korbit, quote: KRW, symbols: [btc], "
             "symbol_format: '{symbol}_KRW', symbol_case: lower, ok: /result exists, item: "
             "/result, ts_unit: s, headers: ['Accept-Language: en', 'X-Tf-Test: yes'], fields: "
             "{last: /price, ts: /at}}",
             tft_server_url(srv));
    tfh *h = open_with(with);
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    tf_record *r = tfh_find(b, "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tfh_double(r, "last"), 101.5);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_exchange"), (int64_t)(now_s * 1000.0 + 0.5));
    char url[256];
    char value[64];
    tft_server_last_request(srv, url, sizeof url, "X-Tf-Test", value, sizeof value);
    CU_ASSERT_STRING_EQUAL(url, "/v2/btc_krw/ticker");
    CU_ASSERT_STRING_EQUAL(value, "yes");
    tf_batch_destroy(b);
    route_text("/v2/btc_krw/ticker", "{\"error\":\"maintenance\"}");
    size_t n = 99;
    CU_ASSERT_EQUAL(tick(h, &n), TF_EAPI);
    CU_ASSERT_EQUAL(n, 0);
    tfh_close(h);
}

/* A venue symbol with a reserved character is percent-encoded in the URL. */
static void test_symbol_url_encoded(void)
{
    char body[256];
    snprintf(body, sizeof body, "{\"last\":\"7.25\",\"ts\":%lld}", (long long)tf_now_ms());
    route_text("/t?pair=XRP/KRW", body);
    char with[512];
    snprintf(with, sizeof with,
             "{url: '%s/t?pair={symbol}', exchange: x, quote: KRW, symbols: [XRP], "
             "symbol_format: '{symbol}/KRW', fields: {last: /last, ts: /ts}}",
             tft_server_url(srv));
    tfh *h = open_with(with);
    size_t n = 0;
    int hits = tft_server_hits(srv, "/t");
    CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(tft_server_hits(srv, "/t"), hits + 1);
    tfh_close(h);
}

/* ---- options ---- */

typedef struct refusal {
    const char *with;
    const char *message; /* expected in the log */
} refusal;

static void test_options_refused_by_init(void)
{
    static const refusal cases[] = {
        {"url: 'ftp://x.com/{symbol}'", "url: expected an http:// or https:// URL with a host"},
        {"url: 'https://x.com/t?s={sym}'", "expected the placeholder {symbol} or {symbols}"},
        {"url: 'https://x.com/{symbol}?a={symbols}', items: ''", "found both"},
        {"url: 'https://x.com/{symbol}', ok: 'code = 0'",
         "ok: expected `<pointer> == <value>` such as /code == \"0\""},
        {"url: 'https://x.com/{symbol}', ok: '/code == 0x'", "expected a JSON literal after =="},
        {"url: 'https://x.com/{symbol}', ok: '/code == OK'", "strings in double quotes"},
        {"url: 'https://x.com/{symbol}', ok: 'code == 0'", "expected a JSON pointer starting"},
        {"url: 'https://x.com/{symbol}', fields: {last: trade_price}",
         "fields.last: expected a JSON pointer starting with '/'"},
        {"url: 'https://x.com/{symbol}', fields: {last: /a, ts: '^b'}",
         "fields.ts: expected a JSON pointer"},
        {"url: 'https://x.com/{symbol}', item: /data~2", "'~' only as ~0"},
        {"url: 'https://x.com/{symbol}', item: /d, items: /e", "item, items: expected one of"},
        {"url: 'https://x.com/all', symbols: '*'", "expected items"},
        {"url: 'https://x.com/{symbol}', symbols: '*', items: ''", "without {symbol}"},
        {"url: 'https://x.com/t?m={symbols}', symbols: [BTC, ETH]", "expected items"},
        {"url: 'https://x.com/t', symbols: [BTC, ETH]", "without {symbol} one request"},
        {"url: 'https://x.com/{symbol}', market: futures", "market: expected spot or perp"},
        {"url: 'https://x.com/{symbol}', ts_unit: min", "ts_unit: expected ms, s, us or ns"},
        {"url: 'https://x.com/{symbol}', headers: [NoColon]", "headers[0]: expected"},
        {"url: 'https://x.com/{symbol}', symbol_format: 'KRW-'",
         "symbol_format: expected {symbol} exactly once"},
        {"url: 'https://x.com/{symbol}', symbol_case: title", "symbol_case: expected upper"},
        {"url: 'https://x.com/{symbol}', symbols: [BTC-KRW]", "symbols[0]: expected a base"},
        {"url: 'https://x.com/{symbol}', symbols: [BTC, btc]", "found BTC again"},
        {"url: 'https://x.com/{symbol}', symbols: ['*', BTC]", "symbols[0]: expected a base"},
        {"url: 'https://x.com/{symbol}', symbols: []", "expected at least one symbol"},
        {"url: 'https://x.com/{symbol}', exchange: ''", "exchange: expected a value"},
        {"url: 'https://x.com/{symbol}', timeout: 0ms", "timeout: expected a duration > 0"},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        /* Required options the case does not set itself take a valid value. */
        const char *c = cases[i].with;
        char with[512];
        snprintf(with, sizeof with, "{%s%s%s%s}", strstr(c, "exchange:") ? "" : "exchange: x, ",
                 strstr(c, "fields:") ? "" : "fields: {last: /last}, ",
                 strstr(c, "symbols:") ? "" : "symbols: [BTC], ", c);
        if (!strstr(c, "quote:"))
            snprintf(with + strlen(with) - 1, sizeof with - strlen(with) + 1, ", quote: KRW}");
        capture cap;
        capture_start(&cap);
        tfh *h = tfh_open("source", PLUGIN, with, NULL);
        char *log = capture_end(&cap);
        if (h || !strstr(log, cases[i].message))
            fprintf(stderr, "%s: expected init to refuse it with \"%s\", found %s:\n%s\n", with,
                    cases[i].message, h ? "it accepted" : "another message", log);
        CU_ASSERT_PTR_NULL(h);
        CU_ASSERT_PTR_NOT_NULL(strstr(log, cases[i].message));
        free(log);
        tfh_close(h);
    }
}

static void test_options_refused_by_loader(void)
{
    char msg[2048];
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{exchange: x, quote: KRW, fields: {last: /a}}",
                               msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "url"));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, "{url: 'https://x.com/{symbol}', quote: KRW}", msg,
                               sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "exchange"));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN,
                               "{url: 'https://x.com/{symbol}', exchange: x, quote: KRW, fields: "
                               "{lst: /trade_price}}",
                               msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "did you mean 'last'"));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN,
                               "{url: 'https://x.com/{symbol}', exchange: x, quote: KRW, fields: "
                               "{bid: /b}}",
                               msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "last"));
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN,
                               "{url: 'https://x.com/{symbol}', exchange: x, quote: KRW, fields: "
                               "{last: /a}, timeout: soon}",
                               msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "timeout"));
}

/* `tickflow check` accepts the shipped examples. */
static void test_tickflow_check_examples(void)
{
    char log[700];
    snprintf(log, sizeof log, "%s/check.log", tmp_dir);
    const char *argv[] = {tft_bin("tickflow"), "check", tft_source_path("pipelines/examples"),
                          NULL};
    pid_t pid = tft_spawn(argv, log, NULL);
    int status = -1;
    CU_ASSERT_TRUE_FATAL(tft_wait_exit(pid, 30000, &status));
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(tft_file_count(log, "ok: 3 pipeline(s)"), 1);
}

/* ---- live: tickflow-fake-exchange ---- */

static tft_fake *fake;

static int suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srv = tft_server_start();
    tmp_dir = tft_mkdtemp();
    if (!srv || !tmp_dir)
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
    tft_rmdir(tmp_dir);
    free(tmp_dir);
    tft_server_stop(srv);
    curl_global_cleanup();
    return 0;
}

static const char *BTC_PRICE = "{\"symbol\":\"BTC\",\"usdt\":95012.35,\"bid\":95012.3,\"ask\":"
                               "95012.4,\"mark\":95015.88,\"krw\":136850000}";

/* The three example files, unchanged, against the fake exchange with a fixed BTC price. */
static void test_live_examples(void)
{
    tft_fake_post(fake, "/admin/price", BTC_PRICE);
    example_file files[] = {UPBIT, OKX, BYBIT};
    tf_batch *b[3];
    int64_t before = tf_now_ms();
    for (size_t i = 0; i < 3; i++) {
        example_run *e = example_start(&files[i], fake->base);
        b[i] = tf_batch_create();
        CU_ASSERT_EQUAL(example_collect(e, b[i]), TF_OK);
        example_stop(e);
    }
    int64_t after = tf_now_ms();
    CU_ASSERT_EQUAL(tf_batch_count(b[0]), 2);
    tf_record *up = tfh_find(b[0], "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(up);
    CU_ASSERT_EQUAL(tfh_double(up, "last"), 136850000.0);
    CU_ASSERT_TRUE(tfh_double(tfh_find(b[0], "ticker", "symbol", "USDT"), "last") > 1000);
    tf_record *okx = tfh_find(b[1], "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(okx);
    CU_ASSERT_EQUAL(tfh_double(okx, "last"), 95012.35);
    CU_ASSERT_EQUAL(tfh_double(okx, "bid"), 95012.3);
    CU_ASSERT_EQUAL(tfh_double(okx, "ask"), 95012.4);
    tf_record *by = tfh_find(b[2], "ticker", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(by);
    CU_ASSERT_EQUAL(tfh_double(by, "last"), 95012.35);
    CU_ASSERT_EQUAL(tfh_double(by, "bid"), 95012.3);
    CU_ASSERT_EQUAL(tfh_double(by, "ask"), 95012.4);
    CU_ASSERT_EQUAL(tfh_double(by, "mark_price"), 95015.88);
    for (size_t i = 0; i < 3; i++) {
        tf_record *r = tfh_find(b[i], "ticker", "symbol", "BTC");
        CU_ASSERT_TRUE(tfh_int(r, "ts_exchange") >= before - 1000 &&
                       tfh_int(r, "ts_exchange") <= after + 1000);
        tf_batch_destroy(b[i]);
    }
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

static void check_fault(tfh *h, const char *endpoint, size_t records, const fault_case *c)
{
    tfh_check_live_fault(h, fake, PLUGIN, endpoint, c->mode, c->want, records);
}

static void test_live_faults(void)
{
    static const struct {
        const example_file *ex;
        const char *endpoint;
        size_t records;
    } venues[] = {
        {&UPBIT, "upbit.ticker", 2}, {&OKX, "okx.ticker", 1}, {&BYBIT, "bybit.tickers", 1}};
    for (size_t v = 0; v < TF_ARRAY_LEN(venues); v++) {
        tfh *h = open_example(venues[v].ex, fake->base, "{\"timeout\": 500}");
        size_t n = 0;
        CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
        CU_ASSERT_EQUAL(n, venues[v].records);
        for (size_t i = 0; i < TF_ARRAY_LEN(fault_cases); i++)
            check_fault(h, venues[v].endpoint, venues[v].records, &fault_cases[i]);
        tfh_close(h);
    }
    tft_fake_post(fake, "/admin/fault", "{\"endpoint\":\"*\",\"mode\":\"none\"}");
}

/* Twenty ticks of one symbol reuse one kept-alive connection. */
static void test_live_keep_alive(void)
{
    tfh *h = open_example(&OKX, fake->base, NULL);
    tft_fake_post(fake, "/admin/reset", "{}");
    for (int i = 0; i < 20; i++) {
        size_t n = 0;
        CU_ASSERT_EQUAL(tick(h, &n), TF_OK);
        CU_ASSERT_EQUAL(n, 1);
    }
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "okx.ticker", "requests"), 20);
    CU_ASSERT_EQUAL(tft_fake_stat(fake, "okx.ticker", "connections"), 1);
    tfh_close(h);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"upbit example: KRW-BTC fixture exact", test_upbit_btc_fixture},
        {"upbit example: absurd prices and jumps rejected", test_upbit_plausible},
        {"upbit example: KRW-USDT fixture exact", test_upbit_usdt_fixture},
        {"upbit example: both markets in one reply", test_upbit_both_fixtures},
        {"okx example: fixture exact", test_okx_fixture},
        {"bybit example: fixture exact, ts from the root", test_bybit_fixture},
        {"example unchanged: max_age applies", test_example_max_age_applies},
        {"same record as the native bithumb source", test_same_as_native_bithumb},
        {"upbit errors and recovery", test_upbit_errors},
        {"okx errors and recovery", test_okx_errors},
        {"bybit errors and recovery", test_bybit_errors},
        {"bad values: crossed, wrong symbol, zero, missing, future", test_bad_values},
        {"\"*\": object of items, scalars and empty items skipped", test_every_object_of_items},
        {"\"*\": array of items, prefix stripped", test_every_array_strips_prefix},
        {"lower case, headers, epoch seconds, exists", test_lower_case_headers_seconds},
        {"symbol URL-encoded", test_symbol_url_encoded},
        {"options refused by init, with messages", test_options_refused_by_init},
        {"options refused by the loader", test_options_refused_by_loader},
        {"tickflow check accepts the examples", test_tickflow_check_examples},
        {"live: the three examples unchanged", test_live_examples},
        {"live: every fault mode of each venue", test_live_faults},
        {"live: keep-alive", test_live_keep_alive},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("source_http_json", tests, suite_init, suite_cleanup);
}
