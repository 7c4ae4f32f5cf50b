/*
 * Tests of the `positions` transform against a real redis-server: position hashes written
 * the way the store writes them, premium records fed through the real plugin, and the
 * position_live records checked field by field with the PnL worked out here independently.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define PLUGIN "positions"
#define TS     1795428930000LL

static int port;
static char prefix[64];

/* A fresh key prefix per test so the tests never see each other's positions. */
static void new_prefix(void)
{
    static int n;
    snprintf(prefix, sizeof prefix, "tfpt%d-%d", (int)getpid(), ++n);
}

static tfh *open_transform(int redis_port, const char *with)
{
    char runtime[256];
    snprintf(runtime, sizeof runtime, "redis: {url: 'redis://127.0.0.1:%d', prefix: '%s'}\n",
             redis_port, prefix);
    return tfh_open("transform", PLUGIN, with, runtime);
}

static void run_cmd(redisReply *reply)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(reply);
    CU_ASSERT_NOT_EQUAL(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
}

/* Writes an open position hash and adds it to the open set, as tf_position_open does. */
static void put_position(int p, const char *id, const char *symbol, const char *direction,
                         const char *size, double entry_krw, double entry_global,
                         double entry_usdkrw)
{
    char key[128], set[128], premium[64], krw[32], global[32], rate[32];
    snprintf(key, sizeof key, "%s:position:%s", prefix, id);
    snprintf(set, sizeof set, "%s:positions:open", prefix);
    snprintf(premium, sizeof premium, "%.17g",
             (entry_krw / (entry_global * entry_usdkrw) - 1.0) * 100.0);
    snprintf(krw, sizeof krw, "%.17g", entry_krw);
    snprintf(global, sizeof global, "%.17g", entry_global);
    snprintf(rate, sizeof rate, "%.17g", entry_usdkrw);
    run_cmd(tft_redis_cmd(p,
                          "HSET %s id %s symbol %s krw_exchange bithumb global_exchange "
                          "binance direction %s size %s entry_premium_pct %s entry_krw_price "
                          "%s entry_global_price %s entry_usdkrw %s opened_at 1795428900000 "
                          "status open",
                          key, id, symbol, direction, size, premium, krw, global, rate));
    run_cmd(tft_redis_cmd(p, "SADD %s %s", set, id));
}

static void close_position(int p, const char *id)
{
    char key[128], set[128];
    snprintf(key, sizeof key, "%s:position:%s", prefix, id);
    snprintf(set, sizeof set, "%s:positions:open", prefix);
    run_cmd(tft_redis_cmd(p, "HSET %s status closed closed_at 1795429000000", key));
    run_cmd(tft_redis_cmd(p, "SREM %s %s", set, id));
}

typedef struct book {
    const char *symbol;
    const char *krw_exchange;
    double krw_bid, krw_ask, global_bid, global_ask, usdkrw;
    bool stale;
    bool suspect;
} book;

static void add_premium(tf_batch *b, const book *k)
{
    tf_record *r = tf_record_new(b, "premium");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    tf_record_set_string(r, "symbol", k->symbol);
    tf_record_set_string(r, "krw_exchange", k->krw_exchange ? k->krw_exchange : "bithumb");
    tf_record_set_string(r, "global_exchange", "binance");
    tf_record_set_double(r, "premium_pct", 2.5);
    if (k->krw_bid > 0)
        tf_record_set_double(r, "krw_bid", k->krw_bid);
    tf_record_set_double(r, "krw_ask", k->krw_ask);
    tf_record_set_double(r, "global_bid", k->global_bid);
    tf_record_set_double(r, "global_ask", k->global_ask);
    tf_record_set_double(r, "usdkrw", k->usdkrw);
    tf_record_set_bool(r, "stale", k->stale);
    tf_record_set_bool(r, "suspect", k->suspect);
    tf_record_set_ts(r, "ts", TS);
}

static const book BTC = {"BTC",    NULL,   137900000, 137950000, 95050.00,
                         95100.00, 1403.0, false,     false};
static const book ETH = {"ETH", NULL, 4967000, 4968000, 3525.10, 3525.30, 1403.0, false, false};

static size_t count_kind(const tf_batch *b, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < tf_batch_count(b); i++)
        n += strcmp(tf_record_kind(tf_batch_at(b, i)), kind) == 0;
    return n;
}

static bool interest_has(tfh *h, const char *symbol)
{
    json_t *arr = tfh_interest(h);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) found = found || strcmp(json_string_value(v), symbol) == 0;
    json_decref(arr);
    return found;
}

static size_t interest_size(tfh *h)
{
    json_t *arr = tfh_interest(h);
    size_t n = json_array_size(arr);
    json_decref(arr);
    return n;
}

static void assert_close(double got, double want)
{
    CU_ASSERT_DOUBLE_EQUAL(got, want, fabs(want) * 1e-12 + 1e-9);
    if (fabs(got - want) > fabs(want) * 1e-12 + 1e-9)
        fprintf(stderr, "\n  got %.17g, want %.17g\n", got, want);
}

/* ---- tests ---- */

static void test_live_both_directions(void)
{
    new_prefix();
    /* Long BTC: entered at krw_ask 136850000 / global_bid 95012.30 with USD/KRW 1402.5. */
    put_position(port, "pos-1", "BTC", "long_krw_short_global", "0.5", 136850000, 95012.30, 1402.5);
    /* Short ETH: entered at krw_bid 4960000 / global_ask 3530.00 with USD/KRW 1402.0. */
    put_position(port, "pos-2", "ETH", "short_krw_long_global", "2", 4960000, 3530.00, 1402.0);
    tfh *h = open_transform(port, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_premium(b, &BTC);
    add_premium(b, &ETH);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 4);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 2);

    tf_record *l = tfh_find(b, "position_live", "id", "pos-1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(tfh_string(l, "symbol"), "BTC");
    CU_ASSERT_STRING_EQUAL(tfh_string(l, "krw_exchange"), "bithumb");
    CU_ASSERT_STRING_EQUAL(tfh_string(l, "global_exchange"), "binance");
    CU_ASSERT_STRING_EQUAL(tfh_string(l, "direction"), "long_krw_short_global");
    CU_ASSERT_EQUAL(tfh_double(l, "size"), 0.5);
    double entry = (136850000.0 / (95012.30 * 1402.5) - 1.0) * 100.0;
    assert_close(tfh_double(l, "entry_premium_pct"), entry);
    /* Long exits at krw_bid 137900000 and global_ask 95100.00, USD/KRW 1403.0. */
    double now = (137900000.0 / (95100.00 * 1403.0) - 1.0) * 100.0;
    assert_close(tfh_double(l, "current_premium_pct"), now);
    assert_close(tfh_double(l, "pnl_pct_points"), now - entry);
    /* 0.5 * 1050000 = 525000 on the KRW leg; 0.5 * (95012.30 - 95100) * 1403 = -61521.55. */
    assert_close(tfh_double(l, "pnl_krw"), 463478.45);
    bool stale = true;
    CU_ASSERT_EQUAL(tf_record_get_bool(l, "stale", &stale), TF_OK);
    CU_ASSERT_FALSE(stale);
    CU_ASSERT_EQUAL(tfh_int(l, "ts"), TS);
    CU_ASSERT_EQUAL(tf_record_field_count(l), 12);

    l = tfh_find(b, "position_live", "id", "pos-2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(tfh_string(l, "symbol"), "ETH");
    CU_ASSERT_STRING_EQUAL(tfh_string(l, "direction"), "short_krw_long_global");
    CU_ASSERT_EQUAL(tfh_double(l, "size"), 2.0);
    entry = (4960000.0 / (3530.00 * 1402.0) - 1.0) * 100.0;
    assert_close(tfh_double(l, "entry_premium_pct"), entry);
    /* Short exits at krw_ask 4968000 and global_bid 3525.10, and gains when the premium falls. */
    now = (4968000.0 / (3525.10 * 1403.0) - 1.0) * 100.0;
    assert_close(tfh_double(l, "current_premium_pct"), now);
    assert_close(tfh_double(l, "pnl_pct_points"), entry - now);
    /* 2 * (4960000 - 4968000) = -16000; 2 * (3525.10 - 3530.00) * 1403 = -13749.4. */
    assert_close(tfh_double(l, "pnl_krw"), -29749.4);

    CU_ASSERT_TRUE(interest_has(h, "BTC"));
    CU_ASSERT_TRUE(interest_has(h, "ETH"));
    CU_ASSERT_EQUAL(interest_size(h), 2);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_no_premium_no_live(void)
{
    new_prefix();
    put_position(port, "pos-1", "BTC", "long_krw_short_global", "0.5", 136850000, 95012.30, 1402.5);
    tfh *h = open_transform(port, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    /* Nothing at all, another symbol, another exchange pair, a premium without krw_bid. */
    tf_batch *b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 0);
    add_premium(b, &ETH);
    book upbit = BTC;
    upbit.krw_exchange = "upbit";
    add_premium(b, &upbit);
    book no_bid = BTC;
    no_bid.krw_bid = 0;
    add_premium(b, &no_bid);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 0);
    CU_ASSERT_EQUAL(tf_batch_count(b), 3);
    /* The symbol is still wanted from the sources. */
    CU_ASSERT_TRUE(interest_has(h, "BTC"));
    /* A stale premium gives a live record flagged stale. */
    tf_batch_clear(b);
    book stale = BTC;
    stale.stale = true;
    add_premium(b, &stale);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    tf_record *l = tfh_find(b, "position_live", "id", "pos-1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    bool flag = false;
    CU_ASSERT_EQUAL(tf_record_get_bool(l, "stale", &flag), TF_OK);
    CU_ASSERT_TRUE(flag);
    /* A suspect premium (outside the premium band) prices nothing: no live record. */
    tf_batch_clear(b);
    book suspect = BTC;
    suspect.krw_bid *= 10;
    suspect.krw_ask *= 10;
    suspect.suspect = true;
    add_premium(b, &suspect);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 0);
    tf_batch_destroy(b);
    tfh_close(h);
}

typedef struct poll_ctx {
    tfh *h;
    const char *gone; /* the id whose live record must be absent */
    const char *kept; /* the id whose live record must be present (or NULL) */
} poll_ctx;

/* One tick with both premiums; true once `gone` no longer produces a live record. */
static bool tick_without(void *arg)
{
    poll_ctx *c = arg;
    tf_batch *b = tf_batch_create();
    add_premium(b, &BTC);
    add_premium(b, &ETH);
    tfh_process(c->h, b);
    bool done = !tfh_find(b, "position_live", "id", c->gone) &&
                (!c->kept || tfh_find(b, "position_live", "id", c->kept));
    tf_batch_destroy(b);
    return done;
}

static void test_close_disappears(void)
{
    new_prefix();
    put_position(port, "pos-1", "BTC", "long_krw_short_global", "0.5", 136850000, 95012.30, 1402.5);
    put_position(port, "pos-2", "ETH", "short_krw_long_global", "2", 4960000, 3530.00, 1402.0);
    tfh *h = open_transform(port, "{refresh: 50ms}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    poll_ctx none = {h, "pos-9", "pos-1"};
    CU_ASSERT_TRUE(tick_without(&none));
    CU_ASSERT_EQUAL(interest_size(h), 2);

    close_position(port, "pos-1");
    poll_ctx c = {h, "pos-1", "pos-2"};
    CU_ASSERT_TRUE(tft_wait_until(tick_without, &c, 5000));
    CU_ASSERT_FALSE(interest_has(h, "BTC"));
    CU_ASSERT_TRUE(interest_has(h, "ETH"));

    close_position(port, "pos-2");
    poll_ctx c2 = {h, "pos-2", NULL};
    CU_ASSERT_TRUE(tft_wait_until(tick_without, &c2, 5000));
    CU_ASSERT_EQUAL(interest_size(h), 0);
    tfh_close(h);
}

static void test_malformed_hash_skipped(void)
{
    new_prefix();
    put_position(port, "pos-1", "BTC", "long_krw_short_global", "abc", 136850000, 95012.30, 1402.5);
    put_position(port, "pos-2", "ETH", "sideways", "2", 4960000, 3530.00, 1402.0);
    put_position(port, "pos-3", "BTC", "short_krw_long_global", "0.1", 137000000, 95000.00, 1402.0);
    char set[128];
    snprintf(set, sizeof set, "%s:positions:open", prefix);
    run_cmd(tft_redis_cmd(port, "SADD %s pos-77 not-an-id", set)); /* no hash, bad id */
    tfh *h = open_transform(port, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_premium(b, &BTC);
    add_premium(b, &ETH);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 1);
    tf_record *l = tfh_find(b, "position_live", "id", "pos-3");
    CU_ASSERT_PTR_NOT_NULL(l);
    /* 0.1 * (137000000 - 137950000) + 0.1 * (95050 - 95000) * 1403 = -95000 + 7015. */
    assert_close(tfh_double(l, "pnl_krw"), -87985.0);
    CU_ASSERT_EQUAL(interest_size(h), 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void test_redis_down_keeps_positions(void)
{
    new_prefix();
    tft_redis *own = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(own);
    put_position(own->port, "pos-1", "BTC", "long_krw_short_global", "0.5", 136850000, 95012.30,
                 1402.5);
    tfh *h = open_transform(own->port, "{refresh: 1ms}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_premium(b, &BTC);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 1);
    tft_redis_stop(own);
    /* The refresh fails, the positions loaded before still get their live PnL. */
    tft_sleep_ms(5); /* pacing: let the 1 ms refresh period pass */
    tf_batch_clear(b);
    add_premium(b, &BTC);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_EREDIS);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 1);
    CU_ASSERT_TRUE(interest_has(h, "BTC"));
    tf_batch_destroy(b);
    tfh_close(h);
    tft_redis_destroy(own);
}

static void test_options(void)
{
    new_prefix();
    /* No redis: section: init refuses. */
    CU_ASSERT_PTR_NULL(tfh_open("transform", PLUGIN, NULL, NULL));
    char msg[2048];
    CU_ASSERT_TRUE(tfh_rejects("transform", PLUGIN, "{refresh: soon}", msg, sizeof msg));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "refresh"));
    CU_ASSERT_TRUE(tfh_rejects("transform", PLUGIN, "{refersh: 1s}", msg, sizeof msg));
    CU_ASSERT_PTR_NULL(open_transform(port, "{refresh: 0ms}"));
    CU_ASSERT_PTR_NULL(open_transform(port, "{prefix: 'a b'}"));
    /* An explicit prefix wins over the runtime's. */
    put_position(port, "pos-1", "BTC", "long_krw_short_global", "0.5", 136850000, 95012.30, 1402.5);
    char with[128];
    snprintf(with, sizeof with, "{prefix: '%s'}", prefix);
    new_prefix(); /* the runtime's prefix: no positions there */
    tfh *h = open_transform(port, with);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    add_premium(b, &BTC);
    CU_ASSERT_EQUAL(tfh_process(h, b), TF_OK);
    CU_ASSERT_EQUAL(count_kind(b, "position_live"), 1);
    tf_batch_destroy(b);
    tfh_close(h);
}

int main(void)
{
    port = tft_shared_redis_port();
    if (port <= 0) {
        fprintf(stderr, "no redis-server available\n");
        return 1;
    }
    CU_TestInfo tests[] = {
        {"live PnL, both directions, exact fields", test_live_both_directions},
        {"no premium: no live record", test_no_premium_no_live},
        {"closed: gone from output and interest", test_close_disappears},
        {"malformed hashes skipped", test_malformed_hash_skipped},
        {"Redis down: keeps the loaded positions", test_redis_down_keeps_positions},
        {"options", test_options},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("positions transform", tests, NULL, NULL);
}
