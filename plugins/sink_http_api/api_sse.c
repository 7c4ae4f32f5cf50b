/* Server-Sent Events hub: see api_sse.h. */
#include "api_sse.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_text.h"

#define SSE_BLOCK 4096 /* bytes libmicrohttpd asks the reader for at a time */

struct api_sse_client {
    api_sse *hub;                /* borrowed */
    struct MHD_Connection *conn; /* borrowed, valid while the response lives */
    pthread_mutex_t lock;        /* guards everything below */
    api_event **ring;            /* owned references */
    size_t cap, head, count;
    size_t off;                  /* bytes of ring[head] already sent */
    bool suspended;              /* its connection is suspended waiting for an event */
    bool dropped;                /* the queue overflowed: end the connection */
    bool closing;                /* the hub shuts down: end the stream once drained */
    api_sse_client *prev, *next; /* the hub's list, under the hub's lock */
};

struct api_sse {
    const tf_host *host; /* borrowed */
    tf_instance *self;   /* borrowed */
    api_sse_config cfg;
    pthread_mutex_t lock; /* guards the list, n_clients, closing */
    pthread_cond_t wake;  /* keep-alive thread: shutdown */
    api_sse_client *clients;
    size_t n_clients;
    bool closing;
    bool thread_started;
    pthread_t keepalive;
    atomic_uint_fast64_t next_id;
};

/* ---- events ---- */

api_event *api_event_new(const char *id, const char *type, const char *data, size_t len)
{
    if (id && strlen(id) >= API_EVENT_ID_MAX)
        return NULL;
    api_buf b = {0};
    if (type) {
        if (id && id[0])
            api_buf_printf(&b, "id: %s\n", id);
        api_buf_printf(&b, "event: %s\ndata: ", type);
        api_buf_add(&b, data, len);
        api_buf_puts(&b, "\n\n");
    } else {
        api_buf_add(&b, data, len);
    }
    if (b.oom) {
        api_buf_free(&b);
        return NULL;
    }
    api_event *e = malloc(sizeof *e + b.len + 1);
    if (e) {
        atomic_init(&e->refs, 1);
        snprintf(e->id, sizeof e->id, "%s", id ? id : "");
        uint64_t ms, seq;
        e->stream_id = id && api_parse_stream_id(id, &ms, &seq);
        e->len = b.len;
        memcpy(e->text, b.p, b.len + 1);
    }
    api_buf_free(&b);
    return e;
}

void api_event_release(api_event *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        free(e);
}

static api_event *event_ref(api_event *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

/* ---- queues (under the client's lock) ---- */

static void queue_clear(api_sse_client *c)
{
    for (size_t i = 0; i < c->count; i++)
        api_event_release(c->ring[(c->head + i) % c->cap]);
    c->head = 0;
    c->count = 0;
    c->off = 0;
}

/* Queues a reference to `e`; false when the queue is full (the client must be dropped). */
static bool queue_push(api_sse_client *c, api_event *e)
{
    if (c->count == c->cap)
        return false;
    c->ring[(c->head + c->count) % c->cap] = event_ref(e);
    c->count++;
    return true;
}

/* Copies up to `max` queued bytes into buf; returns how many. */
static size_t queue_drain(api_sse_client *c, char *buf, size_t max)
{
    size_t n = 0;
    while (c->count > 0 && n < max) {
        api_event *e = c->ring[c->head];
        size_t take = e->len - c->off;
        if (take > max - n)
            take = max - n;
        memcpy(buf + n, e->text + c->off, take);
        n += take;
        c->off += take;
        if (c->off == e->len) {
            api_event_release(e);
            c->head = (c->head + 1) % c->cap;
            c->count--;
            c->off = 0;
        }
    }
    return n;
}

/* ---- publishing ---- */

static void metric_add(api_sse *hub, tf_metric *m, double v)
{
    if (m)
        hub->host->metric_add(m, hub->self, NULL, v);
}

static void metric_set(api_sse *hub, tf_metric *m, double v)
{
    if (m)
        hub->host->metric_set(m, hub->self, NULL, v);
}

/* Under both locks: queues `e`, or drops the client when its queue is full. Returns true when
 * the client's connection must be resumed (by the caller, after the locks are released). */
static bool deliver(api_sse *hub, api_sse_client *c, api_event *e)
{
    if (c->dropped || c->closing)
        return false;
    if (!queue_push(c, e)) {
        /* A client this far behind would only ever fall further behind: its memory is freed
         * now and its connection ends. */
        c->dropped = true;
        queue_clear(c);
        metric_add(hub, hub->cfg.dropped, 1);
        hub->host->log(hub->self, TF_LOG_WARN,
                       "SSE client dropped: %zu events waiting (sse_queue + sse_replay), it "
                       "reads slower than events arrive",
                       c->cap);
    }
    bool resume = c->suspended;
    c->suspended = false;
    return resume;
}

/* Resumes the collected connections. They are suspended until this call, so libmicrohttpd
 * cannot have freed them meanwhile (it does not process a suspended connection). */
static void resume_all(struct MHD_Connection **conns, size_t n)
{
    for (size_t i = 0; i < n; i++)
        MHD_resume_connection(conns[i]);
}

/* Applies fn to every client under the locks and resumes those it asks for. */
static void for_each_client(api_sse *hub, bool (*fn)(api_sse *, api_sse_client *, void *),
                            void *arg)
{
    struct MHD_Connection *small[64];
    struct MHD_Connection **conns = small;
    pthread_mutex_lock(&hub->lock);
    if (hub->n_clients > sizeof small / sizeof small[0]) {
        conns = malloc(hub->n_clients * sizeof *conns);
        if (!conns) {
            pthread_mutex_unlock(&hub->lock);
            return;
        }
    }
    size_t n = 0;
    for (api_sse_client *c = hub->clients; c; c = c->next) {
        pthread_mutex_lock(&c->lock);
        if (fn(hub, c, arg))
            conns[n++] = c->conn;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&hub->lock);
    resume_all(conns, n);
    if (conns != small)
        free(conns);
}

static bool publish_one(api_sse *hub, api_sse_client *c, void *arg)
{
    return deliver(hub, c, arg);
}

void api_sse_publish(api_sse *hub, api_event *e)
{
    for_each_client(hub, publish_one, e);
}

uint64_t api_sse_next_id(api_sse *hub)
{
    return atomic_fetch_add(&hub->next_id, 1);
}

static bool close_one(api_sse *hub, api_sse_client *c, void *arg)
{
    (void)hub;
    (void)arg;
    c->closing = true;
    bool resume = c->suspended;
    c->suspended = false;
    return resume;
}

/* ---- keep-alive ---- */

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A comment every keepalive_ms keeps proxies from closing an idle stream and lets the server
 * notice clients that went away (the write fails). */
static void *keepalive_main(void *arg)
{
    api_sse *hub = arg;
    api_event *ping = api_event_new(NULL, NULL, ": keep-alive\n\n", 14);
    pthread_mutex_lock(&hub->lock);
    while (!hub->closing) {
        struct timespec until;
        deadline_after(&until, hub->cfg.keepalive_ms);
        int rc = 0;
        while (!hub->closing && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&hub->wake, &hub->lock, &until);
        if (hub->closing || !ping)
            continue;
        pthread_mutex_unlock(&hub->lock);
        api_sse_publish(hub, ping);
        pthread_mutex_lock(&hub->lock);
    }
    pthread_mutex_unlock(&hub->lock);
    api_event_release(ping);
    return NULL;
}

/* ---- clients ---- */

static void client_free(api_sse_client *c)
{
    queue_clear(c);
    free(c->ring);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

api_sse_client *api_sse_attach(api_sse *hub, struct MHD_Connection *conn, bool *full)
{
    *full = false;
    api_sse_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->hub = hub;
    c->conn = conn;
    c->cap = hub->cfg.queue + hub->cfg.replay + 2; /* + the hello frame and a gap event */
    c->ring = calloc(c->cap, sizeof *c->ring);
    pthread_mutex_init(&c->lock, NULL);
    /* First frame of every stream: EventSource clients reconnect after sse_retry, and the
     * frame makes libmicrohttpd send the headers at once rather than with the first event. */
    char retry[48];
    int len = snprintf(retry, sizeof retry, "retry: %" PRId64 "\n\n", hub->cfg.retry_ms);
    api_event *hello = api_event_new(NULL, NULL, retry, (size_t)len);
    if (!c->ring || !hello) {
        api_event_release(hello);
        client_free(c);
        return NULL;
    }
    queue_push(c, hello);
    api_event_release(hello);
    pthread_mutex_lock(&hub->lock);
    if (hub->closing || hub->n_clients >= hub->cfg.max_clients) {
        *full = !hub->closing;
        pthread_mutex_unlock(&hub->lock);
        client_free(c);
        return NULL;
    }
    c->next = hub->clients;
    if (hub->clients)
        hub->clients->prev = c;
    hub->clients = c;
    hub->n_clients++;
    metric_set(hub, hub->cfg.clients, (double)hub->n_clients);
    pthread_mutex_unlock(&hub->lock);
    return c;
}

void api_sse_detach(api_sse_client *c)
{
    api_sse *hub = c->hub;
    pthread_mutex_lock(&hub->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        hub->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hub->n_clients--;
    metric_set(hub, hub->cfg.clients, (double)hub->n_clients);
    pthread_mutex_unlock(&hub->lock);
    client_free(c);
}

void api_sse_prepend(api_sse_client *c, api_event **events, size_t n)
{
    pthread_mutex_lock(&c->lock);
    const char *last = NULL; /* the newest replayed history id (a gap event has none) */
    for (size_t i = n; i > 0 && !last; i--)
        last = events[i - 1]->stream_id ? events[i - 1]->id : NULL;
    api_event **ring = calloc(c->cap, sizeof *ring);
    size_t count = 0;
    /* Nothing was sent yet, so offsets stay 0, and the hello frame (retry) is still the first
     * queued: it stays first. */
    size_t queued = 0;
    if (ring && c->count > 0 && !c->ring[c->head]->id[0]) {
        ring[count++] = event_ref(c->ring[c->head]);
        queued = 1;
    }
    for (size_t i = 0; ring && i < n && count < c->cap; i++)
        ring[count++] = event_ref(events[i]);
    for (; ring && queued < c->count; queued++) {
        api_event *e = c->ring[(c->head + queued) % c->cap];
        /* Live events the replay already holds (same stream, older or equal id) go. */
        bool covered = last && e->stream_id && api_stream_id_cmp(e->id, last) <= 0;
        if (!covered && count < c->cap)
            ring[count++] = event_ref(e);
    }
    if (ring) {
        queue_clear(c);
        free(c->ring);
        c->ring = ring;
        c->head = 0;
        c->count = count;
    }
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < n; i++)
        api_event_release(events[i]);
}

static ssize_t client_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    api_sse_client *c = cls;
    ssize_t rc;
    pthread_mutex_lock(&c->lock);
    if (c->dropped) {
        rc = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (c->count > 0) {
        rc = (ssize_t)queue_drain(c, buf, max);
    } else if (c->closing) {
        rc = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: suspend rather than return 0 forever (a busy loop). The next
         * deliver() sees `suspended` under this same lock and resumes the connection. */
        c->suspended = true;
        MHD_suspend_connection(c->conn);
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void client_response_free(void *cls)
{
    api_sse_detach(cls);
}

struct MHD_Response *api_sse_response(api_sse_client *c)
{
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, SSE_BLOCK, client_read, c, client_response_free);
    if (!r)
        return NULL;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* nginx buffers responses unless told not to; events must go out as they happen. */
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return r;
}

/* ---- hub ---- */

api_sse *api_sse_create(const tf_host *host, tf_instance *self, const api_sse_config *cfg)
{
    api_sse *hub = calloc(1, sizeof *hub);
    if (!hub)
        return NULL;
    hub->host = host;
    hub->self = self;
    hub->cfg = *cfg;
    atomic_init(&hub->next_id, 1);
    pthread_mutex_init(&hub->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&hub->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&hub->keepalive, NULL, keepalive_main, hub) != 0) {
        api_sse_destroy(hub);
        return NULL;
    }
    hub->thread_started = true;
    metric_set(hub, cfg->clients, 0);
    return hub;
}

void api_sse_shutdown(api_sse *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->closing = true;
    pthread_cond_broadcast(&hub->wake);
    pthread_mutex_unlock(&hub->lock);
    for_each_client(hub, close_one, NULL);
}

void api_sse_destroy(api_sse *hub)
{
    if (!hub)
        return;
    if (hub->thread_started) {
        api_sse_shutdown(hub);
        pthread_join(hub->keepalive, NULL);
    }
    /* Every client belonged to a response the stopped daemon has freed. */
    pthread_cond_destroy(&hub->wake);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}
