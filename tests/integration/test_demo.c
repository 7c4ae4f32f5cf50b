/*
 * ./scripts/demo end to end: with DEMO_SECONDS=20 it prints the Redis, API and metrics URLs,
 * the API answers with a fresh BTC premium while it runs, it exits 0 by itself, and no
 * process it started is left behind.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tf_test.h"

static char *dir;
static char log_path[1024];

/* The value after "<label>: " on its own line of the demo's output; "" until printed. */
static void printed_url(const char *label, char *out, size_t size)
{
    out[0] = '\0';
    char *text = tft_read_file(log_path, NULL);
    char needle[64];
    snprintf(needle, sizeof needle, "%s: ", label);
    const char *at = text ? strstr(text, needle) : NULL;
    if (at) {
        at += strlen(needle);
        size_t n = strcspn(at, "\r\n");
        snprintf(out, size, "%.*s", (int)n, at);
    }
    free(text);
}

static bool api_printed(void *arg)
{
    char url[256];
    printed_url("API", url, sizeof url);
    (void)arg;
    return url[0] != '\0';
}

/* GET url: the status (0 without a response); the body when `body` is given (caller frees). */
static long http_get(const char *url, char **body)
{
    return tft_http_get(url, NULL, 2000, body);
}

/* A BTC premium from the API that is not stale. */
static bool fresh_premium(void *arg)
{
    const char *api = arg;
    char url[512];
    snprintf(url, sizeof url, "%s/v1/premium/BTC", api);
    char *body = NULL;
    bool fresh = http_get(url, &body) == 200 && strstr(body, "\"premium_pct\"") &&
                 strstr(body, "\"stale\":false");
    free(body);
    return fresh;
}

/* Processes whose command line matches `pattern` (a regex whose first character is in
 * brackets, "[t]ickflow ..."): the shell popen starts has the pattern in its own command line,
 * as has its pipeline child until that child execs wc, so pgrep would count them, or not,
 * depending on timing. The brackets make the pattern match "tickflow" but not itself. */
static int count_processes(const char *pattern)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "pgrep -f '%s' | wc -l", pattern);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void test_demo_runs_and_cleans_up(void)
{
    int before_batch = count_processes("[t]ickflow run pipelines/demo.yaml");
    int before_api = count_processes("[t]ickflow run pipelines/api.yaml");
    const char *argv[] = {"/bin/bash", tft_source_path("scripts/demo"), NULL};
    const char *env[] = {"DEMO_SECONDS=20", NULL};
    pid_t pid = tft_spawn(argv, log_path, env);
    CU_ASSERT_FATAL(pid > 0);
    /* The script may build first: allow time for it. */
    CU_ASSERT_FATAL(tft_wait_until(api_printed, NULL, 240000));
    char api[256], redis[256], metrics[256];
    printed_url("API", api, sizeof api);
    printed_url("Redis", redis, sizeof redis);
    printed_url("Metrics", metrics, sizeof metrics);
    CU_ASSERT_PTR_NOT_NULL(strstr(redis, "redis://127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(api, "http://127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(metrics, "/metrics"));
    CU_ASSERT(tft_wait_until(fresh_premium, api, 15000));
    char *body = NULL;
    CU_ASSERT_EQUAL(http_get(metrics, &body), 200);
    CU_ASSERT(body && strstr(body, "tickflow_pipeline_ticks_total"));
    free(body);
    int status = -1;
    CU_ASSERT_FATAL(tft_wait_exit(pid, 60000, &status));
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(tft_file_count(log_path, "BTC premium") >= 5); /* the live line */
    /* Nothing it started is left. */
    CU_ASSERT_EQUAL(count_processes("[t]ickflow run pipelines/demo.yaml"), before_batch);
    CU_ASSERT_EQUAL(count_processes("[t]ickflow run pipelines/api.yaml"), before_api);
    CU_ASSERT_NOT_EQUAL(http_get(api, NULL), 200); /* the API port is closed */
    if (CU_get_number_of_failures()) {
        char *text = tft_read_file(log_path, NULL);
        fprintf(stderr, "\ndemo output:\n%s\n", text ? text : "");
        free(text);
    }
}

static int setup(void)
{
    dir = tft_mkdtemp();
    snprintf(log_path, sizeof log_path, "%s/demo.log", dir ? dir : "/tmp");
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
        {"DEMO_SECONDS=20: fresh premium, exit 0, nothing left", test_demo_runs_and_cleans_up},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("demo", tests, setup, teardown);
}
