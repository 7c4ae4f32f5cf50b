/*
 * Redis losing its data or its connections, with the product deployed as in production
 * (pipelines/demo.yaml batch replica, pipelines/api.yaml API replica, real redis-server):
 *   - restarted empty: the 10-minute FX pipeline writes again at once and premiums written after
 *     the restart are on the API within 5 s (issue 10, section 1);
 *   - Redis closing idle connections (`timeout`): no FX write is lost;
 *   - Redis refusing writes (OOM): the holder says it is not ready, with the reason and a gauge,
 *     and is ready again once writes succeed (section 4);
 *   - Redis down: the API process's /readyz on its metrics listener agrees with the API's own.
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "tf_deploy.h"

#define RECOVERY_LIMIT_MS 5000

/* One deployment per test: each changes Redis in its own way. */
typedef struct stack {
    tft_deploy *d;
    int batch_metrics; /* metrics listener port of the batch replica */
    int api_metrics;   /* ... and of the API replica; 0 when not started */
} stack;

static bool start_replica(stack *s, const char *yaml, const char *tag, int *port)
{
    *port = tft_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "TICKFLOW_METRICS_LISTEN=127.0.0.1:%d", *port);
    const char *env[] = {listen, NULL};
    return tft_deploy_start(s->d, yaml, tag, env) > 0;
}

static void stack_stop(stack *s)
{
    if (CU_get_number_of_failures() > 0) {
        tft_deploy_print_log(s->d, "batch");
        if (s->api_metrics)
            tft_deploy_print_log(s->d, "api");
    }
    tft_deploy_destroy(s->d);
    s->d = NULL;
}

static int redis_port(const stack *s)
{
    return s->d->redis->port;
}

static long long redis_integer(const stack *s, const char *fmt, const char *arg)
{
    redisReply *r = tft_redis_cmd(redis_port(s), fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static bool redis_ok(const stack *s, const char *fmt, const char *arg)
{
    redisReply *r = tft_redis_cmd(redis_port(s), fmt, arg);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* The sum of the samples of `name` whose label set contains every one of `labels` (substrings
 * such as "pipeline=\"fx\""), from a scrape of the metrics listener on `port`; -1 when none. */
static double metric_sum(int port, const char *name, const char *const *labels)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    char *text = NULL;
    double sum = -1;
    if (tft_http_get(url, NULL, 2000, &text) != 200 || !text)
        goto out;
    size_t name_len = strlen(name);
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        bool match = strncmp(line, name, name_len) == 0 && line[name_len] == '{';
        for (size_t i = 0; match && labels && labels[i]; i++)
            match = strstr(line, labels[i]) != NULL;
        const char *value = match ? strrchr(line, ' ') : NULL;
        if (value)
            sum = (sum < 0 ? 0 : sum) + strtod(value + 1, NULL);
        line = end ? end + 1 : NULL;
    }
out:
    free(text);
    return sum;
}

/* GET /readyz on 127.0.0.1:port; the status, and the body in *body when not NULL. */
static long readyz(int port, char **body)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    char *text = NULL;
    long status = tft_http_get(url, NULL, 2000, &text);
    if (body)
        *body = text;
    else
        free(text);
    return status;
}

/* --- empty restart --- */

typedef struct fresh_args {
    stack *s;
    long long after_wall_ms; /* premiums must carry a history id written after this */
} fresh_args;

/* The API serves a fresh BTC premium whose ts (from tickers fetched at its tick) is later than
 * after_wall_ms: it was computed after the restart, so it comes from the recovered chain. */
static bool api_premium_written_after(fresh_args *a)
{
    char url[128];
    snprintf(url, sizeof url, "%s/v1/premium?symbol=BTC", a->s->d->api_url);
    char *body = NULL;
    bool ok = false;
    if (tft_http_get(url, NULL, 2000, &body) != 200 || !body)
        goto out;
    /* Each premium object has its "ts" before its "stale" (api_premium_render). */
    for (const char *p = body; (p = strstr(p, "\"ts\":")) != NULL; p++) {
        long long ms = atoll(p + strlen("\"ts\":"));
        const char *stale = strstr(p, "\"stale\":");
        const char *next = strstr(p + 1, "\"ts\":");
        if (ms > a->after_wall_ms && stale && (!next || stale < next) &&
            strncmp(stale, "\"stale\":false", strlen("\"stale\":false")) == 0)
            ok = true;
    }
out:
    free(body);
    return ok;
}

static bool recovered(void *arg)
{
    fresh_args *a = arg;
    return redis_integer(a->s, "EXISTS %s", "tf:fx:USDKRW") == 1 && api_premium_written_after(a);
}

static bool fx_cached(void *arg)
{
    return redis_integer(arg, "EXISTS %s", "tf:fx:USDKRW") == 1;
}

static bool api_fresh(void *arg)
{
    fresh_args *a = arg;
    return api_premium_written_after(a);
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_empty_restart(void)
{
    stack s = {.d = tft_deploy_create()};
    CU_ASSERT_FATAL(s.d != NULL);
    CU_ASSERT_FATAL(start_replica(&s, "pipelines/demo.yaml", "batch", &s.batch_metrics));
    CU_ASSERT_FATAL(start_replica(&s, "pipelines/api.yaml", "api", &s.api_metrics));
    fresh_args before = {.s = &s, .after_wall_ms = 0};
    CU_ASSERT(tft_wait_until(fx_cached, &s, 20000));
    CU_ASSERT(tft_wait_until(api_fresh, &before, 20000));
    /* The FX pipeline (every: 10m) wrote once at start; its next tick is minutes away. Its
     * sink's connection has been idle since, as in production. */
    const char *fx_ok[] = {"pipeline=\"fx\"", "result=\"ok\"", NULL};
    CU_ASSERT_EQUAL(metric_sum(s.batch_metrics, "tickflow_pipeline_ticks_total", fx_ok), 1);

    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(s.d->redis), 0); /* no persistence: empty */
    long long restarted = tft_mono_ms();
    fresh_args after = {.s = &s, .after_wall_ms = wall_ms()};
    CU_ASSERT_EQUAL(redis_integer(&s, "DBSIZE%s", ""), 0);
    bool back = tft_wait_until(recovered, &after, 30000);
    long long took = tft_mono_ms() - restarted;
    fprintf(stderr, "\nrecovery after an empty Redis restart: %s in %lld ms (limit %d ms)\n",
            back ? "FX cached again and fresh premiums on the API" : "NOT recovered", took,
            RECOVERY_LIMIT_MS);
    CU_ASSERT(back);
    CU_ASSERT(took < RECOVERY_LIMIT_MS);
    /* The FX pipeline then keeps its cadence: one prompt tick per holding (normally 2: the
     * start and the re-acquisition after the restart), not a burst. */
    const char *fx[] = {"pipeline=\"fx\"", NULL};
    double holdings = metric_sum(s.batch_metrics, "tickflow_lease_acquisitions_total", fx);
    CU_ASSERT(holdings >= 2);
    CU_ASSERT_EQUAL(metric_sum(s.batch_metrics, "tickflow_pipeline_ticks_total", fx_ok), holdings);
    stack_stop(&s);
}

/* --- Redis timeout --- */

#define TIMEOUT_TICKS 5

/* pipelines/demo.yaml with the FX period shortened from 10m to 4s, so that several FX ticks
 * each find their connection closed by Redis's 2 s idle timeout (as 10m does with `timeout
 * 10` in production). Redis compares whole seconds (idle > timeout, in unixtime), so the
 * period leaves a full second of margin: 3 s would be closed only about half the time. NULL on
 * failure; malloc'd path. */
static char *fast_fx_yaml(const tft_deploy *d)
{
    char *text = tft_read_file(tft_source_path("pipelines/demo.yaml"), NULL);
    char *at = text ? strstr(text, "every: 10m") : NULL;
    char *path = malloc(1024);
    bool ok = at && path;
    if (ok) {
        memcpy(at, "every: 4s ", strlen("every: 10m"));
        snprintf(path, 1024, "%s/demo-fx4s.yaml", d->dir);
        ok = tft_write_file(path, text) == 0;
    }
    free(text);
    if (!ok) {
        free(path);
        return NULL;
    }
    return path;
}

typedef struct count_args {
    int port;
    const char *name;
    const char *const *labels;
    double at_least;
} count_args;

static bool count_reached(void *arg)
{
    count_args *c = arg;
    return metric_sum(c->port, c->name, c->labels) >= c->at_least;
}

static void test_idle_timeout_loses_no_write(void)
{
    stack s = {.d = tft_deploy_create()};
    CU_ASSERT_FATAL(s.d != NULL);
    CU_ASSERT_FATAL(redis_ok(&s, "CONFIG SET timeout %s", "2"));
    char *yaml = fast_fx_yaml(s.d);
    CU_ASSERT_FATAL(yaml != NULL);
    CU_ASSERT_FATAL(start_replica(&s, yaml, "batch", &s.batch_metrics));
    free(yaml);
    const char *fx_ok[] = {"pipeline=\"fx\"", "result=\"ok\"", NULL};
    count_args ticks = {s.batch_metrics, "tickflow_pipeline_ticks_total", fx_ok, TIMEOUT_TICKS};
    CU_ASSERT(tft_wait_until(count_reached, &ticks, 60000));
    /* Every tick wrote (the sink's batch count), none failed: the connection Redis had closed
     * while idle was replaced and the write sent again. */
    const char *fx_failed[] = {"pipeline=\"fx\"", "result=\"failed\"", NULL};
    const char *fx_written[] = {"pipeline=\"fx\"", "result=\"ok\"", NULL};
    double ok_ticks = metric_sum(s.batch_metrics, "tickflow_pipeline_ticks_total", fx_ok);
    double failed = metric_sum(s.batch_metrics, "tickflow_redis_sink_batches_total", fx_failed);
    double written = metric_sum(s.batch_metrics, "tickflow_redis_sink_batches_total", fx_written);
    /* Redis did close the idle connections: each was re-established. */
    const char *fx_sink[] = {"who=\"fx/redis\"", NULL};
    double reconnects = metric_sum(s.batch_metrics, "tickflow_redis_reconnects_total", fx_sink);
    fprintf(stderr,
            "\nRedis timeout 2 s, FX every 4 s: %g tick(s) ok, %g batch(es) written, %g failed, "
            "%g reconnect(s) of the FX connections\n",
            ok_ticks, written, failed, reconnects);
    CU_ASSERT(ok_ticks >= TIMEOUT_TICKS);
    CU_ASSERT_EQUAL(failed, 0);
    const char *fx_error[] = {"pipeline=\"fx\"", "result=\"error\"", NULL};
    CU_ASSERT(metric_sum(s.batch_metrics, "tickflow_pipeline_ticks_total", fx_error) <= 0);
    CU_ASSERT(written >= ok_ticks - 1); /* a tick in progress at the scrape may not count yet */
    CU_ASSERT(reconnects >= TIMEOUT_TICKS - 2);
    stack_stop(&s);
}

/* --- writes refused: not ready --- */

typedef struct ready_args {
    int port;
    long status;
    const char *needle; /* in the body, or NULL */
} ready_args;

static bool ready_is(void *arg)
{
    ready_args *a = arg;
    char *body = NULL;
    bool ok =
        readyz(a->port, &body) == a->status && (!a->needle || (body && strstr(body, a->needle)));
    free(body);
    return ok;
}

static void test_oom_holder_not_ready(void)
{
    stack s = {.d = tft_deploy_create()};
    CU_ASSERT_FATAL(s.d != NULL);
    CU_ASSERT_FATAL(start_replica(&s, "pipelines/demo.yaml", "batch", &s.batch_metrics));
    ready_args ready = {s.batch_metrics, 200, "\"kimchi\":\"holder\""};
    CU_ASSERT_FATAL(tft_wait_until(ready_is, &ready, 20000));
    const char *kimchi[] = {"pipeline=\"kimchi\"", NULL};
    CU_ASSERT_EQUAL(metric_sum(s.batch_metrics, "tickflow_pipeline_write_failing", kimchi), 0);
    /* The FX pipeline's one tick (every: 10m) must be done before the OOM: a write refused then
     * would keep it write_failing, rightly, until its next tick ten minutes later. */
    const char *fx_ok[] = {"pipeline=\"fx\"", "result=\"ok\"", NULL};
    count_args fx_ticked = {s.batch_metrics, "tickflow_pipeline_ticks_total", fx_ok, 1};
    CU_ASSERT_FATAL(tft_wait_until(count_reached, &fx_ticked, 20000));

    /* Every write refused with OOM; the lease's compare-and-extend (GET, PEXPIRE) still works,
     * so the replica keeps the lease while nothing it computes reaches Redis. */
    CU_ASSERT_FATAL(redis_ok(&s, "CONFIG SET maxmemory-policy %s", "noeviction"));
    CU_ASSERT_FATAL(redis_ok(&s, "CONFIG SET maxmemory %s", "1"));
    long long since = tft_mono_ms();
    ready_args failing = {s.batch_metrics, 503, "write_failing"};
    CU_ASSERT(tft_wait_until(ready_is, &failing, 15000));
    fprintf(stderr, "\nOOM: /readyz 503 (write_failing) after %lld ms (lease ttl 2 s)\n",
            tft_mono_ms() - since);
    char *body = NULL;
    readyz(s.batch_metrics, &body);
    fprintf(stderr, "  %s\n", body ? body : "(no body)");
    CU_ASSERT(body && strstr(body, "\"kimchi\":\"write_failing"));
    free(body);
    count_args gauge = {s.batch_metrics, "tickflow_pipeline_write_failing", kimchi, 1};
    CU_ASSERT(tft_wait_until(count_reached, &gauge, 5000));
    CU_ASSERT_EQUAL(redis_integer(&s, "EXISTS %s", "tf:lease:kimchi"), 1);

    CU_ASSERT_FATAL(redis_ok(&s, "CONFIG SET maxmemory %s", "0"));
    CU_ASSERT(tft_wait_until(ready_is, &ready, 15000));
    CU_ASSERT_EQUAL(metric_sum(s.batch_metrics, "tickflow_pipeline_write_failing", kimchi), 0);
    stack_stop(&s);
}

/* --- the API process's two /readyz agree --- */

typedef struct both_args {
    stack *s;
    long status;
} both_args;

static bool both_ready_are(void *arg)
{
    both_args *b = arg;
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", b->s->d->api_url);
    return tft_http_get(url, NULL, 2000, NULL) == b->status &&
           readyz(b->s->api_metrics, NULL) == b->status;
}

static void test_api_readiness_agrees(void)
{
    stack s = {.d = tft_deploy_create()};
    CU_ASSERT_FATAL(s.d != NULL);
    CU_ASSERT_FATAL(start_replica(&s, "pipelines/demo.yaml", "batch", &s.batch_metrics));
    CU_ASSERT_FATAL(start_replica(&s, "pipelines/api.yaml", "api", &s.api_metrics));
    both_args up = {&s, 200}, down = {&s, 503};
    CU_ASSERT_FATAL(tft_wait_until(both_ready_are, &up, 20000));
    tft_redis_stop(s.d->redis);
    long long stopped = tft_mono_ms();
    CU_ASSERT(tft_wait_until(both_ready_are, &down, 20000));
    fprintf(stderr, "\nRedis down: both /readyz 503 after %lld ms\n", tft_mono_ms() - stopped);
    char *body = NULL;
    readyz(s.api_metrics, &body);
    CU_ASSERT(body && strstr(body, "\"api\":\"redis_unreachable\""));
    free(body);
    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(s.d->redis), 0);
    long long restarted = tft_mono_ms();
    CU_ASSERT(tft_wait_until(both_ready_are, &up, 30000));
    fprintf(stderr, "Redis back: both /readyz 200 after %lld ms\n", tft_mono_ms() - restarted);
    stack_stop(&s);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"empty Redis restart: FX and fresh premiums back within 5 s", test_empty_restart},
        {"Redis idle timeout: no FX write lost", test_idle_timeout_loses_no_write},
        {"Redis OOM: the holder is not ready, then ready again", test_oom_holder_not_ready},
        {"Redis down: the API's two /readyz agree", test_api_readiness_agrees},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("redis recovery", tests, NULL, NULL);
}
