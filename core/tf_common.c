/* Clocks and status names shared by every module. */
#include "tf_common.h"

#include <time.h>

int64_t tf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tf_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tf_mono_to_timespec(int64_t mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

const char *tf_status_name(int status)
{
    switch (status) {
    case TF_OK:
        return "ok";
    case TF_ENOMEM:
        return "nomem";
    case TF_EINVAL:
        return "invalid";
    case TF_ETIMEOUT:
        return "timeout";
    case TF_ECONNECT:
        return "connect";
    case TF_EHTTP:
        return "http";
    case TF_EPARSE:
        return "parse";
    case TF_EAPI:
        return "api";
    case TF_ERATELIMIT:
        return "rate_limited";
    case TF_ECIRCUIT:
        return "circuit_open";
    case TF_ETOOLARGE:
        return "too_large";
    case TF_EVALUE:
        return "value";
    case TF_EREDIS:
        return "redis";
    case TF_EFENCED:
        return "fenced";
    case TF_ESTOPPED:
        return "stopped";
    case TF_ENOTFOUND:
        return "not_found";
    case TF_ECONFLICT:
        return "conflict";
    default:
        return "error";
    }
}
