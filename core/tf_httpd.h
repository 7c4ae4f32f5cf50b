/*
 * The runtime's own HTTP listener (libmicrohttpd, one internal polling thread): GET /metrics
 * (Prometheus text 0.0.4), /healthz (liveness) and /readyz (readiness from a callback).
 * It writes to sockets with MSG_NOSIGNAL; the process still ignores SIGPIPE (tf_runtime).
 */
#ifndef TF_HTTPD_H
#define TF_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tf_httpd tf_httpd;

/* Readiness probe, called on the listener thread for each GET /readyz: returns true when
 * ready and writes a JSON value describing why into `buf` (always NUL-terminated; "" or text
 * that is not JSON is reported as a string). Must not block for long. */
typedef bool (*tf_httpd_health_fn)(void *arg, char *buf, size_t size);

/* Listens on `listen` ("host:port", "[v6addr]:port"; port 0 picks a free one) and binds only
 * that address. `health` may be NULL (always ready); `health_arg` is lent and must outlive the
 * listener. On failure returns NULL with the reason in `err`. */
tf_httpd *tf_httpd_start(const char *listen, tf_httpd_health_fn health, void *health_arg, char *err,
                         size_t errsz);
/* The bound TCP port (the ephemeral one when started with port 0). */
int tf_httpd_port(const tf_httpd *h);
/* Stops the listener thread, closes every connection and frees `h`. NULL is a no-op. */
void tf_httpd_stop(tf_httpd *h);

#endif
