/*
 * HMAC signatures of private exchange requests; see sign.h. The intermediate digests live on
 * the stack and are wiped before returning: they are as good as the secret for one message.
 */
#include "sign.h"

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
