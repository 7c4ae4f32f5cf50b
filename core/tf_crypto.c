/*
 * AES-256-GCM, base64 and master-key parsing over OpenSSL 3. Nothing here keeps state: every
 * call builds and frees its own EVP context, so the functions are safe from any thread.
 */
#include "tf_crypto.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tf_common.h"

void tf_crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_hex_key(const char *text, unsigned char key[TF_CRYPTO_KEY_LEN])
{
    for (size_t i = 0; i < TF_CRYPTO_KEY_LEN; i++) {
        int hi = hex_value(text[2 * i]);
        int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int tf_crypto_parse_key(const char *text, unsigned char key[TF_CRYPTO_KEY_LEN], char *err,
                        size_t err_size)
{
    size_t len = text ? strlen(text) : 0;
    if (len == 2 * TF_CRYPTO_KEY_LEN && parse_hex_key(text, key) == 0)
        return 0;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    char why[128];
    int rc = len ? tf_base64_decode(text, &raw, &raw_len, why, sizeof why) : TF_EVALUE;
    if (rc == TF_OK && raw_len == TF_CRYPTO_KEY_LEN) {
        memcpy(key, raw, TF_CRYPTO_KEY_LEN);
        tf_crypto_wipe(raw, raw_len);
        free(raw);
        return 0;
    }
    if (rc == TF_OK)
        snprintf(why, sizeof why, "base64 of %zu bytes", raw_len);
    else if (len == 0)
        snprintf(why, sizeof why, "an empty value");
    else
        snprintf(why, sizeof why, "%zu characters that are neither hex nor base64", len);
    snprintf(err, err_size,
             "expected a 256-bit key as 64 hex digits or base64 of 32 bytes (openssl rand "
             "-hex 32); found %s",
             why);
    tf_crypto_wipe(raw, raw_len);
    free(raw);
    return -1;
}

int tf_crypto_seal(const unsigned char key[TF_CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
                   const void *pt, size_t pt_len, unsigned char nonce[TF_CRYPTO_NONCE_LEN],
                   unsigned char *ct, unsigned char tag[TF_CRYPTO_TAG_LEN])
{
    int rc = TF_ERR;
    int n = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx || pt_len > INT_MAX || aad_len > INT_MAX)
        goto out;
    /* A GCM nonce must never repeat under one key: 96 random bits per entry keep the chance
     * negligible for the few thousand entries a store will ever hold (NIST SP 800-38D 8.2.2). */
    if (RAND_bytes(nonce, TF_CRYPTO_NONCE_LEN) != 1)
        goto out;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TF_CRYPTO_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto out;
    if (aad_len && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (pt_len && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)pt_len) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TF_CRYPTO_TAG_LEN, tag) != 1)
        goto out;
    rc = TF_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int tf_crypto_open(const unsigned char key[TF_CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
                   const unsigned char nonce[TF_CRYPTO_NONCE_LEN], const unsigned char *ct,
                   size_t ct_len, const unsigned char tag[TF_CRYPTO_TAG_LEN], unsigned char *pt)
{
    int rc = TF_EVALUE;
    int n = 0;
    unsigned char tag_copy[TF_CRYPTO_TAG_LEN];
    memcpy(tag_copy, tag, sizeof tag_copy); /* the ctrl call takes a non-const pointer */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx || ct_len > INT_MAX || aad_len > INT_MAX) {
        rc = TF_ERR;
        goto out;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TF_CRYPTO_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) {
        rc = TF_ERR;
        goto out;
    }
    if (aad_len && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (ct_len && EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ct_len) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TF_CRYPTO_TAG_LEN, tag_copy) != 1)
        goto out;
    /* Final verifies the tag: until it says yes, the plaintext is not to be trusted. */
    if (EVP_DecryptFinal_ex(ctx, pt + n, &n) != 1)
        goto out;
    rc = TF_OK;
out:
    if (rc != TF_OK)
        tf_crypto_wipe(pt, ct_len);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

char *tf_base64_encode(const void *data, size_t len)
{
    if (len > (size_t)INT_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static bool b64_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '/';
}

/* Where `text` breaks the rules, or 0 when it is well formed (checked before decoding because
 * EVP_DecodeBlock skips whitespace and does not report where it stopped). */
static int b64_check(const char *text, size_t len, char *err, size_t err_size)
{
    if (len % 4 != 0) {
        snprintf(err, err_size,
                 "invalid base64: expected a length that is a multiple of 4, found %zu", len);
        return -1;
    }
    size_t pad = 0;
    while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++) {
        if (!b64_char(text[i])) {
            snprintf(err, err_size,
                     "invalid base64: expected A-Z, a-z, 0-9, + or / at character %zu, found %s",
                     i + 1, text[i] == '=' ? "'=' before the end" : "another character");
            return -1;
        }
    }
    return 0;
}

int tf_base64_decode(const char *text, unsigned char **out, size_t *out_len, char *err,
                     size_t err_size)
{
    *out = NULL;
    *out_len = 0;
    size_t len = strlen(text);
    if (b64_check(text, len, err, err_size) != 0)
        return TF_EVALUE;
    if (len > (size_t)INT_MAX)
        return TF_EVALUE;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return TF_ENOMEM;
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len) : 0;
    if (n < 0) {
        snprintf(err, err_size, "invalid base64");
        free(buf);
        return TF_EVALUE;
    }
    size_t pad = len && text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
    size_t got = (size_t)n - pad; /* DecodeBlock counts the padding as zero bytes */
    /* The canonical spelling only: a different text for the same bytes (non-zero unused bits)
     * means the entry was altered. */
    char *again = tf_base64_encode(buf, got);
    if (!again) {
        tf_crypto_wipe(buf, (size_t)n);
        free(buf);
        return TF_ENOMEM;
    }
    bool same = strcmp(again, text) == 0;
    tf_crypto_wipe(again, strlen(again));
    free(again);
    if (!same) {
        snprintf(err, err_size, "invalid base64: expected canonical padding bits, found others");
        tf_crypto_wipe(buf, (size_t)n);
        free(buf);
        return TF_EVALUE;
    }
    *out = buf;
    *out_len = got;
    return TF_OK;
}
