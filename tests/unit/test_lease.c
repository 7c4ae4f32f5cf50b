/*
 * tf_lease against real redis-server instances. Two tf_lease objects on the same pipeline
 * name stand for two replicas. Covers mutual exclusion, handover on release and on expiry,
 * fencing tokens that grow across FLUSHALL and restarts, the local validity rule while Redis is
 * unreachable, losing the lease to a foreign token, and a prompt stop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_lease.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_test.h"

#define TTL_MS    800
#define PERIOD_MS 100
/* Scheduling slack for timing assertions (threads, ASan, a busy CI machine). */
#define SLACK_MS 300

static tf_redis_settings settings_for(int port)
{
    tf_redis_settings s = {
        .configured = true,
        .host = "127.0.0.1",
        .port = port,
        .prefix = "tftest",
        .connect_timeout_ms = 300,
        .command_timeout_ms = 300,
    };
    return s;
}

/* A pipeline name unique to this process and test, so runs sharing a Redis never collide. */
static const char *unique_name(const char *test)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s_%ld", test, (long)getpid());
    return buf;
}

static bool holds(void *arg)
{
    return tf_lease_check(arg, NULL);
}

static bool not_holds(void *arg)
{
    return !tf_lease_check(arg, NULL);
}

static bool is_unreachable(void *arg)
{
    return tf_lease_get_state(arg) == TF_LEASE_UNREACHABLE;
}

typedef struct pair {
    tf_lease *a;
    tf_lease *b;
} pair;

static bool either_holds(void *arg)
{
    pair *p = arg;
    return tf_lease_check(p->a, NULL) || tf_lease_check(p->b, NULL);
}

static uint64_t fence_of(tf_lease *l)
{
    uint64_t fence = 0;
    CU_ASSERT(tf_lease_check(l, &fence));
    return fence;
}

static char *get_key(int port, const char *key)
{
    redisReply *reply = tft_redis_cmd(port, "GET %s", key);
    char *value = NULL;
    if (reply && reply->type == REDIS_REPLY_STRING)
        value = strdup(reply->str);
    if (reply)
        freeReplyObject(reply);
    return value;
}

static void run_cmd(int port, const char *cmd, const char *arg)
{
    redisReply *reply = arg ? tft_redis_cmd(port, cmd, arg) : tft_redis_cmd(port, cmd);
    CU_ASSERT(reply != NULL && reply->type != REDIS_REPLY_ERROR);
    if (reply)
        freeReplyObject(reply);
}

static double lease_metric(tf_metric_type type, const char *name, const char *pipeline)
{
    const char *names[] = {"pipeline", NULL};
    const char *labels[] = {pipeline};
    tf_metric *m = tf_metrics_register(type, name, "", names, NULL, 0);
    return m ? tf_metric_value(m, labels) : -1.0;
}

static void test_exclusive_and_handover(void)
{
    int port = tft_shared_redis_port();
    tf_redis_settings s = settings_for(port);
    char name[128];
    snprintf(name, sizeof name, "%s", unique_name("excl"));
    pair p = {tf_lease_create(&s, name, TTL_MS, PERIOD_MS),
              tf_lease_create(&s, name, TTL_MS, PERIOD_MS)};
    CU_ASSERT_FATAL(p.a != NULL && p.b != NULL);
    char lease_key[160];
    char fence_key[160];
    snprintf(lease_key, sizeof lease_key, "tftest:lease:%s", name);
    snprintf(fence_key, sizeof fence_key, "tftest:fence:%s", name);
    CU_ASSERT_STRING_EQUAL(tf_lease_fence_key(p.a), fence_key);
    CU_ASSERT_EQUAL(tf_lease_start(p.a), TF_OK);
    CU_ASSERT_EQUAL(tf_lease_start(p.b), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(either_holds, &p, TTL_MS + SLACK_MS));

    /* Over ~2 s (several extends): never both, and one all the time. */
    int samples = 0;
    int both = 0;
    int none = 0;
    long long start = tft_mono_ms();
    while (tft_mono_ms() - start < 2000) {
        bool a = tf_lease_check(p.a, NULL);
        bool b = tf_lease_check(p.b, NULL);
        both += a && b;
        none += !a && !b;
        samples++;
        tft_sleep_ms(5);
    }
    CU_ASSERT(samples > 100);
    CU_ASSERT_EQUAL(both, 0);
    CU_ASSERT_EQUAL(none, 0);

    tf_lease *holder = tf_lease_check(p.a, NULL) ? p.a : p.b;
    tf_lease *standby = holder == p.a ? p.b : p.a;
    CU_ASSERT_EQUAL(tf_lease_get_state(holder), TF_LEASE_HELD);
    CU_ASSERT_EQUAL(tf_lease_get_state(standby), TF_LEASE_STANDBY);
    CU_ASSERT_EQUAL(tf_lease_transitions(holder), 1);
    CU_ASSERT_EQUAL(tf_lease_transitions(standby), 0);
    uint64_t first = fence_of(holder);
    CU_ASSERT(first > 0);
    char *stored = get_key(port, tf_lease_fence_key(holder));
    CU_ASSERT_FATAL(stored != NULL);
    CU_ASSERT_EQUAL(strtoull(stored, NULL, 10), first);
    free(stored);

    /* Stop the holder: it releases, the other takes over within ttl + period. */
    long long stopped = tft_mono_ms();
    tf_lease_stop(holder);
    CU_ASSERT_FALSE(tf_lease_check(holder, NULL));
    CU_ASSERT_EQUAL(tf_lease_get_state(holder), TF_LEASE_STANDBY);
    CU_ASSERT(tft_wait_until(holds, standby, TTL_MS + PERIOD_MS + SLACK_MS));
    CU_ASSERT(tft_mono_ms() - stopped < TTL_MS + PERIOD_MS + SLACK_MS);
    uint64_t second = fence_of(standby);
    CU_ASSERT(second > first);

    /* The first replica comes back as standby; the lease changes hands again on stop. */
    tf_lease_stop(holder); /* idempotent */
    CU_ASSERT_EQUAL(tf_lease_start(holder), TF_OK);
    tft_sleep_ms(3 * PERIOD_MS); /* pacing: let it try (and fail) a few times */
    CU_ASSERT_FALSE(tf_lease_check(holder, NULL));
    CU_ASSERT_EQUAL(tf_lease_get_state(holder), TF_LEASE_STANDBY);
    tf_lease_stop(standby);
    CU_ASSERT(tft_wait_until(holds, holder, TTL_MS + PERIOD_MS + SLACK_MS));
    CU_ASSERT(fence_of(holder) > second);

    tf_lease_stop(holder);
    char *left = get_key(port, lease_key);
    CU_ASSERT_PTR_NULL(left); /* released */
    free(left);
    /* Both objects share the pipeline's series in this process: the counter adds up. */
    CU_ASSERT_EQUAL(lease_metric(TF_METRIC_COUNTER, "tickflow_lease_transitions_total", name),
                    (double)(tf_lease_transitions(p.a) + tf_lease_transitions(p.b)));
    /* The lease changed hands three times: first taken, taken over, taken back. */
    CU_ASSERT_EQUAL(lease_metric(TF_METRIC_COUNTER, "tickflow_lease_acquisitions_total", name), 3);
    tf_lease_destroy(p.a);
    tf_lease_destroy(p.b);
}

/* A holder that died without releasing (kill -9): its key stays until the ttl runs out, then a
 * standby takes over within ttl + period. */
static void test_takeover_after_expiry(void)
{
    int port = tft_shared_redis_port();
    tf_redis_settings s = settings_for(port);
    const char *name = unique_name("expiry");
    tf_lease *l = tf_lease_create(&s, name, TTL_MS, PERIOD_MS);
    CU_ASSERT_FATAL(l != NULL);
    char lease_key[160];
    snprintf(lease_key, sizeof lease_key, "tftest:lease:%s", name);
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", TTL_MS);
    redisReply *reply = tft_redis_cmd(port, "SET %s dead-holder PX %s", lease_key, ttl);
    CU_ASSERT(reply && reply->type == REDIS_REPLY_STATUS);
    if (reply)
        freeReplyObject(reply);
    long long set_at = tft_mono_ms();

    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    tft_sleep_ms(TTL_MS / 2); /* pacing: well before the dead holder's key expires */
    CU_ASSERT_FALSE(tf_lease_check(l, NULL));
    CU_ASSERT_EQUAL(tf_lease_get_state(l), TF_LEASE_STANDBY);
    CU_ASSERT(tft_wait_until(holds, l, TTL_MS + PERIOD_MS + SLACK_MS));
    long long took = tft_mono_ms() - set_at;
    CU_ASSERT(took >= TTL_MS - 50); /* not before the key expired */
    CU_ASSERT(took < TTL_MS + PERIOD_MS + SLACK_MS);
    CU_ASSERT_EQUAL(lease_metric(TF_METRIC_GAUGE, "tickflow_lease_held", name), 1.0);
    CU_ASSERT(lease_metric(TF_METRIC_GAUGE, "tickflow_lease_fence", name) > 0.0);
    tf_lease_destroy(l); /* destroy without an explicit stop: stops and releases */
    CU_ASSERT_EQUAL(lease_metric(TF_METRIC_GAUGE, "tickflow_lease_held", name), 0.0);
    char *left = get_key(port, lease_key);
    CU_ASSERT_PTR_NULL(left);
    free(left);
}

/* The fencing token grows even when the fence key is lost (FLUSHALL, restart without
 * persistence); while Redis is down the holder stops believing it holds the lease within ttl,
 * and the same tf_lease holds it again once Redis is back. */
typedef struct transitions_goal {
    tf_lease *l;
    unsigned long goal;
} transitions_goal;

static bool transitions_reached(void *arg)
{
    transitions_goal *g = arg;
    return tf_lease_transitions(g->l) >= g->goal;
}

static void test_fence_survives_and_local_validity(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    tf_redis_settings s = settings_for(server->port);
    const char *name = unique_name("fence");
    tf_lease *l = tf_lease_create(&s, name, TTL_MS, PERIOD_MS);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(holds, l, TTL_MS + SLACK_MS));
    uint64_t first = fence_of(l);

    /* FLUSHALL drops the lease key and the fence key together. */
    tf_lease_stop(l);
    run_cmd(server->port, "FLUSHALL", NULL);
    char *gone = get_key(server->port, tf_lease_fence_key(l));
    CU_ASSERT_PTR_NULL(gone);
    free(gone);
    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(holds, l, TTL_MS + SLACK_MS));
    uint64_t second = fence_of(l);
    CU_ASSERT(second > first);

    /* Redis goes away under a holder: tf_lease_check turns false within ttl. */
    unsigned long transitions = tf_lease_transitions(l);
    long long down_at = tft_mono_ms();
    tft_redis_stop(server);
    CU_ASSERT(tft_wait_until(not_holds, l, TTL_MS + SLACK_MS));
    CU_ASSERT(tft_mono_ms() - down_at <= TTL_MS + SLACK_MS);
    CU_ASSERT(tft_wait_until(is_unreachable, l, 2 * SLACK_MS));
    /* The renewal thread records the transition when its failing extend returns, which can
     * be a moment after the check already reports the lease invalid. */
    transitions_goal g = {l, transitions + 1};
    CU_ASSERT(tft_wait_until(transitions_reached, &g, 2 * SLACK_MS));
    CU_ASSERT_EQUAL(tf_lease_transitions(l), transitions + 1);

    /* A restart without persistence: the same object acquires again with a larger token. */
    CU_ASSERT_FATAL(tft_redis_restart(server) == 0);
    CU_ASSERT(tft_wait_until(holds, l, 8000));
    uint64_t third = fence_of(l);
    CU_ASSERT(third > second);
    CU_ASSERT_EQUAL(tf_lease_get_state(l), TF_LEASE_HELD);
    tf_lease_destroy(l);
    tft_redis_destroy(server);
}

/* A frozen Redis (SIGSTOP) makes the renewal call hang for the whole command timeout, longer
 * than the ttl, the way a paused holder would miss its renewals: the thread cannot update the
 * state, so only the local validity rule can turn tf_lease_check false, and it must within
 * ttl. After SIGCONT the key has expired in Redis: the lease is lost and acquired anew. */
static void test_local_validity_while_renewal_hangs(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    tf_redis_settings s = settings_for(server->port);
    s.command_timeout_ms = 5000;
    const char *name = unique_name("frozen");
    tf_lease *l = tf_lease_create(&s, name, TTL_MS, PERIOD_MS);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(holds, l, TTL_MS + SLACK_MS));
    uint64_t first = fence_of(l);

    CU_ASSERT_FATAL(kill(server->pid, SIGSTOP) == 0);
    long long frozen_at = tft_mono_ms();
    CU_ASSERT(tft_wait_until(not_holds, l, TTL_MS + SLACK_MS));
    CU_ASSERT(tft_mono_ms() - frozen_at <= TTL_MS + SLACK_MS);
    /* The renewal thread is still blocked in its call (no transition counted yet), and the
     * reported state follows the local rule. */
    CU_ASSERT_EQUAL(tf_lease_transitions(l), 1);
    CU_ASSERT_EQUAL(tf_lease_get_state(l), TF_LEASE_UNREACHABLE);
    tft_sleep_ms(2 * TTL_MS - (int)(tft_mono_ms() - frozen_at)); /* pacing: the key expires */
    CU_ASSERT_FALSE(tf_lease_check(l, NULL));
    kill(server->pid, SIGCONT);

    CU_ASSERT(tft_wait_until(holds, l, TTL_MS + SLACK_MS));
    CU_ASSERT(fence_of(l) > first);
    CU_ASSERT_EQUAL(tf_lease_transitions(l), 3); /* acquired, lost, acquired */
    tf_lease_destroy(l);
    tft_redis_destroy(server);
}

/* A short outage that ends before the key expires: the lease never left this replica, so it
 * is kept with the same fencing token. */
static void test_short_outage_keeps_lease(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    tf_redis_settings s = settings_for(server->port);
    const char *name = unique_name("blip");
    tf_lease *l = tf_lease_create(&s, name, 3000, PERIOD_MS);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(holds, l, 3000));
    uint64_t fence = fence_of(l);
    /* CLIENT KILL drops the lease's connection; the key (ttl 3 s) stays. */
    run_cmd(server->port, "CLIENT KILL TYPE %s", "normal");
    tft_sleep_ms(1200); /* pacing: past one extend (ttl/3) */
    CU_ASSERT(tf_lease_check(l, NULL));
    CU_ASSERT_EQUAL(fence_of(l), fence);
    CU_ASSERT_EQUAL(tf_lease_transitions(l), 1);
    tf_lease_destroy(l);
    tft_redis_destroy(server);
}

/* Someone else's token in the key: the next compare-and-extend fails and the holder stands by
 * within ttl/3 (+ margin), then acquires again once the key is free. */
static void test_foreign_token_loses(void)
{
    int port = tft_shared_redis_port();
    tf_redis_settings s = settings_for(port);
    const char *name = unique_name("foreign");
    tf_lease *l = tf_lease_create(&s, name, TTL_MS, PERIOD_MS);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(holds, l, TTL_MS + SLACK_MS));
    uint64_t first = fence_of(l);
    char lease_key[160];
    snprintf(lease_key, sizeof lease_key, "tftest:lease:%s", name);

    run_cmd(port, "SET %s intruder", lease_key);
    long long set_at = tft_mono_ms();
    CU_ASSERT(tft_wait_until(not_holds, l, TTL_MS / 3 + SLACK_MS));
    CU_ASSERT(tft_mono_ms() - set_at <= TTL_MS / 3 + SLACK_MS);
    CU_ASSERT_EQUAL(tf_lease_get_state(l), TF_LEASE_STANDBY);
    CU_ASSERT_EQUAL(tf_lease_transitions(l), 2);
    char *value = get_key(port, lease_key);
    CU_ASSERT(value && strcmp(value, "intruder") == 0); /* never touched the foreign key */
    free(value);

    run_cmd(port, "DEL %s", lease_key);
    CU_ASSERT(tft_wait_until(holds, l, TTL_MS / 4 + SLACK_MS));
    CU_ASSERT(fence_of(l) > first);
    tf_lease_destroy(l);
}

/* Stop wakes the thread at once even with long intervals, and is idempotent. */
static void test_stop_is_prompt(void)
{
    int port = tft_shared_redis_port();
    tf_redis_settings s = settings_for(port);
    const char *name = unique_name("stop");
    tf_lease *l = tf_lease_create(&s, name, 60000, 30000);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_FALSE(tf_lease_check(l, NULL)); /* not started */
    CU_ASSERT_EQUAL(tf_lease_start(l), TF_OK);
    CU_ASSERT_FATAL(tft_wait_until(holds, l, 2000));
    long long start = tft_mono_ms();
    tf_lease_stop(l);
    CU_ASSERT(tft_mono_ms() - start < 500);
    CU_ASSERT_FALSE(tf_lease_check(l, NULL));
    tf_lease_stop(l);
    tf_lease_destroy(l);

    /* Never started, or unreachable Redis: stop and destroy still return promptly. */
    tf_lease *idle = tf_lease_create(&s, name, 60000, 30000);
    CU_ASSERT_FATAL(idle != NULL);
    tf_lease_stop(idle);
    tf_lease_destroy(idle);
    tf_redis_settings nowhere = settings_for(tft_free_port());
    tf_lease *lonely = tf_lease_create(&nowhere, name, 1000, 100);
    CU_ASSERT_FATAL(lonely != NULL);
    CU_ASSERT_EQUAL(tf_lease_start(lonely), TF_OK);
    CU_ASSERT(tft_wait_until(is_unreachable, lonely, 2000));
    CU_ASSERT_FALSE(tf_lease_check(lonely, NULL));
    start = tft_mono_ms();
    tf_lease_destroy(lonely);
    CU_ASSERT(tft_mono_ms() - start < 1000);

    CU_ASSERT_PTR_NULL(tf_lease_create(&s, name, 0, 100)); /* a ttl is required */
}

static int suite_cleanup(void)
{
    tf_metrics_shutdown();
    tf_log_shutdown();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"two replicas: exclusive, handover on stop, fence grows", test_exclusive_and_handover},
        {"takeover after the holder's key expires", test_takeover_after_expiry},
        {"fence survives FLUSHALL and restart; local validity",
         test_fence_survives_and_local_validity},
        {"local validity while the renewal call hangs", test_local_validity_while_renewal_hangs},
        {"short outage keeps the lease and its fence", test_short_outage_keeps_lease},
        {"foreign token: lease lost, then reacquired", test_foreign_token_loses},
        {"stop is prompt and idempotent", test_stop_is_prompt},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("tf_lease", tests, NULL, suite_cleanup);
}
