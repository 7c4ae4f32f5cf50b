/*
 * The runtime: configuration, shared HTTP client, pipelines and metrics listener, driven by
 * signals received with sigwait in the main thread (no work in signal handlers).
 *
 * Reload (SIGHUP) validates the new configuration before touching the running one; an invalid
 * one is rejected with its errors logged. See reload() for the swap itself.
 */
#include "tf_runtime.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_http.h"
#include "tf_httpd.h"
#include "tf_lease.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_pipeline.h"
#include "tf_redis.h"

#define COMPONENT "runtime"

/* Everything built from one configuration. */
typedef struct generation {
    tf_config *cfg;
    tf_http *http;
    tf_pipeline **pipelines;
    size_t n_pipelines;
} generation;

typedef struct runtime {
    const tf_registry *reg;
    const char *const *paths;
    size_t n_paths;
    generation *current;
    tf_httpd *httpd;
    char *httpd_listen;   /* what httpd was started with */
    pthread_mutex_t lock; /* guards `current` against the listener's readiness probe */
} runtime;

void tf_runtime_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void log_diag(const tf_diag *d, tf_log_level level)
{
    for (size_t i = 0; i < tf_diag_count(d); i++)
        tf_log(level, COMPONENT, "%s", tf_diag_message(d, i));
}

static void generation_drop_pipelines(generation *g);

static void generation_destroy(generation *g)
{
    if (!g)
        return;
    generation_drop_pipelines(g);
    tf_config_destroy(g->cfg);
    free(g);
}

/* Creates (without starting) every pipeline of g->cfg, with a fresh HTTP client. On failure
 * nothing is left half-made: the generation holds no pipeline at all. */
static int generation_create_pipelines(generation *g)
{
    g->http = tf_http_create(&g->cfg->http);
    g->pipelines = calloc(g->cfg->n_pipelines ? g->cfg->n_pipelines : 1, sizeof *g->pipelines);
    if (!g->http || !g->pipelines)
        goto fail;
    for (size_t i = 0; i < g->cfg->n_pipelines; i++) {
        g->pipelines[i] = tf_pipeline_create(&g->cfg->pipelines[i], g->cfg, g->http);
        if (!g->pipelines[i])
            goto fail;
        g->n_pipelines = i + 1;
    }
    return TF_OK;
fail:
    generation_drop_pipelines(g);
    return TF_ERR;
}

/* Stops and frees the pipelines and HTTP client, keeping the configuration. */
static void generation_drop_pipelines(generation *g)
{
    for (size_t i = 0; i < g->n_pipelines; i++)
        if (g->pipelines[i])
            tf_pipeline_request_stop(g->pipelines[i]);
    for (size_t i = 0; i < g->n_pipelines; i++)
        tf_pipeline_destroy(g->pipelines[i]);
    free(g->pipelines); /* may also hold a half-made list: entries past n_pipelines are NULL */
    g->pipelines = NULL;
    g->n_pipelines = 0;
    tf_http_destroy(g->http);
    g->http = NULL;
}

/* Loads and validates the configuration; NULL (errors logged) when it is invalid. */
static generation *generation_load(runtime *rt)
{
    generation *g = calloc(1, sizeof *g);
    tf_diag *diag = tf_diag_create();
    if (!g || !diag)
        goto fail;
    if (tf_config_load(rt->paths, rt->n_paths, rt->reg, diag, &g->cfg) != TF_OK) {
        log_diag(diag, TF_LOG_ERROR);
        goto fail;
    }
    tf_diag_destroy(diag);
    return g;
fail:
    tf_diag_destroy(diag);
    free(g);
    return NULL;
}

static int generation_start(generation *g)
{
    for (size_t i = 0; i < g->n_pipelines; i++)
        if (tf_pipeline_start(g->pipelines[i]) != TF_OK)
            return TF_ENOMEM;
    return TF_OK;
}

static void apply_log_settings(const tf_config *cfg)
{
    tf_log_set_level(cfg->log.level);
    tf_log_set_json(cfg->log.json);
}

/* One pipeline's readiness word for the /readyz detail (`reason` is scratch space): false
 * when a leased pipeline lost Redis, an unleased one's plugins cannot reach it (the API role),
 * or every write has failed for longer than the lease ttl (Redis OOM, an ACL change). */
static bool pipeline_ready(tf_pipeline *p, const char **state, char *reason, size_t size)
{
    tf_lease *l = tf_pipeline_lease(p);
    *state = "running";
    if (l) {
        tf_lease_state s = tf_lease_get_state(l);
        *state = s == TF_LEASE_HELD      ? "holder"
                 : s == TF_LEASE_STANDBY ? "standby"
                                         : "redis_unreachable";
        if (s == TF_LEASE_UNREACHABLE)
            return false;
    } else if (!tf_redis_pipeline_reachable(tf_pipeline_name(p))) {
        *state = "redis_unreachable";
        return false;
    }
    if (tf_pipeline_write_failing(p, reason, size)) {
        *state = reason;
        return false;
    }
    return true;
}

/* Ready when every pipeline is (pipeline_ready). The detail lists each pipeline's state. */
static bool readiness(void *arg, char *buf, size_t size)
{
    runtime *rt = arg;
    pthread_mutex_lock(&rt->lock);
    generation *g = rt->current;
    bool ready = g != NULL;
    json_t *detail = json_object();
    for (size_t i = 0; g && i < g->n_pipelines; i++) {
        const char *state = NULL;
        char reason[160];
        if (!pipeline_ready(g->pipelines[i], &state, reason, sizeof reason))
            ready = false;
        json_object_set_new(detail, tf_pipeline_name(g->pipelines[i]), json_string(state));
    }
    pthread_mutex_unlock(&rt->lock);
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(buf, size, "%s", text ? text : "{}");
    free(text);
    json_decref(detail);
    return ready;
}

/* Starts, restarts or stops the metrics listener to match the configuration. */
static void sync_httpd(runtime *rt, const tf_config *cfg)
{
    const char *want = cfg->metrics.listen;
    if (rt->httpd_listen && want && strcmp(rt->httpd_listen, want) == 0)
        return;
    if (rt->httpd) {
        tf_httpd_stop(rt->httpd);
        rt->httpd = NULL;
        free(rt->httpd_listen);
        rt->httpd_listen = NULL;
    }
    if (!want)
        return;
    char err[256] = "";
    rt->httpd = tf_httpd_start(want, readiness, rt, err, sizeof err);
    if (!rt->httpd) {
        tf_log(TF_LOG_ERROR, COMPONENT, "metrics listener on %s failed: %s", want, err);
        return;
    }
    rt->httpd_listen = strdup(want);
    tf_log(TF_LOG_INFO, COMPONENT, "metrics on http://%s/metrics", want);
}

/* Swaps rt->current under the lock the readiness probe takes. */
static void set_current(runtime *rt, generation *g)
{
    pthread_mutex_lock(&rt->lock);
    rt->current = g;
    pthread_mutex_unlock(&rt->lock);
}

/* Validation happens before anything running is touched. The old pipelines are then stopped
 * before the new ones are created, because plugins may hold exclusive resources (a listening
 * port, a lease); if the new ones cannot be created the old configuration is brought back. */
static void reload(runtime *rt)
{
    tf_log(TF_LOG_INFO, COMPONENT, "SIGHUP: reloading configuration");
    generation *next = generation_load(rt);
    if (!next) {
        tf_log(TF_LOG_ERROR, COMPONENT,
               "configuration reload rejected (errors above); the "
               "running configuration stays in effect");
        return;
    }
    generation *old = rt->current;
    set_current(rt, NULL);
    generation_drop_pipelines(old);
    if (generation_create_pipelines(next) != TF_OK) {
        tf_log(TF_LOG_ERROR, COMPONENT,
               "new configuration failed to start; restoring the "
               "previous one");
        generation_destroy(next);
        next = old;
        old = NULL;
        if (generation_create_pipelines(next) != TF_OK)
            tf_log(TF_LOG_ERROR, COMPONENT,
                   "previous configuration failed to start too: no "
                   "pipeline runs until the next successful reload");
    }
    generation_destroy(old);
    set_current(rt, next);
    apply_log_settings(next->cfg);
    sync_httpd(rt, next->cfg);
    if (generation_start(next) != TF_OK)
        tf_log(TF_LOG_ERROR, COMPONENT, "a pipeline thread could not be started");
    tf_log(TF_LOG_INFO, COMPONENT, "configuration in effect: %zu pipeline(s)", next->n_pipelines);
}

static void wait_for_signals(runtime *rt)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(rt);
            continue;
        }
        tf_log(TF_LOG_INFO, COMPONENT, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
}

int tf_runtime_run(const tf_registry *reg, const char *const *paths, size_t n_paths)
{
    runtime rt = {.reg = reg, .paths = paths, .n_paths = n_paths};
    pthread_mutex_init(&rt.lock, NULL);
    rt.current = generation_load(&rt);
    if (!rt.current) {
        pthread_mutex_destroy(&rt.lock);
        return 2;
    }
    if (generation_create_pipelines(rt.current) != TF_OK) {
        tf_log(TF_LOG_ERROR, COMPONENT, "could not start");
        generation_destroy(rt.current);
        pthread_mutex_destroy(&rt.lock);
        return 1;
    }
    apply_log_settings(rt.current->cfg);
    sync_httpd(&rt, rt.current->cfg);
    int rc = 0;
    if (generation_start(rt.current) != TF_OK) {
        tf_log(TF_LOG_ERROR, COMPONENT, "a pipeline thread could not be started");
        rc = 1;
    } else {
        tf_log(TF_LOG_INFO, COMPONENT, "tickflow %s running %zu pipeline(s)", TF_VERSION_STRING,
               rt.current->n_pipelines);
        wait_for_signals(&rt);
    }
    if (rt.httpd)
        tf_httpd_stop(rt.httpd);
    generation_destroy(rt.current);
    free(rt.httpd_listen);
    pthread_mutex_destroy(&rt.lock);
    tf_log(TF_LOG_INFO, COMPONENT, "stopped");
    return rc;
}
