/*
 * tf_log: line format (text and JSON), level filter, masking of secrets and credential
 * patterns, escaping of control characters, truncation, and whole lines under concurrency.
 * stderr is captured by pointing fd 2 at a temporary file.
 */
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_log.h"
#include "tf_test.h"

static char *g_dir;
static char g_path[512];
static int g_saved_stderr = -1;

static void capture_begin(void)
{
    snprintf(g_path, sizeof g_path, "%s/stderr.log", g_dir);
    FILE *f = fopen(g_path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fflush(stderr);
    g_saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    fclose(f);
}

/* Restores stderr and returns what was written (malloc'd). */
static char *capture_end(void)
{
    dup2(g_saved_stderr, STDERR_FILENO);
    close(g_saved_stderr);
    g_saved_stderr = -1;
    char *text = tft_read_file(g_path, NULL);
    CU_ASSERT_FATAL(text != NULL);
    return text;
}

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    CU_ASSERT_FATAL(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == 0);
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void reset(void)
{
    tf_log_set_level(TF_LOG_INFO);
    tf_log_set_json(false);
    tf_log_shutdown();
}

static void test_default_level_is_info(void)
{
    CU_ASSERT_EQUAL(tf_log_get_level(), TF_LOG_INFO);
}

static void test_text_format(void)
{
    reset();
    time_t before = time(NULL);
    capture_begin();
    TF_WARN("kimchi/bithumb", "premium %.2f%% from %s", 2.5, "bithumb");
    char *out = capture_end();
    time_t after = time(NULL);
    CU_ASSERT_TRUE(matches(out,
                           "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                           "WARN  \\[kimchi/bithumb\\] premium 2\\.50% from bithumb\n$"));
    struct tm tm = {0};
    CU_ASSERT_PTR_NOT_NULL(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t ts = timegm(&tm);
    CU_ASSERT_TRUE(ts >= before - 1 && ts <= after + 1); /* UTC, not local time */
    free(out);

    capture_begin();
    TF_ERROR("core", "e");
    TF_INFO("core", "i");
    char *both = capture_end();
    CU_ASSERT_TRUE(matches(both, "Z ERROR \\[core\\] e\n.*Z INFO  \\[core\\] i\n$"));
    free(both);
}

static void test_level_filter(void)
{
    reset();
    tf_log_level lvl;
    CU_ASSERT_EQUAL(tf_log_parse_level("warn", &lvl), 0);
    CU_ASSERT_EQUAL(lvl, TF_LOG_WARN);
    CU_ASSERT_EQUAL(tf_log_parse_level("trace", &lvl), 0);
    CU_ASSERT_EQUAL(lvl, TF_LOG_TRACE);
    CU_ASSERT_EQUAL(tf_log_parse_level("verbose", &lvl), -1);
    CU_ASSERT_EQUAL(tf_log_parse_level(NULL, &lvl), -1);
    CU_ASSERT_STRING_EQUAL(tf_log_level_name(TF_LOG_DEBUG), "debug");

    tf_log_set_level(TF_LOG_WARN);
    capture_begin();
    TF_ERROR("c", "shown-error");
    TF_WARN("c", "shown-warn");
    TF_INFO("c", "hidden-info");
    TF_DEBUG("c", "hidden-debug");
    char *out = capture_end();
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "shown-error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "shown-warn"));
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    free(out);

    tf_log_set_level(TF_LOG_DEBUG);
    capture_begin();
    TF_DEBUG("c", "shown-debug");
    tf_log(TF_LOG_TRACE, "c", "hidden-trace");
    out = capture_end();
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DEBUG [c] shown-debug"));
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    free(out);
    reset();
}

static void test_secret_masking(void)
{
    reset();
    tf_log_add_secret("s3cr3t-KEY-123");
    tf_log_add_secret("s3cr3t-KEY-123-LONGER"); /* longer one containing the first */
    tf_log_add_secret("abc");                   /* too short: ignored */
    tf_log_add_secret(NULL);
    capture_begin();
    TF_INFO("kimchi/binance", "key=s3cr3t-KEY-123 long=s3cr3t-KEY-123-LONGER abc twice "
                              "s3cr3t-KEY-123s3cr3t-KEY-123");
    char *out = capture_end();
    CU_ASSERT_PTR_NULL(strstr(out, "s3cr3t"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "key=**** long=**** abc twice ********\n"));
    free(out);

    tf_log_shutdown();
    char buf[128];
    tf_log_mask("key=s3cr3t-KEY-123", buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "key=s3cr3t-KEY-123"); /* list freed and empty */
}

static void check_mask(const char *in, const char *want)
{
    char buf[512];
    tf_log_mask(in, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, want);
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "mask(%s)\n  got  %s\n  want %s\n", in, buf, want);
}

static void test_pattern_masking(void)
{
    reset();
    check_mask("GET /fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=9f86d081884c7d65 HTTP",
               "GET /fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=**** HTTP");
    check_mask("url=https://x/y?apiKey=AK123&b=2", "url=https://x/y?apiKey=****&b=2");
    check_mask("?api_key=AK123 next", "?api_key=**** next");
    check_mask("?access_key=AK123&z", "?access_key=****&z");
    check_mask("?authkey=FXKEY", "?authkey=****");
    check_mask("\"https://h/p?signature=ab\"", "\"https://h/p?signature=****\"");
    check_mask("X-MBX-APIKEY: vmPUZE6mv9SD5VNH\r\nHost: x", "X-MBX-APIKEY: ****\r\nHost: x");
    check_mask("x-mbx-apikey:vmPUZE6mv9SD5VNH", "x-mbx-apikey:****");
    check_mask("Authorization: Bearer eyJhbGciOi.J9.abc-_= rest",
               "Authorization: Bearer **** rest");
    check_mask("Authorization: c2VjcmV0", "Authorization: ****");
    check_mask("Api-Key: 0123456789abcdef", "Api-Key: ****");
    check_mask("signature= alone", "signature= alone"); /* nothing to mask */
    check_mask("", "");

    char small[8];
    tf_log_mask("signature=abcdef", small, sizeof small);
    CU_ASSERT_STRING_EQUAL(small, "signatu");

    capture_begin();
    TF_WARN("kimchi/binance", "HTTP 401 for /order?signature=deadbeef&x=1, header "
                              "X-MBX-APIKEY: apikeyvalue");
    char *out = capture_end();
    CU_ASSERT_PTR_NULL(strstr(out, "deadbeef"));
    CU_ASSERT_PTR_NULL(strstr(out, "apikeyvalue"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "signature=****&x=1, header X-MBX-APIKEY: ****\n"));
    free(out);
}

static void test_control_chars_escaped(void)
{
    reset();
    capture_begin();
    TF_WARN("kimchi/bithumb",
            "body: {\"a\":1}\n2026-01-01T00:00:00.000Z ERROR [core] forged\r\t\x1b[31m \xff end");
    char *out = capture_end();
    CU_ASSERT_EQUAL(count_lines(out), 1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "body: {\"a\":1}\\n2026-01-01T00:00:00.000Z ERROR [core] forged\\r\\t"
                    "\\x1b[31m \\xff end\n"));
    free(out);

    /* Valid multi-byte UTF-8 passes through. */
    capture_begin();
    TF_INFO("c", "김치 프리미엄");
    out = capture_end();
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "] 김치 프리미엄\n"));
    free(out);
}

static void test_truncation(void)
{
    reset();
    size_t n = 20000;
    char *big = malloc(n + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', n);
    big[n] = '\0';
    capture_begin();
    TF_INFO("c", "%s", big);
    char *out = capture_end();
    CU_ASSERT_EQUAL(count_lines(out), 1);
    size_t len = strlen(out);
    CU_ASSERT_TRUE(len > 8000 && len < 8400);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "xxx\xe2\x80\xa6\n")); /* "…" marks the cut */
    free(out);
    free(big);
}

static void test_json_mode(void)
{
    reset();
    tf_log_add_secret("hunter2hunter2");
    tf_log_set_json(true);
    capture_begin();
    TF_WARN("kimchi/bithumb", "quote \" backslash \\ newline\nsecret hunter2hunter2 \xc3");
    TF_DEBUG("kimchi/bithumb", "filtered");
    char *out = capture_end();
    tf_log_set_json(false);
    CU_ASSERT_EQUAL(count_lines(out), 1);
    CU_ASSERT_TRUE(matches(out, "^\\{\"ts\":\"[^\"]+\",\"level\":\"warn\",\"component\":"));
    json_error_t jerr;
    json_t *obj = json_loads(out, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(obj, "level")), "warn");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(obj, "component")), "kimchi/bithumb");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(obj, "msg")),
                           "quote \" backslash \\ newline\nsecret **** \\xc3");
    const char *ts = json_string_value(json_object_get(obj, "ts"));
    CU_ASSERT_TRUE(ts && matches(ts, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"));
    json_decref(obj);
    free(out);
    reset();
}

#define N_THREADS      8
#define LINES_PER      300
#define PAYLOAD_LENGTH 6000 /* beyond PIPE_BUF: atomicity must come from the logger */

static void *log_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    char payload[PAYLOAD_LENGTH + 1];
    memset(payload, 'a' + id, PAYLOAD_LENGTH);
    payload[PAYLOAD_LENGTH] = '\0';
    for (int i = 0; i < LINES_PER; i++)
        TF_INFO("thread", "<%d:%d:%s>", id, i, payload);
    return NULL;
}

static void test_concurrent_whole_lines(void)
{
    reset();
    capture_begin();
    pthread_t threads[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        pthread_create(&threads[t], NULL, log_thread, (void *)(intptr_t)t);
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(threads[t], NULL);
    char *out = capture_end();
    int seen[N_THREADS] = {0};
    size_t bad = 0;
    for (char *line = out, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        CU_ASSERT_FATAL(end != NULL); /* every line is terminated */
        *end = '\0';
        int id = -1;
        int idx = -1;
        const char *open = strchr(line, '<');
        if (!matches(line, "^[0-9-]{10}T[0-9:.]{12}Z INFO  \\[thread\\] <") || !open ||
            sscanf(open, "<%d:%d:", &id, &idx) != 2 || id < 0 || id >= N_THREADS) {
            bad++;
            continue;
        }
        const char *p = strchr(strchr(open, ':') + 1, ':') + 1;
        size_t run = strspn(p, (char[]){(char)('a' + id), '\0'});
        if (run != PAYLOAD_LENGTH || strcmp(p + run, ">") != 0) {
            bad++;
            continue;
        }
        seen[id]++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int t = 0; t < N_THREADS; t++)
        CU_ASSERT_EQUAL(seen[t], LINES_PER);
    free(out);
}

static int suite_init(void)
{
    g_dir = tft_mkdtemp();
    return g_dir ? 0 : -1;
}

static int suite_cleanup(void)
{
    tf_log_shutdown();
    tft_rmdir(g_dir);
    free(g_dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"default level is info", test_default_level_is_info},
        {"text format", test_text_format},
        {"level filter", test_level_filter},
        {"secret masking", test_secret_masking},
        {"pattern masking", test_pattern_masking},
        {"control characters escaped", test_control_chars_escaped},
        {"long message truncated", test_truncation},
        {"json mode", test_json_mode},
        {"concurrent lines stay whole", test_concurrent_whole_lines},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("log", tests, suite_init, suite_cleanup);
}
