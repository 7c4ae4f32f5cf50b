/*
 * The http_api sink's HTTP server: binds the configured address itself (errors name it),
 * runs libmicrohttpd (internal epoll threads, thread pool, suspend/resume for SSE) with bounded
 * connections, timeouts, memory and request bodies, a request deadline and room kept for new
 * clients (tickflow/httpguard.h), routes /v1/... , /healthz and /readyz, and
 * counts every request by route template and status.
 */
#ifndef API_SERVER_H
#define API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tickflow/tickflow.h>

#include "api_auth.h"
#include "api_ratelimit.h"
#include "api_redis.h"
#include "api_snapshot.h"
#include "api_sse.h"

typedef struct api_server_config {
    const char *listen;    /* "host:port" or "[v6]:port"; port 0 picks one */
    const char *port_file; /* NULL or a path that receives the bound port */
    unsigned threads;
    unsigned connection_timeout_s;
    int64_t request_timeout_ms; /* line, headers and body must arrive within it
                                   (tickflow/httpguard.h) */
    unsigned per_ip_limit;
    unsigned max_connections;
    size_t max_body;
    int64_t stale_after_ms;
    size_t replay_max;
    const char *prefix;        /* Redis key prefix */
    const api_auth *auth;      /* bearer tokens (borrowed) */
    bool read_auth;            /* reads need a token too */
    api_ratelimit *rate_limit; /* NULL: off (borrowed) */
    tf_metric *rate_limited;   /* tickflow_api_rate_limited_total, may be NULL */
    tf_metric *conn_closed;    /* tickflow_api_connections_closed_total{reason}, may be NULL */
    const char *const *cors;   /* allowed Origins (borrowed), n_cors of them */
    size_t n_cors;
    size_t max_header_bytes;        /* sizes the per-connection memory */
    const char *tls_cert, *tls_key; /* PEM text, both or neither (borrowed, outlive the server) */
} api_server_config;

typedef struct api_server api_server;

/* Starts serving. Everything passed is borrowed and must outlive the server. NULL on failure,
 * with what was expected and what was found in err. */
api_server *api_server_start(const tf_host *host, tf_instance *self, const api_server_config *cfg,
                             api_snapshot *snap, api_sse *sse, api_redis *redis, char *err,
                             size_t errsz);
int api_server_port(const api_server *s);
/* Registers the request metrics (once; later calls do nothing). Called from the sink's first
 * write, not at start: the runtime starts its own metrics listener after creating the
 * pipelines, and that listener registers the same names. Registering after it keeps its
 * /metrics working when the label sets differ (the sink's metrics are then disabled, logged). */
void api_server_register_metrics(api_server *s);
/* Ends every SSE stream, stops the threads, closes every connection. NULL is a no-op. */
void api_server_stop(api_server *s);

#endif
