/*
 * The `redis` sink against a real redis-server: the key schema and TTLs of docs/redis.md,
 * JSON values, events, the capped history stream, one script call per tick, fencing (stale
 * token refused, newer holder's value kept), a Redis restart mid-run, key component checks,
 * and records a redis source read back from the cache, which are not written again. The
 * memory figures of docs/redis.md are measured on the real pipelines' keys by
 * tests/integration/test_redis_schema.c.
 */
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define TTL_SLACK_MS 200

static int g_port;

/* ---- helpers ---- */

static tfh *open_sink_at(int port, const char *prefix, const char *with)
{
    char runtime[256];
    snprintf(runtime, sizeof runtime, "redis: {url: 'redis://127.0.0.1:%d/0', prefix: '%s'}\n",
             port, prefix);
    return tfh_open("sink", "redis", with ? with : "{}", runtime);
}

static tfh *open_sink(const char *prefix, const char *with)
{
    return open_sink_at(g_port, prefix, with);
}

static void add_ticker(tf_batch *b, const char *exchange, const char *symbol, double last)
{
    tf_record *r = tf_record_new(b, "ticker");
    tf_record_set_string(r, "exchange", exchange);
    tf_record_set_string(r, "market", "spot");
    tf_record_set_string(r, "symbol", symbol);
    tf_record_set_string(r, "quote", "KRW");
    tf_record_set_double(r, "last", last);
    tf_record_set_double(r, "bid", last - 1000);
    tf_record_set_double(r, "ask", last + 1000);
    tf_record_set_double(r, "volume_24h", 1234.5678);
    tf_record_set_ts(r, "ts_exchange", 1795428930000);
    tf_record_set_ts(r, "ts_received", 1795428930123);
}

static void add_premium(tf_batch *b, const char *krw, const char *global, const char *symbol,
                        double pct)
{
    tf_record *r = tf_record_new(b, "premium");
    tf_record_set_string(r, "symbol", symbol);
    tf_record_set_string(r, "krw_exchange", krw);
    tf_record_set_string(r, "global_exchange", global);
    tf_record_set_double(r, "krw_price", 136850000.0);
    tf_record_set_double(r, "global_price", 95012.35);
    tf_record_set_double(r, "usdkrw", 1392.55);
    tf_record_set_double(r, "global_price_krw", 132309949.0);
    tf_record_set_double(r, "premium_pct", pct);
    tf_record_set_ts(r, "ts_krw", 1795428930000);
    tf_record_set_ts(r, "ts_global", 1795428930050);
    tf_record_set_ts(r, "ts_fx", 1795428600000);
    tf_record_set_ts(r, "ts", 1795428930100);
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

static void add_position(tf_batch *b, int64_t id)
{
    tf_record *r = tf_record_new(b, "position_live");
    tf_record_set_int(r, "id", id);
    tf_record_set_string(r, "symbol", "BTC");
    tf_record_set_double(r, "pnl_krw", -12345.5);
    tf_record_set_bool(r, "open", true);
}

static redisReply *cmd(const char *fmt, const char *arg)
{
    return tft_redis_cmd(g_port, fmt, arg);
}

static long long int_reply_at(int port, const char *fmt, const char *arg)
{
    redisReply *r = tft_redis_cmd(port, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : LLONG_MIN;
    if (r)
        freeReplyObject(r);
    return v;
}

static long long int_reply(const char *fmt, const char *arg)
{
    return int_reply_at(g_port, fmt, arg);
}

/* GET key parsed as JSON; NULL when absent or not JSON. */
static json_t *get_json(const char *key)
{
    redisReply *r = cmd("GET %s", key);
    json_t *j = r && r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    if (r)
        freeReplyObject(r);
    return j;
}

static double metric_of(const char *name, const char *label, const char *value)
{
    const char *labels[] = {"pipeline", label, NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, name, "test", labels, NULL, 0);
    const char *values[] = {"harness", value};
    return m ? tf_metric_value(m, values) : -1;
}

/* tickflow_redis_sink_skipped_total{kind, reason}. */
static double skipped(const char *kind, const char *reason)
{
    static const char *const labels[] = {"pipeline", "kind", "reason", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_redis_sink_skipped_total",
                                       "test", labels, NULL, 0);
    const char *values[] = {"harness", kind, reason};
    return m ? tf_metric_value(m, values) : -1;
}

static double errors_of(int status)
{
    return tfh_errors("harness", "redis", tf_status_name(status));
}

static double batches(const char *result)
{
    return metric_of("tickflow_redis_sink_batches_total", "result", result);
}

static double rejections(void)
{
    return metric_of("tickflow_redis_fenced_rejections_total", NULL, NULL);
}

static void assert_pttl(const char *key, long long want)
{
    long long pttl = int_reply("PTTL %s", key);
    if (llabs(pttl - want) > TTL_SLACK_MS)
        fprintf(stderr, "PTTL %s = %lld, expected %lld\n", key, pttl, want);
    CU_ASSERT(llabs(pttl - want) <= TTL_SLACK_MS);
}

/* Keys matching prefix:* (the tests' prefixes are unique, so this is what a test wrote). */
static long long count_keys(int port, const char *pattern)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = tft_redis_cmd(port, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* ---- schema, TTLs, values, events ---- */

static void assert_ticker_json(const json_t *j)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "v")), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "kind")), "ticker");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "exchange")), "bithumb");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "symbol")), "BTC");
    CU_ASSERT(json_is_real(json_object_get(j, "last")));
    CU_ASSERT_EQUAL(json_real_value(json_object_get(j, "last")), 136850000.0);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(j, "volume_24h")), 1234.5678);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "ts_exchange")), 1795428930000);
}

/* A connection PSUBSCRIBEd to every event channel under `prefix` (reads time out after 2 s). */
static redisContext *subscribe_events(const char *prefix)
{
    redisContext *sub = tft_redis_connect(g_port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    struct timeval tv = {2, 0};
    redisSetTimeout(sub, tv);
    redisReply *ok = redisCommand(sub, "PSUBSCRIBE %s:events:*", prefix);
    CU_ASSERT_PTR_NOT_NULL(ok);
    if (ok)
        freeReplyObject(ok);
    return sub;
}

/* Reads `n` pmessages from a PSUBSCRIBEd connection into (channel, message) pairs. */
static int read_events(redisContext *sub, int n, char channels[][128], json_t **messages)
{
    int got = 0;
    while (got < n) {
        void *reply = NULL;
        if (redisGetReply(sub, &reply) != REDIS_OK || !reply)
            break;
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            strcmp(r->element[0]->str, "pmessage") == 0) {
            snprintf(channels[got], 128, "%s", r->element[2]->str);
            messages[got] = json_loadb(r->element[3]->str, r->element[3]->len, 0, NULL);
            got++;
        }
        freeReplyObject(r);
    }
    return got;
}

static void test_schema_ttls_values_events(void)
{
    const char *p = "tft_rsink_schema";
    tfh *h = open_sink(p, "{ticker_ttl: 3s, history_max: 1000}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    redisContext *sub = subscribe_events(p);

    double writes_before = metric_of("tickflow_redis_sink_writes_total", "kind", "premium");
    double ok_before = batches("ok");
    tf_batch *b = tf_batch_create();
    add_ticker(b, "bithumb", "BTC", 136850000.0);
    add_premium(b, "bithumb", "binance", "BTC", 3.4217);
    add_fx(b, 1392.55);
    add_position(b, 42);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(batches("ok"), ok_before + 1);
    CU_ASSERT_EQUAL(metric_of("tickflow_redis_sink_writes_total", "kind", "premium"),
                    writes_before + 1);

    /* TTLs: ticker as configured, the others at their defaults. */
    assert_pttl("tft_rsink_schema:ticker:bithumb:BTC", 3000);
    assert_pttl("tft_rsink_schema:premium:bithumb:binance:BTC", 5000);
    assert_pttl("tft_rsink_schema:fx:USDKRW", 15 * 60 * 1000);
    assert_pttl("tft_rsink_schema:position:42:live", 5000);
    const char *hist = "tft_rsink_schema:history:premium:bithumb:binance:BTC";
    CU_ASSERT_EQUAL(int_reply("PTTL %s", hist), -1); /* capped, never expires */
    CU_ASSERT_EQUAL(int_reply("XLEN %s", hist), 1);
    /* + the history clock (the last history id's ms, shared by every stream; no TTL). */
    CU_ASSERT_EQUAL(count_keys(g_port, "tft_rsink_schema:*"), 6);
    CU_ASSERT_EQUAL(int_reply("PTTL %s", "tft_rsink_schema:history:clock"), -1);

    /* Values: the record's JSON plus v: 1. */
    json_t *t = get_json("tft_rsink_schema:ticker:bithumb:BTC");
    assert_ticker_json(t);
    json_t *pr = get_json("tft_rsink_schema:premium:bithumb:binance:BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(pr, "v")), 1);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(pr, "premium_pct")), 3.4217);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(pr, "global_price")), 95012.35);
    json_t *fx = get_json("tft_rsink_schema:fx:USDKRW");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(fx, "rate")), 1392.55);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(fx, "provider")), "dunamu");
    json_t *pos = get_json("tft_rsink_schema:position:42:live");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pos);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(pos, "id")), 42);
    CU_ASSERT(json_is_true(json_object_get(pos, "open")));

    /* The history entry holds the same JSON under the field `json`; the stored value also
     * names that entry (history_id), so a reader of the value can resume from it. */
    redisReply *x = cmd("XRANGE %s - +", hist);
    CU_ASSERT_FATAL(x && x->type == REDIS_REPLY_ARRAY && x->elements == 1);
    const redisReply *fields = x->element[0]->element[1];
    CU_ASSERT_EQUAL(fields->elements, 2);
    CU_ASSERT_STRING_EQUAL(fields->element[0]->str, "json");
    json_t *entry = json_loadb(fields->element[1]->str, fields->element[1]->len, 0, NULL);
    char entry_id[64];
    snprintf(entry_id, sizeof entry_id, "%s", x->element[0]->element[0]->str);
    freeReplyObject(x);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(pr, "history_id")), entry_id);
    CU_ASSERT_PTR_NULL(json_object_get(entry, "history_id"));
    json_object_set_new(entry, "history_id", json_string(entry_id));
    CU_ASSERT(json_equal(entry, pr));
    json_decref(entry);

    /* One event per record, on <p>:events:<kind>, carrying the stored value. */
    char channels[4][128];
    json_t *msgs[4] = {0};
    CU_ASSERT_EQUAL(read_events(sub, 4, channels, msgs), 4);
    CU_ASSERT_STRING_EQUAL(channels[0], "tft_rsink_schema:events:ticker");
    CU_ASSERT_STRING_EQUAL(channels[1], "tft_rsink_schema:events:premium");
    CU_ASSERT_STRING_EQUAL(channels[2], "tft_rsink_schema:events:fx");
    CU_ASSERT_STRING_EQUAL(channels[3], "tft_rsink_schema:events:position_live");
    CU_ASSERT(json_equal(msgs[0], t));
    /* The premium event also names its history entry, so SSE clients can resume from it. */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(msgs[1], "history_id")), entry_id);
    CU_ASSERT(json_equal(msgs[1], pr));
    CU_ASSERT(json_equal(msgs[2], fx));
    CU_ASSERT(json_equal(msgs[3], pos));
    for (int i = 0; i < 4; i++)
        json_decref(msgs[i]);
    json_decref(t);
    json_decref(pr);
    json_decref(fx);
    json_decref(pos);
    redisFree(sub);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* Reals come back bit for bit, written with the fewest digits that achieve it. */
static void test_reals_round_trip(void)
{
    tfh *h = open_sink("tft_rsink_reals", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const double values[] = {95012.35, 0.1, 1.0 / 3.0, 1392.55, 1e-9, 136850000.0, 2.5e15};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        tf_batch *b = tf_batch_create();
        add_fx(b, values[i]);
        CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
        json_t *j = get_json("tft_rsink_reals:fx:USDKRW");
        CU_ASSERT(json_is_real(json_object_get(j, "rate")));
        CU_ASSERT_EQUAL(json_real_value(json_object_get(j, "rate")), values[i]);
        json_decref(j);
        tf_batch_destroy(b);
    }
    tf_batch *b = tf_batch_create();
    add_fx(b, 95012.35);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    redisReply *r = cmd("GET %s", "tft_rsink_reals:fx:USDKRW");
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->str, "\"rate\":95012.35,"));
    freeReplyObject(r);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* ---- kinds, skipped records, key components ---- */

static void test_kinds_and_skipped(void)
{
    tfh *h = open_sink("tft_rsink_kinds", "{kinds: [premium]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    double trade_before = skipped("trade", "kind");
    double ticker_before = skipped("ticker", "kind");
    tf_batch *b = tf_batch_create();
    tf_record *trade = tf_record_new(b, "trade");
    tf_record_set_string(trade, "symbol", "BTC");
    add_ticker(b, "bithumb", "BTC", 1.0);
    add_premium(b, "bithumb", "binance", "ETH", 1.5);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(skipped("trade", "kind"), trade_before + 1);
    CU_ASSERT_EQUAL(skipped("ticker", "kind"), ticker_before + 1);
    CU_ASSERT_EQUAL(int_reply("EXISTS %s", "tft_rsink_kinds:premium:bithumb:binance:ETH"), 1);
    CU_ASSERT_EQUAL(count_keys(g_port, "tft_rsink_kinds:ticker:*"), 0);
    CU_ASSERT_EQUAL(count_keys(g_port, "tft_rsink_kinds:trade*"), 0);
    tf_batch_destroy(b);
    tfh_close(h);

    /* A kind without a key schema cannot be asked for. */
    CU_ASSERT_PTR_NULL(open_sink("tft_rsink_kinds", "{kinds: [ticker, trade]}"));
    CU_ASSERT_PTR_NULL(open_sink("tft_rsink_kinds", "{ticker_ttl: 0s}"));
    CU_ASSERT_PTR_NULL(open_sink("tft_rsink_kinds", "{history_max: -1}"));
    /* Without a redis: section there is nothing to write to. */
    CU_ASSERT_PTR_NULL(tfh_open("sink", "redis", "{}", NULL));
}

static void test_unsafe_components(void)
{
    tfh *h = open_sink("tft_rsink_unsafe", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    double before = errors_of(TF_EVALUE);
    tf_batch *b = tf_batch_create();
    add_ticker(b, "bit:hum", "BTC", 1.0);   /* separator */
    add_ticker(b, "bithumb", "BT C", 1.0);  /* whitespace */
    add_ticker(b, "bithumb", "", 1.0);      /* empty */
    add_ticker(b, "bithumb", "ET\tH", 1.0); /* tab */
    tf_record *no_symbol = tf_record_new(b, "ticker");
    tf_record_set_string(no_symbol, "exchange", "bithumb");
    tf_record *real_id = tf_record_new(b, "position_live");
    tf_record_set_double(real_id, "id", 1.5);
    add_ticker(b, "bithumb", "XRP", 1.0); /* the good one still lands */
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(errors_of(TF_EVALUE), before + 6);
    CU_ASSERT_EQUAL(count_keys(g_port, "tft_rsink_unsafe:*"), 1);
    CU_ASSERT_EQUAL(int_reply("EXISTS %s", "tft_rsink_unsafe:ticker:bithumb:XRP"), 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* ---- history ids ---- */

/* (ms, seq) of a "<ms>-<seq>" id; false when it is not one. */
static bool parse_id(const char *id, unsigned long long *ms, unsigned long long *seq)
{
    char tail;
    return id && sscanf(id, "%llu-%llu%c", ms, seq, &tail) == 2;
}

static bool id_after(const char *a, const char *b)
{
    unsigned long long ams, aseq, bms, bseq;
    if (!parse_id(a, &ams, &aseq) || !parse_id(b, &bms, &bseq))
        return false;
    return ams > bms || (ams == bms && aseq > bseq);
}

/* Writes `b` and reads its `n` premium events; checks each history_id names the newest entry of
 * its pair's stream and comes after *last (then moves *last on). */
static void write_and_check_ids(tfh *h, tf_batch *b, redisContext *sub, int n, char *last,
                                size_t last_size)
{
    CU_ASSERT_EQUAL_FATAL(tfh_write(h, b), TF_OK);
    char channels[8][128];
    json_t *msgs[8] = {0};
    CU_ASSERT_EQUAL_FATAL(read_events(sub, n, channels, msgs), n);
    for (int i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(msgs[i], "history_id"));
        CU_ASSERT_PTR_NOT_NULL_FATAL(id);
        CU_ASSERT(last[0] == '\0' || id_after(id, last));
        char stream[160];
        snprintf(stream, sizeof stream, "tft_rsink_ids:history:premium:bithumb:binance:%s",
                 json_string_value(json_object_get(msgs[i], "symbol")));
        redisReply *top = tft_redis_cmd(g_port, "XREVRANGE %s + - COUNT 1", stream);
        CU_ASSERT_FATAL(top && top->type == REDIS_REPLY_ARRAY && top->elements == 1);
        CU_ASSERT_STRING_EQUAL(top->element[0]->element[0]->str, id);
        freeReplyObject(top);
        snprintf(last, last_size, "%s", id);
        json_decref(msgs[i]);
    }
}

/* Every pair of a tick gets its own history id, and ids grow in publication order across
 * pairs and ticks (one clock per prefix): "every entry after L, in any stream" is what an SSE
 * client that saw L lacks. Holds when the clock key is lost and a stream is ahead of TIME. */
static void test_history_ids_unique_and_ordered(void)
{
    tfh *h = open_sink("tft_rsink_ids", "{history_max: 1000, kinds: [premium]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    redisContext *sub = subscribe_events("tft_rsink_ids");

    tf_batch *b = tf_batch_create();
    add_premium(b, "bithumb", "binance", "BTC", 2.0);
    add_premium(b, "bithumb", "binance", "ETH", 2.1);
    add_premium(b, "bithumb", "binance", "XRP", 2.2);
    char last[64] = "";
    for (int tick = 0; tick < 3; tick++)
        write_and_check_ids(h, b, sub, 3, last, sizeof last);

    /* The clock is lost and one stream holds an id a minute ahead: the next ids still come
     * after every id written so far, in every stream. */
    unsigned long long ms, seq;
    CU_ASSERT_FATAL(parse_id(last, &ms, &seq));
    char ahead[64];
    snprintf(ahead, sizeof ahead, "%llu-7", ms + 60000);
    redisReply *r = tft_redis_cmd(g_port, "DEL %s", "tft_rsink_ids:history:clock");
    freeReplyObject(r);
    r = tft_redis_cmd(g_port, "XADD tft_rsink_ids:history:premium:bithumb:binance:ETH %s json {}",
                      ahead);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    for (int tick = 0; tick < 2; tick++)
        write_and_check_ids(h, b, sub, 3, last, sizeof last);
    CU_ASSERT(id_after(last, ahead));

    tf_batch_destroy(b);
    redisFree(sub);
    tfh_close(h);
}

/* ---- history cap ---- */

static void test_history_capped(void)
{
    tfh *h = open_sink("tft_rsink_cap", "{history_max: 100}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_premium(b, "upbit", "binance", "BTC", 2.0);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    long long len = int_reply("XLEN %s", "tft_rsink_cap:history:premium:upbit:binance:BTC");
    printf("\n    history_max 100, 1000 ticks: XLEN %lld\n", len);
    /* MAXLEN ~ trims whole macro nodes (100 entries each by default), never below the cap. */
    CU_ASSERT(len >= 100);
    CU_ASSERT(len <= 200);
    tf_batch_destroy(b);
    tfh_close(h);

    /* history_max 0: no stream at all. */
    h = open_sink("tft_rsink_nohist", "{history_max: 0}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    b = tf_batch_create();
    add_premium(b, "upbit", "binance", "BTC", 2.0);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(count_keys(g_port, "tft_rsink_nohist:*"), 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* ---- one round trip per tick (private Redis: nobody else's scripts in its stats) ---- */

/* `field` (calls, usec) of cmdstat_<name> in INFO commandstats (0 when it never ran). */
static long long command_stat(int port, const char *name, const char *field)
{
    redisReply *r = tft_redis_cmd(port, "INFO commandstats");
    long long v = 0;
    char line[64], key[32];
    snprintf(line, sizeof line, "cmdstat_%s:", name);
    snprintf(key, sizeof key, "%s=", field);
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, line) : NULL;
    at = at ? strstr(at, key) : NULL;
    if (at)
        v = strtoll(at + strlen(key), NULL, 10);
    if (r)
        freeReplyObject(r);
    return v;
}

static long long command_calls(int port, const char *name)
{
    return command_stat(port, name, "calls");
}

static long long script_calls(int port)
{
    return command_calls(port, "evalsha") + command_calls(port, "eval");
}

static void test_one_round_trip_per_tick(void)
{
    tft_redis *red = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(red);
    tfh *h = open_sink_at(red->port, "tft_rsink_rt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_ticker(b, "bithumb", "BTC", 1.0);
    add_premium(b, "bithumb", "binance", "BTC", 1.0);
    add_fx(b, 1392.55);
    /* The first tick loads the script (EVALSHA answered NOSCRIPT, then EVAL). */
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    long long before = script_calls(red->port);
    long long sets_before = command_calls(red->port, "set");
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(script_calls(red->port), before + 5);
    /* ... and the writes happened inside those calls. */
    /* (3 values and the history clock) */
    CU_ASSERT_EQUAL(command_calls(red->port, "set"), sets_before + 5 * 4);
    tf_batch_destroy(b);

    /* 300 symbols x 5 exchanges of tickers plus 300 x 6 premiums: still one call. */
    b = tf_batch_create();
    static const char *const exchanges[] = {"bithumb", "upbit", "binance", "okx", "bybit"};
    char sym[16];
    for (int s = 0; s < 300; s++) {
        snprintf(sym, sizeof sym, "S%03d", s);
        for (int e = 0; e < 5; e++)
            add_ticker(b, exchanges[e], sym, 1000.0 + s);
        for (int k = 0; k < 2; k++) {
            for (int g = 2; g < 5; g++)
                add_premium(b, exchanges[k], exchanges[g], sym, 0.01 * s);
        }
    }
    redisReply *flushed = tft_redis_cmd(red->port, "FLUSHALL"); /* private: count only these */
    if (flushed)
        freeReplyObject(flushed);
    before = script_calls(red->port);
    long long usec = command_stat(red->port, "evalsha", "usec");
    long long t0 = tft_mono_ms();
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    long long elapsed = tft_mono_ms() - t0;
    printf("\n    3300 records (1500 tickers, 1800 premiums) in one script call: %lld ms, of "
           "which the script ran %lld us in Redis\n",
           elapsed, command_stat(red->port, "evalsha", "usec") - usec);
    CU_ASSERT_EQUAL(script_calls(red->port), before + 1);
    CU_ASSERT_EQUAL(count_keys(red->port, "tft_rsink_rt:ticker:*"), 1500);
    CU_ASSERT_EQUAL(count_keys(red->port, "tft_rsink_rt:premium:*"), 1800);
    CU_ASSERT_EQUAL(count_keys(red->port, "tft_rsink_rt:history:premium:*"), 1800);
    tf_batch_destroy(b);
    tfh_close(h);
    tft_redis_destroy(red);
}

/* ---- fencing ---- */

static void test_fenced_writes(void)
{
    const char *fence_key = "tft_rsink_fence:fence:harness";
    redisReply *r = cmd("SET %s 5", fence_key);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
    tfh *h = open_sink("tft_rsink_fence", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_ticker(b, "bithumb", "BTC", 1.0);
    add_premium(b, "bithumb", "binance", "BTC", 1.0);

    /* A stale token: refused, nothing lands, counted. */
    double rej = rejections(), fenced = batches("fenced"), errs = errors_of(TF_EFENCED);
    tfh_set_fence(h, 4, fence_key);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_EFENCED);
    CU_ASSERT_EQUAL(rejections(), rej + 1);
    CU_ASSERT_EQUAL(batches("fenced"), fenced + 1);
    CU_ASSERT_EQUAL(errors_of(TF_EFENCED), errs + 1);
    CU_ASSERT_EQUAL(count_keys(g_port, "tft_rsink_fence:*"), 1); /* only the fence key */

    /* The current token: written. */
    tfh_set_fence(h, 5, fence_key);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(int_reply("EXISTS %s", "tft_rsink_fence:ticker:bithumb:BTC"), 1);
    CU_ASSERT_EQUAL(int_reply("XLEN %s", "tft_rsink_fence:history:premium:bithumb:binance:BTC"), 1);
    CU_ASSERT_EQUAL(rejections(), rej + 1);

    /* A token newer than the key's (cannot come from the lease) is refused too. */
    tfh_set_fence(h, 6, fence_key);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_EFENCED);

    /* No lease: unconditional, whatever the fence key holds. */
    tfh_set_fence(h, 0, NULL);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);
    CU_ASSERT_EQUAL(int_reply("XLEN %s", "tft_rsink_fence:history:premium:bithumb:binance:BTC"), 2);
    tf_batch_destroy(b);
    tfh_close(h);
}

/* A paused holder wakes up after another replica took the lease over and wrote. */
static void test_stale_holder_after_takeover(void)
{
    const char *fence_key = "tft_rsink_takeover:fence:harness";
    const char *ticker = "tft_rsink_takeover:ticker:bithumb:BTC";
    redisReply *r = cmd("SET %s 1795428930000000", fence_key);
    if (r)
        freeReplyObject(r);
    tfh *old = open_sink("tft_rsink_takeover", NULL);
    tfh *newer = open_sink("tft_rsink_takeover", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    CU_ASSERT_PTR_NOT_NULL_FATAL(newer);
    tfh_set_fence(old, 1795428930000000ULL, fence_key);
    tf_batch *b = tf_batch_create();
    add_ticker(b, "bithumb", "BTC", 100.0);
    CU_ASSERT_EQUAL(tfh_write(old, b), TF_OK);

    /* The newer holder's acquisition bumps the token, then it writes "newer". */
    r = cmd("SET %s 1795428930000001", fence_key);
    if (r)
        freeReplyObject(r);
    tfh_set_fence(newer, 1795428930000001ULL, fence_key);
    tf_batch *nb = tf_batch_create();
    add_ticker(nb, "bithumb", "BTC", 200.0);
    CU_ASSERT_EQUAL(tfh_write(newer, nb), TF_OK);

    /* The old holder's tick finishes: refused, the newer value stays. */
    double rej = rejections();
    CU_ASSERT_EQUAL(tfh_write(old, b), TF_EFENCED);
    CU_ASSERT_EQUAL(rejections(), rej + 1);
    json_t *j = get_json(ticker);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(j, "last")), 200.0);
    json_decref(j);
    tf_batch_destroy(b);
    tf_batch_destroy(nb);
    tfh_close(old);
    tfh_close(newer);
}

/* ---- records read back from the cache ---- */

#define CACHED_PTTL_MS 60000 /* what is left of the FX pipeline's write in these tests */
#define FX_TTL_MS      (15 * 60 * 1000)

/* The FX pipeline's last write, with CACHED_PTTL_MS left; returns the stored JSON (malloc'd). */
static char *seed_cached_fx(const char *prefix)
{
    char key[128];
    snprintf(key, sizeof key, "%s:fx:USDKRW", prefix);
    const char *json = "{\"kind\":\"fx\",\"pair\":\"USDKRW\",\"rate\":1392.55,\"provider\":"
                       "\"dunamu\",\"ts_provider\":1795428600000,\"ts_received\":1795428600321,"
                       "\"v\":1}";
    redisReply *r = tft_redis_cmd(g_port, "SET %s %s PX %d", key, json, CACHED_PTTL_MS);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
    return strdup(json);
}

static tfh *open_cache_reader(const char *prefix)
{
    char runtime[256];
    snprintf(runtime, sizeof runtime, "redis: {url: 'redis://127.0.0.1:%d/0', prefix: '%s'}\n",
             g_port, prefix);
    return tfh_open("source", "redis", "{keys: [fx:USDKRW]}", runtime);
}

/* The channel of the next event (the test's writes are its only publishers). */
static void next_event(redisContext *sub, char *channel, size_t size)
{
    char channels[1][128] = {""};
    json_t *msg[1] = {NULL};
    CU_ASSERT_EQUAL(read_events(sub, 1, channels, msg), 1);
    json_decref(msg[0]);
    snprintf(channel, size, "%s", channels[0]);
}

static void assert_origin(const tf_record *r, tf_plugin_kind want_kind, const char *want_plugin)
{
    const tf_host *h = tfh_host();
    CU_ASSERT_FATAL(TF_HOST_HAS(h, record_origin));
    tf_plugin_kind kind = 0;
    const char *plugin = NULL;
    CU_ASSERT_EQUAL(h->record_origin(r, &kind, &plugin), TF_OK);
    CU_ASSERT_EQUAL(kind, want_kind);
    CU_ASSERT_STRING_EQUAL(plugin ? plugin : "", want_plugin);
}

/* The kimchi pipeline's tick: the redis source reads the FX rate the FX pipeline cached, and
 * the sink must leave that key alone (its TTL runs out when the FX pipeline stops), while it
 * writes what the pipeline fetched. A fresh rate from a fetching source is written. */
static void test_cached_not_rewritten(void)
{
    const char *p = "tft_rsink_cached";
    const char *fx_key = "tft_rsink_cached:fx:USDKRW";
    char *stored = seed_cached_fx(p);
    tfh *reader = open_cache_reader(p);
    tfh *sink = open_sink(p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reader);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    redisContext *sub = subscribe_events(p);

    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(reader, b), TF_OK);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(b), 1);
    assert_origin(tf_batch_at(b, 0), TF_KIND_SOURCE, "redis");
    add_ticker(b, "bithumb", "BTC", 136850000.0); /* made by hand: no origin, written */
    CU_ASSERT_EQUAL(tfh_host()->record_origin(tf_batch_at(b, 1), NULL, NULL), TF_ENOTFOUND);
    double before = skipped("fx", "cached");
    double fx_writes = metric_of("tickflow_redis_sink_writes_total", "kind", "fx");
    CU_ASSERT_EQUAL(tfh_write(sink, b), TF_OK);
    CU_ASSERT_EQUAL(skipped("fx", "cached"), before + 1);
    CU_ASSERT_EQUAL(metric_of("tickflow_redis_sink_writes_total", "kind", "fx"), fx_writes);
    /* The key keeps its own expiry and value; no event: the first one is the ticker's, which
     * the script publishes after where the fx record's would have been. */
    long long pttl = int_reply("PTTL %s", fx_key);
    CU_ASSERT(pttl > 0 && pttl <= CACHED_PTTL_MS);
    redisReply *r = cmd("GET %s", fx_key);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(r->str, stored);
    freeReplyObject(r);
    char channel[128];
    next_event(sub, channel, sizeof channel);
    CU_ASSERT_STRING_EQUAL(channel, "tft_rsink_cached:events:ticker");
    CU_ASSERT_EQUAL(int_reply("EXISTS %s", "tft_rsink_cached:ticker:bithumb:BTC"), 1);
    tf_batch_destroy(b);

    /* A rate a source fetched (generate stands in for the fx source) is written as usual. */
    tfh *fetcher = tfh_open("source", "generate",
                            "{kind: fx, fields: {pair: USDKRW, provider: generate}, walk_field: "
                            "rate, start: 1392.5}",
                            NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fetcher);
    b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(fetcher, b), TF_OK);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(b), 1);
    assert_origin(tf_batch_at(b, 0), TF_KIND_SOURCE, "generate");
    CU_ASSERT_EQUAL(tfh_write(sink, b), TF_OK);
    assert_pttl(fx_key, FX_TTL_MS);
    next_event(sub, channel, sizeof channel);
    CU_ASSERT_STRING_EQUAL(channel, "tft_rsink_cached:events:fx");
    CU_ASSERT_EQUAL(skipped("fx", "cached"), before + 1);
    tf_batch_destroy(b);
    tfh_close(fetcher);
    redisFree(sub);
    tfh_close(sink);
    tfh_close(reader);
    free(stored);
}

/* A pipeline that copies cached values on purpose (another prefix, another db) says so. */
static void test_rewrite_cached_option(void)
{
    const char *p = "tft_rsink_rewrite";
    free(seed_cached_fx(p));
    tfh *reader = open_cache_reader(p);
    tfh *sink = open_sink(p, "{rewrite_cached: true}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(reader);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    redisContext *sub = subscribe_events(p);
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(reader, b), TF_OK);
    CU_ASSERT_EQUAL_FATAL(tf_batch_count(b), 1);
    double before = skipped("fx", "cached");
    CU_ASSERT_EQUAL(tfh_write(sink, b), TF_OK);
    CU_ASSERT_EQUAL(skipped("fx", "cached"), before);
    assert_pttl("tft_rsink_rewrite:fx:USDKRW", FX_TTL_MS);
    char channel[128];
    next_event(sub, channel, sizeof channel);
    CU_ASSERT_STRING_EQUAL(channel, "tft_rsink_rewrite:events:fx");
    tf_batch_destroy(b);
    redisFree(sub);
    tfh_close(sink);
    tfh_close(reader);
    CU_ASSERT_PTR_NULL(open_sink(p, "{rewrite_cached: maybe}"));
}

/* ---- Redis restarted mid-run ---- */

typedef struct retry_ctx {
    tfh *h;
    tf_batch *b;
    int failures;
} retry_ctx;

static bool write_lands(void *arg)
{
    retry_ctx *c = arg;
    int rc = tfh_write(c->h, c->b);
    if (rc == TF_EREDIS)
        c->failures++;
    return rc == TF_OK;
}

static void test_redis_restart(void)
{
    tft_redis *red = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(red);
    tfh *h = open_sink_at(red->port, "tft_rsink_restart", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_fx(b, 1392.55);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_OK);

    tft_redis_stop(red);
    double failed = batches("failed"), errs = errors_of(TF_EREDIS);
    CU_ASSERT_EQUAL(tfh_write(h, b), TF_EREDIS);
    CU_ASSERT_EQUAL(batches("failed"), failed + 1);
    CU_ASSERT_EQUAL(errors_of(TF_EREDIS), errs + 1);

    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(red), 0);
    /* The same sink: its connection comes back after the backoff (≤ 5 s) and the script is
     * loaded again (NOSCRIPT -> EVAL). */
    retry_ctx c = {h, b, 0};
    CU_ASSERT(tft_wait_until(write_lands, &c, 10000));
    CU_ASSERT_EQUAL(batches("failed"), failed + 1 + c.failures);
    CU_ASSERT_EQUAL(int_reply_at(red->port, "EXISTS %s", "tft_rsink_restart:fx:USDKRW"), 1);
    tf_batch_destroy(b);
    tfh_close(h);
    tft_redis_destroy(red);
}

int main(void)
{
    g_port = tft_shared_redis_port();
    if (g_port <= 0) {
        fprintf(stderr, "no redis-server for the tests\n");
        return 1;
    }
    /* Each run starts from clean keys under the tests' prefixes. */
    redisReply *r = tft_redis_cmd(g_port, "EVAL %s 0",
                                  "for _, k in ipairs(redis.call('KEYS', 'tft_rsink_*')) do "
                                  "redis.call('DEL', k) end return 0");
    if (r)
        freeReplyObject(r);
    CU_TestInfo tests[] = {
        {"key schema, TTLs, JSON values, events", test_schema_ttls_values_events},
        {"reals round trip with the fewest digits", test_reals_round_trip},
        {"kinds option, skipped kinds, init checks", test_kinds_and_skipped},
        {"unsafe key components are refused", test_unsafe_components},
        {"history ids unique across pairs, ordered", test_history_ids_unique_and_ordered},
        {"history stream stays capped", test_history_capped},
        {"one script call per tick, large batch", test_one_round_trip_per_tick},
        {"fenced writes", test_fenced_writes},
        {"stale holder after a takeover", test_stale_holder_after_takeover},
        {"Redis restarted mid-run", test_redis_restart},
        {"records read back from the cache are not written again", test_cached_not_rewritten},
        {"rewrite_cached: true writes them back", test_rewrite_cached_option},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("sink_redis", tests, NULL, NULL);
}
