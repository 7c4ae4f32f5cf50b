/*
 * `tickflow positions open|close|list` as a user runs it: the real binary against a real
 * redis-server with a configuration file, checking exit codes, the printed tables and JSON,
 * what lands in Redis, and that every bad argument exits 2 naming the argument. End to end: a
 * running pipeline (fake exchange, premium, positions, redis sink) fetches the symbol of an
 * open position it was not configured for and publishes its live PnL.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_fake.h"
#include "tf_proc.h"
#include "tf_test.h"

static char *dir;
static char out[1024];
static char cfg[1024];
static char prefix[64];
static int port;

static const char *PIPELINE = "pipelines:\n"
                              "  - name: kimchi\n"
                              "    every: 1s\n"
                              "    sources: [{use: generate}]\n"
                              "    sinks: [{use: stdout}]\n";

static char *output(void)
{
    return tft_read_file(out, NULL);
}

static bool contains(const char *needle)
{
    char *text = output();
    bool found = text && strstr(text, needle);
    if (!found)
        fprintf(stderr, "\nexpected \"%s\" in output:\n%s\n", needle, text ? text : "(none)");
    free(text);
    return found;
}

/* Runs `tickflow positions <args>` (NULL-terminated); returns the exit code. */
static int run(const char *const *args)
{
    const char *argv[32] = {"positions"};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return tfp_run_cli(argv, out, 20000);
}

/* The JSON the command printed (stdout only holds it when the command succeeds). */
static json_t *output_json(void)
{
    char *text = output();
    json_error_t e;
    json_t *j = text ? json_loads(text, 0, &e) : NULL;
    if (!j)
        fprintf(stderr, "\nexpected JSON, found:\n%s\n", text ? text : "(none)");
    free(text);
    return j;
}

static void redis_do(const char *fmt, const char *a, const char *b)
{
    redisReply *r = tft_redis_cmd(port, fmt, a, b);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
}

static void set_value(const char *suffix, const char *json)
{
    char key[256];
    snprintf(key, sizeof key, "%s:%s", prefix, suffix);
    redis_do("SET %s %s", key, json);
}

static const char *hget(const char *id, const char *field)
{
    static char value[128];
    char key[256];
    snprintf(key, sizeof key, "%s:position:%s", prefix, id);
    redisReply *r = tft_redis_cmd(port, "HGET %s %s", key, field);
    snprintf(value, sizeof value, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r)
        freeReplyObject(r);
    return value;
}

static const char *FRESH = "{\"kind\":\"premium\",\"symbol\":\"BTC\",\"krw_exchange\":\"bithumb\","
                           "\"global_exchange\":\"binance\",\"krw_bid\":137900000,"
                           "\"krw_ask\":137950000,\"global_bid\":95050.0,\"global_ask\":95100.0,"
                           "\"usdkrw\":1403.0,\"stale\":false,\"ts\":1795428930000,\"v\":1}";

static void test_open_list_close(void)
{
    /* Explicit entry prices. */
    const char *open1[] = {"open",
                           "-c",
                           cfg,
                           "--symbol",
                           "BTC",
                           "--direction",
                           "long_krw_short_global",
                           "--size",
                           "0.5",
                           "--krw-price",
                           "136850000",
                           "--global-price",
                           "95012.30",
                           "--usdkrw",
                           "1402.5",
                           NULL};
    CU_ASSERT_EQUAL(run(open1), 0);
    CU_ASSERT(contains("opened pos-1: long_krw_short_global 0.5 BTC on bithumb/binance"));
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "status"), "open");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "entry_global_price"), "95012.3");

    /* Prices from the premium in Redis: none yet, then a stale one, then a fresh one. */
    const char *open2[] = {
        "open", "-c",     cfg, "--symbol=BTC", "--direction", "short_krw_long_global", "--size",
        "0.1",  "--json", NULL};
    CU_ASSERT_EQUAL(run(open2), 1);
    CU_ASSERT(contains(":premium:bithumb:binance:BTC, found no such key"));
    set_value("premium:bithumb:binance:BTC",
              "{\"krw_bid\":1,\"krw_ask\":2,\"global_bid\":1,\"global_ask\":2,\"usdkrw\":1,"
              "\"stale\":true,\"stale_reason\":\"ticker_age\"}");
    CU_ASSERT_EQUAL(run(open2), 1);
    CU_ASSERT(contains("stale (stale_reason: ticker_age)"));
    set_value("premium:bithumb:binance:BTC", FRESH);
    CU_ASSERT_EQUAL(run(open2), 0);
    json_t *j = output_json();
    /* A short KRW position enters at krw_bid and global_ask. */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "id")), "pos-2");
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "entry_krw_price")), 137900000);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "entry_global_price")), 95100.0);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "entry_usdkrw")), 1403.0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "open");
    json_decref(j);

    /* list: both open; pos-1 has a live value from the positions transform. */
    set_value("position:pos-1:live",
              "{\"kind\":\"position_live\",\"id\":\"pos-1\",\"current_premium_pct\":3.3587,"
              "\"pnl_pct_points\":0.6926,\"pnl_krw\":463478.45,\"stale\":false,\"v\":1}");
    const char *list[] = {"list", "-c", cfg, NULL};
    CU_ASSERT_EQUAL(run(list), 0);
    CU_ASSERT(contains("ID "));
    CU_ASSERT(contains("pos-1    open   BTC      bithumb/binance"));
    CU_ASSERT(contains("+463478"));
    CU_ASSERT(contains("pos-2    open   BTC"));
    const char *list_json[] = {"list", "-c", cfg, "--json", NULL};
    CU_ASSERT_EQUAL(run(list_json), 0);
    j = output_json();
    CU_ASSERT_EQUAL(json_array_size(j), 2);
    json_t *first = json_array_get(j, 0);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(json_object_get(first, "live"), "pnl_krw")),
                    463478.45);
    CU_ASSERT_TRUE(json_is_null(json_object_get(json_array_get(j, 1), "live")));
    json_decref(j);

    /* close pos-1 at explicit prices: realized PnL printed and stored. */
    const char *close1[] = {
        "close",          "-c",    cfg,        "pos-1", "--krw-price", "137900000",
        "--global-price", "95100", "--usdkrw", "1403",  NULL};
    CU_ASSERT_EQUAL(run(close1), 0);
    CU_ASSERT(contains("closed pos-1"));
    CU_ASSERT(contains("+463478 KRW")); /* 0.5 * 1050000 + 0.5 * (95012.3 - 95100) * 1403 */
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "status"), "closed");
    CU_ASSERT(fabs(strtod(hget("pos-1", "realized_pnl_krw"), NULL) - 463478.45) < 1e-6);
    CU_ASSERT_EQUAL(run(close1), 1);
    CU_ASSERT(contains("expected an open position, found it closed"));
    const char *close_missing[] = {"close", "-c", cfg, "pos-99", NULL};
    CU_ASSERT_EQUAL(run(close_missing), 1);
    CU_ASSERT(contains("no position pos-99"));

    /* close pos-2 (short) at the premium's exit side: krw_ask and global_bid. */
    const char *close2[] = {"close", "-c", cfg, "pos-2", "--json", NULL};
    CU_ASSERT_EQUAL(run(close2), 0);
    j = output_json();
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "exit_krw_price")), 137950000);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "exit_global_price")), 95050.0);
    /* 0.1 * (137900000 - 137950000) + 0.1 * (95050 - 95100) * 1403 = -5000 - 7015. */
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(j, "realized_pnl_krw")), -12015.0,
                           1e-6);
    json_decref(j);

    CU_ASSERT_EQUAL(run(list), 0);
    CU_ASSERT(contains("no open positions"));
    const char *list_all[] = {"list", "-c", cfg, "--all", NULL};
    CU_ASSERT_EQUAL(run(list_all), 0);
    CU_ASSERT(contains("pos-1    closed BTC"));
    CU_ASSERT(contains("pos-2    closed BTC"));
    CU_ASSERT(contains("-12015"));
}

typedef struct bad_case {
    const char *args[16];
    const char *message; /* must appear in the output */
} bad_case;

static void test_bad_arguments(void)
{
    char no_redis[1024];
    snprintf(no_redis, sizeof no_redis, "%s", tfp_write_config(dir, "no_redis.yaml", PIPELINE));
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/nope.yaml", dir);
    const bad_case cases[] = {
        {{NULL}, "expected a subcommand open, close or list, found nothing"},
        {{"frobnicate"}, "found 'frobnicate'"},
        {{"list"}, "-c: expected a YAML file"},
        {{"list", "-c", cfg, "--bogus"}, "unknown option '--bogus'"},
        {{"list", "-c", cfg, "extra"}, "unexpected argument 'extra'"},
        {{"list", "-c"}, "-c: expected a YAML file or directory with a redis: section after it"},
        {{"list", "-c", no_redis}, "expected a redis: section"},
        {{"list", "-c", missing}, "nope.yaml"},
        {{"list", "-c", cfg, "--json=yes"}, "--json: expected no value"},
        {{"open", "-c", cfg, "--direction", "long_krw_short_global", "--size", "1"},
         "--symbol: expected a coin code"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--size", "1"}, "--direction"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--direction", "up", "--size", "1"},
         "--direction: expected long_krw_short_global or short_krw_long_global, found 'up'"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--direction", "long_krw_short_global", "--size",
          "abc"},
         "--size: expected a number of base units > 0 such as 0.1, found 'abc'"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--direction", "long_krw_short_global", "--size",
          "-1"},
         "--size: expected a number of base units > 0"},
        {{"open", "-c", cfg, "--symbol", "B:TC", "--direction", "long_krw_short_global", "--size",
          "1"},
         "--symbol: expected a coin code"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--direction", "long_krw_short_global", "--size",
          "1", "--krw-price", "1"},
         "expected --krw-price, --global-price and --usdkrw together, found no --global-price"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--direction", "long_krw_short_global", "--size",
          "1", "--krw-price", "0", "--global-price", "1", "--usdkrw", "1"},
         "--krw-price: expected a KRW price > 0"},
        {{"open", "-c", cfg, "--symbol", "BTC", "--symbol", "ETH"}, "--symbol: expected once"},
        {{"open", "-c", cfg, "--symbol"}, "--symbol: expected a coin code such as BTC after it"},
        {{"open", "-c", cfg, "--all"}, "unknown option '--all'"},
        {{"close", "-c", cfg}, "expected a position ID such as pos-3, found nothing"},
        {{"close", "-c", cfg, "17"}, "ID: expected a position id such as pos-3, found '17'"},
        {{"close", "-c", cfg, "pos-1", "pos-2"}, "expected one position ID"},
        {{"close", "-c", cfg, "pos-1", "--usdkrw", "x", "--krw-price", "1", "--global-price", "1"},
         "--usdkrw: expected a USD/KRW rate > 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(cases[i].args);
        if (rc != 2)
            fprintf(stderr, "\ncase %zu (%s): exit %d, expected 2\n", i,
                    cases[i].args[0] ? cases[i].args[0] : "-", rc);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT(contains(cases[i].message));
    }
    const char *help[] = {"--help", NULL};
    CU_ASSERT_EQUAL(run(help), 0);
    CU_ASSERT(contains("usage: tickflow positions open"));
}

static void test_redis_unreachable(void)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "redis: {url: 'redis://127.0.0.1:%d', prefix: x}\n%s",
             tft_free_port(), PIPELINE);
    char down[1024];
    snprintf(down, sizeof down, "%s", tfp_write_config(dir, "down.yaml", yaml));
    const char *list[] = {"list", "-c", down, NULL};
    CU_ASSERT_EQUAL(run(list), 1);
    CU_ASSERT(contains("error: Redis at redis://127.0.0.1:"));
}

typedef struct live_wait {
    const char *key;
    bool want; /* wait for the key to exist (true) or to be gone (false) */
} live_wait;

static bool key_state(void *arg)
{
    const live_wait *w = arg;
    redisReply *r = tft_redis_cmd(port, "EXISTS %s", w->key);
    bool exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return exists == w->want;
}

static json_t *get_json(const char *key)
{
    redisReply *r = tft_redis_cmd(port, "GET %s", key);
    json_t *j = r && r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    if (r)
        freeReplyObject(r);
    return j;
}

static void test_live_end_to_end(void)
{
    tft_fake *fake = tft_fake_start(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fake);
    /* ETH frozen: krw_bid 4967000, global_ask 3500.20, USD/KRW 1403. */
    CU_ASSERT(tft_fake_post(fake, "/admin/price",
                            "{\"symbol\":\"ETH\",\"usdt\":3500.15,\"bid\":3500.1,\"ask\":3500.2,"
                            "\"krw\":4968000,\"krw_bid\":4967000,\"krw_ask\":4968000,"
                            "\"usdkrw\":1403}"));
    char e2e_prefix[80];
    snprintf(e2e_prefix, sizeof e2e_prefix, "%s-e2e", prefix);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "redis: {url: 'redis://127.0.0.1:%d', prefix: '%s'}\n"
             "pipelines:\n"
             "  - name: kimchi\n"
             "    every: 200ms\n"
             "    lease: off\n"
             "    sources:\n"
             "      - {use: bithumb, with: {base_url: '%s', symbols: [BTC]}}\n"
             "      - {use: binance_futures, with: {base_url: '%s', symbols: [BTC]}}\n"
             "      - {use: fx, with: {providers: [{name: dunamu, base_url: '%s'}]}}\n"
             "    transforms:\n"
             /* Generous freshness bounds: `stale` must not flip on a loaded test machine. */
             "      - {use: premium, with: {max_skew: 30s, max_ticker_age: 30s}}\n"
             "      - {use: positions, with: {refresh: 200ms}}\n"
             "    sinks: [{use: redis}]\n",
             port, e2e_prefix, fake->base, fake->base, fake->base);
    char e2e_cfg[1024];
    snprintf(e2e_cfg, sizeof e2e_cfg, "%s", tfp_write_config(dir, "e2e.yaml", yaml));
    /* Long 2 ETH, which no source lists: the positions transform asks for it. */
    const char *open[] = {"open",
                          "-c",
                          e2e_cfg,
                          "--symbol",
                          "ETH",
                          "--direction",
                          "long_krw_short_global",
                          "--size",
                          "2",
                          "--krw-price",
                          "4960000",
                          "--global-price",
                          "3530",
                          "--usdkrw",
                          "1402",
                          NULL};
    CU_ASSERT_EQUAL_FATAL(run(open), 0);
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "e2e", e2e_cfg));
    char live_key[160];
    snprintf(live_key, sizeof live_key, "%s:position:pos-1:live", e2e_prefix);
    live_wait appear = {live_key, true};
    CU_ASSERT_TRUE(tft_wait_until(key_state, &appear, 20000));
    json_t *live = get_json(live_key);
    CU_ASSERT_PTR_NOT_NULL(live);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(live, "kind")), "position_live");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(live, "symbol")), "ETH");
    double now = (4967000.0 / (3500.20 * 1403.0) - 1.0) * 100.0;
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(live, "current_premium_pct")), now,
                           1e-9);
    /* 2 * (4967000 - 4960000) + 2 * (3530 - 3500.20) * 1403 = 14000 + 83618.8. */
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(live, "pnl_krw")), 97618.8, 1e-6);
    CU_ASSERT_TRUE(json_is_false(json_object_get(live, "stale")));
    json_decref(live);

    const char *list[] = {"list", "-c", e2e_cfg, NULL};
    CU_ASSERT_EQUAL(run(list), 0);
    CU_ASSERT(contains("+97619"));

    /* Closed at the premium the pipeline keeps in Redis; its live value then expires. */
    const char *close[] = {"close", "-c", e2e_cfg, "pos-1", "--json", NULL};
    CU_ASSERT_EQUAL(run(close), 0);
    json_t *j = output_json();
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "exit_krw_price")), 4967000);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(j, "exit_global_price")), 3500.2);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(j, "realized_pnl_krw")), 97618.8,
                           1e-6);
    json_decref(j);
    live_wait gone = {live_key, false};
    CU_ASSERT_TRUE(tft_wait_until(key_state, &gone, 10000)); /* 5 s TTL, no more refreshes */
    CU_ASSERT_EQUAL(tft_stop(p.pid, SIGTERM, 10000), 0);
    tft_fake_stop(fake);
}

static int suite_init(void)
{
    dir = tft_mkdtemp();
    port = tft_shared_redis_port();
    if (!dir || port <= 0)
        return 1;
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(prefix, sizeof prefix, "tfcli%d", (int)getpid());
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "redis:\n  url: redis://127.0.0.1:%d\n  prefix: %s\n%s", port,
             prefix, PIPELINE);
    snprintf(cfg, sizeof cfg, "%s", tfp_write_config(dir, "kimchi.yaml", yaml));
    return 0;
}

static int suite_cleanup(void)
{
    tft_rmdir(dir);
    free(dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"open, list, close against Redis", test_open_list_close},
        {"bad arguments exit 2", test_bad_arguments},
        {"Redis unreachable exits 1", test_redis_unreachable},
        {"live PnL end to end", test_live_end_to_end},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("positions CLI", tests, suite_init, suite_cleanup);
}
