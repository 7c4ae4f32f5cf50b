/*
 * No-op plugin callbacks for unit tests that register test plugins without dlopen (the
 * configuration loader, its diff, the key store's host service): each does nothing and
 * succeeds, so a test declares only the callbacks whose behaviour it checks.
 */
#ifndef TF_TEST_PLUGINS_H
#define TF_TEST_PLUGINS_H

#include <tickflow/tickflow.h>

static inline int tft_noop_init(const tf_host *host, tf_instance *self, const tf_options *options,
                                void **instance)
{
    TF_UNUSED(host);
    TF_UNUSED(self);
    TF_UNUSED(options);
    *instance = NULL;
    return TF_OK;
}

static inline void tft_noop_destroy(void *instance)
{
    TF_UNUSED(instance);
}

static inline int tft_noop_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    TF_UNUSED(instance);
    TF_UNUSED(tick);
    TF_UNUSED(out);
    return TF_OK;
}

static inline int tft_noop_write(void *instance, const tf_tick *tick, const tf_batch *batch)
{
    TF_UNUSED(instance);
    TF_UNUSED(tick);
    TF_UNUSED(batch);
    return TF_OK;
}

#endif
