/*
 * One running pipeline: its plugin instances, its lease, and the thread that ticks it on a
 * fixed-rate schedule. Each pipeline has its own thread, so a slow one (a 10 s HTTP timeout)
 * never delays another; a tick that overruns its period causes the missed ticks to be skipped
 * and counted, never queued.
 */
#ifndef TF_PIPELINE_H
#define TF_PIPELINE_H

#include "tf_config.h"
#include "tf_http.h"
#include "tf_lease.h"

typedef struct tf_pipeline tf_pipeline;

/* Creates every instance (plugin init) and the lease, without starting anything. `cfg`,
 * `runtime` and `http` are borrowed and must outlive the pipeline. NULL after logging why. */
tf_pipeline *tf_pipeline_create(const tf_pipeline_config *cfg, const tf_config *runtime,
                                tf_http *http);
/* Starts the lease thread and the tick thread. TF_OK or a negative status. */
int tf_pipeline_start(tf_pipeline *p);
/* Asks the pipeline to stop: the tick in progress is told (HTTP transfers abort), no new tick
 * starts. Returns at once. */
void tf_pipeline_request_stop(tf_pipeline *p);
/* Waits for the tick thread, then stops (releases) the lease. */
void tf_pipeline_join(tf_pipeline *p);
/* Destroys instances and the lease. Calls request_stop + join first if still running. */
void tf_pipeline_destroy(tf_pipeline *p);

const char *tf_pipeline_name(const tf_pipeline *p);
/* Ticks run so far (as holder, or without lease). For tests and status. */
unsigned long tf_pipeline_ticks(const tf_pipeline *p);
/* True when every write of the pipeline's sinks has failed for longer than its lease ttl on
 * this replica (it holds the lease, or has none); `reason` then says so. Any thread. */
bool tf_pipeline_write_failing(tf_pipeline *p, char *reason, size_t size);
/* NULL when the pipeline has no lease. */
tf_lease *tf_pipeline_lease(const tf_pipeline *p);
/* True when a key store entry one of its plugins read at init has changed since (reload
 * restarts the pipeline then). Reads the store; main thread. */
bool tf_pipeline_keys_changed(const tf_pipeline *p);

#endif
