/*
 * Slow clients cannot deny service (issue 10, section 3). A real `tickflow run` with an http_api
 * sink and the metrics listener, both at their default limits, is attacked for 60 s by
 * slow-header clients: 1,100 connections from 10 loopback addresses (127.0.0.2-11) to the API
 * and 80 from 5 (127.0.0.2-6) to the metrics listener, each sending one byte of an endless
 * header every 3 s and reopened when the server closes it. Meanwhile a normal client on
 * 127.0.0.1 asks both /healthz ten times a second on fresh connections: every request must
 * succeed, with a p99 under 50 ms. Before the connection guard (tickflow/httpguard.h), the trickled
 * bytes kept every slow connection alive and the caps full, and the normal client's requests timed
 * out.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_proc.h"
#include "tf_test.h"

#define ATTACK_MS          60000
#define TRICKLE_MS         3000
#define API_SLOW_CONNS     1100
#define API_SLOW_ADDRS     10
#define METRICS_SLOW_CONNS 80
#define METRICS_SLOW_ADDRS 5
#define SLOW_CONNS         (API_SLOW_CONNS + METRICS_SLOW_CONNS)
#define CLIENT_PERIOD_MS   100
/* A normal request's budget: far above the p99 bound, far below the attack's hold. */
#define CLIENT_TIMEOUT_MS 2000
#define P99_BOUND_MS      50.0
#define START_TIMEOUT_MS  20000
/* The attack's first round opens every connection; retransmitted SYNs (1 s, 3 s) may land
 * after it. */
#define ESTABLISH_TIMEOUT_MS 15000

/* What a slow client sends, one byte per TRICKLE_MS: a request line and headers that never
 * end (the last header's value grows forever). */
static const char slow_text[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

static char *dir;
static tft_redis *redis;
static tfp_proc proc;
static bool running;
static int api_port, metrics_port;

/* --- the attack ------------------------------------------------------------------------- */

typedef struct slow_conn {
    int fd;        /* -1 while closed */
    int port;      /* the listener it attacks */
    char src[16];  /* source address, 127.0.0.x */
    size_t sent;   /* bytes of the request sent so far */
    long long due; /* monotonic ms of its next byte (or reopen) */
} slow_conn;

typedef struct attack {
    slow_conn conns[SLOW_CONNS];
    atomic_bool stop;
    atomic_bool established; /* every connection was opened once */
    atomic_long opened, closed_by_server;
} attack;

static int open_slow(slow_conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, c->src, &src.sin_addr);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->sent = 0;
    return 0;
}

/* One byte at its time; a connection the server closed is reopened at its next slot. */
static void trickle(attack *a, slow_conn *c)
{
    if (c->fd < 0) {
        if (open_slow(c) == 0)
            atomic_fetch_add(&a->opened, 1);
        return;
    }
    char byte = c->sent < sizeof slow_text - 1 ? slow_text[c->sent] : 'a';
    ssize_t n = send(c->fd, &byte, 1, MSG_NOSIGNAL);
    if (n == 1)
        c->sent++;
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
        close(c->fd);
        c->fd = -1;
        atomic_fetch_add(&a->closed_by_server, 1);
    }
}

/* A readable slow connection is one the server answered or closed: it is done. */
static void reap_closed(attack *a, struct pollfd *pfd, size_t *idx, int n)
{
    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents)
            continue;
        slow_conn *c = &a->conns[idx[i]];
        close(c->fd);
        c->fd = -1;
        atomic_fetch_add(&a->closed_by_server, 1);
    }
}

static void *attack_main(void *arg)
{
    attack *a = arg;
    static struct pollfd pfd[SLOW_CONNS];
    static size_t idx[SLOW_CONNS];
    long long start = tft_mono_ms();
    for (size_t i = 0; i < SLOW_CONNS; i++)
        a->conns[i].due = start + (long long)(i * TRICKLE_MS / SLOW_CONNS);
    while (!atomic_load(&a->stop)) {
        long long now = tft_mono_ms();
        long long next = now + TRICKLE_MS;
        int n = 0;
        for (size_t i = 0; i < SLOW_CONNS; i++) {
            slow_conn *c = &a->conns[i];
            if (c->due <= now) {
                trickle(a, c);
                c->due += TRICKLE_MS;
            }
            if (c->due < next)
                next = c->due;
            if (c->fd >= 0) {
                pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLIN | POLLRDHUP};
                idx[n++] = i;
            }
        }
        if (now - start >= TRICKLE_MS)
            atomic_store(&a->established, true);
        int wait = (int)(next - tft_mono_ms());
        if (poll(pfd, (nfds_t)n, wait < 0 ? 0 : wait > 100 ? 100 : wait) > 0)
            reap_closed(a, pfd, idx, n);
    }
    for (size_t i = 0; i < SLOW_CONNS; i++)
        if (a->conns[i].fd >= 0)
            close(a->conns[i].fd);
    return NULL;
}

static void attack_init(attack *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < SLOW_CONNS; i++) {
        slow_conn *c = &a->conns[i];
        c->fd = -1;
        bool api = i < API_SLOW_CONNS;
        size_t k = api ? i % API_SLOW_ADDRS : (i - API_SLOW_CONNS) % METRICS_SLOW_ADDRS;
        snprintf(c->src, sizeof c->src, "127.0.0.%zu", k + 2);
        c->port = api ? api_port : metrics_port;
    }
}

/* --- the normal client ---------------------------------------------------------------------- */

typedef struct client_stats {
    int ok, failed;
    double ms[ATTACK_MS / CLIENT_PERIOD_MS + 1];
    int n;
} client_stats;

static void one_request(int port, client_stats *st)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
    long long t0 = tft_mono_ms();
    long status = tft_http_get(url, NULL, CLIENT_TIMEOUT_MS, NULL);
    double ms = (double)(tft_mono_ms() - t0);
    if (status == 200)
        st->ok++;
    else
        st->failed++;
    if (st->n < (int)(sizeof st->ms / sizeof st->ms[0]))
        st->ms[st->n++] = status == 200 ? ms : CLIENT_TIMEOUT_MS;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The q-quantile (nearest rank) of the sorted latencies. */
static double quantile(const client_stats *st, double q)
{
    if (st->n == 0)
        return 0;
    int i = (int)((double)st->n * q);
    return st->ms[i >= st->n ? st->n - 1 : i];
}

/* --- start-up --------------------------------------------------------------------------------- */

static bool attack_established(void *arg)
{
    return atomic_load(&((attack *)arg)->established);
}

static bool port_file_written(void *arg)
{
    char *text = tft_read_file(arg, NULL);
    api_port = text ? atoi(text) : 0;
    free(text);
    return api_port > 0;
}

/* The attack needs more descriptors than a default soft limit of 1024; the server (a child)
 * inherits the raised limit, as a service would get it from LimitNOFILE (docs/security.md). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int suite_init(void)
{
    raise_fd_limit();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    dir = tft_mkdtemp();
    redis = tft_redis_start(0);
    if (!dir || !redis)
        return -1;
    metrics_port = tft_free_port();
    char yaml[1024], port_file[1024];
    snprintf(port_file, sizeof port_file, "%s/api.port", dir);
    int n = snprintf(yaml, sizeof yaml,
                     "redis:\n  url: redis://127.0.0.1:%d/0\n"
                     "metrics:\n  listen: 127.0.0.1:%d\n"
                     "pipelines:\n"
                     "  - name: api\n    every: 1s\n    lease: off\n"
                     "    sources:\n"
                     "      - use: redis\n"
                     "        with: {subscribe: [premium]}\n"
                     "    sinks:\n"
                     "      - use: http_api\n"
                     "        with: {listen: \"127.0.0.1:0\", port_file: \"%s\"}\n",
                     redis->port, metrics_port, port_file);
    if (n < 0 || (size_t)n >= sizeof yaml)
        return -1;
    const char *config = tfp_write_config(dir, "slowloris.yaml", yaml);
    running = config && tfp_start(&proc, dir, "slowloris", config);
    if (!running || !tft_wait_until(port_file_written, port_file, START_TIMEOUT_MS))
        return -1;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", metrics_port);
    long long deadline = tft_mono_ms() + START_TIMEOUT_MS;
    while (tft_http_get(url, NULL, 1000, NULL) != 200)
        if (tft_mono_ms() > deadline)
            return -1;
    return 0;
}

static int suite_clean(void)
{
    if (running)
        tft_stop(proc.pid, SIGTERM, 10000);
    tft_redis_destroy(redis);
    if (dir)
        tft_rmdir(dir);
    free(dir);
    curl_global_cleanup();
    return 0;
}

/* --- the test ------------------------------------------------------------------------------- */

static void report(const char *name, client_stats *st)
{
    qsort(st->ms, (size_t)st->n, sizeof st->ms[0], cmp_double);
    double p = quantile(st, 0.99);
    printf("\n  %s: %d of %d normal requests succeeded, p99 %.1f ms (p50 %.1f, max %.1f)\n", name,
           st->ok, st->ok + st->failed, p, quantile(st, 0.5), quantile(st, 1.0));
    CU_ASSERT_EQUAL(st->failed, 0);
    CU_ASSERT(st->ok > 0);
    CU_ASSERT(p < P99_BOUND_MS);
}

static void test_slow_clients_cannot_deny_service(void)
{
    static attack a;
    attack_init(&a);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, attack_main, &a), 0);
    CU_ASSERT(tft_wait_until(attack_established, &a, ESTABLISH_TIMEOUT_MS));
    static client_stats api, metrics;
    long long end = tft_mono_ms() + ATTACK_MS;
    /* A request every CLIENT_PERIOD_MS; one that timed out delays the next ones, never the
     * end of the attack. */
    for (long long next = tft_mono_ms(); tft_mono_ms() < end; next += CLIENT_PERIOD_MS) {
        long long wait = next - tft_mono_ms();
        if (wait > 0)
            tft_sleep_ms((int)wait); /* pacing the client's own requests */
        one_request(api_port, &api);
        one_request(metrics_port, &metrics);
    }
    atomic_store(&a.stop, true);
    pthread_join(t, NULL);
    printf("\n  attack: %ld slow connections opened, %ld closed by the server",
           atomic_load(&a.opened), atomic_load(&a.closed_by_server));
    report("API (1,100 slow connections from 10 addresses)", &api);
    report("metrics listener (80 slow connections from 5 addresses)", &metrics);
    /* The guard closed them: by deadline or to make room, counted by reason. */
    CU_ASSERT(atomic_load(&a.closed_by_server) > 0);
    char url[64];
    char *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", metrics_port);
    CU_ASSERT_EQUAL(tft_http_get(url, NULL, 5000, &body), 200);
    CU_ASSERT_PTR_NOT_NULL(body ? strstr(body, "tickflow_metrics_listener_connections_closed_total{"
                                               "reason=\"evicted\"}")
                                : NULL);
    CU_ASSERT_PTR_NOT_NULL(body ? strstr(body, "tickflow_api_connections_closed_total{") : NULL);
    free(body);
}

/* Every guarded connection is released: under ASan a leak would make the exit status 23. */
static void test_sigterm_exits_cleanly(void)
{
    int status = tft_stop(proc.pid, SIGTERM, 10000);
    running = false;
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"slow-header clients cannot deny either listener", test_slow_clients_cannot_deny_service},
        {"SIGTERM exits 0", test_sigterm_exits_cleanly},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("slowloris", tests, suite_init, suite_clean);
}
