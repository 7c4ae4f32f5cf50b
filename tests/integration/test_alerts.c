/*
 * The alert rules of docs/alerts.yaml: `promtool check rules` accepts them and `promtool test
 * rules docs/alerts.test.yaml` passes. Two negative controls prove those unit tests can fail:
 * a copy without the expected stale-premium alert, and a copy expecting an alert from fresh
 * data, must both be rejected by promtool for that alert.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_test.h"

#define PROMTOOL_TIMEOUT_MS 60000

/* Markers around the expected stale alert in docs/alerts.test.yaml. */
#define STALE_BEGIN "# BEGIN stale-fires"
#define STALE_END   "# END stale-fires"

static char *dir;
static char promtool[1024];
static int run_seq;

/* An expectation that cannot hold: fresh data (stale 0, 0.4 s old) expected to page. The test
 * file's last key is `tests:`, so a list item appended at its indentation joins it. */
static const char impossible_case[] =
    "\n"
    "  - name: negative control appended by test_alerts.c, fresh data expected to page\n"
    "    interval: 15s\n"
    "    input_series:\n"
    "      - series: 'tickflow_premium_stale{job=\"tickflow\",instance=\"a:9464\","
    "pipeline=\"kimchi\",symbol=\"BTC\",krw_exchange=\"bithumb\","
    "global_exchange=\"binance_futures\"}'\n"
    "        values: '0x20'\n"
    "      - series: 'tickflow_premium_age_seconds{job=\"tickflow\",instance=\"a:9464\","
    "pipeline=\"kimchi\",symbol=\"BTC\",krw_exchange=\"bithumb\","
    "global_exchange=\"binance_futures\"}'\n"
    "        values: '0.4x20'\n"
    "    alert_rule_test:\n"
    "      - eval_time: 4m\n"
    "        alertname: TickflowPremiumStale\n"
    "        exp_alerts:\n"
    "          - exp_labels:\n"
    "              severity: page\n"
    "              job: tickflow\n"
    "              instance: a:9464\n"
    "              pipeline: kimchi\n"
    "              symbol: BTC\n"
    "              krw_exchange: bithumb\n"
    "              global_exchange: binance_futures\n";

static void print_log(const char *what, const char *log)
{
    char *text = tft_read_file(log, NULL);
    fprintf(stderr, "\n--- %s (%s) ---\n%s\n--- end ---\n", what, log, text ? text : "(no output)");
    free(text);
}

/* Runs `promtool <a1> <a2> <a3>` with its output in a fresh log (path copied to `log`);
 * returns the exit code, or -1 when it did not exit normally in time. */
static int run_promtool(const char *a1, const char *a2, const char *a3, char *log, size_t size)
{
    snprintf(log, size, "%s/promtool-%d.log", dir, run_seq++);
    const char *argv[] = {promtool, a1, a2, a3, NULL};
    pid_t pid = tft_spawn(argv, log, NULL);
    int status = 0;
    if (pid < 0)
        return -1;
    if (!tft_wait_exit(pid, PROMTOOL_TIMEOUT_MS, &status)) {
        tft_kill_wait(pid);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Without promtool nothing here can be checked: that is a failure, not a skip. */
#define REQUIRE_PROMTOOL()                                                                         \
    do {                                                                                           \
        if (!promtool[0])                                                                          \
            CU_FAIL_FATAL("promtool not found in PATH: install the Debian package prometheus");    \
    } while (0)

/* Copies docs/alerts.yaml into the temp dir, where the rewritten test file looks for it. */
static bool copy_rules(void)
{
    char *rules = tft_read_file(tft_source_path("docs/alerts.yaml"), NULL);
    char path[1024];
    snprintf(path, sizeof path, "%s/alerts.yaml", dir);
    bool ok = rules && tft_write_file(path, rules) == 0;
    free(rules);
    return ok;
}

/* The test file without the lines from STALE_BEGIN to STALE_END; NULL when the markers are not
 * both there (the control would prove nothing). malloc'd. */
static char *without_stale_expectation(const char *text)
{
    const char *begin = strstr(text, STALE_BEGIN);
    const char *end = begin ? strstr(begin, STALE_END) : NULL;
    if (!begin || !end)
        return NULL;
    while (begin > text && begin[-1] != '\n')
        begin--;
    const char *after = strchr(end, '\n');
    after = after ? after + 1 : end + strlen(end);
    size_t head = (size_t)(begin - text);
    size_t tail = strlen(after);
    char *out = malloc(head + tail + 1);
    if (!out)
        return NULL;
    memcpy(out, text, head);
    memcpy(out + head, after, tail + 1);
    return out;
}

static char *with_impossible_case(const char *text)
{
    size_t size = strlen(text) + sizeof impossible_case;
    char *out = malloc(size);
    if (!out)
        return NULL;
    int n = snprintf(out, size, "%s%s", text, impossible_case);
    if (n < 0 || (size_t)n >= size) {
        free(out);
        return NULL;
    }
    return out;
}

/* Writes `text` as <dir>/<name> next to the copied rules; returns the path (static buffer). */
static const char *write_variant(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!text || tft_write_file(path, text) != 0)
        return NULL;
    return path;
}

static void test_rules_are_valid(void)
{
    REQUIRE_PROMTOOL();
    char log[1024];
    int rc = run_promtool("check", "rules", tft_source_path("docs/alerts.yaml"), log, sizeof log);
    if (rc != 0)
        print_log("promtool check rules docs/alerts.yaml", log);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(tft_file_count(log, "SUCCESS") == 1);
}

static void test_rule_tests_pass(void)
{
    REQUIRE_PROMTOOL();
    char log[1024];
    int rc =
        run_promtool("test", "rules", tft_source_path("docs/alerts.test.yaml"), log, sizeof log);
    if (rc != 0)
        print_log("promtool test rules docs/alerts.test.yaml", log);
    CU_ASSERT_EQUAL(rc, 0);
}

/* Without the expected stale alert, promtool must report that the alert fired unexpectedly:
 * proof that the stale case really fires and that a wrong expectation fails the test. */
static void test_missing_expected_alert_fails(void)
{
    REQUIRE_PROMTOOL();
    CU_ASSERT_FATAL(copy_rules());
    char *text = tft_read_file(tft_source_path("docs/alerts.test.yaml"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    char *variant = without_stale_expectation(text);
    free(text);
    if (!variant)
        fprintf(stderr, "\ndocs/alerts.test.yaml: expected the lines '%s' ... '%s', not found\n",
                STALE_BEGIN, STALE_END);
    CU_ASSERT_PTR_NOT_NULL_FATAL(variant);
    const char *path = write_variant("without-stale.test.yaml", variant);
    free(variant);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    char log[1024];
    int rc = run_promtool("test", "rules", path, log, sizeof log);
    print_log("negative control: expected stale alert removed (must FAIL)", log);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(tft_file_count(log, "alertname: TickflowPremiumStale") >= 1);
    /* It fails for the BTC alert that fired, not for anything else. */
    CU_ASSERT(tft_file_count(log, "symbol=\"BTC\"") >= 1);
    CU_ASSERT_EQUAL(tft_file_count(log, "alertname: Tickflow"), 1);
}

/* An alert expected from fresh data must be reported as missing ("got:[]"). */
static void test_impossible_expectation_fails(void)
{
    REQUIRE_PROMTOOL();
    CU_ASSERT_FATAL(copy_rules());
    char *text = tft_read_file(tft_source_path("docs/alerts.test.yaml"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    char *variant = with_impossible_case(text);
    free(text);
    const char *path = write_variant("impossible.test.yaml", variant);
    free(variant);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    char log[1024];
    int rc = run_promtool("test", "rules", path, log, sizeof log);
    print_log("negative control: alert expected from fresh data (must FAIL)", log);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(tft_file_count(log, "alertname: TickflowPremiumStale") >= 1);
    CU_ASSERT(tft_file_count(log, "got:[]") >= 1);
    CU_ASSERT_EQUAL(tft_file_count(log, "alertname: Tickflow"), 1);
}

static int suite_init(void)
{
    if (!tft_find_in_path("promtool", promtool, sizeof promtool))
        promtool[0] = '\0';
    dir = tft_mkdtemp();
    return dir ? 0 : 1;
}

static int suite_cleanup(void)
{
    if (dir)
        tft_rmdir(dir);
    free(dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"promtool check rules docs/alerts.yaml", test_rules_are_valid},
        {"promtool test rules docs/alerts.test.yaml", test_rule_tests_pass},
        {"removing the expected stale alert fails the rule tests",
         test_missing_expected_alert_fails},
        {"expecting an alert from fresh data fails the rule tests",
         test_impossible_expectation_fails},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("alerts", tests, suite_init, suite_cleanup);
}
