/*
 * binance_positions: the HMAC-SHA256 signature against Binance's documented worked example,
 * then the plugin live against the fake exchange's signed positionRisk (good key pair, wrong
 * secret, wrong key) and the reconciliation with the positions store.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "sign.h"
#include "tf_config.h"
#include "tf_fake.h"
#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_positions.h"
#include "tf_record.h"
#include "tf_redis.h"
#include "tf_test.h"

#define PLUGIN     "binance_positions"
#define KEY        "bp-test-key-0123456789"
#define SECRET     "bp-test-secret-abcdefghijklmnopqrstuvwxyz"
#define MASK_FIELD "Binance error"

static tft_fake *fake;

static double errors_of(const char *cls)
{
    return tfh_errors("harness", PLUGIN, cls);
}

/* Opens the plugin on the fake with the key pair from the environment (api_key/api_secret are
 * secrets: they must come from ${VAR}). */
static tfh *open_with(const char *key, const char *secret, const char *extra, const char *runtime)
{
    char with[512];
    setenv("TFT_BP_KEY", key, 1);
    setenv("TFT_BP_SECRET", secret, 1);
    snprintf(with, sizeof with,
             "{base_url: '%s', api_key: '${TFT_BP_KEY}', api_secret: '${TFT_BP_SECRET}'%s%s}",
             fake->base, extra ? ", " : "", extra ? extra : "");
    return tfh_open("source", PLUGIN, with, runtime);
}

/* Runs one tick with stderr captured into `log` (a path), for the messages. */
static int collect_logged(tfh *h, tf_batch *b, const char *log)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    int rc = tfh_collect(h, b);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

/* ---- signature ---- */

static void test_binance_doc_vector(void)
{
    /* Binance API docs, "SIGNED endpoint examples for POST /api/v3/order", HMAC example. */
    const char *secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const char *query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&"
                        "recvWindow=5000&timestamp=1499827319559";
    char sig[TF_SIGN_SHA256_HEX];
    CU_ASSERT_EQUAL(sign_hmac_sha256_hex(secret, query, strlen(query), sig, sizeof sig), 0);
    CU_ASSERT_STRING_EQUAL(sig, "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
    char small[64];
    CU_ASSERT_EQUAL(sign_hmac_sha256_hex(secret, query, strlen(query), small, sizeof small), -1);
}

/* ---- live ---- */

static void test_good_key(void)
{
    tfh *h = open_with(KEY, SECRET, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    int64_t t0 = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    int64_t t1 = tf_now_ms();
    CU_ASSERT_EQUAL(tf_batch_count(b), 3);
    tf_record *btc = tfh_find(b, "exchange_position", "symbol", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(btc);
    CU_ASSERT_STRING_EQUAL(tfh_string(btc, "exchange"), "binance");
    CU_ASSERT_STRING_EQUAL(tfh_string(btc, "quote"), "USDT");
    CU_ASSERT_EQUAL(tfh_double(btc, "position_amt"), 0.5);
    CU_ASSERT_EQUAL(tfh_double(btc, "entry_price"), 94000.0);
    CU_ASSERT_EQUAL(tfh_double(btc, "mark_price"), 95012.35);
    CU_ASSERT_EQUAL(tfh_double(btc, "unrealized_pnl"), 506.175);
    CU_ASSERT_STRING_EQUAL(tfh_string(btc, "side"), "long");
    CU_ASSERT_TRUE(tfh_int(btc, "ts") >= t0 && tfh_int(btc, "ts") <= t1);
    tf_record *eth = tfh_find(b, "exchange_position", "symbol", "ETH");
    CU_ASSERT_PTR_NOT_NULL_FATAL(eth);
    CU_ASSERT_EQUAL(tfh_double(eth, "position_amt"), 0.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "entry_price"), 0.0);
    CU_ASSERT_EQUAL(tfh_double(eth, "mark_price"), 3500.15);
    CU_ASSERT_STRING_EQUAL(tfh_string(eth, "side"), "flat");
    tf_record *sol = tfh_find(b, "exchange_position", "symbol", "SOL");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sol);
    CU_ASSERT_EQUAL(tfh_double(sol, "position_amt"), -10.0);
    CU_ASSERT_EQUAL(tfh_double(sol, "entry_price"), 180.5);
    CU_ASSERT_EQUAL(tfh_double(sol, "mark_price"), 175.25);
    CU_ASSERT_EQUAL(tfh_double(sol, "unrealized_pnl"), 52.5);
    CU_ASSERT_STRING_EQUAL(tfh_string(sol, "side"), "short");
    tf_batch_destroy(b);
    tfh_close(h);
}

/* A refused key pair: TF_EAPI with Binance's code in the message, counted, no record; the
 * secret never reaches the log. */
static void expect_refused(const char *key, const char *secret, const char *code)
{
    char *dir = tft_mkdtemp();
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    tfh *h = open_with(key, secret, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    double before = errors_of("api");
    CU_ASSERT_EQUAL(collect_logged(h, b, log), TF_EAPI);
    CU_ASSERT_EQUAL(tf_batch_count(b), 0);
    CU_ASSERT_EQUAL(errors_of("api"), before + 1);
    CU_ASSERT_EQUAL(tft_file_count(log, code), 1);
    CU_ASSERT_EQUAL(tft_file_count(log, secret), 0);
    tf_batch_destroy(b);
    tfh_close(h);
    tft_rmdir(dir);
    free(dir);
}

static void test_wrong_secret(void)
{
    expect_refused(KEY, "not-the-secret-0123456789", MASK_FIELD " -1022");
}

static void test_wrong_key(void)
{
    expect_refused("not-the-key-0123456789", SECRET, MASK_FIELD " -2015");
}

/* api_key needs api_secret; secrets never come from the file; recvWindow is capped at 60 s. */
static void test_no_keys_rejected(void)
{
    char msg[1024];
    setenv("TFT_BP_KEY", KEY, 1);
    char with[256];
    snprintf(with, sizeof with, "{base_url: '%s', api_key: '${TFT_BP_KEY}'}", fake->base);
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NULL(h); /* api_key without api_secret */
    tfh_close(h);
    snprintf(with, sizeof with, "{base_url: '%s', api_key: 'written-in-the-file'}", fake->base);
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, with, msg, sizeof msg));
    snprintf(with, sizeof with, "{base_url: '%s', recv_window: 61s}", fake->base);
    h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NULL(h);
    tfh_close(h);
}

/* ---- reconciliation ---- */

static int open_position(tf_redis *r, const char *prefix, const char *symbol)
{
    json_t *req = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f}", "symbol", symbol, "direction",
                            "long_krw_short_global", "size", 1.0, "krw_price", 5000000.0,
                            "global_price", 3500.0, "usdkrw", 1400.0);
    json_t *out = NULL;
    char err[256] = "";
    int rc = tf_position_open_json(r, prefix, req, &out, err, sizeof err);
    if (rc != TF_OK)
        fprintf(stderr, "open %s: %d %s\n", symbol, rc, err);
    json_decref(req);
    json_decref(out);
    return rc;
}

static void test_reconcile(void)
{
    int port = tft_shared_redis_port();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "bp%d", (int)getpid());
    tf_redis_settings rs = {.configured = true,
                            .host = "127.0.0.1",
                            .port = port,
                            .prefix = prefix,
                            .connect_timeout_ms = 500,
                            .command_timeout_ms = 1000};
    tf_redis *r = tf_redis_create(&rs, "test");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    /* ETH is flat on the fake exchange, BTC is held there. */
    CU_ASSERT_EQUAL_FATAL(open_position(r, prefix, "ETH"), TF_OK);
    CU_ASSERT_EQUAL_FATAL(open_position(r, prefix, "BTC"), TF_OK);
    char runtime[256];
    snprintf(runtime, sizeof runtime, "redis: {url: 'redis://127.0.0.1:%d/0', prefix: '%s'}\n",
             port, prefix);
    tfh *h = open_with(KEY, SECRET, "reconcile: true", runtime);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    for (int tick = 0; tick < 2; tick++) {
        tf_batch *b = tf_batch_create();
        double before = errors_of("value");
        CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
        CU_ASSERT_EQUAL(tf_batch_count(b), 4);
        tf_record *rec = tfh_find(b, "reconcile", NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL(rec);
        if (rec) {
            CU_ASSERT_STRING_EQUAL(tfh_string(rec, "symbol"), "ETH");
            CU_ASSERT_STRING_EQUAL(tfh_string(rec, "issue"), "open_in_store_flat_on_exchange");
            CU_ASSERT_PTR_NOT_NULL(tfh_string(rec, "id"));
        }
        /* Reported once per id: on the first tick only. */
        CU_ASSERT_EQUAL(errors_of("value"), before + (tick == 0 ? 1 : 0));
        tf_batch_destroy(b);
    }
    tfh_close(h);
    /* Without a redis: section, reconcile cannot work: refused at init. */
    CU_ASSERT_PTR_NULL(open_with(KEY, SECRET, "reconcile: true", NULL));
    tf_redis_destroy(r);
}

static int suite_init(void)
{
    static const char *const args[] = {"--api-key", KEY, "--api-secret", SECRET, NULL};
    fake = tft_fake_start(args);
    return fake ? 0 : -1;
}

static int suite_clean(void)
{
    tft_fake_stop(fake);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"binance doc vector", test_binance_doc_vector},
        {"good key pair", test_good_key},
        {"wrong secret: -1022", test_wrong_secret},
        {"wrong key: -2015", test_wrong_key},
        {"key options validated", test_no_keys_rejected},
        {"reconcile with the positions store", test_reconcile},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite(PLUGIN, tests, suite_init, suite_clean);
}
