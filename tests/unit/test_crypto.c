/*
 * tf_crypto: AES-256-GCM round trips, every altered byte of ciphertext, tag, nonce or
 * associated data rejected with the plaintext wiped, strict base64, and master-key parsing.
 */
#include <stdlib.h>
#include <string.h>

#include "tf_crypto.h"
#include "tf_log.h"
#include "tf_test.h"

static const unsigned char KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                      23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const char AAD[] = "tickflow-key-v1\0k1\0binance\0main";
static const char MSG[] = "{\"key\":\"abcd1234\",\"secret\":\"s3cr3t-value\"}";

typedef struct sealed {
    unsigned char nonce[TF_CRYPTO_NONCE_LEN];
    unsigned char ct[sizeof MSG];
    unsigned char tag[TF_CRYPTO_TAG_LEN];
} sealed;

static void seal(sealed *s)
{
    CU_ASSERT_EQUAL_FATAL(
        tf_crypto_seal(KEY, AAD, sizeof AAD - 1, MSG, sizeof MSG - 1, s->nonce, s->ct, s->tag),
        TF_OK);
}

static int open_it(const unsigned char *key, const char *aad, size_t aad_len, const sealed *s,
                   unsigned char *pt)
{
    return tf_crypto_open(key, aad, aad_len, s->nonce, s->ct, sizeof MSG - 1, s->tag, pt);
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i])
            return false;
    }
    return true;
}

static void test_round_trip(void)
{
    sealed a;
    sealed b;
    seal(&a);
    seal(&b);
    unsigned char pt[sizeof MSG] = {0};
    CU_ASSERT_EQUAL(open_it(KEY, AAD, sizeof AAD - 1, &a, pt), TF_OK);
    CU_ASSERT_EQUAL(memcmp(pt, MSG, sizeof MSG - 1), 0);
    /* A fresh nonce per message: the same plaintext never gives the same ciphertext. */
    CU_ASSERT_NOT_EQUAL(memcmp(a.nonce, b.nonce, sizeof a.nonce), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a.ct, b.ct, sizeof MSG - 1), 0);
    CU_ASSERT_EQUAL(memmem(a.ct, sizeof MSG - 1, "s3cr3t", 6), NULL);
}

/* Flips one bit in turn in every byte of `buf` and expects authentication to fail. */
static void flip_each(sealed *s, unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            unsigned char pt[sizeof MSG];
            memset(pt, 0xAA, sizeof pt);
            buf[i] ^= (unsigned char)(1u << bit);
            int rc = open_it(KEY, AAD, sizeof AAD - 1, s, pt);
            buf[i] ^= (unsigned char)(1u << bit);
            CU_ASSERT_EQUAL(rc, TF_EVALUE);
            CU_ASSERT(all_zero(pt, sizeof MSG - 1)); /* no unauthenticated byte escapes */
        }
    }
}

static void test_tamper(void)
{
    sealed s;
    seal(&s);
    flip_each(&s, s.ct, sizeof MSG - 1);
    flip_each(&s, s.tag, sizeof s.tag);
    flip_each(&s, s.nonce, sizeof s.nonce);
    unsigned char pt[sizeof MSG];
    /* The same entry under another name: the associated data differs. */
    static const char other[] = "tickflow-key-v1\0k1\0binance\0spare";
    CU_ASSERT_EQUAL(open_it(KEY, other, sizeof other - 1, &s, pt), TF_EVALUE);
    CU_ASSERT_EQUAL(open_it(KEY, AAD, sizeof AAD - 2, &s, pt), TF_EVALUE);
    /* Intact, it still opens: the flips above were all undone. */
    CU_ASSERT_EQUAL(open_it(KEY, AAD, sizeof AAD - 1, &s, pt), TF_OK);
}

static void test_wrong_key(void)
{
    sealed s;
    seal(&s);
    unsigned char other[32];
    memcpy(other, KEY, sizeof other);
    other[31] ^= 0x80;
    unsigned char pt[sizeof MSG];
    CU_ASSERT_EQUAL(open_it(other, AAD, sizeof AAD - 1, &s, pt), TF_EVALUE);
    CU_ASSERT(all_zero(pt, sizeof MSG - 1));
}

static void test_base64(void)
{
    char err[256];
    unsigned char *out = NULL;
    size_t len = 0;
    char *enc = tf_base64_encode("hello!?", 7);
    CU_ASSERT_STRING_EQUAL(enc, "aGVsbG8hPw==");
    CU_ASSERT_EQUAL(tf_base64_decode(enc, &out, &len, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(len, 7);
    CU_ASSERT_EQUAL(memcmp(out, "hello!?", 7), 0);
    free(out);
    free(enc);
    CU_ASSERT_EQUAL(tf_base64_decode("", &out, &len, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(len, 0);
    free(out);
    static const char *const bad[] = {
        "aGVsbG8hPw=",                    /* length */
        "aGVs bG8hPw=",                   /* space */
        "aGVsbG8hPx==",                   /* non-zero unused bits: not the canonical spelling */
        "aG=sbG8hPw==",                   /* padding inside */
        "aGVsbG8h\nPw==", "aGVsbG8-Pw==", /* URL alphabet */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(tf_base64_decode(bad[i], &out, &len, err, sizeof err), TF_EVALUE);
        CU_ASSERT_PTR_NULL(out);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid base64"));
    }
}

static void test_parse_key(void)
{
    unsigned char k[32];
    char err[256];
    CU_ASSERT_EQUAL(
        tf_crypto_parse_key("0102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F20", k,
                            err, sizeof err),
        0);
    CU_ASSERT_EQUAL(memcmp(k, KEY, 32), 0);
    char *b64 = tf_base64_encode(KEY, 32);
    memset(k, 0, sizeof k);
    CU_ASSERT_EQUAL(tf_crypto_parse_key(b64, k, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(k, KEY, 32), 0);
    free(b64);
    CU_ASSERT_EQUAL(tf_crypto_parse_key("00112233", k, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected a 256-bit key"));
    CU_ASSERT_EQUAL(tf_crypto_parse_key("aGVsbG8hPw==", k, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "base64 of 7 bytes"));
    CU_ASSERT_EQUAL(tf_crypto_parse_key("", k, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "an empty value"));
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"AES-256-GCM round trip, fresh nonce", test_round_trip},
        {"every flipped bit of ct, tag, nonce, and other AAD fail", test_tamper},
        {"wrong key fails and wipes the output", test_wrong_key},
        {"strict base64", test_base64},
        {"master key as hex or base64", test_parse_key},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("tf_crypto", tests, NULL, NULL);
}
