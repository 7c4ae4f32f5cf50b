/*
 * Fenced writes across real replicas: a holder paused (SIGSTOP) in the middle of a tick loses
 * its lease; after SIGCONT its tick finishes and its write is refused by the redis sink, so the
 * newer holder's value stays.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_proc.h"
#include "tf_test.h"

static char *dir;
static char prefix[64];

/* A slow leased pipeline (each tick's source takes 1.5 s) writing a ticker whose `replica`
 * field names the writer. */
static const char *replica_config(const char *replica)
{
    char yaml[1536], name[64];
    snprintf(yaml, sizeof yaml,
             "redis:\n"
             "  url: redis://127.0.0.1:%d/0\n"
             "  prefix: %s\n"
             "pipelines:\n"
             "  - name: fenced\n"
             "    every: 100ms\n"
             "    lease: {ttl: 800ms}\n"
             "    sources:\n"
             "      - use: generate\n"
             "        with:\n"
             "          kind: ticker\n"
             "          delay: 1500ms\n"
             "          fields: {exchange: demo, symbol: BTC, quote: USDT, replica: %s}\n"
             "          walk_field: last\n"
             "    sinks:\n"
             "      - use: redis\n"
             "        with: {history_max: 0}\n",
             tft_shared_redis_port(), prefix, replica);
    snprintf(name, sizeof name, "%s.yaml", replica);
    return tfp_write_config(dir, name, yaml);
}

/* The `replica` field of the cached ticker, or "" when absent. */
static void cached_writer(char *out, size_t size)
{
    out[0] = '\0';
    redisReply *r = tft_redis_cmd(tft_shared_redis_port(), "GET %s:ticker:demo:BTC", prefix);
    if (r && r->type == REDIS_REPLY_STRING) {
        json_t *j = json_loads(r->str, 0, NULL);
        const char *who = json_string_value(json_object_get(j, "replica"));
        snprintf(out, size, "%s", who ? who : "");
        json_decref(j);
    }
    if (r)
        freeReplyObject(r);
}

static bool written_by(void *arg)
{
    char who[32];
    cached_writer(who, sizeof who);
    return strcmp(who, (const char *)arg) == 0;
}

static void test_paused_holder_write_is_refused(void)
{
    char a_cfg[1024], b_cfg[1024];
    snprintf(a_cfg, sizeof a_cfg, "%s", replica_config("alpha"));
    snprintf(b_cfg, sizeof b_cfg, "%s", replica_config("beta"));
    tfp_proc a, b;
    CU_ASSERT_FATAL(tfp_start(&a, dir, "alpha", a_cfg));
    /* alpha alone first, so it is the holder */
    CU_ASSERT_FATAL(tft_wait_until(written_by, "alpha", 15000));
    CU_ASSERT_FATAL(tfp_start(&b, dir, "beta", b_cfg));
    /* alpha is inside a 1.5 s tick almost all the time: pause it there, past its ttl */
    kill(a.pid, SIGSTOP);
    CU_ASSERT(tft_wait_until(written_by, "beta", 15000)); /* beta took over and wrote */
    kill(a.pid, SIGCONT);
    /* alpha's paused tick completes and its write is refused by the fence... */
    CU_ASSERT(tfp_wait_log(&a, "fenced", 1, 10000));
    /* ...and never lands: every value seen from now on is beta's */
    long long end = tft_mono_ms() + 2500;
    bool only_beta = true;
    while (tft_mono_ms() < end) {
        char who[32];
        cached_writer(who, sizeof who);
        if (strcmp(who, "beta") != 0 && who[0]) {
            only_beta = false;
            fprintf(stderr, "\nvalue written by '%s' after the takeover\n", who);
            break;
        }
        tft_sleep_ms(20); /* pacing a sampling loop with its own deadline */
    }
    CU_ASSERT(only_beta);
    tft_stop(a.pid, SIGTERM, 5000);
    tft_stop(b.pid, SIGTERM, 5000);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    snprintf(prefix, sizeof prefix, "tftfence%d", (int)getpid());
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
        {"a paused holder's write is refused", test_paused_holder_write_is_refused},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("fencing", tests, setup, teardown);
}
