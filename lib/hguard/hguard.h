/*
 * hguard: keeps slow clients from holding a libmicrohttpd listener. libmicrohttpd 0.9.75 only
 * has an idle timeout, which every trickled byte resets, so a client sending one header byte
 * every few seconds holds its connection forever, and enough of them fill the connection cap.
 * hguard gives each request a total deadline (line, headers and body, counted from the
 * connection's open or the previous response) and, when a new connection brings the open ones
 * near the cap, closes the oldest connection still waiting for its request: a client that sends
 * its request at once always finds room.
 *
 * Used by the runtime's metrics listener (core/tf_httpd.c) and the http_api sink's server; a
 * static library linked into both, never seen by other plugins.
 */
#ifndef HGUARD_H
#define HGUARD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hguard hguard;

typedef enum hguard_reason {
    HGUARD_TIMEOUT, /* the request was not received within request_timeout */
    HGUARD_EVICTED, /* closed to make room near the connection cap */
} hguard_reason;

/* Called (from a listener or the guard's thread) each time the guard closes a connection. */
typedef void (*hguard_close_fn)(void *arg, hguard_reason reason);

typedef struct hguard_config {
    unsigned max_connections;   /* libmicrohttpd's MHD_OPTION_CONNECTION_LIMIT */
    int64_t request_timeout_ms; /* the deadline of a request, > 0 */
    hguard_close_fn on_close;   /* may be NULL */
    void *on_close_arg;         /* lent */
} hguard_config;

/* Starts the guard's timer thread. NULL on failure with the reason in err. */
hguard *hguard_create(const hguard_config *cfg, char *err, size_t errsz);
/* Stops the thread and frees. Call after MHD_stop_daemon (which reports every connection
 * closed). NULL is a no-op. */
void hguard_destroy(hguard *g);

/* Connections above this many are "near the cap": a new one closes the oldest waiting one. */
unsigned hguard_soft_limit(const hguard *g);

/* The MHD_OPTION_NOTIFY_CONNECTION callback; pass the guard as its cls. */
void hguard_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code);
/* The request on `conn` is fully received (its response is being queued): its deadline ends.
 * Call from the access handler. */
void hguard_request_received(struct MHD_Connection *conn);
/* The request on `conn` ended (from MHD_OPTION_NOTIFY_COMPLETED): a kept-alive connection now
 * waits for its next request, under a new deadline. */
void hguard_request_done(struct MHD_Connection *conn);

#endif
