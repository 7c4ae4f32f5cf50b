/*
 * The runtime's HTTP listener: binds exactly the configured address itself (so errors name
 * the address and errno), hands the socket to libmicrohttpd, and serves /metrics, /healthz
 * and /readyz with per-route request metrics. A connection guard (tickflow/httpguard.h) keeps slow
 * clients from holding its connections.
 */
#include "tf_httpd.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tickflow/httpguard.h>
#include "tf_log.h"
#include "tf_metrics.h"

#define COMPONENT "httpd"

/* Scrapers and probes hold few connections; these bounds keep a misbehaving client from
 * exhausting descriptors or holding a connection open forever. A stopped or stalled process
 * cannot accept, but the kernel still completes handshakes for it, up to the listen backlog in
 * the accept queue and about as many half-done in the SYN queue (Linux): every scrape that a
 * scraper gave up on meanwhile waits there, and the resumed listener accepts them all at once.
 * A small backlog bounds that pile well below the per-address limit, so it is served (or found
 * closed by its client) and dropped without refusing the scraper's next connection; attempts
 * past it are not completed by the kernel and fail at their client, as the scraper already
 * decided. Direct connections never queue long: the listener thread accepts at once. */
#define HTTPD_TIMEOUT_S 10
/* A request's line, headers and body must arrive within this of the connection's open (or of
 * the previous response): the idle timeout alone is reset by every byte a slow client
 * trickles (tickflow/httpguard.h). */
#define HTTPD_REQUEST_TIMEOUT_S 10
#define HTTPD_MAX_CONNECTIONS   64
#define HTTPD_MAX_PER_IP        16
#define HTTPD_LISTEN_BACKLOG    4
#define HTTPD_HEALTH_DETAIL_SZ  4096
/* libmicrohttpd logs one line per refused connection: a flood of them is summarised. */
#define HTTPD_LOG_WINDOW_MS 10000

_Static_assert(2 * (HTTPD_LISTEN_BACKLOG + 1) < HTTPD_MAX_PER_IP,
               "the connections a stopped listener leaves queued must fit one address's limit");

#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_JSON    "application/json"

struct tf_httpd {
    struct MHD_Daemon *daemon;
    int port;
    tf_httpd_health_fn health;
    void *health_arg; /* lent by the caller */
    tf_metric *requests;
    tf_metric *duration;
    tf_metric *closed; /* connections the guard closed, by reason */
    tf_httpguard *guard;

    /* libmicrohttpd's messages, under log_lock: the last one logged and when, and how many
     * repeats of it were held back since. */
    pthread_mutex_t log_lock;
    char last_msg[256];
    double last_msg_at;
    unsigned long held_back;
};

/* A response under construction: status, body (malloc'd, handed to MHD) and content type. */
typedef struct reply {
    unsigned status;
    char *body;
    const char *content_type;
    bool allow_get; /* 405: tell the client which method works */
} reply;

/* --- address handling ---------------------------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Splits "host:port" or "[v6]:port" into host and port. */
static int split_listen(const char *listen, char *host, size_t hsz, char *port, size_t psz,
                        char *err, size_t errsz)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            goto bad;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            goto bad;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= hsz || !all_digits(colon + 1) || strlen(colon + 1) > 5 ||
        atoi(colon + 1) > 65535)
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, psz, "%s", colon + 1);
    return 0;
bad:
    snprintf(err, errsz,
             "listen address \"%s\": expected host:port with a port 0-65535 (e.g. "
             "127.0.0.1:9464 or [::1]:9464)",
             listen);
    return -1;
}

static int bind_one(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    /* Rebinding right after a reload must not fail on TIME_WAIT connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Only bind what the configuration says: an IPv6 address does not also take IPv4. */
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, HTTPD_LISTEN_BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Returns a listening socket bound to `listen`, or -1 with the reason in err. */
static int open_listener(const char *listen, int *family, char *err, size_t errsz)
{
    char host[256];
    char port[8];
    if (split_listen(listen, host, sizeof host, port, sizeof port, err, errsz) != 0)
        return -1;
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errsz, "listen address \"%s\": cannot resolve host \"%s\": %s", listen, host,
                 gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    int last_errno = 0;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = bind_one(ai);
        if (fd < 0)
            last_errno = errno;
        else
            *family = ai->ai_family;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errsz, "listen address \"%s\": cannot listen: %s", listen,
                 strerror(last_errno));
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* --- responses ----------------------------------------------------------------------------- */

/* Takes ownership of `obj`. */
static void reply_json(reply *r, unsigned status, json_t *obj)
{
    r->status = status;
    r->content_type = CT_JSON;
    r->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
}

/* `message` may quote client input: json_string() refuses invalid UTF-8, so fall back. */
static void reply_error(reply *r, unsigned status, const char *code, const char *message,
                        const char *fallback)
{
    json_t *msg = json_string(message);
    if (!msg)
        msg = json_string(fallback);
    reply_json(r, status, json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", msg));
}

static void route_metrics(reply *r)
{
    size_t len = 0;
    char *text = tf_metrics_render(&len);
    if (!text) {
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                    "out of memory while rendering metrics", "");
        return;
    }
    r->status = MHD_HTTP_OK;
    r->content_type = CT_METRICS;
    r->body = text;
}

static void route_readyz(const tf_httpd *h, reply *r)
{
    char detail[HTTPD_HEALTH_DETAIL_SZ] = "";
    bool ready = true;
    if (h->health) {
        ready = h->health(h->health_arg, detail, sizeof detail);
        detail[sizeof detail - 1] = '\0';
    }
    json_t *obj = json_pack("{s:s}", "status", ready ? "ready" : "not_ready");
    json_t *d = NULL;
    if (detail[0]) {
        d = json_loads(detail, JSON_DECODE_ANY, NULL);
        if (!d)
            d = json_string(detail);
    }
    if (obj && d)
        json_object_set_new(obj, "detail", d);
    else
        json_decref(d);
    reply_json(r, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, obj);
}

/* Known routes, or NULL. The route label is one of these or "other", never the raw path,
 * so a scanner cannot create unbounded series. */
static const char *known_route(const char *url)
{
    static const char *const routes[] = {"/metrics", "/healthz", "/readyz"};
    for (size_t i = 0; i < TF_ARRAY_LEN(routes); i++)
        if (strcmp(url, routes[i]) == 0)
            return routes[i];
    return NULL;
}

static void dispatch(const tf_httpd *h, const char *route, const char *url, const char *method,
                     reply *r)
{
    char message[256];
    if (!route) {
        snprintf(message, sizeof message,
                 "no route for %.150s; expected /metrics, /healthz or /readyz", url);
        reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", message,
                    "no route for this path; expected /metrics, /healthz or /readyz");
        return;
    }
    /* HEAD is the GET without its body (RFC 9110 9.3.2): libmicrohttpd sends the same status
     * and headers and leaves the body out. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        snprintf(message, sizeof message, "%s expects GET or HEAD, found %.32s", route, method);
        reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", message,
                    "this route expects GET or HEAD");
        r->allow_get = true;
        return;
    }
    if (strcmp(route, "/metrics") == 0)
        route_metrics(r);
    else if (strcmp(route, "/healthz") == 0)
        reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    else
        route_readyz(h, r);
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, reply *r)
{
    if (!r->body) {
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->content_type = CT_JSON;
        r->body = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
        if (!r->body)
            return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL; /* owned by resp */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->allow_get)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_request(const tf_httpd *h, const char *route, unsigned status, double t0)
{
    char code[16];
    snprintf(code, sizeof code, "%u", status);
    const char *label = route ? route : "other";
    tf_metric_add(h->requests, (const char *[]){label, code}, 1);
    tf_metric_observe(h->duration, (const char *[]){label}, mono_seconds() - t0);
}

/* Every route answers from the request line alone. The reply is queued on the second call:
 * libmicrohttpd 0.9.75 closes the connection after a response queued on the first, and
 * Prometheus scrapes should reuse theirs. A body nobody reads is discarded. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    static int seen; /* marker: its address tells the first call from the next */
    TF_UNUSED(version);
    TF_UNUSED(upload_data);
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    tf_httpguard_request_received(conn);
    const tf_httpd *h = cls;
    double t0 = mono_seconds();
    const char *route = known_route(url);
    reply r = {0};
    dispatch(h, route, url, method, &r);
    unsigned status = r.status ? r.status : MHD_HTTP_INTERNAL_SERVER_ERROR;
    enum MHD_Result rc = queue_reply(conn, &r);
    count_request(h, route, status, t0);
    return rc;
}

/* The request ended (answered, or its connection closed): the next one gets a new deadline. */
static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    TF_UNUSED(cls);
    TF_UNUSED(con_cls);
    TF_UNUSED(toe);
    tf_httpguard_request_done(conn);
}

static void count_closed(void *arg, tf_httpguard_reason reason)
{
    const tf_httpd *h = arg;
    const char *label = reason == TF_HTTPGUARD_TIMEOUT ? "request_timeout" : "evicted";
    tf_metric_add(h->closed, (const char *[]){label}, 1);
}

/* libmicrohttpd's own diagnostics (bad requests, accept failures, refused connections) go to
 * our log. The same message repeated within HTTPD_LOG_WINDOW_MS is counted instead of logged,
 * and the count is reported with the next line that is logged: a burst of refused connections
 * costs one line, not one per connection. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    tf_httpd *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    double now = mono_seconds();
    pthread_mutex_lock(&h->log_lock);
    bool repeat = strcmp(msg, h->last_msg) == 0 &&
                  (now - h->last_msg_at) * 1000.0 < (double)HTTPD_LOG_WINDOW_MS;
    unsigned long held = 0;
    if (repeat) {
        h->held_back++;
    } else {
        held = h->held_back;
        h->held_back = 0;
        snprintf(h->last_msg, sizeof h->last_msg, "%s", msg);
        h->last_msg_at = now;
    }
    pthread_mutex_unlock(&h->log_lock);
    if (repeat)
        return;
    if (held > 0)
        TF_WARN(COMPONENT, "libmicrohttpd: %s (%lu repeats of the previous message not logged)",
                msg, held);
    else
        TF_WARN(COMPONENT, "libmicrohttpd: %s", msg);
}

/* Families of their own: the http_api sink's routes are counted in tickflow_api_requests_total,
 * so a scrape or probe never mixes with API traffic (and an error-rate rule on one is not
 * diluted by the other). The listener belongs to no pipeline, so there is no pipeline label. */
static int register_metrics(tf_httpd *h)
{
    static const char *const req_labels[] = {"route", "code", NULL};
    static const char *const dur_labels[] = {"route", NULL};
    h->requests = tf_metrics_register(
        TF_METRIC_COUNTER, "tickflow_metrics_listener_requests_total",
        "Requests served by the metrics listener (metrics.listen), by route and HTTP status",
        req_labels, NULL, 0);
    h->duration = tf_metrics_register(TF_METRIC_HISTOGRAM,
                                      "tickflow_metrics_listener_request_duration_seconds",
                                      "Time the metrics listener spent producing a response, by "
                                      "route",
                                      dur_labels, NULL, 0);
    static const char *const closed_labels[] = {"reason", NULL};
    h->closed = tf_metrics_register(
        TF_METRIC_COUNTER, "tickflow_metrics_listener_connections_closed_total",
        "Connections the metrics listener closed before their request arrived: request_timeout "
        "(not received in time) or evicted (the oldest waiting one, to make room near the cap)",
        closed_labels, NULL, 0);
    return h->requests && h->duration && h->closed ? 0 : -1;
}

static struct MHD_Daemon *start_daemon(tf_httpd *h, int fd, int family)
{
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    return MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
                            h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPD_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTPD_MAX_CONNECTIONS,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTPD_MAX_PER_IP,
                            MHD_OPTION_NOTIFY_CONNECTION, tf_httpguard_notify_connection, h->guard,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_STRICT_FOR_CLIENT,
                            (int)1, MHD_OPTION_END);
}

tf_httpd *tf_httpd_start(const char *listen, tf_httpd_health_fn health, void *health_arg, char *err,
                         size_t errsz)
{
    int fd = -1;
    tf_httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->log_lock, NULL);
    h->health = health;
    h->health_arg = health_arg;
    if (register_metrics(h) != 0) {
        snprintf(err, errsz, "cannot register the listener's metrics (see the log)");
        goto fail;
    }
    if (!listen || !listen[0]) {
        snprintf(err, errsz, "listen address is empty; expected host:port (e.g. 127.0.0.1:9464)");
        goto fail;
    }
    tf_httpguard_config gc = {.max_connections = HTTPD_MAX_CONNECTIONS,
                              .request_timeout_ms = HTTPD_REQUEST_TIMEOUT_S * 1000,
                              .on_close = count_closed,
                              .on_close_arg = h};
    h->guard = tf_httpguard_create(&gc, err, errsz);
    if (!h->guard)
        goto fail;
    int family = AF_INET;
    fd = open_listener(listen, &family, err, errsz);
    if (fd < 0)
        goto fail;
    h->port = bound_port(fd);
    h->daemon = start_daemon(h, fd, family);
    if (!h->daemon) {
        snprintf(err, errsz, "listen address \"%s\": libmicrohttpd failed to start (see the log)",
                 listen);
        goto fail;
    }
    return h; /* the daemon owns fd now and closes it on stop */
fail:
    if (fd >= 0)
        close(fd);
    tf_httpguard_destroy(h->guard);
    pthread_mutex_destroy(&h->log_lock);
    free(h);
    return NULL;
}

int tf_httpd_port(const tf_httpd *h)
{
    return h ? h->port : -1;
}

void tf_httpd_stop(tf_httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    tf_httpguard_destroy(h->guard); /* after the daemon: it reported every connection closed */
    pthread_mutex_destroy(&h->log_lock);
    free(h);
}
