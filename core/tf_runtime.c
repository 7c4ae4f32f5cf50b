/*
 * The runtime: configuration, shared HTTP client, pipelines and metrics listener, driven by
 * signals received with sigwait in the main thread (no work in signal handlers).
 *
 * Reload (SIGHUP) validates the new configuration before touching the running one; an invalid
 * one is rejected with its errors logged. A valid one restarts only the pipelines whose
 * configuration changed (tf_config_diff decides); see reload() for the swap itself.
 */
#include "tf_runtime.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_config_diff.h"
#include "tf_http.h"
#include "tf_httpd.h"
#include "tf_lease.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_pipeline.h"
#include "tf_redis.h"

#define COMPONENT "runtime"

/* A loaded configuration, shared: a pipeline borrows from the configuration it was created
 * from, and one that reloads carry over keeps borrowing it while later ones come and go. */
typedef struct config_ref {
    tf_config *cfg; /* owned */
    size_t refs;
} config_ref;

/* One pipeline of a generation. */
typedef struct slot {
    tf_pipeline *pipeline;          /* owned; NULL while stopped (or if it could not be made) */
    const tf_pipeline_config *pcfg; /* borrowed from `from` */
    config_ref *from;               /* a reference: what `pipeline` borrows from */
} slot;

/* Everything in effect: the configuration, the HTTP client, the pipelines. */
typedef struct generation {
    config_ref *cfg; /* a reference: the runtime settings in effect */
    tf_http *http;   /* owned; every pipeline of the generation was created with it */
    slot *slots;     /* in the order of cfg's pipelines */
    size_t n_slots;
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

/* --- configurations and generations --- */

/* Takes ownership of cfg; NULL (cfg destroyed) when out of memory. */
static config_ref *config_ref_new(tf_config *cfg)
{
    config_ref *r = calloc(1, sizeof *r);
    if (!r) {
        tf_config_destroy(cfg);
        return NULL;
    }
    r->cfg = cfg;
    r->refs = 1;
    return r;
}

static config_ref *config_ref_hold(config_ref *r)
{
    r->refs++;
    return r;
}

static void config_ref_drop(config_ref *r)
{
    if (!r || --r->refs > 0)
        return;
    tf_config_destroy(r->cfg);
    free(r);
}

/* Loads and validates the configuration; NULL (errors logged) when it is invalid. */
static config_ref *config_load(runtime *rt)
{
    tf_diag *diag = tf_diag_create();
    tf_config *cfg = NULL;
    if (!diag)
        return NULL;
    if (tf_config_load(rt->paths, rt->n_paths, rt->reg, diag, &cfg) != TF_OK)
        log_diag(diag, TF_LOG_ERROR);
    tf_diag_destroy(diag);
    return cfg ? config_ref_new(cfg) : NULL;
}

/* Creates (without starting) the pipeline `pcfg` of `from` into s, which takes a reference on
 * `from`. */
static int slot_create(slot *s, config_ref *from, const tf_pipeline_config *pcfg, tf_http *http)
{
    s->pcfg = pcfg;
    if (s->from != from) {
        config_ref_drop(s->from);
        s->from = config_ref_hold(from);
    }
    s->pipeline = tf_pipeline_create(pcfg, from->cfg, http);
    return s->pipeline ? TF_OK : TF_ERR;
}

/* Stops and frees the pipeline of each slot, all asked at once so that they stop in parallel;
 * the slots keep their configuration (a reload may create them again). */
static void slots_stop(slot *slots, size_t n, const bool *which)
{
    for (size_t i = 0; i < n; i++)
        if (slots[i].pipeline && (!which || which[i]))
            tf_pipeline_request_stop(slots[i].pipeline);
    for (size_t i = 0; i < n; i++) {
        if (!which || which[i]) {
            tf_pipeline_destroy(slots[i].pipeline);
            slots[i].pipeline = NULL;
        }
    }
}

static void generation_destroy(generation *g)
{
    if (!g)
        return;
    slots_stop(g->slots, g->n_slots, NULL);
    for (size_t i = 0; i < g->n_slots; i++)
        config_ref_drop(g->slots[i].from);
    free(g->slots);
    tf_http_destroy(g->http);
    config_ref_drop(g->cfg);
    free(g);
}

/* An empty generation for cfg (one reference taken), with room for its pipelines. */
static generation *generation_new(config_ref *cfg)
{
    generation *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = config_ref_hold(cfg);
    size_t n = cfg->cfg->n_pipelines;
    g->slots = calloc(n ? n : 1, sizeof *g->slots);
    if (!g->slots) {
        generation_destroy(g);
        return NULL;
    }
    g->n_slots = n;
    return g;
}

/* The whole configuration, created without starting: at start. NULL after logging. */
static generation *generation_create(config_ref *cfg)
{
    generation *g = generation_new(cfg);
    if (!g)
        return NULL;
    g->http = tf_http_create(&cfg->cfg->http);
    if (!g->http)
        goto fail;
    for (size_t i = 0; i < g->n_slots; i++)
        if (slot_create(&g->slots[i], cfg, &cfg->cfg->pipelines[i], g->http) != TF_OK)
            goto fail;
    return g;
fail:
    generation_destroy(g);
    return NULL;
}

/* Starts the pipelines of the slots selected by `which` (NULL: all). */
static int slots_start(slot *slots, size_t n, const bool *which)
{
    int rc = TF_OK;
    for (size_t i = 0; i < n; i++)
        if (slots[i].pipeline && (!which || which[i]))
            if (tf_pipeline_start(slots[i].pipeline) != TF_OK)
                rc = TF_ENOMEM;
    return rc;
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
    for (size_t i = 0; g && i < g->n_slots; i++) {
        tf_pipeline *p = g->slots[i].pipeline;
        const char *state = "stopped"; /* a failed reload could not bring it back */
        char reason[160];
        if (!p || !pipeline_ready(p, &state, reason, sizeof reason))
            ready = false;
        json_object_set_new(detail, g->slots[i].pcfg->name, json_string(state));
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

/* --- reload --- */

static void count_reload(const char *result)
{
    static const char *const labels[] = {"result", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_config_reloads_total",
                                       "Configuration reloads (SIGHUP) by result: applied, "
                                       "rejected (the new configuration is invalid; nothing "
                                       "changed), failed (new pipelines could not be created; "
                                       "the previous ones were restored)",
                                       labels, NULL, 0);
    const char *values[] = {result};
    if (m)
        tf_metric_add(m, values, 1);
}

static void count_reload_pipelines(const char *action, size_t n)
{
    static const char *const labels[] = {"action", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_config_reload_pipelines_total",
                                       "Pipelines handled by applied reloads: restarted (their "
                                       "configuration changed), unchanged (kept running with "
                                       "their lease and schedule), added, removed",
                                       labels, NULL, 0);
    const char *values[] = {action};
    if (m)
        tf_metric_add(m, values, (double)n);
}

#define NAMES_MAX 256

/* What a reload does to each pipeline. */
typedef struct plan {
    const char *global; /* the runtime section whose change restarts every pipeline, or NULL */
    size_t *keep;       /* per new pipeline: the old slot carried over (when !create) */
    bool *create;       /* per new pipeline: created (added, or restarted) */
    bool *stop;         /* per old slot: stopped (restarted, or removed) */
    size_t restarted, unchanged, added, removed;
    char restarted_names[NAMES_MAX], added_names[NAMES_MAX], removed_names[NAMES_MAX];
} plan;

static void plan_free(plan *pl)
{
    free(pl->keep);
    free(pl->create);
    free(pl->stop);
}

/* Appends ", name" to a list kept for the summary line; a list too long ends in "...". */
static void names_add(char *buf, size_t size, const char *name)
{
    size_t len = strlen(buf);
    if (len + 1 >= size)
        return;
    int n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", name);
    if (n < 0 || (size_t)n >= size - len)
        snprintf(buf + size - 4, 4, "...");
}

static bool find_slot(const generation *g, const char *name, size_t *at)
{
    for (size_t j = 0; j < g->n_slots; j++) {
        if (strcmp(g->slots[j].pcfg->name, name) == 0) {
            *at = j;
            return true;
        }
    }
    return false;
}

static bool find_pipeline(const tf_config *cfg, const char *name, size_t *at)
{
    for (size_t i = 0; i < cfg->n_pipelines; i++) {
        if (strcmp(cfg->pipelines[i].name, name) == 0) {
            *at = i;
            return true;
        }
    }
    return false;
}

/* Why the running pipeline of slot s must restart to become pc; false when it may go on. */
static bool restart_reason(const plan *pl, const slot *s, const tf_pipeline_config *pc, char *why,
                           size_t size)
{
    char what[48];
    if (pl->global)
        snprintf(why, size, "the %s: section changed", pl->global);
    else if (!s->pipeline)
        snprintf(why, size, "it was not running");
    else if (tf_config_diff_pipeline(s->pcfg, pc, what, sizeof what))
        snprintf(why, size, "%s changed", what);
    else if (tf_pipeline_keys_changed(s->pipeline))
        snprintf(why, size, "a key store entry it read at start changed");
    else
        return false;
    return true;
}

/* Decides the fate of the new pipeline i: carried over, restarted or added. */
static void plan_pipeline(plan *pl, const generation *old, const tf_pipeline_config *pc, size_t i)
{
    size_t j = 0;
    if (!find_slot(old, pc->name, &j)) {
        pl->create[i] = true;
        pl->added++;
        names_add(pl->added_names, sizeof pl->added_names, pc->name);
        return;
    }
    char why[96];
    if (!restart_reason(pl, &old->slots[j], pc, why, sizeof why)) {
        pl->keep[i] = j;
        pl->unchanged++;
        return;
    }
    tf_log(TF_LOG_INFO, COMPONENT, "reload: pipeline '%s' restarts (%s)", pc->name, why);
    pl->create[i] = true;
    pl->stop[j] = true;
    pl->restarted++;
    names_add(pl->restarted_names, sizeof pl->restarted_names, pc->name);
}

/* Compares the running generation with the new configuration. A change to redis:, http: or
 * keys: restarts every pipeline (tf_config_diff_runtime says why); otherwise only pipelines
 * whose own configuration changed restart, and the others keep their instances, lease and
 * schedule. */
static int plan_make(plan *pl, const generation *old, const tf_config *next)
{
    pl->keep = calloc(next->n_pipelines ? next->n_pipelines : 1, sizeof *pl->keep);
    pl->create = calloc(next->n_pipelines ? next->n_pipelines : 1, sizeof *pl->create);
    pl->stop = calloc(old->n_slots ? old->n_slots : 1, sizeof *pl->stop);
    if (!pl->keep || !pl->create || !pl->stop)
        return TF_ENOMEM;
    pl->global = tf_config_diff_runtime(old->cfg->cfg, next);
    for (size_t i = 0; i < next->n_pipelines; i++)
        plan_pipeline(pl, old, &next->pipelines[i], i);
    for (size_t j = 0; j < old->n_slots; j++) {
        size_t unused = 0;
        const char *name = old->slots[j].pcfg->name;
        if (find_pipeline(next, name, &unused))
            continue;
        pl->stop[j] = true;
        pl->removed++;
        names_add(pl->removed_names, sizeof pl->removed_names, name);
    }
    return TF_OK;
}

/* Creates the added and restarted pipelines of `next` (not started). With an unchanged
 * runtime they share the running HTTP client (its per-host state and rate limits carry on);
 * otherwise every pipeline restarts and `next` gets a client of its own. On failure what was
 * created is destroyed again. */
static int create_planned(generation *next, const generation *old, const plan *pl)
{
    tf_http *http = old->http;
    if (pl->global) {
        next->http = tf_http_create(&next->cfg->cfg->http);
        if (!next->http)
            return TF_ENOMEM;
        http = next->http;
    }
    const tf_config *cfg = next->cfg->cfg;
    for (size_t i = 0; i < next->n_slots; i++) {
        if (!pl->create[i])
            continue;
        if (slot_create(&next->slots[i], next->cfg, &cfg->pipelines[i], http) != TF_OK) {
            slots_stop(next->slots, next->n_slots, pl->create);
            return TF_ERR;
        }
    }
    return TF_OK;
}

/* Moves the unchanged pipelines, and the HTTP client they use, from old to next. Under the
 * lock: the readiness probe reads both. */
static void carry_over(runtime *rt, generation *next, generation *old, const plan *pl)
{
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < next->n_slots; i++) {
        if (pl->create[i])
            continue;
        next->slots[i] = old->slots[pl->keep[i]];
        old->slots[pl->keep[i]] = (slot){0};
    }
    if (!pl->global) {
        next->http = old->http;
        old->http = NULL;
    }
    rt->current = next;
    pthread_mutex_unlock(&rt->lock);
}

/* The new pipelines could not be created: the old ones stopped for them come back from their
 * own configuration. */
static void restore(generation *old, const bool *stopped)
{
    for (size_t j = 0; j < old->n_slots; j++) {
        slot *s = &old->slots[j];
        if (!stopped[j] || !s->from)
            continue;
        if (slot_create(s, s->from, s->pcfg, old->http) != TF_OK)
            tf_log(TF_LOG_ERROR, COMPONENT,
                   "pipeline '%s' could not be restored: it stays stopped until the next "
                   "successful reload",
                   s->pcfg->name);
    }
    if (slots_start(old->slots, old->n_slots, stopped) != TF_OK)
        tf_log(TF_LOG_ERROR, COMPONENT, "a pipeline thread could not be started");
}

static void log_plan(const plan *pl)
{
    tf_log(TF_LOG_INFO, COMPONENT,
           "reload: %zu pipeline(s) restarted%s%s%s, %zu unchanged, %zu added%s%s%s, %zu "
           "removed%s%s%s",
           pl->restarted, pl->restarted ? " (" : "", pl->restarted_names, pl->restarted ? ")" : "",
           pl->unchanged, pl->added, pl->added ? " (" : "", pl->added_names, pl->added ? ")" : "",
           pl->removed, pl->removed ? " (" : "", pl->removed_names, pl->removed ? ")" : "");
    count_reload_pipelines("restarted", pl->restarted);
    count_reload_pipelines("unchanged", pl->unchanged);
    count_reload_pipelines("added", pl->added);
    count_reload_pipelines("removed", pl->removed);
}

/* Validation happens before anything running is touched. Pipelines that restart or go away
 * are then stopped before their successors are created, because plugins may hold exclusive
 * resources (a listening port, a lease); if the successors cannot be created the stopped ones
 * are brought back. Unchanged pipelines are never touched: they keep their lease (a reload
 * storm does not hand it to another replica), their schedule and their plugin state. */
static void reload(runtime *rt)
{
    tf_log(TF_LOG_INFO, COMPONENT, "SIGHUP: reloading configuration");
    config_ref *cfg = config_load(rt);
    if (!cfg) {
        count_reload("rejected");
        tf_log(TF_LOG_ERROR, COMPONENT,
               "configuration reload rejected (errors above); the "
               "running configuration stays in effect");
        return;
    }
    generation *old = rt->current;
    generation *next = generation_new(cfg);
    config_ref_drop(cfg); /* next holds it */
    plan pl = {0};
    if (!next || plan_make(&pl, old, next->cfg->cfg) != TF_OK) {
        count_reload("failed");
        tf_log(TF_LOG_ERROR, COMPONENT,
               "reload: out of memory; the running configuration "
               "stays in effect");
        goto out;
    }
    bool stopping = pl.restarted + pl.removed > 0;
    if (stopping)
        set_current(rt, NULL); /* not ready while pipelines are stopped */
    slots_stop(old->slots, old->n_slots, pl.stop);
    if (create_planned(next, old, &pl) != TF_OK) {
        count_reload("failed");
        tf_log(TF_LOG_ERROR, COMPONENT,
               "new configuration failed to start; restoring the "
               "previous one");
        restore(old, pl.stop);
        set_current(rt, old);
        goto out;
    }
    carry_over(rt, next, old, &pl);
    generation_destroy(old); /* only stopped pipelines are left in it */
    apply_log_settings(next->cfg->cfg);
    sync_httpd(rt, next->cfg->cfg);
    if (slots_start(next->slots, next->n_slots, pl.create) != TF_OK)
        tf_log(TF_LOG_ERROR, COMPONENT, "a pipeline thread could not be started");
    count_reload("applied");
    log_plan(&pl);
    tf_log(TF_LOG_INFO, COMPONENT, "configuration in effect: %zu pipeline(s)", next->n_slots);
    next = NULL;
out:
    generation_destroy(next);
    plan_free(&pl);
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
    config_ref *cfg = config_load(&rt);
    if (!cfg) {
        pthread_mutex_destroy(&rt.lock);
        return 2;
    }
    rt.current = generation_create(cfg);
    config_ref_drop(cfg); /* the generation holds it */
    if (!rt.current) {
        tf_log(TF_LOG_ERROR, COMPONENT, "could not start");
        pthread_mutex_destroy(&rt.lock);
        return 1;
    }
    apply_log_settings(rt.current->cfg->cfg);
    sync_httpd(&rt, rt.current->cfg->cfg);
    int rc = 0;
    if (slots_start(rt.current->slots, rt.current->n_slots, NULL) != TF_OK) {
        tf_log(TF_LOG_ERROR, COMPONENT, "a pipeline thread could not be started");
        rc = 1;
    } else {
        tf_log(TF_LOG_INFO, COMPONENT, "tickflow %s running %zu pipeline(s)", TF_VERSION_STRING,
               rt.current->n_slots);
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
