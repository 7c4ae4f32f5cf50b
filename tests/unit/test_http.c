/*
 * tf_http against real loopback HTTP: a small libmicrohttpd server inside this file answers by
 * path and counts requests and TCP connections, so each test can check what reached the wire
 * (keep-alive, rate limits, Retry-After, circuit breaker, size cap, timeouts, stop, gzip).
 */
#include "tf_http.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "tf_metrics.h"
#include "tf_test.h"

/* ---- the loopback server ---- */

typedef struct tsrv {
    struct MHD_Daemon *daemon;
    int port;
    atomic_int connections;  /* TCP connections accepted */
    atomic_int requests;     /* requests answered, all paths */
    atomic_int flaky_status; /* what /flaky answers */
    atomic_int flaky_delay_ms;
    atomic_bool saw_origin;
    atomic_bool saw_x_test;
    atomic_bool saw_accept_gzip;
    atomic_bool closing; /* lets slow handlers return at shutdown */
} tsrv;

static tsrv S;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    (void)socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&S.connections, 1);
}

/* The server's simulated latency, cut short when the suite shuts down. */
static void serve_delay(int ms)
{
    long long until = tft_mono_ms() + ms;
    while (tft_mono_ms() < until && !atomic_load(&S.closing))
        tft_sleep_ms(5);
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A gzip member holding `text` in one stored (uncompressed) deflate block: valid gzip that
 * libcurl must decode, built without linking zlib into the test. malloc'd. */
static unsigned char *gzip_stored(const char *text, size_t *out_len)
{
    size_t n = strlen(text);
    unsigned char *g = malloc(10 + 5 + n + 8);
    if (!g)
        return NULL;
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    memcpy(g, head, sizeof head);
    unsigned char *b = g + 10;
    b[0] = 1; /* BFINAL, stored */
    b[1] = (unsigned char)(n & 0xff);
    b[2] = (unsigned char)(n >> 8);
    b[3] = (unsigned char)(~n & 0xff);
    b[4] = (unsigned char)((~n >> 8) & 0xff);
    memcpy(b + 5, text, n);
    put_le32(b + 5 + n, crc32_of((const unsigned char *)text, n));
    put_le32(b + 5 + n + 4, (uint32_t)n);
    *out_len = 10 + 5 + n + 8;
    return g;
}

#define GZIP_TEXT "tickflow gzip body: the quick brown fox jumps over the lazy dog"

static ssize_t chunked_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t total = *(size_t *)cls;
    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = total - (size_t)pos;
    if (n > max)
        n = max;
    memset(buf, 'y', n);
    return (ssize_t)n;
}

static struct MHD_Response *text_response(const char *text)
{
    return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
}

static struct MHD_Response *gzip_response(struct MHD_Connection *conn)
{
    const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
    if (!ae || !strstr(ae, "gzip"))
        return text_response(GZIP_TEXT);
    atomic_store(&S.saw_accept_gzip, true);
    size_t n = 0;
    unsigned char *g = gzip_stored(GZIP_TEXT, &n);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, g, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Encoding", "gzip");
    return r;
}

static struct MHD_Response *retry_date_response(int secs)
{
    char date[64];
    time_t when = time(NULL) + secs;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    struct MHD_Response *r = text_response("busy");
    MHD_add_response_header(r, "Retry-After", date);
    return r;
}

/* Chooses status and response by path. */
static struct MHD_Response *route(struct MHD_Connection *conn, const char *url, unsigned *status)
{
    *status = MHD_HTTP_OK;
    int n = 0;
    if (strcmp(url, "/ok") == 0)
        return text_response("ok");
    if (sscanf(url, "/status/%d", &n) == 1) {
        *status = (unsigned)n;
        return text_response("status");
    }
    if (strncmp(url, "/retry-after/", 13) == 0) {
        *status = 429;
        struct MHD_Response *r = text_response("slow down");
        MHD_add_response_header(r, "Retry-After", url + 13);
        return r;
    }
    if (sscanf(url, "/retry-date/%d", &n) == 1) {
        *status = 503;
        return retry_date_response(n);
    }
    if (sscanf(url, "/big/%d", &n) == 1) {
        char *body = malloc((size_t)n);
        memset(body, 'x', (size_t)n);
        return MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
    }
    if (sscanf(url, "/chunked/%d", &n) == 1) {
        size_t *total = malloc(sizeof *total);
        *total = (size_t)n;
        return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, chunked_reader, total,
                                                 free);
    }
    if (sscanf(url, "/slow/%d", &n) == 1) {
        serve_delay(n);
        return text_response("slow");
    }
    if (strcmp(url, "/flaky") == 0) {
        serve_delay(atomic_load(&S.flaky_delay_ms));
        *status = (unsigned)atomic_load(&S.flaky_status);
        return text_response("flaky");
    }
    if (strcmp(url, "/gzip") == 0)
        return gzip_response(conn);
    if (strcmp(url, "/headers") == 0) {
        struct MHD_Response *r = text_response("headers");
        MHD_add_response_header(r, "X-Dup", "first");
        MHD_add_response_header(r, "X-Dup", "second");
        MHD_add_response_header(r, "X-Case", "value");
        return r;
    }
    *status = MHD_HTTP_NOT_FOUND;
    return text_response("not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_ctx)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_size;
    static int first_call_marker;
    /* MHD calls once with the headers, then again to ask for the response. */
    if (*req_ctx == NULL) {
        *req_ctx = &first_call_marker;
        return MHD_YES;
    }
    atomic_fetch_add(&S.requests, 1);
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"))
        atomic_store(&S.saw_origin, true);
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Test"))
        atomic_store(&S.saw_x_test, true);
    unsigned status = 0;
    struct MHD_Response *r = route(conn, url, &status);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int suite_init(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    S.daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                                NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
    if (!S.daemon)
        return 1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.daemon, MHD_DAEMON_INFO_BIND_PORT);
    S.port = info ? (int)info->port : 0;
    return S.port > 0 ? 0 : 1;
}

static int suite_cleanup(void)
{
    atomic_store(&S.closing, true);
    if (S.daemon)
        MHD_stop_daemon(S.daemon);
    tf_metrics_shutdown();
    return 0;
}

/* ---- helpers ---- */

static const char *url_of(const char *path)
{
    static char buf[4][256];
    static int slot;
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "http://127.0.0.1:%d%s", S.port, path);
    return out;
}

static const char *host_key(void)
{
    static char key[64];
    snprintf(key, sizeof key, "127.0.0.1:%d", S.port);
    return key;
}

static tf_http_settings base_settings(void)
{
    tf_http_settings s = {.breaker_failures = 3, .breaker_base_ms = 200, .breaker_max_ms = 400};
    return s;
}

/* GET with an optional timeout; returns the status code and frees the response (or keeps it
 * in *keep when given). */
static int get(tf_http_client *c, const char *path, int64_t timeout_ms, long *status,
               tf_http_response **keep)
{
    tf_http_request req = {
        .struct_size = sizeof req, .url = url_of(path), .timeout_ms = timeout_ms};
    tf_http_response *r = NULL;
    int rc = tf_http_get(c, &req, &r);
    if (status)
        *status = tf_http_response_status(r);
    if (keep)
        *keep = r;
    else
        tf_http_response_free(r);
    return rc;
}

/* strcmp that treats NULL as a mismatch instead of crashing the suite. */
static bool str_is(const char *got, const char *want)
{
    return got && strcmp(got, want) == 0;
}

static double metric_value(tf_metric_type type, const char *name, const char *const *names,
                           const char *const *values)
{
    tf_metric *m = tf_metrics_register(type, name, "test lookup", names, NULL, 0);
    return m ? tf_metric_value(m, values) : -1;
}

static double waits_total(void)
{
    const char *names[] = {"host", NULL};
    const char *values[] = {host_key()};
    return metric_value(TF_METRIC_COUNTER, "tickflow_http_rate_limit_waits_total", names, values);
}

typedef struct delayed_stop {
    atomic_bool *flag;
    int after_ms;
} delayed_stop;

static void *set_stop_later(void *arg)
{
    delayed_stop *d = arg;
    tft_sleep_ms(d->after_ms);
    atomic_store(d->flag, true);
    return NULL;
}

/* Opens the breaker of `h`'s loopback host with three 500s (breaker_failures = 3). */
static void open_breaker(tf_http_client *c, tf_http *h)
{
    atomic_store(&S.flaky_status, 500);
    atomic_store(&S.flaky_delay_ms, 0);
    for (int i = 0; i < 3; i++) {
        long status = 0;
        CU_ASSERT_EQUAL(get(c, "/flaky", 0, &status, NULL), TF_OK);
        CU_ASSERT_EQUAL(status, 500);
    }
    CU_ASSERT_EQUAL(tf_http_breaker_state(h, host_key()), 1);
}

typedef struct poll_ctx {
    tf_http_client *c;
    const char *path;
    int rc;
    long status;
} poll_ctx;

/* True once a GET is let through the breaker (the half-open probe). */
static bool probe_went_out(void *arg)
{
    poll_ctx *p = arg;
    p->rc = get(p->c, p->path, 0, &p->status, NULL);
    return p->rc != TF_ECIRCUIT;
}

/* True once a GET is no longer refused by a Retry-After block. */
static bool block_lifted(void *arg)
{
    poll_ctx *p = arg;
    p->rc = get(p->c, p->path, 0, &p->status, NULL);
    return p->rc != TF_ERATELIMIT;
}

/* ---- tests ---- */

static void test_keep_alive(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "keepalive", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int conns = atomic_load(&S.connections);
    int reqs = atomic_load(&S.requests);
    for (int i = 0; i < 20; i++) {
        tf_http_response *r = NULL;
        long status = 0;
        CU_ASSERT_EQUAL(get(c, "/ok", 0, &status, &r), TF_OK);
        CU_ASSERT_EQUAL(status, 200);
        size_t len = 0;
        CU_ASSERT_TRUE(str_is(tf_http_response_body(r, &len), "ok"));
        CU_ASSERT_EQUAL(len, 2);
        tf_http_response_free(r);
    }
    CU_ASSERT_EQUAL(atomic_load(&S.requests) - reqs, 20);
    CU_ASSERT_EQUAL(atomic_load(&S.connections) - conns, 1);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_two_clients_pool(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *a = tf_http_client_create(h, "p", "pool-a", NULL);
    tf_http_client *b = tf_http_client_create(h, "p", "pool-b", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int conns = atomic_load(&S.connections);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(get(a, "/ok", 0, NULL, NULL), TF_OK);
        CU_ASSERT_EQUAL(get(b, "/ok", 0, NULL, NULL), TF_OK);
    }
    CU_ASSERT(atomic_load(&S.connections) - conns <= 2);
    tf_http_client_destroy(a);
    tf_http_client_destroy(b);
    tf_http_destroy(h);
}

static void test_response_accessors(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "headers", NULL);
    tf_http_response *r = NULL;
    CU_ASSERT_EQUAL_FATAL(get(c, "/headers", 0, NULL, &r), TF_OK);
    CU_ASSERT_EQUAL(tf_http_response_status(r), 200);
    CU_ASSERT_TRUE(str_is(tf_http_response_header(r, "x-dup"), "second"));
    CU_ASSERT_TRUE(str_is(tf_http_response_header(r, "X-CASE"), "value"));
    CU_ASSERT_PTR_NULL(tf_http_response_header(r, "X-Absent"));
    size_t len = 0;
    const char *body = tf_http_response_body(r, &len);
    CU_ASSERT_EQUAL(len, 7);
    CU_ASSERT_TRUE(body && body[len] == '\0');
    CU_ASSERT(tf_http_response_elapsed_ms(r) >= 0);
    tf_http_response_free(r);
    tf_http_response_free(NULL);

    /* 404 is a response, not an error. */
    long status = 0;
    CU_ASSERT_EQUAL(get(c, "/nowhere", 0, &status, NULL), TF_OK);
    CU_ASSERT_EQUAL(status, 404);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_origin_never_sent(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "origin", NULL);
    atomic_store(&S.saw_origin, false);
    atomic_store(&S.saw_x_test, false);
    const char *headers[] = {"Origin: https://example.com", "X-Test: yes", "origin:x", NULL};
    tf_http_request req = {.struct_size = sizeof req, .url = url_of("/ok"), .headers = headers};
    tf_http_response *r = NULL;
    CU_ASSERT_EQUAL(tf_http_get(c, &req, &r), TF_OK);
    tf_http_response_free(r);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_OK);
    CU_ASSERT_TRUE(atomic_load(&S.saw_x_test));
    CU_ASSERT_FALSE(atomic_load(&S.saw_origin));
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_gzip_decoded(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "gzip", NULL);
    atomic_store(&S.saw_accept_gzip, false);
    tf_http_response *r = NULL;
    CU_ASSERT_EQUAL_FATAL(get(c, "/gzip", 0, NULL, &r), TF_OK);
    CU_ASSERT_TRUE(atomic_load(&S.saw_accept_gzip));
    CU_ASSERT_TRUE(str_is(tf_http_response_header(r, "Content-Encoding"), "gzip"));
    size_t len = 0;
    CU_ASSERT_TRUE(str_is(tf_http_response_body(r, &len), GZIP_TEXT));
    CU_ASSERT_EQUAL(len, strlen(GZIP_TEXT));
    tf_http_response_free(r);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_rate_limit_paces_requests(void)
{
    char port_key[64];
    snprintf(port_key, sizeof port_key, "%s", host_key());
    /* The host:port entry must win over the bare host entry. */
    tf_http_host_limit limits[] = {{.host = "127.0.0.1", .rate = 1000, .burst = 1000},
                                   {.host = port_key, .rate = 20, .burst = 1}};
    tf_http_settings s = base_settings();
    s.hosts = limits;
    s.n_hosts = 2;
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "rate", NULL);
    double waits = waits_total();
    long long start = tft_mono_ms();
    /* 21 requests at 20/s with a bucket of one: the first is free, then one per 50 ms. */
    for (int i = 0; i < 21; i++)
        CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_OK);
    long long elapsed = tft_mono_ms() - start;
    CU_ASSERT(elapsed >= 950);
    /* Upper bound: the limiter does not throttle far below its rate. Generous, because under
     * ASan on a loaded 2-core machine each request itself can take tens of ms. */
    CU_ASSERT(elapsed < 5000);
    CU_ASSERT(waits_total() - waits >= 1); /* the waits were counted */
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_rate_limit_deadline(void)
{
    char port_key[64];
    snprintf(port_key, sizeof port_key, "%s", host_key());
    tf_http_host_limit limits[] = {{.host = port_key, .rate = 1, .burst = 1}};
    tf_http_settings s = base_settings();
    s.hosts = limits;
    s.n_hosts = 1;
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "deadline", NULL);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_OK);
    int reqs = atomic_load(&S.requests);
    long long start = tft_mono_ms();
    /* The next token is ~1 s away, past the 300 ms deadline: refused at once, nothing sent. */
    CU_ASSERT_EQUAL(get(c, "/ok", 300, NULL, NULL), TF_ERATELIMIT);
    CU_ASSERT(tft_mono_ms() - start < 100);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_rate_wait_stopped(void)
{
    char port_key[64];
    snprintf(port_key, sizeof port_key, "%s", host_key());
    tf_http_host_limit limits[] = {{.host = port_key, .rate = 0.5, .burst = 1}};
    tf_http_settings s = base_settings();
    s.hosts = limits;
    s.n_hosts = 1;
    atomic_bool stop = false;
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "ratestop", &stop);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_OK);
    int reqs = atomic_load(&S.requests);
    delayed_stop d = {&stop, 100};
    pthread_t t;
    pthread_create(&t, NULL, set_stop_later, &d);
    long long start = tft_mono_ms();
    CU_ASSERT_EQUAL(get(c, "/ok", 5000, NULL, NULL), TF_ESTOPPED);
    long long elapsed = tft_mono_ms() - start;
    pthread_join(t, NULL);
    CU_ASSERT(elapsed >= 80);
    CU_ASSERT(elapsed < 600);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_retry_after_seconds(void)
{
    tf_http_settings s = base_settings();
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "retryafter", NULL);
    long status = 0;
    CU_ASSERT_EQUAL(get(c, "/retry-after/1", 0, &status, NULL), TF_OK);
    long long blocked_at = tft_mono_ms();
    CU_ASSERT_EQUAL(status, 429);
    int reqs = atomic_load(&S.requests);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_ERATELIMIT);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);

    poll_ctx p = {.c = c, .path = "/ok"};
    CU_ASSERT_TRUE(tft_wait_until(block_lifted, &p, 3000));
    long long lifted = tft_mono_ms() - blocked_at;
    CU_ASSERT_EQUAL(p.rc, TF_OK);
    CU_ASSERT_EQUAL(p.status, 200);
    CU_ASSERT(lifted >= 950);
    CU_ASSERT(lifted < 1600);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs + 1);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_retry_after_http_date(void)
{
    tf_http_settings s = base_settings();
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "retrydate", NULL);
    long status = 0;
    CU_ASSERT_EQUAL(get(c, "/retry-date/3", 0, &status, NULL), TF_OK);
    CU_ASSERT_EQUAL(status, 503);
    int reqs = atomic_load(&S.requests);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_ERATELIMIT);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

/* A Retry-After of ten years (seen from a broken or hostile venue) blocks the host for
 * retry_after_max only, not until restart. */
static void test_retry_after_capped(void)
{
    tf_http_settings s = base_settings();
    s.retry_after_max_ms = 1000;
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "retrycap", NULL);
    long status = 0;
    CU_ASSERT_EQUAL(get(c, "/retry-after/315360000", 0, &status, NULL), TF_OK);
    long long blocked_at = tft_mono_ms();
    CU_ASSERT_EQUAL(status, 429);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_ERATELIMIT);
    poll_ctx p = {.c = c, .path = "/ok"};
    CU_ASSERT_TRUE(tft_wait_until(block_lifted, &p, 3000));
    long long lifted = tft_mono_ms() - blocked_at;
    CU_ASSERT_EQUAL(p.rc, TF_OK);
    CU_ASSERT_EQUAL(p.status, 200);
    CU_ASSERT(lifted >= 950);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_429_without_retry_after(void)
{
    tf_http_settings s = base_settings();
    s.breaker_base_ms = 300;
    s.breaker_max_ms = 600;
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "plain429", NULL);
    long status = 0;
    CU_ASSERT_EQUAL(get(c, "/status/429", 0, &status, NULL), TF_OK);
    long long blocked_at = tft_mono_ms();
    CU_ASSERT_EQUAL(status, 429);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_ERATELIMIT);
    poll_ctx p = {.c = c, .path = "/ok"};
    CU_ASSERT_TRUE(tft_wait_until(block_lifted, &p, 2000));
    CU_ASSERT_EQUAL(p.rc, TF_OK);
    CU_ASSERT(tft_mono_ms() - blocked_at >= 280);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_breaker_opens_and_probe_closes(void)
{
    tf_http_settings s = base_settings();
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "breaker", NULL);
    CU_ASSERT_EQUAL(tf_http_breaker_state(h, host_key()), 0);
    open_breaker(c, h);
    long long opened_at = tft_mono_ms();
    int reqs = atomic_load(&S.requests);
    CU_ASSERT_EQUAL(get(c, "/flaky", 0, NULL, NULL), TF_ECIRCUIT);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_ECIRCUIT);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);

    atomic_store(&S.flaky_status, 200);
    poll_ctx p = {.c = c, .path = "/flaky"};
    CU_ASSERT_TRUE(tft_wait_until(probe_went_out, &p, 3000));
    long long open_for = tft_mono_ms() - opened_at;
    CU_ASSERT_EQUAL(p.rc, TF_OK);
    CU_ASSERT_EQUAL(p.status, 200);
    /* Jitter draws in [base/2, base] = [100, 200] ms for the first opening. */
    CU_ASSERT(open_for >= 90);
    CU_ASSERT(open_for < 600);
    CU_ASSERT_EQUAL(tf_http_breaker_state(h, host_key()), 0);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs + 1);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_OK);

    const char *names[] = {"host", NULL};
    const char *values[] = {host_key()};
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_http_circuit_state", names, values), 0);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_breaker_probe_failure_reopens(void)
{
    tf_http_settings s = base_settings();
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "reopen", NULL);
    open_breaker(c, h);
    poll_ctx p = {.c = c, .path = "/flaky"};
    CU_ASSERT_TRUE(tft_wait_until(probe_went_out, &p, 3000));
    CU_ASSERT_EQUAL(p.rc, TF_OK);
    CU_ASSERT_EQUAL(p.status, 500);
    CU_ASSERT_EQUAL(tf_http_breaker_state(h, host_key()), 1);
    int reqs = atomic_load(&S.requests);
    CU_ASSERT_EQUAL(get(c, "/flaky", 0, NULL, NULL), TF_ECIRCUIT);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void *probe_thread(void *arg)
{
    poll_ctx *p = arg;
    tft_wait_until(probe_went_out, p, 3000);
    return NULL;
}

static bool is_half_open(void *arg)
{
    return tf_http_breaker_state(arg, host_key()) == 2;
}

static void test_half_open_single_probe(void)
{
    tf_http_settings s = base_settings();
    tf_http *h = tf_http_create(&s);
    tf_http_client *a = tf_http_client_create(h, "p", "probe-a", NULL);
    tf_http_client *b = tf_http_client_create(h, "p", "probe-b", NULL);
    open_breaker(a, h);
    atomic_store(&S.flaky_status, 200);
    atomic_store(&S.flaky_delay_ms, 400);
    poll_ctx p = {.c = a, .path = "/flaky", .rc = TF_ECIRCUIT};
    pthread_t t;
    pthread_create(&t, NULL, probe_thread, &p);
    /* While a's probe is in flight, b is refused without a request. */
    CU_ASSERT_TRUE(tft_wait_until(is_half_open, h, 3000));
    int reqs = atomic_load(&S.requests);
    CU_ASSERT_EQUAL(get(b, "/flaky", 0, NULL, NULL), TF_ECIRCUIT);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);
    pthread_join(t, NULL);
    atomic_store(&S.flaky_delay_ms, 0);
    CU_ASSERT_EQUAL(p.rc, TF_OK);
    CU_ASSERT_EQUAL(p.status, 200);
    CU_ASSERT_EQUAL(tf_http_breaker_state(h, host_key()), 0);
    CU_ASSERT_EQUAL(get(b, "/ok", 0, NULL, NULL), TF_OK);
    tf_http_client_destroy(a);
    tf_http_client_destroy(b);
    tf_http_destroy(h);
}

static void test_size_cap(void)
{
    tf_http_settings s = base_settings();
    s.max_body_bytes = 1000;
    s.breaker_failures = 10;
    tf_http *h = tf_http_create(&s);
    tf_http_client *c = tf_http_client_create(h, "p", "size", NULL);
    tf_http_response *r = NULL;
    CU_ASSERT_EQUAL(get(c, "/big/1000", 0, NULL, &r), TF_OK);
    size_t len = 0;
    tf_http_response_body(r, &len);
    CU_ASSERT_EQUAL(len, 1000);
    tf_http_response_free(r);
    /* Refused from Content-Length, and while streaming a chunked body without one. */
    CU_ASSERT_EQUAL(get(c, "/big/5000", 0, NULL, &r), TF_ETOOLARGE);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL(get(c, "/chunked/50000", 0, NULL, &r), TF_ETOOLARGE);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_OK);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_timeout(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "timeout", NULL);
    long long start = tft_mono_ms();
    tf_http_response *r = NULL;
    CU_ASSERT_EQUAL(get(c, "/slow/3000", 300, NULL, &r), TF_ETIMEOUT);
    long long elapsed = tft_mono_ms() - start;
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT(elapsed >= 280);
    CU_ASSERT(elapsed < 800);

    const char *names[] = {"pipeline", "plugin", "host", "code", NULL};
    const char *values[] = {"p", "timeout", host_key(), "timeout"};
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_COUNTER, "tickflow_http_responses_total", names, values),
                    1);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_stop_aborts_transfer(void)
{
    atomic_bool stop = false;
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "stop", &stop);
    delayed_stop d = {&stop, 150};
    pthread_t t;
    pthread_create(&t, NULL, set_stop_later, &d);
    long long start = tft_mono_ms();
    CU_ASSERT_EQUAL(get(c, "/slow/3000", 10000, NULL, NULL), TF_ESTOPPED);
    long long elapsed = tft_mono_ms() - start;
    pthread_join(t, NULL);
    CU_ASSERT(elapsed >= 130);
    CU_ASSERT(elapsed < 500);
    /* Already stopped: refused before anything is sent. */
    int reqs = atomic_load(&S.requests);
    CU_ASSERT_EQUAL(get(c, "/ok", 0, NULL, NULL), TF_ESTOPPED);
    CU_ASSERT_EQUAL(atomic_load(&S.requests), reqs);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_connect_refused(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "refused", NULL);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", tft_free_port());
    tf_http_request req = {.struct_size = sizeof req, .url = url};
    tf_http_response *r = NULL;
    CU_ASSERT_EQUAL(tf_http_get(c, &req, &r), TF_ECONNECT);
    CU_ASSERT_PTR_NULL(r);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

static void test_invalid_requests(void)
{
    tf_http *h = tf_http_create(NULL);
    tf_http_client *c = tf_http_client_create(h, "p", "invalid", NULL);
    tf_http_response *r = NULL;
    tf_http_request req = {.struct_size = sizeof req, .url = "ftp://127.0.0.1/file"};
    CU_ASSERT_EQUAL(tf_http_get(c, &req, &r), TF_EINVAL);
    req.url = "not a url";
    CU_ASSERT_EQUAL(tf_http_get(c, &req, &r), TF_EINVAL);
    req.url = url_of("/ok");
    req.struct_size = 0;
    CU_ASSERT_EQUAL(tf_http_get(c, &req, &r), TF_EINVAL);
    const char *bad_headers[] = {"no colon here", NULL};
    tf_http_request req2 = {
        .struct_size = sizeof req2, .url = url_of("/ok"), .headers = bad_headers};
    CU_ASSERT_EQUAL(tf_http_get(c, &req2, &r), TF_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    tf_http_client_destroy(c);
    tf_http_destroy(h);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"keep-alive: 20 GETs on one connection", test_keep_alive},
        {"two clients use at most two connections", test_two_clients_pool},
        {"status, body, case-insensitive last header", test_response_accessors},
        {"Origin header is never sent", test_origin_never_sent},
        {"gzip body is decoded", test_gzip_decoded},
        {"rate limit paces requests (host:port entry wins)", test_rate_limit_paces_requests},
        {"no token before the deadline -> ERATELIMIT", test_rate_limit_deadline},
        {"stop interrupts a rate-limit wait", test_rate_wait_stopped},
        {"Retry-After seconds blocks the host", test_retry_after_seconds},
        {"Retry-After HTTP-date blocks the host", test_retry_after_http_date},
        {"Retry-After is capped at retry_after_max", test_retry_after_capped},
        {"429 without Retry-After backs off", test_429_without_retry_after},
        {"breaker opens, probe closes it", test_breaker_opens_and_probe_closes},
        {"failed probe reopens the breaker", test_breaker_probe_failure_reopens},
        {"only one half-open probe", test_half_open_single_probe},
        {"size cap", test_size_cap},
        {"timeout", test_timeout},
        {"stop aborts a transfer", test_stop_aborts_transfer},
        {"connection refused", test_connect_refused},
        {"invalid requests", test_invalid_requests},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("http", tests, suite_init, suite_cleanup);
}
