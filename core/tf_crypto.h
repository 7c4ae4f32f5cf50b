/*
 * Authenticated encryption for the key store: AES-256-GCM through OpenSSL EVP (96-bit random
 * nonce per message, 128-bit tag), strict base64, and the parsing of 256-bit master keys.
 */
#ifndef TF_CRYPTO_H
#define TF_CRYPTO_H

#include <stddef.h>

#define TF_CRYPTO_KEY_LEN   32
#define TF_CRYPTO_NONCE_LEN 12
#define TF_CRYPTO_TAG_LEN   16

/* A 256-bit key written as 64 hex digits or as base64 (44 characters with padding).
 * 0 and `key` filled, or -1 with what was expected and found in err (never the key itself). */
int tf_crypto_parse_key(const char *text, unsigned char key[TF_CRYPTO_KEY_LEN], char *err,
                        size_t err_size);

/* Encrypts pt_len bytes of `pt` into `ct` (pt_len bytes) with a fresh random nonce written to
 * `nonce`, authenticating `aad` too; the tag goes to `tag`. TF_OK, or TF_ERR (OpenSSL failure,
 * no randomness). */
int tf_crypto_seal(const unsigned char key[TF_CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
                   const void *pt, size_t pt_len, unsigned char nonce[TF_CRYPTO_NONCE_LEN],
                   unsigned char *ct, unsigned char tag[TF_CRYPTO_TAG_LEN]);
/* Decrypts into `pt` (ct_len bytes). TF_OK only when the tag verifies over ct and aad; on
 * TF_EVALUE (wrong key or tampered data) `pt` is wiped, so no unauthenticated byte escapes. */
int tf_crypto_open(const unsigned char key[TF_CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
                   const unsigned char nonce[TF_CRYPTO_NONCE_LEN], const unsigned char *ct,
                   size_t ct_len, const unsigned char tag[TF_CRYPTO_TAG_LEN], unsigned char *pt);

/* Standard base64 with padding; a new string (caller frees), NULL when out of memory. */
char *tf_base64_encode(const void *data, size_t len);
/* Strict decoding: only the standard alphabet, length a multiple of 4, '=' only as final
 * padding, and unused bits zero (the one canonical spelling of the bytes). TF_OK with *out
 * (caller frees; a 1-byte buffer for empty input) and *out_len, or TF_EVALUE with the reason in
 * err, or TF_ENOMEM. */
int tf_base64_decode(const char *text, unsigned char **out, size_t *out_len, char *err,
                     size_t err_size);

/* Wipes n bytes in a way the compiler may not optimise away. NULL is fine. */
void tf_crypto_wipe(void *p, size_t n);

#endif
