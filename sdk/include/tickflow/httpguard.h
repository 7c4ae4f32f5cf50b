/*
 * tf_httpguard: keeps slow clients from holding a libmicrohttpd listener. libmicrohttpd 0.9.75 only
 * has an idle timeout, which every trickled byte resets, so a client sending one header byte
 * every few seconds holds its connection forever, and enough of them fill the connection cap.
 * tf_httpguard gives each request a total deadline (line, headers and body, counted from the
 * connection's open or the previous response) and, when a new connection brings the open ones
 * near the cap, closes the oldest connection still waiting for its request: a client that sends
 * its request at once always finds room.
 *
 * Header-only, like the rest of the SDK: a plugin that serves HTTP with libmicrohttpd includes it
 * and links libmicrohttpd and pthreads; the runtime's metrics listener (core/tf_httpd.c) and the
 * http_api sink use it. Its internals are prefixed tf_hg_.
 */
#ifndef TICKFLOW_HTTPGUARD_H
#define TICKFLOW_HTTPGUARD_H

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct tf_httpguard tf_httpguard;

typedef enum tf_httpguard_reason {
    TF_HTTPGUARD_TIMEOUT, /* the request was not received within request_timeout */
    TF_HTTPGUARD_EVICTED, /* closed to make room near the connection cap */
} tf_httpguard_reason;

/* Called (from a listener or the guard's thread) each time the guard closes a connection. */
typedef void (*tf_httpguard_close_fn)(void *arg, tf_httpguard_reason reason);

typedef struct tf_httpguard_config {
    unsigned max_connections;       /* libmicrohttpd's MHD_OPTION_CONNECTION_LIMIT */
    int64_t request_timeout_ms;     /* the deadline of a request, > 0 */
    tf_httpguard_close_fn on_close; /* may be NULL */
    void *on_close_arg;             /* lent */
} tf_httpguard_config;

/* One connection, from libmicrohttpd's STARTED to its CLOSED notification (its socket
 * context). While it waits for a request it sits in the guard's waiting list, which is in
 * order of `since` because every entry is appended with the current time. */
typedef struct tf_hg_conn {
    tf_httpguard *g;
    int fd;
    int64_t since_ms; /* monotonic: when it began waiting for its current request */
    bool waiting;
    bool closing; /* tf_hg_shut down by the guard; libmicrohttpd closes it on its next event */
    struct tf_hg_conn *prev, *next;
} tf_hg_conn;

struct tf_httpguard {
    tf_httpguard_config cfg;
    unsigned soft_limit;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool thread_started;
    bool stop;
    tf_hg_conn *head, *tail; /* waiting connections, oldest first */
    unsigned open;           /* between STARTED and CLOSED */
    unsigned closing;        /* of those, tf_hg_shut down by the guard */
};

static inline int64_t tf_hg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the waiting list (callers hold g->lock) -------------------------------------------- */

static inline void tf_hg_list_append(tf_httpguard *g, tf_hg_conn *c)
{
    c->prev = g->tail;
    c->next = NULL;
    if (g->tail)
        g->tail->next = c;
    else
        g->head = c;
    g->tail = c;
    c->waiting = true;
}

static inline void tf_hg_list_remove(tf_httpguard *g, tf_hg_conn *c)
{
    if (!c->waiting)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->tail = c->prev;
    c->prev = c->next = NULL;
    c->waiting = false;
}

/* Begins a wait for the next request; wakes the timer when the list was empty (it sleeps
 * until the head's deadline, and a later entry never has an earlier one). */
static inline void tf_hg_start_wait(tf_httpguard *g, tf_hg_conn *c)
{
    bool was_empty = g->head == NULL;
    c->since_ms = tf_hg_mono_ms();
    tf_hg_list_append(g, c);
    if (was_empty)
        pthread_cond_signal(&g->wake);
}

/* Shuts the socket down without closing it: libmicrohttpd sees the end of the stream on its
 * next event and closes the connection itself, from its own thread. Closing the descriptor
 * here would race with that. The record stays until CLOSED, which libmicrohttpd reports
 * before it closes the descriptor, so under g->lock `fd` is always this connection's. */
static inline void tf_hg_shut(tf_httpguard *g, tf_hg_conn *c)
{
    tf_hg_list_remove(g, c);
    c->closing = true;
    g->closing++;
    shutdown(c->fd, SHUT_RDWR);
}

static inline void tf_hg_report(const tf_httpguard *g, tf_httpguard_reason reason, unsigned n)
{
    for (unsigned i = 0; g->cfg.on_close && i < n; i++)
        g->cfg.on_close(g->cfg.on_close_arg, reason);
}

/* --- the timer ------------------------------------------------------------------------- */

static inline void tf_hg_deadline_to_timespec(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Closes every waiting connection past its deadline, then sleeps until the next deadline. */
static inline void *tf_hg_timer_main(void *arg)
{
    tf_httpguard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        int64_t now = tf_hg_mono_ms();
        unsigned expired = 0;
        while (g->head && g->head->since_ms + g->cfg.request_timeout_ms <= now) {
            tf_hg_shut(g, g->head);
            expired++;
        }
        if (expired) {
            pthread_mutex_unlock(&g->lock);
            tf_hg_report(g, TF_HTTPGUARD_TIMEOUT, expired);
            pthread_mutex_lock(&g->lock);
            continue;
        }
        if (!g->head) {
            pthread_cond_wait(&g->wake, &g->lock);
            continue;
        }
        struct timespec ts;
        tf_hg_deadline_to_timespec(g->head->since_ms + g->cfg.request_timeout_ms, &ts);
        pthread_cond_timedwait(&g->wake, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* --- libmicrohttpd's notifications --------------------------------------------------------- */

static inline tf_hg_conn *tf_hg_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A new connection: it waits for its first request. Above the soft limit, the oldest waiting
 * connections (never the new one) are tf_hg_shut until the live ones are back under it. */
static inline void tf_hg_conn_started(tf_httpguard *g, struct MHD_Connection *conn,
                                      void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    tf_hg_conn *c = ci ? calloc(1, sizeof *c) : NULL;
    if (!c)
        return; /* unguarded: only its idle timeout applies */
    c->g = g;
    c->fd = ci->connect_fd;
    *socket_context = c;
    unsigned evicted = 0;
    pthread_mutex_lock(&g->lock);
    g->open++;
    tf_hg_start_wait(g, c);
    while (g->open - g->closing > g->soft_limit && g->head && g->head != c) {
        tf_hg_shut(g, g->head);
        evicted++;
    }
    pthread_mutex_unlock(&g->lock);
    tf_hg_report(g, TF_HTTPGUARD_EVICTED, evicted);
}

static inline void tf_hg_conn_closed(tf_httpguard *g, void **socket_context)
{
    tf_hg_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    tf_hg_list_remove(g, c);
    g->open--;
    if (c->closing)
        g->closing--;
    pthread_mutex_unlock(&g->lock);
    free(c);
    *socket_context = NULL;
}

/* The MHD_OPTION_NOTIFY_CONNECTION callback; pass the guard as its cls. */
static inline void tf_httpguard_notify_connection(void *cls, struct MHD_Connection *conn,
                                                  void **socket_context,
                                                  enum MHD_ConnectionNotificationCode code)
{
    tf_httpguard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        tf_hg_conn_started(g, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        tf_hg_conn_closed(g, socket_context);
}

/* The request on `conn` is fully received (its response is being queued): its deadline ends.
 * Call from the access handler. */
static inline void tf_httpguard_request_received(struct MHD_Connection *conn)
{
    tf_hg_conn *c = tf_hg_conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&c->g->lock);
    tf_hg_list_remove(c->g, c);
    pthread_mutex_unlock(&c->g->lock);
}

/* The request on `conn` ended (from MHD_OPTION_NOTIFY_COMPLETED): a kept-alive connection now
 * waits for its next request, under a new deadline. */
static inline void tf_httpguard_request_done(struct MHD_Connection *conn)
{
    tf_hg_conn *c = tf_hg_conn_of(conn);
    if (!c)
        return;
    tf_httpguard *g = c->g;
    pthread_mutex_lock(&g->lock);
    if (!c->closing) {
        tf_hg_list_remove(g, c);
        tf_hg_start_wait(g, c);
    }
    pthread_mutex_unlock(&g->lock);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

/* Connections above this many are "near the cap": a new one closes the oldest waiting one. */
static inline unsigned tf_httpguard_soft_limit(const tf_httpguard *g)
{
    return g->soft_limit;
}

/* Stops the thread and frees. Call after MHD_stop_daemon (which reports every connection
 * closed). NULL is a no-op. */
static inline void tf_httpguard_destroy(tf_httpguard *g)
{
    if (!g)
        return;
    if (g->thread_started) {
        pthread_mutex_lock(&g->lock);
        g->stop = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

/* Starts the guard's timer thread. NULL on failure with the reason in err. */
static inline tf_httpguard *tf_httpguard_create(const tf_httpguard_config *cfg, char *err,
                                                size_t errsz)
{
    if (cfg->max_connections == 0 || cfg->request_timeout_ms <= 0) {
        snprintf(err, errsz, "connection guard: expected a connection limit and a timeout above 0");
        return NULL;
    }
    tf_httpguard *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    g->cfg = *cfg;
    /* An eighth of the cap stays free for clients that send their request at once. */
    unsigned headroom = cfg->max_connections / 8 ? cfg->max_connections / 8 : 1;
    g->soft_limit = cfg->max_connections > headroom ? cfg->max_connections - headroom : 1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&g->thread, NULL, tf_hg_timer_main, g);
    if (rc != 0) {
        snprintf(err, errsz, "connection guard: cannot start its thread: %s", strerror(rc));
        tf_httpguard_destroy(g);
        return NULL;
    }
    g->thread_started = true;
    return g;
}

#endif
