/*
 * The exchange API key store (docs/keys.md): API key + secret pairs encrypted with AES-256-GCM
 * under a master key from the environment, kept in Redis (<prefix>:keys:<exchange>:<name>) or
 * in one JSON file. Owns sealing, reading with any configured master key, rotation, and the
 * `tickflow keys` command.
 */
#ifndef TF_KEYS_H
#define TF_KEYS_H

#include <jansson.h>
#include <stddef.h>

#include "tf_config.h"
#include "tf_plugin.h"

#define TF_KEYS_ENTRY_VERSION 1

typedef struct tf_keys tf_keys;

/* A handle on the store described by `ks` (and `redis` for store: redis). Both are borrowed
 * and must outlive the handle; `who` names it in logs. Does not connect. NULL when out of
 * memory. One thread at a time per handle. */
tf_keys *tf_keys_open(const tf_keys_settings *ks, const tf_redis_settings *redis, const char *who);
void tf_keys_close(tf_keys *k);

/* Encrypts the pair under the current master key into a new entry (JSON text, caller frees).
 * TF_OK, TF_EINVAL (bad exchange/name/values: err says which), TF_ENOMEM, TF_ERR. */
int tf_keys_seal(const tf_keys_settings *ks, const char *exchange, const char *name,
                 const char *api_key, const char *secret, char **entry, char *err, size_t err_size);
/* Decrypts an entry stored as (exchange, name) into the caller's buffers (NUL-terminated; the
 * caller wipes them). TF_OK; TF_EVALUE when the entry is malformed, truncated, encrypted with
 * an unknown master key id, or fails authentication (err says which; the buffers are then
 * wiped); TF_EINVAL when a buffer is too small. `kid` (may be NULL) receives the entry's
 * master key id. */
int tf_keys_unseal(const tf_keys_settings *ks, const char *exchange, const char *name,
                   const char *entry, char *key, size_t key_size, char *secret, size_t secret_size,
                   char *kid, size_t kid_size, char *err, size_t err_size);

/* Store operations: TF_OK, or TF_EINVAL / TF_ENOTFOUND / TF_EVALUE / TF_EREDIS / TF_ERR with
 * the reason in err. */
int tf_keys_put(tf_keys *k, const char *exchange, const char *name, const char *api_key,
                const char *secret, char *err, size_t err_size);
int tf_keys_get(tf_keys *k, const char *exchange, const char *name, char *key, size_t key_size,
                char *secret, size_t secret_size, char *err, size_t err_size);
int tf_keys_remove(tf_keys *k, const char *exchange, const char *name, char *err, size_t err_size);
/* *out = array of {exchange, name, kid, hint ("abcd****")} or {exchange, name, error}, sorted
 * by exchange then name (new reference). Secrets never appear. */
int tf_keys_list(tf_keys *k, json_t **out, char *err, size_t err_size);

typedef struct tf_keys_rotation {
    size_t rotated; /* re-encrypted under the current master key */
    size_t current; /* already under it */
    json_t *failed; /* array of {exchange, name, error} (owned: caller decrefs) */
} tf_keys_rotation;
/* Re-encrypts every entry whose master key id is not the current one, each replaced
 * atomically (a reader sees the old or the new entry, never a mix). TF_OK when the store
 * could be listed (per-entry failures are in out->failed), else an error. */
int tf_keys_rotate(tf_keys *k, tf_keys_rotation *out, char *err, size_t err_size);

/* `tickflow keys add|list|remove|rotate ...` (argv[0] = "keys"). Returns the exit code: 0,
 * 1 (a runtime failure: Redis, a store entry that failed), 2 (usage or configuration). */
int tf_keys_cli(const tf_registry *reg, int argc, const char *const *argv);

#endif
