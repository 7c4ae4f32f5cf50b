/*
 * Server-Sent Events for the http_api sink: the hub of connected clients, one bounded queue per
 * client, shared refcounted event frames (rendered once, queued to every client), the
 * keep-alive thread, and the libmicrohttpd content reader that drains a queue. A client whose
 * queue is empty is suspended (no busy polling) and resumed by the next event; a client whose
 * queue overflows is dropped and counted.
 */
#ifndef API_SSE_H
#define API_SSE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>
#include <tickflow/tickflow.h>

#define API_EVENT_ID_MAX 48

/* One frame as sent ("id: ...\nevent: ...\ndata: ...\n\n", or a comment). Immutable. */
typedef struct api_event {
    atomic_int refs;
    bool stream_id;            /* `id` is a Redis stream id ("<ms>-<seq>") */
    char id[API_EVENT_ID_MAX]; /* "" for comments */
    size_t len;
    char text[];
} api_event;

/* A new frame (one reference, the caller's). `type` NULL: `data` is sent as is (a comment or a
 * retry line). NULL when out of memory or the id is too long. */
api_event *api_event_new(const char *id, const char *type, const char *data, size_t len);
void api_event_release(api_event *e);

typedef struct api_sse api_sse;
typedef struct api_sse_client api_sse_client;

typedef struct api_sse_config {
    size_t max_clients;
    size_t queue;  /* events a client may have waiting */
    size_t replay; /* most events a resuming client is replayed */
    int64_t keepalive_ms;
    int64_t retry_ms;   /* the reconnection delay each stream's first frame asks clients for */
    tf_metric *clients; /* gauge, may be NULL */
    tf_metric *dropped; /* counter, may be NULL */
} api_sse_config;

/* `host` and `self` are borrowed. Starts the keep-alive thread. NULL on failure. */
api_sse *api_sse_create(const tf_host *host, tf_instance *self, const api_sse_config *cfg);
/* Refuses new clients and ends every stream (suspended ones are resumed so they finish). Call
 * before MHD_stop_daemon: libmicrohttpd must not be stopped with suspended connections. */
void api_sse_shutdown(api_sse *hub);
/* After the daemon stopped (every client is gone). NULL is a no-op. */
void api_sse_destroy(api_sse *hub);

/* Queues `e` to every client (each takes its own reference; the caller keeps its own). */
void api_sse_publish(api_sse *hub, api_event *e);
/* The next monotonic event id, for events without a stream id. */
uint64_t api_sse_next_id(api_sse *hub);

/* Registers a client for `conn`: live events queue from now on. NULL when the hub is full
 * (*full set) or shutting down. */
api_sse_client *api_sse_attach(api_sse *hub, struct MHD_Connection *conn, bool *full);
/* Puts replayed events (a gap event first, if any, then history entries sorted by stream id;
 * the references are taken) before the live ones already queued, dropping the queued ones the
 * replay already covers. */
void api_sse_prepend(api_sse_client *c, api_event **events, size_t n);
/* The streaming response; it owns the client from now on (its free callback detaches it).
 * NULL on failure: then call api_sse_detach. */
struct MHD_Response *api_sse_response(api_sse_client *c);
void api_sse_detach(api_sse_client *c);

#endif
