/*
 * Leases across real runtime processes on one YAML and a real redis-server: exactly one
 * replica runs the pipeline; kill -9 of the holder hands over within ttl + period; a holder
 * paused (SIGSTOP) past its ttl runs no further tick as holder after SIGCONT; a Redis restart
 * is survived by both replicas without restarting them.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_proc.h"
#include "tf_test.h"

#define TTL_MS    1000
#define PERIOD_MS 200
/* Scheduling and process start-up noise on a loaded 2-core CI machine (ASan doubles it). */
#define MARGIN_MS 700

static char *dir;
static int config_seq;

/* A leased generate -> stdout pipeline against Redis on `port`, with a key prefix of its own
 * so tests never see each other's leases. */
static const char *lease_config(int port)
{
    char yaml[1024], name[64];
    snprintf(yaml, sizeof yaml,
             "redis:\n"
             "  url: redis://127.0.0.1:%d/0\n"
             "  prefix: tft%d_%d\n"
             "log:\n"
             "  level: debug\n"
             "pipelines:\n"
             "  - name: leased\n"
             "    every: %dms\n"
             "    lease: {ttl: %dms}\n"
             "    sources: [{use: generate}]\n"
             "    sinks: [{use: stdout, with: {meta: true}}]\n",
             port, (int)getpid(), config_seq, PERIOD_MS, TTL_MS);
    snprintf(name, sizeof name, "lease%d.yaml", config_seq++);
    return tfp_write_config(dir, name, yaml);
}

typedef struct pair {
    tfp_proc a, b;
} pair;

static bool anyone_runs(void *arg)
{
    pair *p = arg;
    return tfp_record_count(&p->a) + tfp_record_count(&p->b) > 0;
}

static void start_pair(pair *p, const char *cfg, const char *tag)
{
    char ta[64], tb[64];
    snprintf(ta, sizeof ta, "%s-a", tag);
    snprintf(tb, sizeof tb, "%s-b", tag);
    CU_ASSERT_FATAL(tfp_start(&p->a, dir, ta, cfg));
    CU_ASSERT_FATAL(tfp_start(&p->b, dir, tb, cfg));
    CU_ASSERT_FATAL(tft_wait_until(anyone_runs, p, 15000));
}

static void stop_pair(pair *p)
{
    tft_stop(p->a.pid, SIGTERM, 5000);
    tft_stop(p->b.pid, SIGTERM, 5000);
}

static void test_exactly_one_runs(void)
{
    pair p;
    start_pair(&p, lease_config(tft_shared_redis_port()), "one");
    /* Let both run for a while: 10 more ticks of whoever holds. */
    size_t base = tfp_record_count(&p.a) + tfp_record_count(&p.b);
    tfp_proc *holder = tfp_record_count(&p.a) ? &p.a : &p.b;
    tfp_proc *standby = holder == &p.a ? &p.b : &p.a;
    CU_ASSERT(tfp_wait_records(holder, base + 10, 10000));
    CU_ASSERT_EQUAL(tfp_record_count(standby), 0);
    /* The holder's ticks are consecutive: nobody else ran any of them. */
    CU_ASSERT_EQUAL((size_t)tfp_max_field(holder, "_tick"), tfp_record_count(holder));
    stop_pair(&p);
}

static void test_kill9_takeover(void)
{
    pair p;
    start_pair(&p, lease_config(tft_shared_redis_port()), "kill");
    tfp_proc *holder = tfp_record_count(&p.a) ? &p.a : &p.b;
    tfp_proc *standby = holder == &p.a ? &p.b : &p.a;
    CU_ASSERT_EQUAL_FATAL(tfp_record_count(standby), 0);
    long long killed_at = tft_mono_ms();
    tft_kill_wait(holder->pid);
    CU_ASSERT_FATAL(tfp_wait_records(standby, 0, TTL_MS + PERIOD_MS + 5000));
    long long took = tft_mono_ms() - killed_at;
    fprintf(stderr, "\ntakeover after kill -9 in %lld ms (bound %d + %d ms)\n", took, TTL_MS,
            PERIOD_MS);
    CU_ASSERT(took <= TTL_MS + PERIOD_MS + MARGIN_MS);
    /* The new holder's fencing token is larger than the old holder's. */
    CU_ASSERT(tfp_max_field(standby, "_fence") > tfp_max_field(holder, "_fence"));
    tft_stop(standby->pid, SIGTERM, 5000);
}

static void test_sigstop_holder_does_not_run_after_resume(void)
{
    pair p;
    start_pair(&p, lease_config(tft_shared_redis_port()), "stop");
    tfp_proc *holder = tfp_record_count(&p.a) ? &p.a : &p.b;
    tfp_proc *other = holder == &p.a ? &p.b : &p.a;
    CU_ASSERT_FATAL(tft_freeze(holder->pid, 5000)); /* its last tick is printed before we read it */
    long long last_tick = tfp_max_field(holder, "_tick");
    /* The other replica takes over once the ttl has passed... */
    CU_ASSERT_FATAL(tfp_wait_records(other, 0, TTL_MS + PERIOD_MS + 5000));
    size_t other_before = tfp_record_count(other);
    kill(holder->pid, SIGCONT);
    /* ...and keeps running while the resumed holder finds out it lost the lease. */
    CU_ASSERT(tfp_wait_records(other, other_before + 10, 10000));
    /* A tick that was already in flight at SIGSTOP may complete; no new tick may start. */
    long long after = tfp_max_field(holder, "_tick");
    fprintf(stderr, "\nholder tick before stop %lld, after resume %lld\n", last_tick, after);
    CU_ASSERT(after <= last_tick + 1);
    CU_ASSERT(tfp_log_count(holder, "standing by") >= 1);
    /* Fencing: every record the other replica wrote carries a newer token. */
    CU_ASSERT(tfp_max_field(other, "_fence") > tfp_max_field(holder, "_fence"));
    stop_pair(&p);
}

static void test_redis_restart_recovered(void)
{
    tft_redis *r = tft_redis_start(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    pair p;
    start_pair(&p, lease_config(r->port), "restart");
    tft_redis_stop(r);
    /* Both replicas notice and pause (logged once, not once per tick). */
    CU_ASSERT(tfp_wait_log(&p.a, "unreachable", 1, 10000));
    CU_ASSERT(tfp_wait_log(&p.b, "unreachable", 1, 10000));
    size_t a_before = tfp_record_count(&p.a), b_before = tfp_record_count(&p.b);
    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(r), 0);
    /* One of them holds the lease again and runs; nobody was restarted. */
    bool resumed = false;
    for (long long end = tft_mono_ms() + 15000; !resumed && tft_mono_ms() < end;) {
        resumed = tfp_record_count(&p.a) > a_before + 3 || tfp_record_count(&p.b) > b_before + 3;
        if (!resumed)
            tft_sleep_ms(50); /* pacing a poll loop with its own deadline */
    }
    CU_ASSERT(resumed);
    CU_ASSERT_EQUAL(kill(p.a.pid, 0), 0);
    CU_ASSERT_EQUAL(kill(p.b.pid, 0), 0);
    CU_ASSERT(tfp_log_count(&p.a, "unreachable") <= 3);
    stop_pair(&p);
    tft_redis_destroy(r);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    return dir && tft_shared_redis_port() > 0 ? 0 : 1;
}

static int teardown(void)
{
    tft_rmdir(dir);
    free(dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"two replicas: exactly one runs", test_exactly_one_runs},
        {"kill -9 of the holder: takeover within ttl + period", test_kill9_takeover},
        {"SIGSTOP past ttl: no tick as holder after SIGCONT",
         test_sigstop_holder_does_not_run_after_resume},
        {"Redis restart: both recover by themselves", test_redis_restart_recovered},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("lease replicas", tests, setup, teardown);
}
