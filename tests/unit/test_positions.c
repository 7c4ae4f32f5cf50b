/*
 * tf_positions: the PnL arithmetic of both directions against numbers worked out here, and
 * the Redis store against a real redis-server (hash fields as written, open set membership,
 * realized PnL, closing twice refused, listing, live values, the premium the CLI reads).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_positions.h"
#include "tf_test.h"

static int port;
static char prefix[64];
static tf_redis *redis;

static void new_prefix(void)
{
    static int n;
    snprintf(prefix, sizeof prefix, "tfpos%d-%d", (int)getpid(), ++n);
}

static tf_redis_settings settings_for(int p)
{
    tf_redis_settings s = {
        .configured = true,
        .host = "127.0.0.1",
        .port = p,
        .prefix = "unused",
        .connect_timeout_ms = 500,
        .command_timeout_ms = 1000,
    };
    return s;
}

static void assert_close(double got, double want)
{
    double tol = fabs(want) * 1e-12 + 1e-9;
    CU_ASSERT_DOUBLE_EQUAL(got, want, tol);
    if (fabs(got - want) > tol)
        fprintf(stderr, "\n  got %.17g, want %.17g\n", got, want);
}

/* HGET as text (static buffer); "" when absent. */
static const char *hget(const char *id, const char *field)
{
    static char out[128];
    char key[128];
    snprintf(key, sizeof key, "%s:position:%s", prefix, id);
    redisReply *r = tft_redis_cmd(port, "HGET %s %s", key, field);
    snprintf(out, sizeof out, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r)
        freeReplyObject(r);
    return out;
}

static long long is_open_member(const char *id)
{
    char set[128];
    snprintf(set, sizeof set, "%s:positions:open", prefix);
    redisReply *r = tft_redis_cmd(port, "SISMEMBER %s %s", set, id);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static void set_key(const char *suffix, const char *value)
{
    char key[256];
    snprintf(key, sizeof key, "%s:%s", prefix, suffix);
    redisReply *r = tft_redis_cmd(port, "SET %s %s", key, value);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
}

/* BTC at entry and later, ETH later (top of books and USD/KRW). */
static const tf_book BTC_THEN = {136840000, 136850000, 95012.30, 95013.00, 1402.5};
static const tf_book BTC_NOW = {137900000, 137950000, 95050.00, 95100.00, 1403.0};

static tf_position long_btc(void)
{
    tf_position p = {.direction = TF_DIRECTION_LONG_KRW, .size = 0.5};
    snprintf(p.symbol, sizeof p.symbol, "BTC");
    snprintf(p.krw_exchange, sizeof p.krw_exchange, "bithumb");
    snprintf(p.global_exchange, sizeof p.global_exchange, "binance");
    p.entry = tf_position_entry_fill(p.direction, &BTC_THEN);
    return p;
}

/* ---- arithmetic ---- */

static void test_fills(void)
{
    tf_fill f = tf_position_entry_fill(TF_DIRECTION_LONG_KRW, &BTC_THEN);
    CU_ASSERT_EQUAL(f.krw_price, 136850000);   /* buys KRW at the ask */
    CU_ASSERT_EQUAL(f.global_price, 95012.30); /* sells the perp at the bid */
    CU_ASSERT_EQUAL(f.usdkrw, 1402.5);
    f = tf_position_exit_fill(TF_DIRECTION_LONG_KRW, &BTC_NOW);
    CU_ASSERT_EQUAL(f.krw_price, 137900000);   /* sells KRW at the bid */
    CU_ASSERT_EQUAL(f.global_price, 95100.00); /* buys the perp back at the ask */
    f = tf_position_entry_fill(TF_DIRECTION_SHORT_KRW, &BTC_THEN);
    CU_ASSERT_EQUAL(f.krw_price, 136840000);
    CU_ASSERT_EQUAL(f.global_price, 95013.00);
    f = tf_position_exit_fill(TF_DIRECTION_SHORT_KRW, &BTC_NOW);
    CU_ASSERT_EQUAL(f.krw_price, 137950000);
    CU_ASSERT_EQUAL(f.global_price, 95050.00);
    CU_ASSERT_EQUAL(f.usdkrw, 1403.0);
}

static void test_premium(void)
{
    assert_close(tf_premium_pct(136850000, 95012.30, 1402.5),
                 (136850000.0 / (95012.30 * 1402.5) - 1.0) * 100.0);
    CU_ASSERT_TRUE(isnan(tf_premium_pct(0, 95012.30, 1402.5)));
    CU_ASSERT_TRUE(isnan(tf_premium_pct(136850000, -1, 1402.5)));
    CU_ASSERT_TRUE(isnan(tf_premium_pct(136850000, 95012.30, NAN)));
    CU_ASSERT_TRUE(isnan(tf_premium_pct(INFINITY, 95012.30, 1402.5)));
}

static void test_pnl_long(void)
{
    tf_position p = long_btc();
    p.entry_premium_pct = (136850000.0 / (95012.30 * 1402.5) - 1.0) * 100.0;
    tf_fill exit = tf_position_exit_fill(p.direction, &BTC_NOW);
    tf_pnl pnl;
    CU_ASSERT_EQUAL_FATAL(tf_position_pnl(&p, &exit, &pnl), TF_OK);
    double now = (137900000.0 / (95100.00 * 1403.0) - 1.0) * 100.0;
    assert_close(pnl.premium_pct, now);
    assert_close(pnl.pnl_pct_points, now - p.entry_premium_pct);
    CU_ASSERT_TRUE(pnl.pnl_pct_points > 0); /* the premium rose: a long KRW position gains */
    /* KRW leg 0.5 * (137900000 - 136850000) = 525000; global leg 0.5 * (95012.30 - 95100.00)
     * * 1403.0 = -61521.55. */
    assert_close(pnl.pnl_krw, 463478.45);
}

static void test_pnl_short(void)
{
    /* Short ETH 2 at krw_bid 4960000 / global_ask 3530.00 / 1402.0, closed at krw_ask 4968000 /
     * global_bid 3525.10 / 1403.0: the premium rose, so the short loses. */
    tf_position p = {.direction = TF_DIRECTION_SHORT_KRW, .size = 2.0};
    p.entry = (tf_fill){4960000, 3530.00, 1402.0};
    p.entry_premium_pct = (4960000.0 / (3530.00 * 1402.0) - 1.0) * 100.0;
    tf_book eth = {4967000, 4968000, 3525.10, 3525.30, 1403.0};
    tf_fill exit = tf_position_exit_fill(p.direction, &eth);
    tf_pnl pnl;
    CU_ASSERT_EQUAL_FATAL(tf_position_pnl(&p, &exit, &pnl), TF_OK);
    double now = (4968000.0 / (3525.10 * 1403.0) - 1.0) * 100.0;
    assert_close(pnl.premium_pct, now);
    assert_close(pnl.pnl_pct_points, p.entry_premium_pct - now);
    CU_ASSERT_TRUE(pnl.pnl_pct_points < 0);
    /* 2 * (4960000 - 4968000) = -16000; 2 * (3525.10 - 3530.00) * 1403 = -13749.4. */
    assert_close(pnl.pnl_krw, -29749.4);

    /* Short BTC 0.1 at 137000000 / 95000 / 1402, closed at 136000000 / 95200 / 1402.5: the
     * premium fell, the short gains on both legs. */
    tf_position q = {.direction = TF_DIRECTION_SHORT_KRW, .size = 0.1};
    q.entry = (tf_fill){137000000, 95000, 1402};
    q.entry_premium_pct = (137000000.0 / (95000.0 * 1402.0) - 1.0) * 100.0;
    tf_fill out = {136000000, 95200, 1402.5};
    CU_ASSERT_EQUAL_FATAL(tf_position_pnl(&q, &out, &pnl), TF_OK);
    now = (136000000.0 / (95200.0 * 1402.5) - 1.0) * 100.0;
    assert_close(pnl.pnl_pct_points, q.entry_premium_pct - now);
    CU_ASSERT_TRUE(pnl.pnl_pct_points > 0);
    /* 0.1 * 1000000 = 100000; 0.1 * (95200 - 95000) * 1402.5 = 28050. */
    assert_close(pnl.pnl_krw, 128050.0);
}

static void test_pnl_invalid(void)
{
    tf_position p = long_btc();
    p.entry_premium_pct = 1.0;
    tf_pnl pnl;
    tf_fill bad = {0, 95100, 1403};
    CU_ASSERT_EQUAL(tf_position_pnl(&p, &bad, &pnl), TF_EVALUE);
    tf_fill good = {137900000, 95100, 1403};
    p.size = 0;
    CU_ASSERT_EQUAL(tf_position_pnl(&p, &good, &pnl), TF_EVALUE);
    p.size = NAN;
    CU_ASSERT_EQUAL(tf_position_pnl(&p, &good, &pnl), TF_EVALUE);
}

static void test_names(void)
{
    tf_direction d;
    CU_ASSERT_EQUAL(tf_direction_parse("long_krw_short_global", &d), TF_OK);
    CU_ASSERT_EQUAL(d, TF_DIRECTION_LONG_KRW);
    CU_ASSERT_EQUAL(tf_direction_parse("short_krw_long_global", &d), TF_OK);
    CU_ASSERT_EQUAL(d, TF_DIRECTION_SHORT_KRW);
    CU_ASSERT_EQUAL(tf_direction_parse("long", &d), TF_EINVAL);
    CU_ASSERT_EQUAL(tf_direction_parse(NULL, &d), TF_EINVAL);
    CU_ASSERT_STRING_EQUAL(tf_direction_name(TF_DIRECTION_SHORT_KRW), "short_krw_long_global");
    CU_ASSERT_TRUE(tf_position_id_valid("pos-1"));
    CU_ASSERT_TRUE(tf_position_id_valid("pos-123456"));
    CU_ASSERT_FALSE(tf_position_id_valid("pos-"));
    CU_ASSERT_FALSE(tf_position_id_valid("pos-01"));
    CU_ASSERT_FALSE(tf_position_id_valid("pos-1:live"));
    CU_ASSERT_FALSE(tf_position_id_valid("pos-x"));
    CU_ASSERT_FALSE(tf_position_id_valid("1"));
    CU_ASSERT_FALSE(tf_position_id_valid(NULL));
}

/* ---- the store ---- */

static void test_lifecycle(void)
{
    new_prefix();
    char err[512];
    tf_position p = long_btc();
    snprintf(p.symbol, sizeof p.symbol, "btc"); /* stored upper case */
    p.opened_at = 1795428900000;
    CU_ASSERT_EQUAL_FATAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_OK);
    CU_ASSERT_STRING_EQUAL(p.id, "pos-1");
    CU_ASSERT_TRUE(p.open);
    double entry = (136850000.0 / (95012.30 * 1402.5) - 1.0) * 100.0;
    assert_close(p.entry_premium_pct, entry);
    /* The hash as written: shortest exact decimal text. */
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "id"), "pos-1");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "symbol"), "BTC");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "krw_exchange"), "bithumb");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "global_exchange"), "binance");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "direction"), "long_krw_short_global");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "size"), "0.5");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "entry_krw_price"), "136850000");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "entry_global_price"), "95012.3");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "entry_usdkrw"), "1402.5");
    CU_ASSERT_EQUAL(strtod(hget("pos-1", "entry_premium_pct"), NULL), entry);
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "opened_at"), "1795428900000");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "status"), "open");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "closed_at"), "");
    CU_ASSERT_EQUAL(is_open_member("pos-1"), 1);

    tf_position got;
    CU_ASSERT_EQUAL_FATAL(tf_position_get(redis, prefix, "pos-1", &got, err, sizeof err), TF_OK);
    CU_ASSERT_STRING_EQUAL(got.symbol, "BTC");
    CU_ASSERT_EQUAL(got.direction, TF_DIRECTION_LONG_KRW);
    CU_ASSERT_EQUAL(got.size, 0.5);
    CU_ASSERT_EQUAL(got.entry.krw_price, 136850000);
    CU_ASSERT_EQUAL(got.entry.global_price, 95012.30);
    CU_ASSERT_EQUAL(got.entry_premium_pct, p.entry_premium_pct);
    CU_ASSERT_EQUAL(got.opened_at, 1795428900000);
    CU_ASSERT_TRUE(got.open);

    tf_fill exit = tf_position_exit_fill(TF_DIRECTION_LONG_KRW, &BTC_NOW);
    tf_position closed;
    CU_ASSERT_EQUAL_FATAL(
        tf_position_close(redis, prefix, "pos-1", &exit, 1795429000000, &closed, err, sizeof err),
        TF_OK);
    CU_ASSERT_FALSE(closed.open);
    assert_close(closed.realized_pnl_krw, 463478.45);
    double now = (137900000.0 / (95100.00 * 1403.0) - 1.0) * 100.0;
    assert_close(closed.realized_pnl_pct_points, now - entry);
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "status"), "closed");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "closed_at"), "1795429000000");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "exit_krw_price"), "137900000");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "exit_global_price"), "95100");
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "exit_usdkrw"), "1403");
    assert_close(strtod(hget("pos-1", "realized_pnl_krw"), NULL), 463478.45);
    assert_close(strtod(hget("pos-1", "realized_pnl_pct_points"), NULL), now - entry);
    assert_close(strtod(hget("pos-1", "exit_premium_pct"), NULL), now);
    CU_ASSERT_EQUAL(is_open_member("pos-1"), 0);

    /* The stored closing fields read back. */
    CU_ASSERT_EQUAL_FATAL(tf_position_get(redis, prefix, "pos-1", &got, err, sizeof err), TF_OK);
    CU_ASSERT_FALSE(got.open);
    CU_ASSERT_EQUAL(got.closed_at, 1795429000000);
    CU_ASSERT_EQUAL(got.realized_pnl_krw, closed.realized_pnl_krw);

    /* Closing twice is refused and changes nothing. */
    tf_fill other = {1, 1, 1};
    CU_ASSERT_EQUAL(tf_position_close(redis, prefix, "pos-1", &other, 0, &closed, err, sizeof err),
                    TF_ECONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected an open position"));
    CU_ASSERT_STRING_EQUAL(hget("pos-1", "exit_krw_price"), "137900000");
    CU_ASSERT_EQUAL(tf_position_close(redis, prefix, "pos-999", &exit, 0, &closed, err, sizeof err),
                    TF_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pos-999"));
    CU_ASSERT_EQUAL(tf_position_get(redis, prefix, "bogus", &got, err, sizeof err), TF_EINVAL);

    /* Ids keep counting. */
    tf_position q = long_btc();
    CU_ASSERT_EQUAL(tf_position_open(redis, prefix, &q, err, sizeof err), TF_OK);
    CU_ASSERT_STRING_EQUAL(q.id, "pos-2");
    CU_ASSERT_TRUE(q.opened_at > 1700000000000);
}

static void test_closed_by_other_client(void)
{
    new_prefix();
    char err[512];
    tf_position p = long_btc();
    CU_ASSERT_EQUAL_FATAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_OK);
    /* Another client (another connection) closes it first: ours is refused. */
    tf_redis_settings s = settings_for(port);
    tf_redis *other = tf_redis_create(&s, "other");
    tf_fill exit = tf_position_exit_fill(p.direction, &BTC_NOW);
    tf_position a;
    CU_ASSERT_EQUAL(tf_position_close(other, prefix, p.id, &exit, 0, &a, err, sizeof err), TF_OK);
    tf_position b;
    CU_ASSERT_EQUAL(tf_position_close(redis, prefix, p.id, &exit, 0, &b, err, sizeof err),
                    TF_ECONFLICT);
    tf_redis_destroy(other);
}

static void test_open_invalid(void)
{
    new_prefix();
    char err[512];
    tf_position p = long_btc();
    snprintf(p.symbol, sizeof p.symbol, "B:TC");
    CU_ASSERT_EQUAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "symbol"));
    p = long_btc();
    p.size = 0;
    CU_ASSERT_EQUAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "size"));
    p = long_btc();
    snprintf(p.krw_exchange, sizeof p.krw_exchange, "bit humb");
    CU_ASSERT_EQUAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_EINVAL);
    p = long_btc();
    p.entry.usdkrw = 0;
    CU_ASSERT_EQUAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "usdkrw"));
    p = long_btc();
    p.direction = (tf_direction)7;
    CU_ASSERT_EQUAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_EINVAL);
    /* Nothing was written, not even an id. */
    char seq[128];
    snprintf(seq, sizeof seq, "%s:positions:seq", prefix);
    redisReply *r = tft_redis_cmd(port, "EXISTS %s", seq);
    CU_ASSERT_EQUAL(r ? r->integer : -1, 0);
    if (r)
        freeReplyObject(r);
}

static void test_list(void)
{
    new_prefix();
    char err[512];
    for (int i = 0; i < 11; i++) {
        tf_position p = long_btc();
        CU_ASSERT_EQUAL_FATAL(tf_position_open(redis, prefix, &p, err, sizeof err), TF_OK);
    }
    tf_fill exit = tf_position_exit_fill(TF_DIRECTION_LONG_KRW, &BTC_NOW);
    tf_position c;
    CU_ASSERT_EQUAL(tf_position_close(redis, prefix, "pos-3", &exit, 0, &c, err, sizeof err),
                    TF_OK);
    /* A live value (as the redis sink writes it) and a malformed hash. */
    set_key("position:pos-2:live", "{\"kind\":\"position_live\",\"id\":\"pos-2\","
                                   "\"pnl_krw\":1234.5,\"stale\":false}");
    char key[128];
    snprintf(key, sizeof key, "%s:position:pos-11", prefix);
    redisReply *r = tft_redis_cmd(port, "HSET %s size nope", key);
    if (r)
        freeReplyObject(r);

    tf_position *ps = NULL;
    size_t n = 0;
    tf_diag *warnings = tf_diag_create();
    CU_ASSERT_EQUAL_FATAL(
        tf_position_list(redis, prefix, false, &ps, &n, warnings, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL_FATAL(n, 9); /* 11 opened, pos-3 closed, pos-11 malformed */
    CU_ASSERT_STRING_EQUAL(ps[0].id, "pos-1");
    CU_ASSERT_STRING_EQUAL(ps[1].id, "pos-2");
    CU_ASSERT_STRING_EQUAL(ps[2].id, "pos-4");
    CU_ASSERT_STRING_EQUAL(ps[8].id, "pos-10"); /* by number, not text */
    CU_ASSERT_EQUAL(tf_diag_count(warnings), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(tf_diag_message(warnings, 0), "pos-11"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tf_diag_message(warnings, 0), "size"));

    json_t *live[9];
    CU_ASSERT_EQUAL(tf_position_live(redis, prefix, ps, n, live), TF_OK);
    CU_ASSERT_PTR_NULL(live[0]);
    CU_ASSERT_PTR_NOT_NULL(live[1]);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(live[1], "pnl_krw")), 1234.5);
    for (size_t i = 0; i < n; i++)
        json_decref(live[i]);
    free(ps);

    /* --all: the closed one too; the :live key is not a position. */
    CU_ASSERT_EQUAL_FATAL(tf_position_list(redis, prefix, true, &ps, &n, NULL, err, sizeof err),
                          TF_OK);
    CU_ASSERT_EQUAL_FATAL(n, 10);
    CU_ASSERT_STRING_EQUAL(ps[2].id, "pos-3");
    CU_ASSERT_FALSE(ps[2].open);
    assert_close(ps[2].realized_pnl_krw, 463478.45);
    CU_ASSERT_STRING_EQUAL(ps[9].id, "pos-10");
    free(ps);
    tf_diag_destroy(warnings);

    /* An empty store. */
    new_prefix();
    CU_ASSERT_EQUAL(tf_position_list(redis, prefix, false, &ps, &n, NULL, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(ps);
}

static void test_book(void)
{
    new_prefix();
    char err[512];
    tf_book b;
    CU_ASSERT_EQUAL(
        tf_position_book(redis, prefix, "bithumb", "binance", "BTC", &b, err, sizeof err),
        TF_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":premium:bithumb:binance:BTC"));
    set_key("premium:bithumb:binance:BTC",
            "{\"kind\":\"premium\",\"symbol\":\"BTC\",\"krw_bid\":137900000,\"krw_ask\":137950000,"
            "\"global_bid\":95050.0,\"global_ask\":95100.0,\"usdkrw\":1403.0,\"stale\":false,"
            "\"v\":1}");
    CU_ASSERT_EQUAL_FATAL(
        tf_position_book(redis, prefix, "bithumb", "binance", "BTC", &b, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(b.krw_bid, 137900000);
    CU_ASSERT_EQUAL(b.krw_ask, 137950000);
    CU_ASSERT_EQUAL(b.global_bid, 95050.0);
    CU_ASSERT_EQUAL(b.global_ask, 95100.0);
    CU_ASSERT_EQUAL(b.usdkrw, 1403.0);
    set_key("premium:bithumb:binance:BTC",
            "{\"krw_bid\":137900000,\"krw_ask\":137950000,\"global_bid\":95050.0,"
            "\"global_ask\":95100.0,\"usdkrw\":1403.0,\"stale\":true,\"stale_reason\":\"skew\"}");
    CU_ASSERT_EQUAL(
        tf_position_book(redis, prefix, "bithumb", "binance", "BTC", &b, err, sizeof err),
        TF_EVALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "stale"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "skew"));
    /* Suspect (outside the premium band): never an entry or exit price. */
    set_key("premium:bithumb:binance:BTC",
            "{\"krw_bid\":1379000000,\"krw_ask\":1379500000,\"global_bid\":95050.0,"
            "\"global_ask\":95100.0,\"usdkrw\":1403.0,\"stale\":false,\"suspect\":true,"
            "\"suspect_reason\":\"premium_pct\"}");
    CU_ASSERT_EQUAL(
        tf_position_book(redis, prefix, "bithumb", "binance", "BTC", &b, err, sizeof err),
        TF_EVALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "suspect"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "premium_pct"));
    set_key("premium:bithumb:binance:BTC",
            "{\"krw_ask\":137950000,\"global_bid\":95050.0,\"global_ask\":95100.0,"
            "\"usdkrw\":1403.0,\"stale\":false}");
    CU_ASSERT_EQUAL(
        tf_position_book(redis, prefix, "bithumb", "binance", "BTC", &b, err, sizeof err),
        TF_EVALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "krw_bid"));
}

static void test_redis_down(void)
{
    new_prefix();
    tf_redis_settings s = settings_for(tft_free_port());
    tf_redis *down = tf_redis_create(&s, "down");
    char err[512];
    tf_position p = long_btc();
    CU_ASSERT_EQUAL(tf_position_open(down, prefix, &p, err, sizeof err), TF_EREDIS);
    tf_position *ps = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(tf_position_list(down, prefix, false, &ps, &n, NULL, err, sizeof err),
                    TF_EREDIS);
    CU_ASSERT_EQUAL(tf_position_get(down, prefix, "pos-1", &p, err, sizeof err), TF_EREDIS);
    tf_redis_destroy(down);
}

static void test_json(void)
{
    tf_position p = long_btc();
    snprintf(p.id, sizeof p.id, "pos-7");
    p.opened_at = 1795428900000;
    p.open = true;
    json_t *j = tf_position_to_json(&p);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "id")), "pos-7");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "open");
    CU_ASSERT_EQUAL(json_real_value(json_object_get(j, "entry_global_price")), 95012.30);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "opened_at")), 1795428900000);
    CU_ASSERT_PTR_NULL(json_object_get(j, "closed_at"));
    json_decref(j);
}

/* The JSON requests the HTTP API sends through the host table. */
static void test_json_requests(void)
{
    new_prefix();
    char err[512];
    json_t *out = NULL;
    json_t *req = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f}", "symbol", "btc", "direction",
                            "long_krw_short_global", "size", 0.5, "krw_price", 136850000.0,
                            "global_price", 95012.30, "usdkrw", 1402.5);
    CU_ASSERT_EQUAL_FATAL(tf_position_open_json(redis, prefix, req, &out, err, sizeof err), TF_OK);
    json_decref(req);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "id")), "pos-1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "symbol")), "BTC");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "krw_exchange")), "bithumb");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "global_exchange")), "binance");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "status")), "open");
    json_decref(out);

    /* Refusals name the field. */
    const char *bad[][2] = {
        {"{\"direction\":\"long_krw_short_global\",\"size\":1}", "symbol: expected a string"},
        {"{\"symbol\":\"BTC\",\"direction\":\"up\",\"size\":1}", "direction: expected"},
        {"{\"symbol\":\"BTC\",\"direction\":\"long_krw_short_global\"}", "size: expected"},
        {"{\"symbol\":\"BTC\",\"direction\":\"long_krw_short_global\",\"size\":\"1\"}",
         "size: expected a number > 0, found a string"},
        {"{\"symbol\":\"BTC\",\"direction\":\"long_krw_short_global\",\"size\":1,"
         "\"krw_price\":1}",
         "expected krw_price, global_price and usdkrw together"},
        {"{\"symbol\":\"BTC\",\"direction\":\"long_krw_short_global\",\"size\":1,"
         "\"krw_prics\":1}",
         "krw_prics: expected one of"},
        {"[1]", "body: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = json_loads(bad[i][0], 0, NULL);
        err[0] = '\0';
        CU_ASSERT_EQUAL(tf_position_open_json(redis, prefix, r, &out, err, sizeof err), TF_EINVAL);
        CU_ASSERT_PTR_NULL(out);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "\n  case %zu: expected \"%s\" in \"%s\"\n", i, bad[i][1], err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i][1]));
        json_decref(r);
    }

    /* Without prices: no premium in Redis is "no fresh data"; then the executable prices. */
    req = json_pack("{s:s, s:s, s:f}", "symbol", "BTC", "direction", "short_krw_long_global",
                    "size", 0.1);
    CU_ASSERT_EQUAL(tf_position_open_json(redis, prefix, req, &out, err, sizeof err), TF_EVALUE);
    set_key("premium:bithumb:binance:BTC",
            "{\"krw_bid\":137900000,\"krw_ask\":137950000,\"global_bid\":95050.0,"
            "\"global_ask\":95100.0,\"usdkrw\":1403.0,\"stale\":false}");
    CU_ASSERT_EQUAL_FATAL(tf_position_open_json(redis, prefix, req, &out, err, sizeof err), TF_OK);
    json_decref(req);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(out, "entry_krw_price")), 137900000);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(out, "entry_global_price")), 95100.0);
    json_decref(out);

    /* get and list carry the live value when the sink holds one. */
    set_key("position:pos-1:live", "{\"pnl_krw\":1.5}");
    CU_ASSERT_EQUAL_FATAL(tf_position_get_json(redis, prefix, "pos-1", &out), TF_OK);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(json_object_get(out, "live"), "pnl_krw")), 1.5);
    json_decref(out);
    CU_ASSERT_EQUAL(tf_position_get_json(redis, prefix, "pos-77", &out), TF_ENOTFOUND);
    CU_ASSERT_EQUAL(tf_position_get_json(redis, prefix, "77", &out), TF_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(tf_position_list_json(redis, prefix, false, &out), TF_OK);
    CU_ASSERT_EQUAL(json_array_size(out), 2);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(json_array_get(out, 0), "live"));
    CU_ASSERT_PTR_NULL(json_object_get(json_array_get(out, 1), "live"));
    json_decref(out);

    /* close: at the body's prices, then refused as already closed; unknown ids not found. */
    json_t *fill = json_pack("{s:f, s:f, s:f}", "krw_price", 137900000.0, "global_price", 95100.0,
                             "usdkrw", 1403.0);
    CU_ASSERT_EQUAL_FATAL(
        tf_position_close_json(redis, prefix, "pos-1", fill, &out, err, sizeof err), TF_OK);
    assert_close(json_real_value(json_object_get(out, "realized_pnl_krw")), 463478.45);
    json_decref(out);
    CU_ASSERT_EQUAL(tf_position_close_json(redis, prefix, "pos-1", fill, &out, err, sizeof err),
                    TF_ECONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected an open position"));
    /* A malformed request is a bad request (the API's 400), whatever the position's state:
     * only a well-formed close of a closed position is a conflict (409). */
    json_t *malformed = json_pack("{s:f, s:f, s:f, s:b}", "krw_price", 1.0, "global_price", 1.0,
                                  "usdkrw", 1.0, "krw_prics", 1);
    CU_ASSERT_EQUAL(
        tf_position_close_json(redis, prefix, "pos-1", malformed, &out, err, sizeof err),
        TF_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "krw_prics"));
    json_decref(malformed);
    malformed = json_pack("{s:f}", "krw_price", 1.0);
    CU_ASSERT_EQUAL(
        tf_position_close_json(redis, prefix, "pos-1", malformed, &out, err, sizeof err),
        TF_EINVAL);
    json_decref(malformed);
    CU_ASSERT_EQUAL(tf_position_close_json(redis, prefix, "pos-9", fill, &out, err, sizeof err),
                    TF_ENOTFOUND);
    CU_ASSERT_EQUAL(tf_position_close_json(redis, prefix, "x", fill, &out, err, sizeof err),
                    TF_ENOTFOUND);
    json_decref(fill);
    /* pos-2 (short) at the premium's exit side: krw_ask / global_bid. */
    CU_ASSERT_EQUAL_FATAL(
        tf_position_close_json(redis, prefix, "pos-2", NULL, &out, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(out, "exit_krw_price")), 137950000);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(out, "exit_global_price")), 95050.0);
    json_decref(out);
    CU_ASSERT_EQUAL_FATAL(tf_position_list_json(redis, prefix, true, &out), TF_OK);
    CU_ASSERT_EQUAL(json_array_size(out), 2);
    json_decref(out);
}

static int suite_init(void)
{
    port = tft_shared_redis_port();
    if (port <= 0)
        return 1;
    tf_redis_settings s = settings_for(port);
    redis = tf_redis_create(&s, "test");
    return redis ? 0 : 1;
}

static int suite_cleanup(void)
{
    tf_redis_destroy(redis);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"entry and exit fills", test_fills},
        {"premium", test_premium},
        {"PnL long_krw_short_global", test_pnl_long},
        {"PnL short_krw_long_global", test_pnl_short},
        {"PnL of invalid inputs", test_pnl_invalid},
        {"direction names and ids", test_names},
        {"open, get, close, close again", test_lifecycle},
        {"closed by another client: refused", test_closed_by_other_client},
        {"open refuses invalid fields", test_open_invalid},
        {"list open and all, live values", test_list},
        {"premium book from Redis", test_book},
        {"Redis down", test_redis_down},
        {"JSON", test_json},
        {"JSON requests (the HTTP API)", test_json_requests},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("positions", tests, suite_init, suite_cleanup);
}
