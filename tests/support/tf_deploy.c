/* The product deployed on loopback for whole-runtime tests: see tf_deploy.h. */
#include "tf_deploy.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tft_deploy *tft_deploy_create(void)
{
    tft_deploy *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->dir = tft_mkdtemp();
    d->redis = d->dir ? tft_redis_start(0) : NULL;
    d->fake = d->redis ? tft_fake_start(NULL) : NULL;
    if (!d->fake) {
        fprintf(stderr, "tft_deploy: could not start %s\n",
                !d->dir     ? "a temp directory"
                : !d->redis ? "redis-server"
                            : "the fake exchange");
        tft_deploy_destroy(d);
        return NULL;
    }
    d->api_port = tft_free_port();
    snprintf(d->api_url, sizeof d->api_url, "http://127.0.0.1:%d", d->api_port);
    return d;
}

pid_t tft_deploy_start(tft_deploy *d, const char *yaml, const char *tag,
                       const char *const *extra_env)
{
    if (d->n == TFT_DEPLOY_MAX_REPLICAS)
        return -1;
    char log[1024], redis[128], exchange[128], api[64], metrics[64];
    snprintf(log, sizeof log, "%s/%s.log", d->dir, tag);
    snprintf(redis, sizeof redis, "TICKFLOW_REDIS_URL=redis://127.0.0.1:%d/0", d->redis->port);
    snprintf(exchange, sizeof exchange, "TF_DEMO_EXCHANGE=%s", d->fake->base);
    snprintf(api, sizeof api, "TICKFLOW_API_LISTEN=127.0.0.1:%d", d->api_port);
    snprintf(metrics, sizeof metrics, "TICKFLOW_METRICS_LISTEN=127.0.0.1:%d", tft_free_port());
    /* Tests poll faster than the API's default 50 requests/s per client IP. */
    const char *env[16] = {redis, exchange, api, metrics, "TICKFLOW_API_RATE_LIMIT=0"};
    size_t n = 5;
    for (size_t i = 0; extra_env && extra_env[i] && n + 1 < sizeof env / sizeof env[0]; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    const char *path = yaml[0] == '/' ? yaml : tft_source_path(yaml);
    const char *argv[] = {tft_bin("tickflow"), "run", path, NULL};
    pid_t pid = tft_spawn(argv, log, env);
    if (pid > 0) {
        d->pids[d->n] = pid;
        snprintf(d->tags[d->n], sizeof d->tags[d->n], "%s", tag);
        d->n++;
    }
    return pid;
}

int tft_deploy_stop(tft_deploy *d, const char *tag)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->pids[i] > 0 && strcmp(d->tags[i], tag) == 0) {
            int status = tft_stop(d->pids[i], SIGTERM, 5000);
            d->pids[i] = -1;
            return status;
        }
    }
    return -1;
}

void tft_deploy_print_log(const tft_deploy *d, const char *tag)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.log", d->dir, tag);
    char *text = tft_read_file(path, NULL);
    fprintf(stderr, "\n---- %s ----\n%s\n", path, text ? text : "(no log)");
    free(text);
}

void tft_deploy_destroy(tft_deploy *d)
{
    if (!d)
        return;
    for (size_t i = d->n; i > 0; i--) {
        if (d->pids[i - 1] > 0)
            tft_stop(d->pids[i - 1], SIGTERM, 5000);
    }
    tft_fake_stop(d->fake);
    tft_redis_destroy(d->redis);
    if (d->dir) {
        tft_rmdir(d->dir);
        free(d->dir);
    }
    free(d);
}
