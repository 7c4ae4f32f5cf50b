/*
 * The shared HTTP client (libcurl, OpenSSL build). One tf_http per runtime keeps the per-host
 * state: a token-bucket rate limit, the Retry-After block after a 429/418, and a circuit
 * breaker (closed -> open after N consecutive failures -> half-open probe -> closed), plus a
 * curl share handle for DNS and TLS sessions. Connections are kept alive per client (one easy
 * handle per plugin instance) across ticks: libcurl's shared connection cache is not safe
 * across threads (curl issue #4915). Each plugin
 * instance gets a tf_http_client (one reusable easy handle) bound to it.
 */
#ifndef TF_HTTP_H
#define TF_HTTP_H

#include <stdatomic.h>
#include <stdint.h>

#include "tf_config.h"

typedef struct tf_http tf_http;
typedef struct tf_http_client tf_http_client;

/* Calls curl_global_init once per process. Copies the settings. NULL on failure. */
tf_http *tf_http_create(const tf_http_settings *settings);
/* Only after every client is destroyed. */
void tf_http_destroy(tf_http *h);

/* `pipeline` and `plugin` label the metrics; `stop` (may be NULL) aborts a transfer or a rate
 * wait in progress when it becomes true (the request then returns TF_ESTOPPED). */
tf_http_client *tf_http_client_create(tf_http *h, const char *pipeline, const char *plugin,
                                      const atomic_bool *stop);
void tf_http_client_destroy(tf_http_client *c);

/* See tf_host.http_get in the SDK for the contract. */
int tf_http_get(tf_http_client *c, const tf_http_request *req, tf_http_response **out);
/* The same with a POST of `len` bytes of `body` (copied; the caller sets Content-Type in
 * req->headers). Private exchange APIs (Bithumb v1) sign a form body. */
int tf_http_post(tf_http_client *c, const tf_http_request *req, const char *body, size_t len,
                 tf_http_response **out);
long tf_http_response_status(const tf_http_response *r);
const char *tf_http_response_body(const tf_http_response *r, size_t *len);
const char *tf_http_response_header(const tf_http_response *r, const char *name);
int64_t tf_http_response_elapsed_ms(const tf_http_response *r);
void tf_http_response_free(tf_http_response *r);

/* Breaker state of a host ("host" or "host:port"): 0 closed, 1 open, 2 half-open. For tests
 * and metrics (tickflow_http_circuit_state). */
int tf_http_breaker_state(tf_http *h, const char *host);

#endif
