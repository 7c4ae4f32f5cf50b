/*
 * libFuzzer harness for the HTTP API's request handling (plugins/sink_http_api): routing of
 * the path, query parameters, the headers it reads (Authorization, Origin, Last-Event-ID...)
 * and the JSON bodies of the positions endpoints. The plugin's .c files are compiled into this
 * program and started once, for real, on a loopback port with a write token, a snapshot of a
 * few records, and a redis: section whose server is down (so a request gets as far as the
 * store and is answered 503). Each input becomes one HTTP/1.1 request on a new connection:
 *
 *   METHOD TARGET          <- first line, as sent
 *   Name: value            <- header lines, up to an empty line
 *
 *   body                   <- the rest
 *
 * The harness adds Host, a correct Content-Length and Connection: close (and drops those the
 * input gives), so every request is complete and answered: framing is libmicrohttpd's job and
 * not under test here; what the plugin does with the request is.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fz_host.h"
#include "tf_instance.h"
#include "tf_record.h"

extern const tf_plugin_descriptor tickflow_plugin;

#define FZ_REQ_MAX (64 * 1024)

/* sha256("fuzz-token"): the seeds send "Authorization: Bearer fuzz-token". */
#define FZ_TOKEN_SHA "33cc09ba35314d19e32ed9a5a30fca56eebbfab5faec7247fd0403cd26e155b5"

static int port;
static void *api; /* the running sink (kept reachable: it lives as long as the process) */

static void add_premium(tf_batch *b, const char *symbol, const char *krw)
{
    tf_record *r = tf_record_new(b, "premium");
    tf_record_set_string(r, "symbol", symbol);
    tf_record_set_string(r, "krw_exchange", krw);
    tf_record_set_string(r, "global_exchange", "binance");
    tf_record_set_string(r, "global_quote", "USDT");
    tf_record_set_double(r, "krw_price", 136850000.0);
    tf_record_set_double(r, "global_price", 95012.35);
    tf_record_set_double(r, "usdkrw", 1392.55);
    tf_record_set_double(r, "premium_pct", 3.4);
    tf_record_set_ts(r, "ts", tf_now_ms());
    tf_record_set_int(r, "age_ms", 12);
    tf_record_set_bool(r, "stale", false);
}

static void add_ticker(tf_batch *b, const char *exchange, const char *symbol, double last)
{
    tf_record *r = tf_record_new(b, "ticker");
    tf_record_set_string(r, "exchange", exchange);
    tf_record_set_string(r, "market", "spot");
    tf_record_set_string(r, "symbol", symbol);
    tf_record_set_string(r, "quote", "KRW");
    tf_record_set_double(r, "last", last);
    tf_record_set_double(r, "bid", last - 1000);
    tf_record_set_double(r, "ask", last + 1000);
    tf_record_set_ts(r, "ts_exchange", tf_now_ms());
    tf_record_set_ts(r, "ts_received", tf_now_ms());
}

static void add_fx(tf_batch *b)
{
    tf_record *r = tf_record_new(b, "fx");
    tf_record_set_string(r, "pair", "USDKRW");
    tf_record_set_double(r, "rate", 1392.55);
    tf_record_set_string(r, "provider", "dunamu");
    tf_record_set_ts(r, "ts_provider", tf_now_ms());
    tf_record_set_ts(r, "ts_received", tf_now_ms());
}

static int read_port(const char *file)
{
    FILE *f = fopen(file, "r");
    int p = 0;
    if (f) {
        if (fscanf(f, "%d", &p) != 1)
            p = 0;
        fclose(f);
    }
    return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_setup();
    char dir[] = "/tmp/tf-fuzz-api-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char port_file[128], with[1024];
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    snprintf(with, sizeof with,
             "{listen: '127.0.0.1:0', port_file: '%s', threads: 1, connection_timeout: 1s, "
             "rate_limit: 0, per_ip_limit: 1024, cors_origins: ['https://app.example'], "
             "tokens: [{name: fuzz, sha256: '%s', scope: write}]}",
             port_file, FZ_TOKEN_SHA);
    /* Port 1 on loopback: nothing listens, so every Redis command fails at once. */
    static tf_redis_settings redis = {.configured = true,
                                      .url = (char *)"redis://127.0.0.1:1/0",
                                      .host = (char *)"127.0.0.1",
                                      .port = 1,
                                      .prefix = (char *)"tf",
                                      .connect_timeout_ms = 100,
                                      .command_timeout_ms = 100};
    tf_options *options = NULL;
    tf_instance *self = fz_instance(&tickflow_plugin, with, &redis, &options);
    if (tickflow_plugin.init(tf_host_table(), self, options, &api) != TF_OK)
        abort();
    tf_batch *b = tf_batch_create();
    add_premium(b, "BTC", "bithumb");
    add_premium(b, "ETH", "upbit");
    add_ticker(b, "bithumb", "BTC", 136850000.0);
    add_fx(b);
    tf_tick tick = {.struct_size = sizeof tick, .pipeline = "fuzz", .seq = 1, .key_prefix = "tf"};
    tickflow_plugin.write(api, &tick, b);
    tf_batch_destroy(b);
    port = read_port(port_file);
    if (port <= 0)
        abort();
    /* The server runs until the process exits: libFuzzer never returns to us. */
    return 0;
}

/* Headers the harness sets itself. */
static bool framing_header(const char *line, size_t len)
{
    static const char *const names[] = {
        "content-length:", "transfer-encoding:", "connection:", "host:", "expect:"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (len >= n && strncasecmp(line, names[i], n) == 0)
            return true;
    }
    return false;
}

static bool put(char *buf, size_t *at, const void *p, size_t n)
{
    if (n > FZ_REQ_MAX - *at)
        return false;
    memcpy(buf + *at, p, n);
    *at += n;
    return true;
}

/* The next line of [*p, end) without its "\n" or "\r\n"; advances *p past it. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *line = *p;
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    *p = nl ? nl + 1 : end;
    *len = (size_t)((nl ? nl : end) - line);
    if (*len > 0 && line[*len - 1] == '\r')
        (*len)--;
    return line;
}

/* A CR or NUL inside the request line or a header makes libmicrohttpd wait for the rest of a
 * line that never comes, until the connection timeout: its framing, not the plugin's code,
 * and 2 s per input. Such inputs are skipped. */
static bool framing_byte(const char *line, size_t len)
{
    return memchr(line, '\r', len) || memchr(line, '\0', len);
}

/* The request for one input into buf; its length, or 0 when it does not fit or is skipped. */
static size_t build_request(const uint8_t *data, size_t size, char *buf)
{
    const char *p = (const char *)data, *end = p + size;
    size_t at = 0, len;
    if (size == 0)
        return 0;
    const char *line = next_line(&p, end, &len);
    bool ok = !framing_byte(line, len) && put(buf, &at, line, len) &&
              put(buf, &at, " HTTP/1.1\r\nHost: fuzz\r\n", 23);
    while (ok && p < end) {
        line = next_line(&p, end, &len);
        if (len == 0)
            break; /* end of the headers: the rest is the body */
        if (framing_byte(line, len))
            return 0;
        if (!framing_header(line, len))
            ok = put(buf, &at, line, len) && put(buf, &at, "\r\n", 2);
    }
    size_t body = (size_t)(end - p);
    char head[64];
    int n = snprintf(head, sizeof head, "Content-Length: %zu\r\nConnection: close\r\n\r\n", body);
    ok = ok && put(buf, &at, head, (size_t)n) && put(buf, &at, p, body);
    return ok ? at : 0;
}

static void exchange(const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return;
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            goto out;
        sent += (size_t)n;
    }
    /* Until the server closes (Connection: close), except for an event stream, which stays
     * open by design: its head is all there is to check. */
    char head[4096];
    size_t have = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        size_t keep = (size_t)n < sizeof head - 1 - have ? (size_t)n : sizeof head - 1 - have;
        memcpy(head + have, buf, keep);
        have += keep;
        head[have] = '\0';
        if (strstr(head, "text/event-stream"))
            break;
    }
out:
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char req[FZ_REQ_MAX];
    size_t len = build_request(data, size, req);
    if (len > 0)
        exchange(req, len);
    return 0;
}
