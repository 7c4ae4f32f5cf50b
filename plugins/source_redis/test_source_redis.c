/*
 * The `redis` source against a real redis-server, reading what the real `redis` sink wrote:
 * keys mode (exact FX round trip, missing key reported), patterns mode (every premium key,
 * across several SCAN pages and MGET chunks, streams and other kinds left out), the kind
 * filter, bad JSON reported for its key only, a glob character in the prefix, Redis down, and
 * option checks. Subscribe mode: an event reaches the next tick, a burst of one key is one
 * record, the least recently updated keys are dropped beyond max_pending, the keys are read at
 * start and every `resync`, a Redis restart is survived (resubscribed, resynced), and stopping
 * is prompt.
 */
#include <math.h>
#include <stdbool.h>
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

/* ---- subscribe mode ---- */

#define ALL_KINDS "[premium, ticker, fx, position_live]"

static double metric_of(tf_metric_type type, const char *name, const char *kind)
{
    static const char *const with_kind[] = {"pipeline", "kind", NULL};
    static const char *const plain[] = {"pipeline", NULL};
    tf_metric *m = tf_metrics_register(type, name, "test", kind ? with_kind : plain, NULL, 0);
    const char *values[] = {"harness", kind};
    return m ? tf_metric_value(m, values) : -1;
}

static double messages_of(const char *kind)
{
    return metric_of(TF_METRIC_COUNTER, "tickflow_redis_source_messages_total", kind);
}

static double resyncs(void)
{
    return metric_of(TF_METRIC_COUNTER, "tickflow_redis_source_resyncs_total", NULL);
}

static double dropped(void)
{
    return metric_of(TF_METRIC_COUNTER, "tickflow_redis_source_dropped_total", NULL);
}

static double subscribed(void)
{
    return metric_of(TF_METRIC_GAUGE, "tickflow_redis_source_subscribed", NULL);
}

/* Subscribers of `channel` on the Redis at `port`, as PUBSUB NUMSUB counts them. */
static long long numsub(int port, const char *channel)
{
    redisReply *r = tft_redis_cmd(port, "PUBSUB NUMSUB %s", channel);
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    if (r)
        freeReplyObject(r);
    return n;
}

typedef struct sub_wait {
    int port;
    const char *channel;
    long long want;
} sub_wait;

static bool numsub_is(void *arg)
{
    const sub_wait *w = arg;
    return numsub(w->port, w->channel) == w->want;
}

/* Waits until `channel` has exactly `want` subscribers. */
static bool wait_numsub(int port, const char *channel, long long want)
{
    sub_wait w = {port, channel, want};
    return tft_wait_until(numsub_is, &w, 10000);
}

static long long publish(int port, const char *channel, const char *json)
{
    redisReply *r = tft_redis_cmd(port, "PUBLISH %s %s", channel, json);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

static void premium_json(char *buf, size_t size, const char *symbol, double pct)
{
    snprintf(buf, size,
             "{\"kind\":\"premium\",\"symbol\":\"%s\",\"krw_exchange\":\"bithumb\","
             "\"global_exchange\":\"binance\",\"premium_pct\":%.2f,\"stale\":false,"
             "\"ts\":1795428930100,\"v\":1}",
             symbol, pct);
}

typedef struct collecting {
    tfh *src;
    tf_batch *out;
    size_t want;
} collecting;

static bool collected_enough(void *arg)
{
    collecting *c = arg;
    tfh_collect(c->src, c->out);
    return tf_batch_count(c->out) >= c->want;
}

/* Runs ticks (appending to `out`) until it holds at least `want` records. */
static bool collect_until(tfh *src, tf_batch *out, size_t want, int timeout_ms)
{
    collecting c = {src, out, want};
    return tft_wait_until(collected_enough, &c, timeout_ms);
}

typedef struct counting {
    const char *kind;
    double want;
} counting;

static bool messages_reached(void *arg)
{
    const counting *c = arg;
    return messages_of(c->kind) >= c->want;
}

/* Waits until the subscriber has received `n` more messages of `kind` than `before`. */
static bool wait_messages(const char *kind, double before, int n)
{
    counting c = {kind, before + n};
    return tft_wait_until(messages_reached, &c, 10000);
}

/* A source subscribed to every kind under `prefix` whose first ticks found nothing: only
 * events can bring records from then on (no periodic resync). */
static tfh *open_subscribed(int port, const char *prefix, const char *extra)
{
    char with[256];
    snprintf(with, sizeof with, "{subscribe: " ALL_KINDS ", resync: 0%s}", extra ? extra : "");
    tfh *src = open_at(port, "source", prefix, with);
    if (!src)
        return NULL;
    char channel[128];
    snprintf(channel, sizeof channel, "%s:events:position_live", prefix);
    CU_ASSERT(wait_numsub(port, channel, 1));
    /* The resyncs due at start and after the first subscription, with nothing to find. */
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 0);
    tf_batch_destroy(out);
    return src;
}

static void test_subscribe_event_next_tick(void)
{
    const char *p = "tft_rsub_ev";
    tfh *src = open_subscribed(g_port, p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    CU_ASSERT_EQUAL(subscribed(), 1.0);
    char json[512];
    premium_json(json, sizeof json, "BTC", 1.25);
    /* PUBLISH only, no key: the record can only come from the event. */
    long long started = tft_mono_ms();
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_ev:events:premium", json), 1);
    tf_batch *out = tf_batch_create();
    CU_ASSERT(collect_until(src, out, 1, 5000));
    /* Delivered as it arrives, not at the next read timeout or resync: a generous bound. */
    CU_ASSERT(tft_mono_ms() - started < 1000);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(out), 1);
    tf_record *r = tfh_find(out, "premium", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tfh_double(r, "premium_pct"), 1.25);
    CU_ASSERT_STRING_EQUAL(tfh_string(r, "krw_exchange"), "bithumb");
    CU_ASSERT_EQUAL(tfh_int(r, "ts"), 1795428930100);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "v"), TF_FIELD_NONE);
    /* Emitted once: the next tick has nothing new. */
    tf_batch_clear(out);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 0);

    /* Every kind, keyed as the sink keys it (a position's id may be an integer); a message
     * that is not the sink's JSON is reported and skipped. */
    double parse = errors_of(TF_EPARSE), fx = messages_of("fx");
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_ev:events:fx",
                            "{\"kind\":\"fx\",\"pair\":\"USDKRW\",\"rate\":1392.55,\"v\":1}"),
                    1);
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_ev:events:fx", "{\"kind\":\"fx\",\"rate\":"), 1);
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_ev:events:fx", "{\"kind\":\"fx\",\"rate\":1}"), 1);
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_ev:events:position_live",
                            "{\"kind\":\"position_live\",\"id\":42,\"pnl_krw\":-1500.5,\"v\":1}"),
                    1);
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_ev:events:ticker",
                            "{\"kind\":\"ticker\",\"exchange\":\"bithumb\",\"symbol\":\"BTC\","
                            "\"last\":136850000.0,\"v\":1}"),
                    1);
    CU_ASSERT(collect_until(src, out, 3, 5000));
    CU_ASSERT_EQUAL(tf_batch_count(out), 3);
    CU_ASSERT_EQUAL(messages_of("fx"), fx + 3);
    CU_ASSERT_EQUAL(errors_of(TF_EPARSE), parse + 2);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(out, "fx", "pair", "USDKRW"), "rate"), 1392.55);
    CU_ASSERT_EQUAL(tfh_int(tfh_find(out, "position_live", NULL, NULL), "id"), 42);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(out, "ticker", "symbol", "BTC"), "last"), 136850000.0);
    tf_batch_destroy(out);
    tfh_close(src);
    CU_ASSERT_EQUAL(subscribed(), 0.0);
}

static void test_subscribe_burst_coalesced(void)
{
    const char *p = "tft_rsub_burst";
    tfh *src = open_subscribed(g_port, p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    redisContext *c = tft_redis_connect(g_port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    double before = messages_of("premium");
    char json[512];
    /* 100 updates of one key between two ticks, plus one of another key. */
    for (int i = 1; i <= 100; i++) {
        premium_json(json, sizeof json, "BTC", i * 0.01);
        redisAppendCommand(c, "PUBLISH %s %s", "tft_rsub_burst:events:premium", json);
    }
    premium_json(json, sizeof json, "ETH", 7.0);
    redisAppendCommand(c, "PUBLISH %s %s", "tft_rsub_burst:events:premium", json);
    for (int i = 0; i < 101; i++) {
        void *reply = NULL;
        CU_ASSERT_EQUAL(redisGetReply(c, &reply), REDIS_OK);
        CU_ASSERT(reply && ((redisReply *)reply)->integer == 1);
        if (reply)
            freeReplyObject(reply);
    }
    redisFree(c);
    CU_ASSERT(wait_messages("premium", before, 101));
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 2);
    CU_ASSERT_EQUAL(count_kind(out, "premium"), 2);
    tf_record *btc = tfh_find(out, "premium", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(btc);
    CU_ASSERT_EQUAL(tfh_double(btc, "premium_pct"), 1.0); /* the last of the burst */
    CU_ASSERT_EQUAL(tfh_double(tfh_find(out, "premium", "symbol", "ETH"), "premium_pct"), 7.0);
    tf_batch_destroy(out);
    tfh_close(src);
}

/* Values that name their history entry (premiums) are not coalesced: an SSE client of the API
 * must receive every entry. The same entry twice (its event, then a resync) is one record. */
static void test_subscribe_history_entries_each_delivered(void)
{
    const char *p = "tft_rsub_hist";
    tfh *src = open_subscribed(g_port, p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    double before = messages_of("premium");
    static const struct {
        const char *symbol, *history_id;
        double pct;
    } events[] = {{"BTC", "1795428930100-0", 1.0},
                  {"ETH", "1795428930100-1", 2.0},
                  {"BTC", "1795428931100-0", 3.0},
                  {"BTC", "1795428930100-0", 1.0}, /* the first again */
                  {"ETH", "1795428931100-1", 4.0}};
    size_t n = sizeof events / sizeof events[0];
    char json[512];
    for (size_t i = 0; i < n; i++) {
        premium_json(json, sizeof json, events[i].symbol, events[i].pct);
        size_t len = strlen(json);
        snprintf(json + len - 1, sizeof json - len + 1, ",\"history_id\":\"%s\"}",
                 events[i].history_id);
        CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_hist:events:premium", json), 1);
    }
    CU_ASSERT(wait_messages("premium", before, (int)n));
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(out), 4);
    static const char *const order[] = {"1795428930100-0", "1795428930100-1", "1795428931100-0",
                                        "1795428931100-1"};
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(tfh_string(tf_batch_at(out, i), "history_id"), order[i]);
    tf_batch_destroy(out);
    tfh_close(src);
}

static void test_subscribe_bounded(void)
{
    const char *p = "tft_rsub_max";
    tfh *src = open_subscribed(g_port, p, ", max_pending: 3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    double before = messages_of("premium"), lost = dropped();
    static const char *const symbols[] = {"S1", "S2", "S3", "S4", "S5", "S3"};
    char json[512];
    for (int i = 0; i < 6; i++) {
        premium_json(json, sizeof json, symbols[i], i + 1.0);
        CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_max:events:premium", json), 1);
    }
    CU_ASSERT(wait_messages("premium", before, 6));
    /* Keys S1..S5 then S3 again: S1 and S2 (least recently updated) made room for S4, S5. */
    CU_ASSERT_EQUAL(dropped(), lost + 2);
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 3);
    CU_ASSERT_PTR_NULL(tfh_find(out, "premium", "symbol", "S1"));
    CU_ASSERT_PTR_NULL(tfh_find(out, "premium", "symbol", "S2"));
    CU_ASSERT_EQUAL(tfh_double(tfh_find(out, "premium", "symbol", "S3"), "premium_pct"), 6.0);
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "S4"));
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "S5"));
    tf_batch_destroy(out);
    tfh_close(src);
}

static void test_subscribe_resync_on_start(void)
{
    const char *p = "tft_rsub_start";
    tfh *sink = open_sink(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    tf_batch *in = tf_batch_create();
    add_fx(in, 1392.55);
    add_premium(in, "bithumb", "binance", "BTC", 1.5);
    add_premium(in, "bithumb", "okx", "BTC", 1.7);
    add_ticker(in, "BTC");
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);
    /* A value of a kind not subscribed to, and the position store's own key: not read. */
    set_raw("tft_rsub_start:position:7", "{\"kind\": \"position\"}");

    double before = resyncs();
    tfh *src = open_source(p, "{subscribe: [premium, fx, position_live]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT(resyncs() >= before + 1);
    CU_ASSERT_EQUAL(tf_batch_count(out), 3);
    CU_ASSERT_EQUAL(count_kind(out, "premium"), 2);
    tf_record *fx = tfh_find(out, "fx", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
    json_t *a = tf_record_to_json(tf_batch_at(in, 0));
    json_t *b = tf_record_to_json(fx);
    CU_ASSERT(json_equal(a, b));
    json_decref(a);
    json_decref(b);

    /* Written through the sink: its event carries the same record to the next ticks. */
    CU_ASSERT(wait_numsub(g_port, "tft_rsub_start:events:fx", 1));
    tf_batch_clear(in);
    add_fx(in, 1401.25);
    CU_ASSERT_EQUAL(tfh_write(sink, in), TF_OK);
    tf_batch_clear(out);
    CU_ASSERT(collect_until(src, out, 1, 5000));
    fx = tfh_find(out, "fx", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
    CU_ASSERT_EQUAL(tfh_double(fx, "rate"), 1401.25);
    tf_batch_destroy(in);
    tf_batch_destroy(out);
    tfh_close(src);
    tfh_close(sink);
}

static void test_subscribe_periodic_resync(void)
{
    const char *p = "tft_rsub_period";
    tfh *src = open_source(p, "{subscribe: [premium], resync: 100ms}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *out = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(out), 0);
    /* SET without an event (a missed one): the periodic resync finds it. */
    char json[512];
    premium_json(json, sizeof json, "XRP", 0.5);
    set_raw("tft_rsub_period:premium:bithumb:binance:XRP", json);
    CU_ASSERT(collect_until(src, out, 1, 5000));
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "XRP"));
    tf_batch_destroy(out);
    tfh_close(src);
}

static void test_subscribe_survives_restart(void)
{
    tft_redis *red = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(red);
    const char *p = "tft_rsub_restart";
    tfh *src = open_subscribed(red->port, p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    CU_ASSERT_EQUAL(subscribed(), 1.0);
    char json[512];
    premium_json(json, sizeof json, "BTC", 1.0);
    CU_ASSERT_EQUAL(publish(red->port, "tft_rsub_restart:events:premium", json), 1);
    tf_batch *out = tf_batch_create();
    CU_ASSERT(collect_until(src, out, 1, 5000));

    tft_redis_stop(red);
    tf_batch_clear(out);
    /* Down: no records, and the tick says why only when a resync is due (none is). */
    tfh_collect(src, out);
    CU_ASSERT_EQUAL(tf_batch_count(out), 0);
    double before = resyncs();
    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(red), 0);
    /* Written while the source was not subscribed (Redis lost its data and the event has no
     * subscriber): only the resync after the resubscription can find it. */
    premium_json(json, sizeof json, "ETH", 2.0);
    redisReply *r =
        tft_redis_cmd(red->port, "SET %s %s", "tft_rsub_restart:premium:bithumb:binance:ETH", json);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
    CU_ASSERT(collect_until(src, out, 1, 15000));
    CU_ASSERT_EQUAL(tf_batch_count(out), 1);
    CU_ASSERT_EQUAL(tfh_double(tfh_find(out, "premium", "symbol", "ETH"), "premium_pct"), 2.0);
    CU_ASSERT(resyncs() >= before + 1);

    /* Subscribed again: events flow. */
    CU_ASSERT(wait_numsub(red->port, "tft_rsub_restart:events:premium", 1));
    CU_ASSERT_EQUAL(subscribed(), 1.0);
    premium_json(json, sizeof json, "SOL", 3.0);
    CU_ASSERT_EQUAL(publish(red->port, "tft_rsub_restart:events:premium", json), 1);
    tf_batch_clear(out);
    CU_ASSERT(collect_until(src, out, 1, 5000));
    CU_ASSERT_EQUAL(tfh_double(tfh_find(out, "premium", "symbol", "SOL"), "premium_pct"), 3.0);
    tf_batch_destroy(out);
    tfh_close(src);
    tft_redis_destroy(red);
}

static double reconnects(void)
{
    static const char *const labels[] = {"who", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_redis_reconnects_total", "test",
                                       labels, NULL, 0);
    const char *values[] = {"harness/redis"};
    return m ? tf_metric_value(m, values) : -1;
}

/* Silence on a subscription is normal: waiting for messages must not count as a command
 * timing out, which would drop the connection (and lose events) again and again. */
static void test_subscribe_idle_kept(void)
{
    char runtime[256];
    snprintf(runtime, sizeof runtime,
             "redis: {url: 'redis://127.0.0.1:%d/0', prefix: tft_rsub_idle, "
             "command_timeout: 100ms}\n",
             g_port);
    tfh *src = tfh_open("source", "redis", "{subscribe: [premium], resync: 0}", runtime);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    CU_ASSERT(wait_numsub(g_port, "tft_rsub_idle:events:premium", 1));
    double before = reconnects();
    tft_sleep_ms(800); /* pacing: eight command timeouts without a message */
    CU_ASSERT_EQUAL(reconnects(), before);
    CU_ASSERT_EQUAL(subscribed(), 1.0);
    char json[512];
    premium_json(json, sizeof json, "BTC", 4.0);
    CU_ASSERT_EQUAL(publish(g_port, "tft_rsub_idle:events:premium", json), 1);
    tf_batch *out = tf_batch_create();
    CU_ASSERT(collect_until(src, out, 1, 5000));
    CU_ASSERT_PTR_NOT_NULL(tfh_find(out, "premium", "symbol", "BTC"));
    CU_ASSERT_EQUAL(reconnects(), before);
    tf_batch_destroy(out);
    tfh_close(src);
}

static void test_subscribe_stop_prompt(void)
{
    /* Subscribed and idle: the reader is waiting for a message. */
    tfh *src = open_subscribed(g_port, "tft_rsub_stop", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    long long started = tft_mono_ms();
    tfh_close(src);
    long long took = tft_mono_ms() - started;
    CU_ASSERT(took < 1500);
    CU_ASSERT_EQUAL(numsub(g_port, "tft_rsub_stop:events:premium"), 0);

    /* Redis unreachable: the reader is between attempts. */
    tft_redis *red = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(red);
    int port = red->port;
    tft_redis_destroy(red);
    src = open_at(port, "source", "tft_rsub_stop", "{subscribe: [premium]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    tf_batch *out = tf_batch_create();
    double before = errors_of(TF_EREDIS);
    CU_ASSERT_EQUAL(tfh_collect(src, out), TF_EREDIS); /* the resync due at start failed */
    CU_ASSERT_EQUAL(errors_of(TF_EREDIS), before + 1);
    CU_ASSERT_EQUAL(subscribed(), 0.0);
    tf_batch_destroy(out);
    started = tft_mono_ms();
    tfh_close(src);
    CU_ASSERT(tft_mono_ms() - started < 1500);
}

static void test_subscribe_options_checked(void)
{
    const char *p = "tft_rsub_opt";
    /* One way of reading at a time. */
    CU_ASSERT_PTR_NULL(open_source(p, "{subscribe: [premium], keys: [fx:USDKRW]}"));
    CU_ASSERT_PTR_NULL(open_source(p, "{subscribe: [premium], patterns: ['premium:*']}"));
    CU_ASSERT_PTR_NULL(open_source(p, "{subscribe: [premium], kind: premium}"));
    CU_ASSERT_PTR_NULL(open_source(p, "{keys: [fx:USDKRW], resync: 1s}"));
    CU_ASSERT_PTR_NULL(open_source(p, "{patterns: ['premium:*'], max_pending: 10}"));
    /* Only kinds the sink keys, each once; a sane bound. */
    CU_ASSERT_PTR_NULL(open_source(p, "{subscribe: [premium, history]}"));
    CU_ASSERT_PTR_NULL(open_source(p, "{subscribe: [premium, premium]}"));
    CU_ASSERT_PTR_NULL(open_source(p, "{subscribe: [premium], max_pending: 0}"));
    char msg[2048];
    CU_ASSERT(
        tfh_rejects("source", "redis", "{subscribe: [premium], resync: soon}", msg, sizeof msg));
    /* A scalar is a one-item list. */
    tfh *src = open_source(p, "{subscribe: premium, resync: 1m, max_pending: 10}");
    CU_ASSERT_PTR_NOT_NULL(src);
    tfh_close(src);
}

int main(void)
{
    g_port = tft_shared_redis_port();
    if (g_port <= 0) {
        fprintf(stderr, "no redis-server for the tests\n");
        return 1;
    }
    /* Leftovers of an earlier run (keys mode tft_rsrc_*, subscribe mode tft_rsub_*). */
    redisReply *r =
        tft_redis_cmd(g_port, "EVAL %s 0",
                      "for _, p in ipairs({'tft_rsrc_*', 'tft_rsub_*'}) do "
                      "for _, k in ipairs(redis.call('KEYS', p)) do redis.call('DEL', k) end end "
                      "return 0");
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
        {"subscribe: an event reaches the next tick", test_subscribe_event_next_tick},
        {"subscribe: a burst of one key is one record", test_subscribe_burst_coalesced},
        {"subscribe: every history entry delivered once",
         test_subscribe_history_entries_each_delivered},
        {"subscribe: max_pending drops the oldest keys", test_subscribe_bounded},
        {"subscribe: keys read at start, then events", test_subscribe_resync_on_start},
        {"subscribe: periodic resync", test_subscribe_periodic_resync},
        {"subscribe: Redis restart survived", test_subscribe_survives_restart},
        {"subscribe: an idle subscription is kept", test_subscribe_idle_kept},
        {"subscribe: stop is prompt", test_subscribe_stop_prompt},
        {"subscribe: options checked", test_subscribe_options_checked},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("source_redis", tests, NULL, NULL);
}
