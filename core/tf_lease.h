/*
 * The Redis lease of one pipeline: at most one replica runs a leased pipeline at a time.
 * Acquire: SET <prefix>:lease:<pipeline> <random token> NX PX ttl, and on success a new fencing
 * token that never goes backwards (see docs/scheduling-and-leases.md). Extend: compare-and-
 * extend Lua script every ttl/3. Release on stop: compare-and-delete. A background thread owns
 * the Redis connection; the pipeline thread asks tf_lease_check() before each tick.
 */
#ifndef TF_LEASE_H
#define TF_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "tf_config.h"

typedef struct tf_lease tf_lease;

typedef enum tf_lease_state {
    TF_LEASE_STANDBY = 0,    /* another replica holds it (or nobody yet): retrying */
    TF_LEASE_HELD = 1,       /* this replica holds it */
    TF_LEASE_UNREACHABLE = 2 /* Redis cannot be reached: pipeline paused */
} tf_lease_state;

/* `period_ms` is the pipeline period: a standby replica retries at least every
 * min(period, ttl/4) so a takeover happens within ttl + period. Copies its arguments. */
tf_lease *tf_lease_create(const tf_redis_settings *redis, const char *pipeline, int64_t ttl_ms,
                          int64_t period_ms);
/* Starts the renewal thread. TF_OK or TF_ENOMEM. */
int tf_lease_start(tf_lease *l);
/* Stops the thread and releases the lease if held (compare-and-delete). Idempotent. */
void tf_lease_stop(tf_lease *l);
void tf_lease_destroy(tf_lease *l);

/* May the pipeline run a tick now? True only when this replica holds the lease and its last
 * successful acquire/extend was sent less than ttl - margin ago on the monotonic clock (so a
 * holder that was paused past its ttl finds out here, before running the tick). Sets *fence
 * to the current fencing token when true. Thread-safe. */
bool tf_lease_check(tf_lease *l, uint64_t *fence);
/* tf_lease_check, also setting *holding (may be NULL) to the number of acquisitions so far:
 * a different number means the lease was lost and acquired again since the last call, so the
 * holder cannot assume that what it wrote before is still in Redis. */
bool tf_lease_check_holding(tf_lease *l, uint64_t *fence, unsigned long *holding);
/* Called on the lease thread (no lock held) right after each acquisition; must be quick.
 * Set before tf_lease_start; `arg` is lent and must outlive the thread. */
typedef void (*tf_lease_acquired_fn)(void *arg);
void tf_lease_on_acquired(tf_lease *l, tf_lease_acquired_fn fn, void *arg);
tf_lease_state tf_lease_get_state(tf_lease *l);
/* "<prefix>:fence:<pipeline>"; borrowed. */
const char *tf_lease_fence_key(const tf_lease *l);
/* Transitions into or out of HELD so far (for metrics and tests). */
unsigned long tf_lease_transitions(tf_lease *l);

#endif
