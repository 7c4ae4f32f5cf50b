/*
 * `http_api` sink: the API role's HTTP server. Each batch (from the redis source: premiums,
 * tickers, fx, live positions) updates an in-memory snapshot whose responses are rendered once
 * per update, so a read costs no Redis round trip; history and positions go to Redis through a
 * small connection pool. Also streams premium updates as Server-Sent Events. Guards requests
 * with bearer tokens, a per-IP rate limit, a header cap, CORS and optional TLS. The endpoints
 * are in docs/api.md and docs/openapi.yaml.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tickflow/tickflow.h>

#include "api_auth.h"
#include "api_ratelimit.h"
#include "api_redis.h"
#include "api_server.h"
#include "api_snapshot.h"
#include "api_sse.h"

typedef struct http_api {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    int64_t stale_after_ms;
    api_snapshot *snap; /* owned */
    api_redis *redis;   /* owned */
    api_sse *sse;       /* owned */
    api_server *server; /* owned */
    api_auth *auth;     /* owned */
    api_ratelimit *rl;  /* owned, NULL when rate_limit is 0 */
    char **cors;        /* owned strings in an owned array */
    size_t n_cors;
    char *tls_cert, *tls_key; /* owned PEM text, wiped on destroy */
} http_api;

static const tf_option_def token_fields[] = {
    {"name", TF_OPT_STRING, NULL, 1, "Who holds the token (for the operator; never logged with it)",
     0, NULL},
    {"sha256", TF_OPT_STRING, NULL, 1,
     "Hex SHA-256 of the token, never the token itself: printf %s TOKEN | sha256sum", 0, NULL},
    {"scope", TF_OPT_STRING, NULL, 1, "read (GET endpoints) or write (also POST endpoints)", 0,
     NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def options[] = {
    {"listen", TF_OPT_STRING, "127.0.0.1:8080", 0,
     "Address to listen on: host:port or [v6]:port; port 0 picks a free one (see port_file)", 0,
     NULL},
    {"port_file", TF_OPT_STRING, NULL, 0,
     "File that receives the bound port once listening (for tests and port 0)", 0, NULL},
    {"threads", TF_OPT_INT, "2", 0, "Request threads (libmicrohttpd thread pool), 1-64", 0, NULL},
    {"connection_timeout", TF_OPT_DURATION, "10s", 0,
     "A connection idle this long (a request not completed, a response not read) is closed; "
     "whole seconds, 1s-1h",
     0, NULL},
    {"request_timeout", TF_OPT_DURATION, "10s", 0,
     "A request's line, headers and body must arrive within this of the connection's open (or "
     "of the previous response on a kept-alive one), however steadily they trickle; later, the "
     "connection is closed. 1s-1h",
     0, NULL},
    {"per_ip_limit", TF_OPT_INT, "128", 0,
     "Most connections from one IP address at a time (a reverse proxy counts as one address)", 0,
     NULL},
    {"max_connections", TF_OPT_INT, "1024", 0, "Most connections at a time", 0, NULL},
    {"max_body", TF_OPT_INT, "16384", 0,
     "Largest request body in bytes (POST /v1/positions...); larger ones get 413", 0, NULL},
    {"stale_after", TF_OPT_DURATION, "5s", 0,
     "A premium older than this (now - ts, at request time) is served with stale: true", 0, NULL},
    {"sse_keepalive", TF_OPT_DURATION, "15s", 0,
     "Interval of the comment lines that keep idle event streams open", 0, NULL},
    {"sse_retry", TF_OPT_DURATION, "2s", 0,
     "Reconnection delay sent to event stream clients (the SSE retry field), 100ms-1m", 0, NULL},
    {"sse_queue", TF_OPT_INT, "256", 0,
     "Events a stream client may have waiting; a client further behind is dropped", 0, NULL},
    {"sse_replay", TF_OPT_INT, "1000", 0,
     "Most history entries replayed to a client that resumes with Last-Event-ID (the newest; a "
     "gap event says when older ones were left out)",
     0, NULL},
    {"sse_max_clients", TF_OPT_INT, "256", 0, "Most event stream clients at a time; more get 503",
     0, NULL},
    {"prefix", TF_OPT_STRING, NULL, 0,
     "Redis key prefix of the history streams (default: the runtime's redis.prefix)", 0, NULL},
    {"tokens", TF_OPT_LIST, "[]", 0,
     "Bearer tokens as {name, sha256, scope}; writes always need a write token", TF_OPT_MAP,
     token_fields},
    {"token_file", TF_OPT_STRING, NULL, 0,
     "File of more tokens, one \"name scope sha256hex\" per line (# comments); keep it 0600", 0,
     NULL},
    {"read_auth", TF_OPT_STRING, "public", 0,
     "public: GET endpoints need no token; token: they need a read or write token (probes stay "
     "public)",
     0, NULL},
    {"rate_limit", TF_OPT_INT, "50", 0,
     "Requests a second per client IP address (token bucket); over it 429 + Retry-After; 0 = off",
     0, NULL},
    {"rate_burst", TF_OPT_INT, "100", 0, "Requests a client IP may send at once (bucket size)", 0,
     NULL},
    {"max_header_bytes", TF_OPT_INT, "8192", 0,
     "Largest request line + headers; larger ones are refused by libmicrohttpd (431)", 0, NULL},
    {"cors_origins", TF_OPT_LIST, "[]", 0,
     "Origins (scheme://host[:port]) allowed to call the API from a browser; [] = no CORS",
     TF_OPT_STRING, NULL},
    {"tls_cert", TF_OPT_SECRET, NULL, 0,
     "PEM certificate chain, via ${file:/path}; with tls_key the API serves HTTPS", 0, NULL},
    {"tls_key", TF_OPT_SECRET, NULL, 0, "PEM private key of tls_cert, via ${file:/path}", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* An integer option within [min, max], or false after logging what was expected. */
static bool int_in(const http_api *a, const tf_options *o, const char *name, int64_t min,
                   int64_t max, int64_t *out)
{
    *out = a->host->opt_int(o, name);
    if (*out >= min && *out <= max)
        return true;
    a->host->log(a->self, TF_LOG_ERROR,
                 "option %s: expected an integer from %" PRId64 " to %" PRId64 ", found %" PRId64,
                 name, min, max, *out);
    return false;
}

static bool duration_in(const http_api *a, const tf_options *o, const char *name, int64_t min_ms,
                        int64_t max_ms, int64_t *out)
{
    *out = a->host->opt_duration_ms(o, name);
    if (*out >= min_ms && *out <= max_ms)
        return true;
    a->host->log(a->self, TF_LOG_ERROR,
                 "option %s: expected a duration from %" PRId64 "ms to %" PRId64
                 "ms, found %" PRId64 "ms",
                 name, min_ms, max_ms, *out);
    return false;
}

#define HOUR_MS (3600 * 1000)

typedef struct settings {
    int64_t threads, timeout_ms, request_timeout_ms, per_ip, max_conn, max_body, stale_ms;
    int64_t keepalive_ms, retry_ms, queue, replay, max_clients;
    int64_t rate, burst, max_header;
} settings;

static bool read_settings(const http_api *a, const tf_options *o, settings *st)
{
    return int_in(a, o, "threads", 1, 64, &st->threads) &&
           duration_in(a, o, "connection_timeout", 1000, HOUR_MS, &st->timeout_ms) &&
           duration_in(a, o, "request_timeout", 1000, HOUR_MS, &st->request_timeout_ms) &&
           int_in(a, o, "per_ip_limit", 1, 65536, &st->per_ip) &&
           int_in(a, o, "max_connections", 1, 65536, &st->max_conn) &&
           int_in(a, o, "max_body", 0, 16 * 1024 * 1024, &st->max_body) &&
           duration_in(a, o, "stale_after", 1, 24 * HOUR_MS, &st->stale_ms) &&
           duration_in(a, o, "sse_keepalive", 100, HOUR_MS, &st->keepalive_ms) &&
           duration_in(a, o, "sse_retry", 100, 60 * 1000, &st->retry_ms) &&
           int_in(a, o, "sse_queue", 1, 1000000, &st->queue) &&
           int_in(a, o, "sse_replay", 0, 100000, &st->replay) &&
           int_in(a, o, "sse_max_clients", 1, 65536, &st->max_clients) &&
           int_in(a, o, "rate_limit", 0, 1000000, &st->rate) &&
           int_in(a, o, "rate_burst", 1, 1000000, &st->burst) &&
           int_in(a, o, "max_header_bytes", 1024, 1024 * 1024, &st->max_header);
}

static void free_secret(char *p)
{
    if (p) {
        volatile char *v = p; /* a key must not linger in freed memory */
        while (*v)
            *v++ = '\0';
        free(p);
    }
}

#define RATE_LIMIT_CLIENTS 10000 /* addresses tracked at a time (least recent evicted) */

/* Tokens, read_auth, the rate limiter, CORS origins and TLS: the request guards. */
static bool read_protection(http_api *a, const tf_options *o, const settings *st)
{
    const tf_host *h = a->host;
    char err[512] = "";
    a->auth =
        api_auth_create(h->opt_json(o, "tokens"), h->opt_string(o, "token_file"), err, sizeof err);
    if (!a->auth) {
        h->log(a->self, TF_LOG_ERROR, "%s", err);
        return false;
    }
    const char *ra = h->opt_string(o, "read_auth");
    if (ra && strcmp(ra, "public") != 0 && strcmp(ra, "token") != 0) {
        h->log(a->self, TF_LOG_ERROR, "option read_auth: expected public or token, found \"%s\"",
               ra);
        return false;
    }
    if (api_auth_count(a->auth) == 0)
        h->log(a->self, TF_LOG_WARN,
               "no tokens configured (tokens, token_file): every write (POST) gets 401");
    if (st->rate > 0) {
        a->rl = api_ratelimit_create((double)st->rate, (double)st->burst, RATE_LIMIT_CLIENTS);
        if (!a->rl)
            return false;
    }
    const json_t *cors = h->opt_json(o, "cors_origins");
    size_t n = json_array_size(cors);
    a->cors = n ? calloc(n, sizeof *a->cors) : NULL;
    for (size_t i = 0; a->cors && i < n; i++) {
        const char *origin = json_string_value(json_array_get(cors, i));
        if (!origin ||
            (strncmp(origin, "http://", 7) != 0 && strncmp(origin, "https://", 8) != 0) ||
            origin[strlen(origin) - 1] == '/') {
            h->log(a->self, TF_LOG_ERROR,
                   "option cors_origins[%zu]: expected an origin such as https://app.example.com "
                   "(scheme://host[:port], no path), found \"%s\"",
                   i, origin ? origin : "a non-string");
            return false;
        }
        a->cors[i] = strdup(origin);
        a->n_cors += a->cors[i] != NULL;
    }
    if (n && a->n_cors != n)
        return false;
    const char *cert = h->opt_string(o, "tls_cert");
    const char *key = h->opt_string(o, "tls_key");
    if ((cert && cert[0]) != (key && key[0])) {
        h->log(a->self, TF_LOG_ERROR,
               "options tls_cert/tls_key: expected both (HTTPS) or neither (HTTP), found only %s",
               cert && cert[0] ? "tls_cert" : "tls_key");
        return false;
    }
    if (cert && cert[0]) {
        a->tls_cert = strdup(cert);
        a->tls_key = strdup(key);
        return a->tls_cert && a->tls_key;
    }
    return true;
}

static void api_destroy(void *instance)
{
    http_api *a = instance;
    if (!a)
        return;
    api_server_stop(a->server); /* first: no request thread may touch what follows */
    api_sse_destroy(a->sse);
    api_redis_destroy(a->redis);
    api_snapshot_destroy(a->snap);
    api_auth_destroy(a->auth);
    api_ratelimit_destroy(a->rl);
    for (size_t i = 0; i < a->n_cors; i++)
        free(a->cors[i]);
    free(a->cors);
    free_secret(a->tls_cert);
    free_secret(a->tls_key);
    free(a);
}

static int start(http_api *a, const tf_options *o, const settings *st)
{
    const tf_host *h = a->host;
    static const char *const no_labels[] = {NULL};
    static const char *const reason_labels[] = {"reason", NULL};
    api_sse_config sc = {
        .max_clients = (size_t)st->max_clients,
        .queue = (size_t)st->queue,
        .replay = (size_t)st->replay,
        .keepalive_ms = st->keepalive_ms,
        .retry_ms = st->retry_ms,
        .clients = h->metric_register(a->self, TF_METRIC_GAUGE, "tickflow_api_sse_clients",
                                      "Connected Server-Sent Events clients", no_labels, NULL, 0),
        .dropped = h->metric_register(a->self, TF_METRIC_COUNTER, "tickflow_api_sse_dropped_total",
                                      "Event stream clients dropped because their queue overflowed",
                                      no_labels, NULL, 0),
    };
    a->snap = api_snapshot_create(h, a->self);
    a->redis = api_redis_create(h, a->self, (size_t)st->threads + 1);
    a->sse = api_sse_create(h, a->self, &sc);
    if (!a->snap || !a->redis || !a->sse)
        return TF_ENOMEM;
    const char *prefix = h->opt_string(o, "prefix");
    api_server_config cfg = {
        .listen = h->opt_string(o, "listen"),
        .port_file = h->opt_string(o, "port_file"),
        .threads = (unsigned)st->threads,
        /* libmicrohttpd counts whole seconds: round up so 1500ms never means 1s. */
        .connection_timeout_s = (unsigned)((st->timeout_ms + 999) / 1000),
        .request_timeout_ms = st->request_timeout_ms,
        .per_ip_limit = (unsigned)st->per_ip,
        .max_connections = (unsigned)st->max_conn,
        .max_body = (size_t)st->max_body,
        .stale_after_ms = st->stale_ms,
        .replay_max = (size_t)st->replay,
        .prefix = prefix && prefix[0] ? prefix : h->redis_prefix(a->self),
        .auth = a->auth,
        .read_auth = strcmp(h->opt_string(o, "read_auth"), "token") == 0,
        .rate_limit = a->rl,
        .rate_limited = h->metric_register(
            a->self, TF_METRIC_COUNTER, "tickflow_api_rate_limited_total",
            "Requests refused with 429 because their client IP passed rate_limit", no_labels, NULL,
            0),
        .conn_closed = h->metric_register(
            a->self, TF_METRIC_COUNTER, "tickflow_api_connections_closed_total",
            "Connections closed before their request arrived: request_timeout (not received in "
            "time) or evicted (the oldest waiting one, to make room near max_connections)",
            reason_labels, NULL, 0),
        .cors = (const char *const *)a->cors,
        .n_cors = a->n_cors,
        .max_header_bytes = (size_t)st->max_header,
        .tls_cert = a->tls_cert,
        .tls_key = a->tls_key,
    };
    char err[512] = "";
    a->server = api_server_start(h, a->self, &cfg, a->snap, a->sse, a->redis, err, sizeof err);
    if (!a->server) {
        h->log(a->self, TF_LOG_ERROR, "%s", err);
        return TF_EINVAL;
    }
    const char *listen = cfg.listen;
    const char *colon = strrchr(listen, ':');
    h->log(a->self, TF_LOG_INFO, "API listening on %s://%.*s:%d", a->tls_cert ? "https" : "http",
           (int)(colon - listen), listen, api_server_port(a->server));
    return TF_OK;
}

static int api_init(const tf_host *host, tf_instance *self, const tf_options *opts, void **instance)
{
    http_api *a = calloc(1, sizeof *a);
    if (!a)
        return TF_ENOMEM;
    a->host = host;
    a->self = self;
    settings st;
    int rc = read_settings(a, opts, &st) ? TF_OK : TF_EINVAL;
    if (rc == TF_OK && !read_protection(a, opts, &st))
        rc = TF_EINVAL;
    if (rc == TF_OK)
        rc = start(a, opts, &st);
    if (rc != TF_OK) {
        api_destroy(a);
        return rc;
    }
    a->stale_after_ms = st.stale_ms;
    *instance = a;
    return TF_OK;
}

/* A premium changed: one event frame, rendered once and queued to every stream client. */
static void premium_changed(void *arg, const api_premium *p, const char *history_id)
{
    http_api *a = arg;
    char id[API_EVENT_ID_MAX];
    if (history_id && strlen(history_id) < sizeof id)
        snprintf(id, sizeof id, "%s", history_id);
    else
        snprintf(id, sizeof id, "%" PRIu64, api_sse_next_id(a->sse));
    api_buf b = {0};
    api_premium_render(&b, p, api_premium_age(p, a->host->now_ms(), a->stale_after_ms));
    api_event *e = b.oom ? NULL : api_event_new(id, "premium", b.p, b.len);
    api_buf_free(&b);
    if (e)
        api_sse_publish(a->sse, e);
    api_event_release(e);
}

static int api_write(void *instance, const tf_tick *tick, const tf_batch *batch)
{
    (void)tick;
    http_api *a = instance;
    api_server_register_metrics(a->server);
    return api_snapshot_apply(a->snap, batch, premium_changed, a);
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "http_api",
    .kind = TF_KIND_SINK,
    .description = "Serves the latest premiums, tickers, FX and positions over HTTP (JSON, "
                   "Server-Sent Events) from an in-memory snapshot",
    .version = "0.1.0",
    .options = options,
    .init = api_init,
    .destroy = api_destroy,
    .write = api_write,
};
