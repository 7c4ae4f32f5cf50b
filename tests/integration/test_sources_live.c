/*
 * Market sources in a real runtime process against the fake exchange over loopback HTTP:
 * per-host rate limit from YAML, one kept-alive connection per host across ticks, and the
 * shipped demo pipeline producing tickers and FX.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tf_fake.h"
#include "tf_proc.h"
#include "tf_test.h"

static char *dir;
static tft_fake *fake;

/* Largest number of request arrivals inside any 1000 ms window. */
static long long max_per_second(json_t *times)
{
    long long best = 0;
    size_t n = json_array_size(times);
    for (size_t i = 0, j = 0; i < n; i++) {
        long long t_i = json_integer_value(json_array_get(times, i));
        while (j < n && json_integer_value(json_array_get(times, j)) < t_i + 1000)
            j++;
        if ((long long)(j - i) > best)
            best = (long long)(j - i);
    }
    return best;
}

static void test_rate_limit_and_keep_alive(void)
{
    /* The pipeline asks for a ticker every 10 ms (100 req/s); the host is limited to 15/s. */
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "http:\n"
             "  hosts:\n"
             "    \"127.0.0.1:%d\": {rate: 15, burst: 1}\n"
             "pipelines:\n"
             "  - name: greedy\n"
             "    every: 10ms\n"
             "    sources:\n"
             "      - use: bithumb\n"
             "        with: {base_url: \"%s\", symbols: [BTC], book: false}\n"
             "    sinks: [{use: stdout}]\n",
             fake->port, fake->base);
    const char *cfg = tfp_write_config(dir, "greedy.yaml", yaml);
    CU_ASSERT_FATAL(tft_fake_post(fake, "/admin/reset", "{}"));
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "greedy", cfg));
    CU_ASSERT(tfp_wait_records(&p, 45, 20000)); /* ~3 s at 15/s */
    tft_stop(p.pid, SIGTERM, 5000);
    json_t *stats = tft_fake_admin(fake, "/admin/stats", NULL);
    json_t *times = json_object_get(json_object_get(stats, "request_times_ms"), "bithumb.ticker");
    long long requests = tft_fake_stat(fake, "bithumb.ticker", "requests");
    long long peak = max_per_second(times);
    long long conns = tft_fake_stat(fake, "bithumb.ticker", "connections");
    fprintf(stderr, "\n%lld requests, at most %lld in any second, %lld TCP connection(s)\n",
            requests, peak, conns);
    CU_ASSERT(requests >= 45);
    CU_ASSERT(peak <= 16); /* 15 +- 1 */
    CU_ASSERT(peak >= 14); /* and the limiter is not throttling far below its rate */
    CU_ASSERT_EQUAL(conns, 1);
    json_decref(stats);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    fake = tft_fake_start(NULL);
    return dir && fake ? 0 : 1;
}

static int teardown(void)
{
    tft_fake_stop(fake);
    tft_rmdir(dir);
    free(dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"rate limit 15/s and one kept-alive connection", test_rate_limit_and_keep_alive},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("sources live", tests, setup, teardown);
}
