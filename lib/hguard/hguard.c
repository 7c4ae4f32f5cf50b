/* Request deadlines and room for new clients on a libmicrohttpd listener: see hguard.h. */
#include "hguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* One connection, from libmicrohttpd's STARTED to its CLOSED notification (its socket
 * context). While it waits for a request it sits in the guard's waiting list, which is in
 * order of `since` because every entry is appended with the current time. */
typedef struct hg_conn {
    hguard *g;
    int fd;
    int64_t since_ms; /* monotonic: when it began waiting for its current request */
    bool waiting;
    bool closing; /* shut down by the guard; libmicrohttpd closes it on its next event */
    struct hg_conn *prev, *next;
} hg_conn;

struct hguard {
    hguard_config cfg;
    unsigned soft_limit;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool thread_started;
    bool stop;
    hg_conn *head, *tail; /* waiting connections, oldest first */
    unsigned open;        /* between STARTED and CLOSED */
    unsigned closing;     /* of those, shut down by the guard */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the waiting list (callers hold g->lock) -------------------------------------------- */

static void list_append(hguard *g, hg_conn *c)
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

static void list_remove(hguard *g, hg_conn *c)
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
static void start_wait(hguard *g, hg_conn *c)
{
    bool was_empty = g->head == NULL;
    c->since_ms = mono_ms();
    list_append(g, c);
    if (was_empty)
        pthread_cond_signal(&g->wake);
}

/* Shuts the socket down without closing it: libmicrohttpd sees the end of the stream on its
 * next event and closes the connection itself, from its own thread. Closing the descriptor
 * here would race with that. The record stays until CLOSED, which libmicrohttpd reports
 * before it closes the descriptor, so under g->lock `fd` is always this connection's. */
static void shut(hguard *g, hg_conn *c)
{
    list_remove(g, c);
    c->closing = true;
    g->closing++;
    shutdown(c->fd, SHUT_RDWR);
}

static void report(const hguard *g, hguard_reason reason, unsigned n)
{
    for (unsigned i = 0; g->cfg.on_close && i < n; i++)
        g->cfg.on_close(g->cfg.on_close_arg, reason);
}

/* --- the timer ------------------------------------------------------------------------- */

static void deadline_to_timespec(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Closes every waiting connection past its deadline, then sleeps until the next deadline. */
static void *timer_main(void *arg)
{
    hguard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        int64_t now = mono_ms();
        unsigned expired = 0;
        while (g->head && g->head->since_ms + g->cfg.request_timeout_ms <= now) {
            shut(g, g->head);
            expired++;
        }
        if (expired) {
            pthread_mutex_unlock(&g->lock);
            report(g, HGUARD_TIMEOUT, expired);
            pthread_mutex_lock(&g->lock);
            continue;
        }
        if (!g->head) {
            pthread_cond_wait(&g->wake, &g->lock);
            continue;
        }
        struct timespec ts;
        deadline_to_timespec(g->head->since_ms + g->cfg.request_timeout_ms, &ts);
        pthread_cond_timedwait(&g->wake, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* --- libmicrohttpd's notifications --------------------------------------------------------- */

static hg_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A new connection: it waits for its first request. Above the soft limit, the oldest waiting
 * connections (never the new one) are shut until the live ones are back under it. */
static void conn_started(hguard *g, struct MHD_Connection *conn, void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    hg_conn *c = ci ? calloc(1, sizeof *c) : NULL;
    if (!c)
        return; /* unguarded: only its idle timeout applies */
    c->g = g;
    c->fd = ci->connect_fd;
    *socket_context = c;
    unsigned evicted = 0;
    pthread_mutex_lock(&g->lock);
    g->open++;
    start_wait(g, c);
    while (g->open - g->closing > g->soft_limit && g->head && g->head != c) {
        shut(g, g->head);
        evicted++;
    }
    pthread_mutex_unlock(&g->lock);
    report(g, HGUARD_EVICTED, evicted);
}

static void conn_closed(hguard *g, void **socket_context)
{
    hg_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    list_remove(g, c);
    g->open--;
    if (c->closing)
        g->closing--;
    pthread_mutex_unlock(&g->lock);
    free(c);
    *socket_context = NULL;
}

void hguard_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    hguard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(g, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        conn_closed(g, socket_context);
}

void hguard_request_received(struct MHD_Connection *conn)
{
    hg_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&c->g->lock);
    list_remove(c->g, c);
    pthread_mutex_unlock(&c->g->lock);
}

void hguard_request_done(struct MHD_Connection *conn)
{
    hg_conn *c = conn_of(conn);
    if (!c)
        return;
    hguard *g = c->g;
    pthread_mutex_lock(&g->lock);
    if (!c->closing) {
        list_remove(g, c);
        start_wait(g, c);
    }
    pthread_mutex_unlock(&g->lock);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

unsigned hguard_soft_limit(const hguard *g)
{
    return g->soft_limit;
}

hguard *hguard_create(const hguard_config *cfg, char *err, size_t errsz)
{
    if (cfg->max_connections == 0 || cfg->request_timeout_ms <= 0) {
        snprintf(err, errsz, "connection guard: expected a connection limit and a timeout above 0");
        return NULL;
    }
    hguard *g = calloc(1, sizeof *g);
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
    int rc = pthread_create(&g->thread, NULL, timer_main, g);
    if (rc != 0) {
        snprintf(err, errsz, "connection guard: cannot start its thread: %s", strerror(rc));
        hguard_destroy(g);
        return NULL;
    }
    g->thread_started = true;
    return g;
}

void hguard_destroy(hguard *g)
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
