/*
 * HMAC signatures of private exchange requests; see sign.h. The intermediate digests live on
 * the stack and are wiped before returning: they are as good as the secret for one message.
 */
#include "sign.h"

#include <stdio.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void to_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static int hmac_hex(const EVP_MD *md, const char *secret, const char *msg, size_t len, char *out,
                    size_t out_size)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    size_t secret_len = strlen(secret);
    int rc = -1;
    if (secret_len > (size_t)0x7fffffff)
        goto out;
    if (!HMAC(md, secret, (int)secret_len, (const unsigned char *)msg, len, digest, &digest_len))
        goto out;
    if (out_size < 2 * (size_t)digest_len + 1)
        goto out;
    to_hex(digest, digest_len, out);
    rc = 0;
out:
    explicit_bzero(digest, sizeof digest);
    return rc;
}

int sign_hmac_sha256_hex(const char *secret, const char *msg, size_t len, char *out,
                         size_t out_size)
{
    return hmac_hex(EVP_sha256(), secret, msg, len, out, out_size);
}

int sign_bithumb_v1(const char *secret, const char *msg, size_t len, char *out, size_t out_size)
{
    char hex[TF_SIGN_SHA512_HEX];
    int rc = -1;
    if (out_size < TF_SIGN_SHA512_B64)
        goto out;
    if (hmac_hex(EVP_sha512(), secret, msg, len, hex, sizeof hex) != 0)
        goto out;
    /* EVP_EncodeBlock writes no line breaks and NUL-terminates: 128 bytes -> 172 + NUL. */
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)hex, (int)strlen(hex));
    rc = 0;
out:
    explicit_bzero(hex, sizeof hex);
    return rc;
}

int sign_key_options(const tf_host *h, tf_instance *self, const tf_options *opts, const char **key,
                     const char **secret)
{
    *key = h->opt_string(opts, "api_key");
    *secret = h->opt_string(opts, "api_secret");
    if ((*key == NULL) != (*secret == NULL)) {
        h->log(self, TF_LOG_ERROR, "%s: expected api_key and api_secret together, found only %s",
               *key ? "api_secret" : "api_key", *key ? "api_key" : "api_secret");
        return TF_EINVAL;
    }
    return TF_OK;
}

static int copy_secret(char *dst, size_t size, const char *src)
{
    int n = snprintf(dst, size, "%s", src);
    return n < 0 || (size_t)n >= size ? TF_EINVAL : TF_OK;
}

int sign_load_keys(const tf_host *h, tf_instance *self, const char *ctx, const char *exchange,
                   const char *key_name, const char *opt_key, const char *opt_secret, char *key,
                   char *secret, size_t size)
{
    char err[256] = "";
    int rc = TF_ENOTFOUND;
    if (TF_HOST_HAS(h, api_key_get))
        rc = h->api_key_get(self, exchange, key_name, key, size, secret, size, err, sizeof err);
    if (rc == TF_OK)
        return TF_OK;
    if (rc != TF_ENOTFOUND) {
        h->report_error(self, rc, "%s: key store entry %s/%s: %s", ctx, exchange, key_name,
                        err[0] ? err : "unreadable");
        return rc;
    }
    if (!opt_key || !opt_secret) {
        h->report_error(self, TF_ENOTFOUND,
                        "%s: expected the key pair %s/%s in the key store or the api_key and "
                        "api_secret options, found neither",
                        ctx, exchange, key_name);
        return TF_ENOTFOUND;
    }
    if (copy_secret(key, size, opt_key) != TF_OK ||
        copy_secret(secret, size, opt_secret) != TF_OK) {
        h->report_error(self, TF_EINVAL,
                        "%s: api_key/api_secret: expected at most %zu characters each", ctx,
                        size - 1);
        return TF_EINVAL;
    }
    return TF_OK;
}
