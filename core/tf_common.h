/*
 * Small shared definitions for the core: the SDK types, array length, clocks.
 * The core includes this instead of repeating the SDK includes in every module.
 */
#ifndef TF_COMMON_H
#define TF_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tickflow/tickflow.h>

#define TF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TF_UNUSED(x)    ((void)(x))

/* Wall clock (CLOCK_REALTIME) in epoch milliseconds. */
int64_t tf_now_ms(void);
/* CLOCK_MONOTONIC in milliseconds: for deadlines and durations, immune to clock jumps. */
int64_t tf_mono_ms(void);
/* Fills `ts` with the CLOCK_MONOTONIC instant `mono_ms` (for pthread_cond_timedwait on a
 * condition variable created with CLOCK_MONOTONIC). */
struct timespec;
void tf_mono_to_timespec(int64_t mono_ms, struct timespec *ts);

/* Name of a status code ("timeout", "parse", ...), used as the metrics error class. */
const char *tf_status_name(int status);

#endif
