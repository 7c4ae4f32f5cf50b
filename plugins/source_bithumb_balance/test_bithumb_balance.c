/*
 * bithumb_balance: the v1 Api-Sign against one computed independently by the openssl CLI, then
 * the plugin live against the fake exchange's signed /info/balance (good key pair, wrong
 * secret, wrong key).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "sign.h"
#include "tf_fake.h"
#include "tf_metrics.h"
#include "tf_plugin_harness.h"
#include "tf_record.h"
#include "tf_test.h"

#define PLUGIN "bithumb_balance"
#define KEY    "bb-test-key-0123456789"
#define SECRET "bb-test-secret-abcdefghijklmnopqrstuvwxyz"

static tft_fake *fake;

static double errors_of(const char *cls)
{
    return tfh_errors("harness", PLUGIN, cls);
}

static tfh *open_with(const char *key, const char *secret, const char *extra)
{
    char with[512];
    setenv("TFT_BB_KEY", key, 1);
    setenv("TFT_BB_SECRET", secret, 1);
    snprintf(with, sizeof with,
             "{base_url: '%s', api_key: '${TFT_BB_KEY}', api_secret: '${TFT_BB_SECRET}'%s%s}",
             fake->base, extra ? ", " : "", extra ? extra : "");
    return tfh_open("source", PLUGIN, with, NULL);
}

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

static void test_sign_vector_openssl_cli(void)
{
    /* endpoint NUL form NUL nonce, exactly as the plugin signs it. */
    static const char msg[] = "/info/balance\0order_currency=ALL&payment_currency=KRW&endpoint="
                              "%2Finfo%2Fbalance\0"
                              "1700000000123";
    size_t len = sizeof msg - 1;
    char *dir = tft_mkdtemp();
    char path[512];
    char cmd[1024];
    snprintf(path, sizeof path, "%s/msg.bin", dir);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(msg, 1, len, f), len);
    fclose(f);
    /* The hex digest as text, then base64 of that text (Bithumb v1). */
    snprintf(cmd, sizeof cmd,
             "openssl dgst -sha512 -hmac '%s' -r < '%s' | cut -d' ' -f1 | tr -d '\\n' | base64 -w0",
             SECRET, path);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char expected[512] = "";
    size_t n = fread(expected, 1, sizeof expected - 1, p);
    expected[n] = '\0';
    CU_ASSERT_EQUAL(pclose(p), 0);
    CU_ASSERT_EQUAL(strlen(expected), TF_SIGN_SHA512_B64 - 1);
    char sig[TF_SIGN_SHA512_B64];
    CU_ASSERT_EQUAL(sign_bithumb_v1(SECRET, msg, len, sig, sizeof sig), 0);
    CU_ASSERT_STRING_EQUAL(sig, expected);
    char small[100];
    CU_ASSERT_EQUAL(sign_bithumb_v1(SECRET, msg, len, small, sizeof small), -1);
    tft_rmdir(dir);
    free(dir);
}

/* ---- live ---- */

static void assert_krw_btc(const tf_batch *b, int64_t t0, int64_t t1)
{
    tf_record *krw = tfh_find(b, "balance", "currency", "KRW");
    CU_ASSERT_PTR_NOT_NULL_FATAL(krw);
    CU_ASSERT_STRING_EQUAL(tfh_string(krw, "exchange"), "bithumb");
    CU_ASSERT_EQUAL(tfh_double(krw, "total"), 1000000.0);
    CU_ASSERT_EQUAL(tfh_double(krw, "available"), 750000.0);
    CU_ASSERT_EQUAL(tfh_double(krw, "in_use"), 250000.0);
    CU_ASSERT_TRUE(tfh_int(krw, "ts") >= t0 && tfh_int(krw, "ts") <= t1);
    tf_record *btc = tfh_find(b, "balance", "currency", "BTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(btc);
    CU_ASSERT_EQUAL(tfh_double(btc, "total"), 0.5);
    CU_ASSERT_EQUAL(tfh_double(btc, "available"), 0.4);
    CU_ASSERT_EQUAL(tfh_double(btc, "in_use"), 0.1);
}

static void test_good_key(void)
{
    tfh *h = open_with(KEY, SECRET, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    tf_batch *b = tf_batch_create();
    int64_t t0 = tf_now_ms();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    int64_t t1 = tf_now_ms();
    CU_ASSERT_EQUAL(tf_batch_count(b), 2); /* ETH is zero: left out */
    assert_krw_btc(b, t0, t1);
    CU_ASSERT_PTR_NULL(tfh_find(b, "balance", "currency", "ETH"));
    tf_batch_destroy(b);
    tfh_close(h);

    h = open_with(KEY, SECRET, "include_zero: true");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    b = tf_batch_create();
    CU_ASSERT_EQUAL(tfh_collect(h, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(b), 3);
    tf_record *eth = tfh_find(b, "balance", "currency", "ETH");
    CU_ASSERT_PTR_NOT_NULL(eth);
    CU_ASSERT_EQUAL(tfh_double(eth, "total"), 0.0);
    tf_batch_destroy(b);
    tfh_close(h);
}

static void expect_refused(const char *key, const char *secret, const char *code)
{
    char *dir = tft_mkdtemp();
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    tfh *h = open_with(key, secret, NULL);
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
    expect_refused(KEY, "not-the-secret-0123456789", "Bithumb error 5100");
}

static void test_wrong_key(void)
{
    expect_refused("not-the-key-0123456789", SECRET, "Bithumb error 5300");
}

static void test_options(void)
{
    char msg[1024];
    char with[256];
    snprintf(with, sizeof with, "{base_url: '%s', api_secret: 'in-the-file'}", fake->base);
    CU_ASSERT_TRUE(tfh_rejects("source", PLUGIN, with, msg, sizeof msg));
    snprintf(with, sizeof with, "{base_url: '%s', currency: 'BTC/KRW'}", fake->base);
    tfh *h = tfh_open("source", PLUGIN, with, NULL);
    CU_ASSERT_PTR_NULL(h);
    tfh_close(h);
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
        {"Api-Sign vs openssl CLI", test_sign_vector_openssl_cli},
        {"good key pair", test_good_key},
        {"wrong secret: 5100", test_wrong_secret},
        {"wrong key: 5300", test_wrong_key},
        {"options validated", test_options},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite(PLUGIN, tests, suite_init, suite_clean);
}
