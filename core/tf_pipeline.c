/*
 * One running pipeline: instances, lease, and the tick thread.
 *
 * Schedule: tick n is due at start + n * period on the monotonic clock (deadlines are absolute,
 * so ticks never drift, as collectd's read loop does). When a tick ends after the next deadline,
 * the deadlines it overran are skipped and counted in tickflow_pipeline_overruns_total.
 * Sources of a tick run in parallel (so the tickers of one tick are close in time) and so do
 * sinks (one slow output does not hold back the others); transforms run in order.
 */
#include "tf_pipeline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_instance.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_record.h"
#include "tf_redis.h"

struct tf_pipeline {
    const tf_pipeline_config *cfg; /* borrowed */
    const tf_config *runtime;      /* borrowed */
    char component[96];
    tf_instance **sources; /* owned, cfg->n_sources entries */
    tf_instance **transforms;
    tf_instance **sinks;
    tf_lease *lease; /* owned; NULL without lease */
    char *fence_key; /* owned copy for tf_tick */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* CLOCK_MONOTONIC */
    bool nudged;           /* under lock: the lease was acquired, look at it before `due` */
    int64_t failing_since; /* under lock: monotonic ms of the first write of the current
                            * streak of failed writes; 0 while the last tick's writes all
                            * succeeded */
    bool failing_exported; /* tick thread: what tickflow_pipeline_write_failing says */
    atomic_ulong ticks;
    bool was_holder; /* for logging holder/standby transitions once */
    tf_batch *batch;
    tf_interest *interest; /* owned: symbols stages ask this pipeline's sources to fetch */
};

/* --- metrics --- */

static const char *const pipeline_label[] = {"pipeline", NULL};

static tf_metric *ticks_metric(void)
{
    static const char *const labels[] = {"pipeline", "result", NULL};
    return tf_metrics_register(TF_METRIC_COUNTER, "tickflow_pipeline_ticks_total",
                               "Ticks by result: ok, error (a stage failed), standby (another "
                               "replica holds the lease)",
                               labels, NULL, 0);
}

static tf_metric *overruns_metric(void)
{
    return tf_metrics_register(TF_METRIC_COUNTER, "tickflow_pipeline_overruns_total",
                               "Ticks skipped because the previous tick overran its period",
                               pipeline_label, NULL, 0);
}

static tf_metric *duration_metric(void)
{
    return tf_metrics_register(TF_METRIC_HISTOGRAM, "tickflow_pipeline_tick_duration_seconds",
                               "Wall time of one tick, sources to sinks", pipeline_label, NULL, 0);
}

static tf_metric *write_failing_metric(void)
{
    return tf_metrics_register(TF_METRIC_GAUGE, "tickflow_pipeline_write_failing",
                               "1 while every sink write of the pipeline on this replica has "
                               "failed for longer than its lease ttl (Redis OOM, ACL); the replica "
                               "is then not ready",
                               pipeline_label, NULL, 0);
}

static void count_tick(tf_pipeline *p, const char *result)
{
    const char *values[] = {p->cfg->name, result};
    tf_metric *m = ticks_metric();
    if (m)
        tf_metric_add(m, values, 1);
}

/* --- creation --- */

static tf_instance **create_stage(const tf_pipeline_config *cfg, const tf_stage_config *stages,
                                  size_t n, tf_pipeline *p, tf_http *http)
{
    tf_instance **out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = tf_instance_create(&stages[i], cfg->name, http, &p->runtime->redis, p->interest,
                                    &p->stop);
        if (!out[i]) {
            for (size_t j = 0; j < i; j++)
                tf_instance_destroy(out[j]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static void destroy_stage(tf_instance **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        tf_instance_destroy(list[i]);
    free(list);
}

static int init_sync(tf_pipeline *p)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return TF_ENOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return TF_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    return TF_OK;
}

tf_pipeline *tf_pipeline_create(const tf_pipeline_config *cfg, const tf_config *runtime,
                                tf_http *http)
{
    tf_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = cfg;
    p->runtime = runtime;
    atomic_init(&p->stop, false);
    atomic_init(&p->ticks, 0);
    snprintf(p->component, sizeof p->component, "pipeline/%s", cfg->name);
    if (init_sync(p) != TF_OK) {
        free(p);
        return NULL;
    }
    p->batch = tf_batch_create();
    p->interest = tf_interest_create();
    if (!p->batch || !p->interest)
        goto fail;
    p->sources = create_stage(cfg, cfg->sources, cfg->n_sources, p, http);
    if (!p->sources)
        goto fail;
    p->transforms = create_stage(cfg, cfg->transforms, cfg->n_transforms, p, http);
    if (!p->transforms)
        goto fail;
    p->sinks = create_stage(cfg, cfg->sinks, cfg->n_sinks, p, http);
    if (!p->sinks)
        goto fail;
    if (cfg->lease) {
        p->lease = tf_lease_create(&runtime->redis, cfg->name, cfg->lease_ttl_ms, cfg->every_ms);
        if (!p->lease)
            goto fail;
        p->fence_key = strdup(tf_lease_fence_key(p->lease));
        if (!p->fence_key)
            goto fail;
    }
    return p;
fail:
    tf_log(TF_LOG_ERROR, p->component, "could not create pipeline '%s'", cfg->name);
    tf_pipeline_destroy(p);
    return NULL;
}

/* --- running stages in parallel --- */

/* A stage abandoned because the runtime is stopping did not fail. */
static bool stage_ok(int rc)
{
    return rc == TF_OK || rc == TF_ESTOPPED;
}

typedef struct stage_job {
    tf_instance *inst;
    const tf_tick *tick;
    tf_batch *batch;       /* collect: the source's own batch */
    const tf_batch *input; /* write: the shared batch (read only) */
    int rc;
} stage_job;

static void *collect_job(void *arg)
{
    stage_job *job = arg;
    job->rc = tf_instance_collect(job->inst, job->tick, job->batch);
    return NULL;
}

static void *write_job(void *arg)
{
    stage_job *job = arg;
    job->rc = tf_instance_write(job->inst, job->tick, job->input);
    return NULL;
}

/* Runs fn over jobs, on threads when there is more than one; a job whose thread cannot be
 * created runs inline instead, so nothing is ever lost. */
static void run_jobs(stage_job *jobs, size_t n, void *(*fn)(void *))
{
    if (n == 1) {
        fn(&jobs[0]);
        return;
    }
    pthread_t *threads = calloc(n, sizeof *threads);
    bool *started = calloc(n, sizeof *started);
    for (size_t i = 0; i < n; i++) {
        started[i] = threads && started && pthread_create(&threads[i], NULL, fn, &jobs[i]) == 0;
        if (!started[i])
            fn(&jobs[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (started && started[i])
            pthread_join(threads[i], NULL);
    free(threads);
    free(started);
}

/* Sources run in parallel, each into its own batch; their records are then appended in the
 * order the sources are listed, so output order does not depend on timing. */
static int run_sources(tf_pipeline *p, const tf_tick *tick)
{
    size_t n = p->cfg->n_sources;
    stage_job *jobs = calloc(n, sizeof *jobs);
    int failures = 0;
    if (!jobs)
        return 1;
    /* A source whose batch cannot be allocated is counted as failed and skipped. */
    size_t runnable = 0;
    for (size_t i = 0; i < n; i++) {
        tf_batch *own = tf_batch_create();
        if (!own) {
            failures++;
            continue;
        }
        jobs[runnable++] = (stage_job){.inst = p->sources[i], .tick = tick, .batch = own};
    }
    if (runnable)
        run_jobs(jobs, runnable, collect_job);
    for (size_t i = 0; i < runnable; i++) {
        if (!stage_ok(jobs[i].rc))
            failures++;
        if (tf_batch_move(p->batch, jobs[i].batch) != TF_OK)
            failures++;
        tf_batch_destroy(jobs[i].batch);
    }
    free(jobs);
    return failures;
}

static int run_transforms(tf_pipeline *p, const tf_tick *tick)
{
    int failures = 0;
    for (size_t i = 0; i < p->cfg->n_transforms; i++)
        if (!stage_ok(tf_instance_process(p->transforms[i], tick, p->batch)))
            failures++;
    return failures;
}

static int run_sinks(tf_pipeline *p, const tf_tick *tick)
{
    size_t n = p->cfg->n_sinks;
    stage_job *jobs = calloc(n, sizeof *jobs);
    if (!jobs)
        return 1;
    for (size_t i = 0; i < n; i++)
        jobs[i] = (stage_job){.inst = p->sinks[i], .tick = tick, .input = p->batch};
    run_jobs(jobs, n, write_job);
    int failures = 0;
    for (size_t i = 0; i < n; i++)
        if (!stage_ok(jobs[i].rc))
            failures++;
    free(jobs);
    return failures;
}

/* --- failing writes --- */

/* How long writes may keep failing before the replica says it is not ready: the lease ttl, the
 * time after which a standby could have taken over from a holder that stopped writing. */
static int64_t failing_after_ms(const tf_pipeline *p)
{
    return p->cfg->lease_ttl_ms > 0 ? p->cfg->lease_ttl_ms : 2000;
}

/* Monotonic ms at which the current failing streak turns the replica unready; 0 when none. */
static int64_t failing_deadline(tf_pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    int64_t since = p->failing_since;
    pthread_mutex_unlock(&p->lock);
    return since ? since + failing_after_ms(p) : 0;
}

/* Sets tickflow_pipeline_write_failing to what the streak says now (tick thread). */
static void export_failing(tf_pipeline *p)
{
    int64_t deadline = failing_deadline(p);
    bool failing = deadline && tf_mono_ms() >= deadline;
    if (failing == p->failing_exported)
        return;
    p->failing_exported = failing;
    if (failing)
        tf_log(TF_LOG_WARN, p->component,
               "every write has failed for more than %lld ms: not ready until one succeeds",
               (long long)failing_after_ms(p));
    else
        tf_log(TF_LOG_INFO, p->component, "writes succeed again: ready");
    tf_metric *m = write_failing_metric();
    const char *values[] = {p->cfg->name};
    if (m)
        tf_metric_set(m, values, failing ? 1.0 : 0.0);
}

/* A tick's writes: all sinks succeeded (ends the streak) or at least one failed. A standby
 * (ok = true) writes nothing and so is not failing either. */
static void note_writes(tf_pipeline *p, bool ok)
{
    pthread_mutex_lock(&p->lock);
    if (ok)
        p->failing_since = 0;
    else if (!p->failing_since)
        p->failing_since = tf_mono_ms();
    pthread_mutex_unlock(&p->lock);
    export_failing(p);
}

bool tf_pipeline_write_failing(tf_pipeline *p, char *reason, size_t size)
{
    int64_t deadline = failing_deadline(p);
    int64_t now = tf_mono_ms();
    if (!deadline || now < deadline)
        return false;
    /* A replica that lost the lease meanwhile writes nothing any more (its tick thread may
     * sleep until the end of a long period before it notices and clears the streak). */
    if (p->lease && !tf_lease_check(p->lease, NULL))
        return false;
    snprintf(reason, size, "write_failing: every write has failed for %lld ms (limit %lld ms)",
             (long long)(now - deadline + failing_after_ms(p)), (long long)failing_after_ms(p));
    return true;
}

static void run_tick(tf_pipeline *p, uint64_t seq, int64_t scheduled_wall_ms, int64_t deadline,
                     uint64_t fence)
{
    tf_tick tick = {
        .struct_size = sizeof(tf_tick),
        .pipeline = p->cfg->name,
        .seq = seq,
        .scheduled_ms = scheduled_wall_ms,
        .deadline_ms = deadline,
        .fence = fence,
        .fence_key = p->lease ? p->fence_key : NULL,
        .key_prefix = p->runtime->redis.prefix ? p->runtime->redis.prefix : "tf",
    };
    int64_t started = tf_mono_ms();
    tf_batch_clear(p->batch);
    /* A tick that has started runs to its end even when a stop is requested: what the
     * sources fetched is written, not dropped (in-flight HTTP transfers abort instead). */
    int failures = run_sources(p, &tick);
    failures += run_transforms(p, &tick);
    int sink_failures = run_sinks(p, &tick);
    failures += sink_failures;
    note_writes(p, sink_failures == 0);
    tf_batch_clear(p->batch);
    atomic_fetch_add(&p->ticks, 1);
    count_tick(p, failures ? "error" : "ok");
    tf_metric *m = duration_metric();
    const char *values[] = {p->cfg->name};
    if (m)
        tf_metric_observe(m, values, (double)(tf_mono_ms() - started) / 1000.0);
}

/* --- the tick thread --- */

/* Waits until the monotonic instant `until`, a stop request or a nudge (the lease was
 * acquired); true when stopping. */
static bool wait_until(tf_pipeline *p, int64_t until)
{
    struct timespec ts;
    tf_mono_to_timespec(until, &ts);
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stop) && !p->nudged && tf_mono_ms() < until)
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    p->nudged = false;
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->stop);
}

/* tf_lease_acquired_fn: wakes the tick thread, which runs a tick at once for a new holding. */
static void nudge(void *arg)
{
    tf_pipeline *p = arg;
    pthread_mutex_lock(&p->lock);
    p->nudged = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* May this replica run the tick? Logs the holder/standby transition once. *holding is the
 * lease's acquisition count (0 without a lease): a new value is a new holding. */
static bool lease_allows(tf_pipeline *p, uint64_t *fence, unsigned long *holding)
{
    *fence = 0;
    *holding = 0;
    if (!p->lease)
        return true;
    bool holder = tf_lease_check_holding(p->lease, fence, holding);
    if (holder && !p->was_holder)
        tf_log(TF_LOG_INFO, p->component, "running ticks (lease held, fence %llu)",
               (unsigned long long)*fence);
    else if (!holder && p->was_holder) {
        tf_log(TF_LOG_INFO, p->component, "standing by (lease not held)");
        /* Its plugins' Redis connections are no longer needed here: a standby must not report
         * them down (TickflowRedisDown would page a healthy deployment). */
        tf_redis_idle_pipeline(p->cfg->name);
        note_writes(p, true); /* a standby writes nothing, so it is not failing */
    }
    p->was_holder = holder;
    return holder;
}

/* How often a standby replica re-checks the lease: often enough that a pipeline with a long
 * period (FX every 10 min) is taken over within about ttl, not within a whole period. */
static int64_t standby_poll_ms(const tf_pipeline *p)
{
    int64_t poll = p->cfg->lease_ttl_ms / 4;
    if (poll < 50)
        poll = 50;
    return poll < p->cfg->every_ms ? poll : p->cfg->every_ms;
}

/* Skips the deadlines a tick overran (never queued), counting them. */
static int64_t skip_overrun(tf_pipeline *p, int64_t due)
{
    const int64_t period = p->cfg->every_ms;
    int64_t now = tf_mono_ms();
    if (now <= due)
        return due;
    int64_t missed = (now - due) / period + 1;
    tf_metric *m = overruns_metric();
    const char *values[] = {p->cfg->name};
    if (m)
        tf_metric_add(m, values, (double)missed);
    tf_log(TF_LOG_WARN, p->component, "tick overran its %lld ms period: skipped %lld tick(s)",
           (long long)period, (long long)missed);
    return due + missed * period;
}

/* When the tick thread must look again: the next tick, or earlier the moment failing writes
 * turn the replica unready (the gauge must not wait for a 10-minute period). */
static int64_t next_wake(tf_pipeline *p, int64_t due)
{
    int64_t failing = failing_deadline(p);
    return failing && !p->failing_exported && failing < due ? failing : due;
}

/* Holder: tick n is due at anchor + n * period. Standby: the lease is re-checked every
 * standby_poll_ms. A new holding (the first acquisition, or the lease lost and acquired again,
 * e.g. after Redis restarted empty) runs a tick at once and anchors a new schedule: the lease
 * thread nudges this thread, so a 10-minute pipeline does not leave its keys missing for up to
 * 10 minutes. */
static void *tick_thread(void *arg)
{
    tf_pipeline *p = arg;
    const int64_t period = p->cfg->every_ms;
    int64_t anchor_mono = tf_mono_ms();
    int64_t anchor_wall = tf_now_ms();
    int64_t due = anchor_mono;
    bool running = false;      /* the previous due tick ran (holder or no lease) */
    unsigned long holding = 0; /* the lease acquisition the schedule belongs to */
    uint64_t seq = 0;
    while (!wait_until(p, next_wake(p, due))) {
        export_failing(p);
        uint64_t fence;
        unsigned long now_holding;
        if (!lease_allows(p, &fence, &now_holding)) {
            count_tick(p, "standby");
            running = false;
            due = tf_mono_ms() + standby_poll_ms(p);
            continue;
        }
        int64_t now = tf_mono_ms();
        if (!running || now_holding != holding) {
            due = now < due ? now : due;
            anchor_mono = due;
            anchor_wall = tf_now_ms() - (now - due);
            running = true;
            holding = now_holding;
        } else if (now < due) {
            continue; /* woken early: a nudge for the holding already running, or failing */
        }
        run_tick(p, ++seq, anchor_wall + (due - anchor_mono), due + period, fence);
        due = skip_overrun(p, due + period);
    }
    /* A stopped pipeline writes nothing, so it is not failing (a reload may remove it). */
    tf_metric *m = write_failing_metric();
    const char *values[] = {p->cfg->name};
    if (m && p->failing_exported)
        tf_metric_set(m, values, 0.0);
    return NULL;
}

int tf_pipeline_start(tf_pipeline *p)
{
    tf_metric *failing = write_failing_metric();
    const char *values[] = {p->cfg->name};
    if (failing)
        tf_metric_set(failing, values, 0.0); /* the series exists from the start */
    if (p->lease) {
        tf_lease_on_acquired(p->lease, nudge, p);
        if (tf_lease_start(p->lease) != TF_OK)
            return TF_ENOMEM;
    }
    if (pthread_create(&p->thread, NULL, tick_thread, p) != 0)
        return TF_ENOMEM;
    p->thread_started = true;
    tf_log(TF_LOG_INFO, p->component,
           "started: every %lld ms, %zu source(s), %zu transform(s), "
           "%zu sink(s), lease %s",
           (long long)p->cfg->every_ms, p->cfg->n_sources, p->cfg->n_transforms, p->cfg->n_sinks,
           p->lease ? "on" : "off");
    return TF_OK;
}

void tf_pipeline_request_stop(tf_pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void tf_pipeline_join(tf_pipeline *p)
{
    if (p->thread_started) {
        pthread_join(p->thread, NULL);
        p->thread_started = false;
    }
    if (p->lease)
        tf_lease_stop(p->lease);
}

void tf_pipeline_destroy(tf_pipeline *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        tf_pipeline_request_stop(p);
        tf_pipeline_join(p);
    }
    destroy_stage(p->sinks, p->cfg->n_sinks);
    destroy_stage(p->transforms, p->cfg->n_transforms);
    destroy_stage(p->sources, p->cfg->n_sources);
    if (p->lease) {
        tf_lease_stop(p->lease);
        tf_lease_destroy(p->lease);
    }
    free(p->fence_key);
    tf_batch_destroy(p->batch);
    tf_interest_destroy(p->interest);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

const char *tf_pipeline_name(const tf_pipeline *p)
{
    return p->cfg->name;
}

unsigned long tf_pipeline_ticks(const tf_pipeline *p)
{
    return atomic_load(&((tf_pipeline *)p)->ticks);
}

tf_lease *tf_pipeline_lease(const tf_pipeline *p)
{
    return p->lease;
}

/* --- reload --- */

static bool stage_keys_changed(tf_instance *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tf_instance_keys_changed(list[i]))
            return true;
    return false;
}

bool tf_pipeline_keys_changed(const tf_pipeline *p)
{
    return stage_keys_changed(p->sources, p->cfg->n_sources) ||
           stage_keys_changed(p->transforms, p->cfg->n_transforms) ||
           stage_keys_changed(p->sinks, p->cfg->n_sinks);
}
