/*
 * Plugin instances and the host table. A tf_instance binds one configured stage (plugin +
 * validated options) to a pipeline: it creates the plugin's state through init, lends it the
 * host services (tf_host) and counts its records and errors.
 */
#ifndef TF_INSTANCE_H
#define TF_INSTANCE_H

#include <stdatomic.h>

#include "tf_config.h"
#include "tf_http.h"

/* The symbols the stages of one pipeline asked its sources to fetch (host->interest_*). */
typedef struct tf_interest tf_interest;
tf_interest *tf_interest_create(void);
void tf_interest_destroy(tf_interest *in);

/* The host table given to every plugin; static, lives for the whole process. */
const tf_host *tf_host_table(void);

/* Creates the instance and calls the plugin's init. `stage`, `http`, `redis` (the runtime's
 * settings, for plugins that open Redis connections) and `interest` (the pipeline's, may be
 * NULL) are borrowed and must outlive the instance;
 * `stop` (may be NULL) is the owning pipeline's stop flag. Returns NULL after logging why (init
 * failed, out of memory). */
tf_instance *tf_instance_create(const tf_stage_config *stage, const char *pipeline, tf_http *http,
                                const tf_redis_settings *redis, tf_interest *interest,
                                const atomic_bool *stop);
/* Calls the plugin's destroy and frees everything the instance owns. NULL is fine. */
void tf_instance_destroy(tf_instance *inst);

/* Run the plugin's callback for its kind. Each counts its output records and, on a negative
 * return, one error of that class, and returns the plugin's status. */
int tf_instance_collect(tf_instance *inst, const tf_tick *tick, tf_batch *out);
int tf_instance_process(tf_instance *inst, const tf_tick *tick, tf_batch *batch);
int tf_instance_write(tf_instance *inst, const tf_tick *tick, const tf_batch *batch);

/* True when a key store entry the plugin's init read now holds another pair (or appeared, or
 * went away): the instance would go on with the old one. Reads the store; main thread. */
bool tf_instance_keys_changed(const tf_instance *inst);

const tf_plugin *tf_instance_plugin(const tf_instance *inst);
/* "pipeline/plugin", for logs. */
const char *tf_instance_component(const tf_instance *inst);

#endif
