/*
 * The `redis` source against a real redis-server, reading what the real `redis` sink wrote:
 * keys mode (exact FX round trip, missing key reported), patterns mode (every premium key,
 * across several SCAN pages and MGET chunks, streams and other kinds left out), the kind
 * filter, bad JSON reported for its key only, a glob character in the prefix, Redis down, and
 * option checks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

static int g_port;

/* ---- helpers ---- */

static tfh *open_at(int port, const char *kind, const char *prefix, const char *with)
{
    char runtime[256];
    snprintf(runtime, sizeof runtime, "redis: {url: 'redis://127.0.0.1:%d/0', prefix: '%s'}\n",
             port, prefix);
    return tfh_open(kind, "redis", with, runtime);
}

static tfh *open_source(const char *prefix, const char *with)
{
    return open_at(g_port, "source", prefix, with);
}

static tfh *open_sink(const char *prefix)
{
    return open_at(g_port, "sink", prefix, "{}");
}

static double errors_of(int status)
{
    static const char *const labels[] = {"pipeline", "plugin", "class", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_plugin_errors_total", "test",
                                       labels, NULL, 0);
    const char *values[] = {"harness", "redis", tf_status_name(status)};
    return m ? tf_metric_value(m, values) : -1;
}

static void set_raw(const char *key, const char *value)
{
    redisReply *r = tft_redis_cmd(g_port, "SET %s %s", key, value);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
}

static void add_fx(tf_batch *b, double rate)
{
    tf_record *r = tf_record_new(b, "fx");
    tf_record_set_string(r, "pair", "USDKRW");
    tf_record_set_double(r, "rate", rate);
    tf_record_set_string(r, "provider", "dunamu");
    tf_record_set_ts(r, "ts_provider", 1795428600000);
    tf_record_set_ts(r, "ts_received", 1795428600321);
}

static void add_premium(tf_batch *b, const char *krw, const char *global, const char *symbol,
                        double pct)
{
    tf_record *r = tf_record_new(b, "premium");
    tf_record_set_string(r, "symbol", symbol);
    tf_record_set_string(r, "krw_exchange", krw);
    tf_record_set_string(r, "global_exchange", global);
    tf_record_set_double(r, "premium_pct", pct);
    tf_record_set_bool(r, "stale", false);
    tf_record_set_ts(r, "ts", 1795428930100);
}

static void add_ticker(tf_batch *b, const char *symbol)
{
    tf_record *r = tf_record_new(b, "ticker");
    tf_record_set_string(r, "exchange", "bithumb");
    tf_record_set_string(r, "symbol", symbol);
    tf_record_set_double(r, "last", 136850000.0);
}

static int count_kind(const tf_batch *b, const char *kind)
{
    int n = 0;
    for (size_t i = 0; i < tf_batch_count(b); i++)
        n += strcmp(tf_record_kind(tf_batch_at(b, i)), kind) == 0;
    return n;
}

/* ---- keys mode ---- */

static void test_keys_round_trip(void)
{
    tfh *sink = open_sink("tft_rsrc_keys");
    tfh *src = open_source("tft_rsrc_keys", "{keys: [fx:USDKRW]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *in = tf_batch_create();
    add_fx(in, 1392.55);
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);

    tf_batch *out = tf_batch_create();
    double missing = errors_of(TF_ENOTFOUND);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(errors_of(TF_ENOTFOUND), missing);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(out), 1);
    tf_record *r = tfh_find(out, "fx", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "rate"), TF_FIELD_DOUBLE);
    CU_ASSERT_EQUAL(tfh_double(r, "rate"), 1392.55);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "provider"), TF_FIELD_STRING);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "provider"), "dunamu");
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "pair"), "USDKRW");
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts_provider"), TF_FIELD_INT);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_provider"), 1795428600000);
    CU_ASSERT_EQUAL(tfh_int(r, "ts_received"), 1795428600321);
    /* The schema version and the kind are not fields. */
    CU_ASSERT_EQUAL(tf_record_field_type(r, "v"), TF_FIELD_NONE);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "kind"), TF_FIELD_NONE);
    CU_ASSERT_EQUAL(tf_record_field_count(r), 5);

    /* Same fields, same values, same JSON as what the sink was given. */
    json_t *a = tf_record_to_json(tf_batch_at(in, 0));
    json_t *b = tf_record_to_json(r);
    CU_ASSERT(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    tf_batch_destroy(in);
    tf_batch_destroy(out);
    tfh_close(sink);
    tfh_close(src);
}

static void test_keys_missing_reported(void)
{
    tfh *sink = open_sink("tft_rsrc_miss");
    tfh *src = open_source("tft_rsrc_miss", "{keys: [fx:USDKRW, fx:EURKRW]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);

    /* Nothing written yet (the FX pipeline has not run): reported, not fatal. */
    double before = errors_of(TF_ENOTFOUND);
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 0);
    CU_ASSERT_EQUAL(errors_of(TF_ENOTFOUND), before + 1);

    /* One of two present: its record, and the other still reported. */
    tf_batch *in = tf_batch_create();
    add_fx(in, 1392.55);
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);
    tf_batch_clear(out);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 1);
    CU_ASSERT_EQUAL(errors_of(TF_ENOTFOUND), before + 2);
    tf_batch_destroy(in);
    tf_batch_destroy(out);
    tfh_close(sink);
    tfh_close(src);
}

/* ---- patterns mode ---- */

static void test_patterns_find_every_premium(void)
{
    const char *p = "tft_rsrc_pat";
    tfh *sink = open_sink(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    /* 1200 premiums: several SCAN pages (COUNT 1000) and three MGET chunks. */
    tf_batch *in = tf_batch_create();
    static const char *const globals[] = {"binance", "okx", "bybit"};
    char sym[16];
    for (int s = 0; s < 400; s++) {
        snprintf(sym, sizeof sym, "S%03d", s);
        for (int g = 0; g < 3; g++)
            add_premium(in, "bithumb", globals[g], sym, 0.01 * s);
        add_ticker(in, sym);
    }
    add_fx(in, 1392.55);
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);

    tfh *src = open_source(p, "{patterns: ['premium:*']}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *out = tf_batch_create();
    double missing = errors_of(TF_ENOTFOUND), parse = errors_of(TF_EPARSE);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 1200);
    CU_ASSERT_EQUAL(count_kind(out, "premium"), 1200);
    CU_ASSERT_EQUAL(errors_of(TF_ENOTFOUND), missing);
    CU_ASSERT_EQUAL(errors_of(TF_EPARSE), parse);
    tf_record *r = tfh_find(out, "premium", "symbol", "S123");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "stale"), TF_FIELD_BOOL);
    CU_ASSERT_EQUAL(tfh_double(r, "premium_pct"), 0.01 * 123);
    /* Every (global exchange, symbol) pair exactly once. */
    for (int g = 0; g < 3; g++) {
        int n = 0;
        for (size_t i = 0; i < tf_batch_count(out); i++)
            n += strcmp(tfh_string(tf_batch_at(out, i), "global_exchange"), globals[g]) == 0;
        CU_ASSERT_EQUAL(n, 400);
    }
    tfh_close(src);

    /* Everything under the prefix, filtered to one kind: the history streams match the pattern
     * but hold no string value, and are skipped without a report. */
    src = open_source(p, "{patterns: ['*'], kind: ticker}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch_clear(out);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 400);
    CU_ASSERT_EQUAL(count_kind(out, "ticker"), 400);
    CU_ASSERT_EQUAL(errors_of(TF_ENOTFOUND), missing);
    tfh_close(src);

    /* keys and patterns together, and a pattern matching nothing. */
    src = open_source(p, "{keys: [fx:USDKRW], patterns: ['premium:bithumb:okx:S00*', 'nope:*']}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch_clear(out);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(count_kind(out, "fx"), 1);
    CU_ASSERT_EQUAL(count_kind(out, "premium"), 10);
    CU_ASSERT_EQUAL(tf_batch_count(out), 11);
    tf_batch_destroy(in);
    tf_batch_destroy(out);
    tfh_close(src);
    tfh_close(sink);
}

static void test_bad_json_only_that_key(void)
{
    const char *p = "tft_rsrc_bad";
    tfh *sink = open_sink(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    tf_batch *in = tf_batch_create();
    add_premium(in, "bithumb", "binance", "BTC", 1.0);
    add_premium(in, "bithumb", "binance", "ETH", 2.0);
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);
    set_raw("tft_rsrc_bad:premium:bithumb:binance:AAA", "{\"kind\": \"premium\", \"x\": ");
    set_raw("tft_rsrc_bad:premium:bithumb:binance:ARR", "[1, 2]");
    set_raw("tft_rsrc_bad:premium:bithumb:binance:NOKIND", "{\"symbol\": \"NOKIND\"}");

    tfh *src = open_source(p, "{patterns: ['premium:*']}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *out = tf_batch_create();
    double parse = errors_of(TF_EPARSE);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(errors_of(TF_EPARSE), parse + 3);
    CU_ASSERT_EQUAL(tf_batch_count(out), 2);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "BTC"));
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "ETH"));
    tfh_close(src);

    /* keys mode too: the bad key reported, the good one read. */
    src = open_source(p, "{keys: ['premium:bithumb:binance:AAA', 'premium:bithumb:binance:BTC']}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch_clear(out);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(errors_of(TF_EPARSE), parse + 4);
    CU_ASSERT_EQUAL(tf_batch_count(out), 1);
    tf_batch_destroy(in);
    tf_batch_destroy(out);
    tfh_close(src);
    tfh_close(sink);
}

/* A glob character in the prefix is literal: "tft_rsrc_g*" must not read tft_rsrc_gX's keys. */
static void test_prefix_is_literal(void)
{
    set_raw("tft_rsrc_gX:premium:a:b:C", "{\"kind\": \"premium\", \"symbol\": \"C\"}");
    set_raw("tft_rsrc_g*:premium:a:b:D", "{\"kind\": \"premium\", \"symbol\": \"D\"}");
    tfh *src = open_source("tft_rsrc_g*", "{patterns: ['premium:*']}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 1);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "D"));
    tf_batch_destroy(out);
    tfh_close(src);
}

static void test_redis_down(void)
{
    tft_redis *red = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(red);
    tfh *sink = open_at(red->port, "sink", "tft_rsrc_down", "{}");
    tfh *src = open_at(red->port, "source", "tft_rsrc_down", "{keys: [fx:USDKRW]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *in = tf_batch_create();
    add_fx(in, 1392.55);
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 1);

    tft_redis_stop(red);
    tf_batch_clear(out);
    double before = errors_of(TF_EREDIS);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_EREDIS);
    CU_ASSERT_EQUAL(tf_batch_count(out), 0);
    CU_ASSERT_EQUAL(errors_of(TF_EREDIS), before + 1);
    tf_batch_destroy(in);
    tf_batch_destroy(out);
    tfh_close(src);
    tfh_close(sink);
    tft_redis_destroy(red);
}

static void test_options_checked(void)
{
    /* Neither keys nor patterns: nothing to read. */
    CU_ASSERT_PTR_NULL(open_source("tft_rsrc_opt", "{}"));
    CU_ASSERT_PTR_NULL(open_source("tft_rsrc_opt", "{keys: ['']}"));
    CU_ASSERT_PTR_NULL(open_source("tft_rsrc_opt", "{patterns: ['a b']}"));
    CU_ASSERT_PTR_NULL(open_source("tft_rsrc_opt", "{keys: [fx:USDKRW], kind: ''}"));
    /* No redis: section. */
    CU_ASSERT_PTR_NULL(tfh_open("source", "redis", "{keys: [fx:USDKRW]}", NULL));
    /* A scalar where a list is expected is a one-item list. */
    tfh *src = open_source("tft_rsrc_opt", "{keys: fx:USDKRW}");
    CU_ASSERT_PTR_NOT_NULL(src);
    tfh_close(src);
    char msg[2048];
    CU_ASSERT(tfh_rejects("source", "redis", "{keys: [fx:USDKRW], kinds: fx}", msg, sizeof msg));
}

int main(void)
{
    g_port = tft_shared_redis_port();
    if (g_port <= 0) {
        fprintf(stderr, "no redis-server for the tests\n");
        return 1;
    }
    redisReply *r = tft_redis_cmd(g_port, "EVAL %s 0",
                                  "for _, k in ipairs(redis.call('KEYS', 'tft_rsrc_*')) do "
                                  "redis.call('DEL', k) end return 0");
    if (r)
        freeReplyObject(r);
    CU_TestInfo tests[] = {
        {"keys: FX round trip", test_keys_round_trip},
        {"keys: missing key reported", test_keys_missing_reported},
        {"patterns: every premium, kind filter", test_patterns_find_every_premium},
        {"bad JSON: that key only", test_bad_json_only_that_key},
        {"prefix glob characters are literal", test_prefix_is_literal},
        {"Redis down", test_redis_down},
        {"options checked", test_options_checked},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("source_redis", tests, NULL, NULL);
}
