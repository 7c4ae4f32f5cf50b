/*
 * rsrc_sub: the subscriber thread. Redis Pub/Sub is fire-and-forget, so whenever the
 * subscription is (re)established the pipeline thread is told to read the keys again; between
 * ticks only the latest value per key is kept, so a burst of updates costs one record.
 */
#include "rsrc_sub.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

/* How long one read waits for a message: the bound on noticing a stop request. */
#define RSRC_READ_WAIT_MS 250
/* Pause between subscription attempts; the connection's own backoff (100 ms .. 5 s) decides
 * when an attempt really reaches out to Redis, an attempt inside it costs nothing. */
#define RSRC_RETRY_MS 100

static const rsrc_kind kinds[] = {
    {"ticker", "ticker", {"exchange", "symbol", NULL}, NULL, "ticker:*"},
    {"premium", "premium", {"krw_exchange", "global_exchange", "symbol", NULL}, NULL, "premium:*"},
    {"fx", "fx", {"pair", NULL}, NULL, "fx:*"},
    {"position_live", "position", {"id", NULL}, "live", "position:*:live"},
};

struct rsrc_sub {
    const tf_host *host;     /* borrowed */
    tf_instance *self;       /* borrowed */
    char *prefix;            /* owned */
    char **channels;         /* owned: <prefix>:events:<kind>, in the order of kinds */
    const rsrc_kind **kinds; /* owned array of static entries */
    size_t n;
    size_t max_pending;
    tf_metric *m_messages, *m_dropped, *m_subscribed; /* borrowed */
    tf_redis *redis;                                  /* owned; used by the thread only */

    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    bool stop;
    bool resubscribed; /* a subscription was established since the last take */
    rsrc_pending pending;
};

/* ---- kinds ---- */

const rsrc_kind *rsrc_kind_find(const char *kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i].kind, kind) == 0)
            return &kinds[i];
    }
    return NULL;
}

/* Appends ":" (unless first) and `part` to buf; false when it does not fit. */
static bool append_part(char *buf, size_t size, size_t *used, const char *part)
{
    int n = snprintf(buf + *used, size - *used, "%s%s", *used ? ":" : "", part);
    if (n < 0 || (size_t)n >= size - *used)
        return false;
    *used += (size_t)n;
    return true;
}

char *rsrc_kind_key(const rsrc_kind *k, const char *prefix, const json_t *value, char *err,
                    size_t err_size)
{
    char key[1024];
    size_t used = 0;
    bool ok = append_part(key, sizeof key, &used, prefix) &&
              append_part(key, sizeof key, &used, k->segment);
    for (size_t i = 0; ok && k->fields[i]; i++) {
        const json_t *f = json_object_get(value, k->fields[i]);
        char num[32];
        const char *text = NULL;
        if (json_is_string(f) && json_string_length(f) > 0) {
            text = json_string_value(f);
        } else if (json_is_integer(f)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(f));
            text = num;
        } else {
            snprintf(err, err_size,
                     "field %s: expected a non-empty string or an integer naming the key, "
                     "found %s",
                     k->fields[i], f ? "another JSON type or an empty string" : "no such field");
            return NULL;
        }
        ok = append_part(key, sizeof key, &used, text);
    }
    if (ok && k->suffix)
        ok = append_part(key, sizeof key, &used, k->suffix);
    if (!ok) {
        snprintf(err, err_size, "expected a key of at most %zu bytes, found a longer one",
                 sizeof key - 1);
        return NULL;
    }
    char *copy = strdup(key);
    if (!copy)
        snprintf(err, err_size, "out of memory");
    return copy;
}

/* ---- the thread ---- */

static bool stopping(rsrc_sub *u)
{
    pthread_mutex_lock(&u->lock);
    bool stop = u->stop;
    pthread_mutex_unlock(&u->lock);
    return stop;
}

/* Sleeps `ms` unless a stop is requested meanwhile. */
static void pause_unless_stopped(rsrc_sub *u, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&u->lock);
    int rc = 0;
    while (!u->stop && rc == 0)
        rc = pthread_cond_timedwait(&u->wake, &u->lock, &until);
    pthread_mutex_unlock(&u->lock);
}

static void set_subscribed(rsrc_sub *u, bool on)
{
    u->host->metric_set(u->m_subscribed, u->self, NULL, on ? 1.0 : 0.0);
}

/* A reply to SUBSCRIBE is ["subscribe", <first channel>, <count>]. */
static bool is_confirmation(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
           r->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[0]->str, "subscribe") == 0;
}

/* Sends SUBSCRIBE for every channel. Redis runs the whole command before anything else on
 * the connection, so once the first confirmation is back every channel is subscribed; the
 * other confirmations arrive through the read loop, which ignores them. */
static bool subscribe_all(rsrc_sub *u)
{
    const tf_host *h = u->host;
    const char **argv = malloc((u->n + 1) * sizeof *argv);
    if (!argv)
        return false;
    argv[0] = "SUBSCRIBE";
    for (size_t i = 0; i < u->n; i++)
        argv[i + 1] = u->channels[i];
    redisReply *reply = h->redis_command(u->redis, (int)(u->n + 1), argv, NULL);
    free(argv);
    if (!reply)
        return false; /* unreachable: the connection logged it and backs off */
    bool ok = is_confirmation(reply);
    if (!ok) {
        h->report_error(u->self, TF_EREDIS, "SUBSCRIBE %s... failed: %s", u->channels[0],
                        reply->type == REDIS_REPLY_ERROR && reply->str
                            ? reply->str
                            : "expected a subscribe confirmation, found another reply");
    }
    h->redis_reply_free(reply);
    return ok;
}

static const rsrc_kind *kind_of_channel(const rsrc_sub *u, const char *channel)
{
    for (size_t i = 0; i < u->n; i++) {
        if (strcmp(u->channels[i], channel) == 0)
            return u->kinds[i];
    }
    return NULL;
}

/* Parses one event of kind `k` and keeps it as the latest value of its key. A bad message is
 * reported (parse) and skipped. */
static void store_message(rsrc_sub *u, const rsrc_kind *k, const char *channel, const char *text,
                          size_t len)
{
    const tf_host *h = u->host;
    char err[256];
    json_t *root = h->json_parse(text, len, err, sizeof err);
    if (!root) {
        h->report_error(u->self, TF_EPARSE,
                        "Redis channel %s: expected the redis sink's JSON, found invalid JSON "
                        "(%s); message skipped",
                        channel, err);
        return;
    }
    const json_t *kind = json_object_get(root, "kind");
    if (!json_is_string(kind) || strcmp(json_string_value(kind), k->kind) != 0) {
        h->report_error(u->self, TF_EPARSE,
                        "Redis channel %s: expected a JSON object with \"kind\": \"%s\", found "
                        "%s; message skipped",
                        channel, k->kind,
                        json_is_string(kind) ? json_string_value(kind) : "no such string");
        json_decref(root);
        return;
    }
    char *key = rsrc_kind_key(k, u->prefix, root, err, sizeof err);
    if (!key) {
        h->report_error(u->self, TF_EPARSE, "Redis channel %s: %s; message skipped", channel, err);
        json_decref(root);
        return;
    }
    pthread_mutex_lock(&u->lock);
    int dropped = rsrc_pending_put(&u->pending, key, root, u->max_pending);
    pthread_mutex_unlock(&u->lock);
    if (dropped > 0)
        h->metric_add(u->m_dropped, u->self, NULL, (double)dropped);
    else if (dropped < 0)
        h->report_error(u->self, TF_ENOMEM, "Redis key %s: out of memory; event lost", key);
    free(key);
}

/* One message of a subscribed channel: stored (or reported), then counted, so that once
 * tickflow_redis_source_messages_total says N, the N messages are in the pending buffer. */
static void take_message(rsrc_sub *u, const char *channel, const char *text, size_t len)
{
    const rsrc_kind *k = kind_of_channel(u, channel);
    if (!k)
        return; /* a channel we did not ask for: nothing to do with it */
    store_message(u, k, channel, text, len);
    const char *kind_label[] = {k->kind};
    u->host->metric_add(u->m_messages, u->self, kind_label, 1.0);
}

static void take_reply(rsrc_sub *u, const redisReply *r)
{
    /* ["message", channel, payload]; confirmations and anything else are not values. */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return;
    const redisReply *type = r->element[0], *channel = r->element[1], *payload = r->element[2];
    if (type->type != REDIS_REPLY_STRING || strcmp(type->str, "message") != 0 ||
        channel->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING)
        return;
    take_message(u, channel->str, payload->str, payload->len);
}

static void note_subscribed(rsrc_sub *u, bool first)
{
    set_subscribed(u, true);
    pthread_mutex_lock(&u->lock);
    u->resubscribed = true;
    pthread_mutex_unlock(&u->lock);
    if (first)
        u->host->log(u->self, TF_LOG_INFO, "subscribed to %zu channel%s (%s%s)", u->n,
                     u->n == 1 ? "" : "s", u->channels[0], u->n > 1 ? ", ..." : "");
    else
        u->host->log(u->self, TF_LOG_INFO,
                     "subscribed again after losing the connection; the keys are read again "
                     "for what was published meanwhile");
}

static void *reader_main(void *arg)
{
    rsrc_sub *u = arg;
    const tf_host *h = u->host;
    bool subscribed = false, ever = false;
    while (!stopping(u)) {
        if (!subscribed) {
            subscribed = subscribe_all(u);
            if (subscribed)
                note_subscribed(u, !ever);
            else
                pause_unless_stopped(u, RSRC_RETRY_MS);
            ever = ever || subscribed;
            continue;
        }
        void *reply = NULL;
        int rc = h->redis_read_reply(u->redis, RSRC_READ_WAIT_MS, &reply);
        if (rc == TF_OK) {
            take_reply(u, reply);
            h->redis_reply_free(reply);
        } else if (rc != TF_ETIMEOUT) {
            /* The connection is gone and with it the subscription; it reconnects on the next
             * command. */
            subscribed = false;
            set_subscribed(u, false);
            h->log(u->self, TF_LOG_WARN,
                   "lost the subscription to %s...; subscribing again when Redis is back",
                   u->channels[0]);
        }
    }
    set_subscribed(u, false);
    return NULL;
}

/* ---- life cycle ---- */

static void sub_free(rsrc_sub *u)
{
    if (u->redis)
        u->host->redis_close(u->redis);
    for (size_t i = 0; u->channels && i < u->n; i++)
        free(u->channels[i]);
    free(u->channels);
    free(u->kinds);
    free(u->prefix);
    rsrc_pending_free(&u->pending);
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static char *channel_name(const char *prefix, const char *kind)
{
    size_t size = strlen(prefix) + strlen(kind) + sizeof ":events:";
    char *s = malloc(size);
    if (s)
        snprintf(s, size, "%s:events:%s", prefix, kind);
    return s;
}

static bool init_sync(rsrc_sub *u)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return false;
    /* Waits are measured on the monotonic clock, immune to wall-clock steps. */
    bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&u->wake, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (ok && pthread_mutex_init(&u->lock, NULL) != 0) {
        pthread_cond_destroy(&u->wake);
        ok = false;
    }
    return ok;
}

rsrc_sub *rsrc_sub_start(const rsrc_sub_config *cfg)
{
    rsrc_sub *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    if (!init_sync(u)) {
        free(u);
        return NULL;
    }
    u->host = cfg->host;
    u->self = cfg->self;
    u->n = cfg->n_kinds;
    u->max_pending = cfg->max_pending;
    u->m_messages = cfg->m_messages;
    u->m_dropped = cfg->m_dropped;
    u->m_subscribed = cfg->m_subscribed;
    u->prefix = strdup(cfg->prefix);
    u->channels = calloc(u->n, sizeof *u->channels);
    u->kinds = calloc(u->n, sizeof *u->kinds);
    if (!u->prefix || !u->channels || !u->kinds ||
        rsrc_pending_init(&u->pending, u->max_pending) != 0)
        goto fail;
    for (size_t i = 0; i < u->n; i++) {
        u->kinds[i] = cfg->kinds[i];
        u->channels[i] = channel_name(u->prefix, cfg->kinds[i]->kind);
        if (!u->channels[i])
            goto fail;
    }
    u->redis = u->host->redis_open(u->self);
    if (!u->redis)
        goto fail;
    set_subscribed(u, false);
    if (pthread_create(&u->thread, NULL, reader_main, u) != 0) {
        u->host->log(u->self, TF_LOG_ERROR, "cannot start the subscriber thread");
        goto fail;
    }
    u->started = true;
    return u;
fail:
    sub_free(u);
    return NULL;
}

void rsrc_sub_stop(rsrc_sub *u)
{
    if (!u)
        return;
    if (u->started) {
        pthread_mutex_lock(&u->lock);
        u->stop = true;
        pthread_cond_broadcast(&u->wake);
        pthread_mutex_unlock(&u->lock);
        pthread_join(u->thread, NULL);
    }
    sub_free(u);
}

bool rsrc_sub_take(rsrc_sub *u, rsrc_pending *into)
{
    pthread_mutex_lock(&u->lock);
    rsrc_pending_swap(&u->pending, into);
    bool resubscribed = u->resubscribed;
    u->resubscribed = false;
    pthread_mutex_unlock(&u->lock);
    return resubscribed;
}
