/*
 * The product deployed on loopback for whole-runtime tests: a private redis-server, the fake
 * exchange, and `tickflow run` replicas of the pipelines/ YAML files started with the environment
 * those files read (TICKFLOW_REDIS_URL, TF_DEMO_EXCHANGE, TICKFLOW_API_LISTEN,
 * TICKFLOW_METRICS_LISTEN, TICKFLOW_API_RATE_LIMIT=0). The deployment owns its replicas and
 * stops them, then the exchange and Redis, when destroyed.
 */
#ifndef TF_DEPLOY_H
#define TF_DEPLOY_H

#include <stddef.h>
#include <sys/types.h>

#include "tf_fake.h"
#include "tf_test.h"

#define TFT_DEPLOY_MAX_REPLICAS 8

typedef struct tft_deploy {
    char *dir;        /* owned temp directory: <tag>.log of each replica, files of the test */
    tft_redis *redis; /* owned */
    tft_fake *fake;   /* owned */
    int api_port;     /* what TICKFLOW_API_LISTEN names (pipelines/api.yaml listens there) */
    char api_url[64]; /* "http://127.0.0.1:<api_port>" */
    pid_t pids[TFT_DEPLOY_MAX_REPLICAS]; /* started replicas, in order; -1 once stopped */
    char tags[TFT_DEPLOY_MAX_REPLICAS][32];
    size_t n;
} tft_deploy;

/* Temp directory, Redis, the fake exchange and a free API port. NULL on failure (logged). */
tft_deploy *tft_deploy_create(void);
/* Starts `tickflow run <yaml>` (a path below the source tree, or absolute) with the
 * deployment's environment plus `extra_env` ("NAME=value", NULL-terminated, may be NULL; later
 * entries win), logging to <dir>/<tag>.log. The pid, or -1. */
pid_t tft_deploy_start(tft_deploy *d, const char *yaml, const char *tag,
                       const char *const *extra_env);
/* SIGTERM to the replica started as `tag` (SIGKILL after 5 s); its exit status as tft_stop. */
int tft_deploy_stop(tft_deploy *d, const char *tag);
/* Prints <dir>/<tag>.log to stderr (for a failing test). */
void tft_deploy_print_log(const tft_deploy *d, const char *tag);
/* Stops every replica still running (last started first), the exchange and Redis; removes the
 * directory. NULL is a no-op. */
void tft_deploy_destroy(tft_deploy *d);

#endif
