/*
 * The scheduler in a real runtime process: fixed-rate ticks without drift, a slow pipeline
 * that does not delay another, overruns skipped (not queued), prompt stop on SIGTERM, and
 * SIGHUP reloads (an invalid configuration is rejected and the running one continues).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tf_proc.h"
#include "tf_test.h"

static char *dir;

/* Records of one pipeline, from the `_pipeline` meta field. */
static json_t *records_of(const tfp_proc *p, const char *pipeline)
{
    json_t *all = tfp_records(p), *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *name = json_string_value(json_object_get(r, "_pipeline"));
        if (name && strcmp(name, pipeline) == 0)
            json_array_append(out, r);
    }
    json_decref(all);
    return out;
}

static void test_fixed_rate_without_drift(void)
{
    const char *cfg = tfp_write_config(dir, "rate.yaml",
                                       "pipelines:\n"
                                       "  - name: rate\n"
                                       "    every: 100ms\n"
                                       "    sources: [{use: generate}]\n"
                                       "    sinks: [{use: stdout, with: {meta: true}}]\n");
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "rate", cfg));
    CU_ASSERT(tfp_wait_records(&p, 40, 15000));
    CU_ASSERT_EQUAL(WEXITSTATUS(tft_stop(p.pid, SIGTERM, 5000)), 0);
    json_t *recs = tfp_records(&p);
    size_t n = json_array_size(recs);
    CU_ASSERT_FATAL(n > 40);
    /* Tick k is due at t0 + k * 100 ms: the error must not grow with k (drift), so every
     * tick stays within a fixed margin of its slot. */
    long long t0 = json_integer_value(json_object_get(json_array_get(recs, 0), "ts"));
    long long worst = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *r = json_array_get(recs, k);
        long long seq = json_integer_value(json_object_get(r, "_tick"));
        long long ts = json_integer_value(json_object_get(r, "ts"));
        long long err = llabs(ts - (t0 + (seq - 1) * 100));
        if (err > worst)
            worst = err;
        CU_ASSERT_EQUAL(seq, (long long)k + 1); /* no tick skipped or repeated */
    }
    fprintf(stderr, "\n%zu ticks, worst offset from schedule %lld ms\n", n, worst);
    CU_ASSERT(worst < 60);
    json_decref(recs);
}

static void test_slow_pipeline_does_not_delay_another(void)
{
    /* `slow` takes 1.1 s per tick against a 300 ms period: it overruns every time, so three
     * of every four slots are skipped and counted; `fast` keeps its 100 ms cadence. */
    const char *cfg = tfp_write_config(dir, "slow.yaml",
                                       "pipelines:\n"
                                       "  - name: fast\n"
                                       "    every: 100ms\n"
                                       "    sources: [{use: generate}]\n"
                                       "    sinks: [{use: stdout, with: {meta: true}}]\n"
                                       "  - name: slow\n"
                                       "    every: 300ms\n"
                                       "    sources: [{use: generate, with: {delay: 1100ms}}]\n"
                                       "    sinks: [{use: stdout, with: {meta: true}}]\n");
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "slow", cfg));
    long long start = tft_mono_ms();
    CU_ASSERT(tfp_wait_log(&p, "skipped 3 tick(s)", 2, 15000));
    long long elapsed = tft_mono_ms() - start;
    tft_stop(p.pid, SIGTERM, 5000);
    json_t *fast = records_of(&p, "fast"), *slow = records_of(&p, "slow");
    size_t n_fast = json_array_size(fast), n_slow = json_array_size(slow);
    fprintf(stderr, "\n%lld ms: fast %zu ticks, slow %zu ticks\n", elapsed, n_fast, n_slow);
    /* fast ran at (nearly) its full rate the whole time */
    CU_ASSERT((long long)n_fast >= elapsed / 100 - 5);
    /* slow was never queued: one tick per 1.2 s, not one per 300 ms */
    CU_ASSERT((long long)n_slow <= elapsed / 1200 + 2);
    json_decref(fast);
    json_decref(slow);
}

static void test_sigterm_stops_within_a_second(void)
{
    const char *cfg = tfp_write_config(dir, "idle.yaml",
                                       "pipelines:\n"
                                       "  - name: idle\n"
                                       "    every: 10s\n"
                                       "    sources: [{use: generate}]\n"
                                       "    sinks: [{use: stdout}]\n");
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "idle", cfg));
    CU_ASSERT_FATAL(tfp_wait_records(&p, 0, 10000));
    long long t = tft_mono_ms();
    kill(p.pid, SIGTERM);
    int status = -1;
    CU_ASSERT_FATAL(tft_wait_exit(p.pid, 5000, &status));
    long long took = tft_mono_ms() - t;
    fprintf(stderr, "\nstopped in %lld ms\n", took);
    CU_ASSERT(took < 1000);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(tfp_log_count(&p, "stopped") >= 1);
}

static void test_sigint_after_tick_in_progress(void)
{
    /* Ticks of 800 ms back to back (10 ms period, overruns skipped): right after the first
     * record, the second tick is in progress. It must finish and be written, then the
     * process exits. */
    const char *cfg = tfp_write_config(dir, "busy.yaml",
                                       "pipelines:\n"
                                       "  - name: busy\n"
                                       "    every: 10ms\n"
                                       "    sources: [{use: generate, with: {delay: 800ms}}]\n"
                                       "    sinks: [{use: stdout}]\n");
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "busy", cfg));
    CU_ASSERT_FATAL(tfp_wait_records(&p, 0, 10000));
    tft_sleep_ms(100); /* pacing: let the second tick get well under way */
    long long t = tft_mono_ms();
    kill(p.pid, SIGINT);
    int status = -1;
    CU_ASSERT_FATAL(tft_wait_exit(p.pid, 5000, &status));
    long long took = tft_mono_ms() - t;
    fprintf(stderr, "\nstopped in %lld ms with an 800 ms tick in progress\n", took);
    CU_ASSERT(took >= 400);                   /* it waited for the tick... */
    CU_ASSERT(took < 800 + 1000);             /* ...and no longer than the tick plus a second */
    CU_ASSERT_EQUAL(tfp_record_count(&p), 2); /* the tick in progress was written */
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static const char *hup_config(const char *kind)
{
    static char yaml[512];
    snprintf(yaml, sizeof yaml,
             "pipelines:\n"
             "  - name: reload\n"
             "    every: 100ms\n"
             "    sources: [{use: generate, with: {kind: %s}}]\n"
             "    sinks: [{use: stdout}]\n",
             kind);
    return yaml;
}

static bool has_kind(void *arg)
{
    const tfp_proc *p = ((void **)arg)[0];
    const char *kind = ((void **)arg)[1];
    char needle[64];
    snprintf(needle, sizeof needle, "{\"kind\":\"%s\"", kind);
    return tfp_log_count(p, needle) > 0;
}

static void test_sighup_reload(void)
{
    const char *cfg = tfp_write_config(dir, "hup.yaml", hup_config("first"));
    char path[1024];
    snprintf(path, sizeof path, "%s", cfg);
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "hup", path));
    void *first[] = {&p, "first"}, *second[] = {&p, "second"};
    CU_ASSERT_FATAL(tft_wait_until(has_kind, first, 10000));

    tft_write_file(path, hup_config("second"));
    kill(p.pid, SIGHUP);
    CU_ASSERT(tft_wait_until(has_kind, second, 10000));

    /* An invalid file is rejected; the running configuration keeps producing records. */
    tft_write_file(path, "pipelines:\n  - name: reload\n    every: never\n");
    kill(p.pid, SIGHUP);
    CU_ASSERT(tfp_wait_log(&p, "reload rejected", 1, 10000));
    CU_ASSERT(tfp_log_count(&p, "hup.yaml:3:") >= 1); /* the error names file:line */
    int before = tfp_log_count(&p, "{\"kind\":\"second\"");
    CU_ASSERT(tfp_wait_log(&p, "{\"kind\":\"second\"", before + 5, 10000));
    CU_ASSERT_EQUAL(kill(p.pid, 0), 0); /* still the same process */
    tft_stop(p.pid, SIGTERM, 5000);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    return dir ? 0 : 1;
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
        {"fixed-rate ticks without drift", test_fixed_rate_without_drift},
        {"a slow pipeline does not delay another", test_slow_pipeline_does_not_delay_another},
        {"SIGTERM stops within a second", test_sigterm_stops_within_a_second},
        {"SIGINT waits for the tick in progress only", test_sigint_after_tick_in_progress},
        {"SIGHUP reloads; an invalid file is rejected", test_sighup_reload},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("scheduler", tests, setup, teardown);
}
