/*
 * The key store entries a plugin instance read during its init, kept as digests (never the
 * key or secret): a reload reads them again and restarts the pipeline whose entry changed,
 * since such a plugin would otherwise go on with the old pair (docs/configuration.md, reload).
 */
#ifndef TF_KEYREADS_H
#define TF_KEYREADS_H

#include <stdbool.h>
#include <stddef.h>

#include "tf_config.h"

typedef struct tf_keyreads tf_keyreads;

tf_keyreads *tf_keyreads_create(void);
void tf_keyreads_destroy(tf_keyreads *r);

/* Records one read: its status and, when TF_OK, a digest of the pair; the buffer sizes the
 * plugin gave, so that reading again answers the same (TF_EINVAL for a small buffer). TF_OK or
 * TF_ENOMEM. */
int tf_keyreads_add(tf_keyreads *r, const char *exchange, const char *name, int rc, const char *key,
                    size_t key_size, const char *secret, size_t secret_size);

/* True when reading any recorded entry again (from `ks`, `redis`) answers otherwise: another
 * pair, or found/not found. A store that cannot be reached (TF_EREDIS) counts as unchanged,
 * logged under `who`: a reload must not restart a pipeline for a Redis blip. NULL r: false. */
bool tf_keyreads_changed(const tf_keyreads *r, const tf_keys_settings *ks,
                         const tf_redis_settings *redis, const char *who);

#endif
