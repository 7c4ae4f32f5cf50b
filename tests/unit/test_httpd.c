/*
 * tf_httpd over real loopback HTTP (libcurl): /metrics content and promtool's verdict,
 * /healthz, /readyz from the callback, 404 and 405 bodies, request metrics, listen address
 * errors, the per-address connection limit and its log, and start/stop cycles (leaks show
 * under ASan).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_httpd.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_rawhttp.h"
#include "tf_test.h"

#define PROMTOOL "/usr/bin/promtool"

static bool promtool_accepts(const char *text)
{
    if (access(PROMTOOL, X_OK) != 0) {
        CU_FAIL("promtool not found at " PROMTOOL ": install the Debian package `prometheus`");
        fprintf(stderr, "promtool not found at %s: install the Debian package `prometheus`\n",
                PROMTOOL);
        return false;
    }
    FILE *p = popen(PROMTOOL " check metrics", "w");
    if (!p)
        return false;
    fwrite(text, 1, strlen(text), p);
    int status = pclose(p);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

typedef struct buf {
    char *p;
    size_t len;
} buf;

typedef struct response {
    long code;
    buf body;
    buf headers;
} response;

static size_t append(char *data, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

static void response_free(response *r)
{
    free(r->body.p);
    free(r->headers.p);
    memset(r, 0, sizeof *r);
}

/* One request to 127.0.0.1:port; fills r (body and headers always non-NULL). */
static bool request(int port, const char *method, const char *path, response *r)
{
    memset(r, 0, sizeof *r);
    append("", 0, 0, &r->body);
    append("", 0, 0, &r->headers);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    if (!c)
        return false;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, append);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    else
        fprintf(stderr, "curl %s %s: %s\n", method, url, curl_easy_strerror(rc));
    curl_easy_cleanup(c);
    return rc == CURLE_OK;
}

/* Value of header `name` (case-insensitive) in the raw header block, copied into out. */
static bool header(const response *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *line = r->headers.p; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)(len - (size_t)(v - line)), v);
            return true;
        }
        line = end ? end + 2 : line + len;
    }
    return false;
}

static tf_httpd *start_or_fail(tf_httpd_health_fn health, void *arg)
{
    char err[256] = "";
    tf_httpd *h = tf_httpd_start("127.0.0.1:0", health, arg, err, sizeof err);
    if (!h)
        fprintf(stderr, "tf_httpd_start: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_TRUE(tf_httpd_port(h) > 0);
    return h;
}

static double listener_requests(const char *route, const char *code)
{
    static const char *const labels[] = {"route", "code", NULL};
    tf_metric *m = tf_metrics_register(
        TF_METRIC_COUNTER, "tickflow_metrics_listener_requests_total", "", labels, NULL, 0);
    return tf_metric_value(m, (const char *[]){route, code});
}

static void test_metrics_route(void)
{
    static const char *const l[] = {"pipeline", NULL};
    tf_metric *g =
        tf_metrics_register(TF_METRIC_GAUGE, "tf_test_httpd_premium_ratio", "A gauge.", l, NULL, 0);
    tf_metric_set(g, (const char *[]){"kimchi \"premium\""}, 2.5);
    tf_httpd *h = start_or_fail(NULL, NULL);
    response r;
    CU_ASSERT_TRUE_FATAL(request(tf_httpd_port(h), "GET", "/metrics", &r));
    CU_ASSERT_EQUAL(r.code, 200);
    char ct[128] = "";
    CU_ASSERT_TRUE(header(&r, "Content-Type", ct, sizeof ct));
    CU_ASSERT_STRING_EQUAL(ct, "text/plain; version=0.0.4; charset=utf-8");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body.p, "tf_test_httpd_premium_ratio{pipeline=\"kimchi "
                                            "\\\"premium\\\"\"} 2.5\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(r.body.p, "# TYPE tickflow_metrics_listener_requests_total counter\n"));
    /* The API's family is the http_api sink's alone (docs/metrics.md). */
    CU_ASSERT_PTR_NULL(strstr(r.body.p, "tickflow_api_requests_total"));
    CU_ASSERT_TRUE(promtool_accepts(r.body.p));
    response_free(&r);

    /* The first scrape is counted, and the second scrape shows it. */
    CU_ASSERT_TRUE_FATAL(request(tf_httpd_port(h), "GET", "/metrics", &r));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        r.body.p, "tickflow_metrics_listener_requests_total{route=\"/metrics\",code=\"200\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(r.body.p,
               "tickflow_metrics_listener_request_duration_seconds_count{route=\"/metrics\"} 1\n"));
    CU_ASSERT_TRUE(promtool_accepts(r.body.p));
    response_free(&r);
    tf_httpd_stop(h);
    CU_ASSERT_DOUBLE_EQUAL(listener_requests("/metrics", "200"), 2, 0);
}

static void test_healthz(void)
{
    tf_httpd *h = start_or_fail(NULL, NULL);
    response r;
    CU_ASSERT_TRUE_FATAL(request(tf_httpd_port(h), "GET", "/healthz", &r));
    CU_ASSERT_EQUAL(r.code, 200);
    CU_ASSERT_STRING_EQUAL(r.body.p, "{\"status\":\"ok\"}");
    char ct[64] = "";
    CU_ASSERT_TRUE(header(&r, "Content-Type", ct, sizeof ct));
    CU_ASSERT_STRING_EQUAL(ct, "application/json");
    response_free(&r);
    tf_httpd_stop(h);
}

typedef struct health_state {
    bool ready;
    const char *detail;
    int calls;
} health_state;

static bool health(void *arg, char *out, size_t size)
{
    health_state *s = arg;
    s->calls++;
    snprintf(out, size, "%s", s->detail);
    return s->ready;
}

static void test_readyz(void)
{
    health_state s = {false, "{\"kimchi\":\"redis_unreachable\"}", 0};
    tf_httpd *h = start_or_fail(health, &s);
    int port = tf_httpd_port(h);
    response r;
    CU_ASSERT_TRUE_FATAL(request(port, "GET", "/readyz", &r));
    CU_ASSERT_EQUAL(r.code, 503);
    CU_ASSERT_EQUAL(s.calls, 1);
    json_t *j = json_loads(r.body.p, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "not_ready");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(j, "detail"), "kimchi")),
        "redis_unreachable");
    json_decref(j);
    response_free(&r);

    s.ready = true;
    s.detail = "not json";
    CU_ASSERT_TRUE_FATAL(request(port, "GET", "/readyz", &r));
    CU_ASSERT_EQUAL(r.code, 200);
    CU_ASSERT_STRING_EQUAL(r.body.p, "{\"status\":\"ready\",\"detail\":\"not json\"}");
    response_free(&r);
    tf_httpd_stop(h);

    /* Without a callback the runtime is always ready. */
    h = start_or_fail(NULL, NULL);
    CU_ASSERT_TRUE_FATAL(request(tf_httpd_port(h), "GET", "/readyz", &r));
    CU_ASSERT_EQUAL(r.code, 200);
    CU_ASSERT_STRING_EQUAL(r.body.p, "{\"status\":\"ready\"}");
    response_free(&r);
    tf_httpd_stop(h);
}

static void test_not_found(void)
{
    tf_httpd *h = start_or_fail(NULL, NULL);
    double before = listener_requests("other", "404");
    const char *paths[] = {"/nope", "/metrics/", "/", "/healthz/x"};
    for (size_t i = 0; i < TF_ARRAY_LEN(paths); i++) {
        response r;
        CU_ASSERT_TRUE_FATAL(request(tf_httpd_port(h), "GET", paths[i], &r));
        CU_ASSERT_EQUAL(r.code, 404);
        json_t *j = json_loads(r.body.p, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        json_t *e = json_object_get(j, "error");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "code")), "not_found");
        const char *msg = json_string_value(json_object_get(e, "message"));
        CU_ASSERT_TRUE(msg && strstr(msg, paths[i]) && strstr(msg, "expected /metrics"));
        json_decref(j);
        response_free(&r);
    }
    tf_httpd_stop(h);
    /* Unknown paths share one series: a scanner cannot grow the registry. */
    CU_ASSERT_DOUBLE_EQUAL(listener_requests("other", "404") - before, TF_ARRAY_LEN(paths), 0);
}

static void test_method_not_allowed(void)
{
    tf_httpd *h = start_or_fail(NULL, NULL);
    const char *methods[] = {"POST", "DELETE", "PUT"};
    for (size_t i = 0; i < TF_ARRAY_LEN(methods); i++) {
        response r;
        CU_ASSERT_TRUE_FATAL(request(tf_httpd_port(h), methods[i], "/metrics", &r));
        CU_ASSERT_EQUAL(r.code, 405);
        char allow[64] = "";
        CU_ASSERT_TRUE(header(&r, "Allow", allow, sizeof allow));
        CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD");
        json_t *j = json_loads(r.body.p, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_object_get(j, "error"), "code")),
            "method_not_allowed");
        json_decref(j);
        response_free(&r);
    }
    tf_httpd_stop(h);
    CU_ASSERT_TRUE(listener_requests("/metrics", "405") >= 3);
}

/* HEAD wherever GET (RFC 9110 9.3.2): a monitor that probes with HEAD gets GET's answer
 * without its body, not a 405. */
static void test_head_mirrors_get(void)
{
    tf_httpd *h = start_or_fail(NULL, NULL);
    /* /metrics grows with every request (its own request counter): its length moves on. */
    const char *const moving[] = {"Content-Length", NULL};
    const char *paths[] = {"/metrics", "/healthz", "/readyz", "/nope"};
    for (size_t i = 0; i < TF_ARRAY_LEN(paths); i++) {
        char why[512] = "";
        bool same = tft_raw_head_matches_get(tf_httpd_port(h), paths[i], NULL,
                                             i == 0 ? moving : NULL, why, sizeof why);
        CU_ASSERT_TRUE(same);
        if (!same)
            fprintf(stderr, "HEAD %s: %s\n", paths[i], why);
    }
    tft_raw_response r;
    CU_ASSERT_TRUE_FATAL(tft_raw_request(tf_httpd_port(h), "HEAD", "/healthz", NULL, 3000, &r));
    char length[16] = "";
    CU_ASSERT_TRUE(tft_raw_header(&r, "Content-Length", length, sizeof length));
    CU_ASSERT_STRING_EQUAL(length, "15"); /* {"status":"ok"}, which the GET sends */
    tft_raw_free(&r);
    tf_httpd_stop(h);
}

static void expect_start_error(const char *listen, const char *want)
{
    char err[256] = "";
    tf_httpd *h = tf_httpd_start(listen, NULL, NULL, err, sizeof err);
    CU_ASSERT_PTR_NULL(h);
    tf_httpd_stop(h);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    if (!strstr(err, want))
        fprintf(stderr, "listen %s: got error \"%s\", wanted \"%s\"\n", listen ? listen : "NULL",
                err, want);
}

static void test_listen_errors(void)
{
    expect_start_error(NULL, "expected host:port");
    expect_start_error("", "expected host:port");
    expect_start_error("127.0.0.1", "\"127.0.0.1\": expected host:port");
    expect_start_error("127.0.0.1:99999", "expected host:port with a port 0-65535");
    expect_start_error("127.0.0.1:http", "expected host:port");
    expect_start_error(":9464", "expected host:port");
    expect_start_error("::1:9464", "expected host:port"); /* v6 needs brackets */
    expect_start_error("[::1:9464", "expected host:port");

    tf_httpd *a = start_or_fail(NULL, NULL);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", tf_httpd_port(a));
    expect_start_error(listen, "Address already in use");
    tf_httpd_stop(a);
}

static void test_restart_same_port(void)
{
    tf_httpd *a = start_or_fail(NULL, NULL);
    int port = tf_httpd_port(a);
    response r;
    CU_ASSERT_TRUE(request(port, "GET", "/healthz", &r)); /* leaves a connection to close */
    response_free(&r);
    tf_httpd_stop(a);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    for (int i = 0; i < 5; i++) {
        char err[256] = "";
        tf_httpd *b = tf_httpd_start(listen, NULL, NULL, err, sizeof err);
        if (!b)
            fprintf(stderr, "restart %d on %s: %s\n", i, listen, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_EQUAL(tf_httpd_port(b), port);
        CU_ASSERT_TRUE(request(port, "GET", "/healthz", &r));
        CU_ASSERT_EQUAL(r.code, 200);
        response_free(&r);
        tf_httpd_stop(b);
    }
}

/* More connections from one address than its limit (16): the extra ones are closed. */
#define HELD_CONNECTIONS    24
#define REFUSED_CONNECTIONS (HELD_CONNECTIONS - 16)
#define REFUSAL_WAIT_MS     10000

typedef struct held {
    int fds[HELD_CONNECTIONS];
} held;

static int connect_idle(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* How many of the held connections the listener has closed (EOF or reset). */
static bool refusals_seen(void *arg)
{
    const held *h = arg;
    int closed = 0;
    for (int i = 0; i < HELD_CONNECTIONS; i++) {
        char c;
        ssize_t n = recv(h->fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK);
        closed += n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    return closed >= REFUSED_CONNECTIONS;
}

/* A client past its limit is refused connection by connection, but the log says so once. */
static void test_connection_limit_logged_once(void)
{
    tf_httpd *h = start_or_fail(NULL, NULL);
    char *dir = tft_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/stderr.log", dir);
    int log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(log_fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(log_fd, STDERR_FILENO);
    held conns;
    for (int i = 0; i < HELD_CONNECTIONS; i++)
        conns.fds[i] = connect_idle(tf_httpd_port(h));
    bool refused = tft_wait_until(refusals_seen, &conns, REFUSAL_WAIT_MS);
    for (int i = 0; i < HELD_CONNECTIONS; i++)
        if (conns.fds[i] >= 0)
            close(conns.fds[i]);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(log_fd);
    int lines = tft_file_count(path, "connection limit");
    tft_rmdir(dir);
    free(dir);
    CU_ASSERT_TRUE(refused);
    fprintf(stderr, "\n%d connections refused, %d log line(s)\n", REFUSED_CONNECTIONS, lines);
    CU_ASSERT_EQUAL(lines, 1);
    /* Once the client let go, it is served again. */
    response r;
    CU_ASSERT_TRUE(request(tf_httpd_port(h), "GET", "/healthz", &r));
    CU_ASSERT_EQUAL(r.code, 200);
    response_free(&r);
    tf_httpd_stop(h);
}

static int suite_init(void)
{
    /* As the runtime does: a peer closing early must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int suite_cleanup(void)
{
    curl_global_cleanup();
    tf_metrics_shutdown();
    tf_log_shutdown();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"GET /metrics", test_metrics_route},
        {"GET /healthz", test_healthz},
        {"GET /readyz", test_readyz},
        {"404 for unknown paths", test_not_found},
        {"405 with Allow", test_method_not_allowed},
        {"HEAD mirrors GET", test_head_mirrors_get},
        {"listen address errors", test_listen_errors},
        {"restart on the same port", test_restart_same_port},
        {"connection limit: refused, logged once", test_connection_limit_logged_once},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("httpd", tests, suite_init, suite_cleanup);
}
