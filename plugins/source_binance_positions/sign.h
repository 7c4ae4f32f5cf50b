/*
 * HMAC signatures of private exchange requests (Binance HMAC-SHA256 hex, Bithumb v1
 * base64(hex(HMAC-SHA512))), over OpenSSL. Shared by the binance_positions and bithumb_balance
 * plugins and their tests, so the tests check the exact code the plugins run.
 */
#ifndef TF_PLUGIN_SIGN_H
#define TF_PLUGIN_SIGN_H

#include <stddef.h>

#include <tickflow/tickflow.h>

#define TF_SIGN_SHA256_HEX 65  /* 64 hex digits + NUL */
#define TF_SIGN_SHA512_HEX 129 /* 128 hex digits + NUL */
#define TF_SIGN_SHA512_B64 173 /* base64 of the 128 hex digits + NUL */

/* Lower-case hex HMAC-SHA256(secret, msg[0..len)) into out (>= TF_SIGN_SHA256_HEX bytes).
 * 0, or -1 when OpenSSL fails or out is too small. */
int sign_hmac_sha256_hex(const char *secret, const char *msg, size_t len, char *out,
                         size_t out_size);

/* Bithumb v1 Api-Sign: base64 of the lower-case hex HMAC-SHA512(secret, msg[0..len)) (the hex
 * string is what is encoded, not the raw digest). 0, or -1. */
int sign_bithumb_v1(const char *secret, const char *msg, size_t len, char *out, size_t out_size);

/* Reads the api_key / api_secret secret options (either may be unset, not only one of them):
 * TF_OK with *key and *secret borrowed from the options (NULL when unset), or TF_EINVAL
 * logged. */
int sign_key_options(const tf_host *h, tf_instance *self, const tf_options *opts, const char **key,
                     const char **secret);

/* The key pair of a signed source, into key and secret (size bytes each; the caller wipes
 * them): the key store entry (exchange, key_name) through host->api_key_get, or else the
 * api_key / api_secret secret options (opt_key / opt_secret, NULL when unset). Every failure
 * is reported with `ctx` and returned: the store's error, TF_ENOTFOUND (neither), TF_EINVAL
 * (too long). */
int sign_load_keys(const tf_host *h, tf_instance *self, const char *ctx, const char *exchange,
                   const char *key_name, const char *opt_key, const char *opt_secret, char *key,
                   char *secret, size_t size);

#endif
