/*
 * tf_keyreads: digests of the key store entries read by a plugin's init, checked again on
 * reload (tf_runtime through tf_pipeline).
 */
#include "tf_keyreads.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "tf_crypto.h"
#include "tf_keys.h"
#include "tf_log.h"

#define DIGEST_LEN 32
/* Largest buffer used when reading again; a plugin's buffer is never larger in practice. */
#define REREAD_MAX 4096

typedef struct key_read {
    char *exchange, *name;
    int rc;
    size_t key_size, secret_size;
    unsigned char digest[DIGEST_LEN]; /* SHA-256 of key NUL secret when rc == TF_OK */
} key_read;

struct tf_keyreads {
    key_read *reads;
    size_t n;
};

tf_keyreads *tf_keyreads_create(void)
{
    return calloc(1, sizeof(tf_keyreads));
}

void tf_keyreads_destroy(tf_keyreads *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->reads[i].exchange);
        free(r->reads[i].name);
    }
    free(r->reads);
    free(r);
}

static int pair_digest(const char *key, const char *secret, unsigned char out[DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, strlen(key) + 1) == 1 &&
             EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == DIGEST_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? TF_OK : TF_ERR;
}

static size_t capped(size_t size)
{
    return size < REREAD_MAX ? size : REREAD_MAX;
}

int tf_keyreads_add(tf_keyreads *r, const char *exchange, const char *name, int rc, const char *key,
                    size_t key_size, const char *secret, size_t secret_size)
{
    key_read one = {.rc = rc, .key_size = capped(key_size), .secret_size = capped(secret_size)};
    if (rc == TF_OK && pair_digest(key, secret, one.digest) != TF_OK)
        return TF_ERR;
    key_read *grown = realloc(r->reads, (r->n + 1) * sizeof *grown);
    if (!grown)
        return TF_ENOMEM;
    r->reads = grown;
    one.exchange = strdup(exchange);
    one.name = strdup(name);
    if (!one.exchange || !one.name) {
        free(one.exchange);
        free(one.name);
        return TF_ENOMEM;
    }
    r->reads[r->n++] = one;
    return TF_OK;
}

/* Reads one entry again; true when the answer differs from the recorded one. */
static bool read_changed(tf_keys *k, const key_read *kr, const char *who)
{
    char *key = calloc(1, kr->key_size ? kr->key_size : 1);
    char *secret = calloc(1, kr->secret_size ? kr->secret_size : 1);
    char err[256] = "";
    bool changed = false;
    if (!key || !secret)
        goto out;
    int rc = tf_keys_get(k, kr->exchange, kr->name, key, kr->key_size, secret, kr->secret_size, err,
                         sizeof err);
    if (rc == TF_EREDIS) {
        tf_log(TF_LOG_WARN, who,
               "reload: key store entry %s/%s not checked (%s); the pipeline keeps the pair "
               "it read",
               kr->exchange, kr->name, err);
        goto out;
    }
    unsigned char digest[DIGEST_LEN];
    changed = rc != kr->rc || (rc == TF_OK && (pair_digest(key, secret, digest) != TF_OK ||
                                               memcmp(digest, kr->digest, DIGEST_LEN) != 0));
out:
    if (key)
        tf_crypto_wipe(key, kr->key_size ? kr->key_size : 1);
    if (secret)
        tf_crypto_wipe(secret, kr->secret_size ? kr->secret_size : 1);
    free(key);
    free(secret);
    return changed;
}

bool tf_keyreads_changed(const tf_keyreads *r, const tf_keys_settings *ks,
                         const tf_redis_settings *redis, const char *who)
{
    if (!r || r->n == 0 || !ks || !ks->configured)
        return false;
    tf_keys *k = tf_keys_open(ks, redis, who);
    if (!k)
        return false;
    bool changed = false;
    for (size_t i = 0; i < r->n && !changed; i++)
        changed = read_changed(k, &r->reads[i], who);
    tf_keys_close(k);
    return changed;
}
