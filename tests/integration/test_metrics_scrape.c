/*
 * A live scrape of a real `tickflow run` (a plain generate -> stdout pipeline and a leased one
 * against a private redis-server): /metrics is served as Prometheus text that `promtool check
 * metrics` accepts, with the series the alert rules (docs/alerts.yaml) read; /healthz answers
 * 200; /readyz answers 200 with each pipeline's state, turns 503 within the lease ttl (plus a
 * margin) once Redis is stopped, and comes back to 200 when Redis is restarted. Scrapes
 * abandoned while the process is stopped (SIGSTOP) do not pile up: once resumed it answers at
 * once and logs no "connection limit" storm.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_proc.h"
#include "tf_test.h"

#define TTL_MS    1000
#define PERIOD_MS 100
/* Process scheduling on a loaded 2-core CI machine (ASan doubles it) and the spacing of the
 * readiness polls, each a full HTTP request. */
#define MARGIN_MS           1500
#define START_TIMEOUT_MS    20000
#define RECOVER_TIMEOUT_MS  15000
#define PROMTOOL_TIMEOUT_MS 60000
#define HTTP_TIMEOUT_MS     5000
/* Scrapes sent to a stopped replica, each given up by its client: more than the listener's
 * connection limits (64, 16 per address) so that, accumulated, they would hit both. */
#define ABANDONED_SCRAPES 80
/* How long a scraper waits before giving up (Prometheus: scrape_timeout). */
#define SCRAPER_PATIENCE_MS 300
/* A scrape of a resumed replica: its own rendering plus scheduling on a loaded machine, and
 * one SYN retransmit (1 s) when it raced the listener draining its queue. */
#define RESUMED_SCRAPE_MS 2000
/* Scrapes after the resume cover the kernel's first two SYN-ACK retransmits (1 s, 3 s). */
#define AFTER_RESUME_MS  4000
#define SCRAPE_PACING_MS 100

static char *dir;
static tft_redis *redis;
static tfp_proc proc;
static bool running;
static int port;
static int file_seq;
static char promtool[1024];

/* --- HTTP ------------------------------------------------------------------------------- */

typedef struct http_reply {
    long status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
    char content_type[128];
} http_reply;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    http_reply *r = arg;
    size_t add = size * n;
    char *grown = realloc(r->body, r->len + add + 1);
    if (!grown)
        return 0; /* makes curl fail the transfer */
    memcpy(grown + r->len, data, add);
    r->body = grown;
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static void http_reply_free(http_reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* GET http://127.0.0.1:<port><path>. True when a response arrived (any status). */
static bool http_get(const char *path, http_reply *out)
{
    *out = (http_reply){0};
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    if (!h)
        return false;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(out->content_type, sizeof out->content_type, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(h);
    if (rc == CURLE_OK && !out->body)
        out->body = calloc(1, 1);
    if (rc != CURLE_OK || !out->body) {
        http_reply_free(out);
        return false;
    }
    return true;
}

/* --- the exposition ---------------------------------------------------------------------- */

/* True when the label block `labels` ("{a=\"x\",b=\"y\"}") has the pair `pair` (`b="y"`). */
static bool has_label(const char *labels, const char *pair)
{
    size_t n = strlen(pair);
    for (const char *at = strstr(labels, pair); at; at = strstr(at + 1, pair)) {
        bool starts = at > labels && (at[-1] == '{' || at[-1] == ',');
        bool ends = at[n] == ',' || at[n] == '}';
        if (starts && ends)
            return true;
    }
    return false;
}

/* Checks one sample line against `name` and `pairs`; stores its value. */
static bool line_matches(const char *line, const char *name, const char *const *pairs,
                         double *value)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || (line[n] != '{' && line[n] != ' '))
        return false;
    const char *rest = line + n;
    if (*rest == '{') {
        const char *close = strrchr(rest, '}');
        if (!close)
            return false;
        char labels[1024];
        int len = snprintf(labels, sizeof labels, "%.*s", (int)(close - rest + 1), rest);
        if (len < 0 || (size_t)len >= sizeof labels)
            return false;
        for (size_t i = 0; pairs && pairs[i]; i++)
            if (!has_label(labels, pairs[i]))
                return false;
        rest = close + 1;
    } else if (pairs && pairs[0]) {
        return false;
    }
    char *end = NULL;
    *value = strtod(rest, &end);
    return end != rest;
}

/* The value of the first sample of `name` carrying every `key="value"` of `pairs` (NULL-ended,
 * may be NULL). False when there is no such sample. */
static bool sample(const char *text, const char *name, const char *const *pairs, double *value)
{
    char line[2048];
    for (const char *at = text; at && *at;) {
        const char *nl = strchr(at, '\n');
        size_t len = nl ? (size_t)(nl - at) : strlen(at);
        if (len < sizeof line && *at != '#') {
            memcpy(line, at, len);
            line[len] = '\0';
            if (line_matches(line, name, pairs, value))
                return true;
        }
        at = nl ? nl + 1 : NULL;
    }
    return false;
}

/* Some sample of `name` has exactly `want`. */
static bool any_sample_equals(const char *text, const char *name, double want)
{
    size_t n = strlen(name);
    for (const char *at = strstr(text, name); at; at = strstr(at + 1, name)) {
        if ((at != text && at[-1] != '\n') || (at[n] != '{' && at[n] != ' '))
            continue;
        const char *nl = strchr(at, '\n');
        char line[2048];
        size_t len = nl ? (size_t)(nl - at) : strlen(at);
        double v = 0;
        if (len >= sizeof line)
            continue;
        memcpy(line, at, len);
        line[len] = '\0';
        if (line_matches(line, name, NULL, &v) && v == want)
            return true;
    }
    return false;
}

static double value_or(const char *text, const char *name, const char *const *pairs, double dflt)
{
    double v = 0;
    return sample(text, name, pairs, &v) ? v : dflt;
}

/* The current /metrics body, malloc'd; NULL unless it answered 200. */
static char *scrape(void)
{
    http_reply r;
    if (!http_get("/metrics", &r))
        return NULL;
    if (r.status != 200) {
        http_reply_free(&r);
        return NULL;
    }
    return r.body;
}

/* --- /readyz ----------------------------------------------------------------------------- */

typedef struct readiness {
    long status;
    char leased[32]; /* detail.leased */
    char plain[32];  /* detail.plain */
} readiness;

static bool get_readiness(readiness *out)
{
    *out = (readiness){0};
    http_reply r;
    if (!http_get("/readyz", &r))
        return false;
    out->status = r.status;
    json_t *doc = json_loads(r.body, 0, NULL);
    json_t *detail = json_object_get(doc, "detail");
    const char *leased = json_string_value(json_object_get(detail, "leased"));
    const char *plain = json_string_value(json_object_get(detail, "plain"));
    snprintf(out->leased, sizeof out->leased, "%s", leased ? leased : "");
    snprintf(out->plain, sizeof out->plain, "%s", plain ? plain : "");
    json_decref(doc);
    http_reply_free(&r);
    return true;
}

static bool readyz_is(void *arg)
{
    long want = *(const long *)arg;
    readiness r;
    return get_readiness(&r) && r.status == want;
}

/* --- promtool ------------------------------------------------------------------------------ */

static void print_file(const char *what, const char *path)
{
    char *text = tft_read_file(path, NULL);
    fprintf(stderr, "\n--- %s (%s) ---\n%s\n--- end ---\n", what, path, text ? text : "(none)");
    free(text);
}

/* Saves `body` and pipes it into `promtool check metrics` (it reads stdin only); returns its
 * exit code (-1 when it did not exit in time) and prints both files when it is not 0. */
static int promtool_check_metrics(const char *body)
{
    char saved[1024], log[1024];
    int seq = file_seq++;
    snprintf(saved, sizeof saved, "%s/scrape-%d.txt", dir, seq);
    snprintf(log, sizeof log, "%s/promtool-%d.log", dir, seq);
    if (tft_write_file(saved, body) != 0)
        return -1;
    /* "$0" and "$1" keep both paths out of the shell's parser. */
    const char *argv[] = {"/bin/sh", "-c",  "exec \"$0\" check metrics < \"$1\"",
                          promtool,  saved, NULL};
    pid_t pid = tft_spawn(argv, log, NULL);
    int status = 0;
    int rc = -1;
    if (pid > 0 && tft_wait_exit(pid, PROMTOOL_TIMEOUT_MS, &status))
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    else if (pid > 0)
        tft_kill_wait(pid);
    if (rc != 0) {
        print_file("promtool check metrics", log);
        print_file("the scrape it read", saved);
    }
    return rc;
}

/* Asserts that promtool accepts `body`. Without promtool the exposition cannot be checked:
 * that is a failure, not a skip (the rest of the calling test still runs). */
static void assert_promtool_accepts(const char *body)
{
    if (!promtool[0]) {
        CU_FAIL("promtool not found in PATH: install the Debian package prometheus");
        return;
    }
    CU_ASSERT_EQUAL(promtool_check_metrics(body), 0);
}

/* --- start-up ---------------------------------------------------------------------------- */

static const char *write_config(void)
{
    char yaml[1024];
    int n = snprintf(yaml, sizeof yaml,
                     "redis:\n"
                     "  url: redis://127.0.0.1:%d/0\n"
                     "  prefix: tfscrape%d\n"
                     "metrics:\n"
                     "  listen: \"127.0.0.1:%d\"\n"
                     "pipelines:\n"
                     "  - name: plain\n"
                     "    every: %dms\n"
                     "    lease: off\n"
                     "    sources: [{use: generate}]\n"
                     "    sinks: [{use: stdout}]\n"
                     "  - name: leased\n"
                     "    every: %dms\n"
                     "    lease: {ttl: %dms}\n"
                     "    sources: [{use: generate}]\n"
                     "    sinks: [{use: stdout}]\n",
                     redis->port, (int)getpid(), port, PERIOD_MS, PERIOD_MS, TTL_MS);
    if (n < 0 || (size_t)n >= sizeof yaml)
        return NULL;
    return tfp_write_config(dir, "scrape.yaml", yaml);
}

static const char *const plain_ok[] = {"pipeline=\"plain\"", "result=\"ok\"", NULL};
static const char *const leased_ok[] = {"pipeline=\"leased\"", "result=\"ok\"", NULL};
static const char *const leased_only[] = {"pipeline=\"leased\"", NULL};

/* Both pipelines ticked and the only replica holds the lease. */
static bool both_running(void *arg)
{
    (void)arg;
    char *text = scrape();
    if (!text)
        return false;
    bool ok = value_or(text, "tickflow_pipeline_ticks_total", plain_ok, 0) > 0 &&
              value_or(text, "tickflow_pipeline_ticks_total", leased_ok, 0) > 0 &&
              value_or(text, "tickflow_lease_held", leased_only, 0) == 1;
    free(text);
    return ok;
}

static int suite_init(void)
{
    if (!tft_find_in_path("promtool", promtool, sizeof promtool))
        promtool[0] = '\0';
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    dir = tft_mkdtemp();
    redis = tft_redis_start(0);
    port = tft_free_port();
    if (!dir || !redis || port <= 0)
        return 1;
    const char *cfg = write_config();
    if (!cfg || !tfp_start(&proc, dir, "tickflow", cfg))
        return 1;
    running = true;
    if (!tft_wait_until(both_running, NULL, START_TIMEOUT_MS)) {
        fprintf(stderr, "tickflow did not serve ticks of both pipelines on :%d within %d ms\n",
                port, START_TIMEOUT_MS);
        print_file("tickflow log", proc.log);
        return 1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    if (running)
        tft_stop(proc.pid, SIGTERM, 5000);
    if (CU_get_number_of_failures() > 0 && proc.log[0])
        print_file("tickflow log", proc.log);
    tft_redis_destroy(redis);
    if (dir)
        tft_rmdir(dir);
    free(dir);
    curl_global_cleanup();
    return 0;
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_scrape_passes_promtool(void)
{
    http_reply r;
    CU_ASSERT_FATAL(http_get("/metrics", &r));
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_promtool_accepts(r.body);
    http_reply_free(&r);
}

static void test_scrape_has_the_series_alerts_read(void)
{
    char *text = scrape();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(value_or(text, "tickflow_pipeline_ticks_total", plain_ok, 0) > 0);
    CU_ASSERT(value_or(text, "tickflow_pipeline_ticks_total", leased_ok, 0) > 0);
    const char *plain_inf[] = {"pipeline=\"plain\"", "le=\"+Inf\"", NULL};
    CU_ASSERT(value_or(text, "tickflow_pipeline_tick_duration_seconds_bucket", plain_inf, 0) > 0);
    CU_ASSERT_EQUAL(value_or(text, "tickflow_lease_held", leased_only, -1), 1);
    /* Only leased pipelines have a lease. */
    const char *plain_only[] = {"pipeline=\"plain\"", NULL};
    CU_ASSERT_EQUAL(value_or(text, "tickflow_lease_held", plain_only, -1), -1);
    const char *generated[] = {"pipeline=\"plain\"", "plugin=\"generate\"", NULL};
    const char *written[] = {"pipeline=\"plain\"", "plugin=\"stdout\"", NULL};
    CU_ASSERT(value_or(text, "tickflow_plugin_records_total", generated, 0) > 0);
    CU_ASSERT(value_or(text, "tickflow_plugin_records_total", written, 0) > 0);
    CU_ASSERT(any_sample_equals(text, "tickflow_redis_up", 1));
    CU_ASSERT(!any_sample_equals(text, "tickflow_redis_up", 0));
    /* The scrapes that waited for start-up were counted. */
    const char *scrapes[] = {"route=\"/metrics\"", "code=\"200\"", NULL};
    CU_ASSERT(value_or(text, "tickflow_metrics_listener_requests_total", scrapes, 0) >= 1);
    free(text);
}

static void test_healthz_and_readyz(void)
{
    http_reply r;
    CU_ASSERT_FATAL(http_get("/healthz", &r));
    CU_ASSERT_EQUAL(r.status, 200);
    json_t *doc = json_loads(r.body, 0, NULL);
    const char *status = json_string_value(json_object_get(doc, "status"));
    CU_ASSERT_STRING_EQUAL(status ? status : "(none)", "ok");
    json_decref(doc);
    http_reply_free(&r);

    readiness ready;
    CU_ASSERT_FATAL(get_readiness(&ready));
    CU_ASSERT_EQUAL(ready.status, 200);
    CU_ASSERT_STRING_EQUAL(ready.leased, "holder");
    CU_ASSERT_STRING_EQUAL(ready.plain, "running");
}

/* Plain ticks keep counting: the Redis outage pauses only the leased pipeline. */
static bool plain_advances(void *arg)
{
    double *before = arg;
    char *text = scrape();
    bool ok = text && value_or(text, "tickflow_pipeline_ticks_total", plain_ok, 0) > *before + 3;
    free(text);
    return ok;
}

static bool redis_down_exported(void *arg)
{
    (void)arg;
    char *text = scrape();
    bool ok = text && any_sample_equals(text, "tickflow_redis_up", 0) &&
              value_or(text, "tickflow_lease_held", leased_only, -1) == 0;
    free(text);
    return ok;
}

static bool holder_again(void *arg)
{
    (void)arg;
    readiness r;
    return get_readiness(&r) && r.status == 200 && strcmp(r.leased, "holder") == 0;
}

static void test_readyz_follows_redis(void)
{
    tft_redis_stop(redis);
    long long stopped_at = tft_mono_ms();
    long want = 503;
    CU_ASSERT_FATAL(tft_wait_until(readyz_is, &want, TTL_MS + MARGIN_MS + 10000));
    long long took = tft_mono_ms() - stopped_at;
    fprintf(stderr, "\n/readyz 503 %lld ms after Redis stopped (bound ttl %d + margin %d ms)\n",
            took, TTL_MS, MARGIN_MS);
    CU_ASSERT(took <= TTL_MS + MARGIN_MS);
    readiness down;
    CU_ASSERT_FATAL(get_readiness(&down));
    CU_ASSERT_EQUAL(down.status, 503);
    CU_ASSERT_STRING_EQUAL(down.leased, "redis_unreachable");
    CU_ASSERT_STRING_EQUAL(down.plain, "running");

    /* What TickflowRedisDown and TickflowNoLeaseHolder read, in an exposition still valid. */
    CU_ASSERT(tft_wait_until(redis_down_exported, NULL, RECOVER_TIMEOUT_MS));
    char *text = scrape();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    double plain_before = value_or(text, "tickflow_pipeline_ticks_total", plain_ok, 0);
    assert_promtool_accepts(text);
    free(text);
    CU_ASSERT(tft_wait_until(plain_advances, &plain_before, RECOVER_TIMEOUT_MS));

    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(redis), 0);
    want = 200;
    CU_ASSERT(tft_wait_until(readyz_is, &want, RECOVER_TIMEOUT_MS));
    CU_ASSERT(tft_wait_until(holder_again, NULL, RECOVER_TIMEOUT_MS));
    CU_ASSERT(tft_wait_until(both_running, NULL, RECOVER_TIMEOUT_MS));
}

/* Connects to the listener without blocking and sends a scrape request when the connection
 * is made at once; -1 when no socket could be created. The kernel completes the handshake of
 * a stopped process up to the listen backlog; past it the connection stays pending. */
static int start_abandoned_scrape(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char request[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        (void)!send(fd, request, sizeof request - 1, MSG_NOSIGNAL);
    return fd;
}

/* A scraper that gives up on a stopped replica leaves its connections in the listen queue (the
 * kernel accepts them while the process cannot). Resumed, the listener must not drown in them:
 * a new scrape is answered at once and the log has no "connection limit" storm (a replica
 * resumed from SIGSTOP once logged 33 such lines). */
static void test_scrapes_abandoned_while_stopped_are_dropped(void)
{
    int before = tft_file_count(proc.log, "connection limit");
    /* Only once every thread is stopped: connections made while the listener thread still
     * runs are accepted by it, not left queued by the kernel (a race that once showed 21). */
    CU_ASSERT_FATAL(tft_freeze(proc.pid, START_TIMEOUT_MS));
    int fds[ABANDONED_SCRAPES];
    for (int i = 0; i < ABANDONED_SCRAPES; i++)
        fds[i] = start_abandoned_scrape();
    tft_sleep_ms(SCRAPER_PATIENCE_MS); /* the scraper's own timeout, not a wait on a condition */
    for (int i = 0; i < ABANDONED_SCRAPES; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    CU_ASSERT_EQUAL_FATAL(kill(proc.pid, SIGCONT), 0);
    /* Scrape for a few seconds after the resume: handshakes the kernel left half-done complete
     * only when it retransmits their SYN-ACK (after 1 s, then 3 s), and each must be dropped
     * too. Every scrape must be answered promptly. */
    long long resumed = tft_mono_ms();
    long long slowest = 0;
    int scrapes = 0;
    int failed = 0;
    while (tft_mono_ms() - resumed < AFTER_RESUME_MS) {
        long long t0 = tft_mono_ms();
        http_reply r;
        bool answered = http_get("/metrics", &r);
        long long took = tft_mono_ms() - t0;
        slowest = took > slowest ? took : slowest;
        scrapes++;
        if (!answered || r.status != 200)
            failed++;
        if (answered)
            http_reply_free(&r);
        tft_sleep_ms(SCRAPE_PACING_MS); /* pacing our own scrapes */
    }
    int storm = tft_file_count(proc.log, "connection limit") - before;
    fprintf(stderr,
            "\nresumed after %d abandoned scrapes: %d scrapes in %d ms, %d failed, slowest "
            "%lld ms; %d connection-limit lines\n",
            ABANDONED_SCRAPES, scrapes, AFTER_RESUME_MS, failed, slowest, storm);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(slowest <= RESUMED_SCRAPE_MS);
    CU_ASSERT_EQUAL(storm, 0);
    CU_ASSERT(tft_wait_until(both_running, NULL, RECOVER_TIMEOUT_MS));
}

static void test_sigterm_exits_cleanly(void)
{
    int status = tft_stop(proc.pid, SIGTERM, 5000);
    running = false;
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"/metrics passes promtool check metrics", test_scrape_passes_promtool},
        {"/metrics has ticks, durations, lease and records",
         test_scrape_has_the_series_alerts_read},
        {"/healthz 200, /readyz 200 with pipeline states", test_healthz_and_readyz},
        {"/readyz 503 within ttl of a Redis stop, 200 after restart", test_readyz_follows_redis},
        {"scrapes abandoned while stopped do not pile up",
         test_scrapes_abandoned_while_stopped_are_dropped},
        {"SIGTERM exits 0", test_sigterm_exits_cleanly},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("metrics_scrape", tests, suite_init, suite_cleanup);
}
